//! `compare` output: a Markdown report (terminal, pull request, GitHub step
//! summary) and JSON for machines. Pure: a [`Comparison`] in, text out.

use crate::compare::verdict::{QueryVerdict, Verdict};
use crate::compare::{Comparison, InputKind};
use crate::results::RatioCi;

fn ms(us: u64) -> String {
    format!("{:.2} ms", us as f64 / 1000.0)
}

fn pct(ratio: f64) -> String {
    format!("{:+.1}%", (ratio - 1.0) * 100.0)
}

fn change(ci: Option<&RatioCi>) -> String {
    match ci {
        Some(c) if c.lo.is_finite() && c.hi.is_finite() => {
            format!("{} [{}, {}]", pct(c.ratio), pct(c.lo), pct(c.hi))
        }
        _ => "—".into(),
    }
}

fn query_verdict(v: QueryVerdict) -> &'static str {
    match v {
        QueryVerdict::Regression => "**REGRESSION**",
        QueryVerdict::Inconclusive => "_inconclusive_",
        other => other.label(),
    }
}

/// The Markdown report.
pub fn markdown(c: &Comparison) -> String {
    let headline = match c.verdict {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Undecidable => "UNDECIDABLE",
        Verdict::Inconclusive => "INCONCLUSIVE",
    };
    let mut out = format!("## crmbench compare: {headline}\n\n");
    out.push_str(&intro(c));
    out.push_str(&query_table(c));
    if let Some(t) = &c.throughput {
        out.push_str(&format!(
            "Throughput: {:.1} → {:.1} transactions/s, change {}{}\n\n",
            t.base_tps,
            t.current_tps,
            change(t.change.as_ref()),
            if t.dropped { " — **DROPPED**" } else { "" }
        ));
    }
    if !c.reasons.is_empty() {
        out.push_str(&format!("**{headline}:**\n"));
        for r in &c.reasons {
            out.push_str(&format!("- {r}\n"));
        }
        out.push('\n');
    }
    if !c.added.is_empty() {
        out.push_str(&format!("Added queries: {}\n\n", c.added.join(", ")));
    }
    if !c.removed.is_empty() {
        out.push_str(&format!("Removed queries: {}\n\n", c.removed.join(", ")));
    }
    out.push_str(&new_errors(c));
    out.push_str(&plan_changes(c));
    for n in &c.notes {
        out.push_str(&format!("_Note: {n}._\n"));
    }
    out
}

/// A confidence level with the digits that tell it from 100%: a family
/// level such as 1 − 0.05/92 printed `{:.1}` read "100.0%".
fn percent(level: f64) -> String {
    let miss = 1.0 - level;
    if miss.is_nan() || miss <= 0.0 {
        return format!("{:.1}%", level * 100.0);
    }
    let digits = ((-miss.log10()).ceil() as i64 - 1).clamp(1, 12) as usize;
    format!("{:.*}%", digits, level * 100.0)
}

/// What was compared and the rule a regression is called by.
fn intro(c: &Comparison) -> String {
    match c.kind {
        InputKind::Paired => format!(
            "Paired run `{}` (baseline and candidate interleaved in one time window). \
             A query regresses when the whole {} interval of its candidate/baseline {} \
             lies above +{t:.0}%, shows no regression when it lies below +{t:.0}%, and is \
             inconclusive when it reaches across.\n\n",
            c.base,
            percent(c.level),
            c.metric,
            t = c.threshold * 100.0
        ),
        InputKind::Separate => format!(
            "**Verdict from separate runs** `{}` → `{}`: their drift is not in the interval, \
             so treat changes inside ±{:.0}% as noise. A query regresses when the whole {:.1}% \
             interval of its {} ratio lies above +{:.0}%.\n\n",
            c.base,
            c.current,
            crate::compare::SEPARATE_THRESHOLD * 100.0,
            c.level * 100.0,
            c.metric,
            c.threshold * 100.0
        ),
    }
}

/// One row per matched query.
fn query_table(c: &Comparison) -> String {
    let mut out = format!(
        "| query | baseline {m} | current {m} | change [interval] | verdict |\n",
        m = c.metric
    );
    out.push_str("|---|---:|---:|---|---|\n");
    for q in &c.queries {
        out.push_str(&format!(
            "| {} | {} | {} | {} | {} |\n",
            q.name,
            ms(q.base_us),
            ms(q.current_us),
            change(q.change.as_ref()),
            query_verdict(q.verdict)
        ));
        for k in c.classes.iter().filter(|k| k.query == q.name) {
            out.push_str(&format!(
                "| ↳ {} tenants ({} pairs) | {} | {} | {} | {} |\n",
                k.class,
                k.pairs,
                ms(k.base_us),
                ms(k.current_us),
                change(k.change.as_ref()),
                query_verdict(k.verdict)
            ));
        }
    }
    out.push('\n');
    out
}

/// SQLSTATEs the current side raised and the baseline did not (empty when none).
fn new_errors(c: &Comparison) -> String {
    if c.new_errors.is_empty() {
        return String::new();
    }
    let mut out = String::from("New errors:\n");
    for e in &c.new_errors {
        out.push_str(&format!(
            "- {}: SQLSTATE {} × {} ({:.2}% of transactions{})\n",
            e.query,
            e.sqlstate,
            e.count,
            e.rate * 100.0,
            if e.over_limit {
                ", above --max-error-rate"
            } else {
                ""
            }
        ));
    }
    out.push('\n');
    out
}

/// Statements whose plan changed, before and after (empty when none).
fn plan_changes(c: &Comparison) -> String {
    if c.plan_changes.is_empty() {
        return String::new();
    }
    let mut out = format!(
        "Plan changes ({}):\n\n",
        if c.reasons.iter().any(|r| r.ends_with("plan changed")) {
            "failing the gate: --fail-on-plan-change"
        } else {
            "reported only; statistics sampling can change a plan too"
        }
    );
    for p in &c.plan_changes {
        out.push_str(&format!(
            "- {} ({} tenant, statement {}): {} → {}\n  - before: `{}`\n  - after: `{}`\n",
            p.query,
            p.tenant,
            p.statement,
            p.base_fingerprint,
            p.current_fingerprint,
            p.base_shape,
            p.current_shape
        ));
    }
    out.push('\n');
    out
}

/// The JSON report (it carries its own `format_version`).
pub fn json(c: &Comparison) -> String {
    // A struct of plain numbers and strings: serializing cannot fail, but a
    // NaN would become null, which is what a reader should see anyway.
    serde_json::to_string_pretty(c).unwrap_or_else(|e| format!("{{\"error\": \"{e}\"}}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{FORMAT_VERSION, QueryRow};

    fn sample(kind: InputKind, v: QueryVerdict, verdict: Verdict) -> Comparison {
        Comparison {
            classes: Vec::new(),
            format_version: FORMAT_VERSION,
            kind,
            base: "a/results.json".into(),
            current: "b/results.json".into(),
            metric: "p95".into(),
            threshold: 0.1,
            level: 0.975,
            max_error_rate: 0.01,
            verdict,
            exit_code: verdict.exit_code(),
            reasons: vec!["slow_q: p95 regression".into()],
            queries: vec![QueryRow {
                name: "slow_q".into(),
                base_us: 1_000,
                current_us: 1_250,
                base_count: 500,
                current_count: 500,
                change: Some(RatioCi {
                    ratio: 1.25,
                    lo: 1.15,
                    hi: 1.3,
                }),
                verdict: v,
            }],
            added: vec!["new_q".into()],
            removed: vec!["old_q".into()],
            throughput: None,
            new_errors: vec![],
            plans_compared: false,
            plan_changes: vec![],
            notes: vec![],
        }
    }

    #[test]
    fn a_family_level_is_printed_with_the_digits_that_tell_it_from_100() {
        assert_eq!(percent(0.975), "97.5%");
        assert_eq!(percent(1.0 - 0.05 / 12.0), "99.58%");
        assert_eq!(percent(1.0 - 2e-6), "99.99980%");
    }

    #[test]
    fn markdown_has_the_table_row_and_lists() {
        let md = markdown(&sample(
            InputKind::Paired,
            QueryVerdict::Regression,
            Verdict::Fail,
        ));
        assert!(md.starts_with("## crmbench compare: FAIL"), "{md}");
        assert!(
            md.contains(
                "| slow_q | 1.00 ms | 1.25 ms | +25.0% [+15.0%, +30.0%] | **REGRESSION** |"
            ),
            "{md}"
        );
        assert!(md.contains("Added queries: new_q"));
        assert!(md.contains("Removed queries: old_q"));
    }

    /// Every section, in order, byte for byte (pinned when `markdown` was
    /// split into its sections).
    #[test]
    fn markdown_with_every_section() {
        use crate::compare::verdict::NewError;
        use crate::compare::{PlanChange, Throughput};
        let mut c = sample(InputKind::Paired, QueryVerdict::Regression, Verdict::Fail);
        c.throughput = Some(Throughput {
            base_tps: 10.0,
            current_tps: 8.0,
            change: Some(RatioCi {
                ratio: 0.8,
                lo: 0.7,
                hi: 0.9,
            }),
            dropped: true,
        });
        c.new_errors = vec![NewError {
            query: "q".into(),
            sqlstate: "40001".into(),
            count: 3,
            rate: 0.01,
            over_limit: true,
        }];
        c.plan_changes = vec![PlanChange {
            query: "q".into(),
            tenant: "big".into(),
            statement: 0,
            base_fingerprint: "a".into(),
            current_fingerprint: "b".into(),
            base_shape: "x".into(),
            current_shape: "y".into(),
        }];
        c.reasons.push("q: plan changed".into());
        c.notes = vec!["n1".into(), "n2".into()];
        let expected = "## crmbench compare: FAIL\n\n\
            Paired run `a/results.json` (baseline and candidate interleaved in one time window). \
            A query regresses when the whole 97.5% interval of its candidate/baseline p95 lies \
            above +10%, shows no regression when it lies below +10%, and is inconclusive when it \
            reaches across.\n\n\
            | query | baseline p95 | current p95 | change [interval] | verdict |\n\
            |---|---:|---:|---|---|\n\
            | slow_q | 1.00 ms | 1.25 ms | +25.0% [+15.0%, +30.0%] | **REGRESSION** |\n\n\
            Throughput: 10.0 → 8.0 transactions/s, change -20.0% [-30.0%, -10.0%] — **DROPPED**\n\n\
            **FAIL:**\n- slow_q: p95 regression\n- q: plan changed\n\n\
            Added queries: new_q\n\nRemoved queries: old_q\n\n\
            New errors:\n- q: SQLSTATE 40001 × 3 (1.00% of transactions, above --max-error-rate)\n\n\
            Plan changes (failing the gate: --fail-on-plan-change):\n\n\
            - q (big tenant, statement 0): a → b\n  - before: `x`\n  - after: `y`\n\n\
            _Note: n1._\n_Note: n2._\n";
        assert_eq!(markdown(&c), expected);
    }

    #[test]
    fn separate_runs_say_so() {
        let md = markdown(&sample(
            InputKind::Separate,
            QueryVerdict::Pass,
            Verdict::Pass,
        ));
        assert!(md.contains("Verdict from separate runs"), "{md}");
    }

    #[test]
    fn json_round_trips_with_its_version() {
        let c = sample(InputKind::Paired, QueryVerdict::Pass, Verdict::Pass);
        let back: Comparison = serde_json::from_str(&json(&c)).unwrap();
        assert_eq!(back, c);
        assert!(json(&c).contains("\"format_version\": 1"));
    }
}
