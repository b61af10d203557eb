//! The lock sampler: on its own connection, every ~50 ms while a migration
//! statement runs, what the migration's backend holds and waits for
//! (`pg_locks`), whom it waits behind, and which sessions wait behind it
//! (`pg_blocking_pids`, which also names waiters queued behind a lock
//! request that is not yet granted — the writes an `ALTER TABLE` waiting
//! for a long reader holds up).

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::locks::LockMode;
use super::model::{HeldLock, Session, StatementRecord};

/// How often the sampler looks.
pub const PERIOD: Duration = Duration::from_millis(50);

/// What one look saw, while unit `unit` ran.
#[derive(Debug, Clone)]
pub struct Sample {
    /// Index of the unit running.
    pub unit: usize,
    /// Seconds since the rehearsal's clock started.
    pub t: f64,
    /// Table locks of the migration's backend: (table, mode, granted).
    pub held: Vec<(String, LockMode, bool)>,
    /// Sessions the migration waits behind.
    pub waited_behind: Vec<Session>,
    /// Sessions waiting behind the migration: (pid, statement start as epoch
    /// seconds, seconds waited so far, statement).
    pub blocked: Vec<(i32, f64, f64, String)>,
}

const HELD: &str = "SELECT n.nspname || '.' || c.relname, l.mode, l.granted FROM pg_locks l \
     JOIN pg_class c ON c.oid = l.relation JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE l.pid = $1 AND l.locktype = 'relation' AND c.relkind IN ('r', 'p', 'm')";
const BEHIND: &str = "SELECT pid, coalesce(application_name, ''), left(coalesce(query, ''), 200) \
     FROM pg_stat_activity WHERE pid = ANY(pg_blocking_pids($1))";
const BLOCKED: &str = "SELECT pid, extract(epoch FROM query_start)::float8, \
     extract(epoch FROM clock_timestamp() - query_start)::float8, left(coalesce(query, ''), 200) \
     FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))";

/// Sample the backend `pid` while `current` names a running unit (≥ 0),
/// until `stop` is set; returns every sample. A failed look is skipped (the
/// next one tries again): the sampler must never stop the rehearsal.
pub async fn sample(
    client: Client,
    pid: i32,
    current: Arc<AtomicI64>,
    stop: Arc<AtomicBool>,
    clock: Instant,
) -> Vec<Sample> {
    let mut out = Vec::new();
    while !stop.load(Ordering::Acquire) {
        let unit = current.load(Ordering::Acquire);
        if let Ok(unit) = usize::try_from(unit) {
            match look(&client, pid, unit, clock).await {
                Ok(s) => out.push(s),
                Err(e) => tracing::debug!("lock sampler: a look failed: {e}"),
            }
        }
        tokio::time::sleep(PERIOD).await;
    }
    tracing::debug!("lock sampler: {} looks", out.len());
    out
}

async fn look(
    client: &Client,
    pid: i32,
    unit: usize,
    clock: Instant,
) -> Result<Sample, tokio_postgres::Error> {
    let t = clock.elapsed().as_secs_f64();
    let held = client
        .query(HELD, &[&pid])
        .await?
        .iter()
        .filter_map(|r| {
            Some((
                r.get::<_, String>(0),
                LockMode::from_pg_name(r.get(1))?,
                r.get(2),
            ))
        })
        .collect();
    let waited_behind = client
        .query(BEHIND, &[&pid])
        .await?
        .iter()
        .map(|r| Session {
            pid: r.get(0),
            application: r.get(1),
            query: r.get(2),
        })
        .collect();
    let blocked = client
        .query(BLOCKED, &[&pid])
        .await?
        .iter()
        .map(|r| {
            let start: Option<f64> = r.get(1);
            let waited: Option<f64> = r.get(2);
            (
                r.get(0),
                start.unwrap_or(0.0),
                waited.unwrap_or(0.0),
                r.get(3),
            )
        })
        .collect();
    Ok(Sample {
        unit,
        t,
        held,
        waited_behind,
        blocked,
    })
}

/// Fold the samples into each unit's record: locks held, lock waits, whom
/// it waited behind, whom it blocked and for how long.
pub fn fold(samples: &[Sample], records: &mut [StatementRecord]) {
    for (i, record) in records.iter_mut().enumerate() {
        let mine: Vec<&Sample> = samples.iter().filter(|s| s.unit == i).collect();
        let mut strongest: BTreeMap<String, LockMode> = BTreeMap::new();
        let mut behind: BTreeMap<i32, Session> = BTreeMap::new();
        let mut blocked: HashSet<(i32, u64)> = HashSet::new();
        let mut queries: Vec<String> = Vec::new();
        let mut wait = 0.0;
        let mut previous: Option<f64> = None;
        for s in &mine {
            let step = previous.map_or(PERIOD.as_secs_f64(), |p| s.t - p);
            previous = Some(s.t);
            for (table, mode, granted) in &s.held {
                if *granted {
                    let e = strongest.entry(table.clone()).or_insert(*mode);
                    *e = (*e).max(*mode);
                }
            }
            // Waiting on a table lock, or on anything else another session
            // holds: `CREATE INDEX CONCURRENTLY` waits for older
            // transactions on their virtual transaction id, not a table.
            if s.held.iter().any(|h| !h.2) || !s.waited_behind.is_empty() {
                wait += step;
            }
            for w in &s.waited_behind {
                behind.entry(w.pid).or_insert_with(|| w.clone());
            }
            for (pid, start, waited, query) in &s.blocked {
                // A statement is one backend's query started at one moment.
                blocked.insert((*pid, start.to_bits()));
                record.longest_block_ms = record.longest_block_ms.max(waited * 1e3);
                if queries.len() < 5 && !queries.contains(query) {
                    queries.push(query.clone());
                }
            }
        }
        record.locks = strongest
            .into_iter()
            .map(|(table, mode)| HeldLock { table, mode })
            .collect();
        record.lock_wait_ms = wait * 1e3;
        record.waited_behind = behind.into_values().collect();
        record.blocked = blocked.len() as u64;
        record.blocked_queries = queries;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(t: f64, behind: bool) -> Sample {
        Sample {
            unit: 0,
            t,
            held: vec![("crm.orders".into(), LockMode::ShareUpdateExclusive, true)],
            waited_behind: if behind {
                vec![Session {
                    pid: 7,
                    application: "held".into(),
                    query: "UPDATE".into(),
                }]
            } else {
                Vec::new()
            },
            blocked: Vec::new(),
        }
    }

    #[test]
    fn waiting_behind_a_session_counts_as_lock_wait_without_a_table_lock_request() {
        // CREATE INDEX CONCURRENTLY waiting for an older transaction: its
        // table lock is granted, the wait is on that transaction.
        let samples = [look(1.0, true), look(1.05, true), look(1.10, false)];
        let mut records = vec![StatementRecord::default()];
        fold(&samples, &mut records);
        assert!(
            (records[0].lock_wait_ms - 100.0).abs() < 1e-6,
            "{records:?}"
        );
        assert_eq!(records[0].waited_behind.len(), 1);
    }
}
