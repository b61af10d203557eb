//! `crmbench report`: a run folder's files in, report files out, never a
//! database. [`load`] reads `results.json` (required) and `plans.json`,
//! `advice.json`, `migration.sql`, `rollback.sql` and `prisma/` (each
//! optional: a missing one makes its section say "not captured") into a
//! [`ReportModel`]; one writer per format turns the model into bytes:
//! [`html`] (self-contained: inline CSS and SVG), [`markdown`] (SVG files in
//! `report-files/` beside it) and [`json`] (the summary, versioned).

pub mod html;
pub mod json;
pub mod lead;
pub mod markdown;
pub mod model;
pub mod paired;
pub mod plots;
pub mod rehearsal;
pub mod replication;
pub mod retention;

use std::path::{Path, PathBuf};

use crate::advise::Advice;
use crate::error::{Error, Result};
use crate::explain::PlansFile;
use crate::results::Results;
use crate::runfolder::RunFolder;
pub use model::ReportModel;
use model::{
    AdviceView, DropView, Environment, FindingView, IndexView, MeasuredView, QueryFindings,
    QuerySummary, RemedyView, Verification,
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
        return Err(Error::State {
            message: format!(
                "{}: no results.json: not a run folder with a measured run",
                results_path.display()
            ),
            fix: "pass --in the folder `crmbench run --out DIR` wrote (default reports/latest)"
                .into(),
        });
    }
    let run = RunFolder::open(folder)?;
    let results: Results = run.read()?;
    let plans: Option<PlansFile> = run.read_optional()?;
    let advice: Option<Advice> = run.read_optional()?;
    let advice = advice.map(|a| advice_view(folder, &a)).transpose()?;
    Ok(ReportModel {
        folder: folder.display().to_string(),
        environment: environment(&results),
        queries: query_summaries(&results, &results_path)?,
        interval_seconds: results.driver.interval_seconds,
        plans_rls: plans.as_ref().is_some_and(|p| p.rls),
        plans: plans.map(|p| findings_view(&p)),
        advice,
        replication: results.replication.clone(),
        rehearsal: run.read_optional()?,
        retention: run.read_optional()?,
        paired: paired::view(&results_path, &results)?,
    })
}

/// Write the chosen formats into `folder` (through its writer: atomic, with
/// its modes); returns the files written.
pub fn write(folder: &RunFolder, model: &ReportModel, formats: &[Format]) -> Result<Vec<PathBuf>> {
    let plots = plots::render_all(model)?;
    let mut written = Vec::new();
    for format in formats {
        match format {
            Format::Html => {
                written.push(folder.write_text("report.html", &html::render(model, &plots))?);
            }
            Format::Markdown => {
                folder.create_dir(FILES_DIR)?;
                for p in &plots {
                    folder.write_text(Path::new(FILES_DIR).join(&p.file_name), &p.svg)?;
                }
                written.push(folder.write_text("report.md", &markdown::render(model, &plots))?);
            }
            Format::Json => written.push(folder.write(&json::summary(model))?),
        }
    }
    Ok(written)
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
    if let Some(reason) = &r.stats_missing {
        warnings.insert(0, stats_missing_text(reason));
    }
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
        started_at: to_the_second(&r.started_at),
        ended_at: to_the_second(&r.ended_at),
        measured_seconds: r.measured_seconds,
        partial: r.partial.clone(),
        stats_missing: r.stats_missing.clone(),
        warnings,
    }
}

/// An RFC 3339 timestamp to the second (`2026-11-25T23:45:41Z`): the
/// nanoseconds results.json keeps are noise to a reader. Text that is not a
/// timestamp is shown as it is.
pub fn to_the_second(stamp: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(stamp).map_or_else(
        |_| stamp.to_string(),
        |t| {
            t.with_timezone(&chrono::Utc)
                .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        },
    )
}

/// What the report says where the server's statistics are missing.
pub fn stats_missing_text(reason: &str) -> String {
    format!(
        "the server's statistics are missing ({reason}): index usage and statement \
         statistics were not measured, and no index is called unused"
    )
}

fn decode(text: &str, path: &Path, what: &str) -> Result<crate::stats::Hist> {
    crate::stats::decode(text).map_err(|e| Error::RunFile {
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
            trees: plan_trees(q, p.rls),
        })
        .collect()
}

/// Every statement's tree per tenant class, numbered from 1 as `explain`
/// numbers statements; a statement without a plan shows its error or shape.
fn plan_trees(q: &crate::explain::QueryPlans, rls: bool) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for t in &q.tenants {
        for s in &t.statements {
            let label = if rls {
                format!(
                    "{} tenant, statement {}",
                    t.class,
                    s.index.saturating_add(1)
                )
            } else {
                format!("statement {}", s.index.saturating_add(1))
            };
            let text = match (&s.plan, &s.error) {
                (Some(e), _) => e.plan.tree_text(),
                (None, Some(err)) => format!("not explained: {err}\n"),
                (None, None) => format!("{}\n", s.shape),
            };
            out.push((label, text));
        }
    }
    out
}

fn finding_view(f: &crate::explain::findings::Finding) -> FindingView {
    FindingView {
        kind: f.kind.name().to_string(),
        node: f.node.clone(),
        hint: f.hint.clone(),
    }
}

/// Only the fields the report shows are read here, in one place, so fields
/// added to advice.json later change nothing in the writers.
fn advice_view(folder: &Path, a: &Advice) -> Result<AdviceView> {
    let indexes = index_views(&folder.join("advice.json"), a)?;
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
        .map(|r| RemedyView {
            query: r.query.clone(),
            change: r.change.clone(),
            effect: r.effect(),
            gain: r.shows_gain(),
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
        explanations: explanations(a),
    })
}

/// Each query's explanation as advice.json holds it; an advice.json written
/// before explanations existed gets them now (they derive from the advice
/// alone, so the answer is the one `advise` would have written).
fn explanations(a: &crate::advise::Advice) -> Vec<(String, String)> {
    let derived;
    let list = if a.explanations.is_empty() {
        derived = crate::advise::reasons::explain(a);
        &derived
    } else {
        &a.explanations
    };
    list.iter()
        .map(|e| (e.query.clone(), e.text.clone()))
        .collect()
}

/// The chosen indexes, each with the cost ratio it was predicted to bring
/// (the verified one, else its step in the greedy selection) and its
/// measured verification.
fn index_views(path: &Path, a: &Advice) -> Result<Vec<IndexView>> {
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
            .map(|v| verification_view(path, &name, v))
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
    Ok(indexes)
}

/// One index's paired verification, its histograms decoded.
fn verification_view(
    path: &Path,
    name: &str,
    v: &crate::advise::verify::Verified,
) -> Result<Verification> {
    let measured = v
        .measured
        .iter()
        .map(|m| {
            let what = format!("index {name}, query {}", m.query);
            Ok(MeasuredView {
                query: m.query.clone(),
                p50: m.p50,
                p95: m.p95,
                before: decode(&m.baseline_histogram, path, &what)?,
                after: decode(&m.candidate_histogram, path, &what)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Verification {
        kept: v.kept,
        reason: v.reason.clone(),
        measured,
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

    /// An advice.json written without explanations (the fixture's were
    /// removed) gets them from the advice itself, the same as `advise` writes.
    #[test]
    fn explanations_missing_from_advice_json_are_derived() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/advise-reverted/advice.json");
        let advice: crate::advise::Advice =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        assert!(advice.explanations.is_empty());
        let derived = explanations(&advice);
        let expected: Vec<(String, String)> = crate::advise::reasons::explain(&advice)
            .into_iter()
            .map(|e| (e.query, e.text))
            .collect();
        assert!(!derived.is_empty());
        assert_eq!(derived, expected);
    }

    /// Issue 21 item 3: report.html, report.md, report.json and the SVGs
    /// were written world-readable; they go through the run folder's writer.
    #[test]
    fn report_files_take_the_folders_access() {
        use crate::runfolder::Access;
        use std::os::unix::fs::PermissionsExt;
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/complete");
        for (access, dir_mode, file_mode) in [
            (Access::Private, 0o700, 0o600),
            (Access::Shareable, 0o755, 0o644),
        ] {
            let tmp = tempfile::tempdir().unwrap();
            for name in ["results.json", "plans.json", "advice.json"] {
                std::fs::copy(fixture.join(name), tmp.path().join(name)).unwrap();
            }
            let model = load(tmp.path()).unwrap();
            let folder = RunFolder::open(tmp.path()).unwrap().with_access(access);
            let written = write(&folder, &model, &Format::ALL).unwrap();
            assert_eq!(written.len(), 3);
            for path in &written {
                assert_eq!(mode(path), file_mode, "{}", path.display());
            }
            let svgs = tmp.path().join(FILES_DIR);
            assert_eq!(mode(&svgs), dir_mode);
            let mut n = 0;
            for entry in std::fs::read_dir(&svgs).unwrap() {
                assert_eq!(mode(&entry.unwrap().path()), file_mode);
                n += 1;
            }
            assert!(n > 0, "no SVG written");
        }
    }

    /// Issue 16 items 11 and 12 on the fixture folder: timestamps to the
    /// second, p50 and p95 each in their own column with a verdict free of
    /// figures, every heading after a table on its own, plan trees behind a
    /// `<details>`.
    #[test]
    fn the_reports_small_truths() {
        let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/complete");
        let model = load(&fixture).unwrap();
        assert_eq!(model.environment.started_at, "2026-11-30T23:22:46Z");
        assert_eq!(to_the_second("not a time"), "not a time");
        let md = markdown::render(&model, &[]);
        assert!(!md.contains(".101606436"), "{md}");
        assert!(
            md.contains("| measured p50 after/before | measured p95 after/before | verdict |"),
            "{md}"
        );
        let verdicts: Vec<&str> = md
            .lines()
            .filter(|l| l.starts_with("| `") && (l.contains("kept") || l.contains("reverted")))
            .map(|l| l.rsplit('|').nth(1).unwrap_or(""))
            .collect();
        assert!(!verdicts.is_empty(), "{md}");
        for v in verdicts {
            assert!(!v.contains('×'), "a figure in the verdict column: {v}");
        }
        assert!(!md.contains("|\n## "), "a heading joined to a table:\n{md}");
        let html = html::render(&model, &[]);
        assert!(html.contains("<h3>Plan trees</h3>"), "{html}");
        assert!(html.contains("<details><summary>customer_360 (2 plans)</summary>"));
        assert!(html.contains("<b>big tenant, statement 1</b>"));
        // The plan shapes of plans_differ are behind a <details> too.
        assert!(html.contains("<details><summary>the tenants get different plans"));
    }
}
