//! Read routing to replicas during a run: which connection serves a query,
//! read-your-writes staleness, and the replicas' replay lag over time.
//!
//! A query goes to a replica when the run has replicas and the query is a
//! read (or says `route = "replica"`); client `c` uses replica `c mod n`
//! (round robin over clients), writes stay on the primary.
//!
//! Staleness is judged by WAL position, as read-your-writes proxies do:
//! after each write a client records the primary's `pg_current_wal_lsn()`;
//! before a `reads_own_writes` query a replica serves, the client asks the
//! replica whether it has replayed that far (`pg_last_wal_replay_lsn()`).
//! If not, the read would have missed the client's own write: it is counted
//! stale, and the client waits (polling every millisecond) until the replica
//! has caught up, recording how long that took. The position taken after the
//! commit is at or past the commit itself, so a read can be counted stale
//! that only lacked other clients' later WAL: the count is an upper bound.

use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

/// Counters shared by every client of a run.
#[derive(Debug, Default)]
pub struct StaleCounters {
    /// Transactions a replica served.
    pub served: AtomicU64,
    /// Reads of own writes a replica had not replayed yet.
    pub stale: AtomicU64,
    /// Sum of the waits until visible, µs.
    pub wait_us: AtomicU64,
    /// Longest wait until visible, µs.
    pub max_wait_us: AtomicU64,
}

impl StaleCounters {
    /// A copy of the counts now.
    pub fn snapshot(&self) -> StaleCounters {
        let copy = |a: &AtomicU64| AtomicU64::new(a.load(Ordering::Relaxed));
        StaleCounters {
            served: copy(&self.served),
            stale: copy(&self.stale),
            wait_us: copy(&self.wait_us),
            max_wait_us: copy(&self.max_wait_us),
        }
    }

    fn add_wait(&self, us: u64) {
        self.stale.fetch_add(1, Ordering::Relaxed);
        self.wait_us.fetch_add(us, Ordering::Relaxed);
        self.max_wait_us.fetch_max(us, Ordering::Relaxed);
    }
}

/// The primary's WAL position now, as text (`pg_lsn`).
pub async fn primary_position(client: &Client) -> Option<String> {
    client
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .ok()
        .map(|r| r.get(0))
}

/// Wait until the replica behind `client` has replayed `lsn`; count a stale
/// read when it had not at first. Gives up (counting the wait so far) after
/// `limit` or when `stop` says so.
pub async fn await_visible(
    client: &Client,
    lsn: &str,
    counters: &StaleCounters,
    limit: Duration,
    stop: &std::sync::atomic::AtomicBool,
) {
    let started = Instant::now();
    let mut stale = false;
    loop {
        let caught_up = client
            .query_one(
                "SELECT coalesce(pg_last_wal_replay_lsn() >= $1::text::pg_lsn, true)",
                &[&lsn],
            )
            .await
            .map(|r| r.get::<_, bool>(0))
            .unwrap_or(true);
        if caught_up || started.elapsed() >= limit || stop.load(Ordering::Relaxed) {
            break;
        }
        stale = true;
        tokio::time::sleep(Duration::from_millis(1)).await;
    }
    if stale {
        counters.add_wait(started.elapsed().as_micros() as u64);
    }
}

/// One replica's lag at one moment, as the primary sees it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LagSample {
    /// Seconds since the measured window started.
    pub t: f64,
    /// `application_name` of the replica.
    pub replica: String,
    /// WAL bytes not yet replayed.
    pub bytes: i64,
    /// `replay_lag`, ms (absent while the replica is idle and caught up).
    pub ms: Option<f64>,
}

/// Sample the primary's `pg_stat_replication` every `every` until `stop`.
pub async fn sample_lag(
    admin: Client,
    every: Duration,
    started: Instant,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    into: std::sync::Arc<Mutex<Vec<LagSample>>>,
) {
    while !stop.load(Ordering::Relaxed) {
        if let Ok(rows) = crate::pg::replicas::lag(&admin).await {
            let t = started.elapsed().as_secs_f64();
            if let Ok(mut v) = into.lock() {
                v.extend(rows.into_iter().map(|(replica, bytes, ms)| LagSample {
                    t,
                    replica,
                    bytes,
                    ms,
                }));
            }
        }
        tokio::time::sleep(every).await;
    }
}

/// The replicas of this run: `--replica-url`s, else (when asked) the
/// private server's running replicas, on the target's database. A paired
/// run routes nothing: a baseline read from a replica against a candidate
/// read from a primary would compare the routing, not the change.
pub fn targets(
    target: &crate::pg::Target,
    opts: &super::RunOptions,
    paired: bool,
) -> crate::error::Result<Vec<crate::pg::Target>> {
    use crate::pg::{Target, TargetOptions};
    if paired && !opts.replica_urls.is_empty() {
        return Err(crate::error::Error::Usage {
            message: "--replica-url cannot be combined with a paired run".into(),
            fix: "route reads to replicas in a run of its own".into(),
        });
    }
    if paired {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for url in &opts.replica_urls {
        let options = TargetOptions {
            database_url: Some(url.clone()),
            ..Default::default()
        };
        out.push(Target::resolve(&options, false)?.0);
    }
    if out.is_empty() && opts.private_replicas {
        if let Target::Private { server, database } = target {
            for r in crate::pg::replicas::list(server)? {
                if r.server.is_running()? {
                    out.push(Target::private(r.server).on_database(database));
                }
            }
        }
    }
    Ok(out)
}

/// Samples the primary's view of its replicas while a run measures.
pub struct LagSampler {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    samples: std::sync::Arc<Mutex<Vec<LagSample>>>,
    task: tokio::task::JoinHandle<()>,
}

impl LagSampler {
    /// Start sampling every `opts.interval` when the run has replicas.
    pub async fn start(
        target: &crate::pg::Target,
        replicas: &[crate::pg::Target],
        opts: &super::RunOptions,
    ) -> crate::error::Result<Option<LagSampler>> {
        if replicas.is_empty() {
            return Ok(None);
        }
        let admin = crate::pg::connect(&target.admin()).await?;
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let samples = std::sync::Arc::new(Mutex::new(Vec::new()));
        let task = tokio::spawn(sample_lag(
            admin,
            opts.interval,
            Instant::now(),
            stop.clone(),
            samples.clone(),
        ));
        Ok(Some(LagSampler {
            stop,
            samples,
            task,
        }))
    }

    /// Stop and return the samples of the measured window (times shifted
    /// by the warm-up, which is dropped).
    pub async fn finish(self, warmup: Duration) -> Vec<LagSample> {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.task.await;
        let w = warmup.as_secs_f64();
        let samples = self.samples.lock().map(|v| v.clone()).unwrap_or_default();
        samples
            .into_iter()
            .filter(|s| s.t >= w)
            .map(|s| LagSample { t: s.t - w, ..s })
            .collect()
    }
}

/// What results.json says about replicas (absent on a run without them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReplicationInfo {
    /// The replicas the reads went to (passwords redacted).
    pub replicas: Vec<String>,
    /// Queries served by a replica; every other query ran on the primary.
    pub replica_queries: Vec<String>,
    /// Transactions the replicas served.
    pub served_by_replicas: u64,
    /// `reads_own_writes` reads a replica had not caught up for.
    pub stale_reads: u64,
    /// Mean wait until such a read's write was visible, ms.
    pub stale_mean_ms: f64,
    /// Longest such wait, ms.
    pub stale_max_ms: f64,
    /// Replay lag per replica over the run.
    pub lag: Vec<LagSample>,
}

impl ReplicationInfo {
    /// The summary of a run's counters and samples.
    pub fn from_run(
        replicas: Vec<String>,
        replica_queries: Vec<String>,
        counters: &StaleCounters,
        lag: Vec<LagSample>,
    ) -> ReplicationInfo {
        let stale = counters.stale.load(Ordering::Relaxed);
        let wait = counters.wait_us.load(Ordering::Relaxed) as f64 / 1000.0;
        ReplicationInfo {
            replicas,
            replica_queries,
            served_by_replicas: counters.served.load(Ordering::Relaxed),
            stale_reads: stale,
            stale_mean_ms: if stale == 0 { 0.0 } else { wait / stale as f64 },
            stale_max_ms: counters.max_wait_us.load(Ordering::Relaxed) as f64 / 1000.0,
            lag,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_summary_averages_only_stale_reads() {
        let c = StaleCounters::default();
        c.served.store(10, Ordering::Relaxed);
        c.add_wait(2_000);
        c.add_wait(4_000);
        let info = ReplicationInfo::from_run(vec![], vec![], &c, vec![]);
        assert_eq!(info.stale_reads, 2);
        assert_eq!(info.stale_mean_ms, 3.0);
        assert_eq!(info.stale_max_ms, 4.0);
        assert_eq!(info.served_by_replicas, 10);
        let none = ReplicationInfo::from_run(vec![], vec![], &StaleCounters::default(), vec![]);
        assert_eq!((none.stale_reads, none.stale_mean_ms), (0, 0.0));
    }
}
