//! The records of what ran: a profile's run (its exchanges, device changes and errors, each
//! with the stage and class it belongs to) and an event's run (each condition and action). Kept in the history, journaled by the store, shown
//! by the API and the CLI.

use serde::{Deserialize, Serialize};

use crate::devices::DeviceChange;
use crate::event::ErrorClass;

/// Where in a run a problem happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunStage {
    /// Compiling or rendering the action text.
    Action,
    /// Rendering or sending the request.
    Request,
    /// The API's answer (status, body).
    Response,
    /// Mapping the response onto devices.
    Devices,
}

impl RunStage {
    /// The stage's name, as the journal and answers spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStage::Action => "action",
            RunStage::Request => "request",
            RunStage::Response => "response",
            RunStage::Devices => "devices",
        }
    }
}

impl std::fmt::Display for RunStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem of a run, where the user looks for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunError {
    pub stage: RunStage,
    /// What kind of problem it is, as error triggers pick them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub class: Option<ErrorClass>,
    pub message: String,
    /// Column inside the expression or template, when the problem is in one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
}

/// One HTTP exchange of a run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ExchangeRecord {
    pub method: crate::profile::Method,
    /// The URL without credentials.
    pub url: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub duration_ms: u64,
    pub response_bytes: usize,
}

/// The record of one run: kept in the per-profile history and returned by the API and CLI.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    pub profile: String,
    pub started_at: String,
    pub duration_ms: u64,
    pub action_text: String,
    pub ok: bool,
    /// Nothing was sent because the action text (or a request template) gave `null`.
    pub skipped: bool,
    pub exchanges: Vec<ExchangeRecord>,
    pub changes: Vec<DeviceChange>,
    pub errors: Vec<RunError>,
}

impl RunRecord {
    /// The record of a run starting now.
    pub(super) fn starting(profile: &str, action_text: &str) -> RunRecord {
        RunRecord {
            profile: profile.to_string(),
            started_at: chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            duration_ms: 0,
            action_text: action_text.to_string(),
            ok: true,
            skipped: false,
            exchanges: Vec::new(),
            changes: Vec::new(),
            errors: Vec::new(),
        }
    }
}

/// What happened to one step (a condition or an action).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub step: String,
    pub ok: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    pub duration_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// Every action ran.
    Ok,
    /// An action failed (and, with `on_error = "continue"`, the others still ran).
    Failed,
    /// A condition was false (or failed): no action ran.
    ConditionsFalse,
    /// Not run: disabled, already running, rate-limited or too deep.
    Skipped,
}

impl EventOutcome {
    /// The outcome's name, as the journal and answers spell it.
    pub fn as_str(&self) -> &'static str {
        match self {
            EventOutcome::Ok => "ok",
            EventOutcome::Failed => "failed",
            EventOutcome::ConditionsFalse => "conditions_false",
            EventOutcome::Skipped => "skipped",
        }
    }
}

/// The record of one event run (kept in the store's event journal as this JSON).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EventRun {
    pub event: String,
    pub trigger: String,
    pub started_at: String,
    /// For a schedule: how long after its time the run started.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub late_ms: Option<u64>,
    pub duration_ms: u64,
    pub outcome: EventOutcome,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub steps: Vec<StepRecord>,
}
