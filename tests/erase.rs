//! `crmbench erase` proves its result on a generated CRM: the subject's rows
//! and everything referencing them are gone, other tenants are untouched,
//! and a policy that would leave a referencing row, or a trigger that
//! touches another tenant, fails the proof, names the table and changes
//! nothing.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::erase::{EraseOptions, erase};
use crmbench::pg::{self, Target};
use tokio_postgres::Client;

const POLICY: &str = "fixtures/erase/crm.toml";
const RETAIN: &str = "fixtures/erase/retain.toml";

fn options(customer: Option<String>, tenant: Option<String>, policy: Option<&str>) -> EraseOptions {
    EraseOptions {
        schema: "crm".into(),
        customer,
        tenant,
        policy: policy.map(Into::into),
        dry_run: false,
        column: "tenant_id".into(),
        setting: "app.current_tenant_id".into(),
    }
}

/// A customer with orders and audit rows: (tenant, id).
async fn busy_customer(admin: &Client) -> (String, String) {
    let row = admin
        .query_one(
            "SELECT c.tenant_id::text, c.id::text FROM crm.customers c \
             WHERE EXISTS (SELECT 1 FROM crm.orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id) \
               AND EXISTS (SELECT 1 FROM crm.audit_log a WHERE a.tenant_id = c.tenant_id \
                           AND a.entity = 'customer' AND a.entity_id = c.id) \
             ORDER BY 1, 2 LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    (row.get(0), row.get(1))
}

/// Rows per tenant table that are not of `tenant`, and of it.
async fn counts(admin: &Client, tenant: &str) -> Vec<(String, i64, i64)> {
    let tables: Vec<String> = admin
        .query(
            "SELECT table_name::text FROM information_schema.columns \
             WHERE table_schema = 'crm' AND column_name = 'tenant_id' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let mut out = Vec::new();
    for t in tables {
        let r = admin
            .query_one(
                &format!(
                    "SELECT count(*) FILTER (WHERE tenant_id::text <> $1), \
                            count(*) FILTER (WHERE tenant_id::text = $1) FROM crm.{t}"
                ),
                &[&tenant],
            )
            .await
            .unwrap();
        out.push((t, r.get(0), r.get(1)));
    }
    out
}

async fn dataset(db: &str) -> (Target, Client) {
    let target = common::generated(db, 0.001, 7).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    (target, admin)
}

#[tokio::test]
async fn a_customer_is_erased_with_every_reference_and_nothing_else() {
    let (target, admin) = dataset("erase_customer").await;
    let (tenant, id) = busy_customer(&admin).await;
    let before = counts(&admin, &tenant).await;
    let report = erase(&target, &options(Some(id.clone()), None, Some(POLICY)))
        .await
        .unwrap();
    assert_eq!(report.tenant, tenant);
    assert!(report.committed);
    assert_eq!(report.proofs.len(), 4, "{}", report.render());
    for t in ["customers", "orders", "audit_log"] {
        assert!(
            report.deleted.get(t).copied().unwrap_or(0) > 0,
            "{}",
            report.render()
        );
    }
    let left: i64 = admin
        .query_one(
            "SELECT (SELECT count(*) FROM crm.customers WHERE id::text = $1) \
                  + (SELECT count(*) FROM crm.orders WHERE customer_id::text = $1) \
                  + (SELECT count(*) FROM crm.audit_log WHERE entity = 'customer' AND entity_id::text = $1 \
                     AND tenant_id::text = $2)",
            &[&id, &tenant],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
    let after = counts(&admin, &tenant).await;
    for ((t, other_before, own_before), (_, other_after, own_after)) in before.iter().zip(&after) {
        assert_eq!(
            other_before, other_after,
            "{t}: another tenant's rows changed"
        );
        let gone = report.deleted.get(t).copied().unwrap_or(0) as i64;
        assert_eq!(own_before - own_after, gone, "{t}: deleted count");
    }
}

#[tokio::test]
async fn a_policy_leaving_a_reference_or_a_trigger_touching_another_tenant_fails_and_changes_nothing()
 {
    let (target, admin) = dataset("erase_proofs").await;
    let (tenant, id) = busy_customer(&admin).await;
    let before = counts(&admin, &tenant).await;
    // The audit rows are declared but kept: they would name a deleted customer.
    let dir = tempfile::tempdir().unwrap();
    let keep = dir.path().join("keep.toml");
    std::fs::write(
        &keep,
        std::fs::read_to_string(POLICY)
            .unwrap()
            .replace("action = \"delete\"", "action = \"keep\""),
    )
    .unwrap();
    let err = erase(&target, &options(Some(id.clone()), None, keep.to_str()))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("proof failed") && err.contains("audit_log"),
        "{err}"
    );
    assert_eq!(counts(&admin, &tenant).await, before);

    // A trigger (as a superuser: past row-level security) deletes another
    // tenant's audit row whenever an order goes: the counters catch it.
    admin
        .batch_execute(&format!(
            "CREATE FUNCTION crm.spill() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER AS $$ \
             BEGIN DELETE FROM crm.audit_log WHERE ctid = (SELECT ctid FROM crm.audit_log \
               WHERE tenant_id <> '{tenant}' LIMIT 1); RETURN OLD; END $$; \
             CREATE TRIGGER spill AFTER DELETE ON crm.orders FOR EACH ROW EXECUTE FUNCTION crm.spill();"
        ))
        .await
        .unwrap();
    let err = erase(&target, &options(Some(id), None, Some(POLICY)))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("proof failed") && err.contains("audit_log changed beyond"),
        "{err}"
    );
    admin
        .batch_execute("DROP TRIGGER spill ON crm.orders; DROP FUNCTION crm.spill()")
        .await
        .unwrap();
    assert_eq!(counts(&admin, &tenant).await, before);
}

#[tokio::test]
async fn a_tenant_is_erased_dry_run_first_on_a_clone() {
    let (target, admin) = dataset("erase_tenant").await;
    let (tenant, _) = busy_customer(&admin).await;
    let before = counts(&admin, &tenant).await;
    // PostgreSQL copies a database only while nobody is connected to it.
    drop(admin);
    let mut opts = options(None, Some(tenant.clone()), None);
    opts.dry_run = true;
    let dry = erase(&target, &opts).await.unwrap();
    assert!(!dry.committed);
    let clone = dry.clone.clone().unwrap();
    assert!(
        dry.proofs.iter().any(|p| p.contains("same checksum")),
        "{}",
        dry.render()
    );
    assert_eq!(
        common::databases_like(&target, &clone).await,
        0,
        "clone dropped"
    );
    let admin = pg::connect(&target.admin()).await.unwrap();
    assert_eq!(
        counts(&admin, &tenant).await,
        before,
        "a dry run changes nothing"
    );
    opts.dry_run = false;
    let done = erase(&target, &opts).await.unwrap();
    assert_eq!(done.deleted, dry.deleted);
    assert_eq!(done.deleted.get("tenants"), Some(&1));
    for ((t, other_before, _), (_, other_after, own_after)) in
        before.iter().zip(&counts(&admin, &tenant).await)
    {
        assert_eq!(other_before, other_after, "{t}");
        assert_eq!(*own_after, 0, "{t}");
    }
}

/// The customer's personal columns as text, and its orders.
async fn personal(admin: &Client, tenant: &str, id: &str) -> (Vec<Option<String>>, i64) {
    let row = admin
        .query_one(
            "SELECT first_name, last_name, email, phone, city, \
                    (SELECT count(*) FROM crm.orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id) \
             FROM crm.customers c WHERE tenant_id::text = $1 AND id::text = $2",
            &[&tenant, &id],
        )
        .await
        .unwrap();
    ((0..5).map(|i| row.get(i)).collect(), row.get(5))
}

#[tokio::test]
async fn a_kept_customer_is_pseudonymised_with_its_orders_and_proven() {
    let (target, admin) = dataset("erase_pseudonym").await;
    let (tenant, id) = busy_customer(&admin).await;
    let (names, orders) = personal(&admin, &tenant, &id).await;
    let before = counts(&admin, &tenant).await;

    // A trigger that puts the e-mail back: the personal-value proof fails.
    admin
        .batch_execute(
            "CREATE FUNCTION crm.keep_email() RETURNS trigger LANGUAGE plpgsql AS $$ \
             BEGIN NEW.email := OLD.email; RETURN NEW; END $$; \
             CREATE TRIGGER keep_email BEFORE UPDATE ON crm.customers \
             FOR EACH ROW EXECUTE FUNCTION crm.keep_email();",
        )
        .await
        .unwrap();
    let opts = options(Some(id.clone()), None, Some(RETAIN));
    let err = erase(&target, &opts).await.unwrap_err().to_string();
    assert!(
        err.contains("proof failed") && err.contains("customers still hold the subject's email"),
        "{err}"
    );
    assert_eq!(counts(&admin, &tenant).await, before, "rolled back");
    admin
        .batch_execute("DROP TRIGGER keep_email ON crm.customers; DROP FUNCTION crm.keep_email()")
        .await
        .unwrap();

    let report = erase(&target, &opts).await.unwrap();
    assert_eq!(
        report.pseudonymised.get("customers"),
        Some(&1),
        "{}",
        report.render()
    );
    assert!(report.deleted.get("audit_log").copied().unwrap_or(0) > 0);
    assert!(!report.deleted.contains_key("orders"));
    assert_eq!(report.proofs.len(), 4, "{}", report.render());
    assert!(report.proofs[3].contains("by xmin"), "{}", report.render());
    let (after, orders_after) = personal(&admin, &tenant, &id).await;
    assert_eq!(orders_after, orders, "orders kept");
    for (old, new) in names.iter().zip(&after) {
        assert!(old.is_none() || old != new, "{old:?} kept: {after:?}");
    }
    assert!(
        after[2].as_deref().unwrap().starts_with("erased:"),
        "{after:?}"
    );
    for ((t, other_before, _), (_, other_after, _)) in
        before.iter().zip(&counts(&admin, &tenant).await)
    {
        assert_eq!(
            other_before, other_after,
            "{t}: another tenant's rows changed"
        );
    }
}
