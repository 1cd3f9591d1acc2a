//! Collection: delivery notifications for a request-to-pay (reference §4.9).

use crate::extract::Path;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_platform::NotifyError;
use mkoba_platform::model::{Product, SubscriptionKey};

use crate::error::MomoError;
use crate::{MomoState, validate};

/// `POST /collection/v1_0/requesttopay/{referenceId}/deliverynotification`: the message
/// comes in the `notificationMessage` header or the body (clients do either).
pub async fn request_to_pay_delivery_notification(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(reference_id): Path<String>,
    body: Bytes,
) -> Result<Response, MomoError> {
    let user =
        crate::auth::bearer_user(&state, &headers, Product::Collection, &subscription).await?;
    validate::target_environment(&headers, &user)?;
    let reference_id = validate::reference_id(&reference_id, "referenceId")?;
    // MTN's definitions give the message as a header and as a body member, and clients
    // send either or both (MTN's Java SDK always the body): each one given is checked, an
    // empty one counts as not given, and two that differ are refused rather than one of
    // them chosen unseen.
    if headers
        .get_all("notificationmessage")
        .iter()
        .nth(1)
        .is_some()
    {
        return Err(MomoError::bad(
            "the notificationMessage header is given more than once: send it once",
        ));
    }
    let given = |m: Option<String>| m.filter(|m| !m.trim().is_empty());
    let from_header = given(validate::text_header(&headers, "notificationmessage"));
    let from_body = given(validate::string_field(
        &validate::json_body(&body)?,
        "notificationMessage",
    )?);
    for m in from_header.iter().chain(&from_body) {
        validate::check_text(m, "notificationMessage")?;
    }
    match (from_header, from_body) {
        (Some(h), Some(b)) if h != b => {
            return Err(MomoError::bad(
                "notificationMessage differs between the header and the body: send one, or the same text in both",
            ));
        }
        (None, None) => {
            return Err(MomoError::bad(
                "notificationMessage is required (header or body)",
            ));
        }
        _ => {}
    }
    match state
        .platform
        .payments()
        .notify_delivery(reference_id, user.id)
        .await
    {
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
        Err(NotifyError::Expired) => Err(MomoError::Platform(StatusCode::GONE, "EXPIRED")),
        Err(NotifyError::TooMany) => Err(MomoError::Platform(
            StatusCode::TOO_MANY_REQUESTS,
            "TOO_MANY_REQUESTS",
        )),
        Err(NotifyError::Internal) => Err(MomoError::Internal),
    }
}
