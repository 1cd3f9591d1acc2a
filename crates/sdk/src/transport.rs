//! The HTTP layer: one pooled hyper client (HTTP/1.1 keep-alive; `https://` through rustls
//! when the `rustls` feature is on), with a time limit per request.
//!
//! A [`Transport`] is cheap to clone and meant to be shared: give the same one to every
//! product client ([`crate::momo::Config::transport`]) so they share one connection pool.

use std::time::Duration;

use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderName, HeaderValue};
use http::{Method, Request, StatusCode, Uri};
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

use crate::error::{ApiError, Error, Result};

#[cfg(feature = "rustls")]
type Connector = hyper_rustls::HttpsConnector<HttpConnector>;
#[cfg(not(feature = "rustls"))]
type Connector = HttpConnector;

/// The default time limit of one request.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// The longest answer body read, in bytes: MoMo's and M-Pesa's answers are a few KB, and a
/// server streaming without end would otherwise fill memory until the time limit (3 GB in
/// 30 s on loopback). Past it, the call fails with [`Error::Decode`].
pub const MAX_ANSWER_BYTES: usize = 8 << 20;

/// The TCP side: `TCP_NODELAY` and keep-alive probes.
fn tcp() -> HttpConnector {
    let mut http = HttpConnector::new();
    http.set_nodelay(true);
    http.set_keepalive(Some(Duration::from_secs(60)));
    http
}

/// A pooled HTTP client shared by the API clients.
#[derive(Clone)]
pub struct Transport {
    client: Client<Connector, Full<Bytes>>,
    timeout: Duration,
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Transport")
            .field("timeout", &self.timeout)
            .finish_non_exhaustive()
    }
}

impl Default for Transport {
    fn default() -> Self {
        Transport::new()
    }
}

impl Transport {
    /// A client with [`DEFAULT_TIMEOUT`], keep-alive and `TCP_NODELAY`.
    pub fn new() -> Transport {
        Transport::with_pool(DEFAULT_TIMEOUT, 32)
    }

    /// A client with this time limit per request and at most `max_idle` idle connections
    /// kept per host (raise it for many concurrent requests).
    pub fn with_pool(timeout: Duration, max_idle: usize) -> Transport {
        #[cfg(feature = "rustls")]
        let transport = match Transport::trusting(timeout, max_idle, b"") {
            Ok(t) => t,
            // No extra certificate: Mozilla's roots and ring cannot fail to make a client.
            Err(e) => unreachable!("{e}"),
        };
        #[cfg(not(feature = "rustls"))]
        let transport = Transport::over(tcp(), timeout, max_idle);
        transport
    }

    /// [`Transport::with_pool`] that also trusts the PEM certificates of `extra_pem` as
    /// roots, beside Mozilla's: a private CA, such as the local CA of `mkoba serve --tls`
    /// (`DATA/tls/ca.pem`). An error says what is wrong with the certificates.
    #[cfg(feature = "rustls")]
    pub fn trusting(
        timeout: Duration,
        max_idle: usize,
        extra_pem: &[u8],
    ) -> std::result::Result<Transport, String> {
        use rustls::pki_types::CertificateDer;
        use rustls::pki_types::pem::PemObject as _;
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        for cert in CertificateDer::pem_slice_iter(extra_pem) {
            let cert = cert.map_err(|e| format!("not a PEM certificate: {e}"))?;
            roots
                .add(cert)
                .map_err(|e| format!("an unusable root certificate: {e}"))?;
        }
        let tls = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup failed: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
        let mut http = tcp();
        http.enforce_http(false);
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        Ok(Transport::over(connector, timeout, max_idle))
    }

    fn over(connector: Connector, timeout: Duration, max_idle: usize) -> Transport {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(max_idle)
            .build(connector);
        Transport { client, timeout }
    }

    /// The same pool with another time limit.
    pub fn timeout(mut self, timeout: Duration) -> Transport {
        self.timeout = timeout;
        self
    }

    /// Sends a request and reads the whole answer, within the time limit.
    pub(crate) async fn send(&self, req: Request<Full<Bytes>>) -> Result<Reply> {
        let uri = req.uri().clone();
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| (None, describe(&e)))?;
            let status = resp.status();
            let body = http_body_util::Limited::new(resp.into_body(), MAX_ANSWER_BYTES)
                .collect()
                .await
                .map_err(|e| {
                    if e.is::<http_body_util::LengthLimitError>() {
                        (
                            Some(status),
                            format!(
                                "the answer's body is longer than {MAX_ANSWER_BYTES} bytes, far more than any answer of these APIs: not read further"
                            ),
                        )
                    } else {
                        (None, e.to_string())
                    }
                })?
                .to_bytes();
            Ok::<_, (Option<StatusCode>, String)>((status, body))
        };
        match tokio::time::timeout(self.timeout, exchange).await {
            Ok(Ok((status, body))) => Ok(Reply { uri, status, body }),
            Ok(Err((Some(status), message))) => Err(Error::Decode {
                url: redact(&uri),
                status: status.as_u16(),
                message,
            }),
            Ok(Err((None, message))) => Err(Error::Transport {
                url: redact(&uri),
                message,
            }),
            Err(_) => Err(Error::Timeout {
                url: redact(&uri),
                after: self.timeout,
            }),
        }
    }
}

/// The chain of causes of a client error, which hyper keeps in `source()`.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut cause = e.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A URL for messages: without its query string (which may carry a subscription key).
fn redact(uri: &Uri) -> String {
    match (uri.scheme_str(), uri.authority()) {
        (Some(s), Some(a)) => format!("{s}://{a}{}", uri.path()),
        _ => uri.path().to_owned(),
    }
}

/// A whole answer.
#[derive(Debug)]
pub(crate) struct Reply {
    pub uri: Uri,
    pub status: StatusCode,
    pub body: Bytes,
}

impl Reply {
    /// `Ok(self)` for 2xx, else the provider's error.
    pub fn ok(self) -> Result<Reply> {
        if self.status.is_success() {
            Ok(self)
        } else {
            Err(Error::Api(ApiError::from_body(
                self.status.as_u16(),
                &self.body,
            )))
        }
    }

    /// The body as `T`.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| Error::Decode {
            url: redact(&self.uri),
            status: self.status.as_u16(),
            message: format!("{e}; body: {}", quoted_body(&self.body)),
        })
    }
}

/// An answer's body as an error message quotes it: a JSON object's members that hold a
/// secret (a token, a key, a session id, a password) left out, and at most 500 characters.
fn quoted_body(body: &[u8]) -> String {
    let secret = |name: &str| {
        let name = name.to_ascii_lowercase();
        ["token", "key", "secret", "password", "session"]
            .iter()
            .any(|s| name.contains(s))
    };
    let text = match serde_json::from_slice::<serde_json::Value>(body) {
        Ok(serde_json::Value::Object(mut members)) => {
            for (name, value) in members.iter_mut() {
                if secret(name) {
                    *value = serde_json::Value::String("…".to_owned());
                }
            }
            serde_json::Value::Object(members).to_string()
        }
        _ => String::from_utf8_lossy(body).into_owned(),
    };
    if text.chars().count() > 500 {
        text.chars().take(500).collect::<String>() + "…"
    } else {
        text
    }
}

/// A request being built: method, URL, headers and body.
#[derive(Debug)]
pub(crate) struct Call {
    pub method: Method,
    pub url: String,
    headers: Vec<(HeaderName, HeaderValue)>,
    pub body: Option<(&'static str, Bytes)>,
    /// The first header value that was not valid, reported by [`Call::build`].
    invalid: Option<HeaderName>,
}

impl Call {
    pub fn new(method: Method, url: String) -> Call {
        Call {
            method,
            url,
            headers: Vec::with_capacity(8),
            body: None,
            invalid: None,
        }
    }

    /// A header from text (checked when the request is built).
    pub fn header(mut self, name: &'static str, value: impl AsRef<str>) -> Call {
        let name = HeaderName::from_static(name);
        match HeaderValue::from_str(value.as_ref()) {
            Ok(v) => self.headers.push((name, v)),
            Err(_) => {
                self.invalid.get_or_insert(name);
            }
        }
        self
    }

    /// A header already checked.
    pub fn header_value(mut self, name: HeaderName, value: HeaderValue) -> Call {
        self.headers.push((name, value));
        self
    }

    pub fn json<T: serde::Serialize + ?Sized>(mut self, body: &T) -> Result<Call> {
        let bytes = serde_json::to_vec(body)
            .map_err(|e| Error::Config(format!("request body cannot be serialised: {e}")))?;
        self.body = Some(("application/json", Bytes::from(bytes)));
        Ok(self)
    }

    pub fn form(mut self, fields: &[(&str, &str)]) -> Call {
        let mut text = String::new();
        for (k, v) in fields {
            if !text.is_empty() {
                text.push('&');
            }
            text.push_str(&form_encode(k));
            text.push('=');
            text.push_str(&form_encode(v));
        }
        self.body = Some(("application/x-www-form-urlencoded", Bytes::from(text)));
        self
    }

    /// The hyper request. A POST without a body carries `Content-Length: 0`: MTN's gateway
    /// answers 411 without it.
    pub fn build(self) -> Result<Request<Full<Bytes>>> {
        if let Some(name) = self.invalid {
            return Err(Error::Config(format!(
                "the {name} header value has characters not allowed in a header"
            )));
        }
        let uri: Uri = self
            .url
            .parse()
            .map_err(|e| Error::Config(format!("invalid URL {:?}: {e}", self.url)))?;
        let mut req = Request::builder().method(self.method).uri(uri);
        if let Some(headers) = req.headers_mut() {
            headers.reserve(self.headers.len() + 1);
            for (name, value) in self.headers {
                headers.append(name, value);
            }
        }
        let body = match self.body {
            Some((content_type, bytes)) => {
                req = req.header(CONTENT_TYPE, HeaderValue::from_static(content_type));
                bytes
            }
            None => {
                req = req.header(CONTENT_LENGTH, HeaderValue::from_static("0"));
                Bytes::new()
            }
        };
        req.body(Full::new(body))
            .map_err(|e| Error::Config(format!("invalid request: {e}")))
    }
}

/// `application/x-www-form-urlencoded` encoding of one component.
/// A client's base URL without its trailing `/`, refused unless it is `http://` or
/// `https://` with a host and, when one is given, a port from 1 to 65535 (`:65536` and an
/// empty host were tried as given and failed as unreachable).
pub(crate) fn base_url(raw: &str) -> Result<String> {
    let base = raw.trim_end_matches('/').to_owned();
    let refuse = |why: &str| Err(Error::Config(format!("the base URL {why}, got {raw:?}")));
    if !(raw.starts_with("http://") || raw.starts_with("https://")) {
        return refuse("must start with http:// or https://");
    }
    // `http://` alone: trimmed, it no longer starts so.
    if raw
        .split_once("://")
        .is_some_and(|(_, rest)| rest.trim_start_matches('/').is_empty())
    {
        return refuse("has no host");
    }
    let Ok(uri) = base.parse::<Uri>() else {
        return refuse("is not a URL");
    };
    if uri.host().is_none_or(str::is_empty) {
        return refuse("has no host");
    }
    // The port as written (the parser drops one it cannot hold).
    let port = uri
        .authority()
        .and_then(|a| a.as_str().rsplit_once(':'))
        .map(|(_, p)| p)
        .filter(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if port.is_some_and(|p| !matches!(p.parse::<u16>(), Ok(1..))) {
        return refuse("has no port from 1 to 65535");
    }
    #[cfg(not(feature = "rustls"))]
    if base.starts_with("https://") {
        return Err(Error::Config(
            "https:// needs the `rustls` feature of mkoba-sdk".to_owned(),
        ));
    }
    Ok(base)
}

pub(crate) fn form_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(b as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Percent-encodes a path segment (ids, e-mail addresses).
pub(crate) fn path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'@' | b'+' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An answer quoted in an error keeps no secret: a token answer that did not read
    /// (here without `expires_in`) had its access token in the message.
    #[test]
    fn a_quoted_body_leaves_secrets_out() {
        let quoted = quoted_body(
            br#"{"access_token":"SECRET1","token_type":"access_token","refresh_token":"SECRET2","apiKey":"SECRET3","output_SessionID":"SECRET4","note":"kept"}"#,
        );
        assert!(!quoted.contains("SECRET"), "{quoted}");
        assert!(
            quoted.contains(r#""note":"kept""#) && quoted.contains(r#""token_type":"…""#),
            "{quoted}"
        );
        assert_eq!(quoted_body(b"plain text"), "plain text");
        assert_eq!(quoted_body("x".repeat(600).as_bytes()).chars().count(), 501);
        // And the token types print no token.
        let t: mkoba_api_types::momo::AccessToken = serde_json::from_str(
            r#"{"access_token":"SECRET5","token_type":"access_token","expires_in":3600}"#,
        )
        .unwrap();
        assert!(!format!("{t:?}").contains("SECRET"), "{t:?}");
    }

    #[test]
    fn a_base_url_needs_a_scheme_a_host_and_a_real_port() {
        assert_eq!(
            base_url("http://127.0.0.1:8080/").unwrap(),
            "http://127.0.0.1:8080"
        );
        assert!(base_url("https://[::1]:443").is_ok());
        assert!(base_url("HTTP://x").is_err(), "the scheme as written");
        for bad in [
            "127.0.0.1:8080",
            "ftp://x",
            "http://",
            "http://:18701",
            "http://127.0.0.1:65536",
            "http://127.0.0.1:0",
            "http://a b",
        ] {
            let e = base_url(bad).unwrap_err();
            assert!(matches!(e, Error::Config(_)), "{bad}: {e}");
        }
    }

    #[test]
    fn form_encoding_escapes_what_it_must() {
        assert_eq!(
            form_encode("ID:46733123454/MSISDN"),
            "ID%3A46733123454%2FMSISDN"
        );
        assert_eq!(form_encode("a b&c"), "a+b%26c");
    }

    #[test]
    fn urls_in_messages_lose_their_query_string() {
        let uri: Uri = "https://h.example:8443/p/q?subscription-key=secret"
            .parse()
            .unwrap();
        assert_eq!(redact(&uri), "https://h.example:8443/p/q");
    }
}
