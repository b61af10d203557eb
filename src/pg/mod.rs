//! PostgreSQL plumbing shared by every stage: finding binaries, the private
//! server and the `pg` commands that manage it, targets and connections
//! (connection strings parsed as libpq does), roles, settings, the marker
//! on every database crmbench creates, and password redaction.

pub mod binaries;
pub mod catalog;
pub mod conninfo;
pub mod manage;
pub mod marker;
pub mod pgpass;
pub mod pooler;
pub mod private;
pub mod privileges;
pub mod redact;
pub mod replicas;
pub mod roles;
pub mod settings;
pub mod target;
pub mod tls;

pub use target::{ConnSpec, SCHEMA, Target, TargetOptions, connect, quote_ident, quote_literal};

use crate::error::{Error, Result};

/// How crmbench's marker on a database starts (all an older version wrote);
/// see [`marker`] for the kinds.
pub const DATABASE_MARKER: &str = marker::PREFIX;

/// Advisory lock key (in database `postgres`) held while roles and the
/// benchmark database are made ("crmb" and 1).
const BOOTSTRAP_LOCK: i64 = 0x6372_6d62_0000_0001;

/// On the private server: make sure the roles and the benchmark database
/// exist, creating the database (marked a dataset) when missing. Only the
/// commands that make a dataset call it (`generate`, `schema create`, `pg
/// start`); the others call [`bootstrap_roles`] and refuse a database that
/// is not there. Idempotent.
pub async fn bootstrap_private(target: &Target) -> Result<()> {
    bootstrap(target, true).await
}

/// On the private server: make sure the roles exist (a missing database is
/// not created: connecting to it fails with [`Error::NoSuchDatabase`]).
pub async fn bootstrap_roles(target: &Target) -> Result<()> {
    bootstrap(target, false).await
}

async fn bootstrap(target: &Target, create_database: bool) -> Result<()> {
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
    if create_database {
        create_dataset(&client, db).await?;
    }
    set_search_paths(&client).await
}

/// Create database `db`, marked a dataset, unless it exists.
async fn create_dataset(client: &tokio_postgres::Client, db: &str) -> Result<()> {
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
        marker::mark(client, db, marker::DatabaseKind::Dataset, "").await?;
    }
    Ok(())
}

async fn set_search_paths(client: &tokio_postgres::Client) -> Result<()> {
    // psql users of `pg url` find the CRM tables without qualifying them.
    for role in [private::SUPERUSER, roles::OWNER, roles::APP, roles::SAMPLER] {
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
