//! Routes of runs: running an action, and the recent runs.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    vec![
        // POST /api/v1/actions/run  {profile, text}
        api()
            .and(warp::path!("actions" / "run"))
            .and(warp::post())
            .and(json_body())
            .and(s())
            .then(answer_run)
            .boxed(),
        // GET /api/v1/runs?profile=&limit=
        at("runs")
            .and(warp::get())
            .and(warp::query::<RunsQuery>())
            .and(s())
            .map(recent)
            .boxed(),
    ]
}

/// Runs an action and answers with its record (the filter route's handler and the shortcut's,
/// `web::shortcut`).
pub(in crate::web) async fn answer_run(request: RunRequest, state: AppState) -> Response {
    answer_run_with(request, &state).await
}

/// [`answer_run`] on a borrowed state (the shortcut's: no clone of the state's handles per
/// request).
pub(in crate::web) async fn answer_run_with(request: RunRequest, state: &AppState) -> Response {
    answer(run(request, state).await)
}

async fn run(request: RunRequest, state: &AppState) -> Answer {
    let record = state.engine.run(&request.profile, &request.text).await?;
    Ok(ok(&RunView::from(&*record)))
}

fn recent(query: RunsQuery, state: AppState) -> Response {
    let limit = query.limit.unwrap_or(50).min(1000);
    let runs = state.engine.history(query.profile.as_deref(), limit);
    ok(&RunList {
        runs: runs.iter().map(|run| RunView::from(&**run)).collect(),
    })
}
