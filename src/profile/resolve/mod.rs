//! Raw → resolved: parses a profile file, reports unknown keys, checks every field and compiles
//! every expression and template, collecting all problems before deciding.

mod auth;
mod devices;
mod listen;
mod mqtt;
mod oauth1;
mod oauth2;
mod request;

use auth::*;
pub use devices::split_box;
use devices::*;
pub use listen::MAX_LISTEN_BODY_BYTES;
use listen::*;
use mqtt::*;
use oauth1::*;
pub use oauth2::GRANTS;
use oauth2::*;
use request::*;

use super::diagnostic::{column_at, line_of_key, Collector, Diagnostic};
use super::raw::{
    RawAuth, RawBody, RawDeviceFlow, RawDevices, RawIncoming, RawMqtt, RawOAuth1, RawOAuth2,
    RawProfile, RawRequest, RawTokenRequest, RawTokenResponse,
};
use super::{
    AuthSpec, BodySpec, ClientAuth, DeviceMapping, DeviceRule, GrantType, ListenSpec, Method,
    MqttSpec, OAuth1Spec, OAuth2Spec, Profile, RequestSpec, Sources, UserInfoSpec,
};
use crate::expr::{inside_ranges, literal_ranges, Expression, ExtractionPlan, Template};
use crate::oauth;
use crate::secret::{Secret, SecretSource};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::Duration;

pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 10 * 1024 * 1024;

pub const DEFAULT_HISTORY_KEEP: usize = 50;

const SUPPORTED_VERSION: u32 = 1;

/// Longest profile name, in characters.
pub const MAX_NAME_CHARS: usize = 100;

pub fn load(file: &Path, text: &str, sources: &Sources<'_>) -> (Option<Profile>, Vec<Diagnostic>) {
    let mut c = Collector::new(file, text);
    let Some(raw) = c.parse::<RawProfile>() else {
        return (None, c.diagnostics);
    };
    let profile = resolve(raw, &mut c, sources);
    if c.has_errors() {
        (None, c.diagnostics)
    } else {
        (profile, c.diagnostics)
    }
}

/// Why `name` cannot name a `kind` of thing (`profile`, `event`), if it cannot.
pub fn name_problem(name: &str, kind: &str) -> Option<String> {
    if name.chars().count() > MAX_NAME_CHARS {
        Some(format!(
            "a {kind} name may be at most {MAX_NAME_CHARS} characters long"
        ))
    } else if name.trim().is_empty()
        || !name
            .chars()
            .all(|ch| ch.is_alphanumeric() || matches!(ch, '-' | '_' | '.' | ' '))
        || name.starts_with('.')
    {
        Some(format!(
            "{kind} name `{name}` may only hold letters, digits, spaces, `-`, `_` and `.` (not first)"
        ))
    } else {
        None
    }
}

fn resolve(raw: RawProfile, c: &mut Collector<'_>, sources: &Sources<'_>) -> Option<Profile> {
    let name = c.version_and_name("profile", raw.version, SUPPORTED_VERSION, raw.name.clone());
    let (request, listen, mqtt) = match (&raw.request, &raw.listen, &raw.mqtt) {
        (Some(request), None, None) => (resolve_request(request, c), None, None),
        (None, Some(path), None) => (
            None,
            resolve_listen(path, raw.incoming.as_ref(), c, sources.secrets),
            None,
        ),
        (None, None, Some(mqtt)) => (None, None, resolve_mqtt(mqtt, c)),
        (None, None, None) => {
            c.error(
                "request",
                "a profile needs a `[request]` table with at least `url` (or `listen = \"/path\"` to receive calls, or `[mqtt]`)",
            );
            (None, None, None)
        }
        _ => {
            c.error(
                if raw.listen.is_some() { "listen" } else { "mqtt" },
                "a profile calls out (`[request]`), listens (`listen`) or talks MQTT (`[mqtt]`): one of them",
            );
            (None, None, None)
        }
    };
    if raw.incoming.is_some() && raw.listen.is_none() {
        c.error(
            "incoming",
            "`[incoming]` is for listening profiles: add `listen = \"/path\"`",
        );
    }
    let auth = resolve_auth(&raw.auth, c, sources);
    let mapping = resolve_mapping(&raw, c);
    let history_keep = raw.history.keep.unwrap_or(DEFAULT_HISTORY_KEEP);
    if history_keep == 0 || history_keep > 10_000 {
        c.error("history.keep", "history.keep must be between 1 and 10000");
    }
    let mut plan = ExtractionPlan::default();
    if let Some(affect) = &mapping.affect {
        affect.plan_into(&mut plan);
    }
    for rule in &mapping.roots {
        plan_rule(rule, &mut plan);
    }
    if request.is_none() && listen.is_none() && mqtt.is_none() {
        return None;
    }
    let mut request_plan = ExtractionPlan::default();
    if let Some(request) = &request {
        request.url.plan_into(&mut request_plan);
        for (_, header) in &request.headers {
            header.plan_into(&mut request_plan);
        }
        match &request.body {
            Some(BodySpec::Json(t)) | Some(BodySpec::Raw { template: t, .. }) => {
                t.plan_into(&mut request_plan)
            }
            Some(BodySpec::Form(fields)) => fields
                .iter()
                .for_each(|(_, t)| t.plan_into(&mut request_plan)),
            None => {}
        }
    }
    if let (Some(_), false) = (&listen, matches!(auth, Some(AuthSpec::None))) {
        c.error(
            "auth",
            "a listening profile sends nothing, so it has no `[auth]`: protect its path with `incoming.token`",
        );
        return None;
    }
    if let (Some(_), false) = (&mqtt, matches!(auth, Some(AuthSpec::None))) {
        c.error(
            "auth",
            "an MQTT profile talks through the bridge's broker login (`[mqtt]` in plugin.toml), so it has no `[auth]`",
        );
        return None;
    }
    if let Some(publish) = mqtt.as_ref().and_then(|m| m.publish.as_ref()) {
        publish.plan_into(&mut request_plan);
    }
    Some(Profile {
        name,
        file: c.file.to_path_buf(),
        description: raw.description,
        request,
        listen,
        mqtt,
        auth: auth?,
        mapping,
        response_plan: plan.shared(),
        request_plan: request_plan.shared(),
        history_keep,
        home_assistant_button: raw.home_assistant_button.unwrap_or(true),
    })
}

fn plan_rule(rule: &DeviceRule, plan: &mut ExtractionPlan) {
    rule.name.plan_into(plan);
    for expression in rule.value.iter().chain(rule.string.iter()) {
        expression.plan_into(plan);
    }
    for feature in &rule.features {
        plan_rule(feature, plan);
    }
}

fn template(c: &mut Collector<'_>, key: &str, source: &str) -> Option<Template> {
    match Template::compile(source) {
        Ok(t) => Some(t),
        Err(errors) => {
            c.compile_errors(key, source, 0, errors);
            None
        }
    }
}

fn required<'v>(
    c: &mut Collector<'_>,
    key: &str,
    value: &'v Option<String>,
    mode: &str,
) -> Option<&'v str> {
    match value.as_deref() {
        Some(v) if !v.trim().is_empty() => Some(v),
        _ => {
            c.error(
                key,
                format!(
                    "auth mode `{mode}` needs `{}`",
                    key.rsplit('.').next().unwrap_or(key)
                ),
            );
            None
        }
    }
}

fn secret(c: &mut Collector<'_>, secrets: &SecretSource, key: &str, value: &str) -> Option<Secret> {
    match secrets.resolve(value) {
        Ok(s) => Some(s),
        Err(message) => {
            c.error(key, message);
            None
        }
    }
}
