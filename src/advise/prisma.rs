//! Prisma output for teams that manage their schema with Prisma: the
//! `@@index` lines per model, and one migration folder per index (Prisma
//! Migrate has sent a whole migration file as one query, where CREATE INDEX
//! CONCURRENTLY fails with SQLSTATE 25001 unless it is alone: prisma/prisma
//! #14456, #22922).

use super::candidates::IndexDef;

/// `order_items` → `OrderItem` (Prisma's conventional model name).
pub fn model_name(table: &str) -> String {
    let singular = table
        .strip_suffix("ies")
        .map(|s| format!("{s}y"))
        .or_else(|| table.strip_suffix("history").map(|s| format!("{s}history")))
        .or_else(|| table.strip_suffix('s').map(str::to_string))
        .unwrap_or_else(|| table.to_string());
    singular
        .split('_')
        .filter(|p| !p.is_empty())
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_uppercase().collect::<String>() + c.as_str())
                .unwrap_or_default()
        })
        .collect()
}

/// `customer_id` → `customerId`.
pub fn field_name(column: &str) -> String {
    let mut out = String::new();
    for (i, p) in column.split('_').enumerate() {
        if i == 0 {
            out.push_str(p);
        } else {
            let mut c = p.chars();
            if let Some(f) = c.next() {
                out.extend(f.to_uppercase());
                out.push_str(c.as_str());
            }
        }
    }
    out
}

/// The `@@index([...], map: "...")` line of an index.
pub fn index_line(def: &IndexDef) -> String {
    let fields: Vec<String> = def
        .columns
        .iter()
        .map(|c| {
            let f = field_name(&c.name);
            if c.desc {
                format!("{f}(sort: Desc)")
            } else {
                f
            }
        })
        .collect();
    format!("@@index([{}], map: \"{}\")", fields.join(", "), def.name())
}

/// `indexes.prisma`: the lines grouped by model, to paste into schema.prisma.
pub fn schema_lines(defs: &[IndexDef]) -> String {
    let mut out = String::from(
        "// crmbench: add each line inside its model in schema.prisma.\n\
         // Model and field names follow Prisma's conventions (PascalCase models,\n\
         // camelCase fields); adjust them if your schema maps names differently.\n\n",
    );
    let mut tables: Vec<&str> = defs.iter().map(|d| d.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for t in tables {
        out.push_str(&format!("model {} {{ // table {t}\n", model_name(t)));
        for d in defs.iter().filter(|d| d.table == t) {
            let expression = d.columns.iter().any(|c| c.name.contains('('));
            match &d.predicate {
                None if expression => out.push_str(&format!(
                    "  // expression index, not expressible with @@index; keep it as raw SQL \
                     in its migration: {}\n",
                    d.create_sql("<schema>")
                )),
                None => out.push_str(&format!("  {}\n", index_line(d))),
                // Prisma expresses partial indexes only with the
                // partialIndexes preview feature: give the SQL instead.
                Some(_) => out.push_str(&format!(
                    "  // partial index, not expressible without previewFeatures = [\"partialIndexes\"];\n  \
                     // keep it as raw SQL in its migration: {}\n",
                    d.create_sql("<schema>")
                )),
            }
        }
        out.push_str("}\n\n");
    }
    out
}

/// One (folder name, migration.sql) per index, each statement alone.
pub fn migrations(defs: &[IndexDef], schema: &str, stamp: &str) -> Vec<(String, String)> {
    defs.iter()
        .enumerate()
        .map(|(i, d)| {
            let sql = d.create_concurrently_sql(schema);
            (
                format!("{stamp}{:02}_crmbench_{}", i + 1, d.name()),
                format!(
                    "-- crmbench: alone in its migration so Prisma Migrate does not wrap it in a\n\
                     -- transaction (CREATE INDEX CONCURRENTLY cannot run inside one).\n{sql};\n"
                ),
            )
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::candidates::IndexColumn;
    use super::*;

    #[test]
    fn prisma_names_and_lines() {
        assert_eq!(model_name("order_items"), "OrderItem");
        assert_eq!(model_name("categories"), "Category");
        assert_eq!(model_name("deal_stage_history"), "DealStageHistory");
        assert_eq!(model_name("staff"), "Staff");
        assert_eq!(field_name("tenant_id"), "tenantId");
        let d = IndexDef {
            predicate: None,
            table: "orders".into(),
            columns: vec![
                IndexColumn {
                    name: "tenant_id".into(),
                    desc: false,
                },
                IndexColumn {
                    name: "placed_at".into(),
                    desc: true,
                },
            ],
        };
        assert_eq!(
            index_line(&d),
            "@@index([tenantId, placedAt(sort: Desc)], map: \"orders_tenant_id_placed_at_idx\")"
        );
        let m = migrations(&[d], "crm", "20260101000000");
        assert_eq!(m[0].1.matches("IF NOT EXISTS").count(), 1);
        assert!(m[0].0.starts_with("2026010100000001_crmbench_"));
    }
}
