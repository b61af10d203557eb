//! `report --in` of a paired run folder (issue 12, item 6): the opening
//! section is the gate's verdict on the candidate, per query and tenant
//! class, in every format, and it agrees with `compare` on the same file.
//! The fixture (fixtures/runs/paired) is the folder tests/gate_classes.rs
//! measured: a candidate that costs the big tenants 2 ms. No database.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use assert_cmd::Command;

fn folder() -> (tempfile::TempDir, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("paired");
    std::fs::create_dir_all(&dir).unwrap();
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("fixtures/runs/paired/results.json");
    std::fs::copy(fixture, dir.join("results.json")).unwrap();
    (tmp, dir)
}

fn crmbench() -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    // No database is needed: point everything at nowhere to prove it.
    cmd.env("DATABASE_URL", "postgresql://nobody@127.0.0.1:9/none");
    cmd
}

#[test]
fn a_paired_folder_opens_with_the_gate_verdict_in_every_format() {
    let (_tmp, dir) = folder();
    crmbench()
        .args(["report", "--format", "html,markdown,json", "--in"])
        .arg(&dir)
        .assert()
        .success();
    let md = std::fs::read_to_string(dir.join("report.md")).unwrap();
    let lead = md.split("## What to do\n\n").nth(1).unwrap();
    let lead = lead.split("\n## ").next().unwrap();
    assert!(
        lead.starts_with("**Gate verdict: FAIL — candidate vs baseline"),
        "{lead}"
    );
    assert!(
        lead.contains("- customer_by_email [big tenants]: p95 regression"),
        "{lead}"
    );
    assert!(
        lead.contains("| ↳ big tenants (5591 pairs) | p95 2.04 | p95 4.70 |"),
        "{lead}"
    );
    assert!(lead.contains("| customer_by_email | 0.41 / 1.85 / 4.37 | 0.44 / 2.88 / 4.88 |"));
    // The advisor's summary is not there too: one opening section, not two.
    assert!(!md.contains("Nothing to do"), "{md}");
    // Then the before/after spectra, linked from the section and written.
    assert!(
        lead.contains("### Percentile spectra, before and after\n\n![customer_by_email: baseline and candidate by percentile](report-files/paired-01-customer_by_email.svg)"),
        "{lead}"
    );
    let svg =
        std::fs::read_to_string(dir.join("report-files/paired-01-customer_by_email.svg")).unwrap();
    assert!(
        svg.contains("baseline (") && svg.contains("candidate, p95 ×"),
        "{svg}"
    );

    let html = std::fs::read_to_string(dir.join("report.html")).unwrap();
    let first = html.split("<section id=\"").nth(1).unwrap();
    assert!(first.starts_with("what-to-do\">"), "{first}");
    let first = first.split("</section>").next().unwrap();
    assert!(first.contains("Gate verdict: FAIL — candidate vs baseline"));
    assert!(
        first.contains("<td class=\"v-fail\">REGRESSION</td>"),
        "{first}"
    );
    // The spectra are drawn inside the opening section, inlined.
    let spectra = first
        .split("Percentile spectra, before and after")
        .nth(1)
        .unwrap();
    assert!(
        spectra.contains(
            "<figure aria-label=\"customer_by_email: baseline and candidate by percentile\"><svg"
        ),
        "{spectra}"
    );

    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("report.json")).unwrap()).unwrap();
    assert_eq!(json["gate"]["verdict"], "fail");
    assert_eq!(json["gate"]["classes"][0]["class"], "big");
    assert_eq!(json["gate"]["classes"][0]["verdict"], "regression");

    // `compare` on the same file gives the same verdict (exit 1).
    let out = crmbench()
        .arg("compare")
        .arg(dir.join("results.json"))
        .assert()
        .code(1);
    let text = String::from_utf8_lossy(&out.get_output().stdout).to_string();
    assert!(
        text.contains("customer_by_email [big tenants]: p95 regression"),
        "{text}"
    );
}

/// `gate = false` in the workload reaches results.json as `"gate": false`:
/// `compare` reports the query and its classes as not gated (here the only
/// query, so nothing is left to decide: exit 2), instead of failing on them.
#[test]
fn a_query_marked_gate_false_is_not_judged() {
    let (_tmp, dir) = folder();
    let path = dir.join("results.json");
    let mut json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    json["queries"][0]["gate"] = serde_json::Value::Bool(false);
    std::fs::write(&path, serde_json::to_string(&json).unwrap()).unwrap();
    let out = crmbench()
        .args(["compare", "--format", "json"])
        .arg(&path)
        .assert()
        .code(2);
    let c: serde_json::Value = serde_json::from_slice(&out.get_output().stdout).unwrap();
    assert_eq!(c["queries"][0]["verdict"], "not_gated");
    assert_eq!(c["classes"][0]["verdict"], "not_gated");
    assert_eq!(c["verdict"], "undecidable", "{c}");
}
