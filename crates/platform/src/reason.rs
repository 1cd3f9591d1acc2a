//! Why a payment failed: one closed set in the core, stored by name, that each dialect maps
//! to its own wire codes in one place (MoMo: `mkoba_momo::v2` / the status bodies, which use
//! these names as they are; M-Pesa: `mkoba_mpesa` `result_code`).
//!
//! The names are MoMo's reason codes (reference §10), which the platform grew up with; the
//! scenario table (`scenario.rs`), the ledger (`NOT_ENOUGH_FUNDS`), expiry (`EXPIRED`),
//! cancellation (`TRANSACTION_CANCELED`) and refund checks decide them.

macro_rules! reasons {
    ($($variant:ident = $name:literal,)*) => {
        /// Why a payment failed.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum FailureReason {
            $($variant,)*
        }

        impl FailureReason {
            /// Every reason.
            pub const ALL: &[FailureReason] = &[$(FailureReason::$variant,)*];

            /// The stored and wire name (`NOT_ENOUGH_FUNDS`).
            pub fn as_str(self) -> &'static str {
                match self {
                    $(FailureReason::$variant => $name,)*
                }
            }

            /// The reason of a stored name.
            pub fn parse(name: &str) -> Option<FailureReason> {
                match name {
                    $($name => Some(FailureReason::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

reasons! {
    ApprovalRejected = "APPROVAL_REJECTED",
    CouldNotPerformTransaction = "COULD_NOT_PERFORM_TRANSACTION",
    Expired = "EXPIRED",
    InternalProcessingError = "INTERNAL_PROCESSING_ERROR",
    InvalidCallbackUrlHost = "INVALID_CALLBACK_URL_HOST",
    InvalidCurrency = "INVALID_CURRENCY",
    NotAllowed = "NOT_ALLOWED",
    NotAllowedTargetEnvironment = "NOT_ALLOWED_TARGET_ENVIRONMENT",
    NotEnoughFunds = "NOT_ENOUGH_FUNDS",
    Ongoing = "ONGOING",
    PayeeDelayed = "PAYEE_DELAYED",
    PayeeNotAllowedToReceive = "PAYEE_NOT_ALLOWED_TO_RECEIVE",
    PayeeNotFound = "PAYEE_NOT_FOUND",
    PayerDelayed = "PAYER_DELAYED",
    PayerLimitReached = "PAYER_LIMIT_REACHED",
    PayerNotFound = "PAYER_NOT_FOUND",
    ResourceNotFound = "RESOURCE_NOT_FOUND",
    ServiceUnavailable = "SERVICE_UNAVAILABLE",
    TransactionCanceled = "TRANSACTION_CANCELED",
    TransactionNotFound = "TRANSACTION_NOT_FOUND",
}

impl FailureReason {
    /// The `INS-*` code an M-Pesa client is given for a payment that failed for this
    /// reason (`v1x`: Mozambique's gateway, whose table has "Transaction cancelled by
    /// customer"). The M-Pesa answers and results are built from it, and the portal shows
    /// it beside the reason.
    pub fn mpesa_code(self, v1x: bool) -> &'static str {
        match self {
            FailureReason::NotEnoughFunds => "INS-2006",
            FailureReason::Expired => "INS-9",
            FailureReason::ApprovalRejected if v1x => "INS-5",
            _ => "INS-6",
        }
    }
}

impl std::fmt::Display for FailureReason {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_reads_back_from_its_name() {
        for r in FailureReason::ALL {
            assert_eq!(FailureReason::parse(r.as_str()), Some(*r));
        }
        assert_eq!(FailureReason::parse("SOMETHING_ELSE"), None);
    }
}
