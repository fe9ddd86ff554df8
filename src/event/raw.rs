//! Serde mirrors of event files, exactly as written. Nothing here is validated; `resolve` turns
//! a [`RawEvent`] into an [`super::Event`] that can only hold valid data.

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct RawEvent {
    pub version: Option<u32>,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub enabled: Option<bool>,
    /// `stop` (default) or `continue` after a failed action.
    pub on_error: Option<String>,
    /// `skip` (default), `queue` or `parallel` when a trigger fires while the event runs.
    pub retrigger: Option<String>,
    /// Firings a second before more are refused as a trigger loop (default 20).
    pub max_per_second: Option<u32>,
    /// Whether Home Assistant gets a button that fires this event (default yes).
    pub home_assistant_button: Option<bool>,
    #[serde(default)]
    pub trigger: Vec<RawTrigger>,
    /// Expressions that must all be true.
    #[serde(default)]
    pub conditions: Vec<String>,
    #[serde(default)]
    pub action: Vec<RawAction>,
}

/// One trigger: exactly one of its kinds is set.
#[derive(Debug, Deserialize, Default)]
pub struct RawTrigger {
    /// `30s`, `5m`, `2h`, `1h30m`.
    pub every: Option<String>,
    /// Five fields (minute…weekday) or six (with seconds first).
    pub cron: Option<String>,
    pub startup: Option<bool>,
    /// `POST /api/v1/events/<name>/run` (always available) and, with `webhook = true`, a URL
    /// with a secret token.
    pub webhook: Option<bool>,
    /// A profile's input (its response, or what it receives when listening).
    pub input: Option<String>,
    /// The string matcher: `text` at 1-based `position` (0: anywhere).
    pub text: Option<String>,
    pub position: Option<i64>,
    /// The expression matcher.
    pub expression: Option<String>,
    /// The number matcher: number `number` (0-based, as in `Numbers()`) compared with `to`.
    pub number: Option<i64>,
    pub compare: Option<String>,
    pub to: Option<f64>,
    /// The on/off matcher: `on` or `off`, optionally the `index`-th on/off word (0-based).
    pub onoff: Option<String>,
    pub index: Option<i64>,
    /// A device: `profile` + `root` (+ `feature`), or `device` by reference.
    pub device: Option<u64>,
    pub profile: Option<String>,
    pub root: Option<String>,
    pub feature: Option<String>,
    /// What change of the device counts: `value`, `string` or `any` (default).
    pub changes: Option<String>,
    /// With `compare`/`to`: fire only when the value starts to compare so (it did not before).
    pub crossing: Option<bool>,
    /// A global variable changing.
    pub global: Option<String>,
    /// An error of a profile (`*` for any), optionally of one class.
    pub error: Option<String>,
    pub class: Option<String>,
}

/// One action: exactly one of its kinds is set.
#[derive(Debug, Deserialize, Default)]
pub struct RawAction {
    /// Run a profile's action with `text` (a template; the trigger's `input` is available).
    pub run: Option<String>,
    pub text: Option<String>,
    /// Set a device (by reference) or a global: `value` and/or `string` expressions.
    pub set_device: Option<u64>,
    pub set_global: Option<String>,
    pub value: Option<String>,
    pub string: Option<String>,
    /// Pause: `500ms`, `5s`, `1m`.
    pub wait: Option<String>,
    /// Run another event.
    pub event: Option<String>,
}
