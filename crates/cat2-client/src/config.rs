//! The configuration file (`caterva2.toml`, spec §1.2, plus `[nats]`) and NATS connection options.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// A configuration file that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfError {
    /// Unreadable file.
    #[error("cannot read {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// Not TOML.
    #[error("invalid configuration {path}: {source}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// Why.
        source: Box<toml::de::Error>,
    },
    /// A key with a value of the wrong type.
    #[error("configuration key {key} must be a string, a number or a boolean")]
    Type {
        /// The key.
        key: String,
    },
    /// A key whose value does not parse as what it sets.
    #[error("configuration key {key} = {value:?}: {why}")]
    Invalid {
        /// The key.
        key: String,
        /// Its value.
        value: String,
        /// What is wrong with it.
        why: String,
    },
    /// NATS options that cannot be applied (e.g. an unreadable credentials file).
    #[error("nats options: {0}")]
    Nats(String),
}

/// A parsed configuration file. A missing file is an empty configuration (as in Caterva2).
#[derive(Debug, Clone, Default)]
pub struct Conf {
    table: toml::Table,
}

impl Conf {
    /// Loads `path`, or `./caterva2.toml` when `None`; a missing default file is empty.
    ///
    /// # Errors
    /// [`ConfError`] when the file exists but cannot be read or parsed, or when an explicitly
    /// named file is missing.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfError> {
        let (path, explicit) = match path {
            Some(p) => (p.to_path_buf(), true),
            None => (PathBuf::from("caterva2.toml"), false),
        };
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !explicit => {
                return Ok(Self::default());
            }
            Err(source) => return Err(ConfError::Read { path, source }),
        };
        let table = text.parse::<toml::Table>().map_err(|e| ConfError::Parse {
            path,
            source: Box::new(e),
        })?;
        Ok(Self { table })
    }

    /// Parses configuration text.
    ///
    /// # Errors
    /// [`ConfError::Parse`].
    pub fn parse(text: &str) -> Result<Self, ConfError> {
        let table = text.parse::<toml::Table>().map_err(|e| ConfError::Parse {
            path: "(text)".into(),
            source: Box::new(e),
        })?;
        Ok(Self { table })
    }

    /// The value at `section.key` where `section` may be dotted (`publisher.1`), as text:
    /// `timeout = 10` and `timeout = "10"` both give `"10"`.
    ///
    /// # Errors
    /// [`ConfError::Type`] when the value is a table, an array or a date.
    pub fn get(&self, section: &str, key: &str) -> Result<Option<String>, ConfError> {
        let mut t = &self.table;
        for part in section.split('.') {
            match t.get(part).and_then(toml::Value::as_table) {
                Some(sub) => t = sub,
                None => return Ok(None),
            }
        }
        match t.get(key) {
            None => Ok(None),
            Some(toml::Value::String(s)) => Ok(Some(s.clone())),
            Some(toml::Value::Integer(i)) => Ok(Some(i.to_string())),
            Some(toml::Value::Float(f)) => Ok(Some(f.to_string())),
            Some(toml::Value::Boolean(b)) => Ok(Some(b.to_string())),
            Some(_) => Err(ConfError::Type {
                key: format!("{section}.{key}"),
            }),
        }
    }

    /// `section.ID.key` when an id is given and that key is set, else `section.key`.
    ///
    /// # Errors
    /// [`ConfError::Type`].
    pub fn get_for(
        &self,
        section: &str,
        id: Option<&str>,
        key: &str,
    ) -> Result<Option<String>, ConfError> {
        if let Some(id) = id.filter(|i| !i.is_empty()) {
            if let Some(v) = self.get(&format!("{section}.{id}"), key)? {
                return Ok(Some(v));
            }
        }
        self.get(section, key)
    }

    /// [`Conf::get_for`] parsed by `parse` (e.g. [`parse_size`]); a value that does not parse
    /// is refused with a message naming the key.
    ///
    /// # Errors
    /// [`ConfError::Type`], [`ConfError::Invalid`].
    pub fn parsed_for<T>(
        &self,
        section: &str,
        id: Option<&str>,
        key: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<Option<T>, ConfError> {
        let Some(value) = self.get_for(section, id, key)? else {
            return Ok(None);
        };
        parse(&value).map(Some).map_err(|why| ConfError::Invalid {
            key: format!("[{section}] {key}"),
            value,
            why,
        })
    }

    /// The `[nats]` section, with `url` overridden by `url` when given (flag or `NATS_URL`).
    ///
    /// # Errors
    /// [`ConfError::Type`].
    pub fn nats(&self, url: Option<String>) -> Result<NatsConfig, ConfError> {
        let get = |k| self.get("nats", k);
        Ok(NatsConfig {
            url: url
                .or(get("url")?)
                .unwrap_or_else(|| NatsConfig::DEFAULT_URL.to_owned()),
            user: get("user")?,
            password: get("password")?,
            token: get("token")?,
            credentials: get("credentials")?.map(PathBuf::from),
            tls_ca: get("tls_ca")?.map(PathBuf::from),
            tls_cert: get("tls_cert")?.map(PathBuf::from),
            tls_key: get("tls_key")?.map(PathBuf::from),
            inbox_prefix: get("inbox_prefix")?,
            ping_interval: self
                .parsed_for("nats", None, "ping_interval", parse_seconds)?
                .filter(|d| !d.is_zero())
                .unwrap_or(NatsConfig::DEFAULT_PING_INTERVAL),
        })
    }
}

/// How to reach and authenticate to the NATS server.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct NatsConfig {
    /// Server URL(s), comma-separated.
    pub url: String,
    /// User name (with `password`).
    pub user: Option<String>,
    /// Password.
    pub password: Option<String>,
    /// Token.
    pub token: Option<String>,
    /// A `.creds` file (JWT + nkey).
    pub credentials: Option<PathBuf>,
    /// A CA certificate for TLS (the server's certificate must chain to it).
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate and key, for servers that verify clients (`verify: true`).
    pub tls_cert: Option<PathBuf>,
    /// The key of `tls_cert`.
    pub tls_key: Option<PathBuf>,
    /// Prefix of this client's reply subjects (default `_INBOX`). With NATS permissions each
    /// identity gets its own (`_INBOX.<user>`) and may subscribe only under it, so no client
    /// can read the replies meant for another.
    pub inbox_prefix: Option<String>,
    /// How often the client pings the server: a server that hangs (a stopped machine, a
    /// partition) is noticed after about three intervals and the client reconnects elsewhere
    /// (async-nats's own default, 60 s, costs minutes of failed requests).
    pub ping_interval: Duration,
}

impl NatsConfig {
    /// The default server.
    pub const DEFAULT_URL: &'static str = "nats://127.0.0.1:4222";

    /// The default keep-alive ping interval.
    pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(5);

    /// A configuration for `url` without authentication.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: None,
            password: None,
            token: None,
            credentials: None,
            tls_ca: None,
            tls_cert: None,
            tls_key: None,
            inbox_prefix: None,
            ping_interval: Self::DEFAULT_PING_INTERVAL,
        }
    }

    /// Connection options: the connection's `name` (shown by the server's `/connz`), unlimited
    /// reconnects with a short capped backoff, keep-alive pings every `ping_interval`, and the
    /// first connection retried in the background so that services start before the server
    /// does.
    ///
    /// # Errors
    /// [`ConfError::Nats`] when the credentials file cannot be read.
    pub async fn options(&self, name: &str) -> Result<async_nats::ConnectOptions, ConfError> {
        let mut o = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
            .ping_interval(self.ping_interval)
            .reconnect_delay_callback(|attempt| {
                Duration::from_millis((50 * 2u64.saturating_pow(attempt.min(6) as u32)).min(2000))
            });
        if let (Some(u), Some(p)) = (&self.user, &self.password) {
            o = o.user_and_password(u.clone(), p.clone());
        }
        if let Some(t) = &self.token {
            o = o.token(t.clone());
        }
        if let Some(c) = &self.credentials {
            o = o
                .credentials_file(c)
                .await
                .map_err(|e| ConfError::Nats(format!("credentials {}: {e}", c.display())))?;
        }
        if let Some(ca) = &self.tls_ca {
            o = o.add_root_certificates(ca.clone()).require_tls(true);
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(cert), Some(key)) => {
                o = o
                    .add_client_certificate(cert.clone(), key.clone())
                    .require_tls(true);
            }
            (None, None) => {}
            _ => {
                return Err(ConfError::Nats(
                    "[nats] tls_cert and tls_key go together".to_owned(),
                ));
            }
        }
        if let Some(prefix) = &self.inbox_prefix {
            o = o.custom_inbox_prefix(prefix);
        }
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keep_alive() {
        let nats = |t: &str| Conf::parse(t).unwrap().nats(None);
        assert_eq!(
            nats("").unwrap().ping_interval,
            NatsConfig::DEFAULT_PING_INTERVAL
        );
        let two = nats("[nats]\nping_interval = 2\n").unwrap();
        assert_eq!(two.ping_interval, Duration::from_secs(2));
        let e = nats("[nats]\nping_interval = \"soon\"\n").unwrap_err();
        assert!(e.to_string().contains("ping_interval"), "{e}");
    }

    #[test]
    fn sections_and_ids() {
        let c = Conf::parse(
            "[broker]\nhttp = \"localhost:9000\"\n[publisher]\nhttp = \"a:1\"\n[publisher.2]\nhttp = \"b:2\"\n\
             [nats]\nurl = \"nats://x:4222\"\ntoken = \"t\"\n",
        )
        .unwrap();
        assert_eq!(
            c.get("broker", "http").unwrap().as_deref(),
            Some("localhost:9000")
        );
        assert_eq!(
            c.get_for("publisher", Some("2"), "http")
                .unwrap()
                .as_deref(),
            Some("b:2")
        );
        assert_eq!(
            c.get_for("publisher", Some("3"), "http")
                .unwrap()
                .as_deref(),
            Some("a:1")
        );
        assert_eq!(
            c.get_for("publisher", None, "http").unwrap().as_deref(),
            Some("a:1")
        );
        assert_eq!(c.get("subscriber", "http").unwrap(), None);
        let n = c.nats(None).unwrap();
        assert_eq!(n.url, "nats://x:4222");
        assert_eq!(n.token.as_deref(), Some("t"));
        assert_eq!(c.nats(Some("nats://y:1".into())).unwrap().url, "nats://y:1");
        assert!(
            Conf::parse("[broker]\nhttp = [3]\n")
                .unwrap()
                .get("broker", "http")
                .is_err()
        );
        assert!(Conf::parse("not toml [").is_err());
    }

    /// `timeout = 10` and `timeout = "10"` set the same; a bad value names its key.
    #[test]
    fn typed_values() {
        let c = Conf::parse(
            "[subscriber]\ntimeout = 10\nprefetch_chunks = true\nmemory_budget = \"256MiB\"\n\
             [subscriber.b]\ntimeout = \"2.5\"\nmemory_budget = 1048576\n[subscriber.c]\ntimeout = \"x\"\n",
        )
        .unwrap();
        let secs = |id| c.parsed_for("subscriber", id, "timeout", parse_seconds);
        assert_eq!(secs(None).unwrap(), Some(Duration::from_secs(10)));
        assert_eq!(secs(Some("b")).unwrap(), Some(Duration::from_millis(2500)));
        let e = secs(Some("c")).unwrap_err().to_string();
        assert!(
            e.contains("[subscriber] timeout") && e.contains("\"x\""),
            "{e}"
        );
        let size = |id| c.parsed_for("subscriber", id, "memory_budget", parse_size);
        assert_eq!(size(None).unwrap(), Some(256 << 20));
        assert_eq!(size(Some("b")).unwrap(), Some(1 << 20));
        assert_eq!(
            c.get("subscriber", "prefetch_chunks").unwrap().as_deref(),
            Some("true")
        );
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert!(parse_size("lots").is_err());
        assert!(parse_count("0").is_err());
        assert!(parse_seconds("-1").is_err());
        assert!(Conf::load(Some(Path::new("/nonexistent/caterva2.toml"))).is_err());
    }
}

#[cfg(test)]
mod sample {
    use super::*;

    /// The documented sample parses and says what the defaults are.
    #[test]
    fn sample_configuration() {
        let c = Conf::parse(include_str!("../../../caterva2.sample.toml")).unwrap();
        assert_eq!(
            c.get("broker", "http").unwrap().as_deref(),
            Some("localhost:8000")
        );
        assert_eq!(
            c.get_for("publisher", None, "http").unwrap().as_deref(),
            Some("localhost:8001")
        );
        assert_eq!(
            c.get_for("publisher", Some("1"), "root")
                .unwrap()
                .as_deref(),
            Some("root-example")
        );
        assert_eq!(
            c.get_for("subscriber", None, "http").unwrap().as_deref(),
            Some("localhost:8002")
        );
        assert_eq!(
            c.get_for("subscriber", Some("1"), "http")
                .unwrap()
                .as_deref(),
            Some("localhost:8012")
        );
        assert_eq!(c.nats(None).unwrap().url, NatsConfig::DEFAULT_URL);
    }
}

/// A size in bytes: a number of bytes, or with a unit (`256MiB`, `1 GiB`, `64 MB`).
///
/// # Errors
/// A message saying what is expected.
pub fn parse_size(text: &str) -> Result<u64, String> {
    text.trim()
        .parse::<bytesize::ByteSize>()
        .map(|b| b.as_u64())
        .map_err(|_| "expected a size in bytes, such as 268435456, 256MiB or 1GiB".to_owned())
}

/// A positive number, for counts such as request slots.
///
/// # Errors
/// A message saying what is expected.
pub fn parse_count(text: &str) -> Result<usize, String> {
    match text.trim().parse::<usize>() {
        Ok(n) if n > 0 => Ok(n),
        _ => Err("expected a whole number above 0".to_owned()),
    }
}

/// A duration in seconds (`2`, `0.5`), from 0 to a day.
///
/// # Errors
/// A message saying what is expected.
pub fn parse_seconds(text: &str) -> Result<Duration, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..=86_400.0).contains(&s) => Ok(Duration::from_secs_f64(s)),
        _ => Err("expected a number of seconds from 0 to 86400".to_owned()),
    }
}
