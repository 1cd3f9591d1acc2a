//! One typed method per operation Mkoba serves, with its request and its answer.
//!
//! The client fills `input_Country` and `input_Currency` from its market, sends amounts as
//! decimal strings, and adds the `input_ThirdPartyConversationID` ([`Request`]). Answers
//! keep the documented `output_*` names on the wire (`serde` renames) and serialise back
//! to them. In asynchronous mode (a result URL configured for the application) the
//! first answer has no transaction id and no result fields: they come in the
//! [`AsyncResult`](super::AsyncResult) posted to the result URL.

use std::fmt;
use std::str::FromStr;

use http::Method;
use serde::{Deserialize, Serialize};

use super::client::{Client, Fields, Request};
use super::{Amount, InsCode, Market};
use crate::error::{Error, Result};

/// An amount that may be sent: above zero.
fn positive(amount: Amount, what: &str) -> Result<Amount> {
    if amount.is_zero() {
        Err(Error::Config(format!("the {what} must be above zero")))
    } else {
        Ok(amount)
    }
}

/// The fields every money movement starts with: a positive amount and the market's
/// country and currency.
fn priced(amount: Amount, market: Market) -> Result<Fields> {
    Ok(Fields::default()
        .with("input_Amount", positive(amount, "amount")?)
        .with("input_Country", market.country())
        .with("input_Currency", market.currency()))
}

/// The customer of a direct debit: an MSISDN, a mandate's MSISDN token, or both.
fn customer(msisdn: Option<&str>, token: Option<&str>) -> Result<()> {
    if msisdn.is_none() && token.is_none() {
        return Err(Error::Config(
            "name the customer: the MSISDN or the mandate's MSISDN token (or both)".to_owned(),
        ));
    }
    Ok(())
}

// ---- requests ---------------------------------------------------------------------------------

/// C2B single stage: a customer pays a business (the customer confirms with a PIN).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct C2bPayment {
    /// `input_Amount`.
    pub amount: Amount,
    /// `input_CustomerMSISDN`: the payer, 12–14 digits with the country code.
    pub customer_msisdn: String,
    /// `input_ServiceProviderCode`: the business paid (`000000` in the sandbox).
    pub service_provider_code: String,
    /// `input_TransactionReference`: 1–20 letters, digits, spaces, `_` or `+`.
    pub transaction_reference: String,
    /// `input_PurchasedItemsDesc`: up to 256 letters, digits, spaces, `_` or `+`.
    pub purchased_items_desc: String,
}

/// B2C: a business pays a customer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct B2cPayment {
    /// `input_Amount`.
    pub amount: Amount,
    /// `input_CustomerMSISDN`: the payee.
    pub customer_msisdn: String,
    /// `input_ServiceProviderCode`: the paying business.
    pub service_provider_code: String,
    /// `input_TransactionReference`.
    pub transaction_reference: String,
    /// `input_PaymentItemsDesc`.
    pub payment_items_desc: String,
}

/// B2B: a business pays another.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct B2bPayment {
    /// `input_Amount`.
    pub amount: Amount,
    /// `input_PrimaryPartyCode`: the paying business.
    pub primary_party_code: String,
    /// `input_ReceiverPartyCode`: the business paid.
    pub receiver_party_code: String,
    /// `input_TransactionReference`.
    pub transaction_reference: String,
    /// `input_PurchasedItemsDesc`.
    pub purchased_items_desc: String,
}

/// A reversal of a successful transaction, whole or in part.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Reversal {
    /// `input_TransactionID` of the transaction to reverse.
    pub transaction_id: String,
    /// `input_ServiceProviderCode` of that transaction.
    pub service_provider_code: String,
    /// `input_ReversalAmount`: part of it; `None` reverses all.
    pub amount: Option<Amount>,
}

/// A transaction's status.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TransactionStatusQuery {
    /// `input_QueryReference`: the transaction id, the conversation id, or your
    /// ThirdPartyConversationID.
    pub query_reference: String,
    /// `input_ServiceProviderCode`.
    pub service_provider_code: String,
}

/// A customer's registered name (`input_KycQueryType` `Name`; Vodafone Ghana only).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BeneficiaryNameQuery {
    /// `input_CustomerMSISDN`.
    pub customer_msisdn: String,
    /// `input_ServiceProviderCode`.
    pub service_provider_code: String,
}

/// How often a mandate may be collected (`input_Frequency`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Frequency {
    /// `01`.
    OnceOff,
    /// `02`.
    Daily,
    /// `03`.
    Weekly,
    /// `04`.
    Monthly,
    /// `05`.
    Quarterly,
    /// `06`.
    HalfYearly,
    /// `07`.
    Yearly,
    /// `08`.
    OnDemand,
}

impl Frequency {
    const ALL: [(Frequency, &'static str, &'static str); 8] = [
        (Frequency::OnceOff, "01", "once-off"),
        (Frequency::Daily, "02", "daily"),
        (Frequency::Weekly, "03", "weekly"),
        (Frequency::Monthly, "04", "monthly"),
        (Frequency::Quarterly, "05", "quarterly"),
        (Frequency::HalfYearly, "06", "half-yearly"),
        (Frequency::Yearly, "07", "yearly"),
        (Frequency::OnDemand, "08", "on-demand"),
    ];

    /// The two-digit code (`04`).
    pub fn code(self) -> &'static str {
        Frequency::ALL
            .iter()
            .find(|f| f.0 == self)
            .map_or("08", |f| f.1)
    }
}

impl fmt::Display for Frequency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl FromStr for Frequency {
    type Err = String;

    /// The code (`04`) or the name (`monthly`).
    fn from_str(s: &str) -> std::result::Result<Frequency, String> {
        let s = s.trim();
        Frequency::ALL
            .iter()
            .find(|f| f.1 == s || f.2.eq_ignore_ascii_case(s))
            .map(|f| f.0)
            .ok_or_else(|| format!("unknown frequency {s:?}: 01 to 08, or once-off, daily, weekly, monthly, quarterly, half-yearly, yearly, on-demand"))
    }
}

/// A direct-debit mandate, which the customer confirms on the handset.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectDebitCreate {
    /// `input_CustomerMSISDN`.
    pub customer_msisdn: String,
    /// `input_ServiceProviderCode`.
    pub service_provider_code: String,
    /// `input_ThirdPartyReference`: your mandate reference, 1–32 letters and digits.
    pub third_party_reference: String,
    /// `input_AgreedTC`: the customer agreed to the terms (the gateway requires it).
    pub agreed_tc: bool,
    /// `input_FirstPaymentDate`, `YYYYMMDD` (defaults to today with a frequency).
    pub first_payment_date: Option<String>,
    /// `input_Frequency`.
    pub frequency: Option<Frequency>,
    /// `input_StartRangeOfDays`: first day of the month payments may be taken (monthly and
    /// longer frequencies).
    pub start_range_of_days: Option<u8>,
    /// `input_EndRangeOfDays`: last such day.
    pub end_range_of_days: Option<u8>,
    /// `input_ExpiryDate`, `YYYYMMDD`.
    pub expiry_date: Option<String>,
}

/// A payment collected under a mandate. Name the customer by MSISDN, token, or both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectDebitPayment {
    /// `input_CustomerMSISDN`.
    pub customer_msisdn: Option<String>,
    /// `input_MsisdnToken` (from the mandate's creation).
    pub msisdn_token: Option<String>,
    /// `input_ServiceProviderCode`: the mandate's.
    pub service_provider_code: String,
    /// `input_ThirdPartyReference`: the mandate reference.
    pub third_party_reference: String,
    /// `input_Amount`.
    pub amount: Amount,
    /// `input_MandateID`, checked against the reference when given.
    pub mandate_id: Option<String>,
}

/// A mandate's state, and optionally whether the customer could pay an amount now.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectDebitQuery {
    /// `input_CustomerMSISDN`.
    pub customer_msisdn: Option<String>,
    /// `input_MsisdnToken`.
    pub msisdn_token: Option<String>,
    /// `input_ServiceProviderCode`.
    pub service_provider_code: String,
    /// `input_ThirdPartyReference`: the mandate reference.
    pub third_party_reference: String,
    /// `input_MandateID`.
    pub mandate_id: Option<String>,
    /// `input_BalanceAmount` (with `input_QueryBalanceAmount` `True`): ask whether the
    /// customer holds this much; `None` asks nothing (`False`).
    pub balance_amount: Option<Amount>,
}

/// The cancellation of a mandate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DirectDebitCancel {
    /// `input_CustomerMSISDN`.
    pub customer_msisdn: Option<String>,
    /// `input_MsisdnToken`.
    pub msisdn_token: Option<String>,
    /// `input_ServiceProviderCode`.
    pub service_provider_code: String,
    /// `input_ThirdPartyReference`: the mandate reference.
    pub third_party_reference: String,
    /// `input_MandateID`.
    pub mandate_id: Option<String>,
}

// ---- answers ----------------------------------------------------------------------------------

/// The answer of C2B, B2C, B2B and reversals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_TransactionID`: the mobile-money transaction (of the reversal, for a
    /// reversal). `None` in asynchronous mode.
    #[serde(
        rename = "output_TransactionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_id: Option<String>,
    /// `output_ConversationID`: the gateway's id of the request.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`: the request's, echoed.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
}

impl PaymentResponse {
    /// Accepted in asynchronous mode: the result goes to the result URL.
    pub fn is_asynchronous(&self) -> bool {
        self.transaction_id.is_none()
    }
}

/// `True`/`False` in any case; anything else (`N/A`) is `None`.
fn flag(v: Option<&str>) -> Option<bool> {
    match v?.trim() {
        t if t.eq_ignore_ascii_case("true") => Some(true),
        f if f.eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

/// The answer of Query Transaction Status.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransactionStatusResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_ResponseTransactionStatus`: `Completed`, `Pending`, `Failed`, `Cancelled`,
    /// `Expired`. `None` in asynchronous mode.
    #[serde(
        rename = "output_ResponseTransactionStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_status: Option<String>,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
    /// `output_OriginalTransactionID`.
    #[serde(
        rename = "output_OriginalTransactionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub original_transaction_id: Option<String>,
    /// `output_Reversed`: `True` or `False`.
    #[serde(
        rename = "output_Reversed",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub reversed: Option<String>,
}

impl TransactionStatusResponse {
    /// Whether the transaction is `Completed`.
    pub fn is_completed(&self) -> bool {
        self.transaction_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("completed"))
    }

    /// Whether it was reversed (in part or whole), when the answer says.
    pub fn is_reversed(&self) -> Option<bool> {
        flag(self.reversed.as_deref())
    }
}

/// The answer of Query Beneficiary Name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeneficiaryNameResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_CustomerFirstName`. `None` in asynchronous mode.
    #[serde(
        rename = "output_CustomerFirstName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_first_name: Option<String>,
    /// `output_CustomerLastName`.
    #[serde(
        rename = "output_CustomerLastName",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub customer_last_name: Option<String>,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
}

/// The answer of Direct Debit Create.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectDebitCreateResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_TransactionReference`: the mandate reference.
    #[serde(
        rename = "output_TransactionReference",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_reference: Option<String>,
    /// `output_MsisdnToken`: names the customer in later direct-debit calls.
    #[serde(
        rename = "output_MsisdnToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub msisdn_token: Option<String>,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
    /// `output_MandateID`.
    #[serde(
        rename = "output_MandateID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mandate_id: Option<String>,
}

/// The answer of Direct Debit Payment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectDebitPaymentResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_TransactionID`. `None` in asynchronous mode.
    #[serde(
        rename = "output_TransactionID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_id: Option<String>,
    /// `output_MsisdnToken`.
    #[serde(
        rename = "output_MsisdnToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub msisdn_token: Option<String>,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
}

/// The answer of Query Direct Debit (the mandate's fields are `None` in asynchronous mode).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectDebitQueryResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
    /// `output_TransactionReference`: the mandate reference.
    #[serde(
        rename = "output_TransactionReference",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_reference: Option<String>,
    /// `output_SufficientBalance`: `True`, `False`, or `N/A` when not asked.
    #[serde(
        rename = "output_SufficientBalance",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub sufficient_balance: Option<String>,
    /// `output_MsisdnToken`.
    #[serde(
        rename = "output_MsisdnToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub msisdn_token: Option<String>,
    /// `output_MandateID`.
    #[serde(
        rename = "output_MandateID",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mandate_id: Option<String>,
    /// `output_MandateStatus`: `Active`, `Pending`, `Cancelled`, `Inactive`.
    #[serde(
        rename = "output_MandateStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub mandate_status: Option<String>,
    /// `output_AccountStatus`.
    #[serde(
        rename = "output_AccountStatus",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub account_status: Option<String>,
    /// `output_FirstPaymentDate`.
    #[serde(
        rename = "output_FirstPaymentDate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub first_payment_date: Option<String>,
    /// `output_Frequency`.
    #[serde(
        rename = "output_Frequency",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub frequency: Option<String>,
    /// `output_PaymentDayFrom`.
    #[serde(
        rename = "output_PaymentDayFrom",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_day_from: Option<String>,
    /// `output_PaymentDayTo`.
    #[serde(
        rename = "output_PaymentDayTo",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub payment_day_to: Option<String>,
    /// `output_ExpiryDate`.
    #[serde(
        rename = "output_ExpiryDate",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub expiry_date: Option<String>,
}

impl DirectDebitQueryResponse {
    /// Whether the mandate is `Active`.
    pub fn is_active(&self) -> bool {
        self.mandate_status
            .as_deref()
            .is_some_and(|s| s.eq_ignore_ascii_case("active"))
    }

    /// Whether the customer holds the queried balance amount (`None` when not asked).
    pub fn has_sufficient_balance(&self) -> Option<bool> {
        flag(self.sufficient_balance.as_deref())
    }
}

/// The answer of Cancel Direct Debit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DirectDebitCancelResponse {
    /// `output_ResponseCode`: `INS-0`.
    #[serde(rename = "output_ResponseCode")]
    pub response_code: InsCode,
    /// `output_ResponseDesc`.
    #[serde(rename = "output_ResponseDesc", default)]
    pub response_desc: String,
    /// `output_TransactionReference`: the mandate reference.
    #[serde(
        rename = "output_TransactionReference",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub transaction_reference: Option<String>,
    /// `output_MsisdnToken`.
    #[serde(
        rename = "output_MsisdnToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub msisdn_token: Option<String>,
    /// `output_ConversationID`.
    #[serde(rename = "output_ConversationID", default)]
    pub conversation_id: String,
    /// `output_ThirdPartyConversationID`.
    #[serde(rename = "output_ThirdPartyConversationID", default)]
    pub third_party_conversation_id: String,
}

// ---- operations -------------------------------------------------------------------------------

impl Client {
    /// `POST …/c2bPayment/singleStage/`: the customer pays (201, `INS-0`, the transaction
    /// id) once they confirm; `INS-2006` (422) if they cannot.
    pub fn c2b(&self, p: &C2bPayment) -> Request<'_, PaymentResponse> {
        let fields = priced(p.amount, self.market()).map(|f| {
            f.with("input_CustomerMSISDN", &p.customer_msisdn)
                .with("input_ServiceProviderCode", &p.service_provider_code)
                .with("input_TransactionReference", &p.transaction_reference)
                .with("input_PurchasedItemsDesc", &p.purchased_items_desc)
        });
        self.request(Method::POST, "c2bPayment/singleStage/", fields)
    }

    /// `POST …/b2cPayment/`: the business pays the customer.
    pub fn b2c(&self, p: &B2cPayment) -> Request<'_, PaymentResponse> {
        let fields = priced(p.amount, self.market()).map(|f| {
            f.with("input_CustomerMSISDN", &p.customer_msisdn)
                .with("input_ServiceProviderCode", &p.service_provider_code)
                .with("input_TransactionReference", &p.transaction_reference)
                .with("input_PaymentItemsDesc", &p.payment_items_desc)
        });
        self.request(Method::POST, "b2cPayment/", fields)
    }

    /// `POST …/b2bPayment/`: one business pays another.
    pub fn b2b(&self, p: &B2bPayment) -> Request<'_, PaymentResponse> {
        let fields = priced(p.amount, self.market()).map(|f| {
            f.with("input_PrimaryPartyCode", &p.primary_party_code)
                .with("input_ReceiverPartyCode", &p.receiver_party_code)
                .with("input_TransactionReference", &p.transaction_reference)
                .with("input_PurchasedItemsDesc", &p.purchased_items_desc)
        });
        self.request(Method::POST, "b2bPayment/", fields)
    }

    /// `PUT …/reversal/`: all of a transaction, or `amount` of it (never more than
    /// remains: `INS-15`). The answer's transaction id is the reversal's.
    pub fn reversal(&self, r: &Reversal) -> Request<'_, PaymentResponse> {
        let m = self.market();
        let amount = r.amount.map(|a| positive(a, "reversal amount")).transpose();
        let fields = amount.map(|amount| {
            Fields::default()
                .maybe("input_ReversalAmount", amount)
                .with("input_Country", m.country())
                .with("input_TransactionID", &r.transaction_id)
                .with("input_ServiceProviderCode", &r.service_provider_code)
        });
        self.request(Method::PUT, "reversal/", fields)
    }

    /// `GET …/queryTransactionStatus/`: `Completed`, `Pending`, … and whether it was
    /// reversed; `INS-23` if no transaction of this application has that reference.
    pub fn query_transaction_status(
        &self,
        q: &TransactionStatusQuery,
    ) -> Request<'_, TransactionStatusResponse> {
        let fields = Fields::default()
            .with("input_QueryReference", &q.query_reference)
            .with("input_Country", self.market().country())
            .with("input_ServiceProviderCode", &q.service_provider_code);
        self.request(Method::GET, "queryTransactionStatus/", Ok(fields))
    }

    /// `GET …/queryBeneficiaryName/`: the customer's first and last name (served in
    /// `vodafoneGHA`; elsewhere `INS-997`).
    pub fn query_beneficiary_name(
        &self,
        q: &BeneficiaryNameQuery,
    ) -> Request<'_, BeneficiaryNameResponse> {
        let fields = Fields::default()
            .with("input_CustomerMSISDN", &q.customer_msisdn)
            .with("input_Country", self.market().country())
            .with("input_ServiceProviderCode", &q.service_provider_code)
            .with("input_KycQueryType", "Name");
        self.request(Method::GET, "queryBeneficiaryName/", Ok(fields))
    }

    /// `POST …/directDebitCreation/`: a mandate; the answer carries its MSISDN token and
    /// mandate id once the customer confirms.
    pub fn direct_debit_create(
        &self,
        d: &DirectDebitCreate,
    ) -> Request<'_, DirectDebitCreateResponse> {
        let day = |d: Option<u8>| d.map(|d| format!("{d:02}"));
        let fields = Fields::default()
            .with("input_CustomerMSISDN", &d.customer_msisdn)
            .with("input_Country", self.market().country())
            .with("input_ServiceProviderCode", &d.service_provider_code)
            .with("input_ThirdPartyReference", &d.third_party_reference)
            .with("input_AgreedTC", if d.agreed_tc { "1" } else { "0" })
            .maybe("input_FirstPaymentDate", d.first_payment_date.as_deref())
            .maybe("input_Frequency", d.frequency)
            .maybe("input_StartRangeOfDays", day(d.start_range_of_days))
            .maybe("input_EndRangeOfDays", day(d.end_range_of_days))
            .maybe("input_ExpiryDate", d.expiry_date.as_deref());
        self.request(Method::POST, "directDebitCreation/", Ok(fields))
    }

    /// `POST …/directDebitPayment/`: collects `amount` under an active mandate (`INS-58`
    /// if there is none).
    pub fn direct_debit_payment(
        &self,
        p: &DirectDebitPayment,
    ) -> Request<'_, DirectDebitPaymentResponse> {
        let m = self.market();
        let fields = customer(p.customer_msisdn.as_deref(), p.msisdn_token.as_deref())
            .and_then(|()| positive(p.amount, "amount"))
            .map(|amount| {
                Fields::default()
                    .maybe("input_MsisdnToken", p.msisdn_token.as_deref())
                    .maybe("input_CustomerMSISDN", p.customer_msisdn.as_deref())
                    .with("input_Country", m.country())
                    .with("input_ServiceProviderCode", &p.service_provider_code)
                    .with("input_ThirdPartyReference", &p.third_party_reference)
                    .with("input_Amount", amount)
                    .with("input_Currency", m.currency())
                    .maybe("input_MandateID", p.mandate_id.as_deref())
            });
        self.request(Method::POST, "directDebitPayment/", fields)
    }

    /// `GET …/queryDirectDebit/`: the mandate's status and schedule, and with a balance
    /// amount whether the customer could pay it now.
    pub fn query_direct_debit(
        &self,
        q: &DirectDebitQuery,
    ) -> Request<'_, DirectDebitQueryResponse> {
        let m = self.market();
        let fields = customer(q.customer_msisdn.as_deref(), q.msisdn_token.as_deref())
            .and_then(|()| {
                q.balance_amount
                    .map(|a| positive(a, "balance amount"))
                    .transpose()
            })
            .map(|balance| {
                Fields::default()
                    .with(
                        "input_QueryBalanceAmount",
                        if balance.is_some() { "True" } else { "False" },
                    )
                    .maybe("input_BalanceAmount", balance)
                    .with("input_Country", m.country())
                    .maybe("input_CustomerMSISDN", q.customer_msisdn.as_deref())
                    .maybe("input_MsisdnToken", q.msisdn_token.as_deref())
                    .with("input_ServiceProviderCode", &q.service_provider_code)
                    .with("input_ThirdPartyReference", &q.third_party_reference)
                    .maybe("input_MandateID", q.mandate_id.as_deref())
                    .with("input_Currency", m.currency())
            });
        self.request(Method::GET, "queryDirectDebit/", fields)
    }

    /// `PUT …/directDebitCancel/`: ends a mandate (`INS-6` "Mandate does not exist" for an
    /// unknown one).
    pub fn cancel_direct_debit(
        &self,
        c: &DirectDebitCancel,
    ) -> Request<'_, DirectDebitCancelResponse> {
        let m = self.market();
        let fields = customer(c.customer_msisdn.as_deref(), c.msisdn_token.as_deref()).map(|()| {
            Fields::default()
                .maybe("input_MsisdnToken", c.msisdn_token.as_deref())
                .maybe("input_CustomerMSISDN", c.customer_msisdn.as_deref())
                .with("input_Country", m.country())
                .with("input_ServiceProviderCode", &c.service_provider_code)
                .with("input_ThirdPartyReference", &c.third_party_reference)
                .maybe("input_MandateID", c.mandate_id.as_deref())
        });
        self.request(Method::PUT, "directDebitCancel/", fields)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_read_codes_and_names() {
        assert_eq!("04".parse::<Frequency>(), Ok(Frequency::Monthly));
        assert_eq!(
            "half-yearly".parse::<Frequency>(),
            Ok(Frequency::HalfYearly)
        );
        assert_eq!(Frequency::OnDemand.to_string(), "08");
        assert!("09".parse::<Frequency>().is_err());
    }

    #[test]
    fn answers_read_the_documented_fields_and_ignore_others() {
        let r: PaymentResponse = serde_json::from_str(
            r#"{"output_ResponseCode":"INS-0","output_ResponseDesc":"Request processed successfully","output_TransactionID":"G27DEn1DLoQ3","output_ConversationID":"08536a5d65ea4f50866db06f577cc5c1","output_ThirdPartyConversationID":"asv02e5958774f7ba228d83d0d689761","output_Extra":"x"}"#,
        )
        .unwrap();
        assert_eq!(r.response_code, InsCode::Success);
        assert_eq!(r.transaction_id.as_deref(), Some("G27DEn1DLoQ3"));
        assert!(!r.is_asynchronous());
        let back = serde_json::to_value(&r).unwrap();
        assert_eq!(back["output_TransactionID"], "G27DEn1DLoQ3");
        let s: TransactionStatusResponse = serde_json::from_str(
            r#"{"output_ResponseCode":"INS-0","output_ResponseTransactionStatus":"Completed","output_Reversed":"False"}"#,
        )
        .unwrap();
        assert!(s.is_completed());
        assert_eq!(s.is_reversed(), Some(false));
    }
}
