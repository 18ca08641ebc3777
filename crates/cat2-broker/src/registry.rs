//! The registry of roots: who serves what, who is alive, persisted across restarts.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use cat2_proto::RootName;
use cat2_proto::msg::{ROOTS_PAGE, Register, RootEntry, Roots};
use serde::{Deserialize, Serialize};

/// A root and its live publishers.
#[derive(Debug)]
struct Root {
    http: Option<String>,
    /// Publisher instance → last heartbeat.
    publishers: HashMap<String, Instant>,
    /// Since when (seconds since the epoch) no publisher is alive; kept across restarts so
    /// that roots whose publishers are gone for good are forgotten.
    offline_since: Option<u64>,
}

fn now_secs() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
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
    /// cat2's own field (Caterva2 ignores it): when the root went offline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    offline_since: Option<u64>,
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
                        // Offline until a publisher heartbeats, since the file says or now.
                        offline_since: Some(r.offline_since.unwrap_or_else(now_secs)),
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
                            offline_since: r.offline_since,
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
            offline_since: None,
        });
        let was_online = !root.publishers.is_empty();
        let http_changed = reg.http.is_some() && root.http != reg.http;
        let is_new = root.publishers.is_empty() && root.http.is_none() && !was_online;
        if http_changed {
            root.http.clone_from(&reg.http);
        }
        root.publishers.insert(reg.publisher.clone(), now);
        let back = root.offline_since.take().is_some();
        let entry = Self::entry(name, root);
        if http_changed || is_new || back {
            self.save();
        }
        (!was_online || http_changed).then_some(entry)
    }

    /// Forgets publishers silent for longer than `ttl`; returns the roots that went offline.
    /// Roots offline for longer than `forget` (if any) are removed from the registry.
    pub(crate) fn expire(
        &mut self,
        now: Instant,
        ttl: Duration,
        forget: Option<Duration>,
    ) -> Vec<RootEntry> {
        let mut offline = Vec::new();
        let secs = now_secs();
        for (name, root) in &mut self.roots {
            let before = root.publishers.len();
            root.publishers
                .retain(|_, seen| now.saturating_duration_since(*seen) <= ttl);
            if before > 0 && root.publishers.is_empty() {
                root.offline_since = Some(secs);
                offline.push(Self::entry(name, root));
            }
        }
        let before = self.roots.len();
        if let Some(forget) = forget {
            self.roots.retain(|name, r| {
                let gone = r
                    .offline_since
                    .is_some_and(|t| secs.saturating_sub(t) > forget.as_secs());
                if gone {
                    tracing::info!(root = %name, "root forgotten: its publishers are gone for longer than --forget-after");
                }
                !gone
            });
        }
        if !offline.is_empty() || self.roots.len() != before {
            self.save();
        }
        offline
    }

    /// One page of the roots, online or not, by name: those after `after`.
    pub(crate) fn page(&self, after: Option<&RootName>) -> Roots {
        use std::ops::Bound;
        let from = after.map_or(Bound::Unbounded, Bound::Excluded);
        let mut it = self.roots.range::<RootName, _>((from, Bound::Unbounded));
        let roots: Vec<RootEntry> = it
            .by_ref()
            .take(ROOTS_PAGE)
            .map(|(n, r)| Self::entry(n, r))
            .collect();
        let next = if it.next().is_some() {
            roots.last().map(|r| r.name.clone())
        } else {
            None
        };
        Roots { roots, next }
    }

    /// Every root, online or not, by name.
    pub(crate) fn list(&self) -> Vec<RootEntry> {
        self.roots.iter().map(|(n, r)| Self::entry(n, r)).collect()
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
            r.expire(t0 + Duration::from_secs(4), ttl, None).is_empty(),
            "p2 still alive"
        );
        let off = r.expire(t0 + Duration::from_secs(6), ttl, None);
        assert_eq!(off.len(), 1);
        assert!(!off[0].online);
        assert_eq!(r.list().len(), 1, "offline roots are shown, not forgotten");
        assert!(r.register(&reg("bar", "p3", None), t0).is_some());
        let again = Registry::load(dir.path()).unwrap();
        let names: Vec<String> = again.list().into_iter().map(|e| e.name.into()).collect();
        assert_eq!(names, vec!["bar", "foo"]);
        assert_eq!(again.list()[1].http.as_deref(), Some("localhost:8001"));
        assert!(again.list().iter().all(|e| !e.online));
    }

    #[test]
    fn corrupt_state_is_set_aside() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("db.json"), b"{not json").unwrap();
        let r = Registry::load(dir.path()).unwrap();
        assert!(r.list().is_empty());
        assert!(dir.path().join("db.json.corrupt").exists());
    }

    #[test]
    fn pages_and_forgetting() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = Registry::load(dir.path()).unwrap();
        let t0 = Instant::now();
        let n = ROOTS_PAGE * 2 + 5;
        for i in 0..n {
            r.register(&reg(&format!("r{i:05}"), "p", None), t0);
        }
        let mut seen = Vec::new();
        let mut after = None;
        loop {
            let page = r.page(after.as_ref());
            assert!(page.roots.len() <= ROOTS_PAGE);
            let bytes = cat2_proto::encode(&page).len();
            assert!(bytes < 512 << 10, "a page of {bytes} bytes");
            seen.extend(page.roots.iter().map(|e| e.name.to_string()));
            match page.next {
                Some(next) => after = Some(next),
                None => break,
            }
        }
        assert_eq!(seen.len(), n);
        assert!(
            seen.windows(2).all(|w| w[0] < w[1]),
            "in order, none repeated"
        );
        // Offline since an hour ago (as a restart would load it): forgotten past a minute.
        let ttl = Duration::from_secs(3);
        r.expire(t0 + Duration::from_secs(10), ttl, None);
        for root in r.roots.values_mut() {
            root.offline_since = Some(now_secs() - 3600);
        }
        r.register(&reg("r00000", "p", None), t0 + Duration::from_secs(11));
        r.expire(
            t0 + Duration::from_secs(12),
            ttl,
            Some(Duration::from_secs(60)),
        );
        let left: Vec<String> = r.list().iter().map(|e| e.name.to_string()).collect();
        assert_eq!(left, ["r00000"], "only the root whose publisher came back");
        let again = Registry::load(dir.path()).unwrap();
        assert_eq!(again.list().len(), 1, "forgetting is saved");
    }
}
