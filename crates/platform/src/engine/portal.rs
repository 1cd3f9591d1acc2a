//! The writer's side of the developer portal: sign-ups (unique e-mail, next developer id,
//! the M-Pesa application and the activation mail in the same commit), account changes
//! checked against the account as the pass leaves it (activation, phone codes, e-mail and
//! password changes, deletion), the mailbox (queued rows, claims of the SMTP sender),
//! plain portal rows, the virtual phone's approvals and callback re-sends.
//!
//! Approvals settle through [`Engine::settle`] with the payer's decision instead of the
//! scenario's, so ledger postings, status and callback are exactly those of automatic
//! settlement.

use std::collections::{HashMap, HashSet};

use tokio::sync::oneshot;
use uuid::Uuid;

use super::{Engine, Pass, defer};
use crate::accounts::{
    AccountChange, AccountError, AccountOutcome, AccountRecord, AccountReply, AccountRole,
    AccountStatus, Mail, MailChannel, MailOutcome, MailState, NewMail, PHONE_CODE_ATTEMPTS,
    PHONE_CODE_INTERVAL_MS, PHONE_CODE_TTL_MS, PhoneCode,
};
use crate::golive::{DecisionMail, GoLiveError, GoLiveFilter, GoLiveState, NewGoLive, SubmitMail};
use crate::model::{NewPayment, Payment, PaymentKind, PaymentStatus, SubscriptionKey};
use crate::portal::{DecideError, PortalWrite, ResendError, SignUpError, is_phone, payer_approves};
use crate::store::StoreError;
use crate::{CreateError, Internal, secrets};

/// Portal work for the writer.
pub(crate) enum PortalCommand {
    SignUp {
        email: String,
        name: String,
        password_hash: String,
        /// The activation mail for the new account's id.
        activation: Box<dyn FnOnce(i64) -> NewMail + Send>,
        reply: oneshot::Sender<Result<i64, SignUpError>>,
    },
    /// A change of one account, checked against its current state.
    Account {
        developer_id: i64,
        change: AccountChange,
        reply: AccountReply,
    },
    QueueMail {
        mail: NewMail,
        reply: oneshot::Sender<Result<(), Internal>>,
    },
    /// The SMTP sender takes due e-mails for a while.
    ClaimMail {
        limit: u32,
        lease_ms: i64,
        reply: oneshot::Sender<Vec<Mail>>,
    },
    MailResult {
        id: i64,
        attempts: u32,
        outcome: MailOutcome,
        reply: oneshot::Sender<Result<(), Internal>>,
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
        /// Where the payment's last callback went, when it had one (an invoice's
        /// cancellation goes to the cancel's URL, not the creation's).
        last_url: Option<String>,
        reply: oneshot::Sender<Result<(), ResendError>>,
    },
    SubmitGoLive {
        request: NewGoLive,
        mail: SubmitMail,
        reply: oneshot::Sender<Result<(), GoLiveError>>,
    },
    DecideGoLive {
        id: i64,
        operator_id: i64,
        approve: bool,
        comment: String,
        mail: DecisionMail,
        reply: oneshot::Sender<Result<(), GoLiveError>>,
    },
    /// Marks a CIBA `auth_req_id` exchanged: `Duplicate` when it was already. Times are
    /// real time (system clock), as `keep_until_ms` is.
    UseAuthRequest {
        jti: String,
        api_user: Uuid,
        used_at_ms: i64,
        keep_until_ms: i64,
        reply: oneshot::Sender<Result<(), CreateError>>,
    },
}

/// What one pass remembers about portal work not yet committed.
#[derive(Default)]
pub(super) struct PortalPass {
    emails: HashSet<String>,
    next_developer: Option<i64>,
    /// Accounts as this pass leaves them.
    accounts: HashMap<i64, AccountRecord>,
    /// Phone codes as this pass leaves them (`None`: deleted).
    phone_codes: HashMap<i64, Option<PhoneCode>>,
    /// Mail claimed in this pass.
    claimed: HashSet<i64>,
    /// Developers who submitted a go-live request in this pass.
    golive_submitted: HashSet<i64>,
    /// Go-live requests decided in this pass.
    golive_decided: HashSet<i64>,
}

/// The portal's in-memory state in the writer.
pub(super) struct PortalState {
    /// Developers whose payers approve on the virtual phone.
    approval_developers: HashSet<i64>,
    /// API user → developer, filled on demand (it never changes); bounded, a miss is one
    /// read.
    developer_of: crate::generations::Generations<Uuid, i64>,
}

impl Default for PortalState {
    fn default() -> PortalState {
        PortalState {
            approval_developers: HashSet::new(),
            developer_of: crate::generations::Generations::new(65_536),
        }
    }
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
            PortalCommand::UseAuthRequest {
                jti,
                api_user,
                used_at_ms,
                keep_until_ms,
                reply,
            } => {
                // Looked up inside the pass: with several nodes, under the pass lock.
                let in_pass = pass.batch.portal.iter().any(
                    |w| matches!(w, PortalWrite::UseAuthRequest { jti: used, .. } if *used == jti),
                );
                let used = match in_pass {
                    true => Ok(true),
                    false => self.journal.auth_request_used(&jti),
                };
                match used {
                    Ok(true) => {
                        let _ = reply.send(Err(CreateError::Duplicate));
                    }
                    Ok(false) => {
                        pass.batch.portal.push(PortalWrite::UseAuthRequest {
                            jti,
                            api_user,
                            used_at_ms,
                            keep_until_ms,
                        });
                        defer(pass, reply, Ok(()), Err(CreateError::Unavailable));
                    }
                    Err(e) => {
                        tracing::error!(error = %e, "looking up a used auth_req_id failed");
                        let _ = reply.send(Err(CreateError::Unavailable));
                    }
                }
            }
            PortalCommand::SignUp {
                email,
                name,
                password_hash,
                activation,
                reply,
            } => {
                let result = self.sign_up(pass, email, name, password_hash, now);
                if let Ok(id) = result {
                    self.queue_mail(pass, activation(id), now);
                }
                defer(pass, reply, result, Err(SignUpError::Internal));
            }
            PortalCommand::Account {
                developer_id,
                change,
                reply,
            } => {
                let result = self
                    .change_account(pass, developer_id, change, now)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "changing an account failed");
                        Err(AccountError::Internal)
                    });
                defer(pass, reply, result, Err(AccountError::Busy));
            }
            PortalCommand::QueueMail { mail, reply } => {
                self.queue_mail(pass, mail, now);
                defer(pass, reply, Ok(()), Err(Internal::Failed));
            }
            PortalCommand::ClaimMail {
                limit,
                lease_ms,
                reply,
            } => {
                let claimed = self.claim_mail(pass, limit, lease_ms, now);
                defer(pass, reply, claimed, Vec::new());
            }
            PortalCommand::MailResult {
                id,
                attempts,
                outcome,
                reply,
            } => {
                let (state, next, error, sent) = match outcome {
                    MailOutcome::Sent => (MailState::Sent, now, None, Some(now)),
                    MailOutcome::Retry { at_ms, error } => {
                        (MailState::Queued, at_ms, Some(error), None)
                    }
                    MailOutcome::Failed { error } => (MailState::Failed, now, Some(error), None),
                };
                pass.batch.portal.push(PortalWrite::UpdateMail {
                    id,
                    state,
                    attempts,
                    next_attempt_at_ms: next,
                    last_error: error,
                    sent_at_ms: sent,
                });
                defer(pass, reply, Ok(()), Err(Internal::Failed));
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
                last_url,
                reply,
            } => {
                let result = self.resend(pass, reference_id, developer_id, last_url);
                defer(pass, reply, result, Err(ResendError::Internal));
            }
            PortalCommand::SubmitGoLive {
                request,
                mail,
                reply,
            } => {
                let result = self
                    .submit_go_live(pass, request, mail, now)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "submitting a go-live request failed");
                        Err(GoLiveError::Internal)
                    });
                defer(pass, reply, result, Err(GoLiveError::Busy));
            }
            PortalCommand::DecideGoLive {
                id,
                operator_id,
                approve,
                comment,
                mail,
                reply,
            } => {
                let result = self
                    .decide_go_live(pass, id, operator_id, approve, comment, mail, now)
                    .unwrap_or_else(|e| {
                        tracing::error!(error = %e, "deciding a go-live request failed");
                        Err(GoLiveError::Internal)
                    });
                defer(pass, reply, result, Err(GoLiveError::Busy));
            }
        }
    }

    fn submit_go_live(
        &mut self,
        pass: &mut Pass,
        request: NewGoLive,
        mail: SubmitMail,
        now: i64,
    ) -> Result<Result<(), GoLiveError>, StoreError> {
        let developer_id = request.developer_id;
        match self.account_of(pass, developer_id)? {
            Some(a) if a.status == AccountStatus::Active => {}
            _ => return Ok(Err(GoLiveError::NotActive)),
        }
        let pending = pass.portal.golive_submitted.contains(&developer_id)
            || !self
                .journal
                .golive_requests(&GoLiveFilter {
                    developer_id: Some(developer_id),
                    state: Some(GoLiveState::Pending),
                    limit: 1,
                })?
                .is_empty();
        if pending {
            return Ok(Err(GoLiveError::AlreadyPending));
        }
        pass.portal.golive_submitted.insert(developer_id);
        let operators = self.journal.operators()?;
        pass.batch.portal.push(PortalWrite::CreateGoLive {
            request,
            created_at_ms: now,
        });
        for m in mail(&operators) {
            self.queue_mail(pass, m, now);
        }
        Ok(Ok(()))
    }

    #[allow(clippy::too_many_arguments)]
    fn decide_go_live(
        &mut self,
        pass: &mut Pass,
        id: i64,
        operator_id: i64,
        approve: bool,
        comment: String,
        mail: DecisionMail,
        now: i64,
    ) -> Result<Result<(), GoLiveError>, StoreError> {
        let Some(mut request) = self.journal.golive_request(id)? else {
            return Ok(Err(GoLiveError::NotFound));
        };
        if request.state != GoLiveState::Pending || !pass.portal.golive_decided.insert(id) {
            return Ok(Err(GoLiveError::AlreadyDecided));
        }
        let account = self.account_of(pass, request.developer_id)?;
        let deleted = account
            .as_ref()
            .is_none_or(|a| matches!(a.status, AccountStatus::Deleted));
        // A deleted account gets no production access (its request can still be closed).
        if approve && deleted {
            pass.portal.golive_decided.remove(&id);
            return Ok(Err(GoLiveError::NotActive));
        }
        let state = if approve {
            GoLiveState::Approved
        } else {
            GoLiveState::Rejected
        };
        request.state = state;
        request.decided_at_ms = Some(now);
        request.decided_by = Some(operator_id);
        request.comment = Some(comment.clone());
        pass.batch.portal.push(PortalWrite::DecideGoLive {
            id,
            state,
            decided_at_ms: now,
            decided_by: operator_id,
            comment,
        });
        // Told by mail whatever the account's state but deleted (a deactivated developer's
        // approval was recorded and the operator told "mailed", and no mail went).
        if let Some(a) = account.filter(|_| !deleted) {
            let m = mail(&request, &a.email, &a.name);
            self.queue_mail(pass, m, now);
        }
        Ok(Ok(()))
    }

    /// Replaces a developer's credentials by ones nobody holds: sessions end, API keys are
    /// revoked, subscription keys and the M-Pesa API key are replaced (a replacement
    /// reaches every node's key cache; a deletion would not).
    fn cut_credentials(&mut self, pass: &mut Pass, developer_id: i64, now: i64) {
        pass.batch.portal.push(PortalWrite::DeleteSessionsOf {
            developer_id,
            except: None,
        });
        pass.batch.portal.push(PortalWrite::RevokeDeveloperKeys {
            developer_id,
            at_ms: now,
        });
        let keys: Vec<SubscriptionKey> = self
            .subscriptions
            .read()
            .expect("subscriptions lock")
            .of(developer_id)
            .map(|k| SubscriptionKey {
                key: secrets::random_hex_key(),
                ..k.clone()
            })
            .collect();
        pass.batch.subscription_keys.extend(keys);
        if let Ok(Some(mut app)) = self.current_app(pass, developer_id) {
            app.api_key_hash = secrets::hash_key(&crate::mpesa::random_api_key());
            app.api_key_created_at_ms = now;
            app.api_key = None;
            pass.mpesa_apps.insert(developer_id, app);
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
        pass.portal.accounts.insert(
            id,
            AccountRecord {
                developer_id: id,
                email: email.clone(),
                name: name.clone(),
                password_hash: password_hash.clone(),
                status: AccountStatus::Pending,
                phone: None,
            },
        );
        pass.batch.portal.push(PortalWrite::CreateDeveloper {
            id,
            email,
            name,
            password_hash,
            created_at_ms: now,
            status: AccountStatus::Pending,
            role: AccountRole::Developer,
        });
        // The M-Pesa application of seed 004, created with the account; its first API key
        // is issued (and shown once) when the account becomes active.
        let (app, _) = crate::mpesa::MpesaApp::new(id, now);
        pass.batch.api_users.push(app.api_user_row());
        pass.mpesa_apps.insert(id, app);
        Ok(id)
    }

    /// A mailbox row, queued for SMTP when mail is delivered (e-mail only).
    fn queue_mail(&mut self, pass: &mut Pass, mail: NewMail, now: i64) {
        let state = if self.settings.mail_delivery && mail.channel == MailChannel::Email {
            MailState::Queued
        } else {
            MailState::Kept
        };
        pass.batch.portal.push(PortalWrite::QueueMail {
            mail,
            created_at_ms: now,
            state,
        });
    }

    fn claim_mail(&mut self, pass: &mut Pass, limit: u32, lease_ms: i64, now: i64) -> Vec<Mail> {
        let due = match self.journal.due_mail(now, limit) {
            Ok(due) => due,
            Err(e) => {
                tracing::error!(error = %e, "reading due mail failed");
                return Vec::new();
            }
        };
        let mut claimed = Vec::new();
        for mut m in due {
            if !pass.portal.claimed.insert(m.id) {
                continue;
            }
            m.state = MailState::Sending;
            m.next_attempt_at_ms = now + lease_ms;
            pass.batch.portal.push(PortalWrite::UpdateMail {
                id: m.id,
                state: m.state,
                attempts: m.attempts,
                next_attempt_at_ms: m.next_attempt_at_ms,
                last_error: m.last_error.clone(),
                sent_at_ms: None,
            });
            claimed.push(m);
        }
        claimed
    }

    fn account_of(
        &mut self,
        pass: &Pass,
        developer_id: i64,
    ) -> Result<Option<AccountRecord>, StoreError> {
        match pass.portal.accounts.get(&developer_id) {
            Some(a) => Ok(Some(a.clone())),
            None => self.journal.account(developer_id),
        }
    }

    fn put_account(&mut self, pass: &mut Pass, account: AccountRecord) {
        pass.portal
            .accounts
            .insert(account.developer_id, account.clone());
        pass.batch.portal.push(PortalWrite::UpdateAccount(account));
    }

    fn phone_code_of(
        &mut self,
        pass: &Pass,
        developer_id: i64,
    ) -> Result<Option<PhoneCode>, StoreError> {
        match pass.portal.phone_codes.get(&developer_id) {
            Some(c) => Ok(c.clone()),
            None => self.journal.phone_code(developer_id),
        }
    }

    fn put_phone_code(&mut self, pass: &mut Pass, developer_id: i64, code: Option<PhoneCode>) {
        pass.portal.phone_codes.insert(developer_id, code.clone());
        pass.batch.portal.push(match code {
            Some(c) => PortalWrite::SetPhoneCode(c),
            None => PortalWrite::DeletePhoneCode { developer_id },
        });
    }

    /// The developer's phone code if `code_mac` is its code's, still valid; a wrong one
    /// counts against the code's tries.
    fn right_phone_code(
        &mut self,
        pass: &mut Pass,
        developer_id: i64,
        code_mac: [u8; 32],
        now: i64,
    ) -> Result<Result<PhoneCode, AccountError>, StoreError> {
        let Some(mut code) = self.phone_code_of(pass, developer_id)? else {
            return Ok(Err(AccountError::NoCode));
        };
        if now >= code.expires_at_ms || code.attempts >= PHONE_CODE_ATTEMPTS {
            return Ok(Err(AccountError::CodeExpired));
        }
        if !secrets::hashes_equal(&code.code_mac, &code_mac) {
            code.attempts += 1;
            let attempts_left = PHONE_CODE_ATTEMPTS.saturating_sub(code.attempts);
            self.put_phone_code(pass, developer_id, Some(code));
            return Ok(Err(AccountError::WrongCode { attempts_left }));
        }
        Ok(Ok(code))
    }

    /// Applies one account change if the account is where the change expects it.
    fn change_account(
        &mut self,
        pass: &mut Pass,
        developer_id: i64,
        change: AccountChange,
        now: i64,
    ) -> Result<Result<AccountOutcome, AccountError>, StoreError> {
        use AccountError as E;
        let Some(mut account) = self.account_of(pass, developer_id)? else {
            return Ok(Err(E::NotFound));
        };
        if account.status == AccountStatus::Deleted {
            return Ok(Err(E::NotFound));
        }
        let done = Ok(AccountOutcome::Done);
        match change {
            AccountChange::Activate { email } => {
                if account.email != email {
                    return Ok(Err(E::Stale));
                }
                if account.status != AccountStatus::Pending {
                    return Ok(Ok(AccountOutcome::AlreadyDone));
                }
                account.status = AccountStatus::Phone;
                self.put_account(pass, account);
                Ok(done)
            }
            AccountChange::SetName { name } => {
                if account.status != AccountStatus::Active {
                    return Ok(Err(E::WrongState));
                }
                account.name = name;
                self.put_account(pass, account);
                Ok(done)
            }
            AccountChange::ChangeEmail { from, to, notice } => {
                if account.status != AccountStatus::Active {
                    return Ok(Err(E::WrongState));
                }
                if account.email != from {
                    return Ok(Err(E::Stale));
                }
                if pass.portal.emails.contains(&to) || self.journal.developer_email_taken(&to)? {
                    return Ok(Err(E::EmailTaken));
                }
                pass.portal.emails.insert(to.clone());
                account.email = to;
                self.put_account(pass, account);
                if let Some(n) = notice {
                    self.queue_mail(pass, n, now);
                }
                Ok(done)
            }
            AccountChange::SetPassword {
                expected_hash,
                new_hash,
                keep_session,
                notice,
            } => {
                if account.password_hash != expected_hash {
                    return Ok(Err(E::Stale));
                }
                account.password_hash = new_hash;
                self.put_account(pass, account);
                pass.batch.portal.push(PortalWrite::DeleteSessionsOf {
                    developer_id,
                    except: keep_session,
                });
                if let Some(n) = notice {
                    self.queue_mail(pass, n, now);
                }
                Ok(done)
            }
            AccountChange::StartPhone {
                msisdn,
                code_mac,
                sms,
                changing,
            } => {
                let at = if changing {
                    AccountStatus::Active
                } else {
                    AccountStatus::Phone
                };
                if account.status != at {
                    return Ok(Err(E::WrongState));
                }
                if let Some(last) = self.phone_code_of(pass, developer_id)? {
                    let wait_ms = last.sent_at_ms + PHONE_CODE_INTERVAL_MS - now;
                    if wait_ms > 0 {
                        return Ok(Err(E::TooSoon { wait_ms }));
                    }
                }
                let code = PhoneCode {
                    developer_id,
                    msisdn,
                    code_mac,
                    sent_at_ms: now,
                    expires_at_ms: now + PHONE_CODE_TTL_MS,
                    attempts: 0,
                };
                self.put_phone_code(pass, developer_id, Some(code));
                self.queue_mail(pass, sms, now);
                Ok(done)
            }
            AccountChange::ChangePhone { code_mac, notice } => {
                if account.status != AccountStatus::Active {
                    return Ok(Err(E::WrongState));
                }
                let code = match self.right_phone_code(pass, developer_id, code_mac, now)? {
                    Ok(code) => code,
                    Err(e) => return Ok(Err(e)),
                };
                account.phone = Some(code.msisdn);
                self.put_account(pass, account);
                self.put_phone_code(pass, developer_id, None);
                if let Some(n) = notice {
                    self.queue_mail(pass, n, now);
                }
                Ok(done)
            }
            AccountChange::VerifyPhone { code_mac, api_key } => {
                if account.status == AccountStatus::Active {
                    return Ok(Ok(AccountOutcome::AlreadyDone));
                }
                if account.status != AccountStatus::Phone {
                    return Ok(Err(E::WrongState));
                }
                let code = match self.right_phone_code(pass, developer_id, code_mac, now)? {
                    Ok(code) => code,
                    Err(e) => return Ok(Err(e)),
                };
                account.status = AccountStatus::Active;
                account.phone = Some(code.msisdn);
                self.put_account(pass, account);
                self.put_phone_code(pass, developer_id, None);
                let mut app = self
                    .app_to_change(pass, developer_id, now)
                    .map_err(|_| StoreError("reading the M-Pesa application failed".into()))?;
                app.api_key_hash = secrets::hash_key(&api_key);
                app.api_key_created_at_ms = now;
                app.api_key = Some(api_key);
                pass.mpesa_apps.insert(developer_id, app);
                Ok(done)
            }
            AccountChange::Delete {
                expected_hash,
                goodbye,
            } => {
                if account.password_hash != expected_hash {
                    return Ok(Err(E::Stale));
                }
                account.status = AccountStatus::Deleted;
                account.email = format!("deleted-{developer_id}@deleted.invalid");
                account.name = "Deleted developer".to_owned();
                account.password_hash = "!".to_owned();
                account.phone = None;
                self.put_account(pass, account);
                self.portal.approval_developers.remove(&developer_id);
                pass.batch.portal.push(PortalWrite::SetApprovalMode {
                    developer_id,
                    on: false,
                });
                if self.phone_code_of(pass, developer_id)?.is_some() {
                    self.put_phone_code(pass, developer_id, None);
                }
                self.cut_credentials(pass, developer_id, now);
                if let Some(g) = goodbye {
                    self.queue_mail(pass, g, now);
                }
                Ok(done)
            }
            AccountChange::SetActive { active, notice } => {
                match (active, account.status) {
                    (false, AccountStatus::Deactivated) | (true, AccountStatus::Active) => {
                        return Ok(Ok(AccountOutcome::AlreadyDone));
                    }
                    // Not yet confirmed: it cannot sign in, and reactivated it would come
                    // back past the e-mail check (its status before is not kept).
                    (false, AccountStatus::Pending) => return Ok(Err(E::WrongState)),
                    (false, _) => {
                        account.status = AccountStatus::Deactivated;
                        self.put_account(pass, account);
                        self.cut_credentials(pass, developer_id, now);
                    }
                    (true, AccountStatus::Deactivated) => {
                        // Back where its journey had reached: a deactivated account had a
                        // confirmed phone unless it was deactivated before that step.
                        account.status = if account.phone.is_some() {
                            AccountStatus::Active
                        } else {
                            AccountStatus::Phone
                        };
                        self.put_account(pass, account);
                    }
                    (true, _) => return Ok(Err(E::WrongState)),
                }
                if let Some(n) = notice {
                    self.queue_mail(pass, n, now);
                }
                Ok(done)
            }
        }
    }

    /// The developer (partner) an API user belongs to, remembered ([`Generations`]).
    pub(super) fn developer_of(&mut self, api_user: &Uuid) -> Result<Option<i64>, StoreError> {
        if let Some(d) = self.portal.developer_of.get(api_user) {
            return Ok(Some(*d));
        }
        let found = self.journal.api_user_developer(api_user)?;
        if let Some(d) = found {
            self.portal.developer_of.insert(*api_user, d);
        }
        Ok(found)
    }

    /// [`Engine::developer_of`] for counting open payments: an API user the store does not
    /// know, or a failed look-up (logged), counts as [`super::open::UNKNOWN_DEVELOPER`].
    pub(super) fn developer_or_unknown(&mut self, api_user: &Uuid) -> i64 {
        match self.developer_of(api_user) {
            Ok(Some(d)) => d,
            Ok(None) => super::open::UNKNOWN_DEVELOPER,
            Err(e) => {
                tracing::error!(error = %e, "looking up an API user's developer failed");
                super::open::UNKNOWN_DEVELOPER
            }
        }
    }

    /// Whether a payment that would succeed waits for the payer on the virtual phone: in
    /// approval mode, unless it is drawn against the payer's pre-approval. `now` is the API
    /// user's time.
    pub(super) fn waits_for_payer(&mut self, pass: &Pass, new: &NewPayment, now: i64) -> bool {
        if self.portal.approval_developers.is_empty() || !payer_approves(new.kind) {
            return false;
        }
        if !is_phone(&new.party) {
            return false;
        }
        let approval_mode = match self.developer_of(&new.api_user) {
            Ok(Some(d)) => self.portal.approval_developers.contains(&d),
            Ok(None) => false,
            Err(e) => {
                tracing::error!(error = %e, "looking up an API user's developer failed");
                false
            }
        };
        approval_mode && !self.pre_approved(pass, new, now)
    }

    /// Whether the payer approved this API user's request-to-pays in advance: a pre-approval
    /// in the payment's currency, approved, not cancelled, and within its `validityTime` on
    /// the API user's time. A request-to-pay is then drawn against it without asking the
    /// payer.
    fn pre_approved(&mut self, pass: &Pass, new: &NewPayment, now: i64) -> bool {
        if new.kind != PaymentKind::RequestToPay {
            return false;
        }
        let pre_approvals =
            self.journal
                .payments_of_party(&new.api_user, PaymentKind::PreApproval, &new.party);
        match pre_approvals {
            Ok(list) => list.iter().any(|p| {
                p.status == PaymentStatus::Successful
                    && p.currency() == new.amount.currency()
                    && p.pre_approval_expiry_ms().is_none_or(|end| now < end)
                    && !pass.failed_in_pass(&p.reference_id)
            }),
            Err(e) => {
                tracing::error!(error = %e, "reading a payer's pre-approvals failed");
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
            // Only what a payer approves on the handset (a payout, a refund or a reversal
            // has no payer to ask: "rejecting" one failed it) and what the scenario rules
            // leave to the payer.
            if !payer_approves(p.kind) || !super::payer_decides(&p) {
                return Err(DecideError::NotPending);
            }
            let decision = if approve {
                Ok(())
            } else {
                Err(crate::reason::FailureReason::ApprovalRejected)
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
        last_url: Option<String>,
    ) -> Result<(), ResendError> {
        let store = |e: StoreError| {
            tracing::error!(error = %e, "re-sending a callback failed");
            ResendError::Internal
        };
        let payment = match self.pending.get(&reference_id) {
            Some(p) => Some(p.clone()),
            None => self.journal.payment(&reference_id).map_err(store)?,
        };
        let Some(mut payment) = payment else {
            return Err(ResendError::NotFound);
        };
        if !self.owned(&payment, developer_id).map_err(store)? {
            return Err(ResendError::NotFound);
        }
        if !payment.status.is_final() {
            return Err(ResendError::NotFinal);
        }
        if last_url.is_some() {
            payment.callback_url = last_url;
        }
        if payment.callback_url.is_none() {
            return Err(ResendError::NoCallbackUrl);
        }
        self.emit_callback(pass, &payment);
        Ok(())
    }
}
