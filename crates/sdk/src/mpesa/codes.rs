//! The `INS-*` result codes of the v2 gateway, with the HTTP status and text the portal's
//! per-API tables document for each (reference §6.1).
//!
//! A few codes are answered with another status by one API (`INS-1` and `INS-52` are 500
//! on Query Direct Debit, `INS-54` is 400 or 401) or another text (`INS-6` is "Mandate does
//! not exist" on Cancel Direct Debit, and Mkoba's session refusals are `INS-6` too):
//! [`InsCode::status`] and [`InsCode::text`] give the usual ones, and an error keeps what
//! was actually sent.

use std::fmt;

macro_rules! ins_codes {
    ($($variant:ident => $code:literal, $status:literal, $text:literal;)*) => {
        /// An `INS-*` code of the M-Pesa OpenAPI v2, or one this version does not know.
        #[derive(Debug, Clone, PartialEq, Eq, Hash)]
        #[non_exhaustive]
        pub enum InsCode {
            $(
                #[doc = concat!("`", $code, "` (HTTP ", stringify!($status), "): ", $text, ".")]
                $variant,
            )*
            /// A code this version does not know, as sent (Mozambique's v1x results send `"0"`).
            Other(String),
        }

        impl InsCode {
            /// Every documented code.
            pub const DOCUMENTED: &'static [InsCode] = &[$(InsCode::$variant,)*];

            /// The code as sent (`INS-10`).
            pub fn as_str(&self) -> &str {
                match self {
                    $(InsCode::$variant => $code,)*
                    InsCode::Other(s) => s,
                }
            }

            /// Reads a code (surrounding spaces ignored); unknown ones are kept as
            /// [`InsCode::Other`].
            pub fn parse(code: &str) -> InsCode {
                match code.trim() {
                    $($code => InsCode::$variant,)*
                    other => InsCode::Other(other.to_owned()),
                }
            }

            /// The HTTP status the portal documents for the code (`INS-0`: 201, the status
            /// of the money-moving POSTs and PUTs; `getSession` and the GET queries answer
            /// 200). `None` for an unknown code.
            pub fn status(&self) -> Option<u16> {
                match self {
                    $(InsCode::$variant => Some($status),)*
                    InsCode::Other(_) => None,
                }
            }

            /// The portal's text for the code. `None` for an unknown code.
            pub fn text(&self) -> Option<&'static str> {
                match self {
                    $(InsCode::$variant => Some($text),)*
                    InsCode::Other(_) => None,
                }
            }
        }
    };
}

ins_codes! {
    Success => "INS-0", 201, "Request processed successfully";
    InternalError => "INS-1", 400, "Internal Error";
    TransactionFailed => "INS-6", 401, "Transaction Failed";
    RequestTimeout => "INS-9", 408, "Request timeout";
    DuplicateTransaction => "INS-10", 409, "Duplicate Transaction";
    InvalidShortcode => "INS-13", 400, "Invalid Shortcode Used";
    InvalidAmount => "INS-15", 400, "Invalid Amount Used";
    InvalidTransactionReference => "INS-17", 400, "Invalid Transaction Reference. Length Should Be Between 1 and 20.";
    InvalidTransactionId => "INS-18", 400, "Invalid TransactionID Used";
    InvalidThirdPartyReference => "INS-19", 400, "Invalid ThirdPartyReference Used";
    MissingParameters => "INS-20", 400, "Not All Parameters Provided. Please try again.";
    ParameterValidationFailed => "INS-21", 400, "Parameter validations failed. Please try again.";
    TransactionNotFound => "INS-23", 400, "Transaction not found. Contact M-Pesa Support";
    InvalidCurrency => "INS-26", 400, "Invalid Currency Used";
    InvalidThirdPartyConversationId => "INS-28", 400, "Invalid ThirdPartyConversationID Used";
    InvalidPurchasedItemsDescription => "INS-30", 400, "Invalid Purchased Items Description Used";
    InvalidPaymentItemsDescription => "INS-31", 400, "Invalid Payment Items Description Used";
    InvalidKycQueryType => "INS-32", 400, "Invalid KYC Query Type Used";
    NotYourTransaction => "INS-35", 400, "This transaction do not belong to you";
    InvalidAgreedTc => "INS-36", 400, "Invalid Agreed TC Used";
    InvalidFirstPaymentDate => "INS-39", 400, "Invalid First Payment Date Used";
    InvalidFrequency => "INS-40", 400, "Invalid Frequency Used";
    InvalidStartRangeDays => "INS-41", 400, "Invalid Start Range Days Used";
    InvalidEndRangeDays => "INS-42", 400, "Invalid End Range Days Used";
    InvalidExpiryDate => "INS-43", 400, "Invalid Expiry Date Used";
    MsisdnTokenMismatch => "INS-50", 400, "MSISDN Token and MSISDN provided does not Match";
    InvalidMandateId => "INS-51", 400, "Invalid MandateID Used";
    MandateReferenceMismatch => "INS-52", 400, "The MandateID used does not correspond to the ThirdPartyReference used.";
    InvalidBalanceAmount => "INS-54", 400, "Invalid BalanceAmount Used";
    BalanceAmountRequired => "INS-55", 401, "BalanceAmount is Mandatory when QueryBalanceAmount is True";
    InvalidMsisdnToken => "INS-56", 401, "Invalid MSISDNToken Used";
    MsisdnOrTokenRequired => "INS-57", 500, "Either MSISDN or MSISDNToken required";
    NoActiveMandate => "INS-58", 400, "No Active Mandate found";
    SessionCreationFailed => "INS-989", 400, "Session Creation Failed";
    CustomerValueLimitBreached => "INS-990", 400, "Customer Transaction Value Limit Breached";
    CustomerCountLimitBreached => "INS-991", 400, "Customer Transaction Count Limit Breached";
    MultipleLimitsBreached => "INS-992", 400, "Multiple Limits Breached";
    OrganizationCountLimitBreached => "INS-993", 400, "Organization Transaction Count Limit Breached";
    OrganizationValueLimitBreached => "INS-994", 400, "Organization Transaction Value Limit Breached";
    SingleTransactionLimitBreached => "INS-995", 400, "API Single Transaction Limit Breached";
    OutsideUsageTime => "INS-996", 400, "API Being Used Outside Of Usage Time";
    ApiNotEnabled => "INS-997", 400, "API Not Enabled";
    InvalidMarket => "INS-998", 400, "Invalid Market";
    InsufficientBalance => "INS-2006", 422, "Insufficient balance";
    InvalidMsisdn => "INS-2051", 400, "MSISDN invalid.";
}

impl InsCode {
    /// `INS-0`, or the `"0"` of Mozambique's v1x results.
    pub fn is_success(&self) -> bool {
        match self {
            InsCode::Success => true,
            InsCode::Other(s) => s == "0",
            _ => false,
        }
    }

    /// One of the limit codes `INS-990`…`INS-995`.
    pub fn is_limit_breached(&self) -> bool {
        matches!(
            self,
            InsCode::CustomerValueLimitBreached
                | InsCode::CustomerCountLimitBreached
                | InsCode::MultipleLimitsBreached
                | InsCode::OrganizationCountLimitBreached
                | InsCode::OrganizationValueLimitBreached
                | InsCode::SingleTransactionLimitBreached
        )
    }
}

impl fmt::Display for InsCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for InsCode {
    type Err = std::convert::Infallible;

    fn from_str(s: &str) -> Result<InsCode, Self::Err> {
        Ok(InsCode::parse(s))
    }
}

impl serde::Serialize for InsCode {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

impl<'de> serde::Deserialize<'de> for InsCode {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<InsCode, D::Error> {
        // A string as documented; a number as Mozambique's v1x sends `0`.
        match serde_json::Value::deserialize(d)? {
            serde_json::Value::String(s) => Ok(InsCode::parse(&s)),
            serde_json::Value::Number(n) => Ok(InsCode::parse(&n.to_string())),
            other => Err(serde::de::Error::custom(format!(
                "an INS code is a string, not {other}"
            ))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documented_codes_come_with_their_status_and_text() {
        assert_eq!(InsCode::parse("INS-10"), InsCode::DuplicateTransaction);
        assert_eq!(InsCode::DuplicateTransaction.status(), Some(409));
        assert_eq!(InsCode::InsufficientBalance.status(), Some(422));
        assert_eq!(InsCode::RequestTimeout.status(), Some(408));
        assert_eq!(InsCode::MsisdnOrTokenRequired.status(), Some(500));
        assert_eq!(InsCode::InvalidMsisdn.text(), Some("MSISDN invalid."));
        assert_eq!(InsCode::SessionCreationFailed.to_string(), "INS-989");
    }

    #[test]
    fn every_documented_code_reads_back_as_itself() {
        assert_eq!(InsCode::DOCUMENTED.len(), 45);
        for code in InsCode::DOCUMENTED {
            assert_eq!(&InsCode::parse(code.as_str()), code);
            assert!(code.as_str().starts_with("INS-"));
        }
    }

    #[test]
    fn unknown_codes_are_kept_as_sent() {
        assert_eq!(
            InsCode::parse("INS-GAR-0"),
            InsCode::Other("INS-GAR-0".into())
        );
        assert_eq!(InsCode::Other("INS-GAR-0".into()).status(), None);
        assert!(InsCode::parse("0").is_success());
        assert!(!InsCode::parse("INS-1").is_success());
    }

    #[test]
    fn codes_deserialise_from_strings_and_numbers() {
        let c: InsCode = serde_json::from_str("\"INS-2006\"").unwrap();
        assert_eq!(c, InsCode::InsufficientBalance);
        let c: InsCode = serde_json::from_str("0").unwrap();
        assert!(c.is_success());
        assert!(serde_json::from_str::<InsCode>("null").is_err());
    }
}
