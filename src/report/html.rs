//! report.html: one self-contained page (inline CSS, inline SVG, no script,
//! nothing fetched), readable from a file and printable. Every text that
//! came from a file goes through [`escape`].

use std::fmt::Write as _;

use super::model::{AdviceView, RemedyView, ReportModel, ms, ratio_text};
use super::plots::Plot;

/// The section ids, in page order (tests check each is present).
pub const SECTIONS: [(&str, &str); 10] = [
    ("what-to-do", "What to do"),
    ("summary", "Summary per query"),
    ("latency", "Latency by percentile"),
    ("over-time", "Throughput and p99 over time"),
    ("findings", "Plan findings"),
    ("indexes", "Recommended indexes"),
    ("migration", "Migration and rollback"),
    ("prisma", "Prisma"),
    ("drops", "Indexes that can go"),
    ("environment", "Appendix: environment"),
];

const CSS: &str = r#"
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1100px; padding: 1rem 1.5rem; color: #1b1f24; line-height: 1.4; }
h1 { margin-bottom: .2rem; } h2 { border-bottom: 2px solid #d0d7de; padding-bottom: .2rem; margin-top: 2rem; }
nav ol { columns: 3; font-size: .9rem; }
table { border-collapse: collapse; margin: .5rem 0; font-size: .88rem; }
th, td { border: 1px solid #d0d7de; padding: .2rem .5rem; text-align: left; vertical-align: top; }
td.n, th.n { text-align: right; font-variant-numeric: tabular-nums; }
thead th { background: #f0f3f6; }
.v-pass { background: #dafbe1; } .v-fail { background: #ffebe9; font-weight: bold; } .v-inc { background: #fff4ce; } .v-off { color: #57606a; }
.warning { background: #fff4ce; border: 1px solid #d4a72c; padding: .5rem .8rem; margin: .5rem 0; border-radius: 4px; }
.missing { color: #57606a; font-style: italic; }
.kept { color: #1a7f37; font-weight: 600; } .reverted { color: #cf222e; font-weight: 600; }
pre { background: #f6f8fa; border: 1px solid #d0d7de; padding: .6rem; overflow-x: auto; font-size: .8rem; }
.grid { display: flex; flex-wrap: wrap; gap: .5rem; }
figure { margin: .3rem 0; } figcaption { font-size: .8rem; color: #57606a; }
svg { max-width: 100%; height: auto; }
@media print {
  nav { display: none; }
  body { max-width: none; padding: 0; font-size: 10pt; }
  h2 { break-after: avoid; }
  figure, table, pre, .warning { break-inside: avoid; }
  pre { white-space: pre-wrap; }
  a { color: inherit; text-decoration: none; }
}
"#;

/// Escape text for HTML element content and attribute values.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The whole page.
pub fn render(model: &ReportModel, plots: &[Plot]) -> String {
    let env = &model.environment;
    let mut h = String::new();
    let _ = write!(
        h,
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>crmbench report: {}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>crmbench tuning report</h1>\n<p>Workload <b>{}</b> on PostgreSQL {}, measured {} → {} \
         ({:.1} s). Run folder <code>{}</code>.</p>\n",
        escape(&env.workload),
        escape(&env.workload),
        escape(&env.server_version),
        escape(&env.started_at),
        escape(&env.ended_at),
        env.measured_seconds,
        escape(&model.folder),
    );
    h.push_str("<nav><ol>");
    for (id, title) in SECTIONS {
        let _ = write!(h, "<li><a href=\"#{id}\">{title}</a></li>");
    }
    h.push_str("</ol></nav>\n");
    // The answer first; the environment is the appendix.
    lead(&mut h, model);
    summary(&mut h, model);
    latency(&mut h, plots);
    over_time(&mut h, plots);
    findings(&mut h, model);
    indexes(&mut h, model, plots);
    migration(&mut h, model.advice.as_ref());
    prisma(&mut h, model.advice.as_ref());
    drops(
        &mut h,
        model.advice.as_ref(),
        model.environment.stats_missing.as_deref(),
    );
    super::replication::html(&mut h, model.replication.as_ref());
    if let Some(r) = &model.rehearsal {
        h.push_str(&super::rehearsal::html(r));
    }
    if let Some(r) = &model.retention {
        h.push_str(&super::retention::html(r));
    }
    environment(&mut h, model);
    h.push_str(
        "<footer><p class=\"missing\">Written by <code>crmbench report</code> from the files of \
         the run folder; no database was opened.</p></footer>\n</body>\n</html>\n",
    );
    h
}

fn open(h: &mut String, id: &str) {
    let title = SECTIONS
        .iter()
        .find(|(i, _)| *i == id)
        .map_or(id, |(_, t)| t);
    let _ = writeln!(h, "<section id=\"{id}\">\n<h2>{title}</h2>");
}

fn close(h: &mut String) {
    h.push_str("</section>\n");
}

fn missing(h: &mut String, text: &str) {
    let _ = writeln!(h, "<p class=\"missing\">{}</p>", escape(text));
}

fn figure(h: &mut String, plot: &Plot) {
    // The SVG is plotters' output: it escapes the text it draws itself.
    let svg = plot
        .svg
        .find("<svg")
        .map_or(plot.svg.as_str(), |i| &plot.svg[i..]);
    // The SVG draws its own title: a caption under it would repeat it
    // (issue 16, item 10); the title stays for screen readers.
    let _ = writeln!(
        h,
        "<figure aria-label=\"{}\">{svg}</figure>",
        escape(&plot.title)
    );
}

fn lead(h: &mut String, model: &ReportModel) {
    open(h, "what-to-do");
    // A paired folder's summary is the gate's verdict (issue 12).
    if let Some(p) = &model.paired {
        h.push_str(&super::paired::html(p, escape));
        close(h);
        return;
    }
    if !model.environment.warnings.is_empty() {
        h.push_str("<p class=\"warning\">⚠ See the appendix (environment): these figures are not production's.</p>\n");
    }
    let actions = super::lead::actions(model);
    if actions.is_empty() {
        missing(
            h,
            "Nothing to do: no advice.json in this run folder, or the advisor found nothing that pays.",
        );
    } else {
        h.push_str("<table>\n<thead><tr><th class=\"n\">#</th><th>action</th><th>effect</th><th>file</th></tr></thead>\n");
        for (i, a) in actions.iter().enumerate() {
            let _ = writeln!(
                h,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                i + 1,
                escape(&a.what),
                escape(&a.effect),
                escape(&a.file)
            );
        }
        h.push_str("</table>\n");
    }
    h.push_str("<h3>Before and after, per query</h3>\n<table>\n<thead><tr><th>query</th><th class=\"n\">p95 ms (measured)</th><th>what the advisor did</th></tr></thead>\n");
    for [q, p95, why] in super::lead::before_after(model) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td class=\"n\">{p95}</td><td>{}</td></tr>",
            escape(&q),
            escape(&why)
        );
    }
    h.push_str("</table>\n");
    close(h);
}

fn environment(h: &mut String, model: &ReportModel) {
    let env = &model.environment;
    open(h, "environment");
    for w in &env.warnings {
        let _ = writeln!(h, "<p class=\"warning\">⚠ {}</p>", escape(w));
    }
    h.push_str("<table>\n");
    let scale = env
        .scale
        .map_or("not a generated dataset".to_string(), |s| s.to_string());
    let rows = [
        ("Server", env.server_version.clone()),
        ("Target", env.target.clone()),
        ("Scale", scale),
        ("Seed", env.seed.to_string()),
        (
            "Workload",
            format!(
                "{} ({}, hash {})",
                env.workload, env.workload_path, env.workload_hash
            ),
        ),
        ("Driver", env.driver.clone()),
        (
            "Measured",
            format!(
                "{:.1} s from {} to {}",
                env.measured_seconds, env.started_at, env.ended_at
            ),
        ),
        ("crmbench", env.crmbench_version.clone()),
    ];
    for (k, v) in rows {
        let _ = writeln!(h, "<tr><th>{k}</th><td>{}</td></tr>", escape(&v));
    }
    h.push_str("</table>\n<h3>Settings in force</h3>\n<table>\n");
    for (k, v) in &env.settings {
        let _ = writeln!(h, "<tr><th>{}</th><td>{}</td></tr>", escape(k), escape(v));
    }
    h.push_str("</table>\n");
    close(h);
}

fn summary(h: &mut String, model: &ReportModel) {
    open(h, "summary");
    h.push_str(
        "<table>\n<thead><tr><th>query</th><th>kind</th><th class=\"n\">count</th>\
         <th class=\"n\">tps</th><th class=\"n\">p50 ms</th><th class=\"n\">p95 ms</th>\
         <th class=\"n\">p99 ms</th><th class=\"n\">p99.9 ms</th><th class=\"n\">max ms</th>\
         <th class=\"n\">errors</th></tr></thead>\n<tbody>\n",
    );
    for q in &model.queries {
        let l = &q.latency;
        let errors = if q.errors.is_empty() {
            "0".to_string()
        } else {
            q.errors
                .iter()
                .map(|(code, n)| format!("{n} {code}"))
                .collect::<Vec<_>>()
                .join(", ")
        };
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1}</td>\
             <td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td>\
             <td class=\"n\">{:.2}</td><td class=\"n\">{:.2}</td><td class=\"n\">{}</td></tr>",
            escape(&q.name),
            escape(&q.kind),
            q.count,
            q.tps,
            ms(l.p50_us),
            ms(l.p95_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            escape(&errors)
        );
    }
    h.push_str("</tbody></table>\n");
    close(h);
}

fn latency(h: &mut String, plots: &[Plot]) {
    open(h, "latency");
    h.push_str(
        "<p>Each query's latency at every percentile (HDR percentile spectrum): x is 1/(1−p) on \
         a log scale, y is milliseconds on a log scale; the right end is the slowest \
         transaction.</p>\n<div class=\"grid\">\n",
    );
    for p in plots.iter().filter(|p| p.key.starts_with("latency:")) {
        figure(h, p);
    }
    h.push_str("</div>\n");
    close(h);
}

fn over_time(h: &mut String, plots: &[Plot]) {
    open(h, "over-time");
    let mut any = false;
    for p in plots
        .iter()
        .filter(|p| p.key == "throughput" || p.key == "p99")
    {
        figure(h, p);
        any = true;
    }
    if !any {
        missing(h, "not captured: results.json has no per-interval series");
    }
    close(h);
}

fn findings(h: &mut String, model: &ReportModel) {
    open(h, "findings");
    match &model.plans {
        None => {
            missing(
                h,
                "not captured: no plans.json in this run folder (crmbench explain --out DIR).",
            );
            if let Some(a) = model.advice.as_ref().filter(|a| !a.rls_findings.is_empty()) {
                h.push_str("<p>advice.json lists these row-level security findings:</p>\n");
                rls_table(h, a);
            }
        }
        Some(plans) => {
            let _ = writeln!(
                h,
                "<p>From EXPLAIN ANALYZE as the workload's role{}, grouped by kind, most severe \
                 first, one line each with what to do; each query's plan trees are under Plan \
                 trees below.{}</p>",
                if model.plans_rls {
                    " with the tenant set, for a big and a small tenant"
                } else {
                    ""
                },
                if plans
                    .iter()
                    .flat_map(|q| &q.findings)
                    .any(|f| f.kind == "rls_non_leakproof")
                {
                    " <code>rls_non_leakproof</code>: row-level security keeps a predicate from \
                     being an index condition; the remedy is a schema change, not an index."
                } else {
                    ""
                }
            );
            grouped_findings(h, plans);
            plan_trees(h, plans);
        }
    }
    if let Some(a) = &model.advice {
        remedies(h, a);
    }
    close(h);
}

/// How much a finding kind matters: 0 high (wrong or unbounded work), 1
/// medium (wasted work), 2 low (a hint for the planner).
pub fn severity(kind: &str) -> u8 {
    match kind {
        "rls_non_leakproof" | "join_without_tenant" | "seq_scan_selective" | "nested_loop_many" => {
            0
        }
        "filter_removes_most" | "spill" | "lossy_bitmap" => 1,
        _ => 2,
    }
}

/// Findings by kind, most severe kind first, one table per kind; the
/// queries without any on one line.
fn grouped_findings(h: &mut String, plans: &[super::model::QueryFindings]) {
    let mut kinds: Vec<&str> = plans
        .iter()
        .flat_map(|q| q.findings.iter().map(|f| f.kind.as_str()))
        .collect();
    kinds.sort_by_key(|k| (severity(k), *k));
    kinds.dedup();
    for kind in kinds {
        let rows: Vec<(&str, &super::model::FindingView)> = plans
            .iter()
            .flat_map(|q| q.findings.iter().map(move |f| (q.query.as_str(), f)))
            .filter(|(_, f)| f.kind == kind)
            .collect();
        let _ = writeln!(
            h,
            "<h3><code>{}</code> — {} ({})</h3>\n<table>\n<thead><tr><th>query</th><th>plan \
             node</th><th>what to do</th></tr></thead>\n<tbody>",
            escape(kind),
            ["high", "medium", "low"][usize::from(severity(kind).min(2))],
            rows.len()
        );
        for (query, f) in rows {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(query),
                escape(&f.node),
                hint_cell(f)
            );
        }
        h.push_str("</tbody></table>\n");
    }
    let clean: Vec<String> = plans
        .iter()
        .filter(|q| q.findings.is_empty())
        .map(|q| escape(&q.query))
        .collect();
    if !clean.is_empty() {
        let _ = writeln!(
            h,
            "<p class=\"missing\">No findings: {}.</p>",
            clean.join(", ")
        );
    }
}

/// A finding's hint; for `plans_differ` one line with the two plan shapes
/// behind a `<details>` (they run to hundreds of characters).
fn hint_cell(f: &super::model::FindingView) -> String {
    if f.kind != "plans_differ" {
        return escape(&f.hint);
    }
    format!(
        "<details><summary>the tenants get different plans: test both when changing \
         indexes</summary>{}</details>",
        escape(&f.hint)
    )
}

/// Each query's plan trees, one `<details>` per query, closed: the
/// findings above are the reading; the trees are the evidence.
fn plan_trees(h: &mut String, plans: &[super::model::QueryFindings]) {
    if plans.iter().all(|q| q.trees.is_empty()) {
        return;
    }
    h.push_str("<h3>Plan trees</h3>\n");
    for q in plans.iter().filter(|q| !q.trees.is_empty()) {
        let _ = writeln!(
            h,
            "<details><summary>{} ({} plan{})</summary>",
            escape(&q.query),
            q.trees.len(),
            if q.trees.len() == 1 { "" } else { "s" }
        );
        for (label, tree) in &q.trees {
            let _ = writeln!(
                h,
                "<p><b>{}</b></p>\n<pre><code>{}</code></pre>",
                escape(label),
                escape(tree)
            );
        }
        h.push_str("</details>\n");
    }
}

fn remedies(h: &mut String, a: &AdviceView) {
    if a.remedies.is_empty() {
        return;
    }
    h.push_str(
        "<h3>Remedies</h3>\n<p>Schema changes that make a predicate leakproof, so the \
         application role can use an index; measured on a clone (the statement as it is \
         against the rewritten one, as the workload's role with the tenant set).</p>\n\
         <table>\n<thead><tr><th>query</th><th>change</th><th>measured (median)</th></tr></thead>\n<tbody>\n",
    );
    for RemedyView {
        query: q,
        change,
        effect,
        ..
    } in &a.remedies
    {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(q),
            escape(change),
            escape(effect)
        );
    }
    h.push_str("</tbody></table>\n");
    let _ = writeln!(h, "<pre><code>{}</code></pre>", escape(&a.remedies_sql));
}

fn rls_table(h: &mut String, a: &AdviceView) {
    h.push_str("<table>\n<thead><tr><th>query</th><th>plan node</th><th>remedy</th></tr></thead>\n<tbody>\n");
    for (q, f) in &a.rls_findings {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(q),
            escape(&f.node),
            escape(&f.hint)
        );
    }
    h.push_str("</tbody></table>\n");
}

fn indexes(h: &mut String, model: &ReportModel, plots: &[Plot]) {
    open(h, "indexes");
    let Some(a) = &model.advice else {
        missing(
            h,
            "not captured: no advice.json in this run folder (crmbench advise --verify --out DIR).",
        );
        close(h);
        return;
    };
    let _ = writeln!(
        h,
        "<p>Method: {}. Query weights: {}. Weighted what-if cost {:.1} → {:.1}.</p>",
        escape(&a.method),
        escape(&a.weights_from),
        a.base_cost,
        a.final_cost
    );
    if a.indexes.is_empty() {
        missing(h, "No index pays for itself on this workload.");
        close(h);
        return;
    }
    h.push_str(
        "<table>\n<thead><tr><th>index</th><th>serves</th><th class=\"n\">predicted what-if cost \
         ratio</th><th>measured p50 after/before</th><th>measured p95 after/before</th>\
         <th>verdict</th></tr></thead>\n<tbody>\n",
    );
    for i in &a.indexes {
        // One metric per column: p50 and p95 each in their own.
        let (p50, p95, verdict) = match &i.verification {
            None => (
                "<span class=\"missing\">not verified</span>".to_string(),
                String::new(),
                String::new(),
            ),
            Some(v) => {
                let per = |pick: fn(&super::model::MeasuredView) -> &crate::results::RatioCi| {
                    v.measured
                        .iter()
                        .map(|m| format!("{} {}", escape(&m.query), escape(&ratio_text(pick(m)))))
                        .collect::<Vec<_>>()
                        .join("<br>")
                };
                let verdict = format!(
                    "<span class=\"{}\">{}</span>",
                    if v.kept { "kept" } else { "reverted" },
                    escape(&v.reason)
                );
                (per(|m| &m.p50), per(|m| &m.p95), verdict)
            }
        };
        let _ = writeln!(
            h,
            "<tr><td><code>{}</code><br><small>{}</small></td><td>{}</td><td class=\"n\">{:.2}×</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            escape(&i.name),
            escape(&i.create_sql),
            escape(&i.queries.join(", ")),
            i.predicted_ratio,
            p50,
            p95,
            verdict
        );
    }
    h.push_str("</tbody></table>\n");
    if !a.verified {
        missing(
            h,
            "Measured effect: not captured (advise ran without --verify).",
        );
    }
    for i in &a.indexes {
        let Some(v) = &i.verification else { continue };
        let _ = writeln!(h, "<h3>{}</h3>", escape(&i.name));
        if let Some(p) = plots.iter().find(|p| p.key == format!("verify:{}", i.name)) {
            figure(h, p);
        }
        h.push_str(
            "<table>\n<thead><tr><th>query</th><th>p50 after/before</th><th>p95 after/before</th></tr></thead>\n<tbody>\n",
        );
        for m in &v.measured {
            let _ = writeln!(
                h,
                "<tr><td>{}</td><td>{}</td><td>{}</td></tr>",
                escape(&m.query),
                escape(&ratio_text(&m.p50)),
                escape(&ratio_text(&m.p95))
            );
        }
        h.push_str("</tbody></table>\n");
    }
    close(h);
}

fn migration(h: &mut String, advice: Option<&AdviceView>) {
    open(h, "migration");
    match advice {
        None => missing(h, "not captured: no advice.json in this run folder."),
        Some(a) => {
            let _ = writeln!(
                h,
                "<h3>migration.sql</h3>\n<pre><code>{}</code></pre>\n<h3>rollback.sql</h3>\n<pre><code>{}</code></pre>",
                escape(&a.migration_sql),
                escape(&a.rollback_sql)
            );
        }
    }
    close(h);
}

fn prisma(h: &mut String, advice: Option<&AdviceView>) {
    open(h, "prisma");
    match advice {
        None => missing(h, "not captured: no advice.json in this run folder."),
        Some(a) if a.prisma.is_empty() => missing(h, "not captured: no prisma/ folder."),
        Some(a) => {
            for (path, text) in &a.prisma {
                let _ = writeln!(
                    h,
                    "<h3><code>{}</code></h3>\n<pre><code>{}</code></pre>",
                    escape(path),
                    escape(text)
                );
            }
        }
    }
    close(h);
}

fn drops(h: &mut String, advice: Option<&AdviceView>, stats_missing: Option<&str>) {
    open(h, "drops");
    if let Some(reason) = stats_missing {
        missing(h, &format!("{}.", super::stats_missing_text(reason)));
    }
    match advice {
        None => missing(h, "not captured: no advice.json in this run folder."),
        Some(a) if a.drops.is_empty() => missing(h, "No index is worth dropping."),
        Some(a) => {
            h.push_str(
                "<table>\n<thead><tr><th>index</th><th>table</th><th>why</th><th>SQL</th></tr></thead>\n<tbody>\n",
            );
            for d in &a.drops {
                let _ = writeln!(
                    h,
                    "<tr><td>{}</td><td>{}</td><td>{}</td><td><code>{}</code></td></tr>",
                    escape(&d.index),
                    escape(&d.table),
                    escape(&d.reason),
                    escape(&d.sql)
                );
            }
            h.push_str("</tbody></table>\n");
        }
    }
    close(h);
}

#[cfg(test)]
mod tests {

    /// Findings grouped by kind, most severe first (issue 16, item 11).
    #[test]
    fn findings_are_grouped_by_kind_most_severe_first() {
        use super::super::model::{FindingView, QueryFindings};
        let f = |kind: &str| FindingView {
            kind: kind.into(),
            node: "Seq Scan on orders".into(),
            hint: "do this".into(),
        };
        let plans = vec![
            QueryFindings {
                query: "a".into(),
                findings: vec![f("estimate_off"), f("rls_non_leakproof")],
                trees: Vec::new(),
            },
            QueryFindings {
                query: "b".into(),
                findings: vec![f("estimate_off")],
                trees: Vec::new(),
            },
            QueryFindings {
                query: "c".into(),
                findings: Vec::new(),
                trees: Vec::new(),
            },
        ];
        let mut h = String::new();
        grouped_findings(&mut h, &plans);
        let rls = h.find("<code>rls_non_leakproof</code> — high (1)").unwrap();
        let est = h.find("<code>estimate_off</code> — low (2)").unwrap();
        assert!(rls < est, "{h}");
        assert_eq!(h.matches("<h3>").count(), 2, "{h}");
        assert!(h.contains("No findings: c."), "{h}");
    }
    use super::*;

    #[test]
    fn escape_neutralises_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x") & 'y'</script>"#),
            "&lt;script&gt;alert(&quot;x&quot;) &amp; &#39;y&#39;&lt;/script&gt;"
        );
    }
}
