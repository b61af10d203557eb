//! `crmbench compare` as CI runs it: the built binary on fixture files
//! (fixtures/compare/, measured with fixtures/compare/gate.toml on the private
//! server: a paired A/A run against an identical clone, two separate runs, and
//! plans of a clone whose email indexes were dropped). Exit codes are the API.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

const PAIRED: &str = "fixtures/compare/paired-aa";
const SEP_A: &str = "fixtures/compare/separate-a";
const SEP_B: &str = "fixtures/compare/separate-b";
const NOIDX_PLANS: &str = "fixtures/compare/candidate-noidx";

fn compare(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .arg("compare")
        .args(args)
        .env_remove("GITHUB_STEP_SUMMARY")
        .output()
        .unwrap()
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn code(o: &Output) -> i32 {
    o.status.code().unwrap()
}

fn load(folder: &str) -> Value {
    let path = Path::new(folder).join("results.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Write `value` as `<dir>/<name>/results.json` and return that folder.
fn save(dir: &Path, name: &str, value: &Value) -> PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("results.json"),
        serde_json::to_string(value).unwrap(),
    )
    .unwrap();
    folder
}

fn query<'a>(results: &'a mut Value, name: &str) -> &'a mut Value {
    results["queries"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .find(|q| q["name"] == name)
        .unwrap()
}

fn scale_u64(v: &mut Value, factor: f64) {
    *v = Value::from((v.as_u64().unwrap() as f64 * factor).round() as u64);
}

/// Make one side of a query `factor` times slower, as a real shift would
/// show in the file: the HDR histogram (decoded, every value scaled,
/// re-encoded), the percentiles derived from it, and the per-interval series.
fn shift_side(side: &mut Value, factor: f64) {
    let h = crmbench::stats::decode(side["histogram"].as_str().unwrap()).unwrap();
    let mut scaled = crmbench::stats::new_hist();
    for v in h.iter_recorded() {
        let value = (v.value_iterated_to() as f64 * factor).round() as u64;
        scaled.record_n(value, v.count_at_value()).unwrap();
    }
    side["histogram"] = Value::from(crmbench::stats::encode(&scaled));
    side["latency"] = serde_json::to_value(crmbench::stats::summarize(&scaled)).unwrap();
    for i in side["intervals"].as_array_mut().unwrap() {
        for k in ["p50_us", "p95_us", "p99_us"] {
            scale_u64(&mut i[k], factor);
        }
    }
}

/// A paired run whose candidate side of `name` is `factor` times slower. A
/// percentile of scaled values is the scaled percentile, so every bootstrap
/// ratio (and so the interval) scales by exactly `factor` too.
fn shifted_paired(name: &str, factor: f64) -> Value {
    let mut r = load(PAIRED);
    let q = query(&mut r, name);
    shift_side(&mut q["candidate"], factor);
    for p in ["p50", "p95", "p99"] {
        for k in ["ratio", "lo", "hi"] {
            let v = q["ratios"][p][k].as_f64().unwrap();
            q["ratios"][p][k] = Value::from(v * factor);
        }
    }
    r
}

/// Issue 12: an interval across the threshold (the short A/A fixture's
/// customer_by_email: [-2.9%, +12.5%]) shows neither a regression nor its
/// absence: inconclusive, exit 2, with what would decide it; `--inconclusive`
/// chooses the exit code.
#[test]
fn a_wide_interval_is_inconclusive_not_a_pass() {
    let o = compare(&[PAIRED]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let out = text(&o);
    assert!(out.contains("## crmbench compare: INCONCLUSIVE"), "{out}");
    assert!(
        out.contains("customer_by_email: inconclusive") && out.contains("longer"),
        "{out}"
    );
    let o = compare(&[PAIRED, "--inconclusive", "pass"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let o = compare(&[PAIRED, "--inconclusive", "fail"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
}

#[test]
fn identical_input_is_never_a_regression() {
    // Separate runs bootstrap each side's series on its own: even a file
    // against itself shows only that nothing regressed, not equivalence.
    for (a, b) in [(SEP_A, SEP_A), (SEP_B, SEP_B), (PAIRED, PAIRED)] {
        let o = compare(&[a, b, "--inconclusive", "pass"]);
        assert_eq!(code(&o), 0, "{a} vs {b}: {}", text(&o));
    }
}

#[test]
fn two_separate_runs_of_one_setup_pass_and_say_they_are_separate() {
    for (a, b) in [(SEP_A, SEP_B), (SEP_B, SEP_A)] {
        let o = compare(&[a, b, "--inconclusive", "pass"]);
        assert_eq!(code(&o), 0, "{}", text(&o));
        assert!(
            text(&o).contains("Verdict from separate runs"),
            "{}",
            text(&o)
        );
        assert!(text(&o).contains("Throughput:"), "{}", text(&o));
    }
}

#[test]
fn synthetic_20_percent_p95_shift_in_a_paired_run_fails_naming_the_query() {
    let dir = tempfile::tempdir().unwrap();
    let folder = save(
        dir.path(),
        "shifted",
        &shifted_paired("customer_orders", 1.2),
    );
    let o = compare(&[folder.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    let row = out
        .lines()
        .find(|l| l.starts_with("| customer_orders |"))
        .unwrap();
    assert!(row.ends_with("| **REGRESSION** |"), "{row}");
    assert!(out.contains("- customer_orders: p95 regression"), "{out}");
    // The other queries were not touched and are not called regressions.
    let other = out
        .lines()
        .find(|l| l.starts_with("| customer_by_email |"))
        .unwrap();
    assert!(!other.contains("REGRESSION"), "{other}");
}

#[test]
fn metric_p50_gates_the_median() {
    let dir = tempfile::tempdir().unwrap();
    let folder = save(
        dir.path(),
        "shifted",
        &shifted_paired("update_customer", 1.2),
    );
    let o = compare(&[folder.to_str().unwrap(), "--metric", "p50"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("| query | baseline p50 | current p50 |"),
        "{out}"
    );
    assert!(out.contains("- update_customer: p50 regression"), "{out}");
    let o = compare(&[PAIRED, "--metric", "p50", "--inconclusive", "pass"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn separate_runs_need_a_bigger_shift_than_paired_ones() {
    let dir = tempfile::tempdir().unwrap();
    let shifted = |factor: f64| {
        let mut r = load(SEP_A);
        shift_side(&mut query(&mut r, "update_customer")["baseline"], factor);
        r
    };
    let small = save(dir.path(), "plus20", &shifted(1.2));
    let big = save(dir.path(), "double", &shifted(2.0));
    // +20% is inside the separate-run noise band: not called a regression.
    let o = compare(&[SEP_A, small.to_str().unwrap()]);
    assert_ne!(code(&o), 1, "{}", text(&o));
    // Twice as slow is.
    let o = compare(&[SEP_A, big.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("- update_customer: p95 regression"));
}

#[test]
fn malformed_file_exits_2_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.json");
    std::fs::write(&path, "{\"format_version\": 1, \"queries\": [").unwrap();
    let o = compare(&[path.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("broken.json"), "{}", text(&o));
    // Valid JSON, wrong shape: still 2 and still named.
    std::fs::write(&path, "{\"format_version\": 1}").unwrap();
    let o = compare(&[SEP_A, path.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("broken.json"), "{}", text(&o));
}

#[test]
fn missing_file_exits_2() {
    let o = compare(&[SEP_A, "fixtures/compare/no-such-run"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("no-such-run"), "{}", text(&o));
}

#[test]
fn unknown_format_version_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = load(SEP_B);
    r["format_version"] = Value::from(99);
    let folder = save(dir.path(), "future", &r);
    let o = compare(&[SEP_A, folder.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("format_version 99"), "{}", text(&o));
}

#[test]
fn a_single_unpaired_run_exits_2() {
    let o = compare(&[SEP_A]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("not a paired run"), "{}", text(&o));
}

#[test]
fn too_few_samples_is_undecidable_with_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = load(PAIRED);
    let q = query(&mut r, "update_customer");
    q["candidate"]["count"] = Value::from(5);
    let folder = save(dir.path(), "few", &r);
    let o = compare(&[folder.to_str().unwrap()]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(
        text(&o).contains("update_customer: too few samples"),
        "{}",
        text(&o)
    );
}

#[test]
fn usage_errors_exit_2() {
    let o = compare(&[PAIRED, "--threshold", "lots"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
    let o = compare(&[PAIRED, "--format", "xml"]);
    assert_eq!(code(&o), 2, "{}", text(&o));
}

#[test]
fn a_new_sqlstate_above_the_rate_fails_and_below_it_passes() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = load(PAIRED);
    let q = query(&mut r, "customer_orders");
    let ok = q["candidate"]["count"].as_u64().unwrap();
    // 5% of the candidate's transactions fail with undefined_column.
    q["candidate"]["errors"]["42703"] = Value::from(ok / 19);
    let folder = save(dir.path(), "errors", &r);
    let o = compare(&[folder.to_str().unwrap()]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(
        text(&o).contains("customer_orders: new SQLSTATE 42703"),
        "{}",
        text(&o)
    );
    let o = compare(&[
        folder.to_str().unwrap(),
        "--max-error-rate",
        "10%",
        "--inconclusive",
        "pass",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(
        text(&o).contains("SQLSTATE 42703"),
        "listed even when below the rate"
    );
}

#[test]
fn added_and_removed_queries_are_listed_not_an_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = load(SEP_A);
    query(&mut r, "update_customer")["name"] = Value::from("update_customer_v2");
    let folder = save(dir.path(), "renamed", &r);
    let o = compare(&[SEP_A, folder.to_str().unwrap(), "--inconclusive", "pass"]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    assert!(text(&o).contains("Added queries: update_customer_v2"));
    assert!(text(&o).contains("Removed queries: update_customer"));
}

#[test]
fn plan_changes_are_reported_and_fail_only_when_asked() {
    let o = compare(&[
        PAIRED,
        "--candidate-plans",
        NOIDX_PLANS,
        "--inconclusive",
        "pass",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
    let out = text(&o);
    assert!(
        out.contains("customer_by_email (big tenant, statement 0)"),
        "{out}"
    );
    assert!(
        out.contains("Index Scan using customers_email_idx"),
        "{out}"
    );
    assert!(out.contains("customers_tenant_id_idx"), "{out}");
    assert!(
        !out.contains("customer_orders (big tenant"),
        "unchanged plan listed: {out}"
    );
    let o = compare(&[
        PAIRED,
        "--candidate-plans",
        NOIDX_PLANS,
        "--fail-on-plan-change",
    ]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    assert!(text(&o).contains("customer_by_email: plan changed"));
    // The same plans on both sides: nothing to report.
    let o = compare(&[
        PAIRED,
        "--candidate-plans",
        PAIRED,
        "--fail-on-plan-change",
        "--inconclusive",
        "pass",
    ]);
    assert_eq!(code(&o), 0, "{}", text(&o));
}

#[test]
fn json_output_is_versioned_and_carries_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let folder = save(
        dir.path(),
        "shifted",
        &shifted_paired("customer_by_email", 1.3),
    );
    let o = compare(&[folder.to_str().unwrap(), "--format", "json"]);
    assert_eq!(code(&o), 1, "{}", text(&o));
    let v: Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["format_version"], 1);
    assert_eq!(v["kind"], "paired");
    assert_eq!(v["verdict"], "fail");
    assert_eq!(v["exit_code"], 1);
    let q = v["queries"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["name"] == "customer_by_email")
        .unwrap();
    assert_eq!(q["verdict"], "regression");
}

#[test]
fn github_step_summary_gets_the_table_appended() {
    let dir = tempfile::tempdir().unwrap();
    let summary = dir.path().join("summary.md");
    std::fs::write(&summary, "# earlier step\n").unwrap();
    for _ in 0..2 {
        let o = Command::new(env!("CARGO_BIN_EXE_crmbench"))
            .args([
                "compare",
                PAIRED,
                "--format",
                "json",
                "--inconclusive",
                "pass",
            ])
            .env("GITHUB_STEP_SUMMARY", &summary)
            .output()
            .unwrap();
        assert_eq!(code(&o), 0, "{}", text(&o));
    }
    let written = std::fs::read_to_string(&summary).unwrap();
    assert!(written.starts_with("# earlier step\n"), "{written}");
    // Markdown even when stdout is JSON, appended once per call.
    assert_eq!(
        written.matches("| query | baseline p95 |").count(),
        2,
        "{written}"
    );
    assert!(written.contains("| customer_orders |"));
}

#[test]
fn unwritable_step_summary_exits_2() {
    let o = Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .args(["compare", PAIRED])
        .env("GITHUB_STEP_SUMMARY", "/nonexistent-dir/summary.md")
        .output()
        .unwrap();
    assert_eq!(code(&o), 2, "{}", text(&o));
    assert!(text(&o).contains("/nonexistent-dir/summary.md"));
}
