//! The clap definitions of every command and option: the doc comment on
//! each is what `--help` prints.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use super::values::{
    Arrivals, CompareFormat, InconclusiveArg, Metric, Protocol, ReportFormat, Trimmed,
    parse_duration, parse_fraction,
};
use super::values::{AuditFormat, FailOn, TenantFrameArg};
use crate::pg::TargetOptions;
use crate::pg::private::PrivateOptions;

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
    pub(super) verbose: u8,

    /// Write run folders readable by others (0755 folders, 0644 files).
    /// By default they are private (0700, 0600): they hold sampled values
    /// of the data (e-mails, names) and the server's settings.
    #[arg(long, global = true, display_order = 101)]
    pub(super) shareable: bool,

    // After `verbose`: its heading would otherwise apply to `verbose` too.
    #[command(flatten)]
    pub(super) target: TargetArgs,

    #[command(subcommand)]
    pub(super) command: Command,
}

/// `--help`'s heading of the connection options, apart from a command's own.
pub(super) const CONNECTION_OPTIONS: &str = "Connection options";

/// Commands that never open a database: the connection options are hidden
/// from their `--help` (and still accepted, for scripts that pass them to
/// every command).
pub(super) const FILE_ONLY_COMMANDS: [&str; 2] = ["report", "compare"];

/// Where to work: shared by every command that opens a database.
#[derive(Debug, Args)]
#[command(next_help_heading = CONNECTION_OPTIONS)]
pub(super) struct TargetArgs {
    /// Work on an existing server instead of the private one, e.g.
    /// postgresql://user:password@host:5432/dbname. Its password is never printed.
    #[arg(long, env = "DATABASE_URL", global = true, hide_env_values = true)]
    pub(super) database_url: Option<String>,

    /// Allow changes beyond crmbench's own schema on a --database-url server:
    /// creating roles and extensions, building indexes, cloning databases.
    #[arg(long, global = true)]
    pub(super) allow_ddl: bool,

    /// Folder with the PostgreSQL server binaries (initdb, pg_ctl, postgres).
    /// Default: `pg_config --bindir`, then PATH, then the newest
    /// /usr/lib/postgresql/*/bin (preferring one with HypoPG installed).
    #[arg(long, env = "CRMBENCH_PG_BINDIR", global = true)]
    pub(super) pg_bindir: Option<PathBuf>,

    /// The private server's folder (cluster.json, data/, run/, server.log).
    /// Must be reachable by the server's user: as root the server runs as
    /// `postgres`, who cannot enter /root or a 0700 checkout.
    /// [default: /var/tmp/crmbench-$UID]
    #[arg(long, env = "CRMBENCH_DATA_DIR", global = true)]
    pub(super) data_dir: Option<PathBuf>,

    /// Port for a new private server (default: the first free one from 54329).
    #[arg(long, env = "CRMBENCH_PG_PORT", global = true)]
    pub(super) pg_port: Option<u16>,

    /// Work on this database (e.g. a clone made by `schema clone`) instead of
    /// `crmbench` on the private server or the URL's database.
    #[arg(long, env = "CRMBENCH_DATABASE", global = true)]
    pub(super) database: Option<String>,
}

impl TargetArgs {
    pub(super) fn options(&self) -> TargetOptions {
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
pub(super) enum Command {
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
    Run(Box<RunArgs>),
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
    /// Rehearse a migration on a clone under the workload: locks, blocked
    /// transactions, latency, the rollback proven.
    ///
    /// MIGRATION is a .sql file, a folder of .sql files (name order), a
    /// Prisma migrations/ folder (each <name>/migration.sql in order) or
    /// advise's migration.sql (its rollback.sql is then the default
    /// --rollback). Each statement is first checked against rules that know
    /// the real table sizes and the lock it takes. Then the database is
    /// cloned (the original is never touched), the workload replayed on the
    /// clone, the migration applied on its own connection after --before,
    /// with pg_locks and pg_blocking_pids sampled every 50 ms, the load kept
    /// up until --after, then the rollback applied and the schema fingerprint
    /// (tables, columns, defaults, constraints, indexes and validity,
    /// policies, grants) compared with the one before. Writes rehearsal.json
    /// and the workload's results.json into the run folder. Exit codes: 0
    /// applied and rolled back cleanly, 1 the migration failed or the
    /// rollback check found a difference, 2 an error.
    Rehearse(Box<RehearseArgs>),
    /// Multi-tenant audit: leak paths, distribution blockers, RLS cost.
    ///
    /// Reads the catalog of --schema (no query is run on tenant data): row-level
    /// security enabled, forced and with a tenant policy per command; keys and
    /// foreign keys without the tenant column (Citus distribution blockers);
    /// views, SECURITY DEFINER functions, materialized views, the application
    /// role and untenanted tables that bypass the policies; indexes the policy
    /// needs. The tenant column and setting are detected from the policies.
    /// With --prisma-schema FILE, checks the Prisma models statically instead
    /// (no database), each finding at FILE:line with the corrected lines.
    ///
    /// Exit codes: 0 nothing at or above --fail-on, 1 findings at or above it,
    /// 2 an error.
    Audit(AuditArgs),
    /// Erase a customer's or a tenant's rows, proven, in one transaction.
    ///
    /// Finds every row that references the subject through the catalog's
    /// foreign keys, plus the references --policy declares (rows without a
    /// foreign key, e.g. an audit log), deletes them leaves first (or
    /// pseudonymises the policy's personal columns) as the schema's owner
    /// with the subject's tenant set, and proves before COMMIT that no row
    /// references the subject, no personal value remains, and the
    /// transaction changed nothing but those rows (pg_stat_xact_user_tables
    /// against the statements' RETURNING counts; rows written, by xmin). A
    /// failed proof rolls back and exits 2.
    Erase(EraseArgs),
    /// Write a workload file from what the server really ran
    /// (pg_stat_statements of the target database, the application's role):
    /// one query per statement, weighted by calls, generators inferred from
    /// the catalog, the tenant context from the RLS policies. Statements it
    /// cannot replay are listed with their share of execution time.
    Capture(CaptureArgs),
    /// Export a customer's or a tenant's rows, with counts and checksums.
    ///
    /// The rows erase would remove (the subject's, every row referencing it
    /// through a foreign key, the --policy's declared references; for a
    /// tenant every row with the tenant column), one file per table, read in
    /// one snapshot, and manifest.json with each table's rows and an
    /// order-free checksum. A tenant goes out as CSV by COPY, which `import`
    /// loads elsewhere.
    Export(ExportArgs),
    /// Load a tenant's CSV export into a schema of the same shape, proven:
    /// each table's checksum of the tenant's rows must equal the manifest's,
    /// or nothing is loaded (exit 2).
    Import(ImportArgs),
    /// Merge the folders of one run spread over several machines
    /// (`run --worker K/N --start-at T` on each) into one results.json.
    ///
    /// Exact: HDR histograms are added (never averaged), counts, errors and
    /// retries summed, each interval of the series added from the workers'
    /// histograms of that interval after aligning them by wall clock, and a
    /// paired run's ratios recomputed from every worker's pairs. The server's
    /// own counters (index use, statements) are server-wide in every worker's
    /// folder and are taken from worker 0. Refuses folders of different
    /// workloads, seeds, targets or options, and a set with a worker missing
    /// or repeated. `report`, `compare` and `advise` read the merged folder
    /// as a single run's.
    Merge(MergeArgs),
}

#[derive(Debug, Args)]
pub(super) struct MergeArgs {
    /// Worker run folders (or their results.json), one per worker.
    #[arg(required = true)]
    pub(super) folders: Vec<PathBuf>,
    /// Run folder for the merged results.json [default: reports/<timestamp>-merge].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct EraseArgs {
    /// The customer's key (in the policy's subject table, default customers.id).
    #[arg(long, required_unless_present = "tenant")]
    pub(super) customer: Option<String>,
    /// The tenant: alone, erase the whole tenant; with --customer, its tenant.
    #[arg(long)]
    pub(super) tenant: Option<String>,
    /// Erasure policy (TOML): subject table, action per table, references
    /// without a foreign key.
    #[arg(long, value_name = "FILE")]
    pub(super) policy: Option<std::path::PathBuf>,
    /// Erase and prove on a clone of the database instead (dropped after),
    /// also comparing every other tenant's checksums before and after.
    #[arg(long)]
    pub(super) dry_run: bool,
    /// Schema.
    #[arg(long, default_value = crate::pg::SCHEMA)]
    pub(super) schema: String,
    /// The tenant column.
    #[arg(long, default_value = crate::audit::DEFAULT_COLUMN)]
    pub(super) tenant_column: String,
    /// The setting the policies read the tenant from.
    #[arg(long, default_value = crate::audit::DEFAULT_SETTING)]
    pub(super) setting: String,
}

#[derive(Debug, Args)]
pub(super) struct AuditArgs {
    /// Schema to audit.
    #[arg(long, default_value = crate::pg::SCHEMA)]
    pub(super) schema: String,
    /// The tenant column (detected from the policies when omitted).
    #[arg(long)]
    pub(super) tenant_column: Option<String>,
    /// The setting policies read the tenant from (detected when omitted).
    #[arg(long)]
    pub(super) setting: Option<String>,
    /// The role the application connects as.
    #[arg(long, default_value = crate::pg::roles::APP)]
    pub(super) app_role: String,
    /// Audit this Prisma schema statically instead of a database.
    #[arg(long, value_name = "FILE")]
    pub(super) prisma_schema: Option<std::path::PathBuf>,
    /// Also run read-only probes as the application role: isolation (no
    /// tenant set, one tenant set) and the policy's measured cost.
    #[arg(long, conflicts_with = "prisma_schema")]
    pub(super) probe: bool,
    /// Also check this workload file's statements (a statement that sets
    /// the tenant setting itself is an error, at its file:line).
    #[arg(long, value_name = "FILE", conflicts_with = "prisma_schema")]
    pub(super) workload: Option<std::path::PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = AuditFormat::Text)]
    pub(super) format: AuditFormat,
    /// Exit 1 when a finding is at or above this severity.
    #[arg(long, value_enum, default_value_t = FailOn::Error)]
    pub(super) fail_on: FailOn,
}

#[derive(Debug, Args)]
pub(super) struct CaptureArgs {
    /// The workload file to write.
    #[arg(long)]
    pub(super) out: std::path::PathBuf,
    /// Take statements by total execution time until this share is covered (percent).
    #[arg(long, default_value_t = 95.0)]
    pub(super) coverage: f64,
    /// At most this many statements.
    #[arg(long)]
    pub(super) top: Option<usize>,
    /// Leave out statements called fewer times than this.
    #[arg(long, default_value_t = 1)]
    pub(super) min_calls: i64,
    /// The application's role (default: the role, not superuser nor exempt
    /// from row-level security, whose statements took the most time).
    #[arg(long)]
    pub(super) role: Option<String>,
    /// Take two snapshots of pg_stat_statements this far apart (e.g. 10m)
    /// and weigh statements by the calls made in between.
    #[arg(long, value_parser = parse_duration)]
    pub(super) window: Option<std::time::Duration>,
    /// Then replay the file on the same server and compare each statement's
    /// share of calls and mean execution time with the source's (exit 1 when
    /// one is outside the band).
    #[arg(long)]
    pub(super) check_replay: bool,
    /// Length of the --check-replay run.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(super) replay_duration: std::time::Duration,
    /// Clients of the --check-replay run.
    #[arg(long, default_value_t = 2)]
    pub(super) replay_clients: usize,
    /// Read the statements from a server log (stderr or csvlog, written with
    /// log_min_duration_statement = 0, or auto_explain's plans) instead of
    /// pg_stat_statements; the logged parameter values become the pools.
    #[arg(long, value_name = "FILE", conflicts_with = "window")]
    pub(super) from_log: Option<PathBuf>,
    /// Read the statements from this table instead of pg_stat_statements: a
    /// copy of another server's view (any of PostgreSQL 13–17) with a
    /// `rolname` column, holding one database's rows, e.g. production's
    /// statistics restored with the client's copy.
    #[arg(long, value_name = "TABLE", conflicts_with_all = ["window", "from_log"])]
    pub(super) stats_table: Option<String>,
    /// Keep the first guesses where pg_stat_statements lost the values (a
    /// page of 20, the last 90 days, tenants weighted by size) instead of
    /// fitting them to the source's blocks, rows and time per call. The fit
    /// runs each candidate under EXPLAIN ANALYZE for up to 16 tenants, in
    /// transactions rolled back: skip it where even that is unwelcome.
    #[arg(long)]
    pub(super) no_fit: bool,
}

#[derive(Debug, Args)]
pub(super) struct DemoArgs {
    /// Dataset scale (0.02: 20 tenants, ~400k rows, ~80 MB).
    #[arg(long, default_value_t = crate::demo::DEFAULT_SCALE)]
    pub(super) scale: f64,
    /// Generator and parameter seed.
    #[arg(long, default_value_t = 7)]
    pub(super) seed: u64,
    /// Length of the measured replay.
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub(super) duration: std::time::Duration,
    /// Length of each paired verification run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(super) verify_duration: std::time::Duration,
    /// Run folder [default: reports/<time>-demo, linked from reports/latest].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct ReportArgs {
    /// Run folder to read and write into.
    #[arg(long = "in", value_name = "DIR", default_value = "reports/latest")]
    pub(super) input: PathBuf,
    /// Formats to write, comma-separated: md, html, json.
    #[arg(
        long,
        value_name = "LIST",
        default_value = "md,html,json",
        value_delimiter = ',',
        value_parser = Trimmed::<ReportFormat>::default()
    )]
    pub(super) format: Vec<ReportFormat>,
}

#[derive(Debug, Args)]
pub(super) struct CompareArgs {
    /// Baseline: results.json or a run folder; alone, a paired run.
    pub(super) base: PathBuf,
    /// Current: results.json or a run folder of a separate run.
    pub(super) current: Option<PathBuf>,
    /// Largest p95 increase that passes, e.g. 10% or 0.1 [default: 10% paired,
    /// 25% separate runs]. Also the throughput drop that fails separate runs.
    #[arg(long, value_parser = parse_fraction)]
    pub(super) threshold: Option<f64>,
    /// The percentile gated: p95, or p50 (the typical transaction: much
    /// narrower intervals where the tail is mostly other queries' interference),
    /// or p99 (needs long runs), or mean (what the query costs in all,
    /// rare slow transactions included).
    #[arg(long, value_enum, default_value_t = Metric::P95)]
    pub(super) metric: Metric,
    /// Markdown or JSON.
    #[arg(long, value_enum, default_value_t = CompareFormat::Md)]
    pub(super) format: CompareFormat,
    /// Fail (exit 1) when a plan fingerprint changed.
    #[arg(long)]
    pub(super) fail_on_plan_change: bool,
    /// Highest share of a query's transactions a SQLSTATE the baseline never
    /// raised may take, e.g. 1% or 0.01.
    #[arg(long, default_value = "1%", value_parser = parse_fraction)]
    pub(super) max_error_rate: f64,
    /// The candidate's plans.json (or its folder, e.g. from
    /// `crmbench --database CLONE explain --out DIR`), compared with the paired
    /// run folder's plans.json.
    #[arg(long)]
    pub(super) candidate_plans: Option<PathBuf>,
    /// Seed of the separate-run bootstrap (the same seed gives the same verdict).
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Exit code of an inconclusive verdict (an interval across the
    /// threshold): 2 by default; `pass` exits 0, `fail` exits 1.
    #[arg(long, value_enum)]
    pub(super) inconclusive: Option<InconclusiveArg>,
}

#[derive(Debug, Args)]
pub(super) struct AdviseArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    pub(super) workload: PathBuf,
    /// Most indexes to recommend.
    #[arg(long, default_value_t = 8)]
    pub(super) max_indexes: usize,
    /// Storage budget for the new indexes, MB.
    #[arg(long, default_value_t = 1024.0)]
    pub(super) budget_mb: f64,
    /// Seed of the sample parameters.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Prove each index with paired before/after runs on clones.
    #[arg(long)]
    pub(super) verify: bool,
    /// Cost candidates with real indexes built on a clone instead of HypoPG
    /// (also the fallback when HypoPG is not installed; slower).
    #[arg(long)]
    pub(super) no_hypopg: bool,
    /// When --allow-ddl let advise create HypoPG in the database, leave it
    /// there afterwards instead of dropping it.
    #[arg(long)]
    pub(super) keep_hypopg: bool,
    /// Build the kept indexes (all recommended ones without --verify) on the
    /// database, CONCURRENTLY. Needs --allow-ddl on a --database-url server.
    #[arg(long)]
    pub(super) apply: bool,
    /// Length of each paired verification run.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(super) verify_duration: std::time::Duration,
    /// Clients per side in verification runs.
    #[arg(long, default_value_t = 4)]
    pub(super) verify_clients: usize,
    /// Your schema.prisma: the @@index lines use its model and field names
    /// (@@map/@map) instead of Prisma's naming conventions.
    #[arg(long, value_name = "FILE")]
    pub(super) prisma_schema: Option<PathBuf>,
    /// Run folder to read plans.json from and write into [default: reports/latest, else a new one].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct ExplainArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    pub(super) workload: PathBuf,
    /// Seed of the parameter values.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// In plans.json, replace the values drawn from the data (tenant ids,
    /// sample and ref parameters) by '<redacted>' [default: on for
    /// --database-url targets, off for the private server].
    #[arg(long, overrides_with = "no_redact_values")]
    pub(super) redact_values: bool,
    /// Keep the sampled values in plans.json.
    #[arg(long, overrides_with = "redact_values")]
    pub(super) no_redact_values: bool,
    /// Run folder [default: reports/latest when it exists, else a new one].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(super) struct RunArgs {
    /// Workload file (TOML).
    #[arg(long, default_value = "workloads/crm.toml")]
    pub(super) workload: PathBuf,
    /// Connections (per side).
    #[arg(long, default_value_t = 8)]
    pub(super) clients: usize,
    /// Driver threads, each with its own runtime [default: min(cores, clients)].
    #[arg(long)]
    pub(super) threads: Option<usize>,
    /// Measured time, e.g. 60s, 2m, 500ms.
    #[arg(long, default_value = "60s", value_parser = parse_duration)]
    pub(super) duration: std::time::Duration,
    /// Warm-up before measuring (not recorded).
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(super) warmup: std::time::Duration,
    /// Open loop: transactions per second over all clients.
    #[arg(long)]
    pub(super) rate: Option<f64>,
    /// Open-loop arrivals.
    #[arg(long, value_enum, default_value_t = Arrivals::Poisson)]
    pub(super) arrivals: Arrivals,
    /// Seed of every parameter stream.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Run on a fresh clone of the dataset, dropped afterwards (writes change data).
    #[arg(long)]
    pub(super) fresh: bool,
    /// Paired run: the candidate database, e.g. a clone with a change applied.
    #[arg(long)]
    pub(super) candidate_url: Option<String>,
    /// A/A self-check: a paired run against the baseline itself; fails (exit 1)
    /// unless every query's simultaneous intervals contain 1.00.
    #[arg(long)]
    pub(super) self_check: bool,
    /// Highest share of failed transactions per query, e.g. 1% or 0.01.
    #[arg(long, default_value = "1%", value_parser = parse_fraction)]
    pub(super) max_error_rate: f64,
    /// Period of the per-interval series and progress lines.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    pub(super) interval: std::time::Duration,
    /// Tries per transaction on serialization failure or deadlock (1: no retry).
    #[arg(long, default_value_t = 1)]
    pub(super) max_tries: u32,
    /// Validate the workload against the server and stop: every statement
    /// is prepared and run once as the workload's role, rolled back.
    #[arg(long)]
    pub(super) check: bool,
    /// How statements are sent. Poolers in transaction mode (pgbouncer) break
    /// prepared statements: use simple there.
    #[arg(long, value_enum, default_value_t = Protocol::Prepared)]
    pub(super) protocol: Protocol,
    /// Run folder [default: reports/<timestamp>-run].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// No progress lines.
    #[arg(long, short)]
    pub(super) quiet: bool,
    /// Sequential paired gate: look at the intervals every --look-every and
    /// stop once every gated query is a regression or shows no regression,
    /// at the latest after --max-duration (--duration is then ignored).
    /// Repeated looks keep the false-alarm rate (α spending, see README).
    #[arg(long, requires = "candidate_url")]
    pub(super) until_decided: bool,
    /// --until-decided: the largest increase of the metric that is no regression.
    #[arg(long, default_value = "10%", value_parser = parse_fraction)]
    pub(super) threshold: f64,
    /// --until-decided: the gated percentile, or the mean (rare slow
    /// transactions included).
    #[arg(long, value_enum, default_value_t = Metric::P95)]
    pub(super) metric: Metric,
    /// --until-decided: no look before this much of the window.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub(super) min_duration: std::time::Duration,
    /// --until-decided: the longest the window lasts.
    #[arg(long, default_value = "5m", value_parser = parse_duration)]
    pub(super) max_duration: std::time::Duration,
    /// --until-decided: time between looks.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    pub(super) look_every: std::time::Duration,
    /// --until-decided: gate only these queries (comma-separated names).
    #[arg(long, value_delimiter = ',')]
    pub(super) gate_queries: Option<Vec<String>>,
    /// Send the benchmark clients through the PgBouncer that `crmbench pg
    /// start --pooler` started in front of the private server (transaction
    /// mode; needs --protocol simple: PgBouncer 1.18 cannot keep prepared
    /// statements there). crmbench's own statistics sessions still connect
    /// directly. results.json records the pooler under driver.pooler.
    #[arg(long, conflicts_with = "pooler_url")]
    pub(super) pooler: bool,
    /// Send the benchmark clients through the pooler at this URL (e.g. a
    /// PgBouncer in front of a server elsewhere): its user, password
    /// and database are used as given. A workload that needs SET ROLE is
    /// refused (session state leaks between clients under transaction
    /// pooling).
    #[arg(long, value_name = "URL")]
    pub(super) pooler_url: Option<String>,
    /// Measure the pooler's pool size: for each size (e.g. 4,8,16,32) restart
    /// the private PgBouncer with that default_pool_size and run the workload
    /// for --duration at --clients, then print tps and p99 per size and
    /// advise the knee — the smallest pool reaching 95% of the best tps —
    /// with the curve in pool-sizes.json and pool-sizes.svg of the run folder.
    #[arg(long, value_delimiter = ',', value_name = "N,N,…", requires = "pooler")]
    pub(super) pool_sizes: Vec<u32>,
    /// A read replica (repeatable): read queries (kind = "read", or route =
    /// "replica" in the workload) go to the replicas, client c to replica
    /// c mod n; writes go to the target. Without it, the private server's
    /// running replicas (`pg start --replicas N`) are used. results.json
    /// records which queries the replicas served, stale reads of a client's
    /// own writes (queries marked reads_own_writes) and the replay lag per
    /// interval. Not with a paired run.
    #[arg(long = "replica-url", value_name = "URL")]
    pub(super) replica_urls: Vec<String>,
    /// Send every query to the target even when the private server has
    /// running replicas.
    #[arg(long, conflicts_with = "replica_urls")]
    pub(super) no_replicas: bool,
    /// Run one slice of the clients, for load from several machines: worker
    /// K of N (K from 0, like a Kubernetes completion index) runs the client
    /// ids ≡ K mod N of --clients (the total over all workers), each with the
    /// parameter stream a single-machine run gives that client. Results keep
    /// per-interval histograms (and paired samples) so `crmbench merge` can
    /// add the workers' folders up exactly. Use with --start-at.
    #[arg(long, value_name = "K/N", value_parser = parse_worker,
          conflicts_with_all = ["until_decided", "pool_sizes"])]
    pub(super) worker: Option<crate::run::worker::WorkerSlice>,
    /// Start (connect, warm up, measure) at this wall-clock instant, RFC 3339
    /// or Unix seconds, so every worker's window lines up; a start more than
    /// 1 s past is refused. Clocks must agree (NTP).
    #[arg(long, value_name = "TIME", value_parser = parse_start)]
    pub(super) start_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Record each client's first N transactions (query, tenant, drawn
    /// values) in results.json under param_trace — to check that workers
    /// replay one run's streams, or to reproduce a failing transaction.
    /// The values are the dataset's: share the file accordingly.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub(super) trace_params: usize,
    /// How each transaction sets the tenant [default: the workload's
    /// `[context] tenant_frame`, else set-config]. set-local sends `SET LOCAL
    /// setting = 'tenant'`, which Citus propagates to the workers holding the
    /// shards (with citus.propagate_set_commands = 'local'); set_config is
    /// not propagated there, so row-level security on a worker would see no
    /// tenant.
    #[arg(long, value_enum)]
    pub(super) tenant_frame: Option<TenantFrameArg>,
}

fn parse_worker(text: &str) -> std::result::Result<crate::run::worker::WorkerSlice, String> {
    crate::run::worker::WorkerSlice::parse(text).map_err(|e| e.to_string())
}

fn parse_start(text: &str) -> std::result::Result<chrono::DateTime<chrono::Utc>, String> {
    crate::run::worker::parse_start(text).map_err(|e| e.to_string())
}

#[derive(Debug, Args)]
pub(super) struct GenerateArgs {
    /// Dataset size: 1 ≈ 1M customers (≈4.2 GB); 0.01 ≈ 10k customers (≈42 MB).
    #[arg(long, default_value_t = 0.01)]
    pub(super) scale: f64,
    /// Seed of every random stream: the same seed and scale give the same rows.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Parallel loader connections [default: number of cores].
    #[arg(long)]
    pub(super) jobs: Option<usize>,
    /// Replace an existing crmbench dataset (never anything crmbench did not create).
    #[arg(long)]
    pub(super) replace: bool,
    /// No progress output.
    #[arg(long, short)]
    pub(super) quiet: bool,
    /// Run folder for generate.json [default: reports/<timestamp>-generate].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
}

#[derive(Debug, Subcommand)]
pub(super) enum PgCommand {
    /// Start the private server, initialising it on first use. Idempotent: a
    /// running server is reused. Creates the roles and the `crmbench` database.
    Start {
        /// Also start PgBouncer (the packaged one) in transaction mode in
        /// front of the server, as the server's OS user, on its own socket
        /// folder and a free loopback port; `run --pooler` then sends the
        /// benchmark clients through it. A pooler crmbench started before is
        /// replaced. `pg stop` stops it.
        #[arg(long)]
        pooler: bool,
        /// PgBouncer's default_pool_size: server connections per database
        /// and user (PgBouncer's own default is 20).
        #[arg(long, default_value_t = 20, value_name = "N", requires = "pooler")]
        pool_size: u32,
        /// Also start N streaming replicas (pg_basebackup, hot standby) on
        /// loopback, each in <data-dir>/replica-K on its own port. The server
        /// is restarted once with wal_level = replica and WAL senders (loads
        /// are slower there; results files record wal_level). `run` then
        /// routes read queries to them; `pg status` shows their lag.
        #[arg(long, value_name = "N")]
        replicas: Option<usize>,
    },
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
pub(super) enum SchemaCommand {
    /// Create the CRM schema `crm`: tables, keys, baseline indexes, forced
    /// row-level security, the roles crmbench_owner and crmbench_app, and the
    /// HypoPG / pg_stat_statements extensions when available.
    Create {
        /// Drop and recreate the schema if crmbench created it (data is lost).
        #[arg(long)]
        replace: bool,
    },
    /// Drop the CRM schema, only if it carries crmbench's marker. With
    /// --database NAME, then drop database NAME itself too when crmbench
    /// created it (a dataset made by generate or schema create, the demo's
    /// crmbench_demo): its data is lost. A database crmbench did not create
    /// is kept.
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
    /// Drop a database made by `schema clone` (or a working copy left by a
    /// crmbench that is gone). Refuses anything else, datasets included:
    /// `schema drop --database NAME` drops a dataset.
    DropClone {
        /// Name of the clone.
        name: String,
    },
    /// Drop the working copies crmbench made for itself (run --fresh,
    /// advise --verify, --no-hypopg, remedy measurement) whose owner is gone.
    ///
    /// A command holds a lease on each copy while it works (an advisory lock
    /// on the server, so this works for workers on other machines and on a
    /// --database-url server); a copy whose lease is free was left by a
    /// command that was killed. Copies in use are left alone; clones made by
    /// `schema clone` are kept. Every command that clones runs this first.
    Gc,
    /// Print a content checksum (rows and md5) of every CRM table: equal
    /// checksums mean equal data, whatever the physical row order.
    Checksum {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Print the SQL that distributes the CRM with Citus: shared lookups as
    /// reference tables, the tenants by id, every tenant table by tenant_id
    /// co-located with them, in dependency order; with --nodes, the tenant
    /// placement for the workload's load first (as comments) and the
    /// isolate_tenant_to_new_shard calls for the tenants big enough to need
    /// a shard of their own. Nothing is changed: pipe it to psql on the
    /// Citus coordinator.
    DistributeSql {
        /// Shards per distributed table (Citus's default is 32).
        #[arg(long, default_value_t = 32)]
        shards: u32,
        /// Worker nodes: advise the tenant placement for this many.
        #[arg(long)]
        nodes: Option<u32>,
        /// The workload whose load the placement balances.
        #[arg(long, default_value = "workloads/crm.toml")]
        workload: PathBuf,
    },
}

#[derive(Debug, Args)]
pub(super) struct RehearseArgs {
    /// The migration: a .sql file, a folder of .sql files, or a Prisma migrations/ folder.
    #[arg(required_unless_present = "retention")]
    pub(super) migration: Option<PathBuf>,
    /// Rollback file, applied after the migration; the schema must then be
    /// as before [default: rollback.sql beside advise's migration.sql].
    #[arg(long)]
    pub(super) rollback: Option<PathBuf>,
    /// How statements reach the server: statement (one at a time, psql's
    /// way), file (each file as one multi-statement query: one implicit
    /// transaction), prisma (as Prisma Migrate has sent it: like file)
    /// [default: prisma for a Prisma folder, else statement].
    #[arg(long, value_parser = ["statement", "file", "prisma"])]
    pub(super) apply_as: Option<String>,
    /// Workload replayed on the clone during the migration; without it the
    /// migration is applied with no load (locks only).
    #[arg(long)]
    pub(super) workload: Option<PathBuf>,
    /// Open loop: transactions per second (latency then counts from each
    /// intended start, so queueing behind a lock shows) [default: half the
    /// throughput of a 2 s closed-loop probe on the clone].
    #[arg(long, conflicts_with = "closed")]
    pub(super) rate: Option<f64>,
    /// Closed loop on --clients connections instead (a blocked client sends
    /// nothing more, so queueing hides).
    #[arg(long)]
    pub(super) closed: bool,
    /// Connections replaying the workload.
    #[arg(long, default_value_t = 4)]
    pub(super) clients: usize,
    /// Load before the migration starts.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub(super) before: std::time::Duration,
    /// Load window after the migration starts.
    #[arg(long, default_value = "20s", value_parser = parse_duration)]
    pub(super) after: std::time::Duration,
    /// lock_timeout on the migration's connection, e.g. 2s [default: the migration's own].
    #[arg(long, value_parser = parse_duration)]
    pub(super) lock_timeout: Option<std::time::Duration>,
    /// SQL run in a transaction held open from just before the migration
    /// (the long transaction a deployment meets), for --hold-for.
    #[arg(long)]
    pub(super) hold: Option<String>,
    /// How long the --hold transaction stays open.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    pub(super) hold_for: std::time::Duration,
    /// Tables larger than this (MB) make a plain CREATE INDEX a finding.
    #[arg(long, default_value_t = 1.0)]
    pub(super) index_limit_mb: f64,
    /// Seed of the workload's parameter streams.
    #[arg(long, default_value_t = 1)]
    pub(super) seed: u64,
    /// Run folder [default: reports/<timestamp>-rehearse].
    #[arg(long)]
    pub(super) out: Option<PathBuf>,
    /// Validation queries (.sql, each returns one boolean): each must return
    /// true after the migration and after the rollback, on a quiesced clone.
    #[arg(long)]
    pub(super) validate: Option<PathBuf>,
    /// Leave the private server's wal_level as it is (by default a server at
    /// minimal is restarted at replica, so WAL figures mean what they would
    /// in production; under minimal they are marked not comparable).
    #[arg(long)]
    pub(super) keep_wal_level: bool,
    /// Instead of a migration: rehearse retention of this table (in the
    /// crm schema) — a batched DELETE + VACUUM against the table converted
    /// to monthly partitions and the expired ones dropped, side by side
    /// under the workload (default: the built-in one); writes the
    /// conversion, its rollback and the retention job.
    #[arg(long, value_name = "TABLE", conflicts_with = "migration")]
    pub(super) retention: Option<String>,
    /// With --retention: how much to keep, e.g. 24months or 2years.
    #[arg(long, default_value = "24months", value_parser = crate::rehearse::retention::parse_keep)]
    pub(super) keep: u32,
    /// With --retention: the time column [default: created_at, else the first timestamp].
    #[arg(long)]
    pub(super) partition_by: Option<String>,
    /// With --retention: the partition interval (month only).
    #[arg(long, default_value = "month", value_parser = ["month"])]
    pub(super) interval: String,
    /// With --retention: the job written [default: partman when the server has pg_partman 4.x].
    #[arg(long, value_parser = ["partman", "plpgsql"])]
    pub(super) job: Option<String>,
}

impl Command {
    /// Whether the command heeds stop signals itself ([`crate::signals`]).
    pub(super) fn stops_cleanly(&self) -> bool {
        matches!(
            self,
            Command::Run(_) | Command::Generate(_) | Command::Advise(_) | Command::Demo(_)
        )
    }
}

#[derive(Debug, Args)]
pub(super) struct ExportArgs {
    /// The customer's key (in the policy's subject table, default customers.id).
    #[arg(long, required_unless_present = "tenant")]
    pub(super) customer: Option<String>,
    /// The tenant: alone, export the whole tenant; with --customer, its tenant.
    #[arg(long)]
    pub(super) tenant: Option<String>,
    /// Erasure policy (TOML): subject table, references without a foreign key.
    #[arg(long, value_name = "FILE")]
    pub(super) policy: Option<std::path::PathBuf>,
    /// Output folder (created; files 0600).
    #[arg(long, value_name = "DIR")]
    pub(super) out: std::path::PathBuf,
    /// Row format: jsonl (default for --customer) or csv (default for --tenant).
    #[arg(long, value_enum)]
    pub(super) format: Option<super::values::ExportFormat>,
    /// Schema.
    #[arg(long, default_value = crate::pg::SCHEMA)]
    pub(super) schema: String,
    /// The tenant column.
    #[arg(long, default_value = crate::audit::DEFAULT_COLUMN)]
    pub(super) tenant_column: String,
}

#[derive(Debug, Args)]
pub(super) struct ImportArgs {
    /// The export folder (its manifest.json and CSV files).
    #[arg(value_name = "DIR")]
    pub(super) from: std::path::PathBuf,
    /// Schema to load into.
    #[arg(long, default_value = crate::pg::SCHEMA)]
    pub(super) schema: String,
}
