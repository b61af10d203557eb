//! One table's rows streamed into one file of the export folder: CSV by
//! `COPY … TO STDOUT` (the server formats, nothing is parsed on the way),
//! JSON lines by `row_to_json`, row by row. A file is written under a
//! temporary name, fsynced and renamed, with the folder's private mode, so
//! an interrupted export never leaves a file that looks complete.

use std::io::Write as _;
use std::os::unix::fs::OpenOptionsExt;

use futures_util::{StreamExt, pin_mut};
use tokio_postgres::Transaction;

use super::Format;
use crate::erase::pg_err;
use crate::error::{Error, Result};
use crate::runfolder::RunFolder;

/// Write the rows of `relation` matching `predicate` to `file`; the bytes.
pub async fn write(
    tx: &Transaction<'_>,
    folder: &RunFolder,
    file: &str,
    relation: &str,
    predicate: &str,
    format: Format,
) -> Result<u64> {
    let path = folder.join(file);
    let tmp = folder.join(format!(".{file}.tmp"));
    let mut out = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(folder.access().file_mode())
        .open(&tmp)
        .map_err(|e| Error::io("creating", &tmp, e))?;
    let io = |e| Error::io("writing", &tmp, e);
    let mut bytes = 0u64;
    match format {
        Format::Csv => {
            let sql = format!(
                "COPY (SELECT * FROM {relation} WHERE {predicate}) TO STDOUT (FORMAT csv, HEADER)"
            );
            let stream = tx
                .copy_out(&sql)
                .await
                .map_err(pg_err(format!("COPY {relation}")))?;
            pin_mut!(stream);
            while let Some(chunk) = stream.next().await {
                let chunk = chunk.map_err(pg_err(format!("COPY {relation}")))?;
                out.write_all(&chunk).map_err(io)?;
                bytes += chunk.len() as u64;
            }
        }
        Format::Jsonl => {
            let sql = format!("SELECT row_to_json(r)::text FROM {relation} r WHERE {predicate}");
            let none: [&str; 0] = [];
            let rows = tx
                .query_raw(&sql, none)
                .await
                .map_err(pg_err(format!("reading {relation}")))?;
            pin_mut!(rows);
            while let Some(row) = rows.next().await {
                let line: String = row.map_err(pg_err(format!("reading {relation}")))?.get(0);
                out.write_all(line.as_bytes()).map_err(io)?;
                out.write_all(b"\n").map_err(io)?;
                bytes += line.len() as u64 + 1;
            }
        }
    }
    out.sync_all().map_err(io)?;
    std::fs::rename(&tmp, &path).map_err(|e| Error::io("renaming", &path, e))?;
    Ok(bytes)
}
