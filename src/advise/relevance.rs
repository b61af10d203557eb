//! Which candidate indexes can change a statement's what-if plan, so the
//! search re-plans a statement only when an index that can matter to it
//! comes or goes (issue 18 item 6: fewer what-if calls at the same answer).
//!
//! Every what-if cost is cached by (statement, sample, the configuration's
//! indexes that can affect the statement): a step that adds an index no
//! statement of a query can use costs nothing for that query. Narrower
//! relevance means more cache hits. An index can affect a statement only
//! when the statement reads its table and, beyond that, when the planner
//! can use it: through a condition or an ordering on one of its columns,
//! or as an index-only scan. One case is ruled out: when every column of
//! the index other than its leading one is absent from the statement's
//! text, and the table already has an index led by the same column with no
//! more key columns, the candidate offers the statement nothing that index
//! does not (the same conditions, the same ordering, no wider coverage), so
//! the statement is not re-planned for it. Everything uncertain — a table
//! reached through a view, a function or a trigger (not named in the text),
//! a table without such an index — stays relevant: over-counting costs
//! calls, never the answer.

use std::collections::{BTreeSet, HashMap};

use super::candidates::IndexDef;
use super::select::Item;

/// For each (item, candidate): whether the candidate can affect the item's
/// plan.
#[derive(Debug, Clone, Default)]
pub struct Relevance {
    affects: Vec<Vec<bool>>,
    /// (item, candidate) pairs on a table the item reads that were ruled out.
    pub ruled_out: usize,
}

impl Relevance {
    /// Judge every candidate against every item; `existing` are the
    /// indexes the schema has now.
    pub fn new(items: &[Item], candidates: &[IndexDef], existing: &[IndexDef]) -> Relevance {
        // Shortest existing key led by each (table, column).
        let mut led: HashMap<(&str, &str), usize> = HashMap::new();
        // A partial index serves only the statements its predicate admits.
        for e in existing.iter().filter(|e| e.predicate.is_none()) {
            if let Some(first) = e.columns.first() {
                let n = led.entry((&e.table, &first.name)).or_insert(usize::MAX);
                *n = (*n).min(e.columns.len());
            }
        }
        let mut ruled_out = 0;
        let affects = items
            .iter()
            .map(|item| {
                let words = identifiers(&item.sql);
                let opaque = names_columns_implicitly(&item.sql, &words);
                candidates
                    .iter()
                    .map(|c| {
                        let reads = item.tables.contains(&c.table);
                        let can = reads && (opaque || can_affect(&words, c, &led));
                        ruled_out += usize::from(reads && !can);
                        can
                    })
                    .collect()
            })
            .collect();
        Relevance { affects, ruled_out }
    }

    /// Whether candidate `c` can affect item `item`'s plan (true when the
    /// matrix does not know them: unknown means relevant).
    pub fn affects(&self, item: usize, c: usize) -> bool {
        self.affects
            .get(item)
            .and_then(|row| row.get(c))
            .copied()
            .unwrap_or(true)
    }
}

/// A statement that uses columns its text does not name: `NATURAL JOIN`,
/// or `*` (not `count(*)`) with an ordering, grouping or DISTINCT that may
/// be by position.
fn names_columns_implicitly(sql: &str, words: &BTreeSet<String>) -> bool {
    let star = sql.replace("(*)", "").contains('*');
    words.contains("natural")
        || (star
            && ["order", "group", "distinct"]
                .iter()
                .any(|w| words.contains(*w)))
}

/// The rule of the module doc for a statement reading `c`'s table.
fn can_affect(words: &BTreeSet<String>, c: &IndexDef, led: &HashMap<(&str, &str), usize>) -> bool {
    // A table the text does not name is reached through something whose
    // columns the text does not show.
    if !words.contains(&c.table.to_lowercase()) {
        return true;
    }
    let Some(first) = c.columns.first() else {
        return true;
    };
    let covered = led
        .get(&(c.table.as_str(), first.name.as_str()))
        .is_some_and(|n| *n <= c.columns.len());
    if !covered || first.name.contains('(') {
        return true;
    }
    // Every other column the index holds, its predicate's included.
    let mut others: BTreeSet<String> = BTreeSet::new();
    for col in c.columns.iter().skip(1) {
        others.extend(identifiers(&col.name));
    }
    for col in &c.include {
        others.extend(identifiers(col));
    }
    if let Some(p) = &c.predicate {
        others.extend(identifiers(p));
    }
    others.iter().any(|w| words.contains(w))
}

/// Every identifier in `sql`, outside string literals and comments:
/// unquoted ones lower-cased (as PostgreSQL folds them), quoted ones as
/// written. A superset of the columns the statement names, which is the
/// safe side.
pub fn identifiers(sql: &str) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let chars: Vec<char> = sql.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c == '\'' {
            i = skip_past(&chars, i + 1, '\'');
        } else if c == '-' && chars.get(i + 1) == Some(&'-') {
            i = skip_past(&chars, i, '\n');
        } else if c == '/' && chars.get(i + 1) == Some(&'*') {
            i = (i + 2..chars.len().saturating_sub(1))
                .find(|&k| chars[k] == '*' && chars[k + 1] == '/')
                .map_or(chars.len(), |k| k + 2);
        } else if c == '"' {
            let end = skip_past(&chars, i + 1, '"');
            out.insert(
                chars[i + 1..end.saturating_sub(1).max(i + 1)]
                    .iter()
                    .collect(),
            );
            i = end;
        } else if c.is_alphabetic() || c == '_' {
            let start = i;
            while i < chars.len()
                && (chars[i].is_alphanumeric() || chars[i] == '_' || chars[i] == '$')
            {
                i += 1;
            }
            out.insert(chars[start..i].iter().collect::<String>().to_lowercase());
        } else {
            i += 1;
        }
    }
    out
}

/// The position just after the next `end` at or after `from` (a doubled
/// quote inside a literal is two literals back to back: same result).
fn skip_past(chars: &[char], from: usize, end: char) -> usize {
    (from..chars.len())
        .find(|&k| chars[k] == end)
        .map_or(chars.len(), |k| k + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn item(sql: &str, tables: &[&str]) -> Item {
        Item {
            query: "q".into(),
            sql: sql.into(),
            weight: 1.0,
            samples: Vec::new(),
            tables: tables.iter().map(|t| t.to_string()).collect(),
            writes: None,
        }
    }

    #[test]
    fn identifiers_skip_literals_and_comments() {
        let w = identifiers(
            "SELECT \"Total\", o.placed_at -- customer_id\nFROM orders o WHERE status = 'open email' /* x_y */",
        );
        assert!(w.contains("Total") && w.contains("placed_at") && w.contains("orders"));
        assert!(w.contains("status") && w.contains("o"));
        assert!(!w.contains("customer_id") && !w.contains("email") && !w.contains("x_y"));
    }

    #[test]
    fn an_index_on_columns_the_statement_never_names_is_ruled_out() {
        let items = [
            item(
                "SELECT id FROM orders WHERE tenant_id = $1 AND customer_id = $2",
                &["orders"],
            ),
            item("SELECT count(*) FROM customers", &["customers"]),
            item("SELECT * FROM order_view WHERE id = $1", &["orders"]),
        ];
        let by_customer = IndexDef::on("orders", &["tenant_id", "customer_id"]);
        let by_status = IndexDef::on("orders", &["tenant_id", "status"]);
        let mut partial = IndexDef::on("orders", &["tenant_id", "placed_at"]);
        partial.predicate = Some("customer_id IS NOT NULL".into());
        let by_email = IndexDef::on("customers", &["tenant_id", "email"]);
        let candidates = [by_customer, by_status, partial, by_email];
        let existing = [IndexDef::on("orders", &["tenant_id"])];
        let r = Relevance::new(&items, &candidates, &existing);
        assert!(r.affects(0, 0), "its own column");
        assert!(!r.affects(0, 1), "status is never named");
        assert!(r.affects(0, 2), "the predicate names customer_id");
        assert!(!r.affects(0, 3), "another table");
        // customers has no tenant_id-led index: a new one may be its first.
        assert!(r.affects(1, 3));
        // A view: the text does not show the table's columns.
        assert!(r.affects(2, 1));
        assert_eq!(r.ruled_out, 1);
        // Columns used without their names: nothing is ruled out.
        let implicit = [
            item("SELECT * FROM orders ORDER BY 3", &["orders"]),
            item("SELECT id FROM orders NATURAL JOIN refunds", &["orders"]),
        ];
        let r = Relevance::new(&implicit, &candidates, &existing);
        assert!(r.affects(0, 1) && r.affects(1, 1));
        assert_eq!(r.ruled_out, 0);
    }
}
