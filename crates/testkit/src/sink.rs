//! A callback receiver for the tests: `127.0.0.1:0`, plain or https (a certificate for
//! 127.0.0.1 signed by the test CA in `data/tls/`), answering every request with a fixed
//! status (after an optional delay) and recording what arrived.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{HeaderMap, Method, StatusCode, Uri};

/// One request received by the sink.
#[derive(Debug, Clone)]
pub struct Received {
    pub method: String,
    pub path: String,
    pub headers: HeaderMap,
    pub body: String,
}

/// A callback receiver on 127.0.0.1:0 answering every request with a fixed status.
#[derive(Debug, Clone)]
pub struct Sink {
    pub addr: SocketAddr,
    pub received: Arc<Mutex<Vec<Received>>>,
    scheme: &'static str,
}

/// A TLS listener for [`Sink::start_tls`]: failed handshakes are dropped, not fatal.
struct TlsListener {
    tcp: tokio::net::TcpListener,
    acceptor: tokio_rustls::TlsAcceptor,
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<tokio::net::TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let Ok((tcp, addr)) = self.tcp.accept().await else {
                continue;
            };
            if let Ok(tls) = self.acceptor.accept(tcp).await {
                return (tls, addr);
            }
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }
}

/// The test CA of `data/tls/` (signs the https sink's certificate).
pub fn test_ca() -> Vec<rustls::pki_types::CertificateDer<'static>> {
    mkoba_webhooks::load_roots(std::path::Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/data/tls/ca.pem"
    )))
    .expect("the test CA loads")
}

impl Sink {
    pub async fn start(status: u16) -> Sink {
        Sink::start_delayed(status, Duration::ZERO).await
    }

    /// A sink that records each request at once and answers it after `delay`.
    pub async fn start_delayed(status: u16, delay: Duration) -> Sink {
        Sink::serve(Sink::router(status, delay, "")).await
    }

    /// A sink answering every request with `status` and `answer` as a text body.
    pub async fn start_answering(status: u16, answer: &'static str) -> Sink {
        Sink::serve(Sink::router(status, Duration::ZERO, answer)).await
    }

    async fn serve((app, received): (axum::Router, Arc<Mutex<Vec<Received>>>)) -> Sink {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            addr,
            received,
            scheme: "http",
        }
    }

    /// A sink serving https with a certificate for 127.0.0.1 signed by [`test_ca`].
    pub async fn start_tls(status: u16) -> Sink {
        use rustls::pki_types::pem::PemObject;
        use rustls::pki_types::{CertificateDer, PrivateKeyDer};
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/data/tls");
        let certs = CertificateDer::pem_file_iter(format!("{dir}/partner.pem"))
            .unwrap()
            .collect::<Result<Vec<_>, _>>()
            .unwrap();
        let key = PrivateKeyDer::from_pem_file(format!("{dir}/partner.key")).unwrap();
        let config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .unwrap();
        let (app, received) = Sink::router(status, Duration::ZERO, "");
        let tcp = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = tcp.local_addr().unwrap();
        let listener = TlsListener {
            tcp,
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
        };
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Sink {
            addr,
            received,
            scheme: "https",
        }
    }

    fn router(
        status: u16,
        delay: Duration,
        answer: &'static str,
    ) -> (axum::Router, Arc<Mutex<Vec<Received>>>) {
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let store = received.clone();
        let app = axum::Router::new().fallback(
            move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
                let store = store.clone();
                async move {
                    store.lock().unwrap().push(Received {
                        method: method.to_string(),
                        path: uri.to_string(),
                        headers,
                        body: String::from_utf8_lossy(&body).into_owned(),
                    });
                    tokio::time::sleep(delay).await;
                    (StatusCode::from_u16(status).unwrap(), answer)
                }
            },
        );
        (app, received)
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}://127.0.0.1:{}{path}", self.scheme, self.addr.port())
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    /// Waits for `n` requests to have arrived.
    /// Waits for `n` requests to have arrived (at most 10 s, then panics).
    pub async fn wait_for(&self, n: usize) -> Vec<Received> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let all = self.all();
            if all.len() >= n {
                return all;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "{n} requests did not arrive within 10 s ({} did)",
                all.len()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}
