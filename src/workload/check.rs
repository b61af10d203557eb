//! Validation against the server before anything runs: every statement is
//! prepared and then run once, as the workload's role with a tenant set and
//! values drawn as a run draws them, each query in its own transaction that
//! is rolled back (nothing changes, except that a sequence a statement draws
//! from advances: PostgreSQL never rolls those back). So an unknown table or
//! column, a type the server cannot infer, a missing privilege, SQL that
//! takes other parameters than the file says (a `$1` inside a dollar-quoted
//! string) or a "read" query that writes (a DROP) is reported with the file,
//! line and query — and a `ref` must name a column that an earlier statement
//! returns.

use std::collections::HashMap;

use tokio_postgres::Client;
use tokio_postgres::types::ToSql;

use super::frame::TenantFrame;
use super::params::{Pools, Value, collect_refs};
use super::{Kind, Param, Query, Statement, Workload};
use crate::error::{Error, Result};
use crate::rng::{Prng, tag};

/// SQLSTATE classes a statement may raise with some values and not others
/// (a duplicate key, a value out of range, a serialization failure): when
/// the check's one execution hits one, the run may still succeed, so it is
/// a warning, not an error. 25001: a statement that cannot run inside a
/// transaction block, which a run may send alone.
const VALUE_DEPENDENT: [&str; 3] = ["22", "23", "40"];
const OUTSIDE_TRANSACTIONS_ONLY: &str = "25001";

/// Check every query of `workload` on `client` (already in the workload's
/// role): prepare and run each statement with values from `pools`, inside
/// the workload's frame with `tenant` set; roll back.
pub async fn check(
    client: &Client,
    workload: &Workload,
    pools: &Pools,
    tenant: &str,
) -> Result<()> {
    let frame = TenantFrame::for_workload(workload);
    // A fixed stream: the check draws the same values every time.
    let mut rng = Prng::for_parts(&[tag("check")]);
    for q in &workload.queries {
        frame.begin(client, tenant, "").await?;
        let checked = QueryCheck {
            client,
            workload,
            query: q,
        }
        .run(pools, tenant, &mut rng)
        .await;
        // A failed statement aborts the transaction: ROLLBACK either way.
        frame.rollback(client, "").await?;
        checked?;
    }
    Ok(())
}

/// One query being checked.
struct QueryCheck<'a> {
    client: &'a Client,
    workload: &'a Workload,
    query: &'a Query,
}

impl QueryCheck<'_> {
    fn err(&self, line: usize, message: String) -> Error {
        Error::Workload {
            file: self.workload.path.clone(),
            line,
            query: Some(self.query.name.clone()),
            message,
        }
    }

    async fn run(&self, pools: &Pools, tenant: &str, rng: &mut Prng) -> Result<()> {
        let mut returned: Vec<String> = Vec::new();
        let mut refs: HashMap<String, Value> = HashMap::new();
        for st in &self.query.statements {
            let prepared = self.client.prepare(&st.sql).await.map_err(|e| {
                self.err(
                    st.line,
                    format!("the server rejects this SQL: {}", server_text(e)),
                )
            })?;
            self.check_refs(st, &returned)?;
            returned.extend(prepared.columns().iter().map(|c| c.name().to_string()));
            let values: Vec<Value> = st
                .params
                .iter()
                .map(|p| pools.value(p, rng, tenant, &refs))
                .collect();
            let params: Vec<&(dyn ToSql + Sync)> =
                values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            match self.client.query(&prepared, &params).await {
                Ok(rows) => {
                    if let Some(row) = rows.first() {
                        collect_refs(row, &mut refs);
                    }
                }
                Err(e) => return self.failed(st, e),
            }
        }
        if self.query.kind == Kind::Read && self.wrote().await? {
            return Err(self.err(
                self.query.line,
                "kind = \"read\", but running it writes (it took a transaction id): \
                 a run would change the data, or fail once the first change is made; \
                 make it kind = \"write\", or take the write out"
                    .into(),
            ));
        }
        Ok(())
    }

    /// A `ref` must name a column an earlier statement returns.
    fn check_refs(&self, st: &Statement, returned: &[String]) -> Result<()> {
        for p in &st.params {
            let Param::Ref(name) = p else { continue };
            if returned.contains(name) {
                continue;
            }
            let returned = if returned.is_empty() {
                "nothing".into()
            } else {
                returned.join(", ")
            };
            return Err(self.err(
                st.line,
                format!(
                    "ref = \"{name}\": no earlier statement returns a column of that name \
                     (returned: {returned})"
                ),
            ));
        }
        Ok(())
    }

    /// A statement that failed its one run: an error, unless the failure
    /// may depend on the values drawn (then a warning, and the rest of the
    /// query is not run: its transaction is aborted).
    fn failed(&self, st: &Statement, e: tokio_postgres::Error) -> Result<()> {
        let sqlstate = e.code().map(|c| c.code().to_string());
        let text = server_text(e);
        let value_dependent = sqlstate.as_deref().is_some_and(|s| {
            VALUE_DEPENDENT.iter().any(|class| s.starts_with(class))
                || s == OUTSIDE_TRANSACTIONS_ONLY
        });
        if value_dependent {
            tracing::warn!(
                "{}:{}: query `{}`: running it once with drawn values failed ({text}); \
                 other values may succeed, so the run goes on",
                self.workload.path.display(),
                st.line,
                self.query.name
            );
            return Ok(());
        }
        Err(self.err(
            st.line,
            format!("the statement fails when run (once, rolled back): {text}"),
        ))
    }

    /// Whether the transaction so far wrote anything (took a transaction id).
    async fn wrote(&self) -> Result<bool> {
        let wrote = self
            .client
            .query_one("SELECT txid_current_if_assigned() IS NOT NULL", &[])
            .await
            .and_then(|row| row.try_get(0))
            .map_err(|e| Error::from_pg("checking whether the query wrote", e))?;
        Ok(wrote)
    }
}

/// The server's message with its SQLSTATE, or the driver's.
fn server_text(e: tokio_postgres::Error) -> String {
    match Error::from_pg("", e) {
        Error::Server {
            message, sqlstate, ..
        } => format!("{message} (SQLSTATE {sqlstate})"),
        other => other.to_string(),
    }
}
