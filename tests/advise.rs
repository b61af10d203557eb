//! The advisor (what-if part) on the real server: on the built-in workload it
//! recommends a tenant-leading index on orders for the customer foreign key;
//! it never recommends an index on a predicate only the owner could use; it
//! recommends nothing when nothing pays; the session keeps no hypothetical
//! index; migration and rollback SQL have the shape DBAs need.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use crmbench::advise::{self, AdviseOptions};
use crmbench::explain;
use crmbench::pg;

fn plans_sql(plans: &explain::PlansFile, query: &str) -> String {
    plans
        .queries
        .iter()
        .find(|q| q.name == query)
        .and_then(|q| q.tenants.first())
        .and_then(|t| t.statements.first())
        .map(|s| s.sql.clone())
        .unwrap_or_default()
}

async fn dataset(db: &str) -> pg::Target {
    common::generated(db, 0.01, 4).await
}

const OPTS: AdviseOptions = AdviseOptions {
    max_indexes: 8,
    budget_mb: 1024.0,
    seed: 1,
    no_hypopg: false,
    keep_hypopg: false,
};

#[tokio::test]
async fn built_in_workload_gets_the_orders_customer_index_and_rls_findings() {
    let target = dataset("advise_crm").await;
    let path = Path::new("workloads/crm.toml");
    let plans = explain::explain(&target, path, 1).await.unwrap();
    let advice = advise::advise(&target, path, &plans, None, &OPTS)
        .await
        .unwrap();
    let chosen: Vec<String> = advice
        .selection
        .chosen
        .iter()
        .map(|c| c.def.create_sql("crm"))
        .collect();
    assert!(
        advice
            .selection
            .chosen
            .iter()
            .any(|c| c.def.table == "orders"
                && c.def.columns[0].name == "tenant_id"
                && c.def.columns[1].name == "customer_id"),
        "{chosen:#?}"
    );
    assert!(advice.selection.final_cost < advice.selection.base_cost);
    assert!(advice.whatif_calls > 0);
    // Issue 16 item 8: every query of the workload is explained, the
    // indexed ones by the index, the RLS-bound ones by the remedy.
    let workload = crmbench::workload::Workload::load(path).unwrap();
    for q in &workload.queries {
        let e = advice
            .explanations
            .iter()
            .find(|e| e.query == q.name)
            .unwrap_or_else(|| panic!("no explanation for {}: {:#?}", q.name, advice.explanations));
        assert!(!e.text.is_empty());
    }
    for c in &advice.selection.chosen {
        // Issue 16 item 2: no index serving no query.
        assert!(!c.queries.is_empty(), "{}", c.def.name());
        for q in &c.queries {
            let e = advice.explanations.iter().find(|e| &e.query == q).unwrap();
            assert!(
                e.outcome != advise::reasons::Outcome::NoCandidateHelped,
                "{q}: {e:?}"
            );
        }
    }
    let by_email = advice
        .explanations
        .iter()
        .find(|e| e.query == "customer_name_search")
        .unwrap();
    assert_eq!(
        by_email.outcome,
        advise::reasons::Outcome::RowLevelSecurity,
        "{by_email:?}"
    );
    // Every recommendation leads with tenant_id; none keys on a numeric,
    // jsonb or ILIKE predicate (usable by the owner only, under RLS).
    for c in &advice.selection.chosen {
        assert_eq!(
            c.def.columns[0].name,
            "tenant_id",
            "{}",
            c.def.create_sql("crm")
        );
        for col in &c.def.columns[..c.def.columns.len() - 1] {
            assert!(
                !["value", "attributes", "last_name"].contains(&col.name.as_str()),
                "{}",
                c.def.create_sql("crm")
            );
        }
    }
    for needle in ["ILIKE", "numeric", "jsonb"] {
        assert!(
            advice
                .rls_findings
                .iter()
                .any(|(_, f)| f.hint.contains(needle)),
            "no {needle} finding"
        );
    }
    // …and their remedies: a schema change with its migration and the
    // statement rewritten to use it (measured under --verify).
    let remedy = |query: &str, needle: &str| {
        advice.remedies.iter().any(|r| {
            r.query == query
                && r.migration.iter().any(|m| m.contains(needle))
                && r.rewritten_sql != plans_sql(&plans, query)
        })
    };
    assert!(
        remedy(
            "customer_name_search",
            "GENERATED ALWAYS AS (lower(last_name))"
        ),
        "{:#?}",
        advice.remedies
    );
    assert!(
        remedy(
            "product_search",
            "base_price_cents bigint GENERATED ALWAYS AS"
        ),
        "{:#?}",
        advice.remedies
    );
    // Item 4: every use of the column moves with the remedy — the ORDER BY
    // too, else the new index cannot deliver the order — and the rewritten
    // plan on the remedy clone uses the remedy's index.
    let mut price: Vec<_> = advice
        .remedies
        .iter()
        .filter(|r| r.query == "product_search")
        .cloned()
        .collect();
    assert!(
        price[0]
            .rewritten_sql
            .contains("ORDER BY p.base_price_cents"),
        "{}",
        price[0].rewritten_sql
    );
    advise::remedy_measure::measure(&target, path, &mut price, 1)
        .await
        .unwrap();
    let measured = price[0].measured.as_ref().unwrap();
    assert_eq!(measured.uses_index, Some(true), "{measured:?}");
    assert!(measured.same_rows, "{measured:?}");
    // Drop advice: the single-column tenant_id indexes lead the primary keys;
    // keys and constraint-backing indexes are never proposed.
    assert!(
        advice
            .drops
            .iter()
            .any(|d| d.index == "orders_tenant_id_idx"),
        "{:?}",
        advice.drops
    );
    assert!(
        !advice
            .drops
            .iter()
            .any(|d| d.index.ends_with("_pkey") || d.index.ends_with("_key"))
    );
    // Size: crmbench's estimate (deduplication counted) is closer to a real
    // build than HypoPG's.
    let orders_ix = advice
        .selection
        .chosen
        .iter()
        .find(|c| c.def.table == "orders" && c.def.columns[1].name == "customer_id")
        .unwrap();
    let builder = pg::connect(&target.admin()).await.unwrap();
    builder
        .batch_execute(&orders_ix.def.create_sql("crm"))
        .await
        .unwrap();
    let real: i64 = builder
        .query_one(
            "SELECT pg_relation_size(format('crm.%I', $1::text)::regclass)",
            &[&orders_ix.def.name()],
        )
        .await
        .unwrap()
        .get(0);
    builder
        .batch_execute(&format!("DROP INDEX crm.{}", orders_ix.def.name()))
        .await
        .unwrap();
    let est_err = (orders_ix.estimated_bytes as f64 / real as f64).ln().abs();
    let hypo_err = (orders_ix.hypopg_bytes as f64 / real as f64).ln().abs();
    eprintln!(
        "orders index: real {real} B, estimate {} B, hypopg {} B",
        orders_ix.estimated_bytes, orders_ix.hypopg_bytes
    );
    assert!(
        est_err < (2.0f64).ln(),
        "estimate {} vs real {real}",
        orders_ix.estimated_bytes
    );
    assert!(
        est_err <= hypo_err + 0.05,
        "estimate {} hypopg {} real {real}",
        orders_ix.estimated_bytes,
        orders_ix.hypopg_bytes
    );
    let migration = advise::migration_sql(&advice, "crm");
    assert!(
        migration.contains("outside a transaction block")
            || migration.contains("OUTSIDE a transaction block")
    );
    assert!(migration.contains("NOT indisvalid"));
    assert_eq!(
        migration
            .matches("CREATE INDEX CONCURRENTLY IF NOT EXISTS")
            .count(),
        advice.selection.chosen.len()
    );
    let rollback = advise::rollback_sql(&advice, "crm");
    let first = advice.selection.chosen.first().unwrap().def.name();
    let last = advice.selection.chosen.last().unwrap().def.name();
    assert!(
        rollback.find(&last).unwrap() <= rollback.find(&first).unwrap(),
        "rollback must drop in reverse order"
    );
    // Nothing was built for real, and no hypothetical index is left in a new session.
    let admin = pg::connect(&target.admin()).await.unwrap();
    let built: i64 = admin
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE schemaname = 'crm' AND indexname = $1",
            &[&first],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(built, 0);
    let left: i64 = admin
        .query_one("SELECT count(*) FROM hypopg_list_indexes", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(left, 0);
}

#[tokio::test]
async fn nothing_is_recommended_when_nothing_pays() {
    let target = dataset("advise_none").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(
        &path,
        "name = \"tiny\"\n[context]\nrole = \"crmbench_app\"\ntenant_setting = \"app.current_tenant_id\"\n\
         tenants = \"SELECT t.id::text, 1 FROM crm.tenants t\"\n\
         [[query]]\nname = \"count_stages\"\nkind = \"read\"\nsql = \"SELECT count(*) FROM pipeline_stages\"\n\
         [[query]]\nname = \"by_key\"\nkind = \"read\"\nsql = \"SELECT * FROM orders WHERE id = $1\"\n\
         params = [{ sample = \"orders.id\" }]\n",
    )
    .unwrap();
    let plans = explain::explain(&target, &path, 1).await.unwrap();
    let advice = advise::advise(&target, &path, &plans, None, &OPTS)
        .await
        .unwrap();
    assert!(
        advice.selection.chosen.is_empty(),
        "{:#?}",
        advice.selection.chosen
    );
}

#[tokio::test]
async fn without_hypopg_real_indexes_on_a_clone_reach_the_same_recommendation() {
    let target = dataset("advise_real").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(
        &path,
        "name = \"small\"\n[context]\nrole = \"crmbench_app\"\ntenant_setting = \"app.current_tenant_id\"\n\
         tenants = \"SELECT t.id::text, count(c.id) FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id\"\n\
         [[query]]\nname = \"orders_of\"\nkind = \"read\"\nweight = 5\n\
         sql = \"SELECT id, total FROM orders WHERE customer_id = $1 ORDER BY placed_at DESC LIMIT 20\"\n\
         params = [{ sample = \"customers.id\" }]\n\
         [[query]]\nname = \"by_phone\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE phone = $1\"\nparams = [{ sample = \"customers.phone\" }]\n",
    )
    .unwrap();
    let plans = explain::explain(&target, &path, 1).await.unwrap();
    let hypo = advise::advise(&target, &path, &plans, None, &OPTS)
        .await
        .unwrap();
    let real_opts = AdviseOptions {
        no_hypopg: true,
        keep_hypopg: false,
        ..OPTS
    };
    let real = advise::advise(&target, &path, &plans, None, &real_opts)
        .await
        .unwrap();
    let defs = |a: &advise::Advice| {
        let mut d: Vec<String> = a
            .selection
            .chosen
            .iter()
            .map(|c| c.def.create_sql("crm"))
            .collect();
        d.sort();
        d
    };
    assert!(!defs(&hypo).is_empty());
    assert_eq!(defs(&hypo), defs(&real));
    assert!(real.method.contains("real indexes"), "{}", real.method);
    // The clone is gone and nothing was built on the database itself.
    let clones = common::databases_like(&target, "crmbench_whatif_%").await;
    assert_eq!(clones, 0);
    let name = &real.selection.chosen[0].def.name();
    let built: i64 = pg::connect(&target.admin())
        .await
        .unwrap()
        .query_one(
            "SELECT count(*) FROM pg_indexes WHERE indexname = $1",
            &[name],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(built, 0);
}

/// Write cost: an index that helps a rare read is chosen on a read-only
/// workload, and not once frequent updates of its column must maintain it
/// (they end HOT, so they pay for every index of the table); frequent
/// updates of a column no index covers stay HOT and cost it nothing (issue
/// 16, item 3: the flat per-index charge rejected it there too).
#[tokio::test]
async fn write_cost_counts_what_an_update_maintains() {
    let target = dataset("advise_writes").await;
    let dir = tempfile::tempdir().unwrap();
    let header = "name = \"writes\"\n[context]\nrole = \"crmbench_app\"\ntenant_setting = \"app.current_tenant_id\"\n\
         tenants = \"SELECT t.id::text, count(c.id) FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id\"\n\
         [[query]]\nname = \"by_phone\"\nkind = \"read\"\nweight = 1\n\
         sql = \"SELECT id FROM customers WHERE phone = $1\"\nparams = [{ sample = \"customers.phone\" }]\n";
    let on_customers = |a: &advise::Advice| {
        a.selection
            .chosen
            .iter()
            .filter(|c| c.def.table == "customers")
            .count()
    };
    let read_only = dir.path().join("read.toml");
    std::fs::write(&read_only, header).unwrap();
    let plans = explain::explain(&target, &read_only, 1).await.unwrap();
    let advice = advise::advise(&target, &read_only, &plans, None, &OPTS)
        .await
        .unwrap();
    assert_eq!(on_customers(&advice), 1, "{:#?}", advice.selection);

    let with_update = |set: &str| {
        format!(
            "{header}[[query]]\nname = \"update_customer\"\nkind = \"write\"\nweight = 200\n\
             sql = \"UPDATE customers SET {set} WHERE id = $1\"\n\
             params = [{{ sample = \"customers.id\" }}]\n"
        )
    };
    for (set, expected) in [
        ("phone = phone || ''", 0),
        ("marketing_opt_in = NOT marketing_opt_in", 1),
    ] {
        let path = dir.path().join("heavy.toml");
        std::fs::write(&path, with_update(set)).unwrap();
        let plans = explain::explain(&target, &path, 1).await.unwrap();
        let advice = advise::advise(&target, &path, &plans, None, &OPTS)
            .await
            .unwrap();
        assert_eq!(
            on_customers(&advice),
            expected,
            "SET {set}: {:#?}",
            advice.selection
        );
    }
}

/// A partial index costs an insert only when the inserted row matches its
/// predicate (issue 16, item 3): frequent inserts of delivered orders leave
/// a partial index on pending orders affordable; inserts of pending orders
/// do not.
#[tokio::test]
async fn a_partial_index_pays_only_for_the_inserts_it_holds() {
    let target = dataset("advise_partial_writes").await;
    let dir = tempfile::tempdir().unwrap();
    let workload = |status: &str| {
        format!(
            "name = \"partial\"\n[context]\nrole = \"crmbench_app\"\ntenant_setting = \"app.current_tenant_id\"\n\
             tenants = \"SELECT t.id::text, count(c.id) FROM crm.tenants t LEFT JOIN crm.customers c ON c.tenant_id = t.id GROUP BY t.id\"\n\
             [[query]]\nname = \"pending_of_customer\"\nkind = \"read\"\nweight = 1\n\
             sql = \"SELECT id, total FROM orders WHERE status = 'pending' AND customer_id = $1\"\n\
             params = [{{ sample = \"customers.id\" }}]\n\
             [[query]]\nname = \"record_order\"\nkind = \"write\"\nweight = 200\n\
             sql = \"\"\"INSERT INTO orders (tenant_id, order_number, customer_id, store_id, status, channel, currency, subtotal, total, placed_at)\n\
             SELECT t.id, 'T-' || nextval(pg_get_serial_sequence('crm.orders', 'id')), $2::bigint, $3::bigint, '{status}', 'store', t.currency, 0, 0, now()\n\
             FROM tenants t WHERE t.id = $1::uuid\"\"\"\n\
             params = [{{ tenant = true }}, {{ sample = \"customers.id\" }}, {{ sample = \"stores.id\" }}]\n"
        )
    };
    let partial_on_orders = |a: &advise::Advice| {
        a.selection
            .chosen
            .iter()
            .filter(|c| c.def.table == "orders" && c.def.predicate.is_some())
            .count()
    };
    for (status, expected) in [("delivered", 1), ("pending", 0)] {
        let path = dir.path().join("w.toml");
        std::fs::write(&path, workload(status)).unwrap();
        let plans = explain::explain(&target, &path, 1).await.unwrap();
        let advice = advise::advise(&target, &path, &plans, None, &OPTS)
            .await
            .unwrap();
        assert_eq!(
            partial_on_orders(&advice),
            expected,
            "inserting {status} orders: {:#?} candidates {:#?}",
            advice.selection,
            advice.candidates
        );
    }
}

/// A long advise step is never silent (issue 16, item 13): off a terminal,
/// the what-if search writes plain progress lines with the unit at work,
/// how many there are and the time elapsed.
#[tokio::test]
async fn advise_reports_progress_off_a_terminal() {
    let target = dataset("advise_progress").await;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.toml");
    std::fs::write(
        &path,
        "name = \"progress\"\n[context]\nrole = \"crmbench_app\"\ntenant_setting = \"app.current_tenant_id\"\n\
         tenants = \"SELECT t.id::text, 1 FROM crm.tenants t\"\n\
         [[query]]\nname = \"by_phone\"\nkind = \"read\"\n\
         sql = \"SELECT id FROM customers WHERE phone = $1\"\nparams = [{ sample = \"customers.phone\" }]\n",
    )
    .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .env("CRMBENCH_DATA_DIR", &common::cluster().base)
        .args(["--database", target.database(), "advise", "--workload"])
        .arg(&path)
        .arg("--out")
        .arg(dir.path().join("out"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stderr}");
    let line = stderr
        .lines()
        .find(|l| l.starts_with("advise: what-if search: "))
        .unwrap_or_else(|| panic!("no progress line in:\n{stderr}"));
    assert!(
        line.contains("(candidate 1 alone, ") && line.contains(" elapsed"),
        "{line}"
    );
}
