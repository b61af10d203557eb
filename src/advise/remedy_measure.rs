//! Measuring remedies (`advise --verify`): the original statement on the
//! database, the rewritten one on a clone with the remedy's migration, both
//! as the workload's role with the big tenant set, interleaved in random
//! order with the same parameters; the ratio of medians with a seeded
//! bootstrap interval. The clone is dropped at the end.

use std::time::Instant;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::remedy::{Remedy, RemedyMeasured};
use crate::error::{Error, Result};
use crate::pg::{self, Target};
use crate::results::RatioCi;
use crate::rng::{Prng, tag};
use crate::schema::clone::{Purpose, WorkingCopy};
use crate::workload::Param;
use crate::workload::context::WorkloadContext;
use crate::workload::params::Value;

/// Executions of each side per remedy.
pub const ITERATIONS: usize = 40;

/// Measure every remedy in place (`measured` is filled where it ran).
pub async fn measure(
    target: &Target,
    path: &std::path::Path,
    remedies: &mut [Remedy],
    seed: u64,
) -> Result<()> {
    if remedies.is_empty() {
        return Ok(());
    }
    let ctx = WorkloadContext::prepare(target, path).await?;
    measure_with(&ctx, target, remedies, seed).await
}

/// [`measure`] with the workload already prepared on `target`.
pub async fn measure_with(
    ctx: &WorkloadContext,
    target: &Target,
    remedies: &mut [Remedy],
    seed: u64,
) -> Result<()> {
    if remedies.is_empty() {
        return Ok(());
    }
    let copy = WorkingCopy::create(target, Purpose::Remedy).await?;
    let result = measure_on(ctx, target, &copy.target(), remedies, seed).await;
    copy.remove_or_warn().await;
    result
}

async fn measure_on(
    ctx: &WorkloadContext,
    target: &Target,
    remedied: &Target,
    remedies: &mut [Remedy],
    seed: u64,
) -> Result<()> {
    apply_migrations(remedied, remedies).await?;
    let before = pg::connect(&ctx.spec_on(target)).await?;
    let after = pg::connect(&ctx.spec_on(remedied)).await?;
    let (tenant, _) = ctx.pools().tenants.big_and_small();
    // For the session, not a frame per execution: each execution is timed alone.
    for c in [&before, &after] {
        ctx.frame().set_for_session(c, tenant).await?;
    }
    let sides = Sides {
        before: &before,
        after: &after,
        tenant,
    };
    let mut progress =
        super::progress::Progress::new("advise: timing remedies", remedies.len() as u64);
    for (i, r) in remedies.iter_mut().enumerate() {
        // Asked to stop: the remedies measured so far keep their numbers.
        if crate::signals::stopped().is_some() {
            break;
        }
        progress.at(i as u64, &r.change);
        let Some(query) = ctx.workload().queries.iter().find(|q| q.name == r.query) else {
            continue;
        };
        let Some(st) = query.statements.get(r.statement) else {
            continue;
        };
        if st.params.iter().any(|p| matches!(p, Param::Ref(_))) {
            continue; // needs an earlier statement's result
        }
        r.measured = Some(measure_one(ctx, &sides, r, &st.params, &st.sql, seed).await?);
    }
    progress.finish();
    Ok(())
}

/// Every remedy's migration (each distinct statement once) on the clone,
/// then fresh statistics.
async fn apply_migrations(remedied: &Target, remedies: &[Remedy]) -> Result<()> {
    let admin = pg::connect(&remedied.admin()).await?;
    let mut applied: Vec<String> = Vec::new();
    for r in remedies {
        for sql in &r.migration {
            if applied.contains(sql) {
                continue;
            }
            admin
                .batch_execute(sql)
                .await
                .map_err(|e| Error::from_pg(format!("remedy migration on the clone: {sql}"), e))?;
            applied.push(sql.clone());
        }
    }
    admin
        .batch_execute("ANALYZE")
        .await
        .map_err(|e| Error::from_pg("ANALYZE on the remedy clone", e))
}

/// The two sessions a remedy is measured on, with the tenant set.
struct Sides<'a> {
    before: &'a Client,
    after: &'a Client,
    tenant: &'a str,
}

/// [`ITERATIONS`] executions of the original `sql` and of `r`'s rewrite,
/// interleaved in seeded random order with the same parameters.
async fn measure_one(
    ctx: &WorkloadContext,
    sides: &Sides<'_>,
    r: &Remedy,
    params: &[Param],
    sql: &str,
    seed: u64,
) -> Result<RemedyMeasured> {
    let (before, after) = (sides.before, sides.after);
    let orig = before
        .prepare(sql)
        .await
        .map_err(|e| Error::from_pg(format!("preparing `{}`", r.query), e))?;
    let rewritten = after.prepare(&r.rewritten_sql).await.map_err(|e| {
        Error::from_pg(
            format!("preparing the rewritten `{}` on the clone", r.query),
            e,
        )
    })?;
    let mut times = Vec::with_capacity(ITERATIONS);
    let mut same_rows = true;
    let mut uses_index = None;
    let mut order = Prng::for_parts(&[seed, tag("remedy-order"), tag(&r.query)]);
    for i in 0..ITERATIONS {
        let mut rng = Prng::for_parts(&[seed, tag("remedy"), tag(&r.query), i as u64]);
        let values: Vec<Value> = params
            .iter()
            .map(|p| {
                ctx.pools()
                    .value(p, &mut rng, sides.tenant, &Default::default())
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> =
            values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
        if i == 0 {
            uses_index = Some(plan_uses(after, &r.rewritten_sql, &params, &r.index).await?);
        }
        let (b, a) = if order.chance(0.5) {
            let b = timed(before, &orig, &params).await?;
            (b, timed(after, &rewritten, &params).await?)
        } else {
            let a = timed(after, &rewritten, &params).await?;
            (timed(before, &orig, &params).await?, a)
        };
        same_rows &= a.1 == b.1;
        times.push((b.0, a.0));
    }
    let mut m = summarize(&times, same_rows, seed);
    m.uses_index = uses_index;
    Ok(m)
}

/// Whether the plan of `sql` with `params` on `client` scans `index`.
async fn plan_uses(
    client: &Client,
    sql: &str,
    params: &[&(dyn ToSql + Sync)],
    index: &str,
) -> Result<bool> {
    let row = client
        .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), params)
        .await
        .map_err(|e| Error::from_pg("EXPLAIN of a rewritten statement on the remedy clone", e))?;
    let json: serde_json::Value = row.get(0);
    let plan = crate::explain::plan::Explained::parse(&json).map_err(|m| Error::Internal {
        message: m,
        fix: String::new(),
    })?;
    Ok(plan
        .plan
        .walk()
        .iter()
        .any(|n| n.index.as_deref() == Some(index)))
}

/// (ms, rows) of one execution.
async fn timed(
    client: &Client,
    st: &tokio_postgres::Statement,
    params: &[&(dyn ToSql + Sync)],
) -> Result<(f64, usize)> {
    let t = Instant::now();
    let rows = client
        .query(st, params)
        .await
        .map_err(|e| Error::from_pg("timing a remedy", e))?;
    Ok((t.elapsed().as_secs_f64() * 1e3, rows.len()))
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    match v.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => v[n / 2],
        n => (v[n / 2 - 1] + v[n / 2]) / 2.0,
    }
}

/// Ratio of medians after/before with a 95% percentile bootstrap over the
/// (before, after) pairs.
pub fn summarize(times: &[(f64, f64)], same_rows: bool, seed: u64) -> RemedyMeasured {
    let ratio_of = |pairs: &[(f64, f64)]| {
        median(pairs.iter().map(|p| p.1).collect()) / median(pairs.iter().map(|p| p.0).collect())
    };
    let mut rng = Prng::for_parts(&[seed, tag("remedy-bootstrap")]);
    let mut boots: Vec<f64> = (0..1000)
        .map(|_| {
            let sample: Vec<(f64, f64)> = (0..times.len())
                .map(|_| times[rng.below(times.len() as u64) as usize])
                .collect();
            ratio_of(&sample)
        })
        .collect();
    boots.sort_by(f64::total_cmp);
    RemedyMeasured {
        iterations: times.len(),
        before_p50_ms: median(times.iter().map(|p| p.0).collect()),
        after_p50_ms: median(times.iter().map(|p| p.1).collect()),
        ratio: RatioCi {
            ratio: ratio_of(times),
            lo: boots[25],
            hi: boots[974],
        },
        same_rows,
        uses_index: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_tenfold_speedup_has_an_interval_below_one() {
        let times: Vec<(f64, f64)> = (0..40)
            .map(|i| (10.0 + f64::from(i % 7), 1.0 + f64::from(i % 3) * 0.1))
            .collect();
        let m = summarize(&times, true, 1);
        assert!(m.ratio.ratio < 0.15 && m.ratio.hi < 0.2, "{m:?}");
        assert!(m.ratio.lo <= m.ratio.ratio && m.ratio.ratio <= m.ratio.hi);
        // Identical sides: the interval holds 1.
        let same: Vec<(f64, f64)> = (0..40).map(|i| (f64::from(i), f64::from(i))).collect();
        let m = summarize(&same, true, 1);
        assert!(m.ratio.lo <= 1.0 && m.ratio.hi >= 1.0, "{m:?}");
    }
}
