//! Parameter values at run time: the tenant pool (weighted by size), sample
//! pools drawn from the loaded data per tenant, and one value per generator.
//! Values are sent as text and typed by the server, as psql does, so any
//! workload on any schema works without declaring types; values returned by
//! an earlier statement travel back in the server's own binary form. A
//! generator's range is checked when the file is read ([`check_range`]), so
//! no draw can overflow a clock, a calendar or an integer during a run.

use std::collections::HashMap;
use std::error::Error as StdError;

use bytes::BytesMut;
use chrono::{Duration, NaiveDate, TimeZone, Utc};
use futures_util::TryStreamExt;
use tokio_postgres::Client;
use tokio_postgres::types::{Format, FromSql, IsNull, ToSql, Type, to_sql_checked};

use super::{Dist, Param, TenantPick, Workload};
use crate::error::{Error, Result};
use crate::rng::{Prng, power_law_rank};

/// Rows kept per tenant in a sample pool.
pub const SAMPLES_PER_TENANT: i64 = 2000;

/// Rows a sample pool keeps in all, shared by tenants in proportion to their
/// rows: at scale 0.5 and below no tenant is cut by it.
pub const SAMPLE_BUDGET: i64 = 500_000;

/// Rows every tenant keeps (or all it has), however small its share.
pub const SAMPLE_FLOOR: i64 = 50;

/// Farthest back a `days_ago` generator reaches: about 1000 years, so every
/// timestamp has a four-digit year the server reads.
pub const MAX_DAYS_AGO: f64 = 365_000.0;

/// Check that every value `param` can produce is one the generators and the
/// server can hold: finite floats, an `int` range of at most 2^64 - 1
/// values, `days_ago` within [`MAX_DAYS_AGO`]. The error says what is wrong
/// (the caller adds file, line and `$n`).
pub fn check_range(param: &Param) -> std::result::Result<(), String> {
    match *param {
        Param::Int { lo, hi, .. } if lo == i64::MIN && hi == i64::MAX => Err(format!(
            "int = [{lo}, {hi}]: a range of 2^64 values; leave out one end"
        )),
        Param::Float { lo, hi, .. }
            if !(lo.is_finite() && hi.is_finite() && (hi - lo).is_finite()) =>
        {
            Err(format!("float = [{lo}, {hi}]: give finite bounds"))
        }
        Param::DaysAgo { lo, hi } if !(lo.is_finite() && hi.is_finite()) => {
            Err(format!("days_ago = [{lo}, {hi}]: give finite bounds"))
        }
        Param::DaysAgo { lo, hi } if lo.abs().max(hi.abs()) > MAX_DAYS_AGO => Err(format!(
            "days_ago = [{lo}, {hi}]: at most {MAX_DAYS_AGO} days (about 1000 years) away"
        )),
        _ => Ok(()),
    }
}

/// A parameter value.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// Text, parsed by the server into the parameter's type.
    Text(String),
    /// SQL NULL.
    Null,
    /// A value as the server returned it (binary), sent back as is.
    Raw(Type, Vec<u8>),
}

impl ToSql for Value {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn StdError + Sync + Send>> {
        match self {
            Value::Text(s) => out.extend_from_slice(s.as_bytes()),
            Value::Raw(_, b) => out.extend_from_slice(b),
            Value::Null => return Ok(IsNull::Yes),
        }
        Ok(IsNull::No)
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    fn encode_format(&self, _ty: &Type) -> Format {
        match self {
            Value::Raw(..) => Format::Binary,
            _ => Format::Text,
        }
    }

    to_sql_checked!();
}

/// Any column, kept raw (for `ref` parameters).
#[derive(Debug, Clone)]
pub struct RawColumn(pub Value);

impl<'a> FromSql<'a> for RawColumn {
    fn from_sql(
        ty: &Type,
        raw: &'a [u8],
    ) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawColumn(Value::Raw(ty.clone(), raw.to_vec())))
    }
    fn from_sql_null(_ty: &Type) -> std::result::Result<Self, Box<dyn StdError + Sync + Send>> {
        Ok(RawColumn(Value::Null))
    }
    fn accepts(_ty: &Type) -> bool {
        true
    }
}

/// Keep every column of `row` (a statement's first returned row) as a value
/// later statements can reference by column name.
pub fn collect_refs(row: &tokio_postgres::Row, refs: &mut HashMap<String, Value>) {
    for (c, col) in row.columns().iter().enumerate() {
        if let Ok(RawColumn(v)) = row.try_get::<_, RawColumn>(c) {
            refs.insert(col.name().to_string(), v);
        }
    }
}

/// Fewest tenants for size classes: with fewer, big, mid and small would be
/// one or two tenants each, not classes.
pub const MIN_CLASSED_TENANTS: usize = 10;

/// A tenant's size class (issue 12): the gate judges each one, so a change
/// that hurts only the largest tenants is not averaged away.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum TenantClass {
    /// The largest 10% of tenants by weight.
    Big = 0,
    /// Neither big nor small.
    Mid = 1,
    /// The smallest 50%.
    Small = 2,
}

impl TenantClass {
    /// Every class, in order.
    pub const ALL: [TenantClass; 3] = [TenantClass::Big, TenantClass::Mid, TenantClass::Small];

    /// "big", "mid" or "small".
    pub fn name(self) -> &'static str {
        match self {
            TenantClass::Big => "big",
            TenantClass::Mid => "mid",
            TenantClass::Small => "small",
        }
    }
}

/// Tenants with their weights.
#[derive(Debug, Clone, Default)]
pub struct TenantPool {
    /// Tenant ids (text); a single "" when the workload has no tenant.
    pub ids: Vec<String>,
    cumulative: Vec<f64>,
    big: Vec<usize>,
    small: Vec<usize>,
}

impl TenantPool {
    /// Build from (id, weight); weights ≤ 0 count as 1.
    pub fn new(mut rows: Vec<(String, f64)>) -> TenantPool {
        // Deterministic order whatever the server returned.
        rows.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut acc = 0.0;
        let cumulative = rows
            .iter()
            .map(|(_, w)| {
                acc += if *w > 0.0 { *w } else { 1.0 };
                acc
            })
            .collect();
        let n = rows.len();
        let big = (0..n.div_ceil(10).max(1).min(n)).collect();
        let small = (n / 2..n).collect();
        TenantPool {
            ids: rows.into_iter().map(|r| r.0).collect(),
            cumulative,
            big,
            small,
        }
    }

    /// A pool with no tenant (workloads without a tenant setting).
    pub fn none() -> TenantPool {
        TenantPool::new(vec![(String::new(), 1.0)])
    }

    /// Pick a tenant.
    pub fn pick(&self, how: TenantPick, rng: &mut Prng) -> &str {
        self.pick_classed(how, rng).0
    }

    /// Pick a tenant, with its size class (`None` without at least
    /// [`MIN_CLASSED_TENANTS`] tenants); draws as [`TenantPool::pick`] does.
    pub fn pick_classed(&self, how: TenantPick, rng: &mut Prng) -> (&str, Option<TenantClass>) {
        if self.ids.is_empty() {
            return ("", None);
        }
        let i = self.pick_index(how, rng);
        (&self.ids[i], self.class_of(i))
    }

    /// Whether transactions get a tenant size class.
    pub fn has_classes(&self) -> bool {
        self.ids.len() >= MIN_CLASSED_TENANTS
    }

    /// The size class of the tenant at `i` (ids are sorted largest first):
    /// big = the largest 10%, small = the smallest 50%, mid = the rest.
    fn class_of(&self, i: usize) -> Option<TenantClass> {
        if !self.has_classes() {
            None
        } else if i < self.big.len() {
            Some(TenantClass::Big)
        } else if i >= self.ids.len() / 2 {
            Some(TenantClass::Small)
        } else {
            Some(TenantClass::Mid)
        }
    }

    fn pick_index(&self, how: TenantPick, rng: &mut Prng) -> usize {
        match how {
            TenantPick::Weighted => {
                let total = self.cumulative.last().copied().unwrap_or(1.0);
                let x = rng.unit() * total;
                self.cumulative
                    .partition_point(|&c| c <= x)
                    .min(self.ids.len() - 1)
            }
            TenantPick::Uniform => rng.below(self.ids.len() as u64) as usize,
            TenantPick::Big => *rng.pick(&self.big),
            TenantPick::Small => {
                if self.small.is_empty() {
                    0
                } else {
                    *rng.pick(&self.small)
                }
            }
        }
    }

    /// Each tenant's chance (in [`TenantPool::ids`] order) of being picked
    /// `how`: the share of a query's transactions it gets.
    pub fn probabilities(&self, how: TenantPick) -> Vec<f64> {
        let n = self.ids.len();
        let mut p = vec![0.0; n];
        let among = |p: &mut Vec<f64>, which: &[usize]| {
            for &i in which {
                p[i] = 1.0 / which.len() as f64;
            }
        };
        match how {
            TenantPick::Weighted => {
                let total = self.cumulative.last().copied().unwrap_or(1.0);
                let mut before = 0.0;
                for (i, &c) in self.cumulative.iter().enumerate() {
                    p[i] = (c - before) / total;
                    before = c;
                }
            }
            TenantPick::Uniform => among(&mut p, &(0..n).collect::<Vec<_>>()),
            TenantPick::Big => among(&mut p, &self.big),
            TenantPick::Small if self.small.is_empty() => among(&mut p, &[0]),
            TenantPick::Small => among(&mut p, &self.small),
        }
        p
    }

    /// The largest tenant and a small one (for plans and checks).
    pub fn big_and_small(&self) -> (&str, &str) {
        let big = self.ids.first().map(String::as_str).unwrap_or("");
        let small = self
            .ids
            .get(self.ids.len() * 3 / 4)
            .map(String::as_str)
            .unwrap_or(big);
        (big, small)
    }
}

#[derive(Debug, Clone, Default)]
struct SamplePool {
    by_tenant: HashMap<String, Vec<String>>,
    numeric_max: Option<i64>,
}

/// Everything parameter generation needs, loaded once before a run.
#[derive(Debug, Clone)]
pub struct Pools {
    /// Tenants.
    pub tenants: TenantPool,
    /// By table, then column: looked up with borrowed names, so drawing a
    /// sample builds no key.
    samples: HashMap<String, HashMap<String, SamplePool>>,
    /// The dataset's "today" (`days_ago` counts back from it).
    pub epoch: NaiveDate,
}

impl Pools {
    /// Load the tenant pool and every sample pool the workload uses on
    /// `sampler` — a connection as [`crate::pg::roles::SAMPLER`], which sees
    /// every tenant and may only read — inside one READ ONLY transaction
    /// with a [`SAMPLING_TIMEOUT`] (nothing is kept: it is rolled back).
    /// `epoch` is the dataset's "today" ([`dataset_epoch`]).
    pub async fn load(sampler: &Client, workload: &Workload, epoch: NaiveDate) -> Result<Pools> {
        sampler
            .batch_execute(&format!(
                "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; \
                 SET LOCAL statement_timeout = '{}s'",
                SAMPLING_TIMEOUT.as_secs()
            ))
            .await
            .map_err(|e| Error::from_pg("starting the read-only sampling transaction", e))?;
        let loaded = Pools::load_in(sampler, workload, epoch).await;
        // Whatever the workload's SQL did, nothing of it is kept.
        let ended = sampler
            .batch_execute("ROLLBACK")
            .await
            .map_err(|e| Error::from_pg("ending the sampling transaction", e));
        let pools = loaded?;
        ended?;
        Ok(pools)
    }

    /// Pools of a workload that reads nothing from the data: no tenants
    /// query, no `sample` parameter ([`needs_sampling`] is false).
    pub fn without_sampling(epoch: NaiveDate) -> Pools {
        Pools {
            tenants: TenantPool::none(),
            samples: HashMap::new(),
            epoch,
        }
    }

    async fn load_in(sampler: &Client, workload: &Workload, epoch: NaiveDate) -> Result<Pools> {
        let tenants = match &workload.context.tenants {
            Some(sql) if workload.context.tenant_setting.is_some() => {
                load_tenants(sampler, workload, sql).await?
            }
            _ => TenantPool::none(),
        };
        let mut samples: HashMap<String, HashMap<String, SamplePool>> = HashMap::new();
        for q in &workload.queries {
            for st in &q.statements {
                for p in &st.params {
                    let Param::Sample { table, column, .. } = p else {
                        continue;
                    };
                    if samples.get(table).is_some_and(|t| t.contains_key(column)) {
                        continue;
                    }
                    let pool = load_sample(sampler, workload, table, column)
                        .await
                        .map_err(|e| Error::Workload {
                            file: workload.path.clone(),
                            line: st.line,
                            query: Some(q.name.clone()),
                            message: format!("sample = \"{table}.{column}\": {e}"),
                        })?;
                    samples
                        .entry(table.clone())
                        .or_default()
                        .insert(column.clone(), pool);
                }
            }
        }
        Ok(Pools {
            tenants,
            samples,
            epoch,
        })
    }

    /// Pools with only a tenant pool (benchmarks and tests of generators).
    pub fn for_bench(tenants: TenantPool) -> Pools {
        Pools {
            tenants,
            samples: HashMap::new(),
            epoch: Utc::now().date_naive(),
        }
    }

    /// These pools plus a sample pool of `values` shared by every tenant
    /// (benchmarks: sample parameters without a database).
    pub fn with_bench_sample(mut self, table: &str, column: &str, values: Vec<String>) -> Pools {
        let pool = SamplePool {
            by_tenant: HashMap::from([(String::new(), values)]),
            numeric_max: None,
        };
        self.samples
            .entry(table.to_string())
            .or_default()
            .insert(column.to_string(), pool);
        self
    }

    /// A value for `param`.
    pub fn value(
        &self,
        param: &Param,
        rng: &mut Prng,
        tenant: &str,
        refs: &HashMap<String, Value>,
    ) -> Value {
        match param {
            Param::Tenant => Value::Text(tenant.to_string()),
            Param::Sample {
                table,
                column,
                miss_rate,
            } => {
                let Some(pool) = self.samples.get(table).and_then(|t| t.get(column)) else {
                    return Value::Null;
                };
                let values = pool
                    .by_tenant
                    .get(tenant)
                    .filter(|v| !v.is_empty())
                    .or_else(|| pool.by_tenant.get(""));
                match values {
                    Some(v) if !rng.chance(*miss_rate) => Value::Text(rng.pick(v).clone()),
                    _ => Value::Text(match pool.numeric_max {
                        Some(max) => (max + 1 + rng.below(1_000_000) as i64).to_string(),
                        None => format!(
                            "zz-missing-{:08x}@example.invalid",
                            rng.below(u32::MAX as u64)
                        ),
                    }),
                }
            }
            Param::Int { lo, hi, dist } => {
                // i128: the span of [i64::MIN + 1, i64::MAX] overflows i64.
                let span = u64::try_from(i128::from(*hi) - i128::from(*lo) + 1).unwrap_or(u64::MAX);
                let offset = match dist {
                    Dist::Uniform => rng.below(span),
                    Dist::Zipf => power_law_rank(rng.unit(), span, 1.0),
                    Dist::Gaussian => (gaussian(rng) * span as f64)
                        .floor()
                        .clamp(0.0, (span - 1) as f64) as u64,
                };
                Value::Text((i128::from(*lo) + i128::from(offset)).to_string())
            }
            Param::Float { lo, hi, dist } => {
                let u = match dist {
                    Dist::Uniform => rng.unit(),
                    Dist::Zipf => power_law_rank(rng.unit(), 1_000_000, 1.0) as f64 / 1e6,
                    Dist::Gaussian => gaussian(rng),
                };
                Value::Text(format!("{:.4}", lo + (hi - lo) * u))
            }
            Param::DaysAgo { lo, hi } => {
                let days = lo + (hi - lo) * rng.unit();
                let end =
                    Utc.from_utc_datetime(&self.epoch.and_hms_opt(23, 59, 59).unwrap_or_default());
                // check_range keeps this in reach; out of it, the epoch itself.
                let at = Duration::try_seconds((days * 86_400.0) as i64)
                    .and_then(|back| end.checked_sub_signed(back))
                    .unwrap_or(end);
                Value::Text(at.format("%Y-%m-%d %H:%M:%S+00").to_string())
            }
            Param::Choice(items) => Value::Text(rng.pick(items).clone()),
            Param::Ref(name) => refs.get(name).cloned().unwrap_or(Value::Null),
            Param::Value(v) => Value::Text(v.clone()),
        }
    }
}

/// Gaussian in [0, 1] around 0.5 with sd 1/6 (Box–Muller), clamped.
fn gaussian(rng: &mut Prng) -> f64 {
    let u1 = rng.unit().max(1e-12);
    let u2 = rng.unit();
    let z = (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
    (0.5 + z / 6.0).clamp(0.0, 1.0)
}

/// Longest a tenants or sample query may run (the sampler's
/// `statement_timeout`): a workload's SQL cannot hold the server forever.
pub const SAMPLING_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(300);

/// Whether `workload` reads from the data before it runs: a tenants query
/// (with a tenant setting) or a `sample` parameter. Only then is the sampler
/// needed.
pub fn needs_sampling(workload: &Workload) -> bool {
    workload.context.tenant_setting.is_some()
        || workload
            .queries
            .iter()
            .flat_map(|q| &q.statements)
            .flat_map(|s| &s.params)
            .any(|p| matches!(p, Param::Sample { .. }))
}

/// A workload that sets a tenant must say how to list the tenants.
pub fn check_tenants_query(workload: &Workload) -> Result<()> {
    if workload.context.tenant_setting.is_some() && workload.context.tenants.is_none() {
        return Err(Error::Workload {
            file: workload.path.clone(),
            line: 0,
            query: None,
            message: "[context] sets tenant_setting but gives no `tenants` query".into(),
        });
    }
    Ok(())
}

/// The dataset's "today" from crmbench's marker (`days_ago` counts back
/// from it), else today. Fixed SQL, read as the admin connection.
pub async fn dataset_epoch(admin: &Client) -> NaiveDate {
    admin
        .query_opt(
            "SELECT epoch FROM crm.crmbench_meta WHERE to_regclass('crm.crmbench_meta') IS NOT NULL",
            &[],
        )
        .await
        .ok()
        .flatten()
        .and_then(|r| r.get::<_, Option<NaiveDate>>(0))
        .unwrap_or_else(|| Utc::now().date_naive())
}

/// The workload's `[context].tenants` query, run as the sampler.
async fn load_tenants(sampler: &Client, workload: &Workload, sql: &str) -> Result<TenantPool> {
    let wrapped = format!("SELECT t.id::text, t.w::float8 FROM ({sql}) AS t(id, w)");
    let rows = sampler
        .query(&wrapped, &[])
        .await
        .map_err(|e| Error::Workload {
            file: workload.path.clone(),
            line: 0,
            query: None,
            message: format!(
                "[context] tenants query failed: {} (it runs as {}: read-only, SELECT on the \
                 workload's schemas only)",
                server_says(e),
                crate::pg::roles::SAMPLER
            ),
        })?;
    if rows.is_empty() {
        return Err(Error::State {
            message: "the tenants query returned no rows: the database holds no data".into(),
            fix: "run `crmbench generate` first".into(),
        });
    }
    let mut tenants = Vec::with_capacity(rows.len());
    for r in &rows {
        tenants.push(tenant_row(r).map_err(|message| Error::Workload {
            file: workload.path.clone(),
            line: 0,
            query: None,
            message: format!("[context] tenants query {message}"),
        })?);
    }
    Ok(TenantPool::new(tenants))
}

/// One (id, weight) row of the tenants query. A NULL id or weight is the
/// file's to fix, said as such (it used to panic).
fn tenant_row(r: &tokio_postgres::Row) -> std::result::Result<(String, f64), String> {
    let id: Option<String> = r.try_get(0).map_err(|e| format!("failed: {e}"))?;
    let weight: Option<f64> = r.try_get(1).map_err(|e| format!("failed: {e}"))?;
    match (id, weight) {
        (Some(id), Some(weight)) => Ok((id, weight)),
        (None, _) => {
            Err("returned a NULL tenant id: every row needs an id (filter NULLs out)".into())
        }
        (Some(id), None) => Err(format!(
            "returned a NULL weight for tenant {id}: every row needs a weight \
             (e.g. coalesce(w, 1))"
        )),
    }
}

/// What the server said, without crmbench's context.
fn server_says(e: tokio_postgres::Error) -> String {
    match Error::from_pg("", e) {
        Error::Server {
            message, sqlstate, ..
        } => format!("{message} (SQLSTATE {sqlstate})"),
        other => other.to_string(),
    }
}

async fn load_sample(
    sampler: &Client,
    workload: &Workload,
    table: &str,
    column: &str,
) -> std::result::Result<SamplePool, String> {
    // The names were checked as SQL names when the file was read; quoted
    // here, so a name is only ever a name.
    let (Some(table), Some(column)) = (super::quoted_name(table), super::quoted_name(column))
    else {
        return Err("not a table.column name".into());
    };
    // Deterministic choice of rows (hash order), so a seed replays the same stream.
    // Each tenant keeps its share of SAMPLE_BUDGET (never fewer than
    // SAMPLE_FLOOR of its rows, never more than SAMPLES_PER_TENANT), so a pool's
    // memory stays flat in scale: at scale 10, 2,000 per tenant held 4M emails
    // alone and `explain` peaked at 2.7 GB.
    let tc = crate::pg::quote_ident(
        workload
            .context
            .tenant_column
            .as_deref()
            .unwrap_or("tenant_id"),
    );
    let tenant_sql = format!(
        "SELECT {tc}::text, v FROM (SELECT {tc}, {column}::text AS v, \
             row_number() OVER w AS rn, count(*) OVER (PARTITION BY {tc}) AS n_t \
             FROM {table} WHERE {column} IS NOT NULL \
             WINDOW w AS (PARTITION BY {tc} ORDER BY hashtext({column}::text), {column}::text)) s \
             WHERE rn <= LEAST({SAMPLES_PER_TENANT}, GREATEST({SAMPLE_FLOOR}, ceil({SAMPLE_BUDGET} * n_t / \
             (SELECT GREATEST(reltuples, 1) FROM pg_class WHERE oid = $1::text::regclass)))) ORDER BY 1, 2"
    );
    let (sql, params) = if workload.context.tenant_setting.is_some() {
        (tenant_sql, vec![table.as_str()])
    } else {
        let sql = format!(
            "SELECT '', v FROM (SELECT {column}::text AS v FROM {table} WHERE {column} IS NOT NULL \
             ORDER BY hashtext({column}::text), {column}::text LIMIT {}) s",
            SAMPLES_PER_TENANT * 10
        );
        (sql, vec![])
    };
    let failed = |e| Error::from_pg("sampling", e).to_string();
    // Streamed: the rows are never all held at once beside the pool.
    let rows = sampler.query_raw(&sql, params).await.map_err(failed)?;
    let mut rows = std::pin::pin!(rows);
    let mut pool = SamplePool::default();
    let mut all_numeric = true;
    let mut max = i64::MIN;
    while let Some(r) = rows.try_next().await.map_err(failed)? {
        let tenant: Option<String> = r.try_get(0).map_err(|e| e.to_string())?;
        let Some(tenant) = tenant else {
            return Err(format!(
                "a row of {table} has a NULL {tc}: sampled rows need a tenant"
            ));
        };
        // NULLs are filtered out by the query.
        let v: String = r.try_get(1).map_err(|e| e.to_string())?;
        match v.parse::<i64>() {
            Ok(n) => max = max.max(n),
            Err(_) => all_numeric = false,
        }
        pool.by_tenant.entry(tenant).or_default().push(v);
    }
    pool.numeric_max = (all_numeric && !pool.by_tenant.is_empty()).then_some(max);
    Ok(pool)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weighted_pick_follows_weights_and_classes_hold() {
        let pool = TenantPool::new(
            (0..20)
                .map(|i| (format!("t{i:02}"), 100.0 / (i + 1) as f64))
                .collect(),
        );
        let mut rng = Prng::for_parts(&[1]);
        let mut top = 0;
        for _ in 0..20_000 {
            if pool.pick(TenantPick::Weighted, &mut rng) == "t00" {
                top += 1;
            }
        }
        // Weight share of t00 = 1 / H(20) ≈ 0.278.
        let share = top as f64 / 20_000.0;
        assert!((share - 0.278).abs() < 0.02, "{share}");
        for _ in 0..200 {
            assert!(["t00", "t01"].contains(&pool.pick(TenantPick::Big, &mut rng)));
            let small: u32 = pool.pick(TenantPick::Small, &mut rng)[1..].parse().unwrap();
            assert!(small >= 10);
        }
    }

    #[test]
    fn int_distributions_stay_in_range_and_differ() {
        let pools = Pools {
            tenants: TenantPool::none(),
            samples: HashMap::new(),
            epoch: NaiveDate::from_ymd_opt(2025, 12, 31).unwrap(),
        };
        let mut rng = Prng::for_parts(&[2]);
        let mut mean = |dist| {
            let p = Param::Int {
                lo: 1,
                hi: 100,
                dist,
            };
            let mut sum = 0i64;
            for _ in 0..10_000 {
                let Value::Text(t) = pools.value(&p, &mut rng, "", &HashMap::new()) else {
                    panic!()
                };
                let n: i64 = t.parse().unwrap();
                assert!((1..=100).contains(&n));
                sum += n;
            }
            sum as f64 / 10_000.0
        };
        let (u, z, g) = (mean(Dist::Uniform), mean(Dist::Zipf), mean(Dist::Gaussian));
        assert!((u - 50.5).abs() < 2.0, "uniform mean {u}");
        assert!(z < 30.0, "zipf mean {z}");
        assert!((g - 50.5).abs() < 2.0, "gaussian mean {g}");
        let d = Param::DaysAgo { lo: 0.0, hi: 30.0 };
        let Value::Text(ts) = pools.value(&d, &mut rng, "", &HashMap::new()) else {
            panic!()
        };
        assert!(
            ts.starts_with("2025-12") || ts.starts_with("2025-11"),
            "{ts}"
        );
    }

    /// A workload could not ask for "closing in the next 30 days": every
    /// draw was on or before the dataset's "today" (issue 16, item 7).
    #[test]
    fn negative_days_ago_are_after_the_epoch() {
        let pools = Pools::for_bench(TenantPool::none());
        let mut rng = Prng::for_parts(&[5]);
        let epoch = pools.epoch.format("%Y-%m-%d").to_string();
        let next_month = Param::DaysAgo {
            lo: -30.0,
            hi: -1.0,
        };
        for _ in 0..200 {
            let Value::Text(ts) = pools.value(&next_month, &mut rng, "", &HashMap::new()) else {
                panic!()
            };
            assert!(ts[..10] > *epoch, "{ts} not after {epoch}");
        }
        assert!(check_range(&Param::DaysAgo { lo: -30.0, hi: 0.0 }).is_ok());
        assert!(check_range(&Param::DaysAgo { lo: -1e9, hi: 0.0 }).is_err());
    }

    #[test]
    fn ranges_no_generator_can_hold_are_refused() {
        let days = |lo, hi| check_range(&Param::DaysAgo { lo, hi });
        assert!(days(0.0, 730.0).is_ok());
        assert!(days(1e8, 1e9).unwrap_err().contains("1000 years"));
        assert!(days(0.0, f64::INFINITY).unwrap_err().contains("finite"));
        assert!(days(f64::NAN, 1.0).unwrap_err().contains("finite"));
        let float = |lo, hi| {
            check_range(&Param::Float {
                lo,
                hi,
                dist: Dist::Uniform,
            })
        };
        assert!(float(-1.0, 1.0).is_ok());
        assert!(float(-f64::MAX, f64::MAX).is_err());
        assert!(float(0.0, f64::NAN).is_err());
        let int = |lo, hi| {
            check_range(&Param::Int {
                lo,
                hi,
                dist: Dist::Uniform,
            })
        };
        assert!(int(i64::MIN, i64::MAX).is_err());
        assert!(int(i64::MIN + 1, i64::MAX).is_ok());
    }

    #[test]
    fn the_widest_ranges_allowed_draw_without_overflow() {
        let pools = Pools::for_bench(TenantPool::none());
        let mut rng = Prng::for_parts(&[3]);
        let none = HashMap::new();
        for p in [
            Param::Int {
                lo: i64::MIN + 1,
                hi: i64::MAX,
                dist: Dist::Uniform,
            },
            Param::Int {
                lo: i64::MIN + 1,
                hi: i64::MAX,
                dist: Dist::Gaussian,
            },
            Param::DaysAgo {
                lo: 0.0,
                hi: MAX_DAYS_AGO,
            },
        ] {
            for _ in 0..1000 {
                assert!(matches!(
                    pools.value(&p, &mut rng, "", &none),
                    Value::Text(_)
                ));
            }
        }
    }
}
