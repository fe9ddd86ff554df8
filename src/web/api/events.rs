//! Routes of automation events: the list, one event, its runs, running it, its editor form and saving it, and its webhook.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let s = || with_state(state.clone());
    // The webhook's input: the query string (GET) or the body (POST, text, 64 KiB at most).
    let hook_input = warp::get()
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .map(Ok)
        .or(warp::post()
            .and(warp::body::content_length_limit(64 * 1024))
            .and(warp::body::bytes())
            .map(|body: bytes::Bytes| String::from_utf8(body.to_vec()).map_err(|e| e.utf8_error())))
        .unify();
    vec![
        // GET /api/v1/events?limit=&after=: the events by name, a page at a time, with their
        // triggers, next firing and last run.
        at("events")
            .and(warp::get())
            .and(warp::query::<PageQuery>())
            .and(s())
            .map(list)
            .boxed(),
        // GET /api/v1/events/{name}
        api()
            .and(warp::path!("events" / String))
            .and(warp::get())
            .and(s())
            .map(one)
            .map(answer)
            .boxed(),
        // GET /api/v1/events/{name}/runs?limit=
        api()
            .and(warp::path!("events" / String / "runs"))
            .and(warp::get())
            .and(warp::query::<RunsQuery>())
            .and(s())
            .map(runs)
            .map(answer)
            .boxed(),
        // POST /api/v1/events/{name}/run {input?}: runs it now and answers its record.
        api()
            .and(warp::path!("events" / String / "run"))
            .and(warp::post())
            .and(json_body())
            .and(s())
            .then(run)
            .map(answer)
            .boxed(),
        // GET /api/v1/events/{name}/form: the event's file as the editor shows it.
        api()
            .and(warp::path!("events" / String / "form"))
            .and(warp::get())
            .and(s())
            .then(form)
            .map(answer)
            .boxed(),
        // PUT /api/v1/events/{name}: saves the editor's form into the event's file (created
        // when new), in place.
        api()
            .and(warp::path!("events" / String))
            .and(warp::put())
            .and(json_body())
            .and(s())
            .then(save)
            .map(answer)
            .boxed(),
        // GET|POST /hooks/events/{name}/{token}: an event's webhook. A wrong token runs nothing.
        warp::path!("hooks" / "events" / String / String)
            .and(hook_input)
            .and(s())
            .map(webhook)
            .map(answer)
            .boxed(),
    ]
}

/// Events in a page unless the caller asks for fewer (or up to [`MAX_EVENTS_PAGE`]).
const DEFAULT_EVENTS_PAGE: usize = 200;
const MAX_EVENTS_PAGE: usize = 1000;

/// `?limit=` (events in a page) and `?after=` (the cursor: the last name of the page before).
#[derive(serde::Deserialize)]
struct PageQuery {
    limit: Option<usize>,
    after: Option<String>,
}

fn list(query: PageQuery, state: AppState) -> Response {
    use std::ops::Bound;
    let automation = state.engine.automation();
    let set = automation.events();
    let limit = query
        .limit
        .unwrap_or(DEFAULT_EVENTS_PAGE)
        .clamp(1, MAX_EVENTS_PAGE);
    let start = match &query.after {
        Some(after) => Bound::Excluded(after.clone()),
        None => Bound::Unbounded,
    };
    let mut page = set.events.range((start, Bound::Unbounded));
    let events: Vec<_> = page
        .by_ref()
        .take(limit)
        .map(|(_, event)| event_view(&state, event))
        .collect();
    let next = match page.next() {
        Some(_) => events.last().map(|view| view.name.to_string()),
        None => None,
    };
    ok(&EventList {
        events,
        next,
        time_zone: automation.zone().to_string(),
        diagnostics: &set.diagnostics,
    })
}

fn one(name: String, state: AppState) -> Answer {
    let name = decode(&name);
    let automation = state.engine.automation();
    let events = automation.events();
    let event = events
        .get(&name)
        .ok_or_else(|| ApiError::unknown_event(&name))?;
    Ok(ok(&event_view(&state, event)))
}

fn runs(name: String, query: RunsQuery, state: AppState) -> Answer {
    let name = decode(&name);
    let automation = state.engine.automation();
    if automation.events().get(&name).is_none() {
        return Err(ApiError::unknown_event(&name));
    }
    let limit = query.limit.unwrap_or(50).min(1000);
    let runs = automation.history(&name, limit);
    Ok(ok(&RunList {
        runs: runs.iter().map(|run| EventRunView::from(&**run)).collect(),
    }))
}

async fn run(name: String, request: FireRequest, state: AppState) -> Answer {
    let name = decode(&name);
    let run = state
        .engine
        .fire(&name, "api", request.input.map(Into::into), 0)
        .await?;
    Ok(ok(&EventRunView::from(&*run)))
}

async fn form(name: String, state: AppState) -> Answer {
    let name = decode(&name);
    let engine = state.engine.clone();
    let form = blocking(move || engine.event_form(&name))
        .await?
        .map_err(|error| ApiError::from_edit(error, "event"))?;
    Ok(ok(&EventFormView { form }))
}

async fn save(name: String, form: crate::engine::forms::EventForm, state: AppState) -> Answer {
    let name = decode(&name);
    let engine = state.engine.clone();
    let saved_name = form
        .get("name")
        .and_then(|n| n.as_str())
        .unwrap_or(&name)
        .trim()
        .to_string();
    let outcome = blocking(move || engine.save_event(&name, &form))
        .await?
        .map_err(|error| ApiError::from_edit(error, "event"))?;
    Ok(ok(&SavedView {
        saved: &saved_name,
        outcome,
    }))
}

fn webhook(
    name: String,
    token: String,
    input: Result<String, std::str::Utf8Error>,
    state: AppState,
) -> Answer {
    let name = decode(&name);
    let input = input.map_err(|error| {
        ApiError::bad_request(format!(
            "the body is not UTF-8 text (invalid byte at offset {}): nothing ran",
            error.valid_up_to()
        ))
    })?;
    if !state.engine.webhook(&name, &token, input.into()) {
        return Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "no webhook answers to this URL",
        ));
    }
    Ok(json(StatusCode::ACCEPTED, &Fired { fired: name }))
}

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
    last_run: Option<EventLastRun>,
}

/// An event's newest run, kept while its view is written.
struct EventLastRun(std::sync::Arc<crate::engine::record::EventRun>);

impl serde::Serialize for EventLastRun {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        EventRunView::from(&*self.0).serialize(serializer)
    }
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
        last_run: automation
            .history(&event.name, 1)
            .into_iter()
            .next()
            .map(EventLastRun),
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
