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
    #[error("configuration key {key} must be a string")]
    Type {
        /// The key.
        key: String,
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

    /// The string at `section.key` where `section` may be dotted (`publisher.1`).
    ///
    /// # Errors
    /// [`ConfError::Type`] when the value is not a string.
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
    /// A CA certificate for TLS.
    pub tls_ca: Option<PathBuf>,
}

impl NatsConfig {
    /// The default server.
    pub const DEFAULT_URL: &'static str = "nats://127.0.0.1:4222";

    /// A configuration for `url` without authentication.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            user: None,
            password: None,
            token: None,
            credentials: None,
            tls_ca: None,
        }
    }

    /// Connection options: the connection's `name` (shown by the server's `/connz`), unlimited
    /// reconnects with a short capped backoff, and the first connection retried in the
    /// background so that services start before the server does.
    ///
    /// # Errors
    /// [`ConfError::Nats`] when the credentials file cannot be read.
    pub async fn options(&self, name: &str) -> Result<async_nats::ConnectOptions, ConfError> {
        let mut o = async_nats::ConnectOptions::new()
            .name(name)
            .retry_on_initial_connect()
            .max_reconnects(None)
            .connection_timeout(Duration::from_secs(5))
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
        Ok(o)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
            Conf::parse("[broker]\nhttp = 3\n")
                .unwrap()
                .get("broker", "http")
                .is_err()
        );
        assert!(Conf::parse("not toml [").is_err());
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
