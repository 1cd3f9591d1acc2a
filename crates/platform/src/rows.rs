//! Row codecs shared by both stores: each table's column list, written once, and how a row
//! of those columns becomes a value.
//!
//! A store reads a row through [`Row`], four plain accessors over its driver's row type
//! (SQLite's `rusqlite::Row`, PostgreSQL's `postgres::Row`); everything a column means —
//! which enum a text names, that a hash is 32 bytes, that a count fits `u32`, how an
//! account owner or a list of origins is written — is decided here, once. A value the
//! codec cannot read is a [`StoreError`] naming the column's meaning and the value: a row
//! written by a newer binary, or edited by hand, is refused rather than misread.
//!
//! The column lists are what the queries select (`SELECT {PAYMENT_COLUMNS} FROM payments`),
//! in the order the codec reads them. [`prefixed`] qualifies one for a join.

use mkoba_ledger::{
    Account, AccountId, Currency, Limit, Money, Transfer, TransferId, TransferState,
};
use uuid::Uuid;

use crate::accounts::{
    AccountRecord, AccountRole, AccountStatus, Mail, MailChannel, MailKind, MailState, PhoneCode,
};
use crate::golive::{GoLiveRequest, GoLiveState};
use crate::model::{
    AccountOwner, ApiUser, CallbackAttempt, CallbackMethod, KeySlot, OutboxItem, Party,
    PartyIdType, Payment, PaymentKind, PaymentStatus, Product, SubscriptionKey, WidgetSettings,
};
use crate::mpesa::MpesaApp;
use crate::portal::{ApiKeyInfo, DeveloperAccount, KindCount, OutboxRecord, StatsRow};
use crate::reason::FailureReason;
use crate::store::{CurrencyTotals, StoreError};
use crate::test_clock::TestClock;

/// One row as a store's driver returns it. Each accessor answers `None` for NULL and an
/// error for a column of another type.
pub trait Row {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError>;
    fn int(&self, i: usize) -> Result<Option<i64>, StoreError>;
    fn bytes(&self, i: usize) -> Result<Option<&[u8]>, StoreError>;
    /// A boolean: PostgreSQL's `BOOLEAN`, SQLite's integer 0 or 1.
    fn flag(&self, i: usize) -> Result<Option<bool>, StoreError>;
}

/// A value the codec cannot read.
pub fn bad(what: &str, value: &str) -> StoreError {
    StoreError(format!("bad {what} {value:?} in the database"))
}

fn null(i: usize) -> StoreError {
    StoreError(format!("column {i} is NULL where a value is required"))
}

fn text(r: &impl Row, i: usize) -> Result<String, StoreError> {
    r.text(i)?.map(str::to_owned).ok_or_else(|| null(i))
}

fn opt_text(r: &impl Row, i: usize) -> Result<Option<String>, StoreError> {
    Ok(r.text(i)?.map(str::to_owned))
}

fn int(r: &impl Row, i: usize) -> Result<i64, StoreError> {
    r.int(i)?.ok_or_else(|| null(i))
}

/// A non-negative count that fits `u32` (attempts, notifications).
fn count(r: &impl Row, i: usize) -> Result<u32, StoreError> {
    let v = int(r, i)?;
    u32::try_from(v).map_err(|_| bad("count", &v.to_string()))
}

/// A text column read by `parse`, `what` naming it in the error.
fn parsed<T>(
    r: &impl Row,
    i: usize,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<T, StoreError> {
    let s = r.text(i)?.ok_or_else(|| null(i))?;
    parse(s).ok_or_else(|| bad(what, s))
}

fn opt_parsed<T>(
    r: &impl Row,
    i: usize,
    what: &str,
    parse: impl Fn(&str) -> Option<T>,
) -> Result<Option<T>, StoreError> {
    r.text(i)?
        .map(|s| parse(s).ok_or_else(|| bad(what, s)))
        .transpose()
}

fn uuid(r: &impl Row, i: usize) -> Result<Uuid, StoreError> {
    parsed(r, i, "uuid", |s| Uuid::parse_str(s).ok())
}

fn currency(r: &impl Row, i: usize) -> Result<Currency, StoreError> {
    parsed(r, i, "currency", |s| Currency::parse(s).ok())
}

/// A 32-byte hash or MAC.
fn hash(r: &impl Row, i: usize, what: &str) -> Result<[u8; 32], StoreError> {
    let v = r.bytes(i)?.ok_or_else(|| null(i))?;
    v.try_into().map_err(|_| bad(what, "of the wrong length"))
}

/// `columns` with each name qualified by `table` (`"p"`), for a join.
pub fn prefixed(columns: &str, table: &str) -> String {
    columns
        .split(',')
        .map(|c| format!("{table}.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `payments` columns [`payment`] reads.
pub const PAYMENT_COLUMNS: &str = "reference_id, kind, product, api_user, environment, \
     amount_minor, currency, external_id, party_type, party_id, payer_message, payee_note, \
     callback_url, status, reason, financial_transaction_id, created_at_ms, settled_at_ms, \
     settle_at_ms, transfer_id, notifications, callback_method, refund_of, details, \
     expires_at_ms, short_code";

pub fn payment(r: &impl Row) -> Result<Payment, StoreError> {
    Ok(Payment {
        reference_id: uuid(r, 0)?,
        kind: parsed(r, 1, "kind", PaymentKind::parse)?,
        product: parsed(r, 2, "product", Product::parse)?,
        api_user: uuid(r, 3)?,
        environment: text(r, 4)?,
        amount: Money::from_minor(int(r, 5)?, currency(r, 6)?),
        external_id: opt_text(r, 7)?,
        party: Party {
            id_type: parsed(r, 8, "party type", PartyIdType::parse_ignore_case)?,
            id: text(r, 9)?,
        },
        payer_message: opt_text(r, 10)?,
        payee_note: opt_text(r, 11)?,
        callback_url: opt_text(r, 12)?,
        status: parsed(r, 13, "status", PaymentStatus::parse)?,
        reason: opt_parsed(r, 14, "reason", FailureReason::parse)?,
        financial_transaction_id: opt_text(r, 15)?,
        created_at_ms: int(r, 16)?,
        settled_at_ms: r.int(17)?,
        settle_at_ms: r.int(18)?,
        transfer_id: r.int(19)?.map(|t| t as u64),
        notifications: count(r, 20)?,
        callback_method: opt_parsed(r, 21, "method", CallbackMethod::parse)?,
        refund_of: opt_parsed(r, 22, "uuid", |s| Uuid::parse_str(s).ok())?,
        details: opt_text(r, 23)?,
        expires_at_ms: r.int(24)?,
        short_code: opt_text(r, 25)?,
    })
}

/// The `accounts` columns [`account`] reads; the owner ([`owner`]) follows them where a
/// query needs it.
pub const ACCOUNT_COLUMNS: &str =
    "id, currency, limit_kind, debits_pending, debits_posted, credits_pending, credits_posted";

pub fn account(r: &impl Row) -> Result<Account, StoreError> {
    Ok(Account {
        id: AccountId(int(r, 0)? as u64),
        currency: currency(r, 1)?,
        limit: parsed(r, 2, "limit", Limit::parse)?,
        debits_pending: int(r, 3)?,
        debits_posted: int(r, 4)?,
        credits_pending: int(r, 5)?,
        credits_posted: int(r, 6)?,
    })
}

/// An account's owner as stored ([`AccountOwner::key`]) in column `i`.
pub fn owner(r: &impl Row, i: usize) -> Result<AccountOwner, StoreError> {
    parsed(r, i, "account owner", AccountOwner::parse)
}

/// The `transfers` columns [`transfer`] reads.
pub const TRANSFER_COLUMNS: &str = "id, debit_account, credit_account, amount, currency, state";

pub fn transfer(r: &impl Row) -> Result<Transfer, StoreError> {
    Ok(Transfer {
        id: TransferId(int(r, 0)? as u64),
        debit: AccountId(int(r, 1)? as u64),
        credit: AccountId(int(r, 2)? as u64),
        amount: int(r, 3)?,
        currency: currency(r, 4)?,
        state: parsed(r, 5, "transfer state", TransferState::parse)?,
    })
}

/// The `api_users` columns [`api_user`] reads.
pub const API_USER_COLUMNS: &str =
    "id, developer_id, provider_callback_host, target_environment, created_at_ms";

pub fn api_user(r: &impl Row) -> Result<ApiUser, StoreError> {
    Ok(ApiUser {
        id: uuid(r, 0)?,
        developer_id: int(r, 1)?,
        provider_callback_host: text(r, 2)?,
        target_environment: text(r, 3)?,
        created_at_ms: int(r, 4)?,
    })
}

/// The `outbox` columns [`outbox_item`] reads.
pub const OUTBOX_COLUMNS: &str =
    "id, reference_id, url, method, body, attempts, next_attempt_at_ms";

pub fn outbox_item(r: &impl Row) -> Result<OutboxItem, StoreError> {
    Ok(OutboxItem {
        id: int(r, 0)?,
        reference_id: uuid(r, 1)?,
        url: text(r, 2)?,
        method: parsed(r, 3, "method", CallbackMethod::parse)?,
        body: text(r, 4)?,
        attempts: count(r, 5)?,
        next_attempt_at_ms: int(r, 6)?,
    })
}

/// The `subscription_keys` columns [`subscription_key`] reads.
pub const KEY_COLUMNS: &str = "key, developer_id, product, slot";

pub fn subscription_key(r: &impl Row) -> Result<SubscriptionKey, StoreError> {
    Ok(SubscriptionKey {
        key: text(r, 0)?,
        developer_id: int(r, 1)?,
        product: parsed(r, 2, "product", Product::parse)?,
        slot: parsed(r, 3, "slot", KeySlot::parse)?,
    })
}

/// The `test_clocks` columns [`test_clock`] reads.
pub const CLOCK_COLUMNS: &str = "id, developer_id, api_user, name, now_ms, created_at_ms";

pub fn test_clock(r: &impl Row) -> Result<TestClock, StoreError> {
    Ok(TestClock {
        id: uuid(r, 0)?,
        developer_id: int(r, 1)?,
        api_user: uuid(r, 2)?,
        name: text(r, 3)?,
        now_ms: int(r, 4)?,
        created_at_ms: int(r, 5)?,
    })
}

/// The `mpesa_apps` columns [`mpesa_app`] reads.
pub const MPESA_APP_COLUMNS: &str = "developer_id, api_user, api_key_hash, \
     api_key_created_at_ms, sandbox_api_key, allowed_origins, session_lifetime_secs, \
     result_url, created_at_ms";

pub fn mpesa_app(r: &impl Row) -> Result<MpesaApp, StoreError> {
    Ok(MpesaApp {
        developer_id: int(r, 0)?,
        api_user: uuid(r, 1)?,
        api_key_hash: hash(r, 2, "API key hash")?,
        api_key_created_at_ms: int(r, 3)?,
        api_key: opt_text(r, 4)?,
        // One origin per line.
        allowed_origins: text(r, 5)?.lines().map(str::to_owned).collect(),
        session_lifetime_secs: int(r, 6)?.max(0) as u64,
        result_url: opt_text(r, 7)?,
        created_at_ms: int(r, 8)?,
    })
}

/// The `developer_accounts` columns [`account_record`] reads.
pub const ACCOUNT_RECORD_COLUMNS: &str = "developer_id, email, name, password_hash, status, phone";

pub fn account_record(r: &impl Row) -> Result<AccountRecord, StoreError> {
    Ok(AccountRecord {
        developer_id: int(r, 0)?,
        email: text(r, 1)?,
        name: text(r, 2)?,
        password_hash: text(r, 3)?,
        status: parsed(r, 4, "account status", AccountStatus::parse)?,
        phone: opt_text(r, 5)?,
    })
}

/// The `developer_accounts` columns [`developer`] reads.
pub const DEVELOPER_COLUMNS: &str =
    "developer_id, email, name, approval_mode, created_at_ms, status, phone, role";

pub fn developer(r: &impl Row) -> Result<DeveloperAccount, StoreError> {
    Ok(DeveloperAccount {
        id: int(r, 0)?,
        email: text(r, 1)?,
        name: text(r, 2)?,
        approval_mode: r.flag(3)?.ok_or_else(|| null(3))?,
        created_at_ms: int(r, 4)?,
        status: parsed(r, 5, "account status", AccountStatus::parse)?,
        phone: opt_text(r, 6)?,
        role: parsed(r, 7, "account role", AccountRole::parse)?,
    })
}

/// The `phone_codes` columns [`phone_code`] reads.
pub const PHONE_CODE_COLUMNS: &str =
    "developer_id, msisdn, code_mac, sent_at_ms, expires_at_ms, attempts";

pub fn phone_code(r: &impl Row) -> Result<PhoneCode, StoreError> {
    Ok(PhoneCode {
        developer_id: int(r, 0)?,
        msisdn: text(r, 1)?,
        code_mac: hash(r, 2, "phone code MAC")?,
        sent_at_ms: int(r, 3)?,
        expires_at_ms: int(r, 4)?,
        attempts: count(r, 5)?,
    })
}

/// The `mailbox` columns [`mail`] reads.
pub const MAIL_COLUMNS: &str = "id, developer_id, channel, kind, recipient, subject, body, \
     created_at_ms, state, attempts, next_attempt_at_ms, last_error, sent_at_ms";

pub fn mail(r: &impl Row) -> Result<Mail, StoreError> {
    Ok(Mail {
        id: int(r, 0)?,
        developer_id: int(r, 1)?,
        channel: parsed(r, 2, "mail channel", MailChannel::parse)?,
        kind: parsed(r, 3, "mail kind", MailKind::parse)?,
        recipient: text(r, 4)?,
        subject: text(r, 5)?,
        body: text(r, 6)?,
        created_at_ms: int(r, 7)?,
        state: parsed(r, 8, "mail state", MailState::parse)?,
        attempts: count(r, 9)?,
        next_attempt_at_ms: int(r, 10)?,
        last_error: opt_text(r, 11)?,
        sent_at_ms: r.int(12)?,
    })
}

/// The widget settings columns [`widget_settings`] reads.
pub const WIDGET_SETTINGS_COLUMNS: &str = "allowed_origins, callback_url, updated_at_ms";

/// Allowed origins as stored: a JSON array of strings, or NULL.
pub fn origins_json(origins: Option<&[String]>) -> Option<String> {
    origins.map(|o| serde_json::to_string(o).expect("a list of strings serialises"))
}

pub fn widget_settings(r: &impl Row) -> Result<WidgetSettings, StoreError> {
    Ok(WidgetSettings {
        allowed_origins: opt_parsed(r, 0, "allowed origins", |o| serde_json::from_str(o).ok())?,
        callback_url: opt_text(r, 1)?,
        updated_at_ms: int(r, 2)?,
    })
}

/// The `golive_requests` columns [`golive_request`] reads.
pub const GOLIVE_COLUMNS: &str = "id, developer_id, created_at_ms, state, company, contact, \
     website, use_case, markets, products, report, decided_at_ms, decided_by, comment";

pub fn golive_request(r: &impl Row) -> Result<GoLiveRequest, StoreError> {
    // Markets and products are stored as words separated by spaces.
    let words = |i| -> Result<Vec<String>, StoreError> {
        Ok(text(r, i)?.split_whitespace().map(str::to_owned).collect())
    };
    Ok(GoLiveRequest {
        id: int(r, 0)?,
        developer_id: int(r, 1)?,
        created_at_ms: int(r, 2)?,
        state: parsed(r, 3, "go-live state", GoLiveState::parse)?,
        company: text(r, 4)?,
        contact: text(r, 5)?,
        website: text(r, 6)?,
        use_case: text(r, 7)?,
        markets: words(8)?,
        products: words(9)?,
        report_json: text(r, 10)?,
        decided_at_ms: r.int(11)?,
        decided_by: r.int(12)?,
        comment: opt_text(r, 13)?,
    })
}

/// The `callback_attempts` columns [`callback_attempt`] reads.
pub const ATTEMPT_COLUMNS: &str = "outbox_id, reference_id, attempt, at_ms, url, method, \
     status_code, latency_ms, error, retry_at_ms";

pub fn callback_attempt(r: &impl Row) -> Result<CallbackAttempt, StoreError> {
    Ok(CallbackAttempt {
        outbox_id: int(r, 0)?,
        reference_id: uuid(r, 1)?,
        attempt: count(r, 2)?,
        at_ms: int(r, 3)?,
        url: text(r, 4)?,
        method: parsed(r, 5, "method", CallbackMethod::parse)?,
        status_code: r
            .int(6)?
            .map(|s| u16::try_from(s).map_err(|_| bad("status code", &s.to_string())))
            .transpose()?,
        latency_ms: int(r, 7)?,
        error: opt_text(r, 8)?,
        retry_at_ms: r.int(9)?,
    })
}

/// The `outbox` columns [`outbox_record`] reads (the portal's view of a callback).
pub const OUTBOX_RECORD_COLUMNS: &str = "id, url, method, body, state, attempts";

pub fn outbox_record(r: &impl Row) -> Result<OutboxRecord, StoreError> {
    Ok(OutboxRecord {
        id: int(r, 0)?,
        url: text(r, 1)?,
        method: text(r, 2)?,
        body: text(r, 3)?,
        state: text(r, 4)?,
        attempts: count(r, 5)?,
    })
}

/// The `api_keys` columns [`api_key_info`] reads.
pub const API_KEY_COLUMNS: &str = "id, api_user, created_at_ms, revoked_at_ms, ending";

pub fn api_key_info(r: &impl Row) -> Result<ApiKeyInfo, StoreError> {
    Ok(ApiKeyInfo {
        id: int(r, 0)?,
        api_user: uuid(r, 1)?,
        created_at_ms: int(r, 2)?,
        revoked_at_ms: r.int(3)?,
        ending: r.text(4)?.map(str::to_owned),
    })
}

/// One currency's sums over the accounts: `currency` and the sums of `debits_posted`,
/// `credits_posted`, `debits_pending` and `credits_pending`, in that order.
pub fn currency_totals(r: &impl Row) -> Result<CurrencyTotals, StoreError> {
    Ok(CurrencyTotals {
        currency: text(r, 0)?,
        debits_posted: int(r, 1)?,
        credits_posted: int(r, 2)?,
        debits_pending: int(r, 3)?,
        credits_pending: int(r, 4)?,
    })
}

/// One bucket of the reports: bucket number, product, status, currency, count, sum of the
/// amounts and operation, in that order.
pub fn stats_row(r: &impl Row) -> Result<StatsRow, StoreError> {
    Ok(StatsRow {
        bucket: int(r, 0)?,
        product: parsed(r, 1, "product", Product::parse)?,
        status: parsed(r, 2, "status", PaymentStatus::parse)?,
        currency: text(r, 3)?,
        count: int(r, 4)?.max(0) as u64,
        amount_minor: int(r, 5)?,
        kind: parsed(r, 6, "kind", PaymentKind::parse)?,
    })
}

/// A count of payments by product, operation and status: kind, status, count and
/// product, in that order.
pub fn kind_count(r: &impl Row) -> Result<KindCount, StoreError> {
    Ok(KindCount {
        kind: parsed(r, 0, "kind", PaymentKind::parse)?,
        status: parsed(r, 1, "status", PaymentStatus::parse)?,
        count: int(r, 2)?.max(0) as u64,
        product: parsed(r, 3, "product", Product::parse)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A row of plain values: text, integers, or NULL.
    struct Values(Vec<Option<&'static str>>);

    impl Row for Values {
        fn text(&self, i: usize) -> Result<Option<&str>, StoreError> {
            Ok(self.0[i])
        }
        fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
            self.0[i]
                .map(|v| v.parse().map_err(|_| bad("integer", v)))
                .transpose()
        }
        fn bytes(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
            Ok(self.0[i].map(str::as_bytes))
        }
        fn flag(&self, i: usize) -> Result<Option<bool>, StoreError> {
            Ok(self.int(i)?.map(|n| n != 0))
        }
    }

    fn clock_row(api_user: &'static str) -> Values {
        Values(vec![
            Some("6a2f41a3-c54c-fce8-32d2-0324e1c32e22"),
            Some("7"),
            Some(api_user),
            Some("renewals"),
            Some("1767225600000"),
            Some("1767225600000"),
        ])
    }

    #[test]
    fn a_row_is_read_and_a_value_it_cannot_read_is_refused_by_name() {
        let clock = test_clock(&clock_row("f1b0c3a4-0000-4000-8000-000000000001")).unwrap();
        assert_eq!((clock.developer_id, clock.name.as_str()), (7, "renewals"));
        let e = test_clock(&clock_row("not-a-uuid")).unwrap_err();
        assert_eq!(e.0, r#"bad uuid "not-a-uuid" in the database"#);
        let mut missing = clock_row("f1b0c3a4-0000-4000-8000-000000000001");
        missing.0[3] = None;
        assert!(
            test_clock(&missing)
                .unwrap_err()
                .0
                .contains("column 3 is NULL")
        );
        assert_eq!(
            owner(&Values(vec![Some("vault:1")]), 0).unwrap_err().0,
            r#"bad account owner "vault:1" in the database"#
        );
    }

    #[test]
    fn account_owners_read_back_as_written() {
        let api_user = Uuid::new_v4();
        for o in [
            AccountOwner::Funding,
            AccountOwner::Wallet("MSISDN:256770000001".to_owned()),
            AccountOwner::Partner {
                api_user,
                product: Product::Collection,
            },
            AccountOwner::ShortCode {
                api_user,
                code: "000001".to_owned(),
            },
        ] {
            assert_eq!(AccountOwner::parse(&o.key()), Some(o));
        }
        assert_eq!(AccountOwner::parse("partner:nope:collection"), None);
    }

    #[test]
    fn a_column_list_is_qualified_for_a_join() {
        assert_eq!(
            prefixed("id, api_user,\n name", "p"),
            "p.id, p.api_user, p.name"
        );
    }
}
