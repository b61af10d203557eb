//! The load driver: `--threads` OS threads, each with its own current-thread
//! runtime owning its clients' connections (pgbench's layout, which matched
//! pgbench here where one shared multi-threaded pool reached 0.6–0.7×). Each
//! client runs closed loop (next transaction when the last returns) or open
//! loop (intended start times at `--rate`; latency counted from the intended
//! start, so a stalled server shows in the tail); a client's own loop is in
//! `run::client`. Clients record into their thread's interval slot; the
//! ticker swaps the slots every interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client;
use super::conn::Conn;
use crate::error::{Error, Result};
use crate::pg::ConnSpec;
use crate::stats::{self, Hist};
use crate::workload::Workload;
use crate::workload::params::Pools;

/// Pair samples kept per query per interval slot (reservoir cap is applied by the ticker).
pub(super) const PAIRS_PER_SLOT: usize = 4096;

/// How arrivals are spaced in open loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arrivals {
    /// Exponential gaps.
    Poisson,
    /// Even gaps.
    Uniform,
}

/// What the driver needs.
#[derive(Clone)]
pub struct DriverConfig {
    /// The workload.
    pub workload: Arc<Workload>,
    /// Pools for parameters.
    pub pools: Arc<Pools>,
    /// Where the baseline transactions go.
    pub baseline: ConnSpec,
    /// Where the candidate transactions go (paired mode).
    pub candidate: Option<ConnSpec>,
    /// Connections per side.
    pub clients: usize,
    /// OS threads.
    pub threads: usize,
    /// Open-loop rate (transactions/s, all clients), or closed loop.
    pub rate: Option<f64>,
    /// Arrival process in open loop.
    pub arrivals: Arrivals,
    /// Seed of every client's stream.
    pub seed: u64,
    /// Tries per transaction for serialization failures and deadlocks.
    pub max_tries: u32,
    /// Simple protocol (text with literals) instead of prepared statements.
    pub simple: bool,
}

/// One query's figures for one side within an interval.
#[derive(Debug, Clone)]
pub struct SideSlot {
    /// Whole-transaction latency.
    pub hist: Hist,
    /// Each statement's latency.
    pub statements: Vec<Hist>,
    /// Errors by code.
    pub errors: BTreeMap<String, u64>,
    /// Last error message per code.
    pub messages: BTreeMap<String, String>,
    /// Retries.
    pub retries: u64,
}

impl SideSlot {
    fn new(statements: usize) -> SideSlot {
        SideSlot {
            hist: stats::new_hist(),
            statements: (0..statements).map(|_| stats::new_hist()).collect(),
            errors: BTreeMap::new(),
            messages: BTreeMap::new(),
            retries: 0,
        }
    }

    /// Fold `other` into this one.
    pub fn merge(&mut self, other: &SideSlot) {
        stats::merge(&mut self.hist, &other.hist);
        for (a, b) in self.statements.iter_mut().zip(&other.statements) {
            stats::merge(a, b);
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k.clone()).or_default() += v;
        }
        for (k, v) in &other.messages {
            self.messages.insert(k.clone(), v.clone());
        }
        self.retries += other.retries;
    }
}

/// Everything recorded in one interval, per query.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Baseline side per query.
    pub baseline: Vec<SideSlot>,
    /// Candidate side per query (paired).
    pub candidate: Vec<SideSlot>,
    /// (client, baseline µs, candidate µs) per query (paired).
    pub pairs: Vec<Vec<(u16, u32, u32)>>,
}

impl Slot {
    /// An empty slot for `workload`.
    pub fn new(workload: &Workload, paired: bool) -> Slot {
        let side = || {
            workload
                .queries
                .iter()
                .map(|q| SideSlot::new(q.statements.len()))
                .collect::<Vec<_>>()
        };
        Slot {
            baseline: side(),
            candidate: if paired { side() } else { Vec::new() },
            pairs: workload.queries.iter().map(|_| Vec::new()).collect(),
        }
    }
}

/// State shared by the driver threads and the ticker.
pub struct Shared {
    /// Set to stop every client.
    pub stop: AtomicBool,
    /// Transactions done (both sides count once per pair), for progress.
    pub done: AtomicU64,
    /// Per-thread interval slots.
    pub slots: Vec<Mutex<Slot>>,
    /// A fatal error that stopped the run (unreachable server at start…).
    pub fatal: Mutex<Option<String>>,
}

impl Shared {
    /// Fresh state for `threads` threads.
    pub fn new(workload: &Workload, threads: usize, paired: bool) -> Arc<Shared> {
        Arc::new(Shared {
            stop: AtomicBool::new(false),
            done: AtomicU64::new(0),
            slots: (0..threads)
                .map(|_| Mutex::new(Slot::new(workload, paired)))
                .collect(),
            fatal: Mutex::new(None),
        })
    }

    /// Take every thread's slot, merged, leaving empty ones.
    pub fn swap(&self, workload: &Workload, paired: bool) -> Slot {
        let mut total = Slot::new(workload, paired);
        for slot in &self.slots {
            let taken = match slot.lock() {
                Ok(mut s) => std::mem::replace(&mut *s, Slot::new(workload, paired)),
                Err(_) => continue,
            };
            for (a, b) in total.baseline.iter_mut().zip(&taken.baseline) {
                a.merge(b);
            }
            for (a, b) in total.candidate.iter_mut().zip(&taken.candidate) {
                a.merge(b);
            }
            for (a, b) in total.pairs.iter_mut().zip(taken.pairs) {
                a.extend(b);
            }
        }
        total
    }
}

/// Start the driver threads; they run until `shared.stop` is set.
pub fn start(
    config: DriverConfig,
    shared: Arc<Shared>,
) -> Result<Vec<std::thread::JoinHandle<()>>> {
    let mut handles = Vec::with_capacity(config.threads);
    for t in 0..config.threads {
        let (config, thread_shared) = (config.clone(), shared.clone());
        let handle = std::thread::Builder::new()
            .name(format!("crmbench-driver-{t}"))
            .spawn(move || thread_main(t, config, thread_shared))
            .map_err(|e| {
                shared.stop.store(true, Ordering::Relaxed);
                Error::io("starting a driver thread", "thread", e)
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

fn thread_main(t: usize, config: DriverConfig, shared: Arc<Shared>) {
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            set_fatal(&shared, format!("starting a driver runtime: {e}"));
            return;
        }
    };
    rt.block_on(async {
        let mut set = tokio::task::JoinSet::new();
        for c in (t..config.clients).step_by(config.threads) {
            let (config, shared) = (config.clone(), shared.clone());
            set.spawn(async move { client::client_main(c, t, config, shared).await });
        }
        while set.join_next().await.is_some() {}
    });
}

pub(super) fn set_fatal(shared: &Shared, message: String) {
    if let Ok(mut f) = shared.fatal.lock() {
        f.get_or_insert(message);
    }
    shared.stop.store(true, Ordering::Relaxed);
}

/// Open a connection, retrying while the server refuses or drops it (a
/// restart); `None` when the run stops first or the failure is of another
/// kind (then fatal).
pub(super) async fn open_with_retry(
    spec: &ConnSpec,
    workload: &Workload,
    shared: &Shared,
    simple: bool,
) -> Option<Conn> {
    let mut delay = Duration::from_millis(50);
    loop {
        match Conn::open(spec, workload, simple).await {
            Ok(c) => return Some(c),
            Err(e) => {
                if shared.stop.load(Ordering::Relaxed) {
                    return None;
                }
                if !matches!(
                    e,
                    Error::ConnectionRefused { .. } | Error::ConnectionLost { .. }
                ) {
                    set_fatal(shared, e.to_string());
                    return None;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// Open a client's first connection; any failure is fatal to the run.
pub(super) async fn initial(
    spec: &ConnSpec,
    workload: &Workload,
    shared: &Shared,
    simple: bool,
) -> Option<Conn> {
    match Conn::open(spec, workload, simple).await {
        Ok(c) => Some(c),
        Err(e) => {
            set_fatal(shared, e.to_string());
            None
        }
    }
}

/// Resolve when the run stops.
pub(super) async fn wait_stop(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Wait until every driver thread has ended (after `shared.stop` was set);
/// an error when one of them panicked.
pub fn join(handles: Vec<std::thread::JoinHandle<()>>) -> Result<()> {
    for h in handles {
        h.join().map_err(|_| Error::Internal {
            message: "a driver thread panicked".into(),
            fix: "report this as a bug".into(),
        })?;
    }
    Ok(())
}
