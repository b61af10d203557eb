//! `crmbench demo` as a user runs it, at a tiny scale: every file the issue
//! names lands in the run folder, the report is self-contained, the user's
//! `crmbench` database is left alone (the demo fills `crmbench_demo`), and the
//! closing lines name report.html and the findings to read first.

#![allow(clippy::unwrap_used)]

mod common;

use assert_cmd::Command;

#[test]
fn demo_writes_every_output_into_one_folder() {
    let cluster = common::cluster();
    let out = tempfile::tempdir().unwrap();
    let cwd = tempfile::tempdir().unwrap();
    let assert = Command::cargo_bin("crmbench")
        .unwrap()
        .current_dir(cwd.path())
        .env("CRMBENCH_DATA_DIR", &cluster.base)
        .env("CRMBENCH_PG_PORT", cluster.server.port().to_string())
        .env_remove("DATABASE_URL")
        .env_remove("CRMBENCH_DATABASE")
        .args([
            "demo",
            "--scale",
            "0.001",
            "--duration",
            "3s",
            "--verify-duration",
            "2s",
        ])
        .arg("--out")
        .arg(out.path())
        .assert()
        .success();
    let stdout = String::from_utf8_lossy(&assert.get_output().stdout).to_string();
    for file in [
        "report.html",
        "report.md",
        "report.json",
        "results.json",
        "plans.json",
        "advice.json",
        "migration.sql",
        "rollback.sql",
        "remedies.sql",
        "prisma/indexes.prisma",
    ] {
        assert!(out.path().join(file).is_file(), "{file} missing");
    }
    let html = std::fs::read_to_string(out.path().join("report.html")).unwrap();
    assert!(html.contains("<svg"), "no inline SVG");
    assert!(!html.contains("src=\"http") && !html.contains("href=\"http"));
    assert!(
        stdout.contains(&out.path().join("report.html").display().to_string()),
        "{stdout}"
    );
    assert!(stdout.contains("Read first:\n  1. "), "{stdout}");
    // The demo filled its own database, not the default one.
    let target = crmbench::pg::Target::private(cluster.server.clone());
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let customers: i64 = runtime.block_on(async {
        let admin = crmbench::pg::connect(&target.admin_to("crmbench_demo"))
            .await
            .unwrap();
        admin
            .query_one("SELECT count(*) FROM crm.customers", &[])
            .await
            .unwrap()
            .get(0)
    });
    assert!(customers > 0, "crmbench_demo has no customers");
}
