//! The engine's one door for adapters (web, CLI, the event runner, the MQTT bridge):
//! the commands they may give — read and set devices and globals, evaluate in the sandbox,
//! reload, authorize, forget, flush — and the event bus they may listen to. Adapters never reach
//! into the device hub or the authorizer themselves (`tests/architecture.rs` checks it).

use crate::sync::Locked;
use std::sync::Arc;

use super::authorization::{AuthorizationError, AuthorizationStatus};
use super::bus::{HubEvent, Subscription};
use super::{Engine, HubEnvironment};
use crate::devices::{Device, Global, StoreError, StoreHealth};
use crate::expr::{self, CompileErrors, CompileWarning, Document, EvalError, Scope, Value};
use crate::oauth::PendingAuthorization;
use crate::profile::{AuthSpec, Profile};
use crate::secret::Secret;

/// What the sandbox evaluates against.
pub enum SandboxInput {
    /// Text given with the expression.
    Text(String),
    /// The last response of a profile.
    LastResponse(String),
    Nothing,
}

/// A sandbox result.
pub struct Evaluation {
    pub value: Value,
    pub warnings: Vec<CompileWarning>,
}

/// What one element of a device box (an expression between `&&&` / `&&`) gives over a
/// profile's last response: its value as text (at most [`PREVIEW_TEXT_CHARS`] characters), or
/// the problem and its 1-based character column in the box.
#[derive(Debug, Clone, PartialEq)]
pub enum ElementPreview {
    Value(String),
    Problem { message: String, column: usize },
}

/// The most elements of one box a preview evaluates (each parses the last response anew).
pub const PREVIEW_ELEMENTS: usize = 8;
/// The longest value text a preview shows.
pub const PREVIEW_TEXT_CHARS: usize = 200;
/// The longest box a preview reads (splitting a box costs memory per element).
pub const PREVIEW_BOX_BYTES: usize = 64 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("profile `{0}` has no response yet: run it first")]
    NoResponse(String),
    #[error("{0}")]
    Compile(CompileErrors),
    #[error("{0}")]
    Eval(EvalError),
}

/// How an adapter is doing, as it last said (shown by the health API and the UI).
#[derive(Debug, Clone, serde::Serialize)]
pub struct AdapterHealth {
    pub ok: bool,
    pub detail: String,
    pub since: String,
}

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DoorError {
    #[error("no profile named `{0}` is loaded")]
    UnknownProfile(String),
    #[error("OAuth2 is not available in this process")]
    NoOAuth,
    #[error(transparent)]
    Authorization(#[from] AuthorizationError),
    /// The provider's redirect says no, or cannot be trusted; nothing was stored.
    #[error("{0}")]
    Redirect(String),
}

impl Engine {
    /// Listens to what happens in the hub.
    pub fn subscribe(&self) -> Subscription {
        self.bus.subscribe()
    }

    pub fn devices(&self) -> Vec<Device> {
        self.hub.list()
    }

    pub fn device(&self, reference: u64) -> Option<Device> {
        self.hub.get(reference)
    }

    /// A device's recorded changes from `since_ms` on, oldest first, the newest `limit` of them.
    /// Reads the store: call it off the async workers.
    pub fn device_history(
        &self,
        reference: u64,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::devices::HistoryPoint>, StoreError> {
        self.hub.history(
            crate::devices::HistoryOf::Device(reference),
            since_ms,
            limit,
        )
    }

    /// A global's recorded changes from `since_ms` on, oldest first (the newest `limit`).
    pub fn global_history(
        &self,
        name: &str,
        since_ms: i64,
        limit: usize,
    ) -> Result<Vec<crate::devices::HistoryPoint>, StoreError> {
        self.hub
            .history(crate::devices::HistoryOf::Global(name), since_ms, limit)
    }

    pub fn device_count(&self) -> usize {
        self.hub.len()
    }

    /// Sets a device's value and/or string (manual control); the new state.
    pub async fn set_device(
        &self,
        reference: u64,
        value: Option<f64>,
        string: Option<String>,
    ) -> Result<Device, StoreError> {
        self.hub.set(reference, value, string).await?;
        self.hub
            .get(reference)
            .ok_or(StoreError::UnknownDevice(reference))
    }

    /// Deletes a device and its history; its last state.
    pub fn remove_device(&self, reference: u64) -> Result<Device, StoreError> {
        self.hub.remove(reference)
    }

    pub fn globals(&self) -> Vec<Global> {
        self.hub.globals()
    }

    pub fn global(&self, name: &str) -> Option<Global> {
        self.hub.global(name)
    }

    pub fn set_global(
        &self,
        name: &str,
        value: Option<f64>,
        string: Option<String>,
    ) -> Result<Global, StoreError> {
        self.hub.set_global(name, value, string)
    }

    /// An adapter says how it is doing (a change of state is logged by the adapter itself).
    pub fn report_adapter(&self, name: &str, ok: bool, detail: impl Into<String>) {
        let detail = detail.into();
        let mut adapters = self.adapters.locked();
        let same = adapters
            .get(name)
            .is_some_and(|h| h.ok == ok && h.detail == detail);
        if !same {
            adapters.insert(
                name.to_string(),
                AdapterHealth {
                    ok,
                    detail,
                    since: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                },
            );
        }
    }

    /// What each adapter last said of its health.
    pub fn adapters(&self) -> std::collections::BTreeMap<String, AdapterHealth> {
        self.adapters.locked().clone()
    }

    /// How the device store's writer is doing.
    pub fn store_health(&self) -> Option<StoreHealth> {
        self.hub.store_health()
    }

    /// Commits everything written so far and waits until it is durable.
    pub async fn flush(&self) -> Result<(), StoreError> {
        self.hub.flush().await
    }

    /// Commits what is pending and stops the store's writer.
    pub fn close(&self) {
        self.hub.close();
    }

    /// The sandbox: a bare expression or the family's `${ … }` form, against devices, globals
    /// and the given input. Blocking work (a JSONPath over a large response): call it off the
    /// async workers.
    pub fn evaluate(&self, source: &str, input: SandboxInput) -> Result<Evaluation, SandboxError> {
        let text: Arc<str> = match input {
            SandboxInput::Text(text) => text.into(),
            SandboxInput::LastResponse(profile) => self
                .last_response(&profile)
                .ok_or(SandboxError::NoResponse(profile))?,
            SandboxInput::Nothing => "".into(),
        };
        let expression =
            expr::Expression::compile_sandbox(source).map_err(SandboxError::Compile)?;
        let document = Document::new(text, expression.plan());
        let environment = HubEnvironment::new(&self.hub);
        let value = expression
            .evaluate(&Scope::new(&document, &environment))
            .map_err(SandboxError::Eval)?;
        Ok(Evaluation {
            value,
            warnings: expression.warnings().to_vec(),
        })
    }

    /// Previews device boxes (their source as typed in the editor) over `profile`'s last
    /// response, element by element (empty elements skipped, the first [`PREVIEW_ELEMENTS`] of
    /// each box); `None` when the profile has no response yet.
    pub fn preview_boxes(
        &self,
        profile: &str,
        boxes: &[&str],
    ) -> Result<Option<Vec<Vec<ElementPreview>>>, DoorError> {
        if self.profiles().get(profile).is_none() {
            return Err(DoorError::UnknownProfile(profile.to_string()));
        }
        if self.last_response(profile).is_none() {
            return Ok(None);
        }
        let column_in = |source: &str, byte: usize| {
            source
                .get(..byte.min(source.len()))
                .map_or(1, |before| before.chars().count() + 1)
        };
        let preview = |source: &str| -> Vec<ElementPreview> {
            if source.len() > PREVIEW_BOX_BYTES {
                return vec![ElementPreview::Problem {
                    message: format!(
                        "the box is {} bytes long; the preview reads boxes of at most {PREVIEW_BOX_BYTES}",
                        source.len()
                    ),
                    column: 1,
                }];
            }
            crate::profile::split_box(source)
                .into_iter()
                .flatten()
                .filter(|element| !element.text.trim().is_empty())
                .take(PREVIEW_ELEMENTS)
                .map(|element| {
                    let trimmed = element.text.trim();
                    let start =
                        element.offset + (element.text.len() - element.text.trim_start().len());
                    match self.evaluate(trimmed, SandboxInput::LastResponse(profile.to_string())) {
                        Ok(evaluation) => ElementPreview::Value(
                            evaluation
                                .value
                                .to_text()
                                .chars()
                                .take(PREVIEW_TEXT_CHARS)
                                .collect(),
                        ),
                        Err(SandboxError::Compile(errors)) => {
                            let first = errors.errors.first();
                            ElementPreview::Problem {
                                message: errors
                                    .errors
                                    .iter()
                                    .map(|e| e.message.as_str())
                                    .collect::<Vec<_>>()
                                    .join("; "),
                                column: column_in(
                                    source,
                                    start + first.map_or(0, |e| e.span.start),
                                ),
                            }
                        }
                        Err(SandboxError::Eval(error)) => ElementPreview::Problem {
                            message: error.kind.to_string(),
                            column: column_in(source, start + error.span.start),
                        },
                        Err(error @ SandboxError::NoResponse(_)) => ElementPreview::Problem {
                            message: error.to_string(),
                            column: 1,
                        },
                    }
                })
                .collect()
        };
        Ok(Some(boxes.iter().map(|source| preview(source)).collect()))
    }

    fn oauth_profile(&self, name: &str) -> Result<Arc<Profile>, DoorError> {
        self.profiles()
            .get(name)
            .cloned()
            .ok_or_else(|| DoorError::UnknownProfile(name.to_string()))
    }

    fn require_authorizer(&self) -> Result<&Arc<super::authorization::Authorizer>, DoorError> {
        self.authorizer.as_ref().ok_or(DoorError::NoOAuth)
    }

    /// The callback URLs Bellhop sends (standard, legacy), when OAuth2 is available.
    pub fn callback_urls(&self) -> Option<(String, String)> {
        self.authorizer
            .as_ref()
            .map(|a| (a.callback_uri(false), a.callback_uri(true)))
    }

    /// The redirect URI of an OAuth2 profile.
    pub fn redirect_uri(&self, profile: &Profile) -> Option<String> {
        match (&profile.auth, &self.authorizer) {
            (AuthSpec::OAuth2(spec), Some(authorizer)) => Some(authorizer.redirect_uri(spec)),
            _ => None,
        }
    }

    /// A profile's authorization status (reads the token store: call it off the async workers).
    pub fn authorization_status(&self, name: &str) -> Result<AuthorizationStatus, DoorError> {
        let profile = self.oauth_profile(name)?;
        Ok(self.require_authorizer()?.status(&profile)?)
    }

    /// Request Authorization: the provider URL to send the browser to (for OAuth 1.0a, after
    /// fetching temporary credentials).
    pub async fn begin_authorization(&self, name: &str) -> Result<url::Url, DoorError> {
        let profile = self.oauth_profile(name)?;
        let authorizer = self.require_authorizer()?;
        match &profile.auth {
            AuthSpec::OAuth1(_) => Ok(authorizer.begin_oauth1(&profile).await?),
            _ => Ok(authorizer.begin(&profile)?),
        }
    }

    /// Spends a callback's `state` (single use): the pending authorization it stood for.
    pub(crate) fn take_authorization_state(
        &self,
        state: &str,
    ) -> Result<PendingAuthorization, DoorError> {
        Ok(self.require_authorizer()?.take_state(state)?)
    }

    /// Forget authorization: revokes the tokens at the provider when it can (RFC 7009) and
    /// wipes them here; the status afterwards, and a note when the provider did not confirm.
    pub async fn forget_authorization(
        &self,
        name: &str,
    ) -> Result<(AuthorizationStatus, Option<String>), DoorError> {
        let profile = self.oauth_profile(name)?;
        let authorizer = self.require_authorizer()?;
        let note = authorizer.forget(&profile).await?;
        self.bus.publish(HubEvent::AuthorizationChanged {
            profile: profile.name.clone(),
        });
        let status = {
            let (authorizer, profile) = (authorizer.clone(), profile.clone());
            tokio::task::spawn_blocking(move || authorizer.status(&profile))
                .await
                .map_err(|e| AuthorizationError::Interrupted(e.to_string()))??
        };
        Ok((status, note))
    }

    /// Starts a device authorization: the code to show and where to enter it. The profile
    /// becomes authorized in the background when the user has entered it.
    pub async fn start_device_authorization(
        &self,
        name: &str,
    ) -> Result<super::authorization::DeviceStart, DoorError> {
        let profile = self.oauth_profile(name)?;
        let bus = self.bus.clone();
        let profile_name = profile.name.clone();
        let done = Box::new(move || {
            bus.publish(HubEvent::AuthorizationChanged {
                profile: profile_name.clone(),
            })
        });
        let started = self
            .require_authorizer()?
            .begin_device(profile.clone(), done)
            .await?;
        self.bus.publish(HubEvent::AuthorizationChanged {
            profile: profile.name.clone(),
        });
        Ok(started)
    }

    /// What the provider says of the profile's token now (RFC 7662 introspection).
    pub async fn introspect_authorization(
        &self,
        name: &str,
    ) -> Result<crate::oauth::Introspection, DoorError> {
        let profile = self.oauth_profile(name)?;
        Ok(self.require_authorizer()?.introspect(&profile).await?)
    }

    /// The endpoints an issuer's discovery document gives, for a profile's form.
    pub async fn discover_endpoints(
        &self,
        issuer: &str,
    ) -> Result<crate::oauth::ServerMetadata, DoorError> {
        let url = url::Url::parse(issuer.trim())
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some())
            .ok_or_else(|| {
                DoorError::Redirect(format!("`{issuer}` is not an http(s) issuer URL"))
            })?;
        Ok(self.require_authorizer()?.discover(&url).await?)
    }

    /// Authorizes a client-credentials or password profile now (no browser).
    pub async fn authorize_without_browser(&self, name: &str) -> Result<(), DoorError> {
        let profile = self.oauth_profile(name)?;
        self.require_authorizer()?
            .authorize_without_browser(&profile)
            .await?;
        self.bus.publish(HubEvent::AuthorizationChanged {
            profile: profile.name.clone(),
        });
        Ok(())
    }

    /// Finishes an authorization from the provider's redirect parameters (the callback page,
    /// a pasted redirected URL, or the implicit grant's fragment posted by the callback page):
    /// spends the `state`, refuses an error, a wrong `iss` (RFC 9207) or a missing code, and
    /// exchanges the code (or keeps the implicit grant's token). Returns the profile's name.
    pub async fn complete_redirect(
        &self,
        params: &std::collections::HashMap<String, String>,
    ) -> Result<String, DoorError> {
        // OAuth 1.0a brings its temporary token back instead of a state.
        let oauth1_token = params
            .get("oauth_token")
            .filter(|t| !t.is_empty() && !params.contains_key("state"));
        let Some(state) = params
            .get("state")
            .filter(|s| !s.is_empty())
            .or(oauth1_token)
        else {
            return Err(DoorError::Redirect(
                "The provider's answer has no state, so it cannot be trusted. Start again with Request Authorization.".into(),
            ));
        };
        // The state is spent here, whatever comes next: a replay finds nothing.
        let pending = self.take_authorization_state(state)?;
        let profile = self.oauth_profile(&pending.profile)?;
        if let (AuthSpec::OAuth1(_), Some(token)) = (&profile.auth, oauth1_token) {
            if params.contains_key("denied") || params.contains_key("oauth_problem") {
                return Err(DoorError::Redirect(
                    "Access was denied at the provider. Nothing was stored; you can try again from the profile.".into(),
                ));
            }
            let Some(verifier) = params.get("oauth_verifier").filter(|v| !v.is_empty()) else {
                return Err(DoorError::Redirect(
                    "The provider's answer has no oauth_verifier.".into(),
                ));
            };
            self.require_authorizer()?
                .complete_oauth1(&profile, &pending, token, verifier)
                .await?;
            self.bus.publish(HubEvent::AuthorizationChanged {
                profile: profile.name.clone(),
            });
            return Ok(profile.name.clone());
        }
        let AuthSpec::OAuth2(spec) = &profile.auth else {
            return Err(DoorError::Redirect(format!(
                "Profile “{}” no longer uses OAuth2.",
                profile.name
            )));
        };
        if let Some(error) = params
            .get(&spec.error_param)
            .or_else(|| params.get("error"))
        {
            let description = params
                .get("error_description")
                .map(|d| format!(" ({d})"))
                .unwrap_or_default();
            return Err(DoorError::Redirect(if error == "access_denied" {
                format!("Access was denied at the provider{description}. Nothing was stored; you can try again from the profile.")
            } else {
                format!("The provider answered “{error}”{description}. Nothing was stored.")
            }));
        }
        if let (Some(iss), Some(expected)) = (params.get("iss"), &pending.issuer) {
            if iss.trim_end_matches('/') != expected.trim_end_matches('/') {
                return Err(DoorError::Redirect(format!(
                    "The answer names issuer “{iss}”, not “{expected}”: it may come from another server (a mix-up attack). Nothing was stored."
                )));
            }
        }
        let authorizer = self.require_authorizer()?;
        if let Some(token) = params.get("access_token").filter(|t| !t.is_empty()) {
            if spec.grant != crate::profile::GrantType::Implicit {
                return Err(DoorError::Redirect(
                    "A token came in the redirect, but this profile does not use the implicit grant.".into(),
                ));
            }
            authorizer
                .complete_implicit(&profile, &Secret::new(token.clone()), params)
                .await?;
        } else {
            let Some(code) = params.get(&spec.code_param).filter(|c| !c.is_empty()) else {
                return Err(DoorError::Redirect(
                    "The provider's answer has no authorization code.".into(),
                ));
            };
            authorizer
                .complete(&profile, &pending, &Secret::new(code.clone()))
                .await?;
        }
        self.bus.publish(HubEvent::AuthorizationChanged {
            profile: profile.name.clone(),
        });
        Ok(profile.name.clone())
    }

    /// The "paste the redirected URL" fallback, for providers that will not redirect to a
    /// private or plain-HTTP address: the URL's query (or fragment) is read as the callback's.
    pub async fn complete_pasted_url(&self, pasted: &str) -> Result<String, DoorError> {
        let url = url::Url::parse(pasted.trim()).map_err(|e| {
            DoorError::Redirect(format!("That is not a URL ({e}): paste the whole address the provider sent the browser to."))
        })?;
        let mut params: std::collections::HashMap<String, String> =
            url.query_pairs().into_owned().collect();
        if let Some(fragment) = url.fragment() {
            for (name, value) in url::form_urlencoded::parse(fragment.as_bytes()).into_owned() {
                params.entry(name).or_insert(value);
            }
        }
        self.complete_redirect(&params).await
    }

    /// Zoho's self client: a grant code generated in the provider's console, exchanged as
    /// it is (no browser, no state: only the admin can call this).
    pub async fn complete_grant_code(&self, name: &str, code: &str) -> Result<(), DoorError> {
        let profile = self.oauth_profile(name)?;
        let code = code.trim();
        if code.is_empty() || code.len() > 4096 {
            return Err(DoorError::Redirect(
                "Paste the grant code the provider's console generated.".into(),
            ));
        }
        let pending = PendingAuthorization::new(&profile.name, "");
        self.require_authorizer()?
            .complete(&profile, &pending, &Secret::new(code.to_string()))
            .await?;
        self.bus.publish(HubEvent::AuthorizationChanged {
            profile: profile.name.clone(),
        });
        Ok(())
    }
}
