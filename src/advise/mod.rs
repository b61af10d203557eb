//! The index advisor: from the plans `explain` captured, candidate indexes
//! (with partial, covering and prefix variants), what-if costing with HypoPG
//! as the workload's app role with the tenant set (or real indexes on a
//! clone), a greedy selection under `--max-indexes` and `--budget-mb` that
//! counts write costs, drop advice, remedies for predicates row-level
//! security keeps from any index, paired verification on clones, and the
//! files a DBA or a Prisma user applies ([`run_advise`] runs it all).

pub mod artifacts;
pub mod candidates;
pub mod catalog;
pub mod command;
pub mod drops;
pub mod items;
pub mod prisma;
pub mod progress;
pub mod reasons;
pub mod relevance;
pub mod remedy;
pub mod remedy_measure;
pub mod rewrite;
pub mod select;
pub mod size;
pub mod verify;
pub mod whatif;
pub mod width;
pub mod writes;

pub use artifacts::{
    migration_sql, remedies_sql, render_summary, rollback_sql, write_artifacts, write_sql,
};
pub use catalog::index_catalog;
pub use command::{
    AdviseRequest, AdviseRun, CatalogCheck, apply, check_catalog_unchanged, run_advise,
};

use std::collections::{BTreeMap, HashSet};

use crate::explain::PlansFile;
use crate::explain::findings::NumericColumns;
use crate::workload::context::WorkloadContext;
use candidates::IndexDef;

/// Candidates for a whole workload, each with the queries it serves; a
/// candidate whose columns lead another's is merged into the longer one.
pub fn workload_candidates(
    plans: &PlansFile,
    numeric: &NumericColumns,
    tenant_tables: &HashSet<String>,
    tenant_column: &str,
    low_cardinality: &HashSet<(String, String)>,
) -> Vec<(IndexDef, Vec<String>)> {
    let mut by_def: BTreeMap<IndexDef, Vec<String>> = BTreeMap::new();
    for q in &plans.queries {
        for t in &q.tenants {
            for s in &t.statements {
                let Some(plan) = &s.plan else { continue };
                for (table, needs) in candidates::needs(&plan.plan, plans.rls, numeric) {
                    let tenant = tenant_tables.contains(&table).then_some(tenant_column);
                    // A literal of the statement itself (not a bound parameter)
                    // on a low-cardinality column: worth a partial index.
                    let is_constant = |col: &str, literal: &str| {
                        let value = literal.split("::").next().unwrap_or(literal);
                        low_cardinality.contains(&(table.clone(), col.to_string()))
                            && s.sql.contains(value)
                    };
                    for def in candidates::candidates_for(&table, &needs, tenant, &is_constant) {
                        let served = by_def.entry(def).or_default();
                        if !served.contains(&q.name) {
                            served.push(q.name.clone());
                        }
                    }
                }
            }
        }
    }
    // Merge: an index whose key is a prefix of another's is served by it.
    let defs: Vec<IndexDef> = by_def.keys().cloned().collect();
    for short in &defs {
        // Never into a covering variant: its plain twin stays a choice.
        let into = |l: &&IndexDef| {
            *l != short
                && l.covers_prefix(short)
                && l.include.iter().all(|c| short.include.contains(c))
        };
        if let Some(long) = defs.iter().find(into) {
            if let Some(queries) = by_def.remove(short) {
                let target = by_def.entry(long.clone()).or_default();
                for q in queries {
                    if !target.contains(&q) {
                        target.push(q);
                    }
                }
            }
        }
    }
    by_def.into_iter().collect()
}

/// Plain btree indexes of `schema` (no expressions, no predicates), as
/// definitions: candidates they already serve are not worth proposing.
pub async fn existing_indexes(
    client: &tokio_postgres::Client,
    schema: &str,
) -> crate::error::Result<Vec<IndexDef>> {
    Ok(drops::existing(client, schema)
        .await?
        .into_iter()
        .map(|e| e.def)
        .collect())
}

/// Add, for each multi-column candidate, its shortest useful prefix (tenant
/// and one column): Extend's search starts narrow and widens a chosen index
/// only where the extra columns pay for their bytes.
pub fn with_prefixes(
    mut candidates: Vec<IndexDef>,
    tenant_tables: &HashSet<String>,
    existing: &[IndexDef],
) -> Vec<IndexDef> {
    let mut prefixes = Vec::new();
    for c in &candidates {
        let keep = 1 + usize::from(tenant_tables.contains(&c.table));
        if c.columns.len() <= keep || !c.include.is_empty() {
            continue;
        }
        let short = IndexDef {
            table: c.table.clone(),
            columns: c.columns[..keep].to_vec(),
            predicate: c.predicate.clone(),
            include: Vec::new(),
        };
        if !candidates.contains(&short)
            && !prefixes.contains(&short)
            && !already_served(&short, existing)
            && !short.columns.iter().any(|k| k.name.contains('('))
        {
            prefixes.push(short);
        }
    }
    candidates.extend(prefixes);
    candidates
}

/// Remedies for the statements whose plans carry a non-leakproof finding.
pub fn remedies_for(
    plans: &PlansFile,
    schema: &str,
    typed_columns: &[(String, String, String)],
    tenant_tables: &HashSet<String>,
) -> Vec<remedy::Remedy> {
    let mut out: Vec<remedy::Remedy> = Vec::new();
    for q in plans.queries.iter().filter(|q| {
        q.findings
            .iter()
            .any(|f| f.kind == crate::explain::findings::FindingKind::RlsNonLeakproof)
    }) {
        let Some(first) = q.tenants.first() else {
            continue;
        };
        for s in &first.statements {
            let Some(plan) = &s.plan else { continue };
            let tables: HashSet<&str> = plan
                .plan
                .walk()
                .into_iter()
                .filter_map(|n| n.relation.as_deref())
                .collect();
            for table in tables {
                let columns: Vec<(String, String, String)> = typed_columns
                    .iter()
                    .filter(|(t, _, _)| t == table)
                    .cloned()
                    .collect();
                let tenant = tenant_tables
                    .contains(table)
                    .then_some(catalog::TENANT_COLUMN);
                for r in remedy::propose(&q.name, s.index, &s.sql, schema, tenant, &columns) {
                    if !out
                        .iter()
                        .any(|o| o.query == r.query && o.change == r.change)
                    {
                        out.push(r);
                    }
                }
            }
        }
    }
    out
}

/// Whether an existing index already leads with the candidate's columns
/// (direction aside: a btree scans both ways).
pub fn already_served(candidate: &IndexDef, existing: &[IndexDef]) -> bool {
    existing.iter().any(|e| {
        e.table == candidate.table
            && candidate
                .include
                .iter()
                .all(|c| e.include.contains(c) || e.columns.iter().any(|k| &k.name == c))
            && candidate.columns.len() <= e.columns.len()
            && candidate
                .columns
                .iter()
                .zip(&e.columns)
                .all(|(a, b)| a.name == b.name)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn def(table: &str, cols: &[&str]) -> IndexDef {
        IndexDef::on(table, cols)
    }

    #[test]
    fn the_primary_key_serves_tenant_and_id_lookups() {
        let existing = [def("orders", &["tenant_id", "id"])];
        assert!(already_served(
            &def("orders", &["tenant_id", "id"]),
            &existing
        ));
        assert!(already_served(&def("orders", &["tenant_id"]), &existing));
        assert!(!already_served(
            &def("orders", &["tenant_id", "customer_id"]),
            &existing
        ));
        assert!(!already_served(
            &def("payments", &["tenant_id", "id"]),
            &existing
        ));
    }

    /// Issue 16 item 12: the method text speaks of tenants only for a
    /// workload that has them.
    #[test]
    fn the_method_names_tenants_only_when_there_are_some() {
        let with = method_text("HypoPG", Some("app"), true);
        assert!(with.contains("tenant"), "{with}");
        let without = method_text("HypoPG", None, false);
        assert_eq!(
            without,
            "what-if plans with HypoPG, as role (connecting user)"
        );
    }
}

/// Version of advice.json.
pub const FORMAT_VERSION: u32 = 1;

/// Options of `advise`.
#[derive(Debug, Clone)]
pub struct AdviseOptions {
    /// Most indexes to recommend.
    pub max_indexes: usize,
    /// Storage budget for new indexes, MB.
    pub budget_mb: f64,
    /// Seed of the sample parameters.
    pub seed: u64,
    /// Cost with real indexes on a clone instead of HypoPG.
    pub no_hypopg: bool,
    /// Leave HypoPG in the database when this run created it.
    pub keep_hypopg: bool,
}

/// What advice.json holds.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize, PartialEq)]
pub struct Advice {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// crmbench version.
    pub crmbench_version: String,
    /// The workload.
    pub workload: crate::results::WorkloadInfo,
    /// How what-if costs were obtained.
    pub method: String,
    /// Candidates considered (after dropping those existing indexes serve).
    pub candidates: Vec<IndexDef>,
    /// The search's result.
    pub selection: select::Selection,
    /// EXPLAIN calls made for what-if costing.
    pub whatif_calls: u64,
    /// Seconds spent costing.
    pub whatif_seconds: f64,
    /// Findings that are not index problems: non-leakproof predicates under
    /// RLS with their remedies (from the plans).
    pub rls_findings: Vec<(String, crate::explain::findings::Finding)>,
    /// Paired verification of each chosen index (`--verify`).
    #[serde(default)]
    pub verified: Option<Vec<verify::Verified>>,
    /// Indexes that can go (never keys or constraint-backing ones).
    #[serde(default)]
    pub drops: Vec<drops::DropAdvice>,
    /// Where query weights came from: the run's counts or the workload file.
    #[serde(default)]
    pub weights_from: String,
    /// Schema changes that make non-leakproof predicates indexable for the
    /// app role, with migrations, rewritten statements and (with `--verify`)
    /// their measured effect.
    #[serde(default)]
    pub remedies: Vec<remedy::Remedy>,
    /// Partitioned tables among the chosen indexes' tables, with their leaf
    /// partitions: their migration builds each partition's index
    /// concurrently and attaches it (a partitioned table refuses CONCURRENTLY).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub partitioned: BTreeMap<String, Vec<String>>,
    /// The schema the recommended indexes go in (where the workload's tables are).
    #[serde(default = "default_schema")]
    pub schema: String,
    /// Why the advice is incomplete, when a stop signal ended `advise`
    /// early (e.g. "interrupted (Ctrl-C) during verification"): `verified`
    /// and the remedies' measurements hold what was decided before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub partial: Option<String>,
    /// Why each query got an index or did not, one line each.
    #[serde(default)]
    pub explanations: Vec<reasons::QueryExplanation>,
}

fn default_schema() -> String {
    crate::pg::SCHEMA.into()
}

/// The schema most of the plans' relations live in: the advisor's schema
/// (crmbench's `crm` for the built-in workload, a client's own otherwise).
/// `None` when no plan names a schema (every statement failed to explain).
pub fn workload_schema(plans: &PlansFile) -> Option<String> {
    let mut counts: BTreeMap<&str, usize> = BTreeMap::new();
    for q in &plans.queries {
        for t in &q.tenants {
            for s in &t.statements {
                for n in s.plan.iter().flat_map(|p| p.plan.walk()) {
                    if let Some(schema) = n.schema.as_ref().filter(|s| {
                        !matches!(s.as_str(), "pg_catalog" | "information_schema" | "pg_toast")
                    }) {
                        *counts.entry(schema.as_str()).or_default() += 1;
                    }
                }
            }
        }
    }
    counts
        .into_iter()
        .max_by_key(|(_, n)| *n)
        .map(|(s, _)| s.to_string())
}

/// [`workload_schema`], or, when no plan says, the schema of the first
/// table a statement names as the server resolves it, else the server's
/// current schema — never `crm` on a database that has no such schema.
pub async fn resolve_schema(
    admin: &tokio_postgres::Client,
    plans: &PlansFile,
) -> crate::error::Result<String> {
    if let Some(s) = workload_schema(plans) {
        return Ok(s);
    }
    let tables = plans
        .queries
        .iter()
        .flat_map(|q| &q.tenants)
        .flat_map(|t| &t.statements)
        .flat_map(|s| crate::pg::privileges::table_privileges(&s.sql))
        .map(|(t, _)| t);
    for table in tables {
        if let Some(schema) = crate::pg::catalog::schema_of(admin, &table).await? {
            return Ok(schema);
        }
    }
    let row = admin
        .query_one("SELECT coalesce(current_schema(), 'public')::text", &[])
        .await
        .map_err(|e| crate::error::Error::from_pg("reading the current schema", e))?;
    Ok(row.get(0))
}

/// How the what-if costs were taken, in the report's words: the role, and
/// the tenants only for a workload that has them.
pub fn method_text(method_used: &str, role: Option<&str>, tenants: bool) -> String {
    let role = role.unwrap_or("(connecting user)");
    if tenants {
        format!(
            "what-if plans with {method_used}, as role {role} with the tenant set, for the \
             largest tenant and a small one"
        )
    } else {
        format!("what-if plans with {method_used}, as role {role}")
    }
}

/// Recommend indexes for the workload at `path`, costed with HypoPG as the
/// workload's role with the tenant set, from `plans` (captured by `explain`).
pub async fn advise(
    target: &crate::pg::Target,
    path: &std::path::Path,
    plans: &PlansFile,
    results: Option<&crate::results::Results>,
    opts: &AdviseOptions,
) -> crate::error::Result<Advice> {
    let ctx = WorkloadContext::prepare(target, path).await?;
    advise_with(&ctx, target, plans, results, opts).await
}

/// [`advise`] for a workload already prepared (loaded, checked, sampled).
pub async fn advise_with(
    ctx: &WorkloadContext,
    target: &crate::pg::Target,
    plans: &PlansFile,
    results: Option<&crate::results::Results>,
    opts: &AdviseOptions,
) -> crate::error::Result<Advice> {
    let (workload, pools) = (ctx.workload(), ctx.pools());
    let admin = crate::pg::connect(&target.admin()).await?;
    let schema = resolve_schema(&admin, plans).await?;
    let catalog = catalog::SchemaCatalog::read(&admin, &schema).await?;
    let candidates = candidates_on(plans, &catalog);
    // No unbounded column that could push an index row past the btree limit.
    let widths = width::read(&admin, &schema, &candidates).await?;
    let (candidates, width_notes, width_rejected) = width::admit(candidates, &widths);
    // Each query weighs by how often it ran (the run's counts) when a run is
    // at hand, else by the workload's weights.
    let (weights, use_counts) = items::query_weights(workload, results);
    let mut items = items::weighted_items(
        workload,
        pools,
        plans,
        &catalog.partitions,
        &weights,
        opts.seed,
    );
    // Each write charged for the indexes it maintains (HOT, partial predicates).
    writes::prepare(&admin, &schema, &mut items, &candidates).await?;
    let started = std::time::Instant::now();
    // HypoPG on demand: created for this run under --allow-ddl, else the
    // reason and the cost of the fallback are said (schema::extensions).
    let hypopg = if opts.no_hypopg {
        crate::schema::extensions::HypoPg::Missing
    } else {
        crate::schema::extensions::hypopg_on_demand(target, &admin, opts.keep_hypopg).await?
    };
    let has_hypopg = hypopg.usable();
    // A clone needs the database without sessions: let ours go first.
    drop(admin);
    let existing: Vec<IndexDef> = catalog
        .current_indexes
        .iter()
        .map(|e| e.def.clone())
        .collect();
    let selected = select_indexes(
        target,
        &workload.context,
        &schema,
        has_hypopg,
        opts,
        &items,
        (&candidates, &existing),
    )
    .await;
    hypopg.finish(target, opts.keep_hypopg).await?;
    let (mut selection, method_used, calls) = selected?;
    for c in &mut selection.chosen {
        c.notes
            .extend(width_notes.get(&c.def).cloned().unwrap_or_default());
    }
    selection.rejected.extend(width_rejected);
    let mut advice = assemble(plans, results, &catalog, schema, selection, candidates);
    advice.method = method_text(
        method_used,
        workload.context.role.as_deref(),
        workload.context.tenant_setting.is_some(),
    );
    advice.whatif_calls = calls;
    advice.whatif_seconds = started.elapsed().as_secs_f64();
    advice.weights_from = if use_counts {
        "transaction counts of the run's results.json".into()
    } else {
        "the workload file's weights".into()
    };
    advice.explanations = reasons::explain(&advice);
    Ok(advice)
}

/// The advice around a selection: drop advice, remedies, RLS findings,
/// partitioned tables (method, timings and explanations are the caller's).
fn assemble(
    plans: &PlansFile,
    results: Option<&crate::results::Results>,
    catalog: &catalog::SchemaCatalog,
    schema: String,
    selection: select::Selection,
    candidates: Vec<IndexDef>,
) -> Advice {
    let recommended: Vec<IndexDef> = selection.chosen.iter().map(|c| c.def.clone()).collect();
    let drops = drops::advise_drops(
        &schema,
        &catalog.current_indexes,
        // Usage the run could not read says nothing about an index.
        results
            .filter(|r| r.stats_missing.is_none())
            .map(|r| r.index_usage.as_slice()),
        &recommended,
    );
    let remedies = remedies_for(
        plans,
        &schema,
        &catalog.typed_columns,
        &catalog.tenant_tables,
    );
    Advice {
        format_version: FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        workload: plans.workload.clone(),
        method: String::new(),
        candidates,
        selection,
        whatif_calls: 0,
        whatif_seconds: 0.0,
        rls_findings: rls_findings(plans),
        verified: None,
        drops,
        partitioned: catalog
            .partitions
            .leaves_by_root()
            .into_iter()
            .filter(|(t, _)| recommended.iter().any(|d| &d.table == t))
            .collect(),
        schema,
        remedies,
        weights_from: String::new(),
        partial: None,
        explanations: Vec::new(),
    }
}

/// The candidates worth costing: the plans' candidates moved from a
/// partition to its root (unless the SQL names the partition itself), on
/// tables of `schema` only (the indexes go in one schema), none an existing
/// index serves, with their short prefixes added.
fn candidates_on(plans: &PlansFile, catalog: &catalog::SchemaCatalog) -> Vec<IndexDef> {
    let existing: Vec<IndexDef> = catalog
        .current_indexes
        .iter()
        .map(|e| e.def.clone())
        .collect();
    // A partition the SQL names itself keeps its own index.
    let named_in_sql = |table: &str| {
        plans.queries.iter().any(|q| {
            q.tenants.iter().any(|t| {
                t.statements
                    .iter()
                    .any(|s| remedy::find_word(&s.sql, table).is_some())
            })
        })
    };
    let mut mapped: Vec<IndexDef> = Vec::new();
    for (mut d, _) in workload_candidates(
        plans,
        &catalog.numeric,
        &catalog.tenant_tables,
        catalog::TENANT_COLUMN,
        &catalog.low_cardinality,
    ) {
        if !named_in_sql(&d.table) {
            d.table = catalog.partitions.root(&d.table);
        }
        if !mapped.contains(&d) {
            mapped.push(d);
        }
    }
    let candidates: Vec<IndexDef> = mapped
        .into_iter()
        .filter(|d| catalog.tables.contains(&d.table) && !already_served(d, &existing))
        .collect();
    with_prefixes(candidates, &catalog.tenant_tables, &existing)
}

/// The greedy selection, costed as the workload's role with its tenant
/// setting: with HypoPG when it is installed and wanted, else with real
/// indexes on a clone. Returns the selection, the method's name and the
/// EXPLAIN calls made.
async fn select_indexes(
    target: &crate::pg::Target,
    context: &crate::workload::Context,
    schema: &str,
    has_hypopg: bool,
    opts: &AdviseOptions,
    items: &[select::Item],
    // The candidates, and the schema's indexes now.
    (candidates, existing): (&[IndexDef], &[IndexDef]),
) -> crate::error::Result<(select::Selection, &'static str, u64)> {
    let (role, setting) = (context.role.as_deref(), context.tenant_setting.as_deref());
    let mut whatif = if opts.no_hypopg || !has_hypopg {
        crate::console::err_line(format!(
            "advise: costing {} candidate indexes by building them on a clone",
            candidates.len()
        ));
        whatif::WhatIf::open_real(target, role, setting, schema).await?
    } else {
        whatif::WhatIf::open(target, role, setting, schema).await?
    };
    let method_used = whatif.method();
    let selection = select::greedy(
        &mut whatif,
        items,
        candidates,
        existing,
        opts.max_indexes,
        (opts.budget_mb * 1e6) as i64,
    )
    .await;
    let calls = whatif.calls;
    // Close even when the search failed: a real-index clone must go.
    whatif.close().await?;
    Ok((selection?, method_used, calls))
}

/// The plans' non-leakproof findings, by query: not index problems. Each
/// once per query and predicate, naming the tenant classes whose plans
/// show it (the row counts in a hint differ between classes; the advice
/// does not).
pub fn rls_findings(plans: &PlansFile) -> Vec<(String, crate::explain::findings::Finding)> {
    use crate::explain::findings::FindingKind;
    let mut out: Vec<(String, crate::explain::findings::Finding, Vec<String>)> = Vec::new();
    for q in &plans.queries {
        for t in &q.tenants {
            let found = t.statements.iter().flat_map(|s| &s.findings);
            for f in found.filter(|f| f.kind == FindingKind::RlsNonLeakproof) {
                let hint = without_row_count(&f.hint);
                match out
                    .iter_mut()
                    .find(|(n, g, _)| n == &q.name && g.hint == hint)
                {
                    Some((_, _, classes)) if !classes.contains(&t.class) => {
                        classes.push(t.class.clone())
                    }
                    Some(_) => {}
                    None => {
                        let mut g = f.clone();
                        g.hint = hint;
                        out.push((q.name.clone(), g, vec![t.class.clone()]));
                    }
                }
            }
        }
    }
    out.into_iter()
        .map(|(q, mut f, classes)| {
            f.hint = format!("{} [tenants: {}]", f.hint, classes.join(", "));
            (q, f)
        })
        .collect()
}

/// A finding's hint without its " (it filters N rows here)" part.
fn without_row_count(hint: &str) -> String {
    match hint.find(" (it filters ") {
        Some(at) => match hint[at..].find(')') {
            Some(end) => format!("{}{}", &hint[..at], &hint[at + end + 1..]),
            None => hint.to_string(),
        },
        None => hint.to_string(),
    }
}

impl Advice {
    /// The chosen indexes that stand: all of them without `--verify`, the
    /// kept ones with it; in the order chosen.
    pub fn kept(&self) -> impl DoubleEndedIterator<Item = &select::Chosen> {
        self.selection.chosen.iter().filter(|c| {
            self.verified
                .as_ref()
                .is_none_or(|v| v.iter().any(|x| x.index == c.def.name() && x.kept))
        })
    }
}
