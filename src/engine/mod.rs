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
pub mod forms;
pub mod listening;
pub mod mapping;
pub mod request;

use crate::sync::{Locked, ReadWriteLocked};
use std::collections::{HashMap, VecDeque};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

use crate::devices::{Creation, DeviceChange, DeviceHub};
use crate::event::ErrorClass;
use crate::expr::{Document, Environment, Scope, Template};
use crate::profile::{self, Profile, ProfileSet, RequestSpec};
use crate::secret::SecretSource;

/// Where in a run a problem happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStage {
    /// Compiling or rendering the action text.
    Action,
    /// Rendering or sending the request.
    Request,
    /// The API's answer (status, body).
    Response,
    /// Mapping the response onto devices.
    Devices,
}

impl std::fmt::Display for RunStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            RunStage::Action => "action",
            RunStage::Request => "request",
            RunStage::Response => "response",
            RunStage::Devices => "devices",
        })
    }
}

/// One problem of a run, where the user looks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    pub stage: RunStage,
    /// What kind of problem it is, as error triggers pick them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    pub message: String,
    /// Column inside the expression or template, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// One HTTP exchange of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRecord {
    pub method: crate::profile::Method,
    /// The URL without credentials.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub response_bytes: usize,
}

/// The record of one run: kept in the per-profile history and returned by the API and CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub profile: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub action_text: String,
    pub ok: bool,
    /// Nothing was sent because the action text (or a request template) gave `null`.
    pub skipped: bool,
    pub exchanges: Vec<ExchangeRecord>,
    pub changes: Vec<DeviceChange>,
    pub errors: Vec<RunError>,
}

/// How an action's pieces leave Bellhop.
#[derive(Clone, Copy)]
enum Sending<'a> {
    Http(&'a RequestSpec),
    Mqtt(&'a Template, &'a crate::profile::MqttSpec),
}

/// Where MQTT profiles' actions are published: the MQTT bridge, when it runs. The engine
/// knows it only by this trait (adapters depend on the engine, never the reverse).
pub trait MessageOutbox: Send + Sync {
    /// Hands a message to the broker connection (queued while it reconnects); `Err` says why
    /// it could not be.
    fn publish(&self, topic: &str, payload: &str, qos: u8, retain: bool) -> Result<(), String>;
}

impl RunRecord {
    /// The record of a run starting now.
    fn starting(profile: &str, action_text: &str) -> RunRecord {
        RunRecord {
            profile: profile.to_string(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: 0,
            action_text: action_text.to_string(),
            ok: true,
            skipped: false,
            exchanges: Vec::new(),
            changes: Vec::new(),
            errors: Vec::new(),
        }
    }
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
            Some(path) => SecretSource::from_file(path).map_err(|m| (path.clone(), m))?,
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

/// The last response body of each profile, within a total byte budget: keeping a new one
/// evicts others (the oldest first) until the total fits; one larger than the budget is not kept.
#[derive(Default)]
struct LastResponses {
    bodies: HashMap<String, (u64, Arc<str>)>,
    total: usize,
    counter: u64,
}

impl LastResponses {
    fn keep(&mut self, profile: &str, body: Arc<str>, budget: usize) {
        if let Some((_, old)) = self.bodies.remove(profile) {
            self.total -= old.len();
        }
        if body.len() > budget {
            return;
        }
        while self.total + body.len() > budget {
            let Some(oldest) = self
                .bodies
                .iter()
                .min_by_key(|(_, (stamp, _))| *stamp)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            if let Some((_, evicted)) = self.bodies.remove(&oldest) {
                self.total -= evicted.len();
            }
        }
        self.counter += 1;
        self.total += body.len();
        self.bodies
            .insert(profile.to_string(), (self.counter, body));
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

/// `<wait N>` in an action text: a fixed pattern, compiled once.
#[allow(clippy::expect_used)] // a literal, compiled by every test that splits a text
static WAIT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)<\s*wait\s*(\d{1,9})\s*>").expect("the <wait N> pattern compiles")
});

/// Splits an action text on `<wait N>` (N in milliseconds) into the texts to send and the pause
/// before each.
pub fn split_waits(text: &str) -> Vec<(Duration, &str)> {
    if !text.contains('<') {
        return vec![(Duration::ZERO, text)];
    }
    let pattern = &*WAIT;
    let mut pieces = Vec::new();
    let mut pause = Duration::ZERO;
    let mut last = 0;
    for captures in pattern.captures_iter(text) {
        let (Some(whole), Some(millis)) = (captures.get(0), captures.get(1)) else {
            continue;
        };
        pieces.push((pause, &text[last..whole.start()]));
        pause = Duration::from_millis(millis.as_str().parse().unwrap_or(0));
        last = whole.end();
    }
    pieces.push((pause, &text[last..]));
    pieces
}

/// A future polled in place by its caller (no task, no hand-off between threads) that, when the
/// caller drops it before it finished, goes on to the end on a task of its own.
struct DetachOnDrop<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> {
    inner: Option<std::pin::Pin<Box<F>>>,
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> DetachOnDrop<F> {
    fn new(future: F) -> Self {
        DetachOnDrop {
            inner: Some(Box::pin(future)),
        }
    }
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> std::future::Future
    for DetachOnDrop<F>
{
    type Output = Arc<RunRecord>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Arc<RunRecord>> {
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Pending;
        };
        let outcome = inner.as_mut().poll(context);
        if outcome.is_ready() {
            self.inner = None;
        }
        outcome
    }
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> Drop for DetachOnDrop<F> {
    fn drop(&mut self) {
        if let (Some(unfinished), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(unfinished);
        }
    }
}

/// Expressions' view of the hub (devices, globals) and, while mapping, of the response.
pub struct HubEnvironment<'a> {
    hub: &'a DeviceHub,
    response: Option<&'a request::Response>,
    /// The fields of the profile's token answer, for `Token(name)`.
    token_fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// This Bellhop's own address, for `ServerURL()`.
    server_url: Option<&'a str>,
}

impl<'a> HubEnvironment<'a> {
    /// Devices and globals only: for the sandbox and action texts.
    pub fn new(hub: &'a DeviceHub) -> HubEnvironment<'a> {
        HubEnvironment {
            hub,
            response: None,
            token_fields: None,
            server_url: None,
        }
    }
}

impl Environment for HubEnvironment<'_> {
    fn device_value(&self, reference: u64) -> Option<f64> {
        self.hub.value(reference)
    }
    fn device_string(&self, reference: u64) -> Option<String> {
        self.hub.string(reference)
    }
    fn global_value(&self, name: &str) -> Option<f64> {
        self.hub.global(name).map(|g| g.value)
    }
    fn global_string(&self, name: &str) -> Option<String> {
        self.hub.global(name).map(|g| g.string)
    }
    fn header(&self, name: &str) -> Option<String> {
        self.response?
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn status(&self) -> Option<u16> {
        self.response.map(|r| r.status)
    }
    fn topic(&self) -> Option<String> {
        self.header(listening::TOPIC_HEADER)
    }
    fn token_field(&self, name: &str) -> Option<serde_json::Value> {
        if authorization::SECRET_TOKEN_FIELDS.contains(&name) {
            return None;
        }
        self.token_fields.as_ref()?.get(name).cloned()
    }
    fn server_url(&self) -> Option<String> {
        self.server_url.map(str::to_string)
    }
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
        .pool_idle_timeout(Duration::from_secs(60))
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
                crate::devices::Changed::Device(change) => bus::HubEvent::DeviceChanged { change },
                crate::devices::Changed::DeviceRemoved(device) => {
                    bus::HubEvent::DeviceRemoved { device }
                }
                crate::devices::Changed::Global(global) => bus::HubEvent::GlobalChanged { global },
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
        self.automation = automation::Automation::new(events, zone);
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

    /// Sets what one run may ask of the engine.
    pub fn with_limits(mut self, limits: EngineLimits) -> Engine {
        self.limits = limits;
        self
    }

    pub fn limits(&self) -> &EngineLimits {
        &self.limits
    }

    /// Gives OAuth2 profiles their tokens.
    /// The provider definitions profiles can name (read now: the user's folder may change).
    pub fn providers(&self) -> profile::ProviderCatalog {
        match &self.source {
            Some(source) => source.providers(),
            None => profile::ProviderCatalog::load(None),
        }
    }

    pub fn with_authorizer(mut self, authorizer: Arc<authorization::Authorizer>) -> Engine {
        self.authorizer = Some(authorizer);
        self
    }

    pub fn authorizer(&self) -> Option<&Arc<authorization::Authorizer>> {
        self.authorizer.as_ref()
    }

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

    /// The last response body a profile received (for the sandbox's live preview).
    pub fn last_response(&self, profile: &str) -> Option<Arc<str>> {
        self.last_responses
            .locked()
            .bodies
            .get(profile)
            .map(|(_, body)| body.clone())
    }

    /// The newest runs, newest first, of one profile or of all.
    pub fn history(&self, profile: Option<&str>, limit: usize) -> Vec<Arc<RunRecord>> {
        let history = self.history.locked();
        let mut runs: Vec<Arc<RunRecord>> = match profile {
            Some(name) => history
                .get(name)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            None => history.values().flat_map(|q| q.iter().cloned()).collect(),
        };
        runs.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        runs.truncate(limit);
        runs
    }

    /// Runs an action. Every failure ends up in the record; only an unknown profile is an `Err`.
    /// A started run completes and is recorded even when the caller stops waiting for it (a
    /// client that disconnects): it runs on its own task.
    pub async fn run(
        self: &Arc<Self>,
        profile_name: &str,
        action_text: &str,
    ) -> Result<Arc<RunRecord>, EngineError> {
        let profile = self
            .profiles()
            .get(profile_name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownProfile(profile_name.to_string()))?;
        let engine = self.clone();
        let action_text = action_text.to_string();
        Ok(DetachOnDrop::new(async move { engine.run_to_end(profile, &action_text).await }).await)
    }

    async fn run_to_end(&self, profile: Arc<Profile>, action_text: &str) -> Arc<RunRecord> {
        let started = Instant::now();
        let mut record = RunRecord::starting(&profile.name, action_text);
        let pieces = split_waits(action_text);
        let publish = profile
            .mqtt
            .as_ref()
            .and_then(|mqtt| Some((mqtt.publish.as_ref()?, mqtt)));
        let sending = match (&profile.request, publish) {
            (Some(spec), _) => Sending::Http(spec),
            (None, Some((topic, mqtt))) => Sending::Mqtt(topic, mqtt),
            (None, None) => {
                record.ok = false;
                record.errors.push(RunError {
                    stage: RunStage::Action,
                    class: None,
                    message: format!(
                        "profile `{}` only receives (it listens, or subscribes without `publish`): it has no action to run",
                        profile.name
                    ),
                    column: None,
                });
                let record = Arc::new(record);
                self.remember(&profile, record.clone());
                return record;
            }
        };
        if let Some(problem) = self.beyond_limits(&pieces) {
            record.errors.push(RunError {
                stage: RunStage::Action,
                class: Some(ErrorClass::Expression),
                message: problem,
                column: None,
            });
        } else {
            for (pause, piece) in pieces {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                match sending {
                    Sending::Http(spec) => self.run_piece(&profile, spec, piece, &mut record).await,
                    Sending::Mqtt(topic, mqtt) => {
                        self.publish_piece(&profile, topic, mqtt, piece, &mut record)
                    }
                }
                if !record.errors.is_empty() {
                    break;
                }
            }
        }
        record.ok = record.errors.is_empty();
        record.duration_ms = started.elapsed().as_millis() as u64;
        let record = Arc::new(record);
        self.remember(&profile, record.clone());
        record
    }

    /// Why an action text split into `pieces` may not run at all (nothing is sent then).
    fn beyond_limits(&self, pieces: &[(Duration, &str)]) -> Option<String> {
        if pieces.len() > self.limits.max_action_pieces {
            return Some(format!(
                "the action text would send {} requests (pieces between <wait>s), over the limit of {}: nothing was sent",
                pieces.len(),
                self.limits.max_action_pieces
            ));
        }
        pieces
            .iter()
            .find(|(pause, _)| *pause > self.limits.max_wait)
            .map(|(pause, _)| {
                format!(
                    "<wait {}> is longer than the limit of {} s: nothing was sent",
                    pause.as_millis(),
                    self.limits.max_wait.as_secs()
                )
            })
    }

    fn remember(&self, profile: &Profile, record: Arc<RunRecord>) {
        let journaled = record.clone();
        let render = Box::new(move || serde_json::to_string(&*journaled).ok());
        if let Err(error) = self.hub.journal(
            crate::devices::Book::Runs,
            &profile.name,
            render,
            profile.history_keep,
        ) {
            tracing::warn!(profile = %profile.name, error = %error, "run not journaled");
        }
        if !record.ok {
            for error in &record.errors {
                tracing::warn!(profile = %profile.name, stage = %error.stage, error = %error.message, "run failed");
            }
        }
        {
            let mut history = self.history.locked();
            let runs = history.entry(profile.name.clone()).or_default();
            runs.push_back(record.clone());
            while runs.len() > profile.history_keep {
                runs.pop_front();
            }
        }
        self.bus.publish(bus::HubEvent::RunFinished { run: record });
    }

    /// Renders one piece of an action text (itself a template: `position=${val12}`) against the
    /// hub. `None`: nothing is to be sent — the record says why (an error, or `skipped`).
    fn action_text(&self, piece: &str, record: &mut RunRecord) -> Option<String> {
        let env = HubEnvironment::new(&self.hub);
        // The action text is itself a template (`position=${val12}`).
        let action_template = match Template::compile(piece) {
            Ok(t) => t,
            Err(errors) => {
                for error in errors.errors {
                    record.errors.push(RunError {
                        stage: RunStage::Action,
                        class: Some(ErrorClass::Expression),
                        message: format!("action text: {}", error.message),
                        column: Some(error.column),
                    });
                }
                return None;
            }
        };
        let nothing = Document::new("", Default::default());
        let text = match action_template.render_text(&Scope::new(&nothing, &env)) {
            Ok(Some(text)) => text,
            Ok(None) => {
                record.skipped = true;
                return None;
            }
            Err(error) => {
                record.errors.push(RunError {
                    stage: RunStage::Action,
                    class: Some(ErrorClass::Expression),
                    message: format!("action text: {}", error.kind),
                    column: Some(error.column),
                });
                return None;
            }
        };
        Some(text)
    }

    /// Publishes one piece of an MQTT profile's action through the outbox (the MQTT bridge).
    fn publish_piece(
        &self,
        profile: &Profile,
        topic: &Template,
        mqtt: &crate::profile::MqttSpec,
        piece: &str,
        record: &mut RunRecord,
    ) {
        let Some(text) = self.action_text(piece, record) else {
            return;
        };
        let env = HubEnvironment::new(&self.hub);
        let input = Document::new(text.as_str(), profile.request_plan.clone());
        let topic = match topic.render_text(&Scope::new(&input, &env)) {
            Ok(Some(topic)) if !topic.is_empty() && !topic.contains(['+', '#', '\0']) => topic,
            Ok(None) => {
                record.skipped = true;
                return;
            }
            Ok(Some(topic)) => {
                record.errors.push(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: format!("`{topic}` is not a topic to publish to"),
                    column: None,
                });
                return;
            }
            Err(error) => {
                record.errors.push(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: format!("mqtt.publish: {}", error.kind),
                    column: Some(error.column),
                });
                return;
            }
        };
        let outbox = self.outbox.read_locked().clone();
        let sent = match outbox {
            Some(outbox) => outbox.publish(&topic, &text, mqtt.qos, mqtt.retain),
            None => Err("the MQTT bridge is off: set mqtt.url in plugin.toml".into()),
        };
        record.exchanges.push(ExchangeRecord {
            method: profile::Method::Post,
            url: format!("(mqtt) {topic}"),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
        });
        if let Err(message) = sent {
            record.errors.push(RunError {
                stage: RunStage::Request,
                class: Some(ErrorClass::Connection),
                message,
                column: None,
            });
        }
    }

    async fn run_piece(
        &self,
        profile: &Arc<Profile>,
        spec: &RequestSpec,
        piece: &str,
        record: &mut RunRecord,
    ) {
        let Some(text) = self.action_text(piece, record) else {
            return;
        };
        let mut env = HubEnvironment::new(&self.hub);
        env.server_url = self.server_url.get().map(String::as_str);
        if let (
            crate::profile::AuthSpec::OAuth2(_) | crate::profile::AuthSpec::OAuth1(_),
            Some(authorizer),
        ) = (&profile.auth, &self.authorizer)
        {
            env.token_fields = authorizer.token_fields(profile).await;
        }
        let action_input = Document::new(text.as_str(), profile.request_plan.clone());
        let scope = Scope::new(&action_input, &env);
        // The identity (issue time) of a token the API refused.
        let mut rejected: Option<i64> = None;
        // At most two exchanges: the second only to replay once with a refreshed token.
        let (response, mut exchange) = loop {
            let (result, exchange, token) =
                match self.exchange(profile, spec, &scope, rejected).await {
                    Ok(Some(sent)) => sent,
                    Ok(None) => {
                        record.skipped = true;
                        return;
                    }
                    Err(error) => {
                        record.errors.push(error);
                        return;
                    }
                };
            match (result, token) {
                (Ok(response), Some(token))
                    if rejected.is_none()
                        && (reauthorize_on(profile).contains(&response.status)
                            || self.answer_says_expired(profile, &response).await) =>
                {
                    let mut replaced = exchange;
                    replaced.status = Some(response.status);
                    record.exchanges.push(replaced);
                    rejected = Some(token);
                }
                (Ok(response), _) => break (response, exchange),
                (Err(error), _) => {
                    record.exchanges.push(exchange);
                    record.errors.push(RunError {
                        stage: RunStage::Request,
                        class: Some(request::error_class(&error)),
                        message: error.to_string(),
                        column: None,
                    });
                    return;
                }
            }
        };
        exchange.status = Some(response.status);
        exchange.response_bytes = response.body.len();
        record.exchanges.push(exchange);
        let body = response.body.clone();
        self.keep_last_response(&profile.name, body.clone());
        if !(200..300).contains(&response.status) {
            record.errors.push(RunError {
                stage: RunStage::Response,
                class: Some(ErrorClass::HttpStatus),
                message: format!(
                    "the API answered HTTP {}{}",
                    response.status,
                    body_hint(&response.body)
                ),
                column: None,
            });
            return;
        }
        self.map_response(profile, response, body, env.token_fields.clone(), record)
            .await;
    }

    /// Whether an API answer means "token expired" by the profile's `expired_when` expression
    /// (a provider that says so inside an HTTP 200). An expression that fails says no: the
    /// answer then goes to the mapping, which reports what it could not read.
    async fn answer_says_expired(
        &self,
        profile: &Arc<Profile>,
        response: &request::Response,
    ) -> bool {
        let crate::profile::AuthSpec::OAuth2(spec) = &profile.auth else {
            return false;
        };
        let Some(expression) = spec.expired_when.clone() else {
            return false;
        };
        fn judge(
            hub: &DeviceHub,
            expression: &crate::expr::Expression,
            response: &request::Response,
        ) -> bool {
            let env = HubEnvironment {
                hub,
                response: Some(response),
                token_fields: None,
                server_url: None,
            };
            let document = Document::new(response.body.clone(), expression.plan());
            expression
                .evaluate(&Scope::new(&document, &env))
                .is_ok_and(|value| value.is_truthy())
        }
        if response.body.len() > INLINE_MAPPING_BYTES {
            let (hub, response) = (self.hub.clone(), response.clone());
            tokio::task::spawn_blocking(move || judge(&hub, &expression, &response))
                .await
                .unwrap_or(false)
        } else {
            judge(&self.hub, &expression, response)
        }
    }

    /// Renders, authenticates and sends one request. `Ok(None)`: a template gave `null`.
    /// Returns the outcome, its record and the identity of the OAuth2 token used (if any).
    async fn exchange(
        &self,
        profile: &Profile,
        spec: &RequestSpec,
        scope: &Scope<'_>,
        rejected: Option<i64>,
    ) -> Result<
        Option<(
            Result<request::Response, request::RequestError>,
            ExchangeRecord,
            Option<i64>,
        )>,
        RunError,
    > {
        let mut prepared = match request::prepare(profile, spec, scope) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Ok(None),
            Err(error) => {
                let column = match &error {
                    request::RequestError::Template { error, .. } => Some(error.column),
                    _ => None,
                };
                return Err(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: error.to_string(),
                    column,
                });
            }
        };
        let token = match &profile.auth {
            crate::profile::AuthSpec::OAuth2(spec) => {
                let authorizer = self.authorizer.as_ref().ok_or_else(|| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: "OAuth2 is not available in this process".into(),
                    column: None,
                })?;
                let refused = |e: authorization::AuthorizationError| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: e.to_string(),
                    column: None,
                };
                // The hot path: a ready header, no future, no copy of the token.
                let cached = if rejected.is_none() {
                    authorizer
                        .fresh_header(&profile.name, &prepared.url)
                        .map_err(refused)?
                } else {
                    None
                };
                let (value, issued) = match cached {
                    Some(ready) => ready,
                    None => {
                        let (token, issued) = authorizer
                            .access_token(profile, &prepared.url, rejected)
                            .await
                            .map_err(refused)?;
                        let value =
                            authorization::token_value(spec, &token).ok_or_else(|| RunError {
                                stage: RunStage::Request,
                                class: Some(ErrorClass::Authorization),
                                message: "the access token cannot be sent in a header".into(),
                                column: None,
                            })?;
                        (value, issued)
                    }
                };
                authorization::place_token(spec, value, &mut prepared.url, &mut prepared.headers);
                Some(issued)
            }
            crate::profile::AuthSpec::OAuth1(_) => {
                let authorizer = self.authorizer.as_ref().ok_or_else(|| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: "OAuth is not available in this process".into(),
                    column: None,
                })?;
                // A form body's fields are signed too (RFC 5849 §3.4.1.3.1).
                let form_body = prepared
                    .body
                    .as_ref()
                    .filter(|(content_type, _)| {
                        content_type.starts_with("application/x-www-form-urlencoded")
                    })
                    .map(|(_, body)| body.as_str());
                let header = authorizer
                    .oauth1_header(profile, prepared.method.as_str(), &prepared.url, form_body)
                    .await
                    .map_err(|e| RunError {
                        stage: RunStage::Request,
                        class: Some(ErrorClass::Authorization),
                        message: e.to_string(),
                        column: None,
                    })?;
                prepared
                    .headers
                    .insert(reqwest::header::AUTHORIZATION, header);
                None
            }
            _ => None,
        };
        let mut exchange = ExchangeRecord {
            method: prepared.method,
            url: prepared.display_url.clone(),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
        };
        let client = if spec.verify_tls {
            &self.client
        } else {
            &self.insecure_client
        };
        let sent = Instant::now();
        let result = request::send(client, prepared, spec.timeout, spec.max_response_bytes).await;
        exchange.duration_ms = sent.elapsed().as_millis() as u64;
        Ok(Some((result, exchange, token)))
    }

    /// Keeps what a profile received last (for the sandbox and the input triggers).
    fn keep_last_response(&self, profile: &str, body: Arc<str>) {
        self.last_responses
            .locked()
            .keep(profile, body, self.limits.last_responses_bytes);
    }

    async fn map_response(
        &self,
        profile: &Arc<Profile>,
        response: request::Response,
        body: Arc<str>,
        token_fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
        record: &mut RunRecord,
    ) {
        let max_devices = self.limits.max_devices_per_run;
        // A large body (or a JSONPath over the whole tree) can take a while to evaluate: off the
        // async workers then, so one run never stalls the others or the API.
        let heavy = response_is_heavy(profile, body.len());
        let evaluate = {
            let (hub, profile) = (self.hub.clone(), profile.clone());
            move || {
                let env = HubEnvironment {
                    hub: &hub,
                    response: Some(&response),
                    token_fields,
                    server_url: None,
                };
                let document = Document::new(body, profile.response_plan.clone());
                mapping::evaluate(
                    &profile.name,
                    &profile.mapping,
                    &Scope::new(&document, &env),
                    max_devices,
                )
            }
        };
        let outcome = if heavy {
            match tokio::task::spawn_blocking(evaluate).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    record.errors.push(RunError {
                        stage: RunStage::Devices,
                        class: Some(ErrorClass::Expression),
                        message: format!("evaluating the devices failed: {error}"),
                        column: None,
                    });
                    return;
                }
            }
        } else {
            evaluate()
        };
        for failure in outcome.errors {
            record.errors.push(RunError {
                stage: RunStage::Devices,
                class: Some(mapping_error_class(&failure.error.kind)),
                message: format!("{}: {}", failure.target, failure.error.kind),
                column: Some(failure.error.column),
            });
        }
        if outcome.updates.is_empty() {
            return;
        }
        let creation = if profile.mapping.locked {
            Creation::Forbidden
        } else {
            Creation::Allowed
        };
        match self.hub.apply(&outcome.updates, creation).await {
            Ok(changes) => record.changes.extend(changes),
            Err(error) => record.errors.push(RunError {
                stage: RunStage::Devices,
                class: None,
                message: error.to_string(),
                column: None,
            }),
        }
    }
}

/// Bodies up to this size are mapped on the async worker that received them.
const INLINE_MAPPING_BYTES: usize = 64 * 1024;

/// Whether mapping a response may take long enough to belong on the blocking pool.
fn response_is_heavy(profile: &Profile, body_len: usize) -> bool {
    body_len > INLINE_MAPPING_BYTES
        || (profile.response_plan.needs_whole_tree && body_len > INLINE_MAPPING_BYTES / 16)
}

/// The run history as the journal kept it: what `GET /api/v1/runs` shows after a restart.
fn restore_history(
    hub: &DeviceHub,
    profiles: &ProfileSet,
) -> HashMap<String, VecDeque<Arc<RunRecord>>> {
    let mut history = HashMap::new();
    for profile in profiles.profiles.values() {
        let records = match hub.read_journal(
            crate::devices::Book::Runs,
            Some(&profile.name),
            profile.history_keep,
        ) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(profile = %profile.name, error = %error, "run history not restored");
                continue;
            }
        };
        // The journal reads newest first; the history keeps oldest first.
        let runs: VecDeque<Arc<RunRecord>> = records
            .iter()
            .rev()
            .filter_map(|text| serde_json::from_str::<RunRecord>(text).ok())
            .map(Arc::new)
            .collect();
        if !runs.is_empty() {
            history.insert(profile.name.clone(), runs);
        }
    }
    history
}

/// A failed device expression is malformed input when the response was not the JSON it reads.
fn mapping_error_class(kind: &crate::expr::EvalErrorKind) -> ErrorClass {
    match kind {
        crate::expr::EvalErrorKind::InvalidJson(_) => ErrorClass::MalformedResponse,
        _ => ErrorClass::Expression,
    }
}

fn reauthorize_on(profile: &Profile) -> &[u16] {
    match &profile.auth {
        crate::profile::AuthSpec::OAuth2(spec) => &spec.reauthorize_on,
        _ => &[],
    }
}

/// A short, safe hint of what an error response said (its first line, shortened).
fn body_hint(body: &str) -> String {
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if first.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::expr::error::excerpt(first))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_split_the_action_text() {
        let pieces = split_waits("AUX11=0<wait1000>Pool=1<wait 20>SPA=0");
        assert_eq!(
            pieces,
            vec![
                (Duration::ZERO, "AUX11=0"),
                (Duration::from_millis(1000), "Pool=1"),
                (Duration::from_millis(20), "SPA=0"),
            ]
        );
        assert_eq!(split_waits("plain"), vec![(Duration::ZERO, "plain")]);
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
