//! The 8-connection slicing load run by `wrk`, a C load generator (Debian's `wrk`): the
//! figure then owes nothing to our own client's speed. Each request asks for a 64×64
//! window at a random offset of a random plane of the bench cube (384×512×512), so neither
//! caching nor block alignment flatters it.

use std::path::Path;
use std::process::Command;

/// The request generator: random windows, a seed per thread (wrk's Lua).
const SCRIPT: &str = r#"
local n = 0
setup = function(thread)
  n = n + 1
  thread:set("seed", n)
end
init = function(args)
  math.randomseed(12345 + seed)
end
request = function()
  local i = math.random(0, 383)
  local j = math.random(0, 447)
  local k = math.random(0, 447)
  local path = string.format(
    "/api/fetch/bench/cube.b2nd?slice_=%d,%d:%d,%d:%d&prefer_schunk=true",
    i, j, j + 64, k, k + 64)
  return wrk.format("GET", path)
end
"#;

/// What one run measured.
#[derive(Debug, Clone, Copy)]
pub struct Figures {
    /// Requests per second.
    pub rate: f64,
    /// Median latency, seconds.
    pub p50: f64,
    /// 99th percentile latency, seconds.
    pub p99: f64,
    /// Non-2xx answers, socket errors and timeouts.
    pub failed: u64,
}

/// Runs 8 connections on 2 threads for `secs` against `base` (`http://HOST:PORT`); `None`
/// (with the reason on stderr) when wrk cannot run or its output is not understood.
pub fn run(base: &str, secs: u64, scratch: &Path) -> Option<Figures> {
    let script = scratch.join("cube-windows.lua");
    std::fs::write(&script, SCRIPT).ok()?;
    let out = Command::new("wrk")
        .args(["-t2", "-c8", &format!("-d{secs}s"), "--latency", "-s"])
        .arg(&script)
        .arg(base)
        .output();
    let out = match out {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).into_owned(),
        Ok(o) => {
            eprintln!("wrk failed: {}", String::from_utf8_lossy(&o.stderr));
            return None;
        }
        Err(e) => {
            eprintln!("wrk cannot run ({e}): install Debian's wrk (scripts/setup does)");
            return None;
        }
    };
    let figures = parse(&out);
    if figures.is_none() {
        eprintln!("wrk's output not understood:\n{out}");
    }
    figures
}

/// Reads wrk's report.
fn parse(out: &str) -> Option<Figures> {
    let mut rate = None;
    let (mut p50, mut p99) = (None, None);
    let mut failed = 0u64;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["Requests/sec:", r] => rate = r.parse().ok(),
            ["50%", t] => p50 = seconds(t),
            ["99%", t] => p99 = seconds(t),
            ["Non-2xx", "or", "3xx", "responses:", n] => failed += n.parse::<u64>().ok()?,
            ["Socket", "errors:", rest @ ..] => {
                // "connect 0, read 0, write 0, timeout 0"
                failed += rest
                    .iter()
                    .filter_map(|w| w.trim_end_matches(',').parse::<u64>().ok())
                    .sum::<u64>();
            }
            _ => {}
        }
    }
    Some(Figures {
        rate: rate?,
        p50: p50?,
        p99: p99?,
        failed,
    })
}

/// wrk's durations: `512.00us`, `1.23ms`, `2.00s`, `1.50m`.
fn seconds(t: &str) -> Option<f64> {
    let split = t.find(|c: char| c.is_ascii_alphabetic())?;
    let (v, unit) = t.split_at(split);
    let v: f64 = v.parse().ok()?;
    Some(match unit {
        "us" => v * 1e-6,
        "ms" => v * 1e-3,
        "s" => v,
        "m" => v * 60.0,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_wrk_report() {
        let out = "Running 10s test @ http://127.0.0.1:8002
  2 threads and 8 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     1.20ms  400.00us  12.00ms   80.00%
    Req/Sec     3.30k   200.00     3.80k    70.00%
  Latency Distribution
     50%    1.10ms
     75%    1.40ms
     90%    1.80ms
     99%    2.50ms
  66000 requests in 10.00s, 100.00MB read
  Socket errors: connect 0, read 1, write 0, timeout 2
  Non-2xx or 3xx responses: 4
Requests/sec:   6600.00
Transfer/sec:     10.00MB
";
        let f = parse(out).unwrap();
        assert_eq!(f.rate, 6600.0);
        assert!((f.p50 - 1.1e-3).abs() < 1e-9 && (f.p99 - 2.5e-3).abs() < 1e-9);
        assert_eq!(f.failed, 7);
        assert_eq!(seconds("512.00us"), Some(512e-6));
        assert!(parse("garbage").is_none());
        assert!(parse("Requests/sec: 10").is_none());
    }
}
