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

use tokio::sync::Notify;

use super::client;
use super::conn::{CLIENT_ERROR, CONNECTION_LOST, CONNECTION_REFUSED, server_unavailable};
use super::session::{Mode, Session};
use crate::error::{Error, Result};
use crate::pg::ConnSpec;
use crate::stats::{self, Hist};
use crate::workload::Workload;
use crate::workload::params::Pools;

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
    /// The wire protocol's pipeline (`--protocol pipeline`; `simple` false).
    pub pipeline: bool,
    /// Read replicas: client `c` sends the queries routed to a replica to
    /// `replicas[c % n]` (baseline side only).
    pub replicas: Vec<ConnSpec>,
    /// This machine's slice of the clients (`--worker K/N`); `None`: all.
    pub worker: Option<super::worker::WorkerSlice>,
    /// Record each client's first this-many transactions (`--trace-params`).
    pub trace_params: usize,
}

impl DriverConfig {
    /// How the clients send transactions.
    pub fn mode(&self) -> Mode {
        match (self.simple, self.pipeline) {
            (true, _) => Mode::Simple,
            (false, true) => Mode::Pipeline,
            (false, false) => Mode::Prepared,
        }
    }

    /// The client ids this driver runs (all, or the worker's slice).
    pub fn local_clients(&self) -> Vec<usize> {
        super::worker::local_clients(self.clients, self.worker)
    }
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

    /// Empty again, keeping every histogram's memory (a reset costs no
    /// allocation, a new slot ≈53 histograms' worth).
    fn reset(&mut self) {
        self.hist.reset();
        self.statements.iter_mut().for_each(|h| h.reset());
        self.errors.clear();
        self.messages.clear();
        self.retries = 0;
    }
}

/// Everything recorded in one interval, per query.
#[derive(Debug, Clone)]
pub struct Slot {
    /// Baseline side per query.
    pub baseline: Vec<SideSlot>,
    /// Candidate side per query (paired).
    pub candidate: Vec<SideSlot>,
    /// (client, baseline µs, candidate µs, tenant class) per query, a
    /// uniform sample of the interval (paired; the class is a
    /// [`super::paired::NO_CLASS`] byte without classes).
    pub pairs: Vec<super::pairs::PairReservoir>,
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
            pairs: workload
                .queries
                .iter()
                .map(|_| Default::default())
                .collect(),
        }
    }

    /// Empty again without giving memory back, so a reset slot can be swapped
    /// in at the next tick instead of a newly built one.
    fn reset(&mut self) {
        self.baseline.iter_mut().for_each(SideSlot::reset);
        self.candidate.iter_mut().for_each(SideSlot::reset);
        self.pairs
            .iter_mut()
            .for_each(super::pairs::PairReservoir::clear);
    }

    /// Fold `other` into this one.
    fn absorb(&mut self, other: &mut Slot) {
        for (a, b) in self.baseline.iter_mut().zip(&other.baseline) {
            a.merge(b);
        }
        for (a, b) in self.candidate.iter_mut().zip(&other.candidate) {
            a.merge(b);
        }
        for (a, b) in self.pairs.iter_mut().zip(&mut other.pairs) {
            a.absorb(b);
        }
    }
}

/// State shared by the driver threads and the ticker.
pub struct Shared {
    /// Set to stop every client (through [`Shared::stop_now`], which also
    /// wakes whoever waits in `wait_stop`).
    pub stop: AtomicBool,
    /// Woken when the run stops.
    stopped: Notify,
    /// Transactions done (both sides count once per pair), for progress.
    pub done: AtomicU64,
    /// Per-thread interval slots.
    pub slots: Vec<Mutex<Slot>>,
    /// Empty slots for the ticker to swap in, one per thread: built once, so
    /// no slot (≈10 MB of histograms, twice that paired) is ever built while
    /// a thread's mutex is held and its clients wait to record.
    spares: Mutex<Vec<Slot>>,
    /// A fatal error that stopped the run (unreachable server at start…).
    pub fatal: Mutex<Option<String>>,
    /// Set when a client or a driver thread panicked: a failed run, even
    /// before its first transaction.
    pub panicked: AtomicBool,
    /// Failed attempts to reconnect while the server was away, by code.
    pub reconnect_errors: Mutex<BTreeMap<String, u64>>,
    /// Replica-served transactions and read-your-writes staleness.
    pub stale: super::replicas::StaleCounters,
    /// Set once any client has connected: the server was reachable, so a
    /// failure to connect after that is an outage to wait out, not a typo.
    pub reached: AtomicBool,
    /// `--trace-params`: each client's first transactions, by client id.
    pub traces: Mutex<BTreeMap<usize, Vec<String>>>,
}

impl Shared {
    /// Fresh state for `threads` threads.
    pub fn new(workload: &Workload, threads: usize, paired: bool) -> Arc<Shared> {
        Arc::new(Shared {
            stop: AtomicBool::new(false),
            stopped: Notify::new(),
            done: AtomicU64::new(0),
            slots: (0..threads)
                .map(|_| Mutex::new(Slot::new(workload, paired)))
                .collect(),
            spares: Mutex::new((0..threads).map(|_| Slot::new(workload, paired)).collect()),
            fatal: Mutex::new(None),
            panicked: AtomicBool::new(false),
            reconnect_errors: Mutex::new(BTreeMap::new()),
            stale: Default::default(),
            reached: AtomicBool::new(false),
            traces: Mutex::new(BTreeMap::new()),
        })
    }

    /// Take every thread's slot, merged, leaving empty ones: each thread's
    /// lock is held only for a swap with a reset spare; the merge and the
    /// reset happen outside it, and the taken slot becomes the next spare.
    pub fn swap(&self, workload: &Workload, paired: bool) -> Slot {
        let mut total = Slot::new(workload, paired);
        let mut spares = match self.spares.lock() {
            Ok(mut s) => std::mem::take(&mut *s),
            Err(_) => Vec::new(),
        };
        for slot in &self.slots {
            let mut taken = spares.pop().unwrap_or_else(|| Slot::new(workload, paired));
            match slot.lock() {
                Ok(mut s) => std::mem::swap(&mut *s, &mut taken),
                Err(_) => continue,
            }
            total.absorb(&mut taken);
            taken.reset();
            spares.push(taken);
        }
        if let Ok(mut s) = self.spares.lock() {
            *s = spares;
        }
        total
    }

    /// Stop every client and wake whatever waits for the stop.
    pub fn stop_now(&self) {
        self.stop.store(true, Ordering::Relaxed);
        self.stopped.notify_waiters();
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
                shared.stop_now();
                Error::io("starting a driver thread", "thread", e)
            })?;
        handles.push(handle);
    }
    Ok(handles)
}

fn thread_main(t: usize, config: DriverConfig, shared: Arc<Shared>) {
    let _guard = PanicGuard(&shared);
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
        for c in config
            .local_clients()
            .into_iter()
            .skip(t)
            .step_by(config.threads)
        {
            let (config, shared) = (config.clone(), shared.clone());
            set.spawn(async move { client::client_main(c, t, config, shared).await });
        }
        join_clients(set, &shared).await;
    });
}

/// Wait for a thread's clients; one that panicked stops the run as failed.
async fn join_clients(mut set: tokio::task::JoinSet<()>, shared: &Shared) {
    while let Some(joined) = set.join_next().await {
        if let Err(e) = joined {
            if e.is_panic() {
                set_panicked(
                    shared,
                    &format!("a client panicked: {}", panic_text(e.into_panic())),
                );
            }
        }
    }
}

/// Marks the run failed when its thread unwinds (a panic outside a client).
struct PanicGuard<'a>(&'a Shared);

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if std::thread::panicking() {
            set_panicked(self.0, "a driver thread panicked");
        }
    }
}

fn set_panicked(shared: &Shared, message: &str) {
    shared.panicked.store(true, Ordering::Relaxed);
    set_fatal(
        shared,
        format!("{message} (a bug in crmbench: please report it)"),
    );
}

/// The message a panic carried, when it is text.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into())
}

pub(super) fn set_fatal(shared: &Shared, message: String) {
    if let Ok(mut f) = shared.fatal.lock() {
        f.get_or_insert(message);
    }
    shared.stop_now();
}

/// Open a connection, retrying with backoff while the server is away
/// (refused or dropped, restarting, recovering after a crash: see
/// [`server_unavailable`]) and counting each failed try by code; `None`
/// when the run stops first or the failure is of another kind (then fatal).
pub(super) async fn open_with_retry(
    spec: &ConnSpec,
    workload: &Workload,
    shared: &Shared,
    mode: Mode,
) -> Option<Session> {
    let mut delay = Duration::from_millis(50);
    loop {
        match Session::open(spec, workload, mode).await {
            Ok(c) => return Some(c),
            Err(e) => {
                if shared.stop.load(Ordering::Relaxed) {
                    return None;
                }
                if !server_unavailable(&e) {
                    set_fatal(
                        shared,
                        format!("reconnecting a client after a lost connection: {e}"),
                    );
                    return None;
                }
                if let Ok(mut counts) = shared.reconnect_errors.lock() {
                    *counts.entry(failure_code(&e)).or_default() += 1;
                }
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(Duration::from_secs(1));
            }
        }
    }
}

/// The code a failed connection attempt is counted under: its SQLSTATE, or
/// crmbench's own for a refused or dropped connection.
fn failure_code(e: &Error) -> String {
    match e {
        Error::ConnectionRefused { .. } => CONNECTION_REFUSED.into(),
        Error::ConnectionLost { .. } => CONNECTION_LOST.into(),
        other => other.sqlstate().unwrap_or(CLIENT_ERROR).into(),
    }
}

/// Open a client's first connection; any failure is fatal to the run.
pub(super) async fn initial(
    spec: &ConnSpec,
    workload: &Workload,
    shared: &Shared,
    mode: Mode,
) -> Option<Session> {
    match Session::open(spec, workload, mode).await {
        Ok(c) => {
            shared.reached.store(true, Ordering::Relaxed);
            Some(c)
        }
        // Another client reached the server, so this one met a restart (a
        // crashed backend) while still connecting: retry as after a lost
        // connection instead of failing the run.
        Err(e) if server_unavailable(&e) && shared.reached.load(Ordering::Relaxed) => {
            if let Ok(mut counts) = shared.reconnect_errors.lock() {
                *counts.entry(failure_code(&e)).or_default() += 1;
            }
            open_with_retry(spec, workload, shared, mode).await
        }
        Err(e) => {
            set_fatal(shared, format!("opening a client's first connection: {e}"));
            None
        }
    }
}

/// Resolve when the run stops: woken by [`Shared::stop_now`], not polled.
pub(super) async fn wait_stop(shared: &Shared) {
    let notified = shared.stopped.notified();
    tokio::pin!(notified);
    loop {
        // Registered before the flag is read, so a stop between the two
        // still wakes this waiter.
        notified.as_mut().enable();
        if shared.stop.load(Ordering::Relaxed) {
            return;
        }
        notified.as_mut().await;
        notified.set(shared.stopped.notified());
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

#[cfg(test)]
mod tests {
    use super::*;

    fn workload() -> Workload {
        Workload::parse(
            "name = \"w\"\n[[query]]\nname = \"q\"\nkind = \"read\"\nweight = 1\nsql = \"SELECT 1\"\n",
            std::path::Path::new("w.toml"),
        )
        .unwrap()
    }

    // The swapped-in slots are the last tick's, reset: a reset that missed
    // anything would count it again at the next tick.
    #[test]
    fn every_tick_takes_what_was_recorded_since_the_last_once() {
        let workload = workload();
        let shared = Shared::new(&workload, 2, true);
        for _ in 0..3 {
            for slot in &shared.slots {
                let mut s = slot.lock().unwrap();
                stats::record(&mut s.baseline[0].hist, 100);
                stats::record(&mut s.candidate[0].statements[0], 90);
                *s.baseline[0].errors.entry("40001".into()).or_default() += 1;
                s.baseline[0].retries += 1;
                s.pairs[0].push((70_000, 100, 120, 0));
            }
            let total = shared.swap(&workload, true);
            assert_eq!(total.baseline[0].hist.len(), 2);
            assert_eq!(total.candidate[0].statements[0].len(), 2);
            assert_eq!(total.baseline[0].errors["40001"], 2);
            assert_eq!(total.baseline[0].retries, 2);
            // Client ids above u16::MAX survive.
            assert_eq!(total.pairs[0].kept(), &[(70_000, 100, 120, 0); 2][..]);
        }
    }

    #[test]
    fn a_stop_wakes_a_waiter_whether_it_came_before_or_after() {
        let shared = Shared::new(&workload(), 1, false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        rt.block_on(async {
            let waiter = {
                let shared = shared.clone();
                tokio::spawn(async move { wait_stop(&shared).await })
            };
            tokio::task::yield_now().await;
            shared.stop_now();
            // A guard against a hang, not a timing assertion.
            tokio::time::timeout(Duration::from_secs(30), waiter)
                .await
                .unwrap()
                .unwrap();
            tokio::time::timeout(Duration::from_secs(30), wait_stop(&shared))
                .await
                .unwrap();
        });
    }

    #[test]
    fn a_panicking_client_stops_the_run_as_failed() {
        let workload = workload();
        let shared = Shared::new(&workload, 1, false);
        let rt = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        rt.block_on(async {
            let mut set = tokio::task::JoinSet::new();
            set.spawn(async {});
            set.spawn(async { panic!("days out of range") });
            join_clients(set, &shared).await;
        });
        assert!(shared.panicked.load(Ordering::Relaxed));
        assert!(shared.stop.load(Ordering::Relaxed));
        let fatal = shared.fatal.lock().unwrap().clone().unwrap();
        assert!(
            fatal.contains("a client panicked: days out of range"),
            "{fatal}"
        );
    }
}
