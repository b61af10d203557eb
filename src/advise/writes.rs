//! What a write really maintains, so the selection charges an index for the
//! writes that touch it and no others:
//! - an INSERT adds an entry to a partial index only for rows matching its
//!   predicate: the rows the statement would insert (its own `VALUES` or
//!   `SELECT`, read-only, the sample parameters bound) are tested against the
//!   predicate; without them, the planner's selectivity of the predicate;
//! - an UPDATE that sets no column any index covers stays HOT (heap-only
//!   tuple) and maintains no index at all, whatever their number; one that
//!   sets a column an index covers maintains *every* index of the table. So
//!   a new index on an updated column costs the new index and all the
//!   existing ones, and a new index elsewhere costs those updates nothing
//!   (HOT also needs room on the page: fillfactor is not modelled);
//! - a DELETE marks the heap tuple only; each index pays when VACUUM removes
//!   the entries (charged like an insert).
//!
//! Columns are judged from the statement's `SET` list (an update that writes
//! a column's old value back stays HOT in PostgreSQL; here it does not).

use std::collections::HashMap;

use tokio_postgres::Client;

use super::candidates::{IndexDef, sql_ident};
use super::select::{Item, WRITE_COST_PER_INDEX};
use crate::error::{Error, Result};
use crate::sql::{self, NodeEnum};

/// What kind of write a statement is.
#[derive(Debug, Clone, Default, PartialEq)]
pub enum WriteKind {
    /// Unread (no parse, no catalog): every index charged in full.
    #[default]
    Unknown,
    /// INSERT (ON CONFLICT included).
    Insert,
    /// UPDATE of these columns.
    Update(Vec<String>),
    /// DELETE.
    Delete,
}

/// One write statement's table and what it maintains there.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Write {
    /// The table written (a partition's root).
    pub table: String,
    /// Insert, update or delete.
    pub kind: WriteKind,
    /// Indexes on the table today.
    pub existing: usize,
    /// An index today covers a column the update sets: it is non-HOT
    /// already, and a new index costs only itself.
    pub non_hot_today: bool,
    /// Candidates that cover a column the update sets (they end HOT).
    pub kills_hot: Vec<IndexDef>,
    /// Share, 0–1, of the rows written that match each partial predicate.
    pub matching: HashMap<String, f64>,
}

impl Write {
    /// A write of `table` not yet read: charged as every index in full.
    pub fn on(table: &str) -> Write {
        Write {
            table: table.to_string(),
            ..Write::default()
        }
    }

    /// Plan-cost units `config`'s indexes add to one execution.
    pub fn cost(&self, config: &[IndexDef]) -> f64 {
        let new: Vec<&IndexDef> = config.iter().filter(|d| d.table == self.table).collect();
        let share = |d: &IndexDef| {
            d.predicate
                .as_ref()
                .map_or(1.0, |p| self.matching.get(p).copied().unwrap_or(1.0))
        };
        let own: f64 = new.iter().map(|d| share(d)).sum::<f64>() * WRITE_COST_PER_INDEX;
        match &self.kind {
            WriteKind::Unknown | WriteKind::Insert | WriteKind::Delete => own,
            WriteKind::Update(_) if self.non_hot_today => own,
            WriteKind::Update(_) if new.iter().any(|d| self.kills_hot.contains(d)) => {
                own + self.existing as f64 * WRITE_COST_PER_INDEX
            }
            WriteKind::Update(_) => 0.0,
        }
    }
}

/// Read what each write item of `items` maintains: its kind, the table's
/// indexes today, the candidates that would end its HOT updates, and the
/// share of its rows each candidate's predicate matches.
pub async fn prepare(
    client: &Client,
    schema: &str,
    items: &mut [Item],
    candidates: &[IndexDef],
) -> Result<()> {
    let mut selectivity: HashMap<(String, String), f64> = HashMap::new();
    for item in items.iter_mut() {
        let Some(write) = item.writes.as_mut() else {
            continue;
        };
        write.kind = kind_of(&item.sql, &write.table);
        let indexed = index_columns(client, schema, &write.table).await?;
        write.existing = indexed.len();
        if let WriteKind::Update(set) = &write.kind {
            write.non_hot_today = indexed
                .iter()
                .any(|cols| cols.iter().any(|c| set.contains(c)));
            write.kills_hot = candidates
                .iter()
                .filter(|d| d.table == write.table && covers_any(d, set))
                .cloned()
                .collect();
        }
        for d in candidates.iter().filter(|d| d.table == write.table) {
            let Some(pred) = &d.predicate else { continue };
            if write.matching.contains_key(pred) {
                continue;
            }
            let inserted = if write.kind == WriteKind::Insert {
                inserted_share(client, schema, &item.sql, &write.table, pred, &item.samples).await
            } else {
                None
            };
            let share = match inserted {
                Some(s) => s,
                None => {
                    let key = (write.table.clone(), pred.clone());
                    match selectivity.get(&key) {
                        Some(s) => *s,
                        None => {
                            let s = table_share(client, schema, &write.table, pred).await;
                            selectivity.insert(key, s);
                            s
                        }
                    }
                }
            };
            write.matching.insert(pred.clone(), share);
        }
    }
    Ok(())
}

/// Whether `def` covers any of `columns` (key, INCLUDE, expression or
/// predicate): setting one of them ends HOT for the table's updates.
fn covers_any(def: &IndexDef, columns: &[String]) -> bool {
    let mut used: Vec<String> = def.include.clone();
    for k in &def.columns {
        used.extend(sql::column_refs(&k.name).unwrap_or_else(|_| vec![k.name.clone()]));
    }
    if let Some(p) = &def.predicate {
        used.extend(sql::column_refs(p).unwrap_or_default());
    }
    used.iter().any(|c| columns.contains(c))
}

/// The kind of the statement of `sql` that writes `table` (at top level or
/// in a `WITH`): the first write when none names `table` itself.
pub fn kind_of(sql: &str, table: &str) -> WriteKind {
    let Ok(tree) = sql::parse(sql) else {
        return WriteKind::Unknown;
    };
    let mut found: Vec<(String, WriteKind)> = Vec::new();
    for raw in &tree.protobuf.stmts {
        if let Some(node) = raw.stmt.as_ref().and_then(|s| s.node.as_ref()) {
            collect_writes(node, &mut found);
        }
    }
    let named = found.iter().position(|(t, _)| t == table);
    named
        .or(if found.is_empty() { None } else { Some(0) })
        .map_or(WriteKind::Unknown, |k| found.swap_remove(k).1)
}

fn collect_writes(node: &NodeEnum, out: &mut Vec<(String, WriteKind)>) {
    let name = |r: &Option<pg_query::protobuf::RangeVar>| {
        r.as_ref().map(|r| r.relname.clone()).unwrap_or_default()
    };
    let with = match node {
        NodeEnum::InsertStmt(s) => {
            out.push((name(&s.relation), WriteKind::Insert));
            s.with_clause.as_ref()
        }
        NodeEnum::UpdateStmt(s) => {
            let set = s
                .target_list
                .iter()
                .filter_map(|t| match t.node.as_ref() {
                    Some(NodeEnum::ResTarget(r)) => Some(r.name.clone()),
                    _ => None,
                })
                .collect();
            out.push((name(&s.relation), WriteKind::Update(set)));
            s.with_clause.as_ref()
        }
        NodeEnum::DeleteStmt(s) => {
            out.push((name(&s.relation), WriteKind::Delete));
            s.with_clause.as_ref()
        }
        NodeEnum::SelectStmt(s) => s.with_clause.as_ref(),
        _ => None,
    };
    for cte in with.map(|w| w.ctes.as_slice()).unwrap_or_default() {
        if let Some(NodeEnum::CommonTableExpr(c)) = cte.node.as_ref() {
            if let Some(q) = c.ctequery.as_ref().and_then(|q| q.node.as_ref()) {
                collect_writes(q, out);
            }
        }
    }
}

/// Every index of `table` in `schema` as the columns it reads (keys,
/// INCLUDE, and those its expressions and predicate use, by their
/// dependency records).
async fn index_columns(client: &Client, schema: &str, table: &str) -> Result<Vec<Vec<String>>> {
    let rows = client
        .query(
            "SELECT ARRAY(SELECT a.attname::text FROM pg_attribute a \
                          WHERE a.attrelid = i.indrelid AND a.attnum > 0 \
                            AND (a.attnum = ANY (i.indkey::int2[]) OR a.attnum IN ( \
                                 SELECT d.refobjsubid FROM pg_depend d \
                                 WHERE d.classid = 'pg_class'::regclass AND d.objid = i.indexrelid \
                                   AND d.refclassid = 'pg_class'::regclass AND d.refobjid = i.indrelid))) \
             FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &table],
        )
        .await
        .map_err(|e| Error::from_pg(format!("reading the indexes of {table}"), e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// The planner's share of `table`'s rows that match `predicate` (1 when it
/// cannot say: charged in full).
async fn table_share(client: &Client, schema: &str, table: &str, predicate: &str) -> f64 {
    let from = format!("{}.{}", sql_ident(schema), sql_ident(table));
    let rows = |sql: String| async move {
        let row = client
            .query_one(&format!("EXPLAIN (FORMAT JSON) {sql}"), &[])
            .await
            .ok()?;
        let json: serde_json::Value = row.get(0);
        json.get(0)?.get("Plan")?.get("Plan Rows")?.as_f64()
    };
    let all = rows(format!("SELECT 1 FROM {from}")).await;
    let matching = rows(format!("SELECT 1 FROM {from} WHERE {predicate}")).await;
    match (matching, all) {
        (Some(m), Some(a)) if a > 0.0 => (m / a).clamp(0.0, 1.0),
        _ => 1.0,
    }
}

/// The share of the rows the INSERT `sql` would write that match
/// `predicate`, over the samples: its `VALUES` or `SELECT` evaluated in a
/// read-only transaction (columns the predicate does not read replaced by
/// NULL, so nothing volatile runs). `None` when it cannot be read so.
async fn inserted_share(
    client: &Client,
    schema: &str,
    sql: &str,
    table: &str,
    predicate: &str,
    samples: &[(String, Vec<crate::workload::params::Value>)],
) -> Option<f64> {
    let probe = insert_probe(client, schema, sql, table, predicate).await?;
    client
        .batch_execute(&format!(
            "BEGIN READ ONLY; SET LOCAL search_path = {}, public",
            sql_ident(schema)
        ))
        .await
        .ok()?;
    let result = async {
        let types = client.prepare(sql).await.ok()?.params().to_vec();
        let stmt = client.prepare_typed(&probe, &types).await.ok()?;
        let (mut sum, mut n) = (0.0, 0usize);
        for (_, params) in samples {
            let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                .iter()
                .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                .collect();
            let row = client.query_one(&stmt, &refs).await.ok()?;
            if let Some(share) = row.get::<_, Option<f64>>(0) {
                sum += share;
                n += 1;
            }
        }
        (n > 0).then(|| sum / n as f64)
    }
    .await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

/// `SELECT avg(matches) FROM (the insert's rows)` for `predicate`, or
/// `None` when the insert has no column list, its source is a set
/// operation, or a column the predicate reads takes a volatile default.
async fn insert_probe(
    client: &Client,
    schema: &str,
    sql: &str,
    table: &str,
    predicate: &str,
) -> Option<String> {
    let tree = sql::parse(sql).ok()?;
    let insert = tree.protobuf.stmts.iter().find_map(|s| {
        match s.stmt.as_ref().and_then(|n| n.node.as_ref()) {
            Some(NodeEnum::InsertStmt(i)) => Some(i.clone()),
            _ => None,
        }
    })?;
    let cols: Vec<String> = insert
        .cols
        .iter()
        .filter_map(|c| match c.node.as_ref() {
            Some(NodeEnum::ResTarget(r)) => Some(r.name.clone()),
            _ => None,
        })
        .collect();
    let wanted = sql::column_refs(predicate).ok()?;
    let Some(NodeEnum::SelectStmt(mut source)) = insert.select_stmt?.node else {
        return None;
    };
    if cols.is_empty() || source.larg.is_some() {
        return None;
    }
    keep_only(&mut source, &cols, &wanted)?;
    let source = sql::deparse_select(&source).ok()?;
    let columns = column_sources(client, schema, table, &cols, &wanted).await?;
    let aliases: Vec<String> = cols.iter().map(|c| sql_ident(c)).collect();
    Some(format!(
        "SELECT avg(CASE WHEN {predicate} THEN 1.0 ELSE 0.0 END)::float8 \
         FROM (SELECT {} FROM ({source}) AS v ({})) AS w",
        columns.join(", "),
        aliases.join(", ")
    ))
}

/// Replace every value of `source` (each `VALUES` row, or the target list)
/// for a column the predicate does not read by NULL.
fn keep_only(
    source: &mut pg_query::protobuf::SelectStmt,
    cols: &[String],
    wanted: &[String],
) -> Option<()> {
    let keep = |k: usize| cols.get(k).is_some_and(|c| wanted.contains(c));
    if source.values_lists.is_empty() {
        for (k, t) in source.target_list.iter_mut().enumerate() {
            let Some(NodeEnum::ResTarget(r)) = t.node.as_mut() else {
                return None;
            };
            if !keep(k) {
                r.val = Some(Box::new(sql::null_node()));
            }
        }
    } else {
        for row in &mut source.values_lists {
            let Some(NodeEnum::List(list)) = row.node.as_mut() else {
                return None;
            };
            for (k, v) in list.items.iter_mut().enumerate() {
                if matches!(v.node, Some(NodeEnum::SetToDefault(_))) && keep(k) {
                    return None; // DEFAULT outside an INSERT does not parse
                }
                if !keep(k) || matches!(v.node, Some(NodeEnum::SetToDefault(_))) {
                    *v = sql::null_node();
                }
            }
        }
    }
    Some(())
}

/// The select list giving each column the predicate reads its inserted
/// value, or its default when the insert leaves it out, cast to its type.
async fn column_sources(
    client: &Client,
    schema: &str,
    table: &str,
    cols: &[String],
    wanted: &[String],
) -> Option<Vec<String>> {
    let rows = client
        .query(
            "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod), \
                    pg_get_expr(d.adbin, d.adrelid) \
             FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum \
             WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped",
            &[&schema, &table],
        )
        .await
        .ok()?;
    let mut out = Vec::new();
    for w in wanted {
        let row = rows.iter().find(|r| r.get::<_, String>(0) == *w)?;
        let ty: String = row.get(1);
        let value = if cols.contains(w) {
            format!("v.{}", sql_ident(w))
        } else {
            let default: Option<String> = row.get(2);
            if default.as_deref().is_some_and(|d| d.contains("nextval(")) {
                return None;
            }
            default.unwrap_or_else(|| "NULL".into())
        };
        out.push(format!("CAST({value} AS {ty}) AS {}", sql_ident(w)));
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(kind: WriteKind) -> Write {
        Write {
            kind,
            existing: 3,
            ..Write::on("customers")
        }
    }

    #[test]
    fn a_hot_update_pays_nothing_and_one_that_ends_hot_pays_for_every_index() {
        let phone = IndexDef::on("customers", &["tenant_id", "phone"]);
        let city = IndexDef::on("customers", &["tenant_id", "city"]);
        let mut w = write(WriteKind::Update(vec!["marketing_opt_in".into()]));
        assert_eq!(w.cost(std::slice::from_ref(&phone)), 0.0);
        w.kind = WriteKind::Update(vec!["phone".into()]);
        w.kills_hot = vec![phone.clone()];
        // The new index and the three that were HOT-skipped before.
        assert_eq!(
            w.cost(std::slice::from_ref(&phone)),
            4.0 * WRITE_COST_PER_INDEX
        );
        assert_eq!(w.cost(std::slice::from_ref(&city)), 0.0);
        w.non_hot_today = true;
        assert_eq!(w.cost(&[phone, city]), 2.0 * WRITE_COST_PER_INDEX);
    }

    #[test]
    fn a_partial_index_costs_an_insert_only_its_matching_share() {
        let mut partial = IndexDef::on("customers", &["tenant_id", "city"]);
        partial.predicate = Some("status = 'vip'::text".into());
        let mut w = write(WriteKind::Insert);
        w.matching.insert("status = 'vip'::text".into(), 0.0);
        assert_eq!(w.cost(std::slice::from_ref(&partial)), 0.0);
        w.matching.insert("status = 'vip'::text".into(), 0.25);
        assert_eq!(w.cost(&[partial]), 0.25 * WRITE_COST_PER_INDEX);
        let other = IndexDef::on("orders", &["tenant_id", "status"]);
        assert_eq!(w.cost(&[other]), 0.0);
    }

    #[test]
    fn the_kind_and_set_columns_come_from_the_parser() {
        assert_eq!(
            kind_of(
                "UPDATE customers SET phone = $1, marketing_opt_in = $2 WHERE id = $3",
                "customers"
            ),
            WriteKind::Update(vec!["phone".into(), "marketing_opt_in".into()])
        );
        assert_eq!(
            kind_of(
                "WITH x AS (DELETE FROM orders WHERE id = $1 RETURNING id) \
                 INSERT INTO audit_log (entity_id) SELECT id FROM x",
                "orders"
            ),
            WriteKind::Delete
        );
        assert_eq!(kind_of("INSERT INTO t VALUES (1)", "t"), WriteKind::Insert);
        assert_eq!(kind_of("SELEC 1", "t"), WriteKind::Unknown);
    }
}
