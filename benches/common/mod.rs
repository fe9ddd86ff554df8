//! Shared by the benchmarks: test bodies and reading criterion's estimates back to print ratios
//! against a baseline measured in the same run.

#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bellhop::devices::DeviceHub;
use bellhop::engine::{Engine, ProfileSource};
use warp::Filter;

/// Where criterion writes its estimates (set explicitly so the ratios can read them back).
pub fn criterion_dir() -> PathBuf {
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"));
    target.join("criterion")
}

/// Criterion writing to [`criterion_dir`], configured from the command line.
pub fn criterion() -> criterion::Criterion {
    criterion::Criterion::default()
        .output_directory(&criterion_dir())
        .configure_from_args()
}

/// Runs `benches` with [`criterion`], then, in a measuring run only, `report` (the ratios).
pub fn main_with(benches: fn(&mut criterion::Criterion), report: fn()) {
    let mut criterion = criterion();
    benches(&mut criterion);
    criterion.final_summary();
    // Under `cargo test` each benchmark runs once as a check; there are no estimates to compare.
    if measuring() {
        report();
    }
}

/// Whether this is a measuring run (`cargo bench`), not a `cargo test` check of the benches.
pub fn measuring() -> bool {
    std::env::args().any(|arg| arg == "--bench")
}

/// The mean time (ns) criterion estimated for `group/function/parameter` in this run.
pub fn mean_ns(group: &str, function: &str, parameter: &str) -> Option<f64> {
    let mut path = criterion_dir().join(group).join(function);
    if !parameter.is_empty() {
        path = path.join(parameter);
    }
    let path = path.join("new").join("estimates.json");
    let text = std::fs::read_to_string(path).ok()?;
    let value: serde_json::Value = serde_json::from_str(&text).ok()?;
    value["mean"]["point_estimate"].as_f64()
}

/// A JSON body of about `size` bytes: a user object with twenty interesting fields and filler.
pub fn body(size: usize) -> String {
    let mut doc = serde_json::json!({
        "id": "80351110224678912",
        "username": "ann",
        "email": "ann@example.com",
        "verified": true,
        "locale": "en-GB",
        "user": {"name": "Ann", "age": 41, "address": {"city": "Leeds", "zip": "LS1"}},
        "stats": {"a": 1, "b": 2.5, "c": "three", "d": [1, 2, 3]},
        "flags": {"mfa": true, "premium": false},
        "rooms": [{"name": "Kitchen", "temp": 21.5}, {"name": "Hall", "temp": 19}],
        "items": []
    });
    let mut n = 0;
    while doc.to_string().len() < size {
        let chunk: Vec<serde_json::Value> = (0..64)
            .map(|i| serde_json::json!({"n": n * 64 + i, "label": format!("item number {}", n * 64 + i), "tags": ["x", "y", "z"], "value": (i as f64) * 1.25}))
            .collect();
        if let Some(items) = doc["items"].as_array_mut() {
            items.extend(chunk);
        }
        n += 1;
        if size < 4096 {
            break;
        }
    }
    if size < 4096 {
        // Trim to about 1 KB with a filler string instead of items.
        doc["items"] =
            serde_json::json!([{"n": 0, "label": "item number 0", "tags": ["x"], "value": 0.0}]);
        let current = doc.to_string().len();
        doc["filler"] = serde_json::Value::String("x".repeat(size.saturating_sub(current + 12)));
    }
    doc.to_string()
}

/// The twenty paths of the "20-path profile".
pub const TWENTY_PATHS: [&str; 20] = [
    "id",
    "username",
    "email",
    "verified",
    "locale",
    "user.name",
    "user.age",
    "user.address.city",
    "user.address.zip",
    "stats.a",
    "stats.b",
    "stats.c",
    "stats.d[1]",
    "flags.mfa",
    "flags.premium",
    "rooms[0].name",
    "rooms[0].temp",
    "rooms[1].name",
    "rooms[1].temp",
    "items[0].label",
];

/// The resident memory of a process, in KiB (Linux).
pub fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// A loopback port free just now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"))
}

/// The value at `fraction` (0.5: the median) of sorted samples.
pub fn percentile(sorted: &[f64], fraction: f64) -> f64 {
    let at = ((sorted.len() as f64 - 1.0) * fraction).round() as usize;
    sorted.get(at).copied().unwrap_or(f64::NAN)
}

/// A typed parse that keeps exactly the twenty fields of the 20-path profile.
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct Twenty<'a> {
    #[serde(borrow)]
    pub id: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub username: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub email: std::borrow::Cow<'a, str>,
    pub verified: bool,
    #[serde(borrow)]
    pub locale: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub user: TwentyUser<'a>,
    #[serde(borrow)]
    pub stats: TwentyStats<'a>,
    pub flags: TwentyFlags,
    #[serde(borrow)]
    pub rooms: Vec<TwentyRoom<'a>>,
    #[serde(borrow)]
    pub items: Vec<TwentyItem<'a>>,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyUser<'a> {
    #[serde(borrow)]
    pub name: std::borrow::Cow<'a, str>,
    pub age: f64,
    #[serde(borrow)]
    pub address: TwentyAddress<'a>,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyAddress<'a> {
    #[serde(borrow)]
    pub city: std::borrow::Cow<'a, str>,
    #[serde(borrow)]
    pub zip: std::borrow::Cow<'a, str>,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyStats<'a> {
    pub a: f64,
    pub b: f64,
    #[serde(borrow)]
    pub c: std::borrow::Cow<'a, str>,
    pub d: Vec<f64>,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyFlags {
    pub mfa: bool,
    pub premium: bool,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyRoom<'a> {
    #[serde(borrow)]
    pub name: std::borrow::Cow<'a, str>,
    pub temp: f64,
}
#[derive(serde::Deserialize)]
#[allow(dead_code)]
pub struct TwentyItem<'a> {
    #[serde(borrow)]
    pub label: std::borrow::Cow<'a, str>,
}

pub fn write(path: &Path, text: &str) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::write(path, text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
}

pub fn engine_over(dir: &Path) -> Arc<Engine> {
    let events_dir = dir.join("events");
    let source = ProfileSource::new(dir.join("profiles"), None).with_events_dir(events_dir.clone());
    let profiles = source.load();
    assert!(!profiles.has_errors(), "{:?}", profiles.diagnostics);
    let events = bellhop::event::load_dir(&events_dir, &profiles);
    assert!(!events.has_errors(), "{:?}", events.diagnostics);
    let hub = DeviceHub::open(&dir.join("data/bellhop.sqlite"), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    Arc::new(
        Engine::new(profiles, Some(source), Arc::new(hub))
            .unwrap_or_else(|e| panic!("{e}"))
            .with_events(events, bellhop::event::Zone::Local),
    )
}

/// A stub API that reports when each call arrives (by the last path segment).
async fn stub() -> (
    SocketAddr,
    tokio::sync::mpsc::UnboundedReceiver<(String, Instant)>,
) {
    let (arrived, arrivals) = tokio::sync::mpsc::unbounded_channel();
    let route = warp::path!("hit" / String).map(move |seq: String| {
        let _ = arrived.send((seq, Instant::now()));
        "{\"ok\":true}"
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(warp::serve(route).incoming(listener).run());
    (address, arrivals)
}

/// A listening hit that fires an event whose action calls a local stub, against the same action
/// through `POST /api/v1/actions/run`, alternating, `samples` each after a tenth more to warm up:
/// from sending the request to the stub receiving the call, in µs (direct, triggered).
pub async fn trigger_to_action(samples: usize) -> (Vec<f64>, Vec<f64>) {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    {
        let (stub, mut arrivals) = stub().await;
        write(
            &dir.path().join("profiles/caller.toml"),
            &format!("version = 1\n[request]\nurl = \"http://{stub}/hit/${{input}}\"\n"),
        );
        write(
            &dir.path().join("profiles/sensor.toml"),
            "version = 1\nlisten = \"/sensor\"\n[incoming]\nmax_per_second = 10000\n",
        );
        write(
            &dir.path().join("events/relay.toml"),
            "retrigger = \"parallel\"\nmax_per_second = 10000\n[[trigger]]\ninput = \"sensor\"\nexpression = 'Length(input) > 0'\n[[action]]\nrun = \"caller\"\ntext = '${input}'\n",
        );
        let engine = engine_over(dir.path());
        engine.start_automation();
        let (address, _server) = bellhop::web::serve(
            bellhop::web::AppState::new(engine.clone()),
            SocketAddr::from(([127, 0, 0, 1], 0)),
            256,
            std::future::pending(),
        )
        .await
        .unwrap_or_else(|e| panic!("{e}"));
        let client = reqwest::Client::new();
        let direct_url = format!("http://{address}/api/v1/actions/run");
        let trigger_url = format!("http://{address}/in/sensor");
        let mut wait_for = async |seq: &str| -> Instant {
            loop {
                match tokio::time::timeout(Duration::from_secs(10), arrivals.recv()).await {
                    Ok(Some((arrived, at))) if arrived == seq => return at,
                    Ok(Some(_)) => continue,
                    other => panic!("call {seq} never reached the stub: {other:?}"),
                }
            }
        };
        let (mut direct, mut triggered) = (Vec::new(), Vec::new());
        for i in 0..samples + samples / 10 {
            let seq = format!("d{i}");
            let sent = Instant::now();
            let response = client
                .post(&direct_url)
                .json(&serde_json::json!({"profile": "caller", "text": seq}))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let arrived = wait_for(&seq).await;
            let _ = response.bytes().await;
            let seq = format!("t{i}");
            let sent_trigger = Instant::now();
            let response = client
                .get(format!("{trigger_url}?{seq}"))
                .send()
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(response.status().is_success(), "{}", response.status());
            let arrived_trigger = wait_for(&seq).await;
            let _ = response.bytes().await;
            // The first tenth warms both paths up.
            if i >= samples / 10 {
                direct.push((arrived - sent).as_secs_f64() * 1e6);
                triggered.push((arrived_trigger - sent_trigger).as_secs_f64() * 1e6);
            }
        }
        (direct, triggered)
    }
}

/// The CPU time (user + system) of this process's threads with one of these names, in clock ticks.
pub fn cpu_ticks(names: &[&str]) -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    let mut ticks = 0;
    for task in tasks.flatten() {
        let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
            continue;
        };
        let (Some(open), Some(close)) = (stat.find('('), stat.rfind(')')) else {
            continue;
        };
        if !names.contains(&&stat[open + 1..close]) {
            continue;
        }
        // After the name: state (field 3), …, utime (14), stime (15).
        let fields: Vec<&str> = stat[close + 1..].split_whitespace().collect();
        let field = |i: usize| fields.get(i).and_then(|f| f.parse::<u64>().ok());
        ticks += field(11).unwrap_or(0) + field(12).unwrap_or(0);
    }
    ticks
}

/// Clock ticks per second of `/proc/*/stat` times (Linux's `USER_HZ`, 100 on every
/// architecture it supports for user space).
pub const TICKS_PER_SECOND: f64 = 100.0;
