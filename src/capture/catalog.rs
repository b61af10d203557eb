//! What `capture` needs from the catalog: every user table with its
//! columns' types and the columns in a unique index, and the tenant context
//! read from the row-level security policies (the setting inside
//! `current_setting(…)` and the column compared with it).

use pg_query::NodeRef;
use pg_query::protobuf::a_const::Val;
use tokio_postgres::Client;

use super::domain::{self, Allowed};
use super::infer::TableName;
use crate::error::{Error, Result};

/// One user table.
#[derive(Debug, Clone, Default)]
pub struct Table {
    /// Schema.
    pub schema: String,
    /// Name.
    pub name: String,
    /// (column, type name) in order.
    pub columns: Vec<(String, String)>,
    /// The unique indexes' columns.
    pub unique: Vec<Vec<String>>,
    /// The planner's row estimate.
    pub rows: f64,
    /// Columns filled from a sequence (serial or identity).
    pub serial: Vec<String>,
    /// What single-column CHECK constraints allow, by column.
    pub allowed: Vec<(String, Allowed)>,
    /// The planner's most common values, by column (`pg_stats`).
    pub common: Vec<(String, Vec<String>)>,
    /// The planner's histogram bounds, by column (`pg_stats`): equal-count
    /// buckets of the values that are not among the most common.
    pub bounds: Vec<(String, Vec<String>)>,
    /// Columns a CHECK constraint over several columns ties together
    /// (`(status = 'open') = (closed_at IS NULL)`).
    pub tied: Vec<String>,
    /// Foreign keys, column by column (a composite key `(tenant_id,
    /// order_id)` gives two): (column, referenced table, its column).
    pub references: Vec<(String, String, String)>,
}

impl Table {
    /// The type name (`pg_type.typname`) of `column`.
    pub fn type_of(&self, column: &str) -> Option<&str> {
        self.columns
            .iter()
            .find(|(c, _)| c == column)
            .map(|(_, t)| t.as_str())
    }

    /// Whether `column` is in a unique index all of whose columns the
    /// statement writes from parameters (`written`: (table, column), the
    /// table `None` for the statement's own).
    pub fn in_written_key(&self, column: &str, written: &[(Option<TableName>, String)]) -> bool {
        let writes = |c: &String| {
            written
                .iter()
                .any(|(t, w)| w == c && t.as_ref().is_none_or(|t| t.name == self.name))
        };
        self.unique
            .iter()
            .any(|key| key.iter().any(|c| c == column) && key.iter().all(writes))
    }

    /// A generator of `column`'s values that keeps to its CHECK
    /// constraints, else drawn from its most common values; `None` when
    /// the catalog knows neither.
    pub fn domain_generator(&self, column: &str) -> Option<String> {
        let ty = self.type_of(column)?;
        let allowed = self
            .allowed
            .iter()
            .filter(|(c, _)| c == column)
            .fold(Allowed::default(), |a, (_, b)| a.and(b.clone()));
        if let Some(g) = allowed.generator(ty) {
            return Some(g);
        }
        self.common
            .iter()
            .find(|(c, v)| c == column && !v.is_empty())
            .map(|(_, v)| super::domain::choice(v))
    }

    /// `schema.table`, each part quoted when it must be.
    pub fn qualified(&self) -> String {
        format!("{}.{}", ident(&self.schema), ident(&self.name))
    }
}

/// An identifier as SQL needs it: bare when it is a plain lower-case word.
pub fn ident(name: &str) -> String {
    // One rule for when a name needs quotes: the audit's.
    crate::audit::rules::ident(name)
}

/// The tenant frame detected from the policies.
#[derive(Debug, Clone, Default)]
pub struct TenantContext {
    /// The setting inside `current_setting(…)`.
    pub setting: Option<String>,
    /// The SQL listing the tenants with their sizes.
    pub tenants: Option<String>,
    /// The policies' tenant column.
    pub column: Option<String>,
}

/// The user tables and the policies' tenant column and setting.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    tables: Vec<Table>,
    tenant_column: Option<String>,
    setting: Option<String>,
    /// Each policy's (schema, table, column compared with the setting).
    policy_columns: Vec<(String, String, String)>,
}

impl Catalog {
    /// A catalog of `tables` whose policies compare `tenant_column` with
    /// the setting `app.tenant` (unit tests).
    #[cfg(test)]
    pub fn of(tables: Vec<Table>, tenant_column: &str) -> Catalog {
        let policy_columns = tables
            .iter()
            .map(|t| (t.schema.clone(), t.name.clone(), tenant_column.to_string()))
            .collect();
        Catalog {
            tables,
            tenant_column: Some(tenant_column.into()),
            setting: Some("app.tenant".into()),
            policy_columns,
        }
    }

    /// Read the catalog of the connected database.
    pub async fn read(client: &Client) -> Result<Catalog> {
        let rows = client
            .query(
                "SELECT n.nspname::text, c.relname::text, c.reltuples::float8, \
                        coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}'), \
                        coalesce(array_agg(t.typname::text ORDER BY a.attnum), '{}'), \
                        coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE \
                          a.attidentity <> '' OR pg_get_expr(d.adbin, d.adrelid) LIKE 'nextval(%'), '{}') \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_attrdef d ON d.adrelid = c.oid AND d.adnum = a.attnum \
                 WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') \
                   AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
                   AND n.nspname NOT LIKE 'pg_toast%' AND n.nspname NOT LIKE 'pg_temp%' \
                 GROUP BY 1, 2, 3",
                &[],
            )
            .await
            .map_err(|e| Error::from_pg("reading the catalog", e))?;
        let mut tables: Vec<Table> = rows
            .iter()
            .map(|r| {
                let names: Vec<String> = r.get(3);
                let types: Vec<String> = r.get(4);
                Table {
                    schema: r.get(0),
                    name: r.get(1),
                    rows: r.get(2),
                    columns: names.into_iter().zip(types).collect(),
                    unique: Vec::new(),
                    serial: r.get(5),
                    ..Table::default()
                }
            })
            .collect();
        let keys = client
            .query(
                "SELECT n.nspname::text, c.relname::text, \
                        array_agg(a.attname::text ORDER BY k.ord) \
                 FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
                 WHERE i.indisunique AND i.indpred IS NULL \
                 GROUP BY i.indexrelid, 1, 2",
                &[],
            )
            .await
            .map_err(|e| Error::from_pg("reading unique indexes", e))?;
        for r in &keys {
            let (schema, name): (String, String) = (r.get(0), r.get(1));
            if let Some(t) = tables
                .iter_mut()
                .find(|t| t.schema == schema && t.name == name)
            {
                t.unique.push(r.get(2));
            }
        }
        read_domains(client, &mut tables).await?;
        let policies: Vec<(String, String, String)> = client
            .query(
                "SELECT schemaname::text, tablename::text, qual FROM pg_policies \
                 WHERE qual IS NOT NULL",
                &[],
            )
            .await
            .map_err(|e| Error::from_pg("reading row-level security policies", e))?
            .iter()
            .map(|r| (r.get(0), r.get(1), r.get(2)))
            .collect();
        let quals: Vec<&String> = policies.iter().map(|(_, _, q)| q).collect();
        let policy_columns = policies
            .iter()
            .filter_map(|(s, t, q)| tenant_of_policy(q).map(|(_, c)| (s.clone(), t.clone(), c)))
            .collect();
        // The column most policies compare with the setting (the tenants
        // table itself compares its `id`).
        let mut found: Vec<((String, String), usize)> = Vec::new();
        for pair in quals.iter().filter_map(|q| tenant_of_policy(q)) {
            match found.iter_mut().find(|(p, _)| *p == pair) {
                Some((_, n)) => *n += 1,
                None => found.push((pair, 1)),
            }
        }
        found.sort_by_key(|f| std::cmp::Reverse(f.1));
        let (setting, tenant_column) = found
            .into_iter()
            .next()
            .map_or((None, None), |((s, c), _)| (Some(s), Some(c)));
        Ok(Catalog {
            tables,
            tenant_column,
            setting,
            policy_columns,
        })
    }

    /// The table of `column`: the one named, else the first of the
    /// statement's tables that has the column.
    pub fn find(
        &self,
        table: Option<&TableName>,
        in_statement: &[TableName],
        column: &str,
    ) -> Option<&Table> {
        let matches = |t: &Table, name: &TableName| {
            t.name == name.name && name.schema.as_ref().is_none_or(|s| *s == t.schema)
        };
        let candidates: Vec<&TableName> = match table {
            Some(t) => vec![t],
            None => in_statement.iter().collect(),
        };
        candidates.into_iter().find_map(|name| {
            // Prefer the application's schemas over `public` on a name clash.
            let mut found: Vec<&Table> = self
                .tables
                .iter()
                .filter(|t| matches(t, name) && t.type_of(column).is_some())
                .collect();
            found.sort_by_key(|t| t.schema == "public");
            found.first().copied()
        })
    }

    /// The table `name` (the application's schemas before `public`).
    pub fn table(&self, name: &TableName) -> Option<&Table> {
        let mut found: Vec<&Table> = self
            .tables
            .iter()
            .filter(|t| t.name == name.name && name.schema.as_ref().is_none_or(|s| *s == t.schema))
            .collect();
        found.sort_by_key(|t| t.schema == "public");
        found.first().copied()
    }

    /// Whether `column` of `table` is what its policy compares with the
    /// tenant setting (`tenant_id`, or the tenants table's own `id`).
    pub fn is_tenant_column(&self, table: &Table, column: &str) -> bool {
        self.policy_columns
            .iter()
            .any(|(s, t, c)| *s == table.schema && *t == table.name && c == column)
    }

    /// Whether values of `table` can be sampled per tenant: the sampler
    /// reads a tenant's rows through the tenant column.
    pub fn samples_per_tenant(&self, table: &Table) -> bool {
        match &self.tenant_column {
            Some(c) => table.type_of(c).is_some(),
            None => true,
        }
    }

    /// The tenant context: the setting, and the tenants with their sizes
    /// from the largest table that carries the tenant column.
    pub async fn tenant_context(&self, _client: &Client, _role: &str) -> Result<TenantContext> {
        let (Some(setting), Some(column)) = (&self.setting, &self.tenant_column) else {
            return Ok(TenantContext::default());
        };
        let largest = self
            .tables
            .iter()
            .filter(|t| t.type_of(column).is_some())
            .max_by(|a, b| a.rows.total_cmp(&b.rows));
        Ok(TenantContext {
            setting: Some(setting.clone()),
            column: Some(column.clone()),
            tenants: largest.map(|t| {
                format!(
                    "SELECT {c}::text, count(*) FROM {} GROUP BY {c}",
                    t.qualified(),
                    c = ident(column)
                )
            }),
        })
    }
}

/// Each table's single-column CHECK constraints and the planner's most
/// common values of its columns (what a column's generator keeps to when
/// the column cannot be sampled per tenant).
async fn read_domains(client: &Client, tables: &mut [Table]) -> Result<()> {
    // One row per (constraint, column): a single-column constraint says
    // what the column allows, one over several columns ties them.
    let checks = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, pg_get_constraintdef(k.oid), \
                    cardinality(k.conkey) > 1 \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = ANY (k.conkey) \
             WHERE k.contype = 'c'",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading CHECK constraints", e))?;
    for r in &checks {
        let (schema, name, column, def, several): (String, String, String, String, bool) =
            (r.get(0), r.get(1), r.get(2), r.get(3), r.get(4));
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.schema == schema && t.name == name)
        else {
            continue;
        };
        if several {
            t.tied.push(column);
        } else if let Some(allowed) = domain::of_check(&def, &column) {
            t.allowed.push((column, allowed));
        }
    }
    let keys = client
        .query(
            "SELECT n.nspname::text, c.relname::text, a.attname::text, r.relname::text, ra.attname::text \
             FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             CROSS JOIN LATERAL unnest(k.conkey, k.confkey) AS p(attnum, refnum) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = p.attnum \
             JOIN pg_class r ON r.oid = k.confrelid \
             JOIN pg_attribute ra ON ra.attrelid = r.oid AND ra.attnum = p.refnum \
             WHERE k.contype = 'f'",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading foreign keys", e))?;
    for r in &keys {
        let (schema, name): (String, String) = (r.get(0), r.get(1));
        if let Some(t) = tables
            .iter_mut()
            .find(|t| t.schema == schema && t.name == name)
        {
            t.references.push((r.get(2), r.get(3), r.get(4)));
        }
    }
    // pg_stats shows only the tables the reader may SELECT from: a column
    // it hides simply has no common values.
    let stats = client
        .query(
            "SELECT schemaname::text, tablename::text, attname::text, most_common_vals::text, \
                    histogram_bounds::text \
             FROM pg_stats WHERE (most_common_vals IS NOT NULL OR histogram_bounds IS NOT NULL) \
               AND schemaname NOT IN ('pg_catalog', 'information_schema')",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading pg_stats", e))?;
    for r in &stats {
        let (schema, name, column): (String, String, String) = (r.get(0), r.get(1), r.get(2));
        let (common, bounds): (Option<String>, Option<String>) = (r.get(3), r.get(4));
        let Some(t) = tables
            .iter_mut()
            .find(|t| t.schema == schema && t.name == name)
        else {
            continue;
        };
        if let Some(values) = common.as_deref().and_then(domain::array_elements) {
            t.common.push((column.clone(), values));
        }
        if let Some(values) = bounds.as_deref().and_then(domain::array_elements) {
            t.bounds.push((column, values));
        }
    }
    Ok(())
}

/// (setting, column) of a policy's `USING` expression, as
/// `tenant_id = current_setting('app.tenant')::uuid`.
fn tenant_of_policy(qual: &str) -> Option<(String, String)> {
    let parsed = pg_query::parse(&format!("SELECT {qual}")).ok()?;
    let nodes = parsed.protobuf.nodes();
    let setting = nodes.iter().find_map(|(n, ..)| match n {
        NodeRef::FuncCall(f)
            if f.funcname.iter().any(|p| {
                matches!(p.node.as_ref(), Some(pg_query::NodeEnum::String(s)) if s.sval == "current_setting")
            }) =>
        {
            f.args.iter().find_map(|a| match a.node.as_ref() {
                Some(pg_query::NodeEnum::AConst(c)) => match &c.val {
                    Some(Val::Sval(s)) => Some(s.sval.clone()),
                    _ => None,
                },
                Some(pg_query::NodeEnum::TypeCast(tc)) => match tc.arg.as_deref()?.node.as_ref() {
                    Some(pg_query::NodeEnum::AConst(c)) => match &c.val {
                        Some(Val::Sval(s)) => Some(s.sval.clone()),
                        _ => None,
                    },
                    _ => None,
                },
                _ => None,
            })
        }
        _ => None,
    })?;
    let column = nodes.iter().find_map(|(n, ..)| match n {
        NodeRef::ColumnRef(c) => c.fields.iter().rev().find_map(|f| match f.node.as_ref() {
            Some(pg_query::NodeEnum::String(s)) => Some(s.sval.clone()),
            _ => None,
        }),
        _ => None,
    })?;
    Some((setting, column))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenant_from_a_policy_as_pg_policies_prints_it() {
        assert_eq!(
            tenant_of_policy(
                "(tenant_id = (current_setting('app.current_tenant_id'::text))::uuid)"
            ),
            Some(("app.current_tenant_id".into(), "tenant_id".into()))
        );
        assert_eq!(
            tenant_of_policy("(\"tenantId\" = current_setting('app.tenant', true))"),
            Some(("app.tenant".into(), "tenantId".into()))
        );
        assert_eq!(tenant_of_policy("(owner = CURRENT_USER)"), None);
        assert_eq!(ident("Customer"), "\"Customer\"");
        assert_eq!(ident("order_items"), "order_items");
    }
}
