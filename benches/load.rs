//! The load tool: every ratio of the speed goals in one run, each against its bare counterpart
//! measured in the same run.
//!
//! 1. Actions through an HTTP trigger (`POST /api/v1/actions/run`), `BELLHOP_LOAD_CONCURRENCY`
//!    in flight (32), against a bare Rust program behind the same kind of trigger doing the same
//!    job (reqwest GET with a bearer header, a typed serde parse, store the fields):
//!    - `email`: a 1 KB JSON answer, one field;
//!    - `twenty`: the same answer, 20 devices (the bare program stores 20 fields);
//!    - `one-mb`: a 1 MB answer, one field.
//!
//!    For each: actions/s, median latency, and actions per CPU-second. Each side runs on a
//!    runtime of its own whose threads carry its name, so the CPU time of a side is the sum over
//!    its threads (`/proc/self/task/*/stat`); Bellhop's side includes its store writer thread.
//!    The load generator and the upstream API have runtimes of their own, not counted.
//! 2. A listening hit → event → action, against the same action through the API (latency).
//! 3. The idle memory of `bellhop serve` with 100 profiles and 10,000 devices.
//! 4. The memory `bellhop serve` grows by answering `GET /api/v1/events` three times with
//!    10,000 events loaded.
//!
//! `BELLHOP_LOAD_JOBS=email,twenty,one-mb` picks the jobs of part 1 and `BELLHOP_LOAD_PARTS=
//! actions,trigger,memory` the parts (default: all). Three rounds (`BELLHOP_LOAD_ROUNDS`), the order of the sides flipped every round, each
//! measurement `BELLHOP_LOAD_SECS` long (5); the ratios are printed per round with their median
//! and spread. All traffic stays on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bellhop::devices::{Creation, DeviceHub, DeviceKey, DeviceUpdate};
use bellhop::engine::Engine;
use bellhop::secret::SecretSource;
use warp::Filter;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A multi-threaded runtime whose threads are all called `name` (at most 15 bytes: the kernel's
/// limit for a thread's name).
fn runtime(name: &str) -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(name)
        // Blocking threads stay, so their CPU time stays countable.
        .thread_keep_alive(Duration::from_secs(3600))
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn bind<F>(filter: F) -> SocketAddr
where
    F: Filter + Clone + Send + Sync + 'static,
    F::Extract: warp::Reply,
{
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(warp::serve(filter).incoming(listener).run());
    address
}

/// The API both sides call: `/user` a 1 KB JSON answer, `/big` a 1 MB one.
async fn upstream() -> SocketAddr {
    let small: &'static str = Box::leak(common::body(1024).into_boxed_str());
    let big: &'static str = Box::leak(common::body(1 << 20).into_boxed_str());
    let answer =
        |body: &'static str| warp::reply::with_header(body, "content-type", "application/json");
    let user = warp::path("user")
        .and(warp::header::<String>("authorization"))
        .map(move |_auth: String| answer(small));
    let large = warp::path("big")
        .and(warp::header::<String>("authorization"))
        .map(move |_auth: String| answer(big));
    bind(user.or(large)).await
}

#[derive(serde::Deserialize)]
struct EmailOnly {
    email: String,
}

type Store = Arc<Mutex<HashMap<String, String>>>;

/// Parses an answer typed and stores what the job keeps; whether it could.
type Keep = fn(&[u8], &mut HashMap<String, String>) -> bool;

/// The bare program's job: GET `url` with the token, parse it typed, store what it keeps.
async fn bare_job(client: &reqwest::Client, url: &str, store: &Store, keep: Keep) -> bool {
    let Ok(response) = client.get(url).bearer_auth("tok").send().await else {
        return false;
    };
    let Ok(body) = response.bytes().await else {
        return false;
    };
    match store.lock() {
        Ok(mut store) => keep(&body, &mut store),
        Err(_) => false,
    }
}

fn keep_email(body: &[u8], store: &mut HashMap<String, String>) -> bool {
    match serde_json::from_slice::<EmailOnly>(body) {
        Ok(parsed) => {
            store.insert("email".into(), parsed.email);
            true
        }
        Err(_) => false,
    }
}

fn keep_twenty(body: &[u8], store: &mut HashMap<String, String>) -> bool {
    let Ok(t) = serde_json::from_slice::<common::Twenty>(body) else {
        return false;
    };
    let room = |i: usize| t.rooms.get(i);
    let fields: [(&str, String); 20] = [
        ("id", t.id.to_string()),
        ("username", t.username.to_string()),
        ("email", t.email.to_string()),
        ("verified", t.verified.to_string()),
        ("locale", t.locale.to_string()),
        ("user.name", t.user.name.to_string()),
        ("user.age", t.user.age.to_string()),
        ("user.address.city", t.user.address.city.to_string()),
        ("user.address.zip", t.user.address.zip.to_string()),
        ("stats.a", t.stats.a.to_string()),
        ("stats.b", t.stats.b.to_string()),
        ("stats.c", t.stats.c.to_string()),
        (
            "stats.d[1]",
            t.stats.d.get(1).map(f64::to_string).unwrap_or_default(),
        ),
        ("flags.mfa", t.flags.mfa.to_string()),
        ("flags.premium", t.flags.premium.to_string()),
        (
            "rooms[0].name",
            room(0).map(|r| r.name.to_string()).unwrap_or_default(),
        ),
        (
            "rooms[0].temp",
            room(0).map(|r| r.temp.to_string()).unwrap_or_default(),
        ),
        (
            "rooms[1].name",
            room(1).map(|r| r.name.to_string()).unwrap_or_default(),
        ),
        (
            "rooms[1].temp",
            room(1).map(|r| r.temp.to_string()).unwrap_or_default(),
        ),
        (
            "items[0].label",
            t.items
                .first()
                .map(|i| i.label.to_string())
                .unwrap_or_default(),
        ),
    ];
    for (name, value) in fields {
        store.insert(name.to_string(), value);
    }
    true
}

/// The bare program: an HTTP trigger per job (`POST /<job>`) that does GET + parse + store.
async fn bare_program(upstream: SocketAddr) -> SocketAddr {
    let client = reqwest::Client::new();
    let store: Store = Arc::default();
    let route = warp::post()
        .and(warp::path::param::<String>())
        .and_then(move |job: String| {
            let client = client.clone();
            let store = store.clone();
            async move {
                let (path, keep): (&str, Keep) = match job.as_str() {
                    "twenty" => ("user", keep_twenty),
                    "one-mb" => ("big", keep_email),
                    _ => ("user", keep_email),
                };
                let url = format!("http://{upstream}/{path}");
                let ok = bare_job(&client, &url, &store, keep).await;
                let (body, status) = if ok {
                    ("{\"ok\":true}", warp::http::StatusCode::OK)
                } else {
                    ("{\"ok\":false}", warp::http::StatusCode::BAD_GATEWAY)
                };
                Ok::<_, std::convert::Infallible>(warp::reply::with_status(body, status))
            }
        });
    bind(route).await
}

/// Bellhop as `serve` runs it, with a profile per job.
async fn bellhop_server(upstream: SocketAddr, dir: &std::path::Path) -> SocketAddr {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap_or_else(|e| panic!("{e}"));
    let auth = "[auth]\nmode = \"bearer\"\ntoken = \"tok\"\n";
    let email = "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'\n";
    common::write(
        &profiles.join("email.toml"),
        &format!("version = 1\n[request]\nurl = \"http://{upstream}/user\"\n{auth}{email}"),
    );
    common::write(
        &profiles.join("one-mb.toml"),
        &format!("version = 1\n[request]\nurl = \"http://{upstream}/big\"\n{auth}{email}"),
    );
    let mut twenty = format!("version = 1\n[request]\nurl = \"http://{upstream}/user\"\n{auth}");
    for path in common::TWENTY_PATHS {
        twenty.push_str(&format!(
            "[[device]]\nname = '\"{path}\"'\nvalue = 'JSON(input, \"{path}\")'\n"
        ));
    }
    common::write(&profiles.join("twenty.toml"), &twenty);
    let set = bellhop::profile::load_dir(&profiles, &SecretSource::default());
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    let hub = DeviceHub::open(&dir.join("data/bellhop.sqlite"), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(set, None, Arc::new(hub)).unwrap_or_else(|e| panic!("{e}"));
    let state = bellhop::web::AppState::new(Arc::new(engine));
    let (address, _server) = bellhop::web::serve(
        state,
        SocketAddr::from(([127, 0, 0, 1], 0)),
        256,
        std::future::pending(),
    )
    .await
    .unwrap_or_else(|e| panic!("serve: {e}"));
    address
}

struct Measurement {
    per_second: f64,
    median_us: f64,
    failures: usize,
    /// Actions per CPU-second of the side measured.
    per_cpu_second: f64,
}

/// `concurrency` callers POSTing `body` to `url` for `seconds`, on the generator's runtime;
/// `cpu_of` names the threads whose CPU time the side spent.
fn measure(
    generator: &tokio::runtime::Runtime,
    url: &str,
    body: &'static str,
    concurrency: usize,
    seconds: f64,
    cpu_of: &[&str],
) -> Measurement {
    let ticks_before = common::cpu_ticks(cpu_of);
    let url = url.to_string();
    let (latencies, failures, elapsed) = generator.block_on(async move {
        let client = reqwest::Client::builder()
            .pool_max_idle_per_host(concurrency)
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let client = client.clone();
            let url = url.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut latencies = Vec::new();
                let mut failures = 0;
                while !stop.load(Ordering::Relaxed) {
                    let sent = Instant::now();
                    let response = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match response {
                        Ok(r) => r
                            .bytes()
                            .await
                            .is_ok_and(|b| b.windows(9).any(|w| w == b"\"ok\":true")),
                        Err(_) => false,
                    };
                    if ok {
                        latencies.push(sent.elapsed().as_micros() as u64);
                    } else {
                        failures += 1;
                    }
                }
                (latencies, failures)
            }));
        }
        tokio::time::sleep(Duration::from_secs_f64(seconds)).await;
        stop.store(true, Ordering::Relaxed);
        let mut latencies = Vec::new();
        let mut failures = 0;
        for task in tasks {
            if let Ok((l, f)) = task.await {
                latencies.extend(l);
                failures += f;
            }
        }
        (latencies, failures, started.elapsed().as_secs_f64())
    });
    let cpu_seconds = (common::cpu_ticks(cpu_of) - ticks_before) as f64 / common::TICKS_PER_SECOND;
    let mut latencies = latencies;
    latencies.sort_unstable();
    let median_us = latencies.get(latencies.len() / 2).copied().unwrap_or(0) as f64;
    Measurement {
        per_second: latencies.len() as f64 / elapsed,
        median_us,
        failures,
        per_cpu_second: latencies.len() as f64 / cpu_seconds.max(0.01),
    }
}

/// Writes a `plugin.toml` for `serve` over `dir` (profiles and events inside it).
fn serve_config(dir: &std::path::Path) -> std::path::PathBuf {
    let config = dir.join("plugin.toml");
    common::write(
        &config,
        &format!(
            "[web]\nlisten = \"127.0.0.1:0\"\n[paths]\ndata_dir = \"{}\"\nprofiles_dir = \"{}\"\nevents_dir = \"{}\"\n[oauth]\nkey_file = \"{}\"\n",
            dir.join("data").display(),
            dir.join("profiles").display(),
            dir.join("events").display(),
            dir.join("token.key").display()
        ),
    );
    config
}

/// A running `bellhop serve` over `dir`, stopped on drop.
struct Serve {
    child: std::process::Child,
    log: std::path::PathBuf,
}

impl Serve {
    fn start(dir: &std::path::Path) -> Result<Serve, String> {
        let log = dir.join("serve.log");
        let file = std::fs::File::create(&log).map_err(|e| e.to_string())?;
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_bellhop"))
            .arg("--config")
            .arg(serve_config(dir))
            .arg("serve")
            .env_remove("BELLHOP_LOG")
            .stdout(file.try_clone().map_err(|e| e.to_string())?)
            .stderr(file)
            .spawn()
            .map_err(|e| e.to_string())?;
        Ok(Serve { child, log })
    }

    /// Its RSS in KiB, or why it cannot be read.
    fn rss_kib(&mut self) -> Result<u64, String> {
        if let Ok(Some(status)) = self.child.try_wait() {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            return Err(format!(
                "bellhop serve exited early ({status}): {}",
                log.trim()
            ));
        }
        common::rss_kib(self.child.id()).ok_or_else(|| "no VmRSS in /proc".to_string())
    }

    /// The address it serves on, from its log (`serving … address=…`).
    fn address(&self) -> Result<String, String> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            let log = std::fs::read_to_string(&self.log).unwrap_or_default();
            if let Some(at) = log.find("address=") {
                let rest = &log[at + "address=".len()..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_digit() || c == '.' || c == ':'))
                    .unwrap_or(rest.len());
                return Ok(rest[..end].to_string());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!(
            "no address in the log: {}",
            std::fs::read_to_string(&self.log).unwrap_or_default()
        ))
    }
}

impl Drop for Serve {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The idle RSS of `bellhop serve` with 100 profiles and 10,000 devices, in KiB.
fn idle_memory() -> Result<u64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    for n in 0..100 {
        common::write(
            &dir.path().join(format!("profiles/p{n}.toml")),
            &format!("version = 1\n[request]\nurl = \"http://127.0.0.1:9/item/{n}?q=${{input}}\"\n[devices]\nroot_names = 'JSON(input, \"rooms[*].name\")'\nfeature_names = '\"temp\" && \"light\"'\nvalues = 'JSON(input, \"rooms[*].temp\")[index] && JSON(input, \"rooms[*].light\")[index]'\n"),
        );
    }
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let store = dir.path().join("data/bellhop.sqlite");
        let hub = DeviceHub::open(&store, Duration::from_millis(50)).map_err(|e| e.to_string())?;
        // 10,000 devices: in each of the 100 profiles 10 rooms (roots), each with 9 features.
        const FEATURES: [&str; 9] = [
            "temperature",
            "humidity",
            "battery",
            "light",
            "motion",
            "co2",
            "pressure",
            "noise",
            "door",
        ];
        let updates: Vec<DeviceUpdate> = (0..9_000)
            .map(|n| DeviceUpdate {
                key: DeviceKey::feature(
                    format!("p{}", n % 100),
                    format!("room {}", (n / 100) % 10),
                    FEATURES[n / 1000],
                ),
                value: Some(n as f64),
                string: Some(format!("{n} °C").into()),
            })
            .collect();
        runtime
            .block_on(hub.apply(&updates, Creation::Allowed))
            .map_err(|e| e.to_string())?;
        runtime.block_on(hub.flush()).map_err(|e| e.to_string())?;
        let devices = hub.len();
        if devices != 10_000 {
            return Err(format!("the fixture made {devices} devices, not 10,000"));
        }
    }
    let mut serve = Serve::start(dir.path())?;
    serve.address()?;
    std::thread::sleep(Duration::from_secs(2));
    let rss = serve.rss_kib()?;
    // Where it is: the binary's and libraries' pages (file) against the heap and stacks (anon).
    let rollup = std::fs::read_to_string(format!("/proc/{}/smaps_rollup", serve.child.id()))
        .unwrap_or_default();
    let field = |name: &str| {
        rollup
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0)
    };
    println!(
        "    of which file-backed (the binary, libraries) {:.1} MiB, anonymous (heap, stacks, SQLite cache) {:.1} MiB",
        (field("Rss:") - field("Anonymous:")) as f64 / 1024.0,
        field("Anonymous:") as f64 / 1024.0
    );
    Ok(rss)
}

/// `bellhop serve` with 10,000 events: its RSS (KiB) before and after three `GET /api/v1/events`.
fn event_list_memory() -> Result<(u64, u64, usize), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    common::write(
        &dir.path().join("profiles/sensor.toml"),
        "version = 1\nlisten = \"/sensor\"\n",
    );
    common::write(
        &dir.path().join("profiles/caller.toml"),
        "version = 1\n[request]\nurl = \"http://127.0.0.1:9/hit\"\n",
    );
    for n in 0..10_000 {
        common::write(
            &dir.path().join(format!("events/e{n:05}.toml")),
            &format!("[[trigger]]\ninput = \"sensor\"\nexpression = 'input == \"{n}\"'\n[[action]]\nrun = \"caller\"\ntext = 'event {n}'\n"),
        );
    }
    let mut serve = Serve::start(dir.path())?;
    let address = serve.address()?;
    std::thread::sleep(Duration::from_secs(2));
    let before = serve.rss_kib()?;
    let client = reqwest::blocking::Client::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let answer = client
            .get(format!("http://{address}/api/v1/events"))
            .send()
            .and_then(|r| r.error_for_status())
            .and_then(|r| r.bytes())
            .map_err(|e| e.to_string())?;
        bytes = answer.len();
    }
    std::thread::sleep(Duration::from_millis(500));
    Ok((before, serve.rss_kib()?, bytes))
}

/// The median and the spread (lowest, highest) of `values`.
fn median_and_spread(values: &[f64]) -> (f64, f64, f64) {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    (
        common::percentile(&sorted, 0.5),
        sorted.first().copied().unwrap_or(f64::NAN),
        sorted.last().copied().unwrap_or(f64::NAN),
    )
}

fn print_ratio(what: &str, per_round: &[f64], goal: &str) {
    let (median, low, high) = median_and_spread(per_round);
    let rounds: Vec<String> = per_round.iter().map(|r| format!("{r:.2}")).collect();
    println!(
        "  {what:<44} median {median:.2}x  (rounds {}; spread {low:.2}–{high:.2})  goal {goal}",
        rounds.join(" ")
    );
}

const BELLHOP_THREADS: [&str; 2] = ["bellhop-side", "bellhop-store"];
const BARE_THREADS: [&str; 1] = ["bare-side"];

fn main() {
    // Under `cargo test` (no `--bench`), check that every side works with one short round.
    let measuring = common::measuring();
    let seconds = if measuring {
        env_number("BELLHOP_LOAD_SECS", 5) as f64
    } else {
        0.5
    };
    let rounds = if measuring {
        env_number("BELLHOP_LOAD_ROUNDS", 3) as usize
    } else {
        1
    };
    let concurrency = env_number("BELLHOP_LOAD_CONCURRENCY", 32) as usize;
    let parts = std::env::var("BELLHOP_LOAD_PARTS").unwrap_or_default();
    let part = |name: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == name);
    let upstream_runtime = runtime("upstream");
    let bare_runtime = runtime(BARE_THREADS[0]);
    let bellhop_runtime = runtime(BELLHOP_THREADS[0]);
    let generator = runtime("load-generator");
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let upstream = upstream_runtime.block_on(upstream());
    let bare = bare_runtime.block_on(bare_program(upstream));
    let ours = bellhop_runtime.block_on(bellhop_server(upstream, dir.path()));

    // `BELLHOP_LOAD_JOBS=email,twenty,one-mb` picks jobs (default: all).
    let wanted = std::env::var("BELLHOP_LOAD_JOBS").unwrap_or_default();
    let jobs: Vec<(&str, &'static str)> = [
        ("email", r#"{"profile":"email","text":""}"#),
        ("twenty", r#"{"profile":"twenty","text":""}"#),
        ("one-mb", r#"{"profile":"one-mb","text":""}"#),
    ]
    .into_iter()
    .filter(|(job, _)| {
        part("actions") && (wanted.is_empty() || wanted.split(',').any(|w| w.trim() == *job))
    })
    .collect();
    let ours_url = format!("http://{ours}/api/v1/actions/run");
    let run = |job: &str, body: &'static str, side_is_bare: bool, secs: f64| {
        if side_is_bare {
            measure(
                &generator,
                &format!("http://{bare}/{job}"),
                "",
                concurrency,
                secs,
                &BARE_THREADS,
            )
        } else {
            measure(
                &generator,
                &ours_url,
                body,
                concurrency,
                secs,
                &BELLHOP_THREADS,
            )
        }
    };
    // Warm every path up.
    for &(job, body) in &jobs {
        for bare_side in [true, false] {
            let m = run(job, body, bare_side, seconds.min(1.0));
            let side = if bare_side {
                "the bare program"
            } else {
                "bellhop"
            };
            assert!(
                m.per_second > 0.0 && m.failures == 0,
                "{job}: {side} does not work ({} failures)",
                m.failures
            );
        }
    }
    // (job → per round: (bare, bellhop))
    let mut results: HashMap<&str, Vec<(Measurement, Measurement)>> = HashMap::new();
    for round in 0..rounds {
        for &(job, body) in &jobs {
            // The order flips every round, so drift hits both sides alike.
            let (bare, bellhop) = if round % 2 == 0 {
                let b = run(job, body, true, seconds);
                (b, run(job, body, false, seconds))
            } else {
                let o = run(job, body, false, seconds);
                (run(job, body, true, seconds), o)
            };
            results.entry(job).or_default().push((bare, bellhop));
        }
    }
    println!(
        "Actions through an HTTP trigger, {concurrency} in flight, {seconds} s per measurement, {rounds} rounds (ratios bellhop/bare):"
    );
    for &(job, _) in &jobs {
        let Some(rounds) = results.get(job) else {
            continue;
        };
        for (i, (b, o)) in rounds.iter().enumerate() {
            println!(
                "  {job:<7} round {}: bare {:>7.0}/s median {:>6.0} µs {:>7.0}/CPU-s ({} failed) | bellhop {:>7.0}/s median {:>6.0} µs {:>7.0}/CPU-s ({} failed)",
                i + 1, b.per_second, b.median_us, b.per_cpu_second, b.failures,
                o.per_second, o.median_us, o.per_cpu_second, o.failures
            );
        }
    }
    let ratios = |job: &str, f: fn(&Measurement) -> f64| -> Vec<f64> {
        results
            .get(job)
            .map(|r| r.iter().map(|(b, o)| f(o) / f(b)).collect())
            .unwrap_or_default()
    };
    println!("Ratios:");
    // (job, what, the measure, the goal)
    type Measure = fn(&Measurement) -> f64;
    let table: [(&str, &str, Measure, &str); 7] = [
        (
            "email",
            "actions/s, 1 KB, one field",
            |m| m.per_second,
            "≥ 0.90x",
        ),
        (
            "email",
            "median latency, 1 KB, one field",
            |m| m.median_us,
            "≤ 1.10x",
        ),
        (
            "email",
            "actions per CPU-second, 1 KB, one field",
            |m| m.per_cpu_second,
            "≥ 0.90x",
        ),
        (
            "twenty",
            "actions/s, 20 devices from 1 KB",
            |m| m.per_second,
            "≥ 0.75x",
        ),
        (
            "twenty",
            "actions per CPU-second, 20 devices",
            |m| m.per_cpu_second,
            "",
        ),
        (
            "one-mb",
            "actions/s, 1 MB answer, one field",
            |m| m.per_second,
            "≥ 0.95x",
        ),
        (
            "one-mb",
            "actions per CPU-second, 1 MB",
            |m| m.per_cpu_second,
            "",
        ),
    ];
    for (job, what, measure, goal) in table {
        if results.contains_key(job) {
            print_ratio(what, &ratios(job, measure), goal);
        }
    }

    let samples = if measuring { 2000 } else { 20 };
    let mut trigger = Vec::new();
    for _ in 0..if part("trigger") { rounds } else { 0 } {
        let (mut direct, mut triggered) =
            bellhop_runtime.block_on(common::trigger_to_action(samples));
        direct.sort_by(f64::total_cmp);
        triggered.sort_by(f64::total_cmp);
        let (direct, triggered) = (
            common::percentile(&direct, 0.5),
            common::percentile(&triggered, 0.5),
        );
        println!(
            "  trigger round {}: API action median {direct:.0} µs | listening hit → event → action median {triggered:.0} µs",
            trigger.len() + 1
        );
        trigger.push(triggered / direct);
    }
    if !trigger.is_empty() {
        print_ratio(
            "listening hit → event → action / API action",
            &trigger,
            "≤ 1.10x (median latency)",
        );
    }
    if !measuring {
        println!("load tool check: every side answers; run `cargo bench --bench load` to measure");
        return;
    }
    if !part("memory") {
        return;
    }
    match idle_memory() {
        Ok(kib) => println!(
            "  idle `bellhop serve`, 100 profiles + 10,000 devices: {:.1} MiB RSS  goal ≤ 24 MiB",
            kib as f64 / 1024.0
        ),
        Err(why) => println!("  idle memory could not be measured: {why}"),
    }
    match event_list_memory() {
        Ok((before, after, bytes)) => println!(
            "  GET /api/v1/events ×3 with 10,000 events: {:.1} → {:.1} MiB RSS (+{:.1} MiB; {} KB per answer)  goal ≤ +5 MiB",
            before as f64 / 1024.0,
            after as f64 / 1024.0,
            after.saturating_sub(before) as f64 / 1024.0,
            bytes / 1024
        ),
        Err(why) => println!("  event list memory could not be measured: {why}"),
    }
}
