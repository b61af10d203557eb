//! Fitting the guessed generators to what the source's calls did.
//!
//! `pg_stat_statements` normalizes a statement's constants away (`LIMIT
//! 100`, `interval '1 month'`) and never says which tenant a call ran for,
//! so a captured file guesses them: a page of 20, a window of the last 90
//! days, tenants weighted by size. It does keep each statement's rows and
//! shared blocks, the work its calls did. For every read whose generators
//! include a guess, this probes the candidates — each one executed under
//! `EXPLAIN (ANALYZE, BUFFERS)` for a spread of tenants, inside a rolled-back
//! frame — and keeps the one whose blocks and rows per call come closest to
//! the source's, tenants weighted or uniform. A candidate must beat the
//! first guess by a clear margin to replace it; every fitted query says so
//! in a comment over its `params`.

use std::collections::HashMap;
use std::path::Path;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::rng::{Prng, tag};
use crate::workload::TenantPick;
use crate::workload::context::WorkloadContext;
use crate::workload::frame::TenantFrame;
use crate::workload::params::{TenantPool, Value};

/// What the source's calls did, on average.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PerCall {
    /// Shared blocks hit or read.
    pub blocks: f64,
    /// Rows returned.
    pub rows: f64,
    /// Execution time, ms (0: not compared — the source ran elsewhere).
    pub ms: f64,
}

impl PerCall {
    /// No work.
    pub const ZERO: PerCall = PerCall {
        blocks: 0.0,
        rows: 0.0,
        ms: 0.0,
    };

    /// Add `w` × `other`, figure by figure.
    fn add_scaled(&mut self, w: f64, other: PerCall) {
        self.blocks += w * other.blocks;
        self.rows += w * other.rows;
        self.ms += w * other.ms;
    }
}

/// One parameter's candidate generators; the first is the guess made
/// without the source's figures.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidates {
    /// The parameter's index (0 is `$1`).
    pub param: usize,
    /// Generators (TOML inline tables).
    pub generators: Vec<String>,
}

/// Windows tried for a timestamp compared in a range (days before the
/// dataset's epoch, or today): the last N days, and older spans for the
/// start of a `BETWEEN` (a report's "from" date).
pub const WINDOWS: [[i64; 2]; 7] = [
    [0, 7],
    [0, 30],
    [0, 90],
    [0, 365],
    [0, 1095],
    [90, 365],
    [180, 730],
];
/// Widths tried for an interval added to a timestamp.
pub const INTERVALS: [&str; 6] = ["1 hour", "1 day", "7 days", "1 month", "3 months", "1 year"];
/// Page sizes tried for a `LIMIT`.
pub const PAGES: [i64; 4] = [10, 20, 50, 100];

/// A candidate replaces the first guess only when its distance is this
/// much smaller (|ln ratio| summed over blocks and rows: 0.2 ≈ 20%): the
/// probes are few, and a guess that is as good stays.
const MARGIN: f64 = 0.2;
/// Below this mean time per call the source's time is not compared:
/// EXPLAIN's own work (counting rows and buffers) is a large share of a
/// short call's time, so a probe's time overstates it.
const TIMED_MS: f64 = 0.2;
/// Passes over each statement's guesses.
const SWEEPS: usize = 2;
/// At most this many tenants probed per candidate (spread over the sizes).
const PROBED_TENANTS: usize = 16;
/// Executions per tenant and candidate (other parameters vary per call).
const DRAWS: usize = 3;

/// A query to fit: its place in the file, the candidates, the source's
/// figures; what the fit chose is written back into `params` and `tenant`.
#[derive(Debug, Clone)]
pub struct Fit {
    /// The query's name.
    pub name: String,
    /// Its SQL.
    pub sql: String,
    /// Generators, one per `$n`.
    pub params: Vec<String>,
    /// The guessed parameters' candidates.
    pub candidates: Vec<Candidates>,
    /// The source's figures.
    pub source: PerCall,
    /// Tenant choice.
    pub tenant: TenantPick,
    /// What the probes of the final choice gave (`None`: not probed).
    pub probed: Option<PerCall>,
}

/// |ln| of the ratio of two per-call figures (+1 each: a statement that
/// returns no rows is not infinitely far from one that returns one).
/// The time term counts only where the source's time was measured on this
/// server (`b.ms > 0`) and is long enough to compare ([`TIMED_MS`]);
/// blocks and rows do not depend on the machine.
fn distance(a: PerCall, b: PerCall) -> f64 {
    let d = |x: f64, y: f64, one: f64| ((x + one) / (y + one)).ln().abs();
    let time = if b.ms >= TIMED_MS {
        d(a.ms, b.ms, 0.01)
    } else {
        0.0
    };
    d(a.blocks, b.blocks, 1.0) + d(a.rows, b.rows, 1.0) + time
}

/// The tenants probed (indices into `pool.ids`, largest first): all of
/// them, or the largest [`PROBED_TENANTS`]/2 one by one (with skewed sizes
/// they carry most of a weighted pick, and neighbours in rank differ most
/// there) and the rest spread evenly over the smaller ones.
fn probed_tenants(pool: &TenantPool) -> Vec<usize> {
    let n = pool.ids.len();
    if n <= PROBED_TENANTS {
        return (0..n).collect();
    }
    let top = PROBED_TENANTS / 2;
    let spread = PROBED_TENANTS - top;
    let mut picked: Vec<usize> = (0..top).collect();
    picked.extend((1..=spread).map(|k| top - 1 + k * (n - top) / spread));
    picked.dedup();
    picked
}

/// The expected per-call figures when tenants are picked `how`, from each
/// probed tenant's mean. With more tenants than probed, each probed tenant
/// stands for its stratum (the tenants nearest it in size order) and
/// weighs as their chances added up: weighing it by its own chance alone
/// would make the largest tenant, always probed, count several times over.
fn expected(pool: &TenantPool, probed: &[(usize, PerCall)], how: TenantPick) -> PerCall {
    let p = pool.probabilities(how);
    let mut weight = vec![0.0; probed.len()];
    for (i, pi) in p.iter().enumerate() {
        // The probed tenant nearest in rank (probed is in rank order).
        let nearest = probed
            .iter()
            .enumerate()
            .min_by_key(|(_, (r, _))| r.abs_diff(i))
            .map(|(k, _)| k);
        if let Some(k) = nearest {
            weight[k] += pi;
        }
    }
    let total: f64 = weight.iter().sum();
    let mut out = PerCall::ZERO;
    if total <= 0.0 {
        return out;
    }
    for ((_, m), w) in probed.iter().zip(&weight) {
        out.add_scaled(w / total, *m);
    }
    out
}

/// One variant of a query: which candidate of which parameter it tries.
struct Variant {
    fit: usize,
    choice: Option<(usize, usize)>,
    params: Vec<String>,
}

/// Fit `fits` on `target`: rounds of probes, one guessed parameter per
/// round (the earlier rounds' choices kept), the tenant choice in each,
/// twice over. `render` writes a workload file of the given queries (name, SQL,
/// params) with the captured file's context; the probe file is written
/// beside `out` and removed.
pub async fn fit(
    target: &Target,
    out: &Path,
    fits: &mut [Fit],
    render: impl Fn(&[(String, String, Vec<String>)]) -> String,
) -> Result<()> {
    let rounds = fits
        .iter()
        .map(|f| f.candidates.len())
        .max()
        .unwrap_or(0)
        .max(1);
    let probe_path = out.with_extension("probe.toml");
    // A second sweep over the statements with several guesses: a choice
    // made early is made again once the later ones are known.
    let steps: Vec<(usize, usize)> = (0..SWEEPS)
        .flat_map(|sweep| (0..rounds).map(move |round| (sweep, round)))
        .collect();
    let total = steps.len();
    for (step, &(sweep, round)) in steps.iter().enumerate() {
        let mut variants = Vec::new();
        for (k, f) in fits.iter().enumerate() {
            if sweep > 0 && f.candidates.len() < 2 {
                continue;
            }
            match f.candidates.get(round) {
                Some(c) => {
                    for (j, g) in c.generators.iter().enumerate() {
                        let mut params = f.params.clone();
                        params[c.param] = g.clone();
                        variants.push(Variant {
                            fit: k,
                            choice: Some((c.param, j)),
                            params,
                        });
                    }
                }
                None if round == 0 && sweep == 0 => variants.push(Variant {
                    fit: k,
                    choice: None,
                    params: f.params.clone(),
                }),
                None => {}
            }
        }
        if variants.is_empty() {
            continue;
        }
        let queries: Vec<(String, String, Vec<String>)> = variants
            .iter()
            .enumerate()
            .map(|(v, x)| {
                (
                    format!("{}__{v}", fits[x.fit].name),
                    fits[x.fit].sql.clone(),
                    x.params.clone(),
                )
            })
            .collect();
        std::fs::write(&probe_path, render(&queries))
            .map_err(|e| Error::io("writing", &probe_path, e))?;
        let measured = probe(target, &probe_path, step, total).await;
        let _ = std::fs::remove_file(&probe_path);
        let (pool, measured) = measured?;
        choose(fits, &variants, &pool, &measured);
    }
    Ok(())
}

/// Keep, for each fit, the variant and tenant choice closest to the source
/// (the current ones unless another is closer by [`MARGIN`]).
fn choose(
    fits: &mut [Fit],
    variants: &[Variant],
    pool: &TenantPool,
    measured: &[Option<Vec<(usize, PerCall)>>],
) {
    let modes: &[TenantPick] = if pool.ids.len() > 1 {
        &[TenantPick::Weighted, TenantPick::Uniform]
    } else {
        &[TenantPick::Weighted]
    };
    let mut best: HashMap<usize, (f64, usize, TenantPick, PerCall)> = HashMap::new();
    for (v, variant) in variants.iter().enumerate() {
        let Some(per_tenant) = &measured[v] else {
            continue;
        };
        let f = &fits[variant.fit];
        let current = variant
            .choice
            .is_none_or(|(p, j)| f.params[p] == f.candidates_of(p)[j]);
        for &mode in modes {
            let got = expected(pool, per_tenant, mode);
            let penalty = if current && mode == f.tenant {
                0.0
            } else {
                MARGIN
            };
            let score = distance(got, f.source) + penalty;
            let slot = best
                .entry(variant.fit)
                .or_insert((f64::INFINITY, v, mode, got));
            if score < slot.0 {
                *slot = (score, v, mode, got);
            }
        }
    }
    for (k, (_, v, mode, got)) in best {
        let f = &mut fits[k];
        f.params.clone_from(&variants[v].params);
        f.tenant = mode;
        f.probed = Some(got);
    }
}

impl Fit {
    fn candidates_of(&self, param: usize) -> &[String] {
        self.candidates
            .iter()
            .find(|c| c.param == param)
            .map(|c| c.generators.as_slice())
            .unwrap_or_default()
    }
}

/// Run every query of the probe file for the probed tenants: per query,
/// each tenant's mean blocks and rows per call (`None`: it failed).
async fn probe(
    target: &Target,
    path: &Path,
    step: usize,
    steps: usize,
) -> Result<(TenantPool, Vec<Option<Vec<(usize, PerCall)>>>)> {
    let ctx = WorkloadContext::prepare(target, path).await?;
    let (client, frame) = probe_session(target, &ctx).await?;
    let pool = ctx.pools().tenants.clone();
    let tenants = probed_tenants(&pool);
    let queries = &ctx.workload().queries;
    crate::console::err_line(format!(
        "capture: fitting guessed values to the source's blocks and rows per call \
         (round {} of at most {steps}: {} candidates × {} tenants)",
        step + 1,
        queries.len(),
        tenants.len()
    ));
    let mut out = Vec::with_capacity(queries.len());
    for (qi, query) in queries.iter().enumerate() {
        let mut per_tenant = Vec::with_capacity(tenants.len());
        let mut failed = false;
        for &t in &tenants {
            let tenant = pool.ids[t].as_str();
            let mut mean = PerCall::ZERO;
            for draw in 0..DRAWS {
                let mut rng =
                    Prng::for_parts(&[tag("calibrate"), qi as u64, t as u64, draw as u64]);
                match explain_once(&ctx, &frame, &client, query, tenant, &mut rng).await? {
                    Some(m) => mean.add_scaled(1.0 / DRAWS as f64, m),
                    None => failed = true,
                }
            }
            per_tenant.push((t, mean));
        }
        out.push((!failed).then_some(per_tenant));
    }
    Ok((pool, out))
}

/// The probes' session: as the administrator with `pg_stat_statements`
/// not tracking it, taking the workload's role inside each frame, so the
/// probes never show up as the application's statements in a later
/// capture; as the workload's role itself where the administrator may not
/// turn tracking off (a least-privilege login).
async fn probe_session(target: &Target, ctx: &WorkloadContext) -> Result<(Client, TenantFrame)> {
    if let Some(role) = ctx.workload().context.role.as_deref() {
        let admin = pg::connect(&target.admin()).await?;
        if admin
            .batch_execute("SET pg_stat_statements.track = 'none'")
            .await
            .is_ok()
        {
            return Ok((admin, ctx.frame().clone().with_role(Some(role))));
        }
    }
    Ok((
        pg::connect(&ctx.spec_on(target)).await?,
        ctx.frame().clone(),
    ))
}

/// One execution of `query`'s (single) statement under `EXPLAIN (ANALYZE,
/// BUFFERS)` inside the tenant's frame, rolled back: its blocks and rows,
/// or `None` when the statement failed.
async fn explain_once(
    ctx: &WorkloadContext,
    frame: &TenantFrame,
    client: &Client,
    query: &crate::workload::Query,
    tenant: &str,
    rng: &mut Prng,
) -> Result<Option<PerCall>> {
    let [st] = query.statements.as_slice() else {
        return Ok(None);
    };
    let context = format!("fitting `{}`", query.name);
    frame.begin(client, tenant, &context).await?;
    let refs = HashMap::new();
    let values: Vec<Value> = st
        .params
        .iter()
        .map(|p| ctx.pools().value(p, rng, tenant, &refs))
        .collect();
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    let sql = format!(
        "EXPLAIN (ANALYZE, BUFFERS, TIMING OFF, FORMAT JSON) {}",
        st.sql
    );
    let got = client.query_one(&sql, &params).await;
    frame.rollback(client, &context).await?;
    let Ok(row) = got else {
        return Ok(None);
    };
    let json: serde_json::Value = row.get(0);
    Ok(per_call(&json))
}

/// The plan root's blocks (shared hit + read) and rows, and the execution
/// time (`TIMING OFF`: no per-node clock reads inflating it).
fn per_call(json: &serde_json::Value) -> Option<PerCall> {
    let top = json.get(0)?;
    let plan = top.get("Plan")?;
    let num = |k: &str| plan.get(k).and_then(serde_json::Value::as_f64);
    Some(PerCall {
        blocks: num("Shared Hit Blocks").unwrap_or(0.0) + num("Shared Read Blocks").unwrap_or(0.0),
        rows: num("Actual Rows")? * num("Actual Loops").unwrap_or(1.0),
        ms: top
            .get("Execution Time")
            .and_then(serde_json::Value::as_f64)
            .unwrap_or(0.0),
    })
}

/// The comment over a fitted query's `params`; `item` says what was chosen
/// for parameter `k` (from 0) with generator `g`, as the file has it
/// (renumbered, or written in).
pub fn note(f: &Fit, item: impl Fn(usize, &str) -> String) -> Option<String> {
    let got = f.probed?;
    let mut chosen: Vec<String> = f
        .candidates
        .iter()
        .map(|c| item(c.param, &f.params[c.param]))
        .collect();
    if f.tenant == TenantPick::Uniform {
        chosen.push("tenants uniform".into());
    }
    let chosen = if chosen.is_empty() {
        "tenants weighted by size".to_string()
    } else {
        chosen.join(", ")
    };
    let time = |p: PerCall| {
        if f.source.ms >= TIMED_MS {
            format!(", {:.3} ms", p.ms)
        } else {
            String::new()
        }
    };
    Some(format!(
        "fitted to the source's {:.0} blocks, {:.1} rows{} per call (pg_stat_statements keeps \
         no constants nor tenants): {chosen}; the probes gave {:.0} blocks, {:.1} rows{}",
        f.source.blocks,
        f.source.rows,
        time(f.source),
        got.blocks,
        got.rows,
        time(got)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pc(blocks: f64, rows: f64) -> PerCall {
        PerCall {
            blocks,
            rows,
            ms: 0.0,
        }
    }

    #[test]
    fn distance_is_symmetric_in_log_ratio() {
        assert!(distance(pc(99.0, 0.0), pc(99.0, 0.0)).abs() < 1e-12);
        let a = distance(pc(199.0, 0.0), pc(99.0, 0.0));
        let b = distance(pc(99.0, 0.0), pc(199.0, 0.0));
        assert!((a - b).abs() < 1e-12 && (a - 2f64.ln()).abs() < 1e-12);
    }

    /// Uniform picks weigh a small tenant as much as a big one: a query
    /// whose blocks grow with the tenant's size costs less on average.
    #[test]
    fn expected_blocks_follow_the_tenant_choice() {
        let pool = TenantPool::new(vec![("big".into(), 90.0), ("small".into(), 10.0)]);
        let probed = [(0, pc(900.0, 1.0)), (1, pc(100.0, 1.0))];
        let w = expected(&pool, &probed, TenantPick::Weighted);
        let u = expected(&pool, &probed, TenantPick::Uniform);
        assert!((w.blocks - 820.0).abs() < 1e-9, "{w:?}");
        assert!((u.blocks - 500.0).abs() < 1e-9, "{u:?}");
    }

    /// 50 tenants, the largest a fifth of the weight, 16 probed: the
    /// largest counts for its own share, not for a fifth of 16 probes'.
    #[test]
    fn a_probed_tenant_weighs_as_its_stratum() {
        let mut rows = vec![("big".to_string(), 49.0)];
        rows.extend((1..50).map(|i| (format!("t{i}"), 4.0)));
        let pool = TenantPool::new(rows);
        let probed: Vec<(usize, PerCall)> = probed_tenants(&pool)
            .into_iter()
            .map(|i| (i, pc(if i == 0 { 1000.0 } else { 0.0 }, 0.0)))
            .collect();
        // big: 49 of 245 = 20% of the weight (probed alone, its stratum is
        // itself); weighed by its own chance among the probed it was 45%.
        let w = expected(&pool, &probed, TenantPick::Weighted);
        assert!((w.blocks - 200.0).abs() < 1e-6, "{w:?}");
        let u = expected(&pool, &probed, TenantPick::Uniform);
        assert!((u.blocks - 20.0).abs() < 1e-6, "{u:?}");
    }

    /// Many tenants: the 8 largest, then 8 spread down to the smallest.
    #[test]
    fn probed_tenants_spread_over_the_sizes() {
        let pool = TenantPool::new(
            (0..100)
                .map(|i| (format!("t{i}"), 1.0 + i as f64))
                .collect(),
        );
        let p = probed_tenants(&pool);
        assert_eq!(p.len(), PROBED_TENANTS);
        assert_eq!(p[..9], [0, 1, 2, 3, 4, 5, 6, 7, 18]);
        assert_eq!(p[p.len() - 1], 99);
    }

    fn fit_of(source: PerCall) -> Fit {
        Fit {
            name: "q".into(),
            sql: "SELECT 1".into(),
            params: vec!["a".into()],
            candidates: vec![Candidates {
                param: 0,
                generators: vec!["a".into(), "b".into()],
            }],
            source,
            tenant: TenantPick::Weighted,
            probed: None,
        }
    }

    /// The candidate whose figures match the source's wins; one only a
    /// little closer than the first guess does not replace it.
    #[test]
    fn choose_keeps_the_guess_unless_another_is_clearly_closer() {
        let pool = TenantPool::new(vec![("big".into(), 90.0), ("small".into(), 10.0)]);
        let variants = |_: ()| {
            vec![
                Variant {
                    fit: 0,
                    choice: Some((0, 0)),
                    params: vec!["a".into()],
                },
                Variant {
                    fit: 0,
                    choice: Some((0, 1)),
                    params: vec!["b".into()],
                },
            ]
        };
        let flat = |b: f64| Some(vec![(0, pc(b, 5.0)), (1, pc(b, 5.0))]);
        // b matches exactly, a is 2× off.
        let mut fits = [fit_of(pc(100.0, 5.0))];
        choose(&mut fits, &variants(()), &pool, &[flat(201.0), flat(100.0)]);
        assert_eq!(fits[0].params, ["b"]);
        assert_eq!(fits[0].tenant, TenantPick::Weighted);
        // b is 5% closer: the guess stays.
        let mut fits = [fit_of(pc(100.0, 5.0))];
        choose(&mut fits, &variants(()), &pool, &[flat(110.0), flat(104.0)]);
        assert_eq!(fits[0].params, ["a"]);
        // Blocks that grow with the tenant: the source's figure is the
        // uniform average, so the fit picks uniform tenants.
        let mut fits = [fit_of(pc(500.0, 1.0))];
        let sized = Some(vec![(0, pc(900.0, 1.0)), (1, pc(100.0, 1.0))]);
        choose(&mut fits, &variants(())[..1], &pool, &[sized]);
        assert_eq!(fits[0].tenant, TenantPick::Uniform);
        let note = note(&fits[0], |k, g| format!("${} {g}", k + 1)).unwrap();
        assert!(
            note.contains("tenants uniform") && note.contains("$1 a"),
            "{note}"
        );
    }
}
