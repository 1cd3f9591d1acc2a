//! Collection v2 resources with their own lifecycles (reference §4.8, §4.10, §4.11):
//! invoices, pre-approvals and `CreatePayments`.
//!
//! All three are payments on the platform, settled by the same worker as request-to-pay:
//! an invoice is paid by its intended payer, a pre-approval is approved by its payer (no
//! money moves), a v2 payment is paid by the customer named in `customerReference`. Their
//! status bodies carry `reason`/`errorReason` as the definitions' `{code, message}` object.
//! Cancelling (invoice, pre-approval) makes the payment FAILED with `TRANSACTION_CANCELED`.

use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::momo::{
    ErrorReason, InvoiceResult, Party as WireParty, PaymentResult, PreApprovalDetails,
    PreApprovalResult, Reason,
};
use mkoba_ledger::Money;
use mkoba_platform::model::{
    ApiUser, CallbackMethod, NewPayment, Party, PartyIdType, Payment, PaymentKind, PaymentStatus,
    Product, SubscriptionKey,
};
use mkoba_platform::{CancelError, CreateError};
use serde_json::{Value, json};
use uuid::Uuid;

use crate::error::{MomoError, json as json_response, message_for};
use crate::extract::Path;
use crate::{MomoState, StatusBody, environment_currency, validate};

fn wire(p: &Party) -> WireParty {
    WireParty {
        party_id_type: p.id_type.as_str().to_owned(),
        party_id: p.id.clone(),
    }
}

/// `YYYY-MM-DDTHH:MM:SS` (UTC) of Unix milliseconds.
fn iso(ms: i64) -> String {
    let t = time::OffsetDateTime::from_unix_timestamp(ms.div_euclid(1000))
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    format!(
        "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    )
}

/// A failed payment's reason as the definitions' `{code, message}` object.
pub(crate) fn error_reason(p: &Payment) -> Option<Reason> {
    p.reason
        .as_ref()
        .filter(|_| p.status == PaymentStatus::Failed)
        .map(|code| {
            Reason::Object(ErrorReason {
                code: code.as_str().to_owned(),
                message: message_for(code.as_str()).to_owned(),
            })
        })
}

fn details(p: &Payment) -> Value {
    p.details
        .as_deref()
        .and_then(|d| serde_json::from_str(d).ok())
        .unwrap_or(Value::Null)
}

use mkoba_platform::widget::payment_reference;

/// The status body of a v2 resource (also its callback body).
pub(crate) fn status_body(p: &Payment) -> StatusBody {
    let d = details(p);
    match p.kind {
        PaymentKind::Invoice => StatusBody::Invoice(Box::new(InvoiceResult {
            reference_id: p.reference_id.to_string(),
            external_id: p.external_id.clone(),
            amount: p.amount.to_decimal_string(),
            currency: p.currency().to_string(),
            status: p.status.as_str().to_owned(),
            payment_reference: (p.status == PaymentStatus::Pending)
                .then(|| payment_reference(&p.reference_id)),
            invoice_id: p.reference_id.to_string(),
            expiry_date_time: p.expires_at_ms.map(iso),
            payee_first_name: Some("Sand".to_owned()),
            payee_last_name: Some("Box".to_owned()),
            error_reason: error_reason(p),
            intended_payer: wire(&p.party),
            description: d["description"].as_str().map(str::to_owned),
        })),
        PaymentKind::PreApproval => StatusBody::PreApproval(PreApprovalResult {
            payer: wire(&p.party),
            payer_currency: p.currency().to_string(),
            payer_message: p.payer_message.clone(),
            status: p.status.as_str().to_owned(),
            expiration_date_time: p.pre_approval_expiry_ms().map(iso),
            reason: error_reason(p),
        }),
        _ => StatusBody::Payment(PaymentResult {
            reference_id: p.reference_id.to_string(),
            status: p.status.as_str().to_owned(),
            financial_transaction_id: p.financial_transaction_id.clone(),
            reason: error_reason(p),
        }),
    }
}

/// Checks shared by every creating POST; the caller, its reference id and callback URL.
async fn caller(
    state: &MomoState,
    subscription: &SubscriptionKey,
    headers: &HeaderMap,
) -> Result<(ApiUser, Uuid, Option<String>), MomoError> {
    let user = crate::auth::bearer_user(state, headers, Product::Collection, subscription).await?;
    validate::target_environment(headers, &user)?;
    let reference_id = validate::x_reference_id(headers)?;
    let callback_url = validate::callback_url(headers, &user)?;
    Ok((user, reference_id, callback_url))
}

async fn accept(state: &MomoState, payment: NewPayment) -> Result<Response, MomoError> {
    match state.platform.payments().create(payment).await {
        Ok(()) => Ok(crate::payments::accepted()),
        Err(CreateError::Duplicate) => Err(MomoError::Platform(
            StatusCode::CONFLICT,
            "RESOURCE_ALREADY_EXIST",
        )),
        Err(e) => Err(e.into()),
    }
}

fn seconds(body: &Value, name: &str) -> Result<Option<i64>, MomoError> {
    match validate::string_field(body, name)? {
        None => Ok(None),
        Some(s) => match s.trim().parse::<i64>() {
            Ok(n) if n > 0 && n <= MAX_VALIDITY_SECS => Ok(Some(n)),
            _ => Err(MomoError::bad(format!(
                "{name} must be a positive number of seconds, at most {MAX_VALIDITY_SECS} (100 years), got {s:?}"
            ))),
        },
    }
}

/// The longest `validityDuration` or `validityTime` taken: a hundred years, so an expiry
/// stays a date (MTN's definitions give no limit).
const MAX_VALIDITY_SECS: i64 = 100 * 365 * 86_400;

/// `POST /collection/v2_0/invoice`.
pub async fn create_invoice(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let (user, reference_id, callback_url) = caller(&state, &subscription, &headers).await?;
    let body = validate::json_body(&body)?;
    let amount_text = validate::required(&body, "amount")?;
    let currency = validate::currency(&validate::required(&body, "currency")?)?;
    let payer = validate::party(&body, "intendedPayer")?;
    let payee = match body.get("payee") {
        Some(Value::Null) | None => None,
        Some(_) => Some(validate::party(&body, "payee")?),
    };
    let description = validate::free_text(&body, "description")?;
    let validity = seconds(&body, "validityDuration")?;
    let amount = validate::amount(&amount_text, currency)?;
    validate::check_currency(currency, environment_currency(&user.target_environment))?;
    let details = json!({
        "validityDuration": validity,
        "description": description,
        "payee": payee.map(|p| json!({"partyIdType": p.id_type.as_str(), "partyId": p.id})),
    });
    accept(
        &state,
        NewPayment {
            reference_id,
            kind: PaymentKind::Invoice,
            product: Product::Collection,
            api_user: user.id,
            environment: user.target_environment.clone(),
            amount,
            external_id: validate::external_id(&body)?,
            party: payer,
            payer_message: None,
            payee_note: None,
            callback_url,
            // The definitions' "PUT Callback URL".
            callback_method: Some(CallbackMethod::Put),
            refund_of: None,
            details: Some(details.to_string()),
            expires_at_ms: validity.map(|secs| {
                state
                    .platform
                    .clocks()
                    .now_for(&user.id)
                    .saturating_add(secs * 1000)
            }),
            short_code: None,
            mandate: None,
        },
    )
    .await
}

/// `POST /collection/v2_0/preapproval`.
pub async fn create_pre_approval(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let (user, reference_id, callback_url) = caller(&state, &subscription, &headers).await?;
    let body = validate::json_body(&body)?;
    let payer = validate::party(&body, "payer")?;
    let currency = validate::currency(&validate::required(&body, "payerCurrency")?)?;
    let payer_message = validate::free_text(&body, "payerMessage")?;
    let validity = seconds(&body, "validityTime")?;
    validate::check_currency(currency, environment_currency(&user.target_environment))?;
    accept(
        &state,
        NewPayment {
            reference_id,
            kind: PaymentKind::PreApproval,
            product: Product::Collection,
            api_user: user.id,
            environment: user.target_environment.clone(),
            amount: Money::from_minor(0, currency),
            external_id: None,
            party: payer,
            payer_message,
            payee_note: None,
            callback_url,
            // The definitions' "PUT Callback URL".
            callback_method: Some(CallbackMethod::Put),
            refund_of: None,
            details: Some(json!({ "validityTime": validity }).to_string()),
            expires_at_ms: None,
            short_code: None,
            mandate: None,
        },
    )
    .await
}

/// `POST /collection/v2_0/payment`.
pub async fn create_payment(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let (user, reference_id, callback_url) = caller(&state, &subscription, &headers).await?;
    let body = validate::json_body(&body)?;
    let money = body.get("money").filter(|m| m.is_object()).ok_or_else(|| {
        MomoError::bad(r#"money is required: {"amount":"1000","currency":"EUR"}"#)
    })?;
    let amount_text = validate::required(money, "amount")?;
    let currency = validate::currency(&validate::required(money, "currency")?)?;
    let customer = validate::required(&body, "customerReference")?;
    // The definition's example is `+46070911111`: the `+` of the international form is
    // taken, as a person writes the number.
    let number = customer.trim();
    let number = number.strip_prefix('+').unwrap_or(number);
    let party = Party {
        id_type: PartyIdType::Msisdn,
        id: validate::party_id(PartyIdType::Msisdn, number).map_err(|_| {
            MomoError::bad(format!(
                "customerReference must be the paying customer's MSISDN, 4 to 15 digits with an optional leading '+' (e.g. +46070911111): Mkoba debits that customer's wallet; got {customer:?}"
            ))
        })?,
    };
    let mut extra = serde_json::Map::new();
    for field in [
        "serviceProviderUserName",
        "couponId",
        "productId",
        "productOfferingId",
    ] {
        if let Some(v) = validate::short_text(&body, field)? {
            extra.insert(field.to_owned(), Value::String(v));
        }
    }
    for field in ["receiverMessage", "senderNote"] {
        if let Some(v) = validate::free_text(&body, field)? {
            extra.insert(field.to_owned(), Value::String(v));
        }
    }
    match body.get("maxNumberOfRetries") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Number(n)) if n.as_u64().is_some_and(|n| n <= 1_000) => {
            extra.insert("maxNumberOfRetries".to_owned(), v.clone());
        }
        Some(_) => {
            return Err(MomoError::bad(
                "maxNumberOfRetries must be a whole number from 0 to 1000",
            ));
        }
    }
    match body.get("includeSenderCharges") {
        None | Some(Value::Null) => {}
        Some(v @ Value::Bool(_)) => {
            extra.insert("includeSenderCharges".to_owned(), v.clone());
        }
        Some(_) => return Err(MomoError::bad("includeSenderCharges must be true or false")),
    }
    let amount = validate::amount(&amount_text, currency)?;
    validate::check_currency(currency, environment_currency(&user.target_environment))?;
    accept(
        &state,
        NewPayment {
            reference_id,
            kind: PaymentKind::BillPayment,
            product: Product::Collection,
            api_user: user.id,
            environment: user.target_environment.clone(),
            amount,
            external_id: validate::short_text(&body, "externalTransactionId")?,
            party,
            payer_message: validate::free_text(&body, "senderNote")?,
            payee_note: validate::free_text(&body, "receiverMessage")?,
            callback_url,
            // The definitions' "PUT Callback URL".
            callback_method: Some(CallbackMethod::Put),
            refund_of: None,
            details: Some(Value::Object(extra).to_string()),
            expires_at_ms: None,
            short_code: None,
            mandate: None,
        },
    )
    .await
}

/// `GET /collection/v2_0/{invoice|preapproval|payment}/{referenceId}`.
pub(crate) async fn get_status(
    state: MomoState,
    subscription: SubscriptionKey,
    headers: HeaderMap,
    reference_id: String,
    kind: PaymentKind,
) -> Result<Response, MomoError> {
    crate::payments::status(
        state,
        subscription,
        headers,
        reference_id,
        Product::Collection,
        kind,
    )
    .await
}

fn cancel_error(e: CancelError) -> MomoError {
    match e {
        CancelError::NotFound => MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND"),
        CancelError::NotCancellable => {
            MomoError::Platform(StatusCode::INTERNAL_SERVER_ERROR, "NOT_ALLOWED")
        }
        CancelError::Internal => MomoError::Internal,
    }
}

/// `DELETE /collection/v2_0/invoice/{referenceId}`: needs its own `X-Reference-Id` and a
/// body `{"externalId":"…"}`, which the answer echoes (without one, the invoice's own).
pub async fn cancel_invoice(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
    body: Bytes,
) -> Result<Response, MomoError> {
    let (user, _cancel_reference, callback) = caller(&state, &subscription, &headers).await?;
    let reference_id = validate::reference_id(&reference_id, "referenceId")?;
    let body = validate::json_body(&body)?;
    let external_id = validate::external_id(&body)?;
    // The cancellation's callback goes to this request's X-Callback-Url when it has one
    // (MTN's definition: "Callback URL to send callback to once the invoice is
    // completed"), else to the invoice's.
    state
        .platform
        .payments()
        .cancel(reference_id, user.id, PaymentKind::Invoice, callback)
        .await
        .map_err(cancel_error)?;
    let external_id = match external_id {
        Some(id) => Some(id),
        None => state
            .platform
            .payments()
            .get(&reference_id)
            .await?
            .and_then(|p| p.external_id),
    };
    Ok(json_response(
        StatusCode::OK,
        &json!({ "externalId": external_id }),
    ))
}

/// `DELETE /collection/v1_0/preapproval/{preApprovalId}`: 200 with an empty body.
pub async fn cancel_pre_approval(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
) -> Result<Response, MomoError> {
    let user =
        crate::auth::bearer_user(&state, &headers, Product::Collection, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::reference_id(&reference_id, "preapprovalid")?;
    state
        .platform
        .payments()
        .cancel(reference_id, user.id, PaymentKind::PreApproval, None)
        .await
        .map_err(cancel_error)?;
    let mut r = StatusCode::OK.into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    Ok(r)
}

/// `GET /collection/v1_0/preapprovals/{accountHolderIdType}/{accountHolderId}`: the payer's
/// approved pre-approvals for this API user (an empty list when there are none), those
/// whose validity has run out with the status `EXPIRED`. A payer named by `alias` or `id`
/// (the definition's other types) has none: no payment's party is of either type.
pub async fn get_approved_pre_approvals(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path((id_type, id)): Path<(String, String)>,
) -> Result<Response, MomoError> {
    let user =
        crate::auth::bearer_user(&state, &headers, Product::Collection, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    if let Some(alias_or_id) = validate::alias_or_id(&id_type, &id) {
        alias_or_id?;
        return Ok(json_response(StatusCode::OK, &json!([])));
    }
    let id_type = PartyIdType::parse_ignore_case(&id_type).ok_or_else(|| {
        MomoError::bad(format!(
            "accountHolderIdType must be msisdn, email, party_code, id or alias, got {id_type:?}"
        ))
    })?;
    let party = Party {
        id_type,
        id: validate::party_id_of(id_type, &id, "accountHolderId")?,
    };
    // Expiry is judged on the API user's time (its test clock's when it has one).
    let now = state.platform.clocks().now_for(&user.id);
    let list: Vec<PreApprovalDetails> = state
        .platform
        .payments()
        .of_party(&user.id, PaymentKind::PreApproval, &party)
        .await?
        .into_iter()
        .filter(|p| p.status == PaymentStatus::Successful)
        .map(|p| {
            let expires = p.pre_approval_expiry_ms();
            PreApprovalDetails {
                pre_approval_id: p.reference_id.to_string(),
                to_fri: format!("FRI:{}/API", user.id),
                from_fri: format!("FRI:{}/{}", p.party.id, p.party.id_type.as_str()),
                from_currency: p.currency().to_string(),
                created_time: iso(p.created_at_ms),
                approved_time: p.settled_at_ms.map(iso),
                expiry_time: expires.map(iso),
                status: if expires.is_some_and(|e| now >= e) {
                    "EXPIRED"
                } else {
                    "APPROVED"
                }
                .to_owned(),
                message: p.payer_message.clone().unwrap_or_default(),
            }
        })
        .collect();
    Ok(json_response(StatusCode::OK, &list))
}
