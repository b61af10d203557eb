//! HypoPG and pg_stat_statements in the benchmark database: created when
//! available (and allowed), reported either way, never fatal.

use serde::Serialize;
use tokio_postgres::Client;

use crate::console::err_line;
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

/// HypoPG for one `advise`: whether what-if costing can use it, and whether
/// crmbench created it for this run (then [`HypoPg::finish`] drops it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HypoPg {
    /// The database had it already.
    Installed,
    /// crmbench created it for this run (`--allow-ddl`).
    CreatedForRun,
    /// Not usable: costing falls back to real indexes on a clone.
    Missing,
}

/// What the fallback costs, said whenever HypoPG is not used.
const WITHOUT_HYPOPG: &str = "what-if with HypoPG costs each candidate index in milliseconds \
    and writes nothing; without it every candidate is built for real on a clone of the \
    database (seconds to minutes each, by table size: 0.3 s against 80 s on the CRM's \
    largest tables)";

/// Make HypoPG usable in the target's database when it can be: used if
/// created, created (and announced) when available and DDL is allowed,
/// otherwise the reason and the fix are printed and costing falls back.
pub async fn hypopg_on_demand(target: &Target, client: &Client, keep: bool) -> Result<HypoPg> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg'), \
                    EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'hypopg')",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking for hypopg", e))?;
    let (installed, available): (bool, bool) = (row.get(0), row.get(1));
    let db = target.database();
    if installed {
        return Ok(HypoPg::Installed);
    }
    if !available {
        err_line(format!(
            "advise: HypoPG is not installed on this server (apt-get install \
             postgresql-NN-hypopg there); {WITHOUT_HYPOPG}. Costing with real indexes now."
        ));
        return Ok(HypoPg::Missing);
    }
    if !target.ddl_allowed() {
        err_line(format!(
            "advise: HypoPG is available on this server but not created in database {db}: \
             pass --allow-ddl to let crmbench create it for this run (and drop it afterwards), \
             or run CREATE EXTENSION hypopg there yourself; {WITHOUT_HYPOPG}. Costing with \
             real indexes now."
        ));
        return Ok(HypoPg::Missing);
    }
    match client.batch_execute("CREATE EXTENSION hypopg").await {
        Ok(()) => {
            let after = if keep {
                "it stays after advise ends (--keep-hypopg)"
            } else {
                "it is dropped when advise ends (--keep-hypopg keeps it)"
            };
            err_line(format!(
                "advise: created extension hypopg in database {db} for this run (--allow-ddl); \
                 {after}"
            ));
            Ok(HypoPg::CreatedForRun)
        }
        Err(e) => {
            err_line(format!(
                "advise: HypoPG is available but could not be created in database {db} ({}); \
                 a superuser can run CREATE EXTENSION hypopg there; {WITHOUT_HYPOPG}. Costing \
                 with real indexes now.",
                Error::from_pg("CREATE EXTENSION hypopg", e)
            ));
            Ok(HypoPg::Missing)
        }
    }
}

impl HypoPg {
    /// Whether what-if costing can use HypoPG.
    pub fn usable(self) -> bool {
        self != HypoPg::Missing
    }

    /// Drop the extension if this run created it (never one that was
    /// there), unless `keep` (`--keep-hypopg`) asks to leave it.
    pub async fn finish(self, target: &Target, keep: bool) -> Result<()> {
        if self != HypoPg::CreatedForRun {
            return Ok(());
        }
        if keep {
            err_line(format!(
                "advise: kept extension hypopg in database {} (--keep-hypopg); \
                 DROP EXTENSION hypopg removes it",
                target.database()
            ));
            return Ok(());
        }
        let client = crate::pg::connect(&target.admin()).await?;
        client
            .batch_execute("DROP EXTENSION IF EXISTS hypopg")
            .await
            .map_err(|e| Error::from_pg("DROP EXTENSION hypopg", e))?;
        err_line(format!(
            "advise: dropped extension hypopg from database {}, which this run created",
            target.database()
        ));
        Ok(())
    }
}
