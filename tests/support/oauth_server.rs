//! The one in-process OAuth2 authorization server the tests use, with the API it guards, on
//! 127.0.0.1 (port 0; it stops when dropped). A [`Quirks`] value shapes it the way a provider
//! documents itself (client authentication, extra parameters, token-answer and error shapes,
//! rotation, the API's token header and its "expired" answer); its [`ServerState`] is what a test
//! turns (refuse the refresh, misbehave at the token endpoint, approve or deny a device) and
//! reads (every token request, refreshes, device polls, revocations, problems seen).
//!
//! Endpoints: a preset's own paths (`Quirks::preset`), or for no preset `/authorize`, `/token`,
//! `/device`, `/revoke`; besides them `/custom/token` (seed 003's templated token requests,
//! answered as `{"data":{"token","refresh","ttl"}}`, no client check), the API at `/api/data`
//! and `/me`, and `/big` (2 MB of JSON).

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use bellhop::clock::Clock;
use bellhop::engine::authorization::Authorizer;
use bellhop::engine::{Engine, ProfileSource};
use bellhop::profile::{ProfileSet, ProviderCatalog};
use bellhop::tokens::{load_or_create_key, TokenStore};
use warp::Filter;

use super::Workspace;

pub const CLIENT_ID: &str = "client-1";
pub const CLIENT_SECRET: &str = "secret-1";

/// How the client must authenticate at the token endpoint.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum ClientAuth {
    /// HTTP Basic with [`CLIENT_ID`] and [`CLIENT_SECRET`].
    Basic,
    /// `client_id` and `client_secret` in the body, and no Basic.
    Body,
    /// `client_id` only.
    Public,
    /// Whatever the client sends is accepted (what it sent is in `ServerState::requests`).
    Unchecked,
}

/// How the provider writes a token answer.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Answer {
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
    /// `expires_in` as text and `scope` as a list in every answer (lenient parsing under test).
    Lenient,
}

/// How the provider refuses a dead refresh token.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Refusal {
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

pub struct Quirks {
    /// The preset whose endpoint paths the server answers; empty: the generic paths.
    pub preset: &'static str,
    pub auth: ClientAuth,
    /// Fields every token request must carry.
    pub token_params: &'static [(&'static str, &'static str)],
    /// What the authorize URL must carry besides the standard parameters.
    pub authorize_params: &'static [(&'static str, &'static str)],
    /// How the scopes the preset asks for are joined.
    pub scope_separator: char,
    pub answer: Answer,
    pub refusal: Refusal,
    /// The refresh answer carries a new refresh token and the old one dies.
    pub rotates: bool,
    /// The API's token header and the text before the token.
    pub api_header: (&'static str, &'static str),
    /// A query parameter every API call must carry, and its value.
    pub api_query: Option<(&'static str, &'static str)>,
    /// What the API answers to an expired token.
    pub expired_status: u16,
    /// The API says "expired" inside an HTTP 200 (Withings: `{"status": 401, …}`).
    pub expired_in_body: bool,
    /// Extra fields of the token answer (`{base}` is the server).
    pub extra: &'static str,
    /// The API URL is built from the token answer's `api_domain` (Zoho).
    pub api_from_token: bool,
    /// The profile endpoint's answer, its method, and the identity Bellhop should show.
    pub userinfo: Option<(&'static str, &'static str, &'static str)>,
    /// The device flow instead of a browser (tado).
    pub device: bool,
    /// ecobee's PIN flow: a GET for the PIN (`ecobeePin`, `code`, `expires_in` in minutes),
    /// polls with `grant_type=ecobeePin`, every parameter in the query.
    pub ecobee_pin: bool,
    /// The refusal's message, as the user should see it.
    pub refused_text: &'static str,
}

/// A provider that follows RFC 6749 to the letter.
pub const STANDARD: Quirks = Quirks {
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

/// When a polled device code turns into tokens.
#[derive(Clone, Copy, PartialEq, Debug, Default)]
pub enum DeviceApproval {
    /// Once its entry in `ServerState::devices` is marked entered.
    #[default]
    WhenEntered,
    /// At the first poll.
    AtOnce,
    /// `access_denied` at the first poll.
    Deny,
    /// `expired_token` at the first poll.
    Expire,
    /// `slow_down` at the first poll, tokens at the next.
    SlowDownOnce,
}

/// A token endpoint that does not answer as OAuth2 says.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Misbehaviour {
    /// HTTP 500 with `Retry-After: 120`.
    Status500,
    /// An HTML maintenance page with HTTP 200.
    Html,
    /// 400 `invalid_request` ("bad things").
    Invalid400,
    /// No answer for 5 s.
    Slow,
}

/// What the server holds, what a test may turn, and what it saw.
pub struct ServerState {
    /// Codes the "user" approved; each works once.
    pub codes: Vec<String>,
    /// A PKCE challenge (S256) a code's exchange must answer, by code.
    pub challenges: HashMap<String, String>,
    pub valid_access: Vec<String>,
    pub valid_refresh: Vec<String>,
    pub issued: usize,
    /// Refresh requests, refused ones included.
    pub refreshes: usize,
    /// Every token request: its grant type, form or JSON fields (`json=yes` for a JSON body),
    /// and whether HTTP Basic was sent.
    pub requests: Vec<(String, HashMap<String, String>, bool)>,
    pub refuse_refresh: bool,
    /// Every token request gets 401 `invalid_client`.
    pub refuse_client: bool,
    pub misbehaviour: Option<Misbehaviour>,
    /// Token requests answered by the misbehaving endpoint.
    pub misbehaved: usize,
    /// A refresh is rotated, then its answer held for 10 s (to be lost with its caller).
    pub hold_refresh_answers: bool,
    /// A rotated-out refresh token still works (a provider's grace period).
    pub grace: bool,
    /// Device codes and whether their user code was entered.
    pub devices: HashMap<String, (String, bool)>,
    pub device_approval: DeviceApproval,
    /// The device answer's verification address is `javascript:`.
    pub hostile_verification_uri: bool,
    /// When each device poll came, on `clock` (ms).
    pub device_polls: Vec<i64>,
    /// The test's clock, shared with the authorization.
    pub clock: Clock,
    pub revoked: Vec<String>,
    /// Put in every plain token answer as `id` (a Salesforce-style profile URL).
    pub profile_url: Option<String>,
    /// Requests by path.
    pub hits: HashMap<String, usize>,
    /// Each problem the server saw with a request (a test fails on any).
    pub problems: Vec<String>,
    /// The lifetime of tokens a grant issues (a code, a device, a password, the client's own).
    pub expires_in: u64,
    /// The lifetime of tokens a refresh issues.
    pub refresh_expires_in: u64,
}

impl Default for ServerState {
    fn default() -> Self {
        ServerState {
            codes: Vec::new(),
            challenges: HashMap::new(),
            valid_access: Vec::new(),
            valid_refresh: Vec::new(),
            issued: 0,
            refreshes: 0,
            requests: Vec::new(),
            refuse_refresh: false,
            refuse_client: false,
            misbehaviour: None,
            misbehaved: 0,
            hold_refresh_answers: false,
            grace: false,
            devices: HashMap::new(),
            device_approval: DeviceApproval::default(),
            hostile_verification_uri: false,
            device_polls: Vec::new(),
            clock: Clock::system(),
            revoked: Vec::new(),
            profile_url: None,
            hits: HashMap::new(),
            problems: Vec::new(),
            expires_in: 3600,
            refresh_expires_in: 3600,
        }
    }
}

impl ServerState {
    /// Token requests exchanging a code.
    pub fn code_exchanges(&self) -> usize {
        self.requests
            .iter()
            .filter(|(grant, _, _)| grant == "authorization_code")
            .count()
    }

    /// Whether each token request came with HTTP Basic client authentication.
    pub fn basic(&self) -> Vec<bool> {
        self.requests.iter().map(|(_, _, basic)| *basic).collect()
    }

    pub fn hits(&self, path: &str) -> usize {
        self.hits.get(path).copied().unwrap_or(0)
    }
}

pub struct OAuthServer {
    pub address: SocketAddr,
    state: Arc<Mutex<ServerState>>,
    _stop: tokio::sync::oneshot::Sender<()>,
}

impl OAuthServer {
    /// Starts a server shaped by `quirks` on a loopback port of its own.
    pub async fn start(quirks: &'static Quirks) -> OAuthServer {
        Self::start_with(quirks, ServerState::default()).await
    }

    /// [`OAuthServer::start`] from a prepared state (its clock, its device approval).
    pub async fn start_with(quirks: &'static Quirks, state: ServerState) -> OAuthServer {
        let paths = Arc::new(paths_of(quirks.preset));
        let state = Arc::new(Mutex::new(state));
        let shared = state.clone();
        let base = Arc::new(Mutex::new(String::new()));
        let base_for_routes = base.clone();
        let route = warp::path::full()
            .and(warp::method())
            .and(warp::header::headers_cloned())
            .and(warp::query::<HashMap<String, String>>())
            .and(warp::body::bytes())
            .then(
                move |path: warp::path::FullPath,
                      method: warp::http::Method,
                      headers: warp::http::HeaderMap,
                      query,
                      body: bytes::Bytes| {
                    let is_json = headers.get("content-type").and_then(|v| v.to_str().ok())
                        == Some("application/json");
                    let form: HashMap<String, String> = if is_json {
                        let mut fields = serde_json::from_slice::<HashMap<String, String>>(&body)
                            .unwrap_or_default();
                        fields.insert("json".into(), "yes".into());
                        fields
                    } else {
                        url::form_urlencoded::parse(&body).into_owned().collect()
                    };
                    let request = Request {
                        path: path.as_str().to_string(),
                        method: method.to_string(),
                        headers,
                        query,
                        form,
                    };
                    let base = lock(&base_for_routes).clone();
                    let (response, delay) = handle(quirks, &paths, &shared, &base, request);
                    async move {
                        if let Some(delay) = delay {
                            tokio::time::sleep(delay).await;
                        }
                        response
                    }
                },
            );
        let (address, stop) = super::serve_on_loopback(route, "the OAuth test server").await;
        *lock(&base) = format!("http://{address}");
        OAuthServer {
            address,
            state,
            _stop: stop,
        }
    }

    pub fn state(&self) -> MutexGuard<'_, ServerState> {
        lock(&self.state)
    }

    pub fn base(&self) -> String {
        format!("http://{}", self.address)
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|e| e.into_inner())
}

/// The endpoint paths a server answers.
pub struct Paths {
    pub authorize: Option<String>,
    pub token: String,
    pub device: Option<String>,
    pub revoke: Option<String>,
    pub userinfo: Option<String>,
}

fn path_of(url: &Option<String>, tenant: &str) -> Option<String> {
    let url = url.as_ref()?.replace("{{tenant}}", tenant);
    url::Url::parse(&url).ok().map(|u| u.path().to_string())
}

/// The preset's endpoint paths (an empty preset: the generic ones).
pub fn paths_of(preset: &str) -> Paths {
    if preset.is_empty() {
        return Paths {
            authorize: Some("/authorize".into()),
            token: "/token".into(),
            device: Some("/device".into()),
            revoke: Some("/revoke".into()),
            userinfo: None,
        };
    }
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

/// Where the templated token requests of seed 003 go.
const CUSTOM_TOKEN: &str = "/custom/token";
/// The guarded API.
const API_PATHS: [&str; 2] = ["/api/data", "/me"];
/// What the API answers a valid token.
const API_ANSWER: &str = r#"{"email":"ann@example.com","username":"ann","temperature":21.5}"#;

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

/// Issues a token pair and writes the answer in the provider's shape (`data`: seed 003's
/// `{"data":{"token","refresh","ttl"}}`).
fn token_answer(
    q: &Quirks,
    s: &mut ServerState,
    with_refresh: bool,
    expires: u64,
    data: bool,
    base: &str,
) -> warp::reply::Response {
    s.issued += 1;
    let access = format!("at-{}", s.issued);
    let refresh = format!("rt-{}", s.issued);
    s.valid_access.push(access.clone());
    if with_refresh {
        s.valid_refresh.push(refresh.clone());
    }
    if data {
        return json(
            200,
            serde_json::json!({"data": {"token": access, "refresh": refresh, "ttl": expires}}),
        );
    }
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
    if let Some(url) = &s.profile_url {
        fields["id"] = url.clone().into();
    }
    if !q.extra.is_empty() {
        let extra: serde_json::Value = serde_json::from_str(&q.extra.replace("{base}", base))
            .unwrap_or_else(|e| panic!("the quirk's extra: {e}"));
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
        Answer::Lenient => {
            fields["expires_in"] = expires.to_string().into();
            fields["scope"] = serde_json::json!(["identify", "email"]);
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

fn misbehaving(how: Misbehaviour) -> (warp::reply::Response, Option<Duration>) {
    match how {
        Misbehaviour::Status500 => {
            let mut response = reply(500, "text/plain", "upstream broke".into());
            response
                .headers_mut()
                .insert("retry-after", warp::http::HeaderValue::from_static("120"));
            (response, None)
        }
        Misbehaviour::Html => (
            reply(200, "text/html", "<html>Maintenance</html>".into()),
            None,
        ),
        Misbehaviour::Invalid400 => (
            json(
                400,
                serde_json::json!({"error": "invalid_request", "error_description": "bad things"}),
            ),
            None,
        ),
        Misbehaviour::Slow => (
            json(200, serde_json::json!({})),
            Some(Duration::from_secs(5)),
        ),
    }
}

/// RFC 7636 §4.6, computed here, not by Bellhop's code.
fn pkce_matches(verifier: &str, challenge: &str) -> bool {
    use base64::Engine;
    use sha2::Digest;
    let computed = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(sha2::Sha256::digest(verifier.as_bytes()));
    verifier.len() >= 43 && computed == challenge
}

/// Answers one request, and how long to hold the answer.
fn handle(
    q: &'static Quirks,
    paths: &Paths,
    shared: &Mutex<ServerState>,
    base: &str,
    mut r: Request,
) -> (warp::reply::Response, Option<Duration>) {
    let mut s = lock(shared);
    *s.hits.entry(r.path.clone()).or_insert(0) += 1;
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
    if Some(&r.path) == paths.device.as_ref() {
        return (device_authorization(q, &mut s, base, &r), None);
    }
    if r.path == paths.token || r.path == CUSTOM_TOKEN {
        return token_endpoint(q, &mut s, base, &r);
    }
    if Some(&r.path) == paths.revoke.as_ref() {
        if let Some(token) = r.form.get("token") {
            s.revoked.push(token.clone());
        }
        return (json(200, serde_json::json!({})), None);
    }
    let token = r
        .headers
        .get(q.api_header.0)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix(q.api_header.1))
        .map(str::to_string);
    let valid = token.is_some_and(|t| s.valid_access.contains(&t));
    if Some(&r.path) == paths.userinfo.as_ref() {
        let Some((body, method, _)) = q.userinfo else {
            return (json(404, serde_json::json!({})), None);
        };
        if r.method != method {
            s.problems
                .push(format!("userinfo: expected {method}, got {}", r.method));
        }
        if valid {
            return (reply(200, "application/json", body.into()), None);
        }
        s.problems.push("userinfo: no valid token".into());
        return (
            json(401, serde_json::json!({"error": "invalid_token"})),
            None,
        );
    }
    if API_PATHS.contains(&r.path.as_str()) {
        return (api(q, &mut s, &r, valid), None);
    }
    if r.path == "/big" {
        let big = serde_json::Value::String("x".repeat(2 * 1024 * 1024));
        return (json(200, big), None);
    }
    s.problems
        .push(format!("unexpected request {} {}", r.method, r.path));
    (json(404, serde_json::json!({})), None)
}

fn device_authorization(
    q: &Quirks,
    s: &mut ServerState,
    base: &str,
    r: &Request,
) -> warp::reply::Response {
    if q.ecobee_pin {
        if r.method != "GET" || r.form.get("response_type").map(String::as_str) != Some("ecobeePin")
        {
            s.problems
                .push(format!("PIN request: {} {:?}", r.method, r.form));
        }
        if let Some(problem) = client_problem(q, r) {
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
    if let Some(problem) = client_problem(q, r) {
        s.problems.push(format!("device: {problem}"));
    }
    let device_code = format!("dc-{}", s.devices.len() + 1);
    // RFC 8628's example code.
    let user_code = "WDJB-MJHT".to_string();
    s.devices
        .insert(device_code.clone(), (user_code.clone(), false));
    let verification = if s.hostile_verification_uri {
        "javascript:alert(document.cookie)".to_string()
    } else {
        format!("{base}/oauth2/device")
    };
    json(
        200,
        serde_json::json!({
            "device_code": device_code, "user_code": user_code, "expires_in": 300, "interval": 1,
            "verification_uri": verification,
            "verification_uri_complete": format!("{base}/oauth2/device?user_code={user_code}"),
        }),
    )
}

fn token_endpoint(
    q: &Quirks,
    s: &mut ServerState,
    base: &str,
    r: &Request,
) -> (warp::reply::Response, Option<Duration>) {
    let grant = r.form.get("grant_type").cloned().unwrap_or_default();
    let basic = r
        .headers
        .get("authorization")
        .and_then(|a| a.to_str().ok())
        .is_some_and(|a| a.starts_with("Basic "));
    s.requests.push((grant.clone(), r.form.clone(), basic));
    if let Some(how) = s.misbehaviour {
        s.misbehaved += 1;
        return misbehaving(how);
    }
    let templated = r.path == CUSTOM_TOKEN;
    if !templated {
        if s.refuse_client {
            let refused = serde_json::json!({"error": "invalid_client", "error_description": "Client authentication failed"});
            return (json(401, refused), None);
        }
        if let Some(problem) = client_problem(q, r) {
            s.problems.push(format!("token: {problem}"));
            return (
                json(401, serde_json::json!({"error": "invalid_client"})),
                None,
            );
        }
        for (name, value) in q.token_params {
            if r.form.get(*name).map(String::as_str) != Some(value) {
                s.problems.push(format!("token: `{name}={value}` missing"));
                let refused = serde_json::json!({"status": 503, "error": "Invalid Params"});
                return (json(200, refused), None);
            }
        }
    }
    let expires = s.expires_in;
    let answer = match grant.as_str() {
        "authorization_code" => {
            let code = r.form.get("code").cloned().unwrap_or_default();
            let Some(at) = s.codes.iter().position(|c| *c == code) else {
                return (refusal(q), None);
            };
            s.codes.remove(at);
            if let Some(challenge) = s.challenges.remove(&code) {
                let verifier = r.form.get("code_verifier").cloned().unwrap_or_default();
                if !pkce_matches(&verifier, &challenge) {
                    return (
                        json(400, serde_json::json!({"error": "invalid_grant"})),
                        None,
                    );
                }
            }
            token_answer(q, s, true, expires, templated, base)
        }
        "refresh_token" => return refresh(q, s, base, r, templated),
        "password" => {
            if r.form.get("username").map(String::as_str) != Some("ann")
                || r.form.get("password").map(String::as_str) != Some("correct horse")
            {
                let refused = serde_json::json!({"error": "invalid_grant", "error_description": "bad user credentials"});
                return (json(400, refused), None);
            }
            token_answer(q, s, true, expires, templated, base)
        }
        "client_credentials" => token_answer(q, s, true, expires, templated, base),
        "ecobeePin" if q.ecobee_pin => {
            let code = r.form.get("code").cloned().unwrap_or_default();
            device_poll(q, s, base, &code, 401)
        }
        "urn:ietf:params:oauth:grant-type:device_code" => {
            let code = r.form.get("device_code").cloned().unwrap_or_default();
            device_poll(q, s, base, &code, 400)
        }
        other => {
            s.problems
                .push(format!("token: unexpected grant {other:?}"));
            json(400, serde_json::json!({"error": "unsupported_grant_type"}))
        }
    };
    (answer, None)
}

fn refresh(
    q: &Quirks,
    s: &mut ServerState,
    base: &str,
    r: &Request,
    templated: bool,
) -> (warp::reply::Response, Option<Duration>) {
    s.refreshes += 1;
    let old = r.form.get("refresh_token").cloned().unwrap_or_default();
    if s.refuse_refresh || !s.valid_refresh.contains(&old) {
        return (refusal(q), None);
    }
    let expires = s.refresh_expires_in;
    let answer = if q.rotates {
        if !s.grace {
            s.valid_refresh.retain(|t| *t != old);
        }
        token_answer(q, s, true, expires, templated, base)
    } else {
        // The old refresh token stays; the answer has none.
        token_answer(q, s, false, expires, templated, base)
    };
    let hold = s.hold_refresh_answers.then_some(Duration::from_secs(10));
    (answer, hold)
}

/// A device flow's poll for `code`; `pending_status` is the HTTP status of "not yet".
fn device_poll(
    q: &Quirks,
    s: &mut ServerState,
    base: &str,
    code: &str,
    pending_status: u16,
) -> warp::reply::Response {
    let now_ms = s.clock.now_ms();
    s.device_polls.push(now_ms);
    let first = s.device_polls.len() == 1;
    let expires = s.expires_in;
    match s.device_approval {
        DeviceApproval::Deny => json(400, serde_json::json!({"error": "access_denied"})),
        DeviceApproval::Expire => json(400, serde_json::json!({"error": "expired_token"})),
        DeviceApproval::SlowDownOnce if first => {
            json(400, serde_json::json!({"error": "slow_down"}))
        }
        DeviceApproval::SlowDownOnce | DeviceApproval::AtOnce => {
            token_answer(q, s, true, expires, false, base)
        }
        DeviceApproval::WhenEntered => match s.devices.get(code).cloned() {
            Some((_, true)) => {
                s.devices.remove(code);
                token_answer(q, s, true, expires, false, base)
            }
            Some((_, false)) => json(
                pending_status,
                serde_json::json!({"error": "authorization_pending", "error_description": "The user has not yet authorized", "error_reason": "authorization_pending"}),
            ),
            None => json(400, serde_json::json!({"error": "invalid_grant"})),
        },
    }
}

/// The guarded API: its answer for a valid token, else the provider's "expired".
fn api(q: &Quirks, s: &mut ServerState, r: &Request, valid: bool) -> warp::reply::Response {
    if let Some((name, value)) = q.api_query {
        if r.query.get(name).map(String::as_str) != Some(value) {
            s.problems.push(format!("api: `?{name}={value}` missing"));
            return json(
                401,
                serde_json::json!({"fault": {"faultstring": "Failed to resolve API Key variable request.queryparam.apikey"}}),
            );
        }
    }
    if valid {
        return reply(200, "application/json", API_ANSWER.into());
    }
    if q.expired_in_body {
        return json(
            200,
            serde_json::json!({"status": 401, "body": {}, "error": "XRequestID: Not provided invalid_token: The access token provided is invalid"}),
        );
    }
    json(
        q.expired_status,
        serde_json::json!({"error": {"code": 3, "message": "Access token expired"}}),
    )
}

/// The token store of `dir` (`keys/token.key`, `data/tokens`), as `serve` lays it out.
pub fn token_store(dir: &Path) -> Arc<TokenStore> {
    let key = load_or_create_key(&dir.join("keys/token.key"))
        .unwrap_or_else(|e| panic!("the token key: {e}"));
    Arc::new(
        TokenStore::open(&dir.join("data/tokens"), &key)
            .unwrap_or_else(|e| panic!("the token store: {e}")),
    )
}

/// An authorizer over the token store of `dir`, on `clock`, for a server at
/// `http://127.0.0.1:8765/`.
pub fn authorizer(dir: &Path, clock: &Clock, token_timeout: Option<Duration>) -> Arc<Authorizer> {
    let public =
        url::Url::parse("http://127.0.0.1:8765/").unwrap_or_else(|e| panic!("a fixed URL: {e}"));
    let authorizer = Authorizer::new(token_store(dir), public, Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("an authorizer: {e}"))
        .with_clock(clock.clone());
    Arc::new(match token_timeout {
        Some(timeout) => authorizer.with_token_timeout(timeout),
        None => authorizer,
    })
}

/// An engine over `set` (reloading from `source`) whose authorizer keeps its tokens in `ws`.
pub fn authorized_engine(
    ws: &Workspace,
    set: ProfileSet,
    source: Option<ProfileSource>,
    clock: &Clock,
    token_timeout: Duration,
) -> Arc<Engine> {
    Arc::new(
        Engine::new(set, source, ws.hub())
            .unwrap_or_else(|e| panic!("an engine: {e}"))
            .with_authorizer(authorizer(ws.path(), clock, Some(token_timeout))),
    )
}
