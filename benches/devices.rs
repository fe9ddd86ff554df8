//! Device hub benchmark: the cost of one device update with 10 devices and with 10,000, as a
//! ratio in the same run (an update must not rewrite the whole store); and the device
//! history's write cost at MQTT scale (100,000 changes a second), kept against not kept.

mod common;

use std::time::Duration;

use std::time::Instant;

use bellhop::devices::{Creation, DeviceHub, DeviceKey, DeviceUpdate, HistoryRetention};
use criterion::{BenchmarkId, Criterion};

fn hub_with(devices: usize, dir: &std::path::Path, runtime: &tokio::runtime::Runtime) -> DeviceHub {
    let hub = DeviceHub::open(&dir.join("bench.sqlite"), Duration::from_millis(50))
        .unwrap_or_else(|e| panic!("{e}"));
    let updates: Vec<DeviceUpdate> = (0..devices)
        .map(|n| DeviceUpdate {
            key: DeviceKey::root("bench", format!("device {n}")),
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
        let key = DeviceKey::root("bench", format!("device {}", count / 2));
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
    history_at_scale();
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

/// How many devices the changes are spread over, how many changes a second, for how long.
const SCALE_DEVICES: usize = 1_000;
const CHANGES_PER_SECOND: usize = 100_000;
const SCALE_SECONDS: u64 = 3;

struct HistoryLoad {
    /// Changes applied a second (the offered 100,000 when the hub keeps up).
    applied_per_second: f64,
    /// The store writer's CPU time per second of load (1.0: one core, always busy).
    writer_busy: f64,
    /// How long committing what was pending took (a flush asked for every 100 ms), ms.
    flush_ms: Vec<f64>,
    /// Writes still waiting once the load stopped.
    pending_after: usize,
}

/// 100,000 changes a second over 1,000 devices (a batch of 1,000 every 10 ms, as a busy MQTT
/// bridge applies them) for three seconds, on a fresh store with the history kept or not.
fn history_load(keep: bool) -> HistoryLoad {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let hub = hub_with(SCALE_DEVICES, dir.path(), &runtime);
    if !keep {
        hub.set_history_retention(HistoryRetention {
            max_age: Duration::ZERO,
            max_rows: 0,
        });
    }
    let keys: Vec<DeviceKey> = (0..SCALE_DEVICES)
        .map(|n| DeviceKey::root("bench", format!("device {n}")))
        .collect();
    let batches_per_second = CHANGES_PER_SECOND / SCALE_DEVICES;
    let tick = Duration::from_secs(1) / batches_per_second as u32;
    runtime.block_on(async {
        let ticks_before = common::cpu_ticks(&["bellhop-store"]);
        let started = Instant::now();
        let mut applied = 0usize;
        let mut flush_ms = Vec::new();
        let mut next_flush = started;
        let mut round = 0u64;
        while started.elapsed() < Duration::from_secs(SCALE_SECONDS) {
            round += 1;
            let updates: Vec<DeviceUpdate> = keys
                .iter()
                .enumerate()
                .map(|(n, key)| DeviceUpdate {
                    key: key.clone(),
                    value: Some((round * 1_000 + n as u64) as f64),
                    string: None,
                })
                .collect();
            applied += hub
                .apply(&updates, Creation::Allowed)
                .await
                .map(|changes| changes.len())
                .unwrap_or(0);
            if Instant::now() >= next_flush {
                let asked = Instant::now();
                hub.flush().await.unwrap_or_else(|e| panic!("{e}"));
                flush_ms.push(asked.elapsed().as_secs_f64() * 1e3);
                next_flush = Instant::now() + Duration::from_millis(100);
            }
            // The next batch is due one tick after this one was (no catching up in a burst).
            let due = started + tick * round as u32;
            tokio::time::sleep_until(due.into()).await;
        }
        let seconds = started.elapsed().as_secs_f64();
        let pending_after = hub.store_health().map(|h| h.pending).unwrap_or(0);
        hub.flush().await.unwrap_or_else(|e| panic!("{e}"));
        let writer_seconds = (common::cpu_ticks(&["bellhop-store"]) - ticks_before) as f64
            / common::TICKS_PER_SECOND;
        flush_ms.sort_by(f64::total_cmp);
        HistoryLoad {
            applied_per_second: applied as f64 / seconds,
            writer_busy: writer_seconds / seconds,
            flush_ms,
            pending_after,
        }
    })
}

/// Prints the history's cost at 100,000 changes a second: three rounds each, alternating.
fn history_at_scale() {
    let mut kept = Vec::new();
    let mut not_kept = Vec::new();
    for round in 0..3 {
        for keep in if round % 2 == 0 {
            [true, false]
        } else {
            [false, true]
        } {
            let load = history_load(keep);
            println!(
                "  history {:<8} round {}: {:>7.0} changes/s applied, writer busy {:>4.0} % of a core, commit on demand median {:>5.1} ms (max {:>5.1} ms), {} writes waiting at the end",
                if keep { "kept" } else { "not kept" },
                round + 1,
                load.applied_per_second,
                load.writer_busy * 100.0,
                common::percentile(&load.flush_ms, 0.5),
                load.flush_ms.last().copied().unwrap_or(0.0),
                load.pending_after,
            );
            if keep {
                kept.push(load)
            } else {
                not_kept.push(load)
            }
        }
    }
    let median = |loads: &[HistoryLoad], of: fn(&HistoryLoad) -> f64| {
        let mut values: Vec<f64> = loads.iter().map(of).collect();
        values.sort_by(f64::total_cmp);
        common::percentile(&values, 0.5)
    };
    let busy = |l: &HistoryLoad| l.writer_busy;
    let flush = |l: &HistoryLoad| common::percentile(&l.flush_ms, 0.5);
    println!(
        "\nDevice history at {CHANGES_PER_SECOND} changes/s over {SCALE_DEVICES} devices: the writer is busy {:.0} % of a core with it kept, {:.0} % without (ratio {:.2}x); a commit asked for takes {:.1} ms with it, {:.1} ms without; the commit window is 50 ms.",
        median(&kept, busy) * 100.0,
        median(&not_kept, busy) * 100.0,
        median(&kept, busy) / median(&not_kept, busy).max(1e-9),
        median(&kept, flush),
        median(&not_kept, flush),
    );
}
