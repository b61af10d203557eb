//! What the advisor reads from the system catalog of the workload's schema:
//! its tables, the type of every column (numeric comparisons are not
//! leakproof, `tenant_id` marks a tenant table, remedies rewrite numeric and
//! text predicates), the indexes that exist, low-cardinality columns, and
//! which partitions belong to which partitioned root.

use std::collections::{BTreeMap, HashSet};

use tokio_postgres::Client;

use super::drops;
use crate::error::{Error, Result};
use crate::explain::findings::NumericColumns;

/// The column that marks a tenant table.
pub const TENANT_COLUMN: &str = "tenant_id";

/// The catalog facts `advise` works from, read once per run.
#[derive(Debug, Clone)]
pub struct SchemaCatalog {
    /// Tables, materialized views and partitioned tables of the schema.
    pub tables: HashSet<String>,
    /// (table, column, type name) of every live column.
    pub typed_columns: Vec<(String, String, String)>,
    /// Numeric columns per table (derived from `typed_columns`).
    pub numeric: NumericColumns,
    /// Tables with a `tenant_id` column (derived from `typed_columns`).
    pub tenant_tables: HashSet<String>,
    /// Every index of the schema: candidates skip what these serve; drop
    /// advice judges them.
    pub current_indexes: Vec<drops::Existing>,
    /// Columns with a handful of values (statuses, kinds): a constant on one
    /// of them in the SQL is a partial-index candidate.
    pub low_cardinality: HashSet<(String, String)>,
    /// Partition → partitioned root.
    pub partitions: Partitions,
}

impl SchemaCatalog {
    /// Read the catalog of `schema`.
    pub async fn read(client: &Client, schema: &str) -> Result<SchemaCatalog> {
        let tables = tables(client, schema).await?;
        let typed_columns = typed_columns(client, schema).await?;
        let (numeric, tenant_tables) = classify_columns(&typed_columns);
        Ok(SchemaCatalog {
            tables,
            numeric,
            tenant_tables,
            typed_columns,
            current_indexes: drops::existing(client, schema).await?,
            low_cardinality: low_cardinality(client, schema).await?,
            partitions: Partitions::read(client, schema).await?,
        })
    }
}

/// Tables, materialized views and partitioned tables of `schema`.
pub async fn tables(client: &Client, schema: &str) -> Result<HashSet<String>> {
    Ok(client
        .query(
            "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'm', 'p')",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("listing tables", e))?
        .iter()
        .map(|r| r.get(0))
        .collect())
}

/// (table, column, type name) of every live column of the tables of `schema`.
pub async fn typed_columns(client: &Client, schema: &str) -> Result<Vec<(String, String, String)>> {
    Ok(client
        .query(
            "SELECT c.relname::text, a.attname::text, t.typname::text FROM pg_attribute a \
             JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_type t ON t.oid = a.atttypid \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("reading column types", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2)))
        .collect())
}

/// Numeric columns per table, and the tables that have a tenant column,
/// from one column-type listing.
pub fn classify_columns(
    typed_columns: &[(String, String, String)],
) -> (NumericColumns, HashSet<String>) {
    let mut numeric = NumericColumns::new();
    let mut tenant_tables = HashSet::new();
    for (table, column, ty) in typed_columns {
        if column == TENANT_COLUMN {
            tenant_tables.insert(table.clone());
        } else if ty == "numeric" {
            numeric
                .entry(table.clone())
                .or_default()
                .push(column.clone());
        }
    }
    (numeric, tenant_tables)
}

/// (table, column) pairs of `schema` with at most 20 distinct values.
pub async fn low_cardinality(client: &Client, schema: &str) -> Result<HashSet<(String, String)>> {
    Ok(client
        .query(
            "SELECT tablename::text, attname::text FROM pg_stats \
             WHERE schemaname = $1 AND n_distinct BETWEEN 1 AND 20",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("reading pg_stats", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Whether the HypoPG extension is installed in the connected database.
pub async fn has_hypopg(client: &Client) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking for hypopg", e))?
        .get(0))
}

/// Every index of `schema` with its definition, sorted: `advise` compares
/// this before and after to prove the database ends as it began.
pub async fn index_catalog(client: &Client, schema: &str) -> Result<Vec<(String, String)>> {
    Ok(client
        .query(
            "SELECT ic.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = ic.relnamespace \
             WHERE n.nspname = $1 ORDER BY 1",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("listing indexes", e))?
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect())
}

/// Partition → its partitioned parent: a plan reads the partitions it
/// pruned to, but the index belongs on the root (every partition gets one).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Partitions {
    parent_of: BTreeMap<String, String>,
}

impl Partitions {
    /// The partitions of the partitioned tables of `schema`.
    pub async fn read(client: &Client, schema: &str) -> Result<Partitions> {
        let rows = client
            .query(
                "SELECT c.relname::text, p.relname::text FROM pg_inherits i \
                 JOIN pg_class c ON c.oid = i.inhrelid JOIN pg_class p ON p.oid = i.inhparent \
                 JOIN pg_namespace n ON n.oid = p.relnamespace \
                 WHERE n.nspname = $1 AND p.relkind = 'p'",
                &[&schema],
            )
            .await
            .map_err(|e| Error::from_pg("reading partitions", e))?;
        Ok(Partitions::from_pairs(
            rows.iter().map(|r| (r.get(0), r.get(1))),
        ))
    }

    /// From (partition, parent) pairs.
    pub fn from_pairs(pairs: impl IntoIterator<Item = (String, String)>) -> Partitions {
        Partitions {
            parent_of: pairs.into_iter().collect(),
        }
    }

    /// The partitioned root `table` belongs to (`table` itself when it is
    /// no partition).
    pub fn root(&self, table: &str) -> String {
        let mut t = table.to_string();
        // Bounded: partition trees are shallow, and a cycle is impossible.
        for _ in 0..8 {
            match self.parent_of.get(&t) {
                Some(p) => t = p.clone(),
                None => break,
            }
        }
        t
    }

    /// Each partitioned root with its leaf partitions.
    pub fn leaves_by_root(&self) -> BTreeMap<String, Vec<String>> {
        let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for leaf in self.parent_of.keys() {
            if !self.parent_of.values().any(|p| p == leaf) {
                out.entry(self.root(leaf)).or_default().push(leaf.clone());
            }
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partitions_map_to_their_root_and_leaves() {
        let p = Partitions::from_pairs([
            ("events_2024".to_string(), "events".to_string()),
            ("events_2024_q1".to_string(), "events_2024".to_string()),
            ("events_2025".to_string(), "events".to_string()),
        ]);
        assert_eq!(p.root("events_2024_q1"), "events");
        assert_eq!(p.root("orders"), "orders");
        assert_eq!(
            p.leaves_by_root().get("events"),
            Some(&vec![
                "events_2024_q1".to_string(),
                "events_2025".to_string()
            ])
        );
    }
}
