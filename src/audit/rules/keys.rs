//! Keys that hold across tenants, the Citus distribution blockers: a
//! primary key, unique constraint or unique index without the tenant
//! column, and a foreign key between tenant tables that does not carry it
//! on both sides (at the same position).

use super::super::catalog::Key;
use super::super::model::{Finding, Rule};
use super::{Ctx, columns, ident};

/// The findings of the key rules.
pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for k in ctx.cat.keys.iter().filter(|k| ctx.is_tenant(&k.table)) {
        match k.kind {
            'p' | 'u' | 'i' if !k.columns.iter().any(|c| c == ctx.column) => {
                out.push(global_unique(ctx, k));
            }
            'f' if ctx.is_tenant(&k.foreign_table) => {
                let here = k.columns.iter().position(|c| c == ctx.column);
                let there = k.foreign_columns.iter().position(|c| c == ctx.column);
                if here.is_none() || here != there {
                    out.push(cross_tenant(ctx, k));
                }
            }
            _ => {}
        }
    }
    out
}

fn with_tenant(ctx: &Ctx, cols: &[String]) -> Vec<String> {
    let mut out = vec![ctx.column.to_string()];
    out.extend(cols.iter().filter(|c| *c != ctx.column).cloned());
    out
}

fn global_unique(ctx: &Ctx, k: &Key) -> Finding {
    let q = ctx.qualified(&k.table);
    let (what, fix) = match k.kind {
        'p' => (
            "primary key",
            format!(
                "ALTER TABLE {q} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} PRIMARY KEY ({cols});",
                name = ident(&k.name),
                cols = columns(&with_tenant(ctx, &k.columns))
            ),
        ),
        'u' => (
            "unique constraint",
            format!(
                "ALTER TABLE {q} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} UNIQUE ({cols});",
                name = ident(&k.name),
                cols = columns(&with_tenant(ctx, &k.columns))
            ),
        ),
        _ => (
            "unique index",
            format!(
                "DROP INDEX {idx};\nCREATE UNIQUE INDEX {name} ON {q} ({cols});",
                idx = ctx.qualified(&k.name),
                name = ident(&k.name),
                cols = columns(&with_tenant(ctx, &k.columns))
            ),
        ),
    };
    Finding::new(
        Rule::GlobalUnique,
        format!("{}.{}", k.table, k.name),
        format!(
            "{what} ({}) is unique across tenants: it lacks {}",
            k.columns.join(", "),
            ctx.column
        ),
        fix,
    )
}

fn cross_tenant(ctx: &Ctx, k: &Key) -> Finding {
    let fix = format!(
        "ALTER TABLE {q} DROP CONSTRAINT {name}, ADD CONSTRAINT {name} FOREIGN KEY ({cols}) \
         REFERENCES {f} ({fcols});\n-- needs a unique key on {f} ({fcols})",
        q = ctx.qualified(&k.table),
        name = ident(&k.name),
        cols = columns(&with_tenant(ctx, &k.columns)),
        f = ctx.qualified(&k.foreign_table),
        fcols = columns(&with_tenant(ctx, &k.foreign_columns)),
    );
    Finding::new(
        Rule::CrossTenantForeignKey,
        format!("{}.{}", k.table, k.name),
        format!(
            "foreign key ({}) → {} ({}) does not carry {} on both sides: a row can point into another tenant",
            k.columns.join(", "),
            k.foreign_table,
            k.foreign_columns.join(", "),
            ctx.column
        ),
        fix,
    )
}

#[cfg(test)]
mod tests {
    use super::super::tests::{key, sound};
    use super::*;

    #[test]
    fn keys_without_the_tenant_column_are_findings() {
        let mut cat = sound();
        cat.keys[0] = key("customers", 'p', &["id"], ("", &[]));
        cat.keys.push(key("customers", 'u', &["email"], ("", &[])));
        cat.keys
            .push(key("customers", 'i', &["lower(email)"], ("", &[])));
        cat.keys.retain(|k| k.kind != 'f');
        cat.keys
            .push(key("orders", 'f', &["customer_id"], ("customers", &["id"])));
        let f = super::super::tests::run(&cat, check);
        let found = super::super::tests::objects(&f);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found.iter().take(3).all(|f| f.0 == Rule::GlobalUnique));
        assert_eq!(
            found[3],
            (Rule::CrossTenantForeignKey, "orders.orders_f".into())
        );
        assert!(
            f[1].fix.contains("UNIQUE (tenant_id, email)"),
            "{}",
            f[1].fix
        );
        assert!(
            f[3].fix.contains(
                "FOREIGN KEY (tenant_id, customer_id) REFERENCES s.customers (tenant_id, id)"
            ),
            "{}",
            f[3].fix
        );
    }
}
