//! The "Migration rehearsal" section, from `rehearsal.json`: the timeline
//! (statement spans shaded over throughput and p99), the lock table, the
//! blocked transactions, latency before / during / after, the paired
//! after-vs-before comparison, the rollback under load and its check, the
//! data checks (WAL, row counts, validations), the findings and the
//! deployment checklist. Files in, text out.

use std::fmt::Write as _;

use super::html::escape;
use crate::compare::verdict::Verdict;
use crate::rehearse::model::{Rehearsal, StatementRecord, ValidationResult, WorkloadRecord};
use crate::rehearse::render::checklist;

/// The section as Markdown (the timeline as inline SVG).
pub fn markdown(r: &Rehearsal) -> String {
    let mut m = format!(
        "## Migration rehearsal\n\n`{}`, applied as `{}`.\n\n",
        r.migration.replace('`', "'"),
        r.apply_as.name()
    );
    if let Some(svg) = r
        .workload
        .as_ref()
        .and_then(|w| timeline_svg(w, &r.statements))
    {
        m.push_str(&svg);
        m.push_str("\n\n");
    }
    m.push_str(&tables(r, false));
    m
}

/// The section as HTML.
pub fn html(r: &Rehearsal) -> String {
    let mut h = format!(
        "<section id=\"rehearsal\"><h2>Migration rehearsal</h2>\n<p><code>{}</code>, applied as <code>{}</code>.</p>\n",
        escape(&r.migration),
        r.apply_as.name()
    );
    if let Some(svg) = r
        .workload
        .as_ref()
        .and_then(|w| timeline_svg(w, &r.statements))
    {
        h.push_str(&svg);
    }
    h.push_str(&tables(r, true));
    h.push_str("</section>\n");
    h
}

/// Rows of a table, as Markdown or HTML.
pub(super) fn table(html: bool, head: &[&str], rows: &[Vec<String>]) -> String {
    let mut out = String::new();
    if html {
        out.push_str("<table><tr>");
        for c in head {
            let _ = write!(out, "<th>{}</th>", escape(c));
        }
        out.push_str("</tr>");
        for r in rows {
            out.push_str("<tr>");
            for c in r {
                let _ = write!(out, "<td>{}</td>", escape(c));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>\n");
    } else {
        let cell = |c: &str| c.replace('|', "\\|").replace('\n', " ");
        let _ = writeln!(out, "| {} |", head.join(" | "));
        let _ = writeln!(out, "|{}", "---|".repeat(head.len()));
        for r in rows {
            let cells: Vec<String> = r.iter().map(|c| cell(c)).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
    }
    out
}

fn heading(html: bool, text: &str) -> String {
    if html {
        format!("<h3>{}</h3>\n", escape(text))
    } else {
        format!("### {text}\n\n")
    }
}

fn tables(r: &Rehearsal, html: bool) -> String {
    let mut out = heading(html, "Statements and locks");
    out.push_str(&statements_table(&r.statements, html));
    out.push_str(&heading(html, "Blocked transactions"));
    out.push_str(&blocked_table(&r.statements, html));
    if let Some(w) = &r.workload {
        out.push_str(&heading(
            html,
            "Latency before, during and after (worst interval p99, ms)",
        ));
        out.push_str(&phases_table(w, html));
    }
    out.push_str(&after_vs_before(r, html));
    out.push_str(&rollback(r, html));
    out.push_str(&data_checks(r, html));
    out.push_str(&heading(html, "Findings"));
    out.push_str(&findings_table(r, html));
    out.push_str(&heading(html, "Deployment checklist"));
    for line in checklist(r) {
        out.push_str(&if html {
            format!("<p>☐ {}</p>\n", escape(&line))
        } else {
            format!("- [ ] {line}\n")
        });
    }
    out.push('\n');
    out
}

fn preformatted(html: bool, text: &str) -> String {
    if html {
        format!("<pre>{}</pre>\n", escape(text))
    } else {
        format!("```\n{text}\n```\n\n")
    }
}

fn statements_table(statements: &[StatementRecord], html: bool) -> String {
    let rows: Vec<Vec<String>> = statements
        .iter()
        .map(|s| {
            let locks: Vec<String> = s
                .locks
                .iter()
                .chain(s.takes.iter())
                .map(|l| format!("{} on {}", l.mode.sql_name(), l.table))
                .collect();
            let behind: Vec<String> = s
                .waited_behind
                .iter()
                .map(|w| format!("pid {} ({})", w.pid, w.application))
                .collect();
            vec![
                format!("{}:{}", s.file, s.line),
                s.text.clone(),
                format!("{:.0}", s.duration_ms),
                locks.join(", "),
                format!("{:.0}", s.lock_wait_ms),
                behind.join(", "),
                s.blocked.to_string(),
                format!("{:.0}", s.longest_block_ms),
                s.error
                    .as_ref()
                    .map(|e| e.sqlstate.clone())
                    .unwrap_or_default(),
            ]
        })
        .collect();
    table(
        html,
        &[
            "where",
            "statement",
            "ms",
            "locks",
            "lock wait ms",
            "waited behind",
            "blocked",
            "longest block ms",
            "error",
        ],
        &rows,
    )
}

fn blocked_table(statements: &[StatementRecord], html: bool) -> String {
    let blocked: Vec<Vec<String>> = statements
        .iter()
        .flat_map(|s| {
            s.blocked_queries
                .iter()
                .map(move |q| vec![format!("{}:{}", s.file, s.line), q.clone()])
        })
        .collect();
    table(html, &["blocked by", "workload statement"], &blocked)
}

fn phases_table(w: &WorkloadRecord, html: bool) -> String {
    let ms = |v: Option<f64>| v.map_or("-".into(), |v| format!("{v:.1}"));
    let rows: Vec<Vec<String>> = w
        .phases
        .iter()
        .map(|p| {
            vec![
                p.query.clone(),
                ms(p.before_p99_ms),
                ms(p.during_p99_ms),
                ms(p.after_p99_ms),
            ]
        })
        .collect();
    table(html, &["query", "before", "during", "after"], &rows)
}

/// The paired run of the before clone against the migrated one.
fn after_vs_before(r: &Rehearsal, html: bool) -> String {
    let mut out = heading(html, "After the migration vs before (paired)");
    let Some(a) = &r.after_vs_before else {
        out.push_str(&preformatted(
            html,
            "not run: it needs a workload (--workload) and a migration that succeeded",
        ));
        return out;
    };
    let mut text = format!(
        "{} per side for {:.0} s, judged like `compare` on {} (threshold {:.0}%, {:.0}% intervals): {}",
        a.clients,
        a.seconds,
        a.metric,
        a.threshold * 100.0,
        a.level * 100.0,
        verdict_name(a.verdict)
    );
    for reason in &a.reasons {
        text.push_str(&format!("\n{reason}"));
    }
    out.push_str(&preformatted(html, &text));
    let rows: Vec<Vec<String>> = a
        .queries
        .iter()
        .map(|q| {
            vec![
                q.name.clone(),
                format!("{:.2}", q.base_us as f64 / 1e3),
                format!("{:.2}", q.current_us as f64 / 1e3),
                q.change.map_or("-".into(), |c| {
                    format!("{:.3} [{:.3}, {:.3}]", c.ratio, c.lo, c.hi)
                }),
                q.verdict.label().to_string(),
            ]
        })
        .collect();
    out.push_str(&table(
        html,
        &["query", "before ms", "after ms", "after/before", "verdict"],
        &rows,
    ));
    out
}

fn verdict_name(v: Verdict) -> &'static str {
    match v {
        Verdict::Pass => "pass (no regression)",
        Verdict::Fail => "FAIL (a regression)",
        Verdict::Undecidable => "undecidable",
        Verdict::Inconclusive => "inconclusive",
    }
}

/// The rollback under load: its statements, its timeline and the check.
fn rollback(r: &Rehearsal, html: bool) -> String {
    let mut out = heading(html, "Rollback check");
    let Some(rb) = &r.rollback else {
        out.push_str(&preformatted(html, "not run: no rollback given"));
        return out;
    };
    let verdict = match &rb.failure {
        Some(e) => format!(
            "FAILED: the rollback stopped: {} (SQLSTATE {})\n{}",
            e.message,
            e.sqlstate,
            rb.difference.render()
        ),
        None if rb.identical => {
            "passed: the schema after the rollback is identical to before".into()
        }
        None => format!("FAILED: the schema differs:\n{}", rb.difference.render()),
    };
    out.push_str(&preformatted(html, &verdict));
    if let Some(w) = &rb.workload {
        out.push_str(if html { "<p>" } else { "" });
        out.push_str(&format!(
            "Applied under the same load: max latency {:.0} ms.",
            w.max_latency_ms
        ));
        out.push_str(if html { "</p>\n" } else { "\n\n" });
        if let Some(svg) = timeline_svg(w, &rb.statements) {
            out.push_str(&svg);
            out.push_str(if html { "\n" } else { "\n\n" });
        }
    }
    out.push_str(&statements_table(&rb.statements, html));
    out
}

/// WAL per statement, row counts and validations on the quiesced clone.
fn data_checks(r: &Rehearsal, html: bool) -> String {
    let Some(d) = &r.data else {
        return String::new();
    };
    let mut out = heading(html, "Data checks (quiesced clone)");
    let comparable = if d.wal_comparable {
        "comparable with production"
    } else {
        "NOT comparable: under minimal, index builds and rewrites skip WAL"
    };
    out.push_str(&preformatted(
        html,
        &format!("wal_level = {}: WAL figures {comparable}", d.wal_level),
    ));
    let rows: Vec<Vec<String>> = d
        .statements
        .iter()
        .map(|s| {
            vec![
                format!("{}:{}", s.file, s.line),
                format!("{:.0}", s.duration_ms),
                format!("{:.1}", s.wal_bytes as f64 / 1024.0),
            ]
        })
        .collect();
    out.push_str(&table(html, &["where", "ms (no load)", "WAL kB"], &rows));
    let count = |c: Option<i64>| c.map_or("-".into(), |c| c.to_string());
    let rows: Vec<Vec<String>> = d
        .row_counts
        .iter()
        .map(|c| {
            vec![
                c.table.clone(),
                count(c.before),
                count(c.after),
                count(c.after_rollback),
            ]
        })
        .collect();
    out.push_str(&table(
        html,
        &["table", "rows before", "after", "after rollback"],
        &rows,
    ));
    let answer =
        |v: &ValidationResult| format!("{} ({})", if v.passed { "ok" } else { "FAILED" }, v.detail);
    let rows: Vec<Vec<String>> = d
        .validations
        .iter()
        .map(|v| {
            vec![
                format!("{}:{}", v.file, v.line),
                v.query.clone(),
                answer(&v.after_migration),
                v.after_rollback.as_ref().map_or("-".into(), answer),
            ]
        })
        .collect();
    if !rows.is_empty() {
        out.push_str(&table(
            html,
            &["where", "validation", "after migration", "after rollback"],
            &rows,
        ));
    }
    out
}

fn findings_table(r: &Rehearsal, html: bool) -> String {
    let rows: Vec<Vec<String>> = r
        .findings
        .iter()
        .map(|f| {
            vec![
                format!("{}:{}", f.file, f.line),
                f.rule.clone(),
                f.lock.map(|l| l.sql_name().to_string()).unwrap_or_default(),
                f.message.clone(),
                f.suggestion.clone().unwrap_or_default(),
            ]
        })
        .collect();
    table(
        html,
        &["where", "rule", "lock", "what happens", "safer SQL"],
        &rows,
    )
}

/// Throughput (blue) and p99 (red) over the window, each statement's span
/// shaded; None without a timeline.
fn timeline_svg(w: &WorkloadRecord, statements: &[StatementRecord]) -> Option<String> {
    let last = w.timeline.last()?.t.max(1e-3);
    let (width, height) = (720.0, 200.0);
    let x = |t: f64| 40.0 + (t / last) * (width - 80.0);
    let max_tps = w.timeline.iter().map(|p| p.tps).fold(1e-9, f64::max);
    let max_p99 = w.timeline.iter().map(|p| p.p99_ms).fold(1e-9, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"throughput and p99 during the migration\">"
    );
    for s in statements {
        let (a, b) = (x(s.start_s.max(0.0)), x(s.end_s.min(last)));
        let _ = write!(
            svg,
            "<rect x=\"{a:.1}\" y=\"10\" width=\"{:.1}\" height=\"{:.0}\" fill=\"#f6c343\" opacity=\"0.35\"><title>{}</title></rect>",
            (b - a).max(1.0),
            height - 40.0,
            escape(&s.text)
        );
    }
    for (values, max, color) in [
        (
            w.timeline.iter().map(|p| (p.t, p.tps)).collect::<Vec<_>>(),
            max_tps,
            "#1f6feb",
        ),
        (
            w.timeline
                .iter()
                .map(|p| (p.t, p.p99_ms))
                .collect::<Vec<_>>(),
            max_p99,
            "#cf222e",
        ),
    ] {
        let points: Vec<String> = values
            .iter()
            .map(|(t, v)| {
                format!(
                    "{:.1},{:.1}",
                    x(*t),
                    height - 30.0 - (v / max) * (height - 40.0)
                )
            })
            .collect();
        let _ = write!(
            svg,
            "<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"1.5\" points=\"{}\"/>",
            points.join(" ")
        );
    }
    let _ = write!(
        svg,
        "<text x=\"40\" y=\"{:.0}\" font-size=\"11\">0 s</text><text x=\"{:.0}\" y=\"{:.0}\" font-size=\"11\">{last:.1} s</text>\
         <text x=\"40\" y=\"{:.0}\" font-size=\"11\" fill=\"#1f6feb\">throughput (max {max_tps:.0}/s)</text>\
         <text x=\"300\" y=\"{:.0}\" font-size=\"11\" fill=\"#cf222e\">p99 (max {max_p99:.0} ms)</text></svg>",
        height - 15.0,
        width - 80.0,
        height - 15.0,
        height - 2.0,
        height - 2.0
    );
    Some(svg)
}
