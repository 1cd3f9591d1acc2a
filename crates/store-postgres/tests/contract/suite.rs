//! The storage contract, written once against the platform's traits.
//!
//! Every function here takes a [`Store`] (a journal and a reader on one fresh, empty
//! database, and a way to open them again) and knows nothing of SQL or of which backend it
//! is: `main.rs` runs each function once per backend. SQLite is the behavioural
//! reference, so a function that fails only on PostgreSQL is a PostgreSQL bug.
//!
//! Together the functions call every method of `Journal`, `Reader`, `PortalJournal` and
//! `PortalReader`, and every kind of row a `Batch` carries (the account journey's rows in
//! the last section).

use mkoba_platform::reason::FailureReason;
use std::time::Instant;

use mkoba_ledger::{
    Account, AccountId, Currency, Limit, Money, Transfer, TransferId, TransferState,
};
use mkoba_platform::accounts::{
    AccountRecord, AccountRole, AccountStatus, Mail, MailChannel, MailFilter, MailKind, MailState,
    NewMail, PhoneCode,
};
use mkoba_platform::golive::{GoLiveFilter, GoLiveState, NewGoLive};
use mkoba_platform::model::{
    AccountOwner, ApiUser, CallbackAttempt, CallbackMethod, KeySlot, OutboxItem, OutboxState,
    Party, PartyIdType, Payment, PaymentKind, PaymentStatus, Product, SubscriptionKey,
    WidgetSettings,
};
use mkoba_platform::mpesa::MpesaApp;
use mkoba_platform::portal::{
    AccountFilter, ApiKeyInfo, DeveloperAccount, Environments, Latencies, OutboxRecord,
    PaymentFilter, PortalWrite, ReportScope, SandboxLogin, SessionRecord, StatsRow,
};
use mkoba_platform::store::{
    ApiKeyRecord, Batch, CurrencyTotals, Journal, NewAccount, OutboxUpdate, PaymentUpdate, Reader,
    TransferRecord,
};
use mkoba_platform::{Platform, SANDBOX_DEVELOPER, portal::SANDBOX_EMAIL};
use uuid::Uuid;

/// What [`Store::reopen`] calls: a journal and a reader on the same database.
pub type Open = Box<dyn Fn() -> (Box<dyn Journal>, Box<dyn Reader>)>;

/// A journal and a reader on one fresh database.
pub struct Store {
    pub journal: Box<dyn Journal>,
    pub reader: Box<dyn Reader>,
    open: Open,
}

impl Store {
    /// Opens a store with `open`, which must open the same database every time.
    pub fn new(open: Open) -> Store {
        let (journal, reader) = open();
        Store {
            journal,
            reader,
            open,
        }
    }

    /// Drops the journal and reader and opens them again, as a restart would.
    pub fn reopen(&mut self) {
        let (journal, reader) = (self.open)();
        self.journal = journal;
        self.reader = reader;
    }

    fn commit(&mut self, batch: Batch) {
        self.journal.commit(&batch).expect("commit");
    }
}

pub fn eur() -> Currency {
    Currency::parse("EUR").unwrap()
}

fn kes() -> Currency {
    Currency::parse("KES").unwrap()
}

fn hash(n: u8) -> [u8; 32] {
    [n; 32]
}

pub fn api_user(developer_id: i64, created_at_ms: i64) -> ApiUser {
    ApiUser {
        id: Uuid::new_v4(),
        developer_id,
        provider_callback_host: "clinic.example".into(),
        target_environment: "sandbox".into(),
        created_at_ms,
    }
}

pub fn msisdn(id: &str) -> Party {
    Party {
        id_type: PartyIdType::Msisdn,
        id: id.into(),
    }
}

/// A PENDING payment with no optional field set.
pub fn payment(user: &ApiUser, kind: PaymentKind, party: Party, created_at_ms: i64) -> Payment {
    Payment {
        reference_id: Uuid::new_v4(),
        kind,
        product: if kind.is_mpesa() {
            Product::Mpesa
        } else {
            Product::Collection
        },
        api_user: user.id,
        environment: "sandbox".into(),
        amount: Money::from_minor(1_000, eur()),
        external_id: None,
        party,
        payer_message: None,
        payee_note: None,
        callback_url: None,
        callback_method: None,
        refund_of: None,
        details: None,
        expires_at_ms: None,
        short_code: None,
        status: PaymentStatus::Pending,
        reason: None,
        financial_transaction_id: None,
        created_at_ms,
        settled_at_ms: None,
        settle_at_ms: None,
        transfer_id: None,
        notifications: 0,
    }
}

/// A payment with every optional field set, non-ASCII text and a large amount.
fn full_payment(user: &ApiUser) -> Payment {
    Payment {
        product: Product::Disbursement,
        amount: Money::from_minor(4_000_000_000_000_000_000, kes()),
        external_id: Some("ext-1".into()),
        party: Party {
            id_type: PartyIdType::Email,
            id: "zoë@example.org".into(),
        },
        payer_message: Some("Asante sana — ✓".into()),
        payee_note: Some("note 'quoted' \"twice\"".into()),
        callback_url: Some("https://clinic.example/cb?x=1".into()),
        callback_method: Some(CallbackMethod::Post),
        refund_of: Some(Uuid::new_v4()),
        details: Some(r#"{"k":"v"}"#.into()),
        expires_at_ms: Some(9_000),
        short_code: Some("600000".into()),
        status: PaymentStatus::Successful,
        reason: Some(FailureReason::PayerNotFound),
        financial_transaction_id: Some("123456789".into()),
        settled_at_ms: Some(2_500),
        settle_at_ms: Some(2_000),
        transfer_id: Some(u64::from(u32::MAX) + 7),
        notifications: 3,
        ..payment(user, PaymentKind::Transfer, msisdn("x"), 1_500)
    }
}

/// Payments with these reference ids (and their API user): the rows that belong to a
/// payment — its transfers, its callbacks and their attempts — are found by its reference
/// id once the payment is stored.
pub fn payments_named(references: &[Uuid]) -> Batch {
    let user = api_user(1, 1);
    let new_payments = references
        .iter()
        .map(|r| Payment {
            reference_id: *r,
            ..payment(&user, PaymentKind::RequestToPay, msisdn("256770000001"), 1)
        })
        .collect();
    Batch {
        new_payments,
        ..with_user(&user)
    }
}

pub fn with_user(user: &ApiUser) -> Batch {
    Batch {
        api_users: vec![user.clone()],
        ..Batch::default()
    }
}

pub fn developer(id: i64, email: &str, created_at_ms: i64) -> Batch {
    Batch {
        developers: vec![id],
        portal: vec![PortalWrite::CreateDeveloper {
            id,
            email: email.into(),
            name: format!("Developer {id}"),
            password_hash: format!("$argon2id$hash-{id}"),
            created_at_ms,
            status: AccountStatus::Active,
            role: AccountRole::Developer,
        }],
        ..Batch::default()
    }
}

fn new_account(id: u64, owner: AccountOwner, currency: Currency, limit: Limit) -> NewAccount {
    NewAccount {
        id: AccountId(id),
        owner,
        currency,
        limit,
    }
}

pub fn transfer(id: u64, debit: u64, credit: u64, amount: i64, state: TransferState) -> Transfer {
    Transfer {
        id: TransferId(id),
        debit: AccountId(debit),
        credit: AccountId(credit),
        amount,
        currency: eur(),
        state,
    }
}

/// Two EUR accounts (1: funding, 2: a wallet), so transfers have something to reference.
pub fn two_accounts() -> Batch {
    Batch {
        new_accounts: vec![
            new_account(1, AccountOwner::Funding, eur(), Limit::Unbounded),
            new_account(
                2,
                AccountOwner::Wallet("MSISDN:256770000001".into()),
                eur(),
                Limit::NoOverdraft,
            ),
        ],
        ..Batch::default()
    }
}

pub fn outbox_item(id: i64, reference_id: Uuid) -> OutboxItem {
    OutboxItem {
        id,
        reference_id,
        url: format!("https://clinic.example/cb/{id}"),
        method: CallbackMethod::Put,
        body: format!(r#"{{"n":{id}}}"#),
        attempts: 0,
        next_attempt_at_ms: 100 + id,
    }
}

pub fn attempt(
    outbox_id: i64,
    reference_id: Uuid,
    n: u32,
    at_ms: i64,
    latency_ms: i64,
) -> CallbackAttempt {
    CallbackAttempt {
        outbox_id,
        reference_id,
        attempt: n,
        at_ms,
        // The callback's own URL and method (`outbox_item`), as every attempt has.
        url: format!("https://clinic.example/cb/{outbox_id}"),
        method: CallbackMethod::Put,
        status_code: if n == 1 { None } else { Some(503) },
        latency_ms,
        error: if n == 1 {
            Some("connection refused".into())
        } else {
            None
        },
        retry_at_ms: Some(at_ms + 1_000),
    }
}

fn sorted<T: Ord>(mut v: Vec<T>) -> Vec<T> {
    v.sort();
    v
}

fn ids(payments: &[Payment]) -> Vec<Uuid> {
    payments.iter().map(|p| p.reference_id).collect()
}

fn mpesa_app(developer_id: i64, key: u8) -> MpesaApp {
    MpesaApp {
        developer_id,
        api_user: Uuid::new_v4(),
        api_key_hash: hash(key),
        api_key_created_at_ms: 10,
        api_key: Some(format!("sandbox-key-{key}")),
        allowed_origins: vec!["*".into()],
        session_lifetime_secs: 3_600,
        result_url: None,
        created_at_ms: 10,
    }
}

// ---------------------------------------------------------------------------------------
// Batches, load and failure.

pub fn a_new_store_is_empty(s: &mut Store) {
    let state = s.journal.load(1_000).unwrap();
    assert!(state.accounts.is_empty());
    assert!(state.pending_transfers.is_empty());
    assert!(state.pending_payments.is_empty());
    assert!(s.journal.pending_outbox(0, 100).unwrap().is_empty());
    assert!(state.subscription_keys.is_empty());
    assert_eq!(state.max_transfer_id, 0);
    assert_eq!(state.max_outbox_id, 0);
    assert_eq!(state.token_secret, None);
    assert_eq!(s.journal.max_developer_id().unwrap(), 0);
    assert!(!s.journal.sandbox_login_exists().unwrap());
    assert!(s.journal.approval_developers().unwrap().is_empty());
    assert!(s.reader.ledger_totals().unwrap().is_empty());
    assert_eq!(s.reader.sandbox_login().unwrap(), None);
    assert_eq!(s.reader.payment(&Uuid::new_v4()).unwrap(), None);
    assert_eq!(s.journal.payment(&Uuid::new_v4()).unwrap(), None);
}

pub fn a_committed_batch_is_read_back_by_load_and_the_reader(s: &mut Store) {
    let user = api_user(1, 5);
    let partner = AccountOwner::Partner {
        api_user: user.id,
        product: Product::Collection,
    };
    let pay = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut funding = Account::new(AccountId(1), eur(), Limit::Unbounded);
    funding.debits_pending = 1_000;
    let mut wallet = Account::new(AccountId(2), eur(), Limit::NoOverdraft);
    wallet.credits_pending = 1_000;
    let keys: Vec<SubscriptionKey> = [KeySlot::Primary, KeySlot::Secondary]
        .into_iter()
        .map(|slot| SubscriptionKey {
            developer_id: 1,
            product: Product::Collection,
            slot,
            key: format!("{:0>32}", slot.as_str()),
        })
        .collect();
    let pending = transfer(1, 1, 2, 1_000, TransferState::Pending);
    s.commit(Batch {
        developers: vec![1],
        subscription_keys: keys.clone(),
        token_secret: Some(vec![7; 32]),
        api_users: vec![user.clone()],
        api_keys: vec![ApiKeyRecord {
            api_user: user.id,
            key_hash: hash(9),
            ending: "0009".to_owned(),
            created_at_ms: 6,
        }],
        new_accounts: vec![
            new_account(1, AccountOwner::Funding, eur(), Limit::Unbounded),
            new_account(2, partner.clone(), eur(), Limit::NoOverdraft),
        ],
        accounts: vec![funding.clone(), wallet.clone()],
        transfers: vec![TransferRecord {
            transfer: pending.clone(),
            reference_id: Some(pay.reference_id),
            at_ms: 1_000,
        }],
        new_payments: vec![pay.clone()],
        outbox: vec![outbox_item(1, pay.reference_id)],
        ..Batch::default()
    });

    let state = s.journal.load(1_000).unwrap();
    assert_eq!(
        state.accounts,
        vec![
            (funding, AccountOwner::Funding),
            (wallet.clone(), partner.clone())
        ]
    );
    assert_eq!(state.pending_transfers, vec![pending.clone()]);
    assert_eq!(state.pending_payments, vec![pay.clone()]);
    assert_eq!(
        s.journal.pending_outbox(0, 100).unwrap(),
        vec![outbox_item(1, pay.reference_id)]
    );
    assert_eq!(state.max_transfer_id, 1);
    assert_eq!(state.max_outbox_id, 1);
    let mut loaded_keys: Vec<_> = state
        .subscription_keys
        .iter()
        .map(|k| k.key.clone())
        .collect();
    loaded_keys.sort();
    assert_eq!(
        loaded_keys,
        sorted(keys.iter().map(|k| k.key.clone()).collect())
    );
    assert!(
        state
            .subscription_keys
            .iter()
            .all(|k| k.developer_id == 1 && k.product == Product::Collection)
    );
    assert_eq!(state.token_secret, Some(vec![7; 32]));

    assert!(s.journal.payment_exists(&pay.reference_id).unwrap());
    assert!(!s.journal.payment_exists(&Uuid::new_v4()).unwrap());
    assert!(s.journal.api_user_exists(&user.id).unwrap());
    assert!(!s.journal.api_user_exists(&Uuid::new_v4()).unwrap());
    assert_eq!(
        s.journal.payment(&pay.reference_id).unwrap(),
        Some(pay.clone())
    );
    assert_eq!(
        s.reader.payment(&pay.reference_id).unwrap(),
        Some(pay.clone())
    );
    assert_eq!(s.reader.api_user(&user.id).unwrap(), Some(user.clone()));
    assert_eq!(s.reader.api_user(&Uuid::new_v4()).unwrap(), None);
    assert_eq!(s.reader.api_key_hashes(&user.id).unwrap(), vec![hash(9)]);
    assert_eq!(s.reader.account(&partner, eur()).unwrap(), Some(wallet));
    assert_eq!(s.reader.account(&partner, kes()).unwrap(), None);
    assert_eq!(
        s.reader.transfers_for(&pay.reference_id).unwrap(),
        vec![pending]
    );
}

pub fn committed_rows_survive_reopening(s: &mut Store) {
    let user = api_user(1, 5);
    let pay = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut batch = two_accounts();
    batch.developers.push(1);
    batch.api_users.push(user.clone());
    batch.new_payments.push(pay.clone());
    batch.token_secret = Some(vec![1, 2, 3]);
    s.commit(batch);
    let before = s.journal.load(1_000).unwrap();
    s.reopen();
    let after = s.journal.load(1_000).unwrap();
    assert_eq!(after.accounts, before.accounts);
    assert_eq!(after.pending_payments, vec![pay.clone()]);
    assert_eq!(after.token_secret, Some(vec![1, 2, 3]));
    assert_eq!(s.reader.payment(&pay.reference_id).unwrap(), Some(pay));
    assert_eq!(s.journal.max_developer_id().unwrap(), 1);
}

pub fn an_empty_batch_commits_nothing(s: &mut Store) {
    assert!(Batch::default().is_empty());
    s.commit(Batch::default());
    let state = s.journal.load(1_000).unwrap();
    assert!(state.accounts.is_empty() && state.token_secret.is_none());
}

pub fn a_failed_commit_leaves_nothing_and_the_store_goes_on(s: &mut Store) {
    let user = api_user(1, 5);
    let pay = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut batch = two_accounts();
    batch.developers.push(1);
    batch.token_secret = Some(vec![1; 32]);
    batch.new_payments.push(pay.clone());
    batch.outbox.push(outbox_item(1, pay.reference_id));
    // The same API user twice violates its primary key, after every other row was written:
    // the whole batch must roll back.
    batch.api_users = vec![user.clone(), user.clone()];
    assert!(s.journal.commit(&batch).is_err());
    nothing_was_committed(s, &pay, &user);
    assert_eq!(s.journal.load(1_000).unwrap().token_secret, None);
    assert_eq!(s.journal.max_developer_id().unwrap(), 0);

    // The journal is still usable: the same rows, once, commit.
    batch.api_users = vec![user.clone()];
    s.commit(batch);
    assert_eq!(s.reader.payment(&pay.reference_id).unwrap(), Some(pay));
}

/// After a failed commit of a batch with these rows: none of them is there.
fn nothing_was_committed(s: &mut Store, pay: &Payment, user: &ApiUser) {
    let state = s.journal.load(1_000).unwrap();
    assert!(state.accounts.is_empty());
    assert!(state.pending_payments.is_empty());
    assert!(s.journal.pending_outbox(0, 100).unwrap().is_empty());
    assert!(!s.journal.payment_exists(&pay.reference_id).unwrap());
    assert_eq!(s.reader.api_user(&user.id).unwrap(), None);
    assert!(s.reader.ledger_totals().unwrap().is_empty());
}

pub fn a_pass_failing_half_way_through_commits_none_of_it(s: &mut Store) {
    // PostgreSQL sends a commit's statements and its COMMIT at once: a statement that fails
    // in the middle must still take the statements before it with it, and those after it
    // must not run, in a pass as outside one.
    let user = api_user(1, 5);
    let pay = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut batch = with_user(&user);
    batch.new_accounts = two_accounts().new_accounts;
    batch.new_payments.push(pay.clone());
    batch.outbox.push(outbox_item(1, pay.reference_id));
    // Accounts 77 and 78 do not exist: refused after the accounts are written, before the
    // payment and its callback are. Alone, or among transfers that name existing accounts
    // several times over (PostgreSQL checks each account named once).
    let record = |transfer| TransferRecord {
        transfer,
        reference_id: Some(pay.reference_id),
        at_ms: 1,
    };
    let refused = [
        vec![transfer(1, 1, 77, 5, TransferState::Posted)],
        vec![
            transfer(1, 1, 2, 5, TransferState::Posted),
            transfer(2, 2, 1, 5, TransferState::Pending),
            transfer(3, 78, 1, 5, TransferState::Pending),
            transfer(4, 1, 2, 5, TransferState::Pending),
        ],
    ];
    for transfers in refused {
        batch.transfers = transfers.into_iter().map(record).collect();
        for in_pass in [true, false] {
            if in_pass {
                s.journal.begin().unwrap();
            }
            assert!(s.journal.commit(&batch).is_err());
            nothing_was_committed(s, &pay, &user);
        }
    }

    // The next pass commits on the same journal.
    batch.transfers = vec![record(transfer(1, 1, 2, 5, TransferState::Posted))];
    s.journal.begin().unwrap();
    s.commit(batch);
    assert_eq!(s.reader.payment(&pay.reference_id).unwrap(), Some(pay));
    assert_eq!(s.journal.pending_outbox(0, 100).unwrap().len(), 1);
}

pub fn a_commit_conflicting_with_committed_rows_is_rejected_whole(s: &mut Store) {
    let user = api_user(1, 5);
    let first = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut batch = with_user(&user);
    batch.new_payments.push(first.clone());
    s.commit(batch);

    let second = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000002"),
        2_000,
    );
    let mut changed = first.clone();
    changed.amount = Money::from_minor(1, eur());
    let batch = Batch {
        new_payments: vec![second.clone(), changed],
        ..Batch::default()
    };
    assert!(s.journal.commit(&batch).is_err());
    assert!(!s.journal.payment_exists(&second.reference_id).unwrap());
    assert_eq!(s.reader.payment(&first.reference_id).unwrap(), Some(first));

    // A key of an unknown API user breaks a foreign key: refused too.
    let orphan = Batch {
        developers: vec![2],
        api_keys: vec![ApiKeyRecord {
            api_user: Uuid::new_v4(),
            key_hash: hash(1),
            ending: "0001".to_owned(),
            created_at_ms: 1,
        }],
        ..Batch::default()
    };
    assert!(s.journal.commit(&orphan).is_err());
    assert_eq!(s.journal.max_developer_id().unwrap(), 0);
}

pub fn subscription_keys_are_replaced_per_developer_product_and_slot(s: &mut Store) {
    let key = |product, slot, key: &str| SubscriptionKey {
        developer_id: 1,
        product,
        slot,
        key: key.into(),
    };
    s.commit(Batch {
        developers: vec![1],
        subscription_keys: vec![
            key(Product::Collection, KeySlot::Primary, "a"),
            key(Product::Collection, KeySlot::Secondary, "b"),
            key(Product::Remittance, KeySlot::Primary, "c"),
        ],
        ..Batch::default()
    });
    s.commit(Batch {
        subscription_keys: vec![key(Product::Collection, KeySlot::Secondary, "b2")],
        ..Batch::default()
    });
    let mut keys: Vec<(Product, &str, String)> = Vec::new();
    let state = s.journal.load(1_000).unwrap();
    for k in &state.subscription_keys {
        keys.push((k.product, k.slot.as_str(), k.key.clone()));
    }
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (Product::Collection, "primary", "a".to_owned()),
            (Product::Collection, "secondary", "b2".to_owned()),
            (Product::Remittance, "primary", "c".to_owned()),
        ]
    );
}

pub fn missing_keys_are_written_only_where_a_slot_has_no_key(s: &mut Store) {
    let key = |product, slot, key: &str| SubscriptionKey {
        developer_id: 1,
        product,
        slot,
        key: key.into(),
    };
    s.commit(Batch {
        developers: vec![1],
        missing_keys: vec![key(Product::Collection, KeySlot::Primary, "a")],
        ..Batch::default()
    });
    // A second writer's start-up keys: the slot that has one keeps it, the others are new.
    s.commit(Batch {
        missing_keys: vec![
            key(Product::Collection, KeySlot::Primary, "a2"),
            key(Product::CollectionWidget, KeySlot::Primary, "w"),
            key(Product::CollectionWidget, KeySlot::Secondary, "w2"),
        ],
        ..Batch::default()
    });
    let mut keys: Vec<(Product, &str, String)> = Vec::new();
    let state = s.journal.load(1_000).unwrap();
    for k in &state.subscription_keys {
        keys.push((k.product, k.slot.as_str(), k.key.clone()));
    }
    keys.sort();
    assert_eq!(
        keys,
        vec![
            (Product::Collection, "primary", "a".to_owned()),
            (Product::CollectionWidget, "primary", "w".to_owned()),
            (Product::CollectionWidget, "secondary", "w2".to_owned()),
        ]
    );
}

pub fn bootstrap_adds_the_keys_the_sandbox_developer_lacks(s: &mut Store) {
    // A database from before the Collection Widget: the sandbox developer has the keys of
    // the three API families only.
    let old: Vec<SubscriptionKey> = Product::APIS
        .into_iter()
        .flat_map(|product| {
            [KeySlot::Primary, KeySlot::Secondary].map(|slot| SubscriptionKey {
                developer_id: SANDBOX_DEVELOPER,
                product,
                slot,
                key: format!("{}-{}", product.as_str(), slot.as_str()),
            })
        })
        .collect();
    s.commit(Batch {
        developers: vec![SANDBOX_DEVELOPER],
        subscription_keys: old.clone(),
        token_secret: Some(vec![9; 32]),
        ..Batch::default()
    });
    let state = Platform::bootstrap(s.journal.as_mut(), 1_000).unwrap();
    let mut keys = state.subscription_keys.clone();
    keys.sort_by_key(|k| (k.product, k.slot.as_str()));
    assert_eq!(keys.len(), 2 * Product::ALL.len());
    for k in &old {
        assert!(keys.contains(k), "{k:?} kept");
    }
    let widget: Vec<&SubscriptionKey> = keys
        .iter()
        .filter(|k| k.product == Product::CollectionWidget)
        .collect();
    assert_eq!(widget.len(), 2);
    assert!(widget.iter().all(|k| k.developer_id == SANDBOX_DEVELOPER));
    assert_ne!(widget[0].key, widget[1].key);
    assert_eq!(state.token_secret, Some(vec![9; 32]));
    // The sandbox developer, and the first operator created beside it.
    assert_eq!(s.journal.max_developer_id().unwrap(), SANDBOX_DEVELOPER + 1);
    assert_eq!(s.journal.operators().unwrap().len(), 1);
    // Starting again changes nothing.
    s.reopen();
    let again = Platform::bootstrap(s.journal.as_mut(), 1_000).unwrap();
    let mut keys_again = again.subscription_keys;
    keys_again.sort_by_key(|k| (k.product, k.slot.as_str()));
    assert_eq!(keys_again, keys);
}

/// Of nodes starting at once on one database, each writes a secret of its own when it found
/// none: the first one written stands, the others read it back.
pub fn the_first_token_secret_stands(s: &mut Store) {
    s.commit(Batch {
        token_secret: Some(vec![1; 32]),
        ..Batch::default()
    });
    s.commit(Batch {
        token_secret: Some(vec![0, 255, 2]),
        ..Batch::default()
    });
    assert_eq!(
        s.journal.load(1_000).unwrap().token_secret,
        Some(vec![1; 32])
    );
}

// ---------------------------------------------------------------------------------------
// Payments, transfers, accounts, outbox.

pub fn payments_round_trip_every_field(s: &mut Store) {
    let user = api_user(1, 5);
    let full = full_payment(&user);
    let bare = payment(&user, PaymentKind::MpesaC2b, msisdn("254700000001"), 1_600);
    let mut batch = with_user(&user);
    batch.new_payments = vec![full.clone(), bare.clone()];
    s.commit(batch);
    assert_eq!(
        s.reader.payment(&full.reference_id).unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        s.journal.payment(&full.reference_id).unwrap(),
        Some(full.clone())
    );
    assert_eq!(
        s.reader.payment(&bare.reference_id).unwrap(),
        Some(bare.clone())
    );
    assert_eq!(
        s.journal.payment(&bare.reference_id).unwrap(),
        Some(bare.clone())
    );
    // Only the PENDING one is loaded.
    assert_eq!(s.journal.load(1_000).unwrap().pending_payments, vec![bare]);
}

pub fn taken_reference_ids_are_found_in_one_lookup(s: &mut Store) {
    let user = api_user(1, 5);
    let (a, b) = (
        payment(&user, PaymentKind::RequestToPay, msisdn("1"), 10),
        payment(&user, PaymentKind::MpesaC2b, msisdn("2"), 11),
    );
    let mut batch = with_user(&user);
    batch.new_payments = vec![a.clone(), b.clone()];
    s.commit(batch);
    let free = Uuid::new_v4();
    let taken = s
        .journal
        .payments_existing(&[a.reference_id, free, b.reference_id])
        .unwrap();
    assert_eq!(
        sorted(taken.into_iter().collect()),
        sorted(vec![a.reference_id, b.reference_id])
    );
    assert!(s.journal.payments_existing(&[free]).unwrap().is_empty());
    assert!(s.journal.payments_existing(&[]).unwrap().is_empty());
}

pub fn payment_updates_change_state_and_settled_payments_leave_the_pending_set(s: &mut Store) {
    let user = api_user(1, 5);
    let a = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let b = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000002"),
        1_001,
    );
    let mut batch = with_user(&user);
    batch.new_payments = vec![a.clone(), b.clone()];
    s.commit(batch);
    s.commit(Batch {
        payment_updates: vec![PaymentUpdate {
            reference_id: a.reference_id,
            status: PaymentStatus::Failed,
            reason: Some(FailureReason::NotEnoughFunds),
            financial_transaction_id: Some("987654321".into()),
            settled_at_ms: Some(1_500),
            transfer_id: Some(12),
            notifications: 1,
        }],
        ..Batch::default()
    });
    let updated = Payment {
        status: PaymentStatus::Failed,
        reason: Some(FailureReason::NotEnoughFunds),
        financial_transaction_id: Some("987654321".into()),
        settled_at_ms: Some(1_500),
        transfer_id: Some(12),
        notifications: 1,
        ..a.clone()
    };
    assert_eq!(
        s.reader.payment(&a.reference_id).unwrap(),
        Some(updated.clone())
    );
    assert_eq!(s.journal.payment(&a.reference_id).unwrap(), Some(updated));
    assert_eq!(s.journal.load(1_000).unwrap().pending_payments, vec![b]);
    // A later update (a delivery notification) may clear what an earlier one set.
    s.commit(Batch {
        payment_updates: vec![PaymentUpdate {
            reference_id: a.reference_id,
            status: PaymentStatus::Failed,
            reason: None,
            financial_transaction_id: None,
            settled_at_ms: None,
            transfer_id: None,
            notifications: 2,
        }],
        ..Batch::default()
    });
    let now = s.reader.payment(&a.reference_id).unwrap().unwrap();
    assert_eq!(
        (now.reason, now.transfer_id, now.notifications),
        (None, None, 2)
    );
}

pub fn payments_of_party_are_one_users_kind_and_party_oldest_first(s: &mut Store) {
    let user = api_user(1, 5);
    let other = api_user(1, 6);
    let party = msisdn("256770000001");
    let newer = payment(&user, PaymentKind::PreApproval, party.clone(), 3_000);
    let older = payment(&user, PaymentKind::PreApproval, party.clone(), 1_000);
    let mut batch = Batch {
        api_users: vec![user.clone(), other.clone()],
        ..Batch::default()
    };
    batch.new_payments = vec![
        newer.clone(),
        older.clone(),
        payment(&user, PaymentKind::Transfer, party.clone(), 2_000),
        payment(&user, PaymentKind::RequestToPay, party.clone(), 2_000),
        payment(
            &user,
            PaymentKind::PreApproval,
            msisdn("256770000002"),
            2_000,
        ),
        payment(
            &user,
            PaymentKind::PreApproval,
            Party {
                id_type: PartyIdType::PartyCode,
                id: party.id.clone(),
            },
            2_000,
        ),
        payment(&other, PaymentKind::PreApproval, party.clone(), 2_000),
    ];
    let debit = payment(&user, PaymentKind::MpesaDirectDebit, party.clone(), 2_500);
    batch.new_payments.push(debit.clone());
    s.commit(batch);
    let found = s
        .reader
        .payments_of_party(&user.id, PaymentKind::MpesaDirectDebit, &party)
        .unwrap();
    assert_eq!(found, vec![debit]);
    let found = s
        .reader
        .payments_of_party(&user.id, PaymentKind::PreApproval, &party)
        .unwrap();
    assert_eq!(found, vec![older.clone(), newer.clone()]);
    // The writer reads the same (a request-to-pay drawn against a pre-approval).
    let found = s
        .journal
        .payments_of_party(&user.id, PaymentKind::PreApproval, &party)
        .unwrap();
    assert_eq!(found, vec![older, newer]);
    assert!(
        s.reader
            .payments_of_party(&Uuid::new_v4(), PaymentKind::PreApproval, &party)
            .unwrap()
            .is_empty()
    );
}

pub fn transfers_are_upserted_by_id_and_only_pending_ones_load(s: &mut Store) {
    let reference = Uuid::new_v4();
    let mut batch = two_accounts();
    let payments = payments_named(&[reference]);
    batch.api_users = payments.api_users;
    batch.new_payments = payments.new_payments;
    batch.transfers = vec![
        TransferRecord {
            transfer: transfer(1, 1, 2, 500, TransferState::Pending),
            reference_id: Some(reference),
            at_ms: 1_000,
        },
        TransferRecord {
            transfer: transfer(2, 1, 2, 700, TransferState::Pending),
            reference_id: Some(reference),
            at_ms: 1_100,
        },
        TransferRecord {
            transfer: transfer(3, 1, 2, 900, TransferState::Posted),
            reference_id: None,
            at_ms: 1_200,
        },
    ];
    s.commit(batch);
    // Posting transfer 1 changes its state and update time, not its creation time.
    s.commit(Batch {
        transfers: vec![TransferRecord {
            transfer: transfer(1, 1, 2, 500, TransferState::Posted),
            reference_id: Some(reference),
            at_ms: 5_000,
        }],
        ..Batch::default()
    });
    let state = s.journal.load(1_000).unwrap();
    assert_eq!(
        state.pending_transfers,
        vec![transfer(2, 1, 2, 700, TransferState::Pending)]
    );
    assert_eq!(state.max_transfer_id, 3);
    assert_eq!(
        s.reader.transfers_for(&reference).unwrap(),
        vec![
            transfer(1, 1, 2, 500, TransferState::Posted),
            transfer(2, 1, 2, 700, TransferState::Pending)
        ]
    );
    assert_eq!(
        s.reader.transfer_times(&reference).unwrap(),
        vec![(1, 1_000, 5_000), (2, 1_100, 1_100)]
    );
    assert!(s.reader.transfers_for(&Uuid::new_v4()).unwrap().is_empty());
    assert!(s.reader.transfer_times(&Uuid::new_v4()).unwrap().is_empty());

    // A transfer's amount must be positive, and its accounts must exist.
    for bad in [
        transfer(9, 1, 2, 0, TransferState::Posted),
        transfer(9, 1, 77, 5, TransferState::Posted),
    ] {
        let batch = Batch {
            transfers: vec![TransferRecord {
                transfer: bad,
                reference_id: None,
                at_ms: 1,
            }],
            ..Batch::default()
        };
        assert!(s.journal.commit(&batch).is_err());
    }
}

pub fn rows_written_twice_in_one_batch_end_as_written_last(s: &mut Store) {
    // The writer may create and settle a payment, or attempt a callback twice, within one
    // group commit: every backend must end where applying the rows in order ends.
    let user = api_user(1, 1);
    let p = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let mut batch = two_accounts();
    batch.api_users.push(user.clone());
    batch.new_payments.push(p.clone());
    batch.outbox.push(outbox_item(1, p.reference_id));
    let mut account = Account::new(AccountId(2), eur(), Limit::NoOverdraft);
    for (i, state) in [TransferState::Pending, TransferState::Posted]
        .into_iter()
        .enumerate()
    {
        account.credits_posted = 10 * (i as i64 + 1);
        batch.accounts.push(account.clone());
        batch.transfers.push(TransferRecord {
            transfer: transfer(1, 1, 2, 10, state),
            reference_id: Some(p.reference_id),
            at_ms: 1_000 + i as i64,
        });
        batch.payment_updates.push(PaymentUpdate {
            reference_id: p.reference_id,
            status: if i == 0 {
                PaymentStatus::Pending
            } else {
                PaymentStatus::Successful
            },
            reason: None,
            financial_transaction_id: Some(format!("fin-{i}")),
            settled_at_ms: Some(1_000 + i as i64),
            transfer_id: Some(1),
            notifications: i as u32,
        });
        batch.outbox_updates.push(OutboxUpdate {
            id: 1,
            state: if i == 0 {
                OutboxState::Pending
            } else {
                OutboxState::Delivered
            },
            attempts: i as u32 + 1,
            next_attempt_at_ms: 0,
            first_attempt: None,
        });
    }
    s.commit(batch);
    assert_eq!(
        s.reader.transfers_for(&p.reference_id).unwrap(),
        vec![transfer(1, 1, 2, 10, TransferState::Posted)]
    );
    assert_eq!(
        s.reader.transfer_times(&p.reference_id).unwrap(),
        vec![(1, 1_000, 1_001)]
    );
    let owner = AccountOwner::Wallet("MSISDN:256770000001".into());
    assert_eq!(
        s.reader
            .account(&owner, eur())
            .unwrap()
            .map(|a| a.credits_posted),
        Some(20)
    );
    let settled = s.reader.payment(&p.reference_id).unwrap().unwrap();
    assert_eq!(
        (
            settled.status,
            settled.financial_transaction_id.as_deref(),
            settled.notifications
        ),
        (PaymentStatus::Successful, Some("fin-1"), 1)
    );
    let outbox = s.reader.outbox_of(&p.reference_id).unwrap();
    assert_eq!(
        (outbox[0].state.as_str(), outbox[0].attempts),
        ("delivered", 2)
    );
    let state = s.journal.load(1_000).unwrap();
    assert!(
        state.pending_payments.is_empty()
            && state.pending_transfers.is_empty()
            && s.journal.pending_outbox(0, 100).unwrap().is_empty()
    );
}

/// A start loads every account but idle wallets, and of those only the newest: a
/// database of a million payers must not put a million wallets in memory.
pub fn load_takes_only_the_newest_idle_wallets(s: &mut Store) {
    let wallet = |i: u64| AccountOwner::Wallet(format!("MSISDN:25677000000{i}"));
    let mut batch = Batch::default();
    batch.new_accounts.push(new_account(
        1,
        AccountOwner::Partner {
            api_user: Uuid::new_v4(),
            product: Product::Collection,
        },
        kes(),
        Limit::NoOverdraft,
    ));
    for i in 2..=7 {
        batch
            .new_accounts
            .push(new_account(i, wallet(i), kes(), Limit::NoOverdraft));
    }
    s.commit(batch);
    // Money reserved on the oldest wallet: it must be held whatever its age.
    let mut reserved = Account::new(AccountId(2), kes(), Limit::NoOverdraft);
    reserved.credits_posted = 100;
    reserved.debits_pending = 40;
    s.commit(Batch {
        accounts: vec![reserved],
        ..Batch::default()
    });
    let ids = |state: &mkoba_platform::store::LoadedState| {
        let mut ids: Vec<u64> = state.accounts.iter().map(|(a, _)| a.id.0).collect();
        ids.sort_unstable();
        ids
    };
    let state = s.journal.load(2).unwrap();
    assert_eq!(ids(&state), vec![1, 2, 6, 7]);
    assert_eq!(state.max_account_id, 7);
    assert!(state.accounts.contains(&(
        s.reader.account(&wallet(2), kes()).unwrap().unwrap(),
        wallet(2)
    )));
    assert_eq!(ids(&s.journal.load(0).unwrap()), vec![1, 2]);
    assert_eq!(s.journal.load(0).unwrap().max_account_id, 7);
    assert_eq!(
        ids(&s.journal.load(100).unwrap()),
        (1..=7).collect::<Vec<_>>()
    );
    // A bound past what a signed `LIMIT` holds (`--wallets-in-memory` is any `usize`) is no
    // bound, not a negative one that PostgreSQL refuses.
    assert_eq!(
        ids(&s.journal.load(usize::MAX).unwrap()),
        (1..=7).collect::<Vec<_>>()
    );
}

pub fn accounts_of_every_owner_round_trip(s: &mut Store) {
    let user = Uuid::new_v4();
    let owners = [
        (AccountOwner::Funding, Limit::Unbounded),
        (
            AccountOwner::Wallet("MSISDN:256770000001".into()),
            Limit::NoOverdraft,
        ),
        (
            AccountOwner::Partner {
                api_user: user,
                product: Product::Remittance,
            },
            Limit::NoOverdraft,
        ),
        (
            AccountOwner::ShortCode {
                api_user: user,
                code: "600000".into(),
            },
            Limit::NoOverdraft,
        ),
    ];
    let mut batch = Batch::default();
    for (i, (owner, limit)) in owners.iter().enumerate() {
        batch
            .new_accounts
            .push(new_account(i as u64 + 1, owner.clone(), kes(), *limit));
    }
    // The same owner in another currency is another account.
    batch.new_accounts.push(new_account(
        9,
        owners[1].0.clone(),
        eur(),
        Limit::NoOverdraft,
    ));
    s.commit(batch);
    let mut totals = Account::new(AccountId(3), kes(), Limit::NoOverdraft);
    totals.credits_posted = i64::MAX / 2;
    totals.debits_posted = 11;
    totals.debits_pending = 22;
    totals.credits_pending = 33;
    s.commit(Batch {
        accounts: vec![totals.clone()],
        ..Batch::default()
    });

    let state = s.journal.load(1_000).unwrap();
    let mut loaded: Vec<(u64, AccountOwner)> = state
        .accounts
        .iter()
        .map(|(a, o)| (a.id.0, o.clone()))
        .collect();
    loaded.sort_by_key(|(id, _)| *id);
    let mut expected: Vec<(u64, AccountOwner)> = owners
        .iter()
        .enumerate()
        .map(|(i, (o, _))| (i as u64 + 1, o.clone()))
        .collect();
    expected.push((9, owners[1].0.clone()));
    assert_eq!(loaded, expected);
    assert!(
        state
            .accounts
            .contains(&(totals.clone(), owners[2].0.clone()))
    );
    for (i, (owner, limit)) in owners.iter().enumerate() {
        let account = s.reader.account(owner, kes()).unwrap().expect("account");
        assert_eq!(
            (account.id, account.limit),
            (AccountId(i as u64 + 1), *limit)
        );
    }
    assert_eq!(
        s.reader.account(&owners[2].0, kes()).unwrap(),
        Some(totals.clone())
    );
    // The writer reads the same (a wallet it had dropped from memory).
    assert_eq!(
        s.journal.ledger_account(&owners[2].0, kes()).unwrap(),
        Some(totals.clone())
    );
    assert_eq!(
        s.journal
            .ledger_account(&AccountOwner::Wallet("nobody".into()), kes())
            .unwrap(),
        None
    );
    // Several at once (a pass's dropped wallets): those that exist, with their owners;
    // an owner in another currency is another account.
    let mut found = s
        .journal
        .ledger_accounts(&[
            (owners[2].0.clone(), kes()),
            (AccountOwner::Wallet("nobody".into()), kes()),
            (owners[1].0.clone(), eur()),
            (owners[0].0.clone(), eur()),
        ])
        .unwrap();
    found.sort_by_key(|(_, a)| a.id);
    assert_eq!(
        found
            .iter()
            .map(|(o, a)| (o.clone(), a.id))
            .collect::<Vec<_>>(),
        vec![
            (owners[2].0.clone(), AccountId(3)),
            (owners[1].0.clone(), AccountId(9))
        ]
    );
    assert_eq!(found[0].1, totals);
    assert!(s.journal.ledger_accounts(&[]).unwrap().is_empty());
    assert_eq!(
        s.reader.account(&owners[1].0, eur()).unwrap().map(|a| a.id),
        Some(AccountId(9))
    );
    assert_eq!(s.reader.account(&owners[0].0, eur()).unwrap(), None);

    // One account per owner and currency.
    let twice = Batch {
        new_accounts: vec![new_account(
            20,
            owners[0].0.clone(),
            kes(),
            Limit::Unbounded,
        )],
        ..Batch::default()
    };
    assert!(s.journal.commit(&twice).is_err());
}

pub fn ledger_totals_sum_each_currency(s: &mut Store) {
    let mut batch = Batch::default();
    let mut accounts = Vec::new();
    for (id, currency, dp, dpe, cp, cpe) in [
        (1, eur(), 100, 10, 0, 0),
        (2, eur(), 0, 0, 100, 10),
        (3, kes(), 5_000_000_000_000, 0, 0, 7),
        (4, kes(), 0, 7, 5_000_000_000_000, 0),
    ] {
        batch.new_accounts.push(new_account(
            id,
            AccountOwner::Wallet(format!("w{id}")),
            currency,
            Limit::NoOverdraft,
        ));
        accounts.push(Account {
            id: AccountId(id),
            currency,
            limit: Limit::NoOverdraft,
            debits_posted: dp,
            debits_pending: dpe,
            credits_posted: cp,
            credits_pending: cpe,
        });
    }
    batch.accounts = accounts;
    s.commit(batch);
    let totals = s.reader.ledger_totals().unwrap();
    assert_eq!(
        totals,
        vec![
            CurrencyTotals {
                currency: "EUR".into(),
                debits_posted: 100,
                credits_posted: 100,
                debits_pending: 10,
                credits_pending: 10,
            },
            CurrencyTotals {
                currency: "KES".into(),
                debits_posted: 5_000_000_000_000,
                credits_posted: 5_000_000_000_000,
                debits_pending: 7,
                credits_pending: 7,
            },
        ]
    );
    assert!(totals.iter().all(CurrencyTotals::balanced));
}

pub fn outbox_rows_load_until_delivered_or_failed(s: &mut Store) {
    let reference = Uuid::new_v4();
    let other = Uuid::new_v4();
    s.commit(Batch {
        outbox: vec![
            outbox_item(1, reference),
            outbox_item(2, reference),
            outbox_item(3, other),
            outbox_item(4, reference),
        ],
        ..payments_named(&[reference, other])
    });
    s.commit(Batch {
        outbox_updates: vec![
            OutboxUpdate {
                id: 1,
                state: OutboxState::Delivered,
                attempts: 1,
                next_attempt_at_ms: 0,
                first_attempt: None,
            },
            OutboxUpdate {
                id: 2,
                state: OutboxState::Failed,
                attempts: 5,
                next_attempt_at_ms: 0,
                first_attempt: None,
            },
            OutboxUpdate {
                id: 4,
                state: OutboxState::Pending,
                attempts: 2,
                next_attempt_at_ms: 9_999,
                first_attempt: None,
            },
        ],
        ..Batch::default()
    });
    let state = s.journal.load(1_000).unwrap();
    let retrying = OutboxItem {
        attempts: 2,
        next_attempt_at_ms: 9_999,
        ..outbox_item(4, reference)
    };
    assert_eq!(
        s.journal.pending_outbox(0, 100).unwrap(),
        vec![outbox_item(3, other), retrying.clone()]
    );
    // Read in pages: after an id, at most a limit.
    assert_eq!(
        s.journal.pending_outbox(0, 1).unwrap(),
        vec![outbox_item(3, other)]
    );
    assert_eq!(
        s.journal.pending_outbox(3, 1).unwrap(),
        vec![retrying.clone()]
    );
    assert!(s.journal.pending_outbox(4, 1).unwrap().is_empty());
    // One by id: pending ones only.
    assert_eq!(s.journal.pending_outbox_row(4).unwrap(), Some(retrying));
    assert_eq!(s.journal.pending_outbox_row(1).unwrap(), None, "delivered");
    assert_eq!(s.journal.pending_outbox_row(2).unwrap(), None, "failed");
    assert_eq!(
        s.journal.pending_outbox_row(9).unwrap(),
        None,
        "no such row"
    );
    assert_eq!(state.max_outbox_id, 4);
    let record = |id: i64, state: &str, attempts| OutboxRecord {
        id,
        url: format!("https://clinic.example/cb/{id}"),
        method: "PUT".into(),
        body: format!(r#"{{"n":{id}}}"#),
        state: state.into(),
        attempts,
    };
    assert_eq!(
        s.reader.outbox_of(&reference).unwrap(),
        vec![
            record(1, "delivered", 1),
            record(2, "failed", 5),
            record(4, "pending", 2)
        ]
    );
    assert!(s.reader.outbox_of(&Uuid::new_v4()).unwrap().is_empty());
}

pub fn callback_attempts_are_listed_oldest_first(s: &mut Store) {
    let (reference, other) = (Uuid::new_v4(), Uuid::new_v4());
    // Attempts are the outbox rows' (1 for `reference`, 2 for another payment).
    s.commit(Batch {
        outbox: vec![outbox_item(1, reference), outbox_item(2, other)],
        ..payments_named(&[reference, other])
    });
    let attempts = [
        attempt(1, reference, 1, 1_000, 30),
        attempt(1, reference, 2, 2_000, 40),
        attempt(2, other, 1, 2_500, 50),
    ];
    s.commit(Batch {
        attempts: attempts[..2].to_vec(),
        ..Batch::default()
    });
    s.commit(Batch {
        attempts: vec![attempts[2].clone(), attempt(1, reference, 3, 3_000, 60)],
        ..Batch::default()
    });
    let mut expected = attempts[..2].to_vec();
    expected.push(attempt(1, reference, 3, 3_000, 60));
    assert_eq!(s.reader.callback_attempts(&reference).unwrap(), expected);
    assert!(
        s.reader
            .callback_attempts(&Uuid::new_v4())
            .unwrap()
            .is_empty()
    );
}

/// The outcome of an attempt as the engine records it: a first attempt on its outbox row.
fn recorded(a: &CallbackAttempt, state: OutboxState) -> OutboxUpdate {
    OutboxUpdate {
        id: a.outbox_id,
        state,
        attempts: a.attempt,
        next_attempt_at_ms: a.retry_at_ms.unwrap_or(a.at_ms),
        first_attempt: (a.attempt == 1).then(|| a.clone()),
    }
}

pub fn first_attempts_stored_with_their_callbacks_are_listed_with_the_rest(s: &mut Store) {
    let (reference, other) = (Uuid::new_v4(), Uuid::new_v4());
    // Two callbacks of `reference` (1 and 2), one of another payment (3).
    s.commit(Batch {
        outbox: vec![
            outbox_item(1, reference),
            outbox_item(2, reference),
            outbox_item(3, other),
        ],
        ..payments_named(&[reference, other])
    });
    let delivered = |a: CallbackAttempt| CallbackAttempt {
        status_code: Some(200),
        error: None,
        retry_at_ms: None,
        ..a
    };
    let first = attempt(1, reference, 1, 1_000, 30);
    let theirs = delivered(attempt(3, other, 1, 1_200, 5));
    s.commit(Batch {
        outbox_updates: vec![
            recorded(&first, OutboxState::Pending),
            recorded(&theirs, OutboxState::Delivered),
        ],
        ..Batch::default()
    });
    // The second try of callback 1; callback 2 sent twice at once, both recorded in one
    // batch.
    let second = delivered(attempt(1, reference, 2, 2_000, 40));
    let once = delivered(attempt(2, reference, 1, 1_500, 7));
    let twice = delivered(attempt(2, reference, 1, 1_500, 9));
    s.commit(Batch {
        attempts: vec![second.clone()],
        outbox_updates: vec![
            recorded(&second, OutboxState::Delivered),
            recorded(&once, OutboxState::Delivered),
            recorded(&twice, OutboxState::Delivered),
        ],
        ..Batch::default()
    });
    // Callback 1's first attempt recorded again, in a later batch (sent twice, the copy's
    // outcome late).
    let late = attempt(1, reference, 1, 2_500, 50);
    s.commit(Batch {
        outbox_updates: vec![recorded(&late, OutboxState::Delivered)],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.callback_attempts(&reference).unwrap(),
        vec![first, late, second, once, twice],
        "by callback, then attempt, every attempt recorded once"
    );
    assert_eq!(s.reader.callback_attempts(&other).unwrap(), vec![theirs]);
    let states: Vec<_> = (s.reader.outbox_of(&reference).unwrap().into_iter())
        .map(|r| (r.id, r.state, r.attempts))
        .collect();
    assert_eq!(
        states,
        [(1, "delivered".into(), 1), (2, "delivered".into(), 1)]
    );
}

// ---------------------------------------------------------------------------------------
// API users and keys.

pub fn an_api_user_holds_its_newest_api_keys_up_to_the_bound(s: &mut Store) {
    let user = api_user(1, 5);
    let other = api_user(1, 6);
    let key = |api_user: Uuid, n: i64| ApiKeyRecord {
        api_user,
        key_hash: numbered_hash(n),
        ending: format!("{n:04}"),
        created_at_ms: n,
    };
    let bound = mkoba_platform::store::MAX_API_KEYS_PER_USER;
    // Some in one batch, the rest one a batch; another user's key is not counted.
    s.commit(Batch {
        api_users: vec![user.clone(), other.clone()],
        api_keys: (0..10)
            .map(|n| key(user.id, n))
            .chain([key(other.id, 1_000)])
            .collect(),
        ..Batch::default()
    });
    for n in 10..bound + 5 {
        s.commit(Batch {
            api_keys: vec![key(user.id, n)],
            ..Batch::default()
        });
    }
    let kept = s.reader.api_keys_of(&user.id).unwrap();
    assert_eq!(kept.len() as i64, bound);
    assert_eq!(kept[0].created_at_ms, 5, "the five oldest went");
    assert_eq!(kept.last().unwrap().created_at_ms, bound + 4);
    let hashes = s.reader.api_key_hashes(&user.id).unwrap();
    assert_eq!(hashes.len() as i64, bound);
    assert!(!hashes.contains(&numbered_hash(4)) && hashes.contains(&numbered_hash(5)));
    assert_eq!(s.reader.api_key_hashes(&other.id).unwrap().len(), 1);
}

/// A distinct 32-byte hash for each number.
fn numbered_hash(n: i64) -> [u8; 32] {
    let mut h = [0u8; 32];
    h[..8].copy_from_slice(&n.to_be_bytes());
    h
}

pub fn api_keys_not_revoked_are_listed_and_revocation_is_scoped(s: &mut Store) {
    let user = api_user(1, 5);
    let other = api_user(1, 6);
    let key = |api_user: Uuid, n: u8| ApiKeyRecord {
        api_user,
        key_hash: hash(n),
        ending: format!("e{n:03}"),
        created_at_ms: i64::from(n),
    };
    s.commit(Batch {
        api_users: vec![user.clone(), other.clone()],
        api_keys: vec![key(user.id, 1), key(user.id, 2), key(other.id, 3)],
        ..Batch::default()
    });
    let keys = s.reader.api_keys_of(&user.id).unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys[0].id < keys[1].id);
    assert_eq!(
        keys.iter()
            .map(|k| (
                k.api_user,
                k.created_at_ms,
                k.revoked_at_ms,
                k.ending.as_deref()
            ))
            .collect::<Vec<_>>(),
        vec![
            (user.id, 1, None, Some("e001")),
            (user.id, 2, None, Some("e002"))
        ]
    );
    let first = keys[0].id;
    // Revoking through another API user changes nothing; revoking twice keeps the first time.
    s.commit(Batch {
        portal: vec![
            PortalWrite::RevokeApiKey {
                key_id: first,
                api_user: other.id,
                at_ms: 50,
            },
            PortalWrite::RevokeApiKey {
                key_id: first,
                api_user: user.id,
                at_ms: 60,
            },
            PortalWrite::RevokeApiKey {
                key_id: first,
                api_user: user.id,
                at_ms: 70,
            },
        ],
        ..Batch::default()
    });
    assert_eq!(s.reader.api_key_hashes(&user.id).unwrap(), vec![hash(2)]);
    assert_eq!(s.reader.api_key_hashes(&other.id).unwrap(), vec![hash(3)]);
    assert_eq!(
        s.reader.api_keys_of(&user.id).unwrap()[0],
        ApiKeyInfo {
            id: first,
            api_user: user.id,
            ending: Some("e001".to_owned()),
            created_at_ms: 1,
            revoked_at_ms: Some(60),
        }
    );
    // Later keys get larger ids.
    s.commit(Batch {
        api_keys: vec![key(other.id, 4)],
        ..Batch::default()
    });
    let new = s.reader.api_keys_of(&other.id).unwrap()[1].id;
    assert!(new > keys[1].id);
    assert!(s.reader.api_keys_of(&Uuid::new_v4()).unwrap().is_empty());
}

pub fn api_users_are_listed_per_developer_newest_first(s: &mut Store) {
    let old = api_user(1, 100);
    let new = api_user(1, 300);
    let mut same_time = [api_user(1, 200), api_user(1, 200)];
    same_time.sort_by_key(|u| u.id.to_string());
    let elsewhere = api_user(2, 400);
    s.commit(Batch {
        api_users: vec![
            old.clone(),
            same_time[1].clone(),
            new.clone(),
            elsewhere.clone(),
            same_time[0].clone(),
        ],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.api_users_of(1, 100).unwrap(),
        vec![
            new.clone(),
            same_time[0].clone(),
            same_time[1].clone(),
            old.clone()
        ]
    );
    // At most `limit`, the newest.
    assert_eq!(
        s.reader.api_users_of(1, 2).unwrap(),
        vec![new.clone(), same_time[0].clone()]
    );
    assert_eq!(
        s.reader.api_users_of(2, 100).unwrap(),
        vec![elsewhere.clone()]
    );
    assert!(s.reader.api_users_of(3, 100).unwrap().is_empty());
    assert_eq!(
        s.journal.api_user_developer(&elsewhere.id).unwrap(),
        Some(2)
    );
    assert_eq!(s.journal.api_user_developer(&Uuid::new_v4()).unwrap(), None);
}

// ---------------------------------------------------------------------------------------
// The developer portal.

pub fn developer_accounts_are_found_by_email_and_id(s: &mut Store) {
    s.commit(developer(3, "amina@example.org", 77));
    s.commit(developer(5, "baraka@example.org", 88));
    assert!(
        s.journal
            .developer_email_taken("amina@example.org")
            .unwrap()
    );
    assert!(
        !s.journal
            .developer_email_taken("nobody@example.org")
            .unwrap()
    );
    assert_eq!(s.journal.max_developer_id().unwrap(), 5);
    let amina = DeveloperAccount {
        id: 3,
        email: "amina@example.org".into(),
        name: "Developer 3".into(),
        approval_mode: false,
        created_at_ms: 77,
        status: AccountStatus::Active,
        phone: None,
        role: AccountRole::Developer,
    };
    assert_eq!(
        s.reader.developer_by_email("amina@example.org").unwrap(),
        Some((amina.clone(), "$argon2id$hash-3".to_owned()))
    );
    assert_eq!(
        s.reader.developer_by_email("AMINA@example.org").unwrap(),
        None
    );
    assert_eq!(s.reader.developer(3).unwrap(), Some(amina));
    assert_eq!(s.reader.developer(4).unwrap(), None);
    // E-mails are unique, and an account needs its developer row.
    let mut taken = developer(6, "amina@example.org", 99);
    assert!(s.journal.commit(&taken).is_err());
    taken.developers.clear();
    taken.portal = developer(7, "new@example.org", 1).portal;
    assert!(s.journal.commit(&taken).is_err());
    assert_eq!(s.journal.max_developer_id().unwrap(), 5);
}

pub fn the_sandbox_login_is_stored_with_its_password(s: &mut Store) {
    let login = SandboxLogin {
        email: SANDBOX_EMAIL.into(),
        password: "sandbox-pässword".into(),
    };
    s.commit(Batch {
        developers: vec![SANDBOX_DEVELOPER],
        portal: vec![PortalWrite::SandboxLogin {
            login: login.clone(),
            password_hash: "$argon2id$sandbox".into(),
        }],
        ..Batch::default()
    });
    assert!(s.journal.sandbox_login_exists().unwrap());
    assert_eq!(s.reader.sandbox_login().unwrap(), Some(login.clone()));
    let (account, hash) = s.reader.developer_by_email(SANDBOX_EMAIL).unwrap().unwrap();
    assert_eq!(
        (account.id, account.name.as_str(), hash.as_str()),
        (SANDBOX_DEVELOPER, "Sandbox developer", "$argon2id$sandbox")
    );
    assert!(s.journal.developer_email_taken(SANDBOX_EMAIL).unwrap());
    // Its account written again with the same password keeps the printed one; a new
    // password ends it (it would no longer sign in).
    let mut record = s.journal.account(SANDBOX_DEVELOPER).unwrap().unwrap();
    record.name = "Sandbox Shop".into();
    s.commit(Batch {
        portal: vec![PortalWrite::UpdateAccount(record.clone())],
        ..Batch::default()
    });
    assert_eq!(s.reader.sandbox_login().unwrap(), Some(login));
    record.password_hash = "$argon2id$changed".into();
    s.commit(Batch {
        portal: vec![PortalWrite::UpdateAccount(record)],
        ..Batch::default()
    });
    assert_eq!(s.reader.sandbox_login().unwrap(), None);
    let (_, hash) = s.reader.developer_by_email(SANDBOX_EMAIL).unwrap().unwrap();
    assert_eq!(hash, "$argon2id$changed");
}

pub fn sessions_are_created_read_and_deleted_and_expired_ones_swept(s: &mut Store) {
    s.commit(developer(1, "a@example.org", 1));
    let session = |n: u8, created_at_ms, expires_at_ms| PortalWrite::CreateSession {
        id_hash: hash(n),
        developer_id: 1,
        csrf_token: format!("csrf-{n}"),
        created_at_ms,
        expires_at_ms,
    };
    s.commit(Batch {
        portal: vec![session(1, 100, 1_000), session(2, 100, 5_000)],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.session(&hash(1)).unwrap(),
        Some(SessionRecord {
            developer_id: 1,
            csrf_token: "csrf-1".into(),
            expires_at_ms: 1_000,
        })
    );
    assert_eq!(s.reader.session(&hash(9)).unwrap(), None);
    // A session created after session 1 expired sweeps it away.
    s.commit(Batch {
        portal: vec![session(3, 2_000, 9_000)],
        ..Batch::default()
    });
    assert_eq!(s.reader.session(&hash(1)).unwrap(), None);
    assert!(s.reader.session(&hash(2)).unwrap().is_some());
    s.commit(Batch {
        portal: vec![PortalWrite::DeleteSession { id_hash: hash(2) }],
        ..Batch::default()
    });
    assert_eq!(s.reader.session(&hash(2)).unwrap(), None);
    assert_eq!(
        s.reader.session(&hash(3)).unwrap().map(|r| r.csrf_token),
        Some("csrf-3".into())
    );
}

pub fn approval_mode_is_set_per_developer(s: &mut Store) {
    s.commit(developer(1, "a@example.org", 1));
    s.commit(developer(2, "b@example.org", 1));
    s.commit(Batch {
        portal: vec![
            PortalWrite::SetApprovalMode {
                developer_id: 2,
                on: true,
            },
            PortalWrite::SetApprovalMode {
                developer_id: 1,
                on: true,
            },
            PortalWrite::SetApprovalMode {
                developer_id: 1,
                on: false,
            },
        ],
        ..Batch::default()
    });
    assert_eq!(s.journal.approval_developers().unwrap(), vec![2]);
    assert!(s.reader.developer(2).unwrap().unwrap().approval_mode);
    assert!(!s.reader.developer(1).unwrap().unwrap().approval_mode);
}

pub fn used_auth_requests_are_found_kept_and_dropped_past_their_time(s: &mut Store) {
    let user = api_user(1, 1);
    let used = |jti: &str, at: i64, until: i64| Batch {
        portal: vec![PortalWrite::UseAuthRequest {
            jti: jti.to_owned(),
            api_user: user.id,
            used_at_ms: at,
            keep_until_ms: until,
        }],
        ..Batch::default()
    };
    assert!(!s.journal.auth_request_used("a").unwrap());
    s.commit(used("a", 1_000, 5_000));
    s.commit(used("b", 2_000, 100_000));
    s.reopen();
    assert!(s.journal.auth_request_used("a").unwrap());
    assert!(s.journal.auth_request_used("b").unwrap());
    assert!(!s.journal.auth_request_used("c").unwrap());
    // The next one written, at 6,000, drops those kept until before then.
    s.commit(used("c", 6_000, 200_000));
    assert!(!s.journal.auth_request_used("a").unwrap());
    assert!(s.journal.auth_request_used("b").unwrap());
    assert!(s.journal.auth_request_used("c").unwrap());
    // Written again, the first row stands and the commit goes through.
    s.commit(used("c", 7_000, 7_500));
    s.commit(used("d", 8_000, 9_000));
    assert!(s.journal.auth_request_used("c").unwrap());
}

pub fn widget_settings_are_set_per_api_user_replaced_and_survive_reopening(s: &mut Store) {
    let user = api_user(1, 1);
    let other = api_user(1, 2);
    let mut batch = with_user(&user);
    batch.developers.push(1);
    batch.api_users.push(other.clone());
    s.commit(batch);
    assert_eq!(s.reader.widget_settings(&user.id).unwrap(), None);
    assert_eq!(s.reader.widget_settings(&Uuid::new_v4()).unwrap(), None);

    let set = |api_user: &ApiUser, settings: &WidgetSettings| PortalWrite::SetWidgetSettings {
        api_user: api_user.id,
        settings: settings.clone(),
    };
    let first = WidgetSettings {
        allowed_origins: Some(vec![
            "https://shop.example".into(),
            "http://localhost:8080".into(),
        ]),
        callback_url: Some("https://shop.example/momo?a=1&b=\"x\"".into()),
        updated_at_ms: 10,
    };
    s.commit(Batch {
        portal: vec![set(&user, &first)],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.widget_settings(&user.id).unwrap(),
        Some(first.clone())
    );
    assert_eq!(s.reader.widget_settings(&other.id).unwrap(), None);

    // Replaced whole: no list and no URL are stored as such, and an empty list is a list.
    let cleared = WidgetSettings {
        allowed_origins: None,
        callback_url: None,
        updated_at_ms: 20,
    };
    let empty = WidgetSettings {
        allowed_origins: Some(Vec::new()),
        callback_url: None,
        updated_at_ms: 21,
    };
    s.commit(Batch {
        portal: vec![set(&user, &cleared), set(&other, &first)],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.widget_settings(&user.id).unwrap(),
        Some(cleared.clone())
    );
    assert_eq!(
        s.reader.widget_settings(&other.id).unwrap(),
        Some(first.clone())
    );
    // Written twice in one batch: the last one stands.
    let last = WidgetSettings {
        allowed_origins: Some(vec!["https://b.example".into()]),
        callback_url: Some("https://b.example/cb".into()),
        updated_at_ms: 30,
    };
    s.commit(Batch {
        portal: vec![set(&user, &empty), set(&other, &empty), set(&other, &last)],
        ..Batch::default()
    });
    assert_eq!(
        s.reader.widget_settings(&user.id).unwrap(),
        Some(empty.clone())
    );

    s.reopen();
    assert_eq!(s.reader.widget_settings(&user.id).unwrap(), Some(empty));
    assert_eq!(s.reader.widget_settings(&other.id).unwrap(), Some(last));

    // Settings of an API user that does not exist are refused with the whole batch.
    let orphan = Batch {
        developers: vec![2],
        portal: vec![set(&api_user(1, 3), &first)],
        ..Batch::default()
    };
    assert!(s.journal.commit(&orphan).is_err());
    assert_eq!(s.journal.max_developer_id().unwrap(), 1);
}

/// Developer 1 with two API users and a spread of payments; developer 2 with one.
struct Listing {
    user: ApiUser,
    second: ApiUser,
    payments: Vec<Payment>,
    foreign: Payment,
}

fn listing(s: &mut Store) -> Listing {
    let user = api_user(1, 1);
    let second = api_user(1, 2);
    let stranger = api_user(2, 3);
    let mut payments = Vec::new();
    for i in 0..12i64 {
        let kind = [
            PaymentKind::RequestToPay,
            PaymentKind::Transfer,
            PaymentKind::MpesaC2b,
        ][i as usize % 3];
        let mut p = payment(
            if i % 4 == 3 { &second } else { &user },
            kind,
            msisdn(&format!("2567700000{i:02}")),
            10_000 + i * 1_000,
        );
        p.status = [
            PaymentStatus::Pending,
            PaymentStatus::Successful,
            PaymentStatus::Failed,
        ][i as usize % 3 / 2 + (i as usize % 2)];
        p.external_id = Some(format!("ext-{i}"));
        p.financial_transaction_id = Some(format!("fin-{i}"));
        payments.push(p);
    }
    let foreign = payment(
        &stranger,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        15_000,
    );
    s.commit(Batch {
        api_users: vec![user.clone(), second.clone(), stranger],
        new_payments: payments.iter().cloned().chain([foreign.clone()]).collect(),
        ..Batch::default()
    });
    Listing {
        user,
        second,
        payments,
        foreign,
    }
}

pub fn payments_page_filters_and_paginates(s: &mut Store) {
    let l = listing(s);
    let newest_first = |keep: &dyn Fn(&Payment) -> bool| -> Vec<Uuid> {
        let mut v: Vec<&Payment> = l.payments.iter().filter(|p| keep(p)).collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.created_at_ms));
        v.iter().map(|p| p.reference_id).collect()
    };
    let page = |f: PaymentFilter| {
        let page = s
            .reader
            .payments_page(&PaymentFilter {
                developer_id: 1,
                limit: 50,
                ..f
            })
            .unwrap();
        (ids(&page.payments), page.total)
    };
    let all = newest_first(&|_| true);
    assert_eq!(page(PaymentFilter::default()), (all.clone(), 12));
    // Pages of five, and a limit of 0 still returns one row.
    let first = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 1,
            limit: 5,
            offset: 0,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!((ids(&first.payments), first.total), (all[..5].to_vec(), 12));
    let last = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 1,
            limit: 5,
            offset: 10,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!(ids(&last.payments), all[10..].to_vec());
    let one = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 1,
            limit: 0,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!(ids(&one.payments), all[..1].to_vec());
    assert_eq!(
        first.payments[0],
        *l.payments
            .iter()
            .find(|p| p.reference_id == all[0])
            .unwrap()
    );

    assert_eq!(
        page(PaymentFilter {
            product: Some(Product::Mpesa),
            ..PaymentFilter::default()
        }),
        (newest_first(&|p| p.product == Product::Mpesa), 4)
    );
    assert_eq!(
        page(PaymentFilter {
            kind: Some(PaymentKind::Transfer),
            ..PaymentFilter::default()
        }),
        (newest_first(&|p| p.kind == PaymentKind::Transfer), 4)
    );
    let failed = newest_first(&|p| p.status == PaymentStatus::Failed);
    assert!(!failed.is_empty());
    assert_eq!(
        page(PaymentFilter {
            status: Some(PaymentStatus::Failed),
            ..PaymentFilter::default()
        }),
        (failed.clone(), failed.len() as u64)
    );
    // A party substring; a reference matches reference, external and transaction ids.
    assert_eq!(
        page(PaymentFilter {
            party: Some("77000001".into()),
            ..PaymentFilter::default()
        }),
        (newest_first(&|p| p.party.id.contains("77000001")), 2)
    );
    for reference in [
        l.payments[4].reference_id.to_string(),
        "ext-4".into(),
        "fin-4".into(),
    ] {
        assert_eq!(
            page(PaymentFilter {
                reference: Some(reference),
                ..PaymentFilter::default()
            }),
            (vec![l.payments[4].reference_id], 1)
        );
    }
    assert_eq!(
        page(PaymentFilter {
            api_user: Some(l.second.id),
            ..PaymentFilter::default()
        }),
        (newest_first(&|p| p.api_user == l.second.id), 3)
    );
    assert_eq!(
        page(PaymentFilter {
            from_ms: Some(12_000),
            to_ms: Some(15_000),
            ..PaymentFilter::default()
        }),
        (
            newest_first(&|p| (12_000..15_000).contains(&p.created_at_ms)),
            3
        )
    );
    // Everything at once.
    assert_eq!(
        page(PaymentFilter {
            product: Some(Product::Collection),
            kind: Some(PaymentKind::RequestToPay),
            status: Some(l.payments[0].status),
            party: Some("00".into()),
            reference: Some("ext-0".into()),
            api_user: Some(l.user.id),
            from_ms: Some(10_000),
            to_ms: Some(10_001),
            ..PaymentFilter::default()
        }),
        (vec![l.payments[0].reference_id], 1)
    );
    // Another developer's payments never show.
    assert_eq!(
        page(PaymentFilter {
            reference: Some(l.foreign.reference_id.to_string()),
            ..PaymentFilter::default()
        }),
        (vec![], 0)
    );
    let theirs = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 2,
            limit: 50,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!(
        (ids(&theirs.payments), theirs.total),
        (vec![l.foreign.reference_id], 1)
    );
}

/// Payments of one millisecond come in the store's own order (SQLite: the last written
/// first; PostgreSQL: by reference id), the same on every page, by number or from the last
/// page's key, and in every run read with `payments_after`, so that going through them
/// neither repeats nor skips one.
pub fn payments_page_and_runs_keep_one_order_through_ties(s: &mut Store) {
    let (a, b) = (api_user(1, 1), api_user(1, 2));
    let at = |user: &ApiUser, n: usize, created: i64| -> Vec<Payment> {
        (0..n)
            .map(|i| {
                let party = msisdn(&format!("25677{created}{i}"));
                payment(user, PaymentKind::RequestToPay, party, created)
            })
            .collect()
    };
    // Written in three batches, so that neither store's tie-break follows the writing.
    let mut first = with_user(&a);
    first.api_users.push(b.clone());
    first.new_payments = [at(&a, 3, 5_000), at(&b, 1, 4_000)].concat();
    s.commit(first);
    s.commit(Batch {
        new_payments: [at(&b, 2, 5_000), at(&a, 1, 6_000)].concat(),
        ..Batch::default()
    });
    s.commit(Batch {
        new_payments: at(&a, 3, 5_000),
        ..Batch::default()
    });
    let filter = |api_user: Option<Uuid>, limit: u32, offset: u32| PaymentFilter {
        developer_id: 1,
        api_user,
        limit,
        offset,
        ..PaymentFilter::default()
    };
    let whole = s.reader.payments_page(&filter(None, 50, 0)).unwrap();
    assert_eq!(whole.total, 10);
    let all = ids(&whole.payments);
    let times: Vec<i64> = whole.payments.iter().map(|p| p.created_at_ms).collect();
    assert_eq!(times, [vec![6_000], vec![5_000; 8], vec![4_000]].concat());
    // Pages of three, and runs of three, four and five, give the same order.
    let paged: Vec<Uuid> = (0..4)
        .flat_map(|n| {
            let page = s.reader.payments_page(&filter(None, 3, n * 3)).unwrap();
            ids(&page.payments)
        })
        .collect();
    assert_eq!(paged, all);
    // Pages of three, each from the last one's key (the offset then unused): the same
    // order, the same total.
    let (mut keyed, mut after, mut firsts) = (Vec::new(), None, Vec::new());
    for n in 0..4 {
        let offset = if after.is_some() { 7 } else { 0 };
        let page = s
            .reader
            .payments_page(&PaymentFilter {
                after: after.clone(),
                ..filter(None, 3, offset)
            })
            .unwrap();
        assert_eq!(page.total, 10);
        assert_eq!(page.next.is_some(), n < 3, "page {n}");
        keyed.push(ids(&page.payments));
        firsts.push(page.first.expect("a page's first key"));
        after = page.next;
    }
    assert_eq!(keyed.concat(), all);
    // And back, each page the three before the next one's first: the same pages.
    for n in (0..3).rev() {
        let page = s
            .reader
            .payments_page(&PaymentFilter {
                before: Some(firsts[n + 1].clone()),
                ..filter(None, 3, 7)
            })
            .unwrap();
        assert_eq!(ids(&page.payments), keyed[n], "page {n} read back");
        assert_eq!(page.first.as_ref(), Some(&firsts[n]));
        assert_eq!(page.total, 10);
    }
    let runs = |api_user: Option<Uuid>, limit: u32| -> (Vec<Uuid>, usize) {
        let (mut out, mut after, mut reads) = (Vec::new(), None, 0);
        loop {
            let (run, next) = s
                .reader
                .payments_after(&PaymentFilter {
                    after,
                    ..filter(api_user, limit, 7)
                })
                .unwrap();
            reads += 1;
            assert!(run.len() <= limit as usize);
            out.extend(ids(&run));
            match next {
                Some(key) => after = Some(key),
                None => return (out, reads),
            }
            assert!(reads < 20, "runs that do not end");
        }
    };
    assert_eq!(runs(None, 3), (all.clone(), 4));
    assert_eq!(runs(None, 4), (all.clone(), 3));
    // A run that ends with the last payment may be followed by an empty one.
    let (five, reads) = runs(None, 5);
    assert_eq!(five, all);
    assert!(reads == 2 || reads == 3, "{reads} runs of five");
    // Narrowed to one API user, runs of one.
    let of_b: Vec<Uuid> = whole
        .payments
        .iter()
        .filter(|p| p.api_user == b.id)
        .map(|p| p.reference_id)
        .collect();
    assert_eq!(runs(Some(b.id), 1).0, of_b);
    // The approvals' list is oldest first and, within a millisecond, by reference id.
    let mut expected = whole.payments.clone();
    expected.sort_by_key(|p| (p.created_at_ms, p.reference_id.to_string()));
    let waiting = s.reader.waiting_payments(1, None).unwrap();
    assert_eq!(ids(&waiting), ids(&expected));
}

/// A developer's payments counted by operation and status, all of them or those since a
/// time; another developer's are not counted.
pub fn payment_counts_are_per_operation_and_status(s: &mut Store) {
    let (mine, other, stranger) = (api_user(1, 1), api_user(1, 2), api_user(2, 1));
    let at = |user: &ApiUser, kind: PaymentKind, status: PaymentStatus, created: i64| {
        let mut p = payment(user, kind, msisdn("1"), created);
        p.status = status;
        p
    };
    let (rtp, transfer) = (PaymentKind::RequestToPay, PaymentKind::Transfer);
    let (ok, failed, pending) = (
        PaymentStatus::Successful,
        PaymentStatus::Failed,
        PaymentStatus::Pending,
    );
    // A Collection Widget invoice is counted under the widget, an M-Pesa payment under
    // M-Pesa, whatever their operation.
    let mut widget = at(&mine, PaymentKind::Invoice, ok, 450);
    widget.party = mkoba_platform::widget::widget_payer(&widget.reference_id);
    let mpesa = at(&other, PaymentKind::MpesaB2c, failed, 460);
    s.commit(Batch {
        api_users: vec![mine.clone(), other.clone(), stranger.clone()],
        new_payments: vec![
            at(&mine, rtp, ok, 100),
            at(&mine, rtp, ok, 200),
            at(&other, rtp, failed, 300),
            at(&mine, transfer, pending, 400),
            widget,
            mpesa,
            at(&other, transfer, ok, 500),
            at(&stranger, rtp, ok, 600),
        ],
        ..Batch::default()
    });
    let counts = |since: Option<i64>| {
        let mut v: Vec<(&str, &str, &str, u64)> = s
            .reader
            .payment_counts(1, since)
            .unwrap()
            .into_iter()
            .map(|c| {
                (
                    c.product.as_str(),
                    c.kind.as_str(),
                    c.status.as_str(),
                    c.count,
                )
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        counts(None),
        vec![
            ("collection", "requesttopay", "FAILED", 1),
            ("collection", "requesttopay", "SUCCESSFUL", 2),
            ("collection", "transfer", "PENDING", 1),
            ("collection", "transfer", "SUCCESSFUL", 1),
            ("collection_widget", "invoice", "SUCCESSFUL", 1),
            ("mpesa", "b2c", "FAILED", 1),
        ]
    );
    assert_eq!(
        counts(Some(300)),
        vec![
            ("collection", "requesttopay", "FAILED", 1),
            ("collection", "transfer", "PENDING", 1),
            ("collection", "transfer", "SUCCESSFUL", 1),
            ("collection_widget", "invoice", "SUCCESSFUL", 1),
            ("mpesa", "b2c", "FAILED", 1),
        ]
    );
    assert_eq!(counts(Some(501)), vec![]);
    assert!(s.reader.payment_counts(3, None).unwrap().is_empty());
}

pub fn payment_stats_count_and_sum_per_bucket(s: &mut Store) {
    let user = api_user(1, 1);
    let stranger = api_user(2, 1);
    let at =
        |created: i64, product: Product, status: PaymentStatus, minor: i64, currency: Currency| {
            let mut p = payment(&user, PaymentKind::Transfer, msisdn("1"), created);
            p.product = product;
            p.status = status;
            p.amount = Money::from_minor(minor, currency);
            p
        };
    let payments = vec![
        at(
            900,
            Product::Collection,
            PaymentStatus::Successful,
            1,
            eur(),
        ), // before the report
        at(
            1_000,
            Product::Collection,
            PaymentStatus::Successful,
            100,
            eur(),
        ),
        at(
            1_999,
            Product::Collection,
            PaymentStatus::Successful,
            200,
            eur(),
        ),
        at(1_500, Product::Collection, PaymentStatus::Failed, 50, eur()),
        at(
            1_500,
            Product::Collection,
            PaymentStatus::Successful,
            7,
            kes(),
        ),
        at(3_200, Product::Mpesa, PaymentStatus::Pending, 30, kes()),
        at(3_300, Product::Mpesa, PaymentStatus::Pending, 40, kes()),
    ];
    let theirs = payment(&stranger, PaymentKind::Transfer, msisdn("1"), 1_000);
    s.commit(Batch {
        api_users: vec![user.clone(), stranger],
        new_payments: payments.into_iter().chain([theirs]).collect(),
        ..Batch::default()
    });
    let all = ReportScope::all(1, 1_000);
    let mut rows = s.reader.payment_stats(&all, 1_000).unwrap();
    let key = |r: &StatsRow| (r.bucket, r.product, r.status.as_str(), r.currency.clone());
    rows.sort_by_key(key);
    let row = |bucket, product, status, currency: &str, count, amount_minor| StatsRow {
        bucket,
        product,
        status,
        currency: currency.into(),
        count,
        amount_minor,
        kind: PaymentKind::Transfer,
    };
    assert_eq!(
        rows,
        vec![
            row(0, Product::Collection, PaymentStatus::Failed, "EUR", 1, 50),
            row(
                0,
                Product::Collection,
                PaymentStatus::Successful,
                "EUR",
                2,
                300
            ),
            row(
                0,
                Product::Collection,
                PaymentStatus::Successful,
                "KES",
                1,
                7
            ),
            row(2, Product::Mpesa, PaymentStatus::Pending, "KES", 2, 70),
        ]
    );
    let buckets: Vec<i64> = s
        .reader
        .payment_stats(&all, 1_000)
        .unwrap()
        .iter()
        .map(|r| r.bucket)
        .collect();
    assert!(
        buckets.windows(2).all(|w| w[0] <= w[1]),
        "ordered by bucket: {buckets:?}"
    );
    assert!(
        s.reader
            .payment_stats(&ReportScope::all(3, 0), 1_000)
            .unwrap()
            .is_empty()
    );
    // A period of more payments than a report reads: the newest `most` of it, by creation
    // time (six since 1,000: 3,300, 3,200, 1,999, 1,500, 1,500, 1,000).
    assert_eq!(s.reader.report_start(&all, 2).unwrap(), Some(3_200));
    assert_eq!(s.reader.report_start(&all, 5).unwrap(), Some(1_500));
    assert_eq!(s.reader.report_start(&all, 6).unwrap(), None);
    // Created before the period's end only: one stamped later (on a test clock ahead of
    // real time) is in no slot, and no newest of the period either.
    let ended = ReportScope {
        until_ms: Some(3_200),
        ..all.clone()
    };
    assert_eq!(s.reader.report_start(&ended, 2).unwrap(), Some(1_500));
    assert!(
        s.reader
            .payment_stats(&ended, 1_000)
            .unwrap()
            .iter()
            .all(|r| r.bucket < 2)
    );
    let newest = ReportScope {
        since_ms: Some(3_200),
        ..all.clone()
    };
    // Counted since then, in the period's time slots.
    assert_eq!(
        s.reader.payment_stats(&newest, 1_000).unwrap(),
        vec![row(2, Product::Mpesa, PaymentStatus::Pending, "KES", 2, 70)]
    );
    // Narrowed to an API user, an API, an operation: another API user of the developer
    // counts in all its payments, not in its colleague's.
    let other = api_user(1, 1);
    let mut theirs = payment(&other, PaymentKind::RequestToPay, msisdn("2"), 1_000);
    theirs.amount = Money::from_minor(5, eur());
    // Made in production (a MoMo market's environment), where the other API user lives.
    theirs.environment = "mtnuganda".into();
    s.commit(Batch {
        api_users: vec![other.clone()],
        new_payments: vec![theirs],
        ..Batch::default()
    });
    let stats = |scope: ReportScope| {
        let mut rows = s.reader.payment_stats(&scope, 1_000).unwrap();
        rows.sort_by_key(key);
        rows
    };
    let of_user = ReportScope {
        api_user: Some(user.id),
        ..all.clone()
    };
    assert_eq!(stats(of_user.clone()), rows);
    let transfers = ReportScope {
        kind: Some(PaymentKind::Transfer),
        ..all.clone()
    };
    assert_eq!(stats(transfers), rows);
    let requests = ReportScope {
        kind: Some(PaymentKind::RequestToPay),
        ..all.clone()
    };
    assert_eq!(
        stats(requests),
        vec![StatsRow {
            kind: PaymentKind::RequestToPay,
            ..row(0, Product::Collection, PaymentStatus::Pending, "EUR", 1, 5)
        }]
    );
    let mpesa = ReportScope {
        product: Some(Product::Mpesa),
        ..of_user
    };
    assert_eq!(
        stats(mpesa),
        vec![row(2, Product::Mpesa, PaymentStatus::Pending, "KES", 2, 70)]
    );
    assert_eq!(stats(all.clone()).len(), rows.len() + 1);
    // Kept to one side: the sandbox's are the first API user's, production's the other's.
    let sandbox = ReportScope {
        environment: Some(Environments::Sandbox),
        ..all.clone()
    };
    assert_eq!(stats(sandbox), rows);
    let production = ReportScope {
        environment: Some(Environments::Production),
        ..all.clone()
    };
    assert_eq!(
        stats(production),
        vec![StatsRow {
            kind: PaymentKind::RequestToPay,
            ..row(0, Product::Collection, PaymentStatus::Pending, "EUR", 1, 5)
        }]
    );
    // The newest of one API user's: the other has one payment in the period.
    let theirs_only = ReportScope {
        api_user: Some(other.id),
        ..all
    };
    assert_eq!(s.reader.report_start(&theirs_only, 1).unwrap(), None);
    assert_eq!(s.reader.report_start(&of_user, 1).unwrap(), Some(3_300));
}

pub fn latencies_are_sorted_and_scoped(s: &mut Store) {
    let user = api_user(1, 1);
    let stranger = api_user(2, 1);
    let settled = |created: i64, settled: Option<i64>, who: &ApiUser| Payment {
        settled_at_ms: settled,
        status: if settled.is_some() {
            PaymentStatus::Successful
        } else {
            PaymentStatus::Pending
        },
        ..payment(who, PaymentKind::Transfer, msisdn("1"), created)
    };
    let a = settled(1_000, Some(1_900), &user);
    let b = settled(1_100, Some(1_200), &user);
    let c = settled(1_200, None, &user);
    let early = settled(10, Some(5_000), &user);
    let theirs = settled(1_000, Some(1_001), &stranger);
    s.commit(Batch {
        api_users: vec![user.clone(), stranger],
        new_payments: vec![a.clone(), b.clone(), c, early, theirs.clone()],
        // Each attempt is at a callback of the payment (the SQLite store finds a callback
        // attempt's payment through its outbox row).
        outbox: vec![
            outbox_item(1, a.reference_id),
            outbox_item(2, b.reference_id),
            outbox_item(3, theirs.reference_id),
            outbox_item(4, b.reference_id),
        ],
        ..Batch::default()
    });
    // First attempts are stored on their callbacks' rows, the others on their own. Only
    // attempts that got an answer are round trips: one refused before any (a host name
    // that does not resolve, a refused connection) is not, whatever time it took.
    let answered = |a: CallbackAttempt| CallbackAttempt {
        status_code: Some(200),
        error: None,
        ..a
    };
    let unanswered = CallbackAttempt {
        status_code: None,
        error: Some("invalid dns name".into()),
        ..attempt(1, a.reference_id, 3, 3_500, 0)
    };
    s.commit(Batch {
        attempts: vec![attempt(1, a.reference_id, 2, 3_000, 100), unanswered],
        outbox_updates: [
            answered(attempt(1, a.reference_id, 1, 2_000, 300)),
            attempt(2, b.reference_id, 1, 1_500, 2), // unanswered: no round trip
            answered(attempt(4, b.reference_id, 1, 500, 999)), // before the window
            answered(attempt(3, theirs.reference_id, 1, 2_000, 1)),
        ]
        .iter()
        .map(|a| recorded(a, OutboxState::Pending))
        .collect(),
        ..Batch::default()
    });
    let all = ReportScope::all(1, 1_000);
    let expected = Latencies {
        settlement_ms: vec![100, 900],
        callback_ms: vec![100, 300],
    };
    assert_eq!(s.reader.latencies(&all).unwrap(), expected);
    assert_eq!(
        s.reader.latencies(&ReportScope::all(3, 0)).unwrap(),
        Latencies::default()
    );
    // Narrowed: to the API user and operation of these payments, the same; to another
    // developer's API user, another API or another operation, none.
    let narrowed = |api_user, product, kind| ReportScope {
        api_user,
        product,
        kind,
        ..all.clone()
    };
    let l = |scope: ReportScope| s.reader.latencies(&scope).unwrap();
    assert_eq!(
        l(narrowed(Some(user.id), None, Some(PaymentKind::Transfer))),
        expected
    );
    // Only the payments created before the period's end: b (1,100) is past one at 1,050,
    // and with it its settlement (100) and its callbacks (none answered); a stays.
    assert_eq!(
        l(ReportScope {
            until_ms: Some(1_050),
            ..all.clone()
        }),
        Latencies {
            settlement_ms: vec![900],
            callback_ms: vec![100, 300],
        }
    );
    assert_eq!(
        l(narrowed(Some(theirs.api_user), None, None)),
        Latencies::default()
    );
    assert_eq!(
        l(narrowed(None, Some(Product::Mpesa), None)),
        Latencies::default()
    );
    assert_eq!(
        l(narrowed(None, None, Some(PaymentKind::RequestToPay))),
        Latencies::default()
    );
    // Only the payments created since `since_ms` (when a period holds too many).
    assert_eq!(
        l(ReportScope {
            since_ms: Some(1_100),
            ..all
        }),
        Latencies {
            settlement_ms: vec![100],
            callback_ms: vec![],
        }
    );
}

/// The Collection Widget's API, in a page's filter and in a report's scope, is the
/// widget's invoices: Collection invoices to a widget payer, and no other payment.
pub fn the_collection_widget_filter_picks_the_widgets_invoices(s: &mut Store) {
    let user = api_user(1, 1);
    let id = Uuid::new_v4();
    let widget = Payment {
        reference_id: id,
        ..payment(
            &user,
            PaymentKind::Invoice,
            mkoba_platform::widget::widget_payer(&id),
            1_000,
        )
    };
    let invoice = payment(&user, PaymentKind::Invoice, msisdn("256770000001"), 1_001);
    let coded = payment(
        &user,
        PaymentKind::RequestToPay,
        Party {
            id_type: PartyIdType::PartyCode,
            id: "WIDGET-LOOKALIKE".into(),
        },
        1_002,
    );
    s.commit(Batch {
        api_users: vec![user.clone()],
        new_payments: vec![widget.clone(), invoice, coded],
        ..Batch::default()
    });
    let page = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 1,
            product: Some(Product::CollectionWidget),
            // With a filter that takes a parameter after it.
            status: Some(PaymentStatus::Pending),
            limit: 10,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!(ids(&page.payments), vec![id]);
    let scope = ReportScope {
        product: Some(Product::CollectionWidget),
        ..ReportScope::all(1, 0)
    };
    let counted: u64 = s
        .reader
        .payment_stats(&scope, 1_000_000)
        .unwrap()
        .iter()
        .map(|r| r.count)
        .sum();
    assert_eq!(counted, 1);
    let all: u64 = s
        .reader
        .payment_stats(&ReportScope::all(1, 0), 1_000_000)
        .unwrap()
        .iter()
        .map(|r| r.count)
        .sum();
    assert_eq!(all, 3);
}

pub fn waiting_payments_are_pending_approvable_msisdn_payments(s: &mut Store) {
    let user = api_user(1, 1);
    let stranger = api_user(2, 1);
    let phone = msisdn("256770000001");
    let mut waiting = Vec::new();
    for (i, kind) in [
        PaymentKind::RequestToPay,
        PaymentKind::RequestToWithdraw,
        PaymentKind::Invoice,
        PaymentKind::PreApproval,
        PaymentKind::MpesaC2b,
        PaymentKind::MpesaMandate,
    ]
    .into_iter()
    .enumerate()
    {
        waiting.push(payment(&user, kind, phone.clone(), 1_000 + i as i64));
    }
    let other_phone = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000002"),
        2_000,
    );
    let not_waiting = vec![
        payment(&user, PaymentKind::Transfer, phone.clone(), 500),
        payment(&user, PaymentKind::MpesaB2c, phone.clone(), 500),
        Payment {
            status: PaymentStatus::Successful,
            ..payment(&user, PaymentKind::RequestToPay, phone.clone(), 500)
        },
        payment(
            &user,
            PaymentKind::RequestToPay,
            Party {
                id_type: PartyIdType::Email,
                id: phone.id.clone(),
            },
            500,
        ),
        payment(&stranger, PaymentKind::RequestToPay, phone.clone(), 500),
    ];
    s.commit(Batch {
        api_users: vec![user.clone(), stranger],
        new_payments: waiting
            .iter()
            .cloned()
            .chain([other_phone.clone()])
            .chain(not_waiting)
            .collect(),
        ..Batch::default()
    });
    assert_eq!(
        s.reader.waiting_payments(1, Some(&phone.id)).unwrap(),
        waiting
    );
    let mut all = waiting.clone();
    all.push(other_phone.clone());
    assert_eq!(s.reader.waiting_payments(1, None).unwrap(), all);
    assert_eq!(
        s.reader.waiting_payments(1, Some("256770000002")).unwrap(),
        vec![other_phone]
    );
    assert!(s.reader.waiting_payments(1, Some("0")).unwrap().is_empty());
    assert!(s.reader.waiting_payments(3, None).unwrap().is_empty());
}

// ---------------------------------------------------------------------------------------
// M-Pesa.

pub fn mpesa_apps_are_upserted_by_developer_and_found_by_key_hash(s: &mut Store) {
    let app = MpesaApp {
        allowed_origins: vec!["https://a.example".into(), "https://b.example".into()],
        result_url: Some("https://a.example/result".into()),
        ..mpesa_app(1, 1)
    };
    s.commit(Batch {
        api_users: vec![app.api_user_row()],
        mpesa_apps: vec![app.clone(), mpesa_app(2, 2)],
        ..Batch::default()
    });
    assert_eq!(s.journal.mpesa_app(1).unwrap(), Some(app.clone()));
    assert_eq!(s.reader.mpesa_app(1).unwrap(), Some(app.clone()));
    assert_eq!(
        s.reader.mpesa_app_by_key_hash(&hash(1)).unwrap(),
        Some(app.clone())
    );
    assert_eq!(s.reader.mpesa_app(3).unwrap(), None);
    assert_eq!(s.journal.mpesa_app(3).unwrap(), None);

    // A renewed key and new settings replace the row; its API user and creation time stay.
    let renewed = MpesaApp {
        api_user: Uuid::new_v4(),
        api_key_hash: hash(7),
        api_key_created_at_ms: 500,
        api_key: None,
        allowed_origins: vec!["*".into()],
        session_lifetime_secs: 60,
        result_url: None,
        created_at_ms: 999,
        ..app.clone()
    };
    s.commit(Batch {
        mpesa_apps: vec![renewed.clone()],
        ..Batch::default()
    });
    let expected = MpesaApp {
        api_user: app.api_user,
        created_at_ms: app.created_at_ms,
        ..renewed
    };
    assert_eq!(s.reader.mpesa_app(1).unwrap(), Some(expected.clone()));
    assert_eq!(s.journal.mpesa_app(1).unwrap(), Some(expected.clone()));
    assert_eq!(
        s.reader.mpesa_app_by_key_hash(&hash(7)).unwrap(),
        Some(expected)
    );
    assert_eq!(s.reader.mpesa_app_by_key_hash(&hash(1)).unwrap(), None);
    assert_eq!(
        s.reader
            .mpesa_app_by_key_hash(&hash(2))
            .unwrap()
            .map(|a| a.developer_id),
        Some(2)
    );
    // Key hashes are unique across applications.
    assert!(
        s.journal
            .commit(&Batch {
                mpesa_apps: vec![mpesa_app(3, 2)],
                ..Batch::default()
            })
            .is_err()
    );
}

pub fn payments_are_found_by_transaction_id(s: &mut Store) {
    let user = api_user(1, 1);
    let p = Payment {
        financial_transaction_id: Some("OEI2AK4Q16".into()),
        ..payment(&user, PaymentKind::MpesaC2b, msisdn("254700000001"), 1_000)
    };
    let mut batch = with_user(&user);
    let momo = Payment {
        financial_transaction_id: Some("1234567890".into()),
        ..payment(
            &user,
            PaymentKind::RequestToPay,
            msisdn("256770000001"),
            1_000,
        )
    };
    batch.new_payments = vec![
        p.clone(),
        payment(&user, PaymentKind::MpesaC2b, msisdn("254700000001"), 1_000),
        momo,
    ];
    s.commit(batch);
    assert_eq!(
        s.reader.payment_by_transaction_id("1234567890").unwrap(),
        None,
        "only M-Pesa payments are looked up by transaction id"
    );
    assert_eq!(
        s.reader.payment_by_transaction_id("OEI2AK4Q16").unwrap(),
        Some(p.clone())
    );
    assert_eq!(
        s.reader.payment_by_transaction_id("oei2ak4q16").unwrap(),
        None
    );
    assert_eq!(s.reader.payment_by_transaction_id("").unwrap(), None);
    // A transaction id given at settlement is found too.
    s.commit(Batch {
        payment_updates: vec![PaymentUpdate {
            reference_id: p.reference_id,
            status: PaymentStatus::Successful,
            reason: None,
            financial_transaction_id: Some("OEI2AK4Q17".into()),
            settled_at_ms: Some(2_000),
            transfer_id: None,
            notifications: 0,
        }],
        ..Batch::default()
    });
    assert_eq!(
        s.reader
            .payment_by_transaction_id("OEI2AK4Q17")
            .unwrap()
            .map(|p| p.reference_id),
        Some(p.reference_id)
    );
}

/// What refunds of a payment have taken: those that have not failed, and are not bound to
/// (a pending one whose failure was decided when it was accepted counts for nothing).
pub fn refunded_total_counts_refunds_that_have_not_failed(s: &mut Store) {
    let user = api_user(1, 1);
    let original = payment(
        &user,
        PaymentKind::RequestToPay,
        msisdn("256770000001"),
        1_000,
    );
    let refund = |minor: i64, status: PaymentStatus, of: Uuid| Payment {
        amount: Money::from_minor(minor, eur()),
        status,
        refund_of: Some(of),
        ..payment(&user, PaymentKind::Refund, msisdn("256770000001"), 2_000)
    };
    let mut batch = with_user(&user);
    batch.new_payments = vec![
        original.clone(),
        refund(100, PaymentStatus::Successful, original.reference_id),
        refund(20, PaymentStatus::Pending, original.reference_id),
        refund(3_000, PaymentStatus::Failed, original.reference_id),
        Payment {
            reason: Some(FailureReason::NotAllowed),
            ..refund(500, PaymentStatus::Pending, original.reference_id)
        },
        refund(4, PaymentStatus::Successful, Uuid::new_v4()),
    ];
    s.commit(batch);
    assert_eq!(
        s.journal.refunded_total(&original.reference_id).unwrap(),
        120
    );
    assert_eq!(
        s.reader.refunded_total(&original.reference_id).unwrap(),
        120
    );
    assert_eq!(s.journal.refunded_total(&Uuid::new_v4()).unwrap(), 0);
    assert_eq!(s.reader.refunded_total(&Uuid::new_v4()).unwrap(), 0);
    // Every refund of it is listed, failed ones too, and no other payment's.
    let listed = s.reader.refunds_of(&original.reference_id).unwrap();
    assert_eq!(listed.len(), 4, "{listed:?}");
    assert!(
        listed
            .iter()
            .all(|r| r.refund_of == Some(original.reference_id))
    );
    assert!(s.reader.refunds_of(&Uuid::new_v4()).unwrap().is_empty());
    // And its API user has payments, which a test clock is refused for.
    assert!(s.journal.api_user_has_payments(&user.id).unwrap());
    assert!(!s.journal.api_user_has_payments(&Uuid::new_v4()).unwrap());
}

// ---------------------------------------------------------------------------------------
// How the platform calls the store.

pub fn the_store_answers_inside_an_async_runtime(s: &mut Store) {
    // The server opens the store and bootstraps in its async start-up, and handlers read
    // from async tasks: every call must work on a thread that is inside a runtime.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        s.reopen();
        let user = api_user(1, 1);
        s.commit(with_user(&user));
        assert!(s.journal.api_user_exists(&user.id).unwrap());
        assert_eq!(s.journal.load(1_000).unwrap().max_transfer_id, 0);
        assert_eq!(s.reader.api_user(&user.id).unwrap(), Some(user));
        assert!(s.reader.ledger_totals().unwrap().is_empty());
    });
}

pub fn readers_on_many_threads_see_commits_as_they_land(s: &mut Store) {
    let user = api_user(1, 1);
    s.commit(with_user(&user));
    let payments: Vec<Payment> = (0..40)
        .map(|i| payment(&user, PaymentKind::RequestToPay, msisdn("256770000001"), i))
        .collect();
    let Store {
        journal, reader, ..
    } = s;
    let reader: &dyn Reader = reader.as_ref();
    std::thread::scope(|scope| {
        for t in 0..12 {
            let payments = &payments;
            scope.spawn(move || {
                for p in payments.iter().skip(t % 3) {
                    // Each payment is either not yet committed or complete.
                    if let Some(found) = reader.payment(&p.reference_id).unwrap() {
                        assert_eq!(&found, p);
                    }
                    reader.ledger_totals().unwrap();
                }
            });
        }
        for chunk in payments.chunks(4) {
            journal
                .commit(&Batch {
                    new_payments: chunk.to_vec(),
                    ..Batch::default()
                })
                .unwrap();
        }
    });
    let page = s
        .reader
        .payments_page(&PaymentFilter {
            developer_id: 1,
            limit: 100,
            ..PaymentFilter::default()
        })
        .unwrap();
    assert_eq!(page.total, 40);
}

pub fn a_large_batch_commits_in_one_transaction(s: &mut Store) {
    let user = api_user(1, 1);
    let mut batch = two_accounts();
    batch.api_users.push(user.clone());
    for i in 0..1_000u64 {
        let p = payment(
            &user,
            PaymentKind::RequestToPay,
            msisdn("256770000001"),
            i as i64,
        );
        batch.transfers.push(TransferRecord {
            transfer: transfer(i + 1, 1, 2, 10, TransferState::Pending),
            reference_id: Some(p.reference_id),
            at_ms: i as i64,
        });
        batch.outbox.push(outbox_item(i as i64 + 1, p.reference_id));
        batch.new_payments.push(p);
    }
    let started = Instant::now();
    s.commit(batch);
    eprintln!(
        "a batch of 1000 payments, transfers and outbox rows: {:?}",
        started.elapsed()
    );
    let state = s.journal.load(1_000).unwrap();
    assert_eq!(
        (
            state.pending_payments.len(),
            state.pending_transfers.len(),
            s.journal.pending_outbox(0, 2_000).unwrap().len()
        ),
        (1_000, 1_000, 1_000)
    );
    assert_eq!((state.max_transfer_id, state.max_outbox_id), (1_000, 1_000));
}

// ---------------------------------------------------------------------------------------
// The account journey: status, phone codes, sessions of a developer, the mailbox.

fn record(id: i64, email: &str, status: AccountStatus) -> AccountRecord {
    AccountRecord {
        developer_id: id,
        email: email.into(),
        name: format!("Developer {id}"),
        password_hash: format!("$argon2id$hash-{id}"),
        status,
        phone: None,
    }
}

pub fn accounts_are_created_with_a_status_and_changed_whole(s: &mut Store) {
    s.commit(Batch {
        developers: vec![4],
        portal: vec![PortalWrite::CreateDeveloper {
            id: 4,
            email: "pending@example.org".into(),
            name: "Pat".into(),
            password_hash: "$argon2id$p".into(),
            created_at_ms: 5,
            status: AccountStatus::Pending,
            role: AccountRole::Developer,
        }],
        ..Batch::default()
    });
    s.commit(developer(5, "other@example.org", 6));
    let mut pat = AccountRecord {
        developer_id: 4,
        email: "pending@example.org".into(),
        name: "Pat".into(),
        password_hash: "$argon2id$p".into(),
        status: AccountStatus::Pending,
        phone: None,
    };
    assert_eq!(s.journal.account(4).unwrap(), Some(pat.clone()));
    assert_eq!(s.journal.account(9).unwrap(), None);
    assert_eq!(
        s.reader.developer(4).unwrap().map(|d| d.status),
        Some(AccountStatus::Pending)
    );
    assert_eq!(
        s.reader.developer_password_hash(4).unwrap().as_deref(),
        Some("$argon2id$p")
    );
    assert_eq!(s.reader.developer_password_hash(9).unwrap(), None);
    // Every field changes at once; the last write of a batch stands.
    pat.status = AccountStatus::Phone;
    let mut active = pat.clone();
    active.status = AccountStatus::Active;
    active.email = "pat@example.org".into();
    active.name = "Pat Doe".into();
    active.password_hash = "$argon2id$q".into();
    active.phone = Some("255712345678".into());
    s.commit(Batch {
        portal: vec![
            PortalWrite::UpdateAccount(pat),
            PortalWrite::UpdateAccount(active.clone()),
        ],
        ..Batch::default()
    });
    s.reopen();
    assert_eq!(s.journal.account(4).unwrap(), Some(active.clone()));
    let d = s.reader.developer(4).unwrap().unwrap();
    assert_eq!(
        (
            d.email.as_str(),
            d.name.as_str(),
            d.status,
            d.phone.as_deref()
        ),
        (
            "pat@example.org",
            "Pat Doe",
            AccountStatus::Active,
            Some("255712345678")
        )
    );
    let (by_email, hash) = s
        .reader
        .developer_by_email("pat@example.org")
        .unwrap()
        .unwrap();
    assert_eq!((by_email.id, hash.as_str()), (4, "$argon2id$q"));
    assert!(
        s.reader
            .developer_by_email("pending@example.org")
            .unwrap()
            .is_none()
    );
    assert!(s.journal.developer_email_taken("pat@example.org").unwrap());
    // The other account is untouched; an e-mail taken by another is refused whole.
    assert_eq!(
        s.journal.account(5).unwrap(),
        Some(record(5, "other@example.org", AccountStatus::Active))
    );
    let mut clash = record(5, "pat@example.org", AccountStatus::Deleted);
    clash.name = "x".into();
    assert!(
        s.journal
            .commit(&Batch {
                portal: vec![PortalWrite::UpdateAccount(clash)],
                ..Batch::default()
            })
            .is_err()
    );
    assert_eq!(
        s.journal.account(5).unwrap().map(|a| a.status),
        Some(AccountStatus::Active)
    );
}

pub fn sessions_of_a_developer_end_but_the_one_kept(s: &mut Store) {
    s.commit(developer(1, "a@example.org", 1));
    s.commit(developer(2, "b@example.org", 1));
    let session = |n: u8, developer_id| PortalWrite::CreateSession {
        id_hash: hash(n),
        developer_id,
        csrf_token: format!("csrf-{n}"),
        created_at_ms: 1,
        expires_at_ms: i64::MAX,
    };
    s.commit(Batch {
        portal: vec![session(1, 1), session(2, 1), session(3, 1), session(4, 2)],
        ..Batch::default()
    });
    s.commit(Batch {
        portal: vec![PortalWrite::DeleteSessionsOf {
            developer_id: 1,
            except: Some(hash(2)),
        }],
        ..Batch::default()
    });
    assert_eq!(s.reader.session(&hash(1)).unwrap(), None);
    assert!(s.reader.session(&hash(2)).unwrap().is_some());
    assert_eq!(s.reader.session(&hash(3)).unwrap(), None);
    assert!(
        s.reader.session(&hash(4)).unwrap().is_some(),
        "another developer's"
    );
    s.commit(Batch {
        portal: vec![PortalWrite::DeleteSessionsOf {
            developer_id: 1,
            except: None,
        }],
        ..Batch::default()
    });
    assert_eq!(s.reader.session(&hash(2)).unwrap(), None);
    assert!(s.reader.session(&hash(4)).unwrap().is_some());
}

pub fn a_developers_api_keys_are_revoked_together(s: &mut Store) {
    let a1 = api_user(1, 1);
    let a2 = api_user(1, 2);
    let b = api_user(2, 3);
    let key = |api_user: Uuid, n: u8| ApiKeyRecord {
        api_user,
        key_hash: hash(n),
        ending: format!("{n:04}"),
        created_at_ms: 1,
    };
    s.commit(Batch {
        api_users: vec![a1.clone(), a2.clone(), b.clone()],
        api_keys: vec![key(a1.id, 1), key(a1.id, 2), key(a2.id, 3), key(b.id, 4)],
        portal: vec![PortalWrite::RevokeApiKey {
            key_id: 1,
            api_user: a1.id,
            at_ms: 10,
        }],
        ..Batch::default()
    });
    s.commit(Batch {
        portal: vec![PortalWrite::RevokeDeveloperKeys {
            developer_id: 1,
            at_ms: 99,
        }],
        ..Batch::default()
    });
    assert!(s.reader.api_key_hashes(&a1.id).unwrap().is_empty());
    assert!(s.reader.api_key_hashes(&a2.id).unwrap().is_empty());
    assert_eq!(s.reader.api_key_hashes(&b.id).unwrap(), vec![hash(4)]);
    let times: Vec<Option<i64>> = s
        .reader
        .api_keys_of(&a1.id)
        .unwrap()
        .iter()
        .map(|k| k.revoked_at_ms)
        .collect();
    assert_eq!(
        times,
        vec![Some(10), Some(99)],
        "a key revoked before keeps its time"
    );
}

pub fn phone_codes_are_set_replaced_and_deleted(s: &mut Store) {
    s.commit(developer(1, "a@example.org", 1));
    s.commit(developer(2, "b@example.org", 1));
    let code = |developer_id, msisdn: &str, n: u8, attempts| PhoneCode {
        developer_id,
        msisdn: msisdn.into(),
        code_mac: hash(n),
        sent_at_ms: 100 + i64::from(n),
        expires_at_ms: 700 + i64::from(n),
        attempts,
    };
    assert_eq!(s.journal.phone_code(1).unwrap(), None);
    s.commit(Batch {
        portal: vec![
            PortalWrite::SetPhoneCode(code(1, "255712345678", 1, 0)),
            PortalWrite::SetPhoneCode(code(2, "256772000001", 2, 0)),
            PortalWrite::SetPhoneCode(code(1, "255712345679", 3, 2)),
        ],
        ..Batch::default()
    });
    s.reopen();
    assert_eq!(
        s.journal.phone_code(1).unwrap(),
        Some(code(1, "255712345679", 3, 2))
    );
    assert_eq!(
        s.reader.phone_code(2).unwrap(),
        Some(code(2, "256772000001", 2, 0))
    );
    s.commit(Batch {
        portal: vec![PortalWrite::DeletePhoneCode { developer_id: 1 }],
        ..Batch::default()
    });
    assert_eq!(s.reader.phone_code(1).unwrap(), None);
    assert!(s.journal.phone_code(2).unwrap().is_some());
}

fn new_mail(developer_id: i64, channel: MailChannel, kind: MailKind, to: &str) -> NewMail {
    NewMail {
        developer_id,
        channel,
        kind,
        recipient: to.into(),
        subject: format!("{} for {to}", kind.as_str()),
        body: format!("Hello,\n\nhttp://127.0.0.1/portal/activate?t=x.y\n{to}"),
    }
}

fn queue(mail: NewMail, created_at_ms: i64, state: MailState) -> PortalWrite {
    PortalWrite::QueueMail {
        mail,
        created_at_ms,
        state,
    }
}

pub fn mail_is_kept_listed_per_developer_claimed_and_updated(s: &mut Store) {
    use MailChannel::{Email, Sms};
    s.commit(developer(1, "a@example.org", 1));
    s.commit(developer(2, "b@example.org", 1));
    s.commit(Batch {
        portal: vec![
            queue(
                new_mail(1, Email, MailKind::Activation, "a@example.org"),
                10,
                MailState::Queued,
            ),
            queue(
                new_mail(1, Sms, MailKind::PhoneCode, "255712345678"),
                20,
                MailState::Kept,
            ),
            queue(
                new_mail(2, Email, MailKind::PasswordReset, "b@example.org"),
                30,
                MailState::Queued,
            ),
            queue(
                new_mail(1, Email, MailKind::EmailChange, "new@example.org"),
                40,
                MailState::Kept,
            ),
        ],
        ..Batch::default()
    });
    // Newest first, one developer's only, every field back.
    let mine = s.reader.mail(&MailFilter::of(1)).unwrap();
    assert_eq!(
        mine.iter().map(|m| m.created_at_ms).collect::<Vec<_>>(),
        vec![40, 20, 10]
    );
    assert!(mine[0].id > mine[1].id && mine[1].id > mine[2].id);
    let activation = mine[2].clone();
    assert_eq!(
        activation,
        Mail {
            id: activation.id,
            developer_id: 1,
            channel: Email,
            kind: MailKind::Activation,
            recipient: "a@example.org".into(),
            subject: "activation for a@example.org".into(),
            body: "Hello,\n\nhttp://127.0.0.1/portal/activate?t=x.y\na@example.org".into(),
            created_at_ms: 10,
            state: MailState::Queued,
            attempts: 0,
            next_attempt_at_ms: 10,
            last_error: None,
            sent_at_ms: None,
        }
    );
    // Filters: recipient, channel, kind, limit.
    let filter = |recipient: Option<&str>, channel, kind, limit| MailFilter {
        developer_id: Some(1),
        recipient: recipient.map(str::to_owned),
        channel,
        kind,
        limit,
    };
    let ids = |v: Vec<Mail>| v.iter().map(|m| m.created_at_ms).collect::<Vec<_>>();
    assert_eq!(
        ids(s
            .reader
            .mail(&filter(Some("255712345678"), None, None, 50))
            .unwrap()),
        vec![20]
    );
    assert_eq!(
        ids(s.reader.mail(&filter(None, Some(Email), None, 50)).unwrap()),
        vec![40, 10]
    );
    assert_eq!(
        ids(s
            .reader
            .mail(&filter(None, None, Some(MailKind::Activation), 50))
            .unwrap()),
        vec![10]
    );
    assert_eq!(
        ids(s.reader.mail(&filter(None, None, None, 1)).unwrap()),
        vec![40]
    );
    assert!(
        s.reader
            .mail(&MailFilter {
                recipient: Some("b@example.org".into()),
                ..MailFilter::of(1)
            })
            .unwrap()
            .is_empty(),
        "another developer's mail is not listed, even by its address"
    );
    // Due: queued (or claimed, lease over) e-mail, oldest first; kept rows never.
    let due = s.journal.due_mail(25, 10).unwrap();
    assert_eq!(ids(due), vec![10]);
    let due = s.journal.due_mail(1_000, 10).unwrap();
    assert_eq!(
        due.iter().map(|m| m.created_at_ms).collect::<Vec<_>>(),
        vec![10, 30]
    );
    assert_eq!(s.journal.due_mail(1_000, 1).unwrap().len(), 1);
    let (first, second) = (due[0].id, due[1].id);
    // A claim leases it; a retry sets its time; a failure and a success end it.
    let update = |id, state, attempts, next, error: Option<&str>, sent| PortalWrite::UpdateMail {
        id,
        state,
        attempts,
        next_attempt_at_ms: next,
        last_error: error.map(str::to_owned),
        sent_at_ms: sent,
    };
    s.commit(Batch {
        portal: vec![
            update(first, MailState::Sending, 0, 2_000, None, None),
            update(
                second,
                MailState::Queued,
                1,
                5_000,
                Some("451 try later"),
                None,
            ),
        ],
        ..Batch::default()
    });
    assert!(s.journal.due_mail(1_500, 10).unwrap().is_empty());
    let due = s.journal.due_mail(5_000, 10).unwrap();
    assert_eq!(
        due.iter()
            .map(|m| (m.id, m.state, m.attempts))
            .collect::<Vec<_>>(),
        vec![
            (first, MailState::Sending, 0),
            (second, MailState::Queued, 1)
        ]
    );
    assert_eq!(due[1].last_error.as_deref(), Some("451 try later"));
    s.commit(Batch {
        portal: vec![
            update(first, MailState::Sent, 1, 2_100, None, Some(2_100)),
            update(
                second,
                MailState::Failed,
                2,
                5_100,
                Some("550 no such user"),
                None,
            ),
        ],
        ..Batch::default()
    });
    s.reopen();
    assert!(s.journal.due_mail(i64::MAX, 10).unwrap().is_empty());
    let sent = s
        .reader
        .mail(&filter(None, None, Some(MailKind::Activation), 5))
        .unwrap();
    assert_eq!(
        (sent[0].state, sent[0].attempts, sent[0].sent_at_ms),
        (MailState::Sent, 1, Some(2_100))
    );
    // Mail needs its developer.
    assert!(
        s.journal
            .commit(&Batch {
                portal: vec![queue(
                    new_mail(77, Email, MailKind::Notice, "x@example.org"),
                    1,
                    MailState::Kept
                )],
                ..Batch::default()
            })
            .is_err()
    );
}

// ---------------------------------------------------------------------------------------
// Operators and going live.

pub fn operators_and_go_live_requests_round_trip(s: &mut Store) {
    s.commit(developer(3, "dev@example.org", 10));
    s.commit(Batch {
        developers: vec![4],
        portal: vec![
            PortalWrite::CreateDeveloper {
                id: 4,
                email: "ops@example.org".into(),
                name: "Ops".into(),
                password_hash: "$argon2id$o".into(),
                created_at_ms: 11,
                status: AccountStatus::Active,
                role: AccountRole::Operator,
            },
            PortalWrite::OperatorLogin {
                password: "operator-pässword".into(),
            },
        ],
        ..Batch::default()
    });
    assert_eq!(
        s.journal.operators().unwrap(),
        vec![(4, "ops@example.org".to_owned())]
    );
    let login = s.reader.operator_login().unwrap().unwrap();
    assert_eq!(
        (login.email.as_str(), login.password.as_str()),
        ("ops@example.org", "operator-pässword")
    );
    assert_eq!(
        s.reader.developer(4).unwrap().map(|d| d.role),
        Some(AccountRole::Operator)
    );
    // Accounts, newest first, filtered by a substring of the e-mail (LIKE's wildcards are
    // plain characters), paged.
    let list = |email: Option<&str>, limit, offset| {
        let (rows, total) = s
            .reader
            .accounts(&AccountFilter {
                email: email.map(str::to_owned),
                limit,
                offset,
            })
            .unwrap();
        (rows.iter().map(|d| d.id).collect::<Vec<_>>(), total)
    };
    assert_eq!(list(None, 10, 0), (vec![4, 3], 2));
    assert_eq!(list(None, 1, 1), (vec![3], 2));
    assert_eq!(list(Some("dev@"), 10, 0), (vec![3], 1));
    assert_eq!(list(Some("%"), 10, 0), (vec![], 0));
    assert_eq!(list(Some("_"), 10, 0), (vec![], 0));

    let request = |company: &str| NewGoLive {
        developer_id: 3,
        company: company.into(),
        contact: "Dev, +255712345678".into(),
        website: "https://dev.example".into(),
        use_case: "Collections\nand payouts".into(),
        markets: vec!["mtnghana".into(), "mtnuganda".into()],
        products: vec!["collection".into(), "mpesa".into()],
        report_json: r#"{"generated_at_ms":1,"operations":[],"failed":[]}"#.into(),
    };
    s.commit(Batch {
        portal: vec![PortalWrite::CreateGoLive {
            request: request("First"),
            created_at_ms: 20,
        }],
        ..Batch::default()
    });
    s.commit(Batch {
        portal: vec![PortalWrite::CreateGoLive {
            request: request("Second"),
            created_at_ms: 30,
        }],
        ..Batch::default()
    });
    let all = s
        .reader
        .golive_requests(&GoLiveFilter {
            developer_id: None,
            state: None,
            limit: 10,
        })
        .unwrap();
    assert_eq!(
        all.iter().map(|r| r.company.as_str()).collect::<Vec<_>>(),
        ["Second", "First"]
    );
    let first = all[1].clone();
    assert_eq!(first.state, GoLiveState::Pending);
    assert_eq!(first.markets, ["mtnghana", "mtnuganda"]);
    assert_eq!(first.products, ["collection", "mpesa"]);
    assert_eq!(first.use_case, "Collections\nand payouts");
    assert_eq!((first.decided_at_ms, first.decided_by), (None, None));
    s.commit(Batch {
        portal: vec![PortalWrite::DecideGoLive {
            id: first.id,
            state: GoLiveState::Approved,
            decided_at_ms: 40,
            decided_by: 4,
            comment: "Fine.".into(),
        }],
        ..Batch::default()
    });
    let decided = s.journal.golive_request(first.id).unwrap().unwrap();
    assert_eq!(decided.state, GoLiveState::Approved);
    assert_eq!(
        (
            decided.decided_at_ms,
            decided.decided_by,
            decided.comment.as_deref()
        ),
        (Some(40), Some(4), Some("Fine."))
    );
    assert_eq!(s.reader.golive_request(first.id).unwrap(), Some(decided));
    let pending = s
        .journal
        .golive_requests(&GoLiveFilter {
            developer_id: Some(3),
            state: Some(GoLiveState::Pending),
            limit: 10,
        })
        .unwrap();
    assert_eq!(pending.len(), 1);
    assert_eq!(pending[0].company, "Second");
    assert!(
        s.reader
            .golive_requests(&GoLiveFilter {
                developer_id: Some(4),
                state: None,
                limit: 10,
            })
            .unwrap()
            .is_empty()
    );
    assert_eq!(s.reader.golive_request(9999).unwrap(), None);
    // Every account's mail, for the operator.
    s.commit(Batch {
        portal: vec![PortalWrite::QueueMail {
            mail: NewMail {
                developer_id: 4,
                channel: MailChannel::Email,
                kind: MailKind::GoLive,
                recipient: "ops@example.org".into(),
                subject: "Go-live request".into(),
                body: "Review it.".into(),
            },
            created_at_ms: 50,
            state: MailState::Kept,
        }],
        ..Batch::default()
    });
    let everyone = s
        .reader
        .mail(&MailFilter {
            developer_id: None,
            ..MailFilter::of(0)
        })
        .unwrap();
    assert_eq!(everyone.len(), 1);
    assert_eq!(everyone[0].kind, MailKind::GoLive);
    assert!(s.reader.mail(&MailFilter::of(3)).unwrap().is_empty());
}

pub fn test_clocks_are_created_advanced_deleted_and_survive_reopening(s: &mut Store) {
    use mkoba_platform::test_clock::{ClockWrite, TestClock};
    let user = api_user(1, 10);
    s.commit(Batch {
        developers: vec![1],
        ..with_user(&user)
    });
    let clock = TestClock {
        id: Uuid::new_v4(),
        developer_id: 1,
        api_user: user.id,
        name: "expiry".into(),
        now_ms: 1_767_225_600_000,
        created_at_ms: 42,
    };
    s.commit(Batch {
        test_clocks: vec![ClockWrite::Put(clock.clone())],
        ..Batch::default()
    });
    assert_eq!(
        s.journal.load(1_000).unwrap().test_clocks,
        vec![clock.clone()]
    );
    // Advanced: the whole row again, only its time changes.
    let later = TestClock {
        now_ms: clock.now_ms + 86_400_000,
        ..clock.clone()
    };
    s.commit(Batch {
        test_clocks: vec![ClockWrite::Put(later.clone())],
        ..Batch::default()
    });
    s.reopen();
    assert_eq!(s.journal.load(1_000).unwrap().test_clocks, vec![later]);
    s.commit(Batch {
        test_clocks: vec![ClockWrite::Delete(clock.id)],
        ..Batch::default()
    });
    assert!(s.journal.load(1_000).unwrap().test_clocks.is_empty());
}

/// A search stops at the `n`-th newest payment of its range (the developer's, an API
/// user's, between dates), whatever its other conditions, and a filter `until` that
/// payment reads none older.
pub fn a_search_reads_the_newest_of_its_range(s: &mut Store) {
    let l = listing(s);
    let newest: Vec<&Payment> = {
        let mut v: Vec<&Payment> = l.payments.iter().collect();
        v.sort_by_key(|p| std::cmp::Reverse(p.created_at_ms));
        v
    };
    let all = PaymentFilter {
        developer_id: 1,
        limit: 50,
        ..PaymentFilter::default()
    };
    // Twelve payments of developer 1 (the stranger's are not counted): the 5th newest.
    let end = s
        .reader
        .window_end(&all, 5)
        .unwrap()
        .expect("there are five");
    assert_eq!(end.created_at_ms, newest[4].created_at_ms);
    assert_eq!(s.reader.window_end(&all, 13).unwrap(), None);
    // Its other conditions aside; an API user's own range.
    let failed = PaymentFilter {
        status: Some(PaymentStatus::Failed),
        ..all.clone()
    };
    assert_eq!(s.reader.window_end(&failed, 5).unwrap(), Some(end.clone()));
    let second = PaymentFilter {
        api_user: Some(l.second.id),
        ..all.clone()
    };
    let of_second: Vec<&&Payment> = newest
        .iter()
        .filter(|p| p.api_user == l.second.id)
        .collect();
    assert_eq!(
        s.reader
            .window_end(&second, 2)
            .unwrap()
            .map(|k| k.created_at_ms),
        Some(of_second[1].created_at_ms)
    );
    // From where a search was continued: the 2nd older than the 2nd newest is the 4th.
    let second_key = s
        .reader
        .payments_page(&PaymentFilter {
            limit: 2,
            ..all.clone()
        })
        .unwrap()
        .next
        .expect("a next page");
    let from_there = PaymentFilter {
        older_than: Some(second_key),
        ..all.clone()
    };
    assert_eq!(
        s.reader
            .window_end(&from_there, 2)
            .unwrap()
            .map(|k| k.created_at_ms),
        Some(newest[3].created_at_ms)
    );
    // And counted as a condition of the filter: ten older than the 2nd newest.
    assert_eq!(s.reader.payments_page(&from_there).unwrap().total, 10);
    // Until it: the five newest and no other, on a page and counted.
    let page = s
        .reader
        .payments_page(&PaymentFilter {
            until: Some(end),
            ..all.clone()
        })
        .unwrap();
    assert_eq!(page.total, 5);
    let ids: Vec<Uuid> = page.payments.iter().map(|p| p.reference_id).collect();
    let expected: Vec<Uuid> = newest[..5].iter().map(|p| p.reference_id).collect();
    assert_eq!(ids, expected);
}
