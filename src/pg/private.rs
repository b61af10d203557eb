//! The private PostgreSQL server: a cluster crmbench initialises, starts and
//! stops in a folder it owns, on its own port and socket.
//!
//! Layout of the base folder (default `/var/tmp/crmbench-<uid>`):
//! `cluster.json` (crmbench's marker and the cluster's facts), `data/`
//! (PGDATA), `run/` (the socket folder), `server.log`, `start.lock` (held
//! while one crmbench initialises or starts the server).
//!
//! As root the server runs as an unprivileged user (`postgres` if present,
//! else a `crmbench` system user created on demand): `initdb` and `postgres`
//! refuse root. That user must be able to traverse every parent folder, which
//! is why the default lives under `/var/tmp`, never inside a checkout or `/root`.

use std::io::Write as _;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};
use serde::{Deserialize, Serialize};

use super::binaries::{self, Binaries};
use super::settings;
use crate::error::{Error, Result};

/// The bootstrap superuser of the private cluster.
pub const SUPERUSER: &str = "crmbench_admin";
/// The benchmark database created on the private cluster.
pub const DATABASE: &str = "crmbench";
/// First port tried when a cluster is initialised.
pub const FIRST_PORT: u16 = 54329;
const MARKER: &str = "crmbench private cluster";

/// How to find or create the private server.
#[derive(Debug, Clone, Default)]
pub struct PrivateOptions {
    /// Base folder (`--data-dir`); `None` means `/var/tmp/crmbench-<uid>`.
    pub base_dir: Option<PathBuf>,
    /// Server binaries folder (`--pg-bindir`).
    pub bindir: Option<PathBuf>,
    /// Port to use when initialising (`--pg-port`); `None` picks a free one.
    pub port: Option<u16>,
    /// `shared_buffers` for a new cluster; `None` means 1GB.
    pub shared_buffers: Option<String>,
}

/// What `cluster.json` records: crmbench's marker plus the cluster's facts.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ClusterState {
    /// crmbench's marker text: a folder without it is not crmbench's.
    pub marker: String,
    /// Version of this file's format.
    pub format_version: u32,
    /// The server's port.
    pub port: u16,
    /// Binaries the cluster was created with.
    pub binaries: Binaries,
    /// OS user the server runs as, when crmbench runs as root.
    pub server_user: Option<String>,
    /// Bootstrap superuser.
    pub superuser: String,
    /// When `initdb` ran.
    pub created_at: String,
    /// Libraries in `shared_preload_libraries`.
    pub preload: Vec<String>,
}

/// An OS user the server runs as.
#[derive(Debug, Clone)]
struct ServerUser {
    name: String,
    uid: u32,
    gid: u32,
}

/// A private cluster on disk (running or not).
#[derive(Debug, Clone)]
pub struct PrivateServer {
    base: PathBuf,
    state: ClusterState,
    user: Option<ServerUser>,
}

/// What [`PrivateServer::ensure_running`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartOutcome {
    /// A new cluster was initialised and started.
    Initialised,
    /// An existing cluster was started.
    Started,
    /// The cluster was already running; nothing was done.
    AlreadyRunning,
}

/// Default base folder for this OS user.
pub fn default_base_dir() -> PathBuf {
    PathBuf::from(format!(
        "/var/tmp/crmbench-{}",
        nix::unistd::geteuid().as_raw()
    ))
}

impl PrivateServer {
    /// The cluster at the configured base folder, if crmbench created one there.
    pub fn open(opts: &PrivateOptions) -> Result<Option<PrivateServer>> {
        let base = opts.base_dir.clone().unwrap_or_else(default_base_dir);
        let state_path = base.join("cluster.json");
        if !state_path.exists() {
            return Ok(None);
        }
        let text = std::fs::read_to_string(&state_path)
            .map_err(|e| Error::io("reading", &state_path, e))?;
        let state: ClusterState = serde_json::from_str(&text).map_err(|e| Error::Json {
            action: "parsing",
            path: state_path.clone(),
            source: e,
        })?;
        if state.marker != MARKER {
            return Err(Error::NotOurs {
                action: format!("use {}", base.display()),
                reason: format!("{} lacks crmbench's marker", state_path.display()),
            });
        }
        let user = match &state.server_user {
            Some(name) => Some(lookup_user(name)?.ok_or_else(|| Error::PrivateServer {
                log: String::new(),
                what: format!(
                    "the server user {name} recorded in {} no longer exists",
                    state_path.display()
                ),
                fix: format!(
                    "remove {} and run `crmbench pg start` again",
                    base.display()
                ),
            })?),
            None => None,
        };
        Ok(Some(PrivateServer { base, state, user }))
    }

    /// Start the cluster, initialising it first when there is none. Idempotent
    /// and serialized across processes: a second caller waits for the first
    /// to finish (the lock file `start.lock`) and then finds the server running.
    pub fn ensure_running(opts: &PrivateOptions) -> Result<(PrivateServer, StartOutcome)> {
        let base = opts.base_dir.clone().unwrap_or_else(default_base_dir);
        if !base.exists() {
            // The lock creates the folder: refuse one the server cannot use first.
            preflight(opts, &base)?;
        }
        let _started_alone = lock_start(&base)?;
        let (server, fresh) = match PrivateServer::open(opts)? {
            Some(s) => (s, false),
            None => (PrivateServer::init(opts)?, true),
        };
        if server.is_running()? {
            return Ok((server, StartOutcome::AlreadyRunning));
        }
        server.start()?;
        let outcome = if fresh {
            StartOutcome::Initialised
        } else {
            StartOutcome::Started
        };
        Ok((server, outcome))
    }

    fn init(opts: &PrivateOptions) -> Result<PrivateServer> {
        let base = opts.base_dir.clone().unwrap_or_else(default_base_dir);
        let (bins, user) = preflight(opts, &base)?;
        let data = base.join("data");
        if data.exists()
            && std::fs::read_dir(&data)
                .map(|mut d| d.next().is_some())
                .unwrap_or(true)
        {
            return Err(Error::NotOurs {
                action: format!("initialise a cluster in {}", data.display()),
                reason: "the folder is not empty and has no cluster.json from crmbench".into(),
            });
        }
        for dir in [&base, &base.join("run")] {
            std::fs::create_dir_all(dir).map_err(|e| Error::io("creating directory", dir, e))?;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| Error::io("setting permissions on", dir, e))?;
            if let Some(u) = &user {
                chown(dir, u)?;
            }
        }
        let port = match opts.port {
            Some(p) => p,
            None => pick_port(&base.join("run"))?,
        };
        let preload: Vec<String> = if has_library(&bins, "pg_stat_statements") {
            vec!["pg_stat_statements".into()]
        } else {
            tracing::warn!("pg_stat_statements is not installed; the server runs without it");
            vec![]
        };
        let state = ClusterState {
            marker: MARKER.into(),
            format_version: 1,
            port,
            binaries: bins.clone(),
            server_user: user.as_ref().map(|u| u.name.clone()),
            superuser: SUPERUSER.into(),
            created_at: chrono::Utc::now().to_rfc3339(),
            preload,
        };
        let server = PrivateServer { base, state, user };
        // C collation: byte order, the same on every machine (stable checksums and
        // plans), and prefix ranges on default btrees behave predictably.
        let out = server.run_tool(
            "initdb",
            &[
                "-D".as_ref(),
                data.as_os_str(),
                "-U".as_ref(),
                SUPERUSER.as_ref(),
                "--auth-local=trust".as_ref(),
                "--auth-host=scram-sha-256".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--locale=C".as_ref(),
                "--no-sync".as_ref(),
            ],
        )?;
        if !out.status.success() {
            return Err(Error::PrivateServer {
                log: String::new(),
                what: format!(
                    "initdb failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                fix: format!("check {} and its free space", server.base.display()),
            });
        }
        server.write_config(opts.shared_buffers.as_deref().unwrap_or("1GB"))?;
        server.write_state()?;
        Ok(server)
    }

    fn write_config(&self, shared_buffers: &str) -> Result<()> {
        let run_dir = self.socket_dir();
        let preload: Vec<&str> = self.state.preload.iter().map(String::as_str).collect();
        let conf = settings::render(&settings::private_server_settings(
            self.state.port,
            &run_dir.to_string_lossy(),
            shared_buffers,
            &preload,
        ));
        let conf_path = self.data_dir().join("crmbench.conf");
        std::fs::write(&conf_path, conf).map_err(|e| Error::io("writing", &conf_path, e))?;
        let main_conf = self.data_dir().join("postgresql.conf");
        let mut f = std::fs::OpenOptions::new()
            .append(true)
            .open(&main_conf)
            .map_err(|e| Error::io("opening", &main_conf, e))?;
        f.write_all(b"\ninclude_if_exists = 'crmbench.conf'\n")
            .map_err(|e| Error::io("writing", &main_conf, e))?;
        if let Some(u) = &self.user {
            chown(&conf_path, u)?;
        }
        Ok(())
    }

    pub(crate) fn write_state(&self) -> Result<()> {
        let path = self.base.join("cluster.json");
        let text = serde_json::to_string_pretty(&self.state).map_err(|e| Error::Json {
            action: "serializing",
            path: path.clone(),
            source: e,
        })?;
        std::fs::write(&path, text + "\n").map_err(|e| Error::io("writing", &path, e))
    }

    /// Whether the postmaster of this cluster is alive (`pg_ctl status`).
    pub fn is_running(&self) -> Result<bool> {
        let out = self.run_tool(
            "pg_ctl",
            &[
                "status".as_ref(),
                "-D".as_ref(),
                self.data_dir().as_os_str(),
            ],
        )?;
        Ok(out.status.success())
    }

    /// Start the server and wait until it accepts connections.
    pub fn start(&self) -> Result<()> {
        let log = self.log_path();
        let out = self.run_tool(
            "pg_ctl",
            &[
                "start".as_ref(),
                "-w".as_ref(),
                "-t".as_ref(),
                "60".as_ref(),
                "-s".as_ref(),
                "-D".as_ref(),
                self.data_dir().as_os_str(),
                "-l".as_ref(),
                log.as_os_str(),
            ],
        )?;
        if out.status.success() {
            return Ok(());
        }
        let tail = self.log_tail(15);
        let fix = if tail.contains("Address already in use") {
            format!(
                "another process uses port {}; stop it, or remove {} and start again with --pg-port",
                self.state.port,
                self.base.display()
            )
        } else {
            format!("read {}", log.display())
        };
        Err(Error::PrivateServer {
            what: format!(
                "the server did not start: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            log: tail,
            fix,
        })
    }

    /// Stop the server (fast shutdown). Returns false when it was not running.
    pub fn stop(&self) -> Result<bool> {
        if !self.is_running()? {
            return Ok(false);
        }
        let out = self.run_tool(
            "pg_ctl",
            &[
                "stop".as_ref(),
                "-w".as_ref(),
                "-m".as_ref(),
                "fast".as_ref(),
                "-s".as_ref(),
                "-D".as_ref(),
                self.data_dir().as_os_str(),
            ],
        )?;
        if !out.status.success() {
            return Err(Error::PrivateServer {
                log: String::new(),
                what: format!(
                    "pg_ctl stop failed: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                ),
                fix: format!("read {}", self.log_path().display()),
            });
        }
        Ok(true)
    }

    /// Last `n` lines of the server log.
    pub fn log_tail(&self, n: usize) -> String {
        let text = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(n)..].join("\n")
    }

    pub(crate) fn run_tool(&self, program: &str, args: &[&std::ffi::OsStr]) -> Result<Output> {
        let path = self.state.binaries.program(program);
        let mut cmd = Command::new(&path);
        cmd.args(args)
            .stdin(Stdio::null())
            .env_remove("PGDATA")
            .env("LC_ALL", "C");
        // The server user cannot enter the caller's folder (a 0700 checkout).
        cmd.current_dir(if self.base.exists() {
            &self.base
        } else {
            Path::new("/")
        });
        if let Some(u) = &self.user {
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd.output().map_err(|e| Error::io("running", path, e))
    }

    /// Another cluster of the same binaries and OS user in `base` on `port`
    /// (a streaming replica of this one): its `cluster.json` is written by
    /// the caller once its data folder exists.
    pub(crate) fn sibling(&self, base: PathBuf, port: u16) -> PrivateServer {
        let mut state = self.state.clone();
        state.port = port;
        state.created_at = chrono::Utc::now().to_rfc3339();
        PrivateServer {
            base,
            state,
            user: self.user.clone(),
        }
    }

    /// `program` as a command run as the server's OS user (when crmbench
    /// runs as root), from the base folder: helpers the server user owns
    /// (the pooler) start the way the server does.
    pub(crate) fn command_as_server(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.stdin(Stdio::null())
            .env("LC_ALL", "C")
            .current_dir(&self.base);
        if let Some(u) = &self.user {
            cmd.uid(u.uid).gid(u.gid);
        }
        cmd
    }

    /// Hand `path` to the server's OS user (when crmbench runs as root).
    pub(crate) fn give_to_server_user(&self, path: &Path) -> Result<()> {
        match &self.user {
            Some(u) => chown(path, u),
            None => Ok(()),
        }
    }

    /// The base folder.
    pub fn base_dir(&self) -> &Path {
        &self.base
    }
    /// PGDATA.
    pub fn data_dir(&self) -> PathBuf {
        self.base.join("data")
    }
    /// Folder holding the server's Unix socket.
    pub fn socket_dir(&self) -> PathBuf {
        self.base.join("run")
    }
    /// The server log file.
    pub fn log_path(&self) -> PathBuf {
        self.base.join("server.log")
    }
    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        self.state.port
    }
    /// Facts recorded at initialisation.
    pub fn state(&self) -> &ClusterState {
        &self.state
    }

    /// A libpq URL for `user` on `database`, over the Unix socket (trust
    /// auth). Names are percent-encoded: a raw `?` or `/` in a database name
    /// would end the path.
    pub fn url(&self, user: &str, database: &str) -> String {
        format!(
            "postgresql://{}@/{}?host={}&port={}",
            encode(user, false),
            encode(database, false),
            encode(&self.socket_dir().to_string_lossy(), true),
            self.state.port
        )
    }

    /// A driver configuration for `user` on `database`, over the Unix socket.
    pub fn config(&self, user: &str, database: &str) -> tokio_postgres::Config {
        let mut c = tokio_postgres::Config::new();
        c.host_path(self.socket_dir())
            .port(self.state.port)
            .user(user)
            .dbname(database)
            .application_name("crmbench");
        c
    }
}

/// What a new cluster in `base` needs before anything is created: the
/// binaries, the OS user the server runs as, and a way into `base` for it.
fn preflight(opts: &PrivateOptions, base: &Path) -> Result<(Binaries, Option<ServerUser>)> {
    let bins = binaries::discover(opts.bindir.as_deref())?;
    let user = choose_server_user()?;
    if let Some(u) = &user {
        check_traversable(base, u)?;
    }
    Ok((bins, user))
}

/// Hold `start.lock` in the base folder (created if missing) for the life of
/// the returned guard. Without it, two starts on a fresh folder both ran
/// initdb, and on a stopped cluster one failed with "server did not start".
fn lock_start(base: &Path) -> Result<Flock<std::fs::File>> {
    std::fs::create_dir_all(base).map_err(|e| Error::io("creating directory", base, e))?;
    let path = base.join("start.lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| Error::io("opening", &path, e))?;
    let locked = match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Err((file, Errno::EWOULDBLOCK)) => {
            tracing::info!(
                "waiting for another crmbench starting the server in {}",
                base.display()
            );
            Flock::lock(file, FlockArg::LockExclusive)
        }
        other => other,
    };
    locked.map_err(|(_, e)| Error::io("locking", &path, e.into()))
}

/// Percent-encode all but URL-unreserved bytes (and `/` when `slash`: a
/// socket path as a query value keeps it readable).
fn encode(text: &str, slash: bool) -> String {
    let mut out = String::new();
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (slash && b == b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn has_library(bins: &Binaries, name: &str) -> bool {
    let pg_config = bins.program("pg_config");
    let libdir = Command::new(&pg_config)
        .arg("--pkglibdir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()));
    let candidates = [
        libdir,
        Some(PathBuf::from(format!(
            "/usr/lib/postgresql/{}/lib",
            bins.major
        ))),
        bins.bindir.parent().map(|p| p.join("lib")),
    ];
    candidates
        .into_iter()
        .flatten()
        .any(|d| d.join(format!("{name}.so")).exists())
}

/// First free port from [`FIRST_PORT`], skipping 5432 and ports with a socket.
fn pick_port(socket_dir: &Path) -> Result<u16> {
    for port in FIRST_PORT..FIRST_PORT + 200 {
        if socket_dir.join(format!(".s.PGSQL.{port}")).exists() {
            continue;
        }
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return Ok(port);
        }
    }
    Err(Error::PrivateServer {
        log: String::new(),
        what: format!("no free port in {}..{}", FIRST_PORT, FIRST_PORT + 200),
        fix: "pass --pg-port with a free port".into(),
    })
}

fn lookup_user(name: &str) -> Result<Option<ServerUser>> {
    let user = nix::unistd::User::from_name(name).map_err(|e| Error::PrivateServer {
        log: String::new(),
        what: format!("looking up user {name}: {e}"),
        fix: String::new(),
    })?;
    Ok(user.map(|u| ServerUser {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
    }))
}

/// As root: `postgres` if it exists, else a `crmbench` system user (created).
/// As anyone else: `None` (the server runs as the caller).
fn choose_server_user() -> Result<Option<ServerUser>> {
    if !nix::unistd::geteuid().is_root() {
        return Ok(None);
    }
    if let Some(u) = lookup_user("postgres")? {
        return Ok(Some(u));
    }
    if let Some(u) = lookup_user("crmbench")? {
        return Ok(Some(u));
    }
    let out = Command::new("useradd")
        .args([
            "--system",
            "--no-create-home",
            "--shell",
            "/usr/sbin/nologin",
            "crmbench",
        ])
        .output()
        .map_err(|e| Error::io("running", "useradd", e))?;
    if !out.status.success() {
        return Err(Error::PrivateServer {
                log: String::new(),
            what: format!(
                "running as root and no `postgres` user exists; creating user `crmbench` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            fix: "create an unprivileged user named postgres or crmbench, or run crmbench as a normal user".into(),
        });
    }
    let created = lookup_user("crmbench")?.ok_or_else(|| Error::PrivateServer {
        log: String::new(),
        what: "user crmbench was created but cannot be found".into(),
        fix: String::new(),
    })?;
    Ok(Some(created))
}

fn chown(path: &Path, u: &ServerUser) -> Result<()> {
    std::os::unix::fs::chown(path, Some(u.uid), Some(u.gid))
        .map_err(|e| Error::io("changing owner of", path, e))
}

/// The server user must be able to enter every existing parent of `base`.
fn check_traversable(base: &Path, u: &ServerUser) -> Result<()> {
    let mut blocked = None;
    for dir in base.ancestors().skip(1) {
        let Ok(meta) = dir.metadata() else { continue };
        let mode = meta.permissions().mode();
        let ok = mode & 0o001 != 0
            || (meta.uid() == u.uid && mode & 0o100 != 0)
            || (meta.gid() == u.gid && mode & 0o010 != 0);
        if !ok {
            blocked = Some((dir.to_path_buf(), mode & 0o777));
        }
    }
    match blocked {
        None => Ok(()),
        Some((dir, mode)) => Err(Error::PrivateServer {
            log: String::new(),
            what: format!(
                "the server runs as user {} (initdb and postgres refuse root), who cannot enter {} \
                 (mode {mode:o}), a parent of {}",
                u.name,
                dir.display(),
                base.display()
            ),
            fix: format!(
                "choose a data folder outside it with --data-dir or CRMBENCH_DATA_DIR (default: {})",
                default_base_dir().display()
            ),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn url_encodes_socket_path() {
        assert_eq!(encode("/var/tmp/crm bench", true), "/var/tmp/crm%20bench");
        assert_eq!(encode("rel_q?b/c d%", false), "rel_q%3Fb%2Fc%20d%25");
    }

    #[test]
    fn default_base_is_outside_root_and_checkout() {
        let base = default_base_dir();
        assert!(base.starts_with("/var/tmp"), "{}", base.display());
    }

    #[test]
    fn blocked_parent_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let locked = dir.path().join("locked");
        std::fs::create_dir(&locked).unwrap();
        std::fs::set_permissions(&locked, std::fs::Permissions::from_mode(0o700)).unwrap();
        // A user that owns nothing here: uid/gid far from any real one.
        let u = ServerUser {
            name: "nobody-test".into(),
            uid: 4_000_000,
            gid: 4_000_000,
        };
        let err = check_traversable(&locked.join("cluster"), &u).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("locked"), "{text}");
        assert!(text.contains("700"), "{text}");
        assert!(err.fix().unwrap().contains("--data-dir"));
    }
}
