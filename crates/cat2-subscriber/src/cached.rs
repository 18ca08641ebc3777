//! One dataset's cache file at one version: what a request reads from and fetches into.

use std::sync::atomic::{AtomicU64, Ordering};

use cat2_array::ChunkLayout;
use cat2_format::{CacheFile, Kind, SharedCache};
use cat2_proto::{DatasetPath, Meta, RootName};

use crate::digests::Checked;

static NEXT_ID: AtomicU64 = AtomicU64::new(1);

/// A cache file instance. Several may exist for one dataset (an old version still being
/// read while its successor fills): each has its own id and its own file descriptor.
#[derive(Debug)]
pub(crate) struct Cached {
    /// Distinct per opened instance: single-flight keys and the block cache use it, so a
    /// replaced cache file never receives chunks meant for its successor.
    pub(crate) id: u64,
    pub(crate) root: RootName,
    pub(crate) rel: DatasetPath,
    pub(crate) etag: String,
    pub(crate) kind: Kind,
    /// Immutable for a version: read without any lock.
    pub(crate) meta: Meta,
    pub(crate) layout: ChunkLayout,
    /// The file, its locking inside (every call blocks: blocking pool only, but for
    /// [`SharedCache::try_read`]).
    pub(crate) file: SharedCache,
    /// What replies for this version are checked against (unset: its publisher sent none,
    /// or a cache kept without them that has not adopted its publisher's yet).
    pub(crate) digests: std::sync::OnceLock<Checked>,
}

impl Cached {
    pub(crate) fn new(
        root: &RootName,
        rel: &DatasetPath,
        etag: &str,
        kind: Kind,
        file: CacheFile,
        digests: Option<Checked>,
    ) -> Self {
        Self {
            id: NEXT_ID.fetch_add(1, Ordering::Relaxed),
            root: root.clone(),
            rel: rel.clone(),
            etag: etag.to_owned(),
            kind,
            meta: file.meta().clone(),
            layout: file.layout().clone(),
            file: SharedCache::new(file),
            digests: digests.map(std::sync::OnceLock::from).unwrap_or_default(),
        }
    }
}
