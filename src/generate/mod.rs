//! `crmbench generate`: fill the CRM schema with a realistic, skewed,
//! deterministic multi-tenant dataset at COPY speed.
//!
//! Order of work (as `pgbench -i` does): create bare tables, load every table
//! with binary COPY FREEZE on `--jobs` connections, then build keys and
//! indexes (in parallel per table), foreign keys, row-level security and
//! grants, advance the identity sequences, ANALYZE, and only then mark the
//! dataset complete. An interrupted load leaves it marked incomplete.

pub mod calendar;
pub mod checksum;
pub mod copy;
pub mod ddl;
pub mod domain;
pub mod encode;
pub mod plan;
pub mod progress;
pub mod rows;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde::{Deserialize, Serialize};
use tokio::task::JoinSet;

use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec, SCHEMA, Target, roles};
use crate::schema::tables::{TABLES, TENANT_TABLES};
use crate::schema::{self, Ownership, Step};
use copy::LoadState;
use plan::Plan;
use progress::Progress;

/// Version of the generator's output: bumped whenever the same seed and scale
/// would give different rows.
pub const GENERATOR_VERSION: &str = "1";

/// Bytes that land (heap + indexes + TOAST) per scale unit, measured on
/// PostgreSQL 15 (see the README's table). Used for the free-disk check.
pub const BYTES_PER_SCALE: f64 = 4.2e9;

/// Options of `generate`.
#[derive(Debug, Clone)]
pub struct GenerateOptions {
    /// Dataset size; 1 ≈ 1M customers.
    pub scale: f64,
    /// Seed of every random stream.
    pub seed: u64,
    /// Parallel loader connections.
    pub jobs: usize,
    /// Replace an existing crmbench dataset.
    pub replace: bool,
    /// No progress output.
    pub quiet: bool,
    /// Run folder for `generate.json`.
    pub out: Option<PathBuf>,
    /// Who may read the run folder's files.
    pub access: crate::runfolder::Access,
}

/// One table's figures.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TableReport {
    /// Table name.
    pub table: String,
    /// Rows loaded.
    pub rows: u64,
    /// Heap + indexes + TOAST after the build, bytes.
    pub bytes: i64,
    /// Seconds spent in COPY.
    pub load_seconds: f64,
    /// Seconds spent building its keys and indexes.
    pub index_seconds: f64,
}

/// What `generate.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct GenerateReport {
    /// Version of this file's format.
    pub format_version: u32,
    /// crmbench version.
    pub crmbench_version: String,
    /// Generator version (see [`GENERATOR_VERSION`]).
    pub generator_version: String,
    /// `--seed`.
    pub seed: u64,
    /// `--scale`.
    pub scale: f64,
    /// The dataset's fixed "today".
    pub epoch: String,
    /// Loader connections.
    pub jobs: usize,
    /// Tenants generated.
    pub tenants: usize,
    /// Per table.
    pub tables: Vec<TableReport>,
    /// Rows in all tables.
    pub total_rows: u64,
    /// Bytes that landed (tables + indexes).
    pub total_bytes: i64,
    /// Wall-clock seconds of the pipelined phase: each table's COPY, then its
    /// keys, indexes and ANALYZE, on `jobs` connections.
    pub load_seconds: f64,
    /// Sum over tables of COPY seconds (connection-seconds, not wall clock).
    pub copy_seconds: f64,
    /// Sum over tables of key, index and ANALYZE seconds (connection-seconds).
    pub index_seconds: f64,
    /// Wall-clock seconds adding and validating foreign keys, RLS, grants,
    /// sequence updates.
    pub build_seconds: f64,
    /// Wall-clock seconds end to end.
    pub total_seconds: f64,
    /// total_rows / total_seconds.
    pub rows_per_second: f64,
    /// total_bytes / total_seconds, in MB (10^6 bytes).
    pub mb_per_second: f64,
    /// Peak resident memory of crmbench, kB (VmHWM).
    pub peak_rss_kb: Option<u64>,
}

fn validate(opts: &GenerateOptions) -> Result<()> {
    if !(opts.scale.is_finite() && opts.scale > 0.0) {
        return Err(Error::Usage {
            message: format!("--scale must be a positive number, got {}", opts.scale),
            fix: "use e.g. --scale 0.01 (≈10k customers) or --scale 1 (≈1M customers)".into(),
        });
    }
    if opts.scale > 10_000.0 {
        return Err(Error::Usage {
            message: format!("--scale {} is beyond what crmbench plans for", opts.scale),
            fix: "use a scale of at most 10000".into(),
        });
    }
    if opts.jobs == 0 {
        return Err(Error::Usage {
            message: "--jobs must be at least 1".into(),
            fix: "omit --jobs to use one connection per core".into(),
        });
    }
    Ok(())
}

/// Seconds per table: (COPY, keys + indexes + ANALYZE).
type TableTimings = BTreeMap<String, (f64, f64)>;

/// Run `generate` against `target`: prepare the database, load, build, and
/// mark the dataset complete. Writes nothing outside the database; see
/// [`write_report`] for `generate.json`.
pub async fn generate(target: &Target, opts: &GenerateOptions) -> Result<GenerateReport> {
    validate(opts)?;
    let started = Instant::now();
    let plan = Arc::new(Plan::new(opts.seed, opts.scale));
    let expected_bytes = BYTES_PER_SCALE * opts.scale;
    let admin = prepare_database(target, opts, &plan, expected_bytes).await?;
    let loader = loader_spec(target, &admin).await?;

    let total_rows: u64 = copy::load_order().iter().map(|t| plan.rows(t)).sum();
    let mut progress = Progress::new(total_rows, expected_bytes, opts.quiet);
    progress.phase(&format!(
        "{} tenants, {total_rows} rows, ≈{:.0} MB, {} connections",
        plan.tenants.len(),
        expected_bytes / 1e6,
        opts.jobs
    ));
    let state = Arc::new(LoadState::default());
    let load_started = Instant::now();
    let load = run_load(
        plan.clone(),
        loader.clone(),
        opts.jobs,
        state.clone(),
        &mut progress,
    );
    let timings = with_interrupt(&state, load).await?;
    let load_seconds = load_started.elapsed().as_secs_f64();
    progress.finish();

    progress.phase("adding foreign keys, row-level security, grants; advancing sequences");
    let build_started = Instant::now();
    with_interrupt(&state, build_foreign_keys(&loader, opts.jobs)).await?;
    with_interrupt(&state, advance_sequences(&loader)).await?;
    let build_seconds = build_started.elapsed().as_secs_f64();

    let tables = table_reports(&admin, &plan, &timings).await?;
    let report = GenerateReport::new(
        opts,
        &plan,
        tables,
        &timings,
        load_seconds,
        build_seconds,
        started,
    );
    mark_complete(target, &admin, &report).await?;
    Ok(report)
}

/// Everything before the load: the server's roles and database, the schema
/// decision (`--replace`), free disk, then the bare tables and the marker,
/// committed so that from here on an interruption leaves a dataset marked
/// incomplete. Returns the admin connection.
async fn prepare_database(
    target: &Target,
    opts: &GenerateOptions,
    plan: &Plan,
    expected_bytes: f64,
) -> Result<tokio_postgres::Client> {
    pg::bootstrap_private(target).await?;
    let admin = pg::connect(&target.admin()).await?;
    schema::check_create_privilege(&admin, target.database()).await?;
    roles::ensure(target, &admin).await?;
    prepare_schema(target, &admin, opts).await?;
    check_disk(target, expected_bytes)?;
    create_bare(&admin, plan).await?;
    Ok(admin)
}

/// The loaders' connection: as the schema owner unless the admin is a superuser.
async fn loader_spec(target: &Target, admin: &tokio_postgres::Client) -> Result<ConnSpec> {
    let superuser: bool = admin
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking superuser", e))?
        .get(0);
    let mut loader = target.admin();
    if !superuser {
        loader.set_role = Some(roles::OWNER.into());
    }
    Ok(loader)
}

/// Each table's rows, size on disk and timings, in [`copy::load_order`].
async fn table_reports(
    admin: &tokio_postgres::Client,
    plan: &Plan,
    timings: &TableTimings,
) -> Result<Vec<TableReport>> {
    let mut tables = Vec::new();
    for table in copy::load_order() {
        let bytes: i64 = admin
            .query_one(
                "SELECT pg_total_relation_size(format('crm.%I', $1::text)::regclass)",
                &[&table],
            )
            .await
            .map_err(|e| Error::from_pg(format!("sizing crm.{table}"), e))?
            .get(0);
        let generated = TABLES.iter().any(|t| t.name == table && t.is_generated());
        tables.push(TableReport {
            table: table.to_string(),
            rows: if generated { plan.rows(table) } else { 0 },
            bytes,
            load_seconds: timings.get(table).map_or(0.0, |t| t.0),
            index_seconds: timings.get(table).map_or(0.0, |t| t.1),
        });
    }
    Ok(tables)
}

impl GenerateReport {
    /// Assemble the report from the phases' figures.
    fn new(
        opts: &GenerateOptions,
        plan: &Plan,
        tables: Vec<TableReport>,
        timings: &TableTimings,
        load_seconds: f64,
        build_seconds: f64,
        started: Instant,
    ) -> GenerateReport {
        let total_seconds = started.elapsed().as_secs_f64();
        let total_rows: u64 = tables.iter().map(|t| t.rows).sum();
        let total_bytes: i64 = tables.iter().map(|t| t.bytes).sum();
        GenerateReport {
            format_version: 1,
            crmbench_version: env!("CARGO_PKG_VERSION").into(),
            generator_version: GENERATOR_VERSION.into(),
            seed: opts.seed,
            scale: opts.scale,
            epoch: plan.epoch().to_string(),
            jobs: opts.jobs,
            tenants: plan.tenants.len(),
            total_rows,
            total_bytes,
            load_seconds,
            copy_seconds: timings.values().map(|t| t.0).sum(),
            index_seconds: timings.values().map(|t| t.1).sum(),
            build_seconds,
            total_seconds,
            rows_per_second: total_rows as f64 / total_seconds,
            mb_per_second: total_bytes as f64 / 1e6 / total_seconds,
            peak_rss_kb: peak_rss_kb(),
            tables,
        }
    }
}

/// The last step: extensions as `schema create` adds them, then the marker
/// says complete, with the report in its details.
async fn mark_complete(
    target: &Target,
    admin: &tokio_postgres::Client,
    report: &GenerateReport,
) -> Result<()> {
    let details = serde_json::to_value(report).map_err(|e| Error::Internal {
        message: format!("serializing the load report: {e}"),
        fix: String::new(),
    })?;
    // As `schema create` does: HypoPG and pg_stat_statements when available.
    schema::extensions::ensure(target, admin).await?;
    admin
        .execute(
            &format!("UPDATE {SCHEMA}.crmbench_meta SET complete = true, details = $1"),
            &[&details],
        )
        .await
        .map_err(|e| Error::from_pg("marking the dataset complete", e))?;
    Ok(())
}

/// Write `generate.json` into the run folder (`opts.out`, or a new one).
pub fn write_report(report: &GenerateReport, opts: &GenerateOptions) -> Result<PathBuf> {
    crate::runfolder::RunFolder::prepare(opts.out.as_deref(), "generate", opts.access)?
        .write(report)
}

/// The per-table lines `crmbench generate` prints (unless `--quiet`).
pub fn render_table(report: &GenerateReport) -> String {
    let mut out = format!(
        "{:<20} {:>10} {:>10} {:>8} {:>8}\n",
        "table", "rows", "MB", "load s", "index s"
    );
    for t in &report.tables {
        out.push_str(&format!(
            "{:<20} {:>10} {:>10.1} {:>8.2} {:>8.2}\n",
            t.table,
            t.rows,
            t.bytes as f64 / 1e6,
            t.load_seconds,
            t.index_seconds
        ));
    }
    out
}

/// What `crmbench generate` prints after the table: the one-line summary of
/// a load into `target` (its redacted description) and where the report went.
pub fn render_summary(report: &GenerateReport, target: &str, written: &Path) -> String {
    format!(
        "crmbench: generated seed {} scale {} on {target}: {} tenants, {} rows, {:.0} MB in {:.1} s \
         ({:.0} rows/s, {:.1} MB/s; load+indexes {:.1} s, foreign keys+RLS {:.1} s)\n  report: {}\n",
        report.seed,
        report.scale,
        report.tenants,
        report.total_rows,
        report.total_bytes as f64 / 1e6,
        report.total_seconds,
        report.rows_per_second,
        report.mb_per_second,
        report.load_seconds,
        report.build_seconds,
        written.display()
    )
}

/// Decide what to do with what is already there.
async fn prepare_schema(
    target: &Target,
    admin: &tokio_postgres::Client,
    opts: &GenerateOptions,
) -> Result<()> {
    let drop = || async {
        admin
            .batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
            .await
            .map_err(|e| Error::from_pg(format!("DROP SCHEMA {SCHEMA}"), e))
    };
    match schema::ownership(admin).await? {
        Ownership::Absent => Ok(()),
        Ownership::Foreign(reason) => Err(Error::NotOurs {
            action: format!(
                "load a dataset into schema {SCHEMA} of database {}",
                target.database()
            ),
            reason,
        }),
        Ownership::Ours { .. } if opts.replace => drop().await,
        Ownership::Ours {
            seed: None,
            complete: true,
            ..
        } => {
            // An empty schema from `schema create`: nothing to lose.
            let tenants: i64 = admin
                .query_one(&format!("SELECT count(*) FROM {SCHEMA}.tenants"), &[])
                .await
                .map_err(|e| Error::from_pg("counting tenants", e))?
                .get(0);
            if tenants == 0 {
                drop().await
            } else {
                Err(Error::State {
                    message: format!(
                        "schema {SCHEMA} in database {} holds {tenants} tenants that crmbench did not generate",
                        target.database()
                    ),
                    fix: "pass --replace to drop them and load a dataset".into(),
                })
            }
        }
        Ownership::Ours {
            complete: false,
            seed,
            scale,
        } => Err(Error::State {
            message: format!(
                "database {} holds an INCOMPLETE dataset (seed {}, scale {}): an earlier load was interrupted",
                target.database(),
                seed.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                scale.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            ),
            fix: "pass --replace to reload it".into(),
        }),
        Ownership::Ours { seed, scale, .. } => Err(Error::State {
            message: format!(
                "database {} already holds a dataset (seed {}, scale {})",
                target.database(),
                seed.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
                scale.map(|s| s.to_string()).unwrap_or_else(|| "?".into()),
            ),
            fix: "pass --replace to replace it".into(),
        }),
    }
}

fn check_disk(target: &Target, expected_bytes: f64) -> Result<()> {
    let Target::Private { server, .. } = target else {
        tracing::info!("free disk of an external server cannot be checked from here");
        return Ok(());
    };
    let dir = server.data_dir();
    let stat = nix::sys::statvfs::statvfs(&dir).map_err(|e| {
        Error::io(
            "checking free space of",
            &dir,
            std::io::Error::from_raw_os_error(e as i32),
        )
    })?;
    let free = stat.blocks_available() as f64 * stat.fragment_size() as f64;
    // Room for the data, the index builds' sort files, and WAL.
    let needed = expected_bytes * 1.3;
    if free < needed {
        return Err(Error::State {
            message: format!(
                "not enough free disk in {}: the dataset needs about {:.1} GB, {:.1} GB are free",
                dir.display(),
                needed / 1e9,
                free / 1e9
            ),
            fix: "free space, lower --scale, or put the private server elsewhere with --data-dir"
                .into(),
        });
    }
    Ok(())
}

async fn create_bare(admin: &tokio_postgres::Client, plan: &Plan) -> Result<()> {
    admin
        .batch_execute("BEGIN")
        .await
        .map_err(|e| Error::from_pg("BEGIN", e))?;
    let result = async {
        // A Transaction borrows the client mutably; plain BEGIN/COMMIT keeps it shared.
        admin
            .batch_execute(&format!(
                "CREATE SCHEMA {SCHEMA} AUTHORIZATION {}; SET LOCAL ROLE {}",
                pg::quote_ident(roles::OWNER),
                pg::quote_ident(roles::OWNER)
            ))
            .await
            .map_err(|e| Error::from_pg(format!("CREATE SCHEMA {SCHEMA}"), e))?;
        for step in [Step::Meta, Step::Tables, Step::Lookups] {
            admin.batch_execute(step.sql()).await.map_err(|e| {
                Error::from_pg(format!("running {} (embedded schema)", step.file()), e)
            })?;
        }
        let scale = plan.scale;
        let seed = plan.seed as i64;
        let epoch = plan.epoch();
        admin
            .execute(
                &format!(
                    "INSERT INTO {SCHEMA}.crmbench_meta (tool, schema_version, crmbench_version, \
                     complete, seed, scale, generator_version, epoch) \
                     VALUES ('crmbench', $1, $2, false, $3, $4, $5, $6)"
                ),
                &[
                    &schema::SCHEMA_VERSION,
                    &env!("CARGO_PKG_VERSION"),
                    &seed,
                    &scale,
                    &GENERATOR_VERSION,
                    &epoch,
                ],
            )
            .await
            .map_err(|e| Error::from_pg("writing crm.crmbench_meta", e))?;
        Ok::<(), Error>(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    admin
        .batch_execute(end)
        .await
        .map_err(|e| Error::from_pg(end, e))?;
    result
}

/// Run `work`; on a stop signal (Ctrl-C, SIGTERM, SIGHUP; see
/// [`crate::signals`]) set the cancel flag, let the work stop, and report
/// the interruption.
async fn with_interrupt<T>(
    state: &Arc<LoadState>,
    work: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    tokio::select! {
        r = work => r,
        _ = crate::signals::stop_requested() => {
            state.cancel.store(true, Ordering::Relaxed);
            Err(Error::Interrupted { during: "generating the dataset (marked incomplete)".into() })
        }
    }
}

/// The COPY phase: `jobs` OS threads, each with its own runtime and connection
/// (generation is CPU work), taking tables largest first.
async fn run_load(
    plan: Arc<Plan>,
    spec: ConnSpec,
    jobs: usize,
    state: Arc<LoadState>,
    progress: &mut Progress,
) -> Result<TableTimings> {
    let mut queue: Vec<&'static str> = copy::load_order();
    queue.sort_by_key(|t| plan.rows(t)); // popped from the end: largest first
    let queue = Arc::new(Mutex::new(queue));
    let per_table = Arc::new(ddl::post_load_plan().0);
    let timings = Arc::new(Mutex::new(BTreeMap::new()));
    let worker_state = state.clone();
    let worker_timings = timings.clone();
    let handle = tokio::task::spawn_blocking(move || {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..jobs)
                .map(|_| {
                    let (plan, spec, queue, state, timings, per_table) = (
                        plan.clone(),
                        spec.clone(),
                        queue.clone(),
                        worker_state.clone(),
                        worker_timings.clone(),
                        per_table.clone(),
                    );
                    scope.spawn(move || {
                        load_worker(&plan, &spec, &queue, &state, &per_table, &timings)
                    })
                })
                .collect();
            let mut first_error = None;
            for h in handles {
                let result = h.join().unwrap_or_else(|_| {
                    Err(Error::Internal {
                        message: "a loader thread panicked".into(),
                        fix: "report this as a bug".into(),
                    })
                });
                if let Err(e) = result {
                    worker_state.cancel.store(true, Ordering::Relaxed);
                    // Keep the root cause, not a sibling's "interrupted".
                    if first_error.is_none()
                        || matches!(first_error, Some(Error::Interrupted { .. }))
                    {
                        first_error = Some(e);
                    }
                }
            }
            first_error.map_or(Ok(()), Err)
        })
    });
    let mut handle = handle;
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(500));
    let result = loop {
        tokio::select! {
            r = &mut handle => break r,
            _ = tick.tick() => progress.update(state.rows.load(Ordering::Relaxed)),
        }
    };
    progress.update(state.rows.load(Ordering::Relaxed));
    result.map_err(|e| Error::Internal {
        message: format!("the load was aborted: {e}"),
        fix: String::new(),
    })??;
    let timings = timings.lock().map(|t| t.clone()).unwrap_or_default();
    Ok(timings)
}

fn load_worker(
    plan: &Plan,
    spec: &ConnSpec,
    queue: &Mutex<Vec<&'static str>>,
    state: &Arc<LoadState>,
    per_table: &BTreeMap<String, Vec<String>>,
    timings: &Mutex<TableTimings>,
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| Error::io("starting a loader runtime", "tokio", e))?;
    rt.block_on(async {
        let mut client = pg::connect(spec).await?;
        loop {
            if state.cancel.load(Ordering::Relaxed) {
                return Err(Error::Interrupted {
                    during: "loading".into(),
                });
            }
            let next = queue.lock().ok().and_then(|mut q| q.pop());
            let Some(table) = next else { return Ok(()) };
            let started = Instant::now();
            copy::load_table(&mut client, plan, table, state).await?;
            let loaded = started.elapsed().as_secs_f64();
            // Pipelined: this table's keys, indexes and statistics are built
            // right away, while other workers still load.
            let built = Instant::now();
            for sql in per_table.get(table).map(Vec::as_slice).unwrap_or_default() {
                client.batch_execute(sql).await.map_err(|e| {
                    Error::from_pg(format!("building keys of crm.{table}: {sql}"), e)
                })?;
            }
            client
                .batch_execute(&format!("ANALYZE crm.{table}"))
                .await
                .map_err(|e| Error::from_pg(format!("ANALYZE crm.{table}"), e))?;
            if let Ok(mut t) = timings.lock() {
                t.insert(table.to_string(), (loaded, built.elapsed().as_secs_f64()));
            }
        }
    })
}

/// Foreign keys (every table's keys exist by now), then RLS and grants.
async fn build_foreign_keys(spec: &ConnSpec, jobs: usize) -> Result<()> {
    let (_, foreign) = ddl::post_load_plan();
    // Foreign keys: added NOT VALID one by one (each briefly locks two
    // tables), then validated in parallel (VALIDATE takes weaker locks).
    let client = pg::connect(spec).await?;
    let mut validations = Vec::new();
    for fk in &foreign {
        let sql = format!("{fk} NOT VALID");
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(format!("adding foreign key: {fk}"), e))?;
        if let Some(v) = ddl::validate_statement(fk) {
            validations.push(v);
        }
    }
    let validations = Arc::new(Mutex::new(validations));
    let mut set = JoinSet::new();
    for _ in 0..jobs {
        let (spec, validations) = (spec.clone(), validations.clone());
        set.spawn(async move {
            let client = pg::connect(&spec).await?;
            loop {
                let next = validations.lock().ok().and_then(|mut v| v.pop());
                let Some(sql) = next else {
                    return Ok::<(), Error>(());
                };
                client
                    .batch_execute(&sql)
                    .await
                    .map_err(|e| Error::from_pg(format!("validating: {sql}"), e))?;
            }
        });
    }
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| Error::Internal {
            message: format!("a foreign key validation task failed: {e}"),
            fix: String::new(),
        })??;
    }
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL ROLE {}; {} {} COMMIT;",
            pg::quote_ident(roles::OWNER),
            Step::Rls.sql(),
            Step::Grants.sql()
        ))
        .await
        .map_err(|e| Error::from_pg("enabling row-level security and grants", e))?;
    Ok(())
}

/// Advance identity sequences past the loaded ids.
async fn advance_sequences(spec: &ConnSpec) -> Result<()> {
    let client = pg::connect(spec).await?;
    for table in TENANT_TABLES {
        client
            .batch_execute(&format!(
                "SELECT setval(pg_get_serial_sequence('crm.{table}', 'id'), \
                 greatest(coalesce(max(id), 0), 1)) FROM crm.{table}"
            ))
            .await
            .map_err(|e| Error::from_pg(format!("advancing the id sequence of crm.{table}"), e))?;
    }
    Ok(())
}

/// Peak resident set size of this process (Linux), kB.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn opts(scale: f64, jobs: usize) -> GenerateOptions {
        GenerateOptions {
            scale,
            seed: 1,
            jobs,
            replace: false,
            quiet: true,
            out: None,
            access: crate::runfolder::Access::Private,
        }
    }

    #[test]
    fn bad_arguments_are_refused_clearly() {
        for scale in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            let err = validate(&opts(scale, 1)).unwrap_err();
            assert!(err.to_string().contains("--scale"), "{err}");
        }
        let err = validate(&opts(0.01, 0)).unwrap_err();
        assert!(err.to_string().contains("--jobs"), "{err}");
        assert!(validate(&opts(0.001, 2)).is_ok());
    }
}
