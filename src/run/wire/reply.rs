//! What the server answers: its errors (SQLSTATE, message, and whether the
//! session ended with them), and a first row's columns as text values for
//! later `ref` parameters.

use std::collections::HashMap;

use fallible_iterator::FallibleIterator;
use postgres_protocol::message::backend::{DataRowBody, ErrorResponseBody};

use crate::error::Error;
use crate::run::conn::{CLIENT_ERROR, CONNECTION_LOST, TxError};
use crate::workload::params::Value;

/// An error the server sent.
#[derive(Debug, Clone)]
pub(super) struct DbError {
    /// SQLSTATE.
    pub(super) code: String,
    /// The message.
    pub(super) message: String,
    /// FATAL or PANIC: the server closes the session after it.
    pub(super) fatal: bool,
}

impl From<&ErrorResponseBody> for DbError {
    fn from(body: &ErrorResponseBody) -> DbError {
        let mut e = DbError {
            code: String::new(),
            message: String::new(),
            fatal: false,
        };
        let mut fields = body.fields();
        while let Ok(Some(f)) = fields.next() {
            let value = String::from_utf8_lossy(f.value_bytes());
            match f.type_() {
                b'C' => e.code = value.into_owned(),
                b'M' => e.message = value.into_owned(),
                // 'V' is the untranslated severity; 'S' may be localised.
                b'V' => e.fatal = matches!(&*value, "FATAL" | "PANIC"),
                _ => {}
            }
        }
        e
    }
}

impl DbError {
    /// As a library error while doing `context`.
    pub(super) fn into_error(self, context: String) -> Error {
        Error::Server {
            context,
            sqlstate: self.code,
            message: self.message,
        }
    }

    /// As a transaction's failure.
    pub(super) fn into_tx(self) -> TxError {
        TxError {
            code: self.code,
            message: self.message,
        }
    }
}

/// Why a statement or a batch failed: the server said so, or the
/// connection broke under it.
#[derive(Debug)]
pub(super) enum Failure {
    Db(DbError),
    Io(std::io::Error),
    /// A reply the protocol does not allow here.
    Protocol(String),
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Failure {
        Failure::Io(e)
    }
}

impl Failure {
    /// As a library error while doing `context`.
    pub(super) fn into_error(self, context: String) -> Error {
        match self {
            Failure::Db(e) => e.into_error(context),
            Failure::Io(e) => Error::ConnectionLost {
                context,
                detail: e.to_string(),
            },
            Failure::Protocol(detail) => Error::Driver { context, detail },
        }
    }

    /// As a transaction's failure: a broken connection is lost (the driver
    /// reconnects), and so is one that sent a reply out of place (its state
    /// is unknown, so it is not used again).
    pub(super) fn into_tx(self) -> TxError {
        match self {
            Failure::Db(e) => e.into_tx(),
            Failure::Io(e) => TxError {
                code: CONNECTION_LOST.into(),
                message: e.to_string(),
            },
            Failure::Protocol(detail) => TxError {
                code: CONNECTION_LOST.into(),
                message: format!("{CLIENT_ERROR}: {detail}"),
            },
        }
    }
}

/// A row's `wanted` columns ((index, name), by index; text format) into
/// `refs`, as [`crate::workload::params::collect_refs`] does for the other
/// protocols.
pub(super) fn collect_refs(
    row: &DataRowBody,
    wanted: &[(usize, String)],
    refs: &mut HashMap<String, Value>,
) {
    let buf = row.buffer();
    let mut ranges = row.ranges();
    let mut wanted = wanted.iter().peekable();
    let mut index = 0;
    while let (Ok(Some(range)), Some((at, name))) = (ranges.next(), wanted.peek()) {
        if index == *at {
            let v = match range {
                Some(r) => Value::Text(String::from_utf8_lossy(&buf[r]).into_owned()),
                None => Value::Null,
            };
            refs.insert(name.clone(), v);
            wanted.next();
        }
        index += 1;
    }
}
