//! The portal defects of issue 15, over HTTP: M-Pesa transaction pages, the pager and the
//! transaction filters, the timeline's callbacks and named ledger accounts, API keys shown
//! once after a redirect, M-Pesa ids in their wire form, and the CSV exports and filters
//! of the transactions and reports pages.

use uuid::Uuid;

use crate::helpers::{Http, Partner, Sink, TestApp, between, rtp_body, timeline_showing, wait_for};
use crate::mpesa_support::conversation_of;
use crate::portal::{Browser, csrf_of};

/// The sandbox developer (who owns the sandbox keys and M-Pesa application), signed in.
pub(crate) async fn sandbox_browser(app: &TestApp) -> Browser {
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 303, "{}", r.text());
    b
}

/// A request-to-pay of `amount` EUR from `msisdn`, accepted (202).
async fn accepted(app: &TestApp, p: &Partner, amount: &str, msisdn: &str) {
    let r = app
        .request_to_pay(p, Uuid::new_v4(), &rtp_body(amount, msisdn), &[])
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
}

/// A settled request-to-pay of `amount` EUR; returns its reference.
async fn paid(
    app: &TestApp,
    p: &Partner,
    amount: &str,
    msisdn: &str,
    extra: &[(&str, &str)],
) -> Uuid {
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(p, reference, &rtp_body(amount, msisdn), extra)
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    app.final_status(p, reference).await;
    reference
}

/// An M-Pesa C2B (synchronous, so final when it answers); returns its conversation id as
/// the client got it and its third-party conversation id.
async fn mpesa_c2b(app: &TestApp, amount: &str, msisdn: &str) -> (String, String, String) {
    let m = app.mpesa().await;
    let body = m.c2b(amount, msisdn);
    let tpcid = body["input_ThirdPartyConversationID"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = m.call("POST", "c2bPayment/singleStage/", &body).await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    (
        v["output_ConversationID"].as_str().unwrap().to_owned(),
        tpcid,
        v["output_TransactionID"].as_str().unwrap().to_owned(),
    )
}

/// `2026-11-22T14:03:07.123Z` (proleptic Gregorian, UTC), as the CSV files write times.
fn iso(ms: i64) -> String {
    let (days, rem) = (ms.div_euclid(86_400_000), ms.rem_euclid(86_400_000));
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3_600_000,
        rem / 60_000 % 60,
        rem / 1000 % 60,
        rem % 1000
    )
}

#[tokio::test]
async fn an_mpesa_transaction_has_a_page_with_its_timeline_and_its_wire_id() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let (conversation, tpcid, transaction) = mpesa_c2b(&app, "10", "000000000001").await;
    assert_eq!(conversation.len(), 32, "the wire form: 32 hex characters");
    let stored = Uuid::parse_str(&conversation).unwrap().to_string();

    // The list shows and links the wire form, never the hyphenated one.
    let list = b.get("/portal/transactions?product=mpesa").await;
    assert_eq!(list.status, 200);
    let html = list.text();
    assert!(
        html.contains(&format!(
            "href=\"/portal/transactions/{conversation}\">{conversation}</a>"
        )),
        "{html}"
    );
    assert!(!html.contains(&stored));

    // The page answers by either form, with the timeline.
    for id in [&conversation, &stored] {
        let r = b.get(&format!("/portal/transactions/{id}")).await;
        assert_eq!(r.status, 200, "{id}: {}", r.text());
        let page = r.text();
        assert!(page.contains(&format!(
            "<dt>Conversation id</dt><dd class=\"mono\" data-testid=\"wire-id\">{conversation}</dd>"
        )));
        assert!(page.contains(&format!("<dd class=\"mono\">{tpcid}</dd>")));
        assert!(page.contains(&format!("<dd class=\"mono\">{transaction}</dd>")));
        let timeline = timeline_showing(
            &page,
            &[
                "Request received",
                "Accepted",
                "Ledger: ",
                "Settlement decision",
            ],
        );
        // Ledger steps name the owners: the payer's wallet and the application's short code.
        assert!(
            timeline.contains(
                "from the wallet of MSISDN 000000000001 to short code 000000 of your M-Pesa application"
            ) || timeline.contains(
                "from the wallet of MSISDN 000000000001 for short code 000000 of your M-Pesa application"
            ),
            "{timeline}"
        );
        assert!(!timeline.contains("from account "), "{timeline}");
        assert!(page.contains("href=\"/portal/mpesa\">Your M-Pesa application</a>"));
    }

    // The search finds it by the wire form, the stored form, the transaction id and the
    // client's own conversation id (32 hex characters too, but an external id).
    for q in [&conversation, &stored, &transaction, &tpcid] {
        let html = b.get(&format!("/portal/transactions?ref={q}")).await.text();
        assert!(
            html.contains(&format!("/portal/transactions/{conversation}\"")),
            "ref={q}: {html}"
        );
        assert!(html.contains("1–1 of 1 transactions"), "ref={q}");
        // Each cell is labelled for a narrow screen, the environment among them, and the
        // header links the mailbox.
        assert!(
            html.contains(
                "<td data-label=\"Environment\" data-testid=\"environment\">sandbox</td>"
            ),
            "{html}"
        );
        assert!(html.contains("<a class=\"mailbox\" href=\"/portal/mail\">Mailbox</a>"));
    }

    // A reversal's page names the payment it reverses in the same wire form.
    let m = app.mpesa().await;
    let r = m
        .call("PUT", "reversal/", &m.reversal(&transaction, Some("4")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let reversal = conversation_of(&r);
    let page = b
        .get(&format!("/portal/transactions/{reversal}"))
        .await
        .text();
    assert!(
        page.contains(&format!(
            "<dt>Reverses</dt><dd><a class=\"mono\" href=\"/portal/transactions/{conversation}\">{conversation}</a>"
        )),
        "{page}"
    );
    // And the payment's page names what reversed it, with the amount and the outcome.
    let page = b
        .get(&format!("/portal/transactions/{conversation}"))
        .await
        .text();
    let refunds = page
        .split("<dt>Reversed by</dt>")
        .nth(1)
        .unwrap_or_else(|| panic!("no reversal named: {page}"));
    let refunds = &refunds[..refunds.find("</dd>").unwrap()];
    assert!(
        refunds.contains(&format!(
            "href=\"/portal/transactions/{reversal}\">{reversal}</a>"
        )),
        "{refunds}"
    );
    assert!(refunds.contains("4.00 TZS"), "{refunds}");
    assert!(refunds.contains("SUCCESSFUL"), "{refunds}");
}

#[tokio::test]
async fn the_pager_clamps_its_page_and_filters_show_themselves_and_their_errors() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    let other = app.partner("127.0.0.1").await;
    for i in 0..26 {
        accepted(&app, &p, "5", &format!("2567700{i:05}")).await;
    }
    // Page 999 of 2 is page 2 of 2, with its row.
    let r = b
        .get(&format!(
            "/portal/transactions?api_user={}&page=999",
            p.user
        ))
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(html.contains("<span>Page 2 of 2</span>"), "{html}");
    // No "Page 999" anywhere (ids and keys on the page may hold the digits by chance).
    assert!(
        !html.contains("Page 999") && !html.contains("page=999"),
        "{html}"
    );
    assert!(html.contains("26–26 of 26 transactions"));
    assert!(html.contains("rel=\"prev\""));
    assert!(!html.contains("rel=\"next\""));
    // Page 1 links to page 2, keeping the filter.
    let html = b
        .get(&format!("/portal/transactions?api_user={}", p.user))
        .await
        .text();
    assert!(html.contains(&format!(
        "<a rel=\"next\" href=\"/portal/transactions?api_user={}&amp;page=2&amp;after=",
        p.user
    )));

    // The API-user filter is shown, selected, and can be removed.
    let filters = between(&html, "data-testid=\"active-filters\"", "</div>");
    assert!(
        filters.contains(&format!("API user: <strong>{} (sandbox)</strong>", p.user)),
        "{filters}"
    );
    assert!(
        filters.contains("href=\"/portal/transactions\" aria-label=\"Remove the filter API user\""),
        "{filters}"
    );
    assert!(html.contains(&format!("<option value=\"{}\" selected>", p.user)));

    // A filter that matches nothing says so and offers to clear the filters.
    let html = b
        .get(&format!("/portal/transactions?api_user={}", other.user))
        .await
        .text();
    assert!(
        html.contains("No transactions match these filters."),
        "{html}"
    );
    assert!(html.contains("<a href=\"/portal/transactions\">Clear the filters</a>"));
    assert!(!html.contains("Make a payment"));

    // A reversed range is refused with a way to swap it; so is a date that is not one.
    let r = b
        .get("/portal/transactions?from=2026-12-10&to=2026-12-01")
        .await;
    assert_eq!(r.status, 400);
    let html = r.text();
    assert!(
        html.contains("The date range is reversed: From (2026-12-10) is after To (2026-12-01).")
    );
    assert!(html.contains(
        "<a href=\"/portal/transactions?from=2026-12-01&amp;to=2026-12-10\">Swap the dates</a>"
    ));
    assert!(html.contains(
        "id=\"from\" name=\"from\" type=\"date\" value=\"2026-12-10\" aria-invalid=\"true\""
    ));
    assert!(!html.contains("<table class=\"tx\""));
    let r = b.get("/portal/transactions?to=31.12.2026").await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("To “31.12.2026” is not a date"));
    let r = b.get("/portal/transactions?api_user=nobody").await;
    assert_eq!(r.status, 400);
    // An id that is no API user of this developer's is refused as well, not an empty list
    // (on the reports too).
    let stranger = Uuid::new_v4();
    for page in ["transactions", "reports"] {
        let r = b.get(&format!("/portal/{page}?api_user={stranger}")).await;
        assert_eq!(r.status, 400, "{page}");
        assert!(
            r.text().contains("is not one of your API users"),
            "{page}: {}",
            r.text()
        );
    }
    let r = b.get("/portal/transactions?format=xml").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("Format “xml” is not one of the choices"),
        "{}",
        r.text()
    );
    let r = b
        .get("/portal/transactions?from=2026-12-10&to=2026-12-01&format=csv")
        .await;
    assert_eq!(r.status, 400);
    assert!(r.text().contains("reversed"));
    // A refused export stays plain text: the portal's own answer, not the framework's.
    assert_eq!(r.header("content-type"), Some("text/plain; charset=utf-8"));
}

#[tokio::test]
async fn the_timeline_numbers_re_sent_callbacks_and_names_ledger_accounts() {
    let app = TestApp::spawn_with(|s| s.dispatcher.allow_private = true).await;
    let sink = Sink::start(200).await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    let url = sink.url("/cb");
    let reference = paid(&app, &p, "25", "256771234567", &[("X-Callback-Url", &url)]).await;
    sink.wait_for(1).await;
    let page = format!("/portal/transactions/{reference}");
    let r = b.submit(&page, &format!("{page}/resend"), &[]).await;
    assert_eq!(r.status, 303);
    assert_eq!(
        r.header("location"),
        Some(format!("{page}?done=resent").as_str())
    );
    sink.wait_for(2).await;
    // The attempt is recorded with the writer's next batch: a bounded wait for it.
    let mut html = String::new();
    for _ in 0..250 {
        html = b.get(&page).await.text();
        if html.matches("Callback attempt").count() >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let timeline = timeline_showing(&html, &[]);
    assert_eq!(
        timeline.matches(">Callback attempt 1<").count(),
        1,
        "{timeline}"
    );
    assert!(
        timeline.contains(">Callback attempt 2 · manual re-send 1<"),
        "{timeline}"
    );
    // One line: the call, its answer and its latency in one inline span.
    assert!(
        timeline.contains(&format!(
            "<span class=\"call\"><code>POST {url}</code> → <b>200</b> in "
        )),
        "{timeline}"
    );
    // Ledger steps name the accounts' owners. A reservation settled within the same
    // millisecond shows as one posting step, so either wording is right.
    let reserved = format!(
        "reserves 25.00 EUR from the wallet of MSISDN 256771234567 for the partner&#39;s collection account of API user {}",
        p.user
    );
    let moved = format!(
        "moves 25.00 EUR from the wallet of MSISDN 256771234567 to the partner&#39;s collection account of API user {}",
        p.user
    );
    assert!(
        timeline.contains(&reserved) || timeline.contains(&moved),
        "{timeline}"
    );
    assert!(!timeline.contains("from account "));
    // Both attempts count in the latency report (each is its callback's first, kept on
    // the callback's own row).
    let csv = b.get("/portal/reports?csv=latency").await.text();
    assert!(csv.contains("\r\ncallback,2,"), "{csv}");
    // The admin API tells the re-send from the first delivery: each the first try of its
    // own delivery.
    let t = app.admin_transaction(reference).await;
    let callbacks = t["callbacks"].as_array().unwrap();
    assert_eq!(callbacks.len(), 2, "{t}");
    assert!(callbacks.iter().all(|c| c["attempt"] == 1), "{t}");
    assert_ne!(callbacks[0]["outbox_id"], callbacks[1]["outbox_id"], "{t}");
}

#[tokio::test]
async fn a_new_api_key_is_shown_once_after_a_redirect() {
    let app = TestApp::spawn().await;
    // Keys made before, of other API users: the store's ids count them.
    for _ in 0..3 {
        app.partner("127.0.0.1").await;
    }
    let mut b = sandbox_browser(&app).await;
    let before = b
        .get("/portal/apiusers")
        .await
        .text()
        .matches("href=\"/portal/apiusers/")
        .count();
    let r = b
        .submit(
            "/portal/apiusers",
            "/portal/apiusers",
            &[("host", "127.0.0.1"), ("environment", "sandbox")],
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    let location = r.header("location").unwrap().to_owned();
    let id = between(&location, "/portal/apiusers/", "?");
    let user = Uuid::parse_str(id).expect("the new user's page");
    assert_eq!(
        location,
        format!("/portal/apiusers/{user}?done=key-created")
    );
    let cookie = r.header("set-cookie").unwrap().to_owned();
    assert!(cookie.starts_with("mkoba_new_api_key="), "{cookie}");
    assert!(
        cookie.contains(&format!(
            "; Path=/portal/apiusers/{user}; HttpOnly; SameSite=Strict; Max-Age=120"
        )),
        "{cookie}"
    );
    assert!(r.text().is_empty(), "no key in the POST's answer");

    // The redirect target shows the key, and clears the cookie that carried it.
    let r = b.get(&location).await;
    assert_eq!(r.status, 200);
    let html = r.text();
    let key = between(&html, "data-testid=\"new-api-key\">", "<").to_owned();
    assert_eq!(key.len(), 32, "{html}");
    assert!(!location.contains(&key));
    // The cookie's claims are signed and carry the key encrypted: the browser's cookie
    // store (and a proxy logging cookies) hold no key.
    use base64::Engine as _;
    let value = between(&cookie, "mkoba_new_api_key=", ";");
    let claims = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(value.split('.').next().unwrap())
        .unwrap();
    let claims = String::from_utf8(claims).unwrap();
    assert!(
        claims.contains("\"key\":") && !claims.contains(&key),
        "{claims}"
    );
    let cleared = r.header("set-cookie").unwrap();
    assert!(
        cleared.starts_with("mkoba_new_api_key=;") && cleared.contains("Max-Age=0"),
        "{cleared}"
    );
    // The key works.
    let token = app.token_response("collection", user, &key).await;
    assert_eq!(token.status, 200, "{}", token.text());

    // A reload shows it no more, and says why.
    let r = b.get(&location).await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(!html.contains("new-api-key") && !html.contains(&key));
    assert!(html.contains("data-testid=\"key-shown-once\""));
    // And reloading made no second user.
    let after = b
        .get("/portal/apiusers")
        .await
        .text()
        .matches("href=\"/portal/apiusers/")
        .count();
    assert_eq!(after, before + 1);

    // "Create API key" on the user's page works the same way.
    let r = b
        .submit(&location, &format!("/portal/apiusers/{user}/keys"), &[])
        .await;
    assert_eq!(r.status, 303);
    let second = b.get(r.header("location").unwrap()).await.text();
    let key2 = between(&second, "data-testid=\"new-api-key\">", "<");
    assert_eq!(key2.len(), 32);
    assert_ne!(key2, key);
    // The user's keys are numbered #1 and #2 (the store's ids count every developer's),
    // each with its last characters.
    for (n, k) in [(1, &key), (2, &key2.to_owned())] {
        let ending = &k[k.len() - 4..];
        assert!(
            second.contains(&format!(
                "<td>#{n} <code data-testid=\"key-ending\">…{ending}</code></td>"
            )),
            "{second}"
        );
    }

    // A flash cookie for another user's page, or forged, shows nothing.
    let r = b
        .submit(&location, &format!("/portal/apiusers/{user}/keys"), &[])
        .await;
    let flash = r.header("set-cookie").unwrap();
    let value = between(flash, "mkoba_new_api_key=", ";").to_owned();
    let other = b
        .submit(
            "/portal/apiusers",
            "/portal/apiusers",
            &[("host", "127.0.0.1"), ("environment", "sandbox")],
        )
        .await;
    let other_page = other.header("location").unwrap().to_owned();
    let http = Http::new();
    let session = raw_session(&app).await;
    for (page, value) in [
        (other_page.as_str(), value.as_str()),
        (location.as_str(), "eyJ4IjoxfQ.AAAA"),
    ] {
        let r = http
            .send(
                "GET",
                &format!("{}{page}", app.base),
                &[(
                    "Cookie",
                    &format!("mkoba_session={session}; mkoba_new_api_key={value}"),
                )],
                None,
            )
            .await;
        assert_eq!(r.status, 200);
        assert!(!r.text().contains("data-testid=\"new-api-key\""), "{page}");
    }
}

/// A session id of the sandbox developer, for requests with hand-made cookies.
async fn raw_session(app: &TestApp) -> String {
    let login = app.sandbox_login().await;
    let http = Http::new();
    let r = http
        .send("GET", &format!("{}/portal/signin", app.base), &[], None)
        .await;
    let pre = between(r.header("set-cookie").unwrap(), "mkoba_csrf=", ";").to_owned();
    let csrf = csrf_of(&r.text());
    assert_eq!(csrf, pre);
    let enc = |s: &str| s.replace('@', "%40");
    let r = http
        .send(
            "POST",
            &format!("{}/portal/signin", app.base),
            &[
                ("Cookie", &format!("mkoba_csrf={pre}")),
                ("Content-Type", "application/x-www-form-urlencoded"),
            ],
            Some(&format!(
                "csrf={csrf}&email={}&password={}&next=%2Fportal",
                enc(&login.email),
                enc(&login.password)
            )),
        )
        .await;
    assert_eq!(r.status, 303, "{}", r.text());
    r.headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix("mkoba_session="))
        .map(|v| v.split(';').next().unwrap().to_owned())
        .expect("a session cookie")
}

/// An API user of a production-like market (its currency, no test numbers).
async fn market_partner(app: &TestApp, environment: &str) -> Partner {
    let r = app
        .send(
            "POST",
            "/_mkoba/apiusers",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            Some(&format!(
                r#"{{"providerCallbackHost":"shop.ug","targetEnvironment":"{environment}"}}"#
            )),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let v = r.json();
    let user = Uuid::parse_str(v["apiUser"].as_str().unwrap()).unwrap();
    let key = v["apiKey"].as_str().unwrap().to_owned();
    let token = app.token("collection", user, &key).await;
    Partner { user, key, token }
}

#[tokio::test]
async fn transactions_and_report_tables_export_as_csv_with_the_filters() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    let reference = paid(&app, &p, "1234.5", "256779999001", &[]).await;
    let (conversation, tpcid, transaction) = mpesa_c2b(&app, "10", "000000000001").await;
    let platform = &app.running.platform;
    let momo = platform.payments().get(&reference).await.unwrap().unwrap();
    let mpesa = platform
        .payments()
        .get(&Uuid::parse_str(&conversation).unwrap())
        .await
        .unwrap()
        .unwrap();
    let header = "created_at,reference_id,api,operation,status,reason,party_type,party,amount,currency,external_id,financial_transaction_id,api_user,environment,short_code,settled_at\r\n";

    // Transactions: every filter applies; the amount has the currency's two decimals.
    let r = b
        .get(&format!(
            "/portal/transactions?api_user={}&format=csv",
            p.user
        ))
        .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    assert_eq!(
        r.header("content-disposition"),
        Some("attachment; filename=\"mkoba-transactions.csv\"")
    );
    let expected = format!(
        "{header}{},{reference},collection,requesttopay,SUCCESSFUL,,MSISDN,256779999001,1234.50,EUR,ext-256779999001,{},{},sandbox,,{}\r\n",
        iso(momo.created_at_ms),
        momo.financial_transaction_id.clone().unwrap(),
        p.user,
        iso(momo.settled_at_ms.unwrap()),
    );
    assert_eq!(r.text(), expected);
    // M-Pesa rows carry the wire id, found by it.
    let r = b
        .get(&format!(
            "/portal/transactions?ref={conversation}&format=csv"
        ))
        .await;
    assert_eq!(
        r.text(),
        format!(
            "{header}{},{conversation},mpesa,c2b,SUCCESSFUL,,MSISDN,000000000001,10.00,TZS,{tpcid},{transaction},{},{},000000,{}\r\n",
            iso(mpesa.created_at_ms),
            mpesa.api_user,
            mpesa.environment,
            iso(mpesa.settled_at_ms.unwrap()),
        )
    );
    // The page links the export with its filters.
    let html = b
        .get(&format!("/portal/transactions?api_user={}", p.user))
        .await
        .text();
    assert!(html.contains(&format!(
        "href=\"/portal/transactions?api_user={}&amp;format=csv\" data-testid=\"csv-transactions\"",
        p.user
    )));

    // Reports: filtered by API user, then by API and operation; each table as CSV.
    let html = b
        .get(&format!("/portal/reports?api_user={}", p.user))
        .await
        .text();
    assert!(
        html.contains("Transactions: 1,"),
        "only that user's payment"
    );
    assert!(
        html.contains("<td class=\"num\">1,234.50</td>"),
        "grouped, two decimals"
    );
    assert!(!html.contains("Successful value in TZS"));
    assert!(html.contains("data-testid=\"active-filters\""));
    let html = b.get("/portal/reports?product=mpesa&kind=c2b").await.text();
    assert!(html.contains("Transactions: 1,") && html.contains("Successful value in TZS"));
    assert!(!html.contains("Successful value in EUR"));
    let html = b.get("/portal/reports").await.text();
    assert!(html.contains("Transactions: 2,"));

    let r = b.get("/portal/reports?days=1&csv=volume").await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
    let csv = r.text();
    let lines: Vec<&str> = csv.split("\r\n").collect();
    assert_eq!(lines[0], "period_start,successful,failed,pending");
    assert_eq!(lines.len(), 24 + 2, "24 hours and the final CRLF");
    let hour = momo.created_at_ms / 3_600_000 * 3_600_000;
    assert_eq!(lines[24], format!("{},2,0,0", iso(hour)));

    let r = b
        .get(&format!(
            "/portal/reports?days=1&api_user={}&csv=value-EUR",
            p.user
        ))
        .await;
    let csv = r.text();
    // As on the page, a column only for the products that moved money in the currency,
    // then the money in and the money out.
    assert!(
        csv.starts_with("period_start,collection,in,out,currency\r\n"),
        "{csv}"
    );
    assert!(
        csv.ends_with(&format!("{},1234.50,1234.50,0.00,EUR\r\n", iso(hour))),
        "{csv}"
    );
    let csv = b.get("/portal/reports?days=1&csv=value-TZS").await.text();
    assert!(
        csv.starts_with("period_start,mpesa_in,in,out,currency\r\n"),
        "{csv}"
    );
    assert!(
        csv.ends_with(&format!("{},10.00,10.00,0.00,TZS\r\n", iso(hour))),
        "{csv}"
    );
    // Money out is not added to money in: a B2C and the C2B's reversal go out.
    let m = app.mpesa().await;
    let r = m
        .call("POST", "b2cPayment/", &m.b2c("2.50", "000000000001"))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let r = m
        .call("PUT", "reversal/", &m.reversal(&transaction, Some("4")))
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let csv = b.get("/portal/reports?days=1&csv=value-TZS").await.text();
    assert!(
        csv.starts_with("period_start,mpesa_in,mpesa_out,in,out,currency\r\n"),
        "{csv}"
    );
    assert!(
        csv.ends_with(&format!("{},10.00,6.50,10.00,6.50,TZS\r\n", iso(hour))),
        "{csv}"
    );
    let html = b.get("/portal/reports?days=1").await.text();
    assert!(
        html.contains(">M-Pesa in</th>") && html.contains(">M-Pesa out</th>"),
        "{html}"
    );
    assert!(!html.contains(">Total</th>"), "{html}");
    assert!(html.contains("data-testid=\"environments-together\""));
    let html = b.get("/portal/reports?days=1&env=sandbox").await.text();
    assert!(!html.contains("data-testid=\"environments-together\""));
    let csv = b.get("/portal/reports?csv=latency").await.text();
    assert!(
        csv.starts_with("measure,samples,p50_ms,p90_ms,p99_ms,max_ms\r\nsettlement,4,"),
        "{csv}"
    );
    assert!(csv.ends_with("callback,0,,,,\r\n"), "{csv}");
    let csv = b.get("/portal/reports?days=1&csv=success").await.text();
    assert!(
        csv.ends_with(&format!("{},4,4,100.0\r\n", iso(hour))),
        "{csv}"
    );
    assert_eq!(b.get("/portal/reports?csv=nothing").await.status, 400);
    assert_eq!(b.get("/portal/reports?kind=nothing").await.status, 400);
    // A period that is not one of the choices is refused too, not read as the default.
    for days in ["2", "abc", "-1", "100000"] {
        let r = b.get(&format!("/portal/reports?days={days}")).await;
        assert_eq!(r.status, 400, "{days}");
        assert!(r.text().contains("is not one of the choices"), "{days}");
        let r = b
            .get(&format!("/portal/reports?days={days}&csv=volume"))
            .await;
        assert_eq!(r.status, 400, "{days}");
    }

    // Amounts follow each currency's minor unit: UGX has none.
    let ug = market_partner(&app, "mtnuganda").await;
    let ugx = Uuid::new_v4();
    let body = r#"{"amount":"15000","currency":"UGX","externalId":"ug-1","payer":{"partyIdType":"MSISDN","partyId":"256772000123"},"payerMessage":"m","payeeNote":"n"}"#;
    let bearer = format!("Bearer {}", ug.token);
    let r = app
        .send(
            "POST",
            "/collection/v1_0/requesttopay",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Authorization", &bearer),
                ("X-Target-Environment", "mtnuganda"),
                ("X-Reference-Id", &ugx.to_string()),
            ],
            Some(body),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for(|| async {
        let p = platform.payments().get(&ugx).await.unwrap().unwrap();
        p.status.is_final().then_some(())
    })
    .await;
    let html = b.get(&format!("/portal/transactions/{ugx}")).await.text();
    assert!(
        html.contains("<dt>Amount</dt><dd>15,000 UGX</dd>"),
        "{html}"
    );
    let html = b
        .get(&format!("/portal/transactions/{reference}"))
        .await
        .text();
    assert!(
        html.contains("<dt>Amount</dt><dd>1,234.50 EUR</dd>"),
        "{html}"
    );
    let csv = b
        .get(&format!(
            "/portal/transactions?api_user={}&format=csv",
            ug.user
        ))
        .await
        .text();
    assert!(
        csv.contains(",MSISDN,256772000123,15000,UGX,ug-1,"),
        "{csv}"
    );
    let html = b
        .get(&format!("/portal/reports?api_user={}", ug.user))
        .await
        .text();
    assert!(html.contains("<td class=\"num\">15,000</td>"), "{html}");
    assert!(html.contains("UGX <span class=\"hint\">(0 decimals)</span>"));
}

/// The framework's own refusals come as the portal's pages, not bare text: here a form over
/// the body limit (413), with the portal's security headers.
#[tokio::test]
async fn a_form_over_the_limit_gets_the_portals_page() {
    let app = TestApp::spawn().await;
    let big = format!("email=a%40b.cd&password={}", "x".repeat(3 * 1024 * 1024));
    let r = app
        .send(
            "POST",
            "/portal/signin",
            &[("Content-Type", "application/x-www-form-urlencoded")],
            Some(&big),
        )
        .await;
    assert_eq!(r.status, 413);
    assert!(
        r.header("content-type")
            .unwrap_or_default()
            .starts_with("text/html"),
        "{:?}",
        r.header("content-type")
    );
    assert!(
        r.text().contains("larger than the portal takes"),
        "{}",
        r.text()
    );
    assert_eq!(r.header("x-frame-options"), Some("DENY"));
}

/// A method a page does not take is the portal's page too (the router's 405 has no body),
/// and it still says which methods the page takes.
#[tokio::test]
async fn a_method_a_page_does_not_take_gets_the_portals_page() {
    let app = TestApp::spawn().await;
    for (method, path) in [("PUT", "/portal/signin"), ("DELETE", "/portal/phone/mode")] {
        let r = app.send(method, path, &[], None).await;
        assert_eq!(r.status, 405, "{method} {path}");
        assert!(
            r.header("content-type")
                .unwrap_or_default()
                .starts_with("text/html"),
            "{method} {path}: {:?}",
            r.header("content-type")
        );
        assert!(r.text().contains("Method not allowed"), "{}", r.text());
        assert!(r.header("allow").is_some_and(|a| a.contains("POST")));
        assert_eq!(r.header("x-frame-options"), Some("DENY"));
    }
}

/// A form whose body stops coming is refused once the listener's body time is over (three
/// times the header time), with the portal's page rather than the framework's bare text.
#[tokio::test]
async fn a_form_that_stops_coming_gets_the_portals_page() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let app =
        TestApp::spawn_with(|s| s.connections.header_read = std::time::Duration::from_millis(300))
            .await;
    let mut stuck = tokio::net::TcpStream::connect(app.running.addr)
        .await
        .unwrap();
    stuck
        .write_all(
            b"POST /portal/signin HTTP/1.1\r\nHost: x\r\n\
              Content-Type: application/x-www-form-urlencoded\r\nContent-Length: 100\r\n\r\nemail=",
        )
        .await
        .unwrap();
    let mut answer = Vec::new();
    let read = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        stuck.read_to_end(&mut answer),
    )
    .await;
    assert!(read.is_ok(), "the connection was still open after 10 s");
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("content-type: text/html"), "{answer}");
    assert!(answer.contains("did not arrive whole"), "{answer}");
    assert!(answer.contains("x-frame-options: DENY"), "{answer}");
}

/// A report reads at most the newest payments of its period (`PortalConfig::report_max`,
/// 100,000 unless a test sets it), whatever the database holds: past it, the page says from
/// when it counts, and counts those; its CSV files count the same.
#[tokio::test]
async fn a_report_counts_the_newest_payments_of_a_period_that_holds_too_many() {
    let app = TestApp::spawn_with(|s| s.portal.report_max = Some(3)).await;
    let p = app.partner("127.0.0.1").await;
    for i in 0..5 {
        accepted(&app, &p, "1", &format!("25677000030{i}")).await;
        // Apart in time: the newest three are told from the others by when they were made.
        tokio::time::sleep(std::time::Duration::from_millis(5)).await;
    }
    let mut b = sandbox_browser(&app).await;
    let html = b.get("/portal/reports?days=1").await.text();
    assert!(
        html.contains("The period holds more than 3 transactions"),
        "{html}"
    );
    assert!(html.contains("Transactions: 3, since"), "{html}");
    let csv = b.get("/portal/reports?days=1&csv=volume").await.text();
    let counted: u64 = csv
        .lines()
        .skip(1)
        .flat_map(|l| l.split(',').skip(1).map(|n| n.parse::<u64>().unwrap()))
        .sum();
    assert_eq!(counted, 3, "{csv}");
    // A period that holds no more than that says nothing of it.
    let app = TestApp::spawn_with(|s| s.portal.report_max = Some(5)).await;
    let p = app.partner("127.0.0.1").await;
    accepted(&app, &p, "1", "256770000310").await;
    let html = sandbox_browser(&app)
        .await
        .get("/portal/reports?days=1")
        .await
        .text();
    assert!(!html.contains("report-newest"), "{html}");
    assert!(html.contains("Transactions: 1, since"), "{html}");
}

/// A server with `n` accepted request-to-pays from payers `{prefix}00000`…, a browser
/// signed in as their developer, and the partner that made them.
async fn with_payments(n: usize, prefix: &str) -> (TestApp, Browser, Partner) {
    let app = TestApp::spawn().await;
    let b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    for i in 0..n {
        accepted(&app, &p, "5", &format!("{prefix}{i:05}")).await;
    }
    (app, b, p)
}

/// "Older" goes on from the page's last payment, not from a count of rows: payments made
/// while someone reads page 1 (they are newer) push none of it onto page 2, which holds
/// exactly the ones after it. A position that is not one the portal made is a 400 that
/// says so; one past the oldest payment says there is nothing older.
#[tokio::test]
async fn older_pages_go_on_from_the_last_payment_so_new_payments_repeat_none() {
    let (app, mut b, p) = with_payments(30, "2567710").await;
    // All thirty in the page's order, from the export.
    let csv = b.get("/portal/transactions?format=csv").await.text();
    let all: Vec<String> = csv
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().to_owned())
        .collect();
    assert_eq!(all.len(), 30);
    let first = b.get("/portal/transactions").await.text();
    assert_eq!(listed(&first), all[..25]);
    let older = between(&first, "<a rel=\"next\" href=\"", "\"").replace("&amp;", "&");
    assert!(
        older.starts_with("/portal/transactions?page=2&after="),
        "{older}"
    );

    // Five more while page 1 is read: page 2 is the five after it, none of page 1.
    for i in 0..5 {
        accepted(&app, &p, "5", &format!("2567720{i:05}")).await;
    }
    let r = b.get(&older).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let second = r.text();
    assert_eq!(listed(&second), all[25..]);
    assert!(second.contains("26–30 of 35 transactions"), "{second}");
    assert!(second.contains("<span>Page 2 of 2</span>"), "{second}");
    assert!(!second.contains("rel=\"next\""));
    assert!(second.contains("<a rel=\"prev\" href=\"/portal/transactions?page=1\">"));

    // Nothing older than the oldest millisecond.
    let r = b.get("/portal/transactions?page=3&after=1.1").await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert!(listed(&html).is_empty());
    assert!(html.contains("No older transactions."), "{html}");
    assert!(html.contains("0–0 of 35 transactions"), "{html}");
    // Not a position the portal made.
    let r = b.get("/portal/transactions?after=%3Cb%3E1.2").await;
    assert_eq!(r.status, 400);
    assert!(
        r.text().contains("\u{201c}&lt;b&gt;1.2\u{201d}"),
        "{}",
        r.text()
    );
    for bad in ["x", "12", "1.a%20b", "-5.3"] {
        let r = b.get(&format!("/portal/transactions?after={bad}")).await;
        assert_eq!(r.status, 400, "{bad}");
        assert!(
            r.text().contains("is not one the portal made"),
            "{bad}: {}",
            r.text()
        );
    }
}

/// "Newer" goes back to the page before this one's first payment (from page 3 on; to page 2
/// it is the first page, the newest as they are now): payments made meanwhile shift none of
/// the pages already read. A position past the newest is the first page.
#[tokio::test]
async fn newer_pages_go_back_to_the_page_before_so_new_payments_shift_none() {
    let (app, mut b, p) = with_payments(60, "2567730").await;
    let link = |html: &str, rel: &str| {
        between(html, &format!("<a rel=\"{rel}\" href=\""), "\"").replace("&amp;", "&")
    };
    let first = b.get("/portal/transactions").await.text();
    let second = b.get(&link(&first, "next")).await.text();
    let third = b.get(&link(&second, "next")).await.text();
    assert_eq!(listed(&third).len(), 10, "{third}");
    assert!(third.contains("<span>Page 3 of 3</span>"));

    // Five more, then back: page 2 as it was read, then the newest.
    for i in 0..5 {
        accepted(&app, &p, "5", &format!("2567740{i:05}")).await;
    }
    let newer = link(&third, "prev");
    assert!(
        newer.starts_with("/portal/transactions?page=2&before="),
        "{newer}"
    );
    let again = b.get(&newer).await.text();
    assert_eq!(listed(&again), listed(&second));
    assert!(again.contains("26–50 of 65 transactions"), "{again}");
    assert_eq!(link(&again, "prev"), "/portal/transactions?page=1");
    let top = b.get("/portal/transactions?page=1").await.text();
    assert_eq!(listed(&top)[5..], listed(&first)[..20]);

    // Before the newest: the first page.
    let r = b
        .get("/portal/transactions?page=4&before=999999999999999.1")
        .await;
    assert_eq!(r.status, 200);
    let html = r.text();
    assert_eq!(listed(&html), listed(&top));
    assert!(html.contains("<span>Page 1 of 3</span>"), "{html}");
}

/// The reference ids of a transactions page, in the order it lists them.
fn listed(html: &str) -> Vec<String> {
    html.split("<a class=\"mono\" href=\"/portal/transactions/")
        .skip(1)
        .map(|rest| rest.split('"').next().unwrap().to_owned())
        .collect()
}

/// The transactions export is read a few payments at a time (`PortalConfig::export_run`),
/// each run from where the last one stopped. Payments of one millisecond (the server's
/// clock stands still) split across runs come once each, in the order the page lists them;
/// past `export_max` the export holds the newest, and the page's link says so.
#[tokio::test]
async fn a_csv_export_read_in_runs_holds_each_payment_once_in_the_pages_order() {
    let (app, clock) = TestApp::spawn_with_clock(|s| {
        s.portal.export_run = Some(2);
        s.portal.export_max = Some(9);
    })
    .await;
    let (p, q) = (
        app.partner("127.0.0.1").await,
        app.partner("127.0.0.1").await,
    );
    let mut made = 0;
    let mut pay = async |p: &Partner| {
        made += 1;
        accepted(&app, p, "1", &format!("2567700004{made:02}")).await;
    };
    // Five in one millisecond from two API users, then three more a millisecond apart.
    for p in [&p, &q, &p, &q, &p] {
        pay(p).await;
    }
    for p in [&q, &p, &q] {
        app.advance(&clock, std::time::Duration::from_millis(1))
            .await;
        pay(p).await;
    }
    let mut b = sandbox_browser(&app).await;
    let exported = async |b: &mut Browser| -> Vec<String> {
        let r = b.get("/portal/transactions?format=csv").await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("content-type"), Some("text/csv; charset=utf-8"));
        let text = r.text();
        assert!(text.starts_with("created_at,reference_id,"), "{text}");
        text.lines()
            .skip(1)
            .map(|l| l.split(',').nth(1).unwrap().to_owned())
            .collect()
    };
    let page = b.get("/portal/transactions").await.text();
    let on_page = listed(&page);
    assert_eq!(on_page.len(), 8, "{page}");
    assert!(page.contains("data-testid=\"csv-transactions\">Download CSV</a>"));
    assert_eq!(exported(&mut b).await, on_page);
    // Eleven: the export holds the newest nine.
    for p in [&p, &q, &p] {
        pay(p).await;
    }
    let page = b.get("/portal/transactions").await.text();
    let on_page = listed(&page);
    assert_eq!(on_page.len(), 11, "{page}");
    assert!(
        page.contains("data-testid=\"csv-transactions\">Download CSV (the newest 9)</a>"),
        "{page}"
    );
    assert_eq!(exported(&mut b).await, on_page[..9]);
}

/// An export's later runs wait while the portal's read queue is full (tried every 20 ms
/// for up to 2 s), so a busy moment between two runs costs the download nothing; a queue
/// full for longer cuts the download, which the client sees as an error, never as a
/// shorter file. A first run refused is the busy page, before anything was sent.
#[tokio::test]
async fn a_csv_export_waits_between_runs_while_the_read_queue_is_full_and_is_cut_past_that() {
    use mkoba_platform::faults::Faults;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| {
        s.faults = Some(switch);
        s.portal.export_run = Some(2);
    })
    .await;
    let p = app.partner("127.0.0.1").await;
    for i in 0..5 {
        accepted(&app, &p, "1", &format!("25677000050{i}")).await;
    }
    let mut b = sandbox_browser(&app).await;
    const CSV: &str = "/portal/transactions?format=csv";
    let start = faults.portal_reads();
    let whole = b.get(CSV).await;
    assert_eq!(whole.status, 200, "{}", whole.text());
    let whole = whole.text();
    assert_eq!(whole.lines().count(), 6, "{whole}");
    // Three runs of two; the reads before them are the request's own (its session…).
    let before = faults.portal_reads() - start - 3;

    // The first run read, the second refused ten times: the same file.
    faults.refuse_portal_reads(before + 1, 10);
    let r = b.get(CSV).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.text(), whole);

    // The second run refused for longer than the wait: the download is cut.
    faults.refuse_portal_reads(before + 1, 1_000);
    assert!(
        b.try_get(CSV).await.is_none(),
        "a download cut short must not arrive as a whole (shorter) file"
    );

    // The first run refused: the busy page, and the next export is whole again.
    faults.refuse_portal_reads(before, 1);
    let r = b.get(CSV).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.header("retry-after").is_some());
    assert_eq!(b.get(CSV).await.text(), whole);
}

/// A report's figures are those of its periods and its currencies, all of them: a payment
/// made on a test clock ahead of real time is counted apart (no period holds it), every
/// currency that moved gets its value table, a value CSV of a currency the period does not
/// hold is refused, and the last 24 hours' link says which days it lists. The go-live
/// report counts sandbox payments only.
#[tokio::test]
async fn reports_count_what_their_periods_hold_in_every_currency_and_go_live_the_sandbox() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    paid(&app, &p, "5", "256779999001", &[]).await;
    // An API user on a clock a fortnight ahead, with one payment.
    let ahead = app.partner("127.0.0.1").await;
    let r = app
        .send(
            "POST",
            "/_mkoba/test_clocks",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("Content-Type", "application/json"),
            ],
            Some(
                &serde_json::json!({
                    "apiUser": ahead.user.to_string(),
                    "frozenTimeMs": app.running.platform.now_ms() + 14 * 86_400_000,
                })
                .to_string(),
            ),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let ahead = Partner {
        token: app.token("collection", ahead.user, &ahead.key).await,
        ..ahead
    };
    paid(&app, &ahead, "7", "256779999002", &[]).await;
    // Four more currencies, in production markets and on M-Pesa.
    for (environment, currency, amount) in [
        ("mtnuganda", "UGX", "1500"),
        ("mtnghana", "GHS", "3"),
        ("mtnbenin", "XOF", "400"),
    ] {
        let m = market_partner(&app, environment).await;
        let reference = Uuid::new_v4();
        let body = format!(
            r#"{{"amount":"{amount}","currency":"{currency}","externalId":"x","payer":{{"partyIdType":"MSISDN","partyId":"256772000123"}},"payerMessage":"m","payeeNote":"n"}}"#
        );
        let bearer = format!("Bearer {}", m.token);
        let r = app
            .send(
                "POST",
                "/collection/v1_0/requesttopay",
                &[
                    ("Ocp-Apim-Subscription-Key", app.key("collection")),
                    ("Authorization", &bearer),
                    ("X-Target-Environment", environment),
                    ("X-Reference-Id", &reference.to_string()),
                ],
                Some(&body),
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
        let payments = app.running.platform.payments();
        crate::helpers::wait_for(|| async {
            let p = payments.get(&reference).await.unwrap()?;
            (p.status != mkoba_platform::model::PaymentStatus::Pending).then_some(())
        })
        .await;
    }
    mpesa_c2b(&app, "10", "000000000001").await;

    let html = b.get("/portal/reports").await.text();
    assert!(html.contains("Transactions: 5,"), "the period's five");
    assert!(
        html.contains("data-testid=\"report-ahead\">1 more is dated after now"),
        "{html}"
    );
    for currency in ["EUR", "UGX", "GHS", "XOF", "TZS"] {
        assert!(
            html.contains(&format!("Successful value in {currency}")),
            "{currency}"
        );
    }
    let volume = b.get("/portal/reports?csv=volume").await.text();
    let counted: u64 = volume
        .lines()
        .skip(1)
        .map(|l| l.split(',').nth(1).unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counted, 5, "the table holds what the header counts");
    for table in ["value-XYZ", "value-USD"] {
        let r = b.get(&format!("/portal/reports?csv={table}")).await;
        assert_eq!(r.status, 400, "{table}");
        assert!(
            r.text().contains("its currencies are EUR, "),
            "{}",
            r.text()
        );
    }
    // The link lists what the report counts: not the payment dated ahead (it did).
    let href = html
        .split("<a href=\"")
        .map(|a| a.split('"').next().unwrap())
        .find(|a| a.starts_with("/portal/transactions?"))
        .unwrap()
        .replace("&amp;", "&");
    assert!(href.contains("&to="), "{href}");
    let listed = b.get(&href).await.text();
    assert!(listed.contains("256779999001"), "{listed}");
    assert!(!listed.contains("256779999002"), "{listed}");
    let html = b.get("/portal/reports?days=1").await.text();
    assert!(html.contains("See the transactions of "), "{html}");
    assert!(html.contains(" to "), "{html}");

    // Go-live: the sandbox's payments (two MoMo, one M-Pesa), not the markets' three.
    let html = b.get("/portal/golive").await.text();
    assert!(html.contains("3 sandbox transactions, 0 failed"), "{html}");
}

/// The widget's demo and snippet use the API user's own currency (a Ghana API user's is
/// GHS, which its widget takes; UGX was written for every production one), and the demo
/// prefers a sandbox API user, which takes payments from any page.
#[tokio::test]
async fn the_widget_demo_and_snippet_use_the_api_users_currency() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let ghana = market_partner(&app, "mtnghana").await;
    let html = b.get("/portal/widget/demo").await.text();
    assert!(
        html.contains(&format!("data-api-user-id=\"{}\"", ghana.user))
            && html.contains("data-currency=\"GHS\""),
        "{html}"
    );
    let html = b.get("/portal/widget").await.text();
    assert!(html.contains("data-currency=&quot;GHS&quot;"), "{html}");
    let sandbox = app.partner("127.0.0.1").await;
    let html = b.get("/portal/widget/demo").await.text();
    assert!(
        html.contains(&format!("data-api-user-id=\"{}\"", sandbox.user))
            && html.contains("data-currency=\"EUR\""),
        "{html}"
    );
}

/// A filter no index serves reads the newest payments of its range only (`search_max`,
/// 100,000 unless configured), and says so; a reference id is found at any age through its
/// index. (At a million payments such a search read every one: 0.4–0.9 s a page.)
#[tokio::test]
async fn a_search_reads_the_newest_payments_and_a_reference_is_found_at_any_age() {
    let app = TestApp::spawn_with(|s| s.portal.search_max = Some(4)).await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    // The oldest fails (46733123450), the four newest succeed.
    let oldest = paid(&app, &p, "5", "46733123450", &[]).await;
    for i in 0..4 {
        paid(&app, &p, "5", &format!("2567711{i:05}"), &[]).await;
    }
    let html = b
        .get(&format!(
            "/portal/transactions?api_user={}&status=FAILED",
            p.user
        ))
        .await
        .text();
    assert!(html.contains("data-testid=\"search-window\""), "{html}");
    assert!(
        html.contains("searched 4 payments, the newest of the range"),
        "{html}"
    );
    assert!(html.contains("0–0 of 0 transactions"), "{html}");
    // Its link searches on from there: the failed one.
    let at = html.find("data-testid=\"search-window\"").unwrap();
    let link = crate::helpers::between(&html[at..], "<a href=\"", "\"").replace("&amp;", "&");
    let html = b.get(&link).await.text();
    assert!(html.contains("1–1 of 1 transactions"), "{link}: {html}");
    assert!(
        html.contains(&format!("/portal/transactions/{oldest}\"")),
        "{html}"
    );
    assert!(!html.contains("search-window"), "{html}");
    assert!(link.contains("older="), "{link}");
    assert!(html.contains("Older than: <strong>"), "{html}");
    // So does its export (the continued search's, not the newest window's).
    let csv = b.get(&format!("{link}&format=csv")).await.text();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&oldest.to_string()), "{csv}");
    // The CSV export reads the same.
    let csv = b
        .get(&format!(
            "/portal/transactions?api_user={}&status=FAILED&format=csv",
            p.user
        ))
        .await
        .text();
    assert_eq!(csv.lines().count(), 1, "the header only: {csv}");
    // Unfiltered, every one is listed.
    let html = b
        .get(&format!("/portal/transactions?api_user={}", p.user))
        .await
        .text();
    assert!(html.contains("1–5 of 5 transactions"), "{html}");
    assert!(!html.contains("search-window"));
    // The oldest by its reference id, though past the window.
    let html = b
        .get(&format!("/portal/transactions?ref={oldest}"))
        .await
        .text();
    assert!(html.contains("1–1 of 1 transactions"), "{html}");
    assert!(
        html.contains(&format!("/portal/transactions/{oldest}\"")),
        "{html}"
    );
    assert!(!html.contains("search-window"), "{html}");
    // And so does its export.
    let csv = b
        .get(&format!("/portal/transactions?ref={oldest}&format=csv"))
        .await
        .text();
    assert_eq!(csv.lines().count(), 2, "{csv}");
    assert!(csv.contains(&oldest.to_string()), "{csv}");
    // A payment whose external id is another's reference id is found beside it.
    let newest = paid(&app, &p, "5", "256771100009", &[]).await;
    let body = format!(
        r#"{{"amount":"5","currency":"EUR","externalId":"{newest}","payer":{{"partyIdType":"MSISDN","partyId":"256771100010"}},"payerMessage":"m","payeeNote":"n"}}"#
    );
    let echo = Uuid::new_v4();
    let r = app.request_to_pay(&p, echo, &body, &[]).await;
    assert_eq!(r.status, 202, "{}", r.text());
    let html = b
        .get(&format!("/portal/transactions?ref={newest}"))
        .await
        .text();
    assert!(html.contains("1–2 of 2 transactions"), "{html}");
    assert!(html.contains(&echo.to_string()), "{html}");
}

/// An M-Pesa failure is shown with the `INS-*` code its client was given (the list and the
/// page showed only MoMo's name of the reason).
#[tokio::test]
async fn an_mpesa_failure_shows_its_ins_code() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let m = app.mpesa().await;
    let r = m
        .call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("10", "000000000008"),
        )
        .await;
    assert_eq!(r.status, 422, "{}", r.text());
    let conversation = conversation_of(&r);
    let list = b.get("/portal/transactions").await.text();
    assert!(list.contains("INS-2006 NOT_ENOUGH_FUNDS"), "{list}");
    let page = b
        .get(&format!("/portal/transactions/{conversation}"))
        .await
        .text();
    assert!(page.contains("INS-2006 NOT_ENOUGH_FUNDS"), "{page}");
}

/// A direction control in a field a client sent (the API takes printable text) is shown as
/// what it is on the transaction page: obeyed, it turned "1000 EUR" into "EUR 1000" and the
/// page's own sentence about the payer backwards.
#[tokio::test]
async fn direction_controls_a_client_sent_are_shown_not_obeyed() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("clinic.com").await;
    let reference = Uuid::new_v4();
    let body = serde_json::json!({
        "amount": "5", "currency": "EUR", "externalId": "INV-1\u{202E}",
        "payer": {"partyIdType": "EMAIL", "partyId": "bob\u{202E}@x.co"},
        "payerMessage": "Refund 5 EUR \u{202E}0001 RUE", "payeeNote": "n"
    });
    let r = app
        .request_to_pay(&p, reference, &body.to_string(), &[])
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let page = b
        .get(&format!("/portal/transactions/{reference}"))
        .await
        .text();
    assert!(page.contains("Refund 5 EUR [U+202E]0001 RUE"), "{page}");
    assert!(page.contains("bob[U+202E]@x.co"), "{page}");
    assert!(!page.contains('\u{202E}'), "{page}");
}

/// Past the portal's read queue, signing in and a transaction's page get the busy page
/// (`503`, `Retry-After`) like every other page; they answered `500` "Something went wrong",
/// as a fault, and the sign-in went uncounted.
#[tokio::test]
async fn a_full_read_queue_gives_sign_in_and_a_transaction_page_the_busy_page() {
    use mkoba_platform::faults::Faults;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| s.faults = Some(switch)).await;
    let p = app.partner("127.0.0.1").await;
    let reference = paid(&app, &p, "3", "256770000601", &[]).await;
    let login = app.sandbox_login().await;
    let mut b = Browser::new(&app.base);
    // The sign-in form's own reads (measured on a first look at it) go through.
    let start = faults.portal_reads();
    assert_eq!(b.get("/portal/signin").await.status, 200);
    let form_reads = faults.portal_reads() - start;
    faults.refuse_portal_reads(form_reads, 1_000);
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    assert!(r.text().contains("The portal is busy"), "{}", r.text());
    faults.refuse_portal_reads(0, 0);

    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 303, "{}", r.text());
    let page = format!("/portal/transactions/{reference}");
    // The page's session and payment reads go through; the timeline's are refused.
    let start = faults.portal_reads();
    assert_eq!(b.get(&page).await.status, 200);
    let page_reads = faults.portal_reads() - start;
    faults.refuse_portal_reads(2, page_reads);
    let r = b.get(&page).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    faults.refuse_portal_reads(0, 0);
    assert_eq!(b.get(&page).await.status, 200);
}

/// A callback on its way (its first attempt not yet answered) is listed as queued on the
/// transaction's page with its URL's password hidden, as the attempts are (the queued line
/// showed it).
#[tokio::test]
async fn a_queued_callback_is_shown_without_its_urls_password() {
    // The attempt stays unanswered while the page is read, however slow the machine.
    let app =
        TestApp::spawn_with(|s| s.dispatcher.timeout = std::time::Duration::from_secs(60)).await;
    let mut b = sandbox_browser(&app).await;
    let sink = Sink::start_delayed(200, std::time::Duration::from_secs(30)).await;
    let p = app.partner("127.0.0.1").await;
    let url = format!("http://shop:TOPSECRET@127.0.0.1:{}/cb", sink.addr.port());
    let reference = paid(&app, &p, "4", "256770000602", &[("X-Callback-Url", &url)]).await;
    sink.wait_for(1).await;
    let html = b
        .get(&format!("/portal/transactions/{reference}"))
        .await
        .text();
    assert!(html.contains("is queued"), "{html}");
    assert!(html.contains("shop:***@127.0.0.1"), "{html}");
    assert!(!html.contains("TOPSECRET"), "{html}");
}

/// Sandbox and production are told apart in the list: each row says its environment, and
/// the Environment filter keeps to one side (M-Pesa `openapi` and MoMo's markets are
/// production), in the page and in its CSV; a value that is no choice is a 400.
#[tokio::test]
async fn transactions_are_filtered_by_environment() {
    let app = TestApp::spawn().await;
    let mut b = sandbox_browser(&app).await;
    let m = app.mpesa().await;
    let sandbox = conversation_of(
        &m.call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("10", "000000000001"),
        )
        .await,
    );
    let r = m
        .production_call(
            "POST",
            "c2bPayment/singleStage/",
            &m.c2b("11", "255755555555"),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let production = conversation_of(&r);
    for (env, shown, hidden, column) in [
        ("sandbox", &sandbox, &production, "sandbox"),
        ("production", &production, &sandbox, "openapi"),
    ] {
        let html = b
            .get(&format!("/portal/transactions?env={env}"))
            .await
            .text();
        assert!(
            html.contains(&format!("/portal/transactions/{shown}\"")),
            "{env}: {html}"
        );
        assert!(!html.contains(hidden.as_str()), "{env}: {html}");
        assert!(
            html.contains(&format!("data-testid=\"environment\">{column}</td>")),
            "{env}: {html}"
        );
        assert!(
            html.contains(&format!("<option value=\"{env}\" selected>")),
            "{env}"
        );
        let csv = b
            .get(&format!("/portal/transactions?env={env}&format=csv"))
            .await
            .text();
        assert_eq!(csv.lines().count(), 2, "{env}: {csv}");
        assert!(csv.contains(&format!(",{column},")), "{env}: {csv}");
    }
    // The reports keep to the same side.
    for (env, counted, left) in [
        ("sandbox", "10.00", "11.00"),
        ("production", "11.00", "10.00"),
    ] {
        let html = b.get(&format!("/portal/reports?env={env}")).await.text();
        let value = between(&html, "<h2 id=\"value\">", "</table>");
        assert!(
            value.contains(counted) && !value.contains(left),
            "{env}: {value}"
        );
        assert!(
            html.contains(&format!("<option value=\"{env}\" selected>")),
            "{env}"
        );
    }
    // A reference names its payment only on its own side (the search by reference or
    // transaction id goes through the index, then the filters).
    for (env, id) in [("sandbox", &production), ("production", &sandbox)] {
        let html = b
            .get(&format!("/portal/transactions?env={env}&ref={id}"))
            .await
            .text();
        assert!(
            !html.contains(&format!("/portal/transactions/{id}\"")),
            "{env}: {html}"
        );
    }
    let r = b.get("/portal/transactions?env=staging").await;
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.text()
            .contains("Environment \u{201c}staging\u{201d} is not one of the choices.")
    );
}

/// A receiver that refuses a callback usually says why in its answer's body: its start is
/// kept with the attempt, shown on the payment's page and in the admin API, escaped and on
/// one line.
#[tokio::test]
async fn a_refused_callback_shows_what_the_receiver_answered() {
    let app = TestApp::spawn_with(|s| s.dispatcher.allow_private = true).await;
    let sink = Sink::start_answering(500, "{\"error\": \"<b>database</b>\n  is down\"}\n").await;
    let mut b = sandbox_browser(&app).await;
    let p = app.partner("127.0.0.1").await;
    let url = sink.url("/cb");
    let reference = paid(&app, &p, "25", "256771234567", &[("X-Callback-Url", &url)]).await;
    sink.wait_for(1).await;
    let t = wait_for(|| async {
        let t = app.admin_transaction(reference).await;
        (!t["callbacks"].as_array().unwrap().is_empty()).then_some(t)
    })
    .await;
    let attempt = &t["callbacks"][0];
    assert_eq!(attempt["status_code"], 500, "{attempt}");
    assert_eq!(
        attempt["answer"], r#"{"error": "<b>database</b> is down"}"#,
        "{attempt}"
    );
    assert!(attempt["error"].is_null(), "{attempt}");
    let html = b
        .get(&format!("/portal/transactions/{reference}"))
        .await
        .text();
    assert!(
        html.contains(
            "<details open><summary>Its answer</summary><pre>{&quot;error&quot;: &quot;&lt;b&gt;database&lt;/b&gt; is down&quot;}</pre></details>"
        ),
        "{html}"
    );
}
