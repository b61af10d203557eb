//! Columns of unbounded width (`text`, `jsonb`, `bytea`, … without a length
//! bound) in an index key or `INCLUDE`: a btree row over 2704 bytes (btree
//! version 4) makes the write that creates it fail, so a covering index on a
//! document column can break inserts. Such a column stays in a candidate
//! only when the largest value present and the average keep every index row
//! far below the limit, and the advice then says so.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use super::candidates::IndexDef;
use super::select::Rejected;
use crate::error::{Error, Result};

/// Largest btree index row (btree version 4, 8 kB pages), bytes.
pub const BTREE_MAX_ROW: i64 = 2704;
/// Unbounded columns of one index must stay under this many bytes together
/// today: a quarter of the limit leaves room for values that grow.
pub const SAFE_BYTES: i64 = BTREE_MAX_ROW / 4;

/// What is known of one unbounded column's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Width {
    /// `pg_stats.avg_width`, bytes, when the table was analyzed.
    pub avg: Option<i32>,
    /// The largest value present (`pg_column_size`), bytes; `None` when the
    /// table is empty or it could not be read.
    pub max: Option<i64>,
}

/// Type names whose values have no length bound (with no typmod).
fn unbounded_type(typname: &str, typmod: i32) -> bool {
    match typname {
        "text" | "json" | "jsonb" | "bytea" | "xml" | "tsvector" | "citext" => true,
        "varchar" | "bpchar" => typmod < 0,
        t => t.starts_with('_'), // arrays
    }
}

/// The table column an index column reads: `email` for `lower(email)`.
fn base_column(name: &str) -> &str {
    name.split_once('(')
        .map_or(name, |(_, r)| r.trim_end_matches(')'))
}

/// Widths of the unbounded columns `candidates` use, read from the catalog,
/// `pg_stats` and (for the largest value) the table itself.
pub async fn read(
    client: &Client,
    schema: &str,
    candidates: &[IndexDef],
) -> Result<BTreeMap<(String, String), Width>> {
    let rows = client
        .query(
            "SELECT c.relname::text, a.attname::text, t.typname::text, a.atttypmod, s.avg_width \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_stats s ON s.schemaname = n.nspname AND s.tablename = c.relname \
               AND s.attname = a.attname \
             WHERE n.nspname = $1 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("reading column widths", e))?;
    let mut out = BTreeMap::new();
    for r in rows {
        let (table, column, ty, typmod): (String, String, String, i32) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let used = candidates.iter().any(|d| {
            d.table == table
                && (d.include.contains(&column)
                    || d.columns.iter().any(|k| base_column(&k.name) == column))
        });
        if !used || !unbounded_type(&ty, typmod) {
            continue;
        }
        let max: Option<i32> = client
            .query_one(
                &format!(
                    "SELECT max(pg_column_size({}))::int FROM {}.{}",
                    crate::pg::quote_ident(&column),
                    crate::pg::quote_ident(schema),
                    crate::pg::quote_ident(&table)
                ),
                &[],
            )
            .await
            .map_err(|e| Error::from_pg(format!("reading the widest {table}.{column}"), e))?
            .get(0);
        out.insert(
            (table, column),
            Width {
                avg: r.get(4),
                max: max.map(i64::from),
            },
        );
    }
    Ok(out)
}

/// Whether `def` may be a candidate given its unbounded columns' widths:
/// `Ok(notes)` (one note per unbounded column it keeps), or `Err(reason)`.
pub fn verdict(
    def: &IndexDef,
    widths: &BTreeMap<(String, String), Width>,
) -> std::result::Result<Vec<String>, String> {
    let mut used: Vec<&str> = def.columns.iter().map(|k| base_column(&k.name)).collect();
    used.extend(def.include.iter().map(String::as_str));
    let mut notes = Vec::new();
    let mut total = 0i64;
    for col in used {
        let Some(w) = widths.get(&(def.table.clone(), col.to_string())) else {
            continue;
        };
        let (Some(max), Some(avg)) = (w.max, w.avg) else {
            return Err(format!(
                "{}.{col} has no length bound and no statistics say how wide its values are \
                 (ANALYZE the table): an index row over {BTREE_MAX_ROW} bytes would make writes fail",
                def.table
            ));
        };
        total += max;
        notes.push(format!(
            "{}.{col} has no length bound: its largest value is {max} B today (average {avg} B), \
             far below the btree row limit of {BTREE_MAX_ROW} B; a value near that size would make the write fail",
            def.table
        ));
    }
    if total > SAFE_BYTES {
        return Err(format!(
            "its unbounded columns hold up to {total} B per row today (over {SAFE_BYTES} B, a quarter of \
             the btree row limit of {BTREE_MAX_ROW} B): a wider value would make inserts fail"
        ));
    }
    Ok(notes)
}

/// Split `candidates` into those the widths allow (with their notes) and
/// the rejected, with the reason.
pub fn admit(
    candidates: Vec<IndexDef>,
    widths: &BTreeMap<(String, String), Width>,
) -> (
    Vec<IndexDef>,
    BTreeMap<IndexDef, Vec<String>>,
    Vec<Rejected>,
) {
    let (mut kept, mut notes, mut rejected) = (Vec::new(), BTreeMap::new(), Vec::new());
    for def in candidates {
        match verdict(&def, widths) {
            Ok(n) => {
                if !n.is_empty() {
                    notes.insert(def.clone(), n);
                }
                kept.push(def);
            }
            Err(reason) => rejected.push(Rejected { def, reason }),
        }
    }
    (kept, notes, rejected)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A covering candidate put a jsonb document in INCLUDE; with it built,
    /// inserting a 6 KB document failed with "index row size 6432 exceeds
    /// btree version 4 maximum 2704" (issue 16, item 6).
    #[test]
    fn a_wide_document_in_include_is_rejected_and_a_narrow_text_kept_with_a_note() {
        let mut covering = IndexDef::on("notes", &["tenant_id", "customer_id"]);
        covering.include = vec!["body".into()];
        let email = IndexDef::on("customers", &["tenant_id", "lower(email)"]);
        let plain = IndexDef::on("notes", &["tenant_id", "customer_id"]);
        let widths = BTreeMap::from([
            (
                ("notes".to_string(), "body".to_string()),
                Width {
                    avg: Some(3100),
                    max: Some(6432),
                },
            ),
            (
                ("customers".to_string(), "email".to_string()),
                Width {
                    avg: Some(22),
                    max: Some(41),
                },
            ),
        ]);
        let (kept, notes, rejected) = admit(
            vec![covering.clone(), email.clone(), plain.clone()],
            &widths,
        );
        assert_eq!(kept, [email.clone(), plain]);
        assert_eq!(rejected.len(), 1);
        assert_eq!(rejected[0].def, covering);
        assert!(rejected[0].reason.contains("6432 B"), "{rejected:?}");
        assert!(
            notes[&email][0].contains("largest value is 41 B"),
            "{notes:?}"
        );
        // Unknown widths are no licence: without statistics it goes.
        let unknown = BTreeMap::from([(
            ("notes".to_string(), "body".to_string()),
            Width {
                avg: None,
                max: Some(10),
            },
        )]);
        let mut c = IndexDef::on("notes", &["tenant_id"]);
        c.include = vec!["body".into()];
        assert!(verdict(&c, &unknown).is_err());
    }

    #[test]
    fn bounded_types_are_not_checked() {
        assert!(unbounded_type("jsonb", -1));
        assert!(unbounded_type("varchar", -1));
        assert!(!unbounded_type("varchar", 104));
        assert!(!unbounded_type("uuid", -1));
        assert!(unbounded_type("_text", -1));
    }
}
