//! `cat2sub`: the cat2 subscriber.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;

/// Follows cat2 roots, caches their chunks on demand, serves Caterva2's REST API.
#[derive(Debug, Parser)]
#[command(name = "cat2sub", version)]
struct Args {
    /// Configuration file (sections `[subscriber]`, `[subscriber.ID]` and `[nats]`).
    #[arg(long, default_value = "caterva2.toml")]
    conf: PathBuf,
    /// Instance id (selects `[subscriber.ID]` and the state directory).
    #[arg(long)]
    id: Option<String>,
    /// NATS server URL [default: `[nats] url`, else nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL")]
    nats: Option<String>,
    /// HTTP address of the REST API [default: `http`, else localhost:8002].
    #[arg(long)]
    http: Option<String>,
    /// Public URL base for download links, e.g. http://data.example.org:8002/
    /// [default: `url`, else http://<http>/].
    #[arg(long)]
    url: Option<String>,
    /// State directory (cache included) [default: `statedir`, else _caterva2/sub[.ID]].
    #[arg(long)]
    statedir: Option<PathBuf>,
    /// Log level [default: `loglevel`, else warn].
    #[arg(long)]
    loglevel: Option<String>,
    /// Seconds a request may wait for upstream [default: `timeout`, else 10].
    #[arg(long)]
    timeout: Option<f64>,
    /// Small reads of uncached chunks also fetch those chunks whole into the cache, in the
    /// background (else they fetch only the blocks they need; larger reads and downloads
    /// always cache whole chunks) [default: `prefetch_chunks`, else false].
    #[arg(long)]
    prefetch_chunks: bool,
    /// Memory that results in flight may take, e.g. 256MiB: slices (about twice their size)
    /// and file transfers; past it requests wait, then get 503 with Retry-After
    /// [default: `memory_budget`, else 256MiB].
    #[arg(long, value_parser = cat2_client::parse_size)]
    memory_budget: Option<u64>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let explicit = std::env::args().any(|x| x == "--conf" || x.starts_with("--conf="));
    let conf = cat2_client::Conf::load(explicit.then_some(a.conf.as_path()))?;
    let id = a.id.as_deref().filter(|i| !i.is_empty());
    if id.is_some_and(|i| i.contains(['.', '/', '*', '>', ' '])) {
        anyhow::bail!("invalid --id {id:?}: it must not contain '.', '/', '*', '>' or spaces");
    }
    let get = |k: &str| conf.get_for("subscriber", id, k);
    cat2_client::service::init_tracing(
        &a.loglevel
            .or(get("loglevel")?)
            .unwrap_or_else(|| "warn".into()),
    );
    let mut cfg = cat2_subscriber::Config {
        http: a
            .http
            .or(get("http")?)
            .unwrap_or_else(|| "localhost:8002".into()),
        statedir: a
            .statedir
            .or(get("statedir")?.map(PathBuf::from))
            .unwrap_or_else(|| match id {
                Some(i) => PathBuf::from(format!("_caterva2/sub.{i}")),
                None => PathBuf::from("_caterva2/sub"),
            }),
        id: id.unwrap_or("default").to_owned(),
        url: a.url.or(get("url")?),
        ..Default::default()
    };
    let timeout = match a.timeout {
        Some(t) => Some(t),
        None => get("timeout")?
            .map(|t| t.parse::<f64>())
            .transpose()
            .context("[subscriber] timeout")?,
    };
    cfg.prefetch_chunks = a.prefetch_chunks
        || match get("prefetch_chunks")?.as_deref() {
            None => false,
            Some(v) => v.parse::<bool>().map_err(|_| {
                anyhow::anyhow!("[subscriber] prefetch_chunks: {v:?} is not true or false")
            })?,
        };
    if let Some(b) = a.memory_budget.or(conf.parsed_for(
        "subscriber",
        id,
        "memory_budget",
        cat2_client::parse_size,
    )?) {
        cfg.memory_budget = b;
    }
    if let Some(t) = timeout {
        // Refused, not ignored: a timeout that is not a positive number of seconds up to a
        // day is a mistake in the command line or the configuration.
        if !(t > 0.0 && t <= 86_400.0) {
            anyhow::bail!(
                "invalid timeout {t}: it must be a number of seconds above 0 and at most 86400 \
                 (--timeout or [subscriber] timeout)"
            );
        }
        cfg.timeout = Duration::from_secs_f64(t);
    }
    let listener = cat2_client::service::bind(&cfg.http)
        .await
        .map_err(anyhow::Error::msg)?;
    cfg.http = cat2_client::service::announce_address(&cfg.http, &listener);
    let nats_cfg = conf.nats(a.nats)?;
    let conn_name = format!("cat2sub {}", cfg.id);
    let nats = nats_cfg
        .options(&conn_name)
        .await?
        .connect(nats_cfg.url.as_str())
        .await
        .context("nats")?;
    cat2_subscriber::run(cfg, nats, listener, cat2_client::service::shutdown_signal()).await?;
    Ok(())
}
