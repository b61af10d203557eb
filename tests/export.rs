//! `crmbench export` on a generated CRM: a customer's rows as JSON lines are
//! exactly its rows and those referencing it; a tenant's CSV export loads
//! into an empty schema of another database with every table's checksum
//! equal, and an import that does not match rolls back.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::export::checksum;
use crmbench::export::import::import;
use crmbench::export::{ExportOptions, Format, export, rows};
use crmbench::pg::{self, Target, private::SUPERUSER};
use crmbench::schema::{self, CreateOptions};

fn options(
    customer: Option<String>,
    tenant: Option<String>,
    out: &std::path::Path,
) -> ExportOptions {
    ExportOptions {
        schema: "crm".into(),
        customer,
        tenant,
        policy: Some("fixtures/erase/crm.toml".into()),
        out: out.to_path_buf(),
        format: None,
        column: "tenant_id".into(),
    }
}

async fn source() -> (Target, tokio_postgres::Client, String, String) {
    let target = common::generated("export_src", 0.001, 7).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    let row = admin
        .query_one(
            "SELECT c.tenant_id::text, c.id::text FROM crm.customers c \
             WHERE EXISTS (SELECT 1 FROM crm.orders o WHERE o.tenant_id = c.tenant_id AND o.customer_id = c.id) \
               AND EXISTS (SELECT 1 FROM crm.audit_log a WHERE a.tenant_id = c.tenant_id \
                           AND a.entity = 'customer' AND a.entity_id = c.id) \
             ORDER BY 1, 2 LIMIT 1",
            &[],
        )
        .await
        .unwrap();
    let (tenant, id) = (row.get(0), row.get(1));
    (target, admin, tenant, id)
}

#[tokio::test]
async fn a_customer_and_a_tenant_are_exported_and_the_tenant_reimported_with_equal_checksums() {
    let (target, admin, tenant, id) = source().await;
    let dir = tempfile::tempdir().unwrap();

    // A customer: JSON lines, one file per table, lines = manifest rows.
    let cust = dir.path().join("customer");
    let m = export(&target, &options(Some(id.clone()), None, &cust))
        .await
        .unwrap();
    assert_eq!(m.format, Format::Jsonl);
    assert_eq!(m.tenant, tenant);
    assert_eq!(m.tables[0].table, "customers", "parents first");
    let counts = rows(&m);
    assert_eq!(counts["customers"], 1);
    let orders: i64 = admin
        .query_one(
            "SELECT count(*) FROM crm.orders WHERE tenant_id::text = $1 AND customer_id::text = $2",
            &[&tenant, &id],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(counts["orders"], orders);
    assert!(counts["audit_log"] > 0, "declared references exported");
    for t in &m.tables {
        let text = std::fs::read_to_string(cust.join(&t.file)).unwrap();
        assert_eq!(text.lines().count() as i64, t.checksum.rows, "{}", t.file);
        for line in text.lines() {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            assert_eq!(v["tenant_id"], tenant.as_str(), "{}", t.file);
        }
    }
    let line = std::fs::read_to_string(cust.join("customers.jsonl")).unwrap();
    let v: serde_json::Value = serde_json::from_str(line.trim()).unwrap();
    assert_eq!(v["id"].to_string(), id);

    // A tenant: CSV by COPY, into an empty schema elsewhere.
    let ten = dir.path().join("tenant");
    let m = export(&target, &options(None, Some(tenant.clone()), &ten))
        .await
        .unwrap();
    assert_eq!(m.format, Format::Csv);
    assert_eq!(m.tables[0].table, "tenants");
    assert!(rows(&m)["customers"] > 1);
    let empty = common::fresh_database("export_dst").await;
    schema::create(&empty, &CreateOptions::default())
        .await
        .unwrap();
    let loaded = import(&empty, &ten, "crm").await.unwrap();
    assert_eq!(loaded, rows(&m).values().sum::<i64>());
    let dst = pg::connect(&empty.admin()).await.unwrap();
    for t in &m.tables {
        let pred = format!("{}::text = '{tenant}'", t.tenant_column);
        let a = checksum::table(&admin, "crm", &t.table, &pred)
            .await
            .unwrap();
        let b = checksum::table(&dst, "crm", &t.table, &pred).await.unwrap();
        assert_eq!(a, b, "{}", t.table);
        assert_eq!(a, t.checksum, "{}", t.table);
    }

    // A file changed after the export: the import proves it wrong, loads nothing.
    let again = common::fresh_database("export_bad").await;
    schema::create(&again, &CreateOptions::default())
        .await
        .unwrap();
    let file = ten.join("customers.csv");
    let text = std::fs::read_to_string(&file).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.pop();
    std::fs::write(&file, lines.join("\n") + "\n").unwrap();
    let err = import(&again, &ten, "crm").await.unwrap_err().to_string();
    assert!(
        err.contains("crm.customers") && err.contains("rolled back"),
        "{err}"
    );
    let left: i64 = pg::connect(&again.admin())
        .await
        .unwrap()
        .query_one("SELECT count(*) FROM crm.tenants", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);

    // The commands: export exits 0 and writes the manifest; the tampered
    // import exits 2 naming the table.
    let cli = |db: &str| {
        let mut cmd = assert_cmd::Command::cargo_bin("crmbench").unwrap();
        cmd.env("DATABASE_URL", common::cluster().server.url(SUPERUSER, db))
            .env(
                "CRMBENCH_DATA_DIR",
                "/nonexistent/crmbench-must-not-be-used",
            );
        cmd
    };
    let out = cli("export_src")
        .args(["export", "--customer", &id, "--tenant", &tenant, "--out"])
        .arg(dir.path().join("cli"))
        .output()
        .unwrap();
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("manifest.json holds the checksums"));
    assert!(dir.path().join("cli/manifest.json").is_file());
    let out = cli("export_bad").arg("import").arg(&ten).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("crm.customers"));
}
