//! `--protocol pipeline`: the driver's hot path on the PostgreSQL wire
//! protocol itself (message codecs and SCRAM from `postgres-protocol`), so a
//! tenant frame goes as pgbench's pipeline mode sends it — `BEGIN`,
//! `set_config`, every statement that needs no earlier reply, `COMMIT` — as
//! Bind/Execute pairs ending in ONE Sync, where tokio-postgres ends every
//! statement with its own Sync (a Sync, ReadyForQuery and flush per
//! statement on the server). A frame splits only where a statement needs a
//! value returned earlier. Statements are parsed once per connection under
//! their own names; parameters and results travel as text, as the server
//! types them. After an error the server skips to the Sync: the error
//! belongs to the statement whose reply it replaced, and a transaction left
//! open is rolled back. Only the driver's benchmark connections use this;
//! everything else stays on tokio-postgres.

mod batch;
mod io;
mod reply;
mod startup;

use std::collections::HashMap;

use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::error::Result;
use crate::pg::ConnSpec;
use crate::workload::Workload;
use crate::workload::frame::{self, TenantFrame};
use io::Io;
use reply::{DbError, Failure};

/// A statement parsed on the connection: its name and result columns.
#[derive(Debug, Clone)]
struct Named {
    name: String,
    columns: Vec<String>,
}

/// One benchmark connection on the wire protocol.
pub struct Pipe {
    io: Io,
    frame: TenantFrame,
    /// `set_config(setting, tenant, true)`, when the frame uses it.
    set_tenant: Option<Named>,
    begin: Named,
    commit: Named,
    /// Per query, per statement.
    statements: Vec<Vec<Named>>,
    /// A `SET LOCAL` frame's statement per tenant, parsed on first use.
    set_local: HashMap<String, Named>,
}

impl Pipe {
    /// Connect and parse the frame's and every workload statement.
    pub async fn open(spec: &ConnSpec, workload: &Workload) -> Result<Pipe> {
        let mut io = startup::open(spec).await?;
        let frame = TenantFrame::for_workload(workload);
        let uses_set_config = frame.setting().is_some() && frame.set_local_sql("").is_none();
        let mut list: Vec<(String, &str)> =
            vec![("b".into(), frame::BEGIN), ("c".into(), frame::COMMIT)];
        if uses_set_config {
            list.push(("t".into(), frame::SET_TENANT));
        }
        for (qi, q) in workload.queries.iter().enumerate() {
            for (si, st) in q.statements.iter().enumerate() {
                list.push((format!("q{qi}_{si}"), st.sql.as_str()));
            }
        }
        let mut named = parse(&mut io, &list)
            .await
            .map_err(|(sql, f)| f.into_error(format!("preparing `{sql}` on {}", spec.label)))?;
        let mut take = || named.remove(0);
        let (begin, commit) = (take(), take());
        let set_tenant = uses_set_config.then(&mut take);
        let statements = workload
            .queries
            .iter()
            .map(|q| q.statements.iter().map(|_| take()).collect())
            .collect();
        Ok(Pipe {
            io,
            frame,
            set_tenant,
            begin,
            commit,
            statements,
            set_local: HashMap::new(),
        })
    }

    /// A `SET LOCAL` frame: parse this tenant's statement once (a round trip
    /// the first time only), so the frame stays one batch.
    async fn prepare_set_local(&mut self, tenant: &str) -> std::result::Result<(), Failure> {
        if self.set_local.contains_key(tenant) {
            return Ok(());
        }
        let Some(sql) = self.frame.set_local_sql(tenant) else {
            return Ok(());
        };
        let name = format!("l{}", self.set_local.len());
        let mut named = parse(&mut self.io, &[(name, sql.as_str())])
            .await
            .map_err(|(_, f)| f)?;
        if let Some(n) = named.pop() {
            self.set_local.insert(tenant.to_string(), n);
        }
        Ok(())
    }
}

/// Parse and describe `list` (name, SQL) in one batch; the columns of each.
/// On failure, the statement that failed and why.
async fn parse<'a>(
    io: &mut Io,
    list: &[(String, &'a str)],
) -> std::result::Result<Vec<Named>, (&'a str, Failure)> {
    let first = list.first().map_or("", |l| l.1);
    for (name, sql) in list {
        let encoded = frontend::parse(name, sql, std::iter::empty(), &mut io.write)
            .and_then(|()| frontend::describe(b'S', name, &mut io.write));
        encoded.map_err(|e| (*sql, Failure::Io(e)))?;
    }
    frontend::sync(&mut io.write);
    io.send().await.map_err(|e| (first, Failure::Io(e)))?;
    // Each described statement's columns, in order.
    let mut named: Vec<Vec<String>> = Vec::with_capacity(list.len());
    let mut failure = None;
    loop {
        let at = list.get(named.len()).map_or(first, |l| l.1);
        match io.recv().await.map_err(|e| (at, Failure::Io(e)))? {
            Message::ReadyForQuery(_) => break,
            Message::RowDescription(body) => {
                let mut columns = Vec::new();
                let mut fields = body.fields();
                while let Ok(Some(f)) = fallible_iterator::FallibleIterator::next(&mut fields) {
                    columns.push(f.name().to_string());
                }
                named.push(columns);
            }
            Message::NoData => named.push(Vec::new()),
            Message::ErrorResponse(body) => {
                let e = DbError::from(&body);
                let fatal = e.fatal;
                failure = Some((at, Failure::Db(e)));
                if fatal {
                    break;
                }
            }
            _ => {}
        }
    }
    match failure {
        Some(f) => Err(f),
        None if named.len() == list.len() => Ok(list
            .iter()
            .zip(named)
            .map(|((name, _), columns)| Named {
                name: name.clone(),
                columns,
            })
            .collect()),
        None => Err((
            first,
            Failure::Protocol("a statement was not described".into()),
        )),
    }
}

/// Run `sql` with the simple protocol and wait for ReadyForQuery (`SET
/// ROLE`, `ROLLBACK`).
async fn simple(io: &mut Io, sql: &str) -> std::result::Result<(), Failure> {
    frontend::query(sql, &mut io.write)?;
    io.send().await?;
    let mut failure = None;
    loop {
        match io.recv().await? {
            Message::ReadyForQuery(_) => break,
            Message::ErrorResponse(body) => {
                let e = DbError::from(&body);
                let fatal = e.fatal;
                failure = Some(Failure::Db(e));
                if fatal {
                    break;
                }
            }
            _ => {}
        }
    }
    failure.map_or(Ok(()), Err)
}
