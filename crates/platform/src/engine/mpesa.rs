//! The writer's side of the M-Pesa OpenAPI: application rows (API key renewals and
//! settings, read-your-writes within a pass), the accounts each M-Pesa operation moves
//! money between, and the checks that make a reversal safe (never more than remains of a
//! settled transaction of the same application) and a direct debit safe (never more than
//! its mandate's schedule allows).

use mkoba_ledger::AccountId;
use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Engine, Pass, defer};
use crate::model::{AccountOwner, MandateTerms, NewPayment, Payment, PaymentKind, PaymentStatus};
use crate::mpesa::{MpesaApp, MpesaAppSettings};
use crate::store::StoreError;
use crate::{CreateError, Internal};

/// M-Pesa work for the writer.
pub(crate) enum MpesaCommand {
    RenewKey {
        developer_id: i64,
        api_key_hash: [u8; 32],
        api_key: Option<String>,
        reply: oneshot::Sender<Result<(), Internal>>,
    },
    Settings {
        developer_id: i64,
        settings: MpesaAppSettings,
        reply: oneshot::Sender<Result<(), Internal>>,
    },
}

/// Why a reversal is refused at once (the dialect maps these to INS codes).
pub mod refusal {
    /// No transaction of this application with that id.
    pub const NOT_FOUND: &str = "TRANSACTION_NOT_FOUND";
    /// The transaction belongs to another application.
    pub const NOT_YOURS: &str = "NOT_YOURS";
    /// Not a settled money movement (pending, failed, a reversal, a mandate).
    pub const NOT_REVERSIBLE: &str = "NOT_REVERSIBLE";
    /// More than what remains of the original after earlier reversals.
    pub const AMOUNT_EXCEEDS: &str = "AMOUNT_EXCEEDS";
    /// A text of the payment holds a NUL character, which PostgreSQL cannot store: let into
    /// a group commit, it would fail every other request of the pass. The dialects'
    /// checks refuse such input first; this is the writer's own guard.
    pub const TEXT_WITH_NUL: &str = "TEXT_WITH_NUL";
    /// A direct debit outside its mandate's schedule, counting every payment under the
    /// mandate accepted before it (on any node).
    pub const OFF_SCHEDULE: &str = "OFF_SCHEDULE";
    /// A direct debit under a mandate that is no longer active: cancelled after the
    /// dialect read it, before the payment reached the writer.
    pub const MANDATE_INACTIVE: &str = "MANDATE_INACTIVE";
}

impl Engine {
    /// Whether a direct debit's mandate is still active: not cancelled by a commit since the
    /// dialect read it, nor earlier in this pass.
    pub(super) fn mandate_active(
        &mut self,
        pass: &Pass,
        terms: &MandateTerms,
    ) -> Result<bool, StoreError> {
        if pass.failed_in_pass(&terms.mandate) {
            return Ok(false);
        }
        Ok(self
            .journal
            .payment(&terms.mandate)?
            .is_some_and(|m| m.status == PaymentStatus::Successful))
    }

    /// Whether a direct debit keeps to its mandate's schedule, given the payments under
    /// the mandate that did not fail: those committed (by this node or, on a shared store,
    /// by another, taken in before this pass) and those accepted earlier in this pass. The
    /// dialect checked the same before sending it; this is the check two payments sent at
    /// once, to one node or two, cannot both pass.
    pub(super) fn keeps_to_schedule(
        &mut self,
        pass: &Pass,
        new: &NewPayment,
        terms: &MandateTerms,
        now: i64,
    ) -> Result<bool, StoreError> {
        if !crate::schedule::counts_earlier(&terms.details) {
            return Ok(crate::schedule::allows(&terms.details, now, &[]));
        }
        // A mandate is its environment's and market's (currency): another place's mandate
        // with the same reference and customer has payments of its own.
        let under = |p: &Payment| {
            p.api_user == new.api_user
                && p.kind == PaymentKind::MpesaDirectDebit
                && p.party == new.party
                && p.payee_note.as_deref() == Some(terms.reference.as_str())
                && p.environment == new.environment
                && p.currency() == new.amount.currency()
                && p.status != PaymentStatus::Failed
        };
        let committed = self.journal.payments_of_party(
            &new.api_user,
            PaymentKind::MpesaDirectDebit,
            &new.party,
        )?;
        let earlier: Vec<i64> = committed
            .iter()
            .chain(&pass.batch.new_payments)
            .filter(|p| under(p))
            .map(|p| p.created_at_ms)
            .collect();
        Ok(crate::schedule::allows(&terms.details, now, &earlier))
    }

    pub(super) fn apply_mpesa(&mut self, pass: &mut Pass, command: MpesaCommand, now: i64) {
        match command {
            MpesaCommand::RenewKey {
                developer_id,
                api_key_hash,
                api_key,
                reply,
            } => {
                let result = self.app_to_change(pass, developer_id, now).map(|mut app| {
                    app.api_key_hash = api_key_hash;
                    app.api_key_created_at_ms = now;
                    app.api_key = api_key;
                    pass.mpesa_apps.insert(developer_id, app);
                });
                defer(pass, reply, result, Err(Internal::Failed));
            }
            MpesaCommand::Settings {
                developer_id,
                settings,
                reply,
            } => {
                let result = self.app_to_change(pass, developer_id, now).map(|mut app| {
                    app.allowed_origins = settings.allowed_origins;
                    app.session_lifetime_secs = settings.session_lifetime_secs;
                    app.result_url = settings.result_url;
                    pass.mpesa_apps.insert(developer_id, app);
                });
                defer(pass, reply, result, Err(Internal::Failed));
            }
        }
    }

    /// The application as this pass leaves it so far, created (with a key nobody holds,
    /// and its owner row) when the developer has none yet.
    pub(super) fn app_to_change(
        &mut self,
        pass: &mut Pass,
        developer_id: i64,
        now: i64,
    ) -> Result<MpesaApp, Internal> {
        Ok(match self.current_app(pass, developer_id)? {
            Some(app) => app,
            None => {
                let (app, _) = MpesaApp::new(developer_id, now);
                pass.batch.api_users.push(app.api_user_row());
                app
            }
        })
    }

    /// The application as this pass will leave it.
    pub(super) fn current_app(
        &mut self,
        pass: &Pass,
        developer_id: i64,
    ) -> Result<Option<MpesaApp>, Internal> {
        if let Some(app) = pass.mpesa_apps.get(&developer_id) {
            return Ok(Some(app.clone()));
        }
        self.journal.mpesa_app(developer_id).map_err(|e| {
            tracing::error!(error = %e, "reading an M-Pesa application failed");
            Internal::Failed
        })
    }

    /// Why a reversal cannot be accepted, if it cannot.
    pub(super) fn reversal_problem(
        &mut self,
        pass: &Pass,
        reversal: &Payment,
        original: Uuid,
    ) -> Result<Option<&'static str>, CreateError> {
        let Some(o) = self.journal.payment(&original)? else {
            return Ok(Some(refusal::NOT_FOUND));
        };
        if o.api_user != reversal.api_user {
            return Ok(Some(refusal::NOT_YOURS));
        }
        if !o.kind.is_reversible() || o.status != PaymentStatus::Successful {
            return Ok(Some(refusal::NOT_REVERSIBLE));
        }
        if o.currency() != reversal.currency() {
            return Ok(Some(refusal::AMOUNT_EXCEEDS));
        }
        let committed = self.journal.refunded_total(&original)?;
        let in_batch = pass.refunded.get(&original).copied().unwrap_or(0);
        if committed + in_batch + reversal.amount.minor() > o.amount.minor() {
            return Ok(Some(refusal::AMOUNT_EXCEEDS));
        }
        Ok(None)
    }

    /// The (debit, credit) accounts of an M-Pesa payment, opened on first use: customer
    /// wallets by MSISDN, the application's short codes (each starting with the partner
    /// float); a reversal moves money the other way of its original.
    pub(super) fn mpesa_legs(
        &mut self,
        pass: &mut Pass,
        payment: &Payment,
        now: i64,
    ) -> Result<(AccountId, AccountId), StoreError> {
        let currency = payment.currency();
        let own_code = payment.short_code.clone().unwrap_or_default();
        let short_code = |code: String| AccountOwner::ShortCode {
            api_user: payment.api_user,
            code,
        };
        let float = Some(self.settings.partner_float.clone());
        match payment.kind {
            PaymentKind::MpesaC2b | PaymentKind::MpesaDirectDebit => {
                let wallet = self.wallet(pass, &payment.party.wallet_key(), currency, now)?;
                let org = self.funded(pass, short_code(own_code), currency, float, now)?;
                Ok((wallet, org))
            }
            PaymentKind::MpesaB2c => {
                let org = self.funded(pass, short_code(own_code), currency, float, now)?;
                let wallet = self.wallet(pass, &payment.party.wallet_key(), currency, now)?;
                Ok((org, wallet))
            }
            PaymentKind::MpesaB2b => {
                let primary =
                    self.funded(pass, short_code(own_code), currency, float.clone(), now)?;
                let receiver = self.funded(
                    pass,
                    short_code(payment.party.id.clone()),
                    currency,
                    float,
                    now,
                )?;
                Ok((primary, receiver))
            }
            PaymentKind::MpesaReversal => {
                let original = payment
                    .refund_of
                    .ok_or_else(|| StoreError("a reversal without its original".to_owned()))?;
                let original = self
                    .journal
                    .payment(&original)?
                    .ok_or_else(|| StoreError(format!("reversed payment {original} missing")))?;
                let (debit, credit) = self.mpesa_legs(pass, &original, now)?;
                Ok((credit, debit))
            }
            other => Err(StoreError(format!(
                "{} is not an M-Pesa money movement",
                other.as_str()
            ))),
        }
    }
}
