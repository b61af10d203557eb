//! Loading a tenant's CSV export into a schema of the same shape (another
//! server, or an empty schema), in one transaction, parents first, then
//! proving it: every table's checksum of the tenant's rows on the target
//! equals the manifest's, or everything rolls back. Identity sequences are
//! moved past the loaded keys so new rows do not collide with them.

use std::path::Path;

use bytes::Bytes;
use futures_util::SinkExt;

use super::{Format, Manifest, checksum};
use crate::erase::pg_err;
use crate::error::{Error, Result};
use crate::pg::{self, Target, quote_ident, quote_literal};
use crate::runfolder::RunFolder;

/// Load the export in `dir` into `schema` on `target`; the rows loaded.
pub async fn import(target: &Target, dir: &Path, schema: &str) -> Result<i64> {
    let folder = RunFolder::open(dir)?;
    let manifest: Manifest = folder.read()?;
    if manifest.format != Format::Csv {
        return Err(Error::Usage {
            message: format!("{}: a JSON-lines export cannot be imported", dir.display()),
            fix: "export the tenant with --format csv (the default for --tenant)".into(),
        });
    }
    let mut client = pg::connect(&target.admin()).await?;
    let tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
    let mut rows = 0;
    for t in &manifest.tables {
        let path = folder.join(&t.file);
        let data = std::fs::read(&path).map_err(|e| Error::io("reading", &path, e))?;
        let header = data.split(|b| *b == b'\n').next().unwrap_or_default();
        let columns: Vec<String> = String::from_utf8_lossy(header)
            .split(',')
            .map(|c| quote_ident(c.trim().trim_matches('"')))
            .collect();
        let relation = format!("{}.{}", quote_ident(schema), quote_ident(&t.table));
        let sql = format!(
            "COPY {relation} ({}) FROM STDIN (FORMAT csv, HEADER)",
            columns.join(", ")
        );
        let sink = tx.copy_in(&sql).await.map_err(pg_err(sql.clone()))?;
        futures_util::pin_mut!(sink);
        sink.send(Bytes::from(data))
            .await
            .map_err(pg_err(format!("loading {}", t.file)))?;
        sink.finish()
            .await
            .map_err(pg_err(format!("loading {}", t.file)))?;
        let predicate = format!(
            "{}::text = {}",
            quote_ident(&t.tenant_column),
            quote_literal(&manifest.tenant)
        );
        let loaded = checksum::table(&tx, schema, &t.table, &predicate).await?;
        if loaded != t.checksum {
            return Err(Error::State {
                message: format!(
                    "{}: the tenant's rows in {schema}.{} have checksum {} over {} rows, the export {} over {}; rolled back",
                    dir.display(),
                    t.table,
                    loaded.sum,
                    loaded.rows,
                    t.checksum.sum,
                    t.checksum.rows
                ),
                fix: "import into a schema of the same shape that holds none of the tenant's rows"
                    .into(),
            });
        }
        rows += loaded.rows;
        advance_identities(&tx, &relation).await?;
    }
    tx.commit().await.map_err(pg_err("COMMIT"))?;
    Ok(rows)
}

/// Move each identity sequence of `relation` past its largest key.
async fn advance_identities(tx: &tokio_postgres::Transaction<'_>, relation: &str) -> Result<()> {
    let cols = tx
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attidentity <> '' AND NOT attisdropped",
            &[&relation],
        )
        .await
        .map_err(pg_err(format!("reading {relation}'s identity columns")))?;
    for c in cols {
        let col: String = c.get(0);
        // Never backwards: the target's own rows may hold larger keys.
        let seq = format!(
            "pg_get_serial_sequence({}, {})",
            quote_literal(relation),
            quote_literal(&col)
        );
        let sql = format!(
            "SELECT setval({seq}, GREATEST(m, coalesce(pg_sequence_last_value({seq}::regclass), 0))) \
             FROM (SELECT max({}) AS m FROM {relation}) x WHERE m IS NOT NULL",
            quote_ident(&col)
        );
        tx.batch_execute(&sql)
            .await
            .map_err(pg_err(format!("advancing {relation}.{col}'s sequence")))?;
    }
    Ok(())
}
