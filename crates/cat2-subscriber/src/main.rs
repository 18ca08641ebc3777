//! `cat2sub`: the cat2 subscriber.

use std::time::Duration;

use cat2_client::service::{self, CommonArgs, Service};
use cat2_client::{parse_seconds, parse_size};
use clap::Parser;

/// Follows cat2 roots, caches their chunks on demand, serves Caterva2's REST API.
#[derive(Debug, Parser)]
#[command(name = "cat2sub", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Instance id (selects `[subscriber.ID]` and the state directory).
    #[arg(long)]
    id: Option<String>,
    /// HTTP address of the REST API [default: `http`, else localhost:8002].
    #[arg(long)]
    http: Option<String>,
    /// Public URL base for download links, e.g. http://data.example.org:8002/
    /// [default: `url`, else http://<http>/].
    #[arg(long)]
    url: Option<String>,
    /// Seconds a request may wait for upstream, above 0 [default: `timeout`, else 10].
    #[arg(long, value_parser = parse_timeout)]
    timeout: Option<Duration>,
    /// Small reads of uncached chunks also fetch those chunks whole into the cache, in the
    /// background (else they fetch only the blocks they need; larger reads and downloads
    /// always cache whole chunks) [default: `prefetch_chunks`, else false].
    #[arg(long)]
    prefetch_chunks: bool,
    /// Memory that results in flight may take, e.g. 256MiB: slices (about twice their size)
    /// and file transfers; past it requests wait, then get 503 with Retry-After
    /// [default: `memory_budget`, else 256MiB].
    #[arg(long, value_parser = parse_size)]
    memory_budget: Option<u64>,
    /// Chunk bytes asked of publishers and not received yet, e.g. 64MiB. On a slow link
    /// everything asked queues on it, so small reads wait behind what bulk transfers asked
    /// for: about twice bandwidth × RTT keeps the link full and the queue short (100 Mbit/s
    /// at 50 ms: 2MiB) [default: `fetch_buffer`, else 64MiB].
    #[arg(long, value_parser = parse_size)]
    fetch_buffer: Option<u64>,
    /// REST clients must present one of these tokens (`Authorization: Bearer TOKEN`, or the
    /// cookie `c2subauth=TOKEN`), given as SHA-256 digests, `sha256:<hex>[, …]`
    /// (`printf %s TOKEN | sha256sum`) [default: `auth_tokens`, else no authentication].
    #[arg(long, value_parser = cat2_subscriber::Tokens::parse)]
    auth_tokens: Option<cat2_subscriber::Tokens>,
    /// Block bytes one web-client view may decode, e.g. 64MiB: bigger views are decimated,
    /// skipping whole blocks, and offer a "full resolution" link (8 times as much)
    /// [default: `web_decode_budget`, else 64MiB].
    #[arg(long, value_parser = parse_size)]
    web_decode_budget: Option<u64>,
}

/// A request timeout: a number of seconds above 0, at most a day.
fn parse_timeout(v: &str) -> Result<Duration, String> {
    parse_seconds(v)
        .ok()
        .filter(|d| !d.is_zero())
        .ok_or_else(|| "expected a number of seconds above 0 and at most 86400".to_owned())
}

fn parse_bool(v: &str) -> Result<bool, String> {
    v.parse().map_err(|_| "expected true or false".to_owned())
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let svc = Service::start("subscriber", a.id, a.common)?;
    let defaults = cat2_subscriber::Config::default();
    let mut cfg = cat2_subscriber::Config {
        http: a
            .http
            .or(svc.get("http")?)
            .unwrap_or_else(|| "localhost:8002".into()),
        statedir: svc.statedir("sub")?,
        id: svc.id().unwrap_or("default").to_owned(),
        url: a.url.or(svc.get("url")?),
        timeout: svc
            .value(a.timeout, "timeout", parse_timeout)?
            .unwrap_or(defaults.timeout),
        prefetch_chunks: svc
            .value(
                a.prefetch_chunks.then_some(true),
                "prefetch_chunks",
                parse_bool,
            )?
            .unwrap_or(false),
        memory_budget: svc
            .value(a.memory_budget, "memory_budget", parse_size)?
            .unwrap_or(defaults.memory_budget),
        fetch_buffer_bytes: svc
            .value(a.fetch_buffer, "fetch_buffer", parse_size)?
            .unwrap_or(defaults.fetch_buffer_bytes)
            .max(1 << 20),
        auth_tokens: svc
            .value(a.auth_tokens, "auth_tokens", cat2_subscriber::Tokens::parse)?
            .unwrap_or_default(),
        web_decode_budget: svc
            .value(a.web_decode_budget, "web_decode_budget", parse_size)?
            .unwrap_or(defaults.web_decode_budget)
            .max(1 << 20),
        ..defaults
    };
    let listener = service::bind(&cfg.http).await.map_err(anyhow::Error::msg)?;
    cfg.http = service::announce_address(&cfg.http, &listener);
    let nats = svc.connect(&format!("cat2sub {}", cfg.id)).await?;
    cat2_subscriber::run(cfg, nats, listener, service::shutdown_signal()).await?;
    Ok(())
}
