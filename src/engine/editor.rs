//! Profile editing for the web UI: a flat form ↔ a profile file. Saving edits the profile's own
//! file in place (toml_edit): only the keys whose form field changed are touched, so comments,
//! formatting and everything the form does not show (headers, body, timeouts, `[[device]]`
//! lists, other auth modes) stay as they were, and saving an unchanged form writes nothing.
//! The result is written atomically only when it loads without errors; secrets stay out of it
//! (they go to the encrypted vault beside the tokens, and the profile refers to them).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::saving::{read_or_new, FormSave, Located};
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
    /// A listening profile's path (instead of method and URL); its `[incoming]` options are
    /// edited in the file.
    pub listen: String,
    /// `none`, `bearer` or `oauth2` (other modes are edited in the file).
    pub auth_mode: String,
    pub token: String,
    /// A provider definition's id (`zoho-eu`); empty: the endpoints are written here.
    pub provider: String,
    /// `authorization_code`, `client_credentials`, `device_code`, `password`, `implicit`.
    pub grant: String,
    pub client_id: String,
    pub client_secret: String,
    pub scopes: String,
    pub authorize_url: String,
    pub token_url: String,
    pub device_authorization_url: String,
    /// The issuer: its `iss` is checked in callbacks (RFC 9207); its discovery document fills
    /// the endpoints.
    pub issuer: String,
    pub revocation_url: String,
    pub introspection_url: String,
    /// `name=value` pairs, one per line.
    pub extra_authorize_params: String,
    /// `basic`, `body` or `none`.
    pub client_auth: String,
    pub pkce: bool,
    pub header_template: String,
    pub root_names: String,
    pub feature_names: String,
    pub values: String,
    pub strings: String,
    /// Use the family's legacy callback page (`/oauth2_callback.html`) as the redirect URI.
    pub legacy_callback: bool,
    /// Parts of the profile the form cannot represent: shown, never written from the form (what
    /// a client sends back here is ignored).
    pub read_only: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum EditError {
    #[error("the file has problems")]
    Invalid(Vec<Diagnostic>),
    #[error("{0}")]
    BadName(String),
    /// The profile or event being edited is not loaded.
    #[error("nothing named `{0}` is loaded")]
    NotLoaded(String),
    #[error("the name `{0}` is taken already")]
    NameTaken(String),
    #[error("nothing can be saved: this engine has no folder for it")]
    NoFolder,
    #[error("{0}")]
    Io(String),
}

/// What a save did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Saved {
    /// The file was edited (or created, or renamed).
    Written,
    /// Nothing differed: the file was left alone, byte for byte.
    Unchanged,
}

impl ProfileForm {
    /// The form of a loaded profile (secrets redacted). Profiles that use the list form or
    /// other auth modes show what the form can hold.
    pub fn of(profile: &Profile) -> ProfileForm {
        let mut form = ProfileForm {
            name: profile.name.clone(),
            description: profile.description.clone(),
            method: profile
                .request
                .as_ref()
                .map(|r| r.method.as_str().to_string())
                .unwrap_or_default(),
            url: profile
                .request
                .as_ref()
                .map(|r| r.url.source().to_string())
                .unwrap_or_default(),
            listen: profile
                .listen
                .as_ref()
                .map(|l| l.path.clone())
                .unwrap_or_default(),
            auth_mode: profile.auth.mode().to_string(),
            pkce: true,
            client_auth: "basic".into(),
            ..ProfileForm::default()
        };
        match &profile.auth {
            AuthSpec::Bearer { .. } => form.token = REDACTED.into(),
            AuthSpec::OAuth2(spec) => {
                // What the provider definition fills in is shown as the provider's: empty here.
                let own = |key: &str, value: String| {
                    if spec.inherited.contains(&key) {
                        String::new()
                    } else {
                        value
                    }
                };
                form.legacy_callback = spec.legacy_callback;
                form.provider = spec.provider.clone().unwrap_or_default();
                form.grant = own("grant", spec.grant.as_str().to_string());
                form.client_id = own("client_id", spec.client_id.clone());
                form.client_secret = if spec.client_secret.is_some() {
                    REDACTED.into()
                } else {
                    String::new()
                };
                form.scopes = own("scopes", spec.scopes.clone());
                let url_text = |url: &Option<url::Url>| {
                    url.as_ref().map(|u| u.to_string()).unwrap_or_default()
                };
                form.authorize_url = own("authorize_url", url_text(&spec.authorize_url));
                form.token_url = own("token_url", spec.token_url.to_string());
                form.device_authorization_url = own(
                    "device_authorization_url",
                    url_text(&spec.device_authorization_url),
                );
                form.issuer = own("issuer", spec.issuer.clone().unwrap_or_default());
                form.revocation_url = own("revocation_url", url_text(&spec.revocation_url));
                form.introspection_url =
                    own("introspection_url", url_text(&spec.introspection_url));
                form.extra_authorize_params = own(
                    "extra_authorize_params",
                    spec.extra_authorize_params
                        .iter()
                        .map(|(k, v)| format!("{k}={v}"))
                        .collect::<Vec<_>>()
                        .join("\n"),
                );
                form.client_auth = own(
                    "client_auth",
                    match spec.client_auth {
                        profile::ClientAuth::Basic => "basic".into(),
                        profile::ClientAuth::Body => "body".into(),
                        profile::ClientAuth::None => "none".into(),
                    },
                );
                form.pkce = spec.pkce;
                form.header_template = own("header_template", spec.header_template.clone());
            }
            AuthSpec::None => {}
            _ => form.read_only.push("auth".into()),
        }
        if profile.mapping.from_list {
            form.read_only.push("devices".into());
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

/// Sets `path` (dotted, tables created as needed) to a text value, keeping the decor (comments,
/// spacing) of the value it replaces.
fn set_text(doc: &mut toml_edit::DocumentMut, path: &[&str], text: &str) {
    set_value(doc, path, toml_edit::Value::from(text));
}

fn set_value(doc: &mut toml_edit::DocumentMut, path: &[&str], mut value: toml_edit::Value) {
    let Some((last, tables)) = path.split_last() else {
        return;
    };
    let mut table = doc.as_table_mut();
    for name in tables {
        let entry = table
            .entry(name)
            .or_insert_with(|| toml_edit::Item::Table(toml_edit::Table::new()));
        if !entry.is_table_like() {
            *entry = toml_edit::Item::Table(toml_edit::Table::new());
        }
        let Some(next) = entry.as_table_mut() else {
            return;
        };
        table = next;
    }
    if let Some(old) = table.get(last).and_then(|item| item.as_value()) {
        *value.decor_mut() = old.decor().clone();
    }
    table.insert(last, toml_edit::Item::Value(value));
}

fn remove_key(doc: &mut toml_edit::DocumentMut, path: &[&str]) {
    let Some((last, tables)) = path.split_last() else {
        return;
    };
    let mut table = doc.as_table_mut();
    for name in tables {
        match table.get_mut(name).and_then(|item| item.as_table_mut()) {
            Some(next) => table = next,
            None => return,
        }
    }
    table.remove(last);
}

/// A profile file ready to be edited: its text, the form it shows today, and where it lives.
struct Editing {
    file: std::path::PathBuf,
    original: String,
    before: ProfileForm,
    /// Whether a loaded profile stands behind the file.
    loaded: bool,
}

impl Engine {
    /// Saves a profile from the editor: `path_name` is the profile being edited (or created),
    /// `form.name` its name afterwards (a different one renames it). Only what the form changed
    /// is written; nothing is written unless the result loads cleanly.
    pub fn save_profile(&self, path_name: &str, form: &ProfileForm) -> Result<Saved, EditError> {
        let mut saving = ProfileSave {
            form,
            editing: None,
            new_secrets: BTreeMap::new(),
        };
        super::saving::save(self, &mut saving, path_name)
    }

    /// Writes into `doc` what differs between the form and what the file showed before.
    fn apply_form(
        &self,
        doc: &mut toml_edit::DocumentMut,
        editing: &Editing,
        form: &ProfileForm,
        name: &str,
        renamed: bool,
        new_secrets: &mut BTreeMap<String, String>,
    ) -> Result<(), EditError> {
        let before = &editing.before;
        let changed = |now: &str, then: &str| now.trim() != then.trim();
        let read_only_changed = |part: &str, differs: bool| -> Result<(), EditError> {
            if differs && before.read_only.iter().any(|p| p == part) {
                Err(EditError::Invalid(vec![Diagnostic::error(
                    &editing.file,
                    part,
                    format!("the form cannot edit this profile's `{part}` (it uses what only the file can say): edit the file"),
                )]))
            } else {
                Ok(())
            }
        };
        if !editing.loaded && doc.get("version").is_none() {
            set_value(doc, &["version"], toml_edit::Value::from(1));
        }
        // The name is written when it is not the file's own stem, or the file already says one.
        let stem_name = editing.file.file_stem().is_some_and(|s| s == name) && !renamed;
        if (renamed || doc.get("name").is_some() || !stem_name)
            && doc.get("name").and_then(|n| n.as_str()) != Some(name)
        {
            set_text(doc, &["name"], name);
        }
        if changed(&form.description, &before.description) {
            if form.description.trim().is_empty() {
                remove_key(doc, &["description"]);
            } else {
                set_text(doc, &["description"], form.description.trim());
            }
        }
        if !form.listen.trim().is_empty() || !before.listen.is_empty() {
            // A listening profile: its path; what it calls out with is not its business.
            if changed(&form.listen, &before.listen) {
                set_text(doc, &["listen"], form.listen.trim());
            }
        } else {
            let method = if form.method.trim().is_empty() {
                "GET"
            } else {
                form.method.trim()
            };
            let method_before = if before.method.is_empty() {
                "GET"
            } else {
                before.method.as_str()
            };
            if method != method_before || (!editing.loaded && doc.get("request").is_none()) {
                set_text(doc, &["request", "method"], method);
            }
            if changed(&form.url, &before.url) {
                set_text(doc, &["request", "url"], form.url.trim());
            }
        }
        // Authentication.
        let mode_before = if before.auth_mode.is_empty() {
            "none"
        } else {
            before.auth_mode.as_str()
        };
        let mode = if form.auth_mode.is_empty() {
            mode_before
        } else {
            form.auth_mode.as_str()
        };
        let mode_changed = mode != mode_before;
        read_only_changed("auth", mode_changed)?;
        let secret_ref = |value: &str, what: &str, secrets: &mut BTreeMap<String, String>| {
            let key = secret_name(name, what);
            secrets.insert(key.clone(), value.to_string());
            format!("${{secret:{key}}}")
        };
        if mode_changed {
            // A new mode replaces the auth table whole.
            doc.remove("auth");
            set_text(doc, &["auth", "mode"], mode);
        }
        match mode {
            "bearer"
                if form.token != REDACTED
                    && (mode_changed || changed(&form.token, &before.token)) =>
            {
                let reference = secret_ref(&form.token, "token", new_secrets);
                set_text(doc, &["auth", "token"], &reference);
            }
            "oauth2" => {
                let oauth = |key: &'static str| ["auth", "oauth2", key];
                for (key, now, then) in [
                    ("provider", &form.provider, &before.provider),
                    ("grant", &form.grant, &before.grant),
                    ("client_id", &form.client_id, &before.client_id),
                    ("scopes", &form.scopes, &before.scopes),
                    ("authorize_url", &form.authorize_url, &before.authorize_url),
                    ("token_url", &form.token_url, &before.token_url),
                    (
                        "device_authorization_url",
                        &form.device_authorization_url,
                        &before.device_authorization_url,
                    ),
                    ("issuer", &form.issuer, &before.issuer),
                    (
                        "revocation_url",
                        &form.revocation_url,
                        &before.revocation_url,
                    ),
                    (
                        "introspection_url",
                        &form.introspection_url,
                        &before.introspection_url,
                    ),
                    (
                        "header_template",
                        &form.header_template,
                        &before.header_template,
                    ),
                ] {
                    if mode_changed || changed(now, then) {
                        if now.trim().is_empty() {
                            remove_key(doc, &oauth(key));
                        } else {
                            set_text(doc, &oauth(key), now.trim());
                        }
                    }
                }
                let client_auth = match form.client_auth.as_str() {
                    "body" | "none" | "basic" => form.client_auth.as_str(),
                    // Empty: the provider's choice (or Basic without one).
                    _ => "",
                };
                if (mode_changed || client_auth != before.client_auth) && !client_auth.is_empty() {
                    set_text(doc, &oauth("client_auth"), client_auth);
                } else if client_auth.is_empty() && !before.client_auth.is_empty() {
                    remove_key(doc, &oauth("client_auth"));
                }
                if mode_changed || form.pkce != before.pkce {
                    set_value(doc, &oauth("pkce"), toml_edit::Value::from(form.pkce));
                }
                if mode_changed || form.legacy_callback != before.legacy_callback {
                    if form.legacy_callback {
                        set_text(doc, &oauth("callback"), "legacy");
                    } else {
                        remove_key(doc, &oauth("callback"));
                    }
                }
                if form.client_secret.is_empty() && !before.client_secret.is_empty() {
                    remove_key(doc, &oauth("client_secret"));
                } else if !form.client_secret.is_empty() && form.client_secret != REDACTED {
                    let reference = secret_ref(&form.client_secret, "client_secret", new_secrets);
                    set_text(doc, &oauth("client_secret"), &reference);
                } else if renamed {
                    self.move_secret(
                        doc,
                        &oauth("client_secret"),
                        name,
                        "client_secret",
                        new_secrets,
                    );
                }
                if mode_changed
                    || changed(&form.extra_authorize_params, &before.extra_authorize_params)
                {
                    let mut extra = toml_edit::Table::new();
                    for (k, v) in form
                        .extra_authorize_params
                        .lines()
                        .filter_map(|line| line.split_once('='))
                        .map(|(k, v)| (k.trim(), v.trim()))
                        .filter(|(k, _)| !k.is_empty())
                    {
                        extra.insert(k, toml_edit::value(v));
                    }
                    remove_key(doc, &oauth("extra_authorize_params"));
                    if !extra.is_empty() {
                        if let Some(table) = doc
                            .get_mut("auth")
                            .and_then(|a| a.get_mut("oauth2"))
                            .and_then(|o| o.as_table_mut())
                        {
                            table.insert("extra_authorize_params", toml_edit::Item::Table(extra));
                        }
                    }
                }
            }
            _ => {}
        }
        if mode == "bearer" && renamed && form.token == REDACTED {
            self.move_secret(doc, &["auth", "token"], name, "token", new_secrets);
        }
        // Device boxes.
        let boxes = [
            ("root_names", &form.root_names, &before.root_names),
            ("feature_names", &form.feature_names, &before.feature_names),
            ("values", &form.values, &before.values),
            ("strings", &form.strings, &before.strings),
        ];
        read_only_changed(
            "devices",
            boxes.iter().any(|(_, now, then)| changed(now, then)),
        )?;
        for (key, now, then) in boxes {
            if changed(now, then) {
                if now.trim().is_empty() {
                    remove_key(doc, &["devices", key]);
                } else {
                    set_text(doc, &["devices", key], now.trim());
                }
            }
        }
        Ok(())
    }

    /// On a rename, a secret the vault holds under the old profile's name follows the profile:
    /// copied to the new name, and the reference updated. Other references stay as they are.
    fn move_secret(
        &self,
        doc: &mut toml_edit::DocumentMut,
        path: &[&str],
        name: &str,
        what: &str,
        new_secrets: &mut BTreeMap<String, String>,
    ) {
        let mut item: Option<&toml_edit::Item> = Some(doc.as_item());
        for key in path {
            item = item.and_then(|i| i.get(key));
        }
        let Some(reference) = item.and_then(|i| i.as_str()).map(str::to_string) else {
            return;
        };
        let Some(old_key) = reference
            .strip_prefix("${secret:")
            .and_then(|r| r.strip_suffix('}'))
            .map(str::trim)
        else {
            return;
        };
        let vault = self.source.as_ref().and_then(|s| s.vault.as_ref());
        let Some(value) = vault
            .and_then(|v| v.secrets().ok())
            .and_then(|all| all.get(old_key).cloned())
        else {
            return;
        };
        let new_key = secret_name(name, what);
        new_secrets.insert(new_key.clone(), value);
        set_text(doc, path, &format!("${{secret:{new_key}}}"));
    }
}

/// Saving a profile's form: its fields diffed against what the file showed, its secrets to the
/// vault.
struct ProfileSave<'a> {
    form: &'a ProfileForm,
    /// Set by `locate`.
    editing: Option<Editing>,
    /// Secrets the form brought, by their vault names.
    new_secrets: BTreeMap<String, String>,
}

impl FormSave for ProfileSave<'_> {
    const WHAT: &'static str = "profile";

    fn new_name(&self) -> &str {
        self.form.name.trim()
    }

    fn locate(&mut self, engine: &Engine, path_name: &str) -> Result<Located, EditError> {
        let source: &ProfileSource = engine.source.as_ref().ok_or(EditError::NoFolder)?;
        let name = self.form.name.trim();
        let set = engine.profiles();
        let editing = match set.get(path_name) {
            Some(profile) => Editing {
                file: profile.file.clone(),
                original: std::fs::read_to_string(&profile.file)
                    .map_err(|e| EditError::Io(format!("{}: {e}", profile.file.display())))?,
                before: ProfileForm::of(profile),
                loaded: true,
            },
            None if path_name != name => return Err(EditError::NotLoaded(path_name.to_string())),
            None => {
                let file = source.dir.join(format!("{name}.toml"));
                Editing {
                    original: read_or_new(&file)?,
                    file,
                    before: ProfileForm::default(),
                    loaded: false,
                }
            }
        };
        let renamed = editing.loaded && path_name != name;
        if renamed && set.get(name).is_some() {
            return Err(EditError::NameTaken(name.to_string()));
        }
        let target = if renamed {
            let target = source.dir.join(format!("{name}.toml"));
            if target.exists() {
                return Err(EditError::NameTaken(name.to_string()));
            }
            target
        } else {
            editing.file.clone()
        };
        let located = Located {
            file: editing.file.clone(),
            original: editing.original.clone(),
            target,
            renamed,
        };
        self.editing = Some(editing);
        Ok(located)
    }

    fn apply(
        &mut self,
        engine: &Engine,
        doc: &mut toml_edit::DocumentMut,
        located: &Located,
    ) -> Result<(), EditError> {
        let Some(editing) = &self.editing else {
            return Err(EditError::Io("the profile was not located".into()));
        };
        let name = self.form.name.trim();
        engine.apply_form(
            doc,
            editing,
            self.form,
            name,
            located.renamed,
            &mut self.new_secrets,
        )
    }

    /// Checked against the secrets as they will be.
    fn check(&self, engine: &Engine, located: &Located, text: &str) -> Result<(), EditError> {
        let source = engine.source.as_ref().ok_or(EditError::NoFolder)?;
        let secrets = source
            .secrets()
            .map_err(|(_, message)| EditError::Io(message))?
            .with_values(self.new_secrets.clone());
        let (profile, diagnostics) = profile::load_text(&located.target, text, &secrets);
        match profile {
            Some(_) => Ok(()),
            None => Err(EditError::Invalid(diagnostics)),
        }
    }

    /// New secrets go to the vault (encrypted, beside the tokens); the file refers to them.
    fn before_write(&self, engine: &Engine) -> Result<(), EditError> {
        if self.new_secrets.is_empty() {
            return Ok(());
        }
        match engine.source.as_ref().and_then(|s| s.vault.as_ref()) {
            Some(vault) => vault
                .store_secrets(&self.new_secrets)
                .map_err(|e| EditError::Io(e.to_string())),
            None => Err(EditError::Io(
                "secrets cannot be saved: this engine has no encrypted store".into(),
            )),
        }
    }
}
