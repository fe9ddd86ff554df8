//! Device mapping: evaluates a profile's device rules against a response and produces the
//! device updates, fanning out over list-valued names. An expression that fails leaves its
//! device alone and is reported; the other devices still update.

use std::sync::Arc;

use crate::devices::{DeviceKey, DeviceUpdate};
use crate::expr::{EvalError, EvalErrorKind, Scope, Span, Value};
use crate::profile::{DeviceMapping, DeviceRule};

/// A failed device expression: which box, which device, what went wrong.
#[derive(Debug, Clone, PartialEq)]
pub struct MappingError {
    pub target: String,
    pub error: EvalError,
}

pub struct MappingOutcome {
    pub updates: Vec<DeviceUpdate>,
    pub errors: Vec<MappingError>,
    /// The affect condition was false: nothing may be created or updated.
    pub not_affected: bool,
}

/// Longest device name, in bytes.
pub const MAX_DEVICE_NAME_BYTES: usize = 1024;

/// Evaluates the mapping. At most `max_devices` updates come out of one run: past that, the
/// rest are left alone and the run says so.
pub fn evaluate(
    profile: &str,
    mapping: &DeviceMapping,
    scope: &Scope<'_>,
    max_devices: usize,
) -> MappingOutcome {
    // A device per rule unless a name fans out: room for that many, made once.
    let rules: usize = mapping
        .roots
        .iter()
        .map(|rule| 1 + rule.features.len())
        .sum();
    let mut outcome = MappingOutcome {
        updates: Vec::with_capacity(rules.min(max_devices)),
        errors: Vec::new(),
        not_affected: false,
    };
    // One copy of the profile's name for every device of the run.
    let profile: Arc<str> = profile.into();
    if let Some(affect) = &mapping.affect {
        match affect.evaluate(scope) {
            Ok(value) if value.is_truthy() => {}
            Ok(_) => {
                outcome.not_affected = true;
                return outcome;
            }
            Err(error) => {
                outcome.errors.push(MappingError {
                    target: "affect".into(),
                    error,
                });
                return outcome;
            }
        }
    }
    for (position, rule) in mapping.roots.iter().enumerate() {
        let roots = match names(rule, scope) {
            Ok(roots) => roots,
            Err(error) => {
                outcome.errors.push(MappingError {
                    target: format!("root {} name", position + 1),
                    error,
                });
                continue;
            }
        };
        for (root_name, binding) in roots.each() {
            if outcome.updates.len() >= max_devices {
                outcome.errors.push(MappingError {
                    target: format!("root {} name", position + 1),
                    error: too_many(max_devices),
                });
                return outcome;
            }
            let root_scope = bind(scope, binding);
            let key = DeviceKey::root(profile.clone(), root_name.clone());
            push_update(
                rule,
                key,
                &root_scope,
                &|| format!("device `{root_name}`"),
                &mut outcome,
            );
            for (feature_position, feature) in rule.features.iter().enumerate() {
                let features = match names(feature, &root_scope) {
                    Ok(features) => features,
                    Err(error) => {
                        outcome.errors.push(MappingError {
                            target: format!(
                                "feature {} name of `{root_name}`",
                                feature_position + 1
                            ),
                            error,
                        });
                        continue;
                    }
                };
                for (feature_name, feature_binding) in features.each() {
                    if outcome.updates.len() >= max_devices {
                        outcome.errors.push(MappingError {
                            target: format!(
                                "feature {} name of `{root_name}`",
                                feature_position + 1
                            ),
                            error: too_many(max_devices),
                        });
                        return outcome;
                    }
                    let feature_scope = bind(&root_scope, feature_binding);
                    let key = DeviceKey::feature(
                        profile.clone(),
                        root_name.clone(),
                        feature_name.clone(),
                    );
                    let target = || format!("device `{root_name}` / `{feature_name}`");
                    push_update(feature, key, &feature_scope, &target, &mut outcome);
                }
            }
        }
    }
    outcome
}

fn too_many(max_devices: usize) -> EvalError {
    EvalError {
        kind: EvalErrorKind::Invalid(format!(
            "one run may create or update at most {max_devices} devices; the rest were left alone"
        )),
        span: Span::new(0, 0),
        column: 1,
    }
}

/// What a rule's name gave: no device (`null` or blank text), one, or one per list element
/// (each with its element and position, which the rule's other boxes read as `item` and
/// `index`). Held as the values themselves: a name is copied once, into its device's key.
enum Names {
    Nothing,
    One(Value),
    Each(Arc<Vec<Value>>),
}

impl Names {
    /// The values that name a device (a list's blank and `null` elements name none), with their
    /// position in a list.
    fn values(&self) -> impl Iterator<Item = (&Value, Option<usize>)> {
        let (one, each): (Option<&Value>, &[Value]) = match self {
            Names::Nothing => (None, &[]),
            Names::One(value) => (Some(value), &[]),
            Names::Each(items) => (None, items.as_slice()),
        };
        one.map(|value| (value, None)).into_iter().chain(
            each.iter()
                .enumerate()
                .filter(|(_, item)| !blank(item))
                .map(|(index, item)| (item, Some(index))),
        )
    }

    /// Each device's name (shared with the value when it is text), with its list element and
    /// position for a fanned-out name.
    fn each(&self) -> impl Iterator<Item = (Arc<str>, Option<(&Value, usize)>)> {
        self.values()
            .map(|(value, index)| (value.shared_text(), index.map(|index| (value, index))))
    }
}

/// Whether a name is no name (`null`, or text that is only spaces).
fn blank(value: &Value) -> bool {
    match value {
        Value::Null => true,
        Value::Number(_) | Value::Bool(_) => false,
        other => other.as_text().trim().is_empty(),
    }
}

fn bind<'a>(scope: &Scope<'a>, binding: Option<(&'a Value, usize)>) -> Scope<'a> {
    match binding {
        Some((item, index)) => scope.with_item(item, index),
        None => Scope {
            input: scope.input,
            item: scope.item,
            index: scope.index,
            env: scope.env,
        },
    }
}

/// Evaluates a rule's name: one device, none (`null` or empty), or one per list element.
fn names(rule: &DeviceRule, scope: &Scope<'_>) -> Result<Names, EvalError> {
    let named = match rule.name.evaluate(scope)? {
        Value::List(items) => Names::Each(items),
        other if blank(&other) => Names::Nothing,
        other => Names::One(other),
    };
    // (A number's or a boolean's text is short: only the others are measured.)
    let long = named.values().find_map(|(value, _)| match value {
        Value::Number(_) | Value::Bool(_) => None,
        other => Some(other.as_text().len()).filter(|&size| size > MAX_DEVICE_NAME_BYTES),
    });
    if let Some(size) = long {
        return Err(EvalError {
            kind: EvalErrorKind::TooLarge {
                what: "device name",
                size,
                limit: MAX_DEVICE_NAME_BYTES,
            },
            span: Span::new(0, rule.name.source().len()),
            column: 1,
        });
    }
    Ok(named)
}

fn push_update(
    rule: &DeviceRule,
    key: DeviceKey,
    scope: &Scope<'_>,
    // Named only when something went wrong (most runs: never).
    target: &dyn Fn() -> String,
    outcome: &mut MappingOutcome,
) {
    let errors = &mut outcome.errors;
    let mut evaluate =
        |expression: &Option<crate::expr::Expression>, what: &str| -> Result<Value, ()> {
            match expression {
                None => Ok(Value::Null),
                Some(e) => e.evaluate(scope).map_err(|error| {
                    errors.push(MappingError {
                        target: format!("{} {what}", target()),
                        error,
                    })
                }),
            }
        };
    let (Ok(value), Ok(string)) = (
        evaluate(&rule.value, "value"),
        evaluate(&rule.string, "string"),
    ) else {
        return;
    };
    let mut update = DeviceUpdate {
        key,
        value: None,
        string: None,
    };
    if value.as_number().is_some_and(|n| !n.is_finite()) {
        errors.push(MappingError {
            target: format!("{} value", target()),
            error: EvalError {
                kind: EvalErrorKind::NotFinite,
                span: Span::new(0, 0),
                column: 1,
            },
        });
        return;
    }
    match value {
        Value::Null => {}
        Value::Number(n) => update.value = Some(n),
        Value::Bool(b) => update.value = Some(if b { 1.0 } else { 0.0 }),
        other => match other.as_number() {
            Some(n) => update.value = Some(n),
            // The family's rule: a value box that gives text sets the device's string.
            None => update.string = Some(other.shared_text()),
        },
    }
    if !string.is_null() {
        update.string = Some(string.shared_text());
    }
    outcome.updates.push(update);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::{Document, EmptyEnvironment};
    use crate::secret::SecretSource;

    /// An update as (key, value, string).
    type Seen = (String, Option<f64>, Option<String>);

    /// A profile `t` with the `[[device]]` text `devices`.
    fn profile_with(devices: &str) -> crate::profile::Profile {
        let text = format!("version = 1\n[request]\nurl = \"http://127.0.0.1:9/\"\n{devices}");
        let (profile, diagnostics) = crate::profile::load_text(
            std::path::Path::new("t.toml"),
            &text,
            &SecretSource::default(),
        );
        profile.unwrap_or_else(|| panic!("{diagnostics:?}"))
    }

    /// The updates and errors of a profile's `[[device]]` text over `input`.
    fn mapped(devices: &str, input: &str) -> (Vec<Seen>, Vec<String>) {
        let profile = profile_with(devices);
        let document = Document::new(input, Default::default());
        let outcome = evaluate(
            "t",
            &profile.mapping,
            &Scope::new(&document, &EmptyEnvironment),
            100,
        );
        let updates = outcome
            .updates
            .iter()
            .map(|u| {
                let key = match &u.key.feature {
                    Some(feature) => format!("{}/{feature}", u.key.root),
                    None => u.key.root.to_string(),
                };
                (key, u.value, u.string.as_deref().map(str::to_string))
            })
            .collect();
        let errors = outcome
            .errors
            .iter()
            .map(|e| format!("{}: {}", e.target, e.error))
            .collect();
        (updates, errors)
    }

    #[test]
    fn a_run_keys_its_devices_under_shared_names() {
        let profile = profile_with(
            "[[device]]\nname = '\"Kitchen\"'\nstring = 'JSON(input, \"room\")'\n[[device.feature]]\nname = '\"temp\"'\nvalue = '1'\n[[device]]\nname = '\"Hall\"'\nvalue = '2'\n",
        );
        let document = Document::new(r#"{"room":"warm"}"#, Default::default());
        let scope = Scope::new(&document, &EmptyEnvironment);
        let outcome = evaluate("t", &profile.mapping, &scope, 100);
        let keys: Vec<&DeviceKey> = outcome.updates.iter().map(|u| &u.key).collect();
        assert_eq!(keys.len(), 3);
        // One copy of the profile's name for the run; a feature shares its root's name.
        assert!(keys.iter().all(|k| &*k.profile == "t"));
        assert!(Arc::ptr_eq(&keys[0].profile, &keys[2].profile));
        assert!(Arc::ptr_eq(&keys[0].root, &keys[1].root));
        assert_eq!(keys[1].feature.as_deref(), Some("temp"));
        // A name written as text is the expression's own text, not a copy of it.
        let again = evaluate("t", &profile.mapping, &scope, 100);
        assert!(Arc::ptr_eq(&keys[2].root, &again.updates[2].key.root));
        assert_eq!(outcome.updates[0].string.as_deref(), Some("warm"));
    }

    #[test]
    fn a_list_name_skips_null_and_blank_elements_and_keeps_their_positions() {
        let (updates, errors) = mapped(
            "[[device]]\nname = 'JSON(input, \"rooms\")'\nvalue = 'index'\n[[device.feature]]\nname = 'item'\nstring = '\"of \" + item'\n",
            r#"{"rooms": ["Hall", null, "  ", 7, "Attic"]}"#,
        );
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(
            updates,
            vec![
                ("Hall".into(), Some(0.0), None),
                ("Hall/Hall".into(), None, Some("of Hall".into())),
                ("7".into(), Some(3.0), None),
                ("7/7".into(), None, Some("of 7".into())),
                ("Attic".into(), Some(4.0), None),
                ("Attic/Attic".into(), None, Some("of Attic".into())),
            ]
        );
    }

    #[test]
    fn a_single_name_may_be_a_number_a_blank_or_too_long() {
        let (updates, _) = mapped("[[device]]\nname = '21.5'\nvalue = '1'\n", "{}");
        assert_eq!(updates, vec![("21.5".into(), Some(1.0), None)]);
        let (updates, errors) = mapped("[[device]]\nname = '\"   \"'\nvalue = '1'\n", "{}");
        assert!(
            updates.is_empty() && errors.is_empty(),
            "{updates:?} {errors:?}"
        );
        let (updates, errors) = mapped(
            "[[device]]\nname = 'input'\nvalue = '1'\n",
            &"x".repeat(MAX_DEVICE_NAME_BYTES + 1),
        );
        assert!(updates.is_empty());
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert!(
            errors[0].starts_with("root 1 name") && errors[0].contains("1025"),
            "{errors:?}"
        );
        // A long name inside a list is refused the same way.
        let long = "y".repeat(MAX_DEVICE_NAME_BYTES + 5);
        let (updates, errors) = mapped(
            "[[device]]\nname = 'JSON(input, \"names\")'\nvalue = '1'\n",
            &format!(r#"{{"names": ["ok", "{long}"]}}"#),
        );
        assert!(updates.is_empty(), "{updates:?}");
        assert!(errors[0].contains("1029"), "{errors:?}");
    }
}
