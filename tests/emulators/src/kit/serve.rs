//! A real HTTP server on `127.0.0.1`, on a port the OS picks, for one test.
//!
//! End-to-end tests are synchronous and drive the Passerelle binary in another process, so
//! each emulator runs on its own OS thread with its own single-threaded tokio runtime: the
//! test needs no runtime of its own, and tests running in parallel never share a port.
//! Dropping the [`RunningServer`] stops it and waits for its thread, so a test leaves
//! nothing listening behind it.

use axum::Router;
use std::future::IntoFuture;
use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::thread::JoinHandle;
use std::time::Duration;
use tokio::sync::oneshot;

/// How long in-flight requests get to finish once shutdown is asked for.
const GRACE: Duration = Duration::from_secs(5);

/// A server started by [`spawn`]; stops when dropped.
#[derive(Debug)]
pub struct RunningServer {
    addr: SocketAddr,
    tls: bool,
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT` (`https://` when serving TLS), without a trailing slash.
    pub fn url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }
}

impl Drop for RunningServer {
    fn drop(&mut self) {
        if let Some(shutdown) = self.shutdown.take() {
            let _ = shutdown.send(());
        }
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Serves `router` on `127.0.0.1` with a port chosen by the OS.
pub fn spawn(router: Router) -> std::io::Result<RunningServer> {
    spawn_on(router, 0)
}

/// Serves `router` on `127.0.0.1:port` (0: the OS chooses).
pub fn spawn_on(router: Router, port: u16) -> std::io::Result<RunningServer> {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    // Registering the socket needs the runtime's reactor; doing it here lets a failure reach
    // the caller instead of dying silently in the server thread.
    let listener = runtime.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
    let (shutdown, requested) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("emulator-{}", addr.port()))
        .spawn(move || {
            runtime.block_on(async move {
                let (graceful, stop) = oneshot::channel::<()>();
                // Peer addresses let an emulator tell connections apart (NTLM binds to one).
                let server = axum::serve(
                    listener,
                    router.into_make_service_with_connect_info::<SocketAddr>(),
                )
                .with_graceful_shutdown(async move {
                    let _ = stop.await;
                })
                .into_future();
                tokio::pin!(server);
                tokio::select! {
                    _ = &mut server => return,
                    // Sent, or the handle is gone: either way, stop.
                    _ = requested => {}
                }
                let _ = graceful.send(());
                // Keep-alive connections held by a client would delay graceful shutdown
                // forever; past the grace period the runtime is dropped with them.
                let _ = tokio::time::timeout(GRACE, server).await;
            });
        })?;
    Ok(RunningServer {
        addr,
        tls: false,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

/// Serves `router` over TLS on `127.0.0.1` (port chosen by the OS) with the given certificate
/// chain and private key (DER). For tests of certificate trust: the chain may come from a
/// private authority the client does not know.
pub fn spawn_tls(
    router: Router,
    cert_chain: Vec<Vec<u8>>,
    key: Vec<u8>,
) -> std::io::Result<RunningServer> {
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    let invalid = |e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidInput, e.to_string())
    };
    let provider = std::sync::Arc::new(rustls::crypto::ring::default_provider());
    let config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid(&e))?
        .with_no_client_auth()
        .with_single_cert(
            cert_chain.into_iter().map(CertificateDer::from).collect(),
            PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key)),
        )
        .map_err(|e| invalid(&e))?;
    let acceptor = tokio_rustls::TlsAcceptor::from(std::sync::Arc::new(config));
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))?;
    listener.set_nonblocking(true)?;
    let addr = listener.local_addr()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let listener = runtime.block_on(async { tokio::net::TcpListener::from_std(listener) })?;
    let (shutdown, mut requested) = oneshot::channel::<()>();
    let thread = std::thread::Builder::new()
        .name(format!("emulator-tls-{}", addr.port()))
        .spawn(move || {
            runtime.block_on(async move {
                loop {
                    let accepted = tokio::select! {
                        a = listener.accept() => a,
                        _ = &mut requested => return,
                    };
                    let Ok((stream, peer)) = accepted else {
                        continue;
                    };
                    let acceptor = acceptor.clone();
                    // As `spawn_on`: the peer address tells connections apart.
                    let router = router
                        .clone()
                        .layer(axum::Extension(axum::extract::ConnectInfo(peer)));
                    tokio::spawn(async move {
                        // A refused handshake (the client does not trust us) ends here.
                        let Ok(tls) = acceptor.accept(stream).await else {
                            return;
                        };
                        let service = hyper_util::service::TowerToHyperService::new(router);
                        let _ = hyper_util::server::conn::auto::Builder::new(
                            hyper_util::rt::TokioExecutor::new(),
                        )
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                    });
                }
            });
        })?;
    Ok(RunningServer {
        addr,
        tls: true,
        shutdown: Some(shutdown),
        thread: Some(thread),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::routing::get;
    use std::io::{Read, Write};
    use std::net::TcpStream;

    #[test]
    fn serves_then_stops_when_dropped() {
        let server = spawn(Router::new().route("/", get(|| async { "hello" }))).unwrap();
        let addr = server.addr();
        assert_eq!(server.url(), format!("http://127.0.0.1:{}", addr.port()));
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            .unwrap();
        let mut answer = String::new();
        stream.read_to_string(&mut answer).unwrap();
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        assert!(answer.ends_with("hello"), "{answer}");
        drop(server);
        assert!(TcpStream::connect(addr).is_err());
    }

    #[test]
    fn drop_does_not_wait_for_idle_keep_alive_connections() {
        let server = spawn(Router::new().route("/", get(|| async { "hello" }))).unwrap();
        let mut idle = TcpStream::connect(server.addr()).unwrap();
        idle.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let mut buf = [0u8; 256];
        let _ = idle.read(&mut buf).unwrap();
        let started = std::time::Instant::now();
        drop(server);
        assert!(started.elapsed() <= GRACE + Duration::from_secs(1));
    }
}
