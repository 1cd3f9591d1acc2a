//! What can go wrong, typed: the provider's answer with its reason code, or the transport.
//!
//! MoMo answers errors in three envelopes (the API gateway's `{"statusCode","message"}`, the
//! wallet platform's `{"code","message"}`, the token endpoint's `{"error"}`), plus OAuth2's
//! `{"error","error_description"}` on the consent flow. [`ApiError`] folds them into one
//! shape with the envelope kept in [`ApiError::source`], the code parsed into a
//! [`ReasonCode`], and a [`hint`](ApiError::hint) saying how to fix the usual mistakes.
//!
//! M-Pesa answers in two envelopes: the `INS-*` layer's
//! `{"output_ResponseCode","output_ResponseDesc",…}` and the gateway's own
//! `{"output_error":"…"}` (a refused `Origin`, an unknown path). `MpesaError` (feature
//! `mpesa`) is the same idea for them: the status, the envelope, the code parsed into an
//! [`InsCode`](crate::mpesa::InsCode), the text, the conversation ids the answer echoed, and
//! a hint.

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
    /// The M-Pesa gateway answered with an error (an `INS-*` code other than `INS-0`, or a
    /// gateway refusal).
    #[cfg(feature = "mpesa")]
    #[error("{0}")]
    Mpesa(Box<MpesaError>),
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
    /// The answer was a success but not the shape expected (or, with status 0, a callback
    /// body given to `parse_callback` was not one).
    #[error("{}", decode_text(.url, *.status, .message))]
    Decode {
        /// Where the request went.
        url: String,
        /// Its HTTP status.
        status: u16,
        /// What did not fit.
        message: String,
    },
    /// Refused before anything was sent: the client is configured wrongly (a malformed
    /// base URL, a key with a newline, …) or a request's own value cannot be right (an
    /// amount with too many decimals, a malformed reference id).
    #[error("refused before sending: {0}")]
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

/// [`Error::Decode`] in words: a callback body read by `parse_callback` has no HTTP status
/// (it said "unexpected answer from callback (0)").
fn decode_text(url: &str, status: u16, message: &str) -> String {
    if status == 0 {
        format!("not a {url} body: {message}")
    } else {
        format!("unexpected answer from {url} ({status}): {message}")
    }
}

impl Error {
    /// The provider's error, if the provider answered.
    pub fn api(&self) -> Option<&ApiError> {
        match self {
            Error::Api(e) => Some(e),
            _ => None,
        }
    }

    /// MoMo's reason code, if the platform answered with one (M-Pesa's `INS-*` code is
    /// [`Error::ins_code`]).
    pub fn code(&self) -> Option<&ReasonCode> {
        self.api().map(|e| &e.code)
    }

    /// The M-Pesa gateway's error, if it answered with one.
    #[cfg(feature = "mpesa")]
    pub fn mpesa(&self) -> Option<&MpesaError> {
        match self {
            Error::Mpesa(e) => Some(e.as_ref()),
            _ => None,
        }
    }

    /// The M-Pesa `INS-*` code, if the gateway answered with one.
    #[cfg(feature = "mpesa")]
    pub fn ins_code(&self) -> Option<&InsCode> {
        self.mpesa().and_then(|e| e.code.as_ref())
    }

    /// Whether this timeout or broken connection was a credential's request (a MoMo token,
    /// an M-Pesa session), which a client sends before the operation: the operation itself
    /// was then never sent.
    pub fn on_credential_request(&self) -> bool {
        match self {
            Error::Timeout { url, .. } | Error::Transport { url, .. } => is_credential_url(url),
            _ => false,
        }
    }

    /// How to fix the usual causes of this error, if known.
    pub fn hint(&self) -> Option<String> {
        match self {
            Error::Api(e) => e.hint(),
            #[cfg(feature = "mpesa")]
            Error::Mpesa(e) => e.hint(),
            Error::Transport { .. } => Some(
                "check the base URL (scheme, host and port) and that the server is running"
                    .to_owned(),
            ),
            Error::StillPending { .. } => Some(
                "it is not final yet (the payer may not have answered): read its status again later"
                    .to_owned(),
            ),
            // A credential's request (a MoMo token, an M-Pesa session) sent no payment.
            Error::Timeout { url, .. } if is_credential_url(url) => Some(
                "no answer in time to the token or session request, so nothing else was sent: check that the server is running and answers, or raise the timeout"
                    .to_owned(),
            ),
            Error::Timeout { .. } => {
                Some("no answer in time: a read can simply be repeated, but a request that creates something may have been carried out: read its status before sending it again (with the same reference id, kept before sending: a payment sent again under a new id is a second payment), or raise the timeout".to_owned())
            }
            _ => None,
        }
    }
}

/// Whether a URL is a credential's endpoint: MoMo's `/{product}/token/` (and its OAuth2
/// form) or M-Pesa's `getSession/`.
fn is_credential_url(url: &str) -> bool {
    let path = url.split('?').next().unwrap_or(url).trim_end_matches('/');
    path.ends_with("/token") || path.ends_with("/getSession")
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
    /// The M-Pesa `INS-*` layer: `{"output_ResponseCode":"INS-10","output_ResponseDesc":"…"}`.
    Mpesa,
    /// The M-Pesa gateway before the `INS-*` layer: `{"output_error":"Origin not allowed"}`.
    MpesaGateway,
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
            } else if status == 401 && message.to_ascii_lowercase().contains("subscription key") {
                ReasonCode::InvalidSubscriptionKey
            } else if status == 401 {
                // The gateway's own 401 about something else (a token its policy refused):
                // not the key, so a client gets a fresh token and tries once more.
                ReasonCode::Unauthorized
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
        ApiError {
            status,
            source: ErrorSource::Unknown,
            code: ReasonCode::Other(format!("HTTP_{status}")),
            message: body_start(body),
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
                "wrong target environment: X-Target-Environment must be the API user's (sandbox users: \"sandbox\"; production: mtn<country>, e.g. mtnuganda), and a market is open to a developer only once its go-live request for it was approved (the portal's Go live page)"
            }
            ReasonCode::InvalidCallbackUrlHost => {
                "callback host mismatch: the X-Callback-Url host must equal the API user's providerCallbackHost (ports are ignored); use a callback URL on that host or create an API user with the right host"
            }
            ReasonCode::InvalidCurrency => {
                "currency not supported in this target environment: each takes its own (EUR in the sandbox, UGX in mtnuganda, GHS in mtnghana, …)"
            }
            ReasonCode::ResourceAlreadyExist => {
                "this X-Reference-Id was used before: the earlier request was accepted; use a new reference id for a new request"
            }
            ReasonCode::ResourceNotFound => {
                "not found: an unknown reference id (or one of another API user, product or operation; right after a 202 it may not be visible yet), or, asking about an account holder (active, basicuserinfo, bc-authorize's login_hint), an account holder the provider does not know"
            }
            ReasonCode::NotEnoughFunds => "the paying account holds less than the amount",
            ReasonCode::BadRequest => "the request was malformed; the message says which field",
            _ => return None,
        };
        Some(s.to_owned())
    }
}

/// The first 200 bytes of a body, for messages.
fn body_start(body: &[u8]) -> String {
    let raw = String::from_utf8_lossy(body);
    // A web page where an API answer was expected: the base URL points somewhere else
    // (a portal path, a proxy's error page). Its markup says nothing to a person.
    let head = raw
        .trim_start()
        .get(..15)
        .unwrap_or("")
        .to_ascii_lowercase();
    if head.starts_with("<!doctype html") || head.starts_with("<html") {
        return format!(
            "an HTML page ({:?}), not an API answer: is the base URL right (the server's own, with no path)?",
            html_title(&raw)
        );
    }
    let mut end = raw.len().min(200);
    while !raw.is_char_boundary(end) {
        end -= 1;
    }
    raw[..end].trim().to_owned()
}

/// A web page's title, or else its first words: what a person would see of it.
fn html_title(page: &str) -> String {
    let lower = page.to_ascii_lowercase();
    let inner = match (lower.find("<title>"), lower.find("</title>")) {
        (Some(start), Some(end)) if start + 7 <= end => &page[start + 7..end],
        _ => page,
    };
    let mut text = String::new();
    let mut in_tag = false;
    for c in inner.chars() {
        match c {
            '<' => in_tag = true,
            '>' => in_tag = false,
            c if !in_tag => text.push(c),
            _ => {}
        }
    }
    let mut out = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if out.chars().count() > 80 {
        out = out.chars().take(80).collect::<String>() + "…";
    }
    out
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

#[cfg(feature = "mpesa")]
use crate::mpesa::InsCode;
#[cfg(feature = "mpesa")]
pub use mpesa_error::MpesaError;

#[cfg(feature = "mpesa")]
mod mpesa_error {
    use std::fmt;

    use super::{ErrorSource, body_start};
    use crate::mpesa::InsCode;

    /// An error answered by the M-Pesa gateway.
    #[derive(Debug, Clone, PartialEq, Eq)]
    pub struct MpesaError {
        /// HTTP status.
        pub status: u16,
        /// The envelope: [`ErrorSource::Mpesa`] (`output_ResponseCode`),
        /// [`ErrorSource::MpesaGateway`] (`output_error`) or [`ErrorSource::Unknown`].
        pub source: ErrorSource,
        /// `output_ResponseCode`; `None` for gateway refusals and unknown bodies.
        pub code: Option<InsCode>,
        /// `output_ResponseDesc`, the gateway's `output_error`, or the start of an unknown
        /// body.
        pub message: String,
        /// `output_ConversationID`, when the answer carried one.
        pub conversation_id: Option<String>,
        /// `output_ThirdPartyConversationID`: the request's own id, echoed.
        pub third_party_conversation_id: Option<String>,
        /// `output_TransactionID`, when the answer carried one (`N/A` on duplicates).
        pub transaction_id: Option<String>,
    }

    impl fmt::Display for MpesaError {
        fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            write!(f, "HTTP {}", self.status)?;
            if let Some(code) = &self.code {
                write!(f, " {code}")?;
            }
            if !self.message.is_empty() {
                write!(f, ": {}", self.message)?;
            }
            Ok(())
        }
    }

    impl MpesaError {
        /// Reads an error body in whichever envelope it came.
        pub fn from_body(status: u16, body: &[u8]) -> MpesaError {
            let value: serde_json::Value = serde_json::from_slice(body).unwrap_or_default();
            let text = |k: &str| {
                value.get(k).and_then(|v| match v {
                    serde_json::Value::String(s) => Some(s.clone()),
                    serde_json::Value::Number(n) => Some(n.to_string()),
                    _ => None,
                })
            };
            let ids = |mut e: MpesaError| {
                e.conversation_id = text("output_ConversationID");
                e.third_party_conversation_id = text("output_ThirdPartyConversationID");
                e.transaction_id = text("output_TransactionID");
                e
            };
            if let Some(code) = text("output_ResponseCode") {
                return ids(MpesaError {
                    status,
                    source: ErrorSource::Mpesa,
                    code: Some(InsCode::parse(&code)),
                    message: text("output_ResponseDesc").unwrap_or_default(),
                    conversation_id: None,
                    third_party_conversation_id: None,
                    transaction_id: None,
                });
            }
            let (source, message) = match text("output_error") {
                Some(m) => (ErrorSource::MpesaGateway, m),
                // Some gateways answer a refused session with the description alone.
                None => match text("output_ResponseDesc") {
                    Some(m) => (ErrorSource::Mpesa, m),
                    None => (ErrorSource::Unknown, body_start(body)),
                },
            };
            MpesaError {
                status,
                source,
                code: None,
                message,
                conversation_id: None,
                third_party_conversation_id: None,
                transaction_id: None,
            }
        }

        /// Whether this is the `INS-10` of a reused `input_ThirdPartyConversationID`: the
        /// earlier request with that id reached the platform.
        pub fn is_duplicate(&self) -> bool {
            self.code == Some(InsCode::DuplicateTransaction)
        }

        /// Whether the session is refused only for now: new sessions take a while to work
        /// ("Session key not yet active"; up to 30 s on the real gateway).
        pub fn is_session_not_yet_active(&self) -> bool {
            self.status == 401 && self.message.to_ascii_lowercase().contains("not yet active")
        }

        /// Whether the session was refused (expired, not yet live, unknown, or its API key
        /// renewed): a 401 about the session, or a 401 without an `INS-*` code. A 401
        /// `INS-6` "Transaction Failed" is the outcome of a transaction, not this.
        pub fn is_session_refusal(&self) -> bool {
            self.status == 401
                && (self.code.is_none() || self.message.to_ascii_lowercase().contains("session"))
        }

        /// Whether the gateway refused the `Origin` header.
        pub fn is_origin_refusal(&self) -> bool {
            self.source == ErrorSource::MpesaGateway
                && self.message.to_ascii_lowercase().contains("origin")
        }

        /// How to fix the usual causes, in words for a person.
        pub fn hint(&self) -> Option<String> {
            if self.is_origin_refusal() {
                return Some(
                    "the Origin header is not one the application allows: send one of its allowed origins (Config::origin; the portal's default is *), or add this one on the application's page".to_owned(),
                );
            }
            if self.is_session_refusal() {
                let m = self.message.to_ascii_lowercase();
                let s = if m.contains("not yet active") {
                    "the new session is not live yet (the real gateway takes up to 30 s): wait and try again"
                } else if m.contains("expired") {
                    "the session expired and so did a fresh one: make Config::session_lifetime no longer than the application's session lifetime"
                } else {
                    "the session was refused even after a fresh one: the API key may have been renewed (the old key's sessions end), or the session belongs to another environment"
                };
                return Some(s.to_owned());
            }
            if self.source == ErrorSource::MpesaGateway && self.status == 404 {
                // The base URL with a gateway's path in it (as a server's start banner
                // shows the gateway): the client added the path again.
                return Some(
                    "no such API at this base URL: give the server's address alone (scheme, host and port, e.g. http://127.0.0.1:8080), with no path: the client adds /sandbox/ipg/v2/{market}/… (or /openapi/…, /ipg/v1x/…) itself".to_owned(),
                );
            }
            let code = self.code.as_ref()?;
            let s = match code {
                InsCode::SessionCreationFailed => {
                    "getSession refused the API key: check the application's API key (a renewed key replaces the old one) and that the public key is the platform key of this environment (sandbox and openapi have different keys)"
                }
                InsCode::DuplicateTransaction => {
                    "this input_ThirdPartyConversationID was used before by this application: the earlier request reached the platform, so query its status with that id; use a new id for a new transaction"
                }
                InsCode::RequestTimeout => {
                    "no final answer in time (the customer may not have answered the prompt): query the status with the ThirdPartyConversationID before trying again"
                }
                InsCode::InsufficientBalance => {
                    "the paying account holds less than the amount (in the sandbox, customer 000000000008 for C2B and 000000000006 for B2C answer this whatever the balances)"
                }
                InsCode::InvalidMsisdn => {
                    "an MSISDN is 12 to 14 digits with the country code and no + (255744553111); the sandbox's test number is 000000000001"
                }
                InsCode::InvalidShortcode => {
                    "the service provider (or party) code is not this application's, or not 4 to 12 letters and digits; the sandbox's is 000000"
                }
                InsCode::InvalidAmount => {
                    "the amount must be above zero with at most two decimals, and no more than the gateway takes (Mkoba: 10000000000.00); a reversal may not exceed what remains of the original (one without an amount is of all of it: refused once part was reversed, so give the amount that remains)"
                }
                InsCode::InvalidTransactionReference
                | InsCode::InvalidThirdPartyReference
                | InsCode::InvalidThirdPartyConversationId => {
                    "references allow letters, digits, spaces, _ and + only (no hyphens or other punctuation), within the documented length"
                }
                InsCode::InvalidPurchasedItemsDescription
                | InsCode::InvalidPaymentItemsDescription => {
                    "descriptions allow letters, digits, spaces, _ and + only (no commas, hyphens or dots), up to 256 characters"
                }
                InsCode::MissingParameters | InsCode::ParameterValidationFailed => {
                    "a required field is missing or malformed"
                }
                InsCode::InvalidMarket => {
                    "the country is not the market's, or the transaction is of another market"
                }
                InsCode::InvalidCurrency => "the currency is not the market's",
                InsCode::ApiNotEnabled => {
                    "this API is not enabled for this market or application (Query Beneficiary Name is served in vodafoneGHA only)"
                }
                InsCode::TransactionNotFound => {
                    "no transaction of this application with that reference: use its transaction id, its conversation id or your ThirdPartyConversationID"
                }
                InsCode::InvalidTransactionId => {
                    "unknown transaction id: reverse a successful payment by its output_TransactionID"
                }
                InsCode::NotYourTransaction => {
                    "the transaction belongs to another application or service provider code"
                }
                InsCode::NoActiveMandate => {
                    "no active mandate with this ThirdPartyReference (never created, not confirmed, or cancelled)"
                }
                InsCode::MsisdnTokenMismatch | InsCode::InvalidMsisdnToken => {
                    "the MSISDN token is not the mandate's (or not this MSISDN's)"
                }
                InsCode::MandateReferenceMismatch | InsCode::InvalidMandateId => {
                    "the mandate id is not the one created for this ThirdPartyReference"
                }
                InsCode::OutsideUsageTime => {
                    "the application may use this API only at certain times of day"
                }
                InsCode::TransactionFailed => {
                    "the transaction failed: query its status for the outcome"
                }
                InsCode::InternalError => {
                    "the platform failed: try again later (stray spaces in fields have caused this too)"
                }
                c if c.is_limit_breached() => {
                    "a limit of the application was reached: limits count per session, so a new session may clear it"
                }
                _ => return None,
            };
            Some(s.to_owned())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_timeout_of_a_token_or_session_says_nothing_else_was_sent() {
        let timeout = |url: &str| Error::Timeout {
            url: url.to_owned(),
            after: Duration::from_millis(500),
        };
        for url in [
            "http://127.0.0.1:8080/collection/token/",
            "http://127.0.0.1:8080/sandbox/ipg/v2/vodacomTZN/getSession/",
        ] {
            let hint = timeout(url).hint().unwrap();
            assert!(hint.contains("nothing else was sent"), "{url}: {hint}");
        }
        let hint = timeout("http://127.0.0.1:8080/collection/v1_0/requesttopay")
            .hint()
            .unwrap();
        assert!(hint.contains("may have been carried out"), "{hint}");
    }

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
        // The gateway's 401 about a token is not the key's: the client refreshes on it.
        let e = ApiError::from_body(
            401,
            br#"{"statusCode":401,"message":"Access denied due to invalid token."}"#,
        );
        assert_eq!(
            (e.source, e.code),
            (ErrorSource::Gateway, ReasonCode::Unauthorized)
        );
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

    #[cfg(feature = "mpesa")]
    #[test]
    fn mpesa_envelopes_are_read_with_their_codes_and_ids() {
        let e = MpesaError::from_body(
            409,
            br#"{"output_ResponseCode":"INS-10","output_ResponseDesc":"Duplicate Transaction","output_TransactionID":"N/A","output_ConversationID":"c","output_ThirdPartyConversationID":"t"}"#,
        );
        assert_eq!(e.source, ErrorSource::Mpesa);
        assert!(e.is_duplicate());
        assert_eq!(e.third_party_conversation_id.as_deref(), Some("t"));
        assert_eq!(e.to_string(), "HTTP 409 INS-10: Duplicate Transaction");
        let e = MpesaError::from_body(403, br#"{"output_error":"Origin not allowed"}"#);
        assert_eq!(
            (e.source, e.code.clone()),
            (ErrorSource::MpesaGateway, None)
        );
        assert!(e.is_origin_refusal());
        assert!(e.hint().unwrap().contains("Origin"));
        let e = MpesaError::from_body(502, b"<html>Bad Gateway</html>");
        assert_eq!(e.source, ErrorSource::Unknown);
        assert!(
            e.message.starts_with("an HTML page (\"Bad Gateway\")"),
            "{}",
            e.message
        );
        let e = ApiError::from_body(
            404,
            "<!doctype html><html><head><title>Not found \u{b7} Mkoba portal</title></head><body><h1>x</h1></body></html>".as_bytes(),
        );
        assert!(
            e.message
                .starts_with("an HTML page (\"Not found \u{b7} Mkoba portal\")"),
            "{}",
            e.message
        );
    }

    #[cfg(feature = "mpesa")]
    #[test]
    fn only_session_401s_count_as_session_refusals() {
        let expired = MpesaError::from_body(
            401,
            br#"{"output_ResponseCode":"INS-6","output_ResponseDesc":"Session key expired"}"#,
        );
        assert!(expired.is_session_refusal());
        let bare = MpesaError::from_body(401, br#"{"output_ResponseDesc":"Session key expired"}"#);
        assert!(bare.is_session_refusal());
        let failed = MpesaError::from_body(
            401,
            br#"{"output_ResponseCode":"INS-6","output_ResponseDesc":"Transaction Failed"}"#,
        );
        assert!(!failed.is_session_refusal());
        let token = MpesaError::from_body(
            401,
            br#"{"output_ResponseCode":"INS-56","output_ResponseDesc":"Invalid MSISDNToken Used"}"#,
        );
        assert!(!token.is_session_refusal());
    }
}
