//! Sequential paired runs (`run --until-decided`): the run looks at its
//! paired intervals every `--look-every` from `--min-duration` on, and stops
//! as soon as every gated query is decided — a *regression* (its whole
//! interval above 1 + threshold) or *no regression* (below it) — or as soon
//! as one is a regression (the gate fails whatever the rest show), or at
//! `--max-duration`, leaving the rest *inconclusive*.
//!
//! Looking again and again at an interval made for one look would inflate
//! false alarms (each look is another chance for noise to cross the line).
//! The looks therefore spend the family's α along a Lan–DeMets spending
//! function of the O'Brien–Fleming type, α(t) = 2 − 2Φ(z₁₋α/₂ / √t), t the
//! fraction of `--max-duration` elapsed (Lan & DeMets, "Discrete sequential
//! boundaries for clinical trials", Biometrika 70:659–663, 1983). What a look
//! spends, α(tₖ) − α(tₖ₋₁), is split evenly across the gated queries
//! (Bonferroni) and becomes that look's two-sided normal critical value. By
//! the union bound over queries and looks, the chance that *any* interval
//! of *any* look misses its true ratio is at most α: the intervals form a
//! (conservative) confidence sequence, so a decision taken at whichever look
//! stops the run keeps the family's error rate. Early looks spend almost
//! nothing (a decision then needs a large change: a lost index), and the
//! last look is nearly as narrow as a single fixed-length interval.

use std::time::Duration;

use super::normal;
use super::paired::{self, Block};
use crate::compare::Metric;
use crate::compare::verdict::{self, QueryVerdict};
use crate::error::{Error, Result};
use crate::results::{Look, SequentialRecord};
use crate::workload::params::TenantClass;
use crate::workload::{TenantPick, Workload};

/// False-alarm rate of the whole family (all gated queries over all looks).
pub const ALPHA: f64 = 0.05;
/// The method, as results.json and the README name it.
pub const METHOD: &str = "Lan-DeMets alpha spending, O'Brien-Fleming-type function \
    alpha(t) = 2 - 2 Phi(z_{1-alpha/2} / sqrt(t)) on the elapsed fraction of --max-duration, \
    each look's spent alpha split over queries and looks by the union bound (a conservative \
    confidence sequence); Lan & DeMets, Biometrika 70:659-663 (1983)";

/// What `--until-decided` asks.
#[derive(Debug, Clone)]
pub struct SequentialOptions {
    /// Threshold on the ratio (0.10 = 10%).
    pub threshold: f64,
    /// The gated percentile.
    pub metric: Metric,
    /// No look before this much of the window.
    pub min: Duration,
    /// Time between looks.
    pub look_every: Duration,
    /// Only these queries are gated (`None`: all of them).
    pub gate_queries: Option<Vec<String>>,
}

/// α spent by the fraction `t` of the run (O'Brien–Fleming-type).
pub fn spent(alpha: f64, t: f64) -> f64 {
    if t <= 0.0 {
        return 0.0;
    }
    let z = -normal::quantile(alpha / 2.0);
    2.0 * normal::upper_tail(z / t.min(1.0).sqrt())
}

/// The two-sided critical value of a look at fraction `t` after one at
/// `t_prev`: the normal quantile of the α spent in between.
pub fn look_z(alpha: f64, t_prev: f64, t: f64) -> f64 {
    let d = spent(alpha, t) - spent(alpha, t_prev);
    if d <= 0.0 {
        return f64::INFINITY;
    }
    -normal::quantile(d / 2.0)
}

/// The looks of one run and the record they leave.
#[derive(Debug)]
pub struct Looker {
    opts: SequentialOptions,
    max_seconds: f64,
    /// (index, name) of the gated queries.
    gated: Vec<(usize, String)>,
    /// Intervals per look: the gated queries and their tenant classes.
    family: usize,
    seed: u64,
    t_prev: f64,
    last_look: Option<f64>,
    looks: Vec<Look>,
    stopped: Option<&'static str>,
}

impl Looker {
    /// The looks of a run of `workload` lasting at most `max`, seeded like
    /// its final intervals; unknown names in `--gate-queries` are an error.
    pub fn new(
        workload: &Workload,
        opts: &SequentialOptions,
        (max, classed): (Duration, bool),
        seed: u64,
    ) -> Result<Looker> {
        if let Some(names) = &opts.gate_queries {
            if let Some(bad) = names
                .iter()
                .find(|n| !workload.queries.iter().any(|q| &q.name == *n))
            {
                return Err(Error::Usage {
                    message: format!("--gate-queries: the workload has no query `{bad}`"),
                    fix: "name queries of the workload, separated by commas".into(),
                });
            }
        }
        let gated = workload
            .queries
            .iter()
            .enumerate()
            .filter(|(_, q)| {
                q.gate
                    && opts
                        .gate_queries
                        .as_ref()
                        .is_none_or(|names| names.contains(&q.name))
            })
            .map(|(i, q)| (i, q.name.clone()))
            .collect::<Vec<_>>();
        // Each gated query's tenant classes are members of the family (fixed
        // before the first look, as a spending plan must be): three more
        // intervals for a query whose tenants span the classes.
        let family = gated
            .iter()
            .map(|(i, _)| {
                let spans = matches!(
                    workload.queries[*i].tenant,
                    TenantPick::Weighted | TenantPick::Uniform
                );
                if classed && spans { 4 } else { 1 }
            })
            .sum();
        Ok(Looker {
            family,
            opts: opts.clone(),
            max_seconds: max.as_secs_f64().max(1e-3),
            gated,
            seed,
            t_prev: 0.0,
            last_look: None,
            looks: Vec::new(),
            stopped: None,
        })
    }

    /// Whether a look is due `t` seconds into the window (`end`: the run
    /// reached `--max-duration`, the last look).
    pub fn due(&self, t: f64, end: bool) -> bool {
        let every = self.opts.look_every.as_secs_f64();
        end || (t + 1e-3 >= self.opts.min.as_secs_f64()
            && self.last_look.is_none_or(|l| t - l + 1e-3 >= every))
    }

    /// Look at the pairs so far (per query, as the collector keeps them);
    /// `true` when every gated query is decided, or one (or one of its
    /// tenant classes) is a regression.
    pub fn look(&mut self, t: f64, end: bool, pairs: &[Vec<Block>]) -> bool {
        let frac = if end {
            1.0
        } else {
            (t / self.max_seconds).min(1.0)
        };
        let alpha = ALPHA / self.family.max(1) as f64;
        let z = look_z(alpha, self.t_prev, frac);
        self.t_prev = frac;
        self.last_look = Some(t);
        let mut undecided = 0;
        let mut regression = false;
        let mut intervals = Vec::with_capacity(self.gated.len());
        let q = self.opts.metric.stat();
        // Every query's interval, the client variance pooled over all of
        // them as the run's file pools it (its intervals are this look's).
        let queries: Vec<(&[Block], u64)> = pairs
            .iter()
            .enumerate()
            .map(|(i, b)| (b.as_slice(), self.seed ^ i as u64))
            .collect();
        let (cis, tau2) = paired::look_cis(&queries, q, z);
        for (i, name) in &self.gated {
            let blocks = pairs.get(*i).map_or(&[][..], Vec::as_slice);
            let seed = self.seed ^ *i as u64;
            let ci = cis.get(*i).copied().flatten();
            let v = verdict::judge(ci.as_ref(), ci.is_some(), self.opts.threshold);
            if !v.decided() {
                undecided += 1;
            }
            regression |= v == QueryVerdict::Regression;
            let (lo, hi) = ci.map_or((f64::NAN, f64::NAN), |c| (c.lo, c.hi));
            intervals.push((name.clone(), lo, hi));
            // A class can only fail the gate (an undecided class leaves the
            // query's own verdict standing): see the README's CI gate section.
            for c in paired::classes_present(blocks) {
                let cb = paired::class_blocks(blocks, c);
                let Some(ci) = paired::ratio_ci(&cb, q, z, paired::class_seed(seed, c), tau2)
                else {
                    continue;
                };
                let v = verdict::judge(Some(&ci), true, self.opts.threshold);
                regression |= v == QueryVerdict::Regression;
                intervals.push((class_label(name, c), ci.lo, ci.hi));
            }
        }
        self.looks.push(Look {
            t,
            z,
            undecided,
            intervals,
        });
        // A regression decides the gate whatever the other queries show;
        // the intervals are valid at any stopping time, so stopping there
        // costs no error rate and saves the rest of --max-duration.
        self.stopped = if undecided == 0 {
            Some("decided")
        } else if regression {
            Some("regression")
        } else {
            None
        };
        self.stopped.is_some()
    }

    /// The progress line of the last look.
    pub fn progress_line(&self) -> String {
        let Some(l) = self.looks.last() else {
            return String::new();
        };
        let mut widest: Vec<&(String, f64, f64)> = l
            .intervals
            .iter()
            .filter(|(_, lo, hi)| {
                !(lo.is_finite() && hi.is_finite())
                    || (*lo <= 1.0 + self.opts.threshold && *hi >= 1.0 + self.opts.threshold)
            })
            .collect();
        widest.truncate(3);
        let names: Vec<&str> = widest.iter().map(|(n, _, _)| n.as_str()).collect();
        format!(
            "run: look at {:.0}s (critical value {:.2}): {} of {} gated queries undecided{}",
            l.t,
            l.z,
            l.undecided,
            self.gated.len(),
            if names.is_empty() {
                String::new()
            } else {
                format!(
                    " ({}{})",
                    names.join(", "),
                    if l.undecided > 3 { ", …" } else { "" }
                )
            }
        )
    }

    /// The critical value of the last look, if there was one.
    pub fn last_z(&self) -> Option<f64> {
        self.looks.last().map(|l| l.z)
    }

    /// Whether `name` is gated.
    pub fn is_gated(&self, name: &str) -> bool {
        self.gated.iter().any(|(_, n)| n == name)
    }

    /// What results.json keeps of the looks.
    pub fn record(&self) -> SequentialRecord {
        SequentialRecord {
            method: METHOD.into(),
            threshold: self.opts.threshold,
            metric: self.opts.metric.name().into(),
            alpha: ALPHA,
            family: self.family,
            min_seconds: self.opts.min.as_secs_f64(),
            max_seconds: self.max_seconds,
            look_every_seconds: self.opts.look_every.as_secs_f64(),
            gated: self.gated.iter().map(|(_, n)| n.clone()).collect(),
            looks: self.looks.clone(),
            stopped: self.stopped.unwrap_or("max_duration").into(),
        }
    }
}

/// How a query's tenant class is named in looks and verdicts:
/// `customer_by_email [big tenants]`.
pub fn class_label(query: &str, class: u8) -> String {
    let name = TenantClass::ALL
        .get(usize::from(class))
        .map_or("unclassed", |c| c.name());
    format!("{query} [{name} tenants]")
}

/// The verdict a sequential run's file gives query `name` (`NotGated` for
/// one outside the family).
pub fn gated_verdict(record: &SequentialRecord, name: &str, v: QueryVerdict) -> QueryVerdict {
    if record.gated.iter().any(|n| n == name) {
        v
    } else {
        QueryVerdict::NotGated
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Prng;

    /// `gate = false` in the workload leaves a query out of the family;
    /// with tenant classes each spanning query counts four intervals.
    #[test]
    fn a_query_marked_gate_false_is_not_in_the_family() {
        let w = Workload::parse(
            "name = \"w\"\n[[query]]\nname = \"a\"\nkind = \"read\"\nsql = \"SELECT 1\"\n\
             [[query]]\nname = \"b\"\nkind = \"read\"\ngate = false\nsql = \"SELECT 2\"\n",
            std::path::Path::new("w.toml"),
        )
        .unwrap();
        let opts = SequentialOptions {
            threshold: 0.1,
            metric: Metric::P95,
            min: Duration::from_secs(1),
            look_every: Duration::from_secs(1),
            gate_queries: None,
        };
        let l = Looker::new(&w, &opts, (Duration::from_secs(10), false), 1).unwrap();
        assert_eq!(l.record().gated, ["a"]);
        assert_eq!(l.record().family, 1);
        let l = Looker::new(&w, &opts, (Duration::from_secs(10), true), 1).unwrap();
        assert_eq!(l.record().family, 4);
    }

    #[test]
    fn spending_reaches_alpha_at_the_end_and_little_early() {
        assert!((spent(0.05, 1.0) - 0.05).abs() < 1e-7);
        assert!(spent(0.05, 0.25) < 1e-4);
        let mut prev = 0.0;
        for k in 1..=20 {
            let s = spent(0.05, f64::from(k) / 20.0);
            assert!(s > prev, "spending must grow");
            prev = s;
        }
        // The last look is close to the fixed-sample 1.96, early ones far above.
        assert!(look_z(0.05, 0.9, 1.0) < 2.6);
        assert!(look_z(0.05, 0.0, 0.2) > 4.3);
    }

    /// A simulated sequential run on a log-ratio estimate whose noise
    /// shrinks as 1/√n: `shift` is the true log ratio. Returns the look at
    /// which the interval first excluded `truth`, if any (a miss).
    fn run_once(shift: f64, threshold: f64, seed: u64, looks: usize) -> (bool, Option<usize>) {
        let mut rng = Prng::for_parts(&[seed, 0x5E0]);
        let normal = |rng: &mut Prng| {
            let u = rng.unit().max(1e-12);
            (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos()
        };
        let (mut sum, mut n) = (0.0, 0.0);
        let mut prev = 0.0;
        let mut missed = false;
        for k in 1..=looks {
            // 100 new observations of sd 1 per look.
            for _ in 0..100 {
                sum += shift + normal(&mut rng);
                n += 1.0;
            }
            let t = k as f64 / looks as f64;
            let z = look_z(0.05, prev, t);
            prev = t;
            let (mean, se) = (sum / n, 1.0 / n.sqrt());
            let (lo, hi) = (mean - z * se, mean + z * se);
            if !(lo <= shift && shift <= hi) {
                missed = true;
            }
            if lo > threshold {
                return (missed, Some(k));
            }
            if hi < threshold {
                return (missed, None);
            }
        }
        (missed, None)
    }

    /// A/A streams looked at 12 times: the share of runs where any look's
    /// interval missed the truth stays at or below α (looking often does
    /// not inflate it), so a regression is called in at most α of them.
    #[test]
    fn a_a_streams_keep_the_false_alarm_rate_over_many_looks() {
        let runs = 2000;
        let (mut missed, mut alarms) = (0, 0);
        for seed in 0..runs {
            // Threshold 0: the strictest case, any upward excursion alarms.
            let (m, regression) = run_once(0.0, 0.0, seed, 12);
            missed += usize::from(m);
            alarms += usize::from(regression.is_some());
        }
        let rate = missed as f64 / runs as f64;
        assert!(rate <= 0.05, "{missed} of {runs} A/A runs missed the truth");
        assert!(alarms as f64 / runs as f64 <= 0.03, "{alarms} false alarms");
        // Naive looks (1.96 every time) would miss far more often.
        let naive: usize = (0..runs)
            .map(|seed| {
                let mut rng = Prng::for_parts(&[seed, 0x5E0]);
                let (mut sum, mut n) = (0.0, 0.0);
                (0..12).any(|_| {
                    for _ in 0..100 {
                        let u = rng.unit().max(1e-12);
                        sum += (-2.0 * u.ln()).sqrt() * (std::f64::consts::TAU * rng.unit()).cos();
                        n += 1.0;
                    }
                    (sum / n).abs() > 1.96 / f64::sqrt(n)
                })
            })
            .map(usize::from)
            .sum();
        assert!(naive > 2 * missed, "naive {naive} vs spending {missed}");
    }

    /// A stream shifted by +30% (threshold 10%) is called a regression in
    /// nearly every run, and a large shift at an early look.
    #[test]
    fn a_shifted_stream_is_detected() {
        let runs = 300;
        let detected = (0..runs)
            .filter(|&s| run_once(1.3f64.ln(), 1.1f64.ln(), s, 12).1.is_some())
            .count();
        assert!(
            detected as f64 >= 0.95 * runs as f64,
            "{detected} of {runs}"
        );
        let early = (0..runs)
            .filter_map(|s| run_once(3.0f64.ln(), 1.1f64.ln(), s, 12).1)
            .max();
        assert!(early.is_some_and(|k| k <= 3), "{early:?}");
    }
}
