//! The schema's multi-tenant rules, read from the live catalog: the shipped
//! schema passes, and each way of breaking a rule is caught (so the isolation
//! guarantees cannot silently rot when a table is added).

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::pg::{self, Target};
use crmbench::schema::{self, CreateOptions, Ownership, audit};

async fn created(db: &str) -> Target {
    let target = common::fresh_database(db).await;
    schema::create(&target, &CreateOptions::default())
        .await
        .expect("schema create");
    target
}

#[tokio::test]
async fn shipped_schema_has_every_table_and_keeps_every_rule() {
    let target = created("cat_ok").await;
    let client = pg::connect(&target.admin()).await.unwrap();
    let tables = audit::tables(&client, pg::SCHEMA).await.unwrap();
    let names: Vec<&str> = tables.iter().map(|t| t.table.as_str()).collect();
    for wanted in [
        "tenants",
        "stores",
        "staff",
        "customers",
        "categories",
        "suppliers",
        "products",
        "product_variants",
        "inventory",
        "orders",
        "order_items",
        "payments",
        "pipeline_stages",
        "deals",
        "deal_stage_history",
        "interactions",
        "audit_log",
    ] {
        assert!(names.contains(&wanted), "missing table {wanted}");
    }
    for t in tables.iter().filter(|t| t.tenant_owned) {
        assert!(t.enabled && t.forced, "{} RLS not forced", t.table);
    }
    let violations = audit::audit(&client, pg::SCHEMA).await.unwrap();
    assert!(violations.is_empty(), "{violations:#?}");
    assert!(matches!(
        schema::ownership(&client).await.unwrap(),
        Ownership::Ours { complete: true, .. }
    ));
}

/// Each break, applied to a fresh copy of the schema, must produce a violation
/// naming the object.
#[tokio::test]
async fn every_kind_of_break_is_caught() {
    let breaks: [(&str, &str, &str); 9] = [
        (
            "policy removed",
            "DROP POLICY tenant_isolation ON crm.orders",
            "orders",
        ),
        (
            "force removed",
            "ALTER TABLE crm.deals NO FORCE ROW LEVEL SECURITY",
            "deals",
        ),
        (
            "rls disabled",
            "ALTER TABLE crm.payments DISABLE ROW LEVEL SECURITY",
            "payments",
        ),
        (
            "leaky extra policy",
            "CREATE POLICY open_read ON crm.customers FOR SELECT USING (true)",
            "customers.open_read",
        ),
        (
            "new table without rls",
            "CREATE TABLE crm.wishlists (tenant_id uuid NOT NULL, id bigint, \
             PRIMARY KEY (tenant_id, id))",
            "wishlists",
        ),
        (
            "primary key without tenant_id",
            "ALTER TABLE crm.interactions DROP CONSTRAINT interactions_pkey CASCADE; \
             ALTER TABLE crm.interactions ADD PRIMARY KEY (id)",
            "interactions.interactions_pkey",
        ),
        (
            "global unique email",
            "ALTER TABLE crm.customers ADD CONSTRAINT customers_email_global UNIQUE (email)",
            "customers.customers_email_global",
        ),
        (
            "foreign key without tenant_id",
            "ALTER TABLE crm.order_items ADD COLUMN order_ref bigint; \
             CREATE UNIQUE INDEX orders_id_only ON crm.orders (id); \
             ALTER TABLE crm.order_items ADD CONSTRAINT order_items_order_ref_fkey \
             FOREIGN KEY (order_ref) REFERENCES crm.orders (id)",
            "order_items.order_items_order_ref_fkey",
        ),
        (
            "table without tenant_id",
            "CREATE TABLE crm.notes (id bigint PRIMARY KEY, body text)",
            "notes",
        ),
    ];
    for (i, (what, sql, object)) in breaks.iter().enumerate() {
        let target = created(&format!("cat_break_{i}")).await;
        let client = pg::connect(&target.admin()).await.unwrap();
        assert!(audit::audit(&client, pg::SCHEMA).await.unwrap().is_empty());
        client
            .batch_execute(sql)
            .await
            .unwrap_or_else(|e| panic!("{what}: {e:?}"));
        let violations = audit::audit(&client, pg::SCHEMA).await.unwrap();
        assert!(
            violations.iter().any(|v| v.object == *object),
            "{what}: no violation on {object}: {violations:#?}"
        );
    }
}

#[tokio::test]
async fn drop_and_replace_refuse_a_foreign_schema() {
    let target = common::fresh_database("cat_foreign").await;
    let client = pg::connect(&target.admin()).await.unwrap();
    client
        .batch_execute("CREATE SCHEMA crm; CREATE TABLE crm.customers (id int)")
        .await
        .unwrap();
    let err = schema::drop(&target).await.unwrap_err();
    assert!(matches!(err, crmbench::Error::NotOurs { .. }), "{err:?}");
    let err = schema::create(&target, &CreateOptions { replace: true })
        .await
        .unwrap_err();
    assert!(matches!(err, crmbench::Error::NotOurs { .. }), "{err:?}");
    // Still there, untouched.
    let n: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_tables WHERE schemaname = 'crm'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);

    // A marker naming another tool is foreign too.
    client
        .batch_execute(
            "CREATE TABLE crm.crmbench_meta (tool text); INSERT INTO crm.crmbench_meta VALUES ('other')",
        )
        .await
        .unwrap();
    assert!(matches!(
        schema::drop(&target).await.unwrap_err(),
        crmbench::Error::NotOurs { .. }
    ));
}

#[tokio::test]
async fn create_refuses_an_existing_schema_and_replace_recreates_it() {
    let target = created("cat_replace").await;
    let err = schema::create(&target, &CreateOptions::default())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("already exists"), "{err}");
    assert!(err.fix().unwrap().contains("--replace"));
    let report = schema::create(&target, &CreateOptions { replace: true })
        .await
        .unwrap();
    assert!(report.replaced);
    assert_eq!(
        schema::drop(&target).await.unwrap(),
        schema::DropOutcome::Dropped
    );
    assert_eq!(
        schema::drop(&target).await.unwrap(),
        schema::DropOutcome::Absent
    );
}
