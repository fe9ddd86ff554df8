//! The API's wire types, converted by hand from domain types so that nothing private (a secret,
//! an internal field) reaches a response by accident.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::devices::{Device, Global, HistoryPoint, StoreHealth};
use crate::engine::authorization::{AuthorizationStatus, DeviceStart};
use crate::engine::door::AdapterHealth;
use crate::engine::editor::{ProfileForm, Saved};
use crate::engine::forms::EventForm;
use crate::engine::record::{EventRun, RunRecord};
use crate::event::ErrorClass;
use crate::oauth::{Introspection, ServerMetadata};
use crate::profile::provider::{OAuthVersion, ProviderDefinition};
use crate::profile::{AuthSpec, BodySpec, DeviceRule, Diagnostic, Profile, ProfileSet};
use crate::secret::REDACTED;

#[derive(Serialize)]
pub struct ProfileSummary {
    pub name: String,
    pub file: String,
    pub description: String,
    /// An outgoing profile's method and URL.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub method: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A listening profile's path on this server (the listen base included).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<String>,
    /// Whether a listening profile's callers must send its token.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub listen_token: bool,
    pub auth_mode: &'static str,
    pub locked: bool,
    pub device_rules: usize,
    /// The newest run: whether it went well, and when.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_run: Option<LastRun>,
}

#[derive(Serialize)]
pub struct LastRun {
    pub ok: bool,
    pub skipped: bool,
    pub started_at: String,
}

impl ProfileSummary {
    /// `listen_base`: where listening paths are served (e.g. `/in`).
    pub fn of(p: &Profile, listen_base: &str) -> ProfileSummary {
        ProfileSummary {
            name: p.name.clone(),
            file: p.file.display().to_string(),
            description: p.description.clone(),
            method: p.request.as_ref().map(|r| r.method.as_str()),
            url: p.request.as_ref().map(|r| r.url.source().to_string()),
            listen: p
                .listen
                .as_ref()
                .map(|l| format!("{listen_base}{}", l.path)),
            listen_token: p.listen.as_ref().is_some_and(|l| l.token.is_some()),
            auth_mode: p.auth.mode(),
            locked: p.mapping.locked,
            device_rules: p.mapping.roots.len(),
            last_run: None,
        }
    }
}

#[derive(Serialize)]
pub struct ProfileList {
    pub profiles: Vec<ProfileSummary>,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Serialize)]
pub struct RuleView {
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub string: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<RuleView>,
}

impl From<&DeviceRule> for RuleView {
    fn from(rule: &DeviceRule) -> RuleView {
        RuleView {
            name: rule.name.source().to_string(),
            value: rule.value.as_ref().map(|e| e.source().to_string()),
            string: rule.string.as_ref().map(|e| e.source().to_string()),
            features: rule.features.iter().map(RuleView::from).collect(),
        }
    }
}

/// How a profile authenticates, its secrets redacted.
#[derive(Serialize)]
#[serde(tag = "mode", rename_all = "snake_case")]
pub enum AuthView<'a> {
    None,
    Basic {
        username: &'a str,
        password: &'static str,
    },
    Bearer {
        token: &'static str,
    },
    ApiKeyHeader {
        header: &'a str,
        key: &'static str,
    },
    ApiKeyQuery {
        parameter: &'a str,
        key: &'static str,
    },
    /// The OAuth settings (their secrets serialize redacted).
    #[serde(rename = "oauth2")]
    OAuth2 {
        oauth2: &'a crate::profile::OAuth2Spec,
    },
    #[serde(rename = "oauth1")]
    OAuth1 {
        oauth1: &'a crate::profile::OAuth1Spec,
    },
}

/// A request's body template.
#[derive(Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BodyView<'a> {
    Json {
        template: &'a str,
    },
    Raw {
        content_type: &'a str,
        template: &'a str,
    },
    Form {
        fields: BTreeMap<&'a str, &'a str>,
    },
}

#[derive(Serialize)]
pub struct ProfileDetail<'a> {
    #[serde(flatten)]
    pub summary: ProfileSummary,
    pub headers: Vec<(String, String)>,
    pub body: Option<BodyView<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_response_bytes: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub verify_tls: Option<bool>,
    /// A listening profile's reply template and body limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reply: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_body_bytes: Option<u64>,
    pub auth: AuthView<'a>,
    pub affect: Option<String>,
    pub devices: Vec<RuleView>,
    pub history_keep: usize,
}

/// Header names whose values are shown redacted.
fn is_sensitive_header(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    [
        "authorization",
        "cookie",
        "token",
        "key",
        "secret",
        "password",
    ]
    .iter()
    .any(|word| lower.contains(word))
}

impl<'a> ProfileDetail<'a> {
    pub fn of(p: &'a Profile, listen_base: &str) -> ProfileDetail<'a> {
        let auth = match &p.auth {
            AuthSpec::None => AuthView::None,
            AuthSpec::Basic { username, .. } => AuthView::Basic {
                username,
                password: REDACTED,
            },
            AuthSpec::Bearer { .. } => AuthView::Bearer { token: REDACTED },
            AuthSpec::ApiKeyHeader { header, .. } => AuthView::ApiKeyHeader {
                header,
                key: REDACTED,
            },
            AuthSpec::ApiKeyQuery { parameter, .. } => AuthView::ApiKeyQuery {
                parameter,
                key: REDACTED,
            },
            AuthSpec::OAuth2(spec) => AuthView::OAuth2 { oauth2: spec },
            AuthSpec::OAuth1(spec) => AuthView::OAuth1 { oauth1: spec },
        };
        let request = p.request.as_ref();
        let body = request.and_then(|r| r.body.as_ref()).map(|b| match b {
            BodySpec::Json(t) => BodyView::Json {
                template: t.source(),
            },
            BodySpec::Raw {
                content_type,
                template,
            } => BodyView::Raw {
                content_type,
                template: template.source(),
            },
            BodySpec::Form(fields) => BodyView::Form {
                fields: fields
                    .iter()
                    .map(|(k, t)| (k.as_str(), t.source()))
                    .collect(),
            },
        });
        ProfileDetail {
            summary: ProfileSummary::of(p, listen_base),
            headers: request
                .into_iter()
                .flat_map(|r| &r.headers)
                .map(|(name, t)| {
                    let shown = if is_sensitive_header(name) {
                        REDACTED.to_string()
                    } else {
                        t.source().to_string()
                    };
                    (name.clone(), shown)
                })
                .collect(),
            body,
            timeout_secs: request.map(|r| r.timeout.as_secs_f64()),
            max_response_bytes: request.map(|r| r.max_response_bytes),
            verify_tls: request.map(|r| r.verify_tls),
            reply: p.listen.as_ref().map(|l| l.reply.source().to_string()),
            max_body_bytes: p.listen.as_ref().map(|l| l.max_body_bytes),
            auth,
            affect: p.mapping.affect.as_ref().map(|e| e.source().to_string()),
            devices: p.mapping.roots.iter().map(RuleView::from).collect(),
            history_keep: p.history_keep,
        }
    }
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_default()
}

#[derive(Serialize)]
pub struct DeviceView {
    #[serde(rename = "ref")]
    pub reference: u64,
    pub profile: std::sync::Arc<str>,
    pub name: std::sync::Arc<str>,
    pub feature: Option<std::sync::Arc<str>>,
    pub value: f64,
    pub string: String,
    pub changed_at: String,
    /// The unit its profile gives it (`°C`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub unit: Option<String>,
    /// A root that only carries features (a `Thermo` whose `temperature` holds the data): its
    /// own value means nothing.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub grouping: bool,
}

impl From<&Device> for DeviceView {
    fn from(d: &Device) -> DeviceView {
        DeviceView {
            reference: d.reference,
            profile: d.key.profile.clone(),
            name: d.key.root.clone(),
            feature: d.key.feature.clone(),
            value: d.value,
            string: d.string.clone(),
            changed_at: time_text(d.changed_at_ms),
            unit: None,
            grouping: false,
        }
    }
}

impl DeviceView {
    /// A device as shown, with what its profile says of it (unit, whether a root is only a
    /// group of features).
    pub fn described(d: &Device, profiles: &ProfileSet) -> DeviceView {
        let mut view = DeviceView::from(d);
        if let Some(profile) = profiles.get(&d.key.profile) {
            let mapping = &profile.mapping;
            view.unit = mapping
                .description_of(&d.key.root, d.key.feature.as_deref())
                .0
                .map(str::to_string);
            view.grouping = d.key.feature.is_none() && !mapping.root_has_own_value(&d.key.root);
        }
        view
    }
}

#[derive(Serialize)]
pub struct GlobalView {
    pub name: String,
    pub value: f64,
    pub string: String,
    pub changed_at: String,
}

impl From<&Global> for GlobalView {
    fn from(g: &Global) -> GlobalView {
        GlobalView {
            name: g.name.clone(),
            value: g.value,
            string: g.string.clone(),
            changed_at: time_text(g.changed_at_ms),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunRequest {
    pub profile: String,
    #[serde(default)]
    pub text: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetRequest {
    pub value: Option<f64>,
    pub string: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EvalRequest {
    pub expression: String,
    /// The input text; or, with `profile`, that profile's last response.
    pub input: Option<String>,
    pub profile: Option<String>,
}

#[derive(Serialize)]
pub struct EvalResponse {
    pub result: serde_json::Value,
    pub text: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub warnings: Vec<crate::expr::CompileWarning>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ValidateRequest {
    /// The profile file's text.
    pub text: String,
    #[serde(default)]
    pub file_name: Option<String>,
}

#[derive(Serialize)]
pub struct ValidateResponse {
    pub valid: bool,
    pub diagnostics: Vec<Diagnostic>,
}

#[derive(Deserialize)]
pub struct RunsQuery {
    pub profile: Option<String>,
    pub limit: Option<usize>,
}

#[derive(Serialize)]
pub struct FunctionView {
    pub name: &'static str,
    pub signature: &'static str,
    pub doc: &'static str,
}

/// `POST /api/v1/events/{name}/run`: the input the event's actions may read.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields, default)]
pub struct FireRequest {
    pub input: Option<String>,
}

// ---- Runs ----------------------------------------------------------------------------------
// The engine's records are the store's format (the journal); these are the API's. They have
// the same shape today, field by field, so that a change to one is a decision about the other.

/// A profile's run as the API and the live view show it.
#[derive(Serialize)]
pub struct RunView<'a> {
    pub profile: &'a str,
    pub started_at: &'a str,
    pub duration_ms: u64,
    pub action_text: &'a str,
    pub ok: bool,
    pub skipped: bool,
    pub exchanges: Vec<ExchangeView<'a>>,
    pub changes: Vec<ChangeView<'a>>,
    pub errors: Vec<RunErrorView<'a>>,
}

#[derive(Serialize)]
pub struct ExchangeView<'a> {
    pub method: &'static str,
    pub url: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub response_bytes: usize,
}

/// A device a run changed, as the run shows it (its key spelled out).
#[derive(Serialize)]
pub struct ChangeView<'a> {
    pub kind: &'static str,
    pub device: ChangedDeviceView<'a>,
}

#[derive(Serialize)]
pub struct ChangedDeviceView<'a> {
    pub reference: u64,
    pub key: DeviceKeyView<'a>,
    pub value: f64,
    pub string: &'a str,
    pub changed_at_ms: i64,
}

#[derive(Serialize)]
pub struct DeviceKeyView<'a> {
    pub profile: &'a str,
    pub root: &'a str,
    pub feature: Option<&'a str>,
}

#[derive(Serialize)]
pub struct RunErrorView<'a> {
    pub stage: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub class: Option<&'static str>,
    pub message: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl<'a> From<&'a RunRecord> for RunView<'a> {
    fn from(run: &'a RunRecord) -> RunView<'a> {
        RunView {
            profile: &run.profile,
            started_at: &run.started_at,
            duration_ms: run.duration_ms,
            action_text: &run.action_text,
            ok: run.ok,
            skipped: run.skipped,
            exchanges: run
                .exchanges
                .iter()
                .map(|exchange| ExchangeView {
                    method: exchange.method.as_str(),
                    url: &exchange.url,
                    status: exchange.status,
                    duration_ms: exchange.duration_ms,
                    response_bytes: exchange.response_bytes,
                })
                .collect(),
            changes: run
                .changes
                .iter()
                .map(|change| ChangeView {
                    kind: change.kind.as_str(),
                    device: ChangedDeviceView {
                        reference: change.device.reference,
                        key: DeviceKeyView {
                            profile: &change.device.key.profile,
                            root: &change.device.key.root,
                            feature: change.device.key.feature.as_deref(),
                        },
                        value: change.device.value,
                        string: &change.device.string,
                        changed_at_ms: change.device.changed_at_ms,
                    },
                })
                .collect(),
            errors: run
                .errors
                .iter()
                .map(|error| RunErrorView {
                    stage: error.stage.as_str(),
                    class: error.class.map(ErrorClass::as_str),
                    message: &error.message,
                    column: error.column,
                })
                .collect(),
        }
    }
}

/// `GET /api/v1/runs` and `GET /api/v1/events/{name}/runs`.
#[derive(Serialize)]
pub struct RunList<T: Serialize> {
    pub runs: Vec<T>,
}

/// The short form of a finished run, as the live view announces it.
#[derive(Serialize)]
pub struct RunFinishedView<'a> {
    pub profile: &'a str,
    pub ok: bool,
    pub skipped: bool,
    pub started_at: &'a str,
    pub duration_ms: u64,
}

/// An event's run as the API shows it.
#[derive(Serialize)]
pub struct EventRunView<'a> {
    pub event: &'a str,
    pub trigger: &'a str,
    pub started_at: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<u64>,
    pub duration_ms: u64,
    pub outcome: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<&'a str>,
    pub steps: Vec<StepView<'a>>,
}

#[derive(Serialize)]
pub struct StepView<'a> {
    pub step: &'a str,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<&'a str>,
    pub duration_ms: u64,
}

impl<'a> From<&'a EventRun> for EventRunView<'a> {
    fn from(run: &'a EventRun) -> EventRunView<'a> {
        EventRunView {
            event: &run.event,
            trigger: &run.trigger,
            started_at: &run.started_at,
            late_ms: run.late_ms,
            duration_ms: run.duration_ms,
            outcome: run.outcome.as_str(),
            reason: run.reason.as_deref(),
            steps: run
                .steps
                .iter()
                .map(|step| StepView {
                    step: &step.step,
                    ok: step.ok,
                    message: step.message.as_deref(),
                    duration_ms: step.duration_ms,
                })
                .collect(),
        }
    }
}

/// The short form of a finished event run, as the live view announces it.
#[derive(Serialize)]
pub struct EventFinishedView<'a> {
    pub event: &'a str,
    pub trigger: &'a str,
    pub outcome: &'static str,
    pub started_at: &'a str,
}

// ---- Devices -------------------------------------------------------------------------------

#[derive(Serialize)]
pub struct DeviceList {
    pub devices: Vec<DeviceView>,
}

#[derive(Serialize)]
pub struct GlobalList {
    pub globals: Vec<GlobalView>,
}

/// `GET /api/v1/devices/{ref}/history`.
#[derive(Serialize)]
pub struct DeviceHistory<'a> {
    #[serde(rename = "ref")]
    pub reference: u64,
    pub points: Vec<HistoryPointView<'a>>,
}

/// The editor's device boxes over a profile's last response (`ran` false: it has none yet).
#[derive(Serialize)]
pub struct BoxesPreview<'a> {
    pub ran: bool,
    pub boxes: std::collections::BTreeMap<&'static str, Vec<ElementView<'a>>>,
}

/// One element of a box: its value as text, or the problem and its column in the box.
#[derive(Serialize)]
pub struct ElementView<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

impl<'a> From<&'a crate::engine::door::ElementPreview> for ElementView<'a> {
    fn from(element: &'a crate::engine::door::ElementPreview) -> ElementView<'a> {
        use crate::engine::door::ElementPreview;
        match element {
            ElementPreview::Value(text) => ElementView {
                text: Some(text),
                error: None,
                column: None,
            },
            ElementPreview::Problem { message, column } => ElementView {
                text: None,
                error: Some(message),
                column: Some(*column),
            },
        }
    }
}

/// A global's recorded changes, oldest first.
#[derive(Serialize)]
pub struct GlobalHistory<'a> {
    pub name: &'a str,
    pub points: Vec<HistoryPointView<'a>>,
}

/// One state a device had, from `at_ms` on.
#[derive(Serialize)]
pub struct HistoryPointView<'a> {
    pub at_ms: i64,
    pub value: f64,
    pub string: &'a str,
}

impl<'a> From<&'a HistoryPoint> for HistoryPointView<'a> {
    fn from(point: &'a HistoryPoint) -> HistoryPointView<'a> {
        HistoryPointView {
            at_ms: point.at_ms,
            value: point.value,
            string: &point.string,
        }
    }
}

// ---- Server ----------------------------------------------------------------------------------

#[derive(Serialize)]
pub struct Health {
    pub status: &'static str,
    pub version: &'static str,
    pub store: Option<StoreHealth>,
    /// An adapter's trouble (an unreachable broker) is shown, not a degraded Bellhop.
    pub adapters: BTreeMap<String, AdapterHealth>,
}

#[derive(Serialize)]
pub struct Reloaded<'a> {
    pub profiles: Vec<&'a str>,
    pub diagnostics: &'a [Diagnostic],
}

#[derive(Serialize)]
pub struct CallbackUrls {
    pub standard: String,
    pub legacy: String,
}

/// `GET /api/v1/ui`: what the UI needs to know of the server.
#[derive(Serialize)]
pub struct UiSettings {
    pub callback_urls: Option<CallbackUrls>,
    pub sign_in: bool,
}

#[derive(Serialize)]
pub struct FunctionList {
    pub functions: Vec<FunctionView>,
}

// ---- Forms -----------------------------------------------------------------------------------

/// What saving a form did: the name it was saved under and whether the file changed.
#[derive(Serialize)]
pub struct SavedView<'a> {
    pub saved: &'a str,
    pub outcome: Saved,
}

/// `GET /api/v1/profiles/{name}/form`.
#[derive(Serialize)]
pub struct ProfileFormView {
    pub form: ProfileForm,
    pub redirect_uri: Option<String>,
    pub status: Option<AuthorizationStatus>,
}

/// `GET /api/v1/events/{name}/form`.
#[derive(Serialize)]
pub struct EventFormView {
    pub form: EventForm,
}

// ---- Events ----------------------------------------------------------------------------------

#[derive(Serialize)]
pub struct EventList<'a, E: Serialize> {
    pub events: Vec<E>,
    /// The cursor of the next page (`?after=`), when there is one.
    pub next: Option<String>,
    pub time_zone: String,
    pub diagnostics: &'a [Diagnostic],
}

/// `GET|POST /hooks/events/…`: the event was handed to the runner.
#[derive(Serialize)]
pub struct Fired {
    pub fired: String,
}

// ---- Authorization ---------------------------------------------------------------------------

/// A profile's authorization status, with its grant.
#[derive(Serialize)]
pub struct AuthorizationView<'a> {
    pub profile: &'a str,
    pub grant: Option<&'a str>,
    pub status: AuthorizationStatus,
    pub redirect_uri: Option<String>,
}

/// `DELETE /api/v1/profiles/{name}/authorization`.
#[derive(Serialize)]
pub struct ForgottenView<'a> {
    pub profile: &'a str,
    pub status: AuthorizationStatus,
    pub note: Option<String>,
}

#[derive(Serialize)]
pub struct DeviceStartView<'a> {
    pub profile: &'a str,
    pub device: DeviceStart,
}

#[derive(Serialize)]
pub struct IntrospectionView<'a> {
    pub profile: &'a str,
    pub introspection: Introspection,
}

/// An authorization server's endpoints, named as profile fields name them.
#[derive(Serialize)]
pub struct DiscoveredView {
    pub issuer: String,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub device_authorization_url: Option<String>,
    pub revocation_url: Option<String>,
    pub introspection_url: Option<String>,
    pub userinfo_url: Option<String>,
    pub grant_types_supported: Vec<String>,
    pub code_challenge_methods_supported: Vec<String>,
    pub token_endpoint_auth_methods_supported: Vec<String>,
}

/// A provider as the API and the UI's select show it.
#[derive(Serialize)]
pub struct ProviderView<'a> {
    pub id: &'a str,
    pub name: &'a str,
    pub built_in: bool,
    pub file: &'a std::path::Path,
    pub oauth_version: &'static str,
    pub grants: &'a [String],
    pub api_base: &'a Option<String>,
    pub docs: &'a Option<String>,
    pub client_id_label: &'a Option<String>,
    pub client_secret_label: &'a Option<String>,
    pub scopes: &'a Option<String>,
    pub settings: &'a BTreeMap<String, String>,
    pub authorize_url: &'a Option<String>,
    pub token_url: &'a Option<String>,
    pub device_authorization_url: &'a Option<String>,
    pub revocation_url: &'a Option<String>,
}

impl<'a> From<&'a ProviderDefinition> for ProviderView<'a> {
    fn from(p: &'a ProviderDefinition) -> ProviderView<'a> {
        ProviderView {
            id: &p.id,
            name: &p.name,
            built_in: p.built_in,
            file: &p.file,
            oauth_version: match p.oauth_version {
                OAuthVersion::V2 => "2.0",
                OAuthVersion::V1 => "1.0a",
            },
            grants: &p.grants,
            api_base: &p.api_base,
            docs: &p.docs,
            client_id_label: &p.client_id_label,
            client_secret_label: &p.client_secret_label,
            scopes: &p.settings.scopes,
            settings: &p.settings.settings,
            authorize_url: &p.settings.authorize_url,
            token_url: &p.settings.token_url,
            device_authorization_url: &p.settings.device_authorization_url,
            revocation_url: &p.settings.revocation_url,
        }
    }
}

impl From<ServerMetadata> for DiscoveredView {
    fn from(metadata: ServerMetadata) -> DiscoveredView {
        DiscoveredView {
            issuer: metadata.issuer,
            authorize_url: metadata.authorization_endpoint,
            token_url: metadata.token_endpoint,
            device_authorization_url: metadata.device_authorization_endpoint,
            revocation_url: metadata.revocation_endpoint,
            introspection_url: metadata.introspection_endpoint,
            userinfo_url: metadata.userinfo_endpoint,
            grant_types_supported: metadata.grant_types_supported,
            code_challenge_methods_supported: metadata.code_challenge_methods_supported,
            token_endpoint_auth_methods_supported: metadata.token_endpoint_auth_methods_supported,
        }
    }
}

#[derive(Serialize)]
pub struct ProviderList<'a> {
    pub providers: Vec<ProviderView<'a>>,
}
