//! Regression tests for the small faults of issue 17 (items 11 and 12), one
//! per fault, each named after the bug it pins. Tests that need a server use
//! this process's own private cluster (tests/common).

#![allow(clippy::unwrap_used)]

mod common;

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

/// Histograms whose V2 header claims a 4 GiB payload (0xFFFFFFFF bytes):
/// uncompressed, and inside the compressed form crmbench writes. Made with
/// Python: `struct.pack('>IIIIQQd', 0x1c849313, 0xFFFFFFFF, 0, 3, 1,
/// 3600000000, 1.0)`, then `0x1c849314`, the length and `zlib.compress` of it.
const CLAIMS_4_GB: [&str; 2] = [
    "HISTE/////8AAAAAAAAAAwAAAAAAAAABAAAAANaTpAA/8AAAAAAAAA==",
    "HISTFAAAAB94nJNpmSz8HwgYIIAZSjOCiGuTlzDYf4AIAADaUAiD",
];

#[test]
fn histogram_header_claiming_4_gb_allocated_it_before_failing() {
    let dir = tempfile::tempdir().unwrap();
    for (i, hist) in CLAIMS_4_GB.iter().enumerate() {
        let mut r = load_json(Path::new("fixtures/compare/separate-a/results.json"));
        r["queries"][0]["baseline"]["histogram"] = Value::from(*hist);
        let bad = save_results(dir.path(), &format!("bad{i}"), &r);
        // Under a 1.5 GB address-space limit the 4 GB buffer cannot be had:
        // before the fix the process aborted (out of memory), now the bytes
        // present bound it and the error names the input.
        let o = std::process::Command::new("sh")
            .arg("-c")
            .arg("ulimit -v 1500000 && exec \"$0\" compare fixtures/compare/separate-a \"$1\"")
            .arg(env!("CARGO_BIN_EXE_crmbench"))
            .arg(&bad)
            .output()
            .unwrap();
        assert_eq!(o.status.code(), Some(2), "{}", text(&o));
        assert!(text(&o).contains("truncated"), "{}", text(&o));
        assert!(text(&o).contains(&format!("bad{i}")), "{}", text(&o));
    }
}

/// `n` `crmbench pg start` at once on the private server folder `base`.
fn start_together(base: &Path, port: u16, n: usize) -> Vec<Output> {
    let children: Vec<_> = (0..n)
        .map(|_| {
            std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
                .args(["pg", "start"])
                .env("CRMBENCH_DATA_DIR", base)
                .env("CRMBENCH_PG_PORT", port.to_string())
                .env_remove("DATABASE_URL")
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    children
        .into_iter()
        .map(|c| c.wait_with_output().unwrap())
        .collect()
}

#[test]
fn two_pg_starts_at_once_both_failed_on_a_fresh_folder_and_one_on_a_stopped_one() {
    let base = common::scratch_base("twostarts");
    let port = common::free_port();
    for round in ["fresh folder", "stopped cluster"] {
        let outs = start_together(&base, port, 2);
        let said: Vec<String> = outs.iter().map(text).collect();
        for o in &outs {
            assert_eq!(o.status.code(), Some(0), "{round}: {said:?}");
        }
        // The second waited for the first and reused its server.
        assert!(
            said.iter().any(|t| t.contains("already running; reused")),
            "{round}: {said:?}"
        );
        let stop = crmbench()
            .args(["pg", "stop"])
            .env("CRMBENCH_DATA_DIR", &base)
            .output()
            .unwrap();
        assert!(text(&stop).contains("stopped"), "{}", text(&stop));
    }
}

#[test]
fn a_missing_workload_file_said_its_os_error_twice() {
    let unused = tempfile::tempdir().unwrap();
    let base = unused.path().join("server");
    let o = crmbench()
        .env("CRMBENCH_DATA_DIR", &base)
        .args(["run", "--check", "--workload", "/nonexistent/crm.toml"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    // The file is read before any server is started (it started one before).
    assert!(
        !base.exists(),
        "a server was created for a missing workload file"
    );
    let said = String::from_utf8_lossy(&o.stderr);
    assert_eq!(
        said.trim_end(),
        "error: reading workload /nonexistent/crm.toml: No such file or directory (os error 2)",
    );
}

/// A workload of `n` one-statement queries.
fn many_queries(n: usize) -> String {
    let mut text = String::from("name = \"many\"\n");
    for i in 0..n {
        text.push_str(&format!(
            "\n[[query]]\nname = \"q{i}\"\nkind = \"read\"\nsql = \"SELECT $1::int\"\n\
             params = [{{ int = [1, 10] }}]\n"
        ));
    }
    text
}

#[test]
fn parsing_a_20k_query_workload_took_76_seconds_quadratic_line_lookup() {
    // No timed assertion: before the fix this test took minutes (each query's
    // line was found by counting newlines from the start of the file).
    let text = many_queries(20_000);
    let w = crmbench::workload::Workload::parse(&text, Path::new("many.toml")).unwrap();
    assert_eq!(w.queries.len(), 20_000);
    let last = &w.queries[19_999];
    assert_eq!(last.line, text.lines().count() - 3);
    assert_eq!(last.statements[0].line, last.line + 2);
}

#[test]
fn a_control_character_in_a_toml_comment_gave_an_empty_message() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("ctl.toml");
    std::fs::write(
        &file,
        "name = \"ctl\"\n# a comment \u{1} here\n[[query]]\nname = \"q\"\nkind = \"read\"\n\
         sql = \"SELECT 1\"\n",
    )
    .unwrap();
    let o = crmbench()
        .env("CRMBENCH_DATA_DIR", dir.path().join("server"))
        .args(["run", "--check", "--workload"])
        .arg(&file)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2), "{}", text(&o));
    assert!(!dir.path().join("server").exists(), "a server was started");
    let said = String::from_utf8_lossy(&o.stderr);
    assert!(
        said.contains(&format!(
            "{}:2: column 13: control character U+0001",
            file.display()
        )),
        "{said}"
    );
}

/// `crmbench run --check` of the workload `toml` on database `db` of this
/// process's cluster.
fn run_check(db: &str, toml: &str) -> (Output, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join(format!("{db}.toml"));
    std::fs::write(&file, toml).unwrap();
    let o = crmbench()
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .args(["--database", db, "run", "--check", "--workload"])
        .arg(&file)
        .output()
        .unwrap();
    (o, file, dir)
}

#[tokio::test]
async fn a_null_tenant_id_or_weight_panicked_with_exit_101() {
    let db = "fault_nulls";
    let target = common::fresh_database(db).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TABLE public.tn (tenant_id text, w float8, v int); \
             INSERT INTO public.tn VALUES (NULL, 1, 1), ('a', NULL, 2); \
             GRANT SELECT ON public.tn TO {}",
            crmbench::pg::roles::SAMPLER
        ))
        .await
        .unwrap();
    let cases = [
        // The tenants query returns a NULL id, then a NULL weight.
        (
            "SELECT tenant_id, w FROM public.tn ORDER BY 1 NULLS FIRST",
            "SELECT 1",
            "",
            "[context] tenants query returned a NULL tenant id",
        ),
        (
            "SELECT tenant_id, w FROM public.tn WHERE tenant_id IS NOT NULL",
            "SELECT 1",
            "",
            "[context] tenants query returned a NULL weight for tenant a",
        ),
        // A sampled row without a tenant.
        (
            "SELECT 'a', 1",
            "SELECT $1::int",
            "params = [{ sample = \"public.tn.v\" }]",
            "query `q`: sample = \"public.tn.v\": a row of \"public\".\"tn\" has a NULL \"tenant_id\"",
        ),
    ];
    for (tenants, sql, params, expected) in cases {
        let toml = format!(
            "name = \"nulls\"\n[context]\ntenant_setting = \"app.current_tenant_id\"\n\
             tenants = \"{tenants}\"\n[[query]]\nname = \"q\"\nkind = \"read\"\nsql = \"{sql}\"\n\
             {}\n",
            params
        );
        let (o, file, _dir) = run_check(db, &toml);
        assert_eq!(o.status.code(), Some(2), "{tenants}: {}", text(&o));
        assert!(
            text(&o).contains(&file.display().to_string()),
            "{}",
            text(&o)
        );
        assert!(text(&o).contains(expected), "{}", text(&o));
    }
}

#[tokio::test]
async fn run_check_accepted_statements_that_fail_on_every_execution() {
    let db = "fault_check_runs";
    let target = common::fresh_database(db).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(&format!(
            "CREATE TABLE public.victim (id int); INSERT INTO public.victim VALUES (1); \
             ALTER TABLE public.victim OWNER TO {app}; \
             CREATE TABLE public.guarded (id int); INSERT INTO public.guarded VALUES (1)",
            app = crmbench::pg::roles::APP
        ))
        .await
        .unwrap();
    // The workloads run as the application role.
    let cases = [
        // It owns victim: its DROP runs once, a "read" query that writes.
        (
            "read",
            "DROP TABLE public.victim",
            "",
            "but running it writes",
        ),
        // `$1` inside a dollar-quoted string is no parameter: PostgreSQL's
        // lexer says so as the file is read, before anything runs.
        (
            "read",
            "SELECT $q$ costs $1 $q$",
            "params = [{ int = [1, 2] }]",
            "the SQL uses no parameters",
        ),
        // It does not own guarded: the DROP fails on every execution.
        (
            "write",
            "DROP TABLE public.guarded",
            "",
            "must be owner of table guarded",
        ),
    ];
    for (kind, sql, params, expected) in cases {
        let toml = format!(
            "name = \"runs\"\n[[query]]\nname = \"q\"\nkind = \"{kind}\"\nsql = \"{sql}\"\n{params}\n"
        );
        let (o, file, _dir) = run_check(db, &toml);
        let said = text(&o);
        assert_eq!(o.status.code(), Some(2), "{sql}: {said}");
        assert!(said.contains(&file.display().to_string()), "{said}");
        assert!(said.contains("query `q`: "), "{said}");
        assert!(said.contains(expected), "{said}");
    }
    // The check changed nothing.
    for table in ["victim", "guarded"] {
        let rows: i64 = admin
            .query_one(&format!("SELECT count(*) FROM public.{table}"), &[])
            .await
            .unwrap()
            .get(0);
        assert_eq!(rows, 1, "{table}");
    }
}

#[test]
fn pg_url_did_not_percent_encode_the_database_name() {
    let o = crmbench()
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .args(["--database", "rel_q?b/c d", "pg", "url"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let url = String::from_utf8_lossy(&o.stdout).trim().to_string();
    assert!(url.contains("@/rel_q%3Fb%2Fc%20d?host="), "{url}");
    // Read back as libpq reads it: the same database and socket.
    let info = crmbench::pg::conninfo::ConnInfo::parse(&url).unwrap();
    assert_eq!(info.get("dbname"), Some("rel_q?b/c d"));
    let socket = common::cluster().server.socket_dir();
    assert_eq!(info.get("host"), Some(socket.to_str().unwrap()));
}

#[tokio::test]
async fn pg_start_with_a_data_dir_printed_a_stop_hint_without_it() {
    // `pg start` uses an existing database only; this one exists.
    common::fresh_database("fault_hint").await;
    let base = &common::cluster().base;
    let o = crmbench()
        .arg("--data-dir")
        .arg(base)
        .args(["--database", "fault_hint", "pg", "start"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(0), "{}", text(&o));
    let said = String::from_utf8_lossy(&o.stdout);
    let line = |label: &str| {
        said.lines()
            .find(|l| l.trim_start().starts_with(label))
            .unwrap_or_else(|| panic!("no {label} line: {said}"))
            .trim()
            .to_string()
    };
    let folder = base.display();
    assert_eq!(
        line("stop:"),
        format!("stop:      crmbench pg stop --data-dir {folder}")
    );
    assert_eq!(
        line("connect:"),
        format!("connect:   psql \"$(crmbench pg url --data-dir {folder} --database fault_hint)\"")
    );
}

#[test]
fn pg_status_into_a_closed_pipe_panicked_with_exit_101() {
    // `crmbench pg status | head -1`, deterministic: the reader is gone
    // before the first line is written.
    let (read, write) = nix::unistd::pipe().unwrap();
    drop(read);
    let o = std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["pg", "status"])
        .stdout(std::process::Stdio::from(write))
        .stderr(std::process::Stdio::piped())
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(0), "{stderr}");
    assert!(stderr.is_empty(), "{stderr}");
}
