//! `crmbench audit`: tenant data governance checks for any schema. The
//! catalog audit reads `pg_catalog` only (row-level security, keys that
//! hold across tenants, paths around the policies, their cost); the Prisma
//! audit reads a `schema.prisma` before any migration exists. The tenant
//! column and setting are detected from the policies unless given.
//!
//! Layout: [`catalog`] loads the facts, [`detect`] reads policy expressions
//! with PostgreSQL's parser, [`rules`] holds one file per rule family,
//! [`prisma`] the static rules, [`model`] the findings and report, and
//! [`sarif`] the code-scanning output of located findings.

pub mod catalog;
pub mod detect;
pub mod model;
pub mod prisma;
pub mod probe;
pub mod rules;
pub mod sarif;
pub mod workload;

use std::collections::BTreeMap;
use std::path::PathBuf;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
pub use model::{FORMAT_VERSION, Finding, Report, Rule, Severity};

/// The tenant column when neither the policies nor the user name one.
pub const DEFAULT_COLUMN: &str = "tenant_id";
/// The tenant setting when neither the policies nor the user name one.
pub const DEFAULT_SETTING: &str = "app.current_tenant_id";

/// What to audit and how.
#[derive(Debug, Clone, Default)]
pub struct AuditOptions {
    /// Schema to audit (catalog audit).
    pub schema: String,
    /// The tenant column, instead of detecting it.
    pub tenant_column: Option<String>,
    /// The tenant setting, instead of detecting it.
    pub setting: Option<String>,
    /// The application role (whose ownership and BYPASSRLS are checked).
    pub app_role: String,
    /// A Prisma schema to audit statically instead of a database.
    pub prisma_schema: Option<PathBuf>,
    /// Also run the probes as the application role ([`probe`]).
    pub probe: bool,
    /// A workload file whose statements are checked ([`workload`]).
    pub workload: Option<PathBuf>,
}

/// Audit the catalog of `opts.schema` on `target`.
pub async fn audit_database(target: &Target, opts: &AuditOptions) -> Result<Report> {
    let client = pg::connect(&target.admin()).await?;
    let exists: bool = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)",
            &[&opts.schema],
        )
        .await
        .map_err(|e| Error::from_pg("looking up the schema", e))?
        .get(0);
    if !exists {
        return Err(Error::Usage {
            message: format!(
                "schema {} does not exist in database {}",
                opts.schema,
                target.database()
            ),
            fix: "name the schema to audit with --schema".into(),
        });
    }
    let cat = catalog::Catalog::load(&client, &opts.schema, &opts.app_role).await?;
    let mut report = audit_catalog(&cat, opts);
    if let Some(path) = &opts.workload {
        let w = crate::workload::Workload::load(path)?;
        let file = path.display().to_string();
        report
            .findings
            .extend(workload::check(&w, &file, &report.setting));
        report.sort();
    }
    if opts.probe {
        let cx = rules::Ctx {
            cat: &cat,
            column: &report.tenant_column,
            setting: &report.setting,
        };
        let found = probe::probe(target, &cx, &opts.app_role).await?;
        report.findings.extend(found);
        report.probed = true;
        report.sort();
    }
    Ok(report)
}

/// The report of the catalog rules on loaded facts.
pub fn audit_catalog(cat: &catalog::Catalog, opts: &AuditOptions) -> Report {
    let (column, setting, detected) = tenant_of(cat, opts);
    let mut report = Report {
        format_version: FORMAT_VERSION,
        source: format!("schema {}", cat.schema),
        findings: rules::check(cat, &column, &setting),
        tenant_column: column,
        setting,
        detected,
        probed: false,
    };
    report.sort();
    report
}

/// The tenant column and setting: given, else the pair the policies
/// compare most often, else the defaults; and how they were found.
fn tenant_of(cat: &catalog::Catalog, opts: &AuditOptions) -> (String, String, String) {
    let mut seen: BTreeMap<(String, String), usize> = BTreeMap::new();
    for p in &cat.policies {
        for e in [&p.using, &p.check].into_iter().flatten() {
            if let Ok(node) = detect::parse_expr(e) {
                for pair in detect::comparisons(&node) {
                    *seen.entry(pair).or_default() += 1;
                }
            }
        }
    }
    // Only pairs on the given column (or setting) count when one is given.
    let best = seen
        .iter()
        .filter(|((c, s), _)| {
            opts.tenant_column.as_ref().is_none_or(|g| g == c)
                && opts.setting.as_ref().is_none_or(|g| g == s)
        })
        .max_by_key(|(_, n)| **n);
    let given = opts.tenant_column.is_some() && opts.setting.is_some();
    let detected = match best {
        _ if given => "given".to_string(),
        Some((_, n)) => format!("detected from {n} policy expressions"),
        None => "defaults: no policy compares a column with a setting".to_string(),
    };
    let column = opts
        .tenant_column
        .clone()
        .or_else(|| best.map(|((c, _), _)| c.clone()))
        .unwrap_or_else(|| DEFAULT_COLUMN.into());
    let setting = opts
        .setting
        .clone()
        .or_else(|| best.map(|((_, s), _)| s.clone()))
        .unwrap_or_else(|| DEFAULT_SETTING.into());
    (column, setting, detected)
}
