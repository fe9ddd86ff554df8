//! Resolving `[auth.oauth2]`: a provider's definition merged under the file's, the grant, endpoints, client authentication, token placement, the answer's shape, request templates, the device flow's variant and the identity templates.

use super::*;

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
        .is_some_and(|p| p.oauth_version == crate::profile::provider::OAuthVersion::V1)
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

/// The form's keys a provider filled in (absent from the file, present after the merge).
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
