//! Reading a server log for `capture --from-log`: the statements a server
//! logged with `log_min_duration_statement = 0` (the simple protocol's
//! `statement:` lines, the extended protocol's `execute` lines with their
//! `DETAIL:  parameters: $1 = '…'`), or `auto_explain`'s `plan:` records
//! (text or JSON, with `Query Parameters` from PostgreSQL 16) when the log
//! holds no duration lines; stderr and csvlog formats. A simple-protocol
//! statement's constants become `$n` as pg_stat_statements would make them,
//! and their values are kept as that parameter's observed values.
//!
//! The result is one [`Logged`] per distinct normalized statement: its
//! calls, total duration, and every value seen for each `$n` — the real
//! values a replay can send where the catalog has no column to sample.

use std::collections::HashMap;

/// Values kept per parameter (the first ones seen, repeats included, so a
/// frequent value stays frequent).
pub const VALUES_KEPT: usize = 100;

/// One statement as the log shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    /// The statement with `$n` for every parameter and constant.
    pub query: String,
    /// The role, when the log line prefix shows it (`user=…`).
    pub role: Option<String>,
    /// Executions logged.
    pub calls: i64,
    /// Their total duration, ms.
    pub total_ms: f64,
    /// Observed values of each `$n` (index 0 is `$1`), NULLs left out.
    pub values: Vec<Vec<String>>,
}

/// The statements as text, for goldens and `-v`: each with its calls,
/// total time, role and observed values.
pub fn render(logged: &[Logged]) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    for (k, l) in logged.iter().enumerate() {
        let _ = writeln!(
            out,
            "statement {}: {} calls, {:.3} ms, role {}",
            k + 1,
            l.calls,
            l.total_ms,
            l.role.as_deref().unwrap_or("(not logged)")
        );
        for line in l.query.lines() {
            let _ = writeln!(out, "  | {line}");
        }
        for (n, v) in l.values.iter().enumerate() {
            let _ = writeln!(out, "  ${}: {}", n + 1, v.join(" | "));
        }
    }
    out
}

/// One execution read from the log.
#[derive(Debug, Clone, PartialEq)]
struct Execution {
    sql: String,
    role: Option<String>,
    ms: f64,
    /// Values of `$1…` sent with it (extended protocol).
    params: Vec<Option<String>>,
    /// From auto_explain (used only when no duration line exists).
    explained: bool,
}

/// One log record: its message and detail, and the prefix's user.
#[derive(Debug, Default)]
struct Record {
    role: Option<String>,
    message: String,
    detail: Option<String>,
}

/// The statements of a log file's text, in order of first appearance.
pub fn read(text: &str) -> Vec<Logged> {
    let records = if looks_like_csv(text) {
        csv_records(text)
    } else {
        stderr_records(text)
    };
    let executions: Vec<Execution> = records.iter().filter_map(execution).collect();
    // auto_explain repeats what a duration line already counted.
    let plain = executions.iter().any(|e| !e.explained);
    group(executions.into_iter().filter(|e| e.explained != plain))
}

/// Group executions by their normalized text.
fn group(executions: impl Iterator<Item = Execution>) -> Vec<Logged> {
    let mut out: Vec<Logged> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in executions {
        let (query, values) = if e.params.is_empty() {
            normalized(&e.sql)
        } else {
            (e.sql.trim().to_string(), e.params)
        };
        let at = *index.entry(query.clone()).or_insert_with(|| {
            out.push(Logged {
                query,
                role: e.role.clone(),
                calls: 0,
                total_ms: 0.0,
                values: Vec::new(),
            });
            out.len() - 1
        });
        let slot = &mut out[at];
        slot.calls += 1;
        slot.total_ms += e.ms;
        if slot.values.len() < values.len() {
            slot.values.resize(values.len(), Vec::new());
        }
        for (kept, v) in slot.values.iter_mut().zip(values) {
            if let Some(v) = v.filter(|_| kept.len() < VALUES_KEPT) {
                kept.push(v);
            }
        }
    }
    out
}

/// `sql` (as the simple protocol sent it) with its constants as `$n`
/// (pg_stat_statements' normalization, numbered by position; `GROUP BY 1`
/// stays), and each `$n`'s value: the two texts are lexed by the server's
/// lexer and walked token by token — where the normalized text has a `$n`
/// the original has the constant (a sign folded into it, or `true`). When
/// the walks do not line up, the values are left out.
fn normalized(sql: &str) -> (String, Vec<Option<String>>) {
    let sql = sql.trim();
    let (Ok(query), Ok(original)) = (pg_query::normalize(sql), pg_query::scan(sql)) else {
        return (sql.to_string(), Vec::new());
    };
    let Ok(normal) = pg_query::scan(&query) else {
        return (query, Vec::new());
    };
    let param = pg_query::protobuf::Token::Param as i32;
    let text = |s: &str, t: &pg_query::protobuf::ScanToken| {
        s.get(t.start as usize..t.end as usize)
            .unwrap_or_default()
            .to_string()
    };
    let (orig, norm) = (&original.tokens, &normal.tokens);
    let mut values: Vec<Option<String>> = Vec::new();
    let (mut i, mut j) = (0, 0);
    while i < orig.len() && j < norm.len() {
        if norm[j].token == param && orig[i].token != param {
            let Some(n) = text(&query, &norm[j])
                .strip_prefix('$')
                .and_then(|d| d.parse::<usize>().ok())
                .filter(|n| *n >= 1)
            else {
                return (query, Vec::new());
            };
            let mut value = text(sql, &orig[i]);
            if value == "-" && i + 1 < orig.len() {
                i += 1;
                value.push_str(&text(sql, &orig[i]));
            }
            if values.len() < n {
                values.resize(n, None);
            }
            values[n - 1] = Some(unquote(&value));
        }
        i += 1;
        j += 1;
    }
    if i != orig.len() || j != norm.len() {
        return (query, Vec::new());
    }
    (query, values)
}

/// A constant's value from its text: a string without its quotes (`''`
/// read as `'`), a number as written.
fn unquote(text: &str) -> String {
    let body = text.strip_prefix(['E', 'e']).unwrap_or(text);
    match body.strip_prefix('\'').and_then(|b| b.strip_suffix('\'')) {
        Some(inner) => inner.replace("''", "'"),
        None => text.to_string(),
    }
}

/// The execution one record logs, if any.
fn execution(r: &Record) -> Option<Execution> {
    let rest = r.message.strip_prefix("duration: ")?;
    let (ms, rest) = rest.split_once(" ms")?;
    let ms: f64 = ms.trim().parse().ok()?;
    let rest = rest.trim_start();
    if let Some(sql) = rest.strip_prefix("statement: ") {
        return Some(Execution {
            sql: sql.to_string(),
            role: r.role.clone(),
            ms,
            params: Vec::new(),
            explained: false,
        });
    }
    if let Some(after) = rest.strip_prefix("execute ") {
        // `execute <unnamed>: SQL` or `execute S_1/C_2: SQL`.
        let (_, sql) = after.split_once(": ")?;
        let params = r
            .detail
            .as_deref()
            // "parameters:" up to PostgreSQL 15, "Parameters:" from 16.
            .and_then(|d| {
                d.strip_prefix("parameters: ")
                    .or_else(|| d.strip_prefix("Parameters: "))
            })
            .map(parameters)
            .unwrap_or_default();
        return Some(Execution {
            sql: sql.to_string(),
            role: r.role.clone(),
            ms,
            params,
            explained: false,
        });
    }
    let plan = rest.strip_prefix("plan:")?;
    let (sql, params) = explained(plan)?;
    Some(Execution {
        sql,
        role: r.role.clone(),
        ms,
        params,
        explained: true,
    })
}

/// The query text and parameters of an auto_explain plan (text or JSON).
fn explained(plan: &str) -> Option<(String, Vec<Option<String>>)> {
    let plan = plan.trim();
    if plan.starts_with('{') {
        let v: serde_json::Value = serde_json::from_str(plan).ok()?;
        let sql = v.get("Query Text")?.as_str()?.to_string();
        let params = v
            .get("Query Parameters")
            .and_then(|p| p.as_str())
            .map(parameters)
            .unwrap_or_default();
        return Some((sql, params));
    }
    // Text: `Query Text: …` (perhaps several lines), then an optional
    // `Query Parameters: …` line, then the plan, whose first line names a
    // node with its cost or timing in parentheses.
    let mut lines = plan.lines().map(str::trim);
    let first = lines.next()?.strip_prefix("Query Text: ")?;
    let mut sql = first.to_string();
    let mut params = Vec::new();
    for line in lines {
        if let Some(p) = line.strip_prefix("Query Parameters: ") {
            params = parameters(p);
            break;
        }
        if line.contains("(cost=") || line.contains("(actual") || line.starts_with("->") {
            break;
        }
        sql.push('\n');
        sql.push_str(line);
    }
    Some((sql, params))
}

/// `$1 = '42', $2 = NULL, $3 = 'it''s'` as values by number.
pub fn parameters(text: &str) -> Vec<Option<String>> {
    let mut out: Vec<Option<String>> = Vec::new();
    let mut rest = text.trim();
    while let Some(after) = rest.strip_prefix('$') {
        let digits: String = after.chars().take_while(char::is_ascii_digit).collect();
        let Ok(n) = digits.parse::<usize>() else {
            break;
        };
        let Some(value_text) = after[digits.len()..].trim_start().strip_prefix('=') else {
            break;
        };
        let value_text = value_text.trim_start();
        let (value, tail) = if let Some(t) = value_text.strip_prefix("NULL") {
            (None, t)
        } else if let Some(quoted) = value_text.strip_prefix('\'') {
            let mut v = String::new();
            let mut chars = quoted.char_indices().peekable();
            let mut end = quoted.len();
            while let Some((i, c)) = chars.next() {
                if c == '\'' {
                    if chars.peek().map(|p| p.1) == Some('\'') {
                        chars.next();
                        v.push('\'');
                        continue;
                    }
                    end = i + 1;
                    break;
                }
                v.push(c);
            }
            (Some(v), &quoted[end..])
        } else {
            break;
        };
        if n >= 1 {
            if out.len() < n {
                out.resize(n, None);
            }
            out[n - 1] = value;
        }
        rest = tail.trim_start().trim_start_matches(',').trim_start();
    }
    out
}

/// The levels a stderr record's message follows (`… LOG:  message`).
const LEVELS: &[&str] = &[
    "LOG:  ",
    "DETAIL:  ",
    "STATEMENT:  ",
    "ERROR:  ",
    "WARNING:  ",
    "HINT:  ",
    "CONTEXT:  ",
    "FATAL:  ",
    "NOTICE:  ",
];

/// The records of a stderr log: a line holding a level starts one; lines
/// starting with a tab continue the one before. A `DETAIL` joins the `LOG`
/// it follows (same process prefix).
fn stderr_records(text: &str) -> Vec<Record> {
    let mut out: Vec<Record> = Vec::new();
    let mut continues: Option<(usize, bool)> = None;
    for line in text.lines() {
        if let Some(more) = line.strip_prefix('\t') {
            match continues {
                Some((at, false)) => {
                    out[at].message.push('\n');
                    out[at].message.push_str(more);
                }
                Some((at, true)) => {
                    if let Some(d) = out[at].detail.as_mut() {
                        d.push('\n');
                        d.push_str(more);
                    }
                }
                None => {}
            }
            continue;
        }
        let Some((at, level)) = LEVELS
            .iter()
            .filter_map(|l| line.find(l).map(|at| (at, *l)))
            .min_by_key(|(at, _)| *at)
        else {
            continues = None;
            continue;
        };
        let prefix = &line[..at];
        let message = line[at + level.len()..].to_string();
        match level {
            "LOG:  " => {
                out.push(Record {
                    role: role_in_prefix(prefix),
                    message,
                    detail: None,
                });
                continues = Some((out.len() - 1, false));
            }
            "DETAIL:  " if !out.is_empty() => {
                let at = out.len() - 1;
                out[at].detail = Some(message);
                continues = Some((at, true));
            }
            _ => continues = None,
        }
    }
    out
}

/// `user=NAME` (or `NAME@db`) in a `log_line_prefix`.
fn role_in_prefix(prefix: &str) -> Option<String> {
    if let Some(at) = prefix.find("user=") {
        let name: String = prefix[at + 5..]
            .chars()
            .take_while(|c| !matches!(c, ',' | ' ' | ':' | ']' | '@'))
            .collect();
        return (!name.is_empty() && name != "[unknown]").then_some(name);
    }
    None
}

/// Whether the text is a csvlog (its first field is a timestamp and the
/// line has the csvlog's columns).
fn looks_like_csv(text: &str) -> bool {
    let first = text.lines().next().unwrap_or_default();
    first.starts_with(|c: char| c.is_ascii_digit())
        && first.contains(",\"")
        && !LEVELS.iter().any(|l| first.contains(l))
}

/// The records of a csvlog: user is column 2, severity 12, message 14,
/// detail 15 (the same positions in PostgreSQL 13–17).
fn csv_records(text: &str) -> Vec<Record> {
    csv_rows(text)
        .into_iter()
        .filter(|f| f.get(11).map(String::as_str) == Some("LOG"))
        .map(|f| Record {
            role: f.get(1).filter(|u| !u.is_empty()).cloned(),
            message: f.get(13).cloned().unwrap_or_default(),
            detail: f.get(14).filter(|d| !d.is_empty()).cloned(),
        })
        .collect()
}

/// CSV rows (RFC 4180: quoted fields, `""` inside quotes, newlines inside
/// quoted fields).
fn csv_rows(text: &str) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    let mut row = Vec::new();
    let mut field = String::new();
    let mut quoted = false;
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        match (c, quoted) {
            ('"', true) if chars.peek() == Some(&'"') => {
                chars.next();
                field.push('"');
            }
            ('"', true) => quoted = false,
            ('"', false) if field.is_empty() => quoted = true,
            (',', false) => row.push(std::mem::take(&mut field)),
            ('\n', false) => {
                row.push(std::mem::take(&mut field));
                rows.push(std::mem::take(&mut row));
            }
            ('\r', false) => {}
            (c, _) => field.push(c),
        }
    }
    if !field.is_empty() || !row.is_empty() {
        row.push(field);
        rows.push(row);
    }
    rows
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parameters_with_quotes_and_nulls() {
        assert_eq!(
            parameters("$1 = '42', $2 = NULL, $3 = 'it''s, ok'"),
            vec![Some("42".into()), None, Some("it's, ok".into())]
        );
    }

    #[test]
    fn simple_protocol_constants_become_parameters() {
        let (q, v) = normalized("SELECT * FROM t WHERE a = 'x''y' AND b > 3 LIMIT 10");
        assert_eq!(q, "SELECT * FROM t WHERE a = $1 AND b > $2 LIMIT $3");
        assert_eq!(
            v,
            vec![Some("x'y".into()), Some("3".into()), Some("10".into())]
        );
        // `GROUP BY 1` is no constant to the normalizer, `true` is one.
        let (q, v) = normalized("SELECT date_trunc('day', x) FROM t WHERE b = true GROUP BY 1");
        assert_eq!(q, "SELECT date_trunc($1, x) FROM t WHERE b = $2 GROUP BY 1");
        assert_eq!(v, vec![Some("day".into()), Some("true".into())]);
    }

    #[test]
    fn stderr_extended_and_simple() {
        let log = "2026-01-01 10:00:00.000 UTC [7] user=app,db=crm LOG:  duration: 0.500 ms  execute <unnamed>: SELECT a\n\
                   \tFROM t WHERE id = $1\n\
                   2026-01-01 10:00:00.000 UTC [7] user=app,db=crm DETAIL:  parameters: $1 = '5'\n\
                   2026-01-01 10:00:00.001 UTC [7] user=app,db=crm LOG:  duration: 1.500 ms  execute S_1: SELECT a\n\
                   \tFROM t WHERE id = $1\n\
                   2026-01-01 10:00:00.001 UTC [7] user=app,db=crm DETAIL:  parameters: $1 = '6'\n\
                   2026-01-01 10:00:00.002 UTC [7] user=app,db=crm LOG:  duration: 0.100 ms  statement: BEGIN\n";
        let got = read(log);
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].query, "SELECT a\nFROM t WHERE id = $1");
        assert_eq!(got[0].calls, 2);
        assert!((got[0].total_ms - 2.0).abs() < 1e-9);
        assert_eq!(got[0].values, vec![vec!["5".to_string(), "6".to_string()]]);
        assert_eq!(got[0].role.as_deref(), Some("app"));
        assert_eq!(got[1].query, "BEGIN");
    }
}
