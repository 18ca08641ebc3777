//! `cat2export ROOT_DIR HDF5_FILE`: converts a root directory into a new HDF5 file.

use std::process::ExitCode;

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

fn main() -> ExitCode {
    let a = Args::parse();
    tracing_subscriber::fmt()
        .with_env_filter(a.loglevel.as_str())
        .with_writer(std::io::stderr)
        .init();
    let bar = cat2_hdf5::progress_bar("chunks");
    let result = cat2_hdf5::export::export(&a.root_dir, &a.hdf5_file, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match result {
        Ok(r) if r.failed.is_empty() => {
            eprintln!(
                "cat2export: {} datasets written to {}",
                r.written,
                a.hdf5_file.display()
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            for (name, why) in &r.failed {
                eprintln!("cat2export: {name}: {why}");
            }
            eprintln!(
                "cat2export: {} datasets written, {} failed",
                r.written,
                r.failed.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cat2export: {e}");
            ExitCode::FAILURE
        }
    }
}
