//! The live stream: what happens in the hub, as server-sent events.

use super::*;

pub(in crate::web) fn routes(state: &AppState) -> Vec<BoxedFilter<(Response,)>> {
    let api = warp::path("api").and(warp::path("v1"));
    let s = || with_state(state.clone());
    // GET /api/v1/stream: what happens in the hub, as server-sent events.
    let live_views = state.live_views.clone();
    let stream = api
        .and(warp::path("stream"))
        .and(warp::path::end())
        .and(warp::get())
        .and(s())
        .map(move |state: AppState| {
            // Live views are bounded so they can never take every connection the API needs.
            let Ok(permit) = live_views.clone().try_acquire_owned() else {
                return ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_live_views",
                    "too many live views are open: close one and reload",
                )
                .into_response();
            };
            let listening = (state.engine.subscribe(), permit, state.engine.clone());
            let events = futures_util::stream::unfold(
                listening,
                |(mut subscription, permit, engine)| async move {
                    let event = live_event(subscription.next().await, &engine)?;
                    Some((Ok::<_, Infallible>(event), (subscription, permit, engine)))
                },
            );
            warp::sse::reply(warp::sse::keep_alive().stream(events)).into_response()
        });
    vec![stream.boxed()]
}

/// One hub event as a server-sent event: its kind as the event name, its view as the data.
/// `None` when the bus is gone (the stream ends).
fn live_event(delivery: Delivery, engine: &crate::engine::Engine) -> Option<warp::sse::Event> {
    let event = warp::sse::Event::default();
    let built = match delivery {
        Delivery::Closed => return None,
        Delivery::Resync { missed } => event.event("resync").json_data(Resync { missed }),
        Delivery::Event(hub_event) => {
            let event = event.event(hub_event.name());
            match &hub_event {
                HubEvent::DeviceChanged { change } => {
                    event.json_data(DeviceView::described(&change.device, &engine.profiles()))
                }
                HubEvent::DeviceRemoved { device } => event.json_data(DeviceView::from(&**device)),
                HubEvent::GlobalChanged { global } => event.json_data(GlobalView::from(&**global)),
                HubEvent::RunFinished { run } => event.json_data(RunFinishedView {
                    profile: &run.profile,
                    ok: run.ok,
                    skipped: run.skipped,
                    started_at: &run.started_at,
                    duration_ms: run.duration_ms,
                }),
                HubEvent::ProfilesReloaded { profiles, problems } => {
                    event.json_data(ProfilesReloaded {
                        profiles: *profiles,
                        problems: *problems,
                    })
                }
                HubEvent::AuthorizationChanged { profile } => {
                    event.json_data(AuthorizationChanged { profile })
                }
                HubEvent::EventFinished { run } => event.json_data(EventFinishedView {
                    event: &run.event,
                    trigger: &run.trigger,
                    outcome: run.outcome.as_str(),
                    started_at: &run.started_at,
                }),
            }
        }
    };
    Some(built.unwrap_or_else(|_| warp::sse::Event::default().comment("unserializable")))
}

/// The live view missed events (it fell behind): it reloads what it shows.
#[derive(serde::Serialize)]
struct Resync {
    missed: u64,
}

#[derive(serde::Serialize)]
struct ProfilesReloaded {
    profiles: usize,
    problems: usize,
}

#[derive(serde::Serialize)]
struct AuthorizationChanged<'a> {
    profile: &'a str,
}
