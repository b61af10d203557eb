//! `crmbench demo`: the whole pipeline in one command, and the three findings
//! worth reading first once it is done.

use crate::advise::Advice;
use crate::results::Results;

/// Default scale of the demo: about 400k rows (80 MB), so generate, run,
/// explain, advise --verify and report finish in about five minutes on 2 cores.
pub const DEFAULT_SCALE: f64 = 0.02;

/// The database the demo fills unless `--database` says otherwise: never the
/// user's own `crmbench` dataset.
pub const DATABASE: &str = "crmbench_demo";

/// Up to three one-line findings, most important first: the kept index with
/// the biggest measured speedup, the row-level-security predicate that no
/// index can serve (with its remedy and measured effect), and the slowest
/// query.
pub fn highlights(results: &Results, advice: Option<&Advice>) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(a) = advice {
        let best = a
            .verified
            .iter()
            .flatten()
            .filter(|v| v.kept)
            .flat_map(|v| v.measured.iter().map(move |m| (v, m)))
            .min_by(|x, y| x.1.p50.ratio.total_cmp(&y.1.p50.ratio));
        match best {
            Some((v, m)) => out.push(format!(
                "index {} makes {} {:.1}× faster (p50 ratio {:.2}, 95% interval [{:.2}, {:.2}]); {} of {} recommended indexes kept after paired verification — migration.sql",
                v.index,
                m.query,
                1.0 / m.p50.ratio.max(1e-9),
                m.p50.ratio,
                m.p50.lo,
                m.p50.hi,
                a.kept().count(),
                a.selection.chosen.len()
            )),
            None if !a.selection.chosen.is_empty() => out.push(format!(
                "{} index(es) recommended (what-if cost {:.0} → {:.0}), none proven: run advise --verify",
                a.selection.chosen.len(),
                a.selection.base_cost,
                a.selection.final_cost
            )),
            None => {}
        }
        if let Some((query, finding)) = a.rls_findings.first() {
            let remedy = a
                .remedies
                .iter()
                .find(|r| &r.query == query)
                .and_then(|r| r.measured.as_ref().map(|m| (r, m)));
            let measured = remedy.map_or(String::new(), |(r, m)| {
                format!(
                    " Remedy measured ({}): {:.2} ms → {:.2} ms — remedies.sql",
                    r.change, m.before_p50_ms, m.after_p50_ms
                )
            });
            out.push(format!(
                "{query}: {}.{measured}",
                finding.hint.split(": ").next().unwrap_or(&finding.hint)
            ));
        }
    }
    if let Some(q) = results
        .queries
        .iter()
        .max_by_key(|q| q.baseline.latency.p95_us)
    {
        out.push(format!(
            "slowest query: {} (p95 {:.2} ms, p99 {:.2} ms over {} transactions)",
            q.name,
            q.baseline.latency.p95_us as f64 / 1e3,
            q.baseline.latency.p99_us as f64 / 1e3,
            q.baseline.count
        ));
    }
    out.truncate(3);
    out
}
