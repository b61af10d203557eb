//! `crmbench compare`: the CI regression gate. Files in (results.json, run
//! folders, plans.json), a verdict out; it never opens a database.
//!
//! Two kinds of input:
//! - one **paired** run (`run --candidate-url`): per query the candidate /
//!   baseline p95 (or `--metric`) ratio with the interval the run already
//!   computed from pairs measured in the same time window — the recommended gate;
//! - two **separate** runs: the ratio of each query's per-interval p95 series
//!   with a seeded block-bootstrap interval ([`separate`]), under a wider
//!   default threshold because drift between runs is not in that interval.
//!
//! The decision itself is pure ([`verdict`]); output is [`render`].

pub mod render;
pub mod separate;
pub mod verdict;

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::explain::PlansFile;
use crate::results::{QueryResult, RatioCi, Results, SideStats};
use crate::runfolder::RunFolder;
use verdict::{NewError, QueryVerdict, Verdict};

/// What would decide an inconclusive `row` of a run `seconds` long: how
/// much longer to run (an interval's width shrinks as 1/√time), or another
/// metric; `None` for a decided row.
pub fn decide_hint(row: &QueryRow, threshold: f64, seconds: f64, metric: Metric) -> Option<String> {
    let other = if metric == Metric::P50 {
        String::new()
    } else {
        ", or gate on p50 (narrower intervals)".to_string()
    };
    match row.verdict {
        QueryVerdict::TooFewSamples => {
            return Some(format!(
                "too rare to decide: {} transactions; run longer, or leave it out with                  --gate-queries",
                row.current_count.min(row.base_count)
            ));
        }
        QueryVerdict::Inconclusive => {}
        _ => return None,
    }
    let ci = row.change?;
    let half = (ci.hi.ln() - ci.lo.ln()) / 2.0;
    let gap = (ci.ratio.ln() - (1.0 + threshold).ln()).abs();
    if !(half.is_finite() && gap > 1e-3) {
        return Some(format!(
            "the change sits at the threshold: no run length decides it{other}"
        ));
    }
    let extra = seconds * ((half / gap).powi(2) - 1.0).max(0.0);
    let longer = if extra >= 90.0 {
        format!("~{:.0} min", extra / 60.0)
    } else {
        format!("~{:.0} s", extra.max(1.0))
    };
    Some(format!("run {longer} longer{other}"))
}

/// Version of compare's JSON output.
pub const FORMAT_VERSION: u32 = 1;
/// Fewest successful transactions per side a query needs for a verdict.
pub const MIN_SAMPLES: u64 = 20;
/// Default threshold for a paired run.
pub const PAIRED_THRESHOLD: f64 = 0.10;
/// Default threshold for separate runs: their drift is not in the interval.
pub const SEPARATE_THRESHOLD: f64 = 0.25;
/// Family confidence of separate-run intervals (Bonferroni across queries).
pub const SEPARATE_CONFIDENCE: f64 = 0.95;

/// What `compare` is asked to do.
#[derive(Debug, Clone)]
pub struct CompareOptions {
    /// Baseline results file or run folder (or the paired run).
    pub base: PathBuf,
    /// Current results file or run folder; `None` for a paired run.
    pub current: Option<PathBuf>,
    /// Threshold on the ratio (0.10 = 10%); `None` for the default of the input kind.
    pub threshold: Option<f64>,
    /// The gated percentile.
    pub metric: Metric,
    /// Highest share of a query's transactions a new SQLSTATE may take.
    pub max_error_rate: f64,
    /// Fail on a plan change.
    pub fail_on_plan_change: bool,
    /// The candidate's plans.json (or its folder) for a paired run.
    pub candidate_plans: Option<PathBuf>,
    /// Seed of the separate-run bootstrap.
    pub seed: u64,
    /// What an inconclusive verdict exits with.
    pub inconclusive: verdict::InconclusivePolicy,
}

/// The percentile the gate judges.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Metric {
    /// Median: the typical transaction.
    P50,
    /// 95th percentile (the default).
    #[default]
    P95,
    /// 99th percentile: needs many samples for a narrow interval.
    P99,
    /// Mean: what the query costs in all, its rare slow transactions
    /// included (a change the percentiles below them do not see).
    Mean,
}

impl Metric {
    /// "p50", "p95", "p99" or "mean".
    pub fn name(self) -> &'static str {
        match self {
            Metric::P50 => "p50",
            Metric::P95 => "p95",
            Metric::P99 => "p99",
            Metric::Mean => "mean",
        }
    }

    /// The metric named `name` (as [`Metric::name`] writes it).
    pub fn from_name(name: &str) -> Option<Metric> {
        [Metric::P50, Metric::P95, Metric::P99, Metric::Mean]
            .into_iter()
            .find(|m| m.name() == name)
    }

    /// The statistic the paired intervals estimate for it.
    pub fn stat(self) -> crate::run::paired::Stat {
        use crate::run::paired::Stat;
        match self {
            Metric::P50 => Stat::Quantile(0.50),
            Metric::P95 => Stat::Quantile(0.95),
            Metric::P99 => Stat::Quantile(0.99),
            Metric::Mean => Stat::Mean,
        }
    }

    /// This metric's ratio in `r` (`None`: the mean of a file written
    /// before means were kept).
    pub fn of_ratios(self, r: &crate::results::Ratios) -> Option<RatioCi> {
        match self {
            Metric::P50 => Some(r.p50),
            Metric::P95 => Some(r.p95),
            Metric::P99 => Some(r.p99),
            Metric::Mean => r.mean,
        }
    }

    /// This metric of one side of a tenant class.
    pub fn of_class(self, l: &crate::results::ClassLatency) -> u64 {
        match self {
            Metric::P50 => l.p50_us,
            Metric::P95 => l.p95_us,
            Metric::P99 => l.p99_us,
            Metric::Mean => l.mean_us,
        }
    }

    fn pick(self) -> separate::Pick {
        match self {
            Metric::P50 => |i| i.p50_us,
            Metric::P95 => |i| i.p95_us,
            Metric::P99 => |i| i.p99_us,
            Metric::Mean => |i| i.mean_us,
        }
    }
}

/// The error for a file written before means were kept, asked for the mean.
fn no_means(path: &Path) -> Error {
    Error::RunFile {
        message: format!(
            "{}: written before crmbench kept means: it has no mean to gate on",
            path.display()
        ),
        fix: "re-run the benchmark with this crmbench, or gate on a percentile (--metric p95)"
            .into(),
    }
}

/// How the two sides were measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InputKind {
    /// One paired run: both sides interleaved in one time window.
    Paired,
    /// Two separate runs.
    Separate,
}

/// One matched query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryRow {
    /// Query name.
    pub name: String,
    /// Baseline value of the metric, µs (from its histogram).
    pub base_us: u64,
    /// Current value of the metric, µs.
    pub current_us: u64,
    /// Baseline successful transactions.
    pub base_count: u64,
    /// Current successful transactions.
    pub current_count: u64,
    /// current / baseline of the metric with its interval.
    pub change: Option<RatioCi>,
    /// The verdict on this query.
    pub verdict: QueryVerdict,
}

/// One tenant size class of a query (paired runs of a workload with tenants).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClassRow {
    /// Query name.
    pub query: String,
    /// "big", "mid" or "small".
    pub class: String,
    /// Baseline value of the metric, µs (of the class's kept pairs).
    pub base_us: u64,
    /// Current value of the metric, µs.
    pub current_us: u64,
    /// Pairs of this class the interval rests on.
    pub pairs: usize,
    /// current / baseline of the metric with its interval.
    pub change: Option<RatioCi>,
    /// The verdict on this class: a regression fails the gate; anything
    /// else leaves the query's own verdict standing.
    pub verdict: QueryVerdict,
}

/// Whole-run throughput (separate runs only: a paired run sends every
/// transaction to both sides, so their rates are equal by construction).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Throughput {
    /// Baseline transactions per second (all queries).
    pub base_tps: f64,
    /// Current transactions per second.
    pub current_tps: f64,
    /// current / baseline with its interval.
    pub change: Option<RatioCi>,
    /// Whether the whole interval lies below 1 - threshold.
    pub dropped: bool,
}

/// A statement whose plan fingerprint differs between the two plans files.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlanChange {
    /// Query name.
    pub query: String,
    /// Tenant class ("big", "small", "all").
    pub tenant: String,
    /// Statement position in the transaction.
    pub statement: usize,
    /// Baseline fingerprint.
    pub base_fingerprint: String,
    /// Current fingerprint.
    pub current_fingerprint: String,
    /// Baseline plan shape.
    pub base_shape: String,
    /// Current plan shape.
    pub current_shape: String,
}

/// The gate's whole answer; `--format json` prints it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// Paired or separate.
    pub kind: InputKind,
    /// The baseline input.
    pub base: String,
    /// The current input (the same file for a paired run).
    pub current: String,
    /// The gated percentile ("p50", "p95", "p99").
    pub metric: String,
    /// Threshold in force (0.10 = 10%).
    pub threshold: f64,
    /// Confidence of each query's interval.
    pub level: f64,
    /// `--max-error-rate`.
    pub max_error_rate: f64,
    /// The verdict.
    pub verdict: Verdict,
    /// The process exit code it maps to.
    pub exit_code: u8,
    /// Why it failed or could not decide.
    pub reasons: Vec<String>,
    /// Queries in both inputs.
    pub queries: Vec<QueryRow>,
    /// Queries only in the current input.
    pub added: Vec<String>,
    /// Queries only in the baseline input.
    pub removed: Vec<String>,
    /// Whole-run throughput (separate runs).
    pub throughput: Option<Throughput>,
    /// SQLSTATEs the current side raised and the baseline did not.
    pub new_errors: Vec<NewError>,
    /// Whether two plans files were found and compared.
    pub plans_compared: bool,
    /// Plan changes.
    pub plan_changes: Vec<PlanChange>,
    /// Remarks (different workloads, datasets …).
    pub notes: Vec<String>,
    /// Per tenant size class of each query (paired runs with tenants).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassRow>,
}

/// Compare the inputs and decide.
pub fn compare(opts: &CompareOptions) -> Result<Comparison> {
    let base = load(&opts.base)?;
    match &opts.current {
        None => paired(opts, &base),
        Some(current_path) => {
            let current = load(current_path)?;
            separate(opts, &base, current_path, &current)
        }
    }
}

fn load(path: &Path) -> Result<Results> {
    let r: Results = crate::runfolder::read_file(path)?;
    if let Some(reason) = &r.partial {
        return Err(Error::RunFile {
            message: format!(
                "{}: a partial run ({reason}): it cannot decide",
                path.display()
            ),
            fix: "compare complete runs only".into(),
        });
    }
    Ok(r)
}

/// The metric of a side from its histogram, the source of truth in the file.
fn hist_value(path: &Path, query: &str, side: &SideStats, metric: Metric) -> Result<u64> {
    let h = crate::stats::decode(&side.histogram).map_err(|e| Error::RunFile {
        message: format!("{}: query `{query}`: {e}", path.display()),
        fix: "the results file is damaged: re-run the benchmark".into(),
    })?;
    Ok(match metric.stat() {
        crate::run::paired::Stat::Quantile(q) => h.value_at_quantile(q),
        crate::run::paired::Stat::Mean => h.mean().round() as u64,
    })
}

fn paired(opts: &CompareOptions, run: &Results) -> Result<Comparison> {
    let path = &opts.base;
    if !run.driver.paired {
        return Err(Error::Usage {
            message: format!(
                "{}: not a paired run, and no CURRENT file to compare it with",
                path.display()
            ),
            fix: "pass a run made with `run --candidate-url`, or two results files (BASE CURRENT)"
                .into(),
        });
    }
    let sequential = run.sequential.as_ref();
    let threshold = opts
        .threshold
        .or(sequential.map(|s| s.threshold))
        .unwrap_or(PAIRED_THRESHOLD);
    let mut rows = Vec::new();
    let mut classes = Vec::new();
    let mut errors = Vec::new();
    let mut level = 0.0_f64;
    for q in &run.queries {
        let Some(cand) = &q.candidate else {
            return Err(Error::RunFile {
                message: format!(
                    "{}: query `{}` has no candidate side in a paired run",
                    path.display(),
                    q.name
                ),
                fix: "the results file is damaged: re-run the benchmark".into(),
            });
        };
        let change = match &q.ratios {
            Some(r) => Some(opts.metric.of_ratios(r).ok_or_else(|| no_means(path))?),
            None => None,
        };
        if let Some(r) = &q.ratios {
            level = level.max(r.level);
        }
        let enough = q.baseline.count >= MIN_SAMPLES && cand.count >= MIN_SAMPLES;
        let judged = verdict::judge(change.as_ref(), enough, threshold);
        let gated = q.gate && sequential.is_none_or(|s| s.gated.contains(&q.name));
        classes.extend(class_rows(q, opts.metric, threshold, gated));
        rows.push(QueryRow {
            name: q.name.clone(),
            base_us: hist_value(path, &q.name, &q.baseline, opts.metric)?,
            current_us: hist_value(path, &q.name, cand, opts.metric)?,
            base_count: q.baseline.count,
            current_count: cand.count,
            change,
            verdict: if gated {
                judged
            } else {
                QueryVerdict::NotGated
            },
        });
        errors.extend(verdict::new_errors(
            &q.name,
            &q.baseline.errors,
            &cand.errors,
            cand.count,
            opts.max_error_rate,
        ));
    }
    let plans = match &opts.candidate_plans {
        Some(cand) => Some((load_plans(&folder_of(path))?, load_plans_required(cand)?)),
        None => None,
    };
    let mut notes = vec![
        "throughput is not compared: a paired run sends every transaction to both sides".into(),
    ];
    if let Some(s) = sequential {
        notes.push(format!(
            "sequential run ({} looks, stopped: {}); its intervals keep a family false-alarm \
             rate of {:.0}% over all looks: {}",
            s.looks.len(),
            s.stopped.replace('_', " "),
            s.alpha * 100.0,
            s.method
        ));
    }
    let mut comparison = finish(
        opts,
        InputKind::Paired,
        (path, path),
        (threshold, run.measured_seconds),
        level,
        rows,
        (Vec::new(), Vec::new()),
        None,
        errors,
        plans,
        notes,
    )?;
    add_classes(&mut comparison, classes, opts);
    Ok(comparison)
}

/// The tenant-class rows of paired query `q` (verdict `NotGated` for a
/// query outside the gate).
fn class_rows(q: &QueryResult, metric: Metric, threshold: f64, gated: bool) -> Vec<ClassRow> {
    q.classes
        .iter()
        .map(|c| {
            let change = c.ratios.as_ref().and_then(|r| metric.of_ratios(r));
            let pick = |l: &crate::results::ClassLatency| metric.of_class(l);
            let judged = verdict::judge(change.as_ref(), c.pairs as u64 >= MIN_SAMPLES, threshold);
            ClassRow {
                query: q.name.clone(),
                class: c.class.clone(),
                base_us: pick(&c.baseline),
                current_us: pick(&c.candidate),
                pairs: c.pairs,
                change,
                verdict: if gated {
                    judged
                } else {
                    QueryVerdict::NotGated
                },
            }
        })
        .collect()
}

/// Attach the class rows: a class regression fails the gate and is named
/// (a plan that flips for big tenants alone fails even when the whole
/// query's percentile stays inside the threshold).
fn add_classes(c: &mut Comparison, classes: Vec<ClassRow>, opts: &CompareOptions) {
    let fails: Vec<String> = classes
        .iter()
        .filter(|r| r.verdict == QueryVerdict::Regression)
        .map(|r| format!("{} [{} tenants]: {} regression", r.query, r.class, c.metric))
        .collect();
    if !fails.is_empty() {
        if c.verdict != Verdict::Fail {
            c.reasons.clear();
        }
        c.verdict = Verdict::Fail;
        c.exit_code = Verdict::Fail.exit_code_with(opts.inconclusive);
        c.reasons.extend(fails);
    }
    c.classes = classes;
}

fn separate(
    opts: &CompareOptions,
    base: &Results,
    current_path: &Path,
    current: &Results,
) -> Result<Comparison> {
    let threshold = opts.threshold.unwrap_or(SEPARATE_THRESHOLD);
    let names = |r: &Results| -> Vec<String> { r.queries.iter().map(|q| q.name.clone()).collect() };
    let (bn, cn) = (names(base), names(current));
    let (added, removed) = verdict::added_removed(
        &bn.iter().map(String::as_str).collect::<Vec<_>>(),
        &cn.iter().map(String::as_str).collect::<Vec<_>>(),
    );
    let matched: Vec<(&QueryResult, &QueryResult)> = base
        .queries
        .iter()
        .filter_map(|b| {
            current
                .queries
                .iter()
                .find(|c| c.name == b.name)
                .map(|c| (b, c))
        })
        .collect();
    let level = 1.0 - (1.0 - SEPARATE_CONFIDENCE) / matched.len().max(1) as f64;
    let (rows, errors) = separate_rows(opts, current_path, &matched, level, threshold)?;
    let throughput = separate_throughput(base, current, threshold, opts.seed);
    let notes = separate_notes(base, current, &rows, &throughput, threshold);
    let plans = match (
        load_plans(&folder_of(&opts.base))?,
        load_plans(&folder_of(current_path))?,
    ) {
        (Some(a), Some(b)) => Some((Some(a), b)),
        _ => None,
    };
    finish(
        opts,
        InputKind::Separate,
        (&opts.base, current_path),
        (
            threshold,
            base.measured_seconds.min(current.measured_seconds),
        ),
        level,
        rows,
        (added, removed),
        Some(throughput),
        errors,
        plans,
        notes,
    )
}

/// Per matched query: the ratio of its per-interval series with a seeded
/// bootstrap interval at `level`, its verdict, and the SQLSTATEs it newly raised.
fn separate_rows(
    opts: &CompareOptions,
    current_path: &Path,
    matched: &[(&QueryResult, &QueryResult)],
    level: f64,
    threshold: f64,
) -> Result<(Vec<QueryRow>, Vec<NewError>)> {
    let mut rows = Vec::new();
    let mut errors = Vec::new();
    for (qi, (b, c)) in matched.iter().enumerate() {
        if opts.metric == Metric::Mean {
            // A measured interval's mean is never 0: a 0 is a file from
            // before means were kept.
            let old = |q: &QueryResult| {
                q.baseline
                    .intervals
                    .iter()
                    .any(|i| i.count > 0 && i.mean_us == 0)
            };
            if old(b) {
                return Err(no_means(&opts.base));
            }
            if old(c) {
                return Err(no_means(current_path));
            }
        }
        let seed = crate::rng::derive(&[opts.seed, qi as u64]);
        let change = separate::percentile_ratio(
            &b.baseline.intervals,
            &c.baseline.intervals,
            opts.metric.pick(),
            level,
            seed,
        );
        let enough = b.baseline.count >= MIN_SAMPLES && c.baseline.count >= MIN_SAMPLES;
        rows.push(QueryRow {
            name: b.name.clone(),
            base_us: hist_value(&opts.base, &b.name, &b.baseline, opts.metric)?,
            current_us: hist_value(current_path, &c.name, &c.baseline, opts.metric)?,
            base_count: b.baseline.count,
            current_count: c.baseline.count,
            change,
            verdict: verdict::judge(change.as_ref(), enough, threshold),
        });
        errors.extend(verdict::new_errors(
            &b.name,
            &b.baseline.errors,
            &c.baseline.errors,
            c.baseline.count,
            opts.max_error_rate,
        ));
    }
    Ok((rows, errors))
}

/// Whole-run throughput of two separate runs, from their summed series.
fn separate_throughput(base: &Results, current: &Results, threshold: f64, seed: u64) -> Throughput {
    let series = |r: &Results| {
        let all: Vec<&[crate::results::IntervalStats]> = r
            .queries
            .iter()
            .map(|q| q.baseline.intervals.as_slice())
            .collect();
        separate::total_series(&all)
    };
    let tps = |r: &Results| r.queries.iter().map(|q| q.baseline.tps).sum::<f64>();
    let change = separate::throughput_ratio(&series(base), &series(current), 0.95, seed);
    Throughput {
        base_tps: tps(base),
        current_tps: tps(current),
        dropped: change
            .as_ref()
            .is_some_and(|c| verdict::throughput_dropped(c, threshold)),
        change,
    }
}

/// What a reader of a separate-run verdict should know: the drift caveat,
/// a shift common to most queries, and inputs that differ.
fn separate_notes(
    base: &Results,
    current: &Results,
    rows: &[QueryRow],
    throughput: &Throughput,
    threshold: f64,
) -> Vec<String> {
    let mut notes = vec![format!(
        "separate runs: the interval holds the noise within each run, not the drift between \
         runs; the default threshold is {:.0}% for that reason",
        SEPARATE_THRESHOLD * 100.0
    )];
    let ratios: Vec<f64> = rows
        .iter()
        .filter_map(|r| r.change.map(|c| c.ratio))
        .collect();
    if let Some(median) = separate::common_drift(&ratios, threshold) {
        notes.push(format!(
            "most queries moved together (median ratio {median:.2}, throughput ratio {}): \
             between separate runs that is usually the machine (another job, a noisy \
             neighbour), not a change; a paired run tells them apart",
            throughput
                .change
                .map_or_else(|| "unknown".to_string(), |c| format!("{:.2}", c.ratio))
        ));
    }
    if base.workload.hash != current.workload.hash {
        notes.push(format!(
            "the workloads differ ({} {} vs {} {})",
            base.workload.name, base.workload.hash, current.workload.name, current.workload.hash
        ));
    }
    if base.dataset != current.dataset {
        notes.push("the datasets differ (seed or scale)".into());
    }
    if base.driver.clients != current.driver.clients || base.driver.rate != current.driver.rate {
        notes.push("the load differs (clients or rate)".into());
    }
    notes
}

#[allow(clippy::too_many_arguments)]
fn finish(
    opts: &CompareOptions,
    kind: InputKind,
    (base, current): (&Path, &Path),
    (threshold, seconds): (f64, f64),
    level: f64,
    rows: Vec<QueryRow>,
    (added, removed): (Vec<String>, Vec<String>),
    throughput: Option<Throughput>,
    new_errors: Vec<NewError>,
    plans: Option<(Option<PlansFile>, PlansFile)>,
    mut notes: Vec<String>,
) -> Result<Comparison> {
    let plan_changes = match &plans {
        Some((Some(a), b)) => plan_changes(a, b),
        Some((None, _)) => {
            notes.push(format!(
                "no plans.json beside {}: plans not compared",
                base.display()
            ));
            Vec::new()
        }
        None => Vec::new(),
    };
    let plans_compared = matches!(plans, Some((Some(_), _)));
    let mut changed: Vec<&str> = plan_changes.iter().map(|p| p.query.as_str()).collect();
    changed.dedup();
    let hints: Vec<(&str, String)> = rows
        .iter()
        .filter_map(|r| {
            decide_hint(r, threshold, seconds, opts.metric).map(|h| (r.name.as_str(), h))
        })
        .collect();
    let (verdict, reasons) = verdict::decide(&verdict::Findings {
        metric: opts.metric.name(),
        queries: rows.iter().map(|r| (r.name.as_str(), r.verdict)).collect(),
        throughput_dropped: throughput.as_ref().is_some_and(|t| t.dropped),
        new_errors: &new_errors,
        plan_changes: changed,
        fail_on_plan_change: opts.fail_on_plan_change,
        hints,
    });
    Ok(Comparison {
        format_version: FORMAT_VERSION,
        kind,
        base: base.display().to_string(),
        current: current.display().to_string(),
        metric: opts.metric.name().into(),
        threshold,
        level,
        max_error_rate: opts.max_error_rate,
        verdict,
        exit_code: verdict.exit_code_with(opts.inconclusive),
        reasons,
        queries: rows,
        added,
        removed,
        throughput,
        new_errors,
        plans_compared,
        plan_changes,
        notes,
        classes: Vec::new(),
    })
}

/// The run folder a results path belongs to.
fn folder_of(path: &Path) -> PathBuf {
    if path.is_dir() {
        path.to_path_buf()
    } else {
        // A bare file name's parent is "": the current folder.
        path.parent()
            .filter(|p| !p.as_os_str().is_empty())
            .map_or_else(|| PathBuf::from("."), Path::to_path_buf)
    }
}

/// plans.json of a folder, when there is one.
fn load_plans(folder: &Path) -> Result<Option<PlansFile>> {
    RunFolder::open(folder)?.read_optional()
}

/// plans.json at `path` (a file or a folder holding one), which must exist.
fn load_plans_required(path: &Path) -> Result<PlansFile> {
    crate::runfolder::read_file(path)
}

/// Statements whose executed plan fingerprint differs, matched by query name,
/// tenant class and position. Statements without a plan on either side are skipped.
pub fn plan_changes(base: &PlansFile, current: &PlansFile) -> Vec<PlanChange> {
    let mut out = Vec::new();
    for bq in &base.queries {
        let Some(cq) = current.queries.iter().find(|c| c.name == bq.name) else {
            continue;
        };
        for bt in &bq.tenants {
            let Some(ct) = cq.tenants.iter().find(|c| c.class == bt.class) else {
                continue;
            };
            for bs in &bt.statements {
                let Some(cs) = ct.statements.iter().find(|c| c.index == bs.index) else {
                    continue;
                };
                if bs.plan.is_some() && cs.plan.is_some() && bs.fingerprint != cs.fingerprint {
                    out.push(PlanChange {
                        query: bq.name.clone(),
                        tenant: bt.class.clone(),
                        statement: bs.index,
                        base_fingerprint: bs.fingerprint.clone(),
                        current_fingerprint: cs.fingerprint.clone(),
                        base_shape: bs.shape.clone(),
                        current_shape: cs.shape.clone(),
                    });
                }
            }
        }
    }
    out
}
