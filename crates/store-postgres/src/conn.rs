//! PostgreSQL connections on threads of their own.
//!
//! The synchronous `postgres` client drives its socket with a private current-thread tokio
//! runtime, and tokio refuses to start a runtime on a thread that is already inside one
//! ("Cannot start a runtime from within a runtime"). The platform calls its store from
//! async request handlers, and the server opens the store and bootstraps the platform in
//! its async start-up, so no PostgreSQL call may run on the caller's thread. Every
//! connection therefore lives on a thread the store owns ([`Workers`]); a caller hands it a
//! job and blocks on the answer, the way a SQLite read blocks on the disk.
//!
//! Jobs own their inputs (`'static`): a commit is first turned into owned statements
//! ([`Op`]s) on the caller's thread, reads capture copies of their few parameters.
//!
//! Each connection keeps its prepared statements by SQL text, so a statement is parsed
//! once per connection and then costs one round trip per execution. A connection that the
//! server closed is dropped after the job that noticed it; the next job reconnects.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use mkoba_platform::store::StoreError;
use postgres::types::ToSql;
use postgres::{Client, Config, GenericClient, NoTls, Row, Statement};

/// A failure inside this crate: the database's, or a row this binary cannot read.
#[derive(Debug)]
pub(crate) enum Error {
    Pg(postgres::Error),
    Bad(String),
}

impl From<postgres::Error> for Error {
    fn from(e: postgres::Error) -> Error {
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
                None => StoreError(format!("postgres: {e}")),
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

/// Prepared statements of one connection, by SQL text.
#[derive(Default)]
pub(crate) struct Statements(HashMap<String, Statement>);

impl Statements {
    /// The prepared form of `sql`, preparing it through `c` the first time.
    pub(crate) fn get(&mut self, c: &mut impl GenericClient, sql: &str) -> Result<Statement> {
        if let Some(s) = self.0.get(sql) {
            return Ok(s.clone());
        }
        let s = c.prepare(sql)?;
        self.0.insert(sql.to_owned(), s.clone());
        Ok(s)
    }
}

/// An open connection and its statement cache.
pub(crate) struct Conn {
    pub client: Client,
    pub statements: Statements,
    /// A writer's pass is open on this connection (`BEGIN` sent, lock held); a new
    /// connection never has one.
    pub pass: bool,
}

impl Conn {
    fn connect(config: &Config, role: Role) -> Result<Conn> {
        let mut client = config.connect(NoTls)?;
        match role {
            Role::Journal => {
                // A 202 promises the row is on disk: never run the writer with the server's
                // `synchronous_commit = off`, whatever the server's default is ("local",
                // "remote_write" and "remote_apply" all flush the local WAL first).
                let row = client.query_one("SHOW synchronous_commit", &[])?;
                let mode: String = row.try_get(0)?;
                if mode == "off" {
                    client.batch_execute("SET synchronous_commit = on")?;
                }
                // A pass reads "rows with seq > $1", where $1 is always near the top: a
                // generic plan of a prepared statement guesses a third of the table and
                // scans all of it. Plan each execution with its value instead.
                client.batch_execute("SET plan_cache_mode = force_custom_plan")?;
            }
            Role::Reader => client.batch_execute("SET default_transaction_read_only = on")?,
        }
        Ok(Conn {
            client,
            statements: Statements::default(),
            pass: false,
        })
    }

    /// Rows of a cached statement.
    pub(crate) fn query(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Vec<Row>> {
        let s = self.statements.get(&mut self.client, sql)?;
        Ok(self.client.query(&s, params)?)
    }

    /// At most one row of a cached statement.
    pub(crate) fn query_opt(
        &mut self,
        sql: &str,
        params: &[&(dyn ToSql + Sync)],
    ) -> Result<Option<Row>> {
        let s = self.statements.get(&mut self.client, sql)?;
        Ok(self.client.query_opt(&s, params)?)
    }

    /// Exactly one row of a cached statement.
    pub(crate) fn query_one(&mut self, sql: &str, params: &[&(dyn ToSql + Sync)]) -> Result<Row> {
        let s = self.statements.get(&mut self.client, sql)?;
        Ok(self.client.query_one(&s, params)?)
    }
}

/// A worker thread's connection, opened on first use and again after the server closed it.
struct Session {
    config: Arc<Config>,
    role: Role,
    conn: Option<Conn>,
}

impl Session {
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
#[derive(Debug)]
pub(crate) struct Workers {
    jobs: mpsc::SyncSender<Job>,
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
        for i in 0..threads {
            let queue = queue.clone();
            let mut session = Session {
                config: config.clone(),
                role,
                conn: None,
            };
            std::thread::Builder::new()
                .name(format!("{name}-{i}"))
                .spawn(move || {
                    loop {
                        let job = {
                            let Ok(queue) = queue.lock() else { break };
                            queue.recv()
                        };
                        match job {
                            Ok(job) => job(&mut session),
                            Err(mpsc::RecvError) => break,
                        }
                    }
                })
                .map_err(|e| StoreError(format!("cannot start a PostgreSQL thread: {e}")))?;
        }
        Ok(Workers { jobs })
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
        self.submit(move |session| match session.conn().and_then(&f) {
            Err(_) if session.closed() => session.conn().and_then(&f),
            result => result,
        })
    }

    fn submit<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Session) -> Result<T> + Send + 'static,
    ) -> std::result::Result<T, StoreError> {
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
    Ok(Arc::new(config))
}
