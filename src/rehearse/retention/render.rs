//! `rehearse --retention` as text: the side-by-side table, the checks, the
//! trade-offs and the files written.

use super::model::{RetentionRecord, Way};

fn mb(bytes: i64) -> String {
    format!("{:.1} MB", bytes as f64 / 1e6)
}

/// The columns of the side-by-side table, after the way's name.
pub const HEAD: [&str; 7] = [
    "duration",
    "WAL",
    "size after",
    "dead",
    "p50",
    "p99",
    "max / errors",
];

/// The rows of the side-by-side table: the two ways, then the conversion
/// and the job run, each once.
pub fn ways(r: &RetentionRecord) -> [(&'static str, &Way); 4] {
    [
        ("DELETE + VACUUM", &r.delete),
        ("drop partitions", &r.drop),
        ("conversion (once)", &r.conversion),
        ("job run (once)", &r.job_run),
    ]
}

/// One way's cells, in [`HEAD`]'s order.
pub fn cells(w: &Way) -> [String; 7] {
    let d = w.during.clone().unwrap_or_default();
    let load = w.during.is_some();
    [
        format!("{:.0} ms", w.duration_ms),
        w.wal_bytes.map_or("-".into(), mb),
        mb(w.size_after_bytes),
        w.dead_tuples_after.to_string(),
        if load {
            format!("{:.1} ms", d.p50_ms)
        } else {
            "-".into()
        },
        if load {
            format!("{:.1} ms", d.p99_ms)
        } else {
            "-".into()
        },
        if load {
            format!("{:.0} ms / {}", d.max_ms, d.errors)
        } else {
            "-".into()
        },
    ]
}

/// What is kept and what expires, in one line: the opening of both the
/// printed text and the report's section.
pub fn headline(r: &RetentionRecord) -> String {
    format!(
        "{} by {}, keep {} months: {} of {} rows expire (before {})",
        r.table, r.column, r.keep_months, r.expired_rows, r.rows, r.cutoff
    )
}

/// The WAL setting, with a warning when its figures mean nothing.
pub fn wal_level(r: &RetentionRecord) -> String {
    let remark = if r.wal_level == "minimal" {
        " (WAL figures not comparable)"
    } else {
        ""
    };
    format!("wal_level {}{remark}", r.wal_level)
}

/// The conversion's proofs, one finding each.
pub fn checks(r: &RetentionRecord) -> Vec<String> {
    let k = &r.checks;
    vec![
        format!(
            "old EXCEPT ALL new {} rows (new EXCEPT ALL old {})",
            k.old_except_new, k.new_except_old
        ),
        format!(
            "tenants whose counts and checksums agree: {} of {}",
            k.tenants_agree.0, k.tenants_agree.1
        ),
        format!("new catalog audit findings: {}", k.audit_new_findings.len()),
        format!(
            "the rollback restores the schema: {}",
            if k.rollback_identical { "yes" } else { "NO" }
        ),
        format!(
            "dropped partitions held {} of {} expired rows; {} left",
            k.dropped_rows.0, k.dropped_rows.1, k.expired_left
        ),
    ]
}

/// The text `rehearse --retention` prints.
pub fn render(r: &RetentionRecord) -> String {
    let mut out = format!(
        "crmbench: retention of {}, {} pages per batch, {}\n\n",
        headline(r),
        r.pages_per_batch,
        wal_level(r)
    );
    let h = HEAD;
    out.push_str(&format!(
        "{:<19} {:>10} {:>10} {:>10} {:>8} {:>9} {:>9} {:>14}\n",
        "way", h[0], h[1], h[2], h[3], h[4], h[5], h[6]
    ));
    for (name, w) in ways(r) {
        let c = cells(w);
        out.push_str(&format!(
            "{name:<19} {:>10} {:>10} {:>10} {:>8} {:>9} {:>9} {:>14}\n",
            c[0], c[1], c[2], c[3], c[4], c[5], c[6]
        ));
        if let Some(f) = &w.failure {
            out.push_str(&format!("  FAILED: {f}\n"));
        }
    }
    let k = &r.checks;
    out.push_str(&format!("\nconversion checks: {}\n", checks(r).join("; ")));
    for f in &k.audit_new_findings {
        out.push_str(&format!("  audit: {f}\n"));
    }
    if !k.rollback_difference.is_empty() {
        out.push_str(&k.rollback_difference);
    }
    out.push_str("trade-offs:\n");
    for t in &r.tradeoffs {
        out.push_str(&format!("  - {t}\n"));
    }
    out.push_str(&format!("job: {:?}\nfiles:\n", r.job));
    for (role, path) in &r.files {
        out.push_str(&format!("  {role}: {path}\n"));
    }
    out
}
