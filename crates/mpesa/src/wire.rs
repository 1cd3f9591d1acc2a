//! The M-Pesa OpenAPI's wire vocabulary: markets, `INS-*` codes with their HTTP statuses
//! and texts (reference §6.1, the v2 per-API tables), and response bodies.
//!
//! Bodies are flat JSON objects of strings with `output_*` keys, written in the order the
//! real sandbox sends them. Every response is JSON, errors included, and no header value
//! holds a quote character: the official Python SDK parses both crudely.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::mpesa::{Documented, codes};

use crate::input::Fields;

pub use mkoba_api_types::mpesa::Market;

/// An `INS-*` result code with the HTTP status the portal documents for it; the table is
/// `mkoba_api_types::mpesa`, shared with the SDK.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub status: StatusCode,
    pub desc: &'static str,
}

const fn code(d: Documented) -> Code {
    let status = match StatusCode::from_u16(d.status) {
        Ok(s) => s,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Code {
        code: d.code,
        status,
        desc: d.text,
    }
}

/// Success of a POST/PUT (201); queries and getSession answer 200 with the same text.
pub const INS_0: Code = code(codes::INS_0);
pub const INS_1: Code = code(codes::INS_1);
pub const INS_6: Code = code(codes::INS_6);
pub const INS_9: Code = code(codes::INS_9);
pub const INS_10: Code = code(codes::INS_10);
pub const INS_13: Code = code(codes::INS_13);
pub const INS_15: Code = code(codes::INS_15);
pub const INS_17: Code = code(codes::INS_17);
pub const INS_18: Code = code(codes::INS_18);
pub const INS_19: Code = code(codes::INS_19);
pub const INS_20: Code = code(codes::INS_20);
pub const INS_21: Code = code(codes::INS_21);
pub const INS_23: Code = code(codes::INS_23);
pub const INS_26: Code = code(codes::INS_26);
pub const INS_28: Code = code(codes::INS_28);
pub const INS_30: Code = code(codes::INS_30);
pub const INS_31: Code = code(codes::INS_31);
pub const INS_32: Code = code(codes::INS_32);
pub const INS_35: Code = code(codes::INS_35);
pub const INS_36: Code = code(codes::INS_36);
pub const INS_39: Code = code(codes::INS_39);
pub const INS_40: Code = code(codes::INS_40);
pub const INS_41: Code = code(codes::INS_41);
pub const INS_42: Code = code(codes::INS_42);
pub const INS_43: Code = code(codes::INS_43);
pub const INS_50: Code = code(codes::INS_50);
pub const INS_51: Code = code(codes::INS_51);
pub const INS_52: Code = code(codes::INS_52);
pub const INS_54: Code = code(codes::INS_54);
pub const INS_55: Code = code(codes::INS_55);
pub const INS_56: Code = code(codes::INS_56);
pub const INS_57: Code = code(codes::INS_57);
pub const INS_58: Code = code(codes::INS_58);
pub const INS_989: Code = code(codes::INS_989);
pub const INS_997: Code = code(codes::INS_997);
pub const INS_998: Code = code(codes::INS_998);
pub const INS_2006: Code = code(codes::INS_2006);
pub const INS_2051: Code = code(codes::INS_2051);

/// The generic response-code table of the Mozambique portal (reference §6.2), which the v1x
/// gateway answers with: some codes carry another status or meaning than in v2's per-API
/// tables (`INS-1` is 500, `INS-26` is "Not authorized", `INS-993`…`INS-997` are
/// direct-debit and profile problems).
pub const GENERIC: &[Code] = &[
    generic("INS-0", 201, "Request processed successfully"),
    generic("INS-1", 500, "Internal Error"),
    generic("INS-2", 401, "Invalid API Key"),
    generic("INS-4", 401, "User is not active"),
    generic("INS-5", 401, "Transaction cancelled by customer"),
    generic("INS-6", 401, "Transaction Failed"),
    generic("INS-9", 408, "Request timeout"),
    generic("INS-10", 409, "Duplicate Transaction"),
    generic("INS-13", 400, "Invalid Shortcode Used"),
    generic("INS-14", 400, "Invalid Reference Used"),
    generic("INS-15", 400, "Invalid Amount Used"),
    generic(
        "INS-16",
        503,
        "Unable to handle the request due to a temporary overloading",
    ),
    generic(
        "INS-17",
        400,
        "Invalid Transaction Reference. Length Should Be Between 1 and 20.",
    ),
    generic("INS-18", 400, "Invalid TransactionID Used"),
    generic("INS-19", 400, "Invalid ThirdPartyReference Used"),
    generic(
        "INS-20",
        400,
        "Not All Parameters Provided. Please try again.",
    ),
    generic(
        "INS-21",
        400,
        "Parameter validations failed. Please try again.",
    ),
    generic("INS-22", 400, "Invalid Operation Type"),
    generic("INS-23", 400, "Unknown Status. Contact M-Pesa Support"),
    generic("INS-24", 400, "Invalid InitiatorIdentifier Used"),
    generic("INS-25", 400, "Invalid SecurityCredential Used"),
    generic("INS-26", 400, "Not authorized"),
    generic("INS-993", 400, "Direct Debit Missing"),
    generic("INS-994", 400, "Direct Debit Already Exists"),
    generic("INS-995", 400, "Customer's Profile Has Problems"),
    generic("INS-996", 400, "Customer Account Status Not Active"),
    generic("INS-997", 400, "Linking Transaction Not Found"),
    generic("INS-998", 400, "Invalid Market"),
    generic("INS-2001", 400, "Initiator authentication error."),
    generic("INS-2002", 400, "Receiver invalid."),
    generic("INS-2006", 422, "Insufficient balance"),
    generic("INS-2051", 400, "MSISDN invalid."),
    generic("INS-2057", 400, "Language code invalid."),
];

const fn generic(code_: &'static str, status: u16, text: &'static str) -> Code {
    code(Documented {
        code: code_,
        status,
        text,
    })
}

/// v1x's answer when the customer declined on the handset (the generic table's `INS-5`; v2's
/// per-API tables have no such code, and answer `INS-6`).
pub const V1X_CANCELLED_BY_CUSTOMER: Code =
    generic("INS-5", 401, "Transaction cancelled by customer");

/// The generic table's code by name.
pub fn generic_code(name: &str) -> Option<Code> {
    GENERIC.iter().copied().find(|c| c.code == name)
}

/// A failure of Mkoba itself: 500 on both gateways (v2's tables say 400 for most APIs;
/// a server fault is no client error).
pub const INTERNAL: Code = INS_1.with(500, "Internal Error");
/// The session refusals (the portal documents none; these are Mkoba's, with 401 so
/// clients that refresh on 401 do so).
pub const SESSION_INVALID: Code = INS_6.with(401, "Invalid Session ID");
pub const SESSION_EXPIRED: Code = INS_6.with(401, "Session key expired");
pub const SESSION_NOT_ACTIVE: Code = INS_6.with(401, "Session key not yet active");
/// Every session refusal, for the documents.
pub const SESSION_REFUSALS: [Code; 3] = [SESSION_INVALID, SESSION_EXPIRED, SESSION_NOT_ACTIVE];
/// Cancel Direct Debit answers an unknown mandate with `INS-6` and its own text.
pub const MANDATE_MISSING: Code = INS_6.with(401, "Mandate does not exist");
/// Query Direct Debit answers a mandate id of another reference with 500.
pub const MANDATE_MISMATCH_ON_QUERY: Code = INS_52.with(500, INS_52.desc);

/// Both gateways: too many bearers waiting for an RSA decryption (the generic table's
/// overload code; v2's tables document none).
pub const OVERLOADED: Code = generic(
    "INS-16",
    503,
    "Unable to handle the request due to a temporary overloading",
);

/// The answer to a read the platform could not make, because every reader was busy or the
/// store failed (a lost database, a full disk: logged): the overload code, `503 INS-16`
/// with `Retry-After`, as for a write the store refused, since either passes.
pub fn failed(e: mkoba_platform::Internal) -> Code {
    match e {
        mkoba_platform::Internal::Busy | mkoba_platform::Internal::Failed => OVERLOADED,
    }
}

/// v1x: the API key did not decrypt or is not an application's (every cause alike).
pub const V1X_INVALID_API_KEY: Code = generic("INS-2", 401, "Invalid API Key");
/// v1x: the initiator of a reversal is malformed.
pub const V1X_INVALID_INITIATOR: Code = generic("INS-24", 400, "Invalid InitiatorIdentifier Used");
/// v1x: the security credential of a reversal is malformed.
pub const V1X_INVALID_CREDENTIAL: Code = generic("INS-25", 400, "Invalid SecurityCredential Used");

/// Which of the product's two deployments a request came through (reference §1): the
/// session-based v2 gateway, or Mozambique's v1x gateway (the API key on every call, one
/// port per API, `input_ThirdPartyReference`, the generic code table).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Gateway {
    V2,
    V1x,
}

impl Gateway {
    /// The request field that carries the client's own reference.
    pub fn client_reference(self) -> &'static str {
        match self {
            Gateway::V2 => "input_ThirdPartyConversationID",
            Gateway::V1x => "input_ThirdPartyReference",
        }
    }

    /// The response field that echoes it.
    pub fn echo(self) -> &'static str {
        match self {
            Gateway::V2 => "output_ThirdPartyConversationID",
            Gateway::V1x => "output_ThirdPartyReference",
        }
    }

    /// A code as this gateway answers it, the one place where the two tables meet: v2
    /// answers the per-API table's code as it is; v1x answers the generic table's status
    /// and text for the same code, and its own code where the meaning differs (a bad
    /// client reference is `INS-19`, someone else's transaction `INS-26 Not authorized`).
    /// A success keeps the status its operation gives it (201, or 200 for queries).
    pub fn code(self, c: Code) -> Code {
        if self == Gateway::V2 {
            return c;
        }
        let name = match c.code {
            "INS-0" => return c,
            "INS-28" => "INS-19",
            "INS-35" => "INS-26",
            other => other,
        };
        generic_code(name).unwrap_or(c)
    }
}

impl Code {
    /// The same code answered with another status (a GET query's 200, INS-1's 500 on
    /// Query Direct Debit) or another text (Cancel Direct Debit's INS-6).
    pub const fn with(self, status: u16, desc: &'static str) -> Code {
        code(Documented {
            code: self.code,
            status,
            text: desc,
        })
    }
}

/// A flat `output_*` body under construction, in insertion order.
#[derive(Debug, Default, Clone)]
pub struct Body {
    fields: Vec<(&'static str, String)>,
}

impl Body {
    /// A body starting with `output_ResponseCode` and `output_ResponseDesc`.
    pub fn of(code: Code) -> Body {
        Body::default()
            .field("output_ResponseCode", code.code)
            .field("output_ResponseDesc", code.desc)
    }

    /// Appends a field.
    pub fn field(mut self, name: &'static str, value: impl Into<String>) -> Body {
        self.fields.push((name, value.into()));
        self
    }

    /// Appends a field when there is a value.
    pub fn maybe(self, name: &'static str, value: Option<impl Into<String>>) -> Body {
        match value {
            Some(v) => self.field(name, v),
            None => self,
        }
    }

    /// The JSON text.
    pub fn to_json(&self) -> String {
        let mut out = String::from("{");
        for (i, (name, value)) in self.fields.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            out.push_str(&serde_json::Value::from(*name).to_string());
            out.push(':');
            out.push_str(&serde_json::Value::from(value.as_str()).to_string());
        }
        out.push('}');
        out
    }

    /// The response with `status`.
    pub fn respond(&self, status: StatusCode) -> Response {
        json_response(status, self.to_json())
    }
}

/// A JSON response with the headers the real gateway sends (none holds a quote).
pub fn json_response(status: StatusCode, body: String) -> Response {
    let mut r = (status, body).into_response();
    let h = r.headers_mut();
    h.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    h.insert(
        header::ACCESS_CONTROL_ALLOW_ORIGIN,
        HeaderValue::from_static("*"),
    );
    h.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    r
}

/// The gateway's own refusals, before the `INS-*` layer: `{"output_error":"…"}`.
pub fn gateway_error(status: StatusCode, text: &str) -> Response {
    json_response(
        status,
        format!("{{\"output_error\":{}}}", serde_json::Value::from(text)),
    )
}

/// Every way an M-Pesa request is refused, mapped to the wire here and nowhere else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MpesaError {
    /// An `INS-*` answer, in the request's gateway's table.
    Ins(Code),
    /// The gateway's own refusals, before the `INS-*` layer: `{"output_error":"…"}`.
    NotFound,
    /// The operation's methods, for the `Allow` header.
    MethodNotAllowed {
        method: &'static str,
        also: &'static [&'static str],
    },
    BodyTooLarge,
    /// The body did not arrive in time (or broke off).
    BodyUnreadable,
    /// The server holds as many request bodies as it may: the overload answer, `INS-16`
    /// with `Retry-After`.
    BodiesBusy,
    /// `Origin` is not one the application allows (403; the status is unconfirmed
    /// upstream).
    OriginNotAllowed,
}

impl MpesaError {
    /// The answer. With the request's fields, an `INS-*` body also carries a fresh
    /// `output_ConversationID` and echoes the client's reference (v2's
    /// `output_ThirdPartyConversationID`, v1x's `output_ThirdPartyReference`). A v1x body
    /// always carries both, empty when there is nothing to echo: PaymentsDS's Python
    /// client reads them from every answer and fails without them.
    pub fn respond(self, gateway: Gateway, fields: Option<&Fields>) -> Response {
        if let MpesaError::BodiesBusy = self {
            let mut r = MpesaError::Ins(OVERLOADED).respond(gateway, fields);
            r.headers_mut().insert(
                axum::http::header::RETRY_AFTER,
                axum::http::HeaderValue::from_static("1"),
            );
            return r;
        }
        let (status, text) = match self {
            // Answered above.
            MpesaError::BodiesBusy => (StatusCode::SERVICE_UNAVAILABLE, "Service unavailable"),
            MpesaError::Ins(code) => {
                let code = gateway.code(code);
                let mut body = Body::of(code);
                let echo = fields.and_then(|f| f.get(gateway.client_reference()));
                if fields.is_some() || gateway == Gateway::V1x {
                    body = body.field(
                        "output_ConversationID",
                        uuid::Uuid::new_v4().simple().to_string(),
                    );
                }
                body = match gateway {
                    Gateway::V1x => body.field(gateway.echo(), echo.unwrap_or_default()),
                    Gateway::V2 => body.maybe(gateway.echo(), echo),
                };
                let mut r = body.respond(code.status);
                if code.status == StatusCode::SERVICE_UNAVAILABLE {
                    // An overload: the client may try again in a second.
                    r.headers_mut()
                        .insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
                }
                return r;
            }
            MpesaError::NotFound => (StatusCode::NOT_FOUND, "Resource not found"),
            MpesaError::MethodNotAllowed { method, also } => {
                let mut r = gateway_error(StatusCode::METHOD_NOT_ALLOWED, "Method not allowed");
                let mut allow: Vec<&str> = std::iter::once(method)
                    .chain(also.iter().copied())
                    .chain(["OPTIONS"])
                    .collect();
                if let Some(get) = allow.iter().position(|m| *m == "GET") {
                    allow.insert(get + 1, "HEAD");
                }
                if let Ok(v) = HeaderValue::from_str(&allow.join(", ")) {
                    r.headers_mut().insert(header::ALLOW, v);
                }
                return r;
            }
            MpesaError::BodyTooLarge => (StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
            MpesaError::BodyUnreadable => {
                (StatusCode::BAD_REQUEST, "Request body could not be read")
            }
            MpesaError::OriginNotAllowed => (StatusCode::FORBIDDEN, "Origin not allowed"),
        };
        gateway_error(status, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_keep_their_field_order_and_escape_values() {
        let b = Body::of(INS_0)
            .field("output_TransactionID", "G27DEn1DLoQ3")
            .field("output_ThirdPartyConversationID", "a\"b");
        assert_eq!(
            b.to_json(),
            r#"{"output_ResponseCode":"INS-0","output_ResponseDesc":"Request processed successfully","output_TransactionID":"G27DEn1DLoQ3","output_ThirdPartyConversationID":"a\"b"}"#
        );
    }

    #[test]
    fn documented_statuses_come_with_the_codes() {
        assert_eq!(INS_2006.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(INS_10.status, StatusCode::CONFLICT);
        assert_eq!(INS_9.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(INS_57.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
