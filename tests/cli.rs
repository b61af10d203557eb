//! The binary as users run it: exit codes, the text they see, the private
//! server's life cycle, run from a 0700 folder (as a CI checkout is).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command as StdCommand;

use assert_cmd::Command;
use predicates::prelude::*;

fn crmbench(base: &Path, port: u16, cwd: &Path) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").expect("binary");
    cmd.current_dir(cwd)
        .env("CRMBENCH_DATA_DIR", base)
        .env("CRMBENCH_PG_PORT", port.to_string())
        .env_remove("DATABASE_URL")
        .env_remove("CRMBENCH_PG_BINDIR");
    cmd
}

/// A temporary folder with mode 0700, as `mktemp -d` makes.
fn private_dir() -> tempfile::TempDir {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

fn psql_select_1(url: &str) -> String {
    let out = StdCommand::new("psql")
        .args([url, "-tAc", "select 1"])
        .output()
        .expect("psql runs");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[test]
fn private_server_life_cycle_from_a_0700_folder() {
    let base = common::scratch_base("cli");
    let port = common::free_port();
    let cwd = private_dir(); // like the `mktemp -d` checkout CI runs in
    let run = || crmbench(&base, port, cwd.path());

    run()
        .args(["pg", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("not created"));
    run()
        .args(["pg", "start"])
        .assert()
        .success()
        .stdout(predicate::str::contains("initialised and started"))
        .stdout(predicate::str::contains(format!("port {port}")));
    run()
        .args(["pg", "start"])
        .assert()
        .success()
        .stdout(predicate::str::contains("already running; reused"));

    let url = String::from_utf8(run().args(["pg", "url"]).output().unwrap().stdout).unwrap();
    assert!(url.contains("crmbench_admin@"), "{url}");
    assert_eq!(psql_select_1(url.trim()), "1");
    let app_url =
        String::from_utf8(run().args(["pg", "url", "--app"]).output().unwrap().stdout).unwrap();
    assert!(app_url.contains("crmbench_app@"), "{app_url}");
    assert_eq!(psql_select_1(app_url.trim()), "1");

    run()
        .args(["schema", "create"])
        .assert()
        .success()
        .stdout(predicate::str::contains("row-level security forced"));
    let show = run().args(["schema", "show"]).output().unwrap();
    assert!(show.status.success());
    let show = String::from_utf8(show.stdout).unwrap();
    let forced = show
        .lines()
        .filter(|l| l.contains("forced, 1 pol."))
        .count();
    assert!(
        forced >= 17,
        "only {forced} tables with forced RLS:\n{show}"
    );
    assert!(show.contains("multi-tenant rules: all hold"), "{show}");

    run()
        .args(["pg", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("running"))
        .stdout(predicate::str::contains("fsync"))
        .stdout(predicate::str::contains("shared_preload_libraries"));
    run()
        .args(["pg", "stop"])
        .assert()
        .success()
        .stdout(predicate::str::contains("stopped"));
    run()
        .args(["pg", "status"])
        .assert()
        .success()
        .stdout(predicate::str::contains("stopped"));

    // A stale postmaster.pid (a crash, a reboot) does not block the next start.
    let dead = StdCommand::new("true").spawn().unwrap();
    let dead_pid = dead.id();
    let mut dead = dead;
    dead.wait().unwrap();
    let pidfile = base.join("data/postmaster.pid");
    std::fs::write(
        &pidfile,
        format!(
            "{dead_pid}\n{}\n1700000000\n{port}\n\n\n",
            base.join("data").display()
        ),
    )
    .unwrap();
    run()
        .args(["pg", "start"])
        .assert()
        .success()
        .stdout(predicate::str::contains("started"));
    assert_eq!(psql_select_1(url.trim()), "1");
    run().args(["pg", "stop"]).assert().success();
}

#[test]
fn errors_exit_2_with_one_clear_line() {
    let base = common::scratch_base("clierr");
    let cwd = tempfile::tempdir().unwrap();
    let port = common::free_port();
    let run = || crmbench(&base, port, cwd.path());

    // Passwords never reach the terminal.
    run()
        .args([
            "--database-url",
            "postgres://u:s3cretpw@127.0.0.1:1/x",
            "schema",
            "show",
        ])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("s3cretpw").not())
        .stderr(predicate::str::contains("postgres://u:***@127.0.0.1:1/x"))
        .stderr(predicate::str::contains("fix:"));

    // Missing binaries name the program and the fix.
    run()
        .args(["--pg-bindir", "/nonexistent/bin", "pg", "start"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("initdb"))
        .stderr(predicate::str::contains("--pg-bindir"));

    // crmbench never manages a server it did not start.
    run()
        .args(["--database-url", "postgres://u@127.0.0.1:1/x", "pg", "stop"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("never starts, stops"));

    run().args(["pg", "url"]).assert().code(2).stderr(
        predicate::str::contains("no private server").and(predicate::str::contains("pg start")),
    );
    run().args(["frobnicate"]).assert().code(2);
    run().arg("--help").assert().success();
}

#[test]
fn help_shows_connection_options_apart_and_only_where_a_database_is_opened() {
    let cwd = tempfile::tempdir().unwrap();
    let help = |args: &[&str]| {
        let out = Command::cargo_bin("crmbench")
            .unwrap()
            .current_dir(cwd.path())
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    for command in ["report", "compare"] {
        let text = help(&[command, "--help"]);
        assert!(!text.contains("--database-url"), "{command}:\n{text}");
        assert!(!text.contains("Connection options"), "{command}:\n{text}");
    }
    let run = help(&["run", "--help"]);
    let (own, connection) = run
        .split_once("\nConnection options:\n")
        .unwrap_or_else(|| panic!("no connection heading:\n{run}"));
    assert!(connection.contains("--database-url"), "{run}");
    assert!(!own.contains("--database-url"), "{run}");
    assert!(own.contains("--workload"), "{run}");

    // Hidden is not refused: a script passing the URL to every command works,
    // before or after the command's name.
    for args in [
        ["report", "--database-url", "postgres://u@127.0.0.1:1/x"],
        ["--database-url", "postgres://u@127.0.0.1:1/x", "report"],
    ] {
        Command::cargo_bin("crmbench")
            .unwrap()
            .current_dir(cwd.path())
            .args(args)
            .args(["--in", "missing"])
            .assert()
            .code(2)
            .stderr(predicate::str::contains("no results.json"));
    }
}

#[test]
fn as_root_a_data_dir_the_server_user_cannot_reach_is_refused() {
    if !nix::unistd::geteuid().is_root() {
        eprintln!("skipped: only meaningful as root");
        return;
    }
    let locked = private_dir(); // owned by root
    let cwd = tempfile::tempdir().unwrap();
    let base = locked.path().join("cluster");
    crmbench(&base, common::free_port(), cwd.path())
        .args(["pg", "start"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains("cannot enter"))
        .stderr(predicate::str::contains("--data-dir"));
    assert!(!base.exists(), "nothing should have been created");
}
