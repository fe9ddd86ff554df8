//! Raw → resolved: parses an event file, checks every trigger, condition and action, compiles
//! every expression and template, and checks the names it refers to, collecting every problem.

use std::path::Path;
use std::sync::Arc;

use super::raw::{RawAction, RawEvent, RawTrigger};
use super::schedule::{self, Schedule};
use super::{
    Action, ChangeKind, Comparison, DeviceSelector, DeviceTrigger, ErrorClass, ErrorTrigger, Event,
    EventSet, InputMatcher, OnError, Retrigger, Trigger,
};
use crate::expr::{Expression, Template};
use crate::profile::diagnostic::Collector;
use crate::profile::{config_files, read_config_file, Diagnostic, ProfileSet};

const SUPPORTED_VERSION: u32 = 1;
/// Most triggers, conditions or actions one event may have.
const MAX_PARTS: usize = 100;

pub fn load_dir(dir: &Path, profiles: &ProfileSet) -> EventSet {
    let mut set = EventSet::default();
    // The events folder is optional: a missing one is an empty set.
    let files = match config_files(dir, "events", true) {
        Ok(files) => files,
        Err(diagnostic) => {
            set.diagnostics.push(diagnostic);
            return set;
        }
    };
    let mut loaded: Vec<(Event, String)> = Vec::new();
    for file in files {
        let text = match read_config_file(&file) {
            Ok(text) => text,
            Err(diagnostic) => {
                set.diagnostics.push(diagnostic);
                continue;
            }
        };
        let (event, diagnostics) = load(&file, &text, profiles);
        set.diagnostics.extend(diagnostics);
        loaded.extend(event.map(|event| (event, text)));
    }
    // Two files claiming one name: both fail, neither wins.
    let mut by_name: std::collections::BTreeMap<String, Vec<(Event, String)>> = Default::default();
    for (event, text) in loaded {
        by_name
            .entry(event.name.clone())
            .or_default()
            .push((event, text));
    }
    let names: Vec<String> = by_name
        .iter()
        .filter(|(_, claims)| claims.len() == 1)
        .map(|(name, _)| name.clone())
        .collect();
    for (name, claims) in by_name {
        let count = claims.len();
        for (event, text) in claims {
            let mut c = Collector::new(&event.file, &text);
            if count > 1 {
                c.error(
                    "name",
                    format!("event name `{name}` is claimed by {count} files: none is loaded until they differ"),
                );
            }
            // An event may run only events that exist.
            for (index, action) in event.actions.iter().enumerate() {
                if let Action::Event(other) = action {
                    if !names.contains(other) {
                        c.error(
                            &format!("action[{index}].event"),
                            format!("the action runs event `{other}`, which is not loaded"),
                        );
                    }
                }
            }
            if c.diagnostics.is_empty() {
                set.events.insert(name.clone(), Arc::new(event));
            } else {
                set.diagnostics.extend(c.diagnostics);
            }
        }
    }
    set
}

pub fn load(file: &Path, text: &str, profiles: &ProfileSet) -> (Option<Event>, Vec<Diagnostic>) {
    let mut c = Collector::new(file, text);
    let Some(raw) = c.parse::<RawEvent>() else {
        return (None, c.diagnostics);
    };
    let event = resolve(raw, &mut c, profiles);
    if c.has_errors() {
        (None, c.diagnostics)
    } else {
        (event, c.diagnostics)
    }
}

fn expression(c: &mut Collector<'_>, key: &str, source: &str) -> Option<Expression> {
    match Expression::compile(source) {
        Ok(e) => Some(e),
        Err(errors) => {
            c.compile_errors(key, source, 0, errors);
            None
        }
    }
}

fn profile_exists(c: &mut Collector<'_>, key: &str, name: &str, profiles: &ProfileSet) -> bool {
    if profiles.get(name).is_some() {
        true
    } else {
        c.error(key, format!("no profile named `{name}` is loaded"));
        false
    }
}

/// Warns when a device trigger names a device its profile does not make (a trigger that can
/// never fire), or says that it cannot be checked when the profile computes its names.
fn device_named(
    c: &mut Collector<'_>,
    at: &dyn Fn(&str) -> String,
    profile: &str,
    root: &str,
    feature: Option<&str>,
    profiles: &ProfileSet,
) {
    let Some(found) = profiles.get(profile) else {
        return;
    };
    let list = |names: &[String]| {
        if names.is_empty() {
            "none".to_string()
        } else {
            names.join(", ")
        }
    };
    match (found.mapping.naming(root, feature), feature) {
        (crate::profile::Naming::Made, _) => {}
        (crate::profile::Naming::Computed, _) => c.warning(
            &at("root"),
            format!(
                "profile `{profile}` computes its device names when it runs, so whether it makes this device cannot be checked here"
            ),
        ),
        (crate::profile::Naming::NotMade { known }, Some(feature))
            if found.mapping.naming(root, None) == crate::profile::Naming::Made =>
        {
            c.warning(
                &at("feature"),
                format!(
                    "root `{root}` of profile `{profile}` has no feature `{feature}` (its features: {}): this trigger never fires",
                    list(&known)
                ),
            )
        }
        (crate::profile::Naming::NotMade { .. }, _) => c.warning(
            &at("root"),
            format!(
                "profile `{profile}` makes no root device `{root}` (its roots: {}): this trigger never fires",
                list(&found.mapping.literal_roots())
            ),
        ),
    }
}

fn resolve(raw: RawEvent, c: &mut Collector<'_>, profiles: &ProfileSet) -> Option<Event> {
    let name = c.version_and_name("event", raw.version, SUPPORTED_VERSION, raw.name.clone());
    let on_error = match raw.on_error.as_deref().unwrap_or("stop") {
        "stop" => Some(OnError::Stop),
        "continue" => Some(OnError::Continue),
        other => {
            c.error(
                "on_error",
                format!("on_error `{other}` is not `stop` or `continue`"),
            );
            None
        }
    };
    let retrigger = match raw.retrigger.as_deref().unwrap_or("skip") {
        "skip" => Some(Retrigger::Skip),
        "queue" => Some(Retrigger::Queue),
        "parallel" => Some(Retrigger::Parallel),
        other => {
            c.error(
                "retrigger",
                format!("retrigger `{other}` is not `skip`, `queue` or `parallel`"),
            );
            None
        }
    };
    for (key, count) in [
        ("trigger", raw.trigger.len()),
        ("conditions", raw.conditions.len()),
        ("action", raw.action.len()),
    ] {
        if count > MAX_PARTS {
            c.error(
                key,
                format!("an event may have at most {MAX_PARTS} of these, not {count}"),
            );
        }
    }
    let max_per_second = raw.max_per_second.unwrap_or(super::DEFAULT_MAX_PER_SECOND);
    if !(1..=10_000).contains(&max_per_second) {
        c.error(
            "max_per_second",
            "max_per_second must be between 1 and 10000",
        );
    }
    if raw.trigger.is_empty() {
        c.warning(
            "trigger",
            "the event has no trigger: it runs only through its API (Run now)",
        );
    }
    if raw.action.is_empty() {
        c.error("action", "an event needs at least one `[[action]]`");
    }
    let triggers: Vec<Option<Trigger>> = raw
        .trigger
        .iter()
        .enumerate()
        .map(|(i, t)| trigger(c, &format!("trigger[{i}]"), t, profiles))
        .collect();
    let conditions: Vec<Option<Expression>> = raw
        .conditions
        .iter()
        .map(|source| expression(c, "conditions", source))
        .collect();
    let actions: Vec<Option<Action>> = raw
        .action
        .iter()
        .enumerate()
        .map(|(i, a)| action(c, &format!("action[{i}]"), a, profiles))
        .collect();
    Some(Event {
        name,
        file: c.file.to_path_buf(),
        description: raw.description,
        enabled: raw.enabled.unwrap_or(true),
        triggers: triggers.into_iter().collect::<Option<Vec<_>>>()?,
        conditions: conditions.into_iter().collect::<Option<Vec<_>>>()?,
        actions: actions.into_iter().collect::<Option<Vec<_>>>()?,
        on_error: on_error?,
        retrigger: retrigger?,
        max_per_second,
        home_assistant_button: raw.home_assistant_button.unwrap_or(true),
    })
}

/// The kinds a trigger table sets; exactly one is allowed.
fn trigger_kinds(t: &RawTrigger) -> Vec<&'static str> {
    [
        ("every", t.every.is_some()),
        ("cron", t.cron.is_some()),
        ("startup", t.startup.is_some()),
        ("webhook", t.webhook.is_some()),
        ("input", t.input.is_some()),
        ("device", t.device.is_some() || t.root.is_some()),
        ("global", t.global.is_some()),
        ("error", t.error.is_some()),
    ]
    .into_iter()
    .filter_map(|(kind, set)| set.then_some(kind))
    .collect()
}

fn trigger(
    c: &mut Collector<'_>,
    key: &str,
    t: &RawTrigger,
    profiles: &ProfileSet,
) -> Option<Trigger> {
    let kinds = trigger_kinds(t);
    let [kind] = kinds.as_slice() else {
        c.error(
            key,
            if kinds.is_empty() {
                "a trigger needs one of every, cron, startup, webhook, input, device (or root), global, error".to_string()
            } else {
                format!("a trigger has one kind, not {}", kinds.join(" and "))
            },
        );
        return None;
    };
    let at = |field: &str| format!("{key}.{field}");
    match *kind {
        "every" => Schedule::every(t.every.as_deref().unwrap_or_default())
            .map_err(|e| c.error(&at("every"), e))
            .ok()
            .map(Trigger::Schedule),
        "cron" => Schedule::cron(t.cron.as_deref().unwrap_or_default())
            .map_err(|e| c.error(&at("cron"), e))
            .ok()
            .map(Trigger::Schedule),
        "startup" => Some(Trigger::Startup),
        "webhook" => Some(Trigger::Webhook),
        "input" => {
            let profile = t.input.clone().unwrap_or_default();
            let known = profile_exists(c, &at("input"), &profile, profiles);
            let matcher = input_matcher(c, key, t)?;
            known.then_some(Trigger::Input { profile, matcher })
        }
        "device" => {
            let device = match (t.device, &t.profile, &t.root) {
                (Some(reference), None, None) => DeviceSelector::Reference(reference),
                (None, Some(profile), Some(root)) => {
                    if !profile_exists(c, &at("profile"), profile, profiles) {
                        return None;
                    }
                    device_named(c, &at, profile, root, t.feature.as_deref(), profiles);
                    DeviceSelector::Named {
                        profile: profile.clone(),
                        root: root.clone(),
                        feature: t.feature.clone(),
                    }
                }
                _ => {
                    c.error(
                        key,
                        "a device trigger names `device = <ref>`, or `profile` and `root` (and `feature`)",
                    );
                    return None;
                }
            };
            let changes = match t.changes.as_deref().unwrap_or("any") {
                "value" => ChangeKind::Value,
                "string" => ChangeKind::String,
                "any" => ChangeKind::Any,
                other => {
                    c.error(
                        &at("changes"),
                        format!("changes `{other}` is not `value`, `string` or `any`"),
                    );
                    return None;
                }
            };
            let compare = comparison(c, key, t)?;
            let crossing = t.crossing.unwrap_or(false);
            if crossing && compare.is_none() {
                c.error(
                    &at("crossing"),
                    "`crossing` needs `compare` and `to`: the value crosses into that comparison",
                );
                return None;
            }
            Some(Trigger::Device(DeviceTrigger {
                device,
                changes,
                compare,
                crossing,
            }))
        }
        "global" => Some(Trigger::Global {
            name: t.global.clone().unwrap_or_default(),
        }),
        _ => {
            let profile = t.error.clone().unwrap_or_default();
            let profile = if profile == "*" {
                None
            } else if profile_exists(c, &at("error"), &profile, profiles) {
                Some(profile)
            } else {
                return None;
            };
            let class = match t.class.as_deref() {
                None => None,
                Some(text) => match ErrorClass::parse(text) {
                    Some(class) => Some(class),
                    None => {
                        c.error(&at("class"), format!("class `{text}` is not one of connection, http_status, authorization, expression, malformed_response"));
                        return None;
                    }
                },
            };
            Some(Trigger::Error(ErrorTrigger { profile, class }))
        }
    }
}

/// `compare` and `to` go together.
fn comparison(
    c: &mut Collector<'_>,
    key: &str,
    t: &RawTrigger,
) -> Option<Option<(Comparison, f64)>> {
    match (&t.compare, t.to) {
        (None, None) => Some(None),
        (Some(text), Some(to)) if to.is_finite() => match Comparison::parse(text) {
            Some(compare) => Some(Some((compare, to))),
            None => {
                c.error(
                    &format!("{key}.compare"),
                    format!("`{text}` is not one of = != < <= > >="),
                );
                None
            }
        },
        _ => {
            c.error(key, "`compare` and `to` (a finite number) go together");
            None
        }
    }
}

fn input_matcher(c: &mut Collector<'_>, key: &str, t: &RawTrigger) -> Option<InputMatcher> {
    let at = |field: &str| format!("{key}.{field}");
    let set: Vec<&str> = [
        ("text", t.text.is_some()),
        ("expression", t.expression.is_some()),
        ("number", t.number.is_some()),
        ("onoff", t.onoff.is_some()),
    ]
    .into_iter()
    .filter_map(|(kind, set)| set.then_some(kind))
    .collect();
    match set.as_slice() {
        ["text"] => {
            let position = t.position.unwrap_or(0);
            let Ok(position) = usize::try_from(position) else {
                c.error(
                    &at("position"),
                    format!(
                        "position {position} is not 0 (anywhere) or a 1-based character position"
                    ),
                );
                return None;
            };
            Some(InputMatcher::Text {
                text: t.text.clone().unwrap_or_default(),
                position,
            })
        }
        ["expression"] => expression(
            c,
            &at("expression"),
            t.expression.as_deref().unwrap_or_default(),
        )
        .map(InputMatcher::Expression),
        ["number"] => {
            let index = t.number.unwrap_or(0);
            let Ok(index) = usize::try_from(index) else {
                c.error(
                    &at("number"),
                    format!("number {index} is not a 0-based position"),
                );
                return None;
            };
            match comparison(c, key, t)? {
                Some((compare, to)) => Some(InputMatcher::Number { index, compare, to }),
                None => {
                    c.error(key, "the number matcher needs `compare` and `to`");
                    None
                }
            }
        }
        ["onoff"] => {
            let on = match t.onoff.as_deref().map(str::to_ascii_lowercase).as_deref() {
                Some("on") => true,
                Some("off") => false,
                _ => {
                    c.error(&at("onoff"), "onoff is `on` or `off`");
                    return None;
                }
            };
            let index = match t.index {
                None => None,
                Some(i) => match usize::try_from(i) {
                    Ok(i) => Some(i),
                    Err(_) => {
                        c.error(&at("index"), format!("index {i} is not a 0-based position"));
                        return None;
                    }
                },
            };
            Some(InputMatcher::OnOff { on, index })
        }
        [] => {
            c.error(
                key,
                "an input trigger needs a matcher: text, expression, number or onoff",
            );
            None
        }
        many => {
            c.error(
                key,
                format!(
                    "an input trigger has one matcher, not {}",
                    many.join(" and ")
                ),
            );
            None
        }
    }
}

fn action(
    c: &mut Collector<'_>,
    key: &str,
    a: &RawAction,
    profiles: &ProfileSet,
) -> Option<Action> {
    let at = |field: &str| format!("{key}.{field}");
    let kinds: Vec<&str> = [
        ("run", a.run.is_some()),
        ("set_device", a.set_device.is_some()),
        ("set_global", a.set_global.is_some()),
        ("wait", a.wait.is_some()),
        ("event", a.event.is_some()),
    ]
    .into_iter()
    .filter_map(|(kind, set)| set.then_some(kind))
    .collect();
    let [kind] = kinds.as_slice() else {
        c.error(
            key,
            if kinds.is_empty() {
                "an action needs one of run, set_device, set_global, wait, event".to_string()
            } else {
                format!("an action has one kind, not {}", kinds.join(" and "))
            },
        );
        return None;
    };
    let value_and_string =
        |c: &mut Collector<'_>| -> Option<(Option<Expression>, Option<Expression>)> {
            if a.value.is_none() && a.string.is_none() {
                c.error(key, "set `value` and/or `string` (expressions)");
                return None;
            }
            let value = match &a.value {
                Some(source) => Some(expression(c, &at("value"), source)?),
                None => None,
            };
            let string = match &a.string {
                Some(source) => Some(expression(c, &at("string"), source)?),
                None => None,
            };
            Some((value, string))
        };
    match *kind {
        "run" => {
            let profile = a.run.clone().unwrap_or_default();
            let known = profile_exists(c, &at("run"), &profile, profiles);
            let source = a.text.as_deref().unwrap_or("");
            let text = match Template::compile(source) {
                Ok(t) => Some(t),
                Err(errors) => {
                    c.compile_errors(&at("text"), source, 0, errors);
                    None
                }
            };
            known.then_some(Action::Run {
                profile,
                text: text?,
            })
        }
        "set_device" => {
            let (value, string) = value_and_string(c)?;
            Some(Action::SetDevice {
                reference: a.set_device.unwrap_or_default(),
                value,
                string,
            })
        }
        "set_global" => {
            let name = a.set_global.clone().unwrap_or_default();
            if name.trim().is_empty() {
                c.error(&at("set_global"), "a global variable needs a name");
                return None;
            }
            let (value, string) = value_and_string(c)?;
            Some(Action::SetGlobal {
                name,
                value,
                string,
            })
        }
        "wait" => {
            let text = a.wait.as_deref().unwrap_or_default();
            match schedule::parse_duration(text) {
                Ok(d) if d <= schedule::MAX_INTERVAL => Some(Action::Wait(d)),
                Ok(_) => {
                    c.error(&at("wait"), "a wait may be at most 366d");
                    None
                }
                Err(e) => {
                    c.error(&at("wait"), e);
                    None
                }
            }
        }
        _ => Some(Action::Event(a.event.clone().unwrap_or_default())),
    }
}
