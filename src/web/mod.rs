//! The web adapter: the REST API under `/api/v1` (warp, JSON) and a small demo JSON source.
//! Calls the engine and reads the device hub; nothing imports this module.

pub mod dto;
pub mod edge;
pub mod error;
pub mod listening;
pub mod oauth;
mod server;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::engine::bus::{Delivery, HubEvent};
use crate::engine::door::{DoorError, SandboxError, SandboxInput};
use crate::engine::editor::{EditError, ProfileForm};
use crate::engine::{Engine, EngineError};
use crate::expr;
use crate::secret::SecretSource;
use dto::*;
pub use edge::Edge;
use error::ApiError;

/// Most server-sent event streams open at once.
pub const MAX_LIVE_VIEWS: usize = 64;

/// Largest request body the API accepts.
const BODY_LIMIT: u64 = 1024 * 1024;

#[derive(Clone)]
pub struct AppState {
    pub engine: Arc<Engine>,
    /// The trust boundary: accepted hosts and origins, the admin token and sessions.
    pub edge: Arc<Edge>,
    /// Places for live views (server-sent event streams): a quarter of the connections at most.
    live_views: Arc<tokio::sync::Semaphore>,
    /// Where listening profiles' paths are served (e.g. `/in`).
    listen_base: Arc<str>,
    /// Calls admitted lately per listening profile (its `incoming.max_per_second`).
    listen_throttle: Arc<listening::Throttle>,
}

impl AppState {
    /// A state for a loopback server with no admin token.
    pub fn new(engine: Arc<Engine>) -> AppState {
        AppState {
            engine,
            edge: Arc::new(Edge::loopback()),
            live_views: Arc::new(tokio::sync::Semaphore::new(MAX_LIVE_VIEWS)),
            listen_base: "/in".into(),
            listen_throttle: Arc::default(),
        }
    }

    /// Serves listening profiles under `base` (checked by the settings: a path like `/in`).
    pub fn with_listen_base(mut self, base: &str) -> AppState {
        self.listen_base = base.into();
        self
    }

    /// Sizes the live views for a server of `max_connections`: a quarter of them, at most
    /// [`MAX_LIVE_VIEWS`], so streams never take the places the API needs.
    pub fn with_connection_limit(mut self, max_connections: usize) -> AppState {
        let places = (max_connections / 4).clamp(1, MAX_LIVE_VIEWS);
        self.live_views = Arc::new(tokio::sync::Semaphore::new(places));
        self
    }

    pub fn with_edge(mut self, edge: Edge) -> AppState {
        self.edge = Arc::new(edge);
        self
    }
}

/// Pages and routes open without the admin token: the OAuth2 callback (its single-use state
/// protects it), webhooks (their secret token protects them), sign-in and sign-out, the icon
/// and the stylesheet.
fn open_path(path: &str, listen_base: &str) -> bool {
    // Webhooks carry their own secret token, which the route checks; listening profiles are
    // called by sensors, which cannot sign in (their optional token is checked by the route).
    path.starts_with("/hooks/")
        || path
            .strip_prefix(listen_base)
            .is_some_and(|rest| rest.starts_with('/'))
        || matches!(
            path,
            "/oauth2/callback"
                | "/oauth2_callback.html"
                | "/login"
                | "/logout"
                | "/favicon.svg"
                | "/style.css"
        )
}

/// The edge every request passes first: Host and Origin, then the admin token or session.
/// A browser asking for a page without a session is sent to the sign-in form.
fn edge_gate(state: AppState) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path::full()
        .and(warp::method())
        .and(warp::host::optional())
        .and(warp::header::optional::<String>("origin"))
        .and(warp::header::optional::<String>("authorization"))
        .and(warp::cookie::optional::<String>(edge::SESSION_COOKIE))
        .and(warp::header::optional::<String>("accept"))
        .and_then(
            move |path: warp::path::FullPath,
                  method: warp::http::Method,
                  host: Option<warp::host::Authority>,
                  origin: Option<String>,
                  authorization: Option<String>,
                  session: Option<String>,
                  accept: Option<String>| {
                let edge = state.edge.clone();
                let listen_base = state.listen_base.clone();
                async move {
                    edge.check_addressing(host.as_ref().map(|h| h.as_str()), origin.as_deref())
                        .map_err(|refusal| warp::reject::custom(error::Refused(refusal)))?;
                    if open_path(path.as_str(), &listen_base)
                        || edge.admitted(authorization.as_deref(), session.as_deref())
                    {
                        return Ok(());
                    }
                    let wants_page = method == warp::http::Method::GET
                        && (path.as_str() == "/"
                            || accept.as_deref().is_some_and(|a| a.contains("text/html")));
                    Err(warp::reject::custom(if wants_page {
                        error::Refused(edge::Refusal::SignInFirst)
                    } else {
                        error::Refused(edge::Refusal::NotAdmitted)
                    }))
                }
            },
        )
        .untuple_one()
}

const LOGIN_PAGE: &str = include_str!("../../web/login.html");

/// The sign-in form, with a message when there is one to give.
fn login_page(status: StatusCode, message: &str) -> Response {
    let message = if message.is_empty() {
        String::new()
    } else {
        format!("<p class=error role=alert>{}</p>", oauth::escape(message))
    };
    let mut response = static_file("", "text/html; charset=utf-8");
    *response.body_mut() = LOGIN_PAGE.replace("{{message}}", &message).into();
    *response.status_mut() = status;
    response
}

fn redirect(to: &'static str, cookie: Option<String>) -> Response {
    let mut response = warp::reply::with_status("", StatusCode::SEE_OTHER).into_response();
    response
        .headers_mut()
        .insert("location", warp::http::HeaderValue::from_static(to));
    if let Some(value) = cookie.and_then(|c| warp::http::HeaderValue::from_str(&c).ok()) {
        response.headers_mut().insert("set-cookie", value);
    }
    response
}

/// `GET /login` (the form), `POST /login` (a session cookie when the token is right; the form
/// again with a message when not), `POST /logout` (ends the session).
fn login(state: AppState) -> BoxedFilter<(Response,)> {
    let form = warp::path!("login")
        .and(warp::get())
        .map(|| login_page(StatusCode::OK, ""));
    let edge = state.edge.clone();
    let submit = warp::path!("login")
        .and(warp::post())
        .and(warp::ext::optional::<edge::ClientSocket>())
        .and(warp::header::optional::<String>("x-forwarded-for"))
        .and(warp::body::content_length_limit(4096))
        .and(warp::body::form::<HashMap<String, String>>())
        .map(
            move |socket: Option<edge::ClientSocket>,
                  forwarded: Option<String>,
                  form: HashMap<String, String>| {
                if !edge.admin_required() {
                    return redirect("/", None);
                }
                let client = edge.client_of(socket.map(|s| s.0), forwarded.as_deref());
                let token = form.get("token").map(String::as_str).unwrap_or_default();
                match edge.sign_in(client, token) {
                    Ok(session) => redirect("/", Some(edge.session_cookie(&session))),
                    Err(Some(wait)) => login_page(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "Too many attempts: try again in {} s.",
                            wait.as_secs().max(1)
                        ),
                    ),
                    Err(None) => login_page(
                        StatusCode::UNAUTHORIZED,
                        "That is not the admin token. Try again.",
                    ),
                }
            },
        );
    let edge = state.edge.clone();
    let logout = warp::path!("logout")
        .and(warp::post())
        .and(warp::cookie::optional::<String>(edge::SESSION_COOKIE))
        .map(move |session: Option<String>| {
            if let Some(session) = session {
                edge.sign_out(&session);
            }
            redirect("/login", Some(edge.expired_cookie()))
        });
    form.or(submit).unify().or(logout).unify().boxed()
}

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    warp::reply::with_status(warp::reply::json(value), status).into_response()
}

fn ok<T: serde::Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

fn respond(result: Result<Response, ApiError>) -> Result<Response, Infallible> {
    Ok(result.unwrap_or_else(|e| e.into_response()))
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

fn json_body<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(BODY_LIMIT).and(warp::body::json())
}

/// Every route of the API.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());

    // GET /api/v1/health
    let health = api
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            // Degraded (503) while the device store cannot commit: monitors notice.
            let store = state.engine.store_health();
            let failing = store.as_ref().is_some_and(|h| h.failing.is_some());
            json(
                if failing {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                },
                &serde_json::json!({
                    "status": if failing { "degraded" } else { "ok" },
                    "version": env!("CARGO_PKG_VERSION"),
                    "store": store,
                    // An adapter's trouble (an unreachable broker) is shown, not a degraded
                    // Bellhop: actions go on.
                    "adapters": state.engine.adapters(),
                }),
            )
        });
    // GET /api/v1/profiles
    let profiles_list = api
        .and(warp::path("profiles"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let set = state.engine.profiles();
            ok(&ProfileList {
                profiles: set
                    .profiles
                    .values()
                    .map(|p| {
                        let mut summary = ProfileSummary::of(p.as_ref(), &state.listen_base);
                        summary.last_run =
                            state
                                .engine
                                .history(Some(&p.name), 1)
                                .first()
                                .map(|r| LastRun {
                                    ok: r.ok,
                                    skipped: r.skipped,
                                    started_at: r.started_at.clone(),
                                });
                        summary
                    })
                    .collect(),
                diagnostics: set.diagnostics.clone(),
            })
        });
    // POST /api/v1/profiles/validate
    let profiles_validate = api
        .and(warp::path!("profiles" / "validate"))
        .and(warp::post())
        .and(json_body())
        .map(|request: ValidateRequest| {
            let name = request.file_name.unwrap_or_else(|| "profile.toml".into());
            let (profile, diagnostics) = crate::profile::load_text(
                &PathBuf::from(name),
                &request.text,
                &SecretSource::default(),
            );
            ok(&ValidateResponse {
                valid: profile.is_some(),
                diagnostics,
            })
        });
    // GET /api/v1/profiles/{name}
    let profiles_get = api
        .and(warp::path!("profiles" / String))
        .and(warp::get())
        .and(s())
        .map(|name: String, state: AppState| {
            let name = decode(&name);
            let set = state.engine.profiles();
            match set.get(&name) {
                Some(profile) => ok(&ProfileDetail::of(profile.as_ref(), &state.listen_base)),
                None => {
                    let mut error =
                        ApiError::not_found(format!("no profile named `{name}` is loaded"));
                    error.diagnostics = set.diagnostics_for(&name).into_iter().cloned().collect();
                    error.into_response()
                }
            }
        });
    // POST /api/v1/reload
    let reload = api
        .and(warp::path("reload"))
        .and(warp::path::end())
        .and(warp::post())
        .and(s())
        .and_then(|state: AppState| async move {
            let engine = state.engine.clone();
            respond(blocking(move || engine.reload()).await.map(|set| {
                ok(&serde_json::json!({
                    "profiles": set.profiles.keys().collect::<Vec<_>>(),
                    "diagnostics": set.diagnostics,
                }))
            }))
        });
    // POST /api/v1/actions/run
    let run = api
        .and(warp::path!("actions" / "run"))
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(|request: RunRequest, state: AppState| async move {
            respond(
                match state.engine.run(&request.profile, &request.text).await {
                    Ok(record) => Ok(ok(&*record)),
                    Err(EngineError::UnknownProfile(name)) => Err(ApiError::not_found(format!(
                        "no profile named `{name}` is loaded"
                    ))),
                    Err(other) => Err(ApiError::internal(other.to_string())),
                },
            )
        });
    // GET /api/v1/runs?profile=&limit=
    let runs = api
        .and(warp::path("runs"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<RunsQuery>())
        .and(s())
        .map(|query: RunsQuery, state: AppState| {
            let limit = query.limit.unwrap_or(50).min(1000);
            let runs = state.engine.history(query.profile.as_deref(), limit);
            ok(&serde_json::json!({ "runs": runs }))
        });
    // GET /api/v1/devices
    let devices_list = api
        .and(warp::path("devices"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let devices: Vec<DeviceView> = state
                .engine
                .devices()
                .iter()
                .map(DeviceView::from)
                .collect();
            ok(&serde_json::json!({ "devices": devices }))
        });
    // GET /api/v1/devices/{ref}
    let devices_get = api
        .and(warp::path!("devices" / u64))
        .and(warp::get())
        .and(s())
        .map(
            |reference: u64, state: AppState| match state.engine.device(reference) {
                Some(device) => ok(&DeviceView::from(&device)),
                None => ApiError::not_found(format!("device {reference} does not exist"))
                    .into_response(),
            },
        );
    // GET /api/v1/devices/{ref}/history?since=<ms>&limit=<n>: recorded changes, oldest first.
    let devices_history = api
        .and(warp::path!("devices" / u64 / "history"))
        .and(warp::get())
        .and(warp::query::<HistoryQuery>())
        .and(s())
        .and_then(
            |reference: u64, query: HistoryQuery, state: AppState| async move {
                if state.engine.device(reference).is_none() {
                    return respond(Err(ApiError::not_found(format!(
                        "device {reference} does not exist"
                    ))));
                }
                let limit = query.limit.unwrap_or(1000).clamp(1, MAX_HISTORY_POINTS);
                let since = query.since.unwrap_or(0);
                let engine = state.engine.clone();
                respond(
                    blocking(move || engine.device_history(reference, since, limit))
                        .await
                        .and_then(|read| {
                            read.map(|points| {
                                ok(&serde_json::json!({ "ref": reference, "points": points }))
                            })
                            .map_err(|e| ApiError::internal(e.to_string()))
                        }),
                )
            },
        );
    // DELETE /api/v1/devices/{ref}: deletes a device and its history.
    let devices_remove = api
        .and(warp::path!("devices" / u64))
        .and(warp::delete())
        .and(s())
        .map(
            |reference: u64, state: AppState| match state.engine.remove_device(reference) {
                Ok(device) => ok(&DeviceView::from(&device)),
                Err(crate::devices::StoreError::UnknownDevice(_)) => {
                    ApiError::not_found(format!("device {reference} does not exist"))
                        .into_response()
                }
                Err(error) => ApiError::internal(error.to_string()).into_response(),
            },
        );
    // PUT /api/v1/devices/{ref}  {value?, string?}
    let devices_set = api
        .and(warp::path!("devices" / u64))
        .and(warp::put().or(warp::post()).unify())
        .and(json_body())
        .and(s())
        .and_then(
            |reference: u64, request: SetRequest, state: AppState| async move {
                respond(
                    match state
                        .engine
                        .set_device(reference, request.value, request.string)
                        .await
                    {
                        Ok(device) => Ok(ok(&DeviceView::from(&device))),
                        Err(crate::devices::StoreError::UnknownDevice(r)) => {
                            Err(ApiError::not_found(format!("device {r} does not exist")))
                        }
                        Err(e) => Err(ApiError::internal(e.to_string())),
                    },
                )
            },
        );
    // GET /api/v1/globals
    let globals_list = api
        .and(warp::path("globals"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let globals: Vec<GlobalView> = state
                .engine
                .globals()
                .iter()
                .map(GlobalView::from)
                .collect();
            ok(&serde_json::json!({ "globals": globals }))
        });
    // PUT /api/v1/globals/{name}  {value?, string?}
    let globals_set = api
        .and(warp::path!("globals" / String))
        .and(warp::put().or(warp::post()).unify())
        .and(json_body())
        .and(s())
        .map(|name: String, request: SetRequest, state: AppState| {
            let name = decode(&name);
            match state
                .engine
                .set_global(&name, request.value, request.string)
            {
                Ok(global) => ok(&GlobalView::from(&global)),
                Err(e) => ApiError::bad_request(e.to_string()).into_response(),
            }
        });
    // POST /api/v1/eval  {expression, input? | profile?}
    let eval = api
        .and(warp::path("eval"))
        .and(warp::path::end())
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(|request: EvalRequest, state: AppState| async move {
            // A JSONPath over a large response can take seconds: off the async workers.
            respond(
                blocking(move || evaluate(&state, request))
                    .await
                    .and_then(|r| r),
            )
        });
    // GET /api/v1/ui: what the UI needs to know of the server (callback URLs, sign-in).
    let ui_settings = api
        .and(warp::path("ui"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let callbacks = state.engine.callback_urls().map(
                |(standard, legacy)| serde_json::json!({ "standard": standard, "legacy": legacy }),
            );
            ok(&serde_json::json!({
                "callback_urls": callbacks,
                "sign_in": state.edge.admin_required(),
            }))
        });
    // GET /api/v1/functions
    let functions = api
        .and(warp::path("functions"))
        .and(warp::path::end())
        .and(warp::get())
        .map(|| {
            let list: Vec<FunctionView> = expr::functions::FUNCTIONS
                .iter()
                .map(|f| FunctionView {
                    name: f.name,
                    signature: f.signature,
                    doc: f.doc,
                })
                .collect();
            ok(&serde_json::json!({ "functions": list }))
        });
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
                Err(error) => door_error(error),
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
                Err(error) => door_error(error),
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
    // GET /api/v1/profiles/{name}/form: the editor's fields (secrets redacted).
    let profiles_form = api
        .and(warp::path!("profiles" / String / "form"))
        .and(warp::get())
        .and(s())
        .and_then(|name: String, state: AppState| async move {
            respond(blocking(move || profile_form(&state, &decode(&name))).await)
        });
    // PUT /api/v1/profiles/{name}: save from the editor (a different form name renames).
    let profiles_save = api
        .and(warp::path!("profiles" / String))
        .and(warp::put())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, form: ProfileForm, state: AppState| async move {
                let name = decode(&name);
                let engine = state.engine.clone();
                let saving = form.clone();
                let result = blocking(move || engine.save_profile(&name, &saving)).await;
                respond(match result {
                    Ok(Ok(saved)) => Ok(ok(
                        &serde_json::json!({ "saved": form.name.trim(), "outcome": saved }),
                    )),
                    Ok(Err(error)) => Err(edit_error(error, "profile")),
                    Err(error) => Err(error),
                })
            },
        );
    // GET /api/v1/schema: the editor forms' fields (kinds, help, choices), which the UI builds
    // its forms from.
    let schema = api
        .and(warp::path("schema"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let providers: Vec<(String, String)> = state
                .engine
                .providers()
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect();
            ok(&crate::engine::forms::schemas_with_providers(&providers))
        });
    // GET /api/v1/events/{name}/form: the event's file as the editor shows it.
    let events_form = api
        .and(warp::path!("events" / String / "form"))
        .and(warp::get())
        .and(s())
        .and_then(|name: String, state: AppState| async move {
            let name = decode(&name);
            let engine = state.engine.clone();
            respond(match blocking(move || engine.event_form(&name)).await {
                Ok(Ok(form)) => Ok(ok(&serde_json::json!({ "form": form }))),
                Ok(Err(error)) => Err(edit_error(error, "event")),
                Err(error) => Err(error),
            })
        });
    // PUT /api/v1/events/{name}: saves the editor's form into the event's file (created when
    // new), in place.
    let events_save = api
        .and(warp::path!("events" / String))
        .and(warp::put())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, form: crate::engine::forms::EventForm, state: AppState| async move {
                let name = decode(&name);
                let engine = state.engine.clone();
                let saved_name = form
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or(&name)
                    .trim()
                    .to_string();
                let result = blocking(move || engine.save_event(&name, &form)).await;
                respond(match result {
                    Ok(Ok(saved)) => Ok(ok(
                        &serde_json::json!({ "saved": saved_name, "outcome": saved }),
                    )),
                    Ok(Err(error)) => Err(edit_error(error, "event")),
                    Err(error) => Err(error),
                })
            },
        );
    // GET /api/v1/stream: what happens in the hub, as server-sent events.
    let live_views = state.live_views.clone();
    let stream = api
        .and(warp::path("stream"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(move |state: AppState| {
            // Live views are bounded so they can never take every connection the API needs.
            let Ok(permit) = live_views.clone().try_acquire_owned() else {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_live_views",
                    "too many live views are open: close one and reload",
                )
                .into_response();
            };
            let listening = (state.engine.subscribe(), permit);
            let events =
                futures_util::stream::unfold(listening, |(mut subscription, permit)| async move {
                    let event = live_event(subscription.next().await)?;
                    Some((Ok::<_, Infallible>(event), (subscription, permit)))
                });
            warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response()
        });
    // GET /api/v1/events: the events, their triggers, next firing and last run.
    let events_list = api
        .and(warp::path("events"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let automation = state.engine.automation();
            let set = automation.events();
            let events: Vec<EventView> = set
                .events
                .values()
                .map(|event| event_view(&state, event))
                .collect();
            ok(&serde_json::json!({
                "events": events,
                "time_zone": automation.zone().to_string(),
                "diagnostics": set.diagnostics,
            }))
        });
    // GET /api/v1/events/{name}
    let events_get = api
        .and(warp::path!("events" / String))
        .and(warp::get())
        .and(s())
        .map(|name: String, state: AppState| {
            let name = decode(&name);
            match state.engine.automation().events().get(&name) {
                Some(event) => ok(&event_view(&state, event)),
                None => ApiError::not_found(format!("no event named `{name}` is loaded"))
                    .into_response(),
            }
        });
    // GET /api/v1/events/{name}/runs?limit=
    let events_runs = api
        .and(warp::path!("events" / String / "runs"))
        .and(warp::get())
        .and(warp::query::<RunsQuery>())
        .and(s())
        .map(|name: String, query: RunsQuery, state: AppState| {
            let name = decode(&name);
            if state.engine.automation().events().get(&name).is_none() {
                return ApiError::not_found(format!("no event named `{name}` is loaded"))
                    .into_response();
            }
            let limit = query.limit.unwrap_or(50).min(1000);
            ok(&serde_json::json!({ "runs": state.engine.automation().history(&name, limit) }))
        });
    // POST /api/v1/events/{name}/run {input?}: runs it now and answers its record.
    let events_run = api
        .and(warp::path!("events" / String / "run"))
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, request: FireRequest, state: AppState| async move {
                let name = decode(&name);
                respond(
                    match state
                        .engine
                        .fire(&name, "api", request.input.map(Into::into), 0)
                        .await
                    {
                        Ok(run) => Ok(ok(&*run)),
                        Err(EngineError::UnknownEvent(name)) => Err(ApiError::not_found(format!(
                            "no event named `{name}` is loaded"
                        ))),
                        Err(other) => Err(ApiError::internal(other.to_string())),
                    },
                )
            },
        );
    // GET|POST /hooks/events/{name}/{token}: an event's webhook. The query string (GET) or the
    // body (POST, text, 64 KiB at most) is the event's input. A wrong token runs nothing.
    let hook_input = warp::get()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(Ok)
        .or(warp::post()
            .and(warp::body::content_length_limit(64 * 1024))
            .and(warp::body::bytes())
            .map(|body: bytes::Bytes| String::from_utf8(body.to_vec()).map_err(|e| e.utf8_error())))
        .unify();
    let hooks = warp::path!("hooks" / "events" / String / String)
        .and(hook_input)
        .and(s())
        .map(
            |name: String,
             token: String,
             input: Result<String, std::str::Utf8Error>,
             state: AppState| {
                let name = decode(&name);
                let input = match input {
                    Ok(input) => input,
                    Err(error) => {
                        return ApiError::bad_request(format!(
                            "the body is not UTF-8 text (invalid byte at offset {}): nothing ran",
                            error.valid_up_to()
                        ))
                        .into_response()
                    }
                };
                if state.engine.webhook(&name, &token, input.into()) {
                    json(StatusCode::ACCEPTED, &serde_json::json!({ "fired": name }))
                } else {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "no webhook answers to this URL",
                    )
                    .into_response()
                }
            },
        );
    // The UI: GET /, /app.js, /style.css (built into the binary from web/).
    let ui = warp::get().and(
        warp::path::end()
            .map(|| static_file(UI_INDEX, "text/html; charset=utf-8"))
            .or(warp::path!("app.js")
                .map(|| static_file(UI_SCRIPT, "text/javascript; charset=utf-8")))
            .unify()
            .or(warp::path!("style.css").map(|| static_file(UI_STYLE, "text/css; charset=utf-8")))
            .unify()
            .or(warp::path!("favicon.svg").map(|| static_file(UI_ICON, "image/svg+xml")))
            .unify(),
    );
    // GET /demo/rooms.json: a local JSON source for the quick start.
    let demo = warp::path!("demo" / "rooms.json")
        .and(warp::get())
        .map(|| ok(&demo_rooms()));

    // Boxing each route keeps the filter's type small (deep `or` chains overflow the compiler).
    // The busiest routes go first.
    let all: Vec<BoxedFilter<(Response,)>> = vec![
        run.boxed(),
        // Sensors call these often; anything outside the listen base is refused at once.
        listening::route(state.clone()),
        health.boxed(),
        profiles_list.boxed(),
        profiles_validate.boxed(),
        profiles_get.boxed(),
        reload.boxed(),
        runs.boxed(),
        devices_list.boxed(),
        devices_get.boxed(),
        devices_history.boxed(),
        devices_remove.boxed(),
        devices_set.boxed(),
        globals_list.boxed(),
        globals_set.boxed(),
        eval.boxed(),
        functions.boxed(),
        ui_settings.boxed(),
        demo.boxed(),
        oauth_start.boxed(),
        oauth_callback.boxed(),
        authorization_get.boxed(),
        authorization_forget.boxed(),
        authorization_act.boxed(),
        providers_list.boxed(),
        discover.boxed(),
        oauth_fragment.boxed(),
        profiles_form.boxed(),
        profiles_save.boxed(),
        stream.boxed(),
        events_list.boxed(),
        events_get.boxed(),
        events_runs.boxed(),
        events_run.boxed(),
        events_form.boxed(),
        events_save.boxed(),
        schema.boxed(),
        hooks.boxed(),
        ui.boxed(),
    ];
    let mut combined: Option<BoxedFilter<(Response,)>> = None;
    for route in all {
        combined = Some(match combined {
            None => route,
            Some(previous) => previous.or(route).unify().boxed(),
        });
    }
    let combined = combined.unwrap_or_else(|| {
        warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed()
    });
    edge_gate(state.clone())
        .and(login(state.clone()).or(combined).unify())
        .recover(error::recover)
        .unify()
}

/// Most history points one request returns.
const MAX_HISTORY_POINTS: usize = 10_000;

#[derive(serde::Deserialize)]
struct HistoryQuery {
    since: Option<i64>,
    limit: Option<usize>,
}

const UI_INDEX: &str = include_str!("../../web/index.html");
const UI_SCRIPT: &str = include_str!("../../web/app.js");
const UI_STYLE: &str = include_str!("../../web/style.css");
const UI_ICON: &str = include_str!("../../web/favicon.svg");

fn static_file(body: &'static str, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    if let Ok(value) = warp::http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert("content-type", value);
    }
    response.headers_mut().insert(
        "x-content-type-options",
        warp::http::HeaderValue::from_static("nosniff"),
    );
    response.headers_mut().insert(
        "content-security-policy",
        warp::http::HeaderValue::from_static("default-src 'self'; frame-ancestors 'none'"),
    );
    response
}

/// The editor's view of a profile: its fields, its redirect URI and its authorization status.
fn profile_form(state: &AppState, name: &str) -> Response {
    let profiles = state.engine.profiles();
    let Some(profile) = profiles.get(name) else {
        return ApiError::not_found(format!("no profile named `{name}` is loaded")).into_response();
    };
    let redirect_uri = state.engine.redirect_uri(profile);
    let status = redirect_uri
        .as_ref()
        .and_then(|_| state.engine.authorization_status(name).ok());
    ok(&serde_json::json!({
        "form": ProfileForm::of(profile),
        "redirect_uri": redirect_uri,
        "status": status,
    }))
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
        Err(error) => door_error(error),
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

/// A door error as the JSON API answers it.
fn door_error(error: DoorError) -> Response {
    match error {
        DoorError::UnknownProfile(name) => {
            ApiError::not_found(format!("no profile named `{name}` is loaded")).into_response()
        }
        DoorError::NoOAuth => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "OAuth2 is not available in this process",
        )
        .into_response(),
        DoorError::Authorization(crate::engine::authorization::AuthorizationError::Protocol(
            error,
        )) => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "provider_refused",
            error.to_string(),
        )
        .into_response(),
        error => ApiError::bad_request(error.to_string()).into_response(),
    }
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
        Err(DoorError::UnknownProfile(name)) => {
            ApiError::not_found(format!("no profile named `{name}` is loaded")).into_response()
        }
        Err(DoorError::NoOAuth) => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "OAuth2 is not available in this process",
        )
        .into_response(),
        Err(error) => ApiError::bad_request(error.to_string()).into_response(),
    }
}

/// Runs blocking work (file writes with fsync, reloads, heavy evaluation) on the blocking pool,
/// so the async workers keep answering.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(work)
        .await
        .map_err(|e| ApiError::internal(format!("the work stopped unexpectedly: {e}")))
}

/// An editor's failure as the API answers it; `what`: `profile` or `event`.
fn edit_error(error: EditError, what: &str) -> ApiError {
    match error {
        EditError::Invalid(diagnostics) => {
            let mut api = ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "invalid_file",
                format!("the {what} has problems: nothing was saved"),
            );
            api.diagnostics = diagnostics;
            api
        }
        EditError::BadName(message) => ApiError::bad_request(message),
        EditError::NotLoaded(name) => {
            ApiError::not_found(format!("no {what} named `{name}` is loaded"))
        }
        EditError::NameTaken(name) => ApiError::new(
            StatusCode::CONFLICT,
            "name_taken",
            format!("a {what} named `{name}` exists already"),
        ),
        EditError::NoFolder | EditError::Io(_) => {
            // The detail (paths, OS errors) goes to the log, not to the page.
            tracing::error!(error = %error, "a {what} could not be saved");
            ApiError::internal(format!("the {what} could not be saved: see Bellhop's log"))
        }
    }
}

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

fn evaluate(state: &AppState, request: EvalRequest) -> Result<Response, ApiError> {
    let input = match (request.input, request.profile) {
        (Some(input), _) => SandboxInput::Text(input),
        (None, Some(profile)) => SandboxInput::LastResponse(profile),
        (None, None) => SandboxInput::Nothing,
    };
    let evaluation =
        state
            .engine
            .evaluate(&request.expression, input)
            .map_err(|error| match error {
                SandboxError::NoResponse(_) => ApiError::not_found(error.to_string()),
                SandboxError::Compile(errors) => {
                    let first = errors.errors.first();
                    let mut api = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "compile_error",
                        errors
                            .errors
                            .iter()
                            .map(|e| e.message.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                    api.column = first.map(|e| e.column);
                    api.span = first.map(|e| e.span);
                    api
                }
                SandboxError::Eval(e) => {
                    let mut api = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "eval_error",
                        e.kind.to_string(),
                    );
                    api.column = Some(e.column);
                    api.span = Some(e.span);
                    api
                }
            })?;
    let value = evaluation.value;
    Ok(ok(&EvalResponse {
        result: value.to_json(),
        text: value.to_text(),
        kind: value.type_name(),
        warnings: evaluation.warnings,
    }))
}

/// An event as the API shows it.
/// An event as the API shows it (typed and borrowed: a listing of thousands of events builds
/// no intermediate JSON tree).
#[derive(serde::Serialize)]
struct EventView<'a> {
    name: &'a str,
    description: &'a str,
    enabled: bool,
    file: String,
    triggers: Vec<String>,
    conditions: Vec<&'a str>,
    actions: usize,
    webhook_url: Option<String>,
    next_at: Option<String>,
    last_run: Option<std::sync::Arc<crate::engine::automation::EventRun>>,
}

fn event_view<'a>(state: &AppState, event: &'a crate::event::Event) -> EventView<'a> {
    let automation = state.engine.automation();
    EventView {
        name: &event.name,
        description: &event.description,
        enabled: event.enabled,
        file: event.file.display().to_string(),
        triggers: event.triggers.iter().map(describe_trigger).collect(),
        conditions: event.conditions.iter().map(|c| c.source()).collect(),
        actions: event.actions.len(),
        webhook_url: state.engine.webhook_url(&event.name),
        next_at: automation
            .next_firing(event)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        last_run: automation.history(&event.name, 1).into_iter().next(),
    }
}

fn describe_trigger(trigger: &crate::event::Trigger) -> String {
    use crate::event::Trigger;
    match trigger {
        Trigger::Schedule(schedule) => schedule.describe(),
        Trigger::Startup => "startup".into(),
        Trigger::Webhook => "webhook".into(),
        Trigger::Input { profile, matcher } => {
            format!("input of `{profile}`: {}", matcher.describe())
        }
        Trigger::Device(device) => format!("device {:?} ({:?})", device.device, device.changes),
        Trigger::Global { name } => format!("global `{name}`"),
        Trigger::Error(error) => format!(
            "error of {}{}",
            error.profile.as_deref().unwrap_or("any profile"),
            error.class.map(|c| format!(" ({c:?})")).unwrap_or_default()
        ),
    }
}

/// One hub event as a server-sent event: its kind as the event name, its view as the data.
/// `None` when the bus is gone (the stream ends).
fn live_event(delivery: Delivery) -> Option<warp::sse::Event> {
    let event = warp::sse::Event::default();
    let built = match delivery {
        Delivery::Closed => return None,
        Delivery::Resync { missed } => event
            .event("resync")
            .json_data(serde_json::json!({ "missed": missed })),
        Delivery::Event(hub_event) => {
            let event = event.event(hub_event.name());
            match &hub_event {
                HubEvent::DeviceChanged { change } => {
                    event.json_data(DeviceView::from(&change.device))
                }
                HubEvent::DeviceRemoved { device } => event.json_data(DeviceView::from(device)),
                HubEvent::GlobalChanged { global } => event.json_data(GlobalView::from(global)),
                HubEvent::RunFinished { run } => event.json_data(serde_json::json!({
                    "profile": run.profile,
                    "ok": run.ok,
                    "skipped": run.skipped,
                    "started_at": run.started_at,
                    "duration_ms": run.duration_ms,
                })),
                HubEvent::ProfilesReloaded { profiles, problems } => event
                    .json_data(serde_json::json!({ "profiles": profiles, "problems": problems })),
                HubEvent::AuthorizationChanged { profile } => {
                    event.json_data(serde_json::json!({ "profile": profile }))
                }
                HubEvent::EventFinished { run } => event.json_data(serde_json::json!({
                    "event": run.event,
                    "trigger": run.trigger,
                    "outcome": run.outcome,
                    "started_at": run.started_at,
                })),
            }
        }
    };
    Some(built.unwrap_or_else(|_| warp::sse::Event::default().comment("unserializable")))
}

fn demo_rooms() -> serde_json::Value {
    let minutes = chrono::Utc::now().timestamp() as f64 / 60.0;
    let wave = |phase: f64| ((minutes / 30.0 + phase).sin() * 10.0).round() / 10.0;
    serde_json::json!({
        "home": "Demo house",
        "rooms": [
            {"name": "Kitchen", "temp": 21.0 + wave(0.0), "humidity": 45, "light": "on"},
            {"name": "Living room", "temp": 20.5 + wave(1.0), "humidity": 40, "light": "off"},
            {"name": "Bedroom", "temp": 18.5 + wave(2.0), "humidity": 50, "light": "off"}
        ],
        "updated": chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    })
}

/// Binds `address` and serves until `shutdown` resolves, at most `max_connections` at once.
/// Returns the bound address (useful with port 0) and the server's task.
pub async fn serve(
    state: AppState,
    address: SocketAddr,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = tokio::net::TcpListener::bind(address).await?;
    let bound = server::local_address(&listener)?;
    let task = tokio::spawn(server::run(
        listener,
        routes(state.with_connection_limit(max_connections)),
        max_connections,
        shutdown,
    ));
    Ok((bound, task))
}
