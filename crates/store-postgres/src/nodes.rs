//! Several gateway nodes writing one database.
//!
//! Each node runs the platform's writer, which keeps balances, pending payments and the
//! settlement queue in memory and commits in batches. Nodes take turns: a writer's pass
//! begins with a transaction that takes one advisory lock (`pg_advisory_xact_lock`), reads
//! what the other nodes committed since this node's last pass, and holds the lock until the
//! pass commits. So every decision — a balance check, a settlement, an id — is made on the
//! database's current state, and a payment is settled by exactly one node: whoever takes it
//! second finds it final. The lock is held for one batch (the time to apply it in memory
//! and write it, milliseconds), never while a request or a callback waits on the network.
//!
//! How a node knows what changed: `writer_log.seq` counts commits, and each commit that
//! writes payments or transfers lists them in a row of `commit_log` under its `seq` (set
//! from the transaction-local setting `mkoba.seq`). A pass that finds `seq` where its node
//! left it reads nothing more; otherwise it reads again the rows the log names since.
//! Subscription keys carry the `seq` of the commit that last wrote them. Accounts carry the
//! `seq` of the commit that created them only: a balance changes only with a transfer
//! written in the same commit, so the accounts changed since a commit are the new ones and
//! those the transfers written since name. So no update changes an indexed column, and
//! PostgreSQL can make each in place (a HOT update; migrations 8 and 10). The log keeps the
//! last [`LOG_KEPT`] commits; a node that last looked before them (its connection lost for
//! that long) reloads its whole state instead.
//!
//! Callbacks are delivered by the node that committed them (`outbox.node`); each attempt
//! records its node. Nodes write a heartbeat (`nodes.seen_at_ms`, the server's time) at
//! least every [`HEARTBEAT_MS`] on a thread of their own ([`Heartbeat`]), which also renews
//! the node's [`Lease`]; a node not seen for its lease is gone, and the first live node to
//! look takes its undelivered callbacks over — under the pass lock, so exactly one does.

use std::collections::HashSet;
use std::time::Duration;

use mkoba_platform::lease::Lease;
use mkoba_platform::store::Changes;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::conn::{Conn, Op, Result, op};
use crate::{Pg, account_row, col, key_row, payments, transfer_row, uuid_col};
use mkoba_platform::rows::{self, ACCOUNT_COLUMNS, KEY_COLUMNS, PAYMENT_COLUMNS, TRANSFER_COLUMNS};

/// The database server's time, in milliseconds since 1970 (SQL text, for `concat!`).
macro_rules! server_now_ms {
    () => {
        "(extract(epoch FROM clock_timestamp()) * 1000)::BIGINT"
    };
}

/// Serialises the passes of every node's writer ("mkoba_wr").
pub const PASS_LOCK: i64 = 0x6d6b_6f62_615f_7772;

/// How often a node writes its heartbeat (at most: see `beat_every`) and looks for
/// callbacks to take over.
pub(crate) const HEARTBEAT_MS: i64 = 1_000;

/// Who this node is to the others sharing the database.
#[derive(Debug, Clone)]
pub struct NodeOptions {
    /// Recorded with the callbacks it delivers; unique among running nodes.
    pub id: String,
    /// A node not seen for this long is gone: its undelivered callbacks are taken over.
    pub lease: Duration,
    /// How often an idle writer looks at what other nodes did (settlements, waiters).
    pub poll: Duration,
}

impl Default for NodeOptions {
    fn default() -> NodeOptions {
        let id = uuid::Uuid::new_v4().simple().to_string();
        NodeOptions {
            id: format!("node-{}", &id[..12]),
            lease: Duration::from_secs(10),
            poll: Duration::from_millis(100),
        }
    }
}

/// Rolls back a pass left open on this connection (a pass that failed half-way).
pub(crate) fn abandon_pass(c: &mut Conn) {
    if std::mem::take(&mut c.pass) && !c.client.is_closed() {
        let _ = c.batch_execute("ROLLBACK");
    }
}

/// `writer_log` as a pass finds it.
#[derive(Debug, Clone, Copy)]
struct Log {
    /// Commits so far.
    seq: i64,
    /// The last commit that wrote subscription keys.
    keys_seq: i64,
    /// The last commit that changed a developer's virtual phone setting.
    approval_seq: i64,
    /// The last commit that created, advanced or deleted a test clock.
    clocks_seq: i64,
    /// The highest callback id in use.
    max_outbox: i64,
    /// The commits up to this one are pruned from `commit_log`.
    log_from: i64,
}

/// What a commit changes in `writer_log` besides the count.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Marks {
    pub keys: bool,
    pub approval: bool,
    pub clocks: bool,
    pub max_outbox: i64,
}

impl Marks {
    pub(crate) fn of(b: &mkoba_platform::store::Batch) -> Marks {
        Marks {
            keys: !b.subscription_keys.is_empty() || !b.missing_keys.is_empty(),
            approval: b.portal.iter().any(|w| {
                matches!(
                    w,
                    mkoba_platform::portal::PortalWrite::SetApprovalMode { .. }
                )
            }),
            clocks: !b.test_clocks.is_empty(),
            max_outbox: b.outbox.iter().map(|o| o.id).max().unwrap_or(0),
        }
    }
}

/// Opens a pass: `BEGIN`, the pass's idle limit, the lock, then `writer_log` (a statement of
/// its own, so that its snapshot is taken once the lock is held) and which of `references`
/// are taken by payments, in one round trip.
///
/// The idle limit: a pass left idle in its transaction for longer than the node's lease (at
/// least a second) is ended by the server (`idle_in_transaction_session_timeout`, for this
/// transaction only). A pass takes milliseconds; one idle that long has a writer that
/// stopped (a paused process, a frozen machine, a connection gone silent) and holds the
/// pass lock every node needs to commit. Ending it lets the others go on; the stopped
/// writer's commit fails (or, when a read reconnected first, finds the commit count moved
/// or commits in a pass of its own), and it reloads before writing again.
fn open(c: &mut Conn, node: &NodeOptions, references: &[String]) -> Result<(Log, HashSet<Uuid>)> {
    abandon_pass(c);
    c.pass = true;
    let log: (&str, &[&(dyn ToSql + Sync)]) = (
        "SELECT seq, keys_seq, approval_seq, max_outbox, clocks_seq, log_from FROM writer_log WHERE id = 1",
        &[],
    );
    let taken: (&str, &[&(dyn ToSql + Sync)]) = (TAKEN_REFERENCES, &[&references]);
    let queries = if references.is_empty() {
        &[log][..]
    } else {
        &[log, taken][..]
    };
    let idle_ms = node.lease.as_millis().max(1_000);
    let mut rows = c
        .query_all(
            Some(&format!(
                "BEGIN; SET LOCAL idle_in_transaction_session_timeout = {idle_ms};
                 SELECT pg_advisory_xact_lock({PASS_LOCK})"
            )),
            queries,
        )?
        .into_iter();
    let (log, taken) = (
        rows.next().unwrap_or_default(),
        rows.next().unwrap_or_default(),
    );
    let row = log
        .first()
        .ok_or_else(|| crate::conn::Error::Bad("writer_log has no row".to_owned()))?;
    Ok((
        Log {
            seq: col(row, 0)?,
            keys_seq: col(row, 1)?,
            approval_seq: col(row, 2)?,
            max_outbox: col(row, 3)?,
            clocks_seq: col(row, 4)?,
            log_from: col(row, 5)?,
        },
        taken
            .iter()
            .map(|r| uuid_col(r, 0))
            .collect::<Result<_>>()?,
    ))
}

/// Which of the reference ids `$1` are taken by payments.
pub(crate) const TAKEN_REFERENCES: &str =
    "SELECT reference_id FROM payments WHERE reference_id = ANY($1)";

/// Runs `f` inside the open pass; on an error the pass is rolled back.
fn within<T>(c: &mut Conn, f: impl FnOnce(&mut Conn) -> Result<T>) -> Result<T> {
    let result = f(c);
    if result.is_err() {
        abandon_pass(c);
    }
    result
}

/// Begins a writer's pass; returns the commit count, when anything happened since `seen`
/// (or there are callbacks to take over) the changes, and which of `references` are taken.
/// With `take_over`, it takes over the callbacks of nodes gone.
pub(crate) fn begin_pass(
    c: &mut Conn,
    node: &NodeOptions,
    seen: i64,
    take_over: bool,
    references: &[String],
) -> Result<(i64, Option<Changes>, HashSet<Uuid>)> {
    let (log, taken) = within(c, |c| open(c, node, references))?;
    within(c, |c| {
        let mut changes = None;
        if take_over {
            let (claimed, from) = take_over_callbacks(c, node, false, true)?;
            if claimed > 0 {
                let changes = changes.get_or_insert_with(Changes::default);
                changes.outbox_taken_over = claimed;
                changes.outbox_taken_from = from;
            }
        }
        if log.seq != seen {
            if seen < log.log_from {
                return Err(crate::conn::Error::Bad(format!(
                    "this node last looked at commit {seen}, and the commit log now starts after {}; reloading",
                    log.log_from
                )));
            }
            read_changes(c, seen, log, changes.get_or_insert_with(Changes::default))?;
        }
        Ok((log.seq, changes, taken))
    })
}

/// Takes over the undelivered callbacks of nodes not seen for their lease (their own, as
/// their heartbeat wrote it; this node's, `$2` ms, for a node from before leases were
/// written) when `others`, and of none, plus, with `own`, this node's (at start). Returns
/// how many rows it took from other nodes, and those nodes' ids (for the log). `others` only once this node has held its own lease a whole
/// lease (`Lease::held_for`): after an outage of the database every node looks gone to
/// every other until each has beaten again. A node
/// is seen only through its heartbeat thread ([`Heartbeat`]), the one that renews its
/// [`Lease`]: a node others take for alive is one that may send. Times are the database
/// server's, so clocks that differ between the nodes' machines do not matter.
pub(crate) fn take_over_callbacks(
    c: &mut Conn,
    node: &NodeOptions,
    own: bool,
    others: bool,
) -> Result<(usize, Vec<String>)> {
    let lease_ms = node.lease.as_millis() as i64;
    let taken = c.query(
        concat!(
            "UPDATE outbox
             SET node = $1, taken_from = CASE WHEN node <> $1 THEN node ELSE taken_from END
             WHERE id IN (SELECT id FROM pending_callbacks)
               AND (node IS NULL OR ($3 AND node = $1)
                    OR ($4 AND node <> $1 AND node NOT IN (SELECT id FROM nodes
                        WHERE seen_at_ms >= ",
            server_now_ms!(),
            " - COALESCE(lease_ms, $2))))
             RETURNING taken_from"
        ),
        &[&node.id, &lease_ms, &own, &others],
    )?;
    let mut from: Vec<String> = Vec::new();
    for row in &taken {
        let node: Option<String> = row.get(0);
        if let Some(node) = node.filter(|n| !from.contains(n)) {
            from.push(node);
        }
    }
    Ok((taken.len(), from))
}

/// How often a node with a lease of `lease` writes its heartbeat: every second, or four
/// times a lease when that is shorter, so that a beat late by a little does not lapse it.
fn beat_every(lease: Duration) -> Duration {
    Duration::from_millis(HEARTBEAT_MS as u64)
        .min(lease / 4)
        .max(Duration::from_millis(100))
}

/// Writes this node's heartbeat every [`HEARTBEAT_MS`] on a connection of its own, outside
/// the pass lock, on a thread of its own, and renews the node's [`Lease`] with each beat
/// the database confirms. A node waiting its turn for the lock, behind a holder that is
/// slow or paused for longer than the lease, is alive: writing its heartbeat only inside
/// its passes made it look gone, and the first node to pass next took its callbacks over
/// and sent them again (issue found 2026-12-05 with a node stopped for 15 s holding the
/// lock). The thread ends when the journal is dropped.
///
/// The heartbeat vouches for the writer: it is written only while the writer is inside a
/// call to the database (waiting for the lock, running a statement; both bounded, by the
/// other nodes' idle-pass timeout and by the connection's keepalives) or finished one less
/// than half a lease ago (an idle writer looks every [`NodeOptions::poll`]). A writer that
/// stopped elsewhere (a thread that died, a bug that hangs it) lets the lease run out, so
/// another node takes this node's callbacks over, and this node's lease stops it from
/// sending them.
pub(crate) struct Heartbeat {
    /// Dropped to stop the thread, which then gives the node id up (`released`).
    stop: Option<std::sync::mpsc::Sender<()>>,
    /// Says when the stopped thread has given the node id up.
    released: Option<std::sync::mpsc::Receiver<()>>,
    /// Set when another process has taken the node id over: this one commits no more.
    ousted: std::sync::Arc<std::sync::atomic::AtomicBool>,
    pub(crate) lease: Lease,
}

impl std::fmt::Debug for Heartbeat {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Heartbeat")
    }
}

/// How often a heartbeat that keeps failing is logged again (the first failure is logged at
/// once).
const HEARTBEAT_LOG_EVERY: std::time::Duration = std::time::Duration::from_secs(60);

impl Heartbeat {
    /// No heartbeat: for a one-off command on the database (`mkoba admin create-operator`,
    /// `mkoba credentials`, the CLI clients reading keys), which is no node and leaves no row
    /// in `nodes`. Its lease is never renewed, so it takes nothing over.
    pub(crate) fn none(node: &NodeOptions) -> Heartbeat {
        let (stop, _) = std::sync::mpsc::channel::<()>();
        Heartbeat {
            stop: Some(stop),
            released: None,
            ousted: Default::default(),
            lease: Lease::new(node.lease),
        }
    }

    /// Starts beating at once (the `nodes` table must exist: after the migrations).
    pub(crate) fn start(
        config: std::sync::Arc<tokio_postgres::Config>,
        node: std::sync::Arc<NodeOptions>,
        writer: std::sync::Arc<crate::conn::Activity>,
    ) -> std::result::Result<Heartbeat, mkoba_platform::store::StoreError> {
        use std::sync::mpsc::RecvTimeoutError;
        let lease = Lease::new(node.lease);
        let renew = lease.clone();
        let (stop, stopped) = std::sync::mpsc::channel::<()>();
        let (gave_up, released) = std::sync::mpsc::sync_channel::<()>(1);
        let ousted = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let lost = ousted.clone();
        let (first_done, first) =
            std::sync::mpsc::sync_channel::<std::result::Result<(), String>>(1);
        std::thread::Builder::new()
            .name("mkoba-pg-beat".to_owned())
            .spawn(move || {
                let mut session = crate::conn::Session::new(config, crate::conn::Role::Journal);
                let lease_ms = node.lease.as_millis() as i64;
                let instance = Uuid::new_v4().simple().to_string();
                // Refused: the start fails, or (if it stopped waiting) the writer stops for
                // good ([`Heartbeat::ousted`]).
                if let Err(refused) = claim(&mut session, &node, &instance) {
                    lost.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = first_done.send(Err(refused));
                    return;
                }
                // An outage fails every beat: the first failure is logged, then one line a
                // minute with the count, and the first beat that works again.
                let mut failing: Option<(u64, std::time::Instant)> = None;
                // False when another process holds the node id.
                let mut beat = || -> bool {
                    let issued = std::time::Instant::now();
                    let beat = |c: &mut Conn| c.query(BEAT, &[&node.id, &lease_ms, &instance]);
                    match session.run_again_if_closed(beat) {
                        // Another process holds this node id now (it took this one for
                        // stopped): no renewal, so this node sends none of the callbacks.
                        Ok(rows) if rows.is_empty() => {
                            lost.store(true, std::sync::atomic::Ordering::Relaxed);
                            if failing.is_none() {
                                tracing::error!(node.id = %node.id, "another process runs as this node now (it took this one for stopped); this one no longer renews its lease and writes nothing more: stop it, or give it a --node-id of its own");
                            }
                            failing = Some((failing.map_or(1, |(n, _)| n + 1), issued));
                            return false;
                        }
                        Ok(rows) => {
                            renew.renewed(
                                issued,
                                rows.first().and_then(|r| r.try_get::<_, i64>(0).ok()),
                            );
                            if let Some((failures, _)) = failing.take() {
                                tracing::info!(failures, "writing this node's heartbeat works again");
                            }
                        }
                        Err(e) => {
                            let e = mkoba_platform::store::StoreError::from(e);
                            match &mut failing {
                                None => {
                                    failing = Some((1, issued));
                                    tracing::warn!(error = %e, "writing this node's heartbeat failed")
                                }
                                Some((failures, logged)) => {
                                    *failures += 1;
                                    if issued.duration_since(*logged) >= HEARTBEAT_LOG_EVERY {
                                        *logged = issued;
                                        tracing::warn!(error = %e, failures = *failures, "writing this node's heartbeat still fails")
                                    }
                                }
                            }
                        }
                    }
                    true
                };
                // The first beat at once (`start` waits for it), the others `every`, while
                // the writer is busy. Two processes starting together with one node id:
                // the second one's first beat finds the first one's row.
                if !beat() {
                    lost.store(true, std::sync::atomic::Ordering::Relaxed);
                    let _ = first_done.send(Err(in_use(&node)));
                    return;
                }
                let _ = first_done.send(Ok(()));
                let every = beat_every(node.lease);
                let mut writer_stopped = false;
                while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(every) {
                    let busy = writer.busy_at(std::time::Instant::now(), node.lease / 2);
                    if busy == writer_stopped {
                        writer_stopped = !busy;
                        if writer_stopped {
                            tracing::error!(
                                "this node's writer has not reached the database for half its lease; the node stops renewing its lease, and another node will take its callbacks over"
                            );
                        } else {
                            tracing::warn!("this node's writer reaches the database again");
                        }
                    }
                    if busy {
                        beat();
                    }
                }
                // Stopped: the id is free for the next process at once (its lease still
                // runs: until then the others leave its callbacks to it).
                let release = |c: &mut Conn| c.query(RELEASE, &[&node.id, &instance]);
                let _ = session.run_again_if_closed(release);
                let _ = gave_up.send(());
            })
            .map_err(|e| {
                mkoba_platform::store::StoreError(format!("cannot start the heartbeat thread: {e}"))
            })?;
        // The first beat lands before the writer commits anything, so its rows are never
        // another node's to take for want of a beat (bounded: the connect time's limit and
        // the watch of a node id in use).
        if let Ok(Err(refused)) = first.recv_timeout(Duration::from_secs(15)) {
            return Err(mkoba_platform::store::StoreError(refused));
        }
        Ok(Heartbeat {
            stop: Some(stop),
            released: Some(released),
            ousted,
            lease,
        })
    }

    /// Whether another process has taken this node's id over.
    pub(crate) fn ousted(&self) -> bool {
        self.ousted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Heartbeat {
    /// Stops the thread and waits (a second at most) for it to give the node id up, so
    /// that a node restarted at once finds it free.
    fn drop(&mut self) {
        drop(self.stop.take());
        if let Some(released) = self.released.take() {
            let _ = released.recv_timeout(Duration::from_secs(1));
        }
    }
}

/// Makes this process (`instance`) the holder of its node id. A row of the id held by
/// another process that beat within its lease is watched for two beats' time: if it beats
/// again, that process runs with the same `--node-id` and this one is refused (two
/// processes beating for one id looked like one node, and the callbacks of the one that
/// stopped were never taken over); if not, it has stopped (this node restarting at once, say)
/// and its id is taken over, as one past its lease is at once. A database that cannot be
/// reached is left to the beats, as before.
fn claim(
    session: &mut crate::conn::Session,
    node: &NodeOptions,
    instance: &str,
) -> std::result::Result<(), String> {
    let lease_ms = node.lease.as_millis() as i64;
    let holder = |session: &mut crate::conn::Session| -> Option<(Option<String>, i64, i64, i64)> {
        let rows = session
            .run_again_if_closed(|c| c.query(HOLDER, &[&node.id, &lease_ms]))
            .ok()?;
        let row = rows.first()?;
        Some((row.get(0), row.get(1), row.get(2), row.get(3)))
    };
    let Some((held_by, seen_ms, its_lease_ms, now_ms)) = holder(session) else {
        return Ok(());
    };
    let take = |session: &mut crate::conn::Session| {
        let take = |c: &mut Conn| c.query(TAKE_NODE_ID, &[&node.id, &held_by, &instance]);
        let _ = session.run_again_if_closed(take);
    };
    // Held by a process that beat within its lease, judged by the holder's own lease and
    // beat (as the take-over of callbacks is); a row a stopped process gave up (or one
    // written before processes were recorded) is free at once.
    if held_by.is_some() && now_ms - seen_ms < its_lease_ms {
        let its_lease = Duration::from_millis(its_lease_ms.max(1) as u64);
        let watch = 2 * beat_every(its_lease) + Duration::from_millis(500);
        tracing::info!(node.id = %node.id, "a process with this node id beat {} ms ago: watching for {} ms whether it still runs", now_ms - seen_ms, watch.as_millis());
        let until = std::time::Instant::now() + watch;
        while std::time::Instant::now() < until {
            std::thread::sleep(Duration::from_millis(100));
            match holder(session) {
                Some((by, seen, _, _)) if by == held_by && seen > seen_ms => {
                    return Err(in_use(node));
                }
                Some((by, _, _, _)) if by != held_by => break,
                _ => {}
            }
        }
    }
    take(session);
    Ok(())
}

/// Why a node does not start: its id is another running process's.
fn in_use(node: &NodeOptions) -> String {
    format!(
        "node id {:?} is in use: another running process beats with it; give every node its own --node-id",
        node.id
    )
}

/// Who holds a node id: the process, its last beat, its lease (`$2` for a row from before
/// leases were written), and the database server's time now.
const HOLDER: &str = concat!(
    "SELECT instance, seen_at_ms, COALESCE(lease_ms, $2), ",
    server_now_ms!(),
    " FROM nodes WHERE id = $1"
);

/// Gives the node id `$1` up, if process `$2` still holds it.
const RELEASE: &str = "UPDATE nodes SET instance = NULL WHERE id = $1 AND instance = $2";

/// Hands a node id over from the process `$2` that held it to `$3`, beating at once: a
/// process that looks next finds the id held now, not its last holder's old beat (which
/// let two processes starting together both take an expired id).
const TAKE_NODE_ID: &str = concat!(
    "UPDATE nodes SET instance = $3, started_at_ms = ",
    server_now_ms!(),
    ", seen_at_ms = GREATEST(seen_at_ms, ",
    server_now_ms!(),
    ") WHERE id = $1 AND instance IS NOT DISTINCT FROM $2 RETURNING id"
);

/// Writes this node's heartbeat, in the database server's time; never moves it back.
/// Returns the server's time ([`Lease::renewed`]), or no row when another process (`$3`
/// is this one) holds the node id.
const BEAT: &str = concat!(
    "INSERT INTO nodes (id, started_at_ms, seen_at_ms, lease_ms, instance) VALUES ($1, ",
    server_now_ms!(),
    ", ",
    server_now_ms!(),
    ", $2, $3)
     ON CONFLICT (id) DO UPDATE SET seen_at_ms = GREATEST(nodes.seen_at_ms, excluded.seen_at_ms),
         lease_ms = excluded.lease_ms
       WHERE nodes.instance IS NOT DISTINCT FROM excluded.instance
     RETURNING ",
    server_now_ms!()
);

/// A commit's row of `commit_log`: `$1` the reference ids of the payments it wrote, `$2`
/// the ids of its transfers.
pub(crate) const INSERT_COMMIT_LOG: &str = "INSERT INTO commit_log (seq, payments, transfers)
     VALUES (current_setting('mkoba.seq')::BIGINT, $1::TEXT[], $2::BIGINT[])";

/// How many of the last commits `commit_log` keeps: with a node looking at least every
/// poll (100 ms), far more than a running node falls behind.
pub(crate) const LOG_KEPT: i64 = 10_000;

/// Every how many commits the log drops what is older than [`LOG_KEPT`].
const LOG_PRUNED_EVERY: i64 = 1_000;

/// Drops the commits up to `$1` from the log.
pub(crate) const PRUNE_COMMIT_LOG: &str = "DELETE FROM commit_log WHERE seq <= $1::BIGINT";

/// The transfers written after commit `$1`.
const CHANGED_TRANSFERS: &str = "SELECT DISTINCT unnest(transfers) FROM commit_log WHERE seq > $1";

/// The payments written after commit `$1`.
const CHANGED_PAYMENTS: &str = "SELECT unnest(payments) FROM commit_log WHERE seq > $1";

/// The accounts changed after commit `$1`: those it created since, and those the transfers
/// written since name (a balance changes only with a transfer in the same commit).
///
/// `= ANY(ARRAY(…))`, not `IN (…)`: the ids are computed first and each account is found
/// through the primary key. Written as a semi-join, the planner (estimating from
/// statistics older than the last few commits) hashed the ids and read every account: a
/// whole-table scan in every pass after another node's commit, 4.6 ms a pass at 10,000
/// accounts and growing with them.
fn changed_accounts_sql() -> String {
    format!(
        "SELECT {ACCOUNT_COLUMNS}, owner FROM accounts WHERE id = ANY(ARRAY(
             SELECT id FROM accounts WHERE seq > $1
             UNION SELECT unnest(ARRAY[debit_account, credit_account]) FROM transfers
                 WHERE id = ANY(ARRAY({CHANGED_TRANSFERS}))))"
    )
}

/// Reads the rows other nodes wrote after commit `seen`.
fn read_changes(c: &mut Conn, seen: i64, log: Log, changes: &mut Changes) -> Result<()> {
    // The accounts, transfers and payments changed since, in one round trip.
    let accounts = changed_accounts_sql();
    let transfers = format!(
        "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE id = ANY(ARRAY({CHANGED_TRANSFERS}))
         ORDER BY id"
    );
    // The payments, pending and final, split here.
    let payments_since = format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE reference_id = ANY(ARRAY({CHANGED_PAYMENTS}))"
    );
    let mut results = c
        .query_all(
            None,
            &[
                (&accounts, &[&seen]),
                (&transfers, &[&seen]),
                (&payments_since, &[&seen]),
            ],
        )?
        .into_iter();
    let (accounts, transfers, changed) = (
        results.next().unwrap_or_default(),
        results.next().unwrap_or_default(),
        results.next().unwrap_or_default(),
    );
    for r in &accounts {
        changes
            .accounts
            .push((account_row(r)?, rows::owner(&Pg(r), 7)?));
    }
    changes.transfers = transfers.iter().map(transfer_row).collect::<Result<_>>()?;
    let (pending, settled): (Vec<_>, Vec<_>) = payments(&changed)?
        .into_iter()
        .partition(|p| p.status == mkoba_platform::model::PaymentStatus::Pending);
    changes.pending_payments = pending;
    changes.final_payments = settled.into_iter().map(|p| p.reference_id).collect();
    if log.keys_seq > seen {
        changes.subscription_keys = c
            .query(
                &format!("SELECT {KEY_COLUMNS} FROM subscription_keys WHERE seq > $1"),
                &[&seen],
            )?
            .iter()
            .map(key_row)
            .collect::<Result<_>>()?;
    }
    if log.approval_seq > seen {
        changes.approval_developers = Some(
            c.query(
                "SELECT developer_id FROM developer_accounts WHERE approval_mode",
                &[],
            )?
            .iter()
            .map(|r| col(r, 0))
            .collect::<Result<_>>()?,
        );
    }
    if log.clocks_seq > seen {
        changes.test_clocks = Some(crate::test_clocks(c)?);
    }
    changes.max_outbox_id = log.max_outbox;
    Ok(())
}

/// Writes a batch and commits, in the open pass or (without one) in a pass of its own.
/// With `expect`, the commit count must still be that (nobody wrote since the pass began;
/// a pass lost with its connection is caught here). Returns the count before and after.
pub(crate) fn commit_pass(
    c: &mut Conn,
    node: &NodeOptions,
    ops: &[Op],
    marks: Marks,
    expect: Option<i64>,
) -> Result<(i64, i64)> {
    let seq = match (c.pass, expect) {
        // The pass holds the lock: nothing changed since it began.
        (true, Some(seq)) => seq,
        (true, None) => {
            let row = within(c, |c| {
                c.query_one("SELECT seq FROM writer_log WHERE id = 1", &[])
            })?;
            col(&row, 0)?
        }
        (false, _) => within(c, |c| open(c, node, &[]))?.0.seq,
    };
    within(c, |c| {
        if let Some(expected) = expect
            && expected != seq
        {
            return Err(crate::conn::Error::Bad(
                "another node wrote while this pass was open (its connection was lost); not committing"
                    .to_owned(),
            ));
        }
        let next = seq + 1;
        let log_from = if next % LOG_PRUNED_EVERY == 0 {
            next - LOG_KEPT
        } else {
            0
        };
        let log = op!(
            WRITER_LOG_UPDATE,
            next,
            marks.keys,
            marks.approval,
            marks.max_outbox,
            marks.clocks,
            log_from
        );
        let prune = (log_from > 0).then(|| op!(PRUNE_COMMIT_LOG, log_from));
        c.execute_and_commit(
            KEYED_PLANS,
            std::iter::once(&log).chain(ops).chain(prune.as_ref()),
        )?;
        c.pass = false;
        Ok((seq, next))
    })
}

/// A commit's first statement: the count, the marks, where the commit log starts once this
/// commit prunes it (`$6`; 0 when it does not), and `mkoba.seq` for the rows after it.
pub(crate) const WRITER_LOG_UPDATE: &str = "UPDATE writer_log SET seq = $1::BIGINT,
         keys_seq = CASE WHEN $2::BOOLEAN THEN $1::BIGINT ELSE keys_seq END,
         approval_seq = CASE WHEN $3::BOOLEAN THEN $1::BIGINT ELSE approval_seq END,
         max_outbox = GREATEST(max_outbox, $4::BIGINT),
         clocks_seq = CASE WHEN $5::BOOLEAN THEN $1::BIGINT ELSE clocks_seq END,
         log_from = GREATEST(log_from, $6::BIGINT)
     WHERE id = 1
     RETURNING set_config('mkoba.seq', $1::BIGINT::TEXT, true)";

/// How a commit's statements are planned: once per connection (a generic plan), as key
/// look-ups. A commit inserts rows, or changes rows it finds by a key it holds (an id, a
/// reference, a developer: `UPDATE … FROM UNNEST … WHERE key = u.key`), so the only good
/// plan is a nested loop over the arrays with an index look-up per row. Planning
/// it again for every execution (the session's `force_custom_plan`, which the catch-up's
/// `seq > $1` needs) cost about a tenth of the backend's time; but a generic plan is made
/// on the first execution, on tables that may then be empty, where a scan or a hash join
/// is cheapest and then kept as the tables grow. Without scans and hash or merge joins
/// the planner has only the key look-ups left. `SET LOCAL`: the pass's transaction only.
pub(crate) const KEYED_PLANS: &str = "SET LOCAL plan_cache_mode = force_generic_plan;
     SET LOCAL enable_seqscan = off; SET LOCAL enable_hashjoin = off;
     SET LOCAL enable_mergejoin = off";

/// Ends a pass that wrote nothing but its heartbeat.
pub(crate) fn end_pass(c: &mut Conn) -> Result<()> {
    if !c.pass {
        return Ok(());
    }
    within(c, |c| {
        c.batch_execute("COMMIT")?;
        c.pass = false;
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkoba_platform::store::{Batch, Journal};

    #[test]
    fn a_pass_left_open_past_the_lease_is_ended_and_frees_the_pass_lock() {
        let url = mkoba_testkit::pg::database();
        let node = NodeOptions {
            id: "stops".to_owned(),
            lease: Duration::from_secs(1),
            ..NodeOptions::default()
        };
        let (mut journal, _reader) = crate::open_as(&url, node).unwrap();
        journal.load(16).unwrap();
        let mut other = postgres::Client::connect(&url, postgres::NoTls).unwrap();
        let try_lock = |other: &mut postgres::Client| -> bool {
            other
                .query_one("SELECT pg_try_advisory_lock($1)", &[&PASS_LOCK])
                .unwrap()
                .get(0)
        };
        // A pass is open, and its writer stops (here: does nothing) with the lock held.
        journal.begin().unwrap();
        assert!(!try_lock(&mut other), "the open pass holds the lock");
        // Past the lease the server ends the pass: the others can take the lock.
        let mut freed = false;
        for _ in 0..100 {
            std::thread::sleep(Duration::from_millis(100));
            if try_lock(&mut other) {
                freed = true;
                break;
            }
        }
        assert!(
            freed,
            "the pass lock was still held 10 s after the pass went idle"
        );
        other
            .execute("SELECT pg_advisory_unlock($1)", &[&PASS_LOCK])
            .unwrap();
        // The stopped writer's commit fails: its pass is gone; it reloads and goes on.
        let batch = Batch {
            developers: vec![77],
            ..Batch::default()
        };
        assert!(journal.commit(&batch).is_err());
        journal.load(16).unwrap();
        journal.begin().unwrap();
        journal.commit(&batch).unwrap();
        let developers: i64 = other
            .query_one("SELECT count(*) FROM developers WHERE id = 77", &[])
            .unwrap()
            .get(0);
        assert_eq!(developers, 1);
    }

    #[test]
    fn changed_accounts_are_found_through_the_primary_key_however_many_changed() {
        let url = mkoba_testkit::pg::database();
        let (journal, _reader) = crate::open(&url).unwrap();
        // Catching up from commit 0 after one commit of 5,000 accounts and transfers: as a
        // semi-join the planner hashes the ids and joins them to a scan of the table.
        let plan = journal
            .worker
            .run(|c| {
                c.batch_execute(
                    "INSERT INTO accounts (id, owner, currency, limit_kind, debits_pending,
                         debits_posted, credits_pending, credits_posted, seq)
                     SELECT g, 'wallet:' || g, 'EUR', 'no_overdraft', 0, 0, 0, 0, 1
                     FROM generate_series(1, 5000) g;
                     INSERT INTO transfers (id, debit_account, credit_account, amount, currency,
                         state, created_at_ms, updated_at_ms)
                     SELECT g, g, g % 5000 + 1, 1, 'EUR', 'posted', 0, 0
                     FROM generate_series(1, 5000) g;
                     INSERT INTO commit_log (seq, payments, transfers)
                     SELECT 1, '{}', array_agg(g) FROM generate_series(1, 5000) g;
                     ANALYZE accounts, transfers, commit_log",
                )?;
                c.explain(&changed_accounts_sql(), &[&0_i64])
            })
            .unwrap();
        // The changed ids are found first (scanning them all is right here: all changed);
        // the accounts are then read through the key, not joined to the ids.
        assert!(plan.contains("accounts_pkey on accounts"), "{plan}");
        assert!(plan.contains("Index Cond: (id = ANY"), "{plan}");
        assert!(!plan.contains("Join"), "{plan}");
    }
}
