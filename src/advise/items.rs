//! The statements the selection costs: one weighted [`Item`] per statement
//! of the workload, with the tables its captured plans touch (a partition's
//! root included), the table it writes, and sample parameters for the
//! largest tenant and a small one.

use super::catalog::Partitions;
use super::select::Item;
use crate::explain::{PlansFile, QueryPlans};
use crate::results::Results;
use crate::rng::{Prng, tag};
use crate::workload::params::{Pools, Value};
use crate::workload::{Param, Statement, Workload};

/// Each query's share of the workload, in workload order, and whether the
/// shares come from the run's transaction counts (a run at hand with any)
/// rather than the workload file's weights.
pub fn query_weights(workload: &Workload, results: Option<&Results>) -> (Vec<f64>, bool) {
    let use_counts = results.is_some_and(|r| r.queries.iter().any(|q| q.baseline.count > 0));
    let raw: Vec<f64> = workload
        .queries
        .iter()
        .map(|q| {
            if use_counts {
                results
                    .and_then(|r| r.queries.iter().find(|c| c.name == q.name))
                    .map_or(0.0, |c| c.baseline.count as f64)
            } else {
                f64::from(q.weight)
            }
        })
        .collect();
    let total = raw.iter().sum::<f64>().max(1e-9);
    (raw.iter().map(|w| w / total).collect(), use_counts)
}

/// One item per statement of the workload; `weights` as [`query_weights`]
/// gives them.
pub fn weighted_items(
    workload: &Workload,
    pools: &Pools,
    plans: &PlansFile,
    partitions: &Partitions,
    weights: &[f64],
    seed: u64,
) -> Vec<Item> {
    let mut items = Vec::new();
    for (qi, q) in workload.queries.iter().enumerate() {
        let qp = plans.queries.iter().find(|p| p.name == q.name);
        for (k, st) in q.statements.iter().enumerate() {
            let (tables, writes) = touched_tables(qp, k, partitions);
            items.push(Item {
                query: q.name.clone(),
                sql: st.sql.clone(),
                weight: weights.get(qi).copied().unwrap_or(0.0),
                samples: samples(st, pools, seed, qi, k),
                tables,
                writes,
            });
        }
    }
    items
}

/// Tables the `k`th statement's plans read or write (a partition and its
/// root: a partition's indexes come from its root's), and the root of the
/// table it modifies.
fn touched_tables(
    qp: Option<&QueryPlans>,
    k: usize,
    partitions: &Partitions,
) -> (Vec<String>, Option<super::writes::Write>) {
    let mut tables = Vec::new();
    let mut writes = None;
    for tp in qp.map(|p| p.tenants.as_slice()).unwrap_or_default() {
        let Some(plan) = tp.statements.get(k).and_then(|s| s.plan.as_ref()) else {
            continue;
        };
        for n in plan.plan.walk() {
            if let Some(rel) = &n.relation {
                for t in [rel.clone(), partitions.root(rel)] {
                    if !tables.contains(&t) {
                        tables.push(t);
                    }
                }
                if n.node_type == "ModifyTable" {
                    writes = Some(super::writes::Write::on(&partitions.root(rel)));
                }
            }
        }
    }
    (tables, writes)
}

/// Parameter values for the largest tenant and a small one, each from its
/// own seeded stream (a reference to an earlier statement's result is NULL).
fn samples(
    st: &Statement,
    pools: &Pools,
    seed: u64,
    qi: usize,
    k: usize,
) -> Vec<(String, Vec<Value>)> {
    let (big, small) = pools.tenants.big_and_small();
    let mut samples = Vec::new();
    for (class, tenant) in [("big", big), ("small", small)] {
        let mut rng = Prng::for_parts(&[seed, tag("advise"), qi as u64, k as u64, tag(class)]);
        let values: Vec<Value> = st
            .params
            .iter()
            .map(|p| match p {
                Param::Ref(_) => Value::Null,
                other => pools.value(other, &mut rng, tenant, &Default::default()),
            })
            .collect();
        samples.push((tenant.to_string(), values));
    }
    samples
}
