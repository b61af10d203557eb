//! The workload rule: a statement of the application's workload that sets
//! the tenant setting itself (`set_config('app.current_tenant_id', …)`,
//! `SET app.current_tenant_id = …`). Row-level security keyed on a session
//! setting bounds what one tenant's session reads, but the application's
//! own SQL can change the setting: such a statement can read any tenant.
//! The statements are read with PostgreSQL's parser; a `set_config` whose
//! setting is not a constant counts too (it may name the tenant's).

use pg_query::protobuf::{Node, a_const};
use pg_query::{NodeEnum, NodeRef};

use super::model::{Finding, Location, Rule};
use crate::workload::Workload;

/// The findings of the workload in `file`, read as `workload`.
pub fn check(workload: &Workload, file: &str, setting: &str) -> Vec<Finding> {
    let mut out = Vec::new();
    for q in &workload.queries {
        for s in &q.statements {
            let Some(how) = sets_tenant(&s.sql, setting) else {
                continue;
            };
            let mut f = Finding::new(
                Rule::WorkloadSetsTenant,
                q.name.as_str(),
                format!("query {} {how}", q.name),
                format!(
                    "-- remove it from the query: the connection sets {setting} once per \
                     transaction, from the authenticated tenant, with set_config(…, true);\n\
                     -- a query that needs several tenants runs as a separate role with a \
                     policy of its own"
                ),
            );
            f.location = Some(Location {
                file: file.to_string(),
                line: s.line,
            });
            out.push(f);
        }
    }
    out
}

/// How `sql` sets `setting`, if it does.
pub fn sets_tenant(sql: &str, setting: &str) -> Option<String> {
    let tree = crate::sql::parse(sql).ok()?;
    for raw in &tree.protobuf.stmts {
        if let Some(NodeEnum::VariableSetStmt(v)) = raw.stmt.as_ref().and_then(|n| n.node.as_ref())
        {
            if v.name.eq_ignore_ascii_case(setting) {
                return Some(format!("runs SET {}", v.name));
            }
        }
    }
    tree.protobuf.nodes().into_iter().find_map(|(n, ..)| {
        let NodeRef::FuncCall(f) = n else {
            return None;
        };
        let name = f.funcname.last().and_then(|n| match n.node.as_ref() {
            Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
            _ => None,
        })?;
        if name != "set_config" {
            return None;
        }
        match constant(f.args.first()?) {
            Some(s) if s.eq_ignore_ascii_case(setting) => {
                Some(format!("calls set_config('{s}', …)"))
            }
            Some(_) => None,
            None => Some("calls set_config with a setting that is not a constant".into()),
        }
    })
}

/// A string constant, through casts.
fn constant(mut node: &Node) -> Option<&str> {
    loop {
        match node.node.as_ref()? {
            NodeEnum::TypeCast(c) => node = c.arg.as_deref()?,
            NodeEnum::AConst(c) => {
                return match c.val.as_ref()? {
                    a_const::Val::Sval(s) => Some(s.sval.as_str()),
                    _ => None,
                };
            }
            _ => return None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::sets_tenant;

    const S: &str = "app.current_tenant_id";

    #[test]
    fn set_config_and_set_of_the_tenant_setting_are_found() {
        let found = |sql| sets_tenant(sql, S);
        assert!(
            found("SELECT set_config('app.current_tenant_id', $1, false), * FROM crm.customers")
                .is_some()
        );
        assert!(found("SELECT * FROM crm.customers WHERE set_config('app.current_tenant_id'::text, $1, true) IS NOT NULL").is_some());
        assert!(found("SET app.current_tenant_id = 'x'").is_some());
        assert!(found("SELECT set_config($2, $1, false)").is_some());
        // Other settings, and reading the tenant, are fine.
        assert!(found("SELECT set_config('statement_timeout', '1s', true)").is_none());
        assert!(found("SELECT current_setting('app.current_tenant_id')").is_none());
        assert!(found("SET work_mem = '64MB'").is_none());
    }
}
