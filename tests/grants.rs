//! The grants and protocol extras at their edges, against an in-process token server on
//! 127.0.0.1: RFC 9207 `iss` mix-ups refused, device flows denied, expired and slowed down,
//! the implicit grant's fragment, a pasted redirect URL, a self client's code, the password
//! grant, seed 003's token-request templates with JSON bodies and JSONPath extraction, and the
//! bad inputs (an unknown template variable, a path that matches nothing, a refused client).

use std::collections::HashMap;
use std::time::Duration;

use bellhop::clock::Clock;
use bellhop::engine::authorization::AuthorizationStatus;
use bellhop::engine::door::DoorError;
use bellhop::engine::Engine;
use bellhop::web::{routes, AppState};
use std::sync::Arc;

use crate::support::oauth_server::{
    authorized_engine, ClientAuth, DeviceApproval, OAuthServer, Quirks, ServerState, STANDARD,
};
use crate::support::Workspace;

/// A provider that takes whatever client authentication comes (the tests read what came) and
/// rotates its refresh tokens.
static GENEROUS: Quirks = Quirks {
    auth: ClientAuth::Unchecked,
    rotates: true,
    ..STANDARD
};

struct Setup {
    engine: Arc<Engine>,
    server: OAuthServer,
    base: String,
    /// The authorization's time: moved forward instead of sleeping through intervals and lives.
    clock: Clock,
    _ws: Workspace,
}

impl Setup {
    fn server(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.server.state()
    }

    /// Runs the profile and expects it to succeed.
    async fn run_ok(&self) {
        let record = self
            .engine
            .run("p", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(record.ok, "{:?}", record.errors);
    }

    fn status(&self) -> AuthorizationStatus {
        self.engine
            .authorization_status("p")
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

/// A profile `p` against the server, with these `[auth.oauth2]` lines (`{base}` is the server);
/// its device codes are approved at the first poll.
async fn setup(oauth: &str) -> Setup {
    setup_with(oauth, |_| {}).await
}

/// [`setup`] with the server's state turned first.
async fn setup_with(oauth: &str, turn: impl FnOnce(&mut ServerState)) -> Setup {
    let clock = Clock::adjustable();
    let mut state = ServerState {
        device_approval: DeviceApproval::AtOnce,
        clock: clock.clone(),
        ..ServerState::default()
    };
    turn(&mut state);
    let server = OAuthServer::start_with(&GENEROUS, state).await;
    let base = server.base();
    let ws = Workspace::new();
    ws.write_profile(
        "p",
        &format!(
            "version = 1\n[request]\nurl = \"{base}/me\"\ntimeout_secs = 5\n\n[auth.oauth2]\nclient_id = \"c\"\nclient_secret = \"s\"\n{}\n\n[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'\n",
            oauth.replace("{base}", &base)
        ),
    );
    let set = ws.load();
    assert!(!set.has_errors(), "{:#?}", set.diagnostics);
    let source = bellhop::engine::ProfileSource::new(ws.profiles_dir(), None);
    let engine = authorized_engine(&ws, set, Some(source), &clock, Duration::from_secs(3));
    Setup {
        engine,
        server,
        base,
        clock,
        _ws: ws,
    }
}

const CODE_FLOW: &str = "authorize_url = \"{base}/authorize\"\ntoken_url = \"{base}/token\"";

fn state_of(url: &url::Url) -> String {
    url.query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .unwrap_or_default()
}

#[tokio::test]
async fn an_iss_naming_another_server_is_refused_and_the_state_is_spent() {
    let setup = setup(&format!("{CODE_FLOW}\nissuer = \"{{base}}\"")).await;
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    setup.server().codes.push("code-1".into());
    let mut callback = HashMap::from([
        ("state".to_string(), state_of(&url)),
        ("code".to_string(), "code-1".to_string()),
        ("iss".to_string(), "https://attacker.example".to_string()),
    ]);
    let refused = setup.engine.complete_redirect(&callback).await;
    assert!(
        matches!(&refused, Err(DoorError::Redirect(m)) if m.contains("attacker.example") && m.contains("mix-up")),
        "{refused:?}"
    );
    assert!(setup.server().requests.is_empty(), "the code went nowhere");
    // The state was spent by the refusal: the same answer with the right iss is a replay.
    callback.insert("iss".into(), setup.base.clone());
    let replayed = setup.engine.complete_redirect(&callback).await;
    assert!(
        matches!(replayed, Err(DoorError::Authorization(_))),
        "{replayed:?}"
    );
    // A fresh authorization whose iss names the profile's issuer goes through.
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    callback.insert("state".into(), state_of(&url));
    setup
        .engine
        .complete_redirect(&callback)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        setup.status(),
        AuthorizationStatus::Authorized { .. }
    ));
}

const DEVICE_FLOW: &str = "grant = \"device_code\"\ntoken_url = \"{base}/token\"\ndevice_authorization_url = \"{base}/device\"";

#[tokio::test]
async fn a_denied_or_expired_device_flow_says_why() {
    for (mode, expected) in [
        (DeviceApproval::Deny, "access was denied"),
        (DeviceApproval::Expire, "expired"),
    ] {
        let setup = setup_with(DEVICE_FLOW, |s| s.device_approval = mode).await;
        let device = setup
            .engine
            .start_device_authorization("p")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(device.user_code, "WDJB-MJHT");
        assert!(
            crate::support::eventually_advancing(&setup.clock, Duration::from_millis(100), || {
                matches!(setup.status(), AuthorizationStatus::Failed { .. })
            })
            .await,
            "{mode:?}: {:?}",
            setup.status()
        );
        let AuthorizationStatus::Failed { reason } = setup.status() else {
            panic!()
        };
        assert!(reason.contains(expected), "{mode:?}: {reason}");
        assert_eq!(
            setup.server().device_polls.len(),
            1,
            "{mode:?}: no more polls"
        );
    }
}

#[tokio::test]
async fn a_device_profile_is_not_sent_to_a_browser() {
    let setup = setup(DEVICE_FLOW).await;
    let refused = setup
        .engine
        .begin_authorization("p")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(
        refused.contains("device_code") && refused.contains("needs no browser"),
        "{refused}"
    );
}

#[tokio::test]
async fn slow_down_adds_five_seconds_to_every_later_poll() {
    let setup = setup_with(DEVICE_FLOW, |s| {
        s.device_approval = DeviceApproval::SlowDownOnce
    })
    .await;
    setup
        .engine
        .start_device_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    crate::support::eventually_advancing(&setup.clock, Duration::from_millis(100), || {
        matches!(setup.status(), AuthorizationStatus::Authorized { .. })
    })
    .await;
    assert!(
        matches!(setup.status(), AuthorizationStatus::Authorized { .. }),
        "{:?}",
        setup.status()
    );
    let polls = setup.server().device_polls.clone();
    assert_eq!(polls.len(), 2);
    let gap = Duration::from_millis(u64::try_from(polls[1] - polls[0]).unwrap_or_default());
    assert!(
        gap >= Duration::from_millis(5_900),
        "interval 1 s + 5 s after slow_down, got {gap:?}"
    );
}

#[tokio::test]
async fn the_implicit_grant_posts_its_fragment_back_to_the_callback_page() {
    let setup = setup("grant = \"implicit\"\nauthorize_url = \"{base}/authorize\"").await;
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        url.query_pairs()
            .any(|(k, v)| k == "response_type" && v == "token"),
        "{url}"
    );
    assert!(
        !url.query_pairs().any(|(k, _)| k == "code_challenge"),
        "no PKCE without a code"
    );
    let state = AppState::new(setup.engine.clone());
    // The provider sends the browser to the callback page with a fragment: the page alone
    // (no query) waits and posts the fragment back.
    let page = crate::support::local_request()
        .path("/oauth2/callback")
        .reply(&routes(state.clone()))
        .await;
    let html = String::from_utf8_lossy(page.body()).into_owned();
    assert!(
        html.contains("data-outcome=\"waiting\"") && html.contains("location.hash"),
        "{html}"
    );
    setup.server().valid_access.push("implicit-token".into());
    let body = format!(
        "access_token=implicit-token&token_type=Bearer&expires_in=3600&state={}",
        state_of(&url)
    );
    let posted = crate::support::local_request()
        .method("POST")
        .path("/oauth2/callback")
        .header("origin", "http://127.0.0.1:8765")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(body)
        .reply(&routes(state))
        .await;
    let html = String::from_utf8_lossy(posted.body()).into_owned();
    assert_eq!(posted.status(), 200, "{html}");
    assert!(html.contains("data-outcome=\"ok\""), "{html}");
    assert!(
        !html.contains("implicit-token"),
        "the token is never put on a page"
    );
    setup.run_ok().await;
}

#[tokio::test]
async fn a_pasted_redirect_url_and_a_self_client_code_finish_an_authorization() {
    let setup = setup(CODE_FLOW).await;
    let refused = setup.engine.complete_pasted_url("not a url").await;
    assert!(
        matches!(&refused, Err(DoorError::Redirect(m)) if m.contains("paste the whole address")),
        "{refused:?}"
    );
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    setup.server().codes.push("pasted".into());
    let pasted = format!(
        "https://hub.example/oauth2/callback?code=pasted&state={}",
        state_of(&url)
    );
    let profile = setup
        .engine
        .complete_pasted_url(&pasted)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(profile, "p");
    assert!(matches!(
        setup.status(),
        AuthorizationStatus::Authorized { .. }
    ));
    let (_, first, _) = setup.server().requests[0].clone();
    assert_eq!(
        first.get("redirect_uri").map(String::as_str),
        Some("http://127.0.0.1:8765/oauth2/callback")
    );

    // Zoho's self client: a code from the console, exchanged with no redirect URI.
    setup.server().codes.push("1000.console-code".into());
    setup
        .engine
        .complete_grant_code("p", " 1000.console-code\n")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (grant, fields, basic) = setup.server().requests[1].clone();
    assert_eq!(grant, "authorization_code");
    assert_eq!(
        fields.get("code").map(String::as_str),
        Some("1000.console-code")
    );
    assert!(!fields.contains_key("redirect_uri"), "{fields:?}");
    assert!(basic);
}

#[tokio::test]
async fn the_password_grant_fetches_its_own_token() {
    let setup = setup(
        "grant = \"password\"\ntoken_url = \"{base}/token\"\nusername = \"ann\"\npassword = \"correct horse\"").await;
    setup.run_ok().await;
    let (grant, fields, _) = setup.server().requests[0].clone();
    assert_eq!(grant, "password");
    assert_eq!(fields.get("username").map(String::as_str), Some("ann"));
    let AuthorizationStatus::Authorized { grant, .. } = setup.status() else {
        panic!("{:?}", setup.status())
    };
    assert_eq!(grant, "password");
}

#[tokio::test]
async fn a_refused_client_shows_the_server_message_and_backs_off() {
    let setup = setup("grant = \"client_credentials\"\ntoken_url = \"{base}/token\"").await;
    setup.server().refuse_client = true;
    let record = setup
        .engine
        .run("p", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    let message = &record.errors[0].message;
    assert!(
        message.contains("invalid_client") && message.contains("Client authentication failed"),
        "{message}"
    );
    // The next run does not hammer the server.
    let record = setup
        .engine
        .run("p", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        record.errors[0].message.contains("next try in"),
        "{:?}",
        record.errors
    );
    assert_eq!(setup.server().requests.len(), 1);
}

const TEMPLATED: &str = r#"authorize_url = "{base}/authorize"
token_url = "{base}/token"
[auth.oauth2.settings]
realm = "home"
[auth.oauth2.token_request]
url = "{base}/custom/token"
format = "json"
[auth.oauth2.token_request.body]
grant_type = "authorization_code"
code = "{{auth_code}}"
client_id = "{{client_id}}"
client_secret = "{{client_secret}}"
redirect_uri = "{{redirect_uri}}"
realm = "{{realm}}"
[auth.oauth2.refresh_request]
url = "{base}/custom/token"
format = "json"
[auth.oauth2.refresh_request.body]
grant_type = "refresh_token"
refresh_token = "{{refresh_token}}"
[auth.oauth2.token_response]
access_token = "$.data.token"
refresh_token = "$.data.refresh"
expires = "data.ttl""#;

#[tokio::test]
async fn token_request_templates_send_json_and_paths_pick_the_tokens() {
    // ttl 4 s in the templated answers.
    let setup = setup_with(TEMPLATED, |s| s.expires_in = 4).await;
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    setup.server().codes.push("c-1".into());
    let callback = HashMap::from([
        ("state".to_string(), state_of(&url)),
        ("code".to_string(), "c-1".to_string()),
    ]);
    setup
        .engine
        .complete_redirect(&callback)
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let (_, fields, basic) = setup.server().requests[0].clone();
    assert_eq!(
        fields.get("json").map(String::as_str),
        Some("yes"),
        "a JSON body"
    );
    assert_eq!(fields.get("realm").map(String::as_str), Some("home"));
    assert_eq!(fields.get("client_secret").map(String::as_str), Some("s"));
    assert_eq!(
        fields.get("redirect_uri").map(String::as_str),
        Some("http://127.0.0.1:8765/oauth2/callback")
    );
    assert!(basic, "the client's authentication still applies");
    setup.run_ok().await;
    // ttl 4 s: after half of it (2 s), the refresh template is used.
    setup.clock.advance(Duration::from_millis(2_100));
    setup.run_ok().await;
    let (grant, fields, _) = setup.server().requests[1].clone();
    assert_eq!(grant, "refresh_token");
    assert_eq!(
        fields.get("refresh_token").map(String::as_str),
        Some("rt-1")
    );
}

#[tokio::test]
async fn a_token_path_that_matches_nothing_names_the_path_and_shows_only_the_shape() {
    let setup = setup(&TEMPLATED.replace("$.data.token", "$.data.access")).await;
    let url = setup
        .engine
        .begin_authorization("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    setup.server().codes.push("c-1".into());
    let callback = HashMap::from([
        ("state".to_string(), state_of(&url)),
        ("code".to_string(), "c-1".to_string()),
    ]);
    let error = setup
        .engine
        .complete_redirect(&callback)
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(error.contains("$.data.access"), "{error}");
    assert!(
        error.contains(r#""token": <text>"#) && error.contains(r#""ttl": <number>"#),
        "{error}"
    );
    assert!(
        !error.contains("at-1") && !error.contains("rt-1"),
        "no token value in the message: {error}"
    );
    assert!(matches!(
        setup.status(),
        AuthorizationStatus::NeverAuthorized
    ));
}

#[test]
fn a_template_naming_an_undefined_variable_is_a_load_error() {
    let ws = Workspace::new();
    ws.write_profile(
        "p",
        "version = 1\n[request]\nurl = \"https://api.example.com/me\"\n[auth.oauth2]\nclient_id = \"c\"\nauthorize_url = \"https://a.example/auth\"\ntoken_url = \"https://a.example/token\"\n[auth.oauth2.token_params]\naudience = \"{{audiense}}\"\n",
    );
    let set = ws.load();
    let problem = set
        .diagnostics
        .iter()
        .find(|d| d.is_error())
        .unwrap_or_else(|| panic!("no error: {:?}", set.diagnostics));
    assert_eq!(problem.key, "auth.oauth2.token_params.audience");
    assert!(
        problem.message.contains("audiense") && problem.message.contains("client_id"),
        "{}",
        problem.message
    );
    assert!(problem.line.is_some(), "{problem:?}");
}

#[tokio::test]
async fn deleting_an_oauth_profile_revokes_and_wipes_its_tokens() {
    let setup = setup(
        "grant = \"client_credentials\"\ntoken_url = \"{base}/token\"\nrevocation_url = \"{base}/revoke\"").await;
    setup.run_ok().await;
    let profile = setup
        .engine
        .profiles()
        .get("p")
        .cloned()
        .unwrap_or_else(|| panic!("p"));
    // A profile that merely fails to load keeps its tokens.
    std::fs::write(&profile.file, "version = 1\n[request\n").unwrap_or_else(|e| panic!("{e}"));
    setup.engine.reload();
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(setup.server().revoked.is_empty());
    let authorizer = setup
        .engine
        .authorizer()
        .cloned()
        .unwrap_or_else(|| panic!("authorizer"));
    assert!(matches!(
        authorizer.status(&profile),
        Ok(AuthorizationStatus::Authorized { .. })
    ));
    // Deleted: revoked at the provider and wiped here.
    std::fs::remove_file(&profile.file).unwrap_or_else(|e| panic!("{e}"));
    setup.engine.reload();
    assert!(crate::support::eventually(|| !setup.server().revoked.is_empty()).await);
    assert_eq!(
        setup.server().revoked,
        vec!["rt-1".to_string(), "at-1".to_string()]
    );
    assert!(
        crate::support::eventually(|| matches!(
            authorizer.status(&profile),
            Ok(AuthorizationStatus::NeverAuthorized)
        ))
        .await
    );
}

#[tokio::test]
async fn a_profile_url_in_the_token_answer_is_followed_only_to_a_known_origin() {
    for (url, called) in [("{base}/me", true), ("https://elsewhere.example/me", false)] {
        let setup = setup(
            "grant = \"client_credentials\"\ntoken_url = \"{base}/token\"\nuserinfo_url_field = \"id\"\nemail_template = \"{email}\"").await;
        setup.server().profile_url = Some(url.replace("{base}", &setup.base));
        setup
            .engine
            .authorize_without_browser("p")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let AuthorizationStatus::Authorized { authorized_as, .. } = setup.status() else {
            panic!("{:?}", setup.status())
        };
        if called {
            assert_eq!(authorized_as.as_deref(), Some("ann@example.com"));
            assert_eq!(setup.server().hits("/me"), 1);
        } else {
            assert_eq!(authorized_as, None);
            assert_eq!(setup.server().hits("/me"), 0, "the token went nowhere else");
        }
    }
}

#[tokio::test]
async fn hostile_provider_answers_are_refused_or_ignored() {
    // A verification address that is not http(s) would become a link in the admin's page.
    let device = setup_with(DEVICE_FLOW, |s| s.hostile_verification_uri = true).await;
    let refused = device
        .engine
        .start_device_authorization("p")
        .await
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default();
    assert!(refused.contains("verification_uri"), "{refused}");
    assert!(matches!(
        device.status(),
        AuthorizationStatus::NeverAuthorized
    ));
    // A profile endpoint answering 2 MB: the authorization stands, without a name.
    let setup = setup(
        "grant = \"client_credentials\"\ntoken_url = \"{base}/token\"\nuserinfo_url = \"{base}/big\"\ndisplay_name_template = \"{name}\"").await;
    setup
        .engine
        .authorize_without_browser("p")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let AuthorizationStatus::Authorized { authorized_as, .. } = setup.status() else {
        panic!("{:?}", setup.status())
    };
    assert_eq!(authorized_as, None);
}
