//! Reading `pg_stat_statements` on PostgreSQL 13–17: the target database's
//! rows only (the view is server-wide), top-level statements only where the
//! server tracks nested ones (`toplevel`, PostgreSQL 14+), grouped by the
//! parser's fingerprint (the simple and the extended protocol give one
//! statement two queryids).

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::quote_ident;

/// One row (or group of rows) of `pg_stat_statements`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Entry {
    /// The normalized statement.
    pub query: String,
    /// The role that ran it.
    pub role: String,
    /// The server's id of the statement (`None` where the view hides it):
    /// one text can have several (the same statement prepared with other
    /// parameter types), so two snapshots are matched by id, not by text.
    pub queryid: Option<i64>,
    /// Calls.
    pub calls: i64,
    /// Total execution time, ms.
    pub total_ms: f64,
    /// Rows returned or changed, where the source counts them.
    pub rows: Option<i64>,
    /// Shared buffers hit or read, where the source counts them: the work
    /// the calls did, which pg_stat_statements keeps when it normalizes the
    /// constants away ([`super::calibrate`] fits the guessed generators to it).
    pub blocks: Option<i64>,
}

/// The rows of the current database.
pub async fn read(client: &Client, database: &str) -> Result<Vec<Entry>> {
    let schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
             WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("looking for pg_stat_statements", e))?
        .map(|r| r.get(0));
    let Some(schema) = schema else {
        return Err(Error::State {
            message: format!("pg_stat_statements is not created in database {database}"),
            fix: format!(
                "run CREATE EXTENSION pg_stat_statements in {database} (the server needs \
                 shared_preload_libraries = 'pg_stat_statements' and a restart)"
            ),
        });
    };
    let view = format!("{}.pg_stat_statements", quote_ident(&schema));
    let columns: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = $1::text::regclass AND attnum > 0",
            &[&view],
        )
        .await
        .map_err(|e| Error::from_pg("reading pg_stat_statements' columns", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    let sql = select_sql(&view, &columns)?;
    let rows = client.query(&sql, &[]).await.map_err(|e| {
        let err = Error::from_pg("reading pg_stat_statements", e);
        match err.sqlstate() {
            Some("42501") => Error::MissingPrivilege {
                privilege: "pg_read_all_stats (to read other roles' statements)".into(),
                fix: "GRANT pg_read_all_stats TO <you>".into(),
            },
            _ => err,
        }
    })?;
    Ok(rows.iter().map(entry).collect())
}

/// The columns of the view that differ by version: the execution time,
/// `total_exec_time` (13+) or `total_time` (before), and the filter on
/// `toplevel` where it exists (14+).
fn version_columns(columns: &[String]) -> Result<(&'static str, &'static str)> {
    let has = |c: &str| columns.iter().any(|x| x == c);
    let time = if has("total_exec_time") {
        "total_exec_time"
    } else if has("total_time") {
        "total_time"
    } else {
        return Err(Error::State {
            message: "pg_stat_statements has neither total_exec_time nor total_time".into(),
            fix: "use pg_stat_statements 1.8 or later (PostgreSQL 13+)".into(),
        });
    };
    let toplevel = if has("toplevel") {
        " AND s.toplevel"
    } else {
        ""
    };
    Ok((time, toplevel))
}

/// The query for the view's columns (the version's time and toplevel columns).
pub fn select_sql(view: &str, columns: &[String]) -> Result<String> {
    let (time, toplevel) = version_columns(columns)?;
    Ok(format!(
        "SELECT s.query, r.rolname::text, s.calls::bigint, s.{time}::float8, s.queryid, \
                s.rows::bigint, (s.shared_blks_hit + s.shared_blks_read)::bigint \
         FROM {view} s JOIN pg_roles r ON r.oid = s.userid \
         WHERE s.dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
           AND s.query IS NOT NULL{toplevel}"
    ))
}

/// The rows of `table`, a copy of another server's `pg_stat_statements`
/// (PostgreSQL 13–17 columns) with the role's name in a `rolname` column
/// (role oids mean nothing on another server), holding one database's
/// rows: e.g. `CREATE TABLE pgss AS SELECT s.*, r.rolname FROM
/// pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE s.dbid =
/// (SELECT oid FROM pg_database WHERE datname = 'shop')` on production.
pub async fn read_table(client: &Client, table: &str) -> Result<Vec<Entry>> {
    let usage = |message: String| Error::Usage {
        message,
        fix: "copy the view with its role names: CREATE TABLE pgss AS SELECT s.*, r.rolname \
              FROM pg_stat_statements s JOIN pg_roles r ON r.oid = s.userid WHERE s.dbid = \
              (SELECT oid FROM pg_database WHERE datname = '<database>')"
            .into(),
    };
    let Some(quoted) = crate::workload::quoted_name(table) else {
        return Err(usage(format!("--stats-table {table}: not a table name")));
    };
    let columns: Vec<String> = client
        .query(
            "SELECT attname::text FROM pg_attribute WHERE attrelid = to_regclass($1) \
             AND attnum > 0 AND NOT attisdropped",
            &[&quoted],
        )
        .await
        .map_err(|e| Error::from_pg("reading the statistics table's columns", e))?
        .iter()
        .map(|r| r.get(0))
        .collect();
    if columns.is_empty() {
        return Err(usage(format!("--stats-table {table}: no such table")));
    }
    for needed in ["query", "calls", "rolname"] {
        if !columns.iter().any(|c| c == needed) {
            return Err(usage(format!(
                "--stats-table {table} has no column {needed}"
            )));
        }
    }
    let (time, toplevel) = version_columns(&columns)?;
    let queryid = if columns.iter().any(|c| c == "queryid") {
        "s.queryid::bigint"
    } else {
        "NULL::bigint"
    };
    let has = |c: &str| columns.iter().any(|x| x == c);
    let rows = if has("rows") {
        "s.rows::bigint"
    } else {
        "NULL::bigint"
    };
    let blocks = if has("shared_blks_hit") && has("shared_blks_read") {
        "(s.shared_blks_hit + s.shared_blks_read)::bigint"
    } else {
        "NULL::bigint"
    };
    let sql = format!(
        "SELECT s.query::text, s.rolname::text, s.calls::bigint, s.{time}::float8, {queryid}, \
                {rows}, {blocks} \
         FROM {quoted} s WHERE s.query IS NOT NULL{toplevel}"
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| Error::from_pg("reading the statistics table", e))?;
    Ok(rows.iter().map(entry).collect())
}

/// One statement's row, read by both sources in the same column order
/// (query, role, calls, total ms, queryid, rows, blocks).
fn entry(r: &tokio_postgres::Row) -> Entry {
    Entry {
        query: r.get(0),
        role: r.get(1),
        calls: r.get(2),
        total_ms: r.get(3),
        queryid: r.get(4),
        rows: r.get(5),
        blocks: r.get(6),
    }
}

/// `a - b` of two optional counters (unknown when either is).
fn minus(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a? - b?)
}

/// `a + b` of two optional counters (unknown when either is).
pub(super) fn plus(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    Some(a? + b?)
}

/// The application's role: the role, neither superuser nor exempt from
/// row-level security, whose statements took the most time.
pub async fn application_role(client: &Client, entries: &[Entry]) -> Result<String> {
    let mut by_role: HashMap<&str, f64> = HashMap::new();
    for e in entries {
        *by_role.entry(&e.role).or_default() += e.total_ms;
    }
    let mut roles: Vec<(&str, f64)> = by_role.into_iter().collect();
    roles.sort_by(|a, b| b.1.total_cmp(&a.1));
    for (role, _) in roles {
        // A role missing here (statistics copied from another server)
        // could not run the replay: not the application's.
        let privileged: Option<bool> = client
            .query_opt(
                "SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1",
                &[&role],
            )
            .await
            .map_err(|e| Error::from_pg("reading roles", e))?
            .map(|r| r.get(0));
        if privileged == Some(false) {
            return Ok(role.to_string());
        }
    }
    Err(Error::State {
        message: "pg_stat_statements holds no statement of an application role (every role \
                  there is a superuser or bypasses row-level security)"
            .into(),
        fix: "run the application first, or name its role with --role".into(),
    })
}

/// What ran between two snapshots: per (role, statement), the calls and
/// execution time of `after` less those of `before`. A statement first
/// seen in `after` counts whole; one whose counters went down was reset or
/// evicted in between (`pg_stat_statements.max`), so its `after` figures are
/// all that is known of the window. Statements not called in the window are
/// left out.
pub fn window_delta(before: &[Entry], after: Vec<Entry>) -> Vec<Entry> {
    type Key<'a> = (&'a str, Option<i64>, &'a str);
    let earlier: HashMap<Key, &Entry> = before
        .iter()
        .map(|e| ((e.role.as_str(), e.queryid, e.query.as_str()), e))
        .collect();
    after
        .into_iter()
        .filter_map(|mut e| {
            let key = (e.role.as_str(), e.queryid, e.query.as_str());
            if let Some(b) = earlier.get(&key) {
                if e.calls >= b.calls {
                    e.calls -= b.calls;
                    e.total_ms = (e.total_ms - b.total_ms).max(0.0);
                    e.rows = minus(e.rows, b.rows);
                    e.blocks = minus(e.blocks, b.blocks);
                }
            }
            (e.calls > 0).then_some(e)
        })
        .collect()
}

/// Entries of the same statement (same fingerprint) added up.
pub fn grouped(entries: Vec<Entry>) -> Vec<Entry> {
    let mut out: Vec<Entry> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for e in entries {
        let key = pg_query::fingerprint(&e.query)
            .map(|f| f.hex)
            .unwrap_or_else(|_| e.query.clone());
        match index.get(&key) {
            Some(&i) => {
                out[i].calls += e.calls;
                out[i].total_ms += e.total_ms;
                out[i].rows = plus(out[i].rows, e.rows);
                out[i].blocks = plus(out[i].blocks, e.blocks);
            }
            None => {
                index.insert(key, out.len());
                out.push(e);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_of_each_version() {
        let v13: Vec<String> = ["query", "calls", "total_exec_time"]
            .map(String::from)
            .to_vec();
        let sql = select_sql("public.pg_stat_statements", &v13).unwrap();
        assert!(
            sql.contains("s.total_exec_time") && !sql.contains("toplevel"),
            "{sql}"
        );
        let mut v16 = v13.clone();
        v16.push("toplevel".into());
        assert!(select_sql("v", &v16).unwrap().contains("AND s.toplevel"));
        let v12: Vec<String> = ["query", "total_time"].map(String::from).to_vec();
        assert!(select_sql("v", &v12).unwrap().contains("s.total_time"));
    }

    #[test]
    fn window_is_the_difference_of_two_snapshots() {
        let e = |q: &str, role: &str, calls, total_ms| Entry {
            query: q.into(),
            role: role.into(),
            queryid: Some(q.len() as i64),
            calls,
            total_ms,
            ..Entry::default()
        };
        let before = vec![
            e("SELECT 1", "app", 10, 5.0),
            e("SELECT 2", "app", 4, 2.0),
            e("SELECT 1", "other", 1, 1.0),
            e("SELECT 3", "app", 50, 9.0),
        ];
        let after = vec![
            e("SELECT 1", "app", 25, 12.5),
            e("SELECT 2", "app", 4, 2.0),
            e("SELECT 1", "other", 3, 2.0),
            e("SELECT 3", "app", 2, 1.0),
            e("SELECT 4", "app", 7, 3.0),
        ];
        let d = window_delta(&before, after);
        assert_eq!(
            d,
            vec![
                e("SELECT 1", "app", 15, 7.5),
                e("SELECT 1", "other", 2, 1.0),
                e("SELECT 3", "app", 2, 1.0),
                e("SELECT 4", "app", 7, 3.0),
            ]
        );
        // One text, two statements (other parameter types): matched by id,
        // the new one counts whole, the old one did not run in the window.
        let with_id = |id, calls| Entry {
            queryid: Some(id),
            ..e("SELECT $1", "app", calls, 1.0)
        };
        let d = window_delta(
            &[with_id(1, 1000), with_id(2, 1)],
            vec![with_id(1, 1000), with_id(2, 31)],
        );
        assert_eq!(
            d,
            vec![Entry {
                total_ms: 0.0,
                ..with_id(2, 30)
            }]
        );
    }

    #[test]
    fn same_statement_two_protocols_is_one_entry() {
        let e = |q: &str, calls| Entry {
            query: q.into(),
            role: "app".into(),
            queryid: None,
            calls,
            total_ms: 1.0,
            ..Entry::default()
        };
        let g = grouped(vec![
            e("SELECT a FROM t WHERE id = $1", 3),
            e("select a from t where id = $1", 4),
        ]);
        assert_eq!(g.len(), 1);
        assert_eq!(g[0].calls, 7);
    }
}
