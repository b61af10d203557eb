//! The driver's per-transaction work outside the server: the pieces
//! (choosing a query and a tenant, generating parameter values, recording a
//! latency) and the whole client-side path of one transaction as a driver
//! client runs it (`run::hotpath`: pick, draw into reused buffers, bind each
//! pipelined segment, record under the thread's mutex), with the way it was
//! done before beside it, and the ticker's per-interval slot swap against
//! building a new slot (what used to happen under the thread's mutex).
//! cargo bench --bench hot_path

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;

use criterion::{Criterion, criterion_group, criterion_main};
use crmbench::rng::Prng;
use crmbench::run::driver::Slot;
use crmbench::run::hotpath::ClientPath;
use crmbench::stats;
use crmbench::workload::params::{Pools, TenantPool, Value};
use crmbench::workload::{Dist, Param, TenantPick, Workload};

fn tenants() -> TenantPool {
    TenantPool::new(
        (0..1000)
            .map(|i| (format!("tenant-{i}"), 1000.0 / (i + 1) as f64))
            .collect(),
    )
}

/// Pools for `workload` with a 1,000-value pool behind every sample parameter.
fn pools_for(workload: &Workload) -> Pools {
    let mut pools = Pools::for_bench(tenants());
    for q in &workload.queries {
        for st in &q.statements {
            for p in &st.params {
                if let Param::Sample { table, column, .. } = p {
                    let values = (0..1000).map(|i| format!("{i}")).collect();
                    pools = pools.with_bench_sample(table, column, values);
                }
            }
        }
    }
    pools
}

fn pieces(c: &mut Criterion, workload: &Workload) {
    let pool = tenants();
    let mut rng = Prng::for_parts(&[1]);
    c.bench_function("pick query + tenant", |b| {
        let total: u64 = workload.queries.iter().map(|q| u64::from(q.weight)).sum();
        b.iter(|| {
            let pick = rng.below(total);
            black_box(pick);
            black_box(pool.pick(TenantPick::Weighted, &mut rng));
        })
    });
    let params = [
        Param::Int {
            lo: 1,
            hi: 1_000_000,
            dist: Dist::Uniform,
        },
        Param::Int {
            lo: 1,
            hi: 1_000_000,
            dist: Dist::Zipf,
        },
        Param::Float {
            lo: 100.0,
            hi: 5000.0,
            dist: Dist::Gaussian,
        },
        Param::Choice(vec!["a".into(), "b".into(), "c".into()]),
    ];
    let empty = HashMap::new();
    let pools = Pools::for_bench(pool.clone());
    for p in &params {
        c.bench_function(
            &format!("param {p:?}").chars().take(40).collect::<String>(),
            |b| b.iter(|| black_box(pools.value(p, &mut rng, "tenant-1", &empty))),
        );
    }
    let mut h = stats::new_hist();
    c.bench_function("histogram record", |b| {
        b.iter(|| stats::record(&mut h, black_box(137 + rng.below(5000))))
    });
}

/// Draw and bind as the driver did before: the tenant copied to a String,
/// a new `Vec<Vec<Value>>` per transaction, every value cloned to bind it.
fn draw_bind_before(workload: &Workload, pools: &Pools, rng: &mut Prng, total: u64) -> usize {
    let pick = rng.below(total);
    let qi = workload
        .queries
        .iter()
        .scan(0u64, |acc, q| {
            *acc += u64::from(q.weight);
            Some(*acc)
        })
        .position(|w| w > pick)
        .unwrap_or(0);
    let query = &workload.queries[qi];
    let empty = HashMap::new();
    let (tenant, _) = pools.tenants.pick_classed(query.tenant, rng);
    let tenant = tenant.to_string();
    let values: Vec<Vec<Value>> = query
        .statements
        .iter()
        .map(|st| {
            st.params
                .iter()
                .map(|p| match p {
                    Param::Ref(_) => Value::Null,
                    _ => pools.value(p, rng, &tenant, &empty),
                })
                .collect()
        })
        .collect();
    let bound: Vec<Vec<Value>> = values.iter().map(|v| v.to_vec()).collect();
    bound.iter().map(Vec::len).sum()
}

fn whole_path(c: &mut Criterion, workload: &Arc<Workload>) {
    let pools = Arc::new(pools_for(workload));
    for paired in [false, true] {
        let mut path = ClientPath::new(workload.clone(), pools.clone(), paired);
        let name = if paired { "paired" } else { "one side" };
        c.bench_function(&format!("transaction path, crm.toml, {name}"), |b| {
            b.iter(|| black_box(path.transaction()))
        });
        c.bench_function(&format!("tick: swap a reset slot, {name}"), |b| {
            b.iter(|| black_box(path.tick()))
        });
        c.bench_function(&format!("tick before: Slot::new, {name}"), |b| {
            b.iter(|| black_box(Slot::new(workload, paired)))
        });
    }
    let total: u64 = workload.queries.iter().map(|q| u64::from(q.weight)).sum();
    let mut rng = Prng::for_parts(&[1]);
    c.bench_function(
        "draw + bind before (String, Vec<Vec<Value>>, clones)",
        |b| b.iter(|| black_box(draw_bind_before(workload, &pools, &mut rng, total))),
    );
}

fn bench(c: &mut Criterion) {
    let workload = Arc::new(Workload::load(Path::new("workloads/crm.toml")).expect("workload"));
    pieces(c, &workload);
    whole_path(c, &workload);
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
