//! Shared by the benchmarks: test bodies and reading criterion's estimates back to print ratios
//! against a baseline measured in the same run.

#![allow(dead_code)]

use std::path::PathBuf;

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
