//! Resolving `[auth.oauth1]`.

use super::*;

pub(super) fn resolve_oauth1(
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
