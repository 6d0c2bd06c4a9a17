//! Shared helpers of the end-to-end tests: build the real binary and plugin libraries once,
//! give each test a fresh data directory and plugin directory, and run `passerelle` with a
//! timeout, printing the command, status, stdout and stderr when an expectation fails.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, OnceLock};

pub mod receiver;
pub mod serve;
use std::time::{Duration, Instant};

/// How long one `passerelle` command may take before the test fails.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

/// Where the built binary and libraries are.
#[derive(Debug)]
pub struct Artifacts {
    pub dir: PathBuf,
    pub bin: PathBuf,
}

impl Artifacts {
    /// Path of a library built by this workspace, from its crate name (`passerelle_sirene`).
    pub fn library(&self, crate_name: &str) -> PathBuf {
        self.dir.join(library_file_name(crate_name))
    }
}

/// `libname.so`, `name.dll` or `libname.dylib`.
pub fn library_file_name(crate_name: &str) -> String {
    format!(
        "{}{crate_name}.{}",
        std::env::consts::DLL_PREFIX,
        std::env::consts::DLL_EXTENSION
    )
}

fn cargo_build(packages: &[&str]) -> PathBuf {
    let exe = std::env::current_exe().expect("current test executable");
    // target/<profile>/deps/<test-binary>
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary in target/<profile>/deps")
        .to_path_buf();
    let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.toml");
    let mut cmd = Command::new(env!("CARGO"));
    cmd.arg("build")
        .arg("--quiet")
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&target_dir);
    if profile_dir.file_name().and_then(|n| n.to_str()) == Some("release") {
        cmd.arg("--release");
    }
    for p in packages {
        cmd.arg("-p").arg(p);
    }
    let status = cmd.status().expect("run cargo build");
    assert!(status.success(), "cargo build of {packages:?} failed");
    profile_dir
}

/// Builds the `passerelle` binary once per test process, in the same target directory and
/// profile as the running tests.
pub fn artifacts() -> &'static Artifacts {
    static ARTIFACTS: OnceLock<Artifacts> = OnceLock::new();
    ARTIFACTS.get_or_init(|| {
        let dir = cargo_build(&["passerelle"]);
        let bin = dir.join(format!("passerelle{}", std::env::consts::EXE_SUFFIX));
        Artifacts { dir, bin }
    })
}

/// The library of a workspace crate (`passerelle_sirene` → package `passerelle-sirene`),
/// built on first use.
pub fn plugin_library(crate_name: &str) -> PathBuf {
    static BUILT: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let artifacts = artifacts();
    let mut built = BUILT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !built.iter().any(|b| b == crate_name) {
        cargo_build(&[&crate_name.replace('_', "-")]);
        built.push(crate_name.to_owned());
    }
    artifacts.library(crate_name)
}

/// A new empty database on the PostgreSQL test server (`PASSERELLE_TEST_DATABASE_URL`, which
/// `.ci/run` starts). Without that server the test fails, saying how to start one.
pub fn scratch_database() -> String {
    let admin = passerelle::storage::postgres::test_server_url().unwrap_or_else(|| {
        panic!(
            "this test needs PostgreSQL: start a server (see .ci/run) and set \
             PASSERELLE_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:55432/postgres"
        )
    });
    passerelle::storage::postgres::create_scratch_database(&admin, "e2e")
        .unwrap_or_else(|e| panic!("cannot create a test database: {e}"))
}

/// A fresh host: its own data directory and plugin directory.
pub struct TestEnv {
    pub root: tempfile::TempDir,
    pub data: PathBuf,
    pub plugins: PathBuf,
    /// The PostgreSQL database of this host (its own, on the test server), when the test runs
    /// on that backend: see [`TestEnv::postgres`] and `PASSERELLE_TEST_BACKEND`.
    pub database: Option<String>,
    envs: Vec<(String, String)>,
}

impl Default for TestEnv {
    fn default() -> Self {
        Self::new()
    }
}

impl TestEnv {
    pub fn new() -> Self {
        let root = tempfile::tempdir().expect("temp dir");
        let data = root.path().join("data");
        let plugins = root.path().join("plugins");
        std::fs::create_dir_all(&plugins).expect("plugin dir");
        // `PASSERELLE_TEST_BACKEND=postgres` runs the whole suite on PostgreSQL (CI's second pass).
        let database = (std::env::var("PASSERELLE_TEST_BACKEND").as_deref() == Ok("postgres"))
            .then(scratch_database);
        TestEnv {
            root,
            data,
            plugins,
            database,
            envs: Vec::new(),
        }
    }

    /// A fresh host on its own PostgreSQL database, whatever `PASSERELLE_TEST_BACKEND` says.
    pub fn postgres() -> Self {
        let mut env = Self::new();
        if env.database.is_none() {
            env.database = Some(scratch_database());
        }
        env
    }

    /// A second host (another node) on the same storage: same database, a copy of the secret
    /// key (every node needs it), its own data directory otherwise; the plugin directory is
    /// shared. Run a command on `self` first, so that the key exists.
    pub fn node_of(&self) -> Self {
        let mut node = Self::new();
        node.database = self.database.clone();
        node.plugins = self.plugins.clone();
        node.envs = self.envs.clone();
        let key = self.data.join("keys").join("secret.key");
        let keys = node.data.join("keys");
        std::fs::create_dir_all(&keys).expect("key dir");
        std::fs::copy(&key, keys.join("secret.key")).unwrap_or_else(|e| {
            panic!(
                "copy the first node's key {}: {e} (run a command on it first)",
                key.display()
            )
        });
        node
    }

    /// This host on the embedded backend whatever `PASSERELLE_TEST_BACKEND` says, for the
    /// tests of the data directory's own files (instance TOML files, SQLite databases).
    /// Call it before running any command.
    pub fn embedded(mut self) -> Self {
        self.database = None;
        self
    }

    /// This host's storage backend, opened from the test process (to read what the host
    /// wrote, as any node would).
    pub fn backend(&self) -> passerelle::storage::Backend {
        let url = self
            .database
            .as_deref()
            .map(|u| passerelle::storage::DatabaseUrl::parse(u).unwrap_or_else(|e| panic!("{e}")));
        passerelle::storage::Backend::open(url.as_ref(), &self.data)
            .unwrap_or_else(|e| panic!("open the test host's storage: {e}"))
    }

    /// This host's instances, read from its storage.
    pub fn store(&self) -> passerelle::store::Store {
        passerelle::store::Store::open_on(&self.data, &self.backend())
            .unwrap_or_else(|e| panic!("open the test host's instances: {e}"))
    }

    /// This host's audit history, read from its storage.
    pub fn audit(&self) -> passerelle::server::audit::AuditLog {
        passerelle::server::audit::AuditLog::open(&self.backend(), &self.data)
            .unwrap_or_else(|e| panic!("open the test host's audit history: {e}"))
    }

    /// Applies this host's storage to a command (PostgreSQL URL or none).
    pub fn storage_env(&self, cmd: &mut Command) {
        cmd.env_remove("PASSERELLE_DATABASE_URL");
        if let Some(url) = &self.database {
            cmd.env("PASSERELLE_DATABASE_URL", url);
        }
    }

    /// A host with these workspace libraries (crate names) in its plugin directory.
    pub fn with_plugins(crates: &[&str]) -> Self {
        let env = Self::new();
        for c in crates {
            env.add_plugin(c);
        }
        env
    }

    pub fn add_plugin(&self, crate_name: &str) -> PathBuf {
        let src = plugin_library(crate_name);
        let dst = self.plugins.join(library_file_name(crate_name));
        std::fs::copy(&src, &dst)
            .unwrap_or_else(|e| panic!("copy {} to {}: {e}", src.display(), dst.display()));
        dst
    }

    /// Sets an environment variable for every later command.
    pub fn env(&mut self, key: &str, value: &str) {
        self.envs.push((key.to_owned(), value.to_owned()));
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(&artifacts().bin);
        cmd.arg("--data-dir")
            .arg(&self.data)
            .arg("--plugin-dir")
            .arg(&self.plugins)
            .args(args)
            .env_remove("PASSERELLE_SECRET_KEY")
            .env_remove("PASSERELLE_PLUGIN_DIRS")
            .env_remove("PASSERELLE_DATA_DIR")
            .env_remove("PASSERELLE_KEY_FILE")
            .env_remove("RUST_LOG")
            .env_remove("PASSERELLE_PLUGIN_POLICY")
            .current_dir(self.root.path());
        self.storage_env(&mut cmd);
        // The test's plugin files are not signed and every command is strict by default: run
        // with allow-unsigned unless the test's host.toml chooses a policy itself.
        let host_toml = std::fs::read_to_string(self.data.join("host.toml")).unwrap_or_default();
        if !host_toml.contains("policy") {
            cmd.env("PASSERELLE_PLUGIN_POLICY", "allow-unsigned");
        }
        for (k, v) in &self.envs {
            cmd.env(k, v);
        }
        cmd
    }

    /// Runs `passerelle <args>` and returns what happened, whatever the exit code.
    pub fn run(&self, args: &[&str]) -> Run {
        self.run_with_stdin(args, None)
    }

    pub fn run_with_stdin(&self, args: &[&str], stdin: Option<&str>) -> Run {
        let line = format!("passerelle {}", args.join(" "));
        run_to_end(self.command(args), line.clone(), stdin, COMMAND_TIMEOUT)
            .unwrap_or_else(|| panic!("`{line}` did not finish within {COMMAND_TIMEOUT:?}"))
    }

    /// Runs and expects exit code 0.
    pub fn ok(&self, args: &[&str]) -> Run {
        self.run(args).expect_code(0)
    }

    /// Writes the host configuration file (`<data>/host.toml`).
    pub fn write_host_toml(&self, text: &str) {
        std::fs::create_dir_all(&self.data).expect("data dir");
        std::fs::write(self.data.join("host.toml"), text).expect("write host.toml");
    }

    /// Path of an instance's TOML file.
    pub fn instance_file(&self, id: &str) -> PathBuf {
        self.data.join("instances").join(format!("{id}.toml"))
    }

    /// Every file under the data directory, as text (lossy), for leak checks; on
    /// PostgreSQL, every row of the stores' tables too (as JSON).
    pub fn data_dump(&self) -> String {
        let mut out = String::new();
        dump(&self.data, &mut out);
        if let Some(pg) = self.database.as_ref().and(self.backend().pg().cloned()) {
            for (table, _) in passerelle::storage::migrate::table_counts(&pg)
                .unwrap_or_else(|e| panic!("count the test database's rows: {e}"))
            {
                out.push_str(
                    &passerelle::storage::migrate::dump_rows(&pg, &table)
                        .unwrap_or_else(|e| panic!("read table {table}: {e}")),
                );
            }
        }
        out
    }
}

fn dump(dir: &Path, out: &mut String) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            dump(&p, out);
        } else if let Ok(bytes) = std::fs::read(&p) {
            out.push_str(&String::from_utf8_lossy(&bytes));
        }
    }
}

/// Runs a command to its end, feeding it `stdin` and reading its output on threads (so a
/// chatty child cannot block on a full pipe). `None` if it did not finish within `timeout`:
/// it is then killed.
pub fn run_to_end(
    mut cmd: Command,
    line: String,
    stdin: Option<&str>,
    timeout: Duration,
) -> Option<Run> {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = cmd.spawn().unwrap_or_else(|e| panic!("spawn {line}: {e}"));
    if let Some(input) = stdin {
        if let Some(mut pipe) = child.stdin.take() {
            pipe.write_all(input.as_bytes()).expect("write stdin");
        }
    }
    let out = child.stdout.take().map(reader);
    let err = child.stderr.take().map(reader);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if started.elapsed() > timeout {
            let _ = child.kill();
            let _ = child.wait();
            return None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let joined = |h: Option<std::thread::JoinHandle<String>>| {
        h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
    };
    Some(Run {
        line,
        code: status.code(),
        stdout: joined(out),
        stderr: joined(err),
        elapsed: started.elapsed(),
    })
}

fn reader(mut pipe: impl std::io::Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut buf = Vec::new();
        let _ = pipe.read_to_end(&mut buf);
        String::from_utf8_lossy(&buf).into_owned()
    })
}

/// The outcome of one command.
#[derive(Debug)]
pub struct Run {
    pub line: String,
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
    pub elapsed: Duration,
}

impl Run {
    /// Asserts the exit code, printing everything on mismatch.
    pub fn expect_code(self, code: i32) -> Self {
        assert!(
            self.code == Some(code),
            "`{}` exited with {:?}, expected {code}\n--- stdout\n{}\n--- stderr\n{}",
            self.line,
            self.code,
            self.stdout,
            self.stderr
        );
        self
    }

    /// stdout parsed as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| {
            panic!(
                "`{}` did not print JSON ({e}):\n{}\n--- stderr\n{}",
                self.line, self.stdout, self.stderr
            )
        })
    }

    /// stdout and stderr together.
    pub fn all(&self) -> String {
        format!("{}\n{}", self.stdout, self.stderr)
    }

    /// Asserts that the output contains `needle`.
    pub fn expect_output(self, needle: &str) -> Self {
        assert!(
            self.all().contains(needle),
            "`{}` output does not contain {needle:?}\n--- stdout\n{}\n--- stderr\n{}",
            self.line,
            self.stdout,
            self.stderr
        );
        self
    }
}

/// The step `name` of a test report printed with `--json`; fails naming the step otherwise.
pub fn step<'a>(report: &'a serde_json::Value, name: &str) -> &'a serde_json::Value {
    report["steps"]
        .as_array()
        .and_then(|steps| steps.iter().find(|s| s["name"] == name))
        .unwrap_or_else(|| panic!("no step {name} in {report:#}"))
}
