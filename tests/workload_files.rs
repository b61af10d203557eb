//! Workload files: the built-in one and every valid fixture parse; every
//! broken fixture in fixtures/workloads/ fails with the error text and line
//! written in its header (`# expect:` and `# line:`). No database needed.

#![allow(clippy::unwrap_used)]

use std::path::Path;

use crmbench::workload::Workload;

#[test]
fn built_in_workload_has_the_crm_queries() {
    let w = Workload::load(Path::new("workloads/crm.toml")).unwrap();
    assert!(w.queries.len() >= 16, "{} queries", w.queries.len());
    for wanted in [
        "customer_by_email",
        "customer_by_phone",
        "top_spenders",
        "place_order",
        "move_deal_stage",
        "log_interaction",
        "update_customer",
        "low_stock_by_store",
    ] {
        assert!(w.query(wanted).is_some(), "missing {wanted}");
    }
    assert!(
        w.queries.iter().all(|q| q.screen.is_some()),
        "every query names its screen"
    );
    assert_eq!(
        w.context.tenant_setting.as_deref(),
        Some("app.current_tenant_id")
    );
}

#[test]
fn every_fixture_behaves_as_its_header_says() {
    let mut broken = 0;
    for entry in std::fs::read_dir("fixtures/workloads").unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().to_string();
        let text = std::fs::read_to_string(&path).unwrap();
        let result = Workload::parse(&text, Path::new(&name));
        if name.starts_with("valid") {
            result.unwrap_or_else(|e| panic!("{name}: {e}"));
            continue;
        }
        broken += 1;
        let header = |key: &str| {
            text.lines()
                .find_map(|l| l.strip_prefix(&format!("# {key}: ")))
                .unwrap_or_else(|| panic!("{name} lacks `# {key}:`"))
                .to_string()
        };
        let err = result.expect_err(&format!("{name} parsed")).to_string();
        assert!(err.contains(&header("expect")), "{name}: {err}");
        assert!(
            err.starts_with(&format!("{name}:{}:", header("line"))),
            "{name}: {err}"
        );
    }
    assert!(broken >= 8, "only {broken} broken fixtures");
}
