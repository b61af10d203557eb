//! Values of options: durations, rates, and the closed sets (`ValueEnum`s)
//! mapped to the library's own types.

use std::ffi::OsStr;

use clap::ValueEnum;
use clap::builder::{EnumValueParser, PossibleValue, TypedValueParser};

/// "60s", "2m", "500ms", "1h", or plain seconds.
pub(super) fn parse_duration(text: &str) -> std::result::Result<std::time::Duration, String> {
    let t = text.trim();
    let (number, unit) = t
        .find(|c: char| c.is_ascii_alphabetic())
        .map_or((t, "s"), |i| (&t[..i], &t[i..]));
    let n: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a duration (e.g. 30s, 2m, 500ms)"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "s" => n,
        "m" | "min" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("unknown unit in `{text}` (use ms, s, m or h)")),
    };
    if !(secs.is_finite() && secs >= 0.0) {
        return Err(format!("`{text}` is not a positive duration"));
    }
    Ok(std::time::Duration::from_secs_f64(secs))
}

/// "1%", "0.5%" or "0.01".
pub(super) fn parse_fraction(text: &str) -> std::result::Result<f64, String> {
    let t = text.trim();
    let v = match t.strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => t.parse::<f64>(),
    }
    .map_err(|_| format!("`{text}` is not a rate (e.g. 1% or 0.01)"))?;
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("`{text}` is not between 0% and 100%"));
    }
    Ok(v)
}

/// `run --arrivals`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Arrivals {
    /// Exponential gaps between arrivals.
    Poisson,
    /// Even gaps.
    Uniform,
}

impl From<Arrivals> for crate::run::driver::Arrivals {
    fn from(a: Arrivals) -> Self {
        match a {
            Arrivals::Poisson => Self::Poisson,
            Arrivals::Uniform => Self::Uniform,
        }
    }
}

/// `run --protocol`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Protocol {
    /// Extended protocol, statements prepared once per connection; a
    /// tenant-framed transaction is pipelined.
    Prepared,
    /// Each transaction sent as one text message with literals: one round trip.
    Simple,
    /// Prepared statements on crmbench's own wire-protocol layer: a tenant
    /// frame's messages end in one Sync, as pgbench's pipeline mode sends
    /// them (tokio-postgres ends each statement with its own).
    Pipeline,
}

/// `run --tenant-frame`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum TenantFrameArg {
    /// `SELECT set_config(setting, tenant, true)` (the default).
    SetConfig,
    /// `SET LOCAL setting = 'tenant'`: what Citus propagates to its workers
    /// (with citus.propagate_set_commands = 'local').
    SetLocal,
}

impl From<TenantFrameArg> for crate::workload::FrameForm {
    fn from(arg: TenantFrameArg) -> Self {
        match arg {
            TenantFrameArg::SetConfig => crate::workload::FrameForm::SetConfig,
            TenantFrameArg::SetLocal => crate::workload::FrameForm::SetLocal,
        }
    }
}

/// `report --format`: one item of its comma-separated list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ReportFormat {
    /// report.md, with its plots in report-files/.
    #[value(alias = "markdown")]
    Md,
    /// report.html, self-contained.
    Html,
    /// report.json, the summary.
    Json,
}

impl From<ReportFormat> for crate::report::Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Md => Self::Markdown,
            ReportFormat::Html => Self::Html,
            ReportFormat::Json => Self::Json,
        }
    }
}

/// `compare --metric`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Metric {
    /// Median.
    P50,
    /// 95th percentile.
    P95,
    /// 99th percentile.
    P99,
    /// Mean (the tail's cost included).
    Mean,
}

impl From<Metric> for crate::compare::Metric {
    fn from(m: Metric) -> Self {
        match m {
            Metric::P50 => Self::P50,
            Metric::P95 => Self::P95,
            Metric::P99 => Self::P99,
            Metric::Mean => Self::Mean,
        }
    }
}

/// `compare --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum CompareFormat {
    /// Markdown.
    Md,
    /// JSON.
    Json,
}

/// A `ValueEnum`'s parser that forgives spaces around an item of a
/// comma-separated list (`--format "md, html"`), with clap's own errors.
#[derive(Clone)]
pub(super) struct Trimmed<E>(std::marker::PhantomData<E>);

impl<E> Default for Trimmed<E> {
    fn default() -> Self {
        Trimmed(std::marker::PhantomData)
    }
}

impl<E: ValueEnum + Clone + Send + Sync + 'static> TypedValueParser for Trimmed<E> {
    type Value = E;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        arg: Option<&clap::Arg>,
        value: &OsStr,
    ) -> std::result::Result<E, clap::Error> {
        let value = value.to_str().map_or(value, |v| OsStr::new(v.trim()));
        EnumValueParser::<E>::new().parse_ref(cmd, arg, value)
    }

    fn possible_values(&self) -> Option<Box<dyn Iterator<Item = PossibleValue> + '_>> {
        Some(Box::new(
            E::value_variants()
                .iter()
                .filter_map(ValueEnum::to_possible_value),
        ))
    }
}

/// `compare --inconclusive`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum InconclusiveArg {
    /// Exit 0: "not shown to regress" is accepted.
    Pass,
    /// Exit 1: only a shown absence of regression passes.
    Fail,
}

impl From<InconclusiveArg> for crate::compare::verdict::InconclusivePolicy {
    fn from(a: InconclusiveArg) -> Self {
        match a {
            InconclusiveArg::Pass => Self::Pass,
            InconclusiveArg::Fail => Self::Fail,
        }
    }
}

/// `audit --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum AuditFormat {
    /// Findings with why and fix, for people.
    Text,
    /// The report with its format_version.
    Json,
    /// SARIF 2.1.0 for GitHub code scanning: only findings located in a file.
    Sarif,
}

/// `audit --fail-on`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum FailOn {
    /// Exit 1 when any error is found.
    Error,
    /// Exit 1 when any warning or error is found.
    Warning,
}

impl From<FailOn> for crate::audit::Severity {
    fn from(f: FailOn) -> Self {
        match f {
            FailOn::Error => crate::audit::Severity::Error,
            FailOn::Warning => crate::audit::Severity::Warning,
        }
    }
}

/// `export --format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum ExportFormat {
    /// One JSON object per row and line.
    Jsonl,
    /// CSV with a header, written by COPY (what `import` loads).
    Csv,
}

impl From<ExportFormat> for crate::export::Format {
    fn from(f: ExportFormat) -> Self {
        match f {
            ExportFormat::Jsonl => crate::export::Format::Jsonl,
            ExportFormat::Csv => crate::export::Format::Csv,
        }
    }
}
