//! `crmbench run`: replay a workload over many connections, each transaction
//! framed with the tenant as an application does it, and record every query's
//! latency in HDR histograms (whole transaction and each statement), with a
//! per-interval series, errors by SQLSTATE, and the server's index and
//! statement statistics over the measured window. `--candidate-url` runs
//! paired: the same transaction, same parameters, to both databases in random
//! order, and reports candidate/baseline ratios with confidence intervals.

mod client;
pub mod conn;
pub mod driver;
pub mod paired;
pub mod pgstat;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec, Target, roles};
use crate::results::{
    DatasetInfo, DriverInfo, FORMAT_VERSION, IntervalStats, QueryResult, Results, SideStats,
    StatementLatency, WorkloadInfo,
};
use crate::rng::Prng;
use crate::stats;
use crate::workload::params::Pools;
use crate::workload::{Kind, Workload, check};
use driver::{Arrivals, DriverConfig, Shared, SideSlot};

/// Options of `run`.
#[derive(Debug, Clone)]
pub struct RunOptions {
    /// Workload file.
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
    /// No live progress.
    pub quiet: bool,
}

/// What a run produced.
#[derive(Debug)]
pub struct RunOutcome {
    /// The results (also written to the run folder).
    pub results: Results,
    /// Queries over `--max-error-rate`, described.
    pub error_rate_exceeded: Vec<String>,
    /// Queries whose A/A interval misses 1.00 (`--self-check`).
    pub self_check_failed: Vec<String>,
}

/// The connection the workload's transactions use on `target`.
pub fn workload_spec(target: &Target, workload: &Workload) -> ConnSpec {
    match workload.context.role.as_deref() {
        Some(roles::APP) => target.app(),
        Some(role) => {
            let mut spec = target.admin();
            spec.set_role = Some(role.to_string());
            spec
        }
        None => target.admin(),
    }
}

/// Load the workload and check it against the server (what `--check` does).
pub async fn prepare(target: &Target, path: &std::path::Path) -> Result<(Workload, Pools)> {
    let workload = Workload::load(path)?;
    pg::bootstrap_private(target).await?;
    let admin = pg::connect(&target.admin()).await?;
    let pools = Pools::load(&admin, &workload).await?;
    let client = pg::connect(&workload_spec(target, &workload)).await?;
    let (big, _) = pools.tenants.big_and_small();
    check::check(&client, &workload, big).await?;
    Ok((workload, pools))
}

/// Run the workload. Results are returned even when the run ended early
/// (marked partial); an error is returned only when nothing could run.
pub async fn run(target: &Target, opts: &RunOptions) -> Result<RunOutcome> {
    if opts.clients == 0 || opts.threads == 0 {
        return Err(Error::Usage {
            message: "--clients and --threads must be at least 1".into(),
            fix: "e.g. --clients 8 --threads 2".into(),
        });
    }
    let (workload, pools) = prepare(target, &opts.workload).await?;
    let fresh_name = format!("crmbench_fresh_{}", std::process::id());
    let run_target = if opts.fresh {
        crate::schema::clone::clone_database(target, &fresh_name, true).await?;
        target.on_database(&fresh_name)
    } else {
        target.on_database(target.database())
    };
    let result = run_on(&run_target, target, opts, workload, pools).await;
    if opts.fresh {
        if let Err(e) = crate::schema::clone::drop_database(target, &fresh_name).await {
            tracing::warn!("could not drop the fresh clone {fresh_name}: {e}");
        }
    }
    result
}

async fn run_on(
    target: &Target,
    original: &Target,
    opts: &RunOptions,
    workload: Workload,
    pools: Pools,
) -> Result<RunOutcome> {
    let workload = Arc::new(workload);
    let admin = pg::connect(&target.admin()).await?;
    let candidate_target = match &opts.candidate_url {
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
    };
    let baseline_spec = workload_spec(target, &workload);
    let candidate_spec = match (&candidate_target, opts.self_check) {
        (Some(c), _) => Some(workload_spec(c, &workload)),
        (None, true) => Some(baseline_spec.clone()),
        (None, false) => None,
    };
    let paired = candidate_spec.is_some();
    let threads = opts.threads.min(opts.clients);
    let config = DriverConfig {
        workload: workload.clone(),
        pools: Arc::new(pools),
        baseline: baseline_spec,
        candidate: candidate_spec,
        clients: opts.clients,
        threads,
        rate: opts.rate,
        arrivals: opts.arrivals,
        seed: opts.seed,
        max_tries: opts.max_tries.max(1),
        simple: opts.simple,
    };
    let server = pgstat::server_info(
        &admin,
        original.describe(),
        candidate_target.as_ref().map(|c| c.describe()).or_else(|| {
            opts.self_check
                .then(|| "the baseline itself (A/A self-check)".into())
        }),
    )
    .await;
    let dataset = dataset_info(&admin).await;

    // Without warm-up the window opens before the first transaction: nothing
    // the clients do (a killed backend in the first second included) is lost.
    let mut measuring_since: Option<Instant> = None;
    let mut window_start = chrono::Utc::now();
    let mut before = pgstat::Snapshot::default();
    if opts.warmup.is_zero() {
        before = pgstat::snapshot(&admin).await;
        window_start = chrono::Utc::now();
        measuring_since = Some(Instant::now());
    }
    let shared = Shared::new(&workload, threads, paired);
    let handles = driver::start(config, shared.clone())?;
    let q = workload.queries.len();
    let mut totals: Vec<SideSlot> = driver::Slot::new(&workload, paired).baseline;
    let mut cand_totals: Vec<SideSlot> = driver::Slot::new(&workload, paired).candidate;
    let mut series: Vec<Vec<IntervalStats>> = vec![Vec::new(); q];
    let mut cand_series: Vec<Vec<IntervalStats>> = vec![Vec::new(); q];
    let mut pairs: Vec<Vec<paired::Block>> = vec![Vec::new(); q];
    let mut reservoir_rng = Prng::for_parts(&[opts.seed, 0x5EED]);

    let started = Instant::now();
    let mut partial: Option<String> = None;
    let mut tick = tokio::time::interval(opts.interval);
    tick.tick().await;
    let mut last_done = 0u64;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = &mut ctrl_c => {
                partial = Some("interrupted (Ctrl-C)".into());
            }
        }
        if let Some(fatal) = shared.fatal.lock().ok().and_then(|f| f.clone()) {
            if measuring_since.is_none() && shared.done.load(Ordering::Relaxed) == 0 {
                shared.stop.store(true, Ordering::Relaxed);
                let _ = tokio::task::spawn_blocking(move || driver::join(handles)).await;
                return Err(Error::Usage {
                    message: format!("the run could not start: {fatal}"),
                    fix: "check the server and the workload (`crmbench run --check`)".into(),
                });
            }
            partial.get_or_insert(format!("stopped by an error: {fatal}"));
        }
        let slot = shared.swap(&workload, paired);
        let done = shared.done.load(Ordering::Relaxed);
        match measuring_since {
            None if started.elapsed() >= opts.warmup => {
                // Warm-up over: from now on everything counts.
                before = pgstat::snapshot(&admin).await;
                window_start = chrono::Utc::now();
                measuring_since = Some(Instant::now());
                let _ = shared.swap(&workload, paired);
                last_done = shared.done.load(Ordering::Relaxed);
                if !opts.quiet {
                    eprintln!("run: warm-up done, measuring for {:?}", opts.duration);
                }
            }
            None => {}
            Some(since) => {
                let t = since.elapsed().as_secs_f64();
                for i in 0..q {
                    totals[i].merge(&slot.baseline[i]);
                    series[i].push(interval_stats(t, &slot.baseline[i]));
                    if paired {
                        cand_totals[i].merge(&slot.candidate[i]);
                        cand_series[i].push(interval_stats(t, &slot.candidate[i]));
                        pairs[i].extend(paired::blocks(&slot.pairs[i], &mut reservoir_rng));
                    }
                }
                if !opts.quiet {
                    let mut all = stats::new_hist();
                    let mut errors = 0;
                    for s in &slot.baseline {
                        stats::merge(&mut all, &s.hist);
                        errors += s.errors.values().sum::<u64>();
                    }
                    let secs = opts.interval.as_secs_f64();
                    eprintln!(
                        "run: {:>6.1}s  {:>9.0} tps  errors {:>5}  p99 {:>9.2} ms",
                        t,
                        (done - last_done) as f64 / secs,
                        errors,
                        stats::summarize(&all).p99_us as f64 / 1000.0
                    );
                }
                last_done = done;
                if since.elapsed() >= opts.duration {
                    break;
                }
            }
        }
        if partial.is_some() {
            break;
        }
    }
    shared.stop.store(true, Ordering::Relaxed);
    let joined = tokio::task::spawn_blocking(move || driver::join(handles)).await;
    if let Ok(Err(e)) | Err(e) = joined.map_err(|e| Error::Usage {
        message: e.to_string(),
        fix: String::new(),
    }) {
        partial.get_or_insert(e.to_string());
    }
    // What finished after the last tick still counts.
    if let Some(since) = measuring_since {
        let slot = shared.swap(&workload, paired);
        let t = since.elapsed().as_secs_f64();
        for i in 0..q {
            totals[i].merge(&slot.baseline[i]);
            if !slot.baseline[i].hist.is_empty() || !slot.baseline[i].errors.is_empty() {
                series[i].push(interval_stats(t, &slot.baseline[i]));
            }
            if paired {
                cand_totals[i].merge(&slot.candidate[i]);
                pairs[i].extend(paired::blocks(&slot.pairs[i], &mut reservoir_rng));
            }
        }
    }
    let measured = measuring_since
        .map_or(0.0, |s| s.elapsed().as_secs_f64())
        .max(1e-9);
    let after = pgstat::snapshot(&admin).await;
    let (index_usage, statements) = pgstat::delta(&before, &after);

    let level = 1.0
        - 0.05
            / pairs
                .iter()
                .filter(|p| p.iter().map(|b| b.pairs.len()).sum::<usize>() >= 20)
                .count()
                .max(1) as f64;
    let side = |slot: &SideSlot, series: &[IntervalStats]| SideStats {
        count: slot.hist.len(),
        errors: slot.errors.clone(),
        retries: slot.retries,
        tps: slot.hist.len() as f64 / measured,
        latency: stats::summarize(&slot.hist),
        histogram: stats::encode(&slot.hist),
        intervals: series.to_vec(),
    };
    let queries: Vec<QueryResult> = workload
        .queries
        .iter()
        .enumerate()
        .map(|(i, query)| QueryResult {
            name: query.name.clone(),
            kind: match query.kind {
                Kind::Read => "read".into(),
                Kind::Write => "write".into(),
            },
            weight: query.weight,
            baseline: side(&totals[i], &series[i]),
            candidate: paired.then(|| side(&cand_totals[i], &cand_series[i])),
            ratios: if paired {
                paired::ratios(&pairs[i], level, opts.seed ^ i as u64)
            } else {
                None
            },
            statements: query
                .statements
                .iter()
                .enumerate()
                .map(|(k, st)| StatementLatency {
                    index: k,
                    sql: st.sql.clone(),
                    latency: stats::summarize(&totals[i].statements[k]),
                    histogram: stats::encode(&totals[i].statements[k]),
                })
                .collect(),
        })
        .collect();
    let error_rate_exceeded = workload
        .queries
        .iter()
        .enumerate()
        .filter_map(|(i, query)| {
            let errors: u64 = totals[i].errors.values().sum();
            let all = errors + totals[i].hist.len();
            let rate = if all == 0 {
                0.0
            } else {
                errors as f64 / all as f64
            };
            (errors > 0 && rate > opts.max_error_rate).then(|| {
                let (code, n) = totals[i]
                    .errors
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(c, n)| (c.clone(), *n))
                    .unwrap_or_default();
                let message = totals[i].messages.get(&code).cloned().unwrap_or_default();
                format!(
                    "{}: {:.1}% of {} transactions failed; most often {code} ({n}×): {message}",
                    query.name,
                    rate * 100.0,
                    all
                )
            })
        })
        .collect();
    let self_check_failed = if opts.self_check {
        queries
            .iter()
            .filter_map(|qr| {
                let r = qr.ratios.as_ref()?;
                let bad: Vec<String> = [("p50", r.p50), ("p95", r.p95), ("p99", r.p99)]
                    .iter()
                    .filter(|(_, ci)| !(ci.lo <= 1.0 && 1.0 <= ci.hi))
                    .map(|(n, ci)| format!("{n} {:.3} [{:.3}, {:.3}]", ci.ratio, ci.lo, ci.hi))
                    .collect();
                (!bad.is_empty()).then(|| format!("{}: {}", qr.name, bad.join(", ")))
            })
            .collect()
    } else {
        Vec::new()
    };
    let results = Results {
        format_version: FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        seed: opts.seed,
        dataset,
        workload: WorkloadInfo {
            name: workload.name.clone(),
            path: workload.path.display().to_string(),
            hash: workload.hash.clone(),
        },
        server,
        driver: DriverInfo {
            clients: opts.clients,
            threads,
            rate: opts.rate,
            protocol: if opts.simple { "simple" } else { "prepared" }.into(),
            warmup_seconds: opts.warmup.as_secs_f64(),
            interval_seconds: opts.interval.as_secs_f64(),
            paired,
        },
        started_at: window_start.to_rfc3339(),
        ended_at: chrono::Utc::now().to_rfc3339(),
        measured_seconds: measured,
        partial,
        queries,
        index_usage,
        statements,
    };
    Ok(RunOutcome {
        results,
        error_rate_exceeded,
        self_check_failed,
    })
}

fn interval_stats(t: f64, slot: &SideSlot) -> IntervalStats {
    let s = stats::summarize(&slot.hist);
    IntervalStats {
        t,
        count: s.count,
        errors: slot.errors.values().sum(),
        p50_us: s.p50_us,
        p95_us: s.p95_us,
        p99_us: s.p99_us,
    }
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
