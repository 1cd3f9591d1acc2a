//! `mkoba serve --tls`: HTTPS with a certificate from the local CA that names the
//! providers' hosts, a plain listener beside it, and published clients that hard-code
//! `https://` provider hosts reaching the server unmodified — python-pesa
//! (`https://openapi.m-pesa.com`) and the npm `mtn-momo` (`https://sandbox.momodeveloper.mtn.com`),
//! through the CA and a name override in the client process (nothing outside 127.0.0.1).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, ServerName, pem::PemObject as _};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::helpers::{Http, TestApp, run_script};

async fn tls_app() -> TestApp {
    TestApp::spawn_with(|s| {
        s.tls = Some(mkoba::tls::TlsSettings::default());
        s.plain_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await
}

fn ca_file(app: &TestApp) -> std::path::PathBuf {
    mkoba::tls::ca_path(&app.data_dir().join("data"))
}

/// One HTTPS request as `host` (SNI, certificate name and `Host`), connected to the
/// server's address, trusting the server's local CA; the raw answer.
async fn get_as(app: &TestApp, host: &str, path: &str) -> String {
    get_trusting(app, &ca_file(app), host, path).await
}

/// [`get_as`], trusting the certificates of the PEM file `roots`.
async fn get_trusting(
    app: &TestApp,
    roots_pem: &std::path::Path,
    host: &str,
    path: &str,
) -> String {
    let request = format!("GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n");
    send_trusting(app, roots_pem, host, &request).await
}

/// One raw HTTPS request as `host`, trusting the certificates of the PEM file `roots`; the
/// raw answer.
async fn send_trusting(
    app: &TestApp,
    roots_pem: &std::path::Path,
    host: &str,
    request: &str,
) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(roots_pem).unwrap() {
        roots.add(c.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(app.running.addr)
        .await
        .unwrap();
    let name = ServerName::try_from(host.to_owned()).unwrap();
    let mut tls = connector
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS as {host}: {e}"));
    tls.write_all(request.as_bytes()).await.unwrap();
    let mut out = String::new();
    tls.read_to_string(&mut out).await.unwrap();
    out
}

#[tokio::test]
async fn https_answers_as_every_provider_host_and_plain_http_beside_it() {
    let app = tls_app().await;
    assert!(app.base.starts_with("https://127.0.0.1:"), "{}", app.base);
    for host in ["localhost", "127.0.0.1"]
        .into_iter()
        .chain(mkoba::tls::PROVIDER_HOSTS)
    {
        let answer = get_as(&app, host, "/_mkoba/health").await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{host}: {answer}");
        assert!(answer.ends_with("{\"status\":\"ok\"}"), "{host}: {answer}");
    }
    // The dialects answer whatever Host says: M-Pesa's own error under its own name.
    let answer = get_as(
        &app,
        "openapi.m-pesa.com",
        "/sandbox/ipg/v2/vodacomTZN/getSession/",
    )
    .await;
    assert!(
        answer.contains("\"output_ResponseCode\":\"INS-989\""),
        "{answer}"
    );
    // The plain listener beside it.
    let plain = app.running.plain_addr.expect("bound");
    let r = Http::new()
        .send("GET", &format!("http://{plain}/_mkoba/health"), &[], None)
        .await;
    assert_eq!(r.status, 200);
    // Plain HTTP on the TLS port gets no answer.
    let r = Http::new()
        .try_send(
            "GET",
            &format!("http://{}/_mkoba/health", app.running.addr),
            &[],
            None,
        )
        .await;
    assert!(r.is_none_or(|r| r.status != 200));
    // `mkoba tls trust` tells how to trust this CA.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["tls", "trust", "--data"])
        .arg(app.data_dir().join("data"))
        .output()
        .await
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8_lossy(&out.stdout);
    let ca = std::fs::canonicalize(ca_file(&app)).unwrap();
    assert!(
        text.contains(&format!("REQUESTS_CA_BUNDLE={}", ca.display())),
        "{text}"
    );
    assert!(text.contains("127.0.0.1 openapi.m-pesa.com"), "{text}");
}

#[tokio::test]
async fn a_certificate_from_files_is_served_instead_of_the_local_cas() {
    let dir = tempfile::tempdir().unwrap();
    let own = rcgen::generate_simple_self_signed(vec!["pay.bank.example".to_owned()]).unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, own.cert.pem()).unwrap();
    std::fs::write(&key, own.key_pair.serialize_pem()).unwrap();
    let app = TestApp::spawn_with(|s| {
        s.tls = Some(mkoba::tls::TlsSettings {
            cert: Some(cert.clone()),
            key: Some(key.clone()),
            hosts: Vec::new(),
        });
    })
    .await;
    let answer = get_trusting(&app, &cert, "pay.bank.example", "/_mkoba/health").await;
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    assert!(
        !ca_file(&app).exists(),
        "no local CA is made when a certificate is given"
    );
}

#[tokio::test]
async fn python_pesa_reaches_the_server_under_its_hard_coded_https_host() {
    let app = tls_app().await;
    let api_key = app
        .running
        .platform
        .mpesa()
        .app(mkoba_platform::SANDBOX_DEVELOPER)
        .await
        .unwrap()
        .unwrap()
        .api_key
        .unwrap();
    let ca = ca_file(&app);
    let run = run_script(
        "tests/compat/python-pesa/run.sh",
        &[
            ("MPESA_CONNECT_TO", &app.running.addr.to_string()),
            ("MPESA_API_KEY", &api_key),
            (
                "MPESA_PUBLIC_KEY",
                app.running.mpesa_key.public_key_base64(),
            ),
            ("REQUESTS_CA_BUNDLE", ca.to_str().unwrap()),
        ],
    )
    .await;
    assert!(
        run.success,
        "python-pesa over TLS failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains("5 passed, 0 failed"), "{}", run.stdout);
    assert!(
        run.stderr
            .contains("https://openapi.m-pesa.com/sandbox/ipg/v2/vodacomTZN/getSession/"),
        "the library's own URLs: {}",
        run.stderr
    );
}

#[tokio::test]
async fn the_mtn_momo_npm_client_reaches_the_server_under_its_default_https_base_url() {
    let app = tls_app().await;
    let ca = ca_file(&app);
    let run = run_script(
        "tests/compat/mtn-momo/run.sh",
        &[
            ("MOMO_CONNECT_TO", &app.running.addr.to_string()),
            ("MOMO_COLLECTION_KEY", app.key("collection")),
            ("MOMO_CALLBACK_HOST", "127.0.0.1"),
            ("NODE_EXTRA_CA_CERTS", ca.to_str().unwrap()),
        ],
    )
    .await;
    assert!(
        run.success,
        "mtn-momo over TLS failed:\n{}\n{}",
        run.stdout, run.stderr
    );
    assert!(run.stdout.contains(" passed, 0 failed"), "{}", run.stdout);
}

/// Over HTTPS the widget's payer link (its QR code) is `https://` too, and `http://` over
/// the plain listener beside it: a payer's browser cannot open an `http://` link on an
/// HTTPS-only port.
#[tokio::test]
async fn the_widgets_payer_link_has_the_scheme_the_page_reached_the_server_with() {
    let app = tls_app().await;
    let plain = app.running.plain_addr.expect("bound");
    let http = Http::new();
    let user = uuid::Uuid::new_v4().to_string();
    let key = app.key("collection").to_owned();
    let r = http
        .send(
            "POST",
            &format!("http://{plain}/v1_0/apiuser"),
            &[
                ("Ocp-Apim-Subscription-Key", &key),
                ("X-Reference-Id", &user),
            ],
            Some(r#"{"providerCallbackHost":"127.0.0.1"}"#),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let body = serde_json::json!({"apiUserId": user, "amount": "100", "currency": "EUR", "externalId": "o-1"}).to_string();
    let request = |host: &str| {
        format!(
            "POST /widget/v1_0/invoice HTTP/1.1\r\nHost: {host}\r\nOrigin: https://shop.test\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    };
    let answer = send_trusting(&app, &ca_file(&app), "localhost", &request("localhost")).await;
    assert!(answer.starts_with("HTTP/1.1 201"), "{answer}");
    assert!(
        answer.contains("\"qrLink\":\"https://localhost/portal/phone/invoice/"),
        "{answer}"
    );
    let r = http
        .send(
            "POST",
            &format!("http://{plain}/widget/v1_0/invoice"),
            &[
                ("Origin", "https://shop.test"),
                ("Content-Type", "application/json"),
            ],
            Some(&body),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let link = r.json()["qrLink"].as_str().unwrap().to_owned();
    assert!(
        link.starts_with(&format!("http://{plain}/portal/phone/invoice/")),
        "{link}"
    );
}

/// The API docs' code samples name the server as the browser reached it: `https://` over
/// TLS (they said `http://`, a port that speaks only TLS).
#[tokio::test]
async fn the_api_docs_samples_use_https_over_tls() {
    let app = tls_app().await;
    let plain = app.running.plain_addr.expect("bound");
    let login = app.sandbox_login().await;
    let mut b = crate::portal::Browser::new(&format!("http://{plain}"));
    assert_eq!(b.sign_in(&login.email, &login.password).await.status, 303);
    let request = format!(
        "GET /portal/docs/Collection-Requesttopay-V1 HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nConnection: close\r\n\r\n",
        b.cookie_header()
    );
    let answer = send_trusting(&app, &ca_file(&app), "localhost", &request).await;
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "{}",
        &answer[..answer.len().min(400)]
    );
    assert!(
        answer.contains("https://localhost/collection/v1_0/requesttopay"),
        "the sample's URL"
    );
    assert!(
        !answer.contains("http://localhost/collection"),
        "no plain-HTTP URL"
    );
    assert!(answer.contains("<dt>SSL</dt><dd><code>true</code></dd>"));
    // M-Pesa's resource URLs are the server's own, HTTPS too: its API pages and the M-Pesa
    // page's table.
    let main = app.running.addr;
    for (page, needle) in [
        (
            "/portal/docs/v2C2bSingleStage",
            format!("https://{main}/sandbox/ipg/v2/"),
        ),
        ("/portal/mpesa", "</code></td><td>true</td></tr>".to_owned()),
    ] {
        let request = format!(
            "GET {page} HTTP/1.1\r\nHost: localhost\r\nCookie: {}\r\nConnection: close\r\n\r\n",
            b.cookie_header()
        );
        let answer = send_trusting(&app, &ca_file(&app), "localhost", &request).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{page}");
        assert!(answer.contains(&needle), "{page}: {needle}");
        assert!(!answer.contains(&format!("http://{main}")), "{page}");
        assert!(!answer.contains("<td>false</td>"), "{page}");
    }
    // Over the plain listener, the plain URL.
    let html = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    assert!(html.contains(&format!("http://{plain}/collection/v1_0/requesttopay")));
}

/// `mkoba momo` and `mkoba mpesa` reach a server over `--tls`: they trust the local CA in
/// the server's data directory (`--data`), as other clients are told to by `mkoba tls
/// trust`.
#[tokio::test]
async fn the_cli_clients_reach_the_server_over_https() {
    let app = tls_app().await;
    let data = app.data_dir().join("data");
    let url = format!("https://localhost:{}", app.running.addr.port());
    let run = |args: Vec<&str>| {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"));
        command
            .args(args)
            .arg("--data")
            .arg(&data)
            .args(["--url", &url])
            .env_remove("MKOBA_DATABASE_URL")
            .env_remove("SSL_CERT_FILE")
            .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY);
        async move { command.output().await.unwrap() }
    };
    let o = run(vec!["momo", "provision", "--json"]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let o = run(vec!["mpesa", "session", "--json"]).await;
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // Without the server's data directory, the certificate is not trusted, and the error
    // says how to fix that.
    // The clock commands say the same (they said only "UnknownIssuer").
    let empty = tempfile::tempdir().unwrap();
    let key = "0123456789abcdef0123456789abcdef";
    for args in [
        ["momo", "provision", "--subscription-key", key],
        ["clock", "list", "--subscription-key", app.key("collection")],
    ] {
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(args)
            .arg("--data")
            .arg(empty.path())
            .args(["--url", &url])
            .env_remove("SSL_CERT_FILE")
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(
            stderr.contains("certificate is not trusted"),
            "{args:?}: {stderr}"
        );
    }
    // With the CA in SSL_CERT_FILE, as `mkoba tls trust` tells clients, it is trusted.
    let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
        .args(["momo", "provision", "--json"])
        .arg("--data")
        .arg(empty.path())
        .args(["--url", &url])
        .args(["--subscription-key", app.key("collection")])
        .env("SSL_CERT_FILE", ca_file(&app))
        .output()
        .await
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // http:// to the TLS port: said so, not "is the server running?".
    let plain = format!("http://127.0.0.1:{}", app.running.addr.port());
    for args in [["momo", "provision"], ["mpesa", "session"]] {
        let o = tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(args)
            .arg("--data")
            .arg(&data)
            .args(["--url", &plain])
            .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success());
        assert!(stderr.contains("use https://"), "{args:?}: {stderr}");
    }
}
