//! Hardening: hostile and broken inputs at every edge (profile folders, expressions, action
//! texts, request templates, the web edge) get a clear error and harm nothing else.

use bellhop::profile::{self, Diagnostic};
use bellhop::secret::SecretSource;
use warp::Filter as _;

use crate::support::{profile_text, Workspace};

fn good_profile() -> String {
    profile_text("http://127.0.0.1:1/user", crate::support::EMAIL_DEVICE)
}

fn problems_of<'a>(diagnostics: &'a [Diagnostic], file: &str) -> Vec<&'a Diagnostic> {
    diagnostics
        .iter()
        .filter(|d| d.file.file_name().is_some_and(|f| f == file))
        .collect()
}

#[cfg(unix)]
#[test]
fn odd_entries_in_the_profile_folder_are_reported_never_opened_or_skipped_silently() {
    let ws = Workspace::new();
    let dir = ws.profiles_dir();
    ws.write_profile("good", &good_profile());
    std::os::unix::fs::symlink(dir.join("nowhere.toml"), dir.join("dangling.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(dir.join("loop-b.toml"), dir.join("loop-a.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::os::unix::fs::symlink(dir.join("loop-a.toml"), dir.join("loop-b.toml"))
        .unwrap_or_else(|e| panic!("{e}"));
    std::fs::create_dir(dir.join("folder.toml")).unwrap_or_else(|e| panic!("{e}"));
    // A FIFO: opening it to read would block the loader (and `serve`) forever.
    let fifo = dir.join("pipe.toml");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status();
    assert!(made.is_ok_and(|s| s.success()), "mkfifo");
    let mut garbage = b"version = 1\nname = \"x\"\n[request]\nurl = \"http://h/".to_vec();
    garbage.extend_from_slice(&[0xff, 0xfe, b'"', b'\n']);
    std::fs::write(dir.join("garbage.toml"), garbage).unwrap_or_else(|e| panic!("{e}"));
    let mut huge = good_profile();
    huge.push_str(&format!(
        "# {}\n",
        "x".repeat(profile::MAX_PROFILE_BYTES as usize)
    ));
    ws.write_profile("huge", &huge);

    let set = ws.load();
    assert_eq!(set.profiles.keys().collect::<Vec<_>>(), vec!["good"]);
    let d = &set.diagnostics;
    let expect = |file: &str, words: &[&str]| {
        let found = problems_of(d, file);
        assert!(
            found
                .iter()
                .any(|p| p.is_error() && words.iter().all(|w| p.message.contains(w))),
            "{file}: expected {words:?} in {found:#?}"
        );
    };
    expect("dangling.toml", &["link"]);
    expect("loop-a.toml", &["link"]);
    expect("folder.toml", &["folder"]);
    expect("pipe.toml", &["FIFO"]);
    expect("garbage.toml", &["UTF-8", "line 4", "byte"]);
    expect("huge.toml", &["over the limit"]);
    let garbage = problems_of(d, "garbage.toml");
    assert_eq!(garbage[0].line, Some(4));
}

#[test]
fn two_files_claiming_one_name_both_fail_and_neither_wins() {
    let ws = Workspace::new();
    let named = |text: String| text.replacen("version = 1", "version = 1\nname = \"twin\"", 1);
    ws.write_profile("a-twin", &named(good_profile()));
    ws.write_profile("b-twin", &named(good_profile()));
    ws.write_profile("good", &good_profile());
    let set = ws.load();
    assert_eq!(set.profiles.keys().collect::<Vec<_>>(), vec!["good"]);
    for (file, other) in [
        ("a-twin.toml", "b-twin.toml"),
        ("b-twin.toml", "a-twin.toml"),
    ] {
        let found = problems_of(&set.diagnostics, file);
        assert!(
            found
                .iter()
                .any(|p| p.key == "name" && p.line == Some(2) && p.message.contains(other)),
            "{file}: {found:#?}"
        );
    }
}

#[test]
fn deeply_nested_profile_files_are_diagnosed_and_the_others_load() {
    let ws = Workspace::new();
    ws.write_profile("good", &good_profile());
    let head = "version = 1\n[request]\nurl = \"http://127.0.0.1/x\"\n";
    let depth = 20_000;
    ws.write_profile(
        "arrays",
        &format!("{head}x = {}{}\n", "[".repeat(depth), "]".repeat(depth)),
    );
    ws.write_profile(
        "tables",
        &format!("{head}x = {}1{}\n", "{a=".repeat(depth), "}".repeat(depth)),
    );
    ws.write_profile(
        "dotted",
        &format!("{head}[{}]\nk = 1\n", vec!["a"; depth].join(".")),
    );
    ws.write_profile(
        "expression",
        &format!(
            "{head}[devices]\nroot_names = '\"a\"'\nvalues = '{}1{}'\n",
            "(".repeat(1_200),
            ")".repeat(1_200)
        ),
    );
    // On a small stack, as a worker thread of `serve` would have.
    let dir = ws.profiles_dir();
    let set = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || profile::load_dir(&dir, &SecretSource::default()))
        .map(|t| t.join())
        .unwrap_or_else(|e| panic!("{e}"))
        .unwrap_or_else(|_| panic!("the loader panicked"));
    assert_eq!(set.profiles.keys().collect::<Vec<_>>(), vec!["good"]);
    for file in [
        "arrays.toml",
        "tables.toml",
        "dotted.toml",
        "expression.toml",
    ] {
        assert!(
            problems_of(&set.diagnostics, file)
                .iter()
                .any(|d| d.is_error()),
            "{file}: {:#?}",
            set.diagnostics
        );
    }
    let expression = problems_of(&set.diagnostics, "expression.toml");
    assert!(
        expression
            .iter()
            .any(|d| d.message.contains("deeper than") && d.column.is_some() && d.line == Some(6)),
        "{expression:#?}"
    );
}

pub(crate) fn api_state(ws: &Workspace) -> bellhop::web::AppState {
    let key = bellhop::tokens::load_or_create_key(&ws.path().join("token.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    let vault = bellhop::tokens::TokenStore::open(&ws.path().join("data/tokens"), &key)
        .unwrap_or_else(|e| panic!("{e}"));
    let source = bellhop::engine::ProfileSource::new(ws.profiles_dir(), None)
        .with_vault(std::sync::Arc::new(vault));
    let engine = bellhop::engine::Engine::new(source.load(), Some(source), ws.hub())
        .unwrap_or_else(|e| panic!("{e}"));
    bellhop::web::AppState::new(std::sync::Arc::new(engine))
}

/// A page on a domain that re-resolves to 127.0.0.1 sends its own name as Host and as Origin:
/// every route group refuses it, before anything runs.
#[tokio::test]
async fn a_dns_rebinding_page_is_refused_on_every_route_group() {
    let ws = Workspace::new();
    ws.write_profile("good", &good_profile());
    let state = api_state(&ws);
    let routes = bellhop::web::routes(state);
    let evil_host = "rebind.evil.example:8765";
    let evil_origin = "http://rebind.evil.example:8765";
    let cases: &[(&str, &str, Option<&str>)] = &[
        ("GET", "/", None),
        ("GET", "/app.js", None),
        ("GET", "/api/v1/health", None),
        ("GET", "/api/v1/profiles", None),
        ("GET", "/api/v1/profiles/good", None),
        ("GET", "/api/v1/profiles/good/form", None),
        (
            "PUT",
            "/api/v1/profiles/good",
            Some(r#"{"name":"good","url":"http://evil.example/"}"#),
        ),
        ("POST", "/api/v1/profiles/validate", Some(r#"{"text":""}"#)),
        ("GET", "/api/v1/profiles/good/authorization", None),
        ("DELETE", "/api/v1/profiles/good/authorization", None),
        ("POST", "/api/v1/actions/run", Some(r#"{"profile":"good"}"#)),
        ("GET", "/api/v1/runs", None),
        ("GET", "/api/v1/devices", None),
        ("PUT", "/api/v1/devices/1", Some(r#"{"value":1}"#)),
        ("GET", "/api/v1/globals", None),
        ("PUT", "/api/v1/globals/x", Some(r#"{"value":1}"#)),
        ("POST", "/api/v1/eval", Some(r#"{"expression":"1"}"#)),
        ("GET", "/api/v1/functions", None),
        ("POST", "/api/v1/reload", None),
        ("GET", "/api/v1/events", None),
        ("GET", "/api/v1/stream", None),
        ("GET", "/hooks/events/x/token", None),
        ("POST", "/api/v1/events/x/run", Some(r#"{"input":"x"}"#)),
        ("GET", "/oauth2/start?profile=good", None),
        ("GET", "/oauth2/callback?state=x&code=y", None),
        ("GET", "/login", None),
        ("POST", "/login", Some("token=x")),
        ("GET", "/demo/rooms.json", None),
    ];
    for (method, path, body) in cases {
        for (host, origin) in [(evil_host, Some(evil_origin)), (evil_host, None)] {
            let mut request = warp::test::request()
                .method(method)
                .path(path)
                .header("host", host);
            if let Some(origin) = origin {
                request = request.header("origin", origin);
            }
            if let Some(body) = body {
                request = request
                    .header("content-type", "application/json")
                    .body(*body);
            }
            let response = request.reply(&routes).await;
            assert!(
                response.status().is_client_error(),
                "{method} {path} with Host {host}: {}",
                response.status()
            );
        }
        // The same request from a page on another site, addressed to the right host.
        let mut request = crate::support::local_request()
            .method(method)
            .path(path)
            .header("origin", "https://ads.example");
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(*body);
        }
        let response = request.reply(&routes).await;
        assert_eq!(
            response.status(),
            403,
            "{method} {path} from another origin"
        );
    }
    // Nothing was changed or run.
    let file = std::fs::read_to_string(ws.profiles_dir().join("good.toml")).unwrap_or_default();
    assert_eq!(file, good_profile());
    // The server's own names still work, with or without a matching Origin.
    for (host, origin) in [
        ("127.0.0.1:8765", Some("http://127.0.0.1:8765")),
        ("localhost:8765", Some("http://localhost:8765")),
        ("[::1]:8765", None),
    ] {
        let mut request = warp::test::request()
            .method("POST")
            .path("/api/v1/reload")
            .header("host", host);
        if let Some(origin) = origin {
            request = request.header("origin", origin);
        }
        assert_eq!(request.reply(&routes).await.status(), 200, "{host}");
    }
}

#[tokio::test]
async fn api_edges_answer_with_the_right_status() {
    let ws = Workspace::new();
    let routes = bellhop::web::routes(api_state(&ws));
    let long = "p".repeat(300);
    let form = format!(r#"{{"name":"{long}","url":"http://127.0.0.1/"}}"#);
    let response = crate::support::local_request()
        .method("PUT")
        .path(&format!("/api/v1/profiles/{long}"))
        .header("content-type", "application/json")
        .body(form)
        .reply(&routes)
        .await;
    let body = String::from_utf8_lossy(response.body()).to_string();
    assert_eq!(response.status(), 400, "{body}");
    assert!(
        !body.contains(".tmp") && !body.contains(&ws.path().display().to_string()),
        "{body}"
    );
    let response = crate::support::local_request()
        .method("POST")
        .path("/api/v1/eval")
        .header("content-type", "text/plain")
        .body(r#"{"expression":"1"}"#)
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 415);
    let response = crate::support::local_request()
        .method("POST")
        .path("/api/v1/eval")
        .header("content-type", "application/json")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 411);
}

async fn call(
    routes: &(impl warp::Filter<Extract = (warp::reply::Response,), Error = std::convert::Infallible>
          + Clone
          + Send
          + Sync
          + 'static),
    method: &str,
    path: &str,
    body: Option<serde_json::Value>,
) -> (u16, serde_json::Value) {
    let mut request = crate::support::local_request().method(method).path(path);
    if let Some(body) = body {
        request = request
            .header("content-type", "application/json")
            .json(&body);
    }
    let response = request.reply(routes).await;
    (
        response.status().as_u16(),
        serde_json::from_slice(response.body()).unwrap_or(serde_json::Value::Null),
    )
}

const RICH_PROFILE: &str = r#"# Hand-written: every comment and key here must survive the editor.
version = 1
description = "Kitchen sensor"   # shown in the list

[request]
method = "POST"
url = "http://127.0.0.1:9/sensor/${input}"
raw_url = true            # the action text is a path
timeout_secs = 7.5
verify_tls = false
headers = { "X-Trace" = "bellhop", Accept = "application/json" }
body = { kind = "json", template = '{"query": ${input}}' }

[auth]
mode = "basic"
username = "ann"
password = "${env:HOME}"

[devices]
locked = true
affect = 'Status() == 200'
root_names = '"kitchen"'
values = 'JSON(input, "temp")'
"#;

#[tokio::test]
async fn the_editor_saves_what_changed_and_nothing_else() {
    let ws = Workspace::new();
    let file = ws.write_profile("rich", RICH_PROFILE);
    let routes = bellhop::web::routes(api_state(&ws));
    let (status, detail) = call(&routes, "GET", "/api/v1/profiles/rich/form", None).await;
    assert_eq!(status, 200, "{detail}");
    let mut form = detail["form"].clone();
    assert_eq!(form["auth_mode"], "basic");
    assert_eq!(form["read_only"], serde_json::json!(["auth"]));
    // Saving unchanged is a byte-for-byte no-op.
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/rich", Some(form.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "unchanged");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        RICH_PROFILE
    );
    // Changing the URL changes that line only: comments, headers, body, timeouts, `raw_url`,
    // `verify_tls`, `locked`, `affect` and the basic auth stay.
    form["url"] = serde_json::json!("http://127.0.0.1:9/other/${input}");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/rich", Some(form.clone())).await;
    assert_eq!(status, 200, "{body}");
    let saved = std::fs::read_to_string(&file).unwrap_or_default();
    let expected = RICH_PROFILE.replace("/sensor/${input}", "/other/${input}");
    assert_eq!(saved, expected);
    // The form cannot turn basic auth into something else by accident.
    form["auth_mode"] = serde_json::json!("none");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/rich", Some(form)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), expected);
}

#[tokio::test]
async fn a_device_list_is_read_only_in_the_form_and_kept_on_save() {
    let ws = Workspace::new();
    let text = "version = 1\n[request]\nurl = \"http://127.0.0.1:9/rooms\"\n\n# rooms\n[[device]]\nname = 'JSON(input, \"rooms[*].name\")'\nvalue = 'JSON(item, \"temp\")'\n  [[device.feature]]\n  name = '\"light\"'\n  string = 'JSON(item, \"light\")'\n";
    let file = ws.write_profile("rooms", text);
    let routes = bellhop::web::routes(api_state(&ws));
    let (_, detail) = call(&routes, "GET", "/api/v1/profiles/rooms/form", None).await;
    let mut form = detail["form"].clone();
    assert_eq!(form["read_only"], serde_json::json!(["devices"]));
    form["description"] = serde_json::json!("Rooms");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/rooms", Some(form.clone())).await;
    assert_eq!(status, 200, "{body}");
    let saved = std::fs::read_to_string(&file).unwrap_or_default();
    assert_eq!(
        saved,
        text.replacen("version = 1\n", "version = 1\ndescription = \"Rooms\"\n", 1)
    );
    form["values"] = serde_json::json!("1");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/rooms", Some(form)).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["diagnostics"][0]["key"], "devices");
}

#[tokio::test]
async fn renaming_a_profile_takes_its_secret_along() {
    let ws = Workspace::new();
    let routes = bellhop::web::routes(api_state(&ws));
    let form = serde_json::json!({
        "name": "cloud", "method": "GET", "url": "https://api.example.com/me", "auth_mode": "oauth2",
        "client_id": "id-1", "client_secret": "vault-secret-1", "scopes": "read",
        "authorize_url": "https://auth.example.com/authorize", "token_url": "https://auth.example.com/token",
        "root_names": "\"email\"", "values": "JSON(input, \"email\")"
    });
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/cloud", Some(form)).await;
    assert_eq!(status, 200, "{body}");
    let (_, detail) = call(&routes, "GET", "/api/v1/profiles/cloud/form", None).await;
    let mut form = detail["form"].clone();
    form["name"] = serde_json::json!("cloud two");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/cloud", Some(form)).await;
    assert_eq!(status, 200, "{body}");
    assert!(!ws.profiles_dir().join("cloud.toml").exists());
    let renamed =
        std::fs::read_to_string(ws.profiles_dir().join("cloud two.toml")).unwrap_or_default();
    assert!(
        renamed.contains("${secret:cloud_two_client_secret}"),
        "{renamed}"
    );
    assert!(!renamed.contains("vault-secret-1"), "{renamed}");
    let (status, list) = call(&routes, "GET", "/api/v1/profiles", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["diagnostics"], serde_json::json!([]), "{list}");
    assert_eq!(list["profiles"][0]["name"], "cloud two");
    // A name that is taken, or too long, is refused before anything is written.
    let (_, detail) = call(&routes, "GET", "/api/v1/profiles/cloud%20two/form", None).await;
    let mut form = detail["form"].clone();
    form["name"] = serde_json::json!("x".repeat(300));
    let (status, _) = call(&routes, "PUT", "/api/v1/profiles/cloud%20two", Some(form)).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_run_completes_and_is_recorded_when_its_caller_goes_away() {
    let stub = crate::support::start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "echo",
        &profile_text(
            &stub.url("/user?piece=${input}"),
            crate::support::EMAIL_DEVICE,
        ),
    );
    let engine = ws.engine();
    // The caller stops waiting (a browser tab closed, a client timed out) mid-run.
    let gone = tokio::time::timeout(
        std::time::Duration::from_millis(150),
        engine.run("echo", "one<wait 600>two"),
    )
    .await;
    assert!(gone.is_err(), "the run should still have been going");
    crate::support::eventually(|| engine.history(Some("echo"), 10).len() == 1).await;
    let seen: Vec<String> = stub.seen().into_iter().map(|r| r.query).collect();
    assert_eq!(seen, vec!["piece=one", "piece=two"]);
    let history = engine.history(Some("echo"), 10);
    assert_eq!(history.len(), 1);
    assert!(
        history[0].ok && history[0].exchanges.len() == 2,
        "{:?}",
        history[0]
    );
}

#[tokio::test]
async fn run_history_survives_a_restart() {
    let stub = crate::support::start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    {
        let engine = ws.engine();
        for _ in 0..3 {
            let record = engine
                .run("user", "")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            assert!(record.ok);
        }
        engine.hub().flush().await.unwrap_or_else(|e| panic!("{e}"));
    }
    // A new process over the same folder: the API's history is the journal's.
    let state = api_state(&ws);
    let routes = bellhop::web::routes(state);
    let (status, body) = call(&routes, "GET", "/api/v1/runs?profile=user", None).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["runs"].as_array().map(Vec::len), Some(3), "{body}");
    assert_eq!(body["runs"][0]["profile"], "user");
}

#[tokio::test]
async fn action_texts_and_responses_are_bounded() {
    let stub = crate::support::start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "echo",
        &profile_text(
            &stub.url("/user?piece=${input}"),
            crate::support::EMAIL_DEVICE,
        ),
    );
    ws.write_profile(
        "fan",
        &profile_text(
            &stub.url("/rooms"),
            "[devices]\nroot_names = 'Split(\"a,b,c,d,e,f,g,h\", \",\")'\nvalues = '1'",
        ),
    );
    let limits = bellhop::engine::EngineLimits {
        max_devices_per_run: 5,
        ..Default::default()
    };
    let engine = std::sync::Arc::new(
        bellhop::engine::Engine::new(ws.load(), None, ws.hub())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_limits(limits),
    );
    // 200 KB of `ok<wait 0>` once sent 20,001 requests.
    let many = "ok<wait 0>".repeat(20_000);
    let record = engine
        .run("echo", &many)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert!(
        record.errors[0].message.contains("over the limit"),
        "{:?}",
        record.errors
    );
    let record = engine
        .run("echo", "a<wait 999999999>b")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        record.errors[0].message.contains("longer than the limit"),
        "{:?}",
        record.errors
    );
    assert!(
        stub.seen().is_empty(),
        "nothing may be sent when a limit is crossed"
    );
    // A list-valued name may create only so many devices in one run.
    let record = engine
        .run("fan", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        record.errors.iter().any(|e| e.message.contains("at most")),
        "{:?}",
        record.errors
    );
    assert_eq!(engine.hub().len(), 5);
}

/// Live views are bounded below the connection bound: 200 open streams neither exhaust the
/// process's descriptors nor lock the API out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_live_views_never_lock_out_the_api() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let ws = Workspace::new();
    let state = api_state(&ws);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, server) = bellhop::web::serve(
        state,
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        32,
        async {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let mut streams = Vec::new();
    let mut refused = 0;
    for _ in 0..200 {
        let Ok(mut stream) = tokio::net::TcpStream::connect(address).await else {
            continue;
        };
        let _ = stream
            .write_all(b"GET /api/v1/stream HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            .await;
        let mut head = [0u8; 12];
        match tokio::time::timeout(
            std::time::Duration::from_millis(300),
            stream.read_exact(&mut head),
        )
        .await
        {
            Ok(Ok(_)) if head.ends_with(b"503") => refused += 1,
            _ => {}
        }
        streams.push(stream);
    }
    assert!(refused >= 150, "only {refused} live views were refused");
    let health = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/health"))
        .timeout(std::time::Duration::from_secs(5))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(health.ok(), Some(200));
    drop(streams);
    let _ = stop.send(());
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), server).await;
}

/// A client connected to `address` that sent `request` (or part of a request).
async fn client_sending(address: std::net::SocketAddr, request: &[u8]) -> tokio::net::TcpStream {
    use tokio::io::AsyncWriteExt;
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stream
        .write_all(request)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    stream
}

/// How long after `since` the server closed `stream` (reading whatever it sent); None if it is
/// still open five seconds on.
async fn closed_after(
    stream: &mut tokio::net::TcpStream,
    since: std::time::Instant,
) -> Option<std::time::Duration> {
    use tokio::io::AsyncReadExt;
    let mut buffer = [0u8; 1024];
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buffer)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return Some(since.elapsed()),
            Ok(Ok(_)) => continue,
            Err(_) => return None,
        }
    }
}

/// Whether the next thing `stream` reads within five seconds is a 200's status line.
async fn answered_ok(stream: &mut tokio::net::TcpStream) -> bool {
    use tokio::io::AsyncReadExt;
    let mut status = [0u8; 12];
    matches!(
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.read_exact(&mut status)).await,
        Ok(Ok(_)) if &status == b"HTTP/1.1 200"
    )
}

/// Idle keep-alive clients cannot hold every place: once none is free, the open connections
/// are asked to close when idle (each after the request it is serving, one still waiting for
/// its first request once that is answered), and a new client is served. At shutdown the idle
/// ones close at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_keep_alive_clients_make_room_and_close_at_shutdown() {
    const PLACES: usize = 4;
    let ws = Workspace::new();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, server) = bellhop::web::serve(
        api_state(&ws),
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        PLACES,
        async {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    let request = format!("GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let closed = async |stream: &mut tokio::net::TcpStream| {
        closed_after(stream, std::time::Instant::now())
            .await
            .is_some()
    };
    // Every place taken by a client that asked once and keeps its connection open.
    let mut idle = Vec::new();
    for _ in 0..PLACES {
        let mut stream = client_sending(address, request.as_bytes()).await;
        assert!(
            answered_ok(&mut stream).await,
            "a keep-alive client was not answered"
        );
        idle.push(stream);
    }
    let mut newcomer = client_sending(address, request.as_bytes()).await;
    assert!(
        answered_ok(&mut newcomer).await,
        "a new client got no place while {PLACES} idle keep-alive clients held them all"
    );
    for stream in &mut idle {
        assert!(
            closed(stream).await,
            "an idle keep-alive connection stayed open under pressure"
        );
    }
    // Shutdown: the newcomer's idle connection closes now, and the server stops.
    let _ = stop.send(());
    assert!(
        closed(&mut newcomer).await,
        "an idle connection stayed open at shutdown"
    );
    assert!(
        tokio::time::timeout(std::time::Duration::from_secs(5), server)
            .await
            .is_ok(),
        "the server did not stop"
    );
}

/// A client must send a request's head within the head time limit (30 s; shortened here): a
/// head still incomplete, or an idle keep-alive connection that sends none, is cut off by the
/// limit and not much before it, while a head sent slowly but in time is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_head_must_come_within_the_time_limit() {
    use std::time::{Duration, Instant};
    use tokio::io::AsyncWriteExt;
    const LIMIT: Duration = Duration::from_millis(600);
    let ws = Workspace::new();
    let (address, _server) = crate::support::serve(api_state(&ws).with_head_timeout(LIMIT)).await;
    let head = format!("GET /api/v1/health HTTP/1.1\r\nHost: {address}\r\n\r\n");
    let cut = |after: Option<Duration>, what: &str| {
        let after = after.unwrap_or_else(|| panic!("{what}: still open after 5 s"));
        assert!(
            after >= LIMIT.mul_f64(0.7) && after <= LIMIT + Duration::from_millis(900),
            "{what}: cut off after {after:?} (limit {LIMIT:?})"
        );
    };
    // Half a head, then nothing.
    let started = Instant::now();
    let mut stalled = client_sending(address, &head.as_bytes()[..20]).await;
    cut(
        closed_after(&mut stalled, started).await,
        "a half-sent head",
    );
    // One request answered, then an idle keep-alive connection.
    let mut idle = client_sending(address, head.as_bytes()).await;
    assert!(
        answered_ok(&mut idle).await,
        "a whole head was not answered"
    );
    let answered = Instant::now();
    cut(
        closed_after(&mut idle, answered).await,
        "an idle keep-alive connection",
    );
    // A head in three pieces, the last well within the limit: answered.
    let mut pieces = head.as_bytes().chunks(head.len() / 3 + 1);
    let mut slow = client_sending(address, pieces.next().unwrap_or_default()).await;
    for piece in pieces {
        tokio::time::sleep(LIMIT / 6).await;
        slow.write_all(piece)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }
    assert!(
        answered_ok(&mut slow).await,
        "a slow head sent in time was not answered"
    );
}

#[tokio::test]
async fn response_encodings_are_decoded_or_named() {
    let stub = crate::support::start_stub().await;
    let ws = Workspace::new();
    let mapping = |path: &str| {
        profile_text(
            &stub.url(path),
            "[devices]\nroot_names = '\"value\"'\nstrings = 'JSON(input, \"email\")'",
        )
    };
    ws.write_profile("gzip", &mapping("/gzip"));
    ws.write_profile("binary", &mapping("/binary"));
    ws.write_profile(
        "latin1",
        &profile_text(
            &stub.url("/latin1"),
            "[devices]\nroot_names = '\"city\"'\nstrings = 'JSON(input, \"city\")'",
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("gzip", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(record.changes[0].device.string, "gz@example.com");
    let record = engine
        .run("latin1", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(record.changes[0].device.string, "Zürich");
    let record = engine
        .run("binary", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert!(
        record.errors[0].message.contains("not UTF-8")
            && record.errors[0].message.contains("offset 10"),
        "{:?}",
        record.errors
    );
    assert!(record.changes.is_empty());
}

/// `"` or `}` in the action text cannot add fields to a JSON body; a line break cannot start a
/// second header; a URL that carries the action text does not send it as the body too.
#[tokio::test]
async fn action_text_cannot_escape_its_place_in_a_request() {
    let stub = crate::support::start_stub().await;
    let ws = Workspace::new();
    let post = |body: &str, headers: &str| {
        format!(
            "version = 1\n[request]\nmethod = \"POST\"\nurl = \"{}\"\n{headers}\n{body}\n",
            stub.url("/echo")
        )
    };
    ws.write_profile(
        "json",
        &post(
            r#"body = { kind = "json", template = '{"name": "${input}", "value": ${input}, "n": ${Length(input)}, "raw": ${ParseJSON("[1, true]")}}' }"#,
            "",
        ),
    );
    ws.write_profile(
        "header",
        &post("", r#"headers = { "X-Note" = "${input}" }"#),
    );
    ws.write_profile(
        "in-url",
        &format!(
            "version = 1\n[request]\nmethod = \"POST\"\nurl = \"{}\"\n",
            stub.url("/echo?q=${input}")
        ),
    );
    let engine = ws.engine();
    let hostile = r#"x", "admin": true, "y": "}"#;
    let record = engine
        .run("json", hostile)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    let sent = stub.seen().pop().map(|r| r.body).unwrap_or_default();
    let body: serde_json::Value =
        serde_json::from_str(&sent).unwrap_or_else(|e| panic!("{e}: {sent}"));
    assert_eq!(body["name"], hostile);
    assert_eq!(body["value"], hostile);
    assert_eq!(body["n"], hostile.chars().count());
    assert_eq!(body["raw"], serde_json::json!([1, true]));
    assert!(body.get("admin").is_none(), "{sent}");
    let record = engine
        .run("header", "fine\r\nX-Injected: yes")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert!(
        record.errors[0].message.contains("line break"),
        "{:?}",
        record.errors
    );
    assert_eq!(
        stub.seen().len(),
        1,
        "a request with a broken header was sent"
    );
    let record = engine
        .run("in-url", "lights on")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    let seen = stub.seen().pop().unwrap_or_else(|| panic!("nothing sent"));
    assert_eq!(seen.query, "q=lights%20on");
    assert_eq!(seen.body, "", "the action text went into the body too");
}

/// A JSONPath over a large response is evaluated off the async workers: on a one-thread runtime,
/// a ticker task keeps ticking while the run maps the response.
#[tokio::test(flavor = "current_thread")]
async fn mapping_a_large_response_does_not_stall_other_tasks() {
    // The API runs on its own thread and runtime, so this runtime has only the engine to run.
    let items: Vec<serde_json::Value> = (0..150_000)
        .map(|n| serde_json::json!({"v": n % 10, "name": format!("item {n}")}))
        .collect();
    let body = serde_json::json!({ "items": items }).to_string();
    let (address_tx, address_rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap_or_else(|e| panic!("{e}"));
        runtime.block_on(async move {
            let route = warp::path("big").map(move || {
                warp::reply::with_header(body.clone(), "content-type", "application/json")
            });
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .unwrap_or_else(|e| panic!("{e}"));
            let _ = address_tx.send(listener.local_addr().unwrap_or_else(|e| panic!("{e}")));
            let server = warp::serve(route).incoming(listener).run();
            tokio::time::timeout(std::time::Duration::from_secs(60), server).await
        })
    });
    let address = address_rx
        .recv_timeout(std::time::Duration::from_secs(10))
        .unwrap_or_else(|e| panic!("{e}"));
    let ws = Workspace::new();
    ws.write_profile(
        "big",
        &profile_text(
            &format!("http://{address}/big"),
            "[devices]\nroot_names = '\"count\"'\nvalues = 'Length(JSON(input, \"$.items[?(@.v > 5)].name\"))'",
        )
        .replace("timeout_secs = 3", "timeout_secs = 30"),
    );
    let engine = ws.engine();
    let ticks = std::sync::Arc::new(std::sync::Mutex::new(Vec::<std::time::Instant>::new()));
    let ticker = {
        let ticks = ticks.clone();
        tokio::spawn(async move {
            loop {
                if let Ok(mut ticks) = ticks.lock() {
                    ticks.push(std::time::Instant::now());
                }
                tokio::time::sleep(std::time::Duration::from_millis(10)).await;
            }
        })
    };
    let started = std::time::Instant::now();
    let record = engine
        .run("big", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let took = started.elapsed();
    ticker.abort();
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(record.changes[0].device.value, 60_000.0);
    let ticks = ticks.lock().map(|t| t.clone()).unwrap_or_default();
    let longest_gap = ticks
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(took);
    assert!(
        longest_gap < took / 2,
        "the runtime stalled for {longest_gap:?} of a {took:?} run"
    );
}

#[tokio::test]
async fn a_profile_may_choose_the_legacy_callback_page() {
    let ws = Workspace::new();
    let key = bellhop::tokens::load_or_create_key(&ws.path().join("token.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    let store = std::sync::Arc::new(
        bellhop::tokens::TokenStore::open(&ws.path().join("data/tokens"), &key)
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let source =
        bellhop::engine::ProfileSource::new(ws.profiles_dir(), None).with_vault(store.clone());
    let base = url::Url::parse("http://hub.example:8765/").unwrap_or_else(|e| panic!("{e}"));
    let authorizer = bellhop::engine::authorization::Authorizer::new(
        store,
        base,
        std::time::Duration::from_secs(60),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let engine = bellhop::engine::Engine::new(source.load(), Some(source), ws.hub())
        .unwrap_or_else(|e| panic!("{e}"))
        .with_authorizer(std::sync::Arc::new(authorizer));
    let routes = bellhop::web::routes(bellhop::web::AppState::new(std::sync::Arc::new(engine)));
    // Before anything is saved, the UI learns the URLs Bellhop will send (public base URL).
    let (_, ui) = call(&routes, "GET", "/api/v1/ui", None).await;
    assert_eq!(
        ui["callback_urls"]["standard"],
        "http://hub.example:8765/oauth2/callback"
    );
    assert_eq!(
        ui["callback_urls"]["legacy"],
        "http://hub.example:8765/oauth2_callback.html"
    );
    let form = serde_json::json!({
        "name": "old", "url": "https://api.example.com/me", "auth_mode": "oauth2",
        "client_id": "id", "authorize_url": "https://auth.example.com/a",
        "token_url": "https://auth.example.com/t", "legacy_callback": true
    });
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/old", Some(form)).await;
    assert_eq!(status, 200, "{body}");
    let (_, detail) = call(&routes, "GET", "/api/v1/profiles/old/form", None).await;
    assert_eq!(
        detail["redirect_uri"],
        "http://hub.example:8765/oauth2_callback.html"
    );
    assert_eq!(detail["form"]["legacy_callback"], true);
    let file = std::fs::read_to_string(ws.profiles_dir().join("old.toml")).unwrap_or_default();
    assert!(file.contains("callback = \"legacy\""), "{file}");
}

/// A profile that names a provider shows the provider's values as the provider's (empty
/// fields), saves byte for byte unchanged, and switching the provider writes that key only.
#[tokio::test]
async fn the_editor_leaves_a_providers_values_to_the_provider() {
    let ws = Workspace::new();
    let text = "# Zoho, EU\nversion = 1\n[request]\nurl = '${Token(\"api_domain\")}/bigin/v2/users'\n\n[auth.oauth2]\nprovider = \"zoho-eu\"  # the data centre\nclient_id = \"1000.ABC\"\n\n[devices]\nroot_names = '\"user\"'\nvalues = '0'\n";
    let file = ws.write_profile("zoho", text);
    let routes = bellhop::web::routes(api_state(&ws));
    let (status, detail) = call(&routes, "GET", "/api/v1/profiles/zoho/form", None).await;
    assert_eq!(status, 200, "{detail}");
    let mut form = detail["form"].clone();
    assert_eq!(form["provider"], "zoho-eu");
    for inherited in [
        "authorize_url",
        "token_url",
        "scopes",
        "client_auth",
        "header_template",
        "extra_authorize_params",
        "grant",
    ] {
        assert_eq!(form[inherited], "", "{inherited} is the provider's");
    }
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/zoho", Some(form.clone())).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["outcome"], "unchanged");
    assert_eq!(std::fs::read_to_string(&file).unwrap_or_default(), text);
    form["provider"] = serde_json::json!("zoho-us");
    let (status, body) = call(&routes, "PUT", "/api/v1/profiles/zoho", Some(form)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        std::fs::read_to_string(&file).unwrap_or_default(),
        text.replace("\"zoho-eu\"", "\"zoho-us\"")
    );
    // The schema's provider select lists the definitions.
    let (_, schema) = call(&routes, "GET", "/api/v1/schema", None).await;
    let provider = schema["profile"]["fields"]
        .as_array()
        .and_then(|fields| fields.iter().find(|f| f["key"] == "provider"))
        .cloned()
        .unwrap_or_default();
    assert!(
        provider["choices"]
            .as_array()
            .is_some_and(|c| c.iter().any(|choice| choice[0] == "tado")),
        "{provider}"
    );
}

#[tokio::test]
async fn the_providers_are_listed_with_their_grants() {
    let ws = Workspace::new();
    let routes = bellhop::web::routes(api_state(&ws));
    let (status, body) = call(&routes, "GET", "/api/v1/providers", None).await;
    assert_eq!(status, 200, "{body}");
    let list = body["providers"].as_array().cloned().unwrap_or_default();
    let find = |id: &str| {
        list.iter()
            .find(|p| p["id"] == id)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find("tado")["grants"], serde_json::json!(["device_code"]));
    assert_eq!(
        find("zoho-eu")["token_url"],
        "https://accounts.zoho.eu/oauth/v2/token"
    );
    assert_eq!(find("garmin")["oauth_version"], "1.0a");
    assert!(list.len() >= 22, "{}", list.len());
}

/// A JSON body of about 1 MiB nested 120 deep: each level holds a number, 1,700 more and the
/// next level.
fn deep_body() -> String {
    let mut body = String::from("{\"temp\":21.5}");
    let pad: Vec<String> = (1000..2700).map(|n| n.to_string()).collect();
    let pad = pad.join(",");
    for level in 0..119 {
        body = format!("{{\"temp\":{level},\"pad\":[{pad}],\"next\":{body}}}");
    }
    body
}

/// Runs `bellhop eval` on `input`; its exit code, what it printed and its peak memory (KiB).
/// The peak is read by a small Python parent (`getrusage` of its children): a child forked
/// from this large test process would count the pages it shares with it until it execs.
fn eval_with_peak(expression: &str, input: &std::path::Path) -> (i32, String, i64) {
    const MEASURE: &str = "import resource, subprocess, sys\nr = subprocess.run(sys.argv[1:], capture_output=True, text=True)\nprint(r.returncode)\nprint(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\nsys.stdout.write(r.stdout + r.stderr)\n";
    let output = std::process::Command::new("python3")
        .args([
            "-c",
            MEASURE,
            env!("CARGO_BIN_EXE_bellhop"),
            "eval",
            expression,
            "--input",
        ])
        .arg(input)
        .env_remove("BELLHOP_CONFIG")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("python3 is needed to measure a child's memory: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).to_string();
    let mut lines = text.splitn(3, '\n');
    let code = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(-1);
    let peak = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .unwrap_or(i64::MAX);
    (code, lines.next().unwrap_or_default().to_string(), peak)
}

/// An attack run found that a recursive JSONPath copies every subtree once per ancestor: one
/// 1 MiB body nested 120 deep drove memory to 1.87 GB. The work is bounded before it is done:
/// the evaluation says why it refused, and the process stays small.
#[test]
fn recursive_jsonpath_over_a_deep_body_is_refused_within_bounded_memory() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let deep = dir.path().join("deep.json");
    let body = deep_body();
    assert!(body.len() > 1_000_000, "{}", body.len());
    std::fs::write(&deep, &body).unwrap_or_else(|e| panic!("{e}"));
    for query in ["$..*", "$..temp", "$..next", "$..[*]"] {
        let (code, printed, peak_kib) = eval_with_peak(&format!("JSON(input, \"{query}\")"), &deep);
        assert_eq!(code, 1, "{query}: {printed}");
        assert!(printed.contains("recursive JSONPath"), "{query}: {printed}");
        assert!(peak_kib < 150 * 1024, "{query}: peak {peak_kib} KiB");
    }
    // Two descents multiply the work again: refused when the expression compiles.
    let (code, printed, _) = eval_with_peak("JSON(input, \"$..next..temp\")", &deep);
    assert_eq!(code, 1, "{printed}");
    assert!(printed.contains("at most 1 recursive descent"), "{printed}");
    // Naming the levels works on the same body, and `..` on an ordinary one.
    let (code, printed, _) = eval_with_peak("Count(JSON(input, \"$.pad[*]\"))", &deep);
    assert_eq!(
        (code, printed.lines().next()),
        (0, Some("1700")),
        "{printed}"
    );
    let small = dir.path().join("small.json");
    std::fs::write(
        &small,
        r#"{"rooms":[{"temp":1},{"temp":2,"inner":{"temp":3}}]}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let (code, printed, _) = eval_with_peak("JSON(input, \"$..temp\")", &small);
    assert_eq!(code, 0, "{printed}");
    assert!(printed.starts_with("1,2,3"), "{printed}");
}

/// The sign-in throttle counts per client address, taken from the socket: twenty wrong guesses
/// from 127.0.0.2 do not lock the admin at 127.0.0.1 out, and a forwarded address from a client
/// that is not a trusted proxy changes nothing.
#[tokio::test]
async fn wrong_sign_ins_from_one_address_do_not_lock_out_another() {
    let ws = Workspace::new();
    let token = "an-admin-token-0123456";
    let (address, _stop) = crate::support::serve(api_state(&ws).with_edge(
        bellhop::web::Edge::loopback().with_admin_token(Some(bellhop::secret::Secret::new(token))),
    ))
    .await;
    let client_from = |ip: [u8; 4]| {
        reqwest::Client::builder()
            .local_address(std::net::IpAddr::from(ip))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .unwrap_or_else(|e| panic!("{e}"))
    };
    let sign_in = |client: &reqwest::Client, guess: &str| {
        client
            .post(format!("http://{address}/login"))
            .header("x-forwarded-for", "127.0.0.1")
            .form(&[("token", guess)])
            .send()
    };
    let attacker = client_from([127, 0, 0, 2]);
    let mut limited = 0;
    for _ in 0..20 {
        let answer = sign_in(&attacker, "guess")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if answer.status() == 429 {
            limited += 1;
        }
    }
    assert!(limited >= 14, "the attacker is slowed down: {limited}");
    let admin = client_from([127, 0, 0, 1]);
    let answer = sign_in(&admin, token)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(answer.status(), 303, "the admin signs in");
    assert!(answer
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .is_some_and(|c| c.starts_with("bellhop_session=")));
}

/// Sends `head` (a request's head, lines joined by CRLF, without the final blank line) and
/// `body` over a fresh connection; returns the status and the body of the answer.
async fn raw_exchange(address: std::net::SocketAddr, head: &str, body: &str) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(address)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let request = format!("{head}\r\nconnection: close\r\n\r\n{body}");
    stream
        .write_all(request.as_bytes())
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut answer = Vec::new();
    stream
        .read_to_end(&mut answer)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let answer = String::from_utf8_lossy(&answer).to_string();
    let status = answer
        .get(9..12)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("no status in {answer:?}"));
    let body = answer
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_string())
        .unwrap_or_default();
    (status, body)
}

/// Sends one request both ways: over a socket to `address` (where the shortcut may take it) and
/// through `routes` (the filters). Returns the socket's status and body, then the filters' answer.
/// A Host of the server's own is added unless `lines` (head lines, `name: value`) carry one.
async fn over_socket_and_filters<F>(
    address: std::net::SocketAddr,
    routes: &F,
    (method, target): (&str, &str),
    lines: &[String],
    body: &str,
) -> ((u16, String), warp::http::Response<bytes::Bytes>)
where
    F: warp::Filter + 'static,
    F::Extract: warp::Reply + Send,
{
    let mut head = format!("{method} {target} HTTP/1.1");
    let mut filtered = warp::test::request().method(method).path(target).body(body);
    if !lines.iter().any(|l| l.starts_with("host:")) {
        head.push_str("\r\nhost: 127.0.0.1:8765");
        filtered = filtered.header("host", "127.0.0.1:8765");
    }
    for line in lines {
        head.push_str("\r\n");
        head.push_str(line);
        let (name, value) = line.split_once(": ").unwrap_or_else(|| panic!("{line}"));
        filtered = filtered.header(name, value.as_bytes());
    }
    head.push_str(&format!("\r\ncontent-length: {}", body.len()));
    let over_socket = raw_exchange(address, &head, body).await;
    (over_socket, filtered.reply(routes).await)
}

/// The action route is answered ahead of the filter tree over a socket (the shortcut in
/// `web::shortcut`): every request answers there as the filters answer it — the refusals of the
/// edge, each body error with its wording, and a run.
#[tokio::test]
async fn the_action_route_answers_over_a_socket_as_the_filters_do() {
    let ws = Workspace::new();
    let stub = crate::support::start_stub().await;
    ws.write_profile(
        "email",
        &crate::support::profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    let token = "an-admin-token-0123456";
    let state = api_state(&ws).with_edge(
        bellhop::web::Edge::loopback().with_admin_token(Some(bellhop::secret::Secret::new(token))),
    );
    let routes = bellhop::web::routes(state.clone());
    let (address, _stop) = crate::support::serve(state).await;
    let run = r#"{"profile":"email"}"#;
    let bearer = format!("authorization: Bearer {token}");
    let big = format!(r#"{{"profile":"email","text":"{}"}}"#, "x".repeat(1 << 20));
    // (what, head lines after the request line, body)
    let cases: Vec<(&str, Vec<String>, String)> = vec![
        (
            "a run",
            vec![bearer.clone(), "content-type: application/json".into()],
            run.into(),
        ),
        ("no content type", vec![bearer.clone()], run.into()),
        (
            "JSON with a charset",
            vec![
                bearer.clone(),
                "content-type: application/json; charset=utf-8".into(),
            ],
            run.into(),
        ),
        (
            "an unknown profile",
            vec![bearer.clone()],
            r#"{"profile":"nobody"}"#.into(),
        ),
        (
            "no admin token",
            vec!["content-type: application/json".into()],
            run.into(),
        ),
        (
            "a wrong admin token",
            vec!["authorization: Bearer guess".into()],
            run.into(),
        ),
        (
            "a foreign host",
            vec!["host: rebind.evil.example".into(), bearer.clone()],
            run.into(),
        ),
        (
            "a foreign origin",
            vec![bearer.clone(), "origin: https://ads.example".into()],
            run.into(),
        ),
        (
            "a session cookie that is not one",
            vec!["cookie: bellhop_session=forged".into()],
            run.into(),
        ),
        (
            "text",
            vec![bearer.clone(), "content-type: text/plain".into()],
            run.into(),
        ),
        ("not JSON", vec![bearer.clone()], "{\"profile\":".into()),
        (
            "the wrong JSON",
            vec![bearer.clone()],
            r#"{"profil":"email"}"#.into(),
        ),
        ("too large", vec![bearer.clone()], big),
        (
            "a header that is not text",
            vec![bearer.clone(), "origin: http://\u{e9}.example".into()],
            run.into(),
        ),
    ];
    for (what, lines, body) in &cases {
        let ((status, answer), expected) = over_socket_and_filters(
            address,
            &routes,
            ("POST", "/api/v1/actions/run"),
            lines,
            body,
        )
        .await;
        let expected_body = String::from_utf8_lossy(expected.body()).to_string();
        assert_eq!(status, expected.status().as_u16(), "{what}: {answer}");
        // A run's record differs in its times only (and in its changes: the second run of the
        // pair finds the device set already).
        let without_times = |text: &str| {
            serde_json::from_str::<serde_json::Value>(text)
                .map(|mut v| {
                    for field in ["started_at", "duration_ms", "changes"] {
                        v.as_object_mut().map(|o| o.remove(field));
                    }
                    if let Some(exchanges) = v.get_mut("exchanges").and_then(|e| e.as_array_mut()) {
                        for exchange in exchanges {
                            exchange.as_object_mut().map(|o| o.remove("duration_ms"));
                        }
                    }
                    v.to_string()
                })
                .unwrap_or_else(|_| text.to_string())
        };
        assert_eq!(
            without_times(&answer),
            without_times(&expected_body),
            "{what}"
        );
    }
    // A body sent in chunks, without a length, is refused as the filters refuse it.
    let head = format!("POST /api/v1/actions/run HTTP/1.1\r\nhost: 127.0.0.1:8765\r\n{bearer}\r\ntransfer-encoding: chunked");
    let chunked = format!("{:x}\r\n{run}\r\n0\r\n\r\n", run.len());
    let (status, answer) = raw_exchange(address, &head, &chunked).await;
    assert_eq!(status, 411, "{answer}");
    // The runs went through: the stub was called by each admitted run.
    let admitted = cases
        .iter()
        .filter(|(what, ..)| {
            what.starts_with("a run") || what.starts_with("no content") || what.starts_with("JSON")
        })
        .count();
    assert_eq!(
        stub.seen().len(),
        2 * admitted,
        "each admitted run calls the API once, over the socket and in the filters"
    );
}

/// Listening paths are answered ahead of the filter tree over a socket (`web::shortcut`) as the
/// filters answer them: calls with and without their token, a body over the path's limit, a
/// method the paths do not take, an unknown path, input the devices cannot take, and the edge's
/// refusals.
#[tokio::test]
async fn listening_paths_answer_over_a_socket_as_the_filters_do() {
    let ws = Workspace::new();
    ws.write_profile(
        "hall",
        "version = 1\nlisten = \"/hall\"\n[incoming]\nmax_per_second = 10000\n[devices]\nroot_names = '\"hall\"'\nvalues = 'ParseNumber(Query(input, \"t\"))'\n",
    );
    ws.write_profile(
        "door",
        "version = 1\nlisten = \"/door\"\n[incoming]\ntoken = \"a-door-token-0123456789\"\nreply = 'door is ${Upper(input)}'\nmax_body_bytes = 64\nmax_per_second = 10000\n[devices]\nroot_names = '\"door\"'\nstrings = 'input'\n",
    );
    let state = api_state(&ws);
    let engine = state.engine.clone();
    let routes = bellhop::web::routes(state.clone());
    let (address, _stop) = crate::support::serve(state).await;
    let token = "x-bellhop-token: a-door-token-0123456789".to_string();
    // (what, method, path and query, head lines after the request line, body)
    let cases: Vec<(&str, &str, &str, Vec<String>, String)> = vec![
        ("a reading", "GET", "/in/hall?t=21.5", vec![], String::new()),
        (
            "a body",
            "POST",
            "/in/door",
            vec![token.clone()],
            "open".into(),
        ),
        (
            "a PUT",
            "PUT",
            "/in/door",
            vec![token.clone()],
            "shut".into(),
        ),
        (
            "the token in the query",
            "GET",
            "/in/door?token=a-door-token-0123456789",
            vec![],
            String::new(),
        ),
        (
            "a bearer token",
            "POST",
            "/in/door",
            vec!["authorization: Bearer a-door-token-0123456789".into()],
            "ajar".into(),
        ),
        ("no token", "POST", "/in/door", vec![], "open".into()),
        (
            "a wrong token",
            "POST",
            "/in/door",
            vec!["x-bellhop-token: guess".into()],
            "open".into(),
        ),
        (
            "over the path's limit",
            "POST",
            "/in/door",
            vec![token.clone()],
            "x".repeat(65),
        ),
        (
            "input the devices cannot take",
            "GET",
            "/in/hall?t=warm",
            vec![],
            String::new(),
        ),
        (
            "a method not taken",
            "DELETE",
            "/in/hall",
            vec![],
            String::new(),
        ),
        (
            "an unknown path",
            "GET",
            "/in/cellar?t=1",
            vec![],
            String::new(),
        ),
        ("the base alone", "GET", "/in", vec![], String::new()),
        (
            "a path beside the base",
            "GET",
            "/inside?t=1",
            vec![],
            String::new(),
        ),
        (
            "a foreign host",
            "GET",
            "/in/hall?t=1",
            vec!["host: rebind.evil.example".into()],
            String::new(),
        ),
        (
            "a foreign origin",
            "POST",
            "/in/door",
            vec![token.clone(), "origin: https://ads.example".into()],
            "open".into(),
        ),
        (
            "a header that is not text",
            "GET",
            "/in/hall?t=1",
            vec!["origin: http://\u{e9}.example".into()],
            String::new(),
        ),
    ];
    for (what, method, target, lines, body) in &cases {
        let ((status, answer), expected) =
            over_socket_and_filters(address, &routes, (method, target), lines, body).await;
        assert_eq!(status, expected.status().as_u16(), "{what}: {answer}");
        assert_eq!(answer, String::from_utf8_lossy(expected.body()), "{what}");
    }
    // The calls were taken: the door holds the last body sent with its token (each case ran
    // over the socket, then through the filters).
    let door = engine
        .hub()
        .find(&bellhop::devices::DeviceKey::root("door", "door"))
        .map(|d| d.string);
    assert_eq!(door.as_deref(), Some("ajar"));
}
