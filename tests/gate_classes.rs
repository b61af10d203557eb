//! Tenant size classes in the paired gate (issue 12, item 4): a change that
//! hurts only the big tenants (here a row-level-security policy on the
//! candidate that costs 2 ms for the largest 10% of tenants alone, as a
//! plan that flips for them would) fails the gate and names the class,
//! while the whole query's median stays inside the threshold (50%).

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use crmbench::compare::verdict::{QueryVerdict, Verdict};
use crmbench::compare::{CompareOptions, Metric};
use crmbench::pg;

/// One lookup, every tenant equally often: big tenants are 10% of the
/// transactions, so what happens to them alone barely moves the median.
const WORKLOAD: &str = r#"
name = "gate_classes"

[[query]]
name = "customer_by_email"
kind = "read"
weight = 1
tenant = "uniform"
sql = "SELECT id, email FROM customers WHERE tenant_id = $1 AND email = $2 LIMIT 1"
params = [ { tenant = true }, { sample = "customers.email" } ]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_that_only_hurts_big_tenants_fails_the_class_not_the_query() {
    let target = common::generated("gate_classes", 0.05, 5).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    // The big class as the run's tenant pool draws it: the largest 10% by
    // customers, ties by id (byte order).
    let rows = admin
        .query(
            "SELECT t.id::text FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id \
             GROUP BY t.id ORDER BY count(c.id) DESC, t.id::text COLLATE \"C\"",
            &[],
        )
        .await
        .unwrap();
    let big: Vec<String> = rows
        .iter()
        .take(rows.len().div_ceil(10))
        .map(|r| format!("'{}'", r.get::<_, String>(0)))
        .collect();
    // The same policy on both sides, so the tenants outside the big class
    // take the same path; only the candidate's costs big tenants 2 ms.
    let policy = |cost: &str| {
        format!(
            "CREATE FUNCTION crm.gate_big_tenant_tax() RETURNS boolean LANGUAGE sql VOLATILE \
               AS $f$ SELECT {cost} IS NOT NULL $f$; \
             CREATE POLICY gate_big_tax ON crm.customers AS RESTRICTIVE FOR SELECT \
               USING (current_setting('app.current_tenant_id', true) <> ALL (ARRAY[{}]) \
                      OR crm.gate_big_tenant_tax());",
            big.join(", ")
        )
    };
    admin.batch_execute(&policy("1")).await.unwrap();
    // A database is copied only while nobody is connected to it.
    drop(admin);
    crmbench::schema::clone::clone_database(&target, "gate_classes_cand", true)
        .await
        .unwrap();
    let cand = pg::connect(&target.on_database("gate_classes_cand").admin())
        .await
        .unwrap();
    cand.batch_execute(&format!(
        "DROP POLICY gate_big_tax ON crm.customers; DROP FUNCTION crm.gate_big_tenant_tax(); {}",
        policy("pg_sleep(0.002)")
    ))
    .await
    .unwrap();
    drop(cand);

    let workload = format!("{WORKLOAD}{}", common::CONTEXT);
    let (_dir, path) = common::write_workload(&workload);
    // Four clients: the interval resamples clients, and two are too few.
    let mut opts = common::options(&path, 20.0);
    opts.clients = 4;
    opts.warmup = Duration::from_secs(2);
    opts.candidate_database = Some("gate_classes_cand".into());
    let outcome = crmbench::run::run(&target, &opts).await.unwrap();
    let q = &outcome.results.queries[0];
    let classes: Vec<&str> = q.classes.iter().map(|c| c.class.as_str()).collect();
    assert_eq!(classes, ["big", "mid", "small"], "{:?}", q.classes);
    let dir = tempfile::tempdir().unwrap();
    let file = crmbench::run::write_outcome(Some(dir.path()), &outcome, Default::default())
        .expect("write results");
    let c = crmbench::compare::compare(&CompareOptions {
        base: file,
        current: None,
        // Big tenants are 10% of the transactions: once their lookups
        // cost 2 ms more they all lie above the median, which moves by a
        // rank effect, whatever the cost: about +10% on a quiet machine,
        // +17% [12%, 22%] seen under load, so a 20% threshold sat at the
        // boundary. At 50% the whole query is far inside it, and the big
        // class (several times slower) still far outside.
        threshold: Some(0.50),
        metric: Metric::P50,
        max_error_rate: 0.01,
        fail_on_plan_change: false,
        candidate_plans: None,
        seed: 1,
        inconclusive: Default::default(),
    })
    .unwrap();
    eprintln!("{}", crmbench::compare::render::markdown(&c));
    let class = |name: &str| c.classes.iter().find(|k| k.class == name).unwrap();
    assert_eq!(class("big").verdict, QueryVerdict::Regression);
    assert!(class("small").verdict.no_regression(), "{:?}", c.classes);
    assert!(class("mid").verdict.no_regression(), "{:?}", c.classes);
    assert!(
        c.queries[0].verdict.no_regression(),
        "the whole query's median must pass: {:?}",
        c.queries[0]
    );
    assert_eq!(c.verdict, Verdict::Fail, "{:?}", c.reasons);
    assert_eq!(c.exit_code, 1);
    assert!(
        c.reasons
            .iter()
            .any(|r| r == "customer_by_email [big tenants]: p50 regression")
            && c.reasons.len() == 1,
        "{:?}",
        c.reasons
    );
}
