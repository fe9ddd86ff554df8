//! The API's wire types, converted by hand from domain types so that nothing private (a secret,
//! an internal field) reaches a response by accident.

use serde::{Deserialize, Serialize};

use crate::devices::{Device, Global};
use crate::profile::{AuthSpec, BodySpec, DeviceRule, Diagnostic, Profile};
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

#[derive(Serialize)]
pub struct ProfileDetail {
    #[serde(flatten)]
    pub summary: ProfileSummary,
    pub headers: Vec<(String, String)>,
    pub body: Option<serde_json::Value>,
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
    pub auth: serde_json::Value,
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

impl ProfileDetail {
    pub fn of(p: &Profile, listen_base: &str) -> ProfileDetail {
        let auth = match &p.auth {
            AuthSpec::None => serde_json::json!({"mode": "none"}),
            AuthSpec::Basic { username, .. } => {
                serde_json::json!({"mode": "basic", "username": username, "password": REDACTED})
            }
            AuthSpec::Bearer { .. } => serde_json::json!({"mode": "bearer", "token": REDACTED}),
            AuthSpec::ApiKeyHeader { header, .. } => {
                serde_json::json!({"mode": "api_key_header", "header": header, "key": REDACTED})
            }
            AuthSpec::ApiKeyQuery { parameter, .. } => {
                serde_json::json!({"mode": "api_key_query", "parameter": parameter, "key": REDACTED})
            }
            AuthSpec::OAuth2(spec) => serde_json::json!({"mode": "oauth2", "oauth2": spec}),
            AuthSpec::OAuth1(spec) => serde_json::json!({"mode": "oauth1", "oauth1": spec}),
        };
        let request = p.request.as_ref();
        let body = request.and_then(|r| r.body.as_ref()).map(|b| match b {
            BodySpec::Json(t) => serde_json::json!({"kind": "json", "template": t.source()}),
            BodySpec::Raw { content_type, template } => {
                serde_json::json!({"kind": "raw", "content_type": content_type, "template": template.source()})
            }
            BodySpec::Form(fields) => serde_json::json!({
                "kind": "form",
                "fields": fields.iter().map(|(k, t)| (k.clone(), t.source().to_string())).collect::<std::collections::BTreeMap<_, _>>()
            }),
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
    pub profile: String,
    pub name: String,
    pub feature: Option<String>,
    pub value: f64,
    pub string: String,
    pub changed_at: String,
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
        }
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
