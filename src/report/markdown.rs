//! report.md: the HTML report's content in Markdown (for a PR comment or a
//! client document), with the plots as SVG files in `report-files/` linked by
//! relative path. Text from files is escaped the Markdown way (a backslash
//! before `<`, `&` and `\`: renderers pass raw HTML through, and a reader
//! of the file itself must not meet `&#39;`), and table cells lose their
//! pipes and line breaks.

use std::fmt::Write as _;

use super::FILES_DIR;
use super::model::{AdviceView, RemedyView, ReportModel, ms, ratio_text};
use super::plots::Plot;

/// Text with Markdown's backslash escapes where HTML or an entity could
/// start: `\<` shows `<` and opens no tag, `\&` opens no entity.
fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if matches!(c, '\\' | '<' | '&') {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

/// A table cell: escaped, on one line, pipes escaped.
fn cell(text: &str) -> String {
    escape(text).replace('|', "\\|").replace(['\n', '\r'], " ")
}

/// A fenced code block whose fence is longer than any backtick run inside.
fn code(lang: &str, text: &str) -> String {
    let mut longest = 0;
    let mut run = 0;
    for c in text.chars() {
        run = if c == '`' { run + 1 } else { 0 };
        longest = longest.max(run);
    }
    let fence = "`".repeat(longest.max(2) + 1);
    format!("{fence}{lang}\n{}\n{fence}\n", text.trim_end())
}

fn image(m: &mut String, plot: &Plot) {
    let _ = writeln!(
        m,
        "![{}]({FILES_DIR}/{})\n",
        cell(&plot.title),
        plot.file_name
    );
}

/// The whole document.
pub fn render(model: &ReportModel, plots: &[Plot]) -> String {
    let env = &model.environment;
    let mut m = String::new();
    let _ = writeln!(
        m,
        "# crmbench tuning report\n\nWorkload **{}** on PostgreSQL {}, measured {} → {} ({:.1} s).\n",
        cell(&env.workload),
        cell(&env.server_version),
        cell(&env.started_at),
        cell(&env.ended_at),
        env.measured_seconds
    );
    // The answer first; the environment is the appendix.
    lead(&mut m, model);
    summary(&mut m, model);
    m.push_str("## Latency by percentile\n\nx: 1/(1−p) on a log scale; y: ms on a log scale.\n\n");
    for p in plots.iter().filter(|p| p.key.starts_with("latency:")) {
        image(&mut m, p);
    }
    m.push_str("## Throughput and p99 over time\n\n");
    let mut any = false;
    for p in plots
        .iter()
        .filter(|p| p.key == "throughput" || p.key == "p99")
    {
        image(&mut m, p);
        any = true;
    }
    if !any {
        m.push_str("_not captured: results.json has no per-interval series_\n\n");
    }
    findings(&mut m, model);
    indexes(&mut m, model, plots);
    let advice = model.advice.as_ref();
    m.push_str("## Migration and rollback\n\n");
    match advice {
        None => m.push_str("_not captured: no advice.json in this run folder._\n\n"),
        Some(a) => {
            let _ = writeln!(
                m,
                "`migration.sql`:\n\n{}\n`rollback.sql`:\n\n{}",
                code("sql", &a.migration_sql),
                code("sql", &a.rollback_sql)
            );
        }
    }
    m.push_str("## Prisma\n\n");
    match advice {
        None => m.push_str("_not captured: no advice.json in this run folder._\n\n"),
        Some(a) if a.prisma.is_empty() => m.push_str("_not captured: no prisma/ folder._\n\n"),
        Some(a) => {
            for (path, text) in &a.prisma {
                let lang = if path.ends_with(".sql") {
                    "sql"
                } else {
                    "prisma"
                };
                let _ = writeln!(m, "`{}`:\n\n{}", cell(path), code(lang, text));
            }
        }
    }
    drops(&mut m, advice, env.stats_missing.as_deref());
    super::replication::markdown(&mut m, model.replication.as_ref());
    if let Some(r) = &model.rehearsal {
        m.push_str(&super::rehearsal::markdown(r));
    }
    if let Some(r) = &model.retention {
        m.push_str(&super::retention::markdown(r));
    }
    environment(&mut m, model);
    m
}

fn lead(m: &mut String, model: &ReportModel) {
    m.push_str("## What to do\n\n");
    // A paired folder's summary is the gate's verdict (issue 12).
    if let Some(p) = &model.paired {
        m.push_str(&super::paired::markdown(p, cell));
        return;
    }
    if !model.environment.warnings.is_empty() {
        m.push_str("> **Warning:** see the appendix (Environment): these figures are not production's.\n\n");
    }
    let actions = super::lead::actions(model);
    if actions.is_empty() {
        m.push_str("_Nothing to do: no advice.json in this run folder, or the advisor found nothing that pays._\n\n");
    } else {
        m.push_str("| # | action | effect | file |\n|---:|---|---|---|\n");
        for (i, a) in actions.iter().enumerate() {
            let _ = writeln!(
                m,
                "| {} | {} | {} | {} |",
                i + 1,
                cell(&a.what),
                cell(&a.effect),
                cell(&a.file)
            );
        }
        m.push('\n');
    }
    m.push_str("### Before and after, per query\n\n| query | p95 ms (measured) | what the advisor did |\n|---|---:|---|\n");
    for [q, p95, why] in super::lead::before_after(model) {
        let _ = writeln!(m, "| {} | {p95} | {} |", cell(&q), cell(&why));
    }
    m.push('\n');
}

fn environment(m: &mut String, model: &ReportModel) {
    let env = &model.environment;
    m.push_str("## Appendix: environment\n\n");
    for w in &env.warnings {
        let _ = writeln!(m, "> **Warning:** {}\n", cell(w));
    }
    let scale = env
        .scale
        .map_or("not a generated dataset".to_string(), |s| s.to_string());
    m.push_str("| | |\n|---|---|\n");
    for (k, v) in [
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
        ("crmbench", env.crmbench_version.clone()),
    ] {
        let _ = writeln!(m, "| {k} | {} |", cell(&v));
    }
    m.push_str("\nSettings in force:\n\n| setting | value |\n|---|---|\n");
    for (k, v) in &env.settings {
        let _ = writeln!(m, "| {} | {} |", cell(k), cell(v));
    }
    m.push('\n');
}

fn summary(m: &mut String, model: &ReportModel) {
    m.push_str(
        "## Summary per query\n\n| query | kind | count | tps | p50 ms | p95 ms | p99 ms | p99.9 ms | max ms | errors |\n\
         |---|---|---:|---:|---:|---:|---:|---:|---:|---:|\n",
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
            m,
            "| {} | {} | {} | {:.1} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} |",
            cell(&q.name),
            cell(&q.kind),
            q.count,
            q.tps,
            ms(l.p50_us),
            ms(l.p95_us),
            ms(l.p99_us),
            ms(l.p999_us),
            ms(l.max_us),
            cell(&errors)
        );
    }
    m.push('\n');
}

fn rls(m: &mut String, a: &AdviceView) {
    m.push_str("| query | plan node | remedy |\n|---|---|---|\n");
    for (q, f) in &a.rls_findings {
        let _ = writeln!(m, "| {} | {} | {} |", cell(q), cell(&f.node), cell(&f.hint));
    }
    m.push('\n');
}

fn findings(m: &mut String, model: &ReportModel) {
    m.push_str("## Plan findings\n\n");
    match &model.plans {
        None => {
            m.push_str(
                "_not captured: no plans.json in this run folder (crmbench explain --out DIR)._\n\n",
            );
            if let Some(a) = model.advice.as_ref().filter(|a| !a.rls_findings.is_empty()) {
                m.push_str("advice.json lists these row-level security findings:\n\n");
                rls(m, a);
            }
        }
        Some(plans) => {
            m.push_str("| query | finding | plan node | what to do |\n|---|---|---|---|\n");
            for q in plans {
                if q.findings.is_empty() {
                    let _ = writeln!(m, "| {} | — | | no findings |", cell(&q.query));
                }
                for f in &q.findings {
                    let _ = writeln!(
                        m,
                        "| {} | {} | {} | {} |",
                        cell(&q.query),
                        cell(&f.kind),
                        cell(&f.node),
                        cell(&f.hint)
                    );
                }
            }
            m.push('\n');
        }
    }
    if let Some(a) = model.advice.as_ref().filter(|a| !a.remedies.is_empty()) {
        m.push_str(
            "### Remedies\n\nSchema changes that make a predicate leakproof, so the application \
             role can use an index; measured on a clone (the statement as it is against the \
             rewritten one, as the workload's role with the tenant set).\n\n\
             | query | change | measured (median) |\n|---|---|---|\n",
        );
        for RemedyView {
            query: q,
            change,
            effect,
            ..
        } in &a.remedies
        {
            let _ = writeln!(m, "| {} | {} | {} |", cell(q), cell(change), cell(effect));
        }
        m.push('\n');
        m.push_str(&code("sql", &a.remedies_sql));
        m.push('\n');
    }
}

fn indexes(m: &mut String, model: &ReportModel, plots: &[Plot]) {
    m.push_str("## Recommended indexes\n\n");
    let Some(a) = &model.advice else {
        m.push_str(
            "_not captured: no advice.json in this run folder (crmbench advise --verify --out DIR)._\n\n",
        );
        return;
    };
    let _ = writeln!(
        m,
        "Method: {}. Query weights: {}. Weighted what-if cost {:.1} → {:.1}.\n",
        cell(&a.method),
        cell(&a.weights_from),
        a.base_cost,
        a.final_cost
    );
    if a.indexes.is_empty() {
        m.push_str("No index pays for itself on this workload.\n\n");
        return;
    }
    m.push_str(
        "| index | serves | predicted what-if cost ratio | measured p50 after/before | measured p95 after/before | verdict |\n|---|---|---:|---|---|---|\n",
    );
    for i in &a.indexes {
        // One metric per column: p50 and p95 each in their own.
        let (p50, p95, verdict) = match &i.verification {
            None => ("not verified".to_string(), String::new(), String::new()),
            Some(v) => {
                let per = |pick: fn(&super::model::MeasuredView) -> &crate::results::RatioCi| {
                    v.measured
                        .iter()
                        .map(|x| format!("{} {}", cell(&x.query), cell(&ratio_text(pick(x)))))
                        .collect::<Vec<_>>()
                        .join("<br>")
                };
                (per(|x| &x.p50), per(|x| &x.p95), cell(&v.reason))
            }
        };
        let _ = writeln!(
            m,
            "| `{}` | {} | {:.2}× | {} | {} | {} |",
            cell(&i.name),
            cell(&i.queries.join(", ")),
            i.predicted_ratio,
            p50,
            p95,
            verdict
        );
    }
    m.push('\n');
    if !a.verified {
        m.push_str("_Measured effect: not captured (advise ran without --verify)._\n\n");
    }
    for i in &a.indexes {
        let Some(v) = &i.verification else { continue };
        let _ = writeln!(m, "### {}\n\n{}", cell(&i.name), code("sql", &i.create_sql));
        if let Some(p) = plots.iter().find(|p| p.key == format!("verify:{}", i.name)) {
            image(m, p);
        }
        m.push_str("| query | p50 after/before | p95 after/before |\n|---|---|---|\n");
        for x in &v.measured {
            let _ = writeln!(
                m,
                "| {} | {} | {} |",
                cell(&x.query),
                cell(&ratio_text(&x.p50)),
                cell(&ratio_text(&x.p95))
            );
        }
        m.push('\n');
    }
}

fn drops(m: &mut String, advice: Option<&AdviceView>, stats_missing: Option<&str>) {
    m.push_str("## Indexes that can go\n\n");
    if let Some(reason) = stats_missing {
        let _ = writeln!(m, "_{}._\n", cell(&super::stats_missing_text(reason)));
    }
    match advice {
        None => m.push_str("_not captured: no advice.json in this run folder._\n"),
        Some(a) if a.drops.is_empty() => m.push_str("No index is worth dropping.\n"),
        Some(a) => {
            m.push_str("| index | table | why | SQL |\n|---|---|---|---|\n");
            for d in &a.drops {
                let _ = writeln!(
                    m,
                    "| {} | {} | {} | `{}` |",
                    cell(&d.index),
                    cell(&d.table),
                    cell(&d.reason),
                    cell(&d.sql)
                );
            }
        }
    }
    // A table must end with a blank line, or the next heading joins it.
    m.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_stay_on_one_line_and_keep_the_table_intact() {
        assert_eq!(cell("a|b\nc <d> &amp;"), "a\\|b c \\<d> \\&amp;");
    }

    #[test]
    fn code_fences_outgrow_backticks_inside() {
        let block = code("sql", "SELECT '```';");
        assert!(block.starts_with("````sql\n"), "{block}");
        assert!(block.ends_with("\n````\n"));
    }
}
