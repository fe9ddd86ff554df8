//! Fuzzing the expression language (compile + evaluate, as the sandbox, action texts and device
//! boxes do), the profile loader, and what OAuth providers send and say (token answers,
//! provider definitions, paths, templates, OAuth 1.0a parameters) with generated hostile input, plus every crasher ever found,
//! kept as files under `tests/fuzz-corpus/` and replayed on every run.
//!
//! Each case runs on a thread with a 1 MiB stack (smaller than any worker of `serve`), so an
//! unbounded recursion fails here. Before a case runs, its input is written to
//! `target/fuzz-current.*`: if the process aborts (a stack overflow cannot be caught), that file
//! is the crasher to add to the corpus.
//!
//! `cargo test` runs a bounded number of cases; `BELLHOP_FUZZ_SECONDS=600 cargo test --test
//! integration fuzz -- --nocapture` fuzzes each target for that long.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bellhop::expr::{self, EmptyEnvironment};
use bellhop::secret::SecretSource;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

const STACK: usize = 1024 * 1024;

fn corpus(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz-corpus")
        .join(kind)
}

fn current(kind: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("target")
        .join(format!("fuzz-current.{kind}"))
}

/// Runs `check` on a small stack; a panic is a failure naming the input.
fn on_small_stack(what: &str, input: String, check: fn(&str)) -> Result<(), TestCaseError> {
    let shown = input.chars().take(300).collect::<String>();
    let outcome = std::thread::Builder::new()
        .stack_size(STACK)
        .spawn(move || check(&input))
        .map_err(|e| TestCaseError::fail(format!("{what}: no thread: {e}")))?
        .join();
    outcome.map_err(|_| TestCaseError::fail(format!("{what} panicked on {shown:?}")))
}

const SAMPLE_INPUTS: &[&str] = &[
    "",
    r#"{"email":"ann@example.com","rooms":[{"name":"K","temp":21.5},{"name":"H","temp":-3}],"n":1e308,"deep":[[[[[1]]]]]}"#,
    "on off 12 -3.5 wait <wait 5>",
    "\u{0}\u{7f}\u{2028}\"}{][",
];

/// Compiles (as the sandbox does) and evaluates against each sample input; every outcome is
/// fine but a panic, a stack overflow or an error without a column in range.
fn check_expression(source: &str) {
    match expr::Expression::compile_sandbox(source) {
        Ok(expression) => {
            for input in SAMPLE_INPUTS {
                let document = expr::Document::new(*input, expression.plan());
                if let Err(error) =
                    expression.evaluate(&expr::Scope::new(&document, &EmptyEnvironment))
                {
                    assert!(error.column >= 1, "{error}");
                }
            }
        }
        Err(errors) => {
            assert!(!errors.errors.is_empty());
            for error in &errors.errors {
                assert!(
                    error.column >= 1 && error.column <= source.chars().count() + 1,
                    "column {} out of range: {error}",
                    error.column
                );
            }
        }
    }
    // The same text as a template (an action text, a URL, a body).
    if let Ok(template) = expr::Template::compile(source) {
        let document = expr::Document::new(SAMPLE_INPUTS[1], Default::default());
        let _ = template.render_text(&expr::Scope::new(&document, &EmptyEnvironment));
    }
}

fn check_profile(text: &str) {
    let (profile, diagnostics) =
        bellhop::profile::load_text(Path::new("fuzz.toml"), text, &SecretSource::default());
    if profile.is_none() {
        assert!(
            diagnostics.iter().any(|d| d.is_error()),
            "refused without saying why"
        );
    }
}

fn leaf() -> impl Strategy<Value = String> {
    prop_oneof![
        "-?[0-9]{1,4}(\\.[0-9]{1,3})?",
        "[0-9]{300,420}",
        "\"[a-z .,:\\\\\"{}$\\[\\]]{0,12}\"",
        Just("input".to_string()),
        Just("item".to_string()),
        Just("index".to_string()),
        Just("val12".to_string()),
        Just("str7".to_string()),
        Just("true".to_string()),
        Just("null".to_string()),
        Just("nope".to_string()),
        Just("\u{201C}typo\u{201D}".to_string()),
        Just("\"$.rooms[?(@.temp > 0)].name\"".to_string()),
        Just("\"rooms[*].temp\"".to_string()),
        Just("\"(?<=a)b\"".to_string()),
        Just("\"(a+)+\\\\1b\"".to_string()),
        Just("\"\"".to_string()),
    ]
}

/// Expressions built from the language's own pieces, nested and combined at random.
fn expression() -> impl Strategy<Value = String> {
    let names: Vec<&'static str> = expr::functions::FUNCTIONS.iter().map(|f| f.name).collect();
    leaf().prop_recursive(12, 200, 5, move |inner| {
        let names = names.clone();
        prop_oneof![
            (
                inner.clone(),
                "( \\+ | - | \\* | / | % | == | = | != | < | <= | > | >= | and | or )",
                inner.clone()
            )
                .prop_map(|(a, op, b)| format!("{a}{op}{b}")),
            inner.clone().prop_map(|a| format!("-{a}")),
            inner.clone().prop_map(|a| format!("not {a}")),
            inner.clone().prop_map(|a| format!("({a})")),
            (inner.clone(), inner.clone()).prop_map(|(a, i)| format!("{a}[{i}]")),
            (
                proptest::sample::select(names),
                proptest::collection::vec(inner.clone(), 0..5)
            )
                .prop_map(|(name, args)| format!("{name}({})", args.join(", "))),
            (inner.clone(), inner).prop_map(|(a, b)| format!("${{{a}}} text ${{ {b} }}")),
        ]
    })
}

/// Character soup over the language's alphabet: unbalanced, truncated, deep.
fn soup() -> impl Strategy<Value = String> {
    prop_oneof![
        "[()\\[\\]+\\-*/%<>=!,.\"\\\\${}a-zA-Z0-9 _\u{201C}\u{2013}\u{00e9}]{0,120}",
        (1usize..3000).prop_map(|n| "(".repeat(n)),
        (1usize..3000).prop_map(|n| format!("{}1", "-".repeat(n))),
        (1usize..5000).prop_map(|n| vec!["1"; n].join("+")),
        (1usize..500).prop_map(|n| format!("{}1{}", "abs(".repeat(n), ")".repeat(n))),
        (1usize..2000).prop_map(|n| format!("input{}", "[0]".repeat(n))),
        (1usize..2000).prop_map(|n| "${".repeat(n)),
    ]
}

const PROFILE_KEYS: &[&str] = &[
    "version = 1",
    "name = \"fz\"",
    "description = \"x\"",
    "[request]",
    "url = \"http://127.0.0.1/${input}\"",
    "url = \"htp:/\"",
    "method = \"POST\"",
    "method = \"FLY\"",
    "timeout_secs = -1",
    "timeout_secs = 1e400",
    "max_response_bytes = 0",
    "raw_url = true",
    "headers = { X = \"${input}\" }",
    "body = { kind = \"json\", template = '{\"a\": ${input}}' }",
    "body = { kind = \"form\", fields = { a = \"${\" } }",
    "[auth]",
    "mode = \"oauth2\"",
    "mode = \"basic\"",
    "token = \"${env:BELLHOP_TOKEN_KEY}\"",
    "[auth.oauth2]",
    "client_id = \"c\"",
    "authorize_url = \"http://a/\"",
    "token_url = \"http://a/t\"",
    "api_origins = [\"nope\", \"http://a\"]",
    "callback = \"sideways\"",
    "[devices]",
    "root_names = '\"a\" &&& \"b\" && \"c\"'",
    "values = '1 &&& 2'",
    "feature_names = '&& &&&'",
    "affect = 'Status() == 200'",
    "[[device]]",
    "name = 'JSON(input, \"rooms[*].name\")'",
    "[[device.feature]]",
    "[history]",
    "keep = 0",
    "x = [[[[[[[[]]]]]]]]",
    "a.b.c.d.e = 1",
    "\"\\u0000\" = 1",
    "[[[",
    "= = =",
];

/// Profile files made of real keys and hostile values, in random order, with expressions from
/// the expression generator spliced into the boxes.
fn profile() -> impl Strategy<Value = String> {
    (
        proptest::collection::vec(proptest::sample::select(PROFILE_KEYS), 0..25),
        expression(),
        soup(),
    )
        .prop_map(|(lines, expression, soup)| {
            let mut text = lines.join("\n");
            text.push_str(&format!(
                "\n[devices]\nroot_names = '\"r\"'\nvalues = '''{}'''\nstrings = \"\"\"{}\"\"\"\n",
                expression.replace("'''", "'"),
                soup.replace('\\', "\\\\").replace("\"\"\"", "\"")
            ));
            text
        })
}

/// Replays the corpus, then fuzzes for `BELLHOP_FUZZ_SECONDS` (or a bounded number of cases).
fn fuzz(kind: &str, strategy: impl Strategy<Value = String>, check: fn(&str), cases: u32) {
    let dir = corpus(kind);
    let mut replayed = 0;
    for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
        let path = entry.unwrap_or_else(|e| panic!("{e}")).path();
        let input = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
        if let Err(error) = on_small_stack(kind, input, check) {
            panic!("corpus file {}: {error}", path.display());
        }
        replayed += 1;
    }
    assert!(replayed > 0, "the {kind} corpus is empty");
    let seconds: u64 = std::env::var("BELLHOP_FUZZ_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let last = current(kind);
    let mut total = 0u64;
    loop {
        let mut runner = TestRunner::new(Config {
            cases,
            failure_persistence: None,
            ..Config::default()
        });
        let result = runner.run(&strategy, |input| {
            // Kept until the next case: after an abort, this is the crasher.
            let _ = std::fs::write(&last, &input);
            on_small_stack(kind, input, check)
        });
        if let Err(error) = result {
            panic!("{kind} fuzzing found a failure: {error}");
        }
        total += u64::from(cases);
        if Instant::now() >= deadline {
            break;
        }
    }
    eprintln!("fuzzed {kind}: {total} generated cases and {replayed} corpus files");
}

#[test]
fn fuzz_expressions() {
    fuzz(
        "expressions",
        prop_oneof![expression(), soup()],
        check_expression,
        2_000,
    );
}

#[test]
fn fuzz_profiles() {
    fuzz("profiles", profile(), check_profile, 600);
}

/// What providers send and what provider files say, hostile: a definition file, a token answer
/// read by the standard shape and a nested one (JSON or form, any content type), a JSONPath and
/// a request template from the text, and the OAuth 1.0a base string of the text as parameters.
fn check_oauth(text: &str) {
    use bellhop::oauth::{FieldPath, TextTemplate, TokenShape};
    let _ = bellhop::profile::provider::parse_definition(Path::new("fuzz.json"), text, false);
    let mut nested = TokenShape::default();
    if let (Ok(access), Ok(fields)) = (
        FieldPath::parse("body.access_token"),
        FieldPath::parse("$.body"),
    ) {
        nested.access_token = access;
        nested.fields = Some(fields);
    }
    for shape in [TokenShape::default(), nested] {
        for content_type in [
            None,
            Some("application/x-www-form-urlencoded"),
            Some("text/html"),
        ] {
            if let Err(error) = shape.read(text, content_type, None, 0) {
                // Messages show shapes, never values: a short one always.
                assert!(error.to_string().len() < 4_096, "{error}");
            }
        }
    }
    let _ = FieldPath::parse(text);
    let _ = TextTemplate::compile(text, &["tenant"]);
    if let Ok(url) = url::Url::parse("http://example.com/a?b=c") {
        let params: Vec<(String, String)> = text
            .split('&')
            .take(200)
            .map(|p| match p.split_once('=') {
                Some((k, v)) => (k.to_string(), v.to_string()),
                None => (p.to_string(), String::new()),
            })
            .collect();
        let _ = bellhop::oauth::one::base_string("POST", &url, &params);
    }
}

/// JSON objects of real provider and token keys with hostile values, nested; and soup.
fn oauth_text() -> impl Strategy<Value = String> {
    const KEYS: &[&str] = &[
        "host",
        "authorize_path",
        "token_path",
        "oauth2_bearer",
        "TokenTimeout",
        "TokenTimeoutCodepattern",
        "TokenExpiresVariable",
        "grants",
        "token_response",
        "access_token",
        "refresh_token",
        "expires_in",
        "expires_at",
        "scope",
        "error",
        "error_description",
        "status",
        "body",
        "settings",
        "profile",
        "api_query",
    ];
    let leaf = prop_oneof![
        Just(serde_json::Value::Null),
        any::<i64>().prop_map(serde_json::Value::from),
        any::<f64>().prop_map(|f| serde_json::Number::from_f64(f)
            .map_or(serde_json::Value::Null, serde_json::Value::Number)),
        soup().prop_map(serde_json::Value::String),
        Just(serde_json::Value::String("{{tenant}}/x".into())),
        Just(serde_json::Value::String("$..*[?(@.a)]".into())),
    ];
    let value = leaf.prop_recursive(6, 64, 8, |inner| {
        prop_oneof![
            proptest::collection::vec(inner.clone(), 0..6).prop_map(serde_json::Value::Array),
            proptest::collection::vec((proptest::sample::select(KEYS), inner), 0..8).prop_map(
                |pairs| {
                    serde_json::Value::Object(
                        pairs.into_iter().map(|(k, v)| (k.to_string(), v)).collect(),
                    )
                }
            ),
        ]
    });
    prop_oneof![value.prop_map(|v| v.to_string()), soup()]
}

#[test]
fn fuzz_oauth_answers_and_definitions() {
    fuzz("oauth", oauth_text(), check_oauth, 1_000);
}

/// Routes of every group the header fuzzing calls.
const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/devices"),
    ("POST", "/api/v1/actions/run"),
    ("GET", "/"),
    ("GET", "/login"),
    ("GET", "/oauth2/callback?state=x&code=y"),
    ("POST", "/hooks/events/none/token"),
    ("GET", "/in/sensors/hall?t=1"),
    // (not the live stream: its answer never ends)
];

/// Headers a hostile client may garble.
const HEADERS: &[&str] = &[
    "accept",
    "authorization",
    "origin",
    "cookie",
    "content-type",
    "content-length",
    "x-bellhop-token",
    "x-forwarded-for",
    "accept-encoding",
];

/// Any header of any route holding any bytes a header may hold (beyond ASCII included) is
/// answered in the error envelope or served, never with a 500 or a crash.
#[test]
fn fuzz_request_headers() {
    let ws = crate::support::Workspace::new();
    ws.write_profile(
        "hall",
        "version = 1\nlisten = \"/sensors/hall\"\n[devices]\nroot_names = '\"Hall\"'\nvalues = 'ParseNumber(Query(input, \"t\"))'\n",
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("{e}"));
    let routes = {
        let _entered = runtime.enter();
        bellhop::web::routes(crate::hardening::api_state(&ws))
    };
    let cases = (
        0..ROUTES.len(),
        0..HEADERS.len(),
        proptest::collection::vec(prop_oneof![Just(b'\t'), 0x20u8..0x7f, 0x80u8..=0xff], 0..64),
    );
    let mut runner = TestRunner::new(Config {
        cases: 400,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&cases, |(route, header, value)| {
        let (method, path) = ROUTES[route];
        let Ok(value) = warp::http::HeaderValue::from_bytes(&value) else {
            return Ok(());
        };
        let response = runtime.block_on(
            crate::support::local_request()
                .method(method)
                .path(path)
                .header(HEADERS[header], value.clone())
                .reply(&routes),
        );
        let status = response.status().as_u16();
        // 503 is what the callback says in this process, which has no OAuth2 (legitimately).
        if status == 500 || status > 503 {
            return Err(TestCaseError::fail(format!(
                "{method} {path} with {}: {value:?} answered {status}: {:?}",
                HEADERS[header],
                response.body()
            )));
        }
        Ok(())
    });
    if let Err(error) = result {
        panic!("header fuzzing found a failure: {error}");
    }
    // The ones an attack run found: a byte beyond ASCII in Accept, Authorization and Origin.
    for header in ["accept", "authorization", "origin"] {
        let response = runtime.block_on(
            crate::support::local_request()
                .path("/api/v1/health")
                .header(
                    header,
                    warp::http::HeaderValue::from_bytes(b"\xff").unwrap_or_else(|e| panic!("{e}")),
                )
                .reply(&routes),
        );
        assert_eq!(response.status(), 400, "{header}: {:?}", response.body());
        let body: serde_json::Value = serde_json::from_slice(response.body()).unwrap_or_default();
        assert_eq!(body["error"]["code"], "bad_request", "{body}");
    }
}
