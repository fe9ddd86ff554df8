//! The web UI's files (built into the binary from web/) and the demo's JSON source.

use super::*;

pub(in crate::web) fn routes(_state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
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
    // The UI's modules: GET /js/<name>.js.
    let modules = warp::path!("js" / String)
        .and(warp::get())
        .map(
            |name: String| match UI_MODULES.iter().find(|(file, _)| *file == name) {
                Some((_, body)) => static_file(body, "text/javascript; charset=utf-8"),
                None => ApiError::not_found(format!("no UI module named `{name}`")).into_response(),
            },
        );
    // GET /demo/rooms.json: a local JSON source for the quick start.
    let demo = warp::path!("demo" / "rooms.json")
        .and(warp::get())
        .map(|| ok(&demo_rooms()));

    vec![ui.boxed(), modules.boxed(), demo.boxed()]
}

const UI_INDEX: &str = include_str!("../../../web/index.html");
const UI_SCRIPT: &str = include_str!("../../../web/app.js");
const UI_STYLE: &str = include_str!("../../../web/style.css");
const UI_ICON: &str = include_str!("../../../web/favicon.svg");
/// The modules `app.js` imports (web/js/), by file name.
const UI_MODULES: &[(&str, &str)] = &[
    ("api.js", include_str!("../../../web/js/api.js")),
    ("overview.js", include_str!("../../../web/js/overview.js")),
    ("devices.js", include_str!("../../../web/js/devices.js")),
    ("dom.js", include_str!("../../../web/js/dom.js")),
    ("events.js", include_str!("../../../web/js/events.js")),
    ("live.js", include_str!("../../../web/js/live.js")),
    ("profiles.js", include_str!("../../../web/js/profiles.js")),
    ("runs.js", include_str!("../../../web/js/runs.js")),
    (
        "schema-form.js",
        include_str!("../../../web/js/schema-form.js"),
    ),
    ("state.js", include_str!("../../../web/js/state.js")),
];

pub(in crate::web) fn static_file(body: &'static str, content_type: &'static str) -> Response {
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
