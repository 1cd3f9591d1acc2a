//! Every money-moving operation: request-to-pay and request-to-withdraw (collection),
//! transfer, deposit and refund (disbursement), transfer (remittance), and their statuses.
//!
//! They share one shape (reference §4–6): a creating POST with `X-Reference-Id` and an
//! optional `X-Callback-Url` answered 202, then `GET …/{referenceId}` for the status. What
//! differs is the party field (`payer` for collections, `payee` for payouts, none for a
//! refund, whose payee is the original payer) and the callback method of the version.

use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::momo::CashTransferDetails;
use mkoba_platform::CreateError;
use mkoba_platform::model::{
    CallbackMethod, NewPayment, PartyIdType, PaymentKind, Product, SubscriptionKey,
};

use crate::error::{MomoError, json};
use crate::{MomoState, environment_currency, status_body, validate};

/// One creating operation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Operation {
    pub product: Product,
    pub kind: PaymentKind,
    /// The callback method the definitions give for this version (`None`: the platform's
    /// configured default, PUT unless changed).
    pub callback_method: Option<CallbackMethod>,
}

/// The payee of a refund: the payer of the collection it refunds, if that is one of the
/// developer's API users' and in the same environment (else the 404). Whether the amount is
/// still refundable is decided by the writer, race-free.
async fn refunded_party(
    state: &MomoState,
    user: &mkoba_platform::model::ApiUser,
    original: uuid::Uuid,
) -> Result<mkoba_platform::model::Party, MomoError> {
    let not_found = MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    let payment = state
        .platform
        .payments()
        .get(&original)
        .await?
        .filter(|p| p.kind.is_refundable() && p.environment == user.target_environment)
        .ok_or(not_found.clone())?;
    // The partner's: an API user of the same developer (MTN's products each have their API
    // user, so a refund usually comes from another than the collection).
    if payment.api_user != user.id {
        let owner = state
            .platform
            .credentials()
            .api_user(&payment.api_user)
            .await?;
        if owner.is_none_or(|o| o.developer_id != user.developer_id) {
            return Err(not_found);
        }
    }
    Ok(payment.party)
}

/// A creating POST's answer: 202 with an empty body and `Content-Length: 0`.
pub(crate) fn accepted() -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// `POST /{product}/v{1,2}_0/{operation}`.
pub async fn create(
    state: MomoState,
    subscription: SubscriptionKey,
    headers: HeaderMap,
    body: Bytes,
    op: Operation,
) -> Result<Response, MomoError> {
    let user = crate::auth::bearer_user(&state, &headers, op.product, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::x_reference_id(&headers)?;
    let callback_url = validate::callback_url(&headers, &user)?;
    let body = validate::json_body(&body)?;
    let amount_text = validate::required(&body, "amount")?;
    let currency = validate::currency(&validate::required(&body, "currency")?)?;
    let external_id = validate::external_id(&body)?;
    let payer_message = validate::free_text(&body, "payerMessage")?;
    let payee_note = validate::free_text(&body, "payeeNote")?;
    // The body first (400), then the currency (500), then the refund's original (404), as
    // for every other call: a bad body is told so whatever it names.
    let (party, refund_of) = match op.kind {
        PaymentKind::RequestToPay | PaymentKind::RequestToWithdraw => {
            (Some(validate::party(&body, "payer")?), None)
        }
        PaymentKind::Transfer | PaymentKind::Deposit | PaymentKind::CashTransfer => {
            (Some(validate::party(&body, "payee")?), None)
        }
        PaymentKind::Invoice | PaymentKind::PreApproval | PaymentKind::BillPayment => {
            // Served by `v2`, whose bodies differ; never routed here.
            return Err(MomoError::NotFound);
        }
        PaymentKind::Refund => {
            let original = validate::required(&body, "referenceIdToRefund")?;
            (
                None,
                Some(validate::reference_id(&original, "referenceIdToRefund")?),
            )
        }
        // M-Pesa operations have their own dialect.
        _ => return Err(MomoError::NotFound),
    };
    let details = match op.kind {
        PaymentKind::CashTransfer => Some(cash_transfer_details(&body)?),
        _ => None,
    };
    let amount = validate::amount(&amount_text, currency)?;
    validate::check_currency(currency, environment_currency(&user.target_environment))?;
    let party = match (party, refund_of) {
        (Some(party), _) => party,
        (None, Some(original)) => refunded_party(&state, &user, original).await?,
        (None, None) => return Err(MomoError::NotFound),
    };
    let payment = NewPayment {
        reference_id,
        kind: op.kind,
        product: op.product,
        api_user: user.id,
        environment: user.target_environment.clone(),
        amount,
        external_id,
        party,
        payer_message,
        payee_note,
        callback_url,
        callback_method: op.callback_method,
        refund_of,
        details,
        expires_at_ms: None,
        short_code: None,
        mandate: None,
    };
    match state.platform.payments().create(payment).await {
        Ok(()) => {
            tracing::debug!(transfer.reference_id = %reference_id, kind = op.kind.as_str(), "payment accepted");
            Ok(accepted())
        }
        Err(CreateError::Duplicate) => Err(MomoError::Platform(
            StatusCode::CONFLICT,
            "RESOURCE_ALREADY_EXIST",
        )),
        Err(e) => Err(e.into()),
    }
}

/// The identity types of ISO 20022 `PersonIdentificationType1Code` the definition allows.
const IDENTIFICATION_TYPES: [&str; 10] = [
    "PASS", "CPFA", "SRSSA", "NRIN", "OTHR", "DRLC", "SOCS", "AREG", "IDCD", "EMID",
];

/// A cash transfer's extra fields, validated and kept as JSON.
fn cash_transfer_details(body: &serde_json::Value) -> Result<String, MomoError> {
    let text = |name: &str| validate::short_text(body, name);
    // The definition's spelling, or the word's; both at once would leave a guess which
    // counted (as a member given twice does).
    let orginating_country = match (text("orginatingCountry")?, text("originatingCountry")?) {
        (Some(_), Some(_)) => {
            return Err(MomoError::bad(
                "orginatingCountry and originatingCountry are one field: give one of them",
            ));
        }
        (a, b) => a.or(b),
    };
    let details = CashTransferDetails {
        orginating_country,
        original_amount: text("originalAmount")?,
        original_currency: text("originalCurrency")?,
        payer_identification_type: text("payerIdentificationType")?,
        payer_identification_number: text("payerIdentificationNumber")?,
        payer_identity: text("payerIdentity")?,
        payer_first_name: text("payerFirstName")?,
        payer_sur_name: text("payerSurName")?,
        payer_language_code: text("payerLanguageCode")?,
        payer_email: text("payerEmail")?,
        payer_msisdn: text("payerMsisdn")?,
        payer_gender: text("payerGender")?,
    };
    if let Some(t) = &details.payer_identification_type
        && !IDENTIFICATION_TYPES.contains(&t.as_str())
    {
        return Err(MomoError::bad(format!(
            "payerIdentificationType must be one of {}, got {t:?}",
            IDENTIFICATION_TYPES.join(", ")
        )));
    }
    // The payer's contacts as the definition types them (`Msisdn`, `Email`): the rules of a
    // party's, each refusal naming its field.
    // The messages begin with the name of the field they were written for.
    let named = |said: &str, field: &str, e: MomoError| match e {
        MomoError::BadRequest(m) if m.starts_with(said) => {
            MomoError::bad(format!("{field}{}", &m[said.len()..]))
        }
        e => e,
    };
    if let Some(m) = &details.payer_msisdn {
        validate::party_id_of(PartyIdType::Msisdn, m, "payerMsisdn")?;
    }
    if let Some(m) = &details.payer_email {
        validate::party_id_of(PartyIdType::Email, m, "payerEmail")?;
    }
    let original_currency = match &details.original_currency {
        Some(c) => {
            Some(validate::currency(c).map_err(|e| named("currency", "originalCurrency", e))?)
        }
        None => None,
    };
    if let (Some(a), Some(c)) = (&details.original_amount, original_currency) {
        validate::amount(a, c).map_err(|e| named("amount", "originalAmount", e))?;
    }
    serde_json::to_string(&details).map_err(|_| MomoError::Internal)
}

/// `GET /{product}/v{1,2}_0/{operation}/{referenceId}`.
pub async fn status(
    state: MomoState,
    subscription: SubscriptionKey,
    headers: HeaderMap,
    reference_id: String,
    product: Product,
    kind: PaymentKind,
) -> Result<Response, MomoError> {
    let user = crate::auth::bearer_user(&state, &headers, product, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::reference_id(&reference_id, "referenceId")?;
    let payment = state
        .platform
        .payments()
        .get(&reference_id)
        .await?
        .filter(|p| p.api_user == user.id && p.kind == kind && p.product == product)
        .ok_or(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        ))?;
    Ok(json(
        StatusCode::OK,
        &status_body(&payment, state.config.reason_format),
    ))
}
