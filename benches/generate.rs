//! Row generation and binary encoding per table, so a regression in the
//! generator itself shows (the server is the load's bottleneck; this is the
//! client's side of it). Prints rows/s; the "encode" group also shows bytes/s.
//!
//! cargo bench --bench generate

use std::hint::black_box;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use crmbench::generate::encode::CopyEncoder;
use crmbench::generate::plan::Plan;
use crmbench::generate::rows::{self, CopyRow, TableSpec, catalog, people, pipeline, sales};

/// Encode rows the way the loader does; returns bytes.
fn encode<R: CopyRow>(spec: &TableSpec, rows: impl Iterator<Item = R>) -> usize {
    let mut out = CopyEncoder::new(*spec);
    let mut bytes = 0;
    for row in rows {
        row.encode(&mut out).expect("the generators' rows encode");
        if out.full() {
            bytes += black_box(out.take()).len();
        }
    }
    bytes + out.finish().len()
}

fn bench(c: &mut Criterion) {
    let plan = Plan::new(1, 0.01);
    let t = &plan.tenants[0];
    macro_rules! table {
        ($name:expr, $spec:expr, $gen:path, $n:expr) => {{
            let mut g = c.benchmark_group($name);
            g.throughput(Throughput::Elements($n));
            g.bench_function("generate", |b| {
                b.iter(|| $gen(&plan, t).map(|r| black_box(r)).count())
            });
            let bytes = encode(&$spec, $gen(&plan, t));
            g.throughput(Throughput::Bytes(bytes as u64));
            g.bench_function("generate+encode", |b| {
                b.iter(|| black_box(encode(&$spec, $gen(&plan, t))))
            });
            g.finish();
        }};
    }
    table!(
        "customers",
        people::CUSTOMERS,
        people::customers,
        t.n.customers
    );
    table!(
        "products",
        catalog::PRODUCTS,
        catalog::products,
        t.n.products
    );
    table!("orders", sales::ORDERS, sales::orders, t.n.orders);
    table!(
        "order_items",
        sales::ORDER_ITEMS,
        sales::order_items,
        t.n.order_items
    );
    table!("payments", sales::PAYMENTS, sales::payments, t.n.payments);
    table!(
        "interactions",
        pipeline::INTERACTIONS,
        pipeline::interactions,
        t.n.interactions
    );
    table!("audit_log", pipeline::AUDIT, pipeline::audit, t.n.audit_log);
    let _ = rows::tenants::SPEC;
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10);
    targets = bench
}
criterion_main!(benches);
