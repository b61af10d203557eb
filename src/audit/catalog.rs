//! The catalog facts the rules read, loaded once from `pg_catalog` for one
//! schema: relations with their row-level security and owners, policies,
//! keys and indexes, views, SECURITY DEFINER functions, sequences and the
//! application role. The rules are pure functions of these facts.

use tokio_postgres::Client;

use crate::error::{Error, Result};

/// A table, view or materialized view of the schema.
#[derive(Debug, Clone, Default)]
pub struct Relation {
    /// Name in the schema.
    pub name: String,
    /// `r` table, `p` partitioned table, `v` view, `m` materialized view.
    pub kind: char,
    /// Owning role.
    pub owner: String,
    /// The owner is a superuser or has BYPASSRLS.
    pub owner_bypasses: bool,
    /// `relrowsecurity`.
    pub rls_enabled: bool,
    /// `relforcerowsecurity`.
    pub rls_forced: bool,
    /// Column names, in order.
    pub columns: Vec<String>,
    /// Column types (`format_type`), in the same order.
    pub types: Vec<String>,
    /// A view's `security_invoker` option.
    pub security_invoker: bool,
    /// Tables of the schema a view reads (from its rewrite rule).
    pub reads: Vec<String>,
}

/// A row-level security policy.
#[derive(Debug, Clone, Default)]
pub struct Policy {
    /// Its table.
    pub table: String,
    /// Its name.
    pub name: String,
    /// `*` all, `r` SELECT, `a` INSERT, `w` UPDATE, `d` DELETE.
    pub cmd: char,
    /// Permissive (OR-ed) or restrictive (AND-ed).
    pub permissive: bool,
    /// `USING`, as `pg_get_expr` prints it.
    pub using: Option<String>,
    /// `WITH CHECK`.
    pub check: Option<String>,
}

/// A key (`p`, `u`, `f`) or a unique index backing none (`i`), or a plain
/// index (`x`) — the latter only for the index rules.
#[derive(Debug, Clone, Default)]
pub struct Key {
    /// Its table.
    pub table: String,
    /// Constraint or index name.
    pub name: String,
    /// `p`, `u`, `f`, `i` (unique index), `x` (other index).
    pub kind: char,
    /// Columns in order (`<expr>` for an expression).
    pub columns: Vec<String>,
    /// A foreign key's referenced table.
    pub foreign_table: String,
    /// A foreign key's referenced columns.
    pub foreign_columns: Vec<String>,
}

/// A SECURITY DEFINER function of the schema.
#[derive(Debug, Clone, Default)]
pub struct Function {
    /// `name(argument types)`.
    pub signature: String,
    /// Owning role.
    pub owner: String,
    /// Its source text (`prosrc`), searched for the tables it reads.
    pub body: String,
    /// Tables it depends on (SQL-standard bodies record them).
    pub depends_on: Vec<String>,
}

/// A sequence of the schema and the column it feeds, if any.
#[derive(Debug, Clone, Default)]
pub struct Sequence {
    /// Its name.
    pub name: String,
    /// `table.column` it is owned by (serial or identity).
    pub owned_by: Option<(String, String)>,
}

/// Everything the rules read.
#[derive(Debug, Clone, Default)]
pub struct Catalog {
    /// Schema audited.
    pub schema: String,
    /// Tables, views and materialized views.
    pub relations: Vec<Relation>,
    /// Policies.
    pub policies: Vec<Policy>,
    /// Keys and indexes.
    pub keys: Vec<Key>,
    /// SECURITY DEFINER functions.
    pub definers: Vec<Function>,
    /// Names of the schema's own functions (any security).
    pub functions: Vec<String>,
    /// Sequences.
    pub sequences: Vec<Sequence>,
    /// The application role's name and whether it bypasses RLS (None: no such role).
    pub app_role: Option<(String, bool)>,
}

fn pg(context: &str) -> impl FnOnce(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::from_pg(context, e)
}

impl Catalog {
    /// Load the facts of `schema`, with `app_role` as the application role.
    pub async fn load(client: &Client, schema: &str, app_role: &str) -> Result<Catalog> {
        let mut c = Catalog {
            schema: schema.to_string(),
            ..Catalog::default()
        };
        c.relations = relations(client, schema).await?;
        c.policies = policies(client, schema).await?;
        c.keys = keys(client, schema).await?;
        (c.definers, c.functions) = functions(client, schema).await?;
        c.sequences = sequences(client, schema).await?;
        c.app_role = client
            .query_opt(
                "SELECT rolname::text, rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1",
                &[&app_role],
            )
            .await
            .map_err(pg("reading the application role"))?
            .map(|r| (r.get(0), r.get(1)));
        Ok(c)
    }

    /// The relation named `name`.
    pub fn relation(&self, name: &str) -> Option<&Relation> {
        self.relations.iter().find(|r| r.name == name)
    }
}

async fn relations(client: &Client, schema: &str) -> Result<Vec<Relation>> {
    let rows = client
        .query(
            "SELECT c.relname::text, c.relkind::text, r.rolname::text, r.rolsuper OR r.rolbypassrls, \
                    c.relrowsecurity, c.relforcerowsecurity, \
                    ARRAY(SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = c.oid \
                          AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum), \
                    ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                          WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped \
                          ORDER BY a.attnum), \
                    coalesce(c.reloptions::text[] && ARRAY['security_invoker=true', \
                          'security_invoker=on', 'security_invoker=1'], false), \
                    ARRAY(SELECT DISTINCT t.relname::text FROM pg_rewrite w \
                          JOIN pg_depend d ON d.classid = 'pg_rewrite'::regclass AND d.objid = w.oid \
                          JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass \
                          WHERE w.ev_class = c.oid AND t.oid <> c.oid AND t.relnamespace = c.relnamespace) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_roles r ON r.oid = c.relowner \
             WHERE n.nspname = $1 AND c.relkind IN ('r', 'p', 'v', 'm') AND NOT c.relispartition \
             ORDER BY 1",
            &[&schema],
        )
        .await
        .map_err(pg("listing relations"))?;
    Ok(rows
        .iter()
        .map(|r| Relation {
            name: r.get(0),
            kind: r.get::<_, String>(1).chars().next().unwrap_or('r'),
            owner: r.get(2),
            owner_bypasses: r.get(3),
            rls_enabled: r.get(4),
            rls_forced: r.get(5),
            columns: r.get(6),
            types: r.get(7),
            security_invoker: r.get(8),
            reads: r.get(9),
        })
        .collect())
}

async fn policies(client: &Client, schema: &str) -> Result<Vec<Policy>> {
    let rows = client
        .query(
            "SELECT c.relname::text, p.polname::text, p.polcmd::text, p.polpermissive, \
                    pg_get_expr(p.polqual, p.polrelid), pg_get_expr(p.polwithcheck, p.polrelid) \
             FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(pg("reading policies"))?;
    Ok(rows
        .iter()
        .map(|r| Policy {
            table: r.get(0),
            name: r.get(1),
            cmd: r.get::<_, String>(2).chars().next().unwrap_or('*'),
            permissive: r.get(3),
            using: r.get(4),
            check: r.get(5),
        })
        .collect())
}

async fn keys(client: &Client, schema: &str) -> Result<Vec<Key>> {
    // Constraints, then indexes (unique ones that back no constraint are
    // keys of their own; the others only count for the index rules).
    let rows = client
        .query(
            "SELECT t.relname::text, con.conname::text, con.contype::text, \
                    ARRAY(SELECT a.attname::text FROM unnest(con.conkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attnum = k.n ORDER BY k.o), \
                    coalesce(fc.relname::text, ''), \
                    ARRAY(SELECT a.attname::text FROM unnest(con.confkey) WITH ORDINALITY k(n, o) \
                          JOIN pg_attribute a ON a.attrelid = con.confrelid AND a.attnum = k.n ORDER BY k.o) \
             FROM pg_constraint con JOIN pg_class t ON t.oid = con.conrelid \
             JOIN pg_namespace n ON n.oid = t.relnamespace \
             LEFT JOIN pg_class fc ON fc.oid = con.confrelid \
             WHERE n.nspname = $1 AND con.contype IN ('p', 'u', 'f') AND NOT t.relispartition \
             UNION ALL \
             SELECT t.relname::text, ic.relname::text, \
                    CASE WHEN i.indisunique AND NOT EXISTS (SELECT 1 FROM pg_constraint con \
                         WHERE con.conindid = i.indexrelid) THEN 'i' ELSE 'x' END, \
                    ARRAY(SELECT coalesce(a.attname::text, '<expr>') \
                          FROM unnest(i.indkey::int2[]) WITH ORDINALITY k(n, o) \
                          LEFT JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.n \
                          ORDER BY k.o), '', ARRAY[]::text[] \
             FROM pg_index i JOIN pg_class t ON t.oid = i.indrelid \
             JOIN pg_class ic ON ic.oid = i.indexrelid JOIN pg_namespace n ON n.oid = t.relnamespace \
             WHERE n.nspname = $1 AND NOT t.relispartition ORDER BY 1, 2",
            &[&schema],
        )
        .await
        .map_err(pg("reading keys and indexes"))?;
    Ok(rows
        .iter()
        .map(|r| Key {
            table: r.get(0),
            name: r.get(1),
            kind: r.get::<_, String>(2).chars().next().unwrap_or('x'),
            columns: r.get(3),
            foreign_table: r.get(4),
            foreign_columns: r.get(5),
        })
        .collect())
}

async fn functions(client: &Client, schema: &str) -> Result<(Vec<Function>, Vec<String>)> {
    let rows = client
        .query(
            "SELECT p.proname::text, p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ')', \
                    r.rolname::text, p.prosecdef, \
                    coalesce(p.prosrc, ''), \
                    ARRAY(SELECT DISTINCT t.relname::text FROM pg_depend d \
                          JOIN pg_class t ON t.oid = d.refobjid AND d.refclassid = 'pg_class'::regclass \
                          WHERE d.classid = 'pg_proc'::regclass AND d.objid = p.oid) \
             FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace \
             JOIN pg_roles r ON r.oid = p.proowner WHERE n.nspname = $1 ORDER BY 2",
            &[&schema],
        )
        .await
        .map_err(pg("reading functions"))?;
    let names = rows.iter().map(|r| r.get(0)).collect();
    let definers = rows
        .iter()
        .filter(|r| r.get::<_, bool>(3))
        .map(|r| Function {
            signature: r.get(1),
            owner: r.get(2),
            body: r.get(4),
            depends_on: r.get(5),
        })
        .collect();
    Ok((definers, names))
}

async fn sequences(client: &Client, schema: &str) -> Result<Vec<Sequence>> {
    let rows = client
        .query(
            "SELECT s.relname::text, t.relname::text, a.attname::text \
             FROM pg_class s JOIN pg_namespace n ON n.oid = s.relnamespace \
             LEFT JOIN pg_depend d ON d.classid = 'pg_class'::regclass AND d.objid = s.oid \
                  AND d.refclassid = 'pg_class'::regclass AND d.deptype IN ('a', 'i') \
             LEFT JOIN pg_class t ON t.oid = d.refobjid \
             LEFT JOIN pg_attribute a ON a.attrelid = d.refobjid AND a.attnum = d.refobjsubid \
             WHERE n.nspname = $1 AND s.relkind = 'S' ORDER BY 1",
            &[&schema],
        )
        .await
        .map_err(pg("reading sequences"))?;
    Ok(rows
        .iter()
        .map(|r| Sequence {
            name: r.get(0),
            owned_by: r
                .get::<_, Option<String>>(1)
                .zip(r.get::<_, Option<String>>(2)),
        })
        .collect())
}
