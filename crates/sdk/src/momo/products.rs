//! The three product clients and their typed operations, one method per operation Mkoba
//! serves (the route catalogue of `mkoba-momo`).

use std::sync::Arc;

use http::Method;
use mkoba_api_types::momo::{
    AccessToken, Balance, BasicUserInfo, BcAuthorizeResponse, BooleanResult, CancelInvoice,
    CashTransfer, CashTransferResult, CreateInvoice, CreatePayments, DeliveryNotification,
    InvoiceResult, Oauth2TokenResponse, PaymentResult, PreApproval, PreApprovalDetails,
    PreApprovalResult, Refund, RequestToPay, RequestToPayResult, Transfer, TransferResult,
};

use super::client::{Core, Create, with};
use super::status::{Poll, wait_for_final_status};
use super::{Config, Product, ReferenceId};
use crate::error::Result;
use crate::transport::{Call, path_segment};

/// How an account holder is named in a path: `msisdn`, `email` or `party_code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum IdType {
    /// A phone number without `+` (`46733123450`).
    Msisdn,
    /// An e-mail address.
    Email,
    /// A party code (a UUID).
    PartyCode,
}

impl IdType {
    /// The lower-case path form.
    pub fn as_str(self) -> &'static str {
        match self {
            IdType::Msisdn => "msisdn",
            IdType::Email => "email",
            IdType::PartyCode => "party_code",
        }
    }
}

/// Whether consent is for one use (`online`) or lasting (`offline`, with a refresh token).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AccessType {
    /// One use.
    Online,
    /// Lasting; `consent_valid_in` seconds if given.
    Offline,
}

/// The operations every product has: tokens, balances, account holders, consent.
macro_rules! common {
    ($name:ident, $product:expr) => {
        impl $name {
            /// A client for this product.
            pub fn new(config: Config) -> Result<$name> {
                Ok($name(Core::new($product, config)?))
            }

            /// The target environment, base URL and product of this client.
            pub fn describe(&self) -> String {
                format!(
                    "{} at {} (target environment {})",
                    self.0.product, self.0.base, self.0.environment
                )
            }

            /// The access token the client uses now, fetched if there is none yet.
            pub async fn access_token(&self) -> Result<String> {
                Ok(self.0.bearer().await?.token.to_string())
            }

            /// `POST /token/` (CreateAccessToken): a new token, bypassing (and not
            /// replacing) the cache; counted in `token_fetches()` like every fetch.
            pub async fn create_access_token(&self) -> Result<AccessToken> {
                self.0.fetch_token().await
            }

            /// How many tokens this client has fetched (for monitoring and tests).
            pub fn token_fetches(&self) -> u64 {
                self.0.token_fetches()
            }

            /// `GET /v1_0/account/balance` (GetAccountBalance).
            pub async fn get_account_balance(&self) -> Result<Balance> {
                self.0.get("/v1_0/account/balance").await
            }

            /// `GET /v1_0/account/balance/{currency}` (GetAccountBalanceInSpecificCurrency).
            pub async fn get_account_balance_in_currency(&self, currency: &str) -> Result<Balance> {
                self.0
                    .get(&format!("/v1_0/account/balance/{}", path_segment(currency)))
                    .await
            }

            /// `GET /v1_0/accountholder/{type}/{id}/active` (ValidateAccountHolderStatus).
            pub async fn validate_account_holder_status(
                &self,
                id_type: IdType,
                id: &str,
            ) -> Result<bool> {
                let r: BooleanResult = self
                    .0
                    .get(&format!(
                        "/v1_0/accountholder/{}/{}/active",
                        id_type.as_str(),
                        path_segment(id)
                    ))
                    .await?;
                Ok(r.result)
            }

            /// `GET /v1_0/accountholder/{type}/{id}/basicuserinfo` (GetBasicUserinfo).
            pub async fn get_basic_userinfo(
                &self,
                id_type: IdType,
                id: &str,
            ) -> Result<BasicUserInfo> {
                self.0
                    .get(&format!(
                        "/v1_0/accountholder/{}/{}/basicuserinfo",
                        id_type.as_str(),
                        path_segment(id)
                    ))
                    .await
            }

            /// `POST /v1_0/bc-authorize`: asks the account holder `login_hint`
            /// (`ID:46733123450/MSISDN`) to consent to `scope` (`profile`, space-separated);
            /// `consent_valid_in` seconds for offline access.
            pub async fn bc_authorize(
                &self,
                login_hint: &str,
                scope: &str,
                access_type: AccessType,
                consent_valid_in: Option<u64>,
            ) -> Result<BcAuthorizeResponse> {
                let url = self.0.url("/v1_0/bc-authorize");
                let access = match access_type {
                    AccessType::Online => "online",
                    AccessType::Offline => "offline",
                };
                let valid = consent_valid_in.map(|s| s.to_string());
                self.0
                    .send(|c| {
                        let mut fields = vec![
                            ("login_hint", login_hint),
                            ("scope", scope),
                            ("access_type", access),
                        ];
                        if let Some(v) = &valid {
                            fields.push(("consent_valid_in", v));
                        }
                        Ok(with(c, Method::POST, &url).form(&fields))
                    })
                    .await?
                    .json()
            }

            /// `POST /oauth2/token/` with the CIBA grant: the oauth2 token once the account
            /// holder consented (an [`ApiError`](crate::ApiError) with
            /// [`ReasonCode::AuthorizationPending`](crate::ReasonCode) while they have not).
            pub async fn create_oauth2_token(
                &self,
                auth_req_id: &str,
            ) -> Result<Oauth2TokenResponse> {
                self.oauth2(&[
                    ("grant_type", "urn:openid:params:grant-type:ciba"),
                    ("auth_req_id", auth_req_id),
                ])
                .await
            }

            /// Exchanges a consent request for the oauth2 token once the account holder
            /// answered: polls [`Self::create_oauth2_token`] at once, then every `interval`
            /// seconds `bc-authorize` asked for, while the answer is
            /// `authorization_pending`, for at most `timeout` (the last answer then).
            pub async fn wait_for_consent(
                &self,
                request: &BcAuthorizeResponse,
                timeout: std::time::Duration,
            ) -> Result<Oauth2TokenResponse> {
                let deadline = crate::later(std::time::Instant::now(), timeout);
                let interval = std::time::Duration::from_secs(request.interval.max(1));
                loop {
                    match self.create_oauth2_token(&request.auth_req_id).await {
                        Err(e)
                            if e.code() == Some(&crate::ReasonCode::AuthorizationPending)
                                && crate::later(std::time::Instant::now(), interval) < deadline =>
                        {
                            tokio::time::sleep(interval).await;
                        }
                        other => return other,
                    }
                }
            }

            /// `POST /oauth2/token/` with the refresh grant.
            pub async fn refresh_oauth2_token(
                &self,
                refresh_token: &str,
            ) -> Result<Oauth2TokenResponse> {
                self.oauth2(&[
                    ("grant_type", "refresh_token"),
                    ("refresh_token", refresh_token),
                ])
                .await
            }

            async fn oauth2(&self, fields: &[(&str, &str)]) -> Result<Oauth2TokenResponse> {
                let call = Call::new(Method::POST, self.0.url("/oauth2/token/"))
                    .header("ocp-apim-subscription-key", &self.0.subscription_key)
                    .header("authorization", self.0.basic()?)
                    .header("x-target-environment", &self.0.environment)
                    .form(fields);
                self.0.transport.send(call.build()?).await?.ok()?.json()
            }

            /// `GET /oauth2/v1_0/userinfo` (GetUserInfoWithConsent) with an oauth2 access
            /// token from [`Self::create_oauth2_token`].
            pub async fn get_user_info_with_consent(
                &self,
                oauth2_access_token: &str,
            ) -> Result<BasicUserInfo> {
                let call = Call::new(Method::GET, self.0.url("/oauth2/v1_0/userinfo"))
                    .header("ocp-apim-subscription-key", &self.0.subscription_key)
                    .header("authorization", format!("Bearer {oauth2_access_token}"))
                    .header("x-target-environment", &self.0.environment);
                self.0.transport.send(call.build()?).await?.ok()?.json()
            }

            fn status_path(&self, op: &str, id: &ReferenceId) -> String {
                format!("/{op}/{id}")
            }
        }
    };
}

/// Generates `get_…_status` and `wait_for_…` for one status path.
macro_rules! status_methods {
    ($name:ident { $( $get:ident, $wait:ident, $path:literal, $result:ty, $what:literal; )* }) => {
        impl $name {
            $(
                #[doc = concat!("`GET /", $path, "/{referenceId}`: the status of a ", $what, ".")]
                pub async fn $get(&self, reference_id: &ReferenceId) -> Result<$result> {
                    self.0.get(&self.status_path($path, reference_id)).await
                }

                #[doc = concat!("Polls [`Self::", stringify!($get), "`] with backoff until the ", $what, " is final or `poll.timeout` passed.")]
                pub async fn $wait(&self, reference_id: &ReferenceId, poll: Poll) -> Result<$result> {
                    let what = format!(concat!($what, " {}"), reference_id);
                    wait_for_final_status(&what, poll, || self.$get(reference_id)).await
                }
            )*
        }
    };
}

/// Collection: request-to-pay, withdrawals, invoices, pre-approvals and v2 payments.
#[derive(Clone)]
pub struct Collection(Arc<Core>);

/// Disbursement: transfers, deposits and refunds, paid from the partner's float.
#[derive(Clone)]
pub struct Disbursement(Arc<Core>);

/// Remittance: transfers and cash transfers.
#[derive(Clone)]
pub struct Remittance(Arc<Core>);

macro_rules! debug {
    ($($name:ident),*) => {$(
        impl std::fmt::Debug for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.debug_struct(stringify!($name))
                    .field("base_url", &self.0.base)
                    .field("target_environment", &self.0.environment)
                    .finish_non_exhaustive()
            }
        }
    )*};
}
debug!(Collection, Disbursement, Remittance);

common!(Collection, Product::Collection);
common!(Disbursement, Product::Disbursement);
common!(Remittance, Product::Remittance);

impl Collection {
    /// `POST /v1_0/requesttopay`: asks the payer to pay. Await it for the reference id.
    pub fn request_to_pay(&self, body: &RequestToPay) -> Create<'_> {
        self.0.create("/v1_0/requesttopay", body)
    }

    /// `POST /v1_0/requesttopay/{referenceId}/deliverynotification`: a message to the payer
    /// of a SUCCESSFUL request-to-pay (sent in the header and the body).
    pub async fn request_to_pay_delivery_notification(
        &self,
        reference_id: &ReferenceId,
        message: &str,
    ) -> Result<()> {
        let url = self.0.url(&format!(
            "/v1_0/requesttopay/{reference_id}/deliverynotification"
        ));
        let body = DeliveryNotification {
            notification_message: message.to_owned(),
        };
        let header_safe = message.bytes().all(|b| (0x20..0x7f).contains(&b));
        self.0
            .send(|c| {
                let mut c = with(c, Method::POST, &url);
                if header_safe {
                    c = c.header("notificationmessage", message);
                }
                c.json(&body)
            })
            .await?;
        Ok(())
    }

    /// `POST /v1_0/requesttowithdraw` (called back with POST).
    pub fn request_to_withdraw_v1(&self, body: &RequestToPay) -> Create<'_> {
        self.0.create("/v1_0/requesttowithdraw", body)
    }

    /// `POST /v2_0/requesttowithdraw` (called back with PUT).
    pub fn request_to_withdraw_v2(&self, body: &RequestToPay) -> Create<'_> {
        self.0.create("/v2_0/requesttowithdraw", body)
    }

    /// `POST /v2_0/invoice`: an invoice the intended payer pays.
    pub fn create_invoice(&self, body: &CreateInvoice) -> Create<'_> {
        self.0.create("/v2_0/invoice", body)
    }

    /// `DELETE /v2_0/invoice/{referenceId}`: cancels a pending invoice (with a fresh
    /// `X-Reference-Id` of its own); the answer echoes `externalId`.
    pub async fn cancel_invoice(
        &self,
        reference_id: &ReferenceId,
        external_id: Option<&str>,
    ) -> Result<CancelInvoice> {
        let url = self.0.url(&format!("/v2_0/invoice/{reference_id}"));
        let body = CancelInvoice {
            external_id: external_id.map(str::to_owned),
        };
        let cancel_reference = ReferenceId::new().to_string();
        let reply = self
            .0
            .send(|c| {
                with(c, Method::DELETE, &url)
                    .header("x-reference-id", &cancel_reference)
                    .json(&body)
            })
            .await?;
        // The documented answer echoes the external id; a success with no body (as a
        // DELETE may well be answered) is a cancellation all the same.
        if reply.body.iter().all(u8::is_ascii_whitespace) {
            return Ok(body);
        }
        reply.json()
    }

    /// `POST /v2_0/preapproval`: asks the payer to pre-approve future debits.
    pub fn pre_approval(&self, body: &PreApproval) -> Create<'_> {
        self.0.create("/v2_0/preapproval", body)
    }

    /// `DELETE /v1_0/preapproval/{preApprovalId}`: cancels a pre-approval.
    pub async fn cancel_pre_approval(&self, reference_id: &ReferenceId) -> Result<()> {
        let url = self.0.url(&format!("/v1_0/preapproval/{reference_id}"));
        self.0.send(|c| Ok(with(c, Method::DELETE, &url))).await?;
        Ok(())
    }

    /// `GET /v1_0/preapprovals/{type}/{id}`: the payer's approved pre-approvals.
    pub async fn get_approved_pre_approvals(
        &self,
        id_type: IdType,
        id: &str,
    ) -> Result<Vec<PreApprovalDetails>> {
        self.0
            .get(&format!(
                "/v1_0/preapprovals/{}/{}",
                id_type.as_str(),
                path_segment(id)
            ))
            .await
    }

    /// `POST /v2_0/payment` (CreatePayments): a bill or airtime payment.
    pub fn create_payments(&self, body: &CreatePayments) -> Create<'_> {
        self.0.create("/v2_0/payment", body)
    }
}

status_methods!(Collection {
    get_request_to_pay_status, wait_for_request_to_pay, "v1_0/requesttopay", RequestToPayResult, "request-to-pay";
    get_request_to_withdraw_status, wait_for_request_to_withdraw, "v1_0/requesttowithdraw", RequestToPayResult, "request-to-withdraw";
    get_invoice_status, wait_for_invoice, "v2_0/invoice", InvoiceResult, "invoice";
    get_pre_approval_status, wait_for_pre_approval, "v2_0/preapproval", PreApprovalResult, "pre-approval";
    get_payment_status, wait_for_payment, "v2_0/payment", PaymentResult, "payment";
});

impl Disbursement {
    /// `POST /v1_0/transfer`: pays the payee from the partner's float.
    pub fn transfer(&self, body: &Transfer) -> Create<'_> {
        self.0.create("/v1_0/transfer", body)
    }

    /// `POST /v1_0/deposit` (called back with POST).
    pub fn deposit_v1(&self, body: &Transfer) -> Create<'_> {
        self.0.create("/v1_0/deposit", body)
    }

    /// `POST /v2_0/deposit` (called back with PUT).
    pub fn deposit_v2(&self, body: &Transfer) -> Create<'_> {
        self.0.create("/v2_0/deposit", body)
    }

    /// `POST /v1_0/refund` (called back with POST): refunds a request-to-pay or withdrawal.
    pub fn refund_v1(&self, body: &Refund) -> Create<'_> {
        self.0.create("/v1_0/refund", body)
    }

    /// `POST /v2_0/refund` (called back with PUT).
    pub fn refund_v2(&self, body: &Refund) -> Create<'_> {
        self.0.create("/v2_0/refund", body)
    }
}

status_methods!(Disbursement {
    get_transfer_status, wait_for_transfer, "v1_0/transfer", TransferResult, "transfer";
    get_deposit_status, wait_for_deposit, "v1_0/deposit", TransferResult, "deposit";
    get_refund_status, wait_for_refund, "v1_0/refund", TransferResult, "refund";
});

impl Remittance {
    /// `POST /v1_0/transfer`: an international transfer to the payee.
    pub fn transfer(&self, body: &Transfer) -> Create<'_> {
        self.0.create("/v1_0/transfer", body)
    }

    /// `POST /v2_0/cashtransfer`: a transfer with the payer's identity.
    pub fn cash_transfer(&self, body: &CashTransfer) -> Create<'_> {
        self.0.create("/v2_0/cashtransfer", body)
    }
}

status_methods!(Remittance {
    get_transfer_status, wait_for_transfer, "v1_0/transfer", TransferResult, "transfer";
    get_cash_transfer_status, wait_for_cash_transfer, "v2_0/cashtransfer", CashTransferResult, "cash transfer";
});
