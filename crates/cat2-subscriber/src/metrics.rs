//! The subscriber's own metrics (registered in its service's [`cat2_ops::Ops`]).

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Why a chunk request was asked again.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Reason {
    pub(crate) reason: String,
}

/// An HTTP status code.
#[derive(Debug, Clone, Hash, PartialEq, Eq, EncodeLabelSet)]
pub(crate) struct Code {
    pub(crate) code: u16,
}

/// What the subscriber counts.
#[derive(Debug, Default)]
pub(crate) struct Metrics {
    /// Chunks a read needed that were cached.
    pub(crate) chunk_hits: Counter,
    /// Chunks a read needed that were not (fetched, or waited for).
    pub(crate) chunk_misses: Counter,
    /// Chunks received from publishers and stored.
    pub(crate) chunks_fetched: Counter,
    /// Their bytes.
    pub(crate) fetched_bytes: Counter,
    /// Chunk requests asked again, by why.
    pub(crate) retries: Family<Reason, Counter>,
    /// HTTP answers, by status code.
    pub(crate) http: Family<Code, Counter>,
    /// Chunk fetches in flight (set at scrape time).
    pub(crate) fetches_in_flight: Gauge,
    /// Bytes of results in flight, held against the memory budget (set at scrape time).
    pub(crate) results_bytes: Gauge,
    /// Bytes and files of the cache directory (set at scrape time).
    pub(crate) cache_bytes: Gauge,
    pub(crate) cache_files: Gauge,
}

/// Bytes and files under `dir` (a missing directory is empty).
pub(crate) fn dir_usage(dir: &std::path::Path) -> (u64, u64) {
    let (mut bytes, mut files) = (0, 0);
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => todo.push(e.path()),
                Ok(m) => {
                    bytes += m.len();
                    files += 1;
                }
                Err(_) => {}
            }
        }
    }
    (bytes, files)
}

impl Metrics {
    pub(crate) fn register(&self, registry: &mut Registry) {
        let r = registry.sub_registry_with_prefix("cat2_sub");
        for (name, help, c) in [
            (
                "chunk_hits",
                "chunks a read needed that were cached",
                &self.chunk_hits,
            ),
            (
                "chunk_misses",
                "chunks a read needed that were not cached",
                &self.chunk_misses,
            ),
            (
                "chunks_fetched",
                "chunks received from publishers and stored",
                &self.chunks_fetched,
            ),
            (
                "fetched_bytes",
                "bytes of chunks received from publishers",
                &self.fetched_bytes,
            ),
        ] {
            r.register(name, help, c.clone());
        }
        r.register(
            "fetch_retries",
            "chunk requests asked again, by reason",
            self.retries.clone(),
        );
        r.register(
            "http_responses",
            "HTTP answers, by status code",
            self.http.clone(),
        );
        for (name, help, g) in [
            (
                "fetches_in_flight",
                "chunk fetches in flight",
                &self.fetches_in_flight,
            ),
            (
                "results_in_flight_bytes",
                "bytes of results in flight (memory budget)",
                &self.results_bytes,
            ),
            ("cache_bytes", "bytes of the cache files", &self.cache_bytes),
            ("cache_files", "cache files (datasets)", &self.cache_files),
        ] {
            r.register(name, help, g.clone());
        }
    }

    pub(crate) fn retry(&self, reason: &str) {
        self.retries
            .get_or_create(&Reason {
                reason: reason.to_owned(),
            })
            .inc();
    }
}
