//! `crmbench report`: a run folder's files in, report files out, never a
//! database. [`load`] reads `results.json` (required) and `plans.json`,
//! `advice.json`, `migration.sql`, `rollback.sql` and `prisma/` (each
//! optional: a missing one makes its section say "not captured") into a
//! [`ReportModel`]; one writer per format turns the model into bytes:
//! [`html`] (self-contained: inline CSS and SVG), [`markdown`] (SVG files in
//! `report-files/` beside it) and [`json`] (the summary, versioned).

pub mod html;
pub mod json;
pub mod markdown;
pub mod model;
pub mod plots;

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;

use crate::advise::Advice;
use crate::error::{Error, Result};
use crate::explain::PlansFile;
use crate::results::Results;
pub use model::ReportModel;
use model::{
    AdviceView, DropView, Environment, FindingView, IndexView, MeasuredView, QueryFindings,
    QuerySummary, Verification,
};

/// Folder of the Markdown report's SVG files, beside report.md.
pub const FILES_DIR: &str = "report-files";

/// One output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// report.md + report-files/*.svg.
    Markdown,
    /// report.html.
    Html,
    /// report.json.
    Json,
}

impl Format {
    /// All formats, in the order they are written.
    pub const ALL: [Format; 3] = [Format::Markdown, Format::Html, Format::Json];
}

/// Read a run folder into the report's model.
pub fn load(folder: &Path) -> Result<ReportModel> {
    let results_path = folder.join("results.json");
    if !results_path.is_file() {
        return Err(Error::Usage {
            message: format!(
                "{}: no results.json: not a run folder with a measured run",
                results_path.display()
            ),
            fix: "pass --in the folder `crmbench run --out DIR` wrote (default reports/latest)"
                .into(),
        });
    }
    let results = Results::load(&results_path)?;
    let plans: Option<PlansFile> = load_optional(
        &folder.join("plans.json"),
        crate::explain::FORMAT_VERSION,
        "crmbench explain",
    )?;
    let advice: Option<Advice> = load_optional(
        &folder.join("advice.json"),
        crate::advise::FORMAT_VERSION,
        "crmbench advise",
    )?;
    let advice = advice.map(|a| advice_view(folder, &a)).transpose()?;
    Ok(ReportModel {
        folder: folder.display().to_string(),
        environment: environment(&results),
        queries: query_summaries(&results, &results_path)?,
        interval_seconds: results.driver.interval_seconds,
        plans: plans.map(|p| findings_view(&p)),
        advice,
    })
}

/// Write the chosen formats into `folder`; returns the files written.
pub fn write(folder: &Path, model: &ReportModel, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let plots = plots::render_all(model)?;
    let mut written = Vec::new();
    for format in formats {
        match format {
            Format::Html => {
                let path = folder.join("report.html");
                write_file(&path, &html::render(model, &plots))?;
                written.push(path);
            }
            Format::Markdown => {
                let dir = folder.join(FILES_DIR);
                std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating", &dir, e))?;
                for p in &plots {
                    let path = dir.join(&p.file_name);
                    write_file(&path, &p.svg)?;
                }
                let path = folder.join("report.md");
                write_file(&path, &markdown::render(model, &plots))?;
                written.push(path);
            }
            Format::Json => {
                let path = folder.join("report.json");
                write_file(&path, &json::render(model, &path)?)?;
                written.push(path);
            }
        }
    }
    Ok(written)
}

fn write_file(path: &Path, text: &str) -> Result<()> {
    std::fs::write(path, text).map_err(|e| Error::io("writing", path, e))
}

/// A versioned JSON file that may be absent: `None` then; any other problem
/// (unreadable, malformed, another format_version) is an error naming it.
/// `writer` is the command that writes it (named in the fix).
pub fn load_optional<T: DeserializeOwned>(
    path: &Path,
    version: u32,
    writer: &str,
) -> Result<Option<T>> {
    if !path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let value: serde_json::Value = serde_json::from_str(&text).map_err(|e| Error::Json {
        action: "parsing",
        path: path.to_path_buf(),
        source: e,
    })?;
    match value.get("format_version").and_then(|v| v.as_u64()) {
        Some(v) if v == u64::from(version) => {}
        found => {
            return Err(Error::Usage {
                message: format!(
                    "{}: format_version {} is not one this crmbench reads ({version})",
                    path.display(),
                    found.map_or("missing".to_string(), |v| v.to_string())
                ),
                fix: format!("re-run `{writer}` with this crmbench, or remove the file"),
            });
        }
    }
    serde_json::from_value(value)
        .map(Some)
        .map_err(|e| Error::Json {
            action: "reading",
            path: path.to_path_buf(),
            source: e,
        })
}

fn environment(r: &Results) -> Environment {
    let d = &r.driver;
    let mut driver = format!(
        "{} client{} on {} thread{}, {} protocol, ",
        d.clients,
        if d.clients == 1 { "" } else { "s" },
        d.threads,
        if d.threads == 1 { "" } else { "s" },
        d.protocol
    );
    match d.rate {
        Some(rate) => driver.push_str(&format!("open loop at {rate:.0} tx/s")),
        None => driver.push_str("closed loop"),
    }
    driver.push_str(&format!(", warm-up {:.0} s", d.warmup_seconds));
    if d.paired {
        driver.push_str(", paired");
    }
    let mut warnings = model::setting_warnings(&r.server.settings);
    if let Some(reason) = &r.partial {
        warnings.insert(0, format!("the run ended early: {reason}"));
    }
    Environment {
        crmbench_version: r.crmbench_version.clone(),
        server_version: r.server.version.clone(),
        settings: r.server.settings.clone(),
        scale: r.dataset.as_ref().and_then(|d| d.scale),
        seed: r.seed,
        workload: r.workload.name.clone(),
        workload_path: r.workload.path.clone(),
        workload_hash: r.workload.hash.clone(),
        target: r.server.target.clone(),
        driver,
        started_at: r.started_at.clone(),
        ended_at: r.ended_at.clone(),
        measured_seconds: r.measured_seconds,
        partial: r.partial.clone(),
        warnings,
    }
}

fn decode(text: &str, path: &Path, what: &str) -> Result<crate::stats::Hist> {
    crate::stats::decode(text).map_err(|e| Error::Usage {
        message: format!("{}: {what}: {e}", path.display()),
        fix: "the file is damaged: re-run the stage that wrote it".into(),
    })
}

fn query_summaries(r: &Results, path: &Path) -> Result<Vec<QuerySummary>> {
    r.queries
        .iter()
        .map(|q| {
            Ok(QuerySummary {
                name: q.name.clone(),
                kind: q.kind.clone(),
                count: q.baseline.count,
                tps: q.baseline.tps,
                latency: q.baseline.latency,
                errors: q.baseline.errors.clone(),
                histogram: decode(&q.baseline.histogram, path, &format!("query {}", q.name))?,
                intervals: q.baseline.intervals.clone(),
            })
        })
        .collect()
}

fn findings_view(p: &PlansFile) -> Vec<QueryFindings> {
    p.queries
        .iter()
        .map(|q| QueryFindings {
            query: q.name.clone(),
            findings: q.findings.iter().map(finding_view).collect(),
        })
        .collect()
}

fn finding_view(f: &crate::explain::findings::Finding) -> FindingView {
    // The kind as the file spells it (snake_case), whatever Debug prints.
    let kind = serde_json::to_value(f.kind)
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_else(|| format!("{:?}", f.kind));
    FindingView {
        kind,
        node: f.node.clone(),
        hint: f.hint.clone(),
    }
}

/// Only the fields the report shows are read here, in one place, so fields
/// added to advice.json later change nothing in the writers.
fn advice_view(folder: &Path, a: &Advice) -> Result<AdviceView> {
    let path = folder.join("advice.json");
    let mut indexes = Vec::new();
    let mut previous = a.selection.base_cost;
    for c in &a.selection.chosen {
        let name = c.def.name();
        let verified = a
            .verified
            .as_ref()
            .and_then(|v| v.iter().find(|x| x.index == name));
        let predicted_ratio = match verified {
            Some(v) => v.predicted_ratio,
            None if previous > 0.0 => c.cost_after / previous,
            None => 1.0,
        };
        previous = c.cost_after;
        let verification = verified
            .map(|v| {
                let measured = v
                    .measured
                    .iter()
                    .map(|m| {
                        let what = format!("index {name}, query {}", m.query);
                        Ok(MeasuredView {
                            query: m.query.clone(),
                            p50: m.p50,
                            p95: m.p95,
                            before: decode(&m.baseline_histogram, &path, &what)?,
                            after: decode(&m.candidate_histogram, &path, &what)?,
                        })
                    })
                    .collect::<Result<Vec<_>>>()?;
                Ok::<_, Error>(Verification {
                    kept: v.kept,
                    reason: v.reason.clone(),
                    measured,
                })
            })
            .transpose()?;
        indexes.push(IndexView {
            create_sql: c.def.create_sql(&a.schema),
            name,
            queries: c.queries.clone(),
            predicted_ratio,
            estimated_bytes: if c.estimated_bytes > 0 {
                c.estimated_bytes
            } else {
                c.hypopg_bytes
            },
            verification,
        });
    }
    let migration_sql = read_or(&folder.join("migration.sql"), || {
        crate::advise::migration_sql(a, &a.schema)
    })?;
    let rollback_sql = read_or(&folder.join("rollback.sql"), || {
        crate::advise::rollback_sql(a, &a.schema)
    })?;
    let remedies_sql = read_or(&folder.join("remedies.sql"), || {
        crate::advise::remedies_sql(a)
    })?;
    let remedies = a
        .remedies
        .iter()
        .map(|r| {
            let effect = r.effect();
            (r.query.clone(), r.change.clone(), effect)
        })
        .collect();
    Ok(AdviceView {
        remedies,
        remedies_sql,
        method: a.method.clone(),
        weights_from: a.weights_from.clone(),
        base_cost: a.selection.base_cost,
        final_cost: a.selection.final_cost,
        indexes,
        verified: a.verified.is_some(),
        rls_findings: a
            .rls_findings
            .iter()
            .map(|(q, f)| (q.clone(), finding_view(f)))
            .collect(),
        drops: a
            .drops
            .iter()
            .map(|d| DropView {
                index: d.index.clone(),
                table: d.table.clone(),
                reason: d.reason.clone(),
                sql: d.sql.clone(),
            })
            .collect(),
        migration_sql,
        rollback_sql,
        prisma: prisma_files(&folder.join("prisma"), folder)?,
    })
}

fn read_or(path: &Path, regenerate: impl FnOnce() -> String) -> Result<String> {
    if path.is_file() {
        std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))
    } else {
        Ok(regenerate())
    }
}

/// Every file under `dir`, sorted by path, with paths relative to `base`.
fn prisma_files(dir: &Path, base: &Path) -> Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    if !dir.is_dir() {
        return Ok(out);
    }
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let entries = std::fs::read_dir(&d).map_err(|e| Error::io("listing", &d, e))?;
        for entry in entries {
            let path = entry.map_err(|e| Error::io("listing", &d, e))?.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                let text =
                    std::fs::read_to_string(&path).map_err(|e| Error::io("reading", &path, e))?;
                let rel = path.strip_prefix(base).unwrap_or(&path);
                out.push((rel.display().to_string(), text));
            }
        }
    }
    out.sort();
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_absent_optional_file_is_none_and_a_foreign_version_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("plans.json");
        let none: Option<serde_json::Value> = load_optional(&path, 1, "x").unwrap();
        assert!(none.is_none());
        std::fs::write(&path, r#"{"format_version": 7}"#).unwrap();
        let err = load_optional::<serde_json::Value>(&path, 1, "x").unwrap_err();
        let text = err.to_string();
        assert!(
            text.contains("plans.json") && text.contains("format_version 7"),
            "{text}"
        );
    }
}
