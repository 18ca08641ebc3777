//! What every cat2 program's `main` shares: the common flags ([`CommonArgs`]) and their
//! configuration file ([`Service`]: `--flag`, else `[section.ID] key`, else `[section] key`,
//! else the default shown in `--help`), logging, the NATS connection, the shutdown signal,
//! listen addresses.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use crate::{Conf, ConfError};

/// The flags every cat2 service takes: flattened into each one's own (`#[command(flatten)]`).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct CommonArgs {
    /// Configuration file: sections `[<service>]`, `[<service>.<ID>]` and `[nats]`
    /// [default: ./caterva2.toml when it exists].
    #[arg(long)]
    pub conf: Option<PathBuf>,
    /// NATS server URL [default: `[nats] url`, else nats://127.0.0.1:4222].
    #[arg(long, env = "NATS_URL")]
    pub nats: Option<String>,
    /// State directory [default: `statedir`, else _caterva2/<service>[.ID]].
    #[arg(long)]
    pub statedir: Option<PathBuf>,
    /// Log level: error, warn, info, debug or trace [default: `loglevel`, else warn].
    #[arg(long)]
    pub loglevel: Option<String>,
}

/// A service that cannot start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration file or one of its values.
    #[error(transparent)]
    Conf(#[from] ConfError),
    /// An instance id that cannot name subjects and directories.
    #[error(
        "invalid --id {0:?}: it must not be empty, `..`, or contain '.', '/', '*', '>' or spaces"
    )]
    Id(String),
    /// The NATS server cannot be reached (only for settings that can never work: the first
    /// connection is otherwise retried in the background).
    #[error("nats {url}: {source}")]
    Nats {
        /// The server URL(s).
        url: String,
        /// Why.
        source: async_nats::ConnectError,
    },
}

/// One service being started: its configuration section, instance id and common flags.
#[derive(Debug)]
pub struct Service {
    section: &'static str,
    id: Option<String>,
    conf: Conf,
    common: CommonArgs,
}

impl Service {
    /// Loads the configuration (a `--conf` file named must exist), checks the id, and starts
    /// logging at the level of `--loglevel`, else `loglevel`, else `warn`.
    ///
    /// # Errors
    /// [`StartError::Conf`], [`StartError::Id`].
    pub fn start(
        section: &'static str,
        id: Option<String>,
        common: CommonArgs,
    ) -> Result<Self, StartError> {
        let conf = Conf::load(common.conf.as_deref())?;
        let id = id.filter(|i| !i.is_empty());
        if let Some(i) = &id
            && (i == ".." || i.contains(['.', '/', '*', '>']) || i.contains(char::is_whitespace))
        {
            return Err(StartError::Id(i.clone()));
        }
        let s = Self {
            section,
            id,
            conf,
            common,
        };
        let level = s.common.loglevel.clone().or(s.get("loglevel")?);
        init_tracing(level.as_deref().unwrap_or("warn"));
        Ok(s)
    }

    /// The instance id, if any.
    pub fn id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// The configuration file.
    pub fn conf(&self) -> &Conf {
        &self.conf
    }

    /// `key` of this service's section (its `[section.ID]` first), as text.
    ///
    /// # Errors
    /// [`ConfError::Type`].
    pub fn get(&self, key: &str) -> Result<Option<String>, ConfError> {
        self.conf.get_for(self.section, self.id(), key)
    }

    /// `flag` when given, else `key` of the configuration parsed by `parse` (a bad value is
    /// refused with a message naming the key), else `None` (the caller's default).
    ///
    /// # Errors
    /// [`ConfError::Type`], [`ConfError::Invalid`].
    pub fn value<T>(
        &self,
        flag: Option<T>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfError> {
        match flag {
            Some(v) => Ok(Some(v)),
            None => self.conf.parsed_for(self.section, self.id(), key, parse),
        }
    }

    /// `--statedir`, else `statedir`, else `_caterva2/<short>[.ID]`.
    ///
    /// # Errors
    /// [`ConfError::Type`].
    pub fn statedir(&self, short: &str) -> Result<PathBuf, ConfError> {
        if let Some(d) = &self.common.statedir {
            return Ok(d.clone());
        }
        Ok(match (self.get("statedir")?, self.id()) {
            (Some(d), _) => PathBuf::from(d),
            (None, Some(i)) => Path::new("_caterva2").join(format!("{short}.{i}")),
            (None, None) => Path::new("_caterva2").join(short),
        })
    }

    /// Connects to NATS (`--nats`, `NATS_URL`, `[nats]`) as `name` (shown by the server's
    /// `/connz`); a server that is down is retried in the background.
    ///
    /// # Errors
    /// [`StartError`].
    pub async fn connect(&self, name: &str) -> Result<async_nats::Client, StartError> {
        let cfg = self.conf.nats(self.common.nats.clone())?;
        cfg.options(name)
            .await?
            .connect(cfg.url.as_str())
            .await
            .map_err(|source| StartError::Nats {
                url: cfg.url.clone(),
                source,
            })
    }
}

/// Initialises `tracing` at `level` (overridden by `RUST_LOG`), logging to stderr.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.to_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Parses Caterva2's `HOST:PORT` (`*` or empty host: all addresses; `[v6]:port` accepted) into
/// the addresses to bind.
///
/// # Errors
/// A message when the address cannot be resolved.
pub fn listen_addrs(http: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let (host, port) = http
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address {http:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port in {http:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "*" {
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {http:?}: {e}"))?
        .collect();
    if addrs.is_empty() {
        Err(format!("cannot resolve {http:?}"))
    } else {
        Ok(addrs)
    }
}

/// Binds the first address of `http` that works.
///
/// # Errors
/// A message naming the address when none can be bound.
pub async fn bind(http: &str) -> Result<tokio::net::TcpListener, String> {
    let mut last = String::new();
    for addr in listen_addrs(http)? {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = format!("cannot listen on {addr}: {e}"),
        }
    }
    Err(last)
}

/// The address clients should use for `listener` when it was bound from `http`: `http` as
/// given (Caterva2 announces the literal value), except that a port 0 becomes the real port.
/// When `CAT2_READY_FILE` is set, the address is also written there (atomically): tests and
/// orchestrators wait for that file instead of probing ports.
pub fn announce_address(http: &str, listener: &tokio::net::TcpListener) -> String {
    let addr = match (http.rsplit_once(':'), listener.local_addr()) {
        (Some((host, "0")), Ok(local)) => format!("{host}:{}", local.port()),
        _ => http.to_owned(),
    };
    if let Some(path) = std::env::var_os("CAT2_READY_FILE") {
        let path = std::path::PathBuf::from(path);
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, &addr).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the ready file");
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_then_instance_then_section_then_defaults() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("c.toml");
        std::fs::write(
            &conf,
            "[subscriber]\ntimeout = 10\nstatedir = \"/s\"\n[subscriber.b]\ntimeout = \"2.5\"\nbad = \"x\"\n",
        )
        .unwrap();
        let common = |statedir: Option<&str>| CommonArgs {
            conf: Some(conf.clone()),
            statedir: statedir.map(PathBuf::from),
            ..CommonArgs::default()
        };
        let a = Service::start("subscriber", None, common(None)).unwrap();
        let secs = crate::parse_seconds;
        assert_eq!(
            a.value(None, "timeout", secs).unwrap(),
            Some(std::time::Duration::from_secs(10))
        );
        assert_eq!(a.statedir("sub").unwrap(), PathBuf::from("/s"));
        let b = Service::start("subscriber", Some("b".into()), common(Some("/flag"))).unwrap();
        assert_eq!(
            b.value(None, "timeout", secs).unwrap(),
            Some(std::time::Duration::from_millis(2500))
        );
        let flag = Some(std::time::Duration::from_secs(1));
        assert_eq!(b.value(flag, "timeout", secs).unwrap(), flag);
        assert_eq!(b.statedir("sub").unwrap(), PathBuf::from("/flag"));
        let e = b.value(None, "bad", secs).unwrap_err().to_string();
        assert!(e.contains("bad") && e.contains("seconds"), "{e}");
        let c = Service::start("publisher", Some("p1".into()), common(None)).unwrap();
        assert_eq!(
            c.statedir("pub").unwrap(),
            Path::new("_caterva2").join("pub.p1")
        );
        for bad in ["a.b", "a/b", "..", "a b", "*", ">"] {
            let e = Service::start("publisher", Some(bad.into()), common(None)).unwrap_err();
            assert!(matches!(e, StartError::Id(_)), "{bad}");
        }
        let missing = CommonArgs {
            conf: Some(dir.path().join("none.toml")),
            ..CommonArgs::default()
        };
        assert!(matches!(
            Service::start("broker", None, missing),
            Err(StartError::Conf(ConfError::Read { .. }))
        ));
    }

    #[test]
    fn addresses() {
        assert_eq!(
            listen_addrs("*:8000").unwrap(),
            vec![SocketAddr::from(([0, 0, 0, 0], 8000))]
        );
        assert!(
            listen_addrs("localhost:8002")
                .unwrap()
                .iter()
                .all(|a| a.port() == 8002)
        );
        assert_eq!(
            listen_addrs("127.0.0.1:1").unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 1))]
        );
        assert!(listen_addrs("[::1]:5").unwrap()[0].is_ipv6());
        assert!(listen_addrs("nocolon").is_err());
        assert!(listen_addrs("h:notaport").is_err());
    }
}
