//! The hand-off of committed callbacks from the writer to the dispatcher, bounded.
//!
//! Every callback is an `outbox` row committed with the change that caused it; the database
//! is its queue. The writer also offers each new row to the dispatcher through a bounded
//! channel ([`PlatformConfig::callbacks_in_memory`](crate::PlatformConfig) rows), the
//! fast path. When the channel is full the row is simply not offered: it is already on disk,
//! and the dispatcher is told to read what is pending from the database once it has room
//! ([`Next::Sweep`], answered by [`Payments::pending_callbacks`](crate::Platform)) from the
//! first row not offered on: the rows below it were offered or are final. A sweep from the
//! start runs at start-up (instead of loading every undelivered row into memory), after a
//! reload of the writer's state, and when this node takes over the callbacks of a stopped
//! one. So memory stays bounded however far callbacks fall behind, and nothing pending is
//! left behind.
//!
//! With several nodes, each offered row carries the generation of this node's
//! [`Lease`] read before the row was committed ([`Feed::generation`]): the dispatcher
//! checks again, before sending, a row whose generation has passed.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use tokio::sync::Notify;
use tokio::sync::mpsc::{self, error::TrySendError};

use crate::lease::Lease;
use crate::model::OutboxItem;

/// Raised when pending rows may be in the database but not in the channel: the lowest id
/// to read from ([`NO_SWEEP`] when none).
#[derive(Debug)]
struct Signal {
    from: AtomicI64,
    wake: Notify,
}

const NO_SWEEP: i64 = i64::MAX;

/// The writer's end.
pub(crate) struct Feed {
    tx: mpsc::Sender<(OutboxItem, u64)>,
    signal: Arc<Signal>,
    lease: Option<Lease>,
}

/// The dispatcher's end ([`Platform::take_outbox`](crate::Platform::take_outbox)).
#[derive(Debug)]
pub struct Outbox {
    rx: mpsc::Receiver<(OutboxItem, u64)>,
    signal: Arc<Signal>,
    lease: Option<Lease>,
}

/// What the dispatcher should do next.
#[derive(Debug)]
pub enum Next {
    /// Deliver this row (just committed), known to be this node's in lease generation
    /// `lease` (0 without a lease).
    Item { item: OutboxItem, lease: u64 },
    /// Read the pending rows with ids from `from` on from the database: some were not
    /// offered.
    Sweep { from: i64 },
    /// The platform is gone.
    Closed,
}

/// A channel of `capacity` rows (at least 1), with a sweep due at once: rows committed
/// before this start are read from the database. `lease`: this node's, with several nodes.
pub(crate) fn channel(capacity: usize, lease: Option<Lease>) -> (Feed, Outbox) {
    let (tx, rx) = mpsc::channel(capacity.max(1));
    let signal = Arc::new(Signal {
        from: AtomicI64::new(NO_SWEEP),
        wake: Notify::new(),
    });
    let feed = Feed {
        tx,
        signal: signal.clone(),
        lease: lease.clone(),
    };
    feed.sweep();
    (feed, Outbox { rx, signal, lease })
}

impl Feed {
    /// The lease generation to offer the rows of a commit with: read before the commit.
    pub(crate) fn generation(&self) -> u64 {
        self.lease.as_ref().map_or(0, Lease::generation)
    }

    /// Offers a committed row, known to be this node's in lease generation `lease`; when
    /// the channel is full, asks for a sweep instead.
    pub(crate) fn offer(&self, item: OutboxItem, lease: u64) {
        match self.tx.try_send((item, lease)) {
            Ok(()) | Err(TrySendError::Closed(_)) => {}
            Err(TrySendError::Full((item, _))) => self.signal.raise(item.id),
        }
    }

    /// Asks the dispatcher to read every pending row from the database.
    pub(crate) fn sweep(&self) {
        self.signal.raise(0);
    }
}

impl Signal {
    fn raise(&self, from: i64) {
        if self.from.fetch_min(from, Ordering::SeqCst) == NO_SWEEP {
            tracing::debug!(from, "callbacks to read from the database");
        }
        self.wake.notify_one();
    }
}

impl Outbox {
    /// The next thing to do: a sweep when one was asked for, else the next offered row.
    pub async fn next(&mut self) -> Next {
        loop {
            let from = self.signal.from.swap(NO_SWEEP, Ordering::SeqCst);
            if from != NO_SWEEP {
                return Next::Sweep { from };
            }
            tokio::select! {
                biased;
                item = self.rx.recv() => {
                    return item.map_or(Next::Closed, |(item, lease)| Next::Item { item, lease });
                }
                () = self.signal.wake.notified() => {}
            }
        }
    }

    /// This node's lease on its callbacks, with several nodes ([`crate::lease`]).
    pub fn lease(&self) -> Option<Lease> {
        self.lease.clone()
    }

    /// A handle that asks for a sweep later (a delivery whose outcome could not be
    /// recorded leaves its row pending).
    pub fn sweeper(&self) -> Sweeper {
        Sweeper(self.signal.clone())
    }
}

/// Asks for a sweep from anywhere.
#[derive(Debug, Clone)]
pub struct Sweeper(Arc<Signal>);

impl Sweeper {
    /// Asks the dispatcher to read the pending rows with ids from `from` on.
    pub fn sweep_from(&self, from: i64) {
        self.0.raise(from);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::CallbackMethod;

    fn item(id: i64) -> OutboxItem {
        OutboxItem {
            id,
            reference_id: uuid::Uuid::nil(),
            url: String::new(),
            method: CallbackMethod::Put,
            body: String::new(),
            attempts: 0,
            next_attempt_at_ms: 0,
        }
    }

    #[tokio::test]
    async fn a_full_channel_turns_into_one_sweep() {
        let (feed, mut outbox) = channel(2, None);
        assert!(
            matches!(outbox.next().await, Next::Sweep { from: 0 }),
            "start-up sweep"
        );
        for id in 1..=5 {
            feed.offer(item(id), 0);
        }
        // The overflow asks for a sweep from the first row not offered, which comes first;
        // then what fit.
        assert!(matches!(outbox.next().await, Next::Sweep { from: 3 }));
        assert!(matches!(outbox.next().await, Next::Item { item, .. } if item.id == 1));
        assert!(matches!(outbox.next().await, Next::Item { item, .. } if item.id == 2));
        drop(feed);
        assert!(matches!(outbox.next().await, Next::Closed));
    }
}
