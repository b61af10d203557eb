//! `crmbench demo`: the whole pipeline in one command — generate, run,
//! explain, advise --verify, report — into one run folder, each step printed
//! as the command a user would type, then the three findings worth reading
//! first. Each step calls its stage's library function, as `crmbench` does.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::advise::Advice;
use crate::cli::{EXIT_OK, err_line, out};
use crate::error::{Error, Result};
use crate::pg::{Target, TargetOptions};
use crate::results::Results;
use crate::runfolder;

/// Default scale of the demo: about 400k rows (80 MB), so generate, run,
/// explain, advise --verify and report finish in about five minutes on 2 cores.
pub const DEFAULT_SCALE: f64 = 0.02;

/// The database the demo fills unless `--database` says otherwise: never the
/// user's own `crmbench` dataset.
pub const DATABASE: &str = "crmbench_demo";

/// Warm-up of the demo's replay.
const WARMUP: Duration = Duration::from_secs(5);

/// The parameter seed `explain` and `advise` use when none is given.
const STAGE_SEED: u64 = 1;

/// Options of `crmbench demo`.
#[derive(Debug, Clone)]
pub struct DemoOptions {
    /// Dataset scale.
    pub scale: f64,
    /// Generator and replay seed.
    pub seed: u64,
    /// Measured replay, rounded down to whole seconds (at least 1).
    pub duration: Duration,
    /// Each paired verification run, rounded as `duration`.
    pub verify_duration: Duration,
    /// Run folder; `None`: `reports/<time>-demo`, linked from `reports/latest`.
    pub out: Option<PathBuf>,
    /// Who may read the run folder's files.
    pub access: runfolder::Access,
}

/// Why the demo stopped.
#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    /// A step failed: the command it stands for, and the cause.
    #[error("demo step `crmbench {step}`: {source}")]
    Step {
        /// The step's command (`generate`, `run`, …).
        step: &'static str,
        /// What went wrong.
        source: Error,
    },
    /// Before or after the steps (the run folder, reading the results back).
    #[error(transparent)]
    Other(#[from] Error),
}

/// Run the demo. Returns the exit code: that of a step that ended with a
/// non-zero one (the replay over its error rate: 1, cut short: 2; the demo
/// goes on after it), else 0.
pub async fn demo(target: &TargetOptions, opts: &DemoOptions) -> Result<u8, DemoError> {
    let mut target = target.clone();
    if target.database.is_none() && target.database_url.is_none() {
        target.database = Some(DATABASE.into());
    }
    let folder = runfolder::RunFolder::prepare(opts.out.as_deref(), "demo", opts.access)?;
    let access = opts.access;
    let folder = folder.into_path();
    let dir = folder.display().to_string();
    let (secs, verify_secs) = (
        whole_seconds(opts.duration),
        whole_seconds(opts.verify_duration),
    );
    let mut steps = Steps::new(5);
    let t = &target;
    steps
        .run(
            "generate",
            format!(
                "--scale {} --seed {} --replace --quiet --out {dir}",
                opts.scale, opts.seed
            ),
            generate_step(t, opts, &folder),
        )
        .await?;
    steps
        .run(
            "run",
            format!(
                "--fresh --duration {}s --warmup {}s --seed {} --out {dir}",
                secs.as_secs(),
                WARMUP.as_secs(),
                opts.seed
            ),
            run_step(t, opts.seed, secs, &folder, access),
        )
        .await?;
    steps
        .run(
            "explain",
            format!("--out {dir}"),
            explain_step(t, &folder, access),
        )
        .await?;
    steps
        .run(
            "advise",
            format!(
                "--verify --verify-duration {}s --out {dir}",
                verify_secs.as_secs()
            ),
            advise_step(t, &folder, verify_secs, access),
        )
        .await?;
    steps
        .run(
            "report",
            format!("--in {dir}"),
            report_step(&folder, access),
        )
        .await?;
    print_highlights(&folder)?;
    Ok(steps.code)
}

/// `--duration 2.5s` as the step line shows it and the step runs it: `2s`.
fn whole_seconds(d: Duration) -> Duration {
    Duration::from_secs(d.as_secs().max(1))
}

/// The numbered steps and the exit code so far.
struct Steps {
    done: usize,
    total: usize,
    code: u8,
}

impl Steps {
    fn new(total: usize) -> Steps {
        Steps {
            done: 0,
            total,
            code: EXIT_OK,
        }
    }

    /// Print the step's command line, then run it; a non-zero exit code is
    /// remembered and the demo goes on.
    async fn run(
        &mut self,
        command: &'static str,
        args: String,
        work: impl Future<Output = Result<u8>>,
    ) -> Result<(), DemoError> {
        self.done += 1;
        err_line(format!(
            "\ndemo [{}/{}]: crmbench {command} {args}",
            self.done, self.total
        ));
        let code = work.await.map_err(|source| DemoError::Step {
            step: command,
            source,
        })?;
        // A stop signal ends the demo after the step it came in (which kept
        // what it had, marked partial).
        if let Some(signal) = crate::signals::stopped() {
            return Err(DemoError::Step {
                step: command,
                source: Error::Interrupted {
                    during: format!(
                        "running the demo ({signal}); its run folder holds what was done"
                    ),
                },
            });
        }
        if code != EXIT_OK {
            err_line(format!(
                "demo: `crmbench {command}` exited {code}; going on"
            ));
            self.code = code;
        }
        Ok(())
    }
}

async fn generate_step(target: &TargetOptions, opts: &DemoOptions, folder: &Path) -> Result<u8> {
    let (target, _) = Target::resolve(target, true)?;
    let options = crate::generate::GenerateOptions {
        scale: opts.scale,
        seed: opts.seed,
        jobs: std::thread::available_parallelism().map_or(2, |n| n.get()),
        replace: true,
        quiet: true,
        out: Some(folder.to_path_buf()),
        access: opts.access,
    };
    let report = crate::generate::generate(&target, &options).await?;
    let path = crate::generate::write_report(&report, &options)?;
    out(crate::generate::render_summary(
        &report,
        &target.describe(),
        &path,
    ))?;
    Ok(EXIT_OK)
}

/// The replay on a fresh clone, with `crmbench run`'s defaults otherwise.
async fn run_step(
    target: &TargetOptions,
    seed: u64,
    duration: Duration,
    folder: &Path,
    access: runfolder::Access,
) -> Result<u8> {
    const CLIENTS: usize = 8;
    const MAX_ERROR_RATE: f64 = 0.01;
    let (target, _) = Target::resolve(target, true)?;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = crate::run::RunOptions {
        workload: crate::workload::BUILT_IN_PATH.into(),
        clients: CLIENTS,
        threads: cores.min(CLIENTS),
        duration,
        warmup: WARMUP,
        rate: None,
        arrivals: crate::run::driver::Arrivals::Poisson,
        seed,
        fresh: true,
        candidate_url: None,
        candidate_database: None,
        self_check: false,
        max_error_rate: MAX_ERROR_RATE,
        interval: Duration::from_secs(1),
        max_tries: 1,
        simple: false,
        pipeline: false,
        quiet: false,
        sequential: None,
        worker: None,
        start_at: None,
        trace_params: 0,
        pooler_url: None,
        replica_urls: Vec::new(),
        private_replicas: false,
    };
    let outcome = crate::run::run(&target, &options).await?;
    let path = crate::run::save_outcome(Some(folder), &outcome, access)?;
    out(crate::run::render_table(&outcome.results))?;
    out(format!("  results: {}\n", path.display()))?;
    let ending = outcome.ending(&path, MAX_ERROR_RATE, false);
    for line in &ending.stderr {
        err_line(line);
    }
    Ok(outcome.exit_code())
}

async fn explain_step(
    target: &TargetOptions,
    folder: &Path,
    access: runfolder::Access,
) -> Result<u8> {
    let (target, _) = Target::resolve(target, true)?;
    let workload = Path::new(crate::workload::BUILT_IN_PATH);
    let file = crate::explain::explain(&target, workload, STAGE_SEED).await?;
    let path = crate::explain::write_plans(Some(folder), &file, access)?;
    out(crate::explain::render_summary(&file))?;
    out(format!("  plans: {}\n", path.display()))?;
    Ok(EXIT_OK)
}

/// `crmbench advise --verify --verify-duration D --out FOLDER`, with
/// advise's defaults otherwise.
async fn advise_step(
    target: &TargetOptions,
    folder: &Path,
    verify_duration: std::time::Duration,
    access: runfolder::Access,
) -> Result<u8> {
    let (target, _) = Target::resolve(target, true)?;
    let request = crate::advise::AdviseRequest {
        workload: crate::workload::BUILT_IN_PATH.into(),
        max_indexes: 8,
        budget_mb: 1024.0,
        seed: STAGE_SEED,
        verify: true,
        no_hypopg: false,
        keep_hypopg: false,
        apply: false,
        verify_duration,
        verify_clients: 4,
        prisma_schema: None,
        out: Some(folder.to_path_buf()),
        access,
    };
    let run = crate::advise::run_advise(&target, &request, &mut |_| {}).await?;
    out(run.render())?;
    Ok(run.exit_code())
}

async fn report_step(folder: &Path, access: runfolder::Access) -> Result<u8> {
    let model = crate::report::load(folder)?;
    let run_folder = runfolder::RunFolder::open(folder)?.with_access(access);
    for path in crate::report::write(&run_folder, &model, &crate::report::Format::ALL)? {
        out(format!("  written: {}\n", path.display()))?;
    }
    Ok(EXIT_OK)
}

/// Where the report is, and the findings to read first.
fn print_highlights(folder: &Path) -> Result<()> {
    let run_folder = runfolder::RunFolder::open(folder)?;
    let results: Results = run_folder.read()?;
    let advice: Option<Advice> = run_folder.read_optional()?;
    out(format!(
        "\ncrmbench demo: done. The report: {}\n",
        folder.join("report.html").display()
    ))?;
    out("Read first:\n")?;
    for (i, line) in highlights(&results, advice.as_ref()).iter().enumerate() {
        out(format!("  {}. {line}\n", i + 1))?;
    }
    Ok(())
}

/// Up to three one-line findings, most important first: the kept index with
/// the biggest measured speedup, the row-level-security predicate that no
/// index can serve (with its remedy and measured effect), and the slowest
/// query.
pub fn highlights(results: &Results, advice: Option<&Advice>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = advice {
        let best = a
            .verified
            .iter()
            .flatten()
            .filter(|v| v.kept)
            .flat_map(|v| v.measured.iter().map(move |m| (v, m)))
            .min_by(|x, y| x.1.p50.ratio.total_cmp(&y.1.p50.ratio));
        match best {
            Some((v, m)) => out.push(format!(
                "index {} makes {} {:.1}× faster (p50 ratio {:.2}, 95% interval [{:.2}, {:.2}]); {} of {} recommended indexes kept after paired verification — migration.sql",
                v.index,
                m.query,
                1.0 / m.p50.ratio.max(1e-9),
                m.p50.ratio,
                m.p50.lo,
                m.p50.hi,
                a.kept().count(),
                a.selection.chosen.len()
            )),
            None if !a.selection.chosen.is_empty() => out.push(format!(
                "{} index(es) recommended (what-if cost {:.0} → {:.0}), none proven: run advise --verify",
                a.selection.chosen.len(),
                a.selection.base_cost,
                a.selection.final_cost
            )),
            None => {}
        }
        if let Some((query, finding)) = a.rls_findings.first() {
            let remedy = a
                .remedies
                .iter()
                .find(|r| &r.query == query)
                .and_then(|r| r.measured.as_ref().map(|m| (r, m)));
            let measured = remedy.map_or(String::new(), |(r, m)| {
                format!(
                    " Remedy measured ({}): {:.2} ms → {:.2} ms — remedies.sql",
                    r.change, m.before_p50_ms, m.after_p50_ms
                )
            });
            out.push(format!(
                "{query}: {}.{measured}",
                finding.hint.split(": ").next().unwrap_or(&finding.hint)
            ));
        }
    }
    if let Some(q) = results
        .queries
        .iter()
        .max_by_key(|q| q.baseline.latency.p95_us)
    {
        out.push(format!(
            "slowest query: {} (p95 {:.2} ms, p99 {:.2} ms over {} transactions)",
            q.name,
            q.baseline.latency.p95_us as f64 / 1e3,
            q.baseline.latency.p99_us as f64 / 1e3,
            q.baseline.count
        ));
    }
    out.truncate(3);
    out
}
