//! Several NATS sites on one machine: a 3-node cluster (the hub, where publishers and
//! brokers live) and a leaf server (a remote site) whose leaf connection crosses a
//! [`LinkProxy`] the test can cut. Every server includes the project's `nats/common.conf`,
//! as the shipped `nats/cluster/*.conf` and `nats/leaf.conf` do, so tests run the shipped
//! keep-alive and payload settings.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::link::{LinkProxy, Shape};
use crate::nats::NatsServer;
use crate::tools;

/// How long the cluster may take to mesh and the leaf to attach.
const FORM_TIMEOUT: Duration = Duration::from_secs(20);

/// A hub of three routed nats-servers and one leaf server behind a cuttable link. Servers
/// are killed on drop.
#[derive(Debug)]
pub struct NatsSite {
    /// The hub's nodes (n1, n2, n3); clients may use any of them.
    pub hub: Vec<NatsServer>,
    /// The remote site's server.
    pub leaf: NatsServer,
    /// The leaf's link to the hub (to n1, else n2, else n3).
    pub link: LinkProxy,
    _conf: tempfile::TempDir,
}

impl NatsSite {
    /// Starts the hub, waits until its routes are up, starts the leaf and waits until it is
    /// attached.
    ///
    /// # Panics
    /// When a server does not start or the site does not form in time (test support).
    pub fn start() -> Self {
        Self::start_shaped(Shape::default())
    }

    /// [`NatsSite::start`] with the leaf link shaped (delay, bandwidth): a remote site
    /// behind a WAN link.
    ///
    /// # Panics
    /// As [`NatsSite::start`].
    pub fn start_shaped(shape: Shape) -> Self {
        let conf = tempfile::tempdir().expect("temp dir for configs");
        let common = tools::workspace_root().join("nats/common.conf");
        std::fs::copy(&common, conf.path().join("common.conf")).expect("copy nats/common.conf");
        // n1 first, on ports of its own choosing; n2 and n3 route to it, and the full mesh
        // forms by gossip (no port is picked before a server binds it, so parallel tests
        // cannot collide).
        let node = |i: usize, routes: &str| {
            let text = format!(
                "include ./common.conf\nserver_name: n{i}\n\
                 cluster {{\n  name: hub\n  listen: 127.0.0.1:-1\n  routes: [{routes}]\n}}\n\
                 leafnodes {{\n  listen: 127.0.0.1:-1\n  no_advertise: true\n}}\n"
            );
            start_with(conf.path(), &format!("n{i}.conf"), &text)
        };
        let n1 = node(1, "");
        let seed = port_of(&n1, "cluster", "cluster_port");
        let route = format!("nats-route://127.0.0.1:{seed}");
        let hub = vec![n1, node(2, &route), node(3, &route)];
        for node in &hub {
            wait_until(node, "routes to both other nodes", || peers(node) == 2);
        }
        let leaf_ports: Vec<u16> = hub.iter().map(|n| port_of(n, "leaf", "port")).collect();
        let link = LinkProxy::start_shaped(
            leaf_ports
                .iter()
                .map(|p| SocketAddr::from(([127, 0, 0, 1], *p)))
                .collect(),
            shape,
        );
        let text = format!(
            "include ./common.conf\nserver_name: site\n\
             leafnodes {{\n  reconnect: \"250ms\"\n  remotes: [ {{ urls: [\"nats-leaf://{}\"], compression: off }} ]\n}}\n",
            link.addr()
        );
        let leaf = start_with(conf.path(), "leaf.conf", &text);
        let site = Self {
            hub,
            leaf,
            link,
            _conf: conf,
        };
        site.wait_attached();
        site
    }

    /// Waits until the leaf is attached to the hub again (after a [`LinkProxy::restore`]).
    ///
    /// # Panics
    /// After 20 s.
    pub fn wait_attached(&self) {
        wait_until(&self.leaf, "attached to the hub", || self.attached());
    }

    /// Whether the leaf is attached to the hub now.
    pub fn attached(&self) -> bool {
        monitor_number(&self.leaf, "/leafz", "leafnodes") == Some(1)
    }
}

/// A port a server listens on, from its `/varz` (`section.field`).
fn port_of(server: &NatsServer, section: &str, field: &str) -> u16 {
    monitor_json(server, "/varz")
        .and_then(|v| v.get(section)?.get(field)?.as_u64())
        .and_then(|p| u16::try_from(p).ok())
        .unwrap_or_else(|| panic!("no {section}.{field} in /varz of {}", server.url()))
}

fn start_with(dir: &Path, name: &str, text: &str) -> NatsServer {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("write a nats config");
    let path = path.to_str().expect("utf-8 temp path").to_owned();
    NatsServer::start_with_args(&["-c", &path, "-m", "-1"])
}

/// Polls monitoring until `done` (there is no event to wait on).
fn wait_until(server: &NatsServer, what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + FORM_TIMEOUT;
    while !done() {
        assert!(
            Instant::now() < deadline,
            "{} not {what} in {FORM_TIMEOUT:?}; log:\n{}",
            server.url(),
            server.log()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// How many other nodes `server` has routes to (since 2.10 each pair of nodes has a pool of
/// route connections, so `num_routes` counts connections, not peers).
fn peers(server: &NatsServer) -> usize {
    let Some(routez) = monitor_json(server, "/routez") else {
        return 0;
    };
    let mut ids: Vec<&str> = routez["routes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|r| r["remote_id"].as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    ids.len()
}

/// A number from a monitoring endpoint's JSON (`/varz`, `/routez`, `/leafz`, …).
pub fn monitor_number(server: &NatsServer, path: &str, field: &str) -> Option<u64> {
    monitor_json(server, path)?.get(field)?.as_u64()
}

/// A monitoring endpoint's JSON, or `None` when it cannot be read.
pub fn monitor_json(server: &NatsServer, path: &str) -> Option<serde_json::Value> {
    let port = server.monitor_port()?;
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    write!(s, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    let body = text.split_once("\r\n\r\n")?.1;
    serde_json::from_str(body).ok()
}
