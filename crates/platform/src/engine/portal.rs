//! The writer's side of the developer portal: sign-ups (unique e-mail, next developer id),
//! plain portal rows, the virtual phone's approvals and callback re-sends.
//!
//! Approvals settle through [`Engine::settle`] with the payer's decision instead of the
//! scenario's, so ledger postings, status and callback are exactly those of automatic
//! settlement.

use std::collections::HashSet;

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Engine, Pass, defer};
use crate::CreateError;
use crate::model::{NewPayment, Payment, SubscriptionKey};
use crate::portal::{DecideError, PortalWrite, ResendError, SignUpError, is_phone, payer_approves};
use crate::store::StoreError;

/// Portal work for the writer.
pub(crate) enum PortalCommand {
    SignUp {
        email: String,
        name: String,
        password_hash: String,
        reply: oneshot::Sender<Result<i64, SignUpError>>,
    },
    /// Rows with nothing to check (sessions, key renewals, revocations, settings).
    Write {
        writes: Vec<PortalWrite>,
        keys: Vec<SubscriptionKey>,
        reply: oneshot::Sender<Result<(), CreateError>>,
    },
    Decide {
        reference_id: Uuid,
        developer_id: i64,
        approve: bool,
        reply: oneshot::Sender<Result<(), DecideError>>,
    },
    Resend {
        reference_id: Uuid,
        developer_id: i64,
        reply: oneshot::Sender<Result<(), ResendError>>,
    },
}

/// What one pass remembers about portal work not yet committed.
#[derive(Default)]
pub(super) struct PortalPass {
    emails: HashSet<String>,
    next_developer: Option<i64>,
}

/// The portal's in-memory state in the writer.
#[derive(Default)]
pub(super) struct PortalState {
    /// Developers whose payers approve on the virtual phone.
    approval_developers: HashSet<i64>,
    /// API user → developer, filled on demand (it never changes).
    developer_of: std::collections::HashMap<Uuid, i64>,
}

impl PortalState {
    /// Replaces the virtual phone's developers (another node changed them).
    pub(super) fn set_approval_developers(&mut self, ids: Vec<i64>) {
        self.approval_developers = ids.into_iter().collect();
    }
}

impl Engine {
    /// Reloads the portal's state from the journal (at start and after a failed commit).
    pub(super) fn install_portal(&mut self) {
        self.portal = PortalState::default();
        match self.journal.approval_developers() {
            Ok(ids) => self.portal.approval_developers = ids.into_iter().collect(),
            Err(e) => tracing::error!(error = %e, "loading virtual phone settings failed"),
        }
    }

    pub(super) fn apply_portal(&mut self, pass: &mut Pass, command: PortalCommand, now: i64) {
        match command {
            PortalCommand::SignUp {
                email,
                name,
                password_hash,
                reply,
            } => {
                let result = self.sign_up(pass, email, name, password_hash, now);
                defer(pass, reply, result, Err(SignUpError::Internal));
            }
            PortalCommand::Write {
                writes,
                keys,
                reply,
            } => {
                for w in &writes {
                    if let PortalWrite::SetApprovalMode { developer_id, on } = w {
                        if *on {
                            self.portal.approval_developers.insert(*developer_id);
                        } else {
                            self.portal.approval_developers.remove(developer_id);
                        }
                    }
                }
                pass.batch.portal.extend(writes);
                pass.batch.subscription_keys.extend(keys);
                defer(pass, reply, Ok(()), Err(CreateError::Internal));
            }
            PortalCommand::Decide {
                reference_id,
                developer_id,
                approve,
                reply,
            } => {
                let result = self.decide(pass, reference_id, developer_id, approve, now);
                defer(pass, reply, result, Err(DecideError::Internal));
            }
            PortalCommand::Resend {
                reference_id,
                developer_id,
                reply,
            } => {
                let result = self.resend(pass, reference_id, developer_id, now);
                defer(pass, reply, result, Err(ResendError::Internal));
            }
        }
    }

    fn sign_up(
        &mut self,
        pass: &mut Pass,
        email: String,
        name: String,
        password_hash: String,
        now: i64,
    ) -> Result<i64, SignUpError> {
        let store = |e: StoreError| {
            tracing::error!(error = %e, "sign-up failed");
            SignUpError::Internal
        };
        if pass.portal.emails.contains(&email)
            || self.journal.developer_email_taken(&email).map_err(store)?
        {
            return Err(SignUpError::EmailTaken);
        }
        let id = match pass.portal.next_developer {
            Some(id) => id,
            None => self.journal.max_developer_id().map_err(store)? + 1,
        };
        pass.portal.next_developer = Some(id + 1);
        pass.portal.emails.insert(email.clone());
        pass.batch.developers.push(id);
        pass.batch.portal.push(PortalWrite::CreateDeveloper {
            id,
            email,
            name,
            password_hash,
            created_at_ms: now,
        });
        Ok(id)
    }

    fn developer_of(&mut self, api_user: &Uuid) -> Result<Option<i64>, StoreError> {
        if let Some(d) = self.portal.developer_of.get(api_user) {
            return Ok(Some(*d));
        }
        let found = self.journal.api_user_developer(api_user)?;
        if let Some(d) = found {
            self.portal.developer_of.insert(*api_user, d);
        }
        Ok(found)
    }

    /// Whether a payment that would succeed waits for the payer on the virtual phone.
    pub(super) fn waits_for_payer(&mut self, new: &NewPayment) -> bool {
        if self.portal.approval_developers.is_empty() || !payer_approves(new.kind) {
            return false;
        }
        if !is_phone(&new.party) {
            return false;
        }
        match self.developer_of(&new.api_user) {
            Ok(Some(d)) => self.portal.approval_developers.contains(&d),
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "looking up an API user's developer failed");
                false
            }
        }
    }

    fn owned(&mut self, p: &Payment, developer_id: i64) -> Result<bool, StoreError> {
        Ok(self.developer_of(&p.api_user)? == Some(developer_id))
    }

    fn decide(
        &mut self,
        pass: &mut Pass,
        reference_id: Uuid,
        developer_id: i64,
        approve: bool,
        now: i64,
    ) -> Result<(), DecideError> {
        let store = |e: StoreError| {
            tracing::error!(error = %e, "deciding a payment failed");
            DecideError::Internal
        };
        if let Some(p) = self.pending.get(&reference_id).cloned() {
            if !self.owned(&p, developer_id).map_err(store)? {
                return Err(DecideError::NotFound);
            }
            let decision = if approve {
                Ok(())
            } else {
                Err("APPROVAL_REJECTED".to_owned())
            };
            self.settle_decided(pass, reference_id, now, Some(decision));
            return Ok(());
        }
        match self.journal.payment(&reference_id).map_err(store)? {
            Some(p) if self.owned(&p, developer_id).map_err(store)? => Err(DecideError::NotPending),
            _ => Err(DecideError::NotFound),
        }
    }

    fn resend(
        &mut self,
        pass: &mut Pass,
        reference_id: Uuid,
        developer_id: i64,
        now: i64,
    ) -> Result<(), ResendError> {
        let store = |e: StoreError| {
            tracing::error!(error = %e, "re-sending a callback failed");
            ResendError::Internal
        };
        let payment = match self.pending.get(&reference_id) {
            Some(p) => Some(p.clone()),
            None => self.journal.payment(&reference_id).map_err(store)?,
        };
        let Some(payment) = payment else {
            return Err(ResendError::NotFound);
        };
        if !self.owned(&payment, developer_id).map_err(store)? {
            return Err(ResendError::NotFound);
        }
        if !payment.status.is_final() {
            return Err(ResendError::NotFinal);
        }
        if payment.callback_url.is_none() {
            return Err(ResendError::NoCallbackUrl);
        }
        self.emit_callback(pass, &payment, now);
        Ok(())
    }
}
