//! The library's error type: kinds a caller can branch on, each carrying what
//! happened, where, and (through [`Error::fix`]) what the user can do about it.

use std::path::PathBuf;

/// Result alias used across the library.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything that can go wrong in crmbench, by kind.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// No usable PostgreSQL server binaries were found.
    #[error("PostgreSQL server binaries not found (looked in: {searched})")]
    BinariesNotFound {
        /// Places that were tried, in order.
        searched: String,
    },

    /// The server could not be reached at all.
    #[error("cannot connect to {target}: {detail}")]
    ConnectionRefused {
        /// Redacted description of the server.
        target: String,
        /// What the driver said.
        detail: String,
    },

    /// The server refused the credentials.
    #[error("authentication failed for {target}: {detail}")]
    Auth {
        /// Redacted description of the server.
        target: String,
        /// What the server said.
        detail: String,
    },

    /// The connected role lacks something crmbench needs.
    #[error("missing privilege: {privilege}")]
    MissingPrivilege {
        /// The privilege, named as PostgreSQL names it.
        privilege: String,
        /// How to grant it or avoid needing it.
        fix: String,
    },

    /// The server answered with an error.
    #[error("{context}: {message} (SQLSTATE {sqlstate})")]
    Server {
        /// What crmbench was doing (the statement, table or file).
        context: String,
        /// Five-character SQLSTATE.
        sqlstate: String,
        /// The server's message (and detail, if any).
        message: String,
    },

    /// The connection broke in the middle of work.
    #[error("{context}: connection lost: {detail}")]
    ConnectionLost {
        /// What crmbench was doing.
        context: String,
        /// What the driver said.
        detail: String,
    },

    /// The driver failed on the client side (encoding, protocol).
    #[error("{context}: {detail}")]
    Driver {
        /// What crmbench was doing.
        context: String,
        /// What the driver said.
        detail: String,
    },

    /// A destructive action was refused because crmbench does not own the object.
    #[error("refusing to {action}: {reason}")]
    NotOurs {
        /// What was refused (e.g. "drop schema crm in database shop").
        action: String,
        /// Why crmbench thinks it is not its own.
        reason: String,
    },

    /// The database to work on does not exist. Only `generate` and `schema
    /// create` (and `pg start`, for the default one) create it: any other
    /// command refuses, listing the databases crmbench knows there.
    #[error("database {database} does not exist on {target}")]
    NoSuchDatabase {
        /// The missing database.
        database: String,
        /// Redacted description of the server.
        target: String,
        /// crmbench's datasets and clones on that server, as "name (kind)".
        known: Vec<String>,
    },

    /// A change beyond crmbench's own schema on an external server, without `--allow-ddl`.
    #[error("{what} on an external server needs --allow-ddl")]
    DdlNotAllowed {
        /// The change that was about to be made.
        what: String,
    },

    /// The private server failed to initialise, start or stop.
    #[error("private PostgreSQL: {what}")]
    PrivateServer {
        /// What failed, in one line.
        what: String,
        /// The tail of the server log, when there is one.
        log: String,
        /// Suggested fix.
        fix: String,
    },

    /// The user interrupted the work (Ctrl-C).
    #[error("interrupted while {during}")]
    Interrupted {
        /// What was under way.
        during: String,
    },

    /// A workload file is malformed or does not fit the database.
    #[error("{}:{line}: {}{message}", file.display(), query.as_ref().map(|q| format!("query `{q}`: ")).unwrap_or_default())]
    Workload {
        /// The workload file.
        file: PathBuf,
        /// 1-based line (0 when unknown).
        line: usize,
        /// The query's name, when the problem is in one.
        query: Option<String>,
        /// What is wrong.
        message: String,
    },

    /// Invalid input from the user: a flag, a connection string, a value
    /// out of range.
    #[error("{message}")]
    Usage {
        /// The problem.
        message: String,
        /// The fix.
        fix: String,
    },

    /// The server, a database or a folder is not in the state the command
    /// needs (a dataset already there, no CRM schema, an extension missing,
    /// a database in use, a change made by someone else meanwhile).
    #[error("{message}")]
    State {
        /// What was found.
        message: String,
        /// What to do about it.
        fix: String,
    },

    /// A run-folder file crmbench cannot use: damaged, of a format_version
    /// it does not read, or unable to decide anything (a partial run).
    #[error("{message}")]
    RunFile {
        /// The file and the problem.
        message: String,
        /// What to do about it.
        fix: String,
    },

    /// A bug in crmbench: a worker thread panicked, an invariant broke.
    #[error("{message}")]
    Internal {
        /// What went wrong.
        message: String,
        /// A more specific hint than "report it", when there is one.
        fix: String,
    },

    /// A file or directory operation failed.
    #[error("{action} {}: {source}", path.display())]
    Io {
        /// What was being done ("reading", "creating directory" …).
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },

    /// A report's plot could not be drawn.
    #[error("drawing the plot {plot}: {detail}")]
    Plot {
        /// Which plot.
        plot: String,
        /// What the plotting library said.
        detail: String,
    },

    /// A JSON file could not be parsed or written.
    #[error("{action} {}: {source}", path.display())]
    Json {
        /// What was being done.
        action: &'static str,
        /// The path involved.
        path: PathBuf,
        /// The parser's error.
        source: serde_json::Error,
    },

    /// TLS could not be negotiated as the connection's `sslmode` asks.
    #[error("cannot connect to {target}: {problem}")]
    Tls {
        /// Redacted description of the server.
        target: String,
        /// What failed, naming the sslmode.
        problem: String,
        /// What to change.
        fix: String,
    },
}

impl Error {
    /// A one-line suggestion for the user, when there is one.
    pub fn fix(&self) -> Option<String> {
        match self {
            Error::BinariesNotFound { .. } => Some(
                "install the server (apt-get install postgresql-15 postgresql-15-hypopg) \
                 or pass --pg-bindir DIR / set CRMBENCH_PG_BINDIR"
                    .into(),
            ),
            Error::ConnectionRefused { .. } => Some(
                "check that the server runs and the URL is right; for the private server run \
                 `crmbench pg start`"
                    .into(),
            ),
            Error::Auth { .. } => Some("check the user and password in the URL".into()),
            Error::MissingPrivilege { fix, .. }
            | Error::PrivateServer { fix, .. }
            | Error::Usage { fix, .. }
            | Error::State { fix, .. }
            | Error::RunFile { fix, .. }
            | Error::Tls { fix, .. } => (!fix.is_empty()).then(|| fix.clone()),
            Error::Internal { fix, .. } if !fix.is_empty() => Some(fix.clone()),
            Error::Internal { .. } => Some(
                "this is a bug in crmbench: please report it with the command and its -v output"
                    .into(),
            ),
            Error::NotOurs { .. } => Some(
                "crmbench only drops what it created (its metadata marker is missing or foreign); \
                 use another database or schema, or remove the objects yourself"
                    .into(),
            ),
            Error::NoSuchDatabase { database, known, .. } => {
                let create = format!(
                    "or create it with `crmbench --database {database} generate` (or `schema create`)"
                );
                Some(if known.is_empty() {
                    format!("no database there carries crmbench's marker; check the name, {create}")
                } else {
                    format!(
                        "crmbench's databases there: {}; name one with --database, {create}",
                        known.join(", ")
                    )
                })
            }
            Error::DdlNotAllowed { .. } => Some(
                "pass --allow-ddl if crmbench may change this server, or make the change yourself"
                    .into(),
            ),
            Error::Interrupted { .. } => Some(
                "nothing half-done is kept as complete; run the command again (generate: with --replace)"
                    .into(),
            ),
            // A parameter the server cannot type: a cast in the statement
            // tells it (issue 16 item 12).
            Error::Server { sqlstate, .. } if sqlstate == "42P18" => Some(
                "give the parameter a type with a cast in the statement, e.g. $1::int or \
                 $1::text"
                    .into(),
            ),
            Error::Server { sqlstate, .. } if sqlstate == "42883" => Some(
                "if an argument is a parameter ($1) or an untyped literal, cast it to the type \
                 the function or operator takes (e.g. lower($1::text), $1::int + 1)"
                    .into(),
            ),
            Error::Io { source, .. } if source.raw_os_error() == Some(nix::libc::ENOSPC) => {
                Some("the disk is full: free space or choose another directory".into())
            }
            _ => None,
        }
    }

    /// The message with its fix, as the CLI prints it (`… — fix: …`): for
    /// errors kept in a file (a statement's EXPLAIN error in plans.json).
    pub fn with_fix(&self) -> String {
        match self.fix() {
            Some(fix) => format!("{self} — fix: {fix}"),
            None => self.to_string(),
        }
    }

    /// Extra lines worth showing under the error (a server log tail).
    pub fn details(&self) -> Option<&str> {
        match self {
            Error::PrivateServer { log, .. } if !log.is_empty() => Some(log),
            _ => None,
        }
    }

    /// The SQLSTATE the server sent, when the error came from the server.
    pub fn sqlstate(&self) -> Option<&str> {
        match self {
            Error::Server { sqlstate, .. } => Some(sqlstate),
            _ => None,
        }
    }

    /// Classify a driver error, naming what crmbench was doing.
    pub fn from_pg(context: impl Into<String>, err: tokio_postgres::Error) -> Error {
        let context = context.into();
        if let Some(db) = err.as_db_error() {
            let mut message = db.message().to_string();
            if let Some(detail) = db.detail() {
                message.push_str(" — ");
                message.push_str(detail);
            }
            let sqlstate = db.code().code().to_string();
            if sqlstate.starts_with("28") {
                return Error::Auth {
                    target: context,
                    detail: message,
                };
            }
            return Error::Server {
                context,
                sqlstate,
                message,
            };
        }
        if err.is_closed() || socket_failed(&err) || describe_chain(&err).contains("connection") {
            return Error::ConnectionLost {
                context,
                detail: describe_chain(&err),
            };
        }
        Error::Driver {
            context,
            detail: describe_chain(&err),
        }
    }

    /// Build an [`Error::Io`].
    pub fn io(action: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            action,
            path: path.into(),
            source,
        }
    }
}

/// Whether the driver's error came from the socket (reset by peer, broken
/// pipe: the server went away mid-work), which tokio-postgres reports as an
/// I/O error rather than a closed connection.
pub fn socket_failed(err: &(dyn std::error::Error + 'static)) -> bool {
    let mut source = err.source();
    while let Some(s) = source {
        if s.is::<std::io::Error>() {
            return true;
        }
        source = s.source();
    }
    false
}

/// Join an error and its sources into one line ("a: b: c").
pub fn describe_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(s) = source {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An error caused by a socket failure, as tokio-postgres wraps one.
    #[derive(Debug)]
    struct Wrapped(std::io::Error);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("error communicating with the server")
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    /// "Connection reset by peer" (capitalised, so no text match finds it)
    /// is the server gone, not a client bug: a crash restart must be waited
    /// out, not end the run.
    #[test]
    fn a_reset_socket_is_a_lost_connection() {
        let reset = Wrapped(std::io::Error::from(std::io::ErrorKind::ConnectionReset));
        assert!(socket_failed(&reset));
        let plain = std::io::Error::other("no source");
        assert!(!socket_failed(&plain));
    }

    /// Issue 16 item 12: a server error a cast fixes says so.
    #[test]
    fn untyped_parameter_errors_carry_the_cast_fix() {
        let server = |sqlstate: &str| Error::Server {
            context: "EXPLAIN".into(),
            sqlstate: sqlstate.into(),
            message: "could not determine data type of parameter $1".into(),
        };
        assert!(
            server("42P18")
                .with_fix()
                .contains("— fix: give the parameter a type")
        );
        assert!(
            server("42883")
                .fix()
                .is_some_and(|f| f.contains("$1::text"))
        );
        assert_eq!(server("23505").fix(), None);
    }
}
