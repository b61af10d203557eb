//! crmbench's roles. Roles are server-wide, so they are created once per server.
//!
//! - [`OWNER`] owns the `crm` schema and every table in it. It is not a
//!   superuser and has no BYPASSRLS, so forced row-level security applies to it.
//! - [`APP`] is the application: LOGIN, not the owner, no BYPASSRLS, with the
//!   grants a CRM app needs. Every workload runs as it.
//! - The private server's superuser (`crmbench_admin`) loads data (COPY is
//!   refused under RLS) and runs DDL.

use tokio_postgres::Client;

use super::target::{Target, quote_ident};
use crate::error::{Error, Result};

/// Owner of the CRM schema (NOLOGIN; reached with `SET ROLE`).
pub const OWNER: &str = "crmbench_owner";
/// The application role every workload runs as.
pub const APP: &str = "crmbench_app";

/// Roles that do not exist yet, of [`OWNER`] and [`APP`].
pub async fn missing(client: &Client) -> Result<Vec<&'static str>> {
    let mut out = Vec::new();
    for role in [OWNER, APP] {
        let row = client
            .query_one("SELECT count(*) FROM pg_roles WHERE rolname = $1", &[&role])
            .await
            .map_err(|e| Error::from_pg("checking roles", e))?;
        if row.get::<_, i64>(0) == 0 {
            out.push(role);
        }
    }
    Ok(out)
}

/// Create the missing roles. On an external server this needs `--allow-ddl`
/// and CREATEROLE; both are checked first with a clear error.
pub async fn ensure(target: &Target, client: &Client) -> Result<()> {
    let missing = missing(client).await?;
    if !missing.is_empty() {
        target.require_ddl(&format!("creating roles {}", missing.join(", ")))?;
        let row = client
            .query_one(
                "SELECT rolsuper OR rolcreaterole FROM pg_roles WHERE rolname = current_user",
                &[],
            )
            .await
            .map_err(|e| Error::from_pg("checking CREATEROLE", e))?;
        if !row.get::<_, bool>(0) {
            return Err(Error::MissingPrivilege {
                privilege: format!("CREATEROLE (to create {})", missing.join(", ")),
                fix: format!(
                    "ALTER ROLE <you> CREATEROLE, or have an administrator run: \
                     CREATE ROLE {OWNER} NOLOGIN; CREATE ROLE {APP} LOGIN PASSWORD '…'; \
                     GRANT {OWNER}, {APP} TO <you>"
                ),
            });
        }
    }
    for role in missing {
        let attrs = if role == OWNER { "NOLOGIN" } else { "LOGIN" };
        let sql = format!(
            "CREATE ROLE {} {attrs} NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE",
            quote_ident(role)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(format!("creating role {role}"), e))?;
    }
    // The connecting user must be able to SET ROLE to both (superusers always can).
    let row = client
        .query_one(
            "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking superuser", e))?;
    if !row.get::<_, bool>(0) {
        for role in [OWNER, APP] {
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
