//! PostgreSQL plumbing shared by every stage: finding binaries, the private
//! server and the `pg` commands that manage it, targets and connections
//! (connection strings parsed as libpq does), roles, settings, and password
//! redaction.

pub mod binaries;
pub mod conninfo;
pub mod manage;
pub mod private;
pub mod redact;
pub mod roles;
pub mod settings;
pub mod target;

pub use target::{ConnSpec, SCHEMA, Target, TargetOptions, connect, quote_ident, quote_literal};

use crate::error::{Error, Result};

/// Comment that marks a database as created by crmbench.
pub const DATABASE_MARKER: &str = "created by crmbench";

/// Advisory lock key (in database `postgres`) held while roles and the
/// benchmark database are made ("crmb" and 1).
const BOOTSTRAP_LOCK: i64 = 0x6372_6d62_0000_0001;

/// On the private server: make sure the roles and the benchmark database exist.
/// Idempotent; runs after every start.
pub async fn bootstrap_private(target: &Target) -> Result<()> {
    let Target::Private { .. } = target else {
        return Ok(());
    };
    let client = connect(&target.admin_to("postgres")).await?;
    // Two starts at once (two `pg start`, a `run` beside a `generate`) would
    // race on CREATE ROLE and CREATE DATABASE: one at a time. The session's
    // end releases the lock.
    client
        .execute("SELECT pg_advisory_lock($1)", &[&BOOTSTRAP_LOCK])
        .await
        .map_err(|e| Error::from_pg("waiting for another crmbench's bootstrap", e))?;
    roles::ensure(target, &client).await?;
    let db = target.database();
    let exists: i64 = client
        .query_one(
            "SELECT count(*) FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .map_err(|e| Error::from_pg("checking databases", e))?
        .get(0);
    if exists == 0 {
        let sql = format!("CREATE DATABASE {}", quote_ident(db));
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(sql.clone(), e))?;
        let sql = format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(db),
            quote_literal(DATABASE_MARKER)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(sql.clone(), e))?;
    }
    // psql users of `pg url` find the CRM tables without qualifying them.
    for role in [private::SUPERUSER, roles::OWNER, roles::APP] {
        let already: i64 = client
            .query_one(
                "SELECT count(*) FROM pg_db_role_setting s JOIN pg_roles r ON r.oid = s.setrole \
                 WHERE s.setdatabase = 0 AND r.rolname = $1 \
                   AND s.setconfig @> ARRAY['search_path=crm, public']",
                &[&role],
            )
            .await
            .map_err(|e| Error::from_pg("reading role settings", e))?
            .get(0);
        if already > 0 {
            continue;
        }
        let sql = format!(
            "ALTER ROLE {} SET search_path = {SCHEMA}, public",
            quote_ident(role)
        );
        client
            .batch_execute(&sql)
            .await
            .map_err(|e| Error::from_pg(sql.clone(), e))?;
    }
    Ok(())
}
