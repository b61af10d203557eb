//! The private server's configuration, in one place, each setting with its reason.
//!
//! These are benchmark settings for disposable data: results files record them
//! (a figure from an fsync-off server is not a production figure).

/// One `postgresql.conf` line and why crmbench sets it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// GUC name.
    pub name: &'static str,
    /// Value as written in the config file (quoted where PostgreSQL needs it).
    pub value: String,
    /// Why.
    pub why: &'static str,
}

fn s(name: &'static str, value: impl Into<String>, why: &'static str) -> Setting {
    Setting {
        name,
        value: value.into(),
        why,
    }
}

/// Settings fixed by crmbench for its private server. `socket_dir` and `port`
/// are the server's own; `preload` lists the libraries found on this install.
pub fn private_server_settings(
    port: u16,
    socket_dir: &str,
    shared_buffers: &str,
    preload: &[&str],
) -> Vec<Setting> {
    let mut out = connections(port, socket_dir);
    out.extend(memory(shared_buffers));
    out.extend(durability());
    out.extend(planner_and_logging());
    out.extend(preloading(preload));
    out
}

/// Where the server listens: loopback, its own port and socket folder.
fn connections(port: u16, socket_dir: &str) -> Vec<Setting> {
    vec![
        s(
            "listen_addresses",
            "'127.0.0.1'",
            "loopback only: never reachable from the network",
        ),
        s(
            "port",
            port.to_string(),
            "its own port, never 5432 (a system cluster may run there)",
        ),
        s(
            "unix_socket_directories",
            format!("'{socket_dir}'"),
            "its own socket folder, outside the system's",
        ),
        s(
            "max_connections",
            "200",
            "room for many clients and paired runs",
        ),
    ]
}

fn memory(shared_buffers: &str) -> Vec<Setting> {
    vec![
        s(
            "shared_buffers",
            format!("'{shared_buffers}'"),
            "keep the working set of small scales in memory",
        ),
        s(
            "work_mem",
            "'16MB'",
            "realistic per-sort memory for a CRM app server",
        ),
        s(
            "maintenance_work_mem",
            "'512MB'",
            "faster index builds after loading",
        ),
    ]
}

/// Durability traded for speed (disposable data), and WAL kept out of loads.
fn durability() -> Vec<Setting> {
    vec![
        s(
            "fsync",
            "off",
            "disposable benchmark data: no durability cost (NOT a production setting)",
        ),
        s(
            "synchronous_commit",
            "off",
            "disposable benchmark data (NOT a production setting)",
        ),
        s(
            "full_page_writes",
            "off",
            "disposable benchmark data (NOT a production setting)",
        ),
        s(
            "wal_level",
            "minimal",
            "COPY into a table created in the same transaction skips WAL",
        ),
        s("max_wal_senders", "0", "required by wal_level=minimal"),
        s(
            "max_wal_size",
            "'8GB'",
            "no forced checkpoints during loads",
        ),
        s(
            "checkpoint_timeout",
            "'30min'",
            "no periodic checkpoints during short runs",
        ),
    ]
}

fn planner_and_logging() -> Vec<Setting> {
    vec![
        s("random_page_cost", "1.1", "SSD-backed storage"),
        s(
            "jit",
            "off",
            "JIT compilation dominates short OLTP queries and adds noise",
        ),
        s(
            "track_io_timing",
            "on",
            "EXPLAIN (BUFFERS) and pg_stat_statements show I/O time",
        ),
        s("log_min_messages", "warning", "a quiet server log"),
        s(
            "log_line_prefix",
            "'%m [%p] %q%u@%d '",
            "readable server log",
        ),
    ]
}

/// Only the libraries this install has: a missing one would stop the server.
fn preloading(preload: &[&str]) -> Vec<Setting> {
    let mut out = Vec::new();
    if !preload.is_empty() {
        out.push(s(
            "shared_preload_libraries",
            format!("'{}'", preload.join(",")),
            "pg_stat_statements needs preloading",
        ));
    }
    if preload.contains(&"pg_stat_statements") {
        out.push(s(
            "pg_stat_statements.track",
            "'all'",
            "statements inside functions count too",
        ));
    }
    out
}

/// The text of `crmbench.conf`, included from `postgresql.conf`.
pub fn render(settings: &[Setting]) -> String {
    let mut out = String::from(
        "# Written by crmbench for its private benchmark server. Edit with care:\n\
         # crmbench rewrites this file when it initialises the cluster.\n",
    );
    for st in settings {
        out.push_str(&format!("{} = {}    # {}\n", st.name, st.value, st.why));
    }
    out
}

/// Names of the settings worth showing in `pg status` and results files.
pub const REPORTED: &[&str] = &[
    "server_version",
    "fsync",
    "synchronous_commit",
    "full_page_writes",
    "wal_level",
    "shared_buffers",
    "work_mem",
    "maintenance_work_mem",
    "effective_cache_size",
    "random_page_cost",
    "jit",
    "max_connections",
    "max_parallel_workers_per_gather",
    "shared_preload_libraries",
    "listen_addresses",
    "port",
];

/// A `pg_settings` value with its unit made readable ("131072" "8kB" → "1GB").
pub fn with_unit(setting: &str, unit: &str) -> String {
    let kb_per_unit = match unit {
        "8kB" => 8,
        "kB" => 1,
        "MB" => 1024,
        "" => return setting.to_string(),
        other => return format!("{setting}{other}"),
    };
    let Ok(n) = setting.parse::<i64>() else {
        return format!("{setting} {unit}");
    };
    let kb = n.saturating_mul(kb_per_unit);
    if kb >= 1 << 20 && kb % (1 << 20) == 0 {
        format!("{}GB", kb >> 20)
    } else if kb >= 1 << 10 && kb % (1 << 10) == 0 {
        format!("{}MB", kb >> 10)
    } else {
        format!("{kb}kB")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn units_are_readable() {
        assert_eq!(with_unit("131072", "8kB"), "1GB");
        assert_eq!(with_unit("16384", "kB"), "16MB");
        assert_eq!(with_unit("200", ""), "200");
        assert_eq!(with_unit("30", "min"), "30min");
    }

    #[test]
    fn never_listens_beyond_loopback_or_on_5432() {
        let st = private_server_settings(54329, "/tmp/x", "128MB", &["pg_stat_statements"]);
        let get = |n: &str| st.iter().find(|s| s.name == n).map(|s| s.value.clone());
        assert_eq!(get("listen_addresses").as_deref(), Some("'127.0.0.1'"));
        assert_eq!(get("port").as_deref(), Some("54329"));
        assert_eq!(
            get("shared_preload_libraries").as_deref(),
            Some("'pg_stat_statements'")
        );
        assert!(render(&st).contains("unix_socket_directories = '/tmp/x'"));
    }

    #[test]
    fn omits_preload_when_library_missing() {
        let st = private_server_settings(54329, "/tmp/x", "128MB", &[]);
        assert!(st.iter().all(|s| s.name != "shared_preload_libraries"));
        assert!(st.iter().all(|s| s.name != "pg_stat_statements.track"));
    }
}
