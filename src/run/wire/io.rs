//! Framed reading and writing of protocol messages on one stream (plain TCP,
//! a Unix socket or TLS): a write buffer sent in one go, and a read buffer
//! from which whole backend messages are parsed. Messages crmbench never
//! acts on (notices, parameter changes, notifications) are dropped here, so
//! callers see only replies.

use std::io;

use bytes::{Buf, BytesMut};
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
                None => self.fill().await?,
            }
        }
    }

    /// The tag of the next reply, once it is whole in the buffer, without
    /// taking it: the caller then [`Io::skip`]s it or [`Io::recv`]s it. A
    /// batch's acknowledgements (BindComplete, CommandComplete, rows nobody
    /// reads, ReadyForQuery) are skipped this way: parsing each into a
    /// message split a shared buffer off the read buffer (a reference count
    /// and, now and then, an allocation), a tenth of a lookup's client CPU.
    pub(super) async fn peek(&mut self) -> io::Result<u8> {
        loop {
            match self.whole()? {
                Some(b'N' | b'S' | b'A') => self.skip(),
                Some(tag) => return Ok(tag),
                None => self.fill().await?,
            }
        }
    }

    /// Drop the whole message [`Io::peek`] found.
    pub(super) fn skip(&mut self) {
        if let Ok(Some(_)) = self.whole() {
            let len = self.len();
            self.read.advance(1 + len);
        }
    }

    /// The transaction status byte of the ReadyForQuery [`Io::peek`] found.
    pub(super) fn ready_status(&self) -> u8 {
        self.read.get(5).copied().unwrap_or(b'I')
    }

    /// The length field of the buffered message (itself included).
    fn len(&self) -> usize {
        match self.read.get(1..5) {
            Some(&[a, b, c, d]) => u32::from_be_bytes([a, b, c, d]) as usize,
            _ => 0,
        }
    }

    /// The tag when a whole message is buffered.
    fn whole(&self) -> io::Result<Option<u8>> {
        if self.read.len() < 5 {
            return Ok(None);
        }
        let len = self.len();
        if len < 4 {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "invalid message length",
            ));
        }
        Ok((self.read.len() > len).then(|| self.read[0]))
    }

    /// Read more from the stream; an error when the server closed.
    async fn fill(&mut self) -> io::Result<()> {
        self.read.reserve(8 * 1024);
        if self.stream.read_buf(&mut self.read).await? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "the server closed the connection",
            ));
        }
        Ok(())
    }
}
