//! The writer's side of test clocks (`crate::test_clock`): which time a payment runs on,
//! and creating, advancing and deleting clocks.

use std::cmp::Reverse;

use uuid::Uuid;

use super::{Command, Engine, Pass, defer};
use crate::test_clock::{ClockCommand, ClockError, ClockWrite, MAX_CLOCKS_PER_DEVELOPER};

impl Engine {
    /// The time an API user's payments run on: its test clock's, else the pass's.
    pub(super) fn time_for(&self, api_user: &Uuid, now: i64) -> i64 {
        self.clocks.get(api_user).map_or(now, |c| c.now_ms)
    }

    /// Queues a pending payment to be settled at `at`: on its API user's test clock when it
    /// has one, else on real time.
    pub(super) fn schedule(&mut self, at: i64, id: Uuid) {
        let clock_user = self
            .pending
            .get(&id)
            .map(|p| p.api_user)
            .filter(|u| self.clocks.contains_key(u));
        match clock_user {
            Some(user) => self
                .clock_due
                .entry(user)
                .or_default()
                .push(Reverse((at, id))),
            None => self.due.push(Reverse((at, id))),
        }
    }

    /// Hands the clocks as committed to the request handlers.
    pub(super) fn publish_clocks(&self) {
        self.published_clocks.publish(self.clocks.clone());
    }

    /// Takes in the clocks as another node left them, and requeues every pending payment on
    /// the time it now runs on.
    pub(super) fn take_clocks(&mut self, clocks: Vec<crate::test_clock::TestClock>) {
        self.clocks = clocks.into_iter().map(|c| (c.api_user, c)).collect();
        self.due.clear();
        self.clock_due.clear();
        let due: Vec<(i64, Uuid)> = self
            .pending
            .values()
            .filter_map(|p| p.settle_at_ms.map(|at| (at, p.reference_id)))
            .collect();
        for (at, id) in due {
            self.schedule(at, id);
        }
        self.publish_clocks();
    }

    /// Whether a payment is due now on some test clock (its clock stands at or past its
    /// due time: accepted with no delay, or left by an advance that hit the batch limit).
    pub(super) fn clock_due_now(&self) -> bool {
        self.clock_due.iter().any(|(user, due)| {
            due.peek().is_some_and(|Reverse((at, _))| {
                self.clocks.get(user).is_some_and(|c| *at <= c.now_ms)
            })
        })
    }

    /// Settles, up to `budget`, the payments due on their clocks' current time.
    pub(super) fn settle_clocks_due(&mut self, pass: &mut Pass, budget: usize) {
        if self.clock_due.is_empty() {
            return;
        }
        let users: Vec<Uuid> = self.clock_due.keys().copied().collect();
        let mut settled = 0;
        for user in users {
            let Some(now) = self.clocks.get(&user).map(|c| c.now_ms) else {
                continue;
            };
            while settled < budget {
                let next = self
                    .clock_due
                    .get_mut(&user)
                    .and_then(|due| match due.peek() {
                        Some(Reverse((at, _))) if *at <= now => due.pop(),
                        _ => None,
                    });
                let Some(Reverse((_, id))) = next else { break };
                self.settle_decided(pass, id, now, None);
                settled += 1;
            }
        }
    }

    pub(super) fn apply_clock(&mut self, pass: &mut Pass, command: ClockCommand) {
        match command {
            ClockCommand::Create {
                clock,
                settled_refuse,
                reply,
            } => {
                let result = self.attach(pass, &clock, settled_refuse);
                if result.is_ok() {
                    pass.batch.test_clocks.push(ClockWrite::Put(clock));
                }
                defer(pass, reply, result, Err(ClockError::Unavailable));
            }
            ClockCommand::Advance {
                developer_id,
                id,
                by_ms,
                reply,
            } => {
                // A payment of the clock's API user accepted earlier in this pass is not
                // due anywhere yet (it is scheduled once committed, and settled in a later
                // pass than its accept): the advance waits for the next pass, which settles
                // it at its own due time before answering (an audit saw such a payment
                // settle after the advance's answer, at the clock's new time).
                let accepted_here = self.owned_clock(developer_id, id).is_ok_and(|(user, _)| {
                    pass.batch.new_payments.iter().any(|p| p.api_user == user)
                });
                if accepted_here {
                    self.carried.push(Command::Clock(ClockCommand::Advance {
                        developer_id,
                        id,
                        by_ms,
                        reply,
                    }));
                    return;
                }
                let result = self.advance(pass, developer_id, id, by_ms);
                defer(pass, reply, result, Err(ClockError::Unavailable));
            }
            ClockCommand::Delete {
                developer_id,
                id,
                reply,
            } => {
                let result = self.detach(pass, developer_id, id);
                defer(pass, reply, result, Err(ClockError::Unavailable));
            }
        }
    }

    fn attach(
        &mut self,
        pass: &Pass,
        clock: &crate::test_clock::TestClock,
        settled_refuse: bool,
    ) -> Result<(), ClockError> {
        if self.clocks.contains_key(&clock.api_user) {
            return Err(ClockError::Attached);
        }
        let mine = self
            .clocks
            .values()
            .filter(|c| c.developer_id == clock.developer_id)
            .count();
        if mine >= MAX_CLOCKS_PER_DEVELOPER {
            return Err(ClockError::TooMany);
        }
        let user = clock.api_user;
        let refused = if settled_refuse {
            ClockError::HasPayments
        } else {
            ClockError::HasOpenPayments
        };
        if self.pending.values().any(|p| p.api_user == user)
            || pass.batch.new_payments.iter().any(|p| p.api_user == user)
        {
            return Err(refused);
        }
        // A payment made and settled at once between the request's own look and this
        // command would otherwise run on real time under a clock that says another.
        if settled_refuse {
            match self.journal.api_user_has_payments(&user) {
                Ok(false) => {}
                Ok(true) => return Err(ClockError::HasPayments),
                Err(e) => {
                    tracing::error!(error = %e, "reading an API user's payments for a test clock failed");
                    return Err(ClockError::Unavailable);
                }
            }
        }
        match self.journal.api_user_exists(&user) {
            Ok(true) => {}
            Ok(false) => return Err(ClockError::NotFound),
            Err(e) => {
                tracing::error!(error = %e, "reading an API user for a test clock failed");
                return Err(ClockError::Unavailable);
            }
        }
        self.clocks.insert(user, clock.clone());
        Ok(())
    }

    /// Moves the clock on by `by_ms`, settling every payment that became due on the way, in
    /// due order and each at its due time.
    fn advance(
        &mut self,
        pass: &mut Pass,
        developer_id: i64,
        id: Uuid,
        by_ms: i64,
    ) -> Result<crate::test_clock::TestClock, ClockError> {
        let (user, start) = self.owned_clock(developer_id, id)?;
        if by_ms < 0 {
            return Err(ClockError::Backwards);
        }
        let to_ms = start.saturating_add(by_ms);
        if to_ms > crate::test_clock::LAST_MS {
            return Err(ClockError::PastTheEnd);
        }
        loop {
            let next = self
                .clock_due
                .get(&user)
                .and_then(|due| due.peek())
                .map(|Reverse((at, id))| (*at, *id));
            let Some((at, payment)) = next.filter(|(at, _)| *at <= to_ms) else {
                break;
            };
            if let Some(due) = self.clock_due.get_mut(&user) {
                due.pop();
            }
            let Some(c) = self.clocks.get_mut(&user) else {
                return Err(ClockError::NotFound);
            };
            c.now_ms = c.now_ms.max(at);
            let now = c.now_ms;
            self.settle_decided(pass, payment, now, None);
        }
        let Some(clock) = self.clocks.get_mut(&user) else {
            return Err(ClockError::NotFound);
        };
        clock.now_ms = to_ms;
        let clock = clock.clone();
        pass.batch.test_clocks.push(ClockWrite::Put(clock.clone()));
        Ok(clock)
    }

    /// Deletes the clock: its API user's pending payments end as EXPIRED, at the clock's
    /// time but never after real time, and the API user returns to real time.
    fn detach(&mut self, pass: &mut Pass, developer_id: i64, id: Uuid) -> Result<(), ClockError> {
        let (user, clock_now) = self.owned_clock(developer_id, id)?;
        let mut pending: Vec<(i64, Uuid)> = self
            .pending
            .values()
            .filter(|p| p.api_user == user)
            .map(|p| (p.created_at_ms, p.reference_id))
            .collect();
        pending.sort();
        // What was pending ends at the clock's time, the last its payments ran on, but never
        // after real time (a clock advanced past today put the settlement in the future,
        // days long in the latency report) nor before a payment was made (on a clock set
        // ahead of real time).
        self.clocks.remove(&user);
        self.clock_due.remove(&user);
        let now = clock_now.min(self.settings.clock.now_ms());
        for (created, payment) in pending {
            self.settle_decided(
                pass,
                payment,
                now.max(created),
                Some(Err(crate::reason::FailureReason::Expired)),
            );
        }
        pass.batch.test_clocks.push(ClockWrite::Delete(id));
        Ok(())
    }

    /// The API user driven by the developer's clock `id`, and the clock's time.
    fn owned_clock(&self, developer_id: i64, id: Uuid) -> Result<(Uuid, i64), ClockError> {
        self.clocks
            .values()
            .find(|c| c.id == id && c.developer_id == developer_id)
            .map(|c| (c.api_user, c.now_ms))
            .ok_or(ClockError::NotFound)
    }
}
