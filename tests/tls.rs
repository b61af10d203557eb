//! Connections as libpq makes them, against this process's private server
//! turned into a TLS-only server with a CA and a server certificate made here
//! (openssl): every sslmode, libpq's root-certificate rules, the messages that
//! name the mode and the fix, and passwords from PGPASSWORD and ~/.pgpass
//! that are used and never printed.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

use crmbench::pg::private::SUPERUSER;
use crmbench::pg::target::External;
use crmbench::pg::{self, Target, quote_literal};
use tokio_postgres::Client;

const PASSWORD: &str = "Tls-Secret-9f3kQ";
const DB: &str = "tls_shop";

/// Turn TLS on or off; `hostssl` only (a TLS-only server) or both.
async fn configure(admin: &Client, ssl: bool, tls_only: bool) {
    let host = if tls_only { "hostssl" } else { "host" };
    let hba = format!("local all all trust\n{host} all all 127.0.0.1/32 scram-sha-256\n");
    common::tls::configure(admin, &hba, ssl).await;
}

/// A target from `url` with only `env` as libpq's environment and `home` as
/// the home folder.
fn target(url: &str, env: &[(&str, &str)], home: &Path) -> crmbench::Result<Target> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let lookup = move |var: &str| env.iter().find(|(k, _)| k == var).map(|(_, v)| v.clone());
    Ok(Target::External(External::parse_with(
        url,
        false,
        lookup,
        Some(home.to_path_buf()),
    )?))
}

/// Connect and say whether the session is encrypted.
async fn encrypted(target: &Target) -> crmbench::Result<bool> {
    let client = pg::connect(&target.admin()).await?;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .unwrap();
    Ok(row.get(0))
}

fn full_error(e: &crmbench::Error) -> String {
    format!("{e} — {}", e.fix().unwrap_or_default())
}

fn crmbench(url: &str, home: &Path, password: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env("HOME", home)
        .env(
            "CRMBENCH_DATA_DIR",
            "/nonexistent/crmbench-must-not-be-used",
        )
        .env_remove("DATABASE_URL")
        .env_remove("PGPASSWORD")
        .arg("--database-url")
        .arg(url)
        .args(args);
    if let Some(p) = password {
        cmd.env("PGPASSWORD", p);
    }
    cmd.output().unwrap()
}

fn assert_no_password(out: &Output, folder: &Path) {
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains(PASSWORD), "{text}");
    for entry in std::fs::read_dir(folder).into_iter().flatten().flatten() {
        let body = std::fs::read(entry.path()).unwrap_or_default();
        assert!(
            !String::from_utf8_lossy(&body).contains(PASSWORD),
            "{}",
            entry.path().display()
        );
    }
}

#[tokio::test]
async fn every_sslmode_against_a_tls_only_server() {
    let certs = tempfile::tempdir().unwrap();
    let ca = common::tls::self_signed(certs.path(), "ca");
    let other_ca = common::tls::self_signed(certs.path(), "otherca");
    common::tls::server_cert_signed_by(certs.path(), "ca");
    let home = tempfile::tempdir().unwrap();

    let shop = common::fresh_database(DB).await;
    let admin = pg::connect(&shop.admin()).await.unwrap();
    admin
        .batch_execute(&format!(
            "ALTER ROLE {SUPERUSER} PASSWORD {}; \
             CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id bigint PRIMARY KEY, name text NOT NULL); \
             INSERT INTO shop.items SELECT g, 'item ' || g FROM generate_series(1, 1000) g; \
             GRANT USAGE ON SCHEMA shop TO crmbench_app; \
             GRANT SELECT ON shop.items TO crmbench_app;",
            quote_literal(PASSWORD)
        ))
        .await
        .unwrap();
    common::tls::install_server_cert(certs.path());
    configure(&admin, true, true).await;

    let port = common::cluster().server.port();
    let url =
        |host: &str, query: &str| format!("postgresql://{SUPERUSER}@{host}:{port}/{DB}?{query}");
    let pw = [("PGPASSWORD", PASSWORD)];
    let ca_arg = format!("sslrootcert={}", ca.display());

    // verify-full: the CA and the certificate's name.
    let full = url("localhost", &format!("sslmode=verify-full&{ca_arg}"));
    assert!(
        encrypted(&target(&full, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );
    // ... but not another name of the same host.
    let wrong_host = url("127.0.0.1", &format!("sslmode=verify-full&{ca_arg}"));
    let err = encrypted(&target(&wrong_host, &pw, home.path()).unwrap())
        .await
        .unwrap_err();
    let text = full_error(&err);
    assert!(
        text.contains("certificate is not valid for host \"127.0.0.1\"")
            && text.contains("localhost")
            && text.contains("use verify-ca or connect by the certificate's name"),
        "{text}"
    );
    // verify-ca checks the chain only.
    let ca_only = url("127.0.0.1", &format!("sslmode=verify-ca&{ca_arg}"));
    assert!(
        encrypted(&target(&ca_only, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );
    // A CA that did not sign the certificate.
    let other = url(
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", other_ca.display()),
    );
    let err = encrypted(&target(&other, &pw, home.path()).unwrap())
        .await
        .unwrap_err();
    assert!(
        full_error(&err).contains("not signed by a CA in"),
        "{}",
        full_error(&err)
    );
    // No CA at all: libpq's default file is named, with the ways out.
    let err = target(&url("localhost", "sslmode=verify-full"), &pw, home.path()).unwrap_err();
    let text = full_error(&err);
    assert!(
        text.contains(&format!(
            "root certificate file \"{}\" does not exist",
            home.path().join(".postgresql/root.crt").display()
        )) && text.contains("sslrootcert=system"),
        "{text}"
    );
    // require encrypts without a CA; with the default root file present it
    // verifies the chain (libpq's rule), so the other CA fails.
    let require = url("127.0.0.1", "sslmode=require");
    assert!(
        encrypted(&target(&require, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );
    let with_root = tempfile::tempdir().unwrap();
    std::fs::create_dir(with_root.path().join(".postgresql")).unwrap();
    std::fs::copy(&other_ca, with_root.path().join(".postgresql/root.crt")).unwrap();
    let err = encrypted(&target(&require, &pw, with_root.path()).unwrap())
        .await
        .unwrap_err();
    assert!(
        full_error(&err).contains("not signed by a CA"),
        "{}",
        full_error(&err)
    );
    // allow: plain is refused by this server, so it goes on with TLS.
    let allow = url("127.0.0.1", "sslmode=allow");
    assert!(
        encrypted(&target(&allow, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );
    // disable never negotiates: this TLS-only server turns it away.
    let disable = url("127.0.0.1", "sslmode=disable");
    let err = encrypted(&target(&disable, &pw, home.path()).unwrap())
        .await
        .unwrap_err();
    assert!(
        matches!(err, crmbench::Error::Auth { .. }) && err.to_string().contains("no encryption"),
        "{err}"
    );
    // The default (prefer) encrypts when the server offers it.
    let prefer = url("127.0.0.1", "");
    assert!(
        encrypted(&target(&prefer, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );

    // The command line, as a user runs it: verify-full with PGPASSWORD.
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("shop.toml");
    std::fs::write(
        &workload,
        "name = \"shop\"\n[[query]]\nname = \"by_id\"\nkind = \"read\"\n\
         sql = \"SELECT name FROM shop.items WHERE id = $1\"\nparams = [{ int = [1, 1000] }]\n",
    )
    .unwrap();
    let out_dir = dir.path().join("run");
    let run_args = [
        "run",
        "--workload",
        workload.to_str().unwrap(),
        "--duration",
        "1s",
        "--warmup",
        "0s",
        "--clients",
        "1",
        "-q",
        "--out",
        out_dir.to_str().unwrap(),
    ];
    let out = crmbench(&full, home.path(), Some(PASSWORD), &run_args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_password(&out, &out_dir);
    let out = crmbench(&wrong_host, home.path(), Some(PASSWORD), &run_args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("certificate is not valid for host \"127.0.0.1\"")
            && stderr.contains("use verify-ca"),
        "{stderr}"
    );
    // The password from ~/.pgpass (0600), never printed.
    std::fs::write(
        home.path().join(".pgpass"),
        format!("localhost:{port}:{DB}:{SUPERUSER}:{PASSWORD}\n"),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(
        home.path().join(".pgpass"),
        std::fs::Permissions::from_mode(0o600),
    )
    .unwrap();
    let out_dir2 = dir.path().join("run2");
    let mut args = run_args.to_vec();
    let last = args.len() - 1;
    args[last] = out_dir2.to_str().unwrap();
    let out = crmbench(&full, home.path(), None, &args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_no_password(&out, &out_dir2);
    // Without it (and without PGPASSWORD) the server asks for a password.
    std::fs::remove_file(home.path().join(".pgpass")).unwrap();
    let out = crmbench(&full, home.path(), None, &args);
    assert!(!out.status.success());

    // A server without TLS: prefer goes on in plain text, require says why not.
    configure(&admin, false, false).await;
    assert!(
        !encrypted(&target(&prefer, &pw, home.path()).unwrap())
            .await
            .unwrap()
    );
    let err = encrypted(&target(&require, &pw, home.path()).unwrap())
        .await
        .unwrap_err();
    let text = full_error(&err);
    assert!(
        text.contains("server does not support SSL, but sslmode=require"),
        "{text}"
    );
}
