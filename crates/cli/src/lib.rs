//! The `mkoba` binary's library: the server (all of [`mkoba_server`], re-exported so
//! `mkoba::start` and friends read as before) and the client side that talks to a server
//! over HTTP through `mkoba-sdk`: the `mkoba momo`, `mkoba mpesa` and `mkoba clock`
//! subcommands and the benches. The server itself never depends on the SDK.

pub use mkoba_server::*;

pub mod bench;
pub mod bench_mpesa;
pub mod client_cli;
pub mod mpesa_cli;

/// An error in how a command was given (a value it cannot take, a missing argument): the
/// binary exits with status 2 for it, as for the usage errors the argument parser finds.
#[derive(Debug)]
pub struct Usage(pub String);

impl std::fmt::Display for Usage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Usage {}

/// `anyhow::bail!` for a [`Usage`] error.
#[macro_export]
macro_rules! usage {
    ($($arg:tt)*) => {
        return Err(anyhow::Error::new($crate::Usage(format!($($arg)*))))
    };
}

/// The HTTP client of `mkoba momo`, `mkoba mpesa` and `mkoba clock`: Mozilla's roots, and
/// also the local certificate authority of `mkoba serve --tls` in the server's data
/// directory (`DATA/tls/ca.pem`, when there is one) and the certificates of `SSL_CERT_FILE`
/// (as `mkoba tls trust` tells other clients), so that they reach a server over HTTPS.
///
/// `timeout` bounds each request: M-Pesa's synchronous calls wait for the customer
/// ([`mkoba_sdk::mpesa::DEFAULT_TIMEOUT`]), MoMo's answer at once.
pub fn client_transport(
    data: &std::path::Path,
    timeout: std::time::Duration,
) -> anyhow::Result<mkoba_sdk::Transport> {
    use anyhow::Context as _;
    let mut pem = std::fs::read(tls::ca_path(data)).unwrap_or_default();
    if let Some(file) = std::env::var_os("SSL_CERT_FILE") {
        let more = std::fs::read(&file)
            .with_context(|| format!("reading SSL_CERT_FILE {}", file.to_string_lossy()))?;
        pem.push(b'\n');
        pem.extend(more);
    }
    mkoba_sdk::Transport::trusting(timeout, 32, &pem)
        .map_err(|e| anyhow::anyhow!("the trusted certificates: {e}"))
}

/// Whether a transport error is a TLS handshake answered in plain HTTP (an `https://` URL
/// pointed at a server without `--tls`): rustls reads the HTTP answer as a corrupt record.
pub fn plain_http_answered_tls(message: &str) -> bool {
    message.contains("InvalidContentType") || message.contains("corrupt message")
}

/// Whether a transport error is plain HTTP answered in TLS (an `http://` URL pointed at a
/// server started with `--tls`): hyper reads the TLS alert as a bad status line.
pub fn tls_answered_plain_http(message: &str) -> bool {
    message.contains("invalid HTTP version parsed")
}

/// The hint for [`tls_answered_plain_http`].
pub const USE_HTTPS: &str =
    "--url says http:// but the server speaks TLS (`mkoba serve --tls`): use https://";
