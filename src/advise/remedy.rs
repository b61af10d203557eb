//! Remedies for predicates row-level security keeps from being index
//! conditions (non-leakproof operators): a schema change that makes the
//! predicate leakproof, its migration, the query rewritten to use it, and —
//! under `advise --verify` — its measured effect. Two rewrites are mechanical
//! enough to apply to any workload query and measure:
//! - a numeric comparison (Prisma's `Decimal`) → a stored generated bigint
//!   column of cents, compared with bigint operators;
//! - a case-insensitive prefix search `col ILIKE $n || '%'` → a stored
//!   generated lower-case column searched as a text range (exact under the C
//!   collation; the measurement checks the rows are the same).
//!
//! jsonb containment depends on which attribute the parameter names, so it
//! is reported with its remedy but not rewritten.

use serde::{Deserialize, Serialize};

use super::candidates::{IndexColumn, IndexDef, sql_ident};
use crate::results::RatioCi;

/// One proposed remedy.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Remedy {
    /// The workload query it is for.
    pub query: String,
    /// Position of the statement in the query.
    pub statement: usize,
    /// What it changes, in a line.
    pub change: String,
    /// The migration (each statement alone; the ALTER TABLE rewrites the
    /// table under an ACCESS EXCLUSIVE lock).
    pub migration: Vec<String>,
    /// The statement rewritten to use the new column.
    pub rewritten_sql: String,
    /// The index the migration builds (its name).
    #[serde(default)]
    pub index: String,
    /// Measured effect (`--verify`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<RemedyMeasured>,
}

/// Timings of the original statement on the database against the rewritten
/// one on a clone with the migration, interleaved, same parameters, as the
/// workload's role with the tenant set.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RemedyMeasured {
    /// Executions of each.
    pub iterations: usize,
    /// Median of the original, ms.
    pub before_p50_ms: f64,
    /// Median of the rewritten statement, ms.
    pub after_p50_ms: f64,
    /// after/before of the medians with a bootstrap interval over iterations.
    pub ratio: RatioCi,
    /// Both returned the same number of rows for every parameter set.
    pub same_rows: bool,
    /// Whether the rewritten statement's plan on the clone uses the
    /// remedy's index (checked before timing: a rewrite the planner does
    /// not serve from the index measures something else).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uses_index: Option<bool>,
}

impl Remedy {
    /// Whether it is worth doing, as measured: the whole interval faster,
    /// the same rows, and the index in the plan. None when not measured.
    pub fn shows_gain(&self) -> Option<bool> {
        let m = self.measured.as_ref()?;
        Some(m.ratio.hi < 1.0 && m.same_rows && m.uses_index != Some(false))
    }

    /// Its measured effect in one line, or that it was not measured.
    pub fn effect(&self) -> String {
        match &self.measured {
            None => "not measured (advise --verify measures it)".to_string(),
            Some(m) => format!(
                "{:.2} ms → {:.2} ms, {:.2}× [{:.2}, {:.2}]{}{}",
                m.before_p50_ms,
                m.after_p50_ms,
                m.ratio.ratio,
                m.ratio.lo,
                m.ratio.hi,
                if m.same_rows {
                    ""
                } else {
                    "; row counts differ: check the rewrite"
                },
                if m.uses_index == Some(false) {
                    format!("; the rewritten plan does not use {}", self.index)
                } else {
                    String::new()
                }
            ),
        }
    }
}

/// The remedies for one statement: `columns` lists (table, column, type)
/// of the tables its plan reads.
pub fn propose(
    query: &str,
    statement: usize,
    sql: &str,
    schema: &str,
    tenant_column: Option<&str>,
    columns: &[(String, String, String)],
) -> Vec<Remedy> {
    let mut out = Vec::new();
    for (table, column, ty) in columns {
        let rule = if ty == "numeric" {
            numeric_to_cents(sql, table, column)
        } else if ty == "text" || ty == "varchar" {
            ilike_prefix_to_range(sql, column)
        } else {
            None
        };
        let Some((new_column, generated, rewritten, change)) = rule else {
            continue;
        };
        let mut key: Vec<IndexColumn> = tenant_column
            .map(|t| IndexColumn {
                name: t.into(),
                desc: false,
            })
            .into_iter()
            .collect();
        key.push(IndexColumn {
            name: new_column.clone(),
            desc: false,
        });
        let index = IndexDef {
            table: table.clone(),
            columns: key,
            predicate: None,
            include: Vec::new(),
        };
        out.push(Remedy {
            query: query.into(),
            statement,
            change: format!("{table}.{column}: {change}"),
            migration: vec![
                format!(
                    "ALTER TABLE {}.{} ADD COLUMN IF NOT EXISTS {} {generated} STORED",
                    sql_ident(schema),
                    sql_ident(table),
                    sql_ident(&new_column)
                ),
                index.create_concurrently_sql(schema),
            ],
            rewritten_sql: rewritten,
            index: index.name(),
            measured: None,
        });
    }
    out
}

/// Comparisons of `column` → the same on `column_cents`, with every other
/// use of the column that must follow (ORDER BY, GROUP BY, the select list
/// under a moved grouping) rewritten by [`super::rewrite`].
fn numeric_to_cents(
    sql: &str,
    table: &str,
    column: &str,
) -> Option<(String, String, String, String)> {
    let cents = format!("{column}_cents");
    let swap = super::rewrite::Swap {
        table,
        column,
        new_column: &cents,
        convert: "(round(({})::numeric * 100))::bigint",
        // Cents are exact for a numeric of scale ≤ 2 (money): same order,
        // same groups, the value computed back.
        back: "round({} / 100.0, 2)",
    };
    let (rewritten, _) = super::rewrite::rewrite(sql, &swap)?;
    Some((
        cents,
        format!("bigint GENERATED ALWAYS AS ((round({column} * 100))::bigint)"),
        rewritten,
        "money as integer cents (a stored generated bigint column): bigint comparisons are leakproof"
            .to_string(),
    ))
}

/// `[alias.]col ILIKE $n || '%'` → `col_lower >= lower($n) AND col_lower <
/// lower($n) || chr(1114111)`.
fn ilike_prefix_to_range(sql: &str, column: &str) -> Option<(String, String, String, String)> {
    let lower = format!("{column}_lower");
    // The first use of the column that is a prefix ILIKE (it may also be
    // selected or sorted on before).
    let (at, p, r) = {
        let mut from = 0;
        loop {
            let at = from + find_word(&sql[from..], column)?;
            let matched = (|| {
                let after = sql[at + column.len()..].trim_start();
                let r = strip_keyword(after, "ILIKE")?;
                let (p, r) = param(r)?;
                let r = r.trim_start().strip_prefix("||")?.trim_start();
                Some((p, r.strip_prefix("'%'")?))
            })();
            match matched {
                Some((p, r)) => break (at, p, r),
                None => from = at + column.len(),
            }
        }
    };
    let qualified = sql[..at].ends_with('.');
    let alias_start = if qualified {
        sql[..at - 1]
            .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .map_or(0, |i| i + 1)
    } else {
        at
    };
    let prefix = &sql[alias_start..at];
    let rewritten = format!(
        "{}{prefix}{lower} >= lower({p}) AND {prefix}{lower} < lower({p}) || chr(1114111){}",
        &sql[..alias_start],
        r
    );
    Some((
        lower,
        format!("text GENERATED ALWAYS AS (lower({column}))"),
        rewritten,
        "a stored generated lower-case column searched as a text range: text comparisons are leakproof"
            .to_string(),
    ))
}

/// Position of `word` in `s` as a whole identifier.
pub(crate) fn find_word(s: &str, word: &str) -> Option<usize> {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    let mut from = 0;
    while let Some(i) = s[from..].find(word) {
        let at = from + i;
        let before_ok = !s[..at].chars().next_back().is_some_and(ident);
        let after_ok = !s[at + word.len()..].chars().next().is_some_and(ident);
        if before_ok && after_ok {
            return Some(at);
        }
        from = at + word.len();
    }
    None
}

fn strip_keyword<'a>(s: &'a str, keyword: &str) -> Option<&'a str> {
    let s = s.trim_start();
    let head = s.get(..keyword.len())?;
    (head.eq_ignore_ascii_case(keyword)
        && s[keyword.len()..].starts_with(|c: char| c.is_whitespace()))
    .then(|| &s[keyword.len()..])
}

/// `$3` or `$3::numeric` → (`$3`, rest).
fn param(s: &str) -> Option<(String, &str)> {
    let s = s.trim_start();
    let digits = s.strip_prefix('$')?;
    let n = digits.chars().take_while(char::is_ascii_digit).count();
    if n == 0 {
        return None;
    }
    let mut rest = &digits[n..];
    if let Some(cast) = rest.strip_prefix("::") {
        let len = cast
            .chars()
            .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
            .count();
        rest = &cast[len..];
    }
    Some((format!("${}", &digits[..n]), rest))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cols(t: &str, c: &str, ty: &str) -> Vec<(String, String, String)> {
        vec![(t.into(), c.into(), ty.into())]
    }

    #[test]
    fn numeric_range_becomes_cents() {
        let sql = "SELECT p.id FROM products p WHERE p.metal = $1\n  AND p.base_price BETWEEN $2::numeric AND $3::numeric\nORDER BY p.base_price";
        let r = propose(
            "q",
            0,
            sql,
            "crm",
            Some("tenant_id"),
            &cols("products", "base_price", "numeric"),
        );
        assert_eq!(r.len(), 1);
        assert_eq!(
            r[0].rewritten_sql,
            // Every use moves: ORDER BY too (issue 16, item 4).
            "SELECT p.id FROM products p WHERE p.metal = $1 AND p.base_price_cents BETWEEN round($2::numeric * 100)::bigint AND round($3::numeric * 100)::bigint ORDER BY p.base_price_cents"
        );
        assert_eq!(
            r[0].migration[0],
            "ALTER TABLE crm.products ADD COLUMN IF NOT EXISTS base_price_cents bigint GENERATED ALWAYS AS ((round(base_price * 100))::bigint) STORED"
        );
        assert!(
            r[0].migration[1].ends_with("ON crm.products (tenant_id, base_price_cents)"),
            "{}",
            r[0].migration[1]
        );
        let ge = propose(
            "q",
            0,
            "SELECT 1 FROM orders WHERE total >= $2",
            "crm",
            None,
            &cols("orders", "total", "numeric"),
        );
        assert!(
            ge[0]
                .rewritten_sql
                .ends_with("total_cents >= round($2::numeric * 100)::bigint"),
            "{}",
            ge[0].rewritten_sql
        );
        // Not a comparison with a parameter: nothing to rewrite.
        assert!(
            propose(
                "q",
                0,
                "SELECT sum(total) FROM orders",
                "crm",
                None,
                &cols("orders", "total", "numeric")
            )
            .is_empty()
        );
    }

    #[test]
    fn ilike_prefix_becomes_a_text_range() {
        let sql = "SELECT id, last_name FROM customers\nWHERE last_name ILIKE $1 || '%'\nORDER BY last_name";
        let r = propose(
            "q",
            0,
            sql,
            "crm",
            Some("tenant_id"),
            &cols("customers", "last_name", "text"),
        );
        assert_eq!(
            r[0].rewritten_sql,
            "SELECT id, last_name FROM customers\nWHERE last_name_lower >= lower($1) AND last_name_lower < lower($1) || chr(1114111)\nORDER BY last_name"
        );
        let aliased = propose(
            "q",
            0,
            "SELECT 1 FROM customers c WHERE c.last_name ILIKE $2 || '%'",
            "crm",
            None,
            &cols("customers", "last_name", "text"),
        );
        assert!(
            aliased[0].rewritten_sql.ends_with(
                "c.last_name_lower >= lower($2) AND c.last_name_lower < lower($2) || chr(1114111)"
            ),
            "{}",
            aliased[0].rewritten_sql
        );
        // A contains-search (`'%' || $1 || '%'`) is no prefix: no rewrite.
        assert!(
            propose(
                "q",
                0,
                "SELECT 1 FROM customers WHERE last_name ILIKE '%' || $1 || '%'",
                "crm",
                None,
                &cols("customers", "last_name", "text")
            )
            .is_empty()
        );
    }
}
