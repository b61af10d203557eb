//! `schema clone`: an identical copy of the benchmark database, statistics
//! included, for repeatable runs and paired before/after measurement.
//! `CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY` copies files instead of
//! writing WAL (711 MB in 1.7 s on this kind of machine).

use std::time::Instant;

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::{self, DATABASE_MARKER, Target, quote_ident, quote_literal};

/// What a clone took.
#[derive(Debug, Clone, Serialize)]
pub struct CloneReport {
    /// Source database.
    pub from: String,
    /// New database.
    pub to: String,
    /// Size of the copy, bytes.
    pub bytes: i64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl CloneReport {
    /// What `schema clone` prints.
    pub fn render(&self) -> String {
        format!(
            "crmbench: database {} cloned to {} ({:.0} MB in {:.1} s); use it with --database {}\n",
            self.from,
            self.to,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.to
        )
    }
}

/// What `schema drop-clone` prints: whether database `name` was `dropped`.
pub fn render_drop(name: &str, dropped: bool) -> String {
    if dropped {
        format!("crmbench: database {name} dropped\n")
    } else {
        format!("crmbench: no database {name}; nothing dropped\n")
    }
}

/// Whether `db` exists, and whether crmbench created it (its comment marker).
pub async fn database_state(client: &Client, db: &str) -> Result<Option<bool>> {
    let row = client
        .query_opt(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') = $2 \
             FROM pg_database WHERE datname = $1",
            &[&db, &DATABASE_MARKER],
        )
        .await
        .map_err(|e| Error::from_pg(format!("looking up database {db}"), e))?;
    Ok(row.map(|r| r.get(0)))
}

/// Copy the target's database to `to`. With `replace`, an existing `to` is
/// dropped first, only if crmbench created it.
pub async fn clone_database(target: &Target, to: &str, replace: bool) -> Result<CloneReport> {
    target.require_ddl(&format!("cloning database {} to {to}", target.database()))?;
    let from = target.database().to_string();
    if from == to {
        return Err(Error::Usage {
            message: format!("cannot clone database {from} onto itself"),
            fix: "pick another name with --to".into(),
        });
    }
    let client = pg::connect(&target.admin_to("postgres")).await?;
    match database_state(&client, to).await? {
        None => {}
        Some(true) if replace => {
            drop_database(target, to).await?;
        }
        Some(true) => {
            return Err(Error::State {
                message: format!("database {to} already exists"),
                fix: "pass --replace to recreate it, or pick another name".into(),
            });
        }
        Some(false) => {
            return Err(Error::NotOurs {
                action: format!("replace database {to}"),
                reason: "it was not created by crmbench (no marker comment)".into(),
            });
        }
    }
    let started = Instant::now();
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
        quote_ident(to),
        quote_ident(&from)
    );
    // A session crmbench itself just closed can take a moment to leave the
    // server: wait up to 3 s for the source to be free before giving up.
    let mut tries = 0;
    let created = loop {
        match client.batch_execute(&sql).await {
            Err(e) if tries < 15 && e.as_db_error().map(|d| d.code().code()) == Some("55006") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => break other,
        }
    };
    created.map_err(|e| {
        let err = Error::from_pg(sql.clone(), e);
        if err.sqlstate() == Some("55006") {
            Error::State {
                message: format!("{err}"),
                fix: format!(
                    "PostgreSQL copies a database only while nobody is connected to it: close other \
                     sessions on {from} (a psql, a running benchmark) and retry"
                ),
            }
        } else {
            err
        }
    })?;
    let comment = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(to),
        quote_literal(DATABASE_MARKER)
    );
    client
        .batch_execute(&comment)
        .await
        .map_err(|e| Error::from_pg(comment.clone(), e))?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: i64 = client
        .query_one("SELECT pg_database_size($1)", &[&to])
        .await
        .map_err(|e| Error::from_pg("sizing the clone", e))?
        .get(0);
    Ok(CloneReport {
        from,
        to: to.into(),
        bytes,
        seconds,
    })
}

/// Drop database `db`, only if crmbench created it and it is not the main one.
pub async fn drop_database(target: &Target, db: &str) -> Result<bool> {
    if db == target.database() {
        return Err(Error::State {
            message: format!("{db} is the benchmark database itself"),
            fix: "use `crmbench schema drop` to remove its schema".into(),
        });
    }
    let client = pg::connect(&target.admin_to("postgres")).await?;
    match database_state(&client, db).await? {
        None => Ok(false),
        Some(false) => Err(Error::NotOurs {
            action: format!("drop database {db}"),
            reason: "it was not created by crmbench (no marker comment)".into(),
        }),
        Some(true) => {
            let sql = format!("DROP DATABASE {} WITH (FORCE)", quote_ident(db));
            client
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::from_pg(sql.clone(), e))?;
            Ok(true)
        }
    }
}
