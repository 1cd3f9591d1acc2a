//! MTN MoMo Open API bodies.

use serde::{Deserialize, Serialize};

/// A payer or payee: `{"partyIdType":"MSISDN","partyId":"46733123450"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub party_id_type: String,
    pub party_id: String,
}

impl Party {
    /// `{"partyIdType":"MSISDN","partyId":…}`: a phone number without `+`.
    pub fn msisdn(id: impl Into<String>) -> Party {
        Party {
            party_id_type: "MSISDN".to_owned(),
            party_id: id.into(),
        }
    }

    /// `{"partyIdType":"EMAIL","partyId":…}`.
    pub fn email(id: impl Into<String>) -> Party {
        Party {
            party_id_type: "EMAIL".to_owned(),
            party_id: id.into(),
        }
    }

    /// `{"partyIdType":"PARTY_CODE","partyId":…}`: a UUID.
    pub fn party_code(id: impl Into<String>) -> Party {
        Party {
            party_id_type: "PARTY_CODE".to_owned(),
            party_id: id.into(),
        }
    }
}

/// Body of `POST /collection/v1_0/requesttopay`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestToPay {
    pub amount: String,
    pub currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub payer: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
}

/// A failure reason: the real sandbox sends a bare string code, the specification an
/// object. Clients should accept both.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Reason {
    Code(String),
    Object(ErrorReason),
}

impl Reason {
    /// The code, whichever form it came in.
    pub fn code(&self) -> &str {
        match self {
            Reason::Code(c) => c,
            Reason::Object(o) => &o.code,
        }
    }
}

/// Status of a request-to-pay (`GET /collection/v1_0/requesttopay/{referenceId}`), and
/// the body of its callback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RequestToPayResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub financial_transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub payer: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Status of a disbursement or remittance transfer, deposit or refund (`TransferResult`,
/// `RefundResult`), and the body of its callback: like [`RequestToPayResult`] with a payee.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TransferResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub financial_transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub payee: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// The fields of a remittance cash transfer beyond amount, currency, payee, externalId and
/// the two messages (`CashTransfer` in the remittance definition; `orginatingCountry` is
/// spelt as the definition spells it).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CashTransferDetails {
    #[serde(
        rename = "orginatingCountry",
        alias = "originatingCountry",
        skip_serializing_if = "Option::is_none"
    )]
    pub orginating_country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identification_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identification_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_sur_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_language_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_msisdn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_gender: Option<String>,
}

/// Status of a cash transfer (`GET /remittance/v2_0/cashtransfer/{referenceId}`) and the
/// body of its callback, in the definition's field order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CashTransferResult {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub financial_transaction_id: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
    pub amount: String,
    pub currency: String,
    pub payee: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    #[serde(
        rename = "orginatingCountry",
        alias = "originatingCountry",
        skip_serializing_if = "Option::is_none"
    )]
    pub orginating_country: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_amount: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub original_currency: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identification_type: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identification_number: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_identity: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_sur_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_language_code: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_email: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_msisdn: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_gender: Option<String>,
}

/// The wallet platform's error body: `{"code":"…","message":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReason {
    pub code: String,
    pub message: String,
}

/// The API gateway's error body: `{"statusCode":401,"message":"…"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GatewayError {
    pub status_code: u16,
    pub message: String,
}

/// The token endpoint's error body: `{"error":"login_failed"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TokenError {
    pub error: String,
}

/// `POST /{product}/token/` answer. Its `Debug` leaves the token out (it lets anyone call
/// as the API user until it expires).
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
}

impl std::fmt::Debug for AccessToken {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccessToken")
            .field("access_token", &"…")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .finish()
    }
}

/// `GET /{product}/v1_0/account/balance` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Balance {
    pub available_balance: String,
    pub currency: String,
}

/// `GET …/accountholder/{type}/{id}/active` answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooleanResult {
    pub result: bool,
}

/// `GET …/accountholder/msisdn/{id}/basicuserinfo` answer as the sandbox sends it. Fields a
/// production platform leaves out read as empty (clients must not fail on them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct BasicUserInfo {
    pub sub: String,
    pub name: String,
    pub given_name: String,
    pub family_name: String,
    pub birthdate: String,
    pub locale: String,
    pub gender: String,
    pub updated_at: i64,
}

/// Body of `POST /v1_0/apiuser`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserCreate {
    pub provider_callback_host: String,
}

/// `GET /v1_0/apiuser/{id}` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiUserResult {
    pub provider_callback_host: String,
    pub target_environment: String,
}

/// `POST /v1_0/apiuser/{id}/apikey` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyResult {
    pub api_key: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reason_accepts_the_string_and_the_object_form() {
        let s: Reason = serde_json::from_str(r#""APPROVAL_REJECTED""#).unwrap();
        let o: Reason =
            serde_json::from_str(r#"{"code":"APPROVAL_REJECTED","message":"x"}"#).unwrap();
        assert_eq!(s.code(), "APPROVAL_REJECTED");
        assert_eq!(o.code(), "APPROVAL_REJECTED");
    }

    #[test]
    fn status_bodies_keep_the_observed_field_order_and_omit_absent_fields() {
        let r = RequestToPayResult {
            financial_transaction_id: Some("1232581108".into()),
            external_id: Some("e".into()),
            amount: "5".into(),
            currency: "EUR".into(),
            payer: Party {
                party_id_type: "MSISDN".into(),
                party_id: "1".into(),
            },
            payer_message: None,
            payee_note: None,
            status: "SUCCESSFUL".into(),
            reason: None,
        };
        assert_eq!(
            serde_json::to_string(&r).unwrap(),
            r#"{"financialTransactionId":"1232581108","externalId":"e","amount":"5","currency":"EUR","payer":{"partyIdType":"MSISDN","partyId":"1"},"status":"SUCCESSFUL"}"#
        );
    }
}

/// `GET /collection/v2_0/invoice/{referenceId}` answer (`InvoiceResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InvoiceResult {
    pub reference_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub amount: String,
    pub currency: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payment_reference: Option<String>,
    pub invoice_id: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_first_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_last_name: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_reason: Option<Reason>,
    pub intended_payer: Party,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// `GET /collection/v2_0/preapproval/{referenceId}` answer (`PreApprovalResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreApprovalResult {
    pub payer: Party,
    pub payer_currency: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiration_date_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// One entry of `GET /collection/v1_0/preapprovals/{type}/{id}` (`PreApprovalDetails`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreApprovalDetails {
    pub pre_approval_id: String,
    pub to_fri: String,
    pub from_fri: String,
    pub from_currency: String,
    pub created_time: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approved_time: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub expiry_time: Option<String>,
    pub status: String,
    pub message: String,
}

/// `GET /collection/v2_0/payment/{referenceId}` answer (`PaymentResult`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PaymentResult {
    pub reference_id: String,
    pub status: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub financial_transaction_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<Reason>,
}

/// Body of a disbursement or remittance transfer and of a deposit
/// (`POST /{disbursement|remittance}/v1_0/transfer`, `POST /disbursement/v{1,2}_0/deposit`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Transfer {
    /// Amount, a decimal string in major units (`"100"`, `"12.50"`).
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// The partner's own reference; need not be unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Who receives the money.
    pub payee: Party,
    /// Written in the payer's history (at most 160 characters, no `'` or `&`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    /// Written in the payee's history (same rules).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
}

/// Body of `POST /disbursement/v{1,2}_0/refund`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Refund {
    /// Amount to refund, at most what is left of the original.
    pub amount: String,
    /// ISO 4217 currency, the original's.
    pub currency: String,
    /// The partner's own reference; need not be unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Written in the payer's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    /// Written in the payee's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
    /// The `X-Reference-Id` of the request-to-pay or withdrawal refunded.
    pub reference_id_to_refund: String,
}

/// Body of `POST /remittance/v2_0/cashtransfer`: a transfer plus the payer's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CashTransfer {
    /// Amount, a decimal string.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Who receives the money.
    pub payee: Party,
    /// The partner's own reference; need not be unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Written in the payer's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    /// Written in the payee's history.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee_note: Option<String>,
    /// The originating country, original amount and the payer's identity.
    #[serde(flatten)]
    pub details: CashTransferDetails,
}

/// Body of `POST /collection/v2_0/invoice`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateInvoice {
    /// The partner's own reference; need not be unique.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    /// Amount, a decimal string.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
    /// Seconds the invoice stays payable (a string, as the definition has it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_duration: Option<String>,
    /// Who is asked to pay.
    pub intended_payer: Party,
    /// Who is paid (the partner when absent).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payee: Option<Party>,
    /// Shown to the payer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// Body (and answer) of `DELETE /collection/v2_0/invoice/{referenceId}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CancelInvoice {
    /// The invoice's external id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
}

/// Body of `POST /collection/v2_0/preapproval`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PreApproval {
    /// Who approves future debits.
    pub payer: Party,
    /// ISO 4217 currency of the payer.
    pub payer_currency: String,
    /// Shown to the approver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub payer_message: Option<String>,
    /// Seconds the pre-approval is valid once approved.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub validity_time: Option<u64>,
}

/// An amount with its currency (`Money` in the collection definition).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Money {
    /// A positive decimal string.
    pub amount: String,
    /// ISO 4217 currency.
    pub currency: String,
}

/// Body of `POST /collection/v2_0/payment` (`CreatePayments`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CreatePayments {
    /// The partner's own reference.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub external_transaction_id: Option<String>,
    /// What is paid.
    pub money: Money,
    /// The customer who pays (an MSISDN).
    pub customer_reference: String,
    /// The service provider's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_provider_user_name: Option<String>,
    /// A coupon to redeem.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub coupon_id: Option<String>,
    /// A product id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_id: Option<String>,
    /// A product offering id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub product_offering_id: Option<String>,
    /// Shown to the receiver.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub receiver_message: Option<String>,
    /// Shown to the sender.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sender_note: Option<String>,
    /// How often the platform may retry.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_number_of_retries: Option<u32>,
    /// Whether the sender pays the charges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub include_sender_charges: Option<bool>,
}

/// Body of `POST /collection/v1_0/requesttopay/{referenceId}/deliverynotification`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DeliveryNotification {
    /// The message (at most 160 characters).
    pub notification_message: String,
}

/// `POST /{product}/v1_0/bc-authorize` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BcAuthorizeResponse {
    /// The consent request's id, exchanged at `oauth2/token/`.
    pub auth_req_id: String,
    /// Seconds to wait between two polls of `oauth2/token/`.
    #[serde(default)]
    pub interval: u64,
    /// Seconds until `auth_req_id` expires.
    #[serde(default)]
    pub expires_in: u64,
}

/// `POST /{product}/oauth2/token/` answer. Its `Debug` leaves both tokens out.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Oauth2TokenResponse {
    /// The oauth2 access token (for `oauth2/v1_0/userinfo`).
    pub access_token: String,
    /// `Bearer`.
    pub token_type: String,
    /// Seconds the access token is valid.
    pub expires_in: u64,
    /// The consented scopes, space-separated.
    #[serde(default)]
    pub scope: String,
    /// Exchanged for a new access token with the refresh grant.
    #[serde(default)]
    pub refresh_token: String,
    /// Seconds until the refresh token (the consent) expires.
    #[serde(default)]
    pub refresh_token_expired_in: i64,
}

impl std::fmt::Debug for Oauth2TokenResponse {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Oauth2TokenResponse")
            .field("access_token", &"…")
            .field("token_type", &self.token_type)
            .field("expires_in", &self.expires_in)
            .field("scope", &self.scope)
            .field("refresh_token", &"…")
            .field("refresh_token_expired_in", &self.refresh_token_expired_in)
            .finish()
    }
}

/// An OAuth2 error body (RFC 6749 §5.2), answered by `oauth2/token/`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OAuthError {
    /// `invalid_grant`, `authorization_pending`, `access_denied`, …
    pub error: String,
    /// What went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error_description: Option<String>,
}

/// The message the platform pairs with a reason code (the wallet's error bodies, and the
/// portal's examples of them).
pub fn message_for(code: &str) -> &'static str {
    match code {
        "PAYEE_NOT_FOUND" => "Payee does not exist.",
        "PAYER_NOT_FOUND" => "Payer does not exist.",
        "NOT_ALLOWED" => "Authorization failed. User does not have permission.",
        "NOT_ALLOWED_TARGET_ENVIRONMENT" => "Access to target environment is forbidden.",
        "INVALID_CALLBACK_URL_HOST" => {
            "Callback URL with different host name to configured for API User."
        }
        "INVALID_CURRENCY" => "Currency not supported.",
        "SERVICE_UNAVAILABLE" => "Service temporary unavailable, try again later.",
        "INTERNAL_PROCESSING_ERROR" => "An internal error occurred while processing.",
        "NOT_ENOUGH_FUNDS" => "The payer does not have enough funds.",
        "PAYER_LIMIT_REACHED" => "The payer's limit has been breached.",
        "PAYEE_NOT_ALLOWED_TO_RECEIVE" => "The payee is not allowed to receive funds.",
        "PAYMENT_NOT_APPROVED" => "The payment was not approved by the payer.",
        "RESOURCE_NOT_FOUND" => "Requested resource was not found.",
        "APPROVAL_REJECTED" => "The payer rejected the payment.",
        "EXPIRED" => "The payer did not approve the payment in time.",
        "TRANSACTION_CANCELED" => "The transaction was canceled.",
        "RESOURCE_ALREADY_EXIST" => "Duplicated reference id. Creation of resource failed.",
        "COULD_NOT_PERFORM_TRANSACTION" => "The transaction could not be performed.",
        "ONGOING" => "The transaction is still ongoing.",
        "PAYER_DELAYED" => "The payer delayed the approval.",
        "PAYEE_DELAYED" => "The payee delayed the transaction.",
        "TRANSACTION_NOT_COMPLETED" => "The transaction is not successfully completed.",
        "TOO_MANY_REQUESTS" => "Too many attempts for the same id.",
        _ => "The transaction failed.",
    }
}
