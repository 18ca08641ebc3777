//! What every cat2 program's `main` shares: logging, the shutdown signal, listen addresses.

use std::net::SocketAddr;

/// Initialises `tracing` at `level` (overridden by `RUST_LOG`), logging to stderr.
pub fn init_tracing(level: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(level.to_lowercase()));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Resolves when the process gets SIGINT or SIGTERM.
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {},
        () = term => {},
    }
    tracing::info!("shutting down");
}

/// Parses Caterva2's `HOST:PORT` (`*` or empty host: all addresses; `[v6]:port` accepted) into
/// the addresses to bind.
///
/// # Errors
/// A message when the address cannot be resolved.
pub fn listen_addrs(http: &str) -> Result<Vec<SocketAddr>, String> {
    use std::net::ToSocketAddrs;
    let (host, port) = http
        .rsplit_once(':')
        .ok_or_else(|| format!("invalid address {http:?}: expected HOST:PORT"))?;
    let port: u16 = port
        .parse()
        .map_err(|_| format!("invalid port in {http:?}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.is_empty() || host == "*" {
        return Ok(vec![SocketAddr::from(([0, 0, 0, 0], port))]);
    }
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {http:?}: {e}"))?
        .collect();
    if addrs.is_empty() {
        Err(format!("cannot resolve {http:?}"))
    } else {
        Ok(addrs)
    }
}

/// Binds the first address of `http` that works.
///
/// # Errors
/// A message naming the address when none can be bound.
pub async fn bind(http: &str) -> Result<tokio::net::TcpListener, String> {
    let mut last = String::new();
    for addr in listen_addrs(http)? {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(l) => return Ok(l),
            Err(e) => last = format!("cannot listen on {addr}: {e}"),
        }
    }
    Err(last)
}

/// The address clients should use for `listener` when it was bound from `http`: `http` as
/// given (Caterva2 announces the literal value), except that a port 0 becomes the real port.
/// When `CAT2_READY_FILE` is set, the address is also written there (atomically): tests and
/// orchestrators wait for that file instead of probing ports.
pub fn announce_address(http: &str, listener: &tokio::net::TcpListener) -> String {
    let addr = match (http.rsplit_once(':'), listener.local_addr()) {
        (Some((host, "0")), Ok(local)) => format!("{host}:{}", local.port()),
        _ => http.to_owned(),
    };
    if let Some(path) = std::env::var_os("CAT2_READY_FILE") {
        let path = std::path::PathBuf::from(path);
        let tmp = path.with_extension("tmp");
        if let Err(e) = std::fs::write(&tmp, &addr).and_then(|()| std::fs::rename(&tmp, &path)) {
            tracing::warn!(path = %path.display(), error = %e, "cannot write the ready file");
        }
    }
    addr
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            listen_addrs("*:8000").unwrap(),
            vec![SocketAddr::from(([0, 0, 0, 0], 8000))]
        );
        assert!(
            listen_addrs("localhost:8002")
                .unwrap()
                .iter()
                .all(|a| a.port() == 8002)
        );
        assert_eq!(
            listen_addrs("127.0.0.1:1").unwrap(),
            vec![SocketAddr::from(([127, 0, 0, 1], 1))]
        );
        assert!(listen_addrs("[::1]:5").unwrap()[0].is_ipv6());
        assert!(listen_addrs("nocolon").is_err());
        assert!(listen_addrs("h:notaport").is_err());
    }
}
