//! `cat2export ROOT_DIR HDF5_FILE`: converts a root directory into a new HDF5 file.

use clap::Parser;

/// Converts ROOT_DIR into the new HDF5_FILE (which must not exist): directories become
/// groups, `.b2nd` arrays Blosc2-filtered datasets (hdf5plugin reads them; chunks copied as
/// they are), super-chunks and plain files `uint8` datasets, vlmeta attributes.
#[derive(Debug, Parser)]
#[command(name = "cat2export", version)]
struct Args {
    /// The root directory to read.
    root_dir: std::path::PathBuf,
    /// The HDF5 file to create.
    hdf5_file: std::path::PathBuf,
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
    cat2_hdf5::tool_main("cat2export", &a.hdf5_file, |progress| {
        cat2_hdf5::export::export(&a.root_dir, &a.hdf5_file, progress)
    })
}
