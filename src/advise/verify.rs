//! `advise --verify`: every recommended index proven with real latency. The
//! indexes are applied cumulatively, one at a time in the order chosen, each
//! measured with `run`'s paired mode: the baseline is a clone of the current
//! state, the candidate a clone of it plus the new index; same clients, same
//! parameters, interleaved in random order (separate runs drift ±20% here; a
//! paired ratio held ±3%). An index is kept only if a query it was chosen for
//! is ≥10% faster with the whole interval (upper bound below 1/1.1) and no
//! query's p95 got >10% slower with the whole interval (lower bound above
//! 1.1); then the next index starts from the kept state. The benchmark
//! database itself is never touched: everything happens on working copies
//! (leased, see [`crate::schema::gc`]), dropped at the end — also when a
//! stop signal ends verification early.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::select::Chosen;
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::{QueryResult, RatioCi};
use crate::run::{self, RunOptions};
use crate::schema::clone::{Purpose, WorkingCopy};
use crate::signals;
use crate::workload::context::WorkloadContext;

/// Faster than this ratio (upper bound) counts as a win: ≥ 10% faster.
pub const KEEP_BELOW: f64 = 1.0 / 1.1;
/// Slower than this ratio (lower bound) counts as a regression: > 10% slower.
pub const REGRESSION_ABOVE: f64 = 1.1;

/// What verification measured for one index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Verified {
    /// The index's name.
    pub index: String,
    /// Its DDL.
    pub create_sql: String,
    /// Kept (it paid) or reverted.
    pub kept: bool,
    /// Why.
    pub reason: String,
    /// Predicted what-if cost ratio after/before for the workload.
    pub predicted_ratio: f64,
    /// Measured per query: (name, p50, p95) candidate/baseline with intervals.
    pub measured: Vec<MeasuredQuery>,
}

/// One query's paired ratios.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MeasuredQuery {
    /// Query.
    pub query: String,
    /// Median ratio.
    pub p50: RatioCi,
    /// 95th percentile ratio.
    pub p95: RatioCi,
    /// Serialized baseline histogram (µs).
    pub baseline_histogram: String,
    /// Serialized candidate histogram (µs).
    pub candidate_histogram: String,
}

/// Options of the paired runs.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Workload file.
    pub workload: std::path::PathBuf,
    /// Paired run length per index.
    pub duration: Duration,
    /// Clients per side.
    pub clients: usize,
    /// Seed.
    pub seed: u64,
    /// Schema the indexes go in.
    pub schema: String,
}

/// Decide from one paired run whether `chosen` pays.
pub fn decide(chosen: &Chosen, queries: &[QueryResult]) -> (bool, String) {
    // The reason names the query and the percentile that decided, never a
    // figure: the report gives each percentile's ratio its own column, and
    // a figure here would mix p50 and p95 in one column.
    let mut win = None;
    for q in queries.iter().filter(|q| chosen.queries.contains(&q.name)) {
        if let Some(r) = &q.ratios {
            let best = if r.p95.hi < r.p50.hi {
                ("p95", r.p95)
            } else {
                ("p50", r.p50)
            };
            if best.1.hi < KEEP_BELOW {
                win = Some(format!(
                    "{} got ≥10% faster at {} (the whole interval)",
                    q.name, best.0
                ));
                break;
            }
        }
    }
    let regression = queries.iter().find_map(|q| {
        let r = q.ratios.as_ref()?;
        (r.p95.lo > REGRESSION_ABOVE)
            .then(|| format!("{} got ≥10% slower at p95 (the whole interval)", q.name))
    });
    match (win, regression) {
        (_, Some(reg)) => (false, format!("reverted: {reg}")),
        (Some(w), None) => (true, format!("kept: {w}")),
        (None, None) => (
            false,
            "reverted: no query it was chosen for got ≥10% faster with the whole interval".into(),
        ),
    }
}

/// Verify `chosen` on clones of `target`'s database.
pub async fn verify(
    target: &Target,
    chosen: &[Chosen],
    base_cost: f64,
    opts: &VerifyOptions,
) -> Result<Vec<Verified>> {
    let ctx = WorkloadContext::prepare(target, &opts.workload).await?;
    verify_with(&ctx, target, chosen, base_cost, opts).await
}

/// [`verify`] with the workload already prepared on `target`
/// (`opts.workload` is not read). A stop signal ([`crate::signals`]) ends
/// it early: the indexes decided so far are returned (the one under test
/// when it came is left out) and the clones are dropped all the same.
pub async fn verify_with(
    ctx: &WorkloadContext,
    target: &Target,
    chosen: &[Chosen],
    base_cost: f64,
    opts: &VerifyOptions,
) -> Result<Vec<Verified>> {
    let state = WorkingCopy::create(target, Purpose::VerifyBase).await?;
    let result = verify_on(ctx, &state.target(), chosen, base_cost, opts).await;
    state.remove_or_warn().await;
    result
}

/// Verify each index in turn on `state` (the kept state's copy), until done
/// or asked to stop.
async fn verify_on(
    ctx: &WorkloadContext,
    state: &Target,
    chosen: &[Chosen],
    base_cost: f64,
    opts: &VerifyOptions,
) -> Result<Vec<Verified>> {
    let mut out = Vec::new();
    let mut previous_cost = base_cost;
    let mut progress = super::progress::Progress::new("advise: verifying", chosen.len() as u64);
    for (i, c) in chosen.iter().enumerate() {
        if signals::stopped().is_some() {
            break;
        }
        progress.at(i as u64, &c.def.name());
        let candidate = WorkingCopy::create(state, Purpose::VerifyCandidate).await?;
        let measured = measure_index(ctx, state, &candidate, c, opts).await;
        candidate.remove_or_warn().await;
        let Some((sql, queries)) = measured? else {
            break;
        };
        let (kept, reason) = decide(c, &queries);
        if kept {
            build(state, &sql, &format!("{} on the kept state", c.def.name())).await?;
        }
        out.push(Verified {
            index: c.def.name(),
            create_sql: sql,
            kept,
            reason,
            predicted_ratio: if previous_cost > 0.0 {
                c.cost_after / previous_cost
            } else {
                1.0
            },
            measured: measured_for(c, &queries),
        });
        previous_cost = c.cost_after;
    }
    progress.finish();
    Ok(out)
}

/// Build `c` on `candidate` and run the paired run against `state`: the
/// index's DDL and the run's per-query results, or `None` when a stop
/// signal cut the run short (nothing to decide on).
async fn measure_index(
    ctx: &WorkloadContext,
    state: &Target,
    candidate: &WorkingCopy,
    c: &Chosen,
    opts: &VerifyOptions,
) -> Result<Option<(String, Vec<QueryResult>)>> {
    let sql = c.def.create_sql(&opts.schema);
    build(
        &candidate.target(),
        &sql,
        &format!("{} on the candidate clone", c.def.name()),
    )
    .await?;
    let run_opts = paired_run(opts, candidate.name());
    let outcome = run::run_with(ctx, state, &run_opts).await?;
    if signals::stopped().is_some() {
        return Ok(None);
    }
    Ok(Some((sql, outcome.results.queries)))
}

/// The paired run of one index: the state as baseline, `candidate_db` as
/// candidate, closed loop, quiet.
fn paired_run(opts: &VerifyOptions, candidate_db: &str) -> RunOptions {
    RunOptions {
        workload: opts.workload.clone(),
        clients: opts.clients,
        threads: opts.clients.min(2),
        duration: opts.duration,
        warmup: Duration::from_secs(1),
        rate: None,
        arrivals: run::driver::Arrivals::Poisson,
        seed: opts.seed,
        fresh: false,
        candidate_url: None,
        candidate_database: Some(candidate_db.to_string()),
        self_check: false,
        max_error_rate: 1.0,
        interval: Duration::from_millis(500),
        max_tries: 1,
        simple: false,
        pipeline: false,
        quiet: true,
        sequential: None,
        worker: None,
        start_at: None,
        trace_params: 0,
        pooler_url: None,
        replica_urls: Vec::new(),
        private_replicas: false,
    }
}

/// Build an index (`sql`) on `target`; `what` names it in errors.
async fn build(target: &Target, sql: &str, what: &str) -> Result<()> {
    pg::connect(&target.admin())
        .await?
        .batch_execute(sql)
        .await
        .map_err(|e| Error::from_pg(format!("building {what}"), e))
}

/// The paired ratios of the queries `c` was chosen for.
fn measured_for(c: &Chosen, queries: &[QueryResult]) -> Vec<MeasuredQuery> {
    queries
        .iter()
        .filter(|q| c.queries.contains(&q.name))
        .filter_map(|q| {
            let r = q.ratios.as_ref()?;
            Some(MeasuredQuery {
                query: q.name.clone(),
                p50: r.p50,
                p95: r.p95,
                baseline_histogram: q.baseline.histogram.clone(),
                candidate_histogram: q
                    .candidate
                    .as_ref()
                    .map(|s| s.histogram.clone())
                    .unwrap_or_default(),
            })
        })
        .collect()
}
