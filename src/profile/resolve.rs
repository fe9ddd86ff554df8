//! Raw → resolved: parses a profile file, reports unknown keys, checks every field and compiles
//! every expression and template, collecting all problems before deciding.

use std::path::Path;
use std::time::Duration;

use super::diagnostic::{column_at, line_of_key, Collector, Diagnostic};
use std::collections::BTreeMap;

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

fn resolve_mqtt(raw: &RawMqtt, c: &mut Collector<'_>) -> Option<MqttSpec> {
    if raw.subscribe.is_none() && raw.publish.is_none() {
        c.error(
            "mqtt",
            "an MQTT profile needs `subscribe` (a topic filter), `publish` (a topic), or both",
        );
        return None;
    }
    let subscribe = raw.subscribe.clone();
    if let Some(filter) = &subscribe {
        if filter.is_empty() || filter.len() > 1024 || !rumqttc::valid_filter(filter) {
            c.error(
                "mqtt.subscribe",
                format!("`{filter}` is not an MQTT topic filter (`+` stands for one level, `#` for the rest, at the end)"),
            );
        }
    }
    let publish = match &raw.publish {
        Some(source) => {
            let compiled = template(c, "mqtt.publish", source);
            let wild = compiled.as_ref().is_some_and(|t| {
                t.parts().iter().any(|part| {
                    matches!(part, crate::expr::TemplatePart::Text(text) if text.contains(['+', '#']))
                })
            });
            if wild || source.is_empty() {
                c.error(
                    "mqtt.publish",
                    "a topic to publish to is not empty and has no `+` or `#` (those are for subscribing)",
                );
            }
            compiled
        }
        None => None,
    };
    let qos = raw.qos.unwrap_or(1);
    if qos > 2 {
        c.error("mqtt.qos", "qos is 0, 1 or 2");
    }
    Some(MqttSpec {
        subscribe,
        publish,
        qos,
        retain: raw.retain.unwrap_or(false),
    })
}

/// The largest body a listening profile may accept.
pub const MAX_LISTEN_BODY_BYTES: u64 = 1024 * 1024;
const DEFAULT_LISTEN_BODY_BYTES: u64 = 64 * 1024;
const DEFAULT_LISTEN_PER_SECOND: u32 = 20;
const MAX_LISTEN_PATH_CHARS: usize = 200;

fn resolve_listen(
    path: &str,
    incoming: Option<&RawIncoming>,
    c: &mut Collector<'_>,
    secrets: &SecretSource,
) -> Option<ListenSpec> {
    let path = match listen_path_problem(path) {
        Some(problem) => {
            c.error("listen", problem);
            None
        }
        None => Some(path.trim_end_matches('/').to_string()),
    };
    let default = RawIncoming::default();
    let incoming = incoming.unwrap_or(&default);
    let reply = template(
        c,
        "incoming.reply",
        incoming.reply.as_deref().unwrap_or("OK"),
    );
    let reply_content_type = incoming
        .reply_content_type
        .clone()
        .unwrap_or_else(|| "text/plain; charset=utf-8".to_string());
    if reqwest::header::HeaderValue::from_str(&reply_content_type).is_err() {
        c.error(
            "incoming.reply_content_type",
            "not a valid Content-Type header value",
        );
    }
    let token = match &incoming.token {
        Some(token) => Some(secret(c, secrets, "incoming.token", token)?),
        None => None,
    };
    if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        c.error(
            "incoming.token",
            "a listening token must be at least 16 characters (it is all that guards the path)",
        );
    }
    let max_body_bytes = incoming.max_body_bytes.unwrap_or(DEFAULT_LISTEN_BODY_BYTES);
    if max_body_bytes == 0 || max_body_bytes > MAX_LISTEN_BODY_BYTES {
        c.error(
            "incoming.max_body_bytes",
            format!("must be between 1 and {MAX_LISTEN_BODY_BYTES}"),
        );
    }
    let max_per_second = incoming.max_per_second.unwrap_or(DEFAULT_LISTEN_PER_SECOND);
    if max_per_second == 0 || max_per_second > 10_000 {
        c.error("incoming.max_per_second", "must be between 1 and 10000");
    }
    Some(ListenSpec {
        path: path?,
        reply: reply?,
        reply_content_type,
        token,
        max_body_bytes,
        max_per_second,
    })
}

/// Why `path` cannot be a listening path, if it cannot.
fn listen_path_problem(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') || trimmed.is_empty() {
        return Some(format!(
            "`{path}` is not a listening path: write it like `/sensors/hall`"
        ));
    }
    if path.chars().count() > MAX_LISTEN_PATH_CHARS {
        return Some(format!(
            "a listening path may be at most {MAX_LISTEN_PATH_CHARS} characters long"
        ));
    }
    let bad_segment = trimmed[1..].split('/').find(|segment| {
        segment.is_empty()
            || *segment == "."
            || *segment == ".."
            || !segment
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '~'))
    });
    bad_segment.map(|segment| {
        format!(
            "listening path segment `{segment}` may only hold ASCII letters, digits, `-`, `_`, `.` and `~` (not empty, `.` or `..`)"
        )
    })
}

fn resolve_request(raw: &RawRequest, c: &mut Collector<'_>) -> Option<RequestSpec> {
    let method = match raw.method.to_ascii_uppercase().as_str() {
        "GET" => Some(Method::Get),
        "POST" => Some(Method::Post),
        "PUT" => Some(Method::Put),
        "PATCH" => Some(Method::Patch),
        "DELETE" => Some(Method::Delete),
        other => {
            c.error(
                "request.method",
                format!("method `{other}` is not one of GET, POST, PUT, PATCH, DELETE"),
            );
            None
        }
    };
    let url = template(c, "request.url", &raw.url);
    if let Some(url) = &url {
        check_url_shape(url, c);
    }
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let key = format!("request.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.error(&key, format!("`{name}` is not a valid header name"));
            continue;
        }
        if let Some(t) = template(c, &key, value) {
            headers.push((name.clone(), t));
        }
    }
    let body = raw.body.as_ref().and_then(|b| resolve_body(b, c));
    let timeout = match raw.timeout_secs {
        None => Some(DEFAULT_TIMEOUT),
        Some(secs) if secs > 0.0 && secs <= 3600.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            c.error(
                "request.timeout_secs",
                format!("timeout_secs must be above 0 and at most 3600, not {secs}"),
            );
            None
        }
    };
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if max_response_bytes == 0 {
        c.error(
            "request.max_response_bytes",
            "max_response_bytes must be above 0",
        );
    }
    if !raw.verify_tls {
        c.warning(
            "request.verify_tls",
            "TLS certificates are not verified for this profile",
        );
    }
    let url = url?;
    Some(RequestSpec {
        method: method?,
        url_reads_input: url.reads_input(),
        url,
        encode_url_segments: !raw.raw_url,
        headers,
        body,
        timeout: timeout?,
        max_response_bytes,
        verify_tls: raw.verify_tls,
    })
}

/// A URL template must be an absolute http(s) URL once its segments are filled in. A `${…}`
/// that opens the URL gives its scheme and host (`${Token("api_domain")}/v2/users`): the rest
/// is checked under a sample origin then, and the whole URL again when it is sent.
fn check_url_shape(url: &Template, c: &mut Collector<'_>) {
    let sample: String = url
        .parts()
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            crate::expr::TemplatePart::Text(t) => t.as_str(),
            crate::expr::TemplatePart::Expression(..) if i == 0 => "https://origin.invalid",
            crate::expr::TemplatePart::Expression(..) => "x",
        })
        .collect();
    match url::Url::parse(&sample) {
        Ok(parsed) if parsed.scheme() == "http" || parsed.scheme() == "https" => {
            if parsed.host_str().is_none_or(str::is_empty) {
                c.error("request.url", format!("`{}` has no host", url.source()));
            }
        }
        Ok(parsed) => c.error(
            "request.url",
            format!("scheme `{}` is not http or https", parsed.scheme()),
        ),
        Err(e) => c.error(
            "request.url",
            format!("`{}` is not a valid URL: {e}", url.source()),
        ),
    }
}

fn resolve_body(raw: &RawBody, c: &mut Collector<'_>) -> Option<BodySpec> {
    match raw.kind.as_str() {
        "json" | "raw" => {
            let Some(source) = &raw.template else {
                c.error(
                    "request.body.template",
                    format!("a `{}` body needs `template`", raw.kind),
                );
                return None;
            };
            let compiled = template(c, "request.body.template", source)?;
            if raw.kind == "json" {
                Some(BodySpec::Json(compiled))
            } else {
                Some(BodySpec::Raw {
                    content_type: raw
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
                    template: compiled,
                })
            }
        }
        "form" => {
            let mut fields = Vec::new();
            for (name, value) in &raw.fields {
                let key = format!("request.body.fields.{name}");
                if let Some(t) = template(c, &key, value) {
                    fields.push((name.clone(), t));
                }
            }
            Some(BodySpec::Form(fields))
        }
        other => {
            c.error(
                "request.body.kind",
                format!("body kind `{other}` is not one of json, form, raw"),
            );
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

fn resolve_auth(raw: &RawAuth, c: &mut Collector<'_>, sources: &Sources<'_>) -> Option<AuthSpec> {
    let secrets = sources.secrets;
    let mode = raw.mode.as_deref().unwrap_or(if raw.oauth2.is_some() {
        "oauth2"
    } else if raw.oauth1.is_some() {
        "oauth1"
    } else {
        "none"
    });
    match mode {
        "none" => Some(AuthSpec::None),
        "basic" => {
            let username = required(c, "auth.username", &raw.username, mode).map(str::to_string);
            let password = required(c, "auth.password", &raw.password, mode)
                .and_then(|p| secret(c, secrets, "auth.password", p));
            Some(AuthSpec::Basic {
                username: username?,
                password: password?,
            })
        }
        "bearer" => {
            let token = required(c, "auth.token", &raw.token, mode)
                .and_then(|t| secret(c, secrets, "auth.token", t));
            Some(AuthSpec::Bearer { token: token? })
        }
        "api_key_header" => {
            let header = required(c, "auth.header", &raw.header, mode).map(str::to_string);
            if let Some(h) = &header {
                if reqwest::header::HeaderName::from_bytes(h.as_bytes()).is_err() {
                    c.error("auth.header", format!("`{h}` is not a valid header name"));
                }
            }
            let key = required(c, "auth.key", &raw.key, mode)
                .and_then(|k| secret(c, secrets, "auth.key", k));
            Some(AuthSpec::ApiKeyHeader {
                header: header?,
                key: key?,
            })
        }
        "api_key_query" => {
            let parameter = required(c, "auth.parameter", &raw.parameter, mode).map(str::to_string);
            let key = required(c, "auth.key", &raw.key, mode)
                .and_then(|k| secret(c, secrets, "auth.key", k));
            Some(AuthSpec::ApiKeyQuery {
                parameter: parameter?,
                key: key?,
            })
        }
        "oauth2" => match &raw.oauth2 {
            Some(oauth2) => {
                resolve_oauth2(oauth2, c, sources).map(|spec| AuthSpec::OAuth2(Box::new(spec)))
            }
            None => {
                c.error(
                    "auth.oauth2",
                    "auth mode `oauth2` needs an `[auth.oauth2]` table",
                );
                None
            }
        },
        "oauth1" => match &raw.oauth1 {
            Some(oauth1) => {
                resolve_oauth1(oauth1, c, sources).map(|spec| AuthSpec::OAuth1(Box::new(spec)))
            }
            None => {
                c.error(
                    "auth.oauth1",
                    "auth mode `oauth1` needs an `[auth.oauth1]` table",
                );
                None
            }
        },
        other => {
            c.error(
                "auth.mode",
                format!("auth mode `{other}` is not one of none, basic, bearer, api_key_header, api_key_query, oauth2, oauth1"),
            );
            None
        }
    }
}

/// `api_origins`: each an http(s) origin, or an error at `key`.
fn origins(c: &mut Collector<'_>, key: &str, texts: &[String]) -> Vec<url::Origin> {
    let mut origins = Vec::new();
    for text in texts {
        match url::Url::parse(text) {
            Ok(u) if matches!(u.scheme(), "http" | "https") && u.host().is_some() => {
                origins.push(u.origin())
            }
            _ => c.error(
                key,
                format!("`{text}` is not an http(s) origin such as https://api.example.com"),
            ),
        }
    }
    origins
}

/// The grants a profile may use.
pub const GRANTS: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "device_code",
    "password",
    "implicit",
];

/// A URL key: `{{setting}}` names filled from the settings, then parsed as http(s).
fn endpoint_from(
    c: &mut Collector<'_>,
    key: &str,
    text: &str,
    values: &oauth::Values,
    setting_names: &[&str],
) -> Option<url::Url> {
    let filled = match oauth::TextTemplate::compile(text, setting_names) {
        Ok(template) => template.render(values),
        Err(message) => {
            c.error(key, message);
            return None;
        }
    };
    match url::Url::parse(&filled) {
        Ok(u) if (u.scheme() == "https" || u.scheme() == "http") && u.host().is_some() => Some(u),
        Ok(u) => {
            c.error(
                key,
                format!("`{filled}` is not an http(s) URL (scheme `{}`)", u.scheme()),
            );
            None
        }
        Err(e) => {
            c.error(key, format!("`{filled}` is not a valid URL: {e}"));
            None
        }
    }
}

fn optional_endpoint(
    c: &mut Collector<'_>,
    key: &str,
    value: &Option<String>,
    values: &oauth::Values,
    setting_names: &[&str],
) -> Option<Option<url::Url>> {
    match value.as_deref().map(str::trim) {
        Some(text) if !text.is_empty() => {
            endpoint_from(c, key, text, values, setting_names).map(Some)
        }
        _ => Some(None),
    }
}

fn field_path(
    c: &mut Collector<'_>,
    key: &str,
    value: &Option<String>,
) -> Option<Option<oauth::FieldPath>> {
    match value.as_deref() {
        Some(text) => match oauth::FieldPath::parse(text) {
            Ok(path) => Some(Some(path)),
            Err(message) => {
                c.error(key, message);
                None
            }
        },
        None => Some(None),
    }
}

fn token_shape(c: &mut Collector<'_>, raw: Option<&RawTokenResponse>) -> Option<oauth::TokenShape> {
    let mut shape = oauth::TokenShape::default();
    let Some(raw) = raw else {
        return Some(shape);
    };
    let key = |name: &str| format!("auth.oauth2.token_response.{name}");
    let mut ok = true;
    macro_rules! path {
        ($field:ident) => {
            match field_path(c, &key(stringify!($field)), &raw.$field) {
                Some(Some(path)) => shape.$field = path,
                Some(None) => {}
                None => ok = false,
            }
        };
    }
    path!(access_token);
    path!(refresh_token);
    path!(expires);
    path!(error);
    path!(error_description);
    if let Some(format) = raw.format.as_deref() {
        match oauth::ResponseFormat::parse(format) {
            Some(f) => shape.format = f,
            None => {
                c.error(
                    &key("format"),
                    format!("format `{format}` is not auto, json or form"),
                );
                ok = false;
            }
        }
    }
    match field_path(c, &key("fields"), &raw.fields) {
        Some(fields) => shape.fields = fields,
        None => ok = false,
    }
    match (
        field_path(c, &key("success_field"), &raw.success_field),
        &raw.success_value,
    ) {
        (Some(Some(path)), Some(value)) => shape.success = Some((path, value.clone())),
        (Some(Some(_)), None) => {
            c.error(&key("success_value"), "success_field needs success_value");
            ok = false;
        }
        (None, _) => ok = false,
        _ => {}
    }
    let issued = match field_path(c, &key("issued"), &raw.issued) {
        Some(issued) => issued,
        None => {
            ok = false;
            None
        }
    };
    shape.expiry = match raw.expiry.as_deref().unwrap_or(
        if raw.lifetime.is_some() && raw.expires.is_none() {
            "fixed"
        } else {
            "in_seconds"
        },
    ) {
        "in_seconds" => oauth::Expiry::InSeconds,
        "at_epoch_seconds" => oauth::Expiry::AtEpochSeconds,
        "at_epoch_milliseconds" => oauth::Expiry::AtEpochMilliseconds,
        "after_issued" => match issued {
            Some(issued) => oauth::Expiry::AfterIssued(issued),
            None => {
                c.error(
                    &key("issued"),
                    "expiry `after_issued` needs `issued`, the path of the issue time",
                );
                return None;
            }
        },
        "fixed" => match raw.lifetime {
            Some(seconds) => oauth::Expiry::Fixed(seconds),
            None => {
                c.error(
                    &key("lifetime"),
                    "expiry `fixed` needs `lifetime` in seconds",
                );
                return None;
            }
        },
        other => {
            c.error(
                &key("expiry"),
                format!("expiry `{other}` is not in_seconds, at_epoch_seconds, at_epoch_milliseconds, after_issued or fixed"),
            );
            return None;
        }
    };
    ok.then_some(shape)
}

fn body_format(c: &mut Collector<'_>, key: &str, value: Option<&str>) -> Option<oauth::BodyFormat> {
    match value.unwrap_or("form") {
        "form" => Some(oauth::BodyFormat::Form),
        "json" => Some(oauth::BodyFormat::Json),
        "query" => Some(oauth::BodyFormat::Query),
        other => {
            c.error(key, format!("`{other}` is not `form`, `json` or `query`"));
            None
        }
    }
}

fn device_options(
    c: &mut Collector<'_>,
    raw: Option<&RawDeviceFlow>,
) -> Option<oauth::DeviceOptions> {
    let mut options = oauth::DeviceOptions::default();
    let Some(raw) = raw else {
        return Some(options);
    };
    options.request_format = match raw
        .method
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("post") => oauth::BodyFormat::Form,
        Some("get") => oauth::BodyFormat::Get,
        Some(other) => {
            c.error(
                "auth.oauth2.device.method",
                format!("`{other}` is not `post` or `get`"),
            );
            return None;
        }
    };
    options.params = raw.params.clone().into_iter().collect();
    for (written, option) in [
        (&raw.user_code_field, &mut options.user_code_field),
        (&raw.device_code_field, &mut options.device_code_field),
        (&raw.grant_type, &mut options.grant_type),
        (&raw.device_code_param, &mut options.device_code_param),
    ] {
        if let Some(value) = written {
            *option = value.clone();
        }
    }
    if let Some(uri) = &raw.verification_uri {
        match url::Url::parse(uri) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {
                options.verification_uri = Some(uri.clone())
            }
            _ => {
                c.error(
                    "auth.oauth2.device.verification_uri",
                    format!("`{uri}` is not an http(s) address"),
                );
                return None;
            }
        }
    }
    options.expires_in_minutes = match raw.expires_in_unit.as_deref() {
        None | Some("seconds") => false,
        Some("minutes") => true,
        Some(other) => {
            c.error(
                "auth.oauth2.device.expires_in_unit",
                format!("`{other}` is not `seconds` or `minutes`"),
            );
            return None;
        }
    };
    Some(options)
}

fn templates(
    c: &mut Collector<'_>,
    key: &str,
    table: &BTreeMap<String, String>,
    setting_names: &[&str],
) -> Option<Vec<(String, oauth::TextTemplate)>> {
    let mut ok = true;
    let mut out = Vec::new();
    for (name, text) in table {
        match oauth::TextTemplate::compile(text, setting_names) {
            Ok(template) => out.push((name.clone(), template)),
            Err(message) => {
                c.error(&format!("{key}.{name}"), message);
                ok = false;
            }
        }
    }
    ok.then_some(out)
}

fn request_template(
    c: &mut Collector<'_>,
    key: &str,
    raw: &Option<RawTokenRequest>,
    setting_names: &[&str],
) -> Option<Option<oauth::RequestTemplate>> {
    let Some(raw) = raw else {
        return Some(None);
    };
    let url = match &raw.url {
        Some(text) => match oauth::TextTemplate::compile(text, setting_names) {
            Ok(template) => Some(Some(template)),
            Err(message) => {
                c.error(&format!("{key}.url"), message);
                None
            }
        },
        None => Some(None),
    };
    for name in raw.headers.keys() {
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.error(
                &format!("{key}.headers"),
                format!("`{name}` is not a header name"),
            );
        }
    }
    let headers = templates(c, &format!("{key}.headers"), &raw.headers, setting_names);
    let body = templates(c, &format!("{key}.body"), &raw.body, setting_names);
    let format = body_format(c, &format!("{key}.format"), raw.format.as_deref());
    Some(Some(oauth::RequestTemplate {
        url: url?,
        headers: headers?,
        body: body?,
        format: format?,
    }))
}

fn resolve_oauth2(
    raw: &RawOAuth2,
    c: &mut Collector<'_>,
    sources: &Sources<'_>,
) -> Option<OAuth2Spec> {
    let secrets = sources.secrets;
    // A named provider fills every key the profile leaves out.
    let preset = match raw.provider.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => {
            match sources.providers.get(id) {
                Some(definition) => Some(definition.clone()),
                None if raw.token_url.is_some() => {
                    c.warning(
                    "auth.oauth2.provider",
                    format!("`{id}` is not a known provider; the endpoints written here are used (known: {})", sources.providers.ids().join(", ")),
                );
                    None
                }
                None => {
                    c.error(
                    "auth.oauth2.provider",
                    format!("`{id}` is not a known provider (known: {}); or write its endpoints here", sources.providers.ids().join(", ")),
                );
                    return None;
                }
            }
        }
        _ => None,
    };
    if preset
        .as_ref()
        .is_some_and(|p| p.oauth_version == super::provider::OAuthVersion::V1)
    {
        c.error(
            "auth.oauth2.provider",
            "this provider speaks OAuth 1.0a: use `[auth.oauth1]`",
        );
        return None;
    }
    // A profile that writes its own token endpoint talks to another server than the preset's
    // (a test double, a proxy, a private deployment): it takes the preset's quirks but none of
    // its addresses, so no token or code is ever sent to the preset's hosts.
    let own_endpoints = raw.token_url.is_some();
    let written = raw.clone();
    let raw = match &preset {
        Some(definition) => {
            let mut base = definition.settings.clone();
            if own_endpoints {
                // Said at load: what the preset would have given and this file does not.
                let dropped: Vec<String> = [
                    (
                        "authorize_url",
                        base.authorize_url.take(),
                        &raw.authorize_url,
                    ),
                    ("refresh_url", base.refresh_url.take(), &raw.refresh_url),
                    (
                        "device_authorization_url",
                        base.device_authorization_url.take(),
                        &raw.device_authorization_url,
                    ),
                    (
                        "revocation_url",
                        base.revocation_url.take(),
                        &raw.revocation_url,
                    ),
                    (
                        "introspection_url",
                        base.introspection_url.take(),
                        &raw.introspection_url,
                    ),
                    ("userinfo_url", base.userinfo_url.take(), &raw.userinfo_url),
                    ("issuer", base.issuer.take(), &raw.issuer),
                ]
                .into_iter()
                .filter_map(
                    |(key, preset_value, written)| match (preset_value, written) {
                        (Some(value), None) => Some(format!("{key} ({value})")),
                        _ => None,
                    },
                )
                .collect();
                if !dropped.is_empty() {
                    c.warning(
                        "auth.oauth2.token_url",
                        format!(
                            "this profile writes its own token_url, so none of {}'s addresses is used: {} {} not set. Write the ones your server has in [auth.oauth2] (e.g. revocation_url = \"https://…\")",
                            definition.name,
                            dropped.join(", "),
                            if dropped.len() == 1 { "is" } else { "are" }
                        ),
                    );
                }
            }
            raw.clone().over(base)
        }
        None => raw.clone(),
    };
    let grant = match raw.grant.as_deref().unwrap_or_else(|| {
        preset
            .as_ref()
            .map_or("authorization_code", |p| p.default_grant())
    }) {
        "authorization_code" => Some(GrantType::AuthorizationCode),
        "client_credentials" => Some(GrantType::ClientCredentials),
        "device_code" => Some(GrantType::DeviceCode),
        "password" => Some(GrantType::Password),
        "implicit" => Some(GrantType::Implicit),
        other => {
            c.error(
                "auth.oauth2.grant",
                format!("grant `{other}` is not one of {}", GRANTS.join(", ")),
            );
            None
        }
    };
    if let (Some(grant), Some(definition)) = (grant, &preset) {
        if !definition.grants.iter().any(|g| g == grant.as_str()) {
            c.warning(
                "auth.oauth2.grant",
                format!(
                    "{} lists only {} as its grants; `{}` may be refused",
                    definition.name,
                    definition.grants.join(", "),
                    grant.as_str()
                ),
            );
        }
    }
    let client_id =
        required(c, "auth.oauth2.client_id", &raw.client_id, "oauth2").map(str::to_string);
    let client_secret = match raw.client_secret.as_deref() {
        Some(s) if !s.is_empty() => secret(c, secrets, "auth.oauth2.client_secret", s).map(Some),
        _ => Some(None),
    };
    let setting_names: Vec<&str> = raw.settings.keys().map(String::as_str).collect();
    let mut values = oauth::Values::default();
    for (name, value) in &raw.settings {
        values = values.with(name, value.clone());
    }
    if let Some(id) = &client_id {
        values = values.with("client_id", id.clone());
    }
    let browser = matches!(
        grant,
        Some(GrantType::AuthorizationCode | GrantType::Implicit)
    );
    let authorize_url = if browser {
        required(c, "auth.oauth2.authorize_url", &raw.authorize_url, "oauth2")
            .and_then(|text| {
                endpoint_from(
                    c,
                    "auth.oauth2.authorize_url",
                    text,
                    &values,
                    &setting_names,
                )
            })
            .map(Some)
    } else {
        optional_endpoint(
            c,
            "auth.oauth2.authorize_url",
            &raw.authorize_url,
            &values,
            &setting_names,
        )
    };
    let token_url = if grant == Some(GrantType::Implicit) && raw.token_url.is_none() {
        // The implicit grant has no token endpoint; the token comes in the redirect.
        authorize_url.clone().flatten()
    } else {
        required(c, "auth.oauth2.token_url", &raw.token_url, "oauth2").and_then(|text| {
            endpoint_from(c, "auth.oauth2.token_url", text, &values, &setting_names)
        })
    };
    let refresh_url = optional_endpoint(
        c,
        "auth.oauth2.refresh_url",
        &raw.refresh_url,
        &values,
        &setting_names,
    );
    let device_authorization_url = if grant == Some(GrantType::DeviceCode) {
        required(
            c,
            "auth.oauth2.device_authorization_url",
            &raw.device_authorization_url,
            "oauth2",
        )
        .and_then(|text| {
            endpoint_from(
                c,
                "auth.oauth2.device_authorization_url",
                text,
                &values,
                &setting_names,
            )
        })
        .map(Some)
    } else {
        optional_endpoint(
            c,
            "auth.oauth2.device_authorization_url",
            &raw.device_authorization_url,
            &values,
            &setting_names,
        )
    };
    let revocation_url = optional_endpoint(
        c,
        "auth.oauth2.revocation_url",
        &raw.revocation_url,
        &values,
        &setting_names,
    );
    let introspection_url = optional_endpoint(
        c,
        "auth.oauth2.introspection_url",
        &raw.introspection_url,
        &values,
        &setting_names,
    );
    let userinfo_url = optional_endpoint(
        c,
        "auth.oauth2.userinfo_url",
        &raw.userinfo_url,
        &values,
        &setting_names,
    );
    let issuer = optional_endpoint(
        c,
        "auth.oauth2.issuer",
        &raw.issuer,
        &values,
        &setting_names,
    )
    .map(|u| u.map(|u| u.as_str().trim_end_matches('/').to_string()));
    let redirect_url = match &raw.redirect_url {
        Some(text) if !text.trim().is_empty() => {
            endpoint_from(c, "auth.oauth2.redirect_url", text, &values, &setting_names).map(Some)
        }
        _ => Some(None),
    };
    let client_auth = match raw.client_auth.as_deref().unwrap_or("basic") {
        "basic" => Some(ClientAuth::Basic),
        "body" => Some(ClientAuth::Body),
        "none" => Some(ClientAuth::None),
        other => {
            c.error(
                "auth.oauth2.client_auth",
                format!("client_auth `{other}` is not `basic`, `body` or `none` (a public client)"),
            );
            None
        }
    };
    let legacy_callback = match raw.callback.as_deref().unwrap_or("standard") {
        "standard" => Some(false),
        "legacy" => Some(true),
        other => {
            c.error(
                "auth.oauth2.callback",
                format!("callback `{other}` is not `standard` (/oauth2/callback) or `legacy` (/oauth2_callback.html)"),
            );
            None
        }
    };
    let api_origins = origins(
        c,
        "auth.oauth2.api_origins",
        raw.api_origins.as_deref().unwrap_or_default(),
    );
    let header_template = raw
        .header_template
        .clone()
        .unwrap_or_else(|| "Bearer {AccessToken}".to_string());
    if !header_template.contains("{AccessToken}") {
        c.error(
            "auth.oauth2.header_template",
            "header_template must contain `{AccessToken}`",
        );
    }
    let token_header = raw
        .token_header
        .clone()
        .unwrap_or_else(|| "Authorization".into());
    if reqwest::header::HeaderName::from_bytes(token_header.as_bytes()).is_err() {
        c.error(
            "auth.oauth2.token_header",
            format!("`{token_header}` is not a header name"),
        );
    }
    let separator = raw.scope_separator.clone().unwrap_or_else(|| " ".into());
    let scopes = raw
        .scopes
        .as_deref()
        .unwrap_or_default()
        .split(|ch: char| ch.is_whitespace() || ch == ',')
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(&separator);
    let token_params = templates(
        c,
        "auth.oauth2.token_params",
        &raw.token_params,
        &setting_names,
    );
    let api_query =
        templates(c, "auth.oauth2.api_query", &raw.api_query, &setting_names).map(|list| {
            list.into_iter()
                .map(|(name, t)| (name, t.render(&values)))
                .collect::<Vec<_>>()
        });
    let format = body_format(c, "auth.oauth2.body_format", raw.body_format.as_deref());
    let exchange_template = request_template(
        c,
        "auth.oauth2.token_request",
        &raw.token_request,
        &setting_names,
    );
    let refresh_template = request_template(
        c,
        "auth.oauth2.refresh_request",
        &raw.refresh_request,
        &setting_names,
    );
    let shape = token_shape(c, raw.token_response.as_ref());
    let device = device_options(c, raw.device.as_ref());
    let userinfo_method = match raw
        .userinfo_method
        .as_deref()
        .map(str::to_ascii_uppercase)
        .as_deref()
    {
        None | Some("GET") => Some(false),
        Some("POST") => Some(true),
        Some(other) => {
            c.error(
                "auth.oauth2.userinfo_method",
                format!("`{other}` is not GET or POST"),
            );
            None
        }
    };
    let username = raw.username.clone();
    let password = match raw.password.as_deref() {
        Some(p) if !p.is_empty() => secret(c, secrets, "auth.oauth2.password", p).map(Some),
        _ => Some(None),
    };
    if grant == Some(GrantType::Password) && (username.is_none() || raw.password.is_none()) {
        c.error(
            "auth.oauth2.username",
            "the password grant needs `username` and `password`",
        );
    }
    let userinfo_url = userinfo_url?;
    let userinfo =
        (userinfo_url.is_some() || raw.userinfo_url_field.is_some()).then(|| UserInfoSpec {
            url: userinfo_url,
            url_field: raw.userinfo_url_field.clone(),
            post: userinfo_method.unwrap_or(false),
            display_name: raw.display_name_template.clone(),
            email: raw.email_template.clone(),
            id_field: raw.userinfo_id.clone(),
        });
    Some(OAuth2Spec {
        provider: preset
            .as_ref()
            .map(|p| p.id.clone())
            .or(raw.provider.clone()),
        grant: grant?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes,
        authorize_url: authorize_url?,
        token_url: token_url?,
        refresh_url: refresh_url?,
        device_authorization_url: device_authorization_url?,
        revocation_url: revocation_url?,
        introspection_url: introspection_url?,
        issuer: issuer?,
        redirect_url: redirect_url?,
        legacy_callback: legacy_callback?,
        api_origins,
        api_base: preset
            .as_ref()
            .filter(|_| !own_endpoints)
            .and_then(|p| p.api_base.clone()),
        api_host_field: raw.api_host_field.clone(),
        extra_authorize_params: raw.extra_authorize_params.clone(),
        token_params: token_params?,
        api_query: api_query?,
        client_auth: client_auth?,
        pkce: raw.pkce.unwrap_or(true),
        header_template,
        token_header,
        token_query: raw.token_query.clone(),
        reauthorize_on: raw.reauthorize_on.clone().unwrap_or_else(|| vec![401]),
        expired_when: raw.expired_when.as_deref().and_then(|source| {
            compile_element(
                c,
                "auth.oauth2.expired_when",
                source,
                &BoxElement {
                    text: source,
                    offset: 0,
                },
            )
            .flatten()
        }),
        body_format: format?,
        device: device?,
        exchange_template: exchange_template?,
        refresh_template: refresh_template?,
        settings: raw.settings.clone(),
        shape: shape?,
        code_param: raw.code_param.clone().unwrap_or_else(|| "code".into()),
        error_param: raw.error_param.clone().unwrap_or_else(|| "error".into()),
        userinfo,
        username,
        password: password?,
        inherited: if preset.is_some() {
            inherited_keys(&written, &raw)
        } else {
            Vec::new()
        },
    })
}

fn resolve_oauth1(
    raw: &RawOAuth1,
    c: &mut Collector<'_>,
    sources: &Sources<'_>,
) -> Option<OAuth1Spec> {
    let preset = match raw.provider.as_deref().map(str::trim) {
        Some(id) if !id.is_empty() => match sources
            .providers
            .get(id)
            .and_then(|p| p.oauth1.clone().map(|o| (p.id.clone(), o)))
        {
            Some(found) => Some(found),
            None => {
                c.error(
                    "auth.oauth1.provider",
                    format!("`{id}` is not a known OAuth 1.0a provider"),
                );
                return None;
            }
        },
        _ => None,
    };
    let own_endpoints = raw.request_token_url.is_some();
    let pick = |mine: &Option<String>, theirs: Option<&Option<String>>| {
        mine.clone()
            .or_else(|| theirs.filter(|_| !own_endpoints).cloned().flatten())
    };
    let definition = preset.as_ref().map(|(_, d)| d);
    let request_token_url = pick(
        &raw.request_token_url,
        definition.map(|d| &d.request_token_url),
    );
    let authorize_url = pick(&raw.authorize_url, definition.map(|d| &d.authorize_url));
    let access_token_url = pick(
        &raw.access_token_url,
        definition.map(|d| &d.access_token_url),
    );
    let method_text = raw
        .signature_method
        .clone()
        .or_else(|| definition.and_then(|d| d.signature_method.clone()))
        .unwrap_or_else(|| "HMAC-SHA1".into());
    let values = oauth::Values::default();
    let url_of = |c: &mut Collector<'_>, key: &str, value: &Option<String>| {
        required(c, key, value, "oauth1").and_then(|text| endpoint_from(c, key, text, &values, &[]))
    };
    let request_token_url = url_of(c, "auth.oauth1.request_token_url", &request_token_url);
    let authorize_url = url_of(c, "auth.oauth1.authorize_url", &authorize_url);
    let access_token_url = url_of(c, "auth.oauth1.access_token_url", &access_token_url);
    let redirect_url = optional_endpoint(
        c,
        "auth.oauth1.redirect_url",
        &raw.redirect_url,
        &values,
        &[],
    );
    let signature_method = match oauth::one::SignatureMethod::parse(&method_text) {
        Some(method) => Some(method),
        None => {
            c.error(
                "auth.oauth1.signature_method",
                format!("`{method_text}` is not HMAC-SHA1, HMAC-SHA256, RSA-SHA1 or PLAINTEXT"),
            );
            None
        }
    };
    let consumer_key =
        required(c, "auth.oauth1.consumer_key", &raw.consumer_key, "oauth1").map(str::to_string);
    let consumer_secret = match raw.consumer_secret.as_deref() {
        Some(s) if !s.is_empty() => {
            secret(c, sources.secrets, "auth.oauth1.consumer_secret", s).map(Some)
        }
        _ => Some(None),
    };
    let rsa_key = match raw.rsa_private_key.as_deref() {
        Some(s) if !s.is_empty() => {
            secret(c, sources.secrets, "auth.oauth1.rsa_private_key", s).map(Some)
        }
        _ => Some(None),
    };
    match (signature_method, &rsa_key, &consumer_secret) {
        (Some(oauth::one::SignatureMethod::RsaSha1), Some(None), _) => c.error(
            "auth.oauth1.rsa_private_key",
            "RSA-SHA1 needs `rsa_private_key` (PEM, usually `${secret:…}`)",
        ),
        (Some(method), _, Some(None)) if method != oauth::one::SignatureMethod::RsaSha1 => c.error(
            "auth.oauth1.consumer_secret",
            format!("{} needs `consumer_secret`", method.as_str()),
        ),
        _ => {}
    }
    let api_origins = origins(c, "auth.oauth1.api_origins", &raw.api_origins);
    Some(OAuth1Spec {
        provider: preset.map(|(id, _)| id),
        consumer_key: consumer_key?,
        consumer_secret: consumer_secret?,
        rsa_key: rsa_key?,
        signature_method: signature_method?,
        request_token_url: request_token_url?,
        authorize_url: authorize_url?,
        access_token_url: access_token_url?,
        realm: raw.realm.clone(),
        redirect_url: redirect_url?,
        api_origins,
    })
}

/// The form's keys a provider filled in (absent from the file, present after the merge).
fn inherited_keys(written: &RawOAuth2, merged: &RawOAuth2) -> Vec<&'static str> {
    let mut keys = Vec::new();
    macro_rules! inherited {
        ($($field:ident),*) => {
            $(if written.$field.is_none() && merged.$field.is_some() {
                keys.push(stringify!($field));
            })*
        };
    }
    inherited!(
        client_id,
        scopes,
        authorize_url,
        token_url,
        device_authorization_url,
        issuer,
        revocation_url,
        introspection_url,
        client_auth,
        pkce,
        header_template
    );
    if written.extra_authorize_params.is_empty() && !merged.extra_authorize_params.is_empty() {
        keys.push("extra_authorize_params");
    }
    // Without a grant written, the provider's default grant applies.
    if written.grant.is_none() {
        keys.push("grant");
    }
    keys
}

/// One element of a device box: its text and byte offset inside the box.
#[derive(Debug, Clone, PartialEq)]
pub struct BoxElement<'a> {
    pub text: &'a str,
    pub offset: usize,
}

/// Splits a box on `&&&` (roots), then `&&` (features), never inside a text literal.
pub fn split_box(source: &str) -> Vec<Vec<BoxElement<'_>>> {
    let literals = literal_ranges(source);
    let inside = |i: usize| inside_ranges(&literals, i);
    let separators = |from: usize, to: usize, token: &str| -> Vec<usize> {
        let mut found = Vec::new();
        let mut i = from;
        while let Some(p) = source[i..to].find(token) {
            let at = i + p;
            if inside(at) {
                i = at + 1;
                continue;
            }
            // `&&&` must not be read as `&&` followed by `&`.
            if token == "&&" && source[at..].starts_with("&&&") {
                i = at + 3;
                continue;
            }
            found.push(at);
            i = at + token.len();
        }
        found
    };
    let mut groups = Vec::new();
    let mut start = 0;
    let mut root_cuts = separators(0, source.len(), "&&&");
    root_cuts.push(source.len());
    for cut in root_cuts {
        let mut elements = Vec::new();
        let mut element_start = start;
        let mut feature_cuts = separators(start, cut, "&&");
        feature_cuts.push(cut);
        for feature_cut in feature_cuts {
            elements.push(BoxElement {
                text: &source[element_start..feature_cut],
                offset: element_start,
            });
            element_start = (feature_cut + 2).min(cut);
        }
        groups.push(elements);
        start = (cut + 3).min(source.len());
    }
    groups
}

fn compile_element(
    c: &mut Collector<'_>,
    key: &str,
    source: &str,
    element: &BoxElement<'_>,
) -> Option<Option<Expression>> {
    let trimmed = element.text.trim_start();
    if trimmed.trim().is_empty() {
        return Some(None);
    }
    let offset = element.offset + (element.text.len() - trimmed.len());
    match Expression::compile(trimmed.trim_end()) {
        Ok(expression) => {
            for warning in expression.warnings() {
                let column = column_at(source, offset + warning.span.start);
                let line = line_of_key(c.text, key);
                c.diagnostics.push(
                    Diagnostic::warning(c.file, key, warning.message.clone())
                        .at_line(line)
                        .at_column(column),
                );
            }
            Some(Some(expression))
        }
        Err(errors) => {
            c.compile_errors(key, source, offset, errors);
            None
        }
    }
}

fn compile_required(
    c: &mut Collector<'_>,
    key: &str,
    source: &str,
    element: &BoxElement<'_>,
    what: &str,
) -> Option<Expression> {
    match compile_element(c, key, source, element)? {
        Some(e) => Some(e),
        None => {
            c.error(key, format!("{what} is empty"));
            None
        }
    }
}

fn resolve_mapping(raw: &RawProfile, c: &mut Collector<'_>) -> DeviceMapping {
    let devices: &RawDevices = &raw.devices;
    let affect = devices.affect.as_deref().and_then(|source| {
        compile_element(
            c,
            "devices.affect",
            source,
            &BoxElement {
                text: source,
                offset: 0,
            },
        )
        .flatten()
    });
    let uses_boxes = devices.root_names.is_some()
        || devices.feature_names.is_some()
        || devices.values.is_some()
        || devices.strings.is_some();
    if uses_boxes && !raw.device.is_empty() {
        c.error(
            "device",
            "use either the boxes in `[devices]` or `[[device]]` tables, not both",
        );
    }
    let roots = if uses_boxes {
        resolve_boxes(devices, c)
    } else {
        resolve_list(raw, c)
    };
    for (name, unit) in &devices.units {
        if unit.is_empty() || unit.chars().count() > 32 || unit.chars().any(char::is_control) {
            c.error(
                &format!("devices.units.{name}"),
                "a unit is 1 to 32 printable characters, such as °C or kWh",
            );
        }
    }
    for (name, class) in &devices.device_classes {
        if class.is_empty()
            || class.len() > 40
            || !class.chars().all(|ch| ch.is_ascii_lowercase() || ch == '_')
        {
            c.error(
                &format!("devices.device_classes.{name}"),
                "a device class is a Home Assistant class name such as temperature or power",
            );
        }
    }
    let settable = devices
        .settable
        .iter()
        .filter_map(|(name, raw)| {
            resolve_settable(raw, &format!("devices.settable.{name}"), c).map(|s| (name.clone(), s))
        })
        .collect();
    DeviceMapping {
        locked: devices.locked,
        affect,
        roots,
        from_list: !raw.device.is_empty(),
        units: devices.units.clone(),
        device_classes: devices.device_classes.clone(),
        settable,
    }
}

/// Longest `pattern` of a settable text, in bytes.
const MAX_SETTABLE_PATTERN_BYTES: usize = 255;

/// One `[devices.settable]` entry, checked against what Home Assistant accepts (so a config is
/// never refused there): a number's `min < max` and `step ≥ 0.001`, a text's `max ≤ 255` and a
/// pattern that compiles.
fn resolve_settable(
    raw: &super::raw::RawSettable,
    key: &str,
    c: &mut Collector<'_>,
) -> Option<super::Settable> {
    let finite = |c: &mut Collector<'_>, field: &str, value: Option<f64>, default: f64| match value
    {
        Some(v) if !v.is_finite() => {
            c.error(&format!("{key}.{field}"), "must be a finite number");
            None
        }
        Some(v) => Some(v),
        None => Some(default),
    };
    match raw.kind.as_deref().unwrap_or("number") {
        "number" => {
            if raw.pattern.is_some() {
                c.error(
                    &format!("{key}.pattern"),
                    "`pattern` is for `kind = \"text\"`",
                );
            }
            let min = finite(c, "min", raw.min, 0.0)?;
            let max = finite(c, "max", raw.max, 100.0)?;
            let step = finite(c, "step", raw.step, 1.0)?;
            if min >= max {
                c.error(
                    &format!("{key}.max"),
                    format!("`max` ({max}) must be above `min` ({min})"),
                );
                return None;
            }
            if step < 0.001 {
                c.error(&format!("{key}.step"), "`step` is at least 0.001");
                return None;
            }
            let mode = match raw.mode.as_deref().unwrap_or("auto") {
                "auto" => "auto",
                "box" => "box",
                "slider" => "slider",
                other => {
                    c.error(
                        &format!("{key}.mode"),
                        format!("unknown mode `{other}`: auto, box or slider"),
                    );
                    return None;
                }
            };
            Some(super::Settable::Number {
                min,
                max,
                step,
                mode,
            })
        }
        "text" => {
            if raw.min.is_some() || raw.step.is_some() || raw.mode.is_some() {
                c.error(
                    key,
                    "a settable text takes `max` (characters) and `pattern` only",
                );
                return None;
            }
            let max = match raw.max {
                None => 255,
                Some(max) if max.fract() == 0.0 && (1.0..=255.0).contains(&max) => max as u16,
                Some(_) => {
                    c.error(
                        &format!("{key}.max"),
                        "a text's `max` is a whole number of characters from 1 to 255",
                    );
                    return None;
                }
            };
            if let Some(pattern) = &raw.pattern {
                let compiled = (pattern.len() <= MAX_SETTABLE_PATTERN_BYTES).then(|| {
                    regex::RegexBuilder::new(pattern)
                        .size_limit(1 << 20)
                        .build()
                });
                match compiled {
                    Some(Ok(_)) => {}
                    Some(Err(error)) => {
                        c.error(
                            &format!("{key}.pattern"),
                            format!("not a valid pattern: {error}"),
                        );
                        return None;
                    }
                    None => {
                        c.error(
                            &format!("{key}.pattern"),
                            format!("a pattern is at most {MAX_SETTABLE_PATTERN_BYTES} bytes"),
                        );
                        return None;
                    }
                }
            }
            Some(super::Settable::Text {
                max,
                pattern: raw.pattern.clone(),
            })
        }
        other => {
            c.error(
                &format!("{key}.kind"),
                format!("unknown kind `{other}`: number or text"),
            );
            None
        }
    }
}

fn resolve_boxes(devices: &RawDevices, c: &mut Collector<'_>) -> Vec<DeviceRule> {
    let Some(root_source) = devices.root_names.as_deref() else {
        c.error("devices.root_names", "the device boxes need `root_names`");
        return Vec::new();
    };
    let root_groups = split_box(root_source);
    let mut roots = Vec::new();
    for group in &root_groups {
        if group.len() > 1 {
            c.error(
                "devices.root_names",
                "`&&` separates features: put feature names in `feature_names`",
            );
            return Vec::new();
        }
        if let Some(name) = compile_required(
            c,
            "devices.root_names",
            root_source,
            &group[0],
            "a root device name",
        ) {
            roots.push(DeviceRule {
                name,
                value: None,
                string: None,
                features: Vec::new(),
            });
        }
    }
    if roots.len() != root_groups.len() {
        return Vec::new();
    }
    let shape_of = |groups: &[Vec<BoxElement<'_>>]| groups.iter().map(Vec::len).collect::<Vec<_>>();
    let feature_groups = devices
        .feature_names
        .as_deref()
        .filter(|s| !s.trim().is_empty())
        .map(split_box);
    let expected_shape = match &feature_groups {
        Some(groups) => shape_of(groups),
        None => vec![1; roots.len()],
    };
    if expected_shape.len() != roots.len() {
        c.error(
            "devices.feature_names",
            format!(
                "feature_names has {} group(s) separated by `&&&` but root_names names {} root(s)",
                expected_shape.len(),
                roots.len()
            ),
        );
        return Vec::new();
    }
    let mut per_box = |key: &str, source: Option<&str>| -> Option<Vec<Vec<Option<Expression>>>> {
        let Some(source) = source.filter(|s| !s.trim().is_empty()) else {
            return Some(expected_shape.iter().map(|n| vec![None; *n]).collect());
        };
        let groups = split_box(source);
        if shape_of(&groups) != expected_shape {
            c.error(
                key,
                format!(
                    "`{}` must line up with {}: {} element(s) per `&&&` group, found {:?}",
                    key.trim_start_matches("devices."),
                    if feature_groups.is_some() {
                        "feature_names"
                    } else {
                        "root_names"
                    },
                    format_shape(&expected_shape),
                    shape_of(&groups)
                ),
            );
            return None;
        }
        let mut compiled = Vec::new();
        let mut ok = true;
        for group in &groups {
            let mut row = Vec::new();
            for element in group {
                match compile_element(c, key, source, element) {
                    Some(e) => row.push(e),
                    None => ok = false,
                }
            }
            compiled.push(row);
        }
        ok.then_some(compiled)
    };
    let values = per_box("devices.values", devices.values.as_deref());
    let strings = per_box("devices.strings", devices.strings.as_deref());
    let (Some(values), Some(strings)) = (values, strings) else {
        return Vec::new();
    };
    match (&feature_groups, devices.feature_names.as_deref()) {
        (Some(groups), Some(source)) => {
            for (position, root) in roots.iter_mut().enumerate() {
                for (element_position, element) in groups[position].iter().enumerate() {
                    if let Some(name) = compile_required(
                        c,
                        "devices.feature_names",
                        source,
                        element,
                        "a feature name",
                    ) {
                        root.features.push(DeviceRule {
                            name,
                            value: values[position][element_position].clone(),
                            string: strings[position][element_position].clone(),
                            features: Vec::new(),
                        });
                    }
                }
            }
        }
        _ => {
            for (position, root) in roots.iter_mut().enumerate() {
                root.value = values[position][0].clone();
                root.string = strings[position][0].clone();
            }
        }
    }
    roots
}

fn format_shape(shape: &[usize]) -> String {
    format!("{shape:?}")
}

fn resolve_list(raw: &RawProfile, c: &mut Collector<'_>) -> Vec<DeviceRule> {
    let mut roots = Vec::new();
    for (position, device) in raw.device.iter().enumerate() {
        let key = |field: &str| format!("device[{position}].{field}");
        let rule = |c: &mut Collector<'_>,
                    key: &dyn Fn(&str) -> String,
                    name: &str,
                    value: &Option<String>,
                    string: &Option<String>| {
            let compile = |c: &mut Collector<'_>, field: &str, source: &str| {
                compile_element(
                    c,
                    &key(field),
                    source,
                    &BoxElement {
                        text: source,
                        offset: 0,
                    },
                )
            };
            let name = compile(c, "name", name);
            let value = value.as_deref().map(|s| compile(c, "value", s));
            let string = string.as_deref().map(|s| compile(c, "string", s));
            match (name, value, string) {
                (Some(Some(name)), value, string)
                    if value.as_ref().is_none_or(Option::is_some)
                        && string.as_ref().is_none_or(Option::is_some) =>
                {
                    Some(DeviceRule {
                        name,
                        value: value.flatten().flatten(),
                        string: string.flatten().flatten(),
                        features: Vec::new(),
                    })
                }
                (Some(None), ..) => {
                    c.error(&key("name"), "a device name is empty");
                    None
                }
                _ => None,
            }
        };
        let Some(mut root) = rule(c, &key, &device.name, &device.value, &device.string) else {
            continue;
        };
        for (feature_position, feature) in device.feature.iter().enumerate() {
            let feature_key =
                |field: &str| format!("device[{position}].feature[{feature_position}].{field}");
            if let Some(f) = rule(
                c,
                &feature_key,
                &feature.name,
                &feature.value,
                &feature.string,
            ) {
                root.features.push(f);
            }
        }
        roots.push(root);
    }
    roots
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(source: &str) -> Vec<Vec<&str>> {
        split_box(source)
            .into_iter()
            .map(|g| g.into_iter().map(|e| e.text.trim()).collect())
            .collect()
    }

    #[test]
    fn boxes_split_roots_then_features_outside_literals() {
        assert_eq!(texts("a && b &&& c"), vec![vec!["a", "b"], vec!["c"]]);
        assert_eq!(
            texts(r#""x&&&y" &&& "p&&q""#),
            vec![vec![r#""x&&&y""#], vec![r#""p&&q""#]]
        );
        assert_eq!(texts("a"), vec![vec!["a"]]);
        assert_eq!(texts("a &&&  && b"), vec![vec!["a"], vec!["", "b"]]);
    }

    #[test]
    fn element_offsets_point_into_the_box() {
        let groups = split_box("a &&& bc && d");
        assert_eq!(groups[1][0].offset, 5);
        assert_eq!(groups[1][1].offset, 11);
    }
}
