//! Running the `tesseract` program: the one place where this plugin does I/O of its own.
//!
//! Every other plugin reaches the world through the host. This one cannot: its provider is
//! a program on this machine, not a web service. It runs the engine as a child process
//! rather than linking Tesseract's C++ library, because
//! - a crash, an abort or a memory blow-up of the engine (Leptonica on a hostile image)
//!   ends the child, not the host and every other plugin with it;
//! - the plugin builds without a C++ toolchain, `-sys` crates or headers, and one `.so`
//!   works with whatever Tesseract 4 or 5 the machine has (no ABI tied to a library
//!   version);
//! - a stuck engine is killed at the deadline, which a library call cannot be.
//!
//! The cost is a process start (about 10 ms) and temporary files per reading (the image,
//! the engine's output). They are created in the system's temporary directory with unique
//! names, readable by this user only, never overwriting an existing file, and deleted when
//! the reading ends, whatever the outcome. No network is involved and no thread is started.

use passerelle_plugin_api::prelude::*;
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// The engine as configured: which program, how long it may run.
#[derive(Debug, Clone)]
pub struct Engine {
    program: PathBuf,
    /// Whether the program was configured (engine path) rather than found on the PATH, to
    /// name the right field in errors.
    configured: bool,
    timeout: Duration,
}

/// What the program printed.
#[derive(Debug)]
pub struct Output {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    /// The last meaningful line of stderr, for error messages.
    pub fn stderr_summary(&self) -> String {
        String::from_utf8_lossy(&self.stderr)
            .lines()
            .map(str::trim)
            .filter(|l| !l.is_empty() && !l.starts_with("Estimating resolution"))
            .take(5)
            .collect::<Vec<_>>()
            .join(" / ")
            .chars()
            .take(500)
            .collect()
    }
}

impl Engine {
    pub fn new(program: &str, configured: bool, timeout: Duration) -> Self {
        Engine {
            program: PathBuf::from(program),
            configured,
            timeout,
        }
    }

    /// The program as it will be started, for messages.
    pub fn program(&self) -> &Path {
        &self.program
    }

    /// `tesseract --version`: the version number, e.g. `5.3.0`.
    pub fn version(&self) -> Result<String, PluginError> {
        let out = self.run(&["--version"], self.timeout)?;
        // Tesseract 3 printed its version on stderr, 4 and 5 on stdout.
        let text = format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        parse_version(&text).ok_or_else(|| {
            PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "{} --version did not print a Tesseract version (it printed {:?}): check \
                     that this program is Tesseract",
                    self.program.display(),
                    text.trim().chars().take(120).collect::<String>()
                ),
            )
        })
    }

    /// `tesseract --list-langs`: the installed languages and where their data lives.
    pub fn languages(&self) -> Result<Languages, PluginError> {
        let out = self.run(&["--list-langs"], self.timeout)?;
        if !out.status.success() {
            return Err(PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "{} --list-langs failed ({}): {}",
                    self.program.display(),
                    out.status,
                    out.stderr_summary()
                ),
            ));
        }
        Ok(parse_languages(&format!(
            "{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )))
    }

    /// Reads an image: `tesseract <file> stdout -l <languages> --psm <mode> tsv`, and
    /// returns the words with their confidences.
    pub fn read(
        &self,
        image: &[u8],
        extension: &str,
        languages: &str,
        psm: u8,
    ) -> Result<crate::tsv::Reading, PluginError> {
        let file = TempFile::write(image, extension).map_err(temp_error)?;
        let psm = psm.to_string();
        let args: [&OsStr; 8] = [
            file.path().as_os_str(),
            OsStr::new("stdout"),
            OsStr::new("-l"),
            OsStr::new(languages),
            OsStr::new("--psm"),
            OsStr::new(&psm),
            // Config files shipped with Tesseract: `tsv` prints each word with its box and
            // confidence; `quiet` drops the notices (errors still reach stderr).
            OsStr::new("tsv"),
            OsStr::new("quiet"),
        ];
        let out = self.run(&args, self.timeout)?;
        drop(file);
        if !out.status.success() {
            let detail = out.stderr_summary();
            let stderr = String::from_utf8_lossy(&out.stderr);
            let hint = if stderr.contains("Failed loading language")
                || stderr.contains("Could not initialize tesseract")
            {
                format!(
                    ": the language data of {languages} is not installed (Debian: apt-get \
                     install tesseract-ocr-<code>); run the test routine to list what is"
                )
            } else {
                String::new()
            };
            return Err(PluginError::new(
                ErrorKind::Upstream,
                format!(
                    "Tesseract could not read the image ({}): {detail}{hint}",
                    out.status
                ),
            ));
        }
        crate::tsv::parse(&String::from_utf8_lossy(&out.stdout))
    }

    /// Runs the program with `args`, killing it at `timeout`.
    ///
    /// Its output goes to temporary files rather than pipes: a pipe stays open as long as
    /// any process holds it, so a wrapper script whose child survives the kill would keep
    /// the call waiting; a file is simply read once the program has ended.
    pub fn run<S: AsRef<OsStr>>(
        &self,
        args: &[S],
        timeout: Duration,
    ) -> Result<Output, PluginError> {
        let (stdout_file, stdout) = TempFile::create("out").map_err(temp_error)?;
        let (stderr_file, stderr) = TempFile::create("err").map_err(temp_error)?;
        let mut child = Command::new(&self.program)
            .args(args)
            // One thread per reading: the host runs several calls at once, and OpenMP's
            // default of one thread per core makes them fight (Tesseract's own advice).
            .env("OMP_THREAD_LIMIT", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout))
            .stderr(Stdio::from(stderr))
            .spawn()
            .map_err(|e| self.spawn_error(&e))?;
        let started = Instant::now();
        let mut pause = Duration::from_millis(2);
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if started.elapsed() >= timeout => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PluginError::new(
                        ErrorKind::Timeout,
                        format!(
                            "Tesseract did not finish within {} s and was stopped: send a \
                             smaller photo, or raise the timeout (Timeout, timeout_secs)",
                            timeout.as_secs()
                        ),
                    ));
                }
                Ok(None) => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(20));
                }
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(PluginError::internal(format!(
                        "cannot wait for {}: {e}",
                        self.program.display()
                    )));
                }
            }
        };
        Ok(Output {
            status,
            stdout: std::fs::read(stdout_file.path()).unwrap_or_default(),
            stderr: std::fs::read(stderr_file.path()).unwrap_or_default(),
        })
    }

    fn spawn_error(&self, e: &std::io::Error) -> PluginError {
        let program = self.program.display();
        match (e.kind(), self.configured) {
            (std::io::ErrorKind::NotFound, false) => PluginError::new(
                ErrorKind::Unavailable,
                "the Tesseract engine is not installed (no `tesseract` on the PATH): install it \
                 (Debian: apt-get install tesseract-ocr tesseract-ocr-fra tesseract-ocr-eng) or \
                 set its full path in Engine path (engine_path)",
            )
            .with_field("engine_path"),
            (std::io::ErrorKind::NotFound, true) => PluginError::config(
                "engine_path",
                format!(
                    "the engine path {program} does not exist: set the full path of the \
                     tesseract program (`command -v tesseract` shows it), or empty it to use \
                     the PATH"
                ),
            ),
            (std::io::ErrorKind::PermissionDenied, _) => PluginError::config(
                "engine_path",
                format!(
                    "{program} cannot be run by the host (permission denied): check that it is \
                     the tesseract program and executable"
                ),
            ),
            _ => PluginError::new(
                ErrorKind::Unavailable,
                format!("cannot start {program}: {e}"),
            ),
        }
    }
}

fn temp_error(e: std::io::Error) -> PluginError {
    PluginError::new(
        ErrorKind::Unavailable,
        format!(
            "cannot create a temporary file for the engine in {} ({e}): check that the host \
             may write to its temporary directory (TMPDIR)",
            std::env::temp_dir().display()
        ),
    )
}

/// The version number in `tesseract 5.3.0` (or `tesseract v5.0.0-alpha…`).
pub fn parse_version(text: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let rest = line.trim().strip_prefix("tesseract")?.trim();
        let rest = rest.strip_prefix('v').unwrap_or(rest);
        let version: String = rest.chars().take_while(|c| !c.is_whitespace()).collect();
        version
            .starts_with(|c: char| c.is_ascii_digit())
            .then_some(version)
    })
}

/// The major version, e.g. 5 for `5.3.0`.
pub fn major_version(version: &str) -> Option<u32> {
    version.split(['.', '-']).next()?.parse().ok()
}

/// The output of `--list-langs`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Languages {
    /// Where the data files are, when Tesseract says.
    pub data_dir: Option<String>,
    pub codes: Vec<String>,
}

/// Reads `List of available languages in "/usr/share/tesseract-ocr/5/tessdata/" (3):`
/// followed by one code per line.
pub fn parse_languages(text: &str) -> Languages {
    let mut languages = Languages::default();
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if line.starts_with("List of available languages") {
            languages.data_dir = line.split('"').nth(1).map(str::to_owned);
            continue;
        }
        if line
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '/'))
        {
            languages.codes.push(line.to_owned());
        }
    }
    languages
}

/// A temporary file (the document's copy, the engine's output), deleted on drop.
#[derive(Debug)]
struct TempFile {
    path: PathBuf,
}

impl TempFile {
    /// Creates an empty file with a unique name, readable by this user only.
    fn create(extension: &str) -> std::io::Result<(TempFile, std::fs::File)> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let name = format!(
            "passerelle-ocr-{}-{nanos:09}-{}.{extension}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = std::env::temp_dir().join(name);
        let mut options = std::fs::OpenOptions::new();
        // `create_new` never follows or overwrites what another user put there.
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            // Receipts are personal data: readable by the host's user only.
            options.mode(0o600);
        }
        let file = options.open(&path)?;
        Ok((TempFile { path }, file))
    }

    /// A file holding `bytes`.
    fn write(bytes: &[u8], extension: &str) -> std::io::Result<TempFile> {
        let (temp, mut file) = TempFile::create(extension)?;
        file.write_all(bytes)?;
        file.flush()?;
        Ok(temp)
    }

    fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_read_from_each_generation() {
        assert_eq!(
            parse_version("tesseract 5.3.0\n leptonica-1.82.0\n").as_deref(),
            Some("5.3.0")
        );
        assert_eq!(
            parse_version("tesseract v5.0.0-alpha-20201231\n").as_deref(),
            Some("5.0.0-alpha-20201231")
        );
        assert_eq!(
            parse_version("tesseract 3.04.01\n").as_deref(),
            Some("3.04.01")
        );
        assert_eq!(parse_version("convert 6.9\n"), None);
        assert_eq!(major_version("5.3.0"), Some(5));
        assert_eq!(major_version("4.1.1-rc2"), Some(4));
    }

    #[test]
    fn languages_are_listed_with_their_directory() {
        let l = parse_languages(
            "List of available languages in \"/usr/share/tesseract-ocr/5/tessdata/\" (3):\neng\nfra\nosd\n",
        );
        assert_eq!(
            l.data_dir.as_deref(),
            Some("/usr/share/tesseract-ocr/5/tessdata/")
        );
        assert_eq!(l.codes, ["eng", "fra", "osd"]);
    }

    #[test]
    fn temporary_images_are_private_unique_and_removed() {
        let a = TempFile::write(b"one", "png").unwrap();
        let b = TempFile::write(b"two", "png").unwrap();
        assert_ne!(a.path(), b.path());
        assert_eq!(std::fs::read(a.path()).unwrap(), b"one");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.path()).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        let path = a.path().to_owned();
        drop(a);
        assert!(!path.exists());
    }

    #[test]
    fn a_missing_program_names_the_field_and_the_package() {
        let e = Engine::new(
            "tesseract-that-does-not-exist",
            false,
            Duration::from_secs(5),
        )
        .version()
        .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert!(
            e.message.contains("apt-get install tesseract-ocr"),
            "{}",
            e.message
        );
        let e = Engine::new("/nonexistent/tesseract", true, Duration::from_secs(5))
            .version()
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Config);
        assert_eq!(e.field.as_deref(), Some("engine_path"));
    }

    #[cfg(unix)]
    #[test]
    fn a_stuck_engine_is_stopped_at_the_deadline() {
        let started = Instant::now();
        let e = Engine::new("sleep", false, Duration::from_millis(300))
            .run(&["10"], Duration::from_millis(300))
            .unwrap_err();
        assert_eq!(e.kind, ErrorKind::Timeout);
        assert!(started.elapsed() < Duration::from_secs(3));
    }
}
