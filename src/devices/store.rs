//! Crash-safe persistence of devices, globals and the per-profile run journal in SQLite
//! (WAL, `synchronous=FULL`). One writer thread owns the connection and group-commits: every
//! write reaches disk in a transaction within the commit window, and a flush request commits at
//! once and answers when the data is durable.

use std::path::Path;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rusqlite::{params, Connection, OptionalExtension};

use super::{Device, DeviceKey, Global, StoreError};

const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS devices (
    ref        INTEGER PRIMARY KEY,
    profile    TEXT NOT NULL,
    root       TEXT NOT NULL,
    feature    TEXT NOT NULL DEFAULT '',
    value      REAL NOT NULL DEFAULT 0,
    string     TEXT NOT NULL DEFAULT '',
    changed_at INTEGER NOT NULL,
    UNIQUE (profile, root, feature)
);
CREATE TABLE IF NOT EXISTS globals (
    name       TEXT PRIMARY KEY,
    value      REAL NOT NULL DEFAULT 0,
    string     TEXT NOT NULL DEFAULT '',
    changed_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS meta (
    key   TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    profile  TEXT NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS journal_by_profile ON journal (profile, id);
";

pub(crate) enum WriteOp {
    Device(Device),
    Global(Global),
    NextRef(u64),
    Journal {
        profile: String,
        record: String,
        keep: usize,
    },
    Flush(tokio::sync::oneshot::Sender<Result<(), String>>),
}

pub(crate) struct Loaded {
    pub devices: Vec<Device>,
    pub globals: Vec<Global>,
    pub next_ref: u64,
}

fn sql_error(path: &Path) -> impl Fn(rusqlite::Error) -> StoreError + '_ {
    move |source| StoreError::Sqlite {
        path: path.display().to_string(),
        message: source.to_string(),
    }
}

/// Takes the store's lock file (`<store>.lock`) so that a second writer fails instead of
/// handing out the same references.
pub(crate) fn lock(path: &Path) -> Result<std::fs::File, StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.display().to_string(),
            message: source.to_string(),
        })?;
    }
    let lock_path = path.with_extension("lock");
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|source| StoreError::Io {
            path: lock_path.display().to_string(),
            message: source.to_string(),
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::Busy {
            path: path.display().to_string(),
        }),
        Err(std::fs::TryLockError::Error(source)) => Err(StoreError::Io {
            path: lock_path.display().to_string(),
            message: source.to_string(),
        }),
    }
}

pub(crate) fn open(path: &Path) -> Result<(Connection, Loaded), StoreError> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|source| StoreError::Io {
            path: parent.display().to_string(),
            message: source.to_string(),
        })?;
    }
    let error = sql_error(path);
    let connection = Connection::open(path).map_err(&error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(&error)?;
    connection
        .execute_batch("PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;")
        .map_err(&error)?;
    connection.execute_batch(SCHEMA).map_err(&error)?;
    let devices = {
        let mut statement = connection
            .prepare("SELECT ref, profile, root, feature, value, string, changed_at FROM devices ORDER BY ref")
            .map_err(&error)?;
        let rows = statement
            .query_map([], |row| {
                let feature: String = row.get(3)?;
                Ok(Device {
                    reference: row.get::<_, i64>(0)? as u64,
                    key: DeviceKey {
                        profile: row.get(1)?,
                        root: row.get(2)?,
                        feature: (!feature.is_empty()).then_some(feature),
                    },
                    value: row.get(4)?,
                    string: row.get(5)?,
                    changed_at_ms: row.get(6)?,
                })
            })
            .map_err(&error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&error)?
    };
    let globals = {
        let mut statement = connection
            .prepare("SELECT name, value, string, changed_at FROM globals ORDER BY name")
            .map_err(&error)?;
        let rows = statement
            .query_map([], |row| {
                Ok(Global {
                    name: row.get(0)?,
                    value: row.get(1)?,
                    string: row.get(2)?,
                    changed_at_ms: row.get(3)?,
                })
            })
            .map_err(&error)?;
        rows.collect::<Result<Vec<_>, _>>().map_err(&error)?
    };
    let stored_next: Option<i64> = connection
        .query_row("SELECT value FROM meta WHERE key = 'next_ref'", [], |row| {
            row.get(0)
        })
        .optional()
        .map_err(&error)?;
    let highest = devices.iter().map(|d| d.reference).max().unwrap_or(0);
    let next_ref = (stored_next.unwrap_or(1).max(1) as u64).max(highest + 1);
    Ok((
        connection,
        Loaded {
            devices,
            globals,
            next_ref,
        },
    ))
}

/// Reads the newest journal records of a profile (or of all profiles), newest first.
pub(crate) fn read_journal(
    path: &Path,
    profile: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let error = sql_error(path);
    let connection = Connection::open(path).map_err(&error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(&error)?;
    let mut statement = connection
        .prepare(
            "SELECT record FROM journal WHERE (?1 IS NULL OR profile = ?1) ORDER BY id DESC LIMIT ?2",
        )
        .map_err(&error)?;
    let rows = statement
        .query_map(params![profile, limit as i64], |row| {
            row.get::<_, String>(0)
        })
        .map_err(&error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&error)
}

pub(crate) struct Writer {
    pub sender: Sender<WriteOp>,
    pub thread: Option<JoinHandle<()>>,
}

pub(crate) fn spawn_writer(connection: Connection, window: Duration) -> Writer {
    let (sender, receiver) = mpsc::channel();
    let thread = std::thread::Builder::new()
        .name("bellhop-store".into())
        .spawn(move || writer_loop(connection, receiver, window))
        .ok();
    Writer { sender, thread }
}

fn writer_loop(mut connection: Connection, receiver: Receiver<WriteOp>, window: Duration) {
    let mut pending: Vec<WriteOp> = Vec::new();
    let mut waiting: Vec<tokio::sync::oneshot::Sender<Result<(), String>>> = Vec::new();
    let mut deadline: Option<Instant> = None;
    loop {
        let received = match deadline {
            None => receiver.recv().map_err(|_| RecvTimeoutError::Disconnected),
            Some(at) => receiver.recv_timeout(at.saturating_duration_since(Instant::now())),
        };
        let disconnected = match received {
            Ok(WriteOp::Flush(reply)) => {
                waiting.push(reply);
                false
            }
            Ok(op) => {
                pending.push(op);
                deadline.get_or_insert_with(|| Instant::now() + window);
                continue;
            }
            Err(RecvTimeoutError::Timeout) => false,
            Err(RecvTimeoutError::Disconnected) => true,
        };
        let outcome = commit(&mut connection, std::mem::take(&mut pending));
        if let Err(message) = &outcome {
            tracing::error!(error = %message, "device store commit failed");
        }
        for reply in waiting.drain(..) {
            let _ = reply.send(outcome.clone());
        }
        deadline = None;
        if disconnected {
            break;
        }
    }
}

fn commit(connection: &mut Connection, ops: Vec<WriteOp>) -> Result<(), String> {
    if ops.is_empty() {
        return Ok(());
    }
    let transaction = connection.transaction().map_err(|e| e.to_string())?;
    let mut journaled: std::collections::HashMap<String, usize> = Default::default();
    for op in ops {
        let result = match op {
            WriteOp::Device(device) => transaction.execute(
                "INSERT INTO devices (ref, profile, root, feature, value, string, changed_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
                 ON CONFLICT (ref) DO UPDATE SET value = excluded.value, string = excluded.string,
                                                 changed_at = excluded.changed_at",
                params![
                    device.reference as i64,
                    device.key.profile,
                    device.key.root,
                    device.key.feature.as_deref().unwrap_or(""),
                    device.value,
                    device.string,
                    device.changed_at_ms
                ],
            ),
            WriteOp::Global(global) => transaction.execute(
                "INSERT INTO globals (name, value, string, changed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, string = excluded.string,
                                                  changed_at = excluded.changed_at",
                params![
                    global.name,
                    global.value,
                    global.string,
                    global.changed_at_ms
                ],
            ),
            WriteOp::NextRef(next) => transaction.execute(
                "INSERT INTO meta (key, value) VALUES ('next_ref', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
                params![next as i64],
            ),
            WriteOp::Journal {
                profile,
                record,
                keep,
            } => {
                let result = transaction.execute(
                    "INSERT INTO journal (profile, record) VALUES (?1, ?2)",
                    params![profile, record],
                );
                journaled.insert(profile, keep);
                result
            }
            WriteOp::Flush(_) => Ok(0),
        };
        result.map_err(|e| e.to_string())?;
    }
    // Keep the newest `keep` records of each profile written to in this batch.
    for (profile, keep) in journaled {
        transaction
            .execute(
                "DELETE FROM journal WHERE profile = ?1 AND id <= (
                     SELECT id FROM journal WHERE profile = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)",
                params![profile, keep as i64],
            )
            .map_err(|e| e.to_string())?;
    }
    transaction.commit().map_err(|e| e.to_string())
}
