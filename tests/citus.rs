//! Ready for Citus, tested without Citus: the distribution SQL runs against
//! stubs with Citus's own signatures that enforce its key rules
//! (fixtures/citus/stubs.sql), the tenant hash is the server's own
//! `uuid_hash()` (and `hash_bytes` is `hashtext()` for every tail length),
//! and the placement isolates the tenants the workload's load calls for.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::distribute::{self, hash};
use crmbench::pg;

const STUBS: &str = include_str!("../fixtures/citus/stubs.sql");

#[tokio::test]
async fn distribution_sql_runs_against_citus_signatures_in_dependency_order() {
    let target = common::generated("citus_sql", 0.002, 7).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin.batch_execute(STUBS).await.unwrap();
    let workload = std::path::Path::new("workloads/crm.toml");
    let d = distribute::distribution(&target, 32, Some(4), workload)
        .await
        .unwrap();
    let placement = d.placement.as_ref().unwrap();
    let isolate: Vec<String> = placement.isolate.iter().map(|t| t.id.clone()).collect();
    assert!(d.sql.contains("-- tenant placement on 4 nodes"));
    assert!(d.sql.ends_with(&distribute::sql::statements(
        target.database(),
        32,
        &isolate
    )));
    assert!(
        distribute::placement::imbalance(&placement.with_isolation)
            <= distribute::placement::imbalance(&placement.hashed)
    );
    // Run it with the biggest tenant isolated, so every Citus function is called.
    let biggest: String = admin
        .query_one(
            "SELECT tenant_id::text FROM crm.customers GROUP BY 1 ORDER BY count(*) DESC LIMIT 1",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    let sql = distribute::sql::statements(target.database(), 32, std::slice::from_ref(&biggest));
    admin
        .batch_execute(&sql)
        .await
        .unwrap_or_else(|e| panic!("{:?}\n{sql}", e.as_db_error()));
    let calls: Vec<(String, String, Option<String>)> = admin
        .query(
            "SELECT fn, n.nspname || '.' || c.relname, dist_column FROM citus_stub.calls \
             JOIN pg_class c ON c.oid = tbl JOIN pg_namespace n ON n.oid = c.relnamespace \
             ORDER BY seq",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect();
    let tables = crmbench::schema::tables::TABLES;
    assert_eq!(calls.len(), tables.len() + 1);
    assert_eq!(calls[tables.len()].0, "isolate_tenant_to_new_shard");
    for (call, table) in calls.iter().zip(tables.iter()) {
        assert_eq!(call.1, format!("crm.{}", table.name));
    }
    assert_eq!(calls[0].0, "create_reference_table");
    assert_eq!(calls[1].0, "create_reference_table");
    assert!(
        calls[2..tables.len()]
            .iter()
            .all(|c| c.2.as_deref() == Some("tenant_id"))
    );
    // The stubs hold the order: a tenant table before the tenants is refused.
    admin
        .batch_execute("DELETE FROM citus_stub.calls")
        .await
        .unwrap();
    let wrong = "SELECT create_reference_table('crm.currencies'); \
                 SELECT create_distributed_table('crm.stores', 'tenant_id');";
    let e = admin.batch_execute(wrong).await.unwrap_err();
    let message = e.as_db_error().unwrap().message().to_string();
    assert!(
        message.contains("neither distributed nor a reference table"),
        "{message}"
    );
}

#[tokio::test]
async fn tenant_hash_is_the_servers_uuid_hash() {
    let target = common::generated("citus_hash", 0.002, 7).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let rows = admin
        .query("SELECT id, uuid_hash(id) FROM crm.tenants", &[])
        .await
        .unwrap();
    assert!(rows.len() >= 20);
    for r in &rows {
        let id: uuid::Uuid = r.get(0);
        assert_eq!(hash::uuid_hash(&id), r.get::<_, i32>(1), "{id}");
    }
    // Every tail length of lookup3 (0–11 bytes after whole 12-byte blocks).
    let text: String = "crmbench-citus-hash-check-0123456789abcdef".into();
    for n in 0..=text.len() {
        let s = &text[..n];
        let server: i32 = admin
            .query_one("SELECT hashtext($1)", &[&s])
            .await
            .unwrap()
            .get(0);
        assert_eq!(hash::hash_bytes(s.as_bytes()) as i32, server, "{s:?}");
    }
}

/// `--tenant-frame set-local`: every transaction sets the tenant with
/// `SET LOCAL` (what Citus propagates) and set_config is not sent at all,
/// while row-level security still sees the tenant (the customer lookups
/// return rows: without a tenant the policies return none).
#[tokio::test]
async fn set_local_frame_runs_the_workload_under_rls() {
    use crmbench::workload::FrameForm;
    let target = common::generated("citus_frame", 0.002, 7).await;
    let ctx = crmbench::workload::context::WorkloadContext::prepare(
        &target,
        std::path::Path::new("workloads/crm.toml"),
    )
    .await
    .unwrap();
    for (form, simple) in [
        (FrameForm::SetConfig, false),
        (FrameForm::SetLocal, false),
        (FrameForm::SetLocal, true),
    ] {
        let ctx = ctx.clone().with_frame_form(form);
        let mut opts = common::options("workloads/crm.toml", 1.5);
        opts.simple = simple;
        let r = crmbench::run::run_with(&ctx, &target, &opts)
            .await
            .unwrap()
            .results;
        let case = format!("{form:?} simple={simple}");
        assert!(r.partial.is_none(), "{case}: {:?}", r.partial);
        for q in &r.queries {
            assert!(
                q.baseline.errors.is_empty(),
                "{case} {}: {:?}",
                q.name,
                q.baseline.errors
            );
        }
        let sum = |prefix: &str, pick: fn(&crmbench::results::StatementStats) -> i64| -> i64 {
            r.statements
                .iter()
                .filter(|s| s.query.trim_start().to_lowercase().starts_with(prefix))
                .map(pick)
                .sum()
        };
        let set_config = sum("select set_config", |s| s.calls);
        match form {
            FrameForm::SetConfig => assert!(set_config > 0, "{case}"),
            FrameForm::SetLocal => assert_eq!(set_config, 0, "{case}"),
        }
        let customers = sum("select id, first_name", |s| s.rows);
        assert!(
            customers > 0,
            "{case}: no customer rows: the tenant was not set"
        );
    }
}
