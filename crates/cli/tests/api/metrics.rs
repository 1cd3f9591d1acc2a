//! `GET /metrics` after known traffic: the counts are the traffic's, in the Prometheus text
//! format; and `--metrics-listen` moves the endpoint to an address of its own.

use std::net::SocketAddr;

use uuid::Uuid;

use crate::helpers::{Http, Sink, TestApp, rtp_body, wait_for};

/// The value of one sample line (`name{labels} value`), if present.
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
}

/// Every documented series of a known label set is there at zero before its first event,
/// so that a dashboard's rate or an alert on it finds it on a fresh server.
#[tokio::test]
async fn a_fresh_servers_labelled_series_start_at_zero() {
    let app = TestApp::spawn().await;
    let text = app.send("GET", "/metrics", &[], None).await.text();
    for series in [
        r#"mkoba_payments_final_total{status="SUCCESSFUL",product="collection"}"#,
        r#"mkoba_payments_final_total{status="FAILED",product="mpesa"}"#,
        r#"mkoba_callbacks_total{outcome="delivered",attempt="1"}"#,
        r#"mkoba_callbacks_total{outcome="error",attempt="6+"}"#,
        r#"mkoba_mpesa_rsa_decryptions_total{result="overloaded"}"#,
        r#"mkoba_mpesa_bearer_cache_total{result="hit"}"#,
        r#"mkoba_portal_signins_total{outcome="throttled"}"#,
        r#"mkoba_sqlite_wal_drains_total{outcome="gave_up"}"#,
    ] {
        assert_eq!(sample(&text, series), Some(0.0), "{series} in\n{text}");
    }
}

#[tokio::test]
async fn metrics_count_the_traffic_they_saw() {
    let app = TestApp::spawn().await;
    let sink = Sink::start(200).await;
    let p = app.partner("127.0.0.1").await;
    for msisdn in ["256770000001", "256770000002", "46733123450"] {
        let r = app
            .request_to_pay(
                &p,
                Uuid::new_v4(),
                &rtp_body("5", msisdn),
                &[("X-Callback-Url", &sink.url("/cb"))],
            )
            .await;
        assert_eq!(r.status, 202, "{}", r.text());
    }
    sink.wait_for(3).await;
    let m = app.mpesa().await;
    let session = m.session().await;
    let r = m
        .send(
            "POST",
            "c2bPayment/singleStage/",
            &session,
            Some(&m.c2b("10", "000000000001")),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text());
    let mut b = crate::portal::Browser::new(&app.base);
    let r = b.sign_in("nobody@example.com", "not a password").await;
    assert_eq!(r.status, 401);
    let r = app.send("GET", "/no/such/path", &[], None).await;
    assert_eq!(r.status, 404);

    // Callbacks are counted once delivered; the scrape may come a moment after.
    let text = wait_for(|| async {
        let r = app.send("GET", "/metrics", &[], None).await;
        assert_eq!(r.status, 200);
        assert_eq!(
            r.header("content-type"),
            Some("application/openmetrics-text; version=1.0.0; charset=utf-8")
        );
        let text = r.text();
        (sample(
            &text,
            "mkoba_callbacks_total{outcome=\"delivered\",attempt=\"1\"}",
        ) == Some(3.0))
        .then_some(text)
    })
    .await;
    let count =
        |series: &str| sample(&text, series).unwrap_or_else(|| panic!("{series} in\n{text}"));
    assert_eq!(
        count(
            "mkoba_http_requests_total{dialect=\"momo\",operation=\"/collection/v1_0/requesttopay\",status=\"2xx\"}"
        ),
        3.0
    );
    assert_eq!(
        count("mkoba_payments_final_total{status=\"SUCCESSFUL\",product=\"collection\"}"),
        2.0
    );
    assert_eq!(
        count("mkoba_payments_final_total{status=\"FAILED\",product=\"collection\"}"),
        1.0
    );
    assert_eq!(
        count("mkoba_payments_final_total{status=\"SUCCESSFUL\",product=\"mpesa\"}"),
        1.0
    );
    assert_eq!(
        count(
            "mkoba_http_requests_total{dialect=\"mpesa\",operation=\"v2C2bSingleStage\",status=\"2xx\"}"
        ),
        1.0
    );
    assert_eq!(
        count(
            "mkoba_http_requests_total{dialect=\"mpesa\",operation=\"v2GetSession\",status=\"2xx\"}"
        ),
        1.0
    );
    // The API key (getSession) and the session (C2B): two decryptions, no cache hit yet.
    assert_eq!(
        count("mkoba_mpesa_rsa_decryptions_total{result=\"ok\"}"),
        2.0
    );
    assert_eq!(
        count("mkoba_mpesa_bearer_cache_total{result=\"miss\"}"),
        2.0
    );
    assert_eq!(
        count("mkoba_portal_signins_total{outcome=\"refused\"}"),
        1.0
    );
    assert_eq!(
        count("mkoba_http_requests_total{dialect=\"momo\",operation=\"unmatched\",status=\"4xx\"}"),
        1.0
    );
    assert_eq!(count("mkoba_writer_queue_depth"), 0.0);
    assert!(count("mkoba_writer_batch_commands_count") >= 1.0);
    assert!(count("mkoba_writer_commit_seconds_count") >= 1.0);
    assert!(count("mkoba_http_request_seconds_count{dialect=\"momo\"}") >= 3.0);
    assert_eq!(count("mkoba_writer_failed_commits_total"), 0.0);
    // The process's memory, as `/_mkoba/health` shows it to operators (KiB there).
    let (rss, peak) = (
        count("mkoba_resident_memory_bytes"),
        count("mkoba_resident_memory_peak_bytes"),
    );
    assert!(rss >= 1_048_576.0 && rss % 1024.0 == 0.0, "{rss}");
    assert!(peak >= rss, "{peak} < {rss}");
    // The process's CPU time, a counter brought up to date at each scrape.
    let cpu = count("mkoba_cpu_seconds_total");
    assert!(cpu > 0.0, "{cpu}");
    assert!(
        text.contains("# TYPE mkoba_cpu_seconds counter\n"),
        "{text}"
    );
    // The single writer's thread: its time on a core (it has committed the requests above,
    // and it is one of the process's threads) and, present beside it, its waits for one.
    let writer_cpu = count("mkoba_writer_cpu_seconds_total");
    assert!(writer_cpu > 0.0 && writer_cpu <= cpu + 0.021, "{text}");
    count("mkoba_writer_core_wait_seconds_total");
    let health = app
        .send(
            "GET",
            "/_mkoba/health",
            &[("Authorization", &app.operator_auth())],
            None,
        )
        .await;
    assert_eq!(health.status, 200, "{}", health.text());
    let peak_kib = health.json()["peak_rss_kb"].as_f64().expect("peak_rss_kb");
    // The peak only rises, up to the kernel's approximation: it counts resident pages per
    // CPU and sums them when read (`percpu_counter_read`), so a peak that is the current
    // size can read a few pages lower a moment later while other tests' threads run.
    assert!(
        peak_kib * 1024.0 + 1_048_576.0 >= peak,
        "the peak only rises: {peak_kib} KiB after {peak} bytes"
    );
    assert!(text.ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_listen_moves_the_endpoint_to_its_own_address() {
    let app = TestApp::spawn_with(|s| {
        s.metrics_listen = Some(SocketAddr::from(([127, 0, 0, 1], 0)));
    })
    .await;
    let r = app.send("GET", "/metrics", &[], None).await;
    assert_eq!(r.status, 404, "not on the main listener");
    let at = app.running.metrics_addr.expect("bound");
    let r = Http::new()
        .send("GET", &format!("http://{at}/metrics"), &[], None)
        .await;
    assert_eq!(r.status, 200);
    assert!(
        r.text().contains("# TYPE mkoba_http_requests counter"),
        "{}",
        r.text()
    );
}

/// Another method on `/metrics` is told which one it takes, in words (it was an empty 405).
#[tokio::test]
async fn another_method_on_metrics_is_told_it_takes_get() {
    let app = TestApp::spawn().await;
    let r = app.send("POST", "/metrics", &[], Some("x")).await;
    assert_eq!(r.status, 405);
    assert_eq!(r.header("allow"), Some("GET, HEAD"));
    assert_eq!(r.text(), "/metrics takes GET\n");
}
