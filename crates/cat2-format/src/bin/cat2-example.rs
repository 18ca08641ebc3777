//! Writes the example root of spec §5: `cargo run -p cat2-format --bin cat2-example -- DIR`.

use std::path::PathBuf;
use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: cat2-example DIR");
        return ExitCode::from(2);
    };
    match cat2_format::example::write_root_example(&dir) {
        Ok(()) => {
            println!("wrote the example root to {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}
