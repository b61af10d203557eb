//! Plans and findings: every fixture plan under fixtures/plans/ yields the
//! finding its file names (and the healthy one none); on the real server the
//! built-in workload explains without errors, under RLS, and reports the
//! non-leakproof predicates it contains (ILIKE, numeric, jsonb).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use crmbench::explain::findings::{FindingKind, NumericColumns, findings};
use crmbench::explain::plan::Explained;
use crmbench::explain::{self, PlansFile};

#[test]
fn every_fixture_plan_gives_its_finding() {
    let mut seen = Vec::new();
    for entry in std::fs::read_dir("fixtures/plans").unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            continue; // candidates/: the advisor's fixtures
        }
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let plan = Explained::parse(&v["explain"]).unwrap();
        let numeric: NumericColumns = serde_json::from_value(v["numeric"].clone()).unwrap();
        let found = findings(&plan.plan, v["rls"].as_bool().unwrap(), &numeric);
        match v["expect"].as_str() {
            None => assert!(found.is_empty(), "{}: {found:?}", path.display()),
            Some(kind) => {
                let kind: FindingKind = serde_json::from_value(serde_json::json!(kind)).unwrap();
                assert!(
                    found.iter().any(|f| f.kind == kind),
                    "{}: {found:?}",
                    path.display()
                );
                seen.push(kind);
            }
        }
    }
    assert!(seen.len() >= 7, "{seen:?}");
}

#[tokio::test]
async fn built_in_workload_explains_under_rls_with_its_findings() {
    let target = common::generated("explain_crm", 0.005, 2).await;
    let file = explain::explain(&target, Path::new("workloads/crm.toml"), 1)
        .await
        .unwrap();
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    assert!(file.rls);
    assert!(file.queries.len() >= 16);
    for q in &file.queries {
        assert_eq!(q.tenants.len(), 2, "{}", q.name);
        for t in &q.tenants {
            for s in &t.statements {
                assert!(s.error.is_none(), "{} ({}): {:?}", q.name, t.class, s.error);
                assert_eq!(s.fingerprint.len(), 16);
            }
        }
    }
    let rls_hint = |name: &str, needle: &str| {
        let q = file.queries.iter().find(|q| q.name == name).unwrap();
        assert!(
            q.findings
                .iter()
                .any(|f| f.kind == FindingKind::RlsNonLeakproof && f.hint.contains(needle)),
            "{name}: {:?}",
            q.findings
        );
    };
    rls_hint("customer_name_search", "ILIKE");
    rls_hint("product_by_attributes", "jsonb");
    rls_hint("pipeline_filter", "numeric");
    // Writes were rolled back: explaining changed nothing.
    let orders: i64 = admin
        .query_one(
            "SELECT count(*) FROM crm.orders WHERE order_number LIKE 'POS-%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(orders, 0);
    // Advisor candidates from these plans: a tenant-leading index on orders
    // for the customer foreign key (order history, top spenders).
    let tenant_tables: std::collections::HashSet<String> = crmbench::schema::TENANT_TABLES
        .iter()
        .map(|t| t.to_string())
        .collect();
    let numeric: NumericColumns = [
        ("products".to_string(), vec!["base_price".to_string()]),
        ("deals".to_string(), vec!["value".to_string()]),
    ]
    .into_iter()
    .collect();
    let cands = crmbench::advise::workload_candidates(
        &file,
        &numeric,
        &tenant_tables,
        "tenant_id",
        &Default::default(),
    );
    let orders = cands
        .iter()
        .find(|(d, _)| {
            d.table == "orders"
                && d.columns.len() >= 2
                && d.columns[0].name == "tenant_id"
                && d.columns[1].name == "customer_id"
        })
        .unwrap_or_else(|| {
            panic!(
                "{:#?}",
                cands
                    .iter()
                    .map(|c| c.0.create_sql("crm"))
                    .collect::<Vec<_>>()
            )
        });
    assert!(
        orders.1.iter().any(|q| q == "customer_orders"),
        "{:?}",
        orders.1
    );
    // The primary keys already serve (tenant_id, id) lookups: not proposed again.
    let existing = crmbench::advise::existing_indexes(&admin, "crm")
        .await
        .unwrap();
    assert!(
        cands
            .iter()
            .any(|(d, _)| crmbench::advise::already_served(d, &existing))
    );
    assert!(!crmbench::advise::already_served(&orders.0, &existing));
    // Under RLS a numeric or jsonb predicate is never an index key (it could
    // only help the owner); ordering by a numeric column stays allowed.
    for q in &file.queries {
        for t in &q.tenants {
            for s in t.statements.iter().filter_map(|s| s.plan.as_ref()) {
                for (table, needs) in crmbench::advise::candidates::needs(&s.plan, true, &numeric) {
                    for col in needs.equality.iter().chain(&needs.range) {
                        assert!(
                            !["base_price", "value", "attributes"].contains(&col.as_str()),
                            "{}: {table}.{col} used as an index key under RLS",
                            q.name
                        );
                    }
                }
            }
        }
    }
    // plans.json round-trips.
    let text = serde_json::to_string(&file).unwrap();
    let back: PlansFile = serde_json::from_str(&text).unwrap();
    assert_eq!(back, file);
}
