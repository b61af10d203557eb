//! `crmbench capture`: a workload file from what the server really ran, read
//! from `pg_stat_statements` (top-level statements of the target database,
//! by the application's role). One query per normalized statement, weighted
//! by its calls, the statements taken by total execution time until the
//! coverage asked for; every `$n` gets a generator inferred from the parse
//! tree ([`infer`]) and the catalog ([`catalog`]); the tenant context comes
//! from the RLS policies. Statements that cannot be replayed are listed with
//! their reason and share of execution time, in the output and in the file's
//! header, never dropped silently.

pub mod calibrate;
pub mod catalog;
pub mod domain;
pub mod infer;
pub mod log;
pub mod normalize;
pub mod realism;
pub mod stats;

use std::collections::HashMap;
use std::fmt::Write as _;
use std::path::PathBuf;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::{self, Target};
use catalog::Catalog;
use infer::{StatementKind, Use};
use stats::Entry;

/// Options of `capture`.
#[derive(Debug, Clone)]
pub struct CaptureOptions {
    /// The workload file to write.
    pub out: PathBuf,
    /// Share of execution time to cover (0–1).
    pub coverage: f64,
    /// At most this many statements.
    pub top: Option<usize>,
    /// Leave out statements called fewer times.
    pub min_calls: i64,
    /// The application's role (default: the non-superuser role subject to
    /// row-level security that ran the most).
    pub role: Option<String>,
    /// Two snapshots this far apart: the weights are the calls made in
    /// between (`None`: everything since the last reset).
    pub window: Option<std::time::Duration>,
    /// Read the statements from this server log instead of
    /// `pg_stat_statements` ([`log`]).
    pub from_log: Option<PathBuf>,
    /// Read the statements from this copy of another server's
    /// `pg_stat_statements` ([`stats::read_table`]).
    pub stats_table: Option<String>,
    /// Fit the guessed generators to the source's figures ([`calibrate`]).
    pub fit: bool,
}

/// A statement left out, with why and its share of execution time.
#[derive(Debug, Clone, PartialEq)]
pub struct Unreplayable {
    /// The normalized statement (first line).
    pub sql: String,
    /// Why it cannot be replayed.
    pub reason: String,
    /// Share of the captured execution time.
    pub share: f64,
}

/// What `capture` wrote.
#[derive(Debug, Clone)]
pub struct Captured {
    /// Share of execution time the file represents.
    pub coverage: f64,
    /// Queries written.
    pub queries: usize,
    /// The role the statements were read for.
    pub role: String,
    /// Statements that could not be replayed.
    pub unreplayable: Vec<Unreplayable>,
    /// What the source ran of each query written, for `--check-replay`.
    pub source: Vec<realism::Source>,
}

/// One generated query.
struct Captured1 {
    name: String,
    kind: &'static str,
    weight: i64,
    sql: String,
    params: Vec<String>,
    /// The source's total execution time of the statement, ms.
    total_ms: f64,
    /// Comment lines written over `params` ([`page_notes`]).
    notes: Vec<String>,
    /// How its tenants are picked (the fit may make it uniform).
    tenant: crate::workload::TenantPick,
    /// Parameters whose generator is a guess, with the other guesses.
    candidates: Vec<calibrate::Candidates>,
    /// What the source's calls did on average, where it counts that.
    per_call: Option<calibrate::PerCall>,
}

/// Capture the target's workload into `opts.out`.
pub async fn capture(target: &Target, opts: &CaptureOptions) -> Result<Captured> {
    let admin = pg::connect(&target.admin()).await?;
    let (entries, observed) = source_entries(&admin, target, opts).await?;
    let role = match &opts.role {
        Some(r) => r.clone(),
        None => stats::application_role(&admin, &entries).await?,
    };
    let catalog = Catalog::read(&admin).await?;
    let entries: Vec<Entry> = entries
        .into_iter()
        .filter(|e| e.role == role)
        .map(|mut e| {
            e.query = normalize::typed_literals(&e.query);
            e
        })
        .collect();
    // A log's statements are grouped by their text already (values go
    // with the numbering of that text).
    let entries = if opts.from_log.is_some() {
        entries
    } else {
        stats::grouped(entries)
    };
    let mut total = 0.0;
    let mut classified = Vec::new();
    for e in entries {
        match infer::infer(&e.query) {
            Ok(i) if i.kind == StatementKind::Frame => continue,
            Ok(i) => {
                total += e.total_ms;
                classified.push((e, Ok(i)));
            }
            Err(msg) => {
                total += e.total_ms;
                classified.push((e, Err(format!("does not parse: {msg}"))));
            }
        }
    }
    classified.sort_by(|a, b| b.0.total_ms.total_cmp(&a.0.total_ms));
    let mut sel = Selection {
        pending: classified.into(),
        total,
        queries: Vec::new(),
        unreplayable: Vec::new(),
        covered: 0.0,
        observed,
    };
    let context = catalog.tenant_context(&admin, &role).await?;
    let dir = opts.out.parent().map(PathBuf::from).unwrap_or_default();
    if !dir.as_os_str().is_empty() {
        std::fs::create_dir_all(&dir).map_err(|e| Error::io("creating directory", &dir, e))?;
    }
    // The replay check: the file is loaded as `run` loads it (sampled,
    // every query run once as the role, rolled back); a query that fails
    // is listed with the server's reason and the next statement takes its
    // place, until the file passes.
    let source = match (&opts.from_log, &opts.stats_table) {
        (Some(path), _) => format!("the server log {}", path.display()),
        (None, Some(table)) => format!("{table}, a copy of pg_stat_statements"),
        (None, None) => "pg_stat_statements".to_string(),
    };
    loop {
        sel.fill(&admin, &catalog, opts).await;
        let text = render(
            &sel.queries,
            &context,
            &Header {
                source: &source,
                role: &role,
                coverage: sel.covered,
                unreplayable: &sel.unreplayable,
            },
        );
        std::fs::write(&opts.out, text).map_err(|e| Error::io("writing", &opts.out, e))?;
        match crate::workload::context::WorkloadContext::prepare(target, &opts.out).await {
            Ok(_) => break,
            Err(Error::Workload {
                query: Some(name),
                message,
                ..
            }) if sel.drop(&name, &message) => continue,
            Err(e) => return Err(e),
        }
    }
    if opts.fit {
        fit_guesses(target, opts, &mut sel, &context, &role, &source).await?;
    }
    let source = sel
        .queries
        .iter()
        .map(|(q, ..)| realism::Source {
            name: q.name.clone(),
            sql: q.sql.clone(),
            calls: q.weight,
            total_ms: q.total_ms,
            blocks_per_call: q.per_call.map(|p| p.blocks),
        })
        .collect();
    Ok(Captured {
        coverage: sel.covered,
        queries: sel.queries.len(),
        role,
        unreplayable: sel.unreplayable,
        source,
    })
}

/// Fit the reads' guessed generators and tenant choice to the source's
/// blocks and rows per call ([`calibrate`]) and rewrite the file with what
/// was chosen. A fit that cannot run leaves the guesses, and says why.
async fn fit_guesses(
    target: &Target,
    opts: &CaptureOptions,
    sel: &mut Selection,
    context: &catalog::TenantContext,
    role: &str,
    source: &str,
) -> Result<()> {
    let (places, mut fits): (Vec<usize>, Vec<calibrate::Fit>) = sel
        .queries
        .iter()
        .enumerate()
        .filter_map(|(k, (q, ..))| {
            let mut source = q.per_call.filter(|_| q.kind == "read")?;
            // Another server's times say nothing of this one's.
            if opts.stats_table.is_some() {
                source.ms = 0.0;
            }
            Some((
                k,
                calibrate::Fit {
                    name: q.name.clone(),
                    sql: q.sql.clone(),
                    params: q.params.clone(),
                    candidates: q.candidates.clone(),
                    source,
                    tenant: q.tenant,
                    probed: None,
                },
            ))
        })
        .unzip();
    if fits.is_empty() {
        return Ok(());
    }
    let header = Header {
        source,
        role,
        coverage: sel.covered,
        unreplayable: &sel.unreplayable,
    };
    let probe_header = Header {
        unreplayable: &[],
        ..header
    };
    let render_probe = |queries: &[(String, String, Vec<String>)]| {
        let probes: Vec<(Captured1, f64, String)> = queries
            .iter()
            .map(|(name, sql, params)| {
                let q = Captured1 {
                    name: name.clone(),
                    kind: "read",
                    weight: 1,
                    sql: sql.clone(),
                    params: params.clone(),
                    total_ms: 0.0,
                    notes: Vec::new(),
                    tenant: crate::workload::TenantPick::Weighted,
                    candidates: Vec::new(),
                    per_call: None,
                };
                (q, 0.0, String::new())
            })
            .collect();
        render(&probes, context, &probe_header)
    };
    if let Err(e) = calibrate::fit(target, &opts.out, &mut fits, render_probe).await {
        crate::console::err_line(format!(
            "capture: could not fit the guessed values to the source's figures ({e}); \
             the file keeps the first guesses"
        ));
        return Ok(());
    }
    for (k, f) in places.into_iter().zip(fits) {
        let q = &mut sel.queries[k].0;
        // A page note says what the replay sends: stale once fitted.
        for (n, (before, after)) in q.params.iter().zip(&f.params).enumerate() {
            if before != after {
                let prefix = format!("${} ", n + 1);
                q.notes.retain(|note| !note.starts_with(&prefix));
            }
        }
        q.params = f.params.clone();
        q.tenant = f.tenant;
        // A constant the fit chose is what the application wrote into its
        // statement: as a literal, the server plans it as it planned the
        // source's (a parameter gets a generic plan after five calls).
        // pg_stat_statements numbers the constants it replaced after the
        // statement's own parameters, so only a constant numbered above
        // every parameter the fit left alone is taken for one (Prisma's
        // bound `LIMIT $2 OFFSET $3` stays a parameter).
        let fitted: Vec<usize> = f.candidates.iter().map(|c| c.param).collect();
        let others = (0..q.params.len()).filter(|k| !fitted.contains(k)).max();
        let constants: Vec<usize> = fitted
            .into_iter()
            .filter(|k| others.is_none_or(|o| *k > o))
            .collect();
        let (sql, params, placed) = inline_constants(&q.sql, &q.params, &constants);
        let item = |k: usize, g: &str| match placed.get(k) {
            Some(Placed::Literal(l)) => format!("{l} written into the statement"),
            Some(Placed::Param(m)) => format!("${m} {g}"),
            None => format!("${} {g}", k + 1),
        };
        // Page notes name their parameter first: renumbered, or gone with it.
        let mut notes = Vec::new();
        for note in q.notes.drain(..) {
            let number = note
                .strip_prefix('$')
                .and_then(|r| r.split(' ').next())
                .and_then(|n| n.parse::<usize>().ok());
            match number.and_then(|n| placed.get(n.wrapping_sub(1)).map(|p| (n, p))) {
                Some((_, Placed::Literal(_))) => {}
                Some((n, Placed::Param(m))) => {
                    notes.push(note.replacen(&format!("${n} "), &format!("${m} "), 1));
                }
                None => notes.push(note),
            }
        }
        notes.extend(calibrate::note(&f, item));
        q.notes = notes;
        q.sql = sql;
        q.params = params;
    }
    let text = render(&sel.queries, context, &header);
    std::fs::write(&opts.out, text).map_err(|e| Error::io("writing", &opts.out, e))
}

/// What became of a parameter when constants were written in.
#[derive(Debug, Clone, PartialEq)]
enum Placed {
    /// Still a parameter, now `$n`.
    Param(usize),
    /// Written into the statement as this literal.
    Literal(String),
}

/// `sql` with the parameters at `which` (indices from 0) whose generator is
/// one constant (`{ value = "x" }`, `{ int = [k, k] }`) written in as
/// literals, the others renumbered in order; the remaining generators, and
/// what became of each parameter.
fn inline_constants(
    sql: &str,
    params: &[String],
    which: &[usize],
) -> (String, Vec<String>, Vec<Placed>) {
    let literal = |g: &str| -> Option<String> {
        let v: toml::Value = toml::from_str(&format!("g = {g}")).ok()?;
        let t = v.get("g")?.as_table()?;
        match (t.get("value"), t.get("int"), t.len()) {
            (Some(toml::Value::String(s)), None, 1) => Some(crate::pg::quote_literal(s)),
            (None, Some(toml::Value::Array(a)), 1) => match a.as_slice() {
                [toml::Value::Integer(lo), toml::Value::Integer(hi)] if lo == hi => {
                    Some(lo.to_string())
                }
                _ => None,
            },
            _ => None,
        }
    };
    let mut kept = Vec::new();
    let placed: Vec<Placed> = params
        .iter()
        .enumerate()
        .map(
            |(k, g)| match which.contains(&k).then(|| literal(g)).flatten() {
                Some(l) => Placed::Literal(l),
                None => {
                    kept.push(g.clone());
                    Placed::Param(kept.len())
                }
            },
        )
        .collect();
    if kept.len() == params.len() {
        return (sql.to_string(), kept, placed);
    }
    let text = crate::workload::substitute(sql, |n| match placed.get(n.wrapping_sub(1)) {
        Some(Placed::Literal(l)) => l.clone(),
        Some(Placed::Param(m)) => format!("${m}"),
        None => format!("${n}"),
    });
    (text, kept, placed)
}

/// The statements to capture from: a server log, a copy of another
/// server's view, or this server's `pg_stat_statements`.
async fn source_entries(
    admin: &Client,
    target: &Target,
    opts: &CaptureOptions,
) -> Result<(Vec<Entry>, Observed)> {
    Ok(match (&opts.from_log, &opts.stats_table) {
        (Some(path), _) => from_log(path, opts.role.as_deref())?,
        (None, Some(table)) => (stats::read_table(admin, table).await?, HashMap::new()),
        (None, None) => {
            pg::privileges::check_capture(admin, opts.role.as_deref()).await?;
            let entries = read_entries(admin, target.database(), opts.window).await?;
            (entries, HashMap::new())
        }
    })
}

/// The statements of the database: all since the last reset, or with
/// `window` the difference of two snapshots taken that far apart.
async fn read_entries(
    admin: &Client,
    database: &str,
    window: Option<std::time::Duration>,
) -> Result<Vec<Entry>> {
    let first = stats::read(admin, database).await?;
    let Some(window) = window else {
        return Ok(first);
    };
    crate::console::err_line(format!(
        "capture: first snapshot of pg_stat_statements taken ({} statements); the second in {:.0} s",
        first.len(),
        window.as_secs_f64()
    ));
    // Ctrl-C during the window ends the capture: half a window is not the
    // window asked for.
    tokio::select! {
        () = tokio::time::sleep(window) => {}
        _ = crate::signals::stop_requested() => {
            return Err(Error::Interrupted {
                during: "waiting for the second snapshot of pg_stat_statements".into(),
            });
        }
    }
    let second = stats::read(admin, database).await?;
    Ok(stats::window_delta(&first, second))
}

/// The statements of a server log as entries (the role `role` where the
/// log does not name one), and each one's observed values by `$n`, keyed
/// by its text as [`normalize::typed_literals`] leaves it.
fn from_log(path: &std::path::Path, role: Option<&str>) -> Result<(Vec<Entry>, Observed)> {
    let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
    let logged = log::read(&text);
    let Some(role) = role.or_else(|| logged.iter().find_map(|l| l.role.as_deref())) else {
        return Err(Error::Usage {
            message: format!(
                "{}: the log's lines do not name the role that ran them",
                path.display()
            ),
            fix:
                "name the application's role with --role (or log it: log_line_prefix with user=%u)"
                    .into(),
        });
    };
    let role = role.to_string();
    let mut observed = HashMap::new();
    let entries = logged
        .into_iter()
        .map(|l| {
            let (query, removed) = normalize::typed_literals_renumbered(&l.query);
            let values: Vec<Vec<String>> = l
                .values
                .into_iter()
                .enumerate()
                .filter(|(k, _)| !removed.contains(&(*k as u32 + 1)))
                .map(|(_, v)| v)
                .collect();
            observed.insert(query, values);
            Entry {
                query: l.query,
                role: l.role.unwrap_or_else(|| role.clone()),
                queryid: None,
                calls: l.calls,
                total_ms: l.total_ms,
                ..Entry::default()
            }
        })
        .collect();
    Ok((entries, observed))
}

/// Values a log showed for each `$n` of a statement (index 0 is `$1`).
type Observed = HashMap<String, Vec<Vec<String>>>;

/// The statements taken so far, and those left to take.
struct Selection {
    pending: std::collections::VecDeque<(Entry, std::result::Result<infer::Inferred, String>)>,
    total: f64,
    queries: Vec<(Captured1, f64, String)>,
    unreplayable: Vec<Unreplayable>,
    covered: f64,
    observed: Observed,
}

impl Selection {
    /// Take statements by execution time until the coverage (or `--top`).
    async fn fill(&mut self, admin: &Client, catalog: &Catalog, opts: &CaptureOptions) {
        while self.covered < opts.coverage && opts.top.is_none_or(|k| self.queries.len() < k) {
            let Some((e, inferred)) = self.pending.pop_front() else {
                break;
            };
            let share = if self.total > 0.0 {
                e.total_ms / self.total
            } else {
                0.0
            };
            if e.calls < opts.min_calls {
                continue;
            }
            let rank = self.queries.len() + self.unreplayable.len() + 1;
            let observed = self
                .observed
                .get(&e.query)
                .map(Vec::as_slice)
                .unwrap_or_default();
            let built = match inferred {
                Ok(i) => build(admin, catalog, &e, &i, rank, observed).await,
                Err(reason) => Err(reason),
            };
            match built {
                Ok(q) => {
                    self.covered += share;
                    self.queries.push((q, share, e.query.clone()));
                }
                Err(reason) => self.unreplayable.push(Unreplayable {
                    sql: first_line(&e.query),
                    reason,
                    share,
                }),
            }
        }
    }

    /// Move the query `name` to the unreplayable list; false if unknown.
    fn drop(&mut self, name: &str, message: &str) -> bool {
        let Some(at) = self.queries.iter().position(|(q, ..)| q.name == name) else {
            return false;
        };
        let (_, share, sql) = self.queries.remove(at);
        self.covered -= share;
        self.unreplayable.push(Unreplayable {
            sql: first_line(&sql),
            reason: format!("fails when replayed: {message}"),
            share,
        });
        true
    }
}

fn first_line(sql: &str) -> String {
    let one: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one.chars().count() > 100 {
        format!("{}…", one.chars().take(100).collect::<String>())
    } else {
        one
    }
}

/// A query with a generator for every `$n`, or why there cannot be one.
async fn build(
    admin: &Client,
    catalog: &Catalog,
    e: &Entry,
    i: &infer::Inferred,
    rank: usize,
    observed: &[Vec<String>],
) -> std::result::Result<Captured1, String> {
    let kind = match i.kind {
        StatementKind::Read => "read",
        StatementKind::Write => "write",
        StatementKind::Utility(what) => return Err(format!("a utility statement ({what})")),
        StatementKind::Frame => return Err("the tenant frame".into()),
    };
    if i.temporary {
        return Err("uses a temporary table".into());
    }
    // The server types each $n as the application's statement had it; a
    // literal it cannot type as a parameter (an argument of a variadic
    // "any" function) was text.
    let mut sql = e.query.clone();
    let prepared = loop {
        match admin.prepare(&sql).await {
            Ok(p) => break p,
            Err(err) => {
                let untyped = err
                    .as_db_error()
                    .filter(|d| d.code().code() == "42P18")
                    .and_then(|d| d.message().split('$').nth(1))
                    .and_then(|n| n.trim().parse::<u32>().ok());
                match untyped {
                    Some(n) if !sql.contains(&format!("${n}::text")) => {
                        sql = normalize::cast_to_text(&sql, n);
                    }
                    _ => {
                        return Err(format!(
                            "does not prepare here: {}",
                            crate::error::describe_chain(&err)
                        ));
                    }
                }
            }
        }
    };
    let mut params = Vec::new();
    let mut candidates = Vec::new();
    for (k, ty) in prepared.params().iter().enumerate() {
        let n = k as i32 + 1;
        let uses = i.uses.get(&n).map(Vec::as_slice).unwrap_or_default();
        let seen = observed.get(k).map(Vec::as_slice).unwrap_or_default();
        let g =
            generator(catalog, i, uses, ty.name(), seen).map_err(|why| format!("${n}: {why}"))?;
        if seen.is_empty() {
            let others = guesses(catalog, i, uses, ty.name(), &g);
            if others.len() > 1 {
                candidates.push(calibrate::Candidates {
                    param: k,
                    generators: others,
                });
            }
        }
        params.push(g);
    }
    let per_call = match (e.blocks, e.rows) {
        (Some(blocks), Some(rows)) if e.calls > 0 => Some(calibrate::PerCall {
            blocks: blocks as f64 / e.calls as f64,
            rows: rows as f64 / e.calls as f64,
            ms: e.total_ms / e.calls as f64,
        }),
        _ => None,
    };
    let table = i.tables.first().map_or("query", |t| t.name.as_str());
    Ok(Captured1 {
        name: format!("q{rank:02}_{}_{}", kind, sanitize(table)),
        kind,
        weight: e.calls.max(1),
        sql,
        params,
        total_ms: e.total_ms,
        notes: page_notes(i, observed),
        tenant: crate::workload::TenantPick::Weighted,
        candidates,
        per_call,
    })
}

/// For a number compared in a range (`value BETWEEN $1 AND $2`), spans of
/// the column's histogram: the lower half, the upper half, the whole. Two
/// values sampled one by one make an empty range half the time; a lower
/// bound drawn from the lower half and an upper from the upper do not.
fn range_spans(
    catalog: &Catalog,
    i: &infer::Inferred,
    uses: &[Use],
    type_name: &str,
) -> Vec<String> {
    let integer = matches!(type_name, "int2" | "int4" | "int8");
    if !integer && !matches!(type_name, "numeric" | "float4" | "float8") {
        return Vec::new();
    }
    let bounds = uses.iter().find_map(|u| match u {
        Use::Column {
            table,
            column,
            range: true,
            ..
        } => {
            let t = catalog.find(table.as_ref(), &i.tables, column)?;
            let (_, b) = t.bounds.iter().find(|(c, _)| c == column)?;
            let numbers: Vec<f64> = b.iter().filter_map(|v| v.parse().ok()).collect();
            (numbers.len() >= 3 && numbers.len() == b.len()).then_some(numbers)
        }
        _ => None,
    });
    let Some(b) = bounds else {
        return Vec::new();
    };
    let (lo, mid, hi) = (b[0], b[b.len() / 2], b[b.len() - 1]);
    [(lo, mid), (mid, hi), (lo, hi)]
        .iter()
        .map(|&(a, z)| {
            if integer {
                format!("{{ int = [{}, {}] }}", a.round() as i64, z.round() as i64)
            } else {
                format!("{{ float = [{a}, {z}] }}")
            }
        })
        .collect()
}

/// A column with at most this many common values is a category whose
/// values are each tried as the application's constant.
const MAX_CATEGORIES: usize = 8;

/// The generators worth trying for a parameter whose generator `current`
/// is a guess (a window, an interval, a page size, which side of a foreign
/// key to sample), `current` first; a single entry when there is nothing
/// else to try ([`calibrate`] picks among them).
fn guesses(
    catalog: &Catalog,
    i: &infer::Inferred,
    uses: &[Use],
    type_name: &str,
    current: &str,
) -> Vec<String> {
    let mut out = vec![current.to_string()];
    let mut add = |g: String| {
        if !out.contains(&g) {
            out.push(g);
        }
    };
    if current.starts_with("{ days_ago") {
        for [lo, hi] in calibrate::WINDOWS {
            add(format!("{{ days_ago = [{lo}, {hi}] }}"));
        }
    } else if type_name == "interval" && current.starts_with("{ value") {
        for width in calibrate::INTERVALS {
            add(format!("{{ value = \"{width}\" }}"));
        }
    } else if uses.contains(&Use::Limit) && current.starts_with("{ int") {
        for page in calibrate::PAGES {
            add(format!("{{ int = [{page}, {page}] }}"));
        }
    } else if current.starts_with("{ sample") || current.starts_with("{ choice") {
        for g in range_spans(catalog, i, uses, type_name) {
            add(g);
        }
        for u in uses {
            let Use::Column {
                table,
                column,
                range: false,
                written: false,
                excluded,
            } = u
            else {
                continue;
            };
            let Some(found) = catalog.find(table.as_ref(), &i.tables, column) else {
                continue;
            };
            // A category (`d.status = $1`): pg_stat_statements turns the
            // application's constant ('open') into a parameter, and a draw
            // by frequency mixes in the others.
            if let Some((_, common)) = found.common.iter().find(|(c, _)| c == column) {
                if (2..=MAX_CATEGORIES).contains(&common.len()) {
                    for v in common {
                        add(format!("{{ value = {} }}", toml_string(v)));
                    }
                }
            }
            if *excluded {
                continue;
            }
            // `o.customer_id = $1`: the application may hold any customer
            // (its page lists their orders), not one drawn per order, which
            // favours the customers with many.
            for (from, to_table, to_column) in &found.references {
                let name = infer::TableName {
                    schema: None,
                    name: to_table.clone(),
                };
                let Some(parent) = catalog.table(&name) else {
                    continue;
                };
                if from == column
                    && !catalog.is_tenant_column(parent, to_column)
                    && catalog.samples_per_tenant(parent)
                {
                    let name = toml_string(&format!(
                        "{}.{}",
                        parent.qualified(),
                        catalog::ident(to_column)
                    ));
                    add(format!("{{ sample = {name} }}"));
                }
            }
        }
    }
    out
}

fn sanitize(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// The `LIMIT` a statement without logged values replays with: a typical
/// page size.
const PAGE_SIZE: i64 = 20;

/// The TOML comment over a query's `params` for each `LIMIT` / `OFFSET`
/// parameter whose value was not observed: what the replay sends and how
/// to widen it.
fn page_notes(i: &infer::Inferred, observed: &[Vec<String>]) -> Vec<String> {
    let mut numbered: Vec<(&i32, &Vec<Use>)> = i.uses.iter().collect();
    numbered.sort_by_key(|(n, _)| **n);
    let mut notes = Vec::new();
    for (n, uses) in numbered {
        let seen = usize::try_from(*n - 1)
            .ok()
            .and_then(|k| observed.get(k))
            .is_some_and(|v| !v.is_empty());
        if seen {
            continue;
        }
        if uses.contains(&Use::Limit) {
            notes.push(format!(
                "${n} is a LIMIT and the source kept no values: {PAGE_SIZE} rows, a typical \
                 page; widen with {{ int = [1, 100] }}"
            ));
        } else if uses.contains(&Use::Offset) {
            notes.push(format!(
                "${n} is an OFFSET and the source kept no values: 0, the first page (an ORM's \
                 default); widen with {{ int = [0, 100] }} to replay later pages"
            ));
        }
    }
    notes
}

/// The generator of one `$n` (TOML inline table text).
fn generator(
    catalog: &Catalog,
    i: &infer::Inferred,
    uses: &[Use],
    type_name: &str,
    observed: &[String],
) -> std::result::Result<String, String> {
    // Values a log showed replace every guess below; a column sampled per
    // tenant still wins over them (its values belong to the tenant the
    // replay sets, a logged value to whichever tenant sent it).
    if !observed.is_empty()
        && !uses
            .iter()
            .any(|u| matches!(u, Use::Column { .. } | Use::SerialOf(_)))
    {
        return Ok(domain::choice(observed));
    }
    // A column the value belongs to but cannot be sampled through: its
    // CHECK constraints or common values decide, before the type does.
    let mut unsampled: Option<(&catalog::Table, &str)> = None;
    for u in referencing_first(catalog, i, uses) {
        match u {
            // pg_stat_statements keeps no values (a log's were taken
            // above): an ORM's first page, which is what most calls fetch
            // (Prisma sends OFFSET 0 without `skip`); a wider draw replays
            // pages past the end that come back empty.
            Use::Limit => return Ok(format!("{{ int = [{PAGE_SIZE}, {PAGE_SIZE}] }}")),
            Use::Offset => return Ok("{ int = [0, 0] }".into()),
            Use::SerialOf(k) => {
                // The written table's own sequence: the statement's first table.
                let table = i.tables.first().and_then(|t| catalog.table(t));
                let Some(t) = table else { continue };
                let value = match k {
                    0 => t.qualified(),
                    _ => match t.serial.first() {
                        Some(c) => c.clone(),
                        None => continue,
                    },
                };
                return Ok(format!("{{ value = {} }}", toml_string(&value)));
            }
            Use::Array => {
                return Err("an array parameter (= ANY($n)): no array generator yet".into());
            }
            Use::Argument { function, index } => {
                if let Some(g) = argument(function, *index) {
                    return Ok(g);
                }
            }
            Use::Column {
                table,
                column,
                range,
                written,
                excluded,
            } => {
                let Some(found) = catalog.find(table.as_ref(), &i.tables, column) else {
                    continue;
                };
                // What is left out does not belong to a tenant: the values
                // a log showed, else the rare ones.
                if *excluded {
                    if !observed.is_empty() {
                        return Ok(domain::choice(observed));
                    }
                    if let Some(rare) = rare_values(found, column) {
                        return Ok(domain::choice(&rare));
                    }
                }
                if *written && found.tied.iter().any(|c| c == column) {
                    if !observed.is_empty() {
                        return Ok(domain::choice(observed));
                    }
                    return Err(format!(
                        "writes {}.{column}, which a CHECK constraint ties to other columns: \
                         values drawn one by one would break it (23514), and the constants the \
                         application wrote are not in pg_stat_statements — capture from a \
                         server log (--from-log) to replay it",
                        found.name
                    ));
                }
                match column_generator(catalog, i, found, column, *range, *written)? {
                    Some(g) => return Ok(g),
                    None => unsampled = unsampled.or(Some((found, column.as_str()))),
                }
            }
        }
    }
    if !observed.is_empty() {
        return Ok(domain::choice(observed));
    }
    if let Some(g) = unsampled.and_then(|(t, c)| t.domain_generator(c)) {
        return Ok(g);
    }
    by_type(type_name)
}

/// The rarer half of `column`'s most common values (the planner's list is
/// most common first): what `status <> $1` or `NOT IN ($1, $2)` leaves out
/// in an application is an exception ('cancelled'), and a value drawn by
/// frequency would exclude most rows instead. `None` with under two values.
fn rare_values(table: &catalog::Table, column: &str) -> Option<Vec<String>> {
    let (_, common) = table.common.iter().find(|(c, _)| c == column)?;
    (common.len() >= 2).then(|| common[common.len() / 2..].to_vec())
}

/// `uses` with a column that references another use's column by a foreign
/// key first: `oi.order_id = $1 … o.id = $1` wants an order that has items,
/// and every value of the referencing column is one of the other's too.
fn referencing_first<'a>(catalog: &Catalog, i: &infer::Inferred, uses: &'a [Use]) -> Vec<&'a Use> {
    let column_of = |u: &Use| match u {
        Use::Column { table, column, .. } => catalog
            .find(table.as_ref(), &i.tables, column)
            .map(|t| (t.name.clone(), column.clone(), t.references.clone())),
        _ => None,
    };
    let columns: Vec<_> = uses.iter().map(column_of).collect();
    let references_another = |k: usize| {
        columns[k].as_ref().is_some_and(|(_, col, refs)| {
            refs.iter().any(|(from, table, to)| {
                from == col
                    && columns
                        .iter()
                        .flatten()
                        .any(|(t, c, _)| t == table && c == to)
            })
        })
    };
    let (first, rest): (Vec<usize>, Vec<usize>) =
        (0..uses.len()).partition(|k| references_another(*k));
    first.into_iter().chain(rest).map(|k| &uses[k]).collect()
}

/// Arguments whose value the function restricts: a unit, a format.
fn argument(function: &str, index: usize) -> Option<String> {
    let value = match (function, index) {
        ("date_trunc" | "date_part", 0) => "day",
        ("to_char", 1) => "YYYY-MM-DD",
        ("round" | "trunc", 1) => "2",
        ("nullif", 1) => "0",
        _ => return None,
    };
    Some(format!("{{ value = \"{value}\" }}"))
}

/// The generator of a value compared with or written to `column` of
/// `found`; `Ok(None)` when it cannot be sampled per tenant.
fn column_generator(
    catalog: &Catalog,
    i: &infer::Inferred,
    found: &catalog::Table,
    column: &str,
    range: bool,
    written: bool,
) -> std::result::Result<Option<String>, String> {
    if catalog.is_tenant_column(found, column) {
        return Ok(Some("{ tenant = true }".into()));
    }
    let ty = found.type_of(column).unwrap_or_default();
    if range && (ty.starts_with("timestamp") || ty == "date") {
        return Ok(Some("{ days_ago = [0, 90] }".into()));
    }
    if written && found.in_written_key(column, &written_columns(i)) {
        // A whole unique key from sampled values would fail with 23505 on
        // every replay: fresh random values instead.
        return fresh(ty).map(Some).ok_or_else(|| {
            format!(
                "writes into unique key column {}.{column} of type {ty}: every replay of a \
                 sampled value would fail with 23505, and crmbench has no fresh-value \
                 generator of that type yet",
                found.name
            )
        });
    }
    if !catalog.samples_per_tenant(found) {
        return Ok(None);
    }
    let name = toml_string(&format!("{}.{}", found.qualified(), catalog::ident(column)));
    Ok(Some(format!("{{ sample = {name} }}")))
}

/// The generator of a parameter nothing but its type says anything about.
/// A number there was a constant of the statement's own text (a divisor, a
/// step, `x - 1`): 1, the one that never divides by zero (22012) nor takes
/// a guarded counter below its CHECK (23514).
fn by_type(type_name: &str) -> std::result::Result<String, String> {
    Ok(match type_name {
        "int2" | "int4" | "int8" | "oid" | "numeric" | "float4" | "float8" => {
            "{ value = \"1\" }".into()
        }
        "bool" => "{ choice = [\"true\", \"false\"] }".into(),
        "text" | "varchar" | "bpchar" | "name" | "unknown" => "{ value = \"captured\" }".into(),
        "timestamp" | "timestamptz" | "date" => "{ days_ago = [0, 30] }".into(),
        "interval" => "{ value = \"1 day\" }".into(),
        "json" | "jsonb" => "{ value = \"{}\" }".into(),
        other => {
            return Err(format!(
                "a parameter of type {other} with no column to sample"
            ));
        }
    })
}

/// A generator of new values of type `ty` (unique with high probability).
fn fresh(ty: &str) -> Option<String> {
    match ty {
        "int8" | "numeric" => Some("{ int = [1000000000000, 9000000000000000] }".into()),
        "int4" => Some("{ int = [100000000, 2000000000] }".into()),
        _ => None,
    }
}

/// The columns the statement writes from parameters, by table.
fn written_columns(i: &infer::Inferred) -> Vec<(Option<infer::TableName>, String)> {
    i.uses
        .values()
        .flatten()
        .filter_map(|u| match u {
            Use::Column {
                table,
                column,
                written: true,
                ..
            } => Some((table.clone(), column.clone())),
            _ => None,
        })
        .collect()
}

fn toml_string(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// What a captured file's header says.
struct Header<'a> {
    source: &'a str,
    role: &'a str,
    coverage: f64,
    unreplayable: &'a [Unreplayable],
}

fn render(
    queries: &[(Captured1, f64, String)],
    context: &catalog::TenantContext,
    header: &Header<'_>,
) -> String {
    let Header {
        source,
        role,
        coverage,
        unreplayable,
    } = *header;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Captured by crmbench capture from {source} (role {role}).\n\
         # coverage: {:.1}% of the execution time of the role's top-level statements\n\
         # Sampled values stay on this machine; a file with real values is client data.",
        coverage * 100.0
    );
    for u in unreplayable {
        let _ = writeln!(
            out,
            "# not replayable ({:.1}% of time): {} — {}",
            u.share * 100.0,
            u.sql,
            u.reason
        );
    }
    out.push_str("\nname = \"captured\"\n");
    let _ = writeln!(
        out,
        "description = {}\n",
        toml_string(&format!(
            "captured from {source}, {:.1}% of execution time",
            coverage * 100.0
        ))
    );
    if let Some(setting) = &context.setting {
        let _ = writeln!(
            out,
            "[context]\nrole = {}\ntenant_setting = {}\ntenants = {}",
            toml_string(role),
            toml_string(setting),
            toml_string(context.tenants.as_deref().unwrap_or_default())
        );
        // The sampler reads each tenant's rows through this column.
        if let Some(column) = context.column.as_deref().filter(|c| *c != "tenant_id") {
            let _ = writeln!(out, "tenant_column = {}", toml_string(column));
        }
        out.push('\n');
    } else {
        let _ = writeln!(out, "[context]\nrole = {}\n", toml_string(role));
    }
    for (q, ..) in queries {
        let _ = writeln!(
            out,
            "[[query]]\nname = {}\nkind = \"{}\"\nweight = {}\nsql = {}",
            toml_string(&q.name),
            q.kind,
            q.weight,
            toml_string(&q.sql),
        );
        if q.tenant == crate::workload::TenantPick::Uniform {
            out.push_str("tenant = \"uniform\"\n");
        }
        for note in &q.notes {
            let _ = writeln!(out, "# {note}");
        }
        let _ = writeln!(out, "params = [{}]\n", q.params.join(", "));
    }
    out
}

/// What `capture` prints: the file, the coverage, and each statement left out.
pub fn render_summary(c: &Captured, path: &std::path::Path) -> String {
    let mut out = format!(
        "capture: {} queries of role {} written to {}\n  coverage: {:.1}% of the role's execution time\n",
        c.queries,
        c.role,
        path.display(),
        c.coverage * 100.0
    );
    for u in &c.unreplayable {
        let _ = writeln!(
            out,
            "  not replayable ({:.1}% of time): {} — {}",
            u.share * 100.0,
            u.sql,
            u.reason
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page_generators(observed: &[Vec<String>]) -> (Vec<String>, Vec<String>) {
        let i =
            infer::infer("SELECT id FROM orders WHERE customer_id = 7 LIMIT $1 OFFSET $2").unwrap();
        let params = (1..=2)
            .map(|n| {
                let seen = observed.get(n - 1).map(Vec::as_slice).unwrap_or_default();
                generator(&Catalog::default(), &i, &i.uses[&(n as i32)], "int8", seen).unwrap()
            })
            .collect();
        (params, page_notes(&i, observed))
    }

    /// Without values (pg_stat_statements) a page is the first one, as an
    /// ORM sends it without `skip`: a draw of 0–100 replayed empty pages.
    #[test]
    fn limit_and_offset_without_values_are_the_first_page() {
        let (params, notes) = page_generators(&[]);
        assert_eq!(params, ["{ int = [20, 20] }", "{ int = [0, 0] }"]);
        assert_eq!(notes.len(), 2, "{notes:?}");
        assert!(notes[0].starts_with("$1 is a LIMIT"), "{notes:?}");
        assert!(
            notes[1].contains("widen with { int = [0, 100] }"),
            "{notes:?}"
        );
    }

    /// From a log, the values the application sent, and no note.
    #[test]
    fn limit_and_offset_from_a_log_are_the_logged_values() {
        let logged = [vec!["20".to_string()], vec!["0".into(), "20".into()]];
        let (params, notes) = page_generators(&logged);
        assert_eq!(params[0], domain::choice(&logged[0]));
        assert_eq!(params[1], domain::choice(&logged[1]));
        assert!(notes.is_empty(), "{notes:?}");
    }

    /// orders (tenant, customer → customers, a status of four values) and
    /// customers, under a tenant policy.
    fn shop() -> Catalog {
        let orders = catalog::Table {
            schema: "crm".into(),
            name: "orders".into(),
            columns: [
                ("tenant_id", "uuid"),
                ("customer_id", "int8"),
                ("status", "text"),
            ]
            .map(|(c, t)| (c.to_string(), t.to_string()))
            .to_vec(),
            references: vec![
                ("tenant_id".into(), "customers".into(), "tenant_id".into()),
                ("customer_id".into(), "customers".into(), "id".into()),
            ],
            common: vec![(
                "status".into(),
                ["paid", "shipped", "cancelled", "refunded"]
                    .map(String::from)
                    .to_vec(),
            )],
            ..Default::default()
        };
        let customers = catalog::Table {
            schema: "crm".into(),
            name: "customers".into(),
            columns: [("tenant_id", "uuid"), ("id", "int8")]
                .map(|(c, t)| (c.to_string(), t.to_string()))
                .to_vec(),
            ..Default::default()
        };
        Catalog::of(vec![orders, customers], "tenant_id")
    }

    fn generator_and_guesses(sql: &str, n: i32, ty: &str) -> (String, Vec<String>) {
        let catalog = shop();
        let i = infer::infer(sql).unwrap();
        let uses = &i.uses[&n];
        let g = generator(&catalog, &i, uses, ty, &[]).unwrap();
        let others = guesses(&catalog, &i, uses, ty, &g);
        (g, others)
    }

    /// A foreign key's value is tried from the referenced table too (any
    /// customer, not one drawn per order); a category's values one by one.
    #[test]
    fn guesses_of_a_key_and_a_category() {
        let sql = "SELECT id FROM orders WHERE tenant_id = $1 AND customer_id = $2 AND status = $3";
        let (g, others) = generator_and_guesses(sql, 2, "int8");
        assert_eq!(g, "{ sample = \"crm.orders.customer_id\" }");
        assert_eq!(others, [g.as_str(), "{ sample = \"crm.customers.id\" }"]);
        let (g, others) = generator_and_guesses(sql, 3, "text");
        assert_eq!(others[0], g);
        assert!(
            others.contains(&"{ value = \"paid\" }".to_string()),
            "{others:?}"
        );
        assert_eq!(others.len(), 5, "{others:?}");
        // The tenant is no guess.
        let (g, others) = generator_and_guesses(sql, 1, "uuid");
        assert_eq!((g.as_str(), others.len()), ("{ tenant = true }", 1));
    }

    /// A number in a range is tried from the lower and the upper half of
    /// its histogram, as an integer where the column is one.
    #[test]
    fn a_number_in_a_range_is_tried_from_each_half() {
        let mut deals = catalog::Table {
            schema: "crm".into(),
            name: "deals".into(),
            columns: [
                ("tenant_id", "uuid"),
                ("value", "numeric"),
                ("size", "int4"),
            ]
            .map(|(c, t)| (c.to_string(), t.to_string()))
            .to_vec(),
            ..Default::default()
        };
        deals.bounds = vec![
            (
                "value".into(),
                ["10", "100.5", "400", "900", "5000"]
                    .map(String::from)
                    .to_vec(),
            ),
            ("size".into(), ["1", "2", "3"].map(String::from).to_vec()),
        ];
        let catalog = Catalog::of(vec![deals], "tenant_id");
        let i = infer::infer("SELECT 1 FROM deals WHERE value BETWEEN $1 AND $2 AND size > $3")
            .unwrap();
        let g = generator(&catalog, &i, &i.uses[&1], "numeric", &[]).unwrap();
        let others = guesses(&catalog, &i, &i.uses[&1], "numeric", &g);
        assert_eq!(
            others[1..],
            [
                "{ float = [10, 400] }",
                "{ float = [400, 5000] }",
                "{ float = [10, 5000] }"
            ]
        );
        let g = generator(&catalog, &i, &i.uses[&3], "int4", &[]).unwrap();
        let others = guesses(&catalog, &i, &i.uses[&3], "int4", &g);
        assert!(
            others.contains(&"{ int = [2, 3] }".to_string()),
            "{others:?}"
        );
    }

    /// What a statement leaves out is a rare value, not a common one.
    #[test]
    fn an_excluded_value_is_a_rare_one() {
        let sql = "SELECT id FROM orders WHERE status NOT IN ($1, $2)";
        let (g, others) = generator_and_guesses(sql, 1, "text");
        assert_eq!(g, domain::choice(&["cancelled".into(), "refunded".into()]));
        assert!(others.len() > 1, "{others:?}");
    }

    /// Windows, interval widths and page sizes are tried, the guess first.
    #[test]
    fn guesses_of_windows_widths_and_pages() {
        let catalog = Catalog::default();
        let i = infer::infer("SELECT 1 LIMIT $1").unwrap();
        let limit = guesses(&catalog, &i, &i.uses[&1], "int8", "{ int = [20, 20] }");
        assert_eq!(limit.len(), 1 + calibrate::PAGES.len() - 1, "{limit:?}");
        assert_eq!(limit[0], "{ int = [20, 20] }");
        let window = guesses(&catalog, &i, &[], "timestamptz", "{ days_ago = [0, 90] }");
        assert_eq!(window.len(), calibrate::WINDOWS.len(), "{window:?}");
        let width = guesses(&catalog, &i, &[], "interval", "{ value = \"1 day\" }");
        assert_eq!(width.len(), calibrate::INTERVALS.len(), "{width:?}");
        assert_eq!(
            guesses(&catalog, &i, &[], "text", "{ value = \"x\" }").len(),
            1
        );
    }

    /// Fitted constants become literals; the other parameters are
    /// renumbered in order, and a parameter not fitted stays.
    #[test]
    fn fitted_constants_are_written_in_and_the_rest_renumbered() {
        let params: Vec<String> = [
            "{ tenant = true }",
            "{ value = \"it's\" }",
            "{ sample = \"crm.t.c\" }",
            "{ int = [50, 50] }",
            "{ value = \"1\" }",
        ]
        .map(String::from)
        .to_vec();
        let sql = "SELECT $1, $2, '$3', $3 FROM t WHERE c = $5 LIMIT $4";
        let (text, kept, inlined) = inline_constants(sql, &params, &[1, 3]);
        assert_eq!(
            text,
            "SELECT $1, 'it''s', '$3', $2 FROM t WHERE c = $3 LIMIT 50"
        );
        assert_eq!(
            kept,
            [params[0].clone(), params[2].clone(), params[4].clone()]
        );
        assert_eq!(inlined[1], Placed::Literal("'it''s'".into()));
        assert_eq!(inlined[4], Placed::Param(3));
        let (same, ..) = inline_constants(sql, &params, &[2]);
        assert_eq!(same, sql);
    }

    /// The note sits over `params` as a TOML comment: the file still loads.
    #[test]
    fn page_notes_render_as_comments() {
        let i = infer::infer("SELECT 1 LIMIT $1").unwrap();
        let q = Captured1 {
            name: "q01_read_query".into(),
            kind: "read",
            weight: 3,
            sql: "SELECT 1 LIMIT $1".into(),
            params: vec!["{ int = [20, 20] }".into()],
            total_ms: 1.0,
            notes: page_notes(&i, &[]),
            tenant: crate::workload::TenantPick::Weighted,
            candidates: Vec::new(),
            per_call: None,
        };
        let header = Header {
            source: "test",
            role: "app",
            coverage: 1.0,
            unreplayable: &[],
        };
        let text = render(
            &[(q, 1.0, String::new())],
            &catalog::TenantContext::default(),
            &header,
        );
        assert!(text.contains("# $1 is a LIMIT"), "{text}");
        let parsed: toml::Value = toml::from_str(&text).unwrap();
        assert_eq!(
            parsed["query"][0]["params"][0]["int"][0].as_integer(),
            Some(20)
        );
    }
}
