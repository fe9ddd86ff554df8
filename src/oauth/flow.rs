//! The authorization-code flow with PKCE and the refresh grant. Token requests are form-encoded
//! and authenticate the client the same way in the code exchange and in every refresh: HTTP
//! Basic (RFC 6749 §2.3.1, id and secret form-encoded first) or `client_id`/`client_secret` in
//! the body. Redirects are never followed on token requests.

use std::time::Duration;

use super::state::{PendingAuthorization, StateStore};
use super::token::{parse_token_response, TokenSet};
use crate::secret::Secret;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthStyle {
    Basic,
    Body,
}

/// What the protocol needs of a profile's OAuth2 settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub authorize_url: url::Url,
    pub token_url: url::Url,
    pub scopes: String,
    pub extra_authorize_params: Vec<(String, String)>,
    pub client_auth: ClientAuthStyle,
    pub pkce: bool,
    /// How long a token request may take, answer included.
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum OAuthError {
    /// The authorization server refused (RFC 6749 §5.2), e.g. `invalid_grant`.
    #[error("the authorization server refused: {error}{}", description.as_ref().map(|d| format!(" ({d})")).unwrap_or_default())]
    Server {
        error: String,
        description: Option<String>,
    },
    /// A status that may pass: 5xx or 429, with the server's Retry-After when given.
    #[error("the token endpoint answered HTTP {status}; will retry")]
    Unavailable {
        status: u16,
        retry_after: Option<Duration>,
    },
    #[error("the token endpoint answered HTTP {0}")]
    Status(u16),
    #[error("cannot reach the token endpoint: {0}")]
    Transport(String),
    #[error("{0}")]
    Parse(String),
}

impl OAuthError {
    /// The grant is dead (revoked, expired or rotated out): only a new authorization helps.
    pub fn needs_reauthorization(&self) -> bool {
        matches!(self, OAuthError::Server { error, .. } if error == "invalid_grant" || error == "unauthorized_client" || error == "invalid_client")
    }

    /// A failure that may pass on its own (server errors, rate limits, network trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OAuthError::Unavailable { .. } | OAuthError::Transport(_)
        )
    }
}

/// Builds the authorize URL for a profile and registers its pending state (and PKCE verifier).
pub fn authorization_url(
    config: &ClientConfig,
    profile: &str,
    redirect_uri: &str,
    states: &StateStore,
) -> url::Url {
    let (challenge, verifier) = if config.pkce {
        let (challenge, verifier) = oauth2::PkceCodeChallenge::new_random_sha256();
        (
            Some(challenge),
            Some(Secret::new(verifier.secret().clone())),
        )
    } else {
        (None, None)
    };
    let state = states.issue(PendingAuthorization::new(profile, redirect_uri, verifier));
    let mut url = config.authorize_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", "code")
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", redirect_uri);
        if !config.scopes.trim().is_empty() {
            query.append_pair("scope", config.scopes.trim());
        }
        query.append_pair("state", &state);
        if let Some(challenge) = &challenge {
            query
                .append_pair("code_challenge", challenge.as_str())
                .append_pair("code_challenge_method", challenge.method().as_str());
        }
        for (name, value) in &config.extra_authorize_params {
            query.append_pair(name, value);
        }
    }
    url
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    config: &ClientConfig,
    pending: &PendingAuthorization,
    code: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let mut form = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.expose().to_string()),
        ("redirect_uri", pending.redirect_uri.clone()),
    ];
    if let Some(verifier) = &pending.pkce_verifier {
        form.push(("code_verifier", verifier.expose().to_string()));
    }
    let body = token_request(http, config, form).await?;
    parse_token_response(&body, None, now_ms)
}

/// Uses a refresh token. The old refresh token is kept when the answer carries none.
pub async fn refresh(
    http: &reqwest::Client,
    config: &ClientConfig,
    refresh_token: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let form = vec![
        ("grant_type", "refresh_token".to_string()),
        ("refresh_token", refresh_token.expose().to_string()),
    ];
    let body = token_request(http, config, form).await?;
    parse_token_response(&body, Some(refresh_token), now_ms)
}

const TOKEN_RESPONSE_LIMIT: usize = 1024 * 1024;

async fn token_request(
    http: &reqwest::Client,
    config: &ClientConfig,
    mut form: Vec<(&'static str, String)>,
) -> Result<String, OAuthError> {
    let mut request = http
        .post(config.token_url.clone())
        .header(reqwest::header::ACCEPT, "application/json")
        .timeout(config.timeout);
    match (config.client_auth, &config.client_secret) {
        (ClientAuthStyle::Basic, Some(secret)) => {
            use base64::Engine;
            let encode =
                |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let credentials = base64::engine::general_purpose::STANDARD.encode(format!(
                "{}:{}",
                encode(&config.client_id),
                encode(secret.expose())
            ));
            let mut value = reqwest::header::HeaderValue::from_str(&format!("Basic {credentials}"))
                .map_err(|_| {
                    OAuthError::Parse("the client credentials cannot be sent in a header".into())
                })?;
            value.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        (ClientAuthStyle::Body, Some(secret)) => {
            form.push(("client_id", config.client_id.clone()));
            form.push(("client_secret", secret.expose().to_string()));
        }
        // A public client identifies itself in the body.
        (_, None) => form.push(("client_id", config.client_id.clone())),
    }
    let body = {
        let mut encoded = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in &form {
            encoded.append_pair(name, value);
        }
        encoded.finish()
    };
    let response = request
        .header(
            reqwest::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body)
        .send()
        .await
        .map_err(|e| {
            OAuthError::Transport(if e.is_timeout() {
                format!("no answer within {} s", config.timeout.as_secs_f64())
            } else {
                crate::net::describe(&e)
            })
        })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    if response
        .content_length()
        .is_some_and(|len| len as usize > TOKEN_RESPONSE_LIMIT)
    {
        return Err(OAuthError::Parse("the token response is too large".into()));
    }
    let bytes = response
        .bytes()
        .await
        .map_err(|e| OAuthError::Transport(crate::net::describe(&e)))?;
    if bytes.len() > TOKEN_RESPONSE_LIMIT {
        return Err(OAuthError::Parse("the token response is too large".into()));
    }
    let body = String::from_utf8_lossy(&bytes).into_owned();
    match status {
        200..=299 => Ok(body),
        429 | 500..=599 => Err(OAuthError::Unavailable {
            status,
            retry_after,
        }),
        _ => Err(server_error(&body).unwrap_or(OAuthError::Status(status))),
    }
}

/// The RFC 6749 §5.2 error body, if that is what the server sent. Only the standard fields are
/// kept, so nothing else of the body (which might echo a credential) reaches a message.
fn server_error(body: &str) -> Option<OAuthError> {
    let value: serde_json::Value = serde_json::from_str(body).ok()?;
    let error = value
        .get("error")?
        .as_str()?
        .chars()
        .take(64)
        .collect::<String>();
    let description = value
        .get("error_description")
        .and_then(|d| d.as_str())
        .map(|d| d.chars().take(200).collect());
    Some(OAuthError::Server { error, description })
}
