//! The "Retention" section, from `retention.json` (`rehearse --retention`):
//! the two ways side by side, the timeline, the conversion's own rehearsal
//! (its phases, statements, checks and trade-offs) and the job's SQL.
//! Files in, text out.

use std::fmt::Write as _;

use super::html::escape;
use super::rehearsal::table;
use crate::rehearse::retention::model::RetentionRecord;
use crate::rehearse::retention::plot::{conversion_phases, timeline_svg};
use crate::rehearse::retention::render::{HEAD, cells, checks, headline, wal_level, ways};

/// The section as Markdown (the timeline as inline SVG).
pub fn markdown(r: &RetentionRecord) -> String {
    let mut m = format!("## Retention\n\n{}\n\n", intro(r));
    m.push_str(&body(r, false));
    let _ = write!(
        m,
        "### The retention job ({:?})\n\n```sql\n{}\n```\n\n",
        r.job,
        r.job_sql.trim_end()
    );
    m
}

/// The section as HTML.
pub fn html(r: &RetentionRecord) -> String {
    let mut h = format!(
        "<section id=\"retention\"><h2>Retention</h2>\n<p>{}</p>\n",
        escape(&intro(r))
    );
    h.push_str(&body(r, true));
    let _ = write!(
        h,
        "<h3>The retention job ({:?})</h3>\n<pre><code>{}</code></pre>\n</section>\n",
        r.job,
        escape(r.job_sql.trim_end())
    );
    h
}

fn intro(r: &RetentionRecord) -> String {
    format!(
        "{}. The DELETE way and the partition way (the conversion, then the expired partitions \
         dropped) ran on two clones of the same data under the same replayed load; WAL was \
         measured on a quiesced clone, {}. The run's own latency sections above are the \
         conversion's load.",
        headline(r),
        wal_level(r)
    )
}

/// Everything but the job: the ways, the timeline, the conversion.
fn body(r: &RetentionRecord, html: bool) -> String {
    let mut head = vec!["way"];
    head.extend(HEAD);
    let rows: Vec<Vec<String>> = ways(r)
        .into_iter()
        .map(|(name, w)| {
            let mut row = vec![match &w.failure {
                Some(f) => format!("{name} (FAILED: {f})"),
                None => name.to_string(),
            }];
            row.extend(cells(w));
            row
        })
        .collect();
    let mut out = table(html, &head, &rows);
    // A plot error leaves the figures readable: the table says it all.
    if let Ok(Some(svg)) = timeline_svg(r) {
        let svg = svg.find("<svg").map_or(svg.as_str(), |i| &svg[i..]);
        out.push_str(svg);
        out.push_str("\n\n");
    }
    out.push_str(&heading(html, "The conversion, rehearsed under load"));
    out.push_str(&conversion(r, html));
    out
}

fn heading(html: bool, text: &str) -> String {
    if html {
        format!("<h3>{}</h3>\n", escape(text))
    } else {
        format!("### {text}\n\n")
    }
}

fn paragraph(html: bool, text: &str) -> String {
    if html {
        format!("<p>{}</p>\n", escape(text))
    } else {
        format!("{text}\n\n")
    }
}

/// Its phases and minutes, its statements, the checks and the trade-offs.
fn conversion(r: &RetentionRecord, html: bool) -> String {
    let c = &r.conversion;
    let phases: Vec<Vec<String>> = conversion_phases(&c.statements, 0.0)
        .into_iter()
        .map(|b| vec![b.label, format!("{:.1} s", b.end - b.start)])
        .collect();
    let mut out = paragraph(
        html,
        &format!(
            "The conversion took {:.1} minutes ({:.0} ms) under load.",
            c.duration_ms / 60_000.0,
            c.duration_ms
        ),
    );
    out.push_str(&table(html, &["phase", "time"], &phases));
    // The partitions' CREATEs are many and instant: the table keeps the
    // statements a reader weighs (slow, waiting or blocking others).
    let weighty = |s: &&crate::rehearse::model::StatementRecord| {
        s.duration_ms >= 50.0 || s.blocked > 0 || s.lock_wait_ms > 0.0 || s.error.is_some()
    };
    let shown: Vec<_> = c.statements.iter().filter(weighty).collect();
    out.push_str(&paragraph(
        html,
        &format!(
            "{} statements; {} shown (50 ms or more, waiting or blocking others):",
            c.statements.len(),
            shown.len()
        ),
    ));
    let statements: Vec<Vec<String>> = shown
        .into_iter()
        .map(|s| {
            vec![
                format!("{}:{}", s.file, s.line),
                s.text.clone(),
                format!("{:.0} ms", s.duration_ms),
                s.locks
                    .iter()
                    .map(|l| format!("{} {:?}", l.table, l.mode))
                    .collect::<Vec<_>>()
                    .join(", "),
                format!("{} (longest {:.0} ms)", s.blocked, s.longest_block_ms),
            ]
        })
        .collect();
    out.push_str(&table(
        html,
        &["where", "statement", "time", "locks held", "blocked"],
        &statements,
    ));
    let checks = checks(r);
    let rows: Vec<Vec<String>> = checks
        .into_iter()
        .chain(r.tradeoffs.iter().map(|t| format!("trade-off: {t}")))
        .map(|t| vec![t])
        .collect();
    out.push_str(&table(html, &["checks and trade-offs"], &rows));
    out
}
