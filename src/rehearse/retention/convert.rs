//! The conversion of a live table to monthly range partitions, written as
//! SQL a deployment can run: a partitioned twin with keys that keep the
//! tenant column, partitions for the data's months plus a few ahead, a
//! trigger that mirrors every write from the moment it exists, the rows
//! copied in page ranges (one short transaction each), then one short swap
//! transaction; its rollback; the clean-up that drops the old table only
//! once `old EXCEPT ALL new` is empty; the expired partitions dropped; and
//! the batched `DELETE` the partitions are compared with.
//!
//! Why a trigger and pages: a row committed before the trigger exists is
//! in a page below the size read after it (the copy's range), and a row
//! written after it is mirrored by its own transaction, so nothing written
//! during the move is lost; a TID range scan reads each batch's pages only.

use chrono::{Datelike, NaiveDate};

use super::table::TableInfo;
use crate::error::{Error, Result};
use crate::pg::{quote_ident as qi, quote_literal as ql};

/// Months of partitions created beyond the current one.
pub const AHEAD: u32 = 3;

/// What the conversion is for.
#[derive(Debug, Clone)]
pub struct Plan {
    /// The table.
    pub table: TableInfo,
    /// The partition column (a timestamp or date).
    pub column: String,
    /// First month with data, `YYYY-MM-01`.
    pub first: NaiveDate,
    /// The later of the last month with data and the current one.
    pub last: NaiveDate,
    /// Rows older than this (a month boundary) are expired.
    pub cutoff: NaiveDate,
    /// Heap pages per batch of the copy and of the `DELETE`.
    pub pages_per_batch: u64,
}

/// The written SQL, one script per file.
#[derive(Debug, Clone, PartialEq)]
pub struct Scripts {
    /// `conversion.sql`.
    pub conversion: String,
    /// `conversion_rollback.sql`.
    pub rollback: String,
    /// `conversion_cleanup.sql`.
    pub cleanup: String,
    /// `drop_expired.sql`.
    pub drop_expired: String,
    /// `delete_expired.sql`.
    pub delete: String,
    /// The trade-offs the conversion carries, for the reader.
    pub tradeoffs: Vec<String>,
}

impl Scripts {
    /// The scripts as files: (role, file name, text), in the order written.
    pub fn files(&self) -> [(&'static str, &'static str, &str); 5] {
        [
            ("conversion", "conversion.sql", &self.conversion),
            ("rollback", "conversion_rollback.sql", &self.rollback),
            ("cleanup", "conversion_cleanup.sql", &self.cleanup),
            ("drop expired", "drop_expired.sql", &self.drop_expired),
            ("delete expired", "delete_expired.sql", &self.delete),
        ]
    }
}

/// The first of the month `months` after `d`'s.
pub fn add_months(d: NaiveDate, months: i32) -> NaiveDate {
    let m0 = d.year() * 12 + d.month0() as i32 + months;
    NaiveDate::from_ymd_opt(m0.div_euclid(12), m0.rem_euclid(12) as u32 + 1, 1).unwrap_or(d)
}

/// The name of the partition holding `month`: pg_partman 4.x's own naming
/// (`table_pYYYY_MM`), so its maintenance adopts the partitions.
pub fn partition_name(table: &str, month: NaiveDate) -> String {
    format!("{table}_p{}", month.format("%Y_%m"))
}

impl Plan {
    fn new_name(&self) -> String {
        format!("{}_new", self.table.name)
    }
    fn old_name(&self) -> String {
        format!("{}_old", self.table.name)
    }
    fn t(&self, name: &str) -> String {
        self.table.qualified(name)
    }
    /// The months partitions are made for: the data's range plus [`AHEAD`].
    pub fn months(&self) -> Vec<NaiveDate> {
        let mut out = Vec::new();
        let mut m = self.first;
        let end = add_months(self.last, AHEAD as i32);
        while m <= end {
            out.push(m);
            m = add_months(m, 1);
        }
        out
    }
    /// The months whose partitions are wholly expired.
    pub fn expired(&self) -> Vec<NaiveDate> {
        self.months()
            .into_iter()
            .filter(|m| add_months(*m, 1) <= self.cutoff)
            .collect()
    }
    /// The new primary key: the old one plus the partition column.
    pub fn new_key(&self) -> Vec<String> {
        let mut key = self.table.primary_key.clone();
        if !key.contains(&self.column) {
            key.push(self.column.clone());
        }
        key
    }
}

/// Write every script of `plan`.
pub fn write(plan: &Plan) -> Result<Scripts> {
    if plan.table.primary_key.is_empty() {
        return Err(Error::Usage {
            message: format!(
                "{}.{} has no primary key: the conversion's mirror trigger finds rows by it",
                plan.table.schema, plan.table.name
            ),
            fix: "add a primary key first".into(),
        });
    }
    if !plan.table.columns.contains(&plan.column) {
        return Err(Error::Usage {
            message: format!("{} has no column {}", plan.table.name, plan.column),
            fix: "name the time column with --partition-by".into(),
        });
    }
    Ok(Scripts {
        conversion: conversion(plan),
        rollback: rollback(plan),
        cleanup: cleanup(plan),
        drop_expired: drop_expired(plan),
        delete: delete(plan),
        tradeoffs: tradeoffs(plan),
    })
}

fn conversion(plan: &Plan) -> String {
    let mut s = format!(
        "-- crmbench: {t} to monthly range partitions on {c}, written by `rehearse --retention`.\n\
         -- Run statement by statement (psql -v ON_ERROR_STOP=1 -f); not inside one transaction.\n\n",
        t = plan.t(&plan.table.name),
        c = qi(&plan.column)
    );
    s.push_str(&twin(plan));
    s.push_str(&mirror(plan));
    s.push_str(&copy(plan));
    s.push_str(&swap(plan));
    s
}

/// The partitioned twin: same columns, defaults and checks, the key with
/// the partition column, indexes, foreign keys and the partitions.
fn twin(plan: &Plan) -> String {
    let info = &plan.table;
    let new = plan.t(&plan.new_name());
    let mut s = format!(
        "CREATE TABLE {new} (LIKE {old} INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING STORAGE \
         INCLUDING COMMENTS) PARTITION BY RANGE ({c});\n",
        old = plan.t(&info.name),
        c = qi(&plan.column)
    );
    if let Some(id) = &info.identity {
        // An identity column on a partitioned table gives no id to a row
        // inserted into a partition directly before PostgreSQL 17 (checked
        // on 15: NOT NULL violation); a sequence default is copied to every
        // partition, pg_partman's included.
        let seq = plan.t(&new_sequence(plan, id));
        s.push_str(&format!(
            "CREATE SEQUENCE {seq} AS bigint OWNED BY {new}.{col};\n\
             ALTER TABLE {new} ALTER COLUMN {col} SET DEFAULT nextval({lit}::regclass);\n",
            col = qi(id),
            lit = ql(&seq)
        ));
    }
    let key: Vec<String> = plan.new_key().iter().map(|c| qi(c)).collect();
    s.push_str(&format!(
        "ALTER TABLE {new} ADD CONSTRAINT {} PRIMARY KEY ({});\n",
        qi(&format!("{}_pkey", plan.new_name())),
        key.join(", ")
    ));
    for (name, def) in &info.indexes {
        s.push_str(&format!(
            "{};\n",
            index_on(def, &format!("{name}_new"), &new, plan)
        ));
    }
    for (name, def) in &info.foreign_keys {
        s.push_str(&format!(
            "ALTER TABLE {new} ADD CONSTRAINT {} {def};\n",
            qi(name)
        ));
    }
    for m in plan.months() {
        s.push_str(&format!(
            "CREATE TABLE {} PARTITION OF {new} FOR VALUES FROM ('{m}') TO ('{}');\n",
            plan.t(&partition_name(&info.name, m)),
            add_months(m, 1)
        ));
    }
    s.push('\n');
    s
}

/// `def` (pg_get_indexdef) rewritten as `name` on `table`. A unique index
/// without the partition column cannot exist on a partitioned table: it
/// becomes a plain one (a trade-off the reader is told).
fn index_on(def: &str, name: &str, table: &str, plan: &Plan) -> String {
    let tail = def.find(" USING ").map_or("", |p| &def[p..]);
    let unique = def.starts_with("CREATE UNIQUE") && tail.contains(&qi(&plan.column));
    format!(
        "CREATE {}INDEX {} ON {table}{tail}",
        if unique { "UNIQUE " } else { "" },
        qi(name)
    )
}

/// The twin's sequence until the swap; after it, the old identity's name.
fn new_sequence(plan: &Plan, id: &str) -> String {
    format!("{}_{id}_seq", plan.new_name())
}

/// Sequence renames of the swap (the old identity's aside, the twin's to
/// its name), reversed by the rollback.
fn sequence_renames(plan: &Plan, forward: bool) -> String {
    let (Some(id), Some(seq)) = (&plan.table.identity, &plan.table.identity_sequence) else {
        return String::new();
    };
    let (tmp, aside) = (new_sequence(plan, id), format!("{seq}_old"));
    let pairs = if forward {
        [(seq.clone(), aside.clone()), (tmp, seq.clone())]
    } else {
        [(seq.clone(), tmp), (aside, seq.clone())]
    };
    pairs
        .iter()
        .map(|(from, to)| format!("ALTER SEQUENCE {} RENAME TO {};\n", plan.t(from), qi(to)))
        .collect()
}

fn sync_fn(plan: &Plan) -> String {
    plan.t(&format!("{}_mirror", plan.table.name))
}

/// The trigger mirroring writes to the twin from the moment it exists.
fn mirror(plan: &Plan) -> String {
    let key = plan.new_key();
    let cols: Vec<String> = key.iter().map(|c| qi(c)).collect();
    let olds: Vec<String> = key.iter().map(|c| format!("OLD.{}", qi(c))).collect();
    format!(
        "-- Every write from now on reaches the twin in its own transaction.\n\
         CREATE FUNCTION {f}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER \
         SET search_path = pg_catalog AS $mirror$\n\
         BEGIN\n\
         \x20 IF TG_OP IN ('UPDATE', 'DELETE') THEN\n\
         \x20   DELETE FROM {new} WHERE ({cols}) = ({olds});\n\
         \x20 END IF;\n\
         \x20 IF TG_OP IN ('INSERT', 'UPDATE') THEN\n\
         \x20   INSERT INTO {new} SELECT (NEW).* ON CONFLICT DO NOTHING;\n\
         \x20 END IF;\n\
         \x20 RETURN NULL;\n\
         END $mirror$;\n\
         CREATE TRIGGER {trg} AFTER INSERT OR UPDATE OR DELETE ON {old} \
         FOR EACH ROW EXECUTE FUNCTION {f}();\n\n",
        f = sync_fn(plan),
        new = plan.t(&plan.new_name()),
        old = plan.t(&plan.table.name),
        cols = cols.join(", "),
        olds = olds.join(", "),
        trg = qi(&format!("{}_mirror", plan.table.name)),
    )
}

/// A `DO` block walking the table's pages `pages_per_batch` at a time, one
/// transaction per batch, running `body` with `lo`/`hi` page bounds.
fn page_batches(plan: &Plan, label: &str, body: &str) -> String {
    format!(
        "-- {label}: {n} heap pages per transaction.\n\
         DO $batches$\n\
         DECLARE\n\
         \x20 pages bigint := pg_relation_size({rel}) / current_setting('block_size')::bigint;\n\
         \x20 lo bigint := 0;\n\
         BEGIN\n\
         \x20 WHILE lo < pages LOOP\n\
         \x20   {body};\n\
         \x20   COMMIT;\n\
         \x20   lo := lo + {n};\n\
         \x20 END LOOP;\n\
         END $batches$;\n",
        n = plan.pages_per_batch,
        rel = ql(&plan.t(&plan.table.name)),
    )
}

const PAGES: &str = "ctid >= format('(%s,0)', lo)::tid AND ctid < format('(%s,0)', lo + {n})::tid";

fn pages_cond(plan: &Plan) -> String {
    PAGES.replace("{n}", &plan.pages_per_batch.to_string())
}

fn copy(plan: &Plan) -> String {
    let body = format!(
        "INSERT INTO {new} SELECT * FROM {old} WHERE {cond} ON CONFLICT DO NOTHING",
        new = plan.t(&plan.new_name()),
        old = plan.t(&plan.table.name),
        cond = pages_cond(plan)
    );
    let mut s = page_batches(plan, "The rows already there, copied", &body);
    s.push_str(&format!("ANALYZE {};\n\n", plan.t(&plan.new_name())));
    s
}

/// (from, to) name pairs of the indexes renamed when `from_suffix` becomes `to_suffix`.
fn index_renames(plan: &Plan, from_suffix: &str, to_suffix: &str) -> Vec<(String, String)> {
    let base = &plan.table.name;
    let mut out = vec![(
        format!("{base}{from_suffix}_pkey"),
        format!("{base}{to_suffix}_pkey"),
    )];
    for (name, _) in &plan.table.indexes {
        out.push((format!("{name}{from_suffix}"), format!("{name}{to_suffix}")));
    }
    out
}

fn renames(plan: &Plan, table_from: &str, table_to: &str, idx_from: &str, idx_to: &str) -> String {
    let mut s = format!(
        "ALTER TABLE {} RENAME TO {};\n",
        plan.t(table_from),
        qi(table_to)
    );
    for (from, to) in index_renames(plan, idx_from, idx_to) {
        s.push_str(&format!(
            "ALTER INDEX {} RENAME TO {};\n",
            plan.t(&from),
            qi(&to)
        ));
    }
    s
}

fn old_sequence(plan: &Plan, table: &str) -> Option<String> {
    plan.table
        .identity
        .as_ref()
        .map(|id| format!("pg_get_serial_sequence({}, {})", ql(&plan.t(table)), ql(id)))
}

/// The one short transaction: writes stop, the names change hands, the
/// security moves to the new table.
fn swap(plan: &Plan) -> String {
    let info = &plan.table;
    let name = &info.name;
    let mut s = format!(
        "-- The swap: one short transaction (writers wait for it, at most lock_timeout).\n\
         BEGIN;\n\
         SET LOCAL lock_timeout = '5s';\n\
         LOCK TABLE {t} IN ACCESS EXCLUSIVE MODE;\n\
         DROP TRIGGER {trg} ON {t};\n\
         DROP FUNCTION {f}();\n",
        t = plan.t(name),
        trg = qi(&format!("{name}_mirror")),
        f = sync_fn(plan)
    );
    if let (Some(id), Some(seq)) = (&info.identity, old_sequence(plan, name)) {
        s.push_str(&format!(
            "SELECT setval({new_seq}, (SELECT last_value FROM pg_sequences WHERE format('%I.%I', schemaname, sequencename)::regclass = {seq}::regclass));\n",
            new_seq = ql(&plan.t(&new_sequence(plan, id))),
        ));
    }
    s.push_str(&sequence_renames(plan, true));
    s.push_str(&renames(plan, name, &plan.old_name(), "", "_old"));
    s.push_str(&renames(plan, &plan.new_name(), name, "_new", ""));
    s.push_str(&security(plan, &plan.t(name)));
    s.push_str("COMMIT;\n");
    s
}

/// Row-level security, policies and grants of the old table, on `table`.
fn security(plan: &Plan, table: &str) -> String {
    let info = &plan.table;
    let mut s = String::new();
    if info.rls.0 {
        s.push_str(&format!("ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\n"));
    }
    if info.rls.1 {
        s.push_str(&format!("ALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"));
    }
    for p in info.policies.iter().chain(&info.grants) {
        s.push_str(&format!("{};\n", p.replace("{table}", table)));
    }
    if let Some(id) = &info.identity {
        // Writers that could insert need the new sequence.
        for g in info.grants.iter().filter(|g| g.contains("INSERT")) {
            if let Some(role) = g.rsplit(" TO ").next() {
                let seq = info
                    .identity_sequence
                    .clone()
                    .unwrap_or_else(|| new_sequence(plan, id));
                s.push_str(&format!(
                    "GRANT USAGE, SELECT ON SEQUENCE {} TO {role};\n",
                    plan.t(&seq)
                ));
            }
        }
    }
    s
}

fn rollback(plan: &Plan) -> String {
    let name = &plan.table.name;
    let t = plan.t(name);
    let old = plan.t(&plan.old_name());
    let mut s = format!(
        "-- crmbench: rollback of the conversion of {t}: the old table back, with the rows written since.\n\
         BEGIN;\n\
         SET LOCAL lock_timeout = '5s';\n\
         LOCK TABLE {t}, {old} IN ACCESS EXCLUSIVE MODE;\n"
    );
    let key = plan.table.primary_key.clone();
    let on: Vec<String> = key
        .iter()
        .map(|c| format!("o.{0} = n.{0}", qi(c)))
        .collect();
    let overriding = if plan.table.identity.is_some() {
        " OVERRIDING SYSTEM VALUE"
    } else {
        ""
    };
    s.push_str(&format!(
        "INSERT INTO {old}{overriding} SELECT * FROM {t} n WHERE NOT EXISTS (SELECT 1 FROM {old} o WHERE {});\n",
        on.join(" AND ")
    ));
    if let (Some(id), Some(seq)) = (&plan.table.identity, old_sequence(plan, &plan.old_name())) {
        // The twin's sequence was set past the old identity in the swap, so
        // its last value bounds every id written since.
        s.push_str(&format!(
            "SELECT setval({seq}, greatest(coalesce((SELECT last_value FROM {newseq}), 1), \
             coalesce((SELECT last_value FROM pg_sequences WHERE format('%I.%I', schemaname, sequencename)::regclass = {seq}::regclass), 1)));\n",
            newseq = plan.t(plan.table.identity_sequence.as_deref().unwrap_or(&new_sequence(plan, id)))
        ));
    }
    s.push_str(&sequence_renames(plan, false));
    s.push_str(&renames(plan, name, &plan.new_name(), "", "_new"));
    s.push_str(&renames(plan, &plan.old_name(), name, "_old", ""));
    s.push_str(&format!(
        "DROP TABLE {};\nCOMMIT;\n",
        plan.t(&plan.new_name())
    ));
    s
}

fn cleanup(plan: &Plan) -> String {
    let t = plan.t(&plan.table.name);
    let old = plan.t(&plan.old_name());
    format!(
        "-- crmbench: the old table goes only once every row of it is in the new one.\n\
         DO $check$\n\
         BEGIN\n\
         \x20 IF EXISTS (SELECT * FROM {old} EXCEPT ALL SELECT * FROM {t}) THEN\n\
         \x20   RAISE EXCEPTION 'rows of {old} are missing from {t}: keep it';\n\
         \x20 END IF;\n\
         END $check$;\n\
         DROP TABLE {old};\n"
    )
}

fn drop_expired(plan: &Plan) -> String {
    let t = plan.t(&plan.table.name);
    let mut s = format!(
        "-- crmbench: expired partitions of {t} (before {}), detached without blocking writers, then dropped.\n",
        plan.cutoff
    );
    for m in plan.expired() {
        let p = plan.t(&partition_name(&plan.table.name, m));
        s.push_str(&format!(
            "ALTER TABLE {t} DETACH PARTITION {p} CONCURRENTLY;\nDROP TABLE {p};\n"
        ));
    }
    s
}

fn delete(plan: &Plan) -> String {
    let body = format!(
        "DELETE FROM {t} WHERE {cond} AND {c} < '{cut}'",
        t = plan.t(&plan.table.name),
        cond = pages_cond(plan),
        c = qi(&plan.column),
        cut = plan.cutoff
    );
    let mut s = format!(
        "-- crmbench: expired rows of {} (before {}) deleted in batches, then vacuumed.\n",
        plan.t(&plan.table.name),
        plan.cutoff
    );
    s.push_str(&page_batches(plan, "Expired rows deleted", &body));
    s.push_str(&format!("VACUUM (ANALYZE) {};\n", plan.t(&plan.table.name)));
    s
}

fn tradeoffs(plan: &Plan) -> Vec<String> {
    let info = &plan.table;
    let mut out = vec![format!(
        "The primary key becomes ({}): PostgreSQL requires the partition column in it, so ({}) \
         alone is no longer enforced. Ids come from one sequence, so they stay unique in practice; \
         where the guarantee must hold, keep a non-partitioned lookup table with UNIQUE ({}) \
         filled by the same insert, or accept it (this conversion does).",
        plan.new_key().join(", "),
        info.primary_key.join(", "),
        info.primary_key.join(", ")
    )];
    if let Some(id) = &info.identity {
        out.push(format!(
            "{id} was an identity column; on PostgreSQL 15 a row inserted into a partition \
             directly gets no identity value (NOT NULL violation, checked), so the new table uses \
             a sequence default, which every partition inherits, set past the old identity in the swap."
        ));
    }
    for (name, def) in &info.indexes {
        if def.starts_with("CREATE UNIQUE") && !def.contains(&qi(&plan.column)) {
            out.push(format!(
                "unique index {name} lacks {}: on the partitioned table it is a plain index, \
                 its uniqueness is no longer enforced.",
                plan.column
            ));
        }
    }
    if !info.referenced_by.is_empty() {
        out.push(format!(
            "foreign keys point at the table ({}): they must name the new key, which includes {}; \
             this conversion leaves them on the old table.",
            info.referenced_by.join(", "),
            plan.column
        ));
    }
    out.push(
        "No default partition: DETACH … CONCURRENTLY refuses a table that has one; the \
         retention job keeps partitions created ahead, and a row beyond them fails to insert."
            .into(),
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn months_cover_the_data_and_three_ahead_and_expired_ones_end_by_the_cutoff() {
        let d = |y, m| NaiveDate::from_ymd_opt(y, m, 1).unwrap_or_default();
        assert_eq!(add_months(d(2024, 11), 3), d(2025, 2));
        assert_eq!(add_months(d(2024, 1), -1), d(2023, 12));
        let plan = Plan {
            table: TableInfo::default(),
            column: "created_at".into(),
            first: d(2024, 10),
            last: d(2024, 12),
            cutoff: d(2024, 12),
            pages_per_batch: 10,
        };
        let months = plan.months();
        assert_eq!(months.first(), Some(&d(2024, 10)));
        assert_eq!(months.last(), Some(&d(2025, 3)));
        assert_eq!(plan.expired(), vec![d(2024, 10), d(2024, 11)]);
        assert_eq!(
            partition_name("audit_log", d(2024, 1)),
            "audit_log_p2024_01"
        );
    }
}
