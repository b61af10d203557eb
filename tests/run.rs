//! `run` on the real server: the built-in workload under RLS without errors,
//! results that round-trip through the loader, the A/A self-check, an open-loop
//! stall visible in the tail, a workload on a schema without tenants, and the
//! exit codes users see.

#![allow(clippy::unwrap_used)]

mod common;

use common::CONTEXT;
use crmbench::run;

use std::time::Duration;

use crmbench::pg::{self, Target};
use crmbench::results::Results;
use crmbench::runfolder::{RunFolder, read_file};

async fn dataset(db: &str) -> Target {
    common::generated(db, 0.002, 3).await
}

#[tokio::test]
async fn built_in_workload_runs_clean_under_rls_and_round_trips() {
    let target = dataset("run_crm").await;
    let outcome = run::run(&target, &common::options("workloads/crm.toml", 4.0))
        .await
        .unwrap();
    let r = &outcome.results;
    assert!(r.partial.is_none(), "{:?}", r.partial);
    assert!(r.queries.len() >= 16);
    for q in &r.queries {
        assert!(
            q.baseline.errors.is_empty(),
            "{}: {:?}",
            q.name,
            q.baseline.errors
        );
        assert!(q.baseline.count > 0, "{} never ran", q.name);
        assert!(
            q.baseline.latency.p50_us > 0 && q.baseline.latency.p50_us <= q.baseline.latency.max_us
        );
        assert!(!q.baseline.intervals.is_empty());
    }
    assert!(outcome.error_rate_exceeded.is_empty());
    assert_eq!(
        r.server.settings.get("fsync").map(String::as_str),
        Some("off")
    );
    assert!(
        r.index_usage.iter().any(|i| i.scans > 0),
        "no index scans recorded"
    );
    // The contract: what is written loads back identically.
    let dir = tempfile::tempdir().unwrap();
    let folder = RunFolder::open(dir.path()).unwrap();
    folder.write(r).unwrap();
    let back: Results = folder.read().unwrap();
    assert_eq!(&back, r);
    let h = crmbench::stats::decode(&back.queries[0].baseline.histogram).unwrap();
    assert_eq!(h.len(), back.queries[0].baseline.count);
}

#[tokio::test]
async fn open_loop_latency_includes_a_stall() {
    let target = dataset("run_stall").await;
    let (_dir, path) = common::write_workload(&format!(
        "name = \"stall\"\n{CONTEXT}\n\
         [[query]]\nname = \"stores\"\nkind = \"read\"\nsql = \"SELECT count(*) FROM stores\"\n"
    ));
    let mut opts = common::options(&path, 4.0);
    opts.rate = Some(100.0);
    opts.clients = 2;
    opts.threads = 1;
    let locker = target.on_database(target.database());
    let stall = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        let mut admin = pg::connect(&locker.admin()).await.unwrap();
        let tx = admin.transaction().await.unwrap();
        tx.batch_execute("LOCK TABLE crm.stores IN ACCESS EXCLUSIVE MODE")
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(1000)).await;
        tx.commit().await.unwrap();
    });
    let outcome = run::run(&target, &opts).await.unwrap();
    stall.await.unwrap();
    let q = &outcome.results.queries[0];
    // Requests scheduled during the stall waited for it: measured from their
    // intended start, the tail shows the whole second.
    assert!(
        q.baseline.latency.max_us >= 900_000,
        "max {} µs",
        q.baseline.latency.max_us
    );
    assert!(
        q.baseline.latency.p50_us < 100_000,
        "p50 {} µs",
        q.baseline.latency.p50_us
    );
    // Open loop kept (roughly) its schedule: 100/s over 4 s.
    assert!(q.baseline.count >= 300, "{} transactions", q.baseline.count);
}

#[tokio::test]
async fn a_workload_on_a_schema_without_tenants_runs_end_to_end() {
    let target = common::fresh_database("run_shop").await;
    pg::connect(&target.admin())
        .await
        .unwrap()
        .batch_execute(
            "CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL); \
             INSERT INTO shop.items (name, price) SELECT 'item ' || g, (g % 97) + 0.5 FROM generate_series(1, 2000) g; \
             GRANT USAGE ON SCHEMA shop TO crmbench_app; \
             GRANT SELECT, INSERT, UPDATE ON shop.items TO crmbench_app; \
             GRANT USAGE ON SEQUENCE shop.items_id_seq TO crmbench_app",
        )
        .await
        .unwrap();
    let outcome = run::run(
        &target,
        &common::options("fixtures/workloads/valid_no_tenant.toml", 2.0),
    )
    .await
    .unwrap();
    for q in &outcome.results.queries {
        assert!(
            q.baseline.errors.is_empty(),
            "{}: {:?}",
            q.name,
            q.baseline.errors
        );
        assert!(q.baseline.count > 0, "{} never ran", q.name);
    }
    assert!(outcome.results.dataset.is_none());
}

fn cli(db: &str, args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", db, "run"])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn exit_codes_name_the_failing_query() {
    let _target = dataset("run_cli").await;
    let (dir, failing) = common::write_workload(&format!(
        "name = \"fails\"\n{CONTEXT}\n\
         [[query]]\nname = \"fine\"\nkind = \"read\"\nweight = 5\nsql = \"SELECT count(*) FROM stores\"\n\
         [[query]]\nname = \"divide_by_zero\"\nkind = \"read\"\nsql = \"SELECT 1 / (count(*) - count(*)) FROM stores\"\n"
    ));
    let out_dir = dir.path().join("out");
    let out = cli(
        "run_cli",
        &[
            "--workload",
            &failing,
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--clients",
            "2",
            "-q",
            "--out",
            out_dir.to_str().unwrap(),
        ],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("divide_by_zero") && stderr.contains("22012"),
        "{stderr}"
    );
    assert!(!stderr.contains("fine:"), "{stderr}");
    // The results were written anyway.
    read_file::<Results>(&out_dir).unwrap();

    let (_d2, unknown) = common::write_workload(&format!(
        "name = \"bad\"\n{CONTEXT}\n[[query]]\nname = \"typo\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE emial = $1\"\nparams = [{{ value = \"x\" }}]\n"
    ));
    let out = cli("run_cli", &["--workload", &unknown, "--check"]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("w.toml:11: query `typo`"), "{stderr}");
    assert!(
        stderr.contains("column \"emial\" does not exist"),
        "{stderr}"
    );
}

#[test]
fn every_results_fixture_loads() {
    let mut n = 0;
    for entry in std::fs::read_dir("fixtures/results").unwrap() {
        let path = entry.unwrap().path();
        let r: Results = read_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert!(!r.queries.is_empty());
        n += 1;
    }
    assert!(n >= 1);
}
