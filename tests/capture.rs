//! `crmbench capture` on the private server after the built-in workload ran:
//! a file that `run --check` accepts, covering at least 95% of the
//! application role's execution time, with the tenant context read from the
//! RLS policies and every `$n` given a generator.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Output;

const DB: &str = "capture_crm";

fn crmbench(args: &[&str]) -> Output {
    crmbench_on(DB, args)
}

fn crmbench_on(db: &str, args: &[&str]) -> Output {
    std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", db])
        .args(args)
        .output()
        .unwrap()
}

/// The built-in workload on `db` for `secs` at 2 clients, without warm-up,
/// its run folder at `out`.
fn run_built_in(db: &str, secs: &str, out: &std::path::Path) {
    let workload = concat!(env!("CARGO_MANIFEST_DIR"), "/workloads/crm.toml");
    ok(&crmbench_on(
        db,
        &[
            "run",
            "--workload",
            workload,
            "--duration",
            secs,
            "--warmup",
            "0s",
            "--clients",
            "2",
            "-q",
            "--out",
            out.to_str().unwrap(),
        ],
    ));
}

fn ok(out: &Output) -> String {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test]
async fn capture_after_the_built_in_workload_replays() {
    let target = common::generated(DB, 0.002, 5).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    // A server that has been running: the first seconds after a load run
    // on freshly vacuumed tables, faster than anything after them.
    run_built_in(DB, "2s", &dir.path().join("warm-up"));
    admin
        .batch_execute("SELECT pg_stat_statements_reset()")
        .await
        .unwrap();
    run_built_in(DB, "3s", &dir.path().join("source"));

    let file = dir.path().join("captured.toml");
    let captured = crmbench(&[
        "capture",
        "--out",
        file.to_str().unwrap(),
        "--check-replay",
        "--replay-duration",
        "4s",
    ]);
    // Exit 1: some statement is outside the realism band (see below).
    assert!(
        matches!(captured.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&captured.stderr)
    );
    let stdout = String::from_utf8_lossy(&captured.stdout).into_owned();
    // The comparison goes to the test log: its figures are the realism check's.
    eprintln!("{stdout}");
    let coverage: f64 = stdout
        .split("coverage: ")
        .nth(1)
        .and_then(|s| s.split('%').next())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or_else(|| panic!("{stdout}"));
    assert!(coverage >= 95.0, "{stdout}");
    assert!(stdout.contains("role crmbench_app"), "{stdout}");
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.contains("tenant_setting = \"app.current_tenant_id\"")
            && text.contains("{ tenant = true }")
            // Which statements make the 95% varies run to run (the email
            // lookup takes 0.02 ms): some sampled column is always there.
            && text.contains("{ sample = \"crm."),
        "{text}"
    );
    // No frame statement became a query.
    assert!(!text.contains("set_config"), "{text}");
    // The guesses were fitted to the source's figures, and the probes did
    // not become the application's statements for a later capture.
    assert!(text.contains("# fitted to the source's"), "{text}");
    let probes: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_stat_statements WHERE query LIKE 'EXPLAIN (ANALYZE, BUFFERS, TIMING OFF%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(probes, 0);
    let checked = crmbench(&["run", "--workload", file.to_str().unwrap(), "--check"]);
    ok(&checked);

    // --check-replay: one row per query written, compared by the server's
    // own figures. The driver draws queries by weight, so no statement's
    // share of calls may leave the ±2 pp band unless its transactions fail
    // (a snapshot matched by text instead of queryid counted the capture's
    // own check as replay calls: +7 pp).
    let queries = text.matches("[[query]]").count();
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('q') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(rows.len(), queries, "{stdout}");
    for row in rows {
        // Under 1% errors for every statement (the flag names SQLSTATEs:
        // 23514 from a CHECK, 22012 from a zero divisor, 23502 from an
        // order without items sampled before the one with them).
        assert!(!row.contains("failed ("), "{stdout}");
        assert!(
            !row.contains("share of calls off")
                || row.contains("failed")
                || row.contains("never ran"),
            "{stdout}"
        );
    }
    assert!(
        stdout.contains(&format!(" of {queries} statements within the realism band")),
        "{stdout}"
    );

    // --window: only what runs between the two snapshots counts. Nothing
    // of the application runs in this window, so there is nothing to
    // capture (everything since the reset would be captured without it).
    let windowed = crmbench(&["capture", "--out", file.to_str().unwrap(), "--window", "1s"]);
    let stderr = String::from_utf8_lossy(&windowed.stderr);
    assert!(!windowed.status.success(), "{stderr}");
    assert!(
        stderr.contains("first snapshot of pg_stat_statements taken")
            && stderr.contains("holds no statement of an application role"),
        "{stderr}"
    );
}

/// The log fixtures of PostgreSQL 13 and 16 (stderr with two prefixes,
/// csvlog of both, auto_explain text and JSON) read as their goldens say:
/// statements, calls, durations and the logged values of every `$n`
/// (`CRMBENCH_BLESS=1` rewrites the goldens).
#[test]
fn log_fixtures_read_as_their_goldens() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/capture"));
    let mut seen = 0;
    for name in [
        "pg13-stderr.log",
        "pg13-csvlog.csv",
        "pg16-stderr.log",
        "pg16-csvlog.csv",
        "pg16-auto-explain.log",
    ] {
        let text = std::fs::read_to_string(dir.join(name)).unwrap();
        let got = crmbench::capture::log::render(&crmbench::capture::log::read(&text));
        let golden = dir.join(format!("{name}.golden"));
        if std::env::var_os("CRMBENCH_BLESS").is_some() {
            std::fs::write(&golden, &got).unwrap();
        }
        let want = std::fs::read_to_string(&golden)
            .unwrap_or_else(|e| panic!("{}: {e} (CRMBENCH_BLESS=1 creates it)", golden.display()));
        assert_eq!(got, want, "{name}");
        seen += 1;
    }
    assert_eq!(seen, 5);
}

/// `capture --from-log` on what the private server logged while the
/// built-in workload ran (`log_min_duration_statement = 0`, PostgreSQL's
/// own log, extended protocol with `DETAIL: parameters`): a file `run
/// --check` accepts, whose parameters with no column to sample carry the
/// values the application sent, replaying with under 1% errors.
#[tokio::test]
async fn capture_from_the_server_log_sends_the_logged_values() {
    const LOG_DB: &str = "capture_log";
    let target = common::generated(LOG_DB, 0.002, 5).await;
    // First, while the data is as generated (the goldens' generators read
    // its statistics): one dataset serves both.
    log_fixtures_capture_as_their_goldens(LOG_DB);
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    let log_path = common::cluster().base.join("server.log");
    let start = std::fs::metadata(&log_path).unwrap().len() as usize;
    // The application's sessions only: the private server's log lines do not
    // name the role, and crmbench's own sampler runs in the same database.
    let role_setting = format!("ALTER ROLE crmbench_app IN DATABASE {LOG_DB}");
    admin
        .batch_execute(&format!(
            "{role_setting} SET log_min_duration_statement = 0"
        ))
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    run_built_in(LOG_DB, "2s", &dir.path().join("source"));
    admin
        .batch_execute(&format!("{role_setting} RESET log_min_duration_statement"))
        .await
        .unwrap();
    let log = std::fs::read(&log_path).unwrap();
    let logged = dir.path().join("server.log");
    std::fs::write(&logged, &log[start..]).unwrap();

    let file = dir.path().join("from-log.toml");
    let captured = std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", LOG_DB, "capture", "--from-log"])
        .arg(&logged)
        .args(["--role", "crmbench_app", "--coverage", "100", "--out"])
        .arg(&file)
        .args(["--check-replay", "--replay-duration", "3s"])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&captured.stdout).into_owned();
    eprintln!("{stdout}");
    assert!(
        matches!(captured.status.code(), Some(0 | 1)),
        "{}",
        String::from_utf8_lossy(&captured.stderr)
    );
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(text.contains("from the server log"), "{text}");
    // update_customer's phone suffix (`'+44 7700 ' || $1::int`, no column
    // to sample) carries the numbers the workload sent, 900000–999999.
    let phone = text
        .split("[[query]]")
        .find(|q| q.contains("phone = '+44 7700 ' ||"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(phone.contains("{ choice = [\"9"), "{phone}");
    ok(&crmbench_on(
        LOG_DB,
        &["run", "--workload", file.to_str().unwrap(), "--check"],
    ));
    // Under 1% errors for every statement replayed.
    for row in stdout.lines().filter(|l| l.starts_with('q')) {
        assert!(!row.contains("failed"), "{stdout}");
    }
}

/// The log fixtures of PostgreSQL 13 and 16 (stderr, csvlog, auto_explain)
/// captured with `--from-log` on the built-in schema into the workload TOML
/// their `.toml` goldens hold (`CRMBENCH_BLESS=1` rewrites them): the frame
/// left out, every `$n` given the values the log showed, the tenant context
/// from the policies; each file passes `run --check`.
fn log_fixtures_capture_as_their_goldens(db: &str) {
    let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/capture"));
    let dir = tempfile::tempdir().unwrap();
    for log in [
        "pg13-stderr.log",
        "pg13-csvlog.csv",
        "pg16-stderr.log",
        "pg16-csvlog.csv",
        "pg16-auto-explain.log",
    ] {
        let file = dir.path().join(format!("{log}.toml"));
        let source = fixtures.join(log);
        let out = crmbench_on(
            db,
            &[
                "capture",
                "--from-log",
                source.to_str().unwrap(),
                "--role",
                "crmbench_app",
                "--coverage",
                "100",
                "--out",
                file.to_str().unwrap(),
            ],
        );
        ok(&out);
        // The header names the fixture by its path: keep only its name.
        let got = std::fs::read_to_string(&file)
            .unwrap()
            .replace(fixtures.to_str().unwrap(), "fixtures/capture");
        matches_golden(&got, &fixtures.join(format!("{log}.toml")), log);
        ok(&crmbench_on(
            db,
            &["run", "--workload", file.to_str().unwrap(), "--check"],
        ));
    }
}

/// Copies of pg_stat_statements in PostgreSQL 13's and 16's columns
/// (fixtures/capture/pg*-pg_stat_statements.sql, a Prisma help desk's
/// statements with its frame, a COPY, a temporary table, an administrator's
/// DDL, and in 16 a nested statement) captured with `--stats-table` into the
/// TOML their goldens hold (`CRMBENCH_BLESS=1` rewrites them): the role
/// found, the frame and the nested statement left out, what cannot be
/// replayed listed with its share, every `$n` given a generator.
#[tokio::test]
async fn pg_stat_statements_of_pg13_and_pg16_capture_as_their_goldens() {
    const PGSS_DB: &str = "capture_pgss";
    let target = common::fresh_database(PGSS_DB).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    let fixtures = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/capture"));
    for sql in [
        "prisma/schema.sql",
        "pg13-pg_stat_statements.sql",
        "pg16-pg_stat_statements.sql",
    ] {
        let text = std::fs::read_to_string(fixtures.join(sql)).unwrap();
        admin.batch_execute(&text).await.unwrap();
    }
    let dir = tempfile::tempdir().unwrap();
    let mut written = Vec::new();
    for (table, golden) in [
        ("pgss13", "pg13-pg_stat_statements.toml"),
        ("pgss16", "pg16-pg_stat_statements.toml"),
    ] {
        let file = dir.path().join(golden);
        let out = crmbench_on(
            PGSS_DB,
            &[
                "capture",
                "--stats-table",
                table,
                "--coverage",
                "100",
                "--out",
                file.to_str().unwrap(),
            ],
        );
        let stdout = ok(&out);
        assert!(stdout.contains("of role desk_app"), "{stdout}");
        let got = std::fs::read_to_string(&file).unwrap();
        matches_golden(&got, &fixtures.join(golden), table);
        ok(&crmbench_on(
            PGSS_DB,
            &["run", "--workload", file.to_str().unwrap(), "--check"],
        ));
        written.push(got);
    }
    // The same statements in both versions: the files differ only in the
    // table named as the source (16's nested statement is not captured).
    assert_eq!(written[0].replace("pgss13", "pgss16"), written[1]);
    assert!(!written[1].contains("current_setting"), "{}", written[1]);
}

/// A statement with `$n` inside a string literal, a dollar-quoted body and
/// two comments next to its real `$1` and `$2`. The CASE divides by zero
/// unless the literal and the body reach the server as written.
const DOLLARS_SQL: &str = "SELECT c.id, 1 / (CASE WHEN '$1' = '$' || '1' AND $$ $1 $$ = ' $' || '1 ' \
     THEN 1 ELSE 0 END) AS ok -- $2\n\
     FROM crm.customers c /* $3 */\n\
     WHERE c.tenant_id = $1 AND c.id > $2 LIMIT 5";

/// `$n` in a literal, a comment and a dollar-quoted body is not a
/// placeholder: a hand-written workload holding them passes `run --check`
/// with two parameters and replays without an error in both protocols
/// (the simple one substitutes values into the text); and a capture from
/// a log of the same statement gives it two generators, not three.
#[tokio::test]
async fn dollar_signs_in_literals_and_comments_are_not_placeholders() {
    const DB_DOLLARS: &str = "capture_dollars";
    let target = common::generated(DB_DOLLARS, 0.002, 5).await;
    let workload = format!(
        "name = \"dollars\"\n{}\n[[query]]\nname = \"dollars\"\nkind = \"read\"\nweight = 1\n\
         sql = '''{DOLLARS_SQL}'''\nparams = [{{ tenant = true }}, {{ int = [0, 100] }}]\n",
        common::CONTEXT
    );
    let (_dir, path) = common::write_workload(&workload);
    ok(&crmbench_on(
        DB_DOLLARS,
        &["run", "--workload", &path, "--check"],
    ));
    for simple in [false, true] {
        let mut opts = common::options(&path, 1.0);
        opts.simple = simple;
        opts.clients = 2;
        let outcome = crmbench::run::run(&target, &opts).await.unwrap();
        let q = &outcome.results.queries[0];
        assert!(q.baseline.count > 0, "simple={simple}: never ran");
        assert!(
            q.baseline.errors.is_empty(),
            "simple={simple}: {:?}",
            q.baseline.errors
        );
    }

    // The same statement as an application logged it (extended protocol).
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("dollars.log");
    let mut text = String::new();
    for (i, id) in [3, 40].iter().enumerate() {
        text.push_str(&format!(
            "2026-11-30 10:15:02 UTC [4187{i}] LOG:  duration: 0.120 ms  execute <unnamed>: {}\n\
             2026-11-30 10:15:02 UTC [4187{i}] DETAIL:  parameters: $1 = '0f6a6f9e-3c1e-4d5e-8a59-3f1c2b7d9e01', $2 = '{id}'\n",
            DOLLARS_SQL.replace('\n', "\n\t")
        ));
    }
    std::fs::write(&log, text).unwrap();
    let file = dir.path().join("dollars.toml");
    ok(&crmbench_on(
        DB_DOLLARS,
        &[
            "capture",
            "--from-log",
            log.to_str().unwrap(),
            "--role",
            "crmbench_app",
            "--coverage",
            "100",
            "--out",
            file.to_str().unwrap(),
        ],
    ));
    let captured = std::fs::read_to_string(&file).unwrap();
    let parsed: toml::Value = toml::from_str(&captured).unwrap();
    let query = &parsed["query"][0];
    assert!(
        query["sql"].as_str().unwrap().contains("'$1' = '$' || '1'"),
        "{captured}"
    );
    let params = query["params"].as_array().unwrap();
    assert_eq!(params.len(), 2, "{captured}");
    assert_eq!(params[0].get("tenant"), Some(&toml::Value::Boolean(true)));
    ok(&crmbench_on(
        DB_DOLLARS,
        &["run", "--workload", file.to_str().unwrap(), "--check"],
    ));
}

/// `got` equals the golden file (`CRMBENCH_BLESS=1` rewrites it first).
fn matches_golden(got: &str, golden: &std::path::Path, label: &str) {
    if std::env::var_os("CRMBENCH_BLESS").is_some() {
        std::fs::write(golden, got).unwrap();
    }
    let want = std::fs::read_to_string(golden)
        .unwrap_or_else(|e| panic!("{}: {e} (CRMBENCH_BLESS=1 creates it)", golden.display()));
    assert_eq!(got, want, "{label}");
}
