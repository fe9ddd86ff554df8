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

/// The discovery configs of a profile's own entities: its last run and, for OAuth2 profiles,
/// its authorization health, grouped as one HA device per profile.
pub fn profile_configs(
    config: &BridgeConfig,
    prefix: &str,
    profile: &str,
    oauth: bool,
) -> Vec<(String, serde_json::Value)> {
    let node = topic_segment(&config.client_id);
    let segment = topic_segment(profile);
    let mut entities = vec![("last_run", "last run")];
    if oauth {
        entities.push(("authorization", "authorization"));
    }
    entities
        .into_iter()
        .map(|(what, name)| {
            let unique_id = format!("{node}_profile_{segment}_{what}");
            let state = profile_topic(&config.base_topic, profile, what);
            let payload = json!({
                "name": name,
                "uniq_id": unique_id,
                "def_ent_id": format!("sensor.{unique_id}"),
                "stat_t": state,
                "val_tpl": "{{ value_json.state }}",
                "json_attr_t": state,
                "avty_t": config.bridge_state_topic(),
                "ent_cat": "diagnostic",
                "dev": {
                    "ids": [format!("{node}_profile_{segment}")],
                    "name": format!("Bellhop profile {profile}"),
                    "mf": "Bellhop",
                    "mdl": "HTTP profile",
                    "sw": env!("CARGO_PKG_VERSION"),
                },
                "o": { "name": "Bellhop", "sw": env!("CARGO_PKG_VERSION") },
            });
            (
                format!("{prefix}/sensor/{node}/profile_{segment}_{what}/config"),
                payload,
            )
        })
        .collect()
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

/// How a profile describes a device to hubs: its unit and Home Assistant device class.
#[derive(Debug, Clone, Copy, Default)]
pub struct Description<'a> {
    pub unit: Option<&'a str>,
    pub device_class: Option<&'a str>,
}

/// Home Assistant's discovery topic and config for a device: a sensor of its value (a
/// measurement with its unit and device class when the profile gives them), or of its text when
/// it holds one (at most 255 characters, as HA takes).
pub fn discovery_config(
    config: &BridgeConfig,
    prefix: &str,
    device: &Device,
    description: Description<'_>,
) -> (String, serde_json::Value) {
    let node = topic_segment(&config.client_id);
    let reference = device.reference;
    let unique_id = format!("{node}_{reference}");
    let key = &device.key;
    let text = !device.string.is_empty();
    let template = if text {
        "{{ value_json.string[:255] }}"
    } else {
        "{{ value_json.value }}"
    };
    let state = state_topic(&config.base_topic, device);
    let payload = json!({
        // A root device's own value is the HA device's main entity (named after it).
        "name": key.feature,
        "uniq_id": unique_id,
        "def_ent_id": format!("sensor.{unique_id}"),
        "stat_t": state,
        "val_tpl": template,
        "json_attr_t": state,
        "avty_t": config.bridge_state_topic(),
        "dev": {
            "ids": [format!("{node}_{}_{}", topic_segment(&key.profile), topic_segment(&key.root))],
            "name": key.root,
            "mf": "Bellhop",
            "mdl": format!("profile {}", key.profile),
            "sw": env!("CARGO_PKG_VERSION"),
        },
        "o": { "name": "Bellhop", "sw": env!("CARGO_PKG_VERSION") },
    });
    let mut payload = payload;
    if let (false, Some(fields)) = (text, payload.as_object_mut()) {
        if let Some(unit) = description.unit {
            fields.insert("unit_of_meas".into(), json!(unit));
            fields.insert("stat_cla".into(), json!("measurement"));
        }
        if let Some(class) = description.device_class {
            fields.insert("dev_cla".into(), json!(class));
        }
    }
    (
        format!("{prefix}/sensor/{node}/{reference}/config"),
        payload,
    )
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
                feature: feature.map(str::to_string),
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

    #[test]
    fn discovery_configs_hold_what_home_assistant_requires() {
        let config = BridgeConfig {
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
        };
        let feature = device("demo rooms", "Kitchen", Some("temperature"), "");
        let (topic, payload) =
            discovery_config(&config, "homeassistant", &feature, Description::default());
        assert_eq!(topic, "homeassistant/sensor/bellhop/7/config");
        assert_eq!(payload["stat_t"], state_topic("bellhop", &feature));
        assert_eq!(payload["uniq_id"], "bellhop_7");
        assert_eq!(payload["val_tpl"], "{{ value_json.value }}");
        assert_eq!(payload["name"], "temperature");
        assert!(payload["dev"]["ids"][0]
            .as_str()
            .is_some_and(|id| id.starts_with("bellhop_demo_rooms-")));
        let root = device("user", "email", None, "ann@example.com");
        let (_, payload) =
            discovery_config(&config, "homeassistant", &root, Description::default());
        assert!(
            payload["name"].is_null(),
            "a root is its HA device's main entity"
        );
        assert_eq!(payload["val_tpl"], "{{ value_json.string[:255] }}");
        assert_eq!(state_topic("bellhop", &root), "bellhop/user/email/state");
        // A unit and a class make a numeric device a measurement; text devices stay text.
        let described = Description {
            unit: Some("°C"),
            device_class: Some("temperature"),
        };
        let (_, payload) = discovery_config(&config, "homeassistant", &feature, described);
        assert_eq!(payload["unit_of_meas"], "°C");
        assert_eq!(payload["stat_cla"], "measurement");
        assert_eq!(payload["dev_cla"], "temperature");
        let (_, payload) = discovery_config(&config, "homeassistant", &root, described);
        assert!(payload.get("unit_of_meas").is_none());
        // An OAuth2 profile gets an authorization-health entity beside its last run.
        let configs = profile_configs(&config, "homeassistant", "zoho crm", true);
        let topics: Vec<&str> = configs.iter().map(|(t, _)| t.as_str()).collect();
        assert_eq!(topics.len(), 2);
        assert!(topics
            .iter()
            .all(|t| t.starts_with("homeassistant/sensor/bellhop/profile_zoho_crm-")));
        assert_eq!(
            configs[1].1["stat_t"],
            profile_topic("bellhop", "zoho crm", "authorization")
        );
        assert_eq!(configs[1].1["ent_cat"], "diagnostic");
        assert_eq!(
            profile_configs(&config, "homeassistant", "plain", false).len(),
            1
        );
    }
}
