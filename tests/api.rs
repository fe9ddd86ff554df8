//! The REST API through `warp::test` (no socket): runs, devices, globals, the sandbox, profiles
//! with secrets redacted, reload, and one error shape for every failure.

use std::sync::Arc;

use bellhop::engine::{Engine, ProfileSource};
use bellhop::web::{routes, AppState};
use serde_json::Value;

use crate::support::{profile_text, start_stub, Workspace};

struct Api {
    state: AppState,
}

impl Api {
    fn new(ws: &Workspace) -> Api {
        let key = bellhop::tokens::load_or_create_key(&ws.path().join("token.key"))
            .unwrap_or_else(|e| panic!("{e}"));
        let vault = bellhop::tokens::TokenStore::open(&ws.path().join("data/tokens"), &key)
            .unwrap_or_else(|e| panic!("{e}"));
        let source = ProfileSource::new(ws.profiles_dir(), None).with_vault(Arc::new(vault));
        let engine =
            Engine::new(source.load(), Some(source), ws.hub()).unwrap_or_else(|e| panic!("{e}"));
        Api {
            state: AppState::new(Arc::new(engine)),
        }
    }

    /// Commits what the hub holds (history is read from the store).
    async fn flush(&self) {
        self.state
            .engine
            .flush()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
    }

    async fn call(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut request = crate::support::local_request().method(method).path(path);
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .json(&body);
        }
        let response = request.reply(&routes(self.state.clone())).await;
        let status = response.status().as_u16();
        let json = serde_json::from_slice(response.body()).unwrap_or(Value::Null);
        (status, json)
    }
}

fn assert_error_shape(body: &Value, code: &str) {
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}

/// The `discord` profile: the stub's `/user`, its `email` as a device.
fn write_email_profile(ws: &Workspace, stub: &crate::support::StubApi) {
    ws.write_profile(
        "discord",
        &profile_text(
            &stub.url("/user"),
            "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'",
        ),
    );
}

#[tokio::test]
async fn run_then_read_and_set_devices() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    write_email_profile(&ws, &stub);
    let api = Api::new(&ws);
    let (status, record) = api
        .call(
            "POST",
            "/api/v1/actions/run",
            Some(serde_json::json!({"profile": "discord", "text": ""})),
        )
        .await;
    assert_eq!(status, 200, "{record}");
    assert_eq!(record["ok"], true);
    assert_eq!(record["changes"][0]["device"]["string"], "ann@example.com");

    let (status, devices) = api.call("GET", "/api/v1/devices", None).await;
    assert_eq!(status, 200);
    let device = &devices["devices"][0];
    assert_eq!(
        (device["name"].as_str(), device["string"].as_str()),
        (Some("email"), Some("ann@example.com"))
    );
    let reference = device["ref"].as_u64().unwrap_or(0);

    let (status, updated) = api
        .call(
            "PUT",
            &format!("/api/v1/devices/{reference}"),
            Some(serde_json::json!({"value": 42})),
        )
        .await;
    assert_eq!(
        (status, updated["value"].as_f64()),
        (200, Some(42.0)),
        "{updated}"
    );
    let (status, missing) = api.call("GET", "/api/v1/devices/999", None).await;
    assert_eq!(status, 404);
    assert_error_shape(&missing, "not_found");

    let (status, runs) = api.call("GET", "/api/v1/runs?profile=discord", None).await;
    assert_eq!(status, 200);
    assert_eq!(runs["runs"].as_array().map(Vec::len), Some(1));

    // The sandbox can read the profile's last response.
    let (status, result) = api
        .call("POST", "/api/v1/eval", Some(serde_json::json!({"expression": "Upper(JSON(input, \"username\"))", "profile": "discord"})))
        .await;
    assert_eq!(
        (status, result["result"].as_str()),
        (200, Some("ANN")),
        "{result}"
    );
}

#[tokio::test]
async fn unknown_profiles_and_bad_requests_share_one_error_shape() {
    let ws = Workspace::new();
    let api = Api::new(&ws);
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/actions/run",
            Some(serde_json::json!({"profile": "ghost"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "not_found");
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/actions/run",
            Some(serde_json::json!({"profil": "x"})),
        )
        .await;
    assert_eq!(status, 400);
    assert_error_shape(&body, "bad_request");
    let (status, body) = api.call("GET", "/api/v1/nothing-here", None).await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "not_found");
}

#[tokio::test]
async fn the_sandbox_gives_results_types_and_error_spans() {
    let ws = Workspace::new();
    let api = Api::new(&ws);
    let eval = |expression: &str, input: &str| serde_json::json!({"expression": expression, "input": input});
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/eval",
            Some(eval("Numbers(input)", "a 1 b 2.5")),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        (body["type"].as_str(), body["result"].clone()),
        (Some("list"), serde_json::json!([1.0, 2.5]))
    );
    let (status, body) = api
        .call("POST", "/api/v1/eval", Some(eval("1 + Foo(2)", "")))
        .await;
    assert_eq!(status, 422);
    assert_error_shape(&body, "compile_error");
    assert_eq!(
        (
            body["error"]["column"].as_u64(),
            body["error"]["span"]["start"].as_u64()
        ),
        (Some(5), Some(4))
    );
    let (status, body) = api
        .call("POST", "/api/v1/eval", Some(eval("2 + 10 / (1 - 1)", "")))
        .await;
    assert_eq!(status, 422);
    assert_error_shape(&body, "eval_error");
    assert_eq!(body["error"]["column"].as_u64(), Some(5));

    let (status, _) = api
        .call(
            "PUT",
            "/api/v1/globals/mode",
            Some(serde_json::json!({"value": 3, "string": "away"})),
        )
        .await;
    assert_eq!(status, 200);
    let (_, body) = api
        .call(
            "POST",
            "/api/v1/eval",
            Some(eval("GVval(\"mode\") * 2 + GVstr(\"mode\")", "")),
        )
        .await;
    assert_eq!(body["result"], "6away", "{body}");
    let (_, globals) = api.call("GET", "/api/v1/globals", None).await;
    assert_eq!(globals["globals"][0]["name"], "mode");

    let (_, functions) = api.call("GET", "/api/v1/functions", None).await;
    assert!(functions["functions"]
        .as_array()
        .is_some_and(|f| f.len() > 30));
}

#[tokio::test]
async fn profiles_are_listed_with_diagnostics_and_secrets_redacted() {
    let ws = Workspace::new();
    ws.write_profile(
        "secretive",
        "[request]\nurl = \"http://127.0.0.1:1/x\"\n[request.headers]\nX-Token = \"header-secret\"\n[auth]\nmode = \"basic\"\nusername = \"ann\"\npassword = \"pw-secret\"\n",
    );
    ws.write_profile("broken", "[request]\nurl = 5\n");
    let api = Api::new(&ws);
    let (status, list) = api.call("GET", "/api/v1/profiles", None).await;
    assert_eq!(status, 200);
    assert_eq!(list["profiles"][0]["name"], "secretive");
    assert!(
        list["diagnostics"][0]["file"]
            .as_str()
            .is_some_and(|f| f.ends_with("broken.toml")),
        "{list}"
    );
    assert_eq!(list["diagnostics"][0]["line"], 2);

    let (status, detail) = api.call("GET", "/api/v1/profiles/secretive", None).await;
    assert_eq!(status, 200);
    let text = detail.to_string();
    assert!(
        !text.contains("pw-secret") && !text.contains("header-secret"),
        "{text}"
    );
    assert_eq!(detail["auth"]["username"], "ann");

    let (status, body) = api.call("GET", "/api/v1/profiles/broken", None).await;
    assert_eq!(status, 404);
    assert!(
        body["error"]["diagnostics"][0]["message"]
            .as_str()
            .is_some(),
        "{body}"
    );

    let (status, body) = api
        .call("POST", "/api/v1/profiles/validate", Some(serde_json::json!({"text": "[request]\nurl = \"http://x/\"\n[devices]\nroot_names = 'Nope()'\n"})))
        .await;
    assert_eq!(status, 200);
    assert_eq!(body["valid"], false);
    assert_eq!(body["diagnostics"][0]["key"], "devices.root_names");

    // Reload picks up a fixed file without a restart.
    ws.write_profile("broken", "[request]\nurl = \"http://127.0.0.1:1/y\"\n");
    let (status, body) = api.call("POST", "/api/v1/reload", None).await;
    assert_eq!(status, 200);
    assert_eq!(body["profiles"], serde_json::json!(["broken", "secretive"]));
}

#[tokio::test]
async fn the_editor_saves_valid_profiles_only_and_keeps_secrets_out_of_files() {
    let ws = Workspace::new();
    let api = Api::new(&ws);
    let mut form = serde_json::json!({
        "name": "cloud", "method": "GET", "url": "https://api.example.com/me", "auth_mode": "oauth2",
        "client_id": "id-1", "client_secret": "form-secret-1", "scopes": "read",
        "authorize_url": "https://auth.example.com/authorize", "token_url": "https://auth.example.com/token",
        "client_auth": "body", "pkce": true, "root_names": "\"email\"", "values": "JSON(input, \"email\") +"
    });
    let (status, body) = api
        .call("PUT", "/api/v1/profiles/cloud", Some(form.clone()))
        .await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["error"]["diagnostics"][0]["key"], "devices.values");
    assert!(
        !ws.profiles_dir().join("cloud.toml").exists(),
        "an invalid profile was written"
    );

    form["values"] = serde_json::json!("JSON(input, \"email\")");
    let (status, body) = api
        .call("PUT", "/api/v1/profiles/cloud", Some(form.clone()))
        .await;
    assert_eq!(status, 200, "{body}");
    let file = std::fs::read_to_string(ws.profiles_dir().join("cloud.toml")).unwrap_or_default();
    assert!(
        file.contains("${secret:cloud_client_secret}") && !file.contains("form-secret-1"),
        "{file}"
    );
    let (_, detail) = api.call("GET", "/api/v1/profiles/cloud/form", None).await;
    assert_eq!(detail["form"]["client_secret"], "••••••");
    assert_eq!(detail["form"]["client_auth"], "body");
    // Saving again with the redacted value keeps the stored secret.
    form["client_secret"] = serde_json::json!("••••••");
    form["scopes"] = serde_json::json!("read write");
    let (status, body) = api.call("PUT", "/api/v1/profiles/cloud", Some(form)).await;
    assert_eq!(status, 200, "{body}");
    // A write from another origin is refused.
    let response = crate::support::local_request()
        .method("POST")
        .path("/api/v1/reload")
        .header("origin", "http://evil.example")
        .header("host", "127.0.0.1:8765")
        .reply(&routes(api.state.clone()))
        .await;
    assert_eq!(response.status(), 403);
}

#[tokio::test]
async fn an_admin_token_guards_everything_but_the_callback() {
    let ws = Workspace::new();
    let mut api = Api::new(&ws);
    let token = bellhop::secret::Secret::new("a-long-admin-token-123");
    api.state = api
        .state
        .clone()
        .with_edge(bellhop::web::Edge::loopback().with_admin_token(Some(token)));
    let (status, body) = api.call("GET", "/api/v1/devices", None).await;
    assert_eq!(status, 401);
    assert_error_shape(&body, "unauthorized");
    let reply = |request: warp::test::RequestBuilder| {
        let state = api.state.clone();
        async move { request.reply(&routes(state)).await }
    };
    let ok = reply(
        crate::support::local_request()
            .path("/api/v1/devices")
            .header("authorization", "Bearer a-long-admin-token-123"),
    )
    .await;
    assert_eq!(ok.status(), 200);
    // A browser opening the UI without a session is sent to the sign-in form.
    let page = reply(crate::support::local_request().path("/")).await;
    assert_eq!(page.status(), 303);
    assert_eq!(
        page.headers().get("location").map(|l| l.as_bytes()),
        Some(&b"/login"[..])
    );
    // The token itself is no cookie.
    let wrong = reply(
        crate::support::local_request()
            .path("/api/v1/devices")
            .header("cookie", "bellhop_session=a-long-admin-token-123"),
    )
    .await;
    assert_eq!(wrong.status(), 401);
    // A wrong password shows the form again with a message.
    let denied = reply(
        crate::support::local_request()
            .method("POST")
            .path("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=guess"),
    )
    .await;
    assert_eq!(denied.status(), 401);
    let text = String::from_utf8_lossy(denied.body());
    assert!(
        text.contains("<form") && text.contains("not the admin token"),
        "{text}"
    );
    let login = reply(
        crate::support::local_request()
            .method("POST")
            .path("/login")
            .header("content-type", "application/x-www-form-urlencoded")
            .body("token=a-long-admin-token-123"),
    )
    .await;
    assert_eq!(login.status(), 303);
    let cookie = login
        .headers()
        .get("set-cookie")
        .and_then(|c| c.to_str().ok())
        .unwrap_or_default()
        .to_string();
    assert!(
        cookie.contains("HttpOnly")
            && cookie.contains("SameSite=Strict")
            && !cookie.contains("a-long-admin-token-123"),
        "{cookie}"
    );
    let session = cookie.split(';').next().unwrap_or_default().to_string();
    let page = reply(
        crate::support::local_request()
            .path("/")
            .header("cookie", &session),
    )
    .await;
    assert_eq!(page.status(), 200);
    // Sign-out ends the session.
    let out = reply(
        crate::support::local_request()
            .method("POST")
            .path("/logout")
            .header("cookie", &session),
    )
    .await;
    assert_eq!(out.status(), 303);
    let after = reply(
        crate::support::local_request()
            .path("/api/v1/devices")
            .header("cookie", &session),
    )
    .await;
    assert_eq!(after.status(), 401);
    // The OAuth2 callback stays reachable (its single-use state protects it).
    let callback = reply(crate::support::local_request().path("/oauth2/callback?state=x")).await;
    assert_ne!(callback.status(), 401);
}

/// A device can be deleted (with its history); deleting it again, or reading it, is a 404, and
/// the next run of its profile creates it anew under a new reference.
#[tokio::test]
async fn devices_can_be_deleted() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "discord",
        &profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    let api = Api::new(&ws);
    let run = serde_json::json!({"profile": "discord", "text": ""});
    let (_, record) = api
        .call("POST", "/api/v1/actions/run", Some(run.clone()))
        .await;
    let reference = record["changes"][0]["device"]["reference"]
        .as_u64()
        .unwrap_or(0);
    assert!(reference > 0, "{record}");
    let (status, deleted) = api
        .call("DELETE", &format!("/api/v1/devices/{reference}"), None)
        .await;
    assert_eq!((status, deleted["ref"].as_u64()), (200, Some(reference)));
    for method in ["DELETE", "GET"] {
        let (status, body) = api
            .call(method, &format!("/api/v1/devices/{reference}"), None)
            .await;
        assert_eq!(status, 404, "{method}");
        assert_error_shape(&body, "not_found");
    }
    let (_, record) = api.call("POST", "/api/v1/actions/run", Some(run)).await;
    let again = record["changes"][0]["device"]["reference"]
        .as_u64()
        .unwrap_or(0);
    assert!(again > reference, "{record}");
}

/// The UI is ES modules: every file under web/js/ is served as JavaScript (and one that is not
/// there is a 404), and every module the entry or another module imports exists.
#[tokio::test]
async fn every_ui_module_is_served() {
    let ws = Workspace::new();
    let api = Api::new(&ws);
    let folder = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("web/js");
    let mut imported = Vec::new();
    let mut served = Vec::new();
    let mut sources = vec![std::fs::read_to_string(folder.join("../app.js")).unwrap_or_default()];
    for entry in std::fs::read_dir(&folder).unwrap_or_else(|e| panic!("{e}")) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let response = crate::support::local_request()
            .path(&format!("/js/{name}"))
            .reply(&routes(api.state.clone()))
            .await;
        assert_eq!(response.status(), 200, "{name}");
        assert_eq!(
            response.headers().get("content-type").map(|v| v.as_bytes()),
            Some(&b"text/javascript; charset=utf-8"[..]),
            "{name}"
        );
        assert_eq!(
            response.body().as_ref(),
            std::fs::read(&path).unwrap_or_default().as_slice(),
            "{name}: the file as it is"
        );
        served.push(name);
        sources.push(std::fs::read_to_string(&path).unwrap_or_default());
    }
    for source in &sources {
        for line in source.lines().filter(|l| l.starts_with("import ")) {
            if let Some(name) = line.rsplit('/').next() {
                imported.push(name.trim_end_matches(['"', ';']).to_string());
            }
        }
    }
    for name in &imported {
        assert!(
            served.contains(name),
            "`{name}` is imported but not in web/js"
        );
    }
    // The page asks for every module at once (modulepreload), not import by import.
    let index = std::fs::read_to_string(folder.join("../index.html")).unwrap_or_default();
    for name in &served {
        assert!(
            index.contains(&format!("<link rel=\"modulepreload\" href=\"/js/{name}\">")),
            "web/index.html does not preload `{name}`"
        );
    }
    let (status, body) = api.call("GET", "/js/nothing.js", None).await;
    assert_eq!(status, 404, "{body}");
}

/// A device as the API shows it says its unit (from its profile), and a root that only groups
/// features says so (its own value means nothing), in the list and on the live stream alike.
#[tokio::test]
async fn devices_carry_their_unit_and_whether_they_only_group_features() {
    let ws = Workspace::new();
    ws.write_profile("thermo", crate::mqtt::THERMO_PROFILE);
    let api = Api::new(&ws);
    let response = crate::support::local_request()
        .path("/in/thermo?t=21.5&s=20&m=heat")
        .reply(&routes(api.state.clone()))
        .await;
    assert_eq!(response.status(), 200);
    let (status, body) = api.call("GET", "/api/v1/devices", None).await;
    assert_eq!(status, 200, "{body}");
    let devices = body["devices"].as_array().cloned().unwrap_or_default();
    let find = |feature: Option<&str>| {
        devices
            .iter()
            .find(|d| d["name"] == "Thermo" && d["feature"].as_str() == feature)
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(find(Some("temperature"))["unit"], "°C", "{body}");
    assert_eq!(find(Some("temperature"))["value"], 21.5, "{body}");
    assert_eq!(find(Some("mode"))["unit"], Value::Null, "{body}");
    assert_eq!(find(None)["grouping"], true, "{body}");
    assert_eq!(find(Some("temperature"))["grouping"], Value::Null, "{body}");
}

#[tokio::test]
async fn the_editor_previews_each_box_element_over_the_last_response() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    write_email_profile(&ws, &stub);
    let api = Api::new(&ws);
    let boxes = serde_json::json!({
        "root_names": "\"me\" &&& Upper(JSON(input, \"username\"))",
        "values": "JSON(input,\"email\") && 1 + && 2 + 10 / (1 - 1)",
        "strings": "",
    });
    // Never run: nothing to preview against, and that is no error.
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/profiles/discord/preview",
            Some(boxes.clone()),
        )
        .await;
    assert_eq!(
        (status, body["ran"].as_bool()),
        (200, Some(false)),
        "{body}"
    );
    let (status, _) = api
        .call(
            "POST",
            "/api/v1/actions/run",
            Some(serde_json::json!({"profile": "discord", "text": ""})),
        )
        .await;
    assert_eq!(status, 200);
    let (status, body) = api
        .call("POST", "/api/v1/profiles/discord/preview", Some(boxes))
        .await;
    assert_eq!((status, body["ran"].as_bool()), (200, Some(true)), "{body}");
    assert_eq!(
        body["boxes"]["root_names"],
        serde_json::json!([{"text": "me"}, {"text": "ANN"}])
    );
    // Each element on its own: a value, a syntax error and a failing evaluation, each at its
    // column in the box as typed.
    let values = &body["boxes"]["values"];
    assert_eq!(values[0]["text"], "ann@example.com", "{body}");
    assert_eq!(values[1]["column"].as_u64(), Some(27), "{body}");
    assert!(values[1]["error"].is_string(), "{body}");
    assert_eq!(values[2]["column"].as_u64(), Some(35), "{body}");
    assert_eq!(body["boxes"]["strings"], serde_json::json!([]));
    assert!(body["boxes"].get("feature_names").is_none(), "{body}");
    // Bounded: a box of a thousand elements previews the first eight.
    let many = vec!["1"; 1000].join(" &&& ");
    let (_, body) = api
        .call(
            "POST",
            "/api/v1/profiles/discord/preview",
            Some(serde_json::json!({ "values": many })),
        )
        .await;
    assert_eq!(
        body["boxes"]["values"].as_array().map(Vec::len),
        Some(8),
        "{body}"
    );
    // A box too long to split is said so, not split.
    let (_, body) = api
        .call(
            "POST",
            "/api/v1/profiles/discord/preview",
            Some(serde_json::json!({ "values": "&&&".repeat(300_000) })),
        )
        .await;
    assert!(
        body["boxes"]["values"][0]["error"]
            .as_str()
            .is_some_and(|e| e.contains("900000 bytes")),
        "{body}"
    );
    let (status, body) = api
        .call(
            "POST",
            "/api/v1/profiles/ghost/preview",
            Some(serde_json::json!({"values": "1"})),
        )
        .await;
    assert_eq!(status, 404);
    assert_error_shape(&body, "not_found");
}

#[tokio::test]
async fn a_global_has_a_history_of_what_it_was_set_to() {
    let ws = Workspace::new();
    let api = Api::new(&ws);
    for body in [
        serde_json::json!({"value": 1}),
        serde_json::json!({"string": "away"}),
    ] {
        let (status, _) = api.call("PUT", "/api/v1/globals/mode", Some(body)).await;
        assert_eq!(status, 200);
        api.flush().await;
    }
    let (status, body) = api.call("GET", "/api/v1/globals/mode/history", None).await;
    assert_eq!(status, 200, "{body}");
    let points: Vec<(f64, String)> = body["points"]
        .as_array()
        .map(|points| {
            points
                .iter()
                .map(|p| {
                    (
                        p["value"].as_f64().unwrap_or(-1.0),
                        p["string"].as_str().unwrap_or("?").to_string(),
                    )
                })
                .collect()
        })
        .unwrap_or_default();
    assert_eq!(
        points,
        vec![(1.0, String::new()), (1.0, "away".to_string())],
        "{body}"
    );
    let (status, body) = api
        .call("GET", "/api/v1/globals/nobody/history", None)
        .await;
    assert_eq!(status, 404, "{body}");
    let (status, _) = api
        .call("GET", "/api/v1/globals/mode/history?since=abc", None)
        .await;
    assert_eq!(status, 400);
}
