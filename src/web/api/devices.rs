//! Routes of devices and globals: list, read, set, delete, and a device's history.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /api/v1/devices
    let devices_list = api
        .and(warp::path("devices"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let devices: Vec<DeviceView> = state
                .engine
                .devices()
                .iter()
                .map(DeviceView::from)
                .collect();
            ok(&serde_json::json!({ "devices": devices }))
        });
    // GET /api/v1/devices/{ref}
    let devices_get = api
        .and(warp::path!("devices" / u64))
        .and(warp::get())
        .and(s())
        .map(
            |reference: u64, state: AppState| match state.engine.device(reference) {
                Some(device) => ok(&DeviceView::from(&device)),
                None => ApiError::not_found(format!("device {reference} does not exist"))
                    .into_response(),
            },
        );
    // GET /api/v1/devices/{ref}/history?since=<ms>&limit=<n>: recorded changes, oldest first.
    let devices_history = api
        .and(warp::path!("devices" / u64 / "history"))
        .and(warp::get())
        .and(warp::query::<HistoryQuery>())
        .and(s())
        .and_then(
            |reference: u64, query: HistoryQuery, state: AppState| async move {
                if state.engine.device(reference).is_none() {
                    return respond(Err(ApiError::not_found(format!(
                        "device {reference} does not exist"
                    ))));
                }
                let limit = query.limit.unwrap_or(1000).clamp(1, MAX_HISTORY_POINTS);
                let since = query.since.unwrap_or(0);
                let engine = state.engine.clone();
                respond(
                    blocking(move || engine.device_history(reference, since, limit))
                        .await
                        .and_then(|read| {
                            read.map(|points| {
                                ok(&serde_json::json!({ "ref": reference, "points": points }))
                            })
                            .map_err(|e| ApiError::internal(e.to_string()))
                        }),
                )
            },
        );
    // DELETE /api/v1/devices/{ref}: deletes a device and its history.
    let devices_remove = api
        .and(warp::path!("devices" / u64))
        .and(warp::delete())
        .and(s())
        .map(
            |reference: u64, state: AppState| match state.engine.remove_device(reference) {
                Ok(device) => ok(&DeviceView::from(&device)),
                Err(crate::devices::StoreError::UnknownDevice(_)) => {
                    ApiError::not_found(format!("device {reference} does not exist"))
                        .into_response()
                }
                Err(error) => ApiError::internal(error.to_string()).into_response(),
            },
        );
    // PUT /api/v1/devices/{ref}  {value?, string?}
    let devices_set = api
        .and(warp::path!("devices" / u64))
        .and(warp::put().or(warp::post()).unify())
        .and(json_body())
        .and(s())
        .and_then(
            |reference: u64, request: SetRequest, state: AppState| async move {
                respond(
                    match state
                        .engine
                        .set_device(reference, request.value, request.string)
                        .await
                    {
                        Ok(device) => Ok(ok(&DeviceView::from(&device))),
                        Err(crate::devices::StoreError::UnknownDevice(r)) => {
                            Err(ApiError::not_found(format!("device {r} does not exist")))
                        }
                        Err(e) => Err(ApiError::internal(e.to_string())),
                    },
                )
            },
        );
    // GET /api/v1/globals
    let globals_list = api
        .and(warp::path("globals"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let globals: Vec<GlobalView> = state
                .engine
                .globals()
                .iter()
                .map(GlobalView::from)
                .collect();
            ok(&serde_json::json!({ "globals": globals }))
        });
    // PUT /api/v1/globals/{name}  {value?, string?}
    let globals_set = api
        .and(warp::path!("globals" / String))
        .and(warp::put().or(warp::post()).unify())
        .and(json_body())
        .and(s())
        .map(|name: String, request: SetRequest, state: AppState| {
            let name = decode(&name);
            match state
                .engine
                .set_global(&name, request.value, request.string)
            {
                Ok(global) => ok(&GlobalView::from(&global)),
                Err(e) => ApiError::bad_request(e.to_string()).into_response(),
            }
        });
    vec![
        devices_list.boxed(),
        devices_get.boxed(),
        devices_history.boxed(),
        devices_remove.boxed(),
        devices_set.boxed(),
        globals_list.boxed(),
        globals_set.boxed(),
    ]
}

/// Most history points one request returns.
const MAX_HISTORY_POINTS: usize = 10_000;

#[derive(serde::Deserialize)]
struct HistoryQuery {
    since: Option<i64>,
    limit: Option<usize>,
}
