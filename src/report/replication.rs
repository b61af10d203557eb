//! The report's "Read replicas" section, present only when the run routed
//! reads to replicas: which queries they served, stale reads of a client's
//! own writes, and each replica's replay lag over the run (a table of the
//! worst moments and, in HTML, a plot of bytes behind over time).

use std::fmt::Write as _;

use plotters::prelude::*;

use super::html::escape;
use crate::run::replicas::{LagSample, ReplicationInfo};

/// Per replica: the most bytes behind and the longest replay lag seen.
fn worst(info: &ReplicationInfo) -> Vec<(String, i64, Option<f64>)> {
    let mut names: Vec<&str> = info.lag.iter().map(|s| s.replica.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    names
        .into_iter()
        .map(|name| {
            let of = || info.lag.iter().filter(move |s| s.replica == name);
            let bytes = of().map(|s| s.bytes).max().unwrap_or(0);
            let ms = of().filter_map(|s| s.ms).reduce(f64::max);
            (name.to_string(), bytes, ms)
        })
        .collect()
}

fn stale_line(info: &ReplicationInfo) -> String {
    format!(
        "{} transactions served by {} replica{}; {} stale read{} of a client's own writes \
         (mean wait until visible {:.1} ms, longest {:.1} ms)",
        info.served_by_replicas,
        info.replicas.len(),
        if info.replicas.len() == 1 { "" } else { "s" },
        info.stale_reads,
        if info.stale_reads == 1 { "" } else { "s" },
        info.stale_mean_ms,
        info.stale_max_ms
    )
}

/// The section in HTML (nothing without replicas).
pub fn html(h: &mut String, info: Option<&ReplicationInfo>) {
    let Some(info) = info else { return };
    h.push_str("<section id=\"replicas\">\n<h2>Read replicas</h2>\n");
    let _ = writeln!(h, "<p>{}.</p>", escape(&stale_line(info)));
    let _ = writeln!(
        h,
        "<p>Queries the replicas served: {}. Every other query ran on the primary.</p>",
        escape(&info.replica_queries.join(", "))
    );
    h.push_str(
        "<table><tr><th>replica</th><th>most bytes behind</th><th>longest replay lag</th></tr>\n",
    );
    for (name, bytes, ms) in worst(info) {
        let _ = writeln!(
            h,
            "<tr><td>{}</td><td>{bytes}</td><td>{}</td></tr>",
            escape(&name),
            ms.map_or("—".into(), |m| format!("{m:.1} ms"))
        );
    }
    h.push_str("</table>\n");
    if let Some(svg) = lag_plot(&info.lag) {
        let _ = writeln!(h, "<figure>{svg}</figure>");
    }
    h.push_str("</section>\n");
}

/// The section in Markdown (nothing without replicas).
pub fn markdown(m: &mut String, info: Option<&ReplicationInfo>) {
    let Some(info) = info else { return };
    let _ = writeln!(m, "## Read replicas\n\n{}.\n", stale_line(info));
    let _ = writeln!(
        m,
        "Queries the replicas served: {}. Every other query ran on the primary.\n",
        info.replica_queries.join(", ")
    );
    m.push_str("| replica | most bytes behind | longest replay lag |\n|---|---:|---:|\n");
    for (name, bytes, ms) in worst(info) {
        let _ = writeln!(
            m,
            "| {name} | {bytes} | {} |",
            ms.map_or("—".into(), |m| format!("{m:.1} ms"))
        );
    }
    m.push('\n');
}

/// Bytes behind over time, one line per replica; `None` without samples
/// or when drawing fails (the table above carries the figures).
fn lag_plot(samples: &[LagSample]) -> Option<String> {
    if samples.is_empty() {
        return None;
    }
    let mut names: Vec<&str> = samples.iter().map(|s| s.replica.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    let t_hi = samples.iter().map(|s| s.t).fold(1.0f64, f64::max);
    let y_hi = samples.iter().map(|s| s.bytes).max().unwrap_or(0).max(1) as f64 * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 260)).into_drawing_area();
        root.fill(&WHITE).ok()?;
        let mut chart = ChartBuilder::on(&root)
            .caption("Replica replay lag over time", ("sans-serif", 17))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(70)
            .build_cartesian_2d(0.0..t_hi, 0.0..y_hi)
            .ok()?;
        chart
            .configure_mesh()
            .x_desc("seconds into the measured window")
            .y_desc("WAL bytes not replayed")
            .label_style(("sans-serif", 14))
            .light_line_style(WHITE)
            .draw()
            .ok()?;
        for (i, name) in names.iter().enumerate() {
            let colour = Palette99::pick(i).to_rgba();
            let points = samples
                .iter()
                .filter(|s| s.replica == *name)
                .map(|s| (s.t, s.bytes as f64));
            chart
                .draw_series(LineSeries::new(points, colour.stroke_width(2)))
                .ok()?
                .label(name.to_string());
        }
        root.present().ok()?;
    }
    Some(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(t: f64, replica: &str, bytes: i64, ms: Option<f64>) -> LagSample {
        LagSample {
            t,
            replica: replica.into(),
            bytes,
            ms,
        }
    }

    #[test]
    fn the_section_names_stale_reads_and_each_replicas_worst_lag() {
        let info = ReplicationInfo {
            replicas: vec!["r1".into()],
            replica_queries: vec!["my_notes".into()],
            served_by_replicas: 40,
            stale_reads: 3,
            stale_mean_ms: 12.5,
            stale_max_ms: 30.0,
            lag: vec![
                sample(0.0, "crmbench-replica-1", 0, None),
                sample(0.5, "crmbench-replica-1", 9000, Some(40.0)),
                sample(1.0, "crmbench-replica-1", 10, Some(2.0)),
            ],
        };
        let mut m = String::new();
        markdown(&mut m, Some(&info));
        assert!(m.contains("3 stale reads"), "{m}");
        assert!(m.contains("| crmbench-replica-1 | 9000 | 40.0 ms |"), "{m}");
        let mut h = String::new();
        html(&mut h, Some(&info));
        assert!(h.contains("<svg") && h.contains("my_notes"), "{h}");
        let mut none = String::new();
        html(&mut none, None);
        markdown(&mut none, None);
        assert!(none.is_empty());
    }
}
