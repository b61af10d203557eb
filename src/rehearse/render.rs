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
    out.push_str("deployment checklist:\n");
    for line in checklist(r) {
        out.push_str(&format!("  - {line}\n"));
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
