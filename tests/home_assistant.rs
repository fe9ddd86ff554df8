//! Bellhop in a real Home Assistant: pip's `homeassistant` (2025.4, in `tests/peers/ha-venv`,
//! installed by `.ci/run`), onboarded over its REST API, with its MQTT integration added through
//! the config flow, on a real mosquitto; Bellhop is the real `bellhop serve`. Everything is
//! checked through Home Assistant's own API: the entities, their units, classes and devices,
//! buttons that run actions and fire events, a number and a text that set devices, event runs as
//! HA events, the bridge's connectivity, what HA logs about Bellhop's configs, and that
//! restarting either side loses nothing.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::mqtt::{mosquitto_ready, Broker, THERMO_PROFILE};
use crate::peers::{peers_dir, serve_bellhop_with, Peer};
use crate::support::{profile_text, start_stub, EMAIL_DEVICE};

const SETUP: &str = "bash .ci/run (it makes the venv tests/peers/ha-venv with Python 3.13 and installs tests/peers/home-assistant-requirements.txt)";

fn venv_python() -> PathBuf {
    peers_dir().join("ha-venv/bin/python")
}

/// Whether Home Assistant is installed; under CI its absence fails the test.
fn home_assistant_ready() -> bool {
    let present = Command::new(venv_python())
        .args(["-c", "import homeassistant, paho.mqtt, hass_frontend"])
        .output()
        .is_ok_and(|o| o.status.success());
    crate::support::peer_present(present, &format!("Home Assistant is missing: run {SETUP}"))
}

/// Home Assistant, as the helper started it.
struct HomeAssistant {
    peer: Peer,
    config_dir: PathBuf,
    url: String,
    token: String,
    client: reqwest::Client,
}

impl HomeAssistant {
    fn start(config_dir: &Path, mqtt_port: u16) -> HomeAssistant {
        let mut command = Command::new(venv_python());
        command
            .arg(peers_dir().join("home_assistant.py"))
            .arg(config_dir)
            .arg(mqtt_port.to_string());
        let peer = Peer::spawn(command);
        let ready = peer.wait_for("READY ", Duration::from_secs(90));
        let ready: Value = serde_json::from_str(ready.trim_start_matches("READY ").trim())
            .unwrap_or_else(|e| panic!("{e}: {ready}"));
        HomeAssistant {
            peer,
            config_dir: config_dir.to_path_buf(),
            url: ready["url"].as_str().unwrap_or_default().to_string(),
            token: ready["token"].as_str().unwrap_or_default().to_string(),
            client: reqwest::Client::new(),
        }
    }

    /// Stops Home Assistant cleanly (it saves its registries).
    fn stop(self) {
        self.peer.finish(Duration::from_secs(60));
    }

    async fn call(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.url))
            .bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let answer = request
            .send()
            .await
            .unwrap_or_else(|e| panic!("{path}: {e}"));
        let status = answer.status();
        let text = answer.text().await.unwrap_or_default();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    /// An entity's state object, if HA has it.
    async fn state(&self, entity: &str) -> Option<Value> {
        let answer = self
            .client
            .get(format!("{}/api/states/{entity}", self.url))
            .bearer_auth(&self.token)
            .send()
            .await
            .ok()?;
        if !answer.status().is_success() {
            return None;
        }
        answer.json().await.ok()
    }

    /// Renders a template in HA (how its device registry is read over REST).
    async fn template(&self, template: &str) -> String {
        match self
            .call(
                reqwest::Method::POST,
                "/api/template",
                Some(json!({ "template": template })),
            )
            .await
        {
            Value::String(text) => text,
            other => other.to_string(),
        }
    }

    async fn press(&self, domain: &str, service: &str, data: Value) {
        self.call(
            reqwest::Method::POST,
            &format!("/api/services/{domain}/{service}"),
            Some(data),
        )
        .await;
    }

    /// Waits until an entity's state holds `holds`; its state object.
    async fn wait_state(&self, entity: &str, holds: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let state = self.state(entity).await;
            if let Some(state) = state.as_ref().filter(|s| holds(s)) {
                return state.clone();
            }
            assert!(
                Instant::now() < deadline,
                "{entity} never got there: {state:?}\nHome Assistant's log:\n{}",
                std::fs::read_to_string(self.config_dir.join("console.log")).unwrap_or_default()
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Every entity the MQTT integration made, sorted.
    async fn mqtt_entities(&self) -> Vec<String> {
        let text = self
            .template("{{ integration_entities('mqtt') | sort | join(',') }}")
            .await;
        text.split(',')
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()
    }
}

fn state_is(expected: &'static str) -> impl Fn(&Value) -> bool {
    move |state| state["state"] == expected
}

/// What Home Assistant logged (warnings and errors) that concerns MQTT or Bellhop.
fn complaints(config_dir: &Path) -> Vec<String> {
    let log = std::fs::read_to_string(config_dir.join("console.log")).unwrap_or_default();
    log.lines()
        .filter(|line| line.contains("WARNING") || line.contains("ERROR"))
        .filter(|line| {
            let lower = line.to_lowercase();
            lower.contains("mqtt") || lower.contains("bellhop") || lower.contains("thermo")
        })
        .map(str::to_string)
        .collect()
}

/// Bellhop's devices, by `root/feature`, with their reference, value and string.
async fn bellhop_devices(url: &str) -> Vec<(String, u64, f64, String)> {
    let answer: Value = reqwest::get(format!("{url}/api/v1/devices"))
        .await
        .and_then(|a| a.error_for_status())
        .unwrap_or_else(|e| panic!("{e}"))
        .json()
        .await
        .unwrap_or_default();
    answer["devices"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|d| {
            let name = match d["feature"].as_str() {
                Some(feature) => format!("{}/{feature}", d["name"].as_str().unwrap_or_default()),
                None => d["name"].as_str().unwrap_or_default().to_string(),
            };
            (
                name,
                d["ref"].as_u64().unwrap_or_default(),
                d["value"].as_f64().unwrap_or_default(),
                d["string"].as_str().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

async fn wait_device(url: &str, name: &str, holds: impl Fn(f64, &str) -> bool) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let devices = bellhop_devices(url).await;
        if let Some((_, reference, ..)) = devices
            .iter()
            .find(|(n, _, value, string)| n == name && holds(*value, string))
        {
            return *reference;
        }
        assert!(Instant::now() < deadline, "{name}: {devices:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[test]
fn a_real_home_assistant_sees_and_drives_bellhop() {
    if !mosquitto_ready() || !home_assistant_ready() {
        return;
    }
    // Home Assistant's start takes both cores for seconds: the browser tests, whose token
    // lifetimes are seconds long, wait for it (and it for them).
    let _one_heavy_peer = crate::peers::ONE_BROWSER_AT_A_TIME
        .lock()
        .unwrap_or_else(|p| p.into_inner());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"))
        .block_on(sees_and_drives_bellhop());
}

async fn sees_and_drives_bellhop() {
    let broker = Broker::start();
    let mqtt_port = broker.port;
    let stub = start_stub().await;
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let bellhop_dir = dir.path().join("bellhop");
    let ha_dir = dir.path().join("home-assistant");
    for folder in ["profiles", "events"] {
        std::fs::create_dir_all(bellhop_dir.join(folder)).unwrap_or_else(|e| panic!("{e}"));
    }
    std::fs::create_dir_all(&ha_dir).unwrap_or_else(|e| panic!("{e}"));
    let write = |path: &str, text: &str| {
        std::fs::write(bellhop_dir.join(path), text).unwrap_or_else(|e| panic!("{e}"))
    };
    write("profiles/thermo.toml", THERMO_PROFILE);
    write(
        "profiles/user.toml",
        &profile_text(&stub.url("/user"), EMAIL_DEVICE),
    );
    write(
        "events/too-warm.toml",
        "[[trigger]]\nprofile = \"thermo\"\nroot = \"Thermo\"\nfeature = \"setpoint\"\ncompare = \">\"\nto = 25\n[[action]]\nset_global = \"alert\"\nstring = '\"set to \" + input'\n",
    );
    write(
        "events/quiet.toml",
        "home_assistant_button = false\n[[trigger]]\nwebhook = true\n[[action]]\nwait = \"1ms\"\n",
    );
    let mqtt = format!("[mqtt]\nurl = \"mqtt://127.0.0.1:{mqtt_port}\"\nclient_id = \"bellhop\"\n");
    let (serve, bellhop) = serve_bellhop_with(&bellhop_dir, &mqtt);
    let reading = reqwest::get(format!("{bellhop}/in/thermo?t=21&s=20&m=heat"))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(reading.status().is_success());
    let home = HomeAssistant::start(&ha_dir, mqtt_port);

    // The thermostat: a device with three entities and no root entity of its own.
    let temperature = home
        .wait_state("sensor.thermo_temperature", state_is("21"))
        .await;
    assert_eq!(temperature["attributes"]["unit_of_measurement"], "°C");
    let setpoint = home
        .wait_state("number.thermo_setpoint", state_is("20"))
        .await;
    assert_eq!(setpoint["attributes"]["min"], 5.0);
    assert_eq!(setpoint["attributes"]["max"], 30.0);
    assert_eq!(setpoint["attributes"]["step"], 0.5);
    home.wait_state("text.thermo_mode", state_is("heat")).await;
    assert_eq!(
        home.template(
            "{{ device_entities(device_id('sensor.thermo_temperature')) | sort | join(',') }}"
        )
        .await,
        "number.thermo_setpoint,sensor.thermo_temperature,text.thermo_mode"
    );
    assert_eq!(
        home.template("{{ device_attr(device_id('sensor.thermo_temperature'), 'name') }}")
            .await,
        "Thermo"
    );
    // Every device hangs off the bridge's, whose connectivity is on.
    let connectivity = home
        .wait_state("binary_sensor.bellhop_connection_state", state_is("on"))
        .await;
    assert_eq!(connectivity["attributes"]["device_class"], "connectivity");
    assert_eq!(
        home.template("{{ device_attr(device_attr(device_id('sensor.thermo_temperature'), 'via_device_id'), 'name') }}")
            .await,
        "Bellhop"
    );
    // Buttons for the calling profile and the event that wants one; an event entity per event.
    home.wait_state("button.bellhop_profile_user_run", |_| true)
        .await;
    home.wait_state("button.bellhop_event_too_warm_fire", |_| true)
        .await;
    let events = home
        .wait_state("event.bellhop_event_quiet_run", |_| true)
        .await;
    assert_eq!(
        events["attributes"]["event_types"],
        json!(["finished", "failed", "conditions_false", "skipped"])
    );
    let entities = home.mqtt_entities().await;
    for absent in [
        "button.bellhop_event_quiet_fire",
        "button.bellhop_profile_thermo_run",
        "sensor.thermo",
    ] {
        assert!(
            !entities.iter().any(|e| e == absent),
            "{absent}: {entities:?}"
        );
    }

    // A button press runs the profile's action: its device appears in HA.
    home.press(
        "button",
        "press",
        json!({ "entity_id": "button.bellhop_profile_user_run" }),
    )
    .await;
    home.wait_state("sensor.email", state_is("ann@example.com"))
        .await;
    // Setting the number sets the device; its change fires the event, which HA hears.
    home.press(
        "number",
        "set_value",
        json!({ "entity_id": "number.thermo_setpoint", "value": 26.5 }),
    )
    .await;
    wait_device(&bellhop, "Thermo/setpoint", |value, _| value == 26.5).await;
    home.wait_state("number.thermo_setpoint", state_is("26.5"))
        .await;
    let fired = home
        .wait_state("event.bellhop_event_too_warm_run", |s| {
            s["attributes"]["event_type"] == "finished"
        })
        .await;
    assert_eq!(fired["attributes"]["trigger"], "device");
    // Setting the text sets the device's string.
    home.press(
        "text",
        "set_value",
        json!({ "entity_id": "text.thermo_mode", "value": "cool" }),
    )
    .await;
    let mode = wait_device(&bellhop, "Thermo/mode", |_, string| string == "cool").await;
    home.wait_state("text.thermo_mode", state_is("cool")).await;
    let before = home.mqtt_entities().await;

    // Home Assistant restarts: every entity is back with its state, none doubled.
    home.stop();
    let home = HomeAssistant::start(&ha_dir, mqtt_port);
    home.wait_state("sensor.thermo_temperature", state_is("21"))
        .await;
    home.wait_state("number.thermo_setpoint", state_is("26.5"))
        .await;
    home.wait_state("text.thermo_mode", state_is("cool")).await;
    home.wait_state("sensor.email", state_is("ann@example.com"))
        .await;
    assert_eq!(home.mqtt_entities().await, before);

    // Bellhop stops without a word (its last will says offline), then comes back: the same.
    drop(serve);
    home.wait_state("sensor.thermo_temperature", state_is("unavailable"))
        .await;
    home.wait_state("binary_sensor.bellhop_connection_state", |s| {
        s["state"] == "off" || s["state"] == "unavailable"
    })
    .await;
    let (serve, bellhop) = serve_bellhop_with(&bellhop_dir, &mqtt);
    home.wait_state("sensor.thermo_temperature", state_is("21"))
        .await;
    home.wait_state("number.thermo_setpoint", state_is("26.5"))
        .await;
    home.wait_state("binary_sensor.bellhop_connection_state", state_is("on"))
        .await;
    assert_eq!(home.mqtt_entities().await, before);

    // Deleting a device in Bellhop deletes its entity in HA.
    let deleted = reqwest::Client::new()
        .delete(format!("{bellhop}/api/v1/devices/{mode}"))
        .send()
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(deleted.status().is_success());
    let deadline = Instant::now() + Duration::from_secs(20);
    while home
        .mqtt_entities()
        .await
        .iter()
        .any(|e| e == "text.thermo_mode")
    {
        assert!(Instant::now() < deadline, "text.thermo_mode stayed");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // Give HA a moment to log anything the removal made it say.
    tokio::time::sleep(Duration::from_millis(500)).await;
    home.stop();
    drop(serve);
    let complaints = complaints(&ha_dir);
    assert!(
        complaints.is_empty(),
        "Home Assistant complained about MQTT or Bellhop:\n{}",
        complaints.join("\n")
    );
}
