//! Supervision: when a part the platform cannot run without stops — here the callback
//! dispatcher, which cannot start with an unusable CA certificate — `/_mkoba/health`
//! answers `503` and `mkoba serve` exits non-zero so a supervisor restarts it.

use std::process::Stdio;
use std::time::Duration;

use crate::helpers::{TestApp, wait_for};

/// A PEM certificate block whose content is not a certificate.
const BAD_CA: &str = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";

#[tokio::test]
async fn health_says_failing_once_the_dispatcher_stops() {
    let app = TestApp::spawn_with(|s| {
        s.dispatcher.extra_roots = vec![rustls::pki_types::CertificateDer::from(vec![0u8; 3])];
    })
    .await;
    let r = wait_for(|| async {
        let r = app.send("GET", "/_mkoba/health", &[], None).await;
        (r.status == 503).then_some(r)
    })
    .await;
    assert_eq!(r.json(), serde_json::json!({"status": "failing"}));
    let auth = app.operator_auth();
    let r = app
        .send("GET", "/_mkoba/health", &[("Authorization", &auth)], None)
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(
        r.json()["failures"],
        serde_json::json!(["the callback dispatcher stopped"])
    );
}

#[tokio::test]
async fn a_healthy_server_says_ok() {
    let app = TestApp::spawn().await;
    let auth = app.operator_auth();
    let r = app
        .send("GET", "/_mkoba/health", &[("Authorization", &auth)], None)
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["status"], "ok");
    assert_eq!(r.json()["failures"], serde_json::json!([]));
    assert_eq!(r.json()["store"], "ok");
}

#[tokio::test]
async fn serve_exits_non_zero_when_the_dispatcher_stops() {
    let (status, stderr) = serve_with_a_bad_ca("warn").await;
    assert_eq!(status, Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "the callback dispatcher stopped; exiting so a supervisor restarts the server"
        ),
        "{stderr}"
    );
}

/// `serve` with a callback CA file that holds no certificate (it exits 1 by itself), with
/// `MKOBA_LOG` set to `log`: its exit status and standard error.
async fn serve_with_a_bad_ca(log: &str) -> (Option<i32>, String) {
    let dir = tempfile::tempdir().unwrap();
    let ca = dir.path().join("bad-ca.pem");
    std::fs::write(&ca, BAD_CA).unwrap();
    let out = tokio::time::timeout(
        std::time::Duration::from_secs(120),
        tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data"])
            .arg(dir.path().join("data"))
            .arg("--callback-ca-file")
            .arg(&ca)
            .env("MKOBA_LOG", log)
            .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("serve exits by itself")
    .unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// An empty `MKOBA_LOG` (a unit file's `Environment=MKOBA_LOG=`) logs at info, as when it
/// is not set: it turned every line off, the errors that said why the server stopped too.
#[tokio::test]
async fn an_empty_log_filter_logs_at_info() {
    for empty in ["", " ", ","] {
        let (status, stderr) = serve_with_a_bad_ca(empty).await;
        assert_eq!(status, Some(1), "{stderr}");
        assert!(stderr.contains(" INFO "), "{empty:?}: {stderr}");
        assert!(stderr.contains(" ERROR "), "{empty:?}: {stderr}");
        assert!(
            !stderr.contains("WARNING: MKOBA_LOG"),
            "{empty:?}: {stderr}"
        );
    }
}

/// While the store cannot write (a full disk, a failing `fsync`: injected with
/// [`Faults`]), every write is answered in the dialect's overload form with `Retry-After`
/// and leaves nothing behind; when space returns the server carries on by itself.
#[tokio::test]
async fn a_full_disk_is_answered_503_and_the_server_recovers_by_itself() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| s.faults = Some(switch)).await;
    let p = app.partner("127.0.0.1").await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let login = app.sandbox_login().await;
    let mut signed_in = crate::portal::Browser::new(&app.base);
    let r = signed_in.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 303, "{}", r.text());

    faults.set_disk_full(true);
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("5", "256770000001"),
            &[],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("1"));
    // Nothing half-written: the payment does not exist.
    let r = app
        .get(&p, &format!("/v1_0/requesttopay/{reference}"))
        .await;
    assert_eq!(r.status, 404, "{}", r.text());
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-16");
    assert_eq!(r.header("retry-after"), Some("1"));
    let r = app
        .send(
            "POST",
            "/v1_0/apiuser",
            &[
                ("Ocp-Apim-Subscription-Key", app.key("collection")),
                ("X-Reference-Id", &Uuid::new_v4().to_string()),
                ("Content-Type", "application/json"),
            ],
            Some(r#"{"providerCallbackHost":"shop.example"}"#),
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    // The portal: signing in (which stores a session) is its busy page with Retry-After,
    // not the 500 page (before: "the cause has been logged", and nothing was); so is
    // renewing the M-Pesa key, and nothing changes.
    let r = signed_in
        .submit(
            "/portal/mpesa",
            "/portal/mpesa/apikey",
            &[("confirm", "yes")],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("The portal is busy"), "{}", r.text());
    // The admin API's renewal too (it was a 500).
    let r = app
        .send(
            "POST",
            "/_mkoba/mpesa/apikey",
            &[("Ocp-Apim-Subscription-Key", app.key("collection"))],
            None,
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("1"));
    let mut b = crate::portal::Browser::new(&app.base);
    let r = b.sign_in(&login.email, &login.password).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("The portal is busy"), "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    // The operator's health says the store is failing; the server stays live.
    let auth = app.operator_auth();
    let headers = [("Authorization", auth.as_str())];
    let health = || app.send("GET", "/_mkoba/health", &headers, None);
    let r = health().await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(r.json()["store"], "failing", "{}", r.text());

    // Space is back: the same request is taken, settles, and the ledger balances.
    faults.set_disk_full(false);
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("5", "256770000001"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let v = app.final_status(&p, reference).await;
    assert_eq!(v["status"], "SUCCESSFUL", "{v}");
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    app.assert_ledger_balanced().await;
    // The platform never stopped: health stays ok, and the store is ok again.
    let r = app.send("GET", "/_mkoba/health", &[], None).await;
    assert_eq!(r.status, 200, "{}", r.text());
    assert_eq!(health().await.json()["store"], "ok");
}

/// A callback answered while the disk is full cannot have its attempt recorded: the
/// dispatcher holds it and records it once space returns, instead of sending it again on
/// every failed commit (a full disk once sent 166,874 callbacks for 484 payments), and the
/// writer pauses between failed commits instead of spinning.
#[tokio::test]
async fn a_callback_answered_while_the_disk_is_full_is_sent_once_and_recorded_later() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    // Payments settle a second after they are accepted.
    let app = TestApp::spawn_with(move |s| {
        s.faults = Some(switch);
        s.platform.settle_delay = Duration::from_secs(1);
    })
    .await;
    // The partner answers a second after each callback arrives.
    let sink = crate::helpers::Sink::start_delayed(200, Duration::from_secs(1)).await;
    let p = app.partner("127.0.0.1").await;
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("5", "256770000001"),
            &[("X-Callback-Url", &sink.url("/cb"))],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // The callback is on its way; another payment is accepted, and the disk fills before
    // the callback's answer is recorded and before the other payment is due: the writer
    // fails to settle it, reloads it as due, and fails again, paced by its pause.
    sink.wait_for(1).await;
    let due = Uuid::new_v4();
    let r = app
        .request_to_pay(&p, due, &crate::helpers::rtp_body("6", "256770000002"), &[])
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    faults.set_disk_full(true);
    let failed_before = metric(&app, "mkoba_writer_failed_commits_total").await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let failed = metric(&app, "mkoba_writer_failed_commits_total").await - failed_before;
    assert!(
        (1.0..=40.0).contains(&failed),
        "{failed} failed commits in three seconds of a full disk"
    );
    faults.set_disk_full(false);
    let rows = app.final_callbacks(reference).await;
    assert_eq!(rows.len(), 1);
    assert_eq!(sink.all().len(), 1, "the callback was sent again");
    let t = app.admin_transaction(reference).await;
    assert_eq!(t["callbacks"].as_array().map(Vec::len), Some(1), "{t}");
    assert_eq!(t["callbacks"][0]["status_code"], 200, "{t}");
    assert_eq!(app.final_status(&p, due).await["status"], "SUCCESSFUL");
    app.assert_ledger_balanced().await;
}

/// A counter's value from `/metrics`.
async fn metric(app: &TestApp, name: &str) -> f64 {
    let text = app.send("GET", "/metrics", &[], None).await.text();
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// When the writer cannot keep up (here: a stalled disk), requests wait only up to the
/// writer queue's bound; the next one is answered 503 at once, and the waiting ones are
/// taken when the disk answers again.
#[tokio::test]
async fn past_the_writer_queue_a_write_is_answered_503_at_once() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = std::sync::Arc::new(
        TestApp::spawn_with(move |s| {
            s.faults = Some(switch);
            s.platform.max_queued = 2;
        })
        .await,
    );
    let p = std::sync::Arc::new(app.partner("127.0.0.1").await);
    let mut browser = crate::portal::Browser::new(&app.base);
    let login = app.sandbox_login().await;
    browser.sign_in(&login.email, &login.password).await;
    let profile = browser.get("/portal/profile").await;
    assert_eq!(profile.status, 200);
    let csrf = crate::portal::csrf_of(&profile.text());
    faults.set_stalled(true);
    let waiting: Vec<_> = (0..2)
        .map(|i| {
            let (app, p) = (app.clone(), p.clone());
            tokio::spawn(async move {
                let body = crate::helpers::rtp_body("5", &format!("25677000001{i}"));
                app.request_to_pay(&p, Uuid::new_v4(), &body, &[]).await
            })
        })
        .collect();
    wait_for(|| async { (app.running.platform.queued() == 2).then_some(()) }).await;
    let r = app
        .request_to_pay(
            &p,
            Uuid::new_v4(),
            &crate::helpers::rtp_body("5", "256770000019"),
            &[],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("1"));
    // The portal's account changes go through the same queue: its busy page.
    let r = browser
        .post("/portal/profile/name", &[("csrf", &csrf), ("name", "Busy")])
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("The portal is busy"), "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));
    faults.set_stalled(false);
    for w in waiting {
        let r = w.await.unwrap();
        assert_eq!(r.status, 202, "{}", r.text());
    }
    assert_eq!(app.running.platform.queued(), 0);
    app.assert_ledger_balanced().await;
}

/// A bug that kills the writer thread: the request in flight is answered 503, health says
/// failing and names the writer.
#[tokio::test]
async fn health_says_failing_once_the_writer_dies() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| s.faults = Some(switch)).await;
    let p = app.partner("127.0.0.1").await;
    faults.set_writer_panics(true);
    let r = app
        .request_to_pay(
            &p,
            Uuid::new_v4(),
            &crate::helpers::rtp_body("5", "256770000001"),
            &[],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let r = wait_for(|| async {
        let r = app.send("GET", "/_mkoba/health", &[], None).await;
        (r.status == 503).then_some(r)
    })
    .await;
    assert_eq!(r.json(), serde_json::json!({"status": "failing"}));
    let auth = app.operator_auth();
    let r = app
        .send("GET", "/_mkoba/health", &[("Authorization", &auth)], None)
        .await;
    // The writer; the dispatcher, fed by the writer, may end with it.
    let failures = r.json()["failures"].clone();
    assert!(
        failures
            .as_array()
            .unwrap()
            .iter()
            .any(|f| f == "the writer stopped"),
        "{}",
        r.text()
    );
}

/// Store reads run on a few reader threads behind a bounded queue. With the threads taken
/// by a database that stopped answering reads and the queue full, the next read is answered
/// at once in each dialect's overload form (MoMo `503 SERVICE_UNAVAILABLE`, M-Pesa
/// `503 INS-16`, the portal's "busy" page, each with `Retry-After`); once reads answer
/// again, the waiting ones complete.
#[tokio::test]
async fn past_the_read_queue_a_read_is_answered_503_at_once() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = std::sync::Arc::new(
        TestApp::spawn_with(move |s| {
            s.faults = Some(switch);
            s.platform.read_threads = 1;
            s.platform.read_queue = 1;
        })
        .await,
    );
    let p = std::sync::Arc::new(app.partner("127.0.0.1").await);
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("5", "256770000021"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mpesa = app.mpesa().await;
    let session = mpesa.session().await;
    let mut browser = crate::portal::Browser::new(&app.base);
    let login = app.sandbox_login().await;
    browser.sign_in(&login.email, &login.password).await;

    faults.set_reads_stalled(true);
    let path = format!("/v1_0/requesttopay/{reference}");
    let get = || {
        let (app, p, path) = (app.clone(), p.clone(), path.clone());
        tokio::spawn(async move { app.get(&p, &path).await })
    };
    // One read taken by the stalled thread, then one in the queue: the queue is full.
    let mut waiting = vec![get()];
    wait_for(|| async { (faults.reads_held() == 1).then_some(()) }).await;
    waiting.push(get());
    wait_for(|| async { (app.running.platform.reads_pending() == 2).then_some(()) }).await;

    let r = app.get(&p, &path).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert_eq!(r.header("retry-after"), Some("1"));

    let fields = serde_json::json!({
        "input_QueryReference": "000000000001",
        "input_ServiceProviderCode": "000000",
        "input_ThirdPartyConversationID": crate::mpesa_support::tpcid(),
        "input_Country": "TZN",
    });
    let r = mpesa
        .send("GET", "queryTransactionStatus/", &session, Some(&fields))
        .await;
    assert_eq!(
        crate::mpesa_support::code(&r),
        (503, "INS-16".to_owned()),
        "{}",
        r.text()
    );
    assert_eq!(r.header("retry-after"), Some("1"));

    // The portal's reads have threads and a queue of their own, as many as the APIs': it
    // answers "busy" once those are taken too.
    let portal_get = portal_page(&app.base, &browser.cookie_header(), "/portal/transactions");
    let mut portal_waiting = vec![portal_get()];
    wait_for(|| async { (faults.reads_held() == 2).then_some(()) }).await;
    portal_waiting.push(portal_get());
    wait_for(|| async { (app.running.platform.portal_reads_pending() == 2).then_some(()) }).await;
    let r = browser.get("/portal/transactions").await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert!(r.text().contains("The portal is busy"), "{}", r.text());
    assert_eq!(r.header("retry-after"), Some("1"));

    faults.set_reads_stalled(false);
    for w in waiting {
        let r = w.await.unwrap();
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.json()["externalId"], "ext-256770000021");
    }
    // A page reads more than once (its session, then its data): with a queue of one, the
    // two pages' later reads may find it full. Each is answered, one way or the other.
    for w in portal_waiting {
        let r = w.await.unwrap();
        assert!(matches!(r.status, 200 | 503), "{}", r.text());
    }
    wait_for(|| async { (app.running.platform.reads_pending() == 0).then_some(()) }).await;
    assert_eq!(browser.get("/portal/transactions").await.status, 200);
}

/// A portal page requested in the background, with a browser's cookies.
fn portal_page(
    base: &str,
    cookie: &str,
    path: &str,
) -> impl Fn() -> tokio::task::JoinHandle<crate::helpers::Resp> + use<> {
    let url = format!("{base}{path}");
    let cookie = cookie.to_owned();
    move || {
        let (url, cookie) = (url.clone(), cookie.clone());
        tokio::spawn(async move {
            crate::helpers::Http::new()
                .send("GET", &url, &[("Cookie", &cookie)], None)
                .await
        })
    }
}

/// The portal's reads run on threads of their own: a portal page whose read takes its time
/// (a report over a large database takes seconds) holds up no read of the APIs. With one
/// reader thread each and the portal's taken, a MoMo status read is answered, and the
/// portal's page once its read is done.
#[tokio::test]
async fn a_portal_read_that_takes_its_time_holds_up_no_api_read() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| {
        s.faults = Some(switch);
        s.platform.read_threads = 1;
    })
    .await;
    let p = app.partner("127.0.0.1").await;
    let reference = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            reference,
            &crate::helpers::rtp_body("5", "256770000022"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    let mut browser = crate::portal::Browser::new(&app.base);
    let login = app.sandbox_login().await;
    browser.sign_in(&login.email, &login.password).await;

    faults.set_portal_reads_stalled(true);
    let page = portal_page(&app.base, &browser.cookie_header(), "/portal/reports")();
    wait_for(|| async { (faults.reads_held() == 1).then_some(()) }).await;
    let status = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        app.get(&p, &format!("/v1_0/requesttopay/{reference}")),
    )
    .await
    .expect("the status read waited for the portal's");
    assert_eq!(status.status, 200, "{}", status.text());
    assert_eq!(status.json()["externalId"], "ext-256770000022");
    assert!(!page.is_finished());

    faults.set_portal_reads_stalled(false);
    let r = page.await.unwrap();
    assert_eq!(r.status, 200, "{}", r.text());
}

/// A commit that landed but whose answer was lost (PostgreSQL's connection closed once
/// the `COMMIT` was sent) is not answered "try again": when the writer can read the store
/// again it finds the payment there and answers 202; when it cannot, the answer is an
/// internal error (the outcome is unknown: read the status), never the 503 that invites a
/// second payment under a new reference id.
#[tokio::test]
async fn a_commit_that_landed_without_its_answer_is_not_answered_try_again() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| s.faults = Some(switch)).await;
    let p = app.partner("127.0.0.1").await;

    faults.lose_commit_answers(1);
    let landed = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            landed,
            &crate::helpers::rtp_body("5", "256770000011"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "read back and found: {}", r.text());
    assert_eq!(app.final_status(&p, landed).await["status"], "SUCCESSFUL");

    faults.lose_commit_answers(1);
    faults.set_loads_fail(true);
    let unknown = Uuid::new_v4();
    let r = app
        .request_to_pay(
            &p,
            unknown,
            &crate::helpers::rtp_body("6", "256770000012"),
            &[],
        )
        .await;
    assert_eq!(r.status, 500, "{}", r.text());
    assert_eq!(r.json()["code"], "INTERNAL_PROCESSING_ERROR");
    faults.set_loads_fail(false);
    // Its status tells: it was stored, and is settled once the writer reads its state.
    assert_eq!(app.final_status(&p, unknown).await["status"], "SUCCESSFUL");
    // Sent again under the same reference id, it is the duplicate it is.
    let r = app
        .request_to_pay(
            &p,
            unknown,
            &crate::helpers::rtp_body("6", "256770000012"),
            &[],
        )
        .await;
    assert_eq!(r.status, 409, "{}", r.text());
    app.assert_ledger_balanced().await;
}

/// A read the store fails (a database that went away, a failing disk) is the store's
/// unavailability: MoMo `503 SERVICE_UNAVAILABLE` with `Retry-After`, as a write is
/// answered, not a 500 — also when the writer's commits succeed, or there are none (a
/// PostgreSQL database lost while only reads come: each was a 500 before). The cause is
/// logged, once a second (`postgres::a_lost_database_is_logged_once_a_second_not_once_a_request`).
#[tokio::test]
async fn reads_while_the_store_is_failing_are_answered_503_with_retry_after() {
    use mkoba_platform::faults::Faults;
    use uuid::Uuid;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| s.faults = Some(switch)).await;
    let p = app.partner("127.0.0.1").await;
    let paid = Uuid::new_v4();
    app.request_to_pay(
        &p,
        paid,
        &crate::helpers::rtp_body("5", "256770000021"),
        &[],
    )
    .await;
    app.final_status(&p, paid).await;

    // A read that fails on its own: the overload form, and the operator's health says the
    // store is failing (with no write failing: a lost database's readers, a damaged file).
    faults.set_reads_fail(true);
    let r = app.get(&p, &format!("/v1_0/requesttopay/{paid}")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert!(r.header("retry-after").is_some());
    let auth = app.operator_auth();
    let headers = [("Authorization", auth.as_str())];
    let store = || async {
        let r = app.send("GET", "/_mkoba/health", &headers, None).await;
        assert_eq!(r.status, 200, "{}", r.text());
        assert_eq!(r.header("cache-control"), Some("no-store"));
        r.json()["store"].clone()
    };
    assert_eq!(store().await, "failing");

    // The store failing for the writer too: the overload form.
    faults.set_disk_full(true);
    let r = app
        .request_to_pay(
            &p,
            Uuid::new_v4(),
            &crate::helpers::rtp_body("6", "256770000022"),
            &[],
        )
        .await;
    assert_eq!(r.status, 503, "{}", r.text());
    let r = app.get(&p, &format!("/v1_0/requesttopay/{paid}")).await;
    assert_eq!(r.status, 503, "{}", r.text());
    assert_eq!(r.json()["code"], "SERVICE_UNAVAILABLE");
    assert!(r.header("retry-after").is_some());

    // The store back: reads and writes as before, and health says so after the first.
    faults.set_reads_fail(false);
    faults.set_disk_full(false);
    let r = app.get(&p, &format!("/v1_0/requesttopay/{paid}")).await;
    assert_eq!(r.status, 200, "{}", r.text());
    let r = app
        .request_to_pay(
            &p,
            Uuid::new_v4(),
            &crate::helpers::rtp_body("6", "256770000023"),
            &[],
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    assert_eq!(store().await, "ok");
}

/// A synchronous M-Pesa call whose payment was stored but cannot be read once its wait is
/// over (the store failing meanwhile) is answered as a wait that ran out, `408 INS-9` with
/// the payment's conversation id, for the client to query later; it was the overload
/// answer, with an id that named nothing, though the payment was stored.
#[tokio::test]
async fn a_synchronous_call_whose_payment_cannot_be_read_after_its_wait_is_answered_ins_9() {
    use mkoba_platform::faults::Faults;
    let faults = Faults::default();
    let switch = faults.clone();
    let app = TestApp::spawn_with(move |s| {
        s.faults = Some(switch);
        s.mpesa.sync_timeout = Duration::from_millis(600);
    })
    .await;
    let m = app.mpesa().await;
    let session = m.session().await;
    // A customer who never answers: the call waits, and the reads fail meanwhile.
    let body = m.c2b("10", "000000000002");
    let (r, ()) = tokio::join!(
        m.send("POST", "c2bPayment/singleStage/", &session, Some(&body)),
        async {
            tokio::time::sleep(Duration::from_millis(200)).await;
            faults.set_reads_fail(true);
        }
    );
    faults.set_reads_fail(false);
    assert_eq!(r.status, 408, "{}", r.text());
    assert_eq!(r.json()["output_ResponseCode"], "INS-9");
    assert_eq!(
        r.json()["output_ThirdPartyConversationID"],
        body["input_ThirdPartyConversationID"]
    );
    // Its conversation id names the stored payment.
    let conversation = r.json()["output_ConversationID"]
        .as_str()
        .unwrap()
        .parse::<uuid::Uuid>()
        .unwrap();
    // (Its customer never answered: it ended as the wait did.)
    let t = app.admin_transaction(conversation).await;
    assert_eq!(t["status"], "FAILED", "{t}");
}

/// A time span past ten years is refused at start, naming the setting: it was taken and
/// wrapped round (a token that expired in 1970, a settle delay that settled at once, a
/// retry due before its attempt).
#[tokio::test]
async fn time_spans_past_ten_years_are_refused_at_start() {
    for (flag, value) in [
        ("--token-ttl-secs", "300000000000"),
        ("--settle-delay-ms", "18446744073709551615"),
        ("--callback-retry-secs", "18446744073709551615,1"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        // A server that took the setting would run on: the timeout makes that a failure.
        let out = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            tokio::process::Command::new(env!("CARGO_BIN_EXE_mkoba"))
                .args(["serve", "--listen", "127.0.0.1:0", "--data"])
                .arg(dir.path().join("data"))
                .args([flag, value])
                .env("MKOBA_MPESA_KEY_FILE", crate::helpers::MPESA_TEST_KEY)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .unwrap_or_else(|_| panic!("{flag} {value} was taken: the server started"))
        .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{flag}: {stderr}");
        assert!(
            stderr.contains(&format!("{flag} must be at most")) && stderr.contains("ten years"),
            "{flag}: {stderr}"
        );
        assert!(!dir.path().join("data").exists(), "nothing made");
    }
}
