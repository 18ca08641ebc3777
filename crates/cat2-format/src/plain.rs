//! Plain files exposed as a super-chunk of bytes (typesize 1), compressed chunk by chunk on the
//! fly, so that files of any size are served in bounded memory. Caterva2 compressed a whole
//! file in one call and failed beyond 16 MiB; here only one chunk is in memory at a time.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::FormatError;
use crate::chunk;
use cat2_proto::meta::{CParams, Kind, Meta};

/// Bytes per chunk of a plain file.
pub const PLAIN_CHUNKSIZE: usize = 1 << 20;

/// Compression level of plain-file chunks.
const PLAIN_CLEVEL: u8 = 5;

/// An open plain file.
pub(crate) struct PlainFile {
    path: PathBuf,
    file: File,
    meta: Meta,
}

/// The cparams plain files are compressed with (ZSTD, shuffle, typesize 1, automatic blocks).
pub fn plain_cparams() -> CParams {
    CParams {
        clevel: PLAIN_CLEVEL,
        ..crate::ffi::default_cparams(1)
    }
}

impl PlainFile {
    /// The open file (its metadata tells whether it changed since it was opened).
    pub(crate) fn file(&self) -> &File {
        &self.file
    }

    /// Opens `path` and computes its metadata, compressing every chunk once to know `cbytes`.
    pub(crate) fn open(path: &Path) -> Result<Self, FormatError> {
        let file = File::open(path).map_err(FormatError::io(path))?;
        let size = file.metadata().map_err(FormatError::io(path))?.len();
        if !file.metadata().map_err(FormatError::io(path))?.is_file() {
            return Err(FormatError::Io {
                path: path.into(),
                source: std::io::Error::other("not a regular file"),
            });
        }
        let nbytes = i64::try_from(size).map_err(|_| FormatError::TooLarge {
            bytes: size,
            what: "a file",
        })?;
        let nchunks = size.div_ceil(PLAIN_CHUNKSIZE as u64);
        let mut me = Self {
            path: path.into(),
            file,
            meta: Meta {
                kind: Kind::File,
                array: None,
                chunksize: PLAIN_CHUNKSIZE as i32,
                nbytes,
                cbytes: 0,
                nchunks: nchunks as i64,
                contiguous: true,
                cparams: plain_cparams(),
                metalayers: Vec::new(),
                vlmeta: Vec::new(),
            },
        };
        let mut cbytes = 0i64;
        for n in 0..nchunks {
            cbytes += me.chunk(n)?.len() as i64;
        }
        me.meta.cbytes = cbytes;
        Ok(me)
    }

    pub(crate) fn meta(&self) -> &Meta {
        &self.meta
    }

    /// Reads and compresses chunk `n`.
    pub(crate) fn chunk(&self, n: u64) -> Result<Vec<u8>, FormatError> {
        let start = n * PLAIN_CHUNKSIZE as u64;
        let len = (self.meta.nbytes as u64)
            .saturating_sub(start)
            .min(PLAIN_CHUNKSIZE as u64) as usize;
        let mut buf = vec![0u8; len];
        self.file
            .read_exact_at(&mut buf, start)
            .map_err(FormatError::io(&self.path))?;
        chunk::compress(&buf, 1, u32::from(PLAIN_CLEVEL))
    }
}
