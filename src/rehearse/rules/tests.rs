//! One fixture per rule under fixtures/rehearse/rules/: `-- expect: RULE
//! LINE` headers list the findings the file must produce (exactly those),
//! `-- apply-as: file` and `-- size: BYTES` set the context; `safe_*` files
//! expect none.

use std::path::PathBuf;

use super::*;
use crate::rehearse::input::read_migration;

fn fixtures() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fixtures/rehearse/rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "sql"))
        .collect();
    files.sort();
    files
}

fn header<'a>(text: &'a str, key: &str) -> Vec<&'a str> {
    text.lines()
        .filter_map(|l| l.strip_prefix("-- ")?.strip_prefix(key)?.strip_prefix(':'))
        .map(str::trim)
        .collect()
}

fn run_fixture(path: &std::path::Path) -> (Vec<Finding>, Vec<(String, usize)>) {
    let migration = read_migration(path).unwrap();
    let text = &migration.files[0].text;
    let bytes: i64 = header(text, "size")
        .first()
        .map_or(100_000_000, |s| s.parse().unwrap());
    let mut sizes = TableSizes::default();
    for table in ["order", "customer", "interaction", "payment", "store"] {
        sizes.insert("crm", table, bytes);
    }
    let apply_as = match header(text, "apply-as").first() {
        Some(&"file") => ApplyAs::File,
        _ => ApplyAs::Statement,
    };
    let opts = RuleOptions {
        apply_as,
        ..RuleOptions::default()
    };
    let findings = check(&migration, &sizes, &opts).unwrap();
    let expected = header(text, "expect")
        .into_iter()
        .map(|e| {
            let (rule, line) = e.split_once(' ').unwrap();
            (rule.to_string(), line.parse().unwrap())
        })
        .collect();
    (findings, expected)
}

#[test]
fn every_rule_fixture_gives_exactly_its_findings() {
    let files = fixtures();
    assert!(files.len() >= 10, "fixtures missing: {files:?}");
    for path in &files {
        let (findings, mut expected) = run_fixture(path);
        let mut got: Vec<(String, usize)> =
            findings.iter().map(|f| (f.rule.clone(), f.line)).collect();
        got.sort();
        expected.sort();
        assert_eq!(got, expected, "{}: {findings:#?}", path.display());
        let name = path.file_name().unwrap().to_string_lossy();
        assert_eq!(
            name.starts_with("safe_"),
            expected.is_empty(),
            "{name}: safe_ files expect nothing"
        );
    }
}

#[test]
fn every_rule_has_a_fixture() {
    let all: String = fixtures()
        .iter()
        .map(|p| std::fs::read_to_string(p).unwrap())
        .collect();
    for rule in [
        "index-not-concurrent",
        "concurrently-in-transaction",
        "table-rewrite",
        "set-not-null-scan",
        "check-without-not-valid",
        "fk-without-not-valid",
        "constraint-builds-index",
        "no-lock-timeout",
        "long-transaction-strong-lock",
    ] {
        assert!(
            all.contains(&format!("-- expect: {rule} ")),
            "no fixture for {rule}"
        );
    }
}

#[test]
fn findings_name_the_lock_and_size_and_suggestions_parse() {
    for path in fixtures() {
        let (findings, _) = run_fixture(&path);
        for f in findings {
            if f.rule != "concurrently-in-transaction" {
                assert!(f.lock.is_some() && f.table.is_some(), "{f:?}");
            }
            if let Some(s) = &f.suggestion {
                // Suggestions with placeholders (<type>, …) are advice, not SQL.
                if !s.contains('<') && !s.contains('…') {
                    sql::split(s).unwrap_or_else(|e| panic!("{}: {s}: {e}", f.rule));
                }
            }
        }
    }
}

#[test]
fn index_suggestion_is_the_same_index_built_concurrently() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rehearse/rules/index_not_concurrent.sql");
    let (findings, _) = run_fixture(&path);
    let f = &findings[0];
    assert_eq!(f.lock, Some(LockMode::Share));
    assert_eq!(f.table_bytes, Some(100_000_000));
    assert!(f.message.contains("100 MB"), "{}", f.message);
    let s = f.suggestion.as_deref().unwrap();
    assert!(
        s.starts_with("CREATE INDEX CONCURRENTLY order_placed_idx ON crm.\"order\""),
        "{s}"
    );
}

#[test]
fn not_valid_pair_is_suggested_for_a_foreign_key() {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures/rehearse/rules/fk_without_not_valid.sql");
    let (findings, _) = run_fixture(&path);
    let s = findings[0].suggestion.as_deref().unwrap();
    assert!(s.contains("NOT VALID;"), "{s}");
    assert!(
        s.contains("VALIDATE CONSTRAINT \"interaction_customer_fk\";"),
        "{s}"
    );
    assert_eq!(findings[0].lock, Some(LockMode::ShareRowExclusive));
}

#[test]
fn statement_locks_name_the_mode_taken() {
    let locks = statement_locks("CREATE INDEX CONCURRENTLY i ON crm.customer (email)");
    assert_eq!(locks[0].mode, LockMode::ShareUpdateExclusive);
    let locks = statement_locks("ALTER TABLE a ADD FOREIGN KEY (b) REFERENCES c (id)");
    assert_eq!(locks.len(), 2);
    assert!(locks.iter().all(|l| l.mode == LockMode::ShareRowExclusive));
    let locks = statement_locks("LOCK TABLE crm.\"order\" IN SHARE MODE");
    assert_eq!(locks[0].table, "crm.order");
    assert_eq!(locks[0].mode, LockMode::Share);
}
