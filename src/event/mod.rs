//! Automation events (configuration loading): one TOML file per event in the events folder —
//! triggers (any one fires it), conditions (all must hold) and an ordered list of actions —
//! loaded like profiles: every problem reported with file, line, key and column, a broken event
//! never stopping the others, and every name an event refers to (profiles, other events)
//! checked. Also the schedules and the input matchers the triggers use.
//!
//! Uses the expression core and the profile set (to check names); knows nothing of the engine,
//! devices, storage or the web.

pub mod index;
pub mod matcher;
pub(crate) mod raw;
mod resolve;
pub mod schedule;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::expr::{Expression, Template};
use crate::profile::{Diagnostic, ProfileSet};
pub use matcher::{Comparison, InputMatcher};
pub use schedule::{Schedule, Zone};

/// A compiled, valid event.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    pub enabled: bool,
    pub triggers: Vec<Trigger>,
    /// All must be true for the actions to run.
    pub conditions: Vec<Expression>,
    pub actions: Vec<Action>,
    pub on_error: OnError,
    pub retrigger: Retrigger,
    /// Firings a second before more are refused as a trigger loop.
    pub max_per_second: u32,
    /// Whether Home Assistant is offered a button that fires this event.
    pub home_assistant_button: bool,
}

/// Firings of one event a second, unless its file says otherwise.
pub const DEFAULT_MAX_PER_SECOND: u32 = 20;

#[derive(Debug, Clone)]
pub enum Trigger {
    Schedule(Schedule),
    Startup,
    /// A call of the event's webhook URL (with its secret token).
    Webhook,
    /// What a profile received matches.
    Input {
        profile: String,
        matcher: InputMatcher,
    },
    Device(DeviceTrigger),
    Global {
        name: String,
    },
    Error(ErrorTrigger),
}

#[derive(Debug, Clone, PartialEq)]
pub enum DeviceSelector {
    Reference(u64),
    Named {
        profile: String,
        root: String,
        feature: Option<String>,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChangeKind {
    Value,
    String,
    Any,
}

#[derive(Debug, Clone)]
pub struct DeviceTrigger {
    pub device: DeviceSelector,
    pub changes: ChangeKind,
    /// Fire only when the new value compares so (e.g. `> 25`).
    pub compare: Option<(Comparison, f64)>,
    /// With `compare`: fire only when the value crosses into the comparison (the previous value
    /// did not compare so), not on every change while it holds.
    pub crossing: bool,
}

impl DeviceTrigger {
    /// Whether a device change fires this trigger. `previous`: the value before the change, when
    /// it is known.
    pub fn fires(
        &self,
        value_changed: bool,
        string_changed: bool,
        value: f64,
        previous: Option<f64>,
    ) -> bool {
        let changed = match self.changes {
            ChangeKind::Value => value_changed,
            ChangeKind::String => string_changed,
            ChangeKind::Any => value_changed || string_changed,
        };
        changed
            && self.compare.is_none_or(|(compare, to)| {
                compare.holds(value, to)
                    && !(self.crossing && previous.is_some_and(|before| compare.holds(before, to)))
            })
    }
}

/// The classes of errors an error trigger can pick.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorClass {
    Connection,
    HttpStatus,
    Authorization,
    Expression,
    MalformedResponse,
}

impl ErrorClass {
    /// The class's name, as files and answers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorClass::Connection => "connection",
            ErrorClass::HttpStatus => "http_status",
            ErrorClass::Authorization => "authorization",
            ErrorClass::Expression => "expression",
            ErrorClass::MalformedResponse => "malformed_response",
        }
    }

    pub fn parse(text: &str) -> Option<ErrorClass> {
        Some(match text {
            "connection" => ErrorClass::Connection,
            "http_status" => ErrorClass::HttpStatus,
            "authorization" => ErrorClass::Authorization,
            "expression" => ErrorClass::Expression,
            "malformed_response" => ErrorClass::MalformedResponse,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ErrorTrigger {
    /// `None`: any profile.
    pub profile: Option<String>,
    /// `None`: any class.
    pub class: Option<ErrorClass>,
}

#[derive(Debug, Clone)]
pub enum Action {
    /// Run a profile's action; the text is a template that may read the trigger's `input`.
    Run {
        profile: String,
        text: Template,
    },
    SetDevice {
        reference: u64,
        value: Option<Expression>,
        string: Option<Expression>,
    },
    SetGlobal {
        name: String,
        value: Option<Expression>,
        string: Option<Expression>,
    },
    Wait(Duration),
    /// Run another event.
    Event(String),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnError {
    Stop,
    Continue,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Retrigger {
    Skip,
    Queue,
    Parallel,
}

/// The result of loading the events folder: the valid events and every problem found.
#[derive(Debug, Default, Clone)]
pub struct EventSet {
    pub events: BTreeMap<String, Arc<Event>>,
    pub diagnostics: Vec<Diagnostic>,
}

impl EventSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Event>> {
        self.events.get(name)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// Loads every `*.toml` file of `dir`, checking the profiles events name against `profiles`.
/// A missing folder is an empty set (events are optional).
pub fn load_dir(dir: &Path, profiles: &ProfileSet) -> EventSet {
    resolve::load_dir(dir, profiles)
}

/// Loads one event from its text (its references to other events are not checked here).
pub fn load_text(
    file: &Path,
    text: &str,
    profiles: &ProfileSet,
) -> (Option<Event>, Vec<Diagnostic>) {
    resolve::load(file, text, profiles)
}
