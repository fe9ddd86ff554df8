//! The action engine: runs actions (a profile plus an action text) from start to end — render,
//! authenticate, send, map the response onto devices, record the run — and holds the loaded
//! profiles, reloading them without disturbing runs in flight.
//!
//! Ties together `profile`, `expr` and `devices`. Never imports `web` or the CLI.

pub mod authorization;
pub mod automation;
pub mod bus;
pub mod door;
pub mod editor;
mod environment;
pub mod forms;
mod history;
pub mod listening;
pub mod mapping;
pub mod record;
pub mod request;
mod running;
mod saving;

pub use environment::HubEnvironment;
use history::{restore_history, LastResponses};
pub use record::{ExchangeRecord, RunError, RunRecord, RunStage};

use crate::sync::{Locked, ReadWriteLocked};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use crate::devices::{Creation, DeviceHub};
use crate::event::ErrorClass;
use crate::expr::{Document, Scope, Template};
use crate::profile::{self, Profile, ProfileSet, RequestSpec};
use crate::secret::SecretSource;

/// Where MQTT profiles' actions are published: the MQTT bridge, when it runs. The engine
/// knows it only by this trait (adapters depend on the engine, never the reverse).
pub trait MessageOutbox: Send + Sync {
    /// Hands a message to the broker connection (queued while it reconnects); `Err` says why
    /// it could not be.
    fn publish(&self, topic: &str, payload: &str, qos: u8, retain: bool)
        -> Result<(), OutboxError>;
}

/// Why an MQTT profile's action was not published.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OutboxError {
    #[error("the MQTT bridge is off: set mqtt.url in plugin.toml")]
    NoBridge,
    #[error("the MQTT broker is unreachable: nothing was published")]
    Unreachable,
    #[error("the message could not be handed to the broker connection: {0}")]
    Refused(String),
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no profile named `{0}` is loaded")]
    UnknownProfile(String),
    #[error("the HTTP client could not be built: {0}")]
    Client(String),
    #[error("no event named `{0}` is loaded")]
    UnknownEvent(String),
}

/// Where profiles and secrets come from, for loading and reloading.
#[derive(Clone)]
pub struct ProfileSource {
    pub dir: PathBuf,
    /// The events folder, reloaded with the profiles (events name profiles).
    pub events_dir: Option<PathBuf>,
    pub secrets_file: Option<PathBuf>,
    /// The encrypted store whose vault holds secrets entered in the UI.
    pub vault: Option<Arc<crate::tokens::TokenStore>>,
    /// The user's provider definitions, over the shipped ones.
    pub providers_dir: Option<PathBuf>,
}

impl ProfileSource {
    pub fn new(dir: PathBuf, secrets_file: Option<PathBuf>) -> ProfileSource {
        ProfileSource {
            dir,
            secrets_file,
            vault: None,
            events_dir: None,
            providers_dir: None,
        }
    }

    pub fn with_providers_dir(mut self, dir: PathBuf) -> ProfileSource {
        self.providers_dir = Some(dir);
        self
    }

    /// The provider definitions: the shipped ones and the user's folder over them.
    pub fn providers(&self) -> profile::ProviderCatalog {
        profile::ProviderCatalog::load(self.providers_dir.as_deref())
    }

    pub fn with_events_dir(mut self, dir: PathBuf) -> ProfileSource {
        self.events_dir = Some(dir);
        self
    }

    pub fn with_vault(mut self, vault: Arc<crate::tokens::TokenStore>) -> ProfileSource {
        self.vault = Some(vault);
        self
    }

    fn failed(path: &std::path::Path, message: String) -> ProfileSet {
        let mut set = ProfileSet::default();
        set.diagnostics
            .push(profile::Diagnostic::error(path, "", message));
        set
    }

    /// The secrets profiles may refer to: the secrets file, then the vault.
    pub fn secrets(&self) -> Result<SecretSource, (PathBuf, String)> {
        let mut secrets = match &self.secrets_file {
            Some(path) => {
                SecretSource::from_file(path).map_err(|m| (path.clone(), m.to_string()))?
            }
            None => SecretSource::default(),
        };
        if let Some(vault) = &self.vault {
            secrets = match vault.secrets() {
                Ok(values) => secrets.with_values(values),
                Err(e) => secrets.with_vault_problem(e.to_string()),
            };
        }
        Ok(secrets)
    }

    pub fn load(&self) -> ProfileSet {
        match self.secrets() {
            Ok(secrets) => {
                let providers = self.providers();
                profile::load_dir_with(
                    &self.dir,
                    &profile::Sources {
                        secrets: &secrets,
                        providers: &providers,
                    },
                )
            }
            Err((path, message)) => ProfileSource::failed(&path, message),
        }
    }
}

/// What one run may ask of the engine, and what the engine keeps for the sandbox.
#[derive(Debug, Clone)]
pub struct EngineLimits {
    /// Longest `<wait N>` in an action text.
    pub max_wait: Duration,
    /// Most requests one action text may send (pieces between `<wait>`s).
    pub max_action_pieces: usize,
    /// Most devices one run may create or update.
    pub max_devices_per_run: usize,
    /// The last responses kept for the sandbox, all profiles together, in bytes.
    pub last_responses_bytes: usize,
}

impl Default for EngineLimits {
    fn default() -> EngineLimits {
        EngineLimits {
            max_wait: Duration::from_secs(3600),
            max_action_pieces: 100,
            max_devices_per_run: 10_000,
            last_responses_bytes: 64 * 1024 * 1024,
        }
    }
}

pub struct Engine {
    profiles: RwLock<Arc<ProfileSet>>,
    source: Option<ProfileSource>,
    hub: Arc<DeviceHub>,
    client: reqwest::Client,
    insecure_client: reqwest::Client,
    history: Mutex<HashMap<String, VecDeque<Arc<RunRecord>>>>,
    last_responses: Mutex<LastResponses>,
    authorizer: Option<Arc<authorization::Authorizer>>,
    /// The OAuth profiles whose files exist, loaded or not: a profile leaves only when its
    /// file does, and then its tokens are revoked.
    oauth_profiles: Mutex<HashMap<String, Arc<Profile>>>,
    limits: EngineLimits,
    /// What happened in the hub, for every adapter that listens.
    bus: Arc<bus::EventBus>,
    /// The loaded events and the runner's records.
    automation: automation::Automation,
    /// Where MQTT profiles publish (set by the MQTT bridge).
    outbox: RwLock<Option<Arc<dyn MessageOutbox>>>,
    /// What adapters (the MQTT bridge) last said of their health.
    adapters: Mutex<std::collections::BTreeMap<String, door::AdapterHealth>>,
    /// Where this Bellhop's own web server answers (`http://127.0.0.1:8765`), once it does: what
    /// `ServerURL()` gives profiles that call Bellhop itself (the demo).
    server_url: std::sync::OnceLock<String>,
}

/// The OAuth profiles of a set, by name.
fn oauth_profiles_of(set: &ProfileSet) -> HashMap<String, Arc<Profile>> {
    set.profiles
        .values()
        .filter(|p| {
            matches!(
                p.auth,
                profile::AuthSpec::OAuth2(_) | profile::AuthSpec::OAuth1(_)
            )
        })
        .map(|p| (p.name.clone(), p.clone()))
        .collect()
}

fn build_client(verify_tls: bool) -> Result<reqwest::Client, EngineError> {
    reqwest::Client::builder()
        .redirect(request::same_origin_redirects())
        .danger_accept_invalid_certs(!verify_tls)
        .connect_timeout(Duration::from_secs(10))
        .pool_idle_timeout(crate::net::POOL_IDLE_TIMEOUT)
        .user_agent(concat!("bellhop/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| EngineError::Client(e.to_string()))
}

impl Engine {
    /// An engine over a fixed profile set (tests, `eval`), or one that can reload from `source`.
    pub fn new(
        profiles: ProfileSet,
        source: Option<ProfileSource>,
        hub: Arc<DeviceHub>,
    ) -> Result<Engine, EngineError> {
        let history = Mutex::new(restore_history(&hub, &profiles));
        let oauth_profiles = Mutex::new(oauth_profiles_of(&profiles));
        let bus = Arc::new(bus::EventBus::default());
        // The hub tells of its changes in the order it applied them; they go on the bus.
        let publisher = bus.clone();
        hub.observe(Arc::new(move |change| {
            publisher.publish(match change {
                crate::devices::Changed::Device(change) => bus::HubEvent::DeviceChanged {
                    change: Arc::new(change),
                },
                crate::devices::Changed::DeviceRemoved(device) => bus::HubEvent::DeviceRemoved {
                    device: Arc::new(device),
                },
                crate::devices::Changed::Global(global) => bus::HubEvent::GlobalChanged {
                    global: Arc::new(global),
                },
            })
        }));
        Ok(Engine {
            profiles: RwLock::new(Arc::new(profiles)),
            source,
            hub,
            client: build_client(true)?,
            insecure_client: build_client(false)?,
            history,
            last_responses: Mutex::new(LastResponses::default()),
            adapters: Mutex::default(),
            server_url: std::sync::OnceLock::new(),
            outbox: RwLock::new(None),
            authorizer: None,
            oauth_profiles,
            limits: EngineLimits::default(),
            bus,
            automation: automation::Automation::new(
                crate::event::EventSet::default(),
                crate::event::Zone::Local,
                crate::clock::Clock::system(),
            ),
        })
    }

    /// Gives the engine its events, read in `zone`.
    pub fn with_events(
        mut self,
        mut events: crate::event::EventSet,
        zone: crate::event::Zone,
    ) -> Engine {
        automation::refuse_unknown_devices(&mut events, &self.hub);
        self.automation = automation::Automation::new(events, zone, self.automation.clock());
        self.automation.restore_history(&self.hub);
        self
    }

    /// Where this Bellhop's web server answers, once it is bound (`ServerURL()`); a wildcard
    /// listen address is reached on loopback.
    pub fn set_server_address(&self, address: std::net::SocketAddr) {
        let host = match address.ip() {
            ip if ip.is_unspecified() && ip.is_ipv4() => "127.0.0.1".to_string(),
            ip if ip.is_unspecified() => "[::1]".to_string(),
            std::net::IpAddr::V6(ip) => format!("[{ip}]"),
            std::net::IpAddr::V4(ip) => ip.to_string(),
        };
        let _ = self
            .server_url
            .set(format!("http://{host}:{}", address.port()));
    }

    /// The event runner reads the time from `clock` (the system's by default): schedules,
    /// lateness, rate limits, `wait` actions.
    pub fn with_clock(mut self, clock: crate::clock::Clock) -> Engine {
        self.automation.set_clock(clock);
        self
    }

    /// Sets what one run may ask of the engine.
    pub fn with_limits(mut self, limits: EngineLimits) -> Engine {
        self.limits = limits;
        self
    }

    /// The provider definitions profiles can name (read now: the user's folder may change).
    pub fn providers(&self) -> profile::ProviderCatalog {
        match &self.source {
            Some(source) => source.providers(),
            None => profile::ProviderCatalog::load(None),
        }
    }

    /// Gives OAuth2 profiles their tokens.
    pub fn with_authorizer(mut self, authorizer: Arc<authorization::Authorizer>) -> Engine {
        self.authorizer = Some(authorizer);
        self
    }

    /// Tests only: adapters go through the door ([`door`]), never to the authorizer itself.
    #[cfg(any(test, feature = "test-support"))]
    pub fn authorizer(&self) -> Option<&Arc<authorization::Authorizer>> {
        self.authorizer.as_ref()
    }

    /// Tests only: adapters read and set devices through the door, never the hub itself.
    #[cfg(any(test, feature = "test-support"))]
    pub fn hub(&self) -> &Arc<DeviceHub> {
        &self.hub
    }

    /// The profiles as loaded now. Runs keep the set they started with.
    pub fn profiles(&self) -> Arc<ProfileSet> {
        self.profiles.read_locked().clone()
    }

    /// Loads the profile folder again and swaps the new set in. Returns the new set.
    pub fn reload(&self) -> Arc<ProfileSet> {
        let Some(source) = &self.source else {
            return self.profiles();
        };
        let fresh = Arc::new(source.load());
        *self.profiles.write_locked() = fresh.clone();
        self.revoke_deleted(&fresh);
        if let Some(dir) = &source.events_dir {
            let mut events = crate::event::load_dir(dir, &fresh);
            automation::refuse_unknown_devices(&mut events, &self.hub);
            self.automation.replace(events);
            self.prepare_webhooks();
        }
        self.bus.publish(bus::HubEvent::ProfilesReloaded {
            profiles: fresh.profiles.len(),
            problems: fresh.diagnostics.len(),
        });
        fresh
    }

    /// A deleted OAuth profile (its file gone from the disk) takes its tokens with it: they
    /// are revoked at the provider when it can (RFC 7009) and wiped here. A profile that only
    /// fails to load keeps them.
    fn revoke_deleted(&self, fresh: &ProfileSet) {
        let deleted: Vec<Arc<Profile>> = {
            let mut known = self.oauth_profiles.locked();
            let gone: Vec<String> = known
                .iter()
                .filter(|(name, p)| !fresh.profiles.contains_key(*name) && !p.file.exists())
                .map(|(name, _)| name.clone())
                .collect();
            let deleted = gone.iter().filter_map(|name| known.remove(name)).collect();
            known.extend(oauth_profiles_of(fresh));
            deleted
        };
        let (Some(authorizer), Ok(runtime)) = (
            self.authorizer.clone(),
            tokio::runtime::Handle::try_current(),
        ) else {
            return;
        };
        if deleted.is_empty() {
            return;
        }
        let bus = self.bus.clone();
        runtime.spawn(async move {
            for profile in deleted {
                match authorizer.forget(&profile).await {
                    Ok(note) => {
                        tracing::info!(profile = %profile.name, note = ?note, "profile deleted: its tokens are revoked and wiped");
                        bus.publish(bus::HubEvent::AuthorizationChanged {
                            profile: profile.name.clone(),
                        });
                    }
                    Err(error) => {
                        tracing::warn!(profile = %profile.name, error = %error, "profile deleted: its tokens could not be wiped")
                    }
                }
            }
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_split_the_action_text() {
        let pieces = running::split_waits("AUX11=0<wait1000>Pool=1<wait 20>SPA=0");
        assert_eq!(
            pieces,
            vec![
                (Duration::ZERO, "AUX11=0"),
                (Duration::from_millis(1000), "Pool=1"),
                (Duration::from_millis(20), "SPA=0"),
            ]
        );
        assert_eq!(
            running::split_waits("plain"),
            vec![(Duration::ZERO, "plain")]
        );
    }

    #[test]
    fn kept_responses_stay_within_their_budget() {
        let mut kept = LastResponses::default();
        let body = |n: usize| -> Arc<str> { "x".repeat(n).into() };
        for profile in 0..100 {
            kept.keep(&format!("p{profile}"), body(400), 1_000);
            assert!(kept.total <= 1_000, "{}", kept.total);
        }
        // The newest stay; the oldest went.
        assert!(kept.bodies.contains_key("p99") && kept.bodies.contains_key("p98"));
        assert!(!kept.bodies.contains_key("p0"));
        // Replacing a profile's body counts once; one larger than the budget is not kept.
        kept.keep("p99", body(100), 1_000);
        assert_eq!(
            kept.total,
            kept.bodies.values().map(|(_, b)| b.len()).sum::<usize>()
        );
        kept.keep("huge", body(5_000), 1_000);
        assert!(!kept.bodies.contains_key("huge"));
        assert!(kept.total <= 1_000);
    }
}
