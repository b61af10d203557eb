//! The index advisor (in progress): candidates read from the captured plans.
//! What-if costing with HypoPG as the app role, selection under a budget with
//! write costs, drop advice and paired verification build on this.

pub mod candidates;

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
) -> Vec<(IndexDef, Vec<String>)> {
    let mut by_def: BTreeMap<IndexDef, Vec<String>> = BTreeMap::new();
    for q in &plans.queries {
        for t in &q.tenants {
            for s in &t.statements {
                let Some(plan) = &s.plan else { continue };
                for (table, needs) in candidates::needs(&plan.plan, plans.rls, numeric) {
                    let tenant = tenant_tables.contains(&table).then_some(tenant_column);
                    if let Some(def) = candidates::candidate(&table, &needs, tenant) {
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
        if let Some(long) = defs.iter().find(|l| *l != short && l.covers_prefix(short)) {
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
    let rows = client
        .query(
            "SELECT c.relname::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND i.indpred IS NULL AND i.indexprs IS NULL",
            &[&schema],
        )
        .await
        .map_err(|e| crate::error::Error::from_pg("reading existing indexes", e))?;
    Ok(rows
        .iter()
        .map(|r| IndexDef {
            table: r.get(0),
            columns: r
                .get::<_, Vec<String>>(1)
                .into_iter()
                .map(|name| candidates::IndexColumn { name, desc: false })
                .collect(),
        })
        .collect())
}

/// Whether an existing index already leads with the candidate's columns
/// (direction aside: a btree scans both ways).
pub fn already_served(candidate: &IndexDef, existing: &[IndexDef]) -> bool {
    existing.iter().any(|e| {
        e.table == candidate.table
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
