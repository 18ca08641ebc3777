//! `cat2pub`: serves one root (a directory, or an HDF5 file) on NATS.

use std::path::PathBuf;

use anyhow::Context;
use cat2_client::service::{self, CommonArgs, Service};
use cat2_client::{parse_count, parse_seconds, parse_size};
use clap::Parser;

/// Serves a root (a directory, or an HDF5 file) to cat2 subscribers, through NATS.
#[derive(Debug, Parser)]
#[command(name = "cat2pub", version)]
struct Args {
    #[command(flatten)]
    common: CommonArgs,
    /// Instance id (selects `[publisher.ID]` and the state directory).
    #[arg(long)]
    id: Option<String>,
    /// HTTP address of the liveness routes, `off` for none [default: `http`, else localhost:8001].
    #[arg(long)]
    http: Option<String>,
    /// Address of `/metrics` and `/healthz` alone, e.g. with `--http off` [default: `ops`,
    /// else none: they are served on `--http`].
    #[arg(long)]
    ops: Option<String>,
    /// What an HDF5 root lists: `full` (also soft-linked objects and compound types) or
    /// `caterva2-0.2` (exactly Caterva2 0.2.0's list) [default: `hdf5_listing`, else full].
    #[arg(long, value_parser = parse_listing)]
    hdf5_listing: Option<cat2_hdf5::Listing>,
    /// Most chunk requests served at once; more wait (`--queue-wait`), then are answered
    /// busy and asked again [default: `max_requests`, else 64].
    #[arg(long, value_parser = parse_count)]
    max_requests: Option<usize>,
    /// Most bytes read for replies not sent yet, e.g. 256MiB [default: `send_buffer`, else 256MiB].
    #[arg(long, value_parser = parse_size)]
    send_buffer: Option<u64>,
    /// Seconds a request may wait for a free slot [default: `queue_wait`, else 2].
    #[arg(long, value_parser = parse_seconds)]
    queue_wait: Option<std::time::Duration>,
    /// `on`: digest each version of a directory dataset when it is opened (one read of it),
    /// so subscribers check every chunk and block reply against it; `off` only where every
    /// member of the queue group is trusted [default: `digests`, else on].
    #[arg(long, value_parser = parse_on_off)]
    digests: Option<bool>,
    /// Root name [default: `name`].
    name: Option<String>,
    /// Root directory or HDF5 file [default: `root`, else data].
    root: Option<PathBuf>,
}

fn parse_listing(v: &str) -> Result<cat2_hdf5::Listing, String> {
    v.parse()
}

fn parse_on_off(v: &str) -> Result<bool, String> {
    match v {
        "on" | "true" => Ok(true),
        "off" | "false" => Ok(false),
        _ => Err(format!("{v:?}: say on or off")),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let svc = Service::start("publisher", a.id, a.common)?;
    let name = a
        .name
        .or(svc.get("name")?)
        .context("root name was not specified (NAME or [publisher] name)")?;
    let name = cat2_proto::RootName::new(&name)?;
    let root = a
        .root
        .or(svc.get("root")?.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let http = a
        .http
        .or(svc.get("http")?)
        .unwrap_or_else(|| "localhost:8001".into());
    let http = (http != "off" && !http.is_empty()).then_some(http);
    let mut cfg = cat2_publisher::Config::new(name, root);
    cfg.statedir = svc.statedir("pub")?;
    if let Some(l) = svc.value(a.hdf5_listing, "hdf5_listing", parse_listing)? {
        cfg.hdf5_listing = l;
    }
    if let Some(d) = svc.value(a.digests, "digests", parse_on_off)? {
        cfg.digests = d;
    }
    if let Some(n) = svc.value(a.max_requests, "max_requests", parse_count)? {
        cfg.max_requests = n;
    }
    if let Some(b) = svc.value(a.send_buffer, "send_buffer", parse_size)? {
        cfg.send_buffer_bytes = b;
    }
    if let Some(w) = svc.value(a.queue_wait, "queue_wait", parse_seconds)? {
        cfg.queue_wait = w;
    }
    if let Some(i) = svc.id() {
        cfg.id = format!("{i}-{}", cfg.id);
    }
    let listener = match &http {
        Some(h) => {
            let l = service::bind(h).await.map_err(anyhow::Error::msg)?;
            cfg.http = Some(service::announce_address(h, &l));
            Some(l)
        }
        None => None,
    };
    let ops = match a.ops.or(svc.get("ops")?) {
        Some(o) => {
            let l = service::bind(&o).await.map_err(anyhow::Error::msg)?;
            if listener.is_none() {
                // The ready file names what this publisher serves over HTTP.
                service::announce_address(&o, &l);
            }
            Some(l)
        }
        None => None,
    };
    let nats = svc.connect(&format!("cat2pub {}", cfg.name)).await?;
    cat2_publisher::run(cfg, nats, listener, ops, service::shutdown_signal()).await?;
    Ok(())
}
