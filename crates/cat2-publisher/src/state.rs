//! The datasets a publisher serves: opened once per version, shared by every request.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use cat2_format::Dataset;
use cat2_proto::DatasetPath;
use cat2_proto::msg::Change;

use crate::scan::{self, Found};

/// One served dataset at one version.
#[derive(Debug)]
pub(crate) struct Entry {
    pub(crate) etag: String,
    /// Open once; `Dataset` reads with positioned I/O, so requests share it.
    pub(crate) ds: Arc<Dataset>,
    /// What subscribers check this version's replies against (`None`: made on the fly, or
    /// too many chunks to send).
    pub(crate) digests: Option<cat2_proto::msg::Digests>,
}

/// The root's datasets. The lock is a `std` one: held only to look up or swap entries,
/// never across an `.await` or a file operation.
#[derive(Debug, Default)]
pub(crate) struct Datasets {
    entries: RwLock<BTreeMap<String, Arc<Entry>>>,
    /// The listing order when it is not the paths' (HDF5 roots: 0.2.0's walk order).
    order: RwLock<Option<Vec<String>>>,
}

impl Datasets {
    pub(crate) fn get(&self, path: &str) -> Option<Arc<Entry>> {
        self.entries
            .read()
            .expect("datasets lock")
            .get(path)
            .cloned()
    }

    pub(crate) fn list(&self) -> Vec<String> {
        if let Some(order) = self.order.read().expect("datasets lock").as_ref() {
            return order.clone();
        }
        self.entries
            .read()
            .expect("datasets lock")
            .keys()
            .cloned()
            .collect()
    }

    pub(crate) fn etags(&self) -> HashMap<String, String> {
        self.entries
            .read()
            .expect("datasets lock")
            .iter()
            .map(|(k, v)| (k.clone(), v.etag.clone()))
            .collect()
    }
}

/// The change message for `path` (dataset keys come from scans, which keep valid paths
/// only: an invalid one is never announced), numbered when it is announced.
pub(crate) fn change(path: &str, etag: Option<String>) -> Option<Change> {
    DatasetPath::new(path).ok().map(|path| Change {
        path,
        etag,
        epoch: 0,
        seq: 0,
    })
}

impl Datasets {
    /// Replaces every entry by `new` (listed in its order), returning the changes: datasets
    /// whose etag differs, new ones and removed ones (unchanged ones are swapped silently).
    pub(crate) fn replace_all(&self, new: Vec<(String, Arc<Entry>)>) -> Vec<Change> {
        let mut entries = self.entries.write().expect("datasets lock");
        let mut changes: Vec<Change> = new
            .iter()
            .filter(|(k, e)| entries.get(k).map(|o| &o.etag) != Some(&e.etag))
            .filter_map(|(k, e)| change(k, Some(e.etag.clone())))
            .collect();
        let order: Vec<String> = new.iter().map(|(k, _)| k.clone()).collect();
        let keep: std::collections::HashSet<&String> = order.iter().collect();
        changes.extend(
            entries
                .keys()
                .filter(|k| !keep.contains(k))
                .filter_map(|k| change(k, None)),
        );
        *entries = new.into_iter().collect();
        *self.order.write().expect("datasets lock") = Some(order);
        changes
    }
}

/// Remembers files that failed to open, so each bad version is reported once.
#[derive(Debug, Default)]
pub(crate) struct Failed(HashMap<String, String>);

/// Rescans `root` and brings `datasets` up to date (blocking: run it off the async workers).
/// Returns the changes to announce.
pub(crate) fn refresh(
    root: &Path,
    datasets: &Datasets,
    failed: &mut Failed,
    digests: bool,
) -> Vec<Change> {
    let found = scan::scan(root);
    let current = datasets.etags();
    let mut changes = Vec::new();
    let mut opened: Vec<(String, Arc<Entry>)> = Vec::new();
    for (rel, Found { path, etag }) in &found {
        if current.get(rel) == Some(etag) || failed.0.get(rel) == Some(etag) {
            continue;
        }
        // Digested once per version, before it is listed: every reply for it can be checked.
        let read = Dataset::open(path).and_then(|ds| {
            let d = if digests { ds.digests()? } else { None };
            Ok((ds, d))
        });
        match read {
            Ok((ds, digests)) => {
                failed.0.remove(rel);
                opened.push((
                    rel.clone(),
                    Arc::new(Entry {
                        etag: etag.clone(),
                        ds: Arc::new(ds),
                        digests,
                    }),
                ));
                changes.extend(change(rel, Some(etag.clone())));
            }
            Err(e) => {
                tracing::warn!(path = %path.display(), error = %e, "cannot serve this file, skipped");
                failed.0.insert(rel.clone(), etag.clone());
                if current.contains_key(rel) {
                    // It was served: it is gone now, as far as subscribers can tell.
                    changes.extend(change(rel, None));
                }
            }
        }
    }
    let removed: Vec<String> = current
        .keys()
        .filter(|k| !found.contains_key(*k))
        .cloned()
        .collect();
    failed.0.retain(|k, _| found.contains_key(k));
    let mut entries = datasets.entries.write().expect("datasets lock");
    for rel in &removed {
        entries.remove(rel);
        changes.extend(change(rel, None));
    }
    for c in &changes {
        if c.etag.is_none() {
            entries.remove(c.path.as_str());
        }
    }
    for (rel, entry) in opened {
        entries.insert(rel, entry);
    }
    changes
}

/// The canonical root directory.
///
/// # Errors
/// When it does not exist or is not a directory.
pub(crate) fn canonical_root(root: &Path) -> std::io::Result<PathBuf> {
    let r = root.canonicalize()?;
    if r.is_dir() {
        Ok(r)
    } else {
        Err(std::io::Error::other("not a directory"))
    }
}
