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
    /// Hours a root may stay without a live publisher before it is forgotten (0: never)
    /// [default: `forget_after`, else 168, a week].
    #[arg(long, value_parser = parse_hours)]
    forget_after: Option<std::time::Duration>,
}

fn parse_hours(text: &str) -> Result<std::time::Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(h) if (0.0..=87_600.0).contains(&h) => {
            Ok(std::time::Duration::from_secs_f64(h * 3600.0))
        }
        _ => Err("expected a number of hours from 0 to 87600".to_owned()),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = Args::parse();
    let svc = Service::start("broker", None, a.common)?;
    let http = a
        .http
        .or(svc.get("http")?)
        .unwrap_or_else(|| "localhost:8000".into());
    let mut cfg = cat2_broker::Config {
        statedir: svc.statedir("bro")?,
        ..Default::default()
    };
    if let Some(f) = svc.value(a.forget_after, "forget_after", parse_hours)? {
        cfg.forget_after = (!f.is_zero()).then_some(f);
    }
    let nats = svc.connect("cat2bro").await?;
    let listener = service::bind(&http).await.map_err(anyhow::Error::msg)?;
    service::announce_address(&http, &listener);
    cat2_broker::run(cfg, nats, Some(listener), service::shutdown_signal()).await?;
    Ok(())
}
