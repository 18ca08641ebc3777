//! HDF5 files as Blosc2 datasets: the one mapping between the two that the publisher
//! (`cat2pub NAME FILE.h5`), `cat2import` and `cat2export` share (spec §7, with 0.2.0's weak
//! points fixed).
//!
//! # Layout
//! - `walk`: which datasets a file holds, in 0.2.0's order; `types`: HDF5 types as NumPy
//!   dtypes; `attrs`: attributes as vlmeta, packed as 0.2.0 packs them;
//! - `dataset`: one dataset's metadata and chunks made on demand; `etag`: content etags;
//! - `file`: one version of a file ([`H5File`]); [`open_root`]: a file's datasets;
//! - `import` / `export` / `example`: the tools and the example file;
//! - `ffi`: every `unsafe` libhdf5 call, serialised by `hdf5-metno`'s lock.
//!
//! Everything here blocks (libhdf5, file I/O, compression): async callers use
//! `spawn_blocking`. libhdf5 calls are serialised process-wide; chunk compression and raw
//! Blosc2 chunk reads run outside that lock.

mod attrs;
mod dataset;
mod etag;
pub mod example;
pub mod export;
mod ffi;
mod file;
pub mod import;
mod pool;
mod types;
mod walk;
mod write;

use std::path::Path;
use std::sync::Arc;

use cat2_format::{Dataset, FormatError};

pub use file::{FileStat, H5File};

/// What a conversion (`cat2import`, `cat2export`) did.
#[derive(Debug, Default)]
pub struct Converted {
    /// Datasets written.
    pub written: usize,
    /// Entries that failed, named, with the reason.
    pub failed: Vec<(String, String)>,
}

/// The error for a conversion target that exists already.
pub(crate) fn must_not_exist(path: &Path, what: &str) -> Result<(), FormatError> {
    if path.exists() {
        return Err(FormatError::Io {
            path: path.into(),
            source: std::io::Error::new(
                std::io::ErrorKind::AlreadyExists,
                format!("the target {what} must not exist"),
            ),
        });
    }
    Ok(())
}

/// The `main` of a conversion tool: runs `convert` with a progress bar on stderr (in chunks),
/// then reports on stderr; failure (of the whole or of any entry) is a non-zero exit.
pub fn tool_main(
    tool: &str,
    target: &Path,
    convert: impl FnOnce(&mut dyn FnMut(u64, u64)) -> Result<Converted, FormatError>,
) -> std::process::ExitCode {
    let bar =
        indicatif::ProgressBar::with_draw_target(None, indicatif::ProgressDrawTarget::stderr());
    let style = indicatif::ProgressStyle::with_template("{bar:40} {pos}/{len} chunks ({eta} left)")
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar());
    bar.set_style(style);
    let result = convert(&mut |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match result {
        Ok(r) if r.failed.is_empty() => {
            eprintln!(
                "{tool}: {} datasets written to {}",
                r.written,
                target.display()
            );
            std::process::ExitCode::SUCCESS
        }
        Ok(r) => {
            for (name, why) in &r.failed {
                eprintln!("{tool}: {name}: {why}");
            }
            eprintln!(
                "{tool}: {} datasets written, {} failed",
                r.written,
                r.failed.len()
            );
            std::process::ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("{tool}: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}

/// Whether libhdf5 recognises the file at `path` as HDF5, whatever its extension.
pub fn is_hdf5(path: &Path) -> bool {
    ffi::is_hdf5(path)
}

/// Which objects of an HDF5 file a root lists.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Listing {
    /// Everything cat2 can represent: also datasets and groups reached through soft links
    /// (under the link's path), and compound types as NumPy structured dtypes.
    #[default]
    Full,
    /// Exactly what Caterva2 0.2.0 lists: objects reached through hard links, no compound
    /// types other than complex numbers (its own test suite checks this).
    Caterva2,
}

impl std::str::FromStr for Listing {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "full" => Ok(Listing::Full),
            "caterva2-0.2" => Ok(Listing::Caterva2),
            _ => Err(format!(
                "unknown HDF5 listing {s:?} (expected \"full\" or \"caterva2-0.2\")"
            )),
        }
    }
}

/// One dataset of an HDF5 root.
#[derive(Debug)]
pub struct RootDataset {
    /// Its path in the root: `<group path>/<name>.b2nd`.
    pub path: String,
    /// Its content etag.
    pub etag: String,
    /// The dataset, making its chunks from the file.
    pub dataset: Dataset,
}

/// One version of an HDF5 file opened as a root.
#[derive(Debug)]
pub struct Root {
    /// The open file (retire it before opening the same inode again).
    pub file: Arc<H5File>,
    /// Every dataset that can be represented, in 0.2.0's order.
    pub datasets: Vec<RootDataset>,
    /// Every group (as `a/b`), in walk order: directories of an imported root.
    pub groups: Vec<String>,
}

/// Opens the HDF5 file at `path` as a root: every dataset that can be represented (as
/// `listing` says), each described and given a content etag; the others are skipped with one
/// log line each.
///
/// # Errors
/// When the file cannot be opened by libhdf5.
pub fn open_root(path: &Path, listing: Listing) -> Result<Root, FormatError> {
    hdf5::silence_errors(true);
    let file = Arc::new(H5File::open(path)?);
    let names = file.with(|h5| {
        let root = h5.group("/").map_err(|e| FormatError::BadMetadata {
            path: path.into(),
            reason: e.to_string(),
        })?;
        Ok(walk::tree(&root, listing))
    })?;
    let mut datasets = Vec::new();
    for walk::Found { listed: name, hard } in names.datasets {
        let rel = format!("{name}.b2nd");
        if let Err(e) = cat2_proto::DatasetPath::new(&rel) {
            tracing::warn!(dataset = %name, reason = %e, "skipping HDF5 dataset: its name cannot be a dataset path");
            continue;
        }
        match dataset::describe(&file, &hard, &name, listing) {
            Ok(d) => {
                let label = path.join(&name);
                let dataset = Dataset::from_source(label, d.meta, Box::new(d.source))?;
                datasets.push(RootDataset {
                    path: rel,
                    etag: d.etag,
                    dataset,
                });
            }
            Err(FormatError::BadMetadata { reason, .. }) => {
                tracing::warn!(dataset = %name, %reason, "skipping HDF5 dataset that cannot be represented");
            }
            // The file changed while it was read: the whole version is void.
            Err(e @ FormatError::Changed { .. }) => return Err(e),
            // One damaged dataset does not take the others down.
            Err(e) => {
                tracing::warn!(dataset = %name, error = %e, "skipping HDF5 dataset that cannot be read")
            }
        }
    }
    Ok(Root {
        file,
        datasets,
        groups: names.groups,
    })
}
