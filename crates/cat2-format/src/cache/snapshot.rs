//! Reading a complete cache file whole while it may still change (a chunk that fails to
//! decode is dropped and fetched again): reads stop with [`FormatError::Changed`] instead of
//! mixing two states of the file.

use std::os::unix::fs::{FileExt, MetadataExt};

use super::CacheFile;
use crate::FormatError;

/// A complete, flushed cache file as it stands on disk ([`CacheFile::snapshot`]): read it
/// whole with [`CacheFile::read_snapshot_at`], which fails if the file changed since.
#[derive(Debug, Clone, Copy)]
pub struct Snapshot {
    generation: u64,
    len: u64,
    ino: u64,
    fill: u64,
}

impl Snapshot {
    /// The file's length in bytes.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// Whether the file is empty (never: a frame has a header).
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Names these bytes among the file's states, for a strong HTTP entity tag: its inode
    /// and length, and a hash of where each chunk lies (the chunk index) with the time of
    /// the last write. Inode and length alone named two contents when a cache was made
    /// again (inodes are reused) and filled in another order: same length, other bytes.
    /// For one dataset version, the chunk index fixes the bytes, as each chunk's bytes are
    /// the publisher's.
    pub fn identity(&self) -> (u64, u64, u64) {
        (self.ino, self.len, self.fill)
    }
}

impl CacheFile {
    /// Flushes, then, when every chunk is filled, the file's state on disk for reading it
    /// whole.
    ///
    /// # Errors
    /// As [`CacheFile::flush`].
    pub fn snapshot(&mut self) -> Result<Option<Snapshot>, FormatError> {
        self.flush()?;
        if !self.is_complete() {
            return Ok(None);
        }
        let f = &self.frame;
        let md = f.file.metadata().map_err(FormatError::io(&f.path))?;
        let mut h = xxhash_rust::xxh3::Xxh3::new();
        for o in &f.offsets {
            h.update(&o.to_le_bytes());
        }
        h.update(&md.mtime().to_le_bytes());
        h.update(&md.mtime_nsec().to_le_bytes());
        Ok(Some(Snapshot {
            generation: self.generation,
            len: md.len(),
            ino: md.ino(),
            fill: h.digest(),
        }))
    }

    /// Reads `buf.len()` bytes at `at` of the file as it was at `snap`.
    ///
    /// # Errors
    /// [`FormatError::Changed`] when the file changed since `snap` (the bytes read would mix
    /// two states); I/O errors.
    pub fn read_snapshot_at(
        &self,
        snap: &Snapshot,
        buf: &mut [u8],
        at: u64,
    ) -> Result<(), FormatError> {
        let f = &self.frame;
        if self.dirty || self.generation != snap.generation {
            return Err(FormatError::Changed {
                path: f.path.clone(),
            });
        }
        f.file
            .read_exact_at(buf, at)
            .map_err(FormatError::io(&f.path))
    }
}
