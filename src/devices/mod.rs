//! The embedded device hub (device model): root devices with features, global variables, and
//! their crash-safe store. A device is identified by profile + root name + feature name and gets
//! a numeric reference once, on creation, that is never reused.
//!
//! Knows nothing of profiles' contents, expressions, HTTP or the web.

mod store;

pub use store::{Book, HistoryOf, HistoryPoint, HistoryRetention, StoreHealth};

use crate::sync::{Locked, ReadWriteLocked};
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use thiserror::Error;

use store::WriteOp;

#[derive(Debug, Error, Clone, PartialEq)]
#[non_exhaustive]
pub enum StoreError {
    #[error("device store {path}: {message}")]
    Sqlite { path: String, message: String },
    #[error("device store folder {path}: {message}")]
    Io { path: String, message: String },
    #[error("device store is closed")]
    Closed,
    #[error("device store commit failed: {0}")]
    Commit(String),
    #[error("device {0} does not exist")]
    UnknownDevice(u64),
    #[error(
        "the device store {path} is in use by another Bellhop process (a running `bellhop serve`?)"
    )]
    Busy { path: String },
    #[error("the device store was opened read-only")]
    ReadOnly,
    #[error("a device name must not be empty")]
    EmptyName,
}

/// What changed in the hub, as its observer is told.
#[derive(Debug, Clone)]
pub enum Changed {
    Device(DeviceChange),
    /// A device deleted: its last state.
    DeviceRemoved(Device),
    Global(Global),
}

/// Who is told of changes.
pub type Observer = std::sync::Arc<dyn Fn(Changed) + Send + Sync>;

/// Writes waiting for the store past which callers of [`DeviceHub::apply`] wait for a commit.
const BACKLOG_LIMIT: usize = 50_000;

/// Identity of a device: stable across runs and restarts. Its names are shared text: a run
/// keys its devices under one copy of the profile's name, and a name that an expression gave as
/// text is the key's without a copy.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DeviceKey {
    pub profile: Arc<str>,
    pub root: Arc<str>,
    /// `None` for a root device.
    pub feature: Option<Arc<str>>,
}

impl DeviceKey {
    pub fn root(profile: impl Into<Arc<str>>, root: impl Into<Arc<str>>) -> DeviceKey {
        DeviceKey {
            profile: profile.into(),
            root: root.into(),
            feature: None,
        }
    }

    pub fn feature(
        profile: impl Into<Arc<str>>,
        root: impl Into<Arc<str>>,
        feature: impl Into<Arc<str>>,
    ) -> DeviceKey {
        DeviceKey {
            profile: profile.into(),
            root: root.into(),
            feature: Some(feature.into()),
        }
    }

    fn parent(&self) -> Option<DeviceKey> {
        self.feature
            .as_ref()
            .map(|_| DeviceKey::root(self.profile.clone(), self.root.clone()))
    }
}

/// Shows `root` or `root / feature`.
impl std::fmt::Display for DeviceKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.feature {
            Some(feature) => write!(f, "{} / {feature}", self.root),
            None => f.write_str(&self.root),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Device {
    pub reference: u64,
    pub key: DeviceKey,
    pub value: f64,
    pub string: String,
    pub changed_at_ms: i64,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Global {
    pub name: String,
    pub value: f64,
    pub string: String,
    pub changed_at_ms: i64,
}

/// What a run wants a device to become. `None` leaves that part as it is.
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceUpdate {
    pub key: DeviceKey,
    pub value: Option<f64>,
    /// Shared text: an update that leaves the string as it was copies nothing.
    pub string: Option<Arc<str>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeKind {
    Created,
    Updated,
}

impl ChangeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeKind::Created => "created",
            ChangeKind::Updated => "updated",
        }
    }
}

/// A change that happened to a device: the event published to subscribers and kept in run records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeviceChange {
    pub kind: ChangeKind,
    pub device: Device,
    /// What the device held before an update (value, string), read under the hub's lock: after
    /// a restart it is the stored state, so a crossing comparison sees the last value kept.
    /// Not part of records.
    #[serde(skip)]
    pub previous: Option<(f64, String)>,
}

/// How `apply` treats devices that do not exist yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Creation {
    Allowed,
    /// The profile is locked: update existing devices only.
    Forbidden,
}

struct State {
    by_ref: BTreeMap<u64, Device>,
    by_key: HashMap<DeviceKey, u64>,
    globals: BTreeMap<String, Global>,
    next_ref: u64,
}

impl State {
    /// Makes the device `key` (with what `wanted` gives it, if anything), queues its write.
    fn create(
        &mut self,
        key: DeviceKey,
        wanted: Option<&DeviceUpdate>,
        now: i64,
        ops: &mut Vec<WriteOp>,
    ) -> DeviceChange {
        let reference = self.next_ref;
        self.next_ref += 1;
        let device = Device {
            reference,
            key: key.clone(),
            value: wanted.and_then(|w| w.value).unwrap_or(0.0),
            string: wanted
                .and_then(|w| w.string.as_deref())
                .map(str::to_string)
                .unwrap_or_default(),
            changed_at_ms: now,
        };
        self.by_key.insert(key, reference);
        self.by_ref.insert(reference, device.clone());
        ops.push(WriteOp::NextRef(self.next_ref));
        ops.push(WriteOp::Device(device.clone()));
        DeviceChange {
            kind: ChangeKind::Created,
            device,
            previous: None,
        }
    }
}

/// The device hub: an in-memory view for fast reads, written through to the store.
pub struct DeviceHub {
    state: Mutex<State>,
    /// Held for the hub's lifetime: one writing process per store.
    _lock: Option<std::fs::File>,
    writes: Mutex<Option<store::Writer>>,
    /// Told of every change, in the order memory applied them (under the state lock).
    observer: RwLock<Option<Observer>>,
    path: PathBuf,
}

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl DeviceHub {
    /// Opens (or creates) the store at `path` for writing, taking its lock: only one process
    /// writes a store. Writes are group-committed within `window`.
    pub fn open(path: &Path, window: Duration) -> Result<DeviceHub, StoreError> {
        let lock = store::lock(path)?;
        let (connection, loaded) = store::open(path)?;
        let mut hub = DeviceHub::from_loaded(path, loaded);
        hub._lock = Some(lock);
        hub.writes = Mutex::new(Some(store::spawn_writer(connection, window)));
        Ok(hub)
    }

    /// Opens a store to read what is committed, without its lock (while `serve` runs, say).
    /// Every write answers [`StoreError::ReadOnly`].
    pub fn open_read_only(path: &Path) -> Result<DeviceHub, StoreError> {
        let (_, loaded) = store::open(path)?;
        Ok(DeviceHub::from_loaded(path, loaded))
    }

    fn from_loaded(path: &Path, loaded: store::Loaded) -> DeviceHub {
        let mut state = State {
            by_ref: BTreeMap::new(),
            by_key: HashMap::new(),
            globals: BTreeMap::new(),
            next_ref: loaded.next_ref,
        };
        for device in loaded.devices {
            state.by_key.insert(device.key.clone(), device.reference);
            state.by_ref.insert(device.reference, device);
        }
        for global in loaded.globals {
            state.globals.insert(global.name.clone(), global);
        }
        DeviceHub {
            state: Mutex::new(state),
            _lock: None,
            writes: Mutex::new(None),
            observer: RwLock::new(None),
            path: path.to_path_buf(),
        }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A panic while holding the lock leaves consistent maps (every mutation is a single
        // insert), so a poisoned lock is still usable.
        self.state.locked()
    }

    fn with_writer<T>(
        &self,
        act: impl FnOnce(&store::Writer) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let writes = self.writes.locked();
        match writes.as_ref() {
            Some(writer) => act(writer),
            None if self._lock.is_none() => Err(StoreError::ReadOnly),
            None => Err(StoreError::Closed),
        }
    }

    fn send(&self, op: WriteOp) -> Result<(), StoreError> {
        self.with_writer(|writer| writer.send(op))
    }

    /// Sets who is told of every change (replacing any before): the engine, which publishes
    /// them on its event bus.
    pub fn observe(&self, observer: Observer) {
        *self.observer.write_locked() = Some(observer);
    }

    fn notify(&self, change: Changed) {
        if let Some(observer) = self.observer.read_locked().as_ref() {
            observer(change);
        }
    }

    /// Applies updates atomically with respect to other callers. Creations (which assign
    /// references) are durable when this returns; plain updates within the commit window.
    pub async fn apply(
        &self,
        updates: &[DeviceUpdate],
        creation: Creation,
    ) -> Result<Vec<DeviceChange>, StoreError> {
        // Back-pressure: while the writer is far behind (a slow or failing disk), wait for it.
        if self.with_writer(|w| Ok(w.backlog())).unwrap_or(0) > BACKLOG_LIMIT {
            self.flush().await?;
        }
        let (changes, created) = self.apply_in_memory(updates, creation)?;
        if created {
            self.flush().await?;
        }
        Ok(changes)
    }

    /// How the store's writer is doing (for the health endpoint).
    pub fn store_health(&self) -> Option<store::StoreHealth> {
        self.with_writer(|w| Ok(w.health())).ok()
    }

    fn apply_in_memory(
        &self,
        updates: &[DeviceUpdate],
        creation: Creation,
    ) -> Result<(Vec<DeviceChange>, bool), StoreError> {
        if updates.iter().any(|u| {
            u.key.root.trim().is_empty()
                || u.key.feature.as_ref().is_some_and(|f| f.trim().is_empty())
        }) {
            return Err(StoreError::EmptyName);
        }
        let mut state = self.lock();
        let mut changes = Vec::new();
        let mut ops = Vec::new();
        let now = now_ms();
        let mut created_any = false;
        for update in updates {
            // A feature's root exists first (made, without a value, when creation is allowed).
            if let Some(parent) = update.key.parent() {
                if !state.by_key.contains_key(&parent) {
                    if creation == Creation::Forbidden {
                        continue;
                    }
                    changes.push(state.create(parent, None, now, &mut ops));
                    created_any = true;
                }
            }
            // (Looked up by reference: the key is copied only for a device made now.)
            let Some(reference) = state.by_key.get(&update.key).copied() else {
                if creation == Creation::Allowed {
                    changes.push(state.create(update.key.clone(), Some(update), now, &mut ops));
                    created_any = true;
                }
                continue;
            };
            let Some(device) = state.by_ref.get_mut(&reference) else {
                continue;
            };
            let value = update.value.unwrap_or(device.value);
            let new_string = update
                .string
                .as_ref()
                .filter(|s| ***s != *device.string)
                .map(|s| s.to_string());
            if value == device.value && new_string.is_none() {
                continue;
            }
            let previous_string = match new_string {
                Some(string) => std::mem::replace(&mut device.string, string),
                None => device.string.clone(),
            };
            let previous = Some((device.value, previous_string));
            device.value = value;
            device.changed_at_ms = now;
            ops.push(WriteOp::Device(device.clone()));
            changes.push(DeviceChange {
                kind: ChangeKind::Updated,
                device: device.clone(),
                previous,
            });
        }
        // Queued and announced while the state is still locked: the store and listeners see
        // each device's changes in the order memory applied them.
        for op in ops {
            self.send(op)?;
        }
        for change in &changes {
            self.notify(Changed::Device(change.clone()));
        }
        drop(state);
        Ok((changes, created_any))
    }

    /// Sets a device's value and/or string by reference (the API's manual control).
    pub async fn set(
        &self,
        reference: u64,
        value: Option<f64>,
        string: Option<String>,
    ) -> Result<Option<DeviceChange>, StoreError> {
        let key = self
            .get(reference)
            .map(|d| d.key)
            .ok_or(StoreError::UnknownDevice(reference))?;
        let update = DeviceUpdate {
            key,
            value,
            string: string.map(Into::into),
        };
        let (mut changes, _) = self.apply_in_memory(&[update], Creation::Forbidden)?;
        Ok(changes.pop())
    }

    /// Deletes a device (and its history): its last state. Its reference is never handed out
    /// again.
    pub fn remove(&self, reference: u64) -> Result<Device, StoreError> {
        let mut state = self.lock();
        let device = state
            .by_ref
            .remove(&reference)
            .ok_or(StoreError::UnknownDevice(reference))?;
        state.by_key.remove(&device.key);
        // Told under the lock, like every change, so observers see changes in order.
        self.notify(Changed::DeviceRemoved(device.clone()));
        drop(state);
        self.send(WriteOp::Remove(reference))?;
        Ok(device)
    }

    pub fn get(&self, reference: u64) -> Option<Device> {
        self.lock().by_ref.get(&reference).cloned()
    }

    pub fn find(&self, key: &DeviceKey) -> Option<Device> {
        let state = self.lock();
        state
            .by_key
            .get(key)
            .and_then(|reference| state.by_ref.get(reference))
            .cloned()
    }

    pub fn value(&self, reference: u64) -> Option<f64> {
        self.lock().by_ref.get(&reference).map(|d| d.value)
    }

    pub fn string(&self, reference: u64) -> Option<String> {
        self.lock().by_ref.get(&reference).map(|d| d.string.clone())
    }

    /// All devices, ordered by reference.
    pub fn list(&self) -> Vec<Device> {
        self.lock().by_ref.values().cloned().collect()
    }

    pub fn len(&self) -> usize {
        self.lock().by_ref.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn global(&self, name: &str) -> Option<Global> {
        self.lock().globals.get(name).cloned()
    }

    pub fn globals(&self) -> Vec<Global> {
        self.lock().globals.values().cloned().collect()
    }

    pub fn set_global(
        &self,
        name: &str,
        value: Option<f64>,
        string: Option<String>,
    ) -> Result<Global, StoreError> {
        if name.trim().is_empty() {
            return Err(StoreError::EmptyName);
        }
        let mut state = self.lock();
        let now = now_ms();
        let created = !state.globals.contains_key(name);
        let global = state
            .globals
            .entry(name.to_string())
            .or_insert_with(|| Global {
                name: name.to_string(),
                value: 0.0,
                string: String::new(),
                changed_at_ms: now,
            });
        let new_value = value.unwrap_or(global.value);
        let new_string = string.unwrap_or_else(|| global.string.clone());
        let changed = created || new_value != global.value || new_string != global.string;
        if changed {
            global.changed_at_ms = now;
        }
        global.value = new_value;
        global.string = new_string;
        let global = global.clone();
        self.send(WriteOp::Global(global.clone()))?;
        if changed {
            self.notify(Changed::Global(global.clone()));
        }
        drop(state);
        Ok(global)
    }

    /// Appends an opaque record (a run, as JSON) to a name's journal in `book`, keeping the
    /// newest `keep`. `render` produces the text on the writer thread; `None` skips the record.
    pub fn journal(
        &self,
        book: Book,
        name: &str,
        render: Box<dyn FnOnce() -> Option<String> + Send>,
        keep: usize,
    ) -> Result<(), StoreError> {
        self.send(WriteOp::Journal {
            book,
            name: name.to_string(),
            render,
            keep,
        })
    }

    /// The newest journal records of `book`, newest first (reads what is committed).
    pub fn read_journal(
        &self,
        book: Book,
        name: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        store::read_journal(&self.path, book, name, limit)
    }

    /// A device's or a global's recorded changes from `since_ms` on, oldest first, the newest
    /// `limit` of them (reads what is committed).
    pub fn history(
        &self,
        of: HistoryOf<'_>,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<HistoryPoint>, StoreError> {
        store::read_history(&self.path, of, since_ms, limit)
    }

    /// How much device history the store keeps from now on.
    pub fn set_history_retention(&self, retention: HistoryRetention) {
        if let Some(writer) = self.writes.locked().as_ref() {
            writer.set_retention(retention);
        }
    }

    /// Reads the journal of a store without opening a hub (for the CLI).
    pub fn read_journal_at(
        path: &Path,
        profile: Option<&str>,
        limit: usize,
    ) -> Result<Vec<String>, StoreError> {
        store::read_journal(path, Book::Runs, profile, limit)
    }

    /// Commits everything written so far and waits until it is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        let (reply, done) = tokio::sync::oneshot::channel();
        self.with_writer(|writer| writer.flush(reply))?;
        done.await.map_err(|_| StoreError::Closed)?
    }

    /// Commits what is pending and stops the writer.
    pub fn close(&self) {
        let writer = self.writes.locked().take();
        if let Some(writer) = writer {
            writer.close();
        }
    }
}

impl Drop for DeviceHub {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn update(root: &str, feature: Option<&str>, value: f64, string: &str) -> DeviceUpdate {
        DeviceUpdate {
            key: DeviceKey {
                profile: "p".into(),
                root: root.into(),
                feature: feature.map(Into::into),
            },
            value: Some(value),
            string: Some(string.into()),
        }
    }

    fn open(dir: &Path) -> DeviceHub {
        DeviceHub::open(&dir.join("hub.sqlite"), Duration::from_millis(20))
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[tokio::test]
    async fn creates_roots_for_features_and_survives_reopen() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        let changes = hub
            .apply(
                &[update("Kitchen", Some("temp"), 21.5, "warm")],
                Creation::Allowed,
            )
            .await?;
        assert_eq!(changes.len(), 2);
        assert_eq!(changes[0].device.key.feature, None);
        assert_eq!(changes[1].device.value, 21.5);
        // The same update again changes nothing.
        let again = hub
            .apply(
                &[update("Kitchen", Some("temp"), 21.5, "warm")],
                Creation::Allowed,
            )
            .await?;
        assert!(again.is_empty());
        let changed = hub
            .apply(
                &[update("Kitchen", Some("temp"), 22.0, "warm")],
                Creation::Allowed,
            )
            .await?;
        assert_eq!(changed[0].kind, ChangeKind::Updated);
        hub.flush().await?;
        drop(hub);
        let reopened = open(dir.path());
        let kitchen = reopened.find(&DeviceKey::feature("p", "Kitchen", "temp"));
        assert_eq!(kitchen.map(|d| (d.reference, d.value)), Some((2, 22.0)));
        Ok(())
    }

    #[tokio::test]
    async fn references_are_never_reused() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        {
            let hub = open(dir.path());
            hub.apply(&[update("a", None, 1.0, "")], Creation::Allowed)
                .await?;
            hub.apply(&[update("b", None, 1.0, "")], Creation::Allowed)
                .await?;
        }
        // Simulate removing the newest device by hand: its number must not come back.
        let connection = rusqlite::Connection::open(dir.path().join("hub.sqlite"))
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        connection
            .execute("DELETE FROM devices WHERE ref = 2", [])
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        drop(connection);
        let hub = open(dir.path());
        let created = hub
            .apply(&[update("c", None, 1.0, "")], Creation::Allowed)
            .await?;
        assert_eq!(created[0].device.reference, 3);
        Ok(())
    }

    #[tokio::test]
    async fn one_writer_per_store_and_readers_see_commits() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        hub.apply(&[update("a", None, 7.0, "x")], Creation::Allowed)
            .await?;
        let second = DeviceHub::open(&dir.path().join("hub.sqlite"), Duration::from_millis(20));
        assert!(matches!(second, Err(StoreError::Busy { .. })));
        let reader = DeviceHub::open_read_only(&dir.path().join("hub.sqlite"))?;
        assert_eq!(reader.list().len(), 1);
        assert_eq!(
            reader.set_global("g", Some(1.0), None),
            Err(StoreError::ReadOnly)
        );
        Ok(())
    }

    #[tokio::test]
    async fn each_committed_change_is_history_within_the_retention() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        for value in [1.0, 2.0, 3.0, 3.0, 4.0] {
            hub.apply(&[update("t", None, value, "")], Creation::Allowed)
                .await?;
            hub.flush().await?;
        }
        let reference = hub.list()[0].reference;
        let points = hub.history(HistoryOf::Device(reference), 0, 100)?;
        // A write that changed nothing is no change.
        assert_eq!(
            points.iter().map(|p| p.value).collect::<Vec<_>>(),
            vec![1.0, 2.0, 3.0, 4.0]
        );
        assert!(points.windows(2).all(|w| w[0].at_ms <= w[1].at_ms));
        assert_eq!(
            hub.history(HistoryOf::Device(reference), 0, 2)?.len(),
            2,
            "the newest two"
        );
        assert_eq!(
            hub.history(HistoryOf::Device(reference), 0, 2)?[1].value,
            4.0
        );
        assert!(hub
            .history(HistoryOf::Device(reference + 1), 0, 100)?
            .is_empty());
        // Beyond the row cap the oldest go; beyond the age, everything.
        let connection = rusqlite::Connection::open(dir.path().join("hub.sqlite"))
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        let prune = |max_age: Duration, max_rows: u64| {
            store::prune_history(&connection, &HistoryRetention { max_age, max_rows })
                .map_err(|e| StoreError::Commit(e.to_string()))
        };
        prune(Duration::from_secs(3600), 2)?;
        let kept: Vec<f64> = hub
            .history(HistoryOf::Device(reference), 0, 100)?
            .iter()
            .map(|p| p.value)
            .collect();
        assert_eq!(kept, vec![3.0, 4.0]);
        std::thread::sleep(Duration::from_millis(5));
        prune(Duration::from_millis(1), 100)?;
        assert!(hub
            .history(HistoryOf::Device(reference), 0, 100)?
            .is_empty());
        // No history at all when the age is zero.
        hub.set_history_retention(HistoryRetention {
            max_age: Duration::ZERO,
            max_rows: 100,
        });
        hub.apply(&[update("t", None, 9.0, "")], Creation::Allowed)
            .await?;
        hub.flush().await?;
        assert!(hub
            .history(HistoryOf::Device(reference), 0, 100)?
            .is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn each_committed_change_of_a_global_is_history_too() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        for (value, string) in [(Some(1.0), None), (None, Some("armed")), (Some(2.0), None)] {
            hub.set_global("alarm", value, string.map(str::to_string))?;
            hub.flush().await?;
        }
        hub.set_global("other", Some(5.0), None)?;
        hub.flush().await?;
        let points = hub.history(HistoryOf::Global("alarm"), 0, 100)?;
        assert_eq!(
            points
                .iter()
                .map(|p| (p.value, p.string.as_str()))
                .collect::<Vec<_>>(),
            vec![(1.0, ""), (1.0, "armed"), (2.0, "armed")]
        );
        assert_eq!(hub.history(HistoryOf::Global("other"), 0, 100)?.len(), 1);
        assert!(hub.history(HistoryOf::Global("nobody"), 0, 100)?.is_empty());
        // A name that is SQL is only a name.
        assert!(hub
            .history(HistoryOf::Global("' OR 1=1 --"), 0, 100)?
            .is_empty());
        // The retention prunes globals' history too.
        let connection = rusqlite::Connection::open(dir.path().join("hub.sqlite"))
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        store::prune_history(
            &connection,
            &HistoryRetention {
                max_age: Duration::from_secs(3600),
                max_rows: 1,
            },
        )
        .map_err(|e| StoreError::Commit(e.to_string()))?;
        assert!(hub.history(HistoryOf::Global("alarm"), 0, 100)?.is_empty());
        assert_eq!(hub.history(HistoryOf::Global("other"), 0, 100)?.len(), 1);
        Ok(())
    }

    #[tokio::test]
    async fn a_deleted_device_is_gone_with_its_history_after_a_restart() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let reference = {
            let hub = open(dir.path());
            hub.apply(
                &[update("a", None, 1.0, ""), update("b", None, 2.0, "")],
                Creation::Allowed,
            )
            .await?;
            hub.flush().await?;
            let a = hub.list()[0].reference;
            hub.set(a, Some(5.0), None).await?;
            assert_eq!(hub.remove(a)?.value, 5.0);
            assert!(matches!(hub.remove(a), Err(StoreError::UnknownDevice(_))));
            hub.flush().await?;
            assert!(hub.history(HistoryOf::Device(a), 0, 10)?.is_empty());
            a
        };
        let hub = open(dir.path());
        assert!(hub.get(reference).is_none());
        assert_eq!(hub.list().len(), 1);
        // The reference is not handed out again.
        let created = hub
            .apply(&[update("c", None, 1.0, "")], Creation::Allowed)
            .await?;
        assert!(created[0].device.reference > reference + 1);
        Ok(())
    }

    #[tokio::test]
    async fn locked_profiles_create_nothing() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        let changes = hub
            .apply(&[update("x", Some("y"), 1.0, "")], Creation::Forbidden)
            .await?;
        assert!(changes.is_empty());
        assert!(hub.is_empty());
        Ok(())
    }

    #[tokio::test]
    async fn a_batch_renders_only_the_records_it_keeps() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = DeviceHub::open(&dir.path().join("hub.sqlite"), Duration::from_millis(200))?;
        let rendered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        for n in 0..100 {
            let rendered = rendered.clone();
            let render = Box::new(move || {
                rendered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                Some(format!("{n}"))
            });
            hub.journal(Book::Runs, "p", render, 3)?;
        }
        hub.flush().await?;
        assert_eq!(
            hub.read_journal(Book::Runs, Some("p"), 100)?,
            vec!["99", "98", "97"]
        );
        // One commit window took all 100; only the three kept were rendered.
        assert_eq!(rendered.load(std::sync::atomic::Ordering::SeqCst), 3);
        Ok(())
    }

    #[tokio::test]
    async fn journal_keeps_the_newest_records() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        for n in 0..10 {
            hub.journal(Book::Runs, "p", Box::new(move || Some(format!("{n}"))), 3)?;
        }
        hub.journal(Book::Runs, "q", Box::new(|| Some("other".into())), 3)?;
        hub.journal(Book::EventRuns, "p", Box::new(|| Some("event".into())), 3)?;
        hub.flush().await?;
        assert_eq!(
            hub.read_journal(Book::Runs, Some("p"), 100)?,
            vec!["9", "8", "7"]
        );
        assert_eq!(hub.read_journal(Book::Runs, None, 2)?, vec!["other", "9"]);
        assert_eq!(
            hub.read_journal(Book::EventRuns, Some("p"), 9)?,
            vec!["event"]
        );
        Ok(())
    }

    /// A commit that fails (here: a trigger refusing writes, as a full or broken disk would) is
    /// retried and reported; nothing is dropped, and the store ends at what memory says.
    #[tokio::test]
    async fn failed_commits_are_retried_and_reported_never_dropped() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = open(dir.path());
        hub.apply(&[update("Pump", None, 0.0, "")], Creation::Allowed)
            .await?;
        let saboteur = rusqlite::Connection::open(dir.path().join("hub.sqlite"))
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        saboteur
            .execute_batch(
                "CREATE TRIGGER refuse_update BEFORE UPDATE ON devices BEGIN SELECT RAISE(ABORT, 'disk says no'); END;",
            )
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        for value in 1..=5 {
            hub.apply(
                &[update("Pump", None, f64::from(value), "")],
                Creation::Allowed,
            )
            .await?;
        }
        let mut health = hub.store_health().unwrap_or_default();
        for _ in 0..100 {
            if health.failing.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
            health = hub.store_health().unwrap_or_default();
        }
        assert!(
            health
                .failing
                .as_deref()
                .is_some_and(|e| e.contains("disk says no")),
            "{health:?}"
        );
        assert!(health.pending >= 1, "{health:?}");
        assert!(hub.flush().await.is_err(), "a flush reports the failure");
        saboteur
            .execute_batch("DROP TRIGGER refuse_update;")
            .map_err(|e| StoreError::Commit(e.to_string()))?;
        let mut flushed = hub.flush().await;
        for _ in 0..50 {
            if flushed.is_ok() {
                break;
            }
            flushed = hub.flush().await;
        }
        flushed?;
        assert_eq!(hub.store_health().map(|h| h.failing), Some(None));
        drop(hub);
        let reopened = open(dir.path());
        let pump = reopened.find(&DeviceKey::root("p", "Pump"));
        assert_eq!(pump.map(|d| d.value), Some(5.0));
        Ok(())
    }

    /// Updates of one device from many tasks reach the store in the order memory applied them.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_leave_the_store_where_memory_is() -> Result<(), StoreError> {
        let dir = tempfile::tempdir().map_err(|e| StoreError::Commit(e.to_string()))?;
        let hub = std::sync::Arc::new(open(dir.path()));
        hub.apply(&[update("Lamp", None, 0.0, "")], Creation::Allowed)
            .await?;
        let tasks: Vec<_> = (0..8)
            .map(|task| {
                let hub = hub.clone();
                tokio::spawn(async move {
                    for n in 0..500 {
                        let value = f64::from(task * 1000 + n);
                        hub.apply(&[update("Lamp", None, value, "")], Creation::Allowed)
                            .await?;
                    }
                    Ok::<_, StoreError>(())
                })
            })
            .collect();
        for task in tasks {
            task.await
                .map_err(|e| StoreError::Commit(e.to_string()))??;
        }
        hub.flush().await?;
        let in_memory = hub.find(&DeviceKey::root("p", "Lamp")).map(|d| d.value);
        drop(hub);
        let reopened = open(dir.path());
        assert_eq!(
            reopened
                .find(&DeviceKey::root("p", "Lamp"))
                .map(|d| d.value),
            in_memory
        );
        Ok(())
    }
}
