//! Describing a connection for people: a parsed [`ConnInfo`] rendered in the
//! form it was written in (URL or key=value), with every secret option
//! replaced by [`MASK`]. Built from the parsed options only, so what is shown
//! is what the driver uses, and a password can never show through a text
//! pattern that guessed wrong where it ends.

use super::conninfo::{ConnInfo, SECRET_OPTIONS, Syntax, quote};

/// What a password is replaced with.
pub const MASK: &str = "***";

/// What is shown for a connection string that cannot be read at all.
pub const UNREADABLE: &str = "<a connection string that cannot be read>";

/// Parse `conn` and describe it with its secrets hidden; a string that cannot
/// be parsed is not shown at all.
pub fn redact(conn: &str) -> String {
    ConnInfo::parse(conn).map_or_else(|_| UNREADABLE.into(), |info| render(&info))
}

/// Describe parsed options in their original form, secrets hidden.
pub fn render(info: &ConnInfo) -> String {
    match info.syntax() {
        Syntax::Url(scheme) => render_url(scheme, info),
        Syntax::KeyValue => info
            .options()
            .map(|(k, v)| {
                if SECRET_OPTIONS.contains(&k) {
                    format!("{k}={MASK}")
                } else if v.is_empty()
                    || v.contains(|c: char| c.is_whitespace() || "'\\".contains(c))
                {
                    format!("{k}={}", quote(v))
                } else {
                    format!("{k}={v}")
                }
            })
            .collect::<Vec<_>>()
            .join(" "),
    }
}

/// `scheme://user:***@host:port,host:port/dbname?other=options`.
fn render_url(scheme: &str, info: &ConnInfo) -> String {
    let mut out = format!("{scheme}://");
    let user = info.get("user");
    let has_password = info.get("password").is_some();
    if user.is_some() || has_password {
        out.push_str(&encode(user.unwrap_or(""), ""));
        if has_password {
            out.push(':');
            out.push_str(MASK);
        }
        out.push('@');
    }
    let netloc = netloc(info);
    if let Some(n) = &netloc {
        out.push_str(n);
    }
    if let Some(db) = info.get("dbname") {
        out.push('/');
        out.push_str(&encode(db, ""));
    }
    let query: Vec<String> = info
        .options()
        .filter(|(k, _)| match *k {
            "user" | "password" | "dbname" => false,
            "host" | "port" => netloc.is_none(),
            _ => true,
        })
        .map(|(k, v)| {
            if SECRET_OPTIONS.contains(&k) {
                format!("{k}={MASK}")
            } else {
                format!("{k}={}", encode(v, "/:,"))
            }
        })
        .collect();
    if !query.is_empty() {
        out.push('?');
        out.push_str(&query.join("&"));
    }
    out
}

/// `host:port,...` when every host is a TCP name and each has its own port
/// (or none has one); `None` puts host and port in the query instead.
fn netloc(info: &ConnInfo) -> Option<String> {
    let hosts: Vec<&str> = info.get("host")?.split(',').collect();
    let ports: Vec<&str> = info
        .get("port")
        .map(|p| p.split(',').collect())
        .unwrap_or_default();
    if hosts.iter().any(|h| h.starts_with('/')) || !(ports.is_empty() || ports.len() == hosts.len())
    {
        return None;
    }
    let parts: Vec<String> = hosts
        .iter()
        .enumerate()
        .map(|(i, h)| {
            let host = if h.contains(':') {
                format!("[{}]", encode(h, ":"))
            } else {
                encode(h, "")
            };
            match ports.get(i).filter(|p| !p.is_empty()) {
                Some(p) => format!("{host}:{p}"),
                None => host,
            }
        })
        .collect();
    Some(parts.join(","))
}

/// Percent-encode all but unreserved characters and those in `keep`.
fn encode(text: &str, keep: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) || keep.as_bytes().contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
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
    fn hides_password_with_slash_and_question_mark_percent_encoded() {
        let r = redact("postgresql://u:Sl%2FashPw%3F9@host/db");
        assert_eq!(r, "postgresql://u:***@host/db");
    }

    #[test]
    fn hides_raw_question_mark_and_hash_in_password() {
        let r = redact("postgresql://u:Qm?x#Hash9@host:5432/db");
        assert_eq!(r, "postgresql://u:***@host:5432/db");
    }

    #[test]
    fn refused_url_is_not_shown() {
        assert_eq!(redact("postgresql://u:Sl/ashPw?9@host/db"), UNREADABLE);
        assert_eq!(redact("postgresql://bob:p@ss@host/db"), UNREADABLE);
    }

    #[test]
    fn hides_query_password() {
        let r = redact("postgresql:///crm?host=/tmp&password=hunter2&sslmode=disable&user=x");
        assert_eq!(r, "postgresql://x:***@/crm?host=/tmp&sslmode=disable");
        assert_eq!(
            redact("postgresql://h/db?sslpassword=k3y&application_name=a%20b"),
            "postgresql://h/db?sslpassword=***&application_name=a%20b"
        );
    }

    #[test]
    fn keeps_url_without_password() {
        let url = "postgresql://crmbench_admin@/crmbench?host=/var/tmp/crmbench-0/run&port=54329";
        assert_eq!(redact(url), url);
        assert_eq!(
            redact("postgresql://[::1]:5433,h2:5434/db"),
            "postgresql://[::1]:5433,h2:5434/db"
        );
    }

    #[test]
    fn hides_keyword_value_password() {
        assert_eq!(
            redact("host=localhost password=abc user=me"),
            "host=localhost password=*** user=me"
        );
        assert_eq!(
            redact("user=me password = 'a b\\'c' dbname=x application_name='my app'"),
            "user=me password=*** dbname=x application_name='my app'"
        );
    }
}
