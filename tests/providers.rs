//! Every shipped provider preset against a stub on 127.0.0.1 that behaves the way that
//! provider documents (see `../shared/research/oauth-providers.md`): its client
//! authentication, extra parameters, scope separator, token-answer shape (nested, form-encoded,
//! absolute expiry, expiry as text), refresh-token rotation or keeping, error shapes (HTTP 200
//! errors included), the API's token header and parameters, the status an expired token gets,
//! the profile endpoint, and revocation.
//!
//! The profile names the preset and only rebases its addresses onto the stub (paths kept), so
//! everything else under test comes from the shipped definition.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bellhop::clock::Clock;
use bellhop::engine::authorization::{AuthorizationStatus, Authorizer};
use bellhop::engine::Engine;
use bellhop::profile::ProviderCatalog;
use bellhop::tokens::{load_or_create_key, TokenStore};
use warp::Filter;

use crate::support::Workspace;

const CLIENT_ID: &str = "client-1";
const CLIENT_SECRET: &str = "secret-1";

#[derive(Clone, Copy, PartialEq, Debug)]
enum ClientAuth {
    Basic,
    Body,
    Public,
}

/// How the provider writes a token answer.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Answer {
    Plain,
    /// `expires_in` as text (Resideo, Microsoft v1).
    TextExpiry,
    /// Withings: `{"status":0,"body":{…}}`.
    Nested,
    /// GitHub: form-encoded, labelled `application/json`.
    FormLabelledJson,
    /// Strava: `expires_at` in seconds since 1970.
    AbsoluteExpiry,
    /// Netatmo: `scope` as a list, `expire_in` beside `expires_in`.
    ListScope,
}

/// How the provider refuses a dead refresh token.
#[derive(Clone, Copy, PartialEq, Debug)]
enum Refusal {
    /// 400 `{"error":"invalid_grant"}`.
    Standard,
    /// HTTP 200 `{"error":"invalid_code"}` (Zoho).
    Json200,
    /// HTTP 200 form `error=bad_refresh_token&…` (GitHub).
    Form200,
    /// HTTP 200 `{"status":503,"error":"Invalid Params: invalid refresh_token"}` (Withings).
    Status200,
    /// 400 `{"errors":[{"errorType":"invalid_grant",…}],"success":false}` (Fitbit).
    FitbitErrors,
    /// 400 `{"message":"Bad Request","errors":[{…,"code":"invalid"}]}` (Strava).
    StravaErrors,
    /// 400 with FusionAuth's `error_reason` (tado).
    ErrorReason,
}

struct Quirks {
    preset: &'static str,
    auth: ClientAuth,
    /// Fields every token request must carry.
    token_params: &'static [(&'static str, &'static str)],
    /// What the authorize URL must carry besides the standard parameters.
    authorize_params: &'static [(&'static str, &'static str)],
    /// How the scopes the preset asks for are joined.
    scope_separator: char,
    answer: Answer,
    refusal: Refusal,
    /// The refresh answer carries a new refresh token and the old one dies.
    rotates: bool,
    /// The API's token header and the text before the token.
    api_header: (&'static str, &'static str),
    /// A query parameter every API call must carry, and its value.
    api_query: Option<(&'static str, &'static str)>,
    /// What the API answers to an expired token.
    expired_status: u16,
    /// The API says "expired" inside an HTTP 200 (Withings: `{"status": 401, …}`).
    expired_in_body: bool,
    /// Extra fields of the token answer.
    extra: &'static str,
    /// The API URL is built from the token answer's `api_domain` (Zoho).
    api_from_token: bool,
    /// The profile endpoint's answer, its method, and the identity Bellhop should show.
    userinfo: Option<(&'static str, &'static str, &'static str)>,
    /// The device flow instead of a browser (tado).
    device: bool,
    /// ecobee's PIN flow: a GET for the PIN (`ecobeePin`, `code`, `expires_in` in minutes),
    /// polls with `grant_type=ecobeePin`, every parameter in the query.
    ecobee_pin: bool,
    /// The refusal's message, as the user should see it.
    refused_text: &'static str,
}

const STANDARD: Quirks = Quirks {
    preset: "",
    auth: ClientAuth::Basic,
    token_params: &[],
    authorize_params: &[],
    scope_separator: ' ',
    answer: Answer::Plain,
    refusal: Refusal::Standard,
    rotates: false,
    api_header: ("authorization", "Bearer "),
    api_query: None,
    expired_status: 401,
    expired_in_body: false,
    extra: "",
    api_from_token: false,
    userinfo: None,
    device: false,
    ecobee_pin: false,
    refused_text: "invalid_grant",
};

#[derive(Default)]
struct State {
    codes: Vec<String>,
    valid_access: Vec<String>,
    valid_refresh: Vec<String>,
    issued: usize,
    refreshes: usize,
    refuse_refresh: bool,
    /// Device codes and whether their user code was entered.
    devices: HashMap<String, (String, bool)>,
    device_polls: usize,
    revoked: Vec<String>,
    /// Each problem the stub saw with a request (a test fails on any).
    problems: Vec<String>,
    next_expires_in: u64,
}

struct Stub {
    address: SocketAddr,
    state: Arc<Mutex<State>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl Stub {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn base(&self) -> String {
        format!("http://{}", self.address)
    }
}

/// The preset's endpoint paths.
struct Paths {
    authorize: Option<String>,
    token: String,
    device: Option<String>,
    revoke: Option<String>,
    userinfo: Option<String>,
}

fn path_of(url: &Option<String>, tenant: &str) -> Option<String> {
    let url = url.as_ref()?.replace("{{tenant}}", tenant);
    url::Url::parse(&url).ok().map(|u| u.path().to_string())
}

fn paths_of(preset: &str) -> Paths {
    let definition = ProviderCatalog::built_in()
        .get(preset)
        .unwrap_or_else(|| panic!("no preset {preset}"));
    let s = &definition.settings;
    let tenant = s.settings.get("tenant").map(String::as_str).unwrap_or("");
    Paths {
        authorize: path_of(&s.authorize_url, tenant),
        token: path_of(&s.token_url, tenant).unwrap_or_else(|| panic!("{preset}: no token URL")),
        device: path_of(&s.device_authorization_url, tenant),
        revoke: path_of(&s.revocation_url, tenant),
        userinfo: path_of(&s.userinfo_url, tenant),
    }
}

fn reply(status: u16, content_type: &str, body: String) -> warp::reply::Response {
    let mut response = warp::reply::Response::new(body.into());
    *response.status_mut() = warp::http::StatusCode::from_u16(status).unwrap_or_default();
    if let Ok(value) = warp::http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert("content-type", value);
    }
    response
}

fn json(status: u16, value: serde_json::Value) -> warp::reply::Response {
    reply(status, "application/json", value.to_string())
}

struct Request {
    path: String,
    method: String,
    headers: warp::http::HeaderMap,
    query: HashMap<String, String>,
    form: HashMap<String, String>,
}

fn basic_credentials(headers: &warp::http::HeaderMap) -> Option<(String, String)> {
    use base64::Engine;
    let value = headers.get("authorization")?.to_str().ok()?;
    let encoded = value.strip_prefix("Basic ")?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded)
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((decode(id), decode(secret)))
}

fn client_problem(q: &Quirks, r: &Request) -> Option<String> {
    let basic = basic_credentials(&r.headers);
    let body_id = r.form.get("client_id").map(String::as_str);
    let body_secret = r.form.get("client_secret").map(String::as_str);
    match q.auth {
        ClientAuth::Basic if basic != Some((CLIENT_ID.into(), CLIENT_SECRET.into())) => Some(
            format!("expected HTTP Basic client authentication, got {basic:?}"),
        ),
        ClientAuth::Body
            if basic.is_some()
                || body_id != Some(CLIENT_ID)
                || body_secret != Some(CLIENT_SECRET) =>
        {
            Some("expected client_id and client_secret in the body, and no Basic".into())
        }
        ClientAuth::Public if basic.is_some() || body_secret.is_some() || body_id.is_none() => {
            Some("a public client sends client_id only".into())
        }
        _ => None,
    }
}

/// The token answer in the provider's shape.
fn token_answer(
    q: &Quirks,
    s: &mut State,
    with_refresh: bool,
    base: &str,
) -> warp::reply::Response {
    s.issued += 1;
    let access = format!("at-{}", s.issued);
    let refresh = format!("rt-{}", s.issued);
    s.valid_access.push(access.clone());
    if with_refresh {
        s.valid_refresh.push(refresh.clone());
    }
    let expires = s.next_expires_in;
    let mut fields = serde_json::json!({
        "access_token": access,
        "token_type": "Bearer",
        "expires_in": expires,
    });
    // Refresh answers leave the scope out (RFC 6749 §5.1: then it is the one granted).
    let first = s.refreshes == 0 && s.issued == 1;
    if first {
        fields["scope"] = "read".into();
    }
    if with_refresh {
        fields["refresh_token"] = refresh.clone().into();
    }
    if !q.extra.is_empty() {
        let extra: serde_json::Value = serde_json::from_str(&q.extra.replace("{base}", base))
            .unwrap_or_else(|e| panic!("{e}"));
        if let (Some(target), Some(extra)) = (fields.as_object_mut(), extra.as_object()) {
            target.extend(extra.clone());
        }
    }
    match q.answer {
        Answer::Plain => json(200, fields),
        Answer::TextExpiry => {
            fields["expires_in"] = expires.to_string().into();
            json(200, fields)
        }
        Answer::ListScope => {
            fields["expire_in"] = expires.into();
            if first {
                fields["scope"] = serde_json::json!(["read_station", "read_thermostat"]);
            }
            json(200, fields)
        }
        Answer::Nested => json(200, serde_json::json!({"status": 0, "body": fields})),
        Answer::AbsoluteExpiry => {
            let now = chrono::Utc::now().timestamp() as u64;
            fields["expires_at"] = (now + expires).into();
            fields["expires_in"] = (expires + 5000).into(); // must not be the one read
            json(200, fields)
        }
        Answer::FormLabelledJson => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            form.append_pair("access_token", &access)
                .append_pair("expires_in", &expires.to_string())
                .append_pair("scope", "read")
                .append_pair("token_type", "bearer");
            if with_refresh {
                form.append_pair("refresh_token", &refresh)
                    .append_pair("refresh_token_expires_in", "15811200");
            }
            reply(200, "application/json; charset=utf-8", form.finish())
        }
    }
}

fn refusal(q: &Quirks) -> warp::reply::Response {
    match q.refusal {
        Refusal::Standard => json(400, serde_json::json!({"error": "invalid_grant", "error_description": "Token has been expired or revoked."})),
        Refusal::Json200 => json(200, serde_json::json!({"error": "invalid_code"})),
        Refusal::Form200 => reply(
            200,
            "application/x-www-form-urlencoded",
            "error=bad_refresh_token&error_description=The+refresh+token+passed+is+incorrect+or+expired.&error_uri=https%3A%2F%2Fdocs.github.com".into(),
        ),
        Refusal::Status200 => json(200, serde_json::json!({"status": 503, "error": "Invalid Params: invalid refresh_token"})),
        Refusal::FitbitErrors => json(400, serde_json::json!({"errors": [{"errorType": "invalid_grant", "message": "Refresh token invalid: rt. Visit https://dev.fitbit.com/docs/oauth2 for more information on the Fitbit Web API authorization process."}], "success": false})),
        Refusal::StravaErrors => json(400, serde_json::json!({"message": "Bad Request", "errors": [{"resource": "RefreshToken", "field": "refresh_token", "code": "invalid"}]})),
        Refusal::ErrorReason => json(400, serde_json::json!({"error": "invalid_grant", "error_description": "The refresh_token is invalid.", "error_reason": "refresh_token_not_found"})),
    }
}

fn handle(
    q: &'static Quirks,
    paths: &Paths,
    shared: &Arc<Mutex<State>>,
    base: &str,
    mut r: Request,
) -> warp::reply::Response {
    let mut s = shared.lock().unwrap_or_else(|e| e.into_inner());
    let token_of = |r: &Request| -> Option<String> {
        let value = r.headers.get(q.api_header.0)?.to_str().ok()?;
        value.strip_prefix(q.api_header.1).map(str::to_string)
    };
    if q.ecobee_pin && (r.path == paths.token || Some(&r.path) == paths.device.as_ref()) {
        // ecobee takes its parameters in the query, the PIN request by GET.
        if !r.form.is_empty() {
            s.problems.push(format!(
                "{}: ecobee takes its parameters in the query",
                r.path
            ));
        }
        r.form = r.query.clone();
    }
    if Some(&r.path) == paths.device.as_ref() && q.ecobee_pin {
        if r.method != "GET" || r.form.get("response_type").map(String::as_str) != Some("ecobeePin")
        {
            s.problems
                .push(format!("PIN request: {} {:?}", r.method, r.form));
        }
        if let Some(problem) = client_problem(q, &r) {
            s.problems.push(format!("PIN request: {problem}"));
        }
        let code = format!("ecobee-code-{}", s.devices.len() + 1);
        let pin = format!("PIN{}", s.devices.len() + 1);
        s.devices.insert(code.clone(), (pin.clone(), false));
        return json(
            200,
            serde_json::json!({"ecobeePin": pin, "code": code, "scope": "smartWrite", "expires_in": 9, "interval": 1}),
        );
    }
    if Some(&r.path) == paths.device.as_ref() {
        if let Some(problem) = client_problem(q, &r) {
            s.problems.push(format!("device: {problem}"));
        }
        let device_code = format!("dc-{}", s.devices.len() + 1);
        let user_code = format!("UC{}", s.devices.len() + 1);
        s.devices
            .insert(device_code.clone(), (user_code.clone(), false));
        return json(
            200,
            serde_json::json!({
                "device_code": device_code, "user_code": user_code, "expires_in": 300, "interval": 1,
                "verification_uri": format!("{base}/oauth2/device"),
                "verification_uri_complete": format!("{base}/oauth2/device?user_code={user_code}"),
            }),
        );
    }
    if r.path == paths.token {
        if let Some(problem) = client_problem(q, &r) {
            s.problems.push(format!("token: {problem}"));
            return json(401, serde_json::json!({"error": "invalid_client"}));
        }
        for (name, value) in q.token_params {
            if r.form.get(*name).map(String::as_str) != Some(value) {
                s.problems.push(format!("token: `{name}={value}` missing"));
                return json(
                    200,
                    serde_json::json!({"status": 503, "error": "Invalid Params"}),
                );
            }
        }
        let with_refresh = true;
        return match r.form.get("grant_type").map(String::as_str) {
            Some("authorization_code") => {
                let code = r.form.get("code").cloned().unwrap_or_default();
                let Some(at) = s.codes.iter().position(|c| *c == code) else {
                    return refusal(q);
                };
                s.codes.remove(at);
                token_answer(q, &mut s, with_refresh, base)
            }
            Some("refresh_token") => {
                let old = r.form.get("refresh_token").cloned().unwrap_or_default();
                if s.refuse_refresh || !s.valid_refresh.contains(&old) {
                    return refusal(q);
                }
                s.refreshes += 1;
                if q.rotates {
                    s.valid_refresh.retain(|t| *t != old);
                    token_answer(q, &mut s, true, base)
                } else {
                    // The old refresh token stays; the answer has none.
                    token_answer(q, &mut s, false, base)
                }
            }
            Some("ecobeePin") if q.ecobee_pin => {
                s.device_polls += 1;
                let code = r.form.get("code").cloned().unwrap_or_default();
                match s.devices.get(&code).cloned() {
                    Some((_, true)) => {
                        s.devices.remove(&code);
                        token_answer(q, &mut s, with_refresh, base)
                    }
                    Some((_, false)) => json(
                        401,
                        serde_json::json!({"error": "authorization_pending", "error_description": "Waiting for user to authorize application."}),
                    ),
                    None => json(400, serde_json::json!({"error": "invalid_grant"})),
                }
            }
            Some("urn:ietf:params:oauth:grant-type:device_code") => {
                s.device_polls += 1;
                let code = r.form.get("device_code").cloned().unwrap_or_default();
                match s.devices.get(&code).cloned() {
                    Some((_, true)) => {
                        s.devices.remove(&code);
                        token_answer(q, &mut s, with_refresh, base)
                    }
                    Some((_, false)) => json(
                        400,
                        serde_json::json!({"error": "authorization_pending", "error_description": "The user has not yet authorized", "error_reason": "authorization_pending"}),
                    ),
                    None => json(400, serde_json::json!({"error": "invalid_grant"})),
                }
            }
            other => {
                s.problems
                    .push(format!("token: unexpected grant {other:?}"));
                json(400, serde_json::json!({"error": "unsupported_grant_type"}))
            }
        };
    }
    if Some(&r.path) == paths.revoke.as_ref() {
        if let Some(token) = r.form.get("token") {
            s.revoked.push(token.clone());
        }
        return reply(200, "text/plain", String::new());
    }
    if Some(&r.path) == paths.userinfo.as_ref() {
        let Some((body, method, _)) = q.userinfo else {
            return json(404, serde_json::json!({}));
        };
        if r.method != method {
            s.problems
                .push(format!("userinfo: expected {method}, got {}", r.method));
        }
        return match token_of(&r) {
            Some(token) if s.valid_access.contains(&token) => {
                reply(200, "application/json", body.into())
            }
            _ => {
                s.problems.push("userinfo: no valid token".into());
                json(401, serde_json::json!({"error": "invalid_token"}))
            }
        };
    }
    if r.path == "/api/data" {
        if let Some((name, value)) = q.api_query {
            if r.query.get(name).map(String::as_str) != Some(value) {
                s.problems.push(format!("api: `?{name}={value}` missing"));
                return json(
                    401,
                    serde_json::json!({"fault": {"faultstring": "Failed to resolve API Key variable request.queryparam.apikey"}}),
                );
            }
        }
        return match token_of(&r) {
            Some(token) if s.valid_access.contains(&token) => {
                json(200, serde_json::json!({"temperature": 21.5}))
            }
            _ if q.expired_in_body => json(
                200,
                serde_json::json!({"status": 401, "body": {}, "error": "XRequestID: Not provided invalid_token: The access token provided is invalid"}),
            ),
            _ => json(
                q.expired_status,
                serde_json::json!({"error": {"code": 3, "message": "Access token expired"}}),
            ),
        };
    }
    s.problems
        .push(format!("unexpected request {} {}", r.method, r.path));
    json(404, serde_json::json!({}))
}

async fn start_stub(q: &'static Quirks) -> Stub {
    let paths = Arc::new(paths_of(q.preset));
    let state = Arc::new(Mutex::new(State {
        next_expires_in: 3600,
        ..State::default()
    }));
    let shared = state.clone();
    let base = Arc::new(Mutex::new(String::new()));
    let base_for_routes = base.clone();
    let route = warp::path::full()
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::query::<HashMap<String, String>>())
        .and(warp::body::bytes())
        .map(
            move |path: warp::path::FullPath,
                  method: warp::http::Method,
                  headers,
                  query,
                  body: bytes::Bytes| {
                let form: HashMap<String, String> =
                    url::form_urlencoded::parse(&body).into_owned().collect();
                let request = Request {
                    path: path.as_str().to_string(),
                    method: method.to_string(),
                    headers,
                    query,
                    form,
                };
                let base = base_for_routes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .clone();
                handle(q, &paths, &shared, &base, request)
            },
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .unwrap_or_else(|e| panic!("stub cannot bind: {e}"));
    let address = listener.local_addr().unwrap_or_else(|e| panic!("{e}"));
    *base.lock().unwrap_or_else(|e| e.into_inner()) = format!("http://{address}");
    // The stub stops when the test drops it.
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = warp::serve(route).incoming(listener).graceful(async {
        let _ = stopped.await;
    });
    tokio::spawn(server.run());
    Stub {
        address,
        state,
        _stop: stop,
    }
}

/// The profile: the preset named, its addresses rebased onto the stub, nothing else.
fn profile_for(q: &Quirks, stub: &Stub) -> String {
    let paths = paths_of(q.preset);
    let base = stub.base();
    let mut text = String::from("version = 1\n[request]\n");
    if q.api_from_token {
        text.push_str("url = '${Token(\"api_domain\")}/api/data'\n");
    } else {
        text.push_str(&format!("url = \"{base}/api/data\"\n"));
    }
    text.push_str("timeout_secs = 5\n\n[auth.oauth2]\n");
    text.push_str(&format!(
        "provider = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = \"{CLIENT_SECRET}\"\n",
        q.preset
    ));
    text.push_str(&format!("token_url = \"{base}{}\"\n", paths.token));
    for (key, path) in [
        ("authorize_url", &paths.authorize),
        ("device_authorization_url", &paths.device),
        ("revocation_url", &paths.revoke),
        ("userinfo_url", &paths.userinfo),
    ] {
        if let Some(path) = path {
            text.push_str(&format!("{key} = \"{base}{path}\"\n"));
        }
    }
    text.push_str(
        "\n[devices]\nroot_names = '\"temperature\"'\nvalues = 'JSON(input, \"temperature\")'\n",
    );
    text
}

struct Setup {
    engine: Arc<Engine>,
    /// The authorization's time: moved forward instead of sleeping through token lifetimes.
    clock: Clock,
    _ws: Workspace,
}

fn engine_for(text: &str) -> Setup {
    let ws = Workspace::new();
    ws.write_profile("home", text);
    let key =
        load_or_create_key(&ws.path().join("keys/token.key")).unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(
        TokenStore::open(&ws.path().join("data/tokens"), &key).unwrap_or_else(|e| panic!("{e}")),
    );
    let base = url::Url::parse("http://127.0.0.1:8765/").unwrap_or_else(|e| panic!("{e}"));
    let clock = Clock::adjustable();
    let authorizer = Authorizer::new(store, base, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("{e}"))
        .with_token_timeout(Duration::from_secs(3))
        .with_clock(clock.clone());
    let set = ws.load();
    assert!(!set.has_errors(), "{text}\n{:#?}", set.diagnostics);
    let engine = Arc::new(
        Engine::new(set, None, ws.hub())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_authorizer(Arc::new(authorizer)),
    );
    Setup {
        engine,
        clock,
        _ws: ws,
    }
}

fn status(engine: &Engine) -> AuthorizationStatus {
    engine
        .authorization_status("home")
        .unwrap_or_else(|e| panic!("{e}"))
}

async fn run_ok(engine: &Arc<Engine>, what: &str) {
    let record = engine
        .run("home", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{what}: {:?}", record.errors);
    let value = engine
        .devices()
        .into_iter()
        .find(|d| d.key.profile == "home" && d.key.root == "temperature")
        .map(|d| d.value);
    assert_eq!(value, Some(21.5), "{what}");
}

/// Authorizes the profile as the provider's users do, runs it, refreshes, survives an expired
/// token, is refused with the provider's error shape, and forgets (revoking when it can).
async fn exercise(q: &'static Quirks) {
    let stub = start_stub(q).await;
    stub.state().next_expires_in = 4;
    let setup = engine_for(&profile_for(q, &stub));
    let engine = &setup.engine;

    if q.device {
        let device = engine
            .start_device_authorization("home")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.preset));
        assert!(
            matches!(status(engine), AuthorizationStatus::AwaitingUser { ref user_code, .. } if *user_code == device.user_code)
        );
        setup.clock.advance(Duration::from_millis(1500));
        crate::support::eventually(|| stub.state().device_polls >= 1).await;
        assert!(stub.state().device_polls >= 1, "the device flow polls");
        for entry in stub.state().devices.values_mut() {
            entry.1 = true;
        }
        // The next poll, one interval later, finds the code entered.
        setup.clock.advance(Duration::from_millis(1500));
    } else {
        let url = engine
            .begin_authorization("home")
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.preset));
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        assert_eq!(
            Some(url.path()),
            paths_of(q.preset).authorize.as_deref(),
            "{}",
            q.preset
        );
        for (name, value) in q.authorize_params {
            assert_eq!(
                query.get(*name).map(String::as_str),
                Some(*value),
                "{}: {name}",
                q.preset
            );
        }
        let scopes = ProviderCatalog::built_in()
            .get(q.preset)
            .and_then(|d| d.settings.scopes.clone())
            .unwrap_or_default();
        if scopes.split([' ', ',']).filter(|s| !s.is_empty()).count() > 1 {
            let scope = query.get("scope").cloned().unwrap_or_default();
            assert!(
                scope.contains(q.scope_separator),
                "{}: scope `{scope}`",
                q.preset
            );
        }
        stub.state().codes.push("the-code".into());
        let mut callback = HashMap::new();
        callback.insert(
            "state".to_string(),
            query.get("state").cloned().unwrap_or_default(),
        );
        callback.insert("code".to_string(), "the-code".to_string());
        engine
            .complete_redirect(&callback)
            .await
            .unwrap_or_else(|e| panic!("{}: {e}", q.preset));
    }
    assert!(
        crate::support::eventually(|| matches!(
            status(engine),
            AuthorizationStatus::Authorized { .. }
        ))
        .await,
        "{}: {:?}",
        q.preset,
        status(engine)
    );
    if let Some((_, _, identity)) = q.userinfo {
        let AuthorizationStatus::Authorized { authorized_as, .. } = status(engine) else {
            panic!()
        };
        assert_eq!(authorized_as.as_deref(), Some(identity), "{}", q.preset);
    }
    run_ok(engine, q.preset).await;
    let granted = match status(engine) {
        AuthorizationStatus::Authorized { scopes, .. } => scopes,
        other => panic!("{other:?}"),
    };
    assert!(
        !granted.is_empty(),
        "{}: the granted scopes are shown",
        q.preset
    );

    // The token lives 4 s: after half of it (2 s), the next run refreshes first.
    setup.clock.advance(Duration::from_millis(2_100));
    stub.state().next_expires_in = 3600;
    run_ok(engine, "after the refresh").await;
    assert_eq!(stub.state().refreshes, 1, "{}", q.preset);
    assert!(
        matches!(status(engine), AuthorizationStatus::Authorized { ref scopes, .. } if *scopes == granted),
        "{}: a refresh answer without a scope keeps the granted ones: {:?}",
        q.preset,
        status(engine)
    );
    let rotated_or_kept = stub.state().valid_refresh.len();
    assert_eq!(rotated_or_kept, 1, "{}: one live refresh token", q.preset);

    // The provider ends the access token early: the API's "expired" answer makes one refresh.
    stub.state().valid_access.clear();
    run_ok(engine, "after an expired token").await;
    assert_eq!(stub.state().refreshes, 2, "{}", q.preset);

    // The grant dies at the provider: its own error shape becomes a readable reason.
    stub.state().valid_access.clear();
    stub.state().refuse_refresh = true;
    let record = engine
        .run("home", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    match status(engine) {
        AuthorizationStatus::NeedsReauthorization { reason } => {
            assert!(reason.contains(q.refused_text), "{}: {reason}", q.preset)
        }
        other => panic!("{}: {other:?}", q.preset),
    }
    let (after, note) = engine
        .forget_authorization("home")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(after, AuthorizationStatus::NeverAuthorized);
    if paths_of(q.preset).revoke.is_some() {
        assert!(
            !stub.state().revoked.is_empty(),
            "{}: revoked at forget",
            q.preset
        );
    } else {
        // Forget says when nothing was revoked, and why.
        assert!(
            note.as_deref()
                .is_some_and(|n| n.contains("nothing was revoked") && n.contains("revocation_url")),
            "{}: {note:?}",
            q.preset
        );
    }
    let problems = stub.state().problems.clone();
    assert!(problems.is_empty(), "{}: {problems:?}", q.preset);
}

/// A profile that writes its own token endpoint takes none of its provider's addresses: the
/// load says which ones it drops and how to set them.
#[test]
fn a_profile_with_its_own_token_url_is_told_which_addresses_it_drops() {
    let ws = Workspace::new();
    ws.write_profile(
        "proxy",
        "version = 1\n[request]\nurl = \"https://discord.com/api/users/@me\"\n[auth]\nmode = \"oauth2\"\n[auth.oauth2]\nprovider = \"discord\"\nclient_id = \"c\"\ntoken_url = \"http://127.0.0.1:9/token\"\nauthorize_url = \"http://127.0.0.1:9/authorize\"\n",
    );
    let set = ws.load();
    assert!(set.get("proxy").is_some(), "{:#?}", set.diagnostics);
    let warning = set
        .diagnostics
        .iter()
        .find(|d| d.key == "auth.oauth2.token_url")
        .unwrap_or_else(|| panic!("no warning: {:#?}", set.diagnostics));
    assert!(!warning.is_error());
    assert!(
        warning
            .message
            .contains("revocation_url (https://discord.com/api/oauth2/token/revoke)")
            && warning.message.contains("userinfo_url")
            && !warning.message.contains("authorize_url"),
        "{}",
        warning.message
    );
}

macro_rules! preset_test {
    ($name:ident, $quirks:expr) => {
        #[tokio::test]
        async fn $name() {
            static QUIRKS: Quirks = $quirks;
            exercise(&QUIRKS).await;
        }
    };
}

preset_test!(
    discord_basic_auth_and_revocation,
    Quirks {
        preset: "discord",
        userinfo: Some((
            r#"{"id":"80351110224678912","username":"nelly","global_name":"Nelly","email":"nelly@example.com"}"#,
            "GET",
            "Nelly (nelly@example.com)"
        )),
        rotates: true,
        ..STANDARD
    }
);

preset_test!(
    google_offline_access_body_auth_and_kept_refresh_token,
    Quirks {
        preset: "google",
        auth: ClientAuth::Body,
        authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        userinfo: Some((
            r#"{"sub":"1","name":"Ann Example","email":"ann@example.com","email_verified":true}"#,
            "GET",
            "Ann Example (ann@example.com)"
        )),
        ..STANDARD
    }
);

preset_test!(
    microsoft_tenant_in_the_path_and_rotation,
    Quirks {
        preset: "microsoft",
        auth: ClientAuth::Body,
        rotates: true,
        extra: r#"{"ext_expires_in": 3599, "id_token": "eyJ.x.y"}"#,
        userinfo: Some((
            r#"{"displayName":"Ann Example","mail":null,"userPrincipalName":"ann@contoso.example"}"#,
            "GET",
            "Ann Example (ann@contoso.example)"
        )),
        ..STANDARD
    }
);

preset_test!(
    github_form_answers_and_errors_with_http_200,
    Quirks {
        preset: "github",
        auth: ClientAuth::Body,
        answer: Answer::FormLabelledJson,
        refusal: Refusal::Form200,
        rotates: true,
        userinfo: Some((
            r#"{"login":"octocat","name":null,"email":null}"#,
            "GET",
            "octocat"
        )),
        refused_text: "bad_refresh_token",
        ..STANDARD
    }
);

preset_test!(
    zoho_api_domain_and_its_own_header_scheme,
    Quirks {
        preset: "zoho-eu",
        auth: ClientAuth::Body,
        authorize_params: &[("access_type", "offline"), ("prompt", "consent")],
        scope_separator: ',',
        refusal: Refusal::Json200,
        api_header: ("authorization", "Zoho-oauthtoken "),
        extra: r#"{"api_domain": "{base}"}"#,
        api_from_token: true,
        userinfo: Some((
            r#"{"First_Name":"Ann","Last_Name":"Example","Email":"ann@example.eu","Display_Name":"Ann E","ZUID":1}"#,
            "GET",
            "Ann E (ann@example.eu)"
        )),
        refused_text: "invalid_code",
        ..STANDARD
    }
);

preset_test!(
    spotify_basic_auth_and_kept_refresh_token,
    Quirks {
        preset: "spotify",
        userinfo: Some((
            r#"{"display_name":"Ann","email":"ann@example.com","id":"ann"}"#,
            "GET",
            "Ann (ann@example.com)"
        )),
        ..STANDARD
    }
);

preset_test!(
    netatmo_rotation_list_scope_and_403_for_an_expired_token,
    Quirks {
        preset: "netatmo",
        auth: ClientAuth::Body,
        answer: Answer::ListScope,
        rotates: true,
        expired_status: 403,
        ..STANDARD
    }
);

preset_test!(
    withings_action_parameter_nested_answer_and_status_errors,
    Quirks {
        preset: "withings",
        auth: ClientAuth::Body,
        token_params: &[("action", "requesttoken")],
        scope_separator: ',',
        answer: Answer::Nested,
        refusal: Refusal::Status200,
        rotates: true,
        expired_in_body: true,
        extra: r#"{"userid": "363", "csrf_token": "c"}"#,
        refused_text: "Invalid Params",
        ..STANDARD
    }
);

preset_test!(
    strava_absolute_expiry_and_its_error_list,
    Quirks {
        preset: "strava",
        auth: ClientAuth::Body,
        authorize_params: &[("approval_prompt", "auto")],
        scope_separator: ',',
        answer: Answer::AbsoluteExpiry,
        refusal: Refusal::StravaErrors,
        rotates: true,
        extra: r#"{"athlete": {"id": 1}}"#,
        userinfo: Some((
            r#"{"id":1,"firstname":"Ann","lastname":"Example"}"#,
            "GET",
            "Ann Example"
        )),
        refused_text: "invalid (Bad Request)",
        ..STANDARD
    }
);

preset_test!(
    dropbox_offline_access_and_a_profile_by_post,
    Quirks {
        preset: "dropbox",
        authorize_params: &[("token_access_type", "offline")],
        extra: r#"{"account_id": "dbid:1", "uid": "1"}"#,
        userinfo: Some((
            r#"{"account_id":"dbid:1","name":{"display_name":"Ann Example"},"email":"ann@example.com"}"#,
            "POST",
            "Ann Example (ann@example.com)"
        )),
        ..STANDARD
    }
);

preset_test!(
    fitbit_rotation_and_its_error_list,
    Quirks {
        preset: "fitbit",
        refusal: Refusal::FitbitErrors,
        rotates: true,
        extra: r#"{"user_id": "ABC"}"#,
        userinfo: Some((
            r#"{"user":{"fullName":"","displayName":"Ann E.","encodedId":"ABC"}}"#,
            "GET",
            "Ann E."
        )),
        refused_text: "Refresh token invalid",
        ..STANDARD
    }
);

preset_test!(
    ecobee_pin_flow_query_parameters_public_client_and_500_for_an_expired_token,
    Quirks {
        preset: "ecobee",
        auth: ClientAuth::Public,
        rotates: true,
        expired_status: 500,
        device: true,
        ecobee_pin: true,
        ..STANDARD
    }
);

preset_test!(
    resideo_apikey_on_every_call_and_text_expiry,
    Quirks {
        preset: "resideo",
        answer: Answer::TextExpiry,
        rotates: true,
        api_query: Some(("apikey", CLIENT_ID)),
        ..STANDARD
    }
);

preset_test!(
    smartthings_basic_auth_and_rotation,
    Quirks {
        preset: "smartthings",
        rotates: true,
        ..STANDARD
    }
);

preset_test!(
    tado_device_flow_public_client_and_rotation,
    Quirks {
        preset: "tado",
        auth: ClientAuth::Public,
        refusal: Refusal::ErrorReason,
        rotates: true,
        device: true,
        userinfo: Some((
            r#"{"name":"Ann Example","email":"ann@example.com","username":"ann","homes":[{"id":1,"name":"Home"}]}"#,
            "GET",
            "Ann Example (ann@example.com)"
        )),
        refused_text: "The refresh_token is invalid",
        ..STANDARD
    }
);

#[test]
fn every_shipped_preset_has_a_quirk_test() {
    let source = include_str!("providers.rs");
    for definition in ProviderCatalog::built_in().iter() {
        let id = definition.id.as_str();
        // Zoho's data centres share one definition shape; one of them is exercised, and the
        // others are checked to differ only in their hosts.
        if id.starts_with("zoho-") {
            continue;
        }
        // OAuth 1.0a definitions are exercised against the real oauthlib provider.
        if definition.oauth_version == bellhop::profile::provider::OAuthVersion::V1 {
            let peers = include_str!("peers.rs");
            assert!(
                peers.contains(&format!("provider = \\\"{id}\\\"")),
                "no test for `{id}`"
            );
            continue;
        }
        assert!(
            source.contains(&format!("preset: \"{id}\"")),
            "no quirk test for `{id}`"
        );
    }
}

#[test]
fn zoho_data_centres_differ_only_in_their_hosts() {
    let catalog = ProviderCatalog::built_in();
    let eu = catalog.get("zoho-eu").unwrap_or_else(|| panic!("zoho-eu"));
    for dc in [
        "zoho-us", "zoho-in", "zoho-au", "zoho-jp", "zoho-cn", "zoho-ca",
    ] {
        let other = catalog.get(dc).unwrap_or_else(|| panic!("{dc}"));
        let (a, b) = (&eu.settings, &other.settings);
        assert_eq!(a.client_auth, b.client_auth, "{dc}");
        assert_eq!(a.scope_separator, b.scope_separator, "{dc}");
        assert_eq!(a.header_template, b.header_template, "{dc}");
        assert_eq!(a.api_host_field, b.api_host_field, "{dc}");
        assert_eq!(a.extra_authorize_params, b.extra_authorize_params, "{dc}");
        let path = |u: &Option<String>| {
            u.as_deref()
                .and_then(|u| url::Url::parse(u).ok())
                .map(|u| u.path().to_string())
        };
        assert_eq!(path(&a.token_url), path(&b.token_url), "{dc}");
        assert_eq!(path(&a.authorize_url), path(&b.authorize_url), "{dc}");
        assert_ne!(a.token_url, b.token_url, "{dc} has its own host");
    }
}
