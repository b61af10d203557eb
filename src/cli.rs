//! The command line: clap definitions (the only module that imports clap) and
//! dispatch to the library's stages. `--help` on every command is the manual.

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

use crate::error::{Error, Result};
use crate::pg::private::{self, PrivateOptions, PrivateServer, StartOutcome};
use crate::pg::{self, Target, TargetOptions, roles, settings};
use crate::schema;
use crate::workload::context::WorkloadContext;

/// Exit code of a successful command.
pub const EXIT_OK: u8 = 0;
/// Exit code of a run whose results break a limit (error rate, self-check).
pub const EXIT_FAILED: u8 = 1;
/// Exit code of any error (bad input, unreachable server, refused action).
pub const EXIT_ERROR: u8 = 2;

/// crmbench: a query performance advisor and benchmark harness for PostgreSQL,
/// around a multi-tenant jewellery CRM under row-level security.
///
/// By default every command works on crmbench's private PostgreSQL server,
/// started on demand from the local server binaries in a folder crmbench owns
/// (default /var/tmp/crmbench-$UID), on its own port and socket. Pass
/// --database-url (or DATABASE_URL) to work on any existing server instead;
/// crmbench never starts or stops that one, and changes nothing there beyond its
/// own schema `crm` without --allow-ddl.
///
/// Exit codes: 0 success, 2 any error (the message names the cause and the fix);
/// `run` and `compare` also exit 1 when results fail a limit or the gate.
#[derive(Debug, Parser)]
#[command(name = "crmbench", version, max_term_width = 100)]
pub struct Cli {
    #[command(flatten)]
    target: TargetArgs,

    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    verbose: u8,

    #[command(subcommand)]
    command: Command,
}

/// Where to work: shared by every command.
#[derive(Debug, Args)]
struct TargetArgs {
    /// Work on an existing server instead of the private one, e.g.
    /// postgresql://user:password@host:5432/dbname. Its password is never printed.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    database_url: Option<String>,

    /// Allow changes beyond crmbench's own schema on a --database-url server:
    /// creating roles and extensions, building indexes, cloning databases.
    #[arg(long, global = true)]
    allow_ddl: bool,

    /// Folder with the PostgreSQL server binaries (initdb, pg_ctl, postgres).
    /// Default: `pg_config --bindir`, then PATH, then the newest
    /// /usr/lib/postgresql/*/bin (preferring one with HypoPG installed).
    #[arg(long, env = "CRMBENCH_PG_BINDIR", global = true)]
    pg_bindir: Option<PathBuf>,

    /// The private server's folder (cluster.json, data/, run/, server.log).
    /// Must be reachable by the server's user: as root the server runs as
    /// `postgres`, who cannot enter /root or a 0700 checkout.
    /// [default: /var/tmp/crmbench-$UID]
    #[arg(long, env = "CRMBENCH_DATA_DIR", global = true)]
    data_dir: Option<PathBuf>,

    /// Port for a new private server (default: the first free one from 54329).
    #[arg(long, env = "CRMBENCH_PG_PORT", global = true)]
    pg_port: Option<u16>,

    /// Work on this database (e.g. a clone made by `schema clone`) instead of
    /// `crmbench` on the private server or the URL's database.
    #[arg(long, env = "CRMBENCH_DATABASE", global = true)]
    database: Option<String>,
}

impl TargetArgs {
    fn options(&self) -> TargetOptions {
        TargetOptions {
            database_url: self.database_url.clone(),
            allow_ddl: self.allow_ddl,
            private: PrivateOptions {
                base_dir: self.data_dir.clone(),
                bindir: self.pg_bindir.clone(),
                port: self.pg_port,
                shared_buffers: None,
            },
            database: self.database.clone(),
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Manage the private PostgreSQL server.
    #[command(subcommand)]
    Pg(PgCommand),
    /// Create, drop, inspect or clone the CRM schema.
    #[command(subcommand)]
    Schema(SchemaCommand),
    /// Fill the CRM schema with a realistic, skewed, deterministic dataset.
    ///
    /// Creates the schema when missing, loads every table with binary COPY
    /// FREEZE on --jobs connections, then builds keys, indexes, foreign keys and
    /// row-level security, advances the id sequences and runs ANALYZE. The same
    /// --seed and --scale give identical table contents whatever --jobs is.
    ///
    /// Sizes per scale unit (scale 1): ~1,000 tenants, 1M customers, 2M orders,
    /// 5M order items, 2.1M payments, 3M interactions, 300k deals with ~1M
    /// stage changes, 5M audit rows, 100k products with 300k variants and their
    /// stock per store; about 4.2 GB landing (tables + indexes) per scale unit.
    /// Tenant sizes follow a Zipf law; every scale has at least 20 tenants.
    ///
    /// The dataset is marked complete only at the very end: an interrupted load
    /// (Ctrl-C, killed backend, full disk) leaves it marked incomplete and the
    /// next `generate` says so. Writes generate.json into the run folder.
    Generate(GenerateArgs),
    /// Replay a workload and record every query's latency in HDR histograms.
    ///
    /// Each client owns a connection (two in a paired run) and sends
    /// transactions framed as an app does it: BEGIN, set_config(tenant
    /// setting, tenant, true), the statements, COMMIT, pipelined. Results
    /// record each transaction's latency (BEGIN sent to COMMIT's reply) and
    /// each statement's own latency (from the previous reply to its reply).
    /// Closed loop by default; --rate R for open loop, where latency counts
    /// from each transaction's intended start (a stalled server shows in the
    /// tail). With --candidate-url every transaction also goes, with the same
    /// parameters, to the candidate database, in random order, and results hold
    /// candidate/baseline ratios of p50/p95/p99 with bootstrap intervals.
    ///
    /// Writes results.json into the run folder, also when the run ends early
    /// (marked partial). Exit codes: 0 done, 1 a query's error rate exceeded
    /// --max-error-rate or the --self-check failed, 2 an error.
    Run(RunArgs),
    /// Capture executed plans of every query, with findings, into plans.json.
    ///
    /// Every query's executed plan, for a big and a small tenant, as
    /// the workload's role with the tenant set (row-level security in force),
    /// in transactions that are rolled back; print findings and write
    /// plans.json (plan trees, fingerprints, findings) into the run folder.
    Explain(ExplainArgs),
    /// Recommend indexes for the whole workload, proven with paired runs (--verify).
    ///
    /// Candidates are read from
    /// the run folder's plans.json (captured first when missing), costed with
    /// HypoPG what-if plans as the workload's role with the tenant set (row-level
    /// security in force), chosen greedily by benefit per byte under
    /// --max-indexes and --budget-mb with write costs. With --verify each
    /// index is then applied cumulatively on clones and measured with paired
    /// runs; only indexes that make a query they were chosen for ≥10% faster
    /// (whole interval) without slowing any query >10% are kept. The database
    /// itself is never changed. Writes advice.json, migration.sql (kept
    /// indexes), rollback.sql, remedies.sql and prisma/.
    Advise(AdviseArgs),
    /// Write a tuning report (HTML, Markdown, JSON) from a run folder's files.
    ///
    /// Never opens a database.
    ///
    /// report.html is self-contained (inline CSS and SVG plots, nothing
    /// loaded from the network) and prints well; report.md holds the same in
    /// Markdown, with the plots as SVG files in report-files/ beside it;
    /// report.json is the summary, with a format_version. Exit codes: 0
    /// written, 2 an error (no or unreadable results.json, an unknown
    /// format_version: the message names the file).
    ///
    /// Reads results.json (required), and plans.json, advice.json,
    /// migration.sql, rollback.sql and prisma/ when present; a missing one
    /// makes its section say "not captured". Sections: environment (server,
    /// settings in force, with a warning when fsync was off; scale, seed,
    /// workload), a summary per query (count, tps, p50/p95/p99/p99.9/max,
    /// errors), each query's latency by percentile (log axes), throughput and
    /// p99 over time, plan findings (row-level security ones with their
    /// remedies), recommended indexes with predicted and measured effect (a
    /// before/after plot per verified index with the paired ratio and its
    /// interval), migration and rollback SQL, Prisma lines, and drop advice.
    Report(ReportArgs),
    /// Everything end to end: dataset, replay, plans, advice, report.
    ///
    /// Starts the private PostgreSQL
    /// (when the server binaries are missing, the error says what to
    /// install), generate the CRM dataset into its own database
    /// `crmbench_demo` (never your `crmbench` one; --database picks another),
    /// replay the built-in workload on a fresh clone, capture plans, advise
    /// with --verify, write the reports, then print where report.html is and
    /// the three findings to read first.
    ///
    /// Each step is the command you would type, printed before it runs, all
    /// into one run folder (--out, default reports/<time>-demo, linked from
    /// reports/latest). About 5 minutes on 2 cores at the default scale.
    /// Exit codes: 0 done, 1 the replay's error rate exceeded its limit, 2 an
    /// error (the step is named).
    Demo(DemoArgs),
    /// The CI regression gate: a verdict from run files, exit 0/1/2.
    ///
    /// Compares a paired run, or two separate runs, and
    /// exits 0 (pass), 1 (regression) or 2 (error or undecidable input). Reads
    /// files only; never opens a database.
    ///
    /// `compare PAIRED` — one run made with `run --candidate-url` (the
    /// recommended gate): per query, the candidate/baseline p95 ratio with the
    /// interval the run computed from pairs measured in the same time window.
    /// Default threshold 10%.
    ///
    /// `compare BASE CURRENT` — two separate runs (history: yesterday's file
    /// against today's): per query, the ratio of the per-interval p95 series
    /// with a seeded block-bootstrap interval, and whole-run throughput. Drift
    /// between separate runs is not in that interval (identical runs differed
    /// by up to 3.5× on a shared 2-core machine while another build ran), so the
    /// default threshold is 25%, the output says the verdict is from separate
    /// runs, and separate runs are history rather than a gate.
    ///
    /// A query regresses only when the whole interval of its ratio (p95, or
    /// --metric) lies beyond the threshold.
    /// Inputs are results.json files or run folders holding one. Queries are
    /// matched by name; added and removed ones are listed. When both sides have
    /// plans.json (for a paired run: the run folder's and --candidate-plans),
    /// plans whose fingerprints differ are listed with both shapes.
    ///
    /// Prints Markdown (or JSON with --format json) and appends the Markdown to
    /// the file named by $GITHUB_STEP_SUMMARY when it is set.
    ///
    /// Exit codes: 0 pass (identical input always passes); 1 a latency regression,
    /// a throughput drop beyond the threshold, a new SQLSTATE above
    /// --max-error-rate, or a plan change with --fail-on-plan-change; 2 an error
    /// or undecidable input (unreadable or malformed file, unknown
    /// format_version, a partial run, a query with fewer than 20 transactions a
    /// side or no interval). A definite failure (1) wins over an undecidable
    /// query.
    Compare(CompareArgs),
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Dataset scale (0.02: 20 tenants, ~400k rows, ~80 MB).
    #[arg(long, default_value_t = crate::demo::DEFAULT_SCALE)]
    scale: f64,
    /// Generator and parameter seed.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Length of the measured replay.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    duration: std::time::Duration,
    /// Length of each paired verification run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    verify_duration: std::time::Duration,
    /// Run folder [default: reports/<time>-demo, linked from reports/latest].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ReportArgs {
    /// Run folder to read and write into.
    #[arg(long = "in", value_name = "DIR", default_value = "reports/latest")]
    input: PathBuf,
    /// Formats to write, comma-separated: md, html, json.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "md,html,json",
        value_delimiter = ','
    )]
    format: Vec<String>,
}

#[derive(Debug, Args)]
struct CompareArgs {
    /// Baseline: results.json or a run folder; alone, a paired run.
    base: PathBuf,
    /// Current: results.json or a run folder of a separate run.
    current: Option<PathBuf>,
    /// Largest p95 increase that passes, e.g. 10% or 0.1 [default: 10% paired,
    /// 25% separate runs]. Also the throughput drop that fails separate runs.
    #[arg(long, value_parser = parse_fraction)]
    threshold: Option<f64>,
    /// The percentile gated: p95, or p50 (the typical transaction: much
    /// narrower intervals where the tail is mostly other queries' interference),
    /// or p99 (needs long runs).
    #[arg(long, default_value = "p95", value_parser = ["p50", "p95", "p99"])]
    metric: String,
    /// md (Markdown) or json.
    #[arg(long, default_value = "md", value_parser = ["md", "json"])]
    format: String,
    /// Fail (exit 1) when a plan fingerprint changed.
    #[arg(long)]
    fail_on_plan_change: bool,
    /// Highest share of a query's transactions a SQLSTATE the baseline never
    /// raised may take, e.g. 1% or 0.01.
    #[arg(long, default_value = "1%", value_parser = parse_fraction)]
    max_error_rate: f64,
    /// The candidate's plans.json (or its folder, e.g. from
    /// `crmbench --database CLONE explain --out DIR`), compared with the paired
    /// run folder's plans.json.
    #[arg(long)]
    candidate_plans: Option<PathBuf>,
    /// Seed of the separate-run bootstrap (the same seed gives the same verdict).
    #[arg(long, default_value_t = 1)]
    seed: u64,
}

#[derive(Debug, Args)]
struct AdviseArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    workload: PathBuf,
    /// Most indexes to recommend.
    #[arg(long, default_value_t = 8)]
    max_indexes: usize,
    /// Storage budget for the new indexes, MB.
    #[arg(long, default_value_t = 1024.0)]
    budget_mb: f64,
    /// Seed of the sample parameters.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Prove each index with paired before/after runs on clones.
    #[arg(long)]
    verify: bool,
    /// Cost candidates with real indexes built on a clone instead of HypoPG
    /// (also the fallback when HypoPG is not installed; slower).
    #[arg(long)]
    no_hypopg: bool,
    /// Build the kept indexes (all recommended ones without --verify) on the
    /// database, CONCURRENTLY. Needs --allow-ddl on a --database-url server.
    #[arg(long)]
    apply: bool,
    /// Length of each paired verification run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    verify_duration: std::time::Duration,
    /// Clients per side in verification runs.
    #[arg(long, default_value_t = 4)]
    verify_clients: usize,
    /// Your schema.prisma: the @@index lines use its model and field names
    /// (@@map/@map) instead of Prisma's naming conventions.
    #[arg(long, value_name = "FILE")]
    prisma_schema: Option<PathBuf>,
    /// Run folder to read plans.json from and write into [default: reports/latest, else a new one].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct ExplainArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    workload: PathBuf,
    /// Seed of the parameter values.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run folder [default: reports/latest when it exists, else a new one].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    workload: PathBuf,
    /// Connections (per side).
    #[arg(long, default_value_t = 8)]
    clients: usize,
    /// Driver threads, each with its own runtime [default: min(cores, clients)].
    #[arg(long)]
    threads: Option<usize>,
    /// Measured time, e.g. 60s, 2m, 500ms.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    duration: std::time::Duration,
    /// Warm-up before measuring (not recorded).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    warmup: std::time::Duration,
    /// Open loop: transactions per second over all clients.
    #[arg(long)]
    rate: Option<f64>,
    /// Open-loop arrivals: poisson or uniform.
    #[arg(long, default_value = "poisson")]
    arrivals: String,
    /// Seed of every parameter stream.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Run on a fresh clone of the dataset, dropped afterwards (writes change data).
    #[arg(long)]
    fresh: bool,
    /// Paired run: the candidate database, e.g. a clone with a change applied.
    #[arg(long)]
    candidate_url: Option<String>,
    /// A/A self-check: a paired run against the baseline itself; fails (exit 1)
    /// unless every query's simultaneous intervals contain 1.00.
    #[arg(long)]
    self_check: bool,
    /// Highest share of failed transactions per query, e.g. 1% or 0.01.
    #[arg(long, default_value = "1%", value_parser = parse_fraction)]
    max_error_rate: f64,
    /// Period of the per-interval series and progress lines.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    interval: std::time::Duration,
    /// Tries per transaction on serialization failure or deadlock (1: no retry).
    #[arg(long, default_value_t = 1)]
    max_tries: u32,
    /// Validate the workload against the server and stop.
    #[arg(long)]
    check: bool,
    /// prepared (extended protocol, statements prepared once per connection;
    /// a tenant-framed transaction is pipelined) or simple (each transaction
    /// sent as one text message with literals: one round trip). Poolers in
    /// transaction mode (pgbouncer) break prepared statements: use simple there.
    #[arg(long, default_value = "prepared")]
    protocol: String,
    /// Run folder [default: reports/<timestamp>-run].
    #[arg(long)]
    out: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short)]
    quiet: bool,
}

/// "60s", "2m", "500ms", "1h", or plain seconds.
fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in `{text}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// "1%", "0.5%" or "0.01".
fn parse_fraction(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a rate (e.g. 1% or 0.01)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(v)
}

#[derive(Debug, Args)]
struct GenerateArgs {
    /// Dataset size: 1 ≈ 1M customers (≈4.2 GB); 0.01 ≈ 10k customers (≈42 MB).
    #[arg(long, default_value_t = 0.01)]
    scale: f64,
    /// Seed of every random stream: the same seed and scale give the same rows.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Parallel loader connections [default: number of cores].
    #[arg(long)]
    jobs: Option<usize>,
    /// Replace an existing crmbench dataset (never anything crmbench did not create).
    #[arg(long)]
    replace: bool,
    /// No progress output.
    #[arg(long, short)]
    quiet: bool,
    /// Run folder for generate.json [default: reports/<timestamp>-generate].
    #[arg(long)]
    out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
enum PgCommand {
    /// Start the private server, initialising it on first use. Idempotent: a
    /// running server is reused. Creates the roles and the `crmbench` database.
    Start,
    /// Stop the private server crmbench started (never any other server).
    Stop,
    /// Say whether the private server runs, where, and which settings are in force.
    Status,
    /// Print a connection URL that psql accepts, e.g. psql "$(crmbench pg url)".
    Url {
        /// The application role's URL (row-level security applies) instead of
        /// the superuser's.
        #[arg(long)]
        app: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SchemaCommand {
    /// Create the CRM schema `crm`: tables, keys, baseline indexes, forced
    /// row-level security, the roles crmbench_owner and crmbench_app, and the
    /// HypoPG / pg_stat_statements extensions when available.
    Create {
        /// Drop and recreate the schema if crmbench created it (data is lost).
        #[arg(long)]
        replace: bool,
    },
    /// Drop the CRM schema, only if it carries crmbench's marker.
    Drop,
    /// Print tables, row counts, sizes, indexes and row-level security state.
    Show {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Copy the benchmark database (data, indexes, statistics) to a new
    /// database with CREATE DATABASE … TEMPLATE … STRATEGY FILE_COPY. Nobody may
    /// be connected to the source while it is copied.
    Clone {
        /// Name of the new database.
        #[arg(long)]
        to: String,
        /// Recreate it if it exists (only if crmbench created it).
        #[arg(long)]
        replace: bool,
    },
    /// Drop a database made by `schema clone` (never one crmbench did not create).
    DropClone {
        /// Name of the clone.
        name: String,
    },
    /// Print a content checksum (rows and md5) of every CRM table: equal
    /// checksums mean equal data, whatever the physical row order.
    Checksum {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
}

/// Parse arguments, run the command, print any error, return the exit code.
pub fn run<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_ERROR } else { EXIT_OK });
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(EXIT_ERROR);
        }
    };
    match runtime.block_on(dispatch(cli)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn report_error(e: &anyhow::Error) {
    let mut line = format!("error: {e:#}");
    if let Some(lib) = e.downcast_ref::<Error>() {
        if let Some(fix) = lib.fix() {
            line.push_str(&format!(" — fix: {fix}"));
        }
        eprintln!("{line}");
        if let Some(details) = lib.details() {
            for l in details.lines() {
                eprintln!("    {l}");
            }
        }
    } else {
        eprintln!("{line}");
    }
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "crmbench=debug,info",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

async fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    execute(cli.command, &cli.target.options()).await
}

async fn execute(command: Command, opts: &TargetOptions) -> anyhow::Result<u8> {
    let opts = opts.clone();
    match command {
        Command::Demo(args) => return demo_command(args, &opts).await,
        Command::Pg(cmd) => pg_command(cmd, &opts).await?,
        Command::Schema(cmd) => schema_command(cmd, &opts).await?,
        Command::Generate(args) => generate_command(args, &opts).await?,
        Command::Run(args) => return Ok(run_command(args, &opts).await?),
        Command::Explain(args) => explain_command(args, &opts).await?,
        Command::Advise(args) => advise_command(args, &opts).await?,
        Command::Report(args) => report_command(&args)?,
        Command::Compare(args) => return Ok(compare_command(args)?),
    }
    Ok(EXIT_OK)
}

fn refuse_external(opts: &TargetOptions, what: &str) -> Result<()> {
    if opts.database_url.is_some() {
        return Err(Error::Usage {
            message: format!(
                "`crmbench pg {what}` manages the private server only; crmbench never starts, \
                 stops or describes a server given by --database-url / DATABASE_URL"
            ),
            fix: "unset DATABASE_URL or drop --database-url for this command".into(),
        });
    }
    Ok(())
}

async fn pg_command(cmd: PgCommand, opts: &TargetOptions) -> Result<()> {
    match cmd {
        PgCommand::Start => {
            refuse_external(opts, "start")?;
            let (target, outcome) = Target::resolve(opts, true)?;
            pg::bootstrap_private(&target).await?;
            let Target::Private { server, database } = &target else {
                return Ok(());
            };
            let verb = match outcome {
                Some(StartOutcome::Initialised) => "initialised and started",
                Some(StartOutcome::Started) => "started",
                _ => "already running; reused",
            };
            println!(
                "crmbench: private PostgreSQL {} {verb} on port {} (data: {})",
                server.state().binaries.major,
                server.port(),
                server.base_dir().display()
            );
            println!("  connect:   psql \"$(crmbench pg url)\"");
            println!("  admin URL: {}", server.url(private::SUPERUSER, database));
            println!("  app URL:   {}", server.url(roles::APP, database));
            println!("  stop:      crmbench pg stop");
        }
        PgCommand::Stop => {
            refuse_external(opts, "stop")?;
            match PrivateServer::open(&opts.private)? {
                None => println!("crmbench: no private server here; nothing to stop"),
                Some(server) => {
                    if server.stop()? {
                        println!("crmbench: private server on port {} stopped", server.port());
                    } else {
                        println!(
                            "crmbench: private server on port {} was not running",
                            server.port()
                        );
                    }
                }
            }
        }
        PgCommand::Status => {
            refuse_external(opts, "status")?;
            status(opts).await?;
        }
        PgCommand::Url { app } => {
            refuse_external(opts, "url")?;
            let (target, _) = Target::resolve(opts, false)?;
            if let Target::Private { server, database } = &target {
                let user = if app { roles::APP } else { private::SUPERUSER };
                println!("{}", server.url(user, database));
            }
        }
    }
    Ok(())
}

async fn status(opts: &TargetOptions) -> Result<()> {
    let Some(server) = PrivateServer::open(&opts.private)? else {
        let base = opts
            .private
            .base_dir
            .clone()
            .unwrap_or_else(private::default_base_dir);
        println!("private server: not created (folder {})", base.display());
        println!("  start it with: crmbench pg start");
        return Ok(());
    };
    let running = server.is_running()?;
    println!(
        "private server: {}",
        if running { "running" } else { "stopped" }
    );
    println!(
        "  PostgreSQL:  {} ({})",
        server.state().binaries.major,
        server.state().binaries.bindir.display()
    );
    println!("  port:        {}", server.port());
    println!("  socket dir:  {}", server.socket_dir().display());
    println!("  data dir:    {}", server.data_dir().display());
    println!("  log:         {}", server.log_path().display());
    if let Some(user) = &server.state().server_user {
        println!("  runs as:     OS user {user}");
    }
    println!(
        "  admin URL:   {}",
        server.url(private::SUPERUSER, private::DATABASE)
    );
    if running {
        let target = Target::private(server);
        let client = pg::connect(&target.admin_to("postgres")).await?;
        println!("  settings in force:");
        for name in settings::REPORTED {
            let row = client
                .query_opt(
                    "SELECT setting, coalesce(unit, '') FROM pg_settings WHERE name = $1",
                    &[name],
                )
                .await
                .map_err(|e| Error::from_pg("reading pg_settings", e))?;
            if let Some(row) = row {
                let (value, unit): (String, String) = (row.get(0), row.get(1));
                let shown = settings::with_unit(&value, &unit);
                println!("    {name:<32} {shown}");
            }
        }
    }
    Ok(())
}

async fn schema_command(cmd: SchemaCommand, opts: &TargetOptions) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    match cmd {
        SchemaCommand::Create { replace } => {
            let report = schema::create(&target, &schema::CreateOptions { replace }).await?;
            println!(
                "crmbench: CRM schema {} in database {} on {}: {} tables, row-level security forced",
                if report.replaced {
                    "recreated"
                } else {
                    "created"
                },
                target.database(),
                target.describe(),
                report.tables
            );
            for ext in &report.extensions {
                println!("  extension {:<20} {}", ext.name, ext.note);
            }
        }
        SchemaCommand::Drop => match schema::drop(&target).await? {
            schema::DropOutcome::Dropped => {
                println!(
                    "crmbench: schema crm dropped from database {}",
                    target.database()
                )
            }
            schema::DropOutcome::Absent => {
                println!(
                    "crmbench: database {} has no schema crm; nothing dropped",
                    target.database()
                )
            }
        },
        SchemaCommand::Clone { to, replace } => {
            let r = schema::clone::clone_database(&target, &to, replace).await?;
            println!(
                "crmbench: database {} cloned to {} ({:.0} MB in {:.1} s); use it with --database {}",
                r.from,
                r.to,
                r.bytes as f64 / 1e6,
                r.seconds,
                r.to
            );
        }
        SchemaCommand::DropClone { name } => {
            if schema::clone::drop_database(&target, &name).await? {
                println!("crmbench: database {name} dropped");
            } else {
                println!("crmbench: no database {name}; nothing dropped");
            }
        }
        SchemaCommand::Checksum { json } => {
            let client = pg::connect(&target.admin()).await?;
            let sums = crate::generate::checksum::checksums(&client).await?;
            if json {
                println!("{}", to_json(&sums)?);
            } else {
                for (table, c) in &sums {
                    println!("{table:<20} {:>10} {}", c.rows, c.md5);
                }
            }
        }
        SchemaCommand::Show { json } => {
            let report = schema::show::show(&target).await?;
            if json {
                println!("{}", to_json(&report)?);
            } else {
                print!("{}", report.render());
            }
        }
    }
    Ok(())
}

fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Usage {
        message: format!("serializing output: {e}"),
        fix: String::new(),
    })
}

async fn generate_command(args: GenerateArgs, opts: &TargetOptions) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    let jobs = args
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
    let options = crate::generate::GenerateOptions {
        scale: args.scale,
        seed: args.seed,
        jobs,
        replace: args.replace,
        quiet: args.quiet,
        out: args.out.clone(),
    };
    let report = crate::generate::generate(&target, &options).await?;
    let folder = crate::runfolder::prepare(args.out.as_deref(), "generate")?;
    let path = crate::runfolder::write_json(&folder, "generate.json", &report)?;
    if !args.quiet {
        println!(
            "{:<20} {:>10} {:>10} {:>8} {:>8}",
            "table", "rows", "MB", "load s", "index s"
        );
        for t in &report.tables {
            println!(
                "{:<20} {:>10} {:>10.1} {:>8.2} {:>8.2}",
                t.table,
                t.rows,
                t.bytes as f64 / 1e6,
                t.load_seconds,
                t.index_seconds
            );
        }
    }
    println!(
        "crmbench: generated seed {} scale {} on {}: {} tenants, {} rows, {:.0} MB in {:.1} s \
         ({:.0} rows/s, {:.1} MB/s; load+indexes {:.1} s, foreign keys+RLS {:.1} s)",
        report.seed,
        report.scale,
        target.describe(),
        report.tenants,
        report.total_rows,
        report.total_bytes as f64 / 1e6,
        report.total_seconds,
        report.rows_per_second,
        report.mb_per_second,
        report.load_seconds,
        report.build_seconds
    );
    println!("  report: {}", path.display());
    Ok(())
}

async fn run_command(args: RunArgs, opts: &TargetOptions) -> Result<u8> {
    let (target, _) = Target::resolve(opts, true)?;
    if args.check {
        let ctx = WorkloadContext::prepare(&target, &args.workload).await?;
        println!(
            "crmbench: {} is valid: {} queries prepared on {} as {}",
            args.workload.display(),
            ctx.workload().queries.len(),
            target.describe(),
            ctx.workload()
                .context
                .role
                .as_deref()
                .unwrap_or("the connecting user")
        );
        return Ok(EXIT_OK);
    }
    let arrivals = match args.arrivals.as_str() {
        "poisson" => crate::run::driver::Arrivals::Poisson,
        "uniform" => crate::run::driver::Arrivals::Uniform,
        other => {
            return Err(Error::Usage {
                message: format!("--arrivals {other} is not known"),
                fix: "use poisson or uniform".into(),
            });
        }
    };
    if args.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(Error::Usage {
            message: "--rate must be a positive number of transactions per second".into(),
            fix: "omit --rate for closed loop".into(),
        });
    }
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let options = crate::run::RunOptions {
        workload: args.workload.clone(),
        clients: args.clients,
        threads: args.threads.unwrap_or(cores).min(args.clients.max(1)),
        duration: args.duration,
        warmup: args.warmup,
        rate: args.rate,
        arrivals,
        seed: args.seed,
        fresh: args.fresh,
        candidate_url: args.candidate_url.clone(),
        candidate_database: None,
        self_check: args.self_check,
        max_error_rate: args.max_error_rate,
        interval: args.interval.max(std::time::Duration::from_millis(100)),
        max_tries: args.max_tries,
        simple: match args.protocol.as_str() {
            "prepared" => false,
            "simple" => true,
            other => {
                return Err(Error::Usage {
                    message: format!("--protocol {other} is not known"),
                    fix: "use prepared or simple".into(),
                });
            }
        },
        quiet: args.quiet,
    };
    let outcome = crate::run::run(&target, &options).await?;
    let path = crate::run::write_outcome(args.out.as_deref(), &outcome)?;
    print!("{}", crate::run::render_table(&outcome.results));
    println!("  results: {}", path.display());
    if let Some(reason) = &outcome.results.partial {
        eprintln!(
            "error: the run ended early ({reason}); the results gathered so far are in {}",
            path.display()
        );
        return Ok(outcome.exit_code());
    }
    if !outcome.error_rate_exceeded.is_empty() {
        eprintln!(
            "crmbench: {} quer{} failed more often than --max-error-rate {:.2}%:",
            outcome.error_rate_exceeded.len(),
            if outcome.error_rate_exceeded.len() == 1 {
                "y"
            } else {
                "ies"
            },
            args.max_error_rate * 100.0
        );
        for line in &outcome.error_rate_exceeded {
            eprintln!("  {line}");
        }
    }
    if args.self_check {
        if outcome.self_check_failed.is_empty() {
            println!("crmbench: A/A self-check passed: every interval contains 1.00");
        } else {
            eprintln!("crmbench: A/A self-check FAILED:");
            for line in &outcome.self_check_failed {
                eprintln!("  {line}");
            }
        }
    }
    Ok(outcome.exit_code())
}

async fn explain_command(args: ExplainArgs, opts: &TargetOptions) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    let file = crate::explain::explain(&target, &args.workload, args.seed).await?;
    let path = crate::explain::write_plans(args.out.as_deref(), &file)?;
    print!("{}", crate::explain::render_summary(&file));
    println!("  plans: {}", path.display());
    Ok(())
}

async fn advise_command(args: AdviseArgs, opts: &TargetOptions) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    // Read first: a wrong path should fail before minutes of costing.
    let prisma_names = match &args.prisma_schema {
        Some(path) => crate::advise::prisma::Names::parse(
            &std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?,
        ),
        None => crate::advise::prisma::Names::default(),
    };
    let latest = PathBuf::from(crate::runfolder::REPORTS).join("latest");
    let out = args
        .out
        .clone()
        .or_else(|| latest.is_dir().then_some(latest));
    let folder = crate::runfolder::prepare(out.as_deref(), "advise")?;
    let plans_path = folder.join("plans.json");
    let captured = crate::report::load_optional(
        &plans_path,
        crate::explain::FORMAT_VERSION,
        "crmbench explain",
    )?;
    let plans: crate::explain::PlansFile = if let Some(plans) = captured {
        plans
    } else {
        eprintln!(
            "advise: no plans.json in {}: capturing plans first",
            folder.display()
        );
        let plans = crate::explain::explain(&target, &args.workload, args.seed).await?;
        crate::runfolder::write_json(&folder, "plans.json", &plans)?;
        plans
    };
    let options = crate::advise::AdviseOptions {
        max_indexes: args.max_indexes,
        budget_mb: args.budget_mb,
        seed: args.seed,
        no_hypopg: args.no_hypopg,
    };
    let results = folder
        .join("results.json")
        .exists()
        .then(|| crate::results::Results::load(&folder))
        .transpose()?;
    let schema = crate::advise::workload_schema(&plans);
    let catalog_before =
        crate::advise::index_catalog(&crate::pg::connect(&target.admin()).await?, &schema).await?;
    let mut advice =
        crate::advise::advise(&target, &args.workload, &plans, results.as_ref(), &options).await?;
    if args.verify && !advice.selection.chosen.is_empty() {
        eprintln!(
            "advise: verifying {} index(es) with paired runs of {:?} each on clones",
            advice.selection.chosen.len(),
            args.verify_duration
        );
        let verified = crate::advise::verify::verify(
            &target,
            &advice.selection.chosen,
            advice.selection.base_cost,
            &crate::advise::verify::VerifyOptions {
                workload: args.workload.clone(),
                duration: args.verify_duration,
                clients: args.verify_clients.max(1),
                seed: args.seed,
                schema: advice.schema.clone(),
            },
        )
        .await?;
        advice.verified = Some(verified);
    }
    if args.verify && !advice.remedies.is_empty() {
        eprintln!(
            "advise: measuring {} remed{} for non-leakproof predicates on a clone",
            advice.remedies.len(),
            if advice.remedies.len() == 1 {
                "y"
            } else {
                "ies"
            }
        );
        crate::advise::remedy_measure::measure(
            &target,
            &args.workload,
            &mut advice.remedies,
            args.seed,
        )
        .await?;
    }
    crate::runfolder::write_json(&folder, "advice.json", &advice)?;
    // Prisma users: @@index lines and one migration folder per index.
    let kept_defs: Vec<crate::advise::candidates::IndexDef> =
        advice.kept().map(|c| c.def.clone()).collect();
    let prisma_dir = folder.join("prisma");
    let _ = std::fs::remove_dir_all(&prisma_dir);
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    for (dir, sql) in
        crate::advise::prisma::migrations(&kept_defs, &advice.schema, &stamp, &advice.partitioned)
    {
        let d = prisma_dir.join("migrations").join(dir);
        std::fs::create_dir_all(&d).map_err(|e| Error::io("creating", &d, e))?;
        std::fs::write(d.join("migration.sql"), sql).map_err(|e| Error::io("writing", &d, e))?;
    }
    std::fs::create_dir_all(&prisma_dir).map_err(|e| Error::io("creating", &prisma_dir, e))?;
    let lines = prisma_dir.join("indexes.prisma");
    std::fs::write(
        &lines,
        crate::advise::prisma::schema_lines(&kept_defs, &prisma_names),
    )
    .map_err(|e| Error::io("writing", &lines, e))?;
    if let Some(given) = &args.prisma_schema {
        // The user's schema with the lines in place, to diff or copy over.
        let text = std::fs::read_to_string(given).map_err(|e| Error::io("reading", given, e))?;
        let patched = prisma_dir.join("schema.prisma");
        std::fs::write(
            &patched,
            crate::advise::prisma::add_to_schema(&text, &kept_defs, &prisma_names),
        )
        .map_err(|e| Error::io("writing", &patched, e))?;
    }
    if args.apply {
        target.require_ddl("building the recommended indexes (--apply)")?;
        let admin = crate::pg::connect(&target.admin()).await?;
        for d in &kept_defs {
            let parts = advice.partitioned.get(&d.table).map(Vec::as_slice);
            for sql in d.migration_statements(&advice.schema, parts) {
                admin
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| Error::from_pg(sql.clone(), e))?;
                println!("  applied: {sql}");
            }
        }
    }
    if !args.apply {
        // Costing and verification work on HypoPG sessions and clones only:
        // prove the database ends with exactly the indexes it had.
        let after =
            crate::advise::index_catalog(&crate::pg::connect(&target.admin()).await?, &schema)
                .await?;
        if after != catalog_before {
            return Err(Error::Usage {
                message: format!(
                    "the indexes of schema {schema} changed while advise ran (before: {}, after: {})",
                    catalog_before.len(),
                    after.len()
                ),
                fix: "another session changed the schema meanwhile; run advise again on a quiet database"
                    .into(),
            });
        }
        println!(
            "  catalog check: schema {schema} has exactly the {} indexes it had before",
            after.len()
        );
    }
    for (name, text) in [
        (
            "migration.sql",
            crate::advise::migration_sql(&advice, &advice.schema),
        ),
        (
            "rollback.sql",
            crate::advise::rollback_sql(&advice, &advice.schema),
        ),
        ("remedies.sql", crate::advise::remedies_sql(&advice)),
    ] {
        let path = folder.join(name);
        std::fs::write(&path, text).map_err(|e| Error::io("writing", &path, e))?;
    }
    let sel = &advice.selection;
    println!(
        "crmbench: {} index{} recommended; weighted what-if cost {:.1} → {:.1} ({:.0}% lower), {} what-if plans in {:.1} s, as {}",
        sel.chosen.len(),
        if sel.chosen.len() == 1 { "" } else { "es" },
        sel.base_cost,
        sel.final_cost,
        if sel.base_cost > 0.0 {
            100.0 * (1.0 - sel.final_cost / sel.base_cost)
        } else {
            0.0
        },
        advice.whatif_calls,
        advice.whatif_seconds,
        advice.method
    );
    for c in &sel.chosen {
        println!(
            "  {}  ({:.1} → {:.1}; serves {})",
            c.def.create_sql(&advice.schema),
            c.cost_before,
            c.cost_after,
            c.queries.join(", ")
        );
    }
    if let Some(verified) = &advice.verified {
        println!("  paired verification (candidate/baseline with its interval):");
        for v in verified {
            println!("    {:<48} {}", v.index, v.reason);
        }
    }
    if !advice.drops.is_empty() {
        println!("  indexes that can go:");
        for d in &advice.drops {
            println!("    {:<40} {}", d.index, d.reason);
        }
    }
    if !advice.remedies.is_empty() {
        println!("  remedies (schema changes that make the predicate indexable for the app role):");
        for r in &advice.remedies {
            let effect = r.effect();
            println!("    {}: {}; {effect}", r.query, r.change);
        }
    }
    if !advice.rls_findings.is_empty() {
        println!(
            "  row-level security keeps these predicates from using any index (fix the schema, not the indexes):"
        );
        for (q, f) in &advice.rls_findings {
            println!("    {q}: {}", f.hint);
        }
    }
    println!(
        "  written: {}/{{advice.json, migration.sql, rollback.sql, remedies.sql, prisma/}}",
        folder.display()
    );
    Ok(())
}

async fn demo_command(args: DemoArgs, opts: &TargetOptions) -> anyhow::Result<u8> {
    let mut opts = opts.clone();
    if opts.database.is_none() && opts.database_url.is_none() {
        opts.database = Some(crate::demo::DATABASE.into());
    }
    let folder = crate::runfolder::prepare(args.out.as_deref(), "demo")?;
    let dir = folder.display().to_string();
    let secs = |d: std::time::Duration| format!("{}s", d.as_secs().max(1));
    let steps: Vec<Vec<String>> = [
        vec![
            "generate".to_string(),
            "--scale".into(),
            args.scale.to_string(),
            "--seed".into(),
            args.seed.to_string(),
            "--replace".into(),
            "--quiet".into(),
        ],
        vec![
            "run".into(),
            "--fresh".into(),
            "--duration".into(),
            secs(args.duration),
            "--warmup".into(),
            "5s".into(),
            "--seed".into(),
            args.seed.to_string(),
        ],
        vec!["explain".into()],
        vec![
            "advise".into(),
            "--verify".into(),
            "--verify-duration".into(),
            secs(args.verify_duration),
        ],
    ]
    .into_iter()
    .map(|mut step| {
        step.extend(["--out".to_string(), dir.clone()]);
        step
    })
    .chain(std::iter::once(vec![
        "report".into(),
        "--in".into(),
        dir.clone(),
    ]))
    .collect();
    let mut code = EXIT_OK;
    for (i, step) in steps.iter().enumerate() {
        eprintln!(
            "\ndemo [{}/{}]: crmbench {}",
            i + 1,
            steps.len(),
            step.join(" ")
        );
        let cli = Cli::try_parse_from(std::iter::once("crmbench".to_string()).chain(step.clone()))?;
        let step_code = Box::pin(execute(cli.command, &opts))
            .await
            .map_err(|e| e.context(format!("demo step `crmbench {}`", step[0])))?;
        if step_code != EXIT_OK {
            eprintln!("demo: `crmbench {}` exited {step_code}; going on", step[0]);
            code = step_code;
        }
    }
    let results = crate::results::Results::load(&folder)?;
    let advice_path = folder.join("advice.json");
    let advice: Option<crate::advise::Advice> = crate::report::load_optional(
        &advice_path,
        crate::advise::FORMAT_VERSION,
        "crmbench advise",
    )?;
    println!(
        "\ncrmbench demo: done. The report: {}",
        folder.join("report.html").display()
    );
    println!("Read first:");
    for (i, line) in crate::demo::highlights(&results, advice.as_ref())
        .iter()
        .enumerate()
    {
        println!("  {}. {line}", i + 1);
    }
    Ok(code)
}

fn report_command(args: &ReportArgs) -> Result<()> {
    let mut formats = Vec::new();
    for f in &args.format {
        let format = crate::report::Format::parse(f)?;
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    let model = crate::report::load(&args.input)?;
    for path in crate::report::write(&args.input, &model, &formats)? {
        println!("  written: {}", path.display());
    }
    Ok(())
}

fn compare_command(args: CompareArgs) -> Result<u8> {
    let comparison = crate::compare::compare(&crate::compare::CompareOptions {
        base: args.base,
        current: args.current,
        threshold: args.threshold,
        metric: crate::compare::Metric::parse(&args.metric).unwrap_or_default(),
        max_error_rate: args.max_error_rate,
        fail_on_plan_change: args.fail_on_plan_change,
        candidate_plans: args.candidate_plans,
        seed: args.seed,
    })?;
    let markdown = crate::compare::render::markdown(&comparison);
    if args.format == "json" {
        println!("{}", crate::compare::render::json(&comparison));
    } else {
        print!("{markdown}");
    }
    if let Some(summary) = std::env::var_os("GITHUB_STEP_SUMMARY").filter(|s| !s.is_empty()) {
        use std::io::Write as _;
        let path = PathBuf::from(summary);
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{markdown}\n").as_bytes()))
            .map_err(|e| Error::io("appending the step summary to", &path, e))?;
    }
    Ok(comparison.exit_code)
}
