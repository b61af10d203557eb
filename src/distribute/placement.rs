//! Tenant placement on a Citus cluster of `nodes` workers: which node each
//! tenant's shard lands on (its id hashed as Citus hashes a uuid column,
//! shards placed round-robin as `create_distributed_table` places them), the
//! share of the workload's transactions and of the data each node then
//! carries, and which tenants are big enough to isolate on a shard of their
//! own (`isolate_tenant_to_new_shard`) so they can be moved to the
//! least-loaded node (`citus_move_shard_placement`): see [`place`].

use serde::Serialize;

use super::hash;

/// One tenant: its id, its share of the workload's transactions and its
/// share of the rows.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Tenant {
    /// The tenant id (uuid text).
    pub id: String,
    /// Share of the workload's transactions (sums to 1 over tenants).
    pub load: f64,
    /// Share of the tenant-owned rows.
    pub data: f64,
}

/// What each node carries.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NodeShare {
    /// Share of the transactions.
    pub load: f64,
    /// Share of the rows.
    pub data: f64,
    /// Tenants isolated on this node.
    pub isolated: Vec<String>,
}

/// The advice: node shares with hashing alone and with the big tenants
/// isolated, and which those are.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Placement {
    /// Worker nodes.
    pub nodes: u32,
    /// Shards per distributed table.
    pub shards: u32,
    /// Tenants to isolate, largest load first.
    pub isolate: Vec<Tenant>,
    /// Per node, hashing alone.
    pub hashed: Vec<NodeShare>,
    /// Per node, with `isolate` on shards of their own, placed greedily on
    /// the least-loaded node.
    pub with_isolation: Vec<NodeShare>,
}

/// The node of a tenant's shard: `uuid_hash(id)`'s shard, round-robin.
pub fn node_of(id: &str, shards: u32, nodes: u32) -> u32 {
    let hashed = uuid::Uuid::parse_str(id)
        .map(|u| hash::uuid_hash(&u))
        .unwrap_or_else(|_| hash::hash_bytes(id.as_bytes()) as i32);
    hash::shard_of(hashed, shards) % nodes.max(1)
}

/// Place `tenants` on `nodes` workers with `shards` shards per table.
/// Candidates for a shard of their own are the tenants carrying at least a
/// quarter of a node's fair share of the load (1 / 4N), largest first; each
/// is isolated when that lowers the busiest node's load by at least 0.5% of
/// the mean — so a tenant is isolated only where the arithmetic shows it
/// helps, not because it is big.
pub fn place(tenants: &[Tenant], shards: u32, nodes: u32) -> Placement {
    let nodes = nodes.max(1);
    let mut by_load: Vec<&Tenant> = tenants.iter().collect();
    by_load.sort_by(|a, b| b.load.total_cmp(&a.load).then_with(|| a.id.cmp(&b.id)));
    let hashed = shares(tenants, &[], shards, nodes);
    let mut isolated: Vec<&Tenant> = Vec::new();
    let mut best = hashed.clone();
    let floor = 0.25 / f64::from(nodes);
    for t in by_load.iter().take_while(|t| t.load >= floor) {
        let mut trial = isolated.clone();
        trial.push(t);
        let placed = shares(tenants, &trial, shards, nodes);
        if imbalance(&placed) < imbalance(&best) - 0.005 {
            isolated = trial;
            best = placed;
        }
    }
    Placement {
        nodes,
        shards,
        isolate: isolated.into_iter().cloned().collect(),
        hashed,
        with_isolation: best,
    }
}

/// Each node's share with `isolated` tenants on shards of their own, placed
/// largest first on the least-loaded node; the rest where their hash puts them.
fn shares(tenants: &[Tenant], isolated: &[&Tenant], shards: u32, nodes: u32) -> Vec<NodeShare> {
    let mut out = vec![
        NodeShare {
            load: 0.0,
            data: 0.0,
            isolated: Vec::new(),
        };
        nodes as usize
    ];
    for t in tenants
        .iter()
        .filter(|t| !isolated.iter().any(|i| i.id == t.id))
    {
        let n = node_of(&t.id, shards, nodes) as usize;
        out[n].load += t.load;
        out[n].data += t.data;
    }
    for t in isolated {
        if let Some(coolest) = out.iter_mut().min_by(|a, b| a.load.total_cmp(&b.load)) {
            coolest.load += t.load;
            coolest.data += t.data;
            coolest.isolated.push(t.id.clone());
        }
    }
    out
}

/// The busiest node's load over the mean (1.00 = even).
pub fn imbalance(shares: &[NodeShare]) -> f64 {
    let max = shares.iter().map(|s| s.load).fold(0.0, f64::max);
    max * shares.len() as f64
}

/// The placement as a table (one row per node), for a terminal or as SQL
/// comments.
pub fn render(p: &Placement) -> String {
    let mut out = format!(
        "tenant placement on {} nodes, {} shards per table (load: share of the workload's \
         transactions; data: share of the rows)\n{:<6} {:>12} {:>12} {:>16} {:>16}  isolated here\n",
        p.nodes, p.shards, "node", "load hashed", "data hashed", "load isolated", "data isolated"
    );
    for (i, (h, w)) in p.hashed.iter().zip(&p.with_isolation).enumerate() {
        out.push_str(&format!(
            "{:<6} {:>11.1}% {:>11.1}% {:>15.1}% {:>15.1}%  {}\n",
            i,
            h.load * 100.0,
            h.data * 100.0,
            w.load * 100.0,
            w.data * 100.0,
            w.isolated.join(", ")
        ));
    }
    out.push_str(&format!(
        "busiest node / mean load: {:.2} hashed, {:.2} with {} tenant{} isolated\n",
        imbalance(&p.hashed),
        imbalance(&p.with_isolation),
        p.isolate.len(),
        if p.isolate.len() == 1 { "" } else { "s" }
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tenant(id: &str, load: f64) -> Tenant {
        Tenant {
            id: id.into(),
            load,
            data: load,
        }
    }

    #[test]
    fn big_tenants_are_isolated_and_balance_improves() {
        // A Zipf-like set: one tenant with 40% of the load.
        let ids: Vec<String> = (0..40u128)
            .map(|i| {
                uuid::Uuid::from_u128(0x1234_5678_9abc_def0_0000_0000_0000_0000 + i).to_string()
            })
            .collect();
        let mut tenants = vec![tenant(&ids[0], 0.40)];
        for id in &ids[1..] {
            tenants.push(tenant(id, 0.60 / 39.0));
        }
        let p = place(&tenants, 32, 4);
        assert_eq!(p.isolate.len(), 1, "only the 40% tenant reaches 1/(4·4)");
        assert_eq!(p.isolate[0].id, ids[0]);
        let total: f64 = p.with_isolation.iter().map(|n| n.load).sum();
        assert!((total - 1.0).abs() < 1e-9);
        let hashed_total: f64 = p.hashed.iter().map(|n| n.load).sum();
        assert!((hashed_total - 1.0).abs() < 1e-9);
        assert!(imbalance(&p.with_isolation) <= imbalance(&p.hashed) + 1e-9);
        assert!(render(&p).contains(&ids[0]));
    }

    #[test]
    fn even_tenants_are_not_isolated() {
        let tenants: Vec<Tenant> = (0..100u128)
            .map(|i| tenant(&uuid::Uuid::from_u128(i * 7919).to_string(), 0.01))
            .collect();
        assert!(place(&tenants, 32, 4).isolate.is_empty());
    }
}
