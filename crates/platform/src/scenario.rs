//! Scenario rules: what the sandbox decides for a payment.
//!
//! MTN's sandbox reacts to test numbers (reference §10.2–10.3, the RequestToPay column):
//! every number in the table is accepted (202) and then FAILS with the documented reason;
//! every other number succeeds. `46733123464` ("TransfertypeUnknown") never settles and
//! stays PENDING. Outside the sandbox (production-like environments) there are no test
//! numbers and only the ledger decides.

use mkoba_ledger::Money;

use crate::model::{Party, PartyIdType, PaymentKind, Product};
use crate::reason::FailureReason;

/// What the settlement worker will do with a payment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Settle on the ledger (and fail with `NOT_ENOUGH_FUNDS` if the money is not there).
    Succeed,
    /// Fail with this reason code, whatever the balances.
    Fail(FailureReason),
    /// Never settle.
    StayPending,
}

/// The sandbox outcome of a payment, by operation (the columns of reference §10.3).
pub fn payment(kind: PaymentKind, product: Product, party: &Party, amount: Money) -> Outcome {
    match kind {
        PaymentKind::Invoice if crate::widget::is_widget_payer(party) => widget(amount),
        // MTN's scenario RequestToPayPayerPayeeNotAllowedToReceive is driven by the amount.
        PaymentKind::RequestToPay if amount.minor() == 7000 * minor_per_unit(amount) => {
            Outcome::Fail(FailureReason::PayeeNotAllowedToReceive)
        }
        PaymentKind::RequestToPay | PaymentKind::RequestToWithdraw | PaymentKind::Invoice => {
            request_to_pay(party)
        }
        PaymentKind::PreApproval => pre_approval(party),
        PaymentKind::BillPayment => bill_payment(amount),
        PaymentKind::Deposit => match request_to_pay(party) {
            Outcome::StayPending => Outcome::Succeed,
            other => other,
        },
        PaymentKind::Transfer | PaymentKind::CashTransfer => transfer(product, party),
        // The payee of a refund is the payer of a successful collection, never a test
        // number that fails; refunds are decided by the ledger and the original payment.
        PaymentKind::Refund => Outcome::Succeed,
        PaymentKind::MpesaC2b
        | PaymentKind::MpesaB2c
        | PaymentKind::MpesaB2b
        | PaymentKind::MpesaReversal
        | PaymentKind::MpesaMandate
        | PaymentKind::MpesaDirectDebit => mpesa(kind, party),
    }
}

/// Minor units in one major unit of the amount's currency.
fn minor_per_unit(amount: Money) -> i64 {
    10_i64.pow(amount.currency().exponent())
}

/// The Collection Widget's sandbox outcomes by amount (reference: momo-collection-widget):
/// 1–19 stays PENDING (until the payer decides on the virtual phone, or the invoice
/// expires), 20–79 FAILED, anything else SUCCESSFUL.
pub fn widget(amount: Money) -> Outcome {
    let unit = minor_per_unit(amount);
    let minor = amount.minor();
    if (unit..20 * unit).contains(&minor) {
        Outcome::StayPending
    } else if (20 * unit..80 * unit).contains(&minor) {
        Outcome::Fail(FailureReason::ApprovalRejected)
    } else {
        Outcome::Succeed
    }
}

/// The M-Pesa sandbox's scenario MSISDNs (reference §8, as integrators report them for the
/// Lesotho sandbox): for payments collected from a customer (C2B, direct debits and their
/// mandates) `000000000008` has insufficient funds and `000000000002` stays processing; for
/// B2C `000000000006` has insufficient funds and `000000000004` stays processing. Every
/// other MSISDN, `000000000001` among them, succeeds when the ledger allows. Mozambique's v1x
/// gateway takes only `2588[45]…` numbers, so there `258840000008` (or `258850000008`) is
/// `000000000008`, and likewise for the other scenario digits.
pub fn mpesa(kind: PaymentKind, party: &Party) -> Outcome {
    if party.id_type != PartyIdType::Msisdn {
        return Outcome::Succeed;
    }
    let id = party.id.as_str();
    let scenario = match id
        .strip_prefix("25884")
        .or_else(|| id.strip_prefix("25885"))
    {
        Some(rest) if id.len() == 12 && rest.starts_with("000000") => &id[id.len() - 1..],
        _ if id.len() == 12 && id.starts_with("00000000000") => &id[id.len() - 1..],
        _ => "",
    };
    match (kind, scenario) {
        (
            PaymentKind::MpesaC2b | PaymentKind::MpesaDirectDebit | PaymentKind::MpesaMandate,
            "8",
        )
        | (PaymentKind::MpesaB2c, "6") => Outcome::Fail(FailureReason::NotEnoughFunds),
        (
            PaymentKind::MpesaC2b | PaymentKind::MpesaDirectDebit | PaymentKind::MpesaMandate,
            "2",
        )
        | (PaymentKind::MpesaB2c, "4") => Outcome::StayPending,
        _ => Outcome::Succeed,
    }
}

/// Refund and cash-transfer scenario keys `1`…`13` (reference §10.3, "other scenario keys").
/// MTN's testing page lists the keys without saying which field carries them; the party of a
/// refund is the original payer and cash transfers key on a payee that is not a test number,
/// so Mkoba reads the key from `externalId`. Any other `externalId` leaves the decision to
/// the party and the ledger.
pub fn by_key(kind: PaymentKind, external_id: Option<&str>) -> Option<Outcome> {
    let key: u8 = external_id?.trim().parse().ok()?;
    let reason = match (kind, key) {
        (PaymentKind::Refund | PaymentKind::CashTransfer, 1) => FailureReason::ResourceNotFound,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 2) => {
            FailureReason::InternalProcessingError
        }
        (PaymentKind::Refund | PaymentKind::CashTransfer, 3) => FailureReason::ApprovalRejected,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 4) => FailureReason::Expired,
        (PaymentKind::Refund, 5) => FailureReason::Ongoing,
        (PaymentKind::Refund, 6) => FailureReason::PayerDelayed,
        (PaymentKind::CashTransfer, 5) => FailureReason::PayeeNotFound,
        (PaymentKind::CashTransfer, 6) => FailureReason::PayeeNotAllowedToReceive,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 7) => FailureReason::NotAllowed,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 8) => {
            FailureReason::NotAllowedTargetEnvironment
        }
        (PaymentKind::Refund | PaymentKind::CashTransfer, 9) => {
            FailureReason::InvalidCallbackUrlHost
        }
        (PaymentKind::Refund | PaymentKind::CashTransfer, 10) => FailureReason::InvalidCurrency,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 11) => {
            FailureReason::InternalProcessingError
        }
        (PaymentKind::Refund | PaymentKind::CashTransfer, 12) => FailureReason::ServiceUnavailable,
        (PaymentKind::Refund | PaymentKind::CashTransfer, 13) => {
            FailureReason::CouldNotPerformTransaction
        }
        _ => return None,
    };
    Some(Outcome::Fail(reason))
}

fn test_suffix(party: &Party) -> Option<&str> {
    (party.id_type == PartyIdType::Msisdn)
        .then(|| party.id.strip_prefix("467331234"))
        .flatten()
}

/// The pre-approval column of §10.3.
fn pre_approval(payer: &Party) -> Outcome {
    let Some(suffix) = test_suffix(payer) else {
        return Outcome::Succeed;
    };
    match suffix {
        "50" | "60" => Outcome::Fail(FailureReason::InternalProcessingError),
        "51" => Outcome::Fail(FailureReason::ApprovalRejected),
        "52" => Outcome::Fail(FailureReason::Expired),
        "53" => Outcome::Fail(FailureReason::Ongoing),
        "54" => Outcome::Fail(FailureReason::PayerDelayed),
        "55" => Outcome::Fail(FailureReason::PayerNotFound),
        "56" => Outcome::Fail(FailureReason::NotAllowed),
        "57" => Outcome::Fail(FailureReason::NotAllowedTargetEnvironment),
        "58" => Outcome::Fail(FailureReason::InvalidCallbackUrlHost),
        "59" => Outcome::Fail(FailureReason::InvalidCurrency),
        "61" => Outcome::Fail(FailureReason::ServiceUnavailable),
        _ => Outcome::Succeed,
    }
}

/// `CreatePayments` outcomes are driven by the amount in major units (§4.11): 2000 and 4000
/// fail, 5000, 6000 and 7000 stay pending, everything else (1000, 3000, …) succeeds.
fn bill_payment(amount: Money) -> Outcome {
    let scale = 10i64.pow(amount.currency().exponent());
    if amount.minor() % scale != 0 {
        return Outcome::Succeed;
    }
    match amount.minor() / scale {
        2000 | 4000 => Outcome::Fail(FailureReason::InternalProcessingError),
        5000 | 6000 | 7000 => Outcome::StayPending,
        _ => Outcome::Succeed,
    }
}

/// The transfer column: disbursement and remittance transfers to a test payee.
fn transfer(product: Product, payee: &Party) -> Outcome {
    let Some(suffix) = test_suffix(payee) else {
        return Outcome::Succeed;
    };
    match suffix {
        "50" | "62" => Outcome::Fail(FailureReason::InternalProcessingError),
        "51" => Outcome::Fail(FailureReason::ApprovalRejected),
        "52" => Outcome::Fail(FailureReason::Expired),
        "53" => Outcome::Fail(FailureReason::Ongoing),
        "54" if product == Product::Remittance => Outcome::Fail(FailureReason::PayeeDelayed),
        "54" => Outcome::Fail(FailureReason::PayerDelayed),
        "55" => Outcome::Fail(FailureReason::NotEnoughFunds),
        "56" => Outcome::Fail(FailureReason::PayerLimitReached),
        "57" => Outcome::Fail(FailureReason::PayeeNotFound),
        "58" => Outcome::Fail(FailureReason::NotAllowed),
        "59" => Outcome::Fail(FailureReason::NotAllowedTargetEnvironment),
        "60" => Outcome::Fail(FailureReason::InvalidCallbackUrlHost),
        "61" => Outcome::Fail(FailureReason::InvalidCurrency),
        "63" => Outcome::Fail(FailureReason::ServiceUnavailable),
        "64" => Outcome::StayPending,
        _ => Outcome::Succeed,
    }
}

/// The request-to-pay outcome for a payer in the sandbox.
pub fn request_to_pay(payer: &Party) -> Outcome {
    let Some(suffix) = test_suffix(payer) else {
        return Outcome::Succeed;
    };
    match suffix {
        "50" => Outcome::Fail(FailureReason::InternalProcessingError),
        "51" => Outcome::Fail(FailureReason::ApprovalRejected),
        "52" => Outcome::Fail(FailureReason::Expired),
        "53" => Outcome::Fail(FailureReason::Ongoing),
        "54" => Outcome::Fail(FailureReason::PayerDelayed),
        "55" => Outcome::Fail(FailureReason::PayerNotFound),
        "56" => Outcome::Fail(FailureReason::PayeeNotAllowedToReceive),
        "57" => Outcome::Fail(FailureReason::NotAllowed),
        "58" => Outcome::Fail(FailureReason::NotAllowedTargetEnvironment),
        "59" => Outcome::Fail(FailureReason::InvalidCallbackUrlHost),
        "60" => Outcome::Fail(FailureReason::InvalidCurrency),
        "61" => Outcome::Fail(FailureReason::InternalProcessingError),
        "62" => Outcome::Fail(FailureReason::ServiceUnavailable),
        "63" => Outcome::Fail(FailureReason::CouldNotPerformTransaction),
        "64" => Outcome::StayPending,
        _ => Outcome::Succeed,
    }
}

/// How the sandbox answers "is this account holder active?".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HolderStatus {
    Active,
    NotActive,
    /// Answered as an error with this code.
    Error(&'static str),
}

/// The account-holder scenario for a party id (reference §4.6 and §10.3).
pub fn account_holder(id_type: PartyIdType, id: &str) -> HolderStatus {
    let key = match id_type {
        PartyIdType::Msisdn => id.strip_prefix("467331234").unwrap_or(""),
        PartyIdType::Email => match id.to_ascii_lowercase().as_str() {
            "notfound@email.com" => "50",
            "notactive@email.com" => "51",
            "notallowed@email.com" => "52",
            "notallowedtargetenvironment@email.com" => "53",
            "internalprocessingerror@email.com" => "54",
            "serviceunavailable@email.com" => "55",
            _ => "",
        },
        PartyIdType::PartyCode => match id.to_ascii_lowercase().as_str() {
            "5cecb5a7-8bd0-4f49-87b1-8eb9ecc7b7bc" => "50",
            "b0040b3c-b426-4a90-af6e-673e65861cd7" => "51",
            "4d5f500f-c385-4901-9be5-25b6d36ad220" => "52",
            "d2265f9b-0c22-496d-908f-79a65ad66266" => "53",
            "8f548a78-ceb8-4d12-a243-5640b91e91a4" => "54",
            "585c07a4-2c80-42f7-9e73-e586b36dee68" => "55",
            _ => "",
        },
    };
    match key {
        "50" => HolderStatus::Error("RESOURCE_NOT_FOUND"),
        "51" => HolderStatus::NotActive,
        "52" => HolderStatus::Error("NOT_ALLOWED"),
        "53" => HolderStatus::Error("NOT_ALLOWED_TARGET_ENVIRONMENT"),
        "54" => HolderStatus::Error("INTERNAL_PROCESSING_ERROR"),
        "55" => HolderStatus::Error("SERVICE_UNAVAILABLE"),
        _ => HolderStatus::Active,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn msisdn(id: &str) -> Party {
        Party {
            id_type: PartyIdType::Msisdn,
            id: id.to_owned(),
        }
    }

    #[test]
    fn widget_invoices_are_decided_by_amount() {
        let eur = mkoba_ledger::Currency::parse("EUR").unwrap();
        let payer = crate::widget::widget_payer(&uuid::Uuid::new_v4());
        assert!(crate::widget::is_widget_payer(&payer));
        let at = |major: i64| {
            payment(
                PaymentKind::Invoice,
                Product::Collection,
                &payer,
                Money::from_minor(major * 100, eur),
            )
        };
        assert_eq!(at(1), Outcome::StayPending);
        assert_eq!(at(19), Outcome::StayPending);
        assert_eq!(at(20), Outcome::Fail(FailureReason::ApprovalRejected));
        assert_eq!(at(79), Outcome::Fail(FailureReason::ApprovalRejected));
        assert_eq!(at(80), Outcome::Succeed);
        assert_eq!(at(100), Outcome::Succeed);
        // 19.99 is still below 20.
        let odd = Money::from_minor(1999, eur);
        assert_eq!(widget(odd), Outcome::StayPending);
        // Other invoices keep the payer's rules; request-to-pay 7000 is not allowed.
        let rtp = |major: i64| {
            payment(
                PaymentKind::RequestToPay,
                Product::Collection,
                &msisdn("256770000000"),
                Money::from_minor(major * 100, eur),
            )
        };
        assert_eq!(
            rtp(7000),
            Outcome::Fail(FailureReason::PayeeNotAllowedToReceive)
        );
        assert_eq!(rtp(20), Outcome::Succeed);
    }

    #[test]
    fn mpesa_scenario_numbers_work_in_both_number_forms() {
        use PaymentKind::{MpesaB2c, MpesaC2b};
        for n in ["000000000008", "258840000008", "258850000008"] {
            assert_eq!(
                mpesa(MpesaC2b, &msisdn(n)),
                Outcome::Fail(FailureReason::NotEnoughFunds),
                "{n}"
            );
        }
        assert_eq!(
            mpesa(MpesaC2b, &msisdn("258840000002")),
            Outcome::StayPending
        );
        assert_eq!(
            mpesa(MpesaB2c, &msisdn("258850000006")),
            Outcome::Fail(FailureReason::NotEnoughFunds)
        );
        // Only the scenario shape counts: other numbers ending in 8 succeed.
        for n in ["258841000008", "000000000018", "25884000008"] {
            assert_eq!(mpesa(MpesaC2b, &msisdn(n)), Outcome::Succeed, "{n}");
        }
    }

    #[test]
    fn test_numbers_fail_with_their_documented_reason() {
        assert_eq!(
            request_to_pay(&msisdn("46733123451")),
            Outcome::Fail(FailureReason::ApprovalRejected)
        );
        assert_eq!(
            request_to_pay(&msisdn("46733123452")),
            Outcome::Fail(FailureReason::Expired)
        );
        assert_eq!(
            request_to_pay(&msisdn("46733123463")),
            Outcome::Fail(FailureReason::CouldNotPerformTransaction)
        );
        assert_eq!(request_to_pay(&msisdn("46733123464")), Outcome::StayPending);
    }

    fn one() -> Money {
        Money::from_minor(100, mkoba_ledger::Currency::parse("EUR").unwrap())
    }

    #[test]
    fn bill_payments_follow_the_amount() {
        let eur = mkoba_ledger::Currency::parse("EUR").unwrap();
        let p = msisdn("256770000000");
        let at = |major: i64| {
            payment(
                PaymentKind::BillPayment,
                Product::Collection,
                &p,
                Money::from_minor(major * 100, eur),
            )
        };
        assert_eq!(at(1000), Outcome::Succeed);
        assert_eq!(
            at(2000),
            Outcome::Fail(FailureReason::InternalProcessingError)
        );
        assert_eq!(at(5000), Outcome::StayPending);
        assert_eq!(at(12), Outcome::Succeed);
    }

    #[test]
    fn transfers_use_their_own_column() {
        let p = msisdn("46733123455");
        assert_eq!(
            payment(PaymentKind::Transfer, Product::Disbursement, &p, one()),
            Outcome::Fail(FailureReason::NotEnoughFunds)
        );
        assert_eq!(
            payment(PaymentKind::Deposit, Product::Disbursement, &p, one()),
            Outcome::Fail(FailureReason::PayerNotFound)
        );
        let delayed = msisdn("46733123454");
        assert_eq!(
            payment(PaymentKind::Transfer, Product::Remittance, &delayed, one()),
            Outcome::Fail(FailureReason::PayeeDelayed)
        );
        assert_eq!(
            payment(
                PaymentKind::Transfer,
                Product::Disbursement,
                &delayed,
                one()
            ),
            Outcome::Fail(FailureReason::PayerDelayed)
        );
    }

    #[test]
    fn refund_and_cash_transfer_keys_come_from_the_external_id() {
        assert_eq!(
            by_key(PaymentKind::Refund, Some("3")),
            Some(Outcome::Fail(FailureReason::ApprovalRejected))
        );
        assert_eq!(
            by_key(PaymentKind::CashTransfer, Some("5")),
            Some(Outcome::Fail(FailureReason::PayeeNotFound))
        );
        assert_eq!(
            by_key(PaymentKind::CashTransfer, Some("13")),
            Some(Outcome::Fail(FailureReason::CouldNotPerformTransaction))
        );
        assert_eq!(by_key(PaymentKind::Refund, Some("14")), None);
        assert_eq!(by_key(PaymentKind::Refund, Some("ext-1")), None);
        assert_eq!(by_key(PaymentKind::RequestToPay, Some("3")), None);
        assert_eq!(by_key(PaymentKind::Refund, None), None);
    }

    #[test]
    fn every_other_number_succeeds() {
        for n in ["56733123453", "256774290781", "46733123449", "4673312345"] {
            assert_eq!(request_to_pay(&msisdn(n)), Outcome::Succeed, "{n}");
        }
    }

    #[test]
    fn account_holder_scenarios_cover_msisdn_email_and_party_code() {
        assert_eq!(
            account_holder(PartyIdType::Msisdn, "46733123451"),
            HolderStatus::NotActive
        );
        assert_eq!(
            account_holder(PartyIdType::Email, "ServiceUnavailable@email.com"),
            HolderStatus::Error("SERVICE_UNAVAILABLE")
        );
        assert_eq!(
            account_holder(
                PartyIdType::PartyCode,
                "5cecb5a7-8bd0-4f49-87b1-8eb9ecc7b7bc"
            ),
            HolderStatus::Error("RESOURCE_NOT_FOUND")
        );
        assert_eq!(
            account_holder(PartyIdType::Msisdn, "256774290781"),
            HolderStatus::Active
        );
    }
}
