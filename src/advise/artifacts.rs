//! What `advise` leaves in the run folder and prints: advice.json, the
//! Prisma files (prisma/indexes.prisma, one migration folder per index, the
//! user's schema.prisma with the lines in place), migration.sql,
//! rollback.sql and remedies.sql, and the summary lines.

use std::path::Path;

use super::candidates::{self, IndexDef};
use super::{Advice, prisma};
use crate::error::{Error, Result};
use crate::runfolder::RunFolder;

/// Write advice.json and the Prisma files into `folder`. `names` are the
/// model and field names to use; `prisma_schema` is the text of the user's
/// schema.prisma, when one was given, to write back with the lines in place.
pub fn write_artifacts(
    folder: &RunFolder,
    advice: &Advice,
    names: &prisma::Names,
    prisma_schema: Option<&str>,
) -> Result<()> {
    folder.write(advice)?;
    write_prisma(folder, advice, names, prisma_schema)
}

/// Prisma users: `@@index` lines and one migration folder per kept index,
/// under `folder/prisma/` (replaced as a whole: an older run's migrations
/// must not linger).
fn write_prisma(
    folder: &RunFolder,
    advice: &Advice,
    names: &prisma::Names,
    prisma_schema: Option<&str>,
) -> Result<()> {
    let kept_defs: Vec<IndexDef> = advice.kept().map(|c| c.def.clone()).collect();
    let prisma_dir = folder.join("prisma");
    match std::fs::remove_dir_all(&prisma_dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
            return Err(Error::io("removing the older", &prisma_dir, e));
        }
        _ => {}
    }
    let stamp = chrono::Utc::now().format("%Y%m%d%H%M%S").to_string();
    for (dir, sql) in prisma::migrations(&kept_defs, &advice.schema, &stamp, &advice.partitioned) {
        let file = std::path::Path::new("prisma/migrations")
            .join(dir)
            .join("migration.sql");
        folder.write_text(file, &sql)?;
    }
    folder.create_dir("prisma")?;
    folder.write_text(
        "prisma/indexes.prisma",
        &prisma::schema_lines(&kept_defs, &advice.schema, names),
    )?;
    if let Some(text) = prisma_schema {
        // The user's schema with the lines in place, to diff or copy over.
        folder.write_text(
            "prisma/schema.prisma",
            &prisma::add_to_schema(text, &kept_defs, names),
        )?;
    }
    Ok(())
}

/// Write migration.sql, rollback.sql and remedies.sql into `folder`.
pub fn write_sql(folder: &RunFolder, advice: &Advice) -> Result<()> {
    for (name, text) in [
        ("migration.sql", migration_sql(advice, &advice.schema)),
        ("rollback.sql", rollback_sql(advice, &advice.schema)),
        ("remedies.sql", remedies_sql(advice)),
    ] {
        folder.write_text(name, &text)?;
    }
    Ok(())
}

/// The lines `crmbench advise` prints at the end: the selection's effect,
/// each chosen index, verification, drops, remedies, RLS findings and where
/// the files are.
pub fn render_summary(advice: &Advice, folder: &Path) -> String {
    let sel = &advice.selection;
    // The headline counts what stands: after --verify, the kept indexes.
    let kept = ranked(advice);
    let reverted = sel.chosen.len() - kept.len();
    let mut out = format!(
        "crmbench: {} index{} recommended{}; weighted what-if cost {:.1} → {:.1} ({:.0}% lower), {} what-if plans in {:.1} s, as {}\n",
        kept.len(),
        if kept.len() == 1 { "" } else { "es" },
        if reverted > 0 {
            format!(" ({reverted} more reverted by verification)")
        } else {
            String::new()
        },
        sel.base_cost,
        sel.final_cost,
        if sel.base_cost > 0.0 {
            100.0 * (1.0 - sel.final_cost / sel.base_cost)
        } else {
            0.0
        },
        advice.whatif_calls,
        advice.whatif_seconds,
        advice.method
    );
    if kept.len() > 1 {
        out.push_str("  ranked by what-if time saved (calls × per-call saving) per MB:\n");
    }
    for c in &kept {
        out.push_str(&format!(
            "  {}  ({:.1} → {:.1}; serves {})\n",
            c.def.create_sql(&advice.schema),
            c.cost_before,
            c.cost_after,
            c.queries.join(", ")
        ));
        for n in &c.notes {
            out.push_str(&format!("    note: {n}\n"));
        }
    }
    if !sel.rejected.is_empty() {
        out.push_str("  left out:\n");
        for r in &sel.rejected {
            out.push_str(&format!("    {}: {}\n", r.def.name(), r.reason));
        }
    }
    out.push_str(&findings_summary(advice));
    if !advice.explanations.is_empty() {
        out.push_str("  per query:\n");
        for e in &advice.explanations {
            out.push_str(&format!("    {:<26} {}\n", e.query, e.text));
        }
    }
    out.push_str(&format!(
        "  written: {}/{{advice.json, migration.sql, rollback.sql, remedies.sql, prisma/}}\n",
        folder.display()
    ));
    out
}

/// The indexes that stand, by what-if cost saved (weighted by calls) per
/// byte, the most rewarding first.
pub fn ranked(advice: &Advice) -> Vec<&crate::advise::select::Chosen> {
    let mut kept: Vec<&crate::advise::select::Chosen> = advice.kept().collect();
    let per_byte = |c: &crate::advise::select::Chosen| {
        (c.cost_before - c.cost_after) / c.estimated_bytes.max(c.hypopg_bytes).max(1) as f64
    };
    kept.sort_by(|a, b| per_byte(b).total_cmp(&per_byte(a)));
    kept
}

/// The summary's verification, drop, remedy and row-level security lines.
fn findings_summary(advice: &Advice) -> String {
    let mut out = String::new();
    if let Some(verified) = &advice.verified {
        out.push_str("  paired verification (candidate/baseline with its interval):\n");
        for v in verified {
            out.push_str(&format!("    {:<48} {}\n", v.index, v.reason));
        }
    }
    if !advice.drops.is_empty() {
        out.push_str("  indexes that can go:\n");
        for d in &advice.drops {
            out.push_str(&format!("    {:<40} {}\n", d.index, d.reason));
        }
    }
    if !advice.remedies.is_empty() {
        out.push_str(
            "  remedies (schema changes that make the predicate indexable for the app role):\n",
        );
        for r in &advice.remedies {
            let effect = r.effect();
            out.push_str(&format!("    {}: {}; {effect}\n", r.query, r.change));
        }
    }
    if !advice.rls_findings.is_empty() {
        out.push_str(
            "  row-level security keeps these predicates from using any index (fix the schema, not the indexes):\n",
        );
        for (q, f) in &advice.rls_findings {
            out.push_str(&format!("    {q}: {}\n", f.hint));
        }
    }
    out
}

/// `migration.sql`: one `CREATE INDEX CONCURRENTLY IF NOT EXISTS` per
/// statement, with what a DBA must know to run it.
pub fn migration_sql(advice: &Advice, schema: &str) -> String {
    let mut out = String::from(
        "-- crmbench index migration.\n\
         -- Run OUTSIDE a transaction block (CREATE INDEX CONCURRENTLY refuses to run in one;\n\
         -- psql -f runs each statement on its own). Lock: SHARE UPDATE EXCLUSIVE on the table,\n\
         -- so reads and writes go on while each index builds.\n\
         -- A failed concurrent build leaves an INVALID index that IF NOT EXISTS would then skip\n\
         -- silently; list them with:\n\
         --   SELECT indexrelid::regclass FROM pg_index WHERE NOT indisvalid;\n\
         -- and DROP INDEX CONCURRENTLY each before running this file again.\n\n",
    );
    for c in advice.kept() {
        let parts = advice.partitioned.get(&c.def.table).map(Vec::as_slice);
        out.push_str(&format!("-- serves: {}\n", c.queries.join(", ")));
        if parts.is_some() {
            out.push_str(&format!(
                "-- {} is partitioned (CREATE INDEX CONCURRENTLY is refused on it): the index on\n\
                 -- the parent alone, each partition's built concurrently, then attached.\n",
                c.def.table
            ));
        }
        for statement in c.def.migration_statements(schema, parts) {
            out.push_str(&format!("{statement};\n"));
        }
        out.push('\n');
    }
    out
}

/// `rollback.sql`: the matching drops, in reverse order.
pub fn rollback_sql(advice: &Advice, schema: &str) -> String {
    let mut out = String::from(
        "-- crmbench rollback of migration.sql (run outside a transaction block).\n\n",
    );
    for c in advice.kept().rev() {
        // A partitioned index cannot be dropped concurrently; dropping it
        // drops its partitions' indexes too.
        let concurrently = if advice.partitioned.contains_key(&c.def.table) {
            ""
        } else {
            "CONCURRENTLY "
        };
        out.push_str(&format!(
            "DROP INDEX {concurrently}IF EXISTS {}.{};\n",
            candidates::sql_ident(schema),
            c.def.name()
        ));
    }
    out
}

/// `remedies.sql`: each remedy's migration and the statement rewritten to
/// use it, with the measured effect when there is one.
pub fn remedies_sql(advice: &Advice) -> String {
    let mut out = String::from(
        "-- crmbench remedies: schema changes that make a predicate leakproof, so the\n\
         -- application role can use an index under row-level security. Review each:\n\
         -- ALTER TABLE … ADD COLUMN … STORED rewrites the table under an ACCESS\n\
         -- EXCLUSIVE lock; the CREATE INDEX CONCURRENTLY must run outside a transaction;\n\
         -- the application must then send the rewritten statement.\n\n",
    );
    if advice.remedies.is_empty() && advice.rls_findings.is_empty() {
        out.push_str("-- none: no non-leakproof predicate.\n");
    }
    // Findings without a mechanical remedy: the same advice as advice.json
    // and the summary give, said here as advice only.
    for (q, f) in &advice.rls_findings {
        if !advice.remedies.iter().any(|r| &r.query == q) {
            out.push_str(&format!(
                "-- {q}: no mechanical remedy; advice only: {}\n",
                f.hint
            ));
        }
    }
    for r in &advice.remedies {
        out.push_str(&format!("-- {}: {}\n", r.query, r.change));
        if let Some(m) = &r.measured {
            out.push_str(&format!(
                "-- measured (app role, tenant set, {} runs each): {:.2} ms → {:.2} ms, ratio {:.2} [{:.2}, {:.2}]\n",
                m.iterations, m.before_p50_ms, m.after_p50_ms, m.ratio.ratio, m.ratio.lo, m.ratio.hi
            ));
        }
        for m in &r.migration {
            out.push_str(&format!("{m};\n"));
        }
        out.push_str("-- the statement, rewritten:\n");
        for line in r.rewritten_sql.trim().lines() {
            out.push_str(&format!("--   {line}\n"));
        }
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn complete() -> Advice {
        let text = std::fs::read_to_string("fixtures/runs/complete/advice.json").unwrap();
        serde_json::from_str(&text).unwrap()
    }

    /// After --verify the headline counted the reverted index too: "2
    /// indexes recommended" with one reverted (issue 16, item 5).
    #[test]
    fn the_headline_counts_the_kept_indexes() {
        // Both of this fixture's indexes were reverted by verification.
        let text = std::fs::read_to_string("fixtures/advise-reverted/advice.json").unwrap();
        let advice: Advice = serde_json::from_str(&text).unwrap();
        let text = render_summary(&advice, Path::new("r"));
        let first = text.lines().next().unwrap();
        assert!(
            first.starts_with("crmbench: 0 indexes recommended (2 more reverted by verification)"),
            "{first}"
        );
        assert!(
            !text.contains("order_items_tenant_id_order_id_idx  ("),
            "{text}"
        );
    }

    /// RLS findings were printed once per tenant class (twice), and the
    /// jsonb finding had advice in the summary and "none" in remedies.sql.
    #[test]
    fn rls_findings_once_with_their_classes_and_remedies_sql_agrees() {
        let text = std::fs::read_to_string("fixtures/runs/complete/plans.json").unwrap();
        let plans: crate::explain::PlansFile = serde_json::from_str(&text).unwrap();
        let found = crate::advise::rls_findings(&plans);
        let search: Vec<_> = found
            .iter()
            .filter(|(q, _)| q == "customer_name_search")
            .collect();
        assert_eq!(search.len(), 1, "{search:#?}");
        assert!(
            search[0].1.hint.ends_with("[tenants: big, small]"),
            "{search:#?}"
        );
        let mut advice = complete();
        advice.rls_findings = found;
        advice.remedies.clear();
        let sql = remedies_sql(&advice);
        assert!(!sql.contains("-- none"), "{sql}");
        assert!(
            sql.contains("customer_name_search: no mechanical remedy; advice only"),
            "{sql}"
        );
    }
}
