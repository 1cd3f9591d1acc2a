//! Test support on top of `mkoba_testkit` (the server, the callback sink): the HTTP
//! helpers of these tests.

use std::collections::HashMap;
use std::time::Duration;

use axum::body::Bytes;
use axum::http::HeaderMap;
use base64::Engine as _;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mkoba::{Running, Settings};
use mkoba_testkit::server::TestServer;
use serde_json::Value;
use uuid::Uuid;

pub use mkoba_testkit::MPESA_TEST_KEY;

/// What a client sees of a response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {}", self.text()))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// An HTTP/1.1 client that sends exactly what it is told.
#[derive(Clone)]
pub struct Http {
    client: Client<HttpConnector, Full<Bytes>>,
}

impl Http {
    pub fn new() -> Http {
        Http {
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    pub async fn send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.try_send(method, url, headers, body)
            .await
            .expect("server answered")
    }

    /// [`Http::send`] to a server that may be gone: `None` when no whole answer came.
    pub async fn try_send(
        &self,
        method: &str,
        url: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Option<Resp> {
        let mut req = http::Request::builder().method(method).uri(url);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let body = Full::new(Bytes::from(body.unwrap_or("").to_owned()));
        let resp = self
            .client
            .request(req.body(body).expect("request"))
            .await
            .ok()?;
        let status = resp.status().as_u16();
        let headers = resp.headers().clone();
        let body = resp.into_body().collect().await.ok()?.to_bytes().to_vec();
        Some(Resp {
            status,
            headers,
            body,
        })
    }
}

/// Subscription keys of the sandbox developer.
#[derive(Debug, Clone)]
pub struct Keys {
    pub primary: HashMap<String, String>,
    pub secondary: HashMap<String, String>,
}

/// A running server with its own data directory (`mkoba_testkit`'s, which it derefs to:
/// `app.running`, `app.data_dir()`), and HTTP helpers for the tests.
pub struct TestApp {
    pub server: TestServer,
    pub base: String,
    pub keys: Keys,
    pub http: Http,
    /// `Authorization: Basic …` of the operator created at first start.
    operator: String,
}

impl std::ops::Deref for TestApp {
    type Target = TestServer;

    fn deref(&self) -> &TestServer {
        &self.server
    }
}

/// An API user with a key and a collection token.
#[derive(Debug, Clone)]
pub struct Partner {
    pub user: Uuid,
    pub key: String,
    pub token: String,
}

impl TestApp {
    pub async fn spawn() -> TestApp {
        TestApp::spawn_with(|_| {}).await
    }

    pub async fn spawn_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::around(TestServer::start_with(configure).await).await
    }

    /// Stops the server and starts it again on the same data directory, with the settings
    /// `configure` makes (a restart: only what is in the database carries over).
    pub async fn restart(self, configure: impl FnOnce(&mut Settings)) -> TestApp {
        TestApp::around(self.server.restart(configure).await).await
    }

    /// Stops the server (its data directory goes with it).
    pub async fn stop(self) {
        self.server.stop().await;
    }

    async fn around(server: TestServer) -> TestApp {
        let base = server.base_url();
        let keys = keys_of(&server.running);
        let operator = operator_auth(&server.running).await;
        TestApp {
            server,
            base,
            keys,
            operator,
            http: Http::new(),
        }
    }

    /// A server whose time is a [`ManualClock`](mkoba_platform::clock::ManualClock): the
    /// test moves it with [`TestApp::advance`] instead of sleeping.
    pub async fn spawn_with_clock(
        configure: impl FnOnce(&mut Settings),
    ) -> (TestApp, std::sync::Arc<mkoba_platform::clock::ManualClock>) {
        let clock = mkoba_platform::clock::ManualClock::starting_now();
        let shared = clock.clone();
        let app = TestApp::spawn_with(move |s| {
            s.platform.clock = shared;
            configure(s);
        })
        .await;
        (app, clock)
    }

    /// Moves a [`TestApp::spawn_with_clock`] server's clock and waits until its writer has
    /// settled what became due, as if the time had passed.
    pub async fn advance(&self, clock: &mkoba_platform::clock::ManualClock, by: Duration) {
        clock.advance(by);
        assert!(
            self.running.platform.wake().await,
            "the writer's pass failed"
        );
    }

    pub fn key(&self, product: &str) -> &str {
        &self.keys.primary[product]
    }

    pub async fn send(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: Option<&str>,
    ) -> Resp {
        self.http
            .send(method, &format!("{}{path}", self.base), headers, body)
            .await
    }

    /// Creates an API user (callback host as given) through the provisioning API.
    pub async fn create_user(&self, callback_host: &str) -> Uuid {
        let id = Uuid::new_v4();
        let r = self
            .send(
                "POST",
                "/v1_0/apiuser",
                &[
                    ("Ocp-Apim-Subscription-Key", self.key("collection")),
                    ("X-Reference-Id", &id.to_string()),
                    ("Content-Type", "application/json"),
                ],
                Some(&format!(r#"{{"providerCallbackHost":"{callback_host}"}}"#)),
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        id
    }

    pub async fn create_key(&self, user: Uuid) -> String {
        let r = self
            .send(
                "POST",
                &format!("/v1_0/apiuser/{user}/apikey"),
                &[("Ocp-Apim-Subscription-Key", self.key("collection"))],
                None,
            )
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["apiKey"].as_str().expect("apiKey").to_owned()
    }

    pub async fn token_response(&self, product: &str, user: Uuid, key: &str) -> Resp {
        let basic = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{key}"));
        self.send(
            "POST",
            &format!("/{product}/token/"),
            &[
                ("Ocp-Apim-Subscription-Key", self.key(product)),
                ("Authorization", &format!("Basic {basic}")),
            ],
            None,
        )
        .await
    }

    pub async fn token(&self, product: &str, user: Uuid, key: &str) -> String {
        let r = self.token_response(product, user, key).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["access_token"].as_str().expect("token").to_owned()
    }

    /// A sandbox API user with key and collection token.
    pub async fn partner(&self, callback_host: &str) -> Partner {
        let user = self.create_user(callback_host).await;
        let key = self.create_key(user).await;
        let token = self.token("collection", user, &key).await;
        Partner { user, key, token }
    }

    /// `POST /collection/v1_0/requesttopay` with the usual headers plus `extra`.
    pub async fn request_to_pay(
        &self,
        p: &Partner,
        reference: Uuid,
        body: &str,
        extra: &[(&str, &str)],
    ) -> Resp {
        let bearer = format!("Bearer {}", p.token);
        let reference = reference.to_string();
        let mut headers = vec![
            ("Ocp-Apim-Subscription-Key", self.key("collection")),
            ("Authorization", bearer.as_str()),
            ("X-Target-Environment", "sandbox"),
            ("X-Reference-Id", reference.as_str()),
            ("Content-Type", "application/json"),
        ];
        headers.extend_from_slice(extra);
        self.send(
            "POST",
            "/collection/v1_0/requesttopay",
            &headers,
            Some(body),
        )
        .await
    }

    /// `GET` a collection path with the partner's credentials.
    pub async fn get(&self, p: &Partner, path: &str) -> Resp {
        let bearer = format!("Bearer {}", p.token);
        self.send(
            "GET",
            &format!("/collection{path}"),
            &[
                ("Ocp-Apim-Subscription-Key", self.key("collection")),
                ("Authorization", &bearer),
                ("X-Target-Environment", "sandbox"),
            ],
            None,
        )
        .await
    }

    /// Polls the status until it is final (or panics after 10 s).
    pub async fn final_status(&self, p: &Partner, reference: Uuid) -> Value {
        wait_for(|| async {
            let r = self
                .get(p, &format!("/v1_0/requesttopay/{reference}"))
                .await;
            assert_eq!(r.status, 200, "{}", r.text());
            let v = r.json();
            (v["status"] != "PENDING").then_some(v)
        })
        .await
    }

    pub async fn balance(&self, p: &Partner) -> String {
        let r = self.get(p, "/v1_0/account/balance").await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["availableBalance"]
            .as_str()
            .expect("balance")
            .to_owned()
    }

    /// The admin view of a transaction.
    pub async fn admin_transaction(&self, reference: Uuid) -> Value {
        let r = self
            .send(
                "GET",
                &format!("/_mkoba/transactions/{reference}"),
                &[("Ocp-Apim-Subscription-Key", self.key("collection"))],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }

    /// `Authorization: Basic …` of the operator created at first start (the admin
    /// endpoints' platform-wide reads need it).
    pub fn operator_auth(&self) -> String {
        self.operator.clone()
    }

    /// A payment's callbacks (outbox rows), once none is pending any more: after this no
    /// further callback of it can be sent, so a test can count what arrived without
    /// waiting to see whether more come.
    pub async fn final_callbacks(
        &self,
        reference: Uuid,
    ) -> Vec<mkoba_platform::portal::OutboxRecord> {
        wait_for(|| async {
            let rows = self
                .running
                .platform
                .portal()
                .outbox_of(&reference)
                .await
                .expect("reading the outbox");
            rows.iter().all(|r| r.state != "pending").then_some(rows)
        })
        .await
    }

    /// Asserts that, per currency, debits equal credits.
    /// The sandbox developer's portal sign-in (printed in the banner).
    pub async fn sandbox_login(&self) -> mkoba_platform::portal::SandboxLogin {
        self.running
            .platform
            .portal()
            .sandbox_login()
            .await
            .expect("reading the sandbox login")
            .expect("a sandbox login")
    }

    /// The API user of the sandbox developer's M-Pesa application.
    pub async fn mpesa_api_user(&self) -> Uuid {
        self.running
            .platform
            .mpesa()
            .app(mkoba_platform::SANDBOX_DEVELOPER)
            .await
            .expect("reading the M-Pesa application")
            .expect("the sandbox M-Pesa application")
            .api_user
    }

    /// A series of the server's `/metrics` (the first line named so: a counter, a gauge, a
    /// histogram's `_count` or `_sum`).
    pub async fn metric(&self, name: &str) -> f64 {
        let metrics = self.send("GET", "/metrics", &[], None).await.text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix(&format!("{name} ")))
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("{name} in {metrics}"))
    }

    pub async fn assert_ledger_balanced(&self) {
        let auth = self.operator_auth();
        let r = self
            .send("GET", "/_mkoba/ledger", &[("Authorization", &auth)], None)
            .await;
        assert_eq!(r.status, 200);
        let v = r.json();
        assert_eq!(v["balanced"], true, "{v}");
    }
}

/// `Authorization: Basic …` of a server's first operator.
async fn operator_auth(running: &Running) -> String {
    use base64::Engine as _;
    let login = running
        .platform
        .portal()
        .operator_login()
        .await
        .expect("reading the operator")
        .expect("an operator exists");
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD
            .encode(format!("{}:{}", login.email, login.password))
    )
}

fn keys_of(running: &Running) -> Keys {
    let keys = running
        .platform
        .credentials()
        .subscription_keys(mkoba_platform::SANDBOX_DEVELOPER);
    let mut primary = HashMap::new();
    let mut secondary = HashMap::new();
    for k in keys {
        let map = match k.slot {
            mkoba_platform::model::KeySlot::Primary => &mut primary,
            mkoba_platform::model::KeySlot::Secondary => &mut secondary,
        };
        map.insert(k.product.as_str().to_owned(), k.key);
    }
    Keys { primary, secondary }
}

/// Retries `check` every 20 ms until it returns `Some`, for at most 10 s.
pub async fn wait_for<T, F, Fut>(check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    wait_for_within(Duration::from_secs(10), check).await
}

/// Retries `check` every 20 ms until it returns `Some`, for at most `limit`.
pub async fn wait_for_within<T, F, Fut>(limit: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if let Some(v) = check().await {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("condition not reached within {limit:?}");
}

pub use mkoba_testkit::sink::{Sink, test_ca};

/// The text between `start` and the next `end` after it.
pub fn between<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let at = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} in {html}"))
        + start.len();
    let rest = &html[at..];
    &rest[..rest.find(end).unwrap_or(rest.len())]
}

/// A transaction page's timeline (the portal's `<ol class="timeline">`), checked to show
/// each of `steps`.
pub fn timeline_showing<'a>(page: &'a str, steps: &[&str]) -> &'a str {
    let timeline = between(page, "<ol class=\"timeline\"", "</ol>");
    for step in steps {
        assert!(timeline.contains(step), "{step}: {timeline}");
    }
    timeline
}

/// A request-to-pay body.
pub fn rtp_body(amount: &str, msisdn: &str) -> String {
    format!(
        r#"{{"amount":"{amount}","currency":"EUR","externalId":"ext-{msisdn}","payer":{{"partyIdType":"MSISDN","partyId":"{msisdn}"}},"payerMessage":"Pay for order","payeeNote":"Order"}}"#
    )
}

/// A list of request headers.
pub type Headers<'a> = Vec<(&'a str, &'a str)>;

/// The output of a script run by a compatibility or conformance test.
pub struct ScriptRun {
    pub success: bool,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `bash <repository>/<script>` with `env` added to the environment.
pub async fn run_script(script: &str, env: &[(&str, &str)]) -> ScriptRun {
    let path = format!("{}/../../{script}", env!("CARGO_MANIFEST_DIR"));
    let out = tokio::process::Command::new("bash")
        .arg(&path)
        .envs(env.iter().copied())
        .output()
        .await
        .expect("bash runs");
    ScriptRun {
        success: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Whether every control named `name` on a portal page is marked invalid and points at the
/// form's error sentence (`aria-describedby` naming `form-error`), and there is one.
pub fn marked_invalid(html: &str, name: &str) -> bool {
    let attr = format!("name=\"{name}\"");
    let controls: Vec<&str> = html
        .split('<')
        .filter(|tag| tag.contains(&attr))
        .map(|tag| tag.split('>').next().unwrap_or_default())
        .collect();
    html.contains("id=\"form-error\"")
        && !controls.is_empty()
        && controls.iter().all(|tag| {
            let described = tag
                .split("aria-describedby=\"")
                .nth(1)
                .and_then(|rest| rest.split('"').next())
                .unwrap_or_default();
            tag.contains("aria-invalid=\"true\"")
                && described.split(' ').any(|id| id == "form-error")
        })
}
