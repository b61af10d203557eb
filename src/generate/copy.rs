//! The binary COPY loader: one table per task, `TRUNCATE` + `COPY … FREEZE` in
//! one transaction (rows are written frozen and, with `wal_level=minimal`,
//! without WAL), tenants' streams merged by time so the heap holds rows in the
//! order an application would have written them (tenants interleaved).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio_postgres::Client;
use tokio_postgres::binary_copy::BinaryCopyInWriter;

use super::plan::Plan;
use super::rows::{self, CopyRow, TableSpec};
use crate::error::{Error, Result};

/// Shared counters for progress and cancellation.
#[derive(Debug, Default)]
pub struct LoadState {
    /// Rows written so far, all tables.
    pub rows: AtomicU64,
    /// Set on Ctrl-C: workers stop at the next batch.
    pub cancel: AtomicBool,
}

/// How often (in rows) a loader checks for cancellation and reports progress.
const BATCH: u64 = 4096;

/// Every table the generator loads, in dependency order.
pub const TABLES: [&str; 18] = [
    "tenants",
    "stores",
    "staff",
    "customers",
    "categories",
    "suppliers",
    "products",
    "product_variants",
    "inventory",
    "orders",
    "order_items",
    "payments",
    "pipeline_stages",
    "deals",
    "deal_stage_history",
    "interactions",
    "audit_log",
    "currencies",
];

/// Load one table completely. Returns rows written.
pub async fn load_table(
    client: &mut Client,
    plan: &Plan,
    table: &str,
    state: &Arc<LoadState>,
) -> Result<u64> {
    use rows::{catalog, people, pipeline, sales};
    let p = plan;
    macro_rules! merged {
        ($spec:expr, $gen:path) => {
            copy_merged(
                client,
                &$spec,
                p.tenants.iter().map(|t| $gen(p, t)).collect(),
                state,
            )
            .await
        };
    }
    match table {
        "tenants" => merged!(rows::tenants::SPEC, rows::tenants::rows),
        "stores" => merged!(people::STORES, people::stores),
        "staff" => merged!(people::STAFF, people::staff),
        "customers" => merged!(people::CUSTOMERS, people::customers),
        "categories" => merged!(catalog::CATEGORIES_SPEC, catalog::categories),
        "suppliers" => merged!(catalog::SUPPLIERS, catalog::suppliers),
        "products" => merged!(catalog::PRODUCTS, catalog::products),
        "product_variants" => merged!(catalog::VARIANTS, catalog::variants),
        "inventory" => merged!(catalog::INVENTORY, catalog::inventory),
        "orders" => merged!(sales::ORDERS, sales::orders),
        "order_items" => merged!(sales::ORDER_ITEMS, sales::order_items),
        "payments" => merged!(sales::PAYMENTS, sales::payments),
        "pipeline_stages" => merged!(pipeline::STAGES_SPEC, pipeline::stages),
        "deals" => merged!(pipeline::DEALS, pipeline::deals),
        "deal_stage_history" => merged!(pipeline::HISTORY, pipeline::history),
        "interactions" => merged!(pipeline::INTERACTIONS, pipeline::interactions),
        "audit_log" => merged!(pipeline::AUDIT, pipeline::audit),
        // Shared lookup rows come from the schema's lookups.sql.
        "currencies" => Ok(0),
        other => Err(Error::Usage {
            message: format!("no generator for table {other}"),
            fix: String::new(),
        }),
    }
}

/// COPY the merge (by each row's key, then tenant rank) of `streams`.
async fn copy_merged<R: CopyRow, I: Iterator<Item = R>>(
    client: &mut Client,
    spec: &TableSpec,
    mut streams: Vec<I>,
    state: &Arc<LoadState>,
) -> Result<u64> {
    let ctx = |what: &str| format!("{what} crm.{}", spec.name);
    let tx = client
        .transaction()
        .await
        .map_err(|e| Error::from_pg(ctx("BEGIN for"), e))?;
    tx.batch_execute(&format!("TRUNCATE crm.{}", spec.name))
        .await
        .map_err(|e| Error::from_pg(ctx("TRUNCATE"), e))?;
    let sink = tx
        .copy_in(&spec.copy_sql(true))
        .await
        .map_err(|e| Error::from_pg(ctx("COPY into"), e))?;
    let writer = BinaryCopyInWriter::new(sink, &spec.types());
    let mut writer = std::pin::pin!(writer);

    let mut heads: Vec<Option<R>> = streams.iter_mut().map(|s| s.next()).collect();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|r| Reverse((r.key(), i))))
        .collect();
    let mut written = 0u64;
    while let Some(Reverse((_, i))) = heap.pop() {
        let Some(row) = heads[i].take() else { continue };
        writer
            .as_mut()
            .write(&row.values())
            .await
            .map_err(|e| Error::from_pg(ctx("writing rows to"), e))?;
        if let Some(next) = streams[i].next() {
            heap.push(Reverse((next.key(), i)));
            heads[i] = Some(next);
        }
        written += 1;
        if written % BATCH == 0 {
            state.rows.fetch_add(BATCH, Ordering::Relaxed);
            if state.cancel.load(Ordering::Relaxed) {
                // Dropping the writer aborts the COPY; the transaction rolls back.
                return Err(Error::Interrupted {
                    during: format!("loading crm.{}", spec.name),
                });
            }
        }
    }
    state.rows.fetch_add(written % BATCH, Ordering::Relaxed);
    writer
        .as_mut()
        .finish()
        .await
        .map_err(|e| Error::from_pg(ctx("finishing COPY into"), e))?;
    tx.commit()
        .await
        .map_err(|e| Error::from_pg(ctx("COMMIT of"), e))?;
    Ok(written)
}
