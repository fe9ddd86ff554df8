//! The engine's door and its event bus: every adapter hears the same typed events, in order.

use bellhop::engine::bus::{Delivery, HubEvent};

use crate::support::{eventually, profile_text, start_stub, Workspace};

async fn next_event(subscription: &mut bellhop::engine::bus::Subscription) -> HubEvent {
    match tokio::time::timeout(std::time::Duration::from_secs(5), subscription.next()).await {
        Ok(Delivery::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn runs_device_and_global_changes_and_reloads_come_out_on_one_bus_in_order() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    let source = bellhop::engine::ProfileSource::new(ws.profiles_dir(), None);
    let engine = std::sync::Arc::new(
        bellhop::engine::Engine::new(source.load(), Some(source), ws.hub())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let mut subscription = engine.subscribe();
    let record = engine
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    // The device change comes before the run that made it finishes.
    let reference = match next_event(&mut subscription).await {
        HubEvent::DeviceChanged { change } => {
            assert_eq!(change.device.string, "ann@example.com");
            change.device.reference
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::RunFinished { run } if run.profile == "user" && run.ok
    ));
    engine
        .set_global("mode", Some(2.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::GlobalChanged { global } if global.name == "mode" && global.value == 2.0
    ));
    // Setting it to what it is changes nothing and says nothing.
    engine
        .set_global("mode", Some(2.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine
        .set_device(reference, None, Some("manual".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::DeviceChanged { change } if change.device.string == "manual"
    ));
    engine.reload();
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::ProfilesReloaded { profiles: 1, .. }
    ));
}

/// The live stream carries the bus to browsers at /api/v1/stream.
#[tokio::test]
async fn the_live_stream_carries_the_bus() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    let engine = ws.engine();
    let (address, stop) = crate::support::serve(bellhop::web::AppState::new(engine.clone())).await;
    for path in ["/api/v1/stream"] {
        let mut response = reqwest::Client::new()
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), 200);
        // Subscribed once the head arrived: what happens now is streamed.
        engine
            .run("user", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut seen = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !seen.contains("event:run") && std::time::Instant::now() < deadline {
            match tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        assert!(seen.contains("event:device"), "{path}: {seen}");
        assert!(
            seen.contains("event:run") && seen.contains("\"profile\":\"user\""),
            "{path}: {seen}"
        );
    }
    let _ = stop.send(());
}

fn events_dir(ws: &Workspace) -> std::path::PathBuf {
    let dir = ws.path().join("events");
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("{e}"));
    dir
}

fn write_event(ws: &Workspace, name: &str, text: &str) {
    std::fs::write(events_dir(ws).join(format!("{name}.toml")), text)
        .unwrap_or_else(|e| panic!("{e}"));
}

/// Every problem of an events folder is reported with file, line and key (and column inside an
/// expression); the good events load; nothing refers to a profile or event that is not there.
#[test]
fn a_broken_events_folder_reports_every_problem_and_loads_the_rest() {
    let ws = Workspace::new();
    ws.write_profile(
        "hall",
        &profile_text(
            "http://127.0.0.1:1/hall",
            "[devices]\nroot_names = '\"hall\"'\nvalues = 'Numbers(input)[0]'",
        ),
    );
    write_event(
        &ws,
        "morning",
        "version = 1\ndescription = \"Lights at 7\"\nconditions = ['GVval(\"away\") == 0']\n\n[[trigger]]\ncron = \"0 7 * * 1-5\"\n\n[[trigger]]\ninput = \"hall\"\ntext = \"motion\"\nposition = 0\n\n[[trigger]]\nprofile = \"hall\"\nroot = \"hall\"\nchanges = \"value\"\ncompare = \">\"\nto = 25\n\n[[action]]\nrun = \"hall\"\ntext = 'on=${input}'\n\n[[action]]\nwait = \"2s\"\n\n[[action]]\nset_global = \"last\"\nstring = 'input'\n\n[[action]]\nevent = \"night\"\n",
    );
    write_event(
        &ws,
        "night",
        "[[trigger]]\nevery = \"1h30m\"\n[[action]]\nset_global = \"mode\"\nvalue = '1'\n",
    );
    write_event(
        &ws,
        "badcron",
        "[[trigger]]\ncron = \"61 * * * *\"\n[[action]]\nwait = \"1s\"\n",
    );
    write_event(
        &ws,
        "ghost",
        "[[trigger]]\nstartup = true\n[[action]]\nrun = \"nowhere\"\n",
    );
    write_event(
        &ws,
        "matchers",
        "[[trigger]]\ninput = \"hall\"\ntext = \"x\"\nposition = -2\n[[trigger]]\ninput = \"hall\"\nnumber = 0\ncompare = \"=>\"\nto = 1\n[[trigger]]\nevery = \"5m\"\ncron = \"* * * * *\"\n[[action]]\nset_global = \"g\"\nvalue = '1 +'\n",
    );
    write_event(&ws, "chain", "[[action]]\nevent = \"missing\"\n");
    write_event(
        &ws,
        "zone",
        "[[trigger]]\nevery = \"0s\"\n[[action]]\nwait = \"forever\"\n",
    );
    let profiles = ws.load();
    let set = bellhop::event::load_dir(&ws.path().join("events"), &profiles);
    assert_eq!(
        set.events.keys().collect::<Vec<_>>(),
        vec!["morning", "night"],
        "{:#?}",
        set.diagnostics
    );
    let find = |file: &str, key: &str, words: &str| {
        assert!(
            set.diagnostics
                .iter()
                .any(|d| d.file.file_name().is_some_and(|f| f == file)
                    && d.key == key
                    && d.line.is_some()
                    && d.message.contains(words)),
            "no `{words}` at {file} `{key}` in {:#?}",
            set.diagnostics
        );
    };
    find("badcron.toml", "trigger[0].cron", "not a cron expression");
    find("ghost.toml", "action[0].run", "no profile named `nowhere`");
    find("matchers.toml", "trigger[0].position", "1-based");
    find("matchers.toml", "trigger[1].compare", "= != < <= > >=");
    find(
        "matchers.toml",
        "trigger[2]",
        "one kind, not every and cron",
    );
    find("matchers.toml", "action[0].value", "expected a value");
    find("chain.toml", "action[0].event", "runs event `missing`");
    find("zone.toml", "trigger[0].every", "outside 1s to 366d");
    find("zone.toml", "action[0].wait", "not a duration");
    let column = set
        .diagnostics
        .iter()
        .find(|d| d.key == "action[0].value")
        .and_then(|d| d.column);
    assert_eq!(column, Some(4));
    // The good event holds what its file says.
    let morning = set.get("morning").unwrap_or_else(|| panic!("no morning"));
    assert_eq!(morning.triggers.len(), 3);
    assert_eq!(morning.conditions.len(), 1);
    assert_eq!(morning.actions.len(), 4);
    assert!(matches!(morning.actions[1], bellhop::event::Action::Wait(d) if d.as_secs() == 2));
}

/// `bellhop events` lists each event's triggers with the next time its schedule fires, and
/// `bellhop check` reports events' problems with the profiles'.
#[test]
fn the_cli_lists_events_with_their_next_firing_and_checks_them() {
    let ws = Workspace::new();
    write_event(
        &ws,
        "tick",
        "[[trigger]]\nevery = \"10m\"\n[[action]]\nset_global = \"t\"\nvalue = 'Now()'\n",
    );
    write_event(
        &ws,
        "broken",
        "[[trigger]]\ncron = \"nope\"\n[[action]]\nwait = \"1s\"\n",
    );
    let config = ws.path().join("plugin.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata_dir = \"{d}/data\"\nprofiles_dir = \"{d}/profiles\"\nevents_dir = \"{d}/events\"\n[oauth]\nkey_file = \"{d}/key\"\n[events]\ntime_zone = \"Europe/Berlin\"\n",
            d = ws.path().display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let run = |args: &[&str]| {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bellhop"))
            .arg("--config")
            .arg(&config)
            .args(args)
            .env_remove("BELLHOP_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        (
            output.status.code(),
            format!(
                "{}{}",
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            ),
        )
    };
    let (code, printed) = run(&["events"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("tick") && printed.contains("when every 10m (Europe/Berlin), next "),
        "{printed}"
    );
    assert!(
        printed.contains("broken.toml") && printed.contains("trigger[0].cron"),
        "{printed}"
    );
    let (code, printed) = run(&["check"]);
    assert_eq!(code, Some(1), "{printed}");
    assert!(
        printed.contains("1 event(s) loaded") && printed.contains("1 error(s)"),
        "{printed}"
    );
}

/// An engine over the workspace's profiles and events, with its runner started.
fn running_engine(ws: &Workspace) -> std::sync::Arc<bellhop::engine::Engine> {
    ws.running_engine(&[])
}

fn global(engine: &bellhop::engine::Engine, name: &str) -> Option<bellhop::devices::Global> {
    engine.globals().into_iter().find(|g| g.name == name)
}

#[tokio::test]
async fn a_one_second_schedule_runs_its_actions() {
    let ws = Workspace::new();
    write_event(
        &ws,
        "tick",
        "[[trigger]]\nevery = \"1s\"\n[[action]]\nset_global = \"tick\"\nvalue = 'GVval(\"tick\") + 1'\n",
    );
    write_event(
        &ws,
        "tock",
        "[[trigger]]\nstartup = true\n[[action]]\nset_global = \"tick\"\nvalue = '0'\n",
    );
    // The runner's clock is moved instead of waiting for the seconds to pass.
    let clock = bellhop::clock::Clock::adjustable();
    let engine = ws.running_engine_on(&[], clock.clone());
    assert!(
        crate::support::eventually_advancing(&clock, std::time::Duration::from_millis(250), || {
            global(&engine, "tick").is_some_and(|g| g.value >= 2.0)
        })
        .await,
        "{:?}",
        engine.automation().history("tick", 5)
    );
    let runs = engine.automation().history("tick", 5);
    assert!(runs.iter().all(|r| r.trigger == "schedule"), "{runs:?}");
    assert!(
        runs.iter()
            .any(|r| r.outcome == bellhop::engine::automation::EventOutcome::Ok),
        "{runs:?}"
    );
}

#[tokio::test]
async fn device_input_error_and_startup_triggers_fire_their_events() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(&stub.url("/user"), crate::support::EMAIL_DEVICE),
    );
    ws.write_profile("broken", &profile_text(&stub.url("/error500"), ""));
    write_event(
        &ws,
        "seen",
        "[[trigger]]\nprofile = \"user\"\nroot = \"email\"\nchanges = \"string\"\n[[action]]\nset_global = \"last_email\"\nstring = 'input'\n",
    );
    write_event(
        &ws,
        "matched",
        "[[trigger]]\ninput = \"user\"\ntext = \"example.com\"\nposition = 0\n[[action]]\nset_global = \"matched\"\nvalue = 'Length(input)'\n",
    );
    write_event(
        &ws,
        "failed",
        "[[trigger]]\nerror = \"broken\"\nclass = \"http_status\"\n[[action]]\nset_global = \"error\"\nstring = 'input'\n",
    );
    write_event(
        &ws,
        "boot",
        "[[trigger]]\nstartup = true\n[[action]]\nset_global = \"booted\"\nvalue = '1'\n",
    );
    let engine = running_engine(&ws);
    assert!(eventually(|| global(&engine, "booted").is_some()).await);
    engine
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    engine
        .run("broken", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        eventually(|| {
            global(&engine, "last_email").is_some_and(|g| g.string == "ann@example.com")
                && global(&engine, "matched").is_some_and(|g| g.value > 10.0)
                && global(&engine, "error").is_some_and(|g| g.string.contains("HTTP 500"))
        })
        .await,
        "{:?}",
        engine.globals()
    );
}

#[tokio::test]
async fn conditions_failures_and_loops_are_recorded_step_by_step() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile("broken", &profile_text(&stub.url("/error500"), ""));
    write_event(
        &ws,
        "steps",
        "on_error = \"continue\"\nconditions = ['input == \"go\"']\n[[action]]\nrun = \"broken\"\n[[action]]\nset_global = \"after\"\nvalue = '1'\n",
    );
    write_event(
        &ws,
        "stopper",
        "[[action]]\nrun = \"broken\"\n[[action]]\nset_global = \"never\"\nvalue = '1'\n",
    );
    // Each run changes the global that triggers it: a loop the runner must cut.
    write_event(
        &ws,
        "loop",
        "retrigger = \"parallel\"\n[[trigger]]\nglobal = \"counter\"\n[[action]]\nset_global = \"counter\"\nvalue = 'GVval(\"counter\") + 1'\n",
    );
    let engine = running_engine(&ws);
    let state = bellhop::web::AppState::new(engine.clone());
    let routes = bellhop::web::routes(state);
    let fire = |name: &str, input: &str| {
        crate::support::local_request()
            .method("POST")
            .path(&format!("/api/v1/events/{name}/run"))
            .header("content-type", "application/json")
            .json(&serde_json::json!({ "input": input }))
            .reply(&routes)
    };
    let response = fire("steps", "go").await;
    let run: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_eq!(response.status(), 200, "{run}");
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(run["steps"][0]["ok"], true, "{run}");
    assert_eq!(run["steps"][1]["ok"], false, "{run}");
    assert!(
        run["steps"][1]["message"]
            .as_str()
            .is_some_and(|m| m.contains("HTTP 500")),
        "{run}"
    );
    assert_eq!(run["steps"][2]["ok"], true, "{run}");
    assert_eq!(global(&engine, "after").map(|g| g.value), Some(1.0));
    let response = fire("steps", "no").await;
    let run: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_eq!(run["outcome"], "conditions_false", "{run}");
    let response = fire("stopper", "").await;
    let run: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_eq!(run["outcome"], "failed", "{run}");
    assert_eq!(run["steps"].as_array().map(Vec::len), Some(1), "{run}");
    assert!(global(&engine, "never").is_none());
    let response = fire("nothing-here", "").await;
    assert_eq!(response.status(), 404);
    // The loop: started once, cut by the rate limit, reported.
    engine
        .set_global("counter", Some(0.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        eventually(|| engine.automation().history("loop", 50).iter().any(|r| r
            .reason
            .as_deref()
            .is_some_and(|m| m.contains("times in a second"))))
        .await,
        "{:?}",
        engine.automation().history("loop", 5)
    );
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let counter = global(&engine, "counter")
        .map(|g| g.value)
        .unwrap_or_default();
    assert!(counter < 200.0, "the loop ran {counter} times");
    let response = crate::support::local_request()
        .path("/api/v1/events")
        .reply(&routes)
        .await;
    let list: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
    assert_eq!(list["events"].as_array().map(Vec::len), Some(3), "{list}");
}

/// A webhook URL carries a random token kept in the encrypted vault (the same after a restart);
/// it works without the admin token, a wrong token runs nothing.
#[tokio::test]
async fn webhooks_fire_with_their_secret_token_only() {
    let ws = Workspace::new();
    write_event(
        &ws,
        "doorbell",
        "[[trigger]]\nwebhook = true\n[[action]]\nset_global = \"rang\"\nstring = 'input'\n",
    );
    let key = bellhop::tokens::load_or_create_key(&ws.path().join("token.key"))
        .unwrap_or_else(|e| panic!("{e}"));
    let build = || {
        let vault = std::sync::Arc::new(
            bellhop::tokens::TokenStore::open(&ws.path().join("data/tokens"), &key)
                .unwrap_or_else(|e| panic!("{e}")),
        );
        let dir = events_dir(&ws);
        let source = bellhop::engine::ProfileSource::new(ws.profiles_dir(), None)
            .with_vault(vault)
            .with_events_dir(dir.clone());
        let profiles = source.load();
        let events = bellhop::event::load_dir(&dir, &profiles);
        let engine = bellhop::engine::Engine::new(profiles, Some(source), ws.hub())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_events(events, bellhop::event::Zone::Local);
        engine.prepare_webhooks();
        std::sync::Arc::new(engine)
    };
    let engine = build();
    let url = engine
        .webhook_url("doorbell")
        .unwrap_or_else(|| panic!("no webhook URL"));
    let path = url.trim_start_matches('/').to_string();
    let token = path.rsplit('/').next().unwrap_or_default().to_string();
    assert!(
        path.starts_with("hooks/events/doorbell/") && token.len() >= 40,
        "{url}"
    );
    let guarded = bellhop::web::AppState::new(engine.clone()).with_edge(
        bellhop::web::Edge::loopback()
            .with_admin_token(Some(bellhop::secret::Secret::new("a-long-admin-token-123"))),
    );
    let routes = bellhop::web::routes(guarded);
    for wrong in [
        format!("/hooks/events/doorbell/{}x", token),
        "/hooks/events/doorbell/".to_string() + &"a".repeat(token.len()),
        "/hooks/events/other/".to_string() + &token,
    ] {
        let response = crate::support::local_request()
            .method("POST")
            .path(&wrong)
            .body("ding")
            .reply(&routes)
            .await;
        assert_eq!(response.status(), 401, "{wrong}");
    }
    // A body that is not text is refused; nothing runs.
    let response = crate::support::local_request()
        .method("POST")
        .path(&format!("/{path}"))
        .body(vec![0xff_u8, 0xfe])
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 400);
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert!(
        global(&engine, "rang").is_none(),
        "a wrong token ran the event"
    );
    let response = crate::support::local_request()
        .path(&format!("/{path}?who=ann"))
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 202);
    assert!(eventually(|| global(&engine, "rang").is_some_and(|g| g.string == "who=ann")).await);
    let response = crate::support::local_request()
        .method("POST")
        .path(&format!("/{path}"))
        .body("ding")
        .reply(&routes)
        .await;
    assert_eq!(response.status(), 202);
    assert!(eventually(|| global(&engine, "rang").is_some_and(|g| g.string == "ding")).await);
    // A restart keeps the URL.
    drop(routes);
    drop(engine);
    let again = build();
    assert_eq!(again.webhook_url("doorbell"), Some(url));
}

/// A device trigger with `crossing` fires when the value crosses into the comparison, not on
/// every change while it holds; without it, on every change that compares so.
#[tokio::test]
async fn crossing_triggers_fire_once_per_crossing() {
    let ws = Workspace::new();
    ws.write_profile(
        "probe",
        "version = 1\nlisten = \"/probe\"\n[devices]\nroot_names = '\"heat\"'\nvalues = 'ParseNumber(input)'\n",
    );
    write_event(
        &ws,
        "hot",
        "[[trigger]]\nprofile = \"probe\"\nroot = \"heat\"\ncompare = \">\"\nto = 25\ncrossing = true\n[[action]]\nset_global = \"hot\"\nvalue = 'GVval(\"hot\") + 1'\n",
    );
    write_event(
        &ws,
        "warm",
        "[[trigger]]\nprofile = \"probe\"\nroot = \"heat\"\ncompare = \">\"\nto = 25\n[[action]]\nset_global = \"warm\"\nvalue = 'GVval(\"warm\") + 1'\n",
    );
    let engine = running_engine(&ws);
    engine
        .set_global("hot", Some(0.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine
        .set_global("warm", Some(0.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    let profile = engine
        .listener("/probe")
        .unwrap_or_else(|| panic!("not listening"));
    for reading in ["20", "26", "27", "24", "30"] {
        let call = bellhop::engine::listening::IncomingCall {
            method: bellhop::profile::Method::Post,
            token: None,
            input: reading.into(),
            headers: Default::default(),
        };
        let received = engine
            .receive(profile.clone(), call)
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(received.record.ok, "{:?}", received.record.errors);
        // One reading at a time (retrigger = skip would drop a firing that comes while one runs).
        tokio::time::sleep(std::time::Duration::from_millis(150)).await;
    }
    assert!(
        eventually(|| {
            global(&engine, "hot").is_some_and(|g| g.value == 2.0)
                && global(&engine, "warm").is_some_and(|g| g.value == 3.0)
        })
        .await,
        "{:?}",
        engine.globals()
    );
    // `crossing` without a comparison is a load error naming the key.
    write_event(
        &ws,
        "vague",
        "[[trigger]]\nprofile = \"probe\"\nroot = \"heat\"\ncrossing = true\n[[action]]\nwait = \"1s\"\n",
    );
    let events = bellhop::event::load_dir(&ws.path().join("events"), &engine.profiles());
    assert!(
        events
            .diagnostics
            .iter()
            .any(|d| d.key == "trigger[0].crossing" && d.message.contains("compare")),
        "{:#?}",
        events.diagnostics
    );
    assert!(events.get("hot").is_some());
}

/// Sends one reading to the `probe` listening profile and waits a moment (one at a time:
/// `retrigger = skip` would drop a firing that comes while one runs).
async fn send_reading(engine: &std::sync::Arc<bellhop::engine::Engine>, reading: &str) {
    receive_reading(engine, reading).await;
    tokio::time::sleep(std::time::Duration::from_millis(150)).await;
}

/// Hands one reading to the `probe` listening profile; it must be taken.
async fn receive_reading(engine: &std::sync::Arc<bellhop::engine::Engine>, reading: &str) {
    let profile = engine
        .listener("/probe")
        .unwrap_or_else(|| panic!("not listening"));
    let call = bellhop::engine::listening::IncomingCall {
        method: bellhop::profile::Method::Post,
        token: None,
        input: reading.into(),
        headers: Default::default(),
    };
    let received = engine
        .receive(profile, call)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(received.record.ok, "{:?}", received.record.errors);
}

/// A restart forgets nothing events depend on: a crossing is judged against the value the store
/// kept (a reading still above the threshold after a restart does not fire again), and the
/// event's runs are still listed.
#[tokio::test]
async fn a_restart_keeps_crossings_and_event_runs() {
    let ws = Workspace::new();
    ws.write_profile(
        "probe",
        "version = 1\nlisten = \"/probe\"\n[devices]\nroot_names = '\"heat\"'\nvalues = 'ParseNumber(input)'\n",
    );
    write_event(
        &ws,
        "hot",
        "[[trigger]]\nprofile = \"probe\"\nroot = \"heat\"\ncompare = \">\"\nto = 25\ncrossing = true\n[[action]]\nset_global = \"hot\"\nvalue = 'GVval(\"hot\", 0) + 1'\n",
    );
    {
        let engine = running_engine(&ws);
        for reading in ["20", "26"] {
            send_reading(&engine, reading).await;
        }
        assert!(eventually(|| global(&engine, "hot").is_some_and(|g| g.value == 1.0)).await);
        assert_eq!(engine.automation().history("hot", 10).len(), 1);
        engine.flush().await.unwrap_or_else(|e| panic!("{e}"));
        engine.close();
    }
    let engine = running_engine(&ws);
    let runs = engine.automation().history("hot", 10);
    assert_eq!(runs.len(), 1, "event runs survive a restart");
    assert_eq!(
        runs[0].outcome,
        bellhop::engine::automation::EventOutcome::Ok
    );
    assert_eq!(runs[0].trigger, "device");
    // Still above 25: no crossing, so no run.
    send_reading(&engine, "27").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(global(&engine, "hot").map(|g| g.value), Some(1.0));
    assert_eq!(engine.automation().history("hot", 10).len(), 1);
    // Down and up again: a crossing.
    for reading in ["24", "30"] {
        send_reading(&engine, reading).await;
    }
    assert!(eventually(|| global(&engine, "hot").is_some_and(|g| g.value == 2.0)).await);
}

/// A device trigger naming a device its profile never makes is a warning at load (the event
/// still loads); when the profile computes its names, the warning says it cannot be checked.
#[test]
fn device_triggers_naming_devices_no_profile_makes_are_warned_of() {
    let ws = Workspace::new();
    ws.write_profile(
        "hall-sensor",
        "version = 1\nlisten = \"/hall\"\n[devices]\nroot_names = '\"Hall\"'\nfeature_names = '\"temperature\" && \"humidity\"'\nvalues = '1 && 2'\n",
    );
    ws.write_profile(
        "rooms",
        "version = 1\nlisten = \"/rooms\"\n[devices]\nroot_names = 'Split(input, \",\")'\nvalues = '1'\n",
    );
    let trigger = |profile: &str, root: &str, feature: Option<&str>| {
        format!(
            "[[trigger]]\nprofile = \"{profile}\"\nroot = \"{root}\"\n{}[[action]]\nwait = \"1s\"\n",
            feature.map(|f| format!("feature = \"{f}\"\n")).unwrap_or_default()
        )
    };
    write_event(
        &ws,
        "old-readme",
        &trigger("hall-sensor", "temperature", None),
    );
    write_event(&ws, "typo", &trigger("hall-sensor", "Hall", Some("temp")));
    write_event(
        &ws,
        "fine",
        &trigger("hall-sensor", "Hall", Some("temperature")),
    );
    write_event(&ws, "computed", &trigger("rooms", "kitchen", None));
    let events = bellhop::event::load_dir(&ws.path().join("events"), &ws.load());
    assert!(!events.has_errors(), "{:#?}", events.diagnostics);
    assert_eq!(
        events.events.len(),
        4,
        "warnings do not stop an event loading"
    );
    let said = |file: &str| -> Vec<String> {
        events
            .diagnostics
            .iter()
            .filter(|d| d.file.ends_with(format!("{file}.toml")))
            .map(|d| format!("{}: {}", d.key, d.message))
            .collect()
    };
    assert!(
        said("old-readme")
            .iter()
            .any(|m| m.starts_with("trigger[0].root:")
                && m.contains("no root device `temperature` (its roots: Hall)")),
        "{:?}",
        said("old-readme")
    );
    assert!(
        said("typo")
            .iter()
            .any(|m| m.starts_with("trigger[0].feature:")
                && m.contains("no feature `temp` (its features: temperature, humidity)")),
        "{:?}",
        said("typo")
    );
    assert!(said("fine").is_empty(), "{:?}", said("fine"));
    assert!(
        said("computed")
            .iter()
            .any(|m| m.contains("cannot be checked")),
        "{:?}",
        said("computed")
    );
}

/// `bellhop events` loads profiles as `serve` and `check` do, with the vault: an event running
/// a profile whose secret was saved from the UI is listed, not refused.
#[test]
fn the_cli_lists_events_of_profiles_with_secrets_from_the_vault() {
    let ws = Workspace::new();
    let key = bellhop::tokens::load_or_create_key(&ws.path().join("key"))
        .unwrap_or_else(|e| panic!("{e}"));
    let vault = bellhop::tokens::TokenStore::open(&ws.path().join("data/tokens"), &key)
        .unwrap_or_else(|e| panic!("{e}"));
    vault
        .store_secrets(&[("api_token".to_string(), "saved-in-the-ui".to_string())].into())
        .unwrap_or_else(|e| panic!("{e}"));
    ws.write_profile(
        "secretive",
        "version = 1\n[request]\nurl = \"http://127.0.0.1:9/x\"\n[auth]\nmode = \"bearer\"\ntoken = \"${secret:api_token}\"\n",
    );
    write_event(
        &ws,
        "nightly",
        "[[trigger]]\ncron = \"0 3 * * *\"\n[[action]]\nrun = \"secretive\"\n",
    );
    let config = ws.path().join("plugin.toml");
    std::fs::write(
        &config,
        format!(
            "[paths]\ndata_dir = \"{d}/data\"\nprofiles_dir = \"{d}/profiles\"\nevents_dir = \"{d}/events\"\n[oauth]\nkey_file = \"{d}/key\"\n",
            d = ws.path().display()
        ),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    for command in ["events", "check"] {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_bellhop"))
            .arg("--config")
            .arg(&config)
            .arg(command)
            .env_remove("BELLHOP_CONFIG")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{e}"));
        let printed = String::from_utf8_lossy(&output.stdout);
        assert_eq!(output.status.code(), Some(0), "{command}: {printed}");
        assert!(
            !printed.contains("no profile named"),
            "{command}: {printed}"
        );
        assert!(!printed.contains("saved-in-the-ui"), "{command}: {printed}");
    }
}

/// An event that names a device no one has is not loaded: the error names the file and key,
/// and the other events keep working.
#[tokio::test]
async fn events_naming_unknown_devices_are_refused_and_the_rest_run() {
    let ws = Workspace::new();
    write_event(
        &ws,
        "ghost",
        "[[trigger]]\ndevice = 404\n[[action]]\nset_device = 405\nvalue = '1'\n",
    );
    write_event(
        &ws,
        "fine",
        "[[trigger]]\nstartup = true\n[[action]]\nset_global = \"fine\"\nvalue = '1'\n",
    );
    let engine = running_engine(&ws);
    let events = engine.automation().events();
    assert!(events.get("ghost").is_none());
    for key in ["trigger[0].device", "action[0].set_device"] {
        assert!(
            events.diagnostics.iter().any(|d| d.key == key
                && d.line.is_some()
                && d.file.ends_with("ghost.toml")
                && d.message.contains("no device")),
            "{key}: {:#?}",
            events.diagnostics
        );
    }
    assert!(eventually(|| global(&engine, "fine").is_some()).await);
}

/// A schedule fires an event whose action runs a profile; the device it creates reaches the
/// live stream the UI listens to, with the event's run.
#[tokio::test]
async fn a_scheduled_action_changes_a_device_that_reaches_the_live_stream() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    // Each run sends the time, so each run changes the device (whenever the stream joins).
    ws.write_profile(
        "clock",
        &profile_text(
            &format!("{}?t=${{input}}", stub.url("/echo")),
            "[devices]\nroot_names = '\"clock\"'\nstrings = 'JSON(input, \"query\")'",
        ),
    );
    write_event(
        &ws,
        "poll",
        "[[trigger]]\nevery = \"1s\"\n[[action]]\nrun = \"clock\"\ntext = 'sent ${Now()}'\n",
    );
    let engine = running_engine(&ws);
    let (address, stop) = crate::support::serve(bellhop::web::AppState::new(engine.clone())).await;
    let mut response = reqwest::Client::new()
        .get(format!("http://{address}/api/v1/stream"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let mut seen = String::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(8);
    while !(seen.contains("event:device") && seen.contains("\"trigger\":\"schedule\""))
        && std::time::Instant::now() < deadline
    {
        match tokio::time::timeout(std::time::Duration::from_secs(8), response.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(
        seen.contains("event:device") && seen.contains("t=sent"),
        "{seen}"
    );
    assert!(
        seen.contains("event:event") && seen.contains("\"event\":\"poll\""),
        "{seen}"
    );
    let _ = stop.send(());
}

/// `GET /api/v1/events` comes a page at a time: `limit` events by name, `next` the cursor to
/// pass as `after`, none after the last page.
#[tokio::test]
async fn the_event_list_comes_a_page_at_a_time() {
    let ws = Workspace::new();
    for name in ["a", "b", "c", "d", "e"] {
        write_event(&ws, name, "[[action]]\nset_global = \"x\"\nvalue = '1'\n");
    }
    let engine = running_engine(&ws);
    let routes = bellhop::web::routes(bellhop::web::AppState::new(engine.clone()));
    let page = |path: String| {
        let routes = routes.clone();
        async move {
            let response = crate::support::local_request()
                .path(&path)
                .reply(&routes)
                .await;
            assert_eq!(response.status(), 200, "{path}");
            let list: serde_json::Value =
                serde_json::from_slice(response.body()).unwrap_or_default();
            let names: Vec<String> = list["events"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["name"].as_str().map(str::to_string))
                .collect();
            (names, list["next"].as_str().map(str::to_string))
        }
    };
    assert_eq!(
        page("/api/v1/events".into()).await,
        (
            vec!["a".into(), "b".into(), "c".into(), "d".into(), "e".into()],
            None
        ),
        "one page when the events fit"
    );
    let (first, next) = page("/api/v1/events?limit=2".into()).await;
    assert_eq!(
        (first, next.as_deref()),
        (vec!["a".into(), "b".into()], Some("b"))
    );
    let (second, next) = page("/api/v1/events?limit=2&after=b".into()).await;
    assert_eq!(
        (second, next.as_deref()),
        (vec!["c".into(), "d".into()], Some("d"))
    );
    let (last, next) = page("/api/v1/events?limit=2&after=d".into()).await;
    assert_eq!((last, next), (vec!["e".into()], None));
    // A cursor whose event went meanwhile still continues after it.
    let (after_gone, _) = page("/api/v1/events?limit=2&after=bb".into()).await;
    assert_eq!(after_gone, vec!["c".to_string(), "d".to_string()]);
}

/// A finished run fires its input triggers once per run (from the run's own task, not again
/// from the bus), and only once the runner is started.
#[tokio::test]
async fn an_input_trigger_fires_once_per_received_input() {
    let ws = Workspace::new();
    ws.write_profile(
        "probe",
        "version = 1\nlisten = \"/probe\"\n[incoming]\nmax_per_second = 1000\n",
    );
    let event = (
        "count",
        "retrigger = \"parallel\"\nmax_per_second = 1000\n[[trigger]]\ninput = \"probe\"\nexpression = 'Length(input) > 0'\n[[action]]\nset_global = \"last\"\nstring = 'input'\n",
    );
    let engine = ws.running_engine(&[event]);
    for n in 0..12 {
        receive_reading(&engine, &format!("reading {n}")).await;
    }
    let runs = || engine.automation().history("count", 1000).len();
    assert!(eventually(|| runs() >= 12).await, "{} runs", runs());
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(runs(), 12, "one event run per input, not two");
    assert!(global(&engine, "last").is_some());

    // An engine whose runner is not started fires nothing.
    let other = Workspace::new();
    other.write_profile(
        "probe",
        "version = 1\nlisten = \"/probe\"\n[incoming]\nmax_per_second = 1000\n",
    );
    write_event(&other, event.0, event.1);
    let idle = std::sync::Arc::new(
        bellhop::engine::Engine::new(other.load(), None, other.hub())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_events(
                bellhop::event::load_dir(&events_dir(&other), &other.load()),
                bellhop::event::Zone::Local,
            ),
    );
    receive_reading(&idle, "unheard").await;
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(idle.automation().history("count", 1000).is_empty());
}
