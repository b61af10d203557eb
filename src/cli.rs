//! The command line: clap definitions (the only module that imports clap),
//! each closed set of values a `ValueEnum` mapped to the library's own type,
//! and a mapping from each command to its stage's functions, whose text it
//! prints. `--help` on every command is the manual.

use std::ffi::{OsStr, OsString};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};
use clap::{Args, CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

use crate::error::{Error, Result};
use crate::explain::SampledValues;
use crate::pg::private::PrivateOptions;
use crate::pg::{self, Target, TargetOptions};
use crate::runfolder::Access;
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
    /// More log output (-v: debug, -vv: trace). RUST_LOG overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count, display_order = 100)]
    verbose: u8,

    /// Write run folders readable by others (0755 folders, 0644 files).
    /// By default they are private (0700, 0600): they hold sampled values
    /// of the data (e-mails, names) and the server's settings.
    #[arg(long, global = true, display_order = 101)]
    shareable: bool,

    // After `verbose`: its heading would otherwise apply to `verbose` too.
    #[command(flatten)]
    target: TargetArgs,

    #[command(subcommand)]
    command: Command,
}

/// `--help`'s heading of the connection options, apart from a command's own.
const CONNECTION_OPTIONS: &str = "Connection options";

/// Commands that never open a database: the connection options are hidden
/// from their `--help` (and still accepted, for scripts that pass them to
/// every command).
const FILE_ONLY_COMMANDS: [&str; 2] = ["report", "compare"];

/// Where to work: shared by every command that opens a database.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION_OPTIONS)]
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
        value_delimiter = ',',
        value_parser = Trimmed::<ReportFormat>::default()
    )]
    format: Vec<ReportFormat>,
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
    #[arg(long, value_enum, default_value_t = Metric::P95)]
    metric: Metric,
    /// Markdown or JSON.
    #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
    format: CompareFormat,
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
    /// In plans.json, replace the values drawn from the data (tenant ids,
    /// sample and ref parameters) by '<redacted>' [default: on for
    /// --database-url targets, off for the private server].
    #[arg(long, overrides_with = "no_redact_values")]
    redact_values: bool,
    /// Keep the sampled values in plans.json.
    #[arg(long, overrides_with = "redact_values")]
    no_redact_values: bool,
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
    /// Open-loop arrivals.
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson)]
    arrivals: Arrivals,
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
    /// How statements are sent. Poolers in transaction mode (pgbouncer) break
    /// prepared statements: use simple there.
    #[arg(long, value_enum, default_value_t = Protocol::Prepared)]
    protocol: Protocol,
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

/// `run --arrivals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Arrivals {
    /// Exponential gaps between arrivals.
    Poisson,
    /// Even gaps.
    Uniform,
}

impl From<Arrivals> for crate::run::driver::Arrivals {
    fn from(a: Arrivals) -> Self {
        match a {
            Arrivals::Poisson => Self::Poisson,
            Arrivals::Uniform => Self::Uniform,
        }
    }
}

/// `run --protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Protocol {
    /// Extended protocol, statements prepared once per connection; a
    /// tenant-framed transaction is pipelined.
    Prepared,
    /// Each transaction sent as one text message with literals: one round trip.
    Simple,
}

/// `report --format`: one item of its comma-separated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum ReportFormat {
    /// report.md, with its plots in report-files/.
    #[value(alias = "markdown")]
    Md,
    /// report.html, self-contained.
    Html,
    /// report.json, the summary.
    Json,
}

impl From<ReportFormat> for crate::report::Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Md => Self::Markdown,
            ReportFormat::Html => Self::Html,
            ReportFormat::Json => Self::Json,
        }
    }
}

/// `compare --metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Metric {
    /// Median.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
}

impl From<Metric> for crate::compare::Metric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::P50 => Self::P50,
            Metric::P95 => Self::P95,
            Metric::P99 => Self::P99,
        }
    }
}

/// `compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum CompareFormat {
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

/// A `ValueEnum`'s parser that forgives spaces around an item of a
/// comma-separated list (`--format "md, html"`), with clap's own errors.
#[derive(Clone)]
struct Trimmed<E>(std::marker::PhantomData<E>);

impl<E> Default for Trimmed<E> {
    fn default() -> Self {
        Trimmed(std::marker::PhantomData)
    }
}

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Trimmed<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> std::result::Result<E, clap::Error> {
        let value = value.to_str().map_or(value, |v| OsStr::new(v.trim()));
        EnumValueParser::<E>::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
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
    let cli = match parse(args) {
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
    let access = if cli.shareable {
        Access::Shareable
    } else {
        Access::Private
    };
    match runtime.block_on(execute(cli.command, &cli.target.options(), access)) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            report_error(&e);
            ExitCode::from(EXIT_ERROR)
        }
    }
}

/// The clap command, with the connection options hidden in
/// [`FILE_ONLY_COMMANDS`]: a command that has an argument of a global one's
/// id does not get the global one, and its value still reaches [`Cli`].
fn command() -> clap::Command {
    let cmd = Cli::command();
    let hidden: Vec<clap::Arg> = cmd
        .get_arguments()
        .filter(|a| a.get_help_heading() == Some(CONNECTION_OPTIONS))
        .map(|a| a.clone().hide(true))
        .collect();
    FILE_ONLY_COMMANDS.into_iter().fold(cmd, |cmd, name| {
        cmd.mut_subcommand(name, |sub| sub.args(hidden.iter().cloned()))
    })
}

/// As `Cli::try_parse_from`, on [`command`].
fn parse<I, T>(args: I) -> std::result::Result<Cli, clap::Error>
where
    I: IntoIterator<Item = T>,
    T: Into<OsString> + Clone,
{
    let mut matches = command().try_get_matches_from(args)?;
    Cli::from_arg_matches_mut(&mut matches).map_err(|e| e.format(&mut command()))
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

async fn execute(command: Command, opts: &TargetOptions, access: Access) -> anyhow::Result<u8> {
    match command {
        Command::Demo(args) => return demo_command(args, opts, access).await,
        Command::Pg(cmd) => print!("{}", pg_command(cmd, opts).await?),
        Command::Schema(cmd) => print!("{}", schema_command(cmd, opts).await?),
        Command::Generate(args) => generate_command(args, opts, access).await?,
        Command::Run(args) => return Ok(run_command(args, opts, access).await?),
        Command::Explain(args) => explain_command(args, opts, access).await?,
        Command::Advise(args) => advise_command(args, opts, access).await?,
        Command::Report(args) => report_command(&args, access)?,
        Command::Compare(args) => return Ok(compare_command(args)?),
    }
    Ok(EXIT_OK)
}

/// The text a `pg` command prints.
async fn pg_command(cmd: PgCommand, opts: &TargetOptions) -> Result<String> {
    match cmd {
        PgCommand::Start => pg::manage::start(opts).await,
        PgCommand::Stop => pg::manage::stop(opts),
        PgCommand::Status => pg::manage::status(opts).await,
        PgCommand::Url { app } => pg::manage::url(opts, app),
    }
}

/// The text a `schema` command prints.
async fn schema_command(cmd: SchemaCommand, opts: &TargetOptions) -> Result<String> {
    let (target, _) = Target::resolve(opts, true)?;
    Ok(match cmd {
        SchemaCommand::Create { replace } => {
            let report = schema::create(&target, &schema::CreateOptions { replace }).await?;
            report.render(target.database(), &target.describe())
        }
        SchemaCommand::Drop => schema::drop(&target).await?.render(target.database()),
        SchemaCommand::Clone { to, replace } => {
            schema::clone::clone_database(&target, &to, replace)
                .await?
                .render()
        }
        SchemaCommand::DropClone { name } => {
            let dropped = schema::clone::drop_database(&target, &name).await?;
            schema::clone::render_drop(&name, dropped)
        }
        SchemaCommand::Checksum { json } => {
            let client = pg::connect(&target.admin()).await?;
            let sums = crate::generate::checksum::checksums(&client).await?;
            if json {
                to_json(&sums)?
            } else {
                crate::generate::checksum::render_table(&sums)
            }
        }
        SchemaCommand::Show { json } => {
            let report = schema::show::show(&target).await?;
            if json {
                to_json(&report)?
            } else {
                report.render()
            }
        }
    })
}

/// Pretty JSON and a newline, as `--json` prints it.
fn to_json<T: serde::Serialize>(value: &T) -> Result<String> {
    serde_json::to_string_pretty(value)
        .map(|text| text + "\n")
        .map_err(|e| Error::Usage {
            message: format!("serializing output: {e}"),
            fix: String::new(),
        })
}

async fn generate_command(args: GenerateArgs, opts: &TargetOptions, access: Access) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    let options = crate::generate::GenerateOptions {
        scale: args.scale,
        seed: args.seed,
        jobs: args
            .jobs
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        replace: args.replace,
        quiet: args.quiet,
        out: args.out,
        access,
    };
    let report = crate::generate::generate(&target, &options).await?;
    let path = crate::generate::write_report(&report, &options)?;
    if !options.quiet {
        print!("{}", crate::generate::render_table(&report));
    }
    print!(
        "{}",
        crate::generate::render_summary(&report, &target.describe(), &path)
    );
    Ok(())
}

async fn run_command(args: RunArgs, opts: &TargetOptions, access: Access) -> Result<u8> {
    let (target, _) = Target::resolve(opts, true)?;
    if args.check {
        let ctx = WorkloadContext::prepare(&target, &args.workload).await?;
        println!(
            "crmbench: {} is valid: {} queries prepared on {} as {}",
            args.workload.display(),
            ctx.workload().queries.len(),
            target.describe(),
            ctx.runs_as()
        );
        return Ok(EXIT_OK);
    }
    let arrivals = args.arrivals.into();
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
        simple: args.protocol == Protocol::Simple,
        quiet: args.quiet,
    };
    let outcome = crate::run::run(&target, &options).await?;
    let path = crate::run::write_outcome(args.out.as_deref(), &outcome, access)?;
    print!("{}", crate::run::render_table(&outcome.results));
    println!("  results: {}", path.display());
    let ending = outcome.ending(&path, args.max_error_rate, args.self_check);
    for line in &ending.stderr {
        eprintln!("{line}");
    }
    for line in &ending.stdout {
        println!("{line}");
    }
    Ok(outcome.exit_code())
}

async fn explain_command(args: ExplainArgs, opts: &TargetOptions, access: Access) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    let redaction = match (args.redact_values, args.no_redact_values) {
        (true, _) => SampledValues::Redact,
        (_, true) => SampledValues::Keep,
        _ => SampledValues::default_for(&target),
    };
    let ctx = WorkloadContext::prepare(&target, &args.workload).await?;
    let file = crate::explain::explain_with(&ctx, &target, args.seed, redaction).await?;
    let path = crate::explain::write_plans(args.out.as_deref(), &file, access)?;
    print!("{}", crate::explain::render_summary(&file));
    println!("  plans: {}", path.display());
    Ok(())
}

async fn advise_command(args: AdviseArgs, opts: &TargetOptions, access: Access) -> Result<()> {
    let (target, _) = Target::resolve(opts, true)?;
    let request = crate::advise::AdviseRequest {
        workload: args.workload,
        max_indexes: args.max_indexes,
        budget_mb: args.budget_mb,
        seed: args.seed,
        verify: args.verify,
        no_hypopg: args.no_hypopg,
        apply: args.apply,
        verify_duration: args.verify_duration,
        verify_clients: args.verify_clients,
        prisma_schema: args.prisma_schema,
        out: args.out,
        access,
    };
    let run = crate::advise::run_advise(&target, &request, &mut |sql| println!("  applied: {sql}"))
        .await?;
    if let Some(check) = &run.catalog {
        println!("  {check}");
    }
    print!(
        "{}",
        crate::advise::render_summary(&run.advice, &run.folder)
    );
    Ok(())
}

async fn demo_command(args: DemoArgs, opts: &TargetOptions, access: Access) -> anyhow::Result<u8> {
    let options = crate::demo::DemoOptions {
        scale: args.scale,
        seed: args.seed,
        duration: args.duration,
        verify_duration: args.verify_duration,
        out: args.out,
        access,
    };
    crate::demo::demo(opts, &options)
        .await
        .map_err(|e| match e {
            crate::demo::DemoError::Step { step, source } => {
                anyhow::Error::new(source).context(format!("demo step `crmbench {step}`"))
            }
            crate::demo::DemoError::Other(e) => e.into(),
        })
}

fn report_command(args: &ReportArgs, access: Access) -> Result<()> {
    let mut formats: Vec<crate::report::Format> = Vec::new();
    for format in args.format.iter().map(|&f| f.into()) {
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    let model = crate::report::load(&args.input)?;
    let folder = crate::runfolder::RunFolder::open(&args.input)?.with_access(access);
    for path in crate::report::write(&folder, &model, &formats)? {
        println!("  written: {}", path.display());
    }
    Ok(())
}

fn compare_command(args: CompareArgs) -> Result<u8> {
    let comparison = crate::compare::compare(&crate::compare::CompareOptions {
        base: args.base,
        current: args.current,
        threshold: args.threshold,
        metric: args.metric.into(),
        max_error_rate: args.max_error_rate,
        fail_on_plan_change: args.fail_on_plan_change,
        candidate_plans: args.candidate_plans,
        seed: args.seed,
    })?;
    let markdown = crate::compare::render::markdown(&comparison);
    match args.format {
        CompareFormat::Json => println!("{}", crate::compare::render::json(&comparison)),
        CompareFormat::Md => print!("{markdown}"),
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
