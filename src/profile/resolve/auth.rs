//! Resolving `[auth]`: the mode and its static credentials, and the origins a token may go to.

use super::*;

pub(super) fn resolve_auth(
    raw: &RawAuth,
    c: &mut Collector<'_>,
    sources: &Sources<'_>,
) -> Option<AuthSpec> {
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
pub(super) fn origins(c: &mut Collector<'_>, key: &str, texts: &[String]) -> Vec<url::Origin> {
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
