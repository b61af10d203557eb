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
//! Any failed proof rolls everything back and names the table.
//! [`plan`] builds the statements from the catalog.

pub mod plan;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Instant;

use serde::Deserialize;
use tokio_postgres::Transaction;

use crate::audit::catalog::Catalog;
use crate::error::{Error, Result};
use crate::pg::{self, Target, quote_literal};
use plan::{Action, Step, Subject};

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
    /// Action per table (default delete).
    #[serde(default)]
    pub tables: BTreeMap<String, Action>,
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
    /// Roll back instead of committing.
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
    /// The proofs that held, one line each.
    pub proofs: Vec<String>,
    /// Committed (false: dry run, rolled back).
    pub committed: bool,
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
        for p in &self.proofs {
            out.push_str(&format!("  proof: {p}\n"));
        }
        out.push_str(&format!(
            "{} in {:.2} s\n",
            if self.committed {
                "committed"
            } else {
                "rolled back (--dry-run)"
            },
            self.seconds
        ));
        out
    }
}

fn pg_err(context: impl Into<String>) -> impl FnOnce(tokio_postgres::Error) -> Error {
    let context = context.into();
    move |e| Error::from_pg(context, e)
}

/// Erase and prove it; a failed proof is an error and nothing is changed.
pub async fn erase(target: &Target, opts: &EraseOptions) -> Result<EraseReport> {
    let policy = match &opts.policy {
        Some(p) => Policy::load(p)?,
        None => Policy::default(),
    };
    let mut client = pg::connect(&target.admin()).await?;
    let cat = Catalog::load(&client, &opts.schema, "").await?;
    let subject_table = policy.subject.clone().unwrap_or_else(|| "customers".into());
    let key = policy.key.clone().unwrap_or_else(|| "id".into());
    let tenant = match (&opts.customer, &opts.tenant) {
        (_, Some(t)) => t.clone(),
        (Some(id), None) => tenant_of(&client, opts, &subject_table, &key, id).await?,
        (None, None) => {
            return Err(Error::Usage {
                message: "erase needs --customer ID or --tenant ID".into(),
                fix: "name the subject".into(),
            });
        }
    };
    let subject = match &opts.customer {
        Some(id) => Subject::Row {
            table: subject_table,
            key,
            id: id.clone(),
        },
        None => Subject::Tenant,
    };
    let tenant_tables: Vec<String> = cat
        .relations
        .iter()
        .filter(|r| matches!(r.kind, 'r' | 'p') && r.columns.contains(&opts.column))
        .map(|r| r.name.clone())
        .collect();
    let ctx = crate::audit::rules::Ctx {
        cat: &cat,
        column: &opts.column,
        setting: &opts.setting,
    };
    let roots = ctx.roots();
    let root = roots.first().map(|(t, k)| (t.as_str(), k.as_str()));
    let action = |t: &str| policy.tables.get(t).copied().unwrap_or(Action::Delete);
    let graph = plan::Graph {
        schema: &opts.schema,
        keys: &cat.keys,
        column: &opts.column,
        tenant_tables: &tenant_tables,
        root,
        action: &action,
    };
    let steps = plan::steps(&graph, &tenant, &subject);
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
        quote_literal(&tenant)
    ))
    .await
    .map_err(pg_err(format!("becoming {owner} in tenant {tenant}")))?;
    let deleted = run_steps(&tx, opts, &steps, &policy, &tenant, &subject).await?;
    // Proofs read every tenant's rows: back to the connecting role.
    tx.batch_execute("RESET ROLE")
        .await
        .map_err(pg_err("RESET ROLE"))?;
    let mut proofs =
        vec![no_reference_left(&tx, opts, &cat, &steps, &policy, &tenant, &subject).await?];
    proofs.push(nothing_else_touched(&tx, opts, &deleted).await?);
    let committed = !opts.dry_run;
    if committed {
        tx.commit().await.map_err(pg_err("COMMIT"))?;
    } else {
        tx.rollback().await.map_err(pg_err("ROLLBACK"))?;
    }
    Ok(EraseReport {
        tenant,
        deleted,
        proofs,
        committed,
        seconds: started.elapsed().as_secs_f64(),
    })
}

async fn tenant_of(
    client: &tokio_postgres::Client,
    opts: &EraseOptions,
    table: &str,
    key: &str,
    id: &str,
) -> Result<String> {
    let sql = format!(
        "SELECT {}::text FROM {}.{} WHERE {}::text = $1",
        pg::quote_ident(&opts.column),
        pg::quote_ident(&opts.schema),
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

/// Run the steps and the declared references; every returned row must be
/// of `tenant`.
async fn run_steps(
    tx: &Transaction<'_>,
    opts: &EraseOptions,
    steps: &[Step],
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> Result<BTreeMap<String, u64>> {
    let mut deleted: BTreeMap<String, u64> = BTreeMap::new();
    let mut statements: Vec<(String, String, String)> = Vec::new();
    for r in policy
        .reference
        .iter()
        .filter(|r| r.action == Action::Delete)
    {
        let pred = reference_predicate(opts, r, tenant, subject);
        statements.push((r.table.clone(), pred, opts.column.clone()));
    }
    for s in steps.iter().filter(|s| s.action == Action::Delete) {
        statements.push((
            s.table.clone(),
            s.predicate.clone(),
            s.tenant_column.clone(),
        ));
    }
    for (table, pred, tenant_column) in statements {
        let sql = format!(
            "DELETE FROM {}.{} WHERE {pred} RETURNING {}::text",
            pg::quote_ident(&opts.schema),
            pg::quote_ident(&table),
            pg::quote_ident(&tenant_column)
        );
        let rows = tx
            .query(&sql, &[])
            .await
            .map_err(pg_err(format!("deleting from {table}")))?;
        if let Some(other) = rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .find(|t| t != tenant)
        {
            return Err(Error::State {
                message: format!(
                    "proof failed: deleting from {table} returned a row of tenant {other}; rolled back"
                ),
                fix: "check the policy and the table's row-level security".into(),
            });
        }
        *deleted.entry(table).or_default() += rows.len() as u64;
    }
    Ok(deleted)
}

fn reference_predicate(
    opts: &EraseOptions,
    r: &Reference,
    tenant: &str,
    subject: &Subject,
) -> String {
    let id = match subject {
        Subject::Row { id, .. } => quote_literal(id),
        Subject::Tenant => "NULL".into(),
    };
    format!(
        "{} = {} AND ({})",
        pg::quote_ident(&opts.column),
        quote_literal(tenant),
        r.condition.replace("{id}", &id)
    )
}

/// Proof 1: nothing references the subject any more.
async fn no_reference_left(
    tx: &Transaction<'_>,
    opts: &EraseOptions,
    cat: &Catalog,
    steps: &[Step],
    policy: &Policy,
    tenant: &str,
    subject: &Subject,
) -> Result<String> {
    let mut checks: Vec<(String, String)> = Vec::new();
    match subject {
        Subject::Row { table, key, id } => {
            checks.push((
                table.clone(),
                format!(
                    "{} = {} AND {} = {}",
                    pg::quote_ident(&opts.column),
                    quote_literal(tenant),
                    pg::quote_ident(key),
                    quote_literal(id)
                ),
            ));
            // Rows holding the subject's key directly, through a foreign key.
            for k in cat
                .keys
                .iter()
                .filter(|k| k.kind == 'f' && &k.foreign_table == table)
            {
                let conds: Vec<String> = k
                    .columns
                    .iter()
                    .zip(&k.foreign_columns)
                    .map(|(c, f)| {
                        let v = if f == key {
                            id.as_str()
                        } else if *f == opts.column {
                            tenant
                        } else {
                            ""
                        };
                        format!("{}::text = {}", pg::quote_ident(c), quote_literal(v))
                    })
                    .collect();
                checks.push((k.table.clone(), conds.join(" AND ")));
            }
        }
        Subject::Tenant => {
            for s in steps {
                checks.push((s.table.clone(), s.predicate.clone()));
            }
        }
    }
    for r in &policy.reference {
        checks.push((
            r.table.clone(),
            reference_predicate(opts, r, tenant, subject),
        ));
    }
    for (table, pred) in &checks {
        let sql = format!(
            "SELECT count(*) FROM {}.{} WHERE {pred}",
            pg::quote_ident(&opts.schema),
            pg::quote_ident(table)
        );
        let left: i64 = tx
            .query_one(&sql, &[])
            .await
            .map_err(pg_err(format!("proving {table}")))?
            .get(0);
        if left > 0 {
            return Err(Error::State {
                message: format!(
                    "proof failed: {left} row(s) of {table} still reference the subject; rolled back"
                ),
                fix: format!(
                    "give {table} the action delete in the policy (or declare how it references the subject)"
                ),
            });
        }
    }
    Ok(format!(
        "no row references the subject ({} checks, every tenant's rows read)",
        checks.len()
    ))
}

/// Proof 2: the transaction's own counters equal the statements' counts.
async fn nothing_else_touched(
    tx: &Transaction<'_>,
    opts: &EraseOptions,
    deleted: &BTreeMap<String, u64>,
) -> Result<String> {
    let rows = tx
        .query(
            "SELECT relname::text, n_tup_ins, n_tup_upd, n_tup_del FROM pg_stat_xact_user_tables \
             WHERE schemaname = $1 AND n_tup_ins + n_tup_upd + n_tup_del > 0",
            &[&opts.schema],
        )
        .await
        .map_err(pg_err("reading pg_stat_xact_user_tables"))?;
    for r in &rows {
        let (table, ins, upd, del): (String, i64, i64, i64) =
            (r.get(0), r.get(1), r.get(2), r.get(3));
        let ours = deleted.get(&table).copied().unwrap_or(0);
        if ins != 0 || upd != 0 || u64::try_from(del).ok() != Some(ours) {
            return Err(Error::State {
                message: format!(
                    "proof failed: {table} changed beyond crmbench's statements (inserted {ins}, updated {upd}, deleted {del}; crmbench deleted {ours}): a cascade, trigger or foreign-key action; rolled back"
                ),
                fix: format!("list {table} in the policy, or remove the action that changes it"),
            });
        }
    }
    Ok(format!(
        "the transaction changed only the rows crmbench deleted, all in tenant ({} tables)",
        rows.len()
    ))
}
