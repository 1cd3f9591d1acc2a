//! A node's lease on the callbacks it holds, as far as the node itself can vouch for it.
//!
//! With several nodes on one database (PostgreSQL), each callback row belongs to one node,
//! and a node not seen for its lease is taken for gone: the next node to look takes its
//! pending callbacks over and sends them. A node that was not gone but paused (SIGSTOP, a
//! frozen VM, a stalled heartbeat connection) for longer than its lease still holds those
//! callbacks in memory when it resumes, and would send them a second time.
//!
//! So the node's dispatcher sends only while the lease is *fresh*: the last heartbeat the
//! database confirmed was issued less than three quarters of the lease ago (the quarter
//! left covers the delay between the check and the request, and clocks that differ a
//! little between machines). Another node takes over only after a whole lease without a
//! heartbeat, so while the lease is fresh nothing this node holds can have been taken.
//!
//! A takeover can only have happened while no heartbeat was confirmed for that long. When
//! a confirmed heartbeat comes later than that after the one before, the lease starts a new
//! *generation*. Every callback the dispatcher holds carries the generation it was known to
//! be this node's under (read before the writer committed it, or before the sweep read it);
//! one from an earlier generation is read again from the database before it is sent, and
//! dropped when it is no longer this node's. In the normal case (a heartbeat a second, a
//! lease of ten) nothing is read again and nothing waits.
//!
//! A single node (SQLite) has no lease: nobody else can take its callbacks.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;

/// A node's lease; cloning shares it.
#[derive(Debug, Clone)]
pub struct Lease {
    held: Arc<watch::Sender<Held>>,
    /// How long after a confirmed heartbeat was issued the lease counts as fresh.
    fresh_for: Duration,
}

#[derive(Debug, Clone, Copy)]
struct Held {
    generation: u64,
    /// When the last heartbeat the database confirmed was issued (none yet: not fresh).
    issued: Option<Instant>,
    /// The database's time when it wrote that heartbeat, in ms, if it said.
    written_ms: Option<i64>,
    /// When the current generation began (its first confirmed heartbeat's answer).
    began: Option<Instant>,
}

impl Lease {
    /// A lease that other nodes end after `length` without a heartbeat; not fresh until a
    /// first heartbeat is confirmed ([`Lease::renewed`]).
    pub fn new(length: Duration) -> Lease {
        Lease {
            held: Arc::new(watch::Sender::new(Held {
                generation: 0,
                issued: None,
                written_ms: None,
                began: None,
            })),
            fresh_for: length - length / 4,
        }
    }

    /// Records that a heartbeat issued at `issued` is in the database. When the one before
    /// was issued too long before this one's answer (now), another node may have taken this
    /// node's callbacks in between: a new generation begins.
    ///
    /// `written_ms`, the database's own time when it wrote the heartbeat, catches what this
    /// node's clock cannot: a machine frozen whole (a paused VM) may find its monotonic
    /// clock stood still meanwhile, while the database's went on, and the others took its
    /// callbacks over. (Until this beat, such a node still counts its lease as fresh: at
    /// most one heartbeat interval after it resumes.)
    pub fn renewed(&self, issued: Instant, written_ms: Option<i64>) {
        self.renewed_at(issued, Instant::now(), written_ms);
    }

    fn renewed_at(&self, issued: Instant, now: Instant, written_ms: Option<i64>) {
        self.held.send_modify(|held| {
            let fresh_ms = self.fresh_for.as_millis() as i64;
            let server_lapsed = matches!((held.written_ms, written_ms),
                (Some(before), Some(written)) if written - before >= fresh_ms);
            if server_lapsed
                || held
                    .issued
                    .is_none_or(|before| now.saturating_duration_since(before) >= self.fresh_for)
            {
                held.generation += 1;
                held.began = Some(now);
                if held.issued.is_some() {
                    tracing::warn!(
                        generation = held.generation,
                        "this node's heartbeat lapsed for most of its lease; callbacks it holds are checked against the database before they are sent"
                    );
                }
            }
            held.issued = Some(held.issued.map_or(issued, |before| before.max(issued)));
            held.written_ms = written_ms.or(held.written_ms);
        });
    }

    /// How long this node has held its lease without a lapse (since its current generation
    /// began); `None` before its first heartbeat. A node takes another's callbacks over
    /// only once it has held its own for a whole lease: after an outage of the database,
    /// which stops every node's heartbeat at once, the other live nodes then had the same
    /// time to beat again, and are not taken for gone.
    pub fn held_for(&self) -> Option<Duration> {
        self.held.borrow().began.map(|at| at.elapsed())
    }

    /// Whether the lease is fresh now: the last heartbeat the database confirmed was issued
    /// less than three quarters of the lease ago. A node whose lease is not fresh cannot
    /// tell that its heartbeat has not lapsed (the database just came back, and its
    /// heartbeat thread has not yet confirmed a beat to start the new generation), so it
    /// takes nobody's callbacks over.
    pub fn is_fresh(&self) -> bool {
        self.held
            .borrow()
            .issued
            .is_some_and(|at| at.elapsed() < self.fresh_for)
    }

    /// The current generation, fresh or not: what the writer stamps on the callbacks it is
    /// about to commit.
    pub fn generation(&self) -> u64 {
        self.held.borrow().generation
    }

    /// Waits until the lease is fresh, and returns its generation.
    pub async fn fresh(&self) -> u64 {
        let mut held = self.held.subscribe();
        loop {
            let seen = *held.borrow_and_update();
            let left = seen
                .issued
                .map(|at| (at + self.fresh_for).saturating_duration_since(Instant::now()));
            match left {
                Some(left) if !left.is_zero() => return seen.generation,
                _ => {
                    // The sender lives as long as this lease: `changed` fails only if it
                    // was dropped, which `self` prevents.
                    let _ = held.changed().await;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `fresh` answers without waiting, if anything.
    async fn fresh_now(lease: &Lease) -> Option<u64> {
        let mut fresh = std::pin::pin!(lease.fresh());
        std::future::poll_fn(|cx| {
            std::task::Poll::Ready(match fresh.as_mut().poll(cx) {
                std::task::Poll::Ready(generation) => Some(generation),
                std::task::Poll::Pending => None,
            })
        })
        .await
    }

    /// After a lapse (the database down longer than most of the lease stops every node's
    /// heartbeat at once), the lease counts as held again only from the beat that ended it,
    /// so the node waits a whole lease before it takes another node's callbacks over.
    #[test]
    fn a_lapse_starts_the_time_the_lease_is_held_again() {
        let lease = Lease::new(Duration::from_secs(60));
        assert_eq!(lease.held_for(), None, "no heartbeat yet");
        let t0 = Instant::now() - Duration::from_secs(300);
        lease.renewed_at(t0, t0, None);
        lease.renewed_at(
            t0 + Duration::from_secs(30),
            t0 + Duration::from_secs(31),
            None,
        );
        assert!(
            lease.held_for().unwrap() >= Duration::from_secs(299),
            "held since t0"
        );
        // Fifty seconds without a confirmed beat: not fresh (long before the new beat
        // confirms the lapse; in the meantime the generation and the time held still read
        // as before it), then a lapse, and a new start.
        assert!(!lease.is_fresh());
        assert!(lease.held_for().unwrap() >= Duration::from_secs(299));
        let back = t0 + Duration::from_secs(81);
        lease.renewed_at(back, back, None);
        let held = lease.held_for().unwrap();
        assert!(
            held < Duration::from_secs(300 - 80) && held >= Duration::from_secs(300 - 82),
            "{held:?}"
        );
        let now = Instant::now();
        lease.renewed_at(now, now, None);
        assert!(lease.is_fresh());
    }

    #[tokio::test]
    async fn a_lease_is_fresh_after_a_heartbeat_and_a_lapse_starts_a_generation() {
        let minute = Duration::from_secs(60);
        let lease = Lease::new(minute);
        // Not fresh before the first heartbeat; the first one starts generation 1.
        assert_eq!(fresh_now(&lease).await, None);
        let t0 = Instant::now();
        lease.renewed_at(t0, t0, None);
        assert_eq!(fresh_now(&lease).await, Some(1));
        // Heartbeats answered within three quarters of the lease keep the generation.
        lease.renewed_at(
            t0 + Duration::from_secs(10),
            t0 + Duration::from_secs(44),
            None,
        );
        assert_eq!(lease.generation(), 1);
        // An answer 45 s or more after the last issued one begins a new generation.
        lease.renewed_at(
            t0 + Duration::from_secs(50),
            t0 + Duration::from_secs(55),
            None,
        );
        assert_eq!(lease.generation(), 2);
        // A heartbeat issued 45 s ago or more leaves the lease stale until the next one.
        let stale = Lease::new(minute);
        let long_ago = Instant::now() - Duration::from_secs(46);
        stale.renewed_at(long_ago, long_ago, None);
        assert_eq!(fresh_now(&stale).await, None);
        let waiting = tokio::spawn({
            let stale = stale.clone();
            async move { stale.fresh().await }
        });
        stale.renewed(Instant::now(), None);
        assert_eq!(waiting.await.unwrap(), 2);
        // A machine frozen whole: its own clock says a second passed, the database's a
        // minute; a new generation all the same.
        let frozen = Lease::new(minute);
        let t = Instant::now();
        frozen.renewed_at(t, t, Some(1_000_000));
        frozen.renewed_at(
            t + Duration::from_secs(1),
            t + Duration::from_secs(1),
            Some(1_001_000),
        );
        assert_eq!(frozen.generation(), 1);
        frozen.renewed_at(
            t + Duration::from_secs(2),
            t + Duration::from_secs(2),
            Some(1_061_000),
        );
        assert_eq!(frozen.generation(), 2);
    }
}
