//! Routes of OAuth authorization: Request Authorization and the callback page, a profile's status, its grants' actions, forgetting, discovery and the provider definitions.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    let authorization_path = || api().and(warp::path!("profiles" / String / "authorization"));
    vec![
        // GET /oauth2/start?profile=NAME: Request Authorization.
        warp::path!("oauth2" / "start")
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(s())
            .then(|query, state| oauth::start(state, query))
            .boxed(),
        // GET /oauth2/callback and the family's /oauth2_callback.html
        warp::path!("oauth2" / "callback")
            .or(warp::path!("oauth2_callback.html"))
            .unify()
            .and(warp::get())
            .and(warp::query::<HashMap<String, String>>())
            .and(s())
            .then(|query, state| oauth::callback(state, query))
            .boxed(),
        // POST /oauth2/callback: the implicit grant's fragment, posted by the callback page.
        warp::path!("oauth2" / "callback")
            .and(warp::post())
            .and(warp::body::content_length_limit(16 * 1024))
            .and(warp::body::form::<HashMap<String, String>>())
            .and(s())
            .then(|form, state| oauth::callback(state, form))
            .boxed(),
        // GET /api/v1/profiles/{name}/authorization
        authorization_path()
            .and(warp::get())
            .and(s())
            .then(status)
            .map(answer)
            .boxed(),
        // DELETE /api/v1/profiles/{name}/authorization: Forget authorization (revokes first).
        authorization_path()
            .and(warp::delete())
            .and(s())
            .then(forget)
            .map(answer)
            .boxed(),
        // POST /api/v1/profiles/{name}/authorization {"action": …}: every grant's way to start
        // or finish an authorization besides the browser redirect.
        authorization_path()
            .and(warp::post())
            .and(json_body::<AuthorizationAction>())
            .and(s())
            .then(act)
            .map(answer)
            .boxed(),
        // POST /api/v1/discover {"issuer"}: an authorization server's endpoints (RFC 8414 / OIDC).
        api()
            .and(warp::path!("discover"))
            .and(warp::post())
            .and(json_body::<DiscoverRequest>())
            .and(s())
            .then(discover)
            .map(answer)
            .boxed(),
        // GET /api/v1/providers: the provider definitions and their grants.
        api()
            .and(warp::path!("providers"))
            .and(warp::get())
            .and(s())
            .map(providers)
            .boxed(),
    ]
}

async fn status(name: String, state: AppState) -> Answer {
    blocking(move || authorization(&state, &decode(&name))).await?
}

async fn forget(name: String, state: AppState) -> Answer {
    let name = decode(&name);
    let (status, note) = state.engine.forget_authorization(&name).await?;
    Ok(ok(&ForgottenView {
        profile: &name,
        status,
        note,
    }))
}

async fn act(name: String, action: AuthorizationAction, state: AppState) -> Answer {
    authorization_action(&state, &decode(&name), action).await
}

#[derive(serde::Deserialize)]
struct DiscoverRequest {
    #[serde(default)]
    issuer: String,
}

async fn discover(request: DiscoverRequest, state: AppState) -> Answer {
    let metadata = state.engine.discover_endpoints(&request.issuer).await?;
    Ok(ok(&DiscoveredView::from(metadata)))
}

fn providers(state: AppState) -> Response {
    let catalog = state.engine.providers();
    ok(&ProviderList {
        providers: catalog.iter().map(|p| ProviderView::from(&**p)).collect(),
    })
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

async fn authorization_action(state: &AppState, name: &str, action: AuthorizationAction) -> Answer {
    let engine = &state.engine;
    match action {
        AuthorizationAction::Device => {
            let device = engine.start_device_authorization(name).await?;
            return Ok(ok(&DeviceStartView {
                profile: name,
                device,
            }));
        }
        AuthorizationAction::Introspect => {
            let introspection = engine.introspect_authorization(name).await?;
            return Ok(ok(&IntrospectionView {
                profile: name,
                introspection,
            }));
        }
        AuthorizationAction::Token => engine.authorize_without_browser(name).await?,
        AuthorizationAction::Code { code } => engine.complete_grant_code(name, &code).await?,
        AuthorizationAction::Redirect { url } => {
            let profile = engine.complete_pasted_url(&url).await?;
            if profile != name {
                return Err(ApiError::from(DoorError::Redirect(format!(
                    "that URL finished the authorization of profile `{profile}`, not `{name}`"
                ))));
            }
        }
    }
    let state = state.clone();
    let name = name.to_string();
    blocking(move || authorization(&state, &name)).await?
}

/// A profile's authorization status, with its grant.
fn authorization(state: &AppState, name: &str) -> Answer {
    let status = state.engine.authorization_status(name)?;
    let profiles = state.engine.profiles();
    let profile = profiles.get(name);
    Ok(ok(&AuthorizationView {
        profile: name,
        grant: profile.and_then(|p| match &p.auth {
            crate::profile::AuthSpec::OAuth2(spec) => Some(spec.grant.as_str()),
            crate::profile::AuthSpec::OAuth1(_) => Some("oauth1"),
            _ => None,
        }),
        status,
        redirect_uri: profile.and_then(|p| state.engine.redirect_uri(p)),
    }))
}
