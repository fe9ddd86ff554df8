//! Provider definitions: JSON files in the format of the plugin family (seed 001's property
//! names) plus Bellhop's own keys, read into the same shape as a profile's `[auth.oauth2]`
//! table. The definitions shipped with Bellhop (`providers/*.json`, compiled in) can be
//! overridden or extended by the files of a user folder; a profile names one with `provider =
//! "zoho-eu"` and adds only its client id, secret and scopes.
//!
//! Owns: reading a definition (unknown properties are warnings, a missing endpoint an error
//! naming the file), the catalog of definitions, and the map of each property to what it does.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use serde::Serialize;

use super::diagnostic::Diagnostic;
use super::raw::{RawOAuth2, RawTokenResponse};

/// The definitions shipped with Bellhop: (file name, text).
const BUILT_IN: &[(&str, &str)] = &[
    ("discord.json", include_str!("../../providers/discord.json")),
    ("dropbox.json", include_str!("../../providers/dropbox.json")),
    ("ecobee.json", include_str!("../../providers/ecobee.json")),
    ("fitbit.json", include_str!("../../providers/fitbit.json")),
    ("garmin.json", include_str!("../../providers/garmin.json")),
    ("github.json", include_str!("../../providers/github.json")),
    ("google.json", include_str!("../../providers/google.json")),
    (
        "microsoft.json",
        include_str!("../../providers/microsoft.json"),
    ),
    ("netatmo.json", include_str!("../../providers/netatmo.json")),
    ("resideo.json", include_str!("../../providers/resideo.json")),
    (
        "smartthings.json",
        include_str!("../../providers/smartthings.json"),
    ),
    ("spotify.json", include_str!("../../providers/spotify.json")),
    ("strava.json", include_str!("../../providers/strava.json")),
    ("tado.json", include_str!("../../providers/tado.json")),
    (
        "withings.json",
        include_str!("../../providers/withings.json"),
    ),
    ("zoho-au.json", include_str!("../../providers/zoho-au.json")),
    ("zoho-ca.json", include_str!("../../providers/zoho-ca.json")),
    ("zoho-cn.json", include_str!("../../providers/zoho-cn.json")),
    ("zoho-eu.json", include_str!("../../providers/zoho-eu.json")),
    ("zoho-in.json", include_str!("../../providers/zoho-in.json")),
    ("zoho-jp.json", include_str!("../../providers/zoho-jp.json")),
    ("zoho-us.json", include_str!("../../providers/zoho-us.json")),
];

/// The file names of the shipped definitions (a test keeps them in step with `providers/`).
pub fn built_in_files() -> impl Iterator<Item = &'static str> {
    BUILT_IN.iter().map(|(name, _)| *name)
}

/// Largest definition file read, in bytes.
const MAX_DEFINITION_BYTES: u64 = 256 * 1024;

/// Most definition files read from the user's folder.
const MAX_USER_DEFINITIONS: usize = 500;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum OAuthVersion {
    #[serde(rename = "2.0")]
    V2,
    #[serde(rename = "1.0a")]
    V1,
}

/// One provider, as read from its file.
#[derive(Debug, Clone, Serialize)]
pub struct ProviderDefinition {
    pub id: String,
    pub name: String,
    /// Where it came from: `providers/<file>` for a shipped one, the user's file otherwise.
    pub file: PathBuf,
    pub built_in: bool,
    pub oauth_version: OAuthVersion,
    /// The grants the provider supports, first the one a profile uses by default.
    pub grants: Vec<String>,
    /// The API's base URL (seed 001's `resource_host`).
    pub api_base: Option<String>,
    /// Where to register an application, and what to know.
    pub docs: Option<String>,
    /// Labels for the client id and secret fields (seed 001's `UIClientIdText` and
    /// `UIClientSecretText`).
    pub client_id_label: Option<String>,
    pub client_secret_label: Option<String>,
    /// The OAuth 1.0a endpoints and signature method, for such providers.
    pub oauth1: Option<OAuth1Definition>,
    /// The settings a profile inherits.
    #[serde(skip)]
    pub settings: RawOAuth2,
}

#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct OAuth1Definition {
    pub request_token_url: Option<String>,
    pub authorize_url: Option<String>,
    pub access_token_url: Option<String>,
    pub signature_method: Option<String>,
}

impl ProviderDefinition {
    /// The grant a profile uses when it names none.
    pub fn default_grant(&self) -> &str {
        self.grants
            .first()
            .map(String::as_str)
            .unwrap_or("authorization_code")
    }
}

/// Every known provider: the shipped ones, then the user's files over them.
#[derive(Debug, Default)]
pub struct ProviderCatalog {
    definitions: BTreeMap<String, Arc<ProviderDefinition>>,
    /// Problems of the definition files (warnings and errors).
    pub diagnostics: Vec<Diagnostic>,
}

impl ProviderCatalog {
    /// The shipped definitions, read once.
    pub fn built_in() -> &'static ProviderCatalog {
        static CATALOG: OnceLock<ProviderCatalog> = OnceLock::new();
        CATALOG.get_or_init(|| {
            let mut catalog = ProviderCatalog::default();
            for (name, text) in BUILT_IN {
                let file = Path::new("providers").join(name);
                catalog.add(&file, text, true);
            }
            catalog
        })
    }

    /// The shipped definitions with the `*.json` files of `user_dir` over them (a missing
    /// folder is none). A broken user file is reported and the shipped one of that id stays.
    pub fn load(user_dir: Option<&Path>) -> ProviderCatalog {
        let built_in = ProviderCatalog::built_in();
        let mut catalog = ProviderCatalog {
            definitions: built_in.definitions.clone(),
            diagnostics: built_in.diagnostics.clone(),
        };
        let Some(dir) = user_dir else {
            return catalog;
        };
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return catalog,
            Err(e) => {
                catalog.diagnostics.push(Diagnostic::error(
                    dir,
                    "",
                    format!("cannot read the providers folder: {e}"),
                ));
                return catalog;
            }
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        files.sort();
        if files.len() > MAX_USER_DEFINITIONS {
            catalog.diagnostics.push(Diagnostic::error(
                dir,
                "",
                format!(
                    "holds {} definitions; the first {MAX_USER_DEFINITIONS} by name are read",
                    files.len()
                ),
            ));
            files.truncate(MAX_USER_DEFINITIONS);
        }
        for file in files {
            match read_definition_file(&file) {
                Ok(text) => catalog.add(&file, &text, false),
                Err(diagnostic) => catalog.diagnostics.push(diagnostic),
            }
        }
        catalog
    }

    fn add(&mut self, file: &Path, text: &str, built_in: bool) {
        let (definition, diagnostics) = parse_definition(file, text, built_in);
        self.diagnostics.extend(diagnostics);
        if let Some(definition) = definition {
            self.definitions
                .insert(definition.id.clone(), Arc::new(definition));
        }
    }

    pub fn get(&self, id: &str) -> Option<&Arc<ProviderDefinition>> {
        self.definitions.get(id)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<ProviderDefinition>> {
        self.definitions.values()
    }

    pub fn ids(&self) -> Vec<&str> {
        self.definitions.keys().map(String::as_str).collect()
    }
}

fn read_definition_file(file: &Path) -> Result<String, Diagnostic> {
    use std::io::Read;
    let refuse = |message: String| Diagnostic::error(file, "", message);
    let metadata = std::fs::metadata(file).map_err(|e| refuse(format!("not readable: {e}")))?;
    if !metadata.is_file() {
        return Err(refuse("is not a regular file: skipped".into()));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_DEFINITION_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_DEFINITION_BYTES {
        return Err(refuse(format!(
            "is over the limit of {MAX_DEFINITION_BYTES} bytes for a provider definition"
        )));
    }
    String::from_utf8(bytes).map_err(|_| refuse("is not valid UTF-8 text".into()))
}

/// What each property of a definition does. Properties are matched without regard to case
/// (the family's own documents spell `accessFromRefreshTokenUrl` two ways). The table is
/// printed in `profiles/README.md`; a test keeps the two in step.
pub const PROPERTIES: &[(&str, &str)] = &[
    ("id", "The provider's id, which profiles name (`provider = \"zoho-eu\"`); default: the file name without `.json`."),
    ("name", "The name the UI and `bellhop providers` show."),
    ("oauth_version", "`2.0` (default) or `1.0`/`1.0a`: which protocol the provider speaks."),
    ("host", "The authorization server's host (with or without `https://`, may hold a path): the base of `authorize_path` and `token_path`."),
    ("authorize_path", "The authorize endpoint: a path under `host`, or a whole URL."),
    ("token_path", "The token endpoint: a path under `host`, or a whole URL."),
    ("accessFromRefreshTokenUrl", "Where refresh requests go, when not to the token endpoint."),
    ("resource_host", "The API's host: the base of `getProfileInfo`, and the origin the token may be sent to when a profile's URL is computed."),
    ("oauth2_bearer", "The token header's value with `{AccessToken}`; a bare `{AccessToken}` means `Bearer {AccessToken}`."),
    ("oauth2_scope", "The scopes a profile asks for when it names none."),
    ("SuccessVariable", "The callback parameter that carries the code (default `code`)."),
    ("ErrorVariable", "The callback parameter that carries a refusal (default `error`)."),
    ("TokenExpiresVariable", "Where the expiry is in the token answer (a JSONPath; default `expires_in`)."),
    ("TokenIssuedVariable", "Where the issue time is (seconds since 1970), for `TokenTimeoutCodepattern` `AddSecondsToIssued`."),
    ("TokenTimeout", "The token's lifetime in seconds when the answer does not say."),
    ("TokenTimeoutCodepattern", "How the expiry is read: `AddSecondsToNow` (default), `AddSecondsToIssued`, `UnixSeconds` (an absolute time, like Strava's `expires_at`), `UnixMilliseconds`, or `Fixed` (`TokenTimeout` from now)."),
    ("ProfileIdVariable", "The field of the profile answer that identifies the user; shown when there is no display name."),
    ("ProfileURLVariable", "A token-answer field holding the URL of the profile endpoint (replaces `getProfileInfo`)."),
    ("getProfileInfo", "The profile endpoint called after authorization: a path under `resource_host`, or a whole URL."),
    ("getProfileMethod", "`GET` (default) or `POST` for the profile endpoint."),
    ("TemplateDisplayName", "The display name from the profile answer, fields in braces: `{name}`, `{user.displayName}`."),
    ("TemplateEmail", "The e-mail address from the profile answer, fields in braces."),
    ("enable_proof", "Proof Key for Code Exchange (PKCE, S256); on unless `false`."),
    ("ProcessCodePattern", "Accepted, no effect: the family's only pattern is the generic OAuth 2.0 one, and `grants` says which flows a provider has."),
    ("UIWindowWidth", "Accepted, no effect: Bellhop opens the provider's page in a browser tab, not a sized window."),
    ("UIWindowHeight", "Accepted, no effect (as `UIWindowWidth`)."),
    ("PopUIWindowWidth", "Accepted, no effect (as `UIWindowWidth`)."),
    ("PopUIWindowHeight", "Accepted, no effect (as `UIWindowWidth`)."),
    ("XDUIWindowWidth", "Accepted, no effect: there is no desktop dialog."),
    ("XDUIWindowHeight", "Accepted, no effect: there is no desktop dialog."),
    ("UIClientIdText", "The label of the client id field in the profile editor."),
    ("UIClientSecretText", "The label of the client secret field in the profile editor."),
    ("request_token_path", "OAuth 1.0a: the temporary-credentials (request token) endpoint, under `host` or whole."),
    ("access_token_path", "OAuth 1.0a: the token-credentials (access token) endpoint, under `host` or whole."),
    ("signature_method", "OAuth 1.0a: `HMAC-SHA1` (default), `HMAC-SHA256`, `RSA-SHA1` or `PLAINTEXT`."),
    ("use_ssl", "OAuth 1.0a: `false` for a host reached over plain HTTP (requests are signed)."),
    ("grants", "Bellhop: the grants the provider supports, the default first (`authorization_code`, `client_credentials`, `device_code`, `password`, `implicit`)."),
    ("docs", "Bellhop: where to register an application, and what to know."),
    ("api_base", "Bellhop: the API's base URL (as `resource_host`)."),
    ("auth.oauth2 keys", "Bellhop: any key of a profile's `[auth.oauth2]` table (`client_auth`, `scope_separator`, `token_params`, `api_query`, `api_host_field`, `token_response`, `token_request`, `device_authorization_url`, `revocation_url`, `issuer`, `settings`, …), used as the profile's default."),
];

/// The `[auth.oauth2]` keys a definition may set directly.
const OAUTH2_KEYS: &[&str] = &[
    "grant",
    "client_id",
    "scopes",
    "scope_separator",
    "authorize_url",
    "token_url",
    "refresh_url",
    "device_authorization_url",
    "revocation_url",
    "introspection_url",
    "issuer",
    "callback",
    "api_origins",
    "api_host_field",
    "extra_authorize_params",
    "token_params",
    "api_query",
    "client_auth",
    "pkce",
    "header_template",
    "token_header",
    "token_query",
    "reauthorize_on",
    "expired_when",
    "body_format",
    "device",
    "token_request",
    "refresh_request",
    "token_response",
    "settings",
    "code_param",
    "error_param",
    "userinfo_url",
    "userinfo_method",
    "userinfo_url_field",
    "userinfo_id",
    "display_name_template",
    "email_template",
];

fn line_of(text: &str, key: &str) -> Option<usize> {
    let needle = format!("\"{key}\"");
    text.find(&needle)
        .map(|at| text[..at].matches('\n').count() + 1)
}

/// `https://` + host unless it names its scheme; no trailing `/`.
fn base_url(host: &str) -> String {
    let host = host.trim().trim_end_matches('/');
    if host.starts_with("https://") || host.starts_with("http://") {
        host.to_string()
    } else {
        format!("https://{host}")
    }
}

/// A path under `base`, or a whole URL as it is.
fn joined(base: Option<&str>, path: &str) -> Option<String> {
    let path = path.trim();
    if path.starts_with("https://") || path.starts_with("http://") {
        return Some(path.to_string());
    }
    let base = base?;
    let slash = if path.starts_with('/') { "" } else { "/" };
    Some(format!("{base}{slash}{path}"))
}

fn text_of(value: &serde_json::Value) -> Option<String> {
    match value {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Reads one definition. Returns it when it has no errors, and every diagnostic either way.
pub fn parse_definition(
    file: &Path,
    text: &str,
    built_in: bool,
) -> (Option<ProviderDefinition>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let root: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            diagnostics.push(
                Diagnostic::error(file, "", format!("is not valid JSON: {e}"))
                    .at_line(Some(e.line())),
            );
            return (None, diagnostics);
        }
    };
    let serde_json::Value::Object(mut top) = root else {
        diagnostics.push(Diagnostic::error(
            file,
            "",
            "a provider definition is a JSON object",
        ));
        return (None, diagnostics);
    };
    // The family nests the properties under "profile"; Bellhop also reads them at the top.
    let mut properties = match top.remove("profile") {
        Some(serde_json::Value::Object(inner)) => inner,
        Some(_) => {
            diagnostics.push(
                Diagnostic::error(file, "profile", "`profile` must be a JSON object")
                    .at_line(line_of(text, "profile")),
            );
            return (None, diagnostics);
        }
        None => serde_json::Map::new(),
    };
    for (key, value) in top {
        properties.entry(key).or_insert(value);
    }
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let error = |key: &str, message: String| {
        Diagnostic::error(file, key, message).at_line(line_of(text, key))
    };
    let mut found: BTreeMap<String, (String, serde_json::Value)> = BTreeMap::new();
    let mut oauth2_table = serde_json::Map::new();
    for (key, value) in properties {
        let lower = key.to_ascii_lowercase();
        if OAUTH2_KEYS.contains(&key.as_str()) {
            oauth2_table.insert(key, value);
        } else if PROPERTIES
            .iter()
            .any(|(name, _)| name.eq_ignore_ascii_case(&lower))
        {
            found.insert(lower, (key, value));
        } else {
            diagnostics.push(
                Diagnostic::warning(
                    file,
                    &key,
                    format!("`{key}` is not a provider property Bellhop knows: ignored"),
                )
                .at_line(line_of(text, &key)),
            );
        }
    }
    let get = |name: &str| -> Option<String> {
        found
            .get(&name.to_ascii_lowercase())
            .and_then(|(_, v)| text_of(v))
            .filter(|s| !s.trim().is_empty())
    };
    let mut settings: RawOAuth2 =
        match serde_json::from_value(serde_json::Value::Object(oauth2_table)) {
            Ok(settings) => settings,
            Err(e) => {
                diagnostics.push(error("", format!("a Bellhop key has the wrong type: {e}")));
                return (None, diagnostics);
            }
        };
    let id = get("id").unwrap_or(stem);
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        diagnostics.push(error(
            "id",
            format!("`{id}` is not an id: letters, digits, `-` and `_` only"),
        ));
        return (None, diagnostics);
    }
    let version = match get("oauth_version").as_deref().map(str::trim) {
        None | Some("2.0") | Some("2") => OAuthVersion::V2,
        Some("1.0") | Some("1.0a") | Some("1") => OAuthVersion::V1,
        Some(other) => {
            diagnostics.push(error(
                "oauth_version",
                format!("oauth_version `{other}` is not 2.0, 1.0 or 1.0a"),
            ));
            return (None, diagnostics);
        }
    };
    let host = get("host").map(|h| base_url(&h));
    let use_ssl = get("use_ssl").is_none_or(|v| v != "false");
    let host = host.map(|h| {
        if use_ssl {
            h
        } else {
            h.replacen("https://", "http://", 1)
        }
    });
    let api_base = get("api_base").or_else(|| get("resource_host").map(|h| base_url(&h)));
    let endpoint = |name: &str| get(name).and_then(|path| joined(host.as_deref(), &path));
    let mut problems = Vec::new();
    for name in [
        "authorize_path",
        "token_path",
        "request_token_path",
        "access_token_path",
    ] {
        if get(name).is_some() && endpoint(name).is_none() {
            problems.push((
                name.to_string(),
                format!("`{name}` is a path, so the definition needs `host`"),
            ));
        }
    }
    let oauth1 = (version == OAuthVersion::V1).then(|| OAuth1Definition {
        request_token_url: endpoint("request_token_path"),
        authorize_url: endpoint("authorize_path"),
        access_token_url: endpoint("access_token_path"),
        signature_method: get("signature_method"),
    });
    if version == OAuthVersion::V2 {
        settings.authorize_url = settings
            .authorize_url
            .or_else(|| endpoint("authorize_path"));
        settings.token_url = settings.token_url.or_else(|| endpoint("token_path"));
    }
    settings.refresh_url = settings
        .refresh_url
        .or_else(|| get("accessFromRefreshTokenUrl").and_then(|u| joined(host.as_deref(), &u)));
    settings.scopes = settings.scopes.or_else(|| get("oauth2_scope"));
    settings.header_template = settings.header_template.or_else(|| {
        get("oauth2_bearer").map(|t| {
            if t.trim() == "{AccessToken}" {
                "Bearer {AccessToken}".to_string()
            } else {
                t
            }
        })
    });
    settings.code_param = settings.code_param.or_else(|| get("SuccessVariable"));
    settings.error_param = settings.error_param.or_else(|| get("ErrorVariable"));
    settings.userinfo_url = settings.userinfo_url.or_else(|| {
        get("getProfileInfo").and_then(|p| joined(api_base.as_deref().or(host.as_deref()), &p))
    });
    settings.userinfo_method = settings.userinfo_method.or_else(|| get("getProfileMethod"));
    settings.userinfo_url_field = settings
        .userinfo_url_field
        .or_else(|| get("ProfileURLVariable"));
    settings.userinfo_id = settings.userinfo_id.or_else(|| get("ProfileIdVariable"));
    settings.display_name_template = settings
        .display_name_template
        .or_else(|| get("TemplateDisplayName"));
    settings.email_template = settings.email_template.or_else(|| get("TemplateEmail"));
    if let Some(proof) = get("enable_proof") {
        settings.pkce = settings.pkce.or(Some(proof != "false"));
    }
    let expiry_pattern =
        get("TokenTimeoutCodepattern").map(|pattern| match pattern.to_ascii_lowercase().as_str() {
            "addsecondstonow" => Ok("in_seconds"),
            "addsecondstoissued" => Ok("after_issued"),
            "unixseconds" | "epochseconds" => Ok("at_epoch_seconds"),
            "unixmilliseconds" | "epochmilliseconds" => Ok("at_epoch_milliseconds"),
            "fixed" => Ok("fixed"),
            _ => Err(pattern),
        });
    let expiry = match expiry_pattern {
        Some(Ok(expiry)) => Some(expiry.to_string()),
        Some(Err(pattern)) => {
            problems.push((
                "TokenTimeoutCodepattern".into(),
                format!("`{pattern}` is not AddSecondsToNow, AddSecondsToIssued, UnixSeconds, UnixMilliseconds or Fixed"),
            ));
            None
        }
        None => None,
    };
    let lifetime = match get("TokenTimeout") {
        Some(text) => match text.trim().parse::<u64>() {
            Ok(seconds) => Some(seconds),
            Err(_) => {
                problems.push((
                    "TokenTimeout".into(),
                    format!("`{text}` is not a number of seconds"),
                ));
                None
            }
        },
        None => None,
    };
    let from_seed = RawTokenResponse {
        expires: get("TokenExpiresVariable"),
        expiry,
        issued: get("TokenIssuedVariable"),
        lifetime,
        ..RawTokenResponse::default()
    };
    settings.token_response = Some(match settings.token_response.take() {
        Some(own) => own.over(from_seed),
        None => from_seed,
    });
    let grants: Vec<String> = match found.get("grants").map(|(_, v)| v) {
        Some(serde_json::Value::Array(items)) => items.iter().filter_map(text_of).collect(),
        Some(_) => {
            problems.push(("grants".into(), "`grants` is a list of grant names".into()));
            Vec::new()
        }
        None if version == OAuthVersion::V1 => vec!["oauth1".to_string()],
        None => vec!["authorization_code".to_string()],
    };
    for grant in &grants {
        if !super::resolve::GRANTS.contains(&grant.as_str()) && grant != "oauth1" {
            problems.push((
                "grants".into(),
                format!(
                    "grant `{grant}` is not one of {}",
                    super::resolve::GRANTS.join(", ")
                ),
            ));
        }
    }
    if version == OAuthVersion::V2 && settings.issuer.is_none() {
        if settings.token_url.is_none() {
            problems.push((
                "token_path".into(),
                "the definition has no token endpoint (`token_path`, `token_url` or an `issuer` to discover it from)".into(),
            ));
        }
        let browser = grants
            .iter()
            .any(|g| g == "authorization_code" || g == "implicit");
        if browser && settings.authorize_url.is_none() {
            problems.push((
                "authorize_path".into(),
                "the provider's grants need a browser, but the definition has no authorize endpoint (`authorize_path` or `authorize_url`)".into(),
            ));
        }
        if grants.iter().any(|g| g == "device_code") && settings.device_authorization_url.is_none()
        {
            problems.push((
                "device_authorization_url".into(),
                "the device_code grant needs `device_authorization_url`".into(),
            ));
        }
    }
    if let Some(oauth1) = &oauth1 {
        for (name, value) in [
            ("request_token_path", &oauth1.request_token_url),
            ("authorize_path", &oauth1.authorize_url),
            ("access_token_path", &oauth1.access_token_url),
        ] {
            if value.is_none() {
                problems.push((
                    name.into(),
                    format!("an OAuth 1.0a definition needs `{name}`"),
                ));
            }
        }
    }
    let failed = !problems.is_empty();
    for (key, message) in problems {
        diagnostics.push(error(&key, message));
    }
    if failed {
        return (None, diagnostics);
    }
    settings.provider = Some(id.clone());
    let definition = ProviderDefinition {
        name: get("name").unwrap_or_else(|| id.clone()),
        id,
        file: file.to_path_buf(),
        built_in,
        oauth_version: version,
        grants,
        api_base,
        docs: get("docs"),
        client_id_label: get("UIClientIdText"),
        client_secret_label: get("UIClientSecretText"),
        oauth1,
        settings,
    };
    (Some(definition), diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_shipped_definition_loads_cleanly() {
        let catalog = ProviderCatalog::built_in();
        assert!(catalog.diagnostics.is_empty(), "{:?}", catalog.diagnostics);
        assert_eq!(catalog.iter().count(), BUILT_IN.len());
        let mut on_disk: Vec<String> =
            std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join("providers"))
                .map(|entries| {
                    entries
                        .filter_map(Result::ok)
                        .map(|e| e.file_name().to_string_lossy().into_owned())
                        .filter(|n| n.ends_with(".json"))
                        .collect()
                })
                .unwrap_or_default();
        on_disk.sort();
        let shipped: Vec<String> = built_in_files().map(str::to_string).collect();
        assert_eq!(on_disk, shipped, "providers/ and BUILT_IN differ");
    }

    #[test]
    fn the_seed_format_is_read_and_mapped() {
        let text = r#"{
            "profile": {
                "host": "accounts.google.com/o",
                "authorize_path": "/oauth2/v2/auth",
                "token_path" : "/oauth/access_token",
                "resource_host": "www.googleapis.com",
                "oauth_version": "2.0",
                "oauth2_bearer": "{AccessToken}",
                "oauth2_scope": "profile email",
                "TokenTimeoutCodepattern": "AddSecondsToNow",
                "SuccessVariable": "code",
                "TokenExpiresVariable": "expires_in",
                "ProfileIdVariable": "id",
                "getProfileInfo": "/oauth2/v1/userinfo",
                "accessFromRefreshTokenUrl": "https://www.googleapis.com/oauth2/v4/token",
                "TemplateDisplayName": "{name}",
                "ProcessCodePattern": "oAuth 2.0 - Generic",
                "UIWindowWidth": "500:100",
                "UIWindowHeight": "550:40",
                "FavouriteColour": "blue"
            }
        }"#;
        let (definition, diagnostics) = parse_definition(Path::new("/u/seedy.json"), text, false);
        let Some(definition) = definition else {
            panic!("{diagnostics:?}")
        };
        assert_eq!(definition.id, "seedy");
        let s = &definition.settings;
        assert_eq!(
            s.authorize_url.as_deref(),
            Some("https://accounts.google.com/o/oauth2/v2/auth")
        );
        assert_eq!(
            s.token_url.as_deref(),
            Some("https://accounts.google.com/o/oauth/access_token")
        );
        assert_eq!(
            s.refresh_url.as_deref(),
            Some("https://www.googleapis.com/oauth2/v4/token")
        );
        assert_eq!(
            s.userinfo_url.as_deref(),
            Some("https://www.googleapis.com/oauth2/v1/userinfo")
        );
        assert_eq!(s.header_template.as_deref(), Some("Bearer {AccessToken}"));
        assert_eq!(s.scopes.as_deref(), Some("profile email"));
        assert_eq!(
            definition.api_base.as_deref(),
            Some("https://www.googleapis.com")
        );
        assert_eq!(diagnostics.len(), 1, "{diagnostics:?}");
        assert!(!diagnostics[0].is_error());
        assert!(diagnostics[0].message.contains("FavouriteColour"));
        assert_eq!(diagnostics[0].line, Some(20));
    }

    #[test]
    fn a_definition_without_a_token_endpoint_is_an_error_naming_the_file() {
        let (definition, diagnostics) = parse_definition(
            Path::new("/u/broken.json"),
            r#"{"host": "example.com", "authorize_path": "/auth"}"#,
            false,
        );
        assert!(definition.is_none());
        assert!(diagnostics.iter().any(|d| d.is_error()
            && d.file == Path::new("/u/broken.json")
            && d.message.contains("token endpoint")));
        let (definition, _) = parse_definition(Path::new("/u/x.json"), "[", false);
        assert!(definition.is_none());
    }

    #[test]
    fn user_files_override_and_a_broken_one_leaves_the_shipped_one() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let write = |name: &str, text: &str| {
            std::fs::write(dir.path().join(name), text).unwrap_or_else(|e| panic!("{e}"))
        };
        write(
            "discord.json",
            r#"{"name":"My Discord","host":"https://discord.example","authorize_path":"/a","token_path":"/t"}"#,
        );
        write("github.json", r#"{"host": "#);
        write(
            "acme.json",
            r#"{"token_url":"https://acme.example/token","grants":["client_credentials"]}"#,
        );
        let catalog = ProviderCatalog::load(Some(dir.path()));
        assert_eq!(
            catalog.get("discord").map(|d| d.name.as_str()),
            Some("My Discord")
        );
        assert!(catalog.get("github").is_some_and(|d| d.built_in));
        assert_eq!(
            catalog.get("acme").map(|d| d.default_grant()),
            Some("client_credentials")
        );
        assert!(catalog
            .diagnostics
            .iter()
            .any(|d| d.is_error() && d.file.ends_with("github.json")));
    }

    #[test]
    fn a_folder_of_too_many_definitions_is_read_only_so_far() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        for i in 0..=MAX_USER_DEFINITIONS {
            std::fs::write(
                dir.path().join(format!("p{i:04}.json")),
                r#"{"token_url": "https://t.example/token", "grants": ["client_credentials"]}"#,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        }
        let catalog = ProviderCatalog::load(Some(dir.path()));
        assert!(catalog.get("p0499").is_some() && catalog.get("p0500").is_none());
        assert!(catalog
            .diagnostics
            .iter()
            .any(|d| d.message.contains("first 500")));
    }
}
