//! Paths around row-level security: views and SECURITY DEFINER functions
//! running with an owner's rights, materialized views (which have no
//! policies), an application role that owns tables or bypasses policies,
//! tables without the tenant column linked to tenant tables, and sequences
//! every tenant shares.

use super::super::model::{Finding, Rule};
use super::Ctx;

/// The findings of the leak-path rules.
pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = views(ctx);
    out.extend(definers(ctx));
    out.extend(app_role(ctx));
    out.extend(untenanted(ctx));
    out.extend(sequences(ctx));
    out
}

fn views(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for v in ctx
        .cat
        .relations
        .iter()
        .filter(|r| matches!(r.kind, 'v' | 'm'))
    {
        let tenant_reads: Vec<&String> = v.reads.iter().filter(|t| ctx.is_tenant(t)).collect();
        if tenant_reads.is_empty() {
            continue;
        }
        let q = ctx.qualified(&v.name);
        let list = tenant_reads
            .iter()
            .map(|t| t.as_str())
            .collect::<Vec<_>>()
            .join(", ");
        if v.kind == 'm' {
            out.push(Finding::new(
                Rule::MatviewExposesTenants,
                &v.name,
                format!("materialized view over tenant tables {list}"),
                format!(
                    "REVOKE ALL ON {q} FROM PUBLIC;\n-- and from the application role; or replace it \
                     with a view WITH (security_invoker = on), or add {} and serve it through a \
                     view that filters on the setting",
                    ctx.column
                ),
            ));
            continue;
        }
        // The owner's rights apply: it bypasses when it is a superuser or
        // BYPASSRLS, or owns a read table whose RLS is not forced.
        let owner_unforced = tenant_reads.iter().any(|t| {
            ctx.cat
                .relation(t)
                .is_some_and(|r| r.owner == v.owner && !r.rls_forced)
        });
        if !v.security_invoker && (v.owner_bypasses || owner_unforced) {
            out.push(Finding::new(
                Rule::ViewBypassesRls,
                &v.name,
                format!(
                    "view reads {list} as its owner {}, who bypasses row-level security",
                    v.owner
                ),
                format!("ALTER VIEW {q} SET (security_invoker = on);"),
            ));
        }
    }
    out
}

/// Whether `body` names `table` as a word (a function's source is text:
/// only SQL-standard bodies record their tables as dependencies).
fn mentions(body: &str, table: &str) -> bool {
    let word = |c: char| c.is_ascii_alphanumeric() || c == '_';
    body.match_indices(table).any(|(i, _)| {
        let before = body[..i].chars().next_back();
        let after = body[i + table.len()..].chars().next();
        !before.is_some_and(word) && !after.is_some_and(word)
    })
}

fn definers(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    for f in &ctx.cat.definers {
        let read: Vec<String> = ctx
            .tenant_tables()
            .filter(|t| f.depends_on.contains(&t.name) || mentions(&f.body, &t.name))
            .map(|t| t.name.clone())
            .collect();
        if read.is_empty() {
            continue;
        }
        out.push(Finding::new(
            Rule::SecurityDefinerReadsTenants,
            &f.signature,
            format!(
                "SECURITY DEFINER function owned by {} reads tenant tables {}",
                f.owner,
                read.join(", ")
            ),
            format!(
                "ALTER FUNCTION {}.{} SECURITY INVOKER;",
                super::ident(&ctx.cat.schema),
                f.signature
            ),
        ));
    }
    out
}

fn app_role(ctx: &Ctx) -> Vec<Finding> {
    let Some((role, bypasses)) = &ctx.cat.app_role else {
        return Vec::new();
    };
    let mut out = Vec::new();
    if *bypasses {
        out.push(Finding::new(
            Rule::AppRoleBypassesRls,
            role,
            "the application role is a superuser or has BYPASSRLS",
            format!("ALTER ROLE {} NOSUPERUSER NOBYPASSRLS;", super::ident(role)),
        ));
    }
    for r in ctx.cat.relations.iter().filter(|r| &r.owner == role) {
        out.push(Finding::new(
            Rule::AppRoleOwnsTable,
            &r.name,
            format!("owned by the application role {role}"),
            format!(
                "ALTER TABLE {} OWNER TO <schema owner>;  -- then GRANT the application role only what it needs",
                ctx.qualified(&r.name)
            ),
        ));
    }
    out
}

fn untenanted(ctx: &Ctx) -> Vec<Finding> {
    let roots: Vec<String> = ctx.roots().into_iter().map(|r| r.0).collect();
    let mut out = Vec::new();
    for k in &ctx.cat.keys {
        let from_plain = !ctx.is_tenant(&k.table) && !roots.contains(&k.table);
        if k.kind != 'f' || !from_plain || !ctx.is_tenant(&k.foreign_table) {
            continue;
        }
        out.push(Finding::new(
            Rule::UntenantedReference,
            format!("{}.{}", k.table, k.name),
            format!(
                "{} has no {} and no row-level security, yet references tenant table {}",
                k.table, ctx.column, k.foreign_table
            ),
            format!(
                "ALTER TABLE {} ADD COLUMN {} {};  -- fill it, then enable and force row-level security with the tenant policy",
                ctx.qualified(&k.table),
                super::ident(ctx.column),
                ctx.column_type(&k.foreign_table)
            ),
        ));
    }
    out
}

fn sequences(ctx: &Ctx) -> Vec<Finding> {
    ctx.cat
        .sequences
        .iter()
        .filter_map(|s| {
            let (table, column) = s.owned_by.as_ref()?;
            ctx.is_tenant(table).then(|| {
                Finding::new(
                    Rule::SharedSequence,
                    &s.name,
                    format!("{table}.{column} draws ids from one sequence for all tenants"),
                    "-- informational: use uuids, or accept it (Citus keeps such ids unique across nodes)",
                )
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::super::tests::{sound, table};
    use super::*;
    use crate::audit::catalog::Function;

    #[test]
    fn views_definers_roles_and_links() {
        let mut cat = sound();
        let mut v = table("v_customers", &["tenant_id"]);
        v.kind = 'v';
        v.owner_bypasses = true;
        v.reads = vec!["customers".into()];
        let mut safe = v.clone();
        safe.name = "v_safe".into();
        safe.security_invoker = true;
        cat.relations.extend([v, safe]);
        cat.definers.push(Function {
            signature: "f(uuid)".into(),
            owner: "postgres".into(),
            body: "SELECT count(*) FROM customers_archive JOIN orders USING (id)".into(),
            depends_on: vec![],
        });
        cat.app_role = Some(("app".into(), true));
        cat.relations.push(table("notes", &["id", "customer_id"]));
        cat.keys.push(super::super::tests::key(
            "notes",
            'f',
            &["customer_id"],
            ("customers", &["id"]),
        ));
        let found = super::super::tests::objects(&super::super::tests::run(&cat, check));
        assert_eq!(
            found,
            [
                (Rule::ViewBypassesRls, "v_customers".into()),
                (Rule::SecurityDefinerReadsTenants, "f(uuid)".into()),
                (Rule::AppRoleBypassesRls, "app".into()),
                (Rule::UntenantedReference, "notes.notes_f".into()),
            ]
        );
        assert!(!mentions("FROM customers_archive", "customers"));
    }
}
