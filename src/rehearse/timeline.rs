//! The workload's side of a rehearsal, from the run's results: the
//! per-interval timeline of all queries (throughput, p50/p99, errors) and
//! each query's latency before, during and after the migration's
//! statements ran.

use std::collections::BTreeMap;

use super::model::{PhaseLatency, StatementRecord, TimelinePoint, WorkloadRecord};
use crate::results::{IntervalStats, Results};

/// The workload record of a rehearsal whose run produced `results`, with
/// statement times on the window's clock.
pub fn record(
    results: &Results,
    statements: &[StatementRecord],
    clients: usize,
    rate: Option<f64>,
    results_file: &str,
) -> WorkloadRecord {
    let mut errors = BTreeMap::new();
    let mut max_us = 0;
    for q in &results.queries {
        max_us = max_us.max(q.baseline.latency.max_us);
        for (code, n) in &q.baseline.errors {
            *errors.entry(code.clone()).or_insert(0) += n;
        }
    }
    let span = statements
        .first()
        .zip(statements.last())
        .map(|(a, b)| (a.start_s, b.end_s));
    WorkloadRecord {
        rate,
        clients,
        results_file: results_file.to_string(),
        timeline: timeline(results),
        phases: results
            .queries
            .iter()
            .map(|q| phases(&q.name, &q.baseline.intervals, span))
            .collect(),
        max_latency_ms: max_us as f64 / 1e3,
        errors,
    }
}

/// All queries together per interval: summed throughput and errors, the
/// worst query's p50 and p99.
pub fn timeline(results: &Results) -> Vec<TimelinePoint> {
    let mut by_t: BTreeMap<i64, (TimelinePoint, u64)> = BTreeMap::new();
    for q in &results.queries {
        for i in &q.baseline.intervals {
            let (p, count) = by_t.entry((i.t * 1e3).round() as i64).or_insert((
                TimelinePoint {
                    t: i.t,
                    tps: 0.0,
                    errors: 0,
                    p50_ms: 0.0,
                    p99_ms: 0.0,
                },
                0,
            ));
            *count += i.count;
            p.errors += i.errors;
            p.p50_ms = p.p50_ms.max(i.p50_us as f64 / 1e3);
            p.p99_ms = p.p99_ms.max(i.p99_us as f64 / 1e3);
        }
    }
    // Each interval's own length: the last one of a run is usually short.
    let mut previous = 0.0;
    by_t.into_values()
        .map(|(mut p, count)| {
            p.tps = count as f64 / (p.t - previous).max(1e-3);
            previous = p.t;
            p
        })
        .collect()
}

/// A query's worst interval p99 before, during and after `span`.
fn phases(query: &str, intervals: &[IntervalStats], span: Option<(f64, f64)>) -> PhaseLatency {
    let mut out = PhaseLatency {
        query: query.to_string(),
        before_p99_ms: None,
        during_p99_ms: None,
        after_p99_ms: None,
    };
    let Some((start, end)) = span else { return out };
    let mut previous = 0.0;
    for i in intervals {
        let (from, to) = (previous, i.t);
        previous = i.t;
        if i.count == 0 {
            continue;
        }
        let slot = if to <= start {
            &mut out.before_p99_ms
        } else if from >= end {
            &mut out.after_p99_ms
        } else {
            &mut out.during_p99_ms
        };
        let ms = i.p99_us as f64 / 1e3;
        *slot = Some(slot.map_or(ms, |v: f64| v.max(ms)));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn interval(t: f64, p99_us: u64) -> IntervalStats {
        IntervalStats {
            t,
            count: 10,
            errors: 0,
            p50_us: p99_us / 2,
            p95_us: p99_us,
            p99_us,
            mean_us: p99_us / 2,
        }
    }

    #[test]
    fn phases_split_at_the_statement_span() {
        let intervals = [
            interval(1.0, 1000),
            interval(2.0, 2_500_000),
            interval(3.0, 3000),
            interval(4.0, 2000),
        ];
        let p = phases("q", &intervals, Some((1.2, 2.5)));
        assert_eq!(p.before_p99_ms, Some(1.0));
        assert_eq!(p.during_p99_ms, Some(2500.0));
        assert_eq!(p.after_p99_ms, Some(2.0));
    }
}
