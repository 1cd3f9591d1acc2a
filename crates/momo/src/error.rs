//! Every error the MoMo dialect answers, rendered in the envelope the real platform uses.
//!
//! Three families exist on the wire (reference §1.4): the API gateway's
//! `{"statusCode","message"}` (subscription keys, unknown paths), the wallet platform's
//! `{"code","message"}`, and the token endpoint's `{"error"}`. This is the one place that
//! maps to them.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::momo::{ErrorReason, GatewayError, TokenError};

/// The content type the platform sends with JSON bodies.
pub const JSON: &str = "application/json;charset=utf-8";

/// A JSON response with the platform's content type.
pub fn json<T: serde::Serialize>(status: StatusCode, body: &T) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut r = (status, bytes).into_response();
            r.headers_mut()
                .insert(header::CONTENT_TYPE, HeaderValue::from_static(JSON));
            r
        }
        Err(e) => {
            tracing::error!(error = %e, "serialising a response failed");
            MomoError::Internal.into_response()
        }
    }
}

/// Why a MoMo request was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MomoError {
    /// Gateway: no subscription key.
    MissingSubscriptionKey,
    /// Gateway: unknown key, or a key of another product.
    InvalidSubscriptionKey,
    /// Gateway: no such operation.
    NotFound,
    /// Token endpoint: wrong API user or key (the real platform answers 500).
    LoginFailed,
    /// Missing, malformed, expired or foreign bearer token.
    Unauthorized(&'static str),
    /// The request breaks the API's rules; the message says which.
    BadRequest(String),
    /// A wallet-platform error with its documented status.
    Platform(StatusCode, &'static str),
    /// Something broke inside; the cause was logged where it happened.
    Internal,
}

impl MomoError {
    /// Nothing was stored (the platform's store is failing, or the writer is gone): 503
    /// `SERVICE_UNAVAILABLE` with `Retry-After`, as MTN answers when it cannot take a
    /// request now.
    pub fn unavailable() -> MomoError {
        MomoError::Platform(StatusCode::SERVICE_UNAVAILABLE, "SERVICE_UNAVAILABLE")
    }

    /// A 400 with an explanation. A message past [`MAX_MESSAGE_CHARS`] (it quotes what was
    /// sent, which may be megabytes) keeps its start and its end, the field's name and the
    /// rule broken, around an ellipsis.
    pub fn bad(message: impl Into<String>) -> MomoError {
        MomoError::BadRequest(shortened(message.into()))
    }
}

/// The longest 400 message, in characters.
pub const MAX_MESSAGE_CHARS: usize = 300;

fn shortened(message: String) -> String {
    let count = message.chars().count();
    if count <= MAX_MESSAGE_CHARS {
        return message;
    }
    let head: String = message.chars().take(MAX_MESSAGE_CHARS * 2 / 3).collect();
    let tail: String = message
        .chars()
        .skip(count - (MAX_MESSAGE_CHARS / 3 - 1))
        .collect();
    format!("{head}…{tail}")
}

pub use mkoba_api_types::momo::message_for;

impl IntoResponse for MomoError {
    fn into_response(self) -> Response {
        match self {
            MomoError::MissingSubscriptionKey => json(
                StatusCode::UNAUTHORIZED,
                &GatewayError {
                    status_code: 401,
                    message: "Access denied due to missing subscription key. Make sure to include subscription key when making requests to an API.".to_owned(),
                },
            ),
            MomoError::InvalidSubscriptionKey => json(
                StatusCode::UNAUTHORIZED,
                &GatewayError {
                    status_code: 401,
                    message: "Access denied due to invalid subscription key. Make sure to provide a valid key for an active subscription.".to_owned(),
                },
            ),
            MomoError::NotFound => json(
                StatusCode::NOT_FOUND,
                &GatewayError {
                    status_code: 404,
                    message: "Resource not found".to_owned(),
                },
            ),
            MomoError::LoginFailed => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &TokenError {
                    error: "login_failed".to_owned(),
                },
            ),
            MomoError::Unauthorized(why) => json(
                StatusCode::UNAUTHORIZED,
                &ErrorReason {
                    code: "UNAUTHORIZED".to_owned(),
                    message: format!("Authentication failed. Credentials not valid: {why}."),
                },
            ),
            MomoError::BadRequest(message) => json(
                StatusCode::BAD_REQUEST,
                &ErrorReason {
                    code: "BAD_REQUEST".to_owned(),
                    message,
                },
            ),
            MomoError::Platform(status, code) => {
                let mut r = json(
                    status,
                    &ErrorReason {
                        code: code.to_owned(),
                        message: if status == StatusCode::GONE {
                            // A delivery notification's window (MTN's own words for it).
                            "The delivery notification opportunity has expired."
                        } else {
                            message_for(code)
                        }
                        .to_owned(),
                    },
                );
                if status == StatusCode::SERVICE_UNAVAILABLE {
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                r
            }
            MomoError::Internal => json(
                StatusCode::INTERNAL_SERVER_ERROR,
                &ErrorReason {
                    code: "INTERNAL_PROCESSING_ERROR".to_owned(),
                    message: message_for("INTERNAL_PROCESSING_ERROR").to_owned(),
                },
            ),
        }
    }
}

/// `r` with `Retry-After: <whole seconds of after>`, rounded up and at least 1, so that a
/// client waiting that long is never early (the widget's and the admin API's 429s).
pub fn retry_after(mut r: Response, after: std::time::Duration) -> Response {
    let secs = (after.as_secs() + u64::from(after.subsec_nanos() > 0)).max(1);
    r.headers_mut().insert(header::RETRY_AFTER, secs.into());
    r
}

impl From<mkoba_platform::CreateError> for MomoError {
    /// The refusals every create path answers alike (`Duplicate` and `NotFound` mean
    /// different things per resource: callers match those first).
    fn from(e: mkoba_platform::CreateError) -> MomoError {
        match e {
            mkoba_platform::CreateError::Unavailable => MomoError::unavailable(),
            mkoba_platform::CreateError::Refused(mkoba_platform::refusal::TEXT_WITH_NUL) => {
                MomoError::bad("a field holds a NUL character")
            }
            _ => MomoError::Internal,
        }
    }
}

impl From<mkoba_platform::Internal> for MomoError {
    /// A read the platform could not make, because every reader was busy or the store
    /// failed (a lost database, a full disk: logged): `503 SERVICE_UNAVAILABLE` with
    /// `Retry-After`, as for a write the store refused, since either passes.
    fn from(e: mkoba_platform::Internal) -> MomoError {
        match e {
            mkoba_platform::Internal::Busy | mkoba_platform::Internal::Failed => {
                MomoError::unavailable()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_message_keeps_its_start_and_end() {
        let value = "9".repeat(2_000_000);
        let MomoError::BadRequest(m) = MomoError::bad(format!(
            "amount {value:?} has more decimals than EUR allows (2)"
        )) else {
            unreachable!()
        };
        assert_eq!(m.chars().count(), MAX_MESSAGE_CHARS);
        assert!(m.starts_with("amount \"999"), "{m}");
        assert!(
            m.ends_with("\" has more decimals than EUR allows (2)"),
            "{m}"
        );
        let MomoError::BadRequest(short) = MomoError::bad("payer is required") else {
            unreachable!()
        };
        assert_eq!(short, "payer is required");
    }
}
