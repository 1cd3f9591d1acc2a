//! Store reads, off the async threads: a fixed set of threads takes reads from a bounded
//! queue and answers each through a oneshot.
//!
//! The stores' readers are synchronous (SQLite is a library call; the PostgreSQL client
//! waits for its connection's thread). Calling them from a request handler would block one
//! of the runtime's few worker threads for as long as the read takes — on PostgreSQL, a
//! network round trip, or the whole connect timeout when the server is gone. Here a handler
//! only queues the read and awaits its answer. When every reader thread is busy and the
//! queue is full, the read is refused at once ([`Internal::Busy`]): the dialect answers
//! with its overload error, and memory and latency stay bounded however many requests
//! arrive.
//!
//! One thread per core by default: on SQLite a read is CPU work, and each thread keeps its
//! own connection's page cache (16 MB) warm. Measured with `mkoba bench -n 20000 --poll`
//! (a status read per payment) on 2 cores against the previous build (reads on the async
//! threads): 8,526 and 9,252 lifecycles/s against 7,810 and 9,417, peak RSS 104 MiB both;
//! with 8 threads it was ~4 % slower and peaked at 139 MiB.
//!
//! Two pools ([`Serves`]): the APIs' and the portal's, each with its threads and queue. A
//! portal page's read is bounded by its queue like any other, and its cost by the portal's
//! own limits, but it takes longer than an API's: a report reads up to 100,000 payments.
//! On shared threads, four reports at once over a million payments (before they had that
//! bound) held MoMo status reads behind them for up to 8.3 s; on their own threads they
//! hold only the portal's pages, and the status reads took at most 6.5 ms meanwhile.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, TrySendError};
use std::sync::{Arc, Mutex};

use tokio::sync::oneshot;

use crate::Internal;
use crate::store::{Reader, StoreError};

type Job = Box<dyn FnOnce(&dyn Reader) + Send>;

/// Which requests a pool reads for ([module docs](self)).
#[derive(Debug, Clone, Copy)]
pub(crate) enum Serves {
    /// MoMo, M-Pesa, the widget, the admin API.
    Apis,
    /// The developer portal and the operator's pages.
    Portal,
}

/// The reader threads and their queue.
pub(crate) struct ReadPool {
    jobs: mpsc::SyncSender<Job>,
    /// Reads queued or running.
    pending: Arc<AtomicUsize>,
    /// The portal's pool with faults (tests): reads it may refuse.
    refusals: Option<crate::faults::Faults>,
    /// The API pool with faults (tests): reads it may fail.
    failures: Option<crate::faults::Faults>,
    /// The last read that reached the store failed (cleared by the next that succeeds):
    /// health shows the store failing while reads do, with or without writes.
    reads_failing: std::sync::atomic::AtomicBool,
}

impl ReadPool {
    /// Starts `threads` threads (at least one) reading through `reader` for `serves`, with
    /// room for `queue` reads waiting. The threads stop when the pool is dropped.
    pub(crate) fn start(
        serves: Serves,
        reader: Arc<dyn Reader>,
        threads: usize,
        queue: usize,
        faults: Option<crate::faults::Faults>,
    ) -> Result<ReadPool, StoreError> {
        let (jobs, rx) = mpsc::sync_channel::<Job>(queue);
        let rx = Arc::new(Mutex::new(rx));
        let portal = matches!(serves, Serves::Portal);
        let name = match serves {
            Serves::Apis => "mkoba-read",
            Serves::Portal => "mkoba-portal-read",
        };
        for i in 0..threads.max(1) {
            let (rx, reader, faults) = (rx.clone(), reader.clone(), faults.clone());
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = match rx.lock() {
                            Ok(rx) => rx.recv(),
                            Err(_) => return,
                        };
                        if let Some(faults) = &faults {
                            faults.wait_for_reads(portal);
                        }
                        match job {
                            Ok(job) => job(reader.as_ref()),
                            Err(mpsc::RecvError) => return,
                        }
                    }
                })
                .map_err(|e| StoreError(format!("cannot start a reader thread: {e}")))?;
        }
        Ok(ReadPool {
            jobs,
            pending: Arc::default(),
            failures: faults.clone().filter(|_| !portal),
            refusals: faults.filter(|_| portal),
            reads_failing: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether the last read that reached the store failed.
    pub(crate) fn failing(&self) -> bool {
        self.reads_failing.load(Ordering::Relaxed)
    }

    /// Reads queued or running now.
    pub(crate) fn pending(&self) -> usize {
        self.pending.load(Ordering::SeqCst)
    }

    /// Runs `f` on a reader thread and awaits its answer; [`Internal::Busy`] at once when
    /// the queue is full, [`Internal::Failed`] (logged) when the store failed.
    pub(crate) async fn read<T: Send + 'static>(
        &self,
        f: impl FnOnce(&dyn Reader) -> Result<T, StoreError> + Send + 'static,
    ) -> Result<T, Internal> {
        if self
            .refusals
            .as_ref()
            .is_some_and(crate::faults::Faults::refuses_portal_read)
        {
            return Err(Internal::Busy);
        }
        let failing = self
            .failures
            .as_ref()
            .is_some_and(crate::faults::Faults::reads_fail);
        let (tx, rx) = oneshot::channel();
        let pending = self.pending.clone();
        pending.fetch_add(1, Ordering::SeqCst);
        let job: Job = Box::new(move |reader| {
            // A caller that went away (its request was dropped) needs no answer.
            if !tx.is_closed() {
                let _ = tx.send(if failing {
                    Err(StoreError(
                        "the database cannot be reached (injected fault)".to_owned(),
                    ))
                } else {
                    f(reader)
                });
            }
            pending.fetch_sub(1, Ordering::SeqCst);
        });
        match self.jobs.try_send(job) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                return Err(Internal::Busy);
            }
            Err(TrySendError::Disconnected(_)) => {
                self.pending.fetch_sub(1, Ordering::SeqCst);
                tracing::error!("the reader threads have stopped");
                return Err(Internal::Failed);
            }
        }
        match rx.await {
            Ok(result) => {
                if result.is_ok() == self.reads_failing.load(Ordering::Relaxed) {
                    self.reads_failing.store(result.is_err(), Ordering::Relaxed);
                }
                result
            }
            .map_err(crate::logged),
            Err(_) => {
                tracing::error!("a reader thread stopped before answering");
                Err(Internal::Failed)
            }
        }
    }
}
