//! `crmbench run`: replay a workload over many connections, each transaction
//! framed with the tenant as an application does it, and record every query's
//! latency in HDR histograms (whole transaction and each statement), with a
//! per-interval series, errors by SQLSTATE, and the server's index and
//! statement statistics over the measured window. `--candidate-url` runs
//! paired: the same transaction, same parameters, to both databases in random
//! order, and reports candidate/baseline ratios with confidence intervals.

pub mod between;
mod client;
mod collect;
pub mod conn;
pub mod driver;
pub mod hotpath;
pub mod normal;
mod outcome;
pub mod paired;
pub mod pairs;
pub mod pgstat;
pub mod poolsize;
pub mod replicas;
pub mod sequential;
pub mod session;
mod slots;
mod window;
pub mod wire;
pub mod worker;

use std::path::PathBuf;
use std::time::Duration;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::{DatasetInfo, Results};
use crate::schema::clone::{Purpose, WorkingCopy};
use crate::workload::context::WorkloadContext;
use driver::{Arrivals, DriverConfig};
pub use outcome::{RunOutcome, bonferroni_level, check_room, save_outcome, write_outcome};

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Workload file (read by [`run`]; [`run_with`] takes it prepared).
    pub workload: PathBuf,
    /// Connections per side.
    pub clients: usize,
    /// Driver threads.
    pub threads: usize,
    /// Measured time.
    pub duration: Duration,
    /// Warm-up (not recorded).
    pub warmup: Duration,
    /// Open-loop rate, transactions/s.
    pub rate: Option<f64>,
    /// Arrival process for open loop.
    pub arrivals: Arrivals,
    /// Seed of parameter streams and statistics.
    pub seed: u64,
    /// Run on a fresh clone, dropped afterwards.
    pub fresh: bool,
    /// Candidate database (paired run).
    pub candidate_url: Option<String>,
    /// Candidate database on the target's own server, same credentials
    /// (paired run against a clone); used when `candidate_url` is `None`.
    pub candidate_database: Option<String>,
    /// Paired A/A run against the baseline itself.
    pub self_check: bool,
    /// Highest tolerated share of failed transactions per query.
    pub max_error_rate: f64,
    /// Series period.
    pub interval: Duration,
    /// Tries for serialization failures and deadlocks.
    pub max_tries: u32,
    /// Simple protocol instead of prepared statements.
    pub simple: bool,
    /// `--protocol pipeline`: the wire protocol, one Sync per frame segment.
    pub pipeline: bool,
    /// No live progress.
    pub quiet: bool,
    /// Sequential paired run (`--until-decided`): stop when every gated
    /// query is decided, at the latest after `duration` (`--max-duration`).
    pub sequential: Option<sequential::SequentialOptions>,
    /// The benchmark clients (baseline side) connect through this pooler
    /// (PgBouncer in transaction mode) instead of to the server; crmbench's
    /// own statistics and admin sessions still go to the server directly.
    pub pooler_url: Option<String>,
    /// Read replicas the clients send read queries to (URLs).
    pub replica_urls: Vec<String>,
    /// Also use the private server's own replicas when it has running ones.
    pub private_replicas: bool,
    /// Run only this worker's slice of the clients (`--worker K/N`).
    pub worker: Option<worker::WorkerSlice>,
    /// Open the run (connect, warm up, measure) at this wall-clock instant
    /// (`--start-at`), so the workers' windows line up.
    pub start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Record each client's first this-many transactions in results.json.
    pub trace_params: usize,
}

/// Run the workload at `opts.workload`. Results are returned even when the
/// run ended early (marked partial); an error is returned only when nothing
/// could run.
pub async fn run(target: &Target, opts: &RunOptions) -> Result<RunOutcome> {
    check_options(opts)?;
    let ctx = WorkloadContext::prepare(target, &opts.workload).await?;
    run_with(&ctx, target, opts).await
}

/// Run the workload of `ctx` (prepared already; `opts.workload` is not read)
/// on `target`, as [`run`] does.
pub async fn run_with(
    ctx: &WorkloadContext,
    target: &Target,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    check_options(opts)?;
    if !opts.fresh {
        return run_on(ctx, target, target, opts).await;
    }
    // Held by its lease while the run works: a killed run's copy is
    // dropped by the next `schema gc`.
    let copy = WorkingCopy::create(target, Purpose::FreshRun).await?;
    let result = run_on(ctx, &copy.target(), target, opts).await;
    copy.remove_or_warn().await;
    result
}

/// Refuse options no run can use (before any work).
pub fn check_options(opts: &RunOptions) -> Result<()> {
    if opts.clients == 0 || opts.threads == 0 {
        return Err(Error::Usage {
            message: "--clients and --threads must be at least 1".into(),
            fix: "e.g. --clients 8 --threads 2".into(),
        });
    }
    if let Some(rate) = opts.rate {
        check_rate(rate, opts.warmup + opts.duration)?;
    }
    worker::check(opts.worker, opts.clients)?;
    if opts.worker.is_some() && opts.sequential.is_some() {
        return Err(Error::Usage {
            message: "--worker with --until-decided: each worker would stop on its own slice"
                .into(),
            fix: "run the workers for a fixed --duration, `crmbench merge` them, then                   `crmbench compare` the merged folder"
                .into(),
        });
    }
    Ok(())
}

/// An open-loop rate must be a number whose first arrival (1/rate seconds
/// on average) falls within the run.
fn check_rate(rate: f64, run: Duration) -> Result<()> {
    let seconds = run.as_secs_f64().max(1e-3);
    if rate.is_finite() && rate > 0.0 && 1.0 / rate <= seconds {
        return Ok(());
    }
    let shown = if rate.abs() >= 1e-3 {
        rate.to_string()
    } else {
        format!("{rate:e}")
    };
    Err(Error::Usage {
        message: format!(
            "--rate {shown}: at this rate the first transaction is not expected within the \
             run ({seconds:.1} s of warm-up and measurement)"
        ),
        fix: format!(
            "give --rate at least {:.3} transactions/s, or omit it for closed loop",
            1.0 / seconds
        ),
    })
}

/// Run on `target` (the benchmark database or its fresh clone); `original`
/// is the database the user named, as the results describe it.
async fn run_on(
    ctx: &WorkloadContext,
    target: &Target,
    original: &Target,
    opts: &RunOptions,
) -> Result<RunOutcome> {
    let mut stats = pgstat::StatsConn::open(&target.admin()).await?;
    let admin = stats.client();
    let candidate = candidate_target(target, opts)?;
    let baseline_spec = match &opts.pooler_url {
        Some(url) => pooled_spec(ctx, url)?,
        None => ctx.spec_on(target),
    };
    let candidate_spec = match (&candidate, opts.self_check) {
        (Some(c), _) => Some(ctx.spec_on(c)),
        (None, true) => Some(baseline_spec.clone()),
        (None, false) => None,
    };
    let paired = candidate_spec.is_some();
    let replica_targets = replicas::targets(target, opts, paired)?;
    if opts.pipeline && !replica_targets.is_empty() {
        return Err(Error::Usage {
            message: "--protocol pipeline does not send reads to replicas (read-your-writes \
                      waits need a tokio-postgres session)"
                .into(),
            fix: "use --protocol prepared with replicas".into(),
        });
    }
    let local = worker::local_clients(opts.clients, opts.worker).len();
    let threads = opts.threads.min(local).max(1);
    let config = DriverConfig {
        workload: ctx.shared_workload(),
        pools: ctx.shared_pools(),
        baseline: baseline_spec,
        candidate: candidate_spec,
        clients: opts.clients,
        threads,
        rate: opts.rate,
        arrivals: opts.arrivals,
        seed: opts.seed,
        max_tries: opts.max_tries.max(1),
        simple: opts.simple,
        pipeline: opts.pipeline,
        replicas: replica_targets.iter().map(|t| ctx.spec_on(t)).collect(),
        worker: opts.worker,
        trace_params: opts.trace_params,
    };
    let candidate_label = candidate.as_ref().map(|c| c.describe()).or_else(|| {
        opts.self_check
            .then(|| "the baseline itself (A/A self-check)".into())
    });
    let server = pgstat::server_info(admin, original.describe(), candidate_label).await;
    let dataset = dataset_info(admin).await;
    let elsewhere = candidate.as_ref().filter(|_| opts.candidate_url.is_some());
    slots::check(admin, &target.describe(), &config, elsewhere).await?;
    if let Some(warning) = cores_warning(paired, opts.clients, available_cores()) {
        crate::console::err_line(warning);
    }
    wait_for_start(opts).await?;
    let lag = replicas::LagSampler::start(target, &replica_targets, opts).await?;
    let measured = window::measure(&mut stats, config, opts).await?;
    let replication = match lag {
        Some(sampler) => Some(replicas::ReplicationInfo::from_run(
            replica_targets.iter().map(Target::describe).collect(),
            ctx.workload()
                .queries
                .iter()
                .filter(|q| q.to_replica())
                .map(|q| q.name.clone())
                .collect(),
            &measured.stale,
            sampler.finish(opts.warmup).await,
        )),
        None => None,
    };
    let setup = outcome::Setup {
        threads,
        paired,
        server,
        dataset,
    };
    let mut outcome = outcome::assemble(ctx.workload(), opts, setup, measured);
    outcome.results.replication = replication;
    Ok(outcome)
}

/// `--start-at`: sleep until the agreed instant (every check above has
/// passed, so a worker that cannot run says so before the others start).
async fn wait_for_start(opts: &RunOptions) -> Result<()> {
    let Some(start) = opts.start_at else {
        return Ok(());
    };
    let wait = worker::wait_for(start, chrono::Utc::now(), Duration::from_secs(1))?;
    if !opts.quiet && !wait.is_zero() {
        crate::console::err_line(format!(
            "run: waiting {:.1} s for --start-at {}",
            wait.as_secs_f64(),
            start.to_rfc3339()
        ));
    }
    tokio::time::sleep(wait).await;
    Ok(())
}

/// The workload's connection through the pooler at `url`. Session state
/// does not survive transaction pooling, so a workload that needs `SET ROLE`
/// after connecting is refused rather than leaking its role to others.
fn pooled_spec(ctx: &WorkloadContext, url: &str) -> Result<pg::ConnSpec> {
    let pooler = Target::resolve(
        &pg::TargetOptions {
            database_url: Some(url.to_string()),
            ..Default::default()
        },
        false,
    )?
    .0;
    let mut spec = ctx.spec_on(&pooler);
    // Logging in as the workload's role needs no SET ROLE at all.
    if spec.set_role.as_deref() == spec.config.get_user() {
        spec.set_role = None;
    }
    if let Some(role) = &spec.set_role {
        return Err(pg::pooler::role_refused(role));
    }
    Ok(spec)
}

/// The machine's cores (2 when unknown).
fn available_cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Item 5 of issue 12: with more clients than cores, a cheap query's tail
/// is the wait for a core (both sides queue alike), not the query, and the
/// paired ratio of its p95 drifts toward 1 — a lost index went unflagged at
/// 8 clients on 2 cores. The warning says so before a paired run measures.
pub fn cores_warning(paired: bool, clients: usize, cores: usize) -> Option<String> {
    (paired && clients > cores).then(|| {
        format!(
            "warning: {clients} clients on {cores} cores: with more clients than cores, the \
             p95 of cheap queries is mostly CPU queueing, which hides their changes from the \
             gate; use --clients {cores} (or fewer) for a paired gate run"
        )
    })
}

/// The candidate database of a paired run: `--candidate-url`, or a database
/// on the target's own server.
fn candidate_target(target: &Target, opts: &RunOptions) -> Result<Option<Target>> {
    Ok(match &opts.candidate_url {
        Some(url) => Some(
            Target::resolve(
                &pg::TargetOptions {
                    database_url: Some(url.clone()),
                    ..Default::default()
                },
                false,
            )?
            .0,
        ),
        None => opts
            .candidate_database
            .as_ref()
            .map(|db| target.on_database(db)),
    })
}

async fn dataset_info(admin: &tokio_postgres::Client) -> Option<DatasetInfo> {
    let row = admin
        .query_opt("SELECT seed, scale FROM crm.crmbench_meta", &[])
        .await
        .ok()
        .flatten()?;
    Some(DatasetInfo {
        seed: row.get(0),
        scale: row.get(1),
    })
}

/// The final table: count, tps, p50/p95/p99/max and errors per query.
pub fn render_table(results: &Results) -> String {
    let mut out = format!(
        "{:<28} {:>8} {:>9} {:>9} {:>9} {:>9} {:>10} {:>7}\n",
        "query", "count", "tps", "p50 ms", "p95 ms", "p99 ms", "max ms", "errors"
    );
    let ms = |us: u64| us as f64 / 1000.0;
    for q in &results.queries {
        let b = &q.baseline;
        out.push_str(&format!(
            "{:<28} {:>8} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>10.2} {:>7}\n",
            q.name,
            b.count,
            b.tps,
            ms(b.latency.p50_us),
            ms(b.latency.p95_us),
            ms(b.latency.p99_us),
            ms(b.latency.max_us),
            b.errors.values().sum::<u64>()
        ));
        if let Some(r) = &q.ratios {
            out.push_str(&format!(
                "{:<28} candidate/baseline p50 {:.3} [{:.3}, {:.3}]  p95 {:.3} [{:.3}, {:.3}]  p99 {:.3} [{:.3}, {:.3}]\n",
                "",
                r.p50.ratio, r.p50.lo, r.p50.hi, r.p95.ratio, r.p95.lo, r.p95.hi, r.p99.ratio, r.p99.lo, r.p99.hi
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn more_clients_than_cores_warns_only_for_a_paired_run() {
        let w = cores_warning(true, 8, 2).unwrap();
        assert!(
            w.contains("8 clients on 2 cores") && w.contains("--clients 2"),
            "{w}"
        );
        assert!(cores_warning(true, 2, 2).is_none());
        assert!(cores_warning(false, 8, 2).is_none());
    }
}
