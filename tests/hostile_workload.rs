//! A workload file is code that runs on the target (issue 21): its tenants
//! and sample queries run as crmbench_sampler — read-only, SELECT only, no
//! superuser, logged in as itself on the private server — so none can read a
//! server file or write anything; `sample` names are names and nothing else;
//! a workload without `role` runs as the application role, never the
//! superuser; run folders are private unless --shareable; and explain on a
//! --database-url target keeps the values it drew from the data out of
//! plans.json, from which the advisor still advises the same indexes.
//!
//! Every test but the mode bits fails on crmbench before this fix: the
//! tenants query read /etc/passwd as the superuser, the sample injection
//! sampled /etc/passwd and the catalog's password hashes, the role-less
//! workload ran as crmbench_admin (and dropped the table), plans.json held
//! the customers' emails and the tenant ids. The mode bits came with
//! `--shareable` (src/runfolder.rs) and are pinned here end to end.

#![allow(clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use assert_cmd::Command;
use crmbench::pg::private::SUPERUSER;
use crmbench::pg::{self, Target};

/// The shared CRM dataset (nothing here may change it).
const DATA: &str = "hostile_data";
/// What /etc/passwd starts with: never in anything crmbench prints.
const PASSWD: &str = "root:x:0:0";
/// The built-in workload's tenants query.
const TENANTS: &str = "SELECT t.id::text, count(c.id) FROM crm.tenants t \
                       LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id";

/// The dataset, generated once for the whole binary.
fn data() -> Target {
    static ONCE: OnceLock<()> = OnceLock::new();
    ONCE.get_or_init(|| {
        std::thread::spawn(|| {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap()
                .block_on(common::generated(DATA, 0.002, 3));
        })
        .join()
        .unwrap()
    });
    Target::private(common::cluster().server.clone()).on_database(DATA)
}

/// crmbench on the private test cluster, on `db`.
fn on_private(db: &str) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    cmd.env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .env("NO_COLOR", "1")
        .args(["--database", db]);
    cmd
}

/// crmbench on `db` of the test cluster given as a --database-url target.
fn on_url(db: &str) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").unwrap();
    cmd.env(
        "CRMBENCH_DATA_DIR",
        "/nonexistent/crmbench-must-not-be-used",
    )
    .env_remove("DATABASE_URL")
    .env("NO_COLOR", "1")
    .arg("--database-url")
    .arg(common::cluster().server.url(SUPERUSER, db));
    cmd
}

/// `run --check` of `workload` on `db`: (exit code, stdout + stderr).
fn check(db: &str, workload: &str) -> (i32, String) {
    let (_dir, path) = common::write_workload(workload);
    let out = on_private(db)
        .args(["run", "--check", "--workload", &path])
        .output()
        .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    (out.status.code().unwrap_or(-1), text)
}

/// A workload whose tenants query is `tenants` (no `"` nor `\\` in it).
fn with_tenants(tenants: &str) -> String {
    format!(
        "name = \"hostile\"\n[context]\nrole = \"crmbench_app\"\n\
         tenant_setting = \"app.current_tenant_id\"\ntenants = \"\"\"{tenants}\"\"\"\n\
         [[query]]\nname = \"q\"\nkind = \"read\"\nsql = \"SELECT count(*) FROM stores\"\n"
    )
}

/// A marker path a hostile statement tries to create on the server.
fn marker(name: &str) -> PathBuf {
    let path = PathBuf::from(format!(
        "/tmp/crmbench-hostile-{}-{name}",
        std::process::id()
    ));
    let _ = std::fs::remove_file(&path);
    path
}

/// One number the server answers for `sql`.
async fn number(client: &tokio_postgres::Client, sql: &str) -> i64 {
    client.query_one(sql, &[]).await.unwrap().get(0)
}

#[tokio::test]
async fn tenants_queries_cannot_read_server_files_nor_write() {
    let target = data();
    let admin = pg::connect(&target.admin()).await.unwrap();
    let seq: String = admin
        .query_one("SELECT pg_get_serial_sequence('crm.customers', 'id')", &[])
        .await
        .unwrap()
        .get(0);
    let state = format!(
        "SELECT (SELECT count(*) FROM pg_largeobject_metadata) * 1000000 \
         + (SELECT count(*) FROM pg_class) * 1000 + (SELECT last_value FROM {seq}) % 1000"
    );
    let before = number(&admin, &state).await;
    let (lo_file, program_file) = (marker("lo_export"), marker("program"));
    let attempts = [
        "SELECT pg_read_file('/etc/passwd'), 1".to_string(),
        // Leaving the sampler for the superuser inside the query: refused,
        // because the sampler logs in as itself.
        "SELECT set_config('role', 'crmbench_admin', true), \
         length(query_to_xml('select pg_read_file(''/etc/passwd'') as x', true, false, '')::text)"
            .to_string(),
        format!(
            "SELECT lo_export(lo_from_bytea(0, 'pwned'), '{}')::text, 1",
            lo_file.display()
        ),
        format!("SELECT id::text, nextval('{seq}')::float8 FROM crm.tenants"),
        format!(
            "SELECT id::text, 1 FROM crm.tenants WHERE query_to_xml(\
             'COPY (SELECT 1) TO PROGRAM ''touch {}''', true, false, '') IS NOT NULL",
            program_file.display()
        ),
        "SELECT id::text, 1 FROM crm.tenants WHERE query_to_xml(\
         'CREATE TABLE crm.hostile_pwned (x int)', true, false, '') IS NOT NULL"
            .to_string(),
    ];
    for sql in &attempts {
        let (code, text) = check(DATA, &with_tenants(sql));
        assert_eq!(code, 2, "{sql}\n{text}");
        assert!(text.contains("tenants query failed"), "{sql}\n{text}");
        assert!(!text.contains(PASSWD), "{sql}\n{text}");
    }
    assert!(!lo_file.exists(), "lo_export wrote {}", lo_file.display());
    assert!(!program_file.exists(), "COPY TO PROGRAM ran");
    assert_eq!(
        number(&admin, &state).await,
        before,
        "large objects, catalog or sequence changed"
    );
    // The sampler sees every tenant: the built-in tenants query still works.
    let (code, text) = check(DATA, &with_tenants(TENANTS));
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn sample_names_are_names_and_the_catalog_stays_closed() {
    data();
    // A table "name" that is a subquery reading a server file.
    let injection = format!(
        "name = \"hostile\"\n{}\n[[query]]\nname = \"q\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE email = $1\"\n\
         params = [{{ sample = \"(SELECT tenant_id, pg_read_file('/etc/passwd') AS email FROM crm.customers) x.email\" }}]\n",
        common::CONTEXT
    );
    let (code, text) = check(DATA, &injection);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("write table.column"), "{text}");
    assert!(!text.contains(PASSWD), "{text}");
    // A real name the sampler may not read: the password hashes.
    let hashes = "name = \"hostile\"\n[[query]]\nname = \"q\"\nkind = \"read\"\n\
                  sql = \"SELECT $1::text\"\nparams = [{ sample = \"pg_catalog.pg_authid.rolpassword\" }]\n";
    let (code, text) = check(DATA, hashes);
    assert_eq!(code, 2, "{text}");
    assert!(
        text.contains("permission denied for table pg_authid"),
        "{text}"
    );
    // Qualified and quoted names still sample.
    let fine = format!(
        "name = \"fine\"\n{}\n[[query]]\nname = \"q\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE email = $1 AND id = $2\"\n\
         params = [{{ sample = \"crm.customers.email\" }}, {{ sample = '\"crm\".\"customers\".\"id\"' }}]\n",
        common::CONTEXT
    );
    let (code, text) = check(DATA, &fine);
    assert_eq!(code, 0, "{text}");
}

#[tokio::test]
async fn a_workload_without_role_runs_as_the_app_role_never_the_superuser() {
    let target = common::fresh_database("hostile_norole").await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(
            "CREATE SCHEMA shop; CREATE TABLE shop.victim (x int); INSERT INTO shop.victim VALUES (1); \
             CREATE TABLE shop.who (name text); \
             GRANT USAGE ON SCHEMA shop TO PUBLIC; GRANT INSERT ON shop.who TO PUBLIC;",
        )
        .await
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let run = |workload: &str, name: &str| {
        let path = dir.path().join(format!("{name}.toml"));
        std::fs::write(&path, workload).unwrap();
        let out = on_private("hostile_norole")
            .args([
                "run",
                "--duration",
                "1s",
                "--warmup",
                "0s",
                "--clients",
                "1",
            ])
            .args(["--threads", "1", "--quiet", "--workload"])
            .arg(&path)
            .arg("--out")
            .arg(dir.path().join(name))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr)
    };
    let who = "name = \"who\"\n[[query]]\nname = \"who\"\nkind = \"write\"\n\
               sql = \"INSERT INTO shop.who SELECT current_user\"\n";
    run(who, "who");
    let names: Vec<String> = admin
        .query("SELECT DISTINCT name FROM shop.who", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["crmbench_app"]);

    let program_file = marker("norole_program");
    let hostile = format!(
        "name = \"hostile\"\n\
         [[query]]\nname = \"drop\"\nkind = \"write\"\nsql = \"DROP TABLE shop.victim\"\n\
         [[query]]\nname = \"program\"\nkind = \"write\"\nsql = \"COPY (SELECT 1) TO PROGRAM 'touch {}'\"\n\
         [[query]]\nname = \"create\"\nkind = \"write\"\nsql = \"CREATE TABLE public.hostile_pwned (x int)\"\n\
         [[query]]\nname = \"read\"\nkind = \"read\"\nsql = \"SELECT pg_read_file('/etc/passwd')\"\n",
        program_file.display()
    );
    let text = run(&hostile, "hostile");
    assert!(!text.contains(PASSWD), "{text}");
    assert_eq!(
        number(&admin, "SELECT count(*) FROM shop.victim").await,
        1,
        "{text}"
    );
    assert!(!program_file.exists(), "COPY TO PROGRAM ran: {text}");
    assert_eq!(
        number(
            &admin,
            "SELECT count(*) FROM pg_class WHERE relname = 'hostile_pwned'"
        )
        .await,
        0
    );

    // Naming the superuser does not get around it.
    let as_admin = "name = \"admin\"\n[context]\nrole = \"crmbench_admin\"\n\
                    [[query]]\nname = \"q\"\nkind = \"read\"\nsql = \"SELECT 1\"\n";
    let (code, text) = check("hostile_norole", as_admin);
    assert_eq!(code, 2, "{text}");
    assert!(text.contains("is a superuser"), "{text}");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

#[test]
fn run_folders_are_private_unless_shareable() {
    data();
    let dir = tempfile::tempdir().unwrap();
    let (_w, workload) = common::write_workload(&tiny_workload());
    for (shareable, folder_mode, file_mode) in [(false, 0o700, 0o600), (true, 0o755, 0o644)] {
        let out = dir.path().join(format!("explain-{shareable}"));
        let mut cmd = on_private(DATA);
        if shareable {
            cmd.arg("--shareable");
        }
        cmd.args(["explain", "--workload", &workload])
            .arg("--out")
            .arg(&out)
            .assert()
            .success();
        assert_eq!(mode(&out), folder_mode, "--shareable {shareable}");
        assert_eq!(
            mode(&out.join("plans.json")),
            file_mode,
            "--shareable {shareable}"
        );
    }
}

/// Lookups by sampled emails: a tenant, a pattern, and a ref to a row id.
fn tiny_workload() -> String {
    format!(
        "name = \"lookups\"\n{}\n\
         [[query]]\nname = \"by_email\"\nkind = \"read\"\n\
         sql = \"SELECT id, email FROM customers WHERE tenant_id = $1 AND email = $2\"\n\
         params = [{{ tenant = true }}, {{ sample = \"customers.email\" }}]\n\
         [[query]]\nname = \"by_suffix\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE email LIKE '%' || $1\"\n\
         params = [{{ sample = \"customers.email\" }}]\n\
         [[query]]\nname = \"chain\"\nkind = \"read\"\n  [[query.statements]]\n\
         sql = \"SELECT id FROM customers WHERE email = $1\"\n\
         params = [{{ sample = \"customers.email\" }}]\n  [[query.statements]]\n\
         sql = \"SELECT email FROM customers WHERE id = $1\"\nparams = [{{ ref = \"id\" }}]\n",
        common::CONTEXT
    )
}

/// Every email and tenant id of the dataset found in `text`.
fn sampled_values_in(text: &str, secrets: &[String]) -> Vec<String> {
    secrets
        .iter()
        .filter(|s| text.contains(s.as_str()))
        .cloned()
        .collect()
}

/// The `CREATE INDEX` statements advise chose from the plans.json in `folder`.
fn advise_from(folder: &Path, workload: &str) -> Vec<String> {
    on_url(DATA)
        .args(["advise", "--workload", workload])
        .arg("--out")
        .arg(folder)
        .assert()
        .success();
    let advice: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("advice.json")).unwrap())
            .unwrap();
    let mut chosen: Vec<String> = advice["selection"]["chosen"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["create_sql"].as_str().unwrap_or_default().to_string())
        .collect();
    chosen.sort();
    chosen
}

#[tokio::test]
async fn explain_on_a_url_keeps_sampled_values_out_of_plans_json() {
    let target = data();
    let admin = pg::connect(&target.admin()).await.unwrap();
    let secrets: Vec<String> = admin
        .query(
            "SELECT email FROM crm.customers UNION ALL SELECT id::text FROM crm.tenants",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let (_w, workload) = common::write_workload(&tiny_workload());
    let explain = |mut cmd: Command, flag: Option<&str>, name: &str| {
        let out = dir.path().join(name);
        cmd.args(["explain", "--workload", &workload]);
        if let Some(flag) = flag {
            cmd.arg(flag);
        }
        cmd.arg("--out").arg(&out).assert().success();
        std::fs::read_to_string(out.join("plans.json")).unwrap()
    };
    // Default on a URL target: redacted.
    let redacted = explain(on_url(DATA), None, "url");
    assert_eq!(sampled_values_in(&redacted, &secrets), Vec::<String>::new());
    assert!(redacted.contains("'<redacted>'::text"), "{redacted}");
    // The control: kept, the plans show customers' emails.
    let kept = explain(on_url(DATA), Some("--no-redact-values"), "kept");
    assert!(!sampled_values_in(&kept, &secrets).is_empty());
    // Asked for on the private server.
    let asked = explain(on_private(DATA), Some("--redact-values"), "private");
    assert_eq!(sampled_values_in(&asked, &secrets), Vec::<String>::new());

    // The advisor reads columns, not values: the same indexes either way.
    let from_redacted = advise_from(&dir.path().join("url"), &workload);
    assert!(!from_redacted.is_empty());
    assert_eq!(
        from_redacted,
        advise_from(&dir.path().join("kept"), &workload)
    );
    let advice = std::fs::read_to_string(dir.path().join("url/advice.json")).unwrap();
    assert_eq!(sampled_values_in(&advice, &secrets), Vec::<String>::new());
}
