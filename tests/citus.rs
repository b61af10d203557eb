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
    admin
        .batch_execute(&d.sql)
        .await
        .unwrap_or_else(|e| panic!("{:?}\n{}", e.as_db_error(), d.sql));
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
    assert_eq!(calls.len(), tables.len() + placement.isolate.len());
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
    // The Zipf-skewed dataset has tenants big enough to isolate at 4 nodes.
    assert!(!placement.isolate.is_empty(), "{:?}", placement);
    assert!(d.sql.contains("-- tenant placement on 4 nodes"));
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
