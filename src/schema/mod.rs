//! The CRM schema: DDL and row-level security as `.sql` files embedded in the
//! binary, the one list of its tables ([`tables`]), and `schema create | drop`
//! (`show`, `clone`, `gc` and the tenant-rule [`audit`] have their own
//! modules).
//!
//! The DDL comes in steps so a loader can fill bare tables first and build
//! keys, indexes and RLS afterwards: [`Step::Tables`] … [`Step::Grants`].
//! The metadata table `crm.crmbench_meta` marks the schema as crmbench's own;
//! nothing destructive runs without it.

pub mod audit;
pub mod clone;
pub mod extensions;
pub mod gc;
pub mod show;
pub mod tables;

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::pg::{self, SCHEMA, Target, roles};

pub use extensions::ExtensionStatus;
pub use tables::TENANT_TABLES;

/// Version of the schema's shape; bumped on any DDL change.
pub const SCHEMA_VERSION: i32 = 1;

/// One step of the DDL, in the order it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The marker table.
    Meta,
    /// Tables with columns, NOT NULL and CHECK constraints.
    Tables,
    /// Shared lookup rows (currencies).
    Lookups,
    /// Primary keys, unique constraints, foreign keys.
    Keys,
    /// The baseline secondary indexes.
    Indexes,
    /// Row-level security: enable, force, policies.
    Rls,
    /// The application role's grants.
    Grants,
}

impl Step {
    /// All steps in order.
    pub const ALL: [Step; 7] = [
        Step::Meta,
        Step::Tables,
        Step::Lookups,
        Step::Keys,
        Step::Indexes,
        Step::Rls,
        Step::Grants,
    ];

    /// The step's SQL.
    pub fn sql(self) -> &'static str {
        match self {
            Step::Meta => include_str!("sql/meta.sql"),
            Step::Tables => include_str!("sql/tables.sql"),
            Step::Lookups => include_str!("sql/lookups.sql"),
            Step::Keys => include_str!("sql/keys.sql"),
            Step::Indexes => include_str!("sql/indexes.sql"),
            Step::Rls => include_str!("sql/rls.sql"),
            Step::Grants => include_str!("sql/grants.sql"),
        }
    }

    /// File name, for error messages.
    pub fn file(self) -> &'static str {
        match self {
            Step::Meta => "meta.sql",
            Step::Tables => "tables.sql",
            Step::Lookups => "lookups.sql",
            Step::Keys => "keys.sql",
            Step::Indexes => "indexes.sql",
            Step::Rls => "rls.sql",
            Step::Grants => "grants.sql",
        }
    }
}

/// Who owns the `crm` schema in this database.
#[derive(Debug, Clone, PartialEq)]
pub enum Ownership {
    /// No `crm` schema.
    Absent,
    /// crmbench's marker is there.
    Ours {
        /// Whether the last create or load finished.
        complete: bool,
        /// Seed of the loaded dataset, if any.
        seed: Option<i64>,
        /// Scale of the loaded dataset, if any.
        scale: Option<f64>,
    },
    /// The schema exists but is not marked as crmbench's.
    Foreign(String),
}

/// Read the marker.
pub async fn ownership(client: &Client) -> Result<Ownership> {
    let row = client
        .query_one(
            "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1), \
                    to_regclass(format('%I.crmbench_meta', $1::text)) IS NOT NULL",
            &[&SCHEMA],
        )
        .await
        .map_err(|e| Error::from_pg("reading crmbench's marker", e))?;
    let (schema_exists, meta_exists): (bool, bool) = (row.get(0), row.get(1));
    if !schema_exists {
        return Ok(Ownership::Absent);
    }
    if !meta_exists {
        return Ok(Ownership::Foreign(format!(
            "schema {SCHEMA} exists but has no {SCHEMA}.crmbench_meta marker table"
        )));
    }
    // Read it as JSON so a foreign table of the same name, of any shape, is
    // reported as foreign instead of failing.
    let rows = client
        .query(
            &format!("SELECT to_jsonb(m) FROM {SCHEMA}.crmbench_meta m"),
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("reading crm.crmbench_meta", e))?;
    let [row] = rows.as_slice() else {
        return Ok(Ownership::Foreign(format!(
            "{SCHEMA}.crmbench_meta holds {} rows instead of one",
            rows.len()
        )));
    };
    let meta: serde_json::Value = row.get(0);
    match meta.get("tool").and_then(|t| t.as_str()) {
        Some("crmbench") => Ok(Ownership::Ours {
            complete: meta
                .get("complete")
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
            seed: meta.get("seed").and_then(|v| v.as_i64()),
            scale: meta.get("scale").and_then(|v| v.as_f64()),
        }),
        other => Ok(Ownership::Foreign(format!(
            "{SCHEMA}.crmbench_meta does not name crmbench as its tool (found {})",
            other.unwrap_or("nothing")
        ))),
    }
}

/// Options of `schema create`.
#[derive(Debug, Clone, Default)]
pub struct CreateOptions {
    /// Drop and recreate a schema crmbench owns.
    pub replace: bool,
}

/// What `schema create` did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct CreateReport {
    /// Tables created.
    pub tables: usize,
    /// Whether an existing crmbench schema was replaced.
    pub replaced: bool,
    /// HypoPG and pg_stat_statements.
    pub extensions: Vec<ExtensionStatus>,
}

impl CreateReport {
    /// What `schema create` prints: the outcome in `database` on `target`
    /// (its redacted description), then each extension's state.
    pub fn render(&self, database: &str, target: &str) -> String {
        let mut out = format!(
            "crmbench: CRM schema {} in database {database} on {target}: {} tables, row-level security forced\n",
            if self.replaced {
                "recreated"
            } else {
                "created"
            },
            self.tables
        );
        for ext in &self.extensions {
            out.push_str(&format!("  extension {:<20} {}\n", ext.name, ext.note));
        }
        out
    }
}

/// `schema create`: roles, extensions, then every DDL step in one transaction.
pub async fn create(target: &Target, opts: &CreateOptions) -> Result<CreateReport> {
    pg::bootstrap_private(target).await?;
    let mut client = pg::connect(&target.admin()).await?;
    check_create_privilege(&client, target.database()).await?;
    roles::ensure(target, &client).await?;
    let mut replaced = false;
    match ownership(&client).await? {
        Ownership::Absent => {}
        Ownership::Ours { .. } if opts.replace => {
            drop_schema(&client).await?;
            replaced = true;
        }
        Ownership::Ours { .. } => {
            return Err(Error::State {
                message: format!(
                    "the CRM schema already exists in database {}",
                    target.database()
                ),
                fix: "pass --replace to recreate it (its data is lost), or `crmbench schema drop`"
                    .into(),
            });
        }
        Ownership::Foreign(reason) => {
            return Err(Error::NotOurs {
                action: format!("create schema {SCHEMA} in database {}", target.database()),
                reason,
            });
        }
    }
    let tx = client
        .transaction()
        .await
        .map_err(|e| Error::from_pg("BEGIN", e))?;
    run_steps(&tx, &Step::ALL).await?;
    tx.execute(
        &format!(
            "INSERT INTO {SCHEMA}.crmbench_meta (tool, schema_version, crmbench_version, complete) \
             VALUES ('crmbench', $1, $2, true)"
        ),
        &[&SCHEMA_VERSION, &env!("CARGO_PKG_VERSION")],
    )
    .await
    .map_err(|e| Error::from_pg("writing crm.crmbench_meta", e))?;
    tx.commit()
        .await
        .map_err(|e| Error::from_pg("COMMIT of schema create", e))?;
    let extensions = extensions::ensure(target, &client).await?;
    Ok(CreateReport {
        // The CRM tables and the marker.
        tables: tables::TABLES.len() + 1,
        replaced,
        extensions,
    })
}

/// Create the schema owned by the owner role and run `steps` as that role,
/// inside the caller's transaction.
pub async fn run_steps(tx: &tokio_postgres::Transaction<'_>, steps: &[Step]) -> Result<()> {
    let owner = pg::quote_ident(roles::OWNER);
    if steps.contains(&Step::Meta) {
        tx.batch_execute(&format!("CREATE SCHEMA {SCHEMA} AUTHORIZATION {owner}"))
            .await
            .map_err(|e| Error::from_pg(format!("CREATE SCHEMA {SCHEMA}"), e))?;
    }
    tx.batch_execute(&format!("SET LOCAL ROLE {owner}"))
        .await
        .map_err(|e| Error::from_pg(format!("SET LOCAL ROLE {}", roles::OWNER), e))?;
    for step in steps {
        tx.batch_execute(step.sql())
            .await
            .map_err(|e| Error::from_pg(format!("running {} (embedded schema)", step.file()), e))?;
    }
    tx.batch_execute("RESET ROLE")
        .await
        .map_err(|e| Error::from_pg("RESET ROLE", e))?;
    Ok(())
}

/// What `schema drop` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DropOutcome {
    /// The schema was dropped.
    Dropped,
    /// There was nothing to drop.
    Absent,
}

impl DropOutcome {
    /// What `schema drop` prints for `database`.
    pub fn render(self, database: &str) -> String {
        match self {
            DropOutcome::Dropped => {
                format!("crmbench: schema {SCHEMA} dropped from database {database}\n")
            }
            DropOutcome::Absent => {
                format!("crmbench: database {database} has no schema {SCHEMA}; nothing dropped\n")
            }
        }
    }
}

/// `schema drop`: only a schema carrying crmbench's marker.
pub async fn drop(target: &Target) -> Result<DropOutcome> {
    let client = pg::connect(&target.admin()).await?;
    match ownership(&client).await? {
        Ownership::Absent => Ok(DropOutcome::Absent),
        Ownership::Ours { .. } => {
            drop_schema(&client).await?;
            Ok(DropOutcome::Dropped)
        }
        Ownership::Foreign(reason) => Err(Error::NotOurs {
            action: format!("drop schema {SCHEMA} in database {}", target.database()),
            reason,
        }),
    }
}

/// What `schema drop --database NAME` did with the database itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DatabaseDrop {
    /// crmbench created it: dropped.
    Dropped,
    /// Not created by crmbench (no marker): kept.
    NotOurs,
}

impl DatabaseDrop {
    /// What `schema drop --database` prints after the schema's line.
    pub fn render(self, database: &str) -> String {
        match self {
            DatabaseDrop::Dropped => format!("crmbench: database {database} dropped\n"),
            DatabaseDrop::NotOurs => format!(
                "crmbench: database {database} kept: crmbench did not create it (no marker)\n"
            ),
        }
    }
}

/// `schema drop --database NAME`, after the schema: drop the database
/// itself when crmbench created it (a dataset, a clone, a working copy
/// nobody holds), without forcing out other sessions.
pub async fn drop_dataset(target: &Target) -> Result<DatabaseDrop> {
    use pg::marker::{DatabaseKind, Marked};
    let db = target.database();
    let client = pg::connect(&target.admin_to(gc::LEASE_DATABASE)).await?;
    let lease = match pg::marker::lookup(&client, db).await? {
        None | Some(Marked::Foreign) => return Ok(DatabaseDrop::NotOurs),
        Some(Marked::Ours(DatabaseKind::Working)) => match gc::Lease::take(target, db).await? {
            Some(lease) => Some(lease),
            None => {
                return Err(Error::Usage {
                    message: format!("database {db} is in use by a running crmbench"),
                    fix: "let that command finish (or stop it: it drops its copies)".into(),
                });
            }
        },
        Some(Marked::Ours(_)) => None,
    };
    let sql = format!("DROP DATABASE {}", pg::quote_ident(db));
    let dropped = clone::retry_while_in_use(&client, &sql)
        .await
        .map_err(|e| match e.sqlstate() {
            Some("55006") => Error::Usage {
                message: e.to_string(),
                fix: format!(
                    "close the other sessions on {db} (a psql, a running benchmark) and retry"
                ),
            },
            _ => e,
        });
    if let Some(lease) = lease {
        lease.release().await?;
    }
    dropped.map(|()| DatabaseDrop::Dropped)
}

async fn drop_schema(client: &Client) -> Result<()> {
    client
        .batch_execute(&format!("DROP SCHEMA {SCHEMA} CASCADE"))
        .await
        .map_err(|e| Error::from_pg(format!("DROP SCHEMA {SCHEMA}"), e))
}

/// Fail with the missing privilege unless the user may create a schema here.
pub async fn check_create_privilege(client: &Client, database: &str) -> Result<()> {
    let row = client
        .query_one(
            "SELECT has_database_privilege(current_database(), 'CREATE'), current_user::text",
            &[],
        )
        .await
        .map_err(|e| Error::from_pg("checking privileges", e))?;
    if !row.get::<_, bool>(0) {
        let user: String = row.get(1);
        return Err(Error::MissingPrivilege {
            privilege: format!("CREATE on database {database} (to create schema {SCHEMA})"),
            fix: format!("GRANT CREATE ON DATABASE {database} TO {user}"),
        });
    }
    Ok(())
}
