//! Attaching a valid OAuth2 access token to a request (the hot path: a cached token far from
//! expiry) against a static bearer token, as a ratio in the same run. Both build the request the
//! engine sends.

mod common;

use std::hint::black_box;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bellhop::engine::authorization::Authorizer;
use bellhop::engine::request;
use bellhop::expr::{Document, EmptyEnvironment, Scope};
use bellhop::oauth::parse_token_response;
use bellhop::profile::{self, AuthSpec, Profile};
use bellhop::secret::SecretSource;
use bellhop::tokens::{load_or_create_key, TokenStore};
use criterion::Criterion;

fn load(text: &str) -> Profile {
    let (profile, diagnostics) =
        profile::load_text(Path::new("bench.toml"), text, &SecretSource::default());
    profile.unwrap_or_else(|| panic!("{diagnostics:?}"))
}

fn benches(c: &mut Criterion) {
    let static_profile = load("[request]\nurl = \"http://127.0.0.1:9/me\"\n[auth]\nmode = \"bearer\"\ntoken = \"static-token-0123456789\"\n");
    let oauth_profile = load(
        "name = \"bench\"\n[request]\nurl = \"http://127.0.0.1:9/me\"\n[auth.oauth2]\nclient_id = \"c\"\nauthorize_url = \"http://127.0.0.1:9/auth\"\ntoken_url = \"http://127.0.0.1:9/token\"\n",
    );
    let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
    let key = load_or_create_key(&dir.path().join("key")).unwrap_or_else(|e| panic!("{e}"));
    let store = Arc::new(
        TokenStore::open(&dir.path().join("tokens"), &key).unwrap_or_else(|e| panic!("{e}")),
    );
    let tokens = parse_token_response(
        r#"{"access_token":"oauth-token-0123456789","refresh_token":"r","expires_in":86400}"#,
        None,
        chrono::Utc::now().timestamp_millis(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    store
        .save(
            "bench",
            &bellhop::tokens::Grant::new(tokens, vec!["http://127.0.0.1:9".into()]),
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let base = url::Url::parse("http://127.0.0.1:8765/").unwrap_or_else(|e| panic!("{e}"));
    let authorizer =
        Authorizer::new(store, base, Duration::from_secs(60)).unwrap_or_else(|e| panic!("{e}"));
    let document = Document::new("", Default::default());
    let scope = Scope::new(&document, &EmptyEnvironment);
    assert!(matches!(oauth_profile.auth, AuthSpec::OAuth2(_)));
    // Warm the cache once, as the first run of a profile does.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let api = url::Url::parse("http://127.0.0.1:9/me").unwrap_or_else(|e| panic!("{e}"));
    let warmed = runtime.block_on(authorizer.access_token(&oauth_profile, &api, None));
    assert!(warmed.is_ok(), "{:?}", warmed.err());

    let spec_of = |profile: &bellhop::profile::Profile| {
        profile
            .request
            .clone()
            .unwrap_or_else(|| panic!("an outgoing profile"))
    };
    let (static_spec, oauth_spec) = (spec_of(&static_profile), spec_of(&oauth_profile));
    let mut group = c.benchmark_group("auth");
    group.bench_function("static_bearer", |b| {
        b.iter(|| {
            let prepared = request::prepare(black_box(&static_profile), &static_spec, &scope)
                .ok()
                .flatten();
            prepared.map(|p| p.headers.len())
        })
    });
    group.bench_function("oauth2_cached_token", |b| {
        b.iter(|| {
            let mut prepared = request::prepare(black_box(&oauth_profile), &oauth_spec, &scope)
                .ok()
                .flatten()?;
            // What the engine does: the ready header of the cached token, when it is fresh.
            let (header, _) = authorizer
                .fresh_header(&oauth_profile.name, &prepared.url)
                .ok()??;
            prepared
                .headers
                .insert(reqwest::header::AUTHORIZATION, header);
            Some(prepared.headers.len())
        })
    });
    group.finish();
}

fn main() {
    common::main_with(benches, report);
}

fn report() {
    if let (Some(fixed), Some(oauth)) = (
        common::mean_ns("auth", "static_bearer", ""),
        common::mean_ns("auth", "oauth2_cached_token", ""),
    ) {
        println!(
            "\nAttaching a token: static bearer {:.0} ns, cached OAuth2 token {:.0} ns: ratio {:.2}x (target: within noise of 1x)",
            fixed, oauth, oauth / fixed
        );
    }
}
