//! OAuth 1.0a: temporary credentials, the verifier's exchange, and each request signed.

use super::*;

impl Authorizer {
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
            issued_at_ms: self.clock.now_ms(),
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
}
