//! The before/after section of a paired run folder (issue 12, item 6): for
//! a paired run the report's opening summary *is* the gate's verdict, so
//! this section takes the place of "What to do" (same anchor, one section,
//! not two). Per query and tenant class: baseline and candidate p50/p95/p99,
//! the gated percentile's ratio with its interval, the decision with its
//! colour; then the decision timeline of a sequential run (each look's
//! critical value and its widest interval); then each query's percentile
//! spectra, baseline and candidate overlaid. The verdict comes from
//! [`crate::compare`] on the same results.json: the report and `compare`
//! cannot disagree.

use std::fmt::Write as _;
use std::path::Path;

use crate::compare::verdict::{InconclusivePolicy, QueryVerdict, Verdict};
use crate::compare::{CompareOptions, Comparison, Metric};
use crate::error::{Error, Result};
use crate::results::{Look, Results};
use crate::stats::{Hist, Summary};

use super::plots::{self, Line, Plot};

/// What the section shows.
#[derive(Debug, Clone)]
pub struct PairedView {
    /// The gate's answer on this folder (as `compare --in` gives it).
    pub comparison: Comparison,
    /// Per query: (name, baseline, candidate) percentiles.
    pub sides: Vec<(String, Summary, Summary)>,
    /// A sequential run's looks (empty for a fixed-length run).
    pub looks: Vec<Look>,
    /// Per query: (name, baseline, candidate) histograms, for the spectra.
    pub hists: Vec<(String, Hist, Hist)>,
}

/// The view of a paired `results` read from `path`; `None` for an
/// unpaired run. The metric and threshold are the sequential run's when it
/// was one, else p95 and the paired default, as `compare` judges them.
pub fn view(path: &Path, results: &Results) -> Result<Option<PairedView>> {
    if !results.driver.paired || results.partial.is_some() {
        return Ok(None);
    }
    let metric = (results.sequential.as_ref())
        .and_then(|s| Metric::from_name(&s.metric))
        .unwrap_or_default();
    let comparison = crate::compare::compare(&CompareOptions {
        base: path.to_path_buf(),
        current: None,
        threshold: None,
        metric,
        max_error_rate: 0.01,
        fail_on_plan_change: false,
        candidate_plans: None,
        seed: results.seed,
        inconclusive: InconclusivePolicy::default(),
    })?;
    let sides = results
        .queries
        .iter()
        .filter_map(|q| {
            let c = q.candidate.as_ref()?;
            Some((q.name.clone(), q.baseline.latency, c.latency))
        })
        .collect();
    let hists = results
        .queries
        .iter()
        .filter_map(|q| Some((q, q.candidate.as_ref()?)))
        .map(|(q, c)| {
            let decode = |text: &str| {
                crate::stats::decode(text).map_err(|e| Error::RunFile {
                    message: format!("{}: query `{}`: {e}", path.display(), q.name),
                    fix: "the results file is damaged: re-run the benchmark".into(),
                })
            };
            Ok((
                q.name.clone(),
                decode(&q.baseline.histogram)?,
                decode(&c.histogram)?,
            ))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Some(PairedView {
        comparison,
        hists,
        sides,
        looks: results
            .sequential
            .as_ref()
            .map_or_else(Vec::new, |s| s.looks.clone()),
    }))
}

/// The verdict's headline word.
pub fn headline(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "PASS",
        Verdict::Fail => "FAIL",
        Verdict::Undecidable => "UNDECIDABLE",
        Verdict::Inconclusive => "INCONCLUSIVE",
    }
}

/// The CSS class (colour) of a decision.
fn colour(v: QueryVerdict) -> &'static str {
    match v {
        QueryVerdict::Regression => "v-fail",
        QueryVerdict::Inconclusive | QueryVerdict::TooFewSamples => "v-inc",
        QueryVerdict::NotGated => "v-off",
        _ => "v-pass",
    }
}

fn pct(r: &crate::results::RatioCi) -> String {
    if r.lo.is_finite() && r.hi.is_finite() {
        format!(
            "{:+.1}% [{:+.1}%, {:+.1}%]",
            (r.ratio - 1.0) * 100.0,
            (r.lo - 1.0) * 100.0,
            (r.hi - 1.0) * 100.0
        )
    } else {
        "—".into()
    }
}

fn three(s: &Summary) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "{:.2} / {:.2} / {:.2}",
        ms(s.p50_us),
        ms(s.p95_us),
        ms(s.p99_us)
    )
}

/// Rows of the before/after table: (label, baseline, candidate, change,
/// verdict); class rows follow their query.
fn rows(v: &PairedView) -> Vec<[String; 4]> {
    let c = &v.comparison;
    let mut out = Vec::new();
    for q in &c.queries {
        let (base, cand) = v
            .sides
            .iter()
            .find(|(n, _, _)| *n == q.name)
            .map_or((String::new(), String::new()), |(_, b, k)| {
                (three(b), three(k))
            });
        out.push([
            q.name.clone(),
            base,
            cand,
            q.change.as_ref().map_or("—".into(), pct),
        ]);
        for k in c.classes.iter().filter(|k| k.query == q.name) {
            out.push([
                format!("↳ {} tenants ({} pairs)", k.class, k.pairs),
                format!("{} {:.2}", c.metric, k.base_us as f64 / 1000.0),
                format!("{} {:.2}", c.metric, k.current_us as f64 / 1000.0),
                k.change.as_ref().map_or("—".into(), pct),
            ]);
        }
    }
    out
}

/// Each row's verdict, in [`rows`]' order.
fn verdicts(c: &Comparison) -> Vec<QueryVerdict> {
    c.queries
        .iter()
        .flat_map(|q| {
            std::iter::once(q.verdict).chain(
                c.classes
                    .iter()
                    .filter(|k| k.query == q.name)
                    .map(|k| k.verdict),
            )
        })
        .collect()
}

fn intro(c: &Comparison) -> String {
    format!(
        "Gate verdict: {} — candidate vs baseline, paired in one time window. A query \
         (or a tenant class) regresses when the whole {:.2}% interval of its candidate/baseline \
         {} lies above +{:.0}%; it shows no regression when the interval lies below.",
        headline(c.verdict),
        c.level * 100.0,
        c.metric,
        c.threshold * 100.0
    )
}

/// The widest interval of a look, as (name, width factor hi/lo).
fn widest(l: &Look) -> String {
    l.intervals
        .iter()
        .filter(|(_, lo, hi)| lo.is_finite() && hi.is_finite() && *lo > 0.0)
        .max_by(|a, b| (a.2 / a.1).total_cmp(&(b.2 / b.1)))
        .map_or("—".into(), |(n, lo, hi)| {
            format!("{n} [{lo:.2}, {hi:.2}]")
        })
}

/// The section as HTML (inside `<section id="what-to-do">`).
pub fn html(v: &PairedView, escape: fn(&str) -> String) -> String {
    let c = &v.comparison;
    let mut h = String::new();
    let _ = writeln!(
        h,
        "<p class=\"{}\"><b>{}</b></p>",
        match c.verdict {
            Verdict::Pass => "v-pass",
            Verdict::Fail => "v-fail",
            _ => "v-inc",
        },
        escape(&intro(c))
    );
    if !c.reasons.is_empty() {
        h.push_str("<ul>");
        for r in &c.reasons {
            let _ = write!(h, "<li>{}</li>", escape(r));
        }
        h.push_str("</ul>\n");
    }
    h.push_str(
        "<table>\n<thead><tr><th>query</th><th>baseline p50 / p95 / p99 ms</th>\
         <th>candidate p50 / p95 / p99 ms</th><th>change [interval]</th><th>decision</th></tr></thead>\n",
    );
    for (row, verdict) in rows(v).iter().zip(verdicts(c)) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td>\
             <td class=\"{}\">{}</td></tr>",
            escape(&row[0]),
            escape(&row[1]),
            escape(&row[2]),
            escape(&row[3]),
            colour(verdict),
            verdict.label()
        );
    }
    h.push_str("</table>\n");
    if !v.looks.is_empty() {
        h.push_str(
            "<h3>Decision timeline</h3>\n<table>\n<thead><tr><th class=\"n\">look at s</th>\
             <th class=\"n\">critical value</th><th class=\"n\">undecided</th>\
             <th>widest interval</th></tr></thead>\n",
        );
        for l in &v.looks {
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{:.0}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                l.t,
                l.z,
                l.undecided,
                escape(&widest(l))
            );
        }
        h.push_str("</table>\n");
    }
    h
}

/// The section as Markdown (under the "What to do" heading).
pub fn markdown(v: &PairedView, cell: fn(&str) -> String) -> String {
    let c = &v.comparison;
    let mut m = format!("**{}**\n\n", intro(c));
    for r in &c.reasons {
        let _ = writeln!(m, "- {}", cell(r));
    }
    if !c.reasons.is_empty() {
        m.push('\n');
    }
    m.push_str(
        "| query | baseline p50 / p95 / p99 ms | candidate p50 / p95 / p99 ms | change [interval] | decision |\n\
         |---|---:|---:|---|---|\n",
    );
    for (row, verdict) in rows(v).iter().zip(verdicts(c)) {
        let _ = writeln!(
            m,
            "| {} | {} | {} | {} | {} |",
            cell(&row[0]),
            cell(&row[1]),
            cell(&row[2]),
            cell(&row[3]),
            verdict.label()
        );
    }
    m.push('\n');
    if !v.looks.is_empty() {
        m.push_str("### Decision timeline\n\n| look at s | critical value | undecided | widest interval |\n|---:|---:|---:|---|\n");
        for l in &v.looks {
            let _ = writeln!(
                m,
                "| {:.0} | {:.2} | {} | {} |",
                l.t,
                l.z,
                l.undecided,
                cell(&widest(l))
            );
        }
        m.push('\n');
    }
    m
}

/// Each query's percentile spectra, baseline (solid) and candidate
/// (dashed, another colour) overlaid, on axes shared by every query so the
/// plots compare at a glance; one plot per query (two series: the legend
/// says which side and the gated metric's change). Keys `paired:<query>`.
pub fn spectra(v: &PairedView) -> Result<Vec<Plot>> {
    let axes = plots::spectrum_axes(v.hists.iter().flat_map(|(_, b, c)| [b, c]));
    let c = &v.comparison;
    let mut out = Vec::new();
    for (i, (name, base, cand)) in v.hists.iter().enumerate() {
        if base.is_empty() && cand.is_empty() {
            continue;
        }
        let change = (c.queries.iter().find(|q| &q.name == name))
            .and_then(|q| q.change)
            .map_or(String::new(), |r| format!(", {} ×{:.2}", c.metric, r.ratio));
        let lines = [
            Line {
                label: format!("baseline ({} tx)", base.len()),
                hist: base,
                colour: plots::colour(0),
                dashed: false,
            },
            Line {
                label: format!("candidate{change}"),
                hist: cand,
                colour: plots::colour(1),
                dashed: true,
            },
        ];
        out.push(Plot {
            key: format!("paired:{name}"),
            file_name: format!("paired-{:02}-{}.svg", i + 1, plots::file_safe(name)),
            title: format!("{name}: baseline and candidate by percentile"),
            svg: plots::spectrum(
                &format!("{name} — before / after"),
                &lines,
                (620, 280),
                axes,
            )?,
        });
    }
    Ok(out)
}
