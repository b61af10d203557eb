//! A run that meets a fault (issue 17): a full disk under `--out` (a small
//! tmpfs, mounted as root), a killed statistics connection, parameter
//! ranges and rates that used to panic a driver thread (a panic in a client
//! itself is pinned by a unit test in `run::driver`), a backend crash
//! (`kill -9`: the server restarts every backend and recovers), and more
//! clients than the server has connection slots. Every test failed before
//! its fix. The crash test takes the cluster for itself (it ends every
//! session on the server); the others share it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crmbench::pg::{self, Target};
use crmbench::results::Results;
use crmbench::runfolder::read_file;

/// Shared by the tests that only need the server up; taken whole by the one
/// that crashes it.
static SERVER: tokio::sync::RwLock<()> = tokio::sync::RwLock::const_new(());

async fn dataset(db: &str) {
    common::generated(db, 0.001, 7).await;
}

/// `crmbench --database DB run --out OUT ARGS…` (warm-up 0, quiet).
fn run_command(db: &str, out: &Path, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", db, "run", "--warmup", "0s", "-q", "--out"])
        .arg(out)
        .args(args);
    cmd
}

fn spawn(mut cmd: Command) -> std::process::Child {
    cmd.stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn text(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

async fn admin() -> tokio_postgres::Client {
    let target = Target::private(common::cluster().server.clone());
    pg::connect(&target.admin_to("postgres")).await.unwrap()
}

/// Wait until the run's clients replay transactions on `db` (start-up —
/// workload check, sampling — uses connections of its own).
async fn wait_for_clients(admin: &tokio_postgres::Client, db: &str) {
    for _ in 0..80 {
        let busy: i64 = admin
            .query_one(
                "SELECT count(*) FROM pg_stat_activity \
                 WHERE datname = $1 AND usename = 'crmbench_app' AND query = 'COMMIT'",
                &[&db],
            )
            .await
            .unwrap()
            .get(0);
        if busy >= 2 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the run's clients never started on {db}");
}

/// A tmpfs of `size` mounted on a new folder, unmounted when dropped.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Tmpfs {
        let dir = tempfile::tempdir().unwrap();
        let status = Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0755"),
                "tmpfs",
            ])
            .arg(dir.path())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "mounting a tmpfs needs root (CI runs as root): {status}"
        );
        Tmpfs { dir }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Fill the file system up to its last byte.
    fn fill(&self) {
        use std::io::Write as _;
        let mut f = std::fs::File::create(self.path().join("filler")).unwrap();
        let block = vec![0u8; 4096];
        while f.write_all(&block).is_ok() {}
        let _ = f.write_all(&[0u8; 1]);
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(self.dir.path()).status();
    }
}

/// Files in `dir` whose name starts with `prefix`.
fn files_like(dir: &Path, prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .is_some_and(|n| n.to_string_lossy().starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}

// Before the fix the run measured for its whole duration and then lost
// everything on the full disk.
#[tokio::test]
async fn a_full_disk_under_out_is_refused_before_measuring() {
    let _server = SERVER.read().await;
    dataset("fault_disk_early").await;
    let disk = Tmpfs::mount("64k");
    let out_dir = disk.path().join("run");
    let started = Instant::now();
    let cmd = run_command("fault_disk_early", &out_dir, &["--duration", "20s"]);
    let out = spawn(cmd).wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "it measured first"
    );
    assert!(
        stderr.contains("free") && stderr.contains(&disk.path().display().to_string()),
        "{stderr}"
    );
}

// Before the fix the table was not printed, the results were lost and the
// error named no other place.
#[tokio::test]
async fn a_disk_full_at_the_end_prints_the_table_and_keeps_the_results_elsewhere() {
    let _server = SERVER.read().await;
    dataset("fault_disk_late").await;
    let disk = Tmpfs::mount("4m");
    let out_dir = disk.path().join("run");
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = run_command("fault_disk_late", &out_dir, &["--duration", "3s"]);
    cmd.env("TMPDIR", tmp.path());
    let child = spawn(cmd);
    wait_for_clients(&admin().await, "fault_disk_late").await;
    disk.fill();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(stdout.contains("customer_by_email"), "no table: {stdout}");
    let saved = files_like(tmp.path(), "crmbench-results-");
    assert_eq!(saved.len(), 1, "{stderr}");
    assert!(
        stderr.contains(&saved[0].display().to_string()),
        "the error does not name {}: {stderr}",
        saved[0].display()
    );
    let mode = std::fs::metadata(&saved[0]).unwrap().permissions();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777,
        0o600
    );
    let r: Results = read_file(&saved[0]).unwrap();
    assert!(r.queries.iter().map(|q| q.baseline.count).sum::<u64>() > 0);
    assert!(
        files_like(&out_dir, ".results.json").is_empty(),
        "a temp file was left in {}",
        out_dir.display()
    );
}

/// End crmbench's statistics session on `db`; how many were ended.
async fn kill_stats_session(admin: &tokio_postgres::Client, db: &str) -> usize {
    admin
        .query(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
             WHERE datname = $1 AND application_name = 'crmbench-stats'",
            &[&db],
        )
        .await
        .unwrap()
        .len()
}

// Before the fix the session had no name of its own, and a killed one left
// index_usage and statements empty without a word.
#[tokio::test]
async fn a_killed_statistics_connection_is_replaced() {
    let _server = SERVER.read().await;
    dataset("fault_stats_kill").await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = run_command("fault_stats_kill", dir.path(), &["--duration", "3s"]);
    let child = spawn(cmd);
    let admin = admin().await;
    wait_for_clients(&admin, "fault_stats_kill").await;
    assert_eq!(kill_stats_session(&admin, "fault_stats_kill").await, 1);
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    let r: Results = read_file(dir.path()).unwrap();
    assert!(r.stats_missing.is_none(), "{:?}", r.stats_missing);
    assert!(
        r.index_usage.iter().any(|u| u.scans > 0),
        "{:?}",
        r.index_usage
    );
}

// Before the fix the sections came out empty with no reason given.
#[tokio::test]
async fn statistics_that_cannot_be_read_again_are_marked_missing() {
    let _server = SERVER.read().await;
    let db = "fault_stats_gone";
    dataset(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = run_command(db, dir.path(), &["--duration", "2s"]);
    let child = spawn(cmd);
    let admin = admin().await;
    wait_for_clients(&admin, db).await;
    // The clients keep their sessions; a new one (the statistics') is refused.
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS false"))
        .await
        .unwrap();
    assert_eq!(kill_stats_session(&admin, db).await, 1);
    let out = child.wait_with_output().unwrap();
    admin
        .batch_execute(&format!("ALTER DATABASE {db} ALLOW_CONNECTIONS true"))
        .await
        .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}{stderr}");
    assert!(stderr.contains("statistics"), "no warning: {stderr}");
    let r: Results = read_file(dir.path()).unwrap();
    let reason = r.stats_missing.expect("stats_missing");
    assert!(
        reason.contains("not currently accepting connections"),
        "{reason}"
    );
    let report = Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .args(["report", "--format", "md", "--in"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(report.status.success(), "{}", text(&report).1);
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("statistics are missing"), "{md}");
}

// Before the fix: exit 0, count 0 and `partial: null` (the driver thread
// panicked on a date chrono cannot hold).
#[tokio::test]
async fn a_date_range_out_of_reach_is_refused_at_its_line() {
    let _server = SERVER.read().await;
    dataset("fault_days").await;
    let (_keep, workload) = common::write_workload(&format!(
        "name = \"days\"\n{}\n[[query]]\nname = \"old\"\nkind = \"read\"\nweight = 1\n\
         sql = \"SELECT count(*) FROM crm.orders WHERE created_at < $1::timestamptz\"\n\
         params = [{{ days_ago = [1e8, 1e9] }}]\n",
        common::CONTEXT
    ));
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        "fault_days",
        dir.path(),
        &["--duration", "2s", "--workload", &workload],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("{workload}:12:")) && stderr.contains("days_ago"),
        "{stderr}"
    );
}

// Before the fix: exit 0 with nothing measured (the pacer panicked on a gap
// no clock can hold).
#[tokio::test]
async fn a_rate_too_small_to_run_anything_is_refused() {
    let _server = SERVER.read().await;
    dataset("fault_rate").await;
    let dir = tempfile::tempdir().unwrap();
    for rate in ["1e-300", "0.01"] {
        let out = run_command(
            "fault_rate",
            dir.path(),
            &["--duration", "2s", "--rate", rate],
        )
        .output()
        .unwrap();
        let (stdout, stderr) = text(&out);
        assert_eq!(
            out.status.code(),
            Some(2),
            "--rate {rate}: {stdout}{stderr}"
        );
        assert!(stderr.contains("--rate"), "{stderr}");
    }
}

// Before the fix the run went through warm-up and then stopped on the raw
// 53300 "too many clients" message.
#[tokio::test]
async fn more_clients_than_free_connection_slots_are_refused() {
    let _server = SERVER.read().await;
    dataset("fault_slots").await;
    let admin = admin().await;
    let max: i64 = admin
        .query_one("SELECT current_setting('max_connections')::int8", &[])
        .await
        .unwrap()
        .get(0);
    let clients = (max + 20).to_string();
    let dir = tempfile::tempdir().unwrap();
    let out = run_command(
        "fault_slots",
        dir.path(),
        &["--duration", "2s", "--clients", &clients, "--threads", "2"],
    )
    .output()
    .unwrap();
    let (stdout, stderr) = text(&out);
    assert_eq!(out.status.code(), Some(2), "{stdout}{stderr}");
    assert!(
        stderr.contains(&format!("needs {clients} connections"))
            && stderr.contains("free")
            && stderr.contains("max_connections")
            && !stderr.contains("53300"),
        "{stderr}"
    );
}

// Before the fix the run stopped on 57P03 "the database system is in
// recovery mode" while the server restarted its backends.
#[tokio::test]
async fn a_backend_crash_is_survived_and_counted() {
    let _server = SERVER.write().await;
    let db = "fault_crash";
    dataset(db).await;
    let dir = tempfile::tempdir().unwrap();
    let cmd = run_command(db, dir.path(), &["--duration", "4s"]);
    let child = spawn(cmd);
    let admin = admin().await;
    wait_for_clients(&admin, db).await;
    let pid: i32 = admin
        .query_one(
            "SELECT pid FROM pg_stat_activity WHERE datname = $1 AND usename = 'crmbench_app' LIMIT 1",
            &[&db],
        )
        .await
        .unwrap()
        .get(0);
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGKILL,
    )
    .unwrap();
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = text(&out);
    assert!(
        matches!(out.status.code(), Some(0 | 1)),
        "{:?}: {stdout}{stderr}",
        out.status
    );
    let r: Results = read_file(dir.path()).unwrap();
    assert!(r.partial.is_none(), "{:?}", r.partial);
    let failed: u64 = r
        .queries
        .iter()
        .map(|q| q.baseline.errors.values().sum::<u64>())
        .sum();
    assert!(failed >= 1, "the crash was not counted: {stderr}");
    let late: u64 = r
        .queries
        .iter()
        .flat_map(|q| q.baseline.intervals.iter().filter(|i| i.t > 3.0))
        .map(|i| i.count)
        .sum();
    assert!(late > 0, "no transaction after the crash: {stderr}");
}
