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
//!
//! This file holds the shared state and the browser grant; one file per other concern: `origins`
//! (where a token may go), `refresh` (tokens for runs), `device` (the device flow), `oauth1`,
//! `identity` ("authorized as"), `revocation` (forget, introspection, discovery).

mod device;
mod identity;
mod oauth1;
mod origins;
mod refresh;
mod revocation;

pub use identity::fill_identity_template;
use origins::*;
pub use origins::{place_token, token_value};
use refresh::*;
#[cfg(test)]
use revocation::revocation_failure;

use crate::oauth::{
    self, ClientAuthStyle, ClientConfig, OAuthError, StateError, StateStore, TokenSet,
};
use crate::profile::{ClientAuth, GrantType, OAuth2Spec, Profile};
use crate::secret::Secret;
use crate::sync::Locked;
use crate::tokens::{Grant, TokenStore, TokenStoreError};
use serde::Serialize;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::clock::Clock;

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
    /// Until when (the clock's ms) token requests wait, and the last wait.
    backoff: Mutex<Option<(i64, Duration)>>,
}

pub struct Authorizer {
    store: Arc<TokenStore>,
    states: StateStore,
    http: reqwest::Client,
    public_base_url: url::Url,
    refresh_margin: Duration,
    token_timeout: Duration,
    profiles: Mutex<HashMap<String, Arc<ProfileAuthorization>>>,
    /// What token expiry, refresh margins, back-off and device flows read the time from.
    clock: Clock,
}

/// The path of the callback page under the public base URL, and the family's legacy path.
pub const CALLBACK_PATH: &str = "oauth2/callback";

pub const LEGACY_CALLBACK_PATH: &str = "oauth2_callback.html";

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

impl Authorizer {
    pub fn new(
        store: Arc<TokenStore>,
        public_base_url: url::Url,
        refresh_margin: Duration,
    ) -> Result<Authorizer, reqwest::Error> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .pool_idle_timeout(crate::net::POOL_IDLE_TIMEOUT)
            .connect_timeout(Duration::from_secs(10))
            .user_agent(concat!("bellhop/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Authorizer {
            store,
            states: StateStore::default(),
            http,
            public_base_url,
            refresh_margin,
            token_timeout: Duration::from_secs(30),
            profiles: Mutex::new(HashMap::new()),
            clock: Clock::system(),
        })
    }

    /// Reads the time from `clock` (the system's by default); the pending authorizations too.
    pub fn with_clock(mut self, clock: Clock) -> Authorizer {
        self.states = StateStore::with_clock(clock.clone());
        self.clock = clock;
        self
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
            self.clock.now_ms(),
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
            self.clock.now_ms(),
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
                    expiring: due(&grant.tokens, self.margin_ms(), self.clock.now_ms()),
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
                }) if expires_at_ms > self.clock.now_ms() => AuthorizationStatus::AwaitingUser {
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
            oauth::OAuthError::Transport {
                what: "connection refused".into(),
                source: None,
            },
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
