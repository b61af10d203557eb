//! PgBouncer in front of the private server (issue 15): the tenant frame is
//! safe under transaction pooling, `run --pooler` goes through it, and the
//! pool-size sweep measures a curve and advises its knee.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::pg::Target;
use crmbench::pg::pooler::Pooler;
use tokio_postgres::NoTls;

/// The pooler is one per cluster; tests that restart it take turns.
static POOLER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const DB: &str = "pooled";

async fn dataset() -> Target {
    static DONE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    DONE.get_or_init(|| async {
        common::generated(DB, 0.005, 1).await;
    })
    .await;
    Target::private(common::cluster().server.clone()).on_database(DB)
}

async fn through(pooler: &Pooler) -> tokio_postgres::Client {
    let mut config = tokio_postgres::Config::new();
    config
        .host_path(pooler.dir())
        .port(pooler.state().port)
        .user("crmbench_app")
        .dbname(DB);
    let (client, conn) = config
        .connect(NoTls)
        .await
        .expect("connect through PgBouncer");
    tokio::spawn(conn);
    client
}

/// One framed transaction as crmbench sends it: which backend served it,
/// rows of other tenants it saw, and its own tenant's rows.
async fn framed(client: &tokio_postgres::Client, tenant: Option<&str>) -> (i32, i64, i64) {
    let open = match tenant {
        Some(t) => format!("BEGIN; SELECT set_config('app.current_tenant_id', '{t}', true);"),
        None => "BEGIN;".into(),
    };
    client.batch_execute(&open).await.expect("open the frame");
    let row = client
        .query_one(
            "SELECT pg_backend_pid(), \
                    count(*) FILTER (WHERE tenant_id::text <> coalesce(current_setting('app.current_tenant_id', true), '')), \
                    count(*) \
             FROM crm.customers",
            &[],
        )
        .await;
    let _ = client.batch_execute("COMMIT").await;
    match row {
        Ok(r) => (r.get(0), r.get(1), r.get(2)),
        // No tenant set: the policy's cast of an empty setting fails — nothing read.
        Err(_) => (0, 0, 0),
    }
}

#[tokio::test]
async fn two_tenants_sharing_one_server_connection_never_see_each_other() {
    let target = dataset().await;
    let _turn = POOLER.lock().await;
    let Target::Private { server, .. } = &target else {
        unreachable!()
    };
    // One server connection for every client: transactions interleave on it.
    let pooler = Pooler::start(server, 1).expect("start PgBouncer");
    let admin = pg_admin(&target).await;
    let tenants: Vec<String> = admin
        .query("SELECT id::text FROM crm.tenants ORDER BY id LIMIT 2", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let (a, b) = (through(&pooler).await, through(&pooler).await);
    let mut backends = Vec::new();
    for round in 0..3 {
        for (client, tenant) in [(&a, &tenants[0]), (&b, &tenants[1])] {
            let (pid, foreign, own) = framed(client, Some(tenant)).await;
            assert_eq!(
                foreign, 0,
                "round {round}: tenant {tenant} saw another tenant's rows"
            );
            assert!(
                own > 0,
                "round {round}: tenant {tenant} saw none of its rows"
            );
            backends.push(pid);
        }
        // The setting was local to the transaction: the next one, on the
        // same server connection, starts without any tenant.
        let (_, foreign, own) = framed(&b, None).await;
        assert_eq!(
            (foreign, own),
            (0, 0),
            "a tenant leaked into the next transaction"
        );
    }
    backends.dedup();
    assert_eq!(
        backends.len(),
        1,
        "the clients did not share one server connection: {backends:?}"
    );
    pooler.stop().unwrap();
}

async fn pg_admin(target: &Target) -> tokio_postgres::Client {
    crmbench::pg::connect(&target.admin()).await.expect("admin")
}

fn cli(args: &[&str]) -> std::process::Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", DB])
        .args(args)
        .output()
        .expect("run crmbench")
}

fn said(o: &std::process::Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

#[tokio::test]
async fn run_goes_through_the_pooler_and_the_sweep_finds_a_knee() {
    let target = dataset().await;
    let _turn = POOLER.lock().await;
    let Target::Private { server, .. } = &target else {
        unreachable!()
    };
    Pooler::start(server, 2).expect("start PgBouncer");
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("run");
    let short = ["--duration", "1s", "--warmup", "0s", "--clients", "4", "-q"];

    // Prepared statements cannot cross PgBouncer 1.18's transaction pooling.
    let o = cli(&[&["run", "--pooler"][..], &short].concat());
    assert_eq!(o.status.code(), Some(2), "{}", said(&o));
    assert!(said(&o).contains("--protocol simple"), "{}", said(&o));

    let o = cli(&[
        &[
            "run",
            "--pooler",
            "--protocol",
            "simple",
            "--out",
            out.to_str().unwrap(),
        ][..],
        &short,
    ]
    .concat());
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let results: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("results.json")).unwrap()).unwrap();
    let pooler = results["driver"]["pooler"].as_str().unwrap_or_default();
    assert!(
        pooler.contains("/pooler"),
        "results do not name the pooler: {pooler:?}"
    );
    let done: u64 = results["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["baseline"]["count"].as_u64().unwrap())
        .sum();
    assert!(done > 0, "no transaction went through the pooler");

    let sweep = dir.path().join("sweep");
    let o = cli(&[
        &[
            "run",
            "--pooler",
            "--protocol",
            "simple",
            "--pool-sizes",
            "1,3",
            "--out",
            sweep.to_str().unwrap(),
        ][..],
        &short,
    ]
    .concat());
    assert_eq!(o.status.code(), Some(0), "{}", said(&o));
    let curve: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(sweep.join("pool-sizes.json")).unwrap())
            .unwrap();
    let sizes: Vec<u64> = curve["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["pool_size"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes, vec![1, 3]);
    assert!(
        curve["points"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["tps"].as_f64().unwrap() > 0.0)
    );
    let knee = curve["knee"].as_u64().expect("a knee");
    assert!(sizes.contains(&knee));
    assert!(
        said(&o).contains(&format!("default_pool_size = {knee}")),
        "{}",
        said(&o)
    );
    assert!(
        std::fs::read_to_string(sweep.join("pool-sizes.svg"))
            .unwrap()
            .contains("<svg")
    );
    // The sweep leaves the pooler as it found it.
    let after = Pooler::open(server).unwrap().unwrap();
    assert_eq!(after.state().pool_size, 2);
    assert!(after.is_running());
    after.stop().unwrap();
}
