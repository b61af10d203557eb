//! `crmbench explain`: for every query of a workload, for a big and a small
//! tenant, run `EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)` as the
//! workload's role with the tenant set (RLS in force), inside a transaction
//! (the workload's tenant frame) that is always rolled back; keep the typed
//! plan, its fingerprint and its findings; write `plans.json` — with the
//! values drawn from the data taken out when asked ([`redact`]; the default
//! on a `--database-url` target).

pub mod findings;
pub mod plan;
pub mod redact;

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::WorkloadInfo;
use crate::rng::{Prng, tag};
use crate::runfolder::{Access, RunFolder};
use crate::workload::Query;
use crate::workload::context::WorkloadContext;
use crate::workload::params::{Value, collect_refs};
use findings::{Finding, FindingKind};
use plan::Explained;
pub use redact::SampledValues;

/// Version of the plans.json format.
pub const FORMAT_VERSION: u32 = 1;

/// What plans.json holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PlansFile {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// crmbench version.
    pub crmbench_version: String,
    /// The workload.
    pub workload: WorkloadInfo,
    /// Seed of the parameter values.
    pub seed: u64,
    /// Whether plans ran under row-level security (a tenant setting and a role).
    pub rls: bool,
    /// Per query.
    pub queries: Vec<QueryPlans>,
}

/// One query's plans.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueryPlans {
    /// Query name.
    pub name: String,
    /// Per tenant class ("big", "small"; "all" without tenants).
    pub tenants: Vec<TenantPlans>,
    /// Findings across tenants (deduplicated), including plans that differ.
    pub findings: Vec<Finding>,
}

/// The plans of one query for one tenant.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TenantPlans {
    /// "big", "small" or "all".
    pub class: String,
    /// The tenant id ("" without tenants).
    pub tenant: String,
    /// One per statement.
    pub statements: Vec<StatementPlan>,
}

/// One statement's plan.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatementPlan {
    /// Position in the transaction.
    pub index: usize,
    /// The SQL.
    pub sql: String,
    /// The executed plan (absent when EXPLAIN failed).
    pub plan: Option<Explained>,
    /// Plan shape (node types, relations, indexes, join order).
    pub shape: String,
    /// Hash of the shape.
    pub fingerprint: String,
    /// Findings of this plan.
    pub findings: Vec<Finding>,
    /// Why EXPLAIN failed, if it did.
    pub error: Option<String>,
}

/// Explain every query of the workload at `path` on `target`, sampled
/// values kept or redacted as is the default there
/// ([`SampledValues::default_for`]).
pub async fn explain(target: &Target, path: &Path, seed: u64) -> Result<PlansFile> {
    let ctx = WorkloadContext::prepare(target, path).await?;
    explain_with(&ctx, target, seed, SampledValues::default_for(target)).await
}

/// Explain every query of `ctx`'s workload on `target`; `redaction` says
/// whether the values drawn from the data stay in the plans.
pub async fn explain_with(
    ctx: &WorkloadContext,
    target: &Target,
    seed: u64,
    redaction: SampledValues,
) -> Result<PlansFile> {
    let workload = ctx.workload();
    let client = pg::connect(&ctx.spec_on(target)).await?;
    let rls = workload.context.tenant_setting.is_some();
    let numeric = numeric_columns(&pg::connect(&target.admin()).await?).await?;
    let classes: Vec<(&str, String)> = if rls {
        let (big, small) = ctx.pools().tenants.big_and_small();
        vec![("big", big.to_string()), ("small", small.to_string())]
    } else {
        vec![("all", String::new())]
    };
    let session = Session {
        client: &client,
        ctx,
        rls,
        numeric: &numeric,
        redaction,
    };
    let mut queries = Vec::new();
    for (qi, query) in workload.queries.iter().enumerate() {
        let mut tenants = Vec::new();
        for (class, tenant) in &classes {
            let mut rng = Prng::for_parts(&[seed, tag("explain"), qi as u64, tag(class)]);
            let statements = explain_query(&session, query, tenant, &mut rng).await?;
            let tenant = match redaction {
                SampledValues::Redact if !tenant.is_empty() => redact::PLACEHOLDER.to_string(),
                _ => tenant.clone(),
            };
            tenants.push(TenantPlans {
                class: class.to_string(),
                tenant,
                statements,
            });
        }
        queries.push(QueryPlans {
            name: query.name.clone(),
            findings: query_findings(&tenants),
            tenants,
        });
    }
    Ok(PlansFile {
        format_version: FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        workload: WorkloadInfo {
            name: workload.name.clone(),
            path: workload.path.display().to_string(),
            hash: workload.hash.clone(),
        },
        seed,
        rls,
        queries,
    })
}

/// Write `plans.json` into the run folder: `out`, else `reports/latest` when
/// it exists (beside the run's results), else a new folder. Returns the
/// file's path.
pub fn write_plans(out: Option<&Path>, file: &PlansFile, access: Access) -> Result<PathBuf> {
    RunFolder::prepare_or_latest(out, "explain", access)?.write(file)
}

/// A query's findings across its tenants (each kind and node once), and
/// where the big and the small tenant get different plans.
fn query_findings(tenants: &[TenantPlans]) -> Vec<Finding> {
    let mut found: Vec<Finding> = Vec::new();
    for t in tenants {
        for s in &t.statements {
            for f in &s.findings {
                if !found.iter().any(|g| g.kind == f.kind && g.node == f.node) {
                    found.push(f.clone());
                }
            }
        }
    }
    if let [a, b] = tenants {
        for (sa, sb) in a.statements.iter().zip(&b.statements) {
            if sa.plan.is_some() && sb.plan.is_some() && sa.fingerprint != sb.fingerprint {
                found.push(Finding {
                    kind: FindingKind::PlansDiffer,
                    node: format!("statement {}", sa.index.saturating_add(1)),
                    hint: format!(
                        "the {} tenant gets `{}`, the {} tenant `{}`: test both when changing indexes",
                        a.class, sa.shape, b.class, sb.shape
                    ),
                });
            }
        }
    }
    found
}

/// What every query's explanation shares: the connection (as the
/// workload's role), the workload and its pools.
struct Session<'a> {
    client: &'a Client,
    ctx: &'a WorkloadContext,
    rls: bool,
    numeric: &'a findings::NumericColumns,
    redaction: SampledValues,
}

/// Explain each statement of `query` for `tenant` inside the workload's
/// frame, rolled back at the end; a statement whose result a later one needs
/// also runs for real (inside the same frame).
async fn explain_query(
    session: &Session<'_>,
    query: &Query,
    tenant: &str,
    rng: &mut Prng,
) -> Result<Vec<StatementPlan>> {
    let client = session.client;
    let frame = session.ctx.frame();
    let context = format!("`{}`", query.name);
    frame.begin(client, tenant, &context).await?;
    let mut refs: HashMap<String, Value> = HashMap::new();
    let mut out: Vec<StatementPlan> = Vec::new();
    for (k, st) in query.statements.iter().enumerate() {
        if out.last().is_some_and(|s| s.error.is_some()) {
            let mut entry = StatementPlan::empty(k, &st.sql);
            entry.error = Some("not run: an earlier statement failed".into());
            out.push(entry);
            continue;
        }
        let values: Vec<Value> = st
            .params
            .iter()
            .map(|p| session.ctx.pools().value(p, rng, tenant, &refs))
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        let mut entry = explain_statement(session, k, &st.sql, &params, &context).await?;
        // Later statements may need what this one returns.
        let needed = query.statements[k + 1..].iter().any(|s| s.uses_refs());
        if entry.error.is_none() && needed {
            match client.query(&st.sql, &params).await {
                Ok(rows) => {
                    if let Some(row) = rows.first() {
                        collect_refs(row, &mut refs);
                    }
                }
                Err(e) => {
                    entry.error = Some(Error::from_pg("running", e).with_fix());
                }
            }
        }
        if session.redaction == SampledValues::Redact {
            redact::redact_statement(&mut entry, &redact::data_values(&st.params, &values));
        }
        out.push(entry);
    }
    frame.rollback(client, &context).await?;
    Ok(out)
}

/// `EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON)` of one statement
/// inside a savepoint that is rolled back: its plan, shape, fingerprint and
/// findings, or why EXPLAIN failed. An error only when the frame broke.
async fn explain_statement(
    session: &Session<'_>,
    index: usize,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    context: &str,
) -> Result<StatementPlan> {
    let client = session.client;
    let sql_err =
        |what: &str, e: tokio_postgres::Error| Error::from_pg(format!("{what} for {context}"), e);
    let mut entry = StatementPlan::empty(index, sql);
    client
        .batch_execute("SAVEPOINT crmbench_explain")
        .await
        .map_err(|e| sql_err("SAVEPOINT", e))?;
    let explain_sql = format!("EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT JSON) {sql}");
    match client.query_one(&explain_sql, params).await {
        Ok(row) => {
            let json: serde_json::Value = row.get(0);
            match Explained::parse(&json) {
                Ok(e) => {
                    entry.shape = e.plan.shape();
                    entry.fingerprint = e.plan.fingerprint();
                    entry.findings = findings::findings(&e.plan, session.rls, session.numeric);
                    entry.plan = Some(e);
                }
                Err(m) => entry.error = Some(m),
            }
        }
        Err(e) => entry.error = Some(Error::from_pg("EXPLAIN", e).with_fix()),
    }
    client
        .batch_execute("ROLLBACK TO SAVEPOINT crmbench_explain")
        .await
        .map_err(|e| sql_err("ROLLBACK TO SAVEPOINT", e))?;
    Ok(entry)
}

impl StatementPlan {
    /// Statement `index` with `sql`, not explained yet.
    fn empty(index: usize, sql: &str) -> StatementPlan {
        StatementPlan {
            index,
            sql: sql.to_string(),
            plan: None,
            shape: String::new(),
            fingerprint: String::new(),
            findings: Vec::new(),
            error: None,
        }
    }
}

/// Numeric columns of every user table, by table name.
async fn numeric_columns(admin: &Client) -> Result<findings::NumericColumns> {
    let rows = admin
        .query(
            "SELECT c.relname::text, a.attname::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE a.atttypid = 'numeric'::regtype AND a.attnum > 0 AND NOT a.attisdropped \
               AND c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading numeric columns", e))?;
    let mut out = findings::NumericColumns::new();
    for r in rows {
        out.entry(r.get::<_, String>(0)).or_default().push(r.get(1));
    }
    Ok(out)
}

/// The summary table printed by `explain`.
pub fn render_summary(file: &PlansFile) -> String {
    let mut out = format!(
        "{:<26} {:<6} {:>10} {:<18} findings\n",
        "query", "tenant", "exec ms", "fingerprint"
    );
    for q in &file.queries {
        for t in &q.tenants {
            let ms: f64 = t
                .statements
                .iter()
                .filter_map(|s| s.plan.as_ref().and_then(|p| p.execution_ms))
                .sum();
            let fp: Vec<&str> = t
                .statements
                .iter()
                .map(|s| &s.fingerprint[..s.fingerprint.len().min(8)])
                .collect();
            let kinds: Vec<String> = t
                .statements
                .iter()
                .flat_map(|s| s.findings.iter().map(|f| f.kind.to_string()))
                .collect();
            let errors = t.statements.iter().filter(|s| s.error.is_some()).count();
            out.push_str(&format!(
                "{:<26} {:<6} {:>10.2} {:<18} {}{}\n",
                q.name,
                t.class,
                ms,
                fp.join(","),
                if kinds.is_empty() {
                    "-".to_string()
                } else {
                    kinds.join(", ")
                },
                if errors > 0 {
                    format!("  ({errors} failed)")
                } else {
                    String::new()
                }
            ));
        }
        for f in q.findings.iter().filter(|f| {
            f.kind == FindingKind::RlsNonLeakproof || f.kind == FindingKind::PlansDiffer
        }) {
            out.push_str(&format!("    {} on {}: {}\n", f.kind, f.node, f.hint));
        }
    }
    out
}
