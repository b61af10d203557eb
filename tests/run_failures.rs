//! Nothing lost, nothing silently wrong: Ctrl-C writes the results gathered
//! so far (marked partial, exit 2); a killed backend is counted under its own
//! code and the client reconnects and carries on.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Command, Stdio};
use std::time::Duration;

use crmbench::pg;
use crmbench::results::Results;
use crmbench::runfolder::read_file;

async fn dataset(db: &str) {
    common::generated(db, 0.002, 5).await;
}

fn spawn_run(db: &str, out: &std::path::Path, seconds: &str) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args([
            "--database",
            db,
            "run",
            "--duration",
            seconds,
            "--warmup",
            "0s",
            "--clients",
            "4",
            "-q",
        ])
        .arg("--out")
        .arg(out)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

#[tokio::test]
async fn ctrl_c_writes_partial_results() {
    dataset("fail_ctrlc").await;
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run("fail_ctrlc", dir.path(), "60s");
    tokio::time::sleep(Duration::from_secs(3)).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("ended early"), "{stderr}");
    let r: Results = read_file(dir.path()).unwrap();
    assert_eq!(r.partial.as_deref(), Some("interrupted (Ctrl-C)"));
    assert!(r.queries.iter().map(|q| q.baseline.count).sum::<u64>() > 100);
    assert!(r.measured_seconds < 30.0);
}

#[tokio::test]
async fn a_killed_backend_is_counted_and_the_client_reconnects() {
    dataset("fail_kill").await;
    let dir = tempfile::tempdir().unwrap();
    let child = spawn_run("fail_kill", dir.path(), "6s");
    let target = crmbench::pg::Target::private(common::cluster().server.clone());
    let admin = pg::connect(&target.admin_to("postgres")).await.unwrap();
    // Kill only once the clients are replaying (their last statement is a
    // transaction's COMMIT): a fixed sleep can land in the start-up (workload
    // check, parameter sampling), whose connections are not the clients'.
    for _ in 0..60 {
        let busy: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = 'fail_kill' AND usename = 'crmbench_app' AND query = 'COMMIT'",
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if busy >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let killed = admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = 'fail_kill' AND usename = 'crmbench_app'",
            &[],
        )
        .await
        .unwrap();
    assert!(!killed.is_empty(), "no benchmark backend to kill");
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    let r: Results = read_file(dir.path()).unwrap();
    assert!(r.partial.is_none(), "{:?} {stderr}", r.partial);
    let lost: u64 = r
        .queries
        .iter()
        .map(|q| {
            q.baseline
                .errors
                .get("crmbench:connection_lost")
                .copied()
                .unwrap_or(0)
                + q.baseline.errors.get("57P01").copied().unwrap_or(0)
        })
        .sum();
    assert!(
        lost >= 1,
        "the killed connections were not counted: {:?} {stderr}",
        r.queries
            .iter()
            .map(|q| (&q.name, &q.baseline.errors))
            .collect::<Vec<_>>()
    );
    // Clients reconnected: transactions kept completing after the kill.
    let late: u64 = r
        .queries
        .iter()
        .flat_map(|q| {
            q.baseline
                .intervals
                .iter()
                .filter(|i| i.t > 3.5)
                .map(|i| i.count)
        })
        .sum();
    assert!(late > 50, "only {late} transactions after the kill");
}
