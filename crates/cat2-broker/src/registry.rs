//! The registry of roots: who serves what, who is alive, persisted across restarts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use cat2_proto::RootName;
use cat2_proto::msg::{Register, RootEntry, Roots};
use serde::{Deserialize, Serialize};

/// A root and its live publishers.
#[derive(Debug)]
struct Root {
    http: Option<String>,
    /// Publisher instance → last heartbeat.
    publishers: HashMap<String, Instant>,
}

/// On-disk form (Caterva2's broker `db.json`: `{"roots": {name: {"name", "http"}}}`).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Db {
    roots: BTreeMap<String, DbRoot>,
}

#[derive(Debug, Serialize, Deserialize)]
struct DbRoot {
    name: String,
    #[serde(default)]
    http: Option<String>,
}

/// The registry. Not thread-safe by itself: the broker owns it behind one mutex.
#[derive(Debug)]
pub(crate) struct Registry {
    path: PathBuf,
    roots: BTreeMap<RootName, Root>,
}

impl Registry {
    /// Loads `statedir/db.json` (an unreadable or corrupt file is kept aside and the registry
    /// starts empty: publishers re-register within a heartbeat).
    pub(crate) fn load(statedir: &Path) -> std::io::Result<Self> {
        std::fs::create_dir_all(statedir)?;
        let path = statedir.join("db.json");
        let db: Db = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes).unwrap_or_else(|e| {
                let aside = path.with_extension("json.corrupt");
                tracing::warn!(path = %path.display(), error = %e, "corrupt registry, starting empty");
                let _ = std::fs::rename(&path, aside);
                Db::default()
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Db::default(),
            Err(e) => return Err(e),
        };
        // A name no publisher could register (the file was edited) is dropped, with a word.
        let roots = db
            .roots
            .into_values()
            .filter_map(|r| match RootName::new(&r.name) {
                Ok(name) => Some((
                    name,
                    Root {
                        http: r.http,
                        publishers: HashMap::new(),
                    },
                )),
                Err(e) => {
                    tracing::warn!(path = %path.display(), error = %e, "registry entry dropped");
                    None
                }
            })
            .collect();
        Ok(Self { path, roots })
    }

    fn save(&self) {
        let db = Db {
            roots: self
                .roots
                .iter()
                .map(|(n, r)| {
                    (
                        n.to_string(),
                        DbRoot {
                            name: n.to_string(),
                            http: r.http.clone(),
                        },
                    )
                })
                .collect(),
        };
        let tmp = self.path.with_extension("json.tmp");
        let result = serde_json::to_vec_pretty(&db)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(&tmp, bytes))
            .and_then(|()| std::fs::rename(&tmp, &self.path));
        if let Err(e) = result {
            tracing::error!(path = %self.path.display(), error = %e, "cannot save the registry");
        }
    }

    fn entry(name: &RootName, r: &Root) -> RootEntry {
        RootEntry {
            name: name.clone(),
            http: r.http.clone(),
            online: !r.publishers.is_empty(),
        }
    }

    /// Records a registration or heartbeat (its root name was checked as it was decoded).
    /// Returns the root's new state when it changed (new root, back online, new HTTP
    /// address), to announce.
    pub(crate) fn register(&mut self, reg: &Register, now: Instant) -> Option<RootEntry> {
        let name = &reg.root;
        let root = self.roots.entry(name.clone()).or_insert_with(|| Root {
            http: None,
            publishers: HashMap::new(),
        });
        let was_online = !root.publishers.is_empty();
        let http_changed = reg.http.is_some() && root.http != reg.http;
        let is_new = root.publishers.is_empty() && root.http.is_none() && !was_online;
        if http_changed {
            root.http.clone_from(&reg.http);
        }
        root.publishers.insert(reg.publisher.clone(), now);
        let entry = Self::entry(name, root);
        if http_changed || is_new {
            self.save();
        }
        (!was_online || http_changed).then_some(entry)
    }

    /// Forgets publishers silent for longer than `ttl`; returns the roots that went offline.
    pub(crate) fn expire(&mut self, now: Instant, ttl: Duration) -> Vec<RootEntry> {
        let mut offline = Vec::new();
        for (name, root) in &mut self.roots {
            let before = root.publishers.len();
            root.publishers
                .retain(|_, seen| now.saturating_duration_since(*seen) <= ttl);
            if before > 0 && root.publishers.is_empty() {
                offline.push(Self::entry(name, root));
            }
        }
        offline
    }

    /// Every root, online or not, by name.
    pub(crate) fn list(&self) -> Roots {
        Roots {
            roots: self.roots.iter().map(|(n, r)| Self::entry(n, r)).collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reg(root: &str, publisher: &str, http: Option<&str>) -> Register {
        Register {
            root: RootName::new(root).unwrap(),
            publisher: publisher.into(),
            http: http.map(Into::into),
        }
    }

    #[test]
    fn lifecycle_and_persistence() {
        let dir = tempfile::tempdir().unwrap();
        let t0 = Instant::now();
        let ttl = Duration::from_secs(3);
        let mut r = Registry::load(dir.path()).unwrap();
        let e = r
            .register(&reg("foo", "p1", Some("localhost:8001")), t0)
            .unwrap();
        assert!(e.online);
        // Heartbeats change nothing to announce.
        assert!(
            r.register(&reg("foo", "p1", Some("localhost:8001")), t0)
                .is_none()
        );
        assert!(
            r.register(&reg("foo", "p2", None), t0 + Duration::from_secs(2))
                .is_none()
        );
        assert!(
            r.expire(t0 + Duration::from_secs(4), ttl).is_empty(),
            "p2 still alive"
        );
        let off = r.expire(t0 + Duration::from_secs(6), ttl);
        assert_eq!(off.len(), 1);
        assert!(!off[0].online);
        assert_eq!(
            r.list().roots.len(),
            1,
            "offline roots are shown, not forgotten"
        );
        assert!(r.register(&reg("bar", "p3", None), t0).is_some());
        let again = Registry::load(dir.path()).unwrap();
        let names: Vec<String> = again
            .list()
            .roots
            .into_iter()
            .map(|e| e.name.into())
            .collect();
        assert_eq!(names, vec!["bar", "foo"]);
        assert_eq!(
            again.list().roots[1].http.as_deref(),
            Some("localhost:8001")
        );
        assert!(again.list().roots.iter().all(|e| !e.online));
    }

    #[test]
    fn corrupt_state_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db.json"), b"{not json").unwrap();
        let r = Registry::load(dir.path()).unwrap();
        assert!(r.list().roots.is_empty());
        assert!(dir.path().join("db.json.corrupt").exists());
    }
}
