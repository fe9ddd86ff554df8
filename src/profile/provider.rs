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

/// Declares the provider properties once: the parser reads them as [`Property`] values (so it
/// cannot read a name the table lacks) and the docs list them from [`PROPERTIES`] (so a
/// property documented but never read is a dead variant, which the build refuses).
macro_rules! provider_properties {
    ($($variant:ident => $name:literal : $doc:literal,)*) => {
        /// A property of a provider definition file.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        enum Property {
            $($variant,)*
        }

        impl Property {
            const ALL: &'static [Property] = &[$(Property::$variant,)*];

            fn name(self) -> &'static str {
                match self {
                    $(Property::$variant => $name,)*
                }
            }

            /// This property's bit in a set of properties read.
            fn bit(self) -> u64 {
                1 << (self as u32)
            }
        }

        /// What each property of a definition does. Properties are matched without regard to
        /// case (the family's own documents spell `accessFromRefreshTokenUrl` two ways). The
        /// table is printed in `profiles/README.md`; a test keeps the two in step.
        pub const PROPERTIES: &[(&str, &str)] = &[
            $(($name, $doc),)*
            ("auth.oauth2 keys", "Bellhop: any key of a profile's `[auth.oauth2]` table (`client_auth`, `scope_separator`, `token_params`, `api_query`, `api_host_field`, `token_response`, `token_request`, `device_authorization_url`, `revocation_url`, `issuer`, `settings`, …), used as the profile's default."),
        ];
    };
}

provider_properties! {
    Id => "id": "The provider's id, which profiles name (`provider = \"zoho-eu\"`); default: the file name without `.json`.",
    Name => "name": "The name the UI and `bellhop providers` show.",
    OauthVersion => "oauth_version": "`2.0` (default) or `1.0`/`1.0a`: which protocol the provider speaks.",
    Host => "host": "The authorization server's host (with or without `https://`, may hold a path): the base of `authorize_path` and `token_path`.",
    AuthorizePath => "authorize_path": "The authorize endpoint: a path under `host`, or a whole URL.",
    TokenPath => "token_path": "The token endpoint: a path under `host`, or a whole URL.",
    AccessFromRefreshTokenUrl => "accessFromRefreshTokenUrl": "Where refresh requests go, when not to the token endpoint.",
    ResourceHost => "resource_host": "The API's host: the base of `getProfileInfo`, and the origin the token may be sent to when a profile's URL is computed.",
    Oauth2Bearer => "oauth2_bearer": "The token header's value with `{AccessToken}`; a bare `{AccessToken}` means `Bearer {AccessToken}`.",
    Oauth2Scope => "oauth2_scope": "The scopes a profile asks for when it names none.",
    SuccessVariable => "SuccessVariable": "The callback parameter that carries the code (default `code`).",
    ErrorVariable => "ErrorVariable": "The callback parameter that carries a refusal (default `error`).",
    TokenExpiresVariable => "TokenExpiresVariable": "Where the expiry is in the token answer (a JSONPath; default `expires_in`).",
    TokenIssuedVariable => "TokenIssuedVariable": "Where the issue time is (seconds since 1970), for `TokenTimeoutCodepattern` `AddSecondsToIssued`.",
    TokenTimeout => "TokenTimeout": "The token's lifetime in seconds when the answer does not say.",
    TokenTimeoutCodepattern => "TokenTimeoutCodepattern": "How the expiry is read: `AddSecondsToNow` (default), `AddSecondsToIssued`, `UnixSeconds` (an absolute time, like Strava's `expires_at`), `UnixMilliseconds`, or `Fixed` (`TokenTimeout` from now).",
    ProfileIdVariable => "ProfileIdVariable": "The field of the profile answer that identifies the user; shown when there is no display name.",
    ProfileURLVariable => "ProfileURLVariable": "A token-answer field holding the URL of the profile endpoint (replaces `getProfileInfo`).",
    GetProfileInfo => "getProfileInfo": "The profile endpoint called after authorization: a path under `resource_host`, or a whole URL.",
    GetProfileMethod => "getProfileMethod": "`GET` (default) or `POST` for the profile endpoint.",
    TemplateDisplayName => "TemplateDisplayName": "The display name from the profile answer, fields in braces: `{name}`, `{user.displayName}`.",
    TemplateEmail => "TemplateEmail": "The e-mail address from the profile answer, fields in braces.",
    EnableProof => "enable_proof": "Proof Key for Code Exchange (PKCE, S256); on unless `false`.",
    ProcessCodePattern => "ProcessCodePattern": "Accepted, no effect: the family's only pattern is the generic OAuth 2.0 one, and `grants` says which flows a provider has.",
    UIWindowWidth => "UIWindowWidth": "Accepted, no effect: Bellhop opens the provider's page in a browser tab, not a sized window.",
    UIWindowHeight => "UIWindowHeight": "Accepted, no effect (as `UIWindowWidth`).",
    PopUIWindowWidth => "PopUIWindowWidth": "Accepted, no effect (as `UIWindowWidth`).",
    PopUIWindowHeight => "PopUIWindowHeight": "Accepted, no effect (as `UIWindowWidth`).",
    XDUIWindowWidth => "XDUIWindowWidth": "Accepted, no effect: there is no desktop dialog.",
    XDUIWindowHeight => "XDUIWindowHeight": "Accepted, no effect: there is no desktop dialog.",
    UIClientIdText => "UIClientIdText": "The label of the client id field in the profile editor.",
    UIClientSecretText => "UIClientSecretText": "The label of the client secret field in the profile editor.",
    RequestTokenPath => "request_token_path": "OAuth 1.0a: the temporary-credentials (request token) endpoint, under `host` or whole.",
    AccessTokenPath => "access_token_path": "OAuth 1.0a: the token-credentials (access token) endpoint, under `host` or whole.",
    SignatureMethod => "signature_method": "OAuth 1.0a: `HMAC-SHA1` (default), `HMAC-SHA256`, `RSA-SHA1` or `PLAINTEXT`.",
    UseSsl => "use_ssl": "OAuth 1.0a: `false` for a host reached over plain HTTP (requests are signed).",
    Grants => "grants": "Bellhop: the grants the provider supports, the default first (`authorization_code`, `client_credentials`, `device_code`, `password`, `implicit`).",
    Docs => "docs": "Bellhop: where to register an application, and what to know.",
    ApiBase => "api_base": "Bellhop: the API's base URL (as `resource_host`).",
}

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
    parse_definition_noting_reads(file, text, built_in, &std::cell::Cell::new(0))
}

/// Stage 2: how the seed's properties say to read a token answer (where the expiry is, how it
/// counts, the lifetime when the answer says none); problems as `(key, problem)`.
fn token_answer_properties(
    get: &impl Fn(Property) -> Option<String>,
    problems: &mut Vec<(String, String)>,
) -> RawTokenResponse {
    let expiry_pattern = get(Property::TokenTimeoutCodepattern).map(|pattern| {
        match pattern.to_ascii_lowercase().as_str() {
            "addsecondstonow" => Ok("in_seconds"),
            "addsecondstoissued" => Ok("after_issued"),
            "unixseconds" | "epochseconds" => Ok("at_epoch_seconds"),
            "unixmilliseconds" | "epochmilliseconds" => Ok("at_epoch_milliseconds"),
            "fixed" => Ok("fixed"),
            _ => Err(pattern),
        }
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
    let lifetime = match get(Property::TokenTimeout) {
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
    RawTokenResponse {
        expires: get(Property::TokenExpiresVariable),
        expiry,
        issued: get(Property::TokenIssuedVariable),
        lifetime,
        ..RawTokenResponse::default()
    }
}

/// Stage 3: the endpoints the definition's grants need and it does not give (an issuer to
/// discover them from will do), as `(key, problem)`.
fn missing_endpoints(
    version: OAuthVersion,
    grants: &[String],
    settings: &RawOAuth2,
    oauth1: Option<&OAuth1Definition>,
) -> Vec<(String, String)> {
    let mut missing = Vec::new();
    if version == OAuthVersion::V2 && settings.issuer.is_none() {
        if settings.token_url.is_none() {
            missing.push((
                "token_path".into(),
                "the definition has no token endpoint (`token_path`, `token_url` or an `issuer` to discover it from)".into(),
            ));
        }
        let browser = grants
            .iter()
            .any(|g| g == "authorization_code" || g == "implicit");
        if browser && settings.authorize_url.is_none() {
            missing.push((
                "authorize_path".into(),
                "the provider's grants need a browser, but the definition has no authorize endpoint (`authorize_path` or `authorize_url`)".into(),
            ));
        }
        if grants.iter().any(|g| g == "device_code") && settings.device_authorization_url.is_none()
        {
            missing.push((
                "device_authorization_url".into(),
                "the device_code grant needs `device_authorization_url`".into(),
            ));
        }
    }
    if let Some(oauth1) = oauth1 {
        for (name, value) in [
            ("request_token_path", &oauth1.request_token_url),
            ("authorize_path", &oauth1.authorize_url),
            ("access_token_path", &oauth1.access_token_url),
        ] {
            if value.is_none() {
                missing.push((
                    name.into(),
                    format!("an OAuth 1.0a definition needs `{name}`"),
                ));
            }
        }
    }
    missing
}

/// The documented properties a definition holds, by their names in the table.
type Found = BTreeMap<&'static str, serde_json::Value>;

/// Stage 1: the JSON object's properties (under `"profile"`, as the family nests them, or at
/// the top), each a documented [`Property`] or an `[auth.oauth2]` key; anything else is a
/// warning naming it. `None` when the text is not a JSON object (said in `diagnostics`).
fn read_properties(
    file: &Path,
    text: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Found, serde_json::Map<String, serde_json::Value>)> {
    let root: serde_json::Value = match serde_json::from_str(text) {
        Ok(value) => value,
        Err(e) => {
            diagnostics.push(
                Diagnostic::error(file, "", format!("is not valid JSON: {e}"))
                    .at_line(Some(e.line())),
            );
            return None;
        }
    };
    let serde_json::Value::Object(mut top) = root else {
        diagnostics.push(Diagnostic::error(
            file,
            "",
            "a provider definition is a JSON object",
        ));
        return None;
    };
    // The family nests the properties under "profile"; Bellhop also reads them at the top.
    let mut properties = match top.remove("profile") {
        Some(serde_json::Value::Object(inner)) => inner,
        Some(_) => {
            diagnostics.push(
                Diagnostic::error(file, "profile", "`profile` must be a JSON object")
                    .at_line(line_of(text, "profile")),
            );
            return None;
        }
        None => serde_json::Map::new(),
    };
    for (key, value) in top {
        properties.entry(key).or_insert(value);
    }
    let mut found = Found::new();
    let mut oauth2_table = serde_json::Map::new();
    for (key, value) in properties {
        if OAUTH2_KEYS.contains(&key.as_str()) {
            oauth2_table.insert(key, value);
        } else if let Some(property) = Property::ALL
            .iter()
            .find(|p| p.name().eq_ignore_ascii_case(&key))
        {
            found.insert(property.name(), value);
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
    Some((found, oauth2_table))
}

/// [`parse_definition`], setting bit `i` of `read` when it reads `Property::ALL[i]` (a test
/// checks that every documented property is read by the parser).
fn parse_definition_noting_reads(
    file: &Path,
    text: &str,
    built_in: bool,
    read: &std::cell::Cell<u64>,
) -> (Option<ProviderDefinition>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let Some((mut found, oauth2_table)) = read_properties(file, text, &mut diagnostics) else {
        return (None, diagnostics);
    };
    let stem = file
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let error = |key: &str, message: String| {
        Diagnostic::error(file, key, message).at_line(line_of(text, key))
    };
    // Read once each, for what the family documents them to do; these are read only to be
    // accepted: the family's window sizes and its single code pattern mean nothing here.
    for accepted in [
        Property::ProcessCodePattern,
        Property::UIWindowWidth,
        Property::UIWindowHeight,
        Property::PopUIWindowWidth,
        Property::PopUIWindowHeight,
        Property::XDUIWindowWidth,
        Property::XDUIWindowHeight,
    ] {
        read.set(read.get() | accepted.bit());
        found.remove(accepted.name());
    }
    let get = |property: Property| -> Option<String> {
        read.set(read.get() | property.bit());
        found
            .get(property.name())
            .and_then(text_of)
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
    let id = get(Property::Id).unwrap_or(stem);
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
    let version = match get(Property::OauthVersion).as_deref().map(str::trim) {
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
    let host = get(Property::Host).map(|h| base_url(&h));
    let use_ssl = get(Property::UseSsl).is_none_or(|v| v != "false");
    let host = host.map(|h| {
        if use_ssl {
            h
        } else {
            h.replacen("https://", "http://", 1)
        }
    });
    let api_base =
        get(Property::ApiBase).or_else(|| get(Property::ResourceHost).map(|h| base_url(&h)));
    let endpoint =
        |property: Property| get(property).and_then(|path| joined(host.as_deref(), &path));
    let mut problems = Vec::new();
    for property in [
        Property::AuthorizePath,
        Property::TokenPath,
        Property::RequestTokenPath,
        Property::AccessTokenPath,
    ] {
        if get(property).is_some() && endpoint(property).is_none() {
            let name = property.name();
            problems.push((
                name.to_string(),
                format!("`{name}` is a path, so the definition needs `host`"),
            ));
        }
    }
    let oauth1 = (version == OAuthVersion::V1).then(|| OAuth1Definition {
        request_token_url: endpoint(Property::RequestTokenPath),
        authorize_url: endpoint(Property::AuthorizePath),
        access_token_url: endpoint(Property::AccessTokenPath),
        signature_method: get(Property::SignatureMethod),
    });
    if version == OAuthVersion::V2 {
        settings.authorize_url = settings
            .authorize_url
            .or_else(|| endpoint(Property::AuthorizePath));
        settings.token_url = settings.token_url.or_else(|| endpoint(Property::TokenPath));
    }
    settings.refresh_url = settings.refresh_url.or_else(|| {
        get(Property::AccessFromRefreshTokenUrl).and_then(|u| joined(host.as_deref(), &u))
    });
    settings.scopes = settings.scopes.or_else(|| get(Property::Oauth2Scope));
    settings.header_template = settings.header_template.or_else(|| {
        get(Property::Oauth2Bearer).map(|t| {
            if t.trim() == "{AccessToken}" {
                "Bearer {AccessToken}".to_string()
            } else {
                t
            }
        })
    });
    settings.code_param = settings
        .code_param
        .or_else(|| get(Property::SuccessVariable));
    settings.error_param = settings
        .error_param
        .or_else(|| get(Property::ErrorVariable));
    settings.userinfo_url = settings.userinfo_url.or_else(|| {
        get(Property::GetProfileInfo)
            .and_then(|p| joined(api_base.as_deref().or(host.as_deref()), &p))
    });
    settings.userinfo_method = settings
        .userinfo_method
        .or_else(|| get(Property::GetProfileMethod));
    settings.userinfo_url_field = settings
        .userinfo_url_field
        .or_else(|| get(Property::ProfileURLVariable));
    settings.userinfo_id = settings
        .userinfo_id
        .or_else(|| get(Property::ProfileIdVariable));
    settings.display_name_template = settings
        .display_name_template
        .or_else(|| get(Property::TemplateDisplayName));
    settings.email_template = settings
        .email_template
        .or_else(|| get(Property::TemplateEmail));
    if let Some(proof) = get(Property::EnableProof) {
        settings.pkce = settings.pkce.or(Some(proof != "false"));
    }
    let from_seed = token_answer_properties(&get, &mut problems);
    settings.token_response = Some(match settings.token_response.take() {
        Some(own) => own.over(from_seed),
        None => from_seed,
    });
    read.set(read.get() | Property::Grants.bit());
    let grants: Vec<String> = match found.get(Property::Grants.name()) {
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
    problems.extend(missing_endpoints(
        version,
        &grants,
        &settings,
        oauth1.as_ref(),
    ));
    let failed = !problems.is_empty();
    for (key, message) in problems {
        diagnostics.push(error(&key, message));
    }
    if failed {
        return (None, diagnostics);
    }
    settings.provider = Some(id.clone());
    let definition = ProviderDefinition {
        name: get(Property::Name).unwrap_or_else(|| id.clone()),
        id,
        file: file.to_path_buf(),
        built_in,
        oauth_version: version,
        grants,
        api_base,
        docs: get(Property::Docs),
        client_id_label: get(Property::UIClientIdText),
        client_secret_label: get(Property::UIClientSecretText),
        oauth1,
        settings,
    };
    (Some(definition), diagnostics)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every `[auth.oauth2]` key may be a definition's default, except what belongs to one
    /// profile: its provider, its secrets, its redirect and its user.
    #[test]
    fn definitions_may_set_every_profile_key_but_a_profiles_own() {
        let own = [
            "client_secret",
            "password",
            "provider",
            "redirect_url",
            "username",
        ];
        let mut keys: Vec<&str> = OAUTH2_KEYS.iter().chain(own.iter()).copied().collect();
        keys.sort_unstable();
        assert_eq!(keys, crate::profile::raw::field_names::<RawOAuth2>());
    }

    /// The docs' table and the parser cannot drift: every documented property is read when a
    /// definition holds it (an OAuth 2.0 and an OAuth 1.0a definition between them).
    #[test]
    fn every_documented_property_is_read_by_the_parser() {
        assert!(Property::ALL.len() <= 64, "the read set is a u64");
        let oauth2 = r#"{"id": "every", "name": "Every", "oauth_version": "2.0",
            "host": "auth.example.com", "authorize_path": "/a", "token_path": "/t",
            "accessFromRefreshTokenUrl": "/r", "resource_host": "api.example.com",
            "oauth2_bearer": "{AccessToken}", "oauth2_scope": "s", "SuccessVariable": "code",
            "ErrorVariable": "error", "TokenExpiresVariable": "expires_in",
            "TokenIssuedVariable": "iat", "TokenTimeout": "3600",
            "TokenTimeoutCodepattern": "AddSecondsToNow", "ProfileIdVariable": "id",
            "ProfileURLVariable": "profile_url", "getProfileInfo": "/me",
            "getProfileMethod": "GET", "TemplateDisplayName": "{name}",
            "TemplateEmail": "{email}", "enable_proof": "true", "ProcessCodePattern": "x",
            "UIWindowWidth": "1", "UIWindowHeight": "1", "PopUIWindowWidth": "1",
            "PopUIWindowHeight": "1", "XDUIWindowWidth": "1", "XDUIWindowHeight": "1",
            "UIClientIdText": "Id", "UIClientSecretText": "Secret", "use_ssl": "true",
            "request_token_path": "/rt", "access_token_path": "/at",
            "grants": ["authorization_code"], "docs": "d", "api_base": "https://api.example.com"}"#;
        let oauth1 = r#"{"id": "old", "oauth_version": "1.0a", "host": "auth.example.com",
            "request_token_path": "/rt", "authorize_path": "/a", "access_token_path": "/at",
            "signature_method": "HMAC-SHA1"}"#;
        let read = std::cell::Cell::new(0);
        for text in [oauth2, oauth1] {
            let (definition, diagnostics) =
                parse_definition_noting_reads(Path::new("every.json"), text, false, &read);
            assert!(definition.is_some(), "{diagnostics:?}");
        }
        let unread: Vec<&str> = Property::ALL
            .iter()
            .filter(|p| read.get() & p.bit() == 0)
            .map(|p| p.name())
            .collect();
        assert!(unread.is_empty(), "documented but never read: {unread:?}");
    }

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
