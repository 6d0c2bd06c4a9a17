//! The host side of process isolation: a pool of worker processes per plugin.
//!
//! Each call takes an idle worker (or starts one), sends the call and answers the worker's
//! host callbacks until the worker says the call is done. The calling thread reads the
//! worker's frames itself, waiting with `poll` until the deadline (no relay thread: each
//! hop between threads costs a wake-up per frame). Quick callbacks (log, clock, state) are
//! answered on the calling thread; those that wait (HTTP, sleep, OAuth2) on the runtime's
//! blocking pool, so that a plugin calling the host from several threads at once is served
//! concurrently, as in-process. A worker serves one call at a time, so killing it stops
//! exactly one call.
//!
//! A worker that dies (segfault, abort, exhausted memory), passes the call's deadline or
//! breaks the protocol is killed and reaped; the call fails with a message that names the
//! plugin, what happened and that a new process starts on next use. Its stderr goes to the
//! host's log line by line, redacted, and its last lines explain a memory failure.

use super::protocol::{read_frame, write_frame, Answer, Event, Request};
use crate::redact;
use abi_stable::std_types::RStr;
use passerelle_plugin_api::abi::HostCallbacks;
use passerelle_plugin_api::{ErrorKind, PluginError};
use serde::Serialize;
use std::collections::VecDeque;
use std::io::{self, BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::time::{Duration, Instant};

/// How long a new worker may take to map its library and say it is ready.
pub const LOAD_TIMEOUT: Duration = Duration::from_secs(30);

/// Idle workers kept per plugin; more are stopped when their call ends.
const MAX_IDLE: usize = 4;

/// Stderr lines kept per worker to explain its end.
const TAIL_LINES: usize = 20;

/// Longest stderr line logged (a plugin may write anything).
const MAX_LINE: u64 = 4096;

/// What answers a worker's callbacks: the host's real services for one call.
pub trait CallbackHost: Send + Sync + 'static {
    fn serve(&self, name: &str, input: &str) -> Answer;
}

impl<H: HostCallbacks + 'static> CallbackHost for H {
    fn serve(&self, name: &str, input: &str) -> Answer {
        HostCallbacks::call(self, RStr::from_str(name), RStr::from_str(input)).into()
    }
}

/// What a library says about itself when a worker maps it.
#[derive(Debug, Clone)]
pub struct Description {
    pub api_version: String,
    pub manifest: Answer,
    pub config_schema: Answer,
}

/// Counters shown in the plugin list.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ProcessStats {
    /// Worker processes started so far.
    pub started: u64,
    /// Workers that crashed, passed a deadline or a memory limit, and were replaced.
    pub failures: u64,
    /// The last such failure, as told to the caller.
    pub last_failure: Option<String>,
    /// Workers waiting for a call.
    pub idle: usize,
}

/// A plugin running in worker processes.
pub struct ProcessPlugin {
    /// The plugin id once its manifest is read; the file name before.
    name: Arc<OnceLock<String>>,
    file: PathBuf,
    /// The verified copy the workers map.
    library: PathBuf,
    sha256: String,
    exe: PathBuf,
    memory_limit_mb: u64,
    idle: Mutex<Vec<Worker>>,
    stats: Mutex<ProcessStats>,
    /// Replaced or removed: no worker is kept once its call ends.
    retired: AtomicBool,
}

impl std::fmt::Debug for ProcessPlugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProcessPlugin")
            .field("name", &self.name())
            .field("library", &self.library)
            .finish()
    }
}

/// Why a worker is being stopped.
enum Failure {
    /// Its output ended: it died.
    Ended,
    Deadline(Duration),
    Protocol(String),
}

enum SpawnError {
    /// The worker could not map the library; the loader's reason.
    Refused(String),
    /// The worker failed before it was ready: kind and what happened.
    Failed(ErrorKind, String),
}

struct Worker {
    child: Child,
    pid: u32,
    input: Arc<Mutex<ChildStdin>>,
    output: BufReader<DeadlineReader>,
    stderr: Arc<StderrTail>,
}

/// The worker's stdout, read with a deadline: each read first waits (`poll`) until data
/// arrives or the deadline passes (`TimedOut`).
struct DeadlineReader {
    pipe: ChildStdout,
    until: Instant,
}

impl Read for DeadlineReader {
    #[cfg(unix)]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        use std::os::fd::AsRawFd;
        loop {
            let left = self.until.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Err(io::ErrorKind::TimedOut.into());
            }
            // Rounded up, so that a sub-millisecond remainder does not spin.
            let ms = i32::try_from(left.as_micros().div_ceil(1000)).unwrap_or(i32::MAX);
            let mut fd = libc::pollfd {
                fd: self.pipe.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: poll on one valid pollfd owned by this frame.
            let ready = unsafe { libc::poll(&mut fd, 1, ms) };
            if ready > 0 {
                // Readable, or closed/broken: the read says which.
                return self.pipe.read(buf);
            }
            if ready < 0 {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
        }
    }

    /// Without `poll`, reads block: the runner's own timeout still returns to the caller.
    #[cfg(not(unix))]
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.pipe.read(buf)
    }
}

/// How waiting for a worker's next frame ended, when no frame came.
enum NoFrame {
    Ended,
    Deadline,
    Garbled(String),
}

impl Drop for Worker {
    fn drop(&mut self) {
        // An idle worker has nothing to lose; a failed one is already dead.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Worker {
    /// The next frame, waiting until `until` at most.
    fn next(&mut self, until: Instant) -> Result<Event, NoFrame> {
        self.output.get_mut().until = until;
        match read_frame::<_, Event>(&mut self.output) {
            Ok(Some(event)) => Ok(event),
            Ok(None) => Err(NoFrame::Ended),
            Err(e) if e.kind() == io::ErrorKind::TimedOut => Err(NoFrame::Deadline),
            Err(e) if e.kind() == io::ErrorKind::InvalidData => {
                Err(NoFrame::Garbled(e.to_string()))
            }
            Err(_) => Err(NoFrame::Ended),
        }
    }

    fn send(&self, request: &Request) -> std::io::Result<()> {
        let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
        write_frame(&mut *input, request)
    }

    /// Stops the process and returns how it ended. A worker whose output ended is given a
    /// moment to finish dying, so that its own exit status (the signal) is what is reported.
    fn stop(&mut self, ended_by_itself: bool) -> Option<ExitStatus> {
        if ended_by_itself {
            let until = Instant::now() + Duration::from_millis(500);
            while Instant::now() < until {
                match self.child.try_wait() {
                    Ok(Some(status)) => return Some(status),
                    Ok(None) => std::thread::sleep(Duration::from_millis(2)),
                    Err(_) => break,
                }
            }
        }
        let _ = self.child.kill();
        self.child.wait().ok()
    }
}

/// The last lines a worker wrote on stderr, whether it closed it, and whether a backtrace
/// is being written.
///
/// Backtrace frames (with `RUST_BACKTRACE` set, the allocator and panics print dozens) are
/// logged but kept out of the tail, so that the line saying what happened ("memory
/// allocation of … failed", the panic message) is still there to explain the crash.
#[derive(Default)]
struct StderrTail {
    state: Mutex<(VecDeque<String>, bool, bool)>,
    closed: Condvar,
}

impl StderrTail {
    fn push(&self, line: String) {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        if line.trim_end() == "stack backtrace:" {
            state.2 = true;
            return;
        }
        if state.2 {
            if line.starts_with(' ') || line.starts_with("note: ") {
                return;
            }
            state.2 = false;
        }
        if state.0.len() == TAIL_LINES {
            state.0.pop_front();
        }
        state.0.push_back(line);
    }

    fn close(&self) {
        self.state.lock().unwrap_or_else(PoisonError::into_inner).1 = true;
        self.closed.notify_all();
    }

    /// The lines, once stderr is closed or `wait` has passed.
    fn lines(&self, wait: Duration) -> Vec<String> {
        let state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        let (state, _) = self
            .closed
            .wait_timeout_while(state, wait, |s| !s.1)
            .unwrap_or_else(PoisonError::into_inner);
        state.0.iter().cloned().collect()
    }
}

impl ProcessPlugin {
    /// Starts the first worker of a library and returns what the library says about
    /// itself; the worker stays ready for the first call. The error is a refusal reason.
    pub fn start(
        file: &Path,
        library: &Path,
        sha256: &str,
        settings: &super::IsolationSettings,
    ) -> Result<(Arc<ProcessPlugin>, Description), String> {
        let plugin = ProcessPlugin {
            name: Arc::new(OnceLock::new()),
            file: file.to_owned(),
            library: library.to_owned(),
            sha256: sha256.to_owned(),
            exe: settings.worker_exe()?,
            memory_limit_mb: settings.memory_limit_mb,
            idle: Mutex::new(Vec::new()),
            stats: Mutex::new(ProcessStats::default()),
            retired: AtomicBool::new(false),
        };
        let (worker, description) = plugin.spawn(LOAD_TIMEOUT).map_err(|e| match e {
            SpawnError::Refused(reason) => reason,
            SpawnError::Failed(_, happened) => format!("its plugin process {happened}"),
        })?;
        plugin.park(worker);
        Ok((Arc::new(plugin), description))
    }

    /// Names the plugin in messages and logs (its id, once the manifest is read).
    pub fn set_name(&self, id: &str) {
        let _ = self.name.set(id.to_owned());
    }

    fn name(&self) -> String {
        self.name.get().cloned().unwrap_or_else(|| {
            self.file
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        })
    }

    /// The worker memory limit, in MB.
    pub fn memory_limit_mb(&self) -> u64 {
        self.memory_limit_mb
    }

    pub fn stats(&self) -> ProcessStats {
        let mut stats = self
            .stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone();
        stats.idle = self
            .idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .len();
        stats
    }

    /// Runs one call in a worker. `what` names the call in messages ("test", "invoke of
    /// `company.lookup`"); `host` answers the plugin's callbacks (`None`: calls that get
    /// no callback object). The worker is killed when `deadline` passes.
    pub fn call(
        &self,
        what: &str,
        request: &Request,
        host: Option<Arc<dyn CallbackHost>>,
        deadline: Duration,
    ) -> Result<Answer, PluginError> {
        let started = Instant::now();
        // Callbacks are answered in the caller's runtime context, as they are in-process.
        let runtime = tokio::runtime::Handle::try_current().ok();
        let mut worker = self.checkout(what, deadline)?;
        if worker.send(request).is_err() {
            // It died while idle (e.g. killed from outside): not this call's doing.
            let _ = self.fail(worker, Failure::Ended, "idle time");
            let left = deadline.saturating_sub(started.elapsed());
            worker = self
                .spawn(left)
                .map(|(w, _)| w)
                .map_err(|e| self.during(e, what))?;
            if worker.send(request).is_err() {
                return Err(self.fail(worker, Failure::Ended, what));
            }
        }
        let until = started + deadline;
        let outcome = loop {
            match worker.next(until) {
                Ok(Event::Callback { id, name, input }) => {
                    self.answer_callback(&worker, host.as_ref(), runtime.as_ref(), id, name, input);
                }
                Ok(Event::Done { answer }) => break Ok(answer),
                Ok(other) => {
                    break Err(Failure::Protocol(format!(
                        "unexpected {}",
                        event_name(&other)
                    )))
                }
                Err(NoFrame::Ended) => break Err(Failure::Ended),
                Err(NoFrame::Deadline) => break Err(Failure::Deadline(deadline)),
                Err(NoFrame::Garbled(e)) => break Err(Failure::Protocol(e)),
            }
        };
        match outcome {
            Ok(answer) => {
                self.park(worker);
                Ok(answer)
            }
            Err(failure) => Err(self.fail(worker, failure, what)),
        }
    }

    /// Answers one callback: quick ones at once, those that wait on the blocking pool (or a
    /// thread of their own outside a runtime), so that the frame loop keeps reading (the
    /// plugin may have several callbacks in flight) and keeps watching the deadline.
    fn answer_callback(
        &self,
        worker: &Worker,
        host: Option<&Arc<dyn CallbackHost>>,
        runtime: Option<&tokio::runtime::Handle>,
        id: u64,
        name: String,
        input: String,
    ) {
        let to_worker = worker.input.clone();
        let reply = move |answer: Answer| {
            let mut pipe = to_worker.lock().unwrap_or_else(PoisonError::into_inner);
            // A failed write means the worker is gone; the frame loop reports that.
            let _ = write_frame(&mut *pipe, &Request::Reply { id, answer });
        };
        let Some(host) = host.cloned() else {
            reply(Answer::Err(
                PluginError::internal(format!("no host service {name} in this call")).to_json(),
            ));
            return;
        };
        if is_quick(&name) {
            reply(host.serve(&name, &input));
            return;
        }
        if let Some(runtime) = runtime {
            // Blocking-pool threads are reused and run in the runtime's context.
            runtime.spawn_blocking(move || reply(host.serve(&name, &input)));
            return;
        }
        let failed_reply = reply.clone();
        let spawned = std::thread::Builder::new()
            .name("plugin-callback".into())
            .spawn(move || reply(host.serve(&name, &input)));
        if let Err(e) = spawned {
            failed_reply(Answer::Err(
                PluginError::internal(format!("the host cannot serve a callback now: {e}"))
                    .to_json(),
            ));
        }
    }

    /// An idle worker, or a new one.
    fn checkout(&self, what: &str, deadline: Duration) -> Result<Worker, PluginError> {
        loop {
            let idle = self
                .idle
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .pop();
            match idle {
                Some(mut worker) => match worker.child.try_wait() {
                    Ok(None) => return Ok(worker),
                    _ => {
                        let _ = self.fail(worker, Failure::Ended, "idle time");
                    }
                },
                None => {
                    return self
                        .spawn(deadline.min(LOAD_TIMEOUT))
                        .map(|(w, _)| w)
                        .map_err(|e| self.during(e, what))
                }
            }
        }
    }

    fn park(&self, worker: Worker) {
        let mut idle = self.idle.lock().unwrap_or_else(PoisonError::into_inner);
        if idle.len() < MAX_IDLE && !self.retired.load(Ordering::Acquire) {
            idle.push(worker);
        }
        // Otherwise dropped: killed and reaped.
    }

    /// Stops the idle workers and keeps no more: for a plugin whose file was replaced or
    /// removed. Calls in flight finish; their workers then stop. (Registry versions are
    /// never dropped, so without this the idle workers of old versions would live on.)
    pub fn retire(&self) {
        self.retired.store(true, Ordering::Release);
        let idle = std::mem::take(&mut *self.idle.lock().unwrap_or_else(PoisonError::into_inner));
        drop(idle);
    }

    /// The caller's error when no worker could be started for `what`.
    fn during(&self, e: SpawnError, what: &str) -> PluginError {
        let name = self.name();
        match e {
            SpawnError::Refused(reason) => PluginError::new(
                ErrorKind::Unavailable,
                format!("the plugin process of `{name}` cannot load the plugin for {what}: {reason}"),
            ),
            SpawnError::Failed(kind, happened) => PluginError::new(
                kind,
                format!("the plugin process of `{name}` {happened} (starting for {what}); it will be restarted on next use"),
            ),
        }
    }

    /// Starts a worker and waits until it has mapped the library.
    fn spawn(&self, timeout: Duration) -> Result<(Worker, Description), SpawnError> {
        let name = self.name();
        let mut command = Command::new(&self.exe);
        command
            .arg("worker")
            .arg(&self.library)
            .arg("--sha256")
            .arg(&self.sha256)
            .arg("--memory-limit-mb")
            .arg(self.memory_limit_mb.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Few malloc arenas: each reserves address space counted by the memory limit.
            .env("MALLOC_ARENA_MAX", "2");
        // The plugin gets nothing of the host's own configuration (the secret key above all).
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("PASSERELLE_") {
                command.env_remove(key);
            }
        }
        #[cfg(unix)]
        {
            // Its own process group: a Ctrl-C meant for the host does not kill a call midway;
            // the worker ends when the host's end of its pipe closes.
            use std::os::unix::process::CommandExt;
            command.process_group(0);
        }
        let unavailable = |detail: String| {
            SpawnError::Failed(
                ErrorKind::Unavailable,
                format!("could not be started: {detail}"),
            )
        };
        let mut child = command
            .spawn()
            .map_err(|e| unavailable(format!("{} ({e})", self.exe.display())))?;
        let pid = child.id();
        let (Some(stdin), Some(stdout), Some(stderr)) =
            (child.stdin.take(), child.stdout.take(), child.stderr.take())
        else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(unavailable("its pipes are missing".into()));
        };
        let tail = Arc::new(StderrTail::default());
        let mut worker = Worker {
            child,
            pid,
            input: Arc::new(Mutex::new(stdin)),
            output: BufReader::with_capacity(
                64 << 10,
                DeadlineReader {
                    pipe: stdout,
                    until: Instant::now(),
                },
            ),
            stderr: tail.clone(),
        };
        let label = self.name.clone();
        let file = name.clone();
        std::thread::Builder::new()
            .name(format!("plugin-worker-{pid}-err"))
            .spawn(move || pump_stderr(stderr, &tail, &label, &file, pid))
            .map_err(|e| unavailable(e.to_string()))?;
        self.stats
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .started += 1;
        tracing::debug!(plugin = %name, pid, "plugin process started");
        match worker.next(Instant::now() + timeout) {
            Ok(Event::Ready {
                api_version,
                manifest,
                config_schema,
                ..
            }) => Ok((
                worker,
                Description {
                    api_version,
                    manifest,
                    config_schema,
                },
            )),
            Ok(Event::Refused { reason }) => {
                drop(worker);
                Err(SpawnError::Refused(reason))
            }
            Ok(other) => {
                let failure = Failure::Protocol(format!("unexpected {}", event_name(&other)));
                let (kind, happened) = self.stop_failed(worker, &failure, "loading");
                Err(SpawnError::Failed(kind, happened))
            }
            Err(NoFrame::Garbled(e)) => {
                let (kind, happened) = self.stop_failed(worker, &Failure::Protocol(e), "loading");
                Err(SpawnError::Failed(kind, happened))
            }
            Err(NoFrame::Ended) => {
                let (kind, happened) = self.stop_failed(worker, &Failure::Ended, "loading");
                Err(SpawnError::Failed(kind, happened))
            }
            Err(NoFrame::Deadline) => {
                let (kind, happened) =
                    self.stop_failed(worker, &Failure::Deadline(timeout), "loading");
                Err(SpawnError::Failed(kind, happened))
            }
        }
    }

    /// Stops a failed worker, records and logs why, and returns the caller's error.
    fn fail(&self, worker: Worker, failure: Failure, what: &str) -> PluginError {
        let (kind, happened) = self.stop_failed(worker, &failure, what);
        let message = format!(
            "the plugin process of `{}` {happened}; it will be restarted on next use",
            self.name()
        );
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.last_failure = Some(message.clone());
        PluginError::new(kind, message)
    }

    /// Stops a failed worker, counts and logs it; returns its error kind and what happened
    /// ("crashed (signal 11, SIGSEGV) during test").
    fn stop_failed(
        &self,
        mut worker: Worker,
        failure: &Failure,
        what: &str,
    ) -> (ErrorKind, String) {
        let status = worker.stop(matches!(failure, Failure::Ended));
        let tail = worker.stderr.lines(Duration::from_millis(500));
        let name = self.name();
        let (kind, mut happened) = match failure {
            Failure::Deadline(d) => (
                ErrorKind::Timeout,
                format!(
                    "did not finish {what} within {} and was killed",
                    format_duration(*d)
                ),
            ),
            Failure::Protocol(detail) => (
                ErrorKind::Internal,
                format!("broke the worker protocol during {what} ({detail}) and was killed"),
            ),
            Failure::Ended => match memory_failure(&tail) {
                Some(line) => (
                    ErrorKind::Panic,
                    format!(
                        "ran out of memory during {what}: it passed its limit of {} MB ({line}) and was stopped",
                        self.memory_limit_mb
                    ),
                ),
                None => (
                    ErrorKind::Panic,
                    format!("{} during {what}", describe_end(status)),
                ),
            },
        };
        if matches!(failure, Failure::Ended) && memory_failure(&tail).is_some() {
            happened.push_str(" — raise `memory_limit_mb` in host.toml [plugins] if it needs more");
        }
        let happened = redact::redact(&happened);
        tracing::warn!(plugin = %name, pid = worker.pid, "plugin process {happened}");
        let mut stats = self.stats.lock().unwrap_or_else(PoisonError::into_inner);
        stats.failures += 1;
        stats.last_failure = Some(happened.clone());
        (kind, happened)
    }
}

fn event_name(event: &Event) -> &'static str {
    match event {
        Event::Ready { .. } => "ready",
        Event::Refused { .. } => "refused",
        Event::Callback { .. } => "callback",
        Event::Done { .. } => "done",
    }
}

/// Host services answered on the frame loop's thread: they return at once.
fn is_quick(name: &str) -> bool {
    use passerelle_plugin_api::host::wire;
    [
        wire::LOG,
        wire::CLOCK_NOW,
        wire::STATE_GET,
        wire::STATE_PUT,
        wire::STATE_DELETE,
        wire::STATE_LIST,
    ]
    .contains(&name)
}

/// Logs a worker's stderr line by line (redacted) and keeps its last lines.
fn pump_stderr(
    stderr: impl Read,
    tail: &StderrTail,
    label: &OnceLock<String>,
    file: &str,
    pid: u32,
) {
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        match (&mut reader).take(MAX_LINE).read_until(b'\n', &mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end();
        if text.is_empty() {
            continue;
        }
        let text = redact::redact(text);
        let plugin = label.get().map(String::as_str).unwrap_or(file);
        tracing::warn!(plugin, pid, "plugin process stderr: {text}");
        tail.push(text);
    }
    tail.close();
}

/// The allocator's last words, when memory ran out.
fn memory_failure(tail: &[String]) -> Option<String> {
    tail.iter()
        .rev()
        .find(|l| l.contains("memory allocation of") || l.contains("out of memory"))
        .map(|l| l.trim().chars().take(200).collect())
}

/// "crashed (signal 11, SIGSEGV)", "exited unexpectedly with code 3"…
fn describe_end(status: Option<ExitStatus>) -> String {
    let Some(status) = status else {
        return "ended unexpectedly".to_owned();
    };
    #[cfg(unix)]
    {
        use std::os::unix::process::ExitStatusExt;
        if let Some(signal) = status.signal() {
            let name = signal_name(signal);
            return if signal == 9 {
                format!("was killed (signal 9, {name}), e.g. by the system's out-of-memory killer,")
            } else {
                format!("crashed (signal {signal}, {name})")
            };
        }
    }
    match status.code() {
        Some(code) => format!("exited unexpectedly with code {code}"),
        None => "ended unexpectedly".to_owned(),
    }
}

#[cfg(unix)]
fn signal_name(signal: i32) -> &'static str {
    match signal {
        libc::SIGSEGV => "SIGSEGV",
        libc::SIGABRT => "SIGABRT",
        libc::SIGBUS => "SIGBUS",
        libc::SIGILL => "SIGILL",
        libc::SIGFPE => "SIGFPE",
        libc::SIGKILL => "SIGKILL",
        libc::SIGTERM => "SIGTERM",
        libc::SIGTRAP => "SIGTRAP",
        libc::SIGINT => "SIGINT",
        libc::SIGPIPE => "SIGPIPE",
        libc::SIGSYS => "SIGSYS",
        libc::SIGXCPU => "SIGXCPU",
        _ => "signal",
    }
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{} s", d.as_secs())
    } else {
        format!("{:.1} s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_backtrace_does_not_push_what_happened_out_of_the_tail() {
        // With RUST_BACKTRACE set, the allocator prints dozens of frames after its message.
        let tail = StderrTail::default();
        tail.push("memory allocation of 16777216 bytes failed".to_owned());
        tail.push("stack backtrace:".to_owned());
        for i in 0..(TAIL_LINES * 3) {
            tail.push(format!("  {i}: frame"));
            tail.push("             at /rustc/x/library/std/src/alloc.rs:424:5".to_owned());
        }
        tail.push("note: Some details are omitted".to_owned());
        tail.close();
        let lines = tail.lines(Duration::ZERO);
        assert_eq!(
            memory_failure(&lines).as_deref(),
            Some("memory allocation of 16777216 bytes failed")
        );
        // Lines after the backtrace are kept again.
        tail.push("after".to_owned());
        assert_eq!(
            tail.lines(Duration::ZERO).last().map(String::as_str),
            Some("after")
        );
    }

    #[test]
    fn memory_failures_are_recognised_in_the_last_lines() {
        let tail = vec![
            "misbehave: about to Allocate".to_owned(),
            "memory allocation of 16777216 bytes failed".to_owned(),
        ];
        assert_eq!(
            memory_failure(&tail).as_deref(),
            Some("memory allocation of 16777216 bytes failed")
        );
        assert!(memory_failure(&["segfault".to_owned()]).is_none());
    }

    #[cfg(unix)]
    #[test]
    fn ends_are_described_with_the_signal_name() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(11))),
            "crashed (signal 11, SIGSEGV)"
        );
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(6))),
            "crashed (signal 6, SIGABRT)"
        );
        assert_eq!(
            describe_end(Some(ExitStatus::from_raw(3 << 8))),
            "exited unexpectedly with code 3"
        );
        assert!(describe_end(Some(ExitStatus::from_raw(9))).contains("out-of-memory killer"));
    }

    #[test]
    fn durations_read_naturally() {
        assert_eq!(format_duration(Duration::from_secs(2)), "2 s");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.5 s");
    }
}
