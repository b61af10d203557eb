//! Read replicas of the private server (issue 15): `pg start --replicas 1`,
//! a read/write workload routed to both, replay lag and stale reads of a
//! client's own writes recorded — none when the replica applies every commit
//! before it returns (remote_apply), some while replay is paused.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

use crmbench::pg::{self, Target};

const DB: &str = "replicated";

const WORKLOAD: &str = r#"
name = "read-your-writes"
[context]
role = "crmbench_app"
tenant_setting = "app.current_tenant_id"
tenants = "SELECT id::text, 1 FROM crm.tenants"

[[query]]
name = "log_note"
kind = "write"
sql = "INSERT INTO crm.interactions (tenant_id, customer_id, kind, direction, subject, occurred_at) SELECT tenant_id, id, 'note', 'outbound', 'x', now() FROM crm.customers WHERE tenant_id = $1::uuid LIMIT 1"
params = [{ tenant = true }]

[[query]]
name = "my_notes"
kind = "read"
reads_own_writes = true
sql = "SELECT count(*) FROM crm.interactions WHERE tenant_id = $1::uuid"
params = [{ tenant = true }]
"#;

fn cli(args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(args)
        .output()
        .unwrap()
}

fn said(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn run(workload: &str, out: &std::path::Path, clients: &str) -> serde_json::Value {
    let o = cli(&[
        "--database",
        DB,
        "run",
        "--workload",
        workload,
        "--duration",
        "2s",
        "--warmup",
        "0s",
        "--clients",
        clients,
        "--interval",
        "0.5s",
        "-q",
        "--out",
        out.to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let text = std::fs::read_to_string(out.join("results.json")).unwrap();
    serde_json::from_str::<serde_json::Value>(&text).unwrap()["replication"].clone()
}

/// Each `;`-separated statement on its own (ALTER SYSTEM refuses a block).
async fn sql(target: &Target, statements: &str) {
    let admin = pg::connect(&target.admin()).await.unwrap();
    for statement in statements.split("; ") {
        admin.batch_execute(statement).await.unwrap();
    }
}

#[tokio::test]
async fn reads_go_to_the_replica_and_paused_replay_shows_lag_and_stale_reads() {
    let primary = common::generated(DB, 0.002, 1).await;
    let o = cli(&["pg", "start", "--replicas", "1"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    assert!(said(&o).contains("wal_level = replica"), "{}", said(&o));
    let replica = {
        let list = pg::replicas::list(&common::cluster().server).unwrap();
        assert_eq!(list.len(), 1);
        Target::private(list[0].server.clone()).on_database(DB)
    };
    let status = said(&cli(&["pg", "status"]));
    assert!(
        status.contains("replica 1:") && status.contains("streaming"),
        "{status}"
    );

    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("ryw.toml");
    std::fs::write(&workload, WORKLOAD).unwrap();
    let workload = workload.to_str().unwrap();

    // Every commit applied on the replica before it returns: nothing stale.
    sql(&primary, r#"ALTER SYSTEM SET synchronous_standby_names = '"crmbench-replica-1"'; SELECT pg_reload_conf()"#).await;
    sql(
        &primary,
        &format!("ALTER ROLE crmbench_app IN DATABASE {DB} SET synchronous_commit = remote_apply"),
    )
    .await;
    // One client: the WAL position taken after a commit is then that commit's
    // own (with more writers it can include theirs: an upper bound).
    let synced = run(workload, &dir.path().join("synced"), "1");
    assert_eq!(synced["replica_queries"], serde_json::json!(["my_notes"]));
    assert!(
        synced["served_by_replicas"].as_u64().unwrap() > 0,
        "{synced}"
    );
    assert_eq!(synced["stale_reads"].as_u64(), Some(0), "{synced}");

    // Asynchronous again, and the replica stops replaying for a while.
    sql(
        &primary,
        &format!("ALTER ROLE crmbench_app IN DATABASE {DB} RESET synchronous_commit"),
    )
    .await;
    sql(
        &primary,
        "ALTER SYSTEM RESET synchronous_standby_names; SELECT pg_reload_conf()",
    )
    .await;
    sql(&replica, "SELECT pg_wal_replay_pause()").await;
    let resume = {
        let replica = Target::private(
            pg::replicas::list(&common::cluster().server).unwrap()[0]
                .server
                .clone(),
        )
        .on_database(DB);
        tokio::spawn(async move {
            tokio::time::sleep(std::time::Duration::from_millis(1200)).await;
            sql(&replica, "SELECT pg_wal_replay_resume()").await;
        })
    };
    let paused = run(workload, &dir.path().join("paused"), "2");
    resume.await.unwrap();
    assert!(paused["stale_reads"].as_u64().unwrap() > 0, "{paused}");
    assert!(
        paused["stale_max_ms"].as_f64().unwrap() >= 300.0,
        "{paused}"
    );
    let most_behind = paused["lag"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["bytes"].as_i64().unwrap())
        .max()
        .unwrap();
    assert!(
        most_behind > 0,
        "no lag sampled while replay was paused: {paused}"
    );

    // The report shows the replicas' section from the run folder alone.
    let folder = dir.path().join("paused");
    let o = cli(&["report", "--in", folder.to_str().unwrap(), "--format", "md"]);
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let md = std::fs::read_to_string(folder.join("report.md")).unwrap();
    assert!(
        md.contains("## Read replicas") && md.contains("stale read"),
        "{md}"
    );

    let o = cli(&["pg", "stop"]);
    assert!(said(&o).contains("crmbench-replica-1"), "{}", said(&o));
}
