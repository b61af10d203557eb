//! One benchmark connection and how a transaction runs on it, framed as an
//! application frames it (the workload's [`TenantFrame`]: `BEGIN`,
//! `set_config(setting, tenant, true)`, the statements, `COMMIT`) —
//! pipelined (sent back to back without waiting) up to the first statement
//! that needs a value returned by an earlier one, so the frame costs no extra
//! round trips. All statements are prepared once per connection (extended
//! protocol). A workload without a tenant setting sends a single-statement
//! query alone (autocommit), as such an application does.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Instant;

use futures_util::future::join_all;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Row, Statement as Prepared};

use crate::error::{Error, Result};
use crate::pg::{self, ConnSpec};
use crate::workload::frame::{self, PreparedFrame, TenantFrame};
use crate::workload::params::{Value, collect_refs};
use crate::workload::{Param, Query, Workload};

/// Client-side failure codes, recorded beside SQLSTATEs.
pub const CONNECTION_LOST: &str = "crmbench:connection_lost";
/// Any other driver failure.
pub const CLIENT_ERROR: &str = "crmbench:client_error";
/// A connection attempt the server did not answer (down, restarting).
pub const CONNECTION_REFUSED: &str = "crmbench:connection_refused";

/// A connection with everything prepared.
pub struct Conn {
    client: Client,
    frame: TenantFrame,
    prepared: PreparedFrame,
    statements: Vec<Vec<Prepared>>,
    simple: bool,
    /// A `SET LOCAL` frame's statement per tenant (the tenant is a literal
    /// there), prepared the first time the connection meets the tenant.
    set_local: HashMap<String, Prepared>,
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
            // A reset socket is the server gone too (tokio-postgres calls it
            // an I/O error, not a closed connection): replace the connection.
            None if e.is_closed() || crate::error::socket_failed(e) => TxError {
                code: CONNECTION_LOST.into(),
                message: crate::error::describe_chain(e),
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

/// Whether a failure to connect or prepare means the server is away for
/// now, so trying again later may work: refused or dropped (down,
/// restarting), or a session ended or refused by a restart — 57P01 admin
/// shutdown, 57P02 crash shutdown, 57P03 cannot connect now (recovering
/// after a crash, starting up).
pub fn server_unavailable(e: &Error) -> bool {
    match e {
        Error::ConnectionRefused { .. } | Error::ConnectionLost { .. } => true,
        Error::Server { sqlstate, .. } => matches!(sqlstate.as_str(), "57P01" | "57P02" | "57P03"),
        _ => false,
    }
}

impl Conn {
    /// Connect and prepare the frame and every statement of the workload
    /// (`simple`: send statements as text with literals instead, one message
    /// per segment).
    pub async fn open(spec: &ConnSpec, workload: &Workload, simple: bool) -> Result<Conn> {
        let client = pg::connect(spec).await?;
        let frame = TenantFrame::for_workload(workload);
        let prepared = frame.prepare(&client).await?;
        // PREPARE needs no tenant: row-level security applies at execution.
        let mut statements = Vec::with_capacity(workload.queries.len());
        for q in &workload.queries {
            let mut list = Vec::with_capacity(q.statements.len());
            for st in &q.statements {
                let prepared = client
                    .prepare(&st.sql)
                    .await
                    .map_err(|e| Error::from_pg(format!("preparing `{}`", st.sql), e))?;
                list.push(prepared);
            }
            statements.push(list);
        }
        Ok(Conn {
            client,
            frame,
            prepared,
            statements,
            simple,
            set_local: HashMap::new(),
        })
    }

    /// The driver connection, for crmbench's own bookkeeping queries (WAL
    /// positions for read-your-writes), never for the workload's.
    pub fn client(&self) -> &Client {
        &self.client
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
        self.prepare_set_local(tenant).await?;
        if query.statements.len() == 1 {
            return self.run_single(qi, tenant, &values[0]).await;
        }
        self.run_pipelined(qi, query, tenant, values).await
    }

    /// A `SET LOCAL` frame: prepare this tenant's statement once (a round
    /// trip the first time only), so the frame stays one pipeline.
    async fn prepare_set_local(&mut self, tenant: &str) -> std::result::Result<(), TxError> {
        // The cache first: the statement's text is built only the first time.
        if self.set_local.contains_key(tenant) {
            return Ok(());
        }
        let Some(sql) = self.frame.set_local_sql(tenant) else {
            return Ok(());
        };
        let prepared = self
            .client
            .prepare(&sql)
            .await
            .map_err(|e| TxError::from_pg(&e))?;
        self.set_local.insert(tenant.to_string(), prepared);
        Ok(())
    }

    /// The frame's tenant statement and its parameters: set_config's
    /// prepared one with (setting, tenant), or the tenant's `SET LOCAL`.
    fn set_tenant(&self, tenant: &str) -> Option<(&Prepared, Option<&String>)> {
        if let Some(stmt) = self.set_local.get(tenant) {
            return Some((stmt, None));
        }
        let set = self.prepared.set_tenant.as_ref()?;
        Some((set, Some(self.frame.setting_ref()?)))
    }

    /// Several prepared statements: each segment is pipelined, the frame's
    /// opening with the first segment and `COMMIT` with the last.
    async fn run_pipelined(
        &self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> std::result::Result<TxOutcome, TxError> {
        let n = query.statements.len();
        let framed = self.frame.frames(n);
        let mut clock = StatementClock::new(n);
        let mut refs: HashMap<String, Value> = HashMap::new();
        let mut start = 0;
        while start < n {
            let range = start..segment_end(query, start);
            let segment = Segment {
                opens: framed && start == 0,
                commits: framed && range.end == n,
                range,
            };
            let params = bind(query, values, &refs, segment.range.clone());
            let (prefix, replies) = self.send_segment(qi, tenant, &segment, params).await;
            let statements = prefix..prefix + segment.range.len();
            // Returned columns are kept only when a later segment takes refs.
            let keep = query.statements[segment.range.end..]
                .iter()
                .any(|s| s.uses_refs());
            if let Err(failure) = clock.absorb(replies, statements, keep.then_some(&mut refs)) {
                // A COMMIT in the same pipeline already ended the transaction.
                if !failure.lost() && framed && !segment.commits {
                    let _ = self.client.query(&self.prepared.rollback, &[]).await;
                }
                return Err(failure);
            }
            start = segment.range.end;
        }
        Ok(clock.outcome())
    }

    /// Send one segment back to back and wait for every reply: the frame's
    /// opening, the statements with `params`, `COMMIT` (as `segment` says).
    /// Returns where the statements' replies start, and the replies.
    async fn send_segment<'a>(
        &'a self,
        qi: usize,
        tenant: &'a str,
        segment: &Segment,
        params: Vec<Vec<&'a (dyn ToSql + Sync)>>,
    ) -> (usize, Vec<Reply>) {
        let client = &self.client;
        let mut pipeline: Vec<Timed<'a>> = Vec::with_capacity(segment.range.len() + 3);
        if segment.opens {
            pipeline.push(Box::pin(timed(client.query(&self.prepared.begin, &[]))));
            if let Some((set, setting)) = self.set_tenant(tenant) {
                pipeline.push(Box::pin(async move {
                    match setting {
                        Some(setting) => timed(client.query(set, &[setting, &tenant])).await,
                        None => timed(client.query(set, &[])).await,
                    }
                }));
            }
        }
        let prefix = pipeline.len();
        let statements = &self.statements[qi][segment.range.clone()];
        for (stmt, values) in statements.iter().zip(params) {
            pipeline.push(Box::pin(
                async move { timed(client.query(stmt, &values)).await },
            ));
        }
        if segment.commits {
            pipeline.push(Box::pin(timed(client.query(&self.prepared.commit, &[]))));
        }
        (prefix, join_all(pipeline).await)
    }
}

/// Statements sent together (up to one that needs a returned value), and
/// whether the frame opens or commits with them.
struct Segment {
    range: Range<usize>,
    opens: bool,
    commits: bool,
}

/// End (exclusive) of the segment starting at `start`: statements up to the
/// next one that needs a value returned before it.
pub(super) fn segment_end(query: &Query, start: usize) -> usize {
    query.statements[start + 1..]
        .iter()
        .position(|s| s.uses_refs())
        .map_or(query.statements.len(), |k| start + 1 + k)
}

/// Bound to a `ref` parameter whose statement returned no row.
static NULL: Value = Value::Null;

/// The parameters of the statements in `range`, borrowed (nothing is
/// cloned): each `ref` parameter from what an earlier statement returned.
pub(super) fn bind<'a>(
    query: &Query,
    values: &'a [Vec<Value>],
    refs: &'a HashMap<String, Value>,
    range: Range<usize>,
) -> Vec<Vec<&'a (dyn ToSql + Sync)>> {
    range
        .map(|i| {
            query.statements[i]
                .params
                .iter()
                .zip(&values[i])
                .map(|(p, v)| -> &'a (dyn ToSql + Sync) {
                    match p {
                        Param::Ref(name) => refs.get(name).unwrap_or(&NULL),
                        _ => v,
                    }
                })
                .collect()
        })
        .collect()
}

/// A pipelined request's reply and when it arrived.
type Reply = (
    std::result::Result<Vec<Row>, tokio_postgres::Error>,
    Instant,
);

/// A pipelined request.
type Timed<'a> = std::pin::Pin<Box<dyn std::future::Future<Output = Reply> + Send + 'a>>;

/// One transaction's clock: the whole, and each statement from the previous
/// reply (or the start) to its own reply.
struct StatementClock {
    started: Instant,
    last: Instant,
    statement_us: Vec<u64>,
}

impl StatementClock {
    fn new(statements: usize) -> StatementClock {
        let started = Instant::now();
        StatementClock {
            started,
            last: started,
            statement_us: Vec::with_capacity(statements),
        }
    }

    /// Take a segment's replies: time the statements' (at `statements` in
    /// the list) and keep what their first row returns for later refs (when
    /// `refs` is given). The first failure is the cause; later ones say the
    /// transaction aborted.
    fn absorb(
        &mut self,
        replies: Vec<Reply>,
        statements: Range<usize>,
        mut refs: Option<&mut HashMap<String, Value>>,
    ) -> std::result::Result<(), TxError> {
        let mut failure: Option<TxError> = None;
        for (j, (result, at)) in replies.into_iter().enumerate() {
            match result {
                Ok(rows) if statements.contains(&j) => {
                    self.statement_us
                        .push(micros(at.saturating_duration_since(self.last)));
                    self.last = at;
                    if let (Some(row), Some(refs)) = (rows.first(), refs.as_deref_mut()) {
                        collect_refs(row, refs);
                    }
                }
                Ok(_) => self.last = self.last.max(at),
                Err(e) => {
                    failure.get_or_insert_with(|| TxError::from_pg(&e));
                }
            }
        }
        failure.map_or(Ok(()), Err)
    }

    fn outcome(self) -> TxOutcome {
        TxOutcome {
            total_us: micros(self.started.elapsed()),
            statement_us: self.statement_us,
        }
    }
}

impl Conn {
    /// Simple protocol: each segment (up to a statement that needs a returned
    /// value) goes as one text message with literals — the frame's opening,
    /// statements, COMMIT — so one round trip and one reply per segment.
    /// Statement latencies are the segment's time.
    async fn run_simple(
        &mut self,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> std::result::Result<TxOutcome, TxError> {
        let n = query.statements.len();
        let framed = self.frame.frames(n);
        let started = Instant::now();
        let mut refs: HashMap<String, Value> = HashMap::new();
        let mut statement_us = Vec::with_capacity(n);
        let mut start = 0;
        while start < n {
            let end = segment_end(query, start);
            let mut text = if framed && start == 0 {
                self.frame.open_text(tenant)
            } else {
                String::new()
            };
            text.push_str(&with_literals(query, values, &refs, start..end));
            if framed && end == n {
                text.push_str(&self.frame.commit_text());
            }
            let seg_started = Instant::now();
            match self.client.simple_query(&text).await {
                Ok(messages) => {
                    let us = micros(seg_started.elapsed());
                    statement_us.extend((start..end).map(|_| us));
                    collect_simple_refs(messages, &mut refs);
                }
                Err(e) => {
                    let err = TxError::from_pg(&e);
                    if !err.lost() && framed {
                        let _ = self.client.simple_query(frame::ROLLBACK).await;
                    }
                    return Err(err);
                }
            }
            start = end;
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
        // The parameter list on the stack (a heap list only past 8): one
        // allocation fewer per transaction.
        let mut inline: [&(dyn ToSql + Sync); 8] = [&NULL; 8];
        let heap: Vec<&(dyn ToSql + Sync)>;
        let params: &[&(dyn ToSql + Sync)] = if values.len() <= inline.len() {
            for (slot, v) in inline.iter_mut().zip(values) {
                *slot = v;
            }
            &inline[..values.len()]
        } else {
            heap = values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
            &heap
        };
        let stmt = &self.statements[qi][0];
        let client = &self.client;
        let started = Instant::now();
        let Some((set, setting)) = self.set_tenant(tenant) else {
            client
                .execute(stmt, params)
                .await
                .map_err(|e| TxError::from_pg(&e))?;
            let us = micros(started.elapsed());
            return Ok(TxOutcome {
                total_us: us,
                statement_us: vec![us],
            });
        };
        // No allocation on the hot path: set_config's two parameters, or none.
        let pair: [&(dyn ToSql + Sync); 2];
        let set_params: &[&(dyn ToSql + Sync)] = match setting {
            Some(setting) => {
                pair = [setting, &tenant];
                &pair
            }
            None => &[],
        };
        let (begin, set, (result, at), commit) = tokio::join!(
            client.execute(&self.prepared.begin, &[]),
            timed(client.execute(set, set_params)),
            timed(client.execute(stmt, params)),
            client.execute(&self.prepared.commit, &[])
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

/// The statements in `range` as simple-protocol text: `$n` replaced by
/// quoted literals (refs from what earlier segments returned), each ended
/// by `;`.
fn with_literals(
    query: &Query,
    values: &[Vec<Value>],
    refs: &HashMap<String, Value>,
    range: Range<usize>,
) -> String {
    let mut text = String::new();
    for (st, vals) in query.statements[range.clone()].iter().zip(&values[range]) {
        let sql = crate::workload::substitute_at(&st.sql, &st.slots, |k| {
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
    text
}

/// Every column of every row a simple-protocol reply holds, by name (the
/// last row wins), for later `ref` parameters.
fn collect_simple_refs(
    messages: Vec<tokio_postgres::SimpleQueryMessage>,
    refs: &mut HashMap<String, Value>,
) {
    for m in messages {
        if let tokio_postgres::SimpleQueryMessage::Row(row) = m {
            for (c, col) in row.columns().iter().enumerate() {
                let v = row
                    .get(c)
                    .map_or(Value::Null, |t| Value::Text(t.to_string()));
                refs.insert(col.name().to_string(), v);
            }
        }
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
