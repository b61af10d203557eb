//! Least privilege on a `--database-url` server: `run` and `capture` as a
//! role holding only what the README's table lists (membership in the
//! workload's role and the sampler, `pg_read_all_stats`), and each missing
//! privilege refused before anything runs, named with the GRANT that fixes it.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

const DB: &str = "priv_crm";
const USER: &str = "lp_user";

fn crmbench(url: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        // The private server must not be used: everything goes through the URL.
        .env(
            "CRMBENCH_DATA_DIR",
            "/nonexistent/crmbench-must-not-be-used",
        )
        .env("DATABASE_URL", url)
        .args(args)
        .output()
        .unwrap()
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn refused(out: &Output) -> String {
    assert!(!out.status.success(), "expected a refusal");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn run_and_capture_with_least_privilege() {
    let target = common::generated(DB, 0.002, 7).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(&format!(
            "CREATE ROLE {USER} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS; \
             GRANT crmbench_app, crmbench_sampler, pg_read_all_stats TO {USER}; \
             SELECT pg_stat_statements_reset();"
        ))
        .await
        .unwrap();
    let url = common::cluster().server.url(USER, DB);
    let dir = tempfile::tempdir().unwrap();
    let workload = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/crm.toml");
    let source = dir.path().join("source");
    ok(&crmbench(
        &url,
        &[
            "run",
            "--workload",
            workload,
            "--duration",
            "2s",
            "--warmup",
            "0s",
            "--clients",
            "2",
            "-q",
            "--out",
            source.to_str().unwrap(),
        ],
    ));
    let file = dir.path().join("captured.toml");
    let file = file.to_str().unwrap();
    let stdout = ok(&crmbench(&url, &["capture", "--out", file]));
    assert!(stdout.contains("role crmbench_app"), "{stdout}");
    ok(&crmbench(&url, &["run", "--workload", file, "--check"]));

    // Without pg_read_all_stats the other roles' statements are hidden:
    // refused up front, naming the role and the GRANT.
    admin
        .batch_execute(&format!("REVOKE pg_read_all_stats FROM {USER}"))
        .await
        .unwrap();
    let err = refused(&crmbench(&url, &["capture", "--out", file]));
    assert!(
        err.contains("missing privilege: pg_read_all_stats for lp_user")
            && err.contains("GRANT pg_read_all_stats TO lp_user"),
        "{err}"
    );

    // Without membership in the workload's role: named before any load.
    admin
        .batch_execute(&format!("REVOKE crmbench_app FROM {USER}"))
        .await
        .unwrap();
    let err = refused(&crmbench(&url, &["run", "--workload", file, "--check"]));
    assert!(
        err.contains("membership in crmbench_app") && err.contains("GRANT crmbench_app TO lp_user"),
        "{err}"
    );

    // A workload without a role runs as the URL's user: every table it
    // reads or writes is checked, and the GRANTs listed together (the
    // sampler's SELECTs no longer reach it).
    admin
        .batch_execute(&format!("REVOKE crmbench_sampler FROM {USER}"))
        .await
        .unwrap();
    let (_wdir, own) = common::write_workload(
        "name = \"own\"\n[context]\ntenant_setting = \"app.current_tenant_id\"\n\
         tenants = \"SELECT id::text, 1 FROM crm.tenants\"\n\
         [[query]]\nname = \"touch\"\nkind = \"write\"\n\
         sql = \"UPDATE crm.customers SET phone = phone WHERE id IN (SELECT customer_id FROM crm.orders LIMIT 1)\"\n",
    );
    let err = refused(&crmbench(&url, &["run", "--workload", &own, "--check"]));
    assert!(
        err.contains("USAGE on schema crm for lp_user")
            && err.contains("UPDATE on crm.customers for lp_user")
            && err.contains("SELECT on crm.orders for lp_user")
            && err.contains("GRANT UPDATE ON crm.customers TO lp_user")
            && err.contains("GRANT SELECT ON crm.orders TO lp_user"),
        "{err}"
    );
}
