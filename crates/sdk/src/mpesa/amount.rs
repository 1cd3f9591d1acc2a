//! Amounts as integers of minor units, never floats.
//!
//! Every market's currency (GHS, TZS, LSL, USD, MZN) has two decimals, so an [`Amount`] is
//! a count of hundredths. It goes on the wire as the decimal string the portal shows
//! (`"10.00"`), which the gateway's `^\d*\.?\d+$` accepts.

use std::fmt;
use std::str::FromStr;

use crate::error::{Error, Result};

/// Decimals of every M-Pesa market's currency.
const DECIMALS: u32 = 2;
const SCALE: u64 = 10u64.pow(DECIMALS);

/// An amount in the market's currency, in minor units (hundredths).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Amount(u64);

impl Amount {
    /// `minor` hundredths (`Amount::from_minor(1050)` is 10.50).
    pub const fn from_minor(minor: u64) -> Amount {
        Amount(minor)
    }

    /// Whole units (`Amount::from_major(10)` is 10.00); saturates at `u64::MAX` minor units.
    pub const fn from_major(major: u64) -> Amount {
        Amount(major.saturating_mul(SCALE))
    }

    /// Reads a decimal amount the way the gateway does (`10`, `10.5`, `10.50`, `.5`): above
    /// zero, digits with at most one dot, at most two decimals. Signs, exponents, spaces
    /// and thousands separators are refused.
    pub fn parse(text: &str) -> Result<Amount> {
        let bad = |why: &str| {
            Error::Config(format!(
                "{text:?} is not an M-Pesa amount ({why}); write it like 10 or 10.50"
            ))
        };
        let (whole, fraction) = match text.split_once('.') {
            Some((w, f)) => (w, Some(f)),
            None => (text, None),
        };
        let digits = |s: &str| s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || !fraction.is_none_or(digits) {
            return Err(bad("only digits and one decimal point"));
        }
        if whole.is_empty() && fraction.is_none_or(str::is_empty) {
            return Err(bad("no digits"));
        }
        if fraction == Some("") {
            return Err(bad("no digits after the decimal point"));
        }
        let fraction = fraction.unwrap_or("");
        if fraction.len() > DECIMALS as usize {
            return Err(bad("at most two decimals"));
        }
        let mut minor: u64 = 0;
        for b in whole.bytes().chain(fraction.bytes()) {
            minor = minor
                .checked_mul(10)
                .and_then(|m| m.checked_add(u64::from(b - b'0')))
                .ok_or_else(|| bad("too large"))?;
        }
        for _ in fraction.len()..DECIMALS as usize {
            minor = minor.checked_mul(10).ok_or_else(|| bad("too large"))?;
        }
        if minor == 0 {
            return Err(bad("it must be above zero"));
        }
        Ok(Amount(minor))
    }

    /// The amount in minor units.
    pub const fn minor(self) -> u64 {
        self.0
    }

    /// Whether it is zero (the gateway refuses zero amounts with `INS-15`).
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

impl fmt::Display for Amount {
    /// Two decimals: `10.00`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{:02}", self.0 / SCALE, self.0 % SCALE)
    }
}

impl FromStr for Amount {
    type Err = Error;

    fn from_str(s: &str) -> Result<Amount> {
        Amount::parse(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_text_becomes_minor_units() {
        assert_eq!(Amount::parse("10").unwrap().minor(), 1000);
        assert_eq!(Amount::parse("10.5").unwrap().minor(), 1050);
        assert_eq!(Amount::parse("10.50").unwrap().minor(), 1050);
        assert_eq!(Amount::parse(".5").unwrap().minor(), 50);
        assert_eq!(Amount::parse("0.01").unwrap().minor(), 1);
    }

    #[test]
    fn what_the_gateway_refuses_is_refused_before_sending() {
        for bad in [
            "",
            "0",
            "0.00",
            "-1",
            "+1",
            "1e3",
            "1.",
            ".",
            "1.2.3",
            "1.234",
            "ten",
            " 1",
            "1,000",
            "99999999999999999999",
        ] {
            assert!(Amount::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn amounts_print_with_two_decimals() {
        assert_eq!(Amount::from_minor(1050).to_string(), "10.50");
        assert_eq!(Amount::from_major(7).to_string(), "7.00");
        assert_eq!(Amount::from_minor(5).to_string(), "0.05");
        assert_eq!("12.3".parse::<Amount>().unwrap().to_string(), "12.30");
    }
}
