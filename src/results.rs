//! The contract between stages: `results.json` as typed structs with a
//! `format_version`. `run` writes it; `report`, `compare` and `advise` read it
//! through the run folder's one versioned reader
//! ([`crate::runfolder::RunFolder::read`], [`crate::runfolder::read_file`]),
//! which names the file in every error.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::stats::Summary;

/// Version of the results format this crmbench writes (it also reads the one before).
pub const FORMAT_VERSION: u32 = 1;

/// A whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Results {
    /// Format version ([`FORMAT_VERSION`]).
    pub format_version: u32,
    /// crmbench version that wrote it.
    pub crmbench_version: String,
    /// `--seed`.
    pub seed: u64,
    /// Dataset scale and seed, when the database is a generated one.
    pub dataset: Option<DatasetInfo>,
    /// Which workload ran.
    pub workload: WorkloadInfo,
    /// Server version and the settings that matter.
    pub server: ServerInfo,
    /// How load was driven.
    pub driver: DriverInfo,
    /// Start of the measured window (RFC 3339).
    pub started_at: String,
    /// End of the measured window.
    pub ended_at: String,
    /// Seconds measured (warm-up excluded).
    pub measured_seconds: f64,
    /// Set when the run ended early (Ctrl-C, a fatal error): the reason.
    pub partial: Option<String>,
    /// Per query.
    pub queries: Vec<QueryResult>,
    /// Index use during the measured window (`pg_stat_user_indexes` delta).
    pub index_usage: Vec<IndexUsage>,
    /// Statement statistics during the window (`pg_stat_statements` delta).
    pub statements: Vec<StatementStats>,
    /// Set when the server's counters over the window could not be read, or
    /// the server reset them (`index_usage` and `statements` are then
    /// empty): the reason.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stats_missing: Option<String>,
    /// Failed attempts of clients to reconnect while the server was away
    /// (restarting, recovering after a crash), by SQLSTATE or crmbench code;
    /// the transactions the outage failed are counted per query.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub reconnect_errors: BTreeMap<String, u64>,
    /// Read routing to replicas: which queries they served, stale reads of
    /// own writes, replay lag over time (absent without replicas).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replication: Option<crate::run::replicas::ReplicationInfo>,
    /// A sequential paired run (`run --until-decided`): its method, looks and
    /// decisions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sequential: Option<SequentialRecord>,
    /// This run was one worker's slice of a run over several machines
    /// (`run --worker K/N`): which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker: Option<crate::run::worker::WorkerRecord>,
    /// Made by `crmbench merge` from worker folders: which.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedFrom>,
    /// `run --trace-params N`: each client's first N transactions (query,
    /// tenant, drawn values), by client id.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub param_trace: BTreeMap<usize, Vec<String>>,
}

/// The worker folders a merged results.json was made from.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct MergedFrom {
    /// Workers merged (N).
    pub workers: usize,
    /// Their folders, in worker order.
    pub folders: Vec<String>,
    /// Worker whose server counters (index use, statements) the merged
    /// file carries: every worker's are server-wide over the same window,
    /// so adding them would count the load N times.
    pub server_counters_from: usize,
}

/// How a sequential paired run (`run --until-decided`) decided.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SequentialRecord {
    /// The method's name and reference.
    pub method: String,
    /// Threshold on the ratio (0.10 = 10%).
    pub threshold: f64,
    /// Gated percentile ("p50", "p95", "p99").
    pub metric: String,
    /// False-alarm rate of the whole family (all gated queries, all looks).
    pub alpha: f64,
    /// Intervals in the family (gated queries and their tenant classes).
    pub family: usize,
    /// `--min-duration`, seconds.
    pub min_seconds: f64,
    /// `--max-duration`, seconds.
    pub max_seconds: f64,
    /// `--look-every`, seconds.
    pub look_every_seconds: f64,
    /// Gated query names.
    pub gated: Vec<String>,
    /// Each look, in order.
    pub looks: Vec<Look>,
    /// "decided" (every gated query decided), "regression" (one gated query
    /// regressed: the gate fails whatever the rest show) or "max_duration".
    pub stopped: String,
}

/// One look of a sequential run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Look {
    /// Seconds into the window.
    pub t: f64,
    /// Critical value of this look's intervals.
    pub z: f64,
    /// Gated queries still undecided after it.
    pub undecided: usize,
    /// Per gated query: (name, lo, hi) of the gated metric's interval
    /// (null bounds, read back as NaN, when it had too few pairs for one).
    #[serde(deserialize_with = "nan::intervals")]
    pub intervals: Vec<(String, f64, f64)>,
}

/// Reading back what serde_json writes for a NaN (null): an interval without
/// enough pairs has NaN bounds, and a run file that says so must still load.
mod nan {
    use serde::{Deserialize, Deserializer};

    /// An f64 that may have been written as null.
    pub fn f64<'de, D: Deserializer<'de>>(d: D) -> Result<f64, D::Error> {
        Ok(Option::<f64>::deserialize(d)?.unwrap_or(f64::NAN))
    }

    /// (name, lo, hi) triples whose bounds may have been written as null.
    #[allow(clippy::type_complexity)]
    pub fn intervals<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<(String, f64, f64)>, D::Error> {
        let read: Vec<(String, Option<f64>, Option<f64>)> = Vec::deserialize(d)?;
        Ok(read
            .into_iter()
            .map(|(n, lo, hi)| (n, lo.unwrap_or(f64::NAN), hi.unwrap_or(f64::NAN)))
            .collect())
    }
}

/// The generated dataset, from `crm.crmbench_meta`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DatasetInfo {
    /// Generator seed.
    pub seed: Option<i64>,
    /// Generator scale.
    pub scale: Option<f64>,
}

/// The workload file.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WorkloadInfo {
    /// Its `name`.
    pub name: String,
    /// Where it was read from.
    pub path: String,
    /// FNV-1a of its bytes.
    pub hash: String,
}

/// The server.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ServerInfo {
    /// `server_version`.
    pub version: String,
    /// Settings that matter (fsync, synchronous_commit, shared_buffers, jit, …).
    pub settings: BTreeMap<String, String>,
    /// Target, password redacted.
    pub target: String,
    /// Candidate target of a paired run, password redacted.
    pub candidate: Option<String>,
}

/// How load was driven.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DriverInfo {
    /// Connections (per side).
    pub clients: usize,
    /// Threads, each with its own runtime and connections.
    pub threads: usize,
    /// Open-loop target rate (transactions/s), or `None` for closed loop.
    pub rate: Option<f64>,
    /// `prepared` or `simple`.
    pub protocol: String,
    /// Warm-up seconds (excluded).
    pub warmup_seconds: f64,
    /// Per-interval series period, seconds.
    pub interval_seconds: f64,
    /// Whether baseline and candidate ran paired.
    pub paired: bool,
    /// The pooler the baseline clients went through (password redacted),
    /// when they did not connect to the server directly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pooler: Option<String>,
}

/// One query's figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct QueryResult {
    /// Query name.
    pub name: String,
    /// `read` or `write`.
    pub kind: String,
    /// Weight in the workload.
    pub weight: u32,
    /// Whole-transaction latency on the baseline (the only side when unpaired).
    pub baseline: SideStats,
    /// Whole-transaction latency on the candidate (paired runs).
    pub candidate: Option<SideStats>,
    /// candidate / baseline percentile ratios with confidence intervals.
    pub ratios: Option<Ratios>,
    /// Each statement's own latency on the baseline, in order.
    pub statements: Vec<StatementLatency>,
    /// The paired samples the ratios were computed from (worker runs only:
    /// `merge` recomputes the ratios from every worker's pairs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub pair_blocks: Vec<PairBlock>,
    /// Paired runs of a workload with tenants: the same per tenant size
    /// class (big = the largest 10% of tenants, small = the smallest 50%,
    /// mid = the rest), from the pairs kept for the bootstrap.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<ClassResult>,
    /// `false` when the workload says `gate = false`: `compare` reports it
    /// as not gated.
    #[serde(default = "gated_default", skip_serializing_if = "is_true")]
    pub gate: bool,
}

fn gated_default() -> bool {
    true
}

fn is_true(b: &bool) -> bool {
    *b
}

/// One tenant size class of a query in a paired run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClassResult {
    /// "big", "mid" or "small".
    pub class: String,
    /// Pairs kept of this class (a reservoir of the run's pairs).
    pub pairs: usize,
    /// Baseline p50/p95/p99 of the kept pairs, µs.
    pub baseline: ClassLatency,
    /// Candidate p50/p95/p99 of the kept pairs, µs.
    pub candidate: ClassLatency,
    /// candidate / baseline ratios, intervals at the run's family level
    /// (the classes are members of the family, as the queries are).
    pub ratios: Option<Ratios>,
}

/// Percentiles of one side of one class, µs.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Default)]
pub struct ClassLatency {
    /// Median.
    pub p50_us: u64,
    /// 95th percentile.
    pub p95_us: u64,
    /// 99th percentile.
    pub p99_us: u64,
    /// Mean (0 in files written before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mean_us: u64,
}

/// One client's (baseline µs, candidate µs) pairs within one interval.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PairBlock {
    /// The client id.
    pub client: u32,
    /// (baseline µs, candidate µs).
    pub pairs: Vec<(u32, u32)>,
    /// How many pairs the client measured in the interval, of which `pairs`
    /// is a uniform sample (absent in older files: as many as are kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub seen: u64,
    /// Each kept pair's tenant size class (0 big, 1 mid, 2 small, 255
    /// none), beside `pairs`; empty when the run had no classes (and in
    /// older files), so `merge` can judge the classes of all workers' pairs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub classes: Vec<u8>,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// One side's figures for a query.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct SideStats {
    /// Successful transactions.
    pub count: u64,
    /// Failed transactions by SQLSTATE (or crmbench's client-side codes).
    pub errors: BTreeMap<String, u64>,
    /// Retries after serialization failures or deadlocks.
    pub retries: u64,
    /// Successful transactions per second.
    pub tps: f64,
    /// Percentiles, µs.
    pub latency: Summary,
    /// The HDR histogram (base64 of compressed V2), µs.
    pub histogram: String,
    /// Per-interval series.
    pub intervals: Vec<IntervalStats>,
    /// Each interval's HDR histogram (base64 compressed V2), one per entry of
    /// `intervals`: written by worker runs only, so `merge` can add the
    /// workers' intervals exactly.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub interval_histograms: Vec<String>,
}

/// One interval of the series.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct IntervalStats {
    /// Seconds since the measured window began (interval end).
    pub t: f64,
    /// Successful transactions.
    pub count: u64,
    /// Failed ones.
    pub errors: u64,
    /// Median, µs.
    pub p50_us: u64,
    /// 95th percentile, µs.
    pub p95_us: u64,
    /// 99th percentile, µs.
    pub p99_us: u64,
    /// Mean, µs (0 in files written before it was kept).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub mean_us: u64,
}

/// A statement's own latency inside its transaction.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatementLatency {
    /// Position in the transaction (0-based).
    pub index: usize,
    /// The SQL.
    pub sql: String,
    /// Percentiles, µs.
    pub latency: Summary,
    /// Histogram, base64 compressed V2.
    pub histogram: String,
}

/// A ratio with its confidence interval.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RatioCi {
    /// Point estimate.
    #[serde(deserialize_with = "nan::f64")]
    pub ratio: f64,
    /// Lower bound (NaN, written as null, without enough resamples).
    #[serde(deserialize_with = "nan::f64")]
    pub lo: f64,
    /// Upper bound.
    #[serde(deserialize_with = "nan::f64")]
    pub hi: f64,
}

/// candidate / baseline ratios of one query.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Ratios {
    /// Confidence level of each interval (Bonferroni-adjusted across queries).
    pub level: f64,
    /// Pairs the bootstrap resampled.
    pub pairs: usize,
    /// Median ratio.
    pub p50: RatioCi,
    /// 95th-percentile ratio.
    pub p95: RatioCi,
    /// 99th-percentile ratio.
    pub p99: RatioCi,
    /// Mean ratio (`None` in files written before it was kept).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean: Option<RatioCi>,
}

/// Scans of one index during the window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IndexUsage {
    /// Table.
    pub table: String,
    /// Index.
    pub index: String,
    /// `idx_scan` delta.
    pub scans: i64,
    /// `idx_tup_read` delta.
    pub tuples_read: i64,
}

/// A normalized statement's figures during the window.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StatementStats {
    /// Normalized text.
    pub query: String,
    /// Calls.
    pub calls: i64,
    /// Total execution time, ms.
    pub total_exec_ms: f64,
    /// Rows.
    pub rows: i64,
    /// Shared blocks hit.
    pub shared_blks_hit: i64,
    /// Shared blocks read.
    pub shared_blks_read: i64,
}

impl Results {
    /// Total errors across queries (baseline side).
    pub fn error_count(&self) -> u64 {
        self.queries
            .iter()
            .flat_map(|q| q.baseline.errors.values())
            .fold(0, |a, &b| a.saturating_add(b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sequential look of a rare query has no interval yet (NaN bounds,
    /// written as null); `compare` must still read the file.
    #[test]
    fn nan_bounds_survive_a_round_trip() {
        let look = Look {
            t: 1.0,
            z: 3.0,
            undecided: 1,
            intervals: vec![("q".into(), f64::NAN, f64::NAN)],
        };
        let text = serde_json::to_string(&look).unwrap();
        assert!(text.contains("null"), "{text}");
        let back: Look = serde_json::from_str(&text).unwrap();
        assert!(back.intervals[0].1.is_nan() && back.intervals[0].2.is_nan());
        let ci = RatioCi {
            ratio: 1.0,
            lo: f64::NAN,
            hi: f64::NAN,
        };
        let back: RatioCi = serde_json::from_str(&serde_json::to_string(&ci).unwrap()).unwrap();
        assert!(back.lo.is_nan() && back.ratio == 1.0);
    }
}
