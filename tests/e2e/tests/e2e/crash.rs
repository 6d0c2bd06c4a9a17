//! Crash consistency (issue 19): many writers on one instance at once, through the command
//! line and the HTTP API, with and without `--if-revision`, while writers, task runs and
//! `serve` itself are SIGKILL-ed at random moments. Afterwards every instance file and
//! database must open, and everything that was acknowledged (exit 0, HTTP 2xx) must be there:
//! per field the value of the last acknowledged write (or of a later write whose answer was
//! lost), no two acknowledged writes with the same revision (a lost update), and the last
//! acknowledged task run with its plugin state.
//!
//! Seeded: the seed is printed and `PASSERELLE_CRASH_SEED` replays the same kill schedule
//! (process timing still varies). `PASSERELLE_CRASH_SECS` (default 10),
//! `PASSERELLE_CRASH_WRITERS` (default 240, at least 200) and `PASSERELLE_CRASH_STAMPEDE`
//! (command-line writers started at the same moment, default 200) make a longer run.

use passerelle_e2e::serve::{admin_token, Server};
use passerelle_e2e::{artifacts, TestEnv};
use serde_json::{json, Value};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const INSTANCE: &str = "p";
/// Fields written concurrently, with a value unique to each write.
const FIELDS: [&str; 3] = ["client_id", "delay_ms", "tick_delay"];

/// splitmix64: small, seedable, good enough to pick moments and fields.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// One write and what its writer was told.
#[derive(Debug, Clone)]
struct Write1 {
    field: &'static str,
    value: String,
    /// `Some(revision)` when acknowledged (exit 0 / HTTP 200).
    acked: Option<u64>,
}

#[derive(Default)]
struct Tally {
    writes: Vec<Write1>,
    cli_writers: usize,
    /// Of which started at the same moment.
    stampede: usize,
    api_writers: usize,
    with_if_revision: usize,
    stale_refusals: usize,
    cli_kills: usize,
    serve_kills: usize,
    task_runs: usize,
    task_kills: usize,
    /// Highest `tick N` acknowledged, and when (ms) its command was started.
    last_tick: Option<(u64, i64)>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as i64)
        .unwrap_or(0)
}

fn value_for(field: &str, writer: usize, seq: usize) -> String {
    match field {
        "client_id" => format!("w{writer}-{seq}"),
        // Numbers unique per write.
        _ => (writer * 100_000 + seq).to_string(),
    }
}

fn cli(env: &TestEnv, args: &[&str]) -> Command {
    let mut cmd = Command::new(&artifacts().bin);
    cmd.arg("--data-dir")
        .arg(&env.data)
        .arg("--plugin-dir")
        .arg(&env.plugins)
        .args(args)
        .env("PASSERELLE_PLUGIN_POLICY", "allow-unsigned")
        .env_remove("PASSERELLE_SECRET_KEY")
        .env_remove("PASSERELLE_DATA_DIR")
        .env_remove("PASSERELLE_KEY_FILE")
        .env_remove("RUST_LOG")
        .current_dir(env.root.path())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Runs a command to its end, or SIGKILLs it after `kill_after`: `None` when killed.
fn run_or_kill(mut cmd: Command, kill_after: Option<Duration>) -> Option<(i32, String)> {
    let mut child: Child = cmd.spawn().expect("spawn passerelle");
    let mut out = child.stdout.take().expect("stdout");
    let mut err = child.stderr.take().expect("stderr");
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = out.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = err.read_to_string(&mut s);
        s
    });
    let started = Instant::now();
    let limit = Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break Some(status);
        }
        if kill_after.is_some_and(|k| started.elapsed() >= k) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        assert!(started.elapsed() < limit, "a writer hung for {limit:?}");
        std::thread::sleep(Duration::from_millis(2));
    };
    let stdout = reader.join().unwrap_or_default();
    let stderr = err_reader.join().unwrap_or_default();
    Some(exited(status?, stdout, &stderr))
}

/// The exit code and output of a writer that ended on its own, which must never crash
/// (signal, panic, internal error).
fn exited(status: std::process::ExitStatus, stdout: String, stderr: &str) -> (i32, String) {
    let code = status
        .code()
        .unwrap_or_else(|| panic!("a writer died of {status:?}\n{stdout}\n{stderr}"));
    assert!(
        code != 70 && !stderr.contains("panicked"),
        "a writer failed internally ({code}):\n{stdout}\n{stderr}"
    );
    (code, stdout)
}

/// Records what a `config set` writer was told (`None`: it was killed).
fn record_cli(
    t: &mut Tally,
    field: &'static str,
    value: String,
    with_revision: bool,
    outcome: Option<(i32, String)>,
) {
    t.cli_writers += 1;
    t.with_if_revision += usize::from(with_revision);
    let acked = match outcome {
        None => {
            t.cli_kills += 1;
            None
        }
        Some((0, stdout)) => {
            Some(printed_revision(&stdout).unwrap_or_else(|| panic!("no revision in {stdout:?}")))
        }
        Some((3, _)) if with_revision => {
            t.stale_refusals += 1;
            None
        }
        Some((code, stdout)) => {
            panic!("`config set` failed with {code} without being killed: {stdout}")
        }
    };
    t.writes.push(Write1 {
        field,
        value,
        acked,
    });
}

/// `(revision N)` in `config set`'s answer.
fn printed_revision(stdout: &str) -> Option<u64> {
    let rest = stdout.split("(revision ").nth(1)?;
    rest.split(')').next()?.parse().ok()
}

/// The revision on disk now (what a careful writer reads before `--if-revision`).
fn current_revision(env: &TestEnv) -> Option<u64> {
    let text = std::fs::read_to_string(env.instance_file(INSTANCE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("revision = "))
        .and_then(|v| v.trim().parse().ok())
}

/// One HTTP exchange that may fail (the server is being killed): `Err` when no answer came.
fn try_http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: &str,
    body: &str,
) -> std::io::Result<(u16, Value)> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2))?;
    stream.set_read_timeout(Some(Duration::from_secs(60)))?;
    let request = format!(
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    stream.write_all(request.as_bytes())?;
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw)?;
    let text = String::from_utf8_lossy(&raw);
    let (head, rest) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| std::io::Error::other("no complete answer"))?;
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .ok_or_else(|| std::io::Error::other("no status"))?;
    let body = if head.to_ascii_lowercase().contains("chunked") {
        // Answers here are small; one chunk.
        rest.split("\r\n").nth(1).unwrap_or("").to_owned()
    } else {
        rest.to_owned()
    };
    Ok((status, serde_json::from_str(&body).unwrap_or(Value::Null)))
}

#[test]
fn acknowledged_writes_survive_sigkill_of_writers_and_serve() {
    let seed = std::env::var("PASSERELLE_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| now_ms() as u64);
    let run_for = Duration::from_secs(env_number("PASSERELLE_CRASH_SECS", 10));
    let min_writers = env_number("PASSERELLE_CRASH_WRITERS", 240).max(200) as usize;
    let stampede = env_number("PASSERELLE_CRASH_STAMPEDE", 200) as usize;
    eprintln!("crash seed {seed} (replay the kill schedule with PASSERELLE_CRASH_SEED={seed})");

    // Checks the instance files and SQLite databases after SIGKILLs: embedded backend.
    let env = TestEnv::with_plugins(&["fixture_service_probe"]).embedded();
    env.ok(&["config", "create", INSTANCE, "--plugin", "service-probe"]);
    env.ok(&["config", "set", INSTANCE, "base_url", "http://127.0.0.1:9"]);
    // The scheduler of each `serve` must not tick on its own: only acknowledged runs count.
    env.ok(&["config", "set", INSTANCE, "tick_interval", "86400"]);
    env.ok(&["config", "enable", INSTANCE]);
    let token = admin_token(&env);

    let server: Arc<Mutex<Option<Server>>> = Arc::new(Mutex::new(Some(Server::start(&env, &[]))));
    let addr: Arc<Mutex<Option<SocketAddr>>> =
        Arc::new(Mutex::new(server.lock().unwrap().as_ref().map(|s| s.addr)));
    let tally = Arc::new(Mutex::new(Tally::default()));
    let started_writers = Arc::new(AtomicUsize::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let keep_going = {
        let started_writers = started_writers.clone();
        let stop = stop.clone();
        move || {
            !stop.load(Ordering::Relaxed)
                && (started.elapsed() < run_for
                    || started_writers.load(Ordering::Relaxed) < min_writers)
                && started.elapsed() < run_for * 6
        }
    };

    std::thread::scope(|scope| {
        // Kills `serve` at random moments and starts it again.
        {
            let (server, addr, tally, env) = (server.clone(), addr.clone(), tally.clone(), &env);
            let keep_going = keep_going.clone();
            let mut rng = Rng(seed ^ 0xA11CE);
            scope.spawn(move || {
                while keep_going() {
                    std::thread::sleep(Duration::from_millis(400 + rng.below(1200)));
                    *addr.lock().unwrap() = None;
                    // Dropping the server SIGKILLs it.
                    drop(server.lock().unwrap().take());
                    tally.lock().unwrap().serve_kills += 1;
                    std::thread::sleep(Duration::from_millis(rng.below(300)));
                    let fresh = Server::start(env, &[]);
                    *addr.lock().unwrap() = Some(fresh.addr);
                    *server.lock().unwrap() = Some(fresh);
                }
            });
        }
        // Command-line writers, some killed at a random moment.
        for writer in 0..6 {
            let (tally, env, started_writers) = (tally.clone(), &env, started_writers.clone());
            let keep_going = keep_going.clone();
            let mut rng = Rng(seed ^ ((writer as u64 + 1) * 0x1000_0001));
            scope.spawn(move || {
                let mut seq = 0;
                while keep_going() {
                    seq += 1;
                    started_writers.fetch_add(1, Ordering::Relaxed);
                    let field = FIELDS[rng.below(FIELDS.len() as u64) as usize];
                    let value = value_for(field, writer, seq);
                    let mut args = vec!["config", "set", INSTANCE, field, value.as_str()];
                    let revision;
                    let with_revision = rng.chance(40);
                    if with_revision {
                        revision = current_revision(env).unwrap_or(1).to_string();
                        args.extend(["--if-revision", revision.as_str()]);
                    }
                    let kill = rng
                        .chance(30)
                        .then(|| Duration::from_millis(rng.below(400)));
                    let outcome = run_or_kill(cli(env, &args), kill);
                    record_cli(
                        &mut tally.lock().unwrap(),
                        field,
                        value,
                        with_revision,
                        outcome,
                    );
                }
            });
        }
        // A stampede: `stampede` command-line writers started at the same moment, some
        // killed within the next seconds.
        {
            let (tally, env, started_writers) = (tally.clone(), &env, started_writers.clone());
            let mut rng = Rng(seed ^ 0x57A3_9ED3);
            scope.spawn(move || {
                let dir = env.root.path().join("stampede");
                std::fs::create_dir_all(&dir).unwrap();
                let mut pending = Vec::new();
                for i in 0..stampede {
                    let field = FIELDS[rng.below(FIELDS.len() as u64) as usize];
                    let value = value_for(field, 1000 + i, 1);
                    let mut args = vec!["config", "set", INSTANCE, field, value.as_str()];
                    let revision;
                    let with_revision = rng.chance(40);
                    if with_revision {
                        revision = current_revision(env).unwrap_or(1).to_string();
                        args.extend(["--if-revision", revision.as_str()]);
                    }
                    let kill_after = rng
                        .chance(30)
                        .then(|| Duration::from_millis(rng.below(1500)));
                    let (out, err) = (dir.join(format!("{i}.out")), dir.join(format!("{i}.err")));
                    let mut cmd = cli(env, &args);
                    cmd.stdout(std::fs::File::create(&out).unwrap())
                        .stderr(std::fs::File::create(&err).unwrap());
                    let child = cmd.spawn().expect("spawn a stampede writer");
                    // Each one's kill moment counts from its own start.
                    let kill_at = kill_after.map(|k| Instant::now() + k);
                    started_writers.fetch_add(1, Ordering::Relaxed);
                    pending.push((child, field, value, with_revision, kill_at, out, err));
                }
                let launched = Instant::now();
                while !pending.is_empty() {
                    pending.retain_mut(
                        |(child, field, value, with_revision, kill_at, out, err)| {
                            let outcome = match child.try_wait().expect("wait") {
                                Some(status) => Some(exited(
                                    status,
                                    std::fs::read_to_string(&*out).unwrap_or_default(),
                                    &std::fs::read_to_string(&*err).unwrap_or_default(),
                                )),
                                None if kill_at.is_some_and(|k| Instant::now() >= k) => {
                                    let _ = child.kill();
                                    let _ = child.wait();
                                    None
                                }
                                None => {
                                    assert!(
                                        launched.elapsed() < Duration::from_secs(300),
                                        "a stampede writer hung"
                                    );
                                    return true;
                                }
                            };
                            let mut t = tally.lock().unwrap();
                            t.stampede += 1;
                            record_cli(
                                &mut t,
                                field,
                                std::mem::take(value),
                                *with_revision,
                                outcome,
                            );
                            false
                        },
                    );
                    std::thread::sleep(Duration::from_millis(5));
                }
            });
        }
        // API writers, while `serve` comes and goes.
        for writer in 10..16 {
            let (tally, addr, token, started_writers) = (
                tally.clone(),
                addr.clone(),
                token.as_str(),
                started_writers.clone(),
            );
            let keep_going = keep_going.clone();
            let mut rng = Rng(seed ^ ((writer as u64 + 1) * 0x2000_0003));
            scope.spawn(move || {
                let mut seq = 0;
                while keep_going() {
                    let Some(at) = *addr.lock().unwrap() else {
                        std::thread::sleep(Duration::from_millis(20));
                        continue;
                    };
                    seq += 1;
                    let field = FIELDS[rng.below(FIELDS.len() as u64) as usize];
                    let value = value_for(field, writer, seq);
                    let json_value = if field == "client_id" {
                        json!(value)
                    } else {
                        json!(value.parse::<u64>().unwrap())
                    };
                    let path = format!("/api/instances/{INSTANCE}");
                    let with_revision = rng.chance(40);
                    let body = if with_revision {
                        match try_http(at, "GET", &path, token, "") {
                            Ok((200, doc)) => {
                                json!({"value": json_value, "revision": doc["revision"]})
                            }
                            _ => continue,
                        }
                    } else {
                        json!({ "value": json_value })
                    };
                    started_writers.fetch_add(1, Ordering::Relaxed);
                    let answer = try_http(
                        at,
                        "PUT",
                        &format!("{path}/fields/{field}"),
                        token,
                        &body.to_string(),
                    );
                    let mut t = tally.lock().unwrap();
                    t.api_writers += 1;
                    t.with_if_revision += usize::from(with_revision);
                    let acked = match answer {
                        Ok((200, doc)) => Some(
                            doc["revision"]
                                .as_u64()
                                .unwrap_or_else(|| panic!("no revision in {doc}")),
                        ),
                        Ok((409, _)) if with_revision => {
                            t.stale_refusals += 1;
                            None
                        }
                        Ok((status, doc)) if status < 500 => {
                            panic!("PUT {field} answered {status}: {doc}")
                        }
                        // Killed mid-request: unknown whether it was applied.
                        _ => None,
                    };
                    t.writes.push(Write1 {
                        field,
                        value,
                        acked,
                    });
                }
            });
        }
        // Task runs, some killed.
        {
            let (tally, env) = (tally.clone(), &env);
            let keep_going = keep_going.clone();
            let mut rng = Rng(seed ^ 0x7A5C);
            scope.spawn(move || {
                while keep_going() {
                    let kill = rng
                        .chance(35)
                        .then(|| Duration::from_millis(rng.below(500)));
                    let at = now_ms();
                    let outcome = run_or_kill(cli(env, &["tasks", "run", INSTANCE, "tick"]), kill);
                    let mut t = tally.lock().unwrap();
                    t.task_runs += 1;
                    match outcome {
                        None => t.task_kills += 1,
                        Some((0, stdout)) => {
                            let n: u64 = stdout
                                .split("tick ")
                                .nth(1)
                                .and_then(|s| s.split_whitespace().next())
                                .and_then(|s| s.parse().ok())
                                .unwrap_or_else(|| panic!("no tick count in {stdout:?}"));
                            if t.last_tick.is_none_or(|(m, _)| n > m) {
                                t.last_tick = Some((n, at));
                            }
                        }
                        // Refused while a killed run's lease is taken over, or failed: not
                        // acknowledged.
                        Some(_) => {}
                    }
                }
            });
        }
    });
    drop(server.lock().unwrap().take());
    let elapsed = started.elapsed();
    let t = tally.lock().unwrap();

    // Every instance file and database opens.
    let store = passerelle::store::Store::open(&env.data).expect("the instance store opens");
    let all = store.list().expect("every instance file parses");
    assert_eq!(all.len(), 1);
    let leftovers: Vec<String> = std::fs::read_dir(env.data.join("instances"))
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    for db in ["state.sqlite3", "console.sqlite3"] {
        let conn = rusqlite::Connection::open(env.data.join(db)).unwrap();
        let check: String = conn
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .unwrap();
        assert_eq!(check, "ok", "{db}");
    }
    let final_record = store
        .get(&passerelle::ids::InstanceId::new(INSTANCE).unwrap())
        .unwrap();

    // Acknowledged revisions are unique (two writers told "revision N" = one lost update)
    // and none is beyond the file's.
    let mut by_revision: HashMap<u64, &Write1> = HashMap::new();
    for w in t.writes.iter().filter(|w| w.acked.is_some()) {
        let revision = w.acked.unwrap_or(0);
        if let Some(other) = by_revision.insert(revision, w) {
            panic!("two acknowledged writes got revision {revision}: {other:?} and {w:?}");
        }
        assert!(
            revision <= final_record.revision,
            "acknowledged revision {revision} is beyond the file's {}",
            final_record.revision
        );
    }
    // Per field: the last acknowledged value, or that of a later write whose answer was lost.
    let mut checked = 0;
    for field in FIELDS {
        let Some(last) = t
            .writes
            .iter()
            .filter(|w| w.field == field && w.acked.is_some())
            .max_by_key(|w| w.acked)
        else {
            continue;
        };
        checked += t
            .writes
            .iter()
            .filter(|w| w.field == field && w.acked.is_some())
            .count();
        let on_disk = final_record
            .values
            .get(field)
            .map(|v| match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            })
            .unwrap_or_else(|| panic!("{field} was lost: {final_record:?}"));
        let unacknowledged_later = t
            .writes
            .iter()
            .any(|w| w.field == field && w.acked.is_none() && w.value == on_disk);
        assert!(
            on_disk == last.value || unacknowledged_later,
            "{field} is {on_disk:?} on disk, but the last acknowledged write (revision {:?}) set {:?}",
            last.acked,
            last.value
        );
    }

    // The last acknowledged task run and its plugin state are there.
    let state = passerelle::services::state::StateDb::open(&env.data.join("state.sqlite3"))
        .expect("the state database opens");
    if let Some((tick, at)) = t.last_tick {
        let run = state
            .last_task_run(INSTANCE, "tick")
            .unwrap()
            .expect("the acknowledged task run was lost");
        assert!(
            run.started_ms >= at,
            "the last acknowledged run (started after {at}) was lost: {run:?}"
        );
        let ticks = state.get(INSTANCE, "ticks").unwrap();
        assert!(
            ticks.as_ref().and_then(Value::as_u64).unwrap_or(0) >= tick,
            "plugin state lost acknowledged tick {tick}: {ticks:?}"
        );
    }

    // And the host works on it again: command line and server.
    let shown = env.ok(&["config", "show", INSTANCE, "--json"]).json();
    assert_eq!(shown["revision"], final_record.revision);
    let server = Server::start(&env, &[]);
    let (status, doc) = server.http(
        "GET",
        &format!("/api/instances/{INSTANCE}"),
        Some(&token),
        None,
    );
    assert_eq!(status, 200, "{doc}");
    assert_eq!(doc["revision"], final_record.revision);

    let acked = t.writes.iter().filter(|w| w.acked.is_some()).count();
    assert!(
        acked > 0 && t.cli_kills > 0 && t.serve_kills > 0,
        "nothing was tested"
    );
    eprintln!(
        "crash consistency: seed {seed}, {:.1} s; writers {} (cli {}, of which {} started at once; api {}; {} with a revision, {} refused as stale); \
         kills: serve {}, cli writers {}, task runs {}; acknowledged writes checked {checked} (final revision {}); \
         task runs {} (last acknowledged tick {:?})",
        elapsed.as_secs_f64(),
        t.cli_writers + t.api_writers,
        t.cli_writers,
        t.stampede,
        t.api_writers,
        t.with_if_revision,
        t.stale_refusals,
        t.serve_kills,
        t.cli_kills,
        t.task_kills,
        final_record.revision,
        t.task_runs,
        t.last_tick.map(|(n, _)| n),
    );
}
