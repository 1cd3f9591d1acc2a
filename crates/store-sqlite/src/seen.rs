//! Which reference ids may be taken: a Bloom filter in front of the look-up (issue 17).
//!
//! Every new payment's reference id is looked up twice before its insert: by the engine
//! (is it taken?) and by the commit, which keeps the unique constraint (`refs.rs`). Nearly
//! always the answer is no, and finding that out cost a statement and a descent of
//! `payment_refs` each time, to a random leaf of an index that outgrows the page cache: 4
//! to 6 % of the server's CPU in a profile of `mkoba bench`, a sixth of the writer's at a
//! million payments. [`Seen`] answers most of those from memory.
//!
//! It is a Bloom filter over every committed reference id: one 64-bit word per id, four
//! bits set in it, the word and the bits chosen by a hash of the id's 16 bytes (so ids that
//! count up, or share most of their bytes, spread as well as random ones). An id whose four
//! bits are not all set was never committed; one whose bits are may have been, and is looked
//! up as before. A wrong "may have been" costs only that look-up, never a wrong answer.
//!
//! # Bounds
//!
//! The filter is [`WORDS`] words (4 MiB) whatever the database holds. A new id is looked
//! up needlessly about once in 1,350 at a million ids, in 220 at two million, in 35 at four
//! million, in 4 at ten million (the words' loads are Poisson-distributed; the unit test
//! checks the first). Past that it slowly turns back into the look-up it stands in front
//! of: a larger database costs the time it did before, never more memory. Reading a
//! million ids took 55–60 ms (the file in the system's cache); the writer takes them in at
//! its next pass, within a second (`mkoba_sqlite_refs_filter_ready`).
//!
//! # Filled from the table behind the writer
//!
//! The writer adds each id it commits ([`Seen::insert`]). The ids committed before this
//! start are read from `payment_refs` on a thread of its own ([`Seen::load`]), in key order
//! and a slice at a time (each slice its own read, so no snapshot is held for long and
//! checkpoints go on), into a filter of its own that the writer merges in once it is
//! complete ([`Seen::poll`]). Until then, and for good if the reading fails, every id "may
//! have been". Nothing is missed: a start first puts every payment's id into the table
//! (`refs.rs`), rows leave it never, and what this writer commits it adds itself. A command
//! beside a running server ([`Seen::off`]) does not use the filter: the server may commit
//! ids it would not know of.

use std::sync::mpsc::{Receiver, TryRecvError, sync_channel};
use uuid::Uuid;

/// The filter's size in 64-bit words (a power of two): 4 MiB.
pub(crate) const WORDS: usize = 1 << 19;

/// Ids read from the table per statement while loading.
const LOAD_SLICE: usize = 16_384;

/// The writer's filter ([module docs](self)).
#[derive(Debug)]
pub(crate) struct Seen {
    words: Box<[u64]>,
    state: State,
}

#[derive(Debug)]
enum State {
    /// Every committed id is in the words.
    Complete,
    /// The ids committed before this start are being read into a filter of their own.
    Loading(Receiver<Box<[u64]>>),
    /// Not used: every id may be taken.
    Off,
}

/// The word of an id, and the bits of it that the id sets.
fn spot(id: &Uuid) -> (usize, u64) {
    let (high, low) = id.as_u64_pair();
    let h = mix(high ^ mix(low));
    let word = (h as usize) & (WORDS - 1);
    let bits = (0..4).fold(0u64, |bits, i| bits | 1 << ((h >> (19 + 6 * i)) & 63));
    (word, bits)
}

/// SplitMix64's finaliser: every bit of the output depends on every bit of the input.
fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

fn empty_words() -> Box<[u64]> {
    vec![0u64; WORDS].into_boxed_slice()
}

impl Seen {
    /// A filter for a database with no payment yet: complete from the start.
    pub(crate) fn empty() -> Seen {
        Seen {
            words: empty_words(),
            state: State::Complete,
        }
    }

    /// A filter that is never consulted (a command beside a running server).
    pub(crate) fn off() -> Seen {
        Seen {
            words: Box::default(),
            state: State::Off,
        }
    }

    /// A filter whose ids committed so far are read from `payment_refs` through `conn`, on a
    /// thread of its own. Every payment's id must be in that table already.
    pub(crate) fn load(conn: rusqlite::Connection) -> Seen {
        let (send, receive) = sync_channel(1);
        let spawned = std::thread::Builder::new()
            .name("mkoba-refs-load".into())
            .spawn(move || {
                let started = std::time::Instant::now();
                match read_all(&conn) {
                    Ok((words, ids)) => {
                        tracing::debug!(
                            ids,
                            ms = started.elapsed().as_millis() as u64,
                            "read the reference ids taken for the writer's filter"
                        );
                        let _ = send.send(words);
                    }
                    Err(e) => tracing::warn!(
                        error = %e,
                        "could not read the reference ids for the writer's filter; every new payment's id is looked up in the table"
                    ),
                }
            });
        if let Err(e) = spawned {
            tracing::warn!(error = %e, "could not start reading the reference ids for the writer's filter");
            return Seen::off();
        }
        Seen {
            words: empty_words(),
            state: State::Loading(receive),
        }
    }

    /// Takes in the loaded ids once they are read; true when the filter is complete.
    pub(crate) fn poll(&mut self) -> bool {
        if let State::Loading(receive) = &self.state {
            match receive.try_recv() {
                Ok(loaded) => {
                    for (word, more) in self.words.iter_mut().zip(loaded.iter()) {
                        *word |= more;
                    }
                    self.state = State::Complete;
                }
                Err(TryRecvError::Empty) => {}
                Err(TryRecvError::Disconnected) => {
                    self.words = Box::default();
                    self.state = State::Off;
                }
            }
        }
        matches!(self.state, State::Complete)
    }

    /// An id committed by this writer.
    pub(crate) fn insert(&mut self, id: &Uuid) {
        if !matches!(self.state, State::Off) {
            let (word, bits) = spot(id);
            self.words[word] |= bits;
        }
    }

    /// False only for an id never committed.
    pub(crate) fn may_hold(&self, id: &Uuid) -> bool {
        match self.state {
            State::Complete => {
                let (word, bits) = spot(id);
                self.words[word] & bits == bits
            }
            State::Loading(_) | State::Off => true,
        }
    }
}

/// Every id in `payment_refs`, a slice at a time in key order, into a filter; and how many.
fn read_all(conn: &rusqlite::Connection) -> rusqlite::Result<(Box<[u64]>, u64)> {
    let mut words = empty_words();
    let mut ids = 0;
    let mut slice = conn.prepare(
        "SELECT reference_id FROM payment_refs WHERE reference_id > ?1
         ORDER BY reference_id LIMIT ?2",
    )?;
    let mut after: Vec<u8> = Vec::new();
    loop {
        let mut read = 0;
        let mut rows = slice.query(rusqlite::params![after, LOAD_SLICE as i64])?;
        while let Some(row) = rows.next()? {
            let bytes: &[u8] = row.get_ref(0)?.as_blob()?;
            let id = Uuid::from_slice(bytes).map_err(|e| {
                rusqlite::Error::FromSqlConversionFailure(
                    0,
                    rusqlite::types::Type::Blob,
                    Box::new(e),
                )
            })?;
            let (word, bits) = spot(&id);
            words[word] |= bits;
            after.clear();
            after.extend_from_slice(bytes);
            read += 1;
        }
        ids += read as u64;
        if read < LOAD_SLICE {
            return Ok((words, ids));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counting_up(n: u128) -> impl Iterator<Item = Uuid> {
        (1..=n).map(Uuid::from_u128)
    }

    #[test]
    fn an_inserted_id_may_be_held_and_few_others_seem_to_be() {
        for ids in [
            Box::new(counting_up(1_000_000)) as Box<dyn Iterator<Item = Uuid>>,
            Box::new((0..1_000_000).map(|_| Uuid::new_v4())),
        ] {
            let mut seen = Seen::empty();
            let ids: Vec<Uuid> = ids.collect();
            for id in &ids {
                seen.insert(id);
            }
            assert!(ids.iter().all(|id| seen.may_hold(id)));
            // Ids never inserted: counting on past them, and random ones.
            let others: Vec<Uuid> = (2_000_000..2_100_000u128)
                .map(Uuid::from_u128)
                .chain((0..100_000).map(|_| Uuid::new_v4()))
                .collect();
            let wrong = others.iter().filter(|id| seen.may_hold(id)).count();
            // About 1 in 1,350 at a million ids; 1 in 100 would mean a poor hash.
            assert!(wrong < others.len() / 100, "{wrong} of {}", others.len());
        }
    }

    #[test]
    fn loading_reads_every_id_of_the_table_slice_by_slice() {
        let conn = rusqlite::Connection::open_in_memory().unwrap();
        conn.execute_batch(
            "CREATE TABLE payment_refs (reference_id BLOB PRIMARY KEY, payment INTEGER)
             WITHOUT ROWID",
        )
        .unwrap();
        let ids: Vec<Uuid> = (0..LOAD_SLICE * 5 / 2).map(|_| Uuid::new_v4()).collect();
        let tx = conn.unchecked_transaction().unwrap();
        for (i, id) in ids.iter().enumerate() {
            tx.execute(
                "INSERT INTO payment_refs VALUES (?1, ?2)",
                rusqlite::params![id.as_bytes(), i as i64],
            )
            .unwrap();
        }
        tx.commit().unwrap();
        let (send, receive) = sync_channel(1);
        let (words, read) = read_all(&conn).unwrap();
        assert_eq!(read, ids.len() as u64);
        send.send(words).unwrap();
        let mut seen = Seen {
            words: empty_words(),
            state: State::Loading(receive),
        };
        assert!(seen.poll());
        assert!(ids.iter().all(|id| seen.may_hold(id)));
        let wrong = (0..10_000)
            .filter(|_| seen.may_hold(&Uuid::new_v4()))
            .count();
        assert!(wrong < 10, "{wrong} of 10,000 new ids seemed taken");
    }

    #[test]
    fn a_filter_loading_or_off_holds_everything() {
        let (_send, receive) = sync_channel(1);
        let mut loading = Seen {
            words: empty_words(),
            state: State::Loading(receive),
        };
        assert!(loading.may_hold(&Uuid::new_v4()));
        assert!(!loading.poll());
        let mut off = Seen::off();
        off.insert(&Uuid::new_v4());
        assert!(!off.poll());
        assert!(off.may_hold(&Uuid::new_v4()));
    }

    #[test]
    fn a_loader_that_ends_without_its_ids_turns_the_filter_off() {
        let (send, receive) = sync_channel::<Box<[u64]>>(1);
        let mut seen = Seen {
            words: empty_words(),
            state: State::Loading(receive),
        };
        drop(send);
        assert!(!seen.poll());
        assert!(seen.may_hold(&Uuid::new_v4()));
    }
}
