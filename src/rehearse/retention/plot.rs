//! The retention timeline, drawn with plotters into an SVG string: the
//! workload's p50 and p99 over time while the batched DELETE ran (one
//! clone) and while the conversion then the partition drop ran (the other
//! clone, the drop's window placed after the conversion's), the
//! conversion's phases shaded, and failed transactions per interval below.
//! `rehearse --retention` writes it as `timeline.svg`; the report inlines it.

use plotters::prelude::*;

use super::model::{RetentionRecord, Way};
use crate::error::{Error, Result};
use crate::rehearse::model::StatementRecord;

const FONT: &str = "sans-serif";
const DELETE: RGBColor = RGBColor(31, 119, 180);
const PARTITIONS: RGBColor = RGBColor(214, 39, 40);

/// A shaded span on the time axis: label, start, end, fill.
#[derive(Debug, Clone, PartialEq)]
pub struct Band {
    /// What ran.
    pub label: String,
    /// Start, seconds on the plot's axis.
    pub start: f64,
    /// End, same axis.
    pub end: f64,
}

/// One way's series on the plot's axis: (t, p50 ms, p99 ms, errors).
type Points = Vec<(f64, f64, f64, u64)>;

fn points(way: &Way, offset: f64) -> Points {
    way.workload.as_ref().map_or_else(Vec::new, |w| {
        w.timeline
            .iter()
            .map(|p| (p.t + offset, p.p50_ms, p.p99_ms, p.errors))
            .collect()
    })
}

/// The phases of the conversion from its statements, in order: the set-up
/// (twin, partitions, mirror trigger), the row copy (the `DO` batches), the
/// swap (`BEGIN` … `COMMIT`), then what follows; consecutive statements of
/// one phase make one band.
pub fn conversion_phases(statements: &[StatementRecord], offset: f64) -> Vec<Band> {
    let mut bands: Vec<Band> = Vec::new();
    let (mut in_swap, mut swapped, mut copied) = (false, false, false);
    for s in statements {
        let text = s.text.trim_start().to_ascii_uppercase();
        let phase = if in_swap || text.starts_with("BEGIN") {
            in_swap = !text.starts_with("COMMIT");
            swapped = !in_swap;
            "swap"
        } else if swapped {
            "after swap"
        } else if text.starts_with("DO") {
            copied = true;
            "copy rows"
        } else if copied {
            "before swap"
        } else {
            "set-up"
        };
        let (start, end) = (s.start_s + offset, s.end_s + offset);
        match bands.last_mut() {
            Some(b) if b.label == phase => b.end = end,
            _ => bands.push(Band {
                label: phase.into(),
                start,
                end,
            }),
        }
    }
    bands
}

fn span(label: &str, statements: &[StatementRecord], offset: f64) -> Option<Band> {
    let start = statements.iter().map(|s| s.start_s).reduce(f64::min)?;
    let end = statements.iter().map(|s| s.end_s).reduce(f64::max)?;
    Some(Band {
        label: label.into(),
        start: start + offset,
        end: end + offset,
    })
}

/// What the plot draws: both ways' points and the bands.
struct Layout {
    delete: Points,
    partitions: Points,
    bands: Vec<(Band, RGBColor)>,
}

fn layout(r: &RetentionRecord) -> Layout {
    let conversion_end = r
        .conversion
        .workload
        .as_ref()
        .and_then(|w| w.timeline.last())
        .map_or(0.0, |p| p.t);
    let mut partitions = points(&r.conversion, 0.0);
    partitions.extend(points(&r.drop, conversion_end));
    let shades = [
        RGBColor(246, 195, 67),
        RGBColor(150, 200, 120),
        RGBColor(190, 120, 200),
        RGBColor(160, 160, 160),
    ];
    let mut bands: Vec<(Band, RGBColor)> = conversion_phases(&r.conversion.statements, 0.0)
        .into_iter()
        .map(|b| {
            let c = match b.label.as_str() {
                "set-up" => shades[0],
                "copy rows" => shades[1],
                "swap" => shades[2],
                "before swap" => shades[0],
                _ => shades[3],
            };
            (b, c)
        })
        .collect();
    if let Some(b) = span("drop partitions", &r.drop.statements, conversion_end) {
        bands.push((b, PARTITIONS));
    }
    if let Some(b) = span("DELETE + VACUUM", &r.delete.statements, 0.0) {
        bands.push((b, DELETE));
    }
    Layout {
        delete: points(&r.delete, 0.0),
        partitions,
        bands,
    }
}

/// The timeline as an SVG document; None when no load ran.
pub fn timeline_svg(r: &RetentionRecord) -> Result<Option<String>> {
    let l = layout(r);
    if l.delete.is_empty() && l.partitions.is_empty() {
        return Ok(None);
    }
    let title = "Latency while each way ran: DELETE (blue) / conversion then drop (red)";
    let err = |e: DrawingAreaErrorKind<std::io::Error>| Error::Plot {
        plot: title.to_string(),
        detail: e.to_string(),
    };
    let all = l.delete.iter().chain(&l.partitions);
    let x_hi = all
        .clone()
        .map(|p| p.0)
        .chain(l.bands.iter().map(|b| b.0.end))
        .fold(1.0f64, f64::max);
    let x_lo = all
        .clone()
        .map(|p| p.0)
        .chain(l.bands.iter().map(|b| b.0.start))
        .fold(0.0f64, f64::min);
    let y_hi = all.clone().map(|p| p.2).fold(1.0f64, f64::max) * 1.5;
    let y_lo = all
        .clone()
        .map(|p| p.1)
        .filter(|v| *v > 0.0)
        .fold(y_hi, f64::min)
        .max(0.01)
        / 1.5;
    let e_hi = all.map(|p| p.3).max().unwrap_or(0).max(1) as f64;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 420)).into_drawing_area();
        root.fill(&WHITE).map_err(err)?;
        let (top, bottom) = root.split_vertically(310);
        latency_panel(&top, &l, (x_lo, x_hi), (y_lo, y_hi), title).map_err(err)?;
        errors_panel(&bottom, &l, (x_lo, x_hi), e_hi).map_err(err)?;
        root.present().map_err(err)?;
    }
    Ok(Some(svg))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, plotters::coord::Shift>;
type DrawResult = std::result::Result<(), DrawingAreaErrorKind<std::io::Error>>;

fn latency_panel(
    area: &Area<'_>,
    l: &Layout,
    x: (f64, f64),
    y: (f64, f64),
    title: &str,
) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .caption(title, (FONT, 16))
        .margin(8)
        .x_label_area_size(20)
        .y_label_area_size(56)
        .build_cartesian_2d(x.0..x.1, (y.0..y.1).log_scale())?;
    chart
        .configure_mesh()
        .y_desc("latency, ms (log)")
        .label_style((FONT, 13))
        .light_line_style(WHITE)
        .draw()?;
    for (b, c) in &l.bands {
        chart.draw_series(std::iter::once(Rectangle::new(
            [(b.start, y.0), (b.end.max(b.start + 0.02), y.1)],
            c.mix(0.18).filled(),
        )))?;
        // The DELETE's label at the foot: its band overlaps the conversion's.
        let at = if *c == DELETE { y.0 * 1.3 } else { y.1 / 1.2 };
        chart.draw_series(std::iter::once(Text::new(
            b.label.clone(),
            (b.start, at),
            (FONT, 12),
        )))?;
    }
    for (pts, colour, name) in [
        (&l.delete, DELETE, "DELETE way"),
        (&l.partitions, PARTITIONS, "partition way"),
    ] {
        let p99: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.2.max(y.0))).collect();
        let p50: Vec<(f64, f64)> = pts.iter().map(|p| (p.0, p.1.max(y.0))).collect();
        chart
            .draw_series(LineSeries::new(p99, colour.stroke_width(2)))?
            .label(format!("{name} p99"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(2))
            });
        chart
            .draw_series(DashedLineSeries::new(p50, 5, 4, colour.stroke_width(1)))?
            .label(format!("{name} p50 (dashed)"))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], colour.stroke_width(1))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK.mix(0.3))
        .label_font((FONT, 12))
        .draw()
}

fn errors_panel(area: &Area<'_>, l: &Layout, x: (f64, f64), e_hi: f64) -> DrawResult {
    let mut chart = ChartBuilder::on(area)
        .margin(8)
        .x_label_area_size(30)
        .y_label_area_size(56)
        .build_cartesian_2d(x.0..x.1, 0.0..e_hi * 1.1)?;
    chart
        .configure_mesh()
        .x_desc("seconds into each clone's window (the drop's after the conversion's)")
        .y_desc("failed tx")
        .y_labels(3)
        .label_style((FONT, 12))
        .light_line_style(WHITE)
        .draw()?;
    for (pts, colour) in [(&l.delete, DELETE), (&l.partitions, PARTITIONS)] {
        chart.draw_series(LineSeries::new(
            pts.iter().map(|p| (p.0, p.3 as f64)),
            colour.stroke_width(1),
        ))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn statement(text: &str, start_s: f64, end_s: f64) -> StatementRecord {
        StatementRecord {
            text: text.into(),
            start_s,
            end_s,
            ..StatementRecord::default()
        }
    }

    #[test]
    fn phases_group_the_conversion_statements() {
        let s = [
            statement("CREATE TABLE crm.t_new (LIKE crm.t)", 0.0, 0.1),
            statement("CREATE TABLE crm.t_p2024_01 PARTITION OF", 0.1, 0.2),
            statement("DO $batches$", 0.2, 1.0),
            statement("DO $batches$", 1.0, 1.4),
            statement("ANALYZE crm.t_new;", 1.4, 1.5),
            statement("BEGIN;", 1.5, 1.5),
            statement("LOCK TABLE crm.t IN ACCESS EXCLUSIVE MODE;", 1.5, 1.6),
            statement("DO $swap$", 1.6, 1.7),
            statement("COMMIT;", 1.7, 1.8),
            statement("DO $check$", 1.8, 2.0),
        ];
        let labels: Vec<(String, f64, f64)> = conversion_phases(&s, 10.0)
            .into_iter()
            .map(|b| (b.label, b.start, b.end))
            .collect();
        assert_eq!(
            labels,
            vec![
                ("set-up".into(), 10.0, 10.2),
                ("copy rows".into(), 10.2, 11.4),
                ("before swap".into(), 11.4, 11.5),
                ("swap".into(), 11.5, 11.8),
                ("after swap".into(), 11.8, 12.0),
            ]
        );
    }
}
