//! What the server says about the measured window: index use
//! (`pg_stat_user_indexes`) and statement statistics (`pg_stat_statements`,
//! grouped by normalized text: the same query can appear under two queryids),
//! as deltas between two snapshots; and the server's version and settings.

use std::collections::{BTreeMap, HashMap};

use tokio_postgres::Client;

use crate::pg::settings::REPORTED;
use crate::results::{IndexUsage, ServerInfo, StatementStats};

/// A snapshot of the counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    indexes: HashMap<(String, String), (i64, i64)>,
    statements: HashMap<String, (i64, f64, i64, i64, i64)>,
}

/// Take a snapshot (empty parts when a view is missing or not readable).
pub async fn snapshot(client: &Client) -> Snapshot {
    let mut snap = Snapshot::default();
    if let Ok(rows) = client
        .query(
            "SELECT schemaname || '.' || relname, indexrelname::text, idx_scan, idx_tup_read \
             FROM pg_stat_user_indexes",
            &[],
        )
        .await
    {
        for r in rows {
            snap.indexes
                .insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
        }
    }
    if let Ok(rows) = client
        .query(
            "SELECT regexp_replace(query, '\\s+', ' ', 'g'), sum(calls)::bigint, sum(total_exec_time)::float8, \
                    sum(rows)::bigint, sum(shared_blks_hit)::bigint, sum(shared_blks_read)::bigint \
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             GROUP BY 1",
            &[],
        )
        .await
    {
        for r in rows {
            snap.statements
                .insert(r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)));
        }
    }
    snap
}

/// Deltas between two snapshots: indexes sorted by table and name; statements
/// that ran, by total time.
pub fn delta(before: &Snapshot, after: &Snapshot) -> (Vec<IndexUsage>, Vec<StatementStats>) {
    let mut indexes: Vec<IndexUsage> = after
        .indexes
        .iter()
        .map(|((table, index), (scans, read))| {
            let (s0, r0) = before
                .indexes
                .get(&(table.clone(), index.clone()))
                .copied()
                .unwrap_or((0, 0));
            IndexUsage {
                table: table.clone(),
                index: index.clone(),
                scans: scans - s0,
                tuples_read: read - r0,
            }
        })
        .collect();
    indexes.sort_by(|a, b| (&a.table, &a.index).cmp(&(&b.table, &b.index)));
    let mut statements: Vec<StatementStats> = after
        .statements
        .iter()
        .filter_map(|(query, (calls, ms, rows, hit, read))| {
            let b = before
                .statements
                .get(query)
                .copied()
                .unwrap_or((0, 0.0, 0, 0, 0));
            (calls > &b.0).then(|| StatementStats {
                query: query.clone(),
                calls: calls - b.0,
                total_exec_ms: ms - b.1,
                rows: rows - b.2,
                shared_blks_hit: hit - b.3,
                shared_blks_read: read - b.4,
            })
        })
        .collect();
    statements.sort_by(|a, b| b.total_exec_ms.total_cmp(&a.total_exec_ms));
    (indexes, statements)
}

/// Server version and the settings that matter.
pub async fn server_info(client: &Client, target: String, candidate: Option<String>) -> ServerInfo {
    let mut settings = BTreeMap::new();
    let mut version = String::new();
    for name in REPORTED {
        if let Ok(Some(row)) = client
            .query_opt(
                "SELECT setting, coalesce(unit, '') FROM pg_settings WHERE name = $1",
                &[name],
            )
            .await
        {
            let (value, unit): (String, String) = (row.get(0), row.get(1));
            if *name == "server_version" {
                version = value.clone();
            }
            settings.insert(
                name.to_string(),
                crate::pg::settings::with_unit(&value, &unit),
            );
        }
    }
    ServerInfo {
        version,
        settings,
        target,
        candidate,
    }
}
