//! `advise --verify` on the real server (alone in its process: paired runs
//! measure latency): the orders index the built-in workload needs is kept with
//! a measured speed-up; an index no query uses is reverted (an A/A verify);
//! the benchmark database ends with exactly the indexes it had, and no clone
//! or hypothetical index is left behind.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::time::Duration;

use crmbench::advise::candidates::{IndexColumn, IndexDef};
use crmbench::advise::select::Chosen;
use crmbench::advise::verify::{self, VerifyOptions};
use crmbench::advise::{self, AdviseOptions};
use crmbench::explain;
use crmbench::pg;

fn def(table: &str, cols: &[&str]) -> IndexDef {
    IndexDef {
        include: Vec::new(),
        predicate: None,
        table: table.into(),
        columns: cols
            .iter()
            .map(|c| IndexColumn {
                name: c.to_string(),
                desc: false,
            })
            .collect(),
    }
}

#[tokio::test]
async fn verify_keeps_what_pays_reverts_what_does_not_and_leaves_nothing() {
    let target = common::generated("verify_crm", 0.01, 4).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let before = advise::existing_indexes(&admin, "crm").await.unwrap();
    drop(admin);

    let path = Path::new("workloads/crm.toml");
    let plans = explain::explain(&target, path, 1).await.unwrap();
    let advice = advise::advise(
        &target,
        path,
        &plans,
        None,
        &AdviseOptions {
            max_indexes: 1,
            budget_mb: 1024.0,
            seed: 1,
            no_hypopg: false,
            keep_hypopg: false,
        },
    )
    .await
    .unwrap();
    let orders = advice.selection.chosen[0].clone();
    assert_eq!(orders.def.table, "orders");

    // An index that no query of the workload uses, claimed for a lookup.
    let useless = Chosen {
        def: def("suppliers", &["tenant_id", "lead_time_days"]),
        queries: vec!["customer_by_email".into()],
        cost_before: 1.0,
        cost_after: 1.0,
        hypopg_bytes: 8192,
        estimated_bytes: 8192,
        notes: Vec::new(),
    };
    let opts = VerifyOptions {
        workload: path.to_path_buf(),
        duration: Duration::from_secs(5),
        clients: 4,
        seed: 3,
        schema: "crm".into(),
    };
    let verified = verify::verify(
        &target,
        &[orders, useless],
        advice.selection.base_cost,
        &opts,
    )
    .await
    .unwrap();
    assert!(verified[0].kept, "{}", verified[0].reason);
    assert!(
        verified[0]
            .measured
            .iter()
            .any(|m| m.p50.hi < 1.0 / 1.1 || m.p95.hi < 1.0 / 1.1),
        "{:?}",
        verified[0].measured
    );
    assert!(
        !verified[1].kept,
        "an unused index was kept: {}",
        verified[1].reason
    );

    let clones = common::databases_like(&target, "crmbench_verify_%").await;
    assert_eq!(clones, 0, "verification clones left behind");
    let admin = pg::connect(&target.admin()).await.unwrap();
    assert_eq!(
        advise::existing_indexes(&admin, "crm").await.unwrap(),
        before,
        "the catalog changed"
    );
}
