//! `cat2bro`: the cat2 broker.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// The registry of cat2 roots, on NATS.
#[derive(Debug, Parser)]
#[command(name = "cat2bro", version)]
struct Args {
    /// Configuration file (sections `[broker]` and `[nats]`).
    #[arg(long, default_value = "caterva2.toml")]
    conf: PathBuf,
    /// NATS server URL [default: `[nats] url`, else nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL")]
    nats: Option<String>,
    /// HTTP address for `GET /api/roots` [default: `[broker] http`, else localhost:8000].
    #[arg(long)]
    http: Option<String>,
    /// State directory [default: `[broker] statedir`, else _caterva2/bro].
    #[arg(long)]
    statedir: Option<PathBuf>,
    /// Log level (error, warn, info, debug, trace) [default: `[broker] loglevel`, else warn].
    #[arg(long)]
    loglevel: Option<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let explicit = std::env::args().any(|a| a == "--conf" || a.starts_with("--conf="));
    let conf = cat2_client::Conf::load(explicit.then_some(args.conf.as_path()))?;
    let level = args
        .loglevel
        .or(conf.get("broker", "loglevel")?)
        .unwrap_or_else(|| "warn".into());
    cat2_client::service::init_tracing(&level);
    let http = args
        .http
        .or(conf.get("broker", "http")?)
        .unwrap_or_else(|| "localhost:8000".into());
    let statedir = args
        .statedir
        .or(conf.get("broker", "statedir")?.map(PathBuf::from));
    let nats_cfg = conf.nats(args.nats)?;
    let nats = nats_cfg
        .options("cat2bro")
        .await?
        .connect(nats_cfg.url.as_str())
        .await
        .context("nats")?;
    let listener = cat2_client::service::bind(&http)
        .await
        .map_err(anyhow::Error::msg)?;
    cat2_client::service::announce_address(&http, &listener);
    let mut cfg = cat2_broker::Config::default();
    if let Some(dir) = statedir {
        cfg.statedir = dir;
    }
    cat2_broker::run(
        cfg,
        nats,
        Some(listener),
        cat2_client::service::shutdown_signal(),
    )
    .await?;
    Ok(())
}
