//! Paired statistics: candidate / baseline ratios of p50, p95 and p99 with a
//! normal interval on the log ratio, measured in the same window by the same
//! client with the same parameters. Intervals are Bonferroni-adjusted across
//! queries, so "every query's interval contains 1.00" is a claim about all of
//! them at once. The standard error has two parts:
//! - within clients: a seeded bootstrap that keeps every client and resamples
//!   its blocks (one block per interval of the series): the machine's drift
//!   makes neighbouring pairs alike, and resampling single pairs would give
//!   intervals that are too narrow;
//! - between clients: a connection's backend may be a little faster or
//!   slower for the whole run. [`super::between`] estimates that variance
//!   from the spread of the clients' own ratios beyond their within-client
//!   noise, pooled over the run's queries. Resampling clients instead (a
//!   two-stage bootstrap, before wave 6) counted the within noise twice and,
//!   with 2 clients, rested on one difference per query.
//!
//! A block is a uniform sample (reservoir) of its client's pairs in its
//! interval and records how many pairs it stands for; the percentiles weight
//! each kept pair by that, so a busy interval counts for what it measured,
//! not for the pairs a reservoir happened to keep.

use super::between::{self, ClientLog};
use crate::results::{ClassLatency, ClassResult, RatioCi, Ratios};
use crate::rng::Prng;
use crate::workload::params::TenantClass;

/// Bootstrap resamples for the standard error of each log ratio.
pub const RESAMPLES: usize = 200;
/// Pairs kept per query per block (reservoir).
pub const MAX_PAIRS: usize = 2_000;
/// Most pairs one bootstrap resamples: beyond it, every block is thinned by
/// the same stride (each thinned block's pairs weigh what it stands for), which
/// only widens the interval a little and keeps a look's cost bounded.
pub const MAX_BOOT_PAIRS: usize = 16_384;

/// The percentile `q` of `values` (the element at rank round((n − 1)·q)).
fn quantile(values: &mut [u32], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable(k);
    f64::from(*v)
}

/// The percentile `q` of (value, weight) items: the smallest value whose
/// cumulative weight passes q·(W − w̄) + w̄/2 (w̄ the mean weight), which is
/// [`quantile`]'s rank exactly when the weights are equal. A weighted
/// quickselect: linear time, like the unweighted one.
fn weighted_quantile(items: &mut [(u32, f64)], q: f64) -> f64 {
    if items.is_empty() {
        return 0.0;
    }
    let total: f64 = items.iter().map(|p| p.1).sum();
    let mean = total / items.len() as f64;
    let target = q * (total - mean) + mean / 2.0;
    let (mut lo, mut hi, mut below) = (0, items.len(), 0.0);
    let mut last = items[0].0;
    while hi - lo > 32 {
        let mid = lo + (hi - lo) / 2;
        items[lo..hi].select_nth_unstable_by_key(mid - lo, |p| p.0);
        let left: f64 = items[lo..mid].iter().map(|p| p.1).sum();
        if below + left > target {
            hi = mid;
        } else if below + left + items[mid].1 > target {
            return f64::from(items[mid].0);
        } else {
            below += left + items[mid].1;
            last = items[mid].0;
            lo = mid + 1;
        }
    }
    items[lo..hi].sort_unstable_by_key(|p| p.0);
    for p in &items[lo..hi] {
        below += p.1;
        last = p.0;
        if below > target {
            break;
        }
    }
    f64::from(last)
}

/// Work space of the percentile ratios, reused across resamples.
#[derive(Default)]
struct Scratch {
    base: Vec<u32>,
    cand: Vec<u32>,
    wbase: Vec<(u32, f64)>,
    wcand: Vec<(u32, f64)>,
}

/// A statistic of each side whose candidate / baseline ratio is estimated.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// A percentile, as a fraction (0.95).
    Quantile(f64),
    /// The mean: what a query costs the server in all (the tail's share
    /// included), where a percentile says what one transaction waits.
    Mean,
}

/// The weighted mean of each side of `pairs` (baseline, candidate).
fn means(pairs: &[(u32, u32)], weights: Option<&[f64]>) -> (f64, f64) {
    let (mut b, mut c, mut n) = (0.0, 0.0, 0.0);
    for (i, p) in pairs.iter().enumerate() {
        let w = weights.map_or(1.0, |w| w[i]);
        b += w * f64::from(p.0);
        c += w * f64::from(p.1);
        n += w;
    }
    if n > 0.0 { (b / n, c / n) } else { (0.0, 0.0) }
}

/// Candidate / baseline of statistic `stat`; `weights` (one per pair) when
/// the pairs do not all stand for the same number of pairs.
fn ratio_at(pairs: &[(u32, u32)], weights: Option<&[f64]>, stat: Stat, s: &mut Scratch) -> f64 {
    let q = match stat {
        Stat::Quantile(q) => q,
        Stat::Mean => {
            let (b, c) = means(pairs, weights);
            return if b > 0.0 { c / b } else { f64::NAN };
        }
    };
    let (b, c) = match weights {
        None => {
            s.base.clear();
            s.cand.clear();
            s.base.extend(pairs.iter().map(|p| p.0));
            s.cand.extend(pairs.iter().map(|p| p.1));
            (quantile(&mut s.base, q), quantile(&mut s.cand, q))
        }
        Some(w) => {
            s.wbase.clear();
            s.wcand.clear();
            s.wbase.extend(pairs.iter().zip(w).map(|(p, w)| (p.0, *w)));
            s.wcand.extend(pairs.iter().zip(w).map(|(p, w)| (p.1, *w)));
            (
                weighted_quantile(&mut s.wbase, q),
                weighted_quantile(&mut s.wcand, q),
            )
        }
    };
    if b <= 0.0 {
        return f64::NAN;
    }
    c / b
}

/// The class byte of a pair without a tenant size class.
pub const NO_CLASS: u8 = u8::MAX;

/// One client's pairs within one interval.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// The client.
    pub client: u32,
    /// (baseline µs, candidate µs).
    pub pairs: Vec<(u32, u32)>,
    /// Each pair's tenant size class (a `TenantClass` as u8, or
    /// [`NO_CLASS`]); one byte a pair, so classes cost the reservoir little.
    pub classes: Vec<u8>,
    /// How many pairs the client measured in the interval, of which `pairs`
    /// is a uniform sample (0: as many as are kept, as in older files).
    pub seen: u64,
}

impl Block {
    /// Only the pairs of tenant class `class` (the same client and interval,
    /// so a class's bootstrap keeps the run's block structure).
    pub fn of_class(&self, class: u8) -> Block {
        let (pairs, classes) = self
            .pairs
            .iter()
            .zip(&self.classes)
            .filter(|(_, c)| **c == class)
            .map(|(p, c)| (*p, *c))
            .unzip();
        let kept: Vec<(u32, u32)> = pairs;
        Block {
            client: self.client,
            seen: (self.weight() * kept.len() as f64).round() as u64,
            pairs: kept,
            classes,
        }
    }

    /// How many measured pairs each kept pair stands for (≥ 1).
    pub fn weight(&self) -> f64 {
        let kept = self.pairs.len().max(1) as f64;
        (self.seen as f64 / kept).max(1.0)
    }
}

/// The blocks of one tenant class, empty ones left out.
pub fn class_blocks(blocks: &[Block], class: u8) -> Vec<Block> {
    blocks
        .iter()
        .map(|b| b.of_class(class))
        .filter(|b| !b.pairs.is_empty())
        .collect()
}

/// Split one interval's reservoir into per-client blocks, each kept to at
/// most [`MAX_PAIRS`] by reservoir sampling and recording how many pairs its
/// client measured.
pub fn blocks(reservoir: &super::pairs::PairReservoir, rng: &mut Prng) -> Vec<Block> {
    let mut by_client: std::collections::BTreeMap<u32, Vec<(u32, u32, u8)>> = Default::default();
    for &(c, b, k, class) in reservoir.kept() {
        by_client.entry(c).or_default().push((b, k, class));
    }
    by_client
        .into_iter()
        .map(|(client, all)| {
            let mut kept = Block {
                client,
                seen: reservoir.offered(client).max(all.len() as u64),
                ..Block::default()
            };
            reservoir_add(&mut kept, &mut 0, &all, rng);
            kept
        })
        .collect()
}

/// The tenant classes among a query's pairs, when there are at least two
/// (a query that only ever runs for big tenants has no classes to tell apart).
pub fn classes_present(blocks: &[Block]) -> Vec<u8> {
    let mut seen = [false; 3];
    for c in blocks.iter().flat_map(|b| &b.classes) {
        if let Some(s) = seen.get_mut(usize::from(*c)) {
            *s = true;
        }
    }
    let present: Vec<u8> = (0..3u8).filter(|c| seen[usize::from(*c)]).collect();
    if present.len() >= 2 {
        present
    } else {
        Vec::new()
    }
}

/// The seed of class `class`'s bootstrap, apart from the whole query's.
pub fn class_seed(seed: u64, class: u8) -> u64 {
    seed ^ ((u64::from(class) + 1) << 40)
}

/// Each tenant class's figures and ratios (intervals at critical value `z`,
/// the run's family one, `level` recorded), for a query's `blocks`; `tau2`
/// the run's client variance per quantile (a class's connections are the
/// query's).
pub fn class_results(
    blocks: &[Block],
    (z, level): (f64, f64),
    seed: u64,
    tau2: &[f64; 4],
) -> Vec<ClassResult> {
    classes_present(blocks)
        .into_iter()
        .map(|c| {
            let cb = class_blocks(blocks, c);
            let (pairs, weights) = all_pairs(&cb.iter().collect::<Vec<_>>());
            let side = |pick: fn(&(u32, u32)) -> u32| {
                let mut items: Vec<(u32, f64)> = match &weights {
                    Some(w) => pairs.iter().zip(w).map(|(p, w)| (pick(p), *w)).collect(),
                    None => pairs.iter().map(|p| (pick(p), 1.0)).collect(),
                };
                let total: f64 = items.iter().map(|i| i.1).sum();
                let mean = items.iter().map(|i| f64::from(i.0) * i.1).sum::<f64>() / total;
                let mut at = |q| weighted_quantile(&mut items, q) as u64;
                ClassLatency {
                    p50_us: at(0.50),
                    p95_us: at(0.95),
                    p99_us: at(0.99),
                    mean_us: if mean.is_finite() {
                        mean.round() as u64
                    } else {
                        0
                    },
                }
            };
            ClassResult {
                class: TenantClass::ALL[usize::from(c)].name().into(),
                pairs: pairs.len(),
                baseline: side(|p| p.0),
                candidate: side(|p| p.1),
                ratios: Estimate::new(&cb, &QS, class_seed(seed, c), false)
                    .map(|e| e.ratios(z, level, tau2)),
            }
        })
        .collect()
}

/// Ratios with `level` confidence intervals (e.g. 1 - 0.05 / queries,
/// Bonferroni): [`ratios_z`] at the two-sided normal critical value of `level`.
pub fn ratios(blocks: &[Block], level: f64, seed: u64) -> Option<Ratios> {
    ratios_z(blocks, super::normal::z_two_sided(level), level, seed)
}

/// The statistics of [`Ratios`]: p50, p95, p99 and the mean.
const QS: [Stat; 4] = [
    Stat::Quantile(0.50),
    Stat::Quantile(0.95),
    Stat::Quantile(0.99),
    Stat::Mean,
];

/// One query's ratios with intervals `exp(ln r ± z·se)`, its client variance
/// estimated from its own clients alone ([`all_ratios`] pools it over a
/// run's queries, as runs do). `None` with fewer than 20 pairs or 3 blocks.
pub fn ratios_z(blocks: &[Block], z: f64, level: f64, seed: u64) -> Option<Ratios> {
    let e = Estimate::new(blocks, &QS, seed, true)?;
    let tau2: Vec<f64> = (0..QS.len())
        .map(|i| between::pooled([e.client_logs(i)]))
        .collect();
    Some(e.ratios(z, level, &tau2))
}

/// Every query's ratios (query `i` seeded `seed ^ i`), the client variance
/// pooled over all of them, and that variance per quantile of [`Ratios`]
/// (for the tenant classes' intervals, which share the connections).
pub fn all_ratios(
    queries: &[Vec<Block>],
    z: f64,
    level: f64,
    seed: u64,
) -> (Vec<Option<Ratios>>, [f64; 4]) {
    let estimates: Vec<Option<Estimate>> = queries
        .iter()
        .enumerate()
        .map(|(i, b)| Estimate::new(b, &QS, seed ^ i as u64, true))
        .collect();
    let mut tau2 = [0.0; 4];
    for (i, t) in tau2.iter_mut().enumerate() {
        *t = between::pooled(estimates.iter().flatten().map(|e| e.client_logs(i)));
    }
    let ratios = estimates
        .iter()
        .map(|e| e.as_ref().map(|e| e.ratios(z, level, &tau2)))
        .collect();
    (ratios, tau2)
}

/// The interval of one quantile `q` for each of `queries` (blocks, seed),
/// the client variance pooled over them, and that variance: a sequential
/// look. Each equals [`ratios_z`]'s at the same quantile, critical value and
/// seed when there is one query.
pub fn look_cis(queries: &[(&[Block], u64)], q: Stat, z: f64) -> (Vec<Option<RatioCi>>, f64) {
    let estimates: Vec<Option<Estimate>> = queries
        .iter()
        .map(|(b, seed)| Estimate::new(b, &[q], *seed, true))
        .collect();
    let tau2 = between::pooled(estimates.iter().flatten().map(|e| e.client_logs(0)));
    let cis = estimates
        .iter()
        .map(|e| e.as_ref().map(|e| e.ci(0, z, tau2)))
        .collect();
    (cis, tau2)
}

/// The interval of one quantile `q` of `blocks` given the client variance
/// `tau2` (a tenant class: its connections are the query's).
pub fn ratio_ci(blocks: &[Block], q: Stat, z: f64, seed: u64, tau2: f64) -> Option<RatioCi> {
    Some(Estimate::new(blocks, &[q], seed, false)?.ci(0, z, tau2))
}

/// One query's bootstrap at some quantiles: the point ratios, the log
/// ratios of resamples that keep every client and resample its blocks
/// (their variance is the within-client part), and per client its own log
/// ratio and the variance of it, for [`between::pooled`].
pub struct Estimate {
    point: Vec<f64>,
    logs: Vec<Vec<f64>>,
    /// Per quantile, per client (empty when not asked for).
    clients: Vec<Vec<ClientLog>>,
    /// Σ (client's share of the pairs)²: the client variance of the
    /// pooled ratio is τ² times this (1/k with k equal clients).
    concentration: f64,
    pairs: usize,
}

impl Estimate {
    /// `None` with fewer than 20 pairs or 3 blocks; `per_client`: also each
    /// client's log ratio (the bootstrap then costs about twice).
    pub fn new(blocks: &[Block], qs: &[Stat], seed: u64, per_client: bool) -> Option<Estimate> {
        let prepared = Prepared::new(blocks)?;
        let mut scratch = Scratch::default();
        let point = qs
            .iter()
            .map(|&q| {
                let w = prepared.weights.as_deref();
                ratio_at(&prepared.pairs, w, q, &mut scratch)
            })
            .collect();
        let (logs, by_client) = resample_logs(&prepared, qs, seed, per_client, &mut scratch);
        let clients = if per_client {
            client_logs(&prepared, qs, &by_client, &mut scratch)
        } else {
            vec![Vec::new(); qs.len()]
        };
        let total: f64 = prepared.shares.iter().sum();
        let concentration = prepared.shares.iter().map(|s| (s / total).powi(2)).sum();
        Some(Estimate {
            point,
            logs,
            clients,
            concentration,
            pairs: prepared.pairs.len(),
        })
    }

    /// Each client's log ratio at quantile `i` with its variance.
    pub fn client_logs(&self, i: usize) -> &[ClientLog] {
        &self.clients[i]
    }

    /// `exp(ln point ± z·se)` at quantile `i`, se² the within-client
    /// bootstrap variance plus `tau2` times the clients' concentration; NaN
    /// bounds when there is no spread to estimate (fewer than half the
    /// resamples usable) or no point estimate.
    pub fn ci(&self, i: usize, z: f64, tau2: f64) -> RatioCi {
        let point = self.point[i];
        let var = variance(&self.logs[i]);
        if !(point.is_finite() && point > 0.0 && var.is_finite()) {
            return RatioCi {
                ratio: point,
                lo: f64::NAN,
                hi: f64::NAN,
            };
        }
        let half = z * (var + tau2 * self.concentration).sqrt();
        RatioCi {
            ratio: point,
            lo: (point.ln() - half).exp(),
            hi: (point.ln() + half).exp(),
        }
    }

    /// The p50, p95, p99 and mean intervals (an estimate made at [`QS`]).
    fn ratios(&self, z: f64, level: f64, tau2: &[f64]) -> Ratios {
        Ratios {
            level,
            pairs: self.pairs,
            p50: self.ci(0, z, tau2[0]),
            p95: self.ci(1, z, tau2[1]),
            p99: self.ci(2, z, tau2[2]),
            mean: Some(self.ci(3, z, tau2[3])),
        }
    }
}

/// The sample variance of `logs`; NaN with fewer than half the resamples.
fn variance(logs: &[f64]) -> f64 {
    if logs.len() < RESAMPLES / 2 {
        return f64::NAN;
    }
    let n = logs.len() as f64;
    let mean = logs.iter().sum::<f64>() / n;
    logs.iter().map(|l| (l - mean).powi(2)).sum::<f64>() / (n - 1.0)
}

/// Every kept pair of `blocks` and, when they are not all alike, the number
/// of measured pairs each stands for.
fn all_pairs(blocks: &[&Block]) -> (Vec<(u32, u32)>, Option<Vec<f64>>) {
    let pairs = blocks
        .iter()
        .flat_map(|b| b.pairs.iter().copied())
        .collect();
    let weights: Vec<f64> = blocks
        .iter()
        .flat_map(|b| std::iter::repeat_n(b.weight(), b.pairs.len()))
        .collect();
    (pairs, unless_equal(weights))
}

/// `None` when every weight is the same (the faster unweighted percentiles
/// then give the same answer).
fn unless_equal(weights: Vec<f64>) -> Option<Vec<f64>> {
    let first = *weights.first()?;
    if weights.iter().all(|w| (w / first - 1.0).abs() < 1e-9) {
        None
    } else {
        Some(weights)
    }
}

/// A block's pairs thinned for the bootstrap, and the weight of each.
type Thinned = (Vec<(u32, u32)>, f64);

/// A query's pairs made ready for the bootstrap.
struct Prepared {
    /// Per client (in order) its non-empty blocks thinned to at most
    /// [`MAX_BOOT_PAIRS`] in all, each with the weight of its kept pairs.
    clients: Vec<Vec<Thinned>>,
    /// Per client the measured pairs it stands for.
    shares: Vec<f64>,
    /// Whether those weights differ (else resamples are unweighted).
    weighted: bool,
    /// Every kept pair, for the point estimate.
    pairs: Vec<(u32, u32)>,
    /// Their weights, when they differ.
    weights: Option<Vec<f64>>,
}

impl Prepared {
    /// `None` with fewer than 20 pairs or 3 blocks.
    fn new(blocks: &[Block]) -> Option<Prepared> {
        let mut by_client: std::collections::BTreeMap<u32, Vec<&Block>> = Default::default();
        for b in blocks.iter().filter(|b| !b.pairs.is_empty()) {
            by_client.entry(b.client).or_default().push(b);
        }
        let kept: Vec<&Block> = by_client.values().flatten().copied().collect();
        let total: usize = kept.iter().map(|b| b.pairs.len()).sum();
        if total < 20 || kept.len() < 3 {
            return None;
        }
        // One stride for every block; a thinned block's pairs stand for the
        // block's measured pairs, so its weight is kept exactly.
        let stride = total.div_ceil(MAX_BOOT_PAIRS).max(1);
        let clients: Vec<Vec<Thinned>> = by_client
            .values()
            .map(|c| {
                c.iter()
                    .map(|b| {
                        let thin: Vec<(u32, u32)> =
                            b.pairs.iter().step_by(stride).copied().collect();
                        let w = b.weight() * b.pairs.len() as f64 / thin.len() as f64;
                        (thin, w)
                    })
                    .collect()
            })
            .collect();
        let shares = clients
            .iter()
            .map(|c| c.iter().map(|(p, w)| w * p.len() as f64).sum())
            .collect();
        let thinned: Vec<f64> = clients.iter().flatten().map(|b| b.1).collect();
        let (pairs, weights) = all_pairs(&kept);
        Some(Prepared {
            weighted: unless_equal(thinned).is_some(),
            clients,
            shares,
            pairs,
            weights,
        })
    }
}

/// The log ratio at each of `qs` in [`RESAMPLES`] stratified resamples
/// (every client once, its blocks drawn with replacement), each pair
/// weighted by what its block stands for when the blocks differ; with
/// `per_client`, also each client's own log ratios (`[client][q]`).
/// Clients are not resampled: their variance is [`between`]'s part.
fn resample_logs(
    prepared: &Prepared,
    qs: &[Stat],
    seed: u64,
    per_client: bool,
    scratch: &mut Scratch,
) -> (Vec<Vec<f64>>, Vec<Vec<Vec<f64>>>) {
    let clients = &prepared.clients;
    let mut rng = Prng::for_parts(&[seed, 0xB007]);
    let mut logs: Vec<Vec<f64>> = qs.iter().map(|_| Vec::with_capacity(RESAMPLES)).collect();
    let mut by_client =
        vec![vec![Vec::new(); qs.len()]; if per_client { clients.len() } else { 0 }];
    let (mut resample, mut weights, mut bounds) = (Vec::new(), Vec::new(), Vec::new());
    let keep = |logs: &mut Vec<f64>, r: f64| {
        if r.is_finite() && r > 0.0 {
            logs.push(r.ln());
        }
    };
    for _ in 0..RESAMPLES {
        resample.clear();
        weights.clear();
        bounds.clear();
        for client in clients {
            let start = resample.len();
            for _ in 0..client.len() {
                let (block, w) = &client[rng.below(client.len() as u64) as usize];
                resample.extend_from_slice(block);
                if prepared.weighted {
                    weights.extend(std::iter::repeat_n(*w, block.len()));
                }
            }
            bounds.push(start..resample.len());
        }
        let w = prepared.weighted.then_some(weights.as_slice());
        for (i, &q) in qs.iter().enumerate() {
            keep(&mut logs[i], ratio_at(&resample, w, q, scratch));
            for (c, r) in by_client.iter_mut().zip(&bounds) {
                let cw = w.map(|w| &w[r.clone()]);
                keep(&mut c[i], ratio_at(&resample[r.clone()], cw, q, scratch));
            }
        }
    }
    (logs, by_client)
}

/// Each client's log ratio at each of `qs` (`[q][client]`) with the
/// variance of its resamples; NaN (left out of the pool) for a client with
/// fewer than 2 blocks or 20 pairs, whose resamples show no spread.
fn client_logs(
    prepared: &Prepared,
    qs: &[Stat],
    by_client: &[Vec<Vec<f64>>],
    scratch: &mut Scratch,
) -> Vec<Vec<ClientLog>> {
    let nan = ClientLog {
        log: f64::NAN,
        var: f64::NAN,
    };
    let mut out = vec![Vec::with_capacity(by_client.len()); qs.len()];
    for (blocks, resampled) in prepared.clients.iter().zip(by_client) {
        let pairs: Vec<(u32, u32)> = blocks.iter().flat_map(|b| b.0.iter().copied()).collect();
        let weights: Vec<f64> = blocks
            .iter()
            .flat_map(|(p, w)| std::iter::repeat_n(*w, p.len()))
            .collect();
        let usable = blocks.len() >= 2 && pairs.len() >= 20;
        for (i, &q) in qs.iter().enumerate() {
            let w = prepared.weighted.then_some(weights.as_slice());
            let r = ratio_at(&pairs, w, q, scratch);
            let var = variance(&resampled[i]);
            out[i].push(if usable && r.is_finite() && r > 0.0 {
                ClientLog { log: r.ln(), var }
            } else {
                nan
            });
        }
    }
    out
}

/// Keep at most [`MAX_PAIRS`] pairs in `kept`, each seen pair equally
/// likely (reservoir), its class beside it.
pub fn reservoir_add(kept: &mut Block, seen: &mut u64, new: &[(u32, u32, u8)], rng: &mut Prng) {
    for &(b, c, class) in new {
        *seen += 1;
        if kept.pairs.len() < MAX_PAIRS {
            kept.pairs.push((b, c));
            kept.classes.push(class);
        } else {
            let j = rng.below(*seen) as usize;
            if j < MAX_PAIRS {
                kept.pairs[j] = (b, c);
                kept.classes[j] = class;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(factor: f64, n: usize, seed: u64) -> Vec<(u32, u32)> {
        let mut rng = Prng::for_parts(&[seed]);
        (0..n)
            .map(|_| {
                // Shared noise per pair (the machine's drift), own noise per side.
                let drift = 200.0 + 800.0 * rng.unit();
                let b = drift * (0.9 + 0.2 * rng.unit());
                let c = drift * (0.9 + 0.2 * rng.unit()) * factor;
                (b as u32, c as u32)
            })
            .collect()
    }

    fn blocks(factor: f64, seed: u64) -> Vec<Block> {
        (0..20)
            .map(|b| Block {
                client: (b % 4) as u32,
                pairs: pairs(factor, 250, seed * 100 + b),
                classes: vec![NO_CLASS; 250],
                seen: 250,
            })
            .collect()
    }

    #[test]
    fn a_a_interval_contains_one() {
        let r = ratios(&blocks(1.0, 1), 0.95, 7).unwrap();
        for ci in [r.p50, r.p95, r.p99] {
            assert!(ci.lo <= 1.0 && 1.0 <= ci.hi, "{ci:?}");
        }
    }

    #[test]
    fn a_20_percent_slowdown_is_outside_the_interval() {
        let r = ratios(&blocks(1.2, 2), 0.95, 7).unwrap();
        assert!(r.p95.lo > 1.1, "{:?}", r.p95);
        assert!((r.p50.ratio - 1.2).abs() < 0.05);
    }

    /// A standard normal draw (Box–Muller).
    fn normal(rng: &mut Prng) -> f64 {
        let u = rng.unit().max(1e-12);
        (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos()
    }

    /// A paired stream as a run records it: `clients` connections, each with
    /// its own speed on each side (a backend a little faster or slower for
    /// the whole run: client-correlated), `intervals` blocks per client with
    /// a drift both sides share, and a lognormal service time per side. The
    /// candidate is `factor` times the baseline in distribution, so every
    /// percentile ratio of the population is `factor`.
    fn stream(
        factor: f64,
        clients: u32,
        intervals: usize,
        per_block: usize,
        seed: u64,
    ) -> Vec<Block> {
        let mut rng = Prng::for_parts(&[seed, 0xC0FE]);
        let speeds: Vec<(f64, f64)> = (0..clients)
            .map(|_| {
                let b = (0.04 * normal(&mut rng)).exp();
                (b, (0.04 * normal(&mut rng)).exp())
            })
            .collect();
        stream_of(factor, &speeds, (intervals, per_block), &mut rng)
    }

    /// [`stream`] for clients of the given (baseline, candidate) speeds.
    fn stream_of(
        factor: f64,
        speeds: &[(f64, f64)],
        (intervals, per_block): (usize, usize),
        rng: &mut Prng,
    ) -> Vec<Block> {
        let mut out = Vec::new();
        for (client, &(speed_b, speed_c)) in speeds.iter().enumerate() {
            for _ in 0..intervals {
                let drift = (0.15 * normal(rng)).exp();
                let pairs = (0..per_block)
                    .map(|_| {
                        let b = 500.0 * drift * speed_b * (0.5 * normal(rng)).exp();
                        let c = 500.0 * drift * speed_c * factor * (0.5 * normal(rng)).exp();
                        (b as u32, c as u32)
                    })
                    .collect();
                out.push(Block {
                    client: client as u32,
                    classes: vec![NO_CLASS; per_block],
                    pairs,
                    seen: per_block as u64,
                });
            }
        }
        out
    }

    /// The point of item 1: each interval holds its stated level on
    /// client-correlated streams, so a family of them holds the family's.
    /// At 90% (so misses are frequent enough to count in 120 seeds) the
    /// share of intervals missing the true ratio must be near 10%.
    #[test]
    fn intervals_cover_the_true_ratio_at_their_level() {
        let seeds = 120;
        let mut missed = [0usize; 2];
        let z = crate::run::normal::z_two_sided(0.90);
        for seed in 0..seeds {
            // One quantile at a time, as a look computes it: the same
            // interval as the file's (see the test below), without the
            // cost of the two quantiles this test does not check.
            let blocks = stream(1.3, 6, 5, 20, seed);
            let ci = |q| look_cis(&[(&blocks[..], seed)], Stat::Quantile(q), z).0[0].unwrap();
            for (i, ci) in [ci(0.50), ci(0.95)].iter().enumerate() {
                if !(ci.lo <= 1.3 && 1.3 <= ci.hi) {
                    missed[i] += 1;
                }
            }
        }
        for (name, m) in ["p50", "p95"].iter().zip(missed) {
            let rate = m as f64 / f64::from(seeds as u32);
            assert!(rate <= 0.16, "{name}: {m} of {seeds} 90% intervals missed");
            assert!(
                rate >= 0.02,
                "{name}: {m} of {seeds}: far too wide to mean 90%"
            );
        }
    }

    /// 90% p50 intervals of 4 queries per seed over 40 seeds, the client
    /// variance pooled over the queries (`between`) or left out: how many
    /// missed the true ratio, of how many. Each side's speed varies by
    /// `spread` between connections, the same for every query (a backend's
    /// speed is the connection's, whatever it runs).
    fn pooled_misses(clients: u32, spread: f64, between: bool) -> (usize, usize) {
        let (mut missed, mut all) = (0, 0);
        let z = crate::run::normal::z_two_sided(0.90);
        for seed in 0..40u64 {
            let mut rng = Prng::for_parts(&[seed, 0xC1]);
            let speeds: Vec<(f64, f64)> = (0..clients)
                .map(|_| {
                    let b = (spread * normal(&mut rng)).exp();
                    (b, (spread * normal(&mut rng)).exp())
                })
                .collect();
            let queries: Vec<Vec<Block>> = (0..4)
                .map(|_| stream_of(1.2, &speeds, (4, 25), &mut rng))
                .collect();
            let cis: Vec<RatioCi> = if between {
                // The pooled p50 intervals alone (as a look computes them:
                // the same as the file's, a quarter of the cost).
                let seeded: Vec<(&[Block], u64)> = (queries.iter().enumerate())
                    .map(|(i, b)| (b.as_slice(), seed ^ i as u64))
                    .collect();
                let (cis, _) = look_cis(&seeded, Stat::Quantile(0.5), z);
                cis.into_iter().flatten().collect()
            } else {
                let at = |(i, b): (usize, &Vec<Block>)| {
                    Estimate::new(b, &[Stat::Quantile(0.5)], seed ^ i as u64, false)
                        .map(|e| e.ci(0, z, 0.0))
                };
                queries.iter().enumerate().filter_map(at).collect()
            };
            for ci in cis {
                all += 1;
                missed += usize::from(!(ci.lo <= 1.2 && 1.2 <= ci.hi));
            }
        }
        (missed, all)
    }

    /// With 2 clients (the README's recipe) and connections as alike as in
    /// [`stream`], the pooled intervals hold their level.
    #[test]
    fn pooled_client_variance_keeps_coverage_at_two_clients() {
        let (m, n) = pooled_misses(2, 0.04, true);
        let rate = m as f64 / n as f64;
        assert!(rate <= 0.16, "{m} of {n} 90% intervals missed");
        assert!(rate >= 0.02, "{m} of {n}: far too wide to mean 90%");
    }

    /// With connections 10% apart, 6 clients: the pooled client variance
    /// keeps the level, and leaving it out would not (so this test sees it).
    #[test]
    fn pooled_client_variance_is_needed_when_clients_differ() {
        let (m, n) = pooled_misses(6, 0.10, true);
        let rate = m as f64 / n as f64;
        assert!(
            (0.02..=0.16).contains(&rate),
            "{m} of {n} 90% intervals missed"
        );
        let (m0, _) = pooled_misses(6, 0.10, false);
        assert!(
            m0 as f64 / n as f64 > 0.2,
            "without the client part: {m0} of {n}"
        );
    }

    /// 90% mean intervals over A/A streams (a quarter of the pairs in one
    /// client's drifting blocks, as [`stream`] makes them) miss 1.0 about
    /// as often as their level says.
    #[test]
    fn mean_intervals_hold_their_level_on_a_a_streams() {
        let z = crate::run::normal::z_two_sided(0.90);
        let seeds = 120u64;
        let missed = (0..seeds)
            .filter(|&seed| {
                let blocks = stream(1.0, 4, 5, 20, seed);
                let ci = look_cis(&[(&blocks[..], seed)], Stat::Mean, z).0[0].unwrap();
                !(ci.lo <= 1.0 && 1.0 <= ci.hi)
            })
            .count();
        let rate = missed as f64 / seeds as f64;
        assert!(
            (0.02..=0.16).contains(&rate),
            "{missed} of {seeds} 90% intervals missed"
        );
    }

    /// A change the median does not see: 4% of the candidate's
    /// transactions take 10 times as long (a plan that flips for a few
    /// parameters). The mean (+36%) is a regression at a 10% threshold;
    /// the median moves by a few percent only.
    #[test]
    fn a_shifted_mean_is_detected_where_the_median_barely_moves() {
        let mut blocks = stream(1.0, 4, 6, 100, 11);
        for (i, p) in blocks
            .iter_mut()
            .flat_map(|b| b.pairs.iter_mut())
            .enumerate()
        {
            if i % 25 == 7 {
                p.1 *= 10;
            }
        }
        let r = ratios(&blocks, 1.0 - 0.05 / 23.0, 2).unwrap();
        let mean = r.mean.unwrap();
        assert!(mean.lo > 1.10, "mean {mean:?}");
        assert!(r.p50.ratio < 1.08, "p50 {:?}", r.p50);
    }

    /// Weighted percentiles: equal weights give the unweighted rank, and a
    /// heavier half moves the median into it.
    #[test]
    fn weighted_quantile_matches_the_unweighted_one_and_follows_weights() {
        for n in [1usize, 2, 7, 33, 100, 1001] {
            let values: Vec<u32> = (0..n as u32).map(|i| (i * 7919) % 1009).collect();
            for q in [0.0, 0.5, 0.95, 0.99, 1.0] {
                let mut plain = values.clone();
                let mut weighted: Vec<(u32, f64)> = values.iter().map(|v| (*v, 3.0)).collect();
                assert_eq!(
                    quantile(&mut plain, q),
                    weighted_quantile(&mut weighted, q),
                    "n {n} q {q}"
                );
            }
        }
        let mut items: Vec<(u32, f64)> = (0..100)
            .map(|i| (i, if i < 50 { 1.0 } else { 9.0 }))
            .collect();
        assert!(weighted_quantile(&mut items, 0.5) >= 72.0);
    }

    /// At a family level such as 1 - 0.05/23 the old percentile interval was
    /// the min and max of the resamples; the normal one is a real quantile:
    /// wider than the 95% one by the ratio of their z, and finite.
    #[test]
    fn family_level_interval_is_wider_by_the_ratio_of_critical_values() {
        let blocks = stream(1.0, 4, 6, 80, 5);
        let narrow = ratios(&blocks, 0.95, 3).unwrap().p95;
        let wide = ratios(&blocks, 1.0 - 0.05 / 23.0, 3).unwrap().p95;
        let half = |c: RatioCi| (c.hi / c.lo).ln();
        let expect = crate::run::normal::z_two_sided(1.0 - 0.05 / 23.0) / 1.959_964;
        assert!((half(wide) / half(narrow) - expect).abs() < 1e-6);
        assert!(wide.lo.is_finite() && wide.hi.is_finite());
    }

    /// A sequential look computes one quantile; the file's interval at the
    /// same critical value must be the very same one.
    #[test]
    fn one_quantile_interval_is_the_one_of_all_three() {
        let blocks = stream(1.1, 3, 4, 40, 9);
        let all = ratios_z(&blocks, 2.5, 0.0, 4).unwrap();
        let one = |q| look_cis(&[(&blocks[..], 4)], q, 2.5).0[0].unwrap();
        assert_eq!(one(Stat::Quantile(0.95)), all.p95);
        assert_eq!(one(Stat::Quantile(0.50)), all.p50);
        assert_eq!(Some(one(Stat::Mean)), all.mean);
        // A class's interval given the same client variance is the same one.
        let p95 = Stat::Quantile(0.95);
        let tau2 = look_cis(&[(&blocks[..], 4)], p95, 2.5).1;
        assert_eq!(ratio_ci(&blocks, p95, 2.5, 4, tau2).unwrap(), all.p95);
    }

    #[test]
    fn too_few_blocks_give_no_verdict() {
        assert!(ratios(&blocks(1.0, 3)[..2], 0.95, 7).is_none());
    }

    #[test]
    fn reservoir_is_bounded() {
        let mut kept = Block::default();
        let mut seen = 0;
        let mut rng = Prng::for_parts(&[3]);
        let new: Vec<(u32, u32, u8)> = (0..MAX_PAIRS * 2)
            .map(|i| (i as u32, i as u32 * 2, (i % 3) as u8))
            .collect();
        reservoir_add(&mut kept, &mut seen, &new, &mut rng);
        assert_eq!(kept.pairs.len(), MAX_PAIRS);
        assert_eq!(kept.classes.len(), MAX_PAIRS);
        assert_eq!(seen, 2 * MAX_PAIRS as u64);
        // Each kept pair still carries its own class.
        for (p, c) in kept.pairs.iter().zip(&kept.classes) {
            assert_eq!((p.0 % 3) as u8, *c);
        }
    }

    #[test]
    fn a_class_keeps_its_own_pairs_and_the_blocks_structure() {
        let mut rng = Prng::for_parts(&[4]);
        let samples = [
            (0, 10, 11, 0),
            (0, 20, 22, 2),
            (1, 30, 33, 0),
            (1, 40, 44, 1),
        ];
        let mut reservoir = crate::run::pairs::PairReservoir::default();
        for s in samples {
            reservoir.push(s);
        }
        let all = super::blocks(&reservoir, &mut rng);
        let big = class_blocks(&all, 0);
        assert_eq!(big.len(), 2);
        assert_eq!(big[0].pairs, vec![(10, 11)]);
        assert_eq!((big[1].client, big[1].pairs.clone()), (1, vec![(30, 33)]));
        assert_eq!(class_blocks(&all, 2).len(), 1);
    }
}
