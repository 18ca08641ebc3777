//! A TCP link that a test can cut and restore: the leaf-node connection between two NATS
//! sites goes through it, so a test sees what a site sees when its WAN link drops
//! (`tc netem` is not available on the machines this runs on; a proxy in user space is).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// Forwards connections made to [`LinkProxy::addr`] to the first of its targets that accepts,
/// counting bytes each way. [`LinkProxy::cut`] closes every connection and refuses new ones
/// until [`LinkProxy::restore`].
#[derive(Debug)]
pub struct LinkProxy {
    addr: SocketAddr,
    state: Arc<State>,
}

#[derive(Debug, Default)]
struct State {
    cut: AtomicBool,
    stopped: AtomicBool,
    open: Mutex<Vec<TcpStream>>,
    /// Bytes from the connecting side to the target.
    up: AtomicU64,
    /// Bytes from the target back.
    down: AtomicU64,
}

impl LinkProxy {
    /// A proxy on a random loopback port towards `targets`, tried in order for each new
    /// connection (so a target that is gone is skipped, as a client's URL list would be).
    ///
    /// # Panics
    /// When no loopback port can be bound (test support: a test failure).
    pub fn start(targets: Vec<SocketAddr>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a link proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || accept(&listener, &targets, &s));
        Self { addr, state }
    }

    /// Where to connect to cross the link.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Cuts the link: open connections are closed, new ones refused, until [`Self::restore`].
    pub fn cut(&self) {
        self.state.cut.store(true, Ordering::SeqCst);
        close_all(&self.state);
    }

    /// Lets connections through again.
    pub fn restore(&self) {
        self.state.cut.store(false, Ordering::SeqCst);
    }

    /// Bytes carried so far: (towards the targets, back from them).
    pub fn bytes(&self) -> (u64, u64) {
        (
            self.state.up.load(Ordering::Relaxed),
            self.state.down.load(Ordering::Relaxed),
        )
    }
}

impl Drop for LinkProxy {
    fn drop(&mut self) {
        self.state.stopped.store(true, Ordering::SeqCst);
        close_all(&self.state);
        // Wakes the accept loop so that it sees `stopped` and ends.
        let _ = TcpStream::connect(self.addr);
    }
}

fn close_all(state: &State) {
    let open = std::mem::take(&mut *state.open.lock().expect("link proxy lock"));
    for s in open {
        let _ = s.shutdown(Shutdown::Both);
    }
}

fn accept(listener: &TcpListener, targets: &[SocketAddr], state: &Arc<State>) {
    for conn in listener.incoming() {
        if state.stopped.load(Ordering::SeqCst) {
            return;
        }
        let Ok(client) = conn else { continue };
        if state.cut.load(Ordering::SeqCst) {
            drop(client);
            continue;
        }
        let Some(target) = targets.iter().find_map(|t| TcpStream::connect(t).ok()) else {
            continue;
        };
        let _ = client.set_nodelay(true);
        let _ = target.set_nodelay(true);
        let pairs = (client.try_clone(), target.try_clone());
        let (Ok(client2), Ok(target2)) = pairs else {
            continue;
        };
        {
            let mut open = state.open.lock().expect("link proxy lock");
            open.extend(client.try_clone().ok());
            open.extend(target.try_clone().ok());
        }
        let s = state.clone();
        std::thread::spawn(move || pump(client, target2, &s, true));
        let s = state.clone();
        std::thread::spawn(move || pump(target, client2, &s, false));
    }
}

/// Copies `from` to `to` until either side closes, then closes both.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &State, up: bool) {
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = match from.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if state.cut.load(Ordering::SeqCst) || to.write_all(&buf[..n]).is_err() {
            break;
        }
        let counter = if up { &state.up } else { &state.down };
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}
