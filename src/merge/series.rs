//! The per-interval series of several workers, added interval by interval.
//! Worker w's j-th point covers its j-th interval after its window opened;
//! its window opened `offset_w` seconds after the earliest worker's, so the
//! point lands in merged interval `round(offset_w / interval) + j`. Each
//! merged point's percentiles come from the sum of the workers' histograms
//! of that interval (percentiles cannot be averaged).

use std::collections::BTreeMap;
use std::path::Path;

use crate::error::{Error, Result};
use crate::results::{IntervalStats, SideStats};
use crate::stats::{self, Hist};

/// A merged interval under construction.
struct Point {
    t: f64,
    count: u64,
    errors: u64,
    hist: Hist,
}

/// The merged series of one side of one query, with each point's histogram.
pub(super) fn merge(
    sides: &[(&SideStats, &Path)],
    offsets: &[f64],
    interval: f64,
    query: &str,
) -> Result<(Vec<IntervalStats>, Vec<String>)> {
    let interval = if interval > 0.0 { interval } else { 1.0 };
    let mut points: BTreeMap<i64, Point> = BTreeMap::new();
    for ((side, folder), offset) in sides.iter().zip(offsets) {
        if side.interval_histograms.len() != side.intervals.len() {
            return Err(Error::RunFile {
                message: format!(
                    "{}: query {query} has {} series points but {} interval histograms: \
                     not a `run --worker` folder of this version",
                    folder.display(),
                    side.intervals.len(),
                    side.interval_histograms.len()
                ),
                fix: "run every worker with `crmbench run --worker K/N` of one crmbench version"
                    .into(),
            });
        }
        let shift = (offset / interval).round() as i64;
        for (j, (stat, encoded)) in side
            .intervals
            .iter()
            .zip(&side.interval_histograms)
            .enumerate()
        {
            let point = points.entry(shift + j as i64).or_insert_with(|| Point {
                t: 0.0,
                count: 0,
                errors: 0,
                hist: stats::new_hist(),
            });
            point.t = point.t.max(stat.t + offset);
            point.count += stat.count;
            point.errors += stat.errors;
            super::add(&mut point.hist, encoded, folder, query)?;
        }
    }
    Ok(points
        .into_values()
        .map(|p| {
            let s = stats::summarize(&p.hist);
            let stat = IntervalStats {
                t: p.t,
                count: p.count,
                errors: p.errors,
                p50_us: s.p50_us,
                p95_us: s.p95_us,
                p99_us: s.p99_us,
                mean_us: s.mean_us.round() as u64,
            };
            (stat, stats::encode(&p.hist))
        })
        .unzip())
}
