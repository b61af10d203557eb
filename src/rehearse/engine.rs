//! The rehearsal itself, on three clones of the database (the original is
//! never touched): on *after*, the workload replays, the migration is
//! applied on its own connection after `--before` while a sampler watches
//! locks and blocked sessions, the load is kept up for `--after`; then a
//! paired run of *before* (left as it was) against *after* judges the
//! state after like `compare`; then the rollback is applied under the same
//! load and the schema fingerprint compared with the one taken before the
//! migration; last, on the quiesced third clone, WAL per statement, row
//! counts and the `--validate` queries.

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Client;

use super::apply::{self, Unit};
use super::fingerprint::{self, Fingerprint};
use super::input::{self, ApplyAs};
use super::model::{AfterVsBefore, DataChecks, Failure, Rehearsal, RollbackCheck, StatementRecord};
use super::rules::{self, RuleOptions, TableSizes};
use super::step::{self, StepLoad, StepSession};
use super::{data, state, timeline};
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
    /// Validation queries (`--validate`), each must return true after the
    /// migration and after the rollback, on the quiesced clone.
    pub validate: Option<PathBuf>,
    /// Restart the private server with `wal_level = replica` when it runs
    /// `minimal`, so WAL figures compare with production.
    pub wal_replica: bool,
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

/// Rehearse the migration on clones of `target`'s database.
pub async fn rehearse(target: &Target, opts: &RehearseOptions) -> Result<RehearseOutcome> {
    let plan = Plan::read(opts)?;
    let admin = pg::connect(&target.admin()).await?;
    let sizes = table_sizes(&admin).await?;
    drop(admin);
    let rule_opts = RuleOptions {
        index_limit_bytes: opts.index_limit_bytes,
        apply_as: plan.apply_as,
    };
    let mut findings = rules::check(&plan.migration, &sizes, &rule_opts)?;
    if opts.wal_replica {
        wal_replica(target).await?;
    }
    let folder = RunFolder::prepare(opts.out.as_deref(), "rehearse", opts.access)?;
    let copies = Copies::create(target, opts.workload.is_some()).await?;
    let result = on_copies(&copies, opts, &plan, &folder).await;
    copies.remove_or_warn().await;
    let measured = result?;
    attach_measurements(&mut findings, &measured.statements);
    let rehearsal = Rehearsal {
        format_version: super::model::FORMAT_VERSION,
        crmbench_version: env!("CARGO_PKG_VERSION").into(),
        migration: opts.migration.display().to_string(),
        apply_as: plan.apply_as,
        rollback_file: plan.rollback_path.map(|p| p.display().to_string()),
        findings,
        statements: measured.statements,
        failure: measured.failure,
        workload: measured.workload,
        rollback: measured.rollback,
        after_vs_before: measured.after_vs_before,
        data: Some(measured.data),
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

/// The inputs, read and split before any database work.
struct Plan {
    migration: input::Migration,
    apply_as: ApplyAs,
    rollback_path: Option<PathBuf>,
    units: Vec<Unit>,
    rollback: Option<Vec<Unit>>,
    validate: Vec<Unit>,
}

impl Plan {
    fn read(opts: &RehearseOptions) -> Result<Plan> {
        let migration = input::read_migration(&opts.migration)?;
        let apply_as = opts
            .apply_as
            .unwrap_or_else(|| migration.default_apply_as());
        let rollback_path = opts
            .rollback
            .clone()
            .or_else(|| input::default_rollback(&opts.migration));
        let rollback = match rollback_path.as_deref() {
            Some(p) => Some(apply::units(&input::read_migration(p)?, apply_as)?),
            None => None,
        };
        let validate = match &opts.validate {
            // Each query on its own: one answer per query.
            Some(p) => apply::units(&input::read_migration(p)?, ApplyAs::Statement)?,
            None => Vec::new(),
        };
        Ok(Plan {
            units: apply::units(&migration, apply_as)?,
            migration,
            apply_as,
            rollback_path,
            rollback,
            validate,
        })
    }
}

/// The clones of a rehearsal, all of the original as it was: *after* (the
/// one migrated under load), *before* (left as it was, for the paired
/// comparison; only with a workload) and the quiesced one (data checks).
struct Copies {
    after: WorkingCopy,
    before: Option<WorkingCopy>,
    quiet: WorkingCopy,
}

impl Copies {
    async fn create(target: &Target, paired: bool) -> Result<Copies> {
        let after = WorkingCopy::create(target, Purpose::Rehearse).await?;
        let before = if paired {
            match WorkingCopy::create(target, Purpose::RehearseBefore).await {
                Ok(c) => Some(c),
                Err(e) => {
                    after.remove_or_warn().await;
                    return Err(e);
                }
            }
        } else {
            None
        };
        match WorkingCopy::create(target, Purpose::RehearseQuiet).await {
            Ok(quiet) => Ok(Copies {
                after,
                before,
                quiet,
            }),
            Err(e) => {
                after.remove_or_warn().await;
                if let Some(b) = before {
                    b.remove_or_warn().await;
                }
                Err(e)
            }
        }
    }

    async fn remove_or_warn(self) {
        self.after.remove_or_warn().await;
        if let Some(b) = self.before {
            b.remove_or_warn().await;
        }
        self.quiet.remove_or_warn().await;
    }
}

/// `wal_level = replica` on the private server, restarted that way once
/// (as `pg start --replicas` does): under `minimal` index builds and
/// rewrites skip WAL, so their WAL figures would mean nothing. Another
/// server is left as it is; its setting is recorded.
pub(crate) async fn wal_replica(target: &Target) -> Result<()> {
    if let Target::Private { server, .. } = target {
        if pg::replicas::enable_on_primary(server, 0).await? {
            crate::console::err_line(
                "crmbench: restarted the private server with wal_level = replica, so the \
                 rehearsal's WAL figures compare with production (loads are slower now)",
            );
        }
    }
    Ok(())
}

struct Measured {
    statements: Vec<StatementRecord>,
    failure: Option<Failure>,
    workload: Option<super::model::WorkloadRecord>,
    rollback: Option<RollbackCheck>,
    after_vs_before: Option<AfterVsBefore>,
    data: DataChecks,
}

async fn on_copies(
    copies: &Copies,
    opts: &RehearseOptions,
    plan: &Plan,
    folder: &RunFolder,
) -> Result<Measured> {
    let after = copies.after.target();
    let admin = pg::connect(&after.admin()).await?;
    let before_print = fingerprint::take(&admin).await?;
    let ctx = match &opts.workload {
        Some(w) => Some(WorkloadContext::prepare(&after, w).await?),
        None => None,
    };
    let load = match (&ctx, &opts.workload) {
        (Some(ctx), Some(w)) => Some(step_load(ctx, &after, opts, w).await?),
        _ => None,
    };
    let session = StepSession {
        application: "crmbench rehearse: migration".into(),
        lock_timeout: opts.lock_timeout,
        hold: opts.hold.clone(),
    };
    let step = step::apply_under_load(&after, &plan.units, &session, load.as_ref()).await?;
    let workload = record_load(
        folder,
        None,
        step.results.as_ref(),
        &step.statements,
        load.as_ref(),
    )?;
    let after_vs_before = match (&load, &copies.before, &step.failure) {
        (Some(load), Some(before), None) => Some(
            state::after_vs_before(
                load.ctx,
                &before.target(),
                copies.after.name(),
                &load.run,
                opts.after.max(Duration::from_secs(2)),
                folder,
            )
            .await?,
        ),
        _ => None,
    };
    let rollback = match &plan.rollback {
        Some(units) => Some(
            roll_back(
                &after,
                &admin,
                units,
                &before_print,
                opts,
                load.as_ref(),
                folder,
            )
            .await?,
        ),
        None => None,
    };
    let data = data::check(
        &copies.quiet.target(),
        &plan.units,
        plan.rollback.as_deref(),
        &plan.validate,
    )
    .await?;
    Ok(Measured {
        statements: step.statements,
        failure: step.failure,
        workload,
        rollback,
        after_vs_before,
        data,
    })
}

/// The load of both steps: open loop at the chosen (or probed) rate.
pub(crate) async fn step_load<'a>(
    ctx: &'a WorkloadContext,
    copy: &Target,
    opts: &RehearseOptions,
    workload: &std::path::Path,
) -> Result<StepLoad<'a>> {
    let rate = match opts.load {
        Load::Rate(r) => Some(r),
        Load::Closed => None,
        Load::Probe => Some(probe(ctx, copy, opts, workload).await?),
    };
    Ok(StepLoad {
        ctx,
        run: load_options(opts, workload, rate),
        lead: opts.before,
    })
}

/// Save a step's load results (in `sub`, or the run folder itself) and
/// make its workload record.
pub(crate) fn record_load(
    folder: &RunFolder,
    sub: Option<&str>,
    results: Option<&Results>,
    statements: &[StatementRecord],
    load: Option<&StepLoad<'_>>,
) -> Result<Option<super::model::WorkloadRecord>> {
    let (Some(results), Some(load)) = (results, load) else {
        return Ok(None);
    };
    let path = match sub {
        Some(sub) => {
            RunFolder::open_or_create(&folder.join(sub), folder.access())?.write(results)?
        }
        None => folder.write(results)?,
    };
    Ok(Some(timeline::record(
        results,
        statements,
        load.run.clients,
        results.driver.rate,
        &path.display().to_string(),
    )))
}

/// Apply the rollback under the same load and compare the schema with the
/// one before the migration.
async fn roll_back(
    copy: &Target,
    admin: &Client,
    units: &[Unit],
    before: &Fingerprint,
    opts: &RehearseOptions,
    load: Option<&StepLoad<'_>>,
    folder: &RunFolder,
) -> Result<RollbackCheck> {
    let session = StepSession {
        application: "crmbench rehearse: rollback".into(),
        lock_timeout: opts.lock_timeout,
        hold: None,
    };
    let step = step::apply_under_load(copy, units, &session, load).await?;
    let workload = record_load(
        folder,
        Some(ROLLBACK_FOLDER),
        step.results.as_ref(),
        &step.statements,
        load,
    )?;
    let after = fingerprint::take(admin).await?;
    let difference = before.diff(&after);
    Ok(RollbackCheck {
        statements: step.statements,
        failure: step.failure.map(|f| f.error),
        identical: difference.is_empty(),
        difference,
        workload,
    })
}

/// Folder (inside the run folder) of the load during the rollback.
pub const ROLLBACK_FOLDER: &str = "rollback";

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

pub(crate) fn load_options(
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
        pipeline: false,
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
