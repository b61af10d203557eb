//! What makes worker folders one run: each a `run --worker` slice, the
//! workers 0..N each exactly once, and the same workload (by hash), seed,
//! server, candidate, clients, protocol, rate, series period and queries.
//! Anything else would add up figures that do not belong together.

use std::collections::BTreeSet;

use super::WorkerRun;
use crate::error::{Error, Result};
use crate::results::Results;

/// `Ok` when `runs` are the whole set of one run's workers.
pub(super) fn compatible(runs: &[WorkerRun]) -> Result<()> {
    let Some(first) = runs.first() else {
        return Err(refused("no worker folders were given".into()));
    };
    for r in runs {
        if r.results.worker.is_none() {
            return Err(refused(format!(
                "{} is not a worker's folder (it was not run with --worker K/N)",
                r.folder.display()
            )));
        }
        if r.results.sequential.is_some() || r.results.replication.is_some() {
            return Err(refused(format!(
                "{}: a sequential or replica-routed run cannot be merged",
                r.folder.display()
            )));
        }
        if let Some(field) = differing(&first.results, &r.results) {
            return Err(refused(format!(
                "{} and {} differ in {field}: they are not workers of one run",
                first.folder.display(),
                r.folder.display()
            )));
        }
    }
    complete(runs)
}

/// Every worker 0..N once.
fn complete(runs: &[WorkerRun]) -> Result<()> {
    let n = runs[0].results.worker.as_ref().map_or(0, |w| w.count);
    let mut seen = BTreeSet::new();
    for r in runs {
        let w = r.results.worker.as_ref().map_or(0, |w| w.index);
        if !seen.insert(w) {
            return Err(refused(format!(
                "worker {w} appears twice (again in {})",
                r.folder.display()
            )));
        }
    }
    let missing: Vec<String> = (0..n)
        .filter(|k| !seen.contains(k))
        .map(|k| k.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(refused(format!(
            "workers {} of {n} are missing: a merge of some workers is not the run",
            missing.join(", ")
        )));
    }
    Ok(())
}

/// The first field in which two workers' results differ, by name.
fn differing(a: &Results, b: &Results) -> Option<&'static str> {
    let count = |r: &Results| r.worker.as_ref().map(|w| w.count);
    let names = |r: &Results| r.queries.iter().map(|q| q.name.clone()).collect::<Vec<_>>();
    let checks: [(&'static str, bool); 12] = [
        ("format_version", a.format_version == b.format_version),
        ("crmbench_version", a.crmbench_version == b.crmbench_version),
        ("workload (hash)", a.workload.hash == b.workload.hash),
        ("seed", a.seed == b.seed),
        ("server target", a.server.target == b.server.target),
        ("candidate", a.server.candidate == b.server.candidate),
        ("worker count N", count(a) == count(b)),
        ("clients", a.driver.clients == b.driver.clients),
        ("protocol", a.driver.protocol == b.driver.protocol),
        (
            "rate, paired or interval",
            a.driver.rate == b.driver.rate
                && a.driver.paired == b.driver.paired
                && a.driver.interval_seconds == b.driver.interval_seconds,
        ),
        (
            "warm-up",
            a.driver.warmup_seconds == b.driver.warmup_seconds,
        ),
        ("queries", names(a) == names(b)),
    ];
    checks.iter().find(|(_, same)| !same).map(|(name, _)| *name)
}

fn refused(message: String) -> Error {
    Error::Usage {
        message: format!("crmbench merge: {message}"),
        fix: "pass every worker's folder of one `run --worker K/N` (same workload, seed, \
              target and options), each once"
            .into(),
    }
}
