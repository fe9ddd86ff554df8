//! The event runner: fires loaded events from their triggers — schedules, startup, what the bus
//! says (device and global changes), finished runs (their input and their errors, dispatched
//! from the run's own task as it is recorded: no wait for the bus, none lost to its lag) and
//! API calls — checks their conditions and runs their actions in order through the engine's
//! own door, recording every run. Bounded: a retrigger policy per event (skip, a short queue, a
//! few in parallel), a rate limit per event and a depth limit for events that run events, so an
//! event that re-triggers itself is reported, never an endless loop.

use crate::clock::Clock;
use crate::sync::{Locked, ReadWriteLocked};
use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use super::bus::{Delivery, HubEvent};
pub use super::record::{EventOutcome, EventRun, StepRecord};
use super::{Engine, EngineError, HubEnvironment};
use crate::devices::Global;
use crate::event::index::TriggerIndex;
use crate::event::{Action, Event, EventSet, OnError, Retrigger, Trigger, Zone};
use crate::expr::{Document, Expression, Scope, Value};

/// Event runs kept per event, at most…
const HISTORY_KEEP: usize = 50;
/// …and for all events together at most about this many (each event keeps at least one).
const HISTORY_BUDGET: usize = 10_000;
/// Runs waiting behind a running one (`retrigger = "queue"`).
const QUEUE_LIMIT: usize = 10;
/// Runs at once (`retrigger = "parallel"`).
const PARALLEL_LIMIT: usize = 4;
/// How deep events may run events.
const DEPTH_LIMIT: u8 = 8;
/// Scheduled firings started and not yet finished (or a second old) at once: a burst of
/// schedules due together starts at the pace runs finish, instead of all at once.
const SCHEDULED_AT_ONCE: usize = 128;
/// Inputs up to this size are matched on the runner's task; larger ones on the blocking pool.
const INLINE_MATCHING_BYTES: usize = 4 * 1024;
/// How often falling behind the bus is logged (with the count missed meanwhile).
const LAG_REPORT_EVERY: Duration = Duration::from_secs(10);

/// An event a trigger fired, with the trigger's kind and input.
#[derive(Debug, Clone)]
pub struct Firing {
    pub event: Arc<str>,
    pub trigger: &'static str,
    pub input: Arc<str>,
}

impl Firing {
    fn new(event: &Arc<str>, trigger: &'static str, input: Arc<str>) -> Firing {
        Firing {
            event: event.clone(),
            trigger,
            input,
        }
    }
}

/// Input matchers to evaluate against what a profile received: those of `profile` in the
/// index `loaded` holds (shared, not copied: an expression matcher is a tree).
struct PendingInputs {
    input: Arc<str>,
    loaded: Arc<Loaded>,
    run: Arc<super::RunRecord>,
}

/// Per-event bookkeeping.
struct EventState {
    places: Arc<tokio::sync::Semaphore>,
    waiting: usize,
    /// When the last runs were admitted (the clock's ms), for `max_per_second`.
    recent: VecDeque<i64>,
    history: VecDeque<Arc<EventRun>>,
}

impl EventState {
    fn new(retrigger: Retrigger) -> EventState {
        let places = match retrigger {
            Retrigger::Parallel => PARALLEL_LIMIT,
            Retrigger::Skip | Retrigger::Queue => 1,
        };
        EventState {
            places: Arc::new(tokio::sync::Semaphore::new(places)),
            waiting: 0,
            recent: VecDeque::new(),
            history: VecDeque::new(),
        }
    }
}

/// A loaded event set and its triggers, indexed.
struct Loaded {
    set: Arc<EventSet>,
    index: TriggerIndex,
}

impl Loaded {
    fn new(set: EventSet) -> Arc<Loaded> {
        let index = TriggerIndex::build(&set);
        Arc::new(Loaded {
            set: Arc::new(set),
            index,
        })
    }
}

/// The loaded events and what the runner keeps of them.
pub struct Automation {
    loaded: RwLock<Arc<Loaded>>,
    zone: Zone,
    states: Mutex<HashMap<String, EventState>>,
    /// Wakes the scheduler when the events change.
    rescheduled: Arc<tokio::sync::Notify>,
    /// The secret token of each event with a webhook trigger.
    webhook_tokens: RwLock<HashMap<String, crate::secret::Secret>>,
    /// Places for scheduled firings in progress.
    scheduled_places: Arc<tokio::sync::Semaphore>,
    /// What schedules, lateness, rate limits and `wait` actions read the time from.
    clock: Clock,
    /// Whether the runner was started: until then nothing fires on its own.
    started: std::sync::atomic::AtomicBool,
}

impl Automation {
    pub fn new(events: EventSet, zone: Zone, clock: Clock) -> Automation {
        Automation {
            clock,
            loaded: RwLock::new(Loaded::new(events)),
            zone,
            states: Mutex::new(HashMap::new()),
            rescheduled: Arc::new(tokio::sync::Notify::new()),
            webhook_tokens: RwLock::new(HashMap::new()),
            scheduled_places: Arc::new(tokio::sync::Semaphore::new(SCHEDULED_AT_ONCE)),
            started: std::sync::atomic::AtomicBool::new(false),
        }
    }

    pub fn events(&self) -> Arc<EventSet> {
        self.loaded().set.clone()
    }

    /// The runner's clock.
    pub(super) fn clock(&self) -> Clock {
        self.clock.clone()
    }

    pub(super) fn set_clock(&mut self, clock: Clock) {
        self.clock = clock;
    }

    /// The time on the runner's clock.
    fn now(&self) -> chrono::DateTime<chrono::Utc> {
        chrono::DateTime::from_timestamp_millis(self.clock.now_ms()).unwrap_or_default()
    }

    fn loaded(&self) -> Arc<Loaded> {
        self.loaded.read_locked().clone()
    }

    pub fn zone(&self) -> Zone {
        self.zone
    }

    fn clone_notify(&self) -> Arc<tokio::sync::Notify> {
        self.rescheduled.clone()
    }

    pub(super) fn replace(&self, events: EventSet) {
        *self.loaded.write_locked() = Loaded::new(events);
        self.rescheduled.notify_one();
    }

    /// The newest runs of an event, newest first.
    pub fn history(&self, event: &str, limit: usize) -> Vec<Arc<EventRun>> {
        self.states
            .locked()
            .get(event)
            .map(|s| s.history.iter().rev().take(limit).cloned().collect())
            .unwrap_or_default()
    }

    /// When an event's schedules fire next.
    pub fn next_firing(&self, event: &Event) -> Option<chrono::DateTime<chrono::Utc>> {
        let now = self.now();
        event
            .triggers
            .iter()
            .filter_map(|t| match t {
                Trigger::Schedule(schedule) => schedule.next_after(now, self.zone),
                _ => None,
            })
            .min()
    }

    /// Works on an event's bookkeeping (made on first use, for its retrigger policy).
    fn with_state<R>(
        &self,
        event: &str,
        retrigger: Retrigger,
        work: impl FnOnce(&mut EventState) -> R,
    ) -> R {
        let mut states = self.states.locked();
        work(
            states
                .entry(event.to_string())
                .or_insert_with(|| EventState::new(retrigger)),
        )
    }

    /// How many runs each event keeps: 50, or fewer when there are so many events that the
    /// budget for all of them would be exceeded (at least one each).
    fn keep_per_event(events: &EventSet) -> usize {
        (HISTORY_BUDGET / events.events.len().max(1)).clamp(1, HISTORY_KEEP)
    }

    /// The run history as the event journal kept it (after a restart), within the same bounds.
    pub(super) fn restore_history(&self, hub: &crate::devices::DeviceHub) {
        let events = self.events();
        let keep = Self::keep_per_event(&events);
        for (name, event) in &events.events {
            let records = match hub.read_journal(crate::devices::Book::EventRuns, Some(name), keep)
            {
                Ok(records) => records,
                Err(error) => {
                    tracing::warn!(event = %name, error = %error, "event run history not restored");
                    continue;
                }
            };
            if records.is_empty() {
                continue;
            }
            // The journal reads newest first; the history keeps oldest first.
            let runs: VecDeque<Arc<EventRun>> = records
                .iter()
                .rev()
                .filter_map(|text| serde_json::from_str::<EventRun>(text).ok())
                .map(Arc::new)
                .collect();
            self.with_state(name, event.retrigger, |state| state.history = runs);
        }
    }

    fn remember(&self, hub: &crate::devices::DeviceHub, run: Arc<EventRun>) {
        let events = self.events();
        let retrigger = events
            .get(&run.event)
            .map_or(Retrigger::Skip, |e| e.retrigger);
        let keep = Self::keep_per_event(&events);
        let journaled = run.clone();
        let render = Box::new(move || serde_json::to_string(&*journaled).ok());
        if let Err(error) = hub.journal(crate::devices::Book::EventRuns, &run.event, render, keep) {
            tracing::warn!(event = %run.event, error = %error, "event run not journaled");
        }
        self.with_state(&run.event.clone(), retrigger, |state| {
            state.history.push_back(run);
            while state.history.len() > keep {
                state.history.pop_front();
            }
        });
    }
}

/// Events that name a device by a reference no device has are not loaded: a load error names
/// the file and key (references are handed out by the hub, so such a device cannot appear).
pub(super) fn refuse_unknown_devices(events: &mut EventSet, hub: &crate::devices::DeviceHub) {
    let mut refused = Vec::new();
    for (name, event) in &events.events {
        let triggers = event
            .triggers
            .iter()
            .enumerate()
            .filter_map(|(i, t)| match t {
                Trigger::Device(crate::event::DeviceTrigger {
                    device: crate::event::DeviceSelector::Reference(reference),
                    ..
                }) => Some((format!("trigger[{i}].device"), *reference)),
                _ => None,
            });
        let actions = event
            .actions
            .iter()
            .enumerate()
            .filter_map(|(i, a)| match a {
                Action::SetDevice { reference, .. } => {
                    Some((format!("action[{i}].set_device"), *reference))
                }
                _ => None,
            });
        let unknown: Vec<(String, u64)> = triggers
            .chain(actions)
            .filter(|(_, reference)| hub.get(*reference).is_none())
            .collect();
        if unknown.is_empty() {
            continue;
        }
        let text = std::fs::read_to_string(&event.file).unwrap_or_default();
        for (key, reference) in unknown {
            let line = crate::profile::diagnostic::line_of_key(&text, &key);
            events.diagnostics.push(
                crate::profile::Diagnostic::error(
                    &event.file,
                    key,
                    format!("there is no device {reference}: the event is not loaded"),
                )
                .at_line(line),
            );
        }
        refused.push(name.clone());
    }
    for name in refused {
        events.events.remove(&name);
    }
}

/// What a set action writes: the value expression as a number, the string one as text.
fn new_value_and_string(
    evaluate: &dyn Fn(&Expression) -> Result<Value, crate::expr::EvalError>,
    value: &Option<Expression>,
    string: &Option<Expression>,
) -> Result<(Option<f64>, Option<String>), crate::expr::EvalError> {
    let value = value.as_ref().map(evaluate).transpose()?;
    let string = string.as_ref().map(evaluate).transpose()?;
    Ok((
        value.as_ref().and_then(Value::as_number),
        string.map(|s| s.to_text()),
    ))
}

fn now_text() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn skipped(event: &str, trigger: &str, reason: String) -> Arc<EventRun> {
    Arc::new(EventRun {
        event: event.to_string(),
        trigger: trigger.to_string(),
        started_at: now_text(),
        late_ms: None,
        duration_ms: 0,
        outcome: EventOutcome::Skipped,
        reason: Some(reason),
        steps: Vec::new(),
    })
}

fn value_text(value: f64, string: &str) -> Arc<str> {
    if string.is_empty() {
        crate::expr::value::format_number(value).into()
    } else {
        string.into()
    }
}

impl Engine {
    /// The automation's events and records.
    pub fn automation(&self) -> &Automation {
        &self.automation
    }

    /// Starts the runner: startup triggers fire now; schedules and the bus are followed until
    /// the engine is dropped.
    pub fn start_automation(self: &Arc<Self>) -> Vec<tokio::task::JoinHandle<()>> {
        self.automation
            .started
            .store(true, std::sync::atomic::Ordering::Release);
        for event in self.automation.events().events.values() {
            if event.triggers.iter().any(|t| matches!(t, Trigger::Startup)) {
                self.fire_detached(&event.name, "startup", None);
            }
        }
        let listener = {
            let engine = Arc::downgrade(self);
            let mut subscription = self.subscribe();
            tokio::spawn(async move {
                let (mut said_at, mut missed_since_said) = (None, 0);
                loop {
                    let delivery = subscription.next().await;
                    let Some(engine) = engine.upgrade() else {
                        return;
                    };
                    match delivery {
                        // Dispatched by the run itself (`Engine::run_finished`).
                        Delivery::Event(HubEvent::RunFinished { .. }) => {}
                        Delivery::Event(event) => engine.dispatch(&event),
                        Delivery::Resync { missed } => {
                            missed_since_said += missed;
                            if said_at.is_none_or(|at: Instant| at.elapsed() >= LAG_REPORT_EVERY) {
                                tracing::warn!(
                                    missed = missed_since_said,
                                    "the event runner fell behind the bus: triggers of these hub events were missed"
                                );
                                said_at = Some(Instant::now());
                                missed_since_said = 0;
                            }
                        }
                        Delivery::Closed => return,
                    }
                }
            })
        };
        let scheduler = {
            let engine = Arc::downgrade(self);
            tokio::spawn(async move { scheduler(engine).await })
        };
        vec![listener, scheduler]
    }

    /// Fires the events a finished run triggers (its profile's input and error triggers), once
    /// the runner is started. Called by the run's own task as the run is recorded: an event
    /// starts without waiting for the runner's task to hear of it on the bus, and none is
    /// missed when the runner falls behind the bus.
    pub(super) fn run_finished(self: &Arc<Self>, finished: &HubEvent) {
        if self
            .automation
            .started
            .load(std::sync::atomic::Ordering::Acquire)
        {
            self.dispatch(finished);
        }
    }

    /// Fires the events whose triggers wait for what happened. Input matchers (which may read a
    /// large input) are evaluated on the blocking pool.
    fn dispatch(self: &Arc<Self>, happened: &HubEvent) {
        let (firings, inputs) = self.triggered(happened);
        for firing in firings {
            self.fire_detached(&firing.event, firing.trigger, Some(firing.input));
        }
        let Some(pending) = inputs else {
            return;
        };
        // A small input is matched here; a large one (an expression may run a JSONPath over
        // megabytes) on the blocking pool, as a large response is mapped.
        if pending.input.len() <= INLINE_MATCHING_BYTES {
            for firing in self.match_inputs(pending) {
                self.fire_detached(&firing.event, firing.trigger, Some(firing.input));
            }
            return;
        }
        let engine = self.clone();
        tokio::task::spawn_blocking(move || {
            for firing in engine.match_inputs(pending) {
                engine.fire_detached(&firing.event, firing.trigger, Some(firing.input));
            }
        });
    }

    /// Every event a hub event fires, input matchers included (evaluated here, on the caller's
    /// thread). What the runner does for each bus event, for benchmarks and tests.
    pub fn match_triggers(&self, happened: &HubEvent) -> Vec<Firing> {
        let (mut firings, inputs) = self.triggered(happened);
        if let Some(pending) = inputs {
            firings.extend(self.match_inputs(pending));
        }
        firings
    }

    /// The firings a hub event makes through the trigger index, and the input matchers still
    /// to evaluate against a profile's input.
    fn triggered(&self, happened: &HubEvent) -> (Vec<Firing>, Option<PendingInputs>) {
        let loaded = self.automation.loaded();
        let index = &loaded.index;
        let mut firings = Vec::new();
        match happened {
            HubEvent::DeviceChanged { change } => {
                let device = &change.device;
                // What the hub held before (the stored state after a restart), so a crossing
                // is judged against the last value kept, not against nothing.
                let (value_changed, string_changed, previous) = match &change.previous {
                    Some((value, string)) => (
                        *value != device.value,
                        *string != device.string,
                        Some(*value),
                    ),
                    None => (true, true, None),
                };
                let key = &device.key;
                let mut input = None;
                for waiting in index.device(
                    device.reference,
                    &key.profile,
                    &key.root,
                    key.feature.as_deref(),
                ) {
                    if waiting
                        .trigger
                        .fires(value_changed, string_changed, device.value, previous)
                    {
                        let input =
                            input.get_or_insert_with(|| value_text(device.value, &device.string));
                        firings.push(Firing::new(&waiting.event, "device", input.clone()));
                    }
                }
            }
            HubEvent::GlobalChanged { global } => {
                let Global {
                    name,
                    value,
                    string,
                    ..
                } = &**global;
                let waiting = index.global(name);
                if !waiting.is_empty() {
                    let input = value_text(*value, string);
                    for event in waiting {
                        firings.push(Firing::new(event, "global", input.clone()));
                    }
                }
            }
            HubEvent::RunFinished { run } if !run.ok => {
                let mut fired = std::collections::HashSet::new();
                for waiting in index.errors(&run.profile) {
                    let error = run
                        .errors
                        .iter()
                        .find(|e| waiting.trigger.is_none() || e.class == waiting.trigger);
                    if let Some(error) = error.filter(|_| fired.insert(waiting.event.clone())) {
                        firings.push(Firing::new(
                            &waiting.event,
                            "error",
                            error.message.as_str().into(),
                        ));
                    }
                }
            }
            HubEvent::RunFinished { run } => {
                if let (false, Some(input)) = (
                    index.input(&run.profile).is_empty(),
                    self.last_response(&run.profile),
                ) {
                    let pending = PendingInputs {
                        input,
                        loaded: loaded.clone(),
                        run: run.clone(),
                    };
                    return (firings, Some(pending));
                }
            }
            HubEvent::DeviceRemoved { .. }
            | HubEvent::ProfilesReloaded { .. }
            | HubEvent::AuthorizationChanged { .. }
            | HubEvent::EventFinished { .. } => {}
        }
        (firings, None)
    }

    /// Evaluates input matchers (an expression may run a JSONPath over megabytes): one firing
    /// per event at most.
    fn match_inputs(&self, pending: PendingInputs) -> Vec<Firing> {
        let environment = HubEnvironment::new(&self.hub);
        let mut fired = std::collections::HashSet::new();
        let mut firings = Vec::new();
        for waiting in pending.loaded.index.input(&pending.run.profile) {
            let event = &waiting.event;
            if fired.contains(event) {
                continue;
            }
            match waiting.trigger.matches(&pending.input, &environment) {
                Ok(true) => {
                    firings.push(Firing::new(event, "input", pending.input.clone()));
                    fired.insert(event.clone());
                }
                Ok(false) => {}
                Err(error) => {
                    tracing::warn!(event = %event, error = %error, "an input matcher failed")
                }
            }
        }
        firings
    }

    fn fire_detached(self: &Arc<Self>, name: &str, trigger: &str, input: Option<Arc<str>>) {
        let (engine, name, trigger) = (self.clone(), name.to_string(), trigger.to_string());
        tokio::spawn(async move {
            let _ = engine.fire_due(&name, &trigger, input, 0, None).await;
        });
    }

    /// Fires a schedule's event on a task of its own, holding `place` until the run finished or
    /// a second passed (so long waits in an event never hold up the other schedules).
    fn fire_scheduled(
        self: &Arc<Self>,
        name: &str,
        due: chrono::DateTime<chrono::Utc>,
        place: tokio::sync::OwnedSemaphorePermit,
    ) {
        let (engine, name) = (self.clone(), name.to_string());
        tokio::spawn(async move {
            let run = Box::pin(engine.fire_due(&name, "schedule", None, 0, Some(due)));
            let mut run = std::pin::pin!(run);
            tokio::select! {
                _ = &mut run => return,
                () = tokio::time::sleep(Duration::from_secs(1)) => drop(place),
            }
            let _ = run.await;
        });
    }

    /// Runs an event now (an API call, a trigger): its record, once it finished or was skipped.
    pub async fn fire(
        self: &Arc<Self>,
        name: &str,
        trigger: &str,
        input: Option<Arc<str>>,
        depth: u8,
    ) -> Result<Arc<EventRun>, EngineError> {
        self.fire_due(name, trigger, input, depth, None).await
    }

    async fn fire_due(
        self: &Arc<Self>,
        name: &str,
        trigger: &str,
        input: Option<Arc<str>>,
        depth: u8,
        due: Option<chrono::DateTime<chrono::Utc>>,
    ) -> Result<Arc<EventRun>, EngineError> {
        let event = self
            .automation
            .events()
            .get(name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownEvent(name.to_string()))?;
        let record = |run: Arc<EventRun>| {
            self.automation.remember(&self.hub, run.clone());
            self.bus
                .publish(HubEvent::EventFinished { run: run.clone() });
            run
        };
        if !event.enabled {
            return Ok(record(skipped(
                name,
                trigger,
                "the event is disabled".into(),
            )));
        }
        if depth > DEPTH_LIMIT {
            return Ok(record(skipped(
                name,
                trigger,
                format!("events ran events more than {DEPTH_LIMIT} deep: stopped"),
            )));
        }
        // Rate limit and retrigger policy.
        let admitted = self.automation.with_state(name, event.retrigger, |state| {
            let now = self.automation.clock.now_ms();
            while state.recent.front().is_some_and(|t| now - *t > 1000) {
                state.recent.pop_front();
            }
            if state.recent.len() >= event.max_per_second as usize {
                return None;
            }
            state.recent.push_back(now);
            Some(state.places.clone())
        });
        let Some(places) = admitted else {
            let limit = event.max_per_second;
            tracing::warn!(event = %name, "event fired more than {limit} times in a second: skipped (a trigger loop?)");
            return Ok(record(skipped(
                name,
                trigger,
                format!("fired more than {limit} times in a second (does it trigger itself?)"),
            )));
        };
        let permit = match places.clone().try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) if event.retrigger == Retrigger::Queue => {
                let admitted = self.automation.with_state(name, event.retrigger, |state| {
                    let room = state.waiting < QUEUE_LIMIT;
                    if room {
                        state.waiting += 1;
                    }
                    room
                });
                if !admitted {
                    return Ok(record(skipped(
                        name,
                        trigger,
                        format!("{QUEUE_LIMIT} runs are already waiting"),
                    )));
                }
                let permit = places.acquire_owned().await;
                self.automation.with_state(name, event.retrigger, |state| {
                    state.waiting = state.waiting.saturating_sub(1)
                });
                match permit {
                    Ok(permit) => permit,
                    Err(_) => {
                        return Ok(record(skipped(
                            name,
                            trigger,
                            "the event was unloaded".into(),
                        )))
                    }
                }
            }
            Err(_) => {
                return Ok(record(skipped(
                    name,
                    trigger,
                    "it is already running (retrigger = \"skip\")".into(),
                )))
            }
        };
        let late_ms = due.map(|due| {
            u64::try_from((self.automation.now() - due).num_milliseconds()).unwrap_or_default()
        });
        let mut run = Box::pin(self.execute(&event, trigger, input, depth)).await;
        run.late_ms = late_ms;
        drop(permit);
        Ok(record(Arc::new(run)))
    }

    async fn execute(
        self: &Arc<Self>,
        event: &Event,
        trigger: &str,
        input: Option<Arc<str>>,
        depth: u8,
    ) -> EventRun {
        let started = Instant::now();
        let mut run = EventRun {
            event: event.name.clone(),
            trigger: trigger.to_string(),
            started_at: now_text(),
            late_ms: None,
            duration_ms: 0,
            outcome: EventOutcome::Ok,
            reason: None,
            steps: Vec::new(),
        };
        let input: Arc<str> = input.unwrap_or_else(|| "".into());
        let evaluate = |expression: &Expression| -> Result<Value, crate::expr::EvalError> {
            let document = Document::new(input.clone(), expression.plan());
            let environment = HubEnvironment::new(&self.hub);
            expression.evaluate(&Scope::new(&document, &environment))
        };
        for (index, condition) in event.conditions.iter().enumerate() {
            let step_started = Instant::now();
            let (holds, message) = match evaluate(condition) {
                Ok(value) => (value.is_truthy(), None),
                Err(error) => (false, Some(error.to_string())),
            };
            run.steps.push(StepRecord {
                step: format!("condition {}: {}", index + 1, condition.source()),
                ok: holds,
                message,
                duration_ms: step_started.elapsed().as_millis() as u64,
            });
            if !holds {
                run.outcome = EventOutcome::ConditionsFalse;
                run.duration_ms = started.elapsed().as_millis() as u64;
                return run;
            }
        }
        for (index, action) in event.actions.iter().enumerate() {
            let step_started = Instant::now();
            let (step, outcome): (String, Result<Option<String>, String>) = match action {
                Action::Run { profile, text } => {
                    let document = Document::new(input.clone(), Default::default());
                    let environment = HubEnvironment::new(&self.hub);
                    let rendered = text.render_text(&Scope::new(&document, &environment));
                    let step = format!("run `{profile}`");
                    match rendered {
                        Ok(Some(text)) => match self.run(profile, &text).await {
                            Ok(record) if record.ok || record.skipped => (step, Ok(None)),
                            Ok(record) => (
                                step,
                                Err(record
                                    .errors
                                    .first()
                                    .map(|e| e.message.clone())
                                    .unwrap_or_else(|| "the run failed".into())),
                            ),
                            Err(error) => (step, Err(error.to_string())),
                        },
                        Ok(None) => (
                            step,
                            Ok(Some("the action text gave null: nothing sent".into())),
                        ),
                        Err(error) => (step, Err(format!("action text: {error}"))),
                    }
                }
                Action::SetDevice {
                    reference,
                    value,
                    string,
                } => {
                    let step = format!("set device {reference}");
                    match new_value_and_string(&evaluate, value, string) {
                        Ok((number, text)) => match self.set_device(*reference, number, text).await
                        {
                            Ok(_) => (step, Ok(None)),
                            Err(error) => (step, Err(error.to_string())),
                        },
                        Err(error) => (step, Err(error.to_string())),
                    }
                }
                Action::SetGlobal {
                    name,
                    value,
                    string,
                } => {
                    let step = format!("set global `{name}`");
                    match new_value_and_string(&evaluate, value, string) {
                        Ok((number, text)) => match self.set_global(name, number, text) {
                            Ok(_) => (step, Ok(None)),
                            Err(error) => (step, Err(error.to_string())),
                        },
                        Err(error) => (step, Err(error.to_string())),
                    }
                }
                Action::Wait(duration) => {
                    self.automation.clock.sleep(*duration).await;
                    (
                        format!(
                            "wait {}",
                            crate::event::schedule::describe_duration(*duration)
                        ),
                        Ok(None),
                    )
                }
                Action::Event(other) => {
                    let step = format!("run event `{other}`");
                    let nested =
                        Box::pin(self.fire(other, "event", Some(input.clone()), depth + 1)).await;
                    match nested {
                        Ok(nested) if nested.outcome == EventOutcome::Failed => {
                            (step, Err("the event failed".into()))
                        }
                        Ok(nested) if nested.outcome == EventOutcome::Skipped => {
                            (step, Err(nested.reason.clone().unwrap_or_default()))
                        }
                        Ok(_) => (step, Ok(None)),
                        Err(error) => (step, Err(error.to_string())),
                    }
                }
            };
            let failed = outcome.is_err();
            run.steps.push(StepRecord {
                step: format!("action {}: {step}", index + 1),
                ok: !failed,
                message: match outcome {
                    Ok(note) => note,
                    Err(error) => Some(error),
                },
                duration_ms: step_started.elapsed().as_millis() as u64,
            });
            if failed {
                run.outcome = EventOutcome::Failed;
                if event.on_error == OnError::Stop {
                    break;
                }
            }
        }
        run.duration_ms = started.elapsed().as_millis() as u64;
        run
    }
}

/// The vault key of an event's webhook token. The colon keeps it apart from profile secrets,
/// whose names are letters, digits and `_`.
fn webhook_secret_name(event: &str) -> String {
    format!("webhook:{event}")
}

impl Engine {
    /// Gives every event with a webhook trigger its secret token: the one kept in the encrypted
    /// vault, or a new random one saved there, so a URL survives restarts. Reads and writes
    /// the vault: call it off the async workers.
    pub fn prepare_webhooks(&self) {
        let events = self.automation.events();
        let wanted: Vec<&String> = events
            .events
            .iter()
            .filter(|(_, e)| e.triggers.iter().any(|t| matches!(t, Trigger::Webhook)))
            .map(|(name, _)| name)
            .collect();
        let vault = self.source.as_ref().and_then(|s| s.vault.as_ref());
        let mut tokens = HashMap::new();
        if let Some(vault) = vault.filter(|_| !wanted.is_empty()) {
            let stored = vault.secrets().unwrap_or_default();
            let mut new = std::collections::BTreeMap::new();
            for name in wanted {
                let key = webhook_secret_name(name);
                let token = stored.get(&key).cloned().unwrap_or_else(|| {
                    let token = crate::secret::random_token();
                    new.insert(key, token.clone());
                    token
                });
                tokens.insert(name.clone(), crate::secret::Secret::new(token));
            }
            if let Err(error) = vault.store_secrets(&new) {
                tracing::error!(error = %error, "webhook tokens could not be saved: webhooks are off");
                tokens.clear();
            }
        } else if !wanted.is_empty() {
            tracing::warn!("webhook triggers need the encrypted store: webhooks are off");
        }
        *self.automation.webhook_tokens.write_locked() = tokens;
    }

    /// The URL that fires an event's webhook, when it has one.
    pub fn webhook_url(&self, event: &str) -> Option<String> {
        let tokens = self.automation.webhook_tokens.read_locked();
        let token = tokens.get(event)?;
        let path = format!(
            "hooks/events/{}/{}",
            percent_encoding::utf8_percent_encode(event, percent_encoding::NON_ALPHANUMERIC),
            token.expose()
        );
        Some(match &self.authorizer {
            Some(authorizer) => authorizer
                .public_base_url()
                .join(&path)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| format!("/{path}")),
            None => format!("/{path}"),
        })
    }

    /// A webhook call: fires the event when `token` is its token (compared in constant time).
    /// `None`: no such webhook, or the wrong token; nothing runs.
    pub fn webhook(self: &Arc<Self>, event: &str, token: &str, input: Arc<str>) -> bool {
        use subtle::ConstantTimeEq;
        let admitted = self
            .automation
            .webhook_tokens
            .read_locked()
            .get(event)
            .is_some_and(|expected| {
                bool::from(expected.expose().as_bytes().ct_eq(token.as_bytes()))
            });
        if admitted {
            self.fire_detached(event, "webhook", Some(input));
        }
        admitted
    }
}

/// Fires schedule triggers on time until the engine is gone: a heap of the next firing of each
/// schedule, so each wake-up costs what is due, not a pass over every event. Rebuilt when the
/// events reload. A firing missed by more than its period (a suspended machine) is not
/// replayed: the schedule goes on from now.
async fn scheduler(engine: std::sync::Weak<Engine>) {
    use std::cmp::Reverse;
    use std::collections::BinaryHeap;
    loop {
        let (loaded, zone, reloaded, clock) = {
            let Some(engine) = engine.upgrade() else {
                return;
            };
            (
                engine.automation.loaded(),
                engine.automation.zone(),
                engine.automation.clone_notify(),
                engine.automation.clock.clone(),
            )
        };
        let now = || chrono::DateTime::from_timestamp_millis(clock.now_ms()).unwrap_or_default();
        let schedules = &loaded.index.schedules;
        let start = now();
        let mut due: BinaryHeap<Reverse<(chrono::DateTime<chrono::Utc>, usize)>> = schedules
            .iter()
            .enumerate()
            .filter_map(|(i, s)| s.trigger.next_after(start, zone).map(|at| Reverse((at, i))))
            .collect();
        loop {
            let wait = due
                .peek()
                .map(|Reverse((at, _))| (*at - now()).to_std().unwrap_or(Duration::ZERO));
            // Check at least once a minute that the engine is still there.
            let sleep = wait
                .unwrap_or(Duration::from_secs(60))
                .min(Duration::from_secs(60));
            let notified = reloaded.notified();
            tokio::pin!(notified);
            let woken_by_reload = tokio::select! {
                _ = clock.sleep(sleep) => false,
                _ = &mut notified => true,
            };
            if woken_by_reload {
                break;
            }
            let Some(engine) = engine.upgrade() else {
                return;
            };
            let now = now();
            while let Some(Reverse((at, i))) = due.peek().copied() {
                if at > now {
                    break;
                }
                due.pop();
                let schedule = &schedules[i];
                let places = engine.automation.scheduled_places.clone();
                let Ok(place) = places.acquire_owned().await else {
                    return;
                };
                engine.fire_scheduled(&schedule.event, at, place);
                let next = schedule
                    .trigger
                    .next_after(at, zone)
                    .filter(|next| *next > now)
                    .or_else(|| schedule.trigger.next_after(now, zone));
                if let Some(next) = next {
                    due.push(Reverse((next, i)));
                }
            }
        }
    }
}
