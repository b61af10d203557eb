//! `crmbench pg start | stop | status | url`: managing the private server.
//! Each function acts and returns the text the command prints, and each
//! refuses a `--database-url` target: crmbench never starts, stops or
//! describes a server it did not start.

use std::fmt::Write as _;

use super::pooler::Pooler;
use super::private::{self, PrivateServer, StartOutcome};
use super::replicas;
use super::{Target, TargetOptions, connect, roles, settings};
use crate::error::{Error, Result};

fn refuse_external(opts: &TargetOptions, what: &str) -> Result<()> {
    if opts.database_url.is_some() {
        return Err(Error::Usage {
            message: format!(
                "`crmbench pg {what}` manages the private server only; crmbench never starts, \
                 stops or describes a server given by --database-url / DATABASE_URL"
            ),
            fix: "unset DATABASE_URL or drop --database-url for this command".into(),
        });
    }
    Ok(())
}

/// `pg start`: start (initialising on first use) or reuse the private server,
/// with its roles and default database; say where it is and how to connect.
pub async fn start(opts: &TargetOptions) -> Result<String> {
    refuse_external(opts, "start")?;
    let (target, outcome) = Target::resolve(opts, true)?;
    // The default database is made here; another one named by --database
    // must exist already (only generate and schema create make those).
    super::bootstrap_private(&target.on_database(private::DATABASE)).await?;
    if target.database() != private::DATABASE {
        connect(&target.admin()).await?;
    }
    let Target::Private { server, database } = &target else {
        return Ok(String::new());
    };
    let verb = match outcome {
        Some(StartOutcome::Initialised) => "initialised and started",
        Some(StartOutcome::Started) => "started",
        _ => "already running; reused",
    };
    let mut out = String::new();
    let _ = writeln!(
        out,
        "crmbench: private PostgreSQL {} {verb} on port {} (data: {})",
        server.state().binaries.major,
        server.port(),
        server.base_dir().display()
    );
    // The hints name the folder (and database) when they are not the
    // defaults: a bare `crmbench pg stop` would stop another server.
    let folder = if server.base_dir() == private::default_base_dir() {
        String::new()
    } else {
        format!(
            " --data-dir {}",
            shell_quote(&server.base_dir().to_string_lossy())
        )
    };
    let database_flag = if database == private::DATABASE {
        String::new()
    } else {
        format!(" --database {}", shell_quote(database))
    };
    let _ = writeln!(
        out,
        "  connect:   psql \"$(crmbench pg url{folder}{database_flag})\""
    );
    let _ = writeln!(
        out,
        "  admin URL: {}",
        server.url(private::SUPERUSER, database)
    );
    let _ = writeln!(out, "  app URL:   {}", server.url(roles::APP, database));
    let _ = writeln!(out, "  stop:      crmbench pg stop{folder}");
    Ok(out)
}

/// `text` as one shell word: as is when it is plain, else single-quoted.
fn shell_quote(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./=:@%+,-".contains(c));
    if plain {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', "'\\''"))
    }
}

/// `pg start --replicas N`: streaming replicas of the (running) private server.
pub async fn start_replicas(opts: &TargetOptions, n: usize) -> Result<String> {
    refuse_external(opts, "start --replicas")?;
    let (target, _) = Target::resolve(opts, false)?;
    let Target::Private { server, .. } = &target else {
        return Ok(String::new());
    };
    let mut out = String::new();
    if replicas::enable_on_primary(server, n).await? {
        let _ = writeln!(
            out,
            "crmbench: restarted the server with wal_level = replica for streaming \
             replication (loads are slower now; results record wal_level)"
        );
    }
    for r in replicas::start(server, n)? {
        let _ = writeln!(
            out,
            "crmbench: {} (hot standby) running on port {} (data: {})",
            r.name(),
            r.server.port(),
            r.server.base_dir().display()
        );
    }
    Ok(out)
}

/// `pg start --pooler`: PgBouncer in front of the (running) private server.
pub fn start_pooler(opts: &TargetOptions, pool_size: u32) -> Result<String> {
    refuse_external(opts, "start --pooler")?;
    let (target, _) = Target::resolve(opts, false)?;
    let Target::Private { server, database } = &target else {
        return Ok(String::new());
    };
    let pooler = Pooler::start(server, pool_size)?;
    let state = pooler.state();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "crmbench: {} started in transaction mode, pool size {} (port {}, folder {})",
        state.version,
        state.pool_size,
        state.port,
        pooler.dir().display()
    );
    let _ = writeln!(out, "  app URL:   {}", pooler.url(roles::APP, database));
    let _ = writeln!(
        out,
        "  use it:    crmbench run --pooler --protocol simple …  (PgBouncer before 1.21 cannot keep prepared statements in transaction mode)"
    );
    Ok(out)
}

/// `pg stop`: stop the private server if crmbench started one here (and the
/// pooler in front of it first).
pub fn stop(opts: &TargetOptions) -> Result<String> {
    refuse_external(opts, "stop")?;
    let Some(server) = PrivateServer::open(&opts.private)? else {
        return Ok("crmbench: no private server here; nothing to stop\n".into());
    };
    let mut said = String::new();
    for name in replicas::stop_all(&server)? {
        said.push_str(&format!("crmbench: {name} stopped\n"));
    }
    if let Some(pooler) = Pooler::open(&server)? {
        if pooler.stop()? {
            said = format!(
                "crmbench: PgBouncer on port {} stopped\n",
                pooler.state().port
            );
        }
    }
    Ok(said
        + &if server.stop()? {
            format!(
                "crmbench: private server on port {} stopped\n",
                server.port()
            )
        } else {
            format!(
                "crmbench: private server on port {} was not running\n",
                server.port()
            )
        })
}

/// `pg url`: a URL psql accepts, as the superuser or (`app`) the application role.
pub fn url(opts: &TargetOptions, app: bool) -> Result<String> {
    refuse_external(opts, "url")?;
    let (target, _) = Target::resolve(opts, false)?;
    let Target::Private { server, database } = &target else {
        return Ok(String::new());
    };
    let user = if app { roles::APP } else { private::SUPERUSER };
    Ok(format!("{}\n", server.url(user, database)))
}

/// `pg status`: whether the private server runs, where, and (when it runs)
/// the settings in force.
pub async fn status(opts: &TargetOptions) -> Result<String> {
    refuse_external(opts, "status")?;
    let mut out = String::new();
    let Some(server) = PrivateServer::open(&opts.private)? else {
        let base = opts
            .private
            .base_dir
            .clone()
            .unwrap_or_else(private::default_base_dir);
        let _ = writeln!(
            out,
            "private server: not created (folder {})",
            base.display()
        );
        let _ = writeln!(out, "  start it with: crmbench pg start");
        return Ok(out);
    };
    let running = server.is_running()?;
    describe_server(&mut out, &server, running);
    if let Some(pooler) = Pooler::open(&server)? {
        let st = pooler.state();
        let _ = writeln!(
            out,
            "  pooler:      {} ({}, transaction mode, pool size {}, port {})",
            if pooler.is_running() {
                "running"
            } else {
                "stopped"
            },
            st.version,
            st.pool_size,
            st.port
        );
    }
    if running {
        out.push_str(&replica_lines(&server).await?);
        out.push_str(&settings_in_force(server).await?);
    }
    Ok(out)
}

fn describe_server(out: &mut String, server: &PrivateServer, running: bool) {
    let state = server.state();
    let _ = writeln!(
        out,
        "private server: {}",
        if running { "running" } else { "stopped" }
    );
    let _ = writeln!(
        out,
        "  PostgreSQL:  {} ({})",
        state.binaries.major,
        state.binaries.bindir.display()
    );
    let _ = writeln!(out, "  port:        {}", server.port());
    let _ = writeln!(out, "  socket dir:  {}", server.socket_dir().display());
    let _ = writeln!(out, "  data dir:    {}", server.data_dir().display());
    let _ = writeln!(out, "  log:         {}", server.log_path().display());
    if let Some(user) = &state.server_user {
        let _ = writeln!(out, "  runs as:     OS user {user}");
    }
    let _ = writeln!(
        out,
        "  admin URL:   {}",
        server.url(private::SUPERUSER, private::DATABASE)
    );
}

/// One line per replica: running or not, port, replay lag.
async fn replica_lines(server: &PrivateServer) -> Result<String> {
    let list = replicas::list(server)?;
    if list.is_empty() {
        return Ok(String::new());
    }
    let admin = connect(&Target::private(server.clone()).admin_to("postgres")).await?;
    let lag = replicas::lag(&admin).await?;
    let mut out = String::new();
    for r in list {
        let seen = lag.iter().find(|(name, _, _)| *name == r.name());
        let state = match (r.server.is_running()?, seen) {
            (true, Some((_, bytes, ms))) => format!(
                "streaming, {bytes} bytes behind{}",
                ms.map(|m| format!(", replay lag {m:.1} ms"))
                    .unwrap_or_default()
            ),
            (true, None) => "running, not streaming".into(),
            (false, _) => "stopped".into(),
        };
        let _ = writeln!(
            out,
            "  replica {}:   port {}, {state}",
            r.index,
            r.server.port()
        );
    }
    Ok(out)
}

async fn settings_in_force(server: PrivateServer) -> Result<String> {
    let target = Target::private(server);
    let client = connect(&target.admin_to("postgres")).await?;
    let mut out = String::from("  settings in force:\n");
    for name in settings::REPORTED {
        let row = client
            .query_opt(
                "SELECT setting, coalesce(unit, '') FROM pg_settings WHERE name = $1",
                &[name],
            )
            .await
            .map_err(|e| Error::from_pg("reading pg_settings", e))?;
        if let Some(row) = row {
            let (value, unit): (String, String) = (row.get(0), row.get(1));
            let shown = settings::with_unit(&value, &unit);
            let _ = writeln!(out, "    {name:<32} {shown}");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_quote("/var/tmp/crm-1"), "/var/tmp/crm-1");
        assert_eq!(shell_quote("/tmp/a b"), "'/tmp/a b'");
        assert_eq!(shell_quote("it's"), "'it'\\''s'");
        assert_eq!(shell_quote(""), "''");
    }
}
