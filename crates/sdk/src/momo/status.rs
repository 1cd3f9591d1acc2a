//! Transaction statuses and waiting for a final one.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use tokio::time::Instant;

use mkoba_api_types::momo::{
    CashTransferResult, InvoiceResult, PaymentResult, PreApprovalResult, RequestToPayResult,
    TransferResult,
};

use crate::error::{Error, ReasonCode, Result};

/// The status of a transaction as the platform reports it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Status {
    /// Waiting for the payer (or the platform).
    Pending,
    /// Seen on the sandbox before PENDING.
    Created,
    /// Done: the money moved.
    Successful,
    /// Done: it did not; the reason says why.
    Failed,
    /// A status this version does not know (`EXPIRED`, `REJECTED`, …), taken as final.
    Other(String),
}

impl Status {
    /// Reads a wire status.
    pub fn parse(s: &str) -> Status {
        match s {
            "PENDING" => Status::Pending,
            "CREATED" => Status::Created,
            "SUCCESSFUL" => Status::Successful,
            "FAILED" => Status::Failed,
            other => Status::Other(other.to_owned()),
        }
    }

    /// Whether the transaction will not change any more.
    pub fn is_final(&self) -> bool {
        !matches!(self, Status::Pending | Status::Created)
    }

    /// The wire name.
    pub fn as_str(&self) -> &str {
        match self {
            Status::Pending => "PENDING",
            Status::Created => "CREATED",
            Status::Successful => "SUCCESSFUL",
            Status::Failed => "FAILED",
            Status::Other(s) => s,
        }
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status body: what every result type has in common.
pub trait Transaction {
    /// Its status.
    fn status(&self) -> Status;
    /// Why it failed, if it did.
    fn reason(&self) -> Option<ReasonCode>;
    /// The platform's transaction id, once it succeeded.
    fn financial_transaction_id(&self) -> Option<&str>;
}

macro_rules! transaction {
    ($t:ty, reason: $r:ident => $reason:expr, ftid: $f:ident => $ftid:expr) => {
        impl Transaction for $t {
            fn status(&self) -> Status {
                Status::parse(&self.status)
            }
            fn reason(&self) -> Option<ReasonCode> {
                let $r = self;
                $reason
            }
            fn financial_transaction_id(&self) -> Option<&str> {
                let $f = self;
                $ftid
            }
        }
    };
}

transaction!(RequestToPayResult,
    reason: s => s.reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: s => s.financial_transaction_id.as_deref());
transaction!(TransferResult,
    reason: s => s.reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: s => s.financial_transaction_id.as_deref());
transaction!(CashTransferResult,
    reason: s => s.reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: s => s.financial_transaction_id.as_deref());
transaction!(PaymentResult,
    reason: s => s.reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: s => s.financial_transaction_id.as_deref());
transaction!(InvoiceResult,
    reason: s => s.error_reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: _s => None);
transaction!(PreApprovalResult,
    reason: s => s.reason.as_ref().map(|r| ReasonCode::parse(r.code())),
    ftid: _s => None);

/// How [`wait_for_final_status`] polls: the first delay, growing by `factor` up to
/// `max_delay`, until `timeout`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Poll {
    /// Wait before the first status check.
    pub first_delay: Duration,
    /// The longest wait between two checks.
    pub max_delay: Duration,
    /// Each wait is the previous one times this (at least 1).
    pub factor: f64,
    /// Give up after this long.
    pub timeout: Duration,
}

impl Default for Poll {
    /// 200 ms, then doubling up to 5 s, for at most 2 minutes (MTN caps status checks at 10
    /// per second).
    fn default() -> Poll {
        Poll {
            first_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(5),
            factor: 2.0,
            timeout: Duration::from_secs(120),
        }
    }
}

impl Poll {
    /// The default schedule with another time limit.
    pub fn timeout(timeout: Duration) -> Poll {
        Poll {
            timeout,
            ..Poll::default()
        }
    }
}

/// How long after the wait starts a `RESOURCE_NOT_FOUND` answer is taken as "not visible
/// yet": past it, the id is no transaction's (a typo, or another product's), and waiting
/// the rest of a two-minute [`Poll`] would only hide that.
pub const NOT_VISIBLE_FOR: Duration = Duration::from_secs(10);

/// Calls `fetch` with backoff until the transaction is final, then returns it.
///
/// A `RESOURCE_NOT_FOUND` answer is taken as "not visible yet" (it can follow a 202 on the
/// real platform) and polled again for [`NOT_VISIBLE_FOR`], then returned; other errors end
/// the wait. At the deadline the result is [`Error::StillPending`] (or the last 404).
pub async fn wait_for_final_status<T, F, Fut>(what: &str, poll: Poll, mut fetch: F) -> Result<T>
where
    T: Transaction,
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let started = Instant::now();
    // Any timeout is taken (Tokio's clock, which tests pause, over std's).
    let deadline = Instant::from_std(crate::later(started.into_std(), poll.timeout));
    let mut delay = poll.first_delay;
    loop {
        let now = Instant::now();
        tokio::time::sleep(delay.min(deadline.saturating_duration_since(now))).await;
        let last = match fetch().await {
            Ok(t) if t.status().is_final() => return Ok(t),
            Ok(t) => Err(t.status().to_string()),
            Err(Error::Api(e))
                if e.code == ReasonCode::ResourceNotFound
                    && started.elapsed() < NOT_VISIBLE_FOR =>
            {
                Ok(Error::Api(e))
            }
            Err(e) => return Err(e),
        };
        if Instant::now() >= deadline {
            return match last {
                Ok(not_found) => Err(not_found),
                Err(status) => Err(Error::StillPending {
                    what: what.to_owned(),
                    status,
                    waited: started.elapsed(),
                }),
            };
        }
        // A factor that makes no duration (infinite, not a number) goes to the longest delay.
        delay = Duration::try_from_secs_f64(delay.as_secs_f64() * poll.factor.max(1.0))
            .unwrap_or(poll.max_delay)
            .min(poll.max_delay)
            .max(Duration::from_millis(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 404 is "not visible yet" for a while, then the answer: a wrong id does not wait
    /// out a two-minute poll (on a paused clock: no real waiting).
    #[tokio::test(start_paused = true)]
    async fn a_reference_that_stays_unknown_is_answered_404_before_the_deadline() {
        let started = Instant::now();
        let polls = std::sync::atomic::AtomicUsize::new(0);
        let r: Result<mkoba_api_types::momo::RequestToPayResult> =
            wait_for_final_status("request-to-pay", Poll::default(), || {
                polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                async {
                    Err(Error::Api(crate::error::ApiError::from_body(
                        404,
                        br#"{"code":"RESOURCE_NOT_FOUND","message":"Requested resource was not found."}"#,
                    )))
                }
            })
            .await;
        let e = r.unwrap_err();
        assert_eq!(e.code(), Some(&ReasonCode::ResourceNotFound), "{e:?}");
        let waited = started.elapsed();
        assert!(
            waited >= NOT_VISIBLE_FOR && waited < Poll::default().timeout,
            "{waited:?}"
        );
        assert!(polls.into_inner() > 1, "polled again while not visible");
    }

    /// A timeout or a backoff factor past what a duration holds is taken, not a panic
    /// (`Duration::MAX` overflowed the clock; an infinite factor made no duration).
    #[tokio::test(start_paused = true)]
    async fn any_poll_is_taken_without_a_panic() {
        for poll in [
            Poll::timeout(Duration::MAX),
            Poll {
                factor: f64::INFINITY,
                ..Poll::default()
            },
            Poll {
                factor: f64::NAN,
                ..Poll::default()
            },
        ] {
            let polls = std::sync::atomic::AtomicUsize::new(0);
            let r: Result<mkoba_api_types::momo::RequestToPayResult> =
                wait_for_final_status("request-to-pay", poll, || {
                    let n = polls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    async move {
                        let status = if n < 3 { "PENDING" } else { "SUCCESSFUL" };
                        Ok(serde_json::from_str(&format!(
                            r#"{{"amount":"5","currency":"EUR","externalId":"1","payer":{{"partyIdType":"MSISDN","partyId":"1"}},"status":"{status}"}}"#
                        ))
                        .unwrap())
                    }
                })
                .await;
            assert_eq!(r.unwrap().status, "SUCCESSFUL");
        }
    }

    #[test]
    fn pending_and_created_are_not_final_anything_else_is() {
        assert!(!Status::parse("PENDING").is_final());
        assert!(!Status::parse("CREATED").is_final());
        assert!(Status::parse("SUCCESSFUL").is_final());
        assert!(Status::parse("EXPIRED").is_final());
    }
}
