//! The erasure's statements, run inside its transaction: a DELETE or an
//! UPDATE of the personal columns per step, each `RETURNING` the tenant of
//! every row it changed, so a row of another tenant stops the erasure at
//! once and the counts are what the proofs compare against.

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::pg_err;
use super::plan::Action;
use super::pseudonym::{self, Original};
use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// One statement: which rows of which table, and what to do with them.
#[derive(Debug, Clone)]
pub struct Statement {
    /// Table.
    pub table: String,
    /// SQL predicate selecting the rows.
    pub predicate: String,
    /// The column holding the tenant (the key, on the tenants table).
    pub tenant_column: String,
    /// Delete, pseudonymise or keep.
    pub action: Action,
}

/// What the statements changed.
#[derive(Debug, Default)]
pub struct Changes {
    /// Rows deleted per table.
    pub deleted: BTreeMap<String, u64>,
    /// Rows pseudonymised (updated) per table.
    pub updated: BTreeMap<String, u64>,
    /// The tenant column of every table changed.
    pub tenant_columns: BTreeMap<String, String>,
    /// The personal values overwritten, for the proof that none remains.
    pub originals: Vec<Original>,
}

/// Run `statements` in order; every returned row must be of `tenant`.
pub async fn run(
    tx: &Transaction<'_>,
    schema: &str,
    statements: &[Statement],
    personal: &BTreeMap<String, Vec<String>>,
    tenant: &str,
) -> Result<Changes> {
    let mut changes = Changes::default();
    for s in statements {
        let relation = format!("{}.{}", quote_ident(schema), quote_ident(&s.table));
        let returning = format!("RETURNING {}::text", quote_ident(&s.tenant_column));
        let sql = match s.action {
            Action::Keep => continue,
            Action::Delete => format!("DELETE FROM {relation} WHERE {} {returning}", s.predicate),
            Action::Pseudonymise => {
                let columns = personal.get(&s.table).cloned().unwrap_or_default();
                if columns.is_empty() {
                    return Err(Error::Usage {
                        message: format!(
                            "the policy pseudonymises {} but names none of its columns",
                            s.table
                        ),
                        fix: format!("list them: [pseudonymise] {} = [\"email\", …]", s.table),
                    });
                }
                let set = pseudonym::replacements(tx, schema, &s.table, &columns).await?;
                for r in &set {
                    let o = pseudonym::original(tx, &relation, &s.table, &s.predicate, r).await?;
                    changes.originals.push(o);
                }
                let set: Vec<String> = set.iter().map(|r| r.assignment()).collect();
                format!(
                    "UPDATE {relation} SET {} WHERE {} {returning}",
                    set.join(", "),
                    s.predicate
                )
            }
        };
        let rows = tx
            .query(&sql, &[])
            .await
            .map_err(pg_err(format!("erasing from {}", s.table)))?;
        if let Some(other) = rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .find(|t| t != tenant)
        {
            return Err(Error::State {
                message: format!(
                    "proof failed: changing {} returned a row of tenant {other}; rolled back",
                    s.table
                ),
                fix: "check the policy and the table's row-level security".into(),
            });
        }
        let counts = match s.action {
            Action::Delete => &mut changes.deleted,
            _ => &mut changes.updated,
        };
        *counts.entry(s.table.clone()).or_default() += rows.len() as u64;
        changes
            .tenant_columns
            .insert(s.table.clone(), s.tenant_column.clone());
    }
    Ok(changes)
}
