//! `cat2cli`: command-line client of a cat2 subscriber. See the library docs.

use std::io::Write;
use std::process::ExitCode;

use cat2_cli::{Cli, CliError, log_filter, run};
use clap::Parser;

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    cat2_client::service::init_tracing(log_filter(&cli.loglevel));
    let mut out = std::io::stdout().lock();
    let result = match run(&cli, &mut out).await {
        Ok(()) => out.flush().map_err(CliError::Output),
        Err(e) => Err(e),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Error: {e}");
            ExitCode::FAILURE
        }
    }
}
