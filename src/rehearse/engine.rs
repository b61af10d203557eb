//! The rehearsal itself: a clone of the database, the workload replayed on
//! it, the migration applied on its own connection after `--before` while
//! a sampler watches locks and blocked sessions, the load kept up for
//! `--after`, then the rollback applied and the schema fingerprint compared
//! with the one taken before the migration. The original database is
//! never touched.

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::apply::{self, Unit};
use super::fingerprint::{self, Fingerprint};
use super::input::{self, ApplyAs};
use super::model::{Failure, Rehearsal, RollbackCheck, StatementRecord};
use super::rules::{self, RuleOptions, TableSizes};
use super::{sampler, timeline};
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::Results;
use crate::run::{self, RunOptions};
use crate::runfolder::{Access, RunFolder};
use crate::schema::clone::{Purpose, WorkingCopy};
use crate::workload::context::WorkloadContext;

/// Options of `rehearse`.
#[derive(Debug, Clone)]
pub struct RehearseOptions {
    /// The migration: a file or folder.
    pub migration: PathBuf,
    /// The rollback (default: `rollback.sql` beside `advise`'s `migration.sql`).
    pub rollback: Option<PathBuf>,
    /// How statements are sent (default: Prisma's way for a Prisma folder,
    /// else one statement at a time).
    pub apply_as: Option<ApplyAs>,
    /// The workload replayed during the migration; none: no load.
    pub workload: Option<PathBuf>,
    /// How the workload is driven.
    pub load: Load,
    /// Connections.
    pub clients: usize,
    /// Load before the migration starts.
    pub before: Duration,
    /// Load window after the migration starts.
    pub after: Duration,
    /// `lock_timeout` set on the migration's connection.
    pub lock_timeout: Option<Duration>,
    /// A transaction held open on the clone from just before the migration
    /// (the long reader or writer a deployment meets): SQL and how long.
    pub hold: Option<(String, Duration)>,
    /// Size above which a plain `CREATE INDEX` is a finding.
    pub index_limit_bytes: i64,
    /// Seed of the workload's streams.
    pub seed: u64,
    /// Run folder.
    pub out: Option<PathBuf>,
    /// Who may read the run folder.
    pub access: Access,
}

/// How the workload is driven during a rehearsal.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Load {
    /// Open loop at half the capacity a 2 s closed-loop probe measured on
    /// the clone: loaded, with room, so queueing behind a lock shows.
    Probe,
    /// Open loop at this many transactions/s.
    Rate(f64),
    /// Closed loop on `clients` connections (queueing hides: a blocked
    /// client sends nothing more).
    Closed,
}

/// What `rehearse` produced.
#[derive(Debug)]
pub struct RehearseOutcome {
    /// The record (also in the run folder).
    pub rehearsal: Rehearsal,
    /// The run folder.
    pub folder: PathBuf,
}

/// Rehearse the migration on a clone of `target`'s database.
pub async fn rehearse(target: &Target, opts: &RehearseOptions) -> Result<RehearseOutcome> {
    let migration = input::read_migration(&opts.migration)?;
    let apply_as = opts
        .apply_as
        .unwrap_or_else(|| migration.default_apply_as());
    let rollback_path = opts
        .rollback
        .clone()
        .or_else(|| input::default_rollback(&opts.migration));
    let rollback = rollback_path
        .as_deref()
        .map(input::read_migration)
        .transpose()?;
    let units = apply::units(&migration, apply_as)?;
    let rollback_units = match &rollback {
        Some(r) => Some(apply::units(r, apply_as)?),
        None => None,
    };
    let admin = pg::connect(&target.admin()).await?;
    let sizes = table_sizes(&admin).await?;
    drop(admin);
    let rule_opts = RuleOptions {
        index_limit_bytes: opts.index_limit_bytes,
        apply_as,
    };
    let findings = rules::check(&migration, &sizes, &rule_opts)?;
    let folder = RunFolder::prepare(opts.out.as_deref(), "rehearse", opts.access)?;
    let copy = WorkingCopy::create(target, Purpose::Rehearse).await?;
    let result = on_copy(
        &copy.target(),
        opts,
        &units,
        rollback_units.as_deref(),
        &folder,
    )
    .await;
    copy.remove_or_warn().await;
    let measured = result?;
    let mut findings = findings;
    attach_measurements(&mut findings, &measured.statements);
    let rehearsal = Rehearsal {
        format_version: super::model::FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        migration: opts.migration.display().to_string(),
        apply_as,
        rollback_file: rollback_path.map(|p| p.display().to_string()),
        findings,
        statements: measured.statements,
        failure: measured.failure,
        workload: measured.workload,
        rollback: measured.rollback,
    };
    folder.write(&rehearsal)?;
    if folder.join("results.json").is_file() {
        // The report reads only the folder's files, this one included.
        let model = crate::report::load(folder.path())?;
        crate::report::write(&folder, &model, &crate::report::Format::ALL)?;
    }
    Ok(RehearseOutcome {
        rehearsal,
        folder: folder.path().to_path_buf(),
    })
}

struct Measured {
    statements: Vec<StatementRecord>,
    failure: Option<Failure>,
    workload: Option<super::model::WorkloadRecord>,
    rollback: Option<RollbackCheck>,
}

async fn on_copy(
    copy: &Target,
    opts: &RehearseOptions,
    units: &[Unit],
    rollback: Option<&[Unit]>,
    folder: &RunFolder,
) -> Result<Measured> {
    let admin = pg::connect(&copy.admin()).await?;
    let before_print = fingerprint::take(&admin).await?;
    let migrator = pg::connect(&copy.admin()).await?;
    let pid: i32 = migrator
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| Error::from_pg("starting the migration's connection", e))?
        .get(0);
    migrator
        .batch_execute("SET application_name = 'crmbench rehearse: migration'")
        .await
        .map_err(|e| Error::from_pg("starting the migration's connection", e))?;
    if let Some(t) = opts.lock_timeout {
        migrator
            .batch_execute(&format!("SET lock_timeout = '{}ms'", t.as_millis()))
            .await
            .map_err(|e| Error::from_pg("setting lock_timeout", e))?;
    }
    let clock = Instant::now();
    let wall = chrono::Utc::now();
    let current = Arc::new(AtomicI64::new(-1));
    let stop = Arc::new(AtomicBool::new(false));
    let sampling = tokio::spawn(sampler::sample(
        pg::connect(&copy.admin()).await?,
        pid,
        current.clone(),
        stop.clone(),
        clock,
    ));
    let migrate = async {
        if let Some((sql, hold)) = &opts.hold {
            start_hold(copy, sql, *hold).await?;
        }
        Ok::<_, Error>(apply::apply(&migrator, units, &current, clock).await)
    };
    let (applied, results) = match &opts.workload {
        Some(workload) => {
            let ctx = WorkloadContext::prepare(copy, workload).await?;
            let rate = match opts.load {
                Load::Rate(r) => Some(r),
                Load::Closed => None,
                Load::Probe => Some(probe(&ctx, copy, opts, workload).await?),
            };
            let run_opts = load_options(opts, workload, rate);
            let delayed = async {
                tokio::time::sleep(run_opts.warmup + opts.before).await;
                migrate.await
            };
            let (outcome, applied) = tokio::join!(run::run_with(&ctx, copy, &run_opts), delayed);
            (applied?, Some(outcome?.results))
        }
        None => (migrate.await?, None),
    };
    stop.store(true, Ordering::Release);
    let samples = sampling.await.unwrap_or_default();
    let (mut statements, failure) = applied;
    sampler::fold(&samples, &mut statements);
    let workload = match &results {
        Some(results) => {
            let offset = window_offset(results, wall);
            shift(&mut statements, offset);
            let path = folder.write(results)?;
            Some(timeline::record(
                results,
                &statements,
                opts.clients,
                results.driver.rate,
                &path.display().to_string(),
            ))
        }
        None => None,
    };
    let rollback = match rollback {
        Some(units) => Some(roll_back(&migrator, &admin, units, &before_print, clock).await?),
        None => None,
    };
    Ok(Measured {
        statements,
        failure,
        workload,
        rollback,
    })
}

/// Apply the rollback and compare the schema with the one before.
async fn roll_back(
    migrator: &Client,
    admin: &Client,
    units: &[Unit],
    before: &Fingerprint,
    clock: Instant,
) -> Result<RollbackCheck> {
    let current = Arc::new(AtomicI64::new(-1));
    let (statements, failure) = apply::apply(migrator, units, &current, clock).await;
    let after = fingerprint::take(admin).await?;
    let difference = before.diff(&after);
    Ok(RollbackCheck {
        statements,
        failure: failure.map(|f| f.error),
        identical: difference.is_empty(),
        difference,
    })
}

/// Open a transaction running `sql` on its own connection and keep it open
/// for `hold`, in the background; returns once `sql` has run (its locks
/// are taken).
async fn start_hold(copy: &Target, sql: &str, hold: Duration) -> Result<()> {
    let client = pg::connect(&copy.admin()).await?;
    client
        .batch_execute(&format!(
            "SET application_name = 'crmbench rehearse: held transaction'; BEGIN; {sql}"
        ))
        .await
        .map_err(|e| Error::from_pg("starting the held transaction (--hold)", e))?;
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        let _ = client.batch_execute("COMMIT").await;
    });
    Ok(())
}

/// Half the throughput a short closed-loop run reaches on the clone.
async fn probe(
    ctx: &WorkloadContext,
    copy: &Target,
    opts: &RehearseOptions,
    workload: &std::path::Path,
) -> Result<f64> {
    let mut probe = load_options(opts, workload, None);
    probe.duration = Duration::from_secs(2);
    let results = run::run_with(ctx, copy, &probe).await?.results;
    let tps: f64 = results.queries.iter().map(|q| q.baseline.tps).sum();
    if tps <= 0.0 {
        return Err(Error::State {
            message: "the closed-loop probe completed no transaction, so no rate can be derived"
                .into(),
            fix: "check the workload with `crmbench run --check`, or give --rate".into(),
        });
    }
    Ok(tps / 2.0)
}

fn load_options(
    opts: &RehearseOptions,
    workload: &std::path::Path,
    rate: Option<f64>,
) -> RunOptions {
    RunOptions {
        workload: workload.to_path_buf(),
        clients: opts.clients,
        threads: opts.clients.clamp(1, 2),
        duration: opts.before + opts.after,
        warmup: Duration::from_millis(200),
        rate,
        arrivals: run::driver::Arrivals::Poisson,
        seed: opts.seed,
        fresh: false,
        candidate_url: None,
        candidate_database: None,
        self_check: false,
        // Errors are what a rehearsal measures, never a reason to stop.
        max_error_rate: 1.0,
        interval: Duration::from_millis(250),
        max_tries: 1,
        simple: false,
        quiet: true,
        pooler_url: None,
        replica_urls: Vec::new(),
        // The clone is not on the replicas: reads stay on it.
        private_replicas: false,
        sequential: None,
        worker: None,
        start_at: None,
        trace_params: 0,
    }
}

/// Seconds from the rehearsal's clock start to the window's start.
fn window_offset(results: &Results, wall: chrono::DateTime<chrono::Utc>) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&results.started_at)
        .map(|s| {
            (s.with_timezone(&chrono::Utc) - wall)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6
        })
        .unwrap_or(0.0)
}

fn shift(statements: &mut [StatementRecord], offset: f64) {
    for s in statements {
        s.start_s -= offset;
        s.end_s -= offset;
    }
}

/// Every user table's total size (heap, indexes, TOAST).
async fn table_sizes(client: &Client) -> Result<TableSizes> {
    let rows = client
        .query(
            "SELECT n.nspname, c.relname, pg_total_relation_size(c.oid) FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind IN ('r', 'p', 'm') \
             AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname NOT LIKE 'pg_toast%'",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading table sizes", e))?;
    let mut sizes = TableSizes::default();
    for r in rows {
        sizes.insert(r.get(0), r.get(1), r.get(2));
    }
    Ok(sizes)
}

/// Give each finding what was measured for its statement: the unit that
/// starts on its line, or (a whole file sent as one query) its file's unit.
fn attach_measurements(findings: &mut [rules::Finding], statements: &[StatementRecord]) {
    for f in findings {
        let unit = statements
            .iter()
            .find(|s| s.file == f.file && s.line == f.line)
            .or_else(|| statements.iter().find(|s| s.file == f.file && s.line == 1));
        f.measured = unit.map(|s| rules::MeasuredEffect {
            duration_ms: s.duration_ms,
            lock_wait_ms: s.lock_wait_ms,
            blocked: s.blocked,
            longest_block_ms: s.longest_block_ms,
            sqlstate: s.error.as_ref().map(|e| e.sqlstate.clone()),
        });
    }
}
