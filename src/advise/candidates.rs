//! Index candidates read from executed plans (`EXPLAIN VERBOSE` prints every
//! filter, index condition, join condition and sort key with its columns; no
//! SQL parser needed). Per query and table: tenant-leading btree indexes with
//! equality columns first, then one range column, then ORDER BY columns with
//! their direction; join keys of both sides of every join; predicates that row-level
//! security keeps from being index conditions (non-leakproof) are left out.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::explain::findings::{self, NumericColumns};
use crate::explain::plan::PlanNode;

/// One column of an index.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexColumn {
    /// Column name.
    pub name: String,
    /// Descending order.
    pub desc: bool,
}

/// A btree index on one table.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct IndexDef {
    /// Table (unqualified, in the workload's schema).
    pub table: String,
    /// Key columns in order.
    pub columns: Vec<IndexColumn>,
    /// Partial index predicate (`status = 'open'`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub predicate: Option<String>,
    /// Non-key columns stored in the leaves (`INCLUDE`), for index-only scans.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub include: Vec<String>,
}

impl IndexDef {
    /// A plain index on `table`'s `columns`, ascending, no predicate or INCLUDE.
    pub fn on(table: &str, columns: &[&str]) -> IndexDef {
        IndexDef {
            table: table.into(),
            columns: columns
                .iter()
                .map(|c| IndexColumn {
                    name: c.to_string(),
                    desc: false,
                })
                .collect(),
            predicate: None,
            include: Vec::new(),
        }
    }

    /// A stable, readable name of at most 63 bytes.
    pub fn name(&self) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                c.name
                    .chars()
                    .map(|ch| {
                        if ch.is_ascii_alphanumeric() || ch == '_' {
                            ch
                        } else {
                            '_'
                        }
                    })
                    .collect::<String>()
                    .trim_matches('_')
                    .replace("__", "_")
            })
            .collect();
        let partial = self
            .predicate
            .as_ref()
            .map(|p| {
                // Casts add nothing to a name: `'open'::text` → `'open'`.
                let uncast: String = p
                    .split("::")
                    .enumerate()
                    .map(|(i, part)| {
                        if i == 0 {
                            part
                        } else {
                            part.trim_start_matches(|c: char| {
                                c.is_ascii_alphanumeric() || c == '_' || c == ' '
                            })
                        }
                    })
                    .collect();
                let words: String = uncast
                    .chars()
                    .map(|c| {
                        if c.is_ascii_alphanumeric() {
                            c.to_ascii_lowercase()
                        } else {
                            '_'
                        }
                    })
                    .collect();
                let words: Vec<&str> = words.split('_').filter(|w| !w.is_empty()).collect();
                format!("_{}", words.join("_"))
            })
            .unwrap_or_default();
        let include = if self.include.is_empty() {
            String::new()
        } else {
            format!("_incl_{}", self.include.join("_"))
        };
        // Lower case: the name never needs quoting, whatever the table's case.
        let full =
            format!("{}_{}{include}{partial}_idx", self.table, cols.join("_")).to_ascii_lowercase();
        if full.len() <= 63 {
            return full;
        }
        let h = full.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
            (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01B3)
        });
        format!("{}_{:08x}_idx", &full[..50], h as u32)
    }

    /// `CREATE INDEX name ON schema.table (cols)`.
    pub fn create_sql(&self, schema: &str) -> String {
        let cols: Vec<String> = self
            .columns
            .iter()
            .map(|c| {
                let name = sql_ident(&c.name);
                if c.desc { format!("{name} DESC") } else { name }
            })
            .collect();
        let predicate = self
            .predicate
            .as_ref()
            .map(|p| format!(" WHERE {p}"))
            .unwrap_or_default();
        let include = if self.include.is_empty() {
            String::new()
        } else {
            let cols: Vec<String> = self.include.iter().map(|c| sql_ident(c)).collect();
            format!(" INCLUDE ({})", cols.join(", "))
        };
        format!(
            "CREATE INDEX {} ON {}.{} ({}){include}{predicate}",
            self.name(),
            sql_ident(schema),
            sql_ident(&self.table),
            cols.join(", ")
        )
    }

    /// `CREATE INDEX CONCURRENTLY IF NOT EXISTS …`: the form migrations use.
    pub fn create_concurrently_sql(&self, schema: &str) -> String {
        self.create_sql(schema).replacen(
            "CREATE INDEX ",
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS ",
            1,
        )
    }

    /// The statements that build this index without blocking writes: one
    /// `CREATE INDEX CONCURRENTLY IF NOT EXISTS`, or on a partitioned table
    /// (which refuses CONCURRENTLY) the index on the parent alone (`ON
    /// ONLY`, invalid until complete), each partition's built concurrently,
    /// then attached.
    pub fn migration_statements(&self, schema: &str, partitions: Option<&[String]>) -> Vec<String> {
        let Some(parts) = partitions else {
            return vec![self.create_concurrently_sql(schema)];
        };
        let mut out = vec![
            self.create_sql(schema)
                .replacen("CREATE INDEX ", "CREATE INDEX IF NOT EXISTS ", 1)
                .replacen(" ON ", " ON ONLY ", 1),
        ];
        for part in parts {
            let child = IndexDef {
                table: part.clone(),
                ..self.clone()
            };
            out.push(child.create_concurrently_sql(schema));
            out.push(format!(
                "ALTER INDEX {}.{} ATTACH PARTITION {}.{}",
                sql_ident(schema),
                self.name(),
                sql_ident(schema),
                child.name()
            ));
        }
        out
    }

    /// Whether this index's leading columns are exactly `other`'s columns
    /// (so this one serves every lookup `other` serves).
    pub fn covers_prefix(&self, other: &IndexDef) -> bool {
        self.table == other.table
            && self.predicate == other.predicate
            && other.columns.len() <= self.columns.len()
            && self.columns[..other.columns.len()] == other.columns[..]
            && other
                .include
                .iter()
                .all(|c| self.include.contains(c) || self.columns.iter().any(|k| &k.name == c))
    }
}

/// An identifier as SQL spells it: bare when PostgreSQL would fold it to
/// itself, quoted otherwise (`"Foo"`); expressions (`lower(email)`) as they are.
pub fn sql_ident(name: &str) -> String {
    let bare = name
        .chars()
        .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !name.starts_with(|c: char| c.is_ascii_digit())
        && !name.is_empty();
    if bare || name.contains('(') {
        name.to_string()
    } else {
        crate::pg::quote_ident(name)
    }
}

/// What the plans say a query needs from one table.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Needs {
    /// Columns compared with `=` (including join keys).
    pub equality: Vec<String>,
    /// Columns compared with a range (`<`, `>=`, BETWEEN).
    pub range: Vec<String>,
    /// ORDER BY columns with direction.
    pub order: Vec<IndexColumn>,
    /// `column = literal` comparisons, with the literal as the plan prints it.
    pub constants: Vec<(String, String)>,
    /// Columns the table is joined on (`Hash Cond`, `Merge Cond`, `Join
    /// Filter`), on either side of the join: an index led by the tenant and
    /// one of them lets the planner choose a nested loop or merge join.
    pub join_keys: Vec<String>,
    /// Every column the query reads from the table (its scan's output and
    /// conditions), or `None` when some are expressions or unknown: an index
    /// holding them all allows an index-only scan.
    pub reads: Option<Vec<String>>,
}

use crate::explain::plan::balanced_inner;
pub use crate::explain::plan::conjuncts;

/// The column on the left of a comparison `(alias.col) op rhs`, the operator,
/// and the right side.
pub fn comparison(conjunct: &str) -> Option<(String, String, String)> {
    let mut c = conjunct.trim();
    while c.starts_with('(') && c.ends_with(')') && balanced_inner(c) {
        c = c[1..c.len() - 1].trim();
    }
    for op in [" >= ", " <= ", " <> ", " = ANY ", " = ", " < ", " > "] {
        if let Some(at) = c.find(op) {
            let left = c[..at].trim();
            let right = c[at + op.len()..].trim();
            let col = column_name(left).or_else(|| expression_key(left))?;
            return Some((col, op.trim().to_string(), right.to_string()));
        }
    }
    None
}

/// `lower((c.email)::text)` → `lower(email)`: the expressions an
/// expression index serves (case-insensitive lookups).
pub fn expression_key(expr: &str) -> Option<String> {
    let e = expr.trim();
    for f in ["lower", "upper"] {
        if let Some(inner) = e
            .strip_prefix(&format!("{f}("))
            .and_then(|r| r.strip_suffix(')'))
        {
            return column_name(inner).map(|col| format!("{f}({col})"));
        }
    }
    None
}

/// `alias.col`, `col`, `(alias.col)::text` → `col`; expressions → `None`.
pub fn column_name(expr: &str) -> Option<String> {
    let mut e = expr.trim();
    while e.starts_with('(') && e.contains(')') {
        let close = e.find(')')?;
        e = e[1..close].trim();
    }
    let e = e.split("::").next()?.trim();
    let name = e.rsplit('.').next()?;
    // A quoted identifier (`"Foo"."Id"`) names the column `Id`.
    let name = match name.strip_prefix('"').and_then(|n| n.strip_suffix('"')) {
        Some(inner) if !inner.contains('"') => inner,
        _ => name,
    };
    (!name.is_empty()
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
        && !name.chars().next().is_some_and(|c| c.is_ascii_digit()))
    .then(|| name.to_string())
}

/// What each table needs, from one plan tree (`rls`: filters that are not
/// leakproof are skipped; they can never be index conditions for the app).
pub fn needs(root: &PlanNode, rls: bool, numeric: &NumericColumns) -> BTreeMap<String, Needs> {
    let mut out: BTreeMap<String, Needs> = BTreeMap::new();
    collect(root, None, rls, numeric, &mut out);
    let aliases = aliases(root);
    for (alias, col) in join_columns(root) {
        if let Some(Some(table)) = aliases.get(&alias) {
            let keys = &mut out.entry(table.clone()).or_default().join_keys;
            if !keys.contains(&col) {
                keys.push(col);
            }
        }
    }
    out
}

/// Alias → relation of every scan in the tree; `None` for an alias two
/// relations share (a self-join's sides are told apart by nothing else).
fn aliases(root: &PlanNode) -> BTreeMap<String, Option<String>> {
    let mut out: BTreeMap<String, Option<String>> = BTreeMap::new();
    for n in root.walk() {
        if let (Some(alias), Some(rel)) = (&n.alias, &n.relation) {
            let e = out
                .entry(alias.clone())
                .or_insert_with(|| Some(rel.clone()));
            if e.as_ref() != Some(rel) {
                *e = None;
            }
        }
    }
    out
}

/// (alias, column) of both sides of every equi-join condition in the tree.
/// Only the inner side of a nested loop shows its key (as an Index Cond);
/// a hash or merge join names both in its condition, and the side read
/// whole is the one an index could turn into a nested loop.
pub fn join_columns(root: &PlanNode) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for n in root.walk() {
        for text in [&n.hash_cond, &n.merge_cond, &n.join_filter]
            .into_iter()
            .flatten()
        {
            for c in conjuncts(text) {
                let mut c = c.trim();
                while c.starts_with('(') && c.ends_with(')') && balanced_inner(c) {
                    c = c[1..c.len() - 1].trim();
                }
                let Some((left, right)) = c.split_once(" = ") else {
                    continue;
                };
                for side in [left, right] {
                    if let Some(pair) = qualified_column(side) {
                        if !out.contains(&pair) {
                            out.push(pair);
                        }
                    }
                }
            }
        }
    }
    out
}

/// `o.customer_id`, `(o.customer_id)::text` → `("o", "customer_id")`.
fn qualified_column(expr: &str) -> Option<(String, String)> {
    let mut e = expr.trim();
    while e.starts_with('(') && e.contains(')') {
        let close = e.find(')')?;
        e = e[1..close].trim();
    }
    let e = e.split("::").next()?.trim();
    let (alias, _) = e.rsplit_once('.')?;
    let col = column_name(e)?;
    let alias = alias.trim_matches('"');
    (!alias.is_empty() && !alias.contains(['.', ' ', '('])).then(|| (alias.to_string(), col))
}

fn collect(
    node: &PlanNode,
    sort_above: Option<&[String]>,
    rls: bool,
    numeric: &NumericColumns,
    out: &mut BTreeMap<String, Needs>,
) {
    if let Some(table) = &node.relation {
        let numeric_cols = numeric.get(table).map(Vec::as_slice).unwrap_or_default();
        let mut conds: Vec<String> = Vec::new();
        for text in [&node.filter, &node.index_cond, &node.recheck_cond]
            .into_iter()
            .flatten()
        {
            conds.extend(conjuncts(text));
        }
        for child in &node.plans {
            if let Some(ic) = &child.index_cond {
                conds.extend(conjuncts(ic));
            }
        }
        let entry = out.entry(table.clone()).or_default();
        record_reads(entry, node.output.as_deref(), &conds);
        for c in conds {
            if rls
                && (findings::non_leakproof(&c).is_some()
                    || findings::numeric_comparison(&c, numeric_cols).is_some())
            {
                continue;
            }
            let Some((col, op, rhs)) = comparison(&c) else {
                continue;
            };
            if op == "=" && rhs.starts_with('\'') && !entry.constants.iter().any(|(c, _)| *c == col)
            {
                entry.constants.push((col.clone(), rhs.clone()));
            }
            let list = if op == "=" || op == "= ANY" {
                &mut entry.equality
            } else if ["<", ">", "<=", ">="].contains(&op.as_str()) {
                &mut entry.range
            } else {
                continue;
            };
            if !list.contains(&col) {
                list.push(col);
            }
        }
        if let Some(keys) = sort_above {
            for k in keys {
                let desc = k.ends_with(" DESC");
                let base = k.trim_end_matches(" DESC").trim_end_matches(" ASC");
                if let Some(col) = column_name(base) {
                    let ic = IndexColumn { name: col, desc };
                    if !entry.order.contains(&ic) {
                        entry.order.push(ic);
                    }
                }
            }
        }
    }
    // A sort's keys apply to the scan directly below it (through Limit/Result).
    let keys = node.sort_key.as_deref().or(
        if matches!(
            node.node_type.as_str(),
            "Result" | "Limit" | "Incremental Sort"
        ) {
            sort_above
        } else {
            None
        },
    );
    for child in &node.plans {
        collect(child, keys, rls, numeric, out);
    }
}

/// PostgreSQL's system columns: never index columns.
const SYSTEM_COLUMNS: [&str; 6] = ["ctid", "xmin", "xmax", "cmin", "cmax", "tableoid"];

/// Add the columns a scan reads to `entry.reads`; any expression or a missing
/// output list makes the set unknown (no index-only scan can be planned for).
fn record_reads(entry: &mut Needs, output: Option<&[String]>, conds: &[String]) {
    let Some(output) = output else {
        entry.reads = None;
        return;
    };
    let mut cols: Vec<String> = entry.reads.take().unwrap_or_default();
    for item in output {
        match column_name(item) {
            // A system column (the `ctid` an UPDATE's scan passes up) comes
            // with every index tuple, and INCLUDE refuses one (0A000).
            Some(c) if SYSTEM_COLUMNS.contains(&c.as_str()) => {}
            Some(c) => {
                if !cols.contains(&c) {
                    cols.push(c)
                }
            }
            None => return,
        }
    }
    for c in conds {
        match comparison(c) {
            Some((col, _, _)) if !col.contains('(') => {
                if !cols.contains(&col) {
                    cols.push(col)
                }
            }
            // Any condition that is not a plain column comparison may read
            // columns we cannot see: no INCLUDE candidate.
            _ if c.contains("current_setting") => {}
            _ => return,
        }
    }
    entry.reads = Some(cols);
}

/// Most non-key columns an `INCLUDE` candidate carries: more makes the index
/// a second copy of the table.
pub const MAX_INCLUDE: usize = 3;

/// Candidates for one table's needs: [`candidate`], and for each constant
/// comparison that `is_constant` accepts (a literal of the SQL itself on a
/// low-cardinality column, e.g. `status = 'open'`), the same index without
/// that column as a partial index `WHERE column = literal`.
pub fn candidates_for(
    table: &str,
    needs: &Needs,
    tenant_column: Option<&str>,
    is_constant: &dyn Fn(&str, &str) -> bool,
) -> Vec<IndexDef> {
    let mut out: Vec<IndexDef> = candidate(table, needs, tenant_column).into_iter().collect();
    // Each join key alone after the tenant: the what-if plans decide
    // whether a nested loop or merge join on it beats the hash join.
    for key in &needs.join_keys {
        let join = Needs {
            equality: vec![key.clone()],
            ..Needs::default()
        };
        if let Some(def) = candidate(table, &join, tenant_column) {
            if !out.contains(&def) {
                out.push(def);
            }
        }
    }
    // Covering variant: the same key with the other columns the query reads
    // INCLUDEd, so the scan never visits the heap.
    if let (Some(base), Some(reads)) = (out.first(), &needs.reads) {
        let extra: Vec<String> = reads
            .iter()
            .filter(|c| !base.columns.iter().any(|k| &k.name == *c))
            .cloned()
            .collect();
        if !extra.is_empty() && extra.len() <= MAX_INCLUDE {
            let mut covering = base.clone();
            covering.include = extra;
            out.push(covering);
        }
    }
    for (col, literal) in &needs.constants {
        if !is_constant(col, literal) {
            continue;
        }
        let reduced = Needs {
            equality: needs
                .equality
                .iter()
                .filter(|c| *c != col)
                .cloned()
                .collect(),
            range: needs.range.clone(),
            order: needs.order.clone(),
            constants: Vec::new(),
            reads: None,
            join_keys: Vec::new(),
        };
        if let Some(mut def) = candidate(table, &reduced, tenant_column) {
            def.predicate = Some(format!("{col} = {literal}"));
            if !out.contains(&def) {
                out.push(def);
            }
        }
    }
    out
}

/// The candidate index for one table's needs: tenant first (when the table
/// has one), equality columns, one range column, then the ORDER BY columns
/// when no range column breaks the order. `None` when there is nothing to add.
pub fn candidate(table: &str, needs: &Needs, tenant_column: Option<&str>) -> Option<IndexDef> {
    let mut columns: Vec<IndexColumn> = Vec::new();
    let push = |columns: &mut Vec<IndexColumn>, name: &str, desc: bool| {
        if !columns.iter().any(|c| c.name == name) {
            columns.push(IndexColumn {
                name: name.to_string(),
                desc,
            });
        }
    };
    if let Some(t) = tenant_column {
        push(&mut columns, t, false);
    }
    for e in &needs.equality {
        push(&mut columns, e, false);
    }
    let before_range = columns.len();
    if let Some(r) = needs.range.first() {
        push(&mut columns, r, false);
    }
    let range_added = columns.len() > before_range;
    if !range_added {
        for o in &needs.order {
            push(&mut columns, &o.name, o.desc);
        }
    } else if let (Some(o), Some(last)) = (needs.order.first(), columns.last_mut()) {
        // ORDER BY the range column itself: keep its direction.
        if o.name == last.name {
            last.desc = o.desc;
        }
    }
    let useful = columns.len() > usize::from(tenant_column.is_some());
    useful.then(|| IndexDef {
        predicate: None,
        include: Vec::new(),
        table: table.to_string(),
        columns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The scan under an UPDATE passes `ctid` up: it was proposed as an
    /// INCLUDE column, and CREATE INDEX failed with "index creation on
    /// system columns is not supported" (tests/advise.rs, now and then).
    #[test]
    fn a_covering_candidate_never_includes_ctid() {
        let mut entry = Needs::default();
        record_reads(
            &mut entry,
            Some(&["d.stage_id".to_string(), "d.ctid".to_string()]),
            &[],
        );
        assert_eq!(entry.reads, Some(vec!["stage_id".to_string()]));
    }

    #[test]
    fn splits_conjuncts_at_the_top_level_only() {
        assert_eq!(
            conjuncts("((a = 1) AND ((b = 2) OR (c = 3)) AND (d = 'x AND y'))"),
            vec!["(a = 1)", "((b = 2) OR (c = 3))", "(d = 'x AND y')"]
        );
    }

    #[test]
    fn reads_comparisons() {
        assert_eq!(
            comparison("(o.customer_id = 42)"),
            Some(("customer_id".into(), "=".into(), "42".into()))
        );
        assert_eq!(
            comparison("(o.placed_at >= '2025-01-01'::timestamp with time zone)")
                .unwrap()
                .1,
            ">="
        );
        assert_eq!(
            comparison("((c.email)::text = 'x'::text)").unwrap().0,
            "email"
        );
        assert!(
            comparison("(date_trunc('day'::text, o.placed_at) = '2025-01-01'::timestamp)")
                .is_none()
        );
    }

    #[test]
    fn candidate_orders_equality_range_then_sort() {
        let needs = Needs {
            equality: vec!["customer_id".into()],
            range: vec![],
            order: vec![IndexColumn {
                name: "placed_at".into(),
                desc: true,
            }],
            constants: vec![],
            reads: None,
            join_keys: vec![],
        };
        let c = candidate("orders", &needs, Some("tenant_id")).unwrap();
        assert_eq!(
            c.create_sql("crm"),
            "CREATE INDEX orders_tenant_id_customer_id_placed_at_idx ON crm.orders (tenant_id, customer_id, placed_at DESC)"
        );
        let ranged = Needs {
            equality: vec!["user_id".into()],
            range: vec!["blog_id".into()],
            order: vec![IndexColumn {
                name: "title".into(),
                desc: false,
            }],
            constants: vec![],
            reads: None,
            join_keys: vec![],
        };
        // Range after equality; the sort cannot follow a range column.
        let c = candidate("posts", &ranged, None).unwrap();
        let cols: Vec<&str> = c.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(cols, ["user_id", "blog_id"]);
        assert!(candidate("t", &Needs::default(), Some("tenant_id")).is_none());
    }

    #[test]
    fn a_constant_on_a_low_cardinality_column_gives_a_partial_candidate() {
        let needs = Needs {
            equality: vec!["status".into(), "owner_id".into()],
            range: vec!["expected_close_date".into()],
            order: vec![],
            constants: vec![("status".into(), "'open'::text".into())],
            reads: None,
            join_keys: vec![],
        };
        let all = candidates_for("deals", &needs, Some("tenant_id"), &|c, l| {
            c == "status" && l.contains("open")
        });
        let sql: Vec<String> = all.iter().map(|d| d.create_sql("crm")).collect();
        assert!(sql.contains(&"CREATE INDEX deals_tenant_id_status_owner_id_expected_close_date_idx ON crm.deals (tenant_id, status, owner_id, expected_close_date)".to_string()), "{sql:#?}");
        assert!(sql.contains(&"CREATE INDEX deals_tenant_id_owner_id_expected_close_date_status_open_idx ON crm.deals (tenant_id, owner_id, expected_close_date) WHERE status = 'open'::text".to_string()), "{sql:#?}");
        // Not a constant of the SQL (a bound parameter in a custom plan): no partial index.
        assert_eq!(
            candidates_for("deals", &needs, Some("tenant_id"), &|_, _| false).len(),
            1
        );
    }

    #[test]
    fn lower_becomes_an_expression_key() {
        assert_eq!(
            comparison("(lower((c.email)::text) = 'a@b.c'::text)")
                .unwrap()
                .0,
            "lower(email)"
        );
        let needs = Needs {
            equality: vec!["lower(email)".into()],
            ..Default::default()
        };
        let c = candidate("customers", &needs, Some("tenant_id")).unwrap();
        assert_eq!(
            c.create_sql("crm"),
            "CREATE INDEX customers_tenant_id_lower_email_idx ON crm.customers (tenant_id, lower(email))"
        );
    }

    #[test]
    fn a_partitioned_table_gets_its_index_per_partition_then_attached() {
        let d = IndexDef {
            table: "events".into(),
            columns: vec![IndexColumn {
                name: "blog_id".into(),
                desc: false,
            }],
            predicate: None,
            include: Vec::new(),
        };
        assert_eq!(
            d.migration_statements("public", None),
            [
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_blog_id_idx ON public.events (blog_id)"
            ]
        );
        let parts = ["events_0".to_string(), "events_1".to_string()];
        assert_eq!(
            d.migration_statements("public", Some(&parts)),
            [
                "CREATE INDEX IF NOT EXISTS events_blog_id_idx ON ONLY public.events (blog_id)",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_0_blog_id_idx ON public.events_0 (blog_id)",
                "ALTER INDEX public.events_blog_id_idx ATTACH PARTITION public.events_0_blog_id_idx",
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS events_1_blog_id_idx ON public.events_1 (blog_id)",
                "ALTER INDEX public.events_blog_id_idx ATTACH PARTITION public.events_1_blog_id_idx",
            ]
        );
    }

    #[test]
    fn long_names_stay_under_63_bytes_and_stable() {
        let c = IndexDef {
            include: Vec::new(),
            predicate: None,
            table: "deal_stage_history".into(),
            columns: [
                "tenant_id",
                "deal_id",
                "from_stage_id",
                "to_stage_id",
                "changed_at",
            ]
            .iter()
            .map(|n| IndexColumn {
                name: n.to_string(),
                desc: false,
            })
            .collect(),
        };
        assert!(c.name().len() <= 63);
        assert_eq!(c.name(), c.clone().name());
    }
}
