//! `audit --probe`: checks that run queries as the application role, on
//! this database's rows, so isolation is measured rather than inferred
//! from the catalog (the same probes crmbench's own isolation tests make,
//! for any schema):
//!
//! - with no tenant set, every tenant table must fail or return nothing;
//! - with tenant A set, no tenant table may return a row of another tenant;
//! - the policy's cost: `count(*)` under the policy, as the application,
//!   against the same tenant filter written in the query, as the connecting
//!   role (no policy), on the largest tenant tables. A ratio above
//!   [`SLOWER`] (and [`MIN_MS`] apart) is a finding with both timings.
//!
//! Only reads: nothing is written. A table the role may not read is skipped.

use tokio_postgres::Client;

use super::model::{Finding, Rule};
use super::rules::Ctx;
use crate::error::{Error, Result};
use crate::pg::{self, Target, quote_literal};

/// How much slower the policy's form must be to be a finding.
pub const SLOWER: f64 = 2.0;
/// And by at least this many milliseconds (below, timing noise).
pub const MIN_MS: f64 = 1.0;
/// The largest tenant tables timed.
const TIMED: usize = 3;

/// Run the probes as `app_role`; the findings.
pub async fn probe(target: &Target, cx: &Ctx<'_>, app_role: &str) -> Result<Vec<Finding>> {
    let admin = pg::connect(&target.admin()).await?;
    let tables: Vec<String> = cx.tenant_tables().map(|r| r.name.clone()).collect();
    let mut findings = Vec::new();
    // A fresh session: the setting was never set in it.
    let app = pg::connect(&target.as_role(app_role)).await?;
    for t in &tables {
        let sql = format!("SELECT count(*) FROM {}", cx.qualified(t));
        if let Ok(row) = app.query_one(&sql, &[]).await {
            let n: i64 = row.get(0);
            if n > 0 {
                findings.push(Finding::new(
                    Rule::NoTenantReadsRows,
                    t.as_str(),
                    format!(
                        "{app_role} read {n} row(s) of {t} with {} unset",
                        cx.setting
                    ),
                    format!(
                        "-- compare without a fallback, so an unset tenant fails:\n{}",
                        policy_sql(cx, t)
                    ),
                ));
            }
        }
    }
    let Some(tenant) = busiest_tenant(&admin, cx, &tables).await? else {
        return Ok(findings); // no rows: nothing to read across
    };
    app.batch_execute(&format!(
        "SELECT set_config({}, {}, false)",
        quote_literal(cx.setting),
        quote_literal(&tenant)
    ))
    .await
    .map_err(|e| Error::from_pg(format!("setting {} as {app_role}", cx.setting), e))?;
    for t in &tables {
        let sql = format!(
            "SELECT count(*) FROM {} WHERE {}::text IS DISTINCT FROM $1",
            cx.qualified(t),
            super::rules::ident(cx.column)
        );
        let Ok(row) = app.query_one(&sql, &[&tenant]).await else {
            continue; // not readable by the role: nothing it can leak here
        };
        let n: i64 = row.get(0);
        if n > 0 {
            findings.push(Finding::new(
                Rule::IsolationBroken,
                t.as_str(),
                format!("{app_role} with tenant {tenant} set read {n} row(s) of other tenants"),
                format!(
                    "-- drop or restrict the permissive policies of {t}, keep only:\n{}",
                    policy_sql(cx, t)
                ),
            ));
        }
    }
    findings.extend(cost(&admin, &app, cx, &tables, &tenant, app_role).await?);
    Ok(findings)
}

fn policy_sql(cx: &Ctx<'_>, t: &str) -> String {
    let pred = cx.predicate(t, cx.column);
    format!(
        "CREATE POLICY tenant_isolation ON {} USING ({pred}) WITH CHECK ({pred});",
        cx.qualified(t)
    )
}

/// The tenant with the most rows in the largest tenant table.
async fn busiest_tenant(admin: &Client, cx: &Ctx<'_>, tables: &[String]) -> Result<Option<String>> {
    let Some(t) = largest(admin, cx, tables).await?.into_iter().next() else {
        return Ok(None);
    };
    let c = super::rules::ident(cx.column);
    let sql = format!(
        "SELECT {c}::text FROM {} WHERE {c} IS NOT NULL GROUP BY 1 ORDER BY count(*) DESC, 1 LIMIT 1",
        cx.qualified(&t)
    );
    let rows = admin
        .query(&sql, &[])
        .await
        .map_err(|e| Error::from_pg(format!("finding a tenant in {t}"), e))?;
    Ok(rows.first().map(|r| r.get(0)))
}

/// The tenant tables, largest first (by the planner's row estimate).
async fn largest(admin: &Client, cx: &Ctx<'_>, tables: &[String]) -> Result<Vec<String>> {
    let rows = admin
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = ANY($2) ORDER BY c.reltuples DESC, c.relpages DESC, 1",
            &[&cx.cat.schema, &tables],
        )
        .await
        .map_err(|e| Error::from_pg("reading table sizes", e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The best of three `EXPLAIN ANALYZE` execution times of `sql`, in ms.
async fn best_ms(client: &Client, sql: &str) -> Option<f64> {
    let mut best: Option<f64> = None;
    for _ in 0..3 {
        let row = client
            .query_one(&format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"), &[])
            .await
            .ok()?;
        let plan: serde_json::Value = row.get(0);
        let ms = plan.get(0)?.get("Execution Time")?.as_f64()?;
        best = Some(best.map_or(ms, |b: f64| b.min(ms)));
    }
    best
}

/// The policy's measured cost on the largest tables.
async fn cost(
    admin: &Client,
    app: &Client,
    cx: &Ctx<'_>,
    tables: &[String],
    tenant: &str,
    app_role: &str,
) -> Result<Vec<Finding>> {
    let mut out = Vec::new();
    for t in largest(admin, cx, tables).await?.into_iter().take(TIMED) {
        let q = cx.qualified(&t);
        let under_policy = format!("SELECT count(*) FROM {q}");
        let written = format!(
            "SELECT count(*) FROM {q} WHERE {} = {}::{}",
            super::rules::ident(cx.column),
            quote_literal(tenant),
            cx.column_type(&t)
        );
        let (Some(app_ms), Some(own_ms)) = (
            best_ms(app, &under_policy).await,
            best_ms(admin, &written).await,
        ) else {
            continue;
        };
        if app_ms > SLOWER * own_ms && app_ms - own_ms > MIN_MS {
            out.push(Finding::new(
                Rule::RlsCostMeasured,
                t.as_str(),
                format!(
                    "count(*) of tenant {tenant}: {app_ms:.1} ms as {app_role} under the policy, {own_ms:.1} ms with the filter written in the query ({:.1}×)",
                    app_ms / own_ms.max(0.001)
                ),
                format!(
                    "-- wrap functions as scalar subqueries and index the tenant column first:\n{}\nCREATE INDEX ON {q} ({});",
                    policy_sql(cx, &t),
                    super::rules::ident(cx.column)
                ),
            ));
        }
    }
    Ok(out)
}
