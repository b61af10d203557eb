//! The client's per-transaction work outside the network, exactly as a
//! driver client does it, for `benches/hot_path.rs`: pick a query and a
//! tenant, draw every parameter into the reused buffers, bind each pipelined
//! segment's parameters (refs included), record the outcome into the
//! thread's slot under its mutex, and the ticker's swap of the slots. Only
//! the socket and the server are left out. Not for other uses.

use std::collections::HashMap;
use std::sync::Arc;

use super::client::{self, QueryPicker, SideResult};
use super::conn::{self, TxOutcome};
use super::driver::Shared;
use crate::rng::Prng;
use crate::workload::Workload;
use crate::workload::params::{Pools, Value};

/// One client's hot path on one driver thread, without connections.
pub struct ClientPath {
    workload: Arc<Workload>,
    pools: Arc<Pools>,
    shared: Arc<Shared>,
    picker: QueryPicker,
    rng: Prng,
    values: Vec<Vec<Value>>,
    refs: HashMap<String, Value>,
    paired: bool,
    /// Transactions so far: spreads the recorded latencies.
    count: u64,
}

impl ClientPath {
    /// A client of `workload` drawing from `pools` (`paired`: both sides
    /// recorded and a pair kept, as with `--candidate-url`).
    pub fn new(workload: Arc<Workload>, pools: Arc<Pools>, paired: bool) -> ClientPath {
        ClientPath {
            shared: Shared::new(&workload, 1, paired),
            picker: QueryPicker::new(&workload),
            rng: Prng::for_parts(&[1]),
            values: Vec::new(),
            refs: HashMap::new(),
            workload,
            pools,
            paired,
            count: 0,
        }
    }

    /// One transaction's client-side work; returns how many parameters were
    /// bound (so the work cannot be optimised away).
    pub fn transaction(&mut self) -> usize {
        let qi = self.picker.pick(&mut self.rng);
        let query = &self.workload.queries[qi];
        let no_refs = HashMap::new();
        let (_tenant, class) = client::draw(
            query,
            &self.pools,
            &mut self.rng,
            &no_refs,
            &mut self.values,
        );
        let n = query.statements.len();
        let mut bound = 0;
        let mut start = 0;
        while start < n {
            let end = conn::segment_end(query, start);
            let params = conn::bind(query, &self.values, &self.refs, start..end);
            bound += params.iter().map(Vec::len).sum::<usize>();
            start = end;
        }
        self.count += 1;
        let us = 100 + self.count % 5000;
        let outcome = || {
            (
                Ok(TxOutcome {
                    total_us: us,
                    statement_us: vec![us; n],
                }),
                0,
            )
        };
        let results: [Option<SideResult>; 2] = [
            Some(outcome()),
            if self.paired { Some(outcome()) } else { None },
        ];
        let slot = &self.shared.slots[0];
        let _ = client::record(slot, (7, class), qi, None, self.paired, &results);
        bound
    }

    /// What the ticker does every interval: take the thread's slot, merged.
    pub fn tick(&self) -> usize {
        self.shared.swap(&self.workload, self.paired).baseline.len()
    }
}
