//! The gate's decision, as pure functions of figures already computed: a
//! query regresses only when the whole interval of its p95 ratio lies beyond
//! the threshold; throughput drops only when the whole interval lies below
//! it; a new SQLSTATE fails only above the error-rate limit; a plan change
//! fails only when asked to. Exit codes are part of the API (see
//! [`Verdict::exit_code`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::results::RatioCi;

/// The gate's answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Nothing beyond the threshold (exit 0).
    Pass,
    /// A regression, a throughput drop, a new error above the limit or (with
    /// `--fail-on-plan-change`) a plan change (exit 1).
    Fail,
    /// The input cannot decide (too few samples, no query in common) and
    /// nothing failed (exit 2).
    Undecidable,
}

impl Verdict {
    /// 0 pass, 1 fail, 2 undecidable (the same code as any error).
    pub fn exit_code(self) -> u8 {
        match self {
            Verdict::Pass => 0,
            Verdict::Fail => 1,
            Verdict::Undecidable => 2,
        }
    }
}

/// One query's verdict on its p95 change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryVerdict {
    /// The interval reaches inside the threshold.
    Pass,
    /// The whole interval lies above 1 + threshold.
    Regression,
    /// The whole interval lies below 1 - threshold (reported, never fails).
    Faster,
    /// Fewer samples than the gate's minimum, or no interval.
    TooFewSamples,
}

/// Judge one ratio interval (current / baseline) against `threshold` (0.10 = 10%).
pub fn judge(change: Option<&RatioCi>, enough_samples: bool, threshold: f64) -> QueryVerdict {
    let Some(ci) = change.filter(|c| c.lo.is_finite() && c.hi.is_finite()) else {
        return QueryVerdict::TooFewSamples;
    };
    if !enough_samples {
        return QueryVerdict::TooFewSamples;
    }
    if ci.lo > 1.0 + threshold {
        QueryVerdict::Regression
    } else if ci.hi < 1.0 - threshold {
        QueryVerdict::Faster
    } else {
        QueryVerdict::Pass
    }
}

/// Whether a throughput ratio interval (current / baseline) is a drop beyond
/// `threshold`: its whole interval below 1 - threshold.
pub fn throughput_dropped(ci: &RatioCi, threshold: f64) -> bool {
    ci.hi.is_finite() && ci.hi < 1.0 - threshold
}

/// A SQLSTATE the current side raised and the baseline never did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NewError {
    /// The query.
    pub query: String,
    /// The SQLSTATE (or crmbench's client-side code).
    pub sqlstate: String,
    /// Failed transactions with it.
    pub count: u64,
    /// Share of the query's transactions on the current side.
    pub rate: f64,
    /// Whether the rate exceeds `--max-error-rate`.
    pub over_limit: bool,
}

/// SQLSTATEs in `current` that `base` lacks, with their rate among the
/// current side's transactions (`current_ok` successful plus all failed).
pub fn new_errors(
    query: &str,
    base: &BTreeMap<String, u64>,
    current: &BTreeMap<String, u64>,
    current_ok: u64,
    max_error_rate: f64,
) -> Vec<NewError> {
    let total = current
        .values()
        .fold(current_ok, |a, &b| a.saturating_add(b));
    current
        .iter()
        .filter(|(code, n)| **n > 0 && base.get(*code).copied().unwrap_or(0) == 0)
        .map(|(code, &count)| {
            let rate = if total == 0 {
                1.0
            } else {
                count as f64 / total as f64
            };
            NewError {
                query: query.to_string(),
                sqlstate: code.clone(),
                count,
                rate,
                over_limit: rate > max_error_rate,
            }
        })
        .collect()
}

/// Names in `current` missing from `base` (added) and in `base` missing from
/// `current` (removed), each in input order.
pub fn added_removed(base: &[&str], current: &[&str]) -> (Vec<String>, Vec<String>) {
    let added = current
        .iter()
        .filter(|n| !base.contains(n))
        .map(|n| n.to_string())
        .collect();
    let removed = base
        .iter()
        .filter(|n| !current.contains(n))
        .map(|n| n.to_string())
        .collect();
    (added, removed)
}

/// What the overall decision looks at.
#[derive(Debug, Clone, Default)]
pub struct Findings<'a> {
    /// The gated percentile ("p95"), for the reasons' wording.
    pub metric: &'a str,
    /// (query, verdict) of every matched query.
    pub queries: Vec<(&'a str, QueryVerdict)>,
    /// Whether throughput dropped beyond the threshold.
    pub throughput_dropped: bool,
    /// New SQLSTATEs.
    pub new_errors: &'a [NewError],
    /// Queries whose plan changed.
    pub plan_changes: Vec<&'a str>,
    /// `--fail-on-plan-change`.
    pub fail_on_plan_change: bool,
}

/// The overall verdict with one reason per failing or undecidable item. A
/// definite failure wins over an undecidable query: it is a finding either way.
pub fn decide(f: &Findings<'_>) -> (Verdict, Vec<String>) {
    let mut fails = Vec::new();
    let mut undecided = Vec::new();
    for (name, v) in &f.queries {
        match v {
            QueryVerdict::Regression => fails.push(format!("{name}: {} regression", f.metric)),
            QueryVerdict::TooFewSamples => undecided.push(format!("{name}: too few samples")),
            QueryVerdict::Pass | QueryVerdict::Faster => {}
        }
    }
    if f.throughput_dropped {
        fails.push("throughput dropped".to_string());
    }
    for e in f.new_errors.iter().filter(|e| e.over_limit) {
        fails.push(format!(
            "{}: new SQLSTATE {} in {:.2}% of transactions",
            e.query,
            e.sqlstate,
            e.rate * 100.0
        ));
    }
    if f.fail_on_plan_change {
        for q in &f.plan_changes {
            fails.push(format!("{q}: plan changed"));
        }
    }
    if f.queries.is_empty() {
        // Nothing matched (renamed queries, another workload): passing would
        // gate nothing at all.
        undecided.push("no query is in both inputs: nothing to compare".to_string());
    }
    if !fails.is_empty() {
        (Verdict::Fail, fails)
    } else if !undecided.is_empty() {
        (Verdict::Undecidable, undecided)
    } else {
        (Verdict::Pass, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ci(lo: f64, hi: f64) -> RatioCi {
        RatioCi {
            ratio: (lo + hi) / 2.0,
            lo,
            hi,
        }
    }

    #[test]
    fn interval_wholly_beyond_threshold_is_a_regression() {
        assert_eq!(
            judge(Some(&ci(1.12, 1.30)), true, 0.10),
            QueryVerdict::Regression
        );
    }

    #[test]
    fn interval_straddling_threshold_passes() {
        // Point estimate +20%, but the interval reaches down to +5%.
        assert_eq!(judge(Some(&ci(1.05, 1.35)), true, 0.10), QueryVerdict::Pass);
        // Exactly at the threshold is not beyond it.
        assert_eq!(judge(Some(&ci(1.10, 1.20)), true, 0.10), QueryVerdict::Pass);
    }

    #[test]
    fn wider_threshold_of_separate_runs_passes_what_paired_would_flag() {
        let c = ci(1.15, 1.25);
        assert_eq!(judge(Some(&c), true, 0.10), QueryVerdict::Regression);
        assert_eq!(judge(Some(&c), true, 0.25), QueryVerdict::Pass);
    }

    #[test]
    fn faster_is_reported_and_does_not_fail() {
        let v = judge(Some(&ci(0.5, 0.8)), true, 0.10);
        assert_eq!(v, QueryVerdict::Faster);
        let (verdict, reasons) = decide(&Findings {
            queries: vec![("q", v)],
            ..Default::default()
        });
        assert_eq!(verdict, Verdict::Pass);
        assert!(reasons.is_empty());
    }

    #[test]
    fn missing_or_nan_interval_or_few_samples_is_undecidable() {
        assert_eq!(judge(None, true, 0.1), QueryVerdict::TooFewSamples);
        let nan = RatioCi {
            ratio: 1.0,
            lo: f64::NAN,
            hi: f64::NAN,
        };
        assert_eq!(judge(Some(&nan), true, 0.1), QueryVerdict::TooFewSamples);
        assert_eq!(
            judge(Some(&ci(2.0, 3.0)), false, 0.1),
            QueryVerdict::TooFewSamples
        );
        let (v, reasons) = decide(&Findings {
            queries: vec![
                ("a", QueryVerdict::Pass),
                ("b", QueryVerdict::TooFewSamples),
            ],
            ..Default::default()
        });
        assert_eq!(v, Verdict::Undecidable);
        assert_eq!(v.exit_code(), 2);
        assert_eq!(reasons, vec!["b: too few samples"]);
    }

    #[test]
    fn a_regression_wins_over_an_undecidable_query() {
        let (v, reasons) = decide(&Findings {
            metric: "p95",
            queries: vec![
                ("slow", QueryVerdict::Regression),
                ("rare", QueryVerdict::TooFewSamples),
            ],
            ..Default::default()
        });
        assert_eq!(v, Verdict::Fail);
        assert_eq!(v.exit_code(), 1);
        assert_eq!(reasons, vec!["slow: p95 regression"]);
    }

    #[test]
    fn throughput_drop_fails_only_when_whole_interval_is_below() {
        assert!(throughput_dropped(&ci(0.6, 0.85), 0.10));
        assert!(!throughput_dropped(&ci(0.6, 0.95), 0.10));
        assert!(!throughput_dropped(&ci(f64::NAN, f64::NAN), 0.10));
        let (v, reasons) = decide(&Findings {
            queries: vec![("q", QueryVerdict::Pass)],
            throughput_dropped: true,
            ..Default::default()
        });
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reasons, vec!["throughput dropped"]);
    }

    #[test]
    fn new_sqlstate_above_max_error_rate_fails_and_known_ones_do_not() {
        let base: BTreeMap<String, u64> = [("40001".to_string(), 50)].into();
        let current: BTreeMap<String, u64> = [
            ("40001".to_string(), 80), // known: not new, whatever its rate
            ("42703".to_string(), 30), // new: 30 of 1000 = 3%
            ("23505".to_string(), 2),  // new: 0.2%
        ]
        .into();
        let found = new_errors("q", &base, &current, 888, 0.01);
        assert_eq!(found.len(), 2);
        let undefined_column = found.iter().find(|e| e.sqlstate == "42703").unwrap();
        assert!((undefined_column.rate - 0.03).abs() < 1e-9);
        assert!(undefined_column.over_limit);
        assert!(
            !found
                .iter()
                .find(|e| e.sqlstate == "23505")
                .unwrap()
                .over_limit
        );
        let (v, reasons) = decide(&Findings {
            new_errors: &found,
            ..Default::default()
        });
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reasons.len(), 1);
        assert!(reasons[0].contains("42703"), "{reasons:?}");
    }

    #[test]
    fn error_counts_of_a_damaged_file_do_not_overflow() {
        let current: BTreeMap<String, u64> =
            [("a".to_string(), u64::MAX), ("b".to_string(), u64::MAX)].into();
        let found = new_errors("q", &BTreeMap::new(), &current, u64::MAX, 0.5);
        assert_eq!(found.len(), 2);
    }

    #[test]
    fn every_transaction_failing_is_a_rate_of_one() {
        let current: BTreeMap<String, u64> = [("42P01".to_string(), 10)].into();
        let found = new_errors("q", &BTreeMap::new(), &current, 0, 0.5);
        assert_eq!(found[0].rate, 1.0);
        assert!(found[0].over_limit);
    }

    #[test]
    fn added_and_removed_queries_are_listed() {
        let (added, removed) = added_removed(&["a", "b", "c"], &["b", "c", "d", "e"]);
        assert_eq!(added, vec!["d", "e"]);
        assert_eq!(removed, vec!["a"]);
    }

    #[test]
    fn no_query_in_common_is_undecidable_not_a_pass() {
        let (v, reasons) = decide(&Findings::default());
        assert_eq!(v, Verdict::Undecidable);
        assert_eq!(v.exit_code(), 2);
        assert_eq!(
            reasons,
            vec!["no query is in both inputs: nothing to compare"]
        );
    }

    #[test]
    fn plan_change_fails_only_when_asked() {
        let mut f = Findings {
            queries: vec![("q", QueryVerdict::Pass)],
            plan_changes: vec!["q"],
            ..Default::default()
        };
        assert_eq!(decide(&f).0, Verdict::Pass);
        f.fail_on_plan_change = true;
        let (v, reasons) = decide(&f);
        assert_eq!(v, Verdict::Fail);
        assert_eq!(reasons, vec!["q: plan changed"]);
    }
}
