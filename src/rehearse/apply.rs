//! Applying a migration on its own connection, the way it will reach the
//! server in deployment (`--apply-as`): one statement at a time, or each
//! file as one multi-statement query (one implicit transaction). The first
//! error stops it, as psql's `ON_ERROR_STOP` and Prisma Migrate do.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Instant;

use tokio_postgres::Client;

use super::input::{ApplyAs, Migration};
use super::model::{Failure, StatementError, StatementRecord};
use crate::error::Result;
use crate::sql;

/// What is sent in one round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unit {
    /// Migration file.
    pub file: String,
    /// Line it starts on.
    pub line: usize,
    /// The SQL sent.
    pub text: String,
}

/// The units of `migration` under `apply_as`.
pub fn units(migration: &Migration, apply_as: ApplyAs) -> Result<Vec<Unit>> {
    let mut out = Vec::new();
    for file in &migration.files {
        if apply_as.whole_file() {
            out.push(Unit {
                file: file.name.clone(),
                line: 1,
                text: file.text.clone(),
            });
            continue;
        }
        let statements = sql::split(&file.text).map_err(|e| crate::error::Error::Usage {
            message: format!("{}: PostgreSQL's parser refuses it: {e}", file.name),
            fix: "fix the SQL".into(),
        })?;
        for st in statements {
            let code = sql::code_start(st.text);
            out.push(Unit {
                file: file.name.clone(),
                line: sql::line_of(&file.text, st.offset + code),
                text: st.text.to_string(),
            });
        }
    }
    Ok(out)
}

/// Apply `units` in order on `client`, publishing the running unit's index
/// in `current` (−1 between units) for the sampler; times on `clock`.
pub async fn apply(
    client: &Client,
    units: &[Unit],
    current: &Arc<AtomicI64>,
    clock: Instant,
) -> (Vec<StatementRecord>, Option<Failure>) {
    let mut records = Vec::new();
    for (i, unit) in units.iter().enumerate() {
        let start = clock.elapsed().as_secs_f64();
        current.store(i as i64, Ordering::Release);
        let result = client.batch_execute(&unit.text).await;
        current.store(-1, Ordering::Release);
        let end = clock.elapsed().as_secs_f64();
        let code = sql::code_start(&unit.text);
        let error = result.err().map(|e| statement_error(&e));
        records.push(StatementRecord {
            file: unit.file.clone(),
            line: unit.line,
            text: unit.text[code..].lines().next().unwrap_or("").to_string(),
            start_s: start,
            end_s: end,
            duration_ms: (end - start) * 1e3,
            takes: super::rules::statement_locks(&unit.text)
                .into_iter()
                .map(|l| super::model::HeldLock {
                    table: l.table,
                    mode: l.mode,
                })
                .collect(),
            error: error.clone(),
            ..Default::default()
        });
        if let Some(error) = error {
            // A failed implicit transaction rolled back; an explicit one is
            // left aborted: end it so the connection can clean up.
            let _ = client.batch_execute("ROLLBACK").await;
            let cleanup = invalid_indexes(client).await;
            let failure = Failure {
                statement: i,
                meaning: meaning(&error.sqlstate).to_string(),
                error,
                cleanup,
            };
            return (records, Some(failure));
        }
    }
    (records, None)
}

/// The server's error as recorded.
pub(super) fn statement_error(e: &tokio_postgres::Error) -> StatementError {
    match e.as_db_error() {
        Some(db) => StatementError {
            sqlstate: db.code().code().to_string(),
            message: db.message().to_string(),
        },
        None => StatementError {
            sqlstate: "08006".into(),
            message: e.to_string(),
        },
    }
}

/// What a deployment should do about each SQLSTATE a migration meets.
pub fn meaning(sqlstate: &str) -> &'static str {
    match sqlstate {
        "25001" => {
            "a CONCURRENTLY statement ran inside a transaction block: send it alone (its own migration file, or --apply-as statement)"
        }
        "55P03" => {
            "lock_timeout expired while waiting for a lock: retry later, after the long transaction holding it ends"
        }
        "40P01" => "deadlock with the workload: take locks in the workload's order, or retry",
        "57014" => "statement_timeout cancelled it",
        "23505" => "a unique index or constraint found duplicates: clean the data first",
        _ => "the server refused the statement",
    }
}

/// `DROP INDEX CONCURRENTLY` for every INVALID index (what a failed
/// `CREATE INDEX CONCURRENTLY` leaves behind).
async fn invalid_indexes(client: &Client) -> Vec<String> {
    let sql = "SELECT format('DROP INDEX CONCURRENTLY %s;', i.indexrelid::regclass) FROM pg_index i \
               WHERE NOT i.indisvalid ORDER BY 1";
    match client.query(sql, &[]).await {
        Ok(rows) => rows.iter().map(|r| r.get(0)).collect(),
        Err(_) => Vec::new(),
    }
}
