//! Running actions against a stub API on 127.0.0.1: device mapping through boxes, lists and
//! fan-out; authentication; and every kind of bad input, each leaving the devices unchanged.

use std::sync::atomic::Ordering;

use bellhop::devices::{ChangeKind, DeviceKey};
use bellhop::engine::RunStage;

use crate::support::{profile_text, start_stub, Workspace};

fn device_string(ws_engine: &bellhop::engine::Engine, key: DeviceKey) -> Option<(String, f64)> {
    ws_engine.hub().find(&key).map(|d| (d.string, d.value))
}

#[tokio::test]
async fn bearer_profile_maps_the_email_into_a_device() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "discord",
        &format!(
            "{}\n[auth]\nmode = \"bearer\"\ntoken = \"tok-123\"\n",
            profile_text(
                &stub.url("/user"),
                "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'"
            )
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(
        device_string(&engine, DeviceKey::root("discord", "email")),
        Some(("ann@example.com".to_string(), 0.0))
    );
    let seen = stub.seen();
    assert_eq!(seen[0].authorization.as_deref(), Some("Bearer tok-123"));
    // The record keeps no credentials.
    let json = serde_json::to_string(&*record).unwrap_or_default();
    assert!(!json.contains("tok-123"));
}

/// An answer that arrives in pieces (no length, a character split between two of them) is read
/// whole, as one that arrives at once.
#[tokio::test]
async fn an_answer_in_pieces_is_read_whole() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "pieces",
        &profile_text(&stub.url("/pieces"), crate::support::EMAIL_DEVICE),
    );
    let engine = ws.engine();
    let record = engine
        .run("pieces", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(record.exchanges[0].response_bytes, 31);
    assert_eq!(
        device_string(&engine, DeviceKey::root("pieces", "email")).map(|d| d.0),
        Some("pi\u{e9}ces@example.com".to_string())
    );
}

#[tokio::test]
async fn boxes_create_roots_and_features_and_keep_their_references() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "house",
        &profile_text(
            &stub.url("/rooms"),
            "[devices]\n\
             root_names = 'JSON(input, \"rooms[0].name\") &&& JSON(input, \"rooms[1].name\")'\n\
             feature_names = '\"temperature\" && \"light\" &&& \"temperature\"'\n\
             values = 'JSON(input, \"rooms[0].temp\") && If(JSON(input, \"rooms[0].light\") = \"on\", 1, 0) &&& JSON(input, \"rooms[1].temp\")'\n\
             strings = '\"\" && JSON(input, \"rooms[0].light\") &&& JSON(input, \"rooms[1].temp\") + \" °C\"'",
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("house", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    let hub = engine.hub();
    let kitchen_temp = hub.find(&DeviceKey::feature("house", "Kitchen", "temperature"));
    assert_eq!(kitchen_temp.as_ref().map(|d| d.value), Some(21.5));
    let light = hub.find(&DeviceKey::feature("house", "Kitchen", "light"));
    assert_eq!(
        light.map(|d| (d.value, d.string)),
        Some((1.0, "on".to_string()))
    );
    let hall = hub.find(&DeviceKey::feature("house", "Hall", "temperature"));
    assert_eq!(
        hall.map(|d| (d.value, d.string)),
        Some((19.0, "19 °C".to_string()))
    );
    assert!(hub.find(&DeviceKey::root("house", "Kitchen")).is_some());
    assert_eq!(hub.len(), 5);

    // Running again changes nothing and keeps every reference.
    let before: Vec<u64> = hub.list().iter().map(|d| d.reference).collect();
    let again = engine
        .run("house", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(again.changes.is_empty(), "{:?}", again.changes);
    let after: Vec<u64> = hub.list().iter().map(|d| d.reference).collect();
    assert_eq!(before, after);
    assert_eq!(
        kitchen_temp.map(|d| d.reference),
        hub.find(&DeviceKey::feature("house", "Kitchen", "temperature"))
            .map(|d| d.reference)
    );
}

#[tokio::test]
async fn a_list_name_fans_out_into_one_device_per_element() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "rooms",
        &profile_text(
            &stub.url("/rooms"),
            "[[device]]\nname = 'JSON(input, \"rooms[*].name\")'\nvalue = 'index'\n\n\
             [[device.feature]]\nname = '\"temperature\"'\nvalue = 'JSON(input, \"rooms[*].temp\")[index]'\nstring = 'item + \" is \" + JSON(input, \"rooms[*].light\")[index]'",
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("rooms", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    let created = record
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Created)
        .count();
    assert_eq!(created, 6);
    let attic = engine
        .hub()
        .find(&DeviceKey::feature("rooms", "Attic", "temperature"));
    assert_eq!(
        attic.map(|d| (d.value, d.string)),
        Some((12.25, "Attic is off".to_string()))
    );
    let hall = engine.hub().find(&DeviceKey::root("rooms", "Hall"));
    assert_eq!(hall.map(|d| d.value), Some(1.0));
}

#[tokio::test]
async fn locked_profiles_only_update_and_affect_gates_everything() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "locked",
        &profile_text(
            &stub.url("/user"),
            "[devices]\nlocked = true\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'",
        ),
    );
    ws.write_profile(
        "gated",
        &profile_text(&stub.url("/user"), "[devices]\naffect = 'JSON(input, \"verified\") and Status() = 201'\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'"),
    );
    let engine = ws.engine();
    let locked = engine
        .run("locked", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(locked.ok && locked.changes.is_empty());
    let gated = engine
        .run("gated", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(gated.ok && gated.changes.is_empty());
    assert!(engine.hub().is_empty());
}

#[tokio::test]
async fn action_text_fills_the_url_encoded_and_waits_split_requests() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "get",
        &profile_text(&format!("{}?q=${{input}}", stub.url("/echo")), ""),
    );
    ws.write_profile(
        "raw",
        &format!(
            "version = 1\n[request]\nurl = \"{}?${{input}}\"\nraw_url = true\n",
            stub.url("/echo")
        ),
    );
    ws.write_profile(
        "post",
        &format!(
            "[request]\nmethod = \"POST\"\nurl = \"{}\"\n",
            stub.url("/echo")
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("get", "a b&c=d<wait 10>second")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(record.exchanges.len(), 2);
    let raw = engine
        .run("raw", "temp=5&x=1")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(raw.ok);
    let post = engine
        .run("post", "{\"on\": ${ 1 + 1 }}")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(post.ok, "{:?}", post.errors);
    let seen = stub.seen();
    assert_eq!(seen[0].query, "q=a%20b%26c%3Dd");
    assert_eq!(seen[1].query, "q=second");
    assert_eq!(seen[2].query, "temp=5&x=1");
    assert_eq!(seen[3].body, "{\"on\": 2}");
    assert_eq!(seen[3].content_type.as_deref(), Some("application/json"));
}

#[tokio::test]
async fn a_null_action_text_sends_nothing() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "get",
        &profile_text(&format!("{}?${{input}}", stub.url("/echo")), ""),
    );
    let engine = ws.engine();
    let record = engine
        .run("get", "${ If(1 > 2, \"North\", null) }")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok && record.skipped);
    assert_eq!(stub.hits.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn credentials_never_follow_a_redirect_to_another_origin() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    let auth = "\n[auth]\nmode = \"api_key_header\"\nheader = \"X-Api-Key\"\nkey = \"k-999\"\n";
    ws.write_profile(
        "other",
        &format!("{}{auth}", profile_text(&stub.url("/redirect-other"), "")),
    );
    ws.write_profile(
        "same",
        &format!(
            "{}{auth}",
            profile_text(
                &stub.url("/redirect-same"),
                "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'"
            )
        ),
    );
    let engine = ws.engine();
    let other = engine
        .run("other", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!other.ok);
    assert!(
        other.errors[0].message.contains("another origin"),
        "{:?}",
        other.errors
    );
    // The stub answered only the first request; `localhost` (another origin) was never asked.
    assert_eq!(stub.seen().len(), 1);
    let same = engine
        .run("same", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(same.ok, "{:?}", same.errors);
    let seen = stub.seen();
    assert_eq!(
        seen.last().map(|s| (s.path.as_str(), s.api_key.as_deref())),
        Some(("/user", Some("k-999")))
    );
}

#[tokio::test]
async fn query_keys_are_sent_but_never_recorded() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "keyed",
        &format!(
            "{}\n[auth]\nmode = \"api_key_query\"\nparameter = \"api_key\"\nkey = \"q-secret\"\n",
            profile_text(&stub.url("/echo"), "")
        ),
    );
    let engine = ws.engine();
    let record = engine
        .run("keyed", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok);
    assert_eq!(stub.seen()[0].query, "api_key=q-secret");
    assert!(!serde_json::to_string(&*record)
        .unwrap_or_default()
        .contains("q-secret"));
}

/// Each bad input: a clear error in the run record, and the devices exactly as they were.
#[tokio::test]
async fn bad_inputs_leave_devices_unchanged_with_a_clear_error() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    let mapping = "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'";
    ws.write_profile("good", &profile_text(&stub.url("/user"), mapping));
    let cases: &[(&str, String, &str, RunStage, &str)] = &[
        (
            "e500",
            stub.url("/error500"),
            "",
            RunStage::Response,
            "HTTP 500: internal trouble",
        ),
        (
            "html",
            stub.url("/html"),
            "",
            RunStage::Devices,
            "not valid JSON",
        ),
        (
            "truncated",
            stub.url("/truncated"),
            "",
            RunStage::Devices,
            "not valid JSON",
        ),
        (
            "empty",
            stub.url("/empty"),
            "",
            RunStage::Devices,
            "not valid JSON",
        ),
        (
            "huge",
            stub.url("/huge"),
            "",
            RunStage::Request,
            "larger than the profile's limit",
        ),
        (
            "drip",
            stub.url("/drip"),
            "",
            RunStage::Request,
            "no answer within",
        ),
        (
            "refused",
            "http://127.0.0.1:9/user".to_string(),
            "",
            RunStage::Request,
            "cannot connect",
        ),
        (
            "unknown_host",
            "http://no-such-host.invalid/user".to_string(),
            "",
            RunStage::Request,
            "cannot resolve the host name",
        ),
        (
            "unclosed",
            stub.url("/user"),
            "abc ${ input",
            RunStage::Action,
            "never closed",
        ),
        (
            "divide",
            stub.url("/user"),
            "${ 1 / 0 }",
            RunStage::Action,
            "division by zero",
        ),
    ];
    for (name, url, _, _, _) in cases {
        let timeout = if *name == "drip" { "1" } else { "3" };
        ws.write_profile(
            name,
            &profile_text(url, mapping)
                .replace("timeout_secs = 3", &format!("timeout_secs = {timeout}")),
        );
    }
    let engine = ws.engine();
    let good = engine
        .run("good", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(good.ok, "{:?}", good.errors);
    let before = engine.hub().list();
    for (name, _, text, stage, expected) in cases {
        let record = engine
            .run(name, text)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!record.ok, "{name} should fail");
        let error = &record.errors[0];
        assert_eq!(error.stage, *stage, "{name}: {error:?}");
        assert!(
            error.message.contains(expected),
            "{name}: {}",
            error.message
        );
        assert!(record.changes.is_empty(), "{name} changed devices");
        assert_eq!(engine.hub().list(), before, "{name} changed the store");
    }
    // The column of an action-text error points into the text.
    let record = engine
        .run("unclosed", "abc ${ input")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(record.errors[0].column, Some(5));
    // Every run is in the history, newest first.
    let history = engine.history(Some("divide"), 10);
    assert_eq!(history.len(), 1);
    assert_eq!(engine.history(None, 100).len(), cases.len() + 2);
    // A missing key in one device leaves the other devices to update.
    ws.write_profile(
        "partial",
        &profile_text(&stub.url("/user"), "[devices]\nroot_names = '\"email\" &&& \"phone\"'\nvalues = 'JSON(input,\"username\") &&& JSON(input,\"phone\")'"),
    );
    let engine = ws.engine_reloaded(engine);
    let partial = engine
        .run("partial", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!partial.ok);
    assert!(
        partial.errors[0]
            .message
            .contains("JSON key `phone` is missing"),
        "{:?}",
        partial.errors
    );
    assert_eq!(partial.changes.len(), 1);
}

#[tokio::test]
async fn unknown_profiles_are_an_error() {
    let ws = Workspace::new();
    let engine = ws.engine();
    let error = engine.run("nope", "").await.err().map(|e| e.to_string());
    assert_eq!(error.as_deref(), Some("no profile named `nope` is loaded"));
}
