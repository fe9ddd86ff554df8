//! Ending and checking grants: Forget (revoke at the provider, then wipe), introspection (RFC 7662) and discovery (RFC 8414).

use super::*;

/// A refused or failed revocation in words that name the revocation endpoint (the protocol's
/// errors speak of the token endpoint, where most requests go).
pub(super) fn revocation_failure(error: &oauth::OAuthError) -> String {
    match error {
        oauth::OAuthError::Status(status) | oauth::OAuthError::Unavailable { status, .. } => {
            format!("the revocation endpoint answered HTTP {status}")
        }
        oauth::OAuthError::Transport { what, .. } => {
            format!("cannot reach the revocation endpoint: {what}")
        }
        other => other.to_string(),
    }
}

impl Authorizer {
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

    /// Reads an authorization server's metadata from its issuer URL (RFC 8414 / OpenID
    /// Connect discovery), without following redirects.
    pub async fn discover(
        &self,
        issuer: &url::Url,
    ) -> Result<oauth::ServerMetadata, AuthorizationError> {
        Ok(oauth::discover(&self.http, issuer, self.token_timeout).await?)
    }
}
