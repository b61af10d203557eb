//! One transaction on a [`Pipe`]: each segment of the frame (up to a
//! statement that needs a value returned earlier) as Bind/Execute pairs and
//! one Sync, then the replies read in order: each statement timed at its
//! CommandComplete, the first row kept for later refs, and the first error
//! attributed to the statement whose reply it replaced.

use std::collections::HashMap;
use std::time::Instant;

use postgres_protocol::IsNull;
use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use super::reply::{self, DbError, Failure};
use super::{Named, Pipe};
use crate::run::conn::{TxError, TxOutcome, segment_end};
use crate::workload::params::Value;
use crate::workload::{Param as WorkloadParam, Query};

/// Bound to a `ref` parameter whose statement returned no row.
static NULL: Value = Value::Null;

/// One Execute of a batch: a frame statement or the query's `i`th.
#[derive(Clone, Copy)]
pub(super) enum Item {
    Frame,
    Statement(usize),
}

impl Pipe {
    /// Run query `qi` once with `values[statement][param]` (refs resolved here).
    pub async fn run(
        &mut self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> Result<TxOutcome, TxError> {
        // The reused buffers, lent to this transaction and given back.
        let (mut refs, mut items) = (
            std::mem::take(&mut self.refs),
            std::mem::take(&mut self.items),
        );
        refs.clear();
        let result = self
            .run_frame(qi, query, tenant, values, (&mut refs, &mut items))
            .await;
        (self.refs, self.items) = (refs, items);
        result.map_err(Failure::into_tx)
    }

    async fn run_frame(
        &mut self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
        (refs, items): (&mut HashMap<String, Value>, &mut Vec<Item>),
    ) -> Result<TxOutcome, Failure> {
        self.prepare_set_local(tenant).await?;
        let n = query.statements.len();
        let framed = self.frame.frames(n);
        let started = Instant::now();
        let mut clock = Clock {
            last: started,
            statement_us: Vec::with_capacity(n),
        };
        let mut start = 0;
        while start < n {
            let end = segment_end(query, start);
            items.clear();
            if framed && start == 0 {
                self.encode_opening(tenant, items)?;
            }
            let segment = query.statements[start..end].iter().zip(&values[start..end]);
            for (i, (statement, drawn)) in (start..end).zip(segment) {
                let named = &self.statements[qi][i];
                let params = statement.params.iter().zip(drawn);
                let resolved = params.map(|(p, v)| match p {
                    WorkloadParam::Ref(name) => Param::from(refs.get(name).unwrap_or(&NULL)),
                    _ => Param::from(v),
                });
                encode(&mut self.io.write, named, resolved)?;
                items.push(Item::Statement(i));
            }
            let commits = framed && end == n;
            if commits {
                encode(&mut self.io.write, &self.commit, std::iter::empty())?;
                items.push(Item::Frame);
            }
            frontend::sync(&mut self.io.write);
            self.io.send().await?;
            self.read_replies(qi, items, &mut clock, refs).await?;
            start = end;
        }
        Ok(TxOutcome {
            total_us: micros(started),
            statement_us: clock.statement_us,
        })
    }

    /// `BEGIN` and the tenant's setting.
    fn encode_opening(&mut self, tenant: &str, items: &mut Vec<Item>) -> Result<(), Failure> {
        encode(&mut self.io.write, &self.begin, std::iter::empty())?;
        items.push(Item::Frame);
        if let Some(named) = self.set_local.get(tenant) {
            encode(&mut self.io.write, named, std::iter::empty())?;
            items.push(Item::Frame);
        } else if let (Some(named), Some(setting)) = (&self.set_tenant, self.frame.setting()) {
            // Borrowed as they are: no copy of the tenant per transaction.
            let params = [Param::Text(setting), Param::Text(tenant)];
            encode(&mut self.io.write, named, params.into_iter())?;
            items.push(Item::Frame);
        }
        Ok(())
    }

    /// Read the batch's replies up to ReadyForQuery. On an error, the
    /// transaction is ended if the batch left it open, and the error is the
    /// statement's whose reply it replaced.
    async fn read_replies(
        &mut self,
        qi: usize,
        items: &[Item],
        clock: &mut Clock,
        refs: &mut HashMap<String, Value>,
    ) -> Result<(), Failure> {
        let mut failure: Option<Failure> = None;
        let mut k = 0;
        let mut row_taken = false;
        let status = loop {
            // Acknowledgements and unread rows are skipped unparsed.
            let wanted = |k: usize| match items.get(k) {
                Some(Item::Statement(i)) => !self.statements[qi][*i].refs.is_empty(),
                _ => false,
            };
            match self.io.peek().await? {
                b'2' => {
                    self.io.skip();
                    row_taken = false;
                    continue;
                }
                b'C' | b'I' => {
                    self.io.skip();
                    clock.reply(items.get(k).copied(), items.get(k + 1).copied());
                    k += 1;
                    continue;
                }
                b'D' if row_taken || !wanted(k) => {
                    self.io.skip();
                    continue;
                }
                b'Z' => {
                    let status = self.io.ready_status();
                    self.io.skip();
                    break status;
                }
                _ => {}
            }
            let message = self.io.recv().await?;
            match message {
                Message::BindComplete => row_taken = false,
                Message::DataRow(row) => {
                    if let (Some(Item::Statement(i)), false) = (items.get(k), row_taken) {
                        let wanted = &self.statements[qi][*i].refs;
                        if !wanted.is_empty() {
                            reply::collect_refs(&row, wanted, refs);
                        }
                        row_taken = true;
                    }
                }
                Message::CommandComplete(_) | Message::EmptyQueryResponse => {
                    clock.reply(items.get(k).copied(), items.get(k + 1).copied());
                    k += 1;
                }
                Message::ErrorResponse(body) => {
                    let e = DbError::from(&body);
                    if e.fatal {
                        // The server closes the session: nothing more comes.
                        return Err(failure.unwrap_or(Failure::Db(e)));
                    }
                    failure.get_or_insert(Failure::Db(e));
                }
                Message::ReadyForQuery(body) => break body.status(),
                other => {
                    let what = format!("unexpected message in a batch: {}", tag(&other));
                    return Err(Failure::Protocol(what));
                }
            }
        };
        match failure {
            None => Ok(()),
            Some(f) => {
                // Still in the (failed) transaction: end it cleanly.
                if status != b'I' {
                    super::simple(&mut self.io, super::frame::ROLLBACK).await?;
                }
                Err(f)
            }
        }
    }
}

/// The protocol tag of an unexpected message, for the error.
fn tag(m: &Message) -> &'static str {
    match m {
        Message::ParseComplete => "ParseComplete",
        Message::RowDescription(_) => "RowDescription",
        Message::PortalSuspended => "PortalSuspended",
        Message::CopyInResponse(_) | Message::CopyOutResponse(_) => "COPY",
        _ => "another reply",
    }
}

/// A parameter as sent: text, binary (a raw value the server returned), or NULL.
#[derive(Clone, Copy)]
enum Param<'a> {
    Text(&'a str),
    Binary(&'a [u8]),
    Null,
}

impl<'a> From<&'a Value> for Param<'a> {
    fn from(v: &'a Value) -> Param<'a> {
        match v {
            Value::Text(s) => Param::Text(s),
            Value::Raw(_, b) => Param::Binary(b),
            Value::Null => Param::Null,
        }
    }
}

/// Bind `named` with `values` to the unnamed portal and execute it,
/// results as text.
fn encode<'v>(
    buf: &mut bytes::BytesMut,
    named: &Named,
    values: impl Iterator<Item = Param<'v>> + Clone,
) -> Result<(), Failure> {
    let formats = values
        .clone()
        .map(|v| i16::from(matches!(v, Param::Binary(_))));
    let bound = frontend::bind(
        "",
        &named.name,
        formats,
        values,
        |v, out| {
            Ok(match v {
                Param::Text(s) => {
                    out.extend_from_slice(s.as_bytes());
                    IsNull::No
                }
                Param::Binary(b) => {
                    out.extend_from_slice(b);
                    IsNull::No
                }
                Param::Null => IsNull::Yes,
            })
        },
        std::iter::empty(),
        buf,
    );
    match bound {
        Ok(()) => {}
        Err(frontend::BindError::Conversion(e)) => return Err(Failure::Protocol(e.to_string())),
        Err(frontend::BindError::Serialization(e)) => return Err(Failure::Io(e)),
    }
    frontend::execute("", 0, buf)?;
    Ok(())
}

/// Each statement's latency: from the previous reply (or the start) to its
/// own CommandComplete.
struct Clock {
    last: Instant,
    statement_us: Vec<u64>,
}

impl Clock {
    /// A reply to `item`, followed by `next`'s. The clock is read only when
    /// a statement's latency starts or ends here: not at `BEGIN` before
    /// `set_config`, nor at `COMMIT` (the whole is timed apart), which saves
    /// two of a framed lookup's five reads of the clock.
    fn reply(&mut self, item: Option<Item>, next: Option<Item>) {
        let is_statement = |i: Option<Item>| matches!(i, Some(Item::Statement(_)));
        if !is_statement(item) && !is_statement(next) {
            return;
        }
        let at = Instant::now();
        if is_statement(item) {
            self.statement_us.push(
                u64::try_from(at.saturating_duration_since(self.last).as_micros())
                    .unwrap_or(u64::MAX),
            );
        }
        self.last = at;
    }
}

fn micros(since: Instant) -> u64 {
    u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX)
}
