//! The platform's nouns: products, parties, API users, payments and callbacks.
//!
//! These are provider-neutral. A dialect parses its wire format into them and renders them
//! back; the store persists them.

use mkoba_ledger::{Currency, Money};
use uuid::Uuid;

/// A product: the three MoMo API families (each with its own subscription keys, tokens and
/// partner accounts), the MoMo Collection Widget (its own subscription keys; its payments
/// are Collection invoices) and the M-Pesa OpenAPI (one application per developer,
/// short-code accounts).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Product {
    Collection,
    Disbursement,
    Remittance,
    Mpesa,
    /// The MoMo Collection Widget: a subscribable product with its own primary and
    /// secondary keys, but no API family of its own (no path prefix, no token endpoint).
    CollectionWidget,
}

impl Product {
    /// The MoMo products (those with subscription keys), in display order; the Collection
    /// Widget, added last, comes after the three API families so that existing listings
    /// keep their order.
    pub const ALL: [Product; 4] = [
        Product::Collection,
        Product::Disbursement,
        Product::Remittance,
        Product::CollectionWidget,
    ];

    /// The MoMo API families: the products with their own path prefix (`/{product}`),
    /// token endpoint and partner accounts.
    pub const APIS: [Product; 3] = [
        Product::Collection,
        Product::Disbursement,
        Product::Remittance,
    ];

    /// Every product payments are reported under: the MoMo products, then M-Pesa.
    pub const REPORTED: [Product; 4] = [
        Product::Collection,
        Product::Disbursement,
        Product::Remittance,
        Product::Mpesa,
    ];

    /// The lower-case name used in paths and storage.
    pub fn as_str(self) -> &'static str {
        match self {
            Product::Collection => "collection",
            Product::Disbursement => "disbursement",
            Product::Remittance => "remittance",
            Product::Mpesa => "mpesa",
            Product::CollectionWidget => "collection_widget",
        }
    }

    /// The name shown to people (portal pages, the start banner).
    pub fn display_name(self) -> &'static str {
        match self {
            Product::Collection => "Collection",
            Product::Disbursement => "Disbursement",
            Product::Remittance => "Remittance",
            Product::Mpesa => "M-Pesa",
            Product::CollectionWidget => "Collection Widget",
        }
    }

    /// Parses [`Product::as_str`].
    pub fn parse(s: &str) -> Option<Product> {
        Product::REPORTED
            .into_iter()
            .chain([Product::CollectionWidget])
            .find(|p| p.as_str() == s)
    }
}

/// How a party is identified.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PartyIdType {
    Msisdn,
    Email,
    PartyCode,
}

impl PartyIdType {
    /// The upper-case wire name (`MSISDN`, `EMAIL`, `PARTY_CODE`).
    pub fn as_str(self) -> &'static str {
        match self {
            PartyIdType::Msisdn => "MSISDN",
            PartyIdType::Email => "EMAIL",
            PartyIdType::PartyCode => "PARTY_CODE",
        }
    }

    /// Parses the wire name, ignoring case (paths use lower case, bodies upper case).
    pub fn parse_ignore_case(s: &str) -> Option<PartyIdType> {
        [
            PartyIdType::Msisdn,
            PartyIdType::Email,
            PartyIdType::PartyCode,
        ]
        .into_iter()
        .find(|t| t.as_str().eq_ignore_ascii_case(s))
    }
}

/// A payer or payee.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Party {
    pub id_type: PartyIdType,
    pub id: String,
}

impl Party {
    /// The stable key of this party's wallet, e.g. `MSISDN:46733123450`.
    pub fn wallet_key(&self) -> String {
        format!("{}:{}", self.id_type.as_str(), self.id)
    }
}

/// A sandbox or production API user, identified by the UUID the partner chose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiUser {
    pub id: Uuid,
    pub developer_id: i64,
    pub provider_callback_host: String,
    pub target_environment: String,
    pub created_at_ms: i64,
}

/// An API user's Collection Widget settings, set in the portal: the web origins allowed to
/// use the widget with this API user, and where the widget's payments call back.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WidgetSettings {
    /// Allowed `Origin` values; `None` until a list is set (an empty list is a list).
    pub allowed_origins: Option<Vec<String>>,
    /// The callback URL of the widget's payments; `None` when there is none.
    pub callback_url: Option<String>,
    /// When the settings were last written (ms since the epoch).
    pub updated_at_ms: i64,
}

/// One subscription key of a developer account.
#[derive(Clone, PartialEq, Eq)]
pub struct SubscriptionKey {
    pub developer_id: i64,
    pub product: Product,
    /// `primary` or `secondary`.
    pub slot: KeySlot,
    pub key: String,
}

impl std::fmt::Debug for SubscriptionKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionKey")
            .field("developer_id", &self.developer_id)
            .field("product", &self.product)
            .field("slot", &self.slot)
            .field("key", &"<redacted>")
            .finish()
    }
}

/// Which of a product's two subscription keys.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum KeySlot {
    Primary,
    Secondary,
}

impl KeySlot {
    /// `primary` or `secondary`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeySlot::Primary => "primary",
            KeySlot::Secondary => "secondary",
        }
    }

    /// Parses [`KeySlot::as_str`].
    pub fn parse(s: &str) -> Option<KeySlot> {
        match s {
            "primary" => Some(KeySlot::Primary),
            "secondary" => Some(KeySlot::Secondary),
            _ => None,
        }
    }
}

/// What kind of money movement a payment is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentKind {
    /// Collection: the payer is asked to pay the partner.
    RequestToPay,
    /// Collection: a cash-out the payer authorises; money also flows payer → partner.
    RequestToWithdraw,
    /// Disbursement or remittance: the partner pays a payee.
    Transfer,
    /// Disbursement: the partner deposits into a payee's wallet.
    Deposit,
    /// Disbursement: the partner pays back (part of) a collection.
    Refund,
    /// Remittance: a cross-border cash transfer to a payee.
    CashTransfer,
    /// Collection v2: an invoice the intended payer pays.
    Invoice,
    /// Collection v2: a payer's mandate for later debits; moves no money.
    PreApproval,
    /// Collection v2: a bill or airtime payment by a customer (`CreatePayments`).
    BillPayment,
    /// M-Pesa: a customer pays a business short code (C2B single stage).
    MpesaC2b,
    /// M-Pesa: a business short code pays a customer (B2C).
    MpesaB2c,
    /// M-Pesa: one business short code pays another (B2B); the party is the receiver's
    /// `PARTY_CODE`.
    MpesaB2b,
    /// M-Pesa: (part of) a settled M-Pesa transaction moved back; `refund_of` names it.
    MpesaReversal,
    /// M-Pesa: a direct-debit mandate the customer confirms; moves no money.
    MpesaMandate,
    /// M-Pesa: a payment collected under a direct-debit mandate.
    MpesaDirectDebit,
}

impl PaymentKind {
    /// Every kind.
    pub const ALL: [PaymentKind; 15] = [
        PaymentKind::RequestToPay,
        PaymentKind::RequestToWithdraw,
        PaymentKind::Transfer,
        PaymentKind::Deposit,
        PaymentKind::Refund,
        PaymentKind::CashTransfer,
        PaymentKind::Invoice,
        PaymentKind::PreApproval,
        PaymentKind::BillPayment,
        PaymentKind::MpesaC2b,
        PaymentKind::MpesaB2c,
        PaymentKind::MpesaB2b,
        PaymentKind::MpesaReversal,
        PaymentKind::MpesaMandate,
        PaymentKind::MpesaDirectDebit,
    ];

    /// The stable name used in storage, paths and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentKind::RequestToPay => "requesttopay",
            PaymentKind::RequestToWithdraw => "requesttowithdraw",
            PaymentKind::Transfer => "transfer",
            PaymentKind::Deposit => "deposit",
            PaymentKind::Refund => "refund",
            PaymentKind::CashTransfer => "cashtransfer",
            PaymentKind::Invoice => "invoice",
            PaymentKind::PreApproval => "preapproval",
            PaymentKind::BillPayment => "payment",
            PaymentKind::MpesaC2b => "c2b",
            PaymentKind::MpesaB2c => "b2c",
            PaymentKind::MpesaB2b => "b2b",
            PaymentKind::MpesaReversal => "reversal",
            PaymentKind::MpesaMandate => "mandate",
            PaymentKind::MpesaDirectDebit => "directdebit",
        }
    }

    /// Parses [`PaymentKind::as_str`].
    pub fn parse(s: &str) -> Option<PaymentKind> {
        PaymentKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// The kinds the stores find by party (`payments_of_party`): a payer's pre-approvals,
    /// and the direct debits already taken under a mandate. Only their rows enter the
    /// party index, so the payments that make up the traffic (request-to-pay and the rest)
    /// do not pay for it.
    pub const BY_PARTY: [PaymentKind; 2] =
        [PaymentKind::PreApproval, PaymentKind::MpesaDirectDebit];

    /// The condition on `kind` of the stores' party index, as SQL: a query by party says it
    /// too, so the database knows the index covers it.
    pub const BY_PARTY_SQL: &'static str = "kind IN ('preapproval', 'directdebit')";

    /// Money flows from the party's wallet to the partner (a collection); otherwise from the
    /// partner to the party (a payout).
    pub fn is_collection(self) -> bool {
        matches!(
            self,
            PaymentKind::RequestToPay
                | PaymentKind::RequestToWithdraw
                | PaymentKind::Invoice
                | PaymentKind::BillPayment
                | PaymentKind::MpesaC2b
                | PaymentKind::MpesaDirectDebit
        )
    }

    /// Whether settling it moves money on the ledger (a pre-approval or a mandate does
    /// not).
    pub fn moves_money(self) -> bool {
        !matches!(self, PaymentKind::PreApproval | PaymentKind::MpesaMandate)
    }

    /// Whether it is an operation of the M-Pesa OpenAPI.
    pub fn is_mpesa(self) -> bool {
        matches!(
            self,
            PaymentKind::MpesaC2b
                | PaymentKind::MpesaB2c
                | PaymentKind::MpesaB2b
                | PaymentKind::MpesaReversal
                | PaymentKind::MpesaMandate
                | PaymentKind::MpesaDirectDebit
        )
    }

    /// Whether an M-Pesa reversal may name it: a money movement that is not itself a
    /// reversal.
    pub fn is_reversible(self) -> bool {
        matches!(
            self,
            PaymentKind::MpesaC2b
                | PaymentKind::MpesaB2c
                | PaymentKind::MpesaB2b
                | PaymentKind::MpesaDirectDebit
        )
    }

    /// Whether a refund may name it: money a payer paid the partner.
    pub fn is_refundable(self) -> bool {
        matches!(
            self,
            PaymentKind::RequestToPay | PaymentKind::RequestToWithdraw | PaymentKind::Invoice
        )
    }
}

/// Where a payment is in its lifecycle.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PaymentStatus {
    Pending,
    Successful,
    Failed,
}

impl PaymentStatus {
    /// The upper-case wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            PaymentStatus::Pending => "PENDING",
            PaymentStatus::Successful => "SUCCESSFUL",
            PaymentStatus::Failed => "FAILED",
        }
    }

    /// Parses [`PaymentStatus::as_str`].
    pub fn parse(s: &str) -> Option<PaymentStatus> {
        match s {
            "PENDING" => Some(PaymentStatus::Pending),
            "SUCCESSFUL" => Some(PaymentStatus::Successful),
            "FAILED" => Some(PaymentStatus::Failed),
            _ => None,
        }
    }

    /// SUCCESSFUL and FAILED never change again.
    pub fn is_final(self) -> bool {
        !matches!(self, PaymentStatus::Pending)
    }
}

/// HTTP method of a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallbackMethod {
    Put,
    Post,
}

impl CallbackMethod {
    /// `PUT` or `POST`.
    pub fn as_str(self) -> &'static str {
        match self {
            CallbackMethod::Put => "PUT",
            CallbackMethod::Post => "POST",
        }
    }

    /// Parses `PUT` or `POST`, ignoring case.
    pub fn parse(s: &str) -> Option<CallbackMethod> {
        if s.eq_ignore_ascii_case("PUT") {
            Some(CallbackMethod::Put)
        } else if s.eq_ignore_ascii_case("POST") {
            Some(CallbackMethod::Post)
        } else {
            None
        }
    }
}

/// A payment as the partner asked for it, before the platform accepted it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewPayment {
    pub reference_id: Uuid,
    pub kind: PaymentKind,
    pub product: Product,
    pub api_user: Uuid,
    pub environment: String,
    pub amount: Money,
    pub external_id: Option<String>,
    pub party: Party,
    pub payer_message: Option<String>,
    pub payee_note: Option<String>,
    pub callback_url: Option<String>,
    /// The callback method this operation uses; `None` for the platform's default.
    pub callback_method: Option<CallbackMethod>,
    /// For a refund: the collection it pays back.
    pub refund_of: Option<Uuid>,
    /// Operation-specific wire fields the platform keeps but does not interpret (a cash
    /// transfer's originating country and payer identity), as a JSON object.
    pub details: Option<String>,
    /// When a payer who has not acted by then makes it fail with `EXPIRED` (an invoice's
    /// validity).
    pub expires_at_ms: Option<i64>,
    /// M-Pesa: the business short code on the partner's side (the payee of a C2B, the payer
    /// of a B2C, the debited party of a B2B).
    pub short_code: Option<String>,
    /// A direct debit: the mandate it is collected under, whose schedule the writer holds
    /// it to.
    pub mandate: Option<MandateTerms>,
}

/// The mandate a direct debit is collected under, as the writer checks it: in its pass,
/// after taking in what other nodes committed, so two payments under one mandate are
/// never both let through, on one node or several.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MandateTerms {
    /// The mandate's own payment id: the writer takes the payment only while the mandate is
    /// active (not cancelled meanwhile).
    pub mandate: Uuid,
    /// The mandate's reference (`input_ThirdPartyReference`); its payments carry it as
    /// their payee note.
    pub reference: String,
    /// The mandate's schedule: `frequency` and the range of days
    /// ([`crate::schedule::allows`]).
    pub details: serde_json::Value,
}

/// A payment and its current state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Payment {
    pub reference_id: Uuid,
    pub kind: PaymentKind,
    pub product: Product,
    pub api_user: Uuid,
    pub environment: String,
    pub amount: Money,
    pub external_id: Option<String>,
    pub party: Party,
    pub payer_message: Option<String>,
    pub payee_note: Option<String>,
    pub callback_url: Option<String>,
    pub callback_method: Option<CallbackMethod>,
    pub refund_of: Option<Uuid>,
    pub details: Option<String>,
    pub expires_at_ms: Option<i64>,
    pub short_code: Option<String>,
    pub status: PaymentStatus,
    /// The failure reason code (`APPROVAL_REJECTED`, `NOT_ENOUGH_FUNDS`, …) once FAILED. Set
    /// while PENDING when the outcome was already decided at acceptance (a refund larger
    /// than what remains); dialects show it only once FAILED.
    pub reason: Option<crate::reason::FailureReason>,
    /// The platform's numeric transaction id once SUCCESSFUL.
    pub financial_transaction_id: Option<String>,
    pub created_at_ms: i64,
    pub settled_at_ms: Option<i64>,
    /// When the settlement worker decides it; `None` while it waits for ever (a scenario
    /// that stays PENDING).
    pub settle_at_ms: Option<i64>,
    /// The ledger transfer that reserves or moved the money.
    pub transfer_id: Option<u64>,
    /// Delivery notifications sent for it.
    pub notifications: u32,
}

impl Payment {
    /// Whether this payment, when due at once on real time, is settled in the pass that
    /// accepts it, so that its acceptance and its outcome are one commit: an M-Pesa
    /// operation whose caller waits for the outcome (no result URL), as the real API
    /// answers it. Every other payment is reserved when accepted and settled in a later
    /// commit (so is one on a test clock: the engine and the portal ask the clocks).
    pub fn settles_with_acceptance(&self) -> bool {
        self.kind.is_mpesa() && self.callback_url.is_none()
    }

    /// A freshly accepted payment.
    pub fn accepted(new: NewPayment, now_ms: i64, settle_at_ms: Option<i64>) -> Payment {
        Payment {
            reference_id: new.reference_id,
            kind: new.kind,
            product: new.product,
            api_user: new.api_user,
            environment: new.environment,
            amount: new.amount,
            external_id: new.external_id,
            party: new.party,
            payer_message: new.payer_message,
            payee_note: new.payee_note,
            callback_url: new.callback_url,
            callback_method: new.callback_method,
            refund_of: new.refund_of,
            details: new.details,
            expires_at_ms: new.expires_at_ms,
            short_code: new.short_code,
            status: PaymentStatus::Pending,
            reason: None,
            financial_transaction_id: None,
            created_at_ms: now_ms,
            settled_at_ms: None,
            settle_at_ms,
            transfer_id: None,
            notifications: 0,
        }
    }

    /// The payment's currency.
    pub fn currency(&self) -> Currency {
        self.amount.currency()
    }

    /// When an approved pre-approval stops being valid: its approval time plus its
    /// `validityTime`. `None` for anything else, or a pre-approval valid until cancelled.
    pub fn pre_approval_expiry_ms(&self) -> Option<i64> {
        if self.kind != PaymentKind::PreApproval || self.status != PaymentStatus::Successful {
            return None;
        }
        let details: serde_json::Value = serde_json::from_str(self.details.as_deref()?).ok()?;
        let secs = details["validityTime"].as_i64()?;
        self.settled_at_ms?.checked_add(secs.checked_mul(1000)?)
    }
}

/// Who owns a ledger account.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AccountOwner {
    /// Mints the sandbox's opening balances; unbounded.
    Funding,
    /// A customer's wallet, by [`Party::wallet_key`].
    Wallet(String),
    /// A partner's account for one product.
    Partner { api_user: Uuid, product: Product },
    /// An M-Pesa business short code of one application (by the application's API user id).
    ShortCode { api_user: Uuid, code: String },
}

impl AccountOwner {
    /// How the key ([`AccountOwner::key`]) of a customer wallet begins.
    pub const WALLET_PREFIX: &'static str = "wallet:";

    /// The stable text key stored with the account.
    pub fn key(&self) -> String {
        match self {
            AccountOwner::Funding => "funding".to_owned(),
            AccountOwner::Wallet(k) => format!("{}{k}", Self::WALLET_PREFIX),
            AccountOwner::Partner { api_user, product } => {
                format!("partner:{api_user}:{}", product.as_str())
            }
            AccountOwner::ShortCode { api_user, code } => format!("shortcode:{api_user}:{code}"),
        }
    }

    /// The owner a stored key ([`AccountOwner::key`]) names.
    pub fn parse(key: &str) -> Option<AccountOwner> {
        if key == "funding" {
            return Some(AccountOwner::Funding);
        }
        if let Some(w) = key.strip_prefix(Self::WALLET_PREFIX) {
            return Some(AccountOwner::Wallet(w.to_owned()));
        }
        if let Some(rest) = key.strip_prefix("partner:") {
            let (user, product) = rest.split_once(':')?;
            return Some(AccountOwner::Partner {
                api_user: Uuid::parse_str(user).ok()?,
                product: Product::parse(product)?,
            });
        }
        let (user, code) = key.strip_prefix("shortcode:")?.split_once(':')?;
        Some(AccountOwner::ShortCode {
            api_user: Uuid::parse_str(user).ok()?,
            code: code.to_owned(),
        })
    }
}

/// A callback waiting to be sent, committed with the state change that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub id: i64,
    pub reference_id: Uuid,
    pub url: String,
    pub method: CallbackMethod,
    pub body: String,
    /// Attempts already made.
    pub attempts: u32,
    pub next_attempt_at_ms: i64,
}

/// A callback URL as pages and the admin API show it: a password it carries (sent as
/// HTTP Basic authentication) is `***`, the user name kept, so that a screen or a pasted
/// transaction shows where the callback went without the secret.
pub fn shown_url(url: &str) -> std::borrow::Cow<'_, str> {
    let Some(start) = url.find("://").map(|i| i + 3) else {
        return url.into();
    };
    let authority_end = url[start..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| start + i);
    let authority = &url[start..authority_end];
    let Some(at) = authority.rfind('@') else {
        return url.into();
    };
    match authority[..at].find(':') {
        Some(colon) => format!("{}***{}", &url[..start + colon + 1], &url[start + at..]).into(),
        None => url.into(),
    }
}

/// One try at delivering a callback.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallbackAttempt {
    pub outbox_id: i64,
    pub reference_id: Uuid,
    pub attempt: u32,
    pub at_ms: i64,
    pub url: String,
    pub method: CallbackMethod,
    pub status_code: Option<u16>,
    pub latency_ms: i64,
    /// Why no answer came (`status_code` `None`), or the start of the body of an answer
    /// that refused the callback (not 2xx), as the dispatcher keeps it.
    pub error: Option<String>,
    /// When to try again; `None` when this was the last attempt.
    pub retry_at_ms: Option<i64>,
}

/// The state of the outbox row after an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    Pending,
    Delivered,
    Failed,
}

impl OutboxState {
    /// The stable name stored.
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Failed => "failed",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_callback_urls_password_is_not_shown() {
        assert_eq!(
            shown_url("http://shop:s%40c@h.io:9/cb?x=a:b@c"),
            "http://shop:***@h.io:9/cb?x=a:b@c"
        );
        assert_eq!(shown_url("https://u@h.io/cb"), "https://u@h.io/cb");
        assert_eq!(
            shown_url("https://h.io/cb?u=a:b@c"),
            "https://h.io/cb?u=a:b@c"
        );
        assert_eq!(shown_url("https://:p@[::1]:8/"), "https://:***@[::1]:8/");
        assert_eq!(shown_url("not a url"), "not a url");
    }

    #[test]
    fn the_party_index_condition_names_exactly_the_kinds_found_by_party() {
        let named: Vec<PaymentKind> = PaymentKind::ALL
            .into_iter()
            .filter(|k| PaymentKind::BY_PARTY_SQL.contains(&format!("'{}'", k.as_str())))
            .collect();
        assert_eq!(named, PaymentKind::BY_PARTY);
    }

    #[test]
    fn every_product_parses_from_its_name() {
        for p in Product::ALL.into_iter().chain(Product::REPORTED) {
            assert_eq!(Product::parse(p.as_str()), Some(p));
        }
        assert_eq!(
            Product::parse("collection_widget"),
            Some(Product::CollectionWidget)
        );
        assert_eq!(
            Product::CollectionWidget.display_name(),
            "Collection Widget"
        );
        assert_eq!(Product::parse("Collection"), None);
        assert_eq!(Product::parse("widget"), None);
    }

    #[test]
    fn the_widget_has_keys_but_no_api_family() {
        assert_eq!(
            Product::ALL,
            [
                Product::Collection,
                Product::Disbursement,
                Product::Remittance,
                Product::CollectionWidget
            ]
        );
        assert!(!Product::APIS.contains(&Product::CollectionWidget));
        assert!(Product::APIS.iter().all(|p| Product::ALL.contains(p)));
        assert!(!Product::REPORTED.contains(&Product::CollectionWidget));
    }
}
