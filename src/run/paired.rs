//! Paired statistics: candidate / baseline ratios of p50, p95 and p99 with a
//! seeded bootstrap confidence interval over the (baseline, candidate) pairs
//! measured in the same window by the same client with the same parameters.
//! Intervals are Bonferroni-adjusted across queries, so "every query's
//! interval contains 1.00" is a claim about all of them at once. Pairs are
//! resampled in blocks (one block per interval of the series): the machine's
//! drift makes neighbouring pairs alike, and resampling single pairs would
//! give intervals that are too narrow. Blocks belong to clients, and clients
//! are resampled first (a two-stage bootstrap): a connection's own backend
//! may be a little faster or slower for the whole run, which only resampling
//! clients shows.

use crate::results::{RatioCi, Ratios};
use crate::rng::Prng;

/// Bootstrap resamples.
pub const RESAMPLES: usize = 400;
/// Pairs kept per query per block (reservoir).
pub const MAX_PAIRS: usize = 2_000;

fn quantile(values: &mut [u32], q: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    let k = ((values.len() - 1) as f64 * q).round() as usize;
    let (_, v, _) = values.select_nth_unstable(k);
    f64::from(*v)
}

fn ratio_at(pairs: &[(u32, u32)], q: f64, base: &mut Vec<u32>, cand: &mut Vec<u32>) -> f64 {
    base.clear();
    cand.clear();
    base.extend(pairs.iter().map(|p| p.0));
    cand.extend(pairs.iter().map(|p| p.1));
    let b = quantile(base, q);
    if b <= 0.0 {
        return f64::NAN;
    }
    quantile(cand, q) / b
}

/// One client's pairs within one interval.
#[derive(Debug, Clone, Default)]
pub struct Block {
    /// The client.
    pub client: u16,
    /// (baseline µs, candidate µs).
    pub pairs: Vec<(u32, u32)>,
}

/// Split one interval's (client, baseline, candidate) samples into per-client
/// blocks, each kept to at most [`MAX_PAIRS`] by reservoir sampling.
pub fn blocks(samples: &[(u16, u32, u32)], rng: &mut Prng) -> Vec<Block> {
    let mut by_client: std::collections::BTreeMap<u16, Vec<(u32, u32)>> = Default::default();
    for &(c, b, k) in samples {
        by_client.entry(c).or_default().push((b, k));
    }
    by_client
        .into_iter()
        .map(|(client, all)| {
            let mut kept = Vec::new();
            reservoir_add(&mut kept, &mut 0, &all, rng);
            Block {
                client,
                pairs: kept,
            }
        })
        .collect()
}

/// Ratios with `level` confidence intervals (e.g. 1 - 0.05 / queries,
/// Bonferroni), by a two-stage bootstrap (clients, then their blocks).
/// `None` with fewer than 20 pairs or 3 blocks.
pub fn ratios(blocks: &[Block], level: f64, seed: u64) -> Option<Ratios> {
    let mut by_client: std::collections::BTreeMap<u16, Vec<&[(u32, u32)]>> = Default::default();
    for b in blocks.iter().filter(|b| !b.pairs.is_empty()) {
        by_client.entry(b.client).or_default().push(&b.pairs);
    }
    let clients: Vec<Vec<&[(u32, u32)]>> = by_client.into_values().collect();
    let n_blocks: usize = clients.iter().map(Vec::len).sum();
    let pairs: Vec<(u32, u32)> = clients
        .iter()
        .flatten()
        .flat_map(|b| b.iter().copied())
        .collect();
    if pairs.len() < 20 || n_blocks < 3 {
        return None;
    }
    let pairs = pairs.as_slice();
    let mut rng = Prng::for_parts(&[seed, 0xB007]);
    let (mut base, mut cand) = (
        Vec::with_capacity(pairs.len()),
        Vec::with_capacity(pairs.len()),
    );
    let qs = [0.50, 0.95, 0.99];
    let point: Vec<f64> = qs
        .iter()
        .map(|&q| ratio_at(pairs, q, &mut base, &mut cand))
        .collect();
    let mut samples: Vec<Vec<f64>> = (0..3).map(|_| Vec::with_capacity(RESAMPLES)).collect();
    let mut resample = Vec::with_capacity(pairs.len());
    for _ in 0..RESAMPLES {
        resample.clear();
        for _ in 0..clients.len() {
            let client = &clients[rng.below(clients.len() as u64) as usize];
            for _ in 0..client.len() {
                resample.extend_from_slice(client[rng.below(client.len() as u64) as usize]);
            }
        }
        for (i, &q) in qs.iter().enumerate() {
            let r = ratio_at(&resample, q, &mut base, &mut cand);
            if r.is_finite() {
                samples[i].push(r);
            }
        }
    }
    let alpha = (1.0 - level).clamp(1e-6, 1.0);
    let mut ci = |i: usize| {
        let s = &mut samples[i];
        s.sort_by(f64::total_cmp);
        if s.is_empty() {
            return RatioCi {
                ratio: point[i],
                lo: f64::NAN,
                hi: f64::NAN,
            };
        }
        let at = |p: f64| s[((s.len() - 1) as f64 * p).round() as usize];
        RatioCi {
            ratio: point[i],
            lo: at(alpha / 2.0),
            hi: at(1.0 - alpha / 2.0),
        }
    };
    Some(Ratios {
        level,
        pairs: pairs.len(),
        p50: ci(0),
        p95: ci(1),
        p99: ci(2),
    })
}

/// Keep at most [`MAX_PAIRS`] pairs, each seen pair equally likely (reservoir).
pub fn reservoir_add(
    kept: &mut Vec<(u32, u32)>,
    seen: &mut u64,
    new: &[(u32, u32)],
    rng: &mut Prng,
) {
    for p in new {
        *seen += 1;
        if kept.len() < MAX_PAIRS {
            kept.push(*p);
        } else {
            let j = rng.below(*seen) as usize;
            if j < MAX_PAIRS {
                kept[j] = *p;
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
                client: (b % 4) as u16,
                pairs: pairs(factor, 250, seed * 100 + b),
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

    #[test]
    fn too_few_blocks_give_no_verdict() {
        assert!(ratios(&blocks(1.0, 3)[..2], 0.95, 7).is_none());
    }

    #[test]
    fn reservoir_is_bounded() {
        let mut kept = Vec::new();
        let mut seen = 0;
        let mut rng = Prng::for_parts(&[3]);
        reservoir_add(&mut kept, &mut seen, &vec![(1, 1); MAX_PAIRS * 2], &mut rng);
        assert_eq!(kept.len(), MAX_PAIRS);
        assert_eq!(seen, 2 * MAX_PAIRS as u64);
    }
}
