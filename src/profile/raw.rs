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
    /// Whether Home Assistant gets a button that runs this profile's action (default yes).
    pub home_assistant_button: Option<bool>,
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
    pub oauth1: Option<RawOAuth1>,
}

/// `[auth.oauth1]`.
#[derive(Debug, Deserialize, Default, Clone)]
pub struct RawOAuth1 {
    pub provider: Option<String>,
    pub consumer_key: Option<String>,
    pub consumer_secret: Option<String>,
    /// The client's RSA private key as PEM text (usually `${secret:…}`), for RSA-SHA1.
    pub rsa_private_key: Option<String>,
    /// `HMAC-SHA1` (default), `HMAC-SHA256`, `RSA-SHA1`, `PLAINTEXT`.
    pub signature_method: Option<String>,
    pub request_token_url: Option<String>,
    pub authorize_url: Option<String>,
    pub access_token_url: Option<String>,
    pub realm: Option<String>,
    pub redirect_url: Option<String>,
    #[serde(default)]
    pub api_origins: Vec<String>,
}

/// `[auth.oauth2]`. A provider definition is read into this same shape: the profile's keys
/// win over the preset's (see [`RawOAuth2::over`]).
#[derive(Debug, Deserialize, Default, Clone)]
pub struct RawOAuth2 {
    /// A provider definition's id (`zoho-eu`): its settings fill every key not written here.
    pub provider: Option<String>,
    /// `authorization_code` (default), `client_credentials`, `device_code`, `password`,
    /// `implicit`.
    pub grant: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    pub scopes: Option<String>,
    /// How scopes are joined when sent (`" "`, `","`).
    pub scope_separator: Option<String>,
    pub authorize_url: Option<String>,
    pub token_url: Option<String>,
    /// Where refresh requests go, when not to `token_url`.
    pub refresh_url: Option<String>,
    pub device_authorization_url: Option<String>,
    pub revocation_url: Option<String>,
    /// RFC 7662 token introspection: asks the provider whether the token is still active.
    pub introspection_url: Option<String>,
    /// The server's issuer URL: its endpoints can be discovered from it, and an `iss` in the
    /// callback must name it (RFC 9207).
    pub issuer: Option<String>,
    pub redirect_url: Option<String>,
    /// `standard` (`/oauth2/callback`) or `legacy` (the family's `/oauth2_callback.html`).
    pub callback: Option<String>,
    /// The origins the authorization's token may be sent to; empty: the API URL's origin when
    /// the profile was authorized.
    pub api_origins: Option<Vec<String>>,
    /// A token-response field holding the API's base URL (Zoho's `api_domain`): the token may
    /// go there too.
    pub api_host_field: Option<String>,
    #[serde(default)]
    pub extra_authorize_params: BTreeMap<String, String>,
    /// Fields added to every token request (Withings' `action = "requesttoken"`).
    #[serde(default)]
    pub token_params: BTreeMap<String, String>,
    /// Query parameters added to every API call (Resideo's `apikey = "{{client_id}}"`).
    #[serde(default)]
    pub api_query: BTreeMap<String, String>,
    /// `basic`, `body` or `none` (a public client).
    pub client_auth: Option<String>,
    pub pkce: Option<bool>,
    /// The header's value, e.g. `Zoho-oauthtoken {AccessToken}`.
    pub header_template: Option<String>,
    /// The header the token goes in (default `Authorization`).
    pub token_header: Option<String>,
    /// A query parameter the token goes in instead of a header.
    pub token_query: Option<String>,
    /// API statuses that mean "token expired": refresh once and replay (default [401]).
    pub reauthorize_on: Option<Vec<u16>>,
    /// An expression over an API answer (`input`, `Status()`) that is true when the answer means
    /// "token expired" although its status does not say so (Withings: HTTP 200, `status` 401).
    pub expired_when: Option<String>,
    /// `form` (default), `json` or `query`: how token requests are encoded.
    pub body_format: Option<String>,
    /// How the provider's device flow differs from RFC 8628 (ecobee's PIN).
    pub device: Option<RawDeviceFlow>,
    /// The provider's own code-exchange request (seed 003).
    pub token_request: Option<RawTokenRequest>,
    /// The provider's own refresh request.
    pub refresh_request: Option<RawTokenRequest>,
    /// Where the token answer's fields are.
    pub token_response: Option<RawTokenResponse>,
    /// Values templates may name as `{{name}}` (Microsoft's `tenant`).
    #[serde(default)]
    pub settings: BTreeMap<String, String>,
    /// The callback parameter holding the code (seed 001's `SuccessVariable`).
    pub code_param: Option<String>,
    /// The callback parameter holding an error (seed 001's `ErrorVariable`).
    pub error_param: Option<String>,
    /// Who the token belongs to, shown after authorization.
    pub userinfo_url: Option<String>,
    pub userinfo_method: Option<String>,
    /// A token-response field holding the userinfo URL (seed 001's `ProfileURLVariable`).
    pub userinfo_url_field: Option<String>,
    pub userinfo_id: Option<String>,
    pub display_name_template: Option<String>,
    pub email_template: Option<String>,
    /// The password grant's user.
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawDeviceFlow {
    /// `post` (a form, default) or `get` (the fields in the query).
    pub method: Option<String>,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
    pub user_code_field: Option<String>,
    pub device_code_field: Option<String>,
    pub grant_type: Option<String>,
    pub device_code_param: Option<String>,
    pub verification_uri: Option<String>,
    /// `seconds` (default) or `minutes`.
    pub expires_in_unit: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawTokenRequest {
    pub url: Option<String>,
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    #[serde(default)]
    pub body: BTreeMap<String, String>,
    /// `form` or `json`.
    pub format: Option<String>,
}

#[derive(Debug, Deserialize, Default, Clone)]
#[serde(deny_unknown_fields)]
pub struct RawTokenResponse {
    /// `auto`, `json` or `form`.
    pub format: Option<String>,
    pub access_token: Option<String>,
    pub refresh_token: Option<String>,
    pub expires: Option<String>,
    /// `in_seconds`, `at_epoch_seconds`, `at_epoch_milliseconds`, `after_issued`, `fixed`.
    pub expiry: Option<String>,
    pub issued: Option<String>,
    /// Seconds a token lives when the answer does not say (`expiry = "fixed"`).
    pub lifetime: Option<u64>,
    pub error: Option<String>,
    pub error_description: Option<String>,
    /// A field that must equal `success_value` for the answer to be a success.
    pub success_field: Option<String>,
    pub success_value: Option<serde_json::Value>,
    /// The object whose members are the token's fields.
    pub fields: Option<String>,
}

impl RawTokenResponse {
    pub fn over(self, base: RawTokenResponse) -> RawTokenResponse {
        RawTokenResponse {
            format: self.format.or(base.format),
            access_token: self.access_token.or(base.access_token),
            refresh_token: self.refresh_token.or(base.refresh_token),
            expires: self.expires.or(base.expires),
            expiry: self.expiry.or(base.expiry),
            issued: self.issued.or(base.issued),
            lifetime: self.lifetime.or(base.lifetime),
            error: self.error.or(base.error),
            error_description: self.error_description.or(base.error_description),
            success_field: self.success_field.or(base.success_field),
            success_value: self.success_value.or(base.success_value),
            fields: self.fields.or(base.fields),
        }
    }
}

fn merged(
    mine: BTreeMap<String, String>,
    base: BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    let mut all = base;
    all.extend(mine);
    all
}

impl RawOAuth2 {
    /// These keys over a provider's: each key written here wins; tables are merged key by key.
    pub fn over(self, base: RawOAuth2) -> RawOAuth2 {
        RawOAuth2 {
            provider: self.provider.or(base.provider),
            grant: self.grant.or(base.grant),
            client_id: self.client_id.or(base.client_id),
            client_secret: self.client_secret.or(base.client_secret),
            scopes: self.scopes.or(base.scopes),
            scope_separator: self.scope_separator.or(base.scope_separator),
            authorize_url: self.authorize_url.or(base.authorize_url),
            token_url: self.token_url.or(base.token_url),
            refresh_url: self.refresh_url.or(base.refresh_url),
            device_authorization_url: self
                .device_authorization_url
                .or(base.device_authorization_url),
            revocation_url: self.revocation_url.or(base.revocation_url),
            introspection_url: self.introspection_url.or(base.introspection_url),
            issuer: self.issuer.or(base.issuer),
            redirect_url: self.redirect_url.or(base.redirect_url),
            callback: self.callback.or(base.callback),
            api_origins: self.api_origins.or(base.api_origins),
            api_host_field: self.api_host_field.or(base.api_host_field),
            extra_authorize_params: merged(
                self.extra_authorize_params,
                base.extra_authorize_params,
            ),
            token_params: merged(self.token_params, base.token_params),
            api_query: merged(self.api_query, base.api_query),
            client_auth: self.client_auth.or(base.client_auth),
            pkce: self.pkce.or(base.pkce),
            header_template: self.header_template.or(base.header_template),
            token_header: self.token_header.or(base.token_header),
            token_query: self.token_query.or(base.token_query),
            reauthorize_on: self.reauthorize_on.or(base.reauthorize_on),
            expired_when: self.expired_when.or(base.expired_when),
            body_format: self.body_format.or(base.body_format),
            device: self.device.or(base.device),
            token_request: self.token_request.or(base.token_request),
            refresh_request: self.refresh_request.or(base.refresh_request),
            token_response: match (self.token_response, base.token_response) {
                (Some(mine), Some(base)) => Some(mine.over(base)),
                (mine, base) => mine.or(base),
            },
            settings: merged(self.settings, base.settings),
            code_param: self.code_param.or(base.code_param),
            error_param: self.error_param.or(base.error_param),
            userinfo_url: self.userinfo_url.or(base.userinfo_url),
            userinfo_method: self.userinfo_method.or(base.userinfo_method),
            userinfo_url_field: self.userinfo_url_field.or(base.userinfo_url_field),
            userinfo_id: self.userinfo_id.or(base.userinfo_id),
            display_name_template: self.display_name_template.or(base.display_name_template),
            email_template: self.email_template.or(base.email_template),
            username: self.username.or(base.username),
            password: self.password.or(base.password),
        }
    }
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
    /// Devices a hub may set, by device name: a number (with its range) or a text.
    #[serde(default)]
    pub settable: BTreeMap<String, RawSettable>,
}

/// How a settable device is set: `kind = "number"` (the default; `min`, `max`, `step`, `mode`)
/// or `kind = "text"` (`max` characters, `pattern`).
#[derive(Debug, Deserialize, Default)]
pub struct RawSettable {
    pub kind: Option<String>,
    pub min: Option<f64>,
    pub max: Option<f64>,
    pub step: Option<f64>,
    pub mode: Option<String>,
    pub pattern: Option<String>,
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

#[cfg(test)]
pub(crate) use field_names::field_names;

/// Tests only: which keys a raw type accepts, so tables of keys elsewhere can be checked
/// against it.
#[cfg(test)]
mod field_names {
    /// A deserializer that only learns the field names a struct asks for.
    struct FieldNames<'a>(&'a mut Vec<&'static str>);

    impl<'de> serde::Deserializer<'de> for FieldNames<'_> {
        type Error = serde::de::value::Error;

        fn deserialize_any<V: serde::de::Visitor<'de>>(
            self,
            _: V,
        ) -> Result<V::Value, Self::Error> {
            Err(serde::de::Error::custom("only struct fields are read"))
        }

        fn deserialize_struct<V: serde::de::Visitor<'de>>(
            self,
            _: &'static str,
            fields: &'static [&'static str],
            _: V,
        ) -> Result<V::Value, Self::Error> {
            self.0.extend_from_slice(fields);
            Err(serde::de::Error::custom("fields read"))
        }

        serde::forward_to_deserialize_any! {
            bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
            option unit unit_struct newtype_struct seq tuple tuple_struct map enum identifier
            ignored_any
        }
    }

    /// The field names a struct deserializes (sorted), learnt from serde itself.
    pub(crate) fn field_names<T: serde::de::DeserializeOwned>() -> Vec<&'static str> {
        let mut names = Vec::new();
        let _ = T::deserialize(FieldNames(&mut names));
        names.sort_unstable();
        names
    }
}
