//! OAuth2 protocol core: authorization requests with PKCE (S256) and a single-use, short-lived
//! `state`; OAuth 1.0a signatures and its three-legged flow ([`one`]); every grant's token
//! request through one path, with the provider's client
//! authentication, extra parameters, request templates and answer shape; revocation; discovery.
//!
//! Knows nothing of profile files, storage, the engine or the web: it receives a
//! [`ClientConfig`] (the engine builds one from a profile) and an HTTP client.

mod flow;
pub mod one;
mod shape;
mod state;
mod template;
pub(crate) mod token;

pub use flow::{
    authorization_url, client_credentials, device_authorization, device_token, discover,
    exchange_code, introspect, password, pkce_challenge, read_at_most, refresh, revoke, BodyFormat,
    ClientAuthStyle, ClientConfig, DeviceAuthorization, DeviceOptions, Introspection, OAuthError,
    RequestTemplate, ServerMetadata,
};
pub use shape::{redacted_shape, Expiry, FieldPath, FieldPathError, ResponseFormat, TokenShape};
pub use state::{PendingAuthorization, StateError, StateStore, STATE_LIFETIME};
pub use template::{TemplateError, TextTemplate, Values, BUILT_IN_NAMES};
pub use token::{parse_token_response, TokenSet};
