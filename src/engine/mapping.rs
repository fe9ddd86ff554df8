//! Device mapping: evaluates a profile's device rules against a response and produces the
//! device updates, fanning out over list-valued names. An expression that fails leaves its
//! device alone and is reported; the other devices still update.

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
    let mut outcome = MappingOutcome {
        updates: Vec::new(),
        errors: Vec::new(),
        not_affected: false,
    };
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
        for (root_name, binding) in &roots {
            if outcome.updates.len() >= max_devices {
                outcome.errors.push(MappingError {
                    target: format!("root {} name", position + 1),
                    error: too_many(max_devices),
                });
                return outcome;
            }
            let root_scope = bind(scope, binding);
            let key = DeviceKey::root(profile, root_name);
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
                for (feature_name, feature_binding) in &features {
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
                    let key = DeviceKey::feature(profile, root_name, feature_name);
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

/// A device name and, for a fanned-out name, the list element and its position.
type Named = (String, Option<(Value, usize)>);

fn bind<'a>(scope: &Scope<'a>, binding: &'a Option<(Value, usize)>) -> Scope<'a> {
    match binding {
        Some((item, index)) => scope.with_item(item, *index),
        None => Scope {
            input: scope.input,
            item: scope.item,
            index: scope.index,
            env: scope.env,
        },
    }
}

/// Evaluates a rule's name: one device, none (`null` or empty), or one per list element.
fn names(rule: &DeviceRule, scope: &Scope<'_>) -> Result<Vec<Named>, EvalError> {
    let named = names_unchecked(rule, scope)?;
    if let Some((long, _)) = named
        .iter()
        .find(|(name, _)| name.len() > MAX_DEVICE_NAME_BYTES)
    {
        return Err(EvalError {
            kind: EvalErrorKind::TooLarge {
                what: "device name",
                size: long.len(),
                limit: MAX_DEVICE_NAME_BYTES,
            },
            span: Span::new(0, rule.name.source().len()),
            column: 1,
        });
    }
    Ok(named)
}

fn names_unchecked(rule: &DeviceRule, scope: &Scope<'_>) -> Result<Vec<Named>, EvalError> {
    Ok(match rule.name.evaluate(scope)? {
        Value::Null => Vec::new(),
        Value::List(items) => items
            .iter()
            .enumerate()
            .filter(|(_, item)| !item.is_null() && !item.to_text().trim().is_empty())
            .map(|(index, item)| (item.to_text(), Some((item.clone(), index))))
            .collect(),
        other => {
            let text = other.to_text();
            if text.trim().is_empty() {
                Vec::new()
            } else {
                vec![(text, None)]
            }
        }
    })
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
            None => update.string = Some(other.to_text()),
        },
    }
    if !string.is_null() {
        update.string = Some(string.to_text());
    }
    outcome.updates.push(update);
}
