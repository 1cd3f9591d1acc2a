//! An M-Pesa test client: reads the sandbox application's API key and public key the way a
//! developer would (`/_mkoba/mpesa/application`), encrypts bearers with the published key
//! (the SDK's RSA, independent of the server's OpenSSL), and sends requests as clients do.

use mkoba_sdk::mpesa::PublicKey;
use serde_json::{Value, json};
use uuid::Uuid;

use crate::helpers::{Resp, TestApp};

/// The sandbox developer's M-Pesa application as a client holds it.
pub struct Mpesa<'a> {
    pub app: &'a TestApp,
    pub api_key: String,
    pub public_key_b64: String,
    pub public_key: PublicKey,
    pub market: String,
    pub origin: String,
}

/// A fresh `input_ThirdPartyConversationID`.
pub fn tpcid() -> String {
    Uuid::new_v4().simple().to_string()
}

impl TestApp {
    /// The sandbox application, read through the admin endpoint.
    pub async fn mpesa(&self) -> Mpesa<'_> {
        let r = self
            .send(
                "GET",
                "/_mkoba/mpesa/application",
                &[("Ocp-Apim-Subscription-Key", self.key("collection"))],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        let v = r.json();
        let public_key_b64 = v["public_key"].as_str().unwrap().to_owned();
        Mpesa {
            app: self,
            api_key: v["api_key"].as_str().unwrap().to_owned(),
            public_key: PublicKey::from_base64(&public_key_b64).expect("published key parses"),
            public_key_b64,
            market: "vodacomTZN".to_owned(),
            origin: "*".to_owned(),
        }
    }

    /// Changes the sandbox application's settings through the admin endpoint.
    pub async fn mpesa_settings(&self, settings: Value) -> Resp {
        self.send(
            "PUT",
            "/_mkoba/mpesa/application",
            &[("Ocp-Apim-Subscription-Key", self.key("collection"))],
            Some(&settings.to_string()),
        )
        .await
    }
}

impl Mpesa<'_> {
    /// `base64(RSA-PKCS#1-v1.5(secret))` with the published key.
    pub fn bearer(&self, secret: &str) -> String {
        self.public_key.bearer(secret).expect("encrypts")
    }

    /// `getSession` with a bearer of the given secret.
    pub async fn get_session_with(&self, secret: &str) -> Resp {
        let auth = format!("Bearer {}", self.bearer(secret));
        self.app
            .send(
                "GET",
                &format!("/sandbox/ipg/v2/{}/getSession/", self.market),
                &[
                    ("Authorization", &auth),
                    ("Origin", &self.origin),
                    ("Content-Type", "application/json"),
                ],
                None,
            )
            .await
    }

    /// A live session id of the production gateway (`/openapi/…`): a sandbox session is
    /// not one there.
    pub async fn production_session(&self) -> String {
        let auth = format!("Bearer {}", self.bearer(&self.api_key));
        let r = self
            .app
            .send(
                "GET",
                &format!("/openapi/ipg/v2/{}/getSession/", self.market),
                &[("Authorization", &auth), ("Origin", &self.origin)],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["output_SessionID"].as_str().unwrap().to_owned()
    }

    /// A live session id.
    pub async fn session(&self) -> String {
        let r = self.get_session_with(&self.api_key).await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()["output_SessionID"].as_str().unwrap().to_owned()
    }

    /// Sends `body` (JSON) to `…/{api}` with a session bearer.
    pub async fn send(&self, method: &str, api: &str, session: &str, body: Option<&Value>) -> Resp {
        let auth = format!("Bearer {}", self.bearer(session));
        let body = body.map(Value::to_string);
        self.app
            .send(
                method,
                &format!("/sandbox/ipg/v2/{}/{api}", self.market),
                &[
                    ("Authorization", &auth),
                    ("Origin", &self.origin),
                    ("Content-Type", "application/json"),
                    ("Host", "openapi.m-pesa.com"),
                ],
                body.as_deref(),
            )
            .await
    }

    /// A fresh session of the production gateway, then one call there (`/openapi/…`).
    pub async fn production_call(&self, method: &str, api: &str, body: &Value) -> Resp {
        let session = self.production_session().await;
        let auth = format!("Bearer {}", self.bearer(&session));
        self.app
            .send(
                method,
                &format!("/openapi/ipg/v2/{}/{api}", self.market),
                &[("Authorization", &auth), ("Origin", &self.origin)],
                Some(&body.to_string()),
            )
            .await
    }

    /// A fresh session, then one call.
    pub async fn call(&self, method: &str, api: &str, body: &Value) -> Resp {
        let session = self.session().await;
        self.send(method, api, &session, Some(body)).await
    }

    /// A GET with the fields in the query string, as the official SDKs send it.
    pub async fn query(&self, api: &str, fields: &Value) -> Resp {
        let session = self.session().await;
        let auth = format!("Bearer {}", self.bearer(&session));
        let query: Vec<String> = fields
            .as_object()
            .unwrap()
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap()))
            .collect();
        self.app
            .send(
                "GET",
                &format!("/sandbox/ipg/v2/{}/{api}?{}", self.market, query.join("&")),
                &[("Authorization", &auth), ("Origin", &self.origin)],
                None,
            )
            .await
    }

    /// A Tanzanian status query (`queryTransactionStatus/`) of `reference`: a transaction
    /// id, a conversation id or the client's own reference.
    pub async fn status_of(&self, reference: &str) -> Resp {
        self.query(
            "queryTransactionStatus/",
            &json!({
                "input_QueryReference": reference,
                "input_Country": "TZN",
                "input_ServiceProviderCode": "000000",
                "input_ThirdPartyConversationID": tpcid(),
            }),
        )
        .await
    }

    /// The body of a C2B single-stage payment in Tanzania.
    pub fn c2b(&self, amount: &str, msisdn: &str) -> Value {
        json!({
            "input_Amount": amount,
            "input_Country": "TZN",
            "input_Currency": "TZS",
            "input_CustomerMSISDN": msisdn,
            "input_ServiceProviderCode": "000000",
            "input_ThirdPartyConversationID": tpcid(),
            "input_TransactionReference": "T1234C",
            "input_PurchasedItemsDesc": "Shoes",
        })
    }

    /// The body of a B2C payment in Tanzania.
    pub fn b2c(&self, amount: &str, msisdn: &str) -> Value {
        json!({
            "input_Amount": amount,
            "input_Country": "TZN",
            "input_Currency": "TZS",
            "input_CustomerMSISDN": msisdn,
            "input_ServiceProviderCode": "000000",
            "input_ThirdPartyConversationID": tpcid(),
            "input_TransactionReference": "T12344C",
            "input_PaymentItemsDesc": "Salary payment",
        })
    }

    /// A successful C2B; returns its `output_TransactionID`.
    pub async fn paid(&self, amount: &str, msisdn: &str) -> String {
        let r = self.pay_c2b(amount, msisdn).await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()["output_TransactionID"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    /// A C2B through a fresh session: its answer, whatever it is.
    pub async fn pay_c2b(&self, amount: &str, msisdn: &str) -> Resp {
        self.call("POST", "c2bPayment/singleStage/", &self.c2b(amount, msisdn))
            .await
    }

    /// A C2B accepted (`201`, either mode): its conversation id.
    pub async fn accepted(&self, amount: &str, msisdn: &str) -> String {
        let r = self.pay_c2b(amount, msisdn).await;
        assert_eq!(r.status, 201, "{}", r.text());
        conversation_of(&r)
    }

    /// A reversal body for a transaction id.
    pub fn reversal(&self, transaction: &str, amount: Option<&str>) -> Value {
        let mut v = json!({
            "input_Country": "TZN",
            "input_TransactionID": transaction,
            "input_ServiceProviderCode": "000000",
            "input_ThirdPartyConversationID": tpcid(),
        });
        if let Some(a) = amount {
            v["input_ReversalAmount"] = json!(a);
        }
        v
    }

    /// The admin view of a payment by its conversation id.
    pub async fn transaction(&self, conversation: &str) -> Value {
        let r = self
            .app
            .send(
                "GET",
                &format!("/_mkoba/transactions/{conversation}"),
                &[("Ocp-Apim-Subscription-Key", self.app.key("collection"))],
                None,
            )
            .await;
        assert_eq!(r.status, 200, "{}", r.text());
        r.json()
    }
}

/// `output_ResponseCode` and the HTTP status of a response.
/// `n` getSession calls at once with `auth` (a wrong key): each is answered `400 INS-989`
/// or, when an address past its failure limit finds no idle RSA worker, `503 INS-16` with a
/// `Retry-After`. Returns the `Retry-After` seconds of the latter.
pub async fn get_session_burst(app: &TestApp, auth: &str, n: usize) -> Vec<u64> {
    let burst: Vec<_> = (0..n)
        .map(|_| {
            let (http, auth) = (app.http.clone(), auth.to_owned());
            let url = format!("{}/sandbox/ipg/v2/vodacomTZN/getSession/", app.base);
            tokio::spawn(async move {
                let headers = [("Authorization", auth.as_str()), ("Origin", "*")];
                http.send("GET", &url, &headers, None).await
            })
        })
        .collect();
    let mut waits = Vec::new();
    for h in burst {
        let r = h.await.unwrap();
        match code(&r) {
            (400, c) if c == "INS-989" => {}
            (503, c) if c == "INS-16" => {
                waits.push(r.header("retry-after").unwrap().parse().unwrap());
            }
            _ => panic!("{}: {}", r.status, r.text()),
        }
    }
    waits
}

/// The conversation id an answer gave (`output_ConversationID`).
pub fn conversation_of(r: &Resp) -> String {
    r.json()["output_ConversationID"]
        .as_str()
        .expect("the answer names its conversation")
        .to_owned()
}

pub fn code(r: &Resp) -> (u16, String) {
    let v = r.json();
    (
        r.status,
        v["output_ResponseCode"].as_str().unwrap_or("").to_owned(),
    )
}

/// The keys of a flat JSON object, in order.
pub fn keys(r: &Resp) -> Vec<String> {
    // serde_json's map is sorted; read the order from the text itself.
    let text = r.text();
    let mut out = Vec::new();
    let mut rest = text.as_str();
    while let Some(i) = rest.find("\"output_") {
        let tail = &rest[i + 1..];
        let end = tail.find('"').unwrap();
        out.push(tail[..end].to_owned());
        rest = &tail[end..];
    }
    out
}

/// The sandbox application as a v1x (Mozambique) client holds it: the API key is the
/// bearer of every call, and each API may have a port of its own.
pub struct V1x<'a> {
    pub m: Mpesa<'a>,
}

/// A fresh `input_ThirdPartyReference`.
pub fn tpr() -> String {
    Uuid::new_v4().simple().to_string()
}

impl TestApp {
    /// Every v1x API on a free port of its own, besides `/ipg/v1x/` on the main listener.
    pub async fn spawn_v1x() -> TestApp {
        TestApp::spawn_with(|s| {
            s.mpesa_v1x_ports =
                mkoba::config::parse_v1x_ports("c2b=0,b2c=0,b2b=0,reversal=0,status=0,name=0")
                    .unwrap();
        })
        .await
    }

    /// The v1x client of the sandbox application.
    pub async fn v1x(&self) -> V1x<'_> {
        V1x {
            m: self.mpesa().await,
        }
    }

    /// The base URL of a v1x API's own listener (`c2b`, `b2c`, …).
    pub fn v1x_port(&self, api: &str) -> String {
        let (_, addr) = self
            .running
            .mpesa_v1x
            .iter()
            .find(|(o, _)| o.api.port_key() == api)
            .unwrap_or_else(|| panic!("no v1x listener for {api}"));
        format!("http://{addr}")
    }
}

impl V1x<'_> {
    /// `method` `body` (JSON) to `base` + `/ipg/v1x/{api}` with `secret` as the encrypted
    /// bearer.
    pub async fn send_to(
        &self,
        base: &str,
        method: &str,
        api: &str,
        secret: &str,
        body: Option<&Value>,
    ) -> Resp {
        let auth = format!("Bearer {}", self.m.bearer(secret));
        let body = body.map(Value::to_string);
        self.m
            .app
            .http
            .send(
                method,
                &format!("{base}/ipg/v1x/{api}"),
                &[
                    ("Authorization", &auth),
                    ("Origin", &self.m.origin),
                    ("Content-Type", "application/json"),
                    ("Host", "api.sandbox.vm.co.mz"),
                ],
                body.as_deref(),
            )
            .await
    }

    /// A call on the main listener with the application's API key.
    pub async fn call(&self, method: &str, api: &str, body: &Value) -> Resp {
        self.send_to(&self.m.app.base, method, api, &self.m.api_key, Some(body))
            .await
    }

    /// A C2B body: 2588… numbers, meticais, the sandbox short code.
    pub fn c2b(&self, amount: &str, msisdn: &str) -> Value {
        json!({
            "input_TransactionReference": "T12344C",
            "input_CustomerMSISDN": msisdn,
            "input_Amount": amount,
            "input_ThirdPartyReference": tpr(),
            "input_ServiceProviderCode": "171717",
        })
    }

    /// A successful C2B on the main listener; returns the answer's JSON.
    pub async fn paid(&self, amount: &str, msisdn: &str) -> Value {
        let r = self
            .call("POST", "c2bPayment/singleStage/", &self.c2b(amount, msisdn))
            .await;
        assert_eq!(r.status, 201, "{}", r.text());
        r.json()
    }

    /// A reversal body.
    pub fn reversal(&self, transaction: &str, amount: Option<&str>) -> Value {
        let mut v = json!({
            "input_TransactionID": transaction,
            "input_SecurityCredential": "Mpesa2019",
            "input_InitiatorIdentifier": "SJGW67fK",
            "input_ThirdPartyReference": tpr(),
            "input_ServiceProviderCode": "171717",
        });
        if let Some(a) = amount {
            v["input_ReversalAmount"] = json!(a);
        }
        v
    }

    /// A status query with the fields in the query string, as PaymentsDS sends it.
    pub async fn query(&self, api: &str, fields: &[(&str, &str)]) -> Resp {
        let auth = format!("Bearer {}", self.m.bearer(&self.m.api_key));
        let query: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
        self.m
            .app
            .http
            .send(
                "GET",
                &format!("{}/ipg/v1x/{api}?{}", self.m.app.base, query.join("&")),
                &[("Authorization", &auth), ("Origin", "*")],
                None,
            )
            .await
    }
}
