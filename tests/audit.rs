//! `crmbench audit` on real catalogs: crmbench's own schema has no error,
//! every rule fires on its fixture schema (fixtures/audit/catalog: a sound
//! base plus one defect) and only that rule, the exit codes follow
//! --fail-on, and the Prisma audit flags the common Customer model and
//! emits corrected lines that `prisma validate` accepts and that audit
//! clean; its SARIF validates against the vendored SARIF 2.1.0 schema.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeSet;
use std::path::Path;

use assert_cmd::Command;
use crmbench::audit::{self, AuditOptions, Rule, Severity};
use crmbench::pg::{self, Target, private::SUPERUSER};
use crmbench::schema::{self, CreateOptions};

const FIXTURES: &str = "fixtures/audit/catalog";
const CUSTOMER: &str = "fixtures/audit/prisma/customer.prisma";

fn options(schema: &str) -> AuditOptions {
    AuditOptions {
        schema: schema.into(),
        app_role: pg::roles::APP.into(),
        ..AuditOptions::default()
    }
}

/// One database holding the CRM schema and every fixture schema, made once.
async fn database() -> Target {
    static ONCE: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();
    let target = Target::private(common::cluster().server.clone()).on_database("audit_all");
    ONCE.get_or_init(|| async {
        let target = common::fresh_database("audit_all").await;
        schema::create(&target, &CreateOptions::default())
            .await
            .expect("schema create");
        let admin = pg::connect(&target.admin()).await.unwrap();
        let base = std::fs::read_to_string(format!("{FIXTURES}/base.sql")).unwrap();
        for (rule, sql) in fixtures() {
            let s = schema_of(&rule);
            let script = format!("{base}\n{sql}").replace("{S}", &s);
            admin
                .batch_execute(&script)
                .await
                .unwrap_or_else(|e| panic!("fixture {rule}: {:?}", e.as_db_error()));
        }
    })
    .await;
    target
}

/// (rule id, defect SQL) of every catalog fixture.
fn fixtures() -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = std::fs::read_dir(FIXTURES)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_stem().is_some_and(|s| s != "base"))
        .map(|p| {
            let rule = p.file_stem().unwrap().to_string_lossy().to_string();
            (rule, std::fs::read_to_string(&p).unwrap())
        })
        .collect();
    out.sort();
    out
}

fn schema_of(rule: &str) -> String {
    format!("fx_{}", rule.replace('-', "_"))
}

#[tokio::test]
async fn crmbench_schema_has_no_error() {
    let target = database().await;
    let report = audit::audit_database(&target, &options("crm"))
        .await
        .unwrap();
    assert_eq!(report.tenant_column, "tenant_id");
    assert_eq!(report.setting, "app.current_tenant_id");
    assert!(
        report.detected.starts_with("detected"),
        "{}",
        report.detected
    );
    let errors: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.severity == Severity::Error)
        .collect();
    assert!(errors.is_empty(), "{}", report.render_text());
}

#[tokio::test]
async fn every_rule_fires_on_its_fixture_and_only_it() {
    let target = database().await;
    let all = fixtures();
    assert_eq!(all.len(), 16, "a fixture per catalog rule");
    let mut fired = BTreeSet::new();
    for (rule, sql) in &all {
        let mut opts = options(&schema_of(rule));
        if let Some(role) = sql.lines().find_map(|l| l.strip_prefix("-- app-role: ")) {
            opts.app_role = role.trim().into();
        }
        let report = audit::audit_database(&target, &opts).await.unwrap();
        let ids: BTreeSet<String> = report.findings.iter().map(|f| f.rule.id()).collect();
        assert_eq!(
            ids,
            BTreeSet::from([rule.clone()]),
            "fixture {rule}:\n{}",
            report.render_text()
        );
        fired.insert(rule.clone());
    }
    // Every catalog rule has its fixture (the Prisma-only rule, the probes
    // and the workload rule have tests of their own).
    for r in Rule::ALL {
        if !matches!(
            r,
            Rule::IndexNotTenantLed
                | Rule::IsolationBroken
                | Rule::NoTenantReadsRows
                | Rule::RlsCostMeasured
                | Rule::WorkloadSetsTenant
        ) {
            assert!(fired.contains(&r.id()), "no fixture fires {}", r.id());
        }
    }
}

#[tokio::test]
async fn leak_paths_name_the_object_and_the_fix() {
    let target = database().await;
    let view = audit::audit_database(&target, &options("fx_view_bypasses_rls"))
        .await
        .unwrap();
    let f = &view.findings[0];
    assert_eq!(f.object, "customer_emails");
    assert!(f.message.contains(SUPERUSER), "{}", f.message);
    assert_eq!(
        f.fix,
        "ALTER VIEW fx_view_bypasses_rls.customer_emails SET (security_invoker = on);"
    );
    let definer = audit::audit_database(&target, &options("fx_security_definer_reads_tenants"))
        .await
        .unwrap();
    assert_eq!(definer.findings[0].object, "customer_total()");
    assert!(definer.findings[0].fix.contains("SECURITY INVOKER"));
}

fn crmbench(database: &str) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    cmd.env(
        "DATABASE_URL",
        common::cluster().server.url(SUPERUSER, database),
    )
    .env(
        "CRMBENCH_DATA_DIR",
        "/nonexistent/crmbench-must-not-be-used",
    );
    cmd
}

#[tokio::test]
async fn exit_codes_follow_fail_on_and_json_is_versioned() {
    database().await;
    let run = |schema: &str, extra: &[&str]| {
        let out = crmbench("audit_all")
            .args(["audit", "--schema", schema])
            .args(extra)
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).to_string(),
        )
    };
    let (code, text) = run("fx_global_unique", &["--format", "json"]);
    assert_eq!(code, Some(1), "{text}");
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["findings"][0]["rule"], "global-unique");
    assert_eq!(json["findings"][0]["distribution_blocker"], true);
    // A warning fails only with --fail-on warning; info never fails.
    assert_eq!(run("fx_foreign_key_unindexed", &[]).0, Some(0));
    assert_eq!(
        run("fx_foreign_key_unindexed", &["--fail-on", "warning"]).0,
        Some(1)
    );
    assert_eq!(
        run("fx_shared_sequence", &["--fail-on", "warning"]).0,
        Some(0)
    );
    let (code, text) = run("no_such_schema", &[]);
    assert_eq!(code, Some(2), "{text}");
}

#[test]
fn prisma_customer_gets_corrected_lines_that_prisma_accepts() {
    let text = std::fs::read_to_string(CUSTOMER).unwrap();
    let found = audit::prisma::check(&text, CUSTOMER, "tenant_id");
    let got: Vec<(String, usize)> = found
        .iter()
        .map(|c| {
            (
                c.finding.rule.id(),
                c.finding.location.as_ref().unwrap().line,
            )
        })
        .collect();
    assert_eq!(
        got,
        [
            ("global-unique".to_string(), 20),
            ("global-unique".into(), 22),
            ("index-not-tenant-led".into(), 28),
            ("index-not-tenant-led".into(), 29),
            ("global-unique".into(), 34),
            ("cross-tenant-foreign-key".into(), 39),
            ("foreign-key-unindexed".into(), 39),
        ]
    );
    let email = &found[1].finding;
    assert_eq!(email.object, "Customer.email");
    assert_eq!(
        email.fix,
        "  email    String\n  @@unique([tenantId, email])"
    );
    assert!(
        found[5]
            .finding
            .fix
            .contains("@relation(fields: [tenantId, customerId], references: [tenantId, id])")
    );

    let edits: Vec<_> = found.into_iter().flat_map(|c| c.edits).collect();
    let fixed = audit::prisma::apply(&text, &edits);
    assert!(
        audit::prisma::check(&fixed, CUSTOMER, "tenant_id").is_empty(),
        "{fixed}"
    );
    let (ok, out) = common::prisma::validate(&fixed);
    assert!(
        ok,
        "prisma validate rejected the corrected schema:\n{out}\n{fixed}"
    );
    // The check has teeth: the relation fixed on one side only is refused.
    let half = fixed.replace("@@id([tenantId, id])", "");
    assert!(!common::prisma::validate(&half).0);
}

#[test]
fn sarif_has_a_location_per_result_and_validates() {
    let out = Command::cargo_bin("crmbench")
        .unwrap()
        .args(["audit", "--prisma-schema", CUSTOMER, "--format", "sarif"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let sarif: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let results = sarif["runs"][0]["results"].as_array().unwrap();
    assert_eq!(results.len(), 7);
    for r in results {
        let loc = &r["locations"][0]["physicalLocation"];
        assert_eq!(loc["artifactLocation"]["uri"], CUSTOMER);
        assert!(loc["region"]["startLine"].as_u64().unwrap() > 0);
    }
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("out.sarif");
    std::fs::write(&file, &out.stdout).unwrap();
    validate_sarif(&file);
}

/// Validate against fixtures/audit/sarif-schema-2.1.0.json with Python's
/// jsonschema (installed by .ci/run).
fn validate_sarif(file: &Path) {
    let script = "import json, sys, jsonschema\n\
                  schema = json.load(open('fixtures/audit/sarif-schema-2.1.0.json'))\n\
                  jsonschema.validate(json.load(open(sys.argv[1])), schema)\n";
    let out = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(file)
        .output()
        .expect("python3 with jsonschema is needed for this test");
    assert!(
        out.status.success(),
        "SARIF does not validate:\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn probe_runs_as_the_app_role_and_finds_leaks_only_where_there_are_some() {
    let target = common::generated("audit_probe", 0.001, 7).await;
    let mut opts = options("crm");
    opts.probe = true;
    let report = audit::audit_database(&target, &opts).await.unwrap();
    assert!(report.probed);
    assert!(
        report
            .render_text()
            .contains("probed as the application role"),
        "{}",
        report.render_text()
    );
    let probed: Vec<_> = report
        .findings
        .iter()
        .filter(|f| matches!(f.rule, Rule::IsolationBroken | Rule::NoTenantReadsRows))
        .collect();
    assert!(probed.is_empty(), "{}", report.render_text());

    // The leaky fixture, with rows: tenant a's own, one public row of b, and
    // a fallback that opens every row when no tenant is set.
    let admin = pg::connect(&target.admin()).await.unwrap();
    let base = std::fs::read_to_string(format!("{FIXTURES}/base.sql")).unwrap();
    let leak = std::fs::read_to_string(format!("{FIXTURES}/policy-not-tenant.sql")).unwrap();
    let a = "00000000-0000-0000-0000-00000000000a";
    let b = "00000000-0000-0000-0000-00000000000b";
    let script = format!(
        "{base}\n{leak}\n\
         ALTER POLICY tenant_isolation ON {{S}}.customers USING (tenant_id::text = \
             coalesce(nullif(current_setting('app.current_tenant_id', true), ''), tenant_id::text));\n\
         ALTER POLICY public_rows ON {{S}}.customers \
             USING (tenant_id::text = current_setting('app.current_tenant_id', true) OR is_public);\n\
         INSERT INTO {{S}}.tenants VALUES ('{a}', 'a'), ('{b}', 'b');\n\
         INSERT INTO {{S}}.customers VALUES ('{a}', 1, 'x@a', false), ('{a}', 2, 'y@a', false), \
             ('{a}', 3, 'z@a', false), ('{b}', 1, 'x@b', true);\n\
         GRANT USAGE ON SCHEMA {{S}} TO {app}; GRANT SELECT ON ALL TABLES IN SCHEMA {{S}} TO {app};",
        app = pg::roles::APP
    )
    .replace("{S}", "fx_probe");
    admin.batch_execute(&script).await.unwrap();
    let mut opts = options("fx_probe");
    opts.probe = true;
    let report = audit::audit_database(&target, &opts).await.unwrap();
    let find = |rule: Rule| {
        report
            .findings
            .iter()
            .find(|f| f.rule == rule)
            .unwrap_or_else(|| panic!("no {}:\n{}", rule.id(), report.render_text()))
    };
    let leak = find(Rule::IsolationBroken);
    assert_eq!(leak.object, "customers");
    assert!(
        leak.message.contains(a) && leak.message.contains("read 1 row(s)"),
        "{}",
        leak.message
    );
    let open = find(Rule::NoTenantReadsRows);
    assert!(open.message.contains("read 4 row(s)"), "{}", open.message);
    assert!(report.fails(Severity::Error));
}

#[tokio::test]
async fn a_workload_statement_setting_the_tenant_is_an_error_at_its_line() {
    let target = database().await;
    let mut opts = options("crm");
    opts.workload = Some("workloads/crm.toml".into());
    let report = audit::audit_database(&target, &opts).await.unwrap();
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.rule == Rule::WorkloadSetsTenant),
        "{}",
        report.render_text()
    );
    let text = format!(
        "name = \"leaky\"\n{}\n[[query]]\nname = \"any_tenant\"\nkind = \"read\"\nweight = 1\n\
         sql = \"SELECT set_config('app.current_tenant_id', $1, true), count(*) FROM crm.customers\"\n\
         params = [ {{ tenant = true }} ]\n",
        common::CONTEXT
    );
    let (_dir, path) = common::write_workload(&text);
    opts.workload = Some(path.clone().into());
    let report = audit::audit_database(&target, &opts).await.unwrap();
    let f = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::WorkloadSetsTenant)
        .unwrap_or_else(|| panic!("{}", report.render_text()));
    assert_eq!(f.object, "any_tenant");
    let at = f.location.as_ref().unwrap();
    assert_eq!(
        (at.file.as_str(), at.line),
        (path.as_str(), 12),
        "the sql key's line"
    );
    assert!(report.fails(Severity::Error));
}

/// `rls-cost-measured` fires where the policy is orders of magnitude slower
/// than the same filter written in the query: a policy calling a function
/// that sleeps 1 ms per row, over 300 rows (≈ 300 ms against well under
/// 1 ms) — a gap no machine's noise closes, so this is no timing assertion.
#[tokio::test]
async fn a_policy_far_slower_than_the_written_filter_is_measured() {
    let target = database().await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let base = std::fs::read_to_string(format!("{FIXTURES}/base.sql")).unwrap();
    let a = "00000000-0000-0000-0000-00000000000a";
    let script = format!(
        "{base}\n\
         CREATE FUNCTION {{S}}.slow_tenant(t uuid) RETURNS boolean LANGUAGE plpgsql STABLE AS $$ \
           BEGIN PERFORM pg_sleep(0.001); \
           RETURN t::text = current_setting('app.current_tenant_id', true); END $$;\n\
         INSERT INTO {{S}}.tenants VALUES ('{a}', 'a');\n\
         INSERT INTO {{S}}.customers SELECT '{a}', g, 'c' || g || '@a' FROM generate_series(1, 300) g;\n\
         ANALYZE {{S}}.customers;\n\
         GRANT USAGE ON SCHEMA {{S}} TO {app}; GRANT SELECT ON ALL TABLES IN SCHEMA {{S}} TO {app};",
        app = pg::roles::APP
    )
    .replace("{S}", "fx_cost");
    admin.batch_execute(&script).await.unwrap();
    let mut opts = options("fx_cost");
    opts.probe = true;
    // The base policy costs what the written filter costs: nothing to say.
    let report = audit::audit_database(&target, &opts).await.unwrap();
    assert!(
        !report
            .findings
            .iter()
            .any(|f| f.rule == Rule::RlsCostMeasured),
        "{}",
        report.render_text()
    );
    admin
        .batch_execute(
            "ALTER POLICY tenant_isolation ON fx_cost.customers \
             USING (fx_cost.slow_tenant(tenant_id))",
        )
        .await
        .unwrap();
    let report = audit::audit_database(&target, &opts).await.unwrap();
    let cost = report
        .findings
        .iter()
        .find(|f| f.rule == Rule::RlsCostMeasured)
        .unwrap_or_else(|| panic!("no rls-cost-measured:\n{}", report.render_text()));
    assert_eq!(cost.object, "customers");
    assert!(cost.message.contains(a), "{}", cost.message);
    assert!(cost.fix.contains("CREATE INDEX ON"), "{}", cost.fix);
}
