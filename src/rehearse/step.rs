//! One step of a rehearsal, reusable on its own: a list of units applied
//! on their own connection to a database while the workload replays on it
//! (`lead` of load first, then the units, the load kept up for the rest of
//! the window), with the lock sampler watching. The migration is one step,
//! its rollback another (under the same load), and any change built from a
//! before/after pair of clones (e.g. partitioning) can be another.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI64, Ordering};
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use super::apply::{self, Unit};
use super::model::{Failure, StatementRecord};
use super::sampler;
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::Results;
use crate::run::{self, RunOptions};
use crate::workload::context::WorkloadContext;

/// The load a step replays: the prepared workload and the run's options
/// (their `duration` is the whole window; the units start after `lead`).
pub struct StepLoad<'a> {
    /// The workload, prepared on the database the step works on.
    pub ctx: &'a WorkloadContext,
    /// How it is driven.
    pub run: RunOptions,
    /// Load before the first unit is sent.
    pub lead: Duration,
}

/// What a step sets up on the connection that applies its units.
#[derive(Debug, Clone, Default)]
pub struct StepSession {
    /// `application_name` (how the sampler's blocked sessions name it).
    pub application: String,
    /// `lock_timeout` on that connection.
    pub lock_timeout: Option<Duration>,
    /// A transaction held open from just before the units (SQL, how long).
    pub hold: Option<(String, Duration)>,
}

/// What a step measured. Statement times are seconds from the start of
/// the load's measured window when there was load, else from the step's start.
#[derive(Debug)]
pub struct StepOutcome {
    /// Each unit applied, with the locks and blocked sessions sampled.
    pub statements: Vec<StatementRecord>,
    /// The first error, which stopped the step.
    pub failure: Option<Failure>,
    /// The load's results, when there was load.
    pub results: Option<Results>,
}

/// Apply `units` to `copy` under `load` (none: alone), as `session` says.
pub async fn apply_under_load(
    copy: &Target,
    units: &[Unit],
    session: &StepSession,
    load: Option<&StepLoad<'_>>,
) -> Result<StepOutcome> {
    let migrator = open_session(copy, session).await?;
    let pid: i32 = migrator
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .map_err(|e| Error::from_pg("starting the migration's connection", e))?
        .get(0);
    let clock = Instant::now();
    let wall = chrono::Utc::now();
    let current = Arc::new(AtomicI64::new(-1));
    let stop = Arc::new(AtomicBool::new(false));
    let sampling = tokio::spawn(sampler::sample(
        pg::connect(&copy.admin()).await?,
        pid,
        current.clone(),
        stop.clone(),
        clock,
    ));
    let migrate = async {
        if let Some((sql, hold)) = &session.hold {
            start_hold(copy, sql, *hold).await?;
        }
        Ok::<_, Error>(apply::apply(&migrator, units, &current, clock).await)
    };
    let ((mut statements, failure), results) = match load {
        Some(load) => {
            let delayed = async {
                tokio::time::sleep(load.run.warmup + load.lead).await;
                migrate.await
            };
            let (outcome, applied) =
                tokio::join!(run::run_with(load.ctx, copy, &load.run), delayed);
            (applied?, Some(outcome?.results))
        }
        None => (migrate.await?, None),
    };
    stop.store(true, Ordering::Release);
    let samples = sampling.await.unwrap_or_default();
    sampler::fold(&samples, &mut statements);
    if let Some(results) = &results {
        shift(&mut statements, window_offset(results, wall));
    }
    Ok(StepOutcome {
        statements,
        failure,
        results,
    })
}

async fn open_session(copy: &Target, session: &StepSession) -> Result<Client> {
    let client = pg::connect(&copy.admin()).await?;
    let mut setup = format!(
        "SET application_name = {}",
        pg::quote_literal(&session.application)
    );
    if let Some(t) = session.lock_timeout {
        setup.push_str(&format!("; SET lock_timeout = '{}ms'", t.as_millis()));
    }
    client
        .batch_execute(&setup)
        .await
        .map_err(|e| Error::from_pg("starting the migration's connection", e))?;
    Ok(client)
}

/// Open a transaction running `sql` on its own connection and keep it open
/// for `hold`, in the background; returns once `sql` has run (its locks
/// are taken).
async fn start_hold(copy: &Target, sql: &str, hold: Duration) -> Result<()> {
    let client = pg::connect(&copy.admin()).await?;
    client
        .batch_execute(&format!(
            "SET application_name = 'crmbench rehearse: held transaction'; BEGIN; {sql}"
        ))
        .await
        .map_err(|e| Error::from_pg("starting the held transaction (--hold)", e))?;
    tokio::spawn(async move {
        tokio::time::sleep(hold).await;
        let _ = client.batch_execute("COMMIT").await;
    });
    Ok(())
}

/// Seconds from the step's clock start to the window's start.
fn window_offset(results: &Results, wall: chrono::DateTime<chrono::Utc>) -> f64 {
    chrono::DateTime::parse_from_rfc3339(&results.started_at)
        .map(|s| {
            (s.with_timezone(&chrono::Utc) - wall)
                .num_microseconds()
                .unwrap_or(0) as f64
                / 1e6
        })
        .unwrap_or(0.0)
}

fn shift(statements: &mut [StatementRecord], offset: f64) {
    for s in statements {
        s.start_s -= offset;
        s.end_s -= offset;
    }
}
