//! `rehearse` against the real private PostgreSQL: deterministic blocking
//! (a lock held for 2 s, an index build queued behind a 2.5 s writer), the
//! same index built CONCURRENTLY blocking nothing, `--apply-as file` failing
//! with 25001 the way Prisma would, a rollback that forgets a column, and a
//! Prisma migrations folder applied in order. One tiny table per test; the
//! loaded windows are short (1 s before, 4 s after).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use crmbench::compare::verdict::{QueryVerdict, Verdict};
use crmbench::pg::{self, Target};
use crmbench::rehearse::input::ApplyAs;
use crmbench::rehearse::locks::LockMode;
use crmbench::rehearse::model::Rehearsal;
use crmbench::rehearse::{Load, RehearseOptions, rehearse};

const HOLD: &str = "UPDATE shop.items SET price = price WHERE id = 1";

/// The test cluster at `wal_level = replica` before any test starts, as
/// `rehearse` makes the private server by default: a restart from inside
/// one test would cut every other test's connections.
static WAL_REPLICA: std::sync::OnceLock<()> = std::sync::OnceLock::new();

fn wal_replica_once() {
    WAL_REPLICA.get_or_init(|| {
        let server = common::cluster().server.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            rt.block_on(pg::replicas::enable_on_primary(&server, 0))
                .unwrap();
        })
        .join()
        .unwrap();
    });
}

async fn shop(db: &str) -> Target {
    wal_replica_once();
    let target = common::fresh_database(db).await;
    pg::connect(&target.admin())
        .await
        .unwrap()
        .batch_execute(
            "CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id int PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL); \
             INSERT INTO shop.items SELECT g, 'item ' || g, (g % 97) + 0.5 FROM generate_series(1, 2000) g; \
             GRANT USAGE ON SCHEMA shop TO crmbench_app; \
             GRANT SELECT, UPDATE ON shop.items TO crmbench_app; \
             ANALYZE shop.items",
        )
        .await
        .unwrap();
    target
}

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rehearse")
        .join(name)
}

fn options(migration: &str, rollback: Option<&str>, out: &tempfile::TempDir) -> RehearseOptions {
    RehearseOptions {
        migration: fixture(migration),
        rollback: rollback.map(fixture),
        apply_as: None,
        workload: None,
        load: Load::Closed,
        clients: 4,
        before: Duration::from_secs(1),
        after: Duration::from_secs(4),
        lock_timeout: None,
        hold: None,
        validate: None,
        wal_replica: true,
        index_limit_bytes: 0,
        seed: 3,
        out: Some(out.path().join("run")),
        access: Default::default(),
    }
}

fn loaded(mut opts: RehearseOptions) -> RehearseOptions {
    opts.workload = Some(fixture("shop.toml"));
    opts
}

fn total_blocked(r: &Rehearsal) -> u64 {
    r.statements.iter().map(|s| s.blocked).sum()
}

#[tokio::test]
async fn a_share_lock_held_two_seconds_blocks_writes_and_is_named() {
    let target = shop("reh_lock").await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = loaded(options(
        "lock_share.sql",
        Some("lock_share_rollback.sql"),
        &out,
    ));
    // Open loop: the arrivals during the lock queue up and their latency
    // (from each intended start) shows in the interval p99s, not only in
    // the four clients' maximum.
    opts.load = Load::Rate(200.0);
    let outcome = rehearse(&target, &opts).await.unwrap();
    let r = &outcome.rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let lock = r
        .statements
        .iter()
        .find(|s| s.text.starts_with("LOCK"))
        .unwrap();
    assert!(
        lock.takes
            .iter()
            .any(|l| l.table == "shop.items" && l.mode == LockMode::Share),
        "{lock:?}"
    );
    // The writes queue behind the transaction while pg_sleep runs, and the
    // sampler sees the session holding SHARE.
    let sleep = r
        .statements
        .iter()
        .find(|s| s.text.contains("pg_sleep"))
        .unwrap();
    assert!(
        sleep
            .locks
            .iter()
            .any(|l| l.table == "shop.items" && l.mode == LockMode::Share),
        "{sleep:?}"
    );
    assert!(sleep.blocked > 0, "{sleep:?}");
    assert!(
        sleep
            .blocked_queries
            .iter()
            .any(|q| q.contains("UPDATE shop.items")),
        "{sleep:?}"
    );
    let w = r.workload.as_ref().unwrap();
    assert!(
        w.max_latency_ms >= 2000.0,
        "max latency {} ms",
        w.max_latency_ms
    );
    let touch = w.phases.iter().find(|p| p.query == "touch_item").unwrap();
    assert!(
        touch.during_p99_ms.unwrap() >= 1000.0,
        "{touch:?} {:?}",
        w.timeline
    );
    assert!(touch.before_p99_ms.unwrap() < 1000.0, "{touch:?}");
    // The timeline shows the stall: an interval with no throughput while locked.
    assert!(
        w.timeline
            .iter()
            .any(|p| p.t > sleep.start_s + 0.5 && p.t < sleep.end_s && p.tps < 1.0),
        "{:?}",
        w.timeline
    );
    // The rollback ran under the same load: the writes it held up show.
    let rb = r.rollback.as_ref().unwrap();
    assert!(rb.identical);
    let rb_sleep = rb
        .statements
        .iter()
        .find(|s| s.text.contains("pg_sleep"))
        .unwrap();
    assert!(rb_sleep.blocked > 0, "{rb_sleep:?}");
    let rb_load = rb.workload.as_ref().expect("load during the rollback");
    assert!(rb_load.max_latency_ms >= 1400.0, "{rb_load:?}");
    assert!(outcome.folder.join("rollback/results.json").is_file());
    // The state after: the paired run found no change (the migration
    // changed nothing), judged like `compare`.
    let avb = r.after_vs_before.as_ref().expect("a paired comparison");
    assert_eq!(avb.queries.len(), 2, "{avb:?}");
    assert_ne!(avb.verdict, Verdict::Fail, "{avb:?}");
    assert!(
        outcome
            .folder
            .join("after-vs-before/results.json")
            .is_file()
    );
    assert_eq!(r.exit_code(), 0);
    // The record is in the run folder, readable.
    let saved: Rehearsal =
        crmbench::runfolder::read_file(&outcome.folder.join("rehearsal.json")).unwrap();
    assert_eq!(saved.statements.len(), r.statements.len());
    assert!(outcome.folder.join("results.json").is_file());
    let md = std::fs::read_to_string(outcome.folder.join("report.md")).unwrap();
    assert!(md.contains("## Migration rehearsal"), "{md}");
    assert!(md.contains("### Deployment checklist"), "{md}");
    assert!(md.contains("SHARE on shop.items"), "{md}");
    assert!(
        md.contains("### After the migration vs before (paired)"),
        "{md}"
    );
    assert!(md.contains("Applied under the same load"), "{md}");
    assert!(md.contains("wal_level = replica"), "{md}");
    let html = std::fs::read_to_string(outcome.folder.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"rehearsal\">") && html.contains("<polyline"));
}

#[tokio::test]
async fn a_plain_index_queued_behind_a_writer_blocks_the_writes_after_it() {
    let target = shop("reh_plain").await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = loaded(options("index_plain.sql", Some("index_rollback.sql"), &out));
    opts.hold = Some((HOLD.into(), Duration::from_millis(2500)));
    // The default: open loop at half of what a closed-loop probe reached.
    opts.load = Load::Probe;
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    let rate = r
        .workload
        .as_ref()
        .unwrap()
        .rate
        .expect("an open-loop rate");
    assert!(rate > 1.0, "{rate}");
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let s = &r.statements[0];
    assert!(s.blocked > 0, "{s:?}");
    assert!(s.lock_wait_ms >= 1000.0, "{s:?}");
    assert!(
        s.waited_behind
            .iter()
            .any(|w| w.application.contains("held transaction")),
        "the blocker is named: {s:?}"
    );
    assert!(r.workload.as_ref().unwrap().max_latency_ms >= 2000.0);
    let finding = r
        .findings
        .iter()
        .find(|f| f.rule == "index-not-concurrent")
        .unwrap();
    let measured = finding.measured.as_ref().unwrap();
    assert_eq!(measured.blocked, s.blocked);
    let rb = r.rollback.as_ref().unwrap();
    assert!(rb.identical, "{}", rb.difference.render());
    // WAL measured on the quiesced clone at wal_level = replica (the
    // server restarted that way). This index is under wal_skip_threshold
    // (2 MB), so even minimal would log it at commit: only the level is
    // what the replica restart changes here; the bytes show it is measured.
    let d = r.data.as_ref().unwrap();
    assert_eq!(d.wal_level, "replica");
    assert!(d.statements[0].wal_bytes > 40_000, "{d:?}");
}

#[tokio::test]
async fn the_same_index_built_concurrently_waits_but_blocks_nothing() {
    let target = shop("reh_conc").await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = loaded(options(
        "index_concurrently.sql",
        Some("index_rollback.sql"),
        &out,
    ));
    opts.hold = Some((HOLD.into(), Duration::from_millis(2500)));
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let s = &r.statements[0];
    // It waited for the writer to end (on its transaction, not a table
    // lock), and the wait is counted with the writer named…
    assert!(s.duration_ms >= 1500.0, "{s:?}");
    assert!(s.lock_wait_ms >= 1000.0, "{s:?}");
    assert!(
        s.waited_behind
            .iter()
            .any(|w| w.application.contains("held transaction")),
        "{s:?}"
    );
    // …and nobody waited for it.
    assert_eq!(total_blocked(&r), 0, "{s:?}");
    assert!(r.rollback.as_ref().unwrap().identical);
}

#[tokio::test]
async fn apply_as_file_fails_with_25001_as_prisma_would_and_statement_passes() {
    let target = shop("reh_file").await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = options("concurrently_with_another.sql", None, &out);
    opts.apply_as = Some(ApplyAs::File);
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    let failure = r.failure.as_ref().expect("the file must fail");
    assert_eq!(failure.error.sqlstate, "25001", "{failure:?}");
    assert_eq!(r.exit_code(), 1);
    assert!(
        r.findings
            .iter()
            .any(|f| f.rule == "concurrently-in-transaction")
    );

    let out = tempfile::tempdir().unwrap();
    let mut opts = options("concurrently_with_another.sql", None, &out);
    opts.apply_as = Some(ApplyAs::Statement);
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!(r.statements.len(), 2);
    assert!(
        !r.findings
            .iter()
            .any(|f| f.rule == "concurrently-in-transaction")
    );
}

#[tokio::test]
async fn a_rollback_that_forgets_a_column_fails_the_check_naming_it() {
    let target = shop("reh_forget").await;
    let out = tempfile::tempdir().unwrap();
    let opts = options(
        "add_column.sql",
        Some("add_column_rollback_forgets.sql"),
        &out,
    );
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let rb = r.rollback.as_ref().unwrap();
    assert!(!rb.identical);
    assert_eq!(
        rb.difference.extra,
        vec!["column shop.items.note text".to_string()],
        "{rb:?}"
    );
    assert!(rb.difference.missing.is_empty(), "{rb:?}");
    assert_eq!(r.exit_code(), 1);
    // The original database was never touched: the column is only on the clone.
    let columns: i64 = pg::connect(&target.admin())
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM information_schema.columns WHERE table_schema = 'shop' AND column_name = 'note'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(columns, 0);
}

#[tokio::test]
async fn a_prisma_migrations_folder_is_applied_in_order_prismas_way() {
    let target = shop("reh_prisma").await;
    let out = tempfile::tempdir().unwrap();
    let opts = options("prisma/migrations", None, &out);
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    assert_eq!(r.apply_as, ApplyAs::Prisma);
    let files: Vec<&str> = r.statements.iter().map(|s| s.file.as_str()).collect();
    assert_eq!(
        files,
        [
            "20240101000000_add_note/migration.sql",
            "20240102000000_note_index/migration.sql"
        ]
    );
    // The index depends on the column: had the order been wrong, it fails.
    assert!(r.statements.iter().all(|s| s.error.is_none()));
}

#[tokio::test]
async fn a_migration_that_slows_the_writes_fails_the_after_vs_before_comparison() {
    let target = shop("reh_slow").await;
    let out = tempfile::tempdir().unwrap();
    let opts = loaded(options(
        "slow_trigger.sql",
        Some("slow_trigger_rollback.sql"),
        &out,
    ));
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let avb = r.after_vs_before.as_ref().expect("a paired comparison");
    assert_eq!(avb.verdict, Verdict::Fail, "{avb:?}");
    let touch = avb.queries.iter().find(|q| q.name == "touch_item").unwrap();
    assert_eq!(touch.verdict, QueryVerdict::Regression, "{touch:?}");
    assert!(touch.change.unwrap().lo > 2.0, "{touch:?}");
    let read = avb.queries.iter().find(|q| q.name == "item_by_id").unwrap();
    assert_ne!(read.verdict, QueryVerdict::Regression, "{read:?}");
    assert!(r.rollback.as_ref().unwrap().identical);
    assert_eq!(r.exit_code(), 1);
}

#[tokio::test]
async fn data_checks_count_rows_run_validations_and_measure_wal_at_replica() {
    let target = shop("reh_data").await;
    let out = tempfile::tempdir().unwrap();
    let mut opts = options("delete_cheap.sql", Some("delete_cheap_rollback.sql"), &out);
    opts.validate = Some(fixture("delete_cheap_validate.sql"));
    let r = rehearse(&target, &opts).await.unwrap().rehearsal;
    assert!(r.failure.is_none(), "{:?}", r.failure);
    let d = r.data.as_ref().unwrap();
    assert_eq!(d.wal_level, "replica");
    assert!(d.wal_comparable);
    let items = &d.row_counts[0];
    assert_eq!(items.table, "shop.items");
    assert_eq!(
        (items.before, items.after, items.after_rollback),
        (Some(2000), Some(1980), Some(1980)),
        "{d:?}"
    );
    let [prices, count] = &d.validations[..] else {
        panic!("{d:?}")
    };
    assert!(prices.after_migration.passed, "{prices:?}");
    assert!(!count.after_migration.passed, "{count:?}");
    assert_eq!(count.after_migration.detail, "false");
    // The rollback restores the column, not the rows: still false.
    assert!(!count.after_rollback.as_ref().unwrap().passed, "{count:?}");
    assert_eq!(r.exit_code(), 1);
    assert_eq!(d.statements.len(), 2);
    assert!(d.statements[1].wal_bytes > 0, "{d:?}");
}

#[test]
fn the_cli_exits_1_with_the_sqlstate_when_the_migration_fails() {
    let rt = tokio::runtime::Runtime::new().unwrap();
    rt.block_on(shop("reh_cli"));
    let out_dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", "reh_cli", "rehearse"])
        .arg(fixture("concurrently_with_another.sql"))
        .args(["--apply-as", "file", "--out"])
        .arg(out_dir.path().join("run"))
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stdout.contains("SQLSTATE 25001"), "{stdout}");
    assert!(stdout.contains("deployment checklist:"), "{stdout}");
    assert!(out_dir.path().join("run/rehearsal.json").is_file());
}
