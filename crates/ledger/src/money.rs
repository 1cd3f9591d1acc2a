//! Currencies and decimal amounts at the edge, integer minor units inside.

use std::fmt;

/// An ISO 4217 alphabetic code: three upper-case ASCII letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Currency([u8; 3]);

/// The text was not a three-letter upper-case currency code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("currency must be three upper-case letters (ISO 4217), got {0:?}")]
pub struct CurrencyError(pub String);

impl Currency {
    /// Parses a code such as `EUR`.
    pub fn parse(s: &str) -> Result<Currency, CurrencyError> {
        let b = s.as_bytes();
        if b.len() == 3 && b.iter().all(u8::is_ascii_uppercase) {
            Ok(Currency([b[0], b[1], b[2]]))
        } else {
            Err(CurrencyError(s.to_owned()))
        }
    }

    /// The code as text.
    pub fn as_str(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }

    /// Digits after the decimal point in the currency's minor unit (ISO 4217).
    pub fn exponent(&self) -> u32 {
        match self.as_str() {
            "BIF" | "CLP" | "DJF" | "GNF" | "ISK" | "JPY" | "KMF" | "KRW" | "PYG" | "RWF"
            | "UGX" | "UYI" | "VND" | "VUV" | "XAF" | "XOF" | "XPF" => 0,
            "BHD" | "IQD" | "JOD" | "KWD" | "LYD" | "OMR" | "TND" => 3,
            _ => 2,
        }
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Currency({})", self.as_str())
    }
}

/// Why a decimal amount string was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("amount must be a decimal number such as \"100\" or \"12.50\", got {0:?}")]
    NotDecimal(String),
    #[error("amount must be greater than zero, got {0:?}")]
    NotPositive(String),
    #[error("amount {amount:?} has more decimals than {currency} allows ({exponent})")]
    TooPrecise {
        amount: String,
        currency: Currency,
        exponent: u32,
    },
    #[error(
        "amount {0:?} is too large: at most 10^12 minor units (10000000000.00 EUR, 1000000000000 UGX)"
    )]
    TooLarge(String),
}

/// The largest amount taken, in minor units: 10^12 (ten billion euros, a trillion Ugandan
/// shillings), far above any mobile-money payment, and small enough that the sums reports
/// and ledgers make of millions of them stay within 64 bits.
pub const MAX_MINOR: i64 = 1_000_000_000_000;

/// An amount of money: integer minor units of one currency. Never a float.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Money {
    minor: i64,
    currency: Currency,
}

impl Money {
    /// From minor units (cents for EUR, shillings for UGX).
    pub fn from_minor(minor: i64, currency: Currency) -> Money {
        Money { minor, currency }
    }

    /// Parses a positive decimal string in major units, as the providers send amounts
    /// (`"100"`, `"5.0"`, `"12.50"`). Trailing zeros beyond the currency's exponent are
    /// accepted (`"5.000"` EUR); significant digits beyond it are not.
    pub fn parse_positive(text: &str, currency: Currency) -> Result<Money, AmountError> {
        let not_decimal = || AmountError::NotDecimal(text.to_owned());
        // A negative number is a number, only not one that can be paid: say so.
        if let Some(rest) = text.strip_prefix('-')
            && !rest.starts_with('-')
            && !matches!(
                Money::parse_positive(rest, currency),
                Err(AmountError::NotDecimal(_))
            )
        {
            return Err(AmountError::NotPositive(text.to_owned()));
        }
        let (int, frac) = match text.split_once('.') {
            Some((i, f)) => (i, f),
            None => (text, ""),
        };
        if int.is_empty()
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (text.contains('.') && frac.is_empty())
        {
            return Err(not_decimal());
        }
        let exponent = currency.exponent();
        let significant = frac.trim_end_matches('0');
        if significant.len() > exponent as usize {
            return Err(AmountError::TooPrecise {
                amount: text.to_owned(),
                currency,
                exponent,
            });
        }
        let too_large = || AmountError::TooLarge(text.to_owned());
        let int = int.trim_start_matches('0');
        if int.len() > 18 {
            return Err(too_large());
        }
        let major: i64 = if int.is_empty() {
            0
        } else {
            int.parse().map_err(|_| too_large())?
        };
        let mut minor = major
            .checked_mul(10i64.pow(exponent))
            .ok_or_else(too_large)?;
        if !significant.is_empty() {
            let scale = 10i64.pow(exponent - significant.len() as u32);
            let frac: i64 = significant.parse().map_err(|_| not_decimal())?;
            minor = minor.checked_add(frac * scale).ok_or_else(too_large)?;
        }
        if minor <= 0 {
            return Err(AmountError::NotPositive(text.to_owned()));
        }
        if minor > MAX_MINOR {
            return Err(too_large());
        }
        Ok(Money { minor, currency })
    }

    /// Minor units.
    pub fn minor(&self) -> i64 {
        self.minor
    }

    /// The currency.
    pub fn currency(&self) -> Currency {
        self.currency
    }

    /// Major units as the shortest exact decimal string: `"5"`, `"5.5"`, `"-0.25"`.
    pub fn to_decimal_string(&self) -> String {
        let exponent = self.currency.exponent();
        let sign = if self.minor < 0 { "-" } else { "" };
        let abs = self.minor.unsigned_abs();
        if exponent == 0 {
            return format!("{sign}{abs}");
        }
        let scale = 10u64.pow(exponent);
        let (major, frac) = (abs / scale, abs % scale);
        if frac == 0 {
            return format!("{sign}{major}");
        }
        let frac = format!("{frac:0width$}", width = exponent as usize);
        format!("{sign}{major}.{}", frac.trim_end_matches('0'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(s: &str) -> Currency {
        Currency::parse(s).unwrap()
    }

    #[test]
    fn currency_codes_must_be_three_upper_case_letters() {
        assert!(Currency::parse("EUR").is_ok());
        for bad in ["eur", "EU", "EURO", "E1R", ""] {
            assert!(Currency::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn decimal_amounts_become_minor_units() {
        assert_eq!(
            Money::parse_positive("100", c("EUR")).unwrap().minor(),
            10_000
        );
        assert_eq!(Money::parse_positive("5.0", c("EUR")).unwrap().minor(), 500);
        assert_eq!(
            Money::parse_positive("12.5", c("EUR")).unwrap().minor(),
            1_250
        );
        assert_eq!(Money::parse_positive("0.01", c("EUR")).unwrap().minor(), 1);
        assert_eq!(
            Money::parse_positive("5.000", c("EUR")).unwrap().minor(),
            500
        );
        assert_eq!(
            Money::parse_positive("1500", c("UGX")).unwrap().minor(),
            1_500
        );
    }

    #[test]
    fn malformed_or_non_positive_amounts_are_refused() {
        for bad in [
            "", "--1", "-", "-x", "+1", "1e3", "1.", ".5", "abc", "1,5", " 1", "1.2.3",
        ] {
            assert!(
                matches!(
                    Money::parse_positive(bad, c("EUR")),
                    Err(AmountError::NotDecimal(_))
                ),
                "{bad:?}"
            );
        }
        // A negative number (or minus zero) is told it must be positive.
        for bad in ["0", "-1", "-0", "-12.50", "-0.001"] {
            assert!(
                matches!(
                    Money::parse_positive(bad, c("EUR")),
                    Err(AmountError::NotPositive(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            Money::parse_positive("0.001", c("EUR")),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse_positive("1.5", c("UGX")),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            Money::parse_positive("99999999999999999999", c("EUR")),
            Err(AmountError::TooLarge(_))
        ));
        // Within 64 bits, but past the bound: a sum of such amounts would not be.
        assert!(matches!(
            Money::parse_positive("92233720368547758.07", c("EUR")),
            Err(AmountError::TooLarge(_))
        ));
        assert_eq!(
            Money::parse_positive("10000000000", c("EUR"))
                .unwrap()
                .minor(),
            MAX_MINOR
        );
        assert_eq!(
            Money::parse_positive("10000000000.01", c("EUR"))
                .unwrap_err()
                .to_string(),
            "amount \"10000000000.01\" is too large: at most 10^12 minor units (10000000000.00 EUR, 1000000000000 UGX)"
        );
        assert_eq!(
            Money::parse_positive("1000000000000", c("UGX"))
                .unwrap()
                .minor(),
            MAX_MINOR
        );
    }

    #[test]
    fn amounts_render_as_the_shortest_exact_decimal() {
        let eur = c("EUR");
        assert_eq!(Money::from_minor(10_000, eur).to_decimal_string(), "100");
        assert_eq!(Money::from_minor(1_250, eur).to_decimal_string(), "12.5");
        assert_eq!(Money::from_minor(1_205, eur).to_decimal_string(), "12.05");
        assert_eq!(Money::from_minor(0, eur).to_decimal_string(), "0");
        assert_eq!(Money::from_minor(-25, eur).to_decimal_string(), "-0.25");
        assert_eq!(
            Money::from_minor(1_500, c("UGX")).to_decimal_string(),
            "1500"
        );
    }
}
