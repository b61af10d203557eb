//! The steps on the three clones, in order: on the quiesced clone the WAL
//! of each step alone, the per-tenant checks, the audit and the exact drop,
//! then one run of the job under load; on the partitions' clone the
//! conversion, the drop and the rollback under load (the old table checked
//! against the new before the drop, the schema fingerprint after the
//! rollback), then the DELETE's WAL alone; on the DELETE's clone the
//! batched DELETE and VACUUM under load.

use std::time::Instant;

use tokio_postgres::Client;

use super::convert::{self, Plan, Scripts};
use super::job::{self, JobKind};
use super::measure;
use super::model::{Checks, RetentionRecord, Way};
use super::{Copies, RetentionOptions, proof, write_files};
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::rehearse::apply::{self, Unit};
use crate::rehearse::input::{ApplyAs, Migration, MigrationFile};
use crate::rehearse::step::{self, StepSession};
use crate::rehearse::{Load, RehearseOptions, engine, fingerprint};
use crate::runfolder::RunFolder;
use crate::workload::context::WorkloadContext;

pub(super) async fn on_copies(
    copies: &Copies,
    mut plan: Plan,
    kind: JobKind,
    opts: &RetentionOptions,
    folder: &RunFolder,
) -> Result<RetentionRecord> {
    let quiet = copies.quiet.target();
    let q = pg::connect(&quiet.admin()).await?;
    plan.pages_per_batch = probe_pages(&q, &plan).await?;
    let scripts = convert::write(&plan)?;
    let job = job::write(&plan, kind, opts.keep_months);
    let files = write_files(folder, &scripts, &job)?;
    let wal_level: String = q
        .query_one("SELECT current_setting('wal_level')", &[])
        .await
        .map_err(|e| Error::from_pg("reading wal_level", e))?
        .get(0);
    let mut runner = Runner {
        opts,
        folder,
        rate: None,
    };
    let (rows, expired_rows) = counts(&q, &plan).await?;
    let (mut checks, wal_conversion, wal_drop) = quiet_checks(&quiet, &q, &plan, &scripts).await?;
    let job_sql = format!("{}{}", job.setup, job.run);
    let job_run = runner.step(&quiet, &job_sql, "job.sql", &plan).await?;
    drop(q);
    // (b) on its clone, under load.
    let b = copies.partitions.target();
    let badmin = pg::connect(&b.admin()).await?;
    if let Some(w) = &opts.workload {
        // Preparing the load grants the sampler role its reads: done
        // before the fingerprint, so the rollback is judged on the schema.
        WorkloadContext::prepare(&b, w).await?;
    }
    let print = fingerprint::take(&badmin).await?;
    let mut conversion = runner
        .step(&b, &scripts.conversion, "conversion.sql", &plan)
        .await?;
    conversion.wal_bytes = wal_conversion;
    if conversion.failure.is_none() {
        (checks.old_except_new, checks.new_except_old) = proof::except_all(&badmin, &plan).await?;
    }
    let mut dropped = runner
        .step(&b, &scripts.drop_expired, "drop_expired.sql", &plan)
        .await?;
    dropped.wal_bytes = wal_drop;
    let rolled = runner
        .step(&b, &scripts.rollback, "conversion_rollback.sql", &plan)
        .await?;
    let diff = print.diff(&fingerprint::take(&badmin).await?);
    checks.rollback_identical = diff.is_empty() && rolled.failure.is_none();
    checks.rollback_difference = diff.render();
    let wal_delete = alone(
        &b,
        &badmin,
        &scripts.delete,
        "delete_expired.sql",
        &plan.table.qualified(&plan.table.name),
    )
    .await?;
    drop(badmin);
    // (a) on its clone, under load.
    let mut delete = runner
        .step(
            &copies.delete.target(),
            &scripts.delete,
            "delete_expired.sql",
            &plan,
        )
        .await?;
    delete.wal_bytes = wal_delete;
    Ok(RetentionRecord {
        format_version: super::model::FORMAT_VERSION,
        table: format!("{}.{}", plan.table.schema, plan.table.name),
        column: plan.column.clone(),
        keep_months: opts.keep_months,
        cutoff: plan.cutoff.to_string(),
        pages_per_batch: plan.pages_per_batch,
        wal_level,
        rows,
        expired_rows,
        delete,
        drop: dropped,
        conversion,
        job_run,
        job: kind,
        checks,
        tradeoffs: scripts.tradeoffs.clone(),
        files,
        job_sql: job.text(),
    })
}

/// Rows of the table, and those before the cutoff (expired).
async fn counts(q: &Client, plan: &Plan) -> Result<(i64, i64)> {
    let t = plan.table.qualified(&plan.table.name);
    let sql = format!(
        "SELECT count(*), count(*) FILTER (WHERE {} < '{}') FROM {t}",
        pg::quote_ident(&plan.column),
        plan.cutoff
    );
    let r = q
        .query_one(sql.as_str(), &[])
        .await
        .map_err(|e| Error::from_pg("counting rows", e))?;
    Ok((r.get(0), r.get(1)))
}

/// On the quiesced clone: the conversion's and the drop's WAL, each alone,
/// the per-tenant checks and the audit after the conversion, and the rows
/// the drop removed against those expired.
async fn quiet_checks(
    quiet: &Target,
    q: &Client,
    plan: &Plan,
    scripts: &Scripts,
) -> Result<(Checks, Option<i64>, Option<i64>)> {
    let mut checks = Checks::default();
    let table = plan.table.qualified(&plan.table.name);
    let audit_before = proof::audit_findings(quiet, plan).await?;
    let wal_conversion = alone(quiet, q, &scripts.conversion, "conversion.sql", &table).await?;
    checks.tenants_agree = proof::tenants(q, plan).await?;
    let audit_after = proof::audit_findings(quiet, plan).await?;
    checks.audit_new_findings = proof::new_findings(&audit_before, &audit_after, plan);
    let (in_parts, before_cut) = proof::expired(q, plan).await?;
    let wal_drop = alone(quiet, q, &scripts.drop_expired, "drop_expired.sql", &table).await?;
    let left = proof::before_cutoff(q, plan).await?;
    checks.dropped_rows = (in_parts, before_cut);
    checks.expired_left = left;
    Ok((checks, wal_conversion, wal_drop))
}

/// The units of one script, one statement at a time.
fn units(sql: &str, name: &str) -> Result<Vec<Unit>> {
    let migration = Migration {
        files: vec![MigrationFile {
            name: name.into(),
            path: name.into(),
            text: sql.into(),
        }],
        prisma: false,
    };
    apply::units(&migration, ApplyAs::Statement)
}

/// Apply `sql` with nothing else running; the WAL it wrote (None when it failed).
async fn alone(
    copy: &Target,
    admin: &Client,
    sql: &str,
    name: &str,
    table: &str,
) -> Result<Option<i64>> {
    // Vacuumed first, so autovacuum's work on the table (hint bits,
    // visibility map) is not counted as the step's WAL.
    admin
        .batch_execute(&format!("VACUUM (ANALYZE) {table}"))
        .await
        .map_err(|e| Error::from_pg("vacuuming before measuring WAL", e))?;
    let start = measure::wal_position(admin).await?;
    let session = StepSession {
        application: format!("crmbench rehearse --retention: {name} (alone)"),
        ..StepSession::default()
    };
    let outcome = step::apply_under_load(copy, &units(sql, name)?, &session, None).await?;
    if let Some(f) = outcome.failure {
        return Err(Error::State {
            message: format!("{name} failed on the quiesced clone: {}", f.error.message),
            fix: format!(
                "read {name} in the run folder; the table may need what the trade-offs name"
            ),
        });
    }
    Ok(Some(measure::wal_position(admin).await? - start))
}

/// Heap pages per batch: a rolled-back DELETE of the expired rows in the
/// first 100 pages is timed, and scaled so one batch takes about 200 ms.
async fn probe_pages(client: &Client, plan: &Plan) -> Result<u64> {
    const PROBE: u64 = 100;
    let sql = format!(
        "BEGIN; DELETE FROM {t} WHERE ctid < '({PROBE},0)'::tid AND {c} < '{cut}'; ROLLBACK",
        t = plan.table.qualified(&plan.table.name),
        c = pg::quote_ident(&plan.column),
        cut = plan.cutoff
    );
    let clock = Instant::now();
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::from_pg("probing the DELETE's batch size", e))?;
    let ms = clock.elapsed().as_secs_f64() * 1000.0;
    Ok(((PROBE as f64) * 200.0 / ms.max(1.0)).clamp(10.0, 10_000.0) as u64)
}

/// Runs steps under load, the rate probed once and kept for every step.
struct Runner<'a> {
    opts: &'a RetentionOptions,
    folder: &'a RunFolder,
    rate: Option<f64>,
}

impl Runner<'_> {
    fn rehearse_options(&self, workload: &std::path::Path) -> RehearseOptions {
        let o = self.opts;
        RehearseOptions {
            migration: workload.to_path_buf(),
            rollback: None,
            apply_as: None,
            workload: Some(workload.to_path_buf()),
            load: self.rate.map_or(o.load, Load::Rate),
            clients: o.clients,
            before: o.before,
            after: o.after,
            lock_timeout: None,
            hold: None,
            validate: None,
            wal_replica: false,
            index_limit_bytes: 0,
            seed: o.seed,
            out: None,
            access: o.access,
        }
    }

    /// Apply `sql` on `copy` under the load; the table's figures after.
    async fn step(&mut self, copy: &Target, sql: &str, name: &str, plan: &Plan) -> Result<Way> {
        let units = units(sql, name)?;
        let session = StepSession {
            application: format!("crmbench rehearse --retention: {name}"),
            ..StepSession::default()
        };
        let ctx = match &self.opts.workload {
            Some(w) => Some(WorkloadContext::prepare(copy, w).await?),
            None => None,
        };
        let load = match (&ctx, &self.opts.workload) {
            (Some(ctx), Some(w)) => {
                let ro = self.rehearse_options(w);
                Some(engine::step_load(ctx, copy, &ro, w).await?)
            }
            _ => None,
        };
        if let Some(l) = &load {
            self.rate = l.run.rate.or(self.rate);
        }
        let outcome = step::apply_under_load(copy, &units, &session, load.as_ref()).await?;
        // The conversion's load is the folder's own results.json, so
        // `crmbench report` on the folder reads it (with the Retention section).
        let sub = name.trim_end_matches(".sql").replace('.', "_");
        let sub = (name != "conversion.sql").then_some(sub.as_str());
        let workload = engine::record_load(
            self.folder,
            sub,
            outcome.results.as_ref(),
            &outcome.statements,
            load.as_ref(),
        )?;
        let admin = pg::connect(&copy.admin()).await?;
        measure::prepare(&admin).await?;
        let (size, dead) =
            measure::table_state(&admin, &plan.table.qualified(&plan.table.name)).await?;
        let duration_ms = outcome
            .statements
            .iter()
            .map(|s| s.end_s)
            .fold(f64::MIN, f64::max)
            - outcome
                .statements
                .iter()
                .map(|s| s.start_s)
                .fold(f64::MAX, f64::min);
        Ok(Way {
            duration_ms: (duration_ms * 1000.0).max(0.0),
            wal_bytes: None,
            size_after_bytes: size,
            dead_tuples_after: dead,
            during: workload
                .as_ref()
                .map(|w| measure::during(w, &outcome.statements)),
            statements: outcome.statements,
            failure: outcome
                .failure
                .map(|f| format!("{} ({})", f.error.message, f.error.sqlstate)),
            workload,
        })
    }
}
