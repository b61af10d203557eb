//! `run --pooler --pool-sizes 4,8,16,32`: the pooler's pool size measured,
//! not guessed. For each size the private PgBouncer restarts with that
//! `default_pool_size` and the workload runs at the same client count; the
//! curve of throughput and p99 per size gives the knee — the smallest pool
//! that reaches 95% of the best throughput — which is the advice: a bigger
//! pool only adds server backends contending for the same cores.

use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{RunOptions, run_with};
use crate::error::{Error, Result};
use crate::pg::Target;
use crate::pg::pooler::Pooler;
use crate::pg::private::PrivateServer;
use crate::runfolder::RunFile;
use crate::stats;
use crate::workload::context::WorkloadContext;

/// Share of the best throughput the advised pool size must reach.
pub const KNEE_SHARE: f64 = 0.95;

/// One pool size's measurement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolPoint {
    /// `default_pool_size`.
    pub pool_size: u32,
    /// Transactions per second over all queries.
    pub tps: f64,
    /// p99 latency over all queries, µs.
    pub p99_us: u64,
    /// Share of transactions that failed.
    pub error_rate: f64,
}

/// `pool-sizes.json`: the curve and the advice drawn from it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PoolCurve {
    /// Format version.
    pub format_version: u32,
    /// crmbench version that wrote it.
    pub made_by: String,
    /// Clients (connections to the pooler) at every size.
    pub clients: usize,
    /// Seconds measured per size.
    pub seconds_per_size: f64,
    /// PgBouncer's version line.
    pub pooler: String,
    /// Measurements in the order run.
    pub points: Vec<PoolPoint>,
    /// The smallest pool reaching [`KNEE_SHARE`] of the best tps.
    pub knee: Option<u32>,
}

impl RunFile for PoolCurve {
    const FILE: &'static str = "pool-sizes.json";
    const FORMAT_VERSION: u32 = 1;
    const MADE_BY: &'static str = "crmbench run --pool-sizes";
}

/// Run the sweep on the private server's pooler. The pooler is left
/// running with the size it had before.
pub async fn sweep(
    ctx: &WorkloadContext,
    target: &Target,
    server: &PrivateServer,
    sizes: &[u32],
    opts: &RunOptions,
) -> Result<PoolCurve> {
    let before = Pooler::open(server)?.map(|p| p.state().pool_size);
    let mut points = Vec::with_capacity(sizes.len());
    let mut version = String::new();
    for (i, &size) in sizes.iter().enumerate() {
        crate::console::err_line(format!(
            "run: pool size {size} ({} of {}): restarting PgBouncer, measuring {:?}",
            i + 1,
            sizes.len(),
            opts.duration
        ));
        let pooler = Pooler::start(server, size)?;
        version = pooler.state().version.clone();
        let mut o = opts.clone();
        o.pooler_url = Some(pooler.url(crate::pg::roles::APP, target.database()));
        o.quiet = true;
        let outcome = run_with(ctx, target, &o).await?;
        if crate::signals::stopped().is_some() {
            return Err(Error::Interrupted {
                during: format!("the pool-size sweep (at size {size})"),
            });
        }
        points.push(point_of(size, &outcome.results)?);
    }
    if let Some(size) = before {
        Pooler::start(server, size)?;
    }
    Ok(PoolCurve {
        format_version: PoolCurve::FORMAT_VERSION,
        made_by: format!("crmbench {}", env!("CARGO_PKG_VERSION")),
        clients: opts.clients,
        seconds_per_size: opts.duration.as_secs_f64(),
        pooler: version,
        knee: knee(&points),
        points,
    })
}

fn point_of(pool_size: u32, results: &crate::results::Results) -> Result<PoolPoint> {
    let mut all = stats::new_hist();
    let (mut done, mut failed) = (0u64, 0u64);
    for q in &results.queries {
        let h = stats::decode(&q.baseline.histogram).map_err(|e| Error::Internal {
            message: format!("decoding the histogram of {} just measured: {e}", q.name),
            fix: String::new(),
        })?;
        stats::merge(&mut all, &h);
        done += q.baseline.count;
        failed += q.baseline.errors.values().sum::<u64>();
    }
    let seconds = results.measured_seconds.max(1e-9);
    Ok(PoolPoint {
        pool_size,
        tps: done as f64 / seconds,
        p99_us: stats::summarize(&all).p99_us,
        error_rate: if done + failed == 0 {
            0.0
        } else {
            failed as f64 / (done + failed) as f64
        },
    })
}

/// The smallest pool size whose tps reaches [`KNEE_SHARE`] of the best
/// (sizes with errors above 1% do not count).
pub fn knee(points: &[PoolPoint]) -> Option<u32> {
    let usable: Vec<&PoolPoint> = points.iter().filter(|p| p.error_rate <= 0.01).collect();
    let best = usable.iter().map(|p| p.tps).fold(0.0, f64::max);
    if best <= 0.0 {
        return None;
    }
    usable
        .iter()
        .filter(|p| p.tps >= KNEE_SHARE * best)
        .map(|p| p.pool_size)
        .min()
}

/// The table and the advice, as printed.
pub fn render(curve: &PoolCurve, folder: &Path) -> String {
    let mut out = format!(
        "crmbench: pool sizes at {} clients, {:.0} s each ({})\n  {:>9}  {:>10}  {:>9}  {:>7}\n",
        curve.clients, curve.seconds_per_size, curve.pooler, "pool size", "tps", "p99 ms", "errors"
    );
    for p in &curve.points {
        out.push_str(&format!(
            "  {:>9}  {:>10.1}  {:>9.2}  {:>6.2}%\n",
            p.pool_size,
            p.tps,
            p.p99_us as f64 / 1000.0,
            100.0 * p.error_rate
        ));
    }
    match curve.knee {
        Some(k) => out.push_str(&format!(
            "  advice: default_pool_size = {k} — the smallest pool reaching {:.0}% of the best tps; larger pools add backends, not throughput\n",
            100.0 * KNEE_SHARE
        )),
        None => out.push_str("  advice: none — no size completed transactions without errors\n"),
    }
    out.push_str(&format!(
        "  curve: {}\n",
        folder.join(PoolCurve::FILE).display()
    ));
    out
}

/// `pool-sizes.svg`: tps (line) per pool size, the knee marked.
pub fn plot(curve: &PoolCurve) -> Result<String> {
    use plotters::prelude::*;
    let title = "Throughput per pool size";
    let err = |e: &dyn std::fmt::Display| Error::Plot {
        plot: title.into(),
        detail: e.to_string(),
    };
    let x_hi = curve.points.iter().map(|p| p.pool_size).max().unwrap_or(1) as f64 * 1.1;
    let y_hi = curve.points.iter().map(|p| p.tps).fold(1.0f64, f64::max) * 1.15;
    let mut points: Vec<(f64, f64)> = curve
        .points
        .iter()
        .map(|p| (p.pool_size as f64, p.tps))
        .collect();
    points.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 300)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| err(&e))?;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 17))
            .margin(8)
            .x_label_area_size(34)
            .y_label_area_size(60)
            .build_cartesian_2d(0.0..x_hi, 0.0..y_hi)
            .map_err(|e| err(&e))?;
        chart
            .configure_mesh()
            .x_desc("PgBouncer default_pool_size")
            .y_desc("transactions/s")
            .label_style(("sans-serif", 14))
            .light_line_style(WHITE)
            .draw()
            .map_err(|e| err(&e))?;
        let blue = RGBColor(31, 119, 180);
        chart
            .draw_series(LineSeries::new(points.clone(), blue.stroke_width(2)))
            .map_err(|e| err(&e))?;
        chart
            .draw_series(points.iter().map(|&p| Circle::new(p, 4, blue.filled())))
            .map_err(|e| err(&e))?;
        if let Some(k) = curve.knee {
            let red = RGBColor(214, 39, 40);
            chart
                .draw_series(LineSeries::new(
                    [(k as f64, 0.0), (k as f64, y_hi)],
                    red.stroke_width(1),
                ))
                .map_err(|e| err(&e))?;
        }
        root.present().map_err(|e| err(&e))?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(size: u32, tps: f64, err: f64) -> PoolPoint {
        PoolPoint {
            pool_size: size,
            tps,
            p99_us: 1000,
            error_rate: err,
        }
    }

    #[test]
    fn the_knee_is_the_smallest_size_within_five_percent_of_the_best() {
        let points = [
            p(4, 700.0, 0.0),
            p(8, 960.0, 0.0),
            p(16, 1000.0, 0.0),
            p(32, 990.0, 0.0),
        ];
        assert_eq!(knee(&points), Some(8));
        // 949 is under 95% of 1000: the knee moves up.
        let points = [p(8, 949.0, 0.0), p(16, 1000.0, 0.0)];
        assert_eq!(knee(&points), Some(16));
    }

    #[test]
    fn sizes_that_failed_transactions_do_not_count() {
        // Size 2 "won" only by failing half its transactions.
        let points = [p(2, 2000.0, 0.5), p(4, 960.0, 0.0), p(8, 1000.0, 0.0)];
        assert_eq!(knee(&points), Some(4));
        assert_eq!(knee(&[p(4, 0.0, 0.0)]), None);
    }
}
