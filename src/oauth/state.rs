//! Pending authorizations: a random `state` per Request Authorization, single-use, expiring
//! after [`STATE_LIFETIME`], holding the PKCE verifier and the exact redirect URI sent.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::secret::Secret;

pub const STATE_LIFETIME: Duration = Duration::from_secs(600);

/// What the callback needs to finish an authorization.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub profile: String,
    pub redirect_uri: String,
    pub pkce_verifier: Option<Secret>,
    created: Instant,
}

impl PendingAuthorization {
    pub fn new(
        profile: &str,
        redirect_uri: &str,
        pkce_verifier: Option<Secret>,
    ) -> PendingAuthorization {
        PendingAuthorization {
            profile: profile.to_string(),
            redirect_uri: redirect_uri.to_string(),
            pkce_verifier,
            created: Instant::now(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("this authorization link is unknown or was already used: start again with Request Authorization")]
    Unknown,
    #[error("this authorization took longer than 10 minutes and expired: start again with Request Authorization")]
    Expired,
}

/// The pending authorizations of this process.
#[derive(Default)]
pub struct StateStore {
    pending: Mutex<HashMap<String, PendingAuthorization>>,
}

impl StateStore {
    /// Registers a pending authorization under a fresh random state and returns the state.
    pub fn issue(&self, pending: PendingAuthorization) -> String {
        let state = oauth2::CsrfToken::new_random_len(32).secret().clone();
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        map.retain(|_, p| p.created.elapsed() < STATE_LIFETIME);
        map.insert(state.clone(), pending);
        state
    }

    /// Takes the pending authorization of `state`: it can be taken once, within its lifetime.
    pub fn take(&self, state: &str) -> Result<PendingAuthorization, StateError> {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        let pending = map.remove(state).ok_or(StateError::Unknown)?;
        if pending.created.elapsed() >= STATE_LIFETIME {
            return Err(StateError::Expired);
        }
        Ok(pending)
    }

    #[cfg(test)]
    fn age(&self, state: &str, by: Duration) {
        let mut map = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(p) = map.get_mut(state) {
            p.created = Instant::now().checked_sub(by).unwrap_or(p.created);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_random_single_use_and_expire() {
        let store = StateStore::default();
        let a = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb", None));
        let b = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb", None));
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert_eq!(store.take(&a).map(|p| p.profile), Ok("p".to_string()));
        assert_eq!(store.take(&a).err(), Some(StateError::Unknown));
        assert_eq!(store.take("forged").err(), Some(StateError::Unknown));
        store.age(&b, STATE_LIFETIME + Duration::from_secs(1));
        assert_eq!(store.take(&b).err(), Some(StateError::Expired));
    }
}
