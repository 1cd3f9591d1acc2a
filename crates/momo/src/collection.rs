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
    let from_header = validate::text_header(&headers, "notificationmessage");
    let from_body = validate::string_field(&validate::json_body(&body)?, "notificationMessage")?;
    let message = from_header
        .or(from_body)
        .filter(|m| !m.trim().is_empty())
        .ok_or_else(|| MomoError::bad("notificationMessage is required (header or body)"))?;
    validate::check_text(&message, "notificationMessage")?;
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
