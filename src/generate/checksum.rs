//! Content checksums of the CRM tables, independent of physical row order and
//! session settings, to prove that a seed gives the same data everywhere.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::quote_ident;
use crate::schema::audit;

/// Rows and md5 of one table.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableChecksum {
    /// Row count.
    pub rows: i64,
    /// md5 over the md5 of each row's text form, rows in text order.
    pub md5: String,
}

/// Checksums of every table in schema `crm` except the metadata marker.
pub async fn checksums(client: &Client) -> Result<BTreeMap<String, TableChecksum>> {
    // Text forms depend on these: pin them.
    client
        .batch_execute(
            "SET TimeZone = 'UTC'; SET DateStyle = 'ISO, YMD'; SET extra_float_digits = 1; \
             SET IntervalStyle = 'postgres'; SET bytea_output = 'hex'",
        )
        .await
        .map_err(|e| Error::from_pg("pinning session settings for checksums", e))?;
    let mut out = BTreeMap::new();
    for t in audit::tables(client, crate::pg::SCHEMA).await? {
        if t.table == "crmbench_meta" {
            continue;
        }
        let sql = format!(
            "SELECT count(*), md5(coalesce(string_agg(md5(r::text), '' ORDER BY r::text), '')) \
             FROM crm.{} r",
            quote_ident(&t.table)
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| Error::from_pg(format!("checksumming crm.{}", t.table), e))?;
        out.insert(
            t.table,
            TableChecksum {
                rows: row.get(0),
                md5: row.get(1),
            },
        );
    }
    Ok(out)
}

/// What `schema checksum` prints: one line per table (name, rows, md5).
pub fn render_table(sums: &BTreeMap<String, TableChecksum>) -> String {
    sums.iter()
        .map(|(table, c)| format!("{table:<20} {:>10} {}\n", c.rows, c.md5))
        .collect()
}
