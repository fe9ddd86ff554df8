//! The engine's door and its event bus: every adapter hears the same typed events, in order.

use bellhop::engine::bus::{Delivery, HubEvent};

use crate::support::{profile_text, start_stub, Workspace};

async fn next_event(subscription: &mut bellhop::engine::bus::Subscription) -> HubEvent {
    match tokio::time::timeout(std::time::Duration::from_secs(5), subscription.next()).await {
        Ok(Delivery::Event(event)) => event,
        other => panic!("expected an event, got {other:?}"),
    }
}

#[tokio::test]
async fn runs_device_and_global_changes_and_reloads_come_out_on_one_bus_in_order() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(
            &stub.url("/user"),
            "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'",
        ),
    );
    let source = bellhop::engine::ProfileSource::new(ws.profiles_dir(), None);
    let engine = std::sync::Arc::new(
        bellhop::engine::Engine::new(source.load(), Some(source), ws.hub())
            .unwrap_or_else(|e| panic!("{e}")),
    );
    let mut subscription = engine.subscribe();
    let record = engine
        .run("user", "")
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(record.ok, "{:?}", record.errors);
    // The device change comes before the run that made it finishes.
    let reference = match next_event(&mut subscription).await {
        HubEvent::DeviceChanged { change } => {
            assert_eq!(change.device.string, "ann@example.com");
            change.device.reference
        }
        other => panic!("{other:?}"),
    };
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::RunFinished { run } if run.profile == "user" && run.ok
    ));
    engine
        .set_global("mode", Some(2.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::GlobalChanged { global } if global.name == "mode" && global.value == 2.0
    ));
    // Setting it to what it is changes nothing and says nothing.
    engine
        .set_global("mode", Some(2.0), None)
        .unwrap_or_else(|e| panic!("{e}"));
    engine
        .set_device(reference, None, Some("manual".into()))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::DeviceChanged { change } if change.device.string == "manual"
    ));
    engine.reload();
    assert!(matches!(
        next_event(&mut subscription).await,
        HubEvent::ProfilesReloaded { profiles: 1, .. }
    ));
}

/// The live stream carries the bus to browsers at /api/v1/stream (and its old path).
#[tokio::test]
async fn the_live_stream_carries_the_bus() {
    let stub = start_stub().await;
    let ws = Workspace::new();
    ws.write_profile(
        "user",
        &profile_text(
            &stub.url("/user"),
            "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'",
        ),
    );
    let engine = ws.engine();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (address, _server) = bellhop::web::serve(
        bellhop::web::AppState::new(engine.clone()),
        "127.0.0.1:0".parse().unwrap_or_else(|e| panic!("{e}")),
        32,
        async {
            let _ = stopped.await;
        },
    )
    .await
    .unwrap_or_else(|e| panic!("{e}"));
    for path in ["/api/v1/stream", "/api/v1/events"] {
        let mut response = reqwest::Client::new()
            .get(format!("http://{address}{path}"))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(response.status(), 200);
        // Subscribed once the head arrived: what happens now is streamed.
        engine
            .run("user", "")
            .await
            .unwrap_or_else(|e| panic!("{e}"));
        let mut seen = String::new();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while !seen.contains("event:run") && std::time::Instant::now() < deadline {
            match tokio::time::timeout(std::time::Duration::from_secs(5), response.chunk()).await {
                Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
                _ => break,
            }
        }
        assert!(
            seen.contains("event:device") || path == "/api/v1/events",
            "{path}: {seen}"
        );
        assert!(
            seen.contains("event:run") && seen.contains("\"profile\":\"user\""),
            "{path}: {seen}"
        );
    }
    let _ = stop.send(());
}
