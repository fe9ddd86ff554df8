//! The hub's event bus: one bounded broadcast channel of past-tense, typed events — what
//! happened in the hub (a device or global changed, a run finished, the profiles were reloaded,
//! an authorization changed). Every adapter that wants to know (the live stream, the UI, the
//! event runner, the MQTT bridge) subscribes here; none reaches into the device hub
//! or the authorizer. A subscriber that falls behind is told to resync (reload what it shows)
//! instead of silently missing changes.

use std::sync::Arc;

use serde::Serialize;
use tokio::sync::broadcast;

use super::RunRecord;
use crate::devices::{DeviceChange, Global};

/// How many events a subscriber may fall behind before it must resync.
pub const CAPACITY: usize = 4096;

/// Something that happened in the hub.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum HubEvent {
    // Payloads behind `Arc`: every subscriber gets a clone of each event, and the bus holds
    // `CAPACITY` slots the size of the largest variant.
    DeviceChanged {
        change: Arc<DeviceChange>,
    },
    /// A device was deleted; its last state.
    DeviceRemoved {
        device: Arc<crate::devices::Device>,
    },
    GlobalChanged {
        global: Arc<Global>,
    },
    RunFinished {
        run: Arc<RunRecord>,
    },
    ProfilesReloaded {
        profiles: usize,
        problems: usize,
    },
    AuthorizationChanged {
        profile: String,
    },
    EventFinished {
        run: Arc<super::automation::EventRun>,
    },
}

impl HubEvent {
    /// A short name for the event's kind (the server-sent event's name).
    pub fn name(&self) -> &'static str {
        match self {
            HubEvent::DeviceChanged { .. } => "device",
            HubEvent::DeviceRemoved { .. } => "device_removed",
            HubEvent::GlobalChanged { .. } => "global",
            HubEvent::RunFinished { .. } => "run",
            HubEvent::ProfilesReloaded { .. } => "profiles",
            HubEvent::AuthorizationChanged { .. } => "authorization",
            HubEvent::EventFinished { .. } => "event",
        }
    }
}

/// What a subscriber receives next.
#[derive(Debug, Clone)]
pub enum Delivery {
    Event(HubEvent),
    /// The subscriber fell behind and `missed` events are gone: reload the state it shows.
    Resync {
        missed: u64,
    },
    /// The bus is gone (the engine stopped).
    Closed,
}

/// The bus itself: publishing never blocks and never fails (no subscriber is fine).
pub struct EventBus {
    sender: broadcast::Sender<HubEvent>,
}

impl Default for EventBus {
    fn default() -> EventBus {
        EventBus::with_capacity(CAPACITY)
    }
}

impl EventBus {
    pub fn with_capacity(capacity: usize) -> EventBus {
        let (sender, _) = broadcast::channel(capacity.max(1));
        EventBus { sender }
    }

    pub fn publish(&self, event: HubEvent) {
        let _ = self.sender.send(event);
    }

    pub fn subscribe(&self) -> Subscription {
        Subscription {
            receiver: self.sender.subscribe(),
        }
    }
}

/// One subscriber's view of the bus.
pub struct Subscription {
    receiver: broadcast::Receiver<HubEvent>,
}

impl Subscription {
    pub async fn next(&mut self) -> Delivery {
        match self.receiver.recv().await {
            Ok(event) => Delivery::Event(event),
            Err(broadcast::error::RecvError::Lagged(missed)) => Delivery::Resync { missed },
            Err(broadcast::error::RecvError::Closed) => Delivery::Closed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_subscriber_that_falls_behind_is_told_to_resync() {
        let bus = EventBus::with_capacity(4);
        let mut slow = bus.subscribe();
        for n in 0..10 {
            bus.publish(HubEvent::ProfilesReloaded {
                profiles: n,
                problems: 0,
            });
        }
        assert!(matches!(slow.next().await, Delivery::Resync { missed: 6 }));
        // Then the newest events, in order.
        for n in 6..10 {
            assert!(matches!(
                slow.next().await,
                Delivery::Event(HubEvent::ProfilesReloaded { profiles, .. }) if profiles == n
            ));
        }
        drop(bus);
        assert!(matches!(slow.next().await, Delivery::Closed));
    }
}
