//! `cat2import HDF5_FILE ROOT_DIR`: converts an HDF5 file into a new root directory of
//! Blosc2 datasets (groups as directories, datasets as `.b2nd` files).

use std::process::ExitCode;

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
    let result = cat2_hdf5::import::import(&a.hdf5_file, &a.root_dir, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    match result {
        Ok(r) if r.failed.is_empty() => {
            eprintln!(
                "cat2import: {} datasets written to {}",
                r.written,
                a.root_dir.display()
            );
            ExitCode::SUCCESS
        }
        Ok(r) => {
            for (name, why) in &r.failed {
                eprintln!("cat2import: {name}: {why}");
            }
            eprintln!(
                "cat2import: {} datasets written, {} failed",
                r.written,
                r.failed.len()
            );
            ExitCode::FAILURE
        }
        Err(e) => {
            eprintln!("cat2import: {e}");
            ExitCode::FAILURE
        }
    }
}
