//! `rehearsal.json`: what a rehearsal measured, the contract between
//! `rehearse` and the report. Times are seconds from the start of the
//! workload's measured window, so statement spans line up with the timeline.

use serde::{Deserialize, Serialize};

use super::fingerprint::Difference;
use super::input::ApplyAs;
use super::locks::LockMode;
use super::rules::Finding;
use crate::compare::QueryRow;
use crate::compare::verdict::Verdict;
use crate::runfolder::RunFile;

/// Version of `rehearsal.json` this crmbench writes.
pub const FORMAT_VERSION: u32 = 1;

/// A rehearsal's record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rehearsal {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// crmbench version that wrote it.
    pub crmbench_version: String,
    /// The migration as given.
    pub migration: String,
    /// How its statements were sent.
    pub apply_as: ApplyAs,
    /// The rollback used, if any.
    pub rollback_file: Option<String>,
    /// Static findings, with what was measured for their statement.
    pub findings: Vec<Finding>,
    /// Each unit sent (a statement, or a whole file under `--apply-as file`).
    pub statements: Vec<StatementRecord>,
    /// Set when the migration failed: what, where, and how to clean up.
    pub failure: Option<Failure>,
    /// The workload replayed during the migration, when one was given.
    pub workload: Option<WorkloadRecord>,
    /// The rollback check, when a rollback was given.
    pub rollback: Option<RollbackCheck>,
    /// The paired run of the before clone against the migrated clone.
    #[serde(default)]
    pub after_vs_before: Option<AfterVsBefore>,
    /// WAL, row counts and validation queries on a quiesced clone.
    #[serde(default)]
    pub data: Option<DataChecks>,
}

impl RunFile for Rehearsal {
    const FILE: &'static str = "rehearsal.json";
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench rehearse";
}

/// One unit of the migration, applied.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct StatementRecord {
    /// Migration file.
    pub file: String,
    /// Line the unit starts on.
    pub line: usize,
    /// Its first line.
    pub text: String,
    /// Start, seconds from the window's start (negative: before it).
    pub start_s: f64,
    /// End, same clock.
    pub end_s: f64,
    /// Duration, ms.
    pub duration_ms: f64,
    /// The table locks the statement itself takes, as its parse tree says
    /// (a statement too quick to be sampled still shows what it took).
    pub takes: Vec<HeldLock>,
    /// Table locks its session was seen holding (granted) while it ran,
    /// strongest per table — in a transaction, also those taken before it.
    pub locks: Vec<HeldLock>,
    /// Time it was seen waiting for a lock, ms (sampled).
    pub lock_wait_ms: f64,
    /// Sessions it waited behind.
    pub waited_behind: Vec<Session>,
    /// Workload statements it blocked (distinct backend and statement start).
    pub blocked: u64,
    /// The longest of those waits seen, ms.
    pub longest_block_ms: f64,
    /// Up to five of the blocked statements' text.
    pub blocked_queries: Vec<String>,
    /// The server's error, if it failed.
    pub error: Option<StatementError>,
}

/// A table lock held.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HeldLock {
    /// `schema.table`.
    pub table: String,
    /// The mode.
    pub mode: LockMode,
}

/// Another session, as `pg_stat_activity` showed it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    /// Backend pid.
    pub pid: i32,
    /// `application_name`.
    pub application: String,
    /// Its current (or last) statement, shortened.
    pub query: String,
}

/// A statement's error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementError {
    /// SQLSTATE, e.g. `25001`, `55P03`, `40P01`.
    pub sqlstate: String,
    /// The server's message.
    pub message: String,
}

/// Why the migration stopped, and what it left behind.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Failure {
    /// Index into `statements`.
    pub statement: usize,
    /// The error.
    pub error: StatementError,
    /// What the SQLSTATE means for a deployment.
    pub meaning: String,
    /// INVALID indexes a failed `CREATE INDEX CONCURRENTLY` left, with the
    /// statement that removes each.
    pub cleanup: Vec<String>,
}

/// The workload during the migration.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct WorkloadRecord {
    /// Open-loop rate, transactions/s (None: closed loop).
    pub rate: Option<f64>,
    /// Connections.
    pub clients: usize,
    /// The run's results file in the run folder.
    pub results_file: String,
    /// All queries together, per interval.
    pub timeline: Vec<TimelinePoint>,
    /// Per query: latency before, during and after the migration.
    pub phases: Vec<PhaseLatency>,
    /// The highest latency any transaction had, ms.
    pub max_latency_ms: f64,
    /// Failed transactions by SQLSTATE.
    pub errors: std::collections::BTreeMap<String, u64>,
}

/// One interval of the timeline.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TimelinePoint {
    /// Interval end, seconds from the window's start.
    pub t: f64,
    /// Successful transactions per second.
    pub tps: f64,
    /// Failed transactions in the interval.
    pub errors: u64,
    /// The highest per-query median in the interval, ms.
    pub p50_ms: f64,
    /// The highest per-query p99 in the interval, ms.
    pub p99_ms: f64,
}

/// A query's latency in the three phases (the highest interval p99 of each
/// phase, ms; None when the phase had no interval with that query).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseLatency {
    /// Query name.
    pub query: String,
    /// Before the first statement started.
    pub before_p99_ms: Option<f64>,
    /// While statements ran.
    pub during_p99_ms: Option<f64>,
    /// After the last one ended.
    pub after_p99_ms: Option<f64>,
}

/// The rollback, applied and checked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RollbackCheck {
    /// Its statements, applied.
    pub statements: Vec<StatementRecord>,
    /// Its failure, if it failed.
    pub failure: Option<StatementError>,
    /// Whether the schema after the rollback is identical to before.
    pub identical: bool,
    /// What differs.
    pub difference: Difference,
    /// The workload while the rollback was applied, when one was given.
    #[serde(default)]
    pub workload: Option<WorkloadRecord>,
}

/// The state after: the before clone against the migrated clone, paired,
/// judged like `compare`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AfterVsBefore {
    /// The paired run's results file.
    pub results_file: String,
    /// Its measured seconds.
    pub seconds: f64,
    /// Its connections per side.
    pub clients: usize,
    /// The judged percentile.
    pub metric: String,
    /// The threshold on the ratio.
    pub threshold: f64,
    /// Confidence of each interval.
    pub level: f64,
    /// `compare`'s verdict.
    pub verdict: Verdict,
    /// Why it failed or could not decide.
    pub reasons: Vec<String>,
    /// Per query: after/before ratio with its interval and verdict.
    pub queries: Vec<QueryRow>,
}

/// The checks on a quiesced clone.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct DataChecks {
    /// The server's `wal_level`.
    pub wal_level: String,
    /// Whether WAL figures compare with production (false under `minimal`).
    pub wal_comparable: bool,
    /// The migration's units, applied with no load.
    pub statements: Vec<WalRecord>,
    /// The error that stopped them, if any.
    pub failure: Option<StatementError>,
    /// Rows of each table the migration names.
    pub row_counts: Vec<RowCount>,
    /// The `--validate` queries.
    pub validations: Vec<Validation>,
}

/// One unit applied on the quiesced clone.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WalRecord {
    /// Migration file.
    pub file: String,
    /// Line it starts on.
    pub line: usize,
    /// Its duration with no load, ms.
    pub duration_ms: f64,
    /// WAL the server wrote meanwhile, bytes.
    pub wal_bytes: i64,
}

/// A table's rows (None: absent at that point).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RowCount {
    /// The table as the migration names it.
    pub table: String,
    /// Before the migration.
    pub before: Option<i64>,
    /// After it.
    pub after: Option<i64>,
    /// After the rollback.
    pub after_rollback: Option<i64>,
}

/// One validation query's answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Validation {
    /// Its file.
    pub file: String,
    /// Its line.
    pub line: usize,
    /// The query.
    pub query: String,
    /// After the migration.
    pub after_migration: ValidationResult,
    /// After the rollback (None: no rollback ran).
    pub after_rollback: Option<ValidationResult>,
}

/// One answer of a validation query.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ValidationResult {
    /// Exactly `true`.
    pub passed: bool,
    /// What it returned, or its error.
    pub detail: String,
}

impl Rehearsal {
    /// 1 when the migration failed, the rollback check found a difference
    /// (or the rollback failed), the migrated clone regressed against the
    /// before clone, or a validation query did not return true; else 0.
    pub fn exit_code(&self) -> u8 {
        let rollback_bad = self
            .rollback
            .as_ref()
            .is_some_and(|r| !r.identical || r.failure.is_some());
        let regressed = self
            .after_vs_before
            .as_ref()
            .is_some_and(|a| a.verdict == Verdict::Fail);
        let invalid = self.data.as_ref().is_some_and(|d| {
            d.validations.iter().any(|v| {
                !v.after_migration.passed || v.after_rollback.as_ref().is_some_and(|r| !r.passed)
            })
        });
        if self.failure.is_some() || rollback_bad || regressed || invalid {
            1
        } else {
            0
        }
    }
}
