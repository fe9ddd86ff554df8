//! The device flow (RFC 8628 and the variants providers describe): starting it, and polling in the background until the user allows, denies or the code expires.

use super::*;

impl Authorizer {
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
        let expires_at_ms = self.clock.now_ms() + started.expires_in.as_millis() as i64;
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

    pub(super) async fn poll_device(
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
            self.clock.sleep(interval).await;
            if entry
                .device_generation
                .load(std::sync::atomic::Ordering::SeqCst)
                != generation
            {
                return; // a newer start or Forget authorization took over
            }
            if self.clock.now_ms() >= expires_at_ms {
                return fail("the code expired before it was entered: start again".into());
            }
            match oauth::device_token(
                &self.http,
                &config,
                &started.device_code,
                self.clock.now_ms(),
            )
            .await
            {
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
}
