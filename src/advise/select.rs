//! Choosing a set of indexes for the whole workload: a greedy search in the
//! style of Extend (Schlosser, Kossmann, Boissier, ICDE 2019) — each step adds
//! the candidate with the best benefit per byte — under `--max-indexes` and
//! `--budget-mb`, where benefit is the drop in the weighted what-if cost of
//! the workload *including write cost*: every write statement on a table pays
//! for each index on it, so an index that helps a rare read on a write-heavy
//! table is not chosen. Nothing is chosen when nothing pays.

use serde::{Deserialize, Serialize};

use super::candidates::IndexDef;
use super::whatif::WhatIf;
use crate::error::Result;
use crate::workload::params::Value;

/// Plan-cost units one index adds to a statement that writes its table
/// (an index tuple insert: a descent and a leaf page write).
pub const WRITE_COST_PER_INDEX: f64 = 8.0;
/// A step must save at least this share of the current cost.
pub const MIN_GAIN: f64 = 0.005;

/// One statement to cost, with its weight and sample parameters.
#[derive(Debug, Clone)]
pub struct Item {
    /// The query it belongs to.
    pub query: String,
    /// SQL.
    pub sql: String,
    /// Relative frequency.
    pub weight: f64,
    /// (tenant, parameter values) samples, e.g. a big and a small tenant.
    pub samples: Vec<(String, Vec<Value>)>,
    /// Tables the statement reads or writes.
    pub tables: Vec<String>,
    /// Table the statement writes, if any.
    pub writes: Option<String>,
}

/// A chosen index.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Chosen {
    /// The index.
    pub def: IndexDef,
    /// Queries whose cost it lowers.
    pub queries: Vec<String>,
    /// Weighted workload cost before this step.
    pub cost_before: f64,
    /// After.
    pub cost_after: f64,
    /// HypoPG's size estimate, bytes (too high: it ignores deduplication).
    pub hypopg_bytes: i64,
}

/// What the search found.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Selection {
    /// Weighted cost with no new index.
    pub base_cost: f64,
    /// With every chosen index.
    pub final_cost: f64,
    /// In order of choice.
    pub chosen: Vec<Chosen>,
}

async fn workload_cost(
    whatif: &mut WhatIf,
    items: &[Item],
    config: &[IndexDef],
) -> Result<(f64, Vec<f64>)> {
    let mut total = 0.0;
    let mut per_item = Vec::with_capacity(items.len());
    for item in items {
        let relevant: Vec<IndexDef> = config
            .iter()
            .filter(|d| item.tables.contains(&d.table))
            .cloned()
            .collect();
        let mut sum = 0.0;
        for (tenant, params) in &item.samples {
            sum += whatif.cost(&item.sql, params, tenant, &relevant).await?;
        }
        let mut cost = sum / item.samples.len().max(1) as f64;
        if let Some(table) = &item.writes {
            cost +=
                WRITE_COST_PER_INDEX * config.iter().filter(|d| &d.table == table).count() as f64;
        }
        per_item.push(cost);
        total += item.weight * cost;
    }
    Ok((total, per_item))
}

/// Greedy selection among `candidates`.
pub async fn greedy(
    whatif: &mut WhatIf,
    items: &[Item],
    candidates: &[IndexDef],
    max_indexes: usize,
    budget_bytes: i64,
) -> Result<Selection> {
    let (base_cost, base_items) = workload_cost(whatif, items, &[]).await?;
    let mut chosen: Vec<Chosen> = Vec::new();
    let mut config: Vec<IndexDef> = Vec::new();
    let (mut current, mut current_items) = (base_cost, base_items);
    let mut used = 0i64;
    while chosen.len() < max_indexes {
        let mut best: Option<(f64, IndexDef, f64, Vec<f64>, i64)> = None;
        for cand in candidates.iter().filter(|c| !config.contains(c)) {
            let size = whatif
                .set_indexes(std::slice::from_ref(cand))
                .await?
                .first()
                .copied()
                .unwrap_or(8192)
                .max(8192);
            if used + size / 2 > budget_bytes {
                continue;
            }
            let mut trial = config.clone();
            trial.push(cand.clone());
            let (cost, items_cost) = workload_cost(whatif, items, &trial).await?;
            let gain = current - cost;
            if gain <= current * MIN_GAIN || gain <= 0.0 {
                continue;
            }
            let score = gain / size as f64;
            if best.as_ref().is_none_or(|b| score > b.0) {
                best = Some((score, cand.clone(), cost, items_cost, size));
            }
        }
        let Some((_, def, cost, items_cost, size)) = best else {
            break;
        };
        let queries: Vec<String> = items
            .iter()
            .zip(current_items.iter().zip(&items_cost))
            .filter(|(_, (before, after))| **after < **before * 0.99)
            .map(|(item, _)| item.query.clone())
            .fold(Vec::new(), |mut acc, q| {
                if !acc.contains(&q) {
                    acc.push(q);
                }
                acc
            });
        chosen.push(Chosen {
            def: def.clone(),
            queries,
            cost_before: current,
            cost_after: cost,
            hypopg_bytes: size,
        });
        used += size / 2;
        config.push(def);
        current = cost;
        current_items = items_cost;
    }
    Ok(Selection {
        base_cost,
        final_cost: current,
        chosen,
    })
}
