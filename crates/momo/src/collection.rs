//! Collection: request-to-pay, its status and delivery notifications (reference §4.2–4.3, §4.9).

use crate::extract::Path;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::model::{NewPayment, PaymentKind, Product, SubscriptionKey};
use mkoba_platform::{CreateError, NotifyError};

use crate::error::{MomoError, json};
use crate::{MomoState, environment_currency, status_body, validate};

/// A creating POST's answer: 202 with an empty body and `Content-Length: 0`.
pub(crate) fn accepted() -> Response {
    let mut r = StatusCode::ACCEPTED.into_response();
    r.headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
    r
}

/// `POST /collection/v1_0/requesttopay`.
pub async fn request_to_pay(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let product = Product::Collection;
    let user = crate::auth::bearer_user(&state, &headers, product, &subscription)?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::x_reference_id(&headers)?;
    let callback_url = validate::callback_url(&headers, &user)?;
    let body = validate::json_body(&body)?;
    let amount_text = validate::required(&body, "amount")?;
    let currency = validate::currency(&validate::required(&body, "currency")?)?;
    let payer = validate::party(&body, "payer")?;
    let external_id = validate::string_field(&body, "externalId")?;
    let payer_message = validate::free_text(&body, "payerMessage")?;
    let payee_note = validate::free_text(&body, "payeeNote")?;
    let amount = validate::amount(&amount_text, currency)?;
    validate::check_currency(currency, environment_currency(&user.target_environment))?;
    let payment = NewPayment {
        reference_id,
        kind: PaymentKind::RequestToPay,
        product,
        api_user: user.id,
        environment: user.target_environment.clone(),
        amount,
        external_id,
        party: payer,
        payer_message,
        payee_note,
        callback_url,
    };
    match state.platform.create_payment(payment).await {
        Ok(()) => {
            tracing::debug!(transfer.reference_id = %reference_id, "request to pay accepted");
            Ok(accepted())
        }
        Err(CreateError::Duplicate) => Err(MomoError::Platform(
            StatusCode::CONFLICT,
            "RESOURCE_ALREADY_EXIST",
        )),
        Err(_) => Err(MomoError::Internal),
    }
}

/// `GET /collection/v1_0/requesttopay/{referenceId}`.
pub async fn get_request_to_pay_status(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
) -> Result<Response, MomoError> {
    let user = crate::auth::bearer_user(&state, &headers, Product::Collection, &subscription)?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::reference_id(&reference_id, "referenceId")?;
    let payment = state
        .platform
        .payment(&reference_id)?
        .filter(|p| p.api_user == user.id && p.kind == PaymentKind::RequestToPay)
        .ok_or(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        ))?;
    Ok(json(
        StatusCode::OK,
        &status_body(&payment, state.config.reason_format),
    ))
}

/// `POST /collection/v1_0/requesttopay/{referenceId}/deliverynotification`: the message
/// comes in the `notificationMessage` header or the body (clients do either).
pub async fn request_to_pay_delivery_notification(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
    body: Bytes,
) -> Result<Response, MomoError> {
    let user = crate::auth::bearer_user(&state, &headers, Product::Collection, &subscription)?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::reference_id(&reference_id, "referenceId")?;
    let from_header = validate::header(&headers, "notificationmessage").map(str::to_owned);
    let from_body = validate::string_field(&validate::json_body(&body)?, "notificationMessage")?;
    let message = from_header
        .or(from_body)
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| MomoError::bad("notificationMessage is required (header or body)"))?;
    validate::check_text(&message, "notificationMessage")?;
    match state.platform.notify_delivery(reference_id, user.id).await {
        Ok(()) => {
            let mut r = StatusCode::OK.into_response();
            r.headers_mut()
                .insert(header::CONTENT_LENGTH, HeaderValue::from_static("0"));
            Ok(r)
        }
        Err(NotifyError::NotFound) => Err(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        )),
        Err(NotifyError::NotCompleted) => Err(MomoError::Platform(
            StatusCode::CONFLICT,
            "TRANSACTION_NOT_COMPLETED",
        )),
        Err(NotifyError::TooMany) => Err(MomoError::Platform(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
        )),
        Err(NotifyError::Internal) => Err(MomoError::Internal),
    }
}
