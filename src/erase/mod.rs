//! `crmbench erase`: a customer's or a tenant's rows deleted in one
//! transaction, as the schema's owner with the subject's tenant set (forced
//! row-level security keeps every statement inside that tenant; the owner
//! may change tables the application may not, such as an append-only
//! audit log), and proven before COMMIT:
//!
//! 1. no row references the subject any more (the foreign keys into the
//!    subject, the policy's declared references, the subject row itself;
//!    rows further down cannot outlive their deleted parents while the
//!    foreign keys hold);
//! 2. no row outside the subject's tenant was touched: the transaction's
//!    own counters (`pg_stat_xact_user_tables`) equal what crmbench's
//!    statements reported (`RETURNING` the tenant, all the subject's), so a
//!    cascade, a trigger or a foreign-key action (which do not pass through
//!    row-level security) is a surplus that fails the proof.
//!
//! Per table the policy deletes the rows or pseudonymises named columns
//! (records a business must keep lose what names the person); [`proofs`]
//! lists every proof (no personal value left, rows written found by
//! `xmin`). Any failed proof rolls everything back and names the table.
//! `--dry-run` erases a clone instead ([`dryrun`]: nothing else writes
//! there) and also compares every other tenant's checksums before and after.
//! [`plan`] builds the steps from the catalog, [`run`] executes them.

pub mod dryrun;
pub mod plan;
pub mod proofs;
pub mod pseudonym;
pub mod run;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use crate::audit::catalog::{Catalog, Key};
use crate::error::{Error, Result};
use crate::pg::{self, Target, quote_literal};
use plan::{Action, Subject};
use run::Statement;
use serde::Deserialize;

/// A reference the catalog cannot know (no foreign key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Reference {
    /// Table holding it.
    pub table: String,
    /// SQL condition; `{id}` is the subject's key (a quoted literal).
    #[serde(rename = "where")]
    pub condition: String,
    /// What to do with those rows (default delete).
    #[serde(default = "delete")]
    pub action: Action,
}

fn delete() -> Action {
    Action::Delete
}

/// `erasure.toml`.
#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The table `--customer` names rows of (default `customers`).
    pub subject: Option<String>,
    /// Its key column (default `id`).
    pub key: Option<String>,
    /// Action per table (default delete; pseudonymise for a table listed
    /// in `pseudonymise`).
    #[serde(default)]
    pub tables: BTreeMap<String, Action>,
    /// The personal columns overwritten per pseudonymised table.
    #[serde(default)]
    pub pseudonymise: BTreeMap<String, Vec<String>>,
    /// References without a foreign key.
    #[serde(default)]
    pub reference: Vec<Reference>,
}

impl Policy {
    /// Read a policy file.
    pub fn load(path: &std::path::Path) -> Result<Policy> {
        let text = std::fs::read_to_string(path).map_err(|e| Error::io("reading", path, e))?;
        toml::from_str(&text).map_err(|e| Error::Usage {
            message: format!("{}: {e}", path.display()),
            fix: "see README, section Erasure, for the policy format".into(),
        })
    }

    /// What the policy does with `table`'s rows.
    pub fn action(&self, table: &str) -> Action {
        match self.tables.get(table) {
            Some(a) => *a,
            None if self.pseudonymise.contains_key(table) => Action::Pseudonymise,
            None => Action::Delete,
        }
    }
}

/// What to erase.
#[derive(Debug, Clone)]
pub struct EraseOptions {
    /// Schema.
    pub schema: String,
    /// A customer's key, or None for `tenant`.
    pub customer: Option<String>,
    /// The tenant (required for a tenant erasure; found for a customer).
    pub tenant: Option<String>,
    /// Policy file.
    pub policy: Option<PathBuf>,
    /// Erase a clone instead (and compare the other tenants' checksums).
    pub dry_run: bool,
    /// The tenant column and setting.
    pub column: String,
    /// The tenant setting.
    pub setting: String,
}

/// What an erasure did and proved.
#[derive(Debug, Clone, serde::Serialize)]
pub struct EraseReport {
    /// The tenant.
    pub tenant: String,
    /// Rows deleted per table.
    pub deleted: BTreeMap<String, u64>,
    /// Rows pseudonymised per table.
    pub pseudonymised: BTreeMap<String, u64>,
    /// The proofs that held, one line each.
    pub proofs: Vec<String>,
    /// Committed on the target (false: a dry run, done on a clone).
    pub committed: bool,
    /// The clone a dry run erased (dropped afterwards).
    pub clone: Option<String>,
    /// Seconds the transaction took.
    pub seconds: f64,
}

impl EraseReport {
    /// The text `erase` prints.
    pub fn render(&self) -> String {
        let mut out = format!("erasure in tenant {}:\n", self.tenant);
        for (t, n) in &self.deleted {
            out.push_str(&format!("  {t:<24} {n:>8} deleted\n"));
        }
        for (t, n) in &self.pseudonymised {
            out.push_str(&format!("  {t:<24} {n:>8} pseudonymised\n"));
        }
        for p in &self.proofs {
            out.push_str(&format!("  proof: {p}\n"));
        }
        out.push_str(&format!(
            "{} in {:.2} s\n",
            match (&self.clone, self.committed) {
                (_, true) => "committed".to_string(),
                (Some(c), false) =>
                    format!("done on clone {c}, dropped (--dry-run; the target is unchanged)"),
                (None, false) => "rolled back".to_string(),
            },
            self.seconds
        ));
        out
    }
}

pub(crate) fn pg_err(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error {
    let context = context.into();
    move |e| Error::from_pg(context, e)
}

/// What the statements and the proofs share.
pub struct Context<'a> {
    /// Schema.
    pub schema: &'a str,
    /// The tenant column.
    pub column: &'a str,
    /// The subject's tenant.
    pub tenant: &'a str,
    /// Who is erased.
    pub subject: &'a Subject,
    /// The schema's keys.
    pub keys: &'a [Key],
    /// The policy's action per table.
    pub action: &'a dyn Fn(&str) -> Action,
    /// The policy's declared references, as statements.
    pub references: &'a [Statement],
    /// Every statement, in order (declared references first).
    pub statements: &'a [Statement],
}

/// Erase and prove it; a failed proof is an error and nothing is changed.
/// With `dry_run`, the same on a clone of the database.
pub async fn erase(target: &Target, opts: &EraseOptions) -> Result<EraseReport> {
    let policy = match &opts.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    let named = (opts.customer.as_deref(), opts.tenant.as_deref());
    let (tenant, subject) = resolve(target, &opts.schema, &opts.column, &policy, named).await?;
    if opts.dry_run {
        return dryrun::on_clone(target, opts, &policy, &tenant, &subject).await;
    }
    // The application may still write the subject's rows: its transactions
    // lock them in another order, and PostgreSQL breaks the deadlock by
    // failing one side. Everything rolled back, so a new attempt is safe.
    let mut tries = 1;
    loop {
        match erase_in(target, opts, &policy, &tenant, &subject).await {
            Err(e) if tries < DEADLOCK_TRIES && e.sqlstate() == Some("40P01") => {
                tracing::warn!(
                    "erase attempt {tries} deadlocked with the application, retrying: {e}"
                );
                tries += 1;
            }
            other => return other,
        }
    }
}

/// Attempts of an erasure that deadlocks with the application's writes.
const DEADLOCK_TRIES: u32 = 3;

/// The subject named by `--customer` / `--tenant`, and its tenant (found
/// from the customer's row when not given).
pub(crate) async fn resolve(
    target: &Target,
    schema: &str,
    column: &str,
    policy: &Policy,
    (customer, tenant): (Option<&str>, Option<&str>),
) -> Result<(String, Subject)> {
    let table = policy.subject.clone().unwrap_or_else(|| "customers".into());
    let key = policy.key.clone().unwrap_or_else(|| "id".into());
    let subject = match customer {
        Some(id) => Subject::Row {
            table: table.clone(),
            key: key.clone(),
            id: id.to_string(),
        },
        None => Subject::Tenant,
    };
    let tenant = match (customer, tenant) {
        (_, Some(t)) => t.to_string(),
        (Some(id), None) => {
            let client = pg::connect(&target.admin()).await?;
            tenant_of(&client, schema, column, &table, &key, id).await?
        }
        (None, None) => {
            return Err(Error::Usage {
                message: "name the subject: --customer ID or --tenant ID".into(),
                fix: "give --customer ID (its tenant is found) or --tenant ID".into(),
            });
        }
    };
    Ok((tenant, subject))
}

/// The erasure itself, committed on `target`.
async fn erase_in(
    target: &Target,
    opts: &EraseOptions,
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> Result<EraseReport> {
    let mut client = pg::connect(&target.admin()).await?;
    let cat = Catalog::load(&client, &opts.schema, "").await?;
    let (references, statements) = statements(&cat, &opts.column, policy, tenant, subject);
    let action = |t: &str| policy.action(t);
    let cx = Context {
        schema: &opts.schema,
        column: &opts.column,
        tenant,
        subject,
        keys: &cat.keys,
        action: &action,
        references: &references,
        statements: &statements,
    };
    let started = Instant::now();
    let tx = client.transaction().await.map_err(pg_err("BEGIN"))?;
    let owner: String = tx
        .query_one(
            "SELECT nspowner::regrole::text FROM pg_namespace WHERE nspname = $1",
            &[&opts.schema],
        )
        .await
        .map_err(pg_err("reading the schema's owner"))?
        .get(0);
    tx.batch_execute(&format!(
        "SET LOCAL ROLE {owner}; SELECT set_config({}, {}, true)",
        quote_literal(&opts.setting),
        quote_literal(tenant)
    ))
    .await
    .map_err(pg_err(format!("becoming {owner} in tenant {tenant}")))?;
    let changes = run::run(&tx, &opts.schema, &statements, &policy.pseudonymise, tenant).await?;
    // Proofs read every tenant's rows: back to the connecting role.
    tx.batch_execute("RESET ROLE")
        .await
        .map_err(pg_err("RESET ROLE"))?;
    let proofs = proofs::all(&tx, &cx, &changes).await?;
    tx.commit().await.map_err(pg_err("COMMIT"))?;
    Ok(EraseReport {
        tenant: tenant.to_string(),
        deleted: changes.deleted,
        pseudonymised: changes.updated,
        proofs,
        committed: true,
        clone: None,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// The declared references and then every statement (references first,
/// then the catalog's steps, leaves first).
pub(crate) fn statements(
    cat: &Catalog,
    column: &str,
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> (Vec<Statement>, Vec<Statement>) {
    let tenant_tables: Vec<String> = cat
        .relations
        .iter()
        .filter(|r| matches!(r.kind, 'r' | 'p') && r.columns.iter().any(|c| c == column))
        .map(|r| r.name.clone())
        .collect();
    let ctx = crate::audit::rules::Ctx {
        cat,
        column,
        setting: "",
    };
    let roots = ctx.roots();
    let action = |t: &str| policy.action(t);
    let graph = plan::Graph {
        schema: &cat.schema,
        keys: &cat.keys,
        column,
        tenant_tables: &tenant_tables,
        root: roots.first().map(|(t, k)| (t.as_str(), k.as_str())),
        action: &action,
    };
    let references: Vec<Statement> = policy
        .reference
        .iter()
        .map(|r| Statement {
            table: r.table.clone(),
            predicate: reference_predicate(column, r, tenant, subject),
            tenant_column: column.to_string(),
            action: r.action,
        })
        .collect();
    let steps = plan::steps(&graph, tenant, subject)
        .into_iter()
        .map(|s| Statement {
            table: s.table,
            predicate: s.predicate,
            tenant_column: s.tenant_column,
            action: s.action,
        });
    let all = references.iter().cloned().chain(steps).collect();
    (references, all)
}

async fn tenant_of(
    client: &tokio_postgres::Client,
    schema: &str,
    column: &str,
    table: &str,
    key: &str,
    id: &str,
) -> Result<String> {
    let sql = format!(
        "SELECT {}::text FROM {}.{} WHERE {}::text = $1",
        pg::quote_ident(column),
        pg::quote_ident(schema),
        pg::quote_ident(table),
        pg::quote_ident(key)
    );
    let rows = client
        .query(&sql, &[&id])
        .await
        .map_err(pg_err(sql.clone()))?;
    match rows.as_slice() {
        [row] => Ok(row.get(0)),
        _ => Err(Error::Usage {
            message: format!("{table} {key} = {id}: {} rows", rows.len()),
            fix: "give the key of exactly one row (and --tenant when keys repeat across tenants)"
                .into(),
        }),
    }
}

fn reference_predicate(column: &str, r: &Reference, tenant: &str, subject: &Subject) -> String {
    let id = match subject {
        Subject::Row { id, .. } => quote_literal(id),
        Subject::Tenant => "NULL".into(),
    };
    format!(
        "{} = {} AND ({})",
        pg::quote_ident(column),
        quote_literal(tenant),
        r.condition.replace("{id}", &id)
    )
}
