//! The M-Pesa client against a real Mkoba server started by each test on 127.0.0.1:0,
//! over HTTP: every operation, sessions shared and replaced, typed errors with their INS
//! codes, and asynchronous results received, parsed and acknowledged.
//!
//! The API key and public key are read the way a developer would, from
//! `GET /_mkoba/mpesa/application`.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hyper_util::client::legacy::Client as HttpClient;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use mkoba_platform::model::{KeySlot, Product};
use mkoba_sdk::mpesa::{
    Amount, AsyncResult, B2bPayment, B2cPayment, BeneficiaryNameQuery, C2bPayment, Client, Config,
    DirectDebitCancel, DirectDebitCreate, DirectDebitPayment, DirectDebitQuery, Frequency, InsCode,
    Market, ResultKind, Reversal, TransactionStatusQuery, parse_result,
};
use mkoba_sdk::{Error, ErrorSource};
use mkoba_server::Settings;
use mkoba_testkit::server::TestServer;
use serde_json::{Value, json};

/// A real server (`mkoba_testkit`) and a plain HTTP client for raw calls.
struct App {
    server: TestServer,
    http: HttpClient<HttpConnector, Full<Bytes>>,
}

/// The sandbox application as a developer holds it.
struct Credentials {
    api_key: String,
    public_key: String,
}

impl App {
    async fn start() -> App {
        App::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut Settings)) -> App {
        App {
            server: TestServer::start_with(configure).await,
            http: HttpClient::builder(TokioExecutor::new()).build(HttpConnector::new()),
        }
    }

    fn base(&self) -> String {
        self.server.running.base_url()
    }

    fn collection_key(&self) -> String {
        self.server
            .running
            .platform
            .credentials()
            .subscription_keys(mkoba_platform::SANDBOX_DEVELOPER)
            .into_iter()
            .find(|k| k.product == Product::Collection && k.slot == KeySlot::Primary)
            .expect("collection key")
            .key
    }

    /// An admin call under `/_mkoba/mpesa/`: (status, JSON body).
    async fn admin(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.admin_call(method, &format!("/_mkoba/mpesa{path}"), body)
            .await
    }

    /// `GET` of an admin path.
    async fn admin_get(&self, path: &str) -> (u16, Value) {
        self.admin_call("GET", path, None).await
    }

    async fn admin_call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let req = http::Request::builder()
            .method(method)
            .uri(format!("{}{path}", self.base()))
            .header("ocp-apim-subscription-key", self.collection_key())
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(
                body.map(|b| b.to_string()).unwrap_or_default(),
            )))
            .unwrap();
        let resp = self.http.request(req).await.expect("server answers");
        let status = resp.status().as_u16();
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    async fn credentials(&self) -> Credentials {
        let (status, v) = self.admin("GET", "/application", None).await;
        assert_eq!(status, 200, "{v}");
        Credentials {
            api_key: v["api_key"].as_str().expect("api_key").to_owned(),
            public_key: v["public_key"].as_str().expect("public_key").to_owned(),
        }
    }

    async fn settings(&self, settings: Value) {
        let (status, v) = self.admin("PUT", "/application", Some(settings)).await;
        assert_eq!(status, 200, "{v}");
    }

    async fn config(&self, market: Market) -> Config {
        let c = self.credentials().await;
        Config::new(market, c.api_key, c.public_key).base_url(self.base())
    }

    async fn client(&self) -> Client {
        Client::new(self.config(Market::VodacomTzn).await).expect("client")
    }
}

fn c2b(amount: &str, msisdn: &str) -> C2bPayment {
    C2bPayment {
        amount: Amount::parse(amount).unwrap(),
        customer_msisdn: msisdn.into(),
        service_provider_code: "000000".into(),
        transaction_reference: "T1234C".into(),
        purchased_items_desc: "Shoes".into(),
    }
}

fn b2c(amount: &str, msisdn: &str) -> B2cPayment {
    B2cPayment {
        amount: Amount::parse(amount).unwrap(),
        customer_msisdn: msisdn.into(),
        service_provider_code: "000000".into(),
        transaction_reference: "T12344C".into(),
        payment_items_desc: "Salary payment".into(),
    }
}

fn status_of(reference: &str) -> TransactionStatusQuery {
    TransactionStatusQuery {
        query_reference: reference.into(),
        service_provider_code: "000000".into(),
    }
}

fn mandate(reference: &str) -> DirectDebitCreate {
    DirectDebitCreate {
        customer_msisdn: "000000000001".into(),
        service_provider_code: "000000".into(),
        third_party_reference: reference.into(),
        agreed_tc: true,
        first_payment_date: Some("20990324".into()),
        // On demand: collected as often as the test needs (a periodic mandate allows one
        // payment per period, docs/mpesa.md §"Mandate schedules").
        frequency: Some(Frequency::OnDemand),
        start_range_of_days: None,
        end_range_of_days: None,
        expiry_date: Some("20991126".into()),
    }
}

/// The gateway's error, or a panic saying what came instead.
fn mpesa_error<T: std::fmt::Debug>(r: mkoba_sdk::Result<T>) -> mkoba_sdk::MpesaError {
    match r {
        Err(Error::Mpesa(e)) => *e,
        other => panic!("expected an M-Pesa error, got {other:?}"),
    }
}

/// Waits (at most 10 s) until `f` gives a value.
async fn eventually<T>(mut f: impl FnMut() -> Option<T>) -> T {
    for _ in 0..400 {
        if let Some(v) = f() {
            return v;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("nothing within 10 s");
}

// ---- operations -------------------------------------------------------------------------------

#[tokio::test]
async fn c2b_pays_and_returns_the_generated_conversation_id() {
    let app = App::start().await;
    let client = app.client().await;
    let request = client.c2b(&c2b("10.50", "000000000001"));
    let id = request.id().to_owned();
    assert_eq!(id.len(), 32, "a generated id: {id}");
    let paid = request.await.unwrap();
    assert_eq!(paid.response_code, InsCode::Success);
    assert_eq!(paid.response_desc, "Request processed successfully");
    assert_eq!(paid.third_party_conversation_id, id);
    assert_eq!(paid.conversation_id.len(), 32);
    let tx = paid
        .transaction_id
        .clone()
        .expect("synchronous: a transaction id");
    assert_eq!(tx.len(), 12);
    assert!(!paid.is_asynchronous());

    // Your own id is sent as given, and echoed.
    let own = client
        .c2b(&c2b("1", "000000000001"))
        .third_party_conversation_id("order 42")
        .await
        .unwrap();
    assert_eq!(own.third_party_conversation_id, "order 42");

    // The platform recorded 10.50 TZS, in minor units.
    let (status, t) = app
        .admin_get(&format!("/_mkoba/transactions/{}", paid.conversation_id))
        .await;
    assert_eq!(status, 200, "{t}");
    assert_eq!(t["kind"], "c2b");
    assert_eq!(t["amount_minor"], 1050);
    assert_eq!(t["currency"], "TZS");
    assert_eq!(t["financial_transaction_id"], tx.as_str());
}

#[tokio::test]
async fn b2c_and_b2b_pay_out_and_between_businesses() {
    let app = App::start().await;
    let client = app.client().await;
    let paid = client.b2c(&b2c("25", "000000000001")).await.unwrap();
    assert_eq!(paid.response_code, InsCode::Success);
    assert!(paid.transaction_id.is_some());
    let b2b = client
        .b2b(&B2bPayment {
            amount: Amount::from_major(7),
            primary_party_code: "000000".into(),
            receiver_party_code: "000001".into(),
            transaction_reference: "T12344C".into(),
            purchased_items_desc: "Shoes".into(),
        })
        .await
        .unwrap();
    assert_eq!(b2b.response_code, InsCode::Success);
    assert_ne!(b2b.transaction_id, paid.transaction_id);
}

#[tokio::test]
async fn reversals_return_all_or_part_and_never_more_than_remains() {
    let app = App::start().await;
    let client = app.client().await;
    let whole = client.c2b(&c2b("10", "000000000001")).await.unwrap();
    let reversal = |tx: &str, amount: Option<&str>| Reversal {
        transaction_id: tx.into(),
        service_provider_code: "000000".into(),
        amount: amount.map(|a| Amount::parse(a).unwrap()),
    };
    let tx = whole.transaction_id.unwrap();
    let reversed = client.reversal(&reversal(&tx, None)).await.unwrap();
    assert_eq!(reversed.response_code, InsCode::Success);
    assert_ne!(reversed.transaction_id.as_deref(), Some(tx.as_str()));

    let part = client.c2b(&c2b("10", "000000000001")).await.unwrap();
    let tx = part.transaction_id.unwrap();
    client
        .reversal(&reversal(&tx, Some("4")))
        .await
        .expect("4 of 10");
    let e = mpesa_error(client.reversal(&reversal(&tx, Some("7"))).await);
    assert_eq!(e.code, Some(InsCode::InvalidAmount), "only 6 remain: {e}");
    let status = client
        .query_transaction_status(&status_of(&tx))
        .await
        .unwrap();
    assert_eq!(status.is_reversed(), Some(true));

    let e = mpesa_error(client.reversal(&reversal("NOSUCHTX1", None)).await);
    assert_eq!(e.code, Some(InsCode::InvalidTransactionId));
}

#[tokio::test]
async fn transaction_status_is_found_by_transaction_conversation_or_own_id() {
    let app = App::start().await;
    let client = app.client().await;
    let paid = client.c2b(&c2b("10", "000000000001")).await.unwrap();
    let tx = paid.transaction_id.clone().unwrap();
    for reference in [
        &tx,
        &paid.conversation_id,
        &paid.third_party_conversation_id,
    ] {
        let s = client
            .query_transaction_status(&status_of(reference))
            .await
            .unwrap();
        assert_eq!(s.response_code, InsCode::Success);
        assert_eq!(
            s.transaction_status.as_deref(),
            Some("Completed"),
            "{reference}"
        );
        assert!(s.is_completed());
        assert_eq!(s.original_transaction_id.as_deref(), Some(tx.as_str()));
        assert_eq!(s.is_reversed(), Some(false));
    }
    let e = mpesa_error(
        client
            .query_transaction_status(&status_of("000000000000000000001"))
            .await,
    );
    assert_eq!(
        (e.status, e.code.clone()),
        (400, Some(InsCode::TransactionNotFound))
    );
    assert!(e.hint().is_some());
}

#[tokio::test]
async fn beneficiary_names_are_served_in_ghana_only() {
    let app = App::start().await;
    let ghana = Client::new(app.config(Market::VodafoneGha).await).unwrap();
    let query = BeneficiaryNameQuery {
        customer_msisdn: "000000000001".into(),
        service_provider_code: "000000".into(),
    };
    let name = ghana.query_beneficiary_name(&query).await.unwrap();
    assert_eq!(name.customer_first_name.as_deref(), Some("Jiazhen"));
    assert_eq!(name.customer_last_name.as_deref(), Some("Wuu"));
    let e = mpesa_error(app.client().await.query_beneficiary_name(&query).await);
    assert_eq!(e.code, Some(InsCode::ApiNotEnabled));
    assert!(e.hint().unwrap().contains("vodafoneGHA"));
}

#[tokio::test]
async fn a_direct_debit_mandate_collects_until_it_is_cancelled() {
    let app = App::start().await;
    let client = app.client().await;
    let created = client.direct_debit_create(&mandate("3333")).await.unwrap();
    assert_eq!(created.response_code, InsCode::Success);
    assert_eq!(created.transaction_reference.as_deref(), Some("3333"));
    let token = created.msisdn_token.clone().expect("a token");
    let mandate_id = created.mandate_id.clone().expect("a mandate id");

    let by_msisdn = DirectDebitPayment {
        customer_msisdn: Some("000000000001".into()),
        msisdn_token: None,
        service_provider_code: "000000".into(),
        third_party_reference: "3333".into(),
        amount: Amount::from_major(10),
        mandate_id: None,
    };
    let paid = client.direct_debit_payment(&by_msisdn).await.unwrap();
    assert!(paid.transaction_id.is_some());
    assert_eq!(paid.msisdn_token.as_deref(), Some(token.as_str()));
    let by_token = DirectDebitPayment {
        customer_msisdn: None,
        msisdn_token: Some(token.clone()),
        mandate_id: Some(mandate_id.clone()),
        amount: Amount::from_minor(550),
        ..by_msisdn.clone()
    };
    client.direct_debit_payment(&by_token).await.unwrap();

    let query = DirectDebitQuery {
        customer_msisdn: None,
        msisdn_token: Some(token.clone()),
        service_provider_code: "000000".into(),
        third_party_reference: "3333".into(),
        mandate_id: None,
        balance_amount: Some(Amount::from_major(200)),
    };
    let state = client.query_direct_debit(&query).await.unwrap();
    assert!(state.is_active());
    assert_eq!(state.has_sufficient_balance(), Some(true));
    assert_eq!(state.mandate_id.as_deref(), Some(mandate_id.as_str()));
    assert_eq!(state.frequency.as_deref(), Some("08"));
    assert!(
        state
            .payment_day_from
            .as_deref()
            .unwrap_or_default()
            .is_empty(),
        "an on-demand mandate has no range of days"
    );
    let unasked = client
        .query_direct_debit(&DirectDebitQuery {
            balance_amount: None,
            ..query.clone()
        })
        .await
        .unwrap();
    assert_eq!(unasked.has_sufficient_balance(), None);

    let cancel = DirectDebitCancel {
        customer_msisdn: Some("000000000001".into()),
        msisdn_token: None,
        service_provider_code: "000000".into(),
        third_party_reference: "3333".into(),
        mandate_id: None,
    };
    let cancelled = client.cancel_direct_debit(&cancel).await.unwrap();
    assert_eq!(cancelled.transaction_reference.as_deref(), Some("3333"));
    assert_eq!(cancelled.msisdn_token.as_deref(), Some(token.as_str()));
    let e = mpesa_error(client.direct_debit_payment(&by_msisdn).await);
    assert_eq!(e.code, Some(InsCode::NoActiveMandate));
    let e = mpesa_error(
        client
            .cancel_direct_debit(&DirectDebitCancel {
                third_party_reference: "00000000000000000001".into(),
                ..cancel
            })
            .await,
    );
    assert_eq!(
        (e.status, e.code.clone(), e.message.as_str()),
        (
            401,
            Some(InsCode::TransactionFailed),
            "Mandate does not exist"
        )
    );
    assert!(
        !e.is_session_refusal(),
        "a transaction's 401 is not retried"
    );
}

// ---- sessions ---------------------------------------------------------------------------------

#[tokio::test]
async fn one_session_serves_many_calls_and_concurrent_tasks() {
    let app = App::start().await;
    let client = app.client().await;
    assert_eq!(client.session_fetches(), 0, "nothing is sent before a call");
    let calls = (0..20).map(|_| {
        let client = client.clone();
        tokio::spawn(async move { client.c2b(&c2b("1", "000000000001")).await })
    });
    for call in join_all(calls).await {
        call.expect("task").expect("paid");
    }
    client
        .query_transaction_status(&status_of("000000000000000000001"))
        .await
        .unwrap_err();
    assert_eq!(client.session_fetches(), 1, "one getSession for 21 calls");
    let session = client.session_id().await.unwrap();
    assert_eq!(session.len(), 32);
    assert_eq!(client.session_fetches(), 1);
    // An explicit new session bypasses the cache.
    let fresh = client.create_session().await.unwrap();
    assert_eq!(fresh.len(), 32);
    assert_eq!(client.session_id().await.unwrap(), session);
    assert_eq!(client.session_fetches(), 2);
}

/// Awaits every task.
async fn join_all<T>(
    tasks: impl Iterator<Item = tokio::task::JoinHandle<T>>,
) -> Vec<Result<T, tokio::task::JoinError>> {
    let mut out = Vec::new();
    for t in tasks.collect::<Vec<_>>() {
        out.push(t.await);
    }
    out
}

#[tokio::test]
async fn an_expired_session_is_replaced_transparently() {
    // The server's time is a manual clock: the session expires when the test moves it.
    let clock = mkoba_platform::clock::ManualClock::starting_now();
    let server_clock = clock.clone();
    let app = App::start_with(move |s| s.platform.clock = server_clock).await;
    app.settings(json!({"session_lifetime_secs": 1})).await;

    // The client assumes an hour, so it learns of the expiry from the gateway's 401.
    let trusting = app.client().await;
    trusting.c2b(&c2b("1", "000000000001")).await.unwrap();
    let before = trusting.session_fetches();
    let old = trusting.session_id().await.unwrap();
    clock.advance(Duration::from_secs(3));
    assert_eq!(
        trusting.session_id().await.unwrap(),
        old,
        "still reused: the client assumes an hour"
    );
    let paid = trusting.c2b(&c2b("1", "000000000001")).await.unwrap();
    assert_eq!(paid.response_code, InsCode::Success);
    assert!(
        trusting.session_fetches() > before,
        "a new session after the 401"
    );
    assert_ne!(trusting.session_id().await.unwrap(), old);

    // Told the lifetime, the client replaces the session before the gateway refuses it.
    let told = Client::new(
        app.config(Market::VodacomTzn)
            .await
            .session_lifetime(Duration::from_secs(1)),
    )
    .unwrap();
    let first = told.session_id().await.unwrap();
    // The client counts the lifetime on Tokio's clock, the server on its own: move both on.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(1200)).await;
    tokio::time::resume();
    clock.advance(Duration::from_secs(2));
    let second = told.session_id().await.unwrap();
    assert_ne!(first, second, "replaced once its assumed lifetime ended");
    assert_eq!(told.session_fetches(), 2);
    told.b2c(&b2c("1", "000000000001")).await.unwrap();
}

#[tokio::test]
async fn a_wrong_api_key_fails_session_creation_with_ins_989() {
    let app = App::start().await;
    let c = app.credentials().await;
    let client = Client::new(
        Config::new(
            Market::VodacomTzn,
            "aaaab09uz9f3asdcjyk7els777ihmwv8",
            c.public_key,
        )
        .base_url(app.base()),
    )
    .unwrap();
    let e = client.c2b(&c2b("1", "000000000001")).await.unwrap_err();
    assert_eq!(e.ins_code(), Some(&InsCode::SessionCreationFailed));
    let m = e.mpesa().unwrap();
    assert_eq!((m.status, m.source), (400, ErrorSource::Mpesa));
    assert_eq!(m.message, "Session Creation Failed");
    assert!(e.hint().unwrap().contains("API key"), "{:?}", e.hint());
}

#[tokio::test]
async fn an_origin_the_application_does_not_allow_is_a_gateway_refusal() {
    let app = App::start().await;
    app.settings(json!({"allowed_origins": ["https://shop.example"]}))
        .await;
    let refused = app.client().await;
    let e = mpesa_error(refused.c2b(&c2b("1", "000000000001")).await);
    assert_eq!(
        (e.status, e.source, e.code.clone()),
        (403, ErrorSource::MpesaGateway, None)
    );
    assert_eq!(e.message, "Origin not allowed");
    assert!(e.is_origin_refusal());
    assert!(e.hint().unwrap().contains("Config::origin"));
    let allowed = Client::new(
        app.config(Market::VodacomTzn)
            .await
            .origin("https://shop.example"),
    )
    .unwrap();
    allowed.c2b(&c2b("1", "000000000001")).await.unwrap();
}

// ---- errors -----------------------------------------------------------------------------------

#[tokio::test]
async fn duplicates_bad_msisdns_and_insufficient_funds_are_typed_errors() {
    let app = App::start().await;
    let client = app.client().await;
    let first = client
        .c2b(&c2b("10", "000000000001"))
        .third_party_conversation_id("once")
        .await
        .unwrap();
    let e = mpesa_error(
        client
            .b2c(&b2c("5", "000000000001"))
            .third_party_conversation_id("once")
            .await,
    );
    assert_eq!(
        (e.status, e.code.clone()),
        (409, Some(InsCode::DuplicateTransaction))
    );
    assert_eq!(InsCode::DuplicateTransaction.status(), Some(e.status));
    assert!(e.is_duplicate());
    assert_eq!(e.transaction_id.as_deref(), Some("N/A"));
    assert_eq!(
        e.conversation_id.as_deref(),
        Some(first.conversation_id.as_str())
    );
    assert_eq!(e.third_party_conversation_id.as_deref(), Some("once"));
    assert!(e.hint().unwrap().contains("query its status"));

    let e = client.c2b(&c2b("10", "25570000001")).await.unwrap_err();
    assert_eq!(e.ins_code(), Some(&InsCode::InvalidMsisdn));
    assert_eq!(e.mpesa().unwrap().status, 400);
    assert!(e.to_string().contains("INS-2051"), "{e}");
    assert!(e.hint().unwrap().contains("12 to 14 digits"));

    let e = mpesa_error(client.c2b(&c2b("10", "000000000008")).await);
    assert_eq!(
        (e.status, e.code.clone()),
        (422, Some(InsCode::InsufficientBalance))
    );
    assert_eq!(e.message, "Insufficient balance");
    assert!(e.third_party_conversation_id.is_some());

    let e = mpesa_error(
        client
            .c2b(&C2bPayment {
                purchased_items_desc: "Handbag, Black shoes".into(),
                ..c2b("1", "000000000001")
            })
            .await,
    );
    assert_eq!(e.code, Some(InsCode::InvalidPurchasedItemsDescription));
    assert_eq!(client.session_fetches(), 1, "errors do not cost sessions");
}

#[tokio::test]
async fn a_customer_who_does_not_answer_in_time_is_ins_9() {
    let app = App::start_with(|s| s.mpesa.sync_timeout = Duration::from_millis(300)).await;
    let client = app.client().await;
    // The sandbox's "processing" number never answers.
    let request = client.c2b(&c2b("10", "000000000002"));
    let id = request.id().to_owned();
    let e = mpesa_error(request.await);
    assert_eq!(
        (e.status, e.code.clone()),
        (408, Some(InsCode::RequestTimeout))
    );
    assert!(e.hint().unwrap().contains("query the status"));
    let s = client
        .query_transaction_status(&status_of(&id))
        .await
        .unwrap();
    // The payment ended with the call.
    assert_eq!(s.transaction_status.as_deref(), Some("Expired"));
}

#[tokio::test]
async fn invalid_input_is_refused_before_anything_is_sent() {
    let app = App::start().await;
    let client = app.client().await;
    let zero = C2bPayment {
        amount: Amount::from_minor(0),
        ..c2b("1", "000000000001")
    };
    let e = client.c2b(&zero).await.unwrap_err();
    assert!(matches!(e, Error::Config(_)));
    // Said as what it is, not "invalid configuration" (the amount is no setting).
    assert!(e.to_string().starts_with("refused before sending: "), "{e}");
    let e = client
        .c2b(&c2b("1", "000000000001"))
        .third_party_conversation_id("order-1")
        .await
        .unwrap_err();
    assert!(e.to_string().contains("ThirdPartyConversationID"), "{e}");
    let nobody = DirectDebitCancel {
        service_provider_code: "000000".into(),
        third_party_reference: "3333".into(),
        ..Default::default()
    };
    let e = client.cancel_direct_debit(&nobody).await.unwrap_err();
    assert!(e.to_string().contains("MSISDN"), "{e}");
    assert_eq!(client.session_fetches(), 0, "nothing was sent");

    let c = app.credentials().await;
    for (config, says) in [
        (
            Config::new(Market::VodacomTzn, &c.api_key, "not base64!").base_url(app.base()),
            "not base64",
        ),
        (
            Config::new(Market::VodacomTzn, "", &c.public_key).base_url(app.base()),
            "API key",
        ),
        (
            Config::new(Market::VodacomTzn, &c.api_key, &c.public_key).base_url("127.0.0.1:8080"),
            "http://",
        ),
        (
            Config::new(Market::VodacomTzn, &c.api_key, &c.public_key).origin("a\nb"),
            "origin",
        ),
    ] {
        let e = Client::new(config).unwrap_err();
        assert!(e.to_string().contains(says), "{e}");
    }
}

#[tokio::test]
async fn an_unreachable_gateway_is_a_transport_error_with_a_hint() {
    let app = App::start().await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = listener.local_addr().unwrap();
    drop(listener);
    let c = app.credentials().await;
    let client = Client::new(
        Config::new(Market::VodacomTzn, c.api_key, c.public_key)
            .base_url(format!("http://{closed}")),
    )
    .unwrap();
    let e = client.session_id().await.unwrap_err();
    assert!(matches!(e, Error::Transport { .. }), "{e:?}");
    assert!(e.hint().unwrap().contains("base URL"));
}

// ---- asynchronous results ---------------------------------------------------------------------

/// A result listener: parses each result and answers the acknowledgement.
struct Listener {
    url: String,
    results: Arc<Mutex<Vec<AsyncResult>>>,
}

impl Listener {
    async fn start() -> Listener {
        let results: Arc<Mutex<Vec<AsyncResult>>> = Arc::default();
        let store = results.clone();
        let app = axum::Router::new().route(
            "/mpesa/results",
            axum::routing::post(move |body: axum::body::Bytes| {
                let store = store.clone();
                async move {
                    match parse_result(&body) {
                        Ok(result) => {
                            let ack = result.acknowledgement().to_json();
                            store.lock().unwrap().push(result);
                            (
                                axum::http::StatusCode::OK,
                                [(axum::http::header::CONTENT_TYPE, "application/json")],
                                ack,
                            )
                        }
                        Err(e) => (
                            axum::http::StatusCode::BAD_REQUEST,
                            [(axum::http::header::CONTENT_TYPE, "text/plain")],
                            e.to_string(),
                        ),
                    }
                }
            }),
        );
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        tokio::spawn(async move { axum::serve(listener, app).await });
        Listener {
            url: format!("http://127.0.0.1:{port}/mpesa/results"),
            results,
        }
    }

    /// The result whose ThirdPartyConversationID is `id`, once it arrived.
    async fn result(&self, id: &str) -> AsyncResult {
        eventually(|| {
            self.results
                .lock()
                .unwrap()
                .iter()
                .find(|r| r.third_party_conversation_id.as_deref() == Some(id))
                .cloned()
        })
        .await
    }
}

#[tokio::test]
async fn asynchronous_results_are_posted_parsed_and_acknowledged() {
    let app = App::start_with(|s| s.mpesa.insecure_result_urls = true).await;
    let listener = Listener::start().await;
    app.settings(json!({"result_url": listener.url})).await;
    let client = app.client().await;

    let accepted = client.c2b(&c2b("10", "000000000001")).await.unwrap();
    assert!(
        accepted.is_asynchronous(),
        "no transaction id in the first answer"
    );
    let result = listener.result(&accepted.third_party_conversation_id).await;
    assert_eq!(result.kind(), ResultKind::Payment);
    assert!(result.is_success());
    assert_eq!(result.result_desc, "Request processed successfully");
    assert_eq!(
        result.original_conversation_id.as_deref(),
        Some(accepted.conversation_id.as_str())
    );
    let tx = result.transaction_id.clone().expect("the transaction id");
    assert_eq!(tx.len(), 12);
    let ack: Value = serde_json::from_str(&result.acknowledgement().to_json()).unwrap();
    assert_eq!(ack["output_ResponseCode"], "0");
    assert_eq!(ack["output_ResponseDesc"], "Successfully Accepted Result");
    assert_eq!(
        ack["output_OriginalConversationID"],
        accepted.conversation_id
    );
    assert_eq!(
        ack["output_ThirdPartyConversationID"],
        accepted.third_party_conversation_id
    );

    // A failure is accepted first; its code comes in the result.
    let accepted = client.c2b(&c2b("10", "000000000008")).await.unwrap();
    let failed = listener.result(&accepted.third_party_conversation_id).await;
    assert_eq!(failed.result_code, InsCode::InsufficientBalance);
    assert!(!failed.is_success());

    // A status query answers at once; the status comes in the result.
    let asked = client
        .query_transaction_status(&status_of(&tx))
        .await
        .unwrap();
    assert_eq!(asked.transaction_status, None);
    let status = listener.result(&asked.third_party_conversation_id).await;
    assert_eq!(status.kind(), ResultKind::TransactionStatus);
    assert_eq!(status.transaction_status.as_deref(), Some("Completed"));
    assert_eq!(status.original_transaction_id.as_deref(), Some(tx.as_str()));
    assert_eq!(status.reversed, Some(false));
}

#[tokio::test]
async fn asynchronous_direct_debit_results_are_told_apart_and_acknowledged() {
    let app = App::start_with(|s| s.mpesa.insecure_result_urls = true).await;
    let listener = Listener::start().await;
    app.settings(json!({"result_url": listener.url})).await;
    let client = app.client().await;

    let accepted = client
        .direct_debit_create(&mandate("5db410b459"))
        .await
        .unwrap();
    assert_eq!(accepted.mandate_id, None);
    let created = listener.result(&accepted.third_party_conversation_id).await;
    assert_eq!(created.kind(), ResultKind::DirectDebitCreate);
    assert!(created.is_success());
    let token = created.msisdn_token.clone().expect("token");
    assert!(created.mandate_id.is_some());
    assert_eq!(created.acknowledgement().response_code, "0");

    let asked = client
        .query_direct_debit(&DirectDebitQuery {
            customer_msisdn: None,
            msisdn_token: Some(token),
            service_provider_code: "000000".into(),
            third_party_reference: "5db410b459".into(),
            mandate_id: None,
            balance_amount: Some(Amount::from_major(5)),
        })
        .await
        .unwrap();
    assert_eq!(asked.mandate_status, None);
    let state = listener.result(&asked.third_party_conversation_id).await;
    assert_eq!(state.kind(), ResultKind::DirectDebitQuery);
    assert_eq!(state.mandate_status.as_deref(), Some("Active"));
    assert_eq!(state.sufficient_balance, Some(true));
    assert_eq!(
        state.original_conversation_id.as_deref(),
        Some(asked.conversation_id.as_str())
    );
    let ack = state.acknowledgement();
    assert_eq!(
        (ack.response_code.as_str(), ack.response_desc.as_str()),
        ("INS-0", "Successfully Accepted Result")
    );
}
