//! Leases on working copies, and `schema gc`, which drops the copies whose
//! owner is gone. A command that makes a database for itself (`run --fresh`,
//! `advise --verify`, `--no-hypopg`, remedy measurement) takes the copy's
//! lease before creating it and holds it while it works: a session-level
//! advisory lock keyed to the copy's name, on a connection to the server's
//! `postgres` database (advisory locks are per database, so the owner and
//! `gc` must meet in the same one). A killed owner's connection closes and
//! the server frees its lock, whatever machine it ran on — no pids. `gc`
//! (also run before every clone) takes the lock of each working copy it
//! finds by marker: got it, the owner is gone and the copy is dropped; held,
//! the copy is in use and left alone.

use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::marker::{self, DatabaseKind};
use crate::pg::{self, Target, quote_ident};

/// The database every lease is taken in (and `gc` looks in).
pub const LEASE_DATABASE: &str = "postgres";

/// First key of every lease's advisory lock ("crmb"): its second key is
/// [`lock_key`] of the copy's name.
pub const LOCK_CLASS: i32 = 0x6372_6d62;

/// The second key of the lease of database `name` (32-bit FNV-1a of the
/// name; two copies that collide only keep each other from being
/// collected, never get dropped).
pub fn lock_key(name: &str) -> i32 {
    let hash = name.bytes().fold(0x811c_9dc5_u32, |h, b| {
        (h ^ u32::from(b)).wrapping_mul(0x0100_0193)
    });
    i32::from_ne_bytes(hash.to_ne_bytes())
}

/// The held lease of one working copy: while it lives (its connection
/// open), `gc` leaves the copy alone.
#[derive(Debug)]
pub struct Lease {
    client: Client,
    name: String,
}

impl Lease {
    /// Take the lease of database `name` on `server`'s server; `None` when
    /// someone else holds it.
    pub async fn take(server: &Target, name: &str) -> Result<Option<Lease>> {
        let client = pg::connect(&server.admin_to(LEASE_DATABASE)).await?;
        Ok(try_lock(&client, name).await?.then(|| Lease {
            client,
            name: name.to_string(),
        }))
    }

    /// The lease's own connection (to [`LEASE_DATABASE`]), fit for creating
    /// and dropping the copy.
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Give the lease up (closing its connection would too).
    pub async fn release(self) -> Result<()> {
        unlock(&self.client, &self.name).await
    }
}

async fn try_lock(client: &Client, name: &str) -> Result<bool> {
    Ok(client
        .query_one(
            "SELECT pg_try_advisory_lock($1, $2)",
            &[&LOCK_CLASS, &lock_key(name)],
        )
        .await
        .map_err(|e| Error::from_pg(format!("taking the lease of database {name}"), e))?
        .get(0))
}

async fn unlock(client: &Client, name: &str) -> Result<()> {
    client
        .query_one(
            "SELECT pg_advisory_unlock($1, $2)",
            &[&LOCK_CLASS, &lock_key(name)],
        )
        .await
        .map_err(|e| Error::from_pg(format!("releasing the lease of database {name}"), e))?;
    Ok(())
}

/// What `schema gc` found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Working copies whose owner was gone: dropped.
    pub dropped: Vec<String>,
    /// Working copies whose owner still works: left alone.
    pub in_use: Vec<String>,
    /// Working copies that could not be dropped, with the reason.
    pub failed: Vec<(String, String)>,
    /// Clones made by `schema clone`: kept until `schema drop-clone`.
    pub clones: Vec<String>,
}

impl GcReport {
    /// What `schema gc` prints.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for name in &self.dropped {
            let _ = writeln!(
                out,
                "crmbench: dropped {name} (a working copy whose owner is gone)"
            );
        }
        for name in &self.in_use {
            let _ = writeln!(
                out,
                "crmbench: {name} is in use by a running crmbench; left alone"
            );
        }
        for (name, why) in &self.failed {
            let _ = writeln!(out, "crmbench: could not drop {name}: {why}");
        }
        if !self.clones.is_empty() {
            let _ = writeln!(
                out,
                "crmbench: clones kept (drop with `crmbench schema drop-clone NAME`): {}",
                self.clones.join(", ")
            );
        }
        if self.dropped.is_empty() && self.in_use.is_empty() && self.failed.is_empty() {
            out.push_str("crmbench: no working copy left behind; nothing dropped\n");
        }
        out
    }
}

/// `schema gc`: drop every working copy on `server`'s server whose lease is
/// free; list the ones in use and the clones kept.
pub async fn gc(server: &Target) -> Result<GcReport> {
    let client = pg::connect(&server.admin_to(LEASE_DATABASE)).await?;
    let mut report = GcReport::default();
    for (name, kind) in marker::known(&client).await? {
        match kind {
            DatabaseKind::Working => {}
            DatabaseKind::Clone => {
                report.clones.push(name);
                continue;
            }
            _ => continue,
        }
        if !try_lock(&client, &name).await? {
            report.in_use.push(name);
            continue;
        }
        let dropped = drop_forced(&client, &name).await;
        unlock(&client, &name).await?;
        match dropped {
            Ok(()) => report.dropped.push(name),
            Err(e) => report.failed.push((name, e.to_string())),
        }
    }
    Ok(report)
}

/// [`gc`] before a command clones: what it drops is said on standard error,
/// and a failure only warns (cloning goes on).
pub async fn collect_before_cloning(server: &Target) {
    match gc(server).await {
        Ok(report) => {
            for name in &report.dropped {
                crate::console::err_line(format!(
                    "crmbench: dropped {name}, a working copy left by a crmbench that is gone"
                ));
            }
            for (name, why) in &report.failed {
                tracing::warn!("could not drop the leftover working copy {name}: {why}");
            }
        }
        Err(e) => tracing::warn!("looking for leftover working copies: {e}"),
    }
}

/// `DROP DATABASE … WITH (FORCE)`: for copies, whose sessions are crmbench's.
pub async fn drop_forced(client: &Client, name: &str) -> Result<()> {
    let sql = format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", quote_ident(name));
    client
        .batch_execute(&sql)
        .await
        .map_err(|e| Error::from_pg(sql.clone(), e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lock_keys_are_stable_and_spread() {
        // FNV-1a of "" is its offset basis; the key must not change between
        // versions (a newer gc must see an older owner's lock).
        assert_eq!(lock_key(""), 0x811c_9dc5_u32 as i32);
        assert_eq!(lock_key("a"), 0xe40c_292c_u32 as i32);
        assert_ne!(
            lock_key("crmbench_fresh_00000001"),
            lock_key("crmbench_fresh_00000002")
        );
    }
}
