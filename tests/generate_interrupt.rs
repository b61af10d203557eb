//! An interrupted load (a killed backend, Ctrl-C) exits non-zero with the
//! cause, leaves the dataset marked incomplete, and the next `generate` says so.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crmbench::pg::{self, Target};
use crmbench::schema::{self, Ownership};

fn crmbench(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(args);
    cmd
}

fn spawn_generate(db: &str, replace: bool) -> Child {
    let mut args = vec![
        "--database",
        db,
        "generate",
        "--scale",
        "0.05",
        "--seed",
        "3",
    ];
    if replace {
        args.push("--replace");
    }
    crmbench(&args)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until a COPY runs in `db`; a `generate` that ended first fails the
/// test with its own error rather than a timeout.
async fn wait_for_copy(target: &Target, db: &str, child: &mut Child) {
    let admin = pg::connect(&target.admin_to("postgres")).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let n: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'COPY%'",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if n > 0 {
            return;
        }
        if let Some(status) = child.try_wait().unwrap() {
            let mut stderr = String::new();
            if let Some(mut e) = child.stderr.take() {
                std::io::Read::read_to_string(&mut e, &mut stderr).unwrap();
            }
            panic!("generate ended ({status}) before a COPY was seen: {stderr}");
        }
        assert!(Instant::now() < deadline, "no COPY started in {db}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn finish(child: Child) -> (Option<i32>, String) {
    let out = child.wait_with_output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn marker(target: &Target) -> Ownership {
    let client = pg::connect(&target.admin()).await.unwrap();
    schema::ownership(&client).await.unwrap()
}

#[tokio::test]
async fn killed_backend_and_ctrl_c_leave_an_incomplete_dataset() {
    let db = "gen_interrupt";
    let target = Target::private(common::cluster().server.clone()).on_database(db);

    // A backend killed mid-COPY.
    let mut child = spawn_generate(db, false);
    wait_for_copy(&target, db, &mut child).await;
    pg::connect(&target.admin_to("postgres"))
        .await
        .unwrap()
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND pid <> pg_backend_pid()",
            &[&db],
        )
        .await
        .unwrap();
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("error:"), "{stderr}");
    assert!(matches!(
        marker(&target).await,
        Ownership::Ours {
            complete: false,
            ..
        }
    ));

    // The next generate names the problem and the flag.
    let out = crmbench(&[
        "--database",
        db,
        "generate",
        "--scale",
        "0.05",
        "--seed",
        "3",
    ])
    .output()
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("INCOMPLETE"), "{stderr}");
    assert!(stderr.contains("--replace"), "{stderr}");

    // Ctrl-C during the load.
    let mut child = spawn_generate(db, true);
    wait_for_copy(&target, db, &mut child).await;
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let (code, stderr) = finish(child);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("interrupted"), "{stderr}");
    assert!(matches!(
        marker(&target).await,
        Ownership::Ours {
            complete: false,
            ..
        }
    ));
}
