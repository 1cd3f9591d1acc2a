//! What can go wrong, typed: the provider's answer with its reason code, or the transport.
//!
//! MoMo answers errors in three envelopes (the API gateway's `{"statusCode","message"}`, the
//! wallet platform's `{"code","message"}`, the token endpoint's `{"error"}`), plus OAuth2's
//! `{"error","error_description"}` on the consent flow. [`ApiError`] folds them into one
//! shape with the envelope kept in [`ApiError::source`], the code parsed into a
//! [`ReasonCode`], and a [`hint`](ApiError::hint) saying how to fix the usual mistakes.

use std::fmt;
use std::time::Duration;

/// Shorthand for results of this crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Everything a call can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The provider answered with an error.
    #[error("{0}")]
    Api(ApiError),
    /// The request never got an answer (connection refused, TLS, reset, …).
    #[error("could not reach {url}: {message}")]
    Transport {
        /// Where the request went (no query string).
        url: String,
        /// What the network layer said.
        message: String,
    },
    /// No answer within the configured time limit.
    #[error("no answer from {url} within {} ms", .after.as_millis())]
    Timeout {
        /// Where the request went.
        url: String,
        /// The time limit.
        after: Duration,
    },
    /// The answer was a success but not the shape expected.
    #[error("unexpected answer from {url} ({status}): {message}")]
    Decode {
        /// Where the request went.
        url: String,
        /// Its HTTP status.
        status: u16,
        /// What did not fit.
        message: String,
    },
    /// The client is configured wrongly (a malformed base URL, a key with a newline, …).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// [`wait_for_final_status`](crate::momo::wait_for_final_status) reached its deadline
    /// before the transaction reached a final state.
    #[error("{what} still {status} after {} ms", .waited.as_millis())]
    StillPending {
        /// The operation and reference id waited for.
        what: String,
        /// The last status seen (`PENDING`, or `not found` while the platform did not yet
        /// show the transaction).
        status: String,
        /// How long it waited.
        waited: Duration,
    },
}

impl Error {
    /// The provider's error, if the provider answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// The provider's reason code, if the provider answered with one.
    pub fn code(&self) -> Option<&ReasonCode> {
        self.api().map(|e| &e.code)
    }

    /// How to fix the usual causes of this error, if known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api(e) => e.hint(),
            Error::Transport { .. } => Some(
                "check the base URL (scheme, host and port) and that the server is running"
                    .to_owned(),
            ),
            Error::StillPending { .. } => Some(
                "it is not final yet (the payer may not have answered): read its status again later"
                    .to_owned(),
            ),
            Error::Timeout { .. } => {
                Some("the server is slow or unreachable; try again or raise the timeout".to_owned())
            }
            _ => None,
        }
    }
}

/// Which envelope an error came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ErrorSource {
    /// The API gateway: `{"statusCode":401,"message":"Access denied due to …"}` (subscription
    /// keys, unknown paths).
    Gateway,
    /// The wallet platform: `{"code":"…","message":"…"}`.
    Platform,
    /// A token endpoint: `{"error":"login_failed"}`.
    TokenEndpoint,
    /// OAuth2 (`oauth2/token/`): `{"error":"…","error_description":"…"}`.
    OAuth,
    /// A body none of the above (an HTML page from a proxy, say); `message` holds its start.
    Unknown,
}

/// An error answered by the provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status.
    pub status: u16,
    /// The envelope it came in.
    pub source: ErrorSource,
    /// The reason code (`RESOURCE_NOT_FOUND`, `login_failed`, …); for gateway errors one of
    /// [`ReasonCode::InvalidSubscriptionKey`], [`ReasonCode::MissingSubscriptionKey`] or
    /// [`ReasonCode::GatewayNotFound`].
    pub code: ReasonCode,
    /// The provider's message.
    pub message: String,
}

impl fmt::Display for ApiError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "HTTP {} {}", self.status, self.code)?;
        if !self.message.is_empty() {
            write!(f, ": {}", self.message)?;
        }
        Ok(())
    }
}

impl ApiError {
    /// Reads an error body in whichever envelope it came.
    pub fn from_body(status: u16, body: &[u8]) -> ApiError {
        let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
        let text = |k: &str| value.get(k).and_then(|v| v.as_str()).map(str::to_owned);
        if let (Some(code), Some(message)) = (text("code"), text("message")) {
            return ApiError {
                status,
                source: ErrorSource::Platform,
                code: ReasonCode::parse(&code),
                message,
            };
        }
        if value.get("statusCode").is_some() {
            let message = text("message").unwrap_or_default();
            let code = if message.contains("missing subscription key") {
                ReasonCode::MissingSubscriptionKey
            } else if status == 401 {
                ReasonCode::InvalidSubscriptionKey
            } else if status == 404 {
                ReasonCode::GatewayNotFound
            } else {
                ReasonCode::Other(format!("GATEWAY_{status}"))
            };
            return ApiError {
                status,
                source: ErrorSource::Gateway,
                code,
                message,
            };
        }
        if let Some(error) = text("error") {
            let (source, message) = match text("error_description") {
                Some(d) => (ErrorSource::OAuth, d),
                None if value.get("error_description").is_some() => {
                    (ErrorSource::OAuth, String::new())
                }
                None => (ErrorSource::TokenEndpoint, String::new()),
            };
            return ApiError {
                status,
                source,
                code: ReasonCode::parse(&error),
                message,
            };
        }
        let raw = String::from_utf8_lossy(body);
        let mut end = raw.len().min(200);
        while !raw.is_char_boundary(end) {
            end -= 1;
        }
        ApiError {
            status,
            source: ErrorSource::Unknown,
            code: ReasonCode::Other(format!("HTTP_{status}")),
            message: raw[..end].trim().to_owned(),
        }
    }

    /// Whether this is the 409 of a reused `X-Reference-Id`: the earlier request with that
    /// id reached the platform, so a retry after a lost answer can treat it as accepted.
    pub fn is_duplicate(&self) -> bool {
        self.code == ReasonCode::ResourceAlreadyExist
    }

    /// How to fix the usual causes, in words for a person.
    pub fn hint(&self) -> Option<String> {
        let s = match &self.code {
            ReasonCode::MissingSubscriptionKey => {
                "send a subscription key (Ocp-Apim-Subscription-Key); each product has its own"
            }
            ReasonCode::InvalidSubscriptionKey => {
                "wrong subscription key: use the primary or secondary key of this product's subscription (collection, disbursement and remittance each have their own), and the host it was issued for"
            }
            ReasonCode::GatewayNotFound => {
                "no such operation at this base URL: check the base URL and the path (sandbox provisioning lives at the host root, not under /collection)"
            }
            ReasonCode::LoginFailed => {
                "wrong API user or API key (or a key of another host): check both; on the sandbox create a new key with POST /v1_0/apiuser/{id}/apikey"
            }
            ReasonCode::Unauthorized => {
                "the access token was refused: it may be expired, belong to another product or another API user"
            }
            ReasonCode::NotAllowedTargetEnvironment => {
                "wrong target environment: X-Target-Environment must be the API user's (sandbox users: \"sandbox\"; production: mtn<country>, e.g. mtnuganda)"
            }
            ReasonCode::InvalidCallbackUrlHost => {
                "callback host mismatch: the X-Callback-Url host must equal the API user's providerCallbackHost (ports are ignored); use a callback URL on that host or create an API user with the right host"
            }
            ReasonCode::InvalidCurrency => {
                "currency not supported in this target environment (the sandbox accepts only EUR)"
            }
            ReasonCode::ResourceAlreadyExist => {
                "this X-Reference-Id was used before: the earlier request was accepted; use a new reference id for a new request"
            }
            ReasonCode::ResourceNotFound => {
                "unknown reference id (or one of another API user, product or operation); right after a 202 it may not be visible yet"
            }
            ReasonCode::NotEnoughFunds => "the paying account holds less than the amount",
            ReasonCode::BadRequest => "the request was malformed; the message says which field",
            _ => return None,
        };
        Some(s.to_owned())
    }
}

macro_rules! reason_codes {
    ($($variant:ident => $text:literal, $doc:literal;)*) => {
        /// A reason code of the MoMo Open API (error bodies and failed transactions), or
        /// one of Mkoba's, the token endpoint's, OAuth2's, or the gateway's.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum ReasonCode {
            $(
                #[doc = $doc]
                $variant,
            )*
            /// A code this version does not know, as sent.
            Other(String),
        }

        impl ReasonCode {
            /// The code as sent on the wire (the gateway's are Mkoba-made names).
            pub fn as_str(&self) -> &str {
                match self {
                    $(ReasonCode::$variant => $text,)*
                    ReasonCode::Other(s) => s,
                }
            }

            /// Reads a code; unknown ones are kept as [`ReasonCode::Other`].
            pub fn parse(code: &str) -> ReasonCode {
                match code {
                    $($text => ReasonCode::$variant,)*
                    other => ReasonCode::Other(other.to_owned()),
                }
            }
        }
    };
}

reason_codes! {
    PayeeNotFound => "PAYEE_NOT_FOUND", "The payee does not exist.";
    PayerNotFound => "PAYER_NOT_FOUND", "The payer does not exist.";
    NotAllowed => "NOT_ALLOWED", "The API user may not do this.";
    NotAllowedTargetEnvironment => "NOT_ALLOWED_TARGET_ENVIRONMENT", "Wrong `X-Target-Environment`.";
    InvalidCallbackUrlHost => "INVALID_CALLBACK_URL_HOST", "The callback URL's host is not the API user's `providerCallbackHost`.";
    InvalidCurrency => "INVALID_CURRENCY", "The currency is not supported here.";
    ServiceUnavailable => "SERVICE_UNAVAILABLE", "Try again later.";
    InternalProcessingError => "INTERNAL_PROCESSING_ERROR", "The platform failed.";
    NotEnoughFunds => "NOT_ENOUGH_FUNDS", "The paying account holds less than the amount.";
    PayerLimitReached => "PAYER_LIMIT_REACHED", "The payer's limit is reached.";
    PayeeNotAllowedToReceive => "PAYEE_NOT_ALLOWED_TO_RECEIVE", "The payee may not receive.";
    PaymentNotApproved => "PAYMENT_NOT_APPROVED", "The payer did not approve.";
    ResourceNotFound => "RESOURCE_NOT_FOUND", "No such resource (reference id).";
    ApprovalRejected => "APPROVAL_REJECTED", "The payer rejected the request.";
    Expired => "EXPIRED", "The payer did not answer in time.";
    TransactionCanceled => "TRANSACTION_CANCELED", "The transaction was cancelled.";
    ResourceAlreadyExist => "RESOURCE_ALREADY_EXIST", "The `X-Reference-Id` was used before.";
    CouldNotPerformTransaction => "COULD_NOT_PERFORM_TRANSACTION", "The transaction could not be performed.";
    Ongoing => "ONGOING", "The transaction is still ongoing.";
    PayerDelayed => "PAYER_DELAYED", "The payer delayed the approval.";
    PayeeDelayed => "PAYEE_DELAYED", "The payee delayed the transaction.";
    TransactionNotCompleted => "TRANSACTION_NOT_COMPLETED", "The transaction is not SUCCESSFUL (delivery notification).";
    TooManyRequests => "TOO_MANY_REQUESTS", "Too many attempts.";
    Unauthorized => "UNAUTHORIZED", "The bearer token was refused (Mkoba's 401 body).";
    BadRequest => "BAD_REQUEST", "The request was malformed (Mkoba's 400 body).";
    LoginFailed => "login_failed", "The token endpoint refused the API user and key.";
    InvalidSubscriptionKey => "INVALID_SUBSCRIPTION_KEY", "The gateway refused the subscription key.";
    MissingSubscriptionKey => "MISSING_SUBSCRIPTION_KEY", "The gateway got no subscription key.";
    GatewayNotFound => "GATEWAY_NOT_FOUND", "The gateway knows no such operation.";
    InvalidRequest => "invalid_request", "OAuth2: the request is malformed.";
    InvalidGrant => "invalid_grant", "OAuth2: the grant (auth_req_id, refresh token) is not valid.";
    AuthorizationPending => "authorization_pending", "OAuth2/CIBA: the account holder has not answered yet.";
    AccessDenied => "access_denied", "OAuth2: the account holder refused.";
    ExpiredToken => "expired_token", "OAuth2/CIBA: the auth_req_id expired.";
    InvalidScope => "invalid_scope", "OAuth2: the scope is not valid.";
    UnsupportedGrantType => "unsupported_grant_type", "OAuth2: unknown grant type.";
}

impl fmt::Display for ReasonCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_envelope_is_read_with_its_code() {
        let e = ApiError::from_body(
            409,
            br#"{"code":"RESOURCE_ALREADY_EXIST","message":"Duplicated reference id."}"#,
        );
        assert_eq!(e.source, ErrorSource::Platform);
        assert!(e.is_duplicate());
        let e = ApiError::from_body(
            401,
            br#"{"statusCode":401,"message":"Access denied due to invalid subscription key."}"#,
        );
        assert_eq!(e.code, ReasonCode::InvalidSubscriptionKey);
        let e = ApiError::from_body(500, br#"{"error":"login_failed"}"#);
        assert_eq!(
            (e.source, e.code),
            (ErrorSource::TokenEndpoint, ReasonCode::LoginFailed)
        );
        let e = ApiError::from_body(
            400,
            br#"{"error":"authorization_pending","error_description":"wait"}"#,
        );
        assert_eq!(
            (e.source, e.code),
            (ErrorSource::OAuth, ReasonCode::AuthorizationPending)
        );
        let e = ApiError::from_body(411, b"<html>Length Required</html>");
        assert_eq!(e.source, ErrorSource::Unknown);
        assert_eq!(e.code.as_str(), "HTTP_411");
    }

    #[test]
    fn unknown_codes_are_kept_as_sent() {
        assert_eq!(
            ReasonCode::parse("SOMETHING_NEW"),
            ReasonCode::Other("SOMETHING_NEW".into())
        );
        assert_eq!(ReasonCode::parse("EXPIRED"), ReasonCode::Expired);
        assert_eq!(ReasonCode::Expired.to_string(), "EXPIRED");
    }
}
