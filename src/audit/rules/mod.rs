//! The catalog rules, one file per family: row-level security (`rls`),
//! keys that block distribution by tenant (`keys`), paths that bypass
//! row-level security (`leaks`) and its cost (`cost`). Each is a pure
//! function of the [`Catalog`] and the tenant column and setting.

mod cost;
mod keys;
mod leaks;
mod rls;

use super::catalog::{Catalog, Relation};
use super::model::Finding;

/// What every rule reads: the facts and the tenant column and setting.
pub struct Ctx<'a> {
    /// The catalog facts.
    pub cat: &'a Catalog,
    /// The tenant column.
    pub column: &'a str,
    /// The tenant setting.
    pub setting: &'a str,
}

impl Ctx<'_> {
    /// Tables (not views) carrying the tenant column.
    pub fn tenant_tables(&self) -> impl Iterator<Item = &Relation> {
        self.cat
            .relations
            .iter()
            .filter(|r| matches!(r.kind, 'r' | 'p') && r.columns.iter().any(|c| c == self.column))
    }

    /// Whether `table` carries the tenant column.
    pub fn is_tenant(&self, table: &str) -> bool {
        self.tenant_tables().any(|r| r.name == table)
    }

    /// The tenants tables: referenced by a tenant table's tenant column
    /// alone (`tenant_id → tenants(id)`), with the column referenced.
    pub fn roots(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .cat
            .keys
            .iter()
            .filter(|k| k.kind == 'f' && k.columns == [self.column] && self.is_tenant(&k.table))
            .filter(|k| !self.is_tenant(&k.foreign_table))
            .filter_map(|k| Some((k.foreign_table.clone(), k.foreign_columns.first()?.clone())))
            .collect();
        out.sort();
        out.dedup();
        out
    }

    /// `schema.name`, quoted where needed.
    pub fn qualified(&self, name: &str) -> String {
        format!("{}.{}", ident(&self.cat.schema), ident(name))
    }

    /// The tenant column's type on `table` (`uuid` when unknown).
    pub fn column_type(&self, table: &str) -> String {
        self.cat
            .relation(table)
            .and_then(|r| {
                let i = r.columns.iter().position(|c| c == self.column)?;
                r.types.get(i).cloned()
            })
            .unwrap_or_else(|| "uuid".into())
    }

    /// The policy expression restricting `column` of `table` to the tenant.
    pub fn predicate(&self, table: &str, column: &str) -> String {
        format!(
            "{} = current_setting('{}')::{}",
            ident(column),
            self.setting.replace('\'', "''"),
            self.column_type(table)
        )
    }
}

/// An identifier as SQL writes it: bare when plain lowercase, else quoted.
pub fn ident(name: &str) -> String {
    let plain = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if plain {
        name.to_string()
    } else {
        crate::pg::quote_ident(name)
    }
}

/// A comma-separated column list, each quoted where needed.
pub fn columns(cols: &[String]) -> String {
    cols.iter().map(|c| ident(c)).collect::<Vec<_>>().join(", ")
}

/// Every catalog rule's findings.
pub fn check(cat: &Catalog, column: &str, setting: &str) -> Vec<Finding> {
    let ctx = Ctx {
        cat,
        column,
        setting,
    };
    let mut out = rls::check(&ctx);
    out.extend(keys::check(&ctx));
    out.extend(leaks::check(&ctx));
    out.extend(cost::check(&ctx));
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::super::catalog::{Catalog, Key, Policy, Relation};
    use super::super::model::{Finding, Rule};

    /// One rule family run on `cat`, tenant column `tenant_id`.
    pub fn run(cat: &Catalog, family: fn(&super::Ctx) -> Vec<Finding>) -> Vec<Finding> {
        family(&super::Ctx {
            cat,
            column: "tenant_id",
            setting: "app.t",
        })
    }

    /// The (rule, object) of each finding.
    pub fn objects(found: &[Finding]) -> Vec<(Rule, String)> {
        found.iter().map(|f| (f.rule, f.object.clone())).collect()
    }

    /// A table with the CRM's policy, forced RLS and the given columns.
    pub fn table(name: &str, cols: &[&str]) -> Relation {
        Relation {
            name: name.into(),
            kind: 'r',
            owner: "owner".into(),
            rls_enabled: true,
            rls_forced: true,
            columns: cols.iter().map(|c| c.to_string()).collect(),
            types: cols.iter().map(|_| "uuid".to_string()).collect(),
            ..Relation::default()
        }
    }

    pub fn policy(table: &str, using: &str) -> Policy {
        Policy {
            table: table.into(),
            name: "p".into(),
            cmd: '*',
            permissive: true,
            using: Some(using.into()),
            check: None,
        }
    }

    pub fn key(table: &str, kind: char, cols: &[&str], foreign: (&str, &[&str])) -> Key {
        Key {
            table: table.into(),
            name: format!("{table}_{kind}"),
            kind,
            columns: cols.iter().map(|c| c.to_string()).collect(),
            foreign_table: foreign.0.into(),
            foreign_columns: foreign.1.iter().map(|c| c.to_string()).collect(),
        }
    }

    pub const USING: &str = "(tenant_id = (current_setting('app.t'::text))::uuid)";

    /// Two sound tenant tables, `customers` and `orders`.
    pub fn sound() -> Catalog {
        Catalog {
            schema: "s".into(),
            relations: vec![
                table("customers", &["tenant_id", "id"]),
                table("orders", &["tenant_id", "id", "customer_id"]),
            ],
            policies: vec![policy("customers", USING), policy("orders", USING)],
            keys: vec![
                key("customers", 'p', &["tenant_id", "id"], ("", &[])),
                key("orders", 'p', &["tenant_id", "id"], ("", &[])),
                key(
                    "orders",
                    'f',
                    &["tenant_id", "customer_id"],
                    ("customers", &["tenant_id", "id"]),
                ),
                key("orders", 'x', &["tenant_id", "customer_id"], ("", &[])),
            ],
            app_role: Some(("app".into(), false)),
            ..Catalog::default()
        }
    }

    #[test]
    fn a_sound_schema_has_no_findings() {
        let f = super::check(&sound(), "tenant_id", "app.t");
        assert!(f.is_empty(), "{f:#?}");
    }
}
