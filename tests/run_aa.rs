//! The A/A self-check of paired mode, alone in its test process so that no
//! other test's load runs beside it: the same database on both sides must give
//! ratios of 1.00 within simultaneous (Bonferroni) intervals.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::time::Duration;

use crmbench::generate::{self, GenerateOptions};
use crmbench::pg::Target;
use crmbench::run::{self, RunOptions, driver::Arrivals};

async fn dataset(db: &str) -> Target {
    let target = common::fresh_database(db).await;
    generate::generate(
        &target,
        &GenerateOptions {
            scale: 0.002,
            seed: 3,
            jobs: 2,
            replace: false,
            quiet: true,
            out: None,
        },
    )
    .await
    .unwrap();
    target
}

fn options(workload: &str, seconds: f64) -> RunOptions {
    RunOptions {
        workload: PathBuf::from(workload),
        clients: 4,
        threads: 2,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_millis(500),
        rate: None,
        arrivals: Arrivals::Poisson,
        seed: 11,
        fresh: false,
        candidate_url: None,
        self_check: false,
        max_error_rate: 0.01,
        interval: Duration::from_millis(500),
        max_tries: 1,
        check_only: false,
        simple: false,
        quiet: true,
    }
}

fn write_workload(text: &str) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(&path, text).unwrap();
    (dir, path.display().to_string())
}

const CONTEXT: &str = r#"
[context]
role = "crmbench_app"
tenant_setting = "app.current_tenant_id"
tenants = "SELECT t.id::text, count(c.id) FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id"
"#;

#[tokio::test]
async fn a_a_self_check_passes_with_simultaneous_intervals() {
    let target = dataset("run_aa").await;
    let (_dir, path) = write_workload(&format!(
        "name = \"aa\"\n{CONTEXT}\n\
         [[query]]\nname = \"by_email\"\nkind = \"read\"\nweight = 5\n\
         sql = \"SELECT id FROM customers WHERE email = $1\"\nparams = [{{ sample = \"customers.email\" }}]\n\
         [[query]]\nname = \"orders_of\"\nkind = \"read\"\n\
         sql = \"SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT 10\"\n\
         params = [{{ sample = \"customers.id\" }}]\n"
    ));
    let mut opts = options(&path, 8.0);
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
            // Bonferroni: two queries, each interval at 97.5%.
            assert!((r.level - 0.975).abs() < 1e-9);
            assert!(q.candidate.as_ref().unwrap().count > 0);
        }
        if outcome.self_check_failed.is_empty() {
            return;
        }
        failures.push(outcome.self_check_failed);
    }
    panic!("A/A failed twice: {failures:?}");
}
