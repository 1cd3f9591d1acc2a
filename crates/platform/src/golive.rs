//! Going live (seed 004): when testing is done, a developer posts their account details and
//! a transaction report to the operator's staff, who verify them before the service goes
//! live.
//!
//! * A developer with an active account submits a [`NewGoLive`]: company and contact
//!   details, the markets (MoMo target environments such as `mtnuganda`) and products
//!   wanted, and a [`GoLiveReport`] generated from their sandbox transactions at that
//!   moment (counts and success rates per operation, the failed cases they handled). One
//!   request waits at a time; the developer is mailed a receipt, every operator a notice.
//! * An operator approves or rejects a pending request with a comment; the developer is
//!   told by mail. A decision is final (a rejected developer submits again).
//! * What approved requests grant is the developer's [`LiveAccess`]: API users for the
//!   approved MoMo markets, and the M-Pesa `openapi` (production) environment when M-Pesa
//!   was approved. Before that the portal refuses production API users and the M-Pesa
//!   gateway answers production calls as the real one does for a key it does not know.
//!
//! Requests, decisions and mail are committed by the single writer, which checks each
//! against the requests as its pass leaves them (two submissions cannot both be pending;
//! two operators cannot both decide one request).

use crate::Portal;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use tokio::sync::oneshot;

use crate::Internal;
use crate::accounts::NewMail;
use crate::engine::{Command, PortalCommand};
use crate::model::{PaymentKind, PaymentStatus};
use crate::portal::{PaymentFilter, ReportScope};

/// Products a go-live request can ask for (`mpesa` is the M-Pesa OpenAPI's `openapi`
/// environment; the others are MoMo products in the requested markets).
pub const PRODUCTS: [&str; 5] = [
    "collection",
    "disbursement",
    "remittance",
    "collection_widget",
    "mpesa",
];

/// The M-Pesa product of [`PRODUCTS`].
pub const MPESA: &str = "mpesa";

/// Longest free-text field of a request (company, contact, website).
pub const FIELD_MAX: usize = 200;
/// Longest description of the use case.
pub const USE_CASE_MAX: usize = 2000;
/// Failed cases listed in a report.
pub const REPORT_FAILED_CASES: u32 = 25;

/// Where a request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GoLiveState {
    Pending,
    Approved,
    Rejected,
}

impl GoLiveState {
    pub fn as_str(self) -> &'static str {
        match self {
            GoLiveState::Pending => "pending",
            GoLiveState::Approved => "approved",
            GoLiveState::Rejected => "rejected",
        }
    }

    pub fn parse(s: &str) -> Option<GoLiveState> {
        Some(match s {
            "pending" => GoLiveState::Pending,
            "approved" => GoLiveState::Approved,
            "rejected" => GoLiveState::Rejected,
            _ => return None,
        })
    }
}

/// One operation's sandbox transactions in a report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OperationStats {
    /// Of [`PRODUCTS`] (the Collection Widget's: its invoices); reports made before it was
    /// kept have none, and count an operation of several products together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub product: Option<String>,
    /// [`PaymentKind::as_str`].
    pub kind: String,
    pub total: u64,
    pub successful: u64,
    pub failed: u64,
    /// Still pending when the report was made.
    pub pending: u64,
}

impl OperationStats {
    /// Successful among the final ones, in tenths of a percent (`None` without any).
    pub fn success_permille(&self) -> Option<u64> {
        let done = self.successful + self.failed;
        (done > 0).then(|| (self.successful * 1000 + done / 2) / done)
    }
}

/// A failed transaction the developer handled, as a report lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FailedCase {
    pub reference_id: String,
    pub kind: String,
    pub reason: String,
    /// Minor units, with the currency.
    pub amount_minor: i64,
    pub currency: String,
    pub created_at_ms: i64,
}

/// A developer's sandbox transactions when the request was made.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoLiveReport {
    pub generated_at_ms: i64,
    /// When there were more transactions than a report counts, from when it counted the
    /// newest ([`crate::portal::REPORT_MAX`]); reports made before it was kept have none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<i64>,
    /// Operations with at least one transaction.
    pub operations: Vec<OperationStats>,
    /// The products of [`PRODUCTS`] with at least one successful transaction, in that
    /// order (the Collection Widget's: its invoices). A request asks only for these.
    /// Reports made before it was kept have none.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tested: Vec<String>,
    /// The newest failed cases (up to [`REPORT_FAILED_CASES`]).
    pub failed: Vec<FailedCase>,
}

impl GoLiveReport {
    pub fn total(&self) -> u64 {
        self.operations.iter().map(|o| o.total).sum()
    }

    pub fn failed_total(&self) -> u64 {
        self.operations.iter().map(|o| o.failed).sum()
    }
}

/// A request as the developer submits it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewGoLive {
    pub developer_id: i64,
    pub company: String,
    pub contact: String,
    pub website: String,
    pub use_case: String,
    /// MoMo target environments (`mtnuganda`, …).
    pub markets: Vec<String>,
    /// Of [`PRODUCTS`].
    pub products: Vec<String>,
    /// [`GoLiveReport`] as JSON.
    pub report_json: String,
}

/// A request as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoLiveRequest {
    pub id: i64,
    pub developer_id: i64,
    pub created_at_ms: i64,
    pub state: GoLiveState,
    pub company: String,
    pub contact: String,
    pub website: String,
    pub use_case: String,
    pub markets: Vec<String>,
    pub products: Vec<String>,
    pub report_json: String,
    pub decided_at_ms: Option<i64>,
    /// The operator's developer id.
    pub decided_by: Option<i64>,
    pub comment: Option<String>,
}

impl GoLiveRequest {
    /// The report it was submitted with (empty if it cannot be read).
    pub fn report(&self) -> GoLiveReport {
        serde_json::from_str(&self.report_json).unwrap_or_default()
    }
}

/// Which requests to list, newest first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GoLiveFilter {
    pub developer_id: Option<i64>,
    pub state: Option<GoLiveState>,
    pub limit: u32,
}

/// What a developer's approved requests grant.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveAccess {
    /// Every production environment (the sandbox developer created at start: the
    /// server's own account, trusted as its operator is).
    pub all: bool,
    /// MoMo production target environments.
    pub markets: BTreeSet<String>,
    /// The M-Pesa `openapi` environment.
    pub mpesa: bool,
}

impl LiveAccess {
    /// Whether API users may be created for this target environment.
    pub fn allows_environment(&self, environment: &str) -> bool {
        self.all || environment == crate::SANDBOX || self.markets.contains(environment)
    }
}

/// Why a go-live step was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum GoLiveError {
    #[error("the account is not active")]
    NotActive,
    #[error("a go-live request of this account waits for review")]
    AlreadyPending,
    #[error("no such go-live request")]
    NotFound,
    #[error("the go-live request was decided already")]
    AlreadyDecided,
    #[error("internal error")]
    Internal,
    /// The writer's queue is full, or its commit failed: nothing was done; try again.
    #[error("the platform is busy; try again")]
    Busy,
}

/// Mail a go-live step sends, made by the caller (which knows the links) once the writer
/// has the facts.
pub type SubmitMail = Box<dyn FnOnce(&[(i64, String)]) -> Vec<NewMail> + Send>;
/// The decision mail to the developer, from the decided request and the developer's
/// current e-mail address and name.
pub type DecisionMail = Box<dyn FnOnce(&GoLiveRequest, &str, &str) -> NewMail + Send>;

impl Portal<'_> {
    /// A developer's sandbox transactions now, for a go-live request: counted by operation
    /// and status in one read, over at most the newest `most` of them (where they start is
    /// found in the index, as for the reports), and the newest failed cases.
    pub async fn go_live_report(
        self,
        developer_id: i64,
        most: u64,
    ) -> Result<GoLiveReport, Internal> {
        let since_ms = self
            .portal()
            .report_start(&ReportScope::all(developer_id, 0), most)
            .await?;
        let counts = self.portal().payment_counts(developer_id, since_ms).await?;
        // Per product (in the order of [`PRODUCTS`]) and operation: a disbursement's
        // transfer and a remittance's are told apart, as the widget's invoices are from the
        // Collection API's.
        let operations = PRODUCTS
            .into_iter()
            .flat_map(|product| {
                PaymentKind::ALL
                    .into_iter()
                    .map(move |kind| (product, kind))
            })
            .filter_map(|(product, kind)| {
                let of = |status: Option<PaymentStatus>| -> u64 {
                    counts
                        .iter()
                        .filter(|c| {
                            c.product.as_str() == product
                                && c.kind == kind
                                && status.is_none_or(|s| c.status == s)
                        })
                        .map(|c| c.count)
                        .sum()
                };
                let (total, successful, failed) = (
                    of(None),
                    of(Some(PaymentStatus::Successful)),
                    of(Some(PaymentStatus::Failed)),
                );
                (total > 0).then(|| OperationStats {
                    product: Some(product.to_owned()),
                    kind: kind.as_str().to_owned(),
                    total,
                    successful,
                    failed,
                    pending: total.saturating_sub(successful + failed),
                })
            })
            .collect();
        let tested = PRODUCTS
            .into_iter()
            .filter(|product| {
                counts.iter().any(|c| {
                    c.product.as_str() == *product
                        && c.status == PaymentStatus::Successful
                        && c.count > 0
                })
            })
            .map(str::to_owned)
            .collect();
        let filter = PaymentFilter {
            developer_id,
            status: Some(PaymentStatus::Failed),
            from_ms: since_ms,
            environment: Some(crate::portal::Environments::Sandbox),
            limit: REPORT_FAILED_CASES,
            ..PaymentFilter::default()
        };
        let (failed, _) = self.portal().payments_after(&filter).await?;
        let failed = failed
            .iter()
            .map(|p| FailedCase {
                reference_id: p.reference_id.to_string(),
                kind: p.kind.as_str().to_owned(),
                reason: p.reason.map(|r| r.as_str().to_owned()).unwrap_or_default(),
                amount_minor: p.amount.minor(),
                currency: p.amount.currency().as_str().to_owned(),
                created_at_ms: p.created_at_ms,
            })
            .collect();
        Ok(GoLiveReport {
            generated_at_ms: self.now_ms(),
            since_ms,
            operations,
            tested,
            failed,
        })
    }

    /// Submits a go-live request; `mail` makes the receipt and the operators' notices from
    /// the operators' ids and addresses, queued in the same commit.
    pub async fn request_go_live(
        self,
        request: NewGoLive,
        mail: SubmitMail,
    ) -> Result<(), GoLiveError> {
        let result = self
            .call(
                |reply: oneshot::Sender<Result<(), GoLiveError>>| {
                    Command::Portal(PortalCommand::SubmitGoLive {
                        request,
                        mail,
                        reply,
                    })
                },
                Err(GoLiveError::Busy),
            )
            .await;
        self.inner.mail_wake.notify_one();
        result
    }

    /// An operator approves or rejects a pending request; `mail` tells the developer.
    pub async fn decide_go_live(
        self,
        id: i64,
        operator_id: i64,
        approve: bool,
        comment: &str,
        mail: DecisionMail,
    ) -> Result<(), GoLiveError> {
        let comment = comment.trim().to_owned();
        let result = self
            .call(
                |reply| {
                    Command::Portal(PortalCommand::DecideGoLive {
                        id,
                        operator_id,
                        approve,
                        comment,
                        mail,
                        reply,
                    })
                },
                Err(GoLiveError::Busy),
            )
            .await;
        self.inner.mail_wake.notify_one();
        result
    }

    /// Go-live requests, newest first.
    pub async fn go_live_requests(
        self,
        filter: &GoLiveFilter,
    ) -> Result<Vec<GoLiveRequest>, Internal> {
        let mut filter = filter.clone();
        filter.limit = filter.limit.clamp(1, 500);
        let filter = filter.to_owned();
        self.inner
            .portal_reads
            .read(move |r| r.golive_requests(&filter))
            .await
    }

    /// One go-live request.
    pub async fn go_live_request(self, id: i64) -> Result<Option<GoLiveRequest>, Internal> {
        self.inner
            .portal_reads
            .read(move |r| r.golive_request(id))
            .await
    }

    /// What a developer's approved go-live requests grant.
    pub async fn live_access(self, developer_id: i64) -> Result<LiveAccess, Internal> {
        if developer_id == crate::SANDBOX_DEVELOPER {
            return Ok(LiveAccess {
                all: true,
                markets: BTreeSet::new(),
                mpesa: true,
            });
        }
        let approved = self
            .portal()
            .go_live_requests(&GoLiveFilter {
                developer_id: Some(developer_id),
                state: Some(GoLiveState::Approved),
                limit: 500,
            })
            .await?;
        let mut access = LiveAccess::default();
        for r in approved {
            access.markets.extend(r.markets);
            access.mpesa |= r.products.iter().any(|p| p == MPESA);
        }
        Ok(access)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn success_rates_round_to_tenths_of_a_percent() {
        let op = |successful, failed| OperationStats {
            product: None,
            kind: "request_to_pay".into(),
            total: successful + failed,
            successful,
            failed,
            pending: 0,
        };
        assert_eq!(op(0, 0).success_permille(), None);
        assert_eq!(op(3, 0).success_permille(), Some(1000));
        assert_eq!(op(2, 1).success_permille(), Some(667));
        assert_eq!(op(1, 7).success_permille(), Some(125));
    }

    #[test]
    fn reports_survive_a_round_trip() {
        let report = GoLiveReport {
            generated_at_ms: 5,
            since_ms: Some(3),
            operations: vec![OperationStats {
                product: Some("disbursement".into()),
                kind: "transfer".into(),
                total: 4,
                successful: 3,
                failed: 1,
                pending: 0,
            }],
            tested: vec!["disbursement".into()],
            failed: vec![],
        };
        let r = GoLiveRequest {
            id: 1,
            developer_id: 2,
            created_at_ms: 5,
            state: GoLiveState::Pending,
            company: String::new(),
            contact: String::new(),
            website: String::new(),
            use_case: String::new(),
            markets: vec![],
            products: vec![],
            report_json: serde_json::to_string(&report).unwrap(),
            decided_at_ms: None,
            decided_by: None,
            comment: None,
        };
        assert_eq!(r.report(), report);
        assert_eq!(r.report().total(), 4);
        assert_eq!(r.report().failed_total(), 1);
        // Reports stored before `since_ms` and `tested` were kept read as counting
        // everything and naming no product.
        let stored = r#"{"generated_at_ms":5,"operations":[],"failed":[]}"#;
        let old: GoLiveReport = serde_json::from_str(stored).unwrap();
        assert_eq!(old.since_ms, None);
        assert!(old.tested.is_empty());
        let unbounded = GoLiveReport {
            since_ms: None,
            ..report
        };
        assert!(
            !serde_json::to_string(&unbounded)
                .unwrap()
                .contains("since_ms")
        );
    }

    #[test]
    fn sandbox_is_always_allowed() {
        let mut access = LiveAccess::default();
        assert!(access.allows_environment("sandbox"));
        assert!(!access.allows_environment("mtnuganda"));
        access.markets.insert("mtnuganda".into());
        assert!(access.allows_environment("mtnuganda"));
    }
}
