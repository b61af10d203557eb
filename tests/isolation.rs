//! Tenant isolation under forced row-level security, on the real server.
//! Tables are enumerated from the catalog, so a new tenant-owned table is
//! covered without touching this file.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::pg::{self, Target, roles};
use crmbench::schema::{self, CreateOptions, audit};
use tokio_postgres::Client;

const A: &str = "00000000-0000-4000-8000-00000000000a";
const B: &str = "00000000-0000-4000-8000-00000000000b";
const FIXTURE: &str = include_str!("../fixtures/sql/one_tenant.sql");

async fn two_tenants(db: &str) -> Target {
    let target = common::fresh_database(db).await;
    schema::create(&target, &CreateOptions::default())
        .await
        .expect("schema create");
    let admin = pg::connect(&target.admin()).await.expect("admin");
    for (id, name) in [(A, "alpha"), (B, "beta")] {
        admin
            .batch_execute(&FIXTURE.replace("{T}", id).replace("{N}", name))
            .await
            .expect("load fixture");
    }
    target
}

async fn tenant_tables(client: &Client) -> Vec<String> {
    let tables: Vec<String> = audit::tables(client, pg::SCHEMA)
        .await
        .expect("list tables")
        .into_iter()
        .filter(|t| t.tenant_owned)
        .map(|t| t.table)
        .collect();
    assert!(tables.len() >= 16, "only {} tenant tables", tables.len());
    tables
}

/// (rows seen, rows of another tenant seen) for `table` with `tenant` set.
async fn seen(client: &mut Client, table: &str, tenant: &str) -> (i64, i64) {
    let tx = client.transaction().await.expect("begin");
    tx.query_one(
        "SELECT set_config('app.current_tenant_id', $1, true)",
        &[&tenant],
    )
    .await
    .expect("set tenant");
    let row = tx
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE tenant_id <> $1::text::uuid) FROM crm.{table}"
            ),
            &[&tenant],
        )
        .await
        .unwrap_or_else(|e| panic!("select from {table}: {e}"));
    tx.rollback().await.expect("rollback");
    (row.get(0), row.get(1))
}

#[tokio::test]
async fn app_role_sees_only_the_current_tenant_in_every_table() {
    let target = two_tenants("iso_read").await;
    let mut app = pg::connect(&target.app()).await.expect("app");
    for table in tenant_tables(&app).await {
        for tenant in [A, B] {
            let (rows, foreign) = seen(&mut app, &table, tenant).await;
            assert!(
                rows >= 1,
                "{table}: tenant {tenant} sees none of its own rows"
            );
            assert_eq!(
                foreign, 0,
                "{table}: tenant {tenant} sees another tenant's rows"
            );
        }
    }
    // The tenants table shows only the tenant's own row.
    let tx = app.transaction().await.unwrap();
    tx.query_one(
        "SELECT set_config('app.current_tenant_id', $1, true)",
        &[&A],
    )
    .await
    .unwrap();
    let n: i64 = tx
        .query_one("SELECT count(*) FROM crm.tenants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
}

#[tokio::test]
async fn app_role_is_not_owner_superuser_or_bypassrls() {
    let target = two_tenants("iso_role").await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let row = admin
        .query_one(
            "SELECT rolsuper, rolbypassrls, rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&roles::APP],
        )
        .await
        .unwrap();
    assert!(!row.get::<_, bool>(0) && !row.get::<_, bool>(1) && row.get::<_, bool>(2));
    let owned: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = 'crm' AND pg_get_userbyid(c.relowner) = $1",
            &[&roles::APP],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(owned, 0, "the app role owns tables");
}

#[tokio::test]
async fn writes_carrying_another_tenant_are_rejected() {
    let target = two_tenants("iso_write").await;
    let mut app = pg::connect(&target.app()).await.expect("app");
    for table in tenant_tables(&app).await {
        // INSERT of a copy of one of A's rows relabelled as B's, with A set.
        let tx = app.transaction().await.unwrap();
        tx.query_one(
            "SELECT set_config('app.current_tenant_id', $1, true)",
            &[&A],
        )
        .await
        .unwrap();
        tx.batch_execute(&format!(
            "CREATE TEMP TABLE copy ON COMMIT DROP AS SELECT * FROM crm.{table} LIMIT 1; \
             UPDATE copy SET tenant_id = '{B}'"
        ))
        .await
        .unwrap_or_else(|e| panic!("{table}: preparing the copy: {e}"));
        let err = tx
            .batch_execute(&format!("INSERT INTO crm.{table} SELECT * FROM copy"))
            .await
            .expect_err(&format!("{table}: INSERT carrying tenant B succeeded"));
        assert_eq!(
            err.code().map(|c| c.code()),
            Some("42501"),
            "{table}: {err}"
        );
        tx.rollback().await.unwrap();

        // UPDATE moving A's rows to B.
        let tx = app.transaction().await.unwrap();
        tx.query_one(
            "SELECT set_config('app.current_tenant_id', $1, true)",
            &[&A],
        )
        .await
        .unwrap();
        if table == "audit_log" {
            // The app may only append to the audit log.
            let err = tx
                .batch_execute(&format!("UPDATE crm.{table} SET tenant_id = '{B}'"))
                .await
                .expect_err("audit_log UPDATE succeeded");
            assert_eq!(err.code().map(|c| c.code()), Some("42501"));
        } else {
            let err = tx
                .batch_execute(&format!("UPDATE crm.{table} SET tenant_id = '{B}'"))
                .await
                .expect_err(&format!("{table}: UPDATE to tenant B succeeded"));
            assert_eq!(
                err.code().map(|c| c.code()),
                Some("42501"),
                "{table}: {err}"
            );
        }
        tx.rollback().await.unwrap();
    }
}

#[tokio::test]
async fn without_a_tenant_every_read_fails_closed() {
    let target = two_tenants("iso_closed").await;
    let mut app = pg::connect(&target.app()).await.expect("app");
    let tables = tenant_tables(&app).await;
    for table in &tables {
        let result = app
            .query_one(&format!("SELECT count(*) FROM crm.{table}"), &[])
            .await;
        match result {
            Err(_) => {}
            Ok(row) => assert_eq!(row.get::<_, i64>(0), 0, "{table} readable with no tenant"),
        }
    }
    // After a transaction-local setting ends, the setting is empty: still closed.
    let tx = app.transaction().await.unwrap();
    tx.query_one(
        "SELECT set_config('app.current_tenant_id', $1, true)",
        &[&A],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
    for table in &tables {
        if let Ok(row) = app
            .query_one(&format!("SELECT count(*) FROM crm.{table}"), &[])
            .await
        {
            assert_eq!(
                row.get::<_, i64>(0),
                0,
                "{table} readable after the tenant was reset"
            );
        }
    }
}

#[tokio::test]
async fn the_owner_is_subject_to_the_policy_too() {
    let target = two_tenants("iso_owner").await;
    let mut owner = pg::connect(&target.admin()).await.expect("admin");
    // The superuser sees both tenants (so the checks below are meaningful) …
    let both: i64 = owner
        .query_one("SELECT count(DISTINCT tenant_id) FROM crm.customers", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(both, 2);
    // … the owner role does not.
    owner
        .batch_execute(&format!("SET ROLE {}", roles::OWNER))
        .await
        .unwrap();
    for table in tenant_tables(&owner).await {
        assert!(
            owner
                .query_one(&format!("SELECT count(*) FROM crm.{table}"), &[])
                .await
                .is_err(),
            "owner reads {table} with no tenant set"
        );
        let (rows, foreign) = seen(&mut owner, &table, A).await;
        assert!(rows >= 1);
        assert_eq!(foreign, 0, "owner sees another tenant's rows in {table}");
    }
}
