//! The report's opening: the three to five things to do, each with its
//! measured (or predicted) effect and the file that does it, then every
//! query's before/after and what the advisor decided for it. The writers
//! render this first; environment and settings follow as an appendix.
//! For a paired run folder the gate's verdict is the opening instead: the
//! one hook is [`actions`]' caller in each writer (one section, not two).

use super::model::{ReportModel, ms, ratio_text};

/// Most actions the summary lists.
pub const MAX_ACTIONS: usize = 5;

/// One thing to do.
#[derive(Debug, Clone, PartialEq)]
pub struct Action {
    /// What to do.
    pub what: String,
    /// Its effect, measured where `--verify` measured it.
    pub effect: String,
    /// The file that does it.
    pub file: String,
}

/// The actions, most rewarding first: kept indexes (measured ratio, else
/// the what-if one), remedies, then the drops.
pub fn actions(model: &ReportModel) -> Vec<Action> {
    let Some(a) = &model.advice else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for i in &a.indexes {
        let effect = match &i.verification {
            Some(v) if !v.kept => continue,
            Some(v) => v
                .measured
                .iter()
                .map(|m| {
                    format!(
                        "{} p50 {}, p95 {}",
                        m.query,
                        ratio_text(&m.p50),
                        ratio_text(&m.p95)
                    )
                })
                .collect::<Vec<_>>()
                .join("; "),
            None => format!(
                "what-if workload cost ×{:.2} (not measured: run advise --verify); serves {}",
                i.predicted_ratio,
                i.queries.join(", ")
            ),
        };
        out.push(Action {
            what: format!("build index {}", i.name),
            effect,
            file: "migration.sql".into(),
        });
    }
    // A remedy measured without a gain stays in its own section, with its
    // figures; it is not something to do.
    for r in a.remedies.iter().filter(|r| r.gain != Some(false)) {
        out.push(Action {
            what: format!("remedy for {}: {}", r.query, r.change),
            effect: r.effect.clone(),
            file: "remedies.sql".into(),
        });
    }
    if !a.drops.is_empty() {
        out.push(Action {
            what: format!(
                "drop {} unused or redundant index{}",
                a.drops.len(),
                if a.drops.len() == 1 { "" } else { "es" }
            ),
            effect: a
                .drops
                .iter()
                .map(|d| d.index.clone())
                .collect::<Vec<_>>()
                .join(", "),
            file: "the DROP statements of the section Indexes that can go".into(),
        });
    }
    out.truncate(MAX_ACTIONS);
    out
}

/// Per query: p95 measured, and what the advisor decided for it.
pub fn before_after(model: &ReportModel) -> Vec<[String; 3]> {
    let explanations = model.advice.as_ref().map(|a| &a.explanations);
    let none = match explanations {
        None => "not advised: no advice.json in this run folder",
        Some(e) if e.is_empty() => {
            "not explained: advice.json predates per-query explanations (run advise again)"
        }
        Some(_) => "not in the advised workload",
    };
    model
        .queries
        .iter()
        .map(|q| {
            let why = explanations
                .and_then(|e| e.iter().find(|(n, _)| n == &q.name))
                .map_or_else(|| none.to_string(), |(_, t)| t.clone());
            [q.name.clone(), format!("{:.2}", ms(q.latency.p95_us)), why]
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> ReportModel {
        super::super::load(std::path::Path::new("fixtures/runs/complete")).unwrap()
    }

    #[test]
    fn a_remedy_measured_without_gain_is_not_an_action() {
        let model = complete();
        let remedies = &model.advice.as_ref().unwrap().remedies;
        // The fixture measured product_search's rewrite at ×1.04 [0.98, 1.09].
        assert!(remedies.iter().any(|r| r.gain == Some(false)));
        assert!(remedies.iter().any(|r| r.gain == Some(true)));
        let what: Vec<String> = actions(&model).into_iter().map(|a| a.what).collect();
        assert!(
            what.iter().any(|w| w.contains("customer_name_search")),
            "{what:#?}"
        );
        assert!(
            !what.iter().any(|w| w.contains("remedy for product_search")),
            "{what:#?}"
        );
    }

    #[test]
    fn a_kept_index_shows_both_percentiles_verify_decides_on() {
        let model = complete();
        let built: Vec<Action> = actions(&model)
            .into_iter()
            .filter(|a| a.what.starts_with("build index"))
            .collect();
        assert!(!built.is_empty());
        for a in built {
            assert!(
                a.effect.contains(" p50 ") && a.effect.contains(" p95 "),
                "{a:?}"
            );
        }
    }
}
