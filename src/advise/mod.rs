//! The index advisor (in progress): candidates read from the captured plans.
//! What-if costing with HypoPG as the app role, selection under a budget with
//! write costs, drop advice and paired verification build on this.

pub mod candidates;
pub mod drops;
pub mod prisma;
pub mod remedy;
pub mod remedy_measure;
pub mod select;
pub mod size;
pub mod verify;
pub mod whatif;

use std::collections::{BTreeMap, HashSet};

use crate::explain::PlansFile;
use crate::explain::findings::NumericColumns;
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
                let tenant = tenant_tables.contains(table).then_some("tenant_id");
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

/// Every index of `schema` with its definition, sorted: `advise` compares
/// this before and after to prove the database ends as it began.
pub async fn index_catalog(
    client: &tokio_postgres::Client,
    schema: &str,
) -> crate::error::Result<Vec<(String, String)>> {
    Ok(client
        .query(
            "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace \
             WHERE n.nspname = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("listing indexes", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
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
    use super::candidates::IndexColumn;
    use super::*;

    fn def(table: &str, cols: &[&str]) -> IndexDef {
        IndexDef {
            include: Vec::new(),
            predicate: None,
            table: table.into(),
            columns: cols
                .iter()
                .map(|c| IndexColumn {
                    name: c.to_string(),
                    desc: false,
                })
                .collect(),
        }
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
}

fn default_schema() -> String {
    crate::pg::SCHEMA.into()
}

/// The schema most of the plans' relations live in: the advisor's schema
/// (crmbench's `crm` for the built-in workload, a client's own otherwise).
pub fn workload_schema(plans: &PlansFile) -> String {
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
        .map_or_else(default_schema, |(s, _)| s.to_string())
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
    use crate::rng::{Prng, tag};
    use crate::workload::Param;
    use crate::workload::params::Value;

    let (workload, pools) = crate::run::prepare(target, path).await?;
    let admin = crate::pg::connect(&target.admin()).await?;
    let schema_name = workload_schema(plans);
    let schema = schema_name.as_str();
    let tables: HashSet<String> = admin
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("listing tables", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    // Column types of every table: numeric comparisons are not leakproof,
    // tenant_id marks a tenant table, and remedies rewrite numeric and text
    // predicates.
    let typed_columns: Vec<(String, String, String)> = admin
        .query(
            "SELECT c.relname::text, a.attname::text, t.typname::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("reading column types", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let mut numeric = NumericColumns::new();
    let mut tenant_tables = HashSet::new();
    for (table, column, ty) in &typed_columns {
        if column == "tenant_id" {
            tenant_tables.insert(table.clone());
        } else if ty == "numeric" {
            numeric
                .entry(table.clone())
                .or_default()
                .push(column.clone());
        }
    }
    // Read once: candidates skip what these serve; drop advice judges them.
    let current_indexes = drops::existing(&admin, schema).await?;
    let existing: Vec<IndexDef> = current_indexes.iter().map(|e| e.def.clone()).collect();
    // Columns with a handful of values (statuses, kinds): a constant on one of
    // them in the SQL is a partial-index candidate.
    let low_cardinality: HashSet<(String, String)> = admin
        .query(
            "SELECT tablename::text, attname::text FROM pg_stats \
             WHERE schemaname = $1 AND n_distinct BETWEEN 1 AND 20",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("reading pg_stats", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    // Partition → its partitioned root: a plan reads the partitions it pruned
    // to, but the index belongs on the root (every partition gets one).
    let parent_rows = admin
        .query(
            "SELECT c.relname::text, p.relname::text FROM pg_inherits i \
             JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
             JOIN pg_namespace n ON n.oid = p.relnamespace \
             WHERE n.nspname = $1 AND p.relkind = 'p'",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("reading partitions", e))?;
    let parent_of: BTreeMap<String, String> =
        parent_rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let root = |table: &str| {
        let mut t = table.to_string();
        // Bounded: partition trees are shallow, and a cycle is impossible.
        for _ in 0..8 {
            match parent_of.get(&t) {
                Some(p) => t = p.clone(),
                None => break,
            }
        }
        t
    };
    let mut partitions: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for leaf in parent_of.keys() {
        if !parent_of.values().any(|p| p == leaf) {
            partitions.entry(root(leaf)).or_default().push(leaf.clone());
        }
    }
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
        &numeric,
        &tenant_tables,
        "tenant_id",
        &low_cardinality,
    ) {
        if !named_in_sql(&d.table) {
            d.table = root(&d.table);
        }
        if !mapped.contains(&d) {
            mapped.push(d);
        }
    }
    let candidates: Vec<IndexDef> = mapped
        .into_iter()
        // Tables of other schemas (a workload touching several) are left out:
        // the indexes go in one schema.
        .filter(|d| tables.contains(&d.table) && !already_served(d, &existing))
        .collect();
    let candidates = with_prefixes(candidates, &tenant_tables, &existing);

    // Each query weighs by how often it ran (the run's counts) when a run is
    // at hand, else by the workload's weights.
    let counted = |name: &str| {
        results
            .and_then(|r| r.queries.iter().find(|q| q.name == name))
            .map(|q| q.baseline.count as f64)
    };
    let use_counts = results.is_some_and(|r| r.queries.iter().any(|q| q.baseline.count > 0));
    let weight_of = |q: &crate::workload::Query| {
        if use_counts {
            counted(&q.name).unwrap_or(0.0)
        } else {
            f64::from(q.weight)
        }
    };
    let total_weight: f64 = workload
        .queries
        .iter()
        .map(weight_of)
        .sum::<f64>()
        .max(1e-9);
    let (big, small) = pools.tenants.big_and_small();
    let mut items = Vec::new();
    for (qi, q) in workload.queries.iter().enumerate() {
        let qp = plans.queries.iter().find(|p| p.name == q.name);
        for (k, st) in q.statements.iter().enumerate() {
            let mut tables = Vec::new();
            let mut writes = None;
            for tp in qp.map(|p| p.tenants.as_slice()).unwrap_or_default() {
                if let Some(plan) = tp.statements.get(k).and_then(|s| s.plan.as_ref()) {
                    for n in plan.plan.walk() {
                        if let Some(rel) = &n.relation {
                            // A partition's indexes come from its root's.
                            for t in [rel.clone(), root(rel)] {
                                if !tables.contains(&t) {
                                    tables.push(t);
                                }
                            }
                            if n.node_type == "ModifyTable" {
                                writes = Some(root(rel));
                            }
                        }
                    }
                }
            }
            let mut samples = Vec::new();
            for (class, tenant) in [("big", big), ("small", small)] {
                let mut rng =
                    Prng::for_parts(&[opts.seed, tag("advise"), qi as u64, k as u64, tag(class)]);
                let values: Vec<Value> = st
                    .params
                    .iter()
                    .map(|p| match p {
                        Param::Ref(_) => Value::Null,
                        other => pools.value(other, &mut rng, tenant, &Default::default()),
                    })
                    .collect();
                samples.push((tenant.to_string(), values));
            }
            items.push(select::Item {
                query: q.name.clone(),
                sql: st.sql.clone(),
                weight: weight_of(q) / total_weight,
                samples,
                tables,
                writes,
            });
        }
    }
    let started = std::time::Instant::now();
    let has_hypopg: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
            &[],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("checking for hypopg", e))?
        .get(0);
    // A clone needs the database without sessions: let ours go first.
    drop(admin);
    let (role, setting) = (
        workload.context.role.as_deref(),
        workload.context.tenant_setting.as_deref(),
    );
    let mut whatif = if opts.no_hypopg || !has_hypopg {
        if !opts.no_hypopg {
            eprintln!(
                "advise: HypoPG is not installed here: costing with real indexes on a clone instead"
            );
        }
        whatif::WhatIf::open_real(target, role, setting, schema).await?
    } else {
        whatif::WhatIf::open(target, role, setting, schema).await?
    };
    let method_used = whatif.method();
    let selection = select::greedy(
        &mut whatif,
        &items,
        &candidates,
        opts.max_indexes,
        (opts.budget_mb * 1e6) as i64,
    )
    .await;
    let calls = whatif.calls;
    whatif.close().await?;
    let selection = selection?;
    let recommended: Vec<IndexDef> = selection.chosen.iter().map(|c| c.def.clone()).collect();
    let drops = drops::advise_drops(
        schema,
        &current_indexes,
        results.map(|r| r.index_usage.as_slice()),
        &recommended,
    );
    let remedies = remedies_for(plans, schema, &typed_columns, &tenant_tables);
    let rls_findings = plans
        .queries
        .iter()
        .flat_map(|q| {
            q.findings
                .iter()
                .filter(|f| f.kind == crate::explain::findings::FindingKind::RlsNonLeakproof)
                .map(|f| (q.name.clone(), f.clone()))
        })
        .collect();
    Ok(Advice {
        format_version: FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        workload: plans.workload.clone(),
        method: format!(
            "what-if plans with {method_used}, as role {} with the tenant set, for the largest tenant and a small one",
            workload
                .context
                .role
                .as_deref()
                .unwrap_or("(connecting user)")
        ),
        candidates,
        selection,
        whatif_calls: calls,
        whatif_seconds: started.elapsed().as_secs_f64(),
        rls_findings,
        verified: None,
        drops,
        schema: schema_name.clone(),
        partitioned: partitions
            .into_iter()
            .filter(|(t, _)| recommended.iter().any(|d| &d.table == t))
            .collect(),
        remedies,
        weights_from: if use_counts {
            "transaction counts of the run's results.json".into()
        } else {
            "the workload file's weights".into()
        },
    })
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

/// `migration.sql`: one `CREATE INDEX CONCURRENTLY IF NOT EXISTS` per
/// statement, with what a DBA must know to run it.
pub fn migration_sql(advice: &Advice, schema: &str) -> String {
    let mut out = String::from(
        "-- crmbench index migration.\n\
         -- Run OUTSIDE a transaction block (CREATE INDEX CONCURRENTLY refuses to run in one;\n\
         -- psql -f runs each statement on its own). Lock: SHARE UPDATE EXCLUSIVE on the table,\n\
         -- so reads and writes go on while each index builds.\n\
         -- A failed concurrent build leaves an INVALID index that IF NOT EXISTS would then skip\n\
         -- silently; list them with:\n\
         --   SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid;\n\
         -- and DROP INDEX CONCURRENTLY each before running this file again.\n\n",
    );
    for c in advice.kept() {
        let parts = advice.partitioned.get(&c.def.table).map(Vec::as_slice);
        out.push_str(&format!("-- serves: {}\n", c.queries.join(", ")));
        if parts.is_some() {
            out.push_str(&format!(
                "-- {} is partitioned (CREATE INDEX CONCURRENTLY is refused on it): the index on\n\
                 -- the parent alone, each partition's built concurrently, then attached.\n",
                c.def.table
            ));
        }
        for statement in c.def.migration_statements(schema, parts) {
            out.push_str(&format!("{statement};\n"));
        }
        out.push('\n');
    }
    out
}

/// `rollback.sql`: the matching drops, in reverse order.
pub fn rollback_sql(advice: &Advice, schema: &str) -> String {
    let mut out = String::from(
        "-- crmbench rollback of migration.sql (run outside a transaction block).\n\n",
    );
    for c in advice.kept().rev() {
        // A partitioned index cannot be dropped concurrently; dropping it
        // drops its partitions' indexes too.
        let concurrently = if advice.partitioned.contains_key(&c.def.table) {
            ""
        } else {
            "CONCURRENTLY "
        };
        out.push_str(&format!(
            "DROP INDEX {concurrently}IF EXISTS {}.{};\n",
            candidates::sql_ident(schema),
            c.def.name()
        ));
    }
    out
}

/// `remedies.sql`: each remedy's migration and the statement rewritten to
/// use it, with the measured effect when there is one.
pub fn remedies_sql(advice: &Advice) -> String {
    let mut out = String::from(
        "-- crmbench remedies: schema changes that make a predicate leakproof, so the\n\
         -- application role can use an index under row-level security. Review each:\n\
         -- ALTER TABLE … ADD COLUMN … STORED rewrites the table under an ACCESS\n\
         -- EXCLUSIVE lock; the CREATE INDEX CONCURRENTLY must run outside a transaction;\n\
         -- the application must then send the rewritten statement.\n\n",
    );
    if advice.remedies.is_empty() {
        out.push_str("-- none: no non-leakproof predicate with a mechanical remedy.\n");
    }
    for r in &advice.remedies {
        out.push_str(&format!("-- {}: {}\n", r.query, r.change));
        if let Some(m) = &r.measured {
            out.push_str(&format!(
                "-- measured (app role, tenant set, {} runs each): {:.2} ms → {:.2} ms, ratio {:.2} [{:.2}, {:.2}]\n",
                m.iterations, m.before_p50_ms, m.after_p50_ms, m.ratio.ratio, m.ratio.lo, m.ratio.hi
            ));
        }
        for m in &r.migration {
            out.push_str(&format!("{m};\n"));
        }
        out.push_str("-- the statement, rewritten:\n");
        for line in r.rewritten_sql.trim().lines() {
            out.push_str(&format!("--   {line}\n"));
        }
        out.push('\n');
    }
    out
}
