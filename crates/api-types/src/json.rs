//! Reading a request body's JSON members as the client wrote them.
//!
//! `serde_json::Value` keeps the last of two members with one name and turns every number
//! into a `u64`, `i64` or `f64`: `{"amount":"5","amount":"7000"}` reads as 7000, and
//! `1.999999999999999999` as 2. A payment API must not guess either way, so the dialects
//! read members in order, each value as its JSON text ([`Members`]), and refuse what is
//! ambiguous.

use serde::de::{
    Deserialize, DeserializeSeed, Deserializer, Error as _, MapAccess, SeqAccess, Visitor,
};
use serde_json::Value;
use serde_json::value::RawValue;

/// Most members of one object, or items of one array, that [`Members`] and [`Items`]
/// read: a payment API's bodies hold a few dozen values, and each one read costs memory
/// (a 2 MiB body of small objects took about 50 times its size as a `serde_json::Value`).
pub const MAX_MEMBERS: usize = 1_000;

/// A JSON object's members in the order written, each value as its JSON text, borrowed
/// from the text read (`serde_json::from_str` or `from_slice`); `null` reads as no members.
/// Anything else fails to deserialize. Borrowed, so that reading a nested value again
/// costs no copy of its text: copied, a 2 MiB body nested 16 deep held 16 copies of itself
/// while it was read.
#[derive(Debug)]
pub struct Members<'a>(pub Vec<(String, &'a RawValue)>);

impl<'de: 'a, 'a> Deserialize<'de> for Members<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Members<'a>, D::Error> {
        struct Object<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Object<'a> {
            type Value = Members<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON object or null")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Members<'a>, A::Error> {
                let mut members = Vec::new();
                while let Some(member) = map.next_entry::<String, &'de RawValue>()? {
                    if members.len() == MAX_MEMBERS {
                        return Err(A::Error::custom(TOO_MANY));
                    }
                    members.push(member);
                }
                Ok(Members(members))
            }
            fn visit_unit<E>(self) -> Result<Members<'a>, E> {
                Ok(Members(Vec::new()))
            }
        }
        d.deserialize_any(Object(std::marker::PhantomData))
    }
}

/// A JSON array's items, each as its JSON text borrowed like [`Members`]' values; at most
/// [`MAX_MEMBERS`] of them.
#[derive(Debug)]
pub struct Items<'a>(pub Vec<&'a RawValue>);

impl<'de: 'a, 'a> Deserialize<'de> for Items<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Items<'a>, D::Error> {
        struct Array<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for Array<'a> {
            type Value = Items<'a>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a JSON array")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items<'a>, A::Error> {
                let mut items = Vec::new();
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    if items.len() == MAX_MEMBERS {
                        return Err(A::Error::custom(TOO_MANY));
                    }
                    items.push(item);
                }
                Ok(Items(items))
            }
        }
        d.deserialize_seq(Array(std::marker::PhantomData))
    }
}

/// A body's JSON read in one pass when nothing in it needs a second look: `Some` only for
/// valid JSON with no member named twice in one object, no number but plain integers
/// (`100`, `-5`: what a `u64` or `i64` holds as written), no value deeper than `max_depth`
/// and at most `max_values` values in all (each object, array, string, number, …). Such a
/// body reads the same member by member ([`Members`], [`Items`], [`number_is_exact`]), so a
/// dialect reads it here and takes the slower exact reading only for the rest: a decimal,
/// an exponent, a name given twice, a body too deep or too large, invalid JSON. The exact
/// reading of a typical request-to-pay took three parses of every byte (the whole body,
/// each object's members, each value): about 15,000 instructions a request of the 300,000
/// a lifecycle took in all (`scripts/instructions.sh`).
pub fn plain_value(body: &[u8], max_depth: usize, max_values: usize) -> Option<Value> {
    let mut budget = max_values;
    let mut de = serde_json::Deserializer::from_slice(body);
    let value = Plain {
        depth: 0,
        max_depth,
        budget: &mut budget,
    }
    .deserialize(&mut de)
    .ok()?;
    de.end().ok()?;
    Some(value)
}

/// One value of [`plain_value`], `depth` deep, taking itself from `budget`.
struct Plain<'b> {
    depth: usize,
    max_depth: usize,
    budget: &'b mut usize,
}

impl Plain<'_> {
    fn below(&mut self) -> Plain<'_> {
        Plain {
            depth: self.depth + 1,
            max_depth: self.max_depth,
            budget: self.budget,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Plain<'_> {
    type Value = Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        if self.depth > self.max_depth {
            return Err(D::Error::custom("too deep"));
        }
        *self.budget = self
            .budget
            .checked_sub(1)
            .ok_or_else(|| D::Error::custom("too many values"))?;
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Plain<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("JSON with no decimal and no member named twice")
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    // What serde_json reads as an `f64` (a decimal, an exponent, an integer past `u64`,
    // `-0`) falls to the default, an error: it is for the exact reading.
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_owned()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_seq<A: SeqAccess<'de>>(mut self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element_seed(self.below())? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(mut self, mut map: A) -> Result<Value, A::Error> {
        let mut members = serde_json::Map::new();
        while let Some(name) = map.next_key::<String>()? {
            if members.contains_key(&name) {
                return Err(A::Error::custom("a member named twice"));
            }
            let value = map.next_value_seed(self.below())?;
            members.insert(name, value);
        }
        Ok(Value::Object(members))
    }
}

/// The error [`Members`] and [`Items`] give past [`MAX_MEMBERS`].
pub const TOO_MANY: &str = "more than 1000 members in one object or array";

/// Whether a JSON number's text is one `serde_json::Value` holds exactly: no exponent, and
/// no digit lost on the way to a `u64`, `i64` or `f64` (`10.50` is exact, `1e3` and
/// `1.999999999999999999` are not).
pub fn number_is_exact(text: &str, read: &serde_json::Number) -> bool {
    if text.contains(['e', 'E']) {
        return false;
    }
    if read.is_u64() || read.is_i64() {
        return true;
    }
    // A decimal: compare the digits written with those of the f64 read, both without
    // trailing zeros (10.50 and 10.5 are one number).
    let trim = |s: &str| -> String {
        let s = s.strip_prefix('-').unwrap_or(s);
        match s.split_once('.') {
            Some((int, frac)) => {
                let frac = frac.trim_end_matches('0');
                let int = int.trim_start_matches('0');
                if frac.is_empty() {
                    int.to_owned()
                } else {
                    format!("{int}.{frac}")
                }
            }
            None => s.trim_start_matches('0').to_owned(),
        }
    };
    let Some(f) = read.as_f64() else {
        return false;
    };
    text.starts_with('-') == f.is_sign_negative() && trim(text) == trim(&format!("{f}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exact(text: &str) -> bool {
        let n: serde_json::Number = serde_json::from_str(text).unwrap();
        number_is_exact(text, &n)
    }

    #[test]
    fn numbers_are_exact_only_as_written() {
        for ok in [
            "0",
            "100",
            "-5",
            "10.5",
            "10.50",
            "0.01",
            "1.0",
            "18446744073709551615",
        ] {
            assert!(exact(ok), "{ok}");
        }
        for lossy in [
            "1e3",
            "1E+2",
            "0.1e1",
            "1.999999999999999999",
            "10.009999999999999999",
            "12345678901234567.89",
            "18446744073709551616",
        ] {
            assert!(!exact(lossy), "{lossy}");
        }
    }

    #[test]
    fn members_keep_their_order_and_their_copies() {
        let Members(m) = serde_json::from_str(r#"{"b":1,"a":"x","b":2.50}"#).unwrap();
        let read: Vec<(&str, &str)> = m.iter().map(|(k, v)| (k.as_str(), v.get())).collect();
        assert_eq!(read, [("b", "1"), ("a", "\"x\""), ("b", "2.50")]);
        assert!(
            serde_json::from_str::<Members>("null")
                .unwrap()
                .0
                .is_empty()
        );
        assert!(serde_json::from_str::<Members>("[1]").is_err());
    }
}
