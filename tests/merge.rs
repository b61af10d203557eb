//! Load from several machines (`run --worker K/N --start-at T`, `merge`):
//! the merged histograms are exactly the sum of the workers' (counts and
//! every bucket, totals and each interval), the workers' parameter streams
//! together are one run's streams for the same clients and seed, a paired
//! run's ratios come back from every worker's pairs, and folders that do not
//! belong together are refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crmbench::merge::{self, WorkerRun};
use crmbench::pg::Target;
use crmbench::results::Results;
use crmbench::run::{self, worker::WorkerSlice};
use crmbench::runfolder::RunFolder;
use crmbench::stats::{self, Hist};

const CLIENTS: usize = 4;

async fn dataset(name: &str) -> Target {
    common::generated(name, 0.002, 5).await
}

/// Run every worker of `n` at once (as separate machines would), each into
/// its own folder under `dir`.
async fn workers(target: &Target, n: usize, self_check: bool, dir: &Path) -> Vec<PathBuf> {
    // Far enough ahead for every worker's clone, checks and sampling while
    // the binary's other tests run too: a start passed by over a second is
    // refused (a 1.5 s lead was 4.3 s late in CI, and failed under load).
    let start = chrono::Utc::now() + chrono::Duration::seconds(15);
    let runs = (0..n).map(|k| {
        let mut opts = common::options("workloads/crm.toml", 2.0);
        opts.clients = CLIENTS;
        opts.self_check = self_check;
        opts.worker = Some(WorkerSlice { index: k, count: n });
        opts.start_at = Some(start);
        opts.trace_params = 25;
        // Each on a clone of the same data: the generators draw from what
        // the database holds (ids up to the largest), and writes move that.
        opts.fresh = true;
        async move { run::run(target, &opts).await.unwrap() }
    });
    let outcomes = futures_util::future::join_all(runs).await;
    outcomes
        .iter()
        .enumerate()
        .map(|(k, o)| {
            let folder = dir.join(format!("worker-{k}"));
            RunFolder::open_or_create(&folder, Default::default())
                .unwrap()
                .write(&o.results)
                .unwrap();
            folder
        })
        .collect()
}

fn hist(encoded: &str) -> Hist {
    stats::decode(encoded).unwrap()
}

/// Every bucket of a histogram, as (highest equivalent value, count).
fn buckets(h: &Hist) -> Vec<(u64, u64)> {
    h.iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

fn sum(encoded: &[&str]) -> Hist {
    let mut total = stats::new_hist();
    for e in encoded {
        total.add(hist(e)).unwrap();
    }
    total
}

fn read(folders: &[PathBuf]) -> Vec<WorkerRun> {
    merge::read(folders).unwrap()
}

#[tokio::test]
async fn workers_add_up_exactly_and_replay_one_runs_streams() {
    let target = dataset("merge_streams").await;
    let dir = tempfile::tempdir().unwrap();
    let folders = workers(&target, 2, false, dir.path()).await;
    let runs = read(&folders);
    let merged = merge::merge(read(&folders)).unwrap();
    assert_eq!(merged.merged.as_ref().unwrap().workers, 2);
    assert!(merged.worker.is_none());
    for (i, q) in merged.queries.iter().enumerate() {
        let parts: Vec<&Results> = runs.iter().map(|r| &r.results).collect();
        let whole = sum(&parts
            .iter()
            .map(|r| r.queries[i].baseline.histogram.as_str())
            .collect::<Vec<_>>());
        let got = hist(&q.baseline.histogram);
        assert_eq!(buckets(&got), buckets(&whole), "{}: buckets", q.name);
        let count: u64 = parts.iter().map(|r| r.queries[i].baseline.count).sum();
        assert_eq!(q.baseline.count, count, "{}", q.name);
        assert_eq!(got.len(), count, "{}", q.name);
        // The series: every interval's histogram added up is the whole one
        // (nothing lost or counted twice by the wall-clock alignment).
        let series = sum(&q
            .baseline
            .interval_histograms
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>());
        assert_eq!(buckets(&series), buckets(&whole), "{}: series", q.name);
        let points: u64 = q.baseline.intervals.iter().map(|p| p.count).sum();
        assert_eq!(points, count, "{}: series counts", q.name);
        for (k, st) in q.statements.iter().enumerate() {
            let whole = sum(&parts
                .iter()
                .map(|r| r.queries[i].statements[k].histogram.as_str())
                .collect::<Vec<_>>());
            assert_eq!(buckets(&hist(&st.histogram)), buckets(&whole));
        }
    }
    // The workers ran disjoint clients that together are all of them.
    let ids: Vec<Vec<usize>> = runs
        .iter()
        .map(|r| r.results.worker.as_ref().unwrap().clients.clone())
        .collect();
    assert_eq!(ids, vec![vec![0, 2], vec![1, 3]]);
    // One run of all clients on one machine: the same streams per client.
    let mut opts = common::options("workloads/crm.toml", 1.0);
    opts.clients = CLIENTS;
    opts.trace_params = 25;
    opts.fresh = true;
    let single = run::run(&target, &opts).await.unwrap().results;
    assert_same_streams(&merged.param_trace, &single.param_trace);
    refusals(&folders);
    cli_merge(&folders, dir.path());
}

/// Each client's transactions, as far as both runs got, are the same.
fn assert_same_streams(a: &BTreeMap<usize, Vec<String>>, b: &BTreeMap<usize, Vec<String>>) {
    assert_eq!(
        a.keys().collect::<Vec<_>>(),
        (0..CLIENTS).collect::<Vec<_>>().iter().collect::<Vec<_>>()
    );
    assert_eq!(a.keys().collect::<Vec<_>>(), b.keys().collect::<Vec<_>>());
    for (client, lines) in a {
        let other = &b[client];
        let common = lines.len().min(other.len());
        assert!(common >= 10, "client {client}: only {common} transactions");
        assert_eq!(lines[..common], other[..common], "client {client}");
    }
}

/// Sets that are not one run's workers are refused, naming why.
fn refusals(folders: &[PathBuf]) {
    let err = |runs: Vec<WorkerRun>| merge::merge(runs).unwrap_err().to_string();
    let e = err(read(&folders[..1]));
    assert!(e.contains("workers 1 of 2 are missing"), "{e}");
    let e = err(read(&[folders[0].clone(), folders[0].clone()]));
    assert!(e.contains("worker 0 appears twice"), "{e}");
    let mut other_seed = read(folders);
    other_seed[1].results.seed += 1;
    let e = err(other_seed);
    assert!(e.contains("differ in seed"), "{e}");
    let mut other_workload = read(folders);
    other_workload[1].results.workload.hash = "0".into();
    assert!(err(other_workload).contains("workload"));
    let mut other_target = read(folders);
    other_target[1].results.server.target = "host=elsewhere".into();
    assert!(err(other_target).contains("server target"));
    let mut not_worker = read(folders);
    not_worker[0].results.worker = None;
    assert!(err(not_worker).contains("not a worker's folder"));
}

/// The command: merges into --out, and prints the merged table.
fn cli_merge(folders: &[PathBuf], dir: &Path) {
    let out = dir.join("merged");
    let o = Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .arg("merge")
        .args(folders)
        .arg("--out")
        .arg(&out)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        o.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(stdout.contains("merged 2 workers (4 clients)"), "{stdout}");
    let back: Results = RunFolder::open(&out).unwrap().read().unwrap();
    assert_eq!(back.merged.as_ref().unwrap().workers, 2);
    let refused = Command::new(env!("CARGO_BIN_EXE_crmbench"))
        .arg("merge")
        .arg(&folders[0])
        .arg("--out")
        .arg(dir.join("refused"))
        .output()
        .unwrap();
    assert_eq!(refused.status.code(), Some(2));
    assert!(!dir.join("refused").join("results.json").exists());
}

#[tokio::test]
async fn paired_workers_ratios_come_from_every_workers_pairs() {
    let target = dataset("merge_paired").await;
    let dir = tempfile::tempdir().unwrap();
    let folders = workers(&target, 2, true, dir.path()).await;
    let runs = read(&folders);
    let merged = merge::merge(read(&folders)).unwrap();
    let (mut compared, mut enough) = (0, 0);
    for (i, q) in merged.queries.iter().enumerate() {
        let pairs: usize = runs
            .iter()
            .flat_map(|r| &r.results.queries[i].pair_blocks)
            .map(|b| b.pairs.len())
            .sum();
        enough += usize::from(pairs >= 20);
        let Some(r) = &q.ratios else {
            continue;
        };
        compared += 1;
        assert_eq!(r.pairs, pairs, "{}", q.name);
        assert!(r.p50.lo <= r.p50.ratio && r.p50.ratio <= r.p50.hi);
        let candidate = q.candidate.as_ref().unwrap();
        let whole: u64 = runs
            .iter()
            .map(|r| r.results.queries[i].candidate.as_ref().unwrap().count)
            .sum();
        assert_eq!(candidate.count, whole, "{}", q.name);
    }
    assert!(compared >= 3, "only {compared} queries had ratios");
    // Tenant classes come back from every worker's pairs (each pair keeps
    // its class), and they join the family as in one run: each class with
    // 20 pairs or more of a query whose tenants span at least two.
    let (mut family, mut classed) = (0, 0);
    for (i, q) in merged.queries.iter().enumerate() {
        let blocks: Vec<_> = runs
            .iter()
            .flat_map(|r| &r.results.queries[i].pair_blocks)
            .collect();
        if blocks.iter().map(|b| b.pairs.len()).sum::<usize>() < 20 {
            continue;
        }
        let mut per = [0usize; 3];
        for c in blocks.iter().flat_map(|b| &b.classes) {
            if let Some(n) = per.get_mut(usize::from(*c)) {
                *n += 1;
            }
        }
        family += 1;
        if per.iter().filter(|n| **n > 0).count() < 2 {
            continue;
        }
        classed += 1;
        family += per.iter().filter(|n| **n >= 20).count();
        let got: Vec<(&str, usize)> = q
            .classes
            .iter()
            .map(|c| (c.class.as_str(), c.pairs))
            .collect();
        let want: Vec<(&str, usize)> = ["big", "mid", "small"]
            .into_iter()
            .zip(per)
            .filter(|(_, n)| *n > 0)
            .collect();
        assert_eq!(got, want, "{}", q.name);
    }
    assert!(classed >= 1, "no query's pairs carried tenant classes");
    assert!(family >= enough);
    // The family level is that of all workers' pairs, as one run's is.
    let level = merged
        .queries
        .iter()
        .find_map(|q| q.ratios.as_ref())
        .unwrap()
        .level;
    assert!(
        (level - (1.0 - 0.05 / family as f64)).abs() < 1e-12,
        "{level} for a family of {family}"
    );
}

/// The examples agree with themselves and with the flags: N is the same
/// everywhere, K is the engine's own index, the start time is shared.
#[test]
fn worker_examples_are_consistent() {
    let k8s = std::fs::read_to_string("examples/k8s/crmbench-workers.yaml").unwrap();
    let value = |key: &str| -> String {
        let line = k8s
            .lines()
            .find(|l| l.trim_start().starts_with(key))
            .unwrap();
        line.split(':')
            .nth(1)
            .unwrap()
            .trim()
            .trim_matches('"')
            .to_string()
    };
    let n = value("completions:");
    assert_eq!(value("parallelism:"), n);
    assert!(k8s.contains("completionMode: Indexed"));
    let workers = k8s
        .lines()
        .skip_while(|l| !l.contains("name: WORKERS"))
        .nth(1)
        .unwrap();
    assert!(workers.contains(&format!("\"{n}\"")), "{workers}");
    assert!(k8s.contains(r#"--worker "${JOB_COMPLETION_INDEX}/${WORKERS}""#));
    assert!(k8s.contains(r#"--start-at "${START_AT}""#));
    assert!(k8s.contains("metadata.annotations['crmbench/start-at']"));
    // The connection comes from a Secret; no password in the manifest itself.
    assert!(
        k8s.lines()
            .filter(|l| !l.trim_start().starts_with('#'))
            .all(|l| !l.to_lowercase().contains("password")),
        "a password in the manifest"
    );
    assert!(k8s.contains("secretRef:"));
    let gha = std::fs::read_to_string("examples/github-actions-workers.yml").unwrap();
    let n: usize = gha
        .lines()
        .find_map(|l| l.trim().strip_prefix("WORKERS:"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let matrix = format!(
        "index: [{}]",
        (0..n).map(|k| k.to_string()).collect::<Vec<_>>().join(", ")
    );
    assert!(gha.contains(&matrix), "{matrix}");
    assert!(gha.contains("--worker ${{ matrix.index }}/${{ env.WORKERS }}"));
    assert!(gha.contains("crmbench merge worker-*"));
}
