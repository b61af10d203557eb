//! What the conversion needs to know of the live table, read from the
//! catalog: its columns, primary key, identity column, indexes, foreign
//! keys (both ways), row-level security and policies, grants, and the
//! range of the partition column.

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// The table to convert, as the catalog describes it.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableInfo {
    /// Schema.
    pub schema: String,
    /// Table name.
    pub name: String,
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Primary key columns, in order.
    pub primary_key: Vec<String>,
    /// The identity column, if any.
    pub identity: Option<String>,
    /// Its sequence's name (in the table's schema).
    pub identity_sequence: Option<String>,
    /// The tenant column, when the table has `tenant_id`.
    pub tenant: Option<String>,
    /// Indexes other than the primary key's: (name, definition).
    pub indexes: Vec<(String, String)>,
    /// Foreign keys of this table: (name, definition).
    pub foreign_keys: Vec<(String, String)>,
    /// Foreign keys of other tables pointing here: "table.constraint".
    pub referenced_by: Vec<String>,
    /// Row-level security enabled, forced.
    pub rls: (bool, bool),
    /// Policies, each as its `CREATE POLICY` statement.
    pub policies: Vec<String>,
    /// Grants, each as its `GRANT` statement.
    pub grants: Vec<String>,
}

impl TableInfo {
    /// Schema-qualified, quoted name of `name` in the table's schema.
    pub fn qualified(&self, name: &str) -> String {
        format!(
            "{}.{}",
            crate::pg::quote_ident(&self.schema),
            crate::pg::quote_ident(name)
        )
    }
}

fn q(context: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::from_pg(context, e)
}

/// Read `schema.table` from the catalog.
pub async fn load(client: &Client, schema: &str, table: &str) -> Result<TableInfo> {
    let oid: Option<u32> = client
        .query_opt(
            "SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind = 'r'",
            &[&schema, &table],
        )
        .await
        .map_err(q("looking up the table"))?
        .map(|r| r.get(0));
    let Some(oid) = oid else {
        return Err(Error::Usage {
            message: format!("{schema}.{table} is not a plain table of this database"),
            fix: "name a table (--retention TABLE, in --schema) that is not already partitioned"
                .into(),
        });
    };
    let mut info = TableInfo {
        schema: schema.into(),
        name: table.into(),
        ..TableInfo::default()
    };
    columns(client, oid, &mut info).await?;
    constraints(client, oid, &mut info).await?;
    security(client, oid, &mut info).await?;
    Ok(info)
}

async fn columns(client: &Client, oid: u32, info: &mut TableInfo) -> Result<()> {
    let rows = client
        .query(
            "SELECT attname::text, attidentity <> '' FROM pg_attribute \
             WHERE attrelid = $1 AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's columns"))?;
    for r in rows {
        let name: String = r.get(0);
        if r.get::<_, bool>(1) {
            info.identity = Some(name.clone());
        }
        if name == crate::audit::DEFAULT_COLUMN {
            info.tenant = Some(name.clone());
        }
        info.columns.push(name);
    }
    let pk = client
        .query(
            "SELECT a.attname::text FROM pg_index i \
             CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY k(att, ord) \
             JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.att \
             WHERE i.indrelid = $1 AND i.indisprimary ORDER BY k.ord",
            &[&oid],
        )
        .await
        .map_err(q("reading the primary key"))?;
    info.primary_key = pk.iter().map(|r| r.get(0)).collect();
    info.identity_sequence = client
        .query_opt(
            "SELECT s.relname::text FROM pg_depend d JOIN pg_class s ON s.oid = d.objid \
             WHERE d.refobjid = $1 AND d.classid = 'pg_class'::regclass AND d.deptype = 'i' \
             AND s.relkind = 'S' LIMIT 1",
            &[&oid],
        )
        .await
        .map_err(q("reading the identity's sequence"))?
        .map(|r| r.get(0));
    Ok(())
}

async fn constraints(client: &Client, oid: u32, info: &mut TableInfo) -> Result<()> {
    let idx = client
        .query(
            "SELECT c.relname::text, pg_get_indexdef(i.indexrelid) FROM pg_index i \
             JOIN pg_class c ON c.oid = i.indexrelid \
             WHERE i.indrelid = $1 AND NOT i.indisprimary ORDER BY c.relname",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's indexes"))?;
    info.indexes = idx.iter().map(|r| (r.get(0), r.get(1))).collect();
    let fks = client
        .query(
            "SELECT conname::text, pg_get_constraintdef(oid) FROM pg_constraint \
             WHERE conrelid = $1 AND contype = 'f' ORDER BY conname",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's foreign keys"))?;
    info.foreign_keys = fks.iter().map(|r| (r.get(0), r.get(1))).collect();
    let refs = client
        .query(
            "SELECT conrelid::regclass::text || '.' || conname FROM pg_constraint \
             WHERE confrelid = $1 AND contype = 'f' ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(q("reading the foreign keys pointing at the table"))?;
    info.referenced_by = refs.iter().map(|r| r.get(0)).collect();
    Ok(())
}

async fn security(client: &Client, oid: u32, info: &mut TableInfo) -> Result<()> {
    let rls = client
        .query_one(
            "SELECT relrowsecurity, relforcerowsecurity FROM pg_class WHERE oid = $1",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's row-level security"))?;
    info.rls = (rls.get(0), rls.get(1));
    // The policy as CREATE POLICY ... ON {table}: the placeholder is the
    // table the statement is written for (the new one, or the old).
    let policies = client
        .query(
            "SELECT format('CREATE POLICY %I ON {table} AS %s FOR %s TO %s%s%s', p.polname, \
               CASE WHEN p.polpermissive THEN 'PERMISSIVE' ELSE 'RESTRICTIVE' END, \
               CASE p.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' \
                 WHEN 'd' THEN 'DELETE' ELSE 'ALL' END, \
               CASE WHEN p.polroles = '{0}' THEN 'PUBLIC' ELSE \
                 (SELECT string_agg(quote_ident(rolname), ', ') FROM pg_roles WHERE oid = ANY (p.polroles)) END, \
               ' USING (' || pg_get_expr(p.polqual, p.polrelid) || ')', \
               ' WITH CHECK (' || pg_get_expr(p.polwithcheck, p.polrelid) || ')') \
             FROM pg_policy p WHERE p.polrelid = $1 ORDER BY p.polname",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's policies"))?;
    info.policies = policies.iter().map(|r| r.get(0)).collect();
    let grants = client
        .query(
            "SELECT format('GRANT %s ON {table} TO %s', string_agg(a.privilege_type, ', ' ORDER BY a.privilege_type), \
               CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(r.rolname) END) \
             FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a \
             LEFT JOIN pg_roles r ON r.oid = a.grantee \
             WHERE c.oid = $1 AND a.grantee <> c.relowner GROUP BY a.grantee, r.rolname ORDER BY 1",
            &[&oid],
        )
        .await
        .map_err(q("reading the table's grants"))?;
    info.grants = grants.iter().map(|r| r.get(0)).collect();
    Ok(())
}

/// The partition column's range: (first month, last month) as `YYYY-MM-01`,
/// the later of the data's last row and today, so rows written now fit.
pub async fn month_range(
    client: &Client,
    info: &TableInfo,
    column: &str,
) -> Result<(String, String)> {
    let sql = format!(
        "SELECT to_char(date_trunc('month', coalesce(min({c}), now())), 'YYYY-MM-DD'), \
                to_char(date_trunc('month', greatest(coalesce(max({c}), now()), now())), 'YYYY-MM-DD') \
         FROM {t}",
        c = crate::pg::quote_ident(column),
        t = info.qualified(&info.name)
    );
    let r = client
        .query_one(sql.as_str(), &[])
        .await
        .map_err(q("reading the partition column's range"))?;
    Ok((r.get(0), r.get(1)))
}
