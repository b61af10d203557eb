//! Where each `$n` of a captured statement sits, read from PostgreSQL's own
//! parse tree (pg_query): compared with a column (`=`, `IN`, ranges, `LIKE $n
//! || '%'`), assigned to a column (INSERT values, UPDATE SET, CASE results
//! inside them), or a `LIMIT` / `OFFSET`. Quoted identifiers, schema-qualified
//! names and `"Model"."field"` as an ORM writes them come out right because
//! the server's grammar reads them. The column's table is resolved through
//! the statement's aliases; the catalog ([`super::catalog`]) finishes the job.

use std::collections::HashMap;

use pg_query::protobuf::{AExprKind, Node};
use pg_query::{NodeEnum, NodeRef};

/// A table as the statement names it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TableName {
    /// Schema, when qualified.
    pub schema: Option<String>,
    /// Table.
    pub name: String,
}

/// What one `$n` is used for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Use {
    /// Compared with or assigned to `column`; `table` is `None` for an
    /// unqualified column (any table of the statement that has it).
    Column {
        /// The table, resolved through aliases.
        table: Option<TableName>,
        /// The column.
        column: String,
        /// In a range comparison (`<`, `>=`, BETWEEN).
        range: bool,
        /// Written by an INSERT or UPDATE (a unique column needs fresh values).
        written: bool,
        /// Excluded (`<>`, `NOT IN`, `IS DISTINCT FROM`): what an
        /// application leaves out is a rare value, not a common one.
        excluded: bool,
    },
    /// `LIMIT $n`.
    Limit,
    /// `OFFSET $n`.
    Offset,
    /// `= ANY($n)`: an array.
    Array,
    /// `pg_get_serial_sequence($n, …)` (0: the table, 1: the column): the
    /// sequence behind the written table's serial column.
    SerialOf(u8),
    /// Argument `index` (from 0) of a call of `function` (its name, lower
    /// case): `date_trunc($1, …)` held a unit, not any text.
    Argument {
        /// The function's name.
        function: String,
        /// The argument's position.
        index: usize,
    },
}

/// The statement's kind, from its top node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatementKind {
    /// SELECT (or VALUES).
    Read,
    /// INSERT / UPDATE / DELETE / MERGE.
    Write,
    /// BEGIN, COMMIT, `SELECT set_config(…)`: the tenant frame, not a query.
    Frame,
    /// Anything else (DDL, COPY, SET, …), with its node's name.
    Utility(&'static str),
}

/// What the tree says about one statement.
#[derive(Debug, Clone)]
pub struct Inferred {
    /// Kind.
    pub kind: StatementKind,
    /// Tables read or written.
    pub tables: Vec<TableName>,
    /// Uses of each `$n` found (a number may have several).
    pub uses: HashMap<i32, Vec<Use>>,
    /// A temporary table is involved.
    pub temporary: bool,
}

/// Read `sql`'s tree. `Err` holds the parser's message.
pub fn infer(sql: &str) -> Result<Inferred, String> {
    let parsed = pg_query::parse(sql).map_err(|e| e.to_string())?;
    let stmts = &parsed.protobuf.stmts;
    if stmts.len() != 1 {
        return Err(format!("{} statements in one entry", stmts.len()));
    }
    let top = stmts[0].stmt.as_ref().and_then(|n| n.node.as_ref());
    let mut out = Inferred {
        kind: kind_of(top)?,
        tables: Vec::new(),
        uses: HashMap::new(),
        temporary: false,
    };
    let nodes = parsed.protobuf.nodes();
    let aliases = tables(&nodes, &mut out);
    let resolve = |fields: &[Node]| -> Option<(Option<TableName>, String)> {
        let names: Vec<&str> = fields
            .iter()
            .filter_map(|f| match f.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
                _ => None,
            })
            .collect();
        match names.as_slice() {
            [column] => Some((None, column.to_string())),
            [.., qualifier, column] => Some((aliases.get(*qualifier).cloned(), column.to_string())),
            [] => None,
        }
    };
    for (node, ..) in &nodes {
        uses_in(node, &resolve, &mut out.uses);
    }
    Ok(out)
}

/// The statement's kind from its top node.
fn kind_of(top: Option<&NodeEnum>) -> Result<StatementKind, String> {
    Ok(match top {
        Some(NodeEnum::SelectStmt(s)) if is_set_config(s) => StatementKind::Frame,
        Some(NodeEnum::SelectStmt(s)) if s.into_clause.is_some() => {
            StatementKind::Utility("SELECT INTO")
        }
        Some(NodeEnum::SelectStmt(_)) => StatementKind::Read,
        Some(
            NodeEnum::InsertStmt(_)
            | NodeEnum::UpdateStmt(_)
            | NodeEnum::DeleteStmt(_)
            | NodeEnum::MergeStmt(_),
        ) => StatementKind::Write,
        Some(NodeEnum::TransactionStmt(_)) => StatementKind::Frame,
        Some(NodeEnum::CopyStmt(_)) => StatementKind::Utility("COPY"),
        Some(NodeEnum::VariableSetStmt(_)) => StatementKind::Utility("SET"),
        Some(NodeEnum::ExplainStmt(_)) => StatementKind::Utility("EXPLAIN"),
        Some(NodeEnum::PrepareStmt(_) | NodeEnum::ExecuteStmt(_)) => {
            StatementKind::Utility("PREPARE/EXECUTE")
        }
        Some(_) => StatementKind::Utility("DDL or another utility command"),
        None => return Err("empty statement".into()),
    })
}

/// The tables the statement names (into `out`), and its aliases.
fn tables(
    nodes: &[(NodeRef<'_>, i32, pg_query::Context, bool)],
    out: &mut Inferred,
) -> HashMap<String, TableName> {
    let mut aliases: HashMap<String, TableName> = HashMap::new();
    for (node, ..) in nodes {
        if let NodeRef::RangeVar(rv) = node {
            let table = TableName {
                schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
                name: rv.relname.clone(),
            };
            out.temporary |= rv.relpersistence == "t" || rv.schemaname.starts_with("pg_temp");
            if let Some(a) = &rv.alias {
                aliases.insert(a.aliasname.clone(), table.clone());
            }
            aliases.entry(rv.relname.clone()).or_insert(table.clone());
            if !out.tables.contains(&table) {
                out.tables.push(table);
            }
        }
    }
    aliases
}

/// The uses of parameters one node shows.
fn uses_in(node: &NodeRef<'_>, resolve: &Resolve<'_>, uses: &mut HashMap<i32, Vec<Use>>) {
    match node {
        NodeRef::AExpr(e) => comparison(e, resolve, uses),
        NodeRef::SelectStmt(s) => {
            if let Some(n) = param_of(s.limit_count.as_deref()) {
                uses.entry(n).or_default().push(Use::Limit);
            }
            if let Some(n) = param_of(s.limit_offset.as_deref()) {
                uses.entry(n).or_default().push(Use::Offset);
            }
        }
        NodeRef::InsertStmt(i) => insert(i, uses),
        NodeRef::FuncCall(f) => {
            let function = f
                .funcname
                .iter()
                .rev()
                .find_map(|n| match n.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(s.sval.to_ascii_lowercase()),
                    _ => None,
                })
                .unwrap_or_default();
            for (k, a) in f.args.iter().enumerate() {
                let Some(n) = bare_param(Some(a)) else {
                    continue;
                };
                let found = if function == "pg_get_serial_sequence" && k < 2 {
                    Use::SerialOf(k as u8)
                } else {
                    Use::Argument {
                        function: function.clone(),
                        index: k,
                    }
                };
                uses.entry(n).or_default().push(found);
            }
        }
        NodeRef::UpdateStmt(u) => {
            let table = u.relation.as_ref().map(|rv| TableName {
                schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
                name: rv.relname.clone(),
            });
            for t in &u.target_list {
                if let Some(NodeEnum::ResTarget(rt)) = t.node.as_ref() {
                    assign(&table, &rt.name, rt.val.as_deref(), uses);
                }
            }
        }
        _ => {}
    }
}

fn is_set_config(s: &pg_query::protobuf::SelectStmt) -> bool {
    s.from_clause.is_empty()
        && s.target_list.len() == 1
        && s.target_list.iter().all(|t| match t.node.as_ref() {
            Some(NodeEnum::ResTarget(rt)) => matches!(
                rt.val.as_deref().and_then(|v| v.node.as_ref()),
                Some(NodeEnum::FuncCall(f)) if f.funcname.iter().any(|n| matches!(
                    n.node.as_ref(), Some(NodeEnum::String(s)) if s.sval == "set_config"))
            ),
            _ => false,
        })
}

/// `$n`, `$n::type`, or `$n || …` (a prefix pattern): the parameter.
fn param_of(node: Option<&Node>) -> Option<i32> {
    match node?.node.as_ref()? {
        NodeEnum::ParamRef(p) => Some(p.number),
        NodeEnum::TypeCast(c) => param_of(c.arg.as_deref()),
        NodeEnum::AExpr(e) if op_name(e) == Some("||") => param_of(e.lexpr.as_deref()),
        _ => None,
    }
}

/// `$n` or `$n::type` only: a value that is the parameter itself (`'POS-'
/// || $1` assigned to a column is not a value of that column).
fn bare_param(node: Option<&Node>) -> Option<i32> {
    match node?.node.as_ref()? {
        NodeEnum::ParamRef(p) => Some(p.number),
        NodeEnum::TypeCast(c) => bare_param(c.arg.as_deref()),
        _ => None,
    }
}

fn op_name(e: &pg_query::protobuf::AExpr) -> Option<&str> {
    e.name.iter().find_map(|n| match n.node.as_ref() {
        Some(NodeEnum::String(s)) => Some(s.sval.as_str()),
        _ => None,
    })
}

fn column_of(node: Option<&Node>) -> Option<&[Node]> {
    match node?.node.as_ref()? {
        NodeEnum::ColumnRef(c) => Some(&c.fields),
        NodeEnum::TypeCast(c) => column_of(c.arg.as_deref()),
        _ => None,
    }
}

type Resolve<'a> = dyn Fn(&[Node]) -> Option<(Option<TableName>, String)> + 'a;

fn comparison(
    e: &pg_query::protobuf::AExpr,
    resolve: &Resolve<'_>,
    uses: &mut HashMap<i32, Vec<Use>>,
) {
    let kind = AExprKind::try_from(e.kind).unwrap_or(AExprKind::Undefined);
    let range = matches!(
        kind,
        AExprKind::AexprBetween
            | AExprKind::AexprNotBetween
            | AExprKind::AexprBetweenSym
            | AExprKind::AexprNotBetweenSym
    ) || matches!(op_name(e), Some("<" | ">" | "<=" | ">="));
    if kind == AExprKind::AexprNullif {
        // `nullif(x, 0)` guarding a division: the constant is the guard.
        if let Some(n) = bare_param(e.rexpr.as_deref()) {
            uses.entry(n).or_default().push(Use::Argument {
                function: "nullif".into(),
                index: 1,
            });
        }
        return;
    }
    // Arithmetic (`quantity - $1`, `position + $2`) is not a comparison:
    // a value of the column there would be a step, not a value.
    let compares = matches!(
        op_name(e),
        Some("=" | "<>" | "!=" | "<" | ">" | "<=" | ">=" | "~" | "~*" | "!~" | "!~*")
    );
    let comparable = (kind == AExprKind::AexprOp && compares)
        || matches!(
            kind,
            AExprKind::AexprIn
                | AExprKind::AexprLike
                | AExprKind::AexprIlike
                | AExprKind::AexprDistinct
                | AExprKind::AexprNotDistinct
                | AExprKind::AexprOpAny
        )
        || range;
    if !comparable {
        return;
    }
    let excluded = kind == AExprKind::AexprDistinct
        || (matches!(kind, AExprKind::AexprOp | AExprKind::AexprIn)
            && matches!(op_name(e), Some("<>" | "!=")));
    for (col_side, param_side) in [(&e.lexpr, &e.rexpr), (&e.rexpr, &e.lexpr)] {
        let Some((table, column)) = column_of(col_side.as_deref()).and_then(resolve) else {
            continue;
        };
        // IN ($1, $2) and BETWEEN $1 AND $2 hold a list.
        let params: Vec<i32> = match param_side.as_deref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::List(l)) => l.items.iter().filter_map(|i| param_of(Some(i))).collect(),
            _ => param_of(param_side.as_deref()).into_iter().collect(),
        };
        for n in params {
            let found = if kind == AExprKind::AexprOpAny {
                Use::Array
            } else {
                Use::Column {
                    table: table.clone(),
                    column: column.clone(),
                    range,
                    written: false,
                    excluded,
                }
            };
            uses.entry(n).or_default().push(found);
        }
    }
}

/// `col = $n` in SET, or a value list / select list position of INSERT;
/// a CASE's results count as the value.
fn assign(
    table: &Option<TableName>,
    column: &str,
    val: Option<&Node>,
    uses: &mut HashMap<i32, Vec<Use>>,
) {
    let mut params: Vec<i32> = bare_param(val).into_iter().collect();
    if let Some(NodeEnum::CaseExpr(c)) = val.and_then(|v| v.node.as_ref()) {
        params.extend(bare_param(c.defresult.as_deref()));
        for w in &c.args {
            if let Some(NodeEnum::CaseWhen(cw)) = w.node.as_ref() {
                params.extend(bare_param(cw.result.as_deref()));
            }
        }
    }
    for n in params {
        uses.entry(n).or_default().push(Use::Column {
            table: table.clone(),
            column: column.into(),
            range: false,
            written: true,
            excluded: false,
        });
    }
}

fn insert(i: &pg_query::protobuf::InsertStmt, uses: &mut HashMap<i32, Vec<Use>>) {
    let table = i.relation.as_ref().map(|rv| TableName {
        schema: (!rv.schemaname.is_empty()).then(|| rv.schemaname.clone()),
        name: rv.relname.clone(),
    });
    let columns: Vec<String> = i
        .cols
        .iter()
        .filter_map(|c| match c.node.as_ref() {
            Some(NodeEnum::ResTarget(rt)) => Some(rt.name.clone()),
            _ => None,
        })
        .collect();
    let Some(NodeEnum::SelectStmt(sel)) = i.select_stmt.as_deref().and_then(|n| n.node.as_ref())
    else {
        return;
    };
    for row in &sel.values_lists {
        if let Some(NodeEnum::List(l)) = row.node.as_ref() {
            for (col, val) in columns.iter().zip(&l.items) {
                assign(&table, col, Some(val), uses);
            }
        }
    }
    for (col, t) in columns.iter().zip(&sel.target_list) {
        if let Some(NodeEnum::ResTarget(rt)) = t.node.as_ref() {
            assign(&table, col, rt.val.as_deref(), uses);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(table: Option<&str>, column: &str, range: bool, written: bool) -> Use {
        Use::Column {
            table: table.map(|t| TableName {
                schema: None,
                name: t.into(),
            }),
            column: column.into(),
            range,
            written,
            excluded: false,
        }
    }

    /// What `<>`, `NOT IN` and `IS DISTINCT FROM` compare with is left out.
    #[test]
    fn exclusions_are_told_from_matches() {
        let i = infer(
            "SELECT id FROM orders WHERE status NOT IN ($1, $2) AND channel <> $3 \
             AND store_id IS DISTINCT FROM $4 AND status = $5",
        )
        .unwrap();
        let excluded = |n: i32| match &i.uses[&n][0] {
            Use::Column { excluded, .. } => *excluded,
            other => panic!("${n}: {other:?}"),
        };
        assert!(excluded(1) && excluded(2) && excluded(3) && excluded(4));
        assert!(!excluded(5));
    }

    #[test]
    fn comparisons_limits_and_orm_quoting() {
        let i = infer(
            r#"SELECT "Customer"."id" FROM "public"."Customer" WHERE ("Customer"."tenantId" = $1 AND "Customer"."email" LIKE $2 || '%' AND created_at >= $3) LIMIT $4 OFFSET $5"#,
        )
        .unwrap();
        assert_eq!(i.kind, StatementKind::Read);
        let t = Some(TableName {
            schema: Some("public".into()),
            name: "Customer".into(),
        });
        assert_eq!(
            i.uses[&1],
            vec![Use::Column {
                table: t.clone(),
                column: "tenantId".into(),
                range: false,
                written: false,
                excluded: false,
            }]
        );
        assert!(matches!(&i.uses[&2][0], Use::Column { column, .. } if column == "email"));
        assert_eq!(i.uses[&3], vec![col(None, "created_at", true, false)]);
        assert_eq!(i.uses[&4], vec![Use::Limit]);
        assert_eq!(i.uses[&5], vec![Use::Offset]);
        // A step is not a value of the column; nullif's constant is a guard.
        let i = infer("UPDATE inventory SET quantity = quantity - $1 WHERE x > $2 / nullif(y, $3)")
            .unwrap();
        assert!(!i.uses.contains_key(&1), "{:?}", i.uses);
        assert_eq!(
            i.uses[&3],
            vec![Use::Argument {
                function: "nullif".into(),
                index: 1
            }]
        );
    }

    #[test]
    fn writes_in_and_any_and_frame() {
        let i = infer("INSERT INTO orders (a, status) VALUES ($1, $2)").unwrap();
        assert_eq!(i.kind, StatementKind::Write);
        assert_eq!(i.uses[&2], vec![col(Some("orders"), "status", false, true)]);
        let i = infer(
            "UPDATE deals d SET status = CASE WHEN x THEN $1 ELSE $2 END WHERE d.id IN ($3, $4)",
        )
        .unwrap();
        assert_eq!(i.uses[&1], vec![col(Some("deals"), "status", false, true)]);
        assert_eq!(i.uses[&4], vec![col(Some("deals"), "id", false, false)]);
        let i = infer("SELECT * FROM t WHERE id = ANY($1)").unwrap();
        assert_eq!(i.uses[&1], vec![Use::Array]);
        assert_eq!(
            infer("SELECT set_config($1, $2, $3)").unwrap().kind,
            StatementKind::Frame
        );
        assert_eq!(infer("COMMIT").unwrap().kind, StatementKind::Frame);
        assert_eq!(
            infer("CREATE INDEX ON t (a)").unwrap().kind,
            StatementKind::Utility("DDL or another utility command")
        );
    }
}
