//! Routes of runs: running an action, and the recent runs.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // POST /api/v1/actions/run
    let run = api
        .and(warp::path!("actions" / "run"))
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(|request: RunRequest, state: AppState| async move {
            respond(
                match state.engine.run(&request.profile, &request.text).await {
                    Ok(record) => Ok(ok(&*record)),
                    Err(error) => Err(ApiError::from(error)),
                },
            )
        });
    // GET /api/v1/runs?profile=&limit=
    let runs = api
        .and(warp::path("runs"))
        .and(warp::path::end())
        .and(warp::get())
        .and(warp::query::<RunsQuery>())
        .and(s())
        .map(|query: RunsQuery, state: AppState| {
            let limit = query.limit.unwrap_or(50).min(1000);
            let runs = state.engine.history(query.profile.as_deref(), limit);
            ok(&serde_json::json!({ "runs": runs }))
        });
    vec![run.boxed(), runs.boxed()]
}
