//! The load driver: `--threads` OS threads, each with its own current-thread
//! runtime owning its clients' connections (pgbench's layout, which matched
//! pgbench here where one shared multi-threaded pool reached 0.6–0.7×). Each
//! client runs closed loop (next transaction when the last returns) or open
//! loop (intended start times at `--rate`; latency counted from the intended
//! start, so a stalled server shows in the tail). Clients record into their
//! thread's interval slot; the ticker swaps the slots every interval.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::conn::{Conn, TxError};
use crate::error::{Error, Result};
use crate::pg::ConnSpec;
use crate::rng::{Prng, tag};
use crate::stats::{self, Hist};
use crate::workload::params::{Pools, Value};
use crate::workload::{Param, Workload};

/// Pair samples kept per query per interval slot (reservoir cap is applied by the ticker).
const PAIRS_PER_SLOT: usize = 4096;

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
            set.spawn(async move { client_main(c, t, config, shared).await });
        }
        while set.join_next().await.is_some() {}
    });
}

fn set_fatal(shared: &Shared, message: String) {
    if let Ok(mut f) = shared.fatal.lock() {
        f.get_or_insert(message);
    }
    shared.stop.store(true, Ordering::Relaxed);
}

async fn open_with_retry(
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

async fn client_main(c: usize, t: usize, config: DriverConfig, shared: Arc<Shared>) {
    let workload = config.workload.clone();
    let pools = config.pools.clone();
    let mut rng = Prng::for_parts(&[config.seed, tag("client"), c as u64]);
    // Every other client opens the candidate's connection first: whatever being
    // opened first does to a backend (placement, caches) cancels out.
    let candidate_opens_first = c % 2 == 1;
    let mut cand = None;
    if candidate_opens_first {
        if let Some(spec) = &config.candidate {
            match initial(spec, &workload, &shared, config.simple).await {
                Some(c) => cand = Some(c),
                None => return,
            }
        }
    }
    let Some(mut base) = initial(&config.baseline, &workload, &shared, config.simple).await else {
        return;
    };
    if !candidate_opens_first {
        if let Some(spec) = &config.candidate {
            match initial(spec, &workload, &shared, config.simple).await {
                Some(c) => cand = Some(c),
                None => return,
            }
        }
    }
    let cumulative: Vec<u64> = workload
        .queries
        .iter()
        .scan(0u64, |acc, q| {
            *acc += u64::from(q.weight);
            Some(*acc)
        })
        .collect();
    let total_weight = cumulative.last().copied().unwrap_or(1);
    let per_client_rate = config.rate.map(|r| r / config.clients as f64);
    let mut next_start = Instant::now();
    let empty = std::collections::HashMap::new();

    while !shared.stop.load(Ordering::Relaxed) {
        let intended = match per_client_rate {
            Some(rate) => {
                let gap = match config.arrivals {
                    Arrivals::Poisson => -(1.0 - rng.unit()).ln() / rate,
                    Arrivals::Uniform => 1.0 / rate,
                };
                next_start += Duration::from_secs_f64(gap);
                let now = Instant::now();
                if next_start > now {
                    tokio::select! {
                        _ = tokio::time::sleep_until(next_start.into()) => {}
                        _ = wait_stop(&shared) => break,
                    }
                }
                Some(next_start)
            }
            None => None,
        };
        let pick = rng.below(total_weight);
        let qi = cumulative.partition_point(|&w| w <= pick);
        let query = &workload.queries[qi];
        let tenant = pools.tenants.pick(query.tenant, &mut rng).to_string();
        let values: Vec<Vec<Value>> = query
            .statements
            .iter()
            .map(|st| {
                st.params
                    .iter()
                    .map(|p| match p {
                        Param::Ref(_) => Value::Null,
                        _ => pools.value(p, &mut rng, &tenant, &empty),
                    })
                    .collect()
            })
            .collect();
        let candidate_first = cand.is_some() && rng.chance(0.5);
        let mut results: [Option<(std::result::Result<super::conn::TxOutcome, TxError>, u32)>; 2] =
            [None, None];
        for side in 0..2 {
            let is_candidate = (side == 0) == candidate_first;
            let conn = if is_candidate {
                cand.as_mut()
            } else {
                Some(&mut base)
            };
            let Some(conn) = conn else { continue };
            let mut tries = 0;
            let outcome = loop {
                tries += 1;
                let r = conn.run(qi, query, &tenant, &values).await;
                match &r {
                    Err(e) if e.retryable() && tries < config.max_tries => continue,
                    _ => break r,
                }
            };
            results[usize::from(is_candidate)] = Some((outcome, tries - 1));
        }
        // Record into this thread's slot.
        let paired = cand.is_some();
        let mut lost = [false, false];
        if let Ok(mut slot) = shared.slots[t].lock() {
            let mut pair = [0u32; 2];
            for (side, result) in results.iter().enumerate() {
                let Some((outcome, retries)) = result else {
                    continue;
                };
                let s = if side == 1 {
                    &mut slot.candidate[qi]
                } else {
                    &mut slot.baseline[qi]
                };
                s.retries += u64::from(*retries);
                match outcome {
                    Ok(o) => {
                        // Open loop, unpaired: from the intended start (no coordinated omission).
                        let us = match intended {
                            Some(at) if !paired => {
                                u64::try_from(at.elapsed().as_micros()).unwrap_or(u64::MAX)
                            }
                            _ => o.total_us,
                        };
                        stats::record(&mut s.hist, us);
                        for (h, v) in s.statements.iter_mut().zip(&o.statement_us) {
                            stats::record(h, *v);
                        }
                        pair[side] = u32::try_from(o.total_us).unwrap_or(u32::MAX);
                    }
                    Err(e) => {
                        *s.errors.entry(e.code.clone()).or_default() += 1;
                        s.messages.insert(e.code.clone(), e.message.clone());
                        lost[side] = e.lost();
                    }
                }
            }
            if paired && pair[0] > 0 && pair[1] > 0 && slot.pairs[qi].len() < PAIRS_PER_SLOT {
                slot.pairs[qi].push((c as u16, pair[0], pair[1]));
            }
        }
        shared.done.fetch_add(1, Ordering::Relaxed);
        // A killed backend or dropped connection: counted above, then reconnect.
        if lost[0] {
            match open_with_retry(&config.baseline, &workload, &shared, config.simple).await {
                Some(c) => base = c,
                None => return,
            }
        }
        if lost[1] {
            if let Some(spec) = &config.candidate {
                match open_with_retry(spec, &workload, &shared, config.simple).await {
                    Some(c) => cand = Some(c),
                    None => return,
                }
            }
        }
    }
}

async fn initial(
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

async fn wait_stop(shared: &Shared) {
    while !shared.stop.load(Ordering::Relaxed) {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Run `config` until `shared.stop`; returns when every thread ended.
pub fn join(handles: Vec<std::thread::JoinHandle<()>>) -> Result<()> {
    for h in handles {
        h.join().map_err(|_| Error::Usage {
            message: "a driver thread panicked".into(),
            fix: "report this as a bug".into(),
        })?;
    }
    Ok(())
}
