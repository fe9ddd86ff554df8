//! Load tool: actions triggered through `POST /api/v1/actions/run` against a local upstream,
//! compared in the same run with a bare Rust baseline doing the same job behind the same kind
//! of HTTP trigger (reqwest GET with a bearer header, typed serde parse of one field, store it).
//! Then the idle memory of `bellhop serve` with 100 profiles and 10,000 devices.
//!
//! `BELLHOP_LOAD_SECS` sets the seconds per measurement (default 5); `BELLHOP_LOAD_CONCURRENCY`
//! the requests in flight (default 32). All traffic stays on 127.0.0.1.

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

const USER_JSON: &str = r#"{"id":"80351110224678912","username":"ann","email":"ann@example.com","verified":true,"locale":"en-GB"}"#;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
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

async fn upstream() -> SocketAddr {
    bind(
        warp::path("user")
            .and(warp::header::<String>("authorization"))
            .map(|_auth: String| {
                warp::reply::with_header(USER_JSON, "content-type", "application/json")
            }),
    )
    .await
}

#[derive(serde::Deserialize)]
struct EmailOnly {
    email: String,
}

/// The bare program: an HTTP trigger that does GET + parse + store.
async fn baseline(upstream: SocketAddr) -> SocketAddr {
    let client = reqwest::Client::new();
    let store: Arc<Mutex<HashMap<String, String>>> = Arc::default();
    let url = format!("http://{upstream}/user");
    bind(warp::path("run").and(warp::post()).and_then(move || {
        let client = client.clone();
        let store = store.clone();
        let url = url.clone();
        async move {
            let result = async {
                let body = client
                    .get(&url)
                    .bearer_auth("tok")
                    .send()
                    .await?
                    .bytes()
                    .await?;
                Ok::<_, reqwest::Error>(body)
            }
            .await;
            let reply = match result
                .ok()
                .and_then(|b| serde_json::from_slice::<EmailOnly>(&b).ok())
            {
                Some(parsed) => {
                    if let Ok(mut store) = store.lock() {
                        store.insert("email".into(), parsed.email);
                    }
                    warp::reply::with_status("{\"ok\":true}", warp::http::StatusCode::OK)
                }
                None => {
                    warp::reply::with_status("{\"ok\":false}", warp::http::StatusCode::BAD_GATEWAY)
                }
            };
            Ok::<_, std::convert::Infallible>(reply)
        }
    }))
    .await
}

async fn bellhop_server(upstream: SocketAddr, dir: &std::path::Path) -> SocketAddr {
    let profiles = dir.join("profiles");
    std::fs::create_dir_all(&profiles).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        profiles.join("discord.toml"),
        format!(
            "version = 1\n[request]\nurl = \"http://{upstream}/user\"\n[auth]\nmode = \"bearer\"\ntoken = \"tok\"\n[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'\n"
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let set = bellhop::profile::load_dir(&profiles, &SecretSource::default());
    assert!(set.diagnostics.is_empty(), "{:?}", set.diagnostics);
    let hub = DeviceHub::open(&dir.join("data/bellhop.sqlite"), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = Engine::new(set, None, Arc::new(hub)).unwrap_or_else(|e| panic!("{e}"));
    let state = bellhop::web::AppState::new(Arc::new(engine));
    // Bellhop's own server loop (edge checks, bounded connections), as `serve` runs it.
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
}

async fn measure(url: String, body: &'static str, concurrency: usize, seconds: u64) -> Measurement {
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
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies = Vec::new();
    let mut failures = 0;
    for task in tasks {
        if let Ok((l, f)) = task.await {
            latencies.extend(l);
            failures += f;
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let median_us = latencies.get(latencies.len() / 2).copied().unwrap_or(0) as f64;
    Measurement {
        per_second: latencies.len() as f64 / elapsed,
        median_us,
        failures,
    }
}

/// Starts the real `bellhop serve` with 100 profiles and 10,000 devices and reads its idle RSS.
fn idle_memory() -> Result<u64, String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let profiles = dir.path().join("profiles");
    std::fs::create_dir_all(&profiles).map_err(|e| e.to_string())?;
    for n in 0..100 {
        std::fs::write(
            profiles.join(format!("p{n}.toml")),
            format!("version = 1\n[request]\nurl = \"http://127.0.0.1:9/item/{n}?q=${{input}}\"\n[devices]\nroot_names = 'JSON(input, \"rooms[*].name\")'\nfeature_names = '\"temp\" && \"light\"'\nvalues = 'JSON(input, \"rooms[*].temp\")[index] && JSON(input, \"rooms[*].light\")[index]'\n"),
        )
        .map_err(|e| e.to_string())?;
    }
    let store = dir.path().join("data/bellhop.sqlite");
    {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| e.to_string())?;
        let hub = DeviceHub::open(&store, Duration::from_millis(50)).map_err(|e| e.to_string())?;
        let updates: Vec<DeviceUpdate> = (0..10_000)
            .map(|n| DeviceUpdate {
                key: DeviceKey::feature(
                    &format!("p{}", n % 100),
                    &format!("room {}", n / 100),
                    "temp",
                ),
                value: Some(n as f64),
                string: Some(format!("{n} °C")),
            })
            .collect();
        runtime
            .block_on(hub.apply(&updates, Creation::Allowed))
            .map_err(|e| e.to_string())?;
        runtime.block_on(hub.flush()).map_err(|e| e.to_string())?;
    }
    let config = dir.path().join("plugin.toml");
    std::fs::write(
        &config,
        format!(
            "[web]\nlisten = \"127.0.0.1:0\"\n[paths]\ndata_dir = \"{}\"\nprofiles_dir = \"{}\"\n[oauth]\nkey_file = \"{}\"\n",
            dir.path().join("data").display(),
            profiles.display(),
            dir.path().join("token.key").display()
        ),
    )
    .map_err(|e| e.to_string())?;
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bellhop"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    std::thread::sleep(Duration::from_secs(3));
    let rss = common::rss_kib(child.id());
    let exited = child.try_wait().ok().flatten();
    let _ = child.kill();
    let _ = child.wait();
    match (rss, exited) {
        (_, Some(status)) => Err(format!(
            "bellhop serve exited early ({status}): {}",
            std::fs::read_to_string(dir.path().join("serve.log"))
                .unwrap_or_default()
                .trim()
        )),
        (Some(kib), None) => Ok(kib),
        (None, None) => Err("no VmRSS in /proc".into()),
    }
}

fn main() {
    // Under `cargo test` (no `--bench`), check that both sides work with one short round.
    let measuring = common::measuring();
    let seconds = if measuring {
        env_number("BELLHOP_LOAD_SECS", 5)
    } else {
        1
    };
    let concurrency = env_number("BELLHOP_LOAD_CONCURRENCY", 32) as usize;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    runtime.block_on(async {
        let upstream = upstream().await;
        let bare = baseline(upstream).await;
        let ours = bellhop_server(upstream, dir.path()).await;
        let bare_url = format!("http://{bare}/run");
        let ours_url = format!("http://{ours}/api/v1/actions/run");
        let action = r#"{"profile":"discord","text":""}"#;
        if !measuring {
            let b = measure(bare_url.clone(), "", 4, 1).await;
            let o = measure(ours_url.clone(), action, 4, 1).await;
            assert!(b.per_second > 0.0 && b.failures == 0, "the baseline does not work");
            assert!(o.per_second > 0.0 && o.failures == 0, "bellhop's action endpoint does not work");
            println!("load tool check: both sides answer ({:.0}/s and {:.0}/s); run `cargo bench --bench load` to measure", b.per_second, o.per_second);
            return;
        }
        // Warm both up, then alternate rounds so that noise hits both alike.
        measure(bare_url.clone(), "", concurrency, 1).await;
        measure(ours_url.clone(), action, concurrency, 1).await;
        let mut rounds = Vec::new();
        for _ in 0..2 {
            let b = measure(bare_url.clone(), "", concurrency, seconds).await;
            let o = measure(ours_url.clone(), action, concurrency, seconds).await;
            rounds.push((b, o));
        }
        println!("Actions through an HTTP trigger, {concurrency} in flight, {seconds} s per measurement, 2 rounds:");
        for (round, (b, o)) in rounds.iter().enumerate() {
            println!(
                "  round {}: bare {:>8.0}/s median {:>6.0} µs ({} failed) | bellhop {:>8.0}/s median {:>6.0} µs ({} failed)",
                round + 1, b.per_second, b.median_us, b.failures, o.per_second, o.median_us, o.failures
            );
        }
        let sum = |f: &dyn Fn(&(Measurement, Measurement)) -> f64| rounds.iter().map(f).sum::<f64>();
        let throughput_ratio = sum(&|(_, o)| o.per_second) / sum(&|(b, _)| b.per_second);
        let latency_ratio = sum(&|(_, o)| o.median_us) / sum(&|(b, _)| b.median_us);
        println!("  throughput ratio bellhop/bare: {throughput_ratio:.2}x (target at least 0.7x)");
        println!("  median latency ratio bellhop/bare: {latency_ratio:.2}x (target at most 1.3x)");
    });
    if !measuring {
        return;
    }
    match idle_memory() {
        Ok(kib) => println!(
            "Idle `bellhop serve` with 100 profiles and 10,000 devices: {:.1} MiB RSS (target under 30 MiB)",
            kib as f64 / 1024.0
        ),
        Err(why) => println!("Idle memory: could not be measured: {why}"),
    }
}
