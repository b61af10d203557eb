//! Static rules over a migration, read by PostgreSQL's own parser and told
//! the real table sizes: which lock each statement takes, and which
//! statements will hold writes (or everything) back for a table scan, a
//! rewrite or an index build. Each finding names file and line, the lock,
//! the table's size, and where a safer form exists, its SQL.
//!
//! The walk keeps the state a migration builds up as it goes — tables it
//! created (empty, so no rule about their size applies), whether
//! `lock_timeout` is set, `NOT NULL` checks it has validated, and the
//! transaction it is in (an explicit `BEGIN`, or the implicit one a
//! multi-statement query runs in under `--apply-as file`).

use std::collections::{HashMap, HashSet};

use pg_query::NodeEnum;
use pg_query::protobuf::{
    AlterTableCmd, AlterTableType, ColumnDef, ConstrType, Constraint, IndexStmt, ObjectType,
    RangeVar, TransactionStmtKind,
};
use serde::{Deserialize, Serialize};

use super::input::{ApplyAs, Migration};
use super::locks::LockMode;
use crate::error::{Error, Result};
use crate::pg::quote_ident;
use crate::sql;

/// Table sizes (heap + indexes + TOAST, bytes), by `schema.table` and by
/// bare name (a migration usually leaves the schema to `search_path`).
#[derive(Debug, Clone, Default)]
pub struct TableSizes {
    by_name: HashMap<String, i64>,
}

impl TableSizes {
    /// Record one table's size.
    pub fn insert(&mut self, schema: &str, table: &str, bytes: i64) {
        self.by_name.insert(format!("{schema}.{table}"), bytes);
        self.by_name.entry(table.to_string()).or_insert(bytes);
    }

    fn get(&self, rel: &RangeVar) -> Option<i64> {
        self.by_name
            .get(&table_name(rel))
            .copied()
            .or_else(|| self.by_name.get(&rel.relname).copied())
    }
}

/// Thresholds and context the rules need.
#[derive(Debug, Clone)]
pub struct RuleOptions {
    /// A non-concurrent index build on a table larger than this is a finding.
    pub index_limit_bytes: i64,
    /// How the statements reach the server.
    pub apply_as: ApplyAs,
}

impl Default for RuleOptions {
    fn default() -> Self {
        RuleOptions {
            index_limit_bytes: 1 << 20,
            apply_as: ApplyAs::Statement,
        }
    }
}

/// One rule's finding on one statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Finding {
    /// Rule id, e.g. `index-not-concurrent`.
    pub rule: String,
    /// Migration file (as `MigrationFile::name`).
    pub file: String,
    /// 1-based line the statement starts on.
    pub line: usize,
    /// The statement's first line.
    pub statement: String,
    /// The lock the statement really takes, if the rule is about a lock.
    pub lock: Option<LockMode>,
    /// The table concerned.
    pub table: Option<String>,
    /// Its size in bytes, when known.
    pub table_bytes: Option<i64>,
    /// What happens, in one or two sentences.
    pub message: String,
    /// A safer way to write it, as SQL, when there is one.
    pub suggestion: Option<String>,
    /// What the rehearsal measured for the statement (filled after it ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub measured: Option<MeasuredEffect>,
}

/// What a rehearsal measured for a finding's statement.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MeasuredEffect {
    /// How long it ran, ms.
    pub duration_ms: f64,
    /// How long it waited for locks, ms.
    pub lock_wait_ms: f64,
    /// Workload statements it blocked.
    pub blocked: u64,
    /// The longest of those waits, ms.
    pub longest_block_ms: f64,
    /// Its error's SQLSTATE, if it failed.
    pub sqlstate: Option<String>,
}

/// The lock a statement takes on one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableLock {
    /// Table name as written (`schema.table` or `table`).
    pub table: String,
    /// The mode.
    pub mode: LockMode,
}

/// Check every statement of `migration` against the rules.
pub fn check(
    migration: &Migration,
    sizes: &TableSizes,
    opts: &RuleOptions,
) -> Result<Vec<Finding>> {
    let mut walk = Walk::new(sizes, opts);
    for file in &migration.files {
        let statements = sql::split(&file.text).map_err(|e| parse_error(&file.name, 1, &e))?;
        // A multi-statement query is one implicit transaction block.
        if opts.apply_as.whole_file() && statements.len() > 1 {
            walk.tx = Some(Tx::default());
        }
        for st in &statements {
            let tree = sql::parse(st.text).map_err(|e| parse_error(&file.name, st.line, &e))?;
            for raw in &tree.protobuf.stmts {
                let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) else {
                    continue;
                };
                let code = sql::code_start(st.text);
                let at = At {
                    file: &file.name,
                    line: sql::line_of(&file.text, st.offset + code),
                    text: &st.text[code..],
                };
                walk.statement(node, &at);
            }
        }
        if opts.apply_as.whole_file() && statements.len() > 1 {
            walk.end_tx();
        }
    }
    walk.end_tx();
    Ok(walk.findings)
}

/// The locks one statement takes, for the engine to compare with what it
/// sampled. Statements that take no table lock worth naming give none.
pub fn statement_locks(text: &str) -> Vec<TableLock> {
    let Ok(tree) = sql::parse(text) else {
        return Vec::new();
    };
    let sizes = TableSizes::default();
    let opts = RuleOptions::default();
    let mut walk = Walk::new(&sizes, &opts);
    let mut out = Vec::new();
    for raw in &tree.protobuf.stmts {
        if let Some(node) = raw.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            out.extend(walk.locks_of(
                node,
                &At {
                    file: "",
                    line: 1,
                    text,
                },
            ));
        }
    }
    out
}

fn parse_error(file: &str, line: usize, e: &sql::SqlError) -> Error {
    Error::Usage {
        message: format!("{file}:{line}: PostgreSQL's parser refuses the migration: {e}"),
        fix: "fix the SQL (it would fail on the server the same way)".into(),
    }
}

/// A rule about one lock: its id and the lock the statement takes.
struct Rule {
    id: &'static str,
    lock: LockMode,
}

impl Rule {
    const fn new(id: &'static str, lock: LockMode) -> Rule {
        Rule { id, lock }
    }
}

const INDEX_NOT_CONCURRENT: Rule = Rule::new("index-not-concurrent", LockMode::Share);
const TABLE_REWRITE: Rule = Rule::new("table-rewrite", LockMode::AccessExclusive);
const SET_NOT_NULL_SCAN: Rule = Rule::new("set-not-null-scan", LockMode::AccessExclusive);
const CHECK_WITHOUT_NOT_VALID: Rule =
    Rule::new("check-without-not-valid", LockMode::AccessExclusive);
const FK_WITHOUT_NOT_VALID: Rule = Rule::new("fk-without-not-valid", LockMode::ShareRowExclusive);
const CONSTRAINT_BUILDS_INDEX: Rule =
    Rule::new("constraint-builds-index", LockMode::AccessExclusive);

/// Where a statement is.
struct At<'a> {
    file: &'a str,
    line: usize,
    text: &'a str,
}

#[derive(Default)]
struct Tx {
    /// The first strong lock taken in the transaction, as a finding to emit
    /// if more statements run while it is held.
    strong: Option<Finding>,
    /// Statements run after it, in the same transaction.
    later: usize,
}

struct Walk<'a> {
    sizes: &'a TableSizes,
    opts: &'a RuleOptions,
    findings: Vec<Finding>,
    created: HashSet<String>,
    lock_timeout: bool,
    warned_lock_timeout: bool,
    /// `CHECK (col IS NOT NULL) NOT VALID` constraints, by name.
    pending_not_null: HashMap<String, (String, String)>,
    /// (table, column) proven not null by a validated check.
    not_null_proven: HashSet<(String, String)>,
    tx: Option<Tx>,
}

impl<'a> Walk<'a> {
    fn new(sizes: &'a TableSizes, opts: &'a RuleOptions) -> Self {
        Walk {
            sizes,
            opts,
            findings: Vec::new(),
            created: HashSet::new(),
            lock_timeout: false,
            warned_lock_timeout: false,
            pending_not_null: HashMap::new(),
            not_null_proven: HashSet::new(),
            tx: None,
        }
    }

    fn statement(&mut self, node: &NodeEnum, at: &At) {
        if let NodeEnum::TransactionStmt(t) = node {
            match TransactionStmtKind::try_from(t.kind) {
                Ok(TransactionStmtKind::TransStmtBegin | TransactionStmtKind::TransStmtStart) => {
                    self.tx.get_or_insert_with(Tx::default);
                }
                Ok(
                    TransactionStmtKind::TransStmtCommit | TransactionStmtKind::TransStmtRollback,
                ) => self.end_tx(),
                _ => {}
            }
            return;
        }
        if let NodeEnum::VariableSetStmt(v) = node {
            if v.name == "lock_timeout" {
                self.lock_timeout = v.args.first().is_some_and(|a| !is_zero(a));
            }
        }
        let locks = self.locks_of(node, at);
        let strong = locks
            .iter()
            .filter(|l| l.mode.blocks_writes() && !self.created.contains(&l.table))
            .max_by_key(|l| l.mode)
            .cloned();
        let held = strong.as_ref().map(|lock| {
            self.finding(
                "long-transaction-strong-lock",
                at,
                Some(lock.mode),
                Some(&lock.table),
                String::new(),
                None,
            )
        });
        if let Some(tx) = self.tx.as_mut() {
            if tx.strong.is_some() {
                tx.later += 1;
            } else {
                tx.strong = held;
            }
        }
        if let (Some(lock), false, false) = (&strong, self.lock_timeout, self.warned_lock_timeout) {
            self.warned_lock_timeout = true;
            let message = format!(
                "takes {} on {} with no lock_timeout set: if it waits behind a long transaction, every query on {} queues behind it for as long",
                lock.mode.sql_name(),
                lock.table,
                lock.table
            );
            let f = self.finding(
                "no-lock-timeout",
                at,
                Some(lock.mode),
                Some(&lock.table),
                message,
                Some(
                    "SET lock_timeout = '2s';  -- at the top of the migration; retry on 55P03"
                        .into(),
                ),
            );
            self.findings.push(f);
        }
    }

    fn end_tx(&mut self) {
        let Some(tx) = self.tx.take() else { return };
        let (Some(mut f), true) = (tx.strong, tx.later > 0) else {
            return;
        };
        let mode = f.lock.map(LockMode::sql_name).unwrap_or("a strong lock");
        f.message = format!(
            "{mode} on {} is held until the transaction ends, while {} more statement(s) run: every query it blocks waits for all of them",
            f.table.as_deref().unwrap_or("the table"),
            tx.later
        );
        f.suggestion = Some(
            "-- take the strong lock last, in its own short transaction, or split the migration"
                .into(),
        );
        self.findings.push(f);
    }

    /// The locks `node` takes; pushes the findings about the statement itself.
    fn locks_of(&mut self, node: &NodeEnum, at: &At) -> Vec<TableLock> {
        match node {
            NodeEnum::CreateStmt(c) => {
                if let Some(rel) = &c.relation {
                    self.created.insert(table_name(rel));
                }
                Vec::new()
            }
            NodeEnum::IndexStmt(ix) => self.index(ix, at),
            NodeEnum::DropStmt(d) => {
                if d.concurrent && d.remove_type == ObjectType::ObjectIndex as i32 {
                    self.concurrently_in_tx(at, "DROP INDEX CONCURRENTLY");
                }
                Vec::new()
            }
            NodeEnum::LockStmt(l) => {
                let Some(mode) = LockMode::from_number(l.mode) else {
                    return Vec::new();
                };
                l.relations
                    .iter()
                    .filter_map(|r| match r.node.as_ref() {
                        Some(NodeEnum::RangeVar(rel)) => Some(TableLock {
                            table: table_name(rel),
                            mode,
                        }),
                        _ => None,
                    })
                    .collect()
            }
            NodeEnum::AlterTableStmt(a) if a.objtype == ObjectType::ObjectTable as i32 => {
                let Some(rel) = &a.relation else {
                    return Vec::new();
                };
                let mut out = Vec::new();
                for cmd in &a.cmds {
                    if let Some(NodeEnum::AlterTableCmd(cmd)) = cmd.node.as_ref() {
                        out.extend(self.alter_cmd(rel, cmd, at));
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn index(&mut self, ix: &IndexStmt, at: &At) -> Vec<TableLock> {
        let Some(rel) = &ix.relation else {
            return Vec::new();
        };
        let table = table_name(rel);
        if ix.concurrent {
            self.concurrently_in_tx(at, "CREATE INDEX CONCURRENTLY");
            return vec![TableLock {
                table,
                mode: LockMode::ShareUpdateExclusive,
            }];
        }
        let bytes = self.sizes.get(rel);
        let big = bytes.is_none_or(|b| b > self.opts.index_limit_bytes);
        if big && !self.created.contains(&table) {
            let mut safer = ix.clone();
            safer.concurrent = true;
            let suggestion = NodeEnum::IndexStmt(Box::new(safer))
                .deparse()
                .ok()
                .map(|s| s + ";");
            let message = format!(
                "builds the index under a SHARE lock: every INSERT, UPDATE and DELETE on {table} ({}) waits for the whole build",
                size_text(bytes)
            );
            self.push(&INDEX_NOT_CONCURRENT, at, &table, message, suggestion);
        }
        vec![TableLock {
            table,
            mode: LockMode::Share,
        }]
    }

    fn concurrently_in_tx(&mut self, at: &At, what: &str) {
        if self.tx.is_none() {
            return;
        }
        let how = if self.opts.apply_as.whole_file() {
            format!(
                "the file is sent as one query (--apply-as {}), an implicit transaction",
                self.opts.apply_as.name()
            )
        } else {
            "it is inside BEGIN … COMMIT".to_string()
        };
        let message = format!(
            "{what} cannot run inside a transaction block ({how}): the server refuses it with 25001"
        );
        let f = self.finding(
            "concurrently-in-transaction",
            at,
            None,
            None,
            message,
            Some(format!("-- put the {what} statement alone in its own migration file, outside BEGIN … COMMIT")),
        );
        self.findings.push(f);
    }

    fn alter_cmd(&mut self, rel: &RangeVar, cmd: &AlterTableCmd, at: &At) -> Vec<TableLock> {
        let table = table_name(rel);
        let new = self.created.contains(&table);
        let lock = |mode| {
            vec![TableLock {
                table: table.clone(),
                mode,
            }]
        };
        match AlterTableType::try_from(cmd.subtype) {
            Ok(AlterTableType::AtAddColumn) => {
                if let (Some(NodeEnum::ColumnDef(col)), false) =
                    (cmd.def.as_ref().and_then(|d| d.node.as_ref()), new)
                {
                    self.add_column(rel, col, at);
                }
                lock(LockMode::AccessExclusive)
            }
            Ok(AlterTableType::AtAlterColumnType) if !new => {
                let message = format!(
                    "changing the type of {}.{} rewrites the table and its indexes under ACCESS EXCLUSIVE (unless the change is binary-coercible, such as varchar(n) to text): {} blocks reads and writes throughout",
                    table,
                    cmd.name,
                    size_text(self.sizes.get(rel))
                );
                let suggestion = format!(
                    "-- add a new column, backfill it in batches, then swap names in one short transaction:\nALTER TABLE {table} ADD COLUMN {}_new <new type>;",
                    quote_ident(&cmd.name)
                );
                self.push(&TABLE_REWRITE, at, &table, message, Some(suggestion));
                lock(LockMode::AccessExclusive)
            }
            Ok(AlterTableType::AtSetNotNull) => {
                if !new
                    && !self
                        .not_null_proven
                        .contains(&(table.clone(), cmd.name.clone()))
                {
                    self.set_not_null(rel, &cmd.name, at);
                }
                lock(LockMode::AccessExclusive)
            }
            Ok(AlterTableType::AtAddConstraint) => {
                match cmd.def.as_ref().and_then(|d| d.node.as_ref()) {
                    Some(NodeEnum::Constraint(c)) => self.add_constraint(rel, cmd, c, new, at),
                    _ => lock(LockMode::AccessExclusive),
                }
            }
            Ok(AlterTableType::AtValidateConstraint) => {
                if let Some(proven) = self.pending_not_null.remove(&cmd.name) {
                    self.not_null_proven.insert(proven);
                }
                lock(LockMode::ShareUpdateExclusive)
            }
            Ok(
                AlterTableType::AtSetStatistics
                | AlterTableType::AtClusterOn
                | AlterTableType::AtDropCluster
                | AlterTableType::AtSetOptions
                | AlterTableType::AtResetOptions,
            ) => lock(LockMode::ShareUpdateExclusive),
            _ => lock(LockMode::AccessExclusive),
        }
    }

    fn add_column(&mut self, rel: &RangeVar, col: &ColumnDef, at: &At) {
        let table = table_name(rel);
        let default = col.raw_default.as_deref().or_else(|| {
            col.constraints.iter().find_map(|c| match c.node.as_ref() {
                Some(NodeEnum::Constraint(c)) if c.contype == ConstrType::ConstrDefault as i32 => {
                    c.raw_expr.as_deref()
                }
                _ => None,
            })
        });
        let type_name = col
            .type_name
            .as_ref()
            .and_then(|t| t.names.last())
            .and_then(|n| match n.node.as_ref() {
                Some(NodeEnum::String(s)) => Some(s.sval.to_lowercase()),
                _ => None,
            })
            .unwrap_or_default();
        let generated = col.constraints.iter().any(|c| {
            matches!(c.node.as_ref(), Some(NodeEnum::Constraint(c))
                if c.contype == ConstrType::ConstrGenerated as i32 || c.contype == ConstrType::ConstrIdentity as i32)
        });
        let why = if generated {
            Some("a stored generated or identity column fills every row".to_string())
        } else if type_name.ends_with("serial") {
            Some(format!(
                "a {type_name} column takes nextval() for every row"
            ))
        } else {
            default.and_then(volatile_call).map(|f| format!("its default calls {f}(), which is volatile (or not known to be stable), so every row gets its own value"))
        };
        let Some(why) = why else { return };
        let message = format!(
            "adding {}.{} rewrites the whole table under ACCESS EXCLUSIVE: {why}; {} blocks reads and writes throughout (a constant or now() default does not rewrite since PostgreSQL 11)",
            table,
            col.colname,
            size_text(self.sizes.get(rel))
        );
        let column = quote_ident(&col.colname);
        let suggestion = format!(
            "ALTER TABLE {table} ADD COLUMN {column} <type>;  -- no default: no rewrite\n-- backfill in batches: UPDATE {table} SET {column} = … WHERE id BETWEEN … ;\n-- then, if new rows need it: ALTER TABLE {table} ALTER COLUMN {column} SET DEFAULT …;"
        );
        self.push(&TABLE_REWRITE, at, &table, message, Some(suggestion));
    }

    fn set_not_null(&mut self, rel: &RangeVar, column: &str, at: &At) {
        let table = table_name(rel);
        let message = format!(
            "SET NOT NULL on {table}.{column} scans the whole table ({}) under ACCESS EXCLUSIVE, blocking reads and writes; a validated CHECK ({column} IS NOT NULL) first lets PostgreSQL 12+ skip the scan",
            size_text(self.sizes.get(rel))
        );
        let col = quote_ident(column);
        let check = quote_ident(&format!("{}_{column}_not_null", rel.relname));
        let suggestion = format!(
            "ALTER TABLE {table} ADD CONSTRAINT {check} CHECK ({col} IS NOT NULL) NOT VALID;\nALTER TABLE {table} VALIDATE CONSTRAINT {check};\nALTER TABLE {table} ALTER COLUMN {col} SET NOT NULL;\nALTER TABLE {table} DROP CONSTRAINT {check};"
        );
        self.push(&SET_NOT_NULL_SCAN, at, &table, message, Some(suggestion));
    }

    fn add_constraint(
        &mut self,
        rel: &RangeVar,
        cmd: &AlterTableCmd,
        c: &Constraint,
        new: bool,
        at: &At,
    ) -> Vec<TableLock> {
        let table = table_name(rel);
        let contype = ConstrType::try_from(c.contype).unwrap_or(ConstrType::Undefined);
        if contype == ConstrType::ConstrCheck {
            self.note_not_null(&table, c);
        }
        let lock = |table: String, mode| TableLock { table, mode };
        // A constraint on a table created in this migration scans nothing.
        let old = !new;
        match contype {
            ConstrType::ConstrForeign => {
                let referenced = c.pktable.as_ref().map(table_name).unwrap_or_default();
                if old && !c.skip_validation {
                    let message = format!(
                        "adding a foreign key without NOT VALID scans {table} ({}) holding SHARE ROW EXCLUSIVE on both {table} and {referenced}: writes to both wait for the scan",
                        size_text(self.sizes.get(rel))
                    );
                    self.not_valid_pair(&FK_WITHOUT_NOT_VALID, rel, cmd, c, at, message);
                }
                vec![
                    lock(table, LockMode::ShareRowExclusive),
                    lock(referenced, LockMode::ShareRowExclusive),
                ]
            }
            ConstrType::ConstrCheck if old && !c.skip_validation => {
                let message = format!(
                    "adding a CHECK without NOT VALID scans {table} ({}) under ACCESS EXCLUSIVE, blocking reads and writes for the scan",
                    size_text(self.sizes.get(rel))
                );
                self.not_valid_pair(&CHECK_WITHOUT_NOT_VALID, rel, cmd, c, at, message);
                vec![lock(table, LockMode::AccessExclusive)]
            }
            ConstrType::ConstrPrimary | ConstrType::ConstrUnique
                if old && c.indexname.is_empty() =>
            {
                self.constraint_builds_index(rel, c, at);
                vec![lock(table, LockMode::AccessExclusive)]
            }
            _ => vec![lock(table, LockMode::AccessExclusive)],
        }
    }

    /// A `CHECK (col IS NOT NULL)`: validated, it proves the column for a
    /// later `SET NOT NULL`; `NOT VALID`, it will once validated.
    fn note_not_null(&mut self, table: &str, c: &Constraint) {
        let Some(column) = not_null_column(c) else {
            return;
        };
        if c.skip_validation {
            self.pending_not_null
                .insert(c.conname.clone(), (table.to_string(), column));
        } else {
            self.not_null_proven.insert((table.to_string(), column));
        }
    }

    /// PRIMARY KEY or UNIQUE added with an index of its own: built under
    /// ACCESS EXCLUSIVE; the safer way builds it concurrently first.
    fn constraint_builds_index(&mut self, rel: &RangeVar, c: &Constraint, at: &At) {
        let table = table_name(rel);
        let message = format!(
            "adding a PRIMARY KEY or UNIQUE constraint builds its index under ACCESS EXCLUSIVE: {table} ({}) is blocked for reads and writes during the build",
            size_text(self.sizes.get(rel))
        );
        let name = if c.conname.is_empty() {
            format!("{}_key", rel.relname)
        } else {
            c.conname.clone()
        };
        let suggestion = format!(
            "CREATE UNIQUE INDEX CONCURRENTLY {idx} ON {table} (…);\nALTER TABLE {table} ADD CONSTRAINT {idx} UNIQUE USING INDEX {idx};",
            idx = quote_ident(&name)
        );
        self.push(
            &CONSTRAINT_BUILDS_INDEX,
            at,
            &table,
            message,
            Some(suggestion),
        );
    }

    /// Push `rule`'s finding with the same constraint `NOT VALID`, then
    /// `VALIDATE CONSTRAINT` (which takes only SHARE UPDATE EXCLUSIVE), as
    /// its safer SQL.
    fn not_valid_pair(
        &mut self,
        rule: &Rule,
        rel: &RangeVar,
        cmd: &AlterTableCmd,
        c: &Constraint,
        at: &At,
        message: String,
    ) {
        let table = table_name(rel);
        let mut safer = c.clone();
        if safer.conname.is_empty() {
            safer.conname = format!(
                "{}_{}",
                rel.relname,
                if rule.id.starts_with("fk") {
                    "fkey"
                } else {
                    "check"
                }
            );
        }
        safer.skip_validation = true;
        safer.initially_valid = false;
        let add = pg_query::protobuf::AlterTableStmt {
            relation: Some(rel.clone()),
            cmds: vec![pg_query::protobuf::Node {
                node: Some(NodeEnum::AlterTableCmd(Box::new(AlterTableCmd {
                    def: Some(Box::new(pg_query::protobuf::Node {
                        node: Some(NodeEnum::Constraint(Box::new(safer.clone()))),
                    })),
                    // Every other field as the parser set it: libpg_query
                    // aborts the process on an enum left at 0.
                    ..cmd.clone()
                }))),
            }],
            objtype: ObjectType::ObjectTable as i32,
            missing_ok: false,
        };
        let suggestion = NodeEnum::AlterTableStmt(add).deparse().ok().map(|add| {
            format!(
                "{add};\nALTER TABLE {table} VALIDATE CONSTRAINT {};",
                quote_ident(&safer.conname)
            )
        });
        self.push(rule, at, &table, message, suggestion);
    }

    /// Push `rule`'s finding on `table`, under the lock the rule is about.
    fn push(
        &mut self,
        rule: &Rule,
        at: &At,
        table: &str,
        message: String,
        suggestion: Option<String>,
    ) {
        let f = self.finding(
            rule.id,
            at,
            Some(rule.lock),
            Some(table),
            message,
            suggestion,
        );
        self.findings.push(f);
    }

    fn finding(
        &self,
        rule: &str,
        at: &At,
        lock: Option<LockMode>,
        table: Option<&str>,
        message: String,
        suggestion: Option<String>,
    ) -> Finding {
        let table_bytes = table.and_then(|t| self.sizes.by_name.get(t).copied());
        Finding {
            rule: rule.to_string(),
            file: at.file.to_string(),
            line: at.line,
            statement: first_line(at.text),
            lock,
            table: table.map(str::to_string),
            table_bytes,
            message,
            suggestion,
            measured: None,
        }
    }
}

/// `schema.table` as written, or `table`.
fn table_name(rel: &RangeVar) -> String {
    if rel.schemaname.is_empty() {
        rel.relname.clone()
    } else {
        format!("{}.{}", rel.schemaname, rel.relname)
    }
}

fn size_text(bytes: Option<i64>) -> String {
    match bytes {
        Some(b) if b >= 10_000_000 => format!("{:.0} MB", b as f64 / 1e6),
        Some(b) => format!("{:.1} MB", b as f64 / 1e6),
        None => "size unknown".into(),
    }
}

fn first_line(text: &str) -> String {
    let line = text.lines().next().unwrap_or("");
    if line.chars().count() > 120 {
        format!("{}…", line.chars().take(119).collect::<String>())
    } else {
        line.to_string()
    }
}

/// `SET lock_timeout = 0` (or `'0'`) turns the timeout off.
fn is_zero(node: &pg_query::protobuf::Node) -> bool {
    use pg_query::protobuf::a_const::Val;
    match node.node.as_ref() {
        Some(NodeEnum::AConst(c)) => match &c.val {
            Some(Val::Ival(i)) => i.ival == 0,
            Some(Val::Sval(s)) => s.sval.trim() == "0" || s.sval.trim().is_empty(),
            _ => false,
        },
        _ => false,
    }
}

/// Functions a column default may call without forcing a rewrite: stable or
/// immutable, so PostgreSQL evaluates the default once for the whole table.
const NOT_VOLATILE: &[&str] = &[
    "now",
    "transaction_timestamp",
    "statement_timestamp",
    "current_setting",
    "lower",
    "upper",
    "length",
    "concat",
    "make_date",
    "make_timestamp",
    "make_timestamptz",
    "make_interval",
    "to_timestamp",
    "to_date",
    "jsonb_build_object",
    "json_build_object",
    "jsonb_build_array",
    "array_fill",
];

/// The first function in a default expression that is volatile or not known
/// to be stable.
fn volatile_call(node: &pg_query::protobuf::Node) -> Option<String> {
    match node.node.as_ref()? {
        NodeEnum::FuncCall(f) => {
            let name = f
                .funcname
                .last()
                .and_then(|n| match n.node.as_ref() {
                    Some(NodeEnum::String(s)) => Some(s.sval.to_lowercase()),
                    _ => None,
                })
                .unwrap_or_default();
            if !NOT_VOLATILE.contains(&name.as_str()) {
                return Some(name);
            }
            f.args.iter().find_map(volatile_call)
        }
        NodeEnum::TypeCast(t) => t.arg.as_deref().and_then(volatile_call),
        NodeEnum::AExpr(e) => e
            .lexpr
            .as_deref()
            .and_then(volatile_call)
            .or_else(|| e.rexpr.as_deref().and_then(volatile_call)),
        NodeEnum::CoalesceExpr(c) => c.args.iter().find_map(volatile_call),
        _ => None,
    }
}

/// The column of a `CHECK (col IS NOT NULL)`.
fn not_null_column(c: &Constraint) -> Option<String> {
    let Some(NodeEnum::NullTest(t)) = c.raw_expr.as_deref().and_then(|e| e.node.as_ref()) else {
        return None;
    };
    if t.nulltesttype != pg_query::protobuf::NullTestType::IsNotNull as i32 {
        return None;
    }
    let Some(NodeEnum::ColumnRef(r)) = t.arg.as_deref().and_then(|a| a.node.as_ref()) else {
        return None;
    };
    match r.fields.last().and_then(|f| f.node.as_ref()) {
        Some(NodeEnum::String(s)) => Some(s.sval.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests;
