//! Keeping up with the broker and the publishers: roots, follows, change notifications, and
//! revalidation after a restart or a reconnection.

use std::sync::Arc;

use cat2_proto::msg::{Change, RootEntry, RootState};
use cat2_proto::{DatasetPath, RootName};
use futures::StreamExt;

use crate::ApiError;
use crate::sequence::Verdict;
use crate::state::KnownRoot;
use crate::sub::Sub;

/// Concurrent metadata requests while following a root.
const INFO_CONCURRENCY: usize = 16;

impl Sub {
    /// Merges the broker's view of a root into the state.
    pub(crate) fn learn_root(&self, e: &RootEntry) {
        let mut state = self.state();
        let r = state
            .roots
            .entry(e.name.to_string())
            .or_insert_with(|| KnownRoot {
                name: e.name.to_string(),
                http: None,
                online: false,
                subscribed: false,
                datasets: Default::default(),
            });
        let changed = r.http != e.http || r.online != e.online;
        r.http.clone_from(&e.http);
        r.online = e.online;
        if changed {
            drop(state);
            self.state_changed();
        }
    }

    /// Asks the broker for the roots.
    ///
    /// # Errors
    /// When the broker cannot be reached.
    pub(crate) async fn refresh_roots(&self) -> Result<(), ApiError> {
        let roots = self.upstream.roots().await?;
        for e in &roots.roots {
            self.learn_root(e);
        }
        Ok(())
    }

    /// Follows `root`: marks it subscribed, then brings its datasets up to date (list, then
    /// metadata with the etags we have: only changed datasets are recreated, removed ones are
    /// deleted).
    ///
    /// # Errors
    /// `NotFound` for a root the broker never announced; `Unavailable`/`Timeout` when its
    /// publishers cannot be reached (it stays subscribed and is retried later).
    pub(crate) async fn follow(self: &Arc<Self>, root: &RootName) -> Result<(), ApiError> {
        {
            let mut state = self.state();
            let r = state
                .roots
                .get_mut(root.as_str())
                .ok_or_else(|| ApiError::not_found(format!("{root} not known by the broker")))?;
            if !r.subscribed {
                r.subscribed = true;
                drop(state);
                self.state_changed();
                self.followed.notify_one();
            }
        }
        self.save_state().await;
        let lock = self.root_lock(root);
        let _guard = lock.lock().await;
        // A miss noted after this point may not be covered by the list below.
        let misses = self.sequences.misses(root.as_str());
        let list = self.upstream.list(root).await?;
        let known = self.known_datasets(root);
        let wanted: Vec<DatasetPath> = list.datasets;
        let results: Vec<Result<(), ApiError>> = futures::stream::iter(wanted.iter().cloned())
            .map(|rel| {
                let have = known.get(rel.as_str()).cloned();
                async move { self.revalidate(root, &rel, have).await }
            })
            .buffer_unordered(INFO_CONCURRENCY)
            .collect()
            .await;
        for rel in known.keys() {
            if !wanted.iter().any(|w| w.as_str() == rel) {
                tracing::info!(root = %root, path = %rel, "dataset gone from its root");
                self.remove(root, rel).await;
            }
        }
        self.save_state().await;
        results.into_iter().collect::<Result<Vec<()>, _>>()?;
        if self.sequences.misses(root.as_str()) == misses {
            self.mark_synced(root);
        }
        tracing::info!(root = %root, datasets = wanted.len(), "root in sync");
        Ok(())
    }

    fn known_datasets(&self, root: &RootName) -> std::collections::BTreeMap<String, String> {
        let state = self.state();
        state
            .roots
            .get(root.as_str())
            .map(|r| r.datasets.clone())
            .unwrap_or_default()
    }

    fn mark_synced(&self, root: &RootName) {
        self.synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(root.to_string());
    }

    /// Whether `root` was brought up to date since this process started.
    pub(crate) fn is_synced(&self, root: &str) -> bool {
        self.synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .contains(root)
    }

    /// Checks one dataset against its publisher: recreates its cache when its etag changed
    /// (or the cache file is missing), removes it when it is gone.
    pub(crate) async fn revalidate(
        self: &Arc<Self>,
        root: &RootName,
        rel: &DatasetPath,
        have: Option<String>,
    ) -> Result<(), ApiError> {
        let file_ok = self.cache_path(root, rel).exists();
        let ask = if file_ok { have.clone() } else { None };
        match self.upstream.info(root, rel, ask).await {
            Ok(info) => match info.meta {
                None => Ok(()),
                Some(meta) => {
                    if have.is_some() {
                        tracing::info!(root = %root, path = %rel, etag = %info.etag, "dataset changed, cache reset");
                    }
                    self.install(root, rel, &info.etag, meta, info.digests)
                        .await
                        .map(drop)
                }
            },
            Err(e) if e.code() == cat2_proto::ErrorCode::NotFound => {
                self.remove(root, rel.as_str()).await;
                Ok(())
            }
            Err(e) => Err(e.into()),
        }
    }

    /// Revalidates one dataset in the background.
    pub(crate) fn spawn_revalidate(self: &Arc<Self>, root: RootName, rel: DatasetPath) {
        let sub = self.clone();
        tokio::spawn(async move {
            let have = sub.known_datasets(&root).get(rel.as_str()).cloned();
            if let Err(e) = sub.revalidate(&root, &rel, have).await {
                tracing::warn!(root = %root, path = %rel, error = %e, "cannot revalidate");
            }
        });
    }

    /// Applies a publisher's change notification to a followed root. The notification only
    /// says *which* dataset changed: its state is asked from the publisher (so notifications
    /// applied late or out of order cannot delete or downgrade a live dataset).
    pub(crate) async fn on_change(self: &Arc<Self>, root: &RootName, change: Change) {
        if !self.is_followed(root) {
            return;
        }
        let now = std::time::Instant::now();
        if self.sequences.change(root.as_str(), &change, now) == Verdict::Missed {
            self.missed(root);
        }
        let rel = change.path;
        // One check of a dataset queued at a time: changes arriving meanwhile join it (a
        // flood of change messages, forged or not, costs two checks with the publisher, not
        // one each). The queued check leaves the queue once it holds the root's lock, before
        // it asks, so a change arriving during the request queues the next one.
        let key = (root.to_string(), rel.to_string());
        {
            let mut queued = self
                .queued_changes
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if let Some(merged) = queued.get_mut(&key) {
                *merged = true;
                return;
            }
            queued.insert(key.clone(), false);
        }
        let lock = self.root_lock(root);
        let _guard = lock.lock().await;
        let merged = self
            .queued_changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(&key)
            .unwrap_or(false);
        let have = self.known_datasets(root).get(rel.as_str()).cloned();
        // Merged changes may have named other etags: only the publisher's answer counts then.
        if !merged && change.etag.is_some() && change.etag == have {
            return;
        }
        if let Err(e) = self.revalidate(root, &rel, have).await {
            tracing::warn!(root = %root, path = %rel, error = %e, "cannot follow a change");
        }
        self.save_state().await;
    }

    /// A publisher's heartbeat state for `root`: a follow is queued when it shows that
    /// changes were missed.
    pub(crate) fn on_state(self: &Arc<Self>, root: &RootName, state: RootState) {
        if !self.is_followed(root) {
            return;
        }
        let now = std::time::Instant::now();
        if self.sequences.state(root.as_str(), state, now) == Verdict::Missed {
            self.missed(root);
        }
    }

    fn is_followed(&self, root: &RootName) -> bool {
        self.state()
            .roots
            .get(root.as_str())
            .is_some_and(|r| r.subscribed)
    }

    /// Changes of `root` may have been missed: it is no longer in sync, and one follow is
    /// queued behind any running one (later misses join the queued one; a follow that fails
    /// is retried by the periodic resync, since the root stays out of sync).
    fn missed(self: &Arc<Self>, root: &RootName) {
        self.synced
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .remove(root.as_str());
        let queued = self
            .queued_follows
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(root.to_string());
        if !queued {
            return;
        }
        tracing::info!(root = %root, "changes were missed: following the root again");
        let (sub, root) = (self.clone(), root.clone());
        tokio::spawn(async move {
            drop(sub.root_lock(&root).lock().await);
            sub.queued_follows
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .remove(root.as_str());
            if let Err(e) = sub.follow(&root).await {
                tracing::warn!(root = %root, error = %e, "cannot catch up with missed changes (retried at the next resync)");
            }
        });
    }

    /// Roots we follow.
    pub(crate) fn subscribed_roots(&self) -> Vec<RootName> {
        let state = self.state();
        state
            .roots
            .values()
            .filter(|r| r.subscribed)
            .filter_map(|r| RootName::new(&r.name).ok())
            .collect()
    }

    /// Brings every followed root up to date (after a start or a reconnection), in the
    /// background.
    pub(crate) fn spawn_resync(self: &Arc<Self>, only_unsynced: bool) {
        for root in self.subscribed_roots() {
            if only_unsynced && self.is_synced(root.as_str()) {
                continue;
            }
            if self.root_lock(&root).try_lock().is_err() {
                continue; // a sync of this root is running: don't pile up another
            }
            let sub = self.clone();
            tokio::spawn(async move {
                if let Err(e) = sub.follow(&root).await {
                    tracing::warn!(root = %root, error = %e, "cannot sync root; serving what is cached");
                }
            });
        }
    }
}
