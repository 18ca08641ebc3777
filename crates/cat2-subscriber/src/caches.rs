//! The open cache instances, one per dataset, and the gates that serialise opening,
//! creating and removing each dataset's cache file.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

use cat2_proto::RootName;

use crate::cached::Cached;

/// (root, dataset path).
type Key = (String, String);

/// Open instances and gates. Both maps are leaves: their `std` locks are taken alone, for a
/// lookup or an update, never across an `.await`.
#[derive(Debug, Default)]
pub(crate) struct Caches {
    open: Mutex<HashMap<Key, Arc<Cached>>>,
    gates: Mutex<HashMap<Key, Arc<tokio::sync::Mutex<()>>>>,
}

/// A dataset's gate, held; the map entry goes with the last holder.
pub(crate) struct Gate<'a> {
    caches: &'a Caches,
    key: Key,
    gate: Arc<tokio::sync::Mutex<()>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl Drop for Gate<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let mut map = self
            .caches
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        // Clones are taken under the map's lock: the map's and ours mean nobody else waits.
        if Arc::strong_count(&self.gate) == 2 {
            map.remove(&self.key);
        }
    }
}

fn key(root: &RootName, rel: &str) -> Key {
    (root.to_string(), rel.to_owned())
}

impl Caches {
    /// Waits for the gate of `root/rel`. Held while the cache file is opened, made or removed
    /// (local work), never across a network wait: a hung publisher must not stall this
    /// dataset once it answers, nor any other.
    pub(crate) async fn gate(&self, root: &RootName, rel: &str) -> Gate<'_> {
        let key = key(root, rel);
        let gate = self
            .gates
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(key.clone())
            .or_default()
            .clone();
        let guard = gate.clone().lock_owned().await;
        Gate {
            caches: self,
            key,
            gate,
            guard: Some(guard),
        }
    }

    /// The open instance of `root/rel` at version `etag`.
    pub(crate) fn lookup(&self, root: &RootName, rel: &str, etag: &str) -> Option<Arc<Cached>> {
        let open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.get(&key(root, rel))
            .filter(|c| c.etag == etag)
            .cloned()
    }

    /// Makes `c` the open instance of its dataset (under the dataset's gate).
    pub(crate) fn insert(&self, c: Arc<Cached>) -> Arc<Cached> {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.insert(key(&c.root, c.rel.as_str()), c.clone());
        c
    }

    /// Forgets the open instance of `root/rel` (under the dataset's gate); readers holding it
    /// finish with it.
    pub(crate) fn remove(&self, root: &RootName, rel: &str) {
        let mut open = self.open.lock().unwrap_or_else(PoisonError::into_inner);
        open.remove(&key(root, rel));
    }
}
