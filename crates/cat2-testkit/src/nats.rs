//! A real nats-server per test.

use std::io::{BufRead, BufReader};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::tools;

/// How long a server may take to write its ports file.
const START_TIMEOUT: Duration = Duration::from_secs(15);

/// A running `nats-server` on 127.0.0.1 and a random port, with its own temporary directory
/// (ports file, log, JetStream store). Killed and reaped on drop.
#[derive(Debug)]
pub struct NatsServer {
    child: Child,
    dir: tempfile::TempDir,
    url: String,
    port: u16,
    monitor_port: Option<u16>,
    bin: PathBuf,
    args: Vec<String>,
}

impl NatsServer {
    /// Starts a server with default settings (1 MiB `max_payload`, no JetStream).
    ///
    /// # Panics
    /// When nats-server is missing (with an install hint) or does not come up in time: this is
    /// test support, a failure to start is a test failure.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// Starts a server with extra command-line arguments (e.g. `["-js"]`, `["-c", conf]`).
    /// `-m -1` in `args` enables the monitoring endpoint on a random port.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_args(args: &[&str]) -> Self {
        let bin = tools::nats_server().unwrap_or_else(|e| panic!("{e}"));
        Self::start_with_binary(&bin, args)
    }

    /// Starts the nats-server binary at `bin` with extra arguments.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_binary(bin: &Path, args: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("create a temp dir for nats-server");
        let (child, url, port, monitor_port) = spawn(bin, args, &dir, "-1");
        let server = Self {
            child,
            dir,
            url,
            port,
            monitor_port,
            bin: bin.to_path_buf(),
            args: args.iter().map(|a| a.to_string()).collect(),
        };
        server.check_speaks();
        server
    }

    /// Kills the server and starts it again on the same port (same JetStream store), as an
    /// operator restarting it would. Clients reconnect by themselves.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn restart(&mut self) {
        self.stop();
        let args: Vec<&str> = self.args.iter().map(String::as_str).collect();
        let (child, url, port, monitor_port) =
            spawn(&self.bin, &args, &self.dir, &self.port.to_string());
        (self.child, self.url, self.port, self.monitor_port) = (child, url, port, monitor_port);
        self.check_speaks();
    }

    /// Kills the server (a later [`NatsServer::restart`] brings it back).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(
    bin: &Path,
    args: &[&str],
    dir: &tempfile::TempDir,
    port: &str,
) -> (Child, String, u16, Option<u16>) {
    {
        let log = dir.path().join("nats-server.log");
        let mut cmd = Command::new(bin);
        cmd.args(args)
            .args(["-a", "127.0.0.1", "-p", port, "--ports_file_dir"])
            .arg(dir.path())
            .arg("-sd")
            .arg(dir.path().join("jetstream"))
            .arg("-l")
            .arg(&log)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("stderr.log"))
                    .map_or_else(|_| Stdio::null(), Stdio::from),
            );
        let mut child = cmd.spawn().unwrap_or_else(|e| {
            panic!("cannot run {}: {e}; {}", bin.display(), tools::INSTALL_HINT)
        });
        let ports = dir.path().join(format!("nats-server_{}.ports", child.id()));
        let deadline = Instant::now() + START_TIMEOUT;
        let (url, port, monitor_port) = loop {
            if let Some(found) = read_ports(&ports) {
                break found;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "nats-server exited with {status} before it was ready; log:\n{}",
                    read_log(&log)
                );
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!(
                    "nats-server did not write {} in {START_TIMEOUT:?}; log:\n{}",
                    ports.display(),
                    read_log(&log)
                );
            }
            // Polling a file the server writes once it listens: there is no event to wait on.
            std::thread::sleep(Duration::from_millis(5));
        };
        (child, url, port, monitor_port)
    }
}

impl NatsServer {
    /// Starts a server with the project's `nats/nats-server.conf` (listen address, ports and
    /// store directory overridden for the test; monitoring on a random port).
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_project_config() -> Self {
        let conf = tools::workspace_root().join("nats/nats-server.conf");
        let conf = conf.to_str().expect("utf-8 workspace path").to_owned();
        Self::start_with_args(&["-c", &conf, "-m", "-1", "-js"])
    }

    /// Starts a server with `max_payload` set to `bytes`.
    ///
    /// # Panics
    /// As [`NatsServer::start`].
    pub fn start_with_max_payload(bytes: usize) -> Self {
        let conf = tempfile::Builder::new()
            .suffix(".conf")
            .tempfile()
            .expect("temp config");
        std::fs::write(conf.path(), format!("max_payload: {bytes}\n")).expect("write config");
        let path = conf.path().to_str().expect("utf-8 temp path").to_owned();
        let server = Self::start_with_args(&["-c", &path]);
        drop(conf);
        server
    }

    /// The client URL, `nats://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The client port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The monitoring port, when started with `-m -1`.
    pub fn monitor_port(&self) -> Option<u16> {
        self.monitor_port
    }

    /// The server's log file.
    pub fn log_path(&self) -> PathBuf {
        self.dir.path().join("nats-server.log")
    }

    /// The server's log, for failure messages.
    pub fn log(&self) -> String {
        read_log(&self.log_path())
    }

    /// Reads the server's INFO line: proves it accepts and speaks the protocol.
    fn check_speaks(&self) {
        let stream = TcpStream::connect(("127.0.0.1", self.port)).unwrap_or_else(|e| {
            panic!(
                "nats-server on port {} refused a connection: {e}",
                self.port
            )
        });
        stream
            .set_read_timeout(Some(START_TIMEOUT))
            .expect("set read timeout");
        let mut line = String::new();
        BufReader::new(stream)
            .read_line(&mut line)
            .expect("read INFO from nats-server");
        assert!(
            line.starts_with("INFO "),
            "unexpected greeting from nats-server: {line:?}"
        );
    }
}

impl Drop for NatsServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_ports(path: &Path) -> Option<(String, u16, Option<u16>)> {
    let text = std::fs::read_to_string(path).ok()?;
    let v: serde_json::Value = serde_json::from_str(&text).ok()?;
    let url = v.get("nats")?.as_array()?.first()?.as_str()?.to_owned();
    let port = url.rsplit(':').next()?.parse().ok()?;
    let monitor_port = v.get("monitoring").and_then(|m| {
        m.as_array()?
            .first()?
            .as_str()?
            .rsplit(':')
            .next()?
            .parse()
            .ok()
    });
    Some((url, port, monitor_port))
}

fn read_log(path: &Path) -> String {
    let log = std::fs::read_to_string(path).unwrap_or_else(|e| format!("(no log: {e})"));
    let stderr = std::fs::read_to_string(path.with_file_name("stderr.log")).unwrap_or_default();
    format!("{log}{stderr}")
}
