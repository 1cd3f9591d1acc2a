//! Two `mkoba serve` processes on one PostgreSQL database, request-to-pay traffic with
//! callbacks spread over both, and one of them killed with SIGKILL in the middle: every
//! accepted request reaches a final state, each callback is sent by one node, no transfer
//! is posted twice, and per currency debits equal credits.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use uuid::Uuid;

use crate::crash::{Partner, partner, start_node_with};
use crate::helpers::{Http, Sink, rtp_body, wait_for_within};
use crate::postgres::{database, migrate};

/// How long to wait for what the survivor finishes (a dead node's callbacks wait for its
/// lease to run out).
const LONG: Duration = Duration::from_secs(60);

/// Runs SQL against the test database from the test's async context.
async fn rows(url: &str, sql: impl Into<String>) -> Vec<postgres::Row> {
    let (url, sql) = (url.to_owned(), sql.into());
    tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        client.query(&sql, &[]).unwrap()
    })
    .await
    .unwrap()
}

/// The flags of a node `id` on the database `url` with a lease of two seconds.
fn one_node<'a>(url: &'a str, id: &'a str) -> [&'a str; 6] {
    [
        "--database-url",
        url,
        "--node-id",
        id,
        "--node-lease-secs",
        "2",
    ]
}

/// Sends request-to-pays `from..to` alternately to `bases`; returns the accepted ones.
fn spawn_payments(
    http: &Http,
    p: &Partner,
    bases: [String; 2],
    sink: &Sink,
    range: std::ops::Range<usize>,
) -> Vec<tokio::task::JoinHandle<Option<Uuid>>> {
    range
        .map(|i| {
            let (http, key, bearer) = (http.clone(), p.key.clone(), p.bearer.clone());
            let base = bases[i % 2].clone();
            let reference = Uuid::new_v4();
            let callback = sink.url(&format!("/cb/{reference}"));
            tokio::spawn(async move {
                let r = http
                    .try_send(
                        "POST",
                        &format!("{base}/collection/v1_0/requesttopay"),
                        &[
                            ("Ocp-Apim-Subscription-Key", &key),
                            ("Authorization", &bearer),
                            ("X-Target-Environment", "sandbox"),
                            ("X-Reference-Id", &reference.to_string()),
                            ("X-Callback-Url", &callback),
                        ],
                        Some(&rtp_body("5", &format!("2567710{i:05}"))),
                    )
                    .await?;
                (r.status == 202).then_some(reference)
            })
        })
        .collect()
}

/// Nodes `node-a` and `node-b` on the database at `url`, with a lease of 2 s and `extra`.
async fn two_nodes(url: &str, dir: &std::path::Path, extra: &[&str]) -> [crate::crash::Node; 2] {
    let mut nodes = Vec::new();
    for id in ["node-a", "node-b"] {
        let mut flags = one_node(url, id).to_vec();
        flags.extend(extra);
        nodes.push(start_node_with(&dir.join(id), &flags).await);
    }
    nodes
        .try_into()
        .unwrap_or_else(|_| unreachable!("two nodes"))
}

async fn accepted(tasks: Vec<tokio::task::JoinHandle<Option<Uuid>>>) -> Vec<Uuid> {
    let mut ids = Vec::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    ids
}

#[tokio::test]
async fn two_nodes_share_the_traffic_and_the_survivor_finishes_what_a_killed_one_left() {
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    // Callbacks take a while to answer, so some are in flight when a node dies.
    let sink = Sink::start_delayed(200, Duration::from_millis(300)).await;
    let [mut a, b] = two_nodes(&url.0, dir.path(), &["--settle-delay-ms", "500"]).await;
    assert_eq!(a.key, b.key, "one database, one set of subscription keys");
    // An API user made on one node gets its token from the other.
    let p = partner(&http, &a, &b).await;
    let bases = [a.base.clone(), b.base.clone()];

    // Traffic over both nodes in waves, until both have settled payments and delivered
    // (and recorded) callbacks: whichever node takes the lock first when payments fall
    // due settles them, so the shares vary.
    let mut all = Vec::new();
    let mut n = 0;
    let mut wave = |count: usize| {
        let tasks = spawn_payments(&http, &p, bases.clone(), &sink, n..n + count);
        n += count;
        tasks
    };
    for round in 0.. {
        assert!(round < 100, "both nodes never delivered callbacks");
        let sent = wave(20);
        let got = accepted(sent).await;
        assert_eq!(got.len(), 20, "every request was accepted");
        all.extend(got);
        tokio::time::sleep(Duration::from_millis(100)).await;
        let by = rows(
            &url.0,
            "SELECT COUNT(*) FILTER (WHERE node = 'node-a'), COUNT(*) FILTER (WHERE node = 'node-b')
             FROM callback_log",
        )
        .await;
        if by[0].get::<_, i64>(0) >= 3 && by[0].get::<_, i64>(1) >= 3 {
            break;
        }
    }
    // More traffic, and node a is killed the moment it holds a callback it has not
    // delivered yet (the sink takes 300 ms to answer), with requests to it under way.
    let mut under_way = Vec::new();
    for round in 0.. {
        assert!(round < 3_000, "node a never held an undelivered callback");
        if round % 10 == 0 {
            under_way.extend(wave(10));
        }
        let held = rows(
            &url.0,
            "SELECT COUNT(*) FROM outbox WHERE node = 'node-a' AND state = 'pending'",
        )
        .await;
        if held[0].get::<_, i64>(0) > 0 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    under_way.extend(wave(20));
    a.child.start_kill().unwrap();
    a.child.wait().await.unwrap();
    under_way.extend(wave(20));
    let late = accepted(under_way).await;
    assert!(
        late.len() >= 20,
        "node b accepted its share: {}",
        late.len()
    );
    all.extend(late);

    // Every accepted request reaches a final state, read through the survivor.
    let headers = [
        ("Ocp-Apim-Subscription-Key", p.key.as_str()),
        ("Authorization", p.bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
    ];
    for reference in &all {
        let url = format!("{}/collection/v1_0/requesttopay/{reference}", b.base);
        let status = wait_for_within(LONG, || async {
            let r = http.send("GET", &url, &headers, None).await;
            assert_eq!(r.status, 200, "accepted {reference} exists: {}", r.text());
            let v = r.json();
            (v["status"] != "PENDING").then_some(v["status"].clone())
        })
        .await;
        assert_eq!(status, "SUCCESSFUL", "{reference}");
    }

    // Every accepted request's callback arrives, node a's unsent ones through node b.
    let received = wait_for_within(LONG, || async {
        let got: HashSet<String> = sink.all().into_iter().map(|r| r.path).collect();
        all.iter()
            .all(|r| got.contains(&format!("/cb/{r}")))
            .then_some(())
    })
    .await;
    let () = received;
    let outbox = wait_for_within(LONG, || async {
        let rows = rows(
            &url.0,
            "SELECT reference_id, state, node, taken_from FROM outbox ORDER BY id",
        )
        .await;
        rows.iter()
            .all(|r| r.get::<_, String>(1) != "pending")
            .then_some(rows)
    })
    .await;
    let mut receipts: HashMap<String, usize> = HashMap::new();
    for r in sink.all() {
        *receipts.entry(r.path).or_default() += 1;
    }
    let mut taken_over = 0;
    for row in &outbox {
        let (reference, state, node): (String, String, String) =
            (row.get(0), row.get(1), row.get(2));
        let taken_from: Option<String> = row.get(3);
        assert_eq!(state, "delivered", "{reference}");
        let n = receipts
            .get(&format!("/cb/{reference}"))
            .copied()
            .unwrap_or(0);
        match taken_from {
            // Delivered by the node that settled it: exactly once.
            None => assert_eq!(n, 1, "{reference} from {node}"),
            // Taken over from the killed node, which may have sent it just before dying.
            Some(from) => {
                assert_eq!((from.as_str(), node.as_str()), ("node-a", "node-b"));
                assert!((1..=2).contains(&n), "{reference}: {n}");
                taken_over += 1;
            }
        }
    }
    // Each callback's attempts were made by one node, once (the default policy).
    let attempts = rows(
        &url.0,
        "SELECT outbox_id, COUNT(DISTINCT node), COUNT(*) FROM callback_log GROUP BY outbox_id",
    )
    .await;
    assert_eq!(attempts.len(), outbox.len());
    for row in &attempts {
        assert_eq!((row.get::<_, i64>(1), row.get::<_, i64>(2)), (1, 1));
    }
    let nodes: HashSet<String> = rows(&url.0, "SELECT DISTINCT node FROM callback_log")
        .await
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(nodes.len(), 2, "{nodes:?}");
    assert!(
        taken_over > 0,
        "node a's undelivered callbacks were taken over"
    );
    eprintln!(
        "{} accepted, {} callbacks ({taken_over} taken over from the killed node), sent by {nodes:?}",
        all.len(),
        outbox.len()
    );

    // Nothing was posted twice: one transfer per payment, posted for each success, and
    // nothing left pending (also of requests whose 202 was lost with node a).
    let twice = rows(
        &url.0,
        "SELECT reference_id FROM transfers WHERE reference_id IS NOT NULL
         GROUP BY reference_id HAVING COUNT(*) <> 1",
    )
    .await;
    assert!(
        twice.is_empty(),
        "{} payments with several transfers",
        twice.len()
    );
    let loose = rows(
        &url.0,
        "SELECT (SELECT COUNT(*) FROM payments WHERE status = 'PENDING'),
                (SELECT COUNT(*) FROM transfers WHERE state = 'pending'),
                (SELECT COUNT(*) FROM payments p WHERE status = 'SUCCESSFUL' AND NOT EXISTS
                    (SELECT 1 FROM transfers t WHERE t.reference_id = p.reference_id AND t.state = 'posted')),
                (SELECT COUNT(*) FROM payments WHERE status = 'SUCCESSFUL')",
    )
    .await;
    let counts: Vec<i64> = (0..4).map(|i| loose[0].get(i)).collect();
    assert_eq!(&counts[..3], &[0, 0, 0]);
    let successful = counts[3];
    assert!(successful >= all.len() as i64);
    // Per currency, debits equal credits, and the partner holds exactly what was paid.
    let totals = rows(
        &url.0,
        "SELECT currency, SUM(debits_posted)::BIGINT, SUM(credits_posted)::BIGINT,
                SUM(debits_pending)::BIGINT, SUM(credits_pending)::BIGINT
         FROM accounts GROUP BY currency",
    )
    .await;
    for t in &totals {
        let (dp, cp): (i64, i64) = (t.get(1), t.get(2));
        let (dpe, cpe): (i64, i64) = (t.get(3), t.get(4));
        assert_eq!((dp, dpe), (cp, cpe), "{}", t.get::<_, String>(0));
    }
    let ledger = b.ledger(&http).await;
    assert_eq!(ledger["balanced"], true, "{ledger}");
    let balance = http
        .send(
            "GET",
            &format!("{}/collection/v1_0/account/balance", b.base),
            &headers,
            None,
        )
        .await
        .json();
    assert_eq!(balance["availableBalance"], (5 * successful).to_string());
}

/// A node waiting its turn for the pass lock, behind a holder that does not let go for
/// longer than the lease (a paused VM, a stalled connection), is alive: it keeps writing
/// its heartbeat on a connection of its own, so no other node takes its callbacks over and
/// sends them again.
#[tokio::test]
async fn a_node_waiting_for_the_pass_lock_keeps_its_heartbeat() {
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let _node = start_node_with(&dir.path().join("w"), &one_node(&url.0, "waiting")).await;
    let seen = |url: String| async move {
        let r = rows(&url, "SELECT seen_at_ms FROM nodes WHERE id = 'waiting'").await;
        r.first().map_or(0, |r| r.get::<_, i64>(0))
    };
    // Another session takes the pass lock (the node's writer, polling, now waits for it)
    // and keeps it for three seconds, past the lease.
    let held = url.0.clone();
    let holder = tokio::task::spawn_blocking(move || {
        let mut client = postgres::Client::connect(&held, postgres::NoTls).unwrap();
        let mut tx = client.transaction().unwrap();
        tx.execute(
            "SELECT pg_advisory_xact_lock($1)",
            &[&mkoba_store_postgres::PASS_LOCK],
        )
        .unwrap();
        std::thread::sleep(Duration::from_millis(500));
        let before: i64 = tx
            .query_one("SELECT seen_at_ms FROM nodes WHERE id = 'waiting'", &[])
            .unwrap()
            .get(0);
        std::thread::sleep(Duration::from_secs(3));
        tx.commit().unwrap();
        before
    });
    let before = holder.await.unwrap();
    let after = seen(url.0.clone()).await;
    assert!(
        after >= before + 2_000,
        "the heartbeat stood still while the node waited for the lock: {before} → {after}"
    );
}

/// A node paused for longer than its lease (SIGSTOP here; a frozen VM in life) is taken
/// for gone, and another node takes its pending callbacks over and sends them. When the
/// paused node resumes, it still holds those callbacks in memory, with their retries due:
/// it must not send them too. Its lease lapsed, so it reads each one again first, and
/// finds it is no longer its own.
#[tokio::test]
async fn a_node_paused_past_its_lease_does_not_send_what_another_took_over() {
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    // Every attempt is refused, so the callback is retried 3 s apart until its 4th.
    let sink = Sink::start(500).await;
    let [a, b] = two_nodes(
        &url.0,
        dir.path(),
        &["--settle-delay-ms", "200", "--callback-retry-secs", "3,3,3"],
    )
    .await;
    let p = partner(&http, &a, &a).await;
    let reference = Uuid::new_v4();
    let path = format!("/cb/{reference}");
    let r = http
        .send(
            "POST",
            &format!("{}/collection/v1_0/requesttopay", a.base),
            &[
                ("Ocp-Apim-Subscription-Key", &p.key),
                ("Authorization", &p.bearer),
                ("X-Target-Environment", "sandbox"),
                ("X-Reference-Id", &reference.to_string()),
                ("X-Callback-Url", &sink.url(&path)),
            ],
            Some(&rtp_body("5", "256771000001")),
        )
        .await;
    assert_eq!(r.status, 202, "{}", r.text());
    // The node that settled the payment makes the first attempt and records it; then it
    // is paused, holding the callback with its retry due in 3 s.
    let attempts = format!(
        "SELECT attempt, node FROM callback_log WHERE reference_id = '{reference}'
         ORDER BY outbox_id, attempt, seq"
    );
    let first: String = wait_for_within(LONG, || async {
        let done = rows(&url.0, attempts.as_str()).await;
        done.first().map(|r| r.get(1))
    })
    .await;
    let (paused, other) = match first.as_str() {
        "node-a" => (&a, "node-b"),
        _ => (&b, "node-a"),
    };
    paused.signal("STOP");
    let stopped = std::time::Instant::now();
    // The other node takes it over once the paused one's lease has run out; the paused
    // one resumes after its retry fell due.
    let owner = format!("SELECT node FROM outbox WHERE reference_id = '{reference}'");
    wait_for_within(LONG, || async {
        let row = rows(&url.0, owner.as_str()).await;
        (row[0].get::<_, Option<String>>(0).as_deref() == Some(other)).then_some(())
    })
    .await;
    tokio::time::sleep(Duration::from_secs(4).saturating_sub(stopped.elapsed())).await;
    paused.signal("CONT");
    // The other node makes the three retries and the callback fails for good; the paused
    // one sends nothing more.
    let state = format!("SELECT state FROM outbox WHERE reference_id = '{reference}'");
    wait_for_within(LONG, || async {
        let row = rows(&url.0, state.as_str()).await;
        (row[0].get::<_, String>(0) == "failed").then_some(())
    })
    .await;
    // Time for the paused node to send what it held, had it kept it (its own retries were
    // due within 3 s of resuming).
    tokio::time::sleep(Duration::from_secs(4)).await;
    let made: Vec<(i64, String)> = rows(&url.0, attempts.as_str())
        .await
        .iter()
        .map(|r| (r.get(0), r.get(1)))
        .collect();
    let expected: Vec<(i64, String)> = [(1, first.as_str()), (2, other), (3, other), (4, other)]
        .map(|(n, node)| (n, node.to_owned()))
        .into();
    assert_eq!(made, expected);
    let sent = sink.all().iter().filter(|r| r.path == path).count();
    assert_eq!(
        sent, 4,
        "the receiver got the callback {sent} times for 4 attempts"
    );
}

/// A consent request (`auth_req_id`) is exchanged for tokens once across the nodes: the
/// second exchange, on the other node, is `invalid_grant`.
#[tokio::test]
async fn an_auth_req_id_exchanged_on_one_node_is_used_on_the_other() {
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let http = Http::new();
    let [a, b] = two_nodes(&url.0, dir.path(), &[]).await;
    let p = partner(&http, &a, &a).await;
    let form = "application/x-www-form-urlencoded";
    let headers = [
        ("Ocp-Apim-Subscription-Key", p.key.as_str()),
        ("Authorization", p.bearer.as_str()),
        ("X-Target-Environment", "sandbox"),
        ("Content-Type", form),
    ];
    let r = http
        .send(
            "POST",
            &format!("{}/collection/v1_0/bc-authorize", a.base),
            &headers,
            Some("login_hint=ID:256774290781/MSISDN&scope=profile&access_type=offline"),
        )
        .await;
    assert_eq!(r.status, 200, "{}", r.text());
    let id = r.json()["auth_req_id"].as_str().unwrap().to_owned();
    // The token step takes the API user's own credentials.
    let exchange = |base: String| {
        let (http, id, key, basic) = (http.clone(), id.clone(), p.key.clone(), p.basic.clone());
        async move {
            http.send(
                "POST",
                &format!("{base}/collection/oauth2/token/"),
                &[
                    ("Ocp-Apim-Subscription-Key", key.as_str()),
                    ("Authorization", basic.as_str()),
                    ("X-Target-Environment", "sandbox"),
                    ("Content-Type", form),
                ],
                Some(&format!(
                    "grant_type=urn:openid:params:grant-type:ciba&auth_req_id={id}"
                )),
            )
            .await
        }
    };
    let first = exchange(a.base.clone()).await;
    assert_eq!(first.status, 200, "{}", first.text());
    let again = exchange(b.base.clone()).await;
    assert_eq!(again.status, 400, "{}", again.text());
    assert_eq!(again.json()["error"], "invalid_grant", "{}", again.text());
    assert!(
        again.text().contains("already been exchanged"),
        "{}",
        again.text()
    );
}

/// A node whose id another process has taken over (one started with its id while it was
/// paused for longer than the watch, say) stops for good: it commits nothing more and its
/// process exits 1 saying why, where it had gone on accepting payments whose callbacks
/// nobody would send (audit, 2026-12-07).
#[tokio::test]
async fn a_node_whose_id_is_taken_over_exits() {
    let url = database().await;
    migrate(&url).await;
    let dir = tempfile::tempdir().unwrap();
    let log = std::sync::Arc::new(std::sync::Mutex::new(String::new()));
    let flags = one_node(&url.0, "taken");
    let mut node =
        crate::crash::start_node_logged(&dir.path().join("t"), &flags, log.clone()).await;
    rows(
        &url.0,
        "UPDATE nodes SET instance = 'another' WHERE id = 'taken'",
    )
    .await;
    let status = tokio::time::timeout(Duration::from_secs(30), node.child.wait())
        .await
        .expect("the node exits")
        .unwrap();
    assert_eq!(status.code(), Some(1));
    let log = log.lock().unwrap().clone();
    // The reason, however the log quotes the id.
    assert!(
        log.contains("another process runs as node") && log.contains("taken"),
        "{log}"
    );
}
