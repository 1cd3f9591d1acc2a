//! A direct-debit mandate's schedule, checked on every payment under it.
//!
//! A mandate (`directDebitCreation`) carries an optional expiry date and a frequency:
//! - `01` once off;
//! - `02` daily;
//! - `03` weekly;
//! - `04` monthly;
//! - `05` quarterly;
//! - `06` half-yearly;
//! - `07` yearly;
//! - `08` on demand.
//!
//! The periodic ones (`04`–`07`) may also carry a range of days of the month. The portal
//! checks these fields when the mandate is made; Mkoba also holds later payments to them:
//! - Past its expiry date the mandate is no longer active. A payment is refused `INS-58`
//!   (No Active Mandate found), and a query shows it `Expired`.
//! - One payment per period: the same day (`02`), any 7 days (`03`), the same calendar
//!   month, quarter, half-year or year (`04`–`07`), or ever (`01`).
//! - With a range, payments fall on those days of the month.
//!
//! A payment outside the schedule is refused `INS-6` (Transaction Failed), as a payment
//! the customer's operator declines. The M-Pesa handler checks the expiry; the writer checks
//! the frequency and range in its pass against every payment under the mandate accepted
//! before, on any node (`NewPayment::mandate`), so two sent at once cannot both pass. Dates are the API user's, in UTC: its test clock's
//! when it has one (`docs/test-clocks.md`).

use serde_json::Value;
use time::{Date, OffsetDateTime};

/// The UTC date of a time in milliseconds since 1970.
pub fn date_of(ms: i64) -> Date {
    crate::clock::utc(ms)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH)
        .date()
}

/// `YYYYMMDD`, as the mandate's date fields are written.
pub fn yyyymmdd(d: Date) -> String {
    format!("{:04}{:02}{:02}", d.year(), u8::from(d.month()), d.day())
}

/// Whether the mandate's expiry date (`details.expiryDate`) has passed on `today`.
pub fn expired(details: &Value, today: Date) -> bool {
    details["expiryDate"]
        .as_str()
        .is_some_and(|expiry| yyyymmdd(today).as_str() > expiry)
}

/// Whether the mandate's frequency limits payments by those made before (all but on
/// demand): only then need the earlier payments be read.
pub fn counts_earlier(details: &Value) -> bool {
    matches!(
        details["frequency"].as_str(),
        Some("01" | "02" | "03" | "04" | "05" | "06" | "07")
    )
}

/// Whether a payment now keeps to the mandate's frequency and range of days, given when
/// the earlier payments under it that did not fail were made (ms since 1970).
pub fn allows(details: &Value, now_ms: i64, earlier_ms: &[i64]) -> bool {
    let today = date_of(now_ms);
    let frequency = details["frequency"].as_str().unwrap_or("08");
    let day = |field: &str| details[field].as_str().and_then(|d| d.parse::<u8>().ok());
    if matches!(frequency, "04" | "05" | "06" | "07") {
        if let Some(start) = day("startRangeOfDays")
            && today.day() < start
        {
            return false;
        }
        if let Some(end) = day("endRangeOfDays")
            && today.day() > end
        {
            return false;
        }
    }
    // The period a date falls in, for the calendar frequencies.
    let period = |d: Date| -> (i32, i32) {
        let month = i32::from(u8::from(d.month()));
        match frequency {
            "02" => (d.to_julian_day(), 0),
            "04" => (d.year(), month),
            "05" => (d.year(), (month - 1) / 3),
            "06" => (d.year(), (month - 1) / 6),
            _ => (d.year(), 0),
        }
    };
    match frequency {
        "01" => earlier_ms.is_empty(),
        "03" => earlier_ms.iter().all(|&at| now_ms - at >= 7 * 86_400_000),
        "02" | "04" | "05" | "06" | "07" => {
            let now = period(today);
            earlier_ms.iter().all(|&at| period(date_of(at)) != now)
        }
        _ => true,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const DAY: i64 = 86_400_000;
    /// 2026-01-15T12:00:00Z.
    const JAN_15: i64 = 1_768_478_400_000;

    #[test]
    fn each_frequency_allows_one_payment_per_period() {
        let f = |code: &str| json!({ "frequency": code });
        // Once off: never again.
        assert!(allows(&f("01"), JAN_15, &[]));
        assert!(!allows(&f("01"), JAN_15 + 400 * DAY, &[JAN_15]));
        // Daily: the next day, not the same day.
        assert!(!allows(&f("02"), JAN_15 + DAY / 3, &[JAN_15]));
        assert!(allows(&f("02"), JAN_15 + DAY, &[JAN_15]));
        // Weekly: seven days on.
        assert!(!allows(&f("03"), JAN_15 + 6 * DAY, &[JAN_15]));
        assert!(allows(&f("03"), JAN_15 + 7 * DAY, &[JAN_15]));
        // Monthly: the next calendar month.
        assert!(!allows(&f("04"), JAN_15 + 16 * DAY, &[JAN_15]));
        assert!(allows(&f("04"), JAN_15 + 17 * DAY, &[JAN_15]));
        // Quarterly, half-yearly, yearly.
        assert!(!allows(&f("05"), JAN_15 + 60 * DAY, &[JAN_15]));
        assert!(allows(&f("05"), JAN_15 + 80 * DAY, &[JAN_15]));
        assert!(!allows(&f("06"), JAN_15 + 150 * DAY, &[JAN_15]));
        assert!(allows(&f("06"), JAN_15 + 170 * DAY, &[JAN_15]));
        assert!(!allows(&f("07"), JAN_15 + 300 * DAY, &[JAN_15]));
        assert!(allows(&f("07"), JAN_15 + 360 * DAY, &[JAN_15]));
        // On demand, or no frequency: any time.
        assert!(allows(&f("08"), JAN_15, &[JAN_15, JAN_15]));
        assert!(allows(&json!({}), JAN_15, &[JAN_15]));
        // Only the limited frequencies need the earlier payments.
        for code in ["01", "02", "03", "04", "05", "06", "07"] {
            assert!(counts_earlier(&f(code)), "{code}");
        }
        assert!(!counts_earlier(&f("08")));
        assert!(!counts_earlier(&json!({})));
    }

    #[test]
    fn a_range_of_days_holds_for_the_periodic_frequencies() {
        let monthly = json!({"frequency": "04", "startRangeOfDays": "10", "endRangeOfDays": "20"});
        assert!(allows(&monthly, JAN_15, &[]));
        assert!(!allows(&monthly, JAN_15 - 6 * DAY, &[]));
        assert!(!allows(&monthly, JAN_15 + 6 * DAY, &[]));
    }

    #[test]
    fn a_mandate_expires_after_its_expiry_date() {
        let m = json!({"expiryDate": "20260115"});
        assert!(!expired(&m, date_of(JAN_15)));
        assert!(expired(&m, date_of(JAN_15 + DAY)));
        assert!(!expired(&json!({}), date_of(JAN_15 + 9_999 * DAY)));
    }
}
