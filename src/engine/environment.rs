//! The expressions' view of the hub during a run: devices and globals, the response's status
//! and headers, the token answer's fields and this server's own address.

use std::sync::Arc;

use super::{authorization, listening, request};
use crate::devices::DeviceHub;
use crate::expr::Environment;

/// Expressions' view of the hub (devices, globals) and, while mapping, of the response.
pub struct HubEnvironment<'a> {
    pub(super) hub: &'a DeviceHub,
    pub(super) response: Option<&'a request::Response>,
    /// The fields of the profile's token answer, for `Token(name)`.
    pub(super) token_fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
    /// This Bellhop's own address, for `ServerURL()`.
    pub(super) server_url: Option<&'a str>,
}

impl<'a> HubEnvironment<'a> {
    /// Devices and globals only: for the sandbox and action texts.
    pub fn new(hub: &'a DeviceHub) -> HubEnvironment<'a> {
        HubEnvironment {
            hub,
            response: None,
            token_fields: None,
            server_url: None,
        }
    }
}

impl Environment for HubEnvironment<'_> {
    fn device_value(&self, reference: u64) -> Option<f64> {
        self.hub.value(reference)
    }
    fn device_string(&self, reference: u64) -> Option<String> {
        self.hub.string(reference)
    }
    fn global_value(&self, name: &str) -> Option<f64> {
        self.hub.global(name).map(|g| g.value)
    }
    fn global_string(&self, name: &str) -> Option<String> {
        self.hub.global(name).map(|g| g.string)
    }
    fn header(&self, name: &str) -> Option<String> {
        self.response?
            .headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
    fn status(&self) -> Option<u16> {
        self.response.map(|r| r.status)
    }
    fn topic(&self) -> Option<String> {
        self.header(listening::TOPIC_HEADER)
    }
    fn token_field(&self, name: &str) -> Option<serde_json::Value> {
        if authorization::SECRET_TOKEN_FIELDS.contains(&name) {
            return None;
        }
        self.token_fields.as_ref()?.get(name).cloned()
    }
    fn server_url(&self) -> Option<String> {
        self.server_url.map(str::to_string)
    }
}
