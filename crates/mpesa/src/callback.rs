//! Asynchronous results: the body POSTed to the application's result URL when an M-Pesa
//! transaction becomes final (reference §5 "Callback", §7). Keys are `input_*`; the
//! listener answers with `output_*` keys, which Mkoba records but does not require.

use mkoba_platform::model::{Payment, PaymentKind, PaymentStatus};

use crate::ops::result_code;
use crate::wire::{Body, Gateway};

/// The result body of a final M-Pesa payment.
pub fn render(p: &Payment) -> String {
    let details: serde_json::Value = p
        .details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or_default();
    let detail = |name: &str| details[name].as_str().unwrap_or_default().to_owned();
    let conversation = p.reference_id.simple().to_string();
    let tpcid = p.external_id.clone().unwrap_or_default();
    let transaction = p
        .financial_transaction_id
        .clone()
        .unwrap_or_else(|| "N/A".to_owned());
    let body = Body::default().field("input_OriginalConversationID", conversation);
    if details["gateway"] == "v1x" {
        // Mozambique's result (reference §11): the reference under its v1x name, and `0`
        // for a success as in the portal's example.
        let code = result_code(Gateway::V1x, p);
        let (result, desc) = match code.code {
            "INS-0" => ("0", code.desc),
            _ => (code.code, code.desc),
        };
        return body
            .field("input_ThirdPartyReference", tpcid)
            .field("input_TransactionID", transaction)
            .field("input_ResultCode", result)
            .field("input_ResultDesc", desc)
            .to_json();
    }
    let code = result_code(Gateway::V2, p);
    // The token and the mandate id come only with a success, as in the synchronous answer
    // (reference §5.7–5.8): a refused mandate's id names no mandate.
    let on_success = |name: &str| (p.status == PaymentStatus::Successful).then(|| detail(name));
    let body = match p.kind {
        PaymentKind::MpesaMandate => body
            .field("input_TransactionReference", detail("thirdPartyReference"))
            .maybe("input_MsisdnToken", on_success("msisdnToken"))
            .field("input_ResultCode", code.code)
            .field("input_ResultDesc", code.desc)
            .field("input_ThirdPartyConversationID", tpcid)
            .maybe("input_MandateID", on_success("mandateId")),
        PaymentKind::MpesaDirectDebit => body
            .field("input_TransactionID", transaction)
            .maybe("input_MsisdnToken", on_success("msisdnToken"))
            .field("input_ResultCode", code.code)
            .field("input_ResultDesc", code.desc)
            .field("input_ThirdPartyConversationID", tpcid),
        _ => body
            .field("input_TransactionID", transaction)
            .field("input_ResultCode", code.code)
            .field("input_ResultDesc", code.desc)
            .field("input_ThirdPartyConversationID", tpcid),
    };
    body.to_json()
}

/// The Query Direct Debit field names, `output_*` in the answer and `input_*` in the
/// asynchronous result.
const DIRECT_DEBIT_FIELDS: [(&str, &str, &str); 11] = [
    (
        "TransactionReference",
        "input_TransactionReference",
        "output_TransactionReference",
    ),
    (
        "SufficientBalance",
        "input_SufficientBalance",
        "output_SufficientBalance",
    ),
    ("MsisdnToken", "input_MsisdnToken", "output_MsisdnToken"),
    ("MandateID", "input_MandateID", "output_MandateID"),
    (
        "MandateStatus",
        "input_MandateStatus",
        "output_MandateStatus",
    ),
    (
        "AccountStatus",
        "input_AccountStatus",
        "output_AccountStatus",
    ),
    (
        "FirstPaymentDate",
        "input_FirstPaymentDate",
        "output_FirstPaymentDate",
    ),
    ("Frequency", "input_Frequency", "output_Frequency"),
    (
        "PaymentDayFrom",
        "input_PaymentDayFrom",
        "output_PaymentDayFrom",
    ),
    ("PaymentDayTo", "input_PaymentDayTo", "output_PaymentDayTo"),
    ("ExpiryDate", "input_ExpiryDate", "output_ExpiryDate"),
];

/// `input_<name>` of a Query Direct Debit field.
pub(crate) fn input_name(name: &str) -> &'static str {
    DIRECT_DEBIT_FIELDS
        .iter()
        .find(|f| f.0 == name)
        .map_or("input_Unknown", |f| f.1)
}

/// `output_<name>` of a Query Direct Debit field.
pub(crate) fn output_name(name: &str) -> &'static str {
    DIRECT_DEBIT_FIELDS
        .iter()
        .find(|f| f.0 == name)
        .map_or("output_Unknown", |f| f.2)
}
