//! The report's own view of a run folder: plain structs every writer (HTML,
//! Markdown, JSON) and the plots read, so no writer reaches into
//! `results.json`, `plans.json` or `advice.json` itself. Latencies are kept
//! in µs as measured; writers convert for display.

use std::collections::BTreeMap;

use crate::results::{IntervalStats, RatioCi};
use crate::stats::{Hist, Summary};

/// Everything a report shows, read from one run folder.
#[derive(Debug, Clone)]
pub struct ReportModel {
    /// The folder it was read from, as given.
    pub folder: String,
    /// Server, settings, dataset, workload, driver.
    pub environment: Environment,
    /// Per query, in workload order.
    pub queries: Vec<QuerySummary>,
    /// Length of one interval of the series, seconds.
    pub interval_seconds: f64,
    /// Plan findings per query; `None` when plans.json was not captured.
    pub plans: Option<Vec<QueryFindings>>,
    /// Whether the plans ran with a tenant set (plans.json `rls`): a
    /// workload without tenants is not described in their terms.
    pub plans_rls: bool,
    /// The advisor's output; `None` when advice.json was not captured.
    pub advice: Option<AdviceView>,
    /// Read routing to replicas, when the run had replicas.
    pub replication: Option<crate::run::replicas::ReplicationInfo>,
    /// A migration rehearsal (`rehearsal.json`), when the folder has one.
    pub rehearsal: Option<crate::rehearse::model::Rehearsal>,
    /// A retention rehearsal (`retention.json`), when the folder has one.
    pub retention: Option<crate::rehearse::retention::model::RetentionRecord>,
    /// A paired run's before/after and the gate's verdict: the opening
    /// summary of its report.
    pub paired: Option<super::paired::PairedView>,
}

/// Where and how the run was measured.
#[derive(Debug, Clone)]
pub struct Environment {
    /// crmbench version that wrote results.json.
    pub crmbench_version: String,
    /// `server_version`.
    pub server_version: String,
    /// Settings in force, by name.
    pub settings: BTreeMap<String, String>,
    /// Dataset scale, when the database is a generated one.
    pub scale: Option<f64>,
    /// Seed of the run's parameter streams.
    pub seed: u64,
    /// Workload name, file and hash.
    pub workload: String,
    /// Workload file.
    pub workload_path: String,
    /// Workload hash.
    pub workload_hash: String,
    /// Target, password already redacted by `run`.
    pub target: String,
    /// Clients, threads, protocol, loop kind.
    pub driver: String,
    /// Measured window, RFC 3339.
    pub started_at: String,
    /// End of the measured window.
    pub ended_at: String,
    /// Seconds measured.
    pub measured_seconds: f64,
    /// Why the run ended early, when it did.
    pub partial: Option<String>,
    /// Why the server's index and statement statistics are missing, when
    /// they are.
    pub stats_missing: Option<String>,
    /// Warnings a reader must see (fsync off and the like).
    pub warnings: Vec<String>,
}

/// One query's figures.
#[derive(Debug, Clone)]
pub struct QuerySummary {
    /// Name.
    pub name: String,
    /// `read` or `write`.
    pub kind: String,
    /// Successful transactions.
    pub count: u64,
    /// Transactions per second.
    pub tps: f64,
    /// Percentiles, µs.
    pub latency: Summary,
    /// Failed transactions by SQLSTATE.
    pub errors: BTreeMap<String, u64>,
    /// The decoded histogram (empty when the file's did not decode).
    pub histogram: Hist,
    /// Per-interval series.
    pub intervals: Vec<IntervalStats>,
}

impl QuerySummary {
    /// All failed transactions.
    pub fn error_total(&self) -> u64 {
        self.errors.values().fold(0, |a, &b| a.saturating_add(b))
    }
}

/// Findings of one query's plans.
#[derive(Debug, Clone)]
pub struct QueryFindings {
    /// Query.
    pub query: String,
    /// (kind, node, hint), in the order plans.json gives them.
    pub findings: Vec<FindingView>,
    /// Each statement's plan tree per tenant class: (label such as "big
    /// tenant, statement 1", the tree as text), shown behind a `<details>`.
    pub trees: Vec<(String, String)>,
}

/// One plan finding.
#[derive(Debug, Clone)]
pub struct FindingView {
    /// Kind, as plans.json spells it (`rls_non_leakproof` …).
    pub kind: String,
    /// The plan node.
    pub node: String,
    /// What to do about it.
    pub hint: String,
}

/// What the advisor said.
#[derive(Debug, Clone)]
pub struct AdviceView {
    /// How what-if costs were obtained.
    pub method: String,
    /// Where query weights came from.
    pub weights_from: String,
    /// Weighted what-if cost without new indexes.
    pub base_cost: f64,
    /// With every recommended index.
    pub final_cost: f64,
    /// Recommended indexes, in the order chosen.
    pub indexes: Vec<IndexView>,
    /// Whether `--verify` ran.
    pub verified: bool,
    /// RLS findings with their remedies: (query, finding).
    pub rls_findings: Vec<(String, FindingView)>,
    /// Remedies for non-leakproof predicates.
    pub remedies: Vec<RemedyView>,
    /// remedies.sql (from the folder, else regenerated).
    pub remedies_sql: String,
    /// Indexes that can go.
    pub drops: Vec<DropView>,
    /// migration.sql (from the folder, else regenerated).
    pub migration_sql: String,
    /// rollback.sql (from the folder, else regenerated).
    pub rollback_sql: String,
    /// Files under `prisma/`: (path relative to the folder, contents).
    pub prisma: Vec<(String, String)>,
    /// Why each query got an index or did not: (query, explanation).
    pub explanations: Vec<(String, String)>,
}

/// One recommended index.
/// A remedy for a non-leakproof predicate.
#[derive(Debug, Clone)]
pub struct RemedyView {
    /// The query it serves.
    pub query: String,
    /// The change (rewrite and index).
    pub change: String,
    /// Its measured effect, or why not measured.
    pub effect: String,
    /// Whether the measurement showed it worth doing (None: not measured).
    pub gain: Option<bool>,
}

#[derive(Debug, Clone)]
pub struct IndexView {
    /// Its name.
    pub name: String,
    /// `CREATE INDEX …`.
    pub create_sql: String,
    /// Queries it was chosen for.
    pub queries: Vec<String>,
    /// Predicted what-if cost ratio after/before of the workload.
    pub predicted_ratio: f64,
    /// Size estimate, bytes.
    pub estimated_bytes: i64,
    /// Paired measurement, when verified.
    pub verification: Option<Verification>,
}

/// The paired before/after measurement of one index.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Kept or reverted.
    pub kept: bool,
    /// Why.
    pub reason: String,
    /// Per affected query.
    pub measured: Vec<MeasuredView>,
}

/// One query's before/after.
#[derive(Debug, Clone)]
pub struct MeasuredView {
    /// Query.
    pub query: String,
    /// Median ratio after/before with its interval.
    pub p50: RatioCi,
    /// 95th percentile ratio.
    pub p95: RatioCi,
    /// Before (baseline clone).
    pub before: Hist,
    /// After (clone with the index).
    pub after: Hist,
}

/// An index that can go.
#[derive(Debug, Clone)]
pub struct DropView {
    /// Index.
    pub index: String,
    /// Table.
    pub table: String,
    /// Why.
    pub reason: String,
    /// The DROP statement.
    pub sql: String,
}

/// µs to ms for display.
pub fn ms(us: u64) -> f64 {
    us as f64 / 1000.0
}

/// A ratio with its interval, e.g. `0.72× [0.61, 0.90]`.
pub fn ratio_text(r: &RatioCi) -> String {
    format!("{:.2}× [{:.2}, {:.2}]", r.ratio, r.lo, r.hi)
}

/// The settings that make figures unlike production, as warnings.
pub fn setting_warnings(settings: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    let off = |name: &str| settings.get(name).is_some_and(|v| v == "off");
    if off("fsync") {
        out.push(
            "fsync was off: commits did not wait for the disk, so write latencies are lower \
             than a production server's"
                .to_string(),
        );
    }
    if off("synchronous_commit") {
        out.push("synchronous_commit was off: commits did not wait for the WAL flush".to_string());
    }
    if off("full_page_writes") {
        out.push("full_page_writes was off: less WAL than production writes".to_string());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fsync_off_is_a_warning_and_on_is_not() {
        let mut s = BTreeMap::new();
        s.insert("fsync".to_string(), "off".to_string());
        s.insert("synchronous_commit".to_string(), "on".to_string());
        let w = setting_warnings(&s);
        assert_eq!(w.len(), 1);
        assert!(w[0].starts_with("fsync was off"));
        s.insert("fsync".to_string(), "on".to_string());
        assert!(setting_warnings(&s).is_empty());
    }

    #[test]
    fn ratio_text_rounds_to_two_places() {
        let r = RatioCi {
            ratio: 0.72169,
            lo: 0.6109,
            hi: 0.8951,
        };
        assert_eq!(ratio_text(&r), "0.72× [0.61, 0.90]");
    }
}
