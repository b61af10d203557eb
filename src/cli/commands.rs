//! Each command: its arguments mapped to its stage's functions, and the
//! text they return printed.

use std::path::PathBuf;

use super::args::{
    AdviseArgs, CaptureArgs, CompareArgs, DemoArgs, ExplainArgs, GenerateArgs, PgCommand,
    RehearseArgs, ReportArgs, RunArgs, SchemaCommand,
};
use super::values::{CompareFormat, Protocol};
use super::{EXIT_OK, err_line, out};
use crate::error::{Error, Result};
use crate::explain::SampledValues;
use crate::pg::{self, Target, TargetOptions};
use crate::runfolder::Access;
use crate::schema;
use crate::workload::context::WorkloadContext;

/// The text a `pg` command prints.
pub(super) async fn pg_command(cmd: PgCommand, opts: &TargetOptions) -> Result<String> {
    match cmd {
        PgCommand::Start {
            pooler,
            pool_size,
            replicas,
        } => {
            let mut text = pg::manage::start(opts).await?;
            if let Some(n) = replicas {
                text.push_str(&pg::manage::start_replicas(opts, n).await?);
            }
            if pooler {
                text.push_str(&pg::manage::start_pooler(opts, pool_size)?);
            }
            Ok(text)
        }
        PgCommand::Stop => pg::manage::stop(opts),
        PgCommand::Status => pg::manage::status(opts).await,
        PgCommand::Url { app } => pg::manage::url(opts, app),
    }
}

/// The text a `schema` command prints.
pub(super) async fn schema_command(cmd: SchemaCommand, opts: &TargetOptions) -> Result<String> {
    let (target, _) = Target::resolve(opts, true)?;
    Ok(match cmd {
        SchemaCommand::Create { replace } => {
            let report = schema::create(&target, &schema::CreateOptions { replace }).await?;
            report.render(target.database(), &target.describe())
        }
        SchemaCommand::Drop => {
            let mut out = schema::drop(&target).await?.render(target.database());
            if opts.database.is_some() {
                out += &schema::drop_dataset(&target)
                    .await?
                    .render(target.database());
            }
            out
        }
        SchemaCommand::Clone { to, replace } => {
            schema::clone::clone_database(&target, &to, replace)
                .await?
                .render()
        }
        SchemaCommand::DropClone { name } => {
            let dropped = schema::clone::drop_clone(&target, &name).await?;
            schema::clone::render_drop(&name, dropped)
        }
        SchemaCommand::Gc => schema::gc::gc(&target).await?.render(),
        SchemaCommand::DistributeSql {
            shards,
            nodes,
            workload,
        } => {
            crate::distribute::distribution(&target, shards, nodes, &workload)
                .await?
                .sql
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
        .map_err(|e| Error::Internal {
            message: format!("serializing output: {e}"),
            fix: String::new(),
        })
}

pub(super) async fn generate_command(
    args: GenerateArgs,
    opts: &TargetOptions,
    access: Access,
) -> Result<()> {
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
        out(crate::generate::render_table(&report))?;
    }
    out(crate::generate::render_summary(
        &report,
        &target.describe(),
        &path,
    ))?;
    Ok(())
}

/// Where the benchmark clients connect when a pooler is asked for: the
/// private PgBouncer (`--pooler`, which must be running) or `--pooler-url`.
fn pooler_url(args: &RunArgs, target: &Target) -> Result<Option<String>> {
    if !args.pooler {
        return Ok(args.pooler_url.clone());
    }
    let Target::Private { server, database } = target else {
        return Err(Error::Usage {
            message: "--pooler means the PgBouncer crmbench starts in front of its private server"
                .into(),
            fix: "for a pooler in front of a --database-url server pass --pooler-url URL".into(),
        });
    };
    if args.protocol != Protocol::Simple {
        return Err(Error::Usage {
            message: "PgBouncer 1.18 in transaction mode cannot keep prepared statements \
                      (they belong to a server connection the next transaction may not get; \
                      1.21+ can with max_prepared_statements)"
                .into(),
            fix: "add --protocol simple".into(),
        });
    }
    match crate::pg::pooler::Pooler::open(server)? {
        Some(p) if p.is_running() => Ok(Some(p.url(crate::pg::roles::APP, database))),
        _ => Err(Error::State {
            message: "no PgBouncer is running in front of the private server".into(),
            fix: "crmbench pg start --pooler".into(),
        }),
    }
}

/// `run --pooler --pool-sizes …`: the sweep, its table, curve and advice.
async fn pool_sizes_command(
    args: &RunArgs,
    target: &Target,
    options: &crate::run::RunOptions,
    access: Access,
) -> Result<u8> {
    let Target::Private { server, .. } = target else {
        return Err(Error::Internal {
            message: "--pool-sizes without the private pooler".into(),
            fix: String::new(),
        });
    };
    crate::run::check_options(options)?;
    let ctx = WorkloadContext::prepare(target, &args.workload).await?;
    let curve =
        crate::run::poolsize::sweep(&ctx, target, server, &args.pool_sizes, options).await?;
    let folder = crate::runfolder::RunFolder::prepare(args.out.as_deref(), "pool-sizes", access)?;
    folder.write(&curve)?;
    folder.write_text("pool-sizes.svg", &crate::run::poolsize::plot(&curve)?)?;
    out(crate::run::poolsize::render(&curve, folder.path()))?;
    Ok(EXIT_OK)
}

pub(super) async fn run_command(args: RunArgs, opts: &TargetOptions, access: Access) -> Result<u8> {
    // A workload file that cannot be read is refused before any server starts.
    crate::workload::Workload::load(&args.workload)?;
    let (target, _) = Target::resolve(opts, true)?;
    if args.check {
        let ctx = WorkloadContext::prepare(&target, &args.workload).await?;
        out(format!(
            "crmbench: {} is valid: {} queries prepared and run once (rolled back) on {} as {}\n",
            args.workload.display(),
            ctx.workload().queries.len(),
            target.describe(),
            ctx.runs_as()
        ))?;
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
        pipeline: args.protocol == Protocol::Pipeline,
        quiet: args.quiet,
        pooler_url: pooler_url(&args, &target)?,
        replica_urls: args.replica_urls.clone(),
        private_replicas: !args.no_replicas,
        sequential: None,
        worker: args.worker,
        start_at: args.start_at,
        trace_params: args.trace_params,
    };
    let options = sequential_options(&args, options);
    if !args.pool_sizes.is_empty() {
        return pool_sizes_command(&args, &target, &options, access).await;
    }
    crate::run::check_options(&options)?;
    let mut ctx = WorkloadContext::prepare(&target, &args.workload).await?;
    if let Some(form) = args.tenant_frame {
        ctx = ctx.with_frame_form(form.into());
    }
    crate::run::check_room(args.out.as_deref(), ctx.workload(), &options)?;
    let outcome = crate::run::run_with(&ctx, &target, &options).await?;
    // The table first: on a full disk it is what the user still gets.
    // A failure to print does not keep the results from being saved.
    let printed = out(crate::run::render_table(&outcome.results));
    let path = crate::run::save_outcome(args.out.as_deref(), &outcome, access)?;
    printed?;
    out(format!("  results: {}\n", path.display()))?;
    let ending = outcome.ending(&path, args.max_error_rate, args.self_check);
    for line in &ending.stderr {
        err_line(line);
    }
    for line in &ending.stdout {
        out(format!("{line}\n"))?;
    }
    Ok(outcome.exit_code())
}

/// `--until-decided`: the window lasts at most --max-duration.
fn sequential_options(
    args: &RunArgs,
    mut options: crate::run::RunOptions,
) -> crate::run::RunOptions {
    if args.until_decided {
        options.duration = args.max_duration;
        options.sequential = Some(crate::run::sequential::SequentialOptions {
            threshold: args.threshold,
            metric: args.metric.into(),
            min: args.min_duration,
            look_every: args.look_every.max(std::time::Duration::from_secs(1)),
            gate_queries: args.gate_queries.clone(),
        });
    }
    options
}

pub(super) async fn explain_command(
    args: ExplainArgs,
    opts: &TargetOptions,
    access: Access,
) -> Result<()> {
    // A workload file that cannot be read is refused before any server starts.
    crate::workload::Workload::load(&args.workload)?;
    let (target, _) = Target::resolve(opts, true)?;
    let redaction = match (args.redact_values, args.no_redact_values) {
        (true, _) => SampledValues::Redact,
        (_, true) => SampledValues::Keep,
        _ => SampledValues::default_for(&target),
    };
    let ctx = WorkloadContext::prepare(&target, &args.workload).await?;
    let file = crate::explain::explain_with(&ctx, &target, args.seed, redaction).await?;
    let path = crate::explain::write_plans(args.out.as_deref(), &file, access)?;
    out(crate::explain::render_summary(&file))?;
    out(format!("  plans: {}\n", path.display()))?;
    Ok(())
}

pub(super) async fn advise_command(
    args: AdviseArgs,
    opts: &TargetOptions,
    access: Access,
) -> Result<u8> {
    // A workload file that cannot be read is refused before any server starts.
    crate::workload::Workload::load(&args.workload)?;
    let (target, _) = Target::resolve(opts, true)?;
    let request = crate::advise::AdviseRequest {
        workload: args.workload,
        max_indexes: args.max_indexes,
        budget_mb: args.budget_mb,
        seed: args.seed,
        verify: args.verify,
        no_hypopg: args.no_hypopg,
        keep_hypopg: args.keep_hypopg,
        apply: args.apply,
        verify_duration: args.verify_duration,
        verify_clients: args.verify_clients,
        prisma_schema: args.prisma_schema,
        out: args.out,
        access,
    };
    // A failed write here shows again at the next one, which returns it.
    let mut applied = |sql: &str| {
        let _ = out(format!("  applied: {sql}\n"));
    };
    let run = crate::advise::run_advise(&target, &request, &mut applied).await?;
    out(run.render())?;
    out(crate::rehearse::retention::advice::text(&target, &run.advice.schema, &run.folder).await)?;
    Ok(run.exit_code())
}

pub(super) async fn demo_command(
    args: DemoArgs,
    opts: &TargetOptions,
    access: Access,
) -> anyhow::Result<u8> {
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

pub(super) fn report_command(args: &ReportArgs, access: Access) -> Result<()> {
    let mut formats: Vec<crate::report::Format> = Vec::new();
    for format in args.format.iter().map(|&f| f.into()) {
        if !formats.contains(&format) {
            formats.push(format);
        }
    }
    let model = crate::report::load(&args.input)?;
    let folder = crate::runfolder::RunFolder::open(&args.input)?.with_access(access);
    for path in crate::report::write(&folder, &model, &formats)? {
        out(format!("  written: {}\n", path.display()))?;
    }
    Ok(())
}

pub(super) fn compare_command(args: CompareArgs) -> Result<u8> {
    let comparison = crate::compare::compare(&crate::compare::CompareOptions {
        base: args.base,
        current: args.current,
        threshold: args.threshold,
        metric: args.metric.into(),
        max_error_rate: args.max_error_rate,
        fail_on_plan_change: args.fail_on_plan_change,
        candidate_plans: args.candidate_plans,
        seed: args.seed,
        inconclusive: args.inconclusive.map(Into::into).unwrap_or_default(),
    })?;
    let markdown = crate::compare::render::markdown(&comparison);
    match args.format {
        CompareFormat::Json => out(format!("{}\n", crate::compare::render::json(&comparison)))?,
        CompareFormat::Md => out(&markdown)?,
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

/// `audit`: the catalog (or a Prisma schema) checked, printed in the chosen
/// format; exit 1 when a finding reaches --fail-on.
pub(super) async fn audit_command(
    args: super::args::AuditArgs,
    opts: &TargetOptions,
) -> Result<u8> {
    use super::values::AuditFormat;
    let options = crate::audit::AuditOptions {
        schema: args.schema,
        tenant_column: args.tenant_column,
        setting: args.setting,
        app_role: args.app_role,
        prisma_schema: args.prisma_schema,
        probe: args.probe,
        workload: args.workload,
    };
    let report = match &options.prisma_schema {
        Some(path) => crate::audit::prisma::audit_file(path, &options)?,
        None => {
            let (target, _) = Target::resolve(opts, true)?;
            crate::audit::audit_database(&target, &options).await?
        }
    };
    out(match args.format {
        AuditFormat::Text => report.render_text(),
        AuditFormat::Json => to_json(&report)?,
        AuditFormat::Sarif => to_json(&crate::audit::sarif::sarif(&report))?,
    })?;
    Ok(if report.fails(args.fail_on.into()) {
        super::EXIT_FAILED
    } else {
        EXIT_OK
    })
}

/// `erase`: the subject's rows deleted and proven (or rolled back).
pub(super) async fn erase_command(
    args: super::args::EraseArgs,
    opts: &TargetOptions,
) -> Result<String> {
    let (target, _) = Target::resolve(opts, true)?;
    let options = crate::erase::EraseOptions {
        schema: args.schema,
        customer: args.customer,
        tenant: args.tenant,
        policy: args.policy,
        dry_run: args.dry_run,
        column: args.tenant_column,
        setting: args.setting,
    };
    Ok(crate::erase::erase(&target, &options).await?.render())
}

/// `export`: the subject's rows and their manifest.
pub(super) async fn export_command(
    args: super::args::ExportArgs,
    opts: &TargetOptions,
) -> Result<String> {
    let (target, _) = Target::resolve(opts, true)?;
    let options = crate::export::ExportOptions {
        schema: args.schema,
        customer: args.customer,
        tenant: args.tenant,
        policy: args.policy,
        out: args.out.clone(),
        format: args.format.map(Into::into),
        column: args.tenant_column,
    };
    Ok(crate::export::export(&target, &options)
        .await?
        .render(&args.out))
}

/// `import`: a tenant's export loaded and its checksums proven.
pub(super) async fn import_command(
    args: super::args::ImportArgs,
    opts: &TargetOptions,
) -> Result<String> {
    let (target, _) = Target::resolve(opts, true)?;
    let rows = crate::export::import::import(&target, &args.from, &args.schema).await?;
    Ok(format!(
        "imported {rows} rows from {} into schema {}; every table's checksum equals the manifest's\n",
        args.from.display(),
        args.schema
    ))
}

pub(super) async fn capture_command(args: CaptureArgs, opts: &TargetOptions) -> Result<u8> {
    let (target, _) = Target::resolve(opts, true)?;
    let captured = crate::capture::capture(
        &target,
        &crate::capture::CaptureOptions {
            out: args.out.clone(),
            coverage: args.coverage / 100.0,
            top: args.top,
            min_calls: args.min_calls,
            role: args.role,
            window: args.window,
            from_log: args.from_log,
            stats_table: args.stats_table,
            fit: !args.no_fit,
        },
    )
    .await?;
    out(crate::capture::render_summary(&captured, &args.out))?;
    if !args.check_replay {
        return Ok(EXIT_OK);
    }
    use crate::capture::realism;
    let rows = realism::check_replay(
        &target,
        &args.out,
        &captured.role,
        &captured.source,
        realism::ReplayOptions {
            duration: args.replay_duration,
            clients: args.replay_clients,
        },
    )
    .await?;
    out(realism::render(&rows))?;
    Ok(if rows.iter().all(|r| r.flags.is_empty()) {
        EXIT_OK
    } else {
        1
    })
}

pub(super) async fn rehearse_command(
    args: RehearseArgs,
    opts: &TargetOptions,
    access: Access,
) -> Result<u8> {
    use crate::rehearse::input::ApplyAs;
    let apply_as = args.apply_as.as_deref().map(|a| match a {
        "file" => ApplyAs::File,
        "prisma" => ApplyAs::Prisma,
        _ => ApplyAs::Statement,
    });
    if let Some(w) = &args.workload {
        // A workload file that cannot be read is refused before any server starts.
        crate::workload::Workload::load(w)?;
    }
    let (target, _) = Target::resolve(opts, true)?;
    let Some(migration) = args.migration.clone() else {
        return retention_command(args, &target, access).await;
    };
    let options = crate::rehearse::RehearseOptions {
        migration,
        rollback: args.rollback,
        apply_as,
        workload: args.workload,
        load: match (args.rate, args.closed) {
            (Some(rate), _) => crate::rehearse::Load::Rate(rate),
            (None, true) => crate::rehearse::Load::Closed,
            (None, false) => crate::rehearse::Load::Probe,
        },
        clients: args.clients,
        before: args.before,
        after: args.after,
        lock_timeout: args.lock_timeout,
        hold: args.hold.map(|sql| (sql, args.hold_for)),
        validate: args.validate,
        wal_replica: !args.keep_wal_level,
        index_limit_bytes: (args.index_limit_mb * 1e6) as i64,
        seed: args.seed,
        out: args.out,
        access,
    };
    let outcome = crate::rehearse::rehearse(&target, &options).await?;
    out(crate::rehearse::render::render(&outcome.rehearsal))?;
    out(format!(
        "  rehearsal: {}\n",
        outcome.folder.join("rehearsal.json").display()
    ))?;
    Ok(outcome.rehearsal.exit_code())
}

/// `rehearse --retention`: the work is in [`crate::rehearse::retention`].
async fn retention_command(args: RehearseArgs, target: &Target, access: Access) -> Result<u8> {
    use crate::rehearse::retention::{self, job::JobKind};
    let builtin = std::path::PathBuf::from(crate::workload::BUILT_IN_PATH);
    let options = retention::RetentionOptions {
        schema: crate::pg::SCHEMA.into(),
        table: args.retention.unwrap_or_default(),
        keep_months: args.keep,
        partition_by: args.partition_by,
        workload: args
            .workload
            .or_else(|| builtin.is_file().then_some(builtin)),
        load: match (args.rate, args.closed) {
            (Some(rate), _) => crate::rehearse::Load::Rate(rate),
            (None, true) => crate::rehearse::Load::Closed,
            (None, false) => crate::rehearse::Load::Probe,
        },
        clients: args.clients,
        before: args.before,
        after: args.after,
        wal_replica: !args.keep_wal_level,
        job: args.job.as_deref().map(|j| match j {
            "partman" => JobKind::Partman,
            _ => JobKind::Plpgsql,
        }),
        seed: args.seed,
        out: args.out,
        access,
    };
    let outcome = retention::rehearse_retention(target, &options).await?;
    out(retention::render::render(&outcome.record))?;
    out(format!(
        "  retention: {}\n",
        outcome.folder.join("retention.json").display()
    ))?;
    Ok(u8::from(!outcome.record.checks.passed()))
}

/// `merge`: the workers' folders into one results.json.
pub(super) fn merge_command(args: super::args::MergeArgs, access: Access) -> Result<String> {
    let runs = crate::merge::read(&args.folders)?;
    let workers = runs.len();
    let merged = crate::merge::merge(runs)?;
    let folder = crate::runfolder::RunFolder::prepare(args.out.as_deref(), "merge", access)?;
    let path = folder.write(&merged)?;
    Ok(format!(
        "{}crmbench: merged {workers} workers ({} clients){}\n  results: {}\n",
        crate::run::render_table(&merged),
        merged.driver.clients,
        merged
            .partial
            .as_ref()
            .map(|p| format!("; partial: {p}"))
            .unwrap_or_default(),
        path.display()
    ))
}
