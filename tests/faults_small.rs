//! Regression tests for the small faults of issue 17 (items 11 and 12), one
//! per fault, each named after the bug it pins. Tests that need a server use
//! this process's own private cluster (tests/common).

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::Output;

use assert_cmd::Command;
use serde_json::Value;

fn crmbench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env_remove("DATABASE_URL")
        .env_remove("GITHUB_STEP_SUMMARY");
    cmd
}

fn text(o: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    )
}

fn load_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// Write `value` as `<dir>/<name>/results.json` and return that folder.
fn save_results(dir: &Path, name: &str, value: &Value) -> std::path::PathBuf {
    let folder = dir.join(name);
    std::fs::create_dir_all(&folder).unwrap();
    std::fs::write(
        folder.join("results.json"),
        serde_json::to_string(value).unwrap(),
    )
    .unwrap();
    folder
}

#[test]
fn compare_with_no_query_in_common_passed_with_exit_0() {
    let dir = tempfile::tempdir().unwrap();
    let mut r = load_json(Path::new("fixtures/compare/separate-a/results.json"));
    for q in r["queries"].as_array_mut().unwrap() {
        let renamed = format!("{}_renamed", q["name"].as_str().unwrap());
        q["name"] = Value::from(renamed);
    }
    let renamed = save_results(dir.path(), "renamed", &r);
    let o = crmbench()
        .args(["compare", "fixtures/compare/separate-a"])
        .arg(&renamed)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(
        text(&o).contains("no query is in both inputs"),
        "{}",
        text(&o)
    );
}
