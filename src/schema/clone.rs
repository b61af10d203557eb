//! Copies of the benchmark database, statistics included: clones kept for
//! the user (`schema clone`, dropped by `schema drop-clone`) and working
//! copies a command makes for itself ([`WorkingCopy`]: `run --fresh`,
//! `advise --verify`, …), held by a lease while in use and dropped at the
//! end — or by `schema gc` once their owner is gone. `CREATE DATABASE …
//! TEMPLATE … STRATEGY FILE_COPY` copies files instead of writing WAL (711
//! MB in 1.7 s on this kind of machine).

use std::time::Instant;

use serde::Serialize;
use tokio_postgres::Client;

use super::gc::{self, LEASE_DATABASE, Lease};
use crate::error::{Error, Result};
use crate::pg::marker::{self, DatabaseKind, Marked};
use crate::pg::{self, Target, quote_ident};

/// What a clone took.
#[derive(Debug, Clone, Serialize)]
pub struct CloneReport {
    /// Source database.
    pub from: String,
    /// New database.
    pub to: String,
    /// Size of the copy, bytes.
    pub bytes: i64,
    /// Wall-clock seconds.
    pub seconds: f64,
}

impl CloneReport {
    /// What `schema clone` prints.
    pub fn render(&self) -> String {
        format!(
            "crmbench: database {} cloned to {} ({:.0} MB in {:.1} s); use it with --database {}\n",
            self.from,
            self.to,
            self.bytes as f64 / 1e6,
            self.seconds,
            self.to
        )
    }
}

/// What `schema drop-clone` prints: whether database `name` was `dropped`.
pub fn render_drop(name: &str, dropped: bool) -> String {
    if dropped {
        format!("crmbench: database {name} dropped\n")
    } else {
        format!("crmbench: no database {name}; nothing dropped\n")
    }
}

/// Copy the target's database to `to`, a clone kept until `schema
/// drop-clone`. With `replace`, an existing `to` is dropped first, only if
/// it is a clone crmbench made.
pub async fn clone_database(target: &Target, to: &str, replace: bool) -> Result<CloneReport> {
    target.require_ddl(&format!("cloning database {} to {to}", target.database()))?;
    let from = target.database().to_string();
    if from == to {
        return Err(Error::Usage {
            message: format!("cannot clone database {from} onto itself"),
            fix: "pick another name with --to".into(),
        });
    }
    gc::collect_before_cloning(target).await;
    let client = pg::connect(&target.admin_to(LEASE_DATABASE)).await?;
    match marker::lookup(&client, to).await? {
        None => {}
        Some(Marked::Ours(DatabaseKind::Clone)) if replace => {
            drop_clone(target, to).await?;
        }
        Some(Marked::Ours(DatabaseKind::Clone)) => {
            return Err(Error::State {
                message: format!("database {to} already exists"),
                fix: "pass --replace to recreate it, or pick another name".into(),
            });
        }
        Some(Marked::Ours(kind)) => return Err(not_a_clone(to, kind, "replace")),
        Some(Marked::Foreign) => {
            return Err(Error::NotOurs {
                action: format!("replace database {to}"),
                reason: "it was not created by crmbench (no marker comment)".into(),
            });
        }
    }
    let started = Instant::now();
    copy(
        &client,
        &from,
        to,
        DatabaseKind::Clone,
        &format!("of {from}"),
    )
    .await?;
    let seconds = started.elapsed().as_secs_f64();
    let bytes: i64 = client
        .query_one("SELECT pg_database_size($1)", &[&to])
        .await
        .map_err(|e| Error::from_pg("sizing the clone", e))?
        .get(0);
    Ok(CloneReport {
        from,
        to: to.into(),
        bytes,
        seconds,
    })
}

/// `CREATE DATABASE to TEMPLATE from`, then mark it `kind`. A session
/// crmbench itself just closed can take a moment to leave the source: wait
/// up to 3 s for it before giving up.
async fn copy(client: &Client, from: &str, to: &str, kind: DatabaseKind, note: &str) -> Result<()> {
    let sql = format!(
        "CREATE DATABASE {} TEMPLATE {} STRATEGY FILE_COPY",
        quote_ident(to),
        quote_ident(from)
    );
    retry_while_in_use(client, &sql).await.map_err(|err| {
        if err.sqlstate() == Some("55006") {
            Error::State {
                message: format!("{err}"),
                fix: format!(
                    "PostgreSQL copies a database only while nobody is connected to it: close other \
                     sessions on {from} (a psql, a running benchmark) and retry"
                ),
            }
        } else {
            err
        }
    })?;
    marker::mark(client, to, kind, note).await
}

/// Run `sql` (a CREATE or DROP DATABASE), retrying for up to 3 s while the
/// database is still in use (SQLSTATE 55006).
pub(crate) async fn retry_while_in_use(client: &Client, sql: &str) -> Result<()> {
    let mut tries = 0;
    loop {
        match client.batch_execute(sql).await {
            Err(e) if tries < 15 && e.as_db_error().map(|d| d.code().code()) == Some("55006") => {
                tries += 1;
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            }
            other => return other.map_err(|e| Error::from_pg(sql.to_string(), e)),
        }
    }
}

/// `schema drop-clone`: drop database `db` only if it is a clone crmbench
/// made (or a working copy nobody holds); `false` when there is no such
/// database. A dataset is refused: `schema drop --database NAME` drops it.
pub async fn drop_clone(target: &Target, db: &str) -> Result<bool> {
    if db == target.database() {
        return Err(Error::State {
            message: format!("{db} is the benchmark database itself"),
            fix: "use `crmbench schema drop` to remove its schema".into(),
        });
    }
    let client = pg::connect(&target.admin_to(LEASE_DATABASE)).await?;
    match marker::lookup(&client, db).await? {
        None => Ok(false),
        Some(Marked::Foreign) => Err(Error::NotOurs {
            action: format!("drop database {db}"),
            reason: "it was not created by crmbench (no marker comment)".into(),
        }),
        Some(Marked::Ours(DatabaseKind::Clone)) => {
            gc::drop_forced(&client, db).await?;
            Ok(true)
        }
        Some(Marked::Ours(DatabaseKind::Working)) => {
            let Some(lease) = Lease::take(target, db).await? else {
                return Err(Error::State {
                    message: format!("database {db} is in use by a running crmbench"),
                    fix: "let that command finish (or stop it: it drops its copies)".into(),
                });
            };
            let dropped = gc::drop_forced(lease.client(), db).await;
            lease.release().await?;
            dropped.map(|()| true)
        }
        Some(Marked::Ours(kind)) => Err(not_a_clone(db, kind, "drop")),
    }
}

/// The refusal to `action` a database of `kind` as if it were a clone.
fn not_a_clone(db: &str, kind: DatabaseKind, action: &str) -> Error {
    let what = match kind {
        DatabaseKind::Unrecorded => {
            "was made by an older crmbench, which did not record whether it is a clone".to_string()
        }
        kind => format!("is a {kind}, not a clone"),
    };
    Error::State {
        message: format!("refusing to {action} database {db}: it {what}"),
        fix: format!(
            "to drop it with its data, run `crmbench schema drop --database {db}` (drops its \
             schema, then the database)"
        ),
    }
}

/// What a working copy is for: its name's prefix and its marker's note.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// `run --fresh`.
    FreshRun,
    /// `advise --verify`: the state with the indexes kept so far.
    VerifyBase,
    /// `advise --verify`: the state plus the index under test.
    VerifyCandidate,
    /// `advise --no-hypopg`: real indexes for what-if costing.
    WhatIf,
    /// `advise --verify`: the remedies' migrations.
    Remedy,
    /// `rehearse`: the clone a migration is rehearsed on.
    Rehearse,
    /// `rehearse`: the clone left as before, for the paired comparison.
    RehearseBefore,
    /// `rehearse`: the quiesced clone of the data checks.
    RehearseQuiet,
}

impl Purpose {
    fn prefix(self) -> &'static str {
        match self {
            Purpose::FreshRun => "crmbench_fresh",
            Purpose::VerifyBase => "crmbench_verify_base",
            Purpose::VerifyCandidate => "crmbench_verify_cand",
            Purpose::WhatIf => "crmbench_whatif",
            Purpose::Remedy => "crmbench_remedy",
            Purpose::Rehearse => "crmbench_rehearse",
            Purpose::RehearseBefore => "crmbench_rehearse_before",
            Purpose::RehearseQuiet => "crmbench_rehearse_quiet",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            Purpose::FreshRun => "run --fresh",
            Purpose::VerifyBase => "advise --verify, kept state",
            Purpose::VerifyCandidate => "advise --verify, candidate index",
            Purpose::WhatIf => "advise --no-hypopg",
            Purpose::Remedy => "advise --verify, remedies",
            Purpose::Rehearse => "rehearse, the migrated copy",
            Purpose::RehearseBefore => "rehearse, the copy left as before",
            Purpose::RehearseQuiet => "rehearse, the quiesced copy of the data checks",
        }
    }
}

/// A copy of a database that a command works on and drops when done
/// ([`WorkingCopy::remove`]); its lease is held as long as the value lives,
/// so `schema gc` drops it only once the owner is gone.
#[derive(Debug)]
pub struct WorkingCopy {
    lease: Lease,
    /// The source, on its server: where the copy's target comes from.
    source: Target,
    name: String,
}

impl WorkingCopy {
    /// Copy `source`'s database to a new working copy for `purpose`, under
    /// a fresh name (`crmbench_fresh_…`, `crmbench_verify_base_…`, …) whose
    /// lease is taken before the database exists. Leftovers of owners that
    /// are gone are collected first.
    pub async fn create(source: &Target, purpose: Purpose) -> Result<WorkingCopy> {
        let from = source.database().to_string();
        source.require_ddl(&format!("copying database {from}"))?;
        gc::collect_before_cloning(source).await;
        let (name, lease) = free_name(source, purpose).await?;
        let note = format!("of {from} ({}); its owner drops it", purpose.describe());
        if let Err(e) = copy(lease.client(), &from, &name, DatabaseKind::Working, &note).await {
            // A copy made but left unmarked would be nobody's to drop.
            let _ = gc::drop_forced(lease.client(), &name).await;
            let _ = lease.release().await;
            return Err(e);
        }
        Ok(WorkingCopy {
            lease,
            source: source.on_database(&from),
            name,
        })
    }

    /// The copy's database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The same server, on the copy.
    pub fn target(&self) -> Target {
        self.source.on_database(&self.name)
    }

    /// Drop the copy, then give up its lease.
    pub async fn remove(self) -> Result<()> {
        let dropped = gc::drop_forced(self.lease.client(), &self.name).await;
        self.lease.release().await?;
        dropped
    }

    /// [`WorkingCopy::remove`], with a failure only warned about (`schema
    /// gc` drops the copy later): for cleanup after the work's own result.
    pub async fn remove_or_warn(self) {
        let name = self.name.clone();
        if let Err(e) = self.remove().await {
            tracing::warn!("could not drop the working copy {name}: {e}");
        }
    }
}

/// A name for a new copy for `purpose` that no database has, with its
/// lease taken.
async fn free_name(source: &Target, purpose: Purpose) -> Result<(String, Lease)> {
    for _ in 0..8 {
        let name = format!("{}_{:08x}", purpose.prefix(), rand::random::<u32>());
        let Some(lease) = Lease::take(source, &name).await? else {
            continue;
        };
        if marker::lookup(lease.client(), &name).await?.is_none() {
            return Ok((name, lease));
        }
        lease.release().await?;
    }
    Err(Error::State {
        message: format!(
            "found no free name for a working copy ({}_…)",
            purpose.prefix()
        ),
        fix: "run `crmbench schema gc` to drop leftover copies, then retry".into(),
    })
}
