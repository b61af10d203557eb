//! The gate's decision, as pure functions of figures already computed: a
//! query regresses only when the whole interval of its p95 ratio lies beyond
//! the threshold, and shows *no regression* only when the whole interval lies
//! below it — an interval across the threshold is *inconclusive*, never a
//! pass ("not proven to regress" is not "fine"); throughput drops only when
//! the whole interval lies below 1 - threshold; a new SQLSTATE fails only above the error-rate limit; a plan change
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
    /// The input cannot decide (no query in common) and nothing failed (exit 2).
    Undecidable,
    /// Nothing failed, but some gated query's interval reaches across the
    /// threshold or it ran too rarely: neither a regression nor its absence
    /// is shown (exit 2 unless `--inconclusive pass|fail` says otherwise).
    Inconclusive,
}

/// What an inconclusive verdict exits with (`compare --inconclusive`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InconclusivePolicy {
    /// Exit 2, as any input that cannot decide (the default).
    #[default]
    Undecided,
    /// Exit 0: the team accepts "not shown to regress".
    Pass,
    /// Exit 1: only a proven absence of regression passes.
    Fail,
}

impl Verdict {
    /// 0 pass, 1 fail, 2 undecidable or inconclusive (the same code as any error).
    pub fn exit_code(self) -> u8 {
        self.exit_code_with(InconclusivePolicy::Undecided)
    }

    /// [`Verdict::exit_code`], with an inconclusive verdict mapped by `policy`.
    pub fn exit_code_with(self, policy: InconclusivePolicy) -> u8 {
        match (self, policy) {
            (Verdict::Pass, _) | (Verdict::Inconclusive, InconclusivePolicy::Pass) => 0,
            (Verdict::Fail, _) | (Verdict::Inconclusive, InconclusivePolicy::Fail) => 1,
            (Verdict::Undecidable | Verdict::Inconclusive, _) => 2,
        }
    }
}

/// One query's verdict on its p95 change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueryVerdict {
    /// No regression: the whole interval lies below 1 + threshold (but it
    /// reaches below 1 - threshold, so neither *equivalent* nor *faster*).
    Pass,
    /// The whole interval lies above 1 + threshold.
    Regression,
    /// The whole interval lies below 1 - threshold (reported, never fails).
    Faster,
    /// Fewer samples than the gate's minimum, or no interval.
    TooFewSamples,
    /// No regression, and the whole interval lies within ±threshold.
    Equivalent,
    /// The interval reaches across 1 + threshold: undecided.
    Inconclusive,
    /// Not gated (`--gate-queries`, or `gate = false` in the workload).
    NotGated,
}

impl QueryVerdict {
    /// Whether the query shows no regression (the gate passes on it).
    pub fn no_regression(self) -> bool {
        matches!(
            self,
            QueryVerdict::Pass | QueryVerdict::Faster | QueryVerdict::Equivalent
        )
    }

    /// Decided either way.
    pub fn decided(self) -> bool {
        self.no_regression() || self == QueryVerdict::Regression
    }

    /// How the report and the summary name it.
    pub fn label(self) -> &'static str {
        match self {
            QueryVerdict::Pass => "no regression",
            QueryVerdict::Regression => "REGRESSION",
            QueryVerdict::Faster => "faster",
            QueryVerdict::TooFewSamples => "too few samples",
            QueryVerdict::Equivalent => "equivalent",
            QueryVerdict::Inconclusive => "inconclusive",
            QueryVerdict::NotGated => "not gated",
        }
    }
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
    } else if ci.hi < 1.0 + threshold && ci.lo > 1.0 - threshold {
        QueryVerdict::Equivalent
    } else if ci.hi < 1.0 + threshold {
        QueryVerdict::Pass
    } else {
        QueryVerdict::Inconclusive
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
    /// What would decide an inconclusive query ("run ~4 min longer"), by name.
    pub hints: Vec<(&'a str, String)>,
}

/// The overall verdict with one reason per failing or undecidable item. A
/// definite failure wins over an undecidable query: it is a finding either way.
pub fn decide(f: &Findings<'_>) -> (Verdict, Vec<String>) {
    let mut fails = Vec::new();
    let mut undecided = Vec::new();
    let mut inconclusive = Vec::new();
    let hint = |name: &str| {
        f.hints
            .iter()
            .find(|(n, _)| *n == name)
            .map_or_else(String::new, |(_, h)| format!(" ({h})"))
    };
    for (name, v) in &f.queries {
        match v {
            QueryVerdict::Regression => fails.push(format!("{name}: {} regression", f.metric)),
            QueryVerdict::TooFewSamples => {
                inconclusive.push(format!("{name}: too few samples{}", hint(name)));
            }
            QueryVerdict::Inconclusive => inconclusive.push(format!(
                "{name}: inconclusive: the {} interval reaches across the threshold{}",
                f.metric,
                hint(name)
            )),
            QueryVerdict::Pass
            | QueryVerdict::Faster
            | QueryVerdict::Equivalent
            | QueryVerdict::NotGated => {}
        }
    }
    if f.queries.iter().all(|(_, v)| *v == QueryVerdict::NotGated) && !f.queries.is_empty() {
        undecided.push("no query is gated: nothing to decide".to_string());
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
    } else if !inconclusive.is_empty() {
        (Verdict::Inconclusive, inconclusive)
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

    /// The bug of issue 12: [-5.4%, +67.7%] passed. It shows neither a
    /// regression nor its absence.
    #[test]
    fn interval_straddling_threshold_is_inconclusive_not_a_pass() {
        assert_eq!(
            judge(Some(&ci(0.946, 1.677)), true, 0.10),
            QueryVerdict::Inconclusive
        );
        // Exactly at the threshold is not beyond it either way.
        assert_eq!(
            judge(Some(&ci(1.10, 1.20)), true, 0.10),
            QueryVerdict::Inconclusive
        );
        let (v, reasons) = decide(&Findings {
            metric: "p95",
            queries: vec![("q", QueryVerdict::Inconclusive)],
            hints: vec![("q", "run ~4 min longer".into())],
            ..Default::default()
        });
        assert_eq!(v, Verdict::Inconclusive);
        assert_eq!(v.exit_code(), 2);
        assert_eq!(v.exit_code_with(InconclusivePolicy::Pass), 0);
        assert_eq!(v.exit_code_with(InconclusivePolicy::Fail), 1);
        assert!(reasons[0].contains("run ~4 min longer"), "{reasons:?}");
    }

    #[test]
    fn no_regression_is_labelled_equivalent_or_faster_when_the_interval_says_so() {
        assert_eq!(
            judge(Some(&ci(0.95, 1.05)), true, 0.10),
            QueryVerdict::Equivalent
        );
        assert_eq!(judge(Some(&ci(0.85, 1.05)), true, 0.10), QueryVerdict::Pass);
        assert_eq!(judge(Some(&ci(0.5, 0.8)), true, 0.10), QueryVerdict::Faster);
        for v in [
            QueryVerdict::Equivalent,
            QueryVerdict::Pass,
            QueryVerdict::Faster,
        ] {
            assert_eq!(
                decide(&Findings {
                    queries: vec![("q", v)],
                    ..Default::default()
                })
                .0,
                Verdict::Pass
            );
        }
    }

    #[test]
    fn wider_threshold_of_separate_runs_passes_what_paired_would_flag() {
        let c = ci(1.12, 1.20);
        assert_eq!(judge(Some(&c), true, 0.10), QueryVerdict::Regression);
        assert_eq!(judge(Some(&c), true, 0.25), QueryVerdict::Equivalent);
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
        assert_eq!(v, Verdict::Inconclusive);
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
