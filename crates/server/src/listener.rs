//! The HTTP listener: hyper's HTTP/1.1 connections with the limits a server facing clients
//! it does not control needs, around the application router.
//!
//! * **Header-read timeout**: a client must send a request's whole header within
//!   [`ConnectionLimits::header_read`]; the same bound closes a kept-alive connection that
//!   sends nothing, so a one-byte-a-second trickle or an idle socket cannot hold a
//!   connection (and its memory) for ever.
//! * **Connections per client address**: at most [`ConnectionLimits::per_client`] open at
//!   once; one more is closed as soon as it is accepted.
//! * The client's address reaches the handlers as `ConnectInfo` (the widget's per-client
//!   rate limit, the portal's sign-in, reset and sign-up throttles, the M-Pesa key failure
//!   throttle), and stopping drains: no new connection is accepted, requests in flight
//!   finish (for at most [`ConnectionLimits::drain`]).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tower::ServiceExt as _;

/// The limits of every connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConnectionLimits {
    /// Time allowed for a request's header, and for an idle kept-alive connection.
    pub header_read: Duration,
    /// Open connections from one client address.
    pub per_client: usize,
    /// How long stopping waits for requests in flight.
    pub drain: Duration,
}

impl Default for ConnectionLimits {
    fn default() -> ConnectionLimits {
        ConnectionLimits {
            header_read: Duration::from_secs(10),
            per_client: 256,
            drain: Duration::from_secs(10),
        }
    }
}

/// Open connections by client address.
#[derive(Debug, Default)]
struct Open(Mutex<HashMap<IpAddr, usize>>);

/// One open connection of an address; dropping it closes the count.
struct Slot {
    open: Arc<Open>,
    ip: IpAddr,
}

impl Open {
    fn take(self: &Arc<Self>, ip: IpAddr, limit: usize) -> Option<Slot> {
        let mut map = self.0.lock().expect("connection counts");
        let n = map.entry(ip).or_insert(0);
        if *n >= limit {
            return None;
        }
        *n += 1;
        Some(Slot {
            open: self.clone(),
            ip,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut map = self.open.0.lock().expect("connection counts");
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
    tokio::spawn(async move {
        let open = Arc::new(Open::default());
        let graceful = GracefulShutdown::new();
        let mut http = hyper::server::conn::http1::Builder::new();
        http.timer(TokioTimer::new())
            .header_read_timeout(limits.header_read)
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
                        // Out of file descriptors and the like: wait, don't spin.
                        tracing::warn!(error = %e, "accepting a connection failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                },
                () = &mut stopped => break,
            };
            let Some(slot) = open.take(peer.ip(), limits.per_client) else {
                tracing::debug!(client = %peer.ip(), "too many connections from one address");
                drop(stream);
                continue;
            };
            let _ = stream.set_nodelay(true);
            let service = app
                .clone()
                .map_request(move |mut req: axum::extract::Request<_>| {
                    req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                    req
                });
            let service = TowerToHyperService::new(service);
            match &acceptor {
                None => {
                    let connection =
                        graceful.watch(http.serve_connection(TokioIo::new(stream), service));
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
                            watcher.watch(http.serve_connection(TokioIo::new(stream), service));
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
