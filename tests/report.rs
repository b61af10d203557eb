//! `crmbench report` as users run it, without any database: fixture run
//! folders (made by the real pipeline, see scripts/make-report-fixtures.sh)
//! copied to a temp dir, report.md and report.json compared with golden files
//! under fixtures/golden/report/ (`UPDATE_GOLDEN=1` rewrites them), the HTML
//! checked for structure and self-containment, and the errors a user sees.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;
use predicates::prelude::*;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let path = entry.unwrap().path();
        let dest = to.join(path.file_name().unwrap());
        if path.is_dir() {
            copy_dir(&path, &dest);
        } else {
            std::fs::copy(&path, &dest).unwrap();
        }
    }
}

/// A copy of fixtures/runs/NAME in a temp dir (the report writes into it).
fn fixture(name: &str) -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join(name);
    copy_dir(&root().join("fixtures/runs").join(name), &dir);
    (tmp, dir)
}

fn report(dir: &Path) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    // No database is needed: point everything at nowhere to prove it.
    cmd.args(["report", "--in"])
        .arg(dir)
        .env("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none")
        .env("CRMBENCH_DATA_DIR", dir.join("no-server-here"));
    cmd
}

fn golden(name: &str, actual: &str) {
    let path = root().join("fixtures/golden/report").join(name);
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, actual).unwrap();
        return;
    }
    let expected = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{}: {e} (UPDATE_GOLDEN=1 creates it)", path.display()));
    if expected != actual {
        let line = expected
            .lines()
            .zip(actual.lines())
            .position(|(a, b)| a != b)
            .map_or(expected.lines().count().min(actual.lines().count()), |i| i);
        panic!(
            "{} differs from the output at line {}:\n expected: {:?}\n   actual: {:?}\n(UPDATE_GOLDEN=1 rewrites it after a deliberate change)",
            path.display(),
            line + 1,
            expected.lines().nth(line),
            actual.lines().nth(line)
        );
    }
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap()
}

/// Structure a reader relies on, and nothing that could reach the network.
fn assert_html_structure(html: &str, svgs: usize) {
    // The answer first (issue 16 item 9); the environment is the appendix.
    let at = |id: &str| html.find(&format!("<section id=\"{id}\">")).unwrap();
    assert!(at("what-to-do") < at("summary"));
    assert!(at("drops") < at("environment"));
    for id in [
        "what-to-do",
        "environment",
        "summary",
        "latency",
        "over-time",
        "findings",
        "indexes",
        "migration",
        "prisma",
        "drops",
    ] {
        assert!(
            html.contains(&format!("<section id=\"{id}\">")),
            "section {id} missing"
        );
    }
    assert_eq!(html.matches("<svg").count(), svgs, "number of inline SVGs");
    assert_eq!(html.matches("</svg>").count(), svgs);
    let lower = html.to_ascii_lowercase();
    for attr in ["src=", "href="] {
        for (i, _) in lower.match_indices(attr) {
            let value = lower[i + attr.len()..].trim_start_matches(['"', '\'']);
            assert!(
                !value.starts_with("http:")
                    && !value.starts_with("https:")
                    && !value.starts_with("//"),
                "remote {attr} at byte {i}"
            );
        }
    }
    assert!(!lower.contains("<script"), "a script in the report");
    assert!(!lower.contains("<link"), "a <link> in the report");
    assert!(!lower.contains("@import"), "a CSS import in the report");
    assert!(lower.contains("@media print"), "print styles");
}

#[test]
fn complete_folder_matches_the_golden_markdown_and_json() {
    let (_tmp, dir) = fixture("complete");
    report(&dir)
        .assert()
        .success()
        .stdout(predicate::str::contains("report.html"));
    golden("complete.md", &read(&dir.join("report.md")));
    golden("complete.json", &read(&dir.join("report.json")));

    let md = read(&dir.join("report.md"));
    // Every plot the Markdown links to was written beside it.
    let mut linked = 0;
    for (i, _) in md.match_indices("](report-files/") {
        let rest = &md[i + 2..];
        let file = &rest[..rest.find(')').unwrap()];
        assert!(dir.join(file).is_file(), "{file} linked but not written");
        linked += 1;
    }
    // 8 queries, throughput, p99 over time, 2 verified indexes.
    assert_eq!(linked, 12);
    assert!(
        !md.contains("not captured"),
        "a complete folder misses nothing"
    );
    // Every query says what the advisor did for it (issue 16's Done-when);
    // the fixture's verify kept both indexes, each said so with its measure.
    assert!(
        !md.contains("not explained"),
        "a query without its explanation"
    );
    assert!(md.contains("got ≥10% faster at p50 (the whole interval)"));
    // Measured remedies for the RLS findings, with their SQL.
    assert!(md.contains("### Remedies"), "no remedies section");
    assert!(md.contains("last_name_lower"), "remedies.sql not shown");
}

#[test]
fn complete_folder_html_is_self_contained_with_every_section_and_plot() {
    let (_tmp, dir) = fixture("complete");
    report(&dir).args(["--format", "html"]).assert().success();
    assert!(!dir.join("report.md").exists(), "only the format asked for");
    let html = read(&dir.join("report.html"));
    assert_html_structure(&html, 12);
    assert!(
        html.contains("fsync was off"),
        "the fsync warning is visible"
    );
    assert!(html.contains("rls_non_leakproof"), "RLS findings are shown");
    assert!(html.contains("CREATE INDEX CONCURRENTLY IF NOT EXISTS"));
    assert!(html.contains("@@index"), "the Prisma lines are shown");
    assert!(html.contains("DROP INDEX CONCURRENTLY"));
}

#[test]
fn results_only_folder_says_not_captured_instead_of_failing() {
    let (_tmp, dir) = fixture("results-only");
    report(&dir).assert().success();
    golden("results-only.md", &read(&dir.join("report.md")));
    golden("results-only.json", &read(&dir.join("report.json")));
    let md = read(&dir.join("report.md"));
    assert!(md.contains("_not captured: no plans.json"));
    assert!(md.contains("_not captured: no advice.json"));
    let json: serde_json::Value = serde_json::from_str(&read(&dir.join("report.json"))).unwrap();
    assert_eq!(json["format_version"], 1);
    assert!(json["plans"].is_null() && json["advice"].is_null());
    assert_eq!(json["queries"].as_array().unwrap().len(), 8);
    assert_html_structure(&read(&dir.join("report.html")), 10);
}

#[test]
fn text_from_files_is_escaped_in_html_and_markdown() {
    let (_tmp, dir) = fixture("results-only");
    let path = dir.join("results.json");
    let text = read(&path).replace(
        "\"name\": \"customer_by_email\"",
        "\"name\": \"<script>alert('x')</script>|x\"",
    );
    std::fs::write(&path, text).unwrap();
    report(&dir).assert().success();
    let html = read(&dir.join("report.html"));
    assert!(!html.to_ascii_lowercase().contains("<script"));
    assert!(html.contains("&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;|x"));
    let md = read(&dir.join("report.md"));
    // Markdown's own escapes, not HTML entities (issue 16 item 12): every
    // `<` is backslash-escaped, so no renderer sees a tag.
    assert!(!md.replace("\\<", "").contains("<script"));
    assert!(md.contains("\\<script>alert('x')\\</script>\\|x"), "{md}");
    assert!(!md.contains("&#39;") && !md.contains("&gt;"));
}

#[test]
fn a_folder_without_results_is_an_error_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    report(tmp.path())
        .assert()
        .code(2)
        .stderr(predicate::str::contains("results.json").and(predicate::str::contains("fix:")));
}

#[test]
fn an_unknown_format_version_is_an_error_naming_the_file() {
    for file in ["results.json", "advice.json", "plans.json"] {
        let (_tmp, dir) = fixture("complete");
        let path = dir.join(file);
        let text = read(&path).replacen("\"format_version\": 1", "\"format_version\": 99", 1);
        std::fs::write(&path, text).unwrap();
        report(&dir)
            .assert()
            .code(2)
            .stderr(predicate::str::contains(file).and(predicate::str::contains("99")));
        assert!(!dir.join("report.html").exists(), "{file}: nothing written");
    }
}

#[test]
fn malformed_results_and_unknown_formats_are_refused() {
    let (_tmp, dir) = fixture("results-only");
    report(&dir)
        .args(["--format", "md,pdf"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "invalid value 'pdf' for '--format",
        ));
    std::fs::write(dir.join("results.json"), "{ not json").unwrap();
    report(&dir)
        .assert()
        .code(2)
        .stderr(predicate::str::contains("results.json"));
}
