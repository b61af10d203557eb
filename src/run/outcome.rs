//! A run's outcome: the results assembled from what the measurement window
//! collected (per query and side: count, errors, throughput, percentiles,
//! histograms and series; paired ratios at a Bonferroni-adjusted level), the
//! queries over `--max-error-rate`, the A/A intervals that miss 1.00, the
//! exit code all that means (missing server statistics warn, they do not
//! fail a run), and `results.json` in the run folder — so the
//! CLI, `demo`, tests and library callers get the same files and codes.

use std::path::{Path, PathBuf};

use super::RunOptions;
use super::collect::Collector;
use super::driver::SideSlot;
use super::paired;
use super::window::Measured;
use crate::error::{Error, Result};
use crate::results::{
    DatasetInfo, DriverInfo, FORMAT_VERSION, IntervalStats, PairBlock, QueryResult, Results,
    ServerInfo, SideStats, StatementLatency, WorkloadInfo,
};
use crate::runfolder;
use crate::stats;
use crate::workload::{Kind, Workload};

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

impl RunOutcome {
    /// 2 when the run ended early (the results are partial); 1 when a query
    /// failed more often than `--max-error-rate` or the A/A self-check
    /// failed; else 0. The CLI exits with it.
    pub fn exit_code(&self) -> u8 {
        if self.results.partial.is_some() {
            2
        } else if !self.error_rate_exceeded.is_empty() || !self.self_check_failed.is_empty() {
            1
        } else {
            0
        }
    }
}

/// What a finished run tells its user beyond the table: the lines for
/// standard output and for standard error, in order.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Ending {
    /// Lines for standard output.
    pub stdout: Vec<String>,
    /// Lines for standard error.
    pub stderr: Vec<String>,
}

impl RunOutcome {
    /// The lines that say how the run ended, given where its results went:
    /// ended early, queries over `max_error_rate`, the A/A self-check.
    pub fn ending(&self, results_path: &Path, max_error_rate: f64, self_check: bool) -> Ending {
        let mut end = Ending::default();
        if let Some(reason) = &self.results.stats_missing {
            end.stderr.push(format!(
                "warning: the server's statistics over the window are missing ({reason}): \
                 no index usage or statement statistics in the results"
            ));
        }
        let reconnects = &self.results.reconnect_errors;
        if !reconnects.is_empty() {
            let tries: Vec<String> = reconnects
                .iter()
                .map(|(c, n)| format!("{c} ×{n}"))
                .collect();
            end.stderr.push(format!(
                "crmbench: the server went away during the run; clients reconnected \
                 (failed tries: {})",
                tries.join(", ")
            ));
        }
        if let Some(reason) = &self.results.partial {
            end.stderr.push(format!(
                "error: the run ended early ({reason}); the results gathered so far are in {}",
                results_path.display()
            ));
            return end;
        }
        let exceeded = &self.error_rate_exceeded;
        if !exceeded.is_empty() {
            end.stderr.push(format!(
                "crmbench: {} quer{} failed more often than --max-error-rate {:.2}%:",
                exceeded.len(),
                if exceeded.len() == 1 { "y" } else { "ies" },
                max_error_rate * 100.0
            ));
            end.stderr.extend(exceeded.iter().map(|l| format!("  {l}")));
        }
        if let Some(s) = &self.results.sequential {
            end.stdout
                .push(sequential_line(s, self.results.measured_seconds));
        }
        if self_check {
            if self.self_check_failed.is_empty() {
                end.stdout
                    .push("crmbench: A/A self-check passed: every interval contains 1.00".into());
            } else {
                end.stderr.push("crmbench: A/A self-check FAILED:".into());
                end.stderr
                    .extend(self.self_check_failed.iter().map(|l| format!("  {l}")));
            }
        }
        end
    }
}

/// Write the outcome's `results.json` into the run folder (`out`, or a new
/// timestamped folder under `reports/`); returns the file's path.
pub fn write_outcome(
    out: Option<&Path>,
    outcome: &RunOutcome,
    access: runfolder::Access,
) -> Result<PathBuf> {
    runfolder::RunFolder::prepare(out, "run", access)?.write(&outcome.results)
}

/// [`write_outcome`]; when the run folder cannot take the file after all (a
/// full disk), the results go to [`runfolder::write_fallback`] and the
/// error says where they are.
pub fn save_outcome(
    out: Option<&Path>,
    outcome: &RunOutcome,
    access: runfolder::Access,
) -> Result<PathBuf> {
    let failed = match write_outcome(out, outcome, access) {
        Ok(path) => return Ok(path),
        Err(e) => e,
    };
    let fix = failed
        .fix()
        .unwrap_or_else(|| "check the run folder, or pass --out DIR elsewhere".into());
    let message = match runfolder::write_fallback(&outcome.results) {
        Ok(saved) => format!(
            "{failed}; the results are saved in {} instead",
            saved.display()
        ),
        Err(also) => format!("{failed}; the results could not be saved elsewhere either: {also}"),
    };
    Err(Error::Usage { message, fix })
}

/// Check, before measuring, that the run folder (`out`, else the default
/// folder's parent) can take the results of running `workload` with `opts`.
pub fn check_room(out: Option<&Path>, workload: &Workload, opts: &RunOptions) -> Result<()> {
    let dir = out.unwrap_or(Path::new(runfolder::REPORTS));
    runfolder::check_room(dir, results_bytes(workload, opts))
}

/// A generous estimate of results.json's size: per query and side a
/// histogram and the series, per statement a histogram, and the server's
/// statistics.
fn results_bytes(workload: &Workload, opts: &RunOptions) -> u64 {
    const KIB: u64 = 1024;
    let paired = opts.candidate_url.is_some() || opts.candidate_database.is_some();
    let sides = if paired || opts.self_check { 2 } else { 1 };
    let interval = opts.interval.as_secs_f64().max(0.1);
    let intervals = (opts.duration.as_secs_f64() / interval).ceil() as u64 + 2;
    let queries = workload.queries.len() as u64;
    let statements: u64 = workload
        .queries
        .iter()
        .map(|q| q.statements.len() as u64)
        .sum();
    let per_side = 16 * KIB + intervals.saturating_mul(256);
    (256 * KIB)
        .saturating_add(queries.saturating_mul(sides).saturating_mul(per_side))
        .saturating_add(statements * 8 * KIB)
}

/// How the run was set up, as the results record it.
pub(super) struct Setup {
    /// Driver threads used.
    pub threads: usize,
    /// Paired run.
    pub paired: bool,
    /// The server and its settings.
    pub server: ServerInfo,
    /// The dataset's seed and scale, when crmbench generated it.
    pub dataset: Option<DatasetInfo>,
}

/// The outcome of a run of `workload` with `opts`, from what was measured.
pub(super) fn assemble(
    workload: &Workload,
    opts: &RunOptions,
    setup: Setup,
    measured: Measured,
) -> RunOutcome {
    let collected = &measured.collected;
    // A sequential run's intervals are those of its last look (its critical
    // value); a fixed-length run's are at the Bonferroni level.
    // The level is recorded as chosen (a round trip through z would drift
    // in the last digits).
    let (z, level) = match measured.looker.as_ref().and_then(|l| l.last_z()) {
        Some(z) => (z, 1.0 - 2.0 * super::normal::upper_tail(z)),
        None => {
            let level = bonferroni_level(&collected.pairs);
            (super::normal::z_two_sided(level), level)
        }
    };
    let queries = query_results(workload, collected, measured.seconds, (z, level), opts.seed);
    let error_rate_exceeded = error_rates(workload, &collected.totals, opts.max_error_rate);
    let self_check_failed = if opts.self_check {
        self_check_failures(&queries)
    } else {
        Vec::new()
    };
    let results = Results {
        format_version: FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        seed: opts.seed,
        dataset: setup.dataset,
        workload: WorkloadInfo {
            name: workload.name.clone(),
            path: workload.path.display().to_string(),
            hash: workload.hash.clone(),
        },
        server: setup.server,
        driver: DriverInfo {
            clients: opts.clients,
            threads: setup.threads,
            rate: opts.rate,
            protocol: match (opts.simple, opts.pipeline) {
                (true, _) => "simple",
                (false, true) => "pipeline",
                (false, false) => "prepared",
            }
            .into(),
            warmup_seconds: opts.warmup.as_secs_f64(),
            interval_seconds: opts.interval.as_secs_f64(),
            paired: setup.paired,
            pooler: opts.pooler_url.as_deref().map(crate::pg::redact::redact),
        },
        started_at: measured.started_at.to_rfc3339(),
        ended_at: chrono::Utc::now().to_rfc3339(),
        measured_seconds: measured.seconds,
        partial: measured.partial,
        queries,
        index_usage: measured.index_usage,
        statements: measured.statements,
        stats_missing: measured.stats_missing,
        reconnect_errors: measured.reconnect_errors,
        sequential: measured.looker.as_ref().map(|l| l.record()),
        replication: None,
        worker: opts.worker.map(|w| super::worker::WorkerRecord {
            index: w.index,
            count: w.count,
            clients: w.client_ids(opts.clients),
            start_at: opts.start_at.map(|t| t.to_rfc3339()),
        }),
        merged: None,
        param_trace: measured.traces.clone(),
    };
    RunOutcome {
        results,
        error_rate_exceeded,
        self_check_failed,
    }
}

/// Confidence level of each query's ratio interval: 95% shared among the
/// queries with enough pairs (≥ 20) to get one (Bonferroni), so "every
/// interval contains 1.00" is a claim about all of them at once.
pub fn bonferroni_level(pairs: &[Vec<paired::Block>]) -> f64 {
    let enough =
        |blocks: &[paired::Block]| blocks.iter().map(|b| b.pairs.len()).sum::<usize>() >= 20;
    // Tenant classes are members of the family, as the queries are.
    let compared: usize = pairs
        .iter()
        .filter(|p| enough(p))
        .map(|p| {
            1 + paired::classes_present(p)
                .into_iter()
                .filter(|&c| enough(&paired::class_blocks(p, c)))
                .count()
        })
        .sum();
    1.0 - 0.05 / compared.max(1) as f64
}

/// Every query's figures: both sides, ratios when paired, each statement.
fn query_results(
    workload: &Workload,
    collected: &Collector,
    seconds: f64,
    (z, level): (f64, f64),
    seed: u64,
) -> Vec<QueryResult> {
    let paired = collected.paired();
    // The client variance is pooled over every query (it belongs to the
    // connections), so all ratios are computed together.
    let (mut ratios, tau2) = if paired {
        paired::all_ratios(&collected.pairs, z, level, seed)
    } else {
        (vec![None; workload.queries.len()], [0.0; 4])
    };
    workload
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
            baseline: side(&collected.totals[i], &collected.series[i], seconds)
                .with_interval_histograms(collected, 0, i),
            candidate: paired.then(|| {
                side(
                    &collected.candidate_totals[i],
                    &collected.candidate_series[i],
                    seconds,
                )
                .with_interval_histograms(collected, 1, i)
            }),
            ratios: ratios.get_mut(i).and_then(Option::take),
            statements: query
                .statements
                .iter()
                .enumerate()
                .map(|(k, st)| StatementLatency {
                    index: k,
                    sql: st.sql.clone(),
                    latency: stats::summarize(&collected.totals[i].statements[k]),
                    histogram: stats::encode(&collected.totals[i].statements[k]),
                })
                .collect(),
            gate: query.gate,
            classes: if paired {
                paired::class_results(&collected.pairs[i], (z, level), seed ^ i as u64, &tau2)
            } else {
                Vec::new()
            },
            pair_blocks: match collected.interval_histograms {
                // A worker run: `merge` recomputes the ratios from everyone's pairs.
                Some(_) => collected.pairs[i]
                    .iter()
                    .map(|b| PairBlock {
                        client: b.client,
                        pairs: b.pairs.clone(),
                        seen: b.seen,
                        classes: if b.classes.iter().all(|c| *c == paired::NO_CLASS) {
                            Vec::new()
                        } else {
                            b.classes.clone()
                        },
                    })
                    .collect(),
                None => Vec::new(),
            },
        })
        .collect()
}

impl SideStats {
    /// With each series point's histogram, when the collector kept them.
    fn with_interval_histograms(
        mut self,
        collected: &Collector,
        side: usize,
        query: usize,
    ) -> Self {
        if let Some(kept) = &collected.interval_histograms {
            self.interval_histograms = kept[side][query].clone();
        }
        self
    }
}

/// One side's figures over a window of `seconds`.
fn side(slot: &SideSlot, series: &[IntervalStats], seconds: f64) -> SideStats {
    SideStats {
        count: slot.hist.len(),
        errors: slot.errors.clone(),
        retries: slot.retries,
        tps: slot.hist.len() as f64 / seconds,
        latency: stats::summarize(&slot.hist),
        histogram: stats::encode(&slot.hist),
        intervals: series.to_vec(),
        interval_histograms: Vec::new(),
    }
}

/// The queries whose share of failed transactions exceeds `max_error_rate`,
/// each with its most frequent error.
fn error_rates(workload: &Workload, totals: &[SideSlot], max_error_rate: f64) -> Vec<String> {
    workload
        .queries
        .iter()
        .zip(totals)
        .filter_map(|(query, total)| {
            let errors: u64 = total.errors.values().sum();
            let all = errors + total.hist.len();
            let rate = if all == 0 {
                0.0
            } else {
                errors as f64 / all as f64
            };
            (errors > 0 && rate > max_error_rate).then(|| {
                let (code, n) = total
                    .errors
                    .iter()
                    .max_by_key(|(_, n)| **n)
                    .map(|(c, n)| (c.clone(), *n))
                    .unwrap_or_default();
                let message = total.messages.get(&code).cloned().unwrap_or_default();
                format!(
                    "{}: {:.1}% of {} transactions failed; most often {code} ({n}×): {message}",
                    query.name,
                    rate * 100.0,
                    all
                )
            })
        })
        .collect()
}

/// The queries of an A/A run whose p50, p95 or p99 interval misses 1.00.
fn self_check_failures(queries: &[QueryResult]) -> Vec<String> {
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
}

/// How a sequential run ended, in one line.
fn sequential_line(s: &crate::results::SequentialRecord, seconds: f64) -> String {
    let undecided = s.looks.last().map_or(s.family, |l| l.undecided);
    format!(
        "crmbench: sequential gate {} after {seconds:.0} s ({} looks): {} of {} gated \
         quer{} undecided; `crmbench compare` on this run folder gives the verdict",
        match s.stopped.as_str() {
            "decided" => "decided every gated query",
            "regression" => "found a regression",
            _ => "reached --max-duration",
        },
        s.looks.len(),
        undecided,
        s.family,
        if s.family == 1 { "y" } else { "ies" }
    )
}
