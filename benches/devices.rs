//! Device hub benchmark: the cost of one device update with 10 devices and with 10,000, as a
//! ratio in the same run (an update must not rewrite the whole store).

mod common;

use std::time::Duration;

use bellhop::devices::{Creation, DeviceHub, DeviceKey, DeviceUpdate};
use criterion::{BenchmarkId, Criterion};

fn hub_with(devices: usize, dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> DeviceHub {
    let hub = DeviceHub::open(&dir.join("bench.sqlite"), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    let updates: Vec<DeviceUpdate> = (0..devices)
        .map(|n| DeviceUpdate {
            key: DeviceKey::root("bench", &format!("device {n}")),
            value: Some(n as f64),
            string: None,
        })
        .collect();
    runtime
        .block_on(hub.apply(&updates, Creation::Allowed))
        .unwrap_or_else(|e| panic!("{e}"));
    hub
}

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let mut group = c.benchmark_group("devices");
    for count in [10usize, 10_000] {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let hub = hub_with(count, dir.path(), &runtime);
        let key = DeviceKey::root("bench", &format!("device {}", count / 2));
        let mut value = 0.0;
        group.bench_with_input(BenchmarkId::new("update_one", count), &count, |b, _| {
            b.iter(|| {
                value += 1.0;
                let update = DeviceUpdate {
                    key: key.clone(),
                    value: Some(value),
                    string: None,
                };
                runtime
                    .block_on(hub.apply(&[update], Creation::Allowed))
                    .map(|changes| changes.len())
                    .unwrap_or(0)
            })
        });
        runtime
            .block_on(hub.flush())
            .unwrap_or_else(|e| panic!("{e}"));
    }
    group.finish();
}

fn main() {
    common::main_with(benches, report);
}

fn report() {
    if let (Some(small), Some(large)) = (
        common::mean_ns("devices", "update_one", "10"),
        common::mean_ns("devices", "update_one", "10000"),
    ) {
        println!(
            "\nOne device update: {:.2} µs with 10 devices, {:.2} µs with 10,000: ratio {:.2}x (target: about 1x)",
            small / 1000.0,
            large / 1000.0,
            large / small
        );
    }
}
