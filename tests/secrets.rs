//! Passwords never leave crmbench: for every connection-string form it
//! accepts (URL with a percent-encoded password, `?password=`, key=value with
//! a quoted value, a URL whose password holds `?` and `#` as libpq reads it),
//! as the target and as the candidate of a paired run, no printed line and no
//! file of the run folder holds the password or any 4-character piece of it,
//! and the redacted form is what is shown. A URL libpq would split wrongly (an
//! unencoded `/` in the password) is refused with exit 2, a message that says
//! to percent-encode, and nothing of the password.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::sync::OnceLock;

use assert_cmd::Command;
use crmbench::pg::{self, Target};

const DB: &str = "secrets_shop";
/// Holds every character a URL gives a meaning to, a space and a quote.
const PW_ENC: &str = "Zq/Xv@Kj?Wm#Fy% Hb'Tn";
/// `PW_ENC` as it must be written in a URL.
const PW_ENC_URL: &str = "Zq%2FXv%40Kj%3FWm%23Fy%25%20Hb%27Tn";
/// `PW_ENC` in a key=value string.
const PW_ENC_KV: &str = r"'Zq/Xv@Kj?Wm#Fy% Hb\'Tn'";
/// `?`, `#` and `:` unencoded: libpq (and crmbench) read it whole, since no
/// `/` comes before the `@`.
const PW_RAW: &str = "Qm?Rx#Jd:Vw";
/// The issue's example: an unencoded `/` (libpq refuses the URL).
const PW_SLASH: &str = "Sl/ashPw?9";

const WORKLOAD: &str = r#"name = "secrets"
[[query]]
name = "item_by_id"
kind = "read"
sql = "SELECT id, name FROM shop.items WHERE id = $1"
params = [{ sample = "shop.items.id" }]

[[query]]
name = "count_items"
kind = "read"
sql = "SELECT count(*) FROM shop.items"
"#;

/// The cluster's TCP port, once the database and the two password roles exist.
fn setup() -> u16 {
    static PORT: OnceLock<u16> = OnceLock::new();
    *PORT.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(prepare_database())
        })
        .join()
        .unwrap()
    })
}

async fn prepare_database() -> u16 {
    let target = common::fresh_database(DB).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let quoted = |pw: &str| pw.replace('\'', "''");
    admin
        .batch_execute(&format!(
            "CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id serial PRIMARY KEY, name text NOT NULL); \
             INSERT INTO shop.items (name) SELECT 'item ' || g FROM generate_series(1, 500) g; \
             ANALYZE shop.items; \
             GRANT USAGE ON SCHEMA shop TO crmbench_sampler; \
             GRANT SELECT ON shop.items TO crmbench_sampler; \
             DROP ROLE IF EXISTS sec_enc; DROP ROLE IF EXISTS sec_raw; \
             CREATE ROLE sec_enc LOGIN SUPERUSER PASSWORD '{}'; \
             CREATE ROLE sec_raw LOGIN SUPERUSER PASSWORD '{}';",
            quoted(PW_ENC),
            quoted(PW_RAW)
        ))
        .await
        .unwrap();
    let Target::Private { server, .. } = &target else {
        unreachable!()
    };
    server.port()
}

/// One accepted form: the string given, and how crmbench must show it.
struct Form {
    name: &'static str,
    url: String,
    shown: String,
}

fn forms(port: u16) -> Vec<Form> {
    vec![
        Form {
            name: "url-raw",
            url: format!("postgresql://sec_raw:{PW_RAW}@127.0.0.1:{port}/{DB}"),
            shown: format!("postgresql://sec_raw:***@127.0.0.1:{port}/{DB}"),
        },
        Form {
            name: "url",
            url: format!("postgresql://sec_enc:{PW_ENC_URL}@127.0.0.1:{port}/{DB}"),
            shown: format!("postgresql://sec_enc:***@127.0.0.1:{port}/{DB}"),
        },
        Form {
            name: "query",
            url: format!(
                "postgres://sec_enc@127.0.0.1:{port}/{DB}?password={PW_ENC_URL}&application_name=sec"
            ),
            shown: format!("postgres://sec_enc:***@127.0.0.1:{port}/{DB}?application_name=sec"),
        },
        Form {
            name: "keyvalue",
            url: format!(
                "host=127.0.0.1 port={port} user=sec_enc password={PW_ENC_KV} dbname={DB}"
            ),
            shown: format!("host=127.0.0.1 port={port} user=sec_enc password=*** dbname={DB}"),
        },
    ]
}

fn crmbench(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    cmd.env_remove("DATABASE_URL")
        .env(
            "CRMBENCH_DATA_DIR",
            "/nonexistent/crmbench-must-not-be-used",
        )
        .env("NO_COLOR", "1")
        .arg("--database-url")
        .arg(url);
    cmd
}

/// Every piece of `secret` at least 4 characters long found in `text`.
fn leaks(text: &str, secret: &str) -> Vec<String> {
    let chars: Vec<char> = secret.chars().collect();
    let mut found = Vec::new();
    for len in 4..=chars.len() {
        for start in 0..=chars.len() - len {
            let piece: String = chars[start..start + len].iter().collect();
            if text.contains(&piece) {
                found.push(piece);
            }
        }
    }
    found
}

fn assert_no_leak(what: &str, text: &str, secrets: &[&str]) {
    for secret in secrets {
        let found = leaks(text, secret);
        assert!(
            found.is_empty(),
            "{what} holds {found:?} of a password:\n{text}"
        );
    }
}

/// Run a command, check its exit code, and check every printed line.
fn run_ok(cmd: &mut Command, what: &str, secrets: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_leak(what, &text, secrets);
    assert!(out.status.success(), "{what} failed:\n{text}");
    text
}

fn files_under(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            out.push(path);
        }
    }
}

#[test]
fn accepted_forms_never_print_or_save_the_password() {
    let port = setup();
    let forms = forms(port);
    let all_secrets = [PW_ENC, PW_ENC_URL, PW_ENC_KV, PW_RAW];
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.toml");
    std::fs::write(&workload, WORKLOAD).unwrap();
    for (i, form) in forms.iter().enumerate() {
        // The candidate of the paired run is the next form.
        let candidate = &forms[(i + 1) % forms.len()];
        let folder = dir.path().join(form.name);
        let check = run_ok(
            crmbench(&form.url)
                .args(["-vv", "run", "--check", "--workload"])
                .arg(&workload),
            &format!("{} run --check", form.name),
            &all_secrets,
        );
        assert!(check.contains(&form.shown), "{}: {check}", form.name);
        run_ok(
            crmbench(&form.url)
                .args([
                    "run",
                    "--duration",
                    "1s",
                    "--warmup",
                    "0s",
                    "--clients",
                    "1",
                ])
                .args(["--threads", "1", "--quiet", "--candidate-url"])
                .arg(&candidate.url)
                .arg("--workload")
                .arg(&workload)
                .arg("--out")
                .arg(&folder),
            &format!("{} run", form.name),
            &all_secrets,
        );
        run_ok(
            crmbench(&form.url)
                .args(["explain", "--workload"])
                .arg(&workload)
                .arg("--out")
                .arg(&folder),
            &format!("{} explain", form.name),
            &all_secrets,
        );
        run_ok(
            crmbench(&form.url).arg("report").arg("--in").arg(&folder),
            &format!("{} report", form.name),
            &all_secrets,
        );

        let results: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(folder.join("results.json")).unwrap())
                .unwrap();
        assert_eq!(results["server"]["target"], form.shown.as_str());
        assert_eq!(results["server"]["candidate"], candidate.shown.as_str());
        let md = std::fs::read_to_string(folder.join("report.md")).unwrap();
        assert!(md.contains(&form.shown), "{}: report.md", form.name);
        let mut files = Vec::new();
        files_under(&folder, &mut files);
        for name in ["results.json", "plans.json", "report.md", "report.html"] {
            assert!(files.iter().any(|f| f.ends_with(name)), "{name} missing");
        }
        for file in &files {
            let text = String::from_utf8_lossy(&std::fs::read(file).unwrap()).into_owned();
            assert_no_leak(&file.display().to_string(), &text, &all_secrets);
        }
    }
}

/// Run a command that must fail with exit 2; return what it printed.
fn run_refused(cmd: &mut Command, what: &str, secrets: &[&str]) -> String {
    let out = cmd.output().unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_leak(what, &text, secrets);
    assert_eq!(out.status.code(), Some(2), "{what}:\n{text}");
    text
}

#[test]
fn urls_libpq_would_split_wrongly_are_refused_without_quoting_them() {
    let port = setup();
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("w.toml");
    std::fs::write(&workload, WORKLOAD).unwrap();
    let good = format!("postgresql://sec_enc:{PW_ENC_URL}@127.0.0.1:{port}/{DB}");
    for (url, part) in [
        // The issue's example: the authority ends at the '/', "Sl" is the port.
        (
            format!("postgresql://sec_enc:{PW_SLASH}@127.0.0.1:{port}/{DB}"),
            "the port",
        ),
        (
            format!("postgresql://sec_enc:{PW_ENC}@127.0.0.1:{port}/{DB}"),
            "the port",
        ),
        // A port-like start: the '@' after the authority is what gives it away.
        (
            format!("postgresql://sec_enc:5432/{PW_SLASH}@127.0.0.1:{port}/{DB}"),
            "authority of the URL",
        ),
    ] {
        let secrets = [PW_SLASH, PW_ENC];
        let check = run_refused(
            crmbench(&url)
                .args(["run", "--check", "--workload"])
                .arg(&workload),
            "refused --database-url",
            &secrets,
        );
        assert!(check.contains("percent-encode"), "{check}");
        assert!(check.contains(part), "{check}");
        let paired = run_refused(
            crmbench(&good)
                .args(["run", "--duration", "1s", "--warmup", "0s", "--quiet"])
                .arg("--candidate-url")
                .arg(&url)
                .arg("--workload")
                .arg(&workload)
                .arg("--out")
                .arg(dir.path().join("paired")),
            "refused --candidate-url",
            &secrets,
        );
        assert!(paired.contains("percent-encode"), "{paired}");
    }
}

#[test]
fn connection_failures_show_the_target_redacted() {
    let port = setup();
    let closed = common::free_port();
    for (url, shown) in [
        // Wrong password (sec_raw's is PW_RAW): authentication fails.
        (
            format!("postgresql://sec_raw:{PW_ENC_URL}@127.0.0.1:{port}/{DB}"),
            format!("postgresql://sec_raw:***@127.0.0.1:{port}/{DB}"),
        ),
        // No such database.
        (
            format!("host=127.0.0.1 port={port} user=sec_enc password={PW_ENC_KV} dbname=nope"),
            format!("host=127.0.0.1 port={port} user=sec_enc password=*** dbname=nope"),
        ),
        // Nothing listens.
        (
            format!("postgresql://sec_raw:{PW_RAW}@127.0.0.1:{closed}/{DB}"),
            format!("postgresql://sec_raw:***@127.0.0.1:{closed}/{DB}"),
        ),
    ] {
        let text = run_refused(
            crmbench(&url).args(["-vv", "schema", "show"]),
            &shown,
            &[PW_ENC, PW_ENC_URL, PW_ENC_KV, PW_RAW],
        );
        assert!(text.contains(&shown), "{text}");
    }
}
