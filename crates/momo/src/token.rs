//! `POST /{product}/token/`: access tokens for API users (reference §2.1).

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mkoba_api_types::momo::AccessToken;
use mkoba_platform::model::{Product, SubscriptionKey};

use crate::MomoState;
use crate::auth::basic_credentials;
use crate::error::{MomoError, json};

/// Issues a token for `Authorization: Basic base64(apiUser:apiKey)`. Wrong credentials get
/// the real platform's `500 {"error":"login_failed"}`.
pub async fn create_access_token(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    let (user_id, key) = basic_credentials(&headers).ok_or(MomoError::LoginFailed)?;
    let user = state
        .platform
        .credentials()
        .api_user(&user_id)
        .await?
        .filter(|u| u.developer_id == subscription.developer_id)
        .ok_or(MomoError::LoginFailed)?;
    if !state
        .platform
        .credentials()
        .verify_api_key(&user.id, &key)
        .await?
    {
        return Err(MomoError::LoginFailed);
    }
    let (access_token, expires_in) = state.platform.credentials().issue_token(user.id, product);
    Ok(json(
        StatusCode::OK,
        &AccessToken {
            access_token,
            token_type: "access_token".to_owned(),
            expires_in,
        },
    ))
}
