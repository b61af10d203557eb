//! `crmbench capture` on the private server after the built-in workload ran:
//! a file that `run --check` accepts, covering at least 95% of the
//! application role's execution time, with the tenant context read from the
//! RLS policies and every `$n` given a generator.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

const DB: &str = "capture_crm";

fn crmbench(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", DB])
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn capture_after_the_built_in_workload_replays() {
    let target = common::generated(DB, 0.002, 5).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("source");
    let workload = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/crm.toml");
    ok(&crmbench(&[
        "run",
        "--workload",
        workload,
        "--duration",
        "3s",
        "--warmup",
        "0s",
        "--clients",
        "2",
        "-q",
        "--out",
        run_dir.to_str().unwrap(),
    ]));

    let file = dir.path().join("captured.toml");
    let captured = crmbench(&[
        "capture",
        "--out",
        file.to_str().unwrap(),
        "--check-replay",
        "--replay-duration",
        "4s",
    ]);
    // Exit 1: some statement is outside the realism band (see below).
    assert!(
        matches!(captured.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&captured.stderr)
    );
    let stdout = String::from_utf8_lossy(&captured.stdout).into_owned();
    // The comparison goes to the test log: its figures are the realism check's.
    eprintln!("{stdout}");
    let coverage: f64 = stdout
        .split("coverage: ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(coverage >= 95.0, "{stdout}");
    assert!(stdout.contains("role crmbench_app"), "{stdout}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("tenant_setting = \"app.current_tenant_id\"")
            && text.contains("{ tenant = true }")
            // Which statements make the 95% varies run to run (the email
            // lookup takes 0.02 ms): some sampled column is always there.
            && text.contains("{ sample = \"crm."),
        "{text}"
    );
    // No frame statement became a query.
    assert!(!text.contains("set_config"), "{text}");
    let checked = crmbench(&["run", "--workload", file.to_str().unwrap(), "--check"]);
    ok(&checked);

    // --check-replay: one row per query written, compared by the server's
    // own figures. The driver draws queries by weight, so no statement's
    // share of calls may leave the ±2 pp band unless its transactions fail
    // (a snapshot matched by text instead of queryid counted the capture's
    // own check as replay calls: +7 pp).
    let queries = text.matches("[[query]]").count();
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('q') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(rows.len(), queries, "{stdout}");
    for row in rows {
        assert!(
            !row.contains("share of calls off")
                || row.contains("failed")
                || row.contains("never ran"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(" of {queries} statements within the realism band")),
        "{stdout}"
    );

    // --window: only what runs between the two snapshots counts. Nothing
    // of the application runs in this window, so there is nothing to
    // capture (everything since the reset would be captured without it).
    let windowed = crmbench(&["capture", "--out", file.to_str().unwrap(), "--window", "1s"]);
    let stderr = String::from_utf8_lossy(&windowed.stderr);
    assert!(!windowed.status.success(), "{stderr}");
    assert!(
        stderr.contains("first snapshot of pg_stat_statements taken")
            && stderr.contains("holds no statement of an application role"),
        "{stderr}"
    );
}
