//! The web adapter: the REST API under `/api/v1` (warp, JSON) and a small demo JSON source.
//! Calls the engine and reads the device hub; nothing imports this module.

mod api;
pub mod dto;
pub mod edge;
pub mod error;
pub mod listening;
pub mod oauth;
mod server;
mod shortcut;

use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use warp::filters::BoxedFilter;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::{Filter, Reply};

use crate::clock::Clock;
use crate::engine::bus::{Delivery, HubEvent};
use crate::engine::door::{DoorError, SandboxInput};
use crate::engine::editor::ProfileForm;
use crate::engine::Engine;
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
    /// What the listening paths' rate limits read the time from.
    clock: Clock,
    /// How long a client may take to send a request's head (30 s).
    head_timeout: std::time::Duration,
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
            clock: Clock::system(),
            head_timeout: server::HEADER_TIMEOUT,
        }
    }

    /// Gives clients `timeout` to send a request's head (30 s by default; tests shorten it).
    pub fn with_head_timeout(mut self, timeout: std::time::Duration) -> AppState {
        self.head_timeout = timeout;
        self
    }

    /// Reads the time from `clock` (the system's by default). The edge has its own
    /// ([`Edge::with_clock`]).
    pub fn with_clock(mut self, clock: Clock) -> AppState {
        self.clock = clock;
        self
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
        || listening::under_base(listen_base, path).is_some()
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
    let mut response = api::pages::static_file("", "text/html; charset=utf-8");
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

/// The room a JSON answer is written into before it grows: a run's answer (about 500 bytes)
/// and most others fit. From serde_json's own 128 bytes an answer grew by two or three
/// `realloc`s, and glibc takes its arena's lock for every `realloc` (under load, the most
/// contended of Bellhop's own allocations: ARCHITECTURE.md, "Performance notes").
const ANSWER_ROOM: usize = 1024;

fn json<T: serde::Serialize>(status: StatusCode, value: &T) -> Response {
    let mut body = Vec::with_capacity(ANSWER_ROOM);
    if let Err(error) = serde_json::to_writer(&mut body, value) {
        // (Only a type that cannot be JSON fails here: a defect, not an input.)
        tracing::error!(error = %error, "an answer could not be written as JSON");
        return StatusCode::INTERNAL_SERVER_ERROR.into_response();
    }
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    response.headers_mut().insert(
        warp::http::header::CONTENT_TYPE,
        warp::http::HeaderValue::from_static("application/json"),
    );
    response
}

fn ok<T: serde::Serialize>(value: &T) -> Response {
    json(StatusCode::OK, value)
}

/// What a handler answers: a response, or the one error envelope.
type Answer = Result<Response, ApiError>;

/// A handler's answer as a response.
fn answer(result: Answer) -> Response {
    result.unwrap_or_else(|e| e.into_response())
}

/// `/api/v1/…`
fn api() -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    warp::path("api").and(warp::path("v1"))
}

/// `/api/v1/<name>` exactly (a collection, or a command like `reload`).
fn at(name: &'static str) -> impl Filter<Extract = (), Error = warp::Rejection> + Clone {
    api().and(warp::path(name)).and(warp::path::end())
}

fn with_state(state: AppState) -> impl Filter<Extract = (AppState,), Error = Infallible> + Clone {
    warp::any().map(move || state.clone())
}

fn json_body<T: serde::de::DeserializeOwned + Send>(
) -> impl Filter<Extract = (T,), Error = warp::Rejection> + Clone {
    warp::body::content_length_limit(BODY_LIMIT).and(warp::body::json())
}

/// The first of `routes` (in their order) that takes a request, as a balanced tree of `or`s: a
/// request meets as many levels as the tree is deep (6 for 40 routes), where a chain would
/// build and poll one boxed future per route before it.
fn either_of(mut routes: Vec<BoxedFilter<(Response,)>>) -> BoxedFilter<(Response,)> {
    match routes.len() {
        0 => warp::any()
            .and_then(|| async { Err::<Response, _>(warp::reject::not_found()) })
            .boxed(),
        1 => routes.remove(0),
        n => {
            let later = routes.split_off(n / 2);
            either_of(routes).or(either_of(later)).unify().boxed()
        }
    }
}

/// Every route: the edge first, then sign-in, the API by resource, the listening paths, the
/// UI; one error envelope for every refusal.
pub fn routes(state: AppState) -> impl Filter<Extract = (Response,), Error = Infallible> + Clone {
    // Boxing each route keeps the filter's type small (deep `or` chains overflow the compiler).
    // The busiest routes go first: actions, then what sensors call (anything outside the
    // listen base is refused there at once).
    let mut all: Vec<BoxedFilter<(Response,)>> = api::runs::routes(&state);
    all.push(listening::route(state.clone()));
    all.extend(api::system::routes(&state));
    all.extend(api::profiles::routes(&state));
    all.extend(api::devices::routes(&state));
    all.extend(api::authorization::routes(&state));
    all.extend(api::stream::routes(&state));
    all.extend(api::events::routes(&state));
    all.extend(api::pages::routes(&state));
    let combined = either_of(all);
    edge_gate(state.clone())
        .and(login(state.clone()).or(combined).unify())
        .recover(error::recover)
        .unify()
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

fn decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
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
    serve_on(state, listener, max_connections, shutdown)
}

/// Serves on a listener bound already (so its port is known before the engine is built).
pub fn serve_on(
    state: AppState,
    listener: tokio::net::TcpListener,
    max_connections: usize,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let bound = server::local_address(&listener)?;
    let state = state.with_connection_limit(max_connections);
    let head_timeout = state.head_timeout;
    let task = tokio::spawn(server::run(
        listener,
        head_timeout,
        routes(state.clone()),
        shortcut::Shortcut::new(state),
        max_connections,
        shutdown,
    ));
    Ok((bound, task))
}
