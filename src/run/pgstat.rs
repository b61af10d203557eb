//! What the server says about the measured window: index use
//! (`pg_stat_user_indexes`) and statement statistics (`pg_stat_statements`,
//! grouped by normalized text: the same query can appear under two queryids),
//! as deltas between two snapshots; and the server's version and settings.
//! The snapshots come through [`StatsConn`], a session of its own (named
//! `crmbench-stats`) that is replaced when the server ends it, so a killed
//! session or a restarted server costs a reconnect, not the statistics; when
//! they cannot be had, the caller gets the reason to record.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::conn::server_unavailable;
use crate::error::Result;
use crate::pg::settings::REPORTED;
use crate::pg::{self, ConnSpec};
use crate::results::{IndexUsage, ServerInfo, StatementStats};

/// `application_name` of the statistics session (unless the user set one).
pub const STATS_APPLICATION: &str = "crmbench-stats";

/// How long a lost statistics session is tried again while the server is
/// away (a crash restart recovers in well under a second).
const RECONNECT_FOR: Duration = Duration::from_secs(10);

/// A snapshot of the counters.
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    indexes: HashMap<(String, String), (i64, i64)>,
    statements: HashMap<String, (i64, f64, i64, i64, i64)>,
}

/// The session that reads the server's counters (and, before the run, its
/// settings), with what it takes to open it again.
pub struct StatsConn {
    spec: ConnSpec,
    client: Client,
}

impl StatsConn {
    /// Open the session on `spec`'s server and database, named
    /// [`STATS_APPLICATION`] unless the user's URL names it otherwise.
    pub async fn open(spec: &ConnSpec) -> Result<StatsConn> {
        let mut spec = spec.clone();
        if matches!(spec.config.get_application_name(), None | Some("crmbench")) {
            spec.config.application_name(STATS_APPLICATION);
        }
        let client = pg::connect(&spec).await?;
        Ok(StatsConn { spec, client })
    }

    /// The session, for one-off reads.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// A snapshot of the counters; a session the server ended is replaced
    /// first (tried again while the server is away, for a while). `Err`
    /// with the reason when no snapshot could be taken.
    pub async fn snapshot(&mut self) -> std::result::Result<Snapshot, String> {
        match read_snapshot(&self.client).await {
            Ok(snap) => return Ok(snap),
            Err(e) => tracing::debug!("the statistics session was lost ({e}); reconnecting"),
        }
        self.reconnect().await?;
        read_snapshot(&self.client).await.map_err(|e| {
            format!(
                "the statistics session was lost again: {}",
                crate::error::describe_chain(&e)
            )
        })
    }

    async fn reconnect(&mut self) -> std::result::Result<(), String> {
        let started = Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            match pg::connect(&self.spec).await {
                Ok(client) => {
                    self.client = client;
                    return Ok(());
                }
                Err(e) if server_unavailable(&e) && started.elapsed() < RECONNECT_FOR => {
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(1));
                }
                Err(e) => return Err(format!("the statistics session could not be reopened: {e}")),
            }
        }
    }
}

/// Take a snapshot. A view that is missing or not readable leaves its part
/// empty; a lost session is an error.
async fn read_snapshot(client: &Client) -> std::result::Result<Snapshot, tokio_postgres::Error> {
    let mut snap = Snapshot::default();
    let indexes = client
        .query(
            "SELECT schemaname || '.' || relname, indexrelname::text, idx_scan, idx_tup_read \
             FROM pg_stat_user_indexes",
            &[],
        )
        .await;
    for r in kept(indexes)? {
        snap.indexes
            .insert((r.get(0), r.get(1)), (r.get(2), r.get(3)));
    }
    let statements = client
        .query(
            "SELECT regexp_replace(query, '\\s+', ' ', 'g'), sum(calls)::bigint, sum(total_exec_time)::float8, \
                    sum(rows)::bigint, sum(shared_blks_hit)::bigint, sum(shared_blks_read)::bigint \
             FROM pg_stat_statements WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
             GROUP BY 1",
            &[],
        )
        .await;
    for r in kept(statements)? {
        snap.statements
            .insert(r.get(0), (r.get(1), r.get(2), r.get(3), r.get(4), r.get(5)));
    }
    Ok(snap)
}

/// The rows of a read, none when the server refused it (a view missing or
/// not readable); the error when the session is gone.
fn kept(
    rows: std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
) -> std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error> {
    match rows {
        Ok(rows) => Ok(rows),
        Err(e) if e.is_closed() || e.code().is_some_and(|c| lost_code(c.code())) => Err(e),
        Err(e) => {
            tracing::debug!("a statistics view could not be read: {e}");
            Ok(Vec::new())
        }
    }
}

/// SQLSTATEs that end the session: operator intervention (57P…) and
/// connection exceptions (08…).
fn lost_code(code: &str) -> bool {
    code.starts_with("57P") || code.starts_with("08")
}

/// Whether the counters went back between the snapshots: the server reset
/// them (it does after a crash, and on `pg_stat_reset()`), so no delta
/// means anything.
pub fn went_back(before: &Snapshot, after: &Snapshot) -> bool {
    after.indexes.iter().any(|(key, (scans, read))| {
        before
            .indexes
            .get(key)
            .is_some_and(|(s0, r0)| scans < s0 || read < r0)
    })
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

#[cfg(test)]
mod tests {
    use super::*;

    fn snap(scans: i64, read: i64) -> Snapshot {
        let mut s = Snapshot::default();
        s.indexes
            .insert(("crm.orders".into(), "orders_pkey".into()), (scans, read));
        s
    }

    #[test]
    fn counters_that_go_back_are_a_reset_and_new_indexes_are_not() {
        assert!(!went_back(&snap(5, 50), &snap(7, 90)));
        assert!(went_back(&snap(5, 50), &snap(0, 0)));
        assert!(!went_back(&Snapshot::default(), &snap(0, 0)));
        let (usage, _) = delta(&snap(5, 50), &snap(7, 90));
        assert_eq!((usage[0].scans, usage[0].tuples_read), (2, 40));
    }
}
