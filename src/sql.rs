//! SQL as PostgreSQL itself reads it: parsing, splitting a script into
//! statements, and scanning for `$n` parameters, all through `pg_query`
//! (libpg_query, the server's own grammar and lexer). Quoted identifiers,
//! dollar quoting, comments and `"Model"."field"` names are handled because
//! the server's code handles them; nothing here pattern-matches SQL text.
//!
//! Stage-specific tree walking (migration rules, capture, rewriting) lives
//! with its stage; this module holds what several stages share.

use std::ops::Range;

pub use pg_query::{NodeEnum, NodeRef, ParseResult};

/// A statement PostgreSQL's parser rejected (or the scanner could not read).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SqlError {
    /// The parser's own message, e.g. `syntax error at or near "FORM"`.
    pub message: String,
}

impl From<pg_query::Error> for SqlError {
    fn from(e: pg_query::Error) -> Self {
        let message = match e {
            pg_query::Error::Parse(m) | pg_query::Error::Split(m) | pg_query::Error::Scan(m) => m,
            other => other.to_string(),
        };
        SqlError { message }
    }
}

/// Parse one or more statements into PostgreSQL's parse tree.
pub fn parse(sql: &str) -> Result<ParseResult, SqlError> {
    Ok(pg_query::parse(sql)?)
}

/// One statement of a script, as written (without the separating `;`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement<'a> {
    /// The statement's text, leading whitespace trimmed.
    pub text: &'a str,
    /// Byte offset of `text` in the script.
    pub offset: usize,
    /// 1-based line of the script on which the statement starts.
    pub line: usize,
}

/// Split a script (a migration file, a workload's multi-statement query)
/// into statements with the server's parser: a `;` inside a string, a
/// comment, a dollar-quoted function body or a quoted name does not split.
/// A script that does not parse is an error, never a guess.
pub fn split(script: &str) -> Result<Vec<Statement<'_>>, SqlError> {
    let base = script.as_ptr() as usize;
    let mut out = Vec::new();
    for piece in pg_query::split_with_parser(script)? {
        // libpg_query hands back slices of `script`; the offset follows.
        let start = piece.as_ptr() as usize - base;
        let trimmed = piece.trim_start();
        let offset = start + (piece.len() - trimmed.len());
        let text = trimmed.trim_end();
        if text.is_empty() {
            continue;
        }
        out.push(Statement {
            text,
            offset,
            line: line_of(script, offset),
        });
    }
    Ok(out)
}

/// The 1-based line of byte `offset` in `text`.
pub fn line_of(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    1 + text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
}

/// Byte offset in `statement` of its first token that is not a comment, so
/// a finding points at the code, not at the comment above it (a statement
/// from [`split`] starts at its leading comments).
pub fn code_start(statement: &str) -> usize {
    use pg_query::protobuf::Token;
    let Ok(scanned) = pg_query::scan(statement) else {
        return 0;
    };
    scanned
        .tokens
        .iter()
        .find(|t| t.token != Token::SqlComment as i32 && t.token != Token::CComment as i32)
        .and_then(|t| usize::try_from(t.start).ok())
        .unwrap_or(0)
}

/// A `$n` parameter reference found by the lexer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Param {
    /// The parameter's number (`$3` → 3).
    pub number: u32,
    /// Byte range of `$n` in the statement.
    pub span: Range<usize>,
}

/// Every `$n` in `sql`, in order of appearance, found by PostgreSQL's lexer
/// (so `'$1'`, `"$1"`, `$$ … $1 … $$` and comments are not parameters).
pub fn params(sql: &str) -> Result<Vec<Param>, SqlError> {
    let scanned = pg_query::scan(sql)?;
    let mut out = Vec::new();
    for token in scanned.tokens {
        if token.token != pg_query::protobuf::Token::Param as i32 {
            continue;
        }
        let span = token.start as usize..token.end as usize;
        let Some(number) = sql
            .get(span.clone())
            .and_then(|t| t.strip_prefix('$'))
            .and_then(|n| n.parse().ok())
        else {
            return Err(SqlError {
                message: format!("unreadable parameter at byte {}", span.start),
            });
        };
        out.push(Param { number, span });
    }
    Ok(out)
}

/// The column names an expression refers to (`status = 'open'` → `status`,
/// `lower(email)` → `email`; a qualified `t.x` gives `x`), in order, each once.
pub fn column_refs(expr: &str) -> Result<Vec<String>, SqlError> {
    let tree = parse(&format!("SELECT {expr}"))?;
    let mut out: Vec<String> = Vec::new();
    for (node, ..) in tree.protobuf.nodes() {
        let NodeRef::ColumnRef(c) = node else {
            continue;
        };
        if let Some(NodeEnum::String(s)) = c.fields.last().and_then(|f| f.node.as_ref()) {
            if !out.contains(&s.sval) {
                out.push(s.sval.clone());
            }
        }
    }
    Ok(out)
}

/// A `NULL` constant, to stand in for an expression a rewrite leaves out.
pub fn null_node() -> pg_query::protobuf::Node {
    pg_query::protobuf::Node {
        node: Some(NodeEnum::AConst(pg_query::protobuf::AConst {
            isnull: true,
            location: -1,
            val: None,
        })),
    }
}

/// The text of one `SELECT` (or `VALUES`) tree, as the server's own
/// deparser writes it.
pub fn deparse_select(select: &pg_query::protobuf::SelectStmt) -> Result<String, SqlError> {
    Ok(NodeEnum::SelectStmt(Box::new(select.clone())).deparse()?)
}

/// The text of one expression, as the server's deparser writes it.
pub fn expr_text(expr: &pg_query::protobuf::Node) -> Result<String, SqlError> {
    // A parsed `SELECT NULL` carries every field the deparser checks (a
    // hand-built tree with an unset enum aborts the process inside it).
    let mut select = match parse("SELECT NULL")?
        .protobuf
        .stmts
        .first()
        .and_then(|s| s.stmt.as_ref())
        .and_then(|s| s.node.clone())
    {
        Some(NodeEnum::SelectStmt(s)) => s,
        _ => {
            return Err(SqlError {
                message: "SELECT NULL did not parse as a SELECT".into(),
            });
        }
    };
    if let Some(NodeEnum::ResTarget(r)) =
        select.target_list.first_mut().and_then(|t| t.node.as_mut())
    {
        r.val = Some(Box::new(expr.clone()));
    }
    let text = deparse_select(&select)?;
    Ok(text.strip_prefix("SELECT ").unwrap_or(&text).to_string())
}

/// One expression parsed (`round($1 * 100)` → its tree).
pub fn parse_expr(text: &str) -> Result<pg_query::protobuf::Node, SqlError> {
    let tree = parse(&format!("SELECT {text}"))?;
    let target =
        tree.protobuf
            .stmts
            .first()
            .and_then(|s| match s.stmt.as_ref()?.node.as_ref()? {
                NodeEnum::SelectStmt(sel) if sel.target_list.len() == 1 => {
                    match sel.target_list[0].node.as_ref()? {
                        NodeEnum::ResTarget(r) => r.val.as_deref().cloned(),
                        _ => None,
                    }
                }
                _ => None,
            });
    target.ok_or_else(|| SqlError {
        message: format!("not one expression: {text}"),
    })
}

/// The child nodes of the expression and statement nodes a rewrite walks
/// (select lists, FROM items and joins, WHERE/HAVING, GROUP/ORDER BY,
/// operators, boolean logic, casts, function calls, sub-selects, CASE,
/// COALESCE, CTEs, UPDATE/DELETE/INSERT bodies), for changing a tree in
/// place. A set operation's arms are not `Node`s: walk
/// `SelectStmt::larg`/`rarg` yourself.
pub fn children_mut(node: &mut NodeEnum) -> Vec<&mut pg_query::protobuf::Node> {
    let mut out: Vec<&mut pg_query::protobuf::Node> = Vec::new();
    fn opt<'a>(
        out: &mut Vec<&'a mut pg_query::protobuf::Node>,
        n: &'a mut Option<Box<pg_query::protobuf::Node>>,
    ) {
        if let Some(n) = n.as_deref_mut() {
            out.push(n);
        }
    }
    fn with_ctes(
        w: &mut Option<pg_query::protobuf::WithClause>,
    ) -> std::slice::IterMut<'_, pg_query::protobuf::Node> {
        match w {
            Some(w) => w.ctes.iter_mut(),
            None => [].iter_mut(),
        }
    }
    match node {
        NodeEnum::SelectStmt(s) => {
            let s = &mut **s;
            out.extend(with_ctes(&mut s.with_clause));
            out.extend(s.target_list.iter_mut());
            out.extend(s.from_clause.iter_mut());
            opt(&mut out, &mut s.where_clause);
            out.extend(s.group_clause.iter_mut());
            opt(&mut out, &mut s.having_clause);
            out.extend(s.sort_clause.iter_mut());
            out.extend(s.values_lists.iter_mut());
        }
        NodeEnum::InsertStmt(s) => {
            let s = &mut **s;
            out.extend(with_ctes(&mut s.with_clause));
            opt(&mut out, &mut s.select_stmt);
            out.extend(s.returning_list.iter_mut());
        }
        NodeEnum::UpdateStmt(s) => {
            let s = &mut **s;
            out.extend(with_ctes(&mut s.with_clause));
            out.extend(s.target_list.iter_mut());
            out.extend(s.from_clause.iter_mut());
            opt(&mut out, &mut s.where_clause);
            out.extend(s.returning_list.iter_mut());
        }
        NodeEnum::DeleteStmt(s) => {
            let s = &mut **s;
            out.extend(with_ctes(&mut s.with_clause));
            out.extend(s.using_clause.iter_mut());
            opt(&mut out, &mut s.where_clause);
            out.extend(s.returning_list.iter_mut());
        }
        NodeEnum::CommonTableExpr(c) => opt(&mut out, &mut c.ctequery),
        NodeEnum::ResTarget(r) => opt(&mut out, &mut r.val),
        NodeEnum::AExpr(e) => {
            let e = &mut **e;
            opt(&mut out, &mut e.lexpr);
            opt(&mut out, &mut e.rexpr);
        }
        NodeEnum::BoolExpr(b) => out.extend(b.args.iter_mut()),
        NodeEnum::List(l) => out.extend(l.items.iter_mut()),
        NodeEnum::TypeCast(t) => opt(&mut out, &mut t.arg),
        NodeEnum::FuncCall(f) => {
            let f = &mut **f;
            out.extend(f.args.iter_mut());
            out.extend(f.agg_order.iter_mut());
            opt(&mut out, &mut f.agg_filter);
        }
        NodeEnum::SubLink(l) => {
            let l = &mut **l;
            opt(&mut out, &mut l.testexpr);
            opt(&mut out, &mut l.subselect);
        }
        NodeEnum::NullTest(t) => opt(&mut out, &mut t.arg),
        NodeEnum::JoinExpr(j) => {
            let j = &mut **j;
            opt(&mut out, &mut j.larg);
            opt(&mut out, &mut j.rarg);
            opt(&mut out, &mut j.quals);
        }
        NodeEnum::RangeSubselect(r) => opt(&mut out, &mut r.subquery),
        NodeEnum::CaseExpr(c) => {
            let c = &mut **c;
            opt(&mut out, &mut c.arg);
            out.extend(c.args.iter_mut());
            opt(&mut out, &mut c.defresult);
        }
        NodeEnum::CaseWhen(c) => {
            let c = &mut **c;
            opt(&mut out, &mut c.expr);
            opt(&mut out, &mut c.result);
        }
        NodeEnum::CoalesceExpr(c) => out.extend(c.args.iter_mut()),
        NodeEnum::SortBy(s) => opt(&mut out, &mut s.node),
        _ => {}
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_keeps_semicolons_inside_strings_bodies_and_names() {
        let script = "-- header\nCREATE TABLE \"a;b\" (x text DEFAULT ';');\n\n\
                      CREATE FUNCTION f() RETURNS int LANGUAGE sql AS $$ SELECT 1; $$;\n\
                      SELECT 'x;y' /* ; */ ;";
        let statements = split(script).unwrap();
        assert_eq!(statements.len(), 3, "{statements:?}");
        assert!(statements[0].text.ends_with("DEFAULT ';')"));
        assert_eq!(statements[1].line, 4);
        assert!(statements[1].text.starts_with("CREATE FUNCTION"));
        assert_eq!(statements[2].line, 5);
        assert_eq!(&script[statements[2].offset..][..6], "SELECT");
    }

    #[test]
    fn split_refuses_what_does_not_parse() {
        let err = split("SELECT 1; SELEC 2;").unwrap_err();
        assert!(err.message.contains("syntax error"), "{err}");
    }

    #[test]
    fn params_come_from_the_lexer_not_the_text() {
        let sql = "SELECT '$1', \"$2\" FROM \"Customer\" WHERE \"tenantId\" = $1 -- $9\n AND x = ANY($12)";
        let found = params(sql).unwrap();
        let numbers: Vec<u32> = found.iter().map(|p| p.number).collect();
        assert_eq!(numbers, vec![1, 12]);
        assert_eq!(&sql[found[1].span.clone()], "$12");
    }

    #[test]
    fn parse_reads_quoted_orm_names() {
        let tree = parse("SELECT \"t0\".\"email\" FROM \"public\".\"Customer\" AS \"t0\" WHERE \"t0\".\"tenantId\" = $1").unwrap();
        assert_eq!(tree.tables(), vec!["public.Customer".to_string()]);
    }

    #[test]
    fn code_start_skips_leading_comments() {
        let text = "-- a\n/* b */ CREATE INDEX i ON t (x)";
        assert_eq!(&text[code_start(text)..][..6], "CREATE");
        assert_eq!(code_start("SELECT 1"), 0);
    }

    #[test]
    fn column_refs_name_each_column_once() {
        assert_eq!(
            column_refs("status = 'open'::text AND t.status <> lower(email)").unwrap(),
            vec!["status".to_string(), "email".to_string()]
        );
        assert!(column_refs("now()").unwrap().is_empty());
    }

    #[test]
    fn line_of_counts_from_one() {
        assert_eq!(line_of("a\nb\nc", 0), 1);
        assert_eq!(line_of("a\nb\nc", 4), 3);
        assert_eq!(line_of("a", 99), 1);
    }
}
