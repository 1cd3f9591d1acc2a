//! Payments: accepted, read, cancelled and settled through [`Payments`], with their callbacks
//! and ledger postings.

use crate::engine::Command;
use crate::model;
use crate::model::{AccountOwner, CallbackAttempt, NewPayment, OutboxItem, Payment, Product};
use crate::{CancelError, CreateError, Internal, NotifyError, Payments, store};
use mkoba_ledger::{Account, Currency};
use uuid::Uuid;

impl Payments<'_> {
    /// Accepts a payment durably: returns once it is committed.
    pub async fn create(self, payment: NewPayment) -> Result<(), CreateError> {
        self.call(
            |r| Command::CreatePayment(payment, r),
            Err(CreateError::Unavailable),
        )
        .await
    }

    /// A payment by reference id.
    pub async fn get(self, id: &Uuid) -> Result<Option<Payment>, Internal> {
        let id = id.to_owned();
        self.inner.reads.read(move |r| r.payment(&id)).await
    }

    /// The refunds or reversals of a payment, oldest first (at most
    /// [`crate::store::REFUNDS_SHOWN`]).
    pub async fn refunds_of(self, original: &Uuid) -> Result<Vec<Payment>, Internal> {
        let original = original.to_owned();
        self.inner
            .reads
            .read(move |r| r.refunds_of(&original))
            .await
    }

    /// Records a delivery notification for a successful payment of this API user.
    pub async fn notify_delivery(
        self,
        reference_id: Uuid,
        api_user: Uuid,
    ) -> Result<(), NotifyError> {
        self.call(
            |reply| Command::Notify {
                reference_id,
                api_user,
                reply,
            },
            Err(NotifyError::Internal),
        )
        .await
    }

    /// The partner's account for a product in a currency (`None` before its first payment).
    pub async fn partner_account(
        self,
        api_user: Uuid,
        product: Product,
        currency: Currency,
    ) -> Result<Option<Account>, Internal> {
        self.inner
            .reads
            .read(move |r| r.account(&AccountOwner::Partner { api_user, product }, currency))
            .await
    }

    /// A customer's wallet (`None` before first use).
    pub async fn wallet(
        self,
        wallet_key: &str,
        currency: Currency,
    ) -> Result<Option<Account>, Internal> {
        let wallet_key = wallet_key.to_owned();
        self.inner
            .reads
            .read(move |r| r.account(&AccountOwner::Wallet(wallet_key), currency))
            .await
    }

    /// What a customer's wallet holds available now, in minor units: a wallet not used yet
    /// holds the configured opening balance, which the writer gives it on first use.
    pub async fn wallet_available(
        self,
        wallet_key: &str,
        currency: Currency,
    ) -> Result<i64, Internal> {
        let opening = || {
            mkoba_ledger::Money::parse_positive(&self.inner.config.opening_balance, currency)
                .map_or(0, |m| m.minor())
        };
        Ok(match self.wallet(wallet_key, currency).await? {
            Some(account) => account.available(),
            None => opening(),
        })
    }

    /// Every callback attempt for a payment.
    pub async fn callback_attempts(self, id: &Uuid) -> Result<Vec<CallbackAttempt>, Internal> {
        let id = id.to_owned();
        self.inner
            .reads
            .read(move |r| r.callback_attempts(&id))
            .await
    }

    /// Ledger transfers of a payment.
    pub async fn transfers_for(self, id: &Uuid) -> Result<Vec<mkoba_ledger::Transfer>, Internal> {
        let id = id.to_owned();
        self.inner.reads.read(move |r| r.transfers_for(&id)).await
    }

    /// Per currency, the sums of debits and credits over every account.
    pub async fn ledger_totals(self) -> Result<Vec<store::CurrencyTotals>, Internal> {
        self.inner.reads.read(move |r| r.ledger_totals()).await
    }

    /// Cancels a pending invoice or pre-approval, or an approved pre-approval; its callback
    /// goes to `callback_url` when the cancelling request gave one, else to the payment's.
    pub async fn cancel(
        self,
        reference_id: Uuid,
        api_user: Uuid,
        kind: model::PaymentKind,
        callback_url: Option<String>,
    ) -> Result<(), CancelError> {
        self.call(
            |reply| Command::Cancel {
                reference_id,
                api_user,
                kind,
                callback_url,
                reply,
            },
            Err(CancelError::Internal),
        )
        .await
    }

    /// Payments of an API user with a party, of one kind (pre-approvals of a payer).
    pub async fn of_party(
        self,
        api_user: &Uuid,
        kind: model::PaymentKind,
        party: &model::Party,
    ) -> Result<Vec<Payment>, Internal> {
        let api_user = api_user.to_owned();
        let party = party.to_owned();
        self.inner
            .reads
            .read(move |r| r.payments_of_party(&api_user, kind, &party))
            .await
    }

    /// Records a callback attempt; `false` when it could not be committed (the outbox row
    /// then stays as it was: pending).
    pub async fn record_attempt(self, attempt: CallbackAttempt) -> bool {
        self.call_reserved(|reply| Command::RecordAttempt(attempt, reply), false)
            .await
    }

    /// The callback `id`, if this node delivers it and it is still pending: what the
    /// dispatcher reads again after its node's lease lapsed ([`crate::lease`]).
    pub async fn pending_callback(self, id: i64) -> Result<Option<OutboxItem>, Internal> {
        self.call_reserved(
            |reply| Command::PendingCallback { id, reply },
            Err(Internal::Failed),
        )
        .await
    }

    /// Up to `limit` callbacks of this node still pending, with ids above `after_id`, in id
    /// order: the dispatcher's sweep ([`crate::outbox`]).
    pub async fn pending_callbacks(
        self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, Internal> {
        self.call_reserved(
            |reply| Command::PendingCallbacks {
                after_id,
                limit,
                reply,
            },
            Err(Internal::Failed),
        )
        .await
    }
}
