//! `mkoba backup`: a data directory copied whole, while its server runs or not, into a new
//! directory that `mkoba serve --data` starts from as it is.
//!
//! The database is copied with SQLite's `VACUUM INTO`, which reads it in one read
//! transaction: the copy is the state after one commit, with every payment, reservation
//! and callback of that commit and nothing of a later one, as a restart after a crash at
//! that moment would find it (the reference ids a running server still held in memory
//! are indexed again by the first start on the copy, `refs.rs`). A read does not stop the
//! server's writer; like a long report, it keeps the checkpoint thread from finishing
//! while it lasts, so the WAL may grow until it ends (`checkpoint.rs`). Copying `mkoba.db`
//! with `cp` instead misses what is still only in the WAL, or copies a file in the middle
//! of a checkpoint.
//!
//! Everything else in the data directory (the M-Pesa platform key pair, the `--tls`
//! certificate authority) is copied beside it: a restore without the M-Pesa key would make
//! a new pair, and every M-Pesa client's encrypted API key would stop working. The copy is
//! checked (`PRAGMA quick_check`), and everything is synced before the database takes its
//! name `mkoba.db`, last: a backup that says it finished is whole and on disk, and a
//! directory with a `mkoba.db` in it holds a whole backup.

use std::path::{Path, PathBuf};

use mkoba_platform::store::StoreError;
use rusqlite::{Connection, OpenFlags};

use crate::{DB_FILE, LOCK_FILE, create_private_dir};

/// What a backup wrote ([`backup`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BackupReport {
    /// The copy's size in bytes.
    pub database_bytes: u64,
    /// The copy's schema version (`PRAGMA user_version`).
    pub schema_version: usize,
    /// Payments in the copy.
    pub payments: u64,
    /// The other files copied, relative to the data directory, in name order (a link to
    /// a file is copied as the file).
    pub files: Vec<PathBuf>,
    /// What was left: links to directories or to nothing, in name order.
    pub skipped: Vec<PathBuf>,
}

/// The database's name in the backup until it is checked and on disk.
pub(crate) const PARTIAL: &str = "mkoba.db.partial";

/// How long the copy's read waits for the writer of another process (a server's start
/// migrating the database) before it gives up.
const BUSY_WAIT_MS: u32 = 10_000;

/// Copies the data directory `data_dir` into `to`, a directory that does not exist yet (or
/// is empty) outside it.
pub fn backup(data_dir: &Path, to: &Path) -> Result<BackupReport, StoreError> {
    let source = data_dir.join(DB_FILE);
    if !source.is_file() {
        return Err(StoreError(format!(
            "no Mkoba database in {} (no {DB_FILE}): point --data at the server's data directory",
            data_dir.display()
        )));
    }
    if let Ok(mut entries) = std::fs::read_dir(to)
        && entries.next().is_some()
    {
        return Err(StoreError(format!(
            "{} already exists and is not empty: back up into a new directory",
            to.display()
        )));
    }
    if to.exists() && !to.is_dir() {
        return Err(StoreError(format!(
            "{} already exists and is not a directory: back up into a new directory",
            to.display()
        )));
    }
    // The directories the backup makes (`to` and any parent missing), deepest first: a
    // refused or failed backup takes them away again.
    let made: Vec<PathBuf> = to
        .ancestors()
        .take_while(|d| !d.as_os_str().is_empty() && !d.exists())
        .map(Path::to_path_buf)
        .collect();
    let created = !made.is_empty();
    create_private_dir(to)?;
    if canonical(to)?.starts_with(canonical(data_dir)?) {
        remove_empty(&made);
        return Err(StoreError(format!(
            "{} is inside the data directory {}: back up to a directory outside it",
            to.display(),
            data_dir.display()
        )));
    }

    // The database takes its name last: a directory with a `mkoba.db` holds the whole copy.
    let partial = to.join(PARTIAL);
    let (mut files, mut skipped) = (Vec::new(), Vec::new());
    let result = copy_database(&source, &partial).and_then(|database| {
        copy_files(data_dir, to, Path::new(""), &mut files, &mut skipped)?;
        std::fs::rename(&partial, to.join(DB_FILE)).map_err(|e| io(&partial, e))?;
        sync_dir(to)?;
        Ok(database)
    });
    let (database_bytes, schema_version, payments) = match result {
        Ok(r) => r,
        Err(e) => {
            empty_again(to, created);
            remove_empty(&made);
            return Err(e);
        }
    };
    files.sort();
    skipped.sort();
    Ok(BackupReport {
        database_bytes,
        schema_version,
        payments,
        files,
        skipped,
    })
}

/// After a failed backup: the directory as it was, empty (or gone, when the backup made
/// it), so that a retry into it is taken (a full target left `mkoba.db.partial-journal`
/// behind, and the retry refused the directory as not empty).
/// Removes the directories of `made` (deepest first) that are empty.
fn remove_empty(made: &[PathBuf]) {
    for dir in made {
        let _ = std::fs::remove_dir(dir);
    }
}

fn empty_again(to: &Path, created: bool) {
    if created {
        let _ = std::fs::remove_dir_all(to);
    } else if let Ok(entries) = std::fs::read_dir(to) {
        for entry in entries.flatten() {
            let path = entry.path();
            let _ = if path.is_dir() {
                std::fs::remove_dir_all(&path)
            } else {
                std::fs::remove_file(&path)
            };
        }
    }
}

/// `VACUUM INTO` `partial` (owner-only, made first since SQLite takes the mode the process
/// gives), then the copy checked, counted and synced: `(bytes, schema version, payments)`.
fn copy_database(source: &Path, partial: &Path) -> Result<(u64, usize, u64), StoreError> {
    private_file(partial)?;
    // Read-write, never create: opening a database in WAL mode reads its shared-memory
    // index, which a connection of its own may have to make.
    let conn = Connection::open_with_flags(
        source,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .map_err(|e| StoreError(format!("cannot open {}: {e}", source.display())))?;
    conn.busy_timeout(std::time::Duration::from_millis(BUSY_WAIT_MS.into()))
        .map_err(crate::err)?;
    let into = partial.to_str().ok_or_else(|| {
        StoreError(format!(
            "{} is not a UTF-8 path, which SQLite cannot be given",
            partial.display()
        ))
    })?;
    conn.execute("VACUUM INTO ?1", [into])
        .map_err(|e| StoreError(format!("copying {}: {e}", source.display())))?;
    drop(conn);

    let copy = Connection::open_with_flags(partial, OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(|e| StoreError(format!("cannot open the copy {}: {e}", partial.display())))?;
    let check: String = copy
        .query_row("PRAGMA quick_check", [], |r| r.get(0))
        .map_err(crate::err)?;
    if check != "ok" {
        return Err(StoreError(format!(
            "the copy {} does not pass SQLite's check ({check}); the data directory's database may need one too (sqlite3 {} 'PRAGMA integrity_check')",
            partial.display(),
            source.display()
        )));
    }
    let version: usize = copy
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .map_err(crate::err)?;
    let payments: i64 = copy
        .query_row("SELECT COUNT(*) FROM payments", [], |r| r.get(0))
        .map_err(crate::err)?;
    drop(copy);
    let file = std::fs::File::open(partial).map_err(|e| io(partial, e))?;
    file.sync_all().map_err(|e| io(partial, e))?;
    let bytes = file.metadata().map_err(|e| io(partial, e))?.len();
    Ok((bytes, version, payments.max(0) as u64))
}

/// Copies what is in `from`/`rel` but the database and its WAL and lock files into
/// `to`/`rel`, each file synced (a link to a file as the file; a link to a directory is not
/// followed), and lists what it copied and what it left.
fn copy_files(
    from: &Path,
    to: &Path,
    rel: &Path,
    copied: &mut Vec<PathBuf>,
    skipped: &mut Vec<PathBuf>,
) -> Result<(), StoreError> {
    let dir = from.join(rel);
    let entries = std::fs::read_dir(&dir).map_err(|e| io(&dir, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| io(&dir, e))?;
        let name = entry.file_name();
        let path = entry.path();
        let inner = rel.join(&name);
        if rel.as_os_str().is_empty() && is_database_file(&name) {
            continue;
        }
        let kind = entry.file_type().map_err(|e| io(&path, e))?;
        if kind.is_dir() {
            create_private_dir(&to.join(&inner))?;
            copy_files(from, to, &inner, copied, skipped)?;
            sync_dir(&to.join(&inner))?;
        } else if kind.is_symlink() && !path.is_file() {
            skipped.push(inner);
        } else if kind.is_file() || kind.is_symlink() {
            let target = to.join(&inner);
            std::fs::copy(&path, &target).map_err(|e| io(&path, e))?;
            std::fs::File::open(&target)
                .and_then(|f| f.sync_all())
                .map_err(|e| io(&target, e))?;
            copied.push(inner);
        }
    }
    Ok(())
}

/// The database's own files in the data directory, which the copy replaces: the database,
/// its WAL, shared-memory index and rollback journal, and the server's lock file.
fn is_database_file(name: &std::ffi::OsStr) -> bool {
    let Some(name) = name.to_str() else {
        return false;
    };
    name == LOCK_FILE
        || name
            .strip_prefix(DB_FILE)
            .is_some_and(|rest| matches!(rest, "" | "-wal" | "-shm" | "-journal"))
}

fn private_file(path: &Path) -> Result<(), StoreError> {
    let mut open = std::fs::OpenOptions::new();
    open.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path).map(drop).map_err(|e| io(path, e))
}

fn sync_dir(dir: &Path) -> Result<(), StoreError> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| io(dir, e))
}

fn canonical(path: &Path) -> Result<PathBuf, StoreError> {
    path.canonicalize().map_err(|e| io(path, e))
}

fn io(path: &Path, e: std::io::Error) -> StoreError {
    StoreError(format!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_database_and_lock_files_are_not_copied_as_files() {
        for name in [
            "mkoba.db",
            "mkoba.db-wal",
            "mkoba.db-shm",
            "mkoba.db-journal",
            "serve.lock",
        ] {
            assert!(is_database_file(name.as_ref()), "{name}");
        }
        for name in [
            "mpesa-private-key.pem",
            "mpesa-public-key.txt",
            "tls",
            "mkoba.db.old",
        ] {
            assert!(!is_database_file(name.as_ref()), "{name}");
        }
    }

    #[test]
    fn a_failed_backup_leaves_its_directory_as_it_found_it() {
        let dir = tempfile::tempdir().unwrap();
        let leave = |created: bool| {
            let to = dir.path().join(format!("to-{created}"));
            std::fs::create_dir(&to).unwrap();
            std::fs::write(to.join(PARTIAL), "half").unwrap();
            std::fs::write(to.join("mkoba.db.partial-journal"), "journal").unwrap();
            std::fs::create_dir(to.join("tls")).unwrap();
            std::fs::write(to.join("tls").join("ca.pem"), "ca").unwrap();
            empty_again(&to, created);
            to
        };
        assert!(!leave(true).exists(), "made by the backup: gone");
        let kept = leave(false);
        assert_eq!(std::fs::read_dir(&kept).unwrap().count(), 0, "empty again");
        // A retry into it is taken.
        let data = dir.path().join("data");
        drop(crate::open(&data).unwrap());
        backup(&data, &kept).unwrap();
    }

    #[test]
    fn a_backup_is_a_data_directory_a_store_opens() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        drop(crate::open(&data).unwrap());
        std::fs::write(data.join("mpesa-private-key.pem"), "key").unwrap();
        std::fs::create_dir(data.join("tls")).unwrap();
        std::fs::write(data.join("tls").join("ca.pem"), "ca").unwrap();
        #[cfg(unix)]
        {
            let elsewhere = dir.path().join("elsewhere");
            std::fs::create_dir(&elsewhere).unwrap();
            std::fs::write(elsewhere.join("key.pem"), "linked").unwrap();
            std::os::unix::fs::symlink(elsewhere.join("key.pem"), data.join("linked.pem")).unwrap();
            std::os::unix::fs::symlink(&elsewhere, data.join("linked-dir")).unwrap();
        }
        // Rows still only in the WAL (a server's connection open, no checkpoint yet): a
        // copy of the file alone would not have them.
        let server = Connection::open(data.join(DB_FILE)).unwrap();
        server
            .execute_batch(
                "PRAGMA wal_autocheckpoint = 0; CREATE TABLE scratch (x INTEGER);
                 INSERT INTO scratch VALUES (1), (2), (3);",
            )
            .unwrap();
        assert!(std::fs::metadata(data.join("mkoba.db-wal")).unwrap().len() > 0);

        let to = dir.path().join("copy");
        let report = backup(&data, &to).unwrap();
        assert_eq!(report.schema_version, crate::SCHEMA_VERSION);
        assert_eq!(report.payments, 0);
        assert!(report.database_bytes > 0);
        #[cfg(unix)]
        {
            assert_eq!(
                report.files,
                [
                    PathBuf::from("linked.pem"),
                    PathBuf::from("mpesa-private-key.pem"),
                    PathBuf::from("tls/ca.pem")
                ]
            );
            assert_eq!(report.skipped, [PathBuf::from("linked-dir")]);
            assert_eq!(std::fs::read(to.join("linked.pem")).unwrap(), b"linked");
            assert!(
                !std::fs::symlink_metadata(to.join("linked.pem"))
                    .unwrap()
                    .is_symlink()
            );
        }
        assert!(!to.join(PARTIAL).exists());
        assert!(!to.join(LOCK_FILE).exists());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode(&to.join(DB_FILE)), 0o600);
            assert_eq!(mode(&to), 0o700);
        }
        let rows: i64 = Connection::open(to.join(DB_FILE))
            .unwrap()
            .query_row("SELECT COUNT(*) FROM scratch", [], |r| r.get(0))
            .unwrap();
        assert_eq!(rows, 3);
        drop(crate::open(&to).unwrap());
        drop(server);

        // Not over a backup, not inside the data directory, not from nowhere.
        let again = backup(&data, &to).unwrap_err().0;
        assert!(again.contains("is not empty"), "{again}");
        let inside = backup(&data, &data.join("b")).unwrap_err().0;
        assert!(inside.contains("inside the data directory"), "{inside}");
        assert!(!data.join("b").exists());
        // Nor the parents it made on the way (they stayed in the data directory).
        let deep = backup(&data, &data.join("a").join("b")).unwrap_err().0;
        assert!(deep.contains("inside the data directory"), "{deep}");
        assert!(!data.join("a").exists());
        let nowhere = backup(&dir.path().join("none"), &dir.path().join("c"))
            .unwrap_err()
            .0;
        assert!(nowhere.contains("no Mkoba database"), "{nowhere}");
    }
}
