//! `schema show`: tables, row counts, sizes, indexes and RLS state.

use std::fmt::Write as _;

use serde::Serialize;

use super::audit::{self, Violation};
use super::{Ownership, ownership};
use crate::error::{Error, Result};
use crate::pg::{self, SCHEMA, Target, quote_ident};

/// Everything `schema show` prints.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaReport {
    /// Database name.
    pub database: String,
    /// Marker state, in words.
    pub ownership: String,
    /// Whether counts are exact (a role that bypasses RLS) or planner estimates.
    pub exact_counts: bool,
    /// One entry per table.
    pub tables: Vec<TableInfo>,
    /// Broken multi-tenant rules (empty when sound).
    pub violations: Vec<Violation>,
}

/// One table.
#[derive(Debug, Clone, Serialize)]
pub struct TableInfo {
    /// Table name.
    pub name: String,
    /// Rows (exact or estimated, see [`SchemaReport::exact_counts`]).
    pub rows: i64,
    /// Heap + indexes + TOAST, bytes.
    pub total_bytes: i64,
    /// RLS enabled.
    pub rls_enabled: bool,
    /// RLS forced.
    pub rls_forced: bool,
    /// Policies on the table.
    pub policies: i64,
    /// Index definitions.
    pub indexes: Vec<String>,
}

/// Gather the report.
pub async fn show(target: &Target) -> Result<SchemaReport> {
    let client = pg::connect(&target.admin()).await?;
    let own = ownership(&client).await?;
    let ownership = match &own {
        Ownership::Absent => {
            return Err(Error::State {
                message: format!("database {} has no CRM schema", target.database()),
                fix: "run `crmbench schema create` (or `crmbench generate`)".into(),
            });
        }
        Ownership::Ours {
            complete,
            seed,
            scale,
        } => format!(
            "crmbench's own ({}{})",
            if *complete {
                "complete"
            } else {
                "INCOMPLETE: last create or load did not finish"
            },
            match (seed, scale) {
                (Some(seed), Some(scale)) => format!(", seed {seed}, scale {scale}"),
                _ => ", no data loaded".into(),
            }
        ),
        Ownership::Foreign(reason) => format!("NOT crmbench's: {reason}"),
    };
    let exact_counts: bool = client
        .query_one(
            "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking role", e))?
        .get(0);
    let mut tables = Vec::new();
    for t in audit::tables(&client, SCHEMA).await? {
        let qualified = format!("{SCHEMA}.{}", quote_ident(&t.table));
        let rows: i64 = if exact_counts {
            client
                .query_one(&format!("SELECT count(*) FROM {qualified}"), &[])
                .await
                .map_err(|e| Error::from_pg(format!("counting {qualified}"), e))?
                .get(0)
        } else {
            client
                .query_one(
                    "SELECT greatest(reltuples, 0)::bigint FROM pg_class WHERE oid = $1::text::regclass",
                    &[&qualified],
                )
                .await
                .map_err(|e| Error::from_pg(format!("estimating {qualified}"), e))?
                .get(0)
        };
        let size_and_indexes = client
            .query_one(
                "SELECT pg_total_relation_size($1::text::regclass), \
                        ARRAY(SELECT pg_get_indexdef(indexrelid) FROM pg_index \
                              WHERE indrelid = $1::text::regclass ORDER BY indexrelid::regclass::text)",
                &[&qualified],
            )
            .await
            .map_err(|e| Error::from_pg(format!("sizing {qualified}"), e))?;
        tables.push(TableInfo {
            name: t.table,
            rows,
            total_bytes: size_and_indexes.get(0),
            rls_enabled: t.enabled,
            rls_forced: t.forced,
            policies: t.policies,
            indexes: size_and_indexes.get(1),
        });
    }
    let violations = audit::audit(&client, SCHEMA).await?;
    Ok(SchemaReport {
        database: target.database().into(),
        ownership,
        exact_counts,
        tables,
        violations,
    })
}

/// Human-readable bytes.
pub fn human_bytes(bytes: i64) -> String {
    let b = bytes as f64;
    match bytes {
        n if n >= 1 << 30 => format!("{:.1} GiB", b / f64::from(1u32 << 30)),
        n if n >= 1 << 20 => format!("{:.1} MiB", b / f64::from(1u32 << 20)),
        n if n >= 1 << 10 => format!("{:.0} kiB", b / 1024.0),
        n => format!("{n} B"),
    }
}

impl SchemaReport {
    /// The table printed by `schema show`.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "database {}: schema {SCHEMA} is {}",
            self.database, self.ownership
        );
        let _ = writeln!(
            out,
            "{:<20} {:>12} {:>10}  {:<16} indexes",
            "table",
            if self.exact_counts {
                "rows"
            } else {
                "rows (est.)"
            },
            "size",
            "RLS"
        );
        for t in &self.tables {
            let rls = match (t.rls_enabled, t.rls_forced) {
                (true, true) => format!("forced, {} pol.", t.policies),
                (true, false) => format!("ENABLED ONLY, {}", t.policies),
                (false, _) => "off".into(),
            };
            let _ = writeln!(
                out,
                "{:<20} {:>12} {:>10}  {:<16} {}",
                t.name,
                t.rows,
                human_bytes(t.total_bytes),
                rls,
                t.indexes.len()
            );
            for ix in &t.indexes {
                let _ = writeln!(out, "    {ix}");
            }
        }
        if self.violations.is_empty() {
            let _ = writeln!(
                out,
                "multi-tenant rules: all hold (RLS forced, keys and foreign keys carry tenant_id)"
            );
        } else {
            let _ = writeln!(out, "multi-tenant rules BROKEN:");
            for v in &self.violations {
                let _ = writeln!(out, "  {}: {}", v.object, v.problem);
            }
        }
        out
    }
}
