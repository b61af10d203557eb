//! The advise stage as one call, what `crmbench advise` runs: read the
//! user's schema.prisma, capture plans when the run folder has none, advise,
//! verify each index and measure each remedy (`verify`), write advice.json
//! and the Prisma files, build the indexes (`apply`) or prove the catalog
//! unchanged, then write migration.sql, rollback.sql and remedies.sql. A
//! stop signal ends verification early: what was decided so far is written,
//! marked partial, and nothing is applied.

use std::path::PathBuf;
use std::time::Duration;

use super::{Advice, AdviseOptions, artifacts, catalog, prisma, remedy_measure, verify};
use crate::error::{Error, Result};
use crate::explain::PlansFile;
use crate::pg::Target;
use crate::runfolder::RunFolder;
use crate::workload::context::WorkloadContext;

/// What to advise on and how: the options of `crmbench advise`.
#[derive(Debug, Clone)]
pub struct AdviseRequest {
    /// Workload file (TOML).
    pub workload: PathBuf,
    /// Most indexes to recommend.
    pub max_indexes: usize,
    /// Storage budget for the new indexes, MB.
    pub budget_mb: f64,
    /// Seed of the sample parameters (and of plan capture and verification).
    pub seed: u64,
    /// Prove each index with paired before/after runs on clones, and
    /// measure each remedy on a clone.
    pub verify: bool,
    /// Cost with real indexes on a clone instead of HypoPG.
    pub no_hypopg: bool,
    /// Leave HypoPG in the database when this run created it.
    pub keep_hypopg: bool,
    /// Build the kept indexes on the database, CONCURRENTLY.
    pub apply: bool,
    /// Length of each paired verification run.
    pub verify_duration: Duration,
    /// Clients per side in verification runs (at least one runs).
    pub verify_clients: usize,
    /// The user's schema.prisma, for its model and field names.
    pub prisma_schema: Option<PathBuf>,
    /// Run folder to read plans.json from and write into; `None`:
    /// reports/latest when it exists, else a new one.
    pub out: Option<PathBuf>,
    /// Who may read the files written (private by default).
    pub access: crate::runfolder::Access,
}

impl AdviseRequest {
    /// The options of [`super::advise`] itself.
    pub fn options(&self) -> AdviseOptions {
        AdviseOptions {
            max_indexes: self.max_indexes,
            budget_mb: self.budget_mb,
            seed: self.seed,
            no_hypopg: self.no_hypopg,
            keep_hypopg: self.keep_hypopg,
        }
    }
}

/// What one advise run produced.
#[derive(Debug, Clone)]
pub struct AdviseRun {
    /// The run folder written into.
    pub folder: PathBuf,
    /// The advice, as advice.json holds it.
    pub advice: Advice,
    /// Statements run on the database (`apply`), in order.
    pub applied: Vec<String>,
    /// The catalog check (without `apply`).
    pub catalog: Option<CatalogCheck>,
}

/// Proof that the schema ended with exactly the indexes it began with.
#[derive(Debug, Clone, PartialEq)]
pub struct CatalogCheck {
    /// The schema checked.
    pub schema: String,
    /// Its number of indexes, before and after.
    pub indexes: usize,
}

impl std::fmt::Display for CatalogCheck {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "catalog check: schema {} has exactly the {} indexes it had before",
            self.schema, self.indexes
        )
    }
}

/// Run the whole stage on `target`. `on_applied` hears each statement of
/// `apply` as soon as it has run, so a caller can report progress that a
/// later failure does not erase.
pub async fn run_advise(
    target: &Target,
    req: &AdviseRequest,
    on_applied: &mut dyn FnMut(&str),
) -> Result<AdviseRun> {
    // Read first: a wrong path should fail before minutes of costing.
    let prisma_text = match &req.prisma_schema {
        Some(path) => {
            Some(std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?)
        }
        None => None,
    };
    let names = prisma_text
        .as_deref()
        .map_or_else(prisma::Names::default, prisma::Names::parse);
    // Beside the newest run's results and plans when no folder is given.
    let folder = RunFolder::prepare_or_latest(req.out.as_deref(), "advise", req.access)?;
    // The workload is loaded, checked and sampled once for every step.
    let ctx = WorkloadContext::prepare(target, &req.workload).await?;
    let plans = plans_in(&ctx, target, &folder, req.seed).await?;
    let results: Option<crate::results::Results> = folder.read_optional()?;
    let admin = crate::pg::connect(&target.admin()).await?;
    let schema = super::resolve_schema(&admin, &plans).await?;
    let catalog_before = catalog::index_catalog(&admin, &schema).await?;
    drop(admin);
    let mut advice =
        super::advise_with(&ctx, target, &plans, results.as_ref(), &req.options()).await?;
    if req.verify {
        verify_indexes(&ctx, target, req, &mut advice).await?;
        measure_remedies(&ctx, target, req, &mut advice).await?;
    }
    advice.partial = partial_reason(&advice, req.verify);
    // Again after verification: its measured ratios and reverts count.
    advice.explanations = super::reasons::explain(&advice);
    artifacts::write_artifacts(&folder, &advice, &names, prisma_text.as_deref())?;
    // Advice cut short is not applied: the user asked to stop.
    let (applied, catalog) = if req.apply && advice.partial.is_none() {
        (apply(target, &advice, on_applied).await?, None)
    } else {
        let check = check_catalog_unchanged(target, &schema, &catalog_before).await?;
        (Vec::new(), Some(check))
    };
    artifacts::write_sql(&folder, &advice)?;
    Ok(AdviseRun {
        folder: folder.into_path(),
        advice,
        applied,
        catalog,
    })
}

/// Why the advice is partial: a stop signal came (SIGINT, SIGTERM, SIGHUP;
/// see [`crate::signals`]) before the stage was done.
fn partial_reason(advice: &Advice, verify: bool) -> Option<String> {
    let signal = crate::signals::stopped()?;
    let chosen = advice.selection.chosen.len();
    Some(match (&advice.verified, verify) {
        (Some(done), _) => format!(
            "interrupted ({signal}) during verification: {} of {chosen} index(es) verified",
            done.len()
        ),
        (None, true) if chosen > 0 => {
            format!("interrupted ({signal}) before verification: no index verified")
        }
        _ => format!("interrupted ({signal})"),
    })
}

impl AdviseRun {
    /// What `crmbench advise` prints after the work: the catalog check
    /// (without `apply`) and the summary.
    pub fn render(&self) -> String {
        let check = self
            .catalog
            .as_ref()
            .map(|c| format!("  {c}\n"))
            .unwrap_or_default();
        check + &super::render_summary(&self.advice, &self.folder)
    }

    /// 0, or 2 for an advise cut short (by a stop signal), which it says on
    /// standard error.
    pub fn exit_code(&self) -> u8 {
        let Some(reason) = &self.advice.partial else {
            return 0;
        };
        crate::console::err_line(format!(
            "error: advise ended early ({reason}); what was decided so far is in {} (marked \
             partial); nothing was applied",
            self.folder.join("advice.json").display()
        ));
        2
    }
}

/// The folder's plans.json, or plans captured now (and written there).
async fn plans_in(
    ctx: &WorkloadContext,
    target: &Target,
    folder: &RunFolder,
    seed: u64,
) -> Result<PlansFile> {
    if let Some(plans) = folder.read_optional()? {
        return Ok(plans);
    }
    crate::console::err_line(format!(
        "advise: no plans.json in {}: capturing plans first",
        folder.path().display()
    ));
    let values = crate::explain::SampledValues::default_for(target);
    let plans = crate::explain::explain_with(ctx, target, seed, values).await?;
    folder.write(&plans)?;
    Ok(plans)
}

/// Paired before/after runs of each chosen index on clones.
async fn verify_indexes(
    ctx: &WorkloadContext,
    target: &Target,
    req: &AdviseRequest,
    advice: &mut Advice,
) -> Result<()> {
    if advice.selection.chosen.is_empty() || crate::signals::stopped().is_some() {
        return Ok(());
    }
    crate::console::err_line(format!(
        "advise: verifying {} index(es) with paired runs of {:?} each on clones",
        advice.selection.chosen.len(),
        req.verify_duration
    ));
    let verified = verify::verify_with(
        ctx,
        target,
        &advice.selection.chosen,
        advice.selection.base_cost,
        &verify::VerifyOptions {
            workload: req.workload.clone(),
            duration: req.verify_duration,
            clients: req.verify_clients.max(1),
            seed: req.seed,
            schema: advice.schema.clone(),
        },
    )
    .await?;
    advice.verified = Some(verified);
    Ok(())
}

/// Each remedy's effect, measured on a clone.
async fn measure_remedies(
    ctx: &WorkloadContext,
    target: &Target,
    req: &AdviseRequest,
    advice: &mut Advice,
) -> Result<()> {
    if advice.remedies.is_empty() || crate::signals::stopped().is_some() {
        return Ok(());
    }
    crate::console::err_line(format!(
        "advise: measuring {} remed{} for non-leakproof predicates on a clone",
        advice.remedies.len(),
        if advice.remedies.len() == 1 {
            "y"
        } else {
            "ies"
        }
    ));
    remedy_measure::measure_with(ctx, target, &mut advice.remedies, req.seed).await
}

/// Build the kept indexes on `target` with migration.sql's statements
/// (each partition's index concurrently, then attached, on a partitioned
/// table). Needs DDL rights on an external server. Returns the statements
/// run; `on_applied` hears each as soon as it has run.
pub async fn apply(
    target: &Target,
    advice: &Advice,
    on_applied: &mut dyn FnMut(&str),
) -> Result<Vec<String>> {
    target.require_ddl("building the recommended indexes (--apply)")?;
    let admin = crate::pg::connect(&target.admin()).await?;
    let mut applied = Vec::new();
    for c in advice.kept() {
        let parts = advice.partitioned.get(&c.def.table).map(Vec::as_slice);
        for sql in c.def.migration_statements(&advice.schema, parts) {
            admin
                .batch_execute(&sql)
                .await
                .map_err(|e| Error::from_pg(sql.clone(), e))?;
            on_applied(&sql);
            applied.push(sql);
        }
    }
    Ok(applied)
}

/// Costing and verification work on HypoPG sessions and clones only: prove
/// the database ends with exactly the indexes it had (`before`, as
/// [`catalog::index_catalog`] listed them).
pub async fn check_catalog_unchanged(
    target: &Target,
    schema: &str,
    before: &[(String, String)],
) -> Result<CatalogCheck> {
    let after = catalog::index_catalog(&crate::pg::connect(&target.admin()).await?, schema).await?;
    if after != before {
        return Err(Error::State {
            message: format!(
                "the indexes of schema {schema} changed while advise ran (before: {}, after: {})",
                before.len(),
                after.len()
            ),
            fix:
                "another session changed the schema meanwhile; run advise again on a quiet database"
                    .into(),
        });
    }
    Ok(CatalogCheck {
        schema: schema.to_string(),
        indexes: after.len(),
    })
}
