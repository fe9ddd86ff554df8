//! Plugin settings: `plugin.toml` read through the `config` crate on top of the same file's
//! embedded copy (so no file is needed), overridden by `BELLHOP_<SECTION>__<KEY>` variables.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;

/// The manifest as shipped: also the defaults.
pub const EMBEDDED_MANIFEST: &str = include_str!("../plugin.toml");

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SettingsError {
    #[error("{path}: {message}")]
    Invalid { path: String, message: String },
    /// A value is wrong; the message names its key (`web.listen …`).
    #[error("{0}")]
    Value(String),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub plugin: PluginInfo,
    pub web: WebSettings,
    pub paths: PathSettings,
    pub oauth: OAuthSettings,
    pub devices: DeviceSettings,
    pub engine: EngineSettings,
    pub events: EventSettings,
    pub mqtt: MqttSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MqttSettings {
    /// The broker (`mqtt://` or `mqtts://`, with a host); empty in the file: the bridge is off.
    #[serde(deserialize_with = "typed::broker_url")]
    pub url: Option<url::Url>,
    pub username: String,
    pub password: String,
    pub client_id: String,
    pub base_topic: String,
    pub discovery: bool,
    pub discovery_prefix: String,
    #[serde(deserialize_with = "typed::mqtt_protocol")]
    pub protocol: MqttProtocol,
    pub ca_file: String,
    /// A client certificate (PEM) and its key, for brokers that ask for one (with `ca_file`).
    #[serde(default)]
    pub client_cert_file: String,
    #[serde(default)]
    pub client_key_file: String,
    pub qos: u8,
    pub keepalive_secs: u64,
    pub commands: bool,
    #[serde(default)]
    pub allow: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventSettings {
    /// The zone cron schedules are read in: `None` for the machine's (empty or `local` in the
    /// file), or an IANA zone.
    #[serde(deserialize_with = "typed::time_zone")]
    pub time_zone: Option<chrono_tz::Tz>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EngineSettings {
    pub max_wait_secs: u64,
    pub max_action_pieces: usize,
    pub max_devices_per_run: usize,
    pub last_responses_mib: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuthSettings {
    pub key_file: PathBuf,
    pub refresh_margin_secs: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PluginInfo {
    pub id: String,
    pub name: String,
    pub version: String,
    #[serde(default)]
    pub description: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSettings {
    #[serde(deserialize_with = "typed::listen_address")]
    pub listen: SocketAddr,
    /// An http(s) URL ending in `/`.
    #[serde(deserialize_with = "typed::public_base_url")]
    pub public_base_url: url::Url,
    #[serde(default)]
    pub admin_token: String,
    /// More host names (with or without port) requests may be addressed to, beyond the listen
    /// address, loopback names and the public base URL's host: for a reverse proxy.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// Reverse proxies (IP addresses) whose `X-Forwarded-For` names the client (for the
    /// sign-in throttle, which counts attempts per client address).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
    /// How long an admin sign-in lasts.
    pub session_hours: u64,
    /// Most connections served at once; more wait for a free place.
    pub max_connections: usize,
    /// Where listening profiles' paths are served.
    pub listen_base: String,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathSettings {
    pub data_dir: PathBuf,
    pub profiles_dir: PathBuf,
    /// One TOML file per automation event.
    pub events_dir: PathBuf,
    /// The user's OAuth provider definitions (`*.json`), over the shipped ones; optional.
    #[serde(default = "default_providers_dir")]
    pub providers_dir: PathBuf,
    #[serde(default)]
    pub secrets_file: Option<PathBuf>,
}

fn default_providers_dir() -> PathBuf {
    PathBuf::from("oauth-providers")
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeviceSettings {
    pub commit_window_ms: u64,
    /// Days of device history kept (0: none).
    pub history_days: u64,
    /// Most history rows kept, all devices together.
    pub history_max_rows: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub level: String,
    #[serde(deserialize_with = "typed::log_format")]
    pub format: LogFormat,
}

/// The MQTT protocol version the bridge speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MqttProtocol {
    V311,
    V5,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `key=value` fields.
    Text,
    Json,
}

/// The values a string in the file must be, checked as it is read: a loaded [`Settings`] holds
/// them typed, each message naming its key.
mod typed {
    use serde::de::Error;
    use serde::{Deserialize, Deserializer};

    /// A number in the file or a variable (`BELLHOP_MQTT__PROTOCOL=5`) reads as text too.
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Integer(i64),
        Float(f64),
    }

    fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
        Ok(match Scalar::deserialize(d)? {
            Scalar::Text(text) => text.trim().to_string(),
            Scalar::Integer(n) => n.to_string(),
            Scalar::Float(n) => n.to_string(),
        })
    }

    pub(super) fn listen_address<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<std::net::SocketAddr, D::Error> {
        let text = text(d)?;
        text.parse().map_err(|_| {
            D::Error::custom(format!(
                "web.listen `{text}` is not an address such as 127.0.0.1:8765"
            ))
        })
    }

    pub(super) fn public_base_url<'de, D: Deserializer<'de>>(d: D) -> Result<url::Url, D::Error> {
        let mut text = text(d)?;
        if !text.ends_with('/') {
            text.push('/');
        }
        let url = url::Url::parse(&text).map_err(|e| {
            D::Error::custom(format!("web.public_base_url `{text}` is not a URL: {e}"))
        })?;
        if url.scheme() != "http" && url.scheme() != "https" {
            return Err(D::Error::custom(
                "web.public_base_url must be http or https",
            ));
        }
        Ok(url)
    }

    pub(super) fn broker_url<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<url::Url>, D::Error> {
        let text = text(d)?;
        if text.is_empty() {
            return Ok(None);
        }
        match url::Url::parse(&text) {
            Ok(url) if matches!(url.scheme(), "mqtt" | "mqtts") && url.host_str().is_some() => {
                Ok(Some(url))
            }
            _ => Err(D::Error::custom(format!(
                "mqtt.url `{text}` is not a broker URL such as mqtt://127.0.0.1:1883"
            ))),
        }
    }

    pub(super) fn mqtt_protocol<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<super::MqttProtocol, D::Error> {
        match text(d)?.as_str() {
            "3.1.1" => Ok(super::MqttProtocol::V311),
            "5" | "5.0" => Ok(super::MqttProtocol::V5),
            other => Err(D::Error::custom(format!(
                "mqtt.protocol `{other}`: \"3.1.1\" or \"5\""
            ))),
        }
    }

    pub(super) fn time_zone<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<chrono_tz::Tz>, D::Error> {
        let text = text(d)?;
        if text.is_empty() || text.eq_ignore_ascii_case("local") {
            return Ok(None);
        }
        text.parse().map(Some).map_err(|_| {
            D::Error::custom(format!(
                "events.time_zone `{text}` is not a time zone name such as Europe/Berlin"
            ))
        })
    }

    pub(super) fn log_format<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<super::LogFormat, D::Error> {
        match text(d)?.as_str() {
            "text" => Ok(super::LogFormat::Text),
            "json" => Ok(super::LogFormat::Json),
            other => Err(D::Error::custom(format!(
                "log.format `{other}` is not text or json"
            ))),
        }
    }
}

impl Settings {
    /// Embedded defaults, then `file` (required only when `explicit`), then the environment.
    pub fn load(file: &Path, explicit: bool) -> Result<Settings, SettingsError> {
        Self::load_with_env(file, explicit, settings_environment(std::env::vars()))
    }

    fn load_with_env(
        file: &Path,
        explicit: bool,
        env: config::Environment,
    ) -> Result<Settings, SettingsError> {
        let invalid = |message: String| SettingsError::Invalid {
            path: file.display().to_string(),
            message,
        };
        if explicit && !file.is_file() {
            return Err(invalid("the settings file does not exist".into()));
        }
        let built = config::Config::builder()
            .add_source(config::File::from_str(
                EMBEDDED_MANIFEST,
                config::FileFormat::Toml,
            ))
            .add_source(
                config::File::from(file)
                    .format(config::FileFormat::Toml)
                    .required(false),
            )
            .add_source(env)
            .build()
            .map_err(|e| invalid(e.to_string()))?;
        let settings: Settings = built
            .try_deserialize()
            .map_err(|e| invalid(e.to_string()))?;
        settings.validate().map_err(|e| invalid(e.to_string()))?;
        Ok(settings)
    }

    /// What one value's type cannot say: ranges, and values that must agree.
    fn validate(&self) -> Result<(), SettingsError> {
        if self.devices.commit_window_ms == 0 || self.devices.commit_window_ms > 100 {
            return Err(SettingsError::Value(
                "devices.commit_window_ms must be between 1 and 100".into(),
            ));
        }
        if self.devices.history_days > 3650 || self.devices.history_max_rows > 100_000_000 {
            return Err(SettingsError::Value(
                "devices.history_days must be at most 3650 and devices.history_max_rows at most 100000000"
                    .into(),
            ));
        }
        if self.engine.max_action_pieces == 0 || self.engine.max_devices_per_run == 0 {
            return Err(SettingsError::Value(
                "engine.max_action_pieces and engine.max_devices_per_run must be above 0".into(),
            ));
        }
        if self.web.max_connections < 8 {
            return Err(SettingsError::Value(
                "web.max_connections must be 8 or more".into(),
            ));
        }
        if self.web.session_hours == 0 {
            return Err(SettingsError::Value(
                "web.session_hours must be above 0".into(),
            ));
        }
        if let Some(problem) = self.mqtt_problem() {
            return Err(SettingsError::Value(problem));
        }
        if let Some(problem) = listen_base_problem(&self.web.listen_base) {
            return Err(SettingsError::Value(format!("web.listen_base: {problem}")));
        }
        tracing_subscriber::EnvFilter::try_new(&self.log.level)
            .map_err(|e| SettingsError::Value(format!("log.level `{}`: {e}", self.log.level)))?;
        Ok(())
    }

    /// `serve` refuses to listen beyond loopback without an admin token.
    pub fn check_exposure(&self) -> Result<(), SettingsError> {
        let address = self.web.listen;
        if !address.ip().is_loopback() && self.web.admin_token.trim().len() < 16 {
            return Err(SettingsError::Value(format!(
                "web.listen {address} is reachable from other machines: set web.admin_token (16 characters or more, e.g. through BELLHOP_WEB__ADMIN_TOKEN) first"
            )));
        }
        Ok(())
    }

    /// Why the `[mqtt]` settings cannot work, if they cannot (an empty url: the bridge is off).
    fn mqtt_problem(&self) -> Option<String> {
        let mqtt = &self.mqtt;
        let url = mqtt.url.as_ref()?;
        let topic_part = |text: &str| {
            !text.is_empty() && !text.contains(['+', '#', '\0']) && !text.starts_with('/')
        };
        if mqtt.qos > 2 {
            return Some("mqtt.qos must be 0, 1 or 2".into());
        }
        if !topic_part(&mqtt.base_topic) || !topic_part(&mqtt.discovery_prefix) {
            return Some(
                "mqtt.base_topic and mqtt.discovery_prefix must be topic names without +, # or a leading /"
                    .into(),
            );
        }
        let (cert, key) = (mqtt.client_cert_file.trim(), mqtt.client_key_file.trim());
        if cert.is_empty() != key.is_empty()
            || (!cert.is_empty() && (mqtt.ca_file.trim().is_empty() || url.scheme() != "mqtts"))
        {
            return Some(
                "mqtt.client_cert_file and mqtt.client_key_file go together, with mqtts:// and mqtt.ca_file"
                    .into(),
            );
        }
        if mqtt.client_id.trim().is_empty() || mqtt.keepalive_secs < 5 {
            return Some("mqtt.client_id must be set and mqtt.keepalive_secs at least 5".into());
        }
        None
    }

    pub fn commit_window(&self) -> Duration {
        Duration::from_millis(self.devices.commit_window_ms)
    }

    /// Where the token key lives: the configured file, or the user's configuration folder.
    pub fn token_key_file(&self) -> PathBuf {
        if !self.oauth.key_file.as_os_str().is_empty() {
            return self.oauth.key_file.clone();
        }
        let config_home = std::env::var_os("XDG_CONFIG_HOME")
            .map(PathBuf::from)
            .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".config")))
            .unwrap_or_else(|| PathBuf::from("."));
        config_home.join("bellhop").join("token.key")
    }

    pub fn tokens_dir(&self) -> PathBuf {
        self.paths.data_dir.join("tokens")
    }

    pub fn store_path(&self) -> PathBuf {
        self.paths.data_dir.join("bellhop.sqlite")
    }
}

/// The `BELLHOP_<SECTION>__<KEY>` variables only: other `BELLHOP_…` variables (`BELLHOP_CONFIG`,
/// `BELLHOP_LOG`, tools' own) are not settings.
fn settings_environment(vars: impl Iterator<Item = (String, String)>) -> config::Environment {
    let map: std::collections::HashMap<String, String> = vars
        .filter(|(name, _)| {
            name.strip_prefix("BELLHOP_")
                .is_some_and(|rest| rest.contains("__"))
        })
        .collect();
    config::Environment::with_prefix("BELLHOP")
        .separator("__")
        .prefix_separator("_")
        .source(Some(map))
}

/// Why `base` cannot be where listening profiles are served, if it cannot: it is a path like
/// `/in`, and must not shadow the server's own routes.
pub fn listen_base_problem(base: &str) -> Option<String> {
    const RESERVED: [&str; 8] = [
        "api",
        "hooks",
        "oauth2",
        "oauth2_callback.html",
        "login",
        "logout",
        "demo",
        "app.js",
    ];
    let rest = base.strip_prefix('/').unwrap_or_default();
    let first = rest.split('/').next().unwrap_or_default();
    let plain = base.starts_with('/')
        && rest.split('/').all(|segment| {
            !segment.is_empty()
                && segment
                    .chars()
                    .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_'))
        });
    if !plain {
        Some(format!(
            "`{base}` must be a path like `/in`: ASCII letters, digits, `-` and `_` between slashes, no trailing slash"
        ))
    } else if RESERVED.contains(&first) {
        Some(format!(
            "`{base}` would shadow the server's own `/{first}` routes"
        ))
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> config::Environment {
        settings_environment(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())))
    }

    #[test]
    fn embedded_defaults_need_no_file() {
        let settings =
            Settings::load_with_env(Path::new("/nonexistent/plugin.toml"), false, env(&[]));
        let settings = settings.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.web.listen.to_string(), "127.0.0.1:8765");
        assert_eq!(settings.plugin.id, "bellhop");
    }

    #[test]
    fn environment_overrides_file() {
        let settings = Settings::load_with_env(
            Path::new("/nonexistent/plugin.toml"),
            false,
            env(&[
                ("BELLHOP_WEB__LISTEN", "127.0.0.1:9999"),
                ("BELLHOP_CONFIG", "elsewhere.toml"),
                ("BELLHOP_LOG", "debug"),
            ]),
        );
        assert_eq!(
            settings.map(|s| s.web.listen.to_string()).ok().as_deref(),
            Some("127.0.0.1:9999")
        );
    }

    #[test]
    fn bad_values_name_the_key() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let file = dir.path().join("plugin.toml");
        std::fs::write(&file, "[web]\nlisten = \"nowhere\"\n").unwrap_or_else(|e| panic!("{e}"));
        let error = Settings::load_with_env(&file, true, env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(error.is_some_and(|e| e.contains("web.listen")));
        std::fs::write(&file, "[web]\nlisen = \"x\"\n").unwrap_or_else(|e| panic!("{e}"));
        let error = Settings::load_with_env(&file, true, env(&[]))
            .err()
            .map(|e| e.to_string());
        assert!(
            error.is_some_and(|e| e.contains("lisen")),
            "unknown keys are refused"
        );
    }

    /// Values are typed once, when read; each bad one is named with its key.
    #[test]
    fn values_are_typed_when_read() {
        let load = |pairs: &[(&str, &str)]| {
            Settings::load_with_env(Path::new("/nonexistent/plugin.toml"), false, env(pairs))
        };
        let settings = load(&[
            ("BELLHOP_MQTT__URL", "mqtts://broker.example:8883"),
            ("BELLHOP_MQTT__PROTOCOL", "5"),
            ("BELLHOP_MQTT__CA_FILE", "/etc/ssl/ca.pem"),
            ("BELLHOP_EVENTS__TIME_ZONE", "Europe/Berlin"),
            ("BELLHOP_LOG__FORMAT", "json"),
            (
                "BELLHOP_WEB__PUBLIC_BASE_URL",
                "https://hub.example/bellhop",
            ),
        ])
        .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(settings.mqtt.protocol, MqttProtocol::V5);
        assert_eq!(
            settings.mqtt.url.as_ref().map(url::Url::as_str),
            Some("mqtts://broker.example:8883")
        );
        assert_eq!(settings.events.time_zone, Some(chrono_tz::Europe::Berlin));
        assert_eq!(settings.log.format, LogFormat::Json);
        assert_eq!(
            settings.web.public_base_url.as_str(),
            "https://hub.example/bellhop/"
        );
        let defaults = load(&[]).unwrap_or_else(|e| panic!("{e}"));
        assert!(defaults.mqtt.url.is_none() && defaults.events.time_zone.is_none());
        for (key, variable, value) in [
            ("mqtt.protocol", "BELLHOP_MQTT__PROTOCOL", "4"),
            ("mqtt.url", "BELLHOP_MQTT__URL", "http://broker"),
            ("events.time_zone", "BELLHOP_EVENTS__TIME_ZONE", "Mars/Base"),
            ("log.format", "BELLHOP_LOG__FORMAT", "xml"),
            (
                "web.public_base_url",
                "BELLHOP_WEB__PUBLIC_BASE_URL",
                "ftp://x/",
            ),
        ] {
            let error = load(&[(variable, value)])
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(error.contains(key), "{key}: {error}");
        }
    }

    #[test]
    fn the_listen_base_is_a_plain_path_that_shadows_no_route() {
        assert_eq!(listen_base_problem("/in"), None);
        assert_eq!(listen_base_problem("/sensors/in"), None);
        for bad in [
            "", "/", "in", "/in/", "/a//b", "/../x", "/in?x", "/api", "/hooks/x", "/login",
        ] {
            assert!(listen_base_problem(bad).is_some(), "{bad}");
        }
    }
}
