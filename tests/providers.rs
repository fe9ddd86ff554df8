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
use std::sync::Arc;
use std::time::Duration;

use bellhop::clock::Clock;
use bellhop::engine::authorization::AuthorizationStatus;
use bellhop::engine::Engine;
use bellhop::profile::ProviderCatalog;

use crate::support::oauth_server::{
    authorized_engine, paths_of, Answer, ClientAuth, OAuthServer, Quirks, Refusal, CLIENT_ID,
    CLIENT_SECRET, STANDARD,
};
use crate::support::Workspace;

/// The profile: the preset named, its addresses rebased onto the stub, nothing else.
fn profile_for(q: &Quirks, stub: &OAuthServer) -> String {
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
    let clock = Clock::adjustable();
    let set = ws.load();
    assert!(!set.has_errors(), "{text}\n{:#?}", set.diagnostics);
    let engine = authorized_engine(&ws, set, None, &clock, Duration::from_secs(3));
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
        .find(|d| &*d.key.profile == "home" && &*d.key.root == "temperature")
        .map(|d| d.value);
    assert_eq!(value, Some(21.5), "{what}");
}

/// Authorizes the profile as the provider's users do, runs it, refreshes, survives an expired
/// token, is refused with the provider's error shape, and forgets (revoking when it can).
async fn exercise(q: &'static Quirks) {
    let stub = OAuthServer::start(q).await;
    stub.state().expires_in = 4;
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
        crate::support::eventually(|| !stub.state().device_polls.is_empty()).await;
        assert!(
            !stub.state().device_polls.is_empty(),
            "the device flow polls"
        );
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
