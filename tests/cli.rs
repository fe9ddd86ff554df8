//! The `bellhop` binary as users run it: `check`, `run`, `devices`, `eval`, and `serve` kept
//! alive through bad input and killed mid-write without losing acknowledged devices.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::{profile_text, start_stub, Workspace};

fn bellhop() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_bellhop"));
    command
        .env_remove("BELLHOP_CONFIG")
        .env_remove("BELLHOP_LOG")
        .stdin(Stdio::null());
    command
}

/// Writes a plugin.toml for the workspace and returns its path.
fn settings(ws: &Workspace, listen: &str) -> PathBuf {
    let path = ws.path().join("plugin.toml");
    let text = format!(
        "[web]\nlisten = \"{listen}\"\n[paths]\ndata_dir = \"{data}\"\nprofiles_dir = \"{profiles}\"\nevents_dir = \"{events}\"\nsecrets_file = \"{data}/secrets.toml\"\n[oauth]\nkey_file = \"{data}/token.key\"\n[devices]\ncommit_window_ms = 20\n",
        data = ws.path().join("data").display(),
        profiles = ws.profiles_dir().display(),
        events = ws.path().join("events").display(),
    );
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("{e}"));
    path
}

fn run(config: &Path, args: &[&str]) -> Output {
    bellhop()
        .arg("--config")
        .arg(config)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("cannot run bellhop: {e}"))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[test]
fn check_lists_every_error_of_a_broken_folder() {
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    ws.write_profile("fine", &profile_text("http://127.0.0.1:1/x", ""));
    ws.write_profile("syntax", "[request\nurl = 1\n");
    ws.write_profile(
        "function",
        "[request]\nurl = \"http://h/\"\n[devices]\nroot_names = 'Nope(1)'\n",
    );
    ws.write_profile("key", "[request]\nurl = \"http://h/\"\nmethd = \"GET\"\n");
    let output = run(&config, &["check"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(1), "{printed}");
    assert!(printed.contains("syntax.toml:1: error"), "{printed}");
    assert!(
        printed.contains(
            "function.toml:4: error in `devices.root_names` at column 1: unknown function `Nope`"
        ),
        "{printed}"
    );
    assert!(
        printed.contains("key.toml:3: error in `request.methd`"),
        "{printed}"
    );
    assert!(
        printed.contains("1 profile(s) loaded") && printed.contains("3 error(s)"),
        "{printed}"
    );

    std::fs::remove_file(ws.profiles_dir().join("syntax.toml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(ws.profiles_dir().join("function.toml")).unwrap_or_else(|e| panic!("{e}"));
    std::fs::remove_file(ws.profiles_dir().join("key.toml")).unwrap_or_else(|e| panic!("{e}"));
    let output = run(&config, &["check"]);
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
}

#[test]
fn a_broken_settings_file_is_named() {
    let ws = Workspace::new();
    let config = ws.path().join("plugin.toml");
    std::fs::write(&config, "[web]\nlisten = 8765\n").unwrap_or_else(|e| panic!("{e}"));
    let output = run(&config, &["check"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(text(&output).contains("plugin.toml"), "{}", text(&output));
}

#[tokio::test]
async fn run_creates_devices_that_devices_lists() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    ws.write_profile(
        "rooms",
        &profile_text(
            &stub.url("/rooms"),
            "[devices]\nroot_names = '\"House\"'\nfeature_names = 'JSON(input, \"rooms[*].name\")'\nvalues = 'JSON(input, \"rooms[*].temp\")[index]'",
        ),
    );
    let config_for_blocking = config.clone();
    let output = tokio::task::spawn_blocking(move || run(&config_for_blocking, &["run", "rooms"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("Created #2 House / Kitchen: value 21.5"),
        "{printed}"
    );
    let listing = text(&run(&config, &["devices"]));
    assert!(
        listing.contains("House / Attic") && listing.contains("12.25"),
        "{listing}"
    );
    let runs = text(&run(&config, &["runs", "rooms"]));
    assert!(runs.contains("rooms — ok"), "{runs}");
}

#[test]
fn eval_prints_the_result_or_points_at_the_error() {
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    let input = ws.path().join("input.json");
    std::fs::write(&input, r#"{"a":{"b":[5,6]}}"#).unwrap_or_else(|e| panic!("{e}"));
    let input_arg = input.display().to_string();
    let output = run(
        &config,
        &["eval", "JSON(input, \"a.b[1]\") * 7", "--input", &input_arg],
    );
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    assert_eq!(String::from_utf8_lossy(&output.stdout).trim(), "42");
    let output = run(&config, &["eval", "1 + (2 *"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(text(&output).contains("^ column 9"), "{}", text(&output));
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(config: &Path) -> Server {
    let mut child = bellhop()
        .arg("--config")
        .arg(config)
        .arg("serve")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start serve: {e}"));
    let stderr = child.stderr.take().unwrap_or_else(|| panic!("no stderr"));
    let (sender, receiver) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            if let Some(at) = line.find("address=") {
                let address: String = line[at + 8..]
                    .split_whitespace()
                    .next()
                    .unwrap_or("")
                    .to_string();
                let _ = sender.send(address);
            }
        }
    });
    let address = receiver
        .recv_timeout(Duration::from_secs(20))
        .unwrap_or_else(|_| panic!("serve did not report its address"));
    Server { child, address }
}

#[tokio::test]
async fn serve_keeps_serving_through_bad_input_and_a_kill_loses_no_acknowledged_device() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    ws.write_profile(
        "echo",
        &format!(
            "version = 1\n[request]\nurl = \"{}?${{input}}\"\n\n[devices]\nroot_names = '\"dev-\" + JSON(input, \"query\")'\nvalues = 'Length(input)'\n",
            stub.url("/echo")
        ),
    );
    ws.write_profile(
        "broken",
        &profile_text(
            &stub.url("/html"),
            "[devices]\nroot_names = '\"x\"'\nvalues = 'JSON(input, \"a\")'",
        ),
    );
    let server = start_server(&config);
    let base = format!("http://{}", server.address);
    let client = reqwest::Client::new();
    let health = || async {
        client
            .get(format!("{base}/api/v1/health"))
            .send()
            .await
            .map(|r| r.status().as_u16())
            .unwrap_or(0)
    };
    assert_eq!(health().await, 200);

    // Bad input of every kind, then the server still answers.
    let bad_json = client
        .post(format!("{base}/api/v1/actions/run"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(bad_json.ok(), Some(400));
    // Its own client: the server may close that connection, which must not fail later requests.
    let too_large = reqwest::Client::new()
        .post(format!("{base}/api/v1/eval"))
        .header("content-type", "application/json")
        .body(vec![b' '; 2 * 1024 * 1024])
        .send()
        .await
        .map(|r| r.status().as_u16());
    // The server refuses the body (413), possibly closing the connection while it is sent.
    assert!(
        too_large.as_ref().map_or(true, |status| *status == 413),
        "{too_large:?}"
    );
    let failing: serde_json::Value = client
        .post(format!("{base}/api/v1/actions/run"))
        .json(&serde_json::json!({"profile": "broken"}))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    assert_eq!(failing["ok"], false);
    assert_eq!(health().await, 200);

    // Create devices as fast as runs are acknowledged; kill the server in the middle.
    let mut acknowledged = Vec::new();
    let started = Instant::now();
    let mut server = server;
    for n in 0..400 {
        let response = client
            .post(format!("{base}/api/v1/actions/run"))
            .json(&serde_json::json!({"profile": "echo", "text": format!("{n}")}))
            .send()
            .await;
        let Ok(response) = response else { break };
        let record: serde_json::Value = response.json().await.unwrap_or_default();
        if record["ok"] == true {
            acknowledged.push(format!("dev-{n}"));
        }
        if n == 150 {
            let _ = server.child.kill();
        }
        if started.elapsed() > Duration::from_secs(60) {
            break;
        }
    }
    let _ = server.child.wait();
    assert!(
        acknowledged.len() >= 100,
        "too few runs before the kill: {}",
        acknowledged.len()
    );

    // The store opens cleanly and holds every device whose creation was acknowledged.
    let hub = bellhop::devices::DeviceHub::open(&ws.store_path(), Duration::from_millis(10))
        .unwrap_or_else(|e| panic!("the store does not open after a kill: {e}"));
    for name in &acknowledged {
        let found = hub.find(&bellhop::devices::DeviceKey::root("echo", name.as_str()));
        assert!(found.is_some(), "{name} was acknowledged but is gone");
    }
    let connection = rusqlite::Connection::open(ws.store_path()).unwrap_or_else(|e| panic!("{e}"));
    let integrity: String = connection
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(integrity, "ok");
}

#[test]
fn serve_refuses_to_listen_beyond_loopback_without_an_admin_token() {
    let ws = Workspace::new();
    let config = settings(&ws, "0.0.0.0:0");
    let output = run(&config, &["serve"]);
    assert_eq!(output.status.code(), Some(2), "{}", text(&output));
    assert!(text(&output).contains("admin_token"), "{}", text(&output));
}

/// `bellhop run` while `serve` owns the store hands the action to the server, with the admin
/// token when one is set; the server's log never shows the token.
#[tokio::test]
async fn run_hands_the_action_to_a_guarded_server_with_the_admin_token() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = settings(&ws, &format!("127.0.0.1:{port}"));
    let token = "guard-token-0123456789abcdef";
    let guarded = std::fs::read_to_string(&config)
        .unwrap_or_default()
        .replace("[web]\n", &format!("[web]\nadmin_token = \"{token}\"\n"));
    std::fs::write(&config, guarded).unwrap_or_else(|e| panic!("{e}"));
    ws.write_profile(
        "user",
        &profile_text(
            &stub.url("/user"),
            "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'",
        ),
    );
    let mut server = start_server(&config);
    // Without the token the server refuses.
    let refused = reqwest::Client::new()
        .post(format!("http://{}/api/v1/actions/run", server.address))
        .json(&serde_json::json!({"profile": "user"}))
        .send()
        .await
        .map(|r| r.status().as_u16());
    assert_eq!(refused.ok(), Some(401));
    // The stub answers on this test's runtime: the CLI runs off it.
    let handed = config.clone();
    let output = tokio::task::spawn_blocking(move || run(&handed, &["run", "user"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(printed.contains("ok"), "{printed}");
    assert_eq!(stub.seen().len(), 1);
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// `bellhop fire` runs an event and prints each step: in this process when the store is free,
/// through the running server when `serve` owns it.
#[tokio::test]
async fn fire_runs_an_event_here_or_through_the_server() {
    let ws = Workspace::new();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .unwrap_or_else(|e| panic!("{e}"));
    let config = settings(&ws, &format!("127.0.0.1:{port}"));
    // `settings` names the workspace's events folder.
    let events = ws.path().join("events");
    std::fs::create_dir_all(&events).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        events.join("greet.toml"),
        "conditions = ['Length(input) > 0']\n[[action]]\nset_global = \"greeting\"\nstring = '\"hello \" + input'\n",
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let output = run(&config, &["fire", "greet", "ann"]);
    let printed = text(&output);
    assert_eq!(output.status.code(), Some(0), "{printed}");
    assert!(
        printed.contains("greet — ok") && printed.contains("set global `greeting`"),
        "{printed}"
    );
    let output = run(&config, &["fire", "greet"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    assert!(
        text(&output).contains("conditions_false"),
        "{}",
        text(&output)
    );
    let output = run(&config, &["fire", "nobody"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        text(&output).contains("no event named `nobody`"),
        "{}",
        text(&output)
    );
    // With `serve` owning the store, the event runs there.
    let mut server = start_server(&config);
    let handed = config.clone();
    let output = tokio::task::spawn_blocking(move || run(&handed, &["fire", "greet", "bob"]))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(output.status.code(), Some(0), "{}", text(&output));
    let globals: serde_json::Value =
        reqwest::get(format!("http://{}/api/v1/globals", server.address))
            .await
            .and_then(|r| r.error_for_status())
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(globals.to_string().contains("hello bob"), "{globals}");
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// `bellhop providers` lists the shipped definitions and the user's; `bellhop check` names a
/// broken definition's file and what is wrong, warns of an unknown property, and a profile
/// naming a good user definition loads.
#[test]
fn provider_definitions_from_the_users_folder_are_listed_and_checked() {
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    let providers = ws.path().join("oauth-providers");
    std::fs::create_dir_all(&providers).unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        providers.join("acme.json"),
        r#"{"profile": {"host": "auth.acme.example", "authorize_path": "/authorize", "token_path": "/token", "oauth2_scope": "read", "FavouriteColour": "teal"}, "name": "ACME Cloud"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    std::fs::write(
        providers.join("broken.json"),
        r#"{"host": "auth.broken.example", "authorize_path": "/a"}"#,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let text = std::fs::read_to_string(&config)
        .unwrap_or_default()
        .replace(
            "[paths]\n",
            &format!("[paths]\nproviders_dir = \"{}\"\n", providers.display()),
        );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    ws.write_profile(
        "acme",
        "version = 1\n[request]\nurl = \"https://api.acme.example/me\"\n[auth.oauth2]\nprovider = \"acme\"\nclient_id = \"c\"\n",
    );

    let listed = run(&config, &["providers"]);
    let stdout = String::from_utf8_lossy(&listed.stdout);
    assert!(
        stdout.contains("zoho-eu") && stdout.contains("tado") && stdout.contains("device_code"),
        "{stdout}"
    );
    assert!(
        stdout.contains("acme") && stdout.contains("ACME Cloud") && stdout.contains("(yours)"),
        "{stdout}"
    );
    assert!(
        !listed.status.success(),
        "a broken definition fails the listing's exit code"
    );

    let checked = run(&config, &["check"]);
    let all = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    assert!(
        all.contains("broken.json") && all.contains("no token endpoint"),
        "{all}"
    );
    assert!(
        all.contains("acme.json") && all.contains("FavouriteColour"),
        "{all}"
    );
    assert!(all.contains("1 profile(s) loaded"), "{all}");
}

/// The shipped demo profiles call Bellhop's own address, whatever `web.listen` says: with the
/// server on another port than 8765, the quick start's first "Run now" works.
#[tokio::test]
async fn the_demo_profiles_follow_the_servers_own_address() {
    let ws = Workspace::new();
    for name in ["demo-rooms", "demo-boxes"] {
        let shipped = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("profiles/{name}.toml"));
        std::fs::copy(&shipped, ws.profiles_dir().join(format!("{name}.toml")))
            .unwrap_or_else(|e| panic!("{e}"));
    }
    let config = settings(&ws, "127.0.0.1:0");
    let server = start_server(&config);
    assert!(!server.address.ends_with(":8765"), "{}", server.address);
    let client = reqwest::Client::new();
    for name in ["demo-rooms", "demo-boxes"] {
        let record: serde_json::Value = client
            .post(format!("http://{}/api/v1/actions/run", server.address))
            .json(&serde_json::json!({ "profile": name }))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"))
            .json()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(record["ok"], true, "{name}: {record}");
        assert!(
            record["exchanges"][0]["url"]
                .as_str()
                .is_some_and(|url| url.starts_with(&format!("http://{}/demo/", server.address))),
            "{name}: {record}"
        );
    }
}

/// `serve` on port 0 with a public base URL on port 0: the system picks the port, and the
/// redirect URIs the server gives name the port it serves on.
#[test]
fn a_public_base_url_on_port_0_follows_the_port_served() {
    let ws = Workspace::new();
    let config = settings(&ws, "127.0.0.1:0");
    let mut text = std::fs::read_to_string(&config).unwrap_or_default();
    text = text.replace(
        "[web]\n",
        "[web]\npublic_base_url = \"http://127.0.0.1:0\"\n",
    );
    std::fs::write(&config, text).unwrap_or_else(|e| panic!("{e}"));
    let server = start_server(&config);
    let ui: serde_json::Value =
        reqwest::blocking::get(format!("http://{}/api/v1/ui", server.address))
            .and_then(|r| r.json())
            .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        ui["callback_urls"]["standard"],
        format!("http://{}/oauth2/callback", server.address),
        "{ui}"
    );
}
