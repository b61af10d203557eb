//! Streaming read replicas of the private server, made with PostgreSQL's own
//! tools (`pg_basebackup`, hot standby), never anything home-made.
//!
//! The private server runs with `wal_level = minimal` and no WAL senders for
//! loading speed (COPY into a table created in the same transaction skips
//! WAL). Replicas need `wal_level = replica`: `--replicas` writes
//! `crmbench-replication.conf` into the primary's data folder, included after
//! crmbench.conf so its settings win, and restarts the primary once. Every
//! results file records `wal_level`, so figures taken this way are told apart;
//! loads are slower there (every COPY is WAL-logged).
//!
//! Replica K lives in `<base>/replica-K` (its own `cluster.json`, data, socket
//! folder and log), listens on loopback on its own port, and names itself
//! `crmbench-replica-K` to the primary (`pg_stat_replication.application_name`).

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::private::{PrivateOptions, PrivateServer};
use super::{Target, connect};
use crate::error::{Error, Result};

/// The primary's extra settings while it has replicas.
const PRIMARY_CONF: &str = "crmbench-replication.conf";
/// A replica's own settings (port, socket folder, where its primary is).
const REPLICA_CONF: &str = "crmbench-replica.conf";

/// One replica of the private server.
#[derive(Debug, Clone)]
pub struct Replica {
    /// 1-based number.
    pub index: usize,
    /// The replica's own cluster.
    pub server: PrivateServer,
}

impl Replica {
    /// The name the replica gives the primary.
    pub fn name(&self) -> String {
        format!("crmbench-replica-{}", self.index)
    }
}

fn replica_base(primary: &PrivateServer, index: usize) -> PathBuf {
    primary.base_dir().join(format!("replica-{index}"))
}

/// The replicas crmbench made for `primary`, in order (running or not).
pub fn list(primary: &PrivateServer) -> Result<Vec<Replica>> {
    let mut out = Vec::new();
    for index in 1.. {
        let base = replica_base(primary, index);
        if !base.join("cluster.json").exists() {
            break;
        }
        let opts = PrivateOptions {
            base_dir: Some(base),
            ..Default::default()
        };
        if let Some(server) = PrivateServer::open(&opts)? {
            out.push(Replica { index, server });
        }
    }
    Ok(out)
}

/// Make sure `primary` runs with `wal_level = replica` and WAL senders,
/// restarting it once when it does not. Returns whether it restarted.
pub async fn enable_on_primary(primary: &PrivateServer, senders: usize) -> Result<bool> {
    let data = primary.data_dir();
    let conf = format!(
        "# Written by crmbench for `pg start --replicas`: streaming replication.\n\
         # Loads are slower here: COPY is WAL-logged under wal_level = replica.\n\
         wal_level = replica    # replicas need the WAL that minimal skips\n\
         max_wal_senders = {}    # one per replica, and room for pg_basebackup\n\
         max_replication_slots = {}\n\
         wal_keep_size = '1GB'    # a replica paused for a test can catch up\n\
         hot_standby_feedback = on\n",
        senders + 4,
        senders + 4
    );
    write_owned(primary, &data.join(PRIMARY_CONF), &conf)?;
    include_once(primary, &data.join("postgresql.conf"), PRIMARY_CONF)?;
    let admin = connect(&Target::private(primary.clone()).admin_to("postgres")).await?;
    let level: String = admin
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|e| Error::from_pg("SHOW wal_level", e))?
        .get(0);
    drop(admin);
    if level != "minimal" {
        return Ok(false);
    }
    primary.stop()?;
    primary.start()?;
    Ok(true)
}

/// Create (when missing) and start replicas 1..=`n` of `primary`.
pub fn start(primary: &PrivateServer, n: usize) -> Result<Vec<Replica>> {
    let mut out = Vec::with_capacity(n);
    for index in 1..=n {
        let base = replica_base(primary, index);
        let server = if base.join("cluster.json").exists() {
            let opts = PrivateOptions {
                base_dir: Some(base),
                ..Default::default()
            };
            PrivateServer::open(&opts)?.ok_or_else(|| Error::Internal {
                message: "a replica's cluster.json vanished".into(),
                fix: String::new(),
            })?
        } else {
            create(primary, index, base)?
        };
        if !server.is_running()? {
            server.start()?;
        }
        out.push(Replica { index, server });
    }
    Ok(out)
}

fn create(primary: &PrivateServer, index: usize, base: PathBuf) -> Result<PrivateServer> {
    use std::os::unix::fs::PermissionsExt as _;
    let port = free_port_near(primary.port() + index as u16)?;
    let replica = primary.sibling(base.clone(), port);
    for dir in [base.clone(), base.join("run")] {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
        std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
            .map_err(|e| Error::io("setting permissions on", &dir, e))?;
        primary.give_to_server_user(&dir)?;
    }
    let data = replica.data_dir();
    let out = primary.run_tool(
        "pg_basebackup",
        &[
            "-D".as_ref(),
            data.as_os_str(),
            "-X".as_ref(),
            "stream".as_ref(),
            "-c".as_ref(),
            "fast".as_ref(),
            "-h".as_ref(),
            primary.socket_dir().as_os_str(),
            "-p".as_ref(),
            primary.port().to_string().as_ref(),
            "-U".as_ref(),
            super::private::SUPERUSER.as_ref(),
        ],
    )?;
    if !out.status.success() {
        return Err(Error::PrivateServer {
            what: format!(
                "pg_basebackup for replica {index} failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ),
            log: primary.log_tail(10),
            fix: format!("remove {} and try again", base.display()),
        });
    }
    let name = format!("crmbench-replica-{index}");
    let conf = format!(
        "# Written by crmbench: replica {index} of the private server.\n\
         port = {port}\n\
         unix_socket_directories = '{run}'\n\
         hot_standby = on\n\
         cluster_name = '{name}'\n\
         primary_conninfo = 'host={socket} port={pport} user={user} application_name={name}'\n",
        run = replica.socket_dir().display(),
        socket = primary.socket_dir().display(),
        pport = primary.port(),
        user = super::private::SUPERUSER,
    );
    write_owned(primary, &data.join(REPLICA_CONF), &conf)?;
    include_once(primary, &data.join("postgresql.conf"), REPLICA_CONF)?;
    write_owned(primary, &data.join("standby.signal"), "")?;
    replica.write_state()?;
    Ok(replica)
}

/// Stop every replica of `primary`; the names of those that were running.
pub fn stop_all(primary: &PrivateServer) -> Result<Vec<String>> {
    let mut stopped = Vec::new();
    for r in list(primary)? {
        if r.server.stop()? {
            stopped.push(format!("{} (port {})", r.name(), r.server.port()));
        }
    }
    Ok(stopped)
}

/// Replay lag of each replica as the primary sees it: name, bytes not yet
/// replayed, and `replay_lag` in ms (None while idle: PostgreSQL clears it).
pub async fn lag(admin: &tokio_postgres::Client) -> Result<Vec<(String, i64, Option<f64>)>> {
    let sql = "SELECT application_name, \
                      coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), replay_lsn), 0)::bigint, \
                      extract(epoch FROM replay_lag)::float8 * 1000 \
               FROM pg_stat_replication ORDER BY application_name";
    let rows = admin
        .query(sql, &[])
        .await
        .map_err(|e| Error::from_pg(sql, e))?;
    Ok(rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

fn write_owned(primary: &PrivateServer, path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))?;
    primary.give_to_server_user(path)
}

/// Append `include_if_exists = 'name'` to `conf` unless it is there.
fn include_once(primary: &PrivateServer, conf: &Path, name: &str) -> Result<()> {
    let text = std::fs::read_to_string(conf).map_err(|e| Error::io("reading", conf, e))?;
    let line = format!("include_if_exists = '{name}'");
    if text.lines().any(|l| l.trim() == line) {
        return Ok(());
    }
    let mut f = std::fs::OpenOptions::new()
        .append(true)
        .open(conf)
        .map_err(|e| Error::io("opening", conf, e))?;
    writeln!(f, "\n{line}").map_err(|e| Error::io("writing", conf, e))?;
    primary.give_to_server_user(conf)
}

/// `port` if nothing listens there on loopback, else one the OS picks.
fn free_port_near(port: u16) -> Result<u16> {
    let listener = std::net::TcpListener::bind(("127.0.0.1", port))
        .or_else(|_| std::net::TcpListener::bind(("127.0.0.1", 0)))
        .map_err(|e| Error::io("finding a free port on", Path::new("127.0.0.1"), e))?;
    listener
        .local_addr()
        .map(|a| a.port())
        .map_err(|e| Error::io("finding a free port on", Path::new("127.0.0.1"), e))
}
