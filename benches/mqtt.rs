//! MQTT bridge benchmarks on a real mosquitto (started here on a free loopback port), each a
//! ratio against a baseline measured in the same run:
//!
//! 1. Device changes → broker: how many device changes a second reach the broker (their latest
//!    states, retained, seen by a subscriber) through the bridge, against a bare rumqttc loop
//!    publishing the same number of retained messages (target at least 20,000 changes/s).
//! 2. Command round trip: an MQTT command running a profile's action against a local HTTP stub
//!    until its answer arrives, against the same action through `POST /api/v1/actions/run`;
//!    median and p99.
//!
//! `cargo bench --bench mqtt`. Under `cargo test` it runs once, small, as a check. All traffic
//! stays on 127.0.0.1.

mod common;

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use bellhop::devices::{Creation, DeviceHub, DeviceKey, DeviceUpdate};
use bellhop::engine::{Engine, ProfileSource};
use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use warp::Filter;

/// A mosquitto of our own; stopped (and its folder removed) on drop.
struct Broker {
    child: std::process::Child,
    _dir: tempfile::TempDir,
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn broker(port: u16) -> Broker {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let config = dir.path().join("mosquitto.conf");
    std::fs::write(
        &config,
        format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\nmax_queued_messages 0\nset_tcp_nodelay true\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let child = std::process::Command::new("/usr/sbin/mosquitto")
        .arg("-c")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("mosquitto: {e} (run `bash .ci/run` to install it)"));
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        std::thread::sleep(Duration::from_millis(50));
    }
    Broker { child, _dir: dir }
}

/// A subscriber that keeps the last payload of each topic.
async fn subscriber(port: u16, filter: &str) -> Arc<Mutex<HashMap<String, Vec<u8>>>> {
    let mut options = MqttOptions::new(format!("sub-{}", common::free_port()), "127.0.0.1", port);
    options.set_max_packet_size(1 << 20, 1 << 20);
    let (client, mut eventloop) = AsyncClient::new(options, 1000);
    client
        .subscribe(filter, QoS::AtMostOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let seen: Arc<Mutex<HashMap<String, Vec<u8>>>> = Arc::default();
    let record = seen.clone();
    tokio::spawn(async move {
        let _client = client;
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(p)) = event {
                if let Ok(mut seen) = record.lock() {
                    seen.insert(p.topic.clone(), p.payload.to_vec());
                }
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(200)).await;
    seen
}

async fn until(mut done: impl FnMut() -> bool, what: &str) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done() {
        assert!(Instant::now() < deadline, "{what} never happened");
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}

const DEVICES: usize = 1000;

fn bridge_config(port: u16) -> bellhop::mqtt::BridgeConfig {
    bellhop::mqtt::BridgeConfig {
        host: "127.0.0.1".into(),
        port,
        username: None,
        password: None,
        client_id: "bench".into(),
        base_topic: "bench".into(),
        discovery_prefix: Some("homeassistant".into()),
        qos: 1,
        keepalive: Duration::from_secs(30),
        commands: true,
        allow: Vec::new(),
        tls: None,
        protocol: bellhop::mqtt::Protocol::V311,
    }
}

/// Changes/s through the bridge, and messages/s of the bare loop.
async fn throughput(port: u16, changes: usize) -> (f64, f64) {
    // Bare: one rumqttc client publishing `changes` retained messages over 1,000 topics.
    let seen = subscriber(port, "bare/#").await;
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("bare", "127.0.0.1", port), 4096);
    tokio::spawn(async move { while eventloop.poll().await.is_ok() {} });
    let started = Instant::now();
    for i in 0..changes {
        client
            .publish(
                format!("bare/d{}", i % DEVICES),
                QoS::AtLeastOnce,
                true,
                format!("{{\"value\":{i}}}"),
            )
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let last = changes - 1;
    until(
        || {
            seen.lock()
                .ok()
                .and_then(|s| s.get(&format!("bare/d{}", last % DEVICES)).cloned())
                .is_some_and(|p| p == format!("{{\"value\":{last}}}").into_bytes())
        },
        "the bare loop's last message",
    )
    .await;
    let bare = changes as f64 / started.elapsed().as_secs_f64();

    // Bellhop: 1,000 devices, each changed changes/1,000 times, through the bridge.
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hub = Arc::new(
        DeviceHub::open(&dir.path().join("hub.sqlite"), Duration::from_millis(50))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let updates: Vec<DeviceUpdate> = (0..DEVICES)
        .map(|n| DeviceUpdate {
            key: DeviceKey::root("bench", format!("d{n}")),
            value: Some(-1.0),
            string: None,
        })
        .collect();
    hub.apply(&updates, Creation::Allowed)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let engine =
        Arc::new(Engine::new(Default::default(), None, hub).unwrap_or_else(|e| panic!("{e}")));
    let seen = subscriber(port, "bench/bench/#").await;
    let _bridge =
        bellhop::mqtt::start(&engine, bridge_config(port)).unwrap_or_else(|e| panic!("{e}"));
    until(
        || seen.lock().map(|s| s.len() >= DEVICES).unwrap_or(false),
        "the bridge's first states",
    )
    .await;
    let devices = engine.devices();
    let rounds = changes / DEVICES;
    let started = Instant::now();
    for round in 0..rounds {
        for device in &devices {
            engine
                .set_device(device.reference, Some(round as f64), None)
                .await
                .unwrap_or_else(|e| panic!("{e}"));
        }
    }
    // Whole numbers are published as integers, `value` the state's last key.
    let final_value = format!("\"value\":{}}}", rounds - 1);
    until(
        || {
            seen.lock()
                .map(|s| {
                    s.values()
                        .filter(|p| String::from_utf8_lossy(p).contains(&final_value))
                        .count()
                        >= DEVICES
                })
                .unwrap_or(false)
        },
        "every device's last state",
    )
    .await;
    let ours = (rounds * DEVICES) as f64 / started.elapsed().as_secs_f64();
    (ours, bare)
}

/// Command → action → answer, against the same action through the HTTP API, alternating.
async fn round_trip(port: u16, samples: usize) -> ([f64; 2], [f64; 2]) {
    let stub = warp::path("ping").map(|| "{\"pong\":true}");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let stub_address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    tokio::spawn(warp::serve(stub).incoming(listener).run());
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir_all(dir.path().join("profiles")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        dir.path().join("profiles/ping.toml"),
        format!("version = 1\n[request]\nurl = \"http://{stub_address}/ping\"\n[devices]\nroot_names = '\"pong\"'\nvalues = 'If(JSON(input, \"pong\"), 1, 0)'\n"),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let source = ProfileSource::new(dir.path().join("profiles"), None);
    let hub = Arc::new(
        DeviceHub::open(&dir.path().join("hub.sqlite"), Duration::from_millis(50))
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let engine =
        Arc::new(Engine::new(source.load(), Some(source), hub).unwrap_or_else(|e| panic!("{e}")));
    let mut config = bridge_config(port);
    config.client_id = "bench-commands".into();
    config.base_topic = "cmd".into();
    let _bridge = bellhop::mqtt::start(&engine, config).unwrap_or_else(|e| panic!("{e}"));
    let (address, _server) = bellhop::web::serve(
        bellhop::web::AppState::new(engine.clone()),
        SocketAddr::from(([127, 0, 0, 1], 0)),
        64,
        std::future::pending(),
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    // The commander: publishes a command, waits for its answer.
    let (client, mut eventloop) =
        AsyncClient::new(MqttOptions::new("commander", "127.0.0.1", port), 100);
    let mut network = eventloop.network_options();
    network.set_tcp_nodelay(true);
    eventloop.set_network_options(network);
    client
        .subscribe("cmd/action/ping/result", QoS::AtMostOnce)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (answered, mut answers) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(event) = eventloop.poll().await {
            if let Event::Incoming(Packet::Publish(_)) = event {
                let _ = answered.send(Instant::now());
            }
        }
    });
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::new();
    let url = format!("http://{address}/api/v1/actions/run");
    let (mut by_mqtt, mut by_http) = (Vec::new(), Vec::new());
    for i in 0..samples + samples / 10 {
        let sent = Instant::now();
        client
            .publish("cmd/action/ping/run", QoS::AtMostOnce, false, "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let arrived = tokio::time::timeout(Duration::from_secs(10), answers.recv())
            .await
            .ok()
            .flatten()
            .unwrap_or_else(|| panic!("no answer to command {i}"));
        let sent_http = Instant::now();
        let answer = http
            .post(&url)
            .json(&serde_json::json!({"profile": "ping"}))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let _ = answer.bytes().await;
        let done_http = Instant::now();
        if i >= samples / 10 {
            by_mqtt.push((arrived - sent).as_secs_f64() * 1e6);
            by_http.push((done_http - sent_http).as_secs_f64() * 1e6);
        }
    }
    by_mqtt.sort_by(f64::total_cmp);
    by_http.sort_by(f64::total_cmp);
    (
        [
            common::percentile(&by_mqtt, 0.5),
            common::percentile(&by_mqtt, 0.99),
        ],
        [
            common::percentile(&by_http, 0.5),
            common::percentile(&by_http, 0.99),
        ],
    )
}

fn main() {
    if !std::path::Path::new("/usr/sbin/mosquitto").exists() {
        let message = "mosquitto is missing: run `bash .ci/run` (apt-get install -y mosquitto)";
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("{message}");
        }
        println!("SKIPPED (not CI): {message}");
        return;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let port = common::free_port();
    let _broker = broker(port);
    let (changes, samples) = if common::measuring() {
        (100_000, 1000)
    } else {
        (2_000, 10)
    };
    runtime.block_on(async {
        let (ours, bare) = throughput(port, changes).await;
        let (mqtt, http) = round_trip(port, samples).await;
        if !common::measuring() {
            println!("mqtt bench check: {ours:.0} changes/s through the bridge, {bare:.0} messages/s bare; commands answer ({:.0} µs)", mqtt[0]);
            return;
        }
        println!("Device changes → mosquitto, {changes} changes over {DEVICES} devices:");
        println!("  bare rumqttc loop   {bare:>9.0} messages/s");
        println!("  bellhop bridge      {ours:>9.0} changes/s (latest states, coalesced)");
        println!("  ratio bellhop/bare: {:.2}x (target at least 20,000 changes/s)", ours / bare);
        println!("MQTT command → action (local stub) → answer, {samples} samples each, alternating:");
        println!("  POST /api/v1/actions/run   median {:>6.0} µs | p99 {:>6.0} µs", http[0], http[1]);
        println!("  MQTT command + result      median {:>6.0} µs | p99 {:>6.0} µs", mqtt[0], mqtt[1]);
        println!("  ratio: median {:.2}x, p99 {:.2}x", mqtt[0] / http[0], mqtt[1] / http[1]);
    });
}
