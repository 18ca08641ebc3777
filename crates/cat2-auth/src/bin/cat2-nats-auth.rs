//! `cat2-nats-auth --out DIR [--publisher ROOT]… [--subscriber ID]… [--monitor]`: NATS users
//! for a deployment (see the `cat2_auth` crate): `DIR/auth.conf` for the server, and one
//! `DIR/<user>.toml` per service (`bro`, `pub-ROOT`, `sub-ID`, `monitor`) to pass as `--conf`.

use std::path::PathBuf;
use std::process::ExitCode;

use cat2_auth::Role;

/// Generates NATS users with least-privilege permissions for cat2's services.
#[derive(clap::Parser)]
#[command(version)]
struct Args {
    /// New directory for the files (never overwritten).
    #[arg(long)]
    out: PathBuf,
    /// A root served by publishers (repeat; replicas of a root share its user).
    #[arg(long = "publisher", value_name = "ROOT")]
    publishers: Vec<String>,
    /// A subscriber's instance id (repeat; `default` is `cat2sub` without `--id`).
    #[arg(long = "subscriber", value_name = "ID")]
    subscribers: Vec<String>,
    /// Also a user for monitoring tools (NATS service discovery only).
    #[arg(long)]
    monitor: bool,
    /// bcrypt cost of the hashes in auth.conf (nats-server checks one per connection).
    #[arg(long, default_value_t = 11)]
    cost: u32,
}

fn main() -> ExitCode {
    let a: Args = clap::Parser::parse();
    let mut roles = vec![Role::Broker];
    for r in &a.publishers {
        match cat2_proto::RootName::new(r) {
            Ok(name) => roles.push(Role::Publisher(name)),
            Err(e) => {
                eprintln!("cat2-nats-auth: --publisher {r:?}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    for id in &a.subscribers {
        if id.is_empty() || id.contains(['.', '*', '>', ' ', '/']) {
            eprintln!("cat2-nats-auth: --subscriber {id:?}: not a subscriber id");
            return ExitCode::FAILURE;
        }
        roles.push(Role::Subscriber(id.clone()));
    }
    if a.monitor {
        roles.push(Role::Monitor);
    }
    match cat2_auth::generate(&a.out, &roles, a.cost) {
        Ok(files) => {
            for f in files {
                println!("{}", f.display());
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("cat2-nats-auth: {e:#}");
            ExitCode::FAILURE
        }
    }
}
