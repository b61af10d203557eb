//! Reading row-level security policies with PostgreSQL's own parser: which
//! column a policy compares with which setting (so the tenant column and
//! setting are detected, not assumed), whether a policy restricts rows to
//! the current tenant on every branch, and which functions it calls per row.
//!
//! A policy's expression comes from `pg_get_expr`, parsed as the WHERE
//! clause of `SELECT 1`.

use pg_query::NodeEnum;
use pg_query::protobuf::{BoolExprType, Node, a_const};

use crate::sql::SqlError;

/// The parsed expression of a policy's `USING` or `WITH CHECK`.
pub fn parse_expr(text: &str) -> Result<Node, SqlError> {
    let tree = crate::sql::parse(&format!("SELECT 1 WHERE {text}"))?;
    let found = tree
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|s| s.node.as_ref())
        .and_then(|n| match n {
            NodeEnum::SelectStmt(s) => s.where_clause.as_deref().cloned(),
            _ => None,
        });
    found.ok_or_else(|| SqlError {
        message: format!("not an expression: {text}"),
    })
}

/// The direct sub-expressions of `node` (the node kinds policies use).
fn children(node: &Node) -> Vec<&Node> {
    let mut out: Vec<&Node> = Vec::new();
    match node.node.as_ref() {
        Some(NodeEnum::AExpr(e)) => {
            out.extend(e.lexpr.as_deref().into_iter().chain(e.rexpr.as_deref()))
        }
        Some(NodeEnum::BoolExpr(e)) => out.extend(e.args.iter()),
        Some(NodeEnum::FuncCall(f)) => out.extend(f.args.iter()),
        Some(NodeEnum::TypeCast(c)) => out.extend(c.arg.as_deref()),
        Some(NodeEnum::SubLink(s)) => out.extend(
            s.testexpr
                .as_deref()
                .into_iter()
                .chain(s.subselect.as_deref()),
        ),
        Some(NodeEnum::SelectStmt(s)) => {
            out.extend(s.target_list.iter().chain(&s.from_clause));
            out.extend(s.where_clause.as_deref());
        }
        Some(NodeEnum::ResTarget(r)) => out.extend(r.val.as_deref()),
        Some(NodeEnum::NullTest(n)) => out.extend(n.arg.as_deref()),
        Some(NodeEnum::CoalesceExpr(c)) => out.extend(c.args.iter()),
        Some(NodeEnum::List(l)) => out.extend(l.items.iter()),
        _ => {}
    }
    out
}

/// Every node under `node` (itself included), depth first; `into_subqueries`
/// says whether to enter sub-selects.
fn walk<'a>(node: &'a Node, into_subqueries: bool, out: &mut Vec<&'a Node>) {
    out.push(node);
    if !into_subqueries && matches!(node.node, Some(NodeEnum::SubLink(_))) {
        return;
    }
    for c in children(node) {
        walk(c, into_subqueries, out);
    }
}

/// The last part of a (possibly qualified) name list.
fn last_name(names: &[Node]) -> Option<&str> {
    names.last().and_then(|n| match n.node.as_ref() {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    })
}

/// The setting a `current_setting('x', …)` call reads.
fn setting_read(node: &Node) -> Option<&str> {
    let Some(NodeEnum::FuncCall(f)) = node.node.as_ref() else {
        return None;
    };
    if last_name(&f.funcname) != Some("current_setting") {
        return None;
    }
    // pg_get_expr writes the argument cast: 'x'::text.
    match strip_casts(f.args.first()?).node.as_ref()? {
        NodeEnum::AConst(c) => match c.val.as_ref()? {
            a_const::Val::Sval(s) => Some(s.sval.as_str()),
            _ => None,
        },
        _ => None,
    }
}

/// The column a bare column reference names.
fn column(node: &Node) -> Option<&str> {
    let node = strip_casts(node);
    match node.node.as_ref() {
        Some(NodeEnum::ColumnRef(c)) => last_name(&c.fields),
        _ => None,
    }
}

fn strip_casts(mut node: &Node) -> &Node {
    while let Some(NodeEnum::TypeCast(c)) = node.node.as_ref() {
        match c.arg.as_deref() {
            Some(inner) => node = inner,
            None => break,
        }
    }
    node
}

/// Whether `node` is the current tenant: it reads `setting` (directly,
/// cast, or in a scalar subquery), or calls a function of the schema
/// (an accessor such as `app.current_tenant()`), and names no column.
fn is_tenant_value(node: &Node, setting: &str) -> bool {
    let mut all = Vec::new();
    walk(node, true, &mut all);
    let names_column = all
        .iter()
        .any(|n| matches!(n.node, Some(NodeEnum::ColumnRef(_))));
    let reads = all.iter().any(|n| setting_read(n) == Some(setting));
    let accessor = all.iter().any(|n| match n.node.as_ref() {
        Some(NodeEnum::FuncCall(f)) => f.funcname.len() > 1 || !is_builtin(&f.funcname),
        _ => false,
    });
    !names_column && (reads || accessor)
}

/// Built-in functions a policy commonly calls (not tenant accessors).
fn is_builtin(names: &[Node]) -> bool {
    matches!(
        last_name(names),
        Some("current_setting" | "current_user" | "session_user" | "nullif" | "coalesce" | "lower")
    )
}

/// The `(column, setting)` pairs a policy compares with `=`.
pub fn comparisons(node: &Node) -> Vec<(String, String)> {
    let mut all = Vec::new();
    walk(node, true, &mut all);
    let mut out = Vec::new();
    for n in all {
        let Some(NodeEnum::AExpr(e)) = n.node.as_ref() else {
            continue;
        };
        if last_name(&e.name) != Some("=") {
            continue;
        }
        let (Some(l), Some(r)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
            continue;
        };
        for (a, b) in [(l, r), (r, l)] {
            let mut inner = Vec::new();
            walk(b, true, &mut inner);
            let setting = inner.iter().find_map(|x| setting_read(x));
            if let (Some(col), Some(s)) = (column(a), setting) {
                out.push((col.to_string(), s.to_string()));
            }
        }
    }
    out
}

/// Whether every row the expression admits has `column` equal to the
/// current tenant: an `AND` needs one such conjunct, an `OR` needs it on
/// every branch; anything else (`true`, a `NOT`) does not restrict.
pub fn restricts(node: &Node, column_name: &str, setting: &str) -> bool {
    match node.node.as_ref() {
        Some(NodeEnum::BoolExpr(e)) if e.boolop == BoolExprType::AndExpr as i32 => {
            e.args.iter().any(|a| restricts(a, column_name, setting))
        }
        Some(NodeEnum::BoolExpr(e)) if e.boolop == BoolExprType::OrExpr as i32 => {
            e.args.iter().all(|a| restricts(a, column_name, setting))
        }
        Some(NodeEnum::AExpr(e)) if last_name(&e.name) == Some("=") => {
            let (Some(l), Some(r)) = (e.lexpr.as_deref(), e.rexpr.as_deref()) else {
                return false;
            };
            (column(l) == Some(column_name) && is_tenant_value(r, setting))
                || (column(r) == Some(column_name) && is_tenant_value(l, setting))
        }
        _ => false,
    }
}

/// Calls of `functions` (names of the schema's own functions) made
/// outside any sub-select: evaluated per row rather than once.
pub fn per_row_calls(node: &Node, functions: &[String]) -> Vec<String> {
    let mut all = Vec::new();
    walk(node, false, &mut all);
    let mut out: Vec<String> = all
        .iter()
        .filter_map(|n| match n.node.as_ref() {
            Some(NodeEnum::FuncCall(f)) => last_name(&f.funcname).map(str::to_string),
            _ => None,
        })
        .filter(|name| functions.iter().any(|f| f == name))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: &str = "app.current_tenant_id";

    fn r(text: &str) -> bool {
        restricts(&parse_expr(text).unwrap(), "tenant_id", S)
    }

    #[test]
    fn restriction_holds_on_every_branch_only() {
        // pg_get_expr's rendering of the CRM policy.
        assert!(r(
            "(tenant_id = (current_setting('app.current_tenant_id'::text))::uuid)"
        ));
        assert!(r(
            "((tenant_id = (SELECT current_setting('app.current_tenant_id')::uuid)) AND (x > 1))"
        ));
        assert!(r("tenant_id = app.current_tenant()"));
        assert!(!r("true"));
        assert!(!r(
            "(tenant_id = current_setting('app.current_tenant_id')::uuid) OR (is_public)"
        ));
        assert!(!r("tenant_id = current_setting('other.setting')::uuid"));
        assert!(!r("tenant_id = tenant_id"));
        assert!(!r(
            "owner_id = current_setting('app.current_tenant_id')::uuid"
        ));
    }

    #[test]
    fn detection_and_per_row_calls() {
        let e = parse_expr("(tenant_id = (current_setting('app.tenant'::text))::uuid)").unwrap();
        assert_eq!(
            comparisons(&e),
            vec![("tenant_id".to_string(), "app.tenant".to_string())]
        );
        let f = vec!["current_tenant".to_string()];
        let e = parse_expr("tenant_id = app.current_tenant()").unwrap();
        assert_eq!(per_row_calls(&e, &f), f);
        let e = parse_expr("tenant_id = (SELECT app.current_tenant())").unwrap();
        assert!(per_row_calls(&e, &f).is_empty());
    }
}
