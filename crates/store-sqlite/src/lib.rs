//! SQLite storage: the embedded default.
//!
//! One database file in the data directory, in WAL mode with `synchronous = FULL`, so a
//! commit is on disk (fsync) before the platform answers. The platform's single writer owns
//! the [`SqliteJournal`] connection and commits whole batches in one transaction (group
//! commit); request handlers read through [`SqliteReader`], a small pool of connections that
//! WAL lets run beside the writer. A thread of its own copies the WAL into the database file
//! behind the writer (`checkpoint.rs`), so the writer's time goes to commits alone. A
//! payment's reference id enters its index behind the commit that stored the payment, many
//! neighbours at a time; until then readers and the writer find it in memory (`refs.rs`).
//!
//! Page caches: the writer's connection keeps [`WRITER_CACHE_KIB`], the working set of its
//! inserts and updates; each reader's only [`READER_CACHE_KIB`], since a request reads a row
//! or two by key and the operating system's page cache holds the file anyway. Measured over
//! 300,000 payments (issue 17): the server's memory grew to 123 MB instead of 171 MB, at the
//! same throughput.

use mkoba_platform::reason::FailureReason;
use mkoba_platform::test_clock::ClockWrite;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use mkoba_ledger::{Account, Currency, Transfer};
use mkoba_platform::model::{
    AccountOwner, ApiUser, CallbackAttempt, OutboxItem, Party, Payment, PaymentKind,
};
use mkoba_platform::rows::{
    self, ACCOUNT_COLUMNS, API_USER_COLUMNS, ATTEMPT_COLUMNS, CLOCK_COLUMNS, KEY_COLUMNS,
    OUTBOX_COLUMNS, PAYMENT_COLUMNS, TRANSFER_COLUMNS,
};
use mkoba_platform::store::{
    Batch, CurrencyTotals, Journal, LoadedState, Reader, StoreError, load_accounts_sql,
    wallets_limit,
};
use rusqlite::types::ValueRef;
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

mod backup;
pub use backup::{BackupReport, backup};
mod checkpoint;
mod mpesa;
mod portal;
mod refs;
mod seen;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    include_str!("../migrations/0001_init.sql"),
    include_str!("../migrations/0003_portal.sql"),
    include_str!("../migrations/0004_mpesa.sql"),
    include_str!("../migrations/0005_widget.sql"),
    include_str!("../migrations/0006_accounts.sql"),
    include_str!("../migrations/0007_golive.sql"),
    include_str!("../migrations/0008_test_clocks.sql"),
    include_str!("../migrations/0009_integer_links.sql"),
    include_str!("../migrations/0010_party_index_for_mandates.sql"),
    include_str!("../migrations/0011_payment_refs.sql"),
    include_str!("../migrations/0012_used_auth_requests.sql"),
    include_str!("../migrations/0013_first_attempt_on_outbox.sql"),
    include_str!("../migrations/0014_api_key_endings.sql"),
];

/// The schema version this binary writes.
pub const SCHEMA_VERSION: usize = MIGRATIONS.len();

/// The database file in the data directory.
pub const DB_FILE: &str = "mkoba.db";
const READERS: usize = 8;

fn err(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

/// What an operator may tune of the SQLite store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SqliteOptions {
    /// The WAL's size in bytes past which the writer holds a commit until the checkpoint
    /// thread has copied everything, so that the file starts over; also the size the file
    /// is cut back to then (`journal_size_limit`). See the `checkpoint` module.
    pub wal_limit_bytes: u64,
    /// About how many new payments' reference ids wait in memory before they are written
    /// into their index, a slice of the key space at a time (see the `refs` module): more
    /// make fewer pages written per payment in a large database, each costs about 40 bytes
    /// of memory, and a start writes up to twice as many.
    pub refs_behind: usize,
}

impl Default for SqliteOptions {
    fn default() -> SqliteOptions {
        SqliteOptions {
            wal_limit_bytes: 64 << 20,
            refs_behind: 65_536,
        }
    }
}

thread_local! {
    /// Frames in the WAL after this thread's last commit, as SQLite's WAL hook says.
    static WAL_FRAMES: std::cell::Cell<i64> = const { std::cell::Cell::new(0) };
}

fn note_wal_frames(_: &rusqlite::hooks::Wal, frames: std::ffi::c_int) -> rusqlite::Result<()> {
    WAL_FRAMES.with(|f| f.set(frames.into()));
    Ok(())
}

/// The schema version of the database in `data_dir`, read without changing it.
fn schema_version(data_dir: &Path) -> Result<usize, StoreError> {
    Connection::open_with_flags(
        data_dir.join(DB_FILE),
        rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY,
    )
    .and_then(|c| c.query_row("PRAGMA user_version", [], |r| r.get(0)))
    .map_err(opening)
}

/// Opens the database in `data_dir` for a command beside the server (`mkoba credentials`,
/// `mkoba operator create`): one that exists is never migrated, since a running server of
/// an older version would then read a schema it does not know (a newer client once
/// dropped an index under an older server); one older than this binary is refused, saying
/// what to do. A missing one is created, as by [`open`]. It does not index the reference
/// ids a running server still holds in memory (that would hold the server's writer up):
/// the command looks no payment up by reference id.
pub fn open_beside_server(data_dir: &Path) -> Result<(SqliteJournal, SqliteReader), StoreError> {
    if data_dir.join(DB_FILE).exists() {
        let version = schema_version(data_dir)?;
        if version < SCHEMA_VERSION {
            return Err(StoreError(format!(
                "the database in {dir} has schema version {version} and this mkoba needs {SCHEMA_VERSION}: stop the server that uses it, then start this version's (`mkoba serve` migrates it) or run `mkoba migrate --data {dir}`",
                dir = data_dir.display()
            )));
        }
    }
    open_as(data_dir, SqliteOptions::default(), true)
}

/// Opens (creating and migrating if needed) the database in `data_dir`, with the default
/// options.
pub fn open(data_dir: &Path) -> Result<(SqliteJournal, SqliteReader), StoreError> {
    open_with(data_dir, SqliteOptions::default())
}

/// The lock file a server holds in its data directory while it runs.
pub const LOCK_FILE: &str = "serve.lock";
/// How long a server waits for another one's lock (a process that is exiting).
const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// A server's hold on its data directory ([`lock_data_dir`]); released when dropped or
/// when the process ends, however it ends.
#[derive(Debug)]
pub struct DataLock {
    _file: std::fs::File,
}

/// Takes the data directory's lock for the one server that writes payments to it (`mkoba
/// serve`), waiting at most [`LOCK_WAIT`] for another's. A second server on the same
/// directory would keep wallets and the newest reference ids (`refs.rs`) in a memory of
/// its own; client commands (`mkoba credentials`) only read, and take no lock.
pub fn lock_data_dir(data_dir: &Path) -> Result<DataLock, StoreError> {
    create_private_dir(data_dir)?;
    let path = data_dir.join(LOCK_FILE);
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create(true).truncate(false);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    let file = open
        .open(&path)
        .map_err(|e| StoreError(format!("cannot create {}: {e}", path.display())))?;
    let deadline = std::time::Instant::now() + LOCK_WAIT;
    loop {
        match file.try_lock() {
            Ok(()) => return Ok(DataLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            Err(std::fs::TryLockError::WouldBlock) => {
                return Err(StoreError(format!(
                    "another mkoba server is using the data directory {} (it holds {}): stop it first, or give this one another --data",
                    data_dir.display(),
                    path.display()
                )));
            }
            Err(std::fs::TryLockError::Error(e)) => {
                return Err(StoreError(format!("cannot lock {}: {e}", path.display())));
            }
        }
    }
}

/// Opens (creating and migrating if needed) the database in `data_dir`.
pub fn open_with(
    data_dir: &Path,
    options: SqliteOptions,
) -> Result<(SqliteJournal, SqliteReader), StoreError> {
    open_as(data_dir, options, false)
}

/// [`open_with`]; `beside_server`: for a command beside a server that may be running, which
/// leaves the reference ids still waiting in that server's memory to it (`refs.rs`).
fn open_as(
    data_dir: &Path,
    options: SqliteOptions,
    beside_server: bool,
) -> Result<(SqliteJournal, SqliteReader), StoreError> {
    create_private_dir(data_dir)?;
    let path = data_dir.join(DB_FILE);
    refuse_unfinished_backup(data_dir, &path)?;
    owner_only(&path)?;
    let mut writer = connect(&path, WRITER_CACHE_KIB)?;
    migrate(&mut writer)?;
    let recent = std::sync::Arc::new(refs::Recent::default());
    // Opened only where the filter has ids to read (not on an empty database).
    let loader = (!beside_server).then_some(|| open_connection(&path, READER_CACHE_KIB));
    let sweep = refs::Sweep::open(&mut writer, recent.clone(), options.refs_behind, loader)
        .map_err(|e| StoreError(format!("cannot index the latest payments: {e}")))?;
    // Checkpoints are the checkpoint thread's, not the writer's.
    let limit = i64::try_from(options.wal_limit_bytes).unwrap_or(i64::MAX);
    writer
        .execute_batch(&format!(
            "PRAGMA wal_autocheckpoint = 0; PRAGMA journal_size_limit = {limit};"
        ))
        .map_err(err)?;
    writer.wal_hook(Some(note_wal_frames));
    let page_size: i64 = writer
        .query_row("PRAGMA page_size", [], |r| r.get(0))
        .map_err(err)?;
    let checkpoint = checkpoint::Checkpointer::start(
        connect(&path, READER_CACHE_KIB)?,
        (limit / page_size.max(1)).max(1),
    )
    .map_err(|e| StoreError(format!("cannot start the checkpoint thread: {e}")))?;
    let readers = (0..READERS)
        .map(|_| connect(&path, READER_CACHE_KIB))
        .collect::<Result<Vec<_>, _>>()?;
    Ok((
        SqliteJournal {
            conn: writer,
            checkpoint,
            sweep,
            transfers_below: 0,
        },
        SqliteReader {
            path,
            pool: Mutex::new(readers),
            recent,
        },
    ))
}

/// A directory holding a backup's unfinished copy (`mkoba backup` stopped before the copy
/// took its name) and no database is not one to start anew in: the platform would come up
/// empty, with a new M-Pesa key pair, where an operator meant to restore.
fn refuse_unfinished_backup(data_dir: &Path, database: &Path) -> Result<(), StoreError> {
    let partial = data_dir.join(backup::PARTIAL);
    if database.exists() || !partial.exists() {
        return Ok(());
    }
    Err(StoreError(format!(
        "{} holds {}, the copy of a backup that did not finish, and no {DB_FILE}: it is not a \
         whole backup. Start from a whole one (a directory with {DB_FILE}), or remove {} to \
         start an empty platform here",
        data_dir.display(),
        backup::PARTIAL,
        partial.display()
    )))
}

fn create_private_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::create_dir_all(dir).map_err(|e| {
        StoreError(format!(
            "cannot create data directory {}: {e}",
            dir.display()
        ))
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
    }
    Ok(())
}

/// Creates the database file readable by its owner only (SQLite gives the `-wal` and `-shm`
/// files the database file's mode), and narrows the mode of one an older version created.
fn owner_only(path: &Path) -> Result<(), StoreError> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        let cannot = |e: std::io::Error| {
            StoreError(format!(
                "cannot create the database {}: {e}",
                path.display()
            ))
        };
        // Made only where it is missing: a command that reads the database of a read-only
        // directory (`mkoba credentials`) is not told it "cannot create" it.
        if !path.exists() {
            std::fs::OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .open(path)
                .map_err(cannot)?;
        }
        for suffix in ["", "-wal", "-shm"] {
            let file = PathBuf::from(format!("{}{suffix}", path.display()));
            if let Ok(meta) = std::fs::metadata(&file)
                && meta.permissions().mode() & 0o077 != 0
            {
                let _ = std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600));
            }
        }
    }
    #[cfg(not(unix))]
    let _ = path;
    Ok(())
}

/// The writer connection's page cache.
const WRITER_CACHE_KIB: u32 = 16_000;
/// Each reader connection's page cache.
const READER_CACHE_KIB: u32 = 2_000;

fn connect(path: &Path, cache_kib: u32) -> Result<Connection, StoreError> {
    open_connection(path, cache_kib).map_err(opening)
}

/// An error opening or migrating the database, with what to look at: SQLite's words alone
/// ("disk I/O error", "unable to open database file") do not say.
fn opening(e: rusqlite::Error) -> StoreError {
    use rusqlite::ErrorCode::{CannotOpen, ReadOnly, SystemIoFailure};
    let hint = match e.sqlite_error_code() {
        Some(SystemIoFailure) => " (is its disk full?)",
        Some(CannotOpen | ReadOnly) => {
            " (the directory must be writable: SQLite keeps its -wal and -shm files beside the database)"
        }
        _ => "",
    };
    StoreError(format!("{e}{hint}"))
}

fn open_connection(path: &Path, cache_kib: u32) -> rusqlite::Result<Connection> {
    let conn = Connection::open(path)?;
    conn.execute_batch(&format!(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = FULL;
         PRAGMA foreign_keys = ON;
         PRAGMA busy_timeout = 5000;
         PRAGMA cache_size = -{cache_kib};"
    ))?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let version: usize = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(opening)?;
    if version > MIGRATIONS.len() {
        return Err(StoreError(format!(
            "the database schema (version {version}) is newer than this binary (version {}); upgrade mkoba",
            MIGRATIONS.len()
        )));
    }
    if version == 0 {
        // A new database (or an empty file where one was expected: the log says so, since
        // the platform then starts anew with new keys and passwords).
        tracing::info!(
            path = conn.path().unwrap_or_default(),
            "no database was there: creating a new one"
        );
    } else if version < MIGRATIONS.len() {
        tracing::info!(
            from = version,
            to = MIGRATIONS.len(),
            "migrating the database's schema"
        );
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(version) {
        let tx = conn.transaction().map_err(opening)?;
        tx.execute_batch(sql).map_err(opening)?;
        tx.pragma_update(None, "user_version", i + 1)
            .map_err(opening)?;
        tx.commit().map_err(opening)?;
    }
    Ok(())
}

/// The write side; owned by the platform's writer thread.
#[derive(Debug)]
pub struct SqliteJournal {
    conn: Connection,
    checkpoint: checkpoint::Checkpointer,
    sweep: refs::Sweep,
    /// Every transfer with a smaller id has been committed (ids are handed out in order):
    /// a transfer posted or voided below it is changed by its id first, one above it (a
    /// funding transfer posted at once) inserted at once, without that failed update.
    /// Zero until this journal commits transfers; it only orders the two statements, the
    /// upsert behind them is right either way.
    transfers_below: u64,
}

/// The read side: a small pool of connections.
#[derive(Debug)]
pub struct SqliteReader {
    path: PathBuf,
    pool: Mutex<Vec<Connection>>,
    /// The reference ids the writer has not yet put in their index.
    recent: std::sync::Arc<refs::Recent>,
}

impl SqliteReader {
    fn with<T>(&self, f: impl FnOnce(&Connection) -> rusqlite::Result<T>) -> Result<T, StoreError> {
        let conn = self.pool.lock().expect("reader pool").pop();
        let conn = match conn {
            Some(c) => c,
            None => connect(&self.path, READER_CACHE_KIB)?,
        };
        let result = f(&conn).map_err(err);
        let mut pool = self.pool.lock().expect("reader pool");
        if pool.len() < READERS {
            pool.push(conn);
        }
        result
    }
}

/// A SQLite row as the shared codecs read it ([`mkoba_platform::rows`]).
pub(crate) struct Lite<'a, 'b>(pub(crate) &'a Row<'b>);

impl Lite<'_, '_> {
    fn value(&self, i: usize) -> Result<ValueRef<'_>, StoreError> {
        self.0.get_ref(i).map_err(err)
    }
}

fn wrong_type(i: usize, wanted: &str) -> StoreError {
    StoreError(format!("column {i} is not {wanted}"))
}

impl rows::Row for Lite<'_, '_> {
    fn text(&self, i: usize) -> Result<Option<&str>, StoreError> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Text(t) => std::str::from_utf8(t)
                .map(Some)
                .map_err(|_| wrong_type(i, "UTF-8 text")),
            _ => Err(wrong_type(i, "text")),
        }
    }

    fn int(&self, i: usize) -> Result<Option<i64>, StoreError> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Integer(n) => Ok(Some(n)),
            _ => Err(wrong_type(i, "an integer")),
        }
    }

    fn bytes(&self, i: usize) -> Result<Option<&[u8]>, StoreError> {
        match self.value(i)? {
            ValueRef::Null => Ok(None),
            ValueRef::Blob(b) => Ok(Some(b)),
            _ => Err(wrong_type(i, "a blob")),
        }
    }

    fn flag(&self, i: usize) -> Result<Option<bool>, StoreError> {
        Ok(self.int(i)?.map(|n| n != 0))
    }
}

/// A shared codec's answer as rusqlite's row mappers return it.
pub(crate) fn lite<T>(decoded: Result<T, StoreError>) -> rusqlite::Result<T> {
    decoded.map_err(|e| {
        rusqlite::Error::FromSqlConversionFailure(0, rusqlite::types::Type::Text, e.0.into())
    })
}

pub(crate) fn bad(what: &str, value: &str) -> rusqlite::Error {
    lite::<()>(Err(rows::bad(what, value))).unwrap_err()
}

pub(crate) fn payment_row(row: &Row<'_>) -> rusqlite::Result<Payment> {
    lite(rows::payment(&Lite(row)))
}

fn transfer_row(row: &Row<'_>) -> rusqlite::Result<Transfer> {
    lite(rows::transfer(&Lite(row)))
}

impl Journal for SqliteJournal {
    fn watch(&mut self, metrics: &mkoba_platform::metrics::StoreMetrics) {
        self.checkpoint.watch(metrics);
        self.sweep.watch(metrics);
    }

    fn load(&mut self, wallets: usize) -> Result<LoadedState, StoreError> {
        let c = &self.conn;
        let mut state = LoadedState::default();
        let mut stmt = c
            .prepare(&load_accounts_sql(ACCOUNT_COLUMNS))
            .map_err(err)?;
        state.accounts = stmt
            .query_map([wallets_limit(wallets)], |r| {
                let r = Lite(r);
                lite(rows::account(&r).and_then(|a| Ok((a, rows::owner(&r, 7)?))))
            })
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        let mut stmt = c
            .prepare(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE state = 'pending'"
            ))
            .map_err(err)?;
        state.pending_transfers = stmt
            .query_map([], transfer_row)
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        let mut stmt = c
            .prepare(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE status = 'PENDING'"
            ))
            .map_err(err)?;
        state.pending_payments = stmt
            .query_map([], payment_row)
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        state.max_account_id = c
            .query_row("SELECT COALESCE(MAX(id), 0) FROM accounts", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(err)? as u64;
        state.max_transfer_id = c
            .query_row("SELECT COALESCE(MAX(id), 0) FROM transfers", [], |r| {
                r.get::<_, i64>(0)
            })
            .map_err(err)? as u64;
        state.max_outbox_id = c
            .query_row("SELECT COALESCE(MAX(id), 0) FROM outbox", [], |r| r.get(0))
            .map_err(err)?;
        let mut stmt = c
            .prepare(&format!("SELECT {KEY_COLUMNS} FROM subscription_keys"))
            .map_err(err)?;
        state.subscription_keys = stmt
            .query_map([], |r| lite(rows::subscription_key(&Lite(r))))
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        state.token_secret = c
            .query_row(
                "SELECT value FROM settings WHERE name = 'token_secret'",
                [],
                |r| r.get(0),
            )
            .optional()
            .map_err(err)?;
        let mut stmt = c
            .prepare(&format!("SELECT {CLOCK_COLUMNS} FROM test_clocks"))
            .map_err(err)?;
        state.test_clocks = stmt
            .query_map([], |r| lite(rows::test_clock(&Lite(r))))
            .map_err(err)?
            .collect::<rusqlite::Result<_>>()
            .map_err(err)?;
        Ok(state)
    }

    fn pending_outbox(
        &mut self,
        after_id: i64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached(&format!(
                "SELECT {OUTBOX_COLUMNS}
                 FROM outbox WHERE id > ?1 AND state = 'pending' ORDER BY id LIMIT ?2"
            ))
            .map_err(err)?;
        stmt.query_map(rusqlite::params![after_id, limit as i64], |r| {
            lite(rows::outbox_item(&Lite(r)))
        })
        .map_err(err)?
        .collect::<rusqlite::Result<_>>()
        .map_err(err)
    }

    fn begin(&mut self) -> Result<Option<mkoba_platform::store::Changes>, StoreError> {
        // Every pass begins here, one at least each second: the filter of the ids taken
        // is complete from the first pass after its loading ends.
        self.sweep.poll();
        Ok(None)
    }

    fn payment_exists(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.sweep
            .committed_key(&self.conn, id)
            .map(|key| key.is_some())
            .map_err(err)
    }

    fn api_user_exists(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM api_users WHERE id = ?1")
            .and_then(|mut s| s.exists([id.to_string()]))
            .map_err(err)
    }

    fn api_user_has_payments(&mut self, id: &Uuid) -> Result<bool, StoreError> {
        self.conn
            .prepare_cached("SELECT 1 FROM payments WHERE api_user = ?1 LIMIT 1")
            .and_then(|mut s| s.exists([id.to_string()]))
            .map_err(err)
    }

    fn payment(&mut self, id: &Uuid) -> Result<Option<Payment>, StoreError> {
        read_payment(&self.conn, self.sweep.recent(), id).map_err(err)
    }

    fn mpesa_app(
        &mut self,
        developer_id: i64,
    ) -> Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        mpesa::store(mpesa::app(&self.conn, developer_id))
    }

    fn refunded_total(&mut self, original: &Uuid) -> Result<i64, StoreError> {
        mpesa::store(mpesa::refunded_total(&self.conn, original))
    }

    fn payments_of_party(
        &mut self,
        api_user: &Uuid,
        kind: PaymentKind,
        party: &Party,
    ) -> Result<Vec<Payment>, StoreError> {
        payments_of_party(&self.conn, api_user, kind, party).map_err(err)
    }

    fn ledger_account(
        &mut self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> Result<Option<Account>, StoreError> {
        read_account(&self.conn, owner, currency).map_err(err)
    }

    fn commit(&mut self, b: &Batch) -> Result<(), StoreError> {
        self.checkpoint.before_commit();
        // The hook says nothing for a commit that wrote no frames.
        WAL_FRAMES.with(|f| f.set(-1));
        self.sweep.begin();
        // Immediate: the batch may read (a payment's id) before it writes, and a
        // transaction that has read cannot wait for another process's writer (`mkoba
        // credentials` indexing what a start indexes): it would fail at once.
        let tx = self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
            .map_err(err)?;
        write_batch(&tx, b, &mut self.sweep, self.transfers_below).map_err(err)?;
        self.sweep.write(&tx).map_err(err)?;
        tx.commit().map_err(err)?;
        self.sweep.committed();
        if let Some(last) = b.transfers.iter().map(|t| t.transfer.id.0).max() {
            self.transfers_below = self.transfers_below.max(last + 1);
        }
        let frames = WAL_FRAMES.with(std::cell::Cell::get);
        if frames >= 0 {
            self.checkpoint.committed(frames);
        }
        Ok(())
    }
}

fn read_account(
    c: &Connection,
    owner: &AccountOwner,
    currency: Currency,
) -> rusqlite::Result<Option<Account>> {
    c.prepare_cached(&format!(
        "SELECT {ACCOUNT_COLUMNS} FROM accounts WHERE owner = ?1 AND currency = ?2"
    ))?
    .query_row(params![owner.key(), currency.as_str()], |r| {
        lite(rows::account(&Lite(r)))
    })
    .optional()
}

/// The query of [`payments_of_party`]. Its rows are sorted by the caller, not by the
/// query: with `ORDER BY created_at_ms` SQLite walks the API user's payments in time order
/// (`payments_by_user_time`) to save a sort of a few rows.
fn payments_of_party_sql() -> String {
    format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments
         WHERE api_user = ?1 AND kind = ?2 AND party_type = ?3 AND party_id = ?4 AND {}",
        PaymentKind::BY_PARTY_SQL
    )
}

fn payments_of_party(
    c: &Connection,
    api_user: &Uuid,
    kind: PaymentKind,
    party: &Party,
) -> rusqlite::Result<Vec<Payment>> {
    debug_assert!(
        PaymentKind::BY_PARTY.contains(&kind),
        "payments are found by party only for PaymentKind::BY_PARTY"
    );
    let mut stmt = c.prepare_cached(&payments_of_party_sql())?;
    let rows = stmt.query_map(
        params![
            api_user.to_string(),
            kind.as_str(),
            party.id_type.as_str(),
            party.id
        ],
        payment_row,
    )?;
    let mut found: Vec<Payment> = rows.collect::<rusqlite::Result<_>>()?;
    found.sort_by_key(|p| p.created_at_ms);
    Ok(found)
}

const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, owner, currency, limit_kind, debits_pending, debits_posted, credits_pending, credits_posted)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";
const UPDATE_ACCOUNT: &str = "UPDATE accounts SET debits_pending = ?2, debits_posted = ?3, credits_pending = ?4, credits_posted = ?5 WHERE id = ?1";
static INSERT_PAYMENT: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "INSERT INTO payments ({PAYMENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23, ?24, ?25, ?26)"
    )
});
const UPSERT_TRANSFER: &str = "INSERT INTO transfers (id, debit_account, credit_account, amount, currency, state, reference_id, payment, created_at_ms, updated_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?9, ?8, ?8)
     ON CONFLICT (id) DO UPDATE SET state = excluded.state, updated_at_ms = excluded.updated_at_ms";
const SETTLE_TRANSFER: &str = "UPDATE transfers SET state = ?2, updated_at_ms = ?3 WHERE id = ?1";
const UPDATE_PAYMENT: &str = "UPDATE payments SET status = ?2, reason = ?3, financial_transaction_id = ?4, settled_at_ms = ?5, transfer_id = ?6, notifications = ?7
     WHERE id = ?1";
const INSERT_OUTBOX: &str = "INSERT INTO outbox (id, reference_id, payment, url, method, body, state, attempts, next_attempt_at_ms)
     VALUES (?1, ?2, ?8, ?3, ?4, ?5, 'pending', ?6, ?7)";
const INSERT_ATTEMPT: &str = "INSERT INTO callback_attempts (outbox_id, reference_id, attempt, at_ms, url, method, status_code, latency_ms, error, retry_at_ms)
     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)";
const UPDATE_OUTBOX: &str =
    "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_at_ms = ?4 WHERE id = ?1";
/// [`UPDATE_OUTBOX`] with the row's first attempt, only if it has none yet.
const UPDATE_OUTBOX_FIRST: &str = "UPDATE outbox SET state = ?2, attempts = ?3, next_attempt_at_ms = ?4,
         first_at_ms = ?5, first_status_code = ?6, first_latency_ms = ?7, first_error = ?8, first_retry_at_ms = ?9
     WHERE id = ?1 AND first_at_ms IS NULL";

/// A payment's callback attempts, from `?1`/`?2` as [`refs::KEY_OF`] takes them. First
/// attempts are on their outbox rows, the others in `callback_attempts`
/// (`OutboxUpdate::first_attempt`): the view `callback_log` lists both (its order is
/// explained where it is created, migration 13). SQLite takes the `IN` into both of the
/// view's arms, an index search in each (test
/// `callback_attempts_are_read_by_index_through_the_view`).
static CALLBACK_ATTEMPTS: std::sync::LazyLock<String> = std::sync::LazyLock::new(|| {
    format!(
        "SELECT {ATTEMPT_COLUMNS} FROM callback_log
         WHERE outbox_id IN (SELECT id FROM outbox WHERE payment = {})
         ORDER BY outbox_id, attempt, seq",
        refs::KEY_OF
    )
});

/// Runs `sql` for each of `rows` in order, through one statement from the cache.
fn each_row<T>(
    tx: &rusqlite::Transaction<'_>,
    sql: &str,
    rows: &[T],
    mut run: impl FnMut(&mut rusqlite::CachedStatement<'_>, &T) -> rusqlite::Result<usize>,
) -> rusqlite::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut stmt = tx.prepare_cached(sql)?;
    for row in rows {
        run(&mut stmt, row)?;
    }
    Ok(())
}

fn write_batch(
    tx: &rusqlite::Transaction<'_>,
    b: &Batch,
    sweep: &mut refs::Sweep,
    transfers_below: u64,
) -> rusqlite::Result<()> {
    let now = mkoba_platform::clock::system_now_ms();
    for id in &b.developers {
        tx.prepare_cached("INSERT INTO developers (id, created_at_ms) VALUES (?1, ?2)")?
            .execute(params![id, now])?;
    }
    for k in &b.subscription_keys {
        tx.prepare_cached(
            "INSERT INTO subscription_keys (key, developer_id, product, slot) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (developer_id, product, slot) DO UPDATE SET key = excluded.key",
        )?
        .execute(params![k.key, k.developer_id, k.product.as_str(), k.slot.as_str()])?;
    }
    for k in &b.missing_keys {
        tx.prepare_cached(
            "INSERT INTO subscription_keys (key, developer_id, product, slot) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (developer_id, product, slot) DO NOTHING",
        )?
        .execute(params![k.key, k.developer_id, k.product.as_str(), k.slot.as_str()])?;
    }
    if let Some(secret) = &b.token_secret {
        tx.prepare_cached(
            "INSERT INTO settings (name, value) VALUES ('token_secret', ?1)
             ON CONFLICT (name) DO NOTHING",
        )?
        .execute([secret])?;
    }
    for u in &b.api_users {
        tx.prepare_cached(
            "INSERT INTO api_users (id, developer_id, provider_callback_host, target_environment, created_at_ms)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            u.id.to_string(),
            u.developer_id,
            u.provider_callback_host,
            u.target_environment,
            u.created_at_ms
        ])?;
    }
    for k in &b.api_keys {
        tx.prepare_cached(
            "INSERT INTO api_keys (api_user, key_hash, created_at_ms, ending) VALUES (?1, ?2, ?3, ?4)",
        )?
        .execute(params![
            k.api_user.to_string(),
            &k.key_hash[..],
            k.created_at_ms,
            k.ending
        ])?;
        tx.prepare_cached(
            "DELETE FROM api_keys WHERE api_user = ?1 AND id NOT IN
               (SELECT id FROM api_keys WHERE api_user = ?1 ORDER BY id DESC LIMIT ?2)",
        )?
        .execute(params![
            k.api_user.to_string(),
            mkoba_platform::store::MAX_API_KEYS_PER_USER
        ])?;
    }
    // The busy tables' statements are looked up in the statement cache once a batch, not
    // once a row: the cache hashes the whole SQL text on every look-up.
    //
    // A new account is inserted with its totals at the end of the batch (the last of its
    // entries in `accounts`), not inserted empty and then updated: a new payer's wallet is
    // one statement, not two.
    let mut totals: foldhash::HashMap<u64, &mkoba_ledger::Account> = Default::default();
    if !b.new_accounts.is_empty() {
        totals.extend(b.accounts.iter().map(|a| (a.id.0, a)));
    }
    each_row(tx, INSERT_ACCOUNT, &b.new_accounts, |s, a| {
        let t = totals.remove(&a.id.0);
        let total = |f: fn(&mkoba_ledger::Account) -> i64| t.map_or(0, f);
        s.execute(params![
            a.id.0 as i64,
            a.owner.key(),
            a.currency.as_str(),
            a.limit.as_str(),
            total(|t| t.debits_pending),
            total(|t| t.debits_posted),
            total(|t| t.credits_pending),
            total(|t| t.credits_posted)
        ])
    })?;
    let inserted: foldhash::HashSet<u64> = b.new_accounts.iter().map(|a| a.id.0).collect();
    let updated: Vec<&mkoba_ledger::Account> = b
        .accounts
        .iter()
        .filter(|a| !inserted.contains(&a.id.0))
        .collect();
    each_row(tx, UPDATE_ACCOUNT, &updated, |s, a| {
        s.execute(params![
            a.id.0 as i64,
            a.debits_pending,
            a.debits_posted,
            a.credits_pending,
            a.credits_posted
        ])
    })?;
    // Payments first: the rows that belong to one (its transfers, its callbacks) name it by
    // its integer id.
    each_row(tx, &INSERT_PAYMENT, &b.new_payments, |s, p| {
        // The index is written behind (`refs.rs`), so its unique constraint is checked
        // here: a reference id taken (committed, or earlier in this batch) fails the batch.
        if sweep.key(tx, &p.reference_id)?.is_some() {
            return Err(rusqlite::Error::SqliteFailure(
                rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE),
                Some("UNIQUE constraint failed: payments.reference_id".into()),
            ));
        }
        let inserted = s.execute(params![
            p.reference_id.to_string(),
            p.kind.as_str(),
            p.product.as_str(),
            p.api_user.to_string(),
            p.environment,
            p.amount.minor(),
            p.currency().as_str(),
            p.external_id,
            p.party.id_type.as_str(),
            p.party.id,
            p.payer_message,
            p.payee_note,
            p.callback_url,
            p.status.as_str(),
            p.reason.map(FailureReason::as_str),
            p.financial_transaction_id,
            p.created_at_ms,
            p.settled_at_ms,
            p.settle_at_ms,
            p.transfer_id.map(|t| t as i64),
            p.notifications,
            p.callback_method.map(|m| m.as_str()),
            p.refund_of.map(|r| r.to_string()),
            p.details,
            p.expires_at_ms,
            p.short_code
        ])?;
        sweep.inserted(p.reference_id, tx.last_insert_rowid());
        Ok(inserted)
    })?;
    let sweep = &*sweep;
    // A transfer that is no longer pending is most often one written earlier, now posted or
    // voided: changed by its id, without the upsert's look-up of its payment and its
    // attempted insert. Only when no row has that id (a transfer posted at once) is it
    // inserted; one above every transfer committed is inserted without looking.
    if !b.transfers.is_empty() {
        let mut upsert = tx.prepare_cached(UPSERT_TRANSFER)?;
        let mut settle = tx.prepare_cached(SETTLE_TRANSFER)?;
        for t in &b.transfers {
            let tr = &t.transfer;
            if tr.state != mkoba_ledger::TransferState::Pending
                && tr.id.0 < transfers_below
                && settle.execute(params![tr.id.0 as i64, tr.state.as_str(), t.at_ms])? == 1
            {
                continue;
            }
            upsert.execute(params![
                tr.id.0 as i64,
                tr.debit.0 as i64,
                tr.credit.0 as i64,
                tr.amount,
                tr.currency.as_str(),
                tr.state.as_str(),
                t.reference_id.map(|r| r.to_string()),
                t.at_ms,
                match &t.reference_id {
                    Some(r) => sweep.key(tx, r)?,
                    None => None,
                }
            ])?;
        }
    }
    each_row(tx, UPDATE_PAYMENT, &b.payment_updates, |s, u| {
        let Some(key) = sweep.key(tx, &u.reference_id)? else {
            return Ok(0);
        };
        s.execute(params![
            key,
            u.status.as_str(),
            u.reason.map(FailureReason::as_str),
            u.financial_transaction_id,
            u.settled_at_ms,
            u.transfer_id.map(|t| t as i64),
            u.notifications
        ])
    })?;
    each_row(tx, INSERT_OUTBOX, &b.outbox, |s, o| {
        s.execute(params![
            o.id,
            o.reference_id.to_string(),
            o.url,
            o.method.as_str(),
            o.body,
            o.attempts,
            o.next_attempt_at_ms,
            sweep.key(tx, &o.reference_id)?
        ])
    })?;
    let insert_attempt = |s: &mut rusqlite::CachedStatement<'_>, a: &CallbackAttempt| {
        s.execute(params![
            a.outbox_id,
            a.reference_id.to_string(),
            a.attempt,
            a.at_ms,
            a.url,
            a.method.as_str(),
            a.status_code,
            a.latency_ms,
            a.error,
            a.retry_at_ms
        ])
    };
    each_row(tx, INSERT_ATTEMPT, &b.attempts, insert_attempt)?;
    // A first attempt goes on its row unless the row has one (the same callback sent
    // twice): then it is a row of `callback_attempts` like the later ones.
    if !b.outbox_updates.is_empty() {
        let mut plain = tx.prepare_cached(UPDATE_OUTBOX)?;
        let mut with_first = tx.prepare_cached(UPDATE_OUTBOX_FIRST)?;
        for u in &b.outbox_updates {
            if let Some(a) = &u.first_attempt {
                let on_row = with_first.execute(params![
                    u.id,
                    u.state.as_str(),
                    u.attempts,
                    u.next_attempt_at_ms,
                    a.at_ms,
                    a.status_code,
                    a.latency_ms,
                    a.error,
                    a.retry_at_ms
                ])?;
                if on_row == 1 {
                    continue;
                }
                insert_attempt(&mut tx.prepare_cached(INSERT_ATTEMPT)?, a)?;
            }
            plain.execute(params![
                u.id,
                u.state.as_str(),
                u.attempts,
                u.next_attempt_at_ms
            ])?;
        }
    }
    portal::write(tx, &b.portal)?;
    mpesa::write(tx, &b.mpesa_apps)?;
    for w in &b.test_clocks {
        match w {
            ClockWrite::Put(c) => tx
                .prepare_cached(
                    "INSERT INTO test_clocks (id, developer_id, api_user, name, now_ms, created_at_ms)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                     ON CONFLICT (id) DO UPDATE SET now_ms = excluded.now_ms",
                )?
                .execute(params![
                    c.id.to_string(),
                    c.developer_id,
                    c.api_user.to_string(),
                    c.name,
                    c.now_ms,
                    c.created_at_ms
                ])?,
            ClockWrite::Delete(id) => tx
                .prepare_cached("DELETE FROM test_clocks WHERE id = ?1")?
                .execute([id.to_string()])?,
        };
    }
    Ok(())
}

fn read_payment(
    c: &Connection,
    recent: &refs::Recent,
    id: &Uuid,
) -> rusqlite::Result<Option<Payment>> {
    c.prepare_cached(&format!(
        "SELECT {PAYMENT_COLUMNS} FROM payments WHERE id = {}",
        refs::KEY_OF
    ))?
    .query_row(recent.key_params(id), payment_row)
    .optional()
}

impl Reader for SqliteReader {
    fn payment(&self, id: &Uuid) -> Result<Option<Payment>, StoreError> {
        self.with(|c| read_payment(c, &self.recent, id))
    }

    fn api_user(&self, id: &Uuid) -> Result<Option<ApiUser>, StoreError> {
        self.with(|c| {
            c.prepare_cached(&format!(
                "SELECT {API_USER_COLUMNS} FROM api_users WHERE id = ?1"
            ))?
            .query_row([id.to_string()], |r| lite(rows::api_user(&Lite(r))))
            .optional()
        })
    }

    fn api_key_hashes(&self, api_user: &Uuid) -> Result<Vec<[u8; 32]>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT key_hash FROM api_keys WHERE api_user = ?1 AND revoked_at_ms IS NULL",
            )?;
            let rows = stmt.query_map([api_user.to_string()], |r| {
                let v: Vec<u8> = r.get(0)?;
                v.try_into().map_err(|_| bad("key hash", "?"))
            })?;
            rows.collect()
        })
    }

    fn account(
        &self,
        owner: &AccountOwner,
        currency: Currency,
    ) -> Result<Option<Account>, StoreError> {
        self.with(|c| read_account(c, owner, currency))
    }

    fn payments_of_party(
        &self,
        api_user: &Uuid,
        kind: PaymentKind,
        party: &Party,
    ) -> Result<Vec<Payment>, StoreError> {
        self.with(|c| payments_of_party(c, api_user, kind, party))
    }

    fn refunds_of(&self, original: &Uuid) -> Result<Vec<Payment>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {PAYMENT_COLUMNS} FROM payments WHERE refund_of = ?1
                 ORDER BY created_at_ms, id LIMIT {}",
                mkoba_platform::store::REFUNDS_SHOWN
            ))?;
            let rows = stmt.query_map([original.to_string()], payment_row)?;
            rows.collect()
        })
    }

    fn callback_attempts(&self, id: &Uuid) -> Result<Vec<CallbackAttempt>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&CALLBACK_ATTEMPTS)?;
            let rows = stmt.query_map(self.recent.key_params(id), |r| {
                lite(rows::callback_attempt(&Lite(r)))
            })?;
            rows.collect()
        })
    }

    fn ledger_totals(&self) -> Result<Vec<CurrencyTotals>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(
                "SELECT currency, SUM(debits_posted), SUM(credits_posted), SUM(debits_pending), SUM(credits_pending)
                 FROM accounts GROUP BY currency ORDER BY currency",
            )?;
            let rows = stmt.query_map([], |r| lite(rows::currency_totals(&Lite(r))))?;
            rows.collect()
        })
    }

    fn transfers_for(&self, id: &Uuid) -> Result<Vec<Transfer>, StoreError> {
        self.with(|c| {
            let mut stmt = c.prepare_cached(&format!(
                "SELECT {TRANSFER_COLUMNS} FROM transfers WHERE payment = {} ORDER BY id",
                refs::KEY_OF
            ))?;
            let rows = stmt.query_map(self.recent.key_params(id), transfer_row)?;
            rows.collect()
        })
    }

    fn mpesa_app(
        &self,
        developer_id: i64,
    ) -> Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        self.with(|c| mpesa::app(c, developer_id))
    }

    fn mpesa_app_by_key_hash(
        &self,
        hash: &[u8; 32],
    ) -> Result<Option<mkoba_platform::mpesa::MpesaApp>, StoreError> {
        self.with(|c| mpesa::app_by_key_hash(c, hash))
    }

    fn payment_by_transaction_id(
        &self,
        transaction_id: &str,
    ) -> Result<Option<Payment>, StoreError> {
        self.with(|c| mpesa::payment_by_transaction_id(c, transaction_id))
    }

    fn refunded_total(&self, original: &Uuid) -> Result<i64, StoreError> {
        self.with(|c| mpesa::refunded_total(c, original))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mkoba_ledger::{AccountId, Limit};
    use mkoba_platform::model::{KeySlot, Product, SubscriptionKey};
    use mkoba_platform::store::NewAccount;

    /// A payment's callback attempts are found by index in both places they are kept, not
    /// by reading every outbox row or attempt (SQLite must take the `IN` into the view's
    /// arms; the system SQLite 3.40 did not, the bundled one does).
    #[test]
    fn callback_attempts_are_read_by_index_through_the_view() {
        let dir = tempfile::tempdir().unwrap();
        let (journal, _reader) = open(dir.path()).unwrap();
        let mut stmt = journal
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {}", *CALLBACK_ATTEMPTS))
            .unwrap();
        let plan: Vec<String> = stmt
            .query_map(params![None::<i64>, [0u8; 16]], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        let searched = |table: &str| {
            plan.iter()
                .any(|l| l.starts_with(&format!("SEARCH {table} ")))
        };
        assert!(
            searched("outbox") && searched("callback_attempts"),
            "{plan:#?}"
        );
        assert!(
            !plan
                .iter()
                .any(|l| l == "SCAN outbox" || l == "SCAN callback_attempts"),
            "{plan:#?}"
        );
    }

    /// A real full database (SQLite's `max_page_count` stands for the disk): the commit
    /// fails whole, nothing of it is visible, and the same batch commits once there is
    /// room again.
    #[test]
    fn a_full_database_refuses_a_commit_whole_and_takes_it_when_space_returns() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, reader) = open(dir.path()).unwrap();
        let mut first = Batch::default();
        first.developers.push(1);
        journal.commit(&first).unwrap();
        let pages: i64 = journal
            .conn
            .query_row("PRAGMA page_count", [], |r| r.get(0))
            .unwrap();
        journal
            .conn
            .pragma_update(None, "max_page_count", pages)
            .unwrap();
        let big = api_users(2_000);
        let e = journal.commit(&big).unwrap_err();
        assert!(e.0.contains("full"), "{e}");
        for u in &big.api_users {
            assert!(
                reader.api_user(&u.id).unwrap().is_none(),
                "nothing half-written"
            );
        }
        journal
            .conn
            .pragma_update(None, "max_page_count", 1_073_741_823)
            .unwrap();
        journal.commit(&big).unwrap();
        assert!(reader.api_user(&big.api_users[1_999].id).unwrap().is_some());
    }

    /// A batch of `n` new API users (a few pages of the database).
    fn api_users(n: i64) -> Batch {
        let mut batch = Batch::default();
        for i in 0..n {
            batch.api_users.push(ApiUser {
                id: Uuid::new_v4(),
                developer_id: 1,
                provider_callback_host: format!("host-{i}.example"),
                target_environment: "sandbox".into(),
                created_at_ms: i,
            });
        }
        batch
    }

    /// A read that keeps the WAL in use keeps the checkpoint from finishing: the writer
    /// waits a bounded time for it and goes on, so the WAL grows past its limit. Once the
    /// read ends, the file starts over and is cut back to the limit.
    #[test]
    fn a_long_read_lets_the_wal_grow_and_its_end_lets_it_start_over() {
        const LIMIT: u64 = 64 << 10;
        let dir = tempfile::tempdir().unwrap();
        let options = SqliteOptions {
            wal_limit_bytes: LIMIT,
            ..SqliteOptions::default()
        };
        let (mut journal, reader) = open_with(dir.path(), options).unwrap();
        let metrics = mkoba_platform::metrics::StoreMetrics::default();
        journal.watch(&metrics);
        let drains = |outcome: &str| {
            metrics
                .wal_drains
                .get_or_create(&mkoba_platform::metrics::label("outcome", outcome))
                .get()
        };
        let mut first = Batch::default();
        first.developers.push(1);
        journal.commit(&first).unwrap();
        let wal = || {
            std::fs::metadata(dir.path().join("mkoba.db-wal"))
                .unwrap()
                .len()
        };
        let long_read = connect(&dir.path().join(DB_FILE), READER_CACHE_KIB).unwrap();
        long_read.execute_batch("BEGIN").unwrap();
        let before: i64 = long_read
            .query_row("SELECT COUNT(*) FROM api_users", [], |r| r.get(0))
            .unwrap();
        let mut last = None;
        for _ in 0..40 {
            let batch = api_users(40);
            journal.commit(&batch).unwrap();
            last = Some(batch.api_users[39].id);
        }
        let held = wal();
        assert!(held > 8 * LIMIT, "the WAL held by the read: {held} bytes");
        assert!(drains("gave_up") > 0, "the writer waited for the read");
        // The read still sees its snapshot; the others see every commit.
        let during: i64 = long_read
            .query_row("SELECT COUNT(*) FROM api_users", [], |r| r.get(0))
            .unwrap();
        assert_eq!(during, before);
        assert!(reader.api_user(&last.unwrap()).unwrap().is_some());
        long_read.execute_batch("COMMIT").unwrap();
        // Cut back when it starts over (how far it grows again before the next start-over
        // depends on how the two threads interleave).
        let mut smallest = held;
        for _ in 0..200 {
            journal.commit(&api_users(4)).unwrap();
            smallest = smallest.min(wal());
        }
        assert!(smallest <= 2 * LIMIT, "held {held}, then {smallest} bytes");
    }

    #[cfg(unix)]
    #[test]
    fn the_database_files_are_the_owners_only() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |name: &str| {
            std::fs::metadata(dir.path().join(name))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        {
            let (mut journal, _reader) = open(dir.path()).unwrap();
            let mut batch = Batch::default();
            batch.developers.push(1);
            journal.commit(&batch).unwrap();
            assert_eq!(mode(""), 0o700, "the data directory");
            assert_eq!(mode(DB_FILE), 0o600);
            assert_eq!(mode("mkoba.db-wal"), 0o600);
        }
        // A file an older version left readable by others is narrowed at the next start.
        std::fs::set_permissions(
            dir.path().join(DB_FILE),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let _store = open(dir.path()).unwrap();
        assert_eq!(mode(DB_FILE), 0o600);
    }

    #[test]
    fn accounts_of_a_database_made_before_the_journey_are_active() {
        use mkoba_platform::accounts::AccountStatus;
        use mkoba_platform::portal::PortalReader as _;
        let dir = tempfile::tempdir().unwrap();
        {
            // A database at schema 4 (before 0006_accounts) with one account.
            let mut conn = connect(&dir.path().join(DB_FILE), READER_CACHE_KIB).unwrap();
            for (i, sql) in MIGRATIONS.iter().take(4).enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", i + 1).unwrap();
                tx.commit().unwrap();
            }
            conn.execute_batch(
                "INSERT INTO developers (id, created_at_ms) VALUES (7, 1);
                 INSERT INTO developer_accounts (developer_id, email, name, password_hash, created_at_ms)
                 VALUES (7, 'old@example.org', 'Old', '$argon2id$x', 1);",
            )
            .unwrap();
        }
        let (_journal, reader) = open(dir.path()).unwrap();
        let account = reader.developer(7).unwrap().unwrap();
        assert_eq!(account.status, AccountStatus::Active);
        assert_eq!(account.phone, None);
    }

    #[test]
    fn payments_made_before_integer_links_keep_their_transfers_and_callbacks() {
        use mkoba_platform::portal::PortalReader as _;
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (
            "0b8a5f0e-5f63-4d1b-8d1e-3c1b2a9e7f01",
            "7d0c2e4a-1b3c-4d5e-8f90-a1b2c3d4e5f6",
        );
        {
            // A database just before 0009_integer_links: two payments, a's transfer,
            // callback and attempt, and a callback about no payment.
            let mut conn = connect(&dir.path().join(DB_FILE), READER_CACHE_KIB).unwrap();
            let before = MIGRATIONS
                .iter()
                .position(|m| m.contains("payments_new"))
                .unwrap();
            for (i, sql) in MIGRATIONS.iter().take(before).enumerate() {
                let tx = conn.transaction().unwrap();
                tx.execute_batch(sql).unwrap();
                tx.pragma_update(None, "user_version", i + 1).unwrap();
                tx.commit().unwrap();
            }
            let payment = |r: &str, at: i64| {
                format!(
                    "INSERT INTO payments (reference_id, kind, product, api_user, environment, amount_minor,
                         currency, party_type, party_id, status, created_at_ms)
                     VALUES ('{r}', 'requesttopay', 'collection', '{r}', 'sandbox', 500, 'EUR',
                         'MSISDN', '256770000001', 'SUCCESSFUL', {at});"
                )
            };
            conn.execute_batch(&format!(
                "{}{}
                 INSERT INTO accounts (id, owner, currency, limit_kind, debits_pending, debits_posted,
                     credits_pending, credits_posted)
                 VALUES (1, 'funding', 'EUR', 'none', 0, 500, 0, 0), (2, 'wallet:x', 'EUR', 'none', 0, 0, 0, 500);
                 INSERT INTO transfers (id, debit_account, credit_account, amount, currency, state,
                     reference_id, created_at_ms, updated_at_ms)
                 VALUES (1, 1, 2, 500, 'EUR', 'posted', '{a}', 10, 20);
                 INSERT INTO outbox (id, reference_id, url, method, body, state, attempts, next_attempt_at_ms)
                 VALUES (1, '{a}', 'https://x.example/cb', 'PUT', '{{}}', 'delivered', 1, 30),
                        (2, '{b}0', 'https://x.example/kyc', 'POST', '{{}}', 'delivered', 1, 30);
                 INSERT INTO callback_attempts (outbox_id, reference_id, attempt, at_ms, url, method,
                     status_code, latency_ms)
                 VALUES (1, '{a}', 1, 30, 'https://x.example/cb', 'PUT', 200, 4);",
                payment(a, 1),
                payment(b, 2)
            ))
            .unwrap();
        }
        let (mut journal, reader) = open(dir.path()).unwrap();
        let a = Uuid::parse_str(a).unwrap();
        assert_eq!(reader.payment(&a).unwrap().unwrap().amount.minor(), 500);
        assert_eq!(reader.transfers_for(&a).unwrap().len(), 1);
        assert_eq!(reader.transfer_times(&a).unwrap(), vec![(1, 10, 20)]);
        assert_eq!(reader.outbox_of(&a).unwrap().len(), 1);
        assert_eq!(reader.callback_attempts(&a).unwrap().len(), 1);
        let b = Uuid::parse_str(b).unwrap();
        assert!(reader.transfers_for(&b).unwrap().is_empty());
        assert!(reader.outbox_of(&b).unwrap().is_empty());
        // Payments made after it go on from the old ones' numbers.
        let mut later = reader.payment(&b).unwrap().unwrap();
        later.reference_id = Uuid::new_v4();
        journal
            .commit(&Batch {
                new_payments: vec![later.clone()],
                ..Batch::default()
            })
            .unwrap();
        let ids: Vec<i64> = journal
            .conn
            .prepare("SELECT id FROM payments ORDER BY id")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert_eq!(ids, vec![1, 2, 3]);
    }

    #[test]
    fn a_committed_batch_is_read_back_by_load_and_the_reader() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, reader) = open(dir.path()).unwrap();
        let user = Uuid::new_v4();
        let eur = Currency::parse("EUR").unwrap();
        let mut batch = Batch::default();
        batch.developers.push(1);
        batch.subscription_keys.push(SubscriptionKey {
            developer_id: 1,
            product: Product::Collection,
            slot: KeySlot::Primary,
            key: "k".repeat(32),
        });
        batch.token_secret = Some(vec![7; 32]);
        batch.api_users.push(ApiUser {
            id: user,
            developer_id: 1,
            provider_callback_host: "clinic.com".into(),
            target_environment: "sandbox".into(),
            created_at_ms: 1,
        });
        batch.new_accounts.push(NewAccount {
            id: AccountId(1),
            owner: AccountOwner::Partner {
                api_user: user,
                product: Product::Collection,
            },
            currency: eur,
            limit: Limit::NoOverdraft,
        });
        let mut account = Account::new(AccountId(1), eur, Limit::NoOverdraft);
        account.credits_posted = 500;
        batch.accounts.push(account.clone());
        journal.commit(&batch).unwrap();

        let state = journal.load(100).unwrap();
        assert_eq!(state.subscription_keys.len(), 1);
        assert_eq!(state.token_secret, Some(vec![7; 32]));
        assert_eq!(state.accounts.len(), 1);
        assert_eq!(state.accounts[0].0, account);
        assert!(journal.api_user_exists(&user).unwrap());
        assert_eq!(
            reader
                .api_user(&user)
                .unwrap()
                .unwrap()
                .provider_callback_host,
            "clinic.com"
        );
        let owner = AccountOwner::Partner {
            api_user: user,
            product: Product::Collection,
        };
        assert_eq!(
            reader.account(&owner, eur).unwrap().unwrap().available(),
            500
        );
    }

    fn a_payment(reference_id: Uuid) -> Payment {
        Payment::accepted(
            mkoba_platform::model::NewPayment {
                reference_id,
                kind: PaymentKind::RequestToPay,
                product: Product::Collection,
                api_user: Uuid::nil(),
                environment: "sandbox".into(),
                amount: mkoba_ledger::Money::from_minor(500, Currency::parse("EUR").unwrap()),
                external_id: None,
                party: Party {
                    id_type: mkoba_platform::model::PartyIdType::Msisdn,
                    id: "256770000001".into(),
                },
                payer_message: None,
                payee_note: None,
                callback_url: None,
                callback_method: None,
                refund_of: None,
                details: None,
                expires_at_ms: None,
                short_code: None,
                mandate: None,
            },
            1,
            None,
        )
    }

    /// A database whose writer keeps at most about `refs_behind` reference ids in memory.
    fn open_behind(dir: &Path, refs_behind: usize) -> (SqliteJournal, SqliteReader) {
        let options = SqliteOptions {
            refs_behind,
            ..SqliteOptions::default()
        };
        open_with(dir, options).unwrap()
    }

    fn refs_in_table(journal: &SqliteJournal) -> i64 {
        journal
            .conn
            .query_row("SELECT COUNT(*) FROM payment_refs", [], |r| r.get(0))
            .unwrap()
    }

    /// Reference ids written behind (`refs.rs`), with room for 8 in memory: 300 payments in
    /// commits of 1 to 7 are each found by the reader and the writer right after their
    /// commit and at every commit after; what the later commits write about an earlier
    /// payment (its update, its callback) lands on it; the map stays near its size; a start
    /// puts every id in the table.
    #[test]
    fn reference_ids_written_behind_are_found_at_every_moment_and_after_a_start() {
        use mkoba_platform::portal::PortalReader as _;
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, reader) = open_behind(dir.path(), 8);
        let mut all: Vec<Uuid> = Vec::new();
        let mut most_waiting = 0;
        for round in 0..75_usize {
            let mut batch = Batch::default();
            for _ in 0..1 + round % 7 {
                batch.new_payments.push(a_payment(Uuid::new_v4()));
            }
            // The oldest payment not yet settled settles now, and its callback is written.
            if let Some(old) = round.checked_sub(1).and_then(|i| all.get(i)) {
                batch
                    .payment_updates
                    .push(mkoba_platform::store::PaymentUpdate {
                        reference_id: *old,
                        status: mkoba_platform::model::PaymentStatus::Successful,
                        reason: None,
                        financial_transaction_id: Some(format!("{round}")),
                        settled_at_ms: Some(2),
                        transfer_id: None,
                        notifications: 0,
                    });
                batch.outbox.push(OutboxItem {
                    id: round as i64 + 1,
                    reference_id: *old,
                    url: "https://clinic.com/cb".into(),
                    method: mkoba_platform::model::CallbackMethod::Put,
                    body: "{}".into(),
                    attempts: 0,
                    next_attempt_at_ms: 1,
                });
            }
            journal.commit(&batch).unwrap();
            all.extend(batch.new_payments.iter().map(|p| p.reference_id));
            for id in &all {
                assert_eq!(reader.payment(id).unwrap().unwrap().reference_id, *id);
                assert!(journal.payment_exists(id).unwrap(), "{id}");
            }
            // All at once, as a pass asks.
            let free = Uuid::new_v4();
            let asked: Vec<Uuid> = all.iter().copied().chain([free]).collect();
            let taken = journal.payments_existing(&asked).unwrap();
            assert_eq!(taken.len(), all.len());
            assert!(all.iter().all(|id| taken.contains(id)) && !taken.contains(&free));
            for (i, id) in all.iter().enumerate().take(round) {
                let v = reader.payment(id).unwrap().unwrap();
                assert_eq!(v.status.as_str(), "SUCCESSFUL", "{i}");
                assert_eq!(reader.outbox_of(id).unwrap().len(), 1, "{i}");
            }
            let waiting = reader.recent.len();
            most_waiting = most_waiting.max(waiting);
            // An id waits less than a round of the cursor (8 payments and a commit's).
            assert!(waiting <= 8 + 2 * 7, "{waiting} waiting");
            assert_eq!(refs_in_table(&journal) + waiting as i64, all.len() as i64);
        }
        assert!(most_waiting > 0);
        assert!(!journal.payment_exists(&Uuid::new_v4()).unwrap());
        let through: i64 = journal
            .conn
            .query_row(
                "SELECT value FROM settings WHERE name = 'payment_refs_through'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(through > 0 && through < all.len() as i64, "{through}");
        drop((journal, reader));

        let (journal, reader) = open(dir.path()).unwrap();
        assert_eq!(refs_in_table(&journal), all.len() as i64);
        assert_eq!(reader.recent.len(), 0);
        for id in &all {
            assert_eq!(reader.payment(id).unwrap().unwrap().reference_id, *id);
        }
    }

    /// Readers on threads of their own, racing the writer's commits and sweeps (room for 8
    /// ids in memory, so ids leave the map all the time): every payment committed before a
    /// read began is found by it, whether its id is in the map, on its way to the table, or
    /// in the table.
    #[test]
    fn readers_racing_the_sweep_always_find_a_committed_payment() {
        use std::sync::Arc;
        use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, reader) = open_behind(dir.path(), 8);
        let reader = Arc::new(reader);
        let committed = Arc::new(Mutex::new(Vec::<Uuid>::new()));
        let done = Arc::new(AtomicBool::new(false));
        let reads = Arc::new(AtomicUsize::new(0));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (reader, committed, done, reads) = (
                    reader.clone(),
                    committed.clone(),
                    done.clone(),
                    reads.clone(),
                );
                std::thread::spawn(move || {
                    while !done.load(Ordering::Relaxed) {
                        let ids = committed.lock().unwrap().clone();
                        // The newest (in memory or being swept) and a spread of older ones.
                        let newest = ids.iter().rev().take(24);
                        let older = ids.iter().step_by(7);
                        for id in newest.chain(older) {
                            assert!(reader.payment(id).unwrap().is_some(), "{id} not found");
                            reads.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                })
            })
            .collect();
        for round in 0..400 {
            let batch = Batch {
                new_payments: (0..1 + round % 5)
                    .map(|_| a_payment(Uuid::new_v4()))
                    .collect(),
                ..Batch::default()
            };
            journal.commit(&batch).unwrap();
            committed
                .lock()
                .unwrap()
                .extend(batch.new_payments.iter().map(|p| p.reference_id));
        }
        done.store(true, Ordering::Relaxed);
        for r in readers {
            r.join().expect("a reader found every payment");
        }
        assert!(reads.load(Ordering::Relaxed) > 0);
        assert!(refs_in_table(&journal) > 0);
    }

    #[test]
    fn a_failed_batch_leaves_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let (mut journal, reader) = open(dir.path()).unwrap();
        let user = Uuid::new_v4();
        let u = ApiUser {
            id: user,
            developer_id: 1,
            provider_callback_host: "a.com".into(),
            target_environment: "sandbox".into(),
            created_at_ms: 1,
        };
        let mut batch = Batch::default();
        // The same user twice violates the primary key: the whole batch must roll back.
        batch.api_users.push(u.clone());
        batch.api_users.push(u);
        assert!(journal.commit(&batch).is_err());
        assert!(reader.api_user(&user).unwrap().is_none());
    }

    #[test]
    fn payments_by_party_are_found_through_the_party_index_and_only_its_kinds_enter_it() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        let sql = format!("EXPLAIN QUERY PLAN {}", payments_of_party_sql());
        let plan: Vec<String> = conn
            .prepare(&sql)
            .unwrap()
            .query_map(params!["u", "preapproval", "MSISDN", "1"], |r| r.get(3))
            .unwrap()
            .collect::<rusqlite::Result<_>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|p| p.contains("USING INDEX payments_by_party")),
            "{plan:?}"
        );
        let index: String = conn
            .query_row(
                "SELECT sql FROM sqlite_master WHERE name = 'payments_by_party'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert!(index.contains(PaymentKind::BY_PARTY_SQL), "{index}");
    }

    #[test]
    fn a_database_newer_than_the_binary_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        drop(open(dir.path()).unwrap());
        let conn = Connection::open(dir.path().join(DB_FILE)).unwrap();
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .unwrap();
        drop(conn);
        let e = open(dir.path()).unwrap_err();
        assert!(e.0.contains("newer than this binary"), "{e}");
    }
}
