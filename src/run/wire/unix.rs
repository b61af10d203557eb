//! A Unix-socket stream that the runtime watches for replies only.
//!
//! tokio registers a socket for both directions, edge-triggered. On a Unix
//! socket the kernel signals "writable" each time the peer reads (the
//! sender's buffer space is given back as the server consumes a query), so a
//! client waiting for its reply was woken once more for nothing whenever the
//! server read its query before answering it: on pgbench's `-S` select,
//! 1.54 `epoll_wait` calls and context switches per transaction against
//! pgbench's 0.60 polls and 0.84 switches (pgbench polls for input only).
//! Here the socket is registered for reading only. A write that would block
//! (the server not reading; rare, a frame is small) waits on a duplicate of
//! the descriptor registered for writing, dropped once the write went
//! through.

use std::io::{self, Read, Write};
use std::net::Shutdown;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream as StdUnix;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, Interest, ReadBuf};

/// Bytes read per call at most: a reply to a lookup is a few hundred.
const SCRATCH: usize = 16 * 1024;

/// A connected Unix socket registered for reading.
pub(super) struct ReadOnlyUnix {
    read: AsyncFd<StdUnix>,
    /// A duplicate registered for writing, while a write waits for room.
    write: Option<AsyncFd<OwnedFd>>,
    /// Where a read lands before it is copied to the caller: reading into
    /// the caller's uninitialised buffer would need it zeroed first (or
    /// unsafe code), 16 kB per reply.
    scratch: Box<[u8]>,
}

impl ReadOnlyUnix {
    /// Take over `stream` from tokio's own registration.
    pub(super) fn new(stream: tokio::net::UnixStream) -> io::Result<ReadOnlyUnix> {
        // into_std leaves the socket non-blocking.
        let std = stream.into_std()?;
        Ok(ReadOnlyUnix {
            read: register(std, Interest::READABLE)?,
            write: None,
            scratch: vec![0; SCRATCH].into_boxed_slice(),
        })
    }
}

/// Register `fd` with the runtime for `interest`. tokio 1.54 deprecates the
/// safe constructor because a borrowed descriptor could be closed while
/// registered (its replacement is `unsafe`); both callers hand over a type
/// that owns its descriptor and closes it only when the `AsyncFd`, having
/// deregistered it, drops it, so the safe form is sound here.
#[allow(deprecated)]
fn register<T: std::os::fd::AsRawFd>(fd: T, interest: Interest) -> io::Result<AsyncFd<T>> {
    AsyncFd::with_interest(fd, interest)
}

impl AsyncRead for ReadOnlyUnix {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        loop {
            let mut guard = ready!(this.read.poll_read_ready(cx))?;
            let want = buf.remaining().min(this.scratch.len());
            let scratch = &mut this.scratch[..want];
            match guard.try_io(|fd| fd.get_ref().read(scratch)) {
                Ok(Ok(n)) => {
                    // A short read drained the socket: wait for the next
                    // event rather than a read that finds nothing (as
                    // tokio's own streams do; the kernel queues the edge of
                    // anything that arrived meanwhile).
                    if n > 0 && n < want {
                        guard.clear_ready();
                    }
                    buf.put_slice(&this.scratch[..n]);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for ReadOnlyUnix {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        data: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        loop {
            match this.read.get_ref().write(data) {
                Ok(n) => {
                    this.write = None;
                    return Poll::Ready(Ok(n));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
            let waiting = match this.write.take() {
                Some(w) => w,
                None => {
                    let dup = this.read.get_ref().as_fd().try_clone_to_owned()?;
                    register(dup, Interest::WRITABLE)?
                }
            };
            let waiting = this.write.insert(waiting);
            // Registration reports room that is already there, so a write
            // that failed just before it is not waited on forever.
            let mut guard = ready!(waiting.poll_write_ready(cx))?;
            guard.clear_ready();
        }
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.read.get_ref().shutdown(Shutdown::Write))
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read as _, Write as _};
    use std::time::Duration;

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    fn voluntary_switches() -> u64 {
        let status = std::fs::read_to_string("/proc/thread-self/status").unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("voluntary_ctxt_switches:"))
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    }

    /// The server's side: read each query once the client surely sleeps
    /// waiting for its reply, then answer it a little later.
    fn answer_late(mut peer: StdUnix, rounds: usize) {
        for _ in 0..rounds {
            let mut query = [0u8; 8];
            std::thread::sleep(Duration::from_millis(2));
            peer.read_exact(&mut query).unwrap();
            std::thread::sleep(Duration::from_millis(2));
            peer.write_all(&query).unwrap();
        }
    }

    /// Seen failing with tokio's own `UnixStream` in place of
    /// `ReadOnlyUnix` (two sleeps per round trip: 80 in 40).
    #[test]
    fn the_server_reading_a_query_does_not_wake_the_client() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, b) = StdUnix::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let rounds = 40;
            let server = std::thread::spawn(move || answer_late(b, rounds));
            let stream = tokio::net::UnixStream::from_std(a).unwrap();
            let mut client = ReadOnlyUnix::new(stream).unwrap();
            let before = voluntary_switches();
            for i in 0..rounds {
                let query = (i as u64).to_be_bytes();
                client.write_all(&query).await.unwrap();
                let mut reply = [0u8; 8];
                client.read_exact(&mut reply).await.unwrap();
                assert_eq!(reply, query);
            }
            let switches = voluntary_switches() - before;
            server.join().unwrap();
            assert!(
                switches <= rounds as u64 * 3 / 2,
                "{switches} sleeps in {rounds} round trips: woken when the server read a query"
            );
        });
    }

    /// A write larger than the socket's buffer waits for the server to read
    /// (on the duplicate registered for writing) and arrives whole.
    #[test]
    fn a_write_that_would_block_waits_for_room() {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let (a, mut b) = StdUnix::pair().unwrap();
            a.set_nonblocking(true).unwrap();
            let data: Vec<u8> = (0..4 * 1024 * 1024).map(|i| (i % 251) as u8).collect();
            let expected = data.clone();
            let server = std::thread::spawn(move || {
                let mut got = vec![0u8; expected.len()];
                b.read_exact(&mut got).unwrap();
                assert!(got == expected, "the bytes arrived changed");
                b.write_all(b"ok").unwrap();
            });
            let stream = tokio::net::UnixStream::from_std(a).unwrap();
            let mut client = ReadOnlyUnix::new(stream).unwrap();
            client.write_all(&data).await.unwrap();
            let mut reply = [0u8; 2];
            client.read_exact(&mut reply).await.unwrap();
            assert_eq!(&reply, b"ok");
            server.join().unwrap();
        });
    }
}
