//! What the sampler needs before it runs a workload's tenants and sample
//! queries: the role [`roles::SAMPLER`] and SELECT on the workload's schemas
//! (the schemas of its `sample` tables, and crmbench's `crm`). On the private
//! server, or with `--allow-ddl`, crmbench creates and grants what is
//! missing; on a `--database-url` server without it, the error lists the
//! statements an administrator runs. System schemas are never granted.

use tokio_postgres::Client;

use super::{Param, Workload, quoted_name};
use crate::error::{Error, Result};
use crate::pg::{SCHEMA, Target, roles};

/// Make sure the sampler exists and may read the workload's schemas.
pub async fn ready(target: &Target, admin: &Client, workload: &Workload) -> Result<()> {
    let schemas = workload_schemas(admin, workload).await?;
    if target.ddl_allowed() {
        roles::ensure(target, admin).await?;
    } else if !roles::exists(admin, roles::SAMPLER).await? {
        let sampler = roles::SAMPLER;
        let grants: Vec<String> = schemas
            .iter()
            .filter(|s| !roles::is_system_schema(s))
            .map(|s| {
                let s = crate::pg::quote_ident(s);
                format!(
                    "GRANT USAGE ON SCHEMA {s} TO {sampler}; \
                     GRANT SELECT ON ALL TABLES IN SCHEMA {s} TO {sampler}"
                )
            })
            .collect();
        return Err(Error::MissingPrivilege {
            privilege: format!(
                "role {sampler} (tenant discovery and sampling run as it) does not exist"
            ),
            fix: format!(
                "pass --allow-ddl to let crmbench create it, or have an administrator run: \
                 CREATE ROLE {sampler} NOLOGIN NOSUPERUSER BYPASSRLS; {}; GRANT {sampler} TO <you>",
                grants.join("; ")
            ),
        });
    }
    roles::grant_sampler(target, admin, &schemas).await
}

/// The schemas the sampler reads: those of the workload's `sample` tables
/// (as the sampler's search path resolves them) and `crm` when it exists
/// (the tenants query is SQL crmbench does not parse).
async fn workload_schemas(admin: &Client, workload: &Workload) -> Result<Vec<String>> {
    let mut schemas: Vec<String> = Vec::new();
    let crm: bool = admin
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&SCHEMA],
        )
        .await
        .map_err(|e| Error::from_pg("looking for the crm schema", e))?
        .get(0);
    if crm {
        schemas.push(SCHEMA.to_string());
    }
    let tables = workload
        .queries
        .iter()
        .flat_map(|q| &q.statements)
        .flat_map(|s| &s.params)
        .filter_map(|p| match p {
            Param::Sample { table, .. } => quoted_name(table),
            _ => None,
        });
    for table in tables {
        // A table that does not resolve fails when it is sampled, by name.
        if let Some(schema) = crate::pg::catalog::schema_of(admin, &table).await? {
            if !schemas.contains(&schema) {
                schemas.push(schema);
            }
        }
    }
    Ok(schemas)
}
