//! `rehearse --retention TABLE --keep 24months`: the two ways to enforce a
//! retention policy, measured side by side on clones of the same data under
//! the same replayed load — (a) a batched `DELETE` of the expired rows
//! (pages per batch from a short probe) and `VACUUM`, (b) the table
//! converted to monthly partitions (the conversion written and rehearsed
//! too) and the expired partitions detached and dropped — plus the
//! retention job (pg_partman 4.x, or a PL/pgSQL function) run once under
//! load. WAL is measured on a quiesced clone, where the step is alone.
//!
//! One file per concern: [`table`] reads the catalog, [`convert`] writes
//! the SQL, [`job`] the job, [`measure`] takes figures, [`proof`] checks
//! the conversion, [`model`] is the record, [`render`] prints it.

pub mod advice;
pub mod convert;
pub mod job;
pub mod measure;
pub mod model;
pub mod plot;
pub mod proof;
pub mod render;
pub mod steps;
pub mod table;

use std::path::PathBuf;
use std::time::Duration;

use chrono::NaiveDate;
use tokio_postgres::Client;

use self::convert::{Plan, Scripts};
use self::job::{Job, JobKind};
use self::model::RetentionRecord;
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::rehearse::Load;
use crate::runfolder::{Access, RunFolder};
use crate::schema::clone::{Purpose, WorkingCopy};

/// Options of `rehearse --retention`.
#[derive(Debug, Clone)]
pub struct RetentionOptions {
    /// Schema of the table.
    pub schema: String,
    /// The table.
    pub table: String,
    /// Months kept.
    pub keep_months: u32,
    /// The partition column (default: `created_at`, else the first
    /// timestamp column).
    pub partition_by: Option<String>,
    /// Workload replayed during each step; none: no load.
    pub workload: Option<PathBuf>,
    /// How it is driven.
    pub load: Load,
    /// Connections.
    pub clients: usize,
    /// Load before each step.
    pub before: Duration,
    /// Load window after each step starts.
    pub after: Duration,
    /// Restart the private server at `wal_level = replica` if at minimal.
    pub wal_replica: bool,
    /// Which job to write (default: pg_partman when the server has it).
    pub job: Option<JobKind>,
    /// Seed of the workload's streams.
    pub seed: u64,
    /// Run folder.
    pub out: Option<PathBuf>,
    /// Who may read the run folder.
    pub access: Access,
}

/// What `rehearse --retention` produced.
#[derive(Debug)]
pub struct RetentionOutcome {
    /// The record (also `retention.json` in the run folder).
    pub record: RetentionRecord,
    /// The run folder.
    pub folder: PathBuf,
}

/// Parse `24months`, `24 months`, `2years`, `2y`, `24m` into months.
pub fn parse_keep(text: &str) -> std::result::Result<u32, String> {
    let t = text.trim().to_ascii_lowercase();
    let digits: String = t.chars().take_while(|c| c.is_ascii_digit()).collect();
    let unit = t[digits.len()..].trim();
    let n: u32 = digits
        .parse()
        .map_err(|_| format!("{text}: give a number of months or years, e.g. 24months"))?;
    match unit {
        "m" | "month" | "months" | "mon" => Ok(n),
        "y" | "year" | "years" => Ok(n * 12),
        _ => Err(format!(
            "{text}: the unit is months or years, e.g. 24months or 2years"
        )),
    }
}

/// Rehearse retention of `opts.table` on clones of `target`'s database.
pub async fn rehearse_retention(
    target: &Target,
    opts: &RetentionOptions,
) -> Result<RetentionOutcome> {
    let admin = pg::connect(&target.admin()).await?;
    let info = table::load(&admin, &opts.schema, &opts.table).await?;
    let column = partition_column(&admin, &info, opts).await?;
    let (first, last) = table::month_range(&admin, &info, &column).await?;
    let today: String = admin
        .query_one("SELECT to_char(current_date, 'YYYY-MM-01')", &[])
        .await
        .map_err(|e| Error::from_pg("reading the date", e))?
        .get(0);
    let kind = match opts.job {
        Some(k) => k,
        None if partman_available(&admin).await? => JobKind::Partman,
        None => JobKind::Plpgsql,
    };
    drop(admin);
    let plan = Plan {
        table: info,
        column,
        first: date(&first)?,
        last: date(&last)?,
        cutoff: convert::add_months(date(&today)?, -(opts.keep_months as i32)),
        pages_per_batch: 0,
    };
    if opts.wal_replica {
        crate::rehearse::engine::wal_replica(target).await?;
    }
    let folder = RunFolder::prepare(opts.out.as_deref(), "retention", opts.access)?;
    let copies = Copies::create(target).await?;
    let result = steps::on_copies(&copies, plan, kind, opts, &folder).await;
    copies.remove_or_warn().await;
    let record = result?;
    folder.write(&record)?;
    if let Some(svg) = plot::timeline_svg(&record)? {
        folder.write_text("timeline.svg", &svg)?;
    }
    Ok(RetentionOutcome {
        record,
        folder: folder.path().to_path_buf(),
    })
}

fn date(text: &str) -> Result<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").map_err(|e| Error::Internal {
        message: format!("the server gave the date {text}, unreadable: {e}"),
        fix: String::new(),
    })
}

async fn partman_available(client: &Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_partman' \
             AND default_version LIKE '4.%')",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("looking for pg_partman", e))?
        .get(0))
}

/// `--partition-by`, else `created_at`, else the first timestamp or date column.
async fn partition_column(
    client: &Client,
    info: &table::TableInfo,
    opts: &RetentionOptions,
) -> Result<String> {
    if let Some(c) = &opts.partition_by {
        return Ok(c.clone());
    }
    if info.columns.iter().any(|c| c == "created_at") {
        return Ok("created_at".into());
    }
    let found: Option<String> = client
        .query_opt(
            "SELECT a.attname::text FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2 \
             AND a.attnum > 0 AND NOT a.attisdropped \
             AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) \
             ORDER BY a.attnum LIMIT 1",
            &[&info.schema, &info.name],
        )
        .await
        .map_err(|e| Error::from_pg("looking for a time column", e))?
        .map(|r| r.get(0));
    found.ok_or_else(|| Error::Usage {
        message: format!(
            "{}.{} has no timestamp or date column to partition by",
            info.schema, info.name
        ),
        fix: "name it with --partition-by".into(),
    })
}

/// The clones: the DELETE's, the partitions', and the quiesced one (WAL
/// alone, counts and checksums, the catalog audit).
pub(crate) struct Copies {
    delete: WorkingCopy,
    partitions: WorkingCopy,
    quiet: WorkingCopy,
}

impl Copies {
    async fn create(target: &Target) -> Result<Copies> {
        let mut made = Vec::new();
        for purpose in [
            Purpose::RehearseBefore,
            Purpose::Rehearse,
            Purpose::RehearseQuiet,
        ] {
            match WorkingCopy::create(target, purpose).await {
                Ok(c) => made.push(c),
                Err(e) => {
                    for c in made {
                        c.remove_or_warn().await;
                    }
                    return Err(e);
                }
            }
        }
        let (Some(quiet), Some(partitions), Some(delete)) = (made.pop(), made.pop(), made.pop())
        else {
            return Err(Error::Internal {
                message: "three clones were made but not found".into(),
                fix: String::new(),
            });
        };
        Ok(Copies {
            delete,
            partitions,
            quiet,
        })
    }

    async fn remove_or_warn(self) {
        self.delete.remove_or_warn().await;
        self.partitions.remove_or_warn().await;
        self.quiet.remove_or_warn().await;
    }
}

/// Write the scripts and the job into the run folder: (role, path) pairs.
fn write_files(folder: &RunFolder, scripts: &Scripts, job: &Job) -> Result<Vec<(String, String)>> {
    let job_text = job.text();
    let mut files = Vec::new();
    for (role, name, text) in
        scripts
            .files()
            .into_iter()
            .chain([("job", "job.sql", job_text.as_str())])
    {
        let path = folder.write_text(name, text)?;
        files.push((role.to_string(), path.display().to_string()));
    }
    Ok(files)
}
