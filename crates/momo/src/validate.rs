//! Validated values at the edge: what the platform accepts in headers, paths and bodies.

use axum::http::{HeaderMap, StatusCode};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::model::{ApiUser, Party, PartyIdType};
use serde_json::Value;
use uuid::Uuid;

use crate::error::MomoError;

/// Longest `payerMessage`, `payeeNote` and `notificationMessage` (reference §12).
pub const MAX_TEXT: usize = 160;

/// A header as text, if present.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A reference id: a UUID in its hyphenated form (any case).
pub fn reference_id(text: &str, what: &str) -> Result<Uuid, MomoError> {
    let text = text.trim();
    if text.len() == 36
        && let Ok(id) = Uuid::parse_str(text)
    {
        return Ok(id);
    }
    Err(MomoError::bad(format!(
        "{what} must be a UUID such as 3fa85f64-5717-4562-b3fc-2c963f66afa6, got {text:?}"
    )))
}

/// The `X-Reference-Id` header of a creating POST.
pub fn x_reference_id(headers: &HeaderMap) -> Result<Uuid, MomoError> {
    match header(headers, "x-reference-id") {
        Some(v) => reference_id(v, "X-Reference-Id"),
        None => Err(MomoError::bad("the X-Reference-Id header is required")),
    }
}

/// `X-Target-Environment` must be present and be the API user's environment.
pub fn target_environment(headers: &HeaderMap, user: &ApiUser) -> Result<(), MomoError> {
    match header(headers, "x-target-environment") {
        None | Some("") => Err(MomoError::bad(
            "the X-Target-Environment header is required (sandbox, or the market of the API user)",
        )),
        Some(env) if env == user.target_environment => Ok(()),
        Some(_) => Err(MomoError::Platform(
            StatusCode::INTERNAL_SERVER_ERROR,
            "NOT_ALLOWED_TARGET_ENVIRONMENT",
        )),
    }
}

pub use mkoba_platform::widget::host_of;

/// A `providerCallbackHost`: a host name or IP literal, optionally with a port, or an
/// http(s) URL of one (MTN's sandbox takes either); nothing else — no other scheme, no
/// markup, no spaces. Answers the host as given, trimmed.
pub fn callback_host(text: &str) -> Result<String, MomoError> {
    let text = text.trim();
    let refuse = || {
        MomoError::bad(format!(
            "providerCallbackHost must be a host name or IP address such as clinic.com, got {text:?}"
        ))
    };
    let rest = match text.split_once("://") {
        Some((scheme, rest))
            if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") =>
        {
            rest
        }
        Some(_) => return Err(refuse()),
        None => text,
    };
    let authority = rest.split('/').next().unwrap_or_default();
    let plain = |c: char| c.is_ascii_alphanumeric() || c == '.' || c == '-';
    let ok = match authority.strip_prefix('[') {
        Some(v6) => v6.split_once(']').is_some_and(|(ip, port)| {
            ip.parse::<std::net::Ipv6Addr>().is_ok()
                && (port.is_empty()
                    || port
                        .strip_prefix(':')
                        .is_some_and(|p| p.parse::<u16>().is_ok()))
        }),
        None if authority.parse::<std::net::Ipv6Addr>().is_ok() => true,
        None => {
            let (host, port) = authority.split_once(':').unwrap_or((authority, ""));
            !host.is_empty()
                && host.len() <= 253
                && host.chars().all(plain)
                && !host.starts_with(['.', '-'])
                && (port.is_empty() || port.parse::<u16>().is_ok())
        }
    };
    let path_ok = rest[authority.len()..]
        .chars()
        .all(|c| c.is_ascii_graphic() && !"<>\"'`\\".contains(c));
    if ok && path_ok && text.len() <= 300 {
        Ok(text.to_owned())
    } else {
        Err(refuse())
    }
}

/// The `X-Callback-Url` header, checked against the API user's callback host: the host
/// names must be equal (the port may differ). A mismatch is the platform's synchronous 500.
pub fn callback_url(headers: &HeaderMap, user: &ApiUser) -> Result<Option<String>, MomoError> {
    let Some(url) = header(headers, "x-callback-url") else {
        return Ok(None);
    };
    if url.is_empty() {
        return Err(MomoError::bad(
            "X-Callback-Url must not be empty when present",
        ));
    }
    callback_url_of(url, user).map(Some)
}

/// A callback URL for `user`: absolute http(s), on the API user's `providerCallbackHost`
/// (the `X-Callback-Url` rule, also applied to the Collection Widget's callback URL).
pub fn callback_url_of(url: &str, user: &ApiUser) -> Result<String, MomoError> {
    let (scheme, _) = url.split_once("://").unwrap_or(("", ""));
    let host = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        host_of(url)
    } else {
        None
    };
    let Some(host) = host else {
        return Err(MomoError::bad(format!(
            "X-Callback-Url must be an absolute http(s) URL, got {url:?}"
        )));
    };
    match host_of(&user.provider_callback_host) {
        Some(allowed) if allowed == host => Ok(url.to_owned()),
        _ => Err(MomoError::Platform(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INVALID_CALLBACK_URL_HOST",
        )),
    }
}

/// A JSON body; an empty body counts as `{}`.
pub fn json_body(body: &[u8]) -> Result<Value, MomoError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| MomoError::bad(format!("the body is not valid JSON: {e}")))?;
    if value.is_object() {
        Ok(value)
    } else {
        Err(MomoError::bad("the body must be a JSON object"))
    }
}

/// A field that the platform treats as a string; numbers are accepted as their text
/// (several SDKs send `"amount": 100`).
pub fn string_field(body: &Value, name: &str) -> Result<Option<String>, MomoError> {
    match body.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(MomoError::bad(format!("{name} must be a string"))),
    }
}

/// A required string field.
pub fn required(body: &Value, name: &str) -> Result<String, MomoError> {
    match string_field(body, name)? {
        Some(s) if !s.trim().is_empty() => Ok(s),
        _ => Err(MomoError::bad(format!("{name} is required"))),
    }
}

/// `payerMessage`, `payeeNote` and the like: at most 160 characters, without the
/// characters the platform refuses (`'` and `&`).
pub fn free_text(body: &Value, name: &str) -> Result<Option<String>, MomoError> {
    let Some(text) = string_field(body, name)? else {
        return Ok(None);
    };
    check_text(&text, name)?;
    Ok(Some(text))
}

/// The longest `externalId` taken (MTN's definitions give no limit; this is Mkoba's, so a
/// caller cannot store megabytes in one).
pub const MAX_EXTERNAL_ID: usize = 256;

/// `externalId`: at most [`MAX_EXTERNAL_ID`] characters, no control characters.
pub fn external_id(body: &Value) -> Result<Option<String>, MomoError> {
    let Some(id) = string_field(body, "externalId")? else {
        return Ok(None);
    };
    if id.chars().count() > MAX_EXTERNAL_ID {
        return Err(MomoError::bad(format!(
            "externalId must be at most {MAX_EXTERNAL_ID} characters"
        )));
    }
    if id.chars().any(char::is_control) {
        return Err(MomoError::bad(
            "externalId must not contain control characters",
        ));
    }
    Ok(Some(id))
}

/// The rules of [`free_text`] on a value.
pub fn check_text(text: &str, name: &str) -> Result<(), MomoError> {
    if text.chars().count() > MAX_TEXT {
        return Err(MomoError::bad(format!(
            "{name} must be at most {MAX_TEXT} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(MomoError::bad(format!(
            "{name} must not contain control characters"
        )));
    }
    if let Some(c) = text.chars().find(|c| matches!(c, '\'' | '&')) {
        return Err(MomoError::bad(format!(
            "{name} contains the unsupported character {c:?}"
        )));
    }
    Ok(())
}

/// A currency code.
pub fn currency(text: &str) -> Result<Currency, MomoError> {
    Currency::parse(text.trim()).map_err(|e| MomoError::bad(e.to_string()))
}

/// The currencies an environment allows; the sandbox allows only EUR.
pub fn check_currency(currency: Currency, allowed: &str) -> Result<(), MomoError> {
    if currency.as_str() == allowed {
        Ok(())
    } else {
        Err(MomoError::Platform(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INVALID_CURRENCY",
        ))
    }
}

/// A positive decimal amount in the currency.
pub fn amount(text: &str, currency: Currency) -> Result<Money, MomoError> {
    Money::parse_positive(text.trim(), currency).map_err(|e| MomoError::bad(e.to_string()))
}

/// A party id of the given type.
pub fn party_id(id_type: PartyIdType, id: &str) -> Result<String, MomoError> {
    let id = id.trim();
    let ok = match id_type {
        PartyIdType::Msisdn => {
            (4..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
        }
        PartyIdType::Email => {
            id.len() <= 254
                && id.split_once('@').is_some_and(|(local, domain)| {
                    !local.is_empty() && domain.contains('.') && !domain.contains('@')
                })
        }
        PartyIdType::PartyCode => id.len() == 36 && Uuid::parse_str(id).is_ok(),
    };
    if ok {
        Ok(id.to_owned())
    } else {
        let expected = match id_type {
            PartyIdType::Msisdn => "an MSISDN of 4 to 15 digits without '+', e.g. 46733123450",
            PartyIdType::Email => "an e-mail address",
            PartyIdType::PartyCode => "a UUID",
        };
        Err(MomoError::bad(format!(
            "partyId {id:?} is not valid for {}: expected {expected}",
            id_type.as_str()
        )))
    }
}

/// A party object: `{"partyIdType":"MSISDN","partyId":"…"}`.
pub fn party(body: &Value, name: &str) -> Result<Party, MomoError> {
    let Some(p) = body.get(name).filter(|v| v.is_object()) else {
        return Err(MomoError::bad(format!(
            "{name} is required: {{\"partyIdType\":\"MSISDN\",\"partyId\":\"46733123450\"}}"
        )));
    };
    let id_type = required(p, "partyIdType")?;
    let id_type = PartyIdType::parse_ignore_case(id_type.trim()).ok_or_else(|| {
        MomoError::bad(format!(
            "{name}.partyIdType must be MSISDN, EMAIL or PARTY_CODE, got {id_type:?}"
        ))
    })?;
    let id = required(p, "partyId")?;
    Ok(Party {
        id_type,
        id: party_id(id_type, &id)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn callback_hosts_are_hosts_or_ip_literals() {
        for ok in [
            "clinic.com",
            "127.0.0.1",
            "localhost:9000",
            "https://clinic.com/cb",
            "::1",
            "[::1]:8080",
            "http://[2001:db8::1]/x",
        ] {
            assert!(callback_host(ok).is_ok(), "{ok}");
        }
        for bad in [
            "<script>",
            "javascript:alert(1)",
            "ftp://clinic.com",
            "clinic .com",
            "clinic.com:port",
            "http://clinic.com/<x>",
            "",
        ] {
            assert!(callback_host(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn host_of_handles_urls_bare_hosts_ports_and_userinfo() {
        assert_eq!(host_of("clinic.com").as_deref(), Some("clinic.com"));
        assert_eq!(
            host_of("https://Clinic.com/cb?x=1").as_deref(),
            Some("clinic.com")
        );
        assert_eq!(
            host_of("http://127.0.0.1:9000/cb").as_deref(),
            Some("127.0.0.1")
        );
        assert_eq!(host_of("http://u:p@h.io:1/").as_deref(), Some("h.io"));
        assert_eq!(host_of("http://[::1]:8080/").as_deref(), Some("::1"));
        assert_eq!(host_of("ftp://h.io/"), None);
        assert_eq!(host_of("http:///x"), None);
    }

    #[test]
    fn msisdns_are_digits_only() {
        assert!(party_id(PartyIdType::Msisdn, "46733123450").is_ok());
        assert!(party_id(PartyIdType::Msisdn, "0248888736").is_ok());
        assert!(party_id(PartyIdType::Msisdn, "+46733123450").is_err());
        assert!(party_id(PartyIdType::Msisdn, "abc").is_err());
        assert!(party_id(PartyIdType::Email, "a@b.io").is_ok());
        assert!(party_id(PartyIdType::Email, "ab.io").is_err());
    }

    #[test]
    fn free_text_refuses_long_text_and_forbidden_characters() {
        assert!(check_text("thanks", "payerMessage").is_ok());
        assert!(check_text("rock & roll", "payerMessage").is_err());
        assert!(check_text("it's", "payerMessage").is_err());
        assert!(check_text(&"x".repeat(161), "payerMessage").is_err());
        assert!(check_text(&"x".repeat(160), "payerMessage").is_ok());
        assert!(check_text("a\u{0}b", "payerMessage").is_err());
        let long = serde_json::json!({"externalId": "x".repeat(257)});
        assert!(external_id(&long).is_err());
        let nul = serde_json::json!({"externalId": "a\u{0}"});
        assert!(external_id(&nul).is_err());
        let ok = serde_json::json!({"externalId": "order-1"});
        assert_eq!(external_id(&ok).unwrap().as_deref(), Some("order-1"));
    }
}

/// Property tests: the validators take any text without panicking, and what they accept
/// holds their promise.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn validators_take_any_text(s in "\\PC{0,80}|[0-9.,-]{0,24}") {
            let eur = Currency::parse("EUR").unwrap();
            if let Ok(m) = amount(&s, eur) {
                prop_assert!(m.minor() > 0);
            }
            if let Ok(host) = callback_host(&s) {
                prop_assert!(host_of(&host).is_some(), "{host:?}");
                prop_assert!(!host.contains(['<', '>', '"', '\'', ' ']));
            }
            let _ = host_of(&s);
            let _ = currency(&s);
            let _ = check_text(&s, "payerMessage");
            let _ = reference_id(&s, "X-Reference-Id");
            let _ = json_body(s.as_bytes());
        }

        #[test]
        fn any_bytes_are_a_json_object_or_a_bad_request(b in prop::collection::vec(any::<u8>(), 0..256)) {
            match json_body(&b) {
                Ok(v) => prop_assert!(v.is_object()),
                Err(e) => prop_assert!(matches!(e, MomoError::BadRequest(_))),
            }
        }
    }
}
