//! The process's own figures, read from `/proc/self` at scrape time (Linux; elsewhere they
//! stay 0), under the names Prometheus's client libraries use.

use std::sync::atomic::AtomicU64;

use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

/// Clock ticks per second of `/proc/<pid>/stat` times: USER_HZ, fixed at 100 by the Linux
/// ABI on the architectures cat2 builds for.
const TICKS_PER_SECOND: f64 = 100.0;

pub(crate) struct Metrics {
    rss: Gauge,
    fds: Gauge,
    cpu: Gauge<f64, AtomicU64>,
}

impl Metrics {
    pub(crate) fn register(registry: &mut Registry) -> Self {
        let m = Self {
            rss: Gauge::default(),
            fds: Gauge::default(),
            cpu: Gauge::default(),
        };
        let r = registry.sub_registry_with_prefix("process");
        r.register(
            "resident_memory_bytes",
            "resident memory of the process",
            m.rss.clone(),
        );
        r.register("open_fds", "open file descriptors", m.fds.clone());
        // A gauge (the value is read, not counted here), named as the client libraries name
        // this counter.
        r.register(
            "cpu_seconds",
            "user and system CPU time of the process",
            m.cpu.clone(),
        );
        m
    }

    pub(crate) fn update(&self) {
        if let Some(kb) = status_kb("VmRSS:") {
            self.rss.set(i64::try_from(kb * 1024).unwrap_or(i64::MAX));
        }
        if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
            self.fds.set(i64::try_from(dir.count()).unwrap_or(i64::MAX));
        }
        if let Some(ticks) = cpu_ticks() {
            self.cpu.set(ticks as f64 / TICKS_PER_SECOND);
        }
    }
}

fn status_kb(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime, fields 14 and 15 of `/proc/self/stat` (counted after the command name,
/// which is in parentheses and may hold spaces).
fn cpu_ticks() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/self/stat").ok()?;
    let after = stat.rsplit_once(')')?.1;
    let fields: Vec<&str> = after.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}
