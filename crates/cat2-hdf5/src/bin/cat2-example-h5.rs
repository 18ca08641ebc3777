//! `cat2-example-h5 FILE`: writes the example HDF5 root of Caterva2 (what
//! `python -m caterva2.services.hdf5root FILE` writes) with cat2's own writers.

use std::path::PathBuf;

/// Writes Caterva2's example HDF5 root.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// The new file (must not exist).
    file: PathBuf,
}

fn main() -> std::process::ExitCode {
    let a: Args = clap::Parser::parse();
    match cat2_hdf5::example::write_example(&a.file) {
        Ok(()) => {
            eprintln!("Created example HDF5 root: {}", a.file.display());
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cat2-example-h5: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
