//! What the subscriber remembers across restarts (`STATEDIR/db.json`): the roots it knows,
//! which it follows, and the datasets (with etags) of each followed root.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// A root as known from the broker.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct KnownRoot {
    pub(crate) name: String,
    /// Its publisher's HTTP address, when it has one.
    #[serde(default)]
    pub(crate) http: Option<String>,
    /// Whether the broker says a publisher is alive.
    #[serde(default)]
    pub(crate) online: bool,
    /// Whether we follow it.
    #[serde(default)]
    pub(crate) subscribed: bool,
    /// Dataset path → etag of the cached version (followed roots only).
    #[serde(default)]
    pub(crate) datasets: BTreeMap<String, String>,
}

/// The persisted state.
#[derive(Debug, Default, Serialize, Deserialize)]
pub(crate) struct State {
    #[serde(default)]
    pub(crate) roots: BTreeMap<String, KnownRoot>,
    #[serde(skip)]
    path: PathBuf,
}

impl State {
    /// Loads `statedir/db.json`; a corrupt file is set aside (the cache is revalidated anyway).
    pub(crate) fn load(statedir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(statedir)?;
        let path = statedir.join("db.json");
        let mut state = match std::fs::read(&path) {
            Ok(b) => serde_json::from_slice::<State>(&b).unwrap_or_else(|e| {
                tracing::warn!(path = %path.display(), error = %e, "corrupt state, starting afresh");
                let _ = std::fs::rename(&path, path.with_extension("json.corrupt"));
                State::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(e),
        };
        state.path = path;
        Ok(state)
    }

    /// Saves atomically (write aside, rename).
    pub(crate) fn save(&self) {
        let tmp = self.path.with_extension("json.tmp");
        let r = serde_json::to_vec_pretty(self)
            .map_err(std::io::Error::other)
            .and_then(|b| std::fs::write(&tmp, b))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = r {
            tracing::error!(path = %self.path.display(), error = %e, "cannot save state");
        }
    }
}
