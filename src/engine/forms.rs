//! The one description of the editor forms — their fields, kinds, help texts, choices and when
//! each applies — served to the web UI, which builds its forms from it, and used here to edit
//! event files: an event form is read from the file as written and saved back into the same
//! file in place (toml_edit), touching only the keys whose value changed, so comments, order
//! and keys the form does not show stay as they were. (Profiles are saved by `editor`, whose
//! form fields this schema describes; a test keeps the two in step.)

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde_json::{Map, Value as Json};

use super::editor::EditError;
use super::saving::{read_or_new, FormSave, Located};
use super::{Engine, ProfileSource};
use crate::profile::Diagnostic;

/// How a field is shown and what its value is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldKind {
    Text,
    /// An expression or template: monospaced.
    Expression,
    /// Several lines (a list of texts, one per line, for `lines`).
    LongText,
    Lines,
    Select,
    Boolean,
    Number,
    /// Shown as dots; the server sends `••••••` for a value it keeps.
    Secret,
}

#[derive(Debug, Clone, Serialize)]
pub struct Field {
    /// The form's field name (and, for events, the TOML key it edits).
    pub key: &'static str,
    pub label: &'static str,
    pub kind: FieldKind,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub help: &'static str,
    #[serde(skip_serializing_if = "str::is_empty")]
    pub placeholder: &'static str,
    /// `(value, label)`; a label ending in ` (file)` is shown but cannot be picked.
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub choices: &'static [(&'static str, &'static str)],
    /// The fieldset it belongs to.
    pub group: &'static str,
    /// Shown only when field `.0` (or, in a list item, its kind) is one of `.1`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub when: Option<(&'static str, &'static [&'static str])>,
    /// The TOML key problems are reported under, when it differs from `key`.
    #[serde(skip_serializing_if = "str::is_empty")]
    pub toml_key: &'static str,
    /// A checkbox's value when the file says nothing.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default: Option<bool>,
    /// Left empty, the chosen provider definition's value is used (the form shows it).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub provider_fills: bool,
    /// Discover fills it from the issuer's metadata.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub discoverable: bool,
}

/// A list of tables (`[[trigger]]`, `[[action]]`): each item has a kind and the fields of it.
#[derive(Debug, Clone, Serialize)]
pub struct ListSpec {
    pub key: &'static str,
    pub label: &'static str,
    /// `(kind, label, the TOML key that marks an item of that kind)`.
    pub kinds: &'static [(&'static str, &'static str, &'static str)],
    pub fields: &'static [Field],
    /// Keys only a file sets (the form cannot show them); in the reference, not the form.
    #[serde(skip)]
    pub file_only: &'static [Field],
}

#[derive(Debug, Clone, Serialize)]
pub struct FormSchema {
    pub form: &'static str,
    pub fields: &'static [Field],
    #[serde(skip_serializing_if = "<[_]>::is_empty")]
    pub lists: &'static [ListSpec],
    /// Keys only a file sets (the form cannot show them); in the reference, not the form.
    #[serde(skip)]
    pub file_only: &'static [Field],
}

const fn field(
    key: &'static str,
    label: &'static str,
    kind: FieldKind,
    group: &'static str,
) -> Field {
    Field {
        key,
        label,
        kind,
        help: "",
        placeholder: "",
        choices: &[],
        group,
        when: None,
        toml_key: "",
        default: None,
        provider_fills: false,
        discoverable: false,
    }
}

impl Field {
    const fn help(mut self, help: &'static str) -> Field {
        self.help = help;
        self
    }
    const fn placeholder(mut self, placeholder: &'static str) -> Field {
        self.placeholder = placeholder;
        self
    }
    const fn choices(mut self, choices: &'static [(&'static str, &'static str)]) -> Field {
        self.choices = choices;
        self
    }
    const fn when(mut self, field: &'static str, values: &'static [&'static str]) -> Field {
        self.when = Some((field, values));
        self
    }
    const fn toml(mut self, key: &'static str) -> Field {
        self.toml_key = key;
        self
    }
    const fn default(mut self, value: bool) -> Field {
        self.default = Some(value);
        self
    }
    const fn provider_fills(mut self) -> Field {
        self.provider_fills = true;
        self
    }
    const fn discoverable(mut self) -> Field {
        self.discoverable = true;
        self
    }
}

use FieldKind::*;

const OAUTH2: &[&str] = &["oauth2"];

/// The profile editor (the fields of [`super::editor::ProfileForm`]).
pub static PROFILE_FORM: FormSchema = FormSchema {
    form: "profile",
    fields: &[
        field("name", "Name", Text, "Request").help("Letters, digits, spaces, `-`, `_` and `.`; saving under another name renames the file."),
        field("description", "Description", Text, "Request"),
        field("method", "Method", Select, "Request")
            .choices(&[("GET", "GET"), ("POST", "POST"), ("PUT", "PUT"), ("PATCH", "PATCH"), ("DELETE", "DELETE")])
            .toml("request.method"),
        field("url", "API URL", Expression, "Request")
            .placeholder("https://api.example.com/users/@me")
            .help("`${…}` anywhere in it is an expression; its result is URL-encoded.")
            .toml("request.url"),
        field("listen", "Listening path", Text, "Request")
            .placeholder("/sensors/hall")
            .help("Instead of calling an API, be called: sensors send to this path under the listen base (e.g. /in/sensors/hall). Leave empty for a profile that calls out."),
        field("auth_mode", "Mode", Select, "Authentication")
            .choices(&[
                ("none", "None"),
                ("bearer", "Static bearer token"),
                ("oauth2", "OAuth2"),
                ("basic", "Basic (file)"),
                ("api_key_header", "API key header (file)"),
                ("api_key_query", "API key query (file)"),
            ])
            .toml("auth.mode"),
        field("token", "Token", Secret, "Authentication").when("auth_mode", &["bearer"]).toml("auth.token"),
        field("provider", "Provider", Select, "Authentication")
            .when("auth_mode", OAUTH2)
            .help("A provider definition fills in the endpoints and the provider's quirks: add only the client ID, secret and scopes. Empty fields below take the provider's values.")
            .toml("auth.oauth2.provider"),
        field("grant", "Grant", Select, "Authentication")
            .when("auth_mode", OAUTH2)
            .choices(&[
                ("", "The provider's default"),
                ("authorization_code", "Authorization code (sign in at the provider)"),
                ("device_code", "Device code (enter a code at the provider; no redirect)"),
                ("client_credentials", "Client credentials (no user)"),
                ("password", "Password (legacy)"),
                ("implicit", "Implicit (legacy)"),
            ])
            .help("Device code suits a hub the provider cannot redirect to. Password and implicit are deprecated; use them only for providers that offer nothing else.")
            .toml("auth.oauth2.grant"),
        field("client_id", "Client ID", Text, "Authentication").when("auth_mode", OAUTH2).toml("auth.oauth2.client_id"),
        field("client_secret", "Client secret", Secret, "Authentication")
            .when("auth_mode", OAUTH2)
            .help("Kept encrypted beside the tokens; the profile file refers to it.")
            .toml("auth.oauth2.client_secret"),
        field("scopes", "Scopes", Text, "Authentication").when("auth_mode", OAUTH2).placeholder("identify email").toml("auth.oauth2.scopes").provider_fills(),
        field("authorize_url", "Authorize URL", Text, "Authentication").when("auth_mode", OAUTH2).toml("auth.oauth2.authorize_url").provider_fills().discoverable(),
        field("token_url", "Token URL", Text, "Authentication").when("auth_mode", OAUTH2).toml("auth.oauth2.token_url").provider_fills().discoverable(),
        field("device_authorization_url", "Device authorization URL", Text, "Authentication")
            .when("auth_mode", OAUTH2)
            .help("For the device-code grant.")
            .toml("auth.oauth2.device_authorization_url")
            .provider_fills()
            .discoverable(),
        field("issuer", "Issuer URL", Text, "Authentication")
            .when("auth_mode", OAUTH2)
            .placeholder("https://login.example.com")
            .help("The authorization server's issuer: Discover fills the endpoints from it (RFC 8414 / OpenID Connect), and a callback naming another issuer is refused (RFC 9207).")
            .toml("auth.oauth2.issuer"),
        field("revocation_url", "Revocation URL", Text, "Authentication")
            .when("auth_mode", OAUTH2)
            .help("Forget authorization revokes the tokens here first (RFC 7009).")
            .toml("auth.oauth2.revocation_url")
            .provider_fills()
            .discoverable(),
        field("introspection_url", "Introspection URL", Text, "Authentication")
            .when("auth_mode", OAUTH2)
            .help("Check the token at the provider asks here (RFC 7662).")
            .toml("auth.oauth2.introspection_url")
            .discoverable(),
        field("legacy_callback", "Use the family's legacy callback page (/oauth2_callback.html)", Boolean, "Authentication")
            .when("auth_mode", OAUTH2)
            .toml("auth.oauth2.callback")
            .default(false),
        field("extra_authorize_params", "Extra authorize parameters", LongText, "Authentication")
            .when("auth_mode", OAUTH2)
            .placeholder("access_type=offline")
            .help("One `name=value` per line.")
            .toml("auth.oauth2.extra_authorize_params"),
        field("client_auth", "Client authentication", Select, "Authentication")
            .when("auth_mode", OAUTH2)
            .choices(&[
                ("", "The provider's choice (HTTP Basic without one)"),
                ("basic", "HTTP Basic"),
                ("body", "In the request body"),
                ("none", "None (a public client: client ID only)"),
            ])
            .toml("auth.oauth2.client_auth"),
        field("pkce", "PKCE (S256)", Boolean, "Authentication").when("auth_mode", OAUTH2).toml("auth.oauth2.pkce").default(true),
        field("header_template", "Authorization header", Text, "Authentication")
            .when("auth_mode", OAUTH2)
            .placeholder("Bearer {AccessToken}")
            .toml("auth.oauth2.header_template"),
        field("root_names", "Root device names", Expression, "Devices").placeholder("\"email\"").help("`&&&` separates root devices.").toml("devices.root_names"),
        field("feature_names", "Feature names", Expression, "Devices").help("`&&` separates the features of one root.").toml("devices.feature_names"),
        field("values", "Values", Expression, "Devices").placeholder("JSON(input,\"email\")").toml("devices.values"),
        field("strings", "Strings", Expression, "Devices").toml("devices.strings"),
    ],
    lists: &[],
    file_only: &[],
};

const INPUT: &[&str] = &["input"];
const DEVICE: &[&str] = &["device"];
const INPUT_OR_DEVICE: &[&str] = &["input", "device"];
const SET: &[&str] = &["set_device", "set_global"];
const COMPARISONS: &[(&str, &str)] = &[
    ("", "(none)"),
    ("=", "="),
    ("!=", "≠"),
    ("<", "<"),
    ("<=", "≤"),
    (">", ">"),
    (">=", "≥"),
];

/// The event editor: top-level keys, then the `[[trigger]]` and `[[action]]` lists.
pub static EVENT_FORM: FormSchema = FormSchema {
    form: "event",
    fields: &[
        field("name", "Name", Text, "Event").help("The file's name; saving under another name renames it."),
        field("description", "Description", Text, "Event"),
        field("enabled", "Enabled", Boolean, "Event").help("false: the event is loaded and listed but never runs (a firing is recorded as skipped). Default true.").default(true),
        field("conditions", "Conditions", Lines, "Event")
            .help("Expressions, one per line; all must be true (devices valNNN/strNNN, globals, input)."),
        field("on_error", "When an action fails", Select, "Event")
            .help("stop: the actions after a failed one do not run; continue: they do. The run is `failed` either way.")
            .choices(&[("", "stop (default)"), ("stop", "stop"), ("continue", "continue with the next")]),
        field("retrigger", "When it fires while running", Select, "Event")
            .help("skip: the new firing is recorded as skipped; queue: it waits (10 at most); parallel: it runs beside (4 at most).")
            .choices(&[("", "skip (default)"), ("skip", "skip"), ("queue", "queue"), ("parallel", "run in parallel")]),
        field("max_per_second", "Most firings a second", Number, "Event").placeholder("20")
            .help("Firings beyond this in one second are refused as a loop and recorded (1 to 10000)."),
        field("home_assistant_button", "Button in Home Assistant", Boolean, "Event")
            .help("With MQTT discovery, Home Assistant shows a button that fires this event (on unless unticked)."),
    ],
    lists: &[
        ListSpec {
            key: "trigger",
            label: "Triggers (any one fires the event)",
            kinds: &[
                ("every", "Every …", "every"),
                ("cron", "Cron schedule", "cron"),
                ("startup", "At startup", "startup"),
                ("webhook", "Webhook URL", "webhook"),
                ("input", "A profile's input matches", "input"),
                ("device", "A device changes", "root"),
                ("global", "A global changes", "global"),
                ("error", "A profile fails", "error"),
            ],
            fields: &[
                field("every", "Every", Text, "").when("kind", &["every"]).placeholder("30s, 5m, 1h30m").help("An interval: `ms`, `s`, `m`, `h`, `d`, combined (`1h30m`)."),
                field("cron", "Cron", Text, "").when("kind", &["cron"]).placeholder("0 7 * * mon-fri").help("Five fields (minute … weekday) or six (seconds first), in the configured time zone."),
                field("input", "Profile", Text, "").when("kind", INPUT).help("The profile whose input (its response, or what it received) is matched."),
                field("text", "Text", Text, "").when("kind", INPUT).help("The string matcher: this text…"),
                field("position", "At position", Number, "").when("kind", INPUT).help("…at this 1-based position (0: anywhere)."),
                field("expression", "Expression", Expression, "").when("kind", INPUT).help("The expression matcher: true fires."),
                field("number", "Number index", Number, "").when("kind", INPUT).help("The number matcher: the k-th number (0-based) compared with `to`."),
                field("onoff", "On/off word", Select, "").when("kind", INPUT).choices(&[("", "(none)"), ("on", "on"), ("off", "off")]),
                field("index", "On/off index", Number, "").when("kind", INPUT),
                field("profile", "Profile", Text, "").when("kind", DEVICE).help("The profile that makes the device."),
                field("root", "Root device", Text, "").when("kind", DEVICE).help("The root device's name, as the profile makes it (`Hall`)."),
                field("feature", "Feature", Text, "").when("kind", DEVICE).help("A feature of that root (`temperature`); without it, the root itself."),
                field("changes", "Changes of", Select, "").when("kind", DEVICE).choices(&[("", "value or string"), ("value", "the value"), ("string", "the string"), ("any", "either")]),
                field("compare", "Compared", Select, "").when("kind", INPUT_OR_DEVICE).choices(COMPARISONS),
                field("to", "To", Number, "").when("kind", INPUT_OR_DEVICE),
                field("crossing", "Only when it crosses into the comparison", Boolean, "").when("kind", DEVICE).help("Fire when the value starts to compare so (the value before did not, also across restarts), not on every change while it holds. Needs `compare` and `to`."),
                field("global", "Global", Text, "").when("kind", &["global"]).help("Fire when this global variable changes; `input` is its new value or string."),
                field("error", "Profile (* for any)", Text, "").when("kind", &["error"]).help("Fire when this profile's run fails; `input` is the error message."),
                field("class", "Error class", Select, "").when("kind", &["error"]).choices(&[
                    ("", "any"),
                    ("connection", "connection"),
                    ("http_status", "HTTP status"),
                    ("authorization", "authorization"),
                    ("expression", "expression"),
                    ("malformed_response", "malformed response"),
                ]),
            ],
            // The form writes these through the kind (`startup = true`, `webhook = true`) or
            // cannot show them (a device by reference).
            file_only: &[
                field("startup", "At startup", Boolean, "").when("kind", &["startup"]).help("`true`: fire once when `serve` starts."),
                field("webhook", "Webhook URL", Boolean, "").when("kind", &["webhook"]).help("`true`: the event gets a URL with a secret token; calling it fires the event (answered 202 Accepted: the run goes on after the answer)."),
                field("device", "Device reference", Number, "").when("kind", DEVICE).help("Instead of `profile` and `root`: the device by its reference (an unknown one is a load error)."),
            ],
        },
        ListSpec {
            key: "action",
            label: "Actions (in order)",
            kinds: &[
                ("run", "Run a profile's action", "run"),
                ("set_device", "Set a device", "set_device"),
                ("set_global", "Set a global", "set_global"),
                ("wait", "Wait", "wait"),
                ("event", "Run another event", "event"),
            ],
            fields: &[
                field("run", "Profile", Text, "").when("kind", &["run"]),
                field("text", "Action text", Expression, "").when("kind", &["run"]).help("A template: `${input}` is the trigger's input."),
                field("set_device", "Device reference", Number, "").when("kind", &["set_device"]),
                field("set_global", "Global", Text, "").when("kind", &["set_global"]),
                field("value", "Value (expression)", Expression, "").when("kind", SET),
                field("string", "String (expression)", Expression, "").when("kind", SET),
                field("wait", "Wait", Text, "").when("kind", &["wait"]).placeholder("500ms, 5s, 1m"),
                field("event", "Event", Text, "").when("kind", &["event"]).help("Runs another event (8 levels deep at most); `input` passes on."),
            ],
            file_only: &[],
        },
    ],
    file_only: &[
        field("version", "Format version", Number, "Event").help("The event format's version: 1 (the default)."),
    ],
};

/// One Markdown table row per field: key, kind, where it applies, what it does.
fn reference_rows(out: &mut String, fields: &[Field], list: Option<&ListSpec>) {
    for field in fields {
        let applies = match (field.when, list) {
            (Some((_, kinds)), Some(list)) => kinds
                .iter()
                .map(|kind| {
                    list.kinds
                        .iter()
                        .find(|(k, ..)| k == kind)
                        .map_or_else(|| format!("`{kind}`"), |(_, label, _)| label.to_string())
                })
                .collect::<Vec<_>>()
                .join(", "),
            _ => "all".to_string(),
        };
        let mut what = field.label.to_string();
        if !field.help.is_empty() {
            what = format!("{what}. {}", field.help);
        }
        let choices: Vec<String> = field
            .choices
            .iter()
            .filter(|(value, _)| !value.is_empty())
            .map(|(value, _)| format!("`{value}`"))
            .collect();
        if !choices.is_empty() {
            what = format!("{what} One of {}.", choices.join(", "));
        }
        let kind = format!("{:?}", field.kind).to_lowercase();
        let kind = match field.kind {
            FieldKind::Expression => "expression".to_string(),
            FieldKind::Lines => "list of texts".to_string(),
            FieldKind::LongText => "text".to_string(),
            FieldKind::Select => "text (choice)".to_string(),
            _ => kind,
        };
        out.push_str(&format!(
            "| `{}` | {kind} | {applies} | {} |\n",
            field.key,
            what.replace('|', "\\|")
        ));
    }
}

/// The event file reference (Markdown tables of every key a file may hold), made from the schema
/// the forms use: printed in `events/README.md` and kept in step by a test.
pub fn event_reference_markdown() -> String {
    let form = &EVENT_FORM;
    let mut out = String::from("#### Top-level keys\n\n| key | kind | applies to | what it does |\n| --- | --- | --- | --- |\n");
    reference_rows(&mut out, form.fields, None);
    reference_rows(&mut out, form.file_only, None);
    for list in form.lists {
        out.push_str(&format!(
            "\n#### `[[{}]]`: {}\n\nEach `[[{}]]` is one of these kinds, told by the key it holds:\n\n| kind | marked by |\n| --- | --- |\n",
            list.key, list.label, list.key
        ));
        for (_, label, marker) in list.kinds {
            out.push_str(&format!("| {label} | `{marker}` |\n"));
        }
        out.push_str("\n| key | kind | applies to | what it does |\n| --- | --- | --- | --- |\n");
        reference_rows(&mut out, list.fields, Some(list));
        reference_rows(&mut out, list.file_only, Some(list));
    }
    out
}

/// The form of one event file: its name and each field as the file writes it.
pub type EventForm = Map<String, Json>;

/// A TOML value as the form shows it.
fn json_of(item: Option<&toml_edit::Item>, kind: FieldKind) -> Json {
    let Some(value) = item.and_then(|i| i.as_value()) else {
        return match kind {
            Lines => Json::Array(Vec::new()),
            Boolean => Json::Null,
            _ => Json::String(String::new()),
        };
    };
    match value {
        toml_edit::Value::String(s) => Json::String(s.value().clone()),
        toml_edit::Value::Integer(i) => Json::from(*i.value()),
        toml_edit::Value::Float(f) => {
            serde_json::Number::from_f64(*f.value()).map_or(Json::Null, Json::Number)
        }
        toml_edit::Value::Boolean(b) => Json::Bool(*b.value()),
        toml_edit::Value::Array(array) => Json::Array(
            array
                .iter()
                .map(|v| Json::String(v.as_str().map_or_else(|| v.to_string(), str::to_string)))
                .collect(),
        ),
        other => Json::String(other.to_string().trim().to_string()),
    }
}

/// A form value that cannot be written as its field's kind.
#[derive(Debug, thiserror::Error)]
enum FieldValueError {
    #[error("`{0}` is not a number")]
    NotANumber(String),
    #[error("`{value}` is not a {kind} value")]
    WrongKind { value: Json, kind: &'static str },
    #[error("`{0}` is not text")]
    NotText(Json),
}

/// What a form value writes: `None` removes the key (an empty text, an unset choice).
fn toml_of(
    value: Option<&Json>,
    field: &Field,
) -> Result<Option<toml_edit::Value>, FieldValueError> {
    let Some(value) = value else { return Ok(None) };
    Ok(match (field.kind, value) {
        (_, Json::Null) => None,
        (Boolean, Json::Bool(b)) => Some((*b).into()),
        (Number, Json::Number(n)) => Some(match n.as_i64() {
            Some(i) => i.into(),
            None => n.as_f64().unwrap_or_default().into(),
        }),
        (Number, Json::String(s)) if s.trim().is_empty() => None,
        (Number, Json::String(s)) => Some(match s.trim().parse::<i64>() {
            Ok(i) => i.into(),
            Err(_) => s
                .trim()
                .parse::<f64>()
                .map_err(|_| FieldValueError::NotANumber(s.clone()))?
                .into(),
        }),
        (Lines, Json::Array(items)) => {
            let lines: Vec<String> = items
                .iter()
                .filter_map(|i| i.as_str())
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            (!lines.is_empty()).then(|| toml_edit::Value::Array(lines.iter().collect()))
        }
        (Lines, Json::String(s)) => {
            let lines: Vec<&str> = s.lines().map(str::trim).filter(|l| !l.is_empty()).collect();
            (!lines.is_empty()).then(|| toml_edit::Value::Array(lines.iter().copied().collect()))
        }
        (_, Json::String(s)) if s.trim().is_empty() => None,
        (kind @ (Boolean | Number | Lines), other) => {
            return Err(FieldValueError::WrongKind {
                value: other.clone(),
                kind: match kind {
                    Boolean => "boolean",
                    Number => "number",
                    _ => "lines",
                },
            })
        }
        (_, Json::String(s)) => Some(s.trim().into()),
        (_, other) => return Err(FieldValueError::NotText(other.clone())),
    })
}

/// Writes `fields` of `values` into `table`: only keys whose value differs are touched (the
/// decor of a replaced value is kept); `allowed` fields absent from the form are removed.
fn apply_fields<'a>(
    table: &mut toml_edit::Table,
    fields: impl Iterator<Item = &'a Field>,
    values: &EventForm,
    at: &str,
    problems: &mut Vec<(String, String)>,
) {
    for field in fields {
        let new = match toml_of(values.get(field.key), field) {
            Ok(new) => new,
            Err(problem) => {
                problems.push((format!("{at}{}", field.key), problem.to_string()));
                continue;
            }
        };
        let current = json_of(table.get(field.key), field.kind);
        let wanted = json_of(new.clone().map(toml_edit::Item::Value).as_ref(), field.kind);
        if current == wanted {
            continue;
        }
        match new {
            None => {
                table.remove(field.key);
            }
            Some(mut value) => {
                if let Some(old) = table.get(field.key).and_then(|i| i.as_value()) {
                    *value.decor_mut() = old.decor().clone();
                }
                table.insert(field.key, toml_edit::Item::Value(value));
            }
        }
    }
}

/// The kind of a list item as the file writes it: the first kind whose marking key is set.
fn kind_of(list: &ListSpec, table: &toml_edit::Table) -> Option<&'static str> {
    list.kinds
        .iter()
        .find(|(_, _, marker)| table.contains_key(marker))
        .or_else(|| {
            // A device trigger may name the device by reference.
            (list.key == "trigger" && table.contains_key("device"))
                .then(|| list.kinds.iter().find(|(kind, _, _)| *kind == "device"))
                .flatten()
        })
        .map(|(kind, _, _)| *kind)
}

fn applies(field: &Field, kind: &str) -> bool {
    field.when.is_none_or(|(_, kinds)| kinds.contains(&kind))
}

/// The form of an event file's text.
pub(crate) fn event_form_of(name: &str, text: &str) -> Result<EventForm, toml_edit::TomlError> {
    let doc: toml_edit::DocumentMut = text.parse()?;
    let mut form = EventForm::new();
    for field in EVENT_FORM.fields {
        form.insert(field.key.into(), json_of(doc.get(field.key), field.kind));
    }
    form.insert("name".into(), Json::String(name.to_string()));
    for list in EVENT_FORM.lists {
        let items: Vec<Json> = doc
            .get(list.key)
            .and_then(|i| i.as_array_of_tables())
            .into_iter()
            .flat_map(|tables| tables.iter())
            .map(|table| {
                let kind = kind_of(list, table).unwrap_or_default();
                let mut item = Map::new();
                item.insert("kind".into(), Json::String(kind.to_string()));
                for field in list.fields.iter().filter(|f| applies(f, kind)) {
                    item.insert(field.key.into(), json_of(table.get(field.key), field.kind));
                }
                if list.key == "trigger" && kind == "device" {
                    item.insert("device".into(), json_of(table.get("device"), Number));
                }
                Json::Object(item)
            })
            .collect();
        form.insert(list.key.into(), Json::Array(items));
    }
    Ok(form)
}

/// Applies an event form to the file's document, in place.
fn apply_event_form(doc: &mut toml_edit::DocumentMut, form: &EventForm) -> Vec<(String, String)> {
    let mut problems = Vec::new();
    let top = EVENT_FORM.fields.iter().filter(|f| f.key != "name");
    apply_fields(doc.as_table_mut(), top, form, "", &mut problems);
    for list in EVENT_FORM.lists {
        let wanted: Vec<&Map<String, Json>> = form
            .get(list.key)
            .and_then(Json::as_array)
            .into_iter()
            .flatten()
            .filter_map(Json::as_object)
            .collect();
        if wanted.is_empty() && doc.get(list.key).is_none() {
            continue;
        }
        if !doc.get(list.key).is_some_and(|i| i.is_array_of_tables()) {
            doc.insert(list.key, toml_edit::Item::ArrayOfTables(Default::default()));
        }
        let Some(tables) = doc
            .get_mut(list.key)
            .and_then(|i| i.as_array_of_tables_mut())
        else {
            continue;
        };
        while tables.len() > wanted.len() {
            tables.remove(tables.len() - 1);
        }
        for (index, item) in wanted.iter().enumerate() {
            let at = format!("{}[{index}].", list.key);
            let kind = item.get("kind").and_then(Json::as_str).unwrap_or_default();
            let Some((_, _, marker)) = list.kinds.iter().find(|(k, _, _)| *k == kind) else {
                problems.push((
                    format!("{at}kind"),
                    format!("`{kind}` is not a kind of {}", list.key),
                ));
                continue;
            };
            if index >= tables.len() {
                tables.push(toml_edit::Table::new());
            }
            let Some(table) = tables.get_mut(index) else {
                continue;
            };
            // Keys of another kind go; what the schema does not know stays.
            let foreign: Vec<String> = list
                .fields
                .iter()
                .filter(|f| !applies(f, kind))
                .map(|f| f.key.to_string())
                .chain(
                    list.kinds
                        .iter()
                        .filter(|(k, _, m)| {
                            *k != kind
                                && !list.fields.iter().any(|f| f.key == *m && applies(f, kind))
                        })
                        .map(|(_, _, m)| m.to_string()),
                )
                .collect();
            for key in foreign {
                table.remove(&key);
            }
            // Kinds with nothing to say but themselves: `startup = true`, `webhook = true`.
            if matches!(kind, "startup" | "webhook") && !table.contains_key(marker) {
                table.insert(marker, toml_edit::value(true));
            }
            if kind == "device" && item.get("device").is_some_and(|d| !d.is_null() && d != "") {
                let reference = Field {
                    key: "device",
                    ..field("device", "", Number, "")
                };
                apply_fields(table, std::iter::once(&reference), item, &at, &mut problems);
            }
            apply_fields(
                table,
                list.fields.iter().filter(|f| applies(f, kind)),
                item,
                &at,
                &mut problems,
            );
        }
        if tables.is_empty() {
            doc.remove(list.key);
        }
    }
    problems
}

impl Engine {
    fn events_folder(&self) -> Result<(&ProfileSource, PathBuf), EditError> {
        let source = self.source.as_ref().ok_or(EditError::NoFolder)?;
        let dir = source.events_dir.clone().ok_or(EditError::NoFolder)?;
        Ok((source, dir))
    }

    /// The file an event is (or would be) kept in.
    fn event_file(&self, dir: &Path, name: &str) -> PathBuf {
        self.automation()
            .events()
            .get(name)
            .map(|e| e.file.clone())
            .unwrap_or_else(|| dir.join(format!("{name}.toml")))
    }

    /// The editor's form of an event, read from its file as written.
    pub fn event_form(&self, name: &str) -> Result<EventForm, EditError> {
        let (_, dir) = self.events_folder()?;
        let file = self.event_file(&dir, name);
        let text = std::fs::read_to_string(&file).map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => EditError::NotLoaded(name.to_string()),
            _ => EditError::Io(format!("{}: {e}", file.display())),
        })?;
        event_form_of(name, &text).map_err(|problem| {
            EditError::Invalid(vec![Diagnostic::error(
                &file,
                "",
                format!("not valid TOML: {problem}"),
            )])
        })
    }

    /// Saves an event from the editor into its file, in place; `path_name` is the event being
    /// edited (or created), the form's `name` its name afterwards (a different one renames the
    /// file). Nothing is written unless the result loads without errors.
    pub fn save_event(
        &self,
        path_name: &str,
        form: &EventForm,
    ) -> Result<super::editor::Saved, EditError> {
        let name = form
            .get("name")
            .and_then(Json::as_str)
            .unwrap_or(path_name)
            .trim()
            .to_string();
        super::saving::save(self, &mut EventSave { form, name }, path_name)
    }
}

/// Saving an event's form: its fields written as the schema says, checked like a loaded event
/// (and against the devices the hub has).
struct EventSave<'a> {
    form: &'a EventForm,
    /// The name afterwards.
    name: String,
}

impl FormSave for EventSave<'_> {
    const WHAT: &'static str = "event";

    fn new_name(&self) -> &str {
        &self.name
    }

    fn locate(&mut self, engine: &Engine, path_name: &str) -> Result<Located, EditError> {
        let (_, dir) = engine.events_folder()?;
        let file = engine.event_file(&dir, path_name);
        let original = read_or_new(&file)?;
        let renamed = self.name != path_name;
        let target = if renamed {
            let target = dir.join(format!("{}.toml", self.name));
            if target.exists() || engine.automation().events().get(&self.name).is_some() {
                return Err(EditError::NameTaken(self.name.clone()));
            }
            target
        } else {
            file.clone()
        };
        Ok(Located {
            file,
            original,
            target,
            renamed,
        })
    }

    fn apply(
        &mut self,
        _engine: &Engine,
        doc: &mut toml_edit::DocumentMut,
        located: &Located,
    ) -> Result<(), EditError> {
        let problems = apply_event_form(doc, self.form);
        if !problems.is_empty() {
            return Err(EditError::Invalid(
                problems
                    .into_iter()
                    .map(|(key, message)| Diagnostic::error(&located.target, key, message))
                    .collect(),
            ));
        }
        // A `name` key that disagrees with the new file name would be wrong now.
        if doc.get("name").is_some() {
            doc.insert("name", toml_edit::value(self.name.as_str()));
        }
        Ok(())
    }

    fn check(&self, engine: &Engine, located: &Located, text: &str) -> Result<(), EditError> {
        let (event, mut diagnostics) =
            crate::event::load_text(&located.target, text, &engine.profiles());
        diagnostics.retain(Diagnostic::is_error);
        let Some(event) = event.filter(|_| diagnostics.is_empty()) else {
            return Err(EditError::Invalid(diagnostics));
        };
        let mut check = crate::event::EventSet::default();
        check
            .events
            .insert(self.name.clone(), std::sync::Arc::new(event));
        super::automation::refuse_unknown_devices(&mut check, &engine.hub);
        if check.diagnostics.is_empty() {
            Ok(())
        } else {
            Err(EditError::Invalid(check.diagnostics))
        }
    }
}

/// Both schemas, as the API serves them.
pub(crate) fn schemas() -> BTreeMap<&'static str, &'static FormSchema> {
    BTreeMap::from([("profile", &PROFILE_FORM), ("event", &EVENT_FORM)])
}

/// The schemas as served, with the choices known only at run time filled in: the provider
/// select lists the provider definitions (`(id, name)`), after an empty choice.
pub fn schemas_with_providers(providers: &[(String, String)]) -> serde_json::Value {
    let mut value = serde_json::to_value(schemas()).unwrap_or_default();
    let choices: Vec<serde_json::Value> = std::iter::once(serde_json::json!([
        "",
        "None: the endpoints are written here"
    ]))
    .chain(
        providers
            .iter()
            .map(|(id, name)| serde_json::json!([id, name])),
    )
    .collect();
    if let Some(fields) = value["profile"]["fields"].as_array_mut() {
        for field in fields {
            if field["key"] == "provider" {
                field["choices"] = serde_json::Value::Array(choices.clone());
            }
        }
    }
    value
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys_of<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        crate::profile::raw::field_names::<T>()
    }

    fn described(fields: &[&[Field]]) -> Vec<&'static str> {
        let mut keys: Vec<&str> = fields
            .iter()
            .flat_map(|f| f.iter())
            .map(|f| f.key)
            .collect();
        keys.sort_unstable();
        keys.dedup();
        keys
    }

    /// The event reference (and the form) name every key an event file may hold, and no other:
    /// a key added to the file format without a word in the schema fails here.
    #[test]
    fn the_event_schema_describes_every_key_of_an_event_file() {
        use crate::event::raw::{RawAction, RawEvent, RawTrigger};
        let lists = |key: &str| {
            EVENT_FORM
                .lists
                .iter()
                .find(|l| l.key == key)
                .map(|l| described(&[l.fields, l.file_only]))
                .unwrap_or_default()
        };
        let mut top = described(&[EVENT_FORM.fields, EVENT_FORM.file_only]);
        top.extend(EVENT_FORM.lists.iter().map(|l| l.key));
        top.sort_unstable();
        assert_eq!(keys_of::<RawEvent>(), top);
        assert_eq!(keys_of::<RawTrigger>(), lists("trigger"));
        assert_eq!(keys_of::<RawAction>(), lists("action"));
    }

    /// One description: the profile schema lists exactly the editor form's fields.
    #[test]
    fn the_profile_schema_describes_every_field_of_the_profile_form() {
        let form =
            serde_json::to_value(super::super::editor::ProfileForm::default()).unwrap_or_default();
        let mut fields: Vec<&str> = form
            .as_object()
            .into_iter()
            .flat_map(|o| o.keys())
            .map(String::as_str)
            .filter(|k| *k != "read_only")
            .collect();
        let mut described: Vec<&str> = PROFILE_FORM.fields.iter().map(|f| f.key).collect();
        fields.sort_unstable();
        described.sort_unstable();
        assert_eq!(fields, described);
    }

    #[test]
    fn an_event_form_round_trips_and_edits_only_what_changed() {
        let text = "# the morning routine\nname = \"morning\"\ndescription = \"wake up\" # kept\nextra_note = 1\n\n[[trigger]]\ncron = \"0 7 * * *\"  # seven\n\n[[trigger]]\nprofile = \"hall\"\nroot = \"t\"\ncompare = \">\"\nto = 25\n\n[[action]]\nset_global = \"awake\"\nvalue = '1'\n";
        let form = event_form_of("morning", text).unwrap_or_default();
        assert_eq!(form["trigger"][0]["kind"], "cron");
        assert_eq!(form["trigger"][1]["kind"], "device");
        assert_eq!(form["trigger"][1]["to"], 25);
        assert_eq!(form["action"][0]["value"], "1");
        // Unchanged: the text stays byte for byte.
        let mut doc: toml_edit::DocumentMut = text.parse().unwrap_or_default();
        assert!(apply_event_form(&mut doc, &form).is_empty());
        assert_eq!(doc.to_string(), text);
        // One value changes, a trigger changes kind, an action is added.
        let mut edited = form.clone();
        edited["trigger"][0]["cron"] = Json::from("30 6 * * *");
        edited["trigger"][1] = serde_json::json!({"kind": "every", "every": "5m"});
        if let Some(actions) = edited["action"].as_array_mut() {
            actions.push(serde_json::json!({"kind": "wait", "wait": "1s"}));
        }
        let problems = apply_event_form(&mut doc, &edited);
        assert!(problems.is_empty(), "{problems:?}");
        let after = doc.to_string();
        assert!(
            after.contains("# the morning routine") && after.contains("# kept"),
            "{after}"
        );
        assert!(after.contains("extra_note = 1"), "{after}");
        assert!(after.contains("cron = \"30 6 * * *\"  # seven"), "{after}");
        assert!(
            after.contains("every = \"5m\"") && !after.contains("root ="),
            "{after}"
        );
        assert!(after.contains("wait = \"1s\""), "{after}");
        // A number field given text is a problem named by its key.
        let mut bad = edited.clone();
        bad["max_per_second"] = Json::from("lots");
        let problems = apply_event_form(&mut doc, &bad);
        assert_eq!(problems[0].0, "max_per_second");
    }
}
