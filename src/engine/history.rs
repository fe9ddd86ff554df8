//! What the engine remembers of past runs: each profile's history (restored from the store's
//! journal at start), and the last response bodies for the sandbox, within a byte budget.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

use super::*;

/// The last response body of each profile, within a total byte budget: keeping a new one
/// evicts others (the oldest first) until the total fits; one larger than the budget is not kept.
#[derive(Default)]
pub(super) struct LastResponses {
    pub(super) bodies: HashMap<String, (u64, Arc<str>)>,
    pub(super) total: usize,
    counter: u64,
}

impl LastResponses {
    pub(super) fn keep(&mut self, profile: &str, body: Arc<str>, budget: usize) {
        if let Some((_, old)) = self.bodies.remove(profile) {
            self.total -= old.len();
        }
        if body.len() > budget {
            return;
        }
        while self.total + body.len() > budget {
            let Some(oldest) = self
                .bodies
                .iter()
                .min_by_key(|(_, (stamp, _))| *stamp)
                .map(|(name, _)| name.clone())
            else {
                break;
            };
            if let Some((_, evicted)) = self.bodies.remove(&oldest) {
                self.total -= evicted.len();
            }
        }
        self.counter += 1;
        self.total += body.len();
        self.bodies
            .insert(profile.to_string(), (self.counter, body));
    }
}

impl Engine {
    /// The last response body a profile received (for the sandbox's live preview).
    pub(crate) fn last_response(&self, profile: &str) -> Option<Arc<str>> {
        self.last_responses
            .locked()
            .bodies
            .get(profile)
            .map(|(_, body)| body.clone())
    }

    /// The newest runs, newest first, of one profile or of all.
    pub fn history(&self, profile: Option<&str>, limit: usize) -> Vec<Arc<RunRecord>> {
        let history = self.history.locked();
        let mut runs: Vec<Arc<RunRecord>> = match profile {
            Some(name) => history
                .get(name)
                .map(|q| q.iter().cloned().collect())
                .unwrap_or_default(),
            None => history.values().flat_map(|q| q.iter().cloned()).collect(),
        };
        runs.sort_by(|a, b| b.started_at.cmp(&a.started_at));
        runs.truncate(limit);
        runs
    }

    pub(super) fn remember(self: &Arc<Self>, profile: &Profile, record: Arc<RunRecord>) {
        let journaled = record.clone();
        let render = Box::new(move || serde_json::to_string(&*journaled).ok());
        if let Err(error) = self.hub.journal(
            crate::devices::Book::Runs,
            &profile.name,
            render,
            profile.history_keep,
        ) {
            tracing::warn!(profile = %profile.name, error = %error, "run not journaled");
        }
        if !record.ok {
            for error in &record.errors {
                tracing::warn!(profile = %profile.name, stage = %error.stage, error = %error.message, "run failed");
            }
        }
        {
            let mut history = self.history.locked();
            // (The name is copied only for a profile's first run, not on every run.)
            if !history.contains_key(&profile.name) {
                history.insert(profile.name.clone(), VecDeque::new());
            }
            if let Some(runs) = history.get_mut(&profile.name) {
                runs.push_back(record.clone());
                while runs.len() > profile.history_keep {
                    runs.pop_front();
                }
            }
        }
        let finished = bus::HubEvent::RunFinished { run: record };
        self.run_finished(&finished);
        self.bus.publish(finished);
    }

    /// Keeps what a profile received last (for the sandbox and the input triggers).
    pub(super) fn keep_last_response(&self, profile: &str, body: Arc<str>) {
        self.last_responses
            .locked()
            .keep(profile, body, self.limits.last_responses_bytes);
    }
}

/// The run history as the journal kept it: what `GET /api/v1/runs` shows after a restart.
pub(super) fn restore_history(
    hub: &DeviceHub,
    profiles: &ProfileSet,
) -> HashMap<String, VecDeque<Arc<RunRecord>>> {
    let mut history = HashMap::new();
    for profile in profiles.profiles.values() {
        let records = match hub.read_journal(
            crate::devices::Book::Runs,
            Some(&profile.name),
            profile.history_keep,
        ) {
            Ok(records) => records,
            Err(error) => {
                tracing::warn!(profile = %profile.name, error = %error, "run history not restored");
                continue;
            }
        };
        // The journal reads newest first; the history keeps oldest first.
        let runs: VecDeque<Arc<RunRecord>> = records
            .iter()
            .rev()
            .filter_map(|text| serde_json::from_str::<RunRecord>(text).ok())
            .map(Arc::new)
            .collect();
        if !runs.is_empty() {
            history.insert(profile.name.clone(), runs);
        }
    }
    history
}
