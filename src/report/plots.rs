//! The report's plots, drawn with plotters into SVG strings: the HTML report
//! inlines them, the Markdown report writes them as files beside it.
//!
//! Latency distributions are HDR "percentile spectra": x is 1/(1-p) on a log
//! scale (labelled 50%, 90%, 99%, 99.9% …) so the tail gets as much room as
//! the median, y is latency in ms on a log scale. Both axes are drawn in
//! log10 space with explicit key points, so the labels are exactly the
//! percentiles and 1-2-5 steps of milliseconds.

use plotters::coord::Shift;
use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, KeyPointWeight};
use plotters::prelude::*;

use super::model::{QuerySummary, ReportModel};
use crate::error::{Error, Result};
use crate::stats::Hist;

/// One drawn plot.
#[derive(Debug, Clone)]
pub struct Plot {
    /// What it belongs to: `latency:<query>`, `throughput`, `p99`, `verify:<index>`.
    pub key: String,
    /// File name in `report-files/`.
    pub file_name: String,
    /// Caption / alt text.
    pub title: String,
    /// The SVG document.
    pub svg: String,
}

/// Colours for lines; with solid and dashed strokes they tell 24 lines apart
/// (the built-in workload has 23 queries).
const COLOURS: [RGBColor; 12] = [
    RGBColor(31, 119, 180),
    RGBColor(214, 39, 40),
    RGBColor(44, 160, 44),
    RGBColor(255, 127, 14),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
    RGBColor(31, 45, 100),
    RGBColor(110, 130, 30),
];

const FONT: &str = "sans-serif";

pub(super) fn colour(i: usize) -> RGBColor {
    COLOURS[i % COLOURS.len()]
}

fn plot_error<E: std::fmt::Display>(plot: &str) -> impl Fn(E) -> Error + '_ {
    move |e| Error::Plot {
        plot: plot.to_string(),
        detail: e.to_string(),
    }
}

/// Every plot of the report, in the order the report shows them.
pub fn render_all(model: &ReportModel) -> Result<Vec<Plot>> {
    let mut out = Vec::new();
    let latency_axes = spectrum_axes(model.queries.iter().map(|q| &q.histogram));
    for (i, q) in model.queries.iter().enumerate() {
        out.push(Plot {
            key: format!("latency:{}", q.name),
            file_name: format!("latency-{:02}-{}.svg", i + 1, file_safe(&q.name)),
            title: format!("{}: latency by percentile", q.name),
            svg: spectrum(
                &format!("{} — latency by percentile", q.name),
                &[Line {
                    label: format!("{} ({} tx)", q.name, q.count),
                    hist: &q.histogram,
                    colour: colour(0),
                    dashed: false,
                }],
                (440, 280),
                latency_axes,
            )?,
        });
    }
    if model.queries.iter().any(|q| !q.intervals.is_empty()) {
        out.push(Plot {
            key: "throughput".into(),
            file_name: "throughput.svg".into(),
            title: "Throughput over time (all queries)".into(),
            svg: throughput(&model.queries, model.interval_seconds)?,
        });
        out.push(Plot {
            key: "p99".into(),
            file_name: "p99-over-time.svg".into(),
            title: format!(
                "p99 latency over time, the {MAX_SERIES} queries with the most total time"
            ),
            svg: p99_over_time(&top_by_time(&model.queries), model.interval_seconds)?,
        });
    }
    if let Some(paired) = &model.paired {
        out.extend(super::paired::spectra(paired)?);
    }
    if let Some(advice) = &model.advice {
        let verify_axes = spectrum_axes(
            advice
                .indexes
                .iter()
                .filter_map(|i| i.verification.as_ref())
                .flat_map(|v| &v.measured)
                .flat_map(|m| [&m.before, &m.after]),
        );
        for (i, index) in advice.indexes.iter().enumerate() {
            let Some(v) = &index.verification else {
                continue;
            };
            if v.measured.is_empty() {
                continue;
            }
            let mut lines = Vec::new();
            for (j, m) in v.measured.iter().enumerate() {
                lines.push(Line {
                    label: format!("{} before", m.query),
                    hist: &m.before,
                    colour: colour(j),
                    dashed: false,
                });
                lines.push(Line {
                    label: format!(
                        "{} after: p50 {}",
                        m.query,
                        super::model::ratio_text(&m.p50)
                    ),
                    hist: &m.after,
                    colour: colour(j),
                    dashed: true,
                });
            }
            out.push(Plot {
                key: format!("verify:{}", index.name),
                file_name: format!("verify-{:02}-{}.svg", i + 1, file_safe(&index.name)),
                title: format!("{}: before (solid) and after (dashed)", index.name),
                svg: spectrum(
                    &format!("{} — before (solid) / after (dashed)", index.name),
                    &lines,
                    (900, 320),
                    verify_axes,
                )?,
            });
        }
    }
    Ok(out)
}

/// Letters, digits, `_` and `-` only: a name from a file becomes a safe file name.
pub(super) fn file_safe(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// A linear axis over log10 values whose grid lines and labels sit exactly
/// at the given points (percentiles, 1-2-5 ms steps) and nowhere else.
#[derive(Clone)]
struct KeyAxis {
    lo: f64,
    hi: f64,
    keys: Vec<f64>,
}

impl KeyAxis {
    fn new(lo: f64, hi: f64, keys: Vec<f64>) -> KeyAxis {
        KeyAxis { lo, hi, keys }
    }
}

impl Ranged for KeyAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.hi - self.lo;
        if span <= 0.0 {
            return (limit.0 + limit.1) / 2;
        }
        let share = ((value - self.lo) / span).clamp(-1.0, 2.0);
        limit.0 + (f64::from(limit.1 - limit.0) * share).round() as i32
    }

    fn key_points<Hint: KeyPointHint>(&self, hint: Hint) -> Vec<f64> {
        match hint.weight() {
            KeyPointWeight::Bold => self.keys.clone(),
            KeyPointWeight::Any => Vec::new(),
        }
    }

    fn range(&self) -> std::ops::Range<f64> {
        self.lo..self.hi
    }
}

/// One spectrum of a plot.
pub(super) struct Line<'a> {
    pub(super) label: String,
    pub(super) hist: &'a Hist,
    pub(super) colour: RGBColor,
    pub(super) dashed: bool,
}

/// Points (log10 of 1/(1-p), log10 of ms) of a histogram, 20 per decade up
/// to the last sample's percentile, then the maximum.
pub fn spectrum_points(h: &Hist) -> Vec<(f64, f64)> {
    if h.is_empty() {
        return Vec::new();
    }
    let last = (h.len() as f64).log10();
    let mut out = Vec::new();
    let mut step = 0u32;
    loop {
        let x = f64::from(step) / 20.0;
        if x >= last {
            break;
        }
        let q = 1.0 - 10f64.powf(-x);
        out.push((x, log_ms(h.value_at_quantile(q))));
        step += 1;
    }
    out.push((last.max(0.0), log_ms(h.max())));
    out
}

fn log_ms(us: u64) -> f64 {
    (us.max(1) as f64 / 1000.0).log10()
}

/// "50%", "90%", "99.9%" for log10(1/(1-p)).
pub fn percentile_label(x: f64) -> String {
    let p = 100.0 * (1.0 - 10f64.powf(-x));
    let text = format!("{p:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("{text}%")
}

/// A millisecond value from its log10, with 1-2-5 steps printed plainly.
pub fn ms_label(v: f64) -> String {
    let ms = 10f64.powf(v);
    if ms >= 1.0 {
        format!("{ms:.0}")
    } else {
        let text = format!("{ms:.3}");
        text.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// 1-2-5 steps of each decade between `lo` and `hi` (log10 values).
fn decade_points(lo: f64, hi: f64) -> Vec<f64> {
    let mut out = Vec::new();
    let (first, last) = (lo.floor() as i32, hi.ceil() as i32);
    for d in first..=last {
        for m in [1.0f64, 2.0, 5.0] {
            let v = f64::from(d) + m.log10();
            if v >= lo - 1e-9 && v <= hi + 1e-9 {
                out.push(v);
            }
        }
    }
    out
}

/// x key points: 50%, then 90%, 99%, 99.9% … up to `hi`.
fn percentile_points(hi: f64) -> Vec<f64> {
    let mut out = vec![2f64.log10()];
    let mut d = 1.0;
    while d <= hi + 1e-9 {
        out.push(d);
        d += 1.0;
    }
    out
}

/// The axes of percentile spectra, shared by every plot of a section so
/// they can be compared at a glance: x up to the longest tail's decade, y
/// over every latency shown (log10 values).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpectrumAxes {
    /// log10 of 1/(1−p) at the right end.
    pub x_hi: f64,
    /// log10 ms at the bottom.
    pub y_lo: f64,
    /// log10 ms at the top.
    pub y_hi: f64,
}

/// Axes holding every histogram of `hists`.
pub fn spectrum_axes<'a>(hists: impl IntoIterator<Item = &'a Hist>) -> SpectrumAxes {
    let points: Vec<(f64, f64)> = hists.into_iter().flat_map(spectrum_points).collect();
    let x_hi = points
        .iter()
        .map(|p| p.0)
        .fold(2.0f64, f64::max)
        .ceil()
        .max(2.0);
    let (y_lo, y_hi) = points.iter().fold((f64::MAX, f64::MIN), |(lo, hi), p| {
        (lo.min(p.1), hi.max(p.1))
    });
    let (y_lo, y_hi) = if y_lo > y_hi {
        (-1.0, 1.0)
    } else {
        ((y_lo - 0.02).floor().min(y_hi - 1.0), (y_hi + 0.02).ceil())
    };
    SpectrumAxes { x_hi, y_lo, y_hi }
}

pub(super) fn spectrum(
    title: &str,
    lines: &[Line<'_>],
    size: (u32, u32),
    axes: SpectrumAxes,
) -> Result<String> {
    let err = plot_error(title);
    let series: Vec<Vec<(f64, f64)>> = lines.iter().map(|l| spectrum_points(l.hist)).collect();
    let SpectrumAxes { x_hi, y_lo, y_hi } = axes;
    let legend = lines.len() > 1;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (plot_area, legend_area) = if legend {
            let (l, r) = root.split_horizontally(size.0 * 3 / 5);
            (l, Some(r))
        } else {
            (root.clone(), None)
        };
        let mut chart = ChartBuilder::on(&plot_area)
            .caption(title, (FONT, 17))
            .margin(8)
            .margin_right(28)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(
                KeyAxis::new(0.0, x_hi, percentile_points(x_hi)),
                KeyAxis::new(y_lo, y_hi, decade_points(y_lo, y_hi)),
            )
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_label_formatter(&|v| percentile_label(*v))
            .y_label_formatter(&|v| ms_label(*v))
            .x_desc("percentile")
            .y_desc("latency, ms")
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .draw()
            .map_err(&err)?;
        for (line, points) in lines.iter().zip(series) {
            let style = line.colour.stroke_width(2);
            if line.dashed {
                chart
                    .draw_series(DashedLineSeries::new(points, 6, 4, style))
                    .map_err(&err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(&err)?;
            }
        }
        if let Some(area) = legend_area {
            let entries: Vec<(String, RGBColor, bool)> = lines
                .iter()
                .map(|l| (l.label.clone(), l.colour, l.dashed))
                .collect();
            draw_legend(&area, &entries).map_err(&err)?;
        }
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// A legend beside the plot (not over it): a short line and the label per entry.
fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    entries: &[(String, RGBColor, bool)],
) -> std::result::Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    for (i, (label, c, dashed)) in entries.iter().enumerate() {
        let y = 34 + 20 * i as i32;
        if *dashed {
            for k in 0..3 {
                let x = 8 + k * 8;
                area.draw(&PathElement::new(
                    vec![(x, y), (x + 5, y)],
                    c.stroke_width(2),
                ))?;
            }
        } else {
            area.draw(&PathElement::new(vec![(8, y), (30, y)], c.stroke_width(2)))?;
        }
        area.draw(&Text::new(label.clone(), (36, y - 7), (FONT, 15)))?;
    }
    Ok(())
}

/// Transactions per second of all queries together, per interval. Each
/// interval's own length (from the previous end) divides its count; a stub
/// shorter than half a period (the run's last moments, clients stopping) is
/// left out rather than drawn as a collapse.
pub fn throughput_points(queries: &[QuerySummary], interval_seconds: f64) -> Vec<(f64, f64)> {
    let longest = queries.iter().map(|q| q.intervals.len()).max().unwrap_or(0);
    let mut previous_end = 0.0;
    (0..longest)
        .filter_map(|i| {
            let t = queries
                .iter()
                .find_map(|q| q.intervals.get(i).map(|s| s.t))
                .unwrap_or(previous_end + interval_seconds);
            // Summed as f64: counts from a damaged file may overflow a u64.
            let count: f64 = queries
                .iter()
                .filter_map(|q| q.intervals.get(i))
                .map(|s| s.count as f64)
                .sum();
            let length = if t > previous_end {
                t - previous_end
            } else if interval_seconds > 0.0 {
                interval_seconds
            } else {
                1.0
            };
            previous_end = t;
            (length >= interval_seconds / 2.0).then_some((t, count / length))
        })
        .collect()
}

/// Seconds on a time axis: "0", "0.5", "1" (no repeated rounded labels).
fn seconds_label(v: f64) -> String {
    let text = format!("{v:.1}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn time_range(queries: &[QuerySummary]) -> f64 {
    queries
        .iter()
        .flat_map(|q| q.intervals.iter().map(|s| s.t))
        .fold(1.0f64, f64::max)
}

fn throughput(queries: &[QuerySummary], interval_seconds: f64) -> Result<String> {
    let title = "Throughput over time (all queries)";
    let err = plot_error(title);
    let points = throughput_points(queries, interval_seconds);
    let y_hi = points.iter().map(|p| p.1).fold(1.0f64, f64::max) * 1.15;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, 260)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, (FONT, 17))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(56)
            .build_cartesian_2d(0.0..time_range(queries), 0.0..y_hi)
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the measured window")
            .y_desc("transactions/s")
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .x_label_formatter(&|v| seconds_label(*v))
            .y_label_formatter(&|v| format!("{v:.0}"))
            .draw()
            .map_err(&err)?;
        chart
            .draw_series(LineSeries::new(points, colour(0).stroke_width(2)))
            .map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

/// Most lines one over-time plot draws: past it colours repeat and no
/// reader can follow one query.
pub const MAX_SERIES: usize = 8;

/// The [`MAX_SERIES`] queries with the most total time (count × mean).
pub fn top_by_time(queries: &[QuerySummary]) -> Vec<QuerySummary> {
    let mut by_time: Vec<&QuerySummary> = queries.iter().collect();
    let total = |q: &QuerySummary| q.count as f64 * q.latency.mean_us;
    by_time.sort_by(|a, b| total(b).total_cmp(&total(a)));
    by_time.into_iter().take(MAX_SERIES).cloned().collect()
}

/// One query's p99 per interval (t = the interval's end), full intervals
/// only: a partial one (the run's last moments) holds a few fast requests
/// and would draw a misleading drop.
pub fn p99_points(q: &QuerySummary, interval_seconds: f64) -> Vec<(f64, f64)> {
    let mut previous_end = 0.0;
    q.intervals
        .iter()
        .filter_map(|s| {
            let length = s.t - previous_end;
            previous_end = s.t;
            (s.count > 0 && length >= interval_seconds * 0.95).then(|| (s.t, log_ms(s.p99_us)))
        })
        .collect()
}

fn p99_over_time(queries: &[QuerySummary], interval_seconds: f64) -> Result<String> {
    let title = "p99 latency over time (top queries by total time)";
    let err = plot_error(title);
    let series: Vec<Vec<(f64, f64)>> = queries
        .iter()
        .map(|q| p99_points(q, interval_seconds))
        .collect();
    let (y_lo, y_hi) = series
        .iter()
        .flatten()
        .fold((f64::MAX, f64::MIN), |(lo, hi), p| {
            (lo.min(p.1), hi.max(p.1))
        });
    let (y_lo, y_hi) = if y_lo > y_hi {
        (-1.0, 1.0)
    } else {
        (
            (y_lo - 0.02).floor(),
            (y_hi + 0.02).ceil().max(y_lo.floor() + 1.0),
        )
    };
    let height = (60 + 20 * queries.len() as u32).max(300);
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (900, height)).into_drawing_area();
        root.fill(&WHITE).map_err(&err)?;
        let (left, right) = root.split_horizontally(620);
        let mut chart = ChartBuilder::on(&left)
            .caption(title, (FONT, 17))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(44)
            .build_cartesian_2d(
                0.0..time_range(queries),
                KeyAxis::new(y_lo, y_hi, decade_points(y_lo, y_hi)),
            )
            .map_err(&err)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the measured window")
            .y_desc("p99, ms")
            .label_style((FONT, 14))
            .light_line_style(WHITE)
            .x_label_formatter(&|v| seconds_label(*v))
            .y_label_formatter(&|v| ms_label(*v))
            .draw()
            .map_err(&err)?;
        // Past the palette, lines are dashed so no two queries look alike.
        let dashed = |i: usize| (i / COLOURS.len()) % 2 == 1;
        for (i, points) in series.into_iter().enumerate() {
            let style = colour(i).stroke_width(2);
            if dashed(i) {
                chart
                    .draw_series(DashedLineSeries::new(points, 6, 4, style))
                    .map_err(&err)?;
            } else {
                chart
                    .draw_series(LineSeries::new(points, style))
                    .map_err(&err)?;
            }
        }
        let entries: Vec<(String, RGBColor, bool)> = queries
            .iter()
            .enumerate()
            .map(|(i, q)| (q.name.clone(), colour(i), dashed(i)))
            .collect();
        draw_legend(&right, &entries).map_err(&err)?;
        root.present().map_err(&err)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::{new_hist, record};

    #[test]
    fn percentile_labels_read_as_percentiles() {
        assert_eq!(percentile_label(2f64.log10()), "50%");
        assert_eq!(percentile_label(1.0), "90%");
        assert_eq!(percentile_label(2.0), "99%");
        assert_eq!(percentile_label(3.0), "99.9%");
        assert_eq!(percentile_label(4.0), "99.99%");
    }

    #[test]
    fn millisecond_labels_follow_one_two_five_steps() {
        let labels: Vec<String> = decade_points(-1.0, 1.0).into_iter().map(ms_label).collect();
        assert_eq!(labels, ["0.1", "0.2", "0.5", "1", "2", "5", "10"]);
    }

    /// Spectra of one section share their axes (issue 16, item 10): a fast
    /// query's plot spans the slow one's latencies and tail.
    #[test]
    fn spectra_of_a_section_share_their_axes() {
        let mut fast = new_hist();
        let mut slow = new_hist();
        for i in 0..100u64 {
            fast.record(50 + i).unwrap();
        }
        for i in 0..20_000u64 {
            slow.record(2_000 + i * 10).unwrap();
        }
        let axes = spectrum_axes([&fast, &slow]);
        assert_eq!(axes, spectrum_axes([&slow, &fast]));
        assert!(axes.y_lo <= log_ms(50) && axes.y_hi >= log_ms(slow.max()));
        assert!(axes.x_hi >= (slow.len() as f64).log10());
        let svg = |h: &Hist| {
            let line = Line {
                label: "q".into(),
                hist: h,
                colour: colour(0),
                dashed: false,
            };
            spectrum("q", std::slice::from_ref(&line), (440, 280), axes).unwrap()
        };
        // Both plots carry the slow query's tail and latency ticks.
        for s in [svg(&fast), svg(&slow)] {
            assert!(s.contains("\n99.99%\n") && s.contains("\n100\n"), "{s}");
        }
    }

    #[test]
    fn the_spectrum_rises_and_ends_at_the_maximum() {
        let mut h = new_hist();
        for v in 1..=10_000u64 {
            record(&mut h, 100 + v);
        }
        record(&mut h, 50_000);
        let points = spectrum_points(&h);
        assert!(
            points
                .windows(2)
                .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1)
        );
        let last = points.last().unwrap();
        assert!((last.1 - 50f64.log10()).abs() < 0.01, "{last:?}");
        // 20 points a decade up to 1/(1-p) = n samples.
        assert!(points.len() > 80 && points.len() < 90, "{}", points.len());
        assert!(spectrum_points(&new_hist()).is_empty());
    }

    #[test]
    fn throughput_divides_each_interval_by_its_own_length() {
        use crate::results::IntervalStats;
        let interval = |t: f64, count: u64| IntervalStats {
            t,
            count,
            errors: 0,
            p50_us: 1,
            p95_us: 1,
            p99_us: 1,
            mean_us: 1,
        };
        let query = |intervals: Vec<IntervalStats>| QuerySummary {
            name: "q".into(),
            kind: "read".into(),
            count: 0,
            tps: 0.0,
            latency: Default::default(),
            errors: Default::default(),
            histogram: new_hist(),
            intervals,
        };
        let queries = [
            query(vec![
                interval(1.0, 100),
                interval(2.0, 100),
                interval(2.6, 30),
                interval(2.7, 5),
            ]),
            query(vec![
                interval(1.0, 50),
                interval(2.0, 50),
                interval(2.6, 0),
                interval(2.7, 0),
            ]),
        ];
        let points = throughput_points(&queries, 1.0);
        // 0.6 s counts at its own length; the 0.1 s stub is left out.
        assert_eq!(points.len(), 3, "{points:?}");
        assert_eq!(points[..2], [(1.0, 150.0), (2.0, 150.0)]);
        assert_eq!(points[2].0, 2.6);
        assert!((points[2].1 - 50.0).abs() < 1e-9, "{points:?}");
        assert_eq!(seconds_label(0.5), "0.5");
        assert_eq!(seconds_label(2.0), "2");
        // Counts of a damaged file (found by tests/properties.rs) do not overflow.
        let huge = [
            query(vec![interval(1.0, u64::MAX)]),
            query(vec![interval(1.0, u64::MAX)]),
        ];
        assert!(throughput_points(&huge, 1.0)[0].1 > 1e19);
    }

    #[test]
    fn file_names_keep_only_safe_characters() {
        assert_eq!(file_safe("a/../b c<x>"), "a____b_c_x_");
    }
}
