//! Routes of the server itself: health, reload, the expression sandbox, the function list, the UI's settings and the forms' schema.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /api/v1/health
    let health = api
        .and(warp::path("health"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            // Degraded (503) while the device store cannot commit: monitors notice.
            let store = state.engine.store_health();
            let failing = store.as_ref().is_some_and(|h| h.failing.is_some());
            json(
                if failing {
                    StatusCode::SERVICE_UNAVAILABLE
                } else {
                    StatusCode::OK
                },
                &serde_json::json!({
                    "status": if failing { "degraded" } else { "ok" },
                    "version": env!("CARGO_PKG_VERSION"),
                    "store": store,
                    // An adapter's trouble (an unreachable broker) is shown, not a degraded
                    // Bellhop: actions go on.
                    "adapters": state.engine.adapters(),
                }),
            )
        });
    // POST /api/v1/reload
    let reload = api
        .and(warp::path("reload"))
        .and(warp::path::end())
        .and(warp::post())
        .and(s())
        .and_then(|state: AppState| async move {
            let engine = state.engine.clone();
            respond(blocking(move || engine.reload()).await.map(|set| {
                ok(&serde_json::json!({
                    "profiles": set.profiles.keys().collect::<Vec<_>>(),
                    "diagnostics": set.diagnostics,
                }))
            }))
        });
    // POST /api/v1/eval  {expression, input? | profile?}
    let eval = api
        .and(warp::path("eval"))
        .and(warp::path::end())
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(|request: EvalRequest, state: AppState| async move {
            // A JSONPath over a large response can take seconds: off the async workers.
            respond(
                blocking(move || evaluate(&state, request))
                    .await
                    .and_then(|r| r),
            )
        });
    // GET /api/v1/ui: what the UI needs to know of the server (callback URLs, sign-in).
    let ui_settings = api
        .and(warp::path("ui"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let callbacks = state.engine.callback_urls().map(
                |(standard, legacy)| serde_json::json!({ "standard": standard, "legacy": legacy }),
            );
            ok(&serde_json::json!({
                "callback_urls": callbacks,
                "sign_in": state.edge.admin_required(),
            }))
        });
    // GET /api/v1/functions
    let functions = api
        .and(warp::path("functions"))
        .and(warp::path::end())
        .and(warp::get())
        .map(|| {
            let list: Vec<FunctionView> = expr::functions::FUNCTIONS
                .iter()
                .map(|f| FunctionView {
                    name: f.name,
                    signature: f.signature,
                    doc: f.doc,
                })
                .collect();
            ok(&serde_json::json!({ "functions": list }))
        });
    // GET /api/v1/schema: the editor forms' fields (kinds, help, choices), which the UI builds
    // its forms from.
    let schema = api
        .and(warp::path("schema"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let providers: Vec<(String, String)> = state
                .engine
                .providers()
                .iter()
                .map(|p| (p.id.clone(), p.name.clone()))
                .collect();
            ok(&crate::engine::forms::schemas_with_providers(&providers))
        });
    vec![
        health.boxed(),
        reload.boxed(),
        eval.boxed(),
        ui_settings.boxed(),
        functions.boxed(),
        schema.boxed(),
    ]
}

fn evaluate(state: &AppState, request: EvalRequest) -> Result<Response, ApiError> {
    let input = match (request.input, request.profile) {
        (Some(input), _) => SandboxInput::Text(input),
        (None, Some(profile)) => SandboxInput::LastResponse(profile),
        (None, None) => SandboxInput::Nothing,
    };
    let evaluation =
        state
            .engine
            .evaluate(&request.expression, input)
            .map_err(|error| match error {
                SandboxError::NoResponse(_) => ApiError::not_found(error.to_string()),
                SandboxError::Compile(errors) => {
                    let first = errors.errors.first();
                    let mut api = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "compile_error",
                        errors
                            .errors
                            .iter()
                            .map(|e| e.message.clone())
                            .collect::<Vec<_>>()
                            .join("; "),
                    );
                    api.column = first.map(|e| e.column);
                    api.span = first.map(|e| e.span);
                    api
                }
                SandboxError::Eval(e) => {
                    let mut api = ApiError::new(
                        StatusCode::UNPROCESSABLE_ENTITY,
                        "eval_error",
                        e.kind.to_string(),
                    );
                    api.column = Some(e.column);
                    api.span = Some(e.span);
                    api
                }
            })?;
    let value = evaluation.value;
    Ok(ok(&EvalResponse {
        result: value.to_json(),
        text: value.to_text(),
        kind: value.type_name(),
        warnings: evaluation.warnings,
    }))
}
