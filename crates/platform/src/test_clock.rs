//! Test clocks: a partner's own time, moved on demand (issue 19).
//!
//! Expiry paths take hours or days in real time: a payment whose settle delay is an hour,
//! an invoice past its `validityDuration`, a token past `expires_in`, an M-Pesa session past
//! its lifetime. A test clock is attached to one API user (an M-Pesa application has one
//! too) and starts at a time the partner chooses; from then on everything of that API user
//! runs on the clock's time, which stands still until the partner advances it. Advancing
//! settles, in due order and each at its own due time, every payment of the API user that
//! became due: as real time would have, in milliseconds. Real-time API users are never
//! affected.
//!
//! The rules:
//! * A clock is attached to an API user with no payments yet, so every payment of an API
//!   user with a clock was made on that clock (and a restart finds them so); such payments
//!   are marked `test_clock` in `/_mkoba/transactions`.
//! * Time only moves forward.
//! * Deleting a clock ends its API user's pending payments as `EXPIRED` (reservations
//!   released, callbacks sent) and returns the API user to real time.
//! * At most [`MAX_CLOCKS_PER_DEVELOPER`] clocks per developer account.
//!
//! Test clocks live in the writer's memory like balances, which publishes them to the
//! request handlers after each commit. With several PostgreSQL nodes, a node takes in the
//! clocks another changed at the start of its next pass (`writer_log.clocks_seq`), like
//! subscription keys.

use crate::TestClocks;
use std::time::Duration;

use tokio::sync::oneshot;
use uuid::Uuid;

use crate::Platform;
use crate::engine::Command;

/// Test clocks by the API user they drive: the writer publishes them after each commit
/// (and after taking in another node's), the request handlers read them, and whoever waits
/// for a clock to reach a time (the callback dispatcher's retries) is told of each change.
#[derive(Clone)]
pub(crate) struct Clocks(std::sync::Arc<Board>);

pub(crate) struct Board {
    by_api_user: std::sync::RwLock<foldhash::HashMap<Uuid, TestClock>>,
    /// Counts publications.
    changed: tokio::sync::watch::Sender<u64>,
}

impl std::fmt::Debug for Clocks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_map().entries(self.read().iter()).finish()
    }
}

impl Default for Clocks {
    fn default() -> Clocks {
        Clocks(std::sync::Arc::new(Board {
            by_api_user: Default::default(),
            changed: tokio::sync::watch::channel(0).0,
        }))
    }
}

impl Clocks {
    pub(crate) fn read(
        &self,
    ) -> std::sync::RwLockReadGuard<'_, foldhash::HashMap<Uuid, TestClock>> {
        self.0.by_api_user.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Replaces the clocks and tells those waiting.
    pub(crate) fn publish(&self, clocks: foldhash::HashMap<Uuid, TestClock>) {
        *self
            .0
            .by_api_user
            .write()
            .unwrap_or_else(|e| e.into_inner()) = clocks;
        self.0.changed.send_modify(|n| *n = n.wrapping_add(1));
    }
}

/// Most test clocks one developer account may have.
pub const MAX_CLOCKS_PER_DEVELOPER: usize = 20;

/// The furthest one advance may move a clock: a year.
pub const MAX_ADVANCE: Duration = Duration::from_secs(366 * 86_400);

/// The latest time a test clock may show: 9899-12-31T23:59:59Z, a hundred years before the
/// end of the year 9999, so that every time counted from it (a token's expiry, an invoice
/// valid for a hundred years) is still a date the APIs can write.
pub const LAST_MS: i64 = 250_246_627_199_000;

/// A span of time as people write it: a whole number and a unit, `s`, `m`, `h` or `d`
/// (`90s`, `15m`, `3h`, `2d`).
pub fn parse_span(text: &str) -> Option<Duration> {
    let text = text.trim();
    let unit = text.chars().last()?;
    // Digits only: `u64`'s parser also takes a sign (`+5s`), which `seconds` and the CLI
    // refuse.
    let digits = text[..text.len() - unit.len_utf8()].trim_end();
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let n: u64 = digits.parse().ok()?;
    let secs = match unit {
        's' => 1,
        'm' => 60,
        'h' => 3600,
        'd' => 86_400,
        _ => return None,
    };
    n.checked_mul(secs).map(Duration::from_secs)
}

/// Why a span [`parse_span`] did not take (`unit`: written with one) was refused, when it
/// is a number after all: a negative one ([`ClockError::Backwards`]) or one too large to
/// count ([`ClockError::TooFar`]). `None`: it is not a number (and a unit).
pub fn span_refusal(text: &str, unit: bool) -> Option<ClockError> {
    let text = text.trim();
    let (backwards, rest) = match text.strip_prefix('-') {
        Some(rest) => (true, rest.trim()),
        None => (false, text),
    };
    let digits = if unit {
        rest.strip_suffix(['s', 'm', 'h', 'd'])
    } else {
        Some(rest)
    };
    if !digits.is_some_and(|d| !d.is_empty() && d.bytes().all(|b| b.is_ascii_digit())) {
        None
    } else if backwards {
        Some(ClockError::Backwards)
    } else {
        Some(ClockError::TooFar)
    }
}

/// A test clock and the API user it drives.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestClock {
    pub id: Uuid,
    pub developer_id: i64,
    pub api_user: Uuid,
    pub name: String,
    /// The clock's time, in milliseconds since the Unix epoch.
    pub now_ms: i64,
    pub created_at_ms: i64,
}

/// A change to the `test_clocks` rows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ClockWrite {
    /// Created or advanced: the whole row.
    Put(TestClock),
    /// Deleted.
    Delete(Uuid),
}

/// Why a test clock request was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum ClockError {
    #[error("no such test clock, or API user, of this developer")]
    NotFound,
    #[error("the API user already has a test clock")]
    Attached,
    #[error("the API user has payments already; a test clock starts with a new API user")]
    HasPayments,
    #[error("the API user has payments still open; a clock can be made for it once they are final")]
    HasOpenPayments,
    #[error("a test clock only moves forward")]
    Backwards,
    #[error("one advance moves a test clock at most 366 days")]
    TooFar,
    #[error("a test clock runs to the end of the year 9899 at most")]
    PastTheEnd,
    #[error("this developer has {MAX_CLOCKS_PER_DEVELOPER} test clocks already")]
    TooMany,
    #[error("the platform cannot store it now; try again")]
    Unavailable,
}

/// Test clock work for the writer.
pub(crate) enum ClockCommand {
    /// Attaches a new clock; `settled_refuse`: a settled payment of its API user refuses it
    /// too (not for an M-Pesa application's, which may get a clock again once nothing of
    /// it is open).
    Create {
        clock: TestClock,
        settled_refuse: bool,
        reply: oneshot::Sender<Result<(), ClockError>>,
    },
    /// Moves the clock on by `by_ms` from where the writer finds it, so that advances sent
    /// at once add up.
    Advance {
        developer_id: i64,
        id: Uuid,
        by_ms: i64,
        reply: oneshot::Sender<Result<TestClock, ClockError>>,
    },
    Delete {
        developer_id: i64,
        id: Uuid,
        reply: oneshot::Sender<Result<(), ClockError>>,
    },
}

impl Platform {
    fn board(&self) -> std::sync::RwLockReadGuard<'_, foldhash::HashMap<Uuid, TestClock>> {
        self.inner.clocks.read()
    }
}

impl TestClocks<'_> {
    /// The time an API user runs on: its test clock's, else the platform's.
    pub fn now_for(self, api_user: &Uuid) -> i64 {
        match self.board().get(api_user) {
            Some(c) => c.now_ms,
            None => self.now_ms(),
        }
    }

    /// Whether something an API user was given at `issued_ms` (on its time then) has expired
    /// because its clock was deleted since: on real time, nothing is issued ahead of now (a
    /// minute allowed for the system clock stepping back), so what was made on a clock
    /// ahead of real time lasts no longer than the clock did. Tokens and consents ask this
    /// beside their own expiry.
    pub fn issued_ahead(self, api_user: &Uuid, issued_ms: i64) -> bool {
        const SLACK_MS: i64 = 60_000;
        let board = self.board();
        !board.contains_key(api_user) && issued_ms > self.now_ms() + SLACK_MS
    }

    /// Waits until `at_ms` has come: in real time, or, for an API user on a test clock
    /// (`clocked`), until its clock is advanced that far; a deleted clock returns its API
    /// user to real time, so the wait then ends at once.
    pub async fn wait_until(self, clocked: Option<&Uuid>, at_ms: i64) {
        let Some(api_user) = clocked else {
            let wait = at_ms - self.now_ms();
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            return;
        };
        // Subscribed before looking, so a change in between is not missed.
        let mut changed = self.inner.clocks.0.changed.subscribe();
        loop {
            let now = self.board().get(api_user).map(|c| c.now_ms);
            if now.is_none_or(|now| now >= at_ms) || changed.changed().await.is_err() {
                return;
            }
        }
    }

    /// Whether any API user runs on a test clock.
    pub fn any(self) -> bool {
        !self.board().is_empty()
    }

    /// The test clock of an API user, if it has one.
    pub fn of(self, api_user: &Uuid) -> Option<TestClock> {
        self.board().get(api_user).cloned()
    }

    /// A developer's test clock by id.
    pub fn get(self, developer_id: i64, id: &Uuid) -> Option<TestClock> {
        self.board()
            .values()
            .find(|c| c.id == *id && c.developer_id == developer_id)
            .cloned()
    }

    /// A developer's test clocks, oldest first.
    pub fn list(self, developer_id: i64) -> Vec<TestClock> {
        let mut all: Vec<TestClock> = self
            .board()
            .values()
            .filter(|c| c.developer_id == developer_id)
            .cloned()
            .collect();
        all.sort_by_key(|c| (c.created_at_ms, c.id));
        all
    }

    /// Attaches a new test clock, standing at `start_ms` (the platform's time when `None`),
    /// to one of the developer's API users.
    pub async fn create(
        self,
        developer_id: i64,
        api_user: Uuid,
        name: String,
        start_ms: Option<i64>,
    ) -> Result<TestClock, ClockError> {
        let application = match self.credentials().api_user(&api_user).await {
            Ok(Some(u)) if u.developer_id == developer_id => {
                u.target_environment == crate::mpesa::APP_ENVIRONMENT
            }
            Ok(_) => return Err(ClockError::NotFound),
            Err(_) => return Err(ClockError::Unavailable),
        };
        // One clock an API user (the writer checks it again, race-free), answered before
        // whether it has payments, so a second clock is 409 whatever the first did.
        if self.of(&api_user).is_some() {
            return Err(ClockError::Attached);
        }
        // The writer refuses an API user with pending payments, and with settled ones
        // (race-free: one made and settled while this request waited is its to see); they
        // are looked for here first, to spare the writer a useless command (the newest
        // one, not a count). Not for an M-Pesa application's: a developer has that one API
        // user for M-Pesa, and it could never have a clock again after its first payment.
        if !application {
            let (made, _) = self
                .portal()
                .payments_after(&crate::portal::PaymentFilter {
                    developer_id,
                    api_user: Some(api_user),
                    limit: 1,
                    ..crate::portal::PaymentFilter::default()
                })
                .await
                .map_err(|_| ClockError::Unavailable)?;
            if !made.is_empty() {
                return Err(ClockError::HasPayments);
            }
        }
        let now_ms = start_ms.unwrap_or_else(|| self.now_ms());
        if !(0..=LAST_MS).contains(&now_ms) {
            return Err(ClockError::PastTheEnd);
        }
        let clock = TestClock {
            id: Uuid::new_v4(),
            developer_id,
            api_user,
            name,
            now_ms,
            created_at_ms: self.now_ms(),
        };
        let sent = clock.clone();
        self.call(
            |reply| {
                Command::Clock(ClockCommand::Create {
                    clock: sent,
                    settled_refuse: !application,
                    reply,
                })
            },
            Err(ClockError::Unavailable),
        )
        .await?;
        Ok(clock)
    }

    /// Brings this node's test clocks up to what every node committed: on a store other
    /// nodes share, one pass of the writer (which takes in their changes first); a store
    /// with one writer is always up to date. `false` when the pass failed.
    pub async fn caught_up(self) -> bool {
        !self.inner.shared_store || self.wake().await
    }

    /// [`TestClocks::caught_up`] for a request that may be anyone's (a token that looks
    /// expired): its pass is counted against the requests waiting for the writer
    /// (`max_queued`), so a flood of them is refused at once instead of crowding out the
    /// callback dispatcher's commands.
    pub async fn caught_up_for_request(self) -> bool {
        !self.inner.shared_store || self.call(crate::engine::Command::Wake, false).await
    }

    /// Whether the clock is unknown here, so the writer need not be asked: on a store other
    /// nodes share, only the writer knows (another node may have just made it).
    fn surely_unknown(self, developer_id: i64, id: &Uuid) -> bool {
        !self.inner.shared_store && self.clocks().get(developer_id, id).is_none()
    }

    /// Moves a developer's test clock forward by `by`, and returns once everything that
    /// became due is settled and committed.
    pub async fn advance(
        self,
        developer_id: i64,
        id: Uuid,
        by: Duration,
    ) -> Result<TestClock, ClockError> {
        if by > MAX_ADVANCE {
            return Err(ClockError::TooFar);
        }
        if self.surely_unknown(developer_id, &id) {
            return Err(ClockError::NotFound);
        }
        let by_ms = by.as_millis() as i64;
        self.call(
            |reply| {
                Command::Clock(ClockCommand::Advance {
                    developer_id,
                    id,
                    by_ms,
                    reply,
                })
            },
            Err(ClockError::Unavailable),
        )
        .await
    }

    /// Deletes a developer's test clock: its API user's pending payments end as `EXPIRED`
    /// and the API user runs on real time again.
    pub async fn delete(self, developer_id: i64, id: Uuid) -> Result<(), ClockError> {
        if self.surely_unknown(developer_id, &id) {
            return Err(ClockError::NotFound);
        }
        self.call(
            |reply| {
                Command::Clock(ClockCommand::Delete {
                    developer_id,
                    id,
                    reply,
                })
            },
            Err(ClockError::Unavailable),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_read_as_people_write_them() {
        assert_eq!(parse_span("90s"), Some(Duration::from_secs(90)));
        assert_eq!(parse_span("15m"), Some(Duration::from_secs(900)));
        assert_eq!(parse_span(" 3h "), Some(Duration::from_secs(10_800)));
        assert_eq!(parse_span("2d"), Some(Duration::from_secs(172_800)));
        assert_eq!(parse_span("1 h"), Some(Duration::from_secs(3600)));
        for bad in [
            "",
            "d",
            "3",
            "3w",
            "-1d",
            "+5s",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_span(bad), None, "{bad}");
        }
    }
}
