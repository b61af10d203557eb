//! The password file, as libpq reads it: `passfile` (or `PGPASSFILE`, or
//! `~/.pgpass`), lines `hostname:port:database:username:password`, `*`
//! matching anything, `\` escaping `:` and `\`, `#` starting a comment. A
//! file that others can read is ignored with libpq's warning. A Unix-socket
//! host matches `localhost`, as in libpq. The password found goes to the
//! driver only: it is never part of a description of the connection.

use std::path::{Path, PathBuf};

use super::conninfo::ConnInfo;

/// The password for the first host of `info` (user, database and port as
/// libpq fills them in), from the password file; `None` when there is no
/// file, no matching line, or the file is unsafe.
pub fn password_for(info: &ConnInfo, home: Option<&Path>) -> Option<String> {
    let file = match info.get("passfile") {
        Some(p) => PathBuf::from(p),
        None => home?.join(".pgpass"),
    };
    let text = read_private(&file)?;
    let first = |v: Option<&str>| v.and_then(|v| v.split(',').next()).map(str::to_string);
    let host = first(info.get("host"))
        .filter(|h| !h.is_empty())
        .or_else(|| first(info.get("hostaddr")))
        .filter(|h| !h.is_empty() && !h.starts_with('/'))
        .unwrap_or_else(|| "localhost".into());
    let port = first(info.get("port"))
        .filter(|p| !p.is_empty())
        .unwrap_or_else(|| "5432".into());
    let user = info.get("user")?;
    let database = info.get("dbname").unwrap_or(user);
    lookup(&text, [&host, &port, database, user])
}

/// The file's text, unless it is missing, not a regular file, or readable by
/// group or others (then libpq's warning, and nothing).
fn read_private(file: &Path) -> Option<String> {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(file).ok()?;
    if !meta.is_file() {
        return None;
    }
    if meta.permissions().mode() & 0o077 != 0 {
        crate::console::err_line(format!(
            "WARNING: password file \"{}\" has group or world access; permissions should be \
             u=rw (0600) or less",
            file.display()
        ));
        return None;
    }
    std::fs::read_to_string(file).ok()
}

/// The first line whose four fields match `wanted` gives the password.
fn lookup(text: &str, wanted: [&str; 4]) -> Option<String> {
    text.lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .find_map(|line| {
            let fields = split(line);
            let matches = fields.len() >= 5
                && fields
                    .iter()
                    .zip(wanted)
                    .all(|((field, escaped), want)| (field == "*" && !escaped) || field == want);
            matches.then(|| fields[4].0.clone())
        })
}

/// Split at unescaped `:`; each field unescaped, with whether it held an
/// escape (an escaped `\*` is a literal star, not the wildcard).
fn split(line: &str) -> Vec<(String, bool)> {
    let mut fields = vec![(String::new(), false)];
    let mut chars = line.chars();
    while let Some(c) = chars.next() {
        let Some(current) = fields.last_mut() else {
            break;
        };
        match c {
            '\\' => {
                current.0.extend(chars.next());
                current.1 = true;
            }
            ':' => fields.push((String::new(), false)),
            c => current.0.push(c),
        }
    }
    fields
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn first_matching_line_wins_with_wildcards_and_escapes() {
        let text = "# comment\n\
                    db.example:5432:shop:alice:first\n\
                    *:*:shop:bob:pa\\:ss\\\\word\n\
                    localhost:*:*:*:socket\n\
                    \\*:5432:*:carol:literal-star\n";
        assert_eq!(
            lookup(text, ["db.example", "5432", "shop", "alice"]).as_deref(),
            Some("first")
        );
        assert_eq!(
            lookup(text, ["any", "1", "shop", "bob"]).as_deref(),
            Some("pa:ss\\word")
        );
        assert_eq!(
            lookup(text, ["localhost", "5433", "x", "y"]).as_deref(),
            Some("socket")
        );
        assert_eq!(lookup(text, ["h", "5432", "x", "carol"]), None);
        assert_eq!(lookup(text, ["db.example", "5433", "shop", "alice"]), None);
    }

    #[test]
    fn socket_hosts_match_localhost_and_unsafe_files_are_ignored() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join(".pgpass");
        std::fs::write(&file, "localhost:5432:u:u:secret\n").unwrap();
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).unwrap();
        let info = ConnInfo::parse("host=/var/run/postgresql user=u").unwrap();
        assert_eq!(
            password_for(&info, Some(dir.path())).as_deref(),
            Some("secret")
        );
        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        assert_eq!(password_for(&info, Some(dir.path())), None);
        let info = ConnInfo::parse(&format!(
            "host=/tmp user=u passfile={}",
            dir.path().join("none").display()
        ))
        .unwrap();
        assert_eq!(password_for(&info, Some(dir.path())), None);
    }
}
