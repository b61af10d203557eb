//! `crmbench merge`: add the worker folders of one run over several machines
//! (`run --worker K/N`) into one results.json that every later stage reads
//! as a single run's. Exact where it can be: HDR histograms are added (never
//! averaged), counts, errors and retries summed, the per-interval series
//! added interval by interval from each interval's histogram after aligning
//! the workers by wall clock, and a paired run's ratios and tenant classes
//! recomputed from all workers' pairs (each pair keeps its class). Folders from different workloads, seeds, servers or
//! settings are refused, as is a set with a worker missing or repeated.

mod check;
mod series;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};

use crate::error::{Error, Result};
use crate::results::{MergedFrom, QueryResult, Results, SideStats, StatementLatency};
use crate::run::paired::{self, Block};
use crate::stats::{self, Hist};

/// One worker's results and the folder they came from.
pub struct WorkerRun {
    /// The worker's run folder.
    pub folder: PathBuf,
    /// Its results.json.
    pub results: Results,
}

/// Read every folder's results.json (`results.json` itself may be named).
pub fn read(folders: &[PathBuf]) -> Result<Vec<WorkerRun>> {
    folders
        .iter()
        .map(|f| {
            let file = if f.is_dir() {
                f.join("results.json")
            } else {
                f.clone()
            };
            let folder = file.parent().map_or_else(|| f.clone(), Path::to_path_buf);
            Ok(WorkerRun {
                folder,
                results: crate::runfolder::read_file(&file)?,
            })
        })
        .collect()
}

/// The merged results of `runs` (every worker of one run, any order).
pub fn merge(mut runs: Vec<WorkerRun>) -> Result<Results> {
    check::compatible(&runs)?;
    runs.sort_by_key(|r| r.results.worker.as_ref().map_or(0, |w| w.index));
    let starts: Vec<DateTime<Utc>> = runs.iter().map(started_at).collect::<Result<_>>()?;
    let origin = starts.iter().min().copied().unwrap_or_else(Utc::now);
    let offsets: Vec<f64> = starts
        .iter()
        .map(|s| (*s - origin).num_microseconds().unwrap_or(0) as f64 / 1e6)
        .collect();
    let first = &runs[0].results;
    let queries = (0..first.queries.len())
        .map(|i| merge_query(&runs, i, &offsets))
        .collect::<Result<Vec<_>>>()?;
    let mut merged = first.clone();
    with_ratios(&mut merged, queries, &runs)?;
    merged.started_at = origin.to_rfc3339();
    merged.ended_at = runs
        .iter()
        .map(|r| r.results.ended_at.clone())
        .max()
        .unwrap_or_default();
    merged.measured_seconds = runs
        .iter()
        .zip(&offsets)
        .map(|(r, o)| o + r.results.measured_seconds)
        .fold(0.0, f64::max);
    merged.driver.threads = runs.iter().map(|r| r.results.driver.threads).sum();
    merged.partial = partial(&runs);
    merged.reconnect_errors = Default::default();
    merged.param_trace = Default::default();
    for r in &runs {
        for (code, n) in &r.results.reconnect_errors {
            *merged.reconnect_errors.entry(code.clone()).or_default() += n;
        }
        merged.param_trace.extend(r.results.param_trace.clone());
    }
    merged.worker = None;
    merged.merged = Some(MergedFrom {
        workers: runs.len(),
        folders: runs
            .iter()
            .map(|r| r.folder.display().to_string())
            .collect(),
        server_counters_from: 0,
    });
    Ok(merged)
}

fn started_at(run: &WorkerRun) -> Result<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(&run.results.started_at)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| Error::RunFile {
            message: format!(
                "{}: started_at {:?} is not a time: {e}",
                run.folder.display(),
                run.results.started_at
            ),
            fix: "merge the folders `crmbench run --worker` wrote, unedited".into(),
        })
}

/// Every worker's partial reason, or `None` when all ran to the end.
fn partial(runs: &[WorkerRun]) -> Option<String> {
    let reasons: Vec<String> = runs
        .iter()
        .filter_map(|r| {
            let w = r.results.worker.as_ref().map_or(0, |w| w.index);
            r.results
                .partial
                .as_ref()
                .map(|p| format!("worker {w}: {p}"))
        })
        .collect();
    (!reasons.is_empty()).then(|| reasons.join("; "))
}

/// Query `i` of every worker, added up (ratios are filled in afterwards).
fn merge_query(runs: &[WorkerRun], i: usize, offsets: &[f64]) -> Result<QueryResult> {
    fn query(r: &WorkerRun, i: usize) -> &QueryResult {
        &r.results.queries[i]
    }
    let pick = |r| query(r, i);
    let first = pick(&runs[0]);
    let interval = runs[0].results.driver.interval_seconds;
    let baseline: Vec<(&SideStats, &Path)> = runs
        .iter()
        .map(|r| (&pick(r).baseline, r.folder.as_path()))
        .collect();
    let candidate: Option<Vec<(&SideStats, &Path)>> = runs
        .iter()
        .map(|r| pick(r).candidate.as_ref().map(|c| (c, r.folder.as_path())))
        .collect();
    let statements = (0..first.statements.len())
        .map(|k| {
            let mut hist = stats::new_hist();
            for r in runs {
                let st = &pick(r).statements[k];
                add(&mut hist, &st.histogram, &r.folder, &first.name)?;
            }
            Ok(StatementLatency {
                index: k,
                sql: first.statements[k].sql.clone(),
                latency: stats::summarize(&hist),
                histogram: stats::encode(&hist),
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(QueryResult {
        name: first.name.clone(),
        kind: first.kind.clone(),
        weight: first.weight,
        baseline: merge_side(&baseline, offsets, interval, &first.name)?,
        candidate: match candidate {
            Some(sides) => Some(merge_side(&sides, offsets, interval, &first.name)?),
            None => None,
        },
        ratios: None,
        statements,
        // Recomputed from every worker's pairs with the ratios.
        classes: Vec::new(),
        gate: first.gate,
        pair_blocks: runs
            .iter()
            .flat_map(|r| pick(r).pair_blocks.iter().cloned())
            .collect(),
    })
}

/// One side of one query over every worker.
fn merge_side(
    sides: &[(&SideStats, &Path)],
    offsets: &[f64],
    interval: f64,
    query: &str,
) -> Result<SideStats> {
    let mut hist = stats::new_hist();
    let mut merged = SideStats {
        count: 0,
        errors: Default::default(),
        retries: 0,
        tps: 0.0,
        latency: stats::summarize(&hist),
        histogram: String::new(),
        intervals: Vec::new(),
        interval_histograms: Vec::new(),
    };
    for (side, folder) in sides {
        add(&mut hist, &side.histogram, folder, query)?;
        merged.count += side.count;
        merged.retries += side.retries;
        // Each worker's throughput over its own window: they add up.
        merged.tps += side.tps;
        for (code, n) in &side.errors {
            *merged.errors.entry(code.clone()).or_default() += n;
        }
    }
    merged.latency = stats::summarize(&hist);
    merged.histogram = stats::encode(&hist);
    let (intervals, histograms) = series::merge(sides, offsets, interval, query)?;
    merged.intervals = intervals;
    merged.interval_histograms = histograms;
    Ok(merged)
}

/// Add the histogram `encoded` (from `folder`'s query `query`) into `into`.
pub(crate) fn add(into: &mut Hist, encoded: &str, folder: &Path, query: &str) -> Result<()> {
    let h = stats::decode(encoded).map_err(|e| Error::RunFile {
        message: format!(
            "{}: a histogram of query {query} cannot be read: {e}",
            folder.display()
        ),
        fix: "merge the folders `crmbench run --worker` wrote, unedited".into(),
    })?;
    into.add(&h).map_err(|e| Error::RunFile {
        message: format!(
            "{}: a histogram of query {query} does not fit the merged one: {e:?}",
            folder.display()
        ),
        fix: "merge folders written by the same crmbench version".into(),
    })
}

/// Set the merged queries into `merged`, with a paired run's ratios
/// recomputed from every worker's pairs at the family level a single run
/// of the same queries would use.
fn with_ratios(
    merged: &mut Results,
    mut queries: Vec<QueryResult>,
    runs: &[WorkerRun],
) -> Result<()> {
    if merged.driver.paired {
        let blocks: Vec<Vec<Block>> = queries.iter().map(|q| blocks_of(&q.pair_blocks)).collect();
        if blocks.iter().all(Vec::is_empty) && queries.iter().any(|q| q.baseline.count > 0) {
            return Err(Error::RunFile {
                message: format!(
                    "{}: a paired worker run without its pairs: the ratios cannot be recomputed",
                    runs[0].folder.display()
                ),
                fix: "run the workers with this crmbench version".into(),
            });
        }
        let level = crate::run::bonferroni_level(&blocks);
        let z = crate::run::normal::z_two_sided(level);
        let (ratios, tau2) = paired::all_ratios(&blocks, z, level, merged.seed);
        for (i, (q, r)) in queries.iter_mut().zip(ratios).enumerate() {
            q.ratios = r;
            // As a single run computes them (outcome.rs): the same seeds.
            let seed = merged.seed ^ i as u64;
            q.classes = paired::class_results(&blocks[i], (z, level), seed, &tau2);
        }
    }
    merged.queries = queries;
    Ok(())
}

/// The blocks of a query's pairs as workers wrote them, each pair with its
/// tenant class (none when the worker kept no classes, as older files).
fn blocks_of(written: &[crate::results::PairBlock]) -> Vec<Block> {
    written
        .iter()
        .map(|b| Block {
            client: b.client,
            pairs: b.pairs.clone(),
            classes: if b.classes.len() == b.pairs.len() {
                b.classes.clone()
            } else {
                vec![paired::NO_CLASS; b.pairs.len()]
            },
            seen: b.seen,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::PairBlock;

    /// One worker's blocks of one client: `n` pairs per block, every
    /// third pair of each class, big tenants' candidate `slow` times the
    /// baseline, the others alike.
    fn worker(client: u32, slow: u32, n: u32) -> Vec<PairBlock> {
        (0..4)
            .map(|k| {
                let classes: Vec<u8> = (0..n).map(|i| (i % 3) as u8).collect();
                let pairs = (0..n)
                    .map(|i| {
                        let base = 400 + (i * 37 + k * 11 + client * 5) % 200;
                        let cand = if i % 3 == 0 {
                            base * slow
                        } else {
                            base + (i % 7)
                        };
                        (base, cand)
                    })
                    .collect();
                PairBlock {
                    client,
                    pairs,
                    seen: u64::from(n),
                    classes,
                }
            })
            .collect()
    }

    /// Classes of two workers' pairs: every class of theirs comes back,
    /// with all pairs of both, and the big tenants' slowdown shows in the
    /// big class alone.
    #[test]
    fn merged_pairs_keep_their_tenant_classes() {
        let mut written = worker(0, 3, 60);
        written.extend(worker(1, 3, 60));
        let blocks = blocks_of(&written);
        let z = crate::run::normal::z_two_sided(0.95);
        let (_, tau2) = paired::all_ratios(std::slice::from_ref(&blocks), z, 0.95, 1);
        let classes = paired::class_results(&blocks, (z, 0.95), 1, &tau2);
        let names: Vec<&str> = classes.iter().map(|c| c.class.as_str()).collect();
        assert_eq!(names, ["big", "mid", "small"]);
        for c in &classes {
            assert_eq!(c.pairs, 2 * 4 * 20, "{}", c.class);
        }
        let ratio = |i: usize| classes[i].ratios.as_ref().unwrap().p50.ratio;
        assert!((ratio(0) - 3.0).abs() < 0.1, "big {}", ratio(0));
        assert!((ratio(2) - 1.0).abs() < 0.05, "small {}", ratio(2));
        // A worker that kept no classes: its pairs have none, not a wrong one.
        let mut old = worker(2, 3, 60);
        old.iter_mut().for_each(|b| b.classes.clear());
        assert!(paired::classes_present(&blocks_of(&old)).is_empty());
    }
}
