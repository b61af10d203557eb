//! `--protocol pipeline` (issue 18 item 1): crmbench's own wire-protocol
//! session against the private server — the same database writes and
//! returned values as the tokio-postgres session for the same transactions,
//! an error in the middle of a frame reported as that statement's with the
//! transaction rolled back and the next frame fine, SCRAM over TCP, md5 and
//! TLS (with `sslmode=allow`'s retry), and a run that recovers from a
//! backend killed under it.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use crmbench::pg::target::External;
use crmbench::pg::{self, Target};
use crmbench::run::session::{Mode, Session};
use crmbench::workload::Workload;
use crmbench::workload::params::Value;

/// A framed three-statement write: the second and third take what the first
/// returned (two segments), the tenant set by `set_config` inside the frame.
const WORKLOAD: &str = r#"
name = "pipe"
[context]
tenant_setting = "app.tenant"
tenants = "SELECT 'acme', 1"

[[query]]
name = "write"
kind = "write"

[[query.statements]]
sql = "INSERT INTO t (tenant, v) VALUES (current_setting('app.tenant'), $1::int) RETURNING id AS tid, v * 2 AS dbl"
params = [{ int = [1, 1000] }]

[[query.statements]]
sql = "INSERT INTO c (t_id, v) VALUES ($1::bigint, $2::int)"
params = [{ ref = "tid" }, { ref = "dbl" }]

[[query.statements]]
sql = "SELECT count(*) AS n FROM c WHERE t_id = $1::bigint"
params = [{ ref = "tid" }]

[[query]]
name = "divide"
kind = "write"

[[query.statements]]
sql = "INSERT INTO t (tenant, v) VALUES (current_setting('app.tenant'), $1::int)"
params = [{ int = [1, 1000] }]

[[query.statements]]
sql = "SELECT 10 / $1::int AS q"
params = [{ int = [0, 1] }]

[[query.statements]]
sql = "SELECT $1::int AS bad"
params = [{ value = "x" }]
"#;

fn workload() -> Workload {
    Workload::parse(WORKLOAD, Path::new("pipe.toml")).unwrap()
}

async fn database(name: &str) -> Target {
    let target = common::fresh_database(name).await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(
            "CREATE TABLE t (id bigserial PRIMARY KEY, tenant text, v int); \
             CREATE TABLE c (t_id bigint, v int)",
        )
        .await
        .unwrap();
    target
}

/// Both tables as text, in order.
async fn contents(target: &Target) -> String {
    let admin = pg::connect(&target.admin()).await.unwrap();
    let row = admin
        .query_one(
            "SELECT (SELECT string_agg(format('%s:%s:%s', id, tenant, v), ',' ORDER BY id) FROM t) \
                 || ' | ' || \
                    (SELECT string_agg(format('%s:%s', t_id, v), ',' ORDER BY t_id) FROM c)",
            &[],
        )
        .await
        .unwrap();
    row.get::<_, Option<String>>(0).unwrap_or_default()
}

fn text(v: i64) -> Vec<Value> {
    vec![Value::Text(v.to_string())]
}

/// Query 0's values for transaction `i` (refs are NULL until filled in).
fn write_values(i: i64) -> Vec<Vec<Value>> {
    vec![
        text(i * 7),
        vec![Value::Null, Value::Null],
        vec![Value::Null],
    ]
}

// A broken ref (a value not passed on) or a frame missing its set_config
// shows in the tables: c's values are twice t's, every tenant is 'acme'.
#[tokio::test]
async fn the_pipeline_writes_what_tokio_postgres_writes() {
    let w = workload();
    let mut written = Vec::new();
    for (db, mode) in [
        ("pipe_tokio", Mode::Prepared),
        ("pipe_wire", Mode::Pipeline),
    ] {
        let target = database(db).await;
        let mut s = Session::open(&target.admin(), &w, mode).await.unwrap();
        for i in 1..=20 {
            let o = s
                .run(0, &w.queries[0], "acme", &write_values(i))
                .await
                .unwrap();
            assert_eq!(o.statement_us.len(), 3, "{mode:?}");
        }
        written.push(contents(&target).await);
    }
    assert!(
        written[0].starts_with("1:acme:7,2:acme:14"),
        "{}",
        written[0]
    );
    assert!(written[0].contains("| 1:14,2:28"), "{}", written[0]);
    assert_eq!(written[0], written[1]);
}

// Without the rollback after a failed batch the next frame's BEGIN meets an
// aborted transaction (25P02); without attribution the error would be the
// third statement's 22P02 or none.
#[tokio::test]
async fn an_error_mid_frame_is_that_statements_and_the_next_frame_runs() {
    let w = workload();
    for (db, mode) in [
        ("pipe_err_tokio", Mode::Prepared),
        ("pipe_err_wire", Mode::Pipeline),
    ] {
        let target = database(db).await;
        let mut s = Session::open(&target.admin(), &w, mode).await.unwrap();
        let zero = vec![text(5), text(0), vec![Value::Text("x".into())]];
        let e = s.run(1, &w.queries[1], "acme", &zero).await.unwrap_err();
        assert_eq!(e.code, "22012", "{mode:?}: {e:?}");
        assert!(!e.lost());
        // The statement before the error was rolled back with the frame.
        assert_eq!(contents(&target).await, "", "{mode:?}");
        let o = s
            .run(0, &w.queries[0], "acme", &write_values(1))
            .await
            .unwrap();
        assert_eq!(o.statement_us.len(), 3);
        // The failed frame's insert took id 1 from the sequence.
        assert_eq!(contents(&target).await, "2:acme:7 | 2:14", "{mode:?}");
        // The third statement's own error, once the second passes.
        let one = vec![text(5), text(1), vec![Value::Text("x".into())]];
        let e = s.run(1, &w.queries[1], "acme", &one).await.unwrap_err();
        assert_eq!(e.code, "22P02", "{mode:?}: {e:?}");
    }
}

// SCRAM-SHA-256 over TCP, as the private server asks of TCP clients; a
// wrong password is an authentication failure, not a lost connection.
#[tokio::test]
async fn the_pipeline_authenticates_with_scram_over_tcp() {
    let target = database("pipe_scram").await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS pipe_user; \
             CREATE ROLE pipe_user LOGIN SUPERUSER PASSWORD 'pipe-secret'",
        )
        .await
        .unwrap();
    let port = common::cluster().server.port();
    let home = tempfile::tempdir().unwrap();
    let spec = |password: &str| {
        let url = format!(
            "postgresql://pipe_user:{password}@127.0.0.1:{port}/pipe_scram?sslmode=disable"
        );
        let external = External::parse_with(&url, false, |_: &str| None, Some(home.path().into()));
        Target::External(external.unwrap()).admin()
    };
    let w = workload();
    let mut s = Session::open(&spec("pipe-secret"), &w, Mode::Pipeline)
        .await
        .unwrap();
    s.run(0, &w.queries[0], "acme", &write_values(3))
        .await
        .unwrap();
    assert!(contents(&target).await.starts_with("1:acme:21"));
    let wrong = Session::open(&spec("wrong"), &w, Mode::Pipeline).await;
    let e = wrong.err().unwrap();
    assert!(matches!(e, crmbench::Error::Auth { .. }), "{e}");
}

/// TLS on with a self-signed certificate for `localhost`, md5 accepted
/// over TCP (SCRAM still for SCRAM passwords, so the other tests' TCP logins
/// work), and role `pipe_tls` refused without TLS.
async fn tls_and_md5_server(admin: &tokio_postgres::Client) {
    let certs = tempfile::tempdir().unwrap();
    common::tls::self_signed(certs.path(), "server");
    common::tls::install_server_cert(certs.path());
    let hba = "local all all trust\n\
               hostnossl all pipe_tls 127.0.0.1/32 reject\n\
               host all all 127.0.0.1/32 md5\n";
    common::tls::configure(admin, hba, true).await;
}

/// Whether `user`'s sessions are encrypted, one per session.
async fn encrypted(admin: &tokio_postgres::Client, user: &str) -> Vec<bool> {
    let sql = "SELECT s.ssl FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
               WHERE a.usename = $1";
    let rows = admin.query(sql, &[&user]).await.unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

// The wire layer's TLS and md5 paths, which no other test reaches: a role
// stored as md5 logs in with md5; a role the server refuses without TLS is
// served over TLS with sslmode=require, and with sslmode=allow after its
// plain attempt is turned away (libpq's retry); sslmode=disable is refused.
#[tokio::test]
async fn the_pipeline_speaks_md5_and_tls() {
    let target = database("pipe_tls").await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin
        .batch_execute(
            "DROP ROLE IF EXISTS pipe_md5; DROP ROLE IF EXISTS pipe_tls; \
             SET password_encryption = 'md5'; \
             CREATE ROLE pipe_md5 LOGIN SUPERUSER PASSWORD 'md5-secret'; \
             RESET password_encryption; \
             CREATE ROLE pipe_tls LOGIN SUPERUSER PASSWORD 'tls-secret'",
        )
        .await
        .unwrap();
    let stored: String = admin
        .query_one(
            "SELECT rolpassword FROM pg_authid WHERE rolname = 'pipe_md5'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert!(stored.starts_with("md5"), "{stored}");
    tls_and_md5_server(&admin).await;
    let port = common::cluster().server.port();
    let home = tempfile::tempdir().unwrap();
    let spec = |user: &str, sslmode: &str| {
        let password = if user == "pipe_md5" {
            "md5-secret"
        } else {
            "tls-secret"
        };
        let url =
            format!("postgresql://{user}:{password}@127.0.0.1:{port}/pipe_tls?sslmode={sslmode}");
        let external = External::parse_with(&url, false, |_: &str| None, Some(home.path().into()));
        Target::External(external.unwrap()).admin()
    };
    let w = workload();
    let md5 = Session::open(&spec("pipe_md5", "disable"), &w, Mode::Pipeline).await;
    let mut md5 = md5.unwrap();
    md5.run(0, &w.queries[0], "acme", &write_values(1))
        .await
        .unwrap();
    assert_eq!(encrypted(&admin, "pipe_md5").await, [false]);
    for (i, sslmode) in [(2, "require"), (3, "allow")] {
        let mut s = Session::open(&spec("pipe_tls", sslmode), &w, Mode::Pipeline)
            .await
            .unwrap_or_else(|e| panic!("sslmode={sslmode}: {e}"));
        s.run(0, &w.queries[0], "acme", &write_values(i))
            .await
            .unwrap();
        assert_eq!(
            encrypted(&admin, "pipe_tls").await,
            [true],
            "sslmode={sslmode}"
        );
        drop(s);
        // The session is gone from pg_stat_activity before the next one.
        for _ in 0..100 {
            if encrypted(&admin, "pipe_tls").await.is_empty() {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
    let disable = Session::open(&spec("pipe_tls", "disable"), &w, Mode::Pipeline).await;
    let e = disable.err().unwrap();
    assert!(matches!(e, crmbench::Error::Auth { .. }), "{e}");
    // Three frames, each with its passed values: 7×1, 7×2, 7×3 and doubles.
    assert_eq!(
        contents(&target).await,
        "1:acme:7,2:acme:14,3:acme:21 | 1:14,2:28,3:42"
    );
}

/// End every benchmark session on `db` (not crmbench's statistics session
/// nor this one) inside the measured window; how many were ended.
async fn kill_clients(target: &Target, db: &str) -> usize {
    let admin = pg::connect(&target.admin()).await.unwrap();
    let sql = "SELECT pg_terminate_backend(pid) FROM pg_stat_activity \
               WHERE datname = $1 AND pid <> pg_backend_pid() \
                 AND application_name <> 'crmbench-stats' AND backend_type = 'client backend'";
    // Past the 0.5 s warm-up (whose errors are not kept), then until found.
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    for _ in 0..200 {
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        let killed = admin.query(sql, &[&db]).await.unwrap().len();
        if killed > 0 {
            return killed;
        }
    }
    0
}

// Before the pipeline mapped a terminated backend to a lost connection the
// client stopped (or reused a dead session): the intervals after the kill
// would be empty.
#[tokio::test]
async fn a_run_on_the_pipeline_recovers_from_killed_backends() {
    let db = "pipe_kill";
    let target = common::fresh_database(db).await;
    pg::connect(&target.admin())
        .await
        .unwrap()
        .batch_execute(
            "CREATE SCHEMA shop; \
             CREATE TABLE shop.items (id serial PRIMARY KEY, name text NOT NULL, price numeric(10,2) NOT NULL); \
             INSERT INTO shop.items (name, price) SELECT 'item ' || g, (g % 97) + 0.5 FROM generate_series(1, 2000) g; \
             GRANT USAGE ON SCHEMA shop TO crmbench_app; \
             GRANT SELECT, INSERT, UPDATE ON shop.items TO crmbench_app; \
             GRANT USAGE ON SEQUENCE shop.items_id_seq TO crmbench_app",
        )
        .await
        .unwrap();
    let mut opts = common::options("fixtures/workloads/valid_no_tenant.toml", 3.0);
    opts.pipeline = true;
    let (outcome, killed) = tokio::join!(
        crmbench::run::run(&target, &opts),
        kill_clients(&target, db)
    );
    let outcome = outcome.unwrap();
    assert!(killed > 0, "no client session was found to kill");
    let r = &outcome.results;
    let lost: u64 = r
        .queries
        .iter()
        .flat_map(|q| &q.baseline.errors)
        .filter(|(code, _)| code.starts_with("57P") || code.as_str() == "crmbench:connection_lost")
        .map(|(_, n)| n)
        .sum();
    assert!(
        lost > 0,
        "{:?}",
        r.queries
            .iter()
            .map(|q| &q.baseline.errors)
            .collect::<Vec<_>>()
    );
    let last: u64 = r
        .queries
        .iter()
        .filter_map(|q| q.baseline.intervals.last())
        .map(|i| i.count)
        .sum();
    assert!(last > 0, "nothing ran in the last interval, after the kill");
    assert_eq!(r.driver.protocol, "pipeline");
}
