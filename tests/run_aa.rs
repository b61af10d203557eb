//! The A/A self-check of paired mode, alone in its test process so that no
//! other test's load runs beside it: the same database on both sides must give
//! ratios of 1.00 within simultaneous (Bonferroni) intervals.

#![allow(clippy::unwrap_used)]

mod common;

use common::CONTEXT;
use crmbench::run;

use crmbench::pg::Target;

async fn dataset(db: &str) -> Target {
    common::generated(db, 0.002, 3).await
}

#[tokio::test]
async fn a_a_self_check_passes_with_simultaneous_intervals() {
    let target = dataset("run_aa").await;
    let (_dir, path) = common::write_workload(&format!(
        "name = \"aa\"\n{CONTEXT}\n\
         [[query]]\nname = \"by_email\"\nkind = \"read\"\nweight = 5\n\
         sql = \"SELECT id FROM customers WHERE email = $1\"\nparams = [{{ sample = \"customers.email\" }}]\n\
         [[query]]\nname = \"orders_of\"\nkind = \"read\"\n\
         sql = \"SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT 10\"\n\
         params = [{{ sample = \"customers.id\" }}]\n"
    ));
    let mut opts = common::options(&path, 8.0);
    opts.clients = 8;
    opts.self_check = true;
    // A 95% family interval misses 1.00 in about one A/A run in twenty by
    // design; CI must not flake on that, so a failure earns one re-run with
    // another seed, and the test fails only when both runs miss (≈0.25%).
    let mut failures = Vec::new();
    for attempt in 0..2 {
        opts.seed = 11 + attempt;
        let outcome = run::run(&target, &opts).await.unwrap();
        for q in &outcome.results.queries {
            let r = q
                .ratios
                .as_ref()
                .unwrap_or_else(|| panic!("{}: no ratios", q.name));
            // Bonferroni: two queries and their three tenant classes each
            // (20 tenants: classes exist), eight intervals at 1 - 0.05/8.
            assert!((r.level - (1.0 - 0.05 / 8.0)).abs() < 1e-9, "{}", r.level);
            assert_eq!(q.classes.len(), 3, "{}", q.name);
            assert!(q.candidate.as_ref().unwrap().count > 0);
        }
        if outcome.self_check_failed.is_empty() {
            return;
        }
        failures.push(outcome.self_check_failed);
    }
    panic!("A/A failed twice: {failures:?}");
}
