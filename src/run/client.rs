//! One benchmark client's loop: wait for the next intended start (open loop)
//! or go at once (closed loop), pick a query by weight and a tenant, draw the
//! parameter values, run the transaction on the baseline (and, paired, on the
//! candidate, in random order with the same values), record into its driver
//! thread's slot, and replace a connection the server dropped. Every random
//! draw comes from the client's own stream, in a fixed order, so a seed
//! replays the same transactions.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::conn::{TxError, TxOutcome};
use super::driver::{Arrivals, DriverConfig, Shared, Slot, initial, open_with_retry, wait_stop};
use super::paired;
use super::session::Session;
use crate::rng::{Prng, tag};
use crate::stats;
use crate::workload::params::{Pools, Value};
use crate::workload::{Param, Query, Workload};

/// A transaction's result on one side, with the retries it took.
pub(super) type SideResult = (std::result::Result<TxOutcome, TxError>, u32);

/// Client `c` on driver thread `t`: runs until `shared.stop`.
pub(super) async fn client_main(c: usize, t: usize, config: DriverConfig, shared: Arc<Shared>) {
    let mut rng = Prng::for_parts(&[config.seed, tag("client"), c as u64]);
    let Some(mut sides) = Sides::open(c, &config, &shared).await else {
        return;
    };
    let picker = QueryPicker::new(&config.workload);
    let mut pacer = Pacer::new(
        config.rate.map(|r| r / config.clients as f64),
        config.arrivals,
    );
    let no_refs = HashMap::new();
    // Reused by every transaction: its inner lists keep their capacity.
    let mut values: Vec<Vec<Value>> = Vec::new();
    let mut trace = Trace {
        client: c,
        limit: config.trace_params,
        lines: Vec::new(),
        shared: &shared,
    };
    while !shared.stop.load(Ordering::Relaxed) {
        let intended = match pacer.next(&mut rng, &shared).await {
            Turn::Go(intended) => intended,
            Turn::Stop => break,
        };
        let qi = picker.pick(&mut rng);
        let query = &config.workload.queries[qi];
        let (tenant, class) = draw(query, &config.pools, &mut rng, &no_refs, &mut values);
        trace.add(&query.name, tenant, &values);
        let routed = sides.replica.is_some() && query.to_replica();
        if routed && query.reads_own_writes {
            sides.await_own_write(&shared).await;
        }
        let results = sides
            .run(qi, query, tenant, &values, config.max_tries, &mut rng)
            .await;
        sides.after(query, routed, &results, &shared).await;
        let paired = sides.candidate.is_some();
        let lost = record(&shared.slots[t], (c, class), qi, intended, paired, &results);
        shared.done.fetch_add(1, Ordering::Relaxed);
        // A killed backend or dropped connection: counted above, then reconnect.
        if !sides.reconnect(lost, routed, &config, &shared).await {
            return;
        }
    }
}

/// `--trace-params`: a client's first transactions as text (query, tenant,
/// values), handed to the run however the client ends.
struct Trace<'a> {
    client: usize,
    limit: usize,
    lines: Vec<String>,
    shared: &'a Shared,
}

impl Trace<'_> {
    fn add(&mut self, query: &str, tenant: &str, values: &[Vec<Value>]) {
        if self.lines.len() < self.limit {
            self.lines.push(trace_line(query, tenant, values));
        }
    }
}

impl Drop for Trace<'_> {
    fn drop(&mut self) {
        if self.limit == 0 {
            return;
        }
        if let Ok(mut traces) = self.shared.traces.lock() {
            traces.insert(self.client, std::mem::take(&mut self.lines));
        }
    }
}

/// One transaction's drawn values as one line (references, drawn later
/// from replies, show as NULL).
fn trace_line(query: &str, tenant: &str, values: &[Vec<Value>]) -> String {
    let text = |v: &Value| match v {
        Value::Text(s) => s.clone(),
        Value::Null => "NULL".into(),
        Value::Raw(_, bytes) => bytes.iter().map(|b| format!("{b:02x}")).collect(),
    };
    let statements: Vec<String> = values
        .iter()
        .map(|st| st.iter().map(text).collect::<Vec<_>>().join(","))
        .collect();
    format!("{query} {tenant} [{}]", statements.join("; "))
}

/// A client's connections: the baseline's, the candidate's when paired, and
/// its read replica's when the run has replicas.
struct Sides {
    baseline: Session,
    candidate: Option<Session>,
    replica: Option<Session>,
    /// The primary's WAL position after this client's last write, when a
    /// `reads_own_writes` query may follow.
    last_write: Option<String>,
    /// Whether any query reads its own writes (else positions are not taken).
    tracks_writes: bool,
    replica_index: usize,
}

impl Sides {
    /// Open both sides; `None` when one could not be opened (fatal).
    async fn open(c: usize, config: &DriverConfig, shared: &Shared) -> Option<Sides> {
        let mode = config.mode();
        let workload = &config.workload;
        // Every other client opens the candidate's connection first: whatever
        // being opened first does to a backend (placement, caches) cancels out.
        let (candidate, baseline) = if c % 2 == 1 {
            let candidate = open_candidate(config, shared).await?;
            let baseline = initial(&config.baseline, workload, shared, mode).await?;
            (candidate, baseline)
        } else {
            let baseline = initial(&config.baseline, workload, shared, mode).await?;
            (open_candidate(config, shared).await?, baseline)
        };
        let replica_index = c % config.replicas.len().max(1);
        let replica = match config.replicas.get(replica_index) {
            Some(spec) => Some(initial(spec, workload, shared, mode).await?),
            None => None,
        };
        Some(Sides {
            baseline,
            candidate,
            replica,
            last_write: None,
            tracks_writes: workload.queries.iter().any(|q| q.reads_own_writes),
            replica_index,
        })
    }

    /// Before a read of this client's own writes on its replica: wait (and
    /// count a stale read) until the replica has replayed the last write.
    async fn await_own_write(&self, shared: &Shared) {
        let replica = self.replica.as_ref().and_then(Session::client);
        if let (Some(replica), Some(lsn)) = (replica, &self.last_write) {
            let limit = Duration::from_secs(30);
            super::replicas::await_visible(replica, lsn, &shared.stale, limit, &shared.stop).await;
        }
    }

    /// After a transaction: count what a replica served, and note the
    /// primary's WAL position after a write that later reads may need.
    async fn after(
        &mut self,
        query: &Query,
        routed: bool,
        results: &[Option<SideResult>; 2],
        shared: &Shared,
    ) {
        if routed {
            shared.stale.served.fetch_add(1, Ordering::Relaxed);
        } else if self.tracks_writes
            && self.replica.is_some()
            && query.kind == crate::workload::Kind::Write
            && matches!(&results[0], Some((Ok(_), _)))
        {
            if let Some(client) = self.baseline.client() {
                self.last_write = super::replicas::primary_position(client).await;
            }
        }
    }

    /// Run the transaction on each side, in random order when paired;
    /// `[baseline, candidate]`.
    async fn run(
        &mut self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
        max_tries: u32,
        rng: &mut Prng,
    ) -> [Option<SideResult>; 2] {
        let candidate_first = self.candidate.is_some() && rng.chance(0.5);
        let mut results = [None, None];
        for side in 0..2 {
            let is_candidate = (side == 0) == candidate_first;
            let conn = if is_candidate {
                self.candidate.as_mut()
            } else if query.to_replica() && self.replica.is_some() {
                self.replica.as_mut()
            } else {
                Some(&mut self.baseline)
            };
            let Some(conn) = conn else { continue };
            let result = with_retries(conn, qi, query, tenant, values, max_tries).await;
            results[usize::from(is_candidate)] = Some(result);
        }
        results
    }

    /// Replace the connections `lost` says were lost (`[baseline,
    /// candidate]`); false when the client must end (the run stopped, or
    /// the server cannot be reached any more).
    async fn reconnect(
        &mut self,
        lost: [bool; 2],
        routed: bool,
        config: &DriverConfig,
        shared: &Shared,
    ) -> bool {
        let mode = config.mode();
        if lost[0] && routed {
            let Some(spec) = config.replicas.get(self.replica_index) else {
                return false;
            };
            match open_with_retry(spec, &config.workload, shared, mode).await {
                Some(c) => self.replica = Some(c),
                None => return false,
            }
        } else if lost[0] {
            match open_with_retry(&config.baseline, &config.workload, shared, mode).await {
                Some(c) => self.baseline = c,
                None => return false,
            }
        }
        if lost[1] {
            if let Some(spec) = &config.candidate {
                match open_with_retry(spec, &config.workload, shared, mode).await {
                    Some(c) => self.candidate = Some(c),
                    None => return false,
                }
            }
        }
        true
    }
}

/// The candidate's connection: `Some(None)` when the run is not paired,
/// `None` when it could not be opened (fatal).
async fn open_candidate(config: &DriverConfig, shared: &Shared) -> Option<Option<Session>> {
    match &config.candidate {
        Some(spec) => initial(spec, &config.workload, shared, config.mode())
            .await
            .map(Some),
        None => Some(None),
    }
}

/// Run once, again on a serialization failure or deadlock up to `max_tries`.
async fn with_retries(
    conn: &mut Session,
    qi: usize,
    query: &Query,
    tenant: &str,
    values: &[Vec<Value>],
    max_tries: u32,
) -> SideResult {
    let mut tries = 0;
    loop {
        tries += 1;
        let r = conn.run(qi, query, tenant, values).await;
        match &r {
            Err(e) if e.retryable() && tries < max_tries => continue,
            _ => return (r, tries - 1),
        }
    }
}

/// Queries by weight: a draw below the total weight lands on one query.
pub(super) struct QueryPicker {
    cumulative: Vec<u64>,
    total: u64,
}

impl QueryPicker {
    pub(super) fn new(workload: &Workload) -> QueryPicker {
        let cumulative: Vec<u64> = workload
            .queries
            .iter()
            .scan(0u64, |acc, q| {
                *acc += u64::from(q.weight);
                Some(*acc)
            })
            .collect();
        let total = cumulative.last().copied().unwrap_or(1);
        QueryPicker { cumulative, total }
    }

    pub(super) fn pick(&self, rng: &mut Prng) -> usize {
        let pick = rng.below(self.total);
        self.cumulative.partition_point(|&w| w <= pick)
    }
}

/// What the pacer says: go (with the intended start in open loop), or stop.
enum Turn {
    Go(Option<Instant>),
    Stop,
}

/// Intended start times in open loop (`rate` per client); none in closed loop.
struct Pacer {
    rate: Option<f64>,
    arrivals: Arrivals,
    next_start: Instant,
}

impl Pacer {
    fn new(rate: Option<f64>, arrivals: Arrivals) -> Pacer {
        Pacer {
            rate,
            arrivals,
            next_start: Instant::now(),
        }
    }

    /// Wait for the next intended start (open loop), or go at once.
    async fn next(&mut self, rng: &mut Prng, shared: &Shared) -> Turn {
        let Some(rate) = self.rate else {
            return Turn::Go(None);
        };
        let gap = match self.arrivals {
            Arrivals::Poisson => -(1.0 - rng.unit()).ln() / rate,
            Arrivals::Uniform => 1.0 / rate,
        };
        // check_options keeps the rate sane; a gap no clock holds means never.
        let Some(next) = Duration::try_from_secs_f64(gap)
            .ok()
            .and_then(|gap| self.next_start.checked_add(gap))
        else {
            wait_stop(shared).await;
            return Turn::Stop;
        };
        self.next_start = next;
        if self.next_start > Instant::now() {
            tokio::select! {
                _ = tokio::time::sleep_until(self.next_start.into()) => {}
                _ = wait_stop(shared) => return Turn::Stop,
            }
        }
        Turn::Go(Some(self.next_start))
    }
}

/// The transaction's tenant, its size class (a [`paired::NO_CLASS`] byte
/// when the workload has none); every statement's parameter values go to
/// `values`, whose lists are reused (`ref` parameters stay NULL here: the
/// connection fills them in from what an earlier statement returns).
pub(super) fn draw<'p>(
    query: &Query,
    pools: &'p Pools,
    rng: &mut Prng,
    no_refs: &HashMap<String, Value>,
    values: &mut Vec<Vec<Value>>,
) -> (&'p str, u8) {
    let (tenant, class) = pools.tenants.pick_classed(query.tenant, rng);
    let class = class.map_or(paired::NO_CLASS, |c| c as u8);
    values.resize_with(query.statements.len(), Vec::new);
    values.truncate(query.statements.len());
    for (st, list) in query.statements.iter().zip(values.iter_mut()) {
        list.clear();
        list.extend(st.params.iter().map(|p| match p {
            Param::Ref(_) => Value::Null,
            _ => pools.value(p, rng, tenant, no_refs),
        }));
    }
    (tenant, class)
}

/// Record one transaction's sides into the thread's slot; returns which
/// sides lost their connection (`[baseline, candidate]`).
pub(super) fn record(
    slot: &Mutex<Slot>,
    (c, class): (usize, u8),
    qi: usize,
    intended: Option<Instant>,
    paired: bool,
    results: &[Option<SideResult>; 2],
) -> [bool; 2] {
    let mut lost = [false, false];
    let Ok(mut slot) = slot.lock() else {
        return lost;
    };
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
    if paired && pair[0] > 0 && pair[1] > 0 {
        let client = u32::try_from(c).unwrap_or(u32::MAX);
        slot.pairs[qi].push((client, pair[0], pair[1], class));
    }
    lost
}
