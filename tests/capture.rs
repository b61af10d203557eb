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
    assert!(out.status.success(), "{stderr}");
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
    let stdout = ok(&crmbench(&["capture", "--out", file.to_str().unwrap()]));
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
            && text.contains("{ sample = \"crm.customers.email\" }"),
        "{text}"
    );
    // No frame statement became a query.
    assert!(!text.contains("set_config"), "{text}");
    let checked = crmbench(&["run", "--workload", file.to_str().unwrap(), "--check"]);
    ok(&checked);
}
