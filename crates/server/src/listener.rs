//! The HTTP listener: hyper's HTTP/1.1 connections with the limits a server facing clients
//! it does not control needs, around the application router.
//!
//! * **Header-read timeout**: a client must send a request's whole header within
//!   [`ConnectionLimits::header_read`]; the same bound closes a kept-alive connection that
//!   sends nothing, so a one-byte-a-second trickle or an idle socket cannot hold a
//!   connection (and its memory) for ever.
//! * **Header size**: a request's line and header fields hold at most
//!   [`ConnectionLimits::header_bytes`] (past it hyper answers `431` and closes; its
//!   bodyless `400`, `414` and `431` get a body in the dialect of the request, see
//!   `unreadable.rs`): the
//!   buffer a connection reads a header into is hyper's, outside the bodies' bound below,
//!   and its default (about 400 KB) let unfinished headers on the allowed connections
//!   hold 2 GB for the header time (an audit: 5,000 connections of 400 KB each).
//! * **Body-read timeout**: a request's body must arrive within [`body_deadline`] of the
//!   first time the server waits for it, or reading it fails (the handler answers 400 in
//!   its dialect and the connection closes): a client that sends a header and then a
//!   trickle of its body cannot hold a connection either.
//! * **Connections**: at most [`ConnectionLimits::per_client`] open at once from one client
//!   address (an IPv6 address counts by its /64, the block one subscriber holds), and at
//!   most [`ConnectionLimits::total`] in all, so that the server runs out of neither file
//!   descriptors nor memory; one more is closed as soon as it is accepted.
//! * The client's address reaches the handlers as `ConnectInfo` (the widget's per-client
//!   rate limit, the portal's sign-in, reset and sign-up throttles, the M-Pesa key failure
//!   throttle), and stopping drains: no new connection is accepted, requests in flight
//!   finish (for at most [`ConnectionLimits::drain`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

mod unreadable;
use unreadable::Unreadable;

/// The limits of every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time allowed for a request's header, and for an idle kept-alive connection.
    pub header_read: Duration,
    /// Open connections from one client address.
    pub per_client: usize,
    /// Open connections from every address together.
    pub total: usize,
    /// How long stopping waits for requests in flight.
    pub drain: Duration,
    /// Bytes of a request's line and header fields (and of the buffer a connection reads
    /// into; hyper's least is 8,192): with [`ConnectionLimits::total`] connections, the
    /// most unfinished headers can hold.
    pub header_bytes: usize,
    /// Bytes of request bodies a listener holds while reading them, in all: past it a
    /// body is not read further and its request gets the dialect's overload answer
    /// ([`mkoba_platform::throttle::BODIES_BUSY`]). Each body may hold up to
    /// [`MAX_BODY_BYTES`]; without this, bodies left a byte short on many connections held
    /// 2 MiB each for the body time (an audit reached 1.7 GB from four addresses).
    pub body_bytes: usize,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read: Duration::from_secs(10),
            per_client: 256,
            total: 10_000,
            drain: Duration::from_secs(10),
            // An M-Pesa v1x bearer (684 bytes), a consent JWT, the portal's cookies: a few
            // KB at most; 10,000 connections × 16 KiB is 160 MiB at worst.
            header_bytes: 16 * 1024,
            // 32 bodies of the largest size: far above what the APIs' bodies (a few hundred
            // bytes) and the portal's forms need at once.
            body_bytes: 32 * MAX_BODY_BYTES as usize,
        }
    }
}

/// Open connections by client address (its throttle key), and in all.
#[derive(Debug, Default)]
struct Open(Mutex<(HashMap<IpAddr, usize>, usize)>);

/// One open connection of an address; dropping it closes the count.
struct Slot {
    open: Arc<Open>,
    ip: IpAddr,
}

impl Open {
    fn take(self: &Arc<Self>, ip: IpAddr, limits: &ConnectionLimits) -> Option<Slot> {
        let ip = mkoba_platform::throttle::address_key(ip);
        let mut counts = self.0.lock().expect("connection counts");
        let (map, total) = &mut *counts;
        if *total >= limits.total {
            return None;
        }
        let n = map.entry(ip).or_insert(0);
        if *n >= limits.per_client {
            return None;
        }
        *n += 1;
        *total += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.open.0.lock().expect("connection counts");
        let (map, total) = &mut *counts;
        *total -= 1;
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

/// Serves `app` on `listener` until `stop` turns true, then drains.
pub fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    stop: tokio::sync::watch::Receiver<bool>,
    limits: ConnectionLimits,
) -> tokio::task::JoinHandle<()> {
    serve_tls(listener, app, stop, limits, None)
}

/// [`serve`], over TLS when `tls` is given: the handshake must finish within the
/// header-read time like the request's header, or the connection is closed.
pub fn serve_tls(
    listener: tokio::net::TcpListener,
    app: Router,
    mut stop: tokio::sync::watch::Receiver<bool>,
    limits: ConnectionLimits,
    tls: Option<Arc<rustls::ServerConfig>>,
) -> tokio::task::JoinHandle<()> {
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    // The address a request without `Host` reached: the listener's, read once; only on
    // every address (`0.0.0.0`) is it each connection's own.
    let bound = listener.local_addr().ok();
    tokio::spawn(async move {
        let open = Arc::new(Open::default());
        let bodies = Arc::new(BodyBytes {
            held: AtomicUsize::new(0),
            limit: limits.body_bytes,
        });
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        // A client may close its sending side once its request is sent (`shutdown`, as
        // `nc -N` and some scripts do): answer it rather than drop the request.
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
            .max_buf_size(limits.header_bytes.max(8192))
            .half_close(true)
            .keep_alive(true);
        let stopped = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        tokio::pin!(stopped);
        // The connections, so that those still open after the drain time can be cut.
        let mut connections = tokio::task::JoinSet::new();
        loop {
            while connections.try_join_next().is_some() {}
            let (stream, peer) = tokio::select! {
                accepted = listener.accept() => match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: wait, don't spin; this
                        // fails for every waiting connection, so one line a second, with
                        // a count.
                        static GATE: mkoba_platform::throttle::LogGate =
                            mkoba_platform::throttle::LogGate::new();
                        if let Some(unlogged) = GATE.turn() {
                            tracing::warn!(
                                error = %e,
                                unlogged,
                                "accepting a connection failed (unlogged: failures since the last such line)"
                            );
                        }
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stopped => break,
            };
            let Some(slot) = open.take(peer.ip(), &limits) else {
                tracing::debug!(client = %peer.ip(), "too many connections, from one address or in all");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            // Writes wake as the client reads (when less than this is unsent), not once
            // a third of the send buffer has drained: the write-stall bound below then
            // judges a slow but steady reader by its progress (one taking 40 KB/s of a
            // 5 MB export was cut at 30 s, the kernel having woken the writer only every
            // 1.4 MB).
            let _ = socket2::SockRef::from(&stream).set_tcp_notsent_lowat(128 * 1024);
            let body_time = body_deadline(&limits);
            // An HTTP/1.0 request may have no `Host`: links back to this server (the
            // widget's payer link, the API docs' samples) then name the address it was
            // reached at, port included, as the effective request URI does (RFC 9112 §3.3).
            let reached = bound
                .filter(|a| !a.ip().is_unspecified())
                .or_else(|| stream.local_addr().ok());
            let stream = WriteStall::new(stream, body_time);
            let over_tls = acceptor.is_some();
            let bodies = bodies.clone();
            let service = app
                .clone()
                .map_request(move |mut req: axum::extract::Request<_>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    // (An absolute-form request names its host in its target.)
                    if let Some(reached) = reached
                        && !req.headers().contains_key(http::header::HOST)
                        && req.uri().authority().is_none()
                        && let Ok(host) = http::HeaderValue::from_str(&reached.to_string())
                    {
                        req.headers_mut().insert(http::header::HOST, host);
                    }
                    if over_tls {
                        req.extensions_mut().insert(mkoba_platform::widget::OverTls);
                    }
                    let too_large = declared_too_large(req.headers());
                    req.map(|body| Deadline::new(body, body_time, too_large, bodies.clone()))
                })
                .map_response(without_allow_on_404);
            let service = TowerToHyperService::new(service);
            match &acceptor {
                None => {
                    let connection = graceful.watch(http.serve_connection(
                        TokioIo::new(Unreadable::new(stream, limits.header_bytes)),
                        service,
                    ));
                    connections.spawn(async move {
                        let _ = connection.await;
                        drop(slot);
                    });
                }
                Some(acceptor) => {
                    let (acceptor, http, watcher) =
                        (acceptor.clone(), http.clone(), graceful.watcher());
                    connections.spawn(async move {
                        let handshake =
                            tokio::time::timeout(limits.header_read, acceptor.accept(stream)).await;
                        let Ok(Ok(stream)) = handshake else {
                            tracing::debug!(client = %peer.ip(), "TLS handshake failed or timed out");
                            return;
                        };
                        let connection =
                            watcher.watch(http.serve_connection(TokioIo::new(Unreadable::new(stream, limits.header_bytes)), service));
                        let _ = connection.await;
                        drop(slot);
                    });
                }
            }
        }
        drop(listener);
        if tokio::time::timeout(limits.drain, graceful.shutdown())
            .await
            .is_err()
        {
            tracing::warn!("requests still in flight after the drain time were cut");
            connections.abort_all();
            while connections.join_next().await.is_some() {}
        }
    })
}

/// A connection whose writes make no progress for `limit` fails (the connection is then
/// closed): a client that stops reading its answers, its receive window full, held the
/// connection, and its place under the connection limits, forever (an audit kept 256 of
/// one address's open for minutes by pipelining requests and reading nothing). The same
/// allowance as a request body's.
struct WriteStall<S> {
    io: S,
    limit: Duration,
    /// Set while a write waits; cleared by any progress.
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteStall<S> {
    fn new(io: S, limit: Duration) -> WriteStall<S> {
        WriteStall {
            io,
            limit,
            timer: None,
        }
    }

    /// A write's outcome: progress clears the timer, a wait starts or checks it.
    fn watched<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        if polled.is_pending() {
            return self.stalled(cx);
        }
        self.timer = None;
        polled
    }

    /// A write that waits: fails once it has waited `limit`.
    fn stalled<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::future::Future as _;
        let limit = self.limit;
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(limit)));
        match timer.as_mut().poll(cx) {
            std::task::Poll::Ready(()) => std::task::Poll::Ready(Err(std::io::Error::new(
                std::io::ErrorKind::TimedOut,
                "the client read nothing of the answer for the body time",
            ))),
            std::task::Poll::Pending => std::task::Poll::Pending,
        }
    }
}

impl<S: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for WriteStall<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<S: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for WriteStall<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write(cx, buf);
        self.watched(cx, polled)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_write_vectored(cx, bufs);
        self.watched(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.io).poll_flush(cx);
        self.watched(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

/// How long a request's body may take to arrive: three times the header's allowance (30 s
/// by default; MoMo's and M-Pesa's bodies are a few hundred bytes, the portal's forms a few
/// kilobytes).
pub fn body_deadline(limits: &ConnectionLimits) -> Duration {
    limits.header_read * 3
}

/// The most a request body may hold: the HTTP framework's limit (axum's default), past
/// which each dialect answers its own 413.
pub const MAX_BODY_BYTES: u64 = 2 * 1024 * 1024;

/// Whether the request says its body is larger than [`MAX_BODY_BYTES`] (`Content-Length`).
fn declared_too_large(headers: &axum::http::HeaderMap) -> bool {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .is_some_and(|n| n > MAX_BODY_BYTES)
}

/// A request body that fails once its deadline passes before it has all arrived. The timer
/// starts the first time reading it has to wait, so a body that came with its header (most
/// of them) never sets one. A body declared larger than the limit fails at once, as one
/// over the limit does, so the client gets its 413 without sending it (before, the request
/// waited out the body time and got a 400).
struct Deadline<B> {
    body: B,
    allowed: Duration,
    timer: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
    too_large: bool,
    /// The listener's count of body bytes held, and this body's share of it (given back
    /// when the body is dropped: read whole, or abandoned).
    bodies: Arc<BodyBytes>,
    held: usize,
    /// Bytes of this body read so far.
    seen: usize,
}

/// What a body may hold before it counts against [`ConnectionLimits::body_bytes`]: the
/// bodies the APIs and the portal take are smaller, so a client holding many large ones
/// open cannot shut theirs out (a re-audit did, with 34 connections from one address).
/// Their memory is bounded by the connection limits (64 KiB each).
const FREE_BODY_BYTES: usize = 64 * 1024;

/// Bytes of the request bodies a listener is reading, and the most it may hold
/// ([`ConnectionLimits::body_bytes`]).
struct BodyBytes {
    held: AtomicUsize,
    limit: usize,
}

impl<B> Deadline<B> {
    fn new(body: B, allowed: Duration, too_large: bool, bodies: Arc<BodyBytes>) -> Deadline<B> {
        Deadline {
            body,
            allowed,
            timer: None,
            too_large,
            bodies,
            held: 0,
            seen: 0,
        }
    }
}

impl<B> Drop for Deadline<B> {
    fn drop(&mut self) {
        self.bodies.held.fetch_sub(self.held, Ordering::Relaxed);
    }
}

/// The framework's own "length limit exceeded", which it answers with 413 (its error type
/// can only be made by its body limiter: one byte through a limit of none).
fn length_limit_error() -> axum::BoxError {
    use hyper::body::Body as _;
    let mut limited = http_body_util::Limited::new(
        http_body_util::Full::new(bytes::Bytes::from_static(b"x")),
        0,
    );
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    match std::pin::Pin::new(&mut limited).poll_frame(&mut cx) {
        std::task::Poll::Ready(Some(Err(e))) => e,
        _ => "the request body is larger than the limit".into(),
    }
}

impl<B> hyper::body::Body for Deadline<B>
where
    B: hyper::body::Body<Data = bytes::Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = bytes::Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<bytes::Bytes>, axum::BoxError>>> {
        use std::future::Future as _;
        use std::task::Poll;
        let this = &mut *self;
        if std::mem::take(&mut this.too_large) {
            return Poll::Ready(Some(Err(length_limit_error())));
        }
        match std::pin::Pin::new(&mut this.body).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                // Only what a body holds past its first `FREE_BODY_BYTES` counts: the
                // APIs' bodies (a few hundred bytes) and the portal's forms are never
                // refused, however many large ones one client holds open.
                let n = frame.data_ref().map_or(0, bytes::Bytes::len);
                let counted = (this.seen + n).saturating_sub(FREE_BODY_BYTES)
                    - this.seen.saturating_sub(FREE_BODY_BYTES);
                this.seen += n;
                if counted > 0 {
                    let before = this.bodies.held.fetch_add(counted, Ordering::Relaxed);
                    if before + counted > this.bodies.limit {
                        this.bodies.held.fetch_sub(counted, Ordering::Relaxed);
                        return Poll::Ready(Some(
                            Err(mkoba_platform::throttle::BODIES_BUSY.into()),
                        ));
                    }
                    this.held += counted;
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(frame) => Poll::Ready(frame.map(|f| f.map_err(Into::into))),
            Poll::Pending => {
                let allowed = this.allowed;
                let timer = this
                    .timer
                    .get_or_insert_with(|| Box::pin(tokio::time::sleep(allowed)));
                match timer.as_mut().poll(cx) {
                    Poll::Ready(()) => {
                        Poll::Ready(Some(Err("the request body did not arrive in time".into())))
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.body.size_hint()
    }
}

/// A method no route of a path takes is the gateway's 404 (as on MTN's API Management),
/// without the `Allow` header the router adds to it (outside every layer of the router's
/// own, so it is taken off here).
fn without_allow_on_404(mut response: axum::response::Response) -> axum::response::Response {
    if response.status() == axum::http::StatusCode::NOT_FOUND {
        response.headers_mut().remove(axum::http::header::ALLOW);
    }
    response
}
