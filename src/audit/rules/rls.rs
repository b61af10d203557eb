//! Row-level security on every tenant table: enabled, forced, and for each
//! command a policy that keeps rows to the current tenant on every branch.

use super::super::catalog::Policy;
use super::super::detect::{parse_expr, restricts};
use super::super::model::{Finding, Rule};
use super::Ctx;

const COMMANDS: [(char, &str); 4] = [
    ('r', "SELECT"),
    ('a', "INSERT"),
    ('w', "UPDATE"),
    ('d', "DELETE"),
];

/// The findings of the row-level security rules.
pub fn check(ctx: &Ctx) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut tables: Vec<(String, String)> = ctx
        .tenant_tables()
        .map(|t| (t.name.clone(), ctx.column.to_string()))
        .collect();
    for t in ctx.tenant_tables() {
        let q = ctx.qualified(&t.name);
        let pred = ctx.predicate(&t.name, ctx.column);
        if !t.rls_enabled {
            out.push(Finding::new(
                Rule::RlsDisabled,
                &t.name,
                "row-level security is not enabled",
                format!(
                    "ALTER TABLE {q} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {q} FORCE ROW LEVEL SECURITY;\n\
                     CREATE POLICY tenant_isolation ON {q} USING ({pred}) WITH CHECK ({pred});"
                ),
            ));
        } else if !t.rls_forced {
            out.push(Finding::new(
                Rule::RlsNotForced,
                &t.name,
                format!(
                    "row-level security is enabled but not forced (owner {} bypasses it)",
                    t.owner
                ),
                format!("ALTER TABLE {q} FORCE ROW LEVEL SECURITY;"),
            ));
        }
    }
    // The tenants tables are checked only when they have row-level security
    // (a shared one, without, is not a finding).
    for (root, key) in ctx.roots() {
        if ctx.cat.relation(&root).is_some_and(|r| r.rls_enabled) {
            tables.push((root, key));
        }
    }
    for (table, key) in tables {
        if ctx.cat.relation(&table).is_some_and(|r| r.rls_enabled) {
            out.extend(policies(ctx, &table, &key));
        }
    }
    out
}

/// Whether a policy keeps `key` to the current tenant (USING and WITH CHECK).
fn holds(ctx: &Ctx, p: &Policy, key: &str) -> bool {
    let ok = |e: &Option<String>| {
        e.as_deref()
            .is_none_or(|t| parse_expr(t).is_ok_and(|n| restricts(&n, key, ctx.setting)))
    };
    (p.using.is_some() || p.check.is_some()) && ok(&p.using) && ok(&p.check)
}

fn applies(p: &Policy, cmd: char) -> bool {
    p.cmd == '*' || p.cmd == cmd
}

/// Per command: restricted by a restrictive policy, or by every permissive
/// one (at least one). Permissive policies that admit other tenants on a
/// command no restrictive policy guards are findings, as are commands
/// without any policy.
fn policies(ctx: &Ctx, table: &str, key: &str) -> Vec<Finding> {
    let on: Vec<&Policy> = ctx
        .cat
        .policies
        .iter()
        .filter(|p| p.table == table)
        .collect();
    let mut out = Vec::new();
    let mut missing = Vec::new();
    let mut loose: Vec<&Policy> = Vec::new();
    for (cmd, name) in COMMANDS {
        let guarded = on
            .iter()
            .any(|p| !p.permissive && applies(p, cmd) && holds(ctx, p, key));
        let permissive: Vec<&&Policy> = on
            .iter()
            .filter(|p| p.permissive && applies(p, cmd))
            .collect();
        if permissive.is_empty() {
            missing.push(name);
        } else if !guarded {
            for p in permissive.into_iter().filter(|p| !holds(ctx, p, key)) {
                if !loose.iter().any(|l| l.name == p.name) {
                    loose.push(p);
                }
            }
        }
    }
    let q = ctx.qualified(table);
    let pred = ctx.predicate(table, key);
    for p in loose {
        out.push(Finding::new(
            Rule::PolicyNotTenant,
            format!("{table}.{}", p.name),
            format!(
                "policy admits rows of other tenants: USING ({}){}",
                p.using.as_deref().unwrap_or("-"),
                p.check.as_deref().map(|c| format!(" WITH CHECK ({c})")).unwrap_or_default()
            ),
            format!(
                "DROP POLICY {} ON {q};\nCREATE POLICY {} ON {q} USING ({pred}) WITH CHECK ({pred});",
                super::ident(&p.name),
                super::ident(&p.name)
            ),
        ));
    }
    if !missing.is_empty() {
        out.push(Finding::new(
            Rule::PolicyMissing,
            table,
            format!(
                "no policy for {} (these commands see no rows)",
                missing.join(", ")
            ),
            format!("CREATE POLICY tenant_isolation ON {q} USING ({pred}) WITH CHECK ({pred});"),
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::tests::{USING, policy, sound};
    use super::*;

    fn rules(cat: &crate::audit::catalog::Catalog) -> Vec<(Rule, String)> {
        check(&Ctx {
            cat,
            column: "tenant_id",
            setting: "app.t",
        })
        .into_iter()
        .map(|f| (f.rule, f.object))
        .collect()
    }

    #[test]
    fn rls_off_unforced_and_loose_policies() {
        let mut cat = sound();
        cat.relations[0].rls_forced = false;
        cat.relations[1].rls_enabled = false;
        assert_eq!(
            rules(&cat),
            [
                (Rule::RlsNotForced, "customers".into()),
                (Rule::RlsDisabled, "orders".into())
            ]
        );
        let mut cat = sound();
        cat.policies[0].using = Some(format!("{USING} OR is_public"));
        cat.policies.push(policy("orders", "true"));
        let found = rules(&cat);
        assert_eq!(
            found,
            [
                (Rule::PolicyNotTenant, "customers.p".into()),
                (Rule::PolicyNotTenant, "orders.p".into())
            ]
        );
        // A restrictive tenant policy guards a permissive USING (true).
        let mut cat = sound();
        cat.policies.push(policy("orders", "true"));
        let mut strict = policy("orders", USING);
        strict.permissive = false;
        cat.policies.push(strict);
        assert!(rules(&cat).is_empty());
        // Only a SELECT policy: the writes have none.
        let mut cat = sound();
        cat.policies[0].cmd = 'r';
        assert_eq!(rules(&cat), [(Rule::PolicyMissing, "customers".into())]);
    }
}
