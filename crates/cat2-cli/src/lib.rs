//! `cat2cli`, the command-line client of a cat2 subscriber: Caterva2 0.2's `cat2cli`
//! (spec §1.6), talking only to the subscriber's REST API over HTTP (spec §2.3).
//!
//! ```text
//! cat2cli [--conf F] [--host HOST:PORT] [--loglevel L] {roots,subscribe,list,url,info,show,download} … [--json]
//! ```
//!
//! Errors are printed by `main` as `Error: <message>` on stderr, with exit code 1 (Caterva2
//! exits with 0).
//!
//! # Layout
//! - this file: the command line ([`Cli`]), [`run`], and the commands that print JSON replies.
//! - `api`: [`Api`], the HTTP client of one subscriber (URLs, timeouts, `{"detail"}` errors).
//! - `show`: [`cmd_show`], decoding `/api/fetch` replies (Blosc2 frames and chunks).
//! - `values`: array items as JSON values, typed by their NumPy dtype.
//! - `download`: [`cmd_download`], streaming to disk and unpacking `.b2` super-chunks.
//! - `error`: [`CliError`].

mod api;
mod download;
mod error;
mod numpy_text;
mod show;
mod values;

use std::io::Write;
use std::path::PathBuf;

use cat2_proto::rest::{ListReply, RootsReply, SubscribeReply, UrlReply};
use clap::{Args, Parser, Subcommand};
use serde_json::Value;

pub use api::Api;
pub use download::cmd_download;
pub use error::CliError;
pub use show::cmd_show;

/// The subscriber used when neither `--host` nor `[subscriber] http` says otherwise.
pub const DEFAULT_HOST: &str = "localhost:8002";

/// Command line of `cat2cli`.
#[derive(Debug, Parser)]
#[command(
    name = "cat2cli",
    version,
    about = "Client of a cat2 (Caterva2) subscriber"
)]
pub struct Cli {
    /// Configuration file [default: ./caterva2.toml, ignored when missing].
    #[arg(long, value_name = "FILE")]
    pub conf: Option<PathBuf>,
    /// Subscriber address, HOST:PORT [default: `[subscriber] http` of the configuration, or
    /// localhost:8002].
    #[arg(long, value_name = "HOST:PORT", conflicts_with = "subscriber")]
    pub host: Option<String>,
    /// Subscriber URL base, as Caterva2 2024.x takes it (`http://host:port/`) [default:
    /// `[subscriber] url` of the configuration].
    #[arg(long, value_name = "URLBASE")]
    pub subscriber: Option<String>,
    /// Token for a subscriber with authentication, sent as `Authorization: Bearer`
    /// [default: `CAT2_TOKEN`, else `[client] token` of the configuration].
    #[arg(long, env = "CAT2_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
    /// Log level (debug, info, warning, error, critical).
    #[arg(long, default_value = "warning")]
    pub loglevel: String,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// A subcommand.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List the roots the subscriber knows, marking the subscribed ones.
    Roots(JsonArgs),
    /// Subscribe to a root.
    Subscribe(RootArgs),
    /// List the datasets of a subscribed root.
    List(RootArgs),
    /// Print the publisher URLs of a root or dataset (`--fetch`: its URL at this subscriber).
    Url(UrlArgs),
    /// Print the metadata of a dataset.
    Info(PathArgs),
    /// Print a dataset or a slice of it: `ROOT/PATH[SLICE]`, e.g. `foo/ds-2d.b2nd[0:2, 4:8]`.
    Show(ShowArgs),
    /// Download a dataset to OUTDIR/ROOT/PATH.
    Download(DownloadArgs),
}

/// Options of commands without arguments.
#[derive(Debug, Args)]
pub struct JsonArgs {
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments naming a root.
#[derive(Debug, Args)]
pub struct RootArgs {
    /// The root.
    pub root: String,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments naming a root or a dataset.
#[derive(Debug, Args)]
pub struct PathArgs {
    /// `ROOT` or `ROOT/PATH`.
    pub path: String,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `url`.
#[derive(Debug, Args)]
pub struct UrlArgs {
    /// `ROOT` or `ROOT/PATH`.
    pub path: String,
    /// Print the reply as JSON.
    #[arg(long)]
    pub json: bool,
    /// Print the dataset's URL at this subscriber, `{urlbase}api/fetch/ROOT/PATH`, as
    /// Caterva2 2024.x's `cat2cli url` does (default: the publisher URLs, as 0.2.0).
    #[arg(long)]
    pub fetch: bool,
}

/// Arguments of `show`.
#[derive(Debug, Args)]
pub struct ShowArgs {
    /// `ROOT/PATH`, optionally followed by `[SLICE]`.
    pub dataset: String,
    /// Print JSON: bytes as one string, arrays as nested lists (default: as Caterva2 prints
    /// them, NumPy's text for arrays).
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `download`.
#[derive(Debug, Args)]
pub struct DownloadArgs {
    /// `ROOT/PATH`.
    pub dataset: String,
    /// Directory to download into [default: the current directory].
    pub outdir: Option<PathBuf>,
    /// Print the saved path as a JSON string.
    #[arg(long)]
    pub json: bool,
}

/// The `tracing` filter for a Caterva2 (Python `logging`) level name.
pub fn log_filter(level: &str) -> &str {
    match level.to_ascii_lowercase().as_str() {
        "warning" => "warn",
        "critical" | "fatal" => "error",
        _ => level,
    }
}

/// The subscriber: `--subscriber` or `--host`, else the configuration's `[subscriber] url`
/// (2024.x) or `[subscriber] http`, else [`DEFAULT_HOST`].
///
/// # Errors
/// [`CliError::Config`] when the configuration file cannot be used.
pub fn resolve_host(cli: &Cli) -> Result<String, CliError> {
    let conf = cat2_client::Conf::load(cli.conf.as_deref())?;
    if let Some(h) = cli.subscriber.as_ref().or(cli.host.as_ref()) {
        return Ok(h.clone());
    }
    if let Some(url) = conf.get("subscriber", "url")? {
        return Ok(url);
    }
    Ok(conf
        .get("subscriber", "http")?
        .unwrap_or_else(|| DEFAULT_HOST.to_owned()))
}

/// Runs the command of `cli`, printing to `out`.
///
/// # Errors
/// Whatever the command fails with.
pub async fn run(cli: &Cli, out: &mut impl Write) -> Result<(), CliError> {
    let token = match &cli.token {
        Some(t) => Some(t.clone()),
        None => cat2_client::Conf::load(cli.conf.as_deref())?.get("client", "token")?,
    };
    let api = Api::with_token(&resolve_host(cli)?, token.as_deref())?;
    match &cli.command {
        Command::Roots(a) => cmd_roots(a, &api, out).await,
        Command::Subscribe(a) => cmd_subscribe(a, &api, out).await,
        Command::List(a) => cmd_list(a, &api, out).await,
        Command::Url(a) => cmd_url(a, &api, out).await,
        Command::Info(a) => cmd_info(a, &api, out).await,
        Command::Show(a) => cmd_show(a, &api, out).await,
        Command::Download(a) => cmd_download(a, &api, out).await,
    }
}

/// Prints `reply` as JSON (the `--json` form).
fn print_json(out: &mut impl Write, reply: &impl serde::Serialize) -> Result<(), CliError> {
    let text = serde_json::to_string(reply).map_err(std::io::Error::other)?;
    writeln!(out, "{text}")?;
    Ok(())
}

/// `roots`: one root per line, `name (subscribed)` for subscribed ones.
///
/// # Errors
/// Request errors; a reply that is not Caterva2's roots object.
pub async fn cmd_roots(args: &JsonArgs, api: &Api, out: &mut impl Write) -> Result<(), CliError> {
    let roots: RootsReply = api.get_json("roots", "").await?;
    if args.json {
        return print_json(out, &roots);
    }
    for (name, root) in &roots {
        if root.is_subscribed() {
            writeln!(out, "{name} (subscribed)")?;
        } else {
            writeln!(out, "{name}")?;
        }
    }
    Ok(())
}

/// `subscribe ROOT`: prints the reply (`Ok`).
///
/// # Errors
/// Request errors (e.g. a root the broker does not know).
pub async fn cmd_subscribe(
    args: &RootArgs,
    api: &Api,
    out: &mut impl Write,
) -> Result<(), CliError> {
    let reply: SubscribeReply = api.post_json("subscribe", &args.root).await?;
    if args.json {
        return print_json(out, &reply);
    }
    writeln!(out, "{reply}")?;
    Ok(())
}

/// `list ROOT`: one `ROOT/PATH` per line.
///
/// # Errors
/// Request errors; a reply that is not a list of paths.
pub async fn cmd_list(args: &RootArgs, api: &Api, out: &mut impl Write) -> Result<(), CliError> {
    let paths: ListReply = api.get_json("list", &args.root).await?;
    if args.json {
        return print_json(out, &paths);
    }
    for p in &paths {
        writeln!(out, "{}/{p}", args.root)?;
    }
    Ok(())
}

/// `url PATH`: one URL per line.
///
/// # Errors
/// Request errors; a reply that is not a list of URLs.
pub async fn cmd_url(args: &UrlArgs, api: &Api, out: &mut impl Write) -> Result<(), CliError> {
    if args.fetch {
        let url = api.url("fetch", &args.path)?.to_string();
        if args.json {
            return print_json(out, &url);
        }
        writeln!(out, "{url}")?;
        return Ok(());
    }
    let urls: UrlReply = api.get_json("url", &args.path).await?;
    if args.json {
        return print_json(out, &urls);
    }
    for u in &urls {
        writeln!(out, "{u}")?;
    }
    Ok(())
}

/// `info DATASET`: `Getting info for DATASET`, then the metadata as indented JSON.
///
/// # Errors
/// Request errors.
pub async fn cmd_info(args: &PathArgs, api: &Api, out: &mut impl Write) -> Result<(), CliError> {
    let v: Value = api.get_json("info", &args.path).await?;
    if args.json {
        writeln!(out, "{v}")?;
        return Ok(());
    }
    writeln!(out, "Getting info for {}", args.path)?;
    let pretty = serde_json::to_string_pretty(&v).unwrap_or_else(|_| v.to_string());
    writeln!(out, "{pretty}")?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn command_line() {
        Cli::command().debug_assert();
        let cli = Cli::try_parse_from([
            "cat2cli",
            "--host",
            "h:1",
            "show",
            "foo/x.b2nd[0:2, 4:8]",
            "--json",
        ])
        .unwrap();
        assert_eq!(cli.host.as_deref(), Some("h:1"));
        assert_eq!(cli.loglevel, "warning");
        assert!(matches!(
            cli.command,
            Command::Show(ShowArgs { json: true, .. })
        ));
        let cli = Cli::try_parse_from(["cat2cli", "download", "foo/R.md", "out"]).unwrap();
        let Command::Download(d) = cli.command else {
            panic!("not download")
        };
        assert_eq!(d.outdir.as_deref(), Some(std::path::Path::new("out")));
        assert!(Cli::try_parse_from(["cat2cli", "subscribe"]).is_err());
    }

    #[test]
    fn hosts_and_levels() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("c.toml");
        std::fs::write(&conf, "[subscriber]\nhttp = \"example:9\"\n").unwrap();
        let c = conf.to_str().unwrap();
        let cli = Cli::try_parse_from(["cat2cli", "--conf", c, "roots"]).unwrap();
        assert_eq!(resolve_host(&cli).unwrap(), "example:9");
        let cli = Cli::try_parse_from(["cat2cli", "--conf", c, "--host", "x:1", "roots"]).unwrap();
        assert_eq!(resolve_host(&cli).unwrap(), "x:1");
        let u = [
            "cat2cli",
            "--conf",
            c,
            "--subscriber",
            "http://y:2/sub/",
            "roots",
        ];
        let cli = Cli::try_parse_from(u).unwrap();
        assert_eq!(resolve_host(&cli).unwrap(), "http://y:2/sub/");
        assert!(
            Cli::try_parse_from(["cat2cli", "--host", "a:1", "--subscriber", "b", "roots"])
                .is_err()
        );
        let conf24 = dir.path().join("c24.toml");
        std::fs::write(
            &conf24,
            "[subscriber]\nurl = \"http://z:3/\"\nhttp = \"z:4\"\n",
        )
        .unwrap();
        let cli =
            Cli::try_parse_from(["cat2cli", "--conf", conf24.to_str().unwrap(), "roots"]).unwrap();
        assert_eq!(resolve_host(&cli).unwrap(), "http://z:3/");
        let missing = dir.path().join("none.toml");
        let m = missing.to_str().unwrap();
        let cli = Cli::try_parse_from(["cat2cli", "--conf", m, "roots"]).unwrap();
        assert!(matches!(resolve_host(&cli), Err(CliError::Config(_))));
        assert_eq!(log_filter("WARNING"), "warn");
        assert_eq!(log_filter("critical"), "error");
        assert_eq!(log_filter("debug"), "debug");
    }
}
