//! Data checks on a quiesced clone: with no workload writing, the
//! migration's units are applied once more, one at a time, measuring the
//! WAL each writes; the rows of every table the migration names are counted
//! before and after it (and after the rollback); and the user's validation
//! queries (`--validate`, each must return true) run after the migration
//! and after the rollback. Counts under load would move with the replayed
//! writes; here they move only with the migration.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::apply::Unit;
use super::model::{DataChecks, RowCount, StatementError, Validation, ValidationResult, WalRecord};
use super::rules;
use crate::error::{Error, Result};
use crate::pg::{self, Target};

/// The checks on `copy` (a fresh clone nothing else uses).
pub async fn check(
    copy: &Target,
    units: &[Unit],
    rollback: Option<&[Unit]>,
    validate: &[Unit],
) -> Result<DataChecks> {
    let client = pg::connect(&copy.admin()).await?;
    client
        .batch_execute("SET application_name = 'crmbench rehearse: data checks'")
        .await
        .map_err(|e| Error::from_pg("starting the data checks' connection", e))?;
    let wal_level: String = client
        .query_one("SHOW wal_level", &[])
        .await
        .map_err(|e| Error::from_pg("SHOW wal_level", e))?
        .get(0);
    let tables = named_tables(units);
    let before = counts(&client, &tables).await;
    let (statements, failure) = apply_measuring_wal(&client, units).await?;
    let after = counts(&client, &tables).await;
    let mut validations = run_validations(&client, validate).await;
    let mut after_rollback = None;
    if let (Some(rollback), None) = (rollback, &failure) {
        // The rollback's own failure is the rollback check's to report.
        apply_measuring_wal(&client, rollback).await?;
        after_rollback = Some(counts(&client, &tables).await);
        let again = run_validations(&client, validate).await;
        for (v, r) in validations.iter_mut().zip(again) {
            v.after_rollback = Some(r.after_migration);
        }
    }
    let row_counts = tables
        .iter()
        .enumerate()
        .map(|(i, t)| RowCount {
            table: t.clone(),
            before: before[i],
            after: after[i],
            after_rollback: after_rollback.as_ref().and_then(|a| a[i]),
        })
        .collect();
    Ok(DataChecks {
        wal_comparable: wal_comparable(&wal_level),
        wal_level,
        statements,
        failure,
        row_counts,
        validations,
    })
}

/// WAL figures are comparable with production only when the server logs
/// what production logs: under `minimal`, index builds, table rewrites and
/// writes to tables created in the same transaction skip WAL.
pub fn wal_comparable(wal_level: &str) -> bool {
    wal_level != "minimal"
}

/// Every table the migration's statements lock, in order of first mention.
fn named_tables(units: &[Unit]) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for u in units {
        for lock in rules::statement_locks(&u.text) {
            if seen.insert(lock.table.clone()) {
                out.push(lock.table);
            }
        }
    }
    out
}

/// Rows of each table (None: it does not exist, or cannot be read).
async fn counts(client: &Client, tables: &[String]) -> Vec<Option<i64>> {
    let mut out = Vec::with_capacity(tables.len());
    for t in tables {
        let name: Vec<String> = t.split('.').map(pg::quote_ident).collect();
        let sql = format!("SELECT count(*) FROM {}", name.join("."));
        out.push(
            client
                .query_one(&sql, &[])
                .await
                .ok()
                .map(|r| r.get::<_, i64>(0)),
        );
    }
    out
}

/// Apply `units` one by one with the WAL each wrote (the server's insert
/// position before and after: other databases' writes would count too,
/// which is why nothing else runs now). Stops at the first error.
async fn apply_measuring_wal(
    client: &Client,
    units: &[Unit],
) -> Result<(Vec<WalRecord>, Option<StatementError>)> {
    let mut out = Vec::new();
    for u in units {
        let start = lsn(client).await?;
        let clock = std::time::Instant::now();
        let result = client.batch_execute(&u.text).await;
        let duration_ms = clock.elapsed().as_secs_f64() * 1e3;
        if let Err(e) = result {
            let _ = client.batch_execute("ROLLBACK").await;
            return Ok((out, Some(super::apply::statement_error(&e))));
        }
        let bytes: f64 = client
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), $1::text::pg_lsn)::float8",
                &[&start],
            )
            .await
            .map_err(|e| Error::from_pg("reading the WAL position", e))?
            .get(0);
        out.push(WalRecord {
            file: u.file.clone(),
            line: u.line,
            duration_ms,
            wal_bytes: bytes as i64,
        });
    }
    Ok((out, None))
}

async fn lsn(client: &Client) -> Result<String> {
    Ok(client
        .query_one("SELECT pg_current_wal_insert_lsn()::text", &[])
        .await
        .map_err(|e| Error::from_pg("reading the WAL position", e))?
        .get(0))
}

/// Each validation query's answer now (as `after_migration`).
async fn run_validations(client: &Client, validate: &[Unit]) -> Vec<Validation> {
    let mut out = Vec::new();
    for v in validate {
        out.push(Validation {
            file: v.file.clone(),
            line: v.line,
            query: v.text.trim().to_string(),
            after_migration: validation_result(client.query_opt(v.text.as_str(), &[]).await),
            after_rollback: None,
        });
    }
    out
}

/// A validation passes only on exactly `true` in its first column.
fn validation_result(
    row: std::result::Result<Option<tokio_postgres::Row>, tokio_postgres::Error>,
) -> ValidationResult {
    let (passed, detail) = match row {
        Ok(None) => (false, "returned no row".to_string()),
        Ok(Some(row)) => match row.try_get::<_, Option<bool>>(0) {
            Ok(Some(true)) => (true, "true".into()),
            Ok(Some(false)) => (false, "false".into()),
            Ok(None) => (false, "NULL".into()),
            Err(_) => (false, "its first column is not a boolean".into()),
        },
        Err(e) => {
            let err = super::apply::statement_error(&e);
            (
                false,
                format!("{} (SQLSTATE {})", err.message, err.sqlstate),
            )
        }
    };
    ValidationResult { passed, detail }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wal_under_minimal_is_not_comparable() {
        assert!(!wal_comparable("minimal"));
        assert!(wal_comparable("replica"));
        assert!(wal_comparable("logical"));
    }

    #[test]
    fn tables_are_named_once_in_order() {
        let units = [
            Unit {
                file: "m.sql".into(),
                line: 1,
                text: "ALTER TABLE shop.items ADD COLUMN note text".into(),
            },
            Unit {
                file: "m.sql".into(),
                line: 2,
                text: "CREATE INDEX ON shop.orders (id); CREATE INDEX ON shop.items (note)".into(),
            },
        ];
        assert_eq!(named_tables(&units), ["shop.items", "shop.orders"]);
    }
}
