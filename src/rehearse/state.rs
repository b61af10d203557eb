//! The state after, proven: a paired run of the *before* clone (the
//! original's data, never migrated) against the migrated *after* clone —
//! the same transactions with the same parameters sent to both, request by
//! request in random order — judged exactly as `compare` judges a paired
//! run (per-query ratio with its interval against the threshold).

use std::time::Duration;

use super::model::AfterVsBefore;
use crate::compare::{self, CompareOptions, Metric, verdict::InconclusivePolicy};
use crate::error::Result;
use crate::pg::Target;
use crate::run::{self, RunOptions};
use crate::runfolder::RunFolder;
use crate::workload::context::WorkloadContext;

/// Folder (inside the run folder) of the paired run's results.
pub const FOLDER: &str = "after-vs-before";

/// Run `ctx`'s workload paired, `before` as the baseline and the database
/// `after` (same server) as the candidate, closed loop for `duration`, save
/// its results under [`FOLDER`] and judge them like `compare`.
pub async fn after_vs_before(
    ctx: &WorkloadContext,
    before: &Target,
    after: &str,
    load: &RunOptions,
    duration: Duration,
    folder: &RunFolder,
) -> Result<AfterVsBefore> {
    // No more clients than cores: beyond that a cheap query's tail is the
    // wait for a core on both sides, and a change hides in it (issue 12).
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get());
    let opts = RunOptions {
        duration,
        clients: load.clients.min(cores).max(1),
        threads: load.threads.min(cores).max(1),
        // Closed loop, as the gate measures: each side gets the same
        // transactions, so a rate would only add queueing to both.
        rate: None,
        candidate_database: Some(after.to_string()),
        ..load.clone()
    };
    let results = run::run_with(ctx, before, &opts).await?.results;
    let sub = RunFolder::open_or_create(&folder.join(FOLDER), folder.access())?;
    let path = sub.write(&results)?;
    let comparison = compare::compare(&CompareOptions {
        base: path.clone(),
        current: None,
        threshold: None,
        metric: Metric::P95,
        max_error_rate: 0.01,
        fail_on_plan_change: false,
        candidate_plans: None,
        seed: load.seed,
        inconclusive: InconclusivePolicy::Undecided,
    })?;
    Ok(AfterVsBefore {
        results_file: path.display().to_string(),
        seconds: duration.as_secs_f64(),
        clients: opts.clients,
        metric: comparison.metric,
        threshold: comparison.threshold,
        level: comparison.level,
        verdict: comparison.verdict,
        reasons: comparison.reasons,
        queries: comparison.queries,
    })
}
