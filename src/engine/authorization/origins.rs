//! Where a token may go: the origins a grant was made for (configured, or the API URL's), checking a request against them, and placing the token in the request the way the provider wants.

use super::*;

/// The origins a profile's settings give its token: `api_origins`, else the API URL's origin,
/// else the provider's API base. Empty when none is known.
pub(super) fn configured_origins(
    profile: &Profile,
    api_origins: &[url::Origin],
    api_base: Option<&str>,
) -> Vec<String> {
    if !api_origins.is_empty() {
        return api_origins
            .iter()
            .map(|o| o.ascii_serialization())
            .collect();
    }
    profile
        .request
        .as_ref()
        .and_then(|r| r.static_origin())
        .or_else(|| Some(url::Url::parse(api_base?).ok()?.origin()))
        .map(|o| vec![o.ascii_serialization()])
        .unwrap_or_default()
}

pub(super) fn parse_origins(texts: &[String]) -> Vec<url::Origin> {
    texts
        .iter()
        .filter_map(|t| url::Url::parse(t).ok())
        .map(|u| u.origin())
        .collect()
}

/// Whether `url` goes to `origin` (scheme, host and port), compared without building the URL's
/// origin: this runs on every request that carries a token.
pub(super) fn same_origin(origin: &url::Origin, url: &url::Url) -> bool {
    let url::Origin::Tuple(scheme, host, port) = origin else {
        return false;
    };
    let same_host = match (host, url.host()) {
        (url::Host::Domain(a), Some(url::Host::Domain(b))) => a == b,
        (url::Host::Ipv4(a), Some(url::Host::Ipv4(b))) => *a == b,
        (url::Host::Ipv6(a), Some(url::Host::Ipv6(b))) => *a == b,
        _ => false,
    };
    same_host && scheme == url.scheme() && Some(*port) == url.port_or_known_default()
}

pub(super) fn origins_text(origins: &[url::Origin]) -> String {
    origins
        .iter()
        .map(|o| o.ascii_serialization())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The origins a new authorization of `profile` is bound to: `api_origins`, else the API
/// URL's origin, else the provider's API base; plus the origin of the token answer's API-host
/// field (Zoho's `api_domain`) when the provider names one and `tokens` are known.
pub(super) fn granted_origins(
    profile: &Profile,
    spec: &OAuth2Spec,
    tokens: Option<&TokenSet>,
) -> Result<Vec<String>, AuthorizationError> {
    let mut origins = configured_origins(profile, &spec.api_origins, spec.api_base.as_deref());
    let from_token = spec
        .api_host_field
        .as_ref()
        .zip(tokens)
        .and_then(|(field, tokens)| tokens.extra.get(field)?.as_str().map(str::to_string))
        .and_then(|text| url::Url::parse(&text).ok())
        .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
        .map(|u| u.origin().ascii_serialization());
    if let Some(origin) = from_token {
        if !origins.contains(&origin) {
            origins.push(origin);
        }
    }
    if origins.is_empty() && (spec.api_host_field.is_none() || tokens.is_some()) {
        return Err(AuthorizationError::NoOrigin(profile.name.clone()));
    }
    Ok(origins)
}

/// Where an OAuth 1.0a token may go: `api_origins`, else the API URL's origin.
pub(super) fn oauth1_origins(
    profile: &Profile,
    spec: &crate::profile::OAuth1Spec,
) -> Result<Vec<String>, AuthorizationError> {
    let origins = configured_origins(profile, &spec.api_origins, None);
    if origins.is_empty() {
        return Err(AuthorizationError::NoOrigin(profile.name.clone()));
    }
    Ok(origins)
}

/// What the access token becomes on the wire: the header template filled (`Bearer …`,
/// `Zoho-oauthtoken …`), or the bare token for a query parameter.
pub fn token_value(spec: &OAuth2Spec, token: &Secret) -> Option<reqwest::header::HeaderValue> {
    let text = match spec.token_query {
        Some(_) => token.expose().to_string(),
        None => spec
            .header_template
            .replace("{AccessToken}", token.expose()),
    };
    let mut value = reqwest::header::HeaderValue::from_str(&text).ok()?;
    value.set_sensitive(true);
    Some(value)
}

/// Puts the token where the provider wants it: a header (default `Authorization`) or a query
/// parameter.
pub fn place_token(
    spec: &OAuth2Spec,
    value: reqwest::header::HeaderValue,
    url: &mut url::Url,
    headers: &mut reqwest::header::HeaderMap,
) {
    match &spec.token_query {
        Some(parameter) => {
            if let Ok(token) = value.to_str() {
                url.query_pairs_mut().append_pair(parameter, token);
            }
        }
        None => {
            let name = reqwest::header::HeaderName::from_bytes(spec.token_header.as_bytes())
                .unwrap_or(reqwest::header::AUTHORIZATION);
            headers.insert(name, value);
        }
    }
}

impl Authorizer {
    pub(super) fn check_origin(
        profile: &str,
        origins: &[url::Origin],
        url: &url::Url,
    ) -> Result<(), AuthorizationError> {
        if origins.iter().any(|origin| same_origin(origin, url)) {
            Ok(())
        } else {
            Err(AuthorizationError::WrongOrigin {
                profile: profile.to_string(),
                granted: origins_text(origins),
                requested: url.origin().ascii_serialization(),
            })
        }
    }
}
