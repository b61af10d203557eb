//! Catalog checks of the multi-tenant rules on crmbench's own schema, read
//! from the live database (not from the SQL files), so a table added without
//! them is caught: every tenant-owned table has RLS enabled and forced with
//! the tenant policy, a primary key, `tenant_id` in every unique key and on
//! both sides of every foreign key between tenant-owned tables. The general
//! rules are the audit's ([`crate::audit`], one implementation for any
//! schema); this file adds what only the CRM promises.

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

/// Check every rule; an empty list means the schema is sound. The
/// multi-tenant rules are the general audit's ([`crate::audit`]: its errors,
/// and a missing policy, are violations here); what is left here is what
/// only crmbench's own schema promises: every table is tenant-owned or on
/// the shared list, `tenant_id` is a NOT NULL uuid, every tenant table has
/// a primary key, and the tenants table itself is under its policy.
pub async fn audit(client: &Client, schema: &str) -> Result<Vec<Violation>> {
    let cat = crate::audit::catalog::Catalog::load(client, schema, crate::pg::roles::APP).await?;
    let opts = crate::audit::AuditOptions {
        schema: schema.into(),
        tenant_column: Some("tenant_id".into()),
        setting: Some(TENANT_SETTING.into()),
        app_role: crate::pg::roles::APP.into(),
        ..Default::default()
    };
    let mut out: Vec<Violation> = crate::audit::audit_catalog(&cat, &opts)
        .findings
        .into_iter()
        .filter(|f| {
            f.severity == crate::audit::Severity::Error
                || f.rule == crate::audit::Rule::PolicyMissing
        })
        .map(|f| Violation {
            object: f.object,
            problem: f.message,
        })
        .collect();
    for t in &tables(client, schema).await? {
        let v = |problem: String| Violation {
            object: t.table.clone(),
            problem,
        };
        if !t.tenant_owned && !is_shared(&t.table) {
            out.push(v("has no tenant_id and is not a shared table".into()));
        } else if t.table == "tenants" {
            if !(t.enabled && t.forced) {
                out.push(v("row-level security is not enabled and forced".into()));
            }
            out.extend(check_policies(client, schema, &t.table, "id").await?);
        } else if t.tenant_owned {
            out.extend(check_tenant_column(client, schema, &t.table).await?);
            if !cat.keys.iter().any(|k| k.table == t.table && k.kind == 'p') {
                out.push(v("has no primary key".into()));
            }
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
