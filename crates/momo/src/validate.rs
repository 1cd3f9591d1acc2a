//! Validated values at the edge: what the platform accepts in headers, paths and bodies.

use axum::http::{HeaderMap, StatusCode};
use mkoba_ledger::{Currency, Money};
use mkoba_platform::model::{ApiUser, Party, PartyIdType};
use serde_json::Value;
use uuid::Uuid;

use crate::error::MomoError;

/// Longest `payerMessage`, `payeeNote` and `notificationMessage` (reference §12).
pub const MAX_TEXT: usize = 160;

/// Longest callback URL (`X-Callback-Url`, the widget's `callbackUrl`), in bytes: what
/// browsers and proxies commonly take.
pub const MAX_CALLBACK_URL: usize = 2048;

/// A header as text, if present.
pub fn header<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::trim)
}

/// A header of free text (`notificationMessage`), if present: UTF-8, or else ISO-8859-1 as
/// HTTP's older rule reads a header's bytes (a client that sends `é` as one byte), so a
/// message with accents is read, not taken for a missing header.
pub fn text_header(headers: &HeaderMap, name: &str) -> Option<String> {
    let bytes = headers.get(name)?.as_bytes();
    let text = match std::str::from_utf8(bytes) {
        Ok(text) => text.to_owned(),
        Err(_) => bytes.iter().map(|&b| char::from(b)).collect(),
    };
    Some(text.trim().to_owned())
}

/// A header as text whatever its bytes (ISO-8859-1 where they are not UTF-8), borrowed
/// when it is ASCII, as nearly every one is: a value that is not ASCII is told what is
/// wrong with it, not that it is missing.
fn header_text<'a>(headers: &'a HeaderMap, name: &str) -> Option<std::borrow::Cow<'a, str>> {
    let value = headers.get(name)?;
    Some(match value.to_str() {
        Ok(text) => std::borrow::Cow::Borrowed(text.trim()),
        Err(_) => std::borrow::Cow::Owned(text_header(headers, name).unwrap_or_default()),
    })
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

/// The `X-Reference-Id` header of a creating POST: a UUID version 4 (random), as MTN's
/// error list has it (reference §12): the nil UUID, a time-based one or any other version
/// is a 400. (Looking a resource up by id takes any UUID; one that is not v4 is simply not
/// found.)
pub fn x_reference_id(headers: &HeaderMap) -> Result<Uuid, MomoError> {
    // Read as text whatever its bytes, so that one not ASCII is told it is no UUID, not
    // that it is missing.
    let id = match header_text(headers, "x-reference-id") {
        Some(v) => reference_id(&v, "X-Reference-Id")?,
        None => return Err(MomoError::bad("the X-Reference-Id header is required")),
    };
    if id.get_version_num() == 4 && id.get_variant() == uuid::Variant::RFC4122 {
        Ok(id)
    } else {
        Err(MomoError::bad(format!(
            "X-Reference-Id must be a random UUID (version 4) such as 3fa85f64-5717-4562-b3fc-2c963f66afa6, got \"{id}\""
        )))
    }
}

/// `X-Target-Environment` must be present and be the API user's environment.
pub fn target_environment(headers: &HeaderMap, user: &ApiUser) -> Result<(), MomoError> {
    match header_text(headers, "x-target-environment").as_deref() {
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
    let Some(value) = headers.get("x-callback-url") else {
        return Ok(None);
    };
    // Present but not text is malformed, not absent: its callbacks would go nowhere.
    let Ok(url) = value.to_str().map(str::trim) else {
        return Err(MomoError::bad(
            "X-Callback-Url must be ASCII (percent-encode other characters)",
        ));
    };
    if url.is_empty() {
        return Err(MomoError::bad(
            "X-Callback-Url must not be empty when present",
        ));
    }
    callback_url_of(url, user, "X-Callback-Url").map(Some)
}

/// A callback URL for `user`: absolute http(s), on the API user's `providerCallbackHost`
/// (the `X-Callback-Url` rule, also applied to the Collection Widget's `callbackUrl`;
/// `what` names it in the refusal).
pub fn callback_url_of(url: &str, user: &ApiUser, what: &str) -> Result<String, MomoError> {
    // Kept with the payment and sent with every attempt: bounded like the other texts
    // (hyper alone took up to 64 KiB, stored and shown back on every read).
    if url.len() > MAX_CALLBACK_URL {
        return Err(MomoError::bad(format!(
            "{what} must be at most {MAX_CALLBACK_URL} characters, got {}",
            url.len()
        )));
    }
    let (scheme, _) = url.split_once("://").unwrap_or(("", ""));
    let host = if scheme.eq_ignore_ascii_case("http") || scheme.eq_ignore_ascii_case("https") {
        host_of(url)
    } else {
        None
    };
    // What the callback client could not send to (a space, a backslash, port 99999) is
    // refused now, not accepted and then failed at every attempt.
    let deliverable = url.parse::<axum::http::Uri>().is_ok_and(|uri| {
        uri.authority().is_some_and(|a| {
            // The port as written (`Authority::port` is `None` for one that is no u16): what
            // follows the last `:` after an IPv6 address's `]`.
            let text = a.as_str();
            let after_host = text.rfind(']').map_or(text, |i| &text[i + 1..]);
            match after_host.rsplit_once(':') {
                None => true,
                Some((_, port)) => {
                    port.bytes().all(|b| b.is_ascii_digit())
                        && port.parse::<u16>().is_ok_and(|p| p > 0)
                }
            }
        })
    });
    let (Some(host), true) = (host, deliverable) else {
        return Err(MomoError::bad(format!(
            "{what} must be an absolute http(s) URL, got {url:?}"
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

/// A JSON body; an empty body counts as `{}`. Read as the client wrote it
/// (`mkoba_api_types::json`): a member given twice at any depth is refused, since which copy
/// counted would be a guess (a proxy reading the first would see another amount than the
/// ledger's), and so is a number that a JSON number cannot carry exactly (`1e3`,
/// `1.999999999999999999`): it would otherwise be rounded and charged. Amounts belong in
/// strings, as MTN's definitions have them; plain numbers such as `100` or `10.50` are
/// taken as written.
pub fn json_body(body: &[u8]) -> Result<Value, MomoError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Object(Default::default()));
    }
    // Most bodies need no second look: read once, they read as the exact reading would.
    let value = match mkoba_api_types::json::plain_value(body, MAX_DEPTH, MAX_VALUES) {
        Some(value) => value,
        None => exact_body(body)?,
    };
    if value.is_object() {
        Ok(value)
    } else {
        Err(MomoError::bad("the body must be a JSON object"))
    }
}

/// [`json_body`]'s reading of a body with a decimal or a member named twice, or one it
/// refuses: the whole body, then each value again ([`exact_json`]).
fn exact_body(body: &[u8]) -> Result<Value, MomoError> {
    let invalid = |e: serde_json::Error| MomoError::bad(format!("the body is not valid JSON: {e}"));
    let raw: &serde_json::value::RawValue = serde_json::from_slice(body).map_err(invalid)?;
    let mut budget = MAX_VALUES;
    exact_json(raw, 0, &mut budget).map_err(|e| e.unwrap_or_else(invalid_json))
}

/// How deep a body may nest: MoMo's bodies are three levels deep at most, and each level
/// is read again below it.
const MAX_DEPTH: usize = 16;

/// Most values in a body (each object, array, string, number, …): MoMo's bodies hold a
/// few dozen. Read into a `serde_json::Value`, a 2 MiB body of small objects took some 50
/// times its size in memory, on endpoints that need no credentials (the widget's); with
/// this bound, and at most [`mkoba_api_types::json::MAX_MEMBERS`] in one object or array,
/// a body costs little more than its own bytes.
const MAX_VALUES: usize = 1_000;

fn too_many_values() -> MomoError {
    MomoError::bad(format!(
        "the body holds more than {MAX_VALUES} values; MoMo's bodies hold a few dozen"
    ))
}

fn invalid_json() -> MomoError {
    MomoError::bad("the body is not valid JSON")
}

/// One JSON value read exactly ([`json_body`]), taking its values from `budget`;
/// `Err(None)` for a value that did not parse again (it parsed once already, so this does
/// not happen).
fn exact_json(
    raw: &serde_json::value::RawValue,
    depth: usize,
    budget: &mut usize,
) -> Result<Value, Option<MomoError>> {
    let text = raw.get();
    if depth > MAX_DEPTH {
        return Err(Some(MomoError::bad(format!(
            "the body nests deeper than {MAX_DEPTH} levels"
        ))));
    }
    *budget = budget.checked_sub(1).ok_or_else(too_many_values)?;
    // Parsed once already: a second parse of a container fails past MAX_MEMBERS, or on what
    // the first parse let through (a lone surrogate escape in a member's name).
    let too_many = |e: serde_json::Error| {
        e.to_string()
            .starts_with(mkoba_api_types::json::TOO_MANY)
            .then(too_many_values)
    };
    match text.as_bytes().first() {
        Some(b'{') => {
            let mkoba_api_types::json::Members(members) =
                serde_json::from_str(text).map_err(too_many)?;
            let mut map = serde_json::Map::new();
            for (name, v) in members {
                if map.contains_key(&name) {
                    return Err(Some(MomoError::bad(format!("the body gives {name} twice"))));
                }
                let v = exact_json(v, depth + 1, budget)?;
                map.insert(name, v);
            }
            Ok(Value::Object(map))
        }
        Some(b'[') => {
            let mkoba_api_types::json::Items(items) =
                serde_json::from_str(text).map_err(too_many)?;
            items
                .iter()
                .map(|i| exact_json(i, depth + 1, budget))
                .collect::<Result<_, _>>()
                .map(Value::Array)
        }
        Some(b'-' | b'0'..=b'9') => {
            let n: serde_json::Number = serde_json::from_str(text).map_err(|_| None)?;
            if mkoba_api_types::json::number_is_exact(text, &n) {
                Ok(Value::Number(n))
            } else {
                Err(Some(MomoError::bad(format!(
                    "the number {text} cannot be read exactly; send it as a string, as MoMo's definitions do"
                ))))
            }
        }
        _ => serde_json::from_str(text).map_err(|_| None),
    }
}

/// A field that the platform treats as a string; numbers are accepted as their text
/// (several SDKs send `"amount": 100`).
pub fn string_field(body: &Value, name: &str) -> Result<Option<String>, MomoError> {
    string_value(body.get(name), name)
}

/// [`string_field`] of a value already taken out of its body.
pub fn string_value(value: Option<&Value>, name: &str) -> Result<Option<String>, MomoError> {
    match value {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        // `-0` is read as the float -0.0, which would be quoted back as "-0.0", a value
        // the client never sent.
        Some(Value::Number(n)) if n.as_f64().is_some_and(|x| x == 0.0 && x.is_sign_negative()) => {
            Ok(Some("-0".to_owned()))
        }
        Some(Value::Number(n)) => Ok(Some(n.to_string())),
        Some(_) => Err(MomoError::bad(format!("{name} must be a string"))),
    }
}

/// A required field that is a JSON string, not a number (a host name, say).
pub fn required_string(body: &Value, name: &str) -> Result<String, MomoError> {
    match body.get(name) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s.clone()),
        Some(Value::Number(_) | Value::Bool(_) | Value::Array(_) | Value::Object(_)) => {
            Err(MomoError::bad(format!("{name} must be a string")))
        }
        _ => Err(MomoError::bad(format!("{name} is required"))),
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
    short_text(body, "externalId")
}

/// An id or a name kept as given (`externalId`, a cash transfer's payer fields, a v2
/// payment's product ids): a string (or a number, as written), at most
/// [`MAX_EXTERNAL_ID`] characters, no control characters.
pub fn short_text(body: &Value, name: &str) -> Result<Option<String>, MomoError> {
    let Some(text) = string_field(body, name)? else {
        return Ok(None);
    };
    if text.chars().count() > MAX_EXTERNAL_ID {
        return Err(MomoError::bad(format!(
            "{name} must be at most {MAX_EXTERNAL_ID} characters"
        )));
    }
    if text.chars().any(char::is_control) {
        return Err(MomoError::bad(format!(
            "{name} must not contain control characters"
        )));
    }
    Ok(Some(text))
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
    party_id_of(id_type, id, "partyId")
}

/// [`party_id`] of a field named otherwise (the path's `accountHolderId`, a cash
/// transfer's `payerMsisdn`), which its refusal names.
pub fn party_id_of(id_type: PartyIdType, id: &str, field: &str) -> Result<String, MomoError> {
    let id = id.trim();
    let ok = match id_type {
        PartyIdType::Msisdn => {
            (4..=15).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit())
        }
        PartyIdType::Email => {
            // No control characters or spaces: an address holds none, and a NUL cannot
            // even be stored in PostgreSQL (it would fail the whole group commit).
            id.len() <= 254
                && !id.chars().any(|c| c.is_control() || c.is_whitespace())
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
            PartyIdType::Msisdn => "an MSISDN of 4 to 15 digits without '+', e.g. 256774290781",
            PartyIdType::Email => "an e-mail address",
            PartyIdType::PartyCode => "a UUID",
        };
        Err(MomoError::bad(format!(
            "{field} {id:?} is not valid for {}: expected {expected}",
            id_type.as_str()
        )))
    }
}

/// An account holder named by one of the two path types that are no party type of a
/// payment (`alias`, `id`: basic user info and the pre-approvals list take them, MTN's
/// definitions list them), any case: `None` for every other type; else the id, which must
/// be 1 to 128 characters without control characters or spaces.
pub fn alias_or_id(id_type: &str, id: &str) -> Option<Result<String, MomoError>> {
    if !id_type.eq_ignore_ascii_case("alias") && !id_type.eq_ignore_ascii_case("id") {
        return None;
    }
    let ok = (1..=128).contains(&id.chars().count())
        && !id.chars().any(|c| c.is_control() || c.is_whitespace());
    Some(if ok {
        Ok(id.to_owned())
    } else {
        Err(MomoError::bad(format!(
            "accountHolderId {id:?} is not valid for {id_type}: expected 1 to 128 characters without spaces"
        )))
    })
}

/// A party object: `{"partyIdType":"MSISDN","partyId":"…"}`.
pub fn party(body: &Value, name: &str) -> Result<Party, MomoError> {
    let Some(p) = body.get(name).filter(|v| v.is_object()) else {
        return Err(MomoError::bad(format!(
            "{name} is required, for example \"{name}\":{{\"partyIdType\":\"MSISDN\",\"partyId\":\"256774290781\"}}"
        )));
    };
    // MTN's sandbox answers an empty party object with its generic 500, and published
    // clients' integration tests expect it (reference §4.2 and §5: MTNG-JAVA, an empty
    // `payer` or `payee` → 500); a party with one of its fields is told what is wrong.
    if p.as_object().is_some_and(serde_json::Map::is_empty) {
        return Err(MomoError::Platform(
            StatusCode::INTERNAL_SERVER_ERROR,
            "INTERNAL_PROCESSING_ERROR",
        ));
    }
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

/// The value of one hex digit.
fn hex(b: u8) -> Option<u8> {
    (b as char).to_digit(16).map(|d| d as u8)
}

/// One `application/x-www-form-urlencoded` component: `+` is a space, `%XX` a byte.
pub fn form_decode(text: &str) -> Result<String, MomoError> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            b'%' => {
                let byte = match (bytes.get(i + 1), bytes.get(i + 2)) {
                    (Some(&h), Some(&l)) => hex(h).zip(hex(l)).map(|(h, l)| (h << 4) | l),
                    _ => None,
                };
                let Some(byte) = byte else {
                    return Err(MomoError::bad(format!(
                        "the form body is malformed: {text:?} has an invalid %-escape (expected %XX with two hex digits)"
                    )));
                };
                out.push(byte);
                i += 3;
            }
            b => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out).map_err(|_| {
        MomoError::bad(format!(
            "the form body is malformed: {text:?} does not decode to UTF-8 text"
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_negative_zero_is_quoted_as_sent() {
        let body = json_body(br#"{"amount": -0, "other": 0.0, "n": 7}"#).unwrap();
        assert_eq!(
            string_field(&body, "amount").unwrap().as_deref(),
            Some("-0")
        );
        assert_eq!(
            string_field(&body, "other").unwrap().as_deref(),
            Some("0.0")
        );
        assert_eq!(string_field(&body, "n").unwrap().as_deref(), Some("7"));
    }

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
        // A providerCallbackHost written as a bare IPv6 address, in any spelling.
        assert_eq!(host_of("::1").as_deref(), Some("::1"));
        assert_eq!(host_of("[::1]").as_deref(), Some("::1"));
        assert_eq!(
            host_of("http://[0:0:0:0:0:0:0:1]:9/cb").as_deref(),
            Some("::1")
        );
        assert_eq!(host_of("FE80::1").as_deref(), Some("fe80::1"));
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
        for bad in [
            "x\u{0}@b.co",
            "x@b\u{0}.co",
            "a b@c.io",
            "x\u{1}@b.co",
            "x\u{2028}@b.co",
        ] {
            assert!(party_id(PartyIdType::Email, bad).is_err(), "{bad:?}");
        }
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

#[cfg(test)]
mod exact_bodies {
    use super::*;

    fn refused(body: &str) -> String {
        match json_body(body.as_bytes()) {
            Err(MomoError::BadRequest(m)) => m,
            other => panic!("{body}: {other:?}"),
        }
    }

    #[test]
    fn callback_urls_are_ones_the_callback_client_can_send_to() {
        let user = ApiUser {
            id: Uuid::nil(),
            developer_id: 1,
            provider_callback_host: "localhost".into(),
            target_environment: "sandbox".into(),
            created_at_ms: 0,
        };
        assert!(callback_url_of("http://localhost:48111/cb?x=1", &user, "X-Callback-Url").is_ok());
        assert!(callback_url_of("https://localhost/cb", &user, "X-Callback-Url").is_ok());
        for bad in [
            "http://localhost:48111/a b",
            "http://localhost:48111\\cb",
            "http://localhost:48111/a\tb",
            "http://localhost:99999/cb",
            "http://localhost:0/cb",
            "http://1:99991/cb",
            "ftp://localhost/cb",
        ] {
            assert!(
                matches!(
                    callback_url_of(bad, &user, "X-Callback-Url"),
                    Err(MomoError::BadRequest(_))
                ),
                "{bad:?}"
            );
        }
        let mut headers = HeaderMap::new();
        headers.insert(
            "x-callback-url",
            axum::http::HeaderValue::from_bytes("http://localhost/café".as_bytes()).unwrap(),
        );
        assert!(matches!(
            callback_url(&headers, &user),
            Err(MomoError::BadRequest(_))
        ));
    }

    #[test]
    fn form_decoding_handles_plus_percent_and_refuses_bad_escapes() {
        assert_eq!(form_decode("a+b%2Fc%3a").unwrap(), "a b/c:");
        assert_eq!(form_decode("%C3%A9").unwrap(), "é");
        assert!(form_decode("%zz").is_err());
        assert!(form_decode("%4").is_err());
        assert!(form_decode("%+5").is_err());
        assert!(form_decode("%FF").is_err());
    }

    #[test]
    fn a_body_holds_at_most_a_thousand_values() {
        // The object, the array and its items: 1,000 values in all.
        let items = |n: usize| vec!["1"; n].join(",");
        assert!(json_body(format!(r#"{{"x":[{}]}}"#, items(998)).as_bytes()).is_ok());
        let m = refused(&format!(r#"{{"x":[{}]}}"#, items(999)));
        assert!(m.contains("more than 1000 values"), "{m}");
        // One array or object of more than 1,000 is refused before its values are read.
        let m = refused(&format!(r#"{{"x":[{}]}}"#, items(5_000)));
        assert!(m.contains("more than 1000 values"), "{m}");
        let members: Vec<String> = (0..5_000).map(|i| format!(r#""m{i}":1"#)).collect();
        let m = refused(&format!("{{{}}}", members.join(",")));
        assert!(m.contains("more than 1000 values"), "{m}");
        // A name the first reading let through is invalid JSON, not too many values.
        assert!(refused(r#"{"\ud800":1}"#).contains("not valid JSON"));
        // Small objects count one each, with their members.
        let objects = vec![r#"{"a":1,"b":2}"#; 400].join(",");
        assert!(refused(&format!(r#"{{"x":[{objects}]}}"#)).contains("1000 values"));
    }

    #[test]
    fn numbers_are_taken_only_as_written_and_members_only_once() {
        let v = json_body(br#"{"amount":100,"x":{"y":[10.50,-3]},"s":"1e3"}"#).unwrap();
        assert_eq!(string_field(&v, "amount").unwrap().as_deref(), Some("100"));
        assert_eq!(v["x"]["y"][0].as_f64(), Some(10.5));
        assert_eq!(v["s"], "1e3");
        for lossy in [
            "1e3",
            "1E+2",
            "1.999999999999999999",
            "99.99999999999999999",
        ] {
            let m = refused(&format!(r#"{{"amount":{lossy}}}"#));
            assert!(m.contains(lossy) && m.contains("as a string"), "{m}");
        }
        let m = refused(r#"{"amount":"5","amount":"7000"}"#);
        assert!(m.contains("amount twice"), "{m}");
        let m = refused(r#"{"payer":{"partyId":"1","partyId":"2"}}"#);
        assert!(m.contains("partyId twice"), "{m}");
        let deep = format!("{}{}", "[".repeat(40), "]".repeat(40));
        assert!(refused(&format!(r#"{{"a":{deep}}}"#)).contains("deeper"));
        assert!(json_body(b"  ").unwrap().is_object());
        assert!(json_body(b"{} x").is_err());
    }

    #[test]
    fn a_body_read_once_reads_as_the_exact_reading_and_the_rest_is_left_to_it() {
        let plain =
            |body: &str| mkoba_api_types::json::plain_value(body.as_bytes(), MAX_DEPTH, MAX_VALUES);
        let items = |n: usize| vec!["1"; n].join(",");
        let deep = |n: usize| format!(r#"{{"a":{}{}}}"#, "[".repeat(n), "]".repeat(n));
        let read_once = [
            r#"{"amount":"100","currency":"EUR","externalId":"1","payer":{"partyIdType":"MSISDN","partyId":"46733123450"},"payerMessage":"hi","payeeNote":"x"}"#.to_owned(),
            r#"{"n":100,"m":-5,"z":0,"t":true,"f":false,"x":null,"a":[1,"2",[{}]],"e":"\u00e9\n"}"#.to_owned(),
            r#" { "a" : { "a" : 1 } , "b" : [ ] } "#.to_owned(),
            format!(r#"{{"x":[{}]}}"#, items(998)),
            deep(16),
        ];
        for body in &read_once {
            let once = plain(body).unwrap_or_else(|| panic!("not read once: {body}"));
            assert_eq!(once, exact_body(body.as_bytes()).unwrap(), "{body}");
        }
        // Left to the exact reading: what it reads otherwise or refuses, with its own words.
        let left = [
            r#"{"amount":10.50}"#.to_owned(),
            r#"{"amount":1e3}"#.to_owned(),
            r#"{"amount":-0}"#.to_owned(),
            r#"{"amount":18446744073709551616}"#.to_owned(),
            r#"{"amount":"5","amount":"7000"}"#.to_owned(),
            r#"{"payer":{"partyId":"1","partyId":"2"}}"#.to_owned(),
            format!(r#"{{"x":[{}]}}"#, items(999)),
            deep(17),
            r#"{"\ud800":1}"#.to_owned(),
            "{} x".to_owned(),
            "{".to_owned(),
        ];
        for body in &left {
            assert_eq!(plain(body), None, "{body}");
        }
        assert_eq!(
            json_body(br#"{"amount":10.50}"#).unwrap()["amount"].as_f64(),
            Some(10.5)
        );
        assert!(refused(&deep(17)).contains("deeper"));
    }
}

/// Property tests: the validators take any text without panicking, and what they accept
/// holds their promise.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    /// JSON texts such as clients send, and the kinds the exact reading is for: objects and
    /// arrays nested a few deep, members named twice, integers, decimals, exponents, `-0`,
    /// integers past `u64`, escapes, a lone surrogate, and now and then a byte too many.
    fn json_text() -> impl Strategy<Value = String> {
        let scalar = prop_oneof![
            Just("null".to_owned()),
            Just("true".to_owned()),
            Just("-0".to_owned()),
            Just("18446744073709551616".to_owned()),
            Just("\"\\ud800\"".to_owned()),
            any::<i64>().prop_map(|n| n.to_string()),
            any::<u64>().prop_map(|n| n.to_string()),
            (0u32..10_000, 0u32..100).prop_map(|(a, b)| format!("{a}.{b:02}")),
            (1u32..100, -3i32..4).prop_map(|(a, e)| format!("{a}e{e}")),
            "[a-z \\\\\"é]{0,8}".prop_map(|s| format!("\"{s}\"")),
        ];
        let value = scalar.prop_recursive(4, 40, 5, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..5)
                    .prop_map(|v| format!("[{}]", v.join(","))),
                prop::collection::vec(("[abc]", inner), 0..5).prop_map(|m| {
                    let members: Vec<String> =
                        m.into_iter().map(|(k, v)| format!("\"{k}\":{v}")).collect();
                    format!("{{{}}}", members.join(","))
                }),
            ]
        });
        (
            value,
            prop_oneof![Just(""), Just(" "), Just("}"), Just(",")],
        )
            .prop_map(|(v, tail)| format!("{{\"a\":{v}}}{tail}"))
    }

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

        /// A body read once ([`plain_value`](mkoba_api_types::json::plain_value)) is read
        /// as the exact reading alone read it: the same value, or the same refusal.
        #[test]
        fn a_body_reads_as_the_exact_reading_alone_read_it(body in json_text()) {
            let exact = exact_body(body.as_bytes()).and_then(|v| {
                if v.is_object() { Ok(v) } else { Err(MomoError::bad("the body must be a JSON object")) }
            });
            prop_assert_eq!(json_body(body.as_bytes()), exact, "{}", body);
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
