//! Shared test support: one private cluster per test process, one database per
//! test. The cluster lives in its own folder under /var/tmp (never the one a
//! user started with `crmbench pg start`) and a small reaper process stops it
//! and removes the folder when the test process exits.
#![allow(dead_code)]

pub mod prisma;
pub mod tls;

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use crmbench::pg::private::{PrivateOptions, PrivateServer};
use crmbench::pg::{self, Target};

/// The process's cluster.
pub struct TestCluster {
    pub server: PrivateServer,
    pub base: PathBuf,
}

static CLUSTER: OnceLock<TestCluster> = OnceLock::new();

/// A free TCP port on loopback (the OS picks it).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .expect("bind an ephemeral port")
        .local_addr()
        .expect("local addr")
        .port()
}

/// A fresh base folder for a cluster, removed by the reaper when this process exits.
pub fn scratch_base(tag: &str) -> PathBuf {
    let base = PathBuf::from(format!(
        "/var/tmp/crmbench-test-{}-{}-{tag}",
        nix::unistd::geteuid().as_raw(),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&base);
    spawn_reaper(&base);
    base
}

/// Options for a small test cluster in `base`.
pub fn test_options(base: &std::path::Path) -> PrivateOptions {
    PrivateOptions {
        base_dir: Some(base.to_path_buf()),
        bindir: None,
        port: Some(free_port()),
        shared_buffers: Some("128MB".into()),
    }
}

/// The cluster of this test process, started on first use.
pub fn cluster() -> &'static TestCluster {
    CLUSTER.get_or_init(|| {
        let base = scratch_base("lib");
        let (server, _) = PrivateServer::ensure_running(&test_options(&base))
            .unwrap_or_else(|e| panic!("starting the test cluster: {e}"));
        // Roles are server-wide: create them once, before tests run in parallel.
        let boot = server.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(pg::bootstrap_private(&Target::private(boot)))
        })
        .join()
        .expect("bootstrap thread")
        .unwrap_or_else(|e| panic!("bootstrapping the test cluster: {e}"));
        TestCluster { server, base }
    })
}

/// A target on a new database `name` of this process's cluster, with roles
/// and the database created.
pub async fn fresh_database(name: &str) -> Target {
    let target = Target::private(cluster().server.clone()).on_database(name);
    let admin = pg::connect(&target.admin_to("postgres"))
        .await
        .expect("connect");
    for sql in [
        format!("DROP DATABASE IF EXISTS {name}"),
        format!("CREATE DATABASE {name}"),
        format!("COMMENT ON DATABASE {name} IS '{}'", pg::DATABASE_MARKER),
    ] {
        admin
            .batch_execute(&sql)
            .await
            .unwrap_or_else(|e| panic!("{sql}: {:?}", e.as_db_error()));
    }
    target
}

/// A new database `name` filled by `generate` (two loader connections).
pub async fn generated(name: &str, scale: f64, seed: u64) -> Target {
    let target = fresh_database(name).await;
    let opts = crmbench::generate::GenerateOptions {
        scale,
        seed,
        jobs: 2,
        replace: false,
        quiet: true,
        out: None,
        access: Default::default(),
    };
    crmbench::generate::generate(&target, &opts)
        .await
        .unwrap_or_else(|e| panic!("generate into {name}: {e}"));
    target
}

/// Stop the postmaster in `base` and remove `base` once this process exits.
fn spawn_reaper(base: &std::path::Path) {
    let script = format!(
        "while kill -0 {pid} 2>/dev/null; do sleep 0.5; done; \
         for f in '{b}'/data/postmaster.pid '{b}'/replica-*/data/postmaster.pid; do \
           [ -f \"$f\" ] || continue; \
           p=$(head -1 \"$f\"); kill -QUIT \"$p\" 2>/dev/null; \
           for i in 1 2 3 4 5 6 7 8 9 10; do kill -0 \"$p\" 2>/dev/null || break; sleep 0.5; done; \
         done; \
         if [ -f '{b}/pooler/pgbouncer.pid' ]; then kill \"$(cat '{b}/pooler/pgbouncer.pid')\" 2>/dev/null; fi; \
         rm -rf '{b}'",
        pid = std::process::id(),
        b = base.display()
    );
    let _ = Command::new("sh")
        .arg("-c")
        .arg(script)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
}

/// Run options for short test runs of `workload`.
pub fn options(workload: &str, seconds: f64) -> crmbench::run::RunOptions {
    crmbench::run::RunOptions {
        workload: std::path::PathBuf::from(workload),
        clients: 4,
        threads: 2,
        duration: std::time::Duration::from_secs_f64(seconds),
        warmup: std::time::Duration::from_millis(500),
        rate: None,
        arrivals: crmbench::run::driver::Arrivals::Poisson,
        seed: 11,
        fresh: false,
        candidate_url: None,
        candidate_database: None,
        self_check: false,
        max_error_rate: 0.01,
        interval: std::time::Duration::from_millis(500),
        max_tries: 1,
        simple: false,
        pipeline: false,
        quiet: true,
        sequential: None,
        worker: None,
        start_at: None,
        trace_params: 0,
        pooler_url: None,
        replica_urls: Vec::new(),
        private_replicas: false,
    }
}

/// Write a workload file into a temporary folder: (folder, path).
pub fn write_workload(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

/// The CRM context block for test workloads.
pub const CONTEXT: &str = r#"
[context]
role = "crmbench_app"
tenant_setting = "app.current_tenant_id"
tenants = "SELECT t.id::text, count(c.id) FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id"
"#;

/// How many databases of `target`'s server have a name LIKE `pattern`
/// (e.g. clones a command must not leave behind).
pub async fn databases_like(target: &Target, pattern: &str) -> i64 {
    pg::connect(&target.admin_to("postgres"))
        .await
        .expect("connect")
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname LIKE $1",
            &[&pattern],
        )
        .await
        .expect("count databases")
        .get(0)
}
