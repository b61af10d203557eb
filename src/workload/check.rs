//! Validation against the server before anything runs: every statement is
//! prepared as the workload's role with a tenant set, so an unknown table or
//! column, a type the server cannot infer, or a missing privilege is reported
//! with the file, line and query — and a `ref` must name a column that an
//! earlier statement returns.

use tokio_postgres::Client;

use super::frame::TenantFrame;
use super::{Param, Workload};
use crate::error::{Error, Result};

/// Prepare every statement of `workload` on `client` (already in the
/// workload's role), inside the workload's frame with `tenant` set; roll back.
pub async fn check(client: &Client, workload: &Workload, tenant: &str) -> Result<()> {
    let err = |line: usize, query: &str, message: String| Error::Workload {
        file: workload.path.clone(),
        line,
        query: Some(query.to_string()),
        message,
    };
    let frame = TenantFrame::for_workload(workload);
    frame.begin(client, tenant, "").await?;
    let mut result = Ok(());
    'queries: for q in &workload.queries {
        let mut returned: Vec<String> = Vec::new();
        for st in &q.statements {
            match client.prepare(&st.sql).await {
                Ok(prepared) => {
                    for p in &st.params {
                        if let Param::Ref(name) = p {
                            if !returned.contains(name) {
                                result = Err(err(
                                    st.line,
                                    &q.name,
                                    format!(
                                        "ref = \"{name}\": no earlier statement returns a column of that name \
                                         (returned: {})",
                                        if returned.is_empty() {
                                            "nothing".into()
                                        } else {
                                            returned.join(", ")
                                        }
                                    ),
                                ));
                                break 'queries;
                            }
                        }
                    }
                    returned.extend(prepared.columns().iter().map(|c| c.name().to_string()));
                }
                Err(e) => {
                    let e = Error::from_pg("", e);
                    let message = match &e {
                        Error::Server {
                            message, sqlstate, ..
                        } => {
                            format!("the server rejects this SQL: {message} (SQLSTATE {sqlstate})")
                        }
                        other => other.to_string(),
                    };
                    result = Err(err(st.line, &q.name, message));
                    break 'queries;
                }
            }
        }
    }
    // The transaction may be aborted by a failed PREPARE: ROLLBACK either way.
    frame.rollback(client, "").await?;
    result
}
