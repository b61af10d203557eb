//! Framed reading and writing of protocol messages on one stream (plain TCP,
//! a Unix socket or TLS): a write buffer sent in one go, and a read buffer
//! from which whole backend messages are parsed. Messages crmbench never
//! acts on (notices, parameter changes, notifications) are dropped here, so
//! callers see only replies.

use std::io;

use bytes::BytesMut;
use postgres_protocol::message::backend::Message;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// A byte stream both ways.
pub(super) trait Duplex: AsyncRead + AsyncWrite + Unpin + Send + Sync {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send + Sync> Duplex for T {}

/// One connection's stream with its buffers.
pub(super) struct Io {
    stream: Box<dyn Duplex>,
    read: BytesMut,
    /// Messages to send: built by the caller, sent by [`Io::send`].
    pub(super) write: BytesMut,
}

impl Io {
    pub(super) fn new(stream: Box<dyn Duplex>) -> Io {
        Io {
            stream,
            read: BytesMut::with_capacity(16 * 1024),
            write: BytesMut::with_capacity(4 * 1024),
        }
    }

    /// Send everything in the write buffer.
    pub(super) async fn send(&mut self) -> io::Result<()> {
        self.stream.write_all(&self.write).await?;
        self.stream.flush().await?;
        self.write.clear();
        Ok(())
    }

    /// The next backend message that is a reply (notices, parameter status
    /// and notifications skipped); an error when the server closed.
    pub(super) async fn recv(&mut self) -> io::Result<Message> {
        loop {
            match Message::parse(&mut self.read)? {
                Some(Message::NoticeResponse(_))
                | Some(Message::ParameterStatus(_))
                | Some(Message::NotificationResponse(_)) => continue,
                Some(m) => return Ok(m),
                None => {
                    self.read.reserve(8 * 1024);
                    if self.stream.read_buf(&mut self.read).await? == 0 {
                        return Err(io::Error::new(
                            io::ErrorKind::UnexpectedEof,
                            "the server closed the connection",
                        ));
                    }
                }
            }
        }
    }
}
