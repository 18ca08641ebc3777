//! A cat2 deployment of real binaries (`cat2bro`, `cat2pub`, `cat2sub`) on a real nats-server,
//! for end-to-end tests. Ports are chosen by the OS (`--http 127.0.0.1:0`); each service
//! writes the address it got to a ready file (`CAT2_READY_FILE`) that the harness waits for.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cat2_testkit::NatsServer;

/// Where cargo put this workspace's binaries (next to the test executable's `deps/`).
///
/// # Panics
/// When the binary is missing, or older than a source file it is built from (cargo's
/// dep-info file next to it names them): a test must not pass or fail on a stale build.
/// `scripts/test` builds them first (`cargo build --bins`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // Tests run from target/<profile>/deps/, programs (cat2-bench) from target/<profile>/.
    let mut dir = exe.parent().expect("target/<profile>/...");
    if dir.file_name().is_some_and(|n| n == "deps") {
        dir = dir.parent().expect("target/<profile>");
    }
    let p = dir.join(name);
    assert!(
        p.exists(),
        "{} is missing: run `cargo build --bins` first (scripts/test does)",
        p.display()
    );
    if let Some(newer) = newer_source(&p) {
        panic!(
            "{} is older than {}, which it is built from: run `cargo build --bins` first \
             (scripts/test does)",
            p.display(),
            newer.display()
        );
    }
    p
}

/// A source file of `binary` (from its dep-info file `binary.d`) modified after it was
/// built, if any.
fn newer_source(binary: &Path) -> Option<PathBuf> {
    let built = std::fs::metadata(binary).and_then(|m| m.modified()).ok()?;
    let deps = std::fs::read_to_string(binary.with_extension("d")).ok()?;
    // First line: `BINARY: SOURCE SOURCE ...`, spaces inside paths escaped as `\ `.
    let (_, sources) = deps.lines().next()?.split_once(": ")?;
    let sources = sources.replace("\\ ", "\0");
    sources
        .split_whitespace()
        .map(|s| PathBuf::from(s.replace('\0', " ")))
        .find(|src| {
            std::fs::metadata(src)
                .and_then(|m| m.modified())
                .is_ok_and(|t| t > built)
        })
}

/// A running service process, killed on drop. Its stderr goes to a log file in the cluster's
/// directory, shown by [`Proc::log`].
#[derive(Debug)]
pub struct Proc {
    child: Option<Child>,
    log: PathBuf,
    /// The address it announced (its ready file), when it serves HTTP.
    pub http: Option<String>,
}

impl Proc {
    /// The process's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// Kills it at once (SIGKILL), as a crash would.
    pub fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Asks it to stop (SIGTERM) and returns how long it took to exit.
    ///
    /// # Panics
    /// When it does not exit within 5 s.
    pub fn terminate(&mut self) -> Duration {
        let Some(mut c) = self.child.take() else {
            return Duration::ZERO;
        };
        let t = Instant::now();
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(c.id().to_string())
            .status();
        while t.elapsed() < Duration::from_secs(5) {
            if let Ok(Some(_)) = c.try_wait() {
                return t.elapsed();
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        let _ = c.kill();
        panic!(
            "process did not stop on SIGTERM within 5 s; log:\n{}",
            self.log()
        );
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

impl Drop for Proc {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A nats-server, and a directory for the services' state and logs.
#[derive(Debug)]
pub struct Cluster {
    /// The NATS server.
    pub nats: NatsServer,
    /// State, logs, ready files.
    pub dir: tempfile::TempDir,
    seq: usize,
    /// Where services started from now on connect, when not `nats` (another site's server).
    url: Option<String>,
}

impl Cluster {
    /// A fresh nats-server (with `args`, e.g. a config) and an empty directory.
    pub fn new(nats_args: &[&str]) -> Self {
        Self {
            nats: NatsServer::start_with_args(nats_args),
            dir: tempfile::tempdir().expect("temp dir"),
            seq: 0,
            url: None,
        }
    }

    /// Services started from now on connect to `url` (a node of a [`cat2_testkit::NatsSite`],
    /// say) instead of this cluster's own server.
    pub fn connect_to(&mut self, url: &str) {
        self.url = Some(url.to_owned());
    }

    fn nats_url(&self) -> String {
        self.url
            .clone()
            .unwrap_or_else(|| self.nats.url().to_owned())
    }

    /// A path inside the cluster's directory.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    fn spawn(&mut self, name: &str, args: &[String], wait_http: bool) -> Proc {
        self.seq += 1;
        let log = self.path(&format!("{name}.{}.log", self.seq));
        let ready = self.path(&format!("{name}.{}.ready", self.seq));
        let child = Command::new(bin(name))
            .args(args)
            .env("CAT2_READY_FILE", &ready)
            .env("RUST_LOG", "info")
            .env_remove("NATS_URL")
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).expect("log file"))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        let mut p = Proc {
            child: Some(child),
            log,
            http: None,
        };
        if wait_http {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                if let Ok(addr) = std::fs::read_to_string(&ready) {
                    p.http = Some(addr);
                    break;
                }
                if let Some(Ok(Some(status))) = p.child.as_mut().map(Child::try_wait) {
                    panic!("{name} exited with {status}; log:\n{}", p.log());
                }
                assert!(
                    Instant::now() < deadline,
                    "{name} not ready in 20 s; log:\n{}",
                    p.log()
                );
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        p
    }

    /// Starts `cat2bro` with its state in `bro/` (a restarted broker finds its registry).
    pub fn broker(&mut self) -> Proc {
        self.broker_in("bro")
    }

    /// Starts `cat2bro` with its state in `dir` (another broker beside the first).
    pub fn broker_in(&mut self, dir: &str) -> Proc {
        self.broker_with(dir, &[])
    }

    /// [`Cluster::broker_in`] with more flags.
    pub fn broker_with(&mut self, dir: &str, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = vec![
            "--nats".into(),
            self.nats_url(),
            "--http".into(),
            "127.0.0.1:0".into(),
            "--statedir".into(),
            self.path(dir).display().to_string(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        self.spawn("cat2bro", &args, true)
    }

    /// Starts `cat2pub NAME ROOT` as instance `id` (no HTTP unless `http`).
    pub fn publisher(&mut self, name: &str, root: &Path, id: &str, http: bool) -> Proc {
        self.publisher_with(name, root, id, http, &[])
    }

    /// [`Cluster::publisher`] with more flags.
    pub fn publisher_with(
        &mut self,
        name: &str,
        root: &Path,
        id: &str,
        http: bool,
        extra: &[&str],
    ) -> Proc {
        let mut args: Vec<String> =
            vec!["--nats".into(), self.nats_url(), "--id".into(), id.into()];
        args.extend([
            "--statedir".into(),
            self.path(&format!("pub.{id}")).display().to_string(),
        ]);
        args.extend([
            "--http".into(),
            if http {
                "127.0.0.1:0".into()
            } else {
                "off".into()
            },
        ]);
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        args.extend([name.into(), root.display().to_string()]);
        // With `--ops` and no HTTP, the ready file names the ops address.
        let wait = http || extra.contains(&"--ops");
        self.spawn("cat2pub", &args, wait)
    }

    /// Starts `cat2sub` with its state in `sub/` and the given request timeout.
    pub fn subscriber(&mut self, timeout_secs: f64) -> Proc {
        self.subscriber_with(timeout_secs, &[])
    }

    /// [`Cluster::subscriber`] with more flags.
    pub fn subscriber_with(&mut self, timeout_secs: f64, extra: &[&str]) -> Proc {
        let mut args: Vec<String> = vec![
            "--nats".into(),
            self.nats_url(),
            "--http".into(),
            "127.0.0.1:0".into(),
            "--statedir".into(),
            self.path("sub").display().to_string(),
            "--timeout".into(),
            timeout_secs.to_string(),
        ];
        args.extend(extra.iter().map(|a| (*a).to_owned()));
        self.spawn("cat2sub", &args, true)
    }
}

/// Polls `check` until it returns `Some`, or panics after `timeout` with `what`.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {timeout:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Subscribes the subscriber at `base` to `root`, retrying until its publisher is announced
/// (panics after 15 s).
pub async fn subscribe(http: &reqwest::Client, base: &str, root: &str) {
    wait_until("subscribed", Duration::from_secs(15), || async {
        let r = http
            .post(format!("{base}/api/subscribe/{root}"))
            .send()
            .await
            .ok()?;
        (r.status() == 200).then_some(())
    })
    .await;
}
