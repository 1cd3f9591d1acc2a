//! Several nodes on one PostgreSQL database (no SQLite counterpart): passes take turns,
//! each node's pass starts from what the others committed, and a stopped node's callbacks
//! are taken over by exactly one live node.

use std::sync::mpsc;
use std::time::Duration;

use mkoba_ledger::{Account, AccountId, Limit, TransferState};
use mkoba_platform::model::{PaymentKind, PaymentStatus};
use mkoba_platform::store::{Batch, Changes, Journal, PaymentUpdate, TransferRecord};
use mkoba_store_postgres::{NodeOptions, PgJournal, migrate, open_as};

use crate::pg;
use crate::suite::{
    api_user, attempt, msisdn, outbox_item, payment, transfer, two_accounts, with_user,
};

fn node(url: &str, id: &str, lease: Duration) -> PgJournal {
    started(url, id, lease).0
}

/// A node that has loaded its state, and the ids of the callbacks it loaded to deliver.
fn started(url: &str, id: &str, lease: Duration) -> (PgJournal, Vec<i64>) {
    let options = NodeOptions {
        id: id.to_owned(),
        lease,
        ..NodeOptions::default()
    };
    let (mut journal, _reader) = open_as(url, options).unwrap();
    journal.load(1_000).unwrap();
    let outbox = journal
        .pending_outbox(0, 100)
        .unwrap()
        .iter()
        .map(|o| o.id)
        .collect();
    (journal, outbox)
}

fn database() -> String {
    let url = pg::database();
    migrate(&url).unwrap();
    url
}

fn begin(j: &mut PgJournal) -> Option<Changes> {
    j.begin().unwrap()
}

const LONG: Duration = Duration::from_secs(600);

/// The wallet (account 2) with 1000 pending towards the funding account.
fn wallet_reserving(amount: i64) -> Account {
    let mut a = Account::new(AccountId(2), crate::suite::eur(), Limit::NoOverdraft);
    a.debits_pending = amount;
    a
}

#[test]
fn each_nodes_pass_starts_from_what_the_other_committed() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    assert!(begin(&mut a).is_none(), "nothing happened since load");
    a.end().unwrap();

    let p = accept_one(&mut a);

    // Node b sees all of it before it decides anything, and settles the payment.
    let seen = begin(&mut b).expect("node a's commit");
    assert_eq!(seen.accounts.len(), 2);
    let wallet = seen
        .accounts
        .iter()
        .find(|(a, _)| a.id == AccountId(2))
        .unwrap();
    assert_eq!(wallet.0.debits_pending, 1_000);
    assert_eq!(seen.transfers.len(), 1);
    assert_eq!(seen.transfers[0].state, TransferState::Pending);
    assert_eq!(seen.pending_payments, vec![p.clone()]);
    assert!(seen.final_payments.is_empty());
    let max_account = seen.accounts.iter().map(|(a, _)| a.id.0).max();
    let max_transfer = seen.transfers.iter().map(|t| t.id.0).max();
    assert_eq!((max_account, max_transfer), (Some(2), Some(1)));
    b.commit(&settlement(&p)).unwrap();

    // Node a sees the settlement (and only what changed: the two accounts of the posted
    // transfer, read by the transfer, as a balance update leaves `accounts.seq` alone),
    // then nothing more.
    let seen = begin(&mut a).expect("node b's commit");
    let mut ids: Vec<u64> = seen.accounts.iter().map(|(a, _)| a.id.0).collect();
    ids.sort_unstable();
    assert_eq!(ids, [1, 2]);
    let wallet = seen.accounts.iter().find(|(a, _)| a.id == AccountId(2));
    assert_eq!(wallet.unwrap().0.debits_posted, 1_000);
    assert_eq!(seen.transfers[0].state, TransferState::Posted);
    assert!(seen.pending_payments.is_empty());
    assert_eq!(seen.final_payments, vec![p.reference_id]);
    a.end().unwrap();
    assert!(begin(&mut a).is_none());
    a.end().unwrap();
    // Node b's own commit is not news to node b.
    assert!(begin(&mut b).is_none());
    b.end().unwrap();
}

#[test]
fn a_pass_keeps_the_other_nodes_out_until_it_commits() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    assert!(begin(&mut a).is_none());
    let (began, rx) = mpsc::channel();
    let waiting = std::thread::spawn(move || {
        let changes = begin(&mut b);
        began.send(()).unwrap();
        changes
    });
    // Node b waits for the lock while node a's pass is open.
    assert!(rx.recv_timeout(Duration::from_millis(300)).is_err());
    a.commit(&two_accounts()).unwrap();
    rx.recv().unwrap();
    let changes = waiting.join().unwrap().expect("node a's commit");
    assert_eq!(changes.accounts.len(), 2);
}

#[test]
fn a_stopped_nodes_callbacks_are_taken_over_by_one_live_node() {
    let url = database();
    // Node a's own lease is what counts: 2 s.
    let mut a = node(&url, "a", Duration::from_secs(2));
    let user = api_user(1, 10);
    let p = payment(&user, PaymentKind::RequestToPay, msisdn("1"), 20);
    let mut batch = with_user(&user);
    batch.new_payments = vec![p.clone()];
    batch.outbox = vec![
        outbox_item(1, p.reference_id),
        outbox_item(2, p.reference_id),
    ];
    assert!(begin(&mut a).is_none());
    a.commit(&batch).unwrap();
    // While node a is seen, nobody takes its callbacks.
    let (mut b, loaded) = started(&url, "b", LONG);
    assert!(loaded.is_empty());
    assert!(begin(&mut b).is_none_or(|c| c.outbox_taken_over == 0));
    b.end().unwrap();
    drop(a);
    drop(b);
    // Node b, restarted with a short lease of its own, does not count node a gone before
    // a's own lease has run out.
    let (mut b, taken) = started(&url, "b", Duration::from_millis(10));
    assert!(
        taken.is_empty(),
        "taken before node a's lease ran out: {taken:?}"
    );
    b.end().unwrap();
    drop(b);
    std::thread::sleep(Duration::from_millis(2_100));
    // Then node b, restarted, takes both callbacks once (a running node does the same in
    // its passes).
    let (mut b, taken) = started(&url, "b", Duration::from_secs(2));
    assert_eq!(taken, vec![1, 2]);
    assert!(begin(&mut b).is_none_or(|c| c.outbox_taken_over == 0));
    b.end().unwrap();
    // A node that starts while node b is seen gets none of them...
    let (mut c, loaded) = started(&url, "c", LONG);
    assert!(loaded.is_empty());
    assert!(begin(&mut c).is_none_or(|c| c.outbox_taken_over == 0));
    c.end().unwrap();
    // ...and node b, restarted with its id, loads its own again (once the process that
    // held the id has stopped: a second one beside it is refused).
    drop(b);
    let (_b, loaded) = started(&url, "b", LONG);
    assert_eq!(loaded, vec![1, 2]);
}

#[test]
fn a_pass_that_lost_its_connection_does_not_commit_over_another_nodes_writes() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    assert!(begin(&mut a).is_none());
    let database = url.rsplit('/').next().unwrap();
    pg::server().admin(&format!(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity
         WHERE datname = '{database}' AND pid <> pg_backend_pid()"
    ));
    // The lock went with node a's connection: node b writes meanwhile (its own connection
    // was cut too, and is replaced on the next try).
    if b.begin().is_err() {
        b.begin().unwrap();
    }
    b.commit(&two_accounts()).unwrap();
    // A read inside node a's pass goes to a new connection, outside any pass...
    assert!(!a.payment_exists(&uuid::Uuid::new_v4()).unwrap());
    // ...so the commit finds that another node wrote since the pass began.
    let e = a.commit(&Batch {
        developers: vec![7],
        ..Batch::default()
    });
    let e = e.expect_err("node a decided on a state that is gone");
    assert!(e.0.contains("another node wrote"), "{e}");
    // After reloading, node a goes on.
    a.load(1_000).unwrap();
    assert!(begin(&mut a).is_none());
    a.commit(&Batch {
        developers: vec![7],
        ..Batch::default()
    })
    .unwrap();
}

#[test]
fn new_subscription_keys_and_phone_settings_reach_the_other_node() {
    use mkoba_platform::model::{KeySlot, Product, SubscriptionKey};
    use mkoba_platform::portal::PortalWrite;
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    let _ = begin(&mut a);
    a.commit(&crate::suite::developer(5, "dev@example.org", 1))
        .unwrap();
    // Node b learns of the developer's new key and approval setting in its next pass…
    let _ = begin(&mut b);
    let key = SubscriptionKey {
        developer_id: 5,
        product: Product::Collection,
        slot: KeySlot::Primary,
        key: "k-1".into(),
    };
    b.commit(&Batch {
        subscription_keys: vec![key.clone()],
        portal: vec![PortalWrite::SetApprovalMode {
            developer_id: 5,
            on: true,
        }],
        ..Batch::default()
    })
    .unwrap();
    let seen = begin(&mut a).expect("node b's commit");
    assert_eq!(seen.subscription_keys, vec![key]);
    assert_eq!(seen.approval_developers, Some(vec![5]));
    a.end().unwrap();
    // …and a commit that touches neither does not make node a read them again.
    let _ = begin(&mut b);
    b.commit(&two_accounts()).unwrap();
    let seen = begin(&mut a).expect("node b's second commit");
    assert!(seen.subscription_keys.is_empty());
    assert_eq!(seen.approval_developers, None);
    assert_eq!(seen.accounts.len(), 2);
}

#[test]
fn test_clocks_changed_by_one_node_reach_the_other() {
    use mkoba_platform::test_clock::{ClockWrite, TestClock};
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    let user = api_user(1, 10);
    let _ = begin(&mut a);
    a.commit(&with_user(&user)).unwrap();
    let clock = TestClock {
        id: uuid::Uuid::new_v4(),
        developer_id: 1,
        api_user: user.id,
        name: "shared".into(),
        now_ms: 1_000,
        created_at_ms: 1,
    };
    let _ = begin(&mut b);
    b.commit(&Batch {
        test_clocks: vec![ClockWrite::Put(clock.clone())],
        ..Batch::default()
    })
    .unwrap();
    // Node a reads every clock in its next pass…
    let seen = begin(&mut a).expect("node b's commit");
    assert_eq!(seen.test_clocks, Some(vec![clock]));
    a.end().unwrap();
    // …and not again after a commit that touches none.
    let _ = begin(&mut b);
    b.commit(&two_accounts()).unwrap();
    let seen = begin(&mut a).expect("node b's second commit");
    assert_eq!(seen.test_clocks, None);
}

#[test]
fn nodes_restarting_at_once_agree_on_the_keys_of_a_new_product() {
    use mkoba_platform::Platform;
    use mkoba_platform::model::{Product, SubscriptionKey};
    let url = database();
    // A database from before the Collection Widget: started once, then its widget keys
    // removed. Node x keeps running through the restart of the others.
    let mut first = node(&url, "first", LONG);
    Platform::bootstrap(&mut first, 1_000).unwrap();
    drop(first);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .execute(
            "DELETE FROM subscription_keys WHERE product = 'collection_widget'",
            &[],
        )
        .unwrap();
    let mut x = node(&url, "x", LONG);

    let widget_keys = |keys: Vec<SubscriptionKey>| {
        let mut w: Vec<SubscriptionKey> = keys
            .into_iter()
            .filter(|k| k.product == Product::CollectionWidget)
            .collect();
        w.sort_by_key(|k| k.slot.as_str());
        w
    };
    let states: Vec<Vec<SubscriptionKey>> = std::thread::scope(|s| {
        let handles: Vec<_> = ["a", "b", "c"]
            .into_iter()
            .map(|id| {
                let url = &url;
                s.spawn(move || {
                    let mut j = node(url, id, LONG);
                    Platform::bootstrap(&mut j, 1_000)
                        .unwrap()
                        .subscription_keys
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let a = widget_keys(states[0].clone());
    assert_eq!(a.len(), 2, "a primary and a secondary widget key");
    for state in &states {
        assert_eq!(state.len(), 2 * Product::ALL.len());
        assert_eq!(
            widget_keys(state.clone()),
            a,
            "every node has the same keys"
        );
    }
    // The node that kept running takes them in with its next pass.
    let seen = begin(&mut x).expect("the restarted nodes' commit");
    assert_eq!(widget_keys(seen.subscription_keys), a);
    x.end().unwrap();
}

/// The settlement of `p` (accepted as in the tests above): its transfer posted, the wallet's
/// 1000 paid, the payment SUCCESSFUL.
fn settlement(p: &mkoba_platform::model::Payment) -> Batch {
    let mut posted = wallet_reserving(0);
    posted.debits_posted = 1_000;
    Batch {
        accounts: vec![posted],
        transfers: vec![TransferRecord {
            transfer: transfer(1, 2, 1, 1_000, TransferState::Posted),
            reference_id: Some(p.reference_id),
            at_ms: 40,
        }],
        payment_updates: vec![PaymentUpdate {
            reference_id: p.reference_id,
            status: PaymentStatus::Successful,
            reason: None,
            financial_transaction_id: Some("1234567890".into()),
            settled_at_ms: Some(40),
            transfer_id: Some(1),
            notifications: 0,
        }],
        ..Batch::default()
    }
}

/// Node a accepts a payment (a new wallet, a pending transfer, a PENDING payment, a
/// callback to deliver); returns the payment.
fn accept_one(a: &mut PgJournal) -> mkoba_platform::model::Payment {
    let user = api_user(1, 10);
    let mut p = payment(&user, PaymentKind::RequestToPay, msisdn("256770000001"), 20);
    p.settle_at_ms = Some(30);
    p.transfer_id = Some(1);
    let mut batch = two_accounts();
    batch.api_users = with_user(&user).api_users;
    batch.accounts = vec![wallet_reserving(1_000)];
    batch.transfers = vec![TransferRecord {
        transfer: transfer(1, 2, 1, 1_000, TransferState::Pending),
        reference_id: Some(p.reference_id),
        at_ms: 20,
    }];
    batch.new_payments = vec![p.clone()];
    batch.outbox = vec![outbox_item(1, p.reference_id)];
    assert!(begin(a).is_none());
    a.commit(&batch).unwrap();
    p
}

#[test]
fn a_node_that_last_looked_before_the_commit_log_begins_reloads() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut b = node(&url, "b", LONG);
    let p = accept_one(&mut a);
    // The log is pruned past what node b has seen (as after LOG_KEPT commits).
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute("UPDATE writer_log SET log_from = seq; DELETE FROM commit_log")
        .unwrap();
    let e = b.begin().expect_err("the changes are no longer in the log");
    assert!(e.0.contains("commit log"), "{e}");
    // Reloading gives node b the whole state, and it goes on from there.
    let state = b.load(1_000).unwrap();
    assert_eq!(state.pending_payments, vec![p]);
    assert_eq!(state.pending_transfers.len(), 1);
    assert!(begin(&mut b).is_none());
    b.end().unwrap();
}

#[test]
fn settling_posting_and_delivering_update_rows_in_place() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let p = accept_one(&mut a);
    assert!(begin(&mut a).is_none());
    // The callback delivered at once: its attempt is stored on its row.
    a.commit(&Batch {
        outbox_updates: vec![mkoba_platform::store::OutboxUpdate {
            id: 1,
            state: mkoba_platform::model::OutboxState::Delivered,
            attempts: 1,
            next_attempt_at_ms: 40,
            first_attempt: Some(mkoba_platform::model::CallbackAttempt {
                status_code: Some(200),
                error: None,
                retry_at_ms: None,
                ..attempt(1, p.reference_id, 1, 40, 3)
            }),
        }],
        ..settlement(&p)
    })
    .unwrap();
    // Each old version is marked HOT-updated (HEAP_HOT_UPDATED in `t_infomask2`): the new
    // one is in the same page and no index got an entry for it, because no indexed column
    // changed (migration 10).
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    admin
        .batch_execute("CREATE EXTENSION IF NOT EXISTS pageinspect")
        .expect("PostgreSQL's pageinspect extension (contrib)");
    for table in ["payments", "transfers", "outbox"] {
        let hot: i64 = admin
            .query_one(
                &format!(
                    "SELECT count(*) FROM heap_page_items(get_raw_page('{table}', 0))
                     WHERE t_infomask2 & 16384 <> 0"
                ),
                &[],
            )
            .unwrap()
            .get(0);
        assert_eq!(hot, 1, "{table}: the update was not made in place");
    }
    let attempts: i64 = admin
        .query_one("SELECT count(*) FROM callback_attempts", &[])
        .unwrap()
        .get(0);
    assert_eq!(attempts, 0, "the first attempt has no row of its own");
    // Nothing is left pending.
    let state = a.load(1_000).unwrap();
    assert!(state.pending_payments.is_empty());
    assert!(state.pending_transfers.is_empty());
    assert!(a.pending_outbox(0, 10).unwrap().is_empty());
}

#[test]
fn every_thousandth_commit_prunes_the_log_to_its_last_ten_thousand() {
    let url = database();
    let mut a = node(&url, "a", LONG);
    let mut admin = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    // As if 10,999 commits had been made, two of them still in the log.
    admin
        .batch_execute(
            "UPDATE writer_log SET seq = 10999;
             INSERT INTO commit_log VALUES (1000, '{}', '{}'), (1001, '{}', '{}')",
        )
        .unwrap();
    begin(&mut a).expect("the commits since the node loaded");
    // Commit 11,000 (new accounts only: no row of its own in the log).
    a.commit(&two_accounts()).unwrap();
    let log: Vec<i64> = admin
        .query("SELECT seq FROM commit_log ORDER BY seq", &[])
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(log, [1001]);
    let from: i64 = admin
        .query_one("SELECT log_from FROM writer_log", &[])
        .unwrap()
        .get(0);
    assert_eq!(from, 1000);
}

#[test]
fn a_callback_due_again_is_pending_again() {
    use mkoba_platform::model::OutboxState;
    let url = database();
    let mut a = node(&url, "a", LONG);
    accept_one(&mut a);
    let mut state = |state: OutboxState| {
        assert!(begin(&mut a).is_none());
        a.commit(&Batch {
            outbox_updates: vec![mkoba_platform::store::OutboxUpdate {
                id: 1,
                state,
                attempts: 1,
                next_attempt_at_ms: 40,
                first_attempt: None,
            }],
            ..Batch::default()
        })
        .unwrap();
        a.pending_outbox(0, 10).unwrap().len()
    };
    assert_eq!(state(OutboxState::Failed), 0);
    assert_eq!(state(OutboxState::Pending), 1);
    assert_eq!(state(OutboxState::Pending), 1);
    assert_eq!(state(OutboxState::Delivered), 0);
}

/// A node that records an attempt for a callback another node has taken over since (it
/// was paused mid-attempt, past its lease) keeps its attempt in the log but leaves the
/// callback as its new owner has it.
#[test]
fn an_attempt_recorded_by_a_former_owner_leaves_the_callback_to_its_new_owner() {
    use mkoba_platform::model::OutboxState;
    let url = database();
    let mut a = node(&url, "a", LONG);
    let p = accept_one(&mut a);
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    sql.execute(
        "UPDATE outbox SET node = 'b', taken_from = 'a' WHERE id = 1",
        &[],
    )
    .unwrap();
    assert!(begin(&mut a).is_none());
    a.commit(&Batch {
        outbox_updates: vec![mkoba_platform::store::OutboxUpdate {
            id: 1,
            state: OutboxState::Failed,
            attempts: 1,
            next_attempt_at_ms: 40,
            first_attempt: Some(attempt(1, p.reference_id, 1, 30, 5)),
        }],
        ..Batch::default()
    })
    .unwrap();
    let row = sql
        .query_one(
            "SELECT state, attempts, node, first_at_ms FROM outbox WHERE id = 1",
            &[],
        )
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "pending");
    assert_eq!(row.get::<_, i64>(1), 0);
    assert_eq!(row.get::<_, String>(2), "b");
    assert_eq!(
        row.get::<_, Option<i64>>(3),
        None,
        "node b's first attempt to make"
    );
    let logged = sql
        .query_one(
            "SELECT attempt, at_ms, node, url FROM callback_attempts WHERE outbox_id = 1",
            &[],
        )
        .unwrap();
    assert_eq!(logged.get::<_, i64>(0), 1);
    assert_eq!(logged.get::<_, i64>(1), 30);
    assert_eq!(logged.get::<_, String>(2), "a");
    assert_eq!(logged.get::<_, String>(3), "https://clinic.example/cb/1");
    let (_b, loaded) = started(&url, "b", LONG);
    assert_eq!(loaded, vec![1], "still pending, node b's to deliver");
}

/// Nodes starting at once on a fresh database make a shared setting (the M-Pesa key pair:
/// seconds of RSA) once between them, and all get that one.
#[test]
fn a_shared_setting_is_made_once_by_nodes_starting_at_once() {
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    let url = database();
    let made = Arc::new(AtomicUsize::new(0));
    let nodes: Vec<_> = (0..3)
        .map(|n| {
            let (url, made) = (url.clone(), made.clone());
            std::thread::spawn(move || {
                mkoba_store_postgres::shared_setting(&url, "contract_setting", move || {
                    made.fetch_add(1, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    Ok(format!("value of node {n}").into_bytes())
                })
                .unwrap()
            })
        })
        .collect();
    let values: Vec<Vec<u8>> = nodes.into_iter().map(|t| t.join().unwrap()).collect();
    assert_eq!(made.load(Ordering::SeqCst), 1, "made by one node only");
    assert!(values.iter().all(|v| *v == values[0]), "{values:?}");
    // A later start reads it without making anything.
    let again =
        mkoba_store_postgres::shared_setting(&url, "contract_setting", || panic!("made again"))
            .unwrap();
    assert_eq!(again, values[0]);
}

/// A process whose node id another process has taken over (it had stopped beating for
/// longer than the watch) writes nothing more: what it wrote under the id would be neither
/// its to send nor the new holder's to find.
#[test]
fn a_node_whose_id_was_taken_over_commits_no_more() {
    let url = database();
    let mut a = node(&url, "a", Duration::from_secs(2));
    a.commit(&with_user(&api_user(1, 10))).unwrap();
    let mut sql = postgres::Client::connect(&url, postgres::NoTls).unwrap();
    sql.execute("UPDATE nodes SET instance = 'another' WHERE id = 'a'", &[])
        .unwrap();
    // Its next beat (every half second at a 2 s lease) finds the id taken.
    let refused = (0..40).find_map(|_| {
        std::thread::sleep(Duration::from_millis(100));
        a.commit(&with_user(&api_user(1, 11))).err()
    });
    let e = refused.expect("refused once the id is taken").to_string();
    assert!(e.contains("another process runs as node \"a\" now"), "{e}");
    let mut users = || -> i64 {
        sql.query_one("SELECT COUNT(*) FROM api_users", &[])
            .unwrap()
            .get(0)
    };
    let before = users();
    assert!(a.commit(&with_user(&api_user(1, 12))).is_err());
    assert_eq!(users(), before, "nothing more is written");
}
