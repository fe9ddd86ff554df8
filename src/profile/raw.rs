//! Serde mirrors of profile files, exactly as written. Nothing here is validated; `resolve`
//! turns a [`RawProfile`] into a [`super::Profile`] that can only hold valid data.

use std::collections::BTreeMap;

use serde::Deserialize;

#[derive(Debug, Deserialize, Default)]
pub struct RawProfile {
    pub version: Option<u32>,
    pub name: Option<String>,
    #[serde(default)]
    pub description: String,
    pub request: Option<RawRequest>,
    /// A listening profile's path (instead of `[request]`), under the server's listen base.
    pub listen: Option<String>,
    pub incoming: Option<RawIncoming>,
    /// An MQTT profile (instead of `[request]`): messages in, the action's text out.
    pub mqtt: Option<RawMqtt>,
    #[serde(default)]
    pub auth: RawAuth,
    #[serde(default)]
    pub devices: RawDevices,
    #[serde(default)]
    pub device: Vec<RawDevice>,
    #[serde(default)]
    pub history: RawHistory,
}

#[derive(Debug, Deserialize)]
pub struct RawRequest {
    #[serde(default = "default_method")]
    pub method: String,
    pub url: String,
    /// Splice `${…}` results into the URL as they are instead of URL-encoding them.
    #[serde(default)]
    pub raw_url: bool,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    pub body: Option<RawBody>,
    pub timeout_secs: Option<f64>,
    pub max_response_bytes: Option<u64>,
    #[serde(default = "yes")]
    pub verify_tls: bool,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawMqtt {
    /// A topic filter (`+` and `#` allowed): each message is `input`.
    pub subscribe: Option<String>,
    /// Where the action's text is published (a template).
    pub publish: Option<String>,
    pub qos: Option<u8>,
    pub retain: Option<bool>,
}

/// How a listening profile answers and whom it lets in.
#[derive(Debug, Deserialize, Default)]
pub struct RawIncoming {
    /// The reply's template (default `OK`).
    pub reply: Option<String>,
    pub reply_content_type: Option<String>,
    /// A token callers must send (`Authorization: Bearer …`, `X-Bellhop-Token` or `?token=`).
    pub token: Option<String>,
    pub max_body_bytes: Option<u64>,
    pub max_per_second: Option<u32>,
}

fn default_method() -> String {
    "GET".to_string()
}

fn yes() -> bool {
    true
}

#[derive(Debug, Deserialize)]
pub struct RawBody {
    /// `json`, `form` or `raw`.
    pub kind: String,
    pub template: Option<String>,
    #[serde(default)]
    pub fields: BTreeMap<String, String>,
    pub content_type: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawAuth {
    pub mode: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub token: Option<String>,
    pub header: Option<String>,
    pub parameter: Option<String>,
    pub key: Option<String>,
    pub oauth2: Option<RawOAuth2>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawOAuth2 {
    pub provider: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    #[serde(default)]
    pub scopes: String,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    pub redirect_url: Option<String>,
    /// `standard` (`/oauth2/callback`) or `legacy` (the family's `/oauth2_callback.html`).
    pub callback: Option<String>,
    /// The origins the authorization's token may be sent to; empty: the API URL's origin when
    /// the profile was authorized.
    #[serde(default)]
    pub api_origins: Vec<String>,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// `basic` or `body`.
    pub client_auth: Option<String>,
    pub pkce: Option<bool>,
    /// The Authorization header's value, e.g. `Zoho-oauthtoken {AccessToken}`.
    pub header_template: Option<String>,
    /// API statuses that mean "token expired": refresh once and replay (default [401]).
    pub reauthorize_on: Option<Vec<u16>>,
}

/// The family's four boxes.
#[derive(Debug, Deserialize, Default)]
pub struct RawDevices {
    #[serde(default)]
    pub locked: bool,
    pub affect: Option<String>,
    pub root_names: Option<String>,
    pub feature_names: Option<String>,
    pub values: Option<String>,
    pub strings: Option<String>,
    /// Units of measurement by device name (a feature's, or a root's without features), for hubs
    /// that show them (Home Assistant over MQTT).
    #[serde(default)]
    pub units: BTreeMap<String, String>,
    /// Home Assistant device classes by device name (`temperature`, `humidity`, …).
    #[serde(default)]
    pub device_classes: BTreeMap<String, String>,
}

/// The list form: one `[[device]]` per root, features nested.
#[derive(Debug, Deserialize)]
pub struct RawDevice {
    pub name: String,
    pub value: Option<String>,
    pub string: Option<String>,
    #[serde(default)]
    pub feature: Vec<RawFeature>,
}

#[derive(Debug, Deserialize)]
pub struct RawFeature {
    pub name: String,
    pub value: Option<String>,
    pub string: Option<String>,
}

#[derive(Debug, Deserialize, Default)]
pub struct RawHistory {
    pub keep: Option<usize>,
}
