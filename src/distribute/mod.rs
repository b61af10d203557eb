//! Ready for Citus: the SQL that distributes the CRM by tenant
//! ([`sql::statements`]), and the tenant placement the dataset's skew calls
//! for on `--nodes N` workers ([`placement`]): each tenant's share of the
//! workload's transactions (from the workload's query weights and how each
//! query picks its tenant) and of the rows, hashed as Citus hashes a uuid
//! distribution column ([`hash`]). Citus is not installed here: the tests
//! run this SQL against stubs with Citus's own signatures and hold the hash
//! to the server's `uuid_hash()`.

pub mod hash;
pub mod placement;
pub mod sql;

use std::path::Path;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::workload::context::WorkloadContext;
use placement::{Placement, Tenant};

/// What `schema distribute-sql` writes.
pub struct Distribution {
    /// The SQL (placement advice as comments at its head).
    pub sql: String,
    /// The placement, when `--nodes` was given.
    pub placement: Option<Placement>,
}

/// The distribution SQL for `target`'s CRM, with `shards` shards per table;
/// with `nodes`, the tenant placement for the load of `workload`.
pub async fn distribution(
    target: &Target,
    shards: u32,
    nodes: Option<u32>,
    workload: &Path,
) -> Result<Distribution> {
    if shards == 0 || nodes == Some(0) {
        return Err(Error::Usage {
            message: "--shards and --nodes must be at least 1".into(),
            fix: "e.g. --shards 32 --nodes 4 (Citus's default is 32 shards)".into(),
        });
    }
    let database = target.database().to_string();
    let Some(nodes) = nodes else {
        return Ok(Distribution {
            sql: sql::statements(&database, shards, &[]),
            placement: None,
        });
    };
    let tenants = tenants(target, workload).await?;
    let placed = placement::place(&tenants, shards, nodes);
    let isolate: Vec<String> = placed.isolate.iter().map(|t| t.id.clone()).collect();
    let advice: String = placement::render(&placed)
        .lines()
        .map(|l| format!("-- {l}\n"))
        .collect();
    Ok(Distribution {
        sql: format!("{advice}{}", sql::statements(&database, shards, &isolate)),
        placement: Some(placed),
    })
}

/// Every tenant with its share of the workload's transactions and of the
/// customers (the rows that drive every other table's size).
async fn tenants(target: &Target, workload: &Path) -> Result<Vec<Tenant>> {
    let ctx = WorkloadContext::prepare(target, workload).await?;
    let pool = &ctx.pools().tenants;
    let queries = &ctx.workload().queries;
    let total_weight: f64 = queries.iter().map(|q| f64::from(q.weight)).sum();
    let mut load = vec![0.0; pool.ids.len()];
    for q in queries {
        let share = f64::from(q.weight) / total_weight.max(1.0);
        for (l, p) in load.iter_mut().zip(pool.probabilities(q.tenant)) {
            *l += share * p;
        }
    }
    let admin = pg::connect(&target.admin()).await?;
    let sql = "SELECT tenant_id::text, count(*) FROM crm.customers GROUP BY 1";
    let rows = admin
        .query(sql, &[])
        .await
        .map_err(|e| Error::from_pg(format!("counting customers per tenant (`{sql}`)"), e))?;
    let counts: std::collections::HashMap<String, i64> =
        rows.iter().map(|r| (r.get(0), r.get(1))).collect();
    let all: i64 = counts.values().sum::<i64>().max(1);
    Ok(pool
        .ids
        .iter()
        .zip(load)
        .map(|(id, load)| Tenant {
            id: id.clone(),
            load,
            data: counts.get(id).copied().unwrap_or(0) as f64 / all as f64,
        })
        .collect())
}
