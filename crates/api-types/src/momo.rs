//! MTN MoMo Open API bodies.

use serde::{Deserialize, Serialize};

/// A payer or payee: `{"partyIdType":"MSISDN","partyId":"46733123450"}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Party {
    pub party_id_type: String,
    pub party_id: String,
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

/// `POST /{product}/token/` answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessToken {
    pub access_token: String,
    pub token_type: String,
    pub expires_in: u64,
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

/// `GET …/accountholder/msisdn/{id}/basicuserinfo` answer as the sandbox sends it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
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
    pub error_reason: Option<ErrorReason>,
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
    pub reason: Option<ErrorReason>,
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
    pub reason: Option<ErrorReason>,
}
