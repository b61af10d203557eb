//! Building keys, indexes and row-level security after the load, from the same
//! embedded SQL `schema create` runs (so the end state is identical): per-table
//! statements run in parallel on several connections, foreign keys after them
//! one at a time (each locks two tables), then RLS and grants.

use std::collections::BTreeMap;

use crate::schema::Step;

/// One DDL statement and the table it changes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    /// Table in schema `crm`.
    pub table: String,
    /// The SQL, without the trailing semicolon.
    pub sql: String,
}

/// Split an embedded SQL file into statements (the files hold no semicolons
/// inside statements), dropping comment lines.
pub fn statements(sql: &str) -> Vec<Statement> {
    let without_comments: String = sql
        .lines()
        .filter(|l| !l.trim_start().starts_with("--"))
        .collect::<Vec<_>>()
        .join("\n");
    without_comments
        .split(';')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| Statement {
            table: s
                .split("crm.")
                .nth(1)
                .map(|rest| {
                    rest.chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                        .collect()
                })
                .unwrap_or_default(),
            sql: s.to_string(),
        })
        .collect()
}

/// Keys and indexes grouped by table (run in parallel across tables), and the
/// foreign keys (run one by one afterwards).
pub fn post_load_plan() -> (BTreeMap<String, Vec<String>>, Vec<String>) {
    let mut per_table: BTreeMap<String, Vec<String>> = BTreeMap::new();
    let mut foreign = Vec::new();
    for step in [Step::Keys, Step::Indexes] {
        for st in statements(step.sql()) {
            if st.sql.contains("FOREIGN KEY") {
                foreign.push(st.sql);
            } else {
                per_table.entry(st.table).or_default().push(st.sql);
            }
        }
    }
    (per_table, foreign)
}

/// `ALTER TABLE crm.t VALIDATE CONSTRAINT name` for an `ADD CONSTRAINT name
/// FOREIGN KEY` statement.
pub fn validate_statement(fk: &str) -> Option<String> {
    let table = statements(fk).first()?.table.clone();
    let name = fk
        .split("ADD CONSTRAINT")
        .nth(1)?
        .split_whitespace()
        .next()?;
    Some(format!(
        "ALTER TABLE crm.{table} VALIDATE CONSTRAINT {name}"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_foreign_key_can_be_validated_later() {
        let (_, foreign) = post_load_plan();
        for fk in &foreign {
            let v = validate_statement(fk).unwrap_or_else(|| panic!("no name in {fk}"));
            assert!(
                v.starts_with("ALTER TABLE crm.") && v.contains("_fkey"),
                "{v}"
            );
        }
        assert_eq!(
            validate_statement(
                "ALTER TABLE crm.orders ADD CONSTRAINT orders_customer_fkey\n    FOREIGN KEY (tenant_id, customer_id) REFERENCES crm.customers (tenant_id, id)"
            )
            .as_deref(),
            Some("ALTER TABLE crm.orders VALIDATE CONSTRAINT orders_customer_fkey")
        );
    }

    #[test]
    fn splits_and_attributes_statements() {
        let st = statements(
            "-- a comment; with a semicolon\nALTER TABLE crm.orders ADD PRIMARY KEY (tenant_id, id);\n\
             CREATE INDEX x ON crm.order_items (tenant_id);",
        );
        assert_eq!(st.len(), 2);
        assert_eq!(st[0].table, "orders");
        assert_eq!(st[1].table, "order_items");
    }

    #[test]
    fn every_key_and_index_statement_is_planned_once() {
        let (per_table, foreign) = post_load_plan();
        let planned: usize = per_table.values().map(Vec::len).sum::<usize>() + foreign.len();
        let total = statements(Step::Keys.sql()).len() + statements(Step::Indexes.sql()).len();
        assert_eq!(planned, total);
        assert!(foreign.iter().all(|f| f.contains("REFERENCES")));
        assert!(per_table.contains_key("customers"));
        assert!(!per_table.contains_key(""));
    }
}
