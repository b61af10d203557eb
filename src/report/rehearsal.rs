//! The "Migration rehearsal" section, from `rehearsal.json`: the timeline
//! (statement spans shaded over throughput and p99), the lock table, the
//! blocked transactions, latency before / during / after, the rollback
//! check, the findings and the deployment checklist. Files in, text out.

use std::fmt::Write as _;

use super::html::escape;
use crate::rehearse::model::Rehearsal;
use crate::rehearse::render::checklist;

/// The section as Markdown (the timeline as inline SVG).
pub fn markdown(r: &Rehearsal) -> String {
    let mut m = format!(
        "## Migration rehearsal\n\n`{}`, applied as `{}`.\n\n",
        r.migration.replace('`', "'"),
        r.apply_as.name()
    );
    if let Some(svg) = timeline_svg(r) {
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
    if let Some(svg) = timeline_svg(r) {
        h.push_str(&svg);
    }
    h.push_str(&tables(r, true));
    h.push_str("</section>\n");
    h
}

/// Rows of a table, as Markdown or HTML.
fn table(html: bool, head: &[&str], rows: &[Vec<String>]) -> String {
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
    let rows: Vec<Vec<String>> = r
        .statements
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
    out.push_str(&table(
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
    ));
    let blocked: Vec<Vec<String>> = r
        .statements
        .iter()
        .flat_map(|s| {
            s.blocked_queries
                .iter()
                .map(move |q| vec![format!("{}:{}", s.file, s.line), q.clone()])
        })
        .collect();
    out.push_str(&heading(html, "Blocked transactions"));
    out.push_str(&table(
        html,
        &["blocked by", "workload statement"],
        &blocked,
    ));
    if let Some(w) = &r.workload {
        out.push_str(&heading(
            html,
            "Latency before, during and after (worst interval p99, ms)",
        ));
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
        out.push_str(&table(html, &["query", "before", "during", "after"], &rows));
    }
    out.push_str(&heading(html, "Rollback check"));
    let rollback = match &r.rollback {
        None => "not run: no rollback given".to_string(),
        Some(rb) if rb.identical && rb.failure.is_none() => {
            "passed: the schema after the rollback is identical to before".into()
        }
        Some(rb) => format!("FAILED: the schema differs:\n{}", rb.difference.render()),
    };
    out.push_str(&if html {
        format!("<pre>{}</pre>\n", escape(&rollback))
    } else {
        format!("```\n{rollback}\n```\n\n")
    });
    out.push_str(&heading(html, "Findings"));
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
    out.push_str(&table(
        html,
        &["where", "rule", "lock", "what happens", "safer SQL"],
        &rows,
    ));
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

/// Throughput (blue) and p99 (red) over the window, each statement's span
/// shaded; None without a workload timeline.
fn timeline_svg(r: &Rehearsal) -> Option<String> {
    let w = r.workload.as_ref()?;
    let last = w.timeline.last()?.t.max(1e-3);
    let (width, height) = (720.0, 200.0);
    let x = |t: f64| 40.0 + (t / last) * (width - 80.0);
    let max_tps = w.timeline.iter().map(|p| p.tps).fold(1e-9, f64::max);
    let max_p99 = w.timeline.iter().map(|p| p.p99_ms).fold(1e-9, f64::max);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"throughput and p99 during the migration\">"
    );
    for s in &r.statements {
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
