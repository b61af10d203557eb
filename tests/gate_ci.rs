//! examples/ci/gate.sh (what action.yml runs) on a fixture application that
//! is not the CRM and has no Cargo.toml: fixtures/ci-app holds its seed
//! script, two migration folders and its workload. With crmbench and
//! PostgreSQL already there (CRMBENCH_BIN, SKIP_INSTALL=1), the script loads
//! the data through --dataset-cmd, clones it, applies the migrations to the
//! clone and runs the sequential paired gate: a harmless migration passes
//! (exit 0) and one that drops the index of a lookup fails it (exit 1),
//! naming the query. The first run saves its data to a --dataset-cache
//! file (a pg_dump), the second restores it from there, as a CI job after
//! a cache hit does.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;

fn gate(migrations: &str, extra: &[&str]) -> (i32, String, tempfile::TempDir) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let app = root.join("fixtures/ci-app");
    let out = tempfile::tempdir().unwrap();
    let seed = format!(
        "psql \"$DATABASE_URL\" -q -v ON_ERROR_STOP=1 -f '{}'",
        app.join("seed.sql").display()
    );
    let output = Command::new("bash")
        .arg(root.join("examples/ci/gate.sh"))
        .args(["--workload", app.join("workload.toml").to_str().unwrap()])
        .args(["--migrations", app.join(migrations).to_str().unwrap()])
        .args(["--dataset-cmd", &seed])
        .args(["--min-duration", "10s", "--max-duration", "40s"])
        .args(["--look-every", "5s", "--clients", "2", "--metric", "p50"])
        .args(extra)
        .arg("--out")
        .arg(out.path())
        // The application's own folder, not crmbench's checkout.
        .current_dir(&app)
        .env("CRMBENCH_BIN", env!("CARGO_BIN_EXE_crmbench"))
        .env("SKIP_INSTALL", "1")
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("GITHUB_STEP_SUMMARY")
        .env_remove("DATABASE_URL")
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.code().unwrap_or(-1), text, out)
}

#[test]
fn the_ci_script_passes_a_harmless_migration_and_fails_one_that_drops_an_index() {
    assert!(
        !Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("fixtures/ci-app/Cargo.toml")
            .exists()
    );
    let cache = tempfile::tempdir().unwrap();
    let dump = cache.path().join("data.dump");
    let dump = dump.to_str().unwrap();
    // Harmless: a nullable column. Threshold 20%: a 40 s run decides the
    // medians within it on a CI runner.
    let (code, text, out) = gate(
        "migrations",
        &["--threshold", "20%", "--dataset-cache", dump],
    );
    assert_eq!(code, 0, "{text}");
    assert!(text.contains("the data saved to the cache"), "{text}");
    assert!(text.contains("crmbench compare: PASS"), "{text}");
    let report = std::fs::read_to_string(out.path().join("report.md")).unwrap();
    assert!(report.contains("Gate verdict: PASS"), "{report}");

    // item_by_sku loses its index: the gate fails and names it.
    let (code, text, _out) = gate("migrations-slow", &["--dataset-cache", dump]);
    assert_eq!(code, 1, "{text}");
    assert!(text.contains("the data restored from the cache"), "{text}");
    assert!(text.contains("item_by_sku: p50 regression"), "{text}");
    assert!(!text.contains("item_by_id: p50 regression"), "{text}");
}
