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
                    json!({ "ref": device.reference, "value": device.value, "string": device.string })
                }
                Err(e) => error(e.to_string()),
            }
        }
    }
}

/// Publishes what changed, the latest state of each device once, and everything again after a
/// (re)connect or Home Assistant's birth message. Never blocks the bus: a full client queue
/// leaves things dirty for the next round.
async fn run_publisher(
    engine: std::sync::Weak<Engine>,
    client: Link,
    config: Arc<BridgeConfig>,
    mut subscription: crate::engine::bus::Subscription,
    mut connections: tokio::sync::watch::Receiver<(u64, bool)>,
    republish: Arc<tokio::sync::Notify>,
) {
    let mut dirty_devices: HashSet<u64> = HashSet::new();
    let mut dirty_globals: HashSet<String> = HashSet::new();
    let mut dirty_profiles: HashSet<String> = HashSet::new();
    // Deleted devices whose retained state and config are still to be cleared.
    let mut removed: Vec<Device> = Vec::new();
    let mut announced_profiles: HashSet<String> = HashSet::new();
    // Whether each device's discovery config announced text (true) or a number.
    let mut announced: HashMap<u64, bool> = HashMap::new();
    let mut everything = false;
    let mut connected = false;
    // Authorization health changes with time alone (a token nears its expiry): looked at again
    // every minute.
    let mut health_check = tokio::time::interval(Duration::from_secs(60));
    loop {
        let retry = !(dirty_devices.is_empty()
            && removed.is_empty()
            && dirty_globals.is_empty()
            && dirty_profiles.is_empty()
            && !everything);
        tokio::select! {
            delivery = subscription.next() => match delivery {
                                Delivery::Event(HubEvent::DeviceChanged { change }) => {
                    dirty_devices.insert(change.device.reference);
                }
                Delivery::Event(HubEvent::DeviceRemoved { device }) => {
                    dirty_devices.remove(&device.reference);
                    announced.remove(&device.reference);
                    removed.push(device);
                }
                Delivery::Event(HubEvent::GlobalChanged { global }) => {
                    dirty_globals.insert(global.name.clone());
                }
                Delivery::Event(HubEvent::RunFinished { run }) => {
                    dirty_profiles.insert(run.profile.clone());
                }
                Delivery::Event(HubEvent::AuthorizationChanged { profile }) => {
                    dirty_profiles.insert(profile);
                }
                Delivery::Event(HubEvent::ProfilesReloaded { .. }) => {
                    if let (true, Some(engine)) = (connected, engine.upgrade()) {
                        subscribe(&client, &config, &engine);
                    }
                    continue;
                }
                Delivery::Event(_) => continue,
                Delivery::Resync { .. } => everything = true,
                Delivery::Closed => return,
            },
            changed = connections.changed() => {
                if changed.is_err() {
                    return;
                }
                connected = connections.borrow_and_update().1;
                if connected {
                    // A new session: the broker may have lost everything retained.
                    announced.clear();
                    announced_profiles.clear();
                    everything = true;
                }
            }
            () = republish.notified() => {
                // Home Assistant just started: its entities wait for configs, then states.
                tokio::time::sleep(Duration::from_millis(500)).await;
                announced.clear();
                announced_profiles.clear();
                everything = true;
            }
            _ = health_check.tick() => {
                if let Some(engine) = engine.upgrade() {
                    dirty_profiles.extend(
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
        if everything {
            if client
                .try_publish(config.bridge_state_topic(), 1, true, "online")
                .is_err()
            {
                continue;
            }
            dirty_devices.extend(engine.devices().iter().map(|d| d.reference));
            dirty_globals.extend(engine.globals().into_iter().map(|g| g.name));
            dirty_profiles.extend(engine.profiles().profiles.keys().cloned());
            everything = false;
        }
        // A deleted device leaves no retained state and, for Home Assistant, no entity.
        while let Some(device) = removed.last() {
            let discovery = config.discovery_prefix.as_ref().map(|prefix| {
                topics::discovery_config(&config, prefix, device, Default::default()).0
            });
            let cleared = client
                .try_publish(
                    topics::state_topic(&config.base_topic, device),
                    1,
                    true,
                    Vec::new(),
                )
                .and_then(|()| match &discovery {
                    Some(topic) => client.try_publish(topic.clone(), 1, true, Vec::new()),
                    None => Ok(()),
                });
            if cleared.is_err() {
                break;
            }
            removed.pop();
        }
        publish_profiles(
            &engine,
            &client,
            &config,
            &mut dirty_profiles,
            &mut announced_profiles,
        )
        .await;
        publish_dirty(
            &engine,
            &client,
            &config,
            &mut dirty_devices,
            &mut dirty_globals,
            &mut announced,
        );
    }
}

/// Each profile's last run and, for OAuth2 profiles, its authorization health: what a hub's
/// automation can warn about ("needs re-authorization").
async fn publish_profiles(
    engine: &Arc<Engine>,
    client: &Link,
    config: &BridgeConfig,
    dirty: &mut HashSet<String>,
    announced: &mut HashSet<String>,
) {
    let names: Vec<String> = dirty.iter().cloned().collect();
    let profiles = engine.profiles();
    for name in names {
        let Some(profile) = profiles.get(&name) else {
            dirty.remove(&name);
            continue;
        };
        let oauth = matches!(profile.auth, crate::profile::AuthSpec::OAuth2(_));
        if let Some(prefix) = &config.discovery_prefix {
            if !announced.contains(&name) {
                for (topic, payload) in topics::profile_configs(config, prefix, &name, oauth) {
                    if client
                        .try_publish(topic, 1, true, payload.to_string())
                        .is_err()
                    {
                        return;
                    }
                }
                announced.insert(name.clone());
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
        if client
            .try_publish(
                topics::profile_topic(base, &name, "last_run"),
                config.qos,
                true,
                last_run.to_string(),
            )
            .is_err()
        {
            return;
        }
        if oauth {
            let (reader, profile_name) = (engine.clone(), name.clone());
            let status =
                tokio::task::spawn_blocking(move || reader.authorization_status(&profile_name))
                    .await
                    .ok()
                    .and_then(Result::ok);
            let health = match status {
                Some(crate::engine::authorization::AuthorizationStatus::Authorized {
                    expiring,
                    expires_at,
                    ..
                }) => json!({
                    "state": if expiring { "expiring" } else { "authorized" },
                    "expires_at": expires_at,
                }),
                Some(crate::engine::authorization::AuthorizationStatus::NeedsReauthorization {
                    reason,
                })
                | Some(crate::engine::authorization::AuthorizationStatus::Failed { reason }) => {
                    json!({
                        "state": "needs_reauthorization",
                        "reason": reason,
                    })
                }
                Some(crate::engine::authorization::AuthorizationStatus::AwaitingUser {
                    ..
                }) => json!({ "state": "awaiting_user" }),
                Some(crate::engine::authorization::AuthorizationStatus::NeverAuthorized) | None => {
                    json!({ "state": "never_authorized" })
                }
            };
            if client
                .try_publish(
                    topics::profile_topic(base, &name, "authorization"),
                    config.qos,
                    true,
                    health.to_string(),
                )
                .is_err()
            {
                return;
            }
        }
        dirty.remove(&name);
    }
}

fn publish_dirty(
    engine: &Engine,
    client: &Link,
    config: &BridgeConfig,
    dirty_devices: &mut HashSet<u64>,
    dirty_globals: &mut HashSet<String>,
    announced: &mut HashMap<u64, bool>,
) {
    let devices: Vec<u64> = dirty_devices.iter().copied().collect();
    for reference in devices {
        let Some(device) = engine.device(reference) else {
            dirty_devices.remove(&reference);
            continue;
        };
        let text = !device.string.is_empty();
        if let Some(prefix) = &config.discovery_prefix {
            if announced.get(&reference) != Some(&text) {
                let profiles = engine.profiles();
                let description = profiles
                    .get(&device.key.profile)
                    .map(|profile| {
                        let (unit, device_class) = profile
                            .mapping
                            .description_of(&device.key.root, device.key.feature.as_deref());
                        topics::Description { unit, device_class }
                    })
                    .unwrap_or_default();
                let (topic, payload) =
                    topics::discovery_config(config, prefix, &device, description);
                if client
                    .try_publish(topic, 1, true, payload.to_string())
                    .is_err()
                {
                    return;
                }
                announced.insert(reference, text);
            }
        }
        let payload = state_payload(&device);
        if client
            .try_publish(
                topics::state_topic(&config.base_topic, &device),
                config.qos,
                true,
                payload.to_string(),
            )
            .is_err()
        {
            return;
        }
        dirty_devices.remove(&reference);
    }
    let globals: Vec<String> = dirty_globals.iter().cloned().collect();
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
                "value": global.value,
                "string": global.string,
                "last_change": topics::time_text(global.changed_at_ms),
            });
            if client
                .try_publish(
                    topics::global_topic(&config.base_topic, &name),
                    config.qos,
                    true,
                    payload.to_string(),
                )
                .is_err()
            {
                return;
            }
        }
        dirty_globals.remove(&name);
    }
}

/// Publishes MQTT profiles' actions for the engine.
struct Outbox {
    client: Link,
    connections: tokio::sync::watch::Receiver<(u64, bool)>,
}

impl crate::engine::MessageOutbox for Outbox {
    fn publish(&self, topic: &str, payload: &str, qos: u8, retain: bool) -> Result<(), String> {
        // An action is for now: it is not kept for a broker that is away.
        if !self.connections.borrow().1 {
            return Err("the MQTT broker is unreachable: nothing was published".into());
        }

        self.client
            .try_publish(topic, qos, retain, payload)
            .map_err(|e| format!("the message could not be handed to the broker connection: {e}"))
    }
}

/// A device's state message.
pub fn state_payload(device: &Device) -> serde_json::Value {
    json!({
        "ref": device.reference,
        "profile": device.key.profile,
        "root": device.key.root,
        "feature": device.key.feature,
        "value": device.value,
        "string": device.string,
        "last_change": topics::time_text(device.changed_at_ms),
    })
}
