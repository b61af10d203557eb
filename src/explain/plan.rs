//! A typed plan tree, read from `EXPLAIN (ANALYZE, BUFFERS, VERBOSE, FORMAT
//! JSON)`, and its fingerprint: node types, relations, index names and join
//! order — never costs or row counts, so two runs of the same plan match.

use serde::{Deserialize, Serialize};

/// One plan node (the fields crmbench reads; others are ignored).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[allow(missing_docs)]
pub struct PlanNode {
    #[serde(rename = "Node Type")]
    pub node_type: String,
    #[serde(
        rename = "Parent Relationship",
        skip_serializing_if = "Option::is_none"
    )]
    pub parent_relationship: Option<String>,
    #[serde(rename = "Relation Name", skip_serializing_if = "Option::is_none")]
    pub relation: Option<String>,
    #[serde(rename = "Schema", skip_serializing_if = "Option::is_none")]
    pub schema: Option<String>,
    #[serde(rename = "Alias", skip_serializing_if = "Option::is_none")]
    pub alias: Option<String>,
    #[serde(rename = "Index Name", skip_serializing_if = "Option::is_none")]
    pub index: Option<String>,
    #[serde(rename = "Join Type", skip_serializing_if = "Option::is_none")]
    pub join_type: Option<String>,
    #[serde(rename = "Index Cond", skip_serializing_if = "Option::is_none")]
    pub index_cond: Option<String>,
    #[serde(rename = "Recheck Cond", skip_serializing_if = "Option::is_none")]
    pub recheck_cond: Option<String>,
    #[serde(rename = "Filter", skip_serializing_if = "Option::is_none")]
    pub filter: Option<String>,
    #[serde(rename = "Join Filter", skip_serializing_if = "Option::is_none")]
    pub join_filter: Option<String>,
    #[serde(rename = "Hash Cond", skip_serializing_if = "Option::is_none")]
    pub hash_cond: Option<String>,
    #[serde(rename = "Merge Cond", skip_serializing_if = "Option::is_none")]
    pub merge_cond: Option<String>,
    #[serde(rename = "Output", skip_serializing_if = "Option::is_none")]
    pub output: Option<Vec<String>>,
    #[serde(rename = "Sort Key", skip_serializing_if = "Option::is_none")]
    pub sort_key: Option<Vec<String>>,
    #[serde(rename = "Sort Method", skip_serializing_if = "Option::is_none")]
    pub sort_method: Option<String>,
    #[serde(rename = "Sort Space Type", skip_serializing_if = "Option::is_none")]
    pub sort_space_type: Option<String>,
    #[serde(rename = "Hash Batches", skip_serializing_if = "Option::is_none")]
    pub hash_batches: Option<u64>,
    #[serde(rename = "Lossy Heap Blocks", skip_serializing_if = "Option::is_none")]
    pub lossy_heap_blocks: Option<u64>,
    #[serde(rename = "Total Cost")]
    pub total_cost: f64,
    #[serde(rename = "Plan Rows")]
    pub plan_rows: f64,
    #[serde(rename = "Actual Rows", skip_serializing_if = "Option::is_none")]
    pub actual_rows: Option<f64>,
    #[serde(rename = "Actual Loops", skip_serializing_if = "Option::is_none")]
    pub actual_loops: Option<f64>,
    #[serde(rename = "Actual Total Time", skip_serializing_if = "Option::is_none")]
    pub actual_total_time: Option<f64>,
    #[serde(
        rename = "Rows Removed by Filter",
        skip_serializing_if = "Option::is_none"
    )]
    pub rows_removed_by_filter: Option<f64>,
    #[serde(
        rename = "Rows Removed by Index Recheck",
        skip_serializing_if = "Option::is_none"
    )]
    pub rows_removed_by_recheck: Option<f64>,
    #[serde(rename = "Shared Hit Blocks", skip_serializing_if = "Option::is_none")]
    pub shared_hit_blocks: Option<u64>,
    #[serde(rename = "Shared Read Blocks", skip_serializing_if = "Option::is_none")]
    pub shared_read_blocks: Option<u64>,
    #[serde(rename = "Plans", skip_serializing_if = "Vec::is_empty")]
    pub plans: Vec<PlanNode>,
}

/// The top of one EXPLAIN's JSON output.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Explained {
    /// The plan tree.
    #[serde(rename = "Plan")]
    pub plan: PlanNode,
    /// Planning time, ms.
    #[serde(rename = "Planning Time", skip_serializing_if = "Option::is_none")]
    pub planning_ms: Option<f64>,
    /// Execution time, ms.
    #[serde(rename = "Execution Time", skip_serializing_if = "Option::is_none")]
    pub execution_ms: Option<f64>,
}

impl Explained {
    /// Parse EXPLAIN's `[ { "Plan": … } ]` output.
    pub fn parse(json: &serde_json::Value) -> Result<Explained, String> {
        let first = json
            .as_array()
            .and_then(|a| a.first())
            .ok_or_else(|| "EXPLAIN output is not a one-element array".to_string())?;
        serde_json::from_value(first.clone()).map_err(|e| format!("unexpected EXPLAIN JSON: {e}"))
    }
}

impl PlanNode {
    /// This node and every descendant, depth first.
    pub fn walk(&self) -> Vec<&PlanNode> {
        let mut out = vec![self];
        for child in &self.plans {
            out.extend(child.walk());
        }
        out
    }

    /// Rows produced over all loops.
    pub fn total_rows(&self) -> f64 {
        self.actual_rows.unwrap_or(0.0) * self.actual_loops.unwrap_or(1.0)
    }

    /// "Index Scan using x on customers" style label.
    pub fn label(&self) -> String {
        let mut s = self.node_type.clone();
        if let Some(join) = &self.join_type {
            if self.node_type.contains("Join") || self.node_type == "Nested Loop" {
                s = format!("{s} ({join})");
            }
        }
        if let Some(ix) = &self.index {
            s.push_str(&format!(" using {ix}"));
        }
        if let Some(rel) = &self.relation {
            s.push_str(&format!(" on {rel}"));
        }
        s
    }

    /// The plan's shape: node types, relations, indexes, join order.
    pub fn shape(&self) -> String {
        let mut s = self.label();
        if !self.plans.is_empty() {
            let children: Vec<String> = self.plans.iter().map(PlanNode::shape).collect();
            s.push_str(&format!(" [{}]", children.join(", ")));
        }
        s
    }

    /// The tree as EXPLAIN's text format indents it, one node a line with
    /// rows (estimated / actual per loop × loops), time and the conditions
    /// a reader checks first: what a report shows behind a `<details>`.
    pub fn tree_text(&self) -> String {
        let mut out = String::new();
        self.tree_lines(0, &mut out);
        out
    }

    fn tree_lines(&self, depth: usize, out: &mut String) {
        let pad = "      ".repeat(depth);
        let arrow = if depth == 0 { "" } else { "->  " };
        let mut line = format!(
            "{pad}{arrow}{}  (rows est {:.0}",
            self.label(),
            self.plan_rows
        );
        if let Some(rows) = self.actual_rows {
            line.push_str(&format!(", actual {rows:.0}"));
            if let Some(loops) = self.actual_loops.filter(|l| *l > 1.0) {
                line.push_str(&format!(" × {loops:.0} loops"));
            }
        }
        if let Some(ms) = self.actual_total_time {
            line.push_str(&format!(", {ms:.3} ms"));
        }
        line.push_str(")\n");
        out.push_str(&line);
        let conds = [
            ("Index Cond", &self.index_cond),
            ("Hash Cond", &self.hash_cond),
            ("Merge Cond", &self.merge_cond),
            ("Join Filter", &self.join_filter),
            ("Filter", &self.filter),
        ];
        for (name, cond) in conds {
            if let Some(c) = cond {
                out.push_str(&format!("{pad}      {name}: {c}\n"));
            }
        }
        if let Some(removed) = self.rows_removed_by_filter.filter(|r| *r > 0.0) {
            out.push_str(&format!(
                "{pad}      Rows Removed by Filter: {removed:.0}\n"
            ));
        }
        for child in &self.plans {
            child.tree_lines(depth + 1, out);
        }
    }

    /// A short stable hash of [`PlanNode::shape`].
    pub fn fingerprint(&self) -> String {
        let h = self
            .shape()
            .bytes()
            .fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
                (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
            });
        format!("{h:016x}")
    }
}

/// Split `(a AND b AND (c OR d))` into its top-level conjuncts.
pub fn conjuncts(expr: &str) -> Vec<String> {
    let mut e = expr.trim();
    while e.starts_with('(') && e.ends_with(')') && balanced_inner(e) {
        e = e[1..e.len() - 1].trim();
    }
    let mut out = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    let bytes = e.as_bytes();
    let mut i = 0;
    let mut in_quote = false;
    while i < bytes.len() {
        match bytes[i] {
            b'\'' => in_quote = !in_quote,
            b'(' if !in_quote => depth += 1,
            b')' if !in_quote => depth -= 1,
            b' ' if !in_quote && depth == 0 && e[i..].starts_with(" AND ") => {
                out.push(e[start..i].trim().to_string());
                start = i + 5;
                i += 4;
            }
            _ => {}
        }
        i += 1;
    }
    out.push(e[start..].trim().to_string());
    out.into_iter().filter(|s| !s.is_empty()).collect()
}

/// Whether the outer parentheses of `e` enclose all of it.
pub fn balanced_inner(e: &str) -> bool {
    let mut depth = 0i32;
    let mut in_quote = false;
    for (i, c) in e.char_indices() {
        match c {
            '\'' => in_quote = !in_quote,
            '(' if !in_quote => depth += 1,
            ')' if !in_quote => {
                depth -= 1;
                if depth == 0 && i != e.len() - 1 {
                    return false;
                }
            }
            _ => {}
        }
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> serde_json::Value {
        serde_json::json!([{
            "Plan": {
                "Node Type": "Limit", "Total Cost": 10.0, "Plan Rows": 1.0, "Actual Rows": 1.0, "Actual Loops": 1.0,
                "Plans": [{
                    "Node Type": "Index Scan", "Parent Relationship": "Outer", "Relation Name": "customers",
                    "Index Name": "customers_email_idx", "Total Cost": 8.0, "Plan Rows": 1.0,
                    "Actual Rows": 1.0, "Actual Loops": 1.0, "Index Cond": "(email = 'a'::text)"
                }]
            },
            "Planning Time": 0.1, "Execution Time": 0.05
        }])
    }

    #[test]
    fn parses_and_fingerprints_without_costs() {
        let e = Explained::parse(&sample()).unwrap();
        assert_eq!(
            e.plan.shape(),
            "Limit [Index Scan using customers_email_idx on customers]"
        );
        let mut changed = sample();
        changed[0]["Plan"]["Plans"][0]["Actual Rows"] = serde_json::json!(7.0);
        changed[0]["Plan"]["Total Cost"] = serde_json::json!(99.0);
        assert_eq!(
            Explained::parse(&changed).unwrap().plan.fingerprint(),
            e.plan.fingerprint()
        );
        let mut other = sample();
        other[0]["Plan"]["Plans"][0]["Index Name"] = serde_json::json!("customers_pkey");
        assert_ne!(
            Explained::parse(&other).unwrap().plan.fingerprint(),
            e.plan.fingerprint()
        );
    }

    #[test]
    fn tree_text_indents_children_with_their_conditions() {
        let e = Explained::parse(&sample()).unwrap();
        assert_eq!(
            e.plan.tree_text(),
            "Limit  (rows est 1, actual 1)\n      ->  Index Scan using customers_email_idx on \
             customers  (rows est 1, actual 1)\n            Index Cond: (email = 'a'::text)\n"
        );
    }
}
