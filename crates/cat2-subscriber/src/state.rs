//! What the subscriber remembers across restarts (`STATEDIR/db.json`): the roots it knows,
//! which it follows, and the datasets (with etags) of each followed root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use serde::{Deserialize, Serialize};

/// A root as known from the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KnownRoot {
    pub(crate) name: String,
    /// Its publisher's HTTP address, when it has one.
    #[serde(default)]
    pub(crate) http: Option<String>,
    /// Whether the broker says a publisher is alive.
    #[serde(default)]
    pub(crate) online: bool,
    /// Whether we follow it.
    #[serde(default)]
    pub(crate) subscribed: bool,
    /// Dataset path → etag of the cached version (followed roots only).
    #[serde(default)]
    pub(crate) datasets: BTreeMap<String, String>,
}

/// The persisted state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) roots: BTreeMap<String, KnownRoot>,
    #[serde(skip)]
    path: PathBuf,
}

impl State {
    /// Loads `statedir/db.json`; a corrupt file is set aside (the cache is revalidated anyway).
    pub(crate) fn load(statedir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(statedir)?;
        let path = statedir.join("db.json");
        let mut state = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<State>(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "corrupt state, starting afresh");
                let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        state.path = path;
        Ok(state)
    }

    /// What [`Snapshot::write`] persists: taken under the state's lock (memory only), written
    /// after it is released.
    pub(crate) fn snapshot(&self) -> std::io::Result<Snapshot> {
        Ok(Snapshot {
            path: self.path.clone(),
            bytes: serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?,
        })
    }
}

/// The state's bytes, to be written to its path.
#[derive(Debug)]
pub(crate) struct Snapshot {
    path: PathBuf,
    bytes: Vec<u8>,
}

impl Snapshot {
    /// Writes atomically and durably (blocking): a file aside, flushed to disk, renamed over
    /// the state, then the directory flushed, so a crash leaves the old state or the new one.
    pub(crate) fn write(&self) -> std::io::Result<()> {
        use std::io::Write;
        let tmp = self.path.with_extension("json.tmp");
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(&self.bytes)?;
        f.sync_all()?;
        drop(f);
        std::fs::rename(&tmp, &self.path)?;
        if let Some(dir) = self.path.parent() {
            std::fs::File::open(dir)?.sync_all()?;
        }
        Ok(())
    }
}

/// The state, shared: a `std` lock for short critical sections (a leaf: nothing else is
/// taken under it, never held across `.await`), and saving off the request path.
#[derive(Debug)]
pub(crate) struct StateStore {
    state: Mutex<State>,
    dirty: AtomicBool,
    /// Snapshots are numbered under the state's lock; the number of the last one written is
    /// kept here (its lock serialises the writes): an older one never overwrites a newer.
    snapshots: AtomicU64,
    saved: Arc<Mutex<u64>>,
}

impl StateStore {
    pub(crate) fn new(state: State) -> Self {
        Self {
            state: Mutex::new(state),
            dirty: AtomicBool::new(false),
            snapshots: AtomicU64::new(0),
            saved: Arc::default(),
        }
    }

    /// The state (mark it changed with [`StateStore::changed`]).
    pub(crate) fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Notes that the state must be saved (by [`StateStore::save`]).
    pub(crate) fn changed(&self) {
        self.dirty.store(true, Ordering::Release);
    }

    /// Saves the state if it changed: a snapshot taken under the lock, written outside it on
    /// the blocking pool, atomically (a failed write leaves the state marked changed, to be
    /// retried).
    pub(crate) async fn save(self: &Arc<Self>) {
        if !self.dirty.swap(false, Ordering::AcqRel) {
            return;
        }
        let taken = {
            let state = self.lock();
            let seq = self.snapshots.fetch_add(1, Ordering::AcqRel) + 1;
            state.snapshot().map(|s| (seq, s))
        };
        let (seq, snap) = match taken {
            Ok(t) => t,
            Err(e) => {
                tracing::error!(error = %e, "cannot serialise state");
                return;
            }
        };
        let store = self.clone();
        let _ = tokio::task::spawn_blocking(move || {
            let mut saved = store.saved.lock().unwrap_or_else(PoisonError::into_inner);
            if *saved >= seq {
                return;
            }
            match snap.write() {
                Ok(()) => *saved = seq,
                Err(e) => {
                    tracing::error!(error = %e, "cannot save state");
                    store.changed();
                }
            }
        })
        .await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saves_atomically_and_loads_back() {
        let dir = tempfile::tempdir().unwrap();
        let mut s = State::load(dir.path()).unwrap();
        s.roots.insert(
            "foo".into(),
            KnownRoot {
                name: "foo".into(),
                http: None,
                online: true,
                subscribed: true,
                datasets: [("a.b2nd".to_owned(), "e1".to_owned())].into(),
            },
        );
        // A write left half done by a crash does not matter: the state is renamed whole.
        std::fs::write(dir.path().join("db.json.tmp"), b"{\"roots\": {\"x").unwrap();
        s.snapshot().unwrap().write().unwrap();
        let back = State::load(dir.path()).unwrap();
        assert_eq!(back.roots, s.roots);
        std::fs::write(dir.path().join("db.json"), b"not json").unwrap();
        let fresh = State::load(dir.path()).unwrap();
        assert!(fresh.roots.is_empty(), "a corrupt state is set aside");
        assert!(dir.path().join("db.json.corrupt").exists());
    }
}
