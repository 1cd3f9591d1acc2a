//! PostgreSQL storage: the backend for a database shared by several gateway nodes.
//!
//! It implements the platform's storage traits ([`Journal`], [`Reader`] and the portal's)
//! with the same rows, queries and meanings as `mkoba-store-sqlite`, the behavioural
//! reference; the contract suite in `tests/contract/` runs unchanged against both. Any
//! number of nodes may write one database: their writers take turns, each pass starting
//! from what the others committed (`nodes.rs`, `docs/postgres.md`; [`NodeOptions`] names
//! a node).
//!
//! * [`open`] connects, migrates, and returns the journal (one connection, the writer's)
//!   and the reader (a pool of [`READERS`] connections). [`migrate`] and
//!   [`schema_version`] serve an explicit `migrate` step and a start-up check.
//! * Migrations are plain SQL in `crates/store-postgres/migrations/`, embedded, applied in
//!   order in one transaction under an advisory lock (so two nodes starting at once do not
//!   race) and recorded in `schema_migrations`; a database newer than the binary is refused.
//! * [`Journal::commit`] writes a whole [`Batch`] in one transaction; the writer's session
//!   keeps `synchronous_commit` on, so a commit is flushed before it returns.
//! * Every PostgreSQL call runs on a connection thread the store owns, never on the
//!   caller's (`conn.rs` says why: the sync client cannot run inside a tokio runtime).
//!
//! Build cost, measured on the project's 2-core machine (dev profile, dependencies at
//! opt-level 1): the `postgres` client adds 24 crates to the workspace's build
//! (tokio-postgres, postgres, postgres-protocol, postgres-types, async-trait, phf,
//! stringprep and its unicode tables, whoami, md-5, parking_lot, tokio-util, …; tokio,
//! socket2, futures, sha2, hmac and rand are shared), which compile in about 23 s of wall
//! time (40 s of CPU) from scratch, most of it tokio-postgres and postgres; this crate
//! itself takes about 6 s, its contract tests about 3 s. Cargo.lock holds postgres at
//! 0.19.12 so that it shares the workspace's RustCrypto versions (see the workspace
//! manifest).
//!
//! A group commit is a handful of statements, not one per row: the rows that grow with
//! traffic go to PostgreSQL as arrays, one `UNNEST` statement per table (a batch of 1000
//! payments with their transfers and callbacks commits in about 50–90 ms here, against
//! about 260 ms row by row and 25 ms for SQLite).

use mkoba_platform::test_clock::{ClockWrite, TestClock};
use std::sync::Arc;

use mkoba_ledger::{Account, Currency, Transfer};
use mkoba_platform::model::{
    AccountOwner, ApiUser, CallbackAttempt, OutboxItem, Party, Payment, PaymentKind,
    SubscriptionKey,
};
use mkoba_platform::rows::{
    self, ACCOUNT_COLUMNS, API_USER_COLUMNS, ATTEMPT_COLUMNS, CLOCK_COLUMNS, KEY_COLUMNS,
    OUTBOX_COLUMNS, PAYMENT_COLUMNS, TRANSFER_COLUMNS,
};
use mkoba_platform::store::{
    Batch, CurrencyTotals, Journal, LoadedState, OutboxUpdate, Reader, StoreError, TransferRecord,
    load_accounts_sql, wallets_limit,
};
use tokio_postgres::types::{FromSql, ToSql};
use tokio_postgres::{Config, Row};
use uuid::Uuid;

mod conn;
mod mpesa;
mod nodes;
mod portal;

pub use nodes::{NodeOptions, PASS_LOCK};

use conn::{Conn, Error, Op, Result, Role, Workers, op};

/// Migrations, applied in order; `schema_migrations` records each version applied.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0002_nodes.sql"),
    include_str!("../migrations/0003_widget.sql"),
    include_str!("../migrations/0004_accounts.sql"),
    include_str!("../migrations/0005_golive.sql"),
    include_str!("../migrations/0006_test_clocks.sql"),
    include_str!("../migrations/0007_transfers_accounts_checked_per_statement.sql"),
    include_str!("../migrations/0008_accounts_updated_in_place.sql"),
    include_str!("../migrations/0009_party_index_for_mandates.sql"),
    include_str!("../migrations/0010_updates_in_place.sql"),
    include_str!("../migrations/0011_reference_hash_indexes.sql"),
    include_str!("../migrations/0012_fewer_probes_no_compression.sql"),
    include_str!("../migrations/0013_used_auth_requests.sql"),
    include_str!("../migrations/0014_node_leases.sql"),
    include_str!("../migrations/0015_first_attempt_on_outbox.sql"),
    include_str!("../migrations/0016_api_key_endings.sql"),
    include_str!("../migrations/0017_node_instances.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// Connections in the reader's pool (one thread each).
pub const READERS: usize = 8;

/// Serialises migrations of one database across processes (`pg_advisory_xact_lock`).
const MIGRATION_LOCK: i64 = 0x6d6b_6f62_615f_6d67; // "mkoba_mg"
/// The advisory lock under which a shared setting is made the first time.
const SETTINGS_LOCK: i64 = 0x6d6b_6f62_615f_7374; // "mkoba_st"

/// Connects to the database at `url`, migrates it, and returns the journal and the reader.
///
/// `url` is a libpq-style connection string: `postgresql://user:password@host:port/db` or
/// `host=… user=… dbname=…`; a `host` that is a directory names a Unix socket. TLS is not
/// supported yet (`sslmode=require` fails).
pub fn open(url: &str) -> std::result::Result<(PgJournal, PgReader), StoreError> {
    open_as(url, NodeOptions::default())
}

/// [`open`] for a one-off command rather than a server node: no heartbeat, no row in
/// `nodes` (a command run beside the servers is not one of them).
pub fn open_for_command(url: &str) -> std::result::Result<(PgJournal, PgReader), StoreError> {
    open_with(url, NodeOptions::default(), false)
}

/// [`open`] for a named node of several sharing the database (see [`NodeOptions`]).
pub fn open_as(
    url: &str,
    node: NodeOptions,
) -> std::result::Result<(PgJournal, PgReader), StoreError> {
    open_with(url, node, true)
}

fn open_with(
    url: &str,
    node: NodeOptions,
    beats: bool,
) -> std::result::Result<(PgJournal, PgReader), StoreError> {
    let config = conn::config(url)?;
    let node = Arc::new(node);
    let activity = Arc::new(conn::Activity::new());
    let worker = Workers::spawn(config.clone(), Role::Journal, 1, "mkoba-pg-journal")?
        .watched(activity.clone());
    worker.run(run_migrations)?;
    let journal = PgJournal {
        worker,
        node: node.clone(),
        seen: 0,
        in_pass: false,
        took_over_at: None,
        heartbeat: if beats {
            nodes::Heartbeat::start(config.clone(), node, activity)?
        } else {
            nodes::Heartbeat::none(&node)
        },
    };
    let reader = PgReader {
        pool: Workers::spawn(config, Role::Reader, READERS, "mkoba-pg-reader")?,
    };
    Ok((journal, reader))
}

/// Applies the migrations the database at `url` lacks; returns the schema version.
pub fn migrate(url: &str) -> std::result::Result<usize, StoreError> {
    once(url, run_migrations)
}

/// The schema version of the database at `url` (0 for an empty database), without changing
/// it: a server can refuse to start on an older schema than [`SCHEMA_VERSION`].
pub fn schema_version(url: &str) -> std::result::Result<usize, StoreError> {
    once(url, |c| {
        let row = c.query_one("SELECT to_regclass('schema_migrations') IS NOT NULL", &[])?;
        if !col::<bool>(&row, 0)? {
            return Ok(0);
        }
        let row = c.query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?;
        version(col(&row, 0)?)
    })
}

/// A value every node sharing the database at `url` must agree on (the `settings` row
/// `name`): the stored one, or — when there is none yet — `make()`'s, stored first. Nodes
/// starting at once take turns under an advisory lock, so `make` (an RSA key pair: seconds)
/// runs on one of them and the others wait for its value.
pub fn shared_setting(
    url: &str,
    name: &'static str,
    make: impl FnOnce() -> std::result::Result<Vec<u8>, StoreError> + Send + 'static,
) -> std::result::Result<Vec<u8>, StoreError> {
    let read = move |c: &mut Conn| -> Result<Option<Vec<u8>>> {
        c.query_opt("SELECT value FROM settings WHERE name = $1", &[&name])?
            .map(|r| col(&r, 0))
            .transpose()
    };
    if let Some(value) = once(url, read)? {
        return Ok(value);
    }
    once(url, move |c| {
        c.in_transaction("BEGIN", |c| {
            c.query("SELECT pg_advisory_xact_lock($1)", &[&SETTINGS_LOCK])?;
            if let Some(value) = read(c)? {
                return Ok(value);
            }
            let value = make()?;
            c.query(
                "INSERT INTO settings (name, value) VALUES ($1, $2)",
                &[&name, &value],
            )?;
            Ok(value)
        })
    })
}

/// Runs one job on a connection of its own, then closes it.
fn once<T: Send + 'static>(
    url: &str,
    f: impl FnOnce(&mut Conn) -> Result<T> + Send + 'static,
) -> std::result::Result<T, StoreError> {
    let config: Arc<Config> = conn::config(url)?;
    Workers::spawn(config, Role::Journal, 1, "mkoba-pg-admin")?.run(f)
}

fn version(v: i64) -> Result<usize> {
    usize::try_from(v).map_err(|_| Error::Bad(format!("bad schema version {v}")))
}

fn run_migrations(c: &mut Conn) -> Result<usize> {
    c.in_transaction("BEGIN", |c| {
        c.query("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK])?;
        c.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations (
                 version BIGINT PRIMARY KEY,
                 applied_at_ms BIGINT NOT NULL
             )",
        )?;
        let row = c.query_one(
            "SELECT COALESCE(MAX(version), 0) FROM schema_migrations",
            &[],
        )?;
        let current = version(col(&row, 0)?)?;
        if current > MIGRATIONS.len() {
            return Err(Error::Bad(format!(
                "the database schema (version {current}) is newer than this binary (version {}); upgrade mkoba",
                MIGRATIONS.len()
            )));
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(current) {
            c.batch_execute(sql)?;
            c.query(
                "INSERT INTO schema_migrations (version, applied_at_ms) VALUES ($1, $2)",
                &[&((i + 1) as i64), &mkoba_platform::clock::system_now_ms()],
            )?;
        }
        Ok(MIGRATIONS.len())
    })
}

/// The write side; owned by the platform's writer thread.
#[derive(Debug)]
pub struct PgJournal {
    worker: Workers,
    node: Arc<NodeOptions>,
    /// `writer_log.seq` as of this node's last look: what its memory reflects.
    seen: i64,
    /// A pass is open (`begin` held the lock; `commit` or `end` releases it).
    in_pass: bool,
    /// When this node last looked for callbacks to take over.
    took_over_at: Option<std::time::Instant>,
    /// The heartbeat, written outside the passes, and the lease it renews
    /// ([`nodes::Heartbeat`]).
    heartbeat: nodes::Heartbeat,
}

/// The read side: a pool of connections.
#[derive(Debug)]
pub struct PgReader {
    pool: Workers,
}

/// A PostgreSQL row as the shared codecs read it ([`mkoba_platform::rows`]).
pub(crate) struct Pg<'a>(pub(crate) &'a Row);

impl Pg<'_> {
    fn get<'a, T: FromSql<'a>>(&'a self, i: usize) -> std::result::Result<T, StoreError> {
        self.0
            .try_get(i)
            .map_err(|e| StoreError(format!("postgres: column {i}: {e}")))
    }
}

impl rows::Row for Pg<'_> {
    fn text(&self, i: usize) -> std::result::Result<Option<&str>, StoreError> {
        self.get(i)
    }

    fn int(&self, i: usize) -> std::result::Result<Option<i64>, StoreError> {
        self.get(i)
    }

    fn bytes(&self, i: usize) -> std::result::Result<Option<&[u8]>, StoreError> {
        self.get(i)
    }

    fn flag(&self, i: usize) -> std::result::Result<Option<bool>, StoreError> {
        self.get(i)
    }
}

/// `INSERT INTO payments`, from one array per column; the pending ones enter
/// `pending_payments` (migration 10).
static INSERT_PAYMENTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH new AS (
             INSERT INTO payments ({PAYMENT_COLUMNS})
             SELECT * FROM UNNEST(
                 $1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[],
                 $7::TEXT[], $8::TEXT[], $9::TEXT[], $10::TEXT[], $11::TEXT[], $12::TEXT[],
                 $13::TEXT[], $14::TEXT[], $15::TEXT[], $16::TEXT[], $17::BIGINT[],
                 $18::BIGINT[], $19::BIGINT[], $20::BIGINT[], $21::BIGINT[], $22::TEXT[],
                 $23::TEXT[], $24::TEXT[], $25::BIGINT[], $26::TEXT[])
             RETURNING reference_id, status)
         INSERT INTO pending_payments SELECT reference_id FROM new WHERE status = 'PENDING'"
    )
});

fn bad(what: &str, value: &str) -> Error {
    Error::Bad(format!("bad {what} {value:?} in the database"))
}

/// Column `i`, type-checked.
fn col<'a, T: FromSql<'a>>(row: &'a Row, i: usize) -> Result<T> {
    Ok(row.try_get(i)?)
}

fn uuid_col(row: &Row, i: usize) -> Result<Uuid> {
    let s: &str = col(row, i)?;
    Uuid::parse_str(s).map_err(|_| bad("uuid", s))
}

fn hash_col(row: &Row, i: usize) -> Result<[u8; 32]> {
    let v: &[u8] = col(row, i)?;
    v.try_into().map_err(|_| bad("hash", "of the wrong length"))
}

pub(crate) fn payment_row(row: &Row) -> Result<Payment> {
    Ok(rows::payment(&Pg(row))?)
}

fn payments(rows: &[Row]) -> Result<Vec<Payment>> {
    rows.iter().map(payment_row).collect()
}

fn account_row(row: &Row) -> Result<Account> {
    Ok(rows::account(&Pg(row))?)
}

fn transfer_row(row: &Row) -> Result<Transfer> {
    Ok(rows::transfer(&Pg(row))?)
}

pub(crate) fn api_user_row(r: &Row) -> Result<ApiUser> {
    Ok(rows::api_user(&Pg(r))?)
}

/// Whether `sql` (with one parameter) returns a row.
fn exists(c: &mut Conn, sql: &str, param: &(dyn ToSql + Sync)) -> Result<bool> {
    Ok(c.query_opt(sql, &[param])?.is_some())
}

pub(crate) fn outbox_row(r: &Row) -> Result<OutboxItem> {
    Ok(rows::outbox_item(&Pg(r))?)
}

/// This node's (`$1`) pending callbacks where `rest` holds (`p` the pending row).
fn own_pending(rest: &str) -> String {
    format!(
        "SELECT {} FROM pending_callbacks p JOIN outbox o ON o.id = p.id
         WHERE o.node = $1 AND {rest}",
        rows::prefixed(OUTBOX_COLUMNS, "o")
    )
}

pub(crate) fn key_row(r: &Row) -> Result<SubscriptionKey> {
    Ok(rows::subscription_key(&Pg(r))?)
}

/// The state the writer keeps in memory, and the commit count it reflects. The callbacks
/// it returns are this node's to deliver: its own, and those nobody live owns (taken over
/// here first).
fn load(
    c: &mut Conn,
    node: &NodeOptions,
    wallets: usize,
    others: bool,
) -> Result<(LoadedState, i64)> {
    nodes::abandon_pass(c);
    nodes::take_over_callbacks(c, node, true, others)?;
    // One snapshot for the whole state.
    c.in_transaction("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", |c| {
        load_state(c, wallets)
    })
}

/// [`load`]'s reads, inside its transaction.
fn load_state(c: &mut Conn, wallets: usize) -> Result<(LoadedState, i64)> {
    let mut state = LoadedState::default();
    let seq: i64 = col(
        &c.query("SELECT seq FROM writer_log WHERE id = 1", &[])?[0],
        0,
    )?;
    for r in c.query(
        &load_accounts_sql(ACCOUNT_COLUMNS),
        &[&wallets_limit(wallets)],
    )? {
        state
            .accounts
            .push((account_row(&r)?, rows::owner(&Pg(&r), 7)?));
    }
    // What is pending, through the ids of `pending_*` (migration 10), each row by its key.
    state.pending_transfers = c
        .query(
            &format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers
                 WHERE id = ANY(ARRAY(SELECT id FROM pending_transfers)) ORDER BY id"
            ),
            &[],
        )?
        .iter()
        .map(transfer_row)
        .collect::<Result<_>>()?;
    state.pending_payments = payments(&c.query(
        &format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE reference_id = ANY(ARRAY(SELECT reference_id FROM pending_payments))"
        ),
        &[],
    )?)?;
    state.max_account_id = col::<i64>(
        &c.query("SELECT COALESCE(MAX(id), 0) FROM accounts", &[])?[0],
        0,
    )? as u64;
    state.max_transfer_id = col::<i64>(
        &c.query("SELECT COALESCE(MAX(id), 0) FROM transfers", &[])?[0],
        0,
    )? as u64;
    state.max_outbox_id = col(
        &c.query("SELECT COALESCE(MAX(id), 0) FROM outbox", &[])?[0],
        0,
    )?;
    state.subscription_keys = c
        .query(&format!("SELECT {KEY_COLUMNS} FROM subscription_keys"), &[])?
        .iter()
        .map(key_row)
        .collect::<Result<_>>()?;
    state.token_secret = c
        .query(
            "SELECT value FROM settings WHERE name = 'token_secret'",
            &[],
        )?
        .first()
        .map(|r| col(r, 0))
        .transpose()?;
    state.test_clocks = c
        .query(&format!("SELECT {CLOCK_COLUMNS} FROM test_clocks"), &[])?
        .iter()
        .map(clock_row)
        .collect::<Result<_>>()?;
    Ok((state, seq))
}

fn clock_row(r: &Row) -> Result<TestClock> {
    Ok(rows::test_clock(&Pg(r))?)
}

/// Every test clock (a node taking in another's changes).
pub(crate) fn test_clocks(c: &mut Conn) -> Result<Vec<TestClock>> {
    c.query(&format!("SELECT {CLOCK_COLUMNS} FROM test_clocks"), &[])?
        .iter()
        .map(clock_row)
        .collect()
}

impl PgJournal {
    /// Whether this node may take other nodes' callbacks over now: while its lease never
    /// lapsed, or once it has held it again for a whole lease. After an outage of the
    /// database every node's heartbeat stopped at once and every node looks gone to every
    /// other until each has beaten again: two live nodes took each other's callbacks over
    /// at the first reload after a 20 s outage (crash audit, 2026-12-06).
    ///
    /// And only while its lease is fresh: when the database comes back, the writer may
    /// reload before the heartbeat thread has confirmed the beat that starts the new
    /// generation, and the generation and the time held still read as before the outage;
    /// three and four nodes took each other's callbacks and sent 14–23 again (PostgreSQL
    /// audit, 2026-12-07: a node logged its takeover 18 ms before its own lapse).
    fn may_take_others(&self) -> bool {
        let lease = &self.heartbeat.lease;
        lease.is_fresh()
            && (lease.generation() <= 1
                || lease.held_for().is_some_and(|held| held >= self.node.lease))
    }
}

impl Journal for PgJournal {
    fn load(&mut self, wallets: usize) -> std::result::Result<LoadedState, StoreError> {
        let node = self.node.clone();
        let others = self.may_take_others();
        let (state, seq) = self
            .worker
            .run_again_if_closed(move |c| load(c, &node, wallets, others))?;
        self.seen = seq;
        self.in_pass = false;
        Ok(state)
    }

    fn pending_outbox(
        &mut self,
        after_id: i64,
        limit: usize,
    ) -> std::result::Result<Vec<OutboxItem>, StoreError> {
        let node = self.node.id.clone();
        let limit = limit as i64;
        self.worker.run_again_if_closed(move |c| {
            c.query(
                &own_pending("p.id > $2 ORDER BY p.id LIMIT $3"),
                &[&node, &after_id, &limit],
            )?
            .iter()
            .map(outbox_row)
            .collect()
        })
    }

    fn pending_outbox_row(
        &mut self,
        id: i64,
    ) -> std::result::Result<Option<OutboxItem>, StoreError> {
        let node = self.node.id.clone();
        self.worker.run_again_if_closed(move |c| {
            c.query(&own_pending("p.id = $2"), &[&node, &id])?
                .first()
                .map(outbox_row)
                .transpose()
        })
    }

    fn payment_exists(&mut self, id: &Uuid) -> std::result::Result<bool, StoreError> {
        let id = id.to_string();
        self.worker.run_again_if_closed(move |c| {
            exists(c, "SELECT 1 FROM payments WHERE reference_id = $1", &id)
        })
    }

    fn payments_existing(
        &mut self,
        ids: &[Uuid],
    ) -> std::result::Result<std::collections::HashSet<Uuid>, StoreError> {
        let ids: Vec<String> = ids.iter().map(Uuid::to_string).collect();
        self.worker.run_again_if_closed(move |c| {
            c.query(nodes::TAKEN_REFERENCES, &[&ids])?
                .iter()
                .map(|r| uuid_col(r, 0))
                .collect()
        })
    }

    fn api_user_exists(&mut self, id: &Uuid) -> std::result::Result<bool, StoreError> {
        let id = id.to_string();
        self.worker
            .run_again_if_closed(move |c| exists(c, "SELECT 1 FROM api_users WHERE id = $1", &id))
    }

    fn api_user_has_payments(&mut self, id: &Uuid) -> std::result::Result<bool, StoreError> {
        let id = id.to_string();
        self.worker.run_again_if_closed(move |c| {
            exists(c, "SELECT 1 FROM payments WHERE api_user = $1 LIMIT 1", &id)
        })
    }

    fn payment(&mut self, id: &Uuid) -> std::result::Result<Option<Payment>, StoreError> {
        let id = *id;
        self.worker
            .run_again_if_closed(move |c| read_payment(c, &id))
    }

    fn refunded_total(&mut self, original: &Uuid) -> std::result::Result<i64, StoreError> {
        let original = *original;
        self.worker
            .run_again_if_closed(move |c| mpesa::refunded_total(c, &original))
    }

    fn ledger_account(
        &mut self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> std::result::Result<Option<Account>, StoreError> {
        let owner = owner.key();
        self.worker
            .run_again_if_closed(move |c| read_account(c, &owner, currency))
    }

    fn ledger_accounts(
        &mut self,
        wanted: &[(AccountOwner, Currency)],
    ) -> std::result::Result<Vec<(AccountOwner, Account)>, StoreError> {
        let owners: Vec<String> = wanted.iter().map(|(o, _)| o.key()).collect();
        let currencies: Vec<String> = wanted.iter().map(|(_, c)| c.as_str().to_owned()).collect();
        self.worker
            .run_again_if_closed(move |c| read_accounts(c, &owners, &currencies))
    }

    fn payments_of_party(
        &mut self,
        api_user: &Uuid,
        kind: PaymentKind,
        party: &Party,
    ) -> std::result::Result<Vec<Payment>, StoreError> {
        let (api_user, party) = (*api_user, party.clone());
        self.worker
            .run_again_if_closed(move |c| payments_of_party(c, &api_user, kind, &party))
    }

    fn mpesa_app(
        &mut self,
        developer_id: i64,
    ) -> std::result::Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        self.worker
            .run_again_if_closed(move |c| mpesa::app(c, developer_id))
    }

    fn commit(&mut self, b: &Batch) -> std::result::Result<(), StoreError> {
        let ops = batch_ops(b, &self.node.id);
        let marks = nodes::Marks::of(b);
        if ops.is_empty() {
            return self.end();
        }
        // A process whose node id another has taken writes nothing more: callbacks written
        // under the id would be neither its to send (its lease lapsed) nor the new holder's
        // (which loads its own at its start only).
        if let Some(why) = self.gone() {
            let _ = self.end();
            return Err(StoreError(why));
        }
        // Within a pass, nobody may have written since it began (the lock is lost with a
        // lost connection); outside one (start-up, tools), a commit stands alone.
        let expect = self.in_pass.then_some(self.seen);
        self.in_pass = false;
        let node = self.node.clone();
        let (before, after) = self
            .worker
            .run(move |c| nodes::commit_pass(c, &node, &ops, marks, expect))?;
        if before == self.seen {
            self.seen = after;
        }
        Ok(())
    }

    fn begin(&mut self) -> std::result::Result<Option<mkoba_platform::store::Changes>, StoreError> {
        Ok(self.begin_looking_up(&[])?.0)
    }

    fn begin_looking_up(
        &mut self,
        references: &[Uuid],
    ) -> std::result::Result<
        (
            Option<mkoba_platform::store::Changes>,
            Option<std::collections::HashSet<Uuid>>,
        ),
        StoreError,
    > {
        let take_over = self.took_over_at.is_none_or(|at| {
            at.elapsed() >= std::time::Duration::from_millis(nodes::HEARTBEAT_MS as u64)
        }) && self.may_take_others();
        let (node, seen) = (self.node.clone(), self.seen);
        let ids: Vec<String> = references.iter().map(Uuid::to_string).collect();
        self.in_pass = false;
        let (seq, changes, taken) = self
            .worker
            .run(move |c| nodes::begin_pass(c, &node, seen, take_over, &ids))?;
        self.in_pass = true;
        self.seen = seq;
        if take_over {
            self.took_over_at = Some(std::time::Instant::now());
        }
        Ok((changes, (!references.is_empty()).then_some(taken)))
    }

    fn end(&mut self) -> std::result::Result<(), StoreError> {
        if !std::mem::take(&mut self.in_pass) {
            return Ok(());
        }
        self.worker.run(nodes::end_pass)
    }

    fn poll_interval(&self) -> Option<std::time::Duration> {
        Some(self.node.poll)
    }

    fn lease(&self) -> Option<mkoba_platform::lease::Lease> {
        Some(self.heartbeat.lease.clone())
    }

    fn gone(&self) -> Option<String> {
        self.heartbeat.ousted().then(|| {
            format!(
                "another process runs as node {:?} now; this one writes nothing more: stop it, or give it a --node-id of its own",
                self.node.id
            )
        })
    }
}

/// The statements that write a batch, in the order SQLite's `write_batch` runs them (rows
/// that others reference come first). The rare rows are one statement each; the rows that
/// grow with traffic are one statement per table ([`bulk_ops`]).
fn batch_ops(b: &Batch, node: &str) -> Vec<Op> {
    let mut ops = Vec::new();
    let now = mkoba_platform::clock::system_now_ms();
    for id in &b.developers {
        ops.push(op!(
            "INSERT INTO developers (id, created_at_ms) VALUES ($1, $2)",
            *id,
            now
        ));
    }
    for k in &b.subscription_keys {
        ops.push(op!(
            "INSERT INTO subscription_keys (key, developer_id, product, slot, seq)
             VALUES ($1, $2, $3, $4, current_setting('mkoba.seq')::BIGINT)
             ON CONFLICT (developer_id, product, slot) DO UPDATE SET key = excluded.key, seq = excluded.seq",
            k.key.clone(),
            k.developer_id,
            k.product.as_str(),
            k.slot.as_str()
        ));
    }
    for k in &b.missing_keys {
        ops.push(op!(
            "INSERT INTO subscription_keys (key, developer_id, product, slot, seq)
             VALUES ($1, $2, $3, $4, current_setting('mkoba.seq')::BIGINT)
             ON CONFLICT (developer_id, product, slot) DO NOTHING",
            k.key.clone(),
            k.developer_id,
            k.product.as_str(),
            k.slot.as_str()
        ));
    }
    if let Some(secret) = &b.token_secret {
        ops.push(op!(
            "INSERT INTO settings (name, value) VALUES ('token_secret', $1)
             ON CONFLICT (name) DO NOTHING",
            secret.clone()
        ));
    }
    for u in &b.api_users {
        ops.push(op!(
            "INSERT INTO api_users (id, developer_id, provider_callback_host, target_environment, created_at_ms)
             VALUES ($1, $2, $3, $4, $5)",
            u.id.to_string(),
            u.developer_id,
            u.provider_callback_host.clone(),
            u.target_environment.clone(),
            u.created_at_ms
        ));
    }
    for k in &b.api_keys {
        ops.push(op!(
            "INSERT INTO api_keys (api_user, key_hash, created_at_ms, ending) VALUES ($1, $2, $3, $4)",
            k.api_user.to_string(),
            k.key_hash.to_vec(),
            k.created_at_ms,
            k.ending.clone()
        ));
        ops.push(op!(
            "DELETE FROM api_keys WHERE api_user = $1 AND id NOT IN
               (SELECT id FROM api_keys WHERE api_user = $1 ORDER BY id DESC LIMIT $2)",
            k.api_user.to_string(),
            mkoba_platform::store::MAX_API_KEYS_PER_USER
        ));
    }
    bulk_ops(b, node, &mut ops);
    portal::ops(&b.portal, &mut ops);
    mpesa::ops(&b.mpesa_apps, &mut ops);
    for w in &b.test_clocks {
        ops.push(match w {
            ClockWrite::Put(c) => op!(
                "INSERT INTO test_clocks (id, developer_id, api_user, name, now_ms, created_at_ms)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (id) DO UPDATE SET now_ms = excluded.now_ms",
                c.id.to_string(),
                c.developer_id,
                c.api_user.to_string(),
                c.name.clone(),
                c.now_ms,
                c.created_at_ms
            ),
            ClockWrite::Delete(id) => op!("DELETE FROM test_clocks WHERE id = $1", id.to_string()),
        });
    }
    ops
}

/// One value per item.
fn each<T, V>(items: &[T], f: impl Fn(&T) -> V) -> Vec<V> {
    items.iter().map(f).collect()
}

/// The last item of each key, for updates that overwrite whole rows: applying only the last
/// one is what applying them all in order does.
fn last_of_each<T, K: std::hash::Hash + Eq>(items: &[T], key: impl Fn(&T) -> K) -> Vec<&T> {
    let mut last = std::collections::HashMap::new();
    for (i, item) in items.iter().enumerate() {
        last.insert(key(item), i);
    }
    let mut keep: Vec<usize> = last.into_values().collect();
    keep.sort_unstable();
    keep.into_iter().map(|i| &items[i]).collect()
}

// The statements of `bulk_ops`, one per table.
const INSERT_ACCOUNTS: &str = "INSERT INTO accounts (id, owner, currency, limit_kind, debits_pending, debits_posted, credits_pending, credits_posted, seq)
             SELECT id, owner, currency, limit_kind, 0, 0, 0, 0, current_setting('mkoba.seq')::BIGINT
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[]) WITH ORDINALITY
                 AS u(id, owner, currency, limit_kind, n)
             ORDER BY n";
const UPDATE_ACCOUNTS: &str = "UPDATE accounts SET debits_pending = u.dp, debits_posted = u.dpo, credits_pending = u.cp, credits_posted = u.cpo
             FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::BIGINT[])
                 AS u(id, dp, dpo, cp, cpo)
             WHERE accounts.id = u.id";
/// The end of a statement whose CTE `rows` returns the `id` and `state` of the rows it
/// wrote: `set` (a `pending_*` table keyed by `column`, migration 10) then holds the id of
/// each of those rows exactly while its state is `pending`, so the write itself changes no
/// indexed column and PostgreSQL can make it in place.
fn keeping_pending(set: &str, column: &str, rows: &str, pending: &str) -> String {
    format!(
        "pending AS (
             INSERT INTO {set} SELECT id FROM {rows} WHERE state = '{pending}'
             ON CONFLICT ({column}) DO NOTHING)
         DELETE FROM {set} USING {rows}
         WHERE {set}.{column} = {rows}.id AND {rows}.state <> '{pending}'"
    )
}

/// A batch's transfers: those no longer pending are first changed by id where they exist
/// (most often written in an earlier batch, now posted or voided: an update in place), and
/// the rest are inserted (new ones, pending or posted at once, and those created and
/// settled in this batch), as SQLite's writer does row by row. Against one upsert of them
/// all, the transfers' statement time fell by 7 % on the means of three pairs
/// (`pg_stat_statements`, docs/architecture.md). A transfer inserted that exists already
/// fails the commit (primary key): never silently dropped.
static WRITE_TRANSFERS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH u AS (
             UPDATE transfers SET state = r.state, updated_at_ms = r.updated_at_ms
             FROM UNNEST($1::BIGINT[], $6::TEXT[], $9::BIGINT[]) AS r(id, state, updated_at_ms)
             WHERE transfers.id = r.id AND r.state <> 'pending'
             RETURNING transfers.id, transfers.state),
         i AS (
             INSERT INTO transfers (id, debit_account, credit_account, amount, currency, state, reference_id, created_at_ms, updated_at_ms)
             SELECT * FROM UNNEST($1::BIGINT[], $2::BIGINT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[],
                                  $6::TEXT[], $7::TEXT[], $8::BIGINT[], $9::BIGINT[])
                 AS n(id, debit_account, credit_account, amount, currency, state, reference_id, created_at_ms, updated_at_ms)
             WHERE n.id NOT IN (SELECT id FROM u)
             RETURNING id, state),
         t AS (SELECT id, state FROM u UNION ALL SELECT id, state FROM i),
         {}",
        keeping_pending("pending_transfers", "id", "t", "pending")
    )
});
static UPDATE_PAYMENTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH u AS (
             UPDATE payments SET status = u.status, reason = u.reason,
                 financial_transaction_id = u.financial_transaction_id, settled_at_ms = u.settled_at_ms,
                 transfer_id = u.transfer_id, notifications = u.notifications
             FROM UNNEST($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::BIGINT[], $6::BIGINT[], $7::BIGINT[])
                 AS u(reference_id, status, reason, financial_transaction_id, settled_at_ms, transfer_id, notifications)
             WHERE payments.reference_id = u.reference_id
             RETURNING payments.reference_id AS id, payments.status AS state),
         {}",
        keeping_pending("pending_payments", "reference_id", "u", "PENDING")
    )
});
const INSERT_OUTBOX: &str = "WITH o AS (
                 INSERT INTO outbox (id, reference_id, url, method, body, state, attempts, next_attempt_at_ms, node)
                 SELECT id, reference_id, url, method, body, 'pending', attempts, next_attempt_at_ms, $8
                 FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::BIGINT[], $7::BIGINT[])
                     WITH ORDINALITY AS u(id, reference_id, url, method, body, attempts, next_attempt_at_ms, n)
                 ORDER BY n
                 RETURNING id)
             INSERT INTO pending_callbacks SELECT id FROM o";
const INSERT_ATTEMPTS: &str = "INSERT INTO callback_attempts (outbox_id, reference_id, attempt, at_ms, url, method, status_code, latency_ms, error, retry_at_ms, node)
             SELECT outbox_id, reference_id, attempt, at_ms, url, method, status_code, latency_ms, error, retry_at_ms, $11
             FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $5::TEXT[], $6::TEXT[],
                         $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::BIGINT[])
                 WITH ORDINALITY AS u(outbox_id, reference_id, attempt, at_ms, url, method, status_code,
                                      latency_ms, error, retry_at_ms, n)
             ORDER BY n";
/// The outcome of each callback attempt on its row (this node's rows only), with the
/// row's first attempt where the update carries one and the row has none yet
/// (`OutboxUpdate::first_attempt`). A first attempt not stored on its row (the row had one,
/// or is another node's now) is inserted into `callback_attempts` instead. Whether a row
/// had one is read in the statement's snapshot (`had`); a row this node still owns when the
/// update reaches it is written by this writer alone, so the snapshot is its state then.
static UPDATE_OUTBOX: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "WITH u AS (
             SELECT * FROM UNNEST($1::BIGINT[], $2::TEXT[], $3::BIGINT[], $4::BIGINT[], $6::BIGINT[],
                                  $7::BIGINT[], $8::BIGINT[], $9::TEXT[], $10::BIGINT[])
                 AS u(id, state, attempts, next_attempt_at_ms, first_at_ms, first_status_code,
                      first_latency_ms, first_error, first_retry_at_ms)),
         had AS (
             SELECT outbox.id FROM outbox JOIN u ON outbox.id = u.id
             WHERE u.first_at_ms IS NOT NULL AND outbox.first_at_ms IS NOT NULL),
         o AS (
             UPDATE outbox SET state = u.state, attempts = u.attempts, next_attempt_at_ms = u.next_attempt_at_ms,
                 first_at_ms = COALESCE(outbox.first_at_ms, u.first_at_ms),
                 first_status_code = CASE WHEN outbox.first_at_ms IS NULL THEN u.first_status_code ELSE outbox.first_status_code END,
                 first_latency_ms = CASE WHEN outbox.first_at_ms IS NULL THEN u.first_latency_ms ELSE outbox.first_latency_ms END,
                 first_error = CASE WHEN outbox.first_at_ms IS NULL THEN u.first_error ELSE outbox.first_error END,
                 first_retry_at_ms = CASE WHEN outbox.first_at_ms IS NULL THEN u.first_retry_at_ms ELSE outbox.first_retry_at_ms END,
                 first_node = CASE WHEN outbox.first_at_ms IS NULL AND u.first_at_ms IS NOT NULL THEN $5 ELSE outbox.first_node END
             FROM u
             WHERE outbox.id = u.id AND outbox.node = $5
             RETURNING outbox.id, outbox.state),
         again AS (
             INSERT INTO callback_attempts (outbox_id, reference_id, attempt, at_ms, url, method, status_code, latency_ms, error, retry_at_ms, node)
             SELECT u.id, x.reference_id, 1, u.first_at_ms, x.url, x.method, u.first_status_code,
                    u.first_latency_ms, u.first_error, u.first_retry_at_ms, $5
             FROM u JOIN outbox x ON x.id = u.id
             WHERE u.first_at_ms IS NOT NULL
               AND (u.id IN (SELECT id FROM had) OR u.id NOT IN (SELECT id FROM o))),
         {}",
        keeping_pending("pending_callbacks", "id", "o", "pending")
    )
});

/// A batch's outbox updates as [`UPDATE_OUTBOX`] writes them: the last of each row (as
/// [`last_of_each`]) with the first of the batch's first attempts at that row; and the
/// row's other first attempts (the same callback sent twice), stored as `callback_attempts`
/// rows.
fn outbox_writes(
    updates: &[OutboxUpdate],
) -> (
    Vec<(&OutboxUpdate, Option<&CallbackAttempt>)>,
    Vec<&CallbackAttempt>,
) {
    let mut first = std::collections::HashMap::new();
    let mut again = Vec::new();
    for u in updates {
        if let Some(a) = &u.first_attempt {
            match first.entry(u.id) {
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(a);
                }
                std::collections::hash_map::Entry::Occupied(_) => again.push(a),
            }
        }
    }
    let rows = last_of_each(updates, |u| u.id)
        .into_iter()
        .map(|u| (u, first.get(&u.id).copied()))
        .collect();
    (rows, again)
}

/// The batch's high-volume rows, one statement per table over arrays (`UNNEST`), so a
/// group commit of thousands of payments costs a few round trips instead of one per row.
/// Each statement has the effect of SQLite's row-by-row statements in batch order:
/// inserts keep their order (callback attempts take their ids in it), whole-row updates
/// keep the last per row, and a transfer written several times is inserted with its first
/// write's columns and its last write's state and time.
fn bulk_ops(b: &Batch, node: &str, ops: &mut Vec<Op>) {
    if !b.new_accounts.is_empty() {
        let a = &b.new_accounts;
        ops.push(op!(
            INSERT_ACCOUNTS,
            each(a, |a| a.id.0 as i64),
            each(a, |a| a.owner.key()),
            each(a, |a| a.currency.as_str().to_owned()),
            each(a, |a| a.limit.as_str())
        ));
    }
    if !b.accounts.is_empty() {
        let a = last_of_each(&b.accounts, |a| a.id);
        ops.push(op!(
            UPDATE_ACCOUNTS,
            each(&a, |a| a.id.0 as i64),
            each(&a, |a| a.debits_pending),
            each(&a, |a| a.debits_posted),
            each(&a, |a| a.credits_pending),
            each(&a, |a| a.credits_posted)
        ));
    }
    if !b.transfers.is_empty() {
        let last = last_of_each(&b.transfers, |t| t.transfer.id);
        let mut first = std::collections::HashMap::new();
        for t in &b.transfers {
            first.entry(t.transfer.id).or_insert(t);
        }
        let rows: Vec<(&TransferRecord, &TransferRecord)> = last
            .into_iter()
            .map(|l| (first[&l.transfer.id], l))
            .collect();
        ops.push(op!(
            WRITE_TRANSFERS.as_str(),
            each(&rows, |(f, _)| f.transfer.id.0 as i64),
            each(&rows, |(f, _)| f.transfer.debit.0 as i64),
            each(&rows, |(f, _)| f.transfer.credit.0 as i64),
            each(&rows, |(f, _)| f.transfer.amount),
            each(&rows, |(f, _)| f.transfer.currency.as_str().to_owned()),
            each(&rows, |(_, l)| l.transfer.state.as_str()),
            each(&rows, |(f, _)| f.reference_id.map(|r| r.to_string())),
            each(&rows, |(f, _)| f.at_ms),
            each(&rows, |(_, l)| l.at_ms)
        ));
    }
    if !b.new_payments.is_empty() {
        let p = &b.new_payments;
        ops.push(op!(
            INSERT_PAYMENTS.as_str(),
            each(p, |p| p.reference_id.to_string()),
            each(p, |p| p.kind.as_str()),
            each(p, |p| p.product.as_str()),
            each(p, |p| p.api_user.to_string()),
            each(p, |p| p.environment.clone()),
            each(p, |p| p.amount.minor()),
            each(p, |p| p.currency().as_str().to_owned()),
            each(p, |p| p.external_id.clone()),
            each(p, |p| p.party.id_type.as_str()),
            each(p, |p| p.party.id.clone()),
            each(p, |p| p.payer_message.clone()),
            each(p, |p| p.payee_note.clone()),
            each(p, |p| p.callback_url.clone()),
            each(p, |p| p.status.as_str()),
            each(p, |p| p.reason.map(|r| r.as_str().to_owned())),
            each(p, |p| p.financial_transaction_id.clone()),
            each(p, |p| p.created_at_ms),
            each(p, |p| p.settled_at_ms),
            each(p, |p| p.settle_at_ms),
            each(p, |p| p.transfer_id.map(|t| t as i64)),
            each(p, |p| i64::from(p.notifications)),
            each(p, |p| p.callback_method.map(|m| m.as_str())),
            each(p, |p| p.refund_of.map(|r| r.to_string())),
            each(p, |p| p.details.clone()),
            each(p, |p| p.expires_at_ms),
            each(p, |p| p.short_code.clone())
        ));
    }
    if !b.payment_updates.is_empty() {
        let u = last_of_each(&b.payment_updates, |u| u.reference_id);
        ops.push(op!(
            UPDATE_PAYMENTS.as_str(),
            each(&u, |u| u.reference_id.to_string()),
            each(&u, |u| u.status.as_str()),
            each(&u, |u| u.reason.map(|r| r.as_str().to_owned())),
            each(&u, |u| u.financial_transaction_id.clone()),
            each(&u, |u| u.settled_at_ms),
            each(&u, |u| u.transfer_id.map(|t| t as i64)),
            each(&u, |u| i64::from(u.notifications))
        ));
    }
    if !b.outbox.is_empty() {
        let o = &b.outbox;
        ops.push(op!(
            INSERT_OUTBOX,
            each(o, |o| o.id),
            each(o, |o| o.reference_id.to_string()),
            each(o, |o| o.url.clone()),
            each(o, |o| o.method.as_str()),
            each(o, |o| o.body.clone()),
            each(o, |o| i64::from(o.attempts)),
            each(o, |o| o.next_attempt_at_ms),
            node.to_owned()
        ));
    }
    let (outbox_updates, first_again) = outbox_writes(&b.outbox_updates);
    let attempts: Vec<&CallbackAttempt> = b.attempts.iter().chain(first_again).collect();
    if !attempts.is_empty() {
        let a = &attempts;
        ops.push(op!(
            INSERT_ATTEMPTS,
            each(a, |a| a.outbox_id),
            each(a, |a| a.reference_id.to_string()),
            each(a, |a| i64::from(a.attempt)),
            each(a, |a| a.at_ms),
            each(a, |a| a.url.clone()),
            each(a, |a| a.method.as_str()),
            each(a, |a| a.status_code.map(i64::from)),
            each(a, |a| a.latency_ms),
            each(a, |a| a.error.clone()),
            each(a, |a| a.retry_at_ms),
            node.to_owned()
        ));
    }
    if !outbox_updates.is_empty() {
        let u = &outbox_updates;
        ops.push(op!(
            UPDATE_OUTBOX.as_str(),
            each(u, |(u, _)| u.id),
            each(u, |(u, _)| u.state.as_str()),
            each(u, |(u, _)| i64::from(u.attempts)),
            each(u, |(u, _)| u.next_attempt_at_ms),
            node.to_owned(),
            each(u, |(_, a)| a.map(|a| a.at_ms)),
            each(u, |(_, a)| a.and_then(|a| a.status_code).map(i64::from)),
            each(u, |(_, a)| a.map(|a| a.latency_ms)),
            each(u, |(_, a)| a.and_then(|a| a.error.clone())),
            each(u, |(_, a)| a.and_then(|a| a.retry_at_ms))
        ));
    }
    // What other nodes read again to catch up with this commit (`nodes::read_changes`).
    let payments: Vec<String> = b
        .new_payments
        .iter()
        .map(|p| p.reference_id)
        .chain(b.payment_updates.iter().map(|u| u.reference_id))
        .collect::<std::collections::BTreeSet<_>>()
        .iter()
        .map(Uuid::to_string)
        .collect();
    let mut transfers: Vec<i64> = b.transfers.iter().map(|t| t.transfer.id.0 as i64).collect();
    transfers.sort_unstable();
    transfers.dedup();
    if !payments.is_empty() || !transfers.is_empty() {
        ops.push(op!(nodes::INSERT_COMMIT_LOG, payments, transfers));
    }
}

/// The ledger account of an owner (by its stored key) in a currency.
fn read_account(c: &mut Conn, owner: &str, currency: Currency) -> Result<Option<Account>> {
    c.query_opt(
        &format!("SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE owner = $1 AND currency = $2"),
        &[&owner, &currency.as_str()],
    )?
    .as_ref()
    .map(account_row)
    .transpose()
}

/// The accounts of several owners (by stored key) in their currencies, in one query.
fn read_accounts(
    c: &mut Conn,
    owners: &[String],
    currencies: &[String],
) -> Result<Vec<(AccountOwner, Account)>> {
    c.query(
        &format!(
            "SELECT {ACCOUNT_COLUMNS}, owner FROM accounts
             WHERE (owner, currency) IN (SELECT * FROM UNNEST($1::TEXT[], $2::TEXT[]))"
        ),
        &[&owners, &currencies],
    )?
    .iter()
    .map(|r| Ok((rows::owner(&Pg(r), 7)?, account_row(r)?)))
    .collect()
}

fn payments_of_party(
    c: &mut Conn,
    api_user: &Uuid,
    kind: PaymentKind,
    party: &Party,
) -> Result<Vec<Payment>> {
    debug_assert!(
        PaymentKind::BY_PARTY.contains(&kind),
        "payments are found by party only for PaymentKind::BY_PARTY"
    );
    payments(&c.query(
        &format!(
            "SELECT {PAYMENT_COLUMNS} FROM payments
             WHERE api_user = $1 AND kind = $2 AND party_type = $3 AND party_id = $4 AND {}
             ORDER BY created_at_ms",
            PaymentKind::BY_PARTY_SQL
        ),
        &[
            &api_user.to_string(),
            &kind.as_str(),
            &party.id_type.as_str(),
            &party.id,
        ],
    )?)
}

fn read_payment(c: &mut Conn, id: &Uuid) -> Result<Option<Payment>> {
    c.query_opt(
        &format!("SELECT {PAYMENT_COLUMNS} FROM payments WHERE reference_id = $1"),
        &[&id.to_string()],
    )?
    .as_ref()
    .map(payment_row)
    .transpose()
}

impl Reader for PgReader {
    fn payment(&self, id: &Uuid) -> std::result::Result<Option<Payment>, StoreError> {
        let id = *id;
        self.pool.run_again_if_closed(move |c| read_payment(c, &id))
    }

    fn api_user(&self, id: &Uuid) -> std::result::Result<Option<ApiUser>, StoreError> {
        let id = id.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query_opt(
                &format!("SELECT {API_USER_COLUMNS} FROM api_users WHERE id = $1"),
                &[&id],
            )?
            .as_ref()
            .map(api_user_row)
            .transpose()
        })
    }

    fn api_key_hashes(&self, api_user: &Uuid) -> std::result::Result<Vec<[u8; 32]>, StoreError> {
        let api_user = api_user.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                "SELECT key_hash FROM api_keys WHERE api_user = $1 AND revoked_at_ms IS NULL",
                &[&api_user],
            )?
            .iter()
            .map(|r| hash_col(r, 0))
            .collect()
        })
    }

    fn account(
        &self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> std::result::Result<Option<Account>, StoreError> {
        let owner = owner.key();
        self.pool
            .run_again_if_closed(move |c| read_account(c, &owner, currency))
    }

    fn payments_of_party(
        &self,
        api_user: &Uuid,
        kind: PaymentKind,
        party: &Party,
    ) -> std::result::Result<Vec<Payment>, StoreError> {
        let (api_user, party) = (*api_user, party.clone());
        self.pool
            .run_again_if_closed(move |c| payments_of_party(c, &api_user, kind, &party))
    }

    fn refunds_of(&self, original: &Uuid) -> std::result::Result<Vec<Payment>, StoreError> {
        let original = original.to_string();
        self.pool.run_again_if_closed(move |c| {
            payments(&c.query(
                &format!(
                    "SELECT {PAYMENT_COLUMNS} FROM payments WHERE refund_of = $1
                     ORDER BY created_at_ms, reference_id LIMIT {}",
                    mkoba_platform::store::REFUNDS_SHOWN
                ),
                &[&original],
            )?)
        })
    }

    fn callback_attempts(
        &self,
        id: &Uuid,
    ) -> std::result::Result<Vec<CallbackAttempt>, StoreError> {
        let id = id.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    // First attempts on their outbox rows, the others in
                    // `callback_attempts` (`OutboxUpdate::first_attempt`): the view
                    // `callback_log` lists both (its order is explained where it is
                    // created, migration 15).
                    "SELECT {ATTEMPT_COLUMNS} FROM callback_log WHERE reference_id = $1
                     ORDER BY outbox_id, attempt, seq"
                ),
                &[&id],
            )?
            .iter()
            .map(|r| Ok(rows::callback_attempt(&Pg(r))?))
            .collect()
        })
    }

    fn ledger_totals(&self) -> std::result::Result<Vec<CurrencyTotals>, StoreError> {
        self.pool.run_again_if_closed(|c| {
            // SUM over BIGINT is NUMERIC in PostgreSQL; the totals are back to BIGINT (an
            // overflow is an error, as in SQLite).
            c.query(
                "SELECT currency, SUM(debits_posted)::BIGINT, SUM(credits_posted)::BIGINT,
                        SUM(debits_pending)::BIGINT, SUM(credits_pending)::BIGINT
                 FROM accounts GROUP BY currency ORDER BY currency",
                &[],
            )?
            .iter()
            .map(|r| Ok(rows::currency_totals(&Pg(r))?))
            .collect()
        })
    }

    fn transfers_for(&self, id: &Uuid) -> std::result::Result<Vec<Transfer>, StoreError> {
        let id = id.to_string();
        self.pool.run_again_if_closed(move |c| {
            c.query(
                &format!(
                    "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE reference_id = $1 ORDER BY id"
                ),
                &[&id],
            )?
            .iter()
            .map(transfer_row)
            .collect()
        })
    }

    fn mpesa_app(
        &self,
        developer_id: i64,
    ) -> std::result::Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        self.pool
            .run_again_if_closed(move |c| mpesa::app(c, developer_id))
    }

    fn mpesa_app_by_key_hash(
        &self,
        hash: &[u8; 32],
    ) -> std::result::Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        let hash = *hash;
        self.pool
            .run_again_if_closed(move |c| mpesa::app_by_key_hash(c, &hash))
    }

    fn payment_by_transaction_id(
        &self,
        transaction_id: &str,
    ) -> std::result::Result<Option<Payment>, StoreError> {
        let transaction_id = transaction_id.to_owned();
        self.pool
            .run_again_if_closed(move |c| mpesa::payment_by_transaction_id(c, &transaction_id))
    }

    fn refunded_total(&self, original: &Uuid) -> std::result::Result<i64, StoreError> {
        let original = *original;
        self.pool
            .run_again_if_closed(move |c| mpesa::refunded_total(c, &original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The highest `$n` in `sql`.
    fn parameters(sql: &str) -> usize {
        sql.split('$')
            .skip(1)
            .filter_map(|rest| {
                let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
                digits.parse().ok()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn a_commits_statements_are_key_look_ups_even_when_planned_on_empty_tables() {
        let url = mkoba_testkit::pg::database();
        let (journal, _reader) = open(&url).unwrap();
        let statements = [
            nodes::WRITER_LOG_UPDATE,
            INSERT_ACCOUNTS,
            UPDATE_ACCOUNTS,
            WRITE_TRANSFERS.as_str(),
            INSERT_PAYMENTS.as_str(),
            UPDATE_PAYMENTS.as_str(),
            INSERT_OUTBOX,
            INSERT_ATTEMPTS,
            UPDATE_OUTBOX.as_str(),
            nodes::INSERT_COMMIT_LOG,
            nodes::PRUNE_COMMIT_LOG,
        ];
        // The generic plan a commit makes on its first execution, as the writer's pass
        // sets it up, on a database with no payments, transfers, callbacks or accounts.
        let plans = journal
            .worker
            .run(move |c| {
                c.batch_execute(&format!("BEGIN; {}", nodes::KEYED_PLANS))?;
                let mut plans = Vec::new();
                for (i, sql) in statements.iter().enumerate() {
                    c.batch_execute(&format!("PREPARE keyed_{i} AS {sql}"))?;
                    let nulls = vec!["NULL"; parameters(sql)].join(", ");
                    plans.push(c.explain(&format!("EXECUTE keyed_{i}({nulls})"), &[])?);
                }
                c.batch_execute("ROLLBACK")?;
                Ok(plans)
            })
            .unwrap();
        for (sql, plan) in statements.iter().zip(&plans) {
            for shape in ["Seq Scan", "Hash Join", "Merge Join"] {
                assert!(!plan.contains(shape), "{sql}\n{plan}");
            }
            // Rows found by a key: updated, or deleted from a pending set.
            if sql.starts_with("UPDATE") || sql.contains("DELETE") {
                assert!(plan.contains("Index Scan"), "{sql}\n{plan}");
            }
        }
    }
}
