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
mod unix;

use std::collections::HashMap;

use postgres_protocol::message::backend::Message;
use postgres_protocol::message::frontend;

use crate::error::Result;
use crate::pg::ConnSpec;
use crate::workload::frame::{self, TenantFrame};
use crate::workload::params::Value;
use crate::workload::{Param, Query, Workload};
use io::Io;
use reply::{DbError, Failure};

/// A statement parsed on the connection: its name, and the result columns
/// a later statement of its query takes as a `ref` (index, name) — only
/// those are read from its first row, so a query without refs reads none.
#[derive(Debug, Clone)]
struct Named {
    name: String,
    refs: Vec<(usize, String)>,
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
    /// Reused by every transaction (cleared, capacity kept): the values
    /// returned for later refs, and what each Execute of a batch is.
    refs: HashMap<String, Value>,
    items: Vec<batch::Item>,
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
            .map(|q| {
                let mut list: Vec<Named> = q.statements.iter().map(|_| take()).collect();
                keep_referenced(q, &mut list);
                list
            })
            .collect();
        Ok(Pipe {
            io,
            frame,
            set_tenant,
            begin,
            commit,
            statements,
            set_local: HashMap::new(),
            refs: HashMap::new(),
            items: Vec::new(),
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

/// Keep of each statement's columns only those a later statement of `query`
/// takes as a `ref`: copying every column of every first row into the refs
/// map (hashing, two allocations each) was a tenth of a lookup's client CPU.
fn keep_referenced(query: &Query, list: &mut [Named]) {
    for (i, named) in list.iter_mut().enumerate() {
        let later: Vec<&str> = query.statements[i + 1..]
            .iter()
            .flat_map(|st| &st.params)
            .filter_map(|p| match p {
                Param::Ref(name) => Some(name.as_str()),
                _ => None,
            })
            .collect();
        named
            .refs
            .retain(|(_, column)| later.contains(&column.as_str()));
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
                refs: columns.into_iter().enumerate().collect(),
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

#[cfg(test)]
mod tests {
    use super::*;

    fn named(columns: &[&str]) -> Named {
        Named {
            name: String::new(),
            refs: columns.iter().map(|c| c.to_string()).enumerate().collect(),
        }
    }

    // Every column of every first row used to be copied into the refs map;
    // only those a later statement takes are read now, and a later
    // statement's same-named column still replaces an earlier one's.
    #[test]
    fn only_the_columns_a_later_statement_takes_are_kept() {
        let w = Workload::parse(
            r#"
name = "refs"
[[query]]
name = "q"
kind = "write"
[[query.statements]]
sql = "SELECT 1 AS x, 2 AS tid, 3 AS dbl"
[[query.statements]]
sql = "SELECT $1::int AS tid, 4 AS y"
params = [{ ref = "dbl" }]
[[query.statements]]
sql = "SELECT $1::int AS n"
params = [{ ref = "tid" }]
"#,
            std::path::Path::new("refs.toml"),
        )
        .unwrap();
        let mut list = vec![
            named(&["x", "tid", "dbl"]),
            named(&["tid", "y"]),
            named(&["n"]),
        ];
        keep_referenced(&w.queries[0], &mut list);
        let refs: Vec<Vec<(usize, String)>> = list.into_iter().map(|n| n.refs).collect();
        assert_eq!(
            refs,
            [
                vec![(1, "tid".to_string()), (2, "dbl".to_string())],
                vec![(0, "tid".to_string())],
                vec![],
            ]
        );
    }
}
