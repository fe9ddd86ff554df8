//! OAuth2 against an in-process stub provider on 127.0.0.1: the whole authorization-code flow
//! with PKCE through the callback page, both client authentication styles, refusals of bad,
//! replayed and denied callbacks, rotation, the 1,000-way single-flight refresh, invalid_grant
//! without a retry storm, and the replay after a 401.

use std::collections::HashMap;
use std::sync::Arc;

use bellhop::devices::DeviceKey;
use bellhop::engine::authorization::AuthorizationStatus;
use bellhop::engine::Engine;
use bellhop::tokens::{load_or_create_key, TokenStore};
use bellhop::web::{routes, AppState};

use crate::support::oauth_server::{
    authorized_engine, authorizer, Answer, ClientAuth, Misbehaviour, OAuthServer, Quirks,
    ServerState, STANDARD,
};
use crate::support::Workspace;

/// Discord as the tests of this file need it: rotation, lenient answers (`expires_in` as text,
/// `scope` as a list), and the client authentication of the profile.
static BASIC: Quirks = Quirks {
    answer: Answer::Lenient,
    rotates: true,
    ..STANDARD
};
static BODY: Quirks = Quirks {
    auth: ClientAuth::Body,
    answer: Answer::Lenient,
    rotates: true,
    ..STANDARD
};

struct Setup {
    provider: OAuthServer,
    engine: Arc<Engine>,
    state: AppState,
    _ws: Workspace,
    tokens_dir: std::path::PathBuf,
    key_file: std::path::PathBuf,
    /// The authorization's time: moved forward instead of sleeping through token lifetimes.
    clock: bellhop::clock::Clock,
}

async fn setup(client_auth: &str) -> Setup {
    let quirks = if client_auth == "body" { &BODY } else { &BASIC };
    let provider = OAuthServer::start(quirks).await;
    let address = provider.address;
    let ws = Workspace::new();
    ws.write_profile(
        "discord",
        &format!(
            "version = 1\n[request]\nurl = \"http://{address}/me\"\ntimeout_secs = 5\n\n\
             [auth.oauth2]\nprovider = \"discord\"\nclient_id = \"client-1\"\nclient_secret = \"secret-1\"\nscopes = \"identify email\"\n\
             authorize_url = \"http://{address}/authorize\"\ntoken_url = \"http://{address}/token\"\nclient_auth = \"{client_auth}\"\n\
             [auth.oauth2.extra_authorize_params]\nprompt = \"consent\"\n\n\
             [devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input,\"email\")'\n"
        ),
    );
    let key_file = ws.path().join("keys/token.key");
    let tokens_dir = ws.path().join("data/tokens");
    let clock = bellhop::clock::Clock::adjustable();
    let engine = authorized_engine(
        &ws,
        ws.load(),
        None,
        &clock,
        std::time::Duration::from_secs(1),
    );
    let state = AppState::new(engine.clone());
    Setup {
        provider,
        engine,
        state,
        _ws: ws,
        tokens_dir,
        key_file,
        clock,
    }
}

impl Setup {
    /// Request Authorization → (the provider logs the user in) → the callback URL's query.
    async fn authorize(&self) -> (u16, String, HashMap<String, String>) {
        let response = crate::support::local_request()
            .path("/oauth2/start?profile=discord")
            .reply(&routes(self.state.clone()))
            .await;
        assert_eq!(response.status(), 302);
        let location = response
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .unwrap_or_default()
            .to_string();
        let url = url::Url::parse(&location).unwrap_or_else(|e| panic!("{location}: {e}"));
        let query: HashMap<String, String> = url.query_pairs().into_owned().collect();
        {
            let mut provider = self.provider();
            provider.codes.push("code-1".into());
            provider
                .challenges
                .insert("code-1".into(), query["code_challenge"].clone());
        }
        let (status, page) = self
            .callback(&format!("code=code-1&state={}", query["state"]))
            .await;
        (status, page, query)
    }

    async fn callback(&self, query: &str) -> (u16, String) {
        let response = crate::support::local_request()
            .path(&format!("/oauth2/callback?{query}"))
            .reply(&routes(self.state.clone()))
            .await;
        (
            response.status().as_u16(),
            String::from_utf8_lossy(response.body()).into_owned(),
        )
    }

    fn provider(&self) -> std::sync::MutexGuard<'_, ServerState> {
        self.provider.state()
    }

    fn profile(&self) -> Arc<bellhop::profile::Profile> {
        self.engine
            .profiles()
            .get("discord")
            .cloned()
            .unwrap_or_else(|| panic!("no profile"))
    }
}

/// A profile authorized with a 1 s access token, past half its lifetime (where a token's refresh
/// falls due when the margin is longer than the token lives), so the next run refreshes.
async fn authorized_with_an_expiring_token(client_auth: &str) -> Setup {
    let setup = setup(client_auth).await;
    setup.provider().expires_in = 1;
    let (status, page, _) = setup.authorize().await;
    assert_eq!(status, 200, "{page}");
    setup.clock.advance(std::time::Duration::from_millis(600));
    setup
}

#[tokio::test]
async fn the_whole_flow_authorizes_and_runs_with_either_client_authentication() {
    for style in ["basic", "body"] {
        let setup = setup(style).await;
        let status_before = setup
            .engine
            .authorizer()
            .map(|a| a.status(&setup.profile()).ok());
        assert_eq!(
            status_before,
            Some(Some(AuthorizationStatus::NeverAuthorized))
        );
        let (status, page, query) = setup.authorize().await;
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Profile authorized"), "{page}");
        assert!(
            !page.contains("at-1") && !page.contains("code-1"),
            "the page shows a credential"
        );
        assert_eq!(query["response_type"], "code");
        assert_eq!(
            query["redirect_uri"],
            "http://127.0.0.1:8765/oauth2/callback"
        );
        assert_eq!(query["scope"], "identify email");
        assert_eq!(query["code_challenge_method"], "S256");
        assert_eq!(query["prompt"], "consent");

        let record = setup
            .engine
            .run("discord", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(record.ok, "{:?}", record.errors);
        let email = setup
            .engine
            .hub()
            .find(&DeviceKey::root("discord", "email"))
            .map(|d| d.string);
        assert_eq!(email.as_deref(), Some("ann@example.com"));

        // The API says the token expired: one refresh, one replay, the same client auth.
        setup.provider().valid_access.clear();
        let record = setup
            .engine
            .run("discord", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(record.ok, "{:?}", record.errors);
        assert_eq!(
            record
                .exchanges
                .iter()
                .map(|e| e.status)
                .collect::<Vec<_>>(),
            vec![Some(401), Some(200)]
        );
        let basic = setup.provider().basic();
        assert_eq!(basic, vec![style == "basic"; 2], "{style}: {basic:?}");
        // The rotated refresh token is what the store holds.
        let key = load_or_create_key(&setup.key_file).unwrap_or_else(|e| panic!("{e}"));
        let stored = TokenStore::open(&setup.tokens_dir, &key)
            .and_then(|s| s.load("discord"))
            .unwrap_or_else(|e| panic!("{e}"))
            .and_then(|g| g.tokens.refresh_token.map(|r| r.expose().to_string()));
        assert_eq!(stored.as_deref(), Some("rt-2"));
    }
}

#[tokio::test]
async fn bad_replayed_and_denied_callbacks_are_refused_without_a_token_request() {
    let setup = setup("basic").await;
    let (status, page) = setup.callback("code=x&state=forged").await;
    assert_eq!(status, 400);
    assert!(page.contains("unknown or was already used"), "{page}");
    let (status, _) = setup.callback("code=x").await;
    assert_eq!(status, 400);

    let (status, _, query) = setup.authorize().await;
    assert_eq!(status, 200);
    let (status, page) = setup
        .callback(&format!("code=code-1&state={}", query["state"]))
        .await;
    assert_eq!(status, 400, "a replayed state must be refused");
    assert!(page.contains("already used"), "{page}");

    let response = crate::support::local_request()
        .path("/oauth2/start?profile=discord")
        .reply(&routes(setup.state.clone()))
        .await;
    let location = response
        .headers()
        .get("location")
        .and_then(|l| l.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let state = url::Url::parse(&location)
        .ok()
        .and_then(|u| {
            u.query_pairs()
                .find(|(k, _)| k == "state")
                .map(|(_, v)| v.into_owned())
        })
        .unwrap_or_default();
    let (status, page) = setup
        .callback(&format!(
            "error=access_denied&error_description=The+user+said+no&state={state}"
        ))
        .await;
    assert_eq!(status, 400);
    assert!(
        page.contains("Access was denied") && page.contains("The user said no"),
        "{page}"
    );
    assert_eq!(
        setup.provider().code_exchanges(),
        1,
        "only the one good callback reached the token endpoint"
    );
}

#[tokio::test]
async fn a_thousand_runs_on_an_expired_token_make_one_refresh() {
    let setup = authorized_with_an_expiring_token("body").await;
    let mut runs = Vec::new();
    for _ in 0..1000 {
        let engine = setup.engine.clone();
        runs.push(tokio::spawn(async move {
            engine.run("discord", "").await.map(|r| r.ok)
        }));
    }
    let mut ok = 0;
    for run in runs {
        if matches!(run.await, Ok(Ok(true))) {
            ok += 1;
        }
    }
    assert_eq!(ok, 1000);
    assert_eq!(setup.provider().refreshes, 1);
}

#[tokio::test]
async fn a_dead_grant_asks_for_reauthorization_once_and_stops_refreshing() {
    let setup = authorized_with_an_expiring_token("basic").await;
    setup.provider().refuse_refresh = true;
    for _ in 0..50 {
        let record = setup
            .engine
            .run("discord", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!record.ok);
        assert!(
            record.errors[0]
                .message
                .contains("needs to be authorized again"),
            "{:?}",
            record.errors
        );
    }
    assert_eq!(
        setup.provider().refreshes,
        1,
        "no retry storm after invalid_grant"
    );
    let status = setup
        .engine
        .authorizer()
        .and_then(|a| a.status(&setup.profile()).ok());
    assert!(
        matches!(
            status,
            Some(AuthorizationStatus::NeedsReauthorization { .. })
        ),
        "{status:?}"
    );
    // Authorizing again needs no deleting, and works.
    setup.provider().refuse_refresh = false;
    let (status, _, _) = setup.authorize().await;
    assert_eq!(status, 200);
    let record = setup
        .engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
}

#[tokio::test]
async fn a_broken_token_endpoint_gets_a_readable_page_and_stores_nothing() {
    for (mode, expected) in [
        (Misbehaviour::Status500, "HTTP 500"),
        (Misbehaviour::Html, "not JSON"),
        (Misbehaviour::Invalid400, "invalid_request (bad things)"),
        (Misbehaviour::Slow, "no answer within 1 s"),
    ] {
        let setup = setup("basic").await;
        setup.provider().misbehaviour = Some(mode);
        let (status, page, _) = setup.authorize().await;
        assert_eq!(status, 502, "{mode:?}: {page}");
        assert!(page.contains(expected), "{mode:?}: {page}");
        let status = setup
            .engine
            .authorizer()
            .and_then(|a| a.status(&setup.profile()).ok());
        assert_eq!(
            status,
            Some(AuthorizationStatus::NeverAuthorized),
            "{mode:?}"
        );
    }
}

#[tokio::test]
async fn a_failing_refresh_backs_off_instead_of_hammering() {
    let setup = authorized_with_an_expiring_token("basic").await;
    setup.provider().misbehaviour = Some(Misbehaviour::Status500);
    for _ in 0..20 {
        let record = setup
            .engine
            .run("discord", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert!(!record.ok);
    }
    let record = setup
        .engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        record.errors[0].message.contains("next try in"),
        "{:?}",
        record.errors
    );
    // The server's Retry-After (120 s) holds: only the first run asked.
    assert_eq!(setup.provider().misbehaved, 1);
    let status = setup
        .engine
        .authorizer()
        .and_then(|a| a.status(&setup.profile()).ok());
    assert!(
        matches!(
            status,
            Some(AuthorizationStatus::Authorized { expiring: true, .. })
        ),
        "{status:?}"
    );
}

#[tokio::test]
async fn the_legacy_callback_path_is_served_too() {
    let setup = setup("basic").await;
    let response = crate::support::local_request()
        .path("/oauth2_callback.html?code=x&state=forged")
        .reply(&routes(setup.state.clone()))
        .await;
    assert_eq!(response.status(), 400);
    assert!(String::from_utf8_lossy(response.body()).contains("Authorization refused"));
}

/// Run in a child process by the test below: saves rotating tokens as fast as it can until killed.
#[test]
#[ignore = "a helper process for a_process_killed_while_saving_tokens_leaves_a_working_store"]
fn token_writer_child() {
    let Ok(dir) = std::env::var("BELLHOP_TOKEN_WRITER_DIR") else {
        return;
    };
    let dir = std::path::PathBuf::from(dir);
    let key = load_or_create_key(&dir.join("token.key")).unwrap_or_else(|e| panic!("{e}"));
    let store = TokenStore::open(&dir.join("tokens"), &key).unwrap_or_else(|e| panic!("{e}"));
    for n in 0u64.. {
        let body =
            format!(r#"{{"access_token":"at-{n}","refresh_token":"rt-{n}","expires_in":60}}"#);
        let tokens =
            bellhop::oauth::parse_token_response(&body, None, 0).unwrap_or_else(|e| panic!("{e}"));
        store
            .save(
                "discord",
                &bellhop::tokens::Grant::new(tokens, vec!["http://127.0.0.1:1".into()]),
            )
            .unwrap_or_else(|e| panic!("{e}"));
        if n == 0 {
            println!("WRITING");
        }
    }
}

#[test]
fn a_process_killed_while_saving_tokens_leaves_a_working_store() {
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    for round in 0..3 {
        let mut child =
            std::process::Command::new(std::env::current_exe().unwrap_or_else(|e| panic!("{e}")))
                .args([
                    "--ignored",
                    "--exact",
                    "oauth::token_writer_child",
                    "--nocapture",
                    "--test-threads",
                    "1",
                ])
                .env("BELLHOP_TOKEN_WRITER_DIR", dir.path())
                .stdout(std::process::Stdio::piped())
                .stderr(std::process::Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("{e}"));
        let stdout = child.stdout.take().unwrap_or_else(|| panic!("no stdout"));
        let mut lines = std::io::BufRead::lines(std::io::BufReader::new(stdout));
        assert!(
            lines.any(|l| l.is_ok_and(|l| l.contains("WRITING"))),
            "the writer did not start"
        );
        std::thread::sleep(std::time::Duration::from_millis(150 + round * 70));
        let _ = child.kill();
        let _ = child.wait();
        let key =
            load_or_create_key(&dir.path().join("token.key")).unwrap_or_else(|e| panic!("{e}"));
        let store =
            TokenStore::open(&dir.path().join("tokens"), &key).unwrap_or_else(|e| panic!("{e}"));
        let loaded = store
            .load("discord")
            .unwrap_or_else(|e| panic!("round {round}: {e}"));
        let tokens = loaded.unwrap_or_else(|| panic!("round {round}: no tokens"));
        // The access and refresh tokens belong together: no half-written mix.
        assert_eq!(
            tokens
                .tokens
                .access_token
                .expose()
                .trim_start_matches("at-"),
            tokens
                .tokens
                .refresh_token
                .as_ref()
                .map(|r| r.expose().trim_start_matches("rt-").to_string())
                .unwrap_or_default()
        );
    }
}

/// An engine over `profile_text` sharing the setup's authorizer (as a reload would).
fn engine_with(setup: &Setup, ws: &Workspace, profile_text: &str) -> Arc<Engine> {
    ws.write_profile("discord", profile_text);
    let authorizer = setup
        .engine
        .authorizer()
        .cloned()
        .unwrap_or_else(|| panic!("no authorizer"));
    Arc::new(
        Engine::new(ws.load(), None, setup.engine.hub().clone())
            .unwrap_or_else(|e| panic!("{e}"))
            .with_authorizer(authorizer),
    )
}

#[tokio::test]
async fn a_token_goes_only_to_the_origin_it_was_granted_for() {
    let setup = setup("basic").await;
    let (status, page, _) = setup.authorize().await;
    assert_eq!(status, 200, "{page}");
    let status = setup
        .engine
        .authorizer()
        .and_then(|a| a.status(&setup.profile()).ok());
    let Some(AuthorizationStatus::Authorized { api_origins, .. }) = status else {
        panic!("{status:?}")
    };
    let granted = setup
        .profile()
        .request
        .as_ref()
        .and_then(|r| r.static_origin())
        .map(|o| o.ascii_serialization());
    assert_eq!(api_origins.first(), granted.as_ref());
    // Someone points the profile at another server: it is not sent the token.
    let elsewhere = crate::support::start_stub().await;
    let ws = Workspace::new();
    let moved = std::fs::read_to_string(&setup.profile().file)
        .unwrap_or_default()
        .replace(
            &format!("{}/me", granted.clone().unwrap_or_default()),
            &elsewhere.url("/user"),
        );
    let engine = engine_with(&setup, &ws, &moved);
    let record = engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert!(
        record.errors[0].message.contains("was granted for")
            && record.errors[0]
                .message
                .contains("authorize the profile again"),
        "{:?}",
        record.errors
    );
    assert!(elsewhere.seen().is_empty(), "the other server was called");
    // Listing the other origin explicitly (and authorizing again) makes it a destination.
    let listed = moved.replace(
        "client_auth = \"basic\"",
        &format!(
            "client_auth = \"basic\"\napi_origins = [\"{}\"]",
            elsewhere.url("")
        ),
    );
    let engine = engine_with(&setup, &ws, &listed);
    let record = engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        !record.ok,
        "the old grant still names only the first origin"
    );
}

#[tokio::test]
async fn a_dead_grant_stays_dead_across_a_restart() {
    let setup = authorized_with_an_expiring_token("basic").await;
    setup.provider().refuse_refresh = true;
    let record = setup
        .engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert_eq!(setup.provider().refreshes, 1);
    // A new process: a new authorizer over the same store.
    let engine = restarted(&setup);
    let status = engine.authorization_status("discord").ok();
    assert!(
        matches!(&status, Some(AuthorizationStatus::NeedsReauthorization { reason }) if reason.contains("invalid_grant")),
        "{status:?}"
    );
    let record = engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(!record.ok);
    assert_eq!(
        setup.provider().refreshes,
        1,
        "the dead grant was tried again"
    );
}

#[tokio::test]
async fn short_lived_tokens_are_refreshed_once_per_expiry_and_keep_their_authorization_time() {
    let setup = setup("body").await;
    // 5 s tokens, a 60 s margin: the margin is capped at half the lifetime.
    setup.provider().expires_in = 5;
    let (status, page, _) = setup.authorize().await;
    assert_eq!(status, 200, "{page}");
    let authorized_at = |setup: &Setup| match setup
        .engine
        .authorizer()
        .and_then(|a| a.status(&setup.profile()).ok())
    {
        Some(AuthorizationStatus::Authorized {
            authorized_at,
            refreshed_at,
            ..
        }) => (authorized_at, refreshed_at),
        other => panic!("{other:?}"),
    };
    let (first, _) = authorized_at(&setup);
    // Right after authorizing, 200 concurrent runs refresh nothing.
    let run_all = |n: usize| {
        let runs: Vec<_> = (0..n)
            .map(|_| {
                let engine = setup.engine.clone();
                tokio::spawn(async move { engine.run("discord", "").await.map(|r| r.ok) })
            })
            .collect();
        async move {
            let mut ok = 0;
            for run in runs {
                if matches!(run.await, Ok(Ok(true))) {
                    ok += 1;
                }
            }
            ok
        }
    };
    assert_eq!(run_all(200).await, 200);
    assert_eq!(setup.provider().refreshes, 0);
    // Past half the lifetime, 200 concurrent runs make exactly one refresh.
    setup.clock.advance(std::time::Duration::from_millis(2_700));
    assert_eq!(run_all(200).await, 200);
    assert_eq!(setup.provider().refreshes, 1);
    let (again, refreshed) = authorized_at(&setup);
    assert_eq!(again, first, "a refresh is not an authorization");
    assert!(refreshed >= first);
}

/// Over MQTT, an OAuth2 profile's authorization health is an entity a hub can act on: never
/// authorized, then authorized once the person went through the provider.
#[tokio::test]
async fn the_authorization_health_reaches_the_mqtt_broker() {
    if !crate::mqtt::mosquitto_ready() {
        return;
    }
    let broker = crate::mqtt::Broker::start();
    let port = broker.port;
    let setup = setup("basic").await;
    let _bridge = bellhop::mqtt::start(&setup.engine, crate::mqtt::bridge_config(port))
        .unwrap_or_else(|e| panic!("{e}"));
    let observer =
        crate::mqtt::Observer::connect(port, "health-observer", &["bellhop/#", "homeassistant/#"])
            .await;
    let topic = "bellhop/profile/discord/authorization";
    observer
        .wait_for(topic, |p| p.contains("\"state\":\"never_authorized\""))
        .await;
    observer
        .wait_for(
            "homeassistant/sensor/bellhop-test/profile_discord_authorization/config",
            |p| p.contains("\"ent_cat\":\"diagnostic\""),
        )
        .await;
    let (status, page, _) = setup.authorize().await;
    assert_eq!(status, 200, "{page}");
    observer
        .wait_for(topic, |p| p.contains("\"state\":\"authorized\""))
        .await;
}

/// A new process over the same token store and devices: a new authorizer, a new engine.
fn restarted(setup: &Setup) -> Arc<Engine> {
    Arc::new(
        Engine::new(
            setup.engine.profiles().as_ref().clone(),
            None,
            setup.engine.hub().clone(),
        )
        .unwrap_or_else(|e| panic!("{e}"))
        .with_authorizer(authorizer(setup._ws.path(), &setup.clock, None)),
    )
}

/// The process stops after a rotating refresh left for the provider and before its answer was
/// saved (simulated: the answer is held and the refresh dropped). The next process knows a
/// refresh was under way: with a provider that accepts the rotated-out token for a grace
/// period the grant lives on; without, the reason says what happened.
#[tokio::test]
async fn a_refresh_interrupted_by_a_stop_is_retried_and_explained() {
    for grace in [true, false] {
        let setup = authorized_with_an_expiring_token("basic").await;
        setup.provider().hold_refresh_answers = true;
        setup.provider().grace = grace;
        let authorizer = setup
            .engine
            .authorizer()
            .cloned()
            .unwrap_or_else(|| panic!("no authorizer"));
        let profile = setup.profile();
        let url = url::Url::parse(&format!("http://{}/me", setup.provider.address))
            .unwrap_or_else(|e| panic!("{e}"));
        let refreshing =
            tokio::spawn(async move { authorizer.access_token(&profile, &url, None).await });
        // The provider has rotated (its answer is held): the process "stops" now.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while setup.provider().refreshes == 0 {
            assert!(std::time::Instant::now() < deadline, "no refresh was sent");
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        refreshing.abort();
        setup.provider().hold_refresh_answers = false;
        let engine = restarted(&setup);
        let record = engine
            .run("discord", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        if grace {
            assert!(record.ok, "grace: {:?}", record.errors);
            assert!(matches!(
                engine.authorization_status("discord"),
                Ok(AuthorizationStatus::Authorized { .. })
            ));
        } else {
            assert!(!record.ok);
            let status = engine.authorization_status("discord");
            assert!(
                matches!(&status, Ok(AuthorizationStatus::NeedsReauthorization { reason })
                    if reason.contains("stopped during the previous refresh")),
                "{status:?}"
            );
        }
    }
}

/// A provider that answered a rotation but did not keep it (the new refresh token refused, the
/// old one still good): the refresh token the current one replaced is tried once.
#[tokio::test]
async fn the_refresh_token_a_rotation_replaced_is_tried_once() {
    let setup = authorized_with_an_expiring_token("basic").await;
    setup.provider().expires_in = 1;
    let record = setup
        .engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(setup.provider().refreshes, 1);
    // The provider loses the rotation: rt-2 (issued at the refresh) unknown, rt-1 good again.
    {
        let mut provider = setup.provider();
        provider.valid_refresh.clear();
        provider.valid_refresh.push("rt-1".into());
        provider.valid_access.clear();
    }
    let record = setup
        .engine
        .run("discord", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    assert_eq!(
        setup.provider().refreshes,
        3,
        "the refused one and the one it replaced"
    );
}
