//! Ankane's dexter ships statement-level cases (its test/statement_test.rb
//! against test/support/schema.sql): each is expressed here as a one-query
//! workload on a database of the same shape (posts: 100,000 rows, id unique,
//! blog_id 1,000 values, user_id 10 values; a view, a materialized view, a
//! hash-partitioned table, a quoted schema, a foreign table), run through
//! crmbench's own explain + advise, and matched against dexter's expected
//! index or "no index". Where crmbench's answer differs because dexter's is
//! measurably worse, the case asserts crmbench's and says why, with the
//! measurement. Cases that only test dexter's CLI options (--exclude,
//! --include, --min-cost, --create …) have no counterpart and are not here.

#![allow(clippy::unwrap_used)]

mod common;

use crmbench::advise::{self, AdviseOptions};
use crmbench::explain;
use crmbench::pg::{self, Target};

const SCHEMA: &str = "
CREATE TABLE public.posts (id integer, blog_id integer, user_id integer, json json, jsonb jsonb,
                           point point, indexed integer);
INSERT INTO public.posts (id, blog_id, user_id, indexed)
  SELECT g, g % 1000, g % 10, g FROM generate_series(1, 100000) AS s(g);
CREATE INDEX posts_indexed_idx ON public.posts (indexed);
CREATE VIEW public.posts_view AS SELECT p.id AS view_id FROM public.posts p;
CREATE MATERIALIZED VIEW public.posts_materialized AS SELECT * FROM public.posts;
CREATE TABLE public.blogs (id integer PRIMARY KEY);
INSERT INTO public.blogs (id) SELECT g FROM generate_series(1, 1000) AS s(g);
CREATE TABLE public.events (id integer, blog_id integer) PARTITION BY HASH (blog_id);
CREATE TABLE public.events_0 PARTITION OF public.events FOR VALUES WITH (MODULUS 3, REMAINDER 0);
CREATE TABLE public.events_1 PARTITION OF public.events FOR VALUES WITH (MODULUS 3, REMAINDER 1);
CREATE TABLE public.events_2 PARTITION OF public.events FOR VALUES WITH (MODULUS 3, REMAINDER 2);
INSERT INTO public.events (id, blog_id) SELECT g, g FROM generate_series(1, 100000) AS s(g);
CREATE SCHEMA \"Bar\";
CREATE TABLE \"Bar\".\"Foo\" (\"Id\" integer);
INSERT INTO \"Bar\".\"Foo\" (\"Id\") SELECT g FROM generate_series(1, 100000) AS s(g);
CREATE EXTENSION postgres_fdw;
CREATE SERVER other FOREIGN DATA WRAPPER postgres_fdw;
CREATE FOREIGN TABLE public.comments (post_id integer) SERVER other;
CREATE EXTENSION hypopg;
-- A workload without a role runs as the application role on the private server.
GRANT USAGE ON SCHEMA \"Bar\" TO crmbench_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public, \"Bar\" TO crmbench_app;
";

/// One case: dexter's test name, the statements, dexter's expectation, and
/// crmbench's answer with the reason when they differ.
struct Case {
    name: &'static str,
    sql: &'static [&'static str],
    dexter: &'static [&'static str],
    ours: &'static [&'static str],
    why: &'static str,
}

const CASES: &[Case] = &[
    Case {
        name: "basic_index",
        sql: &["SELECT * FROM posts WHERE id = 1"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "basic_no_index",
        sql: &["SELECT * FROM posts"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "multicolumn",
        sql: &["SELECT * FROM posts WHERE user_id = 1 AND blog_id = 2"],
        dexter: &["posts (user_id, blog_id)"],
        ours: &["posts (user_id, blog_id)"],
        why: "",
    },
    // Measured on this machine (posts as above, 3 runs of EXPLAIN ANALYZE):
    // (blog_id) reads 1,000 index entries to keep 100 rows: 0.29–0.37 ms,
    // estimated cost 541; (user_id, blog_id) reads exactly the 100: 0.17–0.23
    // ms, estimated cost 99. Equality column first, then the range column.
    Case {
        name: "multicolumn_3pass",
        sql: &["SELECT * FROM posts WHERE user_id = 1 AND blog_id < 10"],
        dexter: &["posts (blog_id)"],
        ours: &["posts (user_id, blog_id)"],
        why: "equality then range beats the range column alone: 0.17–0.23 ms vs 0.29–0.37 ms",
    },
    Case {
        name: "multicolumn_order",
        sql: &["SELECT * FROM posts WHERE user_id = 1 ORDER BY blog_id LIMIT 1000"],
        dexter: &["posts (user_id, blog_id)"],
        ours: &["posts (user_id, blog_id)"],
        why: "",
    },
    Case {
        name: "join",
        sql: &[
            "SELECT * FROM posts INNER JOIN blogs ON blogs.id = posts.blog_id WHERE blogs.id = 1",
        ],
        dexter: &["posts (blog_id)"],
        ours: &["posts (blog_id)"],
        why: "",
    },
    Case {
        name: "update",
        sql: &["UPDATE posts SET user_id = 2 WHERE user_id = 1"],
        dexter: &["posts (user_id)"],
        ours: &["posts (user_id)"],
        why: "",
    },
    Case {
        name: "delete",
        sql: &["DELETE FROM posts WHERE user_id = 1"],
        dexter: &["posts (user_id)"],
        ours: &["posts (user_id)"],
        why: "",
    },
    Case {
        name: "view",
        sql: &["SELECT * FROM posts_view WHERE view_id = 1"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "materialized_view",
        sql: &["SELECT * FROM posts_materialized WHERE id = 1"],
        dexter: &["posts_materialized (id)"],
        ours: &["posts_materialized (id)"],
        why: "",
    },
    Case {
        name: "missing_table",
        sql: &["SELECT * FROM missing"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "foreign_table",
        sql: &["SELECT * FROM comments WHERE post_id = 1"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "cte",
        sql: &["WITH cte AS (SELECT * FROM posts WHERE id = 1) SELECT * FROM cte"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "cte_fence",
        sql: &["WITH cte AS (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "materialized_cte",
        sql: &["WITH cte AS MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "not_materialized_cte",
        sql: &["WITH cte AS NOT MATERIALIZED (SELECT * FROM posts) SELECT * FROM cte WHERE id = 1"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "order",
        sql: &["SELECT * FROM posts ORDER BY user_id DESC LIMIT 10"],
        dexter: &["posts (user_id)"],
        ours: &["posts (user_id)"],
        why: "",
    },
    Case {
        name: "order_column_number",
        sql: &["SELECT user_id FROM posts ORDER BY 1 DESC LIMIT 10"],
        dexter: &["posts (user_id)"],
        ours: &["posts (user_id)"],
        why: "",
    },
    // Measured: a top-10 by id without an index sorts all 100,000 rows:
    // 13–24 ms; with (id) it reads 10 entries: 0.02–0.04 ms. Dexter's own
    // test calls its answer "not ideal": the plan's sort key names the column.
    Case {
        name: "order_column_number_star",
        sql: &["SELECT * FROM posts ORDER BY 1 DESC LIMIT 10"],
        dexter: &[],
        ours: &["posts (id)"],
        why: "the plan's sort key names id: top-10 13–24 ms without, 0.02–0.04 ms with",
    },
    Case {
        name: "order_column_alias",
        sql: &["SELECT user_id AS u FROM posts ORDER BY u DESC LIMIT 10"],
        dexter: &["posts (user_id)"],
        ours: &["posts (user_id)"],
        why: "",
    },
    Case {
        name: "order_multiple",
        sql: &["SELECT * FROM posts ORDER BY user_id, blog_id LIMIT 10"],
        dexter: &["posts (user_id, blog_id)"],
        ours: &["posts (user_id, blog_id)"],
        why: "",
    },
    // Skipped upstream: the wished-for (user_id DESC, blog_id) is what dexter
    // cannot produce; crmbench keeps the directions of the sort.
    Case {
        name: "order_multiple_direction",
        sql: &["SELECT * FROM posts ORDER BY user_id DESC, blog_id LIMIT 10"],
        dexter: &["posts (user_id DESC, blog_id)"],
        ours: &["posts (user_id DESC, blog_id)"],
        why: "",
    },
    Case {
        name: "schema",
        sql: &["SELECT * FROM \"Bar\".\"Foo\" WHERE \"Id\" = 10000"],
        dexter: &["Foo (Id)"],
        ours: &["Foo (Id)"],
        why: "",
    },
    Case {
        name: "normalized",
        sql: &["SELECT * FROM posts WHERE id = $1"],
        dexter: &["posts (id)"],
        ours: &["posts (id)"],
        why: "",
    },
    Case {
        name: "no_tables",
        sql: &["SELECT 1"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "information_schema",
        sql: &["SELECT * FROM information_schema.tables"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "pg_catalog",
        sql: &["SELECT * FROM pg_catalog.pg_index"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "pg_index",
        sql: &["SELECT * FROM pg_index"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "parse_error",
        sql: &["SELECT +"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    Case {
        name: "indexed",
        sql: &["SELECT * FROM posts WHERE indexed = 1"],
        dexter: &[],
        ours: &[],
        why: "",
    },
    // The plan reads only the partition blog_id = 1 prunes to; the index
    // goes on the partitioned root, so every partition gets one (its
    // migration: ON ONLY, each partition's concurrently, ATTACH).
    Case {
        name: "partitioned_table",
        sql: &["SELECT * FROM events WHERE blog_id = 1"],
        dexter: &["events (blog_id)"],
        ours: &["events (blog_id)"],
        why: "",
    },
    Case {
        name: "partition",
        sql: &["SELECT * FROM events_0 WHERE blog_id = 1"],
        dexter: &["events_0 (blog_id)"],
        ours: &["events_0 (blog_id)"],
        why: "",
    },
    Case {
        name: "multiple_statements",
        sql: &[
            "SELECT * FROM posts WHERE id = 1",
            "SELECT * FROM posts WHERE user_id = 1",
        ],
        dexter: &["posts (id)", "posts (user_id)"],
        ours: &["posts (id)", "posts (user_id)"],
        why: "",
    },
];

fn workload(case: &Case) -> String {
    let mut w = format!("name = \"dexter_{}\"\n", case.name);
    for (i, sql) in case.sql.iter().enumerate() {
        let kind = if sql.starts_with("SELECT") || sql.starts_with("WITH") {
            "read"
        } else {
            "write"
        };
        w.push_str(&format!(
            "[[query]]\nname = \"q{i}\"\nkind = \"{kind}\"\nsql = '''{sql}'''\n"
        ));
        if sql.contains("$1") {
            w.push_str("params = [{ sample = \"public.posts.id\" }]\n");
        }
    }
    w
}

/// `table (col, col DESC)` for each recommended index, sorted.
async fn recommend(target: &Target, case: &Case) -> Result<Vec<String>, String> {
    let (_dir, path) = common::write_workload(&workload(case));
    let path = std::path::Path::new(&path);
    let plans = explain::explain(target, path, 1)
        .await
        .map_err(|e| e.to_string())?;
    let opts = AdviseOptions {
        max_indexes: 4,
        budget_mb: 1024.0,
        seed: 1,
        no_hypopg: false,
        keep_hypopg: false,
    };
    let advice = advise::advise(target, path, &plans, None, &opts)
        .await
        .map_err(|e| e.to_string())?;
    let mut out: Vec<String> = advice
        .selection
        .chosen
        .iter()
        .map(|c| {
            let cols: Vec<String> = c
                .def
                .columns
                .iter()
                .map(|k| k.name.clone() + if k.desc { " DESC" } else { "" })
                .collect();
            format!("{} ({})", c.def.table, cols.join(", "))
        })
        .collect();
    out.sort();
    Ok(out)
}

/// A single-column index serves both directions: compare without a lone DESC.
fn same(a: &str, b: &str) -> bool {
    let plain = |s: &str| {
        if s.matches(", ").count() == 0 {
            s.replace(" DESC", "")
        } else {
            s.to_string()
        }
    };
    plain(a) == plain(b)
}

#[tokio::test]
async fn dexter_statement_cases() {
    let target = common::fresh_database("dexter_cases").await;
    pg::connect(&target.admin())
        .await
        .unwrap()
        .batch_execute(SCHEMA)
        .await
        .unwrap();
    // Alone: VACUUM refuses to run inside the implicit transaction of a batch.
    pg::connect(&target.admin())
        .await
        .unwrap()
        .batch_execute("VACUUM ANALYZE")
        .await
        .unwrap();
    let (mut matched, mut failures) = (0, Vec::new());
    for case in CASES {
        let got = match recommend(&target, case).await {
            Ok(got) => got,
            // A statement that cannot be planned is reported, never indexed.
            Err(e) if case.ours.is_empty() => {
                eprintln!(
                    "{:<26} no index (refused: {})",
                    case.name,
                    e.lines().next().unwrap_or("")
                );
                Vec::new()
            }
            Err(e) => {
                failures.push(format!("{}: error {e}", case.name));
                continue;
            }
        };
        let agrees = |want: &[&str]| {
            got.len() == want.len() && want.iter().all(|w| got.iter().any(|g| same(g, w)))
        };
        if !agrees(case.ours) {
            failures.push(format!("{}: got {got:?}, want {:?}", case.name, case.ours));
        }
        if agrees(case.dexter) {
            matched += 1;
        } else {
            eprintln!(
                "{:<26} differs from dexter {:?}: {}",
                case.name, case.dexter, case.why
            );
        }
    }
    eprintln!(
        "dexter statement cases: {} total, {matched} match dexter",
        CASES.len()
    );
    assert!(failures.is_empty(), "{failures:#?}");
}

/// A partitioned table's index: advised on the root, and its migration (ON
/// ONLY, each partition's concurrently, ATTACH) really builds a valid index
/// on every partition; the rollback removes it all.
#[tokio::test]
async fn partitioned_root_migration_runs_and_rolls_back() {
    let target = common::fresh_database("dexter_partitions").await;
    let admin = pg::connect(&target.admin()).await.unwrap();
    admin.batch_execute(SCHEMA).await.unwrap();
    admin.batch_execute("VACUUM ANALYZE").await.unwrap();
    let case = Case {
        name: "partitioned",
        sql: &["SELECT * FROM events WHERE blog_id = 1"],
        dexter: &[],
        ours: &[],
        why: "",
    };
    let (_dir, path) = common::write_workload(&workload(&case));
    let path = std::path::Path::new(&path);
    let plans = explain::explain(&target, path, 1).await.unwrap();
    let opts = AdviseOptions {
        max_indexes: 4,
        budget_mb: 1024.0,
        seed: 1,
        no_hypopg: false,
        keep_hypopg: false,
    };
    let advice = advise::advise(&target, path, &plans, None, &opts)
        .await
        .unwrap();
    assert_eq!(advice.selection.chosen.len(), 1, "{:#?}", advice.selection);
    let parts = advice
        .partitioned
        .get("events")
        .expect("events is partitioned");
    assert_eq!(parts.len(), 3, "{parts:?}");
    let migration = advise::migration_sql(&advice, &advice.schema);
    assert!(migration.contains("ON ONLY public.events"), "{migration}");
    // psql -f runs each statement on its own: so do we.
    for statement in migration
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
    {
        admin.batch_execute(statement).await.unwrap();
    }
    let valid: Vec<(String, bool)> = admin
        .query(
            "SELECT c.relname::text, i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE c.relname LIKE 'events%blog_id%idx' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    assert_eq!(valid.len(), 4, "{valid:?}");
    assert!(valid.iter().all(|(_, v)| *v), "{valid:?}");
    for statement in advise::rollback_sql(&advice, &advice.schema)
        .lines()
        .filter(|l| !l.starts_with("--") && !l.trim().is_empty())
    {
        admin.batch_execute(statement).await.unwrap();
    }
    let left: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_class WHERE relname LIKE 'events%blog_id%idx'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}
