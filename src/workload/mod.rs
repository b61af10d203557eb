//! Workload files (TOML): named queries with SQL using `$1..$n`, a weight, a
//! kind, one parameter generator per parameter, optionally several statements
//! run in one transaction; and the context transactions run in (the role, the
//! setting that carries the tenant, the tenant pool). Everything is validated
//! before anything runs; errors name the file, the line and the query.

pub mod check;
pub mod context;
pub mod frame;
pub mod params;
pub mod sampler;

use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use toml::Spanned;

use crate::error::{Error, Result};

/// How a query's tenant is chosen for each transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TenantPick {
    /// By tenant size (the data's skew).
    #[default]
    Weighted,
    /// Every tenant equally.
    Uniform,
    /// Among the largest 10% of tenants (by weight).
    Big,
    /// Among the smallest 50%.
    Small,
}

/// Read or write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// Changes nothing.
    Read,
    /// Changes data.
    Write,
}

/// Shape of a numeric distribution.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Dist {
    /// Every value equally likely.
    #[default]
    Uniform,
    /// Low values far more likely (power law, s = 1).
    Zipf,
    /// Bell around the middle (sd = range / 6), clamped to the range.
    Gaussian,
}

/// A parameter generator, as written in the file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct ParamSpec {
    tenant: Option<bool>,
    sample: Option<String>,
    miss_rate: Option<f64>,
    int: Option<[i64; 2]>,
    float: Option<[f64; 2]>,
    dist: Option<Dist>,
    days_ago: Option<[f64; 2]>,
    days_from_now: Option<[f64; 2]>,
    choice: Option<Vec<toml::Value>>,
    #[serde(rename = "ref")]
    reference: Option<String>,
    value: Option<toml::Value>,
}

/// A validated parameter generator.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Param {
    /// The transaction's tenant id.
    Tenant,
    /// A value of `table.column` from the tenant's rows.
    Sample {
        /// Table.
        table: String,
        /// Column.
        column: String,
        /// Share of draws that miss on purpose.
        miss_rate: f64,
    },
    /// An integer in `[lo, hi]`.
    Int {
        /// Lowest.
        lo: i64,
        /// Highest.
        hi: i64,
        /// Shape.
        dist: Dist,
    },
    /// A float in `[lo, hi]`.
    Float {
        /// Lowest.
        lo: f64,
        /// Highest.
        hi: f64,
        /// Shape.
        dist: Dist,
    },
    /// A timestamp between `hi` and `lo` days before the dataset's epoch
    /// (negative: after it; `days_from_now = [a, b]` is `[-b, -a]`).
    DaysAgo {
        /// Nearest.
        lo: f64,
        /// Farthest.
        hi: f64,
    },
    /// One of these values.
    Choice(Vec<String>),
    /// A column returned by an earlier statement of the transaction.
    Ref(String),
    /// A constant.
    Value(String),
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct StatementSpec {
    sql: Spanned<String>,
    #[serde(default)]
    params: Vec<ParamSpec>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QuerySpec {
    name: Spanned<String>,
    screen: Option<String>,
    kind: Kind,
    #[serde(default = "one")]
    weight: u32,
    #[serde(default)]
    tenant: TenantPick,
    sql: Option<Spanned<String>>,
    params: Option<Vec<ParamSpec>>,
    statements: Option<Vec<StatementSpec>>,
    #[serde(default)]
    route: Option<Route>,
    #[serde(default)]
    reads_own_writes: bool,
    #[serde(default = "yes")]
    gate: bool,
}

fn yes() -> bool {
    true
}

/// Where a query goes when the run has read replicas.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Route {
    /// The primary (the default for writes).
    Primary,
    /// A read replica (the default for reads).
    Replica,
}

fn one() -> u32 {
    1
}

/// How transactions are framed.
#[derive(Debug, Clone, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Context {
    /// Role every transaction runs as (`None`: the connection's own user).
    pub role: Option<String>,
    /// Setting that carries the tenant (`set_config(setting, id, true)`).
    pub tenant_setting: Option<String>,
    /// SQL returning (tenant id as text, weight) rows.
    pub tenants: Option<String>,
    /// How the frame sets the tenant: `set-config` (`SELECT set_config(
    /// setting, id, true)`, the default) or `set-local` (`SET LOCAL setting
    /// = 'id'`: what Citus propagates to its workers with
    /// `citus.propagate_set_commands = 'local'`; set_config is not).
    #[serde(default, skip_serializing_if = "is_set_config")]
    pub tenant_frame: FrameForm,
    /// The column that carries the tenant in the sampled tables (`None`:
    /// `tenant_id`); an ORM's schema may call it `"tenantId"`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_column: Option<String>,
}

/// How a frame sets the tenant.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum FrameForm {
    /// `SELECT set_config(setting, id, true)`.
    #[default]
    SetConfig,
    /// `SET LOCAL setting = 'id'`.
    SetLocal,
}

fn is_set_config(form: &FrameForm) -> bool {
    *form == FrameForm::SetConfig
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadSpec {
    version: Option<Spanned<i64>>,
    name: String,
    description: Option<String>,
    #[serde(default)]
    context: Context,
    #[serde(rename = "query", default)]
    queries: Vec<QuerySpec>,
}

/// One statement of a query.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Statement {
    /// SQL with `$1..$n`.
    pub sql: String,
    /// One generator per `$n`.
    pub params: Vec<Param>,
    /// Line of the `sql` key in the file.
    pub line: usize,
    /// Where each `$n` is in `sql`, found once at load by PostgreSQL's
    /// lexer (the simple protocol substitutes there on every transaction).
    #[serde(skip)]
    pub slots: Vec<crate::sql::Param>,
}

impl Statement {
    /// Whether a parameter takes a value returned by an earlier statement
    /// (so the statement must wait for it).
    pub fn uses_refs(&self) -> bool {
        self.params.iter().any(|p| matches!(p, Param::Ref(_)))
    }
}

/// One named query (a single statement or a transaction of several).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Query {
    /// Unique name.
    pub name: String,
    /// Which screen of the application issues it.
    pub screen: Option<String>,
    /// Read or write.
    pub kind: Kind,
    /// Relative frequency.
    pub weight: u32,
    /// Tenant choice.
    pub tenant: TenantPick,
    /// Statements, run in one transaction.
    pub statements: Vec<Statement>,
    /// Line of the `name` key in the file.
    pub line: usize,
    /// `route`: where it goes when the run has replicas (`None`: reads to
    /// a replica, writes to the primary).
    pub route: Option<Route>,
    /// It reads what the same client just wrote (view the order just
    /// placed): on a replica, a read that comes before the replica has
    /// replayed the client's last write is counted as stale.
    pub reads_own_writes: bool,
    /// `gate = false`: measured and reported, but the CI gate does not judge
    /// it (a query too rare, or too noisy, to decide in a CI run).
    pub gate: bool,
}

impl Query {
    /// Whether a run with replicas sends it to one.
    pub fn to_replica(&self) -> bool {
        match self.route {
            Some(r) => r == Route::Replica,
            None => self.kind == Kind::Read,
        }
    }
}

/// A validated workload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Workload {
    /// Version of the file format the file was written for ([`VERSION`]
    /// when it has no `version` key).
    pub version: u32,
    /// Name.
    pub name: String,
    /// What it models.
    pub description: Option<String>,
    /// Transaction framing.
    pub context: Context,
    /// Queries.
    pub queries: Vec<Query>,
    /// Where it was read from.
    pub path: PathBuf,
    /// FNV-1a of the file's bytes, hex: results say exactly which file ran.
    pub hash: String,
}

/// Version of the workload file format this crmbench writes; a file without
/// a `version` key is version 1. New keys are additive: a version is bumped
/// only for a change an older crmbench would misread.
pub const VERSION: u32 = 1;
/// Versions of the workload file format this crmbench reads.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

/// Where the built-in CRM workload lives in a checkout (every command's default).
pub const BUILT_IN_PATH: &str = "workloads/crm.toml";
/// The built-in CRM workload, as shipped.
pub const BUILT_IN: &str = include_str!("../../workloads/crm.toml");

impl Workload {
    /// Read and validate a workload file.
    pub fn load(path: &Path) -> Result<Workload> {
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            // The default path outside a checkout: the copy built into the
            // binary, so `crmbench demo` runs from anywhere.
            Err(_) if path == Path::new(BUILT_IN_PATH) => BUILT_IN.to_string(),
            Err(e) => return Err(Error::io("reading workload", path, e)),
        };
        Workload::parse(&text, path)
    }

    /// Validate workload text; `path` names it in errors.
    pub fn parse(text: &str, path: &Path) -> Result<Workload> {
        let file = SourceFile {
            text,
            path,
            lines: Lines::new(text),
        };
        let spec: WorkloadSpec = toml::from_str(text).map_err(|e| file.toml_error(&e))?;
        let version = file.version(spec.version.as_ref())?;
        if spec.queries.is_empty() {
            return Err(file.err(0, None, "no [[query]] in the file".into()));
        }
        let mut names = HashSet::new();
        let queries = spec
            .queries
            .into_iter()
            .map(|q| file.query(q, &mut names))
            .collect::<Result<Vec<_>>>()?;
        Ok(Workload {
            version,
            name: spec.name,
            description: spec.description,
            context: spec.context,
            queries,
            path: path.to_path_buf(),
            hash: format!("{:016x}", fnv1a(text.as_bytes())),
        })
    }

    /// The query of this name.
    pub fn query(&self, name: &str) -> Option<&Query> {
        self.queries.iter().find(|q| q.name == name)
    }
}

/// The text being validated and its path: turns spans into lines and
/// problems into errors that name the file, the line and the query.
struct SourceFile<'a> {
    text: &'a str,
    path: &'a Path,
    lines: Lines,
}

/// Where each line of a text starts, so a byte offset's line is a binary
/// search: counting newlines from the top for every query made parsing
/// quadratic (20k queries took 76 s).
struct Lines(Vec<usize>);

impl Lines {
    fn new(text: &str) -> Lines {
        let starts = text.bytes().enumerate().filter(|(_, b)| *b == b'\n');
        Lines(
            std::iter::once(0)
                .chain(starts.map(|(i, _)| i + 1))
                .collect(),
        )
    }

    /// 1-based line of the byte at `offset`.
    fn of(&self, offset: usize) -> usize {
        self.0.partition_point(|&start| start <= offset)
    }
}

impl SourceFile<'_> {
    fn err(&self, line: usize, query: Option<&str>, message: String) -> Error {
        Error::Workload {
            file: self.path.to_path_buf(),
            line,
            query: query.map(str::to_string),
            message,
        }
    }

    fn line<T>(&self, spanned: &Spanned<T>) -> usize {
        self.lines.of(spanned.span().start)
    }

    /// A TOML syntax error at its line. toml gives no message for some
    /// errors (a control character in a comment): then say what is there.
    fn toml_error(&self, e: &toml::de::Error) -> Error {
        let message = e.message().trim();
        let Some(start) = e.span().map(|s| s.start) else {
            let message = if message.is_empty() {
                "the file is not valid TOML"
            } else {
                message
            };
            return self.err(0, None, message.into());
        };
        let line = self.lines.of(start);
        if !message.is_empty() {
            return self.err(line, None, message.into());
        }
        let line_start = self.lines.0.get(line - 1).copied().unwrap_or(0);
        let column = self
            .text
            .get(line_start..start)
            .map_or(0, |t| t.chars().count() + 1);
        let message = match self.text.get(start..).and_then(|t| t.chars().next()) {
            Some(c) if c.is_control() => format!(
                "column {column}: control character U+{:04X} (TOML allows none but tab, in \
                 comments too)",
                u32::from(c)
            ),
            Some(c) => format!("column {column}: unexpected {c:?}"),
            None => "the file ends in the middle of a TOML value".into(),
        };
        self.err(line, None, message)
    }

    /// The file's format version: absent means 1; one this crmbench does
    /// not know is refused rather than half-understood.
    fn version(&self, version: Option<&Spanned<i64>>) -> Result<u32> {
        let Some(v) = version else {
            return Ok(VERSION);
        };
        let value = *v.get_ref();
        if let Some(n) = u32::try_from(value)
            .ok()
            .filter(|n| SUPPORTED_VERSIONS.contains(n))
        {
            return Ok(n);
        }
        let known: Vec<String> = SUPPORTED_VERSIONS.iter().map(u32::to_string).collect();
        let newest = SUPPORTED_VERSIONS.iter().max().copied().unwrap_or(VERSION);
        let newer = if value > i64::from(newest) {
            " (the file is for a newer crmbench)"
        } else {
            ""
        };
        let message = format!(
            "version = {value} is not supported: this crmbench reads workload file version{} {}{newer}",
            if known.len() == 1 { "" } else { "s" },
            known.join(", "),
        );
        Err(self.err(self.line(v), None, message))
    }

    /// Validate one `[[query]]`; `names` holds the names seen so far.
    fn query(&self, q: QuerySpec, names: &mut HashSet<String>) -> Result<Query> {
        let name = q.name.get_ref().clone();
        let line = self.line(&q.name);
        let fail = |message: &str| Err(self.err(line, Some(&name), message.into()));
        if !names.insert(name.clone()) {
            return fail("a query of this name already exists");
        }
        if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return fail("names use letters, digits and _ only");
        }
        if q.weight == 0 {
            return fail("weight must be at least 1");
        }
        if q.reads_own_writes && (q.kind != Kind::Read || q.route == Some(Route::Primary)) {
            return fail("reads_own_writes is for a read query a replica serves");
        }
        let specs: Vec<(Spanned<String>, Vec<ParamSpec>)> = match (q.sql, q.statements) {
            (Some(sql), None) => vec![(sql, q.params.unwrap_or_default())],
            (None, Some(st)) if q.params.is_none() && !st.is_empty() => {
                st.into_iter().map(|s| (s.sql, s.params)).collect()
            }
            (None, Some(_)) if q.params.is_some() => {
                return fail("with [[query.statements]], put params inside each statement");
            }
            (Some(_), Some(_)) => {
                return fail("give either sql (one statement) or [[query.statements]], not both");
            }
            _ => return fail("missing sql (or [[query.statements]])"),
        };
        let statements = specs
            .into_iter()
            .enumerate()
            .map(|(i, (sql, params))| self.statement(&name, i, sql, params))
            .collect::<Result<Vec<_>>>()?;
        Ok(Query {
            name,
            screen: q.screen,
            kind: q.kind,
            weight: q.weight,
            tenant: q.tenant,
            statements,
            line,
            route: q.route,
            reads_own_writes: q.reads_own_writes,
            gate: q.gate,
        })
    }

    /// Validate statement `i` of query `name`: its `$n` numbering against
    /// its parameter generators, each generator, and refs only after the
    /// first statement.
    fn statement(
        &self,
        name: &str,
        i: usize,
        sql: Spanned<String>,
        params: Vec<ParamSpec>,
    ) -> Result<Statement> {
        let line = self.line(&sql);
        let sql = sql.into_inner();
        let err = |message: String| self.err(line, Some(name), message);
        let slots = crate::sql::params(&sql)
            .map_err(|e| err(format!("the SQL cannot be read by PostgreSQL's lexer: {e}")))?;
        let used = distinct_numbers(&slots);
        let n = used.iter().max().copied().unwrap_or(0);
        if n != params.len() {
            let uses = if n == 0 {
                // `$1` in a string, a dollar-quoted body or a comment is text.
                "no parameters ($n in strings and comments is text)".to_string()
            } else {
                format!("$1..${n}")
            };
            return Err(err(format!(
                "the SQL uses {uses} but {} parameter generator{} given",
                params.len(),
                if params.len() == 1 { " is" } else { "s are" }
            )));
        }
        if let Some(missing) = (1..=n).find(|k| !used.contains(k)) {
            return Err(err(format!(
                "${missing} is never used in the SQL (parameters must be $1..${n})"
            )));
        }
        let params = params
            .into_iter()
            .enumerate()
            .map(|(k, p)| {
                convert(p)
                    .and_then(|p| params::check_range(&p).map(|()| p))
                    .map_err(|m| err(format!("parameter ${}: {m}", k + 1)))
            })
            .collect::<Result<Vec<_>>>()?;
        if i == 0 && params.iter().any(|p| matches!(p, Param::Ref(_))) {
            return Err(err(
                "a ref parameter needs an earlier statement in the same transaction".into(),
            ));
        }
        Ok(Statement {
            sql,
            params,
            line,
            slots,
        })
    }
}

/// A parameter generator as written, validated; the error says what is
/// wrong with it (the caller adds file, line and `$n`).
fn convert(p: ParamSpec) -> std::result::Result<Param, String> {
    check_one_kind(&p)?;
    let dist = p.dist.unwrap_or_default();
    if let Some(t) = p.tenant {
        return if t {
            Ok(Param::Tenant)
        } else {
            Err("tenant = false means nothing".into())
        };
    }
    if let Some(s) = p.sample {
        return sample(&s, p.miss_rate.unwrap_or(0.0));
    }
    if let Some([lo, hi]) = p.int {
        return if lo <= hi {
            Ok(Param::Int { lo, hi, dist })
        } else {
            Err(format!("int = [{lo}, {hi}]: lo > hi"))
        };
    }
    if let Some([lo, hi]) = p.float {
        return if lo <= hi {
            Ok(Param::Float { lo, hi, dist })
        } else {
            Err(format!("float = [{lo}, {hi}]: lo > hi"))
        };
    }
    // Signed: a negative bound is after the dataset's "today" (upcoming
    // closes, renewals), as `days_from_now` says directly.
    if let Some([lo, hi]) = p.days_ago {
        return if lo <= hi {
            Ok(Param::DaysAgo { lo, hi })
        } else {
            Err(format!(
                "days_ago = [{lo}, {hi}]: need lo <= hi (negative days are in the future)"
            ))
        };
    }
    if let Some([lo, hi]) = p.days_from_now {
        return if lo <= hi {
            Ok(Param::DaysAgo { lo: -hi, hi: -lo })
        } else {
            Err(format!("days_from_now = [{lo}, {hi}]: need lo <= hi"))
        };
    }
    if let Some(items) = p.choice {
        if items.is_empty() {
            return Err("choice = []: give at least one value".into());
        }
        return Ok(Param::Choice(items.iter().map(toml_text).collect()));
    }
    if let Some(r) = p.reference {
        return Ok(Param::Ref(r));
    }
    match p.value {
        Some(v) => Ok(Param::Value(toml_text(&v))),
        None => Err("unreachable".into()),
    }
}

/// Exactly one kind of generator, and its modifiers only where they apply.
fn check_one_kind(p: &ParamSpec) -> std::result::Result<(), String> {
    let kinds = [
        p.tenant.is_some(),
        p.sample.is_some(),
        p.int.is_some(),
        p.float.is_some(),
        p.days_ago.is_some(),
        p.days_from_now.is_some(),
        p.choice.is_some(),
        p.reference.is_some(),
        p.value.is_some(),
    ];
    match kinds.iter().filter(|k| **k).count() {
        1 => {}
        0 => {
            return Err(
                "give one of tenant, sample, int, float, days_ago, days_from_now, choice, ref, value".into(),
            );
        }
        _ => {
            return Err(
                "give only one of tenant, sample, int, float, days_ago, days_from_now, choice, ref, value".into(),
            );
        }
    }
    if p.miss_rate.is_some() && p.sample.is_none() {
        return Err("miss_rate only applies to sample".into());
    }
    if p.dist.is_some() && p.int.is_none() && p.float.is_none() {
        return Err("dist only applies to int and float".into());
    }
    Ok(())
}

/// `sample = "table.column"` (or `schema.table.column`) with its miss rate.
/// Each name is an SQL identifier, bare or double-quoted, and nothing else:
/// the names are pasted into the sampling query (quoted), so anything that
/// is not a name is refused here.
fn sample(s: &str, miss_rate: f64) -> std::result::Result<Param, String> {
    let split = last_dot(s).map(|at| (&s[..at], &s[at + 1..]));
    let Some((table, column)) = split.filter(|(t, c)| {
        identifiers(t).is_some_and(|n| n.len() <= 2) && identifiers(c).is_some_and(|n| n.len() == 1)
    }) else {
        return Err(format!(
            "sample = \"{s}\": write table.column or schema.table.column \
             (each name bare or in double quotes)"
        ));
    };
    if !(0.0..=1.0).contains(&miss_rate) {
        return Err(format!("miss_rate {miss_rate} is not between 0 and 1"));
    }
    Ok(Param::Sample {
        table: table.into(),
        column: column.into(),
        miss_rate,
    })
}

/// Byte offset of the last `.` outside double quotes.
fn last_dot(s: &str) -> Option<usize> {
    let mut quoted = false;
    let mut last = None;
    for (i, c) in s.char_indices() {
        match c {
            '"' => quoted = !quoted,
            '.' if !quoted => last = Some(i),
            _ => {}
        }
    }
    last
}

/// The names of a dotted SQL name as PostgreSQL reads it: `"Bar".foo` →
/// `["Bar", "foo"]` (bare names fold to lower case, `""` in quotes is one
/// `"`). `None` when it is not a dotted name.
pub fn identifiers(text: &str) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut chars = text.chars().peekable();
    loop {
        let mut name = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        name.push('"');
                    }
                    '"' => break,
                    c => name.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                let ok = c.is_alphabetic()
                    || c == '_'
                    || !name.is_empty() && (c.is_ascii_digit() || c == '$');
                if !ok {
                    break;
                }
                name.extend(c.to_lowercase());
                chars.next();
            }
        }
        if name.is_empty() {
            return None;
        }
        names.push(name);
        match chars.next() {
            None => return Some(names),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

/// A dotted name as written in a workload file, quoted for SQL
/// (`shop.items` → `"shop"."items"`); `None` when it is not a name.
pub fn quoted_name(text: &str) -> Option<String> {
    let names = identifiers(text)?;
    Some(
        names
            .iter()
            .map(|n| crate::pg::quote_ident(n))
            .collect::<Vec<_>>()
            .join("."),
    )
}

/// A TOML value as the text sent to the server.
fn toml_text(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Distinct `$n` numbers used in `sql`, in order of first use, found by
/// PostgreSQL's lexer (a `$n` in a string, a quoted name, a dollar-quoted
/// body or a comment is not one); none when the lexer cannot read `sql`.
pub fn placeholders(sql: &str) -> Vec<usize> {
    crate::sql::params(sql).map_or_else(|_| Vec::new(), |p| distinct_numbers(&p))
}

fn distinct_numbers(slots: &[crate::sql::Param]) -> Vec<usize> {
    let mut out: Vec<usize> = Vec::new();
    for p in slots {
        let n = p.number as usize;
        if !out.contains(&n) {
            out.push(n);
        }
    }
    out
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0000_0100_0000_01B3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Workload> {
        Workload::parse(text, Path::new("w.toml"))
    }

    #[test]
    fn placeholders_skip_literals_and_comments() {
        assert_eq!(placeholders("SELECT $1, '$2', $3 -- $4\n, $1"), vec![1, 3]);
        assert_eq!(placeholders("SELECT 1"), Vec::<usize>::new());
        assert_eq!(placeholders("x = $10 AND y = $2"), vec![10, 2]);
    }

    #[test]
    fn parses_a_transaction_with_refs() {
        let w = parse(
            r#"
name = "t"
[[query]]
name = "two"
kind = "write"
weight = 3
  [[query.statements]]
  sql = "INSERT INTO a (x) VALUES ($1) RETURNING id"
  params = [{ int = [1, 5], dist = "zipf" }]
  [[query.statements]]
  sql = "INSERT INTO b (a_id, t) VALUES ($1, $2)"
  params = [{ ref = "id" }, { tenant = true }]
"#,
        )
        .unwrap();
        let q = &w.queries[0];
        assert_eq!(q.statements.len(), 2);
        assert_eq!(q.statements[1].params[0], Param::Ref("id".into()));
        assert_eq!(q.statements[1].line, 11);
        assert_eq!(q.weight, 3);
    }

    #[test]
    fn lines_are_found_by_offset() {
        let text = "a\nbc\n\nd";
        let lines = Lines::new(text);
        let found: Vec<usize> = (0..=text.len()).map(|o| lines.of(o)).collect();
        // The newline belongs to the line it ends; past the end is the last line.
        assert_eq!(found, vec![1, 1, 2, 2, 2, 3, 4, 4]);
    }

    const ONE_QUERY: &str = "[[query]]\nname = \"q\"\nkind = \"read\"\nsql = \"SELECT 1\"\n";

    #[test]
    fn sample_names_are_sql_names_and_nothing_else() {
        let ok = |s: &str| sample(s, 0.0).unwrap();
        assert_eq!(
            ok("customers.email"),
            Param::Sample {
                table: "customers".into(),
                column: "email".into(),
                miss_rate: 0.0
            }
        );
        let Param::Sample { table, column, .. } = ok(r#""Bar"."Fo.o"."Id""#) else {
            panic!()
        };
        assert_eq!(
            (table.as_str(), column.as_str()),
            (r#""Bar"."Fo.o""#, r#""Id""#)
        );
        assert_eq!(quoted_name(&table).unwrap(), r#""Bar"."Fo.o""#);
        assert_eq!(quoted_name("Shop.Items").unwrap(), r#""shop"."items""#);
        assert_eq!(quoted_name(r#""a""b""#).unwrap(), r#""a""b""#);
        for bad in [
            "email",
            "a.b.c.d",
            "customers.email::text",
            "(SELECT pg_read_file('/etc/passwd') AS e) x.e",
            "customers.email; DROP TABLE x",
            "customers.\"email",
            "customers.",
            ".email",
            "1x.email",
        ] {
            let err = sample(bad, 0.0).unwrap_err();
            assert!(err.contains("write table.column"), "{bad}: {err}");
        }
    }

    #[test]
    fn a_file_without_version_is_version_1() {
        let w = parse(&format!("name = \"t\"\n{ONE_QUERY}")).unwrap();
        assert_eq!(w.version, 1);
        let w = parse(&format!("version = 1\nname = \"t\"\n{ONE_QUERY}")).unwrap();
        assert_eq!(w.version, 1);
    }

    #[test]
    fn an_unknown_version_is_refused_at_its_line_naming_the_known_ones() {
        for v in ["2", "0", "-1"] {
            let err = parse(&format!("name = \"t\"\nversion = {v}\n{ONE_QUERY}"))
                .unwrap_err()
                .to_string();
            assert!(err.starts_with("w.toml:2: "), "{err}");
            assert!(
                err.contains(&format!(
                    "version = {v} is not supported: this crmbench reads workload file version 1"
                )),
                "{err}"
            );
        }
    }
}

/// Replace `$n` placeholders (outside string literals and comments) by
/// `literal(n)`: how the simple protocol carries parameters. Scans `sql`
/// first; a loaded statement's [`Statement::slots`] go to
/// [`substitute_at`] without scanning again.
pub fn substitute(sql: &str, literal: impl Fn(usize) -> String) -> String {
    match crate::sql::params(sql) {
        Ok(slots) => substitute_at(sql, &slots, literal),
        Err(_) => sql.to_string(),
    }
}

/// [`substitute`] at positions found earlier (`slots`, in order).
pub fn substitute_at(
    sql: &str,
    slots: &[crate::sql::Param],
    literal: impl Fn(usize) -> String,
) -> String {
    let mut out = String::with_capacity(sql.len() + 32);
    let mut copied = 0;
    for p in slots {
        let (Some(before), true) = (sql.get(copied..p.span.start), p.span.end <= sql.len()) else {
            continue;
        };
        out.push_str(before);
        out.push_str(&literal(p.number as usize));
        copied = p.span.end;
    }
    out.push_str(sql.get(copied..).unwrap_or_default());
    out
}

#[cfg(test)]
mod substitute_tests {
    use super::*;

    #[test]
    fn substitutes_outside_literals() {
        let s = substitute("SELECT $1, '$2', $10 -- $1\n, $2", |n| format!("<{n}>"));
        assert_eq!(s, "SELECT <1>, '$2', <10> -- $1\n, <2>");
        // What a hand-written scanner got wrong: a quoted name, a
        // dollar-quoted body and a block comment hold no parameter.
        let s = substitute("SELECT \"$1\", $$ $1 $$, /* $1 */ $2::int", |n| {
            format!("<{n}>")
        });
        assert_eq!(s, "SELECT \"$1\", $$ $1 $$, /* $1 */ <2>::int");
    }
}
