//! Pseudonymisation: the value each personal column gets, chosen from the
//! column's type so the row stays valid (a nullable column becomes NULL, a
//! NOT NULL text column a fresh random `erased:<uuid>` that no unique key
//! can collide on, anything else its default), and the subject's original
//! values, read before the change, so the proof can show that none remains.

use tokio_postgres::Transaction;

use super::pg_err;
use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// What one personal column is overwritten with.
#[derive(Debug, Clone)]
pub struct Replacement {
    /// Column.
    pub column: String,
    /// SQL expression written (`NULL`, `DEFAULT`, a random text).
    pub value: String,
    /// The default expression when `value` is `DEFAULT`: a kept value equal
    /// to it is the pseudonym, not the person's.
    pub default: Option<String>,
}

impl Replacement {
    /// `column = value`.
    pub fn assignment(&self) -> String {
        format!("{} = {}", quote_ident(&self.column), self.value)
    }
}

/// The replacements for `columns` of `schema.table`; a column that does
/// not exist, or that no value can replace, is a usage error.
pub async fn replacements(
    tx: &Transaction<'_>,
    schema: &str,
    table: &str,
    columns: &[String],
) -> Result<Vec<Replacement>> {
    let relation = format!("{}.{}", quote_ident(schema), quote_ident(table));
    let rows = tx
        .query(
            "SELECT a.attname::text, a.attnotnull, t.typcategory::text, \
                    pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE a.attrelid = to_regclass($1) AND a.attname = ANY($2) \
               AND a.attnum > 0 AND NOT a.attisdropped",
            &[&relation, &columns],
        )
        .await
        .map_err(pg_err(format!("reading the columns of {table}")))?;
    let mut out = Vec::new();
    for column in columns {
        let Some(r) = rows.iter().find(|r| r.get::<_, String>(0) == *column) else {
            return Err(Error::Usage {
                message: format!("the policy pseudonymises {table}.{column}, which does not exist"),
                fix: format!("name columns of {table} in the policy's [pseudonymise] list"),
            });
        };
        let (not_null, category, default): (bool, String, Option<String>) =
            (r.get(1), r.get(2), r.get(3));
        let (value, default) = match (not_null, category.as_str(), default) {
            (false, _, _) => ("NULL".to_string(), None),
            (true, "S", _) => ("'erased:' || gen_random_uuid()::text".to_string(), None),
            (true, _, Some(d)) => ("DEFAULT".to_string(), Some(d)),
            (true, _, None) => {
                return Err(Error::Usage {
                    message: format!(
                        "{table}.{column} is NOT NULL, not text and has no default: crmbench has no value to pseudonymise it with"
                    ),
                    fix: format!(
                        "give {table}.{column} a default, or delete {table}'s rows instead"
                    ),
                });
            }
        };
        out.push(Replacement {
            column: column.clone(),
            value,
            default,
        });
    }
    Ok(out)
}

/// The subject's values of one personal column, read before the change.
#[derive(Debug, Clone)]
pub struct Original {
    /// Table.
    pub table: String,
    /// The predicate selecting the subject's rows.
    pub predicate: String,
    /// The column and its replacement.
    pub replacement: Replacement,
    /// Its distinct non-null values, as text.
    pub values: Vec<String>,
}

/// Read the values `replacement` is about to overwrite.
pub async fn original(
    tx: &Transaction<'_>,
    relation: &str,
    table: &str,
    predicate: &str,
    replacement: &Replacement,
) -> Result<Original> {
    let c = quote_ident(&replacement.column);
    let sql = format!(
        "SELECT DISTINCT {c}::text FROM {relation} WHERE ({predicate}) AND {c} IS NOT NULL"
    );
    let values = tx
        .query(&sql, &[])
        .await
        .map_err(pg_err(format!("reading {table}.{}", replacement.column)))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(Original {
        table: table.to_string(),
        predicate: predicate.to_string(),
        replacement: replacement.clone(),
        values,
    })
}

impl Original {
    /// How many of the subject's rows still hold one of the original values
    /// (a value equal to the column's default is the pseudonym itself).
    pub async fn remaining(&self, tx: &Transaction<'_>, relation: &str) -> Result<i64> {
        let c = quote_ident(&self.replacement.column);
        let not_default = match &self.replacement.default {
            Some(d) => format!(" AND {c} IS DISTINCT FROM ({d})"),
            None => String::new(),
        };
        let sql = format!(
            "SELECT count(*) FROM {relation} WHERE ({}) AND {c}::text = ANY($1){not_default}",
            self.predicate
        );
        Ok(tx
            .query_one(&sql, &[&self.values])
            .await
            .map_err(pg_err(format!(
                "proving {}.{}",
                self.table, self.replacement.column
            )))?
            .get(0))
    }
}
