//! Receiving asynchronous results in a partner's web app (reference §7).
//!
//! With a result URL configured for the application, the gateway answers each call at once
//! (no transaction id) and later POSTs the outcome there: a flat JSON object of `input_*`
//! strings. The listener answers with an `output_*` acknowledgement. So:
//!
//! 1. parse the body with [`parse_result`] (any operation; [`AsyncResult::kind`] says which
//!    by the fields present);
//! 2. match it to your request by [`AsyncResult::third_party_conversation_id`] (your own
//!    id) and [`AsyncResult::original_conversation_id`] (the first answer's
//!    `output_ConversationID`); nothing else authenticates it;
//! 3. answer with [`AsyncResult::acknowledgement`] (`output_ResponseCode` `"0"`,
//!    "Successfully Accepted Result"; `INS-0` for Query Direct Debit), and be idempotent: a
//!    result may arrive twice.
//!
//! ```
//! use mkoba_sdk::mpesa::{InsCode, ResultKind, parse_result};
//!
//! let body = br#"{"input_OriginalConversationID":"fd1e9143d22544459f7c66e1860ef276","input_TransactionID":"hv9ahxcg4ccv","input_ResultCode":"INS-0","input_ResultDesc":"Request processed successfully","input_ThirdPartyConversationID":"1e9b774d1da34af78412a498cbc28f5e"}"#;
//! let result = parse_result(body).unwrap();
//! assert_eq!(result.kind(), ResultKind::Payment);
//! assert_eq!(result.result_code, InsCode::Success);
//! assert_eq!(result.transaction_id.as_deref(), Some("hv9ahxcg4ccv"));
//! let reply = result.acknowledgement().to_json();
//! assert!(reply.contains(r#""output_ResponseCode":"0""#));
//! ```

use serde::Serialize;
use serde_json::Value;

use super::InsCode;
use crate::error::{Error, Result};

/// What an asynchronous result reports, judged by the fields it carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ResultKind {
    /// C2B, B2C, B2B or a reversal: a transaction id.
    Payment,
    /// Query Transaction Status: `input_ResponseTransactionStatus`.
    TransactionStatus,
    /// Query Beneficiary Name: the customer's names.
    BeneficiaryName,
    /// Direct Debit Create: a mandate id.
    DirectDebitCreate,
    /// Direct Debit Payment: a transaction id and an MSISDN token.
    DirectDebitPayment,
    /// Query Direct Debit: `input_ResponseCode` and the mandate's state.
    DirectDebitQuery,
    /// Cancel Direct Debit: the mandate reference and token, no mandate id.
    DirectDebitCancel,
}

/// An asynchronous result, as POSTed to the result URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AsyncResult {
    /// `input_OriginalConversationID` (Query Direct Debit: `input_ConversationID`): the
    /// `output_ConversationID` of the first answer.
    pub original_conversation_id: Option<String>,
    /// `input_ThirdPartyConversationID`: your request's id.
    pub third_party_conversation_id: Option<String>,
    /// `input_ResultCode` (Query Direct Debit: `input_ResponseCode`); `INS-0` is success.
    pub result_code: InsCode,
    /// `input_ResultDesc` (or `input_ResponseDesc`).
    pub result_desc: String,
    /// `input_TransactionID` (`N/A` when the transaction failed).
    pub transaction_id: Option<String>,
    /// `input_ResponseTransactionStatus` (status queries).
    pub transaction_status: Option<String>,
    /// `input_OriginalTransactionID` (status queries).
    pub original_transaction_id: Option<String>,
    /// `input_Reversed` (status queries).
    pub reversed: Option<bool>,
    /// `input_CustomerFirstName` (beneficiary queries).
    pub customer_first_name: Option<String>,
    /// `input_CustomerLastName` (beneficiary queries).
    pub customer_last_name: Option<String>,
    /// `input_TransactionReference`: the mandate reference (direct debits).
    pub transaction_reference: Option<String>,
    /// `input_MsisdnToken` (direct debits).
    pub msisdn_token: Option<String>,
    /// `input_MandateID` (direct debits).
    pub mandate_id: Option<String>,
    /// `input_MandateStatus` (Query Direct Debit).
    pub mandate_status: Option<String>,
    /// `input_SufficientBalance` (Query Direct Debit; `None` when not asked).
    pub sufficient_balance: Option<bool>,
    /// Every field with a text, number or boolean value, as text.
    pub fields: Vec<(String, String)>,
}

impl AsyncResult {
    /// A field by name, in any case (`input_ResultCode`).
    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the operation succeeded (`INS-0`, or `0` from a v1x gateway).
    pub fn is_success(&self) -> bool {
        self.result_code.is_success()
    }

    /// Which operation it reports, by the fields it carries.
    pub fn kind(&self) -> ResultKind {
        let has = |n: &str| self.get(n).is_some();
        if has("input_ResponseCode") || has("input_MandateStatus") {
            ResultKind::DirectDebitQuery
        } else if has("input_ResponseTransactionStatus") {
            ResultKind::TransactionStatus
        } else if has("input_CustomerFirstName") || has("input_CustomerLastName") {
            ResultKind::BeneficiaryName
        } else if has("input_MandateID") {
            ResultKind::DirectDebitCreate
        } else if has("input_MsisdnToken") && has("input_TransactionID") {
            ResultKind::DirectDebitPayment
        } else if has("input_MsisdnToken") || has("input_TransactionReference") {
            ResultKind::DirectDebitCancel
        } else {
            ResultKind::Payment
        }
    }

    /// What the listener answers: `output_ResponseCode` `"0"` and "Successfully Accepted
    /// Result", or `INS-0` for a Query Direct Debit result, with the conversation ids
    /// echoed.
    pub fn acknowledgement(&self) -> Acknowledgement {
        let code = if self.kind() == ResultKind::DirectDebitQuery {
            "INS-0"
        } else {
            "0"
        };
        Acknowledgement {
            original_conversation_id: self.original_conversation_id.clone().unwrap_or_default(),
            response_code: code.to_owned(),
            response_desc: "Successfully Accepted Result".to_owned(),
            third_party_conversation_id: self
                .third_party_conversation_id
                .clone()
                .unwrap_or_default(),
        }
    }
}

/// The listener's answer to an asynchronous result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Acknowledgement {
    /// `output_OriginalConversationID`.
    #[serde(rename = "output_OriginalConversationID")]
    pub original_conversation_id: String,
    /// `output_ResponseCode`: `"0"` (`INS-0` for Query Direct Debit).
    #[serde(rename = "output_ResponseCode")]
    pub response_code: String,
    /// `output_ResponseDesc`: "Successfully Accepted Result".
    #[serde(rename = "output_ResponseDesc")]
    pub response_desc: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID")]
    pub third_party_conversation_id: String,
}

impl Acknowledgement {
    /// The JSON body to answer with (`Content-Type: application/json`, HTTP 200).
    pub fn to_json(&self) -> String {
        // Four strings: serialisation cannot fail.
        serde_json::to_string(self).unwrap_or_default()
    }
}

/// Reads an asynchronous result body of any operation. Liberal, as results vary: names in
/// any case, values as strings, numbers or booleans, unknown fields kept in
/// [`AsyncResult::fields`].
pub fn parse_result(body: &[u8]) -> Result<AsyncResult> {
    let value: Value = serde_json::from_slice(body).map_err(|e| decode(e.to_string()))?;
    let Value::Object(map) = value else {
        return Err(decode("an M-Pesa result is a JSON object".to_owned()));
    };
    let fields: Vec<(String, String)> = map
        .into_iter()
        .filter_map(|(k, v)| {
            let text = match v {
                Value::String(s) => s,
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => if b { "True" } else { "False" }.to_owned(),
                _ => return None,
            };
            Some((k, text))
        })
        .collect();
    let get = |name: &str| {
        fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
    };
    let flag = |name: &str| {
        get(name).and_then(|v| match v.trim() {
            t if t.eq_ignore_ascii_case("true") => Some(true),
            f if f.eq_ignore_ascii_case("false") => Some(false),
            _ => None,
        })
    };
    let Some(code) = get("input_ResultCode").or_else(|| get("input_ResponseCode")) else {
        return Err(decode(
            "not an M-Pesa result (no input_ResultCode or input_ResponseCode)".to_owned(),
        ));
    };
    Ok(AsyncResult {
        original_conversation_id: get("input_OriginalConversationID")
            .or_else(|| get("input_ConversationID")),
        third_party_conversation_id: get("input_ThirdPartyConversationID"),
        result_code: InsCode::parse(&code),
        result_desc: get("input_ResultDesc")
            .or_else(|| get("input_ResponseDesc"))
            .unwrap_or_default(),
        transaction_id: get("input_TransactionID"),
        transaction_status: get("input_ResponseTransactionStatus"),
        original_transaction_id: get("input_OriginalTransactionID"),
        reversed: flag("input_Reversed"),
        customer_first_name: get("input_CustomerFirstName"),
        customer_last_name: get("input_CustomerLastName"),
        transaction_reference: get("input_TransactionReference"),
        msisdn_token: get("input_MsisdnToken"),
        mandate_id: get("input_MandateID"),
        mandate_status: get("input_MandateStatus"),
        sufficient_balance: flag("input_SufficientBalance"),
        fields,
    })
}

fn decode(message: String) -> Error {
    Error::Decode {
        url: "M-Pesa result".to_owned(),
        status: 0,
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_payment_result_carries_its_code() {
        let r = parse_result(
            br#"{"input_OriginalConversationID":"c","input_TransactionID":"N/A","input_ResultCode":"INS-2006","input_ResultDesc":"Insufficient balance","input_ThirdPartyConversationID":"t"}"#,
        )
        .unwrap();
        assert!(!r.is_success());
        assert_eq!(r.result_code, InsCode::InsufficientBalance);
        assert_eq!(
            r.acknowledgement().to_json(),
            r#"{"output_OriginalConversationID":"c","output_ResponseCode":"0","output_ResponseDesc":"Successfully Accepted Result","output_ThirdPartyConversationID":"t"}"#
        );
    }

    #[test]
    fn a_direct_debit_query_result_is_acknowledged_with_ins_0() {
        let r = parse_result(
            br#"{"input_ResponseCode":"INS-0","input_ResponseDesc":"Request processed successfully","input_ConversationID":"c","input_ThirdPartyConversationID":"t","input_SufficientBalance":"True","input_MandateStatus":"Active"}"#,
        )
        .unwrap();
        assert_eq!(r.kind(), ResultKind::DirectDebitQuery);
        assert_eq!(r.original_conversation_id.as_deref(), Some("c"));
        assert_eq!(r.sufficient_balance, Some(true));
        assert_eq!(r.acknowledgement().response_code, "INS-0");
    }

    #[test]
    fn results_are_read_liberally_and_junk_is_refused() {
        // Mozambique's v1x: a number, other names' case.
        let r = parse_result(br#"{"INPUT_RESULTCODE":0,"input_ThirdPartyReference":"x"}"#).unwrap();
        assert!(r.is_success());
        assert_eq!(r.get("input_thirdpartyreference"), Some("x"));
        assert!(parse_result(b"[]").is_err());
        assert!(parse_result(b"{}").is_err());
        assert!(parse_result(b"not json").is_err());
    }

    #[test]
    fn each_operation_is_recognised_by_its_fields() {
        let kind = |body: &str| parse_result(body.as_bytes()).unwrap().kind();
        assert_eq!(
            kind(r#"{"input_ResultCode":"INS-0","input_ResponseTransactionStatus":"Completed"}"#),
            ResultKind::TransactionStatus
        );
        assert_eq!(
            kind(r#"{"input_ResultCode":"INS-0","input_CustomerFirstName":"Jiazhen"}"#),
            ResultKind::BeneficiaryName
        );
        assert_eq!(
            kind(r#"{"input_ResultCode":"INS-0","input_MsisdnToken":"t","input_MandateID":"1"}"#),
            ResultKind::DirectDebitCreate
        );
        assert_eq!(
            kind(
                r#"{"input_ResultCode":"INS-0","input_MsisdnToken":"t","input_TransactionID":"x"}"#
            ),
            ResultKind::DirectDebitPayment
        );
        assert_eq!(
            kind(
                r#"{"input_ResultCode":"INS-0","input_TransactionReference":"r","input_MsisdnToken":"t"}"#
            ),
            ResultKind::DirectDebitCancel
        );
    }
}
