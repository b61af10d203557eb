//! Why each query of the workload got an index or did not: indexed by X
//! (what-if ratio, and the measured one after `--verify`), or already fast,
//! kept from any index by row-level security (with the remedy), outweighed
//! by write cost, over the budget or `--max-indexes`, below the minimum gain,
//! or helped by no candidate in the what-if plans. advice.json and the
//! report carry one explanation per query.

use serde::{Deserialize, Serialize};

use super::Advice;
use super::select::{MIN_GAIN, MIN_QUERY_GAIN, QueryCosts};

/// What happened to one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// A recommended index serves it.
    Indexed,
    /// A recommended index served it, but `--verify` reverted it.
    Reverted,
    /// Row-level security keeps its predicate from any index.
    RowLevelSecurity,
    /// An index helps it, but its writes cost more than it saves.
    WriteCost,
    /// An index helps it, but does not fit `--budget-mb`.
    Budget,
    /// An index helps it, but the limits went to indexes saving more.
    Limits,
    /// An index helps it, but saves too little of the workload.
    BelowMinimumGain,
    /// A small share of the workload and no candidate helps it.
    AlreadyFast,
    /// No candidate lowered its what-if cost.
    NoCandidateHelped,
}

/// One query's explanation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueryExplanation {
    /// The query.
    pub query: String,
    /// What happened.
    pub outcome: Outcome,
    /// One line for the reader.
    pub text: String,
}

/// A query's share of the workload below which it counts as already fast
/// when nothing helps it.
const FAST_SHARE: f64 = 0.02;

/// One explanation per query of the selection's per-query costs.
pub fn explain(advice: &Advice) -> Vec<QueryExplanation> {
    advice
        .selection
        .per_query
        .iter()
        .map(|q| {
            let (outcome, text) = one(advice, q);
            QueryExplanation {
                query: q.query.clone(),
                outcome,
                text,
            }
        })
        .collect()
}

fn one(advice: &Advice, q: &QueryCosts) -> (Outcome, String) {
    if let Some(served) = served(advice, q) {
        return served;
    }
    if let Some((_, f)) = advice.rls_findings.iter().find(|(n, _)| n == &q.query) {
        let remedy = advice
            .remedies
            .iter()
            .find(|r| r.query == q.query)
            .map(|r| format!(" Remedy in remedies.sql: {}", r.change))
            .unwrap_or_default();
        return (
            Outcome::RowLevelSecurity,
            format!(
                "row-level security keeps its predicate from any index ({}).{remedy}",
                f.node
            ),
        );
    }
    match &q.best {
        Some(best) => left_out(advice, q, best),
        None => no_candidate(q),
    }
}

/// Indexed by a recommended index (or reverted by `--verify`), if any
/// chosen index serves the query enough.
fn served(advice: &Advice, q: &QueryCosts) -> Option<(Outcome, String)> {
    let ratio = q.base / q.after.max(f64::MIN_POSITIVE);
    let serving: Vec<&super::select::Chosen> = advice
        .selection
        .chosen
        .iter()
        .filter(|c| c.queries.contains(&q.query))
        .collect();
    if serving.is_empty() || q.after > q.base * (1.0 - MIN_QUERY_GAIN) {
        return None;
    }
    let kept: Vec<&&super::select::Chosen> = serving
        .iter()
        .filter(|c| advice.kept().any(|k| k.def == c.def))
        .collect();
    if kept.is_empty() {
        return Some((
            Outcome::Reverted,
            format!(
                "what-if {ratio:.1}× faster with {}, but --verify reverted it: {}",
                names(serving.iter().map(|c| &c.def)),
                revert_reason(advice, serving[0])
            ),
        ));
    }
    Some((Outcome::Indexed, indexed_text(advice, q, &kept, ratio)))
}

/// Why `--verify` reverted `chosen`, as its measurement said (no gain shown
/// is not the same as no gain: a short or noisy measurement shows neither).
fn revert_reason(advice: &Advice, chosen: &super::select::Chosen) -> String {
    let name = chosen.def.name();
    advice
        .verified
        .iter()
        .flatten()
        .find(|v| v.index == name)
        .map(|v| v.reason.trim_start_matches("reverted: ").to_string())
        .unwrap_or_else(|| "its measurement did not show the gain".into())
}

/// No candidate helps: already fast, or nothing lowered its cost.
fn no_candidate(q: &QueryCosts) -> (Outcome, String) {
    let share = 100.0 * q.share;
    if q.share < FAST_SHARE {
        return (
            Outcome::AlreadyFast,
            format!(
                "already fast: {share:.1}% of the workload's what-if cost, and no candidate lowers it by {:.0}%",
                100.0 * MIN_QUERY_GAIN
            ),
        );
    }
    (
        Outcome::NoCandidateHelped,
        format!(
            "no candidate lowered its what-if cost by {:.0}% or more ({share:.1}% of the workload)",
            100.0 * MIN_QUERY_GAIN
        ),
    )
}

/// A candidate helps the query alone but is not recommended: why.
fn left_out(advice: &Advice, q: &QueryCosts, best: &super::select::BestAlone) -> (Outcome, String) {
    let helps = format!(
        "{} alone makes it {:.1}× faster in the what-if plans",
        best.def.name(),
        q.base / best.cost.max(f64::MIN_POSITIVE)
    );
    if let Some(r) = advice.selection.rejected.iter().find(|r| r.def == best.def) {
        return (
            Outcome::BelowMinimumGain,
            format!("{helps}, but it was left out: {}", r.reason),
        );
    }
    if !best.fits {
        return (
            Outcome::Budget,
            format!("{helps}, but it does not fit --budget-mb"),
        );
    }
    if best.workload_gain <= 0.0 {
        return (
            Outcome::WriteCost,
            format!(
                "{helps}, but the writes to {} cost more than it saves",
                best.def.table
            ),
        );
    }
    if best.workload_gain < advice.selection.base_cost * MIN_GAIN {
        return (
            Outcome::BelowMinimumGain,
            format!(
                "{helps}, but that saves {:.2}% of the workload (minimum {:.1}%)",
                100.0 * best.workload_gain / advice.selection.base_cost.max(f64::MIN_POSITIVE),
                100.0 * MIN_GAIN
            ),
        );
    }
    if advice.selection.chosen.len() >= advice.selection.max_indexes {
        return (
            Outcome::Limits,
            format!("{helps}, but --max-indexes went to indexes that save more"),
        );
    }
    (
        Outcome::BelowMinimumGain,
        format!(
            "{helps}, but with the recommended indexes in place it saves less than {:.1}% of the workload",
            100.0 * MIN_GAIN
        ),
    )
}

fn indexed_text(
    advice: &Advice,
    q: &QueryCosts,
    kept: &[&&super::select::Chosen],
    whatif: f64,
) -> String {
    let measured: Vec<String> = advice
        .verified
        .iter()
        .flatten()
        .filter(|v| v.kept && kept.iter().any(|c| c.def.name() == v.index))
        .flat_map(|v| v.measured.iter().filter(|m| m.query == q.query))
        .map(|m| format!("p95 ×{:.2} [{:.2}, {:.2}]", m.p95.ratio, m.p95.lo, m.p95.hi))
        .collect();
    let measured = if measured.is_empty() {
        String::new()
    } else {
        format!("; measured {}", measured.join(", "))
    };
    format!(
        "indexed by {}: what-if cost {:.1} → {:.1} ({whatif:.1}× faster){measured}",
        names(kept.iter().map(|c| &c.def)),
        q.base,
        q.after
    )
}

fn names<'a>(defs: impl Iterator<Item = &'a super::candidates::IndexDef>) -> String {
    defs.map(|d| d.name()).collect::<Vec<_>>().join(", ")
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    /// In this fixture (a real `advise --verify` at scale 0.01, 15 s a side,
    /// histograms emptied to keep it small, explanations removed;
    /// on a loaded machine) verify reverted both chosen indexes because its
    /// intervals were too wide to show the gain: the explanation must say
    /// that, not that the index gave no gain.
    #[test]
    fn a_reverted_index_is_explained_by_what_verify_measured() {
        let text = std::fs::read_to_string("fixtures/advise-reverted/advice.json").unwrap();
        let advice: Advice = serde_json::from_str(&text).unwrap();
        let texts: Vec<String> = explain(&advice).into_iter().map(|e| e.text).collect();
        let reverted: Vec<&String> = texts.iter().filter(|t| t.contains("reverted it")).collect();
        assert!(!reverted.is_empty(), "{texts:#?}");
        for t in reverted {
            assert!(
                t.contains("reverted it: no query it was chosen for got ≥10% faster"),
                "{t}"
            );
            assert!(!t.contains("measured no gain"), "{t}");
        }
    }
}
