//! What the process does to itself before any plugin runs, so that secrets it holds in
//! memory do not leave it by the side doors:
//!
//! - no core dumps (`RLIMIT_CORE` 0) and not dumpable (`PR_SET_DUMPABLE` 0, which also
//!   keeps other processes of the same user from reading its memory with ptrace): a crash
//!   would otherwise write decrypted secrets to disk;
//! - a panic hook for every thread that prints the panic through the redactor;
//! - standard error captured through a pipe and redacted line by line: an in-process plugin
//!   writes there directly (`eprintln!`, its own panic messages), bypassing the logger.

use std::io::{Read, Write};
use std::time::{Duration, Instant};

/// No core dumps, not dumpable. Failures are ignored: hardening must not stop the host.
pub fn harden_process() {
    #[cfg(unix)]
    // SAFETY: setrlimit reads the struct it is given; prctl(PR_SET_DUMPABLE) takes plain
    // integers. Neither touches memory of ours otherwise.
    unsafe {
        let none = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        let _ = libc::setrlimit(libc::RLIMIT_CORE, &none);
        #[cfg(target_os = "linux")]
        let _ = libc::prctl(libc::PR_SET_DUMPABLE, 0, 0, 0, 0);
    }
}

/// Panics print one redacted line (and never a secret a plugin put in its message).
pub fn install_panic_hook() {
    std::panic::set_hook(Box::new(|info| {
        let payload = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "non-string panic payload".to_owned());
        let location = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        let thread = std::thread::current();
        let name = thread.name().unwrap_or("unnamed");
        let line = format!(
            "passerelle: thread '{name}' panicked{location}: {}\n",
            crate::redact::redact(&payload)
        );
        let _ = std::io::stderr().write_all(line.as_bytes());
    }));
}

/// Standard error, redirected through the redactor until dropped.
pub struct StderrCapture {
    #[cfg(unix)]
    original: libc::c_int,
    reader: Option<std::thread::JoinHandle<()>>,
}

/// Redirects file descriptor 2 into a pipe whose reader redacts each line and writes it to
/// the real standard error. `None` where that is not possible (the output then goes out
/// unfiltered, as before).
#[cfg(unix)]
pub fn capture_stderr() -> Option<StderrCapture> {
    use std::os::fd::FromRawFd;
    // SAFETY: plain descriptor calls on descriptors this function owns; `original` and the
    // pipe's read end are handed to File exactly once each.
    unsafe {
        let original = libc::dup(2);
        if original < 0 {
            return None;
        }
        let mut fds = [0 as libc::c_int; 2];
        if libc::pipe(fds.as_mut_ptr()) != 0 {
            libc::close(original);
            return None;
        }
        let (read_end, write_end) = (fds[0], fds[1]);
        let _ = libc::fcntl(read_end, libc::F_SETFD, libc::FD_CLOEXEC);
        if libc::dup2(write_end, 2) < 0 {
            libc::close(read_end);
            libc::close(write_end);
            libc::close(original);
            return None;
        }
        libc::close(write_end);
        let out_fd = libc::dup(original);
        let _ = libc::fcntl(out_fd, libc::F_SETFD, libc::FD_CLOEXEC);
        let _ = libc::fcntl(original, libc::F_SETFD, libc::FD_CLOEXEC);
        let mut input = std::fs::File::from_raw_fd(read_end);
        let mut output = std::fs::File::from_raw_fd(out_fd);
        let reader = std::thread::Builder::new()
            .name("stderr-redactor".into())
            .spawn(move || {
                let mut pending: Vec<u8> = Vec::new();
                let mut buf = [0u8; 8192];
                loop {
                    let n = match input.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => n,
                    };
                    pending.extend_from_slice(&buf[..n]);
                    // Whole lines only, so a secret is never split across two writes; a
                    // very long line without newline is flushed anyway.
                    let cut = match pending.iter().rposition(|b| *b == b'\n') {
                        Some(i) => i + 1,
                        None if pending.len() > 64 * 1024 => pending.len(),
                        None => continue,
                    };
                    let chunk: Vec<u8> = pending.drain(..cut).collect();
                    let text = crate::redact::redact(&String::from_utf8_lossy(&chunk));
                    let _ = output.write_all(text.as_bytes());
                }
                if !pending.is_empty() {
                    let text = crate::redact::redact(&String::from_utf8_lossy(&pending));
                    let _ = output.write_all(text.as_bytes());
                }
                let _ = output.flush();
            })
            .ok()?;
        Some(StderrCapture {
            original,
            reader: Some(reader),
        })
    }
}

#[cfg(not(unix))]
pub fn capture_stderr() -> Option<StderrCapture> {
    None
}

impl Drop for StderrCapture {
    /// Puts the real standard error back and lets the reader write what is left. Bounded:
    /// a child process still holding the pipe must not keep the host from exiting.
    fn drop(&mut self) {
        #[cfg(unix)]
        // SAFETY: restores descriptor 2 from the duplicate this capture owns.
        unsafe {
            libc::dup2(self.original, 2);
            libc::close(self.original);
        }
        if let Some(reader) = self.reader.take() {
            let until = Instant::now() + Duration::from_millis(500);
            while !reader.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(5));
            }
            if reader.is_finished() {
                let _ = reader.join();
            }
        }
    }
}
