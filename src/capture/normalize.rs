//! pg_stat_statements replaces a typed literal's string and keeps its type
//! word: `interval '30 days'` is stored as `interval $3`, which PostgreSQL's
//! grammar does not accept back. Such a pair becomes `$3::interval`, found
//! by the server's own lexer (never inside a string, name or comment).

/// Type words that take a string literal after them (`TYPE 'text'`).
const TYPE_WORDS: &[&str] = &[
    "interval",
    "timestamp",
    "timestamptz",
    "date",
    "time",
    "timetz",
    "uuid",
    "json",
    "jsonb",
    "numeric",
    "inet",
    "text",
];

/// `sql` with every `TYPE $n` written `$n::TYPE`, and `extract($n FROM …)`
/// given back a field (`epoch`: the one that was there is not kept), the
/// parameters after it renumbered so none is missing.
pub fn typed_literals(sql: &str) -> String {
    typed_literals_renumbered(sql).0
}

/// [`typed_literals`], with the numbers of the `$n` it removed (whose
/// values a log supplied go with them).
pub fn typed_literals_renumbered(sql: &str) -> (String, Vec<u32>) {
    let Ok(scanned) = pg_query::scan(sql) else {
        return (sql.to_string(), Vec::new());
    };
    let param = pg_query::protobuf::Token::Param as i32;
    let tokens = &scanned.tokens;
    let text = |t: &pg_query::protobuf::ScanToken| sql.get(t.start as usize..t.end as usize);
    // (byte range to replace, replacement or None for "renumber this $n").
    let mut edits: Vec<(usize, usize, Option<String>)> = Vec::new();
    let mut removed: Vec<u32> = Vec::new();
    for (k, t) in tokens.iter().enumerate() {
        if t.token != param {
            continue;
        }
        let Some(n) = text(t) else { continue };
        let prev = k.checked_sub(1).and_then(|j| tokens.get(j));
        let prev2 = k.checked_sub(2).and_then(|j| tokens.get(j));
        let word = prev.and_then(text).map(str::to_ascii_lowercase);
        let gap_ok = prev.is_some_and(|p| {
            sql.get(p.end as usize..t.start as usize)
                .is_some_and(|g| g.trim().is_empty())
        });
        if gap_ok && word.as_deref().is_some_and(|w| TYPE_WORDS.contains(&w)) {
            let (Some(p), Some(w)) = (prev, word) else {
                continue;
            };
            edits.push((p.start as usize, t.end as usize, Some(format!("{n}::{w}"))));
            continue;
        }
        let in_extract = word.as_deref() == Some("(")
            && prev2
                .and_then(text)
                .is_some_and(|w| w.eq_ignore_ascii_case("extract"));
        if in_extract {
            edits.push((t.start as usize, t.end as usize, Some("epoch".into())));
            removed.extend(n.strip_prefix('$').and_then(|d| d.parse::<u32>().ok()));
            continue;
        }
        edits.push((t.start as usize, t.end as usize, None));
    }
    let renumber = |n: &str| -> String {
        let Some(v) = n.strip_prefix('$').and_then(|d| d.parse::<u32>().ok()) else {
            return n.to_string();
        };
        let below = removed.iter().filter(|r| **r < v).count() as u32;
        format!("${}", v - below)
    };
    let mut out = String::with_capacity(sql.len());
    let mut copied = 0usize;
    for (start, end, replacement) in edits {
        if start < copied {
            continue;
        }
        out.push_str(&sql[copied..start]);
        match replacement {
            Some(r) => {
                // A `$n::type` keeps its own (renumbered) number.
                match r.split_once("::") {
                    Some((n, ty)) => out.push_str(&format!("{}::{ty}", renumber(n))),
                    None => out.push_str(&r),
                }
            }
            None => out.push_str(&renumber(&sql[start..end])),
        }
        copied = end;
    }
    out.push_str(&sql[copied..]);
    (out, removed)
}

/// `sql` with every `$n` written `$n::text` (a literal PostgreSQL could not
/// type once pg_stat_statements made it a parameter; as a literal it was
/// text).
pub fn cast_to_text(sql: &str, number: u32) -> String {
    let Ok(params) = crate::sql::params(sql) else {
        return sql.to_string();
    };
    let mut out = String::with_capacity(sql.len() + 8);
    let mut copied = 0;
    for p in params.iter().filter(|p| p.number == number) {
        out.push_str(&sql[copied..p.span.end]);
        out.push_str("::text");
        copied = p.span.end;
    }
    out.push_str(&sql[copied..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_literal_placeholders_become_casts() {
        assert_eq!(
            typed_literals("SELECT now() - interval $3, 'interval $1', x FROM t WHERE d > DATE $1"),
            "SELECT now() - $3::interval, 'interval $1', x FROM t WHERE d > $1::date"
        );
        assert_eq!(typed_literals("SELECT $1::int"), "SELECT $1::int");
        assert_eq!(
            typed_literals("SELECT extract($2 FROM now() - x), $1, $3 LIMIT $4"),
            "SELECT extract(epoch FROM now() - x), $1, $2 LIMIT $3"
        );
        assert_eq!(
            cast_to_text("SELECT f($2, $1, $2)", 2),
            "SELECT f($2::text, $1, $2::text)"
        );
    }
}
