//! A TCP link that a test can cut and restore: the leaf-node connection between two NATS
//! sites goes through it, so a test sees what a site sees when its WAN link drops
//! (`tc netem` is not available on the machines this runs on; a proxy in user space is).

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// What a link does to the bytes it carries, each way.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// One-way delay (half the round-trip time the link adds).
    pub delay: Duration,
    /// Bandwidth in bits per second (`None`: as fast as loopback).
    pub bits_per_second: Option<u64>,
}

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
    shape: Shape,
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
        Self::start_shaped(targets, Shape::default())
    }

    /// [`LinkProxy::start`], delaying and rate-limiting both directions by `shape` (a WAN
    /// link in user space: `tc netem` is not available where this runs).
    ///
    /// # Panics
    /// As [`LinkProxy::start`].
    pub fn start_shaped(targets: Vec<SocketAddr>, shape: Shape) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind a link proxy");
        let addr = listener.local_addr().expect("proxy address");
        let state = Arc::new(State {
            shape,
            ..State::default()
        });
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

/// Copies `from` to `to` until either side closes, then closes both. A shaped link reads
/// and writes in two threads: what is read is stamped, and written once its delay has
/// passed and the link's rate allows.
fn pump(mut from: TcpStream, mut to: TcpStream, state: &Arc<State>, up: bool) {
    let counter = if up { &state.up } else { &state.down };
    let mut buf = vec![0u8; 64 * 1024];
    if state.shape == Shape::default() {
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if state.cut.load(Ordering::SeqCst) {
                break;
            }
            // Counted before it is written: the peer may read it (and a test look at the
            // counter) before this thread runs again.
            counter.fetch_add(n as u64, Ordering::Relaxed);
            if to.write_all(&buf[..n]).is_err() {
                break;
            }
        }
    } else {
        // Bounded, as a router's queue is: what the delay holds in flight (rate × delay)
        // plus 256 KiB, in reads of up to 64 KiB; a full queue stops the reads, and TCP
        // slows the sender down.
        let in_flight = state.shape.bits_per_second.map_or(1 << 30, |bps| {
            (bps as f64 / 8.0 * state.shape.delay.as_secs_f64()) as usize
        });
        let slots = ((in_flight + (256 << 10)) / buf.len()).clamp(4, 1 << 14);
        let (tx, rx) = mpsc::sync_channel::<(Instant, Vec<u8>)>(slots);
        let (writer, s) = (to.try_clone(), state.clone());
        let writer = writer.map(|w| std::thread::spawn(move || deliver(w, &rx, &s, up)));
        loop {
            let n = match from.read(&mut buf) {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if tx.send((Instant::now(), buf[..n].to_vec())).is_err() {
                break;
            }
        }
        drop(tx);
        if let Ok(w) = writer {
            let _ = w.join();
        }
    }
    let _ = from.shutdown(Shutdown::Both);
    let _ = to.shutdown(Shutdown::Both);
}

/// Writes what `rx` brings once `shape.delay` has passed since it was read, no faster than
/// `shape.bits_per_second`.
fn deliver(mut to: TcpStream, rx: &mpsc::Receiver<(Instant, Vec<u8>)>, state: &State, up: bool) {
    let counter = if up { &state.up } else { &state.down };
    let mut free_at = Instant::now();
    while let Ok((read_at, bytes)) = rx.recv() {
        let at = (read_at + state.shape.delay).max(free_at);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        if state.cut.load(Ordering::SeqCst) {
            break;
        }
        // Counted before it is written, as in `pump`.
        counter.fetch_add(bytes.len() as u64, Ordering::Relaxed);
        if to.write_all(&bytes).is_err() {
            break;
        }
        free_at = at;
        if let Some(bps) = state.shape.bits_per_second {
            free_at += Duration::from_secs_f64(bytes.len() as f64 * 8.0 / bps as f64);
        }
    }
    let _ = to.shutdown(Shutdown::Both);
}
