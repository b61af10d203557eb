//! Which tables the data says to partition by time and rehearse retention
//! on, noted after `advise`: append-mostly (`pg_stat_user_tables`' insert,
//! update and delete counts, which include the replayed runs), time-ordered
//! (the planner's correlation of a timestamp or date column with the heap
//! order), above a size, and read by the workload mostly through a range on
//! that column, or not read at all (an audit log only written to) — each
//! with the `rehearse --retention` command to measure it.

use std::path::Path;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::explain::PlansFile;
use crate::explain::plan::PlanNode;
use crate::pg::{self, Target};
use crate::runfolder::RunFolder;

/// Below this total size, partitions cost more than dropping saves.
pub const MIN_BYTES: i64 = 16 << 20;
/// Updates and deletes at most this share of inserts: append-mostly.
pub const MAX_CHURN: f64 = 0.05;
/// The time column's correlation with the heap order at least this.
pub const MIN_CORRELATION: f64 = 0.9;

/// A table's figures, as the server has them.
#[derive(Debug, Clone, PartialEq)]
pub struct TableFacts {
    /// The table.
    pub name: String,
    /// Its most heap-ordered timestamp or date column.
    pub column: String,
    /// pg_stats' correlation of that column.
    pub correlation: f64,
    /// Total size, bytes.
    pub bytes: i64,
    /// Rows inserted, updated, deleted (pg_stat_user_tables).
    pub writes: (i64, i64, i64),
}

/// How the workload's plans read a table: scans, scans with a range on the column.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reads {
    /// Scan nodes on the table.
    pub scans: usize,
    /// Those whose condition bounds the time column from below.
    pub ranged: usize,
}

/// Why `t` qualifies, or None.
pub fn qualifies(t: &TableFacts, reads: Reads) -> Option<String> {
    let (ins, upd, del) = t.writes;
    let churn = (upd + del) as f64 / (ins.max(1)) as f64;
    if t.bytes < MIN_BYTES || churn > MAX_CHURN || t.correlation.abs() < MIN_CORRELATION {
        return None;
    }
    let read = match reads {
        Reads { scans: 0, .. } => "not read by the workload".to_string(),
        Reads { scans, ranged } if ranged * 2 >= scans => {
            format!(
                "{ranged} of its {scans} scans bound {} from below",
                t.column
            )
        }
        _ => return None,
    };
    Some(format!(
        "{:.0} MB, {ins} rows inserted against {} updated or deleted, {} ordered with the heap \
         (correlation {:.2}), {read}",
        t.bytes as f64 / 1e6,
        upd + del,
        t.column,
        t.correlation
    ))
}

/// Scans of `table` in `node`'s tree, and those bounding `column` below.
pub fn reads_in(node: &PlanNode, table: &str, column: &str, into: &mut Reads) {
    if node.node_type.contains("Scan") && node.relation.as_deref() == Some(table) {
        into.scans += 1;
        let conds = [&node.index_cond, &node.recheck_cond, &node.filter];
        if conds
            .iter()
            .filter_map(|c| c.as_deref())
            .any(|c| lower_bound(c, column))
        {
            into.ranged += 1;
        }
    }
    for child in &node.plans {
        reads_in(child, table, column, into);
    }
}

/// `column >` or `column >=` in EXPLAIN's text of a condition (qualified or not).
fn lower_bound(cond: &str, column: &str) -> bool {
    cond.match_indices(column).any(|(i, _)| {
        let before = cond[..i].chars().next_back();
        let after = cond[i + column.len()..].trim_start();
        matches!(before, None | Some('(' | '.' | ' ')) && after.starts_with('>')
    })
}

async fn facts(client: &Client, schema: &str) -> Result<Vec<TableFacts>> {
    let rows = client
        .query(
            "SELECT DISTINCT ON (c.relname) c.relname::text, a.attname::text, \
                    coalesce(s.correlation, 0)::float8, pg_total_relation_size(c.oid), \
                    t.n_tup_ins, t.n_tup_upd, t.n_tup_del \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_stat_user_tables t ON t.relid = c.oid \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
              AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) \
             LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname \
              AND s.attname = a.attname \
             WHERE n.nspname = $1 AND c.relkind = 'r' \
             ORDER BY c.relname, abs(coalesce(s.correlation, 0)) DESC",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("reading tables' sizes and write counts", e))?;
    Ok(rows
        .iter()
        .map(|r| TableFacts {
            name: r.get(0),
            column: r.get(1),
            correlation: r.get(2),
            bytes: r.get(3),
            writes: (r.get(4), r.get(5), r.get(6)),
        })
        .collect())
}

/// The tables of `schema` that qualify, with why, given the workload's plans.
pub async fn candidates(
    target: &Target,
    schema: &str,
    plans: &PlansFile,
) -> Result<Vec<(TableFacts, String)>> {
    let admin = pg::connect(&target.admin()).await?;
    let mut out = Vec::new();
    for t in facts(&admin, schema).await? {
        let mut reads = Reads::default();
        let statements = plans.queries.iter().flat_map(|q| &q.tenants);
        for s in statements.flat_map(|p| &p.statements) {
            if let Some(e) = &s.plan {
                reads_in(&e.plan, &t.name, &t.column, &mut reads);
            }
        }
        if let Some(why) = qualifies(&t, reads) {
            out.push((t, why));
        }
    }
    Ok(out)
}

/// What `advise` prints after its summary: the qualifying tables with the
/// command to rehearse each, or why none was judged. Never an error: the
/// index advice stands without it.
pub async fn text(target: &Target, schema: &str, folder: &Path) -> String {
    let plans = RunFolder::open(folder).and_then(|f| f.read_optional::<PlansFile>());
    let found = match plans {
        Ok(Some(plans)) => candidates(target, schema, &plans).await,
        Ok(None) => return String::new(),
        Err(e) => Err(e),
    };
    match found {
        Err(e) => format!("  retention candidates not judged: {e}\n"),
        Ok(c) if c.is_empty() => String::new(),
        Ok(c) => {
            let mut s = String::from(
                "\nretention: tables to partition by time and drop by partition (rehearse first):\n",
            );
            for (t, why) in c {
                s.push_str(&format!(
                    "  {}.{}: {why}\n    crmbench rehearse --retention {} --partition-by {} --keep 24months\n",
                    schema, t.name, t.name, t.column
                ));
            }
            s
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(bytes: i64, writes: (i64, i64, i64), correlation: f64) -> TableFacts {
        TableFacts {
            name: "audit_log".into(),
            column: "created_at".into(),
            correlation,
            bytes,
            writes,
        }
    }

    #[test]
    fn an_append_only_ordered_big_table_qualifies_and_each_criterion_can_refuse() {
        let big = 100 << 20;
        let unread = Reads::default();
        assert!(qualifies(&facts(big, (500_000, 0, 0), 0.99), unread).is_some());
        assert!(qualifies(&facts(1 << 20, (500_000, 0, 0), 0.99), unread).is_none());
        assert!(qualifies(&facts(big, (500_000, 50_000, 0), 0.99), unread).is_none());
        assert!(qualifies(&facts(big, (500_000, 0, 0), 0.1), unread).is_none());
        let by_id = Reads {
            scans: 4,
            ranged: 1,
        };
        assert!(qualifies(&facts(big, (500_000, 0, 0), 0.99), by_id).is_none());
        let recent = Reads {
            scans: 4,
            ranged: 2,
        };
        assert!(qualifies(&facts(big, (500_000, 0, 0), 0.99), recent).is_some());
    }

    #[test]
    fn a_lower_bound_on_the_column_is_a_range_and_other_columns_are_not() {
        assert!(lower_bound("(p.created_at >= $2)", "created_at"));
        assert!(lower_bound(
            "((tenant_id = $1) AND (created_at > now()))",
            "created_at"
        ));
        assert!(!lower_bound("(p.created_at < $2)", "created_at"));
        assert!(!lower_bound("(updated_created_at >= $2)", "created_at"));
        assert!(!lower_bound("(id = $1)", "created_at"));
    }
}
