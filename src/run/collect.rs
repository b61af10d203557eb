//! What a run keeps of the measured window, per query: the running totals of
//! each side (histograms, errors, retries), the per-interval series, and the
//! paired samples grouped in blocks for the bootstrap. The measurement window
//! feeds it each interval's merged slot; the results are assembled from it.

use super::driver::{SideSlot, Slot};
use super::paired;
use crate::results::IntervalStats;
use crate::rng::Prng;
use crate::stats;
use crate::workload::Workload;

/// Totals, series and pairs of the measured window.
pub struct Collector {
    paired: bool,
    /// Baseline totals per query.
    pub totals: Vec<SideSlot>,
    /// Candidate totals per query (paired; empty otherwise).
    pub candidate_totals: Vec<SideSlot>,
    /// Baseline series per query.
    pub series: Vec<Vec<IntervalStats>>,
    /// Candidate series per query (paired).
    pub candidate_series: Vec<Vec<IntervalStats>>,
    /// Paired samples per query, one block per interval.
    pub pairs: Vec<Vec<paired::Block>>,
    /// Each series point's histogram per query, baseline and candidate
    /// (kept only for a worker run, whose intervals `merge` adds up).
    pub interval_histograms: Option<[Vec<Vec<String>>; 2]>,
    reservoir_rng: Prng,
    /// Set after a sequential run's last look: its intervals, and so the
    /// file's, are the ones that look decided on.
    pairs_frozen: bool,
}

impl Collector {
    /// Empty totals for `workload`; `seed` drives the pair reservoirs.
    pub fn new(workload: &Workload, paired: bool, seed: u64) -> Collector {
        let empty = Slot::new(workload, paired);
        let q = workload.queries.len();
        Collector {
            paired,
            totals: empty.baseline,
            candidate_totals: empty.candidate,
            series: vec![Vec::new(); q],
            candidate_series: vec![Vec::new(); q],
            pairs: vec![Vec::new(); q],
            interval_histograms: None,
            reservoir_rng: Prng::for_parts(&[seed, 0x5EED]),
            pairs_frozen: false,
        }
    }

    /// Whether the run is paired (candidate totals and pairs are kept).
    pub fn paired(&self) -> bool {
        self.paired
    }

    /// Keep each series point's histogram too (a worker run).
    pub fn keep_interval_histograms(&mut self) {
        let q = self.totals.len();
        self.interval_histograms = Some([vec![Vec::new(); q], vec![Vec::new(); q]]);
    }

    /// One interval of the window, ending `t` seconds into it.
    pub fn add_interval(&mut self, t: f64, slot: &Slot) {
        for i in 0..self.totals.len() {
            self.totals[i].merge(&slot.baseline[i]);
            self.series[i].push(interval_stats(t, &slot.baseline[i]));
            self.keep_histogram(0, i, &slot.baseline[i]);
            if self.paired {
                self.candidate_totals[i].merge(&slot.candidate[i]);
                self.candidate_series[i].push(interval_stats(t, &slot.candidate[i]));
                self.keep_histogram(1, i, &slot.candidate[i]);
                self.add_pairs(i, slot);
            }
        }
    }

    fn keep_histogram(&mut self, side: usize, query: usize, slot: &SideSlot) {
        if let Some(kept) = self.interval_histograms.as_mut() {
            kept[side][query].push(stats::encode(&slot.hist));
        }
    }

    /// What finished after the last tick: it counts, and it is a point of
    /// the baseline series only when something happened in it.
    pub fn add_tail(&mut self, t: f64, slot: &Slot) {
        for i in 0..self.totals.len() {
            self.totals[i].merge(&slot.baseline[i]);
            if !slot.baseline[i].hist.is_empty() || !slot.baseline[i].errors.is_empty() {
                self.series[i].push(interval_stats(t, &slot.baseline[i]));
                self.keep_histogram(0, i, &slot.baseline[i]);
            }
            if self.paired {
                self.candidate_totals[i].merge(&slot.candidate[i]);
                self.add_pairs(i, slot);
            }
        }
    }

    /// Keep no more pairs (a sequential run after its last look).
    pub fn freeze_pairs(&mut self) {
        self.pairs_frozen = true;
    }

    fn add_pairs(&mut self, i: usize, slot: &Slot) {
        if self.pairs_frozen {
            return;
        }
        self.pairs[i].extend(paired::blocks(&slot.pairs[i], &mut self.reservoir_rng));
    }
}

/// One point of a series: the interval's count, errors and percentiles.
pub fn interval_stats(t: f64, slot: &SideSlot) -> IntervalStats {
    let s = stats::summarize(&slot.hist);
    IntervalStats {
        t,
        count: s.count,
        errors: slot.errors.values().sum(),
        p50_us: s.p50_us,
        p95_us: s.p95_us,
        p99_us: s.p99_us,
        mean_us: s.mean_us.round() as u64,
    }
}

/// The live progress line of one interval (baseline side, all queries).
pub fn progress_line(t: f64, slot: &Slot, transactions: u64, interval_seconds: f64) -> String {
    let mut all = stats::new_hist();
    let mut errors = 0;
    for s in &slot.baseline {
        stats::merge(&mut all, &s.hist);
        errors += s.errors.values().sum::<u64>();
    }
    format!(
        "run: {:>6.1}s  {:>9.0} tps  errors {:>5}  p99 {:>9.2} ms",
        t,
        transactions as f64 / interval_seconds,
        errors,
        stats::summarize(&all).p99_us as f64 / 1000.0
    )
}
