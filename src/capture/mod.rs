//! `crmbench capture`: a workload file from what the server really ran, read
//! from `pg_stat_statements` (top-level statements of the target database,
//! by the application's role). One query per normalized statement, weighted
//! by its calls, the statements taken by total execution time until the
//! coverage asked for; every `$n` gets a generator inferred from the parse
//! tree ([`infer`]) and the catalog ([`catalog`]); the tenant context comes
//! from the RLS policies. Statements that cannot be replayed are listed with
//! their reason and share of execution time, in the output and in the file's
//! header, never dropped silently.

pub mod catalog;
pub mod infer;
pub mod normalize;
pub mod realism;
pub mod stats;

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
}

/// Capture the target's workload into `opts.out`.
pub async fn capture(target: &Target, opts: &CaptureOptions) -> Result<Captured> {
    let admin = pg::connect(&target.admin()).await?;
    pg::privileges::check_capture(&admin, opts.role.as_deref()).await?;
    let entries = read_entries(&admin, target.database(), opts.window).await?;
    let role = match &opts.role {
        Some(r) => r.clone(),
        None => stats::application_role(&admin, &entries).await?,
    };
    let catalog = Catalog::read(&admin).await?;
    let entries = stats::grouped(
        entries
            .into_iter()
            .filter(|e| e.role == role)
            .map(|mut e| {
                e.query = normalize::typed_literals(&e.query);
                e
            })
            .collect(),
    );
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
    loop {
        sel.fill(&admin, &catalog, opts).await;
        let text = render(
            &sel.queries,
            &context,
            &role,
            sel.covered,
            &sel.unreplayable,
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
    let source = sel
        .queries
        .iter()
        .map(|(q, ..)| realism::Source {
            name: q.name.clone(),
            sql: q.sql.clone(),
            calls: q.weight,
            total_ms: q.total_ms,
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

/// The statements taken so far, and those left to take.
struct Selection {
    pending: std::collections::VecDeque<(Entry, std::result::Result<infer::Inferred, String>)>,
    total: f64,
    queries: Vec<(Captured1, f64, String)>,
    unreplayable: Vec<Unreplayable>,
    covered: f64,
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
            let built = match inferred {
                Ok(i) => build(admin, catalog, &e, &i, rank).await,
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
    for (k, ty) in prepared.params().iter().enumerate() {
        let n = k as i32 + 1;
        let uses = i.uses.get(&n).map(Vec::as_slice).unwrap_or_default();
        params.push(generator(catalog, i, uses, ty.name()).map_err(|why| format!("${n}: {why}"))?);
    }
    let table = i.tables.first().map_or("query", |t| t.name.as_str());
    Ok(Captured1 {
        name: format!("q{rank:02}_{}_{}", kind, sanitize(table)),
        kind,
        weight: e.calls.max(1),
        sql,
        params,
        total_ms: e.total_ms,
    })
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

/// The generator of one `$n` (TOML inline table text).
fn generator(
    catalog: &Catalog,
    i: &infer::Inferred,
    uses: &[Use],
    type_name: &str,
) -> std::result::Result<String, String> {
    for u in uses {
        match u {
            Use::Limit => return Ok("{ int = [1, 50] }".into()),
            Use::Offset => return Ok("{ int = [0, 100] }".into()),
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
            Use::Column {
                table,
                column,
                range,
                written,
            } => {
                let Some(found) = catalog.find(table.as_ref(), &i.tables, column) else {
                    continue;
                };
                if catalog.is_tenant_column(found, column) {
                    return Ok("{ tenant = true }".into());
                }
                let ty = found.type_of(column).unwrap_or_default();
                if *range && (ty.starts_with("timestamp") || ty == "date") {
                    return Ok("{ days_ago = [0, 90] }".into());
                }
                if *written && found.in_written_key(column, &written_columns(i)) {
                    // A whole unique key from sampled values would fail with
                    // 23505 on every replay: fresh random values instead.
                    return fresh(ty).ok_or_else(|| {
                        format!(
                            "writes into unique key column {}.{column} of type {ty}: every replay \
                             of a sampled value would fail with 23505, and crmbench has no \
                             fresh-value generator of that type yet",
                            found.name
                        )
                    });
                }
                if !catalog.samples_per_tenant(found) {
                    // No tenant column to sample through: typed by the server below.
                    continue;
                }
                let name =
                    toml_string(&format!("{}.{}", found.qualified(), catalog::ident(column)));
                return Ok(format!("{{ sample = {name} }}"));
            }
        }
    }
    Ok(match type_name {
        "int2" | "int4" | "int8" | "oid" => "{ int = [0, 100] }".into(),
        "numeric" | "float4" | "float8" => "{ float = [0, 100] }".into(),
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

fn render(
    queries: &[(Captured1, f64, String)],
    context: &catalog::TenantContext,
    role: &str,
    coverage: f64,
    unreplayable: &[Unreplayable],
) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "# Captured by crmbench capture from pg_stat_statements (role {role}).\n\
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
            "captured from pg_stat_statements, {:.1}% of execution time",
            coverage * 100.0
        ))
    );
    if let Some(setting) = &context.setting {
        let _ = writeln!(
            out,
            "[context]\nrole = {}\ntenant_setting = {}\ntenants = {}\n",
            toml_string(role),
            toml_string(setting),
            toml_string(context.tenants.as_deref().unwrap_or_default())
        );
    } else {
        let _ = writeln!(out, "[context]\nrole = {}\n", toml_string(role));
    }
    for (q, ..) in queries {
        let _ = writeln!(
            out,
            "[[query]]\nname = {}\nkind = \"{}\"\nweight = {}\nsql = {}\nparams = [{}]\n",
            toml_string(&q.name),
            q.kind,
            q.weight,
            toml_string(&q.sql),
            q.params.join(", ")
        );
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
