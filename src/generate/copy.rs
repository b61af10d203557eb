//! The binary COPY loader: one table per task, `TRUNCATE` + `COPY … FREEZE` in
//! one transaction (rows are written frozen and, with `wal_level=minimal`,
//! without WAL), tenants' streams merged by time so the heap holds rows in the
//! order an application would have written them (tenants interleaved).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::collections::binary_heap::PeekMut;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use bytes::Bytes;
use futures_util::SinkExt;
use tokio_postgres::Client;

use super::encode::CopyEncoder;
use super::plan::Plan;
use super::rows::{self, CopyRow, TableSpec, catalog, people, pipeline, sales};
use crate::error::{Error, Result};
use crate::schema::tables::{TABLES, Table};

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

/// Every table `generate` loads (or, for lookups, builds keys on) and reports,
/// in dependency order: the tenants, their tables in `tables.sql` order, then
/// the shared lookups, whose rows come from the schema's `lookups.sql`.
pub fn load_order() -> Vec<&'static str> {
    let (generated, lookups): (Vec<&Table>, Vec<&Table>) =
        TABLES.iter().partition(|t| t.is_generated());
    generated.iter().chain(&lookups).map(|t| t.name).collect()
}

/// Declares each generated table once, as (COPY spec, row generator): from
/// that one list come [`SPECS`] and the dispatch in [`load_table`].
macro_rules! generators {
    ($($spec:expr => $rows:path),* $(,)?) => {
        /// The COPY spec of every generated table, in [`load_order`].
        pub const SPECS: &[TableSpec] = &[$($spec),*];

        /// Load `table` if it has a generator; `None` if it has none.
        async fn load_generated(
            client: &mut Client,
            plan: &Plan,
            table: &str,
            state: &Arc<LoadState>,
        ) -> Result<Option<u64>> {
            $(
                if table == $spec.name {
                    let streams = plan.tenants.iter().map(|t| $rows(plan, t)).collect();
                    return copy_merged(client, &$spec, streams, state).await.map(Some);
                }
            )*
            Ok(None)
        }
    };
}

generators! {
    rows::tenants::SPEC => rows::tenants::rows,
    people::STORES => people::stores,
    people::STAFF => people::staff,
    people::CUSTOMERS => people::customers,
    catalog::CATEGORIES_SPEC => catalog::categories,
    catalog::SUPPLIERS => catalog::suppliers,
    catalog::PRODUCTS => catalog::products,
    catalog::VARIANTS => catalog::variants,
    catalog::INVENTORY => catalog::inventory,
    sales::ORDERS => sales::orders,
    sales::ORDER_ITEMS => sales::order_items,
    sales::PAYMENTS => sales::payments,
    pipeline::STAGES_SPEC => pipeline::stages,
    pipeline::DEALS => pipeline::deals,
    pipeline::HISTORY => pipeline::history,
    pipeline::INTERACTIONS => pipeline::interactions,
    pipeline::AUDIT => pipeline::audit,
}

/// Load one table completely. Returns rows written (0 for a lookup table).
pub async fn load_table(
    client: &mut Client,
    plan: &Plan,
    table: &str,
    state: &Arc<LoadState>,
) -> Result<u64> {
    if let Some(written) = load_generated(client, plan, table, state).await? {
        return Ok(written);
    }
    match TABLES.iter().find(|t| t.name == table) {
        Some(t) if !t.is_generated() => Ok(0),
        _ => Err(Error::Internal {
            message: format!("no generator for table {table}"),
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
        .copy_in::<_, Bytes>(&spec.copy_sql(true))
        .await
        .map_err(|e| Error::from_pg(ctx("COPY into"), e))?;
    let mut sink = std::pin::pin!(sink);
    let mut out = CopyEncoder::new(*spec);

    let mut heads: Vec<Option<R>> = streams.iter_mut().map(|s| s.next()).collect();
    let mut heap: BinaryHeap<Reverse<(i64, usize)>> = heads
        .iter()
        .enumerate()
        .filter_map(|(i, h)| h.as_ref().map(|r| Reverse((r.key(), i))))
        .collect();
    let mut written = 0u64;
    // The head stream's next row replaces it at the top and sinks once,
    // rather than a pop and a push: with 10,000 tenants (scale 10) the merge
    // was a tenth of the loader's CPU.
    while let Some(mut top) = heap.peek_mut() {
        let i = top.0.1;
        let Some(row) = heads[i].take() else {
            PeekMut::pop(top);
            continue;
        };
        match streams[i].next() {
            Some(next) => {
                *top = Reverse((next.key(), i));
                heads[i] = Some(next);
            }
            None => {
                PeekMut::pop(top);
            }
        }
        row.encode(&mut out)?;
        if out.full() {
            sink.as_mut()
                .send(out.take())
                .await
                .map_err(|e| Error::from_pg(ctx("writing rows to"), e))?;
        }
        written += 1;
        if written % BATCH == 0 {
            state.rows.fetch_add(BATCH, Ordering::Relaxed);
            if state.cancel.load(Ordering::Relaxed) {
                // Dropping the sink aborts the COPY; the transaction rolls back.
                return Err(Error::Interrupted {
                    during: format!("loading crm.{}", spec.name),
                });
            }
        }
    }
    state.rows.fetch_add(written % BATCH, Ordering::Relaxed);
    sink.as_mut()
        .send(out.finish())
        .await
        .map_err(|e| Error::from_pg(ctx("writing rows to"), e))?;
    sink.as_mut()
        .finish()
        .await
        .map_err(|e| Error::from_pg(ctx("finishing COPY into"), e))?;
    tx.commit()
        .await
        .map_err(|e| Error::from_pg(ctx("COMMIT of"), e))?;
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_generated_table_has_a_generator_in_load_order() {
        let order = load_order();
        assert_eq!(order.first(), Some(&"tenants"));
        assert_eq!(order.last(), Some(&"currencies"));
        assert_eq!(order.len(), TABLES.len());
        let specs: Vec<&str> = SPECS.iter().map(|s| s.name).collect();
        let generated: Vec<&str> = order
            .iter()
            .copied()
            .filter(|n| TABLES.iter().any(|t| t.name == *n && t.is_generated()))
            .collect();
        assert_eq!(specs, generated);
    }
}
