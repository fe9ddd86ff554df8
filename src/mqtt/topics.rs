//! The bridge's topics and payloads: device and global state topics with names made safe and
//! stable (a name holding `/`, `+`, `#`, spaces or other characters gets a short, stable hash
//! so two names never share a topic), command topics parsed back, and Home Assistant discovery
//! configs (abbreviated keys, a stable `unique_id` from the device's reference, one HA device
//! per root with its features, `origin`, the bridge's availability).

use serde_json::json;

use super::BridgeConfig;
use crate::devices::Device;

/// A name as one topic segment: kept when it is plain (`A-Z a-z 0-9 _ -`), otherwise made plain
/// and followed by a stable hash of the original, so different names never meet.
pub fn topic_segment(name: &str) -> String {
    let plain = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if plain {
        return name.to_string();
    }
    let cleaned: String = name
        .chars()
        .take(64)
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{cleaned}-{:08x}", fnv1a(name.as_bytes()))
}

/// FNV-1a, 32 bits: a stable (not secret) fingerprint of a name for topic segments.
fn fnv1a(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5, |hash, byte| {
        (hash ^ u32::from(*byte)).wrapping_mul(0x0100_0193)
    })
}

/// `<base>/<profile>/<root>[/<feature>]/state`. The profile is part of it: two profiles may
/// name a root alike.
pub fn state_topic(base: &str, device: &Device) -> String {
    let key = &device.key;
    let mut topic = format!(
        "{base}/{}/{}",
        topic_segment(&key.profile),
        topic_segment(&key.root)
    );
    if let Some(feature) = &key.feature {
        topic.push('/');
        topic.push_str(&topic_segment(feature));
    }
    topic.push_str("/state");
    topic
}

/// `<base>/profile/<profile>/<what>` (`last_run`, `authorization`).
pub fn profile_topic(base: &str, profile: &str, what: &str) -> String {
    format!("{base}/profile/{}/{what}", topic_segment(profile))
}

/// `<base>/event/<event>/outcome`: each run's outcome, for Home Assistant's `event` entity.
pub fn event_outcome_topic(base: &str, event: &str) -> String {
    format!("{base}/event/{}/outcome", topic_segment(event))
}

/// The `origin` block of every config.
fn origin() -> serde_json::Value {
    json!({ "name": "Bellhop", "sw": env!("CARGO_PKG_VERSION") })
}

/// The identifier of the bridge's own HA device, which every other device hangs off.
fn bridge_identifier(node: &str) -> String {
    format!("{node}_bridge")
}

/// A name as an entity id's object part, as Home Assistant's `slugify` would make it: lower
/// case ASCII letters and digits joined by single `_` (common accented letters lose their
/// accent). Empty when nothing of the name is left.
pub fn slug(parts: &[&str]) -> String {
    let mut out = String::new();
    for ch in parts.join(" ").chars().flat_map(char::to_lowercase) {
        let plain = match ch {
            'a'..='z' | '0'..='9' => Some(ch),
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' => Some('a'),
            'ç' => Some('c'),
            'è' | 'é' | 'ê' | 'ë' => Some('e'),
            'ì' | 'í' | 'î' | 'ï' => Some('i'),
            'ñ' => Some('n'),
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' => Some('o'),
            'ù' | 'ú' | 'û' | 'ü' => Some('u'),
            'ý' | 'ÿ' => Some('y'),
            'ß' => {
                out.push_str("ss");
                continue;
            }
            _ => None,
        };
        match plain {
            Some(ch) => out.push(ch),
            None if !out.is_empty() && !out.ends_with('_') => out.push('_'),
            None => {}
        }
        if out.len() >= 200 {
            break;
        }
    }
    out.trim_end_matches('_').to_string()
}

/// `<component>.<slug>` from the names, or from `fallback` when the names leave nothing.
fn entity_id(component: &str, parts: &[&str], fallback: &str) -> String {
    let slug = slug(parts);
    if slug.is_empty() {
        format!("{component}.{fallback}")
    } else {
        format!("{component}.{slug}")
    }
}

/// Whether a name can stand in a command topic as it is (commands name profiles and events
/// plainly; a wildcard would make the topic invalid to publish to).
fn commandable(name: &str) -> bool {
    !name.is_empty() && !name.contains(['+', '#', '/', '\0'])
}

/// The discovery configs of a profile's own entities — its last run, for OAuth2 profiles its
/// authorization health, and (when `button`) a button that runs its action — grouped as one HA
/// device per profile, under the bridge.
pub fn profile_configs(
    config: &BridgeConfig,
    prefix: &str,
    profile: &str,
    oauth: bool,
    button: bool,
) -> Vec<(String, serde_json::Value)> {
    let node = topic_segment(&config.client_id);
    let segment = topic_segment(profile);
    let device = json!({
        "ids": [format!("{node}_profile_{segment}")],
        "name": format!("Bellhop profile {profile}"),
        "mf": "Bellhop",
        "mdl": "HTTP profile",
        "sw": env!("CARGO_PKG_VERSION"),
        "via_device": bridge_identifier(&node),
    });
    let mut entities = vec![("last_run", "last run")];
    if oauth {
        entities.push(("authorization", "authorization"));
    }
    let mut configs: Vec<(String, serde_json::Value)> = entities
        .into_iter()
        .map(|(what, name)| {
            let unique_id = format!("{node}_profile_{segment}_{what}");
            let state = profile_topic(&config.base_topic, profile, what);
            let payload = json!({
                "name": name,
                "uniq_id": unique_id,
                "def_ent_id": entity_id("sensor", &["bellhop", profile, what], &unique_id),
                "stat_t": state,
                "val_tpl": "{{ value_json.state }}",
                "json_attr_t": state,
                "avty_t": config.bridge_state_topic(),
                "ent_cat": "diagnostic",
                "dev": device,
                "o": origin(),
            });
            (
                format!("{prefix}/sensor/{node}/profile_{segment}_{what}/config"),
                payload,
            )
        })
        .collect();
    if button {
        configs.push(button_config(
            config,
            profile_button_topic(config, prefix, profile),
            ("Run", &["bellhop", "run", profile]),
            format!("{node}_profile_{segment}_run"),
            format!("{}/action/{profile}/run", config.base_topic),
            &device,
        ));
    }
    configs
}

/// A button that publishes an empty payload on `command` (a profile's action or an event's
/// firing), named `name` in its HA device, with an entity id slugged from `names`.
fn button_config(
    config: &BridgeConfig,
    topic: String,
    (name, names): (&str, &[&str]),
    unique_id: String,
    command: String,
    device: &serde_json::Value,
) -> (String, serde_json::Value) {
    (
        topic,
        json!({
            "name": name,
            "def_ent_id": entity_id("button", names, &unique_id),
            "uniq_id": unique_id,
            "cmd_t": command,
            "pl_prs": "",
            "ic": "mdi:play",
            "avty_t": config.bridge_state_topic(),
            "dev": device,
            "o": origin(),
        }),
    )
}

/// Where a profile's button config lives, whether or not it is offered (to clear it).
pub fn profile_button_topic(config: &BridgeConfig, prefix: &str, profile: &str) -> String {
    format!(
        "{prefix}/button/{}/profile_{}_run/config",
        topic_segment(&config.client_id),
        topic_segment(profile)
    )
}

/// Whether the bridge offers a profile's action or an event's firing as a button: commands are
/// on, the name is allowed and can stand in a command topic, and the file does not opt out.
pub fn offers_button(config: &BridgeConfig, name: &str, wanted: bool) -> bool {
    wanted && config.commands && config.allowed(name) && commandable(name)
}

/// The outcomes an event run is published with (HA `event` entity types).
pub const EVENT_TYPES: [&str; 4] = ["finished", "failed", "conditions_false", "skipped"];

/// The discovery configs of a Bellhop event: an HA `event` entity that fires with each run's
/// outcome (`finished`, `failed`, `conditions_false`, `skipped`) and, when `button`, a button that
/// fires the event; one HA device per event, under the bridge.
pub fn event_configs(
    config: &BridgeConfig,
    prefix: &str,
    event: &str,
    button: bool,
) -> Vec<(String, serde_json::Value)> {
    let node = topic_segment(&config.client_id);
    let segment = topic_segment(event);
    let device = json!({
        "ids": [format!("{node}_event_{segment}")],
        "name": format!("Bellhop event {event}"),
        "mf": "Bellhop",
        "mdl": "Automation event",
        "sw": env!("CARGO_PKG_VERSION"),
        "via_device": bridge_identifier(&node),
    });
    let unique_id = format!("{node}_event_{segment}_run");
    let mut configs = vec![(
        format!("{prefix}/event/{node}/event_{segment}_run/config"),
        json!({
            "name": "Run",
            "uniq_id": unique_id,
            "def_ent_id": entity_id("event", &["bellhop", event], &unique_id),
            "stat_t": event_outcome_topic(&config.base_topic, event),
            "evt_typ": EVENT_TYPES,
            "avty_t": config.bridge_state_topic(),
            "dev": device,
            "o": origin(),
        }),
    )];
    if button {
        let [_, topic] = event_config_topics(config, prefix, event);
        configs.push(button_config(
            config,
            topic,
            ("Fire", &["bellhop", "fire", event]),
            format!("{node}_event_{segment}_fire"),
            format!("{}/event/{event}/run", config.base_topic),
            &device,
        ));
    }
    configs
}

/// Every config topic an event may have had (to clear them when it goes).
pub fn event_config_topics(config: &BridgeConfig, prefix: &str, event: &str) -> [String; 2] {
    let node = topic_segment(&config.client_id);
    let segment = topic_segment(event);
    [
        format!("{prefix}/event/{node}/event_{segment}_run/config"),
        format!("{prefix}/button/{node}/event_{segment}_fire/config"),
    ]
}

/// Every config topic a profile may have had (to clear them when it goes).
pub fn profile_config_topics(config: &BridgeConfig, prefix: &str, profile: &str) -> [String; 3] {
    let node = topic_segment(&config.client_id);
    let segment = topic_segment(profile);
    [
        format!("{prefix}/sensor/{node}/profile_{segment}_last_run/config"),
        format!("{prefix}/sensor/{node}/profile_{segment}_authorization/config"),
        profile_button_topic(config, prefix, profile),
    ]
}

/// The bridge's own HA device and its entity: a `connectivity` binary sensor that is on while
/// Bellhop is connected (`bridge/state`, with the retained last will `offline`).
pub fn bridge_configs(config: &BridgeConfig, prefix: &str) -> Vec<(String, serde_json::Value)> {
    let node = topic_segment(&config.client_id);
    let unique_id = format!("{node}_bridge_connectivity");
    vec![(
        format!("{prefix}/binary_sensor/{node}/bridge_connectivity/config"),
        json!({
            "name": "Connection state",
            "uniq_id": unique_id,
            "def_ent_id": entity_id("binary_sensor", &["bellhop", &config.client_id, "connection_state"], &unique_id),
            "dev_cla": "connectivity",
            "ent_cat": "diagnostic",
            "stat_t": config.bridge_state_topic(),
            "pl_on": "online",
            "pl_off": "offline",
            "dev": {
                "ids": [bridge_identifier(&node)],
                "name": "Bellhop",
                "mf": "Bellhop",
                "mdl": "Bellhop bridge",
                "sw": env!("CARGO_PKG_VERSION"),
            },
            "o": origin(),
        }),
    )]
}

pub fn global_topic(base: &str, name: &str) -> String {
    format!("{base}/global/{}", topic_segment(name))
}

/// A command taken from the broker.
#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Event(String),
    Action(String),
    SetDevice(u64),
}

impl Command {
    /// Where its answer goes: `<base>/<kind>/<name>/result`.
    pub fn result_topic(&self, base: &str) -> String {
        match self {
            Command::Event(name) => format!("{base}/event/{name}/result"),
            Command::Action(name) => format!("{base}/action/{name}/result"),
            Command::SetDevice(reference) => format!("{base}/device/{reference}/result"),
        }
    }
}

/// The command a topic names, if it names one.
pub fn parse_command(base: &str, topic: &str) -> Option<Command> {
    let rest = topic.strip_prefix(base)?.strip_prefix('/')?;
    let parts: Vec<&str> = rest.split('/').collect();
    match parts.as_slice() {
        ["event", name, "run"] if !name.is_empty() => Some(Command::Event(name.to_string())),
        ["action", name, "run"] if !name.is_empty() => Some(Command::Action(name.to_string())),
        ["device", reference, "set"] => reference.parse().ok().map(Command::SetDevice),
        _ => None,
    }
}

pub fn time_text(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

/// How a profile describes a device to hubs: its unit and Home Assistant device class, how it
/// may be set, and (for a root) whether it has a value of its own.
#[derive(Debug, Clone, Copy)]
pub struct Description<'a> {
    pub unit: Option<&'a str>,
    pub device_class: Option<&'a str>,
    pub settable: Option<&'a crate::profile::Settable>,
    /// False for a root whose features carry the data: it is an HA device, not an entity.
    pub own_value: bool,
}

impl Default for Description<'_> {
    fn default() -> Self {
        Description {
            unit: None,
            device_class: None,
            settable: None,
            own_value: true,
        }
    }
}

/// The HA platform a device is shown as.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Platform {
    /// Read-only: its value (a number) or, when it holds one, its text.
    Sensor { text: bool },
    /// Settable number.
    Number,
    /// Settable text.
    Text,
}

impl Platform {
    pub const ALL: [&'static str; 3] = ["sensor", "number", "text"];

    pub fn component(self) -> &'static str {
        match self {
            Platform::Sensor { .. } => "sensor",
            Platform::Number => "number",
            Platform::Text => "text",
        }
    }
}

/// How a device is shown in Home Assistant, or `None` when it is an HA device only (a root
/// without a value or text of its own).
pub fn platform_of(device: &Device, description: &Description<'_>) -> Option<Platform> {
    let text = !device.string.is_empty();
    match description.settable {
        Some(crate::profile::Settable::Number { .. }) => return Some(Platform::Number),
        Some(crate::profile::Settable::Text { .. }) => return Some(Platform::Text),
        None => {}
    }
    let root = device.key.feature.is_none();
    // What a root holds counts too: a value set by hand makes it an entity.
    if root && !description.own_value && !text && device.value == 0.0 {
        return None;
    }
    Some(Platform::Sensor { text })
}

/// The config topic of a device on a platform (one per platform, so a device that becomes
/// settable can clear the one it had).
pub fn device_config_topic(
    config: &BridgeConfig,
    prefix: &str,
    component: &str,
    reference: u64,
) -> String {
    format!(
        "{prefix}/{component}/{}/{reference}/config",
        topic_segment(&config.client_id)
    )
}

/// Home Assistant's discovery topic and config for a device shown as `platform`: a sensor of
/// its value (a measurement with its unit and device class when the profile gives them) or of
/// its text (at most 255 characters, as HA takes); a `number` or `text` whose command sets it.
/// The `unique_id` comes from the reference (stable across renames); the entity id HA suggests
/// from the root and feature names.
pub fn discovery_config(
    config: &BridgeConfig,
    prefix: &str,
    device: &Device,
    platform: Platform,
    description: Description<'_>,
) -> (String, serde_json::Value) {
    let node = topic_segment(&config.client_id);
    let reference = device.reference;
    let unique_id = format!("{node}_{reference}");
    let key = &device.key;
    let component = platform.component();
    let names: Vec<&str> = std::iter::once(&*key.root)
        .chain(key.feature.as_deref())
        .collect();
    let state = state_topic(&config.base_topic, device);
    let mut payload = json!({
        // A root device's own value is the HA device's main entity (named after it).
        "name": key.feature,
        "uniq_id": unique_id,
        "def_ent_id": entity_id(component, &names, &format!("bellhop_{reference}")),
        "stat_t": state,
        "json_attr_t": state,
        "avty_t": config.bridge_state_topic(),
        "dev": {
            "ids": [format!("{node}_{}_{}", topic_segment(&key.profile), topic_segment(&key.root))],
            "name": key.root,
            "mf": "Bellhop",
            "mdl": format!("profile {}", key.profile),
            "sw": env!("CARGO_PKG_VERSION"),
            "via_device": bridge_identifier(&node),
        },
        "o": origin(),
    });
    let Some(fields) = payload.as_object_mut() else {
        return (String::new(), payload);
    };
    let command = format!("{}/device/{reference}/set", config.base_topic);
    let numeric = |fields: &mut serde_json::Map<String, serde_json::Value>| {
        if let Some(unit) = description.unit {
            fields.insert("unit_of_meas".into(), json!(unit));
        }
        if let Some(class) = description.device_class {
            fields.insert("dev_cla".into(), json!(class));
        }
    };
    match (platform, description.settable) {
        (Platform::Sensor { text: true }, _) => {
            fields.insert("val_tpl".into(), json!("{{ value_json.string[:255] }}"));
        }
        (Platform::Sensor { text: false }, _) => {
            fields.insert("val_tpl".into(), json!("{{ value_json.value }}"));
            numeric(fields);
            if description.unit.is_some() {
                fields.insert("stat_cla".into(), json!("measurement"));
            }
        }
        (
            Platform::Number,
            Some(crate::profile::Settable::Number {
                min,
                max,
                step,
                mode,
            }),
        ) => {
            fields.insert("val_tpl".into(), json!("{{ value_json.value }}"));
            fields.insert("cmd_t".into(), json!(command));
            fields.insert("min".into(), number(*min));
            fields.insert("max".into(), number(*max));
            fields.insert("step".into(), number(*step));
            fields.insert("mode".into(), json!(mode));
            numeric(fields);
        }
        (Platform::Text, Some(crate::profile::Settable::Text { max, pattern })) => {
            fields.insert(
                "val_tpl".into(),
                json!(format!("{{{{ value_json.string[:{max}] }}}}")),
            );
            fields.insert("cmd_t".into(), json!(command));
            fields.insert("max".into(), json!(max));
            if let Some(pattern) = pattern {
                fields.insert("ptrn".into(), json!(pattern));
            }
        }
        // A platform that does not match the description (cannot happen through
        // `platform_of`): shown as a plain sensor of its value.
        (Platform::Number | Platform::Text, _) => {
            fields.insert("val_tpl".into(), json!("{{ value_json.value }}"));
        }
    }
    (
        device_config_topic(config, prefix, component, reference),
        payload,
    )
}

/// A number as JSON: a whole number as an integer (`3`, not `3.0`, which Home Assistant would
/// show as written), anything else as it is.
pub fn number(value: f64) -> serde_json::Value {
    const EXACT: f64 = 9_007_199_254_740_992.0; // 2^53: every whole number below is exact
    if value.is_finite() && value.fract() == 0.0 && value.abs() < EXACT {
        json!(value as i64)
    } else {
        json!(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::devices::DeviceKey;

    fn device(profile: &str, root: &str, feature: Option<&str>, string: &str) -> Device {
        Device {
            reference: 7,
            key: DeviceKey {
                profile: profile.into(),
                root: root.into(),
                feature: feature.map(Into::into),
            },
            value: 21.5,
            string: string.into(),
            changed_at_ms: 0,
        }
    }

    #[test]
    fn names_become_safe_stable_distinct_segments() {
        assert_eq!(topic_segment("kitchen"), "kitchen");
        for hostile in ["a/b", "a+b", "a#b", "a b", "", "../x", "ä", "a\u{0}b"] {
            let segment = topic_segment(hostile);
            assert!(
                !segment.is_empty()
                    && segment
                        .chars()
                        .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-'),
                "{hostile:?} → {segment}"
            );
            assert_eq!(segment, topic_segment(hostile), "stable");
        }
        assert_ne!(topic_segment("a b"), topic_segment("a_b"));
        assert_ne!(topic_segment("a/b"), topic_segment("a+b"));
        let long = "x".repeat(10_000);
        assert!(topic_segment(&format!("{long} ")).len() < 80);
    }

    #[test]
    fn command_topics_are_parsed_and_answered_beside_themselves() {
        assert_eq!(
            parse_command("bh", "bh/event/morning/run"),
            Some(Command::Event("morning".into()))
        );
        assert_eq!(
            parse_command("bh", "bh/action/hall light/run"),
            Some(Command::Action("hall light".into()))
        );
        assert_eq!(
            parse_command("bh", "bh/device/12/set"),
            Some(Command::SetDevice(12))
        );
        for other in [
            "bh/device/x/set",
            "bh/event//run",
            "other/event/a/run",
            "bh/event/a/run/x",
            "bh",
        ] {
            assert_eq!(parse_command("bh", other), None, "{other}");
        }
        assert_eq!(
            Command::Event("m".into()).result_topic("bh"),
            "bh/event/m/result"
        );
    }

    fn bridge_config() -> BridgeConfig {
        BridgeConfig {
            host: "127.0.0.1".into(),
            port: 1883,
            username: None,
            password: None,
            client_id: "bellhop".into(),
            base_topic: "bellhop".into(),
            discovery_prefix: Some("homeassistant".into()),
            qos: 1,
            keepalive: std::time::Duration::from_secs(30),
            commands: true,
            allow: Vec::new(),
            tls: None,
            protocol: crate::mqtt::Protocol::V311,
        }
    }

    fn sensor(device: &Device, description: Description<'_>) -> (String, serde_json::Value) {
        let platform =
            platform_of(device, &description).unwrap_or(Platform::Sensor { text: false });
        discovery_config(
            &bridge_config(),
            "homeassistant",
            device,
            platform,
            description,
        )
    }

    #[test]
    fn discovery_configs_hold_what_home_assistant_requires() {
        let config = bridge_config();
        let feature = device("demo rooms", "Kitchen", Some("temperature"), "");
        let (topic, payload) = sensor(&feature, Description::default());
        assert_eq!(topic, "homeassistant/sensor/bellhop/7/config");
        assert_eq!(payload["stat_t"], state_topic("bellhop", &feature));
        assert_eq!(payload["uniq_id"], "bellhop_7");
        // The entity id HA suggests reads as the names; the unique id stays the reference's.
        assert_eq!(payload["def_ent_id"], "sensor.kitchen_temperature");
        assert_eq!(payload["val_tpl"], "{{ value_json.value }}");
        assert_eq!(payload["name"], "temperature");
        assert_eq!(payload["dev"]["via_device"], "bellhop_bridge");
        assert!(payload["dev"]["ids"][0]
            .as_str()
            .is_some_and(|id| id.starts_with("bellhop_demo_rooms-")));
        let root = device("user", "email", None, "ann@example.com");
        let (_, payload) = sensor(&root, Description::default());
        assert!(
            payload["name"].is_null(),
            "a root is its HA device's main entity"
        );
        assert_eq!(payload["def_ent_id"], "sensor.email");
        assert_eq!(payload["val_tpl"], "{{ value_json.string[:255] }}");
        assert_eq!(state_topic("bellhop", &root), "bellhop/user/email/state");
        // A unit and a class make a numeric device a measurement; text devices stay text.
        let described = Description {
            unit: Some("°C"),
            device_class: Some("temperature"),
            ..Description::default()
        };
        let (_, payload) = sensor(&feature, described);
        assert_eq!(payload["unit_of_meas"], "°C");
        assert_eq!(payload["stat_cla"], "measurement");
        assert_eq!(payload["dev_cla"], "temperature");
        let (_, payload) = sensor(&root, described);
        assert!(payload.get("unit_of_meas").is_none());
        // An OAuth2 profile gets an authorization-health entity beside its last run, and a
        // button that runs its action.
        let configs = profile_configs(&config, "homeassistant", "zoho crm", true, true);
        let topics: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics.len(), 3);
        assert!(topics[..2]
            .iter()
            .all(|t| t.starts_with("homeassistant/sensor/bellhop/profile_zoho_crm-")));
        assert_eq!(
            configs[1].1["stat_t"],
            profile_topic("bellhop", "zoho crm", "authorization")
        );
        assert_eq!(configs[1].1["ent_cat"], "diagnostic");
        assert_eq!(
            configs[1].1["def_ent_id"],
            "sensor.bellhop_zoho_crm_authorization"
        );
        assert_eq!(
            topics[2],
            profile_button_topic(&config, "homeassistant", "zoho crm")
        );
        assert_eq!(configs[2].1["cmd_t"], "bellhop/action/zoho crm/run");
        assert_eq!(configs[2].1["def_ent_id"], "button.bellhop_run_zoho_crm");
        assert_eq!(
            profile_configs(&config, "homeassistant", "plain", false, false).len(),
            1
        );
    }

    #[test]
    fn roots_without_a_value_of_their_own_are_devices_only() {
        let thermo = Description {
            own_value: false,
            ..Description::default()
        };
        let mut root = device("t", "Thermo", None, "");
        root.value = 0.0;
        assert_eq!(platform_of(&root, &thermo), None);
        // A value set by hand makes it an entity after all.
        root.value = 3.0;
        assert_eq!(
            platform_of(&root, &thermo),
            Some(Platform::Sensor { text: false })
        );
        let feature = device("t", "Thermo", Some("mode"), "");
        assert_eq!(
            platform_of(&feature, &thermo),
            Some(Platform::Sensor { text: false }),
            "features are always entities"
        );
    }

    #[test]
    fn settable_devices_are_numbers_and_texts_commanded_on_their_set_topic() {
        let number = crate::profile::Settable::Number {
            min: 5.0,
            max: 30.0,
            step: 0.5,
            mode: "slider",
        };
        let described = Description {
            unit: Some("°C"),
            settable: Some(&number),
            ..Description::default()
        };
        let setpoint = device("t", "Thermo", Some("setpoint"), "");
        assert_eq!(platform_of(&setpoint, &described), Some(Platform::Number));
        let (topic, payload) = sensor(&setpoint, described);
        assert_eq!(topic, "homeassistant/number/bellhop/7/config");
        assert_eq!(payload["cmd_t"], "bellhop/device/7/set");
        assert_eq!(
            (payload["min"].clone(), payload["max"].clone()),
            (json!(5), json!(30))
        );
        assert_eq!(payload["step"], 0.5);
        assert_eq!(payload["mode"], "slider");
        assert_eq!(payload["unit_of_meas"], "°C");
        assert!(
            payload.get("stat_cla").is_none(),
            "a number has no state class"
        );
        assert_eq!(payload["def_ent_id"], "number.thermo_setpoint");
        let text = crate::profile::Settable::Text {
            max: 32,
            pattern: Some("^(heat|off)$".into()),
        };
        let described = Description {
            settable: Some(&text),
            ..Description::default()
        };
        let (topic, payload) = sensor(&device("t", "Thermo", Some("mode"), "heat"), described);
        assert_eq!(topic, "homeassistant/text/bellhop/7/config");
        assert_eq!(payload["max"], 32);
        assert_eq!(payload["ptrn"], "^(heat|off)$");
        assert_eq!(payload["val_tpl"], "{{ value_json.string[:32] }}");
    }

    #[test]
    fn events_are_ha_events_with_a_fire_button_and_the_bridge_has_its_connectivity() {
        let config = bridge_config();
        let configs = event_configs(&config, "homeassistant", "too-warm", true);
        assert_eq!(configs.len(), 2);
        assert_eq!(
            configs[0].0,
            "homeassistant/event/bellhop/event_too-warm_run/config"
        );
        assert_eq!(configs[0].1["stat_t"], "bellhop/event/too-warm/outcome");
        assert_eq!(configs[0].1["evt_typ"], json!(EVENT_TYPES));
        assert_eq!(configs[0].1["def_ent_id"], "event.bellhop_too_warm");
        assert_eq!(configs[1].1["cmd_t"], "bellhop/event/too-warm/run");
        assert_eq!(
            event_configs(&config, "homeassistant", "quiet", false).len(),
            1
        );
        let bridge = bridge_configs(&config, "homeassistant");
        assert_eq!(bridge[0].1["dev_cla"], "connectivity");
        assert_eq!(bridge[0].1["stat_t"], "bellhop/bridge/state");
        assert_eq!(bridge[0].1["dev"]["ids"][0], "bellhop_bridge");
        // No button where commands cannot reach the name.
        let mut closed = bridge_config();
        assert!(offers_button(&closed, "a", true));
        assert!(!offers_button(&closed, "a", false));
        closed.allow = vec!["b".into()];
        assert!(!offers_button(&closed, "a", true));
        closed.commands = false;
        assert!(!offers_button(&closed, "b", true));
    }

    #[test]
    fn entity_ids_are_slugs_of_the_names_and_whole_numbers_are_integers() {
        assert_eq!(slug(&["Thermo", "temperature"]), "thermo_temperature");
        assert_eq!(slug(&["Küche", "Temp (°C)"]), "kuche_temp_c");
        assert_eq!(slug(&["Straße"]), "strasse");
        assert_eq!(slug(&["  --  "]), "");
        assert_eq!(number(3.0), json!(3));
        assert_eq!(number(180.0).to_string(), "180");
        assert_eq!(number(-0.0).to_string(), "0");
        assert_eq!(number(21.5).to_string(), "21.5");
        assert_eq!(number(1e300).to_string(), "1e+300");
    }
}
