//! The realism check (`capture --check-replay`): replay the captured file on
//! the same server and compare, statement by statement, what the replay ran
//! with what the source ran — like with like, `pg_stat_statements` figures
//! on both sides (the server's execution time, never the client's round
//! trip): each statement's share of calls within ±2 percentage points of the
//! source's, its mean execution time within 0.67–1.5× of it, and fewer than
//! 1% of its replayed transactions failing. Statements outside the band are
//! flagged, not hidden.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::Path;
use std::time::Duration;

use super::stats::{self, Entry};
use crate::error::Result;
use crate::pg::{self, Target};

/// Largest difference of a statement's share of calls, in percentage points.
pub const SHARE_BAND_PP: f64 = 2.0;
/// The band of replayed mean / source mean.
pub const MEAN_BAND: (f64, f64) = (0.67, 1.5);
/// Largest share of a statement's replayed transactions that may fail.
pub const MAX_ERROR_RATE: f64 = 0.01;

/// What the source ran of one captured query.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// The query's name in the file.
    pub name: String,
    /// Its SQL as written in the file (what the replay sends).
    pub sql: String,
    /// The source's calls.
    pub calls: i64,
    /// The source's total execution time, ms.
    pub total_ms: f64,
    /// The source's shared blocks per call, where it counted them.
    pub blocks_per_call: Option<f64>,
}

/// One statement compared.
#[derive(Debug, Clone, PartialEq)]
pub struct Compared {
    /// The query's name.
    pub name: String,
    /// Share of the captured statements' calls at the source, percent.
    pub source_share: f64,
    /// The same in the replay, percent.
    pub replay_share: f64,
    /// Mean execution time at the source, ms.
    pub source_mean_ms: f64,
    /// Mean execution time in the replay, ms (0 when it never ran).
    pub replay_mean_ms: f64,
    /// Shared blocks per call at the source and in the replay, where
    /// counted: equal blocks with unequal times point at the machine or the
    /// plan, unequal blocks at the parameters.
    pub blocks_per_call: (Option<f64>, Option<f64>),
    /// Share of the replay's transactions of this query that failed.
    pub error_rate: f64,
    /// The replay's calls (`pg_stat_statements`) and the driver's
    /// transactions (successful + failed) of this query.
    pub replay_calls: (i64, u64),
    /// What is outside the band (empty: inside).
    pub flags: Vec<String>,
}

/// Compare the source with the replay's `pg_stat_statements` delta;
/// `outcomes` holds each query's (successful, failed) transactions.
pub fn compare(
    source: &[Source],
    replay: &[Entry],
    outcomes: &HashMap<String, (u64, u64)>,
) -> Vec<Compared> {
    let mut by_print: HashMap<String, (i64, f64, Option<i64>)> = HashMap::new();
    for e in replay {
        let slot = by_print
            .entry(fingerprint(&e.query))
            .or_insert((0, 0.0, Some(0)));
        slot.0 += e.calls;
        slot.1 += e.total_ms;
        slot.2 = stats::plus(slot.2, e.blocks);
    }
    let replayed: Vec<(i64, f64, Option<i64>)> = source
        .iter()
        .map(|s| {
            by_print
                .get(&fingerprint(&s.sql))
                .copied()
                .unwrap_or_default()
        })
        .collect();
    let source_calls: i64 = source.iter().map(|s| s.calls).sum();
    let replay_calls: i64 = replayed.iter().map(|r| r.0).sum();
    let pct = |part: i64, whole: i64| {
        if whole > 0 {
            100.0 * part as f64 / whole as f64
        } else {
            0.0
        }
    };
    let mean = |ms: f64, calls: i64| if calls > 0 { ms / calls as f64 } else { 0.0 };
    source
        .iter()
        .zip(replayed)
        .map(|(s, (calls, ms, blocks))| {
            let (ok, failed) = outcomes.get(&s.name).copied().unwrap_or_default();
            let replay_blocks = blocks
                .filter(|_| calls > 0)
                .map(|b| b as f64 / calls as f64);
            let mut c = Compared {
                name: s.name.clone(),
                source_share: pct(s.calls, source_calls),
                replay_share: pct(calls, replay_calls),
                source_mean_ms: mean(s.total_ms, s.calls),
                replay_mean_ms: mean(ms, calls),
                blocks_per_call: (s.blocks_per_call, replay_blocks),
                error_rate: if ok + failed > 0 {
                    failed as f64 / (ok + failed) as f64
                } else {
                    0.0
                },
                replay_calls: (calls, ok + failed),
                flags: Vec::new(),
            };
            c.flags = flags(&c, calls);
            c
        })
        .collect()
}

/// What puts one statement outside the band.
fn flags(c: &Compared, replay_calls: i64) -> Vec<String> {
    let mut out = Vec::new();
    if replay_calls == 0 {
        out.push("never ran in the replay".into());
        return out;
    }
    let diff = c.replay_share - c.source_share;
    if diff.abs() > SHARE_BAND_PP {
        out.push(format!("share of calls off by {diff:+.1} pp"));
    }
    if c.source_mean_ms > 0.0 {
        let ratio = c.replay_mean_ms / c.source_mean_ms;
        if !(MEAN_BAND.0..=MEAN_BAND.1).contains(&ratio) {
            out.push(format!("mean {ratio:.2}× the source's"));
        }
    }
    if c.error_rate >= MAX_ERROR_RATE {
        out.push(format!(
            "{:.1}% of transactions failed",
            c.error_rate * 100.0
        ));
    }
    out
}

/// The parser's fingerprint (the text itself when it does not parse).
fn fingerprint(sql: &str) -> String {
    pg_query::fingerprint(sql)
        .map(|f| f.hex)
        .unwrap_or_else(|_| sql.to_string())
}

/// How long and how wide the replay is.
#[derive(Debug, Clone, Copy)]
pub struct ReplayOptions {
    /// Measured time.
    pub duration: Duration,
    /// Client connections.
    pub clients: usize,
}

/// Replay `file` on `target` and compare with `source`: two snapshots of
/// `pg_stat_statements` around the run, the role's statements only.
pub async fn check_replay(
    target: &Target,
    file: &Path,
    role: &str,
    source: &[Source],
    opts: ReplayOptions,
) -> Result<Vec<Compared>> {
    let admin = pg::connect(&target.admin()).await?;
    let before = stats::read(&admin, target.database()).await?;
    let outcome = crate::run::run(target, &run_options(file, opts)).await?;
    let after = stats::read(&admin, target.database()).await?;
    let replay: Vec<Entry> = stats::window_delta(&before, after)
        .into_iter()
        .filter(|e| e.role == role)
        .collect();
    let outcomes: HashMap<String, (u64, u64)> = outcome
        .results
        .queries
        .iter()
        .map(|q| {
            let failed: u64 = q.baseline.errors.values().sum();
            (q.name.clone(), (q.baseline.count, failed))
        })
        .collect();
    let mut rows = compare(source, &replay, &outcomes);
    // Name the SQLSTATEs of the failures: they say what to mend in the file.
    for row in &mut rows {
        let Some(q) = outcome.results.queries.iter().find(|q| q.name == row.name) else {
            continue;
        };
        if let Some(flag) = row.flags.iter_mut().find(|f| f.ends_with("failed")) {
            let codes: Vec<String> = q
                .baseline
                .errors
                .iter()
                .map(|(code, n)| format!("{code} ×{n}"))
                .collect();
            flag.push_str(&format!(" ({})", codes.join(", ")));
        }
    }
    Ok(rows)
}

/// A plain closed-loop run of the captured file.
fn run_options(file: &Path, opts: ReplayOptions) -> crate::run::RunOptions {
    crate::run::RunOptions {
        workload: file.to_path_buf(),
        clients: opts.clients,
        threads: opts.clients.clamp(1, 2),
        duration: opts.duration,
        warmup: Duration::from_secs(1),
        rate: None,
        arrivals: crate::run::driver::Arrivals::Poisson,
        seed: 1,
        fresh: false,
        candidate_url: None,
        candidate_database: None,
        self_check: false,
        max_error_rate: 1.0,
        interval: Duration::from_secs(1),
        max_tries: 1,
        simple: false,
        pipeline: false,
        quiet: true,
        sequential: None,
        pooler_url: None,
        replica_urls: Vec::new(),
        private_replicas: false,
        worker: None,
        start_at: None,
        trace_params: 0,
    }
}

/// The comparison as a table, with a last line saying how many are outside.
pub fn render(rows: &[Compared]) -> String {
    let mut out = String::from(
        "replay vs source (pg_stat_statements on both sides; band: share ±2 pp, mean 0.67–1.5×, errors <1%)\n\
         query                              share src  share rep   mean src ms  mean rep ms  blocks src/rep  errors  calls/tx\n",
    );
    let blocks = |b: Option<f64>| b.map_or("-".to_string(), |b| format!("{b:.0}"));
    for r in rows {
        let _ = writeln!(
            out,
            "{:<34} {:>8.1}% {:>9.1}% {:>12.3} {:>12.3} {:>7}/{:<7} {:>5.2}% {:>7}/{:<7} {}",
            r.name,
            r.source_share,
            r.replay_share,
            r.source_mean_ms,
            r.replay_mean_ms,
            blocks(r.blocks_per_call.0),
            blocks(r.blocks_per_call.1),
            r.error_rate * 100.0,
            r.replay_calls.0,
            r.replay_calls.1,
            if r.flags.is_empty() {
                "ok".to_string()
            } else {
                format!("OUTSIDE: {}", r.flags.join("; "))
            }
        );
    }
    let outside = rows.iter().filter(|r| !r.flags.is_empty()).count();
    let _ = writeln!(
        out,
        "{} of {} statements within the realism band",
        rows.len() - outside,
        rows.len()
    );
    if let Some(drift) = overall_ratio(rows) {
        let _ = writeln!(
            out,
            "overall: the replay's means are {drift:.2}× the source's (median of the statements): \
             what moves every statement alike is the machine or the data's state (a replay \
             after the source's writes), not one statement's parameters"
        );
    }
    if rows.iter().any(short_and_off) {
        out.push_str(SHORT_NOTE);
    }
    out
}

/// The median of the statements' replayed / source means (`None` without
/// a statement that ran on both sides).
pub fn overall_ratio(rows: &[Compared]) -> Option<f64> {
    let mut ratios: Vec<f64> = rows
        .iter()
        .filter(|r| r.source_mean_ms > 0.0 && r.replay_calls.0 > 0)
        .map(|r| r.replay_mean_ms / r.source_mean_ms)
        .collect();
    ratios.sort_by(f64::total_cmp);
    let n = ratios.len();
    match n {
        0 => None,
        _ if n % 2 == 1 => Some(ratios[n / 2]),
        _ => Some((ratios[n / 2 - 1] + ratios[n / 2]) / 2.0),
    }
}

/// Below this mean, a statement's execution time moves with its context.
pub const SHORT_MS: f64 = 0.05;

/// Why a statement of a few microseconds can be off (measured with pgbench
/// alone, README "Capturing a workload"): what ran before it in the
/// source's transaction, and how busy its backend was.
const SHORT_NOTE: &str = "note: a statement under 0.05 ms whose mean is off need not be \
    replayed wrong: pg_stat_statements keeps no transactions, so the replay runs each \
    statement alone, without the row an earlier statement of the same transaction left warm \
    (pgbench's SELECT after its UPDATE of the same row: 2–3× faster) and paying for the \
    transaction id an earlier write took (its INSERT: 1.5×); and such a statement's mean \
    rises when its backend is less busy (pgbench -S: 6× at 500 tps against unthrottled)\n";

/// A statement under [`SHORT_MS`] whose mean is outside the band.
fn short_and_off(r: &Compared) -> bool {
    r.source_mean_ms < SHORT_MS && r.flags.iter().any(|f| f.starts_with("mean "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn src(name: &str, sql: &str, calls: i64, total_ms: f64) -> Source {
        Source {
            name: name.into(),
            sql: sql.into(),
            calls,
            total_ms,
            blocks_per_call: None,
        }
    }

    fn entry(q: &str, calls: i64, total_ms: f64) -> Entry {
        Entry {
            query: q.into(),
            role: "app".into(),
            queryid: None,
            calls,
            total_ms,
            ..Entry::default()
        }
    }

    #[test]
    fn within_and_outside_the_band() {
        let source = vec![
            src("a", "SELECT * FROM t WHERE id = $1", 500, 500.0),
            src("b", "UPDATE t SET x = $1 WHERE id = $2", 300, 600.0),
            src("c", "SELECT count(*) FROM u", 100, 100.0),
            src("d", "DELETE FROM u WHERE id = $1", 100, 100.0),
        ];
        // The replay's text of a differs in case and spacing only (same
        // fingerprint): a matches; b is 2× slower and fails 4%; c is called
        // twice as often (20% of calls, not 10%); d never ran.
        let replay = vec![
            entry("select *  from t where id = $1", 500, 520.0),
            entry("UPDATE t SET x = $1 WHERE id = $2", 300, 1200.0),
            entry("SELECT count(*) FROM u", 200, 200.0),
        ];
        let outcomes = HashMap::from([("a".to_string(), (500, 0)), ("b".to_string(), (288, 12))]);
        let rows = compare(&source, &replay, &outcomes);
        assert!(rows[0].flags.is_empty(), "{:?}", rows[0]);
        assert!((rows[0].source_share - 50.0).abs() < 1e-9);
        assert!((rows[0].replay_share - 50.0).abs() < 1e-9);
        assert!((rows[0].replay_mean_ms - 1.04).abs() < 1e-9);
        assert_eq!(rows[1].flags.len(), 2, "{:?}", rows[1]);
        assert!(rows[1].flags[0].contains("mean 2.00×"), "{:?}", rows[1]);
        assert!(rows[1].flags[1].contains("4.0% of transactions failed"));
        assert_eq!(rows[2].flags, vec!["share of calls off by +10.0 pp"]);
        assert_eq!(rows[3].flags, vec!["never ran in the replay"]);
        let text = render(&rows);
        assert!(text.contains("1 of 4 statements within"), "{text}");
    }

    /// The overall line: the median of the statements' ratios, so one
    /// statement far off does not move it; blocks shown where counted.
    #[test]
    fn overall_ratio_is_the_median() {
        let row = |ratio: f64| Compared {
            name: "a".into(),
            source_share: 50.0,
            replay_share: 50.0,
            source_mean_ms: 1.0,
            replay_mean_ms: ratio,
            blocks_per_call: (Some(12.0), Some(30.0)),
            error_rate: 0.0,
            replay_calls: (10, 10),
            flags: Vec::new(),
        };
        let rows = [row(1.1), row(1.2), row(9.0)];
        assert_eq!(overall_ratio(&rows), Some(1.2));
        assert_eq!(
            overall_ratio(&rows[..2]).map(|r| (r * 100.0).round()),
            Some(115.0)
        );
        assert_eq!(overall_ratio(&[]), None);
        let text = render(&rows);
        assert!(
            text.contains("overall: the replay's means are 1.20×"),
            "{text}"
        );
        assert!(text.contains("     12/30 "), "{text}");
    }

    #[test]
    fn a_short_statement_off_in_mean_gets_the_note_a_long_one_does_not() {
        let row = |ms: f64| Compared {
            name: "a".into(),
            source_share: 100.0,
            replay_share: 100.0,
            source_mean_ms: ms,
            replay_mean_ms: ms * 2.0,
            blocks_per_call: (Some(10.0), None),
            error_rate: 0.0,
            replay_calls: (10, 10),
            flags: vec!["mean 2.00× the source's".into()],
        };
        assert!(render(&[row(0.012)]).contains("note: a statement under 0.05 ms"));
        assert!(!render(&[row(0.4)]).contains("note:"));
        let in_band = Compared {
            flags: Vec::new(),
            ..row(0.012)
        };
        assert!(!render(&[in_band]).contains("note:"));
    }

    #[test]
    fn a_statement_never_replayed_is_flagged() {
        let source = vec![src("a", "SELECT 1", 10, 1.0)];
        let rows = compare(&source, &[], &HashMap::new());
        assert_eq!(rows[0].flags, vec!["never ran in the replay".to_string()]);
    }
}
