//! A server given by --database-url: crmbench changes nothing beyond its own
//! schema without --allow-ddl, and checks privileges first.

#![allow(clippy::unwrap_used)]

mod common;

use assert_cmd::Command;
use crmbench::pg::private::{PrivateServer, SUPERUSER};
use crmbench::pg::{self, Target};
use predicates::prelude::*;

fn crmbench(url: &str) -> Command {
    let mut cmd = Command::cargo_bin("crmbench").expect("binary");
    // Point the private-server settings somewhere harmless: they must not be used.
    cmd.env("DATABASE_URL", url).env(
        "CRMBENCH_DATA_DIR",
        "/nonexistent/crmbench-must-not-be-used",
    );
    cmd
}

#[tokio::test]
async fn external_server_needs_allow_ddl_and_privileges() {
    // A bare cluster: no crmbench roles, as on a client's server.
    let base = common::scratch_base("ext");
    let (server, _) = PrivateServer::ensure_running(&common::test_options(&base)).unwrap();
    let admin = pg::connect(&Target::private(server.clone()).admin_to("postgres"))
        .await
        .unwrap();
    for db in ["shop", "shop2", "shop3"] {
        admin
            .batch_execute(&format!("CREATE DATABASE {db}"))
            .await
            .unwrap();
    }
    admin
        .batch_execute("CREATE ROLE limited LOGIN")
        .await
        .unwrap();

    let shop = server.url(SUPERUSER, "shop");
    crmbench(&shop)
        .args(["schema", "create"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "creating roles crmbench_owner, crmbench_app",
        ))
        .stderr(predicate::str::contains("--allow-ddl"));
    let roles: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_roles WHERE rolname LIKE 'crmbench_%'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        roles, 1,
        "only the bootstrap superuser may exist; nothing was created"
    );

    crmbench(&shop)
        .args(["--allow-ddl", "schema", "create"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "extension pg_stat_statements   created",
        ));

    // Roles exist now: the schema is crmbench's own to create, extensions are not.
    crmbench(&server.url(SUPERUSER, "shop2"))
        .args(["schema", "create"])
        .assert()
        .success()
        .stdout(predicate::str::contains(
            "pass --allow-ddl to let crmbench create it",
        ));
    let shop2 = pg::connect(&Target::private(server.clone()).admin_to("shop2"))
        .await
        .unwrap();
    let exts: i64 = shop2
        .query_one(
            "SELECT count(*) FROM pg_extension WHERE extname IN ('hypopg', 'pg_stat_statements')",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(exts, 0, "extensions created without --allow-ddl");

    // A role without CREATE on the database is told which privilege is missing.
    crmbench(&server.url("limited", "shop3"))
        .args(["schema", "create"])
        .assert()
        .code(2)
        .stderr(predicate::str::contains(
            "missing privilege: CREATE on database shop3",
        ))
        .stderr(predicate::str::contains(
            "GRANT CREATE ON DATABASE shop3 TO limited",
        ));
    server.stop().unwrap();
}
