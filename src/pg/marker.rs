//! The database marker: the comment crmbench puts on every database it
//! creates, saying what the database is — a dataset (`generate`, `schema
//! create`, `pg start`), a clone kept for the user (`schema clone`), or a
//! working copy a command made for itself (`run --fresh`, `advise --verify`,
//! …) that `schema gc` drops once its owner is gone. Nothing is dropped
//! without the marker, and each command drops only its kind: `schema
//! drop-clone` clones, `schema gc` working copies whose lease is free.
//!
//! Older crmbench versions wrote the bare [`PREFIX`]; such a database is
//! read as crmbench's with its kind [`DatabaseKind::Unrecorded`], never
//! taken for a clone.

use std::fmt;

use tokio_postgres::Client;

use super::{quote_ident, quote_literal};
use crate::error::{Error, Result};

/// How every marker starts (and all that older versions wrote).
pub const PREFIX: &str = "created by crmbench";

/// What a database crmbench created is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DatabaseKind {
    /// A dataset (the private server's default database, one `generate`
    /// or `schema create` made, the demo's): dropped only by `schema drop
    /// --database NAME`.
    Dataset,
    /// A copy made by `schema clone`, kept until `schema drop-clone`.
    Clone,
    /// A copy a command made for itself and drops when it ends; while it
    /// works it holds the copy's lease (see `schema::gc`).
    Working,
    /// Marked by an older crmbench, which did not record the kind (or by a
    /// newer one with a kind this one does not know): treated as a dataset.
    Unrecorded,
}

impl DatabaseKind {
    /// The word the marker uses after the prefix (none for `Unrecorded`).
    fn word(self) -> &'static str {
        match self {
            DatabaseKind::Dataset => "dataset",
            DatabaseKind::Clone => "clone",
            DatabaseKind::Working => "working copy",
            DatabaseKind::Unrecorded => "",
        }
    }
}

impl fmt::Display for DatabaseKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DatabaseKind::Unrecorded => f.write_str("made by an older crmbench"),
            kind => f.write_str(kind.word()),
        }
    }
}

/// The marker of a database of `kind`, with a note for people reading
/// `\l+` (e.g. "of crmbench").
pub fn comment(kind: DatabaseKind, note: &str) -> String {
    match (kind, note.is_empty()) {
        (DatabaseKind::Unrecorded, _) => PREFIX.into(),
        (_, true) => format!("{PREFIX}: {}", kind.word()),
        (_, false) => format!("{PREFIX}: {} {note}", kind.word()),
    }
}

/// The kind a database comment records, or `None` when crmbench did not
/// write it.
pub fn parse(comment: &str) -> Option<DatabaseKind> {
    let rest = comment.strip_prefix(PREFIX)?;
    if rest.is_empty() {
        return Some(DatabaseKind::Unrecorded);
    }
    let rest = rest.strip_prefix(": ")?;
    let kind = [
        DatabaseKind::Dataset,
        DatabaseKind::Clone,
        DatabaseKind::Working,
    ]
    .into_iter()
    .find(|k| rest == k.word() || rest.starts_with(&format!("{} ", k.word())));
    Some(kind.unwrap_or(DatabaseKind::Unrecorded))
}

/// What the server says about one database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Marked {
    /// crmbench created it, as this kind.
    Ours(DatabaseKind),
    /// It exists without crmbench's marker.
    Foreign,
}

/// Whether `db` exists on the server of `client` (any database of it), and
/// what its marker says.
pub async fn lookup(client: &Client, db: &str) -> Result<Option<Marked>> {
    let row = client
        .query_opt(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') \
             FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .map_err(|e| Error::from_pg(format!("looking up database {db}"), e))?;
    Ok(row.map(|r| {
        let comment: String = r.get(0);
        parse(&comment).map_or(Marked::Foreign, Marked::Ours)
    }))
}

/// Every database of the server that carries crmbench's marker, by name.
pub async fn known(client: &Client) -> Result<Vec<(String, DatabaseKind)>> {
    let rows = client
        .query(
            "SELECT datname::text, coalesce(shobj_description(oid, 'pg_database'), '') \
             FROM pg_database ORDER BY datname",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("listing databases", e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            let comment: String = r.get(1);
            parse(&comment).map(|kind| (r.get(0), kind))
        })
        .collect())
}

/// Mark database `db` as crmbench's, of `kind`.
pub async fn mark(client: &Client, db: &str, kind: DatabaseKind, note: &str) -> Result<()> {
    let sql = format!(
        "COMMENT ON DATABASE {} IS {}",
        quote_ident(db),
        quote_literal(&comment(kind, note))
    );
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::from_pg(sql.clone(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_reads_back_and_old_markers_stay_readable() {
        for kind in [
            DatabaseKind::Dataset,
            DatabaseKind::Clone,
            DatabaseKind::Working,
        ] {
            assert_eq!(parse(&comment(kind, "")), Some(kind));
            assert_eq!(parse(&comment(kind, "of crmbench (fresh run)")), Some(kind));
        }
        assert_eq!(parse("created by crmbench"), Some(DatabaseKind::Unrecorded));
        assert_eq!(
            parse("created by crmbench: snapshot"),
            Some(DatabaseKind::Unrecorded)
        );
        assert_eq!(parse("created by crmbenchmark"), None);
        assert_eq!(parse("shop database"), None);
        assert_eq!(parse(""), None);
        // "clones" is not "clone".
        assert_eq!(
            parse("created by crmbench: clones"),
            Some(DatabaseKind::Unrecorded)
        );
    }
}
