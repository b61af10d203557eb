//! Ratios between two separate runs (yesterday's file against today's), from
//! each query's per-interval series: a seeded circular block bootstrap over
//! intervals, each side resampled on its own (the runs are independent).
//! Blocks of neighbouring intervals keep the machine's drift inside a run
//! together, so the interval is not too narrow. What no resampling of one run
//! can show is the drift *between* runs (a whole run 20% slower): that is why
//! separate runs get a wider default threshold and a stated noise band.

use crate::results::{IntervalStats, RatioCi};
use crate::rng::Prng;

/// Bootstrap resamples.
pub const RESAMPLES: usize = 1_000;
/// Fewest intervals with samples each side needs for an interval.
pub const MIN_INTERVALS: usize = 5;

/// Which per-interval percentile a series is judged on.
pub type Pick = fn(&IntervalStats) -> u64;

/// The figure of one side: the count-weighted mean of its per-interval
/// percentiles (`pick`; intervals without samples ignored). `None` when
/// nothing was measured.
pub fn weighted(intervals: &[IntervalStats], pick: Pick) -> Option<f64> {
    // f64: counts from a damaged file may overflow a u64 sum.
    let n: f64 = intervals.iter().map(|i| i.count as f64).sum();
    if n == 0.0 {
        return None;
    }
    let sum: f64 = intervals
        .iter()
        .map(|i| i.count as f64 * pick(i) as f64)
        .sum();
    Some(sum / n)
}

/// current / baseline ratio of [`weighted`] with a `level` interval.
/// `None` with fewer than [`MIN_INTERVALS`] measured intervals on a side.
pub fn percentile_ratio(
    base: &[IntervalStats],
    current: &[IntervalStats],
    pick: Pick,
    level: f64,
    seed: u64,
) -> Option<RatioCi> {
    let measured = |s: &[IntervalStats]| -> Vec<IntervalStats> {
        s.iter().copied().filter(|i| i.count > 0).collect()
    };
    ratio_ci(
        &measured(base),
        &measured(current),
        |s| weighted(s, pick),
        level,
        seed,
    )
}

/// One interval of a whole run's throughput: (successful transactions, seconds).
pub type Slice = (u64, f64);

/// The whole run's series: counts summed over queries per interval, each
/// interval's length from its end time (`t`) and the previous one's.
pub fn total_series(queries: &[&[IntervalStats]]) -> Vec<Slice> {
    let len = queries.iter().map(|q| q.len()).max().unwrap_or(0);
    let mut out = Vec::with_capacity(len);
    let mut prev_t = 0.0;
    for i in 0..len {
        let count = queries
            .iter()
            .filter_map(|q| q.get(i))
            .fold(0u64, |sum, s| sum.saturating_add(s.count));
        let t = queries
            .iter()
            .filter_map(|q| q.get(i))
            .map(|s| s.t)
            .fold(f64::NAN, f64::max);
        let secs = t - prev_t;
        prev_t = t;
        if secs.is_finite() && secs > 0.0 {
            out.push((count, secs));
        }
    }
    out
}

fn rate(s: &[Slice]) -> Option<f64> {
    let secs: f64 = s.iter().map(|x| x.1).sum();
    (secs > 0.0).then(|| s.iter().map(|x| x.0 as f64).sum::<f64>() / secs)
}

/// current / baseline ratio of transactions per second with a `level` interval.
pub fn throughput_ratio(
    base: &[Slice],
    current: &[Slice],
    level: f64,
    seed: u64,
) -> Option<RatioCi> {
    ratio_ci(base, current, rate, level, seed ^ 0x0074_7073)
}

/// The median of the queries' ratios when at least half of them moved the
/// same way beyond `threshold`: all queries slowing down together is far more
/// often the machine (another job, a noisy neighbour) than one change.
pub fn common_drift(ratios: &[f64], threshold: f64) -> Option<f64> {
    let mut r: Vec<f64> = ratios.iter().copied().filter(|x| x.is_finite()).collect();
    if r.len() < 2 {
        return None;
    }
    r.sort_by(f64::total_cmp);
    let up = r.iter().filter(|&&x| x > 1.0 + threshold).count();
    let down = r.iter().filter(|&&x| x < 1.0 - threshold).count();
    (2 * up.max(down) >= r.len()).then(|| r[r.len() / 2])
}

/// Block length for `n` intervals: n^(1/3), the usual order for a moving-block
/// bootstrap of a mean.
fn block_len(n: usize) -> usize {
    ((n as f64).cbrt().ceil() as usize).clamp(1, n.max(1))
}

/// One circular block resample of `series` into `out`.
fn resample<T: Copy>(series: &[T], rng: &mut Prng, out: &mut Vec<T>) {
    out.clear();
    let n = series.len();
    let b = block_len(n);
    while out.len() < n {
        let start = rng.below(n as u64) as usize;
        for k in 0..b {
            if out.len() == n {
                break;
            }
            out.push(series[(start + k) % n]);
        }
    }
}

fn ratio_ci<T: Copy>(
    base: &[T],
    current: &[T],
    stat: impl Fn(&[T]) -> Option<f64>,
    level: f64,
    seed: u64,
) -> Option<RatioCi> {
    if base.len() < MIN_INTERVALS || current.len() < MIN_INTERVALS {
        return None;
    }
    let ratio = |b: &[T], c: &[T]| match (stat(b), stat(c)) {
        (Some(b), Some(c)) if b > 0.0 => Some(c / b),
        _ => None,
    };
    let point = ratio(base, current)?;
    let mut rng = Prng::for_parts(&[seed, 0x5E9A]);
    let (mut rb, mut rc) = (Vec::new(), Vec::new());
    let mut samples = Vec::with_capacity(RESAMPLES);
    for _ in 0..RESAMPLES {
        resample(base, &mut rng, &mut rb);
        resample(current, &mut rng, &mut rc);
        if let Some(r) = ratio(&rb, &rc) {
            samples.push(r);
        }
    }
    if samples.is_empty() {
        return None;
    }
    samples.sort_by(f64::total_cmp);
    let alpha = (1.0 - level).clamp(1e-6, 1.0);
    let at = |p: f64| samples[((samples.len() - 1) as f64 * p).round() as usize];
    Some(RatioCi {
        ratio: point,
        lo: at(alpha / 2.0),
        hi: at(1.0 - alpha / 2.0),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const P95: Pick = |i| i.p95_us;

    fn p95_ratio(
        a: &[IntervalStats],
        b: &[IntervalStats],
        level: f64,
        seed: u64,
    ) -> Option<RatioCi> {
        percentile_ratio(a, b, P95, level, seed)
    }

    /// A run of `n` one-second intervals whose p95 drifts around `level` µs.
    fn series(n: usize, level: f64, seed: u64) -> Vec<IntervalStats> {
        let mut rng = Prng::for_parts(&[seed]);
        let mut drift = 1.0;
        (0..n)
            .map(|i| {
                // A slow random walk (the machine) plus per-interval noise.
                drift = (drift + 0.05 * (rng.unit() - 0.5)).clamp(0.8, 1.2);
                let p95 = level * drift * (0.9 + 0.2 * rng.unit());
                IntervalStats {
                    t: (i + 1) as f64,
                    count: 400 + rng.below(200),
                    errors: 0,
                    p50_us: (p95 / 3.0) as u64,
                    p95_us: p95 as u64,
                    p99_us: (p95 * 1.5) as u64,
                    mean_us: (p95 / 2.0) as u64,
                }
            })
            .collect()
    }

    #[test]
    fn identical_series_give_ratio_one_inside_the_interval() {
        let s = series(20, 2_000.0, 1);
        let r = p95_ratio(&s, &s, 0.95, 7).unwrap();
        assert_eq!(r.ratio, 1.0);
        assert!(r.lo < 1.0 && 1.0 < r.hi, "{r:?}");
    }

    #[test]
    fn independent_runs_of_the_same_level_contain_one() {
        let r = p95_ratio(&series(20, 2_000.0, 1), &series(20, 2_000.0, 2), 0.95, 7).unwrap();
        assert!(r.lo <= 1.0 && 1.0 <= r.hi, "{r:?}");
    }

    #[test]
    fn a_50_percent_slower_run_lies_wholly_beyond_25_percent() {
        let r = p95_ratio(&series(20, 2_000.0, 1), &series(20, 3_000.0, 2), 0.95, 7).unwrap();
        assert!(r.lo > 1.25, "{r:?}");
        assert!((r.ratio - 1.5).abs() < 0.1, "{r:?}");
    }

    #[test]
    fn same_seed_same_interval() {
        let (a, b) = (series(15, 1_000.0, 3), series(15, 1_100.0, 4));
        assert_eq!(p95_ratio(&a, &b, 0.95, 9), p95_ratio(&a, &b, 0.95, 9));
    }

    #[test]
    fn too_few_measured_intervals_give_no_interval() {
        let mut s = series(10, 1_000.0, 5);
        for i in s.iter_mut().skip(4) {
            i.count = 0;
        }
        assert!(p95_ratio(&s, &series(10, 1_000.0, 6), 0.95, 1).is_none());
    }

    #[test]
    fn common_drift_needs_half_the_queries_moving_together() {
        assert_eq!(common_drift(&[1.4, 1.5, 1.6, 0.9], 0.25), Some(1.5));
        assert_eq!(common_drift(&[1.4, 1.0, 1.1, 0.9], 0.25), None);
        assert_eq!(common_drift(&[0.5, 0.6, 1.0], 0.25), Some(0.6));
        assert_eq!(common_drift(&[2.0], 0.25), None);
    }

    #[test]
    fn counts_of_a_damaged_file_do_not_overflow() {
        // Found by tests/properties.rs: a count of u64::MAX panicked in a sum.
        let mut s = series(MIN_INTERVALS + 2, 1_000.0, 3);
        s[0].count = u64::MAX;
        s[1].count = u64::MAX;
        assert!(weighted(&s, P95).is_some());
        assert_eq!(total_series(&[&s, &s])[0].0, u64::MAX);
        let _ = percentile_ratio(&s, &s, P95, 0.95, 1);
        let total = total_series(&[&s]);
        let _ = throughput_ratio(&total, &total, 0.95, 1);
    }

    #[test]
    fn weighted_percentile_weights_by_count() {
        let mut s = series(2, 1_000.0, 1);
        (s[0].count, s[0].p95_us, s[1].count, s[1].p95_us) = (3, 100, 1, 500);
        assert_eq!(weighted(&s, P95), Some(200.0));
        assert_eq!(
            weighted(&s, |i| i.p50_us),
            Some((3 * (s[0].p50_us) + s[1].p50_us) as f64 / 4.0)
        );
    }

    #[test]
    fn total_series_sums_queries_and_halved_throughput_is_detected() {
        let a = series(20, 1_000.0, 1);
        let b = series(20, 1_000.0, 2);
        let total = total_series(&[&a, &b]);
        assert_eq!(total.len(), 20);
        assert_eq!(total[3].0, a[3].count + b[3].count);
        assert!((total[3].1 - 1.0).abs() < 1e-9);
        let halved: Vec<Slice> = total.iter().map(|&(c, s)| (c / 2, s)).collect();
        let r = throughput_ratio(&total, &halved, 0.95, 1).unwrap();
        assert!(r.hi < 0.6, "{r:?}");
        let same = throughput_ratio(&total, &total, 0.95, 1).unwrap();
        assert!(same.lo <= 1.0 && 1.0 <= same.hi, "{same:?}");
    }
}
