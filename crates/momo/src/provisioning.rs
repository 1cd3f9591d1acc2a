//! The sandbox provisioning API at the host root (`/v1_0/apiuser…`, reference §3).

use crate::extract::Path;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::momo::{ApiKeyResult, ApiUserResult};
use mkoba_platform::model::{ApiUser, SubscriptionKey};
use mkoba_platform::{CreateError, SANDBOX};

use crate::MomoState;
use crate::error::{MomoError, json};
use crate::validate;

/// `POST /v1_0/apiuser`: creates a sandbox API user whose id is the `X-Reference-Id`.
pub async fn create_api_user(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, MomoError> {
    let id = validate::x_reference_id(&headers)?;
    let body = validate::json_body(&body)?;
    let host = validate::callback_host(&validate::required_string(&body, "providerCallbackHost")?)?;
    let user = ApiUser {
        id,
        developer_id: subscription.developer_id,
        provider_callback_host: host.trim().to_owned(),
        target_environment: SANDBOX.to_owned(),
        created_at_ms: state.platform.now_ms(),
    };
    match state.platform.credentials().create_api_user(user).await {
        Ok(()) => {
            tracing::info!(api_user.id = %id, "sandbox API user created");
            Ok(StatusCode::CREATED.into_response())
        }
        Err(CreateError::Duplicate) => Err(MomoError::Platform(
            StatusCode::CONFLICT,
            "RESOURCE_ALREADY_EXIST",
        )),
        Err(e) => Err(e.into()),
    }
}

/// `POST /v1_0/apiuser/{id}/apikey`: a new API key (earlier keys stay valid).
pub async fn create_api_key(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    Path(id): Path<String>,
) -> Result<Response, MomoError> {
    let id = validate::reference_id(&id, "the API user id")?;
    let not_found = MomoError::Platform(StatusCode::NOT_FOUND, "RESOURCE_NOT_FOUND");
    match state.platform.credentials().api_user(&id).await? {
        Some(u)
            if u.developer_id == subscription.developer_id && u.target_environment == SANDBOX => {}
        _ => return Err(not_found),
    }
    match state.platform.credentials().create_api_key(id).await {
        Ok(key) => {
            tracing::info!(api_user.id = %id, "API key created");
            Ok(json(StatusCode::CREATED, &ApiKeyResult { api_key: key }))
        }
        Err(CreateError::NotFound) => Err(not_found),
        Err(e) => Err(e.into()),
    }
}

/// `GET /v1_0/apiuser/{id}`.
pub async fn get_api_user(
    State(state): State<MomoState>,
    Extension(subscription): Extension<SubscriptionKey>,
    Path(id): Path<String>,
) -> Result<Response, MomoError> {
    let id = validate::reference_id(&id, "the API user id")?;
    match state.platform.credentials().api_user(&id).await? {
        Some(u) if u.developer_id == subscription.developer_id => Ok(json(
            StatusCode::OK,
            &ApiUserResult {
                provider_callback_host: u.provider_callback_host,
                target_environment: u.target_environment,
            },
        )),
        _ => Err(MomoError::Platform(
            StatusCode::NOT_FOUND,
            "RESOURCE_NOT_FOUND",
        )),
    }
}
