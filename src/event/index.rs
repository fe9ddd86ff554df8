//! The triggers of a loaded event set, indexed by what they wait for — a device (by reference or
//! by profile/root/feature), a global, a profile's input, a profile's errors — so that what
//! happens in the hub is matched against the few triggers that wait for it, never by scanning
//! every event. Built once per (re)load.

use std::collections::HashMap;
use std::sync::Arc;

use super::{DeviceSelector, DeviceTrigger, ErrorClass, EventSet, InputMatcher, Schedule, Trigger};

/// A trigger and the event it fires.
#[derive(Debug, Clone)]
pub struct Indexed<T> {
    pub event: Arc<str>,
    pub trigger: T,
}

impl<T> Indexed<T> {
    fn new(event: &Arc<str>, trigger: T) -> Indexed<T> {
        Indexed {
            event: event.clone(),
            trigger,
        }
    }
}

#[derive(Debug, Default)]
pub struct TriggerIndex {
    device_refs: HashMap<u64, Vec<Indexed<DeviceTrigger>>>,
    device_keys: HashMap<String, Vec<Indexed<DeviceTrigger>>>,
    globals: HashMap<String, Vec<Arc<str>>>,
    inputs: HashMap<String, Vec<Indexed<InputMatcher>>>,
    /// Keyed by profile; `None`: errors of any profile.
    errors: HashMap<Option<String>, Vec<Indexed<Option<ErrorClass>>>>,
    /// Every schedule of an enabled event.
    pub schedules: Vec<Indexed<Schedule>>,
}

/// The key of a named device: profile, root and feature, unambiguously joined.
fn device_key(profile: &str, root: &str, feature: Option<&str>) -> String {
    let mut key = String::with_capacity(profile.len() + root.len() + 8);
    for part in [profile, root, feature.unwrap_or_default()] {
        key.push_str(&part.len().to_string());
        key.push(':');
        key.push_str(part);
    }
    if feature.is_none() {
        key.push('-');
    }
    key
}

impl TriggerIndex {
    pub fn build(set: &EventSet) -> TriggerIndex {
        let mut index = TriggerIndex::default();
        for (name, event) in &set.events {
            let name: Arc<str> = name.as_str().into();
            for trigger in &event.triggers {
                match trigger {
                    Trigger::Device(device) => {
                        let entry = Indexed::new(&name, device.clone());
                        match &device.device {
                            DeviceSelector::Reference(reference) => {
                                index.device_refs.entry(*reference).or_default().push(entry)
                            }
                            DeviceSelector::Named {
                                profile,
                                root,
                                feature,
                            } => index
                                .device_keys
                                .entry(device_key(profile, root, feature.as_deref()))
                                .or_default()
                                .push(entry),
                        }
                    }
                    Trigger::Global { name: global } => index
                        .globals
                        .entry(global.clone())
                        .or_default()
                        .push(name.clone()),
                    Trigger::Input { profile, matcher } => index
                        .inputs
                        .entry(profile.clone())
                        .or_default()
                        .push(Indexed::new(&name, matcher.clone())),
                    Trigger::Error(error) => index
                        .errors
                        .entry(error.profile.clone())
                        .or_default()
                        .push(Indexed::new(&name, error.class)),
                    Trigger::Schedule(schedule) if event.enabled => {
                        index.schedules.push(Indexed::new(&name, schedule.clone()))
                    }
                    Trigger::Schedule(_) | Trigger::Startup | Trigger::Webhook => {}
                }
            }
        }
        index
    }

    /// The triggers waiting for a device, by its reference or its name.
    pub fn device(
        &self,
        reference: u64,
        profile: &str,
        root: &str,
        feature: Option<&str>,
    ) -> impl Iterator<Item = &Indexed<DeviceTrigger>> {
        let by_reference = self.device_refs.get(&reference).into_iter().flatten();
        let by_name = (!self.device_keys.is_empty())
            .then(|| self.device_keys.get(&device_key(profile, root, feature)))
            .flatten()
            .into_iter()
            .flatten();
        by_reference.chain(by_name)
    }

    /// The events waiting for a global.
    pub fn global(&self, name: &str) -> &[Arc<str>] {
        self.globals.get(name).map_or(&[], Vec::as_slice)
    }

    /// The input matchers waiting for what a profile receives.
    pub fn input(&self, profile: &str) -> &[Indexed<InputMatcher>] {
        self.inputs.get(profile).map_or(&[], Vec::as_slice)
    }

    /// The error triggers for a profile's errors (its own, then those for any profile).
    pub fn errors(&self, profile: &str) -> impl Iterator<Item = &Indexed<Option<ErrorClass>>> {
        let own = (!self.errors.is_empty())
            .then(|| self.errors.get(&Some(profile.to_string())))
            .flatten();
        own.into_iter()
            .flatten()
            .chain(self.errors.get(&None).into_iter().flatten())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_that_would_collide_when_joined_stay_apart() {
        assert_ne!(device_key("a:b", "c", None), device_key("a", "b:c", None));
        assert_ne!(device_key("a", "b", None), device_key("a", "b", Some("")));
        assert_eq!(
            device_key("p", "r", Some("f")),
            device_key("p", "r", Some("f"))
        );
    }
}
