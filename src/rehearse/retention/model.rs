//! What `rehearse --retention` records (`retention.json` in the run
//! folder): the two ways side by side, the conversion's own rehearsal, its
//! checks, and the job.

use serde::{Deserialize, Serialize};

use super::job::JobKind;
use crate::rehearse::model::{StatementRecord, WorkloadRecord};
use crate::runfolder::RunFile;

/// Version of `retention.json`.
pub const FORMAT_VERSION: u32 = 1;

/// The record.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RetentionRecord {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// `schema.table`.
    pub table: String,
    /// The partition column.
    pub column: String,
    /// Months kept.
    pub keep_months: u32,
    /// Rows before this date are expired (a month boundary).
    pub cutoff: String,
    /// Heap pages per batch (probed).
    pub pages_per_batch: u64,
    /// The server's `wal_level` (figures under `minimal` do not compare).
    pub wal_level: String,
    /// Rows in the table, expired rows among them (on the quiesced clone).
    pub rows: i64,
    /// Expired rows.
    pub expired_rows: i64,
    /// (a) the batched DELETE and VACUUM.
    pub delete: Way,
    /// (b) the expired partitions detached and dropped (after the conversion).
    pub drop: Way,
    /// The conversion itself, under load.
    pub conversion: Way,
    /// One run of the retention job under load (its set-up first).
    pub job_run: Way,
    /// Which job was written.
    pub job: JobKind,
    /// The conversion's checks.
    pub checks: Checks,
    /// The conversion's trade-offs.
    pub tradeoffs: Vec<String>,
    /// The SQL files written, by role.
    pub files: Vec<(String, String)>,
    /// `job.sql`'s text, for the report (absent in records made before it).
    #[serde(default)]
    pub job_sql: String,
}

/// One way (or step), measured.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Way {
    /// Wall time of its statements under load, ms.
    pub duration_ms: f64,
    /// WAL its statements wrote on the quiesced clone (no load), bytes.
    pub wal_bytes: Option<i64>,
    /// The table's total size (heap, indexes, TOAST; all partitions) after, bytes.
    pub size_after_bytes: i64,
    /// Dead tuples left in the table after it (vacuum work left).
    pub dead_tuples_after: i64,
    /// The workload while it ran: p50 (median of the intervals' p50), p99
    /// (highest interval p99) and max latency, ms; failed transactions.
    pub during: Option<During>,
    /// Its statements, with locks and blocked sessions.
    pub statements: Vec<StatementRecord>,
    /// The error that stopped it.
    pub failure: Option<String>,
    /// The load's record (timeline).
    pub workload: Option<WorkloadRecord>,
}

/// The workload's latency while a way ran.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct During {
    /// Median of the intervals' p50, ms.
    pub p50_ms: f64,
    /// Highest interval p99, ms.
    pub p99_ms: f64,
    /// Highest latency of the whole window, ms.
    pub max_ms: f64,
    /// Failed transactions in the window.
    pub errors: u64,
}

/// The conversion proven.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Checks {
    /// Rows of `old EXCEPT ALL new` after the conversion under load.
    pub old_except_new: i64,
    /// Rows of `new EXCEPT ALL old` then (rows written after the swap).
    pub new_except_old: i64,
    /// Tenants whose counts and checksums agree (quiesced) / all tenants.
    pub tenants_agree: (i64, i64),
    /// Catalog audit findings on the converted table that the original did not have.
    pub audit_new_findings: Vec<String>,
    /// The rollback restored the schema fingerprint.
    pub rollback_identical: bool,
    /// What differed, when it did not.
    pub rollback_difference: String,
    /// Rows the dropped partitions held / rows before the cutoff (quiesced).
    pub dropped_rows: (i64, i64),
    /// Rows before the cutoff left after the drop (quiesced): 0.
    pub expired_left: i64,
}

impl Checks {
    /// Whether every check passed.
    pub fn passed(&self) -> bool {
        self.old_except_new == 0
            && self.tenants_agree.0 == self.tenants_agree.1
            && self.audit_new_findings.is_empty()
            && self.rollback_identical
            && self.dropped_rows.0 == self.dropped_rows.1
            && self.expired_left == 0
    }
}

impl RunFile for RetentionRecord {
    const FILE: &'static str = "retention.json";
    const FORMAT_VERSION: u32 = FORMAT_VERSION;
    const MADE_BY: &'static str = "crmbench rehearse --retention";
}
