//! A root that is one HDF5 file (spec §7.1): its datasets as `.b2nd` arrays, made chunk by
//! chunk from the file. When the file changes, it is opened anew once it has stayed unchanged
//! for one rescan (a writer may still be at work), and only the datasets whose content etag
//! differs are announced (0.2.0 announced them all).

use std::path::PathBuf;
use std::sync::Arc;

use cat2_hdf5::{FileStat, H5File};
use cat2_proto::msg::Change;

use crate::state::{Datasets, Entry};

/// The watched file and its open version.
#[derive(Debug)]
pub(crate) struct H5Watch {
    path: PathBuf,
    listing: cat2_hdf5::Listing,
    current: Option<Arc<H5File>>,
    /// A new stat seen at the last rescan, opened if it is still the same at the next.
    pending: Option<FileStat>,
    /// The stat whose open failed (reported once).
    failed: Option<FileStat>,
    /// Whether a version was ever opened (later changes wait one rescan to settle).
    opened: bool,
}

impl H5Watch {
    pub(crate) fn new(path: PathBuf, listing: cat2_hdf5::Listing) -> Self {
        Self {
            path,
            listing,
            current: None,
            pending: None,
            failed: None,
            opened: false,
        }
    }

    /// Brings `datasets` up to date with the file (blocking). Returns the changes to announce.
    pub(crate) fn refresh(&mut self, datasets: &Datasets) -> Vec<Change> {
        let stat = match FileStat::of(&self.path) {
            Ok(s) => s,
            Err(e) => {
                if self.current.take().is_some() {
                    tracing::warn!(file = %self.path.display(), error = %e, "HDF5 root is gone: no datasets");
                }
                return datasets.replace_all(Vec::new());
            }
        };
        if self.current.as_ref().is_some_and(|c| c.stat() == stat) || self.failed == Some(stat) {
            return Vec::new();
        }
        if self.opened && self.pending != Some(stat) {
            self.pending = Some(stat);
            return Vec::new();
        }
        self.pending = None;
        // libhdf5 shares one open file per inode: a file changed in place is seen anew only
        // once the old version is closed (its reads then fail as stale); a file replaced by a
        // rename keeps its old version readable until the new one is in place.
        let same_inode = self
            .current
            .as_ref()
            .is_some_and(|c| c.stat().same_inode(&stat));
        if same_inode {
            if let Some(old) = self.current.take() {
                old.retire();
            }
        }
        match cat2_hdf5::open_root(&self.path, self.listing) {
            Ok(root) => {
                self.failed = None;
                self.opened = true;
                let entries = root
                    .datasets
                    .into_iter()
                    .map(|d| {
                        let entry = Entry {
                            etag: d.etag,
                            ds: Arc::new(d.dataset),
                            // Chunks are made when asked for: nothing to digest at open.
                            digests: None,
                        };
                        (d.path, Arc::new(entry))
                    })
                    .collect();
                let changes = datasets.replace_all(entries);
                if let Some(old) = self.current.replace(root.file) {
                    old.retire();
                }
                changes
            }
            Err(cat2_format::FormatError::Changed { .. }) => {
                // Written to while it was read: try again at the next rescan.
                self.pending = Some(stat);
                Vec::new()
            }
            Err(e) => {
                tracing::warn!(file = %self.path.display(), error = %e, "cannot open the HDF5 root; will retry when it changes");
                self.failed = Some(stat);
                if self.current.is_none() {
                    datasets.replace_all(Vec::new())
                } else {
                    Vec::new()
                }
            }
        }
    }
}
