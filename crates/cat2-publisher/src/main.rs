//! `cat2pub`: serves one root directory of Blosc2 datasets on NATS.

use std::path::PathBuf;

use anyhow::Context;
use clap::Parser;

/// Serves a root directory to cat2 subscribers, through NATS.
#[derive(Debug, Parser)]
#[command(name = "cat2pub", version)]
struct Args {
    /// Configuration file (sections `[publisher]`, `[publisher.ID]` and `[nats]`).
    #[arg(long, default_value = "caterva2.toml")]
    conf: PathBuf,
    /// Instance id (selects `[publisher.ID]` and the state directory).
    #[arg(long)]
    id: Option<String>,
    /// NATS server URL [default: `[nats] url`, else nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL")]
    nats: Option<String>,
    /// HTTP address of the liveness routes, `off` for none [default: `http`, else localhost:8001].
    #[arg(long)]
    http: Option<String>,
    /// State directory [default: `statedir`, else _caterva2/pub[.ID]].
    #[arg(long)]
    statedir: Option<PathBuf>,
    /// What an HDF5 root lists: `full` (also soft-linked objects and compound types) or
    /// `caterva2-0.2` (exactly Caterva2 0.2.0's list) [default: `hdf5_listing`, else full].
    #[arg(long)]
    hdf5_listing: Option<String>,
    /// Most chunk requests served at once; more wait (`--queue-wait`), then are answered
    /// busy and asked again [default: `max_requests`, else 64].
    #[arg(long, value_parser = cat2_client::parse_count)]
    max_requests: Option<usize>,
    /// Most bytes read for replies not sent yet, e.g. 256MiB [default: `send_buffer`, else 256MiB].
    #[arg(long, value_parser = cat2_client::parse_size)]
    send_buffer: Option<u64>,
    /// Seconds a request may wait for a free slot [default: `queue_wait`, else 2].
    #[arg(long, value_parser = cat2_client::parse_seconds)]
    queue_wait: Option<std::time::Duration>,
    /// Log level [default: `loglevel`, else warn].
    #[arg(long)]
    loglevel: Option<String>,
    /// Root name [default: `name`].
    name: Option<String>,
    /// Root directory [default: `root`, else data].
    root: Option<PathBuf>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let explicit = std::env::args().any(|x| x == "--conf" || x.starts_with("--conf="));
    let conf = cat2_client::Conf::load(explicit.then_some(a.conf.as_path()))?;
    let id = a.id.as_deref().filter(|i| !i.is_empty());
    if id.is_some_and(|i| i.contains(['.', '/']) || i == "..") {
        anyhow::bail!("invalid --id {id:?}: it must not contain '.' or '/'");
    }
    let get = |k: &str| conf.get_for("publisher", id, k);
    cat2_client::service::init_tracing(
        &a.loglevel
            .or(get("loglevel")?)
            .unwrap_or_else(|| "warn".into()),
    );
    let name = a
        .name
        .or(get("name")?)
        .context("root name was not specified (NAME or [publisher] name)")?;
    let name = cat2_proto::RootName::new(&name)?;
    let root = a
        .root
        .or(get("root")?.map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from("data"));
    let http = a
        .http
        .or(get("http")?)
        .unwrap_or_else(|| "localhost:8001".into());
    let http = (http != "off" && !http.is_empty()).then_some(http);
    let mut cfg = cat2_publisher::Config::new(name, root);
    cfg.statedir = a
        .statedir
        .or(get("statedir")?.map(PathBuf::from))
        .unwrap_or_else(|| match id {
            Some(i) => PathBuf::from(format!("_caterva2/pub.{i}")),
            None => PathBuf::from("_caterva2/pub"),
        });
    if let Some(l) = a.hdf5_listing.or(get("hdf5_listing")?) {
        cfg.hdf5_listing = l.parse().map_err(anyhow::Error::msg)?;
    }
    if let Some(n) = a.max_requests.or(conf.parsed_for(
        "publisher",
        id,
        "max_requests",
        cat2_client::parse_count,
    )?) {
        cfg.max_requests = n;
    }
    if let Some(b) = a.send_buffer.or(conf.parsed_for(
        "publisher",
        id,
        "send_buffer",
        cat2_client::parse_size,
    )?) {
        cfg.send_buffer_bytes = b;
    }
    if let Some(w) = a.queue_wait.or(conf.parsed_for(
        "publisher",
        id,
        "queue_wait",
        cat2_client::parse_seconds,
    )?) {
        cfg.queue_wait = w;
    }
    if let Some(i) = id {
        cfg.id = format!("{i}-{}", cfg.id);
    }
    let listener = match &http {
        Some(h) => {
            let l = cat2_client::service::bind(h)
                .await
                .map_err(anyhow::Error::msg)?;
            cfg.http = Some(cat2_client::service::announce_address(h, &l));
            Some(l)
        }
        None => None,
    };
    let nats_cfg = conf.nats(a.nats)?;
    let conn_name = format!("cat2pub {}", cfg.name);
    let nats = nats_cfg
        .options(&conn_name)
        .await?
        .connect(nats_cfg.url.as_str())
        .await
        .context("nats")?;
    cat2_publisher::run(cfg, nats, listener, cat2_client::service::shutdown_signal()).await?;
    Ok(())
}
