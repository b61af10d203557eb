//! A driver client's benchmark connection, by `--protocol`: tokio-postgres
//! (prepared statements, or simple text) in [`super::conn`], or the wire
//! protocol's pipeline in [`super::wire`]. The client loop runs either the
//! same way.

use tokio_postgres::Client;

use super::conn::{Conn, TxError, TxOutcome};
use super::wire::Pipe;
use crate::error::Result;
use crate::pg::ConnSpec;
use crate::workload::params::Value;
use crate::workload::{Query, Workload};

/// How the driver sends a transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// tokio-postgres, prepared statements, each with its own Sync.
    Prepared,
    /// tokio-postgres, one text message per segment with literals.
    Simple,
    /// The wire protocol, prepared statements, one Sync per segment.
    Pipeline,
}

/// One benchmark connection.
pub enum Session {
    /// On tokio-postgres.
    Driver(Conn),
    /// On the wire protocol.
    Wire(Pipe),
}

impl Session {
    /// Connect and prepare every statement of `workload`.
    pub async fn open(spec: &ConnSpec, workload: &Workload, mode: Mode) -> Result<Session> {
        Ok(match mode {
            Mode::Pipeline => Session::Wire(Pipe::open(spec, workload).await?),
            Mode::Prepared => Session::Driver(Conn::open(spec, workload, false).await?),
            Mode::Simple => Session::Driver(Conn::open(spec, workload, true).await?),
        })
    }

    /// Run query `qi` once with `values[statement][param]`.
    pub async fn run(
        &mut self,
        qi: usize,
        query: &Query,
        tenant: &str,
        values: &[Vec<Value>],
    ) -> std::result::Result<TxOutcome, TxError> {
        match self {
            Session::Driver(c) => c.run(qi, query, tenant, values).await,
            Session::Wire(p) => p.run(qi, query, tenant, values).await,
        }
    }

    /// The tokio-postgres client for crmbench's own bookkeeping (WAL
    /// positions for read-your-writes); none on the wire protocol.
    pub fn client(&self) -> Option<&Client> {
        match self {
            Session::Driver(c) => Some(c.client()),
            Session::Wire(_) => None,
        }
    }
}
