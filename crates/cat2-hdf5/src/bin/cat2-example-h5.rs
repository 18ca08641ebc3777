//! `cat2-example-h5 FILE`: writes the example HDF5 root of Caterva2 (what
//! `python -m caterva2.services.hdf5root FILE` writes) with cat2's own writers.

fn main() -> std::process::ExitCode {
    let args: Vec<String> = std::env::args().collect();
    let [_, path] = args.as_slice() else {
        eprintln!("usage: cat2-example-h5 FILE (FILE must not exist)");
        return std::process::ExitCode::from(2);
    };
    match cat2_hdf5::example::write_example(std::path::Path::new(path)) {
        Ok(()) => {
            eprintln!("Created example HDF5 root: {path}");
            std::process::ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cat2-example-h5: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
