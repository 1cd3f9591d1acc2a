//! Every SDK method against a real Mkoba server started by the test on 127.0.0.1:0, over
//! HTTP.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use mkoba_platform::model::{KeySlot, Product as ServerProduct};
use mkoba_sdk::momo::{
    AccessType, Callback, Collection, Config, Disbursement, IdType, Poll, Product, Provisioning,
    ReferenceId, Remittance, SandboxUser, Status, Transaction as _, parse_callback,
    reference_in_path,
};
use mkoba_sdk::types::momo::{
    CashTransfer, CashTransferDetails, CreateInvoice, CreatePayments, Money, Party, PreApproval,
    Refund, RequestToPay, Transfer,
};
use mkoba_sdk::{Error, ReasonCode};
use mkoba_server::Settings;
use mkoba_testkit::server::TestServer;

/// A real server (`mkoba_testkit`), with the SDK clients of its sandbox developer.
struct App {
    server: TestServer,
}

impl App {
    async fn start() -> App {
        App::start_with(|_| {}).await
    }

    async fn start_with(configure: impl FnOnce(&mut Settings)) -> App {
        App {
            server: TestServer::start_with(configure).await,
        }
    }

    fn base(&self) -> String {
        self.server.running.base_url()
    }

    fn key(&self, product: Product) -> String {
        let product = match product {
            Product::Collection => ServerProduct::Collection,
            Product::Disbursement => ServerProduct::Disbursement,
            Product::Remittance => ServerProduct::Remittance,
        };
        self.server
            .running
            .platform
            .credentials()
            .subscription_keys(mkoba_platform::SANDBOX_DEVELOPER)
            .into_iter()
            .find(|k| k.product == product && k.slot == KeySlot::Primary)
            .expect("key")
            .key
    }

    fn provisioning(&self) -> Provisioning {
        Provisioning::new(self.key(Product::Collection)).base_url(self.base())
    }

    async fn user(&self, host: &str) -> SandboxUser {
        self.provisioning()
            .provision(host)
            .await
            .expect("provision")
    }

    fn config(&self, product: Product, user: &SandboxUser) -> Config {
        Config::new(self.key(product))
            .base_url(self.base())
            .api_user(&user.api_user, &user.api_key)
    }

    async fn collection(&self) -> Collection {
        let user = self.user("127.0.0.1").await;
        Collection::new(self.config(Product::Collection, &user)).unwrap()
    }
}

fn rtp(amount: &str, payer: &str) -> RequestToPay {
    RequestToPay {
        amount: amount.into(),
        currency: "EUR".into(),
        external_id: Some(format!("order-{payer}")),
        payer: Party::msisdn(payer),
        payer_message: Some("Order".into()),
        payee_note: Some("Order".into()),
    }
}

fn transfer(amount: &str, payee: &str) -> Transfer {
    Transfer {
        amount: amount.into(),
        currency: "EUR".into(),
        external_id: Some("payout".into()),
        payee: Party::msisdn(payee),
        payer_message: Some("Payout".into()),
        payee_note: None,
    }
}

fn poll() -> Poll {
    Poll {
        first_delay: Duration::from_millis(20),
        ..Poll::timeout(Duration::from_secs(10))
    }
}

fn amount(balance: &str) -> i64 {
    balance.parse::<f64>().expect("decimal") as i64
}

/// A callback as the sink saw it: method, path, body.
type Received = (String, String, Vec<u8>);

// ---- provisioning --------------------------------------------------------------------------

#[tokio::test]
async fn provisioning_creates_reads_and_keys_an_api_user() {
    let app = App::start().await;
    let p = app.provisioning();
    let id = p.create_api_user("shop.example").await.unwrap();
    let user = p.get_api_user(&id).await.unwrap();
    assert_eq!(user.provider_callback_host, "shop.example");
    assert_eq!(user.target_environment, "sandbox");
    let k1 = p.create_api_key(&id).await.unwrap();
    let k2 = p.create_api_key(&id).await.unwrap();
    assert_eq!(k1.len(), 32);
    assert_ne!(k1, k2);
    let chosen = ReferenceId::new();
    p.create_api_user_with_id(chosen, "shop.example")
        .await
        .unwrap();
    let again = p
        .create_api_user_with_id(chosen, "shop.example")
        .await
        .unwrap_err();
    assert!(again.api().unwrap().is_duplicate());
    let missing = p.get_api_user(&ReferenceId::new()).await.unwrap_err();
    assert_eq!(missing.code(), Some(&ReasonCode::ResourceNotFound));
    // A provisioned user's id goes straight to the calls that take one.
    let made = p.provision("shop.example").await.unwrap();
    let id = made.id().expect("a UUID v4");
    assert_eq!(id.to_string(), made.api_user);
    assert_eq!(
        p.get_api_user(&id).await.unwrap().provider_callback_host,
        "shop.example"
    );
}

#[tokio::test]
async fn a_wrong_subscription_key_is_a_typed_gateway_error_with_a_hint() {
    let app = App::start().await;
    let e = Provisioning::new("not-a-key")
        .base_url(app.base())
        .provision("shop.example")
        .await
        .unwrap_err();
    let api = e.api().expect("provider answered");
    assert_eq!(api.status, 401);
    assert_eq!(api.code, ReasonCode::InvalidSubscriptionKey);
    assert!(e.hint().unwrap().contains("subscription key"));
}

#[tokio::test]
async fn market_users_come_from_mkobas_admin_api_and_use_their_currency() {
    let app = App::start().await;
    let m = app
        .provisioning()
        .create_market_user("shop.example", "mtnuganda")
        .await
        .unwrap();
    assert_eq!(
        (m.target_environment.as_str(), m.currency.as_str()),
        ("mtnuganda", "UGX")
    );
    let c = Collection::new(
        Config::new(app.key(Product::Collection))
            .base_url(app.base())
            .target_environment("mtnuganda")
            .api_user(&m.api_user, &m.api_key),
    )
    .unwrap();
    let body = RequestToPay {
        currency: "UGX".into(),
        ..rtp("5000", "256774290781")
    };
    let r = c.request_to_pay(&body).await.unwrap();
    let done = c.wait_for_request_to_pay(&r, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
}

// ---- tokens --------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_calls_share_one_token() {
    let app = App::start().await;
    let c = app.collection().await;
    let calls: Vec<_> = (0..50)
        .map(|_| {
            let c = c.clone();
            tokio::spawn(async move { c.get_account_balance().await })
        })
        .collect();
    for call in calls {
        call.await.unwrap().unwrap();
    }
    assert_eq!(c.token_fetches(), 1);
    let t = c.access_token().await.unwrap();
    assert!(t.starts_with("eyJ"), "{t}");
    let fresh = c.create_access_token().await.unwrap();
    assert_eq!(fresh.token_type, "access_token");
    assert_eq!(fresh.expires_in, 3600);
}

#[tokio::test]
async fn a_token_is_refreshed_before_it_expires() {
    let app = App::start_with(|s| s.platform.token_ttl = Duration::from_secs(2)).await;
    let c = app.collection().await;
    c.get_account_balance().await.unwrap();
    c.get_account_balance().await.unwrap();
    assert_eq!(c.token_fetches(), 1);
    // The client counts the token's two seconds on Tokio's clock: move it on 1.8 s, past
    // the refresh point but before the server's expiry.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(1800)).await;
    tokio::time::resume();
    c.get_account_balance().await.unwrap();
    assert_eq!(c.token_fetches(), 2);
}

#[tokio::test]
async fn a_wrong_api_key_is_login_failed() {
    let app = App::start().await;
    let user = app.user("127.0.0.1").await;
    let c = Collection::new(
        Config::new(app.key(Product::Collection))
            .base_url(app.base())
            .api_user(&user.api_user, "0123456789abcdef0123456789abcdef"),
    )
    .unwrap();
    let e = c.get_account_balance().await.unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::LoginFailed));
    assert!(e.hint().unwrap().contains("API key"));
}

/// A stand-in platform's collection token endpoint: `token-1`, `token-2`, … for an hour
/// each, counted in `tokens`.
fn counted_tokens(tokens: Arc<AtomicUsize>) -> axum::Router {
    axum::Router::new().route(
        "/collection/token/",
        axum::routing::post(move || {
            let n = tokens.fetch_add(1, Ordering::SeqCst) + 1;
            async move {
                axum::Json(serde_json::json!({
                    "access_token": format!("token-{n}"),
                    "token_type": "access_token",
                    "expires_in": 3600
                }))
            }
        }),
    )
}

/// A Collection client of a stand-in platform served from `app`.
async fn stand_in(app: axum::Router) -> Collection {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    Collection::new(
        Config::new("key")
            .base_url(format!("http://{addr}"))
            .api_user("user", "key"),
    )
    .unwrap()
}

#[tokio::test]
async fn an_invoice_cancelled_with_an_empty_answer_is_cancelled() {
    // A stand-in platform that answers the cancellation 200 with no body (the documented
    // answer echoes the external id, which Mkoba's own test of cancel_invoice checks).
    let app = counted_tokens(Arc::default()).route(
        "/collection/v2_0/invoice/{id}",
        axum::routing::delete(|| async { axum::http::StatusCode::OK }),
    );
    let c = stand_in(app).await;
    let cancelled = c
        .cancel_invoice(&ReferenceId::new(), Some("order-7"))
        .await
        .unwrap();
    assert_eq!(cancelled.external_id.as_deref(), Some("order-7"));
}

#[tokio::test]
async fn a_refused_token_is_replaced_once() {
    // A stand-in platform whose first token is refused: the client fetches a second one and
    // repeats the call.
    let tokens = Arc::new(AtomicUsize::new(0));
    let app = counted_tokens(tokens.clone()).route(
        "/collection/v1_0/account/balance",
        axum::routing::get(|headers: axum::http::HeaderMap| async move {
            let auth = headers["authorization"].to_str().unwrap().to_owned();
            if auth == "Bearer token-1" {
                (
                    axum::http::StatusCode::UNAUTHORIZED,
                    r#"{"code":"UNAUTHORIZED","message":"expired"}"#.to_owned(),
                )
            } else {
                (
                    axum::http::StatusCode::OK,
                    r#"{"availableBalance":"7","currency":"EUR"}"#.to_owned(),
                )
            }
        }),
    );
    let c = stand_in(app).await;
    assert_eq!(
        c.get_account_balance().await.unwrap().available_balance,
        "7"
    );
    assert_eq!(tokens.load(Ordering::SeqCst), 2);
}

/// A token due for refresh but still valid keeps serving when its refresh fails, as the
/// docs say ("until then the old token keeps serving"): a platform whose token endpoint
/// goes down failed every call for the token's last sixth (up to ten minutes).
#[tokio::test]
async fn a_failed_refresh_leaves_the_old_token_serving() {
    let tokens = Arc::new(AtomicUsize::new(0));
    let t = tokens.clone();
    let app = axum::Router::new()
        .route(
            "/collection/token/",
            axum::routing::post(move || {
                let n = t.fetch_add(1, Ordering::SeqCst);
                async move {
                    if n == 0 {
                        (
                            axum::http::StatusCode::OK,
                            r#"{"access_token":"token-1","token_type":"access_token","expires_in":6}"#,
                        )
                    } else {
                        (
                            axum::http::StatusCode::SERVICE_UNAVAILABLE,
                            r#"{"code":"SERVICE_UNAVAILABLE","message":"down"}"#,
                        )
                    }
                }
            }),
        )
        .route(
            "/collection/v1_0/account/balance",
            axum::routing::get(|headers: axum::http::HeaderMap| async move {
                assert_eq!(headers["authorization"], "Bearer token-1");
                r#"{"availableBalance":"7","currency":"EUR"}"#
            }),
        );
    let c = stand_in(app).await;
    c.get_account_balance().await.unwrap();
    // Past the refresh point (five of its six seconds), before its expiry.
    tokio::time::pause();
    tokio::time::advance(Duration::from_millis(5300)).await;
    tokio::time::resume();
    let b = c.get_account_balance().await.unwrap();
    assert_eq!(b.available_balance, "7");
    assert_eq!(tokens.load(Ordering::SeqCst), 2, "the refresh was tried");
}

// ---- collection ----------------------------------------------------------------------------

#[tokio::test]
async fn request_to_pay_settles_and_moves_the_balance() {
    let app = App::start().await;
    let c = app.collection().await;
    let before = amount(&c.get_account_balance().await.unwrap().available_balance);
    // The reference id is known before the call is sent (for a retry of a lost answer),
    // and is the one the 202 returns.
    let call = c.request_to_pay(&rtp("150", "256774290781"));
    let id = *call.id();
    let r = call.await.unwrap();
    assert_eq!(r, id);
    // Sent again with it, the platform says it has it.
    let again = c
        .request_to_pay(&rtp("150", "256774290781"))
        .reference_id(id)
        .await
        .unwrap_err();
    assert!(again.api().is_some_and(|e| e.is_duplicate()), "{again:?}");
    let done = c.wait_for_request_to_pay(&r, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
    assert!(done.financial_transaction_id().is_some());
    let after = c.get_account_balance_in_currency("EUR").await.unwrap();
    assert_eq!(amount(&after.available_balance) - before, 150);
    assert_eq!(after.currency, "EUR");
    c.request_to_pay_delivery_notification(&r, "Your order has shipped")
        .await
        .unwrap();
    let again = c
        .request_to_pay_delivery_notification(&r, "Again")
        .await
        .unwrap_err();
    assert_eq!(again.code(), Some(&ReasonCode::TooManyRequests));
}

#[tokio::test]
async fn a_rejected_request_to_pay_carries_its_reason() {
    let app = App::start().await;
    let c = app.collection().await;
    let r = c.request_to_pay(&rtp("10", "46733123451")).await.unwrap();
    let done = c.wait_for_request_to_pay(&r, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Failed);
    assert_eq!(done.reason(), Some(ReasonCode::ApprovalRejected));
}

#[tokio::test]
async fn a_reused_reference_id_is_a_duplicate() {
    let app = App::start().await;
    let c = app.collection().await;
    let id = ReferenceId::new();
    let r = c
        .request_to_pay(&rtp("1", "256774290781"))
        .reference_id(id)
        .await
        .unwrap();
    assert_eq!(r, id);
    let e = c
        .request_to_pay(&rtp("1", "256774290781"))
        .reference_id(id)
        .await
        .unwrap_err();
    assert!(e.api().unwrap().is_duplicate());
    assert_eq!(e.api().unwrap().status, 409);
    // An id of another UUID version is refused before it is sent, as the platform would.
    let nil = ReferenceId::from(uuid::Uuid::nil());
    let e = c
        .request_to_pay(&rtp("1", "256774290781"))
        .reference_id(nil)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(e.to_string().contains("version 4"), "{e}");
}

/// A configuration no call could succeed with is refused when the client is made: an empty
/// target environment (every product call would be a 400 without it).
#[test]
fn an_empty_target_environment_is_refused_at_once() {
    let e = Collection::new(
        Config::new("key")
            .api_user("user", "key")
            .target_environment(" "),
    )
    .unwrap_err();
    assert!(matches!(e, Error::Config(_)), "{e:?}");
    assert!(
        e.to_string().contains("a target environment is required"),
        "{e}"
    );
}

#[tokio::test]
async fn refusals_name_the_environment_currency_and_callback_host() {
    let app = App::start().await;
    let user = app.user("shop.example").await;
    let c = Collection::new(app.config(Product::Collection, &user)).unwrap();
    let e = c
        .request_to_pay(&rtp("1", "256774290781"))
        .callback_url("http://127.0.0.1:9/cb")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::InvalidCallbackUrlHost));
    assert!(e.hint().unwrap().contains("providerCallbackHost"));
    // The configured callback URL goes with every creating call unless a call says not to.
    let with_callback = Collection::new(
        app.config(Product::Collection, &user)
            .callback_url("http://elsewhere.example/cb"),
    )
    .unwrap();
    let e = with_callback
        .request_to_pay(&rtp("1", "256774290781"))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::InvalidCallbackUrlHost));
    with_callback
        .request_to_pay(&rtp("1", "256774290781"))
        .no_callback()
        .await
        .unwrap();
    let usd = RequestToPay {
        currency: "USD".into(),
        ..rtp("1", "256774290781")
    };
    let e = c.request_to_pay(&usd).await.unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::InvalidCurrency));
    let wrong_env = Collection::new(
        app.config(Product::Collection, &user)
            .target_environment("mtnghana"),
    )
    .unwrap();
    let e = wrong_env.get_account_balance().await.unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::NotAllowedTargetEnvironment));
    assert!(e.hint().unwrap().contains("target environment"));
    let e = c
        .get_request_to_pay_status(&ReferenceId::new())
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::ResourceNotFound));
}

#[tokio::test]
async fn waiting_on_a_payment_that_stays_pending_ends_at_the_deadline() {
    let app = App::start().await;
    let c = app.collection().await;
    let r = c.request_to_pay(&rtp("1", "46733123464")).await.unwrap();
    let e = c
        .wait_for_request_to_pay(&r, Poll::timeout(Duration::from_millis(600)))
        .await
        .unwrap_err();
    match e {
        mkoba_sdk::Error::StillPending { status, .. } => assert_eq!(status, "PENDING"),
        other => panic!("{other:?}"),
    }
}

#[tokio::test]
async fn the_callback_arrives_and_parses() {
    let app = App::start().await;
    let received: Arc<Mutex<Vec<Received>>> = Arc::default();
    let store = received.clone();
    let sink = axum::Router::new().fallback(
        move |method: axum::http::Method, uri: axum::http::Uri, body: axum::body::Bytes| {
            let store = store.clone();
            async move {
                store
                    .lock()
                    .unwrap()
                    .push((method.to_string(), uri.to_string(), body.to_vec()));
                axum::http::StatusCode::OK
            }
        },
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, sink).await });

    let user = app.user("127.0.0.1").await;
    let reference = ReferenceId::new();
    let c = Collection::new(
        app.config(Product::Collection, &user)
            .callback_url(format!("http://127.0.0.1:{port}/momo/{reference}")),
    )
    .unwrap();
    c.request_to_pay(&rtp("25", "256774290781"))
        .reference_id(reference)
        .await
        .unwrap();
    let mut got = None;
    for _ in 0..200 {
        if let Some(r) = received.lock().unwrap().first().cloned() {
            got = Some(r);
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let (method, path, body) = got.expect("a callback within 5 s");
    assert!(method == "PUT" || method == "POST");
    assert_eq!(reference_in_path(&path), Some(reference));
    let callback = parse_callback(&body).unwrap();
    assert!(matches!(callback, Callback::RequestToPay(_)));
    assert_eq!(callback.status(), Status::Successful);
    assert_eq!(callback.external_id(), Some("order-256774290781"));
}

#[tokio::test]
async fn withdrawals_v1_and_v2_settle() {
    let app = App::start().await;
    let c = app.collection().await;
    let v1 = c
        .request_to_withdraw_v1(&rtp("5", "256774290781"))
        .await
        .unwrap();
    let v2 = c
        .request_to_withdraw_v2(&rtp("6", "256774290782"))
        .await
        .unwrap();
    for r in [v1, v2] {
        let done = c.wait_for_request_to_withdraw(&r, poll()).await.unwrap();
        assert_eq!(done.status(), Status::Successful);
    }
    let status = c.get_request_to_withdraw_status(&v2).await.unwrap();
    assert_eq!(status.amount, "6");
}

#[tokio::test]
async fn account_holders_are_checked_and_described() {
    let app = App::start().await;
    let c = app.collection().await;
    assert!(
        c.validate_account_holder_status(IdType::Msisdn, "256774290781")
            .await
            .unwrap()
    );
    assert!(
        !c.validate_account_holder_status(IdType::Msisdn, "46733123451")
            .await
            .unwrap()
    );
    let e = c
        .validate_account_holder_status(IdType::Msisdn, "46733123450")
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::ResourceNotFound));
    assert!(e.hint().unwrap().contains("account holder"), "{e:?}");
    assert!(
        c.validate_account_holder_status(IdType::Email, "someone@example.com")
            .await
            .unwrap()
    );
    let info = c
        .get_basic_userinfo(IdType::Msisdn, "256774290781")
        .await
        .unwrap();
    assert_eq!(info.name, "Sand Box");
}

#[tokio::test]
async fn invoices_are_created_read_and_cancelled() {
    let app = App::start().await;
    let c = app.collection().await;
    let invoice = CreateInvoice {
        external_id: Some("inv-1".into()),
        amount: "40".into(),
        currency: "EUR".into(),
        validity_duration: Some("3600".into()),
        intended_payer: Party::msisdn("46733123464"),
        payee: None,
        description: Some("Invoice".into()),
    };
    let pending = c.create_invoice(&invoice).await.unwrap();
    let status = c.get_invoice_status(&pending).await.unwrap();
    assert_eq!(status.status(), Status::Pending);
    assert_eq!(status.reference_id, pending.to_string());
    let cancelled = c.cancel_invoice(&pending, Some("inv-1")).await.unwrap();
    assert_eq!(cancelled.external_id.as_deref(), Some("inv-1"));
    let done = c.wait_for_invoice(&pending, poll()).await.unwrap();
    assert_eq!(done.reason(), Some(ReasonCode::TransactionCanceled));

    let paid = c
        .create_invoice(&CreateInvoice {
            intended_payer: Party::msisdn("256774290781"),
            ..invoice
        })
        .await
        .unwrap();
    let done = c.wait_for_invoice(&paid, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
}

#[tokio::test]
async fn pre_approvals_are_created_listed_and_cancelled() {
    let app = App::start().await;
    let c = app.collection().await;
    let r = c
        .pre_approval(&PreApproval {
            payer: Party::msisdn("256774290781"),
            payer_currency: "EUR".into(),
            payer_message: Some("Subscription".into()),
            validity_time: Some(3600),
        })
        .await
        .unwrap();
    let done = c.wait_for_pre_approval(&r, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
    let listed = c
        .get_approved_pre_approvals(IdType::Msisdn, "256774290781")
        .await
        .unwrap();
    assert!(listed.iter().any(|p| p.pre_approval_id == r.to_string()));
    c.cancel_pre_approval(&r).await.unwrap();
    let after = c.get_pre_approval_status(&r).await.unwrap();
    assert_eq!(after.reason(), Some(ReasonCode::TransactionCanceled));
}

#[tokio::test]
async fn v2_payments_settle() {
    let app = App::start().await;
    let c = app.collection().await;
    let r = c
        .create_payments(&CreatePayments {
            external_transaction_id: Some("bill-1".into()),
            money: Money {
                amount: "12".into(),
                currency: "EUR".into(),
            },
            customer_reference: "256774290781".into(),
            service_provider_user_name: Some("Electricity Inc".into()),
            coupon_id: None,
            product_id: None,
            product_offering_id: None,
            receiver_message: None,
            sender_note: None,
            max_number_of_retries: None,
            include_sender_charges: None,
        })
        .await
        .unwrap();
    let done = c.wait_for_payment(&r, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
    assert_eq!(
        c.get_payment_status(&r).await.unwrap().reference_id,
        r.to_string()
    );
}

#[tokio::test]
async fn consent_is_asked_granted_refreshed_and_used() {
    let app = App::start().await;
    let user = app.user("127.0.0.1").await;
    let c = Collection::new(app.config(Product::Collection, &user)).unwrap();
    let ask = c
        .bc_authorize(
            "ID:256774290781/MSISDN",
            "profile",
            AccessType::Offline,
            Some(600),
        )
        .await
        .unwrap();
    assert!(ask.interval > 0);
    let token = c.create_oauth2_token(&ask.auth_req_id).await.unwrap();
    assert_eq!(token.token_type, "Bearer");
    let info = c
        .get_user_info_with_consent(&token.access_token)
        .await
        .unwrap();
    assert_eq!(info.given_name, "Sand");
    let refreshed = c.refresh_oauth2_token(&token.refresh_token).await.unwrap();
    assert!(!refreshed.access_token.is_empty());
    // An account holder the sandbox does not know: its hint says so, not "reference id".
    let e = c
        .bc_authorize("ID:46733123450/MSISDN", "profile", AccessType::Online, None)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::ResourceNotFound));
    assert!(
        e.hint().unwrap().contains("bc-authorize's login_hint"),
        "{e:?}"
    );
    let pending = c
        .bc_authorize("ID:46733123452/MSISDN", "profile", AccessType::Online, None)
        .await
        .unwrap();
    let e = c
        .create_oauth2_token(&pending.auth_req_id)
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::AuthorizationPending));
    let e = c
        .wait_for_consent(&pending, Duration::from_millis(200))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::AuthorizationPending));
    let rejected = c
        .bc_authorize("ID:46733123451/MSISDN", "profile", AccessType::Online, None)
        .await
        .unwrap();
    let e = c
        .wait_for_consent(&rejected, Duration::from_secs(30))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some(&ReasonCode::AccessDenied));
    let granted = c
        .bc_authorize(
            "ID:256774290781/MSISDN",
            "profile",
            AccessType::Online,
            None,
        )
        .await
        .unwrap();
    let token = c
        .wait_for_consent(&granted, Duration::from_secs(30))
        .await
        .unwrap();
    assert!(token.scope.contains("profile"), "{}", token.scope);
}

// ---- disbursement and remittance ------------------------------------------------------------

#[tokio::test]
async fn disbursement_transfers_deposits_and_refunds_move_the_float() {
    let app = App::start().await;
    let user = app.user("127.0.0.1").await;
    let d = Disbursement::new(app.config(Product::Disbursement, &user)).unwrap();
    let c = Collection::new(app.config(Product::Collection, &user)).unwrap();
    let float = amount(&d.get_account_balance().await.unwrap().available_balance);

    let t = d.transfer(&transfer("100", "256774290781")).await.unwrap();
    let done = d.wait_for_transfer(&t, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
    assert_eq!(done.payee.party_id, "256774290781");
    let failed = d.transfer(&transfer("1", "46733123457")).await.unwrap();
    let failed = d.wait_for_transfer(&failed, poll()).await.unwrap();
    assert_eq!(failed.reason(), Some(ReasonCode::PayeeNotFound));

    let d1 = d.deposit_v1(&transfer("10", "256774290781")).await.unwrap();
    let d2 = d.deposit_v2(&transfer("20", "256774290781")).await.unwrap();
    for r in [d1, d2] {
        assert_eq!(
            d.wait_for_deposit(&r, poll()).await.unwrap().status(),
            Status::Successful
        );
    }
    assert_eq!(d.get_deposit_status(&d2).await.unwrap().amount, "20");

    let paid = c.request_to_pay(&rtp("50", "256774290781")).await.unwrap();
    c.wait_for_request_to_pay(&paid, poll()).await.unwrap();
    let refund = |amount: &str| Refund {
        amount: amount.into(),
        currency: "EUR".into(),
        external_id: Some("refund".into()),
        payer_message: None,
        payee_note: None,
        reference_id_to_refund: paid.to_string(),
    };
    let r1 = d.refund_v1(&refund("20")).await.unwrap();
    assert_eq!(
        d.wait_for_refund(&r1, poll()).await.unwrap().status(),
        Status::Successful
    );
    let r2 = d.refund_v2(&refund("40")).await.unwrap();
    let over = d.wait_for_refund(&r2, poll()).await.unwrap();
    assert_eq!(over.reason(), Some(ReasonCode::NotAllowed));
    assert_eq!(d.get_refund_status(&r1).await.unwrap().amount, "20");

    let after = amount(&d.get_account_balance().await.unwrap().available_balance);
    assert_eq!(float - after, 100 + 10 + 20 + 20);
}

#[tokio::test]
async fn remittance_transfers_and_cash_transfers_settle() {
    let app = App::start().await;
    let user = app.user("127.0.0.1").await;
    let r = Remittance::new(app.config(Product::Remittance, &user)).unwrap();
    let float = amount(&r.get_account_balance().await.unwrap().available_balance);
    let t = r.transfer(&transfer("30", "256774290781")).await.unwrap();
    assert_eq!(
        r.wait_for_transfer(&t, poll()).await.unwrap().status(),
        Status::Successful
    );
    assert_eq!(r.get_transfer_status(&t).await.unwrap().amount, "30");
    let cash = r
        .cash_transfer(&CashTransfer {
            amount: "70".into(),
            currency: "EUR".into(),
            payee: Party::msisdn("256774290781"),
            external_id: Some("cash-1".into()),
            payer_message: None,
            payee_note: None,
            details: CashTransferDetails {
                orginating_country: Some("SE".into()),
                original_amount: Some("800".into()),
                original_currency: Some("SEK".into()),
                payer_identification_type: Some("PASS".into()),
                payer_identification_number: Some("X123".into()),
                payer_first_name: Some("Sand".into()),
                payer_sur_name: Some("Box".into()),
                ..CashTransferDetails::default()
            },
        })
        .await
        .unwrap();
    let done = r.wait_for_cash_transfer(&cash, poll()).await.unwrap();
    assert_eq!(done.status(), Status::Successful);
    assert_eq!(done.orginating_country.as_deref(), Some("SE"));
    assert_eq!(
        r.get_cash_transfer_status(&cash)
            .await
            .unwrap()
            .payer_first_name
            .as_deref(),
        Some("Sand")
    );
    let after = amount(&r.get_account_balance().await.unwrap().available_balance);
    assert_eq!(float - after, 100);
    let info = r
        .get_basic_userinfo(IdType::Msisdn, "256774290781")
        .await
        .unwrap();
    assert_eq!(info.family_name, "Box");
}

#[tokio::test]
async fn every_product_serves_tokens_balances_account_holders_and_consent() {
    let app = App::start().await;
    let user = app.user("127.0.0.1").await;
    macro_rules! check {
        ($client:expr) => {{
            let p = $client;
            assert_eq!(p.create_access_token().await.unwrap().expires_in, 3600);
            let b = p.get_account_balance_in_currency("EUR").await.unwrap();
            assert_eq!(b.currency, "EUR");
            assert!(
                p.validate_account_holder_status(IdType::Msisdn, "256774290781")
                    .await
                    .unwrap()
            );
            assert_eq!(
                p.get_basic_userinfo(IdType::Msisdn, "256774290781")
                    .await
                    .unwrap()
                    .given_name,
                "Sand"
            );
            let ask = p
                .bc_authorize(
                    "ID:256774290781/MSISDN",
                    "profile",
                    AccessType::Online,
                    None,
                )
                .await
                .unwrap();
            let token = p.create_oauth2_token(&ask.auth_req_id).await.unwrap();
            let info = p
                .get_user_info_with_consent(&token.access_token)
                .await
                .unwrap();
            assert_eq!(info.sub, "0");
        }};
    }
    check!(Collection::new(app.config(Product::Collection, &user)).unwrap());
    check!(Disbursement::new(app.config(Product::Disbursement, &user)).unwrap());
    check!(Remittance::new(app.config(Product::Remittance, &user)).unwrap());
}

/// A server whose answer never ends: the client stops reading at `MAX_ANSWER_BYTES` and
/// says so, where it read until the time limit (3 GB of memory in 30 s on loopback).
#[tokio::test]
async fn an_answer_without_end_is_read_no_further_than_the_bound() {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let sent = Arc::new(AtomicUsize::new(0));
    let counted = sent.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            let sent = counted.clone();
            tokio::spawn(async move {
                let mut request = [0u8; 4096];
                let _ = s.read(&mut request).await;
                let head = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n";
                let chunk = format!("10000\r\n{}\r\n", " ".repeat(0x10000));
                let _ = s.write_all(head.as_bytes()).await;
                while s.write_all(chunk.as_bytes()).await.is_ok() {
                    sent.fetch_add(0x10000, Ordering::SeqCst);
                }
            });
        }
    });
    let c = Collection::new(
        Config::new("key")
            .base_url(format!("http://{addr}"))
            .api_user("user", "key"),
    )
    .unwrap();
    match c.get_account_balance().await.unwrap_err() {
        mkoba_sdk::Error::Decode {
            status, message, ..
        } => {
            assert_eq!(status, 200);
            assert!(message.contains("longer than 8388608 bytes"), "{message}");
        }
        e => panic!("{e:?}"),
    }
    // The server wrote past the bound (the client read that far), and not without end.
    let written = sent.load(Ordering::SeqCst);
    assert!(written >= mkoba_sdk::MAX_ANSWER_BYTES, "{written}");
}
