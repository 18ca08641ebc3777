//! One version of an HDF5 file: the library handle, a descriptor for positioned reads that
//! bypass the library (raw Blosc2 chunks, contiguous data), and the file's identity when it
//! was opened, so that reads made after it changed are refused instead of mixing versions.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::RwLock;

use cat2_format::FormatError;

/// What identifies a file's content from outside: device, inode, size, times (nanoseconds).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileStat {
    dev: u64,
    ino: u64,
    size: u64,
    mtime_ns: i128,
    ctime_ns: i128,
}

impl FileStat {
    /// The stat of the file at `path` (following links).
    ///
    /// # Errors
    /// The I/O error.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let m = std::fs::metadata(path)?;
        Ok(Self::from_meta(&m))
    }

    fn from_meta(m: &std::fs::Metadata) -> Self {
        Self {
            dev: m.dev(),
            ino: m.ino(),
            size: m.size(),
            mtime_ns: i128::from(m.mtime()) * 1_000_000_000 + i128::from(m.mtime_nsec()),
            ctime_ns: i128::from(m.ctime()) * 1_000_000_000 + i128::from(m.ctime_nsec()),
        }
    }

    /// Whether `other` is the same file (same inode), whatever its content.
    pub fn same_inode(&self, other: &FileStat) -> bool {
        self.dev == other.dev && self.ino == other.ino
    }
}

/// An open version of an HDF5 file, shared by its datasets.
#[derive(Debug)]
pub struct H5File {
    path: PathBuf,
    stat: FileStat,
    /// `None` once retired: libhdf5 shares one open file per inode, so a file changed in place
    /// can only be seen anew once every handle of the old version is closed.
    h5: RwLock<Option<hdf5::File>>,
    raw: std::fs::File,
    /// Added to libhdf5's chunk addresses to get file offsets (see
    /// [`crate::ffi::chunk_address_base`]).
    chunk_base: u64,
}

impl H5File {
    /// Opens `path` read-only.
    ///
    /// # Errors
    /// [`FormatError::Io`] when it cannot be read, [`FormatError::BadMetadata`] when libhdf5
    /// does not open it.
    pub fn open(path: &Path) -> Result<Self, FormatError> {
        let raw = std::fs::File::open(path).map_err(FormatError::from_io(path))?;
        let stat = FileStat::from_meta(&raw.metadata().map_err(FormatError::from_io(path))?);
        // Without libhdf5's file lock: a reader's shared lock would keep writers (h5py's "r+")
        // out of the file it serves; changes are found by their etags instead.
        let h5 = hdf5::File::with_options()
            .with_fapl(|p| p.file_locking(false))
            .open(path)
            .map_err(|e| FormatError::BadMetadata {
                path: path.into(),
                reason: format!("not an HDF5 file libhdf5 can open: {e}"),
            })?;
        let chunk_base =
            crate::ffi::chunk_address_base(h5.id()).map_err(|e| FormatError::BadMetadata {
                path: path.into(),
                reason: e.0,
            })?;
        Ok(Self {
            path: path.into(),
            stat,
            h5: RwLock::new(Some(h5)),
            raw,
            chunk_base,
        })
    }

    /// The file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file offset of a chunk libhdf5 places at `addr`.
    pub(crate) fn chunk_offset(&self, addr: u64) -> u64 {
        addr.saturating_add(self.chunk_base)
    }

    /// The file's identity when it was opened.
    pub fn stat(&self) -> FileStat {
        self.stat
    }

    /// Closes the library handle: later reads of this version fail with
    /// [`FormatError::Changed`]. Waits for reads in progress.
    pub fn retire(&self) {
        let old = self
            .h5
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .take();
        drop(old);
    }

    /// Runs `f` with the library handle, then checks that the file did not change meanwhile
    /// (a file rewritten in place could otherwise give bytes of two versions).
    pub(crate) fn with<T>(
        &self,
        f: impl FnOnce(&hdf5::File) -> Result<T, FormatError>,
    ) -> Result<T, FormatError> {
        let out = {
            let guard = self
                .h5
                .read()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let h5 = guard.as_ref().ok_or_else(|| self.changed())?;
            f(h5)?
        };
        self.check_unchanged()?;
        Ok(out)
    }

    /// Positioned read of the file's raw bytes (no library call), checked as [`H5File::with`].
    pub(crate) fn pread(&self, buf: &mut [u8], at: u64) -> Result<(), FormatError> {
        use std::os::unix::fs::FileExt;
        self.raw
            .read_exact_at(buf, at)
            .map_err(FormatError::from_io(&self.path))?;
        self.check_unchanged()
    }

    /// A second descriptor of this version (for frames embedded in it).
    pub(crate) fn raw_clone(&self) -> Result<std::fs::File, FormatError> {
        self.raw
            .try_clone()
            .map_err(FormatError::from_io(&self.path))
    }

    /// The open inode's size and modification time are what they were at open. (A file
    /// replaced by a rename leaves this inode intact: its old version still reads right.)
    pub(crate) fn check_unchanged(&self) -> Result<(), FormatError> {
        match self.raw.metadata() {
            Ok(m) => {
                let now = FileStat::from_meta(&m);
                if now.size == self.stat.size && now.mtime_ns == self.stat.mtime_ns {
                    Ok(())
                } else {
                    Err(self.changed())
                }
            }
            Err(_) => Err(self.changed()),
        }
    }

    fn changed(&self) -> FormatError {
        FormatError::Changed {
            path: self.path.clone(),
        }
    }
}
