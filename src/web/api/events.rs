//! Routes of automation events: the list, one event, its runs, running it, its editor form and saving it, and its webhook.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /api/v1/events: the events, their triggers, next firing and last run.
    let events_list = api
        .and(warp::path("events"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(|state: AppState| {
            let automation = state.engine.automation();
            let set = automation.events();
            let events: Vec<EventView> = set
                .events
                .values()
                .map(|event| event_view(&state, event))
                .collect();
            ok(&serde_json::json!({
                "events": events,
                "time_zone": automation.zone().to_string(),
                "diagnostics": set.diagnostics,
            }))
        });
    // GET /api/v1/events/{name}
    let events_get = api
        .and(warp::path!("events" / String))
        .and(warp::get())
        .and(s())
        .map(|name: String, state: AppState| {
            let name = decode(&name);
            match state.engine.automation().events().get(&name) {
                Some(event) => ok(&event_view(&state, event)),
                None => ApiError::not_found(format!("no event named `{name}` is loaded"))
                    .into_response(),
            }
        });
    // GET /api/v1/events/{name}/runs?limit=
    let events_runs = api
        .and(warp::path!("events" / String / "runs"))
        .and(warp::get())
        .and(warp::query::<RunsQuery>())
        .and(s())
        .map(|name: String, query: RunsQuery, state: AppState| {
            let name = decode(&name);
            if state.engine.automation().events().get(&name).is_none() {
                return ApiError::not_found(format!("no event named `{name}` is loaded"))
                    .into_response();
            }
            let limit = query.limit.unwrap_or(50).min(1000);
            ok(&serde_json::json!({ "runs": state.engine.automation().history(&name, limit) }))
        });
    // POST /api/v1/events/{name}/run {input?}: runs it now and answers its record.
    let events_run = api
        .and(warp::path!("events" / String / "run"))
        .and(warp::post())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, request: FireRequest, state: AppState| async move {
                let name = decode(&name);
                respond(
                    match state
                        .engine
                        .fire(&name, "api", request.input.map(Into::into), 0)
                        .await
                    {
                        Ok(run) => Ok(ok(&*run)),
                        Err(error) => Err(ApiError::from(error)),
                    },
                )
            },
        );
    // GET /api/v1/events/{name}/form: the event's file as the editor shows it.
    let events_form = api
        .and(warp::path!("events" / String / "form"))
        .and(warp::get())
        .and(s())
        .and_then(|name: String, state: AppState| async move {
            let name = decode(&name);
            let engine = state.engine.clone();
            respond(match blocking(move || engine.event_form(&name)).await {
                Ok(Ok(form)) => Ok(ok(&serde_json::json!({ "form": form }))),
                Ok(Err(error)) => Err(ApiError::from_edit(error, "event")),
                Err(error) => Err(error),
            })
        });
    // PUT /api/v1/events/{name}: saves the editor's form into the event's file (created when
    // new), in place.
    let events_save = api
        .and(warp::path!("events" / String))
        .and(warp::put())
        .and(json_body())
        .and(s())
        .and_then(
            |name: String, form: crate::engine::forms::EventForm, state: AppState| async move {
                let name = decode(&name);
                let engine = state.engine.clone();
                let saved_name = form
                    .get("name")
                    .and_then(|n| n.as_str())
                    .unwrap_or(&name)
                    .trim()
                    .to_string();
                let result = blocking(move || engine.save_event(&name, &form)).await;
                respond(match result {
                    Ok(Ok(saved)) => Ok(ok(
                        &serde_json::json!({ "saved": saved_name, "outcome": saved }),
                    )),
                    Ok(Err(error)) => Err(ApiError::from_edit(error, "event")),
                    Err(error) => Err(error),
                })
            },
        );
    // GET|POST /hooks/events/{name}/{token}: an event's webhook. The query string (GET) or the
    // body (POST, text, 64 KiB at most) is the event's input. A wrong token runs nothing.
    let hook_input = warp::get()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(Ok)
        .or(warp::post()
            .and(warp::body::content_length_limit(64 * 1024))
            .and(warp::body::bytes())
            .map(|body: bytes::Bytes| String::from_utf8(body.to_vec()).map_err(|e| e.utf8_error())))
        .unify();
    let hooks = warp::path!("hooks" / "events" / String / String)
        .and(hook_input)
        .and(s())
        .map(
            |name: String,
             token: String,
             input: Result<String, std::str::Utf8Error>,
             state: AppState| {
                let name = decode(&name);
                let input = match input {
                    Ok(input) => input,
                    Err(error) => {
                        return ApiError::bad_request(format!(
                            "the body is not UTF-8 text (invalid byte at offset {}): nothing ran",
                            error.valid_up_to()
                        ))
                        .into_response()
                    }
                };
                if state.engine.webhook(&name, &token, input.into()) {
                    json(StatusCode::ACCEPTED, &serde_json::json!({ "fired": name }))
                } else {
                    ApiError::new(
                        StatusCode::UNAUTHORIZED,
                        "unauthorized",
                        "no webhook answers to this URL",
                    )
                    .into_response()
                }
            },
        );
    vec![
        events_list.boxed(),
        events_get.boxed(),
        events_runs.boxed(),
        events_run.boxed(),
        events_form.boxed(),
        events_save.boxed(),
        hooks.boxed(),
    ]
}

/// An event as the API shows it.
/// An event as the API shows it (typed and borrowed: a listing of thousands of events builds
/// no intermediate JSON tree).
#[derive(serde::Serialize)]
struct EventView<'a> {
    name: &'a str,
    description: &'a str,
    enabled: bool,
    file: String,
    triggers: Vec<String>,
    conditions: Vec<&'a str>,
    actions: usize,
    webhook_url: Option<String>,
    next_at: Option<String>,
    last_run: Option<std::sync::Arc<crate::engine::automation::EventRun>>,
}

fn event_view<'a>(state: &AppState, event: &'a crate::event::Event) -> EventView<'a> {
    let automation = state.engine.automation();
    EventView {
        name: &event.name,
        description: &event.description,
        enabled: event.enabled,
        file: event.file.display().to_string(),
        triggers: event.triggers.iter().map(describe_trigger).collect(),
        conditions: event.conditions.iter().map(|c| c.source()).collect(),
        actions: event.actions.len(),
        webhook_url: state.engine.webhook_url(&event.name),
        next_at: automation
            .next_firing(event)
            .map(|at| at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        last_run: automation.history(&event.name, 1).into_iter().next(),
    }
}

fn describe_trigger(trigger: &crate::event::Trigger) -> String {
    use crate::event::Trigger;
    match trigger {
        Trigger::Schedule(schedule) => schedule.describe(),
        Trigger::Startup => "startup".into(),
        Trigger::Webhook => "webhook".into(),
        Trigger::Input { profile, matcher } => {
            format!("input of `{profile}`: {}", matcher.describe())
        }
        Trigger::Device(device) => format!("device {:?} ({:?})", device.device, device.changes),
        Trigger::Global { name } => format!("global `{name}`"),
        Trigger::Error(error) => format!(
            "error of {}{}",
            error.profile.as_deref().unwrap_or("any profile"),
            error.class.map(|c| format!(" ({c:?})")).unwrap_or_default()
        ),
    }
}
