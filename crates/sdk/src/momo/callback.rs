//! Receiving callbacks in a partner's web app.
//!
//! The platform POSTs (v1) or PUTs (v2; accept both) the final status to the `X-Callback-Url` of
//! the creating request, with the same body as the status GET, no signature and, for v1
//! operations, no reference id. So:
//!
//! 1. put your own reference in the callback URL (`https://shop.example/momo/{referenceId}`)
//!    and read it back with [`reference_in_path`];
//! 2. parse the body with [`parse_callback`] (any product, any operation);
//! 3. before acting on it, confirm with the status GET (nothing proves the callback came
//!    from the platform), and be idempotent: a callback may arrive twice.
//!
//! ```
//! use mkoba_sdk::momo::{parse_callback, reference_in_path, Callback, Status};
//!
//! let body = br#"{"financialTransactionId":"1234567890","externalId":"order-1","amount":"100","currency":"EUR","payer":{"partyIdType":"MSISDN","partyId":"256774290781"},"status":"SUCCESSFUL"}"#;
//! let callback = parse_callback(body).unwrap();
//! assert!(matches!(callback, Callback::RequestToPay(_)));
//! assert_eq!(callback.status(), Status::Successful);
//! let reference = reference_in_path("/momo/3f0e2c54-5b7a-4d8e-9a4e-0c1b2d3e4f50");
//! assert!(reference.is_some());
//! ```

use mkoba_api_types::momo::{
    CashTransferResult, InvoiceResult, PaymentResult, PreApprovalResult, RequestToPayResult,
    TransferResult,
};
use serde_json::Value;

use super::ReferenceId;
use super::status::{Status, Transaction};
use crate::error::{Error, ReasonCode, Result};

/// A callback body, by the shape it came in.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Callback {
    /// Request-to-pay or request-to-withdraw (`payer`).
    RequestToPay(RequestToPayResult),
    /// Disbursement or remittance transfer, deposit or refund (`payee`).
    Transfer(TransferResult),
    /// Remittance cash transfer (`payee` and the payer's identity).
    CashTransfer(Box<CashTransferResult>),
    /// Invoice (`invoiceId`).
    Invoice(Box<InvoiceResult>),
    /// Pre-approval (`payerCurrency`).
    PreApproval(PreApprovalResult),
    /// V2 payment (`referenceId` and `status` only).
    Payment(PaymentResult),
}

impl Callback {
    fn inner(&self) -> &dyn Transaction {
        match self {
            Callback::RequestToPay(t) => t,
            Callback::Transfer(t) => t,
            Callback::CashTransfer(t) => t.as_ref(),
            Callback::Invoice(t) => t.as_ref(),
            Callback::PreApproval(t) => t,
            Callback::Payment(t) => t,
        }
    }

    /// The status it reports.
    pub fn status(&self) -> Status {
        self.inner().status()
    }

    /// Why it failed, if it did.
    pub fn reason(&self) -> Option<ReasonCode> {
        self.inner().reason()
    }

    /// The platform's transaction id, when it succeeded.
    pub fn financial_transaction_id(&self) -> Option<&str> {
        self.inner().financial_transaction_id()
    }

    /// The partner's `externalId`, where the body has one.
    pub fn external_id(&self) -> Option<&str> {
        match self {
            Callback::RequestToPay(t) => t.external_id.as_deref(),
            Callback::Transfer(t) => t.external_id.as_deref(),
            Callback::CashTransfer(t) => t.external_id.as_deref(),
            Callback::Invoice(t) => t.external_id.as_deref(),
            Callback::PreApproval(_) | Callback::Payment(_) => None,
        }
    }

    /// The reference id, where the body has one (v2 invoices and payments).
    pub fn reference_id(&self) -> Option<ReferenceId> {
        match self {
            Callback::Invoice(t) => t.reference_id.parse().ok(),
            Callback::Payment(t) => t.reference_id.parse().ok(),
            _ => None,
        }
    }
}

/// Reads a callback body of any MoMo operation.
pub fn parse_callback(body: &[u8]) -> Result<Callback> {
    let value: Value = serde_json::from_slice(body).map_err(|e| decode(e.to_string()))?;
    let has = |k: &str| value.get(k).is_some_and(|v| !v.is_null());
    let parsed = if has("invoiceId") {
        serde_json::from_value(value).map(|t| Callback::Invoice(Box::new(t)))
    } else if has("payerCurrency") {
        serde_json::from_value(value).map(Callback::PreApproval)
    } else if has("payer") {
        serde_json::from_value(value).map(Callback::RequestToPay)
    } else if has("payee")
        && (has("orginatingCountry")
            || has("originatingCountry")
            || has("payerIdentificationType")
            || has("payerFirstName"))
    {
        serde_json::from_value(value).map(|t| Callback::CashTransfer(Box::new(t)))
    } else if has("payee") {
        serde_json::from_value(value).map(Callback::Transfer)
    } else if has("referenceId") {
        serde_json::from_value(value).map(Callback::Payment)
    } else {
        return Err(decode(
            "not a MoMo callback body (no payer, payee or referenceId)".to_owned(),
        ));
    };
    parsed.map_err(|e| decode(e.to_string()))
}

fn decode(message: String) -> Error {
    Error::Decode {
        url: "callback".to_owned(),
        status: 0,
        message,
    }
}

/// The reference id in the last segment of a callback path (`/momo/{referenceId}`, query
/// string ignored), for callback URLs that carry it.
pub fn reference_in_path(path: &str) -> Option<ReferenceId> {
    let path = path.split(['?', '#']).next().unwrap_or_default();
    path.trim_end_matches('/')
        .rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_callback_shape_is_recognised() {
        let transfer = br#"{"amount":"5","currency":"EUR","payee":{"partyIdType":"MSISDN","partyId":"1"},"status":"FAILED","reason":"PAYEE_NOT_FOUND"}"#;
        let c = parse_callback(transfer).unwrap();
        assert!(matches!(c, Callback::Transfer(_)));
        assert_eq!(c.reason(), Some(ReasonCode::PayeeNotFound));
        let payment = br#"{"referenceId":"3f0e2c54-5b7a-4d8e-9a4e-0c1b2d3e4f50","status":"FAILED","reason":{"code":"NOT_ENOUGH_FUNDS","message":"x"}}"#;
        let c = parse_callback(payment).unwrap();
        assert!(matches!(c, Callback::Payment(_)));
        assert!(c.reference_id().is_some());
        assert_eq!(c.reason(), Some(ReasonCode::NotEnoughFunds));
        // The sandbox's bare string form, as in every other status body.
        let payment = br#"{"referenceId":"3f0e2c54-5b7a-4d8e-9a4e-0c1b2d3e4f50","status":"FAILED","reason":"NOT_ENOUGH_FUNDS"}"#;
        let c = parse_callback(payment).unwrap();
        assert!(matches!(c, Callback::Payment(_)));
        assert_eq!(c.reason(), Some(ReasonCode::NotEnoughFunds));
        assert!(parse_callback(b"{}").is_err());
        let e = parse_callback(b"not json").unwrap_err();
        assert!(e.to_string().starts_with("not a callback body: "), "{e}");
    }

    #[test]
    fn the_reference_is_read_from_the_last_path_segment() {
        let id = "3f0e2c54-5b7a-4d8e-9a4e-0c1b2d3e4f50";
        assert_eq!(
            reference_in_path(&format!("/cb/{id}?x=1")).map(|r| r.to_string()),
            Some(id.to_owned())
        );
        assert_eq!(reference_in_path("/cb/"), None);
    }
}
