//! Listening profiles: sensors call a path on Bellhop (curl here, as a sensor or a shell script
//! would); what they send becomes devices and fires input triggers. Bad input is refused with
//! the right status and changes nothing.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use crate::support::{eventually, Workspace};

const HALL: &str = r#"version = 1
listen = "/sensors/hall"

[devices]
root_names = '"hall"'
feature_names = '"temperature" && "humidity"'
values = 'ParseNumber(Query(input, "t")) && ParseNumber(Query(input, "h"))'
"#;

const DOOR: &str = r#"version = 1
listen = "/door"

[incoming]
token = "a-door-token-0123456789"
reply = 'door is ${Upper(input)}'
max_body_bytes = 1024
max_per_second = 8

[devices]
root_names = '"door"'
strings = 'input'
"#;

/// Whether curl is there; under CI its absence fails the test.
fn curl_ready() -> bool {
    crate::support::peer_present(
        Command::new("curl")
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success()),
        "curl is missing: run `bash .ci/run` (apt-get install -y curl)",
    )
}

/// curl's status code and body for a call.
async fn curl(args: Vec<String>) -> (u16, String) {
    tokio::task::spawn_blocking(move || {
        let output = Command::new("curl")
            .args(["-s", "-m", "10", "-w", "\n%{http_code}"])
            .args(&args)
            .output()
            .unwrap_or_else(|e| panic!("curl: {e}"));
        let text = String::from_utf8_lossy(&output.stdout).to_string();
        let (body, code) = text.rsplit_once('\n').unwrap_or(("", "0"));
        (code.trim().parse().unwrap_or(0), body.to_string())
    })
    .await
    .unwrap_or_else(|e| panic!("{e}"))
}

/// A served engine; the server stops when this is dropped.
struct Served {
    engine: Arc<bellhop::engine::Engine>,
    base: String,
    /// The web layer's time (rate limits): moved forward instead of waiting for a budget.
    clock: bellhop::clock::Clock,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn serve(ws: &Workspace, events: &[(&str, &str)]) -> Served {
    let engine = ws.running_engine(events);
    let clock = bellhop::clock::Clock::adjustable();
    let (address, stop) = crate::support::serve(
        bellhop::web::AppState::new(engine.clone())
            .with_clock(clock.clone())
            .with_edge(
                bellhop::web::Edge::loopback()
                    .with_admin_token(Some(bellhop::secret::Secret::new("an-admin-token-0123456")))
                    .with_clock(clock.clone()),
            ),
    )
    .await;
    Served {
        engine,
        base: format!("http://{address}"),
        clock,
        _stop: stop,
    }
}

fn device(engine: &bellhop::engine::Engine, name: &str) -> Option<bellhop::devices::Device> {
    engine
        .devices()
        .into_iter()
        .find(|d| d.key.feature.as_deref().unwrap_or(&d.key.root) == name)
}

/// The issue's scenario: a sensor's GET becomes devices and fires a string-matcher trigger
/// whose action sets a global. No admin token is needed (sensors cannot sign in).
#[tokio::test]
async fn a_sensor_get_becomes_devices_and_fires_a_string_trigger() {
    if !curl_ready() {
        return;
    }
    let ws = Workspace::new();
    ws.write_profile("hall", HALL);
    let served = serve(
        &ws,
        &[(
            "hall-seen",
            "[[trigger]]\ninput = \"hall\"\ntext = \"t=\"\nposition = 1\n[[action]]\nset_global = \"hall_report\"\nstring = 'input'\n",
        )],
    )
    .await;
    let (status, body) = curl(vec![format!("{}/in/sensors/hall?t=21.5&h=40", served.base)]).await;
    assert_eq!((status, body.as_str()), (200, "OK"));
    served
        .engine
        .flush()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let engine = &served.engine;
    assert!(
        eventually(|| {
            engine
                .globals()
                .iter()
                .any(|g| g.name == "hall_report" && g.string == "t=21.5&h=40")
        })
        .await,
        "{:?}",
        engine.automation().history("hall-seen", 3)
    );
    assert_eq!(device(engine, "temperature").map(|d| d.value), Some(21.5));
    assert_eq!(device(engine, "humidity").map(|d| d.value), Some(40.0));
    // The call is in the profile's run history, like a run.
    let runs = engine.history(Some("hall"), 1);
    assert!(
        runs.first().is_some_and(|r| r.ok && r.changes.len() >= 2),
        "{runs:?}"
    );
    // A trailing slash is the same path; an unknown path is 404; the API still needs the token.
    let (status, _) = curl(vec![format!("{}/in/sensors/hall/?t=22&h=41", served.base)]).await;
    assert_eq!(status, 200);
    assert_eq!(device(engine, "temperature").map(|d| d.value), Some(22.0));
    // Committed before the next reading: readings within one commit window share one history
    // row (the newest), and a loaded machine may stretch the window.
    engine.flush().await.unwrap_or_else(|e| panic!("{e}"));
    // What the sensor left out is an error the caller and the history see (422); the humidity
    // device keeps its value.
    let (status, body) = curl(vec![format!("{}/in/sensors/hall?t=23", served.base)]).await;
    assert_eq!(status, 422, "{body}");
    assert!(body.contains("humidity"), "{body}");
    assert_eq!(device(engine, "humidity").map(|d| d.value), Some(41.0));
    assert!(engine
        .history(Some("hall"), 1)
        .first()
        .is_some_and(|r| !r.ok));
    let (status, body) = curl(vec![format!("{}/in/sensors/attic?t=1", served.base)]).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body.contains("no profile listens at `/in/sensors/attic`"),
        "{body}"
    );
    for path in [
        "/in",
        "/in/",
        "/in/../api/v1/devices",
        "/in/sensors/../../api/v1/devices",
    ] {
        let (status, _) = curl(vec![
            "--path-as-is".into(),
            format!("{}{path}", served.base),
        ])
        .await;
        assert!(status == 404 || status == 401, "{path}: {status}");
    }
    let (status, _) = curl(vec![format!("{}/api/v1/devices", served.base)]).await;
    assert_eq!(status, 401);
    // Each reading is in the temperature's history, oldest first.
    engine.flush().await.unwrap_or_else(|e| panic!("{e}"));
    let reference = device(engine, "temperature").map_or(0, |d| d.reference);
    let admin = || {
        vec![
            "-H".to_string(),
            "Authorization: Bearer an-admin-token-0123456".to_string(),
        ]
    };
    let mut args = admin();
    args.push(format!(
        "{}/api/v1/devices/{reference}/history",
        served.base
    ));
    let (status, body) = curl(args).await;
    assert_eq!(status, 200, "{body}");
    let history: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    let values: Vec<f64> = history["points"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|p| p["value"].as_f64())
        .collect();
    assert_eq!(values, vec![21.5, 22.0, 23.0], "{body}");
    let mut args = admin();
    args.push(format!(
        "{}/api/v1/devices/{reference}/history?limit=1",
        served.base
    ));
    let (_, body) = curl(args).await;
    assert!(body.contains("23") && !body.contains("21.5"), "{body}");
    for bad in [
        "/api/v1/devices/999999/history",
        "/api/v1/devices/1/history?limit=x",
    ] {
        let mut args = admin();
        args.push(format!("{}{bad}", served.base));
        let (status, _) = curl(args).await;
        assert!(status == 404 || status == 400, "{bad}: {status}");
    }
}

/// POST bodies, the reply template, the token (header, bearer, query), the body limit, bodies
/// that are not text, wrong methods and floods.
#[tokio::test]
async fn a_listening_path_guards_itself() {
    if !curl_ready() {
        return;
    }
    let ws = Workspace::new();
    ws.write_profile("door", DOOR);
    let served = serve(&ws, &[]).await;
    let url = format!("{}/in/door", served.base);
    let engine = &served.engine;
    // No token, a wrong token: 401, nothing changes.
    for extra in [
        vec![],
        vec!["-H".to_string(), "X-Bellhop-Token: wrong".to_string()],
        vec![
            "-H".to_string(),
            "Authorization: Bearer a-door-token-012345678".to_string(),
        ],
    ] {
        let mut args = vec!["-d".to_string(), "open".to_string(), url.clone()];
        args.extend(extra);
        let (status, body) = curl(args).await;
        assert_eq!(status, 401, "{body}");
    }
    assert!(device(engine, "door").is_none());
    // The right token, three ways; the reply is the profile's template.
    let (status, body) = curl(vec![
        "-d".into(),
        "open".into(),
        "-H".into(),
        "X-Bellhop-Token: a-door-token-0123456789".into(),
        url.clone(),
    ])
    .await;
    assert_eq!((status, body.as_str()), (200, "door is OPEN"));
    assert_eq!(
        device(engine, "door").map(|d| d.string),
        Some("open".into())
    );
    let (status, body) = curl(vec![
        "-X".into(),
        "PUT".into(),
        "-d".into(),
        "shut".into(),
        "-H".into(),
        "Authorization: Bearer a-door-token-0123456789".into(),
        url.clone(),
    ])
    .await;
    assert_eq!((status, body.as_str()), (200, "door is SHUT"));
    // In the query, the token is not part of the input.
    let (status, body) = curl(vec![format!("{url}?token=a-door-token-0123456789&ajar")]).await;
    assert_eq!((status, body.as_str()), (200, "door is AJAR"));
    assert_eq!(
        device(engine, "door").map(|d| d.string),
        Some("ajar".into())
    );
    let auth = || {
        vec![
            "-H".to_string(),
            "X-Bellhop-Token: a-door-token-0123456789".to_string(),
        ]
    };
    // 10 MB, over the body limit (declared, or sent chunked): 413; not UTF-8: 400; DELETE: 405.
    served.clock.advance(Duration::from_millis(1100));
    let big = ws.path().join("big.txt");
    std::fs::write(&big, "x".repeat(10 * 1024 * 1024)).unwrap_or_else(|e| panic!("{e}"));
    let mut args = auth();
    args.extend([
        "--data-binary".into(),
        format!("@{}", big.display()),
        url.clone(),
    ]);
    assert_eq!(curl(args).await.0, 413);
    let mut args = auth();
    args.extend([
        "-H".into(),
        "Transfer-Encoding: chunked".into(),
        "--data-binary".into(),
        format!("@{}", big.display()),
        url.clone(),
    ]);
    assert_eq!(curl(args).await.0, 413);
    let binary = ws.path().join("binary");
    std::fs::write(&binary, [0xff_u8, 0xfe, 0x00]).unwrap_or_else(|e| panic!("{e}"));
    let mut args = auth();
    args.extend([
        "--data-binary".into(),
        format!("@{}", binary.display()),
        url.clone(),
    ]);
    let (status, body) = curl(args).await;
    assert_eq!(status, 400, "{body}");
    let mut args = auth();
    args.extend(["-X".into(), "DELETE".into(), url.clone()]);
    assert_eq!(curl(args).await.0, 405);
    assert_eq!(
        device(engine, "door").map(|d| d.string),
        Some("ajar".into())
    );
    // A flood of 1,000 calls: at most the budget gets through, the rest is 429, and the server
    // stays up.
    served.clock.advance(Duration::from_millis(1100));
    let client = reqwest::Client::new();
    let flood_started_ms = served.clock.now_ms();
    let calls = (0..1000).map(|i| {
        client
            .post(&url)
            .header("x-bellhop-token", "a-door-token-0123456789")
            .body(format!("flood {i}"))
            .send()
    });
    let statuses: Vec<u16> = futures_util::future::join_all(calls)
        .await
        .into_iter()
        .map(|r| r.map_or(0, |r| r.status().as_u16()))
        .collect();
    let admitted = statuses.iter().filter(|s| **s == 200).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    // The budget: a burst of 8, then 8 a second. (With every connection place taken the server
    // closes idle keep-alive connections, so a few calls racing such a close fail at the
    // connection, status 0, as HTTP/1.1 allows; none gets anything but 200 or 429.)
    let flood_secs = (served.clock.now_ms() - flood_started_ms) as f64 / 1000.0;
    let allowed = 8 + (flood_secs * 8.0).ceil() as usize;
    let cut = statuses.iter().filter(|s| **s == 0).count();
    assert!(
        (1..=allowed).contains(&admitted) && admitted + refused + cut == 1000 && refused > 900,
        "{allowed}: {statuses:?}"
    );
    let (status, _) = curl(vec![
        "-H".into(),
        "Authorization: Bearer an-admin-token-0123456".into(),
        format!("{}/api/v1/health", served.base),
    ])
    .await;
    assert_eq!(status, 200);
}

/// Listening files are checked like any profile: a bad path, a short token, `[auth]` on a
/// listener, two profiles on one path — each named with file and key; the others load.
#[test]
fn listening_profiles_are_checked_when_loaded() {
    let ws = Workspace::new();
    ws.write_profile("hall", HALL);
    ws.write_profile(
        "dots",
        "version = 1\nlisten = \"/a/../b\"\n[devices]\nroot_names = '\"x\"'\n",
    );
    ws.write_profile(
        "short",
        "version = 1\nlisten = \"/short\"\n[incoming]\ntoken = \"abc\"\n",
    );
    ws.write_profile(
        "both",
        "version = 1\nlisten = \"/both\"\n[request]\nurl = \"http://127.0.0.1:1/\"\n",
    );
    ws.write_profile(
        "authed",
        "version = 1\nlisten = \"/authed\"\n[auth]\nmode = \"bearer\"\ntoken = \"x\"\n",
    );
    ws.write_profile("twin-a", "version = 1\nlisten = \"/twin\"\n");
    ws.write_profile("twin-b", "version = 1\nlisten = \"/twin/\"\n");
    ws.write_profile(
        "huge",
        "version = 1\nlisten = \"/huge\"\n[incoming]\nmax_body_bytes = 99999999\nbogus = 1\n",
    );
    let set = ws.load();
    assert_eq!(
        set.profiles.keys().map(String::as_str).collect::<Vec<_>>(),
        vec!["hall"],
        "{:#?}",
        set.diagnostics
    );
    let said = |file: &str, key: &str, words: &str| {
        assert!(
            set.diagnostics
                .iter()
                .any(|d| d.file.ends_with(format!("{file}.toml"))
                    && d.key == key
                    && d.message.contains(words)),
            "{file} {key} {words}: {:#?}",
            set.diagnostics
        );
    };
    said("dots", "listen", "`..`");
    said("short", "incoming.token", "at least 16");
    said("both", "listen", "one of them");
    said("authed", "auth", "incoming.token");
    said("twin-a", "listen", "twin-b");
    said("twin-b", "listen", "twin-a");
    said("huge", "incoming.max_body_bytes", "between 1 and");
    said("huge", "incoming.bogus", "unknown key");
    // Running a listening profile's action says why there is none.
    let engine = Arc::new(
        bellhop::engine::Engine::new(set, None, ws.hub()).unwrap_or_else(|e| panic!("{e}")),
    );
    let runtime = tokio::runtime::Runtime::new().unwrap_or_else(|e| panic!("{e}"));
    let record = runtime
        .block_on(engine.run("hall", ""))
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !record.ok && record.errors[0].message.contains("listens"),
        "{record:?}"
    );
}

/// A reply template that fails on what the caller sent (an attack run found `id=${JSON(input,
/// "id")}` with `{"v":1}` answered 500) is the caller's problem: 422 naming the failure, and
/// the call is still received and recorded.
#[tokio::test]
async fn a_reply_template_failing_on_the_input_is_a_422() {
    if !curl_ready() {
        return;
    }
    let ws = Workspace::new();
    ws.write_profile(
        "echo",
        "version = 1\nlisten = \"/echo\"\n[incoming]\nreply = 'id=${JSON(input, \"id\")}'\n[devices]\nroot_names = '\"echo\"'\nstrings = 'input'\n",
    );
    let served = serve(&ws, &[]).await;
    let url = format!("{}/in/echo", served.base);
    let (status, body) = curl(vec!["-d".into(), r#"{"id":7}"#.into(), url.clone()]).await;
    assert_eq!((status, body.as_str()), (200, "id=7"));
    let (status, body) = curl(vec!["-d".into(), r#"{"v":1}"#.into(), url]).await;
    assert_eq!(status, 422, "{body}");
    let answer: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
    assert_eq!(answer["error"]["code"], "reply_failed", "{body}");
    assert!(
        answer["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("reply template failed") && m.contains("id")),
        "{body}"
    );
    assert_eq!(
        device(&served.engine, "echo").map(|d| d.string),
        Some(r#"{"v":1}"#.to_string())
    );
}
