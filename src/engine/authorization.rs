//! OAuth2 for profiles: Request Authorization (authorize URL with state and PKCE), the callback's
//! code exchange, and access tokens for runs — refreshed ahead of expiry, once more when the API
//! says the token expired, one refresh at a time per profile. A dead grant (`invalid_grant`)
//! marks the profile "needs re-authorization" and stops further refresh attempts; transient
//! failures back off within bounds.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::oauth::{
    self, ClientAuthStyle, ClientConfig, OAuthError, StateError, StateStore, TokenSet,
};
use crate::profile::{ClientAuth, OAuth2Spec, Profile};
use crate::secret::Secret;
use crate::tokens::{TokenStore, TokenStoreError};

/// A profile's authorization as users see it.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum AuthorizationStatus {
    NeverAuthorized,
    Authorized {
        authorized_at: String,
        expires_at: Option<String>,
        scopes: Vec<String>,
        /// The access token expires within the refresh margin.
        expiring: bool,
        can_refresh: bool,
    },
    NeedsReauthorization {
        reason: String,
    },
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
    #[error(transparent)]
    State(#[from] StateError),
    #[error("{0}")]
    Protocol(#[from] OAuthError),
    #[error("{0}")]
    Store(#[from] TokenStoreError),
}

#[derive(Default)]
struct ProfileAuthorization {
    /// Held while tokens are read, refreshed and saved: one refresh at a time.
    refresh: tokio::sync::Mutex<()>,
    tokens: Mutex<Option<TokenSet>>,
    /// The Authorization header of the current access token, ready to send, with the token's
    /// issue time (its identity) and expiry.
    ready: Mutex<Option<(reqwest::header::HeaderValue, i64, Option<i64>)>>,
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
        scopes: spec.scopes.clone(),
        extra_authorize_params: spec
            .extra_authorize_params
            .iter()
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
        client_auth: match spec.client_auth {
            ClientAuth::Basic => ClientAuthStyle::Basic,
            ClientAuth::Body => ClientAuthStyle::Body,
        },
        pkce: spec.pkce,
        timeout,
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

    fn entry(&self, profile: &str) -> Arc<ProfileAuthorization> {
        let mut profiles = self.profiles.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(entry) = profiles.get(profile) {
            return entry.clone();
        }
        profiles.entry(profile.to_string()).or_default().clone()
    }

    /// The redirect URI registered at the provider: the profile's own, or the callback page.
    pub fn redirect_uri(&self, spec: &OAuth2Spec) -> String {
        match &spec.redirect_url {
            Some(url) => url.to_string(),
            None => self
                .public_base_url
                .join(CALLBACK_PATH)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| format!("{}/{CALLBACK_PATH}", self.public_base_url)),
        }
    }

    /// Request Authorization: the URL to send the browser to.
    pub fn begin(&self, profile: &Profile) -> Result<url::Url, AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let redirect_uri = self.redirect_uri(spec);
        Ok(oauth::authorization_url(
            &client_config(spec, self.token_timeout),
            &profile.name,
            &redirect_uri,
            &self.states,
        ))
    }

    /// Takes the pending authorization of a callback's `state` (single use).
    pub fn take_state(
        &self,
        state: &str,
    ) -> Result<oauth::PendingAuthorization, AuthorizationError> {
        Ok(self.states.take(state)?)
    }

    /// Finishes an authorization: exchanges the code and stores the tokens.
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
        self.store.save(&profile.name, &tokens)?;
        Authorizer::remember(&entry, Some(tokens), &spec.header_template);
        *entry.dead.lock().unwrap_or_else(|p| p.into_inner()) = None;
        *entry.backoff.lock().unwrap_or_else(|p| p.into_inner()) = None;
        tracing::info!(profile = %profile.name, "profile authorized");
        Ok(())
    }

    /// Makes `tokens` the profile's current tokens, with their header ready.
    fn remember(entry: &ProfileAuthorization, tokens: Option<TokenSet>, template: &str) {
        let ready = tokens.as_ref().and_then(|t| {
            let mut value = reqwest::header::HeaderValue::from_str(
                &template.replace("{AccessToken}", t.access_token.expose()),
            )
            .ok()?;
            value.set_sensitive(true);
            Some((value, t.issued_at_ms, t.expires_at_ms))
        });
        *entry.ready.lock().unwrap_or_else(|p| p.into_inner()) = ready;
        *entry.tokens.lock().unwrap_or_else(|p| p.into_inner()) = tokens;
    }

    fn cached_or_stored(
        &self,
        profile: &str,
        template: &str,
        entry: &ProfileAuthorization,
    ) -> Result<Option<TokenSet>, AuthorizationError> {
        let cached = entry
            .tokens
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if cached.is_some() {
            return Ok(cached);
        }
        let stored = self.store.load(profile)?;
        Authorizer::remember(entry, stored.clone(), template);
        Ok(stored)
    }

    /// The hot path, with no future and no copy of the token: the ready Authorization header of
    /// the cached access token and its identity, when it is far from expiry and the grant is
    /// alive. `None` means: use [`Self::access_token`].
    pub fn fresh_header(&self, profile: &str) -> Option<(reqwest::header::HeaderValue, i64)> {
        let entry = self.entry(profile);
        if entry
            .dead
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .is_some()
        {
            return None;
        }
        let ready = entry.ready.lock().unwrap_or_else(|p| p.into_inner());
        let (header, issued, expires) = ready.as_ref()?;
        let margin = self.refresh_margin.as_millis() as i64;
        let fresh = expires.is_none_or(|at| at - margin > now_ms());
        fresh.then(|| (header.clone(), *issued))
    }

    /// An access token for a run, with its identity (issue time). `rejected` is the identity of
    /// a token the API just refused: it is refreshed (unless another caller already did).
    pub async fn access_token(
        &self,
        profile: &Profile,
        rejected: Option<i64>,
    ) -> Result<(Secret, i64), AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let entry = self.entry(&profile.name);
        if let Some(reason) = entry.dead.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(AuthorizationError::NeedsReauthorization {
                profile: profile.name.clone(),
                reason,
            });
        }
        let margin = self.refresh_margin.as_millis() as i64;
        // The common case needs no lock: a cached token far from expiry.
        if rejected.is_none() {
            if let Some(tokens) = entry
                .tokens
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .as_ref()
            {
                if !tokens.expires_within(now_ms(), margin) {
                    return Ok((tokens.access_token.clone(), tokens.issued_at_ms));
                }
            }
        }
        let _guard = entry.refresh.lock().await;
        if let Some(reason) = entry.dead.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Err(AuthorizationError::NeedsReauthorization {
                profile: profile.name.clone(),
                reason,
            });
        }
        let Some(tokens) = self.cached_or_stored(&profile.name, &spec.header_template, &entry)?
        else {
            return Err(AuthorizationError::NotAuthorized(profile.name.clone()));
        };
        let refused_now = rejected == Some(tokens.issued_at_ms);
        if !refused_now && !tokens.expires_within(now_ms(), margin) {
            return Ok((tokens.access_token, tokens.issued_at_ms));
        }
        let Some(refresh_token) = tokens.refresh_token.clone() else {
            let reason =
                "the access token expired and the provider gave no refresh token".to_string();
            return Err(AuthorizationError::NeedsReauthorization {
                profile: profile.name.clone(),
                reason,
            });
        };
        if let Some((until, _)) = *entry.backoff.lock().unwrap_or_else(|p| p.into_inner()) {
            let now = Instant::now();
            if now < until {
                return Err(AuthorizationError::BackingOff(
                    (until - now).as_secs().max(1),
                ));
            }
        }
        match oauth::refresh(
            &self.http,
            &client_config(spec, self.token_timeout),
            &refresh_token,
            now_ms(),
        )
        .await
        {
            Ok(fresh) => {
                // The rotated refresh token is on disk before the new access token is used.
                self.store.save(&profile.name, &fresh)?;
                let access = (fresh.access_token.clone(), fresh.issued_at_ms);
                Authorizer::remember(&entry, Some(fresh), &spec.header_template);
                *entry.backoff.lock().unwrap_or_else(|p| p.into_inner()) = None;
                tracing::info!(profile = %profile.name, "access token refreshed");
                Ok(access)
            }
            Err(error) if error.needs_reauthorization() => {
                let reason = error.to_string();
                *entry.dead.lock().unwrap_or_else(|p| p.into_inner()) = Some(reason.clone());
                tracing::warn!(profile = %profile.name, error = %reason, "refresh refused: authorize the profile again");
                Err(AuthorizationError::NeedsReauthorization {
                    profile: profile.name.clone(),
                    reason,
                })
            }
            Err(error) => {
                let mut backoff = entry.backoff.lock().unwrap_or_else(|p| p.into_inner());
                let previous = backoff
                    .map(|(_, d)| d)
                    .unwrap_or(Duration::from_millis(500));
                let wait = match &error {
                    OAuthError::Unavailable {
                        retry_after: Some(after),
                        ..
                    } => *after,
                    _ => previous * 2,
                }
                .clamp(Duration::from_secs(1), Duration::from_secs(300));
                *backoff = Some((Instant::now() + wait, wait));
                tracing::warn!(profile = %profile.name, error = %error, wait_secs = wait.as_secs(), "refresh failed; backing off");
                Err(error.into())
            }
        }
    }

    pub fn status(&self, profile: &Profile) -> Result<AuthorizationStatus, AuthorizationError> {
        let spec = oauth_spec(profile)?;
        let entry = self.entry(&profile.name);
        if let Some(reason) = entry.dead.lock().unwrap_or_else(|p| p.into_inner()).clone() {
            return Ok(AuthorizationStatus::NeedsReauthorization { reason });
        }
        Ok(
            match self.cached_or_stored(&profile.name, &spec.header_template, &entry) {
                Ok(Some(tokens)) => AuthorizationStatus::Authorized {
                    authorized_at: time_text(tokens.issued_at_ms),
                    expires_at: tokens.expires_at_ms.map(time_text),
                    scopes: tokens.scopes.clone(),
                    expiring: tokens
                        .expires_within(now_ms(), self.refresh_margin.as_millis() as i64),
                    can_refresh: tokens.refresh_token.is_some(),
                },
                Ok(None) => AuthorizationStatus::NeverAuthorized,
                Err(error) => AuthorizationStatus::NeedsReauthorization {
                    reason: error.to_string(),
                },
            },
        )
    }

    /// Forget authorization: wipes the stored tokens.
    pub fn forget(&self, profile: &str) -> Result<(), AuthorizationError> {
        let entry = self.entry(profile);
        self.store.delete(profile)?;
        Authorizer::remember(&entry, None, "");
        *entry.dead.lock().unwrap_or_else(|p| p.into_inner()) = None;
        Ok(())
    }
}
