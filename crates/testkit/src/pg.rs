//! A throwaway PostgreSQL server for the tests: one per test binary, one database per test.
//!
//! [`database`] starts the server on first use: `initdb` into a fresh directory under the
//! system temp dir (trust authentication for a superuser `mkoba`, UTF-8, the C locale),
//! then `pg_ctl start` on a free loopback port (bind `127.0.0.1:0` to pick one) with
//! `listen_addresses = '127.0.0.1'` and the Unix socket inside that directory, `fsync` left
//! on. Each test then gets a database of its own (`CREATE DATABASE test_<random>`), so
//! tests run in parallel without seeing each other's rows.
//!
//! The binaries come from `$MKOBA_PG_BINDIR`, else the newest
//! `/usr/lib/postgresql/*/bin` (Debian's layout), else `pg_config --bindir`. Tests do not
//! install anything: `scripts/test.sh` installs Debian's `postgresql` package when no
//! `initdb` is there.
//!
//! **Root.** `initdb` and `postgres` refuse to run as root, and CI runs as root. When the
//! test runs as root the directory is handed to the `postgres` user (Debian's package
//! creates it; `nobody` otherwise) and `initdb` and `pg_ctl` run as that user, set with
//! `std::os::unix::process::CommandExt::{uid, gid}` (which also drops supplementary
//! groups), so no `su` or `sudo` is needed.
//!
//! **Stopping.** A static is never dropped, so the server cannot be stopped by a `Drop` at
//! the end of the test binary. Instead `pg_ctl` runs under a small shell watchdog whose
//! standard input is a pipe from the test process: when the test process ends, however it
//! ends (even killed), the pipe closes, and the watchdog stops the server (`-m immediate`)
//! and removes the directory. Dropping a [`PgServer`] does the same at once.

use std::io::{BufRead, BufReader};
use std::os::unix::fs::MetadataExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{LazyLock, Mutex};

/// Stops the server when its standard input closes; see the module doc.
const WATCHDOG: &str = r#"
"$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 60 \
    -o "-p $PG_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$PG_DIR -c max_connections=300" \
    start >>"$PG_DIR/pg_ctl.log" 2>&1 || { echo failed; exit 1; }
echo ready
read -r _ || true
"$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w stop >>"$PG_DIR/pg_ctl.log" 2>&1
rm -rf "$PG_DIR"
"#;

/// The superuser `initdb` creates.
const SUPERUSER: &str = "mkoba";

/// A running throwaway server.
pub struct PgServer {
    port: u16,
    watchdog: Mutex<Option<Child>>,
    admin: Mutex<postgres::Client>,
}

impl std::fmt::Debug for PgServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgServer")
            .field("port", &self.port)
            .finish_non_exhaustive()
    }
}

static SERVER: LazyLock<PgServer> = LazyLock::new(PgServer::start);

/// A connection string for a new, empty database on this binary's server.
pub fn database() -> String {
    SERVER.create_database()
}

/// This binary's server, for tests that act on the server itself.
pub fn server() -> &'static PgServer {
    &SERVER
}

impl PgServer {
    /// Initialises a cluster in a new temporary directory and starts it.
    pub fn start() -> PgServer {
        let bin = bindir();
        let dir = std::env::temp_dir().join(format!("mkoba-pg-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&dir).expect("creating the PostgreSQL test directory");
        let user = unprivileged_user();
        if let Some((uid, gid)) = user {
            std::os::unix::fs::chown(&dir, Some(uid), Some(gid))
                .expect("handing the PostgreSQL test directory to its user");
        }
        let initdb = as_user(Command::new(bin.join("initdb")), user, &dir)
            .args(["-D", "data", "-U", SUPERUSER, "-A", "trust", "-E", "UTF8"])
            .args(["--locale=C", "--no-sync", "--no-instructions"])
            .output()
            .expect("running initdb");
        if !initdb.status.success() {
            let _ = std::fs::remove_dir_all(&dir);
            panic!(
                "initdb failed: {}{}",
                String::from_utf8_lossy(&initdb.stdout),
                String::from_utf8_lossy(&initdb.stderr)
            );
        }
        // The port is free when picked; another process may take it before the server
        // binds it, so a failed start tries another.
        for _ in 0..3 {
            let port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("picking a free port")
                .port();
            let mut watchdog = as_user(Command::new("/bin/sh"), user, &dir)
                .args(["-c", WATCHDOG])
                .env("PG_BIN", &bin)
                .env("PG_DIR", &dir)
                .env("PG_PORT", port.to_string())
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .expect("starting the PostgreSQL watchdog");
            let mut line = String::new();
            let stdout = watchdog.stdout.take().expect("watchdog stdout");
            let _ = BufReader::new(stdout).read_line(&mut line);
            if line.trim() == "ready" {
                let url = url(port, "postgres");
                let admin = postgres::Client::connect(&url, postgres::NoTls)
                    .expect("connecting to the PostgreSQL test server");
                return PgServer {
                    port,
                    watchdog: Mutex::new(Some(watchdog)),
                    admin: Mutex::new(admin),
                };
            }
            let _ = watchdog.wait();
        }
        let log = std::fs::read_to_string(dir.join("pg_ctl.log")).unwrap_or_default()
            + &std::fs::read_to_string(dir.join("server.log")).unwrap_or_default();
        let _ = std::fs::remove_dir_all(&dir);
        panic!("the PostgreSQL test server did not start:\n{log}");
    }

    /// Creates an empty database and returns its connection string.
    pub fn create_database(&self) -> String {
        let name = format!("test_{}", uuid::Uuid::new_v4().simple());
        self.admin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batch_execute(&format!("CREATE DATABASE {name}"))
            .expect("creating a test database");
        url(self.port, &name)
    }

    /// Runs SQL as the superuser on the `postgres` database.
    pub fn admin(&self, sql: &str) {
        self.admin
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .batch_execute(sql)
            .expect("running admin SQL");
    }
}

impl Drop for PgServer {
    fn drop(&mut self) {
        let watchdog = self.watchdog.get_mut().unwrap_or_else(|e| e.into_inner());
        if let Some(mut child) = watchdog.take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

fn url(port: u16, database: &str) -> String {
    format!("postgresql://{SUPERUSER}@127.0.0.1:{port}/{database}")
}

/// Where `initdb` and `pg_ctl` are.
fn bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("MKOBA_PG_BINDIR") {
        return PathBuf::from(dir);
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("initdb").exists().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && dir.join("initdb").exists() {
            return dir;
        }
    }
    panic!(
        "no PostgreSQL server binaries (initdb, pg_ctl): run scripts/test.sh, which installs \
         Debian's postgresql package, or set MKOBA_PG_BINDIR"
    );
}

/// When running as root: the uid and gid of `postgres`, else of `nobody`.
fn unprivileged_user() -> Option<(u32, u32)> {
    // The owner of /proc/self is the process's effective uid (no libc call needed).
    let euid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(0);
    if euid != 0 {
        return None;
    }
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    for name in ["postgres", "nobody"] {
        for line in passwd.lines() {
            let fields: Vec<&str> = line.split(':').collect();
            if fields.len() > 3
                && fields[0] == name
                && let (Ok(uid), Ok(gid)) = (fields[2].parse(), fields[3].parse())
            {
                return Some((uid, gid));
            }
        }
    }
    panic!("running as root, and neither a postgres nor a nobody user exists to run PostgreSQL");
}

/// Runs `command` in `dir`, as `user` when given.
fn as_user(mut command: Command, user: Option<(u32, u32)>, dir: &Path) -> Command {
    command.current_dir(dir);
    if let Some((uid, gid)) = user {
        command.uid(uid).gid(gid);
    }
    command
}
