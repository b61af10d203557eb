//! HypoPG on demand: on a database where the extension is available but not
//! created, `advise` says so and how much faster what-if is with it (and
//! without --allow-ddl falls back); with --allow-ddl it creates HypoPG for the
//! run, costs with it, and drops it afterwards unless --keep-hypopg asks to
//! keep it.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::pg::private::SUPERUSER;
use crmbench::pg::{self, Target};

const DB: &str = "hypo_shop";

async fn hypopg_created(target: &Target) -> bool {
    pg::connect(&target.admin())
        .await
        .unwrap()
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'hypopg')",
            &[],
        )
        .await
        .unwrap()
        .get(0)
}

fn advise(
    url: &str,
    flags: &[&str],
    workload: &std::path::Path,
    out: &std::path::Path,
) -> (bool, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"));
    cmd.env("DATABASE_URL", url).env(
        "CRMBENCH_DATA_DIR",
        "/nonexistent/crmbench-must-not-be-used",
    );
    // --allow-ddl is global: after `advise` too, beside advise's own flags.
    let output = cmd
        .arg("advise")
        .args(flags)
        .arg("--workload")
        .arg(workload)
        .arg("--out")
        .arg(out)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn advise_creates_hypopg_under_allow_ddl_and_says_why_without() {
    let target = common::fresh_database(DB).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(
            "CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id bigint PRIMARY KEY, category int NOT NULL, name text NOT NULL); \
             INSERT INTO shop.items SELECT g, g % 500, 'item ' || g FROM generate_series(1, 20000) g; \
             ANALYZE shop.items;",
        )
        .await
        .unwrap();
    drop(admin);
    assert!(!hypopg_created(&target).await);
    let dir = tempfile::tempdir().unwrap();
    let workload = dir.path().join("shop.toml");
    std::fs::write(
        &workload,
        "name = \"shop\"\n[[query]]\nname = \"by_category\"\nkind = \"read\"\n\
         sql = \"SELECT id, name FROM shop.items WHERE category = $1\"\n\
         params = [{ int = [0, 499] }]\n",
    )
    .unwrap();
    let url = common::cluster().server.url(SUPERUSER, DB);

    // Without --allow-ddl: the reason, the fix, and what HypoPG saves.
    let (_, stderr) = advise(&url, &[], &workload, &dir.path().join("a"));
    assert!(
        stderr.contains(&format!(
            "HypoPG is available on this server but not created in database {DB}"
        )) && stderr.contains("pass --allow-ddl")
            && stderr.contains("in milliseconds"),
        "{stderr}"
    );
    assert!(!hypopg_created(&target).await);

    // With it: created for the run, used, dropped afterwards.
    let out = dir.path().join("b");
    let (ok, stderr) = advise(&url, &["--allow-ddl"], &workload, &out);
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("created extension hypopg in database {DB}"))
            && stderr.contains("dropped extension hypopg"),
        "{stderr}"
    );
    assert!(!stderr.contains("building candidate"), "{stderr}");
    let advice: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("advice.json")).unwrap()).unwrap();
    assert!(
        advice["method"].as_str().unwrap().contains("HypoPG"),
        "{}",
        advice["method"]
    );
    assert!(!hypopg_created(&target).await);

    // --keep-hypopg: created and used the same way, then left in place.
    let (ok, stderr) = advise(
        &url,
        &["--allow-ddl", "--keep-hypopg"],
        &workload,
        &dir.path().join("c"),
    );
    assert!(ok, "{stderr}");
    assert!(
        stderr.contains(&format!("created extension hypopg in database {DB}"))
            && stderr.contains(&format!("kept extension hypopg in database {DB}"))
            && !stderr.contains("dropped extension hypopg"),
        "{stderr}"
    );
    assert!(hypopg_created(&target).await);
}
