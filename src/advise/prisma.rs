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

/// Model and field names of the tables and columns, read from a
/// `schema.prisma` (`@@map("table")`, `@map("column")`) when one is given;
/// Prisma's conventions ([`model_name`], [`field_name`]) for the rest.
#[derive(Debug, Clone, Default)]
pub struct Names {
    /// table → (model, column → field).
    models: std::collections::HashMap<String, (String, std::collections::HashMap<String, String>)>,
}

impl Names {
    /// Read the models of a Prisma schema's text (through the one reader,
    /// [`crate::prisma::Schema`]).
    pub fn parse(text: &str) -> Names {
        let models = crate::prisma::Schema::parse(text)
            .models
            .into_iter()
            .map(|m| {
                let columns = m
                    .fields
                    .iter()
                    .map(|f| (f.column(), f.name.clone()))
                    .collect();
                (m.table(), (m.name.clone(), columns))
            })
            .collect();
        Names { models }
    }

    /// The model of `table`.
    pub fn model(&self, table: &str) -> String {
        self.models
            .get(table)
            .map_or_else(|| model_name(table), |m| m.0.clone())
    }

    /// The field of `table.column`.
    pub fn field(&self, table: &str, column: &str) -> String {
        self.models
            .get(table)
            .and_then(|m| m.1.get(column).cloned())
            .unwrap_or_else(|| field_name(column))
    }

    /// Whether the names came from a schema file.
    pub fn from_schema(&self) -> bool {
        !self.models.is_empty()
    }
}

/// The `@@index([...], map: "...")` line of an index.
pub fn index_line(def: &IndexDef, names: &Names) -> String {
    let fields: Vec<String> = def
        .columns
        .iter()
        .map(|c| {
            let f = names.field(&def.table, &c.name);
            if c.desc {
                format!("{f}(sort: Desc)")
            } else {
                f
            }
        })
        .collect();
    format!("@@index([{}], map: \"{}\")", fields.join(", "), def.name())
}

/// `indexes.prisma`: the lines grouped by model, to paste into schema.prisma;
/// an index `@@index` cannot say is a comment with its SQL on `schema`.
pub fn schema_lines(defs: &[IndexDef], schema: &str, names: &Names) -> String {
    let mut out = String::from("// crmbench: add each line inside its model in schema.prisma.\n");
    out.push_str(if names.from_schema() {
        "// Model and field names are read from the given schema.prisma.\n\n"
    } else {
        "// Model and field names follow Prisma's conventions (PascalCase models,\n\
         // camelCase fields); give --prisma-schema FILE to use your schema's names.\n\n"
    });
    let mut tables: Vec<&str> = defs.iter().map(|d| d.table.as_str()).collect();
    tables.sort_unstable();
    tables.dedup();
    for t in tables {
        let body: String = defs
            .iter()
            .filter(|d| d.table == t)
            .map(|d| model_line(d, schema, names))
            .collect();
        out.push_str(&format!(
            "model {} {{ // table {t}\n{body}}}\n\n",
            names.model(t)
        ));
    }
    out
}

/// One index's line inside its model: the `@@index` line, or a comment
/// with the SQL when `@@index` cannot say it.
fn model_line(d: &IndexDef, schema: &str, names: &Names) -> String {
    // The real schema: a placeholder would be pasted as it is.
    let raw = |why: &str| {
        format!(
            "  // {why}; keep it as raw SQL in its migration: {}\n",
            d.create_sql(schema)
        )
    };
    if d.columns.iter().any(|c| c.name.contains('(')) {
        raw("expression index, not expressible with @@index")
    } else if !d.include.is_empty() {
        raw("covering index (INCLUDE), not expressible with @@index")
    } else if d.predicate.is_some() {
        // Prisma expresses partial indexes only with the partialIndexes
        // preview feature: give the SQL instead.
        raw("partial index, not expressible without previewFeatures = [\"partialIndexes\"]")
    } else {
        format!("  {}\n", index_line(d, names))
    }
}

/// `schema` (a schema.prisma's text) with each expressible index's
/// `@@index` line added at the end of its model; models of other tables and
/// indexes Prisma cannot express are left out (they stay raw SQL).
pub fn add_to_schema(schema: &str, defs: &[IndexDef], names: &Names) -> String {
    let mut out = String::new();
    let mut pending: Vec<String> = Vec::new();
    for line in schema.lines() {
        let code = line.split("//").next().unwrap_or("").trim();
        if let Some(rest) = code.strip_prefix("model ") {
            let model = rest.trim_end_matches('{').trim();
            pending = defs
                .iter()
                .filter(|d| names.model(&d.table) == model && expressible(d))
                .map(|d| index_line(d, names))
                .filter(|l| !schema.contains(l.as_str()))
                .collect();
        } else if code.starts_with('}') && !pending.is_empty() {
            for l in pending.drain(..) {
                out.push_str(&format!("  {l}\n"));
            }
        }
        out.push_str(line);
        out.push('\n');
    }
    out
}

/// Whether `@@index` can say it (no expression, INCLUDE or predicate).
pub fn expressible(def: &IndexDef) -> bool {
    !def.columns.iter().any(|c| c.name.contains('('))
        && def.include.is_empty()
        && def.predicate.is_none()
}

/// One (folder name, migration.sql) per index, each statement alone.
/// `partitioned` names the partitioned tables: one statement cannot build
/// their index concurrently, so theirs is a plain CREATE INDEX (it blocks
/// writes while it builds; migration.sql has the concurrent form).
pub fn migrations(
    defs: &[IndexDef],
    schema: &str,
    stamp: &str,
    partitioned: &std::collections::BTreeMap<String, Vec<String>>,
) -> Vec<(String, String)> {
    defs.iter()
        .enumerate()
        .map(|(i, d)| {
            let text = if partitioned.contains_key(&d.table) {
                format!(
                    "-- crmbench: {} is partitioned, where CREATE INDEX CONCURRENTLY is refused: this\n\
                     -- builds every partition's index in one statement and blocks writes meanwhile.\n\
                     -- migration.sql has the non-blocking form (ON ONLY + per partition + ATTACH).\n{};\n",
                    d.table,
                    d.create_sql(schema)
                )
            } else {
                format!(
                    "-- crmbench: alone in its migration so Prisma Migrate does not wrap it in a\n\
                     -- transaction (CREATE INDEX CONCURRENTLY cannot run inside one).\n{};\n",
                    d.create_concurrently_sql(schema)
                )
            };
            (format!("{stamp}{:02}_crmbench_{}", i + 1, d.name()), text)
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
            include: Vec::new(),
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
            index_line(&d, &Names::default()),
            "@@index([tenantId, placedAt(sort: Desc)], map: \"orders_tenant_id_placed_at_idx\")"
        );
        let m = migrations(&[d], "crm", "20260101000000", &Default::default());
        assert_eq!(m[0].1.matches("IF NOT EXISTS").count(), 1);
        assert!(m[0].0.starts_with("2026010100000001_crmbench_"));
    }
}
