//! The generator on the real server: determinism across --jobs against a
//! committed golden checksum, data invariants, RLS on loaded data, inserts
//! after the load, refusals, and `schema clone`.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;

use crmbench::generate::checksum::{TableChecksum, checksums};
use crmbench::generate::{self, GenerateOptions};
use crmbench::pg::{self, Target};
use crmbench::schema::{self, CreateOptions, audit, clone};

const GOLDEN: &str = "fixtures/golden/checksums-scale0.001-seed1.json";

fn opts(jobs: usize) -> GenerateOptions {
    GenerateOptions {
        scale: 0.001,
        seed: 1,
        jobs,
        replace: false,
        quiet: true,
        out: None,
        access: Default::default(),
    }
}

async fn generated(db: &str, jobs: usize) -> Target {
    let target = common::fresh_database(db).await;
    generate::generate(&target, &opts(jobs))
        .await
        .unwrap_or_else(|e| panic!("generate into {db}: {e}"));
    target
}

async fn sums(target: &Target) -> BTreeMap<String, TableChecksum> {
    let client = pg::connect(&target.admin()).await.unwrap();
    checksums(&client).await.unwrap()
}

#[tokio::test]
async fn same_seed_gives_the_golden_data_whatever_the_jobs() {
    let one = generated("gen_jobs1", 1).await;
    let two = generated("gen_jobs2", 2).await;
    let (a, b) = (sums(&one).await, sums(&two).await);
    assert_eq!(a.len(), 18, "{:?}", a.keys());
    assert_eq!(a, b, "--jobs 1 and --jobs 2 differ");

    if std::env::var_os("CRMBENCH_BLESS").is_some() {
        std::fs::create_dir_all("fixtures/golden").unwrap();
        std::fs::write(GOLDEN, serde_json::to_string_pretty(&a).unwrap() + "\n").unwrap();
    }
    let golden: BTreeMap<String, TableChecksum> = serde_json::from_str(
        &std::fs::read_to_string(GOLDEN)
            .unwrap_or_else(|e| panic!("{GOLDEN}: {e} (run with CRMBENCH_BLESS=1 to create it)")),
    )
    .unwrap();
    for (table, sum) in &golden {
        assert_eq!(
            a.get(table),
            Some(sum),
            "{table} differs from the golden checksum"
        );
    }
    assert_eq!(a.len(), golden.len());
}

#[tokio::test]
async fn loaded_data_keeps_its_invariants_and_isolation() {
    let target = generated("gen_invariants", 2).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    assert!(audit::audit(&admin, pg::SCHEMA).await.unwrap().is_empty());
    assert!(matches!(
        schema::ownership(&admin).await.unwrap(),
        schema::Ownership::Ours {
            complete: true,
            seed: Some(1),
            ..
        }
    ));
    let check = |sql: &'static str| {
        let admin = &admin;
        async move {
            let n: i64 = admin.query_one(sql, &[]).await.unwrap().get(0);
            assert_eq!(n, 0, "{sql}");
        }
    };
    // Every foreign key was validated.
    check("SELECT count(*) FROM pg_constraint WHERE contype = 'f' AND NOT convalidated").await;
    // Order total = sum of its lines.
    check(
        "SELECT count(*) FROM crm.orders o JOIN (SELECT tenant_id, order_id, sum(line_total) s \
         FROM crm.order_items GROUP BY 1, 2) i ON i.tenant_id = o.tenant_id AND i.order_id = o.id \
         WHERE o.total <> i.s",
    )
    .await;
    check(
        "SELECT count(*) FROM crm.orders o WHERE NOT EXISTS (SELECT 1 FROM crm.order_items i \
           WHERE i.tenant_id = o.tenant_id AND i.order_id = o.id)",
    )
    .await;
    // Captured payments of delivered orders cover the total exactly.
    check(
        "SELECT count(*) FROM crm.orders o JOIN (SELECT tenant_id, order_id, sum(amount) s \
         FROM crm.payments WHERE status = 'captured' GROUP BY 1, 2) p \
         ON p.tenant_id = o.tenant_id AND p.order_id = o.id WHERE o.total <> p.s",
    )
    .await;
    check(
        "SELECT count(*) FROM crm.orders o WHERE o.status = 'delivered' AND NOT EXISTS \
         (SELECT 1 FROM crm.payments p WHERE p.tenant_id = o.tenant_id AND p.order_id = o.id \
          AND p.status = 'captured')",
    )
    .await;
    // Deals: open ones have no closed_at; the funnel has many early, few won.
    let row = admin
        .query_one(
            "SELECT count(*) FILTER (WHERE s.position = 0), count(*) FILTER (WHERE s.is_won) \
             FROM crm.deals d JOIN crm.pipeline_stages s ON s.tenant_id = d.tenant_id AND s.id = d.stage_id",
            &[],
        )
        .await
        .unwrap();
    assert!(row.get::<_, i64>(0) > 2 * row.get::<_, i64>(1));

    // The app role sees one tenant's rows only, on loaded data.
    let tenant: uuid::Uuid = admin
        .query_one("SELECT id FROM crm.tenants ORDER BY id LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    let mut app = pg::connect(&target.app()).await.unwrap();
    let tx = app.transaction().await.unwrap();
    tx.query_one(
        "SELECT set_config('app.current_tenant_id', $1, true)",
        &[&tenant.to_string()],
    )
    .await
    .unwrap();
    let foreign: i64 = tx
        .query_one(
            "SELECT (SELECT count(*) FROM crm.orders WHERE tenant_id <> $1) + \
                    (SELECT count(*) FROM crm.customers WHERE tenant_id <> $1)",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(foreign, 0);
    // Inserts after the load take new ids without colliding.
    let customer: i64 = tx
        .query_one(
            "INSERT INTO crm.customers (tenant_id, first_name, last_name, email) \
             VALUES ($1, 'New', 'Customer', 'new.customer@example.com') RETURNING id",
            &[&tenant],
        )
        .await
        .unwrap()
        .get(0);
    let store: i64 = tx
        .query_one("SELECT id FROM crm.stores LIMIT 1", &[])
        .await
        .unwrap()
        .get(0);
    tx.execute(
        "INSERT INTO crm.orders (tenant_id, order_number, customer_id, store_id, status, channel, \
         currency, subtotal, total, placed_at) \
         VALUES ($1, 'NEW-1', $2, $3, 'pending', 'online', 'GBP', 0, 0, now())",
        &[&tenant, &customer, &store],
    )
    .await
    .unwrap();
    tx.execute(
        "INSERT INTO crm.audit_log (tenant_id, entity, entity_id, action, created_at) \
         VALUES ($1, 'customer', $2, 'create', now())",
        &[&tenant, &customer],
    )
    .await
    .unwrap();
    tx.commit().await.unwrap();
}

#[tokio::test]
async fn existing_and_foreign_data_are_refused() {
    let target = generated("gen_refuse", 2).await;
    let err = generate::generate(&target, &opts(2)).await.unwrap_err();
    assert!(err.to_string().contains("already holds a dataset"), "{err}");
    assert!(err.fix().unwrap().contains("--replace"));
    let mut replace = opts(2);
    replace.replace = true;
    generate::generate(&target, &replace).await.unwrap();

    // An empty schema from `schema create` is simply replaced.
    let empty = common::fresh_database("gen_after_create").await;
    schema::create(&empty, &CreateOptions::default())
        .await
        .unwrap();
    generate::generate(&empty, &opts(2)).await.unwrap();

    // A foreign schema is never touched, even with --replace.
    let foreign = common::fresh_database("gen_foreign").await;
    pg::connect(&foreign.admin())
        .await
        .unwrap()
        .batch_execute("CREATE SCHEMA crm; CREATE TABLE crm.customers (id int)")
        .await
        .unwrap();
    let err = generate::generate(&foreign, &replace).await.unwrap_err();
    assert!(matches!(err, crmbench::Error::NotOurs { .. }), "{err:?}");

    for (scale, jobs) in [(0.0, 1), (-1.0, 1), (0.01, 0)] {
        let bad = GenerateOptions {
            scale,
            jobs,
            ..opts(1)
        };
        assert!(matches!(
            generate::generate(&target, &bad).await.unwrap_err(),
            crmbench::Error::Usage { .. }
        ));
    }
}

#[tokio::test]
async fn clone_is_identical_and_drop_clone_only_drops_ours() {
    let target = generated("gen_clone_src", 2).await;
    let report = clone::clone_database(&target, "gen_clone_copy", false)
        .await
        .unwrap();
    assert!(report.bytes > 0);
    let copy = target.on_database("gen_clone_copy");
    assert_eq!(sums(&target).await, sums(&copy).await);
    // Statistics came along: the planner knows the row counts.
    let reltuples: f32 = pg::connect(&copy.admin())
        .await
        .unwrap()
        .query_one(
            "SELECT reltuples FROM pg_class WHERE oid = 'crm.orders'::regclass",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(reltuples > 100.0);
    assert!(clone::drop_clone(&target, "gen_clone_copy").await.unwrap());
    assert!(!clone::drop_clone(&target, "gen_clone_copy").await.unwrap());
    // A database crmbench did not create is refused.
    pg::connect(&target.admin_to("postgres"))
        .await
        .unwrap()
        .batch_execute("CREATE DATABASE not_ours")
        .await
        .unwrap();
    assert!(matches!(
        clone::drop_clone(&target, "not_ours").await.unwrap_err(),
        crmbench::Error::NotOurs { .. }
    ));
}
