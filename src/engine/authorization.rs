//! OAuth2 for profiles: Request Authorization (authorize URL with state and PKCE), the callback's
//! code exchange, and access tokens for runs — refreshed ahead of expiry, once more when the API
//! says the token expired, one refresh at a time per profile. A dead grant (`invalid_grant`)
//! marks the profile "needs re-authorization" — persisted, so a restart does not retry it — and
//! stops further refresh attempts; transient failures back off within bounds.
//!
//! A token is bound to the origins it was granted for (the API URL's origin at authorization
//! time, or the profile's `api_origins`): a request to any other origin does not get it.
//! A token is refreshed once per expiry: ahead of it by the configured margin, capped at half the
//! token's lifetime, so short-lived tokens are not refreshed on every run.

use crate::sync::Locked;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::oauth::{
    self, ClientAuthStyle, ClientConfig, OAuthError, StateError, StateStore, TokenSet,
};
use crate::profile::{ClientAuth, GrantType, OAuth2Spec, Profile};
use crate::secret::Secret;
use crate::tokens::{Grant, TokenStore, TokenStoreError};

/// A profile's authorization as users see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthorizationStatus {
    NeverAuthorized,
    Authorized {
        /// When the user authorized the profile (refreshes do not change it).
        authorized_at: String,
        /// When the current access token was issued (the last refresh).
        refreshed_at: String,
        expires_at: Option<String>,
        scopes: Vec<String>,
        /// The access token is due for a refresh.
        expiring: bool,
        can_refresh: bool,
        /// Where the token may be sent.
        api_origins: Vec<String>,
        /// Who the token belongs to, when the provider says ("Ann (ann@example.com)").
        authorized_as: Option<String>,
        grant: &'static str,
    },
    NeedsReauthorization {
        reason: String,
    },
    /// A device authorization (RFC 8628) waits for the user to enter the code.
    AwaitingUser {
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_at: String,
    },
    /// The last device authorization ended without tokens.
    Failed {
        reason: String,
    },
}

/// What the UI, CLI and API show when a device authorization starts.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceStart {
    pub user_code: String,
    pub verification_uri: String,
    pub verification_uri_complete: Option<String>,
    pub expires_in_secs: u64,
    pub interval_secs: u64,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AuthorizationError {
    #[error("profile `{0}` is not authorized yet: press Request Authorization")]
    NotAuthorized(String),
    #[error("profile `{profile}` needs to be authorized again: {reason}")]
    NeedsReauthorization { profile: String, reason: String },
    #[error("the token endpoint is unavailable; next try in {0} s")]
    BackingOff(u64),
    #[error("profile `{0}` does not use OAuth2")]
    NotOAuth(String),
    #[error("profile `{profile}` uses the {grant} grant, which {what}")]
    WrongGrant {
        profile: String,
        grant: &'static str,
        what: &'static str,
    },
    #[error("the token of `{profile}` was granted for {granted}; this request goes to {requested}, so it is sent without the token: authorize the profile again after changing its API's address (or list the origin in auth.oauth2.api_origins)")]
    WrongOrigin {
        profile: String,
        granted: String,
        requested: String,
    },
    #[error("the API URL of `{0}` computes its host, so the token's destination is unknown: list the API's origins in auth.oauth2.api_origins")]
    NoOrigin(String),
    #[error("the token store is busy: {0}")]
    Interrupted(String),
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Protocol(#[from] OAuthError),
    #[error("{0}")]
    Store(#[from] TokenStoreError),
}

/// Token-answer fields that are credentials: never readable through `Token(name)`.
pub const SECRET_TOKEN_FIELDS: &[&str] = &[
    "access_token",
    "refresh_token",
    "id_token",
    "oauth_token_secret",
];

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

/// The current access token ready to send: its Authorization header, identity (issue time),
/// when it is due for a refresh, and where it may go.
struct Ready {
    header: reqwest::header::HeaderValue,
    issued: i64,
    refresh_at: Option<i64>,
    origins: Vec<url::Origin>,
}

/// Where a device authorization stands.
#[derive(Debug, Clone)]
enum DeviceProgress {
    Waiting {
        user_code: String,
        verification_uri: String,
        verification_uri_complete: Option<String>,
        expires_at_ms: i64,
    },
    Failed(String),
}

#[derive(Default)]
struct ProfileAuthorization {
    /// Held while tokens are read, refreshed and saved: one refresh at a time.
    refresh: tokio::sync::Mutex<()>,
    grant: Mutex<Option<Grant>>,
    ready: Mutex<Option<Ready>>,
    /// The token answer's other fields, for `Token(name)`.
    fields: Mutex<Option<Arc<serde_json::Map<String, serde_json::Value>>>>,
    /// A device authorization waiting for the user (RFC 8628), or how the last one ended.
    device: Mutex<Option<DeviceProgress>>,
    /// Which device authorization may still poll: a newer start or a forget ends older ones.
    device_generation: std::sync::atomic::AtomicU64,
    dead: Mutex<Option<String>>,
    backoff: Mutex<Option<(Instant, Duration)>>,
}

pub struct Authorizer {
    store: Arc<TokenStore>,
    states: StateStore,
    http: reqwest::Client,
    public_base_url: url::Url,
    refresh_margin: Duration,
    token_timeout: Duration,
    profiles: Mutex<HashMap<String, Arc<ProfileAuthorization>>>,
}

/// The path of the callback page under the public base URL, and the family's legacy path.
pub const CALLBACK_PATH: &str = "oauth2/callback";
pub const LEGACY_CALLBACK_PATH: &str = "oauth2_callback.html";

fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

fn time_text(ms: i64) -> String {
    chrono::DateTime::<chrono::Utc>::from_timestamp_millis(ms)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true))
        .unwrap_or_default()
}

pub fn client_config(spec: &OAuth2Spec, timeout: Duration) -> ClientConfig {
    ClientConfig {
        client_id: spec.client_id.clone(),
        client_secret: spec.client_secret.clone(),
        authorize_url: spec.authorize_url.clone(),
        token_url: spec.token_url.clone(),
        refresh_url: spec.refresh_url.clone(),
        device_authorization_url: spec.device_authorization_url.clone(),
        revocation_url: spec.revocation_url.clone(),
        introspection_url: spec.introspection_url.clone(),
        scopes: spec.scopes.clone(),
        extra_authorize_params: spec
            .extra_authorize_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        token_params: spec.token_params.clone(),
        client_auth: match spec.client_auth {
            ClientAuth::Basic => ClientAuthStyle::Basic,
            ClientAuth::Body => ClientAuthStyle::Body,
            ClientAuth::None => ClientAuthStyle::None,
        },
        pkce: spec.pkce,
        body_format: spec.body_format,
        device: spec.device.clone(),
        exchange_template: spec.exchange_template.clone(),
        refresh_template: spec.refresh_template.clone(),
        settings: spec
            .settings
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        shape: spec.shape.clone(),
        timeout,
    }
}

/// Fills a `{name}`-style template from a JSON answer: `{a.b}` is a dotted path, `{a|b}` the
/// first of several that has a value. `None` when no placeholder found a value.
pub fn fill_identity_template(template: &str, answer: &serde_json::Value) -> Option<String> {
    let lookup = |path: &str| -> Option<String> {
        let mut value = answer;
        for key in path.trim().split('.') {
            value = match value {
                serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                other => other.get(key)?,
            };
        }
        match value {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut out = String::new();
    let mut found = false;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        if let Some(value) = inner.split('|').find_map(lookup) {
            out.push_str(&value);
            found = true;
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let out: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (found && !out.is_empty()).then(|| out.chars().take(200).collect())
}

fn describe_identity(
    userinfo: &crate::profile::UserInfoSpec,
    answer: &serde_json::Value,
) -> Option<String> {
    let name = userinfo
        .display_name
        .as_deref()
        .and_then(|t| fill_identity_template(t, answer));
    let email = userinfo
        .email
        .as_deref()
        .and_then(|t| fill_identity_template(t, answer));
    let id = userinfo
        .id_field
        .as_deref()
        .and_then(|f| fill_identity_template(&format!("{{{f}}}"), answer));
    match (name, email) {
        (Some(name), Some(email)) => Some(format!("{name} ({email})")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => id,
    }
}

/// The grants whose token the client fetches itself, again whenever it expires.
fn own_token_grant(grant: GrantType) -> bool {
    matches!(grant, GrantType::ClientCredentials | GrantType::Password)
}

fn oauth1_spec(profile: &Profile) -> Result<&crate::profile::OAuth1Spec, AuthorizationError> {
    match &profile.auth {
        crate::profile::AuthSpec::OAuth1(spec) => Ok(spec),
        _ => Err(AuthorizationError::NotOAuth(profile.name.clone())),
    }
}

/// Where an OAuth 1.0a token may go: `api_origins`, else the API URL's origin.
fn oauth1_origins(
    profile: &Profile,
    spec: &crate::profile::OAuth1Spec,
) -> Result<Vec<String>, AuthorizationError> {
    let origins = configured_origins(profile, &spec.api_origins, None);
    if origins.is_empty() {
        return Err(AuthorizationError::NoOrigin(profile.name.clone()));
    }
    Ok(origins)
}

/// The origins a profile's settings give its token: `api_origins`, else the API URL's origin,
/// else the provider's API base. Empty when none is known.
fn configured_origins(
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

/// The OAuth2 settings of a profile, `None` for an OAuth 1.0a one; an error for others.
fn any_spec(profile: &Profile) -> Result<Option<&OAuth2Spec>, AuthorizationError> {
    match &profile.auth {
        crate::profile::AuthSpec::OAuth2(spec) => Ok(Some(spec)),
        crate::profile::AuthSpec::OAuth1(_) => Ok(None),
        _ => Err(AuthorizationError::NotOAuth(profile.name.clone())),
    }
}

fn oauth_spec(profile: &Profile) -> Result<&OAuth2Spec, AuthorizationError> {
    match &profile.auth {
        crate::profile::AuthSpec::OAuth2(spec) => Ok(spec),
        _ => Err(AuthorizationError::NotOAuth(profile.name.clone())),
    }
}

/// When a token is due for a refresh: `margin_ms` before it expires, but never earlier than
/// half-way through its lifetime (a 5 s token with a 60 s margin is refreshed after 2.5 s, not
/// on every use). `None`: it never expires.
fn refresh_due_at(tokens: &TokenSet, margin_ms: i64) -> Option<i64> {
    tokens.expires_at_ms.map(|expires| {
        let lifetime = (expires - tokens.issued_at_ms).max(0);
        expires - margin_ms.min(lifetime / 2)
    })
}

fn due(tokens: &TokenSet, margin_ms: i64, now: i64) -> bool {
    refresh_due_at(tokens, margin_ms).is_some_and(|at| at <= now)
}

fn parse_origins(texts: &[String]) -> Vec<url::Origin> {
    texts
        .iter()
        .filter_map(|t| url::Url::parse(t).ok())
        .map(|u| u.origin())
        .collect()
}

/// Whether `url` goes to `origin` (scheme, host and port), compared without building the URL's
/// origin: this runs on every request that carries a token.
fn same_origin(origin: &url::Origin, url: &url::Url) -> bool {
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

fn origins_text(origins: &[url::Origin]) -> String {
    origins
        .iter()
        .map(|o| o.ascii_serialization())
        .collect::<Vec<_>>()
        .join(", ")
}

/// The origins a new authorization of `profile` is bound to: `api_origins`, else the API
/// URL's origin, else the provider's API base; plus the origin of the token answer's API-host
/// field (Zoho's `api_domain`) when the provider names one and `tokens` are known.
fn granted_origins(
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

impl Authorizer {
    pub fn new(
        store: Arc<TokenStore>,
        public_base_url: url::Url,
        refresh_margin: Duration,
    ) -> Result<Authorizer, String> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("bellhop/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| e.to_string())?;
        Ok(Authorizer {
            store,
            states: StateStore::default(),
            http,
            public_base_url,
            refresh_margin,
            token_timeout: Duration::from_secs(30),
            profiles: Mutex::new(HashMap::new()),
        })
    }

    /// How long a token request may take (30 s by default).
    pub fn with_token_timeout(mut self, timeout: Duration) -> Authorizer {
        self.token_timeout = timeout;
        self
    }

    fn margin_ms(&self) -> i64 {
        self.refresh_margin.as_millis() as i64
    }

    fn entry(&self, profile: &str) -> Arc<ProfileAuthorization> {
        let mut profiles = self.profiles.locked();
        if let Some(entry) = profiles.get(profile) {
            return entry.clone();
        }
        profiles.entry(profile.to_string()).or_default().clone()
    }

    /// The address browsers and providers reach Bellhop at.
    pub fn public_base_url(&self) -> &url::Url {
        &self.public_base_url
    }

    /// The callback page's URL under the public base URL: the standard one or the legacy one.
    pub fn callback_uri(&self, legacy: bool) -> String {
        let path = if legacy {
            LEGACY_CALLBACK_PATH
        } else {
            CALLBACK_PATH
        };
        self.public_base_url
            .join(path)
            .map(|u| u.to_string())
            .unwrap_or_else(|_| format!("{}{path}", self.public_base_url))
    }

    /// The redirect URI registered at the provider: the profile's own, or the callback page.
    pub fn redirect_uri(&self, spec: &OAuth2Spec) -> String {
        match &spec.redirect_url {
            Some(url) => url.to_string(),
            None => self.callback_uri(spec.legacy_callback),
        }
    }

    /// Request Authorization: the URL to send the browser to.
    pub fn begin(&self, profile: &Profile) -> Result<url::Url, AuthorizationError> {
        let spec = oauth_spec(profile)?;
        if !matches!(
            spec.grant,
            GrantType::AuthorizationCode | GrantType::Implicit
        ) {
            return Err(AuthorizationError::WrongGrant {
                profile: profile.name.clone(),
                grant: spec.grant.as_str(),
                what: "needs no browser: press Request Authorization in the profile's page, or run `bellhop authorize`",
            });
        }
        // Refused now rather than after the user logged in at the provider.
        granted_origins(profile, spec, None)?;
        let redirect_uri = self.redirect_uri(spec);
        let response_type = if spec.grant == GrantType::Implicit {
            "token"
        } else {
            "code"
        };
        let pending = oauth::PendingAuthorization::new(&profile.name, &redirect_uri)
            .with_issuer(spec.issuer.clone());
        Ok(oauth::authorization_url(
            &client_config(spec, self.token_timeout),
            pending,
            response_type,
            &self.states,
        )?)
    }

    /// Takes the pending authorization of a callback's `state` (single use).
    pub fn take_state(
        &self,
        state: &str,
    ) -> Result<oauth::PendingAuthorization, AuthorizationError> {
        Ok(self.states.take(state)?)
    }

    /// How many authorizations are pending.
    pub fn pending_authorizations(&self) -> usize {
        self.states.len()
    }

    /// Saves a grant on the blocking pool (an fsync must not stall an async worker).
    async fn save(&self, profile: &str, grant: &Grant) -> Result<(), AuthorizationError> {
        let (store, name, grant) = (self.store.clone(), profile.to_string(), grant.clone());
        tokio::task::spawn_blocking(move || store.save(&name, &grant))
            .await
            .map_err(|e| AuthorizationError::Interrupted(e.to_string()))??;
        Ok(())
    }

    /// Finishes an authorization: exchanges the code and stores the tokens, bound to the
    /// origins the profile's API has now.
    pub async fn complete(
        &self,
        profile: &Profile,
        pending: &oauth::PendingAuthorization,
        code: &Secret,
    ) -> Result<(), AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let entry = self.entry(&profile.name);
        let _guard = entry.refresh.lock().await;
        let tokens = oauth::exchange_code(
            &self.http,
            &client_config(spec, self.token_timeout),
            pending,
            code,
            now_ms(),
        )
        .await?;
        self.keep_new_tokens(profile, spec, &entry, tokens).await
    }

    /// Finishes a (legacy) implicit grant: the token came in the redirect's fragment, which
    /// the callback page posted here.
    pub async fn complete_implicit(
        &self,
        profile: &Profile,
        token: &Secret,
        params: &HashMap<String, String>,
    ) -> Result<(), AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let mut answer = serde_json::Map::new();
        answer.insert("access_token".into(), token.expose().into());
        for name in ["token_type", "expires_in", "scope"] {
            if let Some(value) = params.get(name) {
                answer.insert(name.into(), value.clone().into());
            }
        }
        let tokens = oauth::TokenShape::default().read(
            &serde_json::Value::Object(answer).to_string(),
            None,
            None,
            now_ms(),
        )?;
        let entry = self.entry(&profile.name);
        let _guard = entry.refresh.lock().await;
        self.keep_new_tokens(profile, spec, &entry, tokens).await
    }

    /// Stores the tokens of a new authorization (any grant) and makes them current.
    async fn keep_new_tokens(
        &self,
        profile: &Profile,
        spec: &OAuth2Spec,
        entry: &ProfileAuthorization,
        tokens: TokenSet,
    ) -> Result<(), AuthorizationError> {
        let origins = granted_origins(profile, spec, Some(&tokens))?;
        let identity = self.identity(profile, spec, &tokens).await;
        let mut grant = Grant::new(tokens, origins);
        grant.identity = identity;
        self.save(&profile.name, &grant).await?;
        self.remember(entry, Some(grant), Some(spec));
        *entry.backoff.locked() = None;
        *entry.device.locked() = None;
        tracing::info!(profile = %profile.name, grant = spec.grant.as_str(), "profile authorized");
        Ok(())
    }

    /// The token answer's other fields (Zoho's `api_domain`), for `Token(name)`.
    pub async fn token_fields(
        &self,
        profile: &Profile,
    ) -> Option<Arc<serde_json::Map<String, serde_json::Value>>> {
        let entry = self.entry(&profile.name);
        if let Some(fields) = entry.fields.locked().clone() {
            return Some(fields);
        }
        let spec = any_spec(profile).ok()?;
        self.load(profile, spec, &entry).await.ok()?;
        let fields = entry.fields.locked().clone();
        fields
    }

    /// Makes `grant` the profile's current one, with its header ready.
    fn remember(
        &self,
        entry: &ProfileAuthorization,
        grant: Option<Grant>,
        spec: Option<&OAuth2Spec>,
    ) {
        *entry.fields.locked() = grant.as_ref().map(|g| Arc::new(g.tokens.extra.clone()));
        let ready = grant
            .as_ref()
            .filter(|g| g.needs_reauthorization.is_none())
            .and_then(|g| {
                let header = token_value(spec?, &g.tokens.access_token)?;
                Some(Ready {
                    header,
                    issued: g.tokens.issued_at_ms,
                    refresh_at: refresh_due_at(&g.tokens, self.margin_ms()),
                    origins: parse_origins(&g.api_origins),
                })
            });
        *entry.dead.locked() = grant.as_ref().and_then(|g| g.needs_reauthorization.clone());
        *entry.ready.locked() = ready;
        *entry.grant.locked() = grant;
    }

    fn cached(entry: &ProfileAuthorization) -> Option<Grant> {
        entry.grant.locked().clone()
    }

    /// Makes a grant just read from the store the cached one. A grant of the first version,
    /// which did not record its origins, is bound to the profile's origins now.
    fn adopt(
        &self,
        profile: &Profile,
        spec: Option<&OAuth2Spec>,
        entry: &ProfileAuthorization,
        mut stored: Option<Grant>,
    ) -> Result<Option<Grant>, AuthorizationError> {
        if let (Some(grant), Some(spec)) =
            (stored.as_mut().filter(|g| g.api_origins.is_empty()), spec)
        {
            grant.api_origins = granted_origins(profile, spec, Some(&grant.tokens))?;
        }
        self.remember(entry, stored.clone(), spec);
        Ok(stored)
    }

    /// The cached grant, or the stored one (read once, then cached), read here: for callers off
    /// the async workers.
    fn cached_or_stored(
        &self,
        profile: &Profile,
        spec: Option<&OAuth2Spec>,
        entry: &ProfileAuthorization,
    ) -> Result<Option<Grant>, AuthorizationError> {
        if let Some(cached) = Authorizer::cached(entry) {
            return Ok(Some(cached));
        }
        let stored = self.store.load(&profile.name)?;
        self.adopt(profile, spec, entry, stored)
    }

    /// The same, reading the store on the blocking pool.
    async fn load(
        &self,
        profile: &Profile,
        spec: Option<&OAuth2Spec>,
        entry: &ProfileAuthorization,
    ) -> Result<Option<Grant>, AuthorizationError> {
        if let Some(cached) = Authorizer::cached(entry) {
            return Ok(Some(cached));
        }
        let (store, name) = (self.store.clone(), profile.name.clone());
        let stored = tokio::task::spawn_blocking(move || store.load(&name))
            .await
            .map_err(|e| AuthorizationError::Interrupted(e.to_string()))??;
        self.adopt(profile, spec, entry, stored)
    }

    fn check_origin(
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

    /// The hot path, with no future and no copy of the token: the ready Authorization header of
    /// the cached access token and its identity, when it is not due for a refresh and the grant
    /// is alive. `Ok(None)` means: use [`Self::access_token`]. A request to an origin the token
    /// was not granted for is refused.
    pub fn fresh_header(
        &self,
        profile: &str,
        url: &url::Url,
    ) -> Result<Option<(reqwest::header::HeaderValue, i64)>, AuthorizationError> {
        let entry = self.entry(profile);
        let ready = entry.ready.locked();
        let Some(ready) = ready.as_ref() else {
            return Ok(None);
        };
        Authorizer::check_origin(profile, &ready.origins, url)?;
        let fresh = ready.refresh_at.is_none_or(|at| at > now_ms());
        Ok(fresh.then(|| (ready.header.clone(), ready.issued)))
    }

    /// An access token for a request to `url`, with its identity (issue time). `rejected` is
    /// the identity of a token the API just refused: it is refreshed (unless another caller
    /// already did).
    pub async fn access_token(
        &self,
        profile: &Profile,
        url: &url::Url,
        rejected: Option<i64>,
    ) -> Result<(Secret, i64), AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let entry = self.entry(&profile.name);
        let needs_reauthorization = |reason: String| AuthorizationError::NeedsReauthorization {
            profile: profile.name.clone(),
            reason,
        };
        if let Some(reason) = entry.dead.locked().clone() {
            return Err(needs_reauthorization(reason));
        }
        let _guard = entry.refresh.lock().await;
        let Some(grant) = self.load(profile, Some(spec), &entry).await? else {
            if own_token_grant(spec.grant) {
                return self.fetch_own_token(profile, spec, &entry).await;
            }
            return Err(AuthorizationError::NotAuthorized(profile.name.clone()));
        };
        if let Some(reason) = grant.needs_reauthorization.clone() {
            return Err(needs_reauthorization(reason));
        }
        Authorizer::check_origin(&profile.name, &parse_origins(&grant.api_origins), url)?;
        let tokens = &grant.tokens;
        let refused_now = rejected == Some(tokens.issued_at_ms);
        if !refused_now && !due(tokens, self.margin_ms(), now_ms()) {
            return Ok((tokens.access_token.clone(), tokens.issued_at_ms));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            // The client's own token is simply fetched again.
            if own_token_grant(spec.grant) {
                return self.fetch_own_token(profile, spec, &entry).await;
            }
            return Err(needs_reauthorization(
                "the access token expired and the provider gave no refresh token".to_string(),
            ));
        };
        Authorizer::check_backoff(&entry)?;
        // The last refresh before this process was interrupted: its refresh token may have been
        // rotated out at the provider, with the answer lost.
        let interrupted = grant.refresh_started_ms.is_some();
        // On disk before the request leaves, so a restart knows a refresh was under way.
        let marked = Grant {
            refresh_started_ms: Some(now_ms()),
            ..grant.clone()
        };
        self.save(&profile.name, &marked).await?;
        let config = client_config(spec, self.token_timeout);
        let mut used = refresh_token;
        let mut answer = oauth::refresh(&self.http, &config, &used, now_ms()).await;
        // Refused: the one it replaced, once (a provider that did not keep the rotation it
        // answered, or that accepts the previous token for a grace period).
        if let (Err(error), Some(previous)) = (&answer, &grant.previous_refresh_token) {
            if error.needs_reauthorization() && previous.expose() != used.expose() {
                tracing::info!(profile = %profile.name, "refresh token refused; trying the one it replaced");
                used = previous.clone();
                answer = oauth::refresh(&self.http, &config, &used, now_ms()).await;
            }
        }
        match answer {
            Ok(mut fresh) => {
                // Nothing but this before the save: the rotated token must reach the disk.
                let rotated = fresh
                    .refresh_token
                    .as_ref()
                    .is_some_and(|new| new.expose() != used.expose());
                // A provider that does not rotate keeps the refresh token it gave before.
                if fresh.refresh_token.is_none() {
                    fresh.refresh_token = Some(used.clone());
                }
                // An answer that does not repeat the scope keeps the granted one (RFC 6749
                // §5.1: omitted, it is the same as requested).
                if fresh.scopes.is_empty() {
                    fresh.scopes = grant.tokens.scopes.clone();
                }
                let previous_refresh_token = if rotated {
                    Some(used)
                } else {
                    grant.previous_refresh_token.clone()
                };
                let access = (fresh.access_token.clone(), fresh.issued_at_ms);
                let refreshed = Grant {
                    tokens: fresh,
                    previous_refresh_token,
                    refresh_started_ms: None,
                    ..grant
                };
                // The rotated refresh token is on disk before the new access token is used.
                self.save(&profile.name, &refreshed).await?;
                self.remember(&entry, Some(refreshed), Some(spec));
                *entry.backoff.locked() = None;
                tracing::info!(profile = %profile.name, "access token refreshed");
                Ok(access)
            }
            Err(error) if error.needs_reauthorization() => {
                let reason = if interrupted {
                    format!("{error} — Bellhop stopped during the previous refresh, and the provider no longer accepts the refresh token it had (it rotated it with an answer that was lost): authorize again")
                } else {
                    error.to_string()
                };
                let dead = Grant {
                    needs_reauthorization: Some(reason.clone()),
                    refresh_started_ms: None,
                    ..grant
                };
                // Kept, so a restart does not try the dead grant again.
                if let Err(save) = self.save(&profile.name, &dead).await {
                    tracing::warn!(profile = %profile.name, error = %save, "could not record that the grant is dead");
                }
                self.remember(&entry, Some(dead), Some(spec));
                tracing::warn!(profile = %profile.name, error = %reason, "refresh refused: authorize the profile again");
                Err(needs_reauthorization(reason))
            }
            Err(error) => {
                Authorizer::back_off(&profile.name, &entry, &error);
                Err(error.into())
            }
        }
    }

    fn check_backoff(entry: &ProfileAuthorization) -> Result<(), AuthorizationError> {
        if let Some((until, _)) = *entry.backoff.locked() {
            let now = Instant::now();
            if now < until {
                return Err(AuthorizationError::BackingOff(
                    (until - now).as_secs().max(1),
                ));
            }
        }
        Ok(())
    }

    /// After a failed token request: wait longer before the next (the server's Retry-After
    /// when given), within 1 s to 5 min.
    fn back_off(profile: &str, entry: &ProfileAuthorization, error: &OAuthError) {
        let mut backoff = entry.backoff.locked();
        let previous = backoff
            .map(|(_, d)| d)
            .unwrap_or(Duration::from_millis(500));
        let wait = match error {
            OAuthError::Unavailable {
                retry_after: Some(after),
                ..
            } => *after,
            _ => previous * 2,
        }
        .clamp(Duration::from_secs(1), Duration::from_secs(300));
        *backoff = Some((Instant::now() + wait, wait));
        tracing::warn!(profile = %profile, error = %error, wait_secs = wait.as_secs(), "token request failed; backing off");
    }

    /// A client-credentials or password grant's token: fetched now (no user, no browser).
    /// Called with the profile's refresh lock held.
    async fn fetch_own_token(
        &self,
        profile: &Profile,
        spec: &OAuth2Spec,
        entry: &ProfileAuthorization,
    ) -> Result<(Secret, i64), AuthorizationError> {
        Authorizer::check_backoff(entry)?;
        let config = client_config(spec, self.token_timeout);
        let result = match (spec.grant, &spec.username, &spec.password) {
            (GrantType::Password, Some(username), Some(password)) => {
                oauth::password(&self.http, &config, username, password, now_ms()).await
            }
            _ => oauth::client_credentials(&self.http, &config, now_ms()).await,
        };
        match result {
            Ok(tokens) => {
                let access = (tokens.access_token.clone(), tokens.issued_at_ms);
                self.keep_new_tokens(profile, spec, entry, tokens).await?;
                Ok(access)
            }
            Err(error) => {
                Authorizer::back_off(&profile.name, entry, &error);
                Err(error.into())
            }
        }
    }

    /// Authorize now, for the grants that need no browser: client credentials and password
    /// fetch their token.
    pub async fn authorize_without_browser(
        &self,
        profile: &Profile,
    ) -> Result<(), AuthorizationError> {
        let spec = oauth_spec(profile)?;
        if !own_token_grant(spec.grant) {
            return Err(AuthorizationError::WrongGrant {
                profile: profile.name.clone(),
                grant: spec.grant.as_str(),
                what: "needs the user: use Request Authorization",
            });
        }
        let entry = self.entry(&profile.name);
        let _guard = entry.refresh.lock().await;
        *entry.backoff.locked() = None;
        self.fetch_own_token(profile, spec, &entry)
            .await
            .map(|_| ())
    }

    /// Starts a device authorization (RFC 8628): asks the provider for a code, then polls in
    /// the background at the provider's interval (slower on `slow_down`) until the user enters
    /// it, refuses, or the code expires. `done` is called when the authorization ends.
    pub async fn begin_device(
        self: &Arc<Self>,
        profile: Arc<Profile>,
        done: Box<dyn Fn() + Send + Sync>,
    ) -> Result<DeviceStart, AuthorizationError> {
        let spec = oauth_spec(&profile)?;
        if spec.grant != GrantType::DeviceCode {
            return Err(AuthorizationError::WrongGrant {
                profile: profile.name.clone(),
                grant: spec.grant.as_str(),
                what: "is not the device flow",
            });
        }
        let started =
            oauth::device_authorization(&self.http, &client_config(spec, self.token_timeout))
                .await?;
        let entry = self.entry(&profile.name);
        let expires_at_ms = now_ms() + started.expires_in.as_millis() as i64;
        *entry.device.locked() = Some(DeviceProgress::Waiting {
            user_code: started.user_code.clone(),
            verification_uri: started.verification_uri.clone(),
            verification_uri_complete: started.verification_uri_complete.clone(),
            expires_at_ms,
        });
        let generation = entry
            .device_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let answer = DeviceStart {
            user_code: started.user_code.clone(),
            verification_uri: started.verification_uri.clone(),
            verification_uri_complete: started.verification_uri_complete.clone(),
            expires_in_secs: started.expires_in.as_secs(),
            interval_secs: started.interval.as_secs(),
        };
        let this = self.clone();
        tokio::spawn(async move {
            this.poll_device(&profile, started, expires_at_ms, generation)
                .await;
            done();
        });
        Ok(answer)
    }

    async fn poll_device(
        &self,
        profile: &Profile,
        started: oauth::DeviceAuthorization,
        expires_at_ms: i64,
        generation: u64,
    ) {
        let Ok(spec) = oauth_spec(profile) else {
            return;
        };
        let config = client_config(spec, self.token_timeout);
        let entry = self.entry(&profile.name);
        let fail = |reason: String| {
            tracing::warn!(profile = %profile.name, reason = %reason, "device authorization ended without tokens");
            *entry.device.locked() = Some(DeviceProgress::Failed(reason));
        };
        let mut interval = started.interval;
        loop {
            tokio::time::sleep(interval).await;
            if entry
                .device_generation
                .load(std::sync::atomic::Ordering::SeqCst)
                != generation
            {
                return; // a newer start or Forget authorization took over
            }
            if now_ms() >= expires_at_ms {
                return fail("the code expired before it was entered: start again".into());
            }
            match oauth::device_token(&self.http, &config, &started.device_code, now_ms()).await {
                Ok(tokens) => {
                    let _guard = entry.refresh.lock().await;
                    if let Err(error) = self.keep_new_tokens(profile, spec, &entry, tokens).await {
                        fail(error.to_string());
                    }
                    return;
                }
                Err(error) => match error.code() {
                    Some("authorization_pending") => {}
                    // RFC 8628 §3.5: five seconds more for this and every later request.
                    Some("slow_down") => interval += Duration::from_secs(5),
                    Some("access_denied") => {
                        return fail("access was denied at the provider".into())
                    }
                    Some("expired_token") | Some("authorization_expired") => {
                        return fail("the code expired before it was entered: start again".into())
                    }
                    _ if error.is_transient() => {
                        interval = (interval * 2).min(Duration::from_secs(60))
                    }
                    _ => return fail(error.to_string()),
                },
            }
        }
    }

    /// A profile's authorization as users see it (reads the store: call it off the async
    /// workers).
    pub fn status(&self, profile: &Profile) -> Result<AuthorizationStatus, AuthorizationError> {
        let spec = any_spec(profile)?;
        let entry = self.entry(&profile.name);
        Ok(match self.cached_or_stored(profile, spec, &entry) {
            Ok(Some(grant)) => match grant.needs_reauthorization {
                Some(reason) => AuthorizationStatus::NeedsReauthorization { reason },
                None => AuthorizationStatus::Authorized {
                    authorized_at: time_text(grant.authorized_at_ms),
                    refreshed_at: time_text(grant.tokens.issued_at_ms),
                    expires_at: grant.tokens.expires_at_ms.map(time_text),
                    scopes: grant.tokens.scopes.clone(),
                    expiring: due(&grant.tokens, self.margin_ms(), now_ms()),
                    can_refresh: grant.tokens.refresh_token.is_some()
                        || spec.is_some_and(|s| own_token_grant(s.grant)),
                    api_origins: grant.api_origins.clone(),
                    authorized_as: grant.identity.clone(),
                    grant: spec.map_or("oauth1", |s| s.grant.as_str()),
                },
            },
            Ok(None) => match entry.device.locked().clone() {
                Some(DeviceProgress::Waiting {
                    user_code,
                    verification_uri,
                    verification_uri_complete,
                    expires_at_ms,
                }) if expires_at_ms > now_ms() => AuthorizationStatus::AwaitingUser {
                    user_code,
                    verification_uri,
                    verification_uri_complete,
                    expires_at: time_text(expires_at_ms),
                },
                Some(DeviceProgress::Failed(reason)) => AuthorizationStatus::Failed { reason },
                _ => AuthorizationStatus::NeverAuthorized,
            },
            Err(error) => AuthorizationStatus::NeedsReauthorization {
                reason: error.to_string(),
            },
        })
    }

    /// Forget authorization: revokes the tokens at the provider when it has a revocation
    /// endpoint (RFC 7009), then wipes them here whatever the provider said. Returns a note
    /// when the provider did not confirm the revocation.
    pub async fn forget(&self, profile: &Profile) -> Result<Option<String>, AuthorizationError> {
        let entry = self.entry(&profile.name);
        entry
            .device_generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        *entry.device.locked() = None;
        let _guard = entry.refresh.lock().await;
        let mut note = None;
        if let Ok(spec) = oauth_spec(profile) {
            if spec.revocation_url.is_none() {
                note = Some(
                    "the tokens are wiped here; nothing was revoked at the provider, because this profile has no revocation_url (a profile that writes its own token_url does not take its provider's): remove the access in your account at the provider if it should end there too"
                        .to_string(),
                );
            } else {
                if let Ok(Some(grant)) = self.load(profile, Some(spec), &entry).await {
                    let config = client_config(spec, self.token_timeout);
                    let tokens = &grant.tokens;
                    // The refresh token first: revoking it ends the whole grant at most
                    // servers (RFC 7009 §2.1); then the access token, for the others.
                    let mut refused = None;
                    if let Some(refresh) = &tokens.refresh_token {
                        refused = oauth::revoke(&self.http, &config, refresh, "refresh_token")
                            .await
                            .err();
                    }
                    let access =
                        oauth::revoke(&self.http, &config, &tokens.access_token, "access_token")
                            .await
                            .err();
                    if let Some(error) = refused.or(access) {
                        let error = revocation_failure(&error);
                        tracing::warn!(profile = %profile.name, error = %error, "revocation not confirmed");
                        note = Some(format!(
                            "the tokens are wiped here, but the provider did not confirm their revocation: {error}"
                        ));
                    } else {
                        tracing::info!(profile = %profile.name, "tokens revoked at the provider");
                    }
                }
            }
        }
        let (store, name) = (self.store.clone(), profile.name.clone());
        tokio::task::spawn_blocking(move || store.delete(&name))
            .await
            .map_err(|e| AuthorizationError::Interrupted(e.to_string()))??;
        self.remember(&entry, None, None);
        Ok(note)
    }

    /// OAuth 1.0a, step 1: temporary credentials from the provider, then the address to send
    /// the browser to. The temporary token is the pending authorization's key.
    pub async fn begin_oauth1(&self, profile: &Profile) -> Result<url::Url, AuthorizationError> {
        let spec = oauth1_spec(profile)?;
        oauth1_origins(profile, spec)?;
        let callback = match &spec.redirect_url {
            Some(url) => url.to_string(),
            None => self.callback_uri(false),
        };
        let temporary = oauth::one::temporary_credentials(
            &self.http,
            &spec.signer(),
            &spec.request_token_url,
            &callback,
            self.token_timeout,
        )
        .await?;
        let pending = oauth::PendingAuthorization::new(&profile.name, &callback)
            .with_oauth1_secret(temporary.secret.clone());
        self.states.issue_as(&temporary.token, pending);
        let mut url = spec.authorize_url.clone();
        url.query_pairs_mut()
            .append_pair("oauth_token", &temporary.token);
        Ok(url)
    }

    /// OAuth 1.0a, step 3: token credentials for the callback's verifier, kept like any grant.
    pub async fn complete_oauth1(
        &self,
        profile: &Profile,
        pending: &oauth::PendingAuthorization,
        temporary_token: &str,
        verifier: &str,
    ) -> Result<(), AuthorizationError> {
        let spec = oauth1_spec(profile)?;
        let Some(temporary_secret) = &pending.oauth1_secret else {
            return Err(AuthorizationError::State(oauth::StateError::Unknown));
        };
        let credentials = oauth::one::token_credentials(
            &self.http,
            &spec.signer(),
            &spec.access_token_url,
            (temporary_token, temporary_secret),
            verifier,
            self.token_timeout,
        )
        .await?;
        let mut extra = credentials.extra;
        extra.insert(
            "oauth_token_secret".into(),
            credentials.secret.expose().into(),
        );
        let tokens = TokenSet {
            access_token: Secret::new(credentials.token),
            refresh_token: None,
            token_type: "OAuth".into(),
            scopes: Vec::new(),
            expires_at_ms: None,
            issued_at_ms: now_ms(),
            extra,
        };
        let grant = Grant::new(tokens, oauth1_origins(profile, spec)?);
        let entry = self.entry(&profile.name);
        let _guard = entry.refresh.lock().await;
        self.save(&profile.name, &grant).await?;
        self.remember(&entry, Some(grant), None);
        tracing::info!(profile = %profile.name, grant = "oauth1", "profile authorized");
        Ok(())
    }

    /// The signed `Authorization: OAuth …` header of an OAuth 1.0a profile's request.
    pub async fn oauth1_header(
        &self,
        profile: &Profile,
        method: &str,
        url: &url::Url,
        form_body: Option<&str>,
    ) -> Result<reqwest::header::HeaderValue, AuthorizationError> {
        let spec = oauth1_spec(profile)?;
        let entry = self.entry(&profile.name);
        let Some(grant) = self.load(profile, None, &entry).await? else {
            return Err(AuthorizationError::NotAuthorized(profile.name.clone()));
        };
        if let Some(reason) = grant.needs_reauthorization {
            return Err(AuthorizationError::NeedsReauthorization {
                profile: profile.name.clone(),
                reason,
            });
        }
        Authorizer::check_origin(&profile.name, &parse_origins(&grant.api_origins), url)?;
        let secret = grant
            .tokens
            .extra
            .get("oauth_token_secret")
            .and_then(|v| v.as_str())
            .map(Secret::new)
            .unwrap_or_else(|| Secret::new(""));
        let header = spec.signer().header(
            method,
            url,
            form_body,
            Some((grant.tokens.access_token.expose(), &secret)),
            &[],
        )?;
        let mut value = reqwest::header::HeaderValue::from_str(&header).map_err(|_| {
            AuthorizationError::Protocol(OAuthError::Parse(
                "the OAuth header cannot be sent".into(),
            ))
        })?;
        value.set_sensitive(true);
        Ok(value)
    }

    /// Reads an authorization server's metadata from its issuer URL (RFC 8414 / OpenID
    /// Connect discovery), without following redirects.
    pub async fn discover(
        &self,
        issuer: &url::Url,
    ) -> Result<oauth::ServerMetadata, AuthorizationError> {
        Ok(oauth::discover(&self.http, issuer, self.token_timeout).await?)
    }

    /// Asks the provider whether the profile's access token is still active (RFC 7662).
    pub async fn introspect(
        &self,
        profile: &Profile,
    ) -> Result<oauth::Introspection, AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let entry = self.entry(&profile.name);
        let Some(grant) = self.load(profile, Some(spec), &entry).await? else {
            return Err(AuthorizationError::NotAuthorized(profile.name.clone()));
        };
        Ok(oauth::introspect(
            &self.http,
            &client_config(spec, self.token_timeout),
            &grant.tokens.access_token,
            "access_token",
        )
        .await?)
    }

    /// Asks the provider's profile endpoint who the token belongs to ("Ann (ann@…)"), through
    /// the definition's display-name and e-mail templates. Best effort: `None` when the
    /// provider has no such endpoint or it fails.
    async fn identity(
        &self,
        profile: &Profile,
        spec: &OAuth2Spec,
        tokens: &TokenSet,
    ) -> Option<String> {
        let userinfo = spec.userinfo.as_ref()?;
        // A URL from the token answer is followed only to the token endpoint's origin or an
        // API origin: the bearer token goes nowhere else.
        let from_answer = userinfo
            .url_field
            .as_ref()
            .and_then(|field| tokens.extra.get(field)?.as_str())
            .and_then(|text| url::Url::parse(text).ok())
            .filter(|url| {
                let allowed = spec.token_url.origin() == url.origin()
                    || granted_origins(profile, spec, Some(tokens))
                        .is_ok_and(|origins| origins.contains(&url.origin().ascii_serialization()));
                if !allowed {
                    tracing::warn!(url = %url.origin().ascii_serialization(), "the token answer's profile URL is on another origin: not called");
                }
                allowed
            });
        let mut url = from_answer.or_else(|| userinfo.url.clone())?;
        let mut headers = reqwest::header::HeaderMap::new();
        place_token(
            spec,
            token_value(spec, &tokens.access_token)?,
            &mut url,
            &mut headers,
        );
        let request = if userinfo.post {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        let response = request
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "the profile endpoint refused"
            );
            return None;
        }
        let bytes = oauth::read_at_most(response, 256 * 1024).await.ok()?;
        let answer: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        describe_identity(userinfo, &answer)
    }
}

/// A refused or failed revocation in words that name the revocation endpoint (the protocol's
/// errors speak of the token endpoint, where most requests go).
fn revocation_failure(error: &oauth::OAuthError) -> String {
    match error {
        oauth::OAuthError::Status(status) | oauth::OAuthError::Unavailable { status, .. } => {
            format!("the revocation endpoint answered HTTP {status}")
        }
        oauth::OAuthError::Transport(why) => format!("cannot reach the revocation endpoint: {why}"),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A failed revocation names the revocation endpoint, not the token endpoint.
    #[test]
    fn revocation_failures_name_the_revocation_endpoint() {
        for error in [
            oauth::OAuthError::Status(503),
            oauth::OAuthError::Unavailable {
                status: 502,
                retry_after: None,
            },
            oauth::OAuthError::Transport("connection refused".into()),
        ] {
            let said = revocation_failure(&error);
            assert!(
                said.contains("revocation endpoint") && !said.contains("token endpoint"),
                "{said}"
            );
        }
    }

    #[test]
    fn same_origin_compares_scheme_host_and_port() {
        let origin = |text: &str| url::Url::parse(text).map(|u| u.origin());
        let url = |text: &str| url::Url::parse(text);
        let (Ok(api), Ok(ip)) = (
            origin("https://api.example.com"),
            origin("http://127.0.0.1:9"),
        ) else {
            panic!("bad test URLs")
        };
        let cases = [
            (&api, "https://api.example.com/users/@me?x=1", true),
            (&api, "https://api.example.com:443/me", true),
            (&api, "http://api.example.com/me", false),
            (&api, "https://api.example.com:8443/me", false),
            (&api, "https://evil.example/api.example.com", false),
            (&api, "https://api.example.com.evil.example/", false),
            (&ip, "http://127.0.0.1:9/me", true),
            (&ip, "http://127.0.0.1:10/me", false),
            (&ip, "http://localhost:9/me", false),
        ];
        for (granted, requested, expected) in cases {
            let requested_url = url(requested).unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(
                same_origin(granted, &requested_url),
                expected,
                "{requested}"
            );
            assert_eq!(
                granted == &requested_url.origin(),
                expected,
                "agrees with url::Origin for {requested}"
            );
        }
    }

    #[test]
    fn refresh_falls_due_at_most_half_way_through_a_token_life() {
        let tokens = |issued: i64, expires: Option<i64>| {
            let body = r#"{"access_token":"a","expires_in":1}"#;
            let mut set =
                oauth::parse_token_response(body, None, issued).unwrap_or_else(|e| panic!("{e}"));
            set.expires_at_ms = expires;
            set
        };
        // A 5 s token with a 60 s margin: due after 2.5 s.
        assert_eq!(refresh_due_at(&tokens(0, Some(5_000)), 60_000), Some(2_500));
        // A one-hour token: due 60 s before it expires.
        assert_eq!(
            refresh_due_at(&tokens(0, Some(3_600_000)), 60_000),
            Some(3_540_000)
        );
        assert_eq!(refresh_due_at(&tokens(0, None), 60_000), None);
        assert!(!due(&tokens(0, Some(5_000)), 60_000, 1_000));
        assert!(due(&tokens(0, Some(5_000)), 60_000, 2_600));
    }
}
