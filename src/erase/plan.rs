//! Which rows an erasure touches, as an ordered list of steps: the rows
//! that reference the subject through the catalog's foreign keys (children
//! before their parents, so no key is violated on the way) and the
//! references the policy declares. Pure: built from catalog facts.

use crate::audit::catalog::Key;
use crate::audit::rules::{columns, ident};
use crate::pg::quote_literal;

/// What a step does with its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Delete them.
    Delete,
    /// Leave them (they must then not reference the subject: the proof says so).
    Keep,
    /// Keep the rows but overwrite the policy's personal columns (records a
    /// business must keep, e.g. invoices, lose what names the person).
    Pseudonymise,
}

/// One statement of the erasure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// Table in the schema.
    pub table: String,
    /// SQL predicate selecting the step's rows.
    pub predicate: String,
    /// What to do with them.
    pub action: Action,
    /// How the rows were reached (`customers ← orders.orders_customer_fkey`).
    pub via: String,
    /// The column holding the tenant (the key, on the tenants table).
    pub tenant_column: String,
}

/// Who is erased.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Subject {
    /// One row of the subject table (a customer), by its key.
    Row {
        /// Table (`customers`).
        table: String,
        /// Key column (`id`).
        key: String,
        /// Key value.
        id: String,
    },
    /// A whole tenant.
    Tenant,
}

/// The schema's foreign keys and what the policy does per table.
pub struct Graph<'a> {
    /// Schema.
    pub schema: &'a str,
    /// Its keys (the foreign keys are read).
    pub keys: &'a [Key],
    /// The tenant column.
    pub column: &'a str,
    /// The tables with the tenant column.
    pub tenant_tables: &'a [String],
    /// The tenants table and its key.
    pub root: Option<(&'a str, &'a str)>,
    /// The policy's action per table.
    pub action: &'a dyn Fn(&str) -> Action,
}

impl Graph<'_> {
    fn q(&self, t: &str) -> String {
        format!("{}.{}", ident(self.schema), ident(t))
    }
}

/// The steps for `subject` of `tenant`, leaves first.
pub fn steps(g: &Graph, tenant: &str, subject: &Subject) -> Vec<Step> {
    let (keys, column, action) = (g.keys, g.column, g.action);
    let t = quote_literal(tenant);
    let mut out = Vec::new();
    match subject {
        Subject::Row { table, key, id } => {
            let pred = format!(
                "{} = {t} AND {} = {}",
                ident(column),
                ident(key),
                quote_literal(id)
            );
            let mut path = vec![table.clone()];
            children(g, table, &pred, &mut path, &mut out);
            out.push(Step {
                table: table.clone(),
                predicate: pred,
                action: action(table),
                via: "the subject".into(),
                tenant_column: column.into(),
            });
        }
        Subject::Tenant => {
            for table in leaves_first(keys, g.tenant_tables) {
                out.push(Step {
                    predicate: format!("{} = {t}", ident(column)),
                    action: action(&table),
                    via: "the tenant".into(),
                    tenant_column: column.into(),
                    table,
                });
            }
            if let Some((root, key)) = g.root {
                out.push(Step {
                    table: root.to_string(),
                    predicate: format!("{} = {t}", ident(key)),
                    action: action(root),
                    via: "the tenant".into(),
                    tenant_column: key.into(),
                });
            }
        }
    }
    out
}

/// Steps for the rows referencing `parent`'s selected rows, recursively,
/// each child's own children first.
fn children(
    g: &Graph,
    parent: &str,
    parent_pred: &str,
    path: &mut Vec<String>,
    out: &mut Vec<Step>,
) {
    for k in g
        .keys
        .iter()
        .filter(|k| k.kind == 'f' && k.foreign_table == parent)
    {
        if path.contains(&k.table) {
            continue; // a cycle (or a self-reference): the key reports it
        }
        let pred = format!(
            "({}) IN (SELECT {} FROM {} WHERE {parent_pred})",
            columns(&k.columns),
            columns(&k.foreign_columns),
            g.q(parent)
        );
        path.push(k.table.clone());
        children(g, &k.table, &pred, path, out);
        path.pop();
        out.push(Step {
            table: k.table.clone(),
            predicate: pred,
            action: (g.action)(&k.table),
            via: format!("{parent} ← {}.{}", k.table, k.name),
            tenant_column: g.column.into(),
        });
    }
}

/// `tables` ordered so that a table comes before every table it references.
fn leaves_first(keys: &[Key], tables: &[String]) -> Vec<String> {
    let mut left: Vec<String> = tables.to_vec();
    let mut out = Vec::new();
    while !left.is_empty() {
        // A table no remaining table references goes next.
        let pos = left
            .iter()
            .position(|t| {
                !keys.iter().any(|k| {
                    k.kind == 'f'
                        && &k.foreign_table == t
                        && k.table != *t
                        && left.contains(&k.table)
                })
            })
            .unwrap_or(0);
        out.push(left.remove(pos));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fk(table: &str, cols: &[&str], to: &str) -> Key {
        Key {
            table: table.into(),
            name: format!("{table}_{to}_fkey"),
            kind: 'f',
            columns: cols.iter().map(|c| c.to_string()).collect(),
            foreign_table: to.into(),
            foreign_columns: vec!["tenant_id".into(), "id".into()],
        }
    }

    #[test]
    fn children_come_before_their_parents() {
        let keys = [
            fk("orders", &["tenant_id", "customer_id"], "customers"),
            fk("payments", &["tenant_id", "order_id"], "orders"),
            fk("order_items", &["tenant_id", "order_id"], "orders"),
        ];
        let subject = Subject::Row {
            table: "customers".into(),
            key: "id".into(),
            id: "7".into(),
        };
        let delete = |_: &str| Action::Delete;
        let tables: Vec<String> = ["customers", "orders", "payments"]
            .map(String::from)
            .to_vec();
        let g = Graph {
            schema: "crm",
            keys: &keys,
            column: "tenant_id",
            tenant_tables: &tables,
            root: Some(("tenants", "id")),
            action: &delete,
        };
        let s = steps(&g, "t1", &subject);
        let order: Vec<&str> = s.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(order, ["payments", "order_items", "orders", "customers"]);
        assert_eq!(s[3].predicate, "tenant_id = 't1' AND id = '7'");
        assert!(s[0].predicate.starts_with("(tenant_id, order_id) IN (SELECT tenant_id, id FROM crm.orders WHERE (tenant_id, customer_id) IN"));
        let s = steps(&g, "t1", &Subject::Tenant);
        let order: Vec<&str> = s.iter().map(|s| s.table.as_str()).collect();
        assert_eq!(order, ["payments", "orders", "customers", "tenants"]);
    }
}
