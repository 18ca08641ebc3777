//! The digests of each cached dataset version ([`Digests`], from its publisher's `info`):
//! every chunk and block reply is checked against them before it is stored or served
//! (`sub/fetch.rs`, `read.rs`), so a member of the queue group answering with other bytes
//! is caught and asked again, and nothing it sent is kept.
//!
//! They are kept beside the cache, under `digests/<root>/<rel>` in the state directory (not
//! in the cache directory, which stays fit to be published as a root), with the etag they
//! belong to, written before the cache file they guard, so a restarted subscriber checks
//! what it fetches as before. A cache made by a subscriber before digests (or from a
//! publisher that sends none) has none: its chunks are fetched unchecked, and said so once.

use std::io::Write;
use std::path::{Path, PathBuf};

use cat2_format::digest::{blocks_per_chunk, matches};
use cat2_proto::msg::Digests;
use cat2_proto::{DatasetPath, Meta, RootName};
use serde::{Deserialize, Serialize};

/// One version's digests, checked to fit its metadata.
#[derive(Debug)]
pub(crate) struct Checked {
    digests: Digests,
    blocks_per_chunk: u64,
}

impl Checked {
    /// `digests` when they fit `meta` (they came over the bus); `None` otherwise.
    pub(crate) fn new(digests: Digests, meta: &Meta) -> Option<Self> {
        let nchunks = u64::try_from(meta.nchunks).ok()?;
        let bpc = blocks_per_chunk(meta);
        digests.fits(nchunks, bpc).then_some(Self {
            digests,
            blocks_per_chunk: bpc,
        })
    }

    /// The digests as sent.
    pub(crate) fn digests(&self) -> &Digests {
        &self.digests
    }

    /// Whether `parts` are chunk `n` as its publisher digested it.
    pub(crate) fn chunk_ok<P: AsRef<[u8]>>(&self, n: u64, parts: &[P]) -> bool {
        self.digests.chunk(n).is_some_and(|d| matches(d, parts))
    }

    /// Whether block digests were sent (else blocks cannot be checked: fetch whole chunks).
    pub(crate) fn has_blocks(&self) -> bool {
        !self.digests.blocks.is_empty()
    }

    /// Whether `parts` are block `b` of chunk `n` as its publisher digested it.
    pub(crate) fn block_ok<P: AsRef<[u8]>>(&self, n: u64, b: u64, parts: &[P]) -> bool {
        self.digests
            .block(n, b, self.blocks_per_chunk)
            .is_some_and(|d| matches(d, parts))
    }
}

/// The file kept for one version.
#[derive(Debug, Serialize, Deserialize)]
struct Sidecar {
    etag: String,
    digests: Digests,
}

/// Where the digests of `root/rel` are kept.
pub(crate) fn path(statedir: &Path, root: &RootName, rel: &DatasetPath) -> PathBuf {
    let mut p = statedir
        .join("digests")
        .join(root.as_str())
        .join(rel.as_str());
    p.as_mut_os_string().push(".c2dig");
    p
}

/// Keeps `digests` of version `etag` at `path`, durably (blocking); `None` removes what was
/// kept for an older version.
pub(crate) fn save(path: &Path, etag: &str, digests: Option<&Digests>) -> std::io::Result<()> {
    let Some(digests) = digests else {
        return match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        };
    };
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let bytes = cat2_proto::encode(&Sidecar {
        etag: etag.to_owned(),
        digests: digests.clone(),
    });
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(&bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}

/// The digests kept at `path` for version `etag` of a dataset of `meta` (blocking); `None`
/// when there are none, they are another version's, or they do not fit.
pub(crate) fn load(path: &Path, etag: &str, meta: &Meta) -> Option<Checked> {
    let bytes = std::fs::read(path).ok()?;
    let kept: Sidecar = cat2_proto::decode("digests file", &bytes).ok()?;
    if kept.etag != etag {
        return None;
    }
    Checked::new(kept.digests, meta)
}
