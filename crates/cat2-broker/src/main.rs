//! `cat2bro`: the cat2 broker.

use cat2_client::service::{self, CommonArgs, Service};
use clap::Parser;

/// The registry of cat2 roots, on NATS.
#[derive(Debug, Parser)]
#[command(name = "cat2bro", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// HTTP address for `GET /api/roots` [default: `http`, else localhost:8000].
    #[arg(long)]
    http: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let svc = Service::start("broker", None, a.common)?;
    let http = a
        .http
        .or(svc.get("http")?)
        .unwrap_or_else(|| "localhost:8000".into());
    let cfg = cat2_broker::Config {
        statedir: svc.statedir("bro")?,
        ..Default::default()
    };
    let nats = svc.connect("cat2bro").await?;
    let listener = service::bind(&http).await.map_err(anyhow::Error::msg)?;
    service::announce_address(&http, &listener);
    cat2_broker::run(cfg, nats, Some(listener), service::shutdown_signal()).await?;
    Ok(())
}
