//! `erase --dry-run`: the erasure done and proven on a clone of the
//! database, where nothing else writes, so a third check is exact: every
//! table's checksum outside the subject's tenant (every row of a table
//! without the tenant column) is the same before and after. The clone is
//! dropped; the target is never written.

use std::collections::BTreeMap;

use super::plan::Subject;
use super::{EraseOptions, EraseReport, Policy, erase_in};
use crate::audit::catalog::Catalog;
use crate::audit::rules::Ctx;
use crate::error::{Error, Result};
use crate::export::checksum::{self, Checksum};
use crate::pg::{self, Target, quote_ident, quote_literal};
use crate::schema::clone::{Purpose, WorkingCopy};

/// Erase a clone of `target` and compare the other tenants' checksums.
pub async fn on_clone(
    target: &Target,
    opts: &EraseOptions,
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> Result<EraseReport> {
    let copy = WorkingCopy::create(target, Purpose::EraseDryRun).await?;
    let result = erase_and_compare(&copy.target(), opts, policy, tenant, subject).await;
    let name = copy.name().to_string();
    copy.remove_or_warn().await;
    let mut report = result?;
    report.committed = false;
    report.clone = Some(name);
    Ok(report)
}

async fn erase_and_compare(
    clone: &Target,
    opts: &EraseOptions,
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> Result<EraseReport> {
    let before = others(clone, opts, tenant).await?;
    let mut report = erase_in(clone, opts, policy, tenant, subject).await?;
    let after = others(clone, opts, tenant).await?;
    for (table, b) in &before {
        if after.get(table) != Some(b) {
            return Err(Error::State {
                message: format!(
                    "proof failed on the clone: {table}'s rows outside tenant {tenant} changed \
                     ({} rows before, {} after, checksums {} / {})",
                    b.rows,
                    after.get(table).map_or(0, |a| a.rows),
                    b.sum,
                    after.get(table).map_or("-", |a| a.sum.as_str())
                ),
                fix: format!("find what changes {table} (a trigger, a cascade) before erasing"),
            });
        }
    }
    report.proofs.push(format!(
        "every other tenant's rows have the same checksum before and after ({} tables)",
        before.len()
    ));
    Ok(report)
}

/// Per table of the schema: the checksum of the rows outside `tenant` (on
/// the tenants table, every row but the tenant's own).
async fn others(
    target: &Target,
    opts: &EraseOptions,
    tenant: &str,
) -> Result<BTreeMap<String, Checksum>> {
    let client = pg::connect(&target.admin()).await?;
    let cat = Catalog::load(&client, &opts.schema, "").await?;
    let ctx = Ctx {
        cat: &cat,
        column: &opts.column,
        setting: &opts.setting,
    };
    let roots = ctx.roots();
    let mut out = BTreeMap::new();
    for r in cat.relations.iter().filter(|r| matches!(r.kind, 'r' | 'p')) {
        let column = if r.columns.contains(&opts.column) {
            Some(opts.column.as_str())
        } else {
            roots
                .iter()
                .find(|(t, _)| *t == r.name)
                .map(|(_, k)| k.as_str())
        };
        let predicate = match column {
            Some(c) => format!(
                "{}::text IS DISTINCT FROM {}",
                quote_ident(c),
                quote_literal(tenant)
            ),
            None => "true".to_string(),
        };
        let sum = checksum::table(&client, &opts.schema, &r.name, &predicate).await?;
        out.insert(r.name.clone(), sum);
    }
    Ok(out)
}
