//! Values drawn from the data, taken out of plans.json. EXPLAIN prints the
//! parameters it was given as constants (`email = 'ann@example.com'::text`),
//! so a plans.json captured on someone's database holds their customers'
//! emails and ids. With redaction on, every value drawn from the data — the
//! tenant id, `sample` and `ref` parameters — becomes `'<redacted>'` where a
//! plan, a finding or an error prints it (the cast stays: `'<redacted>'::text`),
//! and the tenant ids of the file become `<redacted>`. Constants the SQL
//! spells out itself (`status = 'open'`) are kept: they are in the workload
//! file, not in the data, and the advisor reads them for partial indexes.
//! Everything else the advisor reads — columns, operators, casts, the shape
//! of each condition — is left as it was.

use tokio_postgres::types::{FromSql, Type};

use super::StatementPlan;
use super::plan::PlanNode;
use crate::pg::Target;
use crate::workload::Param;
use crate::workload::params::Value;

/// What stands for a value that was taken out.
pub const PLACEHOLDER: &str = "<redacted>";

/// Whether plans.json keeps the values drawn from the data.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SampledValues {
    /// Kept as EXPLAIN printed them.
    Keep,
    /// Replaced by [`PLACEHOLDER`].
    Redact,
}

impl SampledValues {
    /// The default on `target`: redacted on a `--database-url` server (its
    /// data is someone's), kept on the private server (generated data).
    pub fn default_for(target: &Target) -> SampledValues {
        if target.is_external() {
            SampledValues::Redact
        } else {
            SampledValues::Keep
        }
    }
}

/// The values among `values` (one per parameter of `params`) that were drawn
/// from the data, as text: the tenant id, `sample` and `ref` values.
pub fn data_values(params: &[Param], values: &[Value]) -> Vec<String> {
    params
        .iter()
        .zip(values)
        .filter(|(p, _)| matches!(p, Param::Tenant | Param::Sample { .. } | Param::Ref(_)))
        .filter_map(|(_, v)| match v {
            Value::Text(s) => Some(s.clone()),
            Value::Raw(ty, raw) => raw_text(ty, raw),
            Value::Null => None,
        })
        .filter(|s| !s.is_empty())
        .collect()
}

/// A value the server returned (a `ref`), as EXPLAIN would print it, for
/// the types ids and names come in.
fn raw_text(ty: &Type, raw: &[u8]) -> Option<String> {
    match *ty {
        Type::INT2 => i16::from_sql(ty, raw).ok().map(|v| v.to_string()),
        Type::INT4 => i32::from_sql(ty, raw).ok().map(|v| v.to_string()),
        Type::INT8 => i64::from_sql(ty, raw).ok().map(|v| v.to_string()),
        Type::UUID => uuid::Uuid::from_sql(ty, raw).ok().map(|v| v.to_string()),
        _ if <String as FromSql>::accepts(ty) => String::from_sql(ty, raw).ok(),
        _ => None,
    }
}

/// Take `values` out of one statement's plan, findings and error.
pub fn redact_statement(entry: &mut StatementPlan, values: &[String]) {
    if values.is_empty() {
        return;
    }
    let sql = entry.sql.clone();
    if let Some(plan) = &mut entry.plan {
        redact_node(&mut plan.plan, values, &sql);
    }
    for f in &mut entry.findings {
        f.hint = redact_text(&f.hint, values, &sql);
    }
    if let Some(error) = &entry.error {
        entry.error = Some(redact_error(error, values));
    }
}

fn redact_node(node: &mut PlanNode, values: &[String], sql: &str) {
    let one = |field: &mut Option<String>| {
        if let Some(text) = field {
            *text = redact_text(text, values, sql);
        }
    };
    one(&mut node.index_cond);
    one(&mut node.recheck_cond);
    one(&mut node.filter);
    one(&mut node.join_filter);
    one(&mut node.hash_cond);
    one(&mut node.merge_cond);
    for list in [&mut node.output, &mut node.sort_key].into_iter().flatten() {
        for text in list.iter_mut() {
            *text = redact_text(text, values, sql);
        }
    }
    for child in &mut node.plans {
        redact_node(child, values, sql);
    }
}

/// Whether a constant whose text is `content` holds one of `values`
/// (whole, or, for values of 3 characters or more, inside it: a LIKE
/// pattern built from a parameter).
fn holds_value(content: &str, values: &[String]) -> bool {
    values
        .iter()
        .any(|v| content == v || (v.chars().count() >= 3 && content.contains(v.as_str())))
}

/// An expression as EXPLAIN prints it, with every string constant and bare
/// number that holds one of `values` replaced, unless `sql` spells that
/// very constant out. Quoted identifiers are left alone.
pub fn redact_text(text: &str, values: &[String], sql: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        let (token, redacted) = match c {
            '\'' | '"' => {
                let token = &rest[..quoted_len(rest, c)];
                let inner = &token[1..token.len().saturating_sub(1).max(1)];
                let content = inner.replace(&format!("{c}{c}"), &c.to_string());
                let secret = c == '\'' && holds_value(&content, values) && !sql.contains(token);
                (token, secret.then(|| format!("'{PLACEHOLDER}'")))
            }
            '0'..='9' if !out.ends_with(|p: char| p.is_alphanumeric() || "_$.".contains(p)) => {
                let len = rest
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .unwrap_or(rest.len());
                let token = &rest[..len];
                let glued = rest[len..].starts_with(|ch: char| ch.is_alphanumeric() || ch == '_');
                let secret = !glued && values.iter().any(|v| v == token) && !has_token(sql, token);
                (token, secret.then(|| PLACEHOLDER.to_string()))
            }
            _ => (&rest[..c.len_utf8()], None),
        };
        out.push_str(redacted.as_deref().unwrap_or(token));
        rest = &rest[token.len()..];
    }
    out
}

/// Length of the quoted token at the start of `text` (quote `q`, doubled
/// inside), to the end of `text` when it is not closed.
fn quoted_len(text: &str, q: char) -> usize {
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == q {
            if chars.peek().is_some_and(|(_, n)| *n == q) {
                chars.next();
            } else {
                return i + 1;
            }
        }
    }
    text.len()
}

/// Whether `sql` holds the number `token` on its own (not `$1`, not `t1`).
fn has_token(sql: &str, token: &str) -> bool {
    sql.match_indices(token).any(|(at, _)| {
        let before = sql[..at].chars().next_back();
        let after = sql[at + token.len()..].chars().next();
        !before.is_some_and(|c| c.is_alphanumeric() || "_$.".contains(c))
            && !after.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '.')
    })
}

/// An error as crmbench shows it, without the server's DETAIL (it quotes
/// rows: `Key (email)=(…) already exists`) and without `values` wherever
/// they appear (`invalid input syntax for type uuid: "…"`).
pub fn redact_error(text: &str, values: &[String]) -> String {
    let mut out = text.to_string();
    if let Some(start) = out.find(" — ") {
        let end = out
            .rfind(" (SQLSTATE ")
            .filter(|e| *e > start)
            .unwrap_or(out.len());
        out.replace_range(start..end, &format!(" — {PLACEHOLDER} detail"));
    }
    let mut long: Vec<&String> = values.iter().filter(|v| v.chars().count() >= 3).collect();
    // Longest first, so a value inside another is not half-replaced.
    long.sort_by_key(|v| std::cmp::Reverse(v.len()));
    for v in long {
        out = out.replace(v.as_str(), PLACEHOLDER);
    }
    redact_text(&out, values, "")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vals(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn bound_values_go_sql_constants_stay() {
        let v = vals(&[
            "ann@example.com",
            "42",
            "a0000000-0000-0000-0000-000000000001",
            "7",
        ]);
        let sql = "SELECT id FROM customers c WHERE tenant_id = $1 AND email = $2 AND status = 'open' AND x = 7";
        let text = "((c.tenant_id = 'a0000000-0000-0000-0000-000000000001'::uuid) AND \
                    (c.email = 'ann@example.com'::text) AND (c.status = 'open'::text) AND \
                    (c.id = '42'::bigint) AND (c.n = 42) AND (c.t1 = 42.5) AND (c.x = 7))";
        assert_eq!(
            redact_text(text, &v, sql),
            "((c.tenant_id = '<redacted>'::uuid) AND (c.email = '<redacted>'::text) AND \
             (c.status = 'open'::text) AND (c.id = '<redacted>'::bigint) AND (c.n = <redacted>) \
             AND (c.t1 = 42.5) AND (c.x = 7))"
        );
    }

    #[test]
    fn patterns_quotes_and_identifiers() {
        let v = vals(&["o'neil", "42"]);
        assert_eq!(
            redact_text(
                "((c.last_name)::text ~~ '%o''neil%'::text)",
                &v,
                "last_name LIKE '%' || $1 || '%'"
            ),
            "((c.last_name)::text ~~ '<redacted>'::text)"
        );
        assert_eq!(
            redact_text("(\"42\".x = t42.y)", &v, ""),
            "(\"42\".x = t42.y)"
        );
        assert_eq!(redact_text("'unclosed 42", &v, ""), "'unclosed 42");
    }

    #[test]
    fn errors_lose_the_detail_and_the_values() {
        let v = vals(&["ann@example.com"]);
        assert_eq!(
            redact_error(
                "EXPLAIN: duplicate key value violates unique constraint \"c_email\" — Key (email)=(ann@example.com) already exists. (SQLSTATE 23505)",
                &v
            ),
            "EXPLAIN: duplicate key value violates unique constraint \"c_email\" — <redacted> detail (SQLSTATE 23505)"
        );
        assert_eq!(
            redact_error(
                "invalid input syntax for type uuid: \"ann@example.com\" (SQLSTATE 22P02)",
                &v
            ),
            "invalid input syntax for type uuid: \"<redacted>\" (SQLSTATE 22P02)"
        );
    }

    /// Every constant of `text` the SQL does not spell out: what a bound
    /// parameter looks like in a plan.
    fn bound_constants(text: &str, sql: &str, out: &mut Vec<String>) {
        let mut rest = text;
        while let Some(c) = rest.chars().next() {
            let len = match c {
                '\'' | '"' => quoted_len(rest, c),
                '0'..='9' => rest
                    .find(|ch: char| !(ch.is_ascii_digit() || ch == '.'))
                    .unwrap_or(rest.len()),
                _ => c.len_utf8(),
            };
            let token = &rest[..len];
            if c == '\'' && len > 1 && !sql.contains(token) {
                out.push(token[1..len - 1].replace("''", "'"));
            } else if c.is_ascii_digit() && !has_token(sql, token) {
                out.push(token.to_string());
            }
            rest = &rest[len..];
        }
    }

    fn node_constants(node: &PlanNode, sql: &str, out: &mut Vec<String>) {
        let fields = [
            &node.index_cond,
            &node.recheck_cond,
            &node.filter,
            &node.join_filter,
            &node.hash_cond,
            &node.merge_cond,
        ];
        for text in fields.into_iter().flatten() {
            bound_constants(text, sql, out);
        }
        for text in [&node.output, &node.sort_key]
            .into_iter()
            .flatten()
            .flatten()
        {
            bound_constants(text, sql, out);
        }
        for child in &node.plans {
            node_constants(child, sql, out);
        }
    }

    /// The advisor's candidates from every fixture of
    /// fixtures/plans/candidates are the same with the bound values
    /// redacted: it reads columns, operators and the SQL's own constants.
    #[test]
    fn the_advisor_reads_the_same_from_redacted_plans() {
        use std::collections::HashSet;

        use crate::advise::workload_candidates;
        use crate::explain::findings::NumericColumns;
        use crate::explain::{PlansFile, QueryPlans, TenantPlans};

        let mut redacted_some = 0;
        for entry in std::fs::read_dir("fixtures/plans/candidates").unwrap() {
            let v: serde_json::Value =
                serde_json::from_str(&std::fs::read_to_string(entry.unwrap().path()).unwrap())
                    .unwrap();
            let queries: Vec<QueryPlans> = v["queries"]
                .as_array()
                .unwrap()
                .iter()
                .map(|q| {
                    let plan = super::super::plan::Explained::parse(&q["explain"]).unwrap();
                    let mut statement = StatementPlan::empty(0, q["sql"].as_str().unwrap());
                    statement.plan = Some(plan);
                    QueryPlans {
                        name: q["name"].as_str().unwrap().into(),
                        tenants: vec![TenantPlans {
                            class: "big".into(),
                            tenant: "t".into(),
                            statements: vec![statement],
                        }],
                        findings: vec![],
                    }
                })
                .collect();
            let plans = PlansFile {
                format_version: 1,
                crmbench_version: "test".into(),
                workload: crate::results::WorkloadInfo {
                    name: "fixture".into(),
                    path: "fixture".into(),
                    hash: String::new(),
                },
                seed: 1,
                rls: v["rls"].as_bool().unwrap(),
                queries,
            };
            let mut redacted = plans.clone();
            for q in &mut redacted.queries {
                for s in &mut q.tenants[0].statements {
                    let mut values = Vec::new();
                    if let Some(p) = &s.plan {
                        node_constants(&p.plan, &s.sql, &mut values);
                    }
                    redacted_some += values.len();
                    redact_statement(s, &values);
                }
            }
            let numeric: NumericColumns = serde_json::from_value(v["numeric"].clone()).unwrap();
            let tenant_tables: HashSet<String> =
                serde_json::from_value(v["tenant_tables"].clone()).unwrap();
            let low: Vec<(String, String)> =
                serde_json::from_value(v["low_cardinality"].clone()).unwrap();
            let low: HashSet<(String, String)> = low.into_iter().collect();
            let advise =
                |p: &PlansFile| workload_candidates(p, &numeric, &tenant_tables, "tenant_id", &low);
            assert_eq!(advise(&redacted), advise(&plans), "{}", v["about"]);
        }
        assert!(redacted_some >= 10, "{redacted_some}");
    }

    #[test]
    fn only_values_from_the_data_are_redacted() {
        let params = [
            Param::Tenant,
            Param::Int {
                lo: 1,
                hi: 9,
                dist: Default::default(),
            },
            Param::Ref("id".into()),
            Param::Ref("name".into()),
        ];
        let values = [
            Value::Text("t-1".into()),
            Value::Text("5".into()),
            Value::Raw(Type::INT8, 1234i64.to_be_bytes().to_vec()),
            Value::Raw(Type::TEXT, b"Ann".to_vec()),
        ];
        assert_eq!(data_values(&params, &values), vals(&["t-1", "1234", "Ann"]));
    }
}
