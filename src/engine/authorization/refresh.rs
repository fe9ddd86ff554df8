//! Access tokens for runs: the cached grant, refreshing once per expiry under one lock per profile (marked on disk first, the replaced token kept), backing off after failures, and the client's own tokens (client credentials, password).

use super::*;

/// When a token is due for a refresh: `margin_ms` before it expires, but never earlier than
/// half-way through its lifetime (a 5 s token with a 60 s margin is refreshed after 2.5 s, not
/// on every use). `None`: it never expires.
pub(super) fn refresh_due_at(tokens: &TokenSet, margin_ms: i64) -> Option<i64> {
    tokens.expires_at_ms.map(|expires| {
        let lifetime = (expires - tokens.issued_at_ms).max(0);
        expires - margin_ms.min(lifetime / 2)
    })
}

pub(super) fn due(tokens: &TokenSet, margin_ms: i64, now: i64) -> bool {
    refresh_due_at(tokens, margin_ms).is_some_and(|at| at <= now)
}

impl Authorizer {
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
    pub(super) fn remember(
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

    pub(super) fn cached(entry: &ProfileAuthorization) -> Option<Grant> {
        entry.grant.locked().clone()
    }

    /// Makes a grant just read from the store the cached one. A grant of the first version,
    /// which did not record its origins, is bound to the profile's origins now.
    pub(super) fn adopt(
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
    pub(super) fn cached_or_stored(
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
    pub(super) async fn load(
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
        let fresh = ready.refresh_at.is_none_or(|at| at > self.clock.now_ms());
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
        if !refused_now && !due(tokens, self.margin_ms(), self.clock.now_ms()) {
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
        self.check_backoff(&entry)?;
        // The last refresh before this process was interrupted: its refresh token may have been
        // rotated out at the provider, with the answer lost.
        let interrupted = grant.refresh_started_ms.is_some();
        // On disk before the request leaves, so a restart knows a refresh was under way.
        let marked = Grant {
            refresh_started_ms: Some(self.clock.now_ms()),
            ..grant.clone()
        };
        self.save(&profile.name, &marked).await?;
        let config = client_config(spec, self.token_timeout);
        let mut used = refresh_token;
        let mut answer = oauth::refresh(&self.http, &config, &used, self.clock.now_ms()).await;
        // Refused: the one it replaced, once (a provider that did not keep the rotation it
        // answered, or that accepts the previous token for a grace period).
        if let (Err(error), Some(previous)) = (&answer, &grant.previous_refresh_token) {
            if error.needs_reauthorization() && previous.expose() != used.expose() {
                tracing::info!(profile = %profile.name, "refresh token refused; trying the one it replaced");
                used = previous.clone();
                answer = oauth::refresh(&self.http, &config, &used, self.clock.now_ms()).await;
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
                self.back_off(&profile.name, &entry, &error);
                Err(error.into())
            }
        }
    }

    pub(super) fn check_backoff(
        &self,
        entry: &ProfileAuthorization,
    ) -> Result<(), AuthorizationError> {
        if let Some((until_ms, _)) = *entry.backoff.locked() {
            let left_ms = until_ms - self.clock.now_ms();
            if left_ms > 0 {
                return Err(AuthorizationError::BackingOff(
                    (u64::try_from(left_ms).unwrap_or_default() / 1000).max(1),
                ));
            }
        }
        Ok(())
    }

    /// After a failed token request: wait longer before the next (the server's Retry-After
    /// when given), within 1 s to 5 min.
    pub(super) fn back_off(&self, profile: &str, entry: &ProfileAuthorization, error: &OAuthError) {
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
        let wait_ms = i64::try_from(wait.as_millis()).unwrap_or(i64::MAX);
        *backoff = Some((self.clock.now_ms().saturating_add(wait_ms), wait));
        tracing::warn!(profile = %profile, error = %error, wait_secs = wait.as_secs(), "token request failed; backing off");
    }

    /// A client-credentials or password grant's token: fetched now (no user, no browser).
    /// Called with the profile's refresh lock held.
    pub(super) async fn fetch_own_token(
        &self,
        profile: &Profile,
        spec: &OAuth2Spec,
        entry: &ProfileAuthorization,
    ) -> Result<(Secret, i64), AuthorizationError> {
        self.check_backoff(entry)?;
        let config = client_config(spec, self.token_timeout);
        let result = match (spec.grant, &spec.username, &spec.password) {
            (GrantType::Password, Some(username), Some(password)) => {
                oauth::password(&self.http, &config, username, password, self.clock.now_ms()).await
            }
            _ => oauth::client_credentials(&self.http, &config, self.clock.now_ms()).await,
        };
        match result {
            Ok(tokens) => {
                let access = (tokens.access_token.clone(), tokens.issued_at_ms);
                self.keep_new_tokens(profile, spec, entry, tokens).await?;
                Ok(access)
            }
            Err(error) => {
                self.back_off(&profile.name, entry, &error);
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
}
