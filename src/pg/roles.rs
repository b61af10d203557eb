//! crmbench's roles. Roles are server-wide, so they are created once per server.
//!
//! - [`OWNER`] owns the `crm` schema and every table in it. It is not a
//!   superuser and has no BYPASSRLS, so forced row-level security applies to it.
//! - [`APP`] is the application: LOGIN, not the owner, no BYPASSRLS, with the
//!   grants a CRM app needs. The built-in workload runs as it, and so does,
//!   on the private server, a workload file that names no role.
//! - [`SAMPLER`] runs the SQL a workload file gives for tenant discovery and
//!   sampling (`[context].tenants`, `sample`): it must see every tenant, so it
//!   has BYPASSRLS, but it is no superuser and holds nothing but SELECT on the
//!   workload's schemas. On the private server it logs in as itself: a role
//!   reached with `SET ROLE` from the superuser's session is left again by one
//!   `set_config('role', …)` in the query, since PostgreSQL checks `SET ROLE`
//!   against the session's user. On a `--database-url` server crmbench only
//!   has the URL's credentials, so there it is NOLOGIN, reached by `SET ROLE`.
//! - The private server's superuser (`crmbench_admin`) loads data (COPY is
//!   refused under RLS) and runs DDL; it never runs SQL from a workload file.

use tokio_postgres::Client;

use super::target::{Target, quote_ident};
use crate::error::{Error, Result};

/// Owner of the CRM schema (NOLOGIN; reached with `SET ROLE`).
pub const OWNER: &str = "crmbench_owner";
/// The application role the built-in workload runs as.
pub const APP: &str = "crmbench_app";
/// Tenant discovery and sampling: BYPASSRLS, SELECT only, not a superuser.
pub const SAMPLER: &str = "crmbench_sampler";

/// crmbench's roles, in the order they are created.
pub const ALL: [&str; 3] = [OWNER, APP, SAMPLER];

/// Roles of [`ALL`] that do not exist yet.
pub async fn missing(client: &Client) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for role in ALL {
        if !exists(client, role).await? {
            out.push(role);
        }
    }
    Ok(out)
}

/// Whether `role` exists on the server.
pub async fn exists(client: &Client, role: &str) -> Result<bool> {
    let row = client
        .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&role])
        .await
        .map_err(|e| Error::from_pg("checking roles", e))?;
    Ok(row.get::<_, i64>(0) > 0)
}

/// The SQL that creates `role` on `target` (its attributes say what it may do).
fn create_sql(target: &Target, role: &str) -> String {
    let attrs = match role {
        OWNER => "NOLOGIN NOSUPERUSER NOBYPASSRLS",
        SAMPLER if target.is_external() => "NOLOGIN NOSUPERUSER BYPASSRLS",
        SAMPLER => "LOGIN NOSUPERUSER BYPASSRLS",
        _ => "LOGIN NOSUPERUSER NOBYPASSRLS",
    };
    format!(
        "CREATE ROLE {} {attrs} NOCREATEDB NOCREATEROLE NOREPLICATION",
        quote_ident(role)
    )
}

/// Create the missing roles. On an external server this needs `--allow-ddl`
/// and CREATEROLE (and superuser for the sampler's BYPASSRLS); all are
/// checked first with a clear error.
pub async fn ensure(target: &Target, client: &Client) -> Result<()> {
    let missing = missing(client).await?;
    let (superuser, createrole) = attributes(client).await?;
    if !missing.is_empty() {
        target.require_ddl(&format!("creating roles {}", missing.join(", ")))?;
        let needs_super = missing.contains(&SAMPLER);
        if !(superuser || createrole && !needs_super) {
            let sql: Vec<String> = missing.iter().map(|r| create_sql(target, r)).collect();
            return Err(Error::MissingPrivilege {
                privilege: if needs_super {
                    format!("SUPERUSER (to create {SAMPLER} with BYPASSRLS)")
                } else {
                    format!("CREATEROLE (to create {})", missing.join(", "))
                },
                fix: format!(
                    "{}have an administrator run: {}; GRANT {} TO <you>",
                    if needs_super {
                        ""
                    } else {
                        "ALTER ROLE <you> CREATEROLE, or "
                    },
                    sql.join("; "),
                    missing.join(", ")
                ),
            });
        }
    }
    for role in missing {
        let sql = create_sql(target, role);
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(format!("creating role {role}"), e))?;
    }
    // The connecting user must be able to SET ROLE to each (superusers always can).
    if !superuser {
        for role in ALL {
            let member: bool = client
                .query_one("SELECT pg_has_role(current_user, $1, 'MEMBER')", &[&role])
                .await
                .map_err(|e| Error::from_pg("checking role membership", e))?
                .get(0);
            if !member {
                client
                    .batch_execute(&format!("GRANT {} TO CURRENT_USER", quote_ident(role)))
                    .await
                    .map_err(|e| Error::from_pg(format!("GRANT {role} TO CURRENT_USER"), e))?;
            }
        }
    }
    Ok(())
}

/// (superuser, CREATEROLE) of the connected user.
async fn attributes(client: &Client) -> Result<(bool, bool)> {
    let row = client
        .query_one(
            "SELECT rolsuper, rolcreaterole FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking the connected role", e))?;
    Ok((row.get(0), row.get(1)))
}

/// What a role a workload names may do, as the server says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoleAttributes {
    /// `rolsuper`.
    pub superuser: bool,
    /// `rolcanlogin`.
    pub login: bool,
}

/// The attributes of `role`, or `None` when it does not exist.
pub async fn attributes_of(client: &Client, role: &str) -> Result<Option<RoleAttributes>> {
    let row = client
        .query_opt(
            "SELECT rolsuper, rolcanlogin FROM pg_roles WHERE rolname = $1",
            &[&role],
        )
        .await
        .map_err(|e| Error::from_pg("reading the workload's role", e))?;
    Ok(row.map(|r| RoleAttributes {
        superuser: r.get(0),
        login: r.get(1),
    }))
}

/// Schemas whose tables the sampler may never be granted: the catalogs
/// (`pg_authid` holds password hashes) and the server's own.
pub fn is_system_schema(schema: &str) -> bool {
    schema.starts_with("pg_") || schema == "information_schema"
}

/// Make sure [`SAMPLER`] may read every table of `schemas` (USAGE on each
/// schema, SELECT on each table, view and foreign table). On the private
/// server, or with `--allow-ddl`, the missing grants are made; otherwise the
/// error lists the statements an administrator runs. System schemas are
/// never granted.
pub async fn grant_sampler(target: &Target, client: &Client, schemas: &[String]) -> Result<()> {
    let mut grants = Vec::new();
    for schema in schemas.iter().filter(|s| !is_system_schema(s)) {
        let row = client
            .query_one(
                "SELECT has_schema_privilege($2, n.oid, 'USAGE'), \
                        count(c.oid) FILTER (WHERE NOT has_table_privilege($2, c.oid, 'SELECT')) \
                 FROM pg_namespace n \
                 LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                 WHERE n.nspname = $1 GROUP BY n.oid",
                &[schema, &SAMPLER],
            )
            .await
            .map_err(|e| Error::from_pg(format!("checking {SAMPLER}'s grants"), e))?;
        let (usage, unreadable): (bool, i64) = (row.get(0), row.get(1));
        let name = quote_ident(schema);
        if !usage {
            grants.push(format!("GRANT USAGE ON SCHEMA {name} TO {SAMPLER}"));
        }
        if unreadable > 0 {
            grants.push(format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA {name} TO {SAMPLER}"
            ));
        }
    }
    if grants.is_empty() {
        return Ok(());
    }
    if !target.ddl_allowed() {
        return Err(Error::MissingPrivilege {
            privilege: format!(
                "SELECT for {SAMPLER} (tenant discovery and sampling run as it) on the workload's schemas"
            ),
            fix: format!(
                "pass --allow-ddl to let crmbench grant it, or have an administrator run: {}",
                grants.join("; ")
            ),
        });
    }
    for sql in &grants {
        client
            .batch_execute(sql)
            .await
            .map_err(|e| Error::from_pg(sql.clone(), e))?;
    }
    Ok(())
}
