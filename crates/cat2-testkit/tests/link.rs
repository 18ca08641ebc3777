//! The link proxy carries bytes both ways, drops everything on a cut, and carries new
//! connections again after a restore.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};

use cat2_testkit::LinkProxy;

/// An echo server on a random port.
fn echo() -> std::net::SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for c in l.incoming().flatten() {
            std::thread::spawn(move || {
                let mut c = c;
                let mut buf = [0u8; 1024];
                while let Ok(n) = c.read(&mut buf) {
                    if n == 0 || c.write_all(&buf[..n]).is_err() {
                        break;
                    }
                }
            });
        }
    });
    addr
}

fn round_trip(s: &mut TcpStream, msg: &[u8]) -> std::io::Result<Vec<u8>> {
    s.write_all(msg)?;
    let mut got = vec![0u8; msg.len()];
    s.read_exact(&mut got)?;
    Ok(got)
}

#[test]
fn cut_and_restore() {
    let link = LinkProxy::start(vec![echo()]);
    let mut s = TcpStream::connect(link.addr()).unwrap();
    assert_eq!(round_trip(&mut s, b"hello").unwrap(), b"hello");
    assert_eq!(link.bytes(), (5, 5));

    link.cut();
    assert!(
        round_trip(&mut s, b"lost").is_err(),
        "a cut closes open connections"
    );
    let mut t = TcpStream::connect(link.addr()).unwrap();
    assert!(
        round_trip(&mut t, b"refused").is_err(),
        "and refuses new ones"
    );

    link.restore();
    let mut u = TcpStream::connect(link.addr()).unwrap();
    assert_eq!(round_trip(&mut u, b"again").unwrap(), b"again");
}

#[test]
fn a_dead_target_is_skipped() {
    let dead = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let link = LinkProxy::start(vec![dead, echo()]);
    let mut s = TcpStream::connect(link.addr()).unwrap();
    assert_eq!(round_trip(&mut s, b"second").unwrap(), b"second");
}

#[test]
fn a_shaped_link_delays_and_limits() {
    use cat2_testkit::link::Shape;
    use std::time::{Duration, Instant};
    let shape = Shape {
        delay: Duration::from_millis(50),
        bits_per_second: Some(8_000_000), // 1 MB/s
    };
    let link = LinkProxy::start_shaped(vec![echo()], shape);
    let mut s = TcpStream::connect(link.addr()).unwrap();
    let t = Instant::now();
    round_trip(&mut s, b"x").unwrap();
    let rtt = t.elapsed();
    assert!(
        rtt >= Duration::from_millis(100) && rtt < Duration::from_millis(400),
        "{rtt:?}"
    );
    // 500 KB each way at 1 MB/s: about half a second more than the delay.
    let payload = vec![7u8; 500_000];
    let t = Instant::now();
    let mut r = s.try_clone().unwrap();
    let reader = std::thread::spawn(move || {
        let mut got = vec![0u8; 500_000];
        r.read_exact(&mut got).map(|()| got)
    });
    s.write_all(&payload).unwrap();
    assert_eq!(reader.join().unwrap().unwrap(), payload);
    let took = t.elapsed();
    assert!(
        took >= Duration::from_millis(450) && took < Duration::from_secs(3),
        "{took:?}"
    );
}
