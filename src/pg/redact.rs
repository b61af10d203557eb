//! Hiding passwords in connection strings before anything is printed or saved.

/// What a password is replaced with.
pub const MASK: &str = "***";

/// Redact a PostgreSQL URL (`postgres://user:pw@host/db?password=pw`) or a
/// key=value connection string (`host=x password=pw`). Anything else is
/// returned unchanged.
pub fn redact(conn: &str) -> String {
    if let Some(scheme_end) = conn.find("://") {
        redact_url(conn, scheme_end + 3)
    } else {
        redact_keyword_value(conn)
    }
}

fn redact_url(url: &str, authority_start: usize) -> String {
    let (head, rest) = url.split_at(authority_start);
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let authority = match authority.rfind('@') {
        Some(at) => {
            let userinfo = &authority[..at];
            match userinfo.find(':') {
                Some(colon) => format!("{}:{MASK}{}", &userinfo[..colon], &authority[at..]),
                None => authority.to_string(),
            }
        }
        None => authority.to_string(),
    };
    let tail = match tail.find('?') {
        Some(q) => {
            let (path, query) = tail.split_at(q + 1);
            let query: Vec<String> = query
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) if k.eq_ignore_ascii_case("password") => format!("{k}={MASK}"),
                    _ => pair.to_string(),
                })
                .collect();
            format!("{path}{}", query.join("&"))
        }
        None => tail.to_string(),
    };
    format!("{head}{authority}{tail}")
}

fn redact_keyword_value(conn: &str) -> String {
    // Values may be quoted with single quotes and contain spaces.
    let mut out = String::with_capacity(conn.len());
    let mut rest = conn;
    while let Some(pos) = find_password_key(rest) {
        out.push_str(&rest[..pos]);
        let after_key = &rest[pos..];
        let eq = after_key
            .find('=')
            .map(|i| i + 1)
            .unwrap_or(after_key.len());
        let value = after_key[eq..].trim_start();
        let skipped_ws = after_key[eq..].len() - value.len();
        out.push_str(&after_key[..eq + skipped_ws]);
        let value_len = if let Some(quoted) = value.strip_prefix('\'') {
            let mut end = 0;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                if escaped {
                    escaped = false;
                } else if c == '\\' {
                    escaped = true;
                } else if c == '\'' {
                    end = i + 1;
                    break;
                }
                end = i + c.len_utf8();
            }
            1 + end
        } else {
            value.find(char::is_whitespace).unwrap_or(value.len())
        };
        out.push_str(MASK);
        rest = &after_key[eq + skipped_ws + value_len..];
    }
    out.push_str(rest);
    out
}

/// Byte offset of a `password` keyword followed by `=`, at a word start.
fn find_password_key(s: &str) -> Option<usize> {
    let lower = s.to_ascii_lowercase();
    let mut from = 0;
    while let Some(i) = lower[from..].find("password") {
        let at = from + i;
        let word_start = at == 0 || lower.as_bytes()[at - 1].is_ascii_whitespace();
        let after = lower[at + "password".len()..].trim_start();
        if word_start && after.starts_with('=') {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hides_url_password() {
        assert_eq!(
            redact("postgres://alice:s3cret@db.example:5432/shop"),
            "postgres://alice:***@db.example:5432/shop"
        );
    }

    #[test]
    fn hides_password_with_at_sign_in_it() {
        let r = redact("postgresql://bob:p@ss@host/db");
        assert!(!r.contains("p@ss"), "{r}");
        assert!(r.ends_with("@host/db"), "{r}");
    }

    #[test]
    fn hides_query_password() {
        let r = redact("postgresql:///crm?host=/tmp&password=hunter2&user=x");
        assert_eq!(r, "postgresql:///crm?host=/tmp&password=***&user=x");
    }

    #[test]
    fn keeps_url_without_password() {
        let url = "postgresql://crmbench_admin@/crmbench?host=/var/tmp/crmbench-0/run&port=54329";
        assert_eq!(redact(url), url);
    }

    #[test]
    fn hides_keyword_value_password() {
        assert_eq!(
            redact("host=localhost password=abc user=me"),
            "host=localhost password=*** user=me"
        );
        assert_eq!(
            redact("user=me password = 'a b\\'c' dbname=x"),
            "user=me password = *** dbname=x"
        );
    }
}
