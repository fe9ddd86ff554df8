//! Routes of the server itself: health, reload, the expression sandbox, the function list, the UI's settings and the forms' schema.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    let get = |name: &'static str| {
        api()
            .and(warp::path(name))
            .and(warp::path::end())
            .and(warp::get())
    };
    vec![
        // GET /api/v1/health
        get("health").and(s()).map(health).boxed(),
        // POST /api/v1/reload
        at("reload")
            .and(warp::post())
            .and(s())
            .then(reload)
            .map(answer)
            .boxed(),
        // POST /api/v1/eval  {expression, input? | profile?}
        at("eval")
            .and(warp::post())
            .and(json_body())
            .and(s())
            .then(eval)
            .map(answer)
            .boxed(),
        // GET /api/v1/ui: what the UI needs to know of the server (callback URLs, sign-in).
        get("ui").and(s()).map(ui_settings).boxed(),
        // GET /api/v1/functions
        get("functions").map(functions).boxed(),
        // GET /api/v1/schema: the editor forms' fields (kinds, help, choices), which the UI
        // builds its forms from.
        get("schema").and(s()).map(schema).boxed(),
    ]
}

/// Degraded (503) while the device store cannot commit: monitors notice. An adapter's trouble
/// (an unreachable broker) is shown, not a degraded Bellhop: actions go on.
fn health(state: AppState) -> Response {
    let store = state.engine.store_health();
    let failing = store.as_ref().is_some_and(|h| h.failing.is_some());
    let status = if failing {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    json(
        status,
        &Health {
            status: if failing { "degraded" } else { "ok" },
            version: env!("CARGO_PKG_VERSION"),
            store,
            adapters: state.engine.adapters(),
        },
    )
}

async fn reload(state: AppState) -> Answer {
    let engine = state.engine.clone();
    let set = blocking(move || engine.reload()).await?;
    Ok(ok(&Reloaded {
        profiles: set.profiles.keys().map(String::as_str).collect(),
        diagnostics: &set.diagnostics,
    }))
}

/// A JSONPath over a large response can take seconds: off the async workers.
async fn eval(request: EvalRequest, state: AppState) -> Answer {
    blocking(move || evaluate(&state, request)).await?
}

fn ui_settings(state: AppState) -> Response {
    ok(&UiSettings {
        callback_urls: state
            .engine
            .callback_urls()
            .map(|(standard, legacy)| CallbackUrls { standard, legacy }),
        sign_in: state.edge.admin_required(),
    })
}

fn functions() -> Response {
    let functions = expr::functions::FUNCTIONS
        .iter()
        .map(|f| FunctionView {
            name: f.name,
            signature: f.signature,
            doc: f.doc,
        })
        .collect();
    ok(&FunctionList { functions })
}

fn schema(state: AppState) -> Response {
    let providers: Vec<(String, String)> = state
        .engine
        .providers()
        .iter()
        .map(|p| (p.id.clone(), p.name.clone()))
        .collect();
    ok(&crate::engine::forms::schemas_with_providers(&providers))
}

fn evaluate(state: &AppState, request: EvalRequest) -> Answer {
    let input = match (request.input, request.profile) {
        (Some(input), _) => SandboxInput::Text(input),
        (None, Some(profile)) => SandboxInput::LastResponse(profile),
        (None, None) => SandboxInput::Nothing,
    };
    let evaluation = state.engine.evaluate(&request.expression, input)?;
    let value = evaluation.value;
    Ok(ok(&EvalResponse {
        result: value.to_json(),
        text: value.to_text(),
        kind: value.type_name(),
        warnings: evaluation.warnings,
    }))
}
