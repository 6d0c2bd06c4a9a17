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
    shutdown: Option<oneshot::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl RunningServer {
    /// The bound address (`127.0.0.1:PORT`).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`, without a trailing slash.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
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
                let server = axum::serve(listener, router)
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
