//! The proofs an erasure must pass before COMMIT, each read as the
//! connecting role (every tenant's rows visible), each a failure that rolls
//! everything back and names the table:
//!
//! 1. no row references the subject (unless the subject row is kept
//!    pseudonymised, when the rows the policy deletes must be gone);
//! 2. no personal value of the subject remains in a pseudonymised column;
//! 3. the transaction's own counters (`pg_stat_xact_user_tables`) equal
//!    what the statements returned: a cascade, trigger or foreign-key
//!    action (none passes through row-level security) is a surplus;
//! 4. every row version this transaction wrote (`xmin` = its id) is of the
//!    subject's tenant and their number is what was pseudonymised. Deleted
//!    rows leave no such trace once committed, hence proof 3 for them.

use std::collections::BTreeMap;

use tokio_postgres::Transaction;

use super::Context;
use super::pg_err;
use super::plan::{Action, Subject};
use super::run::Changes;
use crate::error::{Error, Result};
use crate::pg::{quote_ident, quote_literal};

/// Every proof, in order; the lines that held.
pub async fn all(tx: &Transaction<'_>, cx: &Context<'_>, changes: &Changes) -> Result<Vec<String>> {
    Ok(vec![
        no_reference_left(tx, cx).await?,
        no_personal_value_left(tx, cx, changes).await?,
        nothing_else_touched(tx, cx.schema, changes).await?,
        written_rows_in_tenant(tx, cx, changes).await?,
    ])
}

fn proof_failed(message: String, fix: String) -> Error {
    Error::State {
        message: format!("proof failed: {message}; rolled back"),
        fix,
    }
}

/// The (table, predicate) pairs that must select no row.
fn reference_checks(cx: &Context<'_>) -> Vec<(String, String)> {
    let mut checks: Vec<(String, String)> = Vec::new();
    let t = cx.tenant;
    match cx.subject {
        Subject::Row { table, key, id } => {
            // A pseudonymised subject stays; what references it may stay too,
            // except the rows the policy deletes.
            let subject_gone = (cx.action)(table) == Action::Delete;
            if subject_gone {
                checks.push((
                    table.clone(),
                    format!(
                        "{} = {} AND {} = {}",
                        quote_ident(cx.column),
                        quote_literal(t),
                        quote_ident(key),
                        quote_literal(id)
                    ),
                ));
            }
            // Rows holding the subject's key directly, through a foreign key.
            for k in cx
                .keys
                .iter()
                .filter(|k| k.kind == 'f' && &k.foreign_table == table)
                .filter(|k| subject_gone || (cx.action)(&k.table) == Action::Delete)
            {
                let conds: Vec<String> = k
                    .columns
                    .iter()
                    .zip(&k.foreign_columns)
                    .map(|(c, f)| {
                        let v = if f == key {
                            id.as_str()
                        } else if *f == cx.column {
                            t
                        } else {
                            ""
                        };
                        format!("{}::text = {}", quote_ident(c), quote_literal(v))
                    })
                    .collect();
                checks.push((k.table.clone(), conds.join(" AND ")));
            }
            for r in cx
                .references
                .iter()
                .filter(|r| subject_gone || r.action == Action::Delete)
            {
                checks.push((r.table.clone(), r.predicate.clone()));
            }
        }
        Subject::Tenant => {
            for s in cx
                .statements
                .iter()
                .filter(|s| s.action != Action::Pseudonymise)
            {
                checks.push((s.table.clone(), s.predicate.clone()));
            }
        }
    }
    checks
}

/// Proof 1: nothing references the subject any more.
async fn no_reference_left(tx: &Transaction<'_>, cx: &Context<'_>) -> Result<String> {
    let checks = reference_checks(cx);
    for (table, pred) in &checks {
        let sql = format!(
            "SELECT count(*) FROM {}.{} WHERE {pred}",
            quote_ident(cx.schema),
            quote_ident(table)
        );
        let left: i64 = tx
            .query_one(&sql, &[])
            .await
            .map_err(pg_err(format!("proving {table}")))?
            .get(0);
        if left > 0 {
            return Err(proof_failed(
                format!("{left} row(s) of {table} still reference the subject"),
                format!(
                    "give {table} the action delete (or pseudonymise) in the policy, or declare how it references the subject"
                ),
            ));
        }
    }
    Ok(format!(
        "no row references the subject ({} checks, every tenant's rows read)",
        checks.len()
    ))
}

/// Proof 2: no pseudonymised column still holds one of the subject's values.
async fn no_personal_value_left(
    tx: &Transaction<'_>,
    cx: &Context<'_>,
    changes: &Changes,
) -> Result<String> {
    for o in &changes.originals {
        let relation = format!("{}.{}", quote_ident(cx.schema), quote_ident(&o.table));
        let left = o.remaining(tx, &relation).await?;
        if left > 0 {
            return Err(proof_failed(
                format!(
                    "{left} row(s) of {} still hold the subject's {}",
                    o.table, o.replacement.column
                ),
                format!("check what writes {}.{}", o.table, o.replacement.column),
            ));
        }
    }
    let values: usize = changes.originals.iter().map(|o| o.values.len()).sum();
    Ok(format!(
        "no personal value of the subject remains ({} columns pseudonymised, {values} values checked)",
        changes.originals.len()
    ))
}

/// Proof 3: the transaction's own counters equal the statements' counts.
async fn nothing_else_touched(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<String> {
    let rows = tx
        .query(
            "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables \
             WHERE schemaname = $1 AND n_tup_ins + n_tup_upd + n_tup_del > 0",
            &[&schema],
        )
        .await
        .map_err(pg_err("reading pg_stat_xact_user_tables"))?;
    let ours = |m: &BTreeMap<String, u64>, t: &str| m.get(t).copied().unwrap_or(0);
    for r in &rows {
        let (table, ins, upd, del): (String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let (d, u) = (
            ours(&changes.deleted, &table),
            ours(&changes.updated, &table),
        );
        if ins != 0 || u64::try_from(upd).ok() != Some(u) || u64::try_from(del).ok() != Some(d) {
            return Err(proof_failed(
                format!(
                    "{table} changed beyond crmbench's statements (inserted {ins}, updated {upd}, deleted {del}; crmbench deleted {d}, pseudonymised {u}): a cascade, trigger or foreign-key action"
                ),
                format!("list {table} in the policy, or remove the action that changes it"),
            ));
        }
    }
    Ok(format!(
        "the transaction changed only the rows crmbench deleted or pseudonymised, all in tenant ({} tables)",
        rows.len()
    ))
}

/// Proof 4: the row versions this transaction wrote, found by `xmin`.
async fn written_rows_in_tenant(
    tx: &Transaction<'_>,
    cx: &Context<'_>,
    changes: &Changes,
) -> Result<String> {
    let mut seen = 0;
    for (table, &updated) in &changes.updated {
        let column = changes
            .tenant_columns
            .get(table)
            .map_or(cx.column, String::as_str);
        let sql = format!(
            "SELECT count(*), count(*) FILTER (WHERE {}::text IS DISTINCT FROM $1) \
             FROM {}.{} WHERE xmin = pg_current_xact_id()::xid",
            quote_ident(column),
            quote_ident(cx.schema),
            quote_ident(table)
        );
        let r = tx
            .query_one(&sql, &[&cx.tenant])
            .await
            .map_err(pg_err(format!("reading {table}'s rows by xmin")))?;
        let (written, outside): (i64, i64) = (r.get(0), r.get(1));
        if outside > 0 || u64::try_from(written).ok() != Some(updated) {
            return Err(proof_failed(
                format!(
                    "{table} has {written} row version(s) written by this transaction, {outside} outside tenant {}; crmbench pseudonymised {updated}",
                    cx.tenant
                ),
                format!("check what writes {table}"),
            ));
        }
        seen += written;
    }
    Ok(format!(
        "every row version the transaction wrote is of the tenant ({seen} rows by xmin)"
    ))
}
