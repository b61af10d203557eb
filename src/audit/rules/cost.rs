//! What row-level security costs when the schema does not help it: a tenant
//! column that leads no index, a policy calling a function per row, a
//! foreign key without an index on its columns.

use super::super::detect::{parse_expr, per_row_calls};
use super::super::model::{Finding, Rule};
use super::{Ctx, columns, ident};

/// The findings of the cost rules.
pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let indexes = |table: String| {
        ctx.cat
            .keys
            .iter()
            .filter(move |k| k.table == table && matches!(k.kind, 'p' | 'u' | 'i' | 'x'))
    };
    for t in ctx.tenant_tables() {
        if !indexes(t.name.clone())
            .any(|k| k.columns.first().map(String::as_str) == Some(ctx.column))
        {
            out.push(Finding::new(
                Rule::TenantColumnNotIndexed,
                &t.name,
                format!("no index leads with {}", ctx.column),
                format!(
                    "CREATE INDEX ON {} ({});",
                    ctx.qualified(&t.name),
                    ident(ctx.column)
                ),
            ));
        }
    }
    for p in &ctx.cat.policies {
        let mut calls: Vec<String> = [&p.using, &p.check]
            .into_iter()
            .flatten()
            .filter_map(|e| parse_expr(e).ok())
            .flat_map(|n| per_row_calls(&n, &ctx.cat.functions))
            .collect();
        calls.sort();
        calls.dedup();
        if !calls.is_empty() {
            out.push(Finding::new(
                Rule::PolicyPerRowFunction,
                format!("{}.{}", p.table, p.name),
                format!("calls {} per row", calls.join(", ")),
                format!(
                    "-- wrap each call as a scalar subquery, evaluated once per query:\n\
                     ALTER POLICY {} ON {} USING ({});",
                    ident(&p.name),
                    ctx.qualified(&p.table),
                    wrap(p.using.as_deref().unwrap_or(""), &calls)
                ),
            ));
        }
    }
    // Keys into shared lookups are left out: their rows are not deleted
    // in the course of business.
    for k in ctx
        .cat
        .keys
        .iter()
        .filter(|k| k.kind == 'f' && ctx.is_tenant(&k.foreign_table))
    {
        let covered = indexes(k.table.clone()).any(|i| {
            i.columns.len() >= k.columns.len()
                && k.columns
                    .iter()
                    .all(|c| i.columns[..k.columns.len()].contains(c))
        });
        if !covered {
            out.push(Finding::new(
                Rule::ForeignKeyUnindexed,
                format!("{}.{}", k.table, k.name),
                format!(
                    "no index leads with the foreign key's columns ({})",
                    k.columns.join(", ")
                ),
                format!(
                    "CREATE INDEX ON {} ({});",
                    ctx.qualified(&k.table),
                    columns(&k.columns)
                ),
            ));
        }
    }
    out
}

/// `expr` with each `name(…)` call written `(SELECT name(…))` — a hint,
/// shown for the reader to check.
fn wrap(expr: &str, calls: &[String]) -> String {
    let mut out = expr.to_string();
    for name in calls {
        if let Some(at) = out.find(&format!("{name}(")) {
            let start = out[..at]
                .rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
                .map_or(0, |i| i + 1);
            let open = at + name.len();
            let mut depth = 0;
            let close = out[open..].char_indices().find_map(|(i, c)| {
                depth += match c {
                    '(' => 1,
                    ')' => -1,
                    _ => 0,
                };
                (depth == 0).then_some(open + i)
            });
            if let Some(close) = close {
                out = format!(
                    "{}(SELECT {}){}",
                    &out[..start],
                    &out[start..=close],
                    &out[close + 1..]
                );
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{key, sound};
    use super::*;

    #[test]
    fn unindexed_tenant_column_per_row_call_and_foreign_key() {
        let mut cat = sound();
        cat.keys.retain(|k| k.table != "customers" && k.kind != 'x');
        cat.keys.push(key("customers", 'p', &["id"], ("", &[])));
        cat.functions = vec!["current_tenant".into()];
        cat.policies[1].using = Some("(tenant_id = app.current_tenant())".into());
        let found = super::super::tests::run(&cat, check);
        let rules: Vec<Rule> = found.iter().map(|f| f.rule).collect();
        assert_eq!(
            rules,
            [
                Rule::TenantColumnNotIndexed,
                Rule::PolicyPerRowFunction,
                Rule::ForeignKeyUnindexed
            ]
        );
        assert!(
            found[1]
                .fix
                .contains("(tenant_id = (SELECT app.current_tenant()))"),
            "{}",
            found[1].fix
        );
    }
}
