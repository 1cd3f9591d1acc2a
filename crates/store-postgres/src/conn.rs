//! PostgreSQL connections on threads of their own.
//!
//! Each connection is a `tokio-postgres` client driven by a private current-thread tokio
//! runtime (what the synchronous `postgres` crate does inside), and tokio refuses to start
//! a runtime on a thread that is already inside one ("Cannot start a runtime from within a
//! runtime"). The platform calls its store from async request handlers, and the server
//! opens the store and bootstraps the platform in its async start-up, so no PostgreSQL call
//! may run on the caller's thread. Every connection therefore lives on a thread the store
//! owns ([`Workers`]); a caller hands it a job and blocks on the answer, the way a SQLite
//! read blocks on the disk.
//!
//! Jobs own their inputs (`'static`): a commit is first turned into owned statements
//! ([`Op`]s) on the caller's thread, reads capture copies of their few parameters.
//!
//! Each connection keeps its prepared statements by SQL text, so a statement is parsed
//! once per connection and then costs one round trip per execution. A commit costs one
//! round trip in all: its statements and the `COMMIT` are sent at once
//! ([`Conn::pipeline`]). A connection that the server closed is dropped after
//! the job that noticed it; the next job reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mkoba_platform::store::StoreError;
use tokio::runtime::Runtime;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, Config, NoTls, Row, Statement};

/// A failure inside this crate: the database's, or a row this binary cannot read.
#[derive(Debug)]
pub(crate) enum Error {
    Pg(tokio_postgres::Error),
    Bad(String),
}

impl Error {
    /// The server's answer that it is ending this connection (a terminated backend, a
    /// shutdown, an idle session or a pass left idle in its transaction timed out:
    /// SQLSTATE 57P01, 57P02, 57P05, 25P03). The client may read that answer before it
    /// sees the connection closed.
    fn ends_connection(&self) -> bool {
        use tokio_postgres::error::SqlState;
        let ending = [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::IDLE_SESSION_TIMEOUT,
            SqlState::IDLE_IN_TRANSACTION_SESSION_TIMEOUT,
        ];
        matches!(self, Error::Pg(e) if e.code().is_some_and(|code| ending.contains(code)))
    }
}

impl From<tokio_postgres::Error> for Error {
    fn from(e: tokio_postgres::Error) -> Error {
        Error::Pg(e)
    }
}

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Error {
        Error::Bad(e.0)
    }
}

impl From<Error> for StoreError {
    fn from(e: Error) -> StoreError {
        match e {
            Error::Pg(e) => match e.as_db_error() {
                // "db error" alone says nothing: give the server's message and code.
                Some(db) => StoreError(format!(
                    "postgres: {} ({}: {})",
                    e,
                    db.code().code(),
                    db.message()
                )),
                // "error connecting to server" alone hides why: add the causes
                // ("Connection refused (os error 111)").
                None => {
                    let mut text = format!("postgres: {e}");
                    let mut cause = std::error::Error::source(&e);
                    while let Some(c) = cause {
                        text.push_str(&format!(": {c}"));
                        cause = c.source();
                    }
                    StoreError(text)
                }
            },
            Error::Bad(m) => StoreError(m),
        }
    }
}

pub(crate) type Result<T> = std::result::Result<T, Error>;

/// A parameter a job owns.
pub(crate) type Param = Box<dyn ToSql + Send + Sync>;

/// Borrows owned parameters the way the client's calls take them.
pub(crate) fn refs(params: &[Param]) -> Vec<&(dyn ToSql + Sync)> {
    params
        .iter()
        .map(|p| p.as_ref() as &(dyn ToSql + Sync))
        .collect()
}

/// One statement of a commit, with its parameters.
pub(crate) struct Op {
    pub sql: &'static str,
    pub params: Vec<Param>,
}

/// Builds an [`Op`] from a statement and owned values.
macro_rules! op {
    ($sql:expr $(, $value:expr)* $(,)?) => {
        $crate::conn::Op {
            sql: $sql,
            params: vec![$(Box::new($value) as $crate::conn::Param),*],
        }
    };
}
pub(crate) use op;

/// What a connection is for; each kind sets its session up once after connecting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    /// The single writer (and migrations): commits must be durable before they return.
    Journal,
    /// Request handlers: read-only sessions.
    Reader,
}

/// An open connection, the runtime that drives it, and its statement cache.
pub(crate) struct Conn {
    pub client: Client,
    /// Always there until the connection is dropped ([`Conn::drop`]).
    runtime: Option<Runtime>,
    /// Prepared statements, by SQL text.
    statements: HashMap<String, Statement>,
    /// A writer's pass is open on this connection (`BEGIN` sent, lock held); a new
    /// connection never has one.
    pub pass: bool,
}

impl Conn {
    fn connect(config: &Config, role: Role) -> Result<Conn> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| {
                Error::Bad(format!(
                    "cannot start a PostgreSQL connection's runtime: {e}"
                ))
            })?;
        // The connect timeout bounds the whole establishment, as libpq's does: the driver's
        // covers only the TCP connect, and a server (or a pooler) that accepts and then
        // never answers held a start (deaf to SIGTERM) or a reconnect for ever.
        let (client, connection) = match config.get_connect_timeout() {
            Some(limit) if !limit.is_zero() => runtime
                .block_on(async { tokio::time::timeout(*limit, config.connect(NoTls)).await })
                .map_err(|_| {
                    Error::Bad(format!(
                        "PostgreSQL accepted the connection but did not answer within {} s (connect_timeout)",
                        limit.as_secs_f64()
                    ))
                })??,
            _ => runtime.block_on(config.connect(NoTls))?,
        };
        // Driven whenever this thread waits on the client (`block_on`); it ends when the
        // server closes the socket, and the client then reports itself closed.
        runtime.spawn(async move {
            let _ = connection.await;
        });
        let mut conn = Conn {
            client,
            runtime: Some(runtime),
            statements: HashMap::new(),
            pass: false,
        };
        match role {
            Role::Journal => {
                // A 202 promises the row is on disk: never run the writer with the server's
                // `synchronous_commit = off`, whatever the server's default is ("local",
                // "remote_write" and "remote_apply" all flush the local WAL first).
                let row = conn.query_one("SHOW synchronous_commit", &[])?;
                let mode: String = row.try_get(0)?;
                if mode == "off" {
                    conn.batch_execute("SET synchronous_commit = on")?;
                }
                // A pass reads "rows with seq > $1", where $1 is always near the top: a
                // generic plan of a prepared statement guesses a third of the table and
                // scans all of it. Plan each execution with its value instead.
                conn.batch_execute("SET plan_cache_mode = force_custom_plan")?;
            }
            Role::Reader => conn.batch_execute("SET default_transaction_read_only = on")?,
        }
        // PostgreSQL compiles a query whose plan costs past `jit_above_cost` to machine code
        // first. None of ours runs long enough to gain from it: a report's queries over a
        // million payments took 0.51–0.64 s a page without it and 0.57–0.69 s with it, the
        // first load 0.57–0.69 against 0.78–0.82 s (docs/postgres.md).
        conn.batch_execute("SET jit = off")?;
        Ok(conn)
    }

    fn runtime(&self) -> &Runtime {
        self.runtime
            .as_ref()
            .expect("a connection's runtime lives as long as it does")
    }

    /// The prepared form of `sql`, preparing it the first time.
    fn statement(&mut self, sql: &str) -> Result<Statement> {
        if let Some(s) = self.statements.get(sql) {
            return Ok(s.clone());
        }
        let s = self.runtime().block_on(self.client.prepare(sql))?;
        self.statements.insert(sql.to_owned(), s.clone());
        Ok(s)
    }

    /// Rows of a cached statement.
    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.statement(sql)?;
        Ok(self.runtime().block_on(self.client.query(&s, params))?)
    }

    /// At most one row of a cached statement.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.statement(sql)?;
        Ok(self.runtime().block_on(self.client.query_opt(&s, params))?)
    }

    /// Exactly one row of a cached statement.
    pub(crate) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.statement(sql)?;
        Ok(self.runtime().block_on(self.client.query_one(&s, params))?)
    }

    /// Runs statements without parameters (the simple protocol), in one round trip.
    pub(crate) fn batch_execute(&mut self, sql: &str) -> Result<()> {
        Ok(self.runtime().block_on(self.client.batch_execute(sql))?)
    }

    /// Sends `first` (statements without parameters, if any), each cached statement of
    /// `statements` with its parameters, then `last` (if any), all at once: one round
    /// trip. Each is still a protocol message of its own with its own answer, and the
    /// server runs them in order, so each sees what those before it did (a transaction
    /// begun, a lock taken, a setting made). Returns the rows of each statement, or the
    /// first failure in that order. Inside a transaction, a failure aborts it: the
    /// statements after it fail too, and a `COMMIT` sent as `last` rolls back.
    fn pipeline(
        &mut self,
        first: Option<&str>,
        statements: &[(&str, &[&(dyn ToSql + Sync)])],
        last: Option<&str>,
    ) -> Result<Vec<Vec<Row>>> {
        let prepared = statements
            .iter()
            .map(|(sql, _)| self.statement(sql))
            .collect::<Result<Vec<_>>>()?;
        let client = &self.client;
        let simple = |sql: Option<&str>| {
            let sql = sql.map(str::to_owned);
            async move {
                match sql {
                    Some(sql) => client.batch_execute(&sql).await,
                    None => Ok(()),
                }
            }
        };
        // Each future sends its messages when first polled, and the joins poll in order.
        let (ran, rows, ended) = self.runtime().block_on(futures_util::future::join3(
            simple(first),
            futures_util::future::join_all(
                prepared
                    .iter()
                    .zip(statements)
                    .map(|(s, (_, params))| client.query(s, params)),
            ),
            simple(last),
        ));
        ran?;
        let rows = rows.into_iter().collect::<std::result::Result<_, _>>()?;
        ended?;
        Ok(rows)
    }

    /// [`Conn::pipeline`] of `first` (if any) and `queries`: their rows in one round trip.
    pub(crate) fn query_all(
        &mut self,
        first: Option<&str>,
        queries: &[(&str, &[&(dyn ToSql + Sync)])],
    ) -> Result<Vec<Vec<Row>>> {
        self.pipeline(first, queries, None)
    }

    /// Runs `f` in a transaction of its own (`begin` is its `BEGIN …` statement), committed
    /// when `f` succeeds and rolled back when it fails.
    pub(crate) fn in_transaction<T>(
        &mut self,
        begin: &str,
        f: impl FnOnce(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        self.batch_execute(begin)?;
        match f(self) {
            Ok(value) => {
                self.batch_execute("COMMIT")?;
                Ok(value)
            }
            Err(e) => {
                if !self.client.is_closed() {
                    let _ = self.batch_execute("ROLLBACK");
                }
                Err(e)
            }
        }
    }

    /// A commit in one round trip ([`Conn::pipeline`]): `first` (statements without
    /// parameters), `ops` in order, then `COMMIT`. An `Ok` means every statement ran and
    /// the transaction committed; on the first failure the server has rolled it back.
    pub(crate) fn execute_and_commit<'a>(
        &mut self,
        first: &str,
        ops: impl IntoIterator<Item = &'a Op>,
    ) -> Result<()> {
        let ops: Vec<&Op> = ops.into_iter().collect();
        let params: Vec<Vec<&(dyn ToSql + Sync)>> = ops.iter().map(|op| refs(&op.params)).collect();
        let statements: Vec<(&str, &[&(dyn ToSql + Sync)])> = ops
            .iter()
            .zip(&params)
            .map(|(op, p)| (op.sql, p.as_slice()))
            .collect();
        self.pipeline(Some(first), &statements, Some("COMMIT"))
            .map(|_| ())
    }

    /// The plan PostgreSQL makes for `sql`, one line per plan line (tests of the plans
    /// the store relies on).
    #[cfg(test)]
    pub(crate) fn explain(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<String> {
        Ok(self
            .query(&format!("EXPLAIN {sql}"), params)?
            .iter()
            .map(|r| r.get::<_, String>(0))
            .collect::<Vec<_>>()
            .join("\n"))
    }
}

impl Drop for Conn {
    /// Without waiting: the last holder of a journal's connection may be a task (a server
    /// stopping), where a runtime must not block.
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

/// A thread's connection, opened on first use and again after the server closed it.
pub(crate) struct Session {
    config: Arc<Config>,
    role: Role,
    conn: Option<Conn>,
}

impl Session {
    /// A session that connects on its first use.
    pub(crate) fn new(config: Arc<Config>, role: Role) -> Session {
        Session {
            config,
            role,
            conn: None,
        }
    }

    /// Runs `f`, safe to repeat, on the connection; when the server had closed it, once
    /// more on a new one ([`Workers::run_again_if_closed`]).
    pub(crate) fn run_again_if_closed<T>(
        &mut self,
        f: impl Fn(&mut Conn) -> Result<T>,
    ) -> Result<T> {
        match self.conn().and_then(&f) {
            Err(e) if self.closed() || e.ends_connection() => {
                self.conn = None;
                self.conn().and_then(&f)
            }
            result => result,
        }
    }

    /// Whether the connection is gone (it is then replaced on the next use).
    fn closed(&self) -> bool {
        self.conn.as_ref().is_none_or(|c| c.client.is_closed())
    }

    fn conn(&mut self) -> Result<&mut Conn> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        match &mut self.conn {
            Some(c) => Ok(c),
            slot => Ok(slot.insert(Conn::connect(&self.config, self.role)?)),
        }
    }
}

type Job = Box<dyn FnOnce(&mut Session) + Send>;

/// Threads that each own one connection and take jobs from one queue: the journal has one,
/// the reader a small pool (a busy pool queues jobs rather than opening more connections).
///
/// With one connection, a caller that is not inside a tokio runtime (the platform's writer
/// thread) runs its job on that connection itself, under the session's lock, instead of
/// handing it over: a pass then costs the round trips to the server and no thread
/// switches on the way. Callers inside a runtime (start-up, request handlers) still hand
/// their jobs to the thread.
#[derive(Debug)]
pub(crate) struct Workers {
    jobs: mpsc::SyncSender<Job>,
    /// The one session, when there is one.
    only: Option<Arc<Mutex<Session>>>,
    /// Told of every call, when watched ([`Workers::watched`]).
    activity: Option<Arc<Activity>>,
}

/// Whether the user of a [`Workers`] (the writer) is inside a call to the database now, and
/// when it last finished one: what a node's heartbeat vouches for.
#[derive(Debug)]
pub(crate) struct Activity {
    origin: std::time::Instant,
    /// Calls under way.
    calls: std::sync::atomic::AtomicUsize,
    /// When the last call ended, in milliseconds after `origin`.
    ended_ms: std::sync::atomic::AtomicU64,
}

impl Activity {
    pub(crate) fn new() -> Activity {
        Activity {
            origin: std::time::Instant::now(),
            calls: std::sync::atomic::AtomicUsize::new(0),
            ended_ms: std::sync::atomic::AtomicU64::new(0),
        }
    }

    /// Whether, at `now`, a call is under way or one ended less than `within` ago.
    pub(crate) fn busy_at(&self, now: std::time::Instant, within: Duration) -> bool {
        use std::sync::atomic::Ordering;
        if self.calls.load(Ordering::SeqCst) > 0 {
            return true;
        }
        let ended = self.origin + Duration::from_millis(self.ended_ms.load(Ordering::SeqCst));
        now.saturating_duration_since(ended) < within
    }

    fn enter(&self) -> Call<'_> {
        self.calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Call(self)
    }
}

/// A call under way; its end is recorded when dropped.
struct Call<'a>(&'a Activity);

impl Drop for Call<'_> {
    fn drop(&mut self) {
        use std::sync::atomic::Ordering;
        let ended = self.0.origin.elapsed().as_millis() as u64;
        self.0.ended_ms.fetch_max(ended, Ordering::SeqCst);
        self.0.calls.fetch_sub(1, Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session").field("role", &self.role).finish()
    }
}

/// A session's lock, also after a job panicked holding it (the connection is then dropped:
/// it may be in the middle of a transaction).
fn lock(session: &Mutex<Session>) -> std::sync::MutexGuard<'_, Session> {
    session.lock().unwrap_or_else(|poisoned| {
        session.clear_poison();
        let mut s = poisoned.into_inner();
        s.conn = None;
        s
    })
}

impl Workers {
    /// Starts `threads` threads named `name-N`; they connect on their first job and stop
    /// when the [`Workers`] is dropped.
    pub(crate) fn spawn(
        config: Arc<Config>,
        role: Role,
        threads: usize,
        name: &str,
    ) -> std::result::Result<Workers, StoreError> {
        // Bounded: callers are threads that wait for their answer (the writer, the
        // platform's reader threads), so a full queue only makes one of them wait its turn.
        let (jobs, queue) = mpsc::sync_channel::<Job>(threads.max(1) * 16);
        let queue = Arc::new(Mutex::new(queue));
        let mut only = None;
        for i in 0..threads {
            let queue = queue.clone();
            let session = Arc::new(Mutex::new(Session::new(config.clone(), role)));
            if threads == 1 {
                only = Some(session.clone());
            }
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(queue) = queue.lock() else { break };
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(&mut lock(&session)),
                            Err(mpsc::RecvError) => break,
                        }
                    }
                })
                .map_err(|e| StoreError(format!("cannot start a PostgreSQL thread: {e}")))?;
        }
        Ok(Workers {
            jobs,
            only,
            activity: None,
        })
    }

    /// These workers, telling `activity` of every call.
    pub(crate) fn watched(self, activity: Arc<Activity>) -> Workers {
        Workers {
            activity: Some(activity),
            ..self
        }
    }

    /// Runs `f` on one of the connections and waits for its answer.
    pub(crate) fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Conn) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, StoreError> {
        self.submit(move |session| session.conn().and_then(f))
    }

    /// Like [`Workers::run`] for work that is safe to repeat (reads): when the server had
    /// closed the connection (a restart, an idle timeout, a terminated backend), `f` runs
    /// once more on a new one instead of failing the caller.
    pub(crate) fn run_again_if_closed<T: Send + 'static>(
        &self,
        f: impl Fn(&mut Conn) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, StoreError> {
        self.submit(move |session| session.run_again_if_closed(&f))
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, StoreError> {
        let _call = self.activity.as_deref().map(Activity::enter);
        if let Some(session) = &self.only
            && tokio::runtime::Handle::try_current().is_err()
        {
            return Ok(f(&mut lock(session))?);
        }
        let (tx, rx) = mpsc::sync_channel(1);
        let job: Job = Box::new(move |session: &mut Session| {
            let _ = tx.send(f(session));
        });
        let stopped = || StoreError("the PostgreSQL connection thread has stopped".to_owned());
        self.jobs.send(job).map_err(|_| stopped())?;
        Ok(rx.recv().map_err(|_| stopped())??)
    }
}

/// Parses a connection string (`postgresql://user@host:port/db?…` or `host=… dbname=…`),
/// naming the application `mkoba` and bounding the connect time unless it says otherwise.
///
/// Over TCP, a connection whose server went away without a word (its machine died, the
/// network between them broke) is given up within about a minute, unless the string
/// tunes keepalives itself: probes after 15 s of silence, 5 s apart, 5 unanswered end it;
/// data the server has not acknowledged for 60 s ends it too. Without this the kernel's
/// defaults (two hours) left the writer waiting that long for an answer that never came,
/// while its node kept its heartbeat.
pub(crate) fn config(url: &str) -> std::result::Result<Arc<Config>, StoreError> {
    let mut config: Config = url
        .parse()
        .map_err(|e| StoreError(format!("bad PostgreSQL connection string: {e}")))?;
    if config.get_application_name().is_none() {
        config.application_name("mkoba");
    }
    if config.get_connect_timeout().is_none() {
        config.connect_timeout(Duration::from_secs(10));
    }
    if config.get_keepalives()
        && config.get_keepalives_interval().is_none()
        && config.get_keepalives_retries().is_none()
        && config.get_keepalives_idle() == Duration::from_secs(2 * 60 * 60)
    {
        config
            .keepalives_idle(Duration::from_secs(15))
            .keepalives_interval(Duration::from_secs(5))
            .keepalives_retries(5);
    }
    if config.get_tcp_user_timeout().is_none() {
        config.tcp_user_timeout(Duration::from_secs(60));
    }
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_writer_is_busy_inside_a_call_and_for_a_while_after_one() {
        let activity = Activity::new();
        let (start, within) = (std::time::Instant::now(), Duration::from_secs(5));
        let hour = Duration::from_secs(3_600);
        assert!(
            activity.busy_at(start, within),
            "a new writer has its start"
        );
        assert!(!activity.busy_at(start + hour, within));
        let call = activity.enter();
        assert!(
            activity.busy_at(start + hour, within),
            "inside a call, however long"
        );
        drop(call);
        let ended = std::time::Instant::now();
        assert!(activity.busy_at(ended + Duration::from_secs(4), within));
        assert!(!activity.busy_at(ended + Duration::from_secs(6), within));
    }

    /// A server that accepts the connection and never answers (a frozen PostgreSQL, a
    /// stuck pooler) is given up on at the connect timeout, not waited for for ever.
    #[test]
    fn a_server_that_accepts_and_never_answers_is_given_up_on() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let held = std::thread::spawn(move || {
            let (socket, _) = listener.accept().unwrap();
            std::thread::sleep(Duration::from_secs(30));
            drop(socket);
        });
        let config = config(&format!(
            "postgresql://mkoba@127.0.0.1:{port}/mkoba?connect_timeout=1"
        ))
        .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(
                Conn::connect(&config, Role::Reader)
                    .err()
                    .map(|e| StoreError::from(e).0),
            );
        });
        let e = rx
            .recv_timeout(Duration::from_secs(25))
            .expect("the connect gave up")
            .expect("the connect failed");
        assert!(e.contains("did not answer"), "{e}");
        drop(held);
    }

    #[test]
    fn connections_give_up_on_a_silent_server_unless_the_string_says_otherwise() {
        let ours = config("postgresql://mkoba@127.0.0.1:5432/mkoba").unwrap();
        assert_eq!(ours.get_application_name(), Some("mkoba"));
        assert_eq!(ours.get_keepalives_idle(), Duration::from_secs(15));
        assert_eq!(ours.get_keepalives_interval(), Some(Duration::from_secs(5)));
        assert_eq!(ours.get_keepalives_retries(), Some(5));
        assert_eq!(ours.get_tcp_user_timeout(), Some(&Duration::from_secs(60)));
        let theirs = config(
            "host=127.0.0.1 user=mkoba application_name=app keepalives_idle=300 tcp_user_timeout=5",
        )
        .unwrap();
        assert_eq!(theirs.get_application_name(), Some("app"));
        assert_eq!(theirs.get_keepalives_idle(), Duration::from_secs(300));
        assert_eq!(theirs.get_keepalives_interval(), None);
        assert_eq!(theirs.get_tcp_user_timeout(), Some(&Duration::from_secs(5)));
        let off = config("host=127.0.0.1 user=mkoba keepalives=0").unwrap();
        assert!(!off.get_keepalives());
        assert_eq!(off.get_keepalives_interval(), None);
    }
}
