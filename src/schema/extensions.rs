//! HypoPG and pg_stat_statements in the benchmark database: created when
//! available (and allowed), reported either way, never fatal.

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::Target;

/// Extensions crmbench uses.
pub const WANTED: [&str; 2] = ["hypopg", "pg_stat_statements"];

/// The state of one extension after [`ensure`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ExtensionStatus {
    /// Extension name.
    pub name: String,
    /// Installed in the database now.
    pub installed: bool,
    /// One line for the user.
    pub note: String,
}

/// Create each wanted extension that is available; report the others.
pub async fn ensure(target: &Target, client: &Client) -> Result<Vec<ExtensionStatus>> {
    let mut out = Vec::new();
    for name in WANTED {
        out.push(ensure_one(target, client, name).await?);
    }
    Ok(out)
}

async fn ensure_one(target: &Target, client: &Client, name: &str) -> Result<ExtensionStatus> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = $1), \
                    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = $1)",
            &[&name],
        )
        .await
        .map_err(|e| Error::from_pg("checking extensions", e))?;
    let (installed, available): (bool, bool) = (row.get(0), row.get(1));
    let status = |installed: bool, note: String| ExtensionStatus {
        name: name.into(),
        installed,
        note,
    };
    if installed {
        return Ok(status(true, "installed".into()));
    }
    if !available {
        let hint = match name {
            "hypopg" => {
                "not available on this server (apt-get install postgresql-15-hypopg); \
                         the advisor builds real indexes instead"
            }
            _ => "not available on this server (it ships with the server's contrib package)",
        };
        return Ok(status(false, hint.into()));
    }
    if !target.ddl_allowed() {
        return Ok(status(
            false,
            "available but not created: pass --allow-ddl to let crmbench create it".into(),
        ));
    }
    match client
        .batch_execute(&format!(
            "CREATE EXTENSION IF NOT EXISTS {name} WITH SCHEMA public"
        ))
        .await
    {
        Ok(()) => Ok(status(true, "created".into())),
        Err(e) => Ok(status(
            false,
            format!(
                "could not be created: {}",
                Error::from_pg("CREATE EXTENSION", e)
            ),
        )),
    }
}
