//! Where crmbench works: its private server (the default) or any server given
//! by `--database-url` / `DATABASE_URL`, which crmbench never starts or stops.

use std::fmt;

use tokio_postgres::config::{Host, SslMode as DriverMode};
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, Config};

use super::conninfo::ConnInfo;
use super::private::{self, PrivateOptions, PrivateServer, StartOutcome};
use super::redact::redact;
use super::roles;
use super::tls::{SslMode, Tls, TlsSettings};
use crate::error::{Error, Result, describe_chain};

/// The PostgreSQL schema that holds crmbench's tables.
pub const SCHEMA: &str = "crm";

/// How the user chose a target. `Debug` shows the URL redacted.
#[derive(Clone, Default)]
pub struct TargetOptions {
    /// `--database-url` / `DATABASE_URL`: an existing server.
    pub database_url: Option<String>,
    /// `--allow-ddl`: crmbench may change an external server beyond its own schema.
    pub allow_ddl: bool,
    /// Settings of the private server.
    pub private: PrivateOptions,
    /// `--database`: work on this database instead of the default one.
    pub database: Option<String>,
}

impl fmt::Debug for TargetOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TargetOptions")
            .field("database_url", &self.database_url.as_deref().map(redact))
            .field("allow_ddl", &self.allow_ddl)
            .field("private", &self.private)
            .field("database", &self.database)
            .finish()
    }
}

/// A resolved target.
#[derive(Debug)]
pub enum Target {
    /// crmbench's own server, on one of its databases.
    Private {
        /// The server.
        server: PrivateServer,
        /// The database worked on (default [`private::DATABASE`]).
        database: String,
    },
    /// A server crmbench did not start.
    External(External),
}

/// A server given by URL (or key=value string). Only its parsed form is kept:
/// the driver's configuration and a description with the password hidden.
#[derive(Debug, Clone)]
pub struct External {
    config: Config,
    /// Rendered from the parsed options, password hidden.
    redacted: String,
    database: String,
    allow_ddl: bool,
    /// The TLS connector of the URL's sslmode, built once.
    tls: Tls,
}

/// One way to connect: a driver config, a printable label, and the role to
/// switch to after connecting (used on external servers for the app role).
#[derive(Debug, Clone)]
pub struct ConnSpec {
    /// Driver configuration (its `Debug` hides the password).
    pub config: Config,
    /// Redacted description for messages.
    pub label: String,
    /// `SET ROLE` after connecting.
    pub set_role: Option<String>,
    /// TLS as the connection string's sslmode asks (none on the private
    /// server's socket).
    pub tls: Tls,
}

impl Target {
    /// Resolve the target; for the private server, start it when `start` is true
    /// (initialising it if needed), else require that it exists.
    pub fn resolve(opts: &TargetOptions, start: bool) -> Result<(Target, Option<StartOutcome>)> {
        let (target, outcome) = Target::resolve_server(opts, start)?;
        Ok(match &opts.database {
            Some(db) => (target.on_database(db), outcome),
            None => (target, outcome),
        })
    }

    fn resolve_server(opts: &TargetOptions, start: bool) -> Result<(Target, Option<StartOutcome>)> {
        if let Some(url) = &opts.database_url {
            return Ok((
                Target::External(External::parse(url, opts.allow_ddl)?),
                None,
            ));
        }
        if start {
            let (server, outcome) = PrivateServer::ensure_running(&opts.private)?;
            return Ok((Target::private(server), Some(outcome)));
        }
        match PrivateServer::open(&opts.private)? {
            Some(server) => Ok((Target::private(server), None)),
            None => Err(Error::State {
                message: format!(
                    "no private server has been created in {}",
                    opts.private
                        .base_dir
                        .clone()
                        .unwrap_or_else(private::default_base_dir)
                        .display()
                ),
                fix: "run `crmbench pg start` first, or pass --database-url".into(),
            }),
        }
    }

    /// The private server, on its default database.
    pub fn private(server: PrivateServer) -> Target {
        Target::Private {
            server,
            database: private::DATABASE.into(),
        }
    }

    /// The same server, working on another database.
    pub fn on_database(&self, database: &str) -> Target {
        match self {
            Target::Private { server, .. } => Target::Private {
                server: server.clone(),
                database: database.into(),
            },
            Target::External(e) => {
                let mut e = e.clone();
                e.config.dbname(database);
                e.database = database.into();
                Target::External(e)
            }
        }
    }

    /// Whether this is a server given by URL.
    pub fn is_external(&self) -> bool {
        matches!(self, Target::External(_))
    }

    /// Whether crmbench may change the server beyond its own schema.
    pub fn ddl_allowed(&self) -> bool {
        match self {
            Target::Private { .. } => true,
            Target::External(e) => e.allow_ddl,
        }
    }

    /// Fail with [`Error::DdlNotAllowed`] unless DDL beyond the schema is allowed.
    pub fn require_ddl(&self, what: &str) -> Result<()> {
        if self.ddl_allowed() {
            Ok(())
        } else {
            Err(Error::DdlNotAllowed { what: what.into() })
        }
    }

    /// The benchmark database's name.
    pub fn database(&self) -> &str {
        match self {
            Target::Private { database, .. } => database,
            Target::External(e) => &e.database,
        }
    }

    /// Printable description, password redacted.
    pub fn describe(&self) -> String {
        match self {
            Target::Private { server: s, .. } => format!(
                "private PostgreSQL {} on port {} (data in {})",
                s.state().binaries.major,
                s.port(),
                s.base_dir().display()
            ),
            Target::External(e) => e.redacted.clone(),
        }
    }

    /// The privileged connection (superuser on the private server, the URL's
    /// user otherwise) to the benchmark database.
    pub fn admin(&self) -> ConnSpec {
        self.admin_to(self.database())
    }

    /// The privileged connection to another database on the same server.
    pub fn admin_to(&self, database: &str) -> ConnSpec {
        match self {
            // The private server's URLs carry no password (socket, trust).
            Target::Private { server: s, .. } => ConnSpec {
                label: s.url(private::SUPERUSER, database),
                config: with_search_path(s.config(private::SUPERUSER, database)),
                set_role: None,
                tls: Tls::none(),
            },
            Target::External(e) => {
                let mut config = e.config.clone();
                config.dbname(database);
                ConnSpec {
                    label: e.redacted.clone(),
                    config: with_search_path(config),
                    set_role: None,
                    tls: e.tls.clone(),
                }
            }
        }
    }

    /// The application role's connection: RLS applies to it.
    pub fn app(&self) -> ConnSpec {
        self.as_role(roles::APP)
    }

    /// The sampler's connection ([`roles::SAMPLER`]): tenant discovery and
    /// sampling.
    pub fn sampler(&self) -> ConnSpec {
        self.as_role(roles::SAMPLER)
    }

    /// A connection as `role`. On the private server crmbench logs in as the
    /// role itself (trust over its socket), so the session's user is the
    /// role and SQL cannot switch back to the superuser; on a URL target the
    /// URL's user switches to it with `SET ROLE` (all crmbench has there).
    pub fn as_role(&self, role: &str) -> ConnSpec {
        match self {
            Target::Private { server: s, .. } => ConnSpec {
                label: s.url(role, self.database()),
                config: with_search_path(s.config(role, self.database())),
                set_role: None,
                tls: Tls::none(),
            },
            Target::External(_) => {
                let mut spec = self.admin();
                spec.set_role = Some(role.into());
                spec
            }
        }
    }
}

impl External {
    /// Everything shown about the target comes from the parsed options;
    /// errors never quote the text (it holds the password).
    fn parse(url: &str, allow_ddl: bool) -> Result<External> {
        External::parse_with(url, allow_ddl, |var| std::env::var(var).ok(), home_dir())
    }

    /// Parse a `--database-url` (as `Target::resolve` does) with libpq's environment read through `env` and
    /// its files under `home` (tests pass their own).
    pub fn parse_with(
        url: &str,
        allow_ddl: bool,
        env: impl Fn(&str) -> Option<String>,
        home: Option<std::path::PathBuf>,
    ) -> Result<External> {
        let os_user = nix::unistd::User::from_uid(nix::unistd::geteuid())
            .ok()
            .flatten()
            .map(|u| u.name);
        let info = ConnInfo::parse(url)?.with_environment(&env, os_user);
        let mut config = info.config()?;
        let settings = TlsSettings::from_info(&info, home.as_deref())?;
        // libpq never negotiates TLS over a Unix socket.
        let all_sockets = config
            .get_hosts()
            .iter()
            .all(|h| matches!(h, Host::Unix(_)));
        config.ssl_mode(if all_sockets {
            DriverMode::Disable
        } else {
            settings.driver_mode()
        });
        let tls = Tls::new(settings)?;
        // libpq's order: the string, PGPASSWORD, then the password file.
        if config.get_password().is_none() {
            let password = env("PGPASSWORD")
                .filter(|p| !p.is_empty())
                .or_else(|| super::pgpass::password_for(&info, home.as_deref()));
            if let Some(password) = password {
                config.password(password);
            }
        }
        let redacted = info.to_string();
        let database = config
            .get_dbname()
            .or(config.get_user())
            .unwrap_or("postgres")
            .to_string();
        Ok(External {
            config,
            redacted,
            database,
            allow_ddl,
            tls,
        })
    }
}

/// libpq's home folder: `$HOME`, else the user's entry in the passwd file.
fn home_dir() -> Option<std::path::PathBuf> {
    std::env::var_os("HOME")
        .filter(|h| !h.is_empty())
        .map(std::path::PathBuf::from)
        .or_else(|| {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map(|u| u.dir)
        })
}

fn with_search_path(mut config: Config) -> Config {
    let path = format!("-c search_path={SCHEMA},public");
    let options = match config.get_options() {
        Some(existing) if !existing.is_empty() => format!("{existing} {path}"),
        _ => path,
    };
    config.options(&options);
    config
}

/// Open a connection, spawn its driver task on the current runtime, and apply
/// `set_role`. Errors name the (redacted) target.
pub async fn connect(spec: &ConnSpec) -> Result<Client> {
    let client = match open(spec).await {
        Ok(client) => client,
        // A mistyped --database: say which databases there are.
        Err(e) if e.code() == Some(&SqlState::INVALID_CATALOG_NAME) => {
            return Err(no_such_database(spec).await);
        }
        Err(e) => return Err(classify_connect_error(spec, e)),
    };
    if let Some(role) = &spec.set_role {
        client
            .batch_execute(&format!("SET ROLE {}", quote_ident(role)))
            .await
            .map_err(|e| Error::from_pg(format!("SET ROLE {role} on {}", spec.label), e))?;
    }
    Ok(client)
}

/// Connect with the spec's TLS and spawn the connection's driver task.
/// sslmode=allow: plain first, and TLS only when the server refuses plain.
async fn open(spec: &ConnSpec) -> std::result::Result<Client, tokio_postgres::Error> {
    let attempt = spec.config.connect(spec.tls.connector()).await;
    let (client, connection) = match attempt {
        Err(e)
            if spec.tls.settings().mode == SslMode::Allow
                && e.code().is_some_and(|c| c.code().starts_with("28")) =>
        {
            let mut config = spec.config.clone();
            config.ssl_mode(DriverMode::Require);
            config.connect(spec.tls.connector()).await?
        }
        other => other?,
    };
    tokio::spawn(async move {
        if let Err(e) = connection.await {
            tracing::debug!("connection closed: {e}");
        }
    });
    Ok(client)
}

/// [`Error::NoSuchDatabase`] for `spec`'s database, with the datasets and
/// clones crmbench knows on that server (read through its `postgres`
/// database; none when that fails too).
async fn no_such_database(spec: &ConnSpec) -> Error {
    let database = spec.config.get_dbname().unwrap_or_default().to_string();
    let mut config = spec.config.clone();
    config.dbname("postgres");
    let postgres = ConnSpec {
        config,
        ..spec.clone()
    };
    let known = match open(&postgres).await {
        Ok(client) => super::marker::known(&client).await.unwrap_or_default(),
        Err(_) => Vec::new(),
    };
    Error::NoSuchDatabase {
        database,
        target: spec.label.clone(),
        known: known
            .into_iter()
            .filter(|(_, kind)| *kind != super::marker::DatabaseKind::Working)
            .map(|(name, kind)| format!("{name} ({kind})"))
            .collect(),
    }
}

fn classify_connect_error(spec: &ConnSpec, e: tokio_postgres::Error) -> Error {
    let label = spec.label.as_str();
    let host = match spec.config.get_hosts().first() {
        Some(Host::Tcp(h)) => h.clone(),
        Some(Host::Unix(p)) => p.display().to_string(),
        None => String::new(),
    };
    if let Some(tls) = super::tls::explain_failure(label, &host, spec.tls.settings(), &e) {
        return tls;
    }
    if let Some(db) = e.as_db_error() {
        let code = db.code().code();
        if code.starts_with("28") {
            return Error::Auth {
                target: label.into(),
                detail: db.message().into(),
            };
        }
        return Error::from_pg(format!("connecting to {label}"), e);
    }
    Error::ConnectionRefused {
        target: label.into(),
        detail: describe_chain(&e),
    }
}

/// Quote an SQL identifier.
pub fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

/// Quote an SQL string literal.
pub fn quote_literal(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn external_url_is_redacted_everywhere() {
        let opts = TargetOptions {
            database_url: Some("postgres://u:topsecret@127.0.0.1:1/shop".into()),
            ..Default::default()
        };
        let (t, _) = Target::resolve(&opts, true).unwrap();
        assert_eq!(t.database(), "shop");
        assert!(!t.describe().contains("topsecret"));
        assert!(!t.admin().label.contains("topsecret"));
        assert!(!format!("{:?}", t.app().config).contains("topsecret"));
        assert_eq!(t.app().set_role.as_deref(), Some(roles::APP));
    }

    #[test]
    fn bad_url_error_is_redacted() {
        let opts = TargetOptions {
            database_url: Some("postgres://u:topsecret@host:notaport/db".into()),
            ..Default::default()
        };
        let err = Target::resolve(&opts, true).unwrap_err();
        assert!(!err.to_string().contains("topsecret"), "{err}");
    }

    #[test]
    fn url_with_unencoded_slash_in_password_is_refused_without_echo() {
        let opts = TargetOptions {
            database_url: Some("postgresql://u:Sl/ashPw?9@host/db".into()),
            ..Default::default()
        };
        let err = Target::resolve(&opts, true).unwrap_err();
        let text = format!("{err} {}", err.fix().unwrap_or_default());
        assert!(text.contains("percent-encode"), "{text}");
        for piece in ["Sl/", "ashPw", "?9"] {
            assert!(!text.contains(piece), "{text}");
        }
        assert!(!format!("{opts:?}").contains("ashPw"));
    }

    #[test]
    fn percent_encoded_password_reaches_the_driver_and_nothing_else() {
        let opts = TargetOptions {
            database_url: Some("postgresql://u:Sl%2FashPw%3F9@127.0.0.1:1/shop".into()),
            ..Default::default()
        };
        let (t, _) = Target::resolve(&opts, true).unwrap();
        assert_eq!(t.describe(), "postgresql://u:***@127.0.0.1:1/shop");
        assert_eq!(
            t.admin().config.get_password(),
            Some("Sl/ashPw?9".as_bytes())
        );
        assert!(!format!("{t:?} {opts:?}").contains("ashPw"));
    }

    #[test]
    fn external_ddl_needs_flag() {
        let mut opts = TargetOptions {
            database_url: Some("postgres://u@h/db".into()),
            ..Default::default()
        };
        let (t, _) = Target::resolve(&opts, true).unwrap();
        assert!(matches!(
            t.require_ddl("creating extension hypopg"),
            Err(Error::DdlNotAllowed { .. })
        ));
        opts.allow_ddl = true;
        let (t, _) = Target::resolve(&opts, true).unwrap();
        assert!(t.require_ddl("x").is_ok());
    }

    #[test]
    fn search_path_appends_to_user_options() {
        let mut c = Config::new();
        c.options("-c statement_timeout=5s");
        let c = with_search_path(c);
        assert_eq!(
            c.get_options(),
            Some("-c statement_timeout=5s -c search_path=crm,public")
        );
    }
}
