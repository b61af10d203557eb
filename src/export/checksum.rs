//! Order-independent table checksums: the row count and the sum of a 64-bit
//! hash of each row's text form. The same rows give the same checksum in any
//! physical order, in any schema of the same shape, on any server of the
//! same major version, so an export, its re-import and an erasure's
//! untouched tenants can be compared without sorting millions of rows.

use serde::{Deserialize, Serialize};
use tokio_postgres::GenericClient;

use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// The checksum of a set of rows.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checksum {
    /// Rows.
    pub rows: i64,
    /// Sum of `hashtextextended(row::text, 0)` over the rows, as text (a
    /// numeric: no overflow).
    pub sum: String,
}

/// The checksum of `schema.table`'s rows matching `predicate` (SQL, `true`
/// for all).
pub async fn table<C: GenericClient>(
    client: &C,
    schema: &str,
    table: &str,
    predicate: &str,
) -> Result<Checksum> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(hashtextextended(r::text, 0)), 0)::text \
         FROM {}.{} r WHERE {predicate}",
        quote_ident(schema),
        quote_ident(table)
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| Error::from_pg(format!("checksumming {table}"), e))?;
    Ok(Checksum {
        rows: row.get(0),
        sum: row.get(1),
    })
}
