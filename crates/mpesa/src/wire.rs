//! The M-Pesa OpenAPI's wire vocabulary: markets, `INS-*` codes with their HTTP statuses
//! and texts (reference §6.1, the v2 per-API tables), and response bodies.
//!
//! Bodies are flat JSON objects of strings with `output_*` keys, written in the order the
//! real sandbox sends them. Every response is JSON, errors included, and no header value
//! holds a quote character: the official Python SDK parses both crudely.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use mkoba_api_types::mpesa::{Documented, codes};

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
