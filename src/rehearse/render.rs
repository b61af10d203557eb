//! A rehearsal as text: what `rehearse` prints, and the deployment
//! checklist written from what was measured (also used by the report).

use super::model::{Rehearsal, StatementRecord};

/// The text `rehearse` prints.
pub fn render(r: &Rehearsal) -> String {
    let mut out = format!(
        "crmbench: rehearsed {} (--apply-as {}), {} finding(s)\n",
        r.migration,
        r.apply_as.name(),
        r.findings.len()
    );
    for f in &r.findings {
        out.push_str(&format!(
            "  {}:{}: [{}] {}\n",
            f.file, f.line, f.rule, f.message
        ));
    }
    out.push_str("statements:\n");
    for s in &r.statements {
        out.push_str(&statement_line(s));
    }
    if let Some(f) = &r.failure {
        out.push_str(&format!(
            "migration FAILED at statement {}: {} (SQLSTATE {}): {}\n",
            f.statement + 1,
            f.error.message,
            f.error.sqlstate,
            f.meaning
        ));
        for c in &f.cleanup {
            out.push_str(&format!("  cleanup: {c}\n"));
        }
    }
    if let Some(w) = &r.workload {
        out.push_str(&format!(
            "workload: max latency {:.0} ms, errors {:?}\n",
            w.max_latency_ms, w.errors
        ));
        for p in &w.phases {
            out.push_str(&format!(
                "  {:<24} p99 before {} / during {} / after {}\n",
                p.query,
                ms(p.before_p99_ms),
                ms(p.during_p99_ms),
                ms(p.after_p99_ms)
            ));
        }
    }
    out.push_str(&state_after(r));
    match &r.rollback {
        Some(rb) if rb.identical && rb.failure.is_none() => {
            out.push_str("rollback check: passed (schema identical to before the migration)\n")
        }
        Some(rb) => {
            if let Some(e) = &rb.failure {
                out.push_str(&format!(
                    "rollback FAILED: {} (SQLSTATE {})\n",
                    e.message, e.sqlstate
                ));
            }
            out.push_str("rollback check: FAILED, the schema differs from before the migration:\n");
            out.push_str(&rb.difference.render());
        }
        None => out.push_str("rollback check: not run (no rollback given)\n"),
    }
    if let Some(w) = r.rollback.as_ref().and_then(|rb| rb.workload.as_ref()) {
        out.push_str(&format!(
            "  under load: max latency {:.0} ms, errors {:?}\n",
            w.max_latency_ms, w.errors
        ));
    }
    out.push_str(&data_checks(r));
    out.push_str("deployment checklist:\n");
    for line in checklist(r) {
        out.push_str(&format!("  - {line}\n"));
    }
    out
}

/// The paired after-vs-before comparison, one line per query.
fn state_after(r: &Rehearsal) -> String {
    let Some(a) = &r.after_vs_before else {
        return "after vs before: not run (needs --workload and a migration that succeeded)\n"
            .into();
    };
    let mut out = format!(
        "after vs before (paired, {:.0} s, {} per side, {} threshold {:.0}%): {:?}\n",
        a.seconds,
        a.clients,
        a.metric,
        a.threshold * 100.0,
        a.verdict
    );
    for q in &a.queries {
        let change = q.change.map_or("-".into(), |c| {
            format!("{:.3} [{:.3}, {:.3}]", c.ratio, c.lo, c.hi)
        });
        out.push_str(&format!(
            "  {:<24} after/before {change} {}\n",
            q.name,
            q.verdict.label()
        ));
    }
    out
}

/// The quiesced clone's checks.
fn data_checks(r: &Rehearsal) -> String {
    let Some(d) = &r.data else {
        return String::new();
    };
    let mut out = format!(
        "data checks (quiesced clone), wal_level = {}{}:\n",
        d.wal_level,
        if d.wal_comparable {
            ""
        } else {
            " (WAL figures not comparable: minimal skips index builds and rewrites)"
        }
    );
    for s in &d.statements {
        out.push_str(&format!(
            "  {}:{} {:.0} ms with no load, WAL {:.1} kB\n",
            s.file,
            s.line,
            s.duration_ms,
            s.wal_bytes as f64 / 1024.0
        ));
    }
    let n = |c: Option<i64>| c.map_or("-".into(), |c| c.to_string());
    for c in &d.row_counts {
        out.push_str(&format!(
            "  rows of {}: {} before, {} after, {} after the rollback\n",
            c.table,
            n(c.before),
            n(c.after),
            n(c.after_rollback)
        ));
    }
    for v in &d.validations {
        let rb = v
            .after_rollback
            .as_ref()
            .map_or("-".into(), |a| a.detail.clone());
        out.push_str(&format!(
            "  validation {}:{} {}: after the migration {}, after the rollback {rb}\n",
            v.file,
            v.line,
            if v.after_migration.passed && v.after_rollback.as_ref().is_none_or(|a| a.passed) {
                "ok"
            } else {
                "FAILED"
            },
            v.after_migration.detail
        ));
    }
    out
}

fn statement_line(s: &StatementRecord) -> String {
    let locks: Vec<String> = s
        .locks
        .iter()
        .map(|l| format!("{} on {}", l.mode.sql_name(), l.table))
        .collect();
    let mut line = format!(
        "  {}:{} {:.0} ms, locks [{}], waited {:.0} ms, blocked {} (longest {:.0} ms): {}\n",
        s.file,
        s.line,
        s.duration_ms,
        locks.join(", "),
        s.lock_wait_ms,
        s.blocked,
        s.longest_block_ms,
        s.text
    );
    for w in &s.waited_behind {
        line.push_str(&format!(
            "    waited behind pid {} ({}): {}\n",
            w.pid, w.application, w.query
        ));
    }
    line
}

fn ms(v: Option<f64>) -> String {
    v.map_or("-".into(), |v| format!("{v:.1} ms"))
}

/// The deployment checklist, from what the rehearsal measured.
pub fn checklist(r: &Rehearsal) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(f) = &r.failure {
        out.push(format!("fix the failure first: {}", f.meaning));
    }
    let order: Vec<String> = r
        .statements
        .iter()
        .map(|s| format!("{}:{}", s.file, s.line))
        .collect();
    out.push(format!(
        "apply in this order, as rehearsed (--apply-as {}): {}",
        r.apply_as.name(),
        order.join(", ")
    ));
    let wait = r
        .statements
        .iter()
        .map(|s| s.lock_wait_ms)
        .fold(0.0, f64::max);
    let blocking: Vec<&StatementRecord> = r.statements.iter().filter(|s| s.blocked > 0).collect();
    if wait > 0.0 || !blocking.is_empty() {
        out.push(format!(
            "set lock_timeout (e.g. '{}ms') and retry on 55P03: the rehearsal waited up to {wait:.0} ms for locks, and every statement queued behind a waiting lock request waits too",
            (wait.max(500.0) as u64).min(2000)
        ));
    } else {
        out.push("set lock_timeout anyway (e.g. '2s') with a retry: production has long transactions the rehearsal may not".into());
    }
    for s in blocking {
        out.push(format!(
            "{}:{} blocked {} workload statement(s), the longest {:.0} ms: run it when traffic is lowest, or use its safer form below",
            s.file, s.line, s.blocked, s.longest_block_ms
        ));
    }
    for f in r.findings.iter().filter(|f| f.suggestion.is_some()) {
        out.push(format!(
            "{}:{} [{}]: consider {}",
            f.file,
            f.line,
            f.rule,
            f.suggestion.as_deref().unwrap_or("")
        ));
    }
    out.extend(measured_checks(r));
    match &r.rollback {
        Some(rb) if rb.identical && rb.failure.is_none() => out.push(format!(
            "roll back with {} (proven: the schema came back identical)",
            r.rollback_file.as_deref().unwrap_or("the rollback")
        )),
        Some(_) => {
            out.push("the rollback does NOT restore the schema: fix it before deploying".into())
        }
        None => out.push("no rollback was given: write one and rehearse it".into()),
    }
    out
}

/// Checklist items from the state after and the data checks.
fn measured_checks(r: &Rehearsal) -> Vec<String> {
    use crate::compare::verdict::Verdict;
    let mut out = Vec::new();
    if let Some(a) = &r.after_vs_before {
        let regressed: Vec<&str> = a
            .queries
            .iter()
            .filter(|q| q.verdict == crate::compare::verdict::QueryVerdict::Regression)
            .map(|q| q.name.as_str())
            .collect();
        out.push(match a.verdict {
            Verdict::Fail => format!(
                "after the migration these queries regressed ({} beyond {:.0}%): {}: fix the schema change or accept it knowingly",
                a.metric,
                a.threshold * 100.0,
                regressed.join(", ")
            ),
            Verdict::Pass => "after the migration no query regressed (paired run against the unmigrated clone)".into(),
            _ => format!(
                "the paired run could not decide whether the state after is slower ({}): rehearse with a longer --after",
                a.reasons.join("; ")
            ),
        });
    }
    if let Some(d) = &r.data {
        let kb: f64 = d.statements.iter().map(|s| s.wal_bytes as f64).sum::<f64>() / 1024.0;
        out.push(if d.wal_comparable {
            format!("expect about {kb:.0} kB of WAL (replicas and backups will have to carry it)")
        } else {
            format!("WAL measured under wal_level = {} ({kb:.0} kB) is not what production writes: rehearse on a server at replica", d.wal_level)
        });
        for v in &d.validations {
            out.push(format!(
                "after deploying (and after any rollback), run the validation at {}:{} — in the rehearsal it returned {} after the migration{}",
                v.file,
                v.line,
                v.after_migration.detail,
                v.after_rollback
                    .as_ref()
                    .map_or(String::new(), |a| format!(" and {} after the rollback", a.detail))
            ));
        }
        for c in d.row_counts.iter().filter(|c| c.before != c.after) {
            out.push(format!(
                "the migration changes the rows of {} ({} → {}){}: take a backup of them first",
                c.table,
                c.before.map_or("-".into(), |n| n.to_string()),
                c.after.map_or("-".into(), |n| n.to_string()),
                if c.after_rollback.is_some() && c.after_rollback != c.before {
                    ", and the rollback does not bring them back"
                } else {
                    ""
                }
            ));
        }
    }
    out
}
