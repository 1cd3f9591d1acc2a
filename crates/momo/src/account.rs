//! Operations every product has: balance, account-holder checks and basic user info
//! (reference §4.5–4.7).

use crate::extract::Path;
use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use mkoba_api_types::momo::{Balance, BasicUserInfo, BooleanResult};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::SANDBOX;
use mkoba_platform::model::{PartyIdType, Product, SubscriptionKey};
use mkoba_platform::scenario::{self, HolderStatus};

use crate::error::{MomoError, json};
use crate::{MomoState, environment_currency, validate};

async fn balance_of(
    state: &MomoState,
    headers: &HeaderMap,
    product: Product,
    subscription: &SubscriptionKey,
    currency: Option<&str>,
) -> Result<Response, MomoError> {
    let user = crate::auth::bearer_user(state, headers, product, subscription).await?;
    validate::target_environment(headers, &user)?;
    let allowed = environment_currency(&user.target_environment);
    let currency: Currency = match currency {
        Some(c) => validate::currency(c)?,
        None => validate::currency(allowed)?,
    };
    validate::check_currency(currency, allowed)?;
    let available = match state
        .platform
        .payments()
        .partner_account(user.id, product, currency)
        .await?
    {
        Some(account) => account.available(),
        // Not opened yet: payout accounts open with the configured float.
        None if product != Product::Collection => {
            Money::parse_positive(&state.platform.config().partner_float, currency)
                .map_or(0, |m| m.minor())
        }
        None => 0,
    };
    Ok(json(
        StatusCode::OK,
        &Balance {
            available_balance: Money::from_minor(available, currency).to_decimal_string(),
            currency: currency.to_string(),
        },
    ))
}

/// `GET /{product}/v1_0/account/balance`.
pub async fn get_account_balance(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
) -> Result<Response, MomoError> {
    balance_of(&state, &headers, product, &subscription, None).await
}

/// `GET /{product}/v1_0/account/balance/{currency}`.
pub async fn get_account_balance_in_currency(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path(currency): Path<String>,
) -> Result<Response, MomoError> {
    balance_of(&state, &headers, product, &subscription, Some(&currency)).await
}

async fn holder(
    state: &MomoState,
    headers: &HeaderMap,
    product: Product,
    subscription: &SubscriptionKey,
    id_type: &str,
    id: &str,
    alias_or_id: bool,
) -> Result<HolderStatus, MomoError> {
    let user = crate::auth::bearer_user(state, headers, product, subscription).await?;
    validate::target_environment(headers, &user)?;
    // Basic user info also takes the definitions' `alias` and `id` (no party type of a
    // payment, so no test number either).
    if alias_or_id && let Some(valid) = validate::alias_or_id(id_type, id) {
        valid?;
        return Ok(HolderStatus::Active);
    }
    let types = if alias_or_id {
        "msisdn, email, party_code, alias or id"
    } else {
        "msisdn, email or party_code"
    };
    let id_type = PartyIdType::parse_ignore_case(id_type).ok_or_else(|| {
        MomoError::bad(format!(
            "accountHolderIdType must be {types}, got {id_type:?}"
        ))
    })?;
    let id = validate::party_id_of(id_type, id, "accountHolderId")?;
    Ok(if user.target_environment == SANDBOX {
        scenario::account_holder(id_type, &id)
    } else {
        HolderStatus::Active
    })
}

fn holder_error(code: &'static str) -> MomoError {
    let status = match code {
        "RESOURCE_NOT_FOUND" => StatusCode::NOT_FOUND,
        "SERVICE_UNAVAILABLE" => StatusCode::SERVICE_UNAVAILABLE,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    };
    MomoError::Platform(status, code)
}

/// `GET /{product}/v1_0/accountholder/{accountHolderIdType}/{accountHolderId}/active`.
pub async fn validate_account_holder_status(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path((id_type, id)): Path<(String, String)>,
) -> Result<Response, MomoError> {
    let status = holder(
        &state,
        &headers,
        product,
        &subscription,
        &id_type,
        &id,
        false,
    )
    .await?;
    match status {
        HolderStatus::Active => Ok(json(StatusCode::OK, &BooleanResult { result: true })),
        HolderStatus::NotActive => Ok(json(StatusCode::OK, &BooleanResult { result: false })),
        HolderStatus::Error(code) => Err(holder_error(code)),
    }
}

/// `GET /{product}/v1_0/accountholder/{accountHolderIdType}/{accountHolderId}/basicuserinfo`:
/// the sandbox's fixed identity ("Sand Box") for any holder, the account-holder test
/// numbers' errors included (reference §10.4: "for any MSISDN"), and for a holder named by
/// `alias` or `id` (the definitions' other types); only a malformed holder is refused.
///
/// Its `401` is the one MTN's definitions document for this operation
/// (`TokenPost401ApplicationJsonResponse`, `{"error": …}`), with the wallet's `code` and
/// `message` beside it, which every other operation's `401` carries: a client generated
/// from the definitions reads the one, every other client the others.
pub async fn get_basic_userinfo(
    State(state): State<MomoState>,
    Extension(product): Extension<Product>,
    Extension(subscription): Extension<SubscriptionKey>,
    headers: HeaderMap,
    Path((id_type, id)): Path<(String, String)>,
) -> Result<Response, MomoError> {
    let checked = holder(
        &state,
        &headers,
        product,
        &subscription,
        &id_type,
        &id,
        true,
    )
    .await;
    if let Err(MomoError::Unauthorized(why)) = checked {
        return Ok(json(
            StatusCode::UNAUTHORIZED,
            &serde_json::json!({
                "error": "UNAUTHORIZED",
                "code": "UNAUTHORIZED",
                "message": format!("Authentication failed. Credentials not valid: {why}."),
            }),
        ));
    }
    checked?;
    Ok(json(
        StatusCode::OK,
        &BasicUserInfo {
            sub: "0".to_owned(),
            name: "Sand Box".to_owned(),
            given_name: "Sand".to_owned(),
            family_name: "Box".to_owned(),
            birthdate: "1976-08-13".to_owned(),
            locale: "sv_SE".to_owned(),
            gender: "MALE".to_owned(),
            updated_at: state.platform.now_ms() / 1000,
        },
    ))
}
