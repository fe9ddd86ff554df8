//! Pending authorizations: a random `state` per Request Authorization, single-use, expiring
//! after [`STATE_LIFETIME`], holding the PKCE verifier and the exact redirect URI sent.

use crate::sync::Locked;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::Duration;

use crate::clock::Clock;

use crate::secret::Secret;

pub const STATE_LIFETIME: Duration = Duration::from_secs(600);

/// What the callback needs to finish an authorization.
#[derive(Debug, Clone)]
pub struct PendingAuthorization {
    pub profile: String,
    pub redirect_uri: String,
    pub pkce_verifier: Option<Secret>,
    /// The issuer an RFC 9207 `iss` in the callback must name, when the server is known to
    /// send one (or sends one anyway).
    pub issuer: Option<String>,
    /// OAuth 1.0a: the temporary credentials' secret, which signs the token request.
    pub oauth1_secret: Option<Secret>,
    /// When the store registered it (its clock's ms).
    created_ms: i64,
}

impl PendingAuthorization {
    pub fn new(profile: &str, redirect_uri: &str) -> PendingAuthorization {
        PendingAuthorization {
            profile: profile.to_string(),
            redirect_uri: redirect_uri.to_string(),
            pkce_verifier: None,
            issuer: None,
            oauth1_secret: None,
            created_ms: 0,
        }
    }

    pub fn with_verifier(mut self, verifier: Secret) -> PendingAuthorization {
        self.pkce_verifier = Some(verifier);
        self
    }

    pub fn with_oauth1_secret(mut self, secret: Secret) -> PendingAuthorization {
        self.oauth1_secret = Some(secret);
        self
    }

    pub fn with_issuer(mut self, issuer: Option<String>) -> PendingAuthorization {
        self.issuer = issuer;
        self
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    #[error("this authorization link is unknown or was already used: start again with Request Authorization")]
    Unknown,
    #[error("this authorization took longer than 10 minutes and expired: start again with Request Authorization")]
    Expired,
}

/// Most authorizations pending at once; starting one more drops the oldest.
pub const MAX_PENDING: usize = 1024;

/// The pending authorizations of this process: looked up by state in O(1), expired ones dropped
/// from the front of the issue order, never more than [`MAX_PENDING`].
#[derive(Default)]
pub struct StateStore {
    pending: Mutex<Pending>,
    clock: Clock,
}

#[derive(Default)]
struct Pending {
    by_state: HashMap<String, PendingAuthorization>,
    /// States in the order they were issued (some may be taken already).
    order: VecDeque<String>,
}

const LIFETIME_MS: i64 = STATE_LIFETIME.as_millis() as i64;

impl StateStore {
    /// A store that reads the time from `clock`.
    pub fn with_clock(clock: Clock) -> StateStore {
        StateStore {
            pending: Mutex::default(),
            clock,
        }
    }

    /// Registers a pending authorization under a fresh random state and returns the state.
    pub fn issue(&self, pending: PendingAuthorization) -> String {
        let state = crate::secret::random_token();
        self.issue_as(&state, pending);
        state
    }

    /// Registers a pending authorization under a key the provider chose: OAuth 1.0a's
    /// temporary token, which its callback brings back (it has no `state`).
    pub fn issue_as(&self, key: &str, mut pending: PendingAuthorization) {
        let state = key.to_string();
        let now_ms = self.clock.now_ms();
        pending.created_ms = now_ms;
        let mut store = self.pending.locked();
        let Pending { by_state, order } = &mut *store;
        // Drop what expired or was taken, oldest first; then make room.
        while let Some(oldest) = order.front() {
            let stale = by_state
                .get(oldest)
                .is_none_or(|p| now_ms - p.created_ms >= LIFETIME_MS);
            if !stale && by_state.len() < MAX_PENDING {
                break;
            }
            if let Some(oldest) = order.pop_front() {
                by_state.remove(&oldest);
            }
        }
        by_state.insert(state.clone(), pending);
        order.push_back(state);
    }

    /// Takes the pending authorization of `state`: it can be taken once, within its lifetime.
    pub fn take(&self, state: &str) -> Result<PendingAuthorization, StateError> {
        let mut store = self.pending.locked();
        let pending = store.by_state.remove(state).ok_or(StateError::Unknown)?;
        if self.clock.now_ms() - pending.created_ms >= LIFETIME_MS {
            return Err(StateError::Expired);
        }
        Ok(pending)
    }

    /// How many authorizations are pending (taken and expired ones may linger until the next
    /// start).
    pub fn len(&self) -> usize {
        self.pending.locked().by_state.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_are_random_single_use_and_expire() {
        let clock = Clock::adjustable();
        let store = StateStore::with_clock(clock.clone());
        let a = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb"));
        let b = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb"));
        assert_ne!(a, b);
        assert!(a.len() >= 40);
        assert_eq!(store.take(&a).map(|p| p.profile), Ok("p".to_string()));
        assert_eq!(store.take(&a).err(), Some(StateError::Unknown));
        assert_eq!(store.take("forged").err(), Some(StateError::Unknown));
        clock.advance(STATE_LIFETIME + Duration::from_secs(1));
        assert_eq!(store.take(&b).err(), Some(StateError::Expired));
    }

    #[test]
    fn pending_authorizations_are_bounded_and_the_newest_stay_usable() {
        let store = StateStore::default();
        let first = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb"));
        let mut last = String::new();
        for _ in 0..(MAX_PENDING * 20) {
            last = store.issue(PendingAuthorization::new("p", "http://127.0.0.1/cb"));
        }
        assert!(store.len() <= MAX_PENDING, "{}", store.len());
        assert_eq!(store.take(&first).err(), Some(StateError::Unknown));
        assert!(store.take(&last).is_ok());
    }
}
