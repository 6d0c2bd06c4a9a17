//! The worker side of process isolation: `passerelle worker <library>` (hidden command).
//!
//! Started by the host with pipes on stdin/stdout/stderr. Before any plugin code runs it
//! moves the protocol to private descriptors (stdout becomes stderr, stdin `/dev/null`, so a
//! plugin's `println!` cannot corrupt a frame), limits its address space (`RLIMIT_AS`), checks
//! that the library still has the SHA-256 the host verified, and maps it with the loader's
//! own code. It then says [`Event::Ready`] with what the host needs to check the plugin, and
//! serves one call at a time on its main thread. A plugin's host callbacks — from any of its
//! threads — become [`Event::Callback`] frames, answered by the host's real services.
//!
//! No thread relays the host's frames: whichever thread waits for one (the main thread for
//! the next call, a plugin thread for its callback's answer) reads the pipe itself while the
//! others wait, and hands over frames that are not its own (`Inbox`). A single-threaded
//! plugin thus costs no thread switch in the worker.
//!
//! When the host goes away (end of its pipe, or the host process gone), the worker exits at
//! once, even mid-call.

use super::protocol::{read_frame, write_frame, Answer, Event, Request};
use super::{call_module, NoHost};
use abi_stable::std_types::{RResult, RStr, RString};
use passerelle_plugin_api::abi::{HostCallbacks, PluginModRef};
use passerelle_plugin_api::PluginError;
use std::collections::{HashMap, VecDeque};
use std::io::{self, BufReader, Read, Write};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::time::Duration;

/// Arguments of `passerelle worker` (started by the host, not by people).
#[derive(Debug, Clone, clap::Args)]
pub struct WorkerArgs {
    /// The verified library to map (a copy in the plugin cache).
    pub library: PathBuf,
    /// SHA-256 (hex) the library must still have; checked before it is mapped.
    #[arg(long)]
    pub sha256: Option<String>,
    /// Address-space limit in MB (unix); 0: none.
    #[arg(long, default_value_t = 0)]
    pub memory_limit_mb: u64,
}

type Input = Box<dyn Read + Send>;
type Output = Box<dyn Write + Send>;

/// Runs the worker until the host closes its pipe.
pub fn run(args: WorkerArgs) -> ExitCode {
    let (input, mut output) = match protocol_streams() {
        Ok(streams) => streams,
        Err(e) => {
            eprintln!("passerelle worker: cannot set up the protocol pipes: {e}");
            return ExitCode::from(70);
        }
    };
    let module = match limit_memory(args.memory_limit_mb)
        .map_err(|e| format!("cannot set the memory limit of the plugin process: {e}"))
        .and_then(|()| open(&args))
    {
        Ok(module) => module,
        Err(reason) => {
            let _ = write_frame(&mut output, &Event::Refused { reason });
            return ExitCode::from(3);
        }
    };
    let ready = Event::Ready {
        pid: std::process::id(),
        api_version: (module.api_version())().as_str().to_owned(),
        manifest: (module.manifest())().into(),
        config_schema: (module.config_schema())().into(),
    };
    if write_frame(&mut output, &ready).is_err() {
        return ExitCode::SUCCESS;
    }
    serve(module, input, output)
}

/// Checks the library's hash and maps it.
fn open(args: &WorkerArgs) -> Result<PluginModRef, String> {
    if let Some(expected) = &args.sha256 {
        let bytes = std::fs::read(&args.library)
            .map_err(|e| format!("{} cannot be read: {e}", args.library.display()))?;
        let actual = crate::signing::sha256_hex(&bytes);
        if !actual.eq_ignore_ascii_case(expected) {
            return Err(format!(
                "{} changed since it was verified (SHA-256 {actual}, expected {expected}); restart the host so that it verifies the plugin again",
                args.library.display()
            ));
        }
    }
    crate::loader::map_library(&args.library, &args.library)
}

struct Shared {
    output: Mutex<Output>,
    inbox: Inbox,
    next_id: AtomicU64,
}

impl Shared {
    fn send(&self, event: &Event) -> io::Result<()> {
        let mut out = self.output.lock().unwrap_or_else(PoisonError::into_inner);
        write_frame(&mut *out, event)
    }
}

/// What a thread waits for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Want {
    Call,
    Reply(u64),
}

#[derive(Default)]
struct Mail {
    /// A thread is reading the pipe.
    reading: bool,
    calls: VecDeque<Request>,
    replies: HashMap<u64, Answer>,
}

impl Mail {
    fn take(&mut self, want: Want) -> Option<Request> {
        match want {
            Want::Call => self.calls.pop_front(),
            Want::Reply(id) => self
                .replies
                .remove(&id)
                .map(|answer| Request::Reply { id, answer }),
        }
    }

    fn put(&mut self, frame: Request) {
        match frame {
            Request::Reply { id, answer } => {
                self.replies.insert(id, answer);
            }
            call => self.calls.push_back(call),
        }
    }
}

/// The host's frames, read by whichever thread needs one next (leader/followers).
struct Inbox {
    input: Mutex<BufReader<Input>>,
    mail: Mutex<Mail>,
    changed: Condvar,
}

impl Inbox {
    /// The next frame this thread wants. Exits the process when the host is gone.
    fn wait(&self, want: Want) -> Request {
        let mut mail = self.mail.lock().unwrap_or_else(PoisonError::into_inner);
        loop {
            if let Some(frame) = mail.take(want) {
                return frame;
            }
            if mail.reading {
                mail = self
                    .changed
                    .wait(mail)
                    .unwrap_or_else(PoisonError::into_inner);
                continue;
            }
            mail.reading = true;
            drop(mail);
            let frame = {
                let mut input = self.input.lock().unwrap_or_else(PoisonError::into_inner);
                read_frame::<_, Request>(&mut *input)
            };
            let frame = match frame {
                Ok(Some(frame)) => frame,
                // The host is gone or done with this worker: stop now, even mid-call.
                Ok(None) => std::process::exit(0),
                Err(e) => {
                    eprintln!("passerelle worker: unreadable frame from the host: {e}");
                    std::process::exit(2);
                }
            };
            mail = self.mail.lock().unwrap_or_else(PoisonError::into_inner);
            mail.reading = false;
            let mine = match (&frame, want) {
                (Request::Reply { id, .. }, Want::Reply(wanted)) => *id == wanted,
                (Request::Reply { .. }, Want::Call) | (_, Want::Reply(_)) => false,
                (_, Want::Call) => true,
            };
            // Another thread may take over reading, or find its frame.
            self.changed.notify_all();
            if mine {
                return frame;
            }
            mail.put(frame);
        }
    }
}

fn serve(module: PluginModRef, input: Input, output: Output) -> ExitCode {
    let shared = Arc::new(Shared {
        output: Mutex::new(output),
        inbox: Inbox {
            input: Mutex::new(BufReader::with_capacity(64 << 10, input)),
            mail: Mutex::new(Mail::default()),
            changed: Condvar::new(),
        },
        next_id: AtomicU64::new(1),
    });
    watch_host();
    let proxy = ProxyHost {
        shared: shared.clone(),
    };
    loop {
        let request = shared.inbox.wait(Want::Call);
        let answer = match &request {
            Request::Validate { .. } | Request::Quotas { .. } => {
                call_module(module, &request, &NoHost)
            }
            _ => call_module(module, &request, &proxy),
        };
        if shared.send(&Event::Done { answer }).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}

/// Exits when the host process is gone, even while the plugin spins and nobody reads the
/// pipe (the worker is then a child of some other process).
fn watch_host() {
    #[cfg(unix)]
    {
        // SAFETY: getppid has no preconditions.
        let host = unsafe { libc::getppid() };
        let _ = std::thread::Builder::new()
            .name("worker-host-watch".into())
            .spawn(move || loop {
                std::thread::sleep(Duration::from_millis(500));
                // SAFETY: as above.
                if unsafe { libc::getppid() } != host {
                    std::process::exit(0);
                }
            });
    }
}

/// The callback object handed to the plugin inside the worker: forwards to the host.
struct ProxyHost {
    shared: Arc<Shared>,
}

impl ProxyHost {
    fn forward(&self, name: &str, input: &str) -> Answer {
        let id = self.shared.next_id.fetch_add(1, Ordering::Relaxed);
        let event = Event::Callback {
            id,
            name: name.to_owned(),
            input: input.to_owned(),
        };
        if let Err(e) = self.shared.send(&event) {
            return Answer::Err(
                PluginError::internal(format!("the host cannot be reached for {name}: {e}"))
                    .to_json(),
            );
        }
        match self.shared.inbox.wait(Want::Reply(id)) {
            Request::Reply { answer, .. } => answer,
            _ => Answer::Err(
                PluginError::internal(format!("the host did not answer {name}")).to_json(),
            ),
        }
    }
}

impl HostCallbacks for ProxyHost {
    fn call(&self, name: RStr<'_>, input: RStr<'_>) -> RResult<RString, RString> {
        // Nothing may unwind into plugin code.
        catch_unwind(AssertUnwindSafe(|| {
            self.forward(name.as_str(), input.as_str())
        }))
        .unwrap_or_else(|_| {
            Answer::Err(
                PluginError::internal(format!("the plugin process failed while forwarding {name}"))
                    .to_json(),
            )
        })
        .into()
    }
}

/// Moves the protocol off fds 0 and 1: what the plugin prints goes to stderr instead.
#[cfg(unix)]
fn protocol_streams() -> io::Result<(Input, Output)> {
    use std::fs::File;
    use std::os::fd::FromRawFd;
    // SAFETY: descriptor syscalls on the descriptors this process was started with; the
    // duplicates are owned by the `File`s below and nothing else.
    unsafe {
        let input = libc::fcntl(0, libc::F_DUPFD_CLOEXEC, 3);
        if input < 0 {
            return Err(io::Error::last_os_error());
        }
        let input = File::from_raw_fd(input);
        let output = libc::fcntl(1, libc::F_DUPFD_CLOEXEC, 3);
        if output < 0 {
            return Err(io::Error::last_os_error());
        }
        let output = File::from_raw_fd(output);
        let null = libc::open(c"/dev/null".as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC);
        if null < 0 {
            return Err(io::Error::last_os_error());
        }
        let redirected = libc::dup2(null, 0) >= 0 && libc::dup2(2, 1) >= 0;
        libc::close(null);
        if !redirected {
            return Err(io::Error::last_os_error());
        }
        Ok((Box::new(input), Box::new(output)))
    }
}

#[cfg(not(unix))]
fn protocol_streams() -> io::Result<(Input, Output)> {
    Ok((Box::new(io::stdin()), Box::new(io::stdout())))
}

/// Limits the address space (`RLIMIT_AS`), soft and hard: the plugin cannot raise it back.
#[cfg(unix)]
fn limit_memory(mb: u64) -> io::Result<()> {
    if mb == 0 {
        return Ok(());
    }
    let wanted = libc::rlim_t::try_from(mb.saturating_mul(1 << 20)).unwrap_or(libc::RLIM_INFINITY);
    let mut current = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit with valid pointers to rlimit structs.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_AS, &mut current) != 0 {
            return Err(io::Error::last_os_error());
        }
        let limit = wanted.min(current.rlim_max);
        let new = libc::rlimit {
            rlim_cur: limit,
            rlim_max: limit,
        };
        if libc::setrlimit(libc::RLIMIT_AS, &new) != 0 {
            return Err(io::Error::last_os_error());
        }
    }
    Ok(())
}

#[cfg(not(unix))]
fn limit_memory(mb: u64) -> io::Result<()> {
    if mb != 0 {
        tracing::debug!("memory limits of plugin processes are only enforced on unix");
    }
    Ok(())
}
