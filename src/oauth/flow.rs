//! The grants: authorization code with PKCE, refresh, client credentials, device authorization
//! (RFC 8628), resource-owner password, and revocation (RFC 7009).
//!
//! Every token request goes through one path, [`token_request`]: the standard parameters of
//! the grant (or the provider's template for it), the provider's extra parameters, the client's
//! authentication (HTTP Basic, body, or none for a public client; the same choice everywhere),
//! form or JSON encoding, and the answer read by the provider's [`TokenShape`]. Redirects are
//! never followed on token requests.

use std::time::Duration;

use sha2::Digest;

use super::shape::TokenShape;
use super::state::{PendingAuthorization, StateStore};
use super::template::{TextTemplate, Values};
use super::token::TokenSet;
use crate::secret::Secret;

/// How the client authenticates at the token endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuthStyle {
    /// HTTP Basic with the form-encoded id and secret (RFC 6749 §2.3.1).
    Basic,
    /// `client_id` and `client_secret` in the body.
    Body,
    /// A public client: `client_id` only, in the body.
    None,
}

/// How a token request's body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BodyFormat {
    #[default]
    Form,
    Json,
    /// The fields in the URL's query, an empty body (ecobee).
    Query,
    /// The fields in the URL's query of a GET (ecobee's PIN request).
    Get,
}

/// How a provider's device flow differs from RFC 8628 (ecobee's PIN flow is one).
#[derive(Debug, Clone, PartialEq)]
pub struct DeviceOptions {
    /// How the device request is sent.
    pub request_format: BodyFormat,
    /// Fields added to the device request (ecobee: `response_type = "ecobeePin"`).
    pub params: Vec<(String, String)>,
    pub user_code_field: String,
    pub device_code_field: String,
    /// The grant type of the polls.
    pub grant_type: String,
    /// The name the device code is sent under when polling.
    pub device_code_param: String,
    /// Where people enter the code, when the answer does not say.
    pub verification_uri: Option<String>,
    /// `expires_in` counts minutes (ecobee), not seconds.
    pub expires_in_minutes: bool,
}

impl Default for DeviceOptions {
    fn default() -> DeviceOptions {
        DeviceOptions {
            request_format: BodyFormat::Form,
            params: Vec::new(),
            user_code_field: "user_code".into(),
            device_code_field: "device_code".into(),
            grant_type: "urn:ietf:params:oauth:grant-type:device_code".into(),
            device_code_param: "device_code".into(),
            verification_uri: None,
            expires_in_minutes: false,
        }
    }
}

/// A provider's own token request (seed 003's token-endpoint template): URL, headers and body
/// fields, each a `{{name}}` template.
#[derive(Debug, Clone, PartialEq)]
pub struct RequestTemplate {
    pub url: Option<TextTemplate>,
    pub headers: Vec<(String, TextTemplate)>,
    pub body: Vec<(String, TextTemplate)>,
    pub format: BodyFormat,
}

/// What the protocol needs of a profile's OAuth2 settings.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    pub client_id: String,
    pub client_secret: Option<Secret>,
    pub authorize_url: Option<url::Url>,
    pub token_url: url::Url,
    /// Where refresh requests go, when not to the token URL.
    pub refresh_url: Option<url::Url>,
    pub device_authorization_url: Option<url::Url>,
    pub revocation_url: Option<url::Url>,
    pub introspection_url: Option<url::Url>,
    /// The scopes, already joined with the provider's separator.
    pub scopes: String,
    pub extra_authorize_params: Vec<(String, String)>,
    /// Sent with every token request (Withings' `action=requesttoken`).
    pub token_params: Vec<(String, TextTemplate)>,
    pub client_auth: ClientAuthStyle,
    pub pkce: bool,
    pub body_format: BodyFormat,
    pub device: DeviceOptions,
    /// The provider's own request for the code exchange, replacing the standard one.
    pub exchange_template: Option<RequestTemplate>,
    /// The provider's own refresh request.
    pub refresh_template: Option<RequestTemplate>,
    /// Values of the profile's settings for the templates.
    pub settings: Vec<(String, String)>,
    pub shape: TokenShape,
    /// How long a token request may take, answer included.
    pub timeout: Duration,
}

/// The HTTP client's error under a transport failure, shared so that the error stays cheap to
/// clone; two causes are equal when they say the same. Kept without its URL: a token endpoint's
/// query may carry a code or a secret, and an error chain may be printed.
#[derive(Debug, Clone)]
pub struct TransportCause(std::sync::Arc<reqwest::Error>);

impl std::fmt::Display for TransportCause {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.fmt(f)
    }
}

impl std::error::Error for TransportCause {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.0)
    }
}

impl PartialEq for TransportCause {
    fn eq(&self, other: &TransportCause) -> bool {
        self.0.to_string() == other.0.to_string()
    }
}

impl OAuthError {
    /// A request that got no answer: the client's error, described and kept.
    pub fn transport(error: reqwest::Error) -> OAuthError {
        OAuthError::Transport {
            what: crate::net::describe(&error),
            source: Some(TransportCause(std::sync::Arc::new(error.without_url()))),
        }
    }

    /// A request that got no answer in time.
    pub fn timeout(error: reqwest::Error, within: Duration) -> OAuthError {
        OAuthError::Transport {
            what: format!("no answer within {} s", within.as_secs_f64()),
            source: Some(TransportCause(std::sync::Arc::new(error.without_url()))),
        }
    }
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
    /// The request did not get an answer: `what` says why in words, `source` is the HTTP
    /// client's own error when there is one.
    #[error("cannot reach the token endpoint: {what}")]
    Transport {
        what: String,
        #[source]
        source: Option<TransportCause>,
    },
    #[error("{0}")]
    Parse(String),
    #[error("{0}")]
    Unsupported(String),
}

impl OAuthError {
    /// The grant is dead (revoked, expired or rotated out): only a new authorization helps.
    ///
    /// Besides RFC 6749's codes, providers use their own (Zoho's `invalid_code`, GitHub's
    /// `bad_refresh_token`, Strava's `invalid`, Withings' non-zero `status` with an "invalid"
    /// message): a refusal that names something invalid, expired or revoked is taken as dead.
    /// `invalid_request` is not: it says the request was malformed, not the grant.
    pub fn needs_reauthorization(&self) -> bool {
        let OAuthError::Server { error, description } = self else {
            return false;
        };
        let error = error.to_ascii_lowercase();
        if error == "invalid_request" {
            return false;
        }
        let dead_word = |text: &str| {
            let text = text.to_ascii_lowercase();
            ["invalid", "expired", "revoked"]
                .iter()
                .any(|w| text.contains(w))
        };
        matches!(
            error.as_str(),
            "unauthorized_client" | "bad_refresh_token" | "bad_verification_code"
        ) || dead_word(&error)
            || (error.starts_with("status ") && description.as_deref().is_some_and(dead_word))
    }

    /// A failure that may pass on its own (server errors, rate limits, network trouble).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            OAuthError::Unavailable { .. } | OAuthError::Transport { .. }
        )
    }

    /// The server's error code, when it sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            OAuthError::Server { error, .. } => Some(error),
            _ => None,
        }
    }
}

/// A PKCE pair: the S256 challenge and its verifier (RFC 7636).
fn pkce_pair() -> (String, Secret) {
    use base64::Engine;
    let verifier = format!(
        "{}{}",
        crate::secret::random_token(),
        crate::secret::random_token()
    );
    let challenge = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    (challenge, Secret::new(verifier))
}

/// The S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// Builds the authorize URL for a profile and registers its pending state (and PKCE verifier).
/// `response_type` is `code`, or `token` for the legacy implicit grant.
pub fn authorization_url(
    config: &ClientConfig,
    pending: PendingAuthorization,
    response_type: &str,
    states: &StateStore,
) -> Result<url::Url, OAuthError> {
    let Some(authorize_url) = &config.authorize_url else {
        return Err(OAuthError::Unsupported(
            "this profile has no authorize URL: its grant needs no browser".into(),
        ));
    };
    let (challenge, pending) = if config.pkce && response_type == "code" {
        let (challenge, verifier) = pkce_pair();
        (Some(challenge), pending.with_verifier(verifier))
    } else {
        (None, pending)
    };
    let redirect_uri = pending.redirect_uri.clone();
    let state = states.issue(pending);
    let mut url = authorize_url.clone();
    {
        let mut query = url.query_pairs_mut();
        query
            .append_pair("response_type", response_type)
            .append_pair("client_id", &config.client_id)
            .append_pair("redirect_uri", &redirect_uri);
        if !config.scopes.trim().is_empty() {
            query.append_pair("scope", config.scopes.trim());
        }
        query.append_pair("state", &state);
        if let Some(challenge) = &challenge {
            query
                .append_pair("code_challenge", challenge)
                .append_pair("code_challenge_method", "S256");
        }
        for (name, value) in &config.extra_authorize_params {
            query.append_pair(name, value);
        }
    }
    Ok(url)
}

/// The values every template may read.
fn base_values(config: &ClientConfig) -> Values {
    let mut values = Values::default()
        .with("client_id", config.client_id.clone())
        .with("scope", config.scopes.clone());
    if let Some(secret) = &config.client_secret {
        values = values.with_secret("client_secret", secret);
    }
    for (name, value) in &config.settings {
        values = values.with(name, value.clone());
    }
    values
}

/// One token request, before the client's authentication is added.
struct Call<'a> {
    url: &'a url::Url,
    /// The grant's standard parameters.
    params: Vec<(&'static str, String)>,
    /// Parameters whose names the provider chose (ecobee's `code` for the device code).
    extra: Vec<(String, String)>,
    template: Option<&'a RequestTemplate>,
    values: Values,
}

/// Exchanges an authorization code for tokens.
pub async fn exchange_code(
    http: &reqwest::Client,
    config: &ClientConfig,
    pending: &PendingAuthorization,
    code: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let mut params = vec![
        ("grant_type", "authorization_code".to_string()),
        ("code", code.expose().to_string()),
    ];
    // A self client's code was not issued through a redirect: it has none to repeat.
    if !pending.redirect_uri.is_empty() {
        params.push(("redirect_uri", pending.redirect_uri.clone()));
    }
    let mut values = base_values(config)
        .with_secret("auth_code", code)
        .with("redirect_uri", pending.redirect_uri.clone());
    if let Some(verifier) = &pending.pkce_verifier {
        params.push(("code_verifier", verifier.expose().to_string()));
        values = values.with_secret("code_verifier", verifier);
    }
    let call = Call {
        url: &config.token_url,
        params,
        extra: Vec::new(),
        template: config.exchange_template.as_ref(),
        values,
    };
    token_request(http, config, call, None, now_ms).await
}

/// Uses a refresh token. The old refresh token is kept when the answer carries none.
pub async fn refresh(
    http: &reqwest::Client,
    config: &ClientConfig,
    refresh_token: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let call = Call {
        url: config.refresh_url.as_ref().unwrap_or(&config.token_url),
        params: vec![
            ("grant_type", "refresh_token".to_string()),
            ("refresh_token", refresh_token.expose().to_string()),
        ],
        extra: Vec::new(),
        template: config.refresh_template.as_ref(),
        values: base_values(config).with_secret("refresh_token", refresh_token),
    };
    token_request(http, config, call, Some(refresh_token), now_ms).await
}

/// The client-credentials grant (RFC 6749 §4.4): the client's own token, no user.
pub async fn client_credentials(
    http: &reqwest::Client,
    config: &ClientConfig,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let mut params = vec![("grant_type", "client_credentials".to_string())];
    if !config.scopes.trim().is_empty() {
        params.push(("scope", config.scopes.trim().to_string()));
    }
    let call = Call {
        url: &config.token_url,
        params,
        extra: Vec::new(),
        template: None,
        values: base_values(config),
    };
    token_request(http, config, call, None, now_ms).await
}

/// The resource-owner password grant (RFC 6749 §4.3), for the providers that still need it.
pub async fn password(
    http: &reqwest::Client,
    config: &ClientConfig,
    username: &str,
    password: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let mut params = vec![
        ("grant_type", "password".to_string()),
        ("username", username.to_string()),
        ("password", password.expose().to_string()),
    ];
    if !config.scopes.trim().is_empty() {
        params.push(("scope", config.scopes.trim().to_string()));
    }
    let call = Call {
        url: &config.token_url,
        params,
        extra: Vec::new(),
        template: None,
        values: base_values(config)
            .with("username", username)
            .with_secret("password", password),
    };
    token_request(http, config, call, None, now_ms).await
}

/// What a device authorization request answered (RFC 8628 §3.2).
#[derive(Debug, Clone)]
pub struct DeviceAuthorization {
    pub device_code: Secret,
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in: Duration,
    pub interval: Duration,
}

/// Starts the device flow: asks for a device code and the user code to show.
pub async fn device_authorization(
    http: &reqwest::Client,
    config: &ClientConfig,
) -> Result<DeviceAuthorization, OAuthError> {
    let Some(url) = &config.device_authorization_url else {
        return Err(OAuthError::Unsupported(
            "this profile has no device authorization URL".into(),
        ));
    };
    let options = &config.device;
    let mut params = Vec::new();
    if !config.scopes.trim().is_empty() {
        params.push(("scope".to_string(), config.scopes.trim().to_string()));
    }
    params.extend(options.params.iter().cloned());
    let value = post_for_json(http, config, url, params, options.request_format).await?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(|v| {
                v.as_str()
                    .map(str::to_string)
                    .or_else(|| v.as_u64().map(|n| n.to_string()))
            })
            .filter(|s| !s.is_empty())
    };
    let seconds = |name: &str, default: u64| {
        value
            .get(name)
            .and_then(|v| v.as_u64().or_else(|| v.as_str()?.trim().parse().ok()))
            .unwrap_or(default)
    };
    let missing = |name: &str| {
        OAuthError::Parse(format!(
            "the device authorization answer has no `{name}`; it looks like {}",
            super::shape::redacted_shape(&value)
        ))
    };
    // The addresses are shown to people as links: only http(s) ones are taken.
    let web_address = |text: Option<String>| {
        text.filter(|t| url::Url::parse(t).is_ok_and(|u| matches!(u.scheme(), "http" | "https")))
    };
    let user_code =
        text(&options.user_code_field).ok_or_else(|| missing(&options.user_code_field))?;
    if user_code.chars().count() > 64 || user_code.chars().any(char::is_control) {
        return Err(OAuthError::Parse(
            "the device authorization answer's user_code is not a code a person can type".into(),
        ));
    }
    Ok(DeviceAuthorization {
        device_code: Secret::new(
            text(&options.device_code_field).ok_or_else(|| missing(&options.device_code_field))?,
        ),
        user_code,
        verification_uri: web_address(
            text("verification_uri")
                .or_else(|| text("verification_url"))
                .or_else(|| options.verification_uri.clone()),
        )
        .ok_or_else(|| missing("verification_uri (an http or https address)"))?,
        verification_uri_complete: web_address(text("verification_uri_complete")),
        expires_in: Duration::from_secs(
            (seconds("expires_in", 600) * if options.expires_in_minutes { 60 } else { 1 })
                .clamp(10, 3600),
        ),
        interval: Duration::from_secs(seconds("interval", 5).clamp(1, 120)),
    })
}

/// One poll of the device flow's token endpoint. `authorization_pending` and `slow_down` come
/// back as [`OAuthError::Server`] errors for the caller's loop.
pub async fn device_token(
    http: &reqwest::Client,
    config: &ClientConfig,
    device_code: &Secret,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let call = Call {
        url: &config.token_url,
        params: vec![("grant_type", config.device.grant_type.clone())],
        extra: vec![(
            config.device.device_code_param.clone(),
            device_code.expose().to_string(),
        )],
        template: None,
        values: base_values(config).with_secret("device_code", device_code),
    };
    token_request(http, config, call, None, now_ms).await
}

/// Revokes a token (RFC 7009). The server answers 200 for unknown tokens too.
pub async fn revoke(
    http: &reqwest::Client,
    config: &ClientConfig,
    token: &Secret,
    hint: &str,
) -> Result<(), OAuthError> {
    let Some(url) = &config.revocation_url else {
        return Err(OAuthError::Unsupported(
            "the provider has no revocation endpoint".into(),
        ));
    };
    let params = vec![
        ("token".to_string(), token.expose().to_string()),
        ("token_type_hint".to_string(), hint.to_string()),
    ];
    let (status, _, body) = send(
        http,
        config,
        url,
        authenticate(config, params)?,
        &[],
        config.body_format,
    )
    .await?;
    if (200..300).contains(&status) {
        Ok(())
    } else {
        Err(answer_error(config, status, &body, None))
    }
}

/// A request's fields and the Authorization header, once the client's authentication is in.
type Authenticated = (Vec<(String, String)>, Option<reqwest::header::HeaderValue>);

/// What a token introspection (RFC 7662) said. Only these fields are kept: never the token.
#[derive(Debug, Clone, serde::Serialize, PartialEq)]
pub struct Introspection {
    pub active: bool,
    pub scope: Option<String>,
    pub client_id: Option<String>,
    pub username: Option<String>,
    pub sub: Option<String>,
    /// When the token expires, seconds since 1970.
    pub exp: Option<i64>,
}

/// Asks the provider whether a token is active (RFC 7662).
pub async fn introspect(
    http: &reqwest::Client,
    config: &ClientConfig,
    token: &Secret,
    hint: &str,
) -> Result<Introspection, OAuthError> {
    let Some(url) = &config.introspection_url else {
        return Err(OAuthError::Unsupported(
            "the provider has no introspection endpoint".into(),
        ));
    };
    let params = vec![
        ("token".to_string(), token.expose().to_string()),
        ("token_type_hint".to_string(), hint.to_string()),
    ];
    let value = post_for_json(http, config, url, params, BodyFormat::Form).await?;
    let text = |name: &str| {
        value
            .get(name)
            .and_then(|v| v.as_str())
            .map(|s| s.chars().take(512).collect())
    };
    Ok(Introspection {
        active: value
            .get("active")
            .and_then(|v| v.as_bool())
            .unwrap_or(false),
        scope: text("scope"),
        client_id: text("client_id"),
        username: text("username"),
        sub: text("sub"),
        exp: value.get("exp").and_then(|v| v.as_i64()),
    })
}

/// Form fields and headers with the client's authentication added.
fn authenticate(
    config: &ClientConfig,
    mut params: Vec<(String, String)>,
) -> Result<Authenticated, OAuthError> {
    let has = |params: &[(String, String)], name: &str| params.iter().any(|(n, _)| n == name);
    let mut header = None;
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
            header = Some(value);
        }
        (ClientAuthStyle::Body, Some(secret)) => {
            if !has(&params, "client_id") {
                params.push(("client_id".into(), config.client_id.clone()));
            }
            if !has(&params, "client_secret") {
                params.push(("client_secret".into(), secret.expose().to_string()));
            }
        }
        // A public client identifies itself in the body.
        _ => {
            if !has(&params, "client_id") {
                params.push(("client_id".into(), config.client_id.clone()))
            }
        }
    }
    Ok((params, header))
}

const TOKEN_RESPONSE_LIMIT: usize = 1024 * 1024;

/// The one path of every token request: builds it, sends it, reads the answer.
async fn token_request(
    http: &reqwest::Client,
    config: &ClientConfig,
    call: Call<'_>,
    previous_refresh: Option<&Secret>,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    let format = call.template.map_or(config.body_format, |t| t.format);
    let (url, fields, headers) = match call.template {
        Some(template) => {
            let url = match &template.url {
                Some(url) => url::Url::parse(&url.render(&call.values)).map_err(|e| {
                    OAuthError::Parse(format!(
                        "the token request template's URL is not valid: {e}"
                    ))
                })?,
                None => call.url.clone(),
            };
            let fields: Vec<(String, String)> = template
                .body
                .iter()
                .map(|(name, value)| (name.clone(), value.render(&call.values)))
                .collect();
            let headers: Vec<(String, String)> = template
                .headers
                .iter()
                .map(|(name, value)| (name.clone(), value.render(&call.values)))
                .collect();
            (url, fields, headers)
        }
        None => (
            call.url.clone(),
            call.params
                .into_iter()
                .map(|(name, value)| (name.to_string(), value))
                .chain(call.extra)
                .collect(),
            Vec::new(),
        ),
    };
    let mut fields = fields;
    for (name, value) in &config.token_params {
        if !fields.iter().any(|(n, _)| n == name) {
            fields.push((name.clone(), value.render(&call.values)));
        }
    }
    let authenticated = authenticate(config, fields)?;
    let (status, content_type, body) =
        send(http, config, &url, authenticated, &headers, format).await?;
    if (200..300).contains(&status) {
        return config
            .shape
            .read(&body, content_type.as_deref(), previous_refresh, now_ms);
    }
    Err(answer_error(config, status, &body, content_type.as_deref()))
}

/// A client-authenticated form POST whose answer is a JSON object (device authorization,
/// introspection): the object, or the server's error.
async fn post_for_json(
    http: &reqwest::Client,
    config: &ClientConfig,
    url: &url::Url,
    params: Vec<(String, String)>,
    format: BodyFormat,
) -> Result<serde_json::Value, OAuthError> {
    let (status, content_type, body) = send(
        http,
        config,
        url,
        authenticate(config, params)?,
        &[],
        format,
    )
    .await?;
    if !(200..300).contains(&status) {
        return Err(answer_error(config, status, &body, content_type.as_deref()));
    }
    let value = config.shape.decode(&body, content_type.as_deref())?;
    match config.shape.error_in(&value) {
        Some(error) => Err(error),
        None => Ok(value),
    }
}

/// The error of a non-2xx answer (429 and 5xx never get here: [`send`] makes them
/// `Unavailable`): the server's error fields, or the bare status.
fn answer_error(
    config: &ClientConfig,
    status: u16,
    body: &str,
    content_type: Option<&str>,
) -> OAuthError {
    config
        .shape
        .decode(body, content_type)
        .ok()
        .and_then(|v| config.shape.error_in(&v))
        .unwrap_or(OAuthError::Status(status))
}

/// Sends the fields as a form or JSON body, or in the query (of a POST or a GET), and reads the
/// answer within the size limit.
async fn send(
    http: &reqwest::Client,
    config: &ClientConfig,
    url: &url::Url,
    (fields, authorization): Authenticated,
    headers: &[(String, String)],
    format: BodyFormat,
) -> Result<(u16, Option<String>, String), OAuthError> {
    let mut target = url.clone();
    if matches!(format, BodyFormat::Query | BodyFormat::Get) {
        target.query_pairs_mut().extend_pairs(fields.iter());
    }
    let mut request = if format == BodyFormat::Get {
        http.get(target)
    } else {
        http.post(target)
    }
    .header(reqwest::header::ACCEPT, "application/json")
    .timeout(config.timeout);
    if let Some(value) = authorization {
        request = request.header(reqwest::header::AUTHORIZATION, value);
    }
    for (name, value) in headers {
        let name = reqwest::header::HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| OAuthError::Parse(format!("`{name}` is not a header name")))?;
        let mut value = reqwest::header::HeaderValue::from_str(value).map_err(|_| {
            OAuthError::Parse(format!("header `{name}` has a value that cannot be sent"))
        })?;
        value.set_sensitive(true);
        request = request.header(name, value);
    }
    request = match format {
        BodyFormat::Form => {
            let mut encoded = url::form_urlencoded::Serializer::new(String::new());
            for (name, value) in &fields {
                encoded.append_pair(name, value);
            }
            request
                .header(
                    reqwest::header::CONTENT_TYPE,
                    "application/x-www-form-urlencoded",
                )
                .body(encoded.finish())
        }
        BodyFormat::Json => {
            let object: serde_json::Map<String, serde_json::Value> = fields
                .into_iter()
                .map(|(name, value)| (name, serde_json::Value::String(value)))
                .collect();
            request
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(serde_json::Value::Object(object).to_string())
        }
        BodyFormat::Query | BodyFormat::Get => request,
    };
    let response = request.send().await.map_err(|e| {
        if e.is_timeout() {
            OAuthError::timeout(e, config.timeout)
        } else {
            OAuthError::transport(e)
        }
    })?;
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
        .map(Duration::from_secs);
    let content_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    if response
        .content_length()
        .is_some_and(|len| len as usize > TOKEN_RESPONSE_LIMIT)
    {
        return Err(OAuthError::Parse("the token response is too large".into()));
    }
    let bytes = read_limited(response).await?;
    let body = String::from_utf8_lossy(&bytes).into_owned();
    if matches!(status, 429 | 500..=599) {
        return Err(OAuthError::Unavailable {
            status,
            retry_after,
        });
    }
    Ok((status, content_type, body))
}

/// The body, refused as soon as it passes the limit (a chunked answer has no length to check).
async fn read_limited(response: reqwest::Response) -> Result<Vec<u8>, OAuthError> {
    read_at_most(response, TOKEN_RESPONSE_LIMIT).await
}

/// A provider's answer, refused as soon as it passes `limit` bytes (before reading more).
pub async fn read_at_most(
    response: reqwest::Response,
    limit: usize,
) -> Result<Vec<u8>, OAuthError> {
    use futures_util::StreamExt;
    if response
        .content_length()
        .is_some_and(|len| len as usize > limit)
    {
        return Err(OAuthError::Parse(format!(
            "the answer is over the limit of {limit} bytes"
        )));
    }
    let mut stream = response.bytes_stream();
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(OAuthError::transport)?;
        if bytes.len() + chunk.len() > limit {
            return Err(OAuthError::Parse(format!(
                "the answer is over the limit of {limit} bytes"
            )));
        }
        bytes.extend_from_slice(&chunk);
    }
    Ok(bytes)
}

/// What a discovery document (RFC 8414 or OpenID Connect Discovery) says of a server.
#[derive(Debug, Clone, Default, serde::Deserialize, serde::Serialize, PartialEq)]
pub struct ServerMetadata {
    pub issuer: String,
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub device_authorization_endpoint: Option<String>,
    #[serde(default)]
    pub revocation_endpoint: Option<String>,
    #[serde(default)]
    pub introspection_endpoint: Option<String>,
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    #[serde(default)]
    pub scopes_supported: Vec<String>,
    #[serde(default)]
    pub grant_types_supported: Vec<String>,
    #[serde(default)]
    pub code_challenge_methods_supported: Vec<String>,
    #[serde(default)]
    pub token_endpoint_auth_methods_supported: Vec<String>,
    #[serde(default)]
    pub authorization_response_iss_parameter_supported: bool,
}

/// Reads a server's metadata from its issuer URL: RFC 8414's
/// `/.well-known/oauth-authorization-server{path}`, then OpenID Connect's
/// `{issuer}/.well-known/openid-configuration`. The document's `issuer` must be the one asked
/// for (RFC 8414 §3.3), so a document cannot speak for another server.
pub async fn discover(
    http: &reqwest::Client,
    issuer: &url::Url,
    timeout: Duration,
) -> Result<ServerMetadata, OAuthError> {
    let trimmed = issuer.as_str().trim_end_matches('/');
    let path = issuer.path().trim_end_matches('/');
    let origin = issuer.origin().ascii_serialization();
    let candidates = [
        format!("{origin}/.well-known/oauth-authorization-server{path}"),
        format!("{trimmed}/.well-known/openid-configuration"),
    ];
    let mut last = OAuthError::Status(404);
    for candidate in candidates {
        let response = match http
            .get(&candidate)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(timeout)
            .send()
            .await
        {
            Ok(response) => response,
            Err(e) => {
                last = OAuthError::transport(e);
                continue;
            }
        };
        let status = response.status().as_u16();
        if status != 200 {
            last = OAuthError::Status(status);
            continue;
        }
        let bytes = read_limited(response).await?;
        let metadata: ServerMetadata = serde_json::from_slice(&bytes).map_err(|e| {
            OAuthError::Parse(format!(
                "the discovery document {candidate} is not valid: {e}"
            ))
        })?;
        if metadata.issuer.trim_end_matches('/') != trimmed {
            return Err(OAuthError::Parse(format!(
                "the discovery document names issuer `{}`, not `{trimmed}`: refused",
                metadata.issuer
            )));
        }
        return Ok(metadata);
    }
    Err(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A transport failure keeps the client's error as its source, without the URL (whose
    /// query may carry a code).
    #[tokio::test]
    async fn a_transport_failure_keeps_its_cause_but_not_the_url() {
        // Nothing listens on a port just freed.
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free port");
        let url = format!("http://127.0.0.1:{port}/token?code=CODE-SHOULD-NOT-LEAK");
        let error = reqwest::Client::new()
            .get(&url)
            .send()
            .await
            .expect_err("nothing listens there");
        let error = OAuthError::transport(error);
        assert!(matches!(error, OAuthError::Transport { .. }));
        let mut chain = vec![error.to_string()];
        let mut source = std::error::Error::source(&error);
        while let Some(cause) = source {
            chain.push(cause.to_string());
            source = cause.source();
        }
        assert!(chain.len() >= 2, "the cause is kept: {chain:?}");
        assert!(
            chain
                .iter()
                .all(|text| !text.contains("CODE-SHOULD-NOT-LEAK")),
            "{chain:?}"
        );
        assert_eq!(error.clone(), error, "still comparable and cloneable");
    }
}
