//! `cat2import HDF5_FILE ROOT_DIR`: converts an HDF5 file into a new root directory of
//! Blosc2 datasets (groups as directories, datasets as `.b2nd` files).

use clap::Parser;

/// Converts the HDF5 file into the new ROOT_DIR (which must not exist): groups become
/// directories, datasets `.b2nd` arrays (Blosc2 chunks copied as they are), attributes vlmeta.
/// Datasets that cannot be represented are skipped with a warning.
#[derive(Debug, Parser)]
#[command(name = "cat2import", version)]
struct Args {
    /// The HDF5 file to read.
    hdf5_file: std::path::PathBuf,
    /// The root directory to create.
    root_dir: std::path::PathBuf,
    /// What to convert: `full` (also soft-linked objects, copied under each link's name, and
    /// compound types) or `caterva2-0.2` (what Caterva2 0.2.0 converts).
    #[arg(long, default_value = "full")]
    listing: cat2_hdf5::Listing,
    /// Log level.
    #[arg(long, default_value = "warn")]
    loglevel: String,
}

fn main() -> std::process::ExitCode {
    let a = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(a.loglevel.as_str())
        .with_writer(std::io::stderr)
        .init();
    cat2_hdf5::tool_main("cat2import", &a.root_dir, |progress| {
        cat2_hdf5::import::import(&a.hdf5_file, &a.root_dir, a.listing, progress)
    })
}
