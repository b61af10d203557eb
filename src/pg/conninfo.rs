//! Connection strings read as libpq reads them: a URL
//! (`postgresql://user:password@host:port/dbname?key=value`) or a `key=value`
//! list becomes libpq's options once, and everything else — the driver's
//! configuration, every printed or saved description (see [`super::redact`]) —
//! is built from those options, never from the text. A text pattern cannot
//! know where a password ends: libpq ends a URL's `user:password@` part at the
//! first `@` only when no `/` comes before it, while the driver takes the first
//! `@` anywhere, so an unencoded `/` in a password made them disagree and the
//! password leaked into messages and reports. A URL that splits that way is
//! refused, and no refusal quotes any of the text, which may hold the password.

use std::fmt;
use std::path::Path;
use std::str::FromStr;

use tokio_postgres::Config;

use crate::error::{Error, Result};

/// The option names libpq knows (PostgreSQL 17), plus the driver's own
/// spelling `keepalives_retries`. Only these are ever named in a message: any
/// other word in a connection string might be a piece of a password.
const KNOWN_OPTIONS: &[&str] = &[
    "host",
    "hostaddr",
    "port",
    "dbname",
    "user",
    "password",
    "passfile",
    "require_auth",
    "channel_binding",
    "connect_timeout",
    "client_encoding",
    "options",
    "application_name",
    "fallback_application_name",
    "keepalives",
    "keepalives_idle",
    "keepalives_interval",
    "keepalives_count",
    "keepalives_retries",
    "tcp_user_timeout",
    "replication",
    "sslmode",
    "sslnegotiation",
    "sslcompression",
    "sslcert",
    "sslkey",
    "sslpassword",
    "sslcertmode",
    "sslrootcert",
    "sslcrl",
    "sslcrldir",
    "sslsni",
    "requirepeer",
    "ssl_min_protocol_version",
    "ssl_max_protocol_version",
    "gssencmode",
    "krbsrvname",
    "gsslib",
    "gssdelegation",
    "service",
    "target_session_attrs",
    "load_balance_hosts",
];

/// libpq's environment variables and the options they stand for.
const ENVIRONMENT: &[(&str, &str)] = &[
    ("PGHOST", "host"),
    ("PGHOSTADDR", "hostaddr"),
    ("PGPORT", "port"),
    ("PGDATABASE", "dbname"),
    ("PGUSER", "user"),
    ("PGPASSFILE", "passfile"),
    ("PGOPTIONS", "options"),
    ("PGAPPNAME", "application_name"),
    ("PGSSLMODE", "sslmode"),
    ("PGSSLCERT", "sslcert"),
    ("PGSSLKEY", "sslkey"),
    ("PGSSLROOTCERT", "sslrootcert"),
    ("PGSSLSNI", "sslsni"),
    ("PGSSLCRL", "sslcrl"),
    ("PGSSLCRLDIR", "sslcrldir"),
    ("PGCONNECT_TIMEOUT", "connect_timeout"),
    ("PGTARGETSESSIONATTRS", "target_session_attrs"),
    ("PGCHANNELBINDING", "channel_binding"),
    ("PGLOADBALANCEHOSTS", "load_balance_hosts"),
    ("PGSSLNEGOTIATION", "sslnegotiation"),
];

/// libpq's default socket folder on Debian (its compiled-in default).
const DEFAULT_SOCKET_DIR: &str = "/var/run/postgresql";

/// Options crmbench reads itself instead of handing them to the driver.
const HANDLED_HERE: &[&str] = &[
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "sslsni",
    "passfile",
    "fallback_application_name",
];

/// Options whose values are secrets: never printed.
pub const SECRET_OPTIONS: &[&str] = &["password", "sslpassword"];

/// The fix of every refused URL. The URL itself is not repeated: it may hold
/// the password.
const URL_FIX: &str = "percent-encode the password in the URL: / as %2F, @ as %40, ? as %3F, \
                       # as %23, % as %25, a space as %20 (or use the key=value form: \
                       host=... user=... password='...')";

/// How the string was written; the description keeps the same form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    /// A URL with this scheme (`postgresql` or `postgres`).
    Url(&'static str),
    /// A `key=value` list.
    KeyValue,
}

/// A parsed connection string: libpq's options, in the order first given,
/// each key once (a later value replaces an earlier one, as in libpq).
/// `Display` and `Debug` show it with every secret replaced.
#[derive(Clone)]
pub struct ConnInfo {
    syntax: Syntax,
    options: Vec<(String, String)>,
}

impl ConnInfo {
    /// Parse a URL or a key=value string. Errors name the part that failed and
    /// never contain any of `text`.
    pub fn parse(text: &str) -> Result<ConnInfo> {
        let text = text.trim();
        for scheme in ["postgresql", "postgres"] {
            if let Some(rest) = text
                .strip_prefix(scheme)
                .and_then(|r| r.strip_prefix("://"))
            {
                return parse_url(scheme, rest);
            }
        }
        parse_key_value(text)
    }

    /// How the string was written.
    pub fn syntax(&self) -> Syntax {
        self.syntax
    }

    /// The options, in order.
    pub fn options(&self) -> impl Iterator<Item = (&str, &str)> {
        self.options.iter().map(|(k, v)| (k.as_str(), v.as_str()))
    }

    /// The value of one option.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.options
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    fn set(&mut self, key: &str, value: String) {
        match self.options.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = value,
            None => self.options.push((key.into(), value)),
        }
    }

    /// libpq's precedence: an option given in the string wins, then its
    /// `PG*` environment variable (read through `env`), then libpq's default
    /// (the OS user for `user`, the socket folder for `host`). Passwords are
    /// not taken here (see [`super::target`]): a password from `PGPASSWORD`
    /// or `~/.pgpass` reaches the driver and nothing else.
    pub fn with_environment(
        mut self,
        env: impl Fn(&str) -> Option<String>,
        os_user: Option<String>,
    ) -> ConnInfo {
        for (var, key) in ENVIRONMENT {
            if self.get(key).is_none() {
                if let Some(value) = env(var).filter(|v| !v.is_empty()) {
                    self.set(key, value);
                }
            }
        }
        if self.get("user").is_none() {
            if let Some(user) = os_user {
                self.set("user", user);
            }
        }
        if self.get("host").is_none() && self.get("hostaddr").is_none() {
            let socket = Path::new(DEFAULT_SOCKET_DIR);
            let host = if socket.is_dir() {
                DEFAULT_SOCKET_DIR
            } else {
                "localhost"
            };
            self.set("host", host.into());
        }
        self
    }

    /// The options the driver takes: crmbench reads TLS and the password file
    /// itself ([`super::tls`], [`super::pgpass`]), and two libpq spellings are
    /// translated.
    fn driver_options(&self) -> Vec<(&str, &str)> {
        let mut out: Vec<(&str, &str)> = Vec::new();
        for (key, value) in self.options() {
            match key {
                k if HANDLED_HERE.contains(&k) => {}
                "keepalives_count" => out.push(("keepalives_retries", value)),
                _ => out.push((key, value)),
            }
        }
        if self.get("application_name").is_none() {
            if let Some(name) = self.get("fallback_application_name") {
                out.push(("application_name", name));
            }
        }
        out
    }

    /// The driver's configuration (TLS not set: see [`super::tls`]).
    /// Options the driver does not support are refused by name (names come
    /// from libpq's list, never from the text).
    pub fn config(&self) -> Result<Config> {
        let options = self.driver_options();
        if let Ok(config) = Config::from_str(&to_key_value(options.iter().copied())) {
            return Ok(config);
        }
        // Find the option at fault, one at a time, to name it.
        for (key, value) in options {
            if let Err(e) = Config::from_str(&to_key_value([(key, value)])) {
                let problem = if e.to_string().contains("unknown option") {
                    "is not supported by crmbench yet"
                } else {
                    "has a value that is not valid"
                };
                return Err(refusal(
                    self.syntax,
                    format!("the option `{key}` {problem}"),
                    "remove or correct that option".into(),
                ));
            }
        }
        Err(refusal(
            self.syntax,
            "its options do not fit together".into(),
            "check the hosts, ports and addresses".into(),
        ))
    }
}

impl fmt::Display for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&super::redact::render(self))
    }
}

impl fmt::Debug for ConnInfo {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ConnInfo({self})")
    }
}

fn refusal(syntax: Syntax, problem: String, fix: String) -> Error {
    let what = match syntax {
        Syntax::Url(_) => "the connection URL",
        Syntax::KeyValue => "the connection string",
    };
    Error::Usage {
        message: format!("cannot read {what}: {problem}"),
        fix,
    }
}

fn url_refusal(problem: &str) -> Error {
    refusal(Syntax::Url("postgresql"), problem.into(), URL_FIX.into())
}

/// libpq's URL grammar (`conninfo_uri_parse_options`), stricter in one way:
/// an `@` after the `user:password@` part is refused, since libpq and the
/// driver would read such a URL differently and a piece of the password would
/// end up as a host, port, database or parameter.
fn parse_url(scheme: &'static str, rest: &str) -> Result<ConnInfo> {
    let mut info = ConnInfo {
        syntax: Syntax::Url(scheme),
        options: Vec::new(),
    };
    // libpq: credentials end at the first '@', if no '/' comes before it.
    let mut rest = match rest.find(['@', '/']) {
        Some(at) if rest.as_bytes()[at] == b'@' => {
            let (user, password) = match rest[..at].split_once(':') {
                Some((u, p)) => (u, Some(p)),
                None => (&rest[..at], None),
            };
            if !user.is_empty() {
                info.set("user", decode(user, "the user name")?);
            }
            if let Some(p) = password.filter(|p| !p.is_empty()) {
                info.set("password", decode(p, "the password")?);
            }
            &rest[at + 1..]
        }
        _ => rest,
    };
    let after_credentials = rest;
    rest = parse_hosts(&mut info, rest)?;
    if after_credentials.contains('@') {
        return Err(url_refusal(
            "the authority of the URL (user:password@host:port) does not end where it \
             should: an '@' follows it, as when the password holds an unencoded '/' or '@'",
        ));
    }
    if let Some(path) = rest.strip_prefix('/') {
        let end = path.find('?').unwrap_or(path.len());
        if end > 0 {
            info.set("dbname", decode(&path[..end], "the database name")?);
        }
        rest = &path[end..];
    }
    if let Some(query) = rest.strip_prefix('?') {
        parse_query(&mut info, query)?;
    }
    Ok(info)
}

/// `host[:port][,host[:port]...]`, hosts possibly `[IPv6]`; returns the rest.
fn parse_hosts<'a>(info: &mut ConnInfo, mut rest: &'a str) -> Result<&'a str> {
    let mut hosts = Vec::new();
    let mut ports = Vec::new();
    loop {
        let host;
        if let Some(inner) = rest.strip_prefix('[') {
            let close = inner.find(']').ok_or_else(|| {
                url_refusal("the host: an IPv6 address in '[' has no closing ']'")
            })?;
            host = &inner[..close];
            rest = &inner[close + 1..];
            if host.is_empty() || !(rest.is_empty() || rest.starts_with([':', '/', '?', ','])) {
                return Err(url_refusal(
                    "the host: a bracketed IPv6 address is malformed",
                ));
            }
        } else {
            let end = rest.find([':', '/', '?', ',']).unwrap_or(rest.len());
            host = &rest[..end];
            rest = &rest[end..];
        }
        hosts.push(host);
        let mut port = "";
        if let Some(after) = rest.strip_prefix(':') {
            let end = after.find(['/', '?', ',']).unwrap_or(after.len());
            port = &after[..end];
            rest = &after[end..];
        }
        let is_port = port.bytes().all(|b| b.is_ascii_digit()) && port.parse::<u16>().is_ok();
        if !port.is_empty() && !is_port {
            return Err(url_refusal(
                "the port is not a number (as when the password holds an unencoded '/')",
            ));
        }
        ports.push(port);
        match rest.strip_prefix(',') {
            Some(after) => rest = after,
            None => break,
        }
    }
    let hosts = hosts.join(",");
    if !hosts.is_empty() {
        info.set("host", decode(&hosts, "the host")?);
    }
    let ports = ports.join(",");
    if !ports.is_empty() {
        info.set("port", ports);
    }
    Ok(rest)
}

/// `key=value&key=value`, both percent-decoded; `ssl=true` is `sslmode=require`.
fn parse_query(info: &mut ConnInfo, query: &str) -> Result<()> {
    // libpq accepts an empty query and a trailing '&'.
    let query = query.strip_suffix('&').unwrap_or(query);
    for pair in query.split('&').filter(|_| !query.is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            return Err(url_refusal(
                "a query parameter (after '?') has no '=' (as when the password holds an \
                 unencoded '?')",
            ));
        };
        if value.contains('=') {
            return Err(url_refusal(
                "a query parameter (after '?') has a second '=' in its value",
            ));
        }
        let key = decode(key, "a query parameter's name")?;
        let value = decode(value, "a query parameter's value")?;
        let (key, value) = if key == "ssl" && value == "true" {
            ("sslmode".to_string(), "require".to_string())
        } else {
            (key, value)
        };
        let Some(known) = known_option(&key) else {
            return Err(url_refusal(
                "a query parameter (after '?') is not a libpq option (it is not repeated \
                 here: it may be part of the password)",
            ));
        };
        info.set(known, value);
    }
    Ok(())
}

fn known_option(key: &str) -> Option<&'static str> {
    KNOWN_OPTIONS.iter().copied().find(|k| *k == key)
}

/// Percent-decode one part of a URL. `part` names it in the refusal.
fn decode(text: &str, part: &str) -> Result<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] != b'%' {
            out.push(bytes[i]);
            i += 1;
            continue;
        }
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match hex {
            Some(0) | None => {
                return Err(url_refusal(&format!(
                    "{part} holds a '%' that is not followed by two hex digits (or encodes %00)"
                )));
            }
            Some(b) => out.push(b),
        }
        i += 3;
    }
    String::from_utf8(out)
        .map_err(|_| url_refusal(&format!("{part} is not UTF-8 once percent-decoded")))
}

/// libpq's key=value grammar (`conninfo_parse`): values may be single-quoted,
/// a backslash escapes the next character.
fn parse_key_value(text: &str) -> Result<ConnInfo> {
    let kv_refusal = |problem: &str| {
        refusal(
            Syntax::KeyValue,
            problem.into(),
            "write options as key=value separated by spaces, and quote a value holding \
             spaces or quotes: password='a b\\'c' (or use a URL)"
                .into(),
        )
    };
    let mut info = ConnInfo {
        syntax: Syntax::KeyValue,
        options: Vec::new(),
    };
    let mut chars = text.chars().peekable();
    loop {
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.peek().is_none() {
            break;
        }
        let mut key = String::new();
        while let Some(c) = chars.next_if(|c| !c.is_whitespace() && *c != '=') {
            key.push(c);
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        if chars.next() != Some('=') {
            return Err(kv_refusal("a word is not followed by '='"));
        }
        while chars.next_if(|c| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if_eq(&'\'').is_some() {
            loop {
                match chars.next() {
                    None => return Err(kv_refusal("a quoted value has no closing quote")),
                    Some('\'') => break,
                    Some('\\') => value.extend(chars.next()),
                    Some(c) => value.push(c),
                }
            }
        } else {
            while let Some(c) = chars.next_if(|c| !c.is_whitespace()) {
                if c == '\\' {
                    value.extend(chars.next());
                } else {
                    value.push(c);
                }
            }
        }
        let Some(known) = known_option(&key) else {
            return Err(kv_refusal(
                "an option name is not one libpq knows (it is not repeated here: it may be \
                 part of an unquoted password)",
            ));
        };
        info.set(known, value);
    }
    Ok(info)
}

/// Serialize options as a key=value string, every value quoted.
pub(crate) fn to_key_value<'a>(options: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    options
        .into_iter()
        .map(|(k, v)| format!("{k}={}", quote(v)))
        .collect::<Vec<_>>()
        .join(" ")
}

/// A key=value value in single quotes, `'` and `\` escaped.
pub(crate) fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

#[cfg(test)]
mod tests {
    use super::*;

    const PW: &str = "Zq/Xv@Kj?Wm#Fy% Hb'Tn";

    fn refused(text: &str) -> String {
        match ConnInfo::parse(text) {
            Ok(info) => panic!("accepted: {info}"),
            Err(e) => format!("{e} {}", e.fix().unwrap_or_default()),
        }
    }

    #[test]
    fn url_password_is_percent_decoded() {
        let info = ConnInfo::parse(
            "postgresql://alice:Zq%2FXv%40Kj%3FWm%23Fy%25%20Hb'Tn@db.example:5433/shop",
        )
        .unwrap();
        assert_eq!(info.get("password"), Some(PW));
        assert_eq!(info.get("user"), Some("alice"));
        assert_eq!(info.get("host"), Some("db.example"));
        assert_eq!(info.get("port"), Some("5433"));
        assert_eq!(info.get("dbname"), Some("shop"));
        let config = info.config().unwrap();
        assert_eq!(config.get_password(), Some(PW.as_bytes()));
        assert_eq!(config.get_ports(), [5433]);
    }

    #[test]
    fn question_mark_and_hash_in_password_are_read_as_libpq_reads_them() {
        // libpq ends the credentials at the first '@' when no '/' precedes it.
        let info = ConnInfo::parse("postgres://u:pw?x#y@h/db?sslmode=disable&").unwrap();
        assert_eq!(info.get("password"), Some("pw?x#y"));
        assert_eq!(info.get("host"), Some("h"));
        assert_eq!(info.get("sslmode"), Some("disable"));
        assert!(ConnInfo::parse("postgresql://h/db?").is_ok());
        assert!(ConnInfo::parse("postgresql://h/db?a=b&&").is_err());
    }

    #[test]
    fn query_password_and_socket_host() {
        let info =
            ConnInfo::parse("postgresql:///crm?host=%2Ftmp&password=hunter2&user=x").unwrap();
        assert_eq!(info.get("host"), Some("/tmp"));
        assert_eq!(info.get("password"), Some("hunter2"));
        assert_eq!(info.get("dbname"), Some("crm"));
        assert!(info.config().is_ok());
    }

    #[test]
    fn hosts_ports_and_ipv6() {
        let info = ConnInfo::parse("postgresql://[::1]:5433,h2:5434/db").unwrap();
        assert_eq!(info.get("host"), Some("::1,h2"));
        assert_eq!(info.get("port"), Some("5433,5434"));
        assert_eq!(info.config().unwrap().get_ports(), [5433, 5434]);
    }

    #[test]
    fn key_value_quotes_and_escapes() {
        let info = ConnInfo::parse("host=localhost user = me password='a b\\'c' dbname=x").unwrap();
        assert_eq!(info.get("password"), Some("a b'c"));
        assert_eq!(info.get("user"), Some("me"));
        assert_eq!(
            info.config().unwrap().get_password(),
            Some("a b'c".as_bytes())
        );
    }

    #[test]
    fn unencoded_slash_in_password_is_refused_without_echo() {
        for url in [
            "postgresql://u:Sl/ashPw?9@host/db",
            "postgresql://u:Sl/ashPw@host:5432/db",
            "postgresql://u:1234/abcd?password=efgh@host/db",
            "postgresql://u:pa@ss@host/db",
            "postgresql://u:a%zzbcde@host/db",
            "postgresql://host:5432/db?pwd=abcd",
            "postgresql://host:5432/db?password=ab=cd",
        ] {
            let msg = refused(url);
            assert!(msg.contains("percent-encode"), "{url}: {msg}");
            for piece in [
                "Sl/a", "ashPw", "1234", "abcd", "efgh", "pa@", "@ss", "zzbc",
            ] {
                assert!(!msg.contains(piece), "{url}: {msg}");
            }
        }
        assert!(refused("postgresql://u:Sl/ashPw@host:5432/db").contains("the port"));
        assert!(refused("postgresql://u:Sl/ashPw?9@host/db").contains("the port"));
        assert!(refused("postgresql://u:12/ashPw?9@host/db").contains("authority of the URL"));
        assert!(refused("postgresql://u:pa@ss@host/db").contains("authority of the URL"));
    }

    #[test]
    fn key_value_refusals_do_not_echo() {
        for text in [
            "host=h password=abcd efgh",
            "host=h password='abcd efgh",
            "host=h password=abcd efgh=ijkl",
        ] {
            let msg = refused(text);
            for piece in ["abcd", "efgh", "ijkl"] {
                assert!(!msg.contains(piece), "{text}: {msg}");
            }
        }
    }

    #[test]
    fn unsupported_option_is_named_from_libpqs_list() {
        let info = ConnInfo::parse("postgresql://h/db?sslcrl=/x").unwrap();
        let err = info.config().unwrap_err().to_string();
        assert!(err.contains("`sslcrl`"), "{err}");
        // Read by crmbench itself, not the driver.
        let info = ConnInfo::parse("postgresql://h/db?sslrootcert=/x&sslmode=verify-full").unwrap();
        assert!(info.config().is_ok());
        let info = ConnInfo::parse("postgresql://h/db?connect_timeout=soon").unwrap();
        let err = info.config().unwrap_err().to_string();
        assert!(err.contains("`connect_timeout`"), "{err}");
    }

    #[test]
    fn given_options_win_over_the_environment_then_defaults() {
        let env = |var: &str| match var {
            "PGHOST" => Some("envhost".to_string()),
            "PGPORT" => Some("6000".to_string()),
            "PGUSER" => Some("envuser".to_string()),
            "PGSSLMODE" => Some("verify-full".to_string()),
            "PGPASSWORD" => Some("envsecret".to_string()),
            _ => None,
        };
        let info = ConnInfo::parse("postgresql://given@/db")
            .unwrap()
            .with_environment(env, Some("osuser".into()));
        assert_eq!(info.get("user"), Some("given"));
        assert_eq!(info.get("host"), Some("envhost"));
        assert_eq!(info.get("port"), Some("6000"));
        assert_eq!(info.get("sslmode"), Some("verify-full"));
        assert_eq!(
            info.get("password"),
            None,
            "PGPASSWORD never enters the options"
        );
        let info = ConnInfo::parse("dbname=x")
            .unwrap()
            .with_environment(|_| None, Some("osuser".into()));
        assert_eq!(info.get("user"), Some("osuser"));
        assert!(info.get("host").is_some());
        assert_eq!(info.config().unwrap().get_user(), Some("osuser"));
    }
}
