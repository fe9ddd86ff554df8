//! Resolving `[auth.oauth2]`: a provider's definition merged under the file's, the grant, endpoints, client authentication, token placement, the answer's shape, request templates, the device flow's variant and the identity templates.

use super::*;
use crate::profile::ProviderDefinition;
use std::sync::Arc;

/// The grants a profile may use.
pub const GRANTS: &[&str] = &[
    "authorization_code",
    "client_credentials",
    "device_code",
    "password",
    "implicit",
];

/// A URL key: `{{setting}}` names filled from the settings, then parsed as http(s).
pub(super) fn endpoint_from(
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

pub(super) fn optional_endpoint(
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

pub(super) fn field_path(
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

pub(super) fn token_shape(
    c: &mut Collector<'_>,
    raw: Option<&RawTokenResponse>,
) -> Option<oauth::TokenShape> {
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

pub(super) fn body_format(
    c: &mut Collector<'_>,
    key: &str,
    value: Option<&str>,
) -> Option<oauth::BodyFormat> {
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

pub(super) fn device_options(
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

pub(super) fn templates(
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

pub(super) fn request_template(
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

pub(super) fn resolve_oauth2(
    written: &RawOAuth2,
    c: &mut Collector<'_>,
    sources: &Sources<'_>,
) -> Option<OAuth2Spec> {
    let Merged {
        raw,
        preset,
        own_endpoints,
    } = merge_preset(written, c, sources)?;
    let grant = grant(&raw, preset.as_ref(), c);
    let client_id =
        required(c, "auth.oauth2.client_id", &raw.client_id, "oauth2").map(str::to_string);
    let client_secret = optional_secret(
        c,
        sources.secrets,
        "auth.oauth2.client_secret",
        &raw.client_secret,
    );
    let mut values = oauth::Values::default();
    for (name, value) in &raw.settings {
        values = values.with(name, value.clone());
    }
    if let Some(id) = &client_id {
        values = values.with("client_id", id.clone());
    }
    let endpoints = endpoints(&raw, grant, c, &values);
    let client_auth = choice(
        c,
        "auth.oauth2.client_auth",
        raw.client_auth.as_deref().unwrap_or("basic"),
        &[
            ("basic", ClientAuth::Basic),
            ("body", ClientAuth::Body),
            ("none", ClientAuth::None),
        ],
        |other| format!("client_auth `{other}` is not `basic`, `body` or `none` (a public client)"),
    );
    let legacy_callback = choice(
        c,
        "auth.oauth2.callback",
        raw.callback.as_deref().unwrap_or("standard"),
        &[("standard", false), ("legacy", true)],
        |other| {
            format!("callback `{other}` is not `standard` (/oauth2/callback) or `legacy` (/oauth2_callback.html)")
        },
    );
    let placement = token_placement(&raw, c, &values);
    let exchange = exchange(&raw, c);
    let userinfo = identity(&raw, c, endpoints.userinfo);
    let password = optional_secret(c, sources.secrets, "auth.oauth2.password", &raw.password);
    if grant == Some(GrantType::Password) && (raw.username.is_none() || raw.password.is_none()) {
        c.error(
            "auth.oauth2.username",
            "the password grant needs `username` and `password`",
        );
    }
    Some(OAuth2Spec {
        provider: preset
            .as_ref()
            .map(|p| p.id.clone())
            .or(raw.provider.clone()),
        grant: grant?,
        client_id: client_id?,
        client_secret: client_secret?,
        scopes: placement.scopes,
        authorize_url: endpoints.authorize?,
        token_url: endpoints.token?,
        refresh_url: endpoints.refresh?,
        device_authorization_url: endpoints.device_authorization?,
        revocation_url: endpoints.revocation?,
        introspection_url: endpoints.introspection?,
        issuer: endpoints.issuer?,
        redirect_url: endpoints.redirect?,
        legacy_callback: legacy_callback?,
        api_origins: placement.api_origins,
        api_base: preset
            .as_ref()
            .filter(|_| !own_endpoints)
            .and_then(|p| p.api_base.clone()),
        api_host_field: raw.api_host_field.clone(),
        extra_authorize_params: raw.extra_authorize_params.clone(),
        token_params: exchange.token_params?,
        api_query: placement.api_query?,
        client_auth: client_auth?,
        pkce: raw.pkce.unwrap_or(true),
        header_template: placement.header_template,
        token_header: placement.token_header,
        token_query: raw.token_query.clone(),
        reauthorize_on: raw.reauthorize_on.clone().unwrap_or_else(|| vec![401]),
        expired_when: exchange.expired_when,
        body_format: exchange.body_format?,
        device: exchange.device?,
        exchange_template: exchange.exchange_template?,
        refresh_template: exchange.refresh_template?,
        settings: raw.settings.clone(),
        shape: exchange.shape?,
        code_param: raw.code_param.clone().unwrap_or_else(|| "code".into()),
        error_param: raw.error_param.clone().unwrap_or_else(|| "error".into()),
        userinfo: userinfo?,
        username: raw.username.clone(),
        password: password?,
        inherited: if preset.is_some() {
            inherited_keys(written, &raw)
        } else {
            Vec::new()
        },
    })
}

/// The file's settings with its provider's definition under them.
struct Merged {
    raw: RawOAuth2,
    preset: Option<Arc<ProviderDefinition>>,
    /// The file writes its own token endpoint: it takes none of the preset's addresses.
    own_endpoints: bool,
}

/// Stage 1: a named provider fills every key the profile leaves out. A profile that writes its
/// own token endpoint talks to another server than the preset's (a test double, a proxy, a
/// private deployment): it takes the preset's quirks but none of its addresses, so no token or
/// code is ever sent to the preset's hosts.
fn merge_preset(raw: &RawOAuth2, c: &mut Collector<'_>, sources: &Sources<'_>) -> Option<Merged> {
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
        .is_some_and(|p| p.oauth_version == crate::profile::provider::OAuthVersion::V1)
    {
        c.error(
            "auth.oauth2.provider",
            "this provider speaks OAuth 1.0a: use `[auth.oauth1]`",
        );
        return None;
    }
    let own_endpoints = raw.token_url.is_some();
    let merged = match &preset {
        Some(definition) => {
            let mut base = definition.settings.clone();
            if own_endpoints {
                warn_dropped_addresses(raw, &mut base, &definition.name, c);
            }
            raw.clone().over(base)
        }
        None => raw.clone(),
    };
    Some(Merged {
        raw: merged,
        preset,
        own_endpoints,
    })
}

/// Takes the preset's addresses out of `base`, and says at load which of them this file does
/// not write.
fn warn_dropped_addresses(
    raw: &RawOAuth2,
    base: &mut RawOAuth2,
    provider_name: &str,
    c: &mut Collector<'_>,
) {
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
                provider_name,
                dropped.join(", "),
                if dropped.len() == 1 { "is" } else { "are" }
            ),
        );
    }
}

/// Stage 2: the grant, the preset's default when the file names none; a grant the preset does
/// not list is a warning (providers add grants before they document them).
fn grant(
    raw: &RawOAuth2,
    preset: Option<&Arc<ProviderDefinition>>,
    c: &mut Collector<'_>,
) -> Option<GrantType> {
    let name = raw
        .grant
        .as_deref()
        .unwrap_or_else(|| preset.map_or("authorization_code", |p| p.default_grant()));
    let grant = match name {
        "authorization_code" => GrantType::AuthorizationCode,
        "client_credentials" => GrantType::ClientCredentials,
        "device_code" => GrantType::DeviceCode,
        "password" => GrantType::Password,
        "implicit" => GrantType::Implicit,
        other => {
            c.error(
                "auth.oauth2.grant",
                format!("grant `{other}` is not one of {}", GRANTS.join(", ")),
            );
            return None;
        }
    };
    if let Some(definition) = preset {
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
    Some(grant)
}

/// The endpoints, each `None` when it has a problem (said in the collector), `Some(None)` when
/// the file leaves it out.
struct Endpoints {
    authorize: Option<Option<url::Url>>,
    token: Option<url::Url>,
    refresh: Option<Option<url::Url>>,
    device_authorization: Option<Option<url::Url>>,
    revocation: Option<Option<url::Url>>,
    introspection: Option<Option<url::Url>>,
    userinfo: Option<Option<url::Url>>,
    issuer: Option<Option<String>>,
    redirect: Option<Option<url::Url>>,
}

/// Stage 3: every endpoint, required where the grant needs it.
fn endpoints(
    raw: &RawOAuth2,
    grant: Option<GrantType>,
    c: &mut Collector<'_>,
    values: &oauth::Values,
) -> Endpoints {
    let setting_names: Vec<&str> = raw.settings.keys().map(String::as_str).collect();
    let names = &setting_names;
    let needed = |c: &mut Collector<'_>, key: &str, value: &Option<String>, needed: bool| {
        if needed {
            required(c, key, value, "oauth2")
                .and_then(|text| endpoint_from(c, key, text, values, names))
                .map(Some)
        } else {
            optional_endpoint(c, key, value, values, names)
        }
    };
    let browser = matches!(
        grant,
        Some(GrantType::AuthorizationCode | GrantType::Implicit)
    );
    let authorize = needed(c, "auth.oauth2.authorize_url", &raw.authorize_url, browser);
    let token = if grant == Some(GrantType::Implicit) && raw.token_url.is_none() {
        // The implicit grant has no token endpoint; the token comes in the redirect.
        authorize.clone().flatten()
    } else {
        needed(c, "auth.oauth2.token_url", &raw.token_url, true).flatten()
    };
    let refresh = needed(c, "auth.oauth2.refresh_url", &raw.refresh_url, false);
    let device_authorization = needed(
        c,
        "auth.oauth2.device_authorization_url",
        &raw.device_authorization_url,
        grant == Some(GrantType::DeviceCode),
    );
    let revocation = needed(c, "auth.oauth2.revocation_url", &raw.revocation_url, false);
    let introspection = needed(
        c,
        "auth.oauth2.introspection_url",
        &raw.introspection_url,
        false,
    );
    let userinfo = needed(c, "auth.oauth2.userinfo_url", &raw.userinfo_url, false);
    let issuer = needed(c, "auth.oauth2.issuer", &raw.issuer, false)
        .map(|u| u.map(|u| u.as_str().trim_end_matches('/').to_string()));
    let redirect = match &raw.redirect_url {
        Some(text) if !text.trim().is_empty() => {
            endpoint_from(c, "auth.oauth2.redirect_url", text, values, names).map(Some)
        }
        _ => Some(None),
    };
    Endpoints {
        authorize,
        token,
        refresh,
        device_authorization,
        revocation,
        introspection,
        userinfo,
        issuer,
        redirect,
    }
}

/// Where the token goes on API calls, and what else the calls carry.
struct Placement {
    api_origins: Vec<url::Origin>,
    header_template: String,
    token_header: String,
    scopes: String,
    api_query: Option<Vec<(String, String)>>,
}

/// Stage 4: token placement (header, its template, extra query parameters), the origins the
/// token may go to, and the scopes as sent.
fn token_placement(raw: &RawOAuth2, c: &mut Collector<'_>, values: &oauth::Values) -> Placement {
    let setting_names: Vec<&str> = raw.settings.keys().map(String::as_str).collect();
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
    let api_query =
        templates(c, "auth.oauth2.api_query", &raw.api_query, &setting_names).map(|list| {
            list.into_iter()
                .map(|(name, t)| (name, t.render(values)))
                .collect::<Vec<_>>()
        });
    Placement {
        api_origins,
        header_template,
        token_header,
        scopes,
        api_query,
    }
}

/// How the token endpoint is spoken to and read.
struct Exchange {
    token_params: Option<Vec<(String, oauth::TextTemplate)>>,
    body_format: Option<oauth::BodyFormat>,
    exchange_template: Option<Option<oauth::RequestTemplate>>,
    refresh_template: Option<Option<oauth::RequestTemplate>>,
    shape: Option<oauth::TokenShape>,
    device: Option<oauth::DeviceOptions>,
    expired_when: Option<crate::expr::Expression>,
}

/// Stage 5: the token endpoint's dialect: extra parameters, body format, request templates,
/// the answer's shape, the device flow's variant and when an answer means "expired".
fn exchange(raw: &RawOAuth2, c: &mut Collector<'_>) -> Exchange {
    let setting_names: Vec<&str> = raw.settings.keys().map(String::as_str).collect();
    let token_params = templates(
        c,
        "auth.oauth2.token_params",
        &raw.token_params,
        &setting_names,
    );
    let body_format = body_format(c, "auth.oauth2.body_format", raw.body_format.as_deref());
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
    let expired_when = raw.expired_when.as_deref().and_then(|source| {
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
    });
    Exchange {
        token_params,
        body_format,
        exchange_template,
        refresh_template,
        shape,
        device,
        expired_when,
    }
}

/// Stage 6: who the user is: the userinfo endpoint (or the token answer's field naming it), its
/// method and the templates of the account's name, e-mail and id.
fn identity(
    raw: &RawOAuth2,
    c: &mut Collector<'_>,
    userinfo_url: Option<Option<url::Url>>,
) -> Option<Option<UserInfoSpec>> {
    let post = choice(
        c,
        "auth.oauth2.userinfo_method",
        &raw.userinfo_method
            .as_deref()
            .unwrap_or("GET")
            .to_ascii_uppercase(),
        &[("GET", false), ("POST", true)],
        |other| format!("`{other}` is not GET or POST"),
    );
    let url = userinfo_url?;
    Some(
        (url.is_some() || raw.userinfo_url_field.is_some()).then(|| UserInfoSpec {
            url,
            url_field: raw.userinfo_url_field.clone(),
            post: post.unwrap_or(false),
            display_name: raw.display_name_template.clone(),
            email: raw.email_template.clone(),
            id_field: raw.userinfo_id.clone(),
        }),
    )
}

/// A secret key that may be left out or empty.
fn optional_secret(
    c: &mut Collector<'_>,
    secrets: &SecretSource,
    key: &str,
    value: &Option<String>,
) -> Option<Option<Secret>> {
    match value.as_deref() {
        Some(s) if !s.is_empty() => secret(c, secrets, key, s).map(Some),
        _ => Some(None),
    }
}

/// One of a key's named choices; anything else is an error naming the text and `expected`.
fn choice<T: Copy>(
    c: &mut Collector<'_>,
    key: &str,
    text: &str,
    choices: &[(&str, T)],
    refusal: impl FnOnce(&str) -> String,
) -> Option<T> {
    let found = choices
        .iter()
        .find(|(name, _)| *name == text)
        .map(|(_, v)| *v);
    if found.is_none() {
        c.error(key, refusal(text));
    }
    found
}

pub(super) fn inherited_keys(written: &RawOAuth2, merged: &RawOAuth2) -> Vec<&'static str> {
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
