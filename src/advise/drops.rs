//! Drop advice: indexes that cost every write and serve nothing — unused
//! during a run (the run's `pg_stat_user_indexes` delta), exact duplicates,
//! and those whose columns lead another existing or recommended index.
//! Primary keys, unique indexes and constraint-backing indexes are never
//! proposed.

use serde::{Deserialize, Serialize};
use tokio_postgres::Client;

use super::candidates::{IndexColumn, IndexDef};
use crate::error::{Error, Result};
use crate::results::IndexUsage;

/// An index as it exists.
#[derive(Debug, Clone, PartialEq)]
pub struct Existing {
    /// Index name.
    pub name: String,
    /// Table and key columns (expression indexes have none and are skipped).
    pub def: IndexDef,
    /// Primary key, unique, or backing a constraint: never dropped.
    pub protected: bool,
}

/// One piece of drop advice.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DropAdvice {
    /// Index name.
    pub index: String,
    /// Table.
    pub table: String,
    /// Why it can go.
    pub reason: String,
    /// The statement.
    pub sql: String,
}

/// Every index of `schema` with its protection.
pub async fn existing(client: &Client, schema: &str) -> Result<Vec<Existing>> {
    let rows = client
        .query(
            "SELECT ic.relname::text, c.relname::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n ORDER BY k.o), \
                    i.indisprimary OR i.indisunique OR EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conindid = i.indexrelid), \
                    i.indexprs IS NULL AND i.indpred IS NULL, i.indnkeyatts::int4 \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid JOIN pg_class ic ON ic.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 2, 1",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("reading indexes", e))?;
    Ok(rows
        .iter()
        .filter(|r| r.get::<_, bool>(4))
        .map(|r| {
            // indkey lists key columns first, then the INCLUDE ones.
            let mut columns = r.get::<_, Vec<String>>(2);
            let keys = usize::try_from(r.get::<_, i32>(5)).unwrap_or(columns.len());
            let include = columns.split_off(keys.min(columns.len()));
            Existing {
                name: r.get(0),
                def: IndexDef {
                    include,
                    predicate: None,
                    table: r.get(1),
                    columns: columns
                        .into_iter()
                        .map(|name| IndexColumn { name, desc: false })
                        .collect(),
                },
                protected: r.get(3),
            }
        })
        .collect())
}

fn leads(long: &IndexDef, short: &IndexDef) -> bool {
    long.table == short.table
        && short.columns.len() <= long.columns.len()
        && short
            .columns
            .iter()
            .zip(&long.columns)
            .all(|(a, b)| a.name == b.name)
}

/// Drop advice for `schema`'s indexes, given the run's usage (if any) and the
/// recommended indexes.
pub fn advise_drops(
    schema: &str,
    indexes: &[Existing],
    usage: Option<&[IndexUsage]>,
    recommended: &[IndexDef],
) -> Vec<DropAdvice> {
    let scans = |name: &str| {
        usage
            .and_then(|u| u.iter().find(|x| x.index == name))
            .map_or(0, |x| x.scans)
    };
    // Among exact duplicates the one kept is protected, else the most used,
    // else the first by name.
    let rank = |e: &Existing| {
        (
            e.protected,
            scans(&e.name),
            std::cmp::Reverse(e.name.clone()),
        )
    };
    let mut out = Vec::new();
    for ix in indexes.iter().filter(|i| !i.protected) {
        let reason = if let Some(other) = indexes.iter().find(|o| {
            o.name != ix.name
                && o.def.table == ix.def.table
                && o.def.columns == ix.def.columns
                && rank(o) > rank(ix)
        }) {
            Some(format!("duplicate of {}", other.name))
        } else if let Some(other) = indexes.iter().find(|o| {
            o.name != ix.name
                && o.def.columns.len() > ix.def.columns.len()
                && leads(&o.def, &ix.def)
        }) {
            Some(format!(
                "redundant: its columns lead {} ({})",
                other.name,
                cols(&other.def)
            ))
        } else if let Some(rec) = recommended
            .iter()
            .find(|r| r.columns.len() > ix.def.columns.len() && leads(r, &ix.def))
        {
            Some(format!(
                "redundant once the recommended {} exists",
                rec.name()
            ))
        } else {
            usage.and_then(|u| {
                u.iter()
                    .find(|x| {
                        x.index == ix.name && x.table.ends_with(&format!(".{}", ix.def.table))
                    })
                    .filter(|x| x.scans == 0)
                    .map(|_| "unused during the measured run (0 scans)".to_string())
            })
        };
        if let Some(reason) = reason {
            out.push(DropAdvice {
                index: ix.name.clone(),
                table: ix.def.table.clone(),
                sql: format!(
                    "DROP INDEX CONCURRENTLY IF EXISTS {}.{};",
                    super::candidates::sql_ident(schema),
                    super::candidates::sql_ident(&ix.name)
                ),
                reason,
            });
        }
    }
    out
}

fn cols(d: &IndexDef) -> String {
    d.columns
        .iter()
        .map(|c| c.name.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ix(name: &str, table: &str, cols: &[&str], protected: bool) -> Existing {
        Existing {
            name: name.into(),
            def: IndexDef::on(table, cols),
            protected,
        }
    }

    #[test]
    fn prefix_duplicate_and_unused_but_never_a_key() {
        let indexes = vec![
            ix("orders_pkey", "orders", &["tenant_id", "id"], true),
            ix("orders_tenant_id_idx", "orders", &["tenant_id"], false),
            ix("orders_status_idx", "orders", &["status"], false),
            ix("orders_status_dup", "orders", &["status"], false),
            ix("customers_email_idx", "customers", &["email"], false),
            ix(
                "customers_tenant_email_key",
                "customers",
                &["tenant_id", "email"],
                true,
            ),
        ];
        let usage = vec![
            IndexUsage {
                table: "crm.customers".into(),
                index: "customers_email_idx".into(),
                scans: 0,
                tuples_read: 0,
            },
            IndexUsage {
                table: "crm.orders".into(),
                index: "orders_status_idx".into(),
                scans: 12,
                tuples_read: 40,
            },
        ];
        let advice = advise_drops("crm", &indexes, Some(&usage), &[]);
        let names: Vec<&str> = advice.iter().map(|a| a.index.as_str()).collect();
        assert!(names.contains(&"orders_tenant_id_idx"), "{advice:?}");
        assert!(names.contains(&"orders_status_dup"), "{advice:?}");
        assert!(names.contains(&"customers_email_idx"), "{advice:?}");
        assert!(!names.contains(&"orders_status_idx"), "{advice:?}");
        assert!(
            !names
                .iter()
                .any(|n| n.ends_with("pkey") || n.ends_with("key"))
        );
    }
}
