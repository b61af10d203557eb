//! Databases crmbench makes for itself, and stop signals (issue 17, items 1,
//! 2, 8, 9): SIGTERM and SIGHUP stop `run --fresh` like Ctrl-C (partial
//! results, exit 2, the copy dropped); SIGINT and SIGTERM stop `advise
//! --verify` (partial advice, exit 2, no verification copy left); `schema
//! gc` drops a copy whose owner was killed and keeps one whose owner holds
//! its lease; a mistyped --database is refused, not created; `schema
//! drop-clone` refuses a dataset, `schema drop --database` drops it.
//!
//! The tests share one dataset and take turns (a copy needs its source
//! free of sessions, and one test's gc must not collect another's leftover).

#![allow(clippy::unwrap_used)]
// The turn lock only orders the tests, each on its own runtime: holding it
// across their awaits is the point.
#![allow(clippy::await_holding_lock)]

mod common;

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

use crmbench::advise::Advice;
use crmbench::pg::{self, Target};
use crmbench::results::Results;
use crmbench::runfolder::read_file;
use crmbench::schema::clone::{Purpose, WorkingCopy};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;

/// The dataset every test reads (made by `generate`: marked a dataset).
const MAIN: &str = "fc_main";

static TURN: Mutex<()> = Mutex::new(());
static DATASET: OnceLock<()> = OnceLock::new();

/// Wait for this test's turn, with the dataset in place.
fn turn() -> MutexGuard<'static, ()> {
    let guard = TURN.lock().unwrap_or_else(|e| e.into_inner());
    DATASET.get_or_init(|| {
        let out = crmbench(&[
            "--database",
            MAIN,
            "generate",
            "--scale",
            "0.002",
            "--seed",
            "5",
            "-q",
        ])
        .arg("--out")
        .arg(tempfile::tempdir().unwrap().path())
        .output()
        .unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    });
    guard
}

fn crmbench(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .env_remove("CRMBENCH_DATABASE")
        .args(args);
    cmd
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn server() -> Target {
    Target::private(common::cluster().server.clone())
}

/// A running command whose standard error is read line by line.
struct Running {
    child: Child,
    lines: Receiver<String>,
    seen: Vec<String>,
}

impl Running {
    fn spawn(mut cmd: Command) -> Running {
        let mut child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, lines) = mpsc::channel();
        let pipe = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        Running {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// Wait (up to 60 s) for a line of standard error containing `text`.
    fn wait_for(&mut self, text: &str) {
        let deadline = Instant::now() + Duration::from_secs(60);
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let found = line.contains(text);
                    self.seen.push(line);
                    if found {
                        return;
                    }
                }
                Err(_) => break,
            }
        }
        panic!("no `{text}` on stderr:\n{}", self.seen.join("\n"));
    }

    fn signal(&self, signal: Signal) {
        kill(Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    /// The exit code and all of standard error.
    fn finish(mut self) -> (Option<i32>, String) {
        let status = self.child.wait().unwrap();
        self.seen.extend(self.lines.iter());
        (status.code(), self.seen.join("\n"))
    }
}

/// Working copies (by marker) whose name is LIKE `pattern`.
async fn working_copies(pattern: &str) -> Vec<String> {
    pg::connect(&server().admin_to("postgres"))
        .await
        .unwrap()
        .query(
            "SELECT datname::text FROM pg_database WHERE datname LIKE $1 \
             AND shobj_description(oid, 'pg_database') LIKE 'created by crmbench: working copy%'",
            &[&pattern],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}

async fn exists(db: &str) -> bool {
    common::databases_like(&server(), db).await > 0
}

fn spawn_fresh_run(out: &Path) -> Running {
    let mut cmd = crmbench(&[
        "--database",
        MAIN,
        "run",
        "--fresh",
        "--duration",
        "60s",
        "--warmup",
        "1s",
        "--clients",
        "2",
        "--threads",
        "1",
    ]);
    cmd.arg("--out").arg(out);
    Running::spawn(cmd)
}

/// Failed before the fix: SIGTERM killed the run (exit 143, no
/// results.json, the fresh clone leaked); SIGHUP likewise.
#[tokio::test]
async fn sigterm_and_sighup_during_run_fresh_keep_partial_results_and_drop_the_copy() {
    let _turn = turn();
    for (signal, name) in [(Signal::SIGTERM, "SIGTERM"), (Signal::SIGHUP, "SIGHUP")] {
        let dir = tempfile::tempdir().unwrap();
        let mut run = spawn_fresh_run(dir.path());
        run.wait_for("warm-up done");
        tokio::time::sleep(Duration::from_millis(1500)).await;
        run.signal(signal);
        let (code, stderr) = run.finish();
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains("ended early"), "{name}: {stderr}");
        let results: Results = read_file(dir.path()).unwrap();
        assert_eq!(
            results.partial.as_deref(),
            Some(format!("interrupted ({name})").as_str())
        );
        assert!(results.queries.iter().any(|q| q.baseline.count > 0));
        assert_eq!(
            working_copies("crmbench_fresh_%").await,
            Vec::<String>::new(),
            "{name} left the fresh copy"
        );
    }
}

/// Failed before the fix: SIGINT was ignored (verification ran on, exit 0,
/// full advice); SIGTERM killed advise and leaked its crmbench_verify_*
/// copies.
#[tokio::test]
async fn sigint_and_sigterm_during_advise_verify_keep_partial_advice_and_drop_the_copies() {
    let _turn = turn();
    for (signal, name) in [(Signal::SIGINT, "Ctrl-C"), (Signal::SIGTERM, "SIGTERM")] {
        let dir = tempfile::tempdir().unwrap();
        let mut cmd = crmbench(&[
            "--database",
            MAIN,
            "advise",
            "--verify",
            "--verify-duration",
            "30s",
            "--verify-clients",
            "2",
        ]);
        cmd.arg("--out").arg(dir.path());
        let mut advise = Running::spawn(cmd);
        advise.wait_for("advise: verifying");
        tokio::time::sleep(Duration::from_secs(2)).await;
        advise.signal(signal);
        let (code, stderr) = advise.finish();
        assert_eq!(code, Some(2), "{name}: {stderr}");
        assert!(stderr.contains("advise ended early"), "{name}: {stderr}");
        let advice: Advice = read_file(dir.path()).unwrap();
        let partial = advice.partial.as_deref().unwrap_or_default();
        assert!(
            partial.starts_with(&format!("interrupted ({name})")),
            "{name}: {partial:?}"
        );
        assert_eq!(
            working_copies("crmbench_verify_%").await,
            Vec::<String>::new(),
            "{name} left verification copies"
        );
    }
}

/// Failed before the fix: there was no `schema gc`, and a killed run's
/// copy (named after its pid) stayed for good.
#[tokio::test]
async fn gc_drops_a_killed_owners_copy_and_keeps_a_held_one() {
    let _turn = turn();
    // An owner that stays alive (this test): its lease is held. (Made
    // first: making a copy collects the leftovers, the killed run's too.)
    let held = WorkingCopy::create(&server().on_database(MAIN), Purpose::Remedy)
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut run = spawn_fresh_run(dir.path());
    run.wait_for("warm-up done");
    run.signal(Signal::SIGKILL);
    run.finish();
    let leaked = working_copies("crmbench_fresh_%").await;
    assert_eq!(leaked.len(), 1, "{leaked:?}");

    // The killed run's sessions take a moment to leave the server.
    let mut printed = String::new();
    for _ in 0..20 {
        let out = crmbench(&["schema", "gc"]).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        printed = String::from_utf8_lossy(&out.stdout).into_owned();
        if !exists(&leaked[0]).await {
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(!exists(&leaked[0]).await, "not collected: {printed}");
    assert!(
        printed.contains(&format!("dropped {}", leaked[0])),
        "{printed}"
    );
    assert!(exists(held.name()).await, "a held copy was dropped");
    assert!(
        printed.contains(&format!("{} is in use", held.name())),
        "{printed}"
    );
    // drop-clone refuses a copy in use, too.
    let out = crmbench(&["schema", "drop-clone", held.name()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    let name = held.name().to_string();
    held.remove().await.unwrap();
    assert!(!exists(&name).await);
}

/// Failed before the fix: the typo silently became an empty database and
/// the error was `relation "crm.tenants" does not exist`.
#[tokio::test]
async fn a_mistyped_database_is_refused_with_the_known_ones_and_not_created() {
    let _turn = turn();
    let out_dir = tempfile::tempdir().unwrap();
    for command in [&["explain"][..], &["run", "--duration", "1s"][..]] {
        let out = crmbench(&["--database", "fc_mian"])
            .args(command)
            .arg("--out")
            .arg(out_dir.path())
            .output()
            .unwrap();
        let text = stderr(&out);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {text}");
        assert!(
            text.contains("database fc_mian does not exist"),
            "{command:?}: {text}"
        );
        assert!(text.contains("fc_main (dataset)"), "{command:?}: {text}");
        assert!(!text.contains("crm.tenants"), "{command:?}: {text}");
        assert!(!exists("fc_mian").await, "{command:?} created the typo");
    }
}

/// Failed before the fix: drop-clone dropped any database crmbench made,
/// the demo's dataset included.
#[tokio::test]
async fn drop_clone_refuses_a_dataset_and_schema_drop_database_drops_one() {
    let _turn = turn();
    let out = crmbench(&["schema", "drop-clone", MAIN]).output().unwrap();
    let text = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{text}");
    assert!(text.contains("is a dataset, not a clone"), "{text}");
    assert!(text.contains("schema drop --database fc_main"), "{text}");
    assert!(exists(MAIN).await);

    // A clone made by `schema clone` drop-clone does drop.
    for args in [
        &["--database", MAIN, "schema", "clone", "--to", "fc_copy"][..],
        &["schema", "drop-clone", "fc_copy"][..],
    ] {
        let out = crmbench(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert!(!exists("fc_copy").await);

    // A dataset goes with `schema drop --database NAME`.
    for args in [
        &["--database", "fc_doomed", "schema", "create"][..],
        &["schema", "drop", "--database", "fc_doomed"][..],
    ] {
        let out = crmbench(args).output().unwrap();
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert!(!exists("fc_doomed").await);
}
