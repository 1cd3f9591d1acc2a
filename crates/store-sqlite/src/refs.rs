//! Reference ids written behind (issue 17).
//!
//! A payment is found by its reference id, a UUID its client chose at random. Its unique
//! index took each insert on a leaf of its own: 38 % of the WAL frames a commit wrote in a
//! fresh database and 40–47 % at a million payments (`docs/architecture.md`, "Where the
//! WAL's bytes go"). So the index is written behind. A payment's row (in `payments`, keyed
//! by its integer id, appended in order) is on disk when the platform answers 202, as
//! before; its reference id enters the index table `payment_refs` (the id's 16 bytes and
//! the payment's integer id, `WITHOUT ROWID`) later, together with others near it.
//!
//! Until then it waits in [`Recent`], an ordered map in memory shared by the writer and the
//! readers. Every look-up by reference id asks the map first and the table after
//! ([`KEY_OF`]), in that order: the writer adds an id to the map after the commit that
//! inserted its payment (before the 202 leaves) and takes it out only after the commit
//! that put it in the table, so a look-up that misses the map starts its statement after
//! that commit and finds the table's row.
//!
//! Each commit that inserts `n` payments also moves the ids of a slice of the key space,
//! `n / buffer` of it, from the map into the table, in key order ([`Sweep`]): a cursor goes
//! round the whole space once per `buffer` payments, so an id waits at most that long and
//! the map holds at most about `buffer` ids (about 2.5 MiB by default, 40 bytes an id). A
//! slice's ids land on neighbouring leaves: with `L` leaves, a pass touches about
//! `L·n / buffer + 1` of them for its `n` ids instead of `n`.
//!
//! The unique constraint is now the writer's: it is the only one that inserts payments, and
//! it refuses a reference id that is in the map or the table (`Journal::payment_exists`),
//! as well as a second one in its own pass (the engine). The table keeps its primary key.
//! Before either is asked, a filter in the writer's memory rules out most ids never taken
//! ([`crate::seen`]).
//!
//! A start puts every id that may still be missing into the table before anything else
//! (a command beside the server, such as `mkoba credentials`, does not: it would hold the
//! running server's writer up while it did, and it looks no payment up): the `settings`
//! row [`THROUGH`] names a payment id up to which every reference id is in the table. The
//! writer moves that mark each time its cursor comes round: what was committed when the
//! cursor last set out has been swept since.

use crate::seen::Seen;
use foldhash::{HashMap, HashMapExt};
use mkoba_platform::metrics::StoreMetrics;
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use std::collections::BTreeMap;
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

/// The `settings` row: every payment up to this id has its reference id in `payment_refs`.
const THROUGH: &str = "payment_refs_through";

/// A payment's integer id in SQL, from `?1` (what [`Recent`] says, or NULL) and `?2` (the
/// reference id's 16 bytes): the table is read only when the map has no answer.
pub(crate) const KEY_OF: &str =
    "COALESCE(?1, (SELECT payment FROM payment_refs WHERE reference_id = ?2))";

/// The reference ids not yet in `payment_refs`, with their payments' integer ids.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    ids: RwLock<BTreeMap<Uuid, i64>>,
}

impl Recent {
    /// The integer id of a payment whose reference id waits here.
    pub(crate) fn get(&self, id: &Uuid) -> Option<i64> {
        self.ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(id)
            .copied()
    }

    /// How many reference ids wait.
    pub(crate) fn len(&self) -> usize {
        self.ids
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .len()
    }

    /// The parameters of [`KEY_OF`] for a reference id.
    pub(crate) fn key_params(&self, id: &Uuid) -> (Option<i64>, [u8; 16]) {
        (self.get(id), *id.as_bytes())
    }
}

/// The integer id of the payment with this reference id (committed), if there is one.
pub(crate) fn payment_key(
    c: &Connection,
    recent: &Recent,
    id: &Uuid,
) -> rusqlite::Result<Option<i64>> {
    if let Some(key) = recent.get(id) {
        return Ok(Some(key));
    }
    c.prepare_cached("SELECT payment FROM payment_refs WHERE reference_id = ?1")?
        .query_row([id.as_bytes()], |r| r.get(0))
        .optional()
}

/// The mark (every payment up to it is in the table) and the highest payment id.
fn marks(c: &Connection) -> rusqlite::Result<(i64, i64)> {
    let through = c
        .query_row(
            "SELECT CAST(value AS INTEGER) FROM settings WHERE name = ?1",
            [THROUGH],
            |r| r.get(0),
        )
        .optional()?
        .unwrap_or(0);
    let max_id = c.query_row("SELECT COALESCE(MAX(id), 0) FROM payments", [], |r| {
        r.get(0)
    })?;
    Ok((through, max_id))
}

fn set_through(tx: &Connection, through: i64) -> rusqlite::Result<()> {
    tx.prepare_cached(
        "INSERT INTO settings (name, value) VALUES (?1, ?2)
         ON CONFLICT (name) DO UPDATE SET value = excluded.value",
    )?
    .execute(params![THROUGH, through])?;
    Ok(())
}

/// The writer's side: which ids a commit adds to the map, and which it moves to the table.
#[derive(Debug)]
pub(crate) struct Sweep {
    recent: Arc<Recent>,
    /// The part of the key space one inserted payment moves the cursor by.
    step: u128,
    /// Where the next slice begins.
    cursor: u128,
    /// The highest payment id committed.
    max_id: i64,
    /// The highest payment id committed when the cursor last set out from 0: all of them
    /// are in the table once it is round again.
    round_max_id: i64,
    /// This commit's new payments (to the map once it is committed).
    staged: HashMap<Uuid, i64>,
    /// The ids this commit put in the table (out of the map once it is committed).
    swept: Vec<Uuid>,
    /// Where the cursor will be once this commit is committed, and whether it came round.
    next: Option<(u128, bool)>,
    /// Which ids may have been committed: most new ones are known not to be without a look-up.
    seen: Seen,
    /// How many ids wait, for `/metrics`.
    metrics: Option<StoreMetrics>,
}

impl Sweep {
    /// Brings the table up to date with every payment (one transaction, only if some may
    /// be missing) and starts the cursor at the beginning, with at most about `buffer` ids
    /// waiting at a time. `loader` opens a connection that fills the filter of committed
    /// ids ([`crate::seen`]), called only when there is a payment to read; without one (a
    /// command beside a running server, which leaves the ids in that server's memory to it)
    /// the table is neither brought up to date nor filtered.
    pub(crate) fn open(
        conn: &mut Connection,
        recent: Arc<Recent>,
        buffer: usize,
        loader: Option<impl FnOnce() -> rusqlite::Result<Connection>>,
    ) -> rusqlite::Result<Sweep> {
        let (mut through, mut max_id) = marks(conn)?;
        if loader.is_some() && max_id > through {
            // A write transaction from its start: one that read first could not wait for
            // a writer of another process, it would fail at once.
            let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
            (through, max_id) = marks(&tx)?;
            // A malformed id (no 16 bytes) fails the start instead of being skipped.
            tx.execute(
                "INSERT INTO payment_refs (reference_id, payment)
                 SELECT unhex(replace(reference_id, '-', '')), id FROM payments WHERE id > ?1
                 ORDER BY 1
                 ON CONFLICT (reference_id) DO NOTHING",
                [through],
            )?;
            set_through(&tx, max_id)?;
            tx.commit()?;
        }
        // Every payment's id is in the table now.
        let seen = match loader {
            None => Seen::off(),
            Some(_) if max_id == 0 => Seen::empty(),
            Some(loader) => Seen::load(loader()?),
        };
        Ok(Sweep {
            recent,
            step: u128::MAX / buffer.max(1) as u128,
            cursor: 0,
            max_id,
            round_max_id: max_id,
            staged: HashMap::new(),
            swept: Vec::new(),
            next: None,
            seen,
            metrics: None,
        })
    }

    /// Reports how many ids wait in `metrics` from now on.
    pub(crate) fn watch(&mut self, metrics: &StoreMetrics) {
        metrics.refs_behind.set(self.recent.len() as i64);
        self.metrics = Some(metrics.clone());
        self.poll();
    }

    /// Takes in the filter's ids read from the table, once they are.
    pub(crate) fn poll(&mut self) {
        if self.seen.poll()
            && let Some(metrics) = &self.metrics
        {
            metrics.refs_filter_ready.set(1);
        }
    }

    /// The map the readers share.
    pub(crate) fn recent(&self) -> &Recent {
        &self.recent
    }

    /// Starts a commit: forgets what an earlier one that failed had planned.
    pub(crate) fn begin(&mut self) {
        self.staged.clear();
        self.swept.clear();
        self.next = None;
    }

    /// A payment this commit inserted, with the integer id it got.
    pub(crate) fn inserted(&mut self, id: Uuid, key: i64) {
        self.staged.insert(id, key);
    }

    /// The integer id of a payment, inside the commit: one it inserted, or a committed one.
    pub(crate) fn key(&self, tx: &Connection, id: &Uuid) -> rusqlite::Result<Option<i64>> {
        match self.staged.get(id) {
            Some(key) => Ok(Some(*key)),
            None => self.committed_key(tx, id),
        }
    }

    /// The integer id of a committed payment: none, without a look-up, for most ids never
    /// taken.
    pub(crate) fn committed_key(&self, c: &Connection, id: &Uuid) -> rusqlite::Result<Option<i64>> {
        if self.seen.may_hold(id) {
            return payment_key(c, &self.recent, id);
        }
        if let Some(metrics) = &self.metrics {
            metrics.refs_filter_skips.inc();
        }
        Ok(None)
    }

    /// Moves the ids of the next slice of the key space into the table, in key order: the
    /// commit's last writes.
    pub(crate) fn write(&mut self, tx: &Transaction<'_>) -> rusqlite::Result<()> {
        let inserted = self.staged.len() as u128;
        if inserted == 0 {
            return Ok(());
        }
        let end = self
            .cursor
            .checked_add(self.step.saturating_mul(inserted))
            .filter(|end| *end < u128::MAX);
        let slice: Vec<(Uuid, i64)> = {
            let ids = self
                .recent
                .ids
                .read()
                .unwrap_or_else(PoisonError::into_inner);
            let from = Uuid::from_u128(self.cursor);
            match end {
                Some(end) => ids
                    .range(from..Uuid::from_u128(end))
                    .map(|(id, key)| (*id, *key))
                    .collect(),
                None => ids.range(from..).map(|(id, key)| (*id, *key)).collect(),
            }
        };
        let mut insert = tx.prepare_cached(
            "INSERT INTO payment_refs (reference_id, payment) VALUES (?1, ?2)
             ON CONFLICT (reference_id) DO NOTHING",
        )?;
        for (id, key) in slice {
            insert.execute(params![id.as_bytes(), key])?;
            self.swept.push(id);
        }
        if end.is_none() {
            set_through(tx, self.round_max_id)?;
        }
        self.next = Some(match end {
            Some(end) => (end, false),
            None => (0, true),
        });
        Ok(())
    }

    /// The commit is on disk: its payments' ids join the map, the slice's leave it.
    pub(crate) fn committed(&mut self) {
        // A commit without new payments (a settlement) moved nothing: the readers' map
        // is not locked for it.
        if self.staged.is_empty() {
            return;
        }
        let mut ids = self
            .recent
            .ids
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        for id in self.swept.drain(..) {
            ids.remove(&id);
        }
        for (id, key) in self.staged.drain() {
            self.seen.insert(&id);
            ids.insert(id, key);
            self.max_id = self.max_id.max(key);
        }
        if let Some(metrics) = &self.metrics {
            metrics.refs_behind.set(ids.len() as i64);
        }
        drop(ids);
        if let Some((cursor, came_round)) = self.next.take() {
            self.cursor = cursor;
            if came_round {
                self.round_max_id = self.max_id;
            }
        }
    }
}
