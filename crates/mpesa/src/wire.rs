//! The M-Pesa OpenAPI's wire vocabulary: markets, `INS-*` codes with their HTTP statuses
//! and texts (reference §6.1, the v2 per-API tables), and response bodies.
//!
//! Bodies are flat JSON objects of strings with `output_*` keys, written in the order the
//! real sandbox sends them. Every response is JSON, errors included, and no header value
//! holds a quote character: the official Python SDK parses both crudely.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// A market of the v2 gateway (reference §2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Market {
    /// The `{market}` path value, e.g. `vodacomTZN`.
    pub path: &'static str,
    /// `input_Country`.
    pub country: &'static str,
    /// `input_Currency`.
    pub currency: &'static str,
    /// MSISDN country code.
    pub dialling_code: &'static str,
}

/// The five markets.
pub const MARKETS: [Market; 5] = [
    Market {
        path: "vodafoneGHA",
        country: "GHA",
        currency: "GHS",
        dialling_code: "233",
    },
    Market {
        path: "vodacomTZN",
        country: "TZN",
        currency: "TZS",
        dialling_code: "255",
    },
    Market {
        path: "vodacomLES",
        country: "LES",
        currency: "LSL",
        dialling_code: "266",
    },
    Market {
        path: "vodacomDRC",
        country: "DRC",
        currency: "USD",
        dialling_code: "243",
    },
    Market {
        path: "vodacomMOZ",
        country: "MOZ",
        currency: "MZN",
        dialling_code: "258",
    },
];

impl Market {
    /// The market of a path value (case-insensitive, as clients vary).
    pub fn from_path(path: &str) -> Option<Market> {
        MARKETS
            .into_iter()
            .find(|m| m.path.eq_ignore_ascii_case(path))
    }
}

/// An `INS-*` result code with the HTTP status the portal documents for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Code {
    pub code: &'static str,
    pub status: StatusCode,
    pub desc: &'static str,
}

const fn code(code: &'static str, status: u16, desc: &'static str) -> Code {
    let status = match StatusCode::from_u16(status) {
        Ok(s) => s,
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    Code { code, status, desc }
}

/// Success of a POST/PUT (201); queries and getSession answer 200 with the same text.
pub const INS_0: Code = code("INS-0", 201, "Request processed successfully");
pub const INS_1: Code = code("INS-1", 400, "Internal Error");
pub const INS_6: Code = code("INS-6", 401, "Transaction Failed");
pub const INS_9: Code = code("INS-9", 408, "Request timeout");
pub const INS_10: Code = code("INS-10", 409, "Duplicate Transaction");
pub const INS_13: Code = code("INS-13", 400, "Invalid Shortcode Used");
pub const INS_15: Code = code("INS-15", 400, "Invalid Amount Used");
pub const INS_17: Code = code(
    "INS-17",
    400,
    "Invalid Transaction Reference. Length Should Be Between 1 and 20.",
);
pub const INS_18: Code = code("INS-18", 400, "Invalid TransactionID Used");
pub const INS_19: Code = code("INS-19", 400, "Invalid ThirdPartyReference Used");
pub const INS_20: Code = code(
    "INS-20",
    400,
    "Not All Parameters Provided. Please try again.",
);
pub const INS_21: Code = code(
    "INS-21",
    400,
    "Parameter validations failed. Please try again.",
);
pub const INS_23: Code = code(
    "INS-23",
    400,
    "Transaction not found. Contact M-Pesa Support",
);
pub const INS_26: Code = code("INS-26", 400, "Invalid Currency Used");
pub const INS_28: Code = code("INS-28", 400, "Invalid ThirdPartyConversationID Used");
pub const INS_30: Code = code("INS-30", 400, "Invalid Purchased Items Description Used");
pub const INS_31: Code = code("INS-31", 400, "Invalid Payment Items Description Used");
pub const INS_32: Code = code("INS-32", 400, "Invalid KYC Query Type Used");
pub const INS_35: Code = code("INS-35", 400, "This transaction do not belong to you");
pub const INS_36: Code = code("INS-36", 400, "Invalid Agreed TC Used");
pub const INS_39: Code = code("INS-39", 400, "Invalid First Payment Date Used");
pub const INS_40: Code = code("INS-40", 400, "Invalid Frequency Used");
pub const INS_41: Code = code("INS-41", 400, "Invalid Start Range Days Used");
pub const INS_42: Code = code("INS-42", 400, "Invalid End Range Days Used");
pub const INS_43: Code = code("INS-43", 400, "Invalid Expiry Date Used");
pub const INS_50: Code = code(
    "INS-50",
    400,
    "MSISDN Token and MSISDN provided does not Match",
);
pub const INS_51: Code = code("INS-51", 400, "Invalid MandateID Used");
pub const INS_52: Code = code(
    "INS-52",
    400,
    "The MandateID used does not correspond to the ThirdPartyReference used.",
);
pub const INS_54: Code = code("INS-54", 400, "Invalid BalanceAmount Used");
pub const INS_55: Code = code(
    "INS-55",
    401,
    "BalanceAmount is Mandatory when QueryBalanceAmount is True",
);
pub const INS_56: Code = code("INS-56", 401, "Invalid MSISDNToken Used");
pub const INS_57: Code = code("INS-57", 500, "Either MSISDN or MSISDNToken required");
pub const INS_58: Code = code("INS-58", 400, "No Active Mandate found");
pub const INS_989: Code = code("INS-989", 400, "Session Creation Failed");
pub const INS_997: Code = code("INS-997", 400, "API Not Enabled");
pub const INS_998: Code = code("INS-998", 400, "Invalid Market");
pub const INS_2006: Code = code("INS-2006", 422, "Insufficient balance");
pub const INS_2051: Code = code("INS-2051", 400, "MSISDN invalid.");

impl Code {
    /// The same code answered with another status (a GET query's 200, INS-1's 500 on
    /// Query Direct Debit) or another text (Cancel Direct Debit's INS-6).
    pub const fn with(self, status: u16, desc: &'static str) -> Code {
        code(self.code, status, desc)
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
    fn markets_are_found_by_path_in_any_case() {
        assert_eq!(Market::from_path("vodacomtzn").unwrap().currency, "TZS");
        assert_eq!(Market::from_path("vodafoneGHA").unwrap().country, "GHA");
        assert!(Market::from_path("vodafoneEGY").is_none());
    }

    #[test]
    fn documented_statuses_come_with_the_codes() {
        assert_eq!(INS_2006.status, StatusCode::UNPROCESSABLE_ENTITY);
        assert_eq!(INS_10.status, StatusCode::CONFLICT);
        assert_eq!(INS_9.status, StatusCode::REQUEST_TIMEOUT);
        assert_eq!(INS_57.status, StatusCode::INTERNAL_SERVER_ERROR);
    }
}
