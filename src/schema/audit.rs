//! Catalog checks of the multi-tenant rules, read from the live database (not
//! from the SQL files), so a table added without them is caught:
//! every tenant-owned table has RLS enabled and forced with the tenant policy,
//! a primary key leading with `tenant_id`, `tenant_id` in every unique key and
//! on both sides of every foreign key between tenant-owned tables.

use serde::Serialize;
use tokio_postgres::Client;

use super::tables::is_shared;
use crate::error::{Error, Result};

/// The setting the policies read the tenant from.
pub const TENANT_SETTING: &str = "app.current_tenant_id";

/// One broken rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Violation {
    /// Table (or `table.constraint`).
    pub object: String,
    /// What is wrong.
    pub problem: String,
}

/// One table's row-level security facts.
#[derive(Debug, Clone, Serialize)]
pub struct TableRls {
    /// Table name.
    pub table: String,
    /// Whether the table carries `tenant_id`.
    pub tenant_owned: bool,
    /// `relrowsecurity`.
    pub enabled: bool,
    /// `relforcerowsecurity`.
    pub forced: bool,
    /// Number of policies.
    pub policies: i64,
}

/// Tables of `schema` with their RLS state.
pub async fn tables(client: &Client, schema: &str) -> Result<Vec<TableRls>> {
    let rows = client
        .query(
            "SELECT c.relname::text, \
                    EXISTS (SELECT 1 FROM pg_attribute a WHERE a.attrelid = c.oid \
                            AND a.attname = 'tenant_id' AND NOT a.attisdropped), \
                    c.relrowsecurity, c.relforcerowsecurity, \
                    (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') ORDER BY 1",
            &[&schema],
        )
        .await
        .map_err(|e| Error::from_pg("listing tables", e))?;
    Ok(rows
        .iter()
        .map(|r| TableRls {
            table: r.get(0),
            tenant_owned: r.get(1),
            enabled: r.get(2),
            forced: r.get(3),
            policies: r.get(4),
        })
        .collect())
}

/// Check every rule; an empty list means the schema is sound.
pub async fn audit(client: &Client, schema: &str) -> Result<Vec<Violation>> {
    let mut out = Vec::new();
    let tables = tables(client, schema).await?;
    let tenant_owned: Vec<&str> = tables
        .iter()
        .filter(|t| t.tenant_owned)
        .map(|t| t.table.as_str())
        .collect();
    for t in &tables {
        let v = |problem: String| Violation {
            object: t.table.clone(),
            problem,
        };
        if !t.tenant_owned && !is_shared(&t.table) {
            out.push(v("has no tenant_id and is not a shared table".into()));
            continue;
        }
        if t.tenant_owned || t.table == "tenants" {
            if !t.enabled {
                out.push(v("row-level security is not enabled".into()));
            }
            if !t.forced {
                out.push(v(
                    "row-level security is not forced (the owner bypasses it)".into(),
                ));
            }
            let key = if t.tenant_owned { "tenant_id" } else { "id" };
            out.extend(check_policies(client, schema, &t.table, key).await?);
        }
        if t.tenant_owned {
            out.extend(check_tenant_column(client, schema, &t.table).await?);
            out.extend(check_keys(client, schema, &t.table, &tenant_owned).await?);
        }
    }
    Ok(out)
}

async fn check_policies(
    client: &Client,
    schema: &str,
    table: &str,
    key: &str,
) -> Result<Vec<Violation>> {
    let rows = client
        .query(
            "SELECT p.polname::text, p.polcmd::text, p.polpermissive, \
                    coalesce(pg_get_expr(p.polqual, p.polrelid), ''), \
                    pg_get_expr(p.polwithcheck, p.polrelid) \
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(|e| Error::from_pg(format!("reading policies of {table}"), e))?;
    let is_tenant_predicate = |expr: &str| {
        expr.contains(&format!("current_setting('{TENANT_SETTING}'"))
            && expr.contains(&format!("({key} = "))
            && expr.contains("::uuid")
    };
    let mut out = Vec::new();
    let mut covering = false;
    for r in &rows {
        let (name, cmd, permissive): (String, String, bool) = (r.get(0), r.get(1), r.get(2));
        let (qual, check): (String, Option<String>) = (r.get(3), r.get(4));
        let check_ok = check.as_deref().is_none_or(is_tenant_predicate);
        if permissive && !(is_tenant_predicate(&qual) && check_ok) {
            out.push(Violation {
                object: format!("{table}.{name}"),
                problem: format!(
                    "permissive policy does not restrict to the current tenant: {qual}"
                ),
            });
        }
        if permissive && cmd == "*" && is_tenant_predicate(&qual) && check_ok {
            covering = true;
        }
    }
    if !covering {
        out.push(Violation {
            object: table.into(),
            problem: format!(
                "no policy for all commands with {key} = current_setting('{TENANT_SETTING}')::uuid"
            ),
        });
    }
    Ok(out)
}

async fn check_tenant_column(client: &Client, schema: &str, table: &str) -> Result<Vec<Violation>> {
    let row = client
        .query_one(
            "SELECT a.attnotnull, format_type(a.atttypid, a.atttypmod) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attname = 'tenant_id'",
            &[&schema, &table],
        )
        .await
        .map_err(|e| Error::from_pg(format!("reading tenant_id of {table}"), e))?;
    let (not_null, ty): (bool, String) = (row.get(0), row.get(1));
    let mut out = Vec::new();
    if !not_null {
        out.push(Violation {
            object: table.into(),
            problem: "tenant_id is nullable".into(),
        });
    }
    if ty != "uuid" {
        out.push(Violation {
            object: table.into(),
            problem: format!("tenant_id is {ty}, not uuid"),
        });
    }
    Ok(out)
}

/// A key of a table: a constraint (`p`, `u`, `f`) or a unique index that
/// backs none (`i`).
struct Key {
    name: String,
    kind: String,
    columns: Vec<String>,
    /// The referenced columns and table of a foreign key.
    foreign_columns: Vec<String>,
    foreign_table: String,
}

async fn check_keys(
    client: &Client,
    schema: &str,
    table: &str,
    tenant_owned: &[&str],
) -> Result<Vec<Violation>> {
    let keys = keys(client, schema, table).await?;
    Ok(key_violations(table, &keys, tenant_owned))
}

async fn keys(client: &Client, schema: &str, table: &str) -> Result<Vec<Key>> {
    // Constraints plus unique indexes that back no constraint.
    let rows = client
        .query(
            "WITH t AS (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                        WHERE n.nspname = $1 AND c.relname = $2) \
             SELECT con.conname::text, con.contype::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o), \
                    coalesce(fc.relname::text, '') \
             FROM pg_constraint con JOIN t ON con.conrelid = t.oid \
             LEFT JOIN pg_class fc ON fc.oid = con.confrelid \
             WHERE con.contype IN ('p', 'u', 'f') \
             UNION ALL \
             SELECT ic.relname::text, 'i', \
                    ARRAY(SELECT coalesce(a.attname::text, '<expr>') \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n \
                          ORDER BY k.o), \
                    ARRAY[]::text[], '' \
             FROM pg_index i JOIN t ON i.indrelid = t.oid JOIN pg_class ic ON ic.oid = i.indexrelid \
             WHERE i.indisunique \
               AND NOT EXISTS (SELECT 1 FROM pg_constraint con WHERE con.conindid = i.indexrelid)",
            &[&schema, &table],
        )
        .await
        .map_err(|e| Error::from_pg(format!("reading constraints of {table}"), e))?;
    Ok(rows
        .iter()
        .map(|r| Key {
            name: r.get(0),
            kind: r.get(1),
            columns: r.get(2),
            foreign_columns: r.get(3),
            foreign_table: r.get(4),
        })
        .collect())
}

/// The rules on keys: a primary key leading with `tenant_id`, `tenant_id` in
/// every unique key, and on both sides of a foreign key to a tenant-owned table.
fn key_violations(table: &str, keys: &[Key], tenant_owned: &[&str]) -> Vec<Violation> {
    let mut out = Vec::new();
    for k in keys {
        let cols = &k.columns;
        let violation = |problem: String| Violation {
            object: format!("{table}.{}", k.name),
            problem,
        };
        match k.kind.as_str() {
            "p" if cols.first().map(String::as_str) != Some("tenant_id") => {
                out.push(violation(format!(
                    "primary key ({}) does not lead with tenant_id",
                    cols.join(", ")
                )));
            }
            "u" | "i" if !cols.iter().any(|c| c == "tenant_id") => {
                out.push(violation(format!(
                    "unique key ({}) lacks tenant_id",
                    cols.join(", ")
                )));
            }
            "f" if tenant_owned.contains(&k.foreign_table.as_str()) => {
                let here = cols.iter().position(|c| c == "tenant_id");
                let there = k.foreign_columns.iter().position(|c| c == "tenant_id");
                if here.is_none() || here != there {
                    out.push(violation(format!(
                        "foreign key ({}) → {} ({}) does not carry tenant_id on both sides",
                        cols.join(", "),
                        k.foreign_table,
                        k.foreign_columns.join(", ")
                    )));
                }
            }
            _ => {}
        }
    }
    if !keys.iter().any(|k| k.kind == "p") {
        out.push(Violation {
            object: table.into(),
            problem: "has no primary key".into(),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(name: &str, kind: &str, cols: &[&str], foreign: (&str, &[&str])) -> Key {
        Key {
            name: name.into(),
            kind: kind.into(),
            columns: cols.iter().map(|c| c.to_string()).collect(),
            foreign_columns: foreign.1.iter().map(|c| c.to_string()).collect(),
            foreign_table: foreign.0.into(),
        }
    }

    #[test]
    fn keys_without_tenant_id_are_violations() {
        let keys = [
            key("orders_pkey", "p", &["id"], ("", &[])),
            key("orders_number_key", "u", &["order_number"], ("", &[])),
            key(
                "orders_customer_fkey",
                "f",
                &["customer_id"],
                ("customers", &["id"]),
            ),
            key(
                "orders_currency_fkey",
                "f",
                &["currency"],
                ("currencies", &["code"]),
            ),
        ];
        let found = key_violations("orders", &keys, &["orders", "customers"]);
        let objects: Vec<&str> = found.iter().map(|v| v.object.as_str()).collect();
        assert_eq!(
            objects,
            [
                "orders.orders_pkey",
                "orders.orders_number_key",
                "orders.orders_customer_fkey"
            ]
        );
        let sound = [
            key("orders_pkey", "p", &["tenant_id", "id"], ("", &[])),
            key(
                "orders_customer_fkey",
                "f",
                &["tenant_id", "customer_id"],
                ("customers", &["tenant_id", "id"]),
            ),
        ];
        assert!(key_violations("orders", &sound, &["orders", "customers"]).is_empty());
        let none = key_violations("orders", &[], &[]);
        assert_eq!(none[0].problem, "has no primary key");
    }
}
