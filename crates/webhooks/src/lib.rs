//! The callback dispatcher: sends what the platform's outbox holds and records every attempt.
//!
//! Outbox rows are committed with the state change that caused them; the writer hands them
//! here after the commit (and again at start-up for rows not yet delivered). Each attempt —
//! status code, latency, error — is recorded through the platform, and the outbox row
//! becomes delivered, failed, or pending with the time of its next try. The default policy is
//! MTN's own: one attempt, no retry. A retry schedule is configurable.
//!
//! Outbound HTTP is hostile by default: no redirects are followed, every attempt has a
//! timeout, and the target's addresses are checked before connecting — loopback is allowed
//! (this is a local emulator), private and link-local ranges only when configured.
//!
//! `https` targets are verified with rustls against Mozilla's root certificates
//! (`webpki-roots`, compiled in: no system store is read) plus any extra roots the
//! configuration adds (`--callback-ca-file`, for a partner's private CA or a test CA).

use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mkoba_platform::model::{CallbackAttempt, OutboxItem};
use mkoba_platform::{Platform, now_ms};
use rustls::RootCertStore;
use rustls::pki_types::CertificateDer;
use rustls::pki_types::pem::PemObject;
use tokio::sync::Semaphore;

/// Dispatcher settings.
#[derive(Debug, Clone)]
pub struct DispatcherConfig {
    /// Time allowed for one attempt, connect to last byte.
    pub timeout: Duration,
    /// Delays before the 2nd, 3rd, … attempt; empty means a single attempt.
    pub retry_schedule: Vec<Duration>,
    /// The `User-Agent` of callbacks (the real platform's is `LWAC Http Client 1.0`).
    pub user_agent: String,
    /// Allow callbacks to loopback addresses.
    pub allow_loopback: bool,
    /// Allow callbacks to private, link-local and other non-public addresses.
    pub allow_private: bool,
    /// Most callbacks in flight at once.
    pub concurrency: usize,
    /// Certificates trusted for `https` callbacks besides Mozilla's roots.
    pub extra_roots: Vec<CertificateDer<'static>>,
}

impl Default for DispatcherConfig {
    fn default() -> DispatcherConfig {
        DispatcherConfig {
            timeout: Duration::from_secs(2),
            retry_schedule: Vec::new(),
            user_agent: "LWAC Http Client 1.0".to_owned(),
            allow_loopback: true,
            allow_private: false,
            concurrency: 256,
            extra_roots: Vec::new(),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Full<Bytes>>;

/// Reads the PEM certificates of `path` (for [`DispatcherConfig::extra_roots`]).
pub fn load_roots(path: &Path) -> Result<Vec<CertificateDer<'static>>, String> {
    let what = path.display();
    let roots = CertificateDer::pem_file_iter(path)
        .map_err(|e| format!("cannot read the CA file {what}: {e}"))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("the CA file {what} is not PEM certificates: {e}"))?;
    if roots.is_empty() {
        return Err(format!("the CA file {what} holds no certificate"));
    }
    Ok(roots)
}

/// The HTTP(S) client of the dispatcher: rustls (ring) with Mozilla's roots plus the
/// configured ones, HTTP/1.1, no redirects (hyper never follows them).
fn client(config: &DispatcherConfig) -> Result<HttpClient, String> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    for cert in &config.extra_roots {
        roots
            .add(cert.clone())
            .map_err(|e| format!("an extra root certificate is unusable: {e}"))?;
    }
    let tls = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .map_err(|e| format!("TLS setup failed: {e}"))?
    .with_root_certificates(roots)
    .with_no_client_auth();
    let mut http = HttpConnector::new();
    http.set_connect_timeout(Some(config.timeout));
    http.set_nodelay(true);
    http.enforce_http(false);
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(http);
    Ok(Client::builder(TokioExecutor::new())
        .pool_idle_timeout(Duration::from_secs(30))
        .build(connector))
}

/// Starts the dispatcher on the current Tokio runtime. It runs until the platform is gone.
pub fn spawn(platform: Platform, config: DispatcherConfig) -> tokio::task::JoinHandle<()> {
    let Some(mut outbox) = platform.take_outbox() else {
        return tokio::spawn(async {});
    };
    let client = match client(&config) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(error = %e, "the callback dispatcher cannot start");
            return tokio::spawn(async {});
        }
    };
    let limit = Arc::new(Semaphore::new(config.concurrency.max(1)));
    let config = Arc::new(config);
    tokio::spawn(async move {
        while let Some(item) = outbox.recv().await {
            let permit = limit.clone().acquire_owned().await;
            let (platform, client, config) = (platform.clone(), client.clone(), config.clone());
            tokio::spawn(async move {
                deliver(&platform, &client, &config, item).await;
                drop(permit);
            });
        }
    })
}

async fn deliver(
    platform: &Platform,
    client: &HttpClient,
    config: &DispatcherConfig,
    mut item: OutboxItem,
) {
    loop {
        let wait = item.next_attempt_at_ms - now_ms();
        if wait > 0 {
            tokio::time::sleep(Duration::from_millis(wait as u64)).await;
        }
        let at_ms = now_ms();
        let started = Instant::now();
        let result = attempt(client, config, &item).await;
        let latency_ms = started.elapsed().as_millis() as i64;
        item.attempts += 1;
        let (status_code, error) = match result {
            Ok(code) => (Some(code), None),
            Err(e) => (None, Some(e)),
        };
        let delivered = status_code.is_some_and(|c| (200..300).contains(&c));
        let retry_at_ms = if delivered {
            None
        } else {
            config
                .retry_schedule
                .get(item.attempts as usize - 1)
                .map(|d| now_ms() + d.as_millis() as i64)
        };
        if delivered {
            tracing::debug!(transfer.reference_id = %item.reference_id, status = status_code, latency_ms, "callback delivered");
        } else {
            tracing::info!(
                transfer.reference_id = %item.reference_id,
                status = status_code,
                error = error.as_deref().unwrap_or(""),
                attempt = item.attempts,
                retry = retry_at_ms.is_some(),
                "callback not accepted by the partner"
            );
        }
        platform.record_attempt(CallbackAttempt {
            outbox_id: item.id,
            reference_id: item.reference_id,
            attempt: item.attempts,
            at_ms,
            url: item.url.clone(),
            method: item.method,
            status_code,
            latency_ms,
            error,
            retry_at_ms,
        });
        match retry_at_ms {
            Some(at) => item.next_attempt_at_ms = at,
            None => return,
        }
    }
}

async fn attempt(
    client: &HttpClient,
    config: &DispatcherConfig,
    item: &OutboxItem,
) -> Result<u16, String> {
    let uri: http::Uri = item
        .url
        .parse()
        .map_err(|e| format!("invalid callback URL: {e}"))?;
    let default_port = match uri.scheme_str() {
        Some("http") => 80,
        Some("https") => 443,
        _ => return Err("callback URL must be http or https".to_owned()),
    };
    let host = uri.host().ok_or("callback URL has no host")?.to_owned();
    let port = uri.port_u16().unwrap_or(default_port);
    check_target(&host, port, config).await?;
    let request = http::Request::builder()
        .method(item.method.as_str())
        .uri(uri)
        .header(
            http::header::CONTENT_TYPE,
            "application/json; charset=utf-8",
        )
        .header(http::header::USER_AGENT, config.user_agent.as_str())
        .body(Full::new(Bytes::from(item.body.clone())))
        .map_err(|e| format!("cannot build the request: {e}"))?;
    let exchange = async {
        let response = client.request(request).await.map_err(|e| error_chain(&e))?;
        let status = response.status().as_u16();
        // Read (and discard) the body so the connection can be reused.
        let _ = response.into_body().collect().await;
        Ok::<u16, String>(status)
    };
    match tokio::time::timeout(config.timeout, exchange).await {
        Ok(r) => r,
        Err(_) => Err(format!(
            "no answer within {} ms",
            config.timeout.as_millis()
        )),
    }
}

/// An error and its causes on one line ("client error (Connect): tcp connect error: …").
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Refuses targets outside what the configuration allows.
async fn check_target(host: &str, port: u16, config: &DispatcherConfig) -> Result<(), String> {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let addrs: Vec<IpAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("cannot resolve {host}: {e}"))?
            .map(|a| a.ip())
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("{host} has no address"));
    }
    for ip in addrs {
        if !allowed(ip, config) {
            return Err(format!(
                "callbacks to {ip} are not allowed by the configuration"
            ));
        }
    }
    Ok(())
}

fn allowed(ip: IpAddr, config: &DispatcherConfig) -> bool {
    if ip.is_loopback() {
        return config.allow_loopback;
    }
    let special = match ip {
        IpAddr::V4(v4) => {
            v4.is_private()
                || v4.is_link_local()
                || v4.is_unspecified()
                || v4.is_broadcast()
                || v4.is_multicast()
                || v4.octets()[0] == 100 && (v4.octets()[1] & 0xc0) == 64
        }
        IpAddr::V6(v6) => {
            v6.is_unspecified()
                || v6.is_multicast()
                || (v6.segments()[0] & 0xfe00) == 0xfc00
                || (v6.segments()[0] & 0xffc0) == 0xfe80
        }
    };
    !special || config.allow_private
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_is_allowed_and_private_ranges_are_not_by_default() {
        let c = DispatcherConfig::default();
        assert!(allowed("127.0.0.1".parse().unwrap(), &c));
        assert!(allowed("::1".parse().unwrap(), &c));
        assert!(!allowed("10.0.0.1".parse().unwrap(), &c));
        assert!(!allowed("169.254.169.254".parse().unwrap(), &c));
        assert!(!allowed("fe80::1".parse().unwrap(), &c));
        let open = DispatcherConfig {
            allow_private: true,
            ..DispatcherConfig::default()
        };
        assert!(allowed("10.0.0.1".parse().unwrap(), &open));
    }
}
