//! Profile editing for the web UI: a flat form ↔ a profile file. Saving writes the file
//! atomically only when it loads without errors, keeps secrets out of it (they go to the
//! encrypted vault beside the tokens, and the profile refers to them), and reloads the set.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::{Engine, ProfileSource};
use crate::profile::{self, AuthSpec, Diagnostic, Profile};
use crate::secret::REDACTED;

/// The editor's fields. Secrets come back as `••••••` and mean "unchanged" when sent as is.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProfileForm {
    pub name: String,
    pub description: String,
    pub method: String,
    pub url: String,
    /// `none`, `bearer` or `oauth2` (other modes are edited in the file).
    pub auth_mode: String,
    pub token: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: String,
    pub authorize_url: String,
    pub token_url: String,
    /// `name=value` pairs, one per line.
    pub extra_authorize_params: String,
    /// `basic` or `body`.
    pub client_auth: String,
    pub pkce: bool,
    pub header_template: String,
    pub root_names: String,
    pub feature_names: String,
    pub values: String,
    pub strings: String,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the profile has problems")]
    Invalid(Vec<Diagnostic>),
    #[error("profiles cannot be saved: this engine has no profile folder")]
    NoFolder,
    #[error("{0}")]
    Io(String),
}

impl ProfileForm {
    /// The form of a loaded profile (secrets redacted). Profiles that use the list form or
    /// other auth modes show what the form can hold.
    pub fn of(profile: &Profile) -> ProfileForm {
        let mut form = ProfileForm {
            name: profile.name.clone(),
            description: profile.description.clone(),
            method: profile.request.method.as_str().to_string(),
            url: profile.request.url.source().to_string(),
            auth_mode: profile.auth.mode().to_string(),
            pkce: true,
            client_auth: "basic".into(),
            ..ProfileForm::default()
        };
        match &profile.auth {
            AuthSpec::Bearer { .. } => form.token = REDACTED.into(),
            AuthSpec::OAuth2(spec) => {
                form.client_id = spec.client_id.clone();
                form.client_secret = if spec.client_secret.is_some() {
                    REDACTED.into()
                } else {
                    String::new()
                };
                form.scopes = spec.scopes.clone();
                form.authorize_url = spec.authorize_url.to_string();
                form.token_url = spec.token_url.to_string();
                form.extra_authorize_params = spec
                    .extra_authorize_params
                    .iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect::<Vec<_>>()
                    .join("\n");
                form.client_auth = match spec.client_auth {
                    profile::ClientAuth::Basic => "basic".into(),
                    profile::ClientAuth::Body => "body".into(),
                };
                form.pkce = spec.pkce;
                form.header_template = spec.header_template.clone();
            }
            _ => {}
        }
        let join = |pick: &dyn Fn(&profile::DeviceRule) -> Option<String>,
                    rules: &[profile::DeviceRule]| {
            rules
                .iter()
                .map(|r| pick(r).unwrap_or_default())
                .collect::<Vec<_>>()
        };
        let roots = &profile.mapping.roots;
        form.root_names = join(&|r| Some(r.name.source().to_string()), roots).join(" &&& ");
        if roots.iter().any(|r| !r.features.is_empty()) {
            let group = |pick: &dyn Fn(&profile::DeviceRule) -> Option<String>| {
                roots
                    .iter()
                    .map(|r| join(pick, &r.features).join(" && "))
                    .collect::<Vec<_>>()
                    .join(" &&& ")
            };
            form.feature_names = group(&|f| Some(f.name.source().to_string()));
            form.values = group(&|f| f.value.as_ref().map(|e| e.source().to_string()));
            form.strings = group(&|f| f.string.as_ref().map(|e| e.source().to_string()));
        } else {
            form.values =
                join(&|r| r.value.as_ref().map(|e| e.source().to_string()), roots).join(" &&& ");
            form.strings = join(
                &|r| r.string.as_ref().map(|e| e.source().to_string()),
                roots,
            )
            .join(" &&& ");
        }
        form
    }

    /// The profile file's text. Secrets are written as references to `secret_names`.
    fn to_toml(&self, token_ref: Option<&str>, secret_ref: Option<&str>) -> String {
        let mut root = toml::Table::new();
        let text = |s: &str| toml::Value::String(s.to_string());
        root.insert("version".into(), toml::Value::Integer(1));
        root.insert("name".into(), text(self.name.trim()));
        if !self.description.trim().is_empty() {
            root.insert("description".into(), text(self.description.trim()));
        }
        let mut request = toml::Table::new();
        request.insert(
            "method".into(),
            text(if self.method.is_empty() {
                "GET"
            } else {
                self.method.trim()
            }),
        );
        request.insert("url".into(), text(self.url.trim()));
        root.insert("request".into(), toml::Value::Table(request));
        let mut auth = toml::Table::new();
        match self.auth_mode.as_str() {
            "bearer" => {
                auth.insert("mode".into(), text("bearer"));
                auth.insert("token".into(), text(token_ref.unwrap_or("")));
            }
            "oauth2" => {
                auth.insert("mode".into(), text("oauth2"));
                let mut oauth = toml::Table::new();
                oauth.insert("client_id".into(), text(self.client_id.trim()));
                if let Some(reference) = secret_ref {
                    oauth.insert("client_secret".into(), text(reference));
                }
                oauth.insert("scopes".into(), text(self.scopes.trim()));
                oauth.insert("authorize_url".into(), text(self.authorize_url.trim()));
                oauth.insert("token_url".into(), text(self.token_url.trim()));
                oauth.insert(
                    "client_auth".into(),
                    text(if self.client_auth == "body" {
                        "body"
                    } else {
                        "basic"
                    }),
                );
                oauth.insert("pkce".into(), toml::Value::Boolean(self.pkce));
                if !self.header_template.trim().is_empty() {
                    oauth.insert("header_template".into(), text(self.header_template.trim()));
                }
                let extra: toml::Table = self
                    .extra_authorize_params
                    .lines()
                    .filter_map(|line| line.split_once('='))
                    .map(|(k, v)| (k.trim().to_string(), text(v.trim())))
                    .filter(|(k, _)| !k.is_empty())
                    .collect();
                if !extra.is_empty() {
                    oauth.insert("extra_authorize_params".into(), toml::Value::Table(extra));
                }
                auth.insert("oauth2".into(), toml::Value::Table(oauth));
            }
            _ => {
                auth.insert("mode".into(), text("none"));
            }
        }
        root.insert("auth".into(), toml::Value::Table(auth));
        let mut devices = toml::Table::new();
        for (key, value) in [
            ("root_names", &self.root_names),
            ("feature_names", &self.feature_names),
            ("values", &self.values),
            ("strings", &self.strings),
        ] {
            if !value.trim().is_empty() {
                devices.insert(key.into(), text(value.trim()));
            }
        }
        if !devices.is_empty() {
            root.insert("devices".into(), toml::Value::Table(devices));
        }
        toml::to_string_pretty(&root).unwrap_or_default()
    }
}

fn secret_name(profile: &str, what: &str) -> String {
    let clean: String = profile
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    format!("{clean}_{what}")
}

impl Engine {
    /// Saves a profile from the editor. Nothing is written unless the result loads cleanly.
    pub fn save_profile(&self, form: &ProfileForm) -> Result<(), EditError> {
        let source: &ProfileSource = self.source.as_ref().ok_or(EditError::NoFolder)?;
        let name = form.name.trim();
        let file = source.dir.join(format!("{name}.toml"));
        // New secret values go to the vault; "••••••" keeps what is stored.
        let mut new_secrets = BTreeMap::new();
        let mut reference = |value: &str, what: &str| -> Option<String> {
            if value.is_empty() {
                return None;
            }
            let key = secret_name(name, what);
            if value != REDACTED {
                new_secrets.insert(key.clone(), value.to_string());
            }
            Some(format!("${{secret:{key}}}"))
        };
        let token_ref = reference(&form.token, "token");
        let secret_ref = reference(&form.client_secret, "client_secret");
        let text = form.to_toml(token_ref.as_deref(), secret_ref.as_deref());
        // Check against the secrets as they will be.
        let secrets = source
            .secrets()
            .map_err(|(_, message)| EditError::Io(message))?
            .with_values(new_secrets.clone());
        let (profile, diagnostics) = profile::load_text(&file, &text, &secrets);
        if profile.is_none() {
            return Err(EditError::Invalid(diagnostics));
        }
        if !new_secrets.is_empty() {
            match &source.vault {
                // Encrypted, beside the tokens.
                Some(vault) => vault
                    .store_secrets(&new_secrets)
                    .map_err(|e| EditError::Io(e.to_string()))?,
                None => {
                    return Err(EditError::Io(
                        "secrets cannot be saved: this engine has no encrypted store".into(),
                    ))
                }
            }
        }
        crate::tokens::write_atomically(&file, text.as_bytes())
            .map_err(|e| EditError::Io(e.to_string()))?;
        self.reload();
        Ok(())
    }
}
