//! Candidate generation from fixture plans (fixtures/plans/candidates/*.json):
//! each file holds executed plans (EXPLAIN VERBOSE JSON) of one or more
//! queries and the `CREATE INDEX` statements the advisor must propose
//! (`expect`), must not propose (`absent`, substrings), and which queries a
//! merged index serves (`serves`). Pure: no server.

#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, HashSet};

use crmbench::advise::workload_candidates;
use crmbench::explain::findings::NumericColumns;
use crmbench::explain::plan::Explained;
use crmbench::explain::{PlansFile, QueryPlans, StatementPlan, TenantPlans};
use crmbench::results::WorkloadInfo;
use serde_json::Value;

fn plans_of(v: &Value) -> PlansFile {
    let queries = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            let plan = Explained::parse(&q["explain"]).unwrap();
            QueryPlans {
                name: q["name"].as_str().unwrap().into(),
                tenants: vec![TenantPlans {
                    class: "big".into(),
                    tenant: "t".into(),
                    statements: vec![StatementPlan {
                        index: 0,
                        sql: q["sql"].as_str().unwrap().into(),
                        shape: plan.plan.shape(),
                        fingerprint: plan.plan.fingerprint(),
                        plan: Some(plan),
                        findings: vec![],
                        error: None,
                    }],
                }],
                findings: vec![],
            }
        })
        .collect();
    PlansFile {
        format_version: 1,
        crmbench_version: "test".into(),
        workload: WorkloadInfo {
            name: "fixture".into(),
            path: "fixture".into(),
            hash: String::new(),
        },
        seed: 1,
        rls: v["rls"].as_bool().unwrap(),
        queries,
    }
}

#[test]
fn every_candidate_fixture_gives_its_indexes() {
    let mut checked = 0;
    for entry in std::fs::read_dir("fixtures/plans/candidates").unwrap() {
        let path = entry.unwrap().path();
        let v: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        let numeric: NumericColumns = serde_json::from_value(v["numeric"].clone()).unwrap();
        let tenant_tables: HashSet<String> =
            serde_json::from_value(v["tenant_tables"].clone()).unwrap();
        let low: Vec<(String, String)> =
            serde_json::from_value(v["low_cardinality"].clone()).unwrap();
        let low: HashSet<(String, String)> = low.into_iter().collect();
        let found = workload_candidates(&plans_of(&v), &numeric, &tenant_tables, "tenant_id", &low);
        let sql: Vec<String> = found.iter().map(|(d, _)| d.create_sql("crm")).collect();
        let name = path.display();
        for want in v["expect"].as_array().unwrap() {
            let want = want.as_str().unwrap();
            assert!(
                sql.iter().any(|s| s == want),
                "{name}: missing {want}\n got {sql:#?}"
            );
        }
        for bad in v["absent"].as_array().unwrap() {
            let bad = bad.as_str().unwrap();
            assert!(
                !sql.iter().any(|s| s.contains(bad)),
                "{name}: unwanted {bad}\n got {sql:#?}"
            );
        }
        if v["expect"].as_array().unwrap().is_empty() {
            assert!(
                sql.is_empty(),
                "{name}: expected no candidate, got {sql:#?}"
            );
        }
        if let Some(serves) = v.get("serves") {
            let serves: BTreeMap<String, Vec<String>> =
                serde_json::from_value(serves.clone()).unwrap();
            for (index, queries) in serves {
                let (_, got) = found.iter().find(|(d, _)| d.name() == index).unwrap();
                let mut got = got.clone();
                got.sort();
                assert_eq!(got, queries, "{name}: {index} serves");
            }
        }
        checked += 1;
    }
    assert!(checked >= 9, "{checked} fixtures");
}
