//! Crash-safe persistence of devices, globals and the per-profile run journal in SQLite
//! (WAL, `synchronous=FULL`). One writer thread owns the connection and group-commits: every
//! write reaches disk in a transaction within the commit window, and a flush request commits at
//! once and answers when the data is durable.

use crate::sync::Locked;
use std::collections::{HashMap, VecDeque};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex};
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
CREATE TABLE IF NOT EXISTS event_journal (
    id       INTEGER PRIMARY KEY AUTOINCREMENT,
    event    TEXT NOT NULL,
    record   TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS event_journal_by_event ON event_journal (event, id);
CREATE TABLE IF NOT EXISTS device_history (
    id     INTEGER PRIMARY KEY,
    ref    INTEGER NOT NULL,
    at     INTEGER NOT NULL,
    value  REAL NOT NULL,
    string TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS device_history_by_ref ON device_history (ref, id);
CREATE INDEX IF NOT EXISTS device_history_by_time ON device_history (at);
CREATE TABLE IF NOT EXISTS global_history (
    id     INTEGER PRIMARY KEY,
    name   TEXT NOT NULL,
    at     INTEGER NOT NULL,
    value  REAL NOT NULL,
    string TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS global_history_by_name ON global_history (name, id);
CREATE INDEX IF NOT EXISTS global_history_by_time ON global_history (at);
";

/// How much device history the store keeps: changes younger than `max_age`, and at most
/// `max_rows` of them (the oldest go first). `max_age` zero: no history is written.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryRetention {
    pub max_age: Duration,
    pub max_rows: u64,
}

impl Default for HistoryRetention {
    fn default() -> HistoryRetention {
        HistoryRetention {
            max_age: Duration::from_secs(7 * 24 * 3600),
            max_rows: 1_000_000,
        }
    }
}

/// How often the writer prunes history beyond its retention.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

/// One state a device had: its value and string from `at_ms` on.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct HistoryPoint {
    pub at_ms: i64,
    pub value: f64,
    pub string: String,
}

pub(crate) enum WriteOp {
    Device(Device),
    /// A device deleted (with its history).
    Remove(u64),
    Global(Global),
    NextRef(u64),
    /// `render` runs on the writer thread, off the caller's path.
    Journal {
        book: Book,
        name: String,
        render: Box<dyn FnOnce() -> Option<String> + Send>,
        keep: usize,
    },
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
        // The devices of a profile share one copy of its name.
        let mut profiles: HashMap<String, Arc<str>> = HashMap::new();
        let rows = statement
            .query_map([], |row| {
                let profile: String = row.get(1)?;
                let root: String = row.get(2)?;
                let feature: String = row.get(3)?;
                let profile = match profiles.get(&profile) {
                    Some(shared) => shared.clone(),
                    None => {
                        let shared: Arc<str> = Arc::from(profile.as_str());
                        profiles.insert(profile, shared.clone());
                        shared
                    }
                };
                Ok(Device {
                    reference: row.get::<_, i64>(0)? as u64,
                    key: DeviceKey {
                        profile,
                        root: root.into(),
                        feature: (!feature.is_empty()).then(|| feature.into()),
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
    // Memory holds every device now: the pages the load read need not stay cached as well.
    connection
        .execute_batch("PRAGMA shrink_memory;")
        .map_err(&error)?;
    Ok((
        connection,
        Loaded {
            devices,
            globals,
            next_ref,
        },
    ))
}

/// Whose history: a device's (by reference) or a global's (by name).
#[derive(Debug, Clone, Copy)]
pub enum HistoryOf<'a> {
    Device(u64),
    Global(&'a str),
}

/// The history tables: devices' and globals' (each kept by the same retention).
const HISTORY_TABLES: [&str; 2] = ["device_history", "global_history"];

/// Drops the history older than the retention's age, then the oldest rows beyond its count
/// (in each history table).
pub(crate) fn prune_history(
    connection: &Connection,
    retention: &HistoryRetention,
) -> rusqlite::Result<()> {
    let max_age_ms = i64::try_from(retention.max_age.as_millis()).unwrap_or(i64::MAX);
    let oldest_kept = chrono::Utc::now()
        .timestamp_millis()
        .saturating_sub(max_age_ms);
    for table in HISTORY_TABLES {
        connection.execute(
            &format!("DELETE FROM {table} WHERE at < ?1"),
            params![oldest_kept],
        )?;
        connection.execute(
            &format!(
                "DELETE FROM {table} WHERE id <= (
                     SELECT id FROM {table} ORDER BY id DESC LIMIT 1 OFFSET ?1)"
            ),
            params![i64::try_from(retention.max_rows).unwrap_or(i64::MAX)],
        )?;
    }
    Ok(())
}

/// A device's or a global's history from `since_ms` on, oldest first: the newest `limit`
/// changes.
pub(crate) fn read_history(
    path: &Path,
    of: HistoryOf<'_>,
    since_ms: i64,
    limit: usize,
) -> Result<Vec<HistoryPoint>, StoreError> {
    let error = sql_error(path);
    let connection = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
        .map_err(&error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(&error)?;
    let (table, column, subject): (&str, &str, rusqlite::types::Value) = match of {
        HistoryOf::Device(reference) => ("device_history", "ref", (reference as i64).into()),
        HistoryOf::Global(name) => ("global_history", "name", name.to_string().into()),
    };
    let mut statement = connection
        .prepare(&format!(
            "SELECT at, value, string FROM {table} WHERE {column} = ?1 AND at >= ?2
             ORDER BY id DESC LIMIT ?3"
        ))
        .map_err(&error)?;
    let rows = statement
        .query_map(params![subject, since_ms, limit as i64], |row| {
            Ok(HistoryPoint {
                at_ms: row.get(0)?,
                value: row.get(1)?,
                string: row.get(2)?,
            })
        })
        .map_err(&error)?;
    let mut points = rows.collect::<Result<Vec<_>, _>>().map_err(&error)?;
    points.reverse();
    Ok(points)
}

/// Which journal a record goes to: profile runs, or event runs. Each keeps the newest records
/// of each name, with the same bounds the in-memory histories have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Book {
    Runs,
    EventRuns,
}

impl Book {
    /// The table and its name column (fixed texts, never input).
    fn table(self) -> (&'static str, &'static str) {
        match self {
            Book::Runs => ("journal", "profile"),
            Book::EventRuns => ("event_journal", "event"),
        }
    }
}

/// Reads the newest journal records of a name (or of all names), newest first.
pub(crate) fn read_journal(
    path: &Path,
    book: Book,
    name: Option<&str>,
    limit: usize,
) -> Result<Vec<String>, StoreError> {
    let (table, column) = book.table();
    let error = sql_error(path);
    let connection = Connection::open(path).map_err(&error)?;
    connection
        .busy_timeout(Duration::from_secs(5))
        .map_err(&error)?;
    let mut statement = connection
        .prepare(&format!(
            "SELECT record FROM {table} WHERE (?1 IS NULL OR {column} = ?1) ORDER BY id DESC LIMIT ?2"
        ))
        .map_err(&error)?;
    let rows = statement
        .query_map(params![name, limit as i64], |row| row.get::<_, String>(0))
        .map_err(&error)?;
    rows.collect::<Result<Vec<_>, _>>().map_err(&error)
}

/// Most run records waiting for the writer; past that the oldest waiting record is dropped (and
/// counted), so a failing disk cannot grow memory without bound. Device and global writes need
/// no such cap: they coalesce, one pending write per device or global.
const MAX_QUEUED_JOURNAL: usize = 10_000;

/// What the writer has not committed yet. Device and global writes carry the whole new state,
/// so a newer write of the same device replaces an older one still waiting: the store always
/// ends at the state memory has, whatever order the batch is written in (one transaction).
#[derive(Default)]
struct Batch {
    devices: HashMap<u64, Device>,
    removed: std::collections::HashSet<u64>,
    globals: HashMap<String, Global>,
    next_ref: Option<u64>,
    journal: VecDeque<(Book, String, String, usize)>,
}

impl Batch {
    fn is_empty(&self) -> bool {
        self.devices.is_empty()
            && self.removed.is_empty()
            && self.globals.is_empty()
            && self.next_ref.is_none()
            && self.journal.is_empty()
    }

    fn len(&self) -> usize {
        self.devices.len() + self.removed.len() + self.globals.len() + self.journal.len()
    }

    /// Puts a failed batch back under what was queued since (the newer writes win).
    fn merge_older(&mut self, older: Batch) {
        for (reference, device) in older.devices {
            if !self.removed.contains(&reference) {
                self.devices.entry(reference).or_insert(device);
            }
        }
        self.removed.extend(older.removed);
        for (name, global) in older.globals {
            self.globals.entry(name).or_insert(global);
        }
        self.next_ref = self.next_ref.max(older.next_ref);
        let mut journal = older.journal;
        journal.extend(self.journal.drain(..));
        self.journal = journal;
    }
}

/// The queue between callers and the writer thread. Callers append under a short lock and wake
/// the writer only when the queue goes from empty to non-empty, so a burst of writes costs one
/// wake-up per commit window instead of one per write.
#[derive(Default)]
struct Queue {
    batch: Batch,
    /// Run records still to be rendered (on the writer thread, off the callers' path).
    unrendered: Vec<WriteOp>,
    waiters: Vec<tokio::sync::oneshot::Sender<Result<(), StoreError>>>,
    closed: bool,
    health: StoreHealth,
    retention: HistoryRetention,
}

/// Whether the writer keeps up: the last commit's failure, if the store is failing now.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct StoreHealth {
    /// The error of the last failed commit, while commits fail.
    pub failing: Option<String>,
    /// Failed commits in a row.
    pub failed_commits: u64,
    /// Writes waiting to be committed.
    pub pending: usize,
    /// Run records dropped because too many waited while the store was failing.
    pub dropped_records: u64,
}

pub(crate) struct Writer {
    shared: Arc<(Mutex<Queue>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    fn queue(&self) -> std::sync::MutexGuard<'_, Queue> {
        self.shared.0.locked()
    }

    pub fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(StoreError::Closed);
        }
        let was_idle =
            queue.batch.is_empty() && queue.unrendered.is_empty() && queue.waiters.is_empty();
        match op {
            WriteOp::Device(device) => {
                queue.batch.devices.insert(device.reference, device);
            }
            WriteOp::Remove(reference) => {
                queue.batch.devices.remove(&reference);
                queue.batch.removed.insert(reference);
            }
            WriteOp::Global(global) => {
                queue.batch.globals.insert(global.name.clone(), global);
            }
            WriteOp::NextRef(next) => queue.batch.next_ref = queue.batch.next_ref.max(Some(next)),
            journal @ WriteOp::Journal { .. } => {
                if queue.unrendered.len() + queue.batch.journal.len() >= MAX_QUEUED_JOURNAL {
                    if queue.batch.journal.pop_front().is_none() && !queue.unrendered.is_empty() {
                        queue.unrendered.remove(0);
                    }
                    queue.health.dropped_records += 1;
                }
                queue.unrendered.push(journal);
            }
        }
        drop(queue);
        if was_idle {
            self.shared.1.notify_one();
        }
        Ok(())
    }

    /// Writes waiting for the writer.
    pub fn backlog(&self) -> usize {
        let queue = self.queue();
        queue.batch.len() + queue.unrendered.len()
    }

    pub fn health(&self) -> StoreHealth {
        let queue = self.queue();
        StoreHealth {
            pending: queue.batch.len() + queue.unrendered.len(),
            ..queue.health.clone()
        }
    }

    pub fn flush(
        &self,
        reply: tokio::sync::oneshot::Sender<Result<(), StoreError>>,
    ) -> Result<(), StoreError> {
        let mut queue = self.queue();
        if queue.closed {
            return Err(StoreError::Closed);
        }
        queue.waiters.push(reply);
        drop(queue);
        self.shared.1.notify_one();
        Ok(())
    }

    pub fn set_retention(&self, retention: HistoryRetention) {
        self.queue().retention = retention;
    }

    /// Commits what is queued and stops the thread.
    pub fn close(mut self) {
        self.queue().closed = true;
        self.shared.1.notify_one();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

pub(crate) fn spawn_writer(connection: Connection, window: Duration) -> Writer {
    let shared: Arc<(Mutex<Queue>, Condvar)> = Arc::default();
    let for_thread = shared.clone();
    let thread = std::thread::Builder::new()
        .name("bellhop-store".into())
        .spawn(move || writer_loop(connection, &for_thread, window))
        .ok();
    Writer { shared, thread }
}

/// The pause before retrying a failed commit: doubling from 100 ms up to 10 s.
fn retry_pause(failures: u64) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << failures.min(7))).min(Duration::from_secs(10))
}

fn writer_loop(mut connection: Connection, shared: &(Mutex<Queue>, Condvar), window: Duration) {
    let (lock, wake) = shared;
    let mut pruned_at: Option<Instant> = None;
    loop {
        let mut queue = lock.locked();
        let idle =
            |q: &Queue| q.batch.is_empty() && q.unrendered.is_empty() && q.waiters.is_empty();
        while idle(&queue) && !queue.closed {
            queue = wake.wait(queue).unwrap_or_else(|p| p.into_inner());
        }
        // Gather a window's worth of writes (longer after failures), unless someone waits for a
        // flush or we are closing.
        let pause = if queue.health.failed_commits > 0 {
            retry_pause(queue.health.failed_commits)
        } else {
            window
        };
        let deadline = Instant::now() + pause;
        while (queue.waiters.is_empty() || queue.health.failed_commits > 0) && !queue.closed {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            queue = wake
                .wait_timeout(queue, left)
                .map(|(q, _)| q)
                .unwrap_or_else(|p| p.into_inner().0);
        }
        let mut batch = std::mem::take(&mut queue.batch);
        let unrendered = std::mem::take(&mut queue.unrendered);
        let waiters = std::mem::take(&mut queue.waiters);
        let closing = queue.closed;
        let retention = queue.retention;
        drop(queue);
        render_kept(unrendered, &mut batch.journal);
        let outcome = commit(&mut connection, &batch, &retention)
            .map_err(|e| StoreError::Commit(e.to_string()));
        if outcome.is_ok() && pruned_at.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            pruned_at = Some(Instant::now());
            if let Err(error) = prune_history(&connection, &retention) {
                tracing::warn!(error = %error, "device history could not be pruned");
            }
        }
        let mut queue = lock.locked();
        match &outcome {
            Ok(()) => {
                if queue.health.failed_commits > 0 {
                    tracing::info!(
                        after = queue.health.failed_commits,
                        "device store commits again"
                    );
                }
                queue.health.failing = None;
                queue.health.failed_commits = 0;
            }
            Err(error) => {
                // What SQLite said, as the health API shows it.
                let message = match error {
                    StoreError::Commit(message) => message.clone(),
                    other => other.to_string(),
                };
                queue.health.failed_commits += 1;
                queue.health.failing = Some(message.clone());
                tracing::error!(error = %message, attempt = queue.health.failed_commits, pending = batch.len(), "device store commit failed; retrying");
                // Nothing is dropped: the batch waits under newer writes for the next try.
                queue.batch.merge_older(batch);
            }
        }
        let stop = closing && (outcome.is_ok() || queue.health.failed_commits >= 5);
        drop(queue);
        for reply in waiters {
            let _ = reply.send(outcome.clone());
        }
        if stop {
            let queue = lock.locked();
            if idle(&queue) || queue.health.failed_commits >= 5 {
                return;
            }
        }
    }
}

/// Renders the waiting run records the commit keeps, onto `journal`: of each name only its newest
/// `keep` (the commit would delete older ones of the same batch at once; at thousands of runs a
/// second most of a batch is such, and rendering is most of a record's cost).
fn render_kept(unrendered: Vec<WriteOp>, journal: &mut VecDeque<(Book, String, String, usize)>) {
    let mut seen: HashMap<(Book, &str), usize> = HashMap::new();
    let kept: Vec<bool> = unrendered
        .iter()
        .rev()
        .map(|op| match op {
            WriteOp::Journal {
                book, name, keep, ..
            } => {
                let count = seen.entry((*book, name.as_str())).or_insert(0);
                *count += 1;
                *count <= *keep
            }
            _ => false,
        })
        .collect();
    for (op, kept) in unrendered.into_iter().zip(kept.into_iter().rev()) {
        if let (
            WriteOp::Journal {
                book,
                name,
                render,
                keep,
            },
            true,
        ) = (op, kept)
        {
            if let Some(record) = render() {
                journal.push_back((book, name, record, keep));
            }
        }
    }
}

/// Which records of `journal` (oldest first) are among the newest `keep` of their name.
fn newest_of_each(journal: &VecDeque<(Book, String, String, usize)>) -> Vec<bool> {
    let mut seen: HashMap<(Book, &str), usize> = HashMap::new();
    let mut kept: Vec<bool> = journal
        .iter()
        .rev()
        .map(|(book, name, _, keep)| {
            let count = seen.entry((*book, name.as_str())).or_insert(0);
            *count += 1;
            *count <= *keep
        })
        .collect();
    kept.reverse();
    kept
}

fn commit(
    connection: &mut Connection,
    batch: &Batch,
    retention: &HistoryRetention,
) -> rusqlite::Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let transaction = connection.transaction()?;
    // Deletions first: a device deleted and then created again under its name (a new
    // reference) must not meet its old row.
    for reference in &batch.removed {
        for table in ["devices", "device_history"] {
            transaction.execute(
                &format!("DELETE FROM {table} WHERE ref = ?1"),
                params![*reference as i64],
            )?;
        }
    }
    if !retention.max_age.is_zero() {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO device_history (ref, at, value, string) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for device in batch.devices.values() {
            insert.execute(params![
                device.reference as i64,
                device.changed_at_ms,
                device.value,
                device.string
            ])?;
        }
    }
    // One statement prepared for every device of the batch (a window holds thousands).
    let mut upsert = transaction.prepare_cached(
        "INSERT INTO devices (ref, profile, root, feature, value, string, changed_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (ref) DO UPDATE SET value = excluded.value, string = excluded.string,
                                             changed_at = excluded.changed_at",
    )?;
    for device in batch.devices.values() {
        upsert.execute(params![
            device.reference as i64,
            &*device.key.profile,
            &*device.key.root,
            device.key.feature.as_deref().unwrap_or(""),
            device.value,
            device.string,
            device.changed_at_ms
        ])?;
    }
    drop(upsert);
    if !retention.max_age.is_zero() {
        let mut insert = transaction.prepare_cached(
            "INSERT INTO global_history (name, at, value, string) VALUES (?1, ?2, ?3, ?4)",
        )?;
        for global in batch.globals.values() {
            insert.execute(params![
                global.name,
                global.changed_at_ms,
                global.value,
                global.string
            ])?;
        }
    }
    for global in batch.globals.values() {
        transaction
            .prepare_cached(
                "INSERT INTO globals (name, value, string, changed_at) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (name) DO UPDATE SET value = excluded.value, string = excluded.string,
                                                  changed_at = excluded.changed_at",
            )?
            .execute(params![
                global.name,
                global.value,
                global.string,
                global.changed_at_ms
            ])?;
    }
    if let Some(next) = batch.next_ref {
        transaction.execute(
            "INSERT INTO meta (key, value) VALUES ('next_ref', ?1)
                 ON CONFLICT (key) DO UPDATE SET value = max(value, excluded.value)",
            params![next as i64],
        )?;
    }
    let mut journaled: HashMap<(Book, &str), usize> = HashMap::new();
    let kept = newest_of_each(&batch.journal);
    for ((book, name, record, keep), kept) in batch.journal.iter().zip(kept) {
        journaled.insert((*book, name), *keep);
        if !kept {
            continue; // deleted below before anyone could read it
        }
        let (table, column) = book.table();
        transaction
            .prepare_cached(&format!(
                "INSERT INTO {table} ({column}, record) VALUES (?1, ?2)"
            ))?
            .execute(params![name, record])?;
    }
    // Keep the newest `keep` records of each name written to in this batch.
    for ((book, name), keep) in journaled {
        let (table, column) = book.table();
        transaction
            .prepare_cached(&format!(
                "DELETE FROM {table} WHERE {column} = ?1 AND id <= (
                     SELECT id FROM {table} WHERE {column} = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2)"
            ))?
            .execute(params![name, keep as i64])?;
    }
    transaction.commit()
}
