//! Routes of devices and globals: list, read, set, delete, and their history.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    let set_methods = || warp::put().or(warp::post()).unify();
    vec![
        // GET /api/v1/devices
        at("devices").and(warp::get()).and(s()).map(list).boxed(),
        // GET /api/v1/devices/{ref}
        api()
            .and(warp::path!("devices" / u64))
            .and(warp::get())
            .and(s())
            .map(one)
            .map(answer)
            .boxed(),
        // GET /api/v1/devices/{ref}/history?since=<ms>&limit=<n>: recorded changes, oldest first.
        api()
            .and(warp::path!("devices" / u64 / "history"))
            .and(warp::get())
            .and(warp::query::<HistoryQuery>())
            .and(s())
            .then(history)
            .map(answer)
            .boxed(),
        // DELETE /api/v1/devices/{ref}: deletes a device and its history.
        api()
            .and(warp::path!("devices" / u64))
            .and(warp::delete())
            .and(s())
            .map(remove)
            .map(answer)
            .boxed(),
        // PUT /api/v1/devices/{ref}  {value?, string?}
        api()
            .and(warp::path!("devices" / u64))
            .and(set_methods())
            .and(json_body())
            .and(s())
            .then(set)
            .map(answer)
            .boxed(),
        // GET /api/v1/globals
        at("globals").and(warp::get()).and(s()).map(globals).boxed(),
        // GET /api/v1/globals/{name}/history?since=<ms>&limit=<n>: recorded changes, oldest first.
        api()
            .and(warp::path!("globals" / String / "history"))
            .and(warp::get())
            .and(warp::query::<HistoryQuery>())
            .and(s())
            .then(global_history)
            .map(answer)
            .boxed(),
        // PUT /api/v1/globals/{name}  {value?, string?}
        api()
            .and(warp::path!("globals" / String))
            .and(set_methods())
            .and(json_body())
            .and(s())
            .map(set_global)
            .map(answer)
            .boxed(),
    ]
}

/// Most history points one request returns.
const MAX_HISTORY_POINTS: usize = 10_000;

#[derive(serde::Deserialize)]
struct HistoryQuery {
    since: Option<i64>,
    limit: Option<usize>,
}

fn unknown_device(reference: u64) -> ApiError {
    ApiError::from(crate::devices::StoreError::UnknownDevice(reference))
}

fn list(state: AppState) -> Response {
    let profiles = state.engine.profiles();
    let devices = state
        .engine
        .devices()
        .iter()
        .map(|d| DeviceView::described(d, &profiles))
        .collect();
    ok(&DeviceList { devices })
}

fn one(reference: u64, state: AppState) -> Answer {
    let device = state
        .engine
        .device(reference)
        .ok_or_else(|| unknown_device(reference))?;
    Ok(ok(&DeviceView::described(
        &device,
        &state.engine.profiles(),
    )))
}

async fn history(reference: u64, query: HistoryQuery, state: AppState) -> Answer {
    if state.engine.device(reference).is_none() {
        return Err(unknown_device(reference));
    }
    let limit = query.limit.unwrap_or(1000).clamp(1, MAX_HISTORY_POINTS);
    let since = query.since.unwrap_or(0);
    let engine = state.engine.clone();
    let points = blocking(move || engine.device_history(reference, since, limit)).await??;
    Ok(ok(&DeviceHistory {
        reference,
        points: points.iter().map(HistoryPointView::from).collect(),
    }))
}

async fn global_history(name: String, query: HistoryQuery, state: AppState) -> Answer {
    let name = decode(&name);
    if state.engine.global(&name).is_none() {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown_global",
            format!("no global is named `{name}`"),
        ));
    }
    let limit = query.limit.unwrap_or(1000).clamp(1, MAX_HISTORY_POINTS);
    let since = query.since.unwrap_or(0);
    let engine = state.engine.clone();
    let looked_up = name.clone();
    let points = blocking(move || engine.global_history(&looked_up, since, limit)).await??;
    Ok(ok(&GlobalHistory {
        name: &name,
        points: points.iter().map(HistoryPointView::from).collect(),
    }))
}

fn remove(reference: u64, state: AppState) -> Answer {
    let device = state.engine.remove_device(reference)?;
    Ok(ok(&DeviceView::described(
        &device,
        &state.engine.profiles(),
    )))
}

async fn set(reference: u64, request: SetRequest, state: AppState) -> Answer {
    let device = state
        .engine
        .set_device(reference, request.value, request.string)
        .await?;
    Ok(ok(&DeviceView::described(
        &device,
        &state.engine.profiles(),
    )))
}

fn globals(state: AppState) -> Response {
    let globals = state
        .engine
        .globals()
        .iter()
        .map(GlobalView::from)
        .collect();
    ok(&GlobalList { globals })
}

fn set_global(name: String, request: SetRequest, state: AppState) -> Answer {
    let global = state
        .engine
        .set_global(&decode(&name), request.value, request.string)?;
    Ok(ok(&GlobalView::from(&global)))
}
