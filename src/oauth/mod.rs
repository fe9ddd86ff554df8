//! OAuth2 protocol core: authorization requests with PKCE (S256) and a single-use, short-lived
//! `state`; the code exchange and refresh requests with the profile's client authentication
//! (HTTP Basic or body, the same choice everywhere); lenient parsing of token responses.
//!
//! Knows nothing of profile files, storage, the engine or the web: it receives a
//! [`ClientConfig`] (the engine builds one from a profile) and an HTTP client.

mod flow;
mod state;
mod token;

pub use flow::{
    authorization_url, exchange_code, refresh, ClientAuthStyle, ClientConfig, OAuthError,
};
pub use state::{PendingAuthorization, StateError, StateStore, STATE_LIFETIME};
pub use token::{parse_token_response, TokenSet};
