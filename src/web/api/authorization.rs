//! Routes of OAuth authorization: Request Authorization and the callback page, a profile's status, its grants' actions, forgetting, discovery and the provider definitions.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /oauth2/start?profile=NAME: Request Authorization.
    let oauth_start = warp::path!("oauth2" / "start")
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(s())
        .then(|query: HashMap<String, String>, state: AppState| oauth::start(state, query));
    // GET /oauth2/callback and the family's /oauth2_callback.html
    let oauth_callback = warp::path!("oauth2" / "callback")
        .or(warp::path!("oauth2_callback.html"))
        .unify()
        .and(warp::get())
        .and(warp::query::<HashMap<String, String>>())
        .and(s())
        .then(|query: HashMap<String, String>, state: AppState| oauth::callback(state, query));
    // POST /oauth2/callback: the implicit grant's fragment, posted by the callback page.
    let oauth_fragment = warp::path!("oauth2" / "callback")
        .and(warp::post())
        .and(warp::body::content_length_limit(16 * 1024))
        .and(warp::body::form::<HashMap<String, String>>())
        .and(s())
        .then(|form: HashMap<String, String>, state: AppState| oauth::callback(state, form));
    // GET /api/v1/profiles/{name}/authorization
    let authorization_get = api
        .and(warp::path!("profiles" / String / "authorization"))
        .and(warp::get())
        .and(s())
        .and_then(|name: String, state: AppState| async move {
            respond(blocking(move || authorization(&state, &decode(&name))).await)
        });
    // DELETE /api/v1/profiles/{name}/authorization: Forget authorization (revokes first).
    let authorization_forget = api
        .and(warp::path!("profiles" / String / "authorization"))
        .and(warp::delete())
        .and(s())
        .then(|name: String, state: AppState| async move {
            let name = decode(&name);
            match state.engine.forget_authorization(&name).await {
                Ok((status, note)) => ok(&serde_json::json!({
                    "profile": name,
                    "status": status,
                    "note": note,
                })),
                Err(error) => ApiError::from(error).into_response(),
            }
        });
    // POST /api/v1/profiles/{name}/authorization {"action": …}: every grant's way to start
    // or finish an authorization besides the browser redirect.
    let authorization_act = api
        .and(warp::path!("profiles" / String / "authorization"))
        .and(warp::post())
        .and(json_body::<AuthorizationAction>())
        .and(s())
        .then(
            |name: String, action: AuthorizationAction, state: AppState| async move {
                authorization_action(&state, &decode(&name), action).await
            },
        );
    // POST /api/v1/discover {"issuer"}: an authorization server's endpoints (RFC 8414 / OIDC).
    let discover = api
        .and(warp::path!("discover"))
        .and(warp::post())
        .and(json_body::<serde_json::Value>())
        .and(s())
        .then(|body: serde_json::Value, state: AppState| async move {
            let issuer = body["issuer"].as_str().unwrap_or_default().to_string();
            match state.engine.discover_endpoints(&issuer).await {
                Ok(metadata) => ok(&serde_json::json!({
                    "issuer": metadata.issuer,
                    "authorize_url": metadata.authorization_endpoint,
                    "token_url": metadata.token_endpoint,
                    "device_authorization_url": metadata.device_authorization_endpoint,
                    "revocation_url": metadata.revocation_endpoint,
                    "introspection_url": metadata.introspection_endpoint,
                    "userinfo_url": metadata.userinfo_endpoint,
                    "grant_types_supported": metadata.grant_types_supported,
                    "code_challenge_methods_supported": metadata.code_challenge_methods_supported,
                    "token_endpoint_auth_methods_supported": metadata.token_endpoint_auth_methods_supported,
                })),
                Err(error) => ApiError::from(error).into_response(),
            }
        });
    // GET /api/v1/providers: the provider definitions and their grants.
    let providers_list = api
        .and(warp::path!("providers"))
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let catalog = state.engine.providers();
            let list: Vec<_> = catalog.iter().map(|p| provider_view(p)).collect();
            ok(&serde_json::json!({ "providers": list }))
        });
    vec![
        oauth_start.boxed(),
        oauth_callback.boxed(),
        oauth_fragment.boxed(),
        authorization_get.boxed(),
        authorization_forget.boxed(),
        authorization_act.boxed(),
        discover.boxed(),
        providers_list.boxed(),
    ]
}

/// What `POST /api/v1/profiles/{name}/authorization` may ask.
#[derive(serde::Deserialize)]
#[serde(tag = "action", rename_all = "snake_case", deny_unknown_fields)]
enum AuthorizationAction {
    /// Start the device flow: the answer has the code to show.
    Device,
    /// Fetch the client's own token now (client credentials, password).
    Token,
    /// Exchange a grant code from the provider's console (Zoho's self client).
    Code { code: String },
    /// Finish with the redirected URL pasted from the browser's address bar.
    Redirect { url: String },
    /// Ask the provider whether the token is still active (RFC 7662).
    Introspect,
}

async fn authorization_action(
    state: &AppState,
    name: &str,
    action: AuthorizationAction,
) -> Response {
    let engine = &state.engine;
    let done = match action {
        AuthorizationAction::Device => match engine.start_device_authorization(name).await {
            Ok(device) => return ok(&serde_json::json!({ "profile": name, "device": device })),
            Err(error) => Err(error),
        },
        AuthorizationAction::Token => engine.authorize_without_browser(name).await,
        AuthorizationAction::Introspect => match engine.introspect_authorization(name).await {
            Ok(answer) => {
                return ok(&serde_json::json!({ "profile": name, "introspection": answer }))
            }
            Err(error) => Err(error),
        },
        AuthorizationAction::Code { code } => engine.complete_grant_code(name, &code).await,
        AuthorizationAction::Redirect { url } => match engine.complete_pasted_url(&url).await {
            Ok(profile) if profile == name => Ok(()),
            Ok(profile) => Err(DoorError::Redirect(format!(
                "that URL finished the authorization of profile `{profile}`, not `{name}`"
            ))),
            Err(error) => Err(error),
        },
    };
    match done {
        Ok(()) => {
            let state = state.clone();
            let name = name.to_string();
            blocking(move || authorization(&state, &name))
                .await
                .unwrap_or_else(|e| e.into_response())
        }
        Err(error) => ApiError::from(error).into_response(),
    }
}

/// A provider as the API and the UI's select show it.
fn provider_view(p: &crate::profile::ProviderDefinition) -> serde_json::Value {
    serde_json::json!({
        "id": p.id,
        "name": p.name,
        "built_in": p.built_in,
        "file": p.file,
        "oauth_version": p.oauth_version,
        "grants": p.grants,
        "api_base": p.api_base,
        "docs": p.docs,
        "client_id_label": p.client_id_label,
        "client_secret_label": p.client_secret_label,
        "scopes": p.settings.scopes,
        "settings": p.settings.settings,
        "authorize_url": p.settings.authorize_url,
        "token_url": p.settings.token_url,
        "device_authorization_url": p.settings.device_authorization_url,
        "revocation_url": p.settings.revocation_url,
    })
}

/// A profile's authorization status, with its grant.
fn authorization(state: &AppState, name: &str) -> Response {
    match state.engine.authorization_status(name) {
        Ok(status) => ok(&serde_json::json!({
            "profile": name,
            "grant": state.engine.profiles().get(name).and_then(|p| match &p.auth {
                crate::profile::AuthSpec::OAuth2(spec) => Some(spec.grant.as_str()),
                crate::profile::AuthSpec::OAuth1(_) => Some("oauth1"),
                _ => None,
            }),
            "status": status,
            "redirect_uri": state.engine.profiles().get(name).and_then(|p| state.engine.redirect_uri(p)),
        })),
        Err(DoorError::UnknownProfile(name)) => ApiError::unknown_profile(&name).into_response(),
        Err(DoorError::NoOAuth) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "OAuth2 is not available in this process",
        )
        .into_response(),
        Err(error) => ApiError::bad_request(error.to_string()).into_response(),
    }
}
