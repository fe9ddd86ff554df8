//! The MQTT bridge, an adapter like the web: it listens on the engine's bus and publishes every
//! device and global, retained, to a broker, with Home Assistant discovery configs and the
//! bridge's availability (a retained last will); and it takes commands from the broker — run an
//! event, run a profile's action, set a device — through the engine's door, answering each with
//! its record on a result topic. A broker that is down never holds up the engine: changes only
//! mark devices dirty (the latest state wins), and everything is published again after each
//! (re)connect and when Home Assistant comes online.

mod link;
pub mod topics;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::devices::{Device, Global};
use crate::engine::bus::{Delivery, HubEvent};
use crate::engine::Engine;
use crate::secret::Secret;
pub use link::Protocol;
use link::{Happened, Link, Message, Poller};
pub use topics::topic_segment;

/// What the bridge needs to know (built from `[mqtt]` by the composition root).
#[derive(Debug, Clone)]
pub struct BridgeConfig {
    pub host: String,
    pub port: u16,
    pub username: Option<String>,
    pub password: Option<Secret>,
    pub client_id: String,
    pub base_topic: String,
    /// Home Assistant's discovery prefix, when discovery is on.
    pub discovery_prefix: Option<String>,
    /// 0, 1 or 2: state messages and command answers.
    pub qos: u8,
    pub keepalive: Duration,
    pub commands: bool,
    /// Events and profiles commands may name (empty: all).
    pub allow: Vec<String>,
    /// `mqtts://`: TLS, verifying the broker against this CA (PEM), or the system's roots.
    pub tls: Option<Tls>,
    pub protocol: Protocol,
}

/// How the bridge verifies a TLS broker, and the certificate it shows when the broker asks.
#[derive(Debug, Clone)]
pub enum Tls {
    /// The system's root certificates.
    SystemRoots,
    /// The certificate authorities of a PEM file (`mqtt.ca_file`), and optionally a client
    /// certificate and its key (PEM).
    Ca {
        ca: Vec<u8>,
        client: Option<(Vec<u8>, Secret)>,
    },
}

/// Largest MQTT packet read off the connection. MQTT 3.1.1 cannot tell the broker a limit, and
/// a larger packet would break the connection (and, retained, again at every reconnect), so this
/// is well above what is taken: larger payloads are read and refused, the connection stays.
const MAX_PACKET_BYTES: usize = 16 * 1024 * 1024;
/// Largest payload a command or an MQTT profile takes.
const MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// Commands handled at once; more wait.
const COMMANDS_AT_ONCE: usize = 16;
/// Waiting between reconnection attempts: doubling up to this.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

#[derive(Debug, thiserror::Error)]
pub enum BridgeError {
    #[error("the MQTT client could not be set up: {0}")]
    Setup(String),
}

impl BridgeConfig {
    pub fn bridge_state_topic(&self) -> String {
        format!("{}/bridge/state", self.base_topic)
    }

    fn allowed(&self, name: &str) -> bool {
        self.allow.is_empty() || self.allow.iter().any(|a| a == name)
    }
}

/// Starts the bridge: the connection's event loop and the publisher. They stop when the engine
/// is gone.
pub fn start(
    engine: &Arc<Engine>,
    config: BridgeConfig,
) -> Result<Vec<tokio::task::JoinHandle<()>>, BridgeError> {
    if config.host.is_empty() {
        return Err(BridgeError::Setup("no broker host".into()));
    }
    let (client, eventloop) = link::connect(&config);
    let config = Arc::new(config);
    // (connections so far, connected now): the publisher holds back while the broker is away.
    let (connected, connections) = tokio::sync::watch::channel((0u64, false));
    let republish = Arc::new(tokio::sync::Notify::new());
    let subscription = engine.subscribe();
    engine.set_outbox(Arc::new(Outbox {
        client: client.clone(),
        connections: connections.clone(),
    }));
    let connection = tokio::spawn(run_connection(
        Arc::downgrade(engine),
        client.clone(),
        eventloop,
        config.clone(),
        connected,
        republish.clone(),
    ));
    let publisher = tokio::spawn(run_publisher(
        Arc::downgrade(engine),
        client,
        config,
        subscription,
        connections,
        republish,
    ));
    Ok(vec![connection, publisher])
}

/// Polls the connection: connects (again, with backoff), subscribes after each connect, and
/// hands incoming messages on.
async fn run_connection(
    engine: std::sync::Weak<Engine>,
    client: Link,
    mut eventloop: Poller,
    config: Arc<BridgeConfig>,
    connected: tokio::sync::watch::Sender<(u64, bool)>,
    republish: Arc<tokio::sync::Notify>,
) {
    let commands = Arc::new(tokio::sync::Semaphore::new(COMMANDS_AT_ONCE));
    let mut backoff = Duration::from_millis(250);
    let mut failures = 0u64;
    loop {
        if engine.strong_count() == 0 {
            client.try_disconnect();
            return;
        }
        match eventloop.poll().await {
            Happened::Connected => {
                if let Some(engine) = engine.upgrade() {
                    engine.report_adapter(
                        "mqtt",
                        true,
                        format!("connected to {}:{}", config.host, config.port),
                    );
                    subscribe(&client, &config, &engine);
                }
                if failures > 0 {
                    tracing::info!(after = failures, "MQTT broker connected again");
                } else {
                    tracing::info!(broker = %config.host, port = config.port, "MQTT broker connected");
                }
                failures = 0;
                backoff = Duration::from_millis(250);
                connected.send_modify(|(generation, up)| {
                    *generation += 1;
                    *up = true;
                });
            }
            Happened::Message(message) => {
                let Some(engine) = engine.upgrade() else {
                    return;
                };
                incoming(&engine, &client, &config, &republish, &commands, message);
            }
            Happened::Nothing => {}
            Happened::Failed(why) => {
                failures += 1;
                connected.send_if_modified(|(_, up)| std::mem::replace(up, false));
                if let Some(engine) = engine.upgrade() {
                    engine.report_adapter(
                        "mqtt",
                        false,
                        format!(
                            "the broker {}:{} is unreachable or refused the connection ({why}); retrying",
                            config.host, config.port
                        ),
                    );
                }
                // Every failure is logged while it is new, then every tenth.
                if failures <= 3 || failures.is_multiple_of(10) {
                    tracing::warn!(error = %why, attempt = failures, retry_in_ms = backoff.as_millis() as u64, "MQTT broker unreachable; actions go on, states are published once it is back");
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// Subscribes to the command topics, Home Assistant's status and every MQTT profile's filter
/// (again after a reload: subscribing twice is harmless).
fn subscribe(client: &Link, config: &BridgeConfig, engine: &Engine) {
    let mut filters: Vec<String> = engine
        .profiles()
        .profiles
        .values()
        .filter_map(|p| p.mqtt.as_ref()?.subscribe.clone())
        .collect();
    if config.commands {
        let base = &config.base_topic;
        filters.push(format!("{base}/event/+/run"));
        filters.push(format!("{base}/action/+/run"));
        filters.push(format!("{base}/device/+/set"));
    }
    if let Some(prefix) = &config.discovery_prefix {
        filters.push(format!("{prefix}/status"));
    }
    for filter in filters {
        if let Err(error) = client.try_subscribe(&filter) {
            tracing::warn!(topic = %filter, error = %error, "MQTT subscription not sent");
        }
    }
}

/// A message from the broker: Home Assistant's birth message, or a command.
fn incoming(
    engine: &Arc<Engine>,
    client: &Link,
    config: &Arc<BridgeConfig>,
    republish: &Arc<tokio::sync::Notify>,
    commands: &Arc<tokio::sync::Semaphore>,
    message: Message,
) {
    let topic = message.topic.clone();
    if let Some(prefix) = &config.discovery_prefix {
        if topic == format!("{prefix}/status") {
            if message.payload.as_ref() == b"online" {
                republish.notify_one();
            }
            return;
        }
    }
    let receivers: Vec<Arc<crate::profile::Profile>> = engine
        .profiles()
        .profiles
        .values()
        .filter(|p| {
            p.mqtt
                .as_ref()
                .and_then(|m| m.subscribe.as_deref())
                .is_some_and(|filter| rumqttc::matches(&topic, filter))
        })
        .cloned()
        .collect();
    if !receivers.is_empty() {
        if message.payload.len() > MAX_PAYLOAD_BYTES {
            tracing::warn!(topic = %topic, bytes = message.payload.len(), "an MQTT message over 1 MiB was not taken");
            return;
        }
        let Ok(payload) = std::str::from_utf8(&message.payload) else {
            tracing::warn!(topic = %topic, "an MQTT message that is not UTF-8 text was not taken");
            return;
        };
        let (engine, places, payload): (_, _, Arc<str>) =
            (engine.clone(), commands.clone(), payload.into());
        tokio::spawn(async move {
            let Ok(_place) = places.acquire_owned().await else {
                return;
            };
            for profile in receivers {
                engine
                    .receive_message(profile, &topic, payload.clone())
                    .await;
            }
        });
        return;
    }
    if message.retain {
        // A command kept by the broker would run again at every reconnect.
        tracing::warn!(topic = %topic, "a retained MQTT command was ignored: commands must not be retained");
        return;
    }
    let Some(command) = topics::parse_command(&config.base_topic, &topic) else {
        return;
    };
    let (engine, client, config, places) = (
        engine.clone(),
        client.clone(),
        config.clone(),
        commands.clone(),
    );
    tokio::spawn(async move {
        let Ok(_place) = places.acquire_owned().await else {
            return;
        };
        let answer = run_command(&engine, &config, &command, &message.payload).await;
        // MQTT 5: where the sender asked, with its correlation data; else beside the command.
        let answer_topic = message
            .response_topic
            .filter(|t| !t.is_empty() && !t.contains(['+', '#']))
            .unwrap_or_else(|| command.result_topic(&config.base_topic));
        if let Err(error) = client
            .answer(
                answer_topic,
                config.qos,
                answer.to_string(),
                message.correlation,
            )
            .await
        {
            tracing::warn!(error = %error, "an MQTT command's answer was not sent");
        }
    });
}

/// Runs a command through the engine's door; its answer (a record, or `{"error": …}`).
async fn run_command(
    engine: &Arc<Engine>,
    config: &BridgeConfig,
    command: &topics::Command,
    payload: &[u8],
) -> serde_json::Value {
    let error = |message: String| json!({ "error": message });
    if payload.len() > MAX_PAYLOAD_BYTES {
        return error(format!(
            "the payload is {} bytes, over the limit of {MAX_PAYLOAD_BYTES}: nothing ran",
            payload.len()
        ));
    }
    let Ok(text) = std::str::from_utf8(payload) else {
        return error("the payload is not UTF-8 text: nothing ran".into());
    };
    match command {
        topics::Command::Event(name) | topics::Command::Action(name) if !config.allowed(name) => {
            error(format!("`{name}` is not in mqtt.allow: nothing ran"))
        }
        topics::Command::Event(name) => {
            match engine.fire(name, "mqtt", Some(text.into()), 0).await {
                Ok(run) => serde_json::to_value(&*run).unwrap_or_default(),
                Err(e) => error(e.to_string()),
            }
        }
        topics::Command::Action(profile) => match engine.run(profile, text).await {
            Ok(record) => serde_json::to_value(&*record).unwrap_or_default(),
            Err(e) => error(e.to_string()),
        },
        topics::Command::SetDevice(reference) => {
            let settable = engine.device(*reference).and_then(|device| {
                let profiles = engine.profiles();
                let profile = profiles.get(&device.key.profile)?;
                profile
                    .mapping
                    .settable_of(&device.key.root, device.key.feature.as_deref())
                    .cloned()
            });
            // A settable text takes the payload as it is ("42" is a text there, not a number).
            if let Some(crate::profile::Settable::Text { max, .. }) = settable {
                if text.chars().count() > usize::from(max) {
                    return error(format!(
                        "the text is longer than this device's {max} characters: nothing was set"
                    ));
                }
                return match engine
                    .set_device(*reference, None, Some(text.to_string()))
                    .await
                {
                    Ok(device) => {
                        json!({ "ref": device.reference, "value": topics::number(device.value), "string": device.string })
                    }
                    Err(e) => error(e.to_string()),
                };
            }
            let (value, string) = match serde_json::from_str::<serde_json::Value>(text) {
                Ok(serde_json::Value::Number(n)) => (n.as_f64(), None),
                Ok(serde_json::Value::Object(fields)) => (
                    fields.get("value").and_then(|v| v.as_f64()),
                    fields
                        .get("string")
                        .and_then(|s| s.as_str())
                        .map(str::to_string),
                ),
                _ => (None, Some(text.to_string())),
            };
            match engine.set_device(*reference, value, string).await {
                Ok(device) => {
                    json!({ "ref": device.reference, "value": topics::number(device.value), "string": device.string })
                }
                Err(e) => error(e.to_string()),
            }
        }
    }
}

/// What the publisher has told the broker in this session, and what is still to tell.
#[derive(Default)]
struct Published {
    dirty_devices: HashSet<u64>,
    dirty_globals: HashSet<String>,
    dirty_profiles: HashSet<String>,
    /// Deleted devices whose discovery configs, then retained state, are still to be cleared.
    removed: Vec<Device>,
    /// Profiles and events deleted by a reload, whose configs are still to be cleared.
    gone_profiles: Vec<String>,
    gone_events: Vec<String>,
    /// Profiles and events whose configs were published in this session.
    announced_profiles: HashSet<String>,
    announced_events: HashSet<String>,
    /// The profiles and events loaded at the last reload (to tell which went away).
    known_profiles: HashSet<String>,
    known_events: HashSet<String>,
    /// How each device was announced in this session (`None`: as an HA device only).
    announced: HashMap<u64, Option<topics::Platform>>,
    /// Devices announced at least once since the process started: the first time, the configs
    /// of the other platforms are cleared (what an older version or another setting left).
    ever_announced: HashSet<u64>,
    bridge_announced: bool,
    /// Everything to be published again (a new session, Home Assistant's birth, a reload).
    everything: bool,
}

impl Published {
    fn pending(&self) -> bool {
        !(self.dirty_devices.is_empty()
            && self.removed.is_empty()
            && self.gone_profiles.is_empty()
            && self.gone_events.is_empty()
            && self.dirty_globals.is_empty()
            && self.dirty_profiles.is_empty()
            && !self.everything)
    }

    /// Forgets what was announced: the next round announces everything again.
    fn announce_again(&mut self) {
        self.announced.clear();
        self.announced_profiles.clear();
        self.announced_events.clear();
        self.bridge_announced = false;
        self.everything = true;
    }

    /// After a reload: profiles and events no longer loaded get their configs cleared.
    fn reloaded(&mut self, engine: &Engine) {
        let profiles: HashSet<String> = engine.profiles().profiles.keys().cloned().collect();
        let events: HashSet<String> = engine
            .automation()
            .events()
            .events
            .keys()
            .cloned()
            .collect();
        self.gone_profiles
            .extend(self.known_profiles.difference(&profiles).cloned());
        self.gone_events
            .extend(self.known_events.difference(&events).cloned());
        self.known_profiles = profiles;
        self.known_events = events;
    }
}

/// Publishes what changed, the latest state of each device once, and everything again after a
/// (re)connect, Home Assistant's birth message or a reload. Never blocks the bus: a full client
/// queue leaves things dirty for the next round.
async fn run_publisher(
    engine: std::sync::Weak<Engine>,
    client: Link,
    config: Arc<BridgeConfig>,
    mut subscription: crate::engine::bus::Subscription,
    mut connections: tokio::sync::watch::Receiver<(u64, bool)>,
    republish: Arc<tokio::sync::Notify>,
) {
    let mut state = Published::default();
    if let Some(engine) = engine.upgrade() {
        state.reloaded(&engine);
    }
    let mut connected = false;
    // Authorization health changes with time alone (a token nears its expiry): looked at again
    // every minute.
    let mut health_check = tokio::time::interval(Duration::from_secs(60));
    loop {
        let retry = state.pending();
        tokio::select! {
            delivery = subscription.next() => match delivery {
                Delivery::Event(HubEvent::DeviceChanged { change }) => {
                    state.dirty_devices.insert(change.device.reference);
                }
                Delivery::Event(HubEvent::DeviceRemoved { device }) => {
                    state.dirty_devices.remove(&device.reference);
                    state.announced.remove(&device.reference);
                    state.removed.push(Arc::unwrap_or_clone(device));
                }
                Delivery::Event(HubEvent::GlobalChanged { global }) => {
                    state.dirty_globals.insert(global.name.clone());
                }
                Delivery::Event(HubEvent::RunFinished { run }) => {
                    state.dirty_profiles.insert(run.profile.clone());
                }
                Delivery::Event(HubEvent::AuthorizationChanged { profile }) => {
                    state.dirty_profiles.insert(profile);
                }
                Delivery::Event(HubEvent::EventFinished { run }) => {
                    // A moment, not a state: published now or never (never retained, so a
                    // reconnecting Home Assistant does not see it fire again).
                    if connected && config.discovery_prefix.is_some() {
                        publish_outcome(&client, &config, &run);
                    }
                    continue;
                }
                Delivery::Event(HubEvent::ProfilesReloaded { .. }) => {
                    if let Some(engine) = engine.upgrade() {
                        if connected {
                            subscribe(&client, &config, &engine);
                        }
                        // Buttons, units and settable devices may have changed with the files.
                        state.reloaded(&engine);
                        state.announce_again();
                    }
                }
                Delivery::Resync { .. } => state.everything = true,
                Delivery::Closed => return,
            },
            changed = connections.changed() => {
                if changed.is_err() {
                    return;
                }
                connected = connections.borrow_and_update().1;
                if connected {
                    // A new session: the broker may have lost everything retained.
                    state.announce_again();
                }
            }
            () = republish.notified() => {
                // Home Assistant just started: its entities wait for configs, then states.
                tokio::time::sleep(Duration::from_millis(500)).await;
                state.announce_again();
            }
            _ = health_check.tick() => {
                if let Some(engine) = engine.upgrade() {
                    state.dirty_profiles.extend(
                        engine
                            .profiles()
                            .profiles
                            .values()
                            .filter(|p| matches!(p.auth, crate::profile::AuthSpec::OAuth2(_)))
                            .map(|p| p.name.clone()),
                    );
                }
            }
            () = tokio::time::sleep(Duration::from_millis(50)), if retry && connected => {}
        }
        if !connected {
            continue;
        }
        let Some(engine) = engine.upgrade() else {
            return;
        };
        if publish_round(&engine, &client, &config, &mut state)
            .await
            .is_err()
        {
            // The client's queue is full: what is left stays dirty for the next round.
            continue;
        }
    }
}

/// The client's queue was full: stop this round, keep what is left for the next.
struct QueueFull;

fn send(
    client: &Link,
    topic: String,
    qos: u8,
    retain: bool,
    payload: impl Into<Vec<u8>>,
) -> Result<(), QueueFull> {
    client
        .try_publish(topic, qos, retain, payload)
        .map_err(|_| QueueFull)
}

/// One round of publishing: the bridge's availability and its HA device, removals, profiles,
/// events, devices and globals, in that order.
async fn publish_round(
    engine: &Arc<Engine>,
    client: &Link,
    config: &BridgeConfig,
    state: &mut Published,
) -> Result<(), QueueFull> {
    if state.everything {
        send(client, config.bridge_state_topic(), 1, true, "online")?;
        state
            .dirty_devices
            .extend(engine.devices().iter().map(|d| d.reference));
        state
            .dirty_globals
            .extend(engine.globals().into_iter().map(|g| g.name));
        state
            .dirty_profiles
            .extend(engine.profiles().profiles.keys().cloned());
        state.everything = false;
    }
    if let Some(prefix) = &config.discovery_prefix {
        if !state.bridge_announced {
            for (topic, payload) in topics::bridge_configs(config, prefix) {
                send(client, topic, 1, true, payload.to_string())?;
            }
            state.bridge_announced = true;
        }
        clear_gone(client, config, prefix, state)?;
        publish_events(engine, client, config, prefix, state)?;
    }
    // A deleted device leaves no entity and no retained state. Its configs go first: Home
    // Assistant, still subscribed to its state, would otherwise read the empty state as a
    // broken value.
    while let Some(device) = state.removed.last() {
        if let Some(prefix) = &config.discovery_prefix {
            for component in topics::Platform::ALL {
                let topic =
                    topics::device_config_topic(config, prefix, component, device.reference);
                send(client, topic, 1, true, Vec::new())?;
            }
        }
        send(
            client,
            topics::state_topic(&config.base_topic, device),
            1,
            true,
            Vec::new(),
        )?;
        state.removed.pop();
    }
    publish_profiles(engine, client, config, state).await?;
    publish_dirty(engine, client, config, state)
}

/// Clears the configs of profiles and events a reload removed.
fn clear_gone(
    client: &Link,
    config: &BridgeConfig,
    prefix: &str,
    state: &mut Published,
) -> Result<(), QueueFull> {
    while let Some(name) = state.gone_profiles.last() {
        for topic in topics::profile_config_topics(config, prefix, name) {
            send(client, topic, 1, true, Vec::new())?;
        }
        state.announced_profiles.remove(name);
        state.gone_profiles.pop();
    }
    while let Some(name) = state.gone_events.last() {
        for topic in topics::event_config_topics(config, prefix, name) {
            send(client, topic, 1, true, Vec::new())?;
        }
        state.announced_events.remove(name);
        state.gone_events.pop();
    }
    Ok(())
}

/// Each loaded event's HA device: its `event` entity and, unless it opts out, its button.
fn publish_events(
    engine: &Engine,
    client: &Link,
    config: &BridgeConfig,
    prefix: &str,
    state: &mut Published,
) -> Result<(), QueueFull> {
    let events = engine.automation().events();
    for (name, event) in &events.events {
        if state.announced_events.contains(name) {
            continue;
        }
        let button = topics::offers_button(config, name, event.home_assistant_button);
        let configs = topics::event_configs(config, prefix, name, button);
        let [_, button_topic] = topics::event_config_topics(config, prefix, name);
        if !button {
            send(client, button_topic, 1, true, Vec::new())?;
        }
        for (topic, payload) in configs {
            send(client, topic, 1, true, payload.to_string())?;
        }
        state.announced_events.insert(name.clone());
    }
    Ok(())
}

/// An event run's outcome for Home Assistant's `event` entity: `{"event_type": …}` with when,
/// why and how long, never retained.
fn publish_outcome(
    client: &Link,
    config: &BridgeConfig,
    run: &crate::engine::automation::EventRun,
) {
    use crate::engine::automation::EventOutcome;
    let event_type = match run.outcome {
        EventOutcome::Ok => "finished",
        EventOutcome::Failed => "failed",
        EventOutcome::ConditionsFalse => "conditions_false",
        EventOutcome::Skipped => "skipped",
    };
    let mut payload = json!({
        "event_type": event_type,
        "trigger": run.trigger,
        "started_at": run.started_at,
        "duration_ms": run.duration_ms,
    });
    if let (Some(reason), Some(fields)) = (&run.reason, payload.as_object_mut()) {
        fields.insert("reason".into(), json!(reason));
    }
    if let Err(error) = client.try_publish(
        topics::event_outcome_topic(&config.base_topic, &run.event),
        config.qos,
        false,
        payload.to_string(),
    ) {
        tracing::debug!(event = %run.event, error = %error, "an event run's outcome was not published");
    }
}

/// Each profile's last run and, for OAuth2 profiles, its authorization health: what a hub's
/// automation can warn about ("needs re-authorization").
async fn publish_profiles(
    engine: &Arc<Engine>,
    client: &Link,
    config: &BridgeConfig,
    state: &mut Published,
) -> Result<(), QueueFull> {
    let names: Vec<String> = state.dirty_profiles.iter().cloned().collect();
    let profiles = engine.profiles();
    for name in names {
        let Some(profile) = profiles.get(&name) else {
            state.dirty_profiles.remove(&name);
            continue;
        };
        let oauth = matches!(profile.auth, crate::profile::AuthSpec::OAuth2(_));
        if let Some(prefix) = &config.discovery_prefix {
            if !state.announced_profiles.contains(&name) {
                // A listening profile has no action to run.
                let button = profile.listen.is_none()
                    && topics::offers_button(config, &name, profile.home_assistant_button);
                if !button {
                    let topic = topics::profile_button_topic(config, prefix, &name);
                    send(client, topic, 1, true, Vec::new())?;
                }
                for (topic, payload) in
                    topics::profile_configs(config, prefix, &name, oauth, button)
                {
                    send(client, topic, 1, true, payload.to_string())?;
                }
                state.announced_profiles.insert(name.clone());
            }
        }
        let last = engine.history(Some(&name), 1).into_iter().next();
        let last_run = match &last {
            Some(run) => json!({
                "state": if run.skipped { "skipped" } else if run.ok { "ok" } else { "failed" },
                "started_at": run.started_at,
                "duration_ms": run.duration_ms,
                "errors": run.errors.iter().map(|e| e.message.clone()).collect::<Vec<_>>(),
            }),
            None => json!({ "state": "never run" }),
        };
        let base = &config.base_topic;
        send(
            client,
            topics::profile_topic(base, &name, "last_run"),
            config.qos,
            true,
            last_run.to_string(),
        )?;
        if oauth {
            let (reader, profile_name) = (engine.clone(), name.clone());
            let status =
                tokio::task::spawn_blocking(move || reader.authorization_status(&profile_name))
                    .await
                    .ok()
                    .and_then(Result::ok);
            send(
                client,
                topics::profile_topic(base, &name, "authorization"),
                config.qos,
                true,
                authorization_health(status).to_string(),
            )?;
        }
        state.dirty_profiles.remove(&name);
    }
    Ok(())
}

/// An OAuth2 profile's authorization as its HA entity shows it (never a token).
fn authorization_health(
    status: Option<crate::engine::authorization::AuthorizationStatus>,
) -> serde_json::Value {
    use crate::engine::authorization::AuthorizationStatus;
    match status {
        Some(AuthorizationStatus::Authorized {
            expiring,
            expires_at,
            ..
        }) => json!({
            "state": if expiring { "expiring" } else { "authorized" },
            "expires_at": expires_at,
        }),
        Some(AuthorizationStatus::NeedsReauthorization { reason })
        | Some(AuthorizationStatus::Failed { reason }) => json!({
            "state": "needs_reauthorization",
            "reason": reason,
        }),
        Some(AuthorizationStatus::AwaitingUser { .. }) => json!({ "state": "awaiting_user" }),
        Some(AuthorizationStatus::NeverAuthorized) | None => {
            json!({ "state": "never_authorized" })
        }
    }
}

/// How the profile that made a device describes it (the default when it is gone).
fn description_of<'a>(
    profiles: &'a crate::profile::ProfileSet,
    device: &Device,
) -> topics::Description<'a> {
    let Some(profile) = profiles.get(&device.key.profile) else {
        return topics::Description::default();
    };
    let mapping = &profile.mapping;
    let feature = device.key.feature.as_deref();
    let (unit, device_class) = mapping.description_of(&device.key.root, feature);
    topics::Description {
        unit,
        device_class,
        settable: mapping.settable_of(&device.key.root, feature),
        own_value: feature.is_some() || mapping.root_has_own_value(&device.key.root),
    }
}

fn publish_dirty(
    engine: &Engine,
    client: &Link,
    config: &BridgeConfig,
    state: &mut Published,
) -> Result<(), QueueFull> {
    let devices: Vec<u64> = state.dirty_devices.iter().copied().collect();
    let profiles = engine.profiles();
    for reference in devices {
        let Some(device) = engine.device(reference) else {
            state.dirty_devices.remove(&reference);
            continue;
        };
        if let Some(prefix) = &config.discovery_prefix {
            announce_device(client, config, prefix, state, &profiles, &device)?;
        }
        send(
            client,
            topics::state_topic(&config.base_topic, &device),
            config.qos,
            true,
            state_payload(&device).to_string(),
        )?;
        state.dirty_devices.remove(&reference);
    }
    let globals: Vec<String> = state.dirty_globals.iter().cloned().collect();
    let known: HashMap<String, Global> = if globals.is_empty() {
        HashMap::new()
    } else {
        engine
            .globals()
            .into_iter()
            .map(|g| (g.name.clone(), g))
            .collect()
    };
    for name in globals {
        if let Some(global) = known.get(&name) {
            let payload = json!({
                "value": topics::number(global.value),
                "string": global.string,
                "last_change": topics::time_text(global.changed_at_ms),
            });
            send(
                client,
                topics::global_topic(&config.base_topic, &name),
                config.qos,
                true,
                payload.to_string(),
            )?;
        }
        state.dirty_globals.remove(&name);
    }
    Ok(())
}

/// Announces a device to Home Assistant when how it is shown changed (or was never said in
/// this session): the config of the platform it had is cleared first.
fn announce_device(
    client: &Link,
    config: &BridgeConfig,
    prefix: &str,
    state: &mut Published,
    profiles: &crate::profile::ProfileSet,
    device: &Device,
) -> Result<(), QueueFull> {
    let reference = device.reference;
    let description = description_of(profiles, device);
    let platform = topics::platform_of(device, &description);
    let before = state.announced.get(&reference).copied();
    if before == Some(platform) {
        return Ok(());
    }
    let first = !state.ever_announced.contains(&reference);
    for component in topics::Platform::ALL {
        let had = match before {
            Some(Some(old)) => old.component() == component,
            _ => first,
        };
        let keeps = platform.is_some_and(|p| p.component() == component);
        if had && !keeps {
            let topic = topics::device_config_topic(config, prefix, component, reference);
            send(client, topic, 1, true, Vec::new())?;
        }
    }
    if let Some(platform) = platform {
        let (topic, payload) =
            topics::discovery_config(config, prefix, device, platform, description);
        send(client, topic, 1, true, payload.to_string())?;
    }
    state.announced.insert(reference, platform);
    state.ever_announced.insert(reference);
    Ok(())
}

/// Publishes MQTT profiles' actions for the engine.
struct Outbox {
    client: Link,
    connections: tokio::sync::watch::Receiver<(u64, bool)>,
}

impl crate::engine::MessageOutbox for Outbox {
    fn publish(
        &self,
        topic: &str,
        payload: &str,
        qos: u8,
        retain: bool,
    ) -> Result<(), crate::engine::OutboxError> {
        // An action is for now: it is not kept for a broker that is away.
        if !self.connections.borrow().1 {
            return Err(crate::engine::OutboxError::Unreachable);
        }
        self.client
            .try_publish(topic, qos, retain, payload)
            .map_err(|e| crate::engine::OutboxError::Refused(e.to_string()))
    }
}

/// A device's state message (a whole value as an integer).
pub fn state_payload(device: &Device) -> serde_json::Value {
    json!({
        "ref": device.reference,
        "profile": device.key.profile,
        "root": device.key.root,
        "feature": device.key.feature,
        "value": topics::number(device.value),
        "string": device.string,
        "last_change": topics::time_text(device.changed_at_ms),
    })
}
