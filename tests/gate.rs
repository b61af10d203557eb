//! The sequential paired gate on the private server (issue 12): a lookup
//! that loses its index is failed by `run --until-decided` + `compare`,
//! naming it, at 2 clients *and* at 8 (more clients than CI's 2 cores,
//! where the tail is mostly CPU queueing), and a change that only drops a
//! duplicate index (the lookup then uses the unique (tenant_id, email) key)
//! passes. Every run is bounded by --max-duration 60 s.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use crmbench::compare::verdict::{QueryVerdict, Verdict};
use crmbench::compare::{CompareOptions, Metric};
use crmbench::pg::{self, Target};
use crmbench::run::sequential::SequentialOptions;

const WORKLOAD: &str = "fixtures/compare/gate.toml";

/// A clone of `target` named `name` with `sql` applied.
async fn candidate(target: &Target, name: &str, sql: &str) {
    crmbench::schema::clone::clone_database(target, name, true)
        .await
        .unwrap_or_else(|e| panic!("clone {name}: {e}"));
    let admin = pg::connect(&target.on_database(name).admin())
        .await
        .expect("connect to the clone");
    admin
        .batch_execute(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// A sequential paired run of the gate workload against `candidate_db`
/// with `clients`, then `compare` on its folder.
async fn gate(
    target: &Target,
    candidate_db: &str,
    clients: usize,
    (metric, gated): (Metric, Option<&[&str]>),
) -> (crmbench::compare::Comparison, f64) {
    let mut opts = common::options(WORKLOAD, 60.0);
    opts.clients = clients;
    opts.warmup = Duration::from_secs(2);
    opts.candidate_database = Some(candidate_db.into());
    opts.sequential = Some(SequentialOptions {
        threshold: 0.10,
        metric,
        min: Duration::from_secs(10),
        look_every: Duration::from_secs(5),
        gate_queries: gated.map(|g| g.iter().map(|s| s.to_string()).collect()),
    });
    let outcome = crmbench::run::run(target, &opts)
        .await
        .unwrap_or_else(|e| panic!("run: {e}"));
    let dir = tempfile::tempdir().unwrap();
    let path = crmbench::run::write_outcome(Some(dir.path()), &outcome, Default::default())
        .expect("write results");
    let record = outcome
        .results
        .sequential
        .as_ref()
        .expect("sequential record");
    assert!(!record.looks.is_empty());
    for l in &record.looks {
        eprintln!("  look {:.0}s z {:.2}: {:?}", l.t, l.z, l.intervals);
    }
    let comparison = crmbench::compare::compare(&CompareOptions {
        base: path,
        current: None,
        threshold: None,
        metric,
        max_error_rate: 0.01,
        fail_on_plan_change: false,
        candidate_plans: None,
        seed: 1,
        inconclusive: Default::default(),
    })
    .expect("compare");
    (comparison, outcome.results.measured_seconds)
}

fn verdict_of(c: &crmbench::compare::Comparison, query: &str) -> QueryVerdict {
    c.queries
        .iter()
        .find(|q| q.name == query)
        .map(|q| q.verdict)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lookup_that_loses_its_index_fails_at_2_and_8_clients_and_a_dropped_duplicate_passes() {
    let target = common::generated("gate_crm", 0.1, 12).await;
    candidate(
        &target,
        "gate_noidx",
        "DROP INDEX crm.customers_email_idx; \
         ALTER TABLE crm.customers DROP CONSTRAINT customers_tenant_email_key",
    )
    .await;
    for clients in [2, 8] {
        let (c, seconds) = gate(&target, "gate_noidx", clients, (Metric::P95, None)).await;
        assert_eq!(
            c.verdict,
            Verdict::Fail,
            "{clients} clients: {:?}",
            c.reasons
        );
        assert_eq!(c.exit_code, 1);
        // The run stops at the first interval past the line, and that may
        // be the big-tenant class (a sequential scan costs the largest
        // tenants most) while the whole query's interval, at that early
        // look's wide critical value, still straddles it: either names
        // the lookup.
        let class_failed = c
            .classes
            .iter()
            .any(|k| k.query == "customer_by_email" && k.verdict == QueryVerdict::Regression);
        assert!(
            verdict_of(&c, "customer_by_email") == QueryVerdict::Regression || class_failed,
            "{clients} clients: {:?} {:?}",
            c.queries,
            c.classes
        );
        assert!(
            c.reasons
                .iter()
                .any(|r| r.starts_with("customer_by_email") && r.ends_with("p95 regression")),
            "{:?}",
            c.reasons
        );
        eprintln!("lost index, {clients} clients: decided in {seconds:.0} s");
    }
    candidate(&target, "gate_dup", "DROP INDEX crm.customers_email_idx").await;
    // At p95 the unchanged queries need minutes to be *shown* within 10%
    // (update_customer, a rare write, stays inconclusive at 60 s); the
    // lookup itself is gated, on its median.
    let only = ["customer_by_email"];
    let (c, seconds) = gate(&target, "gate_dup", 2, (Metric::P50, Some(&only))).await;
    eprintln!("dropped duplicate: {:?} in {seconds:.0} s", c.verdict);
    assert!(
        verdict_of(&c, "customer_by_email").no_regression(),
        "{:?}",
        c.queries
    );
    assert_eq!(c.verdict, Verdict::Pass, "{:?}", c.reasons);
}
