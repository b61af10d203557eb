//! PgBouncer in front of the private server, in transaction mode — the
//! pooler applications put in front of PostgreSQL long before they shard.
//! crmbench runs the packaged PgBouncer (never a pooler of its own) as the
//! server's OS user (PgBouncer refuses to run as root), listening on its own
//! Unix socket folder and a loopback port, and reaching the server over the
//! server's socket. Its folder is `<base>/pooler`: `pgbouncer.ini`,
//! `userlist.txt`, `pgbouncer.pid`, `pgbouncer.log`, `pooler.json`.
//!
//! Transaction mode hands a server connection to a client for one
//! transaction only, so the tenant frame's `set_config(…, true)` (local to
//! the transaction) is safe there, while session state — `SET ROLE`,
//! protocol-level prepared statements before PgBouncer 1.21 — is not.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use super::private::{PrivateServer, SUPERUSER};
use super::{ConnSpec, roles};
use crate::error::{Error, Result};

/// Where the Debian package puts the binary; PATH is searched too.
const PACKAGED: &str = "/usr/sbin/pgbouncer";

/// What `pooler.json` records about a running pooler.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PoolerState {
    /// Loopback TCP port (the Unix socket uses the same number).
    pub port: u16,
    /// `default_pool_size`: server connections per database and user.
    pub pool_size: u32,
    /// `pgbouncer --version`'s first line.
    pub version: String,
}

/// The private server's pooler (running or not).
#[derive(Debug, Clone)]
pub struct Pooler {
    dir: PathBuf,
    state: PoolerState,
}

impl Pooler {
    /// The pooler folder of `server`.
    pub fn dir_of(server: &PrivateServer) -> PathBuf {
        server.base_dir().join("pooler")
    }

    /// The pooler crmbench started for `server`, if its folder says so.
    pub fn open(server: &PrivateServer) -> Result<Option<Pooler>> {
        let dir = Pooler::dir_of(server);
        let path = dir.join("pooler.json");
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(Error::io("reading", &path, e)),
        };
        let state = serde_json::from_str(&text).map_err(|e| Error::Json {
            action: "reading",
            path: path.clone(),
            source: e,
        })?;
        Ok(Some(Pooler { dir, state }))
    }

    /// Start PgBouncer for `server` with `pool_size` server connections per
    /// database and user, replacing one crmbench started before.
    pub fn start(server: &PrivateServer, pool_size: u32) -> Result<Pooler> {
        if pool_size == 0 {
            return Err(Error::Usage {
                message: "the pool size must be at least 1".into(),
                fix: "pass --pool-size 1 or more".into(),
            });
        }
        let binary = find_binary()?;
        if let Some(old) = Pooler::open(server)? {
            old.stop()?;
        }
        let dir = Pooler::dir_of(server);
        make_private_dir(server, &dir)?;
        let version = version_of(server, &binary)?;
        let port = free_port()?;
        let state = PoolerState {
            port,
            pool_size,
            version,
        };
        let pooler = Pooler { dir, state };
        pooler.write_files(server)?;
        let out = server
            .command_as_server(&binary)
            .arg("-d")
            .arg(pooler.ini_path())
            .output()
            .map_err(|e| Error::io("running", &binary, e))?;
        if !out.status.success() {
            return Err(pooler.failed_to_start(&String::from_utf8_lossy(&out.stderr)));
        }
        pooler.wait_for_socket()?;
        Ok(pooler)
    }

    fn write_files(&self, server: &PrivateServer) -> Result<()> {
        let ini = render_ini(server, &self.dir, &self.state);
        // Trust over the pooler's own 0700 socket folder, as the server
        // trusts its socket; PgBouncer still needs each user listed.
        let users: String = std::iter::once(&SUPERUSER)
            .chain(roles::ALL.iter())
            .map(|u| format!("\"{u}\" \"\"\n"))
            .collect();
        for (name, text) in [
            ("pgbouncer.ini", ini),
            ("userlist.txt", users),
            ("pooler.json", json_text(&self.state)?),
        ] {
            let path = self.dir.join(name);
            std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
            server.give_to_server_user(&path)?;
        }
        Ok(())
    }

    fn wait_for_socket(&self) -> Result<()> {
        let socket = self.dir.join(format!(".s.PGSQL.{}", self.state.port));
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if socket.exists() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(self.failed_to_start("its socket did not appear within 10 s"))
    }

    fn failed_to_start(&self, what: &str) -> Error {
        Error::PrivateServer {
            what: format!("PgBouncer did not start: {}", what.trim()),
            log: tail(&self.dir.join("pgbouncer.log"), 10),
            fix: format!("read {}", self.dir.join("pgbouncer.log").display()),
        }
    }

    /// Stop the pooler (SIGTERM to its pid) and wait for it to exit.
    /// Returns false when it was not running.
    pub fn stop(&self) -> Result<bool> {
        let Some(pid) = self.pid() else {
            return Ok(false);
        };
        let pid = nix::unistd::Pid::from_raw(pid);
        if nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).is_err() {
            return Ok(false);
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if nix::sys::signal::kill(pid, None).is_err() {
                return Ok(true);
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Err(Error::PrivateServer {
            what: format!("PgBouncer (pid {pid}) did not stop within 10 s"),
            log: tail(&self.dir.join("pgbouncer.log"), 10),
            fix: format!("kill {pid}"),
        })
    }

    /// Whether the pooler's process is alive.
    pub fn is_running(&self) -> bool {
        self.pid().is_some_and(|pid| {
            nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None).is_ok()
        })
    }

    fn pid(&self) -> Option<i32> {
        std::fs::read_to_string(self.dir.join("pgbouncer.pid"))
            .ok()?
            .trim()
            .parse()
            .ok()
    }

    /// Facts recorded at start.
    pub fn state(&self) -> &PoolerState {
        &self.state
    }

    /// The pooler's folder (its Unix socket lives here).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn ini_path(&self) -> PathBuf {
        self.dir.join("pgbouncer.ini")
    }

    /// A libpq URL for `user` on `database` through the pooler.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgresql://{user}@/{database}?host={}&port={}",
            self.dir.to_string_lossy().replace('/', "%2F"),
            self.state.port
        )
    }

    /// `spec` sent through the pooler instead: same user, database and
    /// application name; host and port become the pooler's socket.
    pub fn route(&self, spec: &ConnSpec) -> Result<ConnSpec> {
        if let Some(role) = &spec.set_role {
            return Err(role_refused(role));
        }
        let mut config = tokio_postgres::Config::new();
        config
            .host_path(&self.dir)
            .port(self.state.port)
            .user(spec.config.get_user().unwrap_or(roles::APP))
            .dbname(spec.config.get_dbname().unwrap_or_default())
            .application_name("crmbench");
        Ok(ConnSpec {
            config,
            label: format!(
                "{} through PgBouncer (port {})",
                spec.label, self.state.port
            ),
            set_role: None,
        })
    }
}

/// `SET ROLE` is session state: through a transaction pooler it would stick
/// to a server connection other clients then get.
pub fn role_refused(role: &str) -> Error {
    Error::Usage {
        message: format!(
            "the workload runs as role {role} by SET ROLE after connecting; through a \
             transaction pooler that session setting would leak to other clients' \
             transactions"
        ),
        fix: format!(
            "connect as {role} directly (a --pooler-url naming that user), or drop `role` from the workload"
        ),
    }
}

fn render_ini(server: &PrivateServer, dir: &Path, state: &PoolerState) -> String {
    let d = dir.display();
    format!(
        "; Written by crmbench: PgBouncer in transaction mode in front of its private server.\n\
         [databases]\n\
         * = host={socket} port={server_port}\n\
         \n\
         [pgbouncer]\n\
         listen_addr = 127.0.0.1\n\
         listen_port = {port}\n\
         unix_socket_dir = {d}\n\
         auth_type = trust\n\
         auth_file = {d}/userlist.txt\n\
         admin_users = {admin}\n\
         pool_mode = transaction\n\
         default_pool_size = {size}\n\
         min_pool_size = 0\n\
         reserve_pool_size = 0\n\
         max_client_conn = 2000\n\
         max_db_connections = 0\n\
         ; drivers send these at startup; PgBouncer must not refuse them\n\
         ignore_startup_parameters = extra_float_digits,options\n\
         logfile = {d}/pgbouncer.log\n\
         pidfile = {d}/pgbouncer.pid\n\
         log_connections = 0\n\
         log_disconnections = 0\n",
        socket = server.socket_dir().display(),
        server_port = server.port(),
        port = state.port,
        admin = SUPERUSER,
        size = state.pool_size,
    )
}

fn find_binary() -> Result<PathBuf> {
    let packaged = PathBuf::from(PACKAGED);
    if packaged.exists() {
        return Ok(packaged);
    }
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|d| d.join("pgbouncer"))
        .find(|p| p.exists())
        .ok_or_else(|| Error::State {
            message: "PgBouncer is not installed (looked in /usr/sbin and PATH)".into(),
            fix: "apt-get install pgbouncer".into(),
        })
}

fn version_of(server: &PrivateServer, binary: &Path) -> Result<String> {
    let out = server
        .command_as_server(binary)
        .arg("--version")
        .output()
        .map_err(|e| Error::io("running", binary, e))?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .next()
        .unwrap_or("PgBouncer (version unknown)")
        .trim()
        .to_string())
}

fn make_private_dir(server: &PrivateServer, dir: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt as _;
    std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
        .map_err(|e| Error::io("setting permissions on", dir, e))?;
    server.give_to_server_user(dir)
}

/// A loopback port nothing listens on now (the OS picks it).
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0")
        .map_err(|e| Error::io("finding a free port on", Path::new("127.0.0.1"), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port on", Path::new("127.0.0.1"), e))
}

fn json_text(state: &PoolerState) -> Result<String> {
    serde_json::to_string_pretty(state)
        .map(|t| t + "\n")
        .map_err(|e| Error::Internal {
            message: format!("serializing pooler.json: {e}"),
            fix: String::new(),
        })
}

fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pooler_state_round_trips() {
        let s = PoolerState {
            port: 6543,
            pool_size: 8,
            version: "PgBouncer 1.18.0".into(),
        };
        let text = json_text(&s).unwrap();
        assert_eq!(serde_json::from_str::<PoolerState>(&text).unwrap(), s);
    }
}
