//! The Prisma output is valid Prisma: the `@@index` lines for a client's own
//! schema (fixtures/prisma/schema.prisma, whose models and fields are mapped
//! onto the tables with other names) use that schema's names, and
//! `prisma validate` (npm `prisma`, offline: its checks run in bundled wasm
//! once PRISMA_SCHEMA_ENGINE_BINARY is set) accepts the schema with them
//! added. npm installs prisma into /var/tmp/crmbench-prisma on first use.

#![allow(clippy::unwrap_used)]

use crmbench::advise::candidates::{IndexColumn, IndexDef};
use crmbench::advise::prisma::{Names, add_to_schema, schema_lines};

mod common;

use common::prisma::validate;

fn def(table: &str, cols: &[(&str, bool)]) -> IndexDef {
    IndexDef {
        table: table.into(),
        columns: cols
            .iter()
            .map(|(n, desc)| IndexColumn {
                name: n.to_string(),
                desc: *desc,
            })
            .collect(),
        predicate: None,
        include: Vec::new(),
    }
}

#[test]
fn emitted_lines_use_the_schemas_names_and_prisma_validate_accepts_them() {
    let schema = std::fs::read_to_string("fixtures/prisma/schema.prisma").unwrap();
    let names = Names::parse(&schema);
    let history = def(
        "orders",
        &[
            ("tenant_id", false),
            ("customer_id", false),
            ("placed_at", true),
        ],
    );
    let by_name = def("customers", &[("tenant_id", false), ("last_name", false)]);
    let mut covering = def("orders", &[("tenant_id", false), ("customer_id", false)]);
    covering.include = vec!["total".into()];
    let mut partial = def("orders", &[("tenant_id", false), ("placed_at", false)]);
    partial.predicate = Some("status = 'open'::text".into());
    let expression = def(
        "customers",
        &[("tenant_id", false), ("lower(email)", false)],
    );
    let defs = [history, by_name, covering, partial, expression];

    let lines = schema_lines(&defs, "shop", &names);
    assert!(
        lines.contains("model Purchase { // table orders"),
        "{lines}"
    );
    assert!(
        lines.contains(
            "@@index([tenantId, buyerId, placedAt(sort: Desc)], map: \"orders_tenant_id_customer_id_placed_at_idx\")"
        ),
        "{lines}"
    );
    assert!(lines.contains("@@index([tenantId, surname]"), "{lines}");
    // What @@index cannot say is given as raw SQL.
    assert!(lines.contains("covering index (INCLUDE)"), "{lines}");
    assert!(lines.contains("partial index"), "{lines}");
    assert!(lines.contains("expression index"), "{lines}");
    // Their SQL names the real schema, never a placeholder (issue 16 item 12).
    assert!(lines.contains(" ON shop.orders ("), "{lines}");
    assert!(!lines.contains("<schema>"), "{lines}");

    let patched = add_to_schema(&schema, &defs, &names);
    assert_eq!(patched.matches("@@index(").count(), 3, "{patched}");
    let (ok, text) = validate(&patched);
    assert!(
        ok,
        "prisma validate rejected the emitted lines:\n{text}\n{patched}"
    );

    // The check has teeth: a line naming a column instead of the field fails.
    let wrong = patched.replace("buyerId, placedAt", "customer_id, placedAt");
    let (ok, text) = validate(&wrong);
    assert!(!ok, "prisma validate accepted an unknown field:\n{text}");
}
