//! The portal's API pages (one per operation of both OpenAPI documents, with sample code
//! pre-filled with the developer's own keys and the Send Request box) and the guides
//! (rendered from `docs/guides/*.md`, their facts checked against the sandbox's rules).

use mkoba_ledger::{Currency, Money};
use mkoba_platform::model::{Party, PartyIdType, PaymentKind, Product};
use mkoba_platform::scenario::{self, Outcome};
use serde_json::Value;

use crate::helpers::{TestApp, between};
use crate::portal::{Browser, csrf_of};

/// `&amp;` … back to text, for comparing page text with what a developer copies.
fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

/// The text of the element carrying `data-testid="{id}"` (up to its closing tag).
fn testid(html: &str, id: &str, close: &str) -> String {
    let marker = format!("data-testid=\"{id}\"");
    let at = html
        .find(&marker)
        .unwrap_or_else(|| panic!("no {id} in {html}"));
    let rest = &html[at..];
    let start = rest.find('>').unwrap() + 1;
    let end = rest.find(close).unwrap();
    unescape(&rest[start..end])
}

fn sample(html: &str, lang: &str) -> String {
    testid(html, &format!("sample-{lang}"), "</code></pre>").replacen("<code>", "", 1)
}

/// The sandbox developer, signed in.
async fn sandbox(app: &TestApp) -> Browser {
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    b.sign_in(&login.email, &login.password).await;
    b
}

async fn documents(app: &TestApp) -> Vec<Value> {
    let mut docs = Vec::new();
    for path in ["/_mkoba/openapi.json", "/_mkoba/mpesa/openapi.json"] {
        let r = app.send("GET", path, &[], None).await;
        assert_eq!(r.status, 200);
        docs.push(r.json());
    }
    docs
}

#[tokio::test]
async fn every_operation_of_both_documents_has_a_page_with_its_parameters_and_codes() {
    let app = TestApp::spawn().await;
    let mut b = sandbox(&app).await;
    let docs = documents(&app).await;
    let index = b.get("/portal/docs").await.text();
    let mut seen = 0;
    for doc in &docs {
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if !["get", "post", "put", "delete"].contains(&method.as_str()) {
                    continue;
                }
                seen += 1;
                let id = op["operationId"].as_str().unwrap();
                assert!(
                    index.contains(&format!("href=\"/portal/docs/{id}\"")),
                    "the index links {id}"
                );
                let r = b.get(&format!("/portal/docs/{id}")).await;
                assert_eq!(r.status, 200, "{id}");
                let html = r.text();
                let text = unescape(&html);
                assert!(
                    html.contains(&format!(
                        "<span class=\"method m-{method}\">{}</span>",
                        method.to_uppercase()
                    )),
                    "{id}: method"
                );
                assert!(
                    text.contains(&format!("data-testid=\"op-path\">{path}</code>")),
                    "{id}: path"
                );
                // An M-Pesa page names a port, one not built included (it was empty).
                if html.contains("data-testid=\"resource-port\"") {
                    let port = testid(&html, "resource-port", "<");
                    assert!(
                        !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()),
                        "{id}: port {port:?}"
                    );
                }
                // Every parameter and every top-level body field.
                for p in op["parameters"].as_array().into_iter().flatten() {
                    let name = p["name"].as_str().unwrap();
                    assert!(
                        text.contains(&format!("<code>{name}</code>")),
                        "{id}: parameter {name}"
                    );
                }
                let schema = &op["requestBody"]["content"]["application/json"]["schema"];
                let schema = match schema["$ref"].as_str() {
                    Some(r) => &doc["components"]["schemas"][r.rsplit('/').next().unwrap()],
                    None => schema,
                };
                for name in schema["properties"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(k, _)| k)
                {
                    assert!(
                        text.contains(&format!("<code>{name}</code>")),
                        "{id}: body field {name}"
                    );
                }
                // Codes: M-Pesa's table, MoMo's statuses with their codes.
                match op["x-codes"].as_array() {
                    Some(codes) => {
                        for c in codes {
                            let row = format!(
                                "<tr><td><code>{}</code></td><td>{}</td>",
                                c["code"].as_str().unwrap(),
                                c["status"]
                            );
                            assert!(html.contains(&row), "{id}: code {row}");
                        }
                    }
                    None => {
                        for status in op["responses"].as_object().unwrap().keys() {
                            assert!(
                                html.contains(&format!(
                                    "<h3 class=\"status\"><code>{status}</code>"
                                )),
                                "{id}: response {status}"
                            );
                        }
                        assert!(html.contains("data-testid=\"error-codes\""), "{id}");
                    }
                }
                // Five languages, each with a copy button.
                for lang in ["curl", "python", "java", "javascript", "rust"] {
                    assert!(
                        html.contains(&format!("data-testid=\"sample-{lang}\"")),
                        "{id}: {lang}"
                    );
                }
                assert!(
                    html.matches("class=\"copy\" data-copy=").count() >= 5,
                    "{id}"
                );
                assert!(html.contains("Send Request"), "{id}");
            }
        }
    }
    assert!(seen > 70, "both documents: {seen} operations");
    assert_eq!(b.get("/portal/docs/noSuchOperation").await.status, 404);
    // Each cancel names its own refusal of an invoice no longer pending: the widget's 409,
    // MTN's CancelInvoice 500.
    let codes = |html: String| {
        let at = html.find("data-testid=\"error-codes\"").unwrap();
        html[at..at + html[at..].find("</table>").unwrap()].to_owned()
    };
    let widget = codes(b.get("/portal/docs/widget-CancelInvoice").await.text());
    assert!(
        widget.contains("<tr><td>409</td><td><code>NOT_ALLOWED</code>")
            && !widget.contains("<tr><td>500</td><td><code>NOT_ALLOWED</code>"),
        "{widget}"
    );
    let mtn = codes(b.get("/portal/docs/CancelInvoice").await.text());
    assert!(
        mtn.contains("<tr><td>500</td><td><code>NOT_ALLOWED</code>")
            && !mtn.contains("<tr><td>409</td><td><code>NOT_ALLOWED</code>"),
        "{mtn}"
    );
}

#[tokio::test]
async fn momo_samples_carry_the_developers_key_and_api_user_but_never_an_api_key() {
    let app = TestApp::spawn().await;
    let user = app.create_user("127.0.0.1").await;
    let api_key = app.create_key(user).await;
    let mut b = sandbox(&app).await;
    let key = app.key("collection").to_owned();
    let html = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    assert!(!html.contains(&api_key), "the API key is never shown");
    let curl = sample(&html, "curl");
    assert!(
        curl.contains(&format!("SUBSCRIPTION_KEY='{key}'")),
        "{curl}"
    );
    assert!(curl.contains(&format!("API_USER='{user}'")), "{curl}");
    assert!(
        curl.contains(&format!(
            "curl -i -X POST \"{}/collection/v1_0/requesttopay\"",
            app.base
        )),
        "{curl}"
    );
    assert!(curl.contains("-u \"$API_USER:$API_KEY\""), "{curl}");
    assert!(
        curl.contains("-H \"X-Reference-Id: $X_REFERENCE_ID\""),
        "{curl}"
    );
    assert!(
        curl.contains("-H 'X-Target-Environment: sandbox'"),
        "{curl}"
    );
    assert!(curl.contains("\"currency\":\"EUR\""), "{curl}");
    let python = sample(&html, "python");
    assert!(
        python.contains(&format!("SUBSCRIPTION_KEY = \"{key}\"")),
        "{python}"
    );
    assert!(
        python.contains("API_KEY = os.environ[\"API_KEY\"]"),
        "{python}"
    );
    assert!(python.contains("json={"), "{python}");
    let java = sample(&html, "java");
    assert!(
        java.contains("HttpRequest.newBuilder") && java.contains(&key),
        "{java}"
    );
    let js = sample(&html, "javascript");
    assert!(
        js.contains("await fetch(") && js.contains("crypto.randomUUID()"),
        "{js}"
    );
    let rust = sample(&html, "rust");
    assert!(
        rust.contains("use mkoba_sdk::momo::{Collection, Config};")
            && rust.contains("client.request_to_pay(&body)")
            && rust.contains(".base_url(BASE)")
            && rust.contains(&user.to_string()),
        "{rust}"
    );
    // A status GET takes the reference from the environment; the subscription key of its
    // own product.
    let html = b
        .get("/portal/docs/Disbursement-GetTransferStatus")
        .await
        .text();
    let curl = sample(&html, "curl");
    assert!(curl.contains(app.key("disbursement")), "{curl}");
    assert!(
        curl.contains("curl -i -X GET \"http://")
            && curl.contains("/disbursement/v1_0/transfer/$REFERENCE_ID\""),
        "{curl}"
    );
    assert!(sample(&html, "rust").contains("get_transfer_status(&reference_id)"));

    // The curl sample runs as it is, with the API key exported.
    let html = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    let script = sample(&html, "curl");
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("API_KEY", &api_key)
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("202 Accepted"),
        "{stdout} {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // With a wrong API key it says what the token endpoint answered (it went on with an
    // empty token after a Python traceback).
    let wrong = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("API_KEY", "0123456789abcdef0123456789abcdef")
        .output()
        .await
        .unwrap();
    let said = String::from_utf8_lossy(&wrong.stderr);
    assert!(
        said.contains(r#"No access token; the token endpoint answered: {"error":"login_failed"}"#),
        "{said}"
    );
    assert!(!said.contains("Traceback"), "{said}");
    // It prints the reference id it made, which the refund sample reads from REFERENCE_ID
    // (it had a placeholder in its body).
    let reference: uuid::Uuid = between(&stdout, "\nX-Reference-Id: ", "\n")
        .parse()
        .unwrap();
    crate::helpers::wait_for(|| async {
        (app.admin_transaction(reference).await["status"] == "SUCCESSFUL").then_some(())
    })
    .await;
    let html = b.get("/portal/docs/Disbursement-Refund-V1").await.text();
    let script = sample(&html, "curl");
    assert!(
        script.contains("\"referenceIdToRefund\":\"'\"$REFERENCE_ID\"'\""),
        "{script}"
    );
    let out = tokio::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("API_KEY", &api_key)
        .env("REFERENCE_ID", reference.to_string())
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("202 Accepted"), "{stdout}");
    // The widget's QR code takes the invoice's signed token.
    let html = b.get("/portal/docs/widget-GetInvoiceQrCode").await.text();
    assert!(
        sample(&html, "curl").contains("/qr.svg?t=$INVOICE_TOKEN\""),
        "{html}"
    );
    assert!(
        sample(&html, "python").contains("INVOICE_TOKEN = os.environ[\"INVOICE_TOKEN\"]"),
        "{html}"
    );
}

#[tokio::test]
async fn a_developer_without_a_subscription_or_api_user_is_told_what_to_do() {
    let app = TestApp::spawn().await;
    let mut b = Browser::new(&app.base);
    b.sign_up("docs-newcomer@example.com").await;
    let html = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    assert!(html.contains("data-testid=\"not-subscribed\""), "{html}");
    assert!(html.contains("href=\"/portal\">subscribe on the overview</a>"));
    assert!(html.contains("You have no API user yet"));
    let curl = sample(&html, "curl");
    assert!(
        curl.contains("SUBSCRIPTION_KEY='YOUR_SUBSCRIPTION_KEY'"),
        "{curl}"
    );
    assert!(curl.contains("API_USER='YOUR_API_USER'"), "{curl}");
}

#[tokio::test]
async fn mpesa_samples_carry_the_public_key_the_resource_url_and_the_right_bearer() {
    let app = TestApp::spawn_v1x().await;
    let application = app
        .send(
            "GET",
            "/_mkoba/mpesa/application",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await
        .json();
    let public_key = application["public_key"].as_str().unwrap().to_owned();
    let api_key = application["api_key"].as_str().unwrap().to_owned();
    let mut b = sandbox(&app).await;

    // v1x C2B: its own port, the encrypted API key as the bearer of the call itself.
    let html = b.get("/portal/docs/v1xC2bSingleStage").await.text();
    let own = app.v1x_port("c2b");
    let context = testid(&html, "context", "</dl>");
    assert!(
        context.contains(&format!("{own}/ipg/v1x/c2bPayment/singleStage/")),
        "{context}"
    );
    assert!(
        context.contains("<dt>SSL</dt><dd><code>false</code>"),
        "{context}"
    );
    let curl = sample(&html, "curl");
    assert!(
        curl.contains(&format!("PUBLIC_KEY='{public_key}'")),
        "{curl}"
    );
    assert!(curl.contains("openssl pkeyutl -encrypt -pubin"), "{curl}");
    assert!(
        curl.contains(&format!(
            "curl -i -X POST \"{own}/ipg/v1x/c2bPayment/singleStage/\""
        )),
        "{curl}"
    );
    assert!(
        curl.contains("Authorization: Bearer $(bearer \"$MPESA_API_KEY\")"),
        "{curl}"
    );
    assert!(!curl.contains("getSession"), "v1x has no session: {curl}");
    assert!(
        curl.contains("\"input_ServiceProviderCode\":\"171717\""),
        "{curl}"
    );
    let python = sample(&html, "python");
    assert!(
        python.contains("from Crypto.Cipher import PKCS1_v1_5") && python.contains(&public_key),
        "{python}"
    );
    let java = sample(&html, "java");
    assert!(
        java.contains("Cipher.getInstance(\"RSA/ECB/PKCS1Padding\")")
            && java.contains("new X509EncodedKeySpec(der)"),
        "{java}"
    );
    let js = sample(&html, "javascript");
    assert!(
        js.contains("crypto.publicEncrypt(") && js.contains("RSA_PKCS1_PADDING"),
        "{js}"
    );
    assert!(sample(&html, "rust").contains("PublicKey::from_base64(PUBLIC_KEY)"));

    // v2 C2B: getSession with the encrypted API key, then the encrypted session.
    let html = b.get("/portal/docs/v2C2bSingleStage").await.text();
    let curl = sample(&html, "curl");
    assert!(
        curl.contains(&format!(
            "ANSWER=$(curl -s \"{}/sandbox/ipg/v2/vodacomTZN/getSession/\"",
            app.base
        )),
        "{curl}"
    );
    assert!(
        curl.contains("Authorization: Bearer $(bearer \"$SESSION\")"),
        "{curl}"
    );
    assert!(
        curl.contains(&format!(
            "curl -i -X POST \"{}/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/\"",
            app.base
        )),
        "{curl}"
    );
    assert!(
        curl.contains("\"input_Country\":\"TZN\",\"input_Currency\":\"TZS\""),
        "{curl}"
    );
    let rust = sample(&html, "rust");
    assert!(
        rust.contains("Config::new(Market::VodacomTzn, mpesa_api_key, PUBLIC_KEY)")
            && rust.contains("client.c2b(&C2bPayment {"),
        "{rust}"
    );
    // A query takes its fields in the query string; Ghana's beneficiary name its market.
    let html = b.get("/portal/docs/v2QueryBeneficiaryName").await.text();
    let curl = sample(&html, "curl");
    assert!(
        curl.contains("/sandbox/ipg/v2/vodafoneGHA/queryBeneficiaryName/?")
            && curl.contains("input_Country=GHA"),
        "{curl}"
    );

    // The v1x curl sample runs as it is: it carries the developer's API key (seed 004:
    // "the sample code that automatically generates the package with your unique API Key
    // and Public Key"), which MPESA_API_KEY in the environment would override. A MoMo API
    // key exported as API_KEY for the MoMo samples is none of its business.
    let html = b.get("/portal/docs/v1xC2bSingleStage").await.text();
    let curl = sample(&html, "curl");
    assert!(
        curl.contains(&format!("MPESA_API_KEY=\"${{MPESA_API_KEY:-{api_key}}}\"")),
        "{curl}"
    );
    assert!(
        sample(&html, "python").contains(&format!(
            "MPESA_API_KEY = os.environ.get(\"MPESA_API_KEY\") or \"{api_key}\""
        )),
        "{html}"
    );
    let run = |program: &'static str,
               flag: &'static str,
               code: String,
               env: Vec<(&'static str, String)>| {
        let dir = app.data_dir();
        async move {
            let mut c = tokio::process::Command::new(program);
            c.arg(flag)
                .arg(code)
                .current_dir(dir)
                .env_remove("MPESA_API_KEY");
            for (k, v) in env {
                c.env(k, v);
            }
            let out = c.output().await.expect("runs");
            format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            )
        }
    };
    let momo_key = vec![("API_KEY", "f1db798c98df4bcf83b538175893bbf0".to_owned())];
    // Each run of a page's samples is a new payment (a fresh third-party reference each
    // run; one fixed on the page was a duplicate from the second run on): curl twice, then
    // the JavaScript one (Node, as `scripts/test.sh` installs it) with MPESA_API_KEY set but
    // empty, so the kept key stands in.
    let mut transaction = String::new();
    for _ in 0..2 {
        let out = run("bash", "-c", curl.clone(), momo_key.clone()).await;
        assert!(
            out.contains("201 Created") && out.contains("INS-0"),
            "{out}"
        );
        transaction = between(&out, "\"output_TransactionID\":\"", "\"").to_owned();
    }
    let out = run(
        "node",
        "-e",
        sample(&html, "javascript"),
        vec![("MPESA_API_KEY", String::new())],
    )
    .await;
    assert!(out.starts_with("201 ") && out.contains("INS-0"), "{out}");
    // The status query reads the transaction from TRANSACTION_ID, as a developer sets it
    // from the payment's answer.
    let html = b.get("/portal/docs/v1xQueryTransactionStatus").await.text();
    let curl = sample(&html, "curl");
    assert!(curl.contains("# export TRANSACTION_ID=…"), "{curl}");
    let out = run(
        "bash",
        "-c",
        curl,
        vec![("TRANSACTION_ID", transaction.clone())],
    )
    .await;
    assert!(
        out.contains("200 OK")
            && out.contains("\"output_ResponseTransactionStatus\":\"Completed\""),
        "{out}"
    );
    // And the reversal reverses it, whole (the sample pays 10, and reverses 10).
    let html = b.get("/portal/docs/v1xReversal").await.text();
    let out = run(
        "node",
        "-e",
        sample(&html, "javascript"),
        vec![("TRANSACTION_ID", transaction)],
    )
    .await;
    assert!(out.starts_with("201 ") && out.contains("INS-0"), "{out}");
    // A direct debit's mandate: the creation makes its reference fresh each run (a fixed
    // one was a duplicate from the second run on) and prints it; the payment reads it.
    let html = b.get("/portal/docs/v2DirectDebitCreation").await.text();
    let create = sample(&html, "curl");
    let mut reference = String::new();
    for _ in 0..2 {
        let out = run("bash", "-c", create.clone(), vec![]).await;
        assert!(
            out.contains("201 Created") && out.contains("INS-0"),
            "{out}"
        );
        reference = between(&out, "\ninput_ThirdPartyReference: ", "\n").to_owned();
    }
    let html = b.get("/portal/docs/v2DirectDebitPayment").await.text();
    let out = run(
        "node",
        "-e",
        sample(&html, "javascript"),
        vec![("MANDATE_REFERENCE", reference)],
    )
    .await;
    assert!(out.starts_with("201 ") && out.contains("INS-0"), "{out}");
}

/// The Send Request box's form fields as the page fills them in.
fn form_of(html: &str) -> (String, String, String, String) {
    let csrf = csrf_of(html);
    let path_at = html.find("id=\"send-path\"").unwrap();
    let rest = &html[path_at..];
    let v = rest.find("value=\"").unwrap() + 7;
    let path = unescape(&rest[v..v + rest[v..].find('"').unwrap()]);
    let headers = testid(html, "send-headers", "</textarea>");
    let body_at = html.find("id=\"send-body\"").unwrap();
    let rest = &html[body_at..];
    let start = rest.find('>').unwrap() + 1;
    let body = unescape(&rest[start..rest.find("</textarea>").unwrap()]);
    (csrf, path, headers, body)
}

#[tokio::test]
async fn send_request_shows_the_context_the_bearer_and_the_response_beside_the_parameters_sent() {
    let app = TestApp::spawn_v1x().await;
    let mut b = sandbox(&app).await;
    // v2: the headers are filled in with a fresh encrypted session bearer.
    let html = b.get("/portal/docs/v2C2bSingleStage").await.text();
    let context = testid(&html, "send-context", "</dl>");
    assert!(
        context.contains("<dt>REST verb</dt><dd><code>POST</code>")
            && context.contains("/sandbox/ipg/v2/vodacomTZN/c2bPayment/singleStage/")
            && context.contains("<dt>SSL</dt><dd><code>false</code>"),
        "{context}"
    );
    let (csrf, path, headers, body) = form_of(&html);
    assert!(headers.contains("Authorization: Bearer "), "{headers}");
    let bearer = headers
        .lines()
        .find_map(|l| l.strip_prefix("Authorization: Bearer "))
        .unwrap();
    assert_eq!(bearer.len(), 684, "base64 of a 4096-bit RSA block");
    let r = b
        .post(
            "/portal/docs/v2C2bSingleStage",
            &[
                ("csrf", &csrf),
                ("path", &path),
                ("headers", &headers),
                ("body", &body),
            ],
        )
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("data-testid=\"send-status\">201<"), "{html}");
    let sent = testid(&html, "sent-parameters", "</table>");
    assert!(
        sent.contains("<code>input_CustomerMSISDN</code></td><td><code>000000000001</code>"),
        "{sent}"
    );
    let received = testid(&html, "response-parameters", "</table>");
    assert!(
        received.contains("<code>output_ResponseCode</code></td><td><code>INS-0</code>")
            && received.contains("output_TransactionID"),
        "{received}"
    );

    // v1x: the box's headers carry the encrypted API key (seed 004: "Also included in the
    // Header section is an encrypted format of the API Key"); the call goes through as the
    // page fills it in.
    let html = b.get("/portal/docs/v1xC2bSingleStage").await.text();
    let (csrf, path, headers, body) = form_of(&html);
    assert!(headers.contains("Authorization: Bearer "), "{headers}");
    let r = b
        .post(
            "/portal/docs/v1xC2bSingleStage",
            &[
                ("csrf", &csrf),
                ("path", &path),
                ("headers", &headers),
                ("body", &body),
            ],
        )
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"send-status\">201<"), "{html}");
    assert!(
        html.contains("The bearer below is your API key, encrypted"),
        "{html}"
    );
    // A bearer the developer pastes instead is sent as it is (a new page: a new reference).
    let (csrf, path, _, body) = form_of(&b.get("/portal/docs/v1xC2bSingleStage").await.text());
    let headers: String = headers
        .lines()
        .filter(|l| !l.starts_with("Authorization:"))
        .collect::<Vec<_>>()
        .join("\n");
    let application = app
        .send(
            "GET",
            "/_mkoba/mpesa/application",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await
        .json();
    let key = mkoba_sdk::mpesa::PublicKey::from_base64(application["public_key"].as_str().unwrap())
        .unwrap();
    let bearer = key
        .bearer(application["api_key"].as_str().unwrap())
        .unwrap();
    let headers = format!("{headers}\nAuthorization: Bearer {bearer}");
    let r = b
        .post(
            "/portal/docs/v1xC2bSingleStage",
            &[
                ("csrf", &csrf),
                ("path", &path),
                ("headers", &headers),
                ("body", &body),
            ],
        )
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"send-status\">201<"), "{html}");
    assert!(testid(&html, "sent-parameters", "</table>").contains("input_ThirdPartyReference"));

    // MoMo: the subscription key, a fresh token of the first API user, its environment.
    let user = app.create_user("127.0.0.1").await;
    let html = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    let (csrf, path, headers, body) = form_of(&html);
    assert!(
        headers.contains(&format!(
            "Ocp-Apim-Subscription-Key: {}",
            app.key("collection")
        )) && headers.contains("Authorization: Bearer ")
            && headers.contains("X-Target-Environment: sandbox"),
        "{headers}"
    );
    let r = b
        .post(
            "/portal/docs/Collection-Requesttopay-V1",
            &[
                ("csrf", &csrf),
                ("path", &path),
                ("headers", &headers),
                ("body", &body),
            ],
        )
        .await;
    let html = r.text();
    assert!(html.contains("data-testid=\"send-status\">202<"), "{html}");
    // The 202's empty body names nothing: the page links the transaction it made, and the
    // form's answer opens at the response.
    let link = testid(&html, "made-transaction", "</p>");
    let href = between(&link, "href=\"", "\"").to_owned();
    assert!(
        b.get(&href).await.text().contains("Request received"),
        "{href}"
    );
    assert!(
        html.contains("action=\"/portal/docs/Collection-Requesttopay-V1#sent\""),
        "{html}"
    );
    assert!(
        testid(&html, "sent-parameters", "</table>").contains("<code>payer.partyId</code>"),
        "{html}"
    );
    let _ = user;
    // A form without the CSRF token does nothing.
    let r = b
        .post(
            "/portal/docs/Collection-Requesttopay-V1",
            &[("path", &path), ("headers", &headers), ("body", &body)],
        )
        .await;
    assert_eq!(r.status, 403);
    app.assert_ledger_balanced().await;
}

#[tokio::test]
async fn the_try_it_box_starts_with_a_call_that_works() {
    let app = TestApp::spawn().await;
    let user = app.create_user("127.0.0.1").await;
    let mut b = sandbox(&app).await;
    let html = b.get("/portal/docs").await.text();
    assert!(
        html.contains(&format!("<option value=\"{user}\" selected>")),
        "the first API user is chosen, so the default balance call has a token"
    );
}

const GUIDES: &[(&str, &[&str])] = &[
    (
        "introduction",
        &["Collection Widget", "Ocp-Apim-Subscription-Key"],
    ),
    (
        "getting-started",
        &[
            "/v1_0/apiuser/$USER/apikey",
            "46733123451",
            "X-Reference-Id",
        ],
    ),
    (
        "api-user-and-api-key",
        &["providerCallbackHost", "login_failed", "mtnuganda"],
    ),
    (
        "use-cases",
        &[
            "requesttopay",
            "referenceIdToRefund",
            "c2bPayment/singleStage/",
        ],
    ),
    (
        "sandbox-use-cases",
        &[
            "46733123450",
            "46733123464",
            "258840000008",
            "000000000008",
            "20 to 79",
            "7000",
        ],
    ),
    (
        "common-error-codes",
        &[
            "RESOURCE_ALREADY_EXIST",
            "INVALID_CALLBACK_URL_HOST",
            "What to do",
        ],
    ),
    (
        "callback",
        &[
            "X-Callback-Url",
            "LWAC Http Client 1.0",
            "between 11000 and 19000",
        ],
    ),
    (
        "brand-guidelines",
        &["Pay with MoMo", "trademarks", "When you go live"],
    ),
    (
        "mpesa-getting-started",
        &["Send Request", "Resource URL", "https://", "INS-989"],
    ),
    (
        "mpesa-develop-without-library",
        &["RSA/ECB/PKCS1Padding", "openssl pkeyutl", "Steps to follow"],
    ),
    (
        "mpesa-response-codes",
        &["INS-2006", "INS-2", "Invalid API Key", "Not authorized"],
    ),
];

#[tokio::test]
async fn guides_render_from_the_markdown_with_headings_and_their_facts() {
    let app = TestApp::spawn().await;
    let mut b = sandbox(&app).await;
    let index = b.get("/portal/guides").await;
    assert_eq!(index.status, 200);
    let index = index.text();
    for (slug, facts) in GUIDES {
        assert!(
            index.contains(&format!("href=\"/portal/guides/{slug}\"")),
            "{slug}"
        );
        let r = b.get(&format!("/portal/guides/{slug}")).await;
        assert_eq!(r.status, 200, "{slug}");
        let html = r.text();
        assert!(
            html.contains("<h1 id=") && html.contains("<h2 id="),
            "{slug}"
        );
        assert!(html.contains("/portal/assets/docs.css"), "{slug}");
        // A guide whose commands name the default address says this server's (the test's
        // server is on a port of its own).
        assert_eq!(
            html.contains("data-testid=\"guide-base\""),
            html.contains("http://127.0.0.1:8080"),
            "{slug}"
        );
        if html.contains("data-testid=\"guide-base\"") {
            assert!(
                html.contains(&format!("This server answers at <code>{}</code>", app.base)),
                "{slug}"
            );
        }
        // Outside code blocks nothing is left of the Markdown.
        let prose: String = html
            .split("<pre")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once("</pre>").map_or("", |(_, after)| after)
                }
            })
            .collect();
        let prose = prose
            .split("data-copy=\"")
            .enumerate()
            .map(|(i, part)| {
                if i == 0 {
                    part
                } else {
                    part.split_once('"').map_or("", |(_, after)| after)
                }
            })
            .collect::<String>();
        for raw in ["**", "```", "](", "|---", "\n#"] {
            assert!(!prose.contains(raw), "{slug}: {raw:?} left over");
        }
        let text = unescape(&html);
        for fact in *facts {
            assert!(text.contains(fact), "{slug}: {fact}");
        }
    }
    assert_eq!(b.get("/portal/guides/nope").await.status, 404);
    let r = Browser::new(&app.base).get("/portal/guides").await;
    assert_eq!(r.status, 303, "guides need a session like every page");
}

const SANDBOX_USE_CASES: &str = include_str!("../../../../docs/guides/sandbox-use-cases.md");

/// The rows of the Markdown table under `heading`: cells without backticks.
fn table(heading: &str) -> Vec<Vec<String>> {
    let at = SANDBOX_USE_CASES
        .find(&format!("## {heading}\n"))
        .unwrap_or_else(|| panic!("no section {heading}"));
    SANDBOX_USE_CASES[at..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .map(|l| {
            l.trim_matches('|')
                .split('|')
                .map(|c| c.trim().replace('`', ""))
                .collect()
        })
        .collect()
}

fn msisdn(n: &str) -> Party {
    Party {
        id_type: PartyIdType::Msisdn,
        id: n.to_owned(),
    }
}

fn eur(major: i64) -> Money {
    Money::from_minor(major * 100, Currency::parse("EUR").unwrap())
}

/// What the guide says, as an outcome.
fn said(cell: &str) -> Outcome {
    if cell.contains("stays `PENDING`")
        || cell.starts_with("stays PENDING")
        || cell.contains("stays PENDING")
    {
        return Outcome::StayPending;
    }
    if let Some(code) = cell
        .split(|c: char| !(c.is_ascii_uppercase() || c == '_'))
        .find(|w| w.len() > 4 && *w != "FAILED" && *w != "SUCCESSFUL")
    {
        let reason = mkoba_platform::reason::FailureReason::parse(code)
            .unwrap_or_else(|| panic!("the guide names an unknown reason {code}"));
        return Outcome::Fail(reason);
    }
    Outcome::Succeed
}

#[test]
fn the_sandbox_guide_says_what_the_scenario_rules_do() {
    // Request-to-pay: every test number of the table, as the settlement worker decides.
    let rows = table("MoMo: request-to-pay, request-to-withdraw and invoices");
    let mut checked = 0;
    for row in &rows {
        for n in row[0]
            .split(',')
            .map(str::trim)
            .filter(|n| n.starts_with("4673312345") || n.starts_with("4673312346"))
        {
            let got = scenario::payment(
                PaymentKind::RequestToPay,
                Product::Collection,
                &msisdn(n),
                eur(100),
            );
            assert_eq!(got, said(&row[1]), "request-to-pay {n}");
            checked += 1;
        }
    }
    assert_eq!(checked, 15, "46733123450 to 64");
    assert_eq!(
        scenario::payment(
            PaymentKind::RequestToPay,
            Product::Collection,
            &msisdn("256774290781"),
            eur(7000)
        ),
        Outcome::Fail(mkoba_platform::reason::FailureReason::PayeeNotAllowedToReceive)
    );
    // Transfers, both products.
    for row in table("MoMo: disbursement and remittance transfers, cash transfers") {
        for n in row[0].split(',').map(str::trim) {
            let disbursement = scenario::payment(
                PaymentKind::Transfer,
                Product::Disbursement,
                &msisdn(n),
                eur(1),
            );
            let remittance = scenario::payment(
                PaymentKind::Transfer,
                Product::Remittance,
                &msisdn(n),
                eur(1),
            );
            if row[1].contains("PAYEE_DELAYED") {
                assert_eq!(
                    disbursement,
                    Outcome::Fail(mkoba_platform::reason::FailureReason::PayerDelayed),
                    "{n}"
                );
                assert_eq!(
                    remittance,
                    Outcome::Fail(mkoba_platform::reason::FailureReason::PayeeDelayed),
                    "{n}"
                );
            } else {
                assert_eq!(disbursement, said(&row[1]), "transfer {n}");
                assert_eq!(remittance, said(&row[1]), "transfer {n}");
            }
        }
    }
    // Pre-approvals.
    for row in table("MoMo: pre-approvals") {
        for n in row[0]
            .split(',')
            .map(str::trim)
            .filter(|n| n.starts_with("467"))
        {
            let got = scenario::payment(
                PaymentKind::PreApproval,
                Product::Collection,
                &msisdn(n),
                eur(1),
            );
            assert_eq!(got, said(&row[1]), "pre-approval {n}");
        }
    }
    // Refund and cash-transfer keys.
    for row in table("MoMo: refunds and cash transfers by key") {
        let key = row[0].as_str();
        assert_eq!(
            scenario::by_key(PaymentKind::Refund, Some(key)),
            Some(said(&row[1])),
            "refund {key}"
        );
        assert_eq!(
            scenario::by_key(PaymentKind::CashTransfer, Some(key)),
            Some(said(&row[2])),
            "cash {key}"
        );
    }
    // The widget's amounts.
    assert_eq!(scenario::widget(eur(1)), Outcome::StayPending);
    assert_eq!(scenario::widget(eur(19)), Outcome::StayPending);
    assert_eq!(
        scenario::widget(eur(20)),
        Outcome::Fail(mkoba_platform::reason::FailureReason::ApprovalRejected)
    );
    assert_eq!(
        scenario::widget(eur(79)),
        Outcome::Fail(mkoba_platform::reason::FailureReason::ApprovalRejected)
    );
    assert_eq!(scenario::widget(eur(100)), Outcome::Succeed);
    // Bill payments.
    for (amount, outcome) in [
        (
            2000,
            Outcome::Fail(mkoba_platform::reason::FailureReason::InternalProcessingError),
        ),
        (
            4000,
            Outcome::Fail(mkoba_platform::reason::FailureReason::InternalProcessingError),
        ),
        (5000, Outcome::StayPending),
        (7000, Outcome::StayPending),
        (1000, Outcome::Succeed),
    ] {
        assert_eq!(
            scenario::payment(
                PaymentKind::BillPayment,
                Product::Collection,
                &msisdn("256774290781"),
                eur(amount)
            ),
            outcome,
            "bill payment {amount}"
        );
        assert!(SANDBOX_USE_CASES.contains(&format!("**{amount}**")) || amount == 1000);
    }
    // Account holders.
    for row in table("MoMo: account holders") {
        let n = row[0].as_str();
        let status = scenario::account_holder(PartyIdType::Msisdn, n);
        let email = scenario::account_holder(PartyIdType::Email, &row[1]);
        let code = scenario::account_holder(PartyIdType::PartyCode, &row[2]);
        assert_eq!(status, email, "{n}");
        assert_eq!(status, code, "{n}");
        match status {
            scenario::HolderStatus::NotActive => assert!(row[3].contains("false")),
            scenario::HolderStatus::Error(code) => assert!(row[3].contains(code), "{n}"),
            scenario::HolderStatus::Active => panic!("{n} is listed but active"),
        }
    }
    // M-Pesa, both number forms.
    for (section, c2b_kind) in [
        ("M-Pesa v2: test numbers", PaymentKind::MpesaC2b),
        (
            "M-Pesa v1x (Mozambique): test numbers",
            PaymentKind::MpesaC2b,
        ),
    ] {
        for row in table(section) {
            let kind = if row[1].starts_with("B2C") {
                PaymentKind::MpesaB2c
            } else {
                c2b_kind
            };
            if row[1].starts_with("query") {
                continue;
            }
            let expected = if row[2].contains("INS-2006") {
                Outcome::Fail(mkoba_platform::reason::FailureReason::NotEnoughFunds)
            } else if row[2].contains("INS-9") {
                Outcome::StayPending
            } else {
                Outcome::Succeed
            };
            for n in row[0]
                .split(',')
                .map(|n| n.trim().split(' ').next().unwrap())
            {
                assert_eq!(scenario::mpesa(kind, &msisdn(n)), expected, "{section} {n}");
            }
        }
    }
}

/// The Send Request box's calls come from the developer's own address: a wrong M-Pesa API
/// key sent through it counts against that address's key-failure bucket, not against one
/// bucket every developer's portal calls would share.
#[tokio::test]
async fn send_request_calls_count_against_the_developers_own_address() {
    let app = TestApp::spawn_with(|s| {
        s.throttle.mpesa_key_failures_per_address =
            mkoba_platform::throttle::Rate::new(2, std::time::Duration::from_secs(3600));
        s.mpesa.rsa = mkoba_mpesa::rsa::RsaLimits {
            workers: 1,
            queue: 64,
        };
    })
    .await;
    let m = app.mpesa().await;
    let wrong = format!("Bearer {}", m.bearer("aaaab09uz9f3asdcjyk7els777ihmwv8"));
    let mut b = sandbox(&app).await;
    let html = b.get("/portal/docs/v2GetSession").await.text();
    let (csrf, path, headers, _) = form_of(&html);
    let headers: Vec<&str> = headers
        .lines()
        .filter(|l| !l.starts_with("Authorization:"))
        .collect();
    let headers = format!("{}\nAuthorization: {wrong}", headers.join("\n"));
    // Two failures fit the bucket; the third finds it empty and blocks the address.
    for _ in 0..3 {
        let r = b
            .post(
                "/portal/docs/v2GetSession",
                &[("csrf", &csrf), ("path", &path), ("headers", &headers)],
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(r.text().contains("INS-989"), "{}", r.text());
    }
    // This address (the tests' and the browser's, 127.0.0.1) is blocked now: its bearers
    // are decrypted only on an idle worker, so of a burst, those that find the one worker
    // busy are answered the overload code at once instead of waiting in the queue.
    let waits = crate::mpesa_support::get_session_burst(&app, &wrong, 40).await;
    assert!(!waits.is_empty(), "the address is past its limit");
}

/// Every M-Pesa Send Request box works as the page fills it in, one after another as a
/// developer tries them: the status query and the reversal name the developer's latest
/// C2B of the page's market (the document's example id is no payment of theirs: `INS-23`,
/// `INS-18`), a mandate's creation a fresh reference each time (the fixed `3333` was a
/// duplicate from the second on), and its payment, query and cancel the latest mandate.
#[tokio::test]
async fn each_mpesa_send_request_box_works_as_it_stands() {
    let app = TestApp::spawn().await;
    let mut b = sandbox(&app).await;
    for id in [
        "v2C2bSingleStage",
        "v2QueryTransactionStatus",
        "v2Reversal",
        // Another payment, and the box reverses it, not the one reversed already.
        "v2C2bSingleStage",
        "v2Reversal",
        "v2DirectDebitCreation",
        "v2DirectDebitCreation",
        "v2DirectDebitPayment",
        "v2QueryDirectDebit",
        "v2DirectDebitCancel",
        "v1xC2bSingleStage",
        "v1xQueryTransactionStatus",
        "v1xReversal",
    ] {
        let page = format!("/portal/docs/{id}");
        let (csrf, path, headers, body) = form_of(&b.get(&page).await.text());
        let html = b
            .post(
                &page,
                &[
                    ("csrf", &csrf),
                    ("path", &path),
                    ("headers", &headers),
                    ("body", &body),
                ],
            )
            .await
            .text();
        let status = testid(&html, "send-status", "<");
        assert!(status.starts_with("20"), "{id}: {status}: {body}\n{html}");
        assert!(
            testid(&html, "response-parameters", "</table>").contains("<code>INS-0</code>"),
            "{id}: {html}"
        );
        // A payment made links to its page; a query links none.
        let made = html.contains("data-testid=\"made-transaction\"");
        let pays = !id.contains("Query") && !id.contains("Cancel");
        assert!(made || !pays, "{id}: {html}");
        assert!(!made || !id.contains("Query"), "{id}: {html}");
        if made {
            let link = testid(&html, "made-transaction", "</p>");
            let href = between(&link, "href=\"", "\"");
            assert_eq!(b.get(href).await.status, 200, "{id}: {href}");
        }
    }
}

/// An M-Pesa v2 page speaks to the market and gateway chosen on it (`?market=…&env=…`):
/// the path, the body's country and currency and the session of the Send Request box
/// follow, and the answer's page keeps the choice. A market the operation does not offer
/// is the default.
#[tokio::test]
async fn an_mpesa_page_speaks_to_the_market_and_gateway_chosen() {
    let app = TestApp::spawn().await;
    let mut b = sandbox(&app).await;
    let (_, path, _, _) = form_of(&b.get("/portal/docs/v2C2bSingleStage").await.text());
    assert!(path.starts_with("/sandbox/ipg/v2/vodacomTZN/"), "{path}");
    let (_, path, _, _) = form_of(
        &b.get("/portal/docs/v2C2bSingleStage?market=nowhere&env=staging")
            .await
            .text(),
    );
    assert!(path.starts_with("/sandbox/ipg/v2/vodacomTZN/"), "{path}");

    let page = "/portal/docs/v2C2bSingleStage?market=vodafoneGHA&env=openapi";
    let html = b.get(page).await.text();
    assert!(
        html.contains("<option value=\"vodafoneGHA\" selected>"),
        "{html}"
    );
    assert!(
        html.contains("<option value=\"openapi\" selected>"),
        "{html}"
    );
    // The box's form carries the choice to the page of its answer.
    assert!(
        html.contains("<input type=\"hidden\" name=\"market\" value=\"vodafoneGHA\"><input type=\"hidden\" name=\"env\" value=\"openapi\">"),
        "{html}"
    );
    let (csrf, path, headers, body) = form_of(&html);
    assert!(path.starts_with("/openapi/ipg/v2/vodafoneGHA/"), "{path}");
    assert!(
        body.contains("\"GHA\"") && body.contains("\"GHS\""),
        "{body}"
    );
    let r = b
        .post(
            "/portal/docs/v2C2bSingleStage",
            &[
                ("csrf", &csrf),
                ("market", "vodafoneGHA"),
                ("env", "openapi"),
                ("path", &path),
                ("headers", &headers),
                ("body", &body),
            ],
        )
        .await;
    let html = r.text();
    assert_eq!(testid(&html, "send-status", "<"), "201", "{html}");
    assert!(
        html.contains("<option value=\"openapi\" selected>"),
        "{html}"
    );
    let link = testid(&html, "made-transaction", "</p>");
    let id = between(&link, "href=\"/portal/transactions/", "\"").to_owned();
    let list = b.get("/portal/transactions?env=production").await.text();
    assert!(
        list.contains(&format!("/portal/transactions/{id}\"")),
        "{list}"
    );
}

/// A MoMo page's examples are what the server answers: an error's for its own code (every
/// one was the same 404 body), a success's within its schema (a pre-approval's status was
/// SUCCESSFUL, which its schema does not allow), and the error tables list what the server
/// says (410 and the one-per-payment 429 of a delivery notification, OAuth's 400s, a
/// currency in the path).
#[tokio::test]
async fn momo_examples_and_error_tables_say_what_the_server_answers() {
    let app = TestApp::spawn().await;
    let mut b = sandbox(&app).await;
    let example = |html: &str, status: &str| -> Value {
        serde_json::from_str(&testid(html, &format!("example-{status}"), "</pre>")).unwrap()
    };
    let page = b.get("/portal/docs/GetApprovedPreApprovals").await.text();
    assert_eq!(example(&page, "200")[0]["status"], "APPROVED", "{page}");

    let page = b
        .get("/portal/docs/Collection-Requesttopay-V1")
        .await
        .text();
    let p = app.partner("127.0.0.1").await;
    let reference = uuid::Uuid::new_v4();
    let body = crate::helpers::rtp_body("5", "256770000001");
    assert_eq!(
        app.request_to_pay(&p, reference, &body, &[]).await.status,
        202
    );
    let again = app.request_to_pay(&p, reference, &body, &[]).await;
    assert_eq!(again.status, 409);
    assert_eq!(
        example(&page, "409"),
        again.json(),
        "the page's 409 is the server's"
    );
    let unkeyed = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[("Ocp-Apim-Subscription-Key", "0")],
            None,
        )
        .await;
    assert_eq!(unkeyed.status, 401);
    assert_eq!(
        example(&page, "401"),
        unkeyed.json(),
        "the page's 401 is the gateway's"
    );
    assert_eq!(
        example(&page, "500")["code"],
        "NOT_ALLOWED_TARGET_ENVIRONMENT"
    );

    let table = |html: &str| testid(html, "error-codes", "</table>");
    let page = b
        .get("/portal/docs/RequesttoPayDeliveryNotification")
        .await
        .text();
    let codes = table(&page);
    assert!(
        codes.contains("<td>410</td><td><code>EXPIRED</code>"),
        "{codes}"
    );
    assert!(codes.contains("one per payment"), "{codes}");
    assert!(!codes.contains("Wait (Retry-After)"), "{codes}");
    let page = b
        .get("/portal/docs/Collection-CreateOauth2Token")
        .await
        .text();
    for code in ["invalid_request", "invalid_grant", "unsupported_grant_type"] {
        assert!(
            table(&page).contains(&format!("<code>{code}</code>")),
            "{code}"
        );
    }
    let page = b
        .get("/portal/docs/Collection-GetAccountBalanceInSpecificCurrency")
        .await
        .text();
    assert!(table(&page).contains("<code>INVALID_CURRENCY</code>"));

    // The document: ids are UUIDs, a body with required members is required, the QR code
    // is an SVG, a cancelled widget invoice carries its errorReason.
    let doc = &documents(&app).await[0];
    let rtp = &doc["paths"]["/collection/v1_0/requesttopay"]["post"];
    assert_eq!(rtp["requestBody"]["required"], true);
    let id = rtp["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "X-Reference-Id")
        .unwrap();
    assert_eq!(id["schema"]["format"], "uuid");
    // Tokens go as a security scheme beside the subscription key (OpenAPI ignores a header
    // parameter named Authorization), Basic credentials to the token endpoint.
    assert_eq!(
        rtp["security"],
        serde_json::json!([{"apiKeyHeader": [], "bearerAuth": []}, {"apiKeyQuery": [], "bearerAuth": []}])
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearerAuth"]["scheme"],
        "bearer"
    );
    let token = &doc["paths"]["/collection/token/"]["post"];
    assert_eq!(
        token["security"][0]["basicAuth"],
        serde_json::json!([]),
        "{token}"
    );
    let qr = &doc["paths"]["/widget/v1_0/invoice/{invoiceId}/qr.svg"]["get"];
    assert!(
        qr["responses"]["200"]["content"]["image/svg+xml"].is_object(),
        "{qr}"
    );
    assert!(doc["components"]["schemas"]["WidgetInvoice"]["properties"]["errorReason"].is_object());
}
