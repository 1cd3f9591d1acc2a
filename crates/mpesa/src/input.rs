//! Request fields, read liberally, and the per-field rules of the portal's tables.
//!
//! Fields come from the query string (the official SDKs' GETs) and from a JSON body (POSTs,
//! and the GETs of SDKs that send one); the query string wins. Names match without regard
//! to case (`input_KycQueryType` and `input_KYCQueryType` both occur); values may be JSON
//! strings, numbers or booleans; unknown fields are ignored. Each rule quotes the portal's
//! regular expression and answers the field's own `INS-*` code.

use std::collections::HashMap;

use mkoba_api_types::json::Members;
use mkoba_ledger::{Currency, Money};

use crate::wire::{self, Code, Market};

/// The `input_*` fields of one request, by lower-case name.
#[derive(Debug, Default, Clone)]
pub struct Fields {
    values: HashMap<String, String>,
    /// Fields given as a JSON array or object: no M-Pesa field is one, so each fails its
    /// rule whatever the rule allows (`[]` is printable ASCII).
    nested: Vec<String>,
}

impl Fields {
    /// Reads the query string's pairs, then the JSON body's members where the query has
    /// none. A body that is not a JSON object is refused (`INS-21`) unless it is empty or
    /// `null`, and so is a field given twice in the query or twice in the body (in any
    /// case): which copy counts would otherwise depend on the order of the copies, and a
    /// proxy or a log reading the other would see another amount than the ledger's. A
    /// refusal carries the fields that were read once, for the answer's echo of the
    /// client's references (none of a body that could not be read). A number keeps the
    /// digits the client wrote (`1e3` and `10.009` are not amounts and fail the amount's
    /// rule, instead of being rounded into one).
    pub fn read(query: &[(String, String)], body: &[u8]) -> Result<Fields, (Code, Fields)> {
        let mut twice = std::collections::HashSet::new();
        let mut fields = Fields::of_query(query, &mut twice);
        let unread = |fields: Fields, twice| Err((wire::INS_21, Fields::without(fields, twice)));
        let Ok(text) = std::str::from_utf8(body) else {
            return unread(fields, &twice);
        };
        let members = if text.trim().is_empty() {
            Vec::new()
        } else {
            match serde_json::from_str::<Members>(text) {
                Ok(Members(members)) => members,
                Err(_) => return unread(fields, &twice),
            }
        };
        let mut in_body = std::collections::HashSet::new();
        for (k, raw) in members {
            let name = k.to_ascii_lowercase();
            if !in_body.insert(name.clone()) && name.starts_with("input_") {
                twice.insert(name);
                continue;
            }
            let raw = raw.get();
            let value = match raw.as_bytes().first() {
                Some(b'"') => match serde_json::from_str::<String>(raw) {
                    Ok(value) => value,
                    // A body with a string that cannot be read is a body that could not be
                    // read: its fields echo nothing, whichever came before the string (the
                    // query's still do, read again here rather than kept for every call).
                    Err(_) => return unread(Fields::of_query(query, &mut twice), &twice),
                },
                Some(b't') => "True".to_owned(),
                Some(b'f') => "False".to_owned(),
                Some(b'n') => continue,
                Some(b'[' | b'{') => {
                    if !fields.values.contains_key(&name) {
                        fields.nested.push(name.clone());
                    }
                    raw.to_owned()
                }
                // A number as written.
                _ => raw.to_owned(),
            };
            fields.values.entry(name).or_insert(value);
        }
        if twice.is_empty() {
            Ok(fields)
        } else {
            unread(fields, &twice)
        }
    }

    /// The query string's pairs, the names given twice noted in `twice`.
    fn of_query(
        query: &[(String, String)],
        twice: &mut std::collections::HashSet<String>,
    ) -> Fields {
        let mut fields = Fields::default();
        for (k, v) in query {
            let name = k.to_ascii_lowercase();
            if fields.values.contains_key(&name) {
                if name.starts_with("input_") {
                    twice.insert(name);
                }
                continue;
            }
            fields.values.insert(name, v.clone());
        }
        fields
    }

    /// These fields but those named in `twice`, whose copies disagree on what was sent.
    fn without(mut self, twice: &std::collections::HashSet<String>) -> Fields {
        self.values.retain(|name, _| !twice.contains(name));
        self.nested.retain(|name| !twice.contains(name));
        self
    }

    /// Whether a field was given at all, even empty.
    pub fn given(&self, name: &str) -> bool {
        self.values.contains_key(&name.to_ascii_lowercase())
    }

    /// A field's value, if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .get(&name.to_ascii_lowercase())
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    /// `INS-20` unless every one of `names` is present.
    pub fn require<'a>(&self, names: impl IntoIterator<Item = &'a str>) -> Result<(), Code> {
        if names.into_iter().all(|n| self.get(n).is_some()) {
            Ok(())
        } else {
            Err(wire::INS_20)
        }
    }

    /// A present field that must match `rule`, else `code`.
    pub fn check(&self, name: &str, rule: fn(&str) -> bool, code: Code) -> Result<String, Code> {
        let v = self.get(name).ok_or(wire::INS_20)?;
        if rule(v) && !self.is_nested(name) {
            Ok(v.to_owned())
        } else {
            Err(code)
        }
    }

    fn is_nested(&self, name: &str) -> bool {
        !self.nested.is_empty() && self.nested.iter().any(|n| n.eq_ignore_ascii_case(name))
    }

    /// An optional field that must match `rule` when present.
    pub fn check_optional(
        &self,
        name: &str,
        rule: fn(&str) -> bool,
        code: Code,
    ) -> Result<Option<String>, Code> {
        match self.get(name) {
            Some(v) if rule(v) && !self.is_nested(name) => Ok(Some(v.to_owned())),
            Some(_) => Err(code),
            None => Ok(None),
        }
    }
}

fn all_of(s: &str, min: usize, max: usize, ok: fn(char) -> bool) -> bool {
    let n = s.chars().count();
    (min..=max).contains(&n) && s.chars().all(ok)
}

/// `^[0-9a-zA-Z \w+]` (letters, digits, underscore, space and a literal `+`).
fn text_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == ' ' || c == '+'
}

/// `^[0-9]{12,14}$`.
pub fn msisdn(s: &str) -> bool {
    all_of(s, 12, 14, |c| c.is_ascii_digit())
}

/// v1x: `^2588[45][0-9]{7}$`, a Vodacom Mozambique number with its country code.
pub fn msisdn_mz(s: &str) -> bool {
    s.len() == 12 && (s.starts_with("25884") || s.starts_with("25885")) && msisdn(s)
}

/// v1x: an initiator's name, 1–64 printable ASCII characters.
pub fn initiator(s: &str) -> bool {
    all_of(s, 1, 64, |c| c.is_ascii_graphic())
}

/// v1x: an initiator's security credential, 1–256 printable ASCII characters (the
/// portal's samples are plain passwords; encrypted ones are base64).
pub fn security_credential(s: &str) -> bool {
    all_of(s, 1, 256, |c| c.is_ascii_graphic())
}

/// `^([0-9A-Za-z]{4,12})$`.
pub fn short_code(s: &str) -> bool {
    all_of(s, 4, 12, |c| c.is_ascii_alphanumeric())
}

/// `^[0-9a-zA-Z \w+]{1,20}$`.
pub fn transaction_reference(s: &str) -> bool {
    all_of(s, 1, 20, text_char)
}

/// `^[0-9a-zA-Z \w+]{1,40}$`.
pub fn conversation_id(s: &str) -> bool {
    all_of(s, 1, 40, text_char)
}

/// `^[0-9a-zA-Z \w+]{1,256}$`.
pub fn description(s: &str) -> bool {
    all_of(s, 1, 256, text_char)
}

/// `^[a-zA-Z]{1,3}$`.
pub fn currency(s: &str) -> bool {
    all_of(s, 1, 3, |c| c.is_ascii_alphabetic())
}

/// `^[0-9a-zA-Z]{1,20}$`.
pub fn transaction_id(s: &str) -> bool {
    all_of(s, 1, 20, |c| c.is_ascii_alphanumeric())
}

/// `^(?:[A-Za-z0-9]{10,20}|[A-Za-z0-9]{1,9}|[A-Za-z0-9]{21,32})$`: 1–32 alphanumerics.
pub fn query_reference(s: &str) -> bool {
    all_of(s, 1, 32, |c| c.is_ascii_alphanumeric())
}

/// `^[0-9a-zA-Z]{1,32}$`.
pub fn third_party_reference(s: &str) -> bool {
    all_of(s, 1, 32, |c| c.is_ascii_alphanumeric())
}

/// `^[0-9a-zA-Z \w=]{1,26}$`.
pub fn msisdn_token(s: &str) -> bool {
    all_of(s, 1, 26, |c| text_char(c) && c != '+' || c == '=')
}

/// `^[0-9]{1,12}$`.
pub fn mandate_id(s: &str) -> bool {
    all_of(s, 1, 12, |c| c.is_ascii_digit())
}

/// `^(Name)$`.
pub fn kyc_query_type(s: &str) -> bool {
    s == "Name"
}

/// `^[0-1]{1}$`.
pub fn agreed_tc(s: &str) -> bool {
    s == "0" || s == "1"
}

/// `^[0-9]{8}$` and a real calendar date (YYYYMMDD).
pub fn date(s: &str) -> bool {
    parse_date(s).is_some()
}

/// A YYYYMMDD date.
pub fn parse_date(s: &str) -> Option<time::Date> {
    if !all_of(s, 8, 8, |c| c.is_ascii_digit()) {
        return None;
    }
    let year: i32 = s[..4].parse().ok()?;
    let month: u8 = s[4..6].parse().ok()?;
    let day: u8 = s[6..].parse().ok()?;
    time::Date::from_calendar_date(year, time::Month::try_from(month).ok()?, day).ok()
}

/// `^[0-9]{2}$` and one of the frequency codes `01`…`08`.
pub fn frequency(s: &str) -> bool {
    matches!(s, "01" | "02" | "03" | "04" | "05" | "06" | "07" | "08")
}

/// `^[0-9]{2}$` and a day of the month.
pub fn day_of_month(s: &str) -> bool {
    all_of(s, 2, 2, |c| c.is_ascii_digit()) && matches!(s.parse::<u8>(), Ok(1..=31))
}

/// `True`/`False` in any case.
pub fn boolean(s: &str) -> bool {
    s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("false")
}

/// `^\d*\.?\d+$`.
pub(crate) fn decimal(s: &str) -> bool {
    let digits = s.strip_prefix('.').unwrap_or(s);
    !s.is_empty()
        && !s.ends_with('.')
        && s.chars().filter(|c| *c == '.').count() <= 1
        && digits.chars().all(|c| c.is_ascii_digit() || c == '.')
}

/// An amount in the market's currency: `^\d*\.?\d+$`, above zero, with no more decimals
/// than the currency has; else `code` (`INS-15`, or `INS-54` for a balance amount).
pub fn amount(s: &str, currency: Currency, code: Code) -> Result<Money, Code> {
    if !decimal(s) {
        return Err(code);
    }
    let text = if s.starts_with('.') {
        format!("0{s}")
    } else {
        s.to_owned()
    };
    Money::parse_positive(&text, currency).map_err(|_| code)
}

/// `input_Country` must be the market's (`INS-998`).
pub fn country_of(fields: &Fields, market: Market) -> Result<(), Code> {
    match fields.get("input_Country") {
        Some(c) if c.eq_ignore_ascii_case(market.country()) => Ok(()),
        Some(_) => Err(wire::INS_998),
        None => Err(wire::INS_20),
    }
}

/// `input_Currency` must be well formed and the market's (`INS-26`).
pub fn currency_of(fields: &Fields, market: Market) -> Result<Currency, Code> {
    let c = fields.check("input_Currency", currency, wire::INS_26)?;
    if !c.eq_ignore_ascii_case(market.currency()) {
        return Err(wire::INS_26);
    }
    Currency::parse(market.currency()).map_err(|_| wire::INTERNAL)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_query_string_wins_and_names_ignore_case() {
        let q = vec![("input_KYCQueryType".to_owned(), "Name".to_owned())];
        let f = Fields::read(&q, br#"{"input_KycQueryType":"Other","input_Amount":10}"#).unwrap();
        assert_eq!(f.get("input_KycQueryType"), Some("Name"));
        assert_eq!(f.get("input_amount"), Some("10"));
    }

    #[test]
    fn a_body_that_is_not_an_object_is_refused_but_null_is_not() {
        assert!(Fields::read(&[], b"[1]").is_err());
        assert!(Fields::read(&[], b"null").is_ok());
        assert!(Fields::read(&[], b"").is_ok());
        assert!(Fields::read(&[], b"{not json").is_err());
    }

    #[test]
    fn numbers_keep_the_digits_written_so_exponents_and_long_decimals_fail_the_amount() {
        let tzs = Currency::parse("TZS").unwrap();
        for (body, amount) in [
            (br#"{"input_Amount":1e3}"#.as_slice(), "1e3"),
            (
                br#"{"input_Amount":10.009999999999999999}"#,
                "10.009999999999999999",
            ),
            (br#"{"input_Amount":0.1e1}"#, "0.1e1"),
            (br#"{"input_Amount":-5}"#, "-5"),
        ] {
            let f = Fields::read(&[], body).unwrap();
            assert_eq!(f.get("input_Amount"), Some(amount));
            assert_eq!(self::amount(amount, tzs, wire::INS_15), Err(wire::INS_15));
        }
        let f = Fields::read(
            &[],
            br#"{"input_Amount":10.50,"input_Flag":true,"x":{"a":1}}"#,
        )
        .unwrap();
        assert_eq!(f.get("input_Amount"), Some("10.50"));
        assert_eq!(f.get("input_Flag"), Some("True"));
        assert_eq!(f.get("x"), Some(r#"{"a":1}"#));
        assert_eq!(
            self::amount("10.50", tzs, wire::INS_15).unwrap().minor(),
            1050
        );
    }

    #[test]
    fn an_array_or_object_fails_every_rule_even_one_that_takes_any_printable_text() {
        let f = Fields::read(
            &[],
            br#"{"input_SecurityCredential":[],"input_InitiatorIdentifier":{"a":["x"]},"input_X":"ok"}"#,
        )
        .unwrap();
        let code = wire::V1X_INVALID_CREDENTIAL;
        assert!(security_credential("[]"), "the text alone would pass");
        assert_eq!(
            f.check("input_SecurityCredential", security_credential, code),
            Err(code)
        );
        assert_eq!(
            f.check_optional("input_initiatoridentifier", initiator, code),
            Err(code)
        );
        assert_eq!(f.check("input_X", initiator, code), Ok("ok".to_owned()));
        // The query's value wins over the body's, and it is text.
        let q = vec![("input_SecurityCredential".to_owned(), "pw".to_owned())];
        let f = Fields::read(&q, br#"{"input_SecurityCredential":["x"]}"#).unwrap();
        assert_eq!(
            f.check("input_SecurityCredential", security_credential, code),
            Ok("pw".to_owned())
        );
    }

    #[test]
    fn a_body_with_an_unreadable_string_echoes_none_of_its_fields() {
        for body in [
            br#"{"input_ThirdPartyConversationID":"abc","input_Amount":"\ud800"}"#.as_slice(),
            br#"{"input_Amount":"\ud800","input_ThirdPartyConversationID":"abc"}"#,
        ] {
            let (code, fields) = Fields::read(&[], body).unwrap_err();
            assert_eq!(code, wire::INS_21);
            assert!(!fields.given("input_ThirdPartyConversationID"), "{body:?}");
        }
        // The query's fields are read all the same.
        let q = vec![("input_ThirdPartyConversationID".to_owned(), "q".to_owned())];
        let (_, fields) = Fields::read(&q, br#"{"input_Amount":"\ud800"}"#).unwrap_err();
        assert_eq!(fields.get("input_ThirdPartyConversationID"), Some("q"));
    }

    #[test]
    fn a_field_given_twice_is_refused_whatever_its_case() {
        for body in [
            br#"{"input_Amount":"1","input_Amount":"1000"}"#.as_slice(),
            br#"{"INPUT_AMOUNT":"1000","input_Amount":"1"}"#,
            br#"{"input_Amount":"1","input_Amount":null}"#,
        ] {
            assert_eq!(Fields::read(&[], body).unwrap_err().0, wire::INS_21);
        }
        let twice = vec![
            ("input_Amount".to_owned(), "1".to_owned()),
            ("input_amount".to_owned(), "1000".to_owned()),
        ];
        assert_eq!(Fields::read(&twice, b"").unwrap_err().0, wire::INS_21);
        // Once in the query and once in the body is how some SDKs send a GET: the query wins.
        let once = vec![("input_Amount".to_owned(), "1".to_owned())];
        let f = Fields::read(&once, br#"{"input_Amount":"1000"}"#).unwrap();
        assert_eq!(f.get("input_Amount"), Some("1"));
    }

    #[test]
    fn the_portal_character_class_refuses_punctuation() {
        assert!(description("Handbag Black shoes"));
        assert!(!description("Handbag, Black shoes"));
        assert!(!transaction_reference("two-stage"));
        assert!(transaction_reference("T1234C"));
        assert!(!transaction_reference("123456789012345678901"));
    }

    #[test]
    fn amounts_follow_the_regex_and_the_currency() {
        let tzs = Currency::parse("TZS").unwrap();
        assert_eq!(amount("10", tzs, wire::INS_15).unwrap().minor(), 1000);
        assert_eq!(amount("10.50", tzs, wire::INS_15).unwrap().minor(), 1050);
        assert_eq!(amount(".5", tzs, wire::INS_15).unwrap().minor(), 50);
        for bad in ["0", "-1", "1e3", "1.", "1.2.3", "1.234", "ten", ""] {
            assert!(amount(bad, tzs, wire::INS_15).is_err(), "{bad}");
        }
    }

    #[test]
    fn dates_must_exist() {
        assert!(date("20240229"));
        assert!(!date("20230229"));
        assert!(!date("2024-02-01"));
    }

    #[test]
    fn msisdns_are_twelve_to_fourteen_digits() {
        assert!(msisdn("000000000001"));
        assert!(!msisdn("00000000001"));
        assert!(!msisdn("+25500000000001"));
    }
}

/// Property tests: no input makes the parsers and rules panic, and every refusal is a
/// documented code.
#[cfg(test)]
mod properties {
    use proptest::prelude::*;

    use super::*;

    proptest! {
        #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

        #[test]
        fn any_query_and_body_read_or_refuse_with_ins_21(
            query in prop::collection::vec((".{0,24}", ".{0,24}"), 0..4),
            body in prop::collection::vec(any::<u8>(), 0..256),
        ) {
            if let Err((code, _)) = Fields::read(&query, &body) {
                prop_assert_eq!(code.code, "INS-21");
            }
        }

        #[test]
        fn json_bodies_of_any_shape_read_or_refuse_with_ins_21(
            // The second form makes names that differ only in case common.
            keys in prop::collection::vec(prop_oneof!["input_[A-Za-z]{0,12}", "input_[aA][bB]?"], 0..6),
            values in prop::collection::vec(prop_oneof![
                ".{0,40}".prop_map(serde_json::Value::from),
                any::<i64>().prop_map(serde_json::Value::from),
                any::<f64>().prop_map(serde_json::Value::from),
                any::<bool>().prop_map(serde_json::Value::from),
                Just(serde_json::Value::Null),
                Just(serde_json::json!([1, {"a": "b"}])),
            ], 0..6),
        ) {
            let map: serde_json::Map<String, serde_json::Value> =
                keys.into_iter().zip(values).collect();
            // Names differing only in case are one field given twice: INS-21.
            let mut folded: Vec<String> = map.keys().map(|k| k.to_ascii_lowercase()).collect();
            folded.sort();
            let twice = folded.windows(2).any(|pair| pair[0] == pair[1]);
            let body = serde_json::Value::Object(map).to_string();
            match Fields::read(&[], body.as_bytes()) {
                Ok(_) => prop_assert!(!twice, "{body} was read though a field is given twice"),
                Err((code, _)) => {
                    prop_assert!(twice, "{body} was refused: {}", code.code);
                    prop_assert_eq!(code.code, "INS-21");
                }
            }
        }

        #[test]
        fn rules_take_any_text(s in "\\PC{0,64}|[0-9.]{0,24}") {
            let tzs = Currency::parse("TZS").unwrap();
            for rule in [msisdn, msisdn_mz, short_code, transaction_reference, conversation_id,
                description, currency, transaction_id, query_reference, third_party_reference,
                msisdn_token, mandate_id, kyc_query_type, agreed_tc, date, frequency,
                day_of_month, boolean, initiator, security_credential] {
                let _ = rule(&s);
            }
            if let Ok(m) = amount(&s, tzs, wire::INS_15) {
                prop_assert!(m.minor() > 0);
            }
        }
    }
}
