//! Automation benchmarks, each a ratio against a baseline measured in the same run:
//!
//! 1. Dispatch: what matching one incoming input, device change or global change costs with
//!    1,000 events loaded, against 10 (target at most 2×: triggers are indexed).
//! 2. Trigger to action: a listening-profile hit that fires an event whose action calls a local
//!    stub, against the same action through `POST /api/v1/actions/run` — from sending the
//!    request to the stub receiving the call, median and p99 (target within 1.1×).
//! 3. 10,000 events on 1-second schedules in a real `bellhop serve`: its RSS (target under
//!    50 MB) and how late the schedules fire, p99 (target at most 100 ms).
//!
//! `cargo bench --bench events`. Under `cargo test` every part runs once, small, as a check.
//! All traffic stays on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bellhop::engine::bus::HubEvent;
use bellhop::engine::listening::IncomingCall;
use bellhop::engine::Engine;

/// `events` sensors, each a listening profile with an event waiting for its input, its device
/// and a global of its own.
fn dispatch_setup(dir: &Path, events: usize) -> Arc<Engine> {
    for i in 0..events {
        common::write(
            &dir.join(format!("profiles/s{i}.toml")),
            &format!("version = 1\nlisten = \"/s{i}\"\n[devices]\nroot_names = '\"t\"'\nvalues = 'Numbers(input)[0]'\n"),
        );
        common::write(
            &dir.join(format!("events/e{i}.toml")),
            &format!(
                "[[trigger]]\ninput = \"s{i}\"\ntext = \"hot\"\nposition = 0\n\
                 [[trigger]]\nprofile = \"s{i}\"\nroot = \"t\"\ncompare = \">\"\nto = 25\n\
                 [[trigger]]\nglobal = \"g{i}\"\n\
                 [[action]]\nset_global = \"seen{i}\"\nvalue = '1'\n"
            ),
        );
    }
    common::engine_over(dir)
}

/// Nanoseconds per `work`, the best of 5 samples of `iterations` each.
fn time_ns(iterations: u32, mut work: impl FnMut()) -> f64 {
    (0..5)
        .map(|_| {
            let started = Instant::now();
            for _ in 0..iterations {
                work();
            }
            started.elapsed().as_nanos() as f64 / f64::from(iterations)
        })
        .fold(f64::INFINITY, f64::min)
}

/// The three kinds of hub event an event can wait for, as sensor 0 causes them.
fn incoming(
    runtime: &tokio::runtime::Runtime,
    engine: &Arc<Engine>,
) -> [(&'static str, HubEvent); 3] {
    let profile = engine
        .listener("/s0")
        .unwrap_or_else(|| panic!("s0 is not listening"));
    let call = IncomingCall {
        method: bellhop::profile::Method::Post,
        token: None,
        input: "hot 30".into(),
        headers: Default::default(),
    };
    let received = runtime
        .block_on(engine.receive(profile, call))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(received.record.ok, "{:?}", received.record.errors);
    let change = received.record.changes[0].clone();
    let global = engine
        .set_global("g0", Some(1.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    [
        (
            "input",
            HubEvent::RunFinished {
                run: received.record,
            },
        ),
        (
            "device change",
            HubEvent::DeviceChanged {
                change: Arc::new(change),
            },
        ),
        (
            "global change",
            HubEvent::GlobalChanged {
                global: Arc::new(global),
            },
        ),
    ]
}

fn dispatch(runtime: &tokio::runtime::Runtime) {
    let iterations = if common::measuring() { 20_000 } else { 10 };
    let mut costs: HashMap<(&str, usize), f64> = HashMap::new();
    for events in [10, 1000] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let engine = dispatch_setup(dir.path(), events);
        for (kind, happened) in incoming(runtime, &engine) {
            let fired = engine.match_triggers(&happened);
            // Exactly sensor 0's event, and only for what it waits for.
            if kind != "device change" {
                assert!(
                    fired.len() == 1 && &*fired[0].event == "e0",
                    "{kind} with {events} events fired {fired:?}"
                );
            }
            let cost = time_ns(iterations, || {
                std::hint::black_box(engine.match_triggers(std::hint::black_box(&happened)));
            });
            costs.insert((kind, events), cost);
        }
    }
    if !common::measuring() {
        println!("events bench check: dispatch matches only the event waiting for it");
        return;
    }
    println!("Dispatch: matching one incoming hub event against the loaded events' triggers:");
    for kind in ["input", "device change", "global change"] {
        let (few, many) = (costs[&(kind, 10)], costs[&(kind, 1000)]);
        println!(
            "  {kind:<14} 10 events {few:>8.0} ns | 1,000 events {many:>8.0} ns | ratio {:.2}x (target at most 2x)",
            many / few
        );
    }
}

fn trigger_to_action(runtime: &tokio::runtime::Runtime) {
    let samples = if common::measuring() { 3000 } else { 20 };
    let (mut direct, mut triggered) = runtime.block_on(common::trigger_to_action(samples));
    if !common::measuring() {
        println!("events bench check: a listening hit fires the event that calls the stub");
        return;
    }
    direct.sort_by(f64::total_cmp);
    triggered.sort_by(f64::total_cmp);
    let (dm, d99) = (
        common::percentile(&direct, 0.5),
        common::percentile(&direct, 0.99),
    );
    let (tm, t99) = (
        common::percentile(&triggered, 0.5),
        common::percentile(&triggered, 0.99),
    );
    println!(
        "Trigger to action, request sent → the stub called, {samples} samples each, alternating:"
    );
    println!("  POST /api/v1/actions/run          median {dm:>7.0} µs | p99 {d99:>7.0} µs");
    println!("  listening hit → event → action   median {tm:>7.0} µs | p99 {t99:>7.0} µs");
    println!(
        "  ratio: median {:.2}x, p99 {:.2}x (target within 1.1x)",
        tm / dm,
        t99 / d99
    );
}

/// The late_ms of every event's last run, from the API.
fn lateness(client: &reqwest::blocking::Client, base: &str) -> Vec<f64> {
    let list: serde_json::Value = client
        .get(format!("{base}/api/v1/events"))
        .send()
        .and_then(|r| r.json())
        .unwrap_or_else(|e| panic!("{e}"));
    list["events"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|e| e["last_run"]["late_ms"].as_f64())
        .collect()
}

fn schedules() -> Result<(), String> {
    let (events, settle) = if common::measuring() {
        (10_000, Duration::from_secs(10))
    } else {
        (100, Duration::from_secs(3))
    };
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    std::fs::create_dir_all(dir.path().join("profiles")).map_err(|e| e.to_string())?;
    for i in 0..events {
        common::write(
            &dir.path().join(format!("events/tick{i}.toml")),
            &format!("[[trigger]]\nevery = \"1s\"\n[[action]]\nset_global = \"tick{i}\"\nvalue = 'Now()'\n"),
        );
    }
    let port = common::free_port();
    let config = dir.path().join("plugin.toml");
    common::write(
        &config,
        &format!(
            "[web]\nlisten = \"127.0.0.1:{port}\"\npublic_base_url = \"http://127.0.0.1:{port}\"\n[paths]\ndata_dir = \"{data}\"\nprofiles_dir = \"{data}/../profiles\"\nevents_dir = \"{data}/../events\"\n[oauth]\nkey_file = \"{data}/../token.key\"\n",
            data = dir.path().join("data").display(),
        ),
    );
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_bellhop"))
        .arg("--config")
        .arg(&config)
        .arg("serve")
        .stdout(std::process::Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("serve.log")).map_err(|e| e.to_string())?)
        .spawn()
        .map_err(|e| e.to_string())?;
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .map_err(|e| e.to_string())?;
    let started = Instant::now();
    while client.get(format!("{base}/api/v1/health")).send().is_err() {
        if started.elapsed() > Duration::from_secs(60) || child.try_wait().ok().flatten().is_some()
        {
            let _ = child.kill();
            return Err(format!(
                "bellhop serve did not come up: {}",
                std::fs::read_to_string(dir.path().join("serve.log")).unwrap_or_default()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(settle);
    let rss = common::rss_kib(child.id());
    let mut late = Vec::new();
    for _ in 0..3 {
        late.extend(lateness(&client, &base));
        std::thread::sleep(Duration::from_millis(1500));
    }
    let rss_after = common::rss_kib(child.id());
    let _ = child.kill();
    let _ = child.wait();
    late.sort_by(f64::total_cmp);
    if late.len() < events {
        return Err(format!("only {} of {events} schedules fired", late.len()));
    }
    if !common::measuring() {
        println!("events bench check: {events} one-second schedules fire in a real serve");
        return Ok(());
    }
    let mib = |kib: Option<u64>| kib.map_or(f64::NAN, |k| k as f64 / 1024.0);
    println!(
        "{events} events on 1-second schedules in `bellhop serve`, after {} s:",
        settle.as_secs()
    );
    println!(
        "  RSS {:.1} MiB (target under 50 MB = 47.7 MiB); {:.1} MiB after serving three 10,000-event listings",
        mib(rss),
        mib(rss_after)
    );
    println!(
        "  lateness of {} firings: median {:.0} ms, p99 {:.0} ms, max {:.0} ms (target p99 at most 100 ms)",
        late.len(),
        common::percentile(&late, 0.5),
        common::percentile(&late, 0.99),
        late.last().copied().unwrap_or(f64::NAN)
    );
    Ok(())
}

fn main() {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    // `BELLHOP_EVENTS_BENCH=dispatch,trigger,schedules` picks parts (default: all).
    let parts = std::env::var("BELLHOP_EVENTS_BENCH").unwrap_or_default();
    let wanted = |part: &str| parts.is_empty() || parts.split(',').any(|p| p.trim() == part);
    if wanted("dispatch") {
        dispatch(&runtime);
    }
    if wanted("trigger") {
        trigger_to_action(&runtime);
    }
    if wanted("schedules") {
        if let Err(why) = schedules() {
            panic!("schedules: {why}");
        }
    }
}
