//! A real ORM client captured and replayed: a Node script with Prisma
//! Client 7 and the `pg` driver adapter (fixtures/capture/prisma/client.cjs)
//! runs a help desk's requests over a multi-tenant schema of its own
//! (schema.prisma: a "tenantId" column, uniques per tenant, RLS on the
//! setting app.tenant), each in a transaction that sets the tenant. Then
//! `crmbench capture --check-replay`: every statement Prisma sent is
//! replayable, every `$n` has a generator, the tenant context comes from the
//! policies, and the replay fails nowhere.
//!
//! npm installs Prisma into /var/tmp/crmbench-prisma-client on first use
//! (once for all test processes, flock; about 30 s), then `prisma generate`
//! runs offline (about 2 s). Where npm is missing the test says so and
//! passes; CI has npm (.ci/run requires it).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::{Command, Output};

const DB: &str = "prisma_desk";
const DIR: &str = "/var/tmp/crmbench-prisma-client";
const VERSION: &str = "7.10.0";
const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/fixtures/capture/prisma");

/// Prisma, its client, the pg adapter and the client generated from the
/// fixture's schema.prisma in [`DIR`]; `false` when npm is missing.
fn install_client() -> bool {
    if Command::new("npm").arg("--version").output().is_err() {
        eprintln!("SKIPPED: npm is missing (apt-get install -y npm); CI has it");
        return false;
    }
    std::fs::create_dir_all(DIR).unwrap();
    let packages =
        format!("prisma@{VERSION} @prisma/client@{VERSION} @prisma/adapter-pg@{VERSION} pg@8.16.3");
    let status = Command::new("flock")
        .args([&format!("{DIR}/.lock"), "sh", "-c"])
        .arg(format!(
            "set -e; cd {DIR}; \
             test -d node_modules/@prisma/adapter-pg || \
               npm install --prefix . --no-audit --no-fund {packages}; \
             cp {FIXTURES}/schema.prisma .; \
             PRISMA_HIDE_UPDATE_MESSAGE=1 PRISMA_SCHEMA_ENGINE_BINARY=/bin/true \
               node_modules/.bin/prisma generate --schema schema.prisma"
        ))
        .status()
        .unwrap();
    assert!(
        status.success(),
        "installing Prisma Client into {DIR} failed"
    );
    true
}

fn crmbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .env_remove("DATABASE_URL")
        .args(["--database", DB])
        .args(args)
        .output()
        .unwrap()
}

#[tokio::test]
async fn a_prisma_clients_statements_are_captured_and_replay() {
    if !install_client() {
        return;
    }
    let target = common::fresh_database(DB).await;
    let admin = crmbench::pg::connect(&target.admin()).await.unwrap();
    let schema = std::fs::read_to_string(Path::new(FIXTURES).join("schema.sql")).unwrap();
    admin.batch_execute(&schema).await.unwrap();
    admin
        .batch_execute(
            "CREATE EXTENSION IF NOT EXISTS pg_stat_statements; SELECT pg_stat_statements_reset()",
        )
        .await
        .unwrap();

    // The application: Prisma over the Unix socket as desk_app.
    let url = common::cluster().server.url("desk_app", DB);
    let node = Command::new("node")
        .arg(Path::new(FIXTURES).join("client.cjs"))
        .args([DIR, &url, "60"])
        .output()
        .unwrap();
    assert!(
        node.status.success(),
        "{}",
        String::from_utf8_lossy(&node.stderr)
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("prisma.toml");
    let captured = crmbench(&[
        "capture",
        "--coverage",
        "100",
        "--out",
        file.to_str().unwrap(),
        "--check-replay",
        "--replay-duration",
        "3s",
    ]);
    let stdout = String::from_utf8_lossy(&captured.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&captured.stderr);
    // The comparison goes to the test log: its figures are the report's.
    eprintln!("{stdout}");
    assert!(
        matches!(captured.status.code(), Some(0 | 1)),
        "{stdout}\n{stderr}"
    );
    let text = std::fs::read_to_string(&file).unwrap();
    // The role that ran it and the tenant context, from the RLS policies.
    assert!(stdout.contains("of role desk_app"), "{stdout}");
    assert!(
        text.contains("tenant_setting = \"app.tenant\"") && text.contains("{ tenant = true }"),
        "{text}"
    );
    // Every statement Prisma sent is a query (the transaction's BEGIN,
    // set_config and COMMIT are the frame): find by email, the include's
    // two IN lists, the ticket list, the page and the update.
    assert!(!stdout.contains("not replayable"), "{stdout}");
    assert_eq!(text.matches("[[query]]").count(), 6, "{text}");
    assert!(!text.contains("set_config"), "{text}");
    for needle in [
        "\"public\".\"Contact\".\"email\" = $2",
        "\"public\".\"Contact\".\"id\" IN ($1,",
        "LIMIT $2 OFFSET $3",
        "UPDATE \"public\".\"Ticket\"",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    // Parameters from the catalog: emails and ticket numbers sampled per
    // tenant (through "tenantId", which the file names), the include's ids
    // from their columns, the first page of a typical size (OFFSET 0, as
    // Prisma sends it without `skip`) with how to widen it; Prisma's own
    // `$5=$6` gets one value on both sides, so it holds as it did.
    for needle in [
        "tenant_column = \"tenantId\"",
        "{ sample = 'public.\"Contact\".email' }",
        "{ sample = 'public.\"Ticket\".number' }",
        "{ sample = 'public.\"Comment\".\"ticketId\"' }",
        "{ int = [20, 20] }",
        "{ int = [0, 0] }",
        "is an OFFSET and the source kept no values",
        "{ value = \"captured\" }, { value = \"captured\" }]",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    let checked = crmbench(&["run", "--workload", file.to_str().unwrap(), "--check"]);
    assert!(
        checked.status.success(),
        "{}",
        String::from_utf8_lossy(&checked.stderr)
    );
    // Replayed: one row per query, none failing, none that never ran.
    let rows: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with('q') && l.as_bytes().get(1).is_some_and(u8::is_ascii_digit))
        .collect();
    assert_eq!(rows.len(), 6, "{stdout}");
    for row in rows {
        assert!(
            !row.contains("failed") && !row.contains("never ran"),
            "{stdout}"
        );
    }
}
