//! Findings read from an executed plan, each naming its node with a one-line
//! hint: what a performance engineer looks for first in EXPLAIN ANALYZE.

use serde::{Deserialize, Serialize};

use super::plan::PlanNode;

/// What kind of problem.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    /// A sequential scan of a large table keeps few of the rows it reads.
    SeqScanSelective,
    /// A filter throws away far more rows than the node returns.
    FilterRemovesMost,
    /// The planner's row estimate is off by 10× or more.
    EstimateOff,
    /// A sort or hash spilled to disk.
    Spill,
    /// A nested loop repeats a scan many times.
    NestedLoopMany,
    /// A bitmap heap scan went lossy (work_mem too small for exact bitmaps).
    LossyBitmap,
    /// The big and the small tenant get different plans.
    PlansDiffer,
    /// Row-level security keeps a non-leakproof predicate from being an index
    /// condition: it is a filter above the tenant part of the index.
    RlsNonLeakproof,
    /// A join between two tenant tables whose condition leaves out
    /// `tenant_id`: no `(tenant_id, key)` index serves the join, and only
    /// row-level security keeps it inside the tenant.
    JoinWithoutTenant,
}

impl FindingKind {
    /// The name every output uses (plans.json, explain's table, the
    /// report): `filter_removes_most`, never the Rust variant's name.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::SeqScanSelective => "seq_scan_selective",
            FindingKind::FilterRemovesMost => "filter_removes_most",
            FindingKind::EstimateOff => "estimate_off",
            FindingKind::Spill => "spill",
            FindingKind::NestedLoopMany => "nested_loop_many",
            FindingKind::LossyBitmap => "lossy_bitmap",
            FindingKind::PlansDiffer => "plans_differ",
            FindingKind::RlsNonLeakproof => "rls_non_leakproof",
            FindingKind::JoinWithoutTenant => "join_without_tenant",
        }
    }
}

impl std::fmt::Display for FindingKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Kind.
    pub kind: FindingKind,
    /// The node ("Seq Scan on orders").
    pub node: String,
    /// One line for the user.
    pub hint: String,
}

/// Rows a scan must remove before a sequential scan counts as "large".
const LARGE: f64 = 1000.0;

/// Columns of type numeric per relation: their comparisons are not leakproof,
/// and EXPLAIN prints numeric constants without a cast, so the plan text alone
/// cannot tell.
pub type NumericColumns = std::collections::HashMap<String, Vec<String>>;

/// Findings of one plan tree. `rls` says the plan ran under row-level
/// security (as the app role with a tenant set).
pub fn findings(root: &PlanNode, rls: bool, numeric: &NumericColumns) -> Vec<Finding> {
    let mut out = Vec::new();
    let stopped_early = under_a_stopped_limit(root);
    for node in root.walk() {
        let label = node.label();
        out.extend(filtering(node, &label));
        // Under a LIMIT that stopped early a node returns fewer rows than
        // its estimate (which counts them all) by design.
        let limited = stopped_early.iter().any(|n| std::ptr::eq(*n, node));
        if !limited {
            out.extend(estimate_off(node, &label));
        }
        if node.sort_space_type.as_deref() == Some("Disk") || node.hash_batches.unwrap_or(1) > 1 {
            out.push(Finding {
                kind: FindingKind::Spill,
                node: label.clone(),
                hint: "spilled to disk: raise work_mem for this query, or sort/hash fewer rows"
                    .into(),
            });
        }
        out.extend(nested_loop_many(node, &label));
        out.extend(join_without_tenant(node));
        if node.lossy_heap_blocks.unwrap_or(0) > 0 {
            out.push(Finding {
                kind: FindingKind::LossyBitmap,
                node: label.clone(),
                hint: format!(
                    "{} heap blocks were lossy (every row rechecked): raise work_mem or use a more selective index",
                    node.lossy_heap_blocks.unwrap_or(0)
                ),
            });
        }
        if rls {
            out.extend(rls_non_leakproof(node, &label, numeric));
        }
    }
    out
}

/// Rows read and thrown away by a filter: a selective sequential scan, or
/// a filter on top of an index that removes most rows.
fn filtering(node: &PlanNode, label: &str) -> Option<Finding> {
    let removed = node.rows_removed_by_filter.unwrap_or(0.0) * node.actual_loops.unwrap_or(1.0);
    let returned = node.total_rows();
    if removed < LARGE || returned * 10.0 > removed {
        return None;
    }
    let filter = node.filter.as_deref().unwrap_or("?");
    Some(if node.node_type == "Seq Scan" {
        Finding {
            kind: FindingKind::SeqScanSelective,
            node: label.to_string(),
            hint: format!(
                "reads {:.0} rows to return {:.0}: an index on the filtered columns ({filter}) would skip them",
                removed + returned,
                returned,
            ),
        }
    } else {
        Finding {
            kind: FindingKind::FilterRemovesMost,
            node: label.to_string(),
            hint: format!(
                "the filter removes {removed:.0} rows for {returned:.0} returned: move its columns into the index ({filter})"
            ),
        }
    })
}

/// The planner's row estimate off by 10× or more (100 rows or more).
fn estimate_off(node: &PlanNode, label: &str) -> Option<Finding> {
    let actual = node.actual_rows?;
    let (est, act) = (node.plan_rows.max(1.0), actual.max(1.0));
    ((est >= 100.0 || act >= 100.0) && (est / act >= 10.0 || act / est >= 10.0)).then(|| Finding {
        kind: FindingKind::EstimateOff,
        node: label.to_string(),
        hint: format!(
            "estimated {:.0} rows, got {:.0} per loop: stale or missing statistics, or correlated \
             columns (ANALYZE; CREATE STATISTICS)",
            node.plan_rows, actual
        ),
    })
}

/// A nested loop repeating its inner side many times (or a sequential scan
/// more than a few times).
fn nested_loop_many(node: &PlanNode, label: &str) -> Option<Finding> {
    if node.node_type != "Nested Loop" {
        return None;
    }
    let inner = node.plans.get(1)?;
    let loops = inner.actual_loops.unwrap_or(1.0);
    let scan = inner.walk().into_iter().find(|n| n.node_type == "Seq Scan");
    (loops >= 1000.0 || (loops >= 10.0 && scan.is_some())).then(|| Finding {
        kind: FindingKind::NestedLoopMany,
        node: label.to_string(),
        hint: format!(
            "repeats its inner side {loops:.0} times{}: an index for the join key, or a hash join",
            scan.map(|s| format!(" ({})", s.label()))
                .unwrap_or_default()
        ),
    })
}

/// A filter on a table under row-level security that is not leakproof, so
/// it can never be an index condition for the app role.
fn rls_non_leakproof(node: &PlanNode, label: &str, numeric: &NumericColumns) -> Option<Finding> {
    let relation = node.relation.as_ref()?;
    let filter = node.filter.as_ref()?;
    let removed = node.rows_removed_by_filter.unwrap_or(0.0) * node.actual_loops.unwrap_or(1.0);
    let numeric_cols = numeric.get(relation).map(Vec::as_slice).unwrap_or_default();
    let (what, remedy) =
        non_leakproof(filter).or_else(|| numeric_comparison(filter, numeric_cols))?;
    Some(Finding {
        kind: FindingKind::RlsNonLeakproof,
        node: label.to_string(),
        hint: format!(
            "under row-level security {what} is not leakproof, so it cannot be an index \
             condition for the app role (it filters {removed:.0} rows here): {remedy}"
        ),
    })
}

/// The nodes below a Limit that returned fewer rows than its child was
/// estimated to produce (it stopped pulling), down to the first node that
/// reads all its input anyway (a Sort, Hash or Aggregate below that
/// point runs to completion).
fn under_a_stopped_limit(root: &PlanNode) -> Vec<&PlanNode> {
    fn mark<'a>(node: &'a PlanNode, out: &mut Vec<&'a PlanNode>) {
        out.push(node);
        // A Sort or Gather Merge is cut short itself, but what it reads runs whole.
        if matches!(
            node.node_type.as_str(),
            "Sort" | "Incremental Sort" | "Hash" | "Aggregate" | "Gather Merge"
        ) {
            return;
        }
        for c in &node.plans {
            mark(c, out);
        }
    }
    let mut out = Vec::new();
    for n in root.walk() {
        if n.node_type == "Limit" {
            for c in &n.plans {
                if c.actual_rows.is_some_and(|a| a < c.plan_rows) {
                    mark(c, &mut out);
                }
            }
        }
    }
    out
}

/// A join (hash, merge, or a nested loop's inner index condition) of two
/// sides that both filter on `tenant_id`, whose join condition pairs other
/// columns but never `tenant_id`.
fn join_without_tenant(node: &PlanNode) -> Option<Finding> {
    let (outer, inner) = (node.plans.first()?, node.plans.get(1)?);
    let mentions_tenant = |side: &PlanNode| {
        side.walk().iter().any(|n| {
            n.relation.is_some()
                && [&n.filter, &n.index_cond, &n.recheck_cond]
                    .into_iter()
                    .flatten()
                    .any(|t| t.contains("tenant_id"))
        })
    };
    if !node.node_type.contains("Join") && node.node_type != "Nested Loop" {
        return None;
    }
    let mut texts: Vec<&str> = [&node.hash_cond, &node.merge_cond, &node.join_filter]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if node.node_type == "Nested Loop" {
        texts.extend(
            inner
                .walk()
                .into_iter()
                .filter_map(|n| n.index_cond.as_deref()),
        );
    }
    let pairs: Vec<String> = texts
        .iter()
        .flat_map(|t| super::plan::conjuncts(t))
        .filter(|c| joins_two_aliases(c))
        .collect();
    if pairs.is_empty()
        || pairs.iter().any(|c| c.contains("tenant_id"))
        || !mentions_tenant(outer)
        || !mentions_tenant(inner)
    {
        return None;
    }
    Some(Finding {
        kind: FindingKind::JoinWithoutTenant,
        node: node.label(),
        hint: format!(
            "joins on {} without tenant_id: add `AND <a>.tenant_id = <b>.tenant_id` so a (tenant_id, key) \
             index can serve the join and the query stays in the tenant without relying on RLS alone",
            pairs.join(" AND ")
        ),
    })
}

/// `(a.x = b.y)` with two different qualifiers.
fn joins_two_aliases(conjunct: &str) -> bool {
    let c = conjunct
        .trim()
        .trim_start_matches('(')
        .trim_end_matches(')');
    let Some((l, r)) = c.split_once(" = ") else {
        return false;
    };
    let alias = |side: &str| {
        let s = side.trim().trim_start_matches('(');
        let s = s.split("::").next().unwrap_or(s);
        let s = s.trim_end_matches(')');
        s.rsplit_once('.')
            .map(|(a, _)| a.to_string())
            .filter(|a| !a.is_empty() && !a.contains(['(', ' ', '\'']))
    };
    matches!((alias(l), alias(r)), (Some(a), Some(b)) if a != b)
}

const NUMERIC: (&str, &str) = (
    "a numeric comparison (numeric_lt/numeric_eq, Prisma's Decimal)",
    "keep money as integer cents (bigint) or add a stored generated bigint column; bigint \
     comparisons are leakproof",
);

/// A comparison on one of `columns` (numeric) inside `filter`.
pub fn numeric_comparison(
    filter: &str,
    columns: &[String],
) -> Option<(&'static str, &'static str)> {
    columns
        .iter()
        .any(|c| {
            [" = ", " <> ", " < ", " > ", " <= ", " >= "]
                .iter()
                .any(|op| filter.contains(&format!("{c}{op}")))
        })
        .then_some(NUMERIC)
}

/// The non-leakproof operator in a filter, and the remedy.
pub fn non_leakproof(filter: &str) -> Option<(&'static str, &'static str)> {
    let checks: [(&str, &str, &str); 7] = [
        (
            "~~*",
            "ILIKE (texticlike)",
            "store a lower-cased copy as a stored generated column and search it with a text range \
             (col >= 'abc' AND col < 'abd') on a default btree",
        ),
        (
            "~~",
            "LIKE (textlike)",
            "search a prefix as a text range (col >= 'abc' AND col < 'abd'), which is leakproof",
        ),
        (
            "@>",
            "jsonb containment @> (jsonb_contains)",
            "extract the attribute into a scalar column (generated, stored) and compare it with =",
        ),
        (
            "::numeric",
            "a numeric comparison (numeric_lt/numeric_eq, Prisma's Decimal)",
            "keep money as integer cents (bigint) or add a stored generated bigint column; bigint \
             comparisons are leakproof",
        ),
        (
            "lower(",
            "an expression (lower(…))",
            "a stored generated column (e.g. email_lower text) indexed with (tenant_id, email_lower)",
        ),
        (
            "upper(",
            "an expression (upper(…))",
            "a stored generated column indexed with tenant_id first",
        ),
        (
            " ~ ",
            "a regular expression (textregexeq)",
            "a text range or an extracted column",
        ),
    ];
    checks
        .iter()
        .find(|(needle, _, _)| filter.contains(needle))
        .map(|(_, what, remedy)| (*what, *remedy))
}

#[cfg(test)]
mod tests {
    /// Every output prints a kind as plans.json spells it (issue 16 item 12).
    #[test]
    fn kind_names_are_the_files_names() {
        for kind in [
            FindingKind::SeqScanSelective,
            FindingKind::FilterRemovesMost,
            FindingKind::EstimateOff,
            FindingKind::Spill,
            FindingKind::NestedLoopMany,
            FindingKind::LossyBitmap,
            FindingKind::PlansDiffer,
            FindingKind::RlsNonLeakproof,
            FindingKind::JoinWithoutTenant,
        ] {
            let json = serde_json::to_value(kind).unwrap();
            assert_eq!(json.as_str(), Some(kind.name()));
            assert_eq!(kind.to_string(), kind.name());
        }
    }

    use super::*;

    fn kinds(root: &PlanNode, rls: bool) -> Vec<FindingKind> {
        findings(root, rls, &NumericColumns::new())
            .into_iter()
            .map(|f| f.kind)
            .collect()
    }

    #[test]
    fn numeric_columns_compared_without_casts_are_found() {
        let cols = vec!["base_price".to_string()];
        assert!(
            numeric_comparison(
                "((p.metal = 'x'::text) AND (p.base_price >= 330.41))",
                &cols
            )
            .is_some()
        );
        assert!(numeric_comparison("(p.metal = 'x'::text)", &cols).is_none());
    }

    #[test]
    fn ilike_and_numeric_under_rls_name_the_operator() {
        let (w, _) = non_leakproof("((last_name)::text ~~* 'smi%'::text)").unwrap();
        assert!(w.contains("ILIKE"));
        let (w, r) =
            non_leakproof("((base_price >= '100'::numeric) AND (base_price <= '200'::numeric))")
                .unwrap();
        assert!(w.contains("numeric") && r.contains("cents"));
        assert!(non_leakproof("(status = 'open'::text)").is_none());
    }

    #[test]
    fn a_leaf_with_nothing_wrong_has_no_findings() {
        let node = PlanNode {
            node_type: "Index Scan".into(),
            relation: Some("customers".into()),
            plan_rows: 1.0,
            actual_rows: Some(1.0),
            actual_loops: Some(1.0),
            ..Default::default()
        };
        assert!(kinds(&node, true).is_empty());
    }
}
