//! The driver's per-transaction work outside the server: choosing a query and
//! a tenant, generating parameter values, recording a latency, and the paired
//! bootstrap. cargo bench --bench hot_path

use std::collections::HashMap;
use std::hint::black_box;
use std::path::Path;

use criterion::{Criterion, criterion_group, criterion_main};
use crmbench::rng::Prng;
use crmbench::stats;
use crmbench::workload::params::TenantPool;
use crmbench::workload::{Dist, Param, TenantPick, Workload};

fn bench(c: &mut Criterion) {
    let workload = Workload::load(Path::new("workloads/crm.toml")).expect("workload");
    let pool = TenantPool::new(
        (0..1000)
            .map(|i| (format!("tenant-{i}"), 1000.0 / (i + 1) as f64))
            .collect(),
    );
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
    let pools = crmbench::workload::params::Pools::for_bench(pool.clone());
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

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(20);
    targets = bench
}
criterion_main!(benches);
