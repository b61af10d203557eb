//! One benchmark connection and how a transaction runs on it, framed as an
//! application frames it: `BEGIN`, `set_config(setting, tenant, true)`, the
//! statements, `COMMIT` — pipelined (sent back to back without waiting) up to
//! the first statement that needs a value returned by an earlier one, so the
//! frame costs no extra round trips. All statements are prepared once per
//! connection (extended protocol). A workload without a tenant setting sends
//! a single-statement query alone (autocommit), as such an application does.

use std::collections::HashMap;
use std::time::Instant;

use futures_util::future::join_all;
use tokio_postgres::{Client, Statement as Prepared};

use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec};
use crate::workload::params::{Value, collect_refs};
use crate::workload::{Param, Query, Workload};

/// Client-side failure codes, recorded beside SQLSTATEs.
pub const CONNECTION_LOST: &str = "crmbench:connection_lost";
/// Any other driver failure.
pub const CLIENT_ERROR: &str = "crmbench:client_error";

/// A connection with everything prepared.
pub struct Conn {
    client: Client,
    begin: Prepared,
    set_tenant: Option<Prepared>,
    commit: Prepared,
    rollback: Prepared,
    statements: Vec<Vec<Prepared>>,
    setting: Option<String>,
    simple: bool,
}

/// A transaction's outcome.
#[derive(Debug)]
pub struct TxOutcome {
    /// Whole transaction, µs (send of BEGIN to COMMIT's reply).
    pub total_us: u64,
    /// Each statement's own latency, µs: from the previous reply (or the
    /// start) to its reply.
    pub statement_us: Vec<u64>,
}

/// Why a transaction failed: a SQLSTATE or a crmbench client code.
#[derive(Debug, Clone)]
pub struct TxError {
    /// SQLSTATE or `crmbench:…`.
    pub code: String,
    /// The message.
    pub message: String,
}

impl TxError {
    fn from_pg(e: &tokio_postgres::Error) -> TxError {
        match e.as_db_error() {
            Some(db) => TxError {
                code: db.code().code().to_string(),
                message: db.message().to_string(),
            },
            None if e.is_closed() => TxError {
                code: CONNECTION_LOST.into(),
                message: e.to_string(),
            },
            None => TxError {
                code: CLIENT_ERROR.into(),
                message: crate::error::describe_chain(e),
            },
        }
    }

    /// Whether the connection must be replaced (closed, or the server
    /// terminated the backend: SQLSTATE class 57P).
    pub fn lost(&self) -> bool {
        self.code == CONNECTION_LOST || self.code.starts_with("57P")
    }

    /// Serialization failure or deadlock: worth a retry.
    pub fn retryable(&self) -> bool {
        self.code == "40001" || self.code == "40P01"
    }
}

impl Conn {
    /// Connect and prepare every statement of the workload (`simple`: send
    /// statements as text with literals instead, one message per segment).
    pub async fn open(spec: &ConnSpec, workload: &Workload, simple: bool) -> Result<Conn> {
        let client = pg::connect(spec).await?;
        let prep = |sql: String| {
            let client = &client;
            async move {
                client
                    .prepare(&sql)
                    .await
                    .map_err(|e| Error::from_pg(format!("preparing `{sql}`"), e))
            }
        };
        let begin = prep("BEGIN".into()).await?;
        let commit = prep("COMMIT".into()).await?;
        let rollback = prep("ROLLBACK".into()).await?;
        let set_tenant = match &workload.context.tenant_setting {
            Some(_) => Some(prep("SELECT set_config($1, $2, true)".into()).await?),
            None => None,
        };
        // Statements are prepared inside a transaction with a tenant set? No:
        // PREPARE needs no tenant; RLS applies at execution.
        let mut statements = Vec::with_capacity(workload.queries.len());
        for q in &workload.queries {
            let mut list = Vec::with_capacity(q.statements.len());
            for st in &q.statements {
                list.push(prep(st.sql.clone()).await?);
            }
            statements.push(list);
        }
        Ok(Conn {
            client,
            begin,
            set_tenant,
            commit,
            rollback,
            statements,
            setting: workload.context.tenant_setting.clone(),
            simple,
        })
    }

    /// Run query `qi` once with `values[statement][param]` (refs resolved here).
    pub async fn run(
        &mut self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> std::result::Result<TxOutcome, TxError> {
        if self.simple {
            return self.run_simple(query, tenant, values).await;
        }
        if query.statements.len() == 1 {
            return self.run_single(qi, tenant, &values[0]).await;
        }
        let started = Instant::now();
        let mut last = started;
        let mut statement_us = Vec::with_capacity(query.statements.len());
        let mut refs: HashMap<String, Value> = HashMap::new();
        let client = &self.client;
        let n = query.statements.len();
        // No tenant and a single statement: autocommit, as such an app sends it.
        let framed = self.setting.is_some() || n > 1;

        // Segments: a statement with a ref parameter waits for what came before.
        let mut seg_start = 0;
        let mut first = true;
        while seg_start < n {
            let seg_end = segment_end(query, seg_start);
            let last_segment = seg_end == n;
            let bound: Vec<Vec<Value>> = (seg_start..seg_end)
                .map(|i| {
                    query.statements[i]
                        .params
                        .iter()
                        .zip(&values[i])
                        .map(|(p, v)| match p {
                            Param::Ref(name) => refs.get(name).cloned().unwrap_or(Value::Null),
                            _ => v.clone(),
                        })
                        .collect()
                })
                .collect();
            let tenant_owned = tenant.to_string();
            let setting = self.setting.clone();
            let mut frame: Vec<Timed<'_>> = Vec::new();
            if first && framed {
                frame.push(Box::pin(timed(client.query(&self.begin, &[]))));
                if let (Some(set), Some(setting)) = (&self.set_tenant, setting.as_ref()) {
                    let setting = setting.clone();
                    let tenant = tenant_owned.clone();
                    frame.push(Box::pin(async move {
                        timed(client.query(set, &[&setting, &tenant])).await
                    }));
                }
            }
            let prefix = frame.len();
            for (k, i) in (seg_start..seg_end).enumerate() {
                let stmt = &self.statements[qi][i];
                let params: Vec<Value> = bound[k].clone();
                frame.push(Box::pin(async move {
                    let refs: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = params
                        .iter()
                        .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
                        .collect();
                    timed(client.query(stmt, &refs)).await
                }));
            }
            if last_segment && framed {
                frame.push(Box::pin(timed(client.query(&self.commit, &[]))));
            }
            let results = join_all(frame).await;
            first = false;
            // The first real error wins; later ones are "transaction aborted".
            let mut failure: Option<TxError> = None;
            for (j, (result, at)) in results.into_iter().enumerate() {
                match result {
                    Ok(rows) => {
                        if j >= prefix && j < prefix + (seg_end - seg_start) {
                            statement_us.push(micros(at.saturating_duration_since(last)));
                            last = at;
                            if let Some(row) = rows.first() {
                                collect_refs(row, &mut refs);
                            }
                        } else {
                            last = last.max(at);
                        }
                    }
                    Err(e) => {
                        if failure.is_none() {
                            failure = Some(TxError::from_pg(&e));
                        }
                    }
                }
            }
            if let Some(f) = failure {
                if !f.lost() && !last_segment && framed {
                    let _ = self.client.query(&self.rollback, &[]).await;
                }
                return Err(f);
            }
            seg_start = seg_end;
        }
        Ok(TxOutcome {
            total_us: micros(started.elapsed()),
            statement_us,
        })
    }
}

/// End (exclusive) of the segment starting at `start`: statements up to the
/// next one that needs a value returned before it.
fn segment_end(query: &Query, start: usize) -> usize {
    query.statements[start + 1..]
        .iter()
        .position(|s| s.uses_refs())
        .map_or(query.statements.len(), |k| start + 1 + k)
}

/// A pipelined request and when its reply arrived.
type Timed<'a> = std::pin::Pin<
    Box<
        dyn std::future::Future<
                Output = (
                    std::result::Result<Vec<tokio_postgres::Row>, tokio_postgres::Error>,
                    Instant,
                ),
            > + Send
            + 'a,
    >,
>;

impl Conn {
    /// Simple protocol: each segment (up to a statement that needs a returned
    /// value) goes as one text message with literals — BEGIN, set_config,
    /// statements, COMMIT — so one round trip and one reply per segment.
    /// Statement latencies are the segment's time.
    async fn run_simple(
        &mut self,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> std::result::Result<TxOutcome, TxError> {
        use tokio_postgres::SimpleQueryMessage;
        let n = query.statements.len();
        let framed = self.setting.is_some() || n > 1;
        let started = Instant::now();
        let mut refs: HashMap<String, Value> = HashMap::new();
        let mut statement_us = Vec::with_capacity(n);
        let mut seg_start = 0;
        while seg_start < n {
            let seg_end = segment_end(query, seg_start);
            let mut text = String::new();
            if seg_start == 0 && framed {
                text.push_str("BEGIN;");
                if let Some(setting) = &self.setting {
                    text.push_str(&format!(
                        "SELECT set_config({}, {}, true);",
                        pg::quote_literal(setting),
                        pg::quote_literal(tenant)
                    ));
                }
            }
            for (st, vals) in query.statements[seg_start..seg_end]
                .iter()
                .zip(&values[seg_start..seg_end])
            {
                let sql = crate::workload::substitute(&st.sql, |k| {
                    let v = match st.params.get(k - 1) {
                        Some(Param::Ref(name)) => refs.get(name).cloned().unwrap_or(Value::Null),
                        _ => vals.get(k - 1).cloned().unwrap_or(Value::Null),
                    };
                    match v {
                        Value::Text(t) => pg::quote_literal(&t),
                        _ => "NULL".into(),
                    }
                });
                text.push_str(sql.trim().trim_end_matches(';'));
                text.push(';');
            }
            if seg_end == n && framed {
                text.push_str("COMMIT;");
            }
            let seg_started = Instant::now();
            match self.client.simple_query(&text).await {
                Ok(messages) => {
                    let us = micros(seg_started.elapsed());
                    statement_us.extend((seg_start..seg_end).map(|_| us));
                    for m in messages {
                        if let SimpleQueryMessage::Row(row) = m {
                            for (c, col) in row.columns().iter().enumerate() {
                                let v = row
                                    .get(c)
                                    .map_or(Value::Null, |t| Value::Text(t.to_string()));
                                refs.insert(col.name().to_string(), v);
                            }
                        }
                    }
                }
                Err(e) => {
                    let err = TxError::from_pg(&e);
                    if !err.lost() && framed {
                        let _ = self.client.simple_query("ROLLBACK").await;
                    }
                    return Err(err);
                }
            }
            seg_start = seg_end;
        }
        Ok(TxOutcome {
            total_us: micros(started.elapsed()),
            statement_us,
        })
    }

    /// The common case, without allocations for the frame: one statement,
    /// framed (BEGIN, set_config, statement, COMMIT in one pipelined round
    /// trip) when the workload has a tenant, else alone (autocommit).
    async fn run_single(
        &mut self,
        qi: usize,
        tenant: &str,
        values: &[Value],
    ) -> std::result::Result<TxOutcome, TxError> {
        let params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = values
            .iter()
            .map(|v| v as &(dyn tokio_postgres::types::ToSql + Sync))
            .collect();
        let stmt = &self.statements[qi][0];
        let client = &self.client;
        let started = Instant::now();
        let (Some(set), Some(setting)) = (&self.set_tenant, &self.setting) else {
            client
                .execute(stmt, &params)
                .await
                .map_err(|e| TxError::from_pg(&e))?;
            let us = micros(started.elapsed());
            return Ok(TxOutcome {
                total_us: us,
                statement_us: vec![us],
            });
        };
        let set_params: [&(dyn tokio_postgres::types::ToSql + Sync); 2] = [setting, &tenant];
        let (begin, set, (result, at), commit) = tokio::join!(
            client.execute(&self.begin, &[]),
            timed(client.execute(set, &set_params)),
            timed(client.execute(stmt, &params)),
            client.execute(&self.commit, &[])
        );
        let (set, set_at) = set;
        // The first failure in order is the cause; later ones follow from it.
        for r in [
            begin.map(|_| ()),
            set.map(|_| ()),
            result.map(|_| ()),
            commit.map(|_| ()),
        ] {
            r.map_err(|e| TxError::from_pg(&e))?;
        }
        Ok(TxOutcome {
            total_us: micros(started.elapsed()),
            statement_us: vec![micros(at.saturating_duration_since(set_at))],
        })
    }
}

async fn timed<F, T>(fut: F) -> (T, Instant)
where
    F: std::future::Future<Output = T>,
{
    let r = fut.await;
    (r, Instant::now())
}

fn micros(d: std::time::Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}
