//! What an audit finds: rules (a closed set, each with its severity and why
//! it matters), findings (one broken rule on one object, with the fix) and
//! the report every output format reads (text, JSON with a
//! `format_version`, SARIF for the located ones).

use serde::Serialize;

/// Version of the JSON report; bump on any incompatible change.
pub const FORMAT_VERSION: u32 = 1;

/// How bad a finding is; `--fail-on` compares against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing, never a failure.
    Info,
    /// A cost or a fragile setup: fails only with `--fail-on warning`.
    Warning,
    /// A cross-tenant leak path or a distribution blocker.
    Error,
}

impl Severity {
    /// The lowercase name used in every output.
    pub fn name(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// Every rule the audit checks. The README documents each with an example.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Rule {
    /// A table with the tenant column has row-level security disabled.
    RlsDisabled,
    /// Row-level security is enabled but not forced (the owner bypasses it).
    RlsNotForced,
    /// No policy restricts some command (it fails closed, but nothing says so).
    PolicyMissing,
    /// A policy admits rows of other tenants (`USING (true)`, an `OR` branch).
    PolicyNotTenant,
    /// A primary key, unique constraint or unique index without the tenant column.
    GlobalUnique,
    /// A foreign key between tenant tables without the tenant column on both sides.
    CrossTenantForeignKey,
    /// A view running with the rights of an owner that bypasses row-level security.
    ViewBypassesRls,
    /// A materialized view over tenant tables (no row-level security on it).
    MatviewExposesTenants,
    /// A `SECURITY DEFINER` function that reads tenant tables.
    SecurityDefinerReadsTenants,
    /// The application role owns a table (it can disable or rewrite its policies).
    AppRoleOwnsTable,
    /// The application role is a superuser or has BYPASSRLS.
    AppRoleBypassesRls,
    /// A table without the tenant column references a tenant table.
    UntenantedReference,
    /// A sequence shared by every tenant (ids leak row counts).
    SharedSequence,
    /// No index of a tenant table leads with the tenant column.
    TenantColumnNotIndexed,
    /// A policy calls a function per row instead of once (`(SELECT f())`).
    PolicyPerRowFunction,
    /// A foreign key whose columns lead no index.
    ForeignKeyUnindexed,
    /// A Prisma `@@index` that does not lead with the tenant field.
    IndexNotTenantLed,
    /// `--probe`: as the application role with one tenant set, a table
    /// returned rows of another tenant.
    IsolationBroken,
    /// `--probe`: as the application role with no tenant set, a table
    /// returned rows instead of failing or returning none.
    NoTenantReadsRows,
    /// `--probe`: the policy made a query measurably slower than the same
    /// tenant filter written in the query.
    RlsCostMeasured,
    /// A workload statement sets the tenant setting itself.
    WorkloadSetsTenant,
}

impl Rule {
    /// Kebab-case id, as in JSON and SARIF.
    pub fn id(self) -> String {
        serde_json::to_value(self)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    /// Every rule, in order (SARIF lists them all).
    pub const ALL: [Rule; 21] = [
        Rule::RlsDisabled,
        Rule::RlsNotForced,
        Rule::PolicyMissing,
        Rule::PolicyNotTenant,
        Rule::GlobalUnique,
        Rule::CrossTenantForeignKey,
        Rule::ViewBypassesRls,
        Rule::MatviewExposesTenants,
        Rule::SecurityDefinerReadsTenants,
        Rule::AppRoleOwnsTable,
        Rule::AppRoleBypassesRls,
        Rule::UntenantedReference,
        Rule::SharedSequence,
        Rule::TenantColumnNotIndexed,
        Rule::PolicyPerRowFunction,
        Rule::ForeignKeyUnindexed,
        Rule::IndexNotTenantLed,
        Rule::IsolationBroken,
        Rule::NoTenantReadsRows,
        Rule::RlsCostMeasured,
        Rule::WorkloadSetsTenant,
    ];

    /// The rule's severity.
    pub fn severity(self) -> Severity {
        use Rule::*;
        match self {
            RlsDisabled
            | RlsNotForced
            | PolicyNotTenant
            | GlobalUnique
            | CrossTenantForeignKey
            | ViewBypassesRls
            | MatviewExposesTenants
            | SecurityDefinerReadsTenants
            | AppRoleOwnsTable
            | AppRoleBypassesRls
            | UntenantedReference
            | IsolationBroken
            | NoTenantReadsRows
            | WorkloadSetsTenant => Severity::Error,
            PolicyMissing
            | TenantColumnNotIndexed
            | PolicyPerRowFunction
            | ForeignKeyUnindexed
            | IndexNotTenantLed
            | RlsCostMeasured => Severity::Warning,
            SharedSequence => Severity::Info,
        }
    }

    /// Whether Citus (distribution by the tenant column) refuses it.
    pub fn distribution_blocker(self) -> bool {
        matches!(self, Rule::GlobalUnique | Rule::CrossTenantForeignKey)
    }

    /// Why the rule matters, in one sentence.
    pub fn why(self) -> &'static str {
        use Rule::*;
        match self {
            RlsDisabled => {
                "without row-level security every query of the application sees every tenant's rows"
            }
            RlsNotForced => {
                "the table's owner (and every view or SECURITY DEFINER function it owns) bypasses non-forced row-level security"
            }
            PolicyMissing => {
                "a command without a policy fails closed today, and the usual quick fix (USING (true)) opens it to every tenant"
            }
            PolicyNotTenant => {
                "a permissive policy that does not compare the tenant column with the setting admits other tenants' rows"
            }
            GlobalUnique => {
                "uniqueness across tenants leaks whether a value exists in another tenant, stops two tenants from holding the same value, and cannot be distributed by tenant (Citus enforces only keys that include the distribution column)"
            }
            CrossTenantForeignKey => {
                "without the tenant column on both sides a row can point into another tenant, and the key cannot be distributed by tenant"
            }
            ViewBypassesRls => {
                "a view without security_invoker reads its tables with its owner's rights: an owner that bypasses row-level security returns every tenant's rows"
            }
            MatviewExposesTenants => {
                "a materialized view has no row-level security: whoever reads it sees every tenant's rows"
            }
            SecurityDefinerReadsTenants => {
                "a SECURITY DEFINER function reads with its owner's rights, past the caller's row-level security"
            }
            AppRoleOwnsTable => {
                "the owner may disable row-level security, drop its policies, and bypasses it when it is not forced"
            }
            AppRoleBypassesRls => "a superuser or BYPASSRLS role ignores every policy",
            UntenantedReference => {
                "rows of a table without the tenant column have no row-level security, yet point at (or are pointed at by) one tenant's rows"
            }
            SharedSequence => {
                "ids from a sequence shared by all tenants leak how many rows other tenants create (a distributed setup handles them)"
            }
            TenantColumnNotIndexed => {
                "every query under the policy filters on the tenant column: without an index leading with it each one scans all tenants"
            }
            PolicyPerRowFunction => {
                "a function in a policy that is not wrapped as a scalar subquery may run once per row instead of once per query"
            }
            ForeignKeyUnindexed => {
                "deleting or updating a referenced row scans the referencing table without an index on the key's columns"
            }
            IndexNotTenantLed => {
                "under row-level security every query filters on the tenant: an index not led by it reads entries of every tenant"
            }
            IsolationBroken => {
                "measured, not inferred: the application, with one tenant set, read rows of another tenant"
            }
            NoTenantReadsRows => {
                "a connection that forgot to set the tenant (a pooled connection, a background job) reads rows instead of failing closed"
            }
            RlsCostMeasured => {
                "measured as the application role: the policy's filter costs more than the same filter written in the query (a per-row function, no index it can use)"
            }
            WorkloadSetsTenant => {
                "row-level security keyed on a session setting is no boundary against the application's own SQL: a query that sets the tenant itself can read any tenant"
            }
        }
    }
}

/// A place in a repository file (a Prisma schema, a migration).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Location {
    /// The file, as given on the command line.
    pub file: String,
    /// 1-based line.
    pub line: usize,
}

/// One broken rule on one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule.
    pub rule: Rule,
    /// Its severity.
    pub severity: Severity,
    /// A Citus distribution blocker.
    pub distribution_blocker: bool,
    /// The object: `table`, `table.constraint`, `view`, `function(args)`, `Model.field`.
    pub object: String,
    /// What was found on this object.
    pub message: String,
    /// Why it matters.
    pub why: String,
    /// The fix: SQL for catalog findings, the corrected Prisma lines for
    /// Prisma ones.
    pub fix: String,
    /// Where, for findings in a repository file.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
}

impl Finding {
    /// A finding of `rule` with the rule's severity and reason.
    pub fn new(
        rule: Rule,
        object: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Finding {
        Finding {
            rule,
            severity: rule.severity(),
            distribution_blocker: rule.distribution_blocker(),
            object: object.into(),
            message: message.into(),
            why: rule.why().into(),
            fix: fix.into(),
            location: None,
        }
    }
}

/// The audit's result, as JSON prints it.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// [`FORMAT_VERSION`].
    pub format_version: u32,
    /// What was audited: `schema crm` or the Prisma schema's path.
    pub source: String,
    /// The tenant column (detected or given).
    pub tenant_column: String,
    /// The tenant setting (detected or given).
    pub setting: String,
    /// How they were found: `detected from N policies`, `given`, `default`.
    pub detected: String,
    /// Whether queries were run as the application role (`--probe`).
    pub probed: bool,
    /// Every finding, errors first.
    pub findings: Vec<Finding>,
}

impl Report {
    /// Sort findings: errors first, then by rule, place in the file, object.
    pub fn sort(&mut self) {
        self.findings.sort_by(|a, b| {
            let place = |f: &Finding| f.location.as_ref().map(|l| (l.file.clone(), l.line));
            b.severity
                .cmp(&a.severity)
                .then(a.rule.cmp(&b.rule))
                .then(place(a).cmp(&place(b)))
                .then(a.object.cmp(&b.object))
        });
    }

    /// How many findings are at `severity`.
    pub fn count(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity == severity)
            .count()
    }

    /// Whether any finding is at or above `fail_on`.
    pub fn fails(&self, fail_on: Severity) -> bool {
        self.findings.iter().any(|f| f.severity >= fail_on)
    }

    /// The human-readable report.
    pub fn render_text(&self) -> String {
        let how = if self.probed {
            "probed as the application role"
        } else if self.source.starts_with("schema ") {
            "catalog only, no query run"
        } else {
            "static, no database"
        };
        let mut out = format!(
            "audit of {}: tenant column {}, setting {} ({}; {how})\n",
            self.source, self.tenant_column, self.setting, self.detected
        );
        // Grouped by rule: its severity and reason once, then each object
        // with what was found and its fix.
        let mut last: Option<Rule> = None;
        for f in &self.findings {
            if last != Some(f.rule) {
                let blocker = if f.distribution_blocker {
                    " [distribution blocker]"
                } else {
                    ""
                };
                out.push_str(&format!(
                    "\n{} {}{blocker}: {}\n",
                    f.severity.name(),
                    f.rule.id(),
                    f.why
                ));
                last = Some(f.rule);
            }
            let at = f
                .location
                .as_ref()
                .map(|l| format!("{}:{}: ", l.file, l.line))
                .unwrap_or_default();
            out.push_str(&format!("  {at}{}: {}\n", f.object, f.message));
            for line in f.fix.lines() {
                out.push_str(&format!("      {line}\n"));
            }
        }
        out.push_str(&format!(
            "\n{} error(s), {} warning(s), {} info\n",
            self.count(Severity::Error),
            self.count(Severity::Warning),
            self.count(Severity::Info)
        ));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_kebab_case_and_severities_order() {
        assert_eq!(Rule::GlobalUnique.id(), "global-unique");
        assert_eq!(
            Rule::SecurityDefinerReadsTenants.id(),
            "security-definer-reads-tenants"
        );
        assert!(Severity::Error > Severity::Warning && Severity::Warning > Severity::Info);
        let mut r = Report {
            format_version: FORMAT_VERSION,
            source: "x".into(),
            tenant_column: "tenant_id".into(),
            setting: "s".into(),
            detected: "given".into(),
            probed: false,
            findings: vec![
                Finding::new(Rule::SharedSequence, "a", "m", "f"),
                Finding::new(Rule::GlobalUnique, "b", "m", "f"),
            ],
        };
        r.sort();
        assert_eq!(r.findings[0].rule, Rule::GlobalUnique);
        assert!(r.fails(Severity::Error) && r.fails(Severity::Warning));
        r.findings.remove(0);
        assert!(!r.fails(Severity::Warning));
    }
}
