//! Small catalog lookups several stages share.

use crate::error::{Error, Result};
use tokio_postgres::Client;

/// The schema table `name` (as written in SQL, qualified or not) resolves to
/// on `client`'s search path, or `None` when no such table is visible.
pub async fn schema_of(client: &Client, name: &str) -> Result<Option<String>> {
    let row = client
        .query_opt(
            "SELECT n.nspname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = to_regclass($1)",
            &[&name],
        )
        .await
        .map_err(|e| Error::from_pg(format!("looking up table {name}"), e))?;
    Ok(row.map(|r| r.get(0)))
}
