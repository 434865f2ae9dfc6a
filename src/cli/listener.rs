//! The connections of `notarium serve`: each is served by hyper with a deadline on request heads, an idle
//! cut-off, and a cap on how many are open at once; `axum::serve` offers none of the three, so a client that
//! sends half a request line, or never reads its answer, would hold a connection (and its memory) forever.
//!
//! Owns: accepting, the per-connection limits and the graceful end of connections. Must not touch: routes
//! and what requests do (`api`), TLS handshakes (`tls.rs` hands over finished streams).

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Semaphore;
use tokio::time::{Instant, Sleep};
use tower::ServiceExt as _;

/// `[server] header_timeout_secs`, `idle_timeout_secs` and `max_connections`.
#[derive(Debug, Clone, Copy)]
pub(super) struct ConnectionLimits {
    /// A request head must be complete this long after the server starts waiting for it, which also bounds
    /// how long a kept-alive connection waits for its next request.
    pub header_timeout: Duration,
    /// A connection on which no byte moves either way for this long is closed (a client that stops sending
    /// its body or stops reading its answer). Longer than the request timeout: a request being handled moves
    /// no bytes.
    pub idle_timeout: Duration,
    /// Connections served at once; more wait in the listen backlog until one closes.
    pub max_connections: usize,
}

/// Serves `app` on the connections `listener` accepts until `shutdown` completes, then stops accepting and
/// returns once every open connection has finished its requests (the caller bounds that wait).
pub(super) async fn serve<L>(mut listener: L, app: Router, limits: ConnectionLimits, shutdown: impl Future<Output = ()>)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let open = Arc::new(Semaphore::new(limits.max_connections));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    // Half-closes: a client may send its whole request and shut its sending side (or hang up); the request
    // is still served, where hyper by default drops a connection whose read ends before dispatching it.
    builder.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout).half_close(true);
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = accept_within_limit(&mut listener, &open) => accepted,
            () = &mut shutdown => break,
        };
        let (io, peer, slot) = accepted;
        let service = app.clone().map_request(move |mut request: axum::http::Request<Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            request.map(axum::body::Body::new)
        });
        let io = TokioIo::new(IdleCutoff::new(io, limits.idle_timeout));
        let connection = graceful.watch(builder.serve_connection(io, TowerToHyperService::new(service)));
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(%peer, error = %e, "connection closed on an error");
            }
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
}

/// The next connection, once fewer than `max_connections` are open; the permit is its slot.
async fn accept_within_limit<L>(
    listener: &mut L,
    open: &Arc<Semaphore>,
) -> (L::Io, SocketAddr, tokio::sync::OwnedSemaphorePermit)
where
    L: axum::serve::Listener<Addr = SocketAddr>,
{
    let slot = open.clone().acquire_owned().await.expect("the connection semaphore is never closed");
    let (io, peer) = listener.accept().await;
    (io, peer, slot)
}

/// A stream that fails with `TimedOut` when a read, write or flush has waited `timeout` since the last byte
/// moved. Only a waiting operation is timed, so a connection hyper leaves alone is never cut.
struct IdleCutoff<T> {
    io: T,
    timeout: Duration,
    last_progress: Instant,
    alarm: Pin<Box<Sleep>>,
}

impl<T> IdleCutoff<T> {
    fn new(io: T, timeout: Duration) -> Self {
        let now = Instant::now();
        Self { io, timeout, last_progress: now, alarm: Box::pin(tokio::time::sleep_until(now + timeout)) }
    }

    fn progressed(&mut self, bytes: usize) {
        if bytes > 0 {
            self.last_progress = Instant::now();
        }
    }

    /// Called when the stream answered `Pending`: an error once `timeout` has passed without progress,
    /// otherwise `Pending` with the alarm set for that moment (re-armed lazily, not on every byte).
    fn wait<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        loop {
            let due = self.last_progress + self.timeout;
            if Instant::now() >= due {
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    "no bytes moved within the idle timeout",
                )));
            }
            if self.alarm.deadline() != due {
                self.alarm.as_mut().reset(due);
            }
            ready!(self.alarm.as_mut().poll(cx));
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleCutoff<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        match Pin::new(&mut self.io).poll_read(cx, buf) {
            Poll::Pending => self.wait(cx),
            Poll::Ready(Ok(())) => {
                self.progressed(buf.filled().len() - before);
                Poll::Ready(Ok(()))
            }
            failed => failed,
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleCutoff<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write(cx, buf);
        self.after_write(cx, written)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let written = Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.after_write(cx, written)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match Pin::new(&mut self.io).poll_flush(cx) {
            Poll::Pending => self.wait(cx),
            done => done,
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl<T> IdleCutoff<T> {
    fn after_write(&mut self, cx: &mut Context<'_>, written: Poll<io::Result<usize>>) -> Poll<io::Result<usize>> {
        match written {
            Poll::Pending => self.wait(cx),
            Poll::Ready(Ok(n)) => {
                self.progressed(n);
                Poll::Ready(Ok(n))
            }
            failed => failed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_idle_timeout_and_progress_postpones_it() {
        let (ours, mut theirs) = tokio::io::duplex(16);
        let mut stream = IdleCutoff::new(ours, Duration::from_secs(30));
        stream.write_all(&[0; 16]).await.unwrap();
        tokio::time::advance(Duration::from_secs(20)).await;
        let mut first = [0; 8];
        theirs.read_exact(&mut first).await.unwrap(); // progress at 20 s: the next wait may last until 50 s
        stream.write_all(&[0; 8]).await.unwrap();
        let started = Instant::now();
        let error = stream.write_all(&[0; 16]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
        let waited = started.elapsed(); // paused clock: exact up to the timer's millisecond
        assert!(waited >= Duration::from_secs(30) && waited < Duration::from_secs(31), "{waited:?}");
    }

    #[tokio::test(start_paused = true)]
    async fn a_read_that_gets_nothing_fails_after_the_idle_timeout() {
        let (ours, _theirs) = tokio::io::duplex(16);
        let mut stream = IdleCutoff::new(ours, Duration::from_secs(5));
        let error = stream.read(&mut [0; 4]).await.unwrap_err();
        assert_eq!(error.kind(), io::ErrorKind::TimedOut);
    }
}
