//! WAL checkpoints on a thread of their own.
//!
//! In WAL mode a commit appends pages to the `-wal` file and fsyncs it; a checkpoint later
//! copies those pages into the database file and fsyncs that. SQLite's automatic checkpoint
//! runs in the committing connection, so it ran on the writer thread, between two passes,
//! while every request waited. In a large database that is the writer's dearest work: a
//! request-to-pay inserted its reference id into a unique index at a random place (now
//! written behind, many neighbours at a time: `refs.rs`), so once
//! the index is much larger than what one checkpoint copies, every payment costs one page
//! of the database file written at a random offset, and the fsync of a few hundred such
//! pages took 18–20 ms against 2–3 ms in a fresh database (issue 17, `docs/architecture.md`).
//!
//! Here the writer's connection has no automatic checkpoint. After each commit it tells
//! [`Checkpointer`]'s thread how many frames the WAL holds (SQLite's WAL hook), and the
//! thread runs a `PASSIVE` checkpoint on a connection of its own once 1,024 frames wait to
//! be copied, or once the writer has paused for 20 ms with fewer waiting. A large batch of
//! request-to-pays makes a pass of its own; small commits share one, and one fsync of the
//! database file (a pass after every commit cost M-Pesa's synchronous C2B 9–41 % of its
//! throughput in five pairs). The copy runs while the writer goes on committing and takes no
//! lock the writer waits for.
//!
//! What the thread cannot do alone is let the WAL start over: SQLite writes from the start
//! of the file again only when a write transaction begins with every frame copied, and
//! under steady load new frames always arrive while the copy runs. So once the WAL holds
//! more than [`SqliteOptions::wal_limit_bytes`] (64 MiB by default), the thread asks the
//! writer to hold its next commit until a checkpoint has copied everything (the last few
//! milliseconds' frames, since the thread has kept up with the rest); the writer's next
//! transaction then starts the file over. The writer waits at most [`DRAIN_WAIT`] for that:
//! a long read can keep a checkpoint from finishing, and then the WAL grows past the mark,
//! as it would with SQLite's own checkpoints, until the next attempt (another limit's worth
//! of frames later). When the file does start over, SQLite cuts it back to the limit
//! (`journal_size_limit`).
//!
//! [`SqliteOptions::wal_limit_bytes`]: crate::SqliteOptions::wal_limit_bytes

use mkoba_platform::metrics::{StoreMetrics, label};
use rusqlite::Connection;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, OnceLock};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// The longest the writer holds a commit so that the WAL can start over.
const DRAIN_WAIT: Duration = Duration::from_millis(100);
/// Frames waiting to be copied that make the next pass, so that small commits share a pass
/// and its fsync of the database file. Every commit writes each table's and index's last
/// pages again, and a pass copies only a page's newest frame: with 1,024 instead of 128
/// the thread wrote 42 % fewer bytes and used a third less CPU for the same payments
/// (`docs/architecture.md`, 2026-12-07).
const PASS_FRAMES: i64 = 1024;
/// A pass for fewer frames once the writer has committed nothing for this long.
const IDLE_PASS: Duration = Duration::from_millis(20);
/// How soon the thread tries again to finish a drain that a reader held up.
const RETRY_AFTER: Duration = Duration::from_millis(5);

/// The checkpoint thread and what the writer shares with it. Dropping it stops the thread.
#[derive(Debug)]
pub(crate) struct Checkpointer {
    shared: Arc<Shared>,
    thread: Option<JoinHandle<()>>,
}

#[derive(Debug, Default)]
struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    /// Where passes and drains are counted (`/metrics`), once the platform has said.
    metrics: OnceLock<StoreMetrics>,
}

#[derive(Debug, Default)]
struct State {
    /// Commits the writer has made; the thread checkpoints when this moves.
    commits: u64,
    /// Frames in the WAL after the writer's last commit.
    wal_frames: i64,
    /// The thread asks the writer to hold its next commit until everything is copied.
    drain: bool,
    /// The writer gave up waiting for the last drain.
    gave_up: bool,
    /// The writer is holding its commit for a drain: nothing is committed until it goes on,
    /// so a pass begun now copies everything there will be.
    parked: bool,
    stop: bool,
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Checkpointer {
    /// Starts the thread on `conn`, a connection of its own to the database.
    pub(crate) fn start(conn: Connection, drain_at: i64) -> std::io::Result<Checkpointer> {
        let shared = Arc::new(Shared::default());
        let thread = std::thread::Builder::new()
            .name("mkoba-checkpoint".into())
            .spawn({
                let shared = shared.clone();
                move || run(&conn, &shared, drain_at)
            })?;
        Ok(Checkpointer {
            shared,
            thread: Some(thread),
        })
    }

    /// Records passes and drains in `metrics` from now on.
    pub(crate) fn watch(&self, metrics: &StoreMetrics) {
        let _ = self.shared.metrics.set(metrics.clone());
    }

    /// Called by the writer before it begins a commit: if the thread asked for a drain,
    /// waits (at most [`DRAIN_WAIT`]) until everything committed is copied.
    pub(crate) fn before_commit(&self) {
        let state = self.shared.lock();
        if !state.drain {
            return;
        }
        let began = Instant::now();
        let mut state = state;
        state.parked = true;
        self.shared.wake.notify_all();
        let (mut state, _) = self
            .shared
            .wake
            .wait_timeout_while(state, DRAIN_WAIT, |s| s.drain && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        state.parked = false;
        let outcome = if state.drain {
            state.drain = false;
            state.gave_up = true;
            "gave_up"
        } else {
            "copied"
        };
        drop(state);
        if let Some(m) = self.shared.metrics.get() {
            m.wal_drains.get_or_create(&label("outcome", outcome)).inc();
            m.wal_drain_seconds.observe(began.elapsed().as_secs_f64());
        }
    }

    /// Called by the writer after each commit, with the frames now in the WAL.
    pub(crate) fn committed(&self, wal_frames: i64) {
        let mut state = self.shared.lock();
        state.commits += 1;
        state.wal_frames = wal_frames;
        drop(state);
        self.shared.wake.notify_all();
    }
}

impl Drop for Checkpointer {
    fn drop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.wake.notify_all();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

fn run(conn: &Connection, shared: &Shared, drain_at: i64) {
    let mut seen = 0;
    // The WAL size at which the next drain is asked: moved on after a drain that did not
    // start the file over (a reader still used it) or that the writer gave up on, back to
    // `drain_at` once the file has started over.
    let mut next_drain = drain_at;
    let mut last_log = 0;
    // A drain is asked and the last pass could not finish it: try again shortly.
    let mut retry = false;
    // The last pass failed (warned once, not at every commit).
    let mut failing = false;
    // A small limit (tests) gets passes often enough to keep to it.
    let pass_frames = PASS_FRAMES.min(drain_at / 4).max(1);
    loop {
        let Some(parked) = wait_for_pass(shared, &mut seen, last_log, retry, pass_frames) else {
            return;
        };
        let counts = conn.query_row("PRAGMA wal_checkpoint(PASSIVE)", [], |r| {
            Ok((r.get::<_, i64>(1)?, r.get::<_, i64>(2)?))
        });
        let (log, copied) = match counts {
            Ok(counts) => {
                failing = false;
                counts
            }
            Err(e) => {
                if !failing {
                    tracing::warn!(error = %e, "WAL checkpoint failed");
                }
                failing = true;
                (-1, -1)
            }
        };
        if log < 0 {
            // Another connection was checkpointing (SQLITE_BUSY), or the pass failed.
            retry = shared.lock().drain;
            continue;
        }
        if let Some(m) = shared.metrics.get() {
            m.checkpoints.inc();
            m.wal_frames.set(log);
        }
        if log < last_log {
            next_drain = drain_at;
        }
        last_log = log;
        let mut state = shared.lock();
        if state.gave_up {
            state.gave_up = false;
            next_drain = log + drain_at;
        }
        let asked = state.drain;
        if asked && parked && copied >= log {
            // Everything is copied while the writer waits: its next transaction starts the
            // file over, unless a read still uses it; then try again a little later.
            state.drain = false;
            next_drain = log + drain_at / 4;
        } else {
            state.drain = log >= next_drain;
        }
        retry = asked && state.drain;
        shared.wake.notify_all();
    }
}

/// Waits until the next pass is due: at once when a drain is asked and the writer holds its
/// commit; when `pass_frames` frames wait to be copied beyond the `last_log` the last pass
/// saw; when fewer wait and the writer has committed nothing for [`IDLE_PASS`]; or, with
/// `retry`, after [`RETRY_AFTER`]. Returns whether the writer held its commit when the pass
/// was due, and `None` when the thread is to stop. `seen` is the commit count the last pass
/// began at, moved on to this one's.
fn wait_for_pass(
    shared: &Shared,
    seen: &mut u64,
    last_log: i64,
    retry: bool,
    pass_frames: i64,
) -> Option<bool> {
    let due = |s: &State| {
        let waiting = if s.wal_frames < last_log {
            s.wal_frames
        } else {
            s.wal_frames - last_log
        };
        s.stop
            || (s.drain && s.parked)
            || (!s.drain && s.commits != *seen && waiting >= pass_frames)
    };
    let mut state = shared.lock();
    loop {
        if retry {
            state = shared
                .wake
                .wait_timeout_while(state, RETRY_AFTER, |s| !s.stop)
                .unwrap_or_else(|p| p.into_inner())
                .0;
            break;
        }
        let (after, idle) = shared
            .wake
            .wait_timeout_while(state, IDLE_PASS, |s| !due(s))
            .unwrap_or_else(|p| p.into_inner());
        state = after;
        if !idle.timed_out() || state.commits != *seen {
            break;
        }
        // Nothing new: sleep until the writer commits, or holds its commit for a drain.
        state = shared
            .wake
            .wait_while(state, |s| s.commits == *seen && !s.parked && !s.stop)
            .unwrap_or_else(|p| p.into_inner());
        if state.stop {
            break;
        }
    }
    if state.stop {
        return None;
    }
    *seen = state.commits;
    Some(state.parked)
}
