//! Figures of a table taken around a step: size (all partitions), dead
//! tuples, WAL position; and the workload's latency while the step ran.

use tokio_postgres::Client;

use super::model::During;
use crate::error::{Error, Result};
use crate::rehearse::model::{StatementRecord, WorkloadRecord};

/// The table's total size, partitions included, and its dead tuples
/// counted by pgstattuple (a clone's, so the extension may be added):
/// `n_dead_tup` is unreliable right after a step, since a backend's
/// pending counts can reach the shared statistics after VACUUM's report.
pub async fn table_state(client: &Client, table: &str) -> Result<(i64, i64)> {
    let r = client
        .query_one(
            "SELECT coalesce(sum(pg_total_relation_size(p.relid)), 0)::bigint, \
                    coalesce(sum((pgstattuple(p.relid)).dead_tuple_count) FILTER (WHERE p.isleaf), 0)::bigint \
             FROM (SELECT relid, isleaf FROM pg_partition_tree($1::text::regclass) \
                   UNION SELECT c.oid::regclass, true FROM pg_class c \
                   WHERE c.oid = $1::text::regclass AND c.relkind = 'r') p",
            &[&table],
        )
        .await
        .map_err(|e| Error::from_pg("reading the table's size and dead tuples", e))?;
    Ok((r.get(0), r.get(1)))
}

/// Add pgstattuple to a clone (it counts dead tuples exactly).
pub async fn prepare(client: &Client) -> Result<()> {
    client
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pgstattuple")
        .await
        .map_err(|e| Error::from_pg("adding pgstattuple to the clone", e))
}

/// The WAL insert position, as bytes from the start.
pub async fn wal_position(client: &Client) -> Result<i64> {
    let r = client
        .query_one(
            "SELECT pg_wal_lsn_diff(pg_current_wal_insert_lsn(), '0/0')::bigint",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading the WAL position", e))?;
    Ok(r.get(0))
}

/// The workload while `statements` ran: the timeline's intervals between
/// the first start and the last end.
pub fn during(workload: &WorkloadRecord, statements: &[StatementRecord]) -> During {
    let start = statements
        .iter()
        .map(|s| s.start_s)
        .fold(f64::MAX, f64::min);
    let end = statements.iter().map(|s| s.end_s).fold(f64::MIN, f64::max);
    // An interval counts when it overlaps the span (points are interval ends).
    let step = workload
        .timeline
        .windows(2)
        .map(|w| w[1].t - w[0].t)
        .next()
        .unwrap_or(0.25);
    let inside: Vec<_> = workload
        .timeline
        .iter()
        .filter(|p| p.t > start && p.t - step < end)
        .collect();
    let mut p50s: Vec<f64> = inside.iter().map(|p| p.p50_ms).collect();
    p50s.sort_by(f64::total_cmp);
    During {
        p50_ms: p50s.get(p50s.len() / 2).copied().unwrap_or(0.0),
        p99_ms: inside.iter().map(|p| p.p99_ms).fold(0.0, f64::max),
        max_ms: workload.max_latency_ms,
        errors: inside.iter().map(|p| p.errors).sum(),
    }
}
