//! HTTP profiles (configuration loading): reading profile files, reporting every problem with
//! file, line, key and column, and compiling the valid ones into [`Profile`]s whose URLs,
//! templates, expressions and auth settings are known to be well formed.
//!
//! Also owns provider definitions ([`provider`]), which profiles name for their OAuth settings.
//!
//! Uses the expression core to compile and the OAuth core's types for what a token request and
//! answer look like; knows nothing of the engine, devices, storage or web.

pub mod diagnostic;
pub mod provider;
pub(crate) mod raw;
mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use crate::expr::{Expression, ExtractionPlan, Template};
use crate::secret::{Secret, SecretSource};
pub use diagnostic::{Diagnostic, Severity};
pub use provider::{ProviderCatalog, ProviderDefinition, PROPERTIES as PROVIDER_PROPERTIES};
pub use resolve::{name_problem, split_box, GRANTS, MAX_LISTEN_BODY_BYTES, MAX_NAME_CHARS};

/// A compiled, valid profile.
#[derive(Debug, Clone)]
pub struct Profile {
    pub name: String,
    pub file: PathBuf,
    pub description: String,
    /// What an outgoing profile sends; `None` for a listening profile.
    pub request: Option<RequestSpec>,
    /// What a listening profile accepts; `None` for an outgoing profile.
    pub listen: Option<ListenSpec>,
    /// What an MQTT profile subscribes to and publishes (through the MQTT bridge).
    pub mqtt: Option<MqttSpec>,
    pub auth: AuthSpec,
    pub mapping: DeviceMapping,
    /// What the mapping's expressions read from the response as JSON, for one-pass extraction.
    pub response_plan: Arc<ExtractionPlan>,
    /// What the request templates read from the action text as JSON.
    pub request_plan: Arc<ExtractionPlan>,
    /// How many run records to keep.
    pub history_keep: usize,
    /// Whether Home Assistant is offered a button that runs this profile's action.
    pub home_assistant_button: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
pub enum Method {
    #[serde(rename = "GET")]
    Get,
    #[serde(rename = "POST")]
    Post,
    #[serde(rename = "PUT")]
    Put,
    #[serde(rename = "PATCH")]
    Patch,
    #[serde(rename = "DELETE")]
    Delete,
}

impl Method {
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Patch => "PATCH",
            Method::Delete => "DELETE",
        }
    }
}

#[derive(Debug, Clone)]
pub struct RequestSpec {
    pub method: Method,
    pub url: Template,
    /// The URL parsed once, when it is literal text (no `${…}`): every request starts from a
    /// copy instead of parsing it again.
    pub fixed_url: Option<url::Url>,
    /// URL-encode what `${…}` segments splice into the URL (the default).
    pub encode_url_segments: bool,
    /// The URL reads the action text (`input`): it is then not also sent as the body.
    pub url_reads_input: bool,
    pub headers: Vec<(String, Template)>,
    pub body: Option<BodySpec>,
    pub timeout: Duration,
    pub max_response_bytes: u64,
    pub verify_tls: bool,
}

impl RequestSpec {
    /// The origin every request of this profile goes to, when the URL's scheme, host and port
    /// are literal text (not computed by an expression).
    pub fn static_origin(&self) -> Option<url::Origin> {
        let Some(crate::expr::TemplatePart::Text(prefix)) = self.url.parts().first() else {
            return None;
        };
        let authority = if self.url.parts().len() == 1 {
            prefix.as_str()
        } else {
            let after_scheme = prefix.find("://")? + 3;
            let end = prefix[after_scheme..].find(['/', '?', '#'])?;
            &prefix[..after_scheme + end]
        };
        let url = url::Url::parse(authority).ok()?;
        url.host()?;
        Some(url.origin())
    }
}

/// An MQTT profile: each message on `subscribe` is its `input` (and `Topic()` the topic); its
/// action publishes the action text to `publish`.
#[derive(Debug, Clone)]
pub struct MqttSpec {
    pub subscribe: Option<String>,
    /// Rendered with the action text as `input`.
    pub publish: Option<Template>,
    pub qos: u8,
    pub retain: bool,
}

/// A listening profile: sensors and other systems call its path (under the server's listen
/// base); what they send is its `input`, mapped onto devices and offered to input triggers.
#[derive(Debug, Clone)]
pub struct ListenSpec {
    /// Normalised: starts with `/`, no empty, `.` or `..` segment, no trailing `/`.
    pub path: String,
    /// The answer, rendered with what arrived as `input`.
    pub reply: Template,
    pub reply_content_type: String,
    /// A token callers must send, when set.
    pub token: Option<Secret>,
    pub max_body_bytes: u64,
    /// Calls admitted per second (a burst of as many); more get 429.
    pub max_per_second: u32,
}

#[derive(Debug, Clone)]
pub enum BodySpec {
    Json(Template),
    Form(Vec<(String, Template)>),
    Raw {
        content_type: String,
        template: Template,
    },
}

#[derive(Debug, Clone)]
pub enum AuthSpec {
    None,
    Basic { username: String, password: Secret },
    Bearer { token: Secret },
    ApiKeyHeader { header: String, key: Secret },
    ApiKeyQuery { parameter: String, key: Secret },
    OAuth2(Box<OAuth2Spec>),
    OAuth1(Box<OAuth1Spec>),
}

/// An OAuth 1.0a profile: the client's credentials, the signature method, the three
/// endpoints of the flow; every action request is signed (RFC 5849).
#[derive(Debug, Clone, Serialize)]
pub struct OAuth1Spec {
    pub provider: Option<String>,
    pub consumer_key: String,
    pub consumer_secret: Option<Secret>,
    /// The client's RSA private key (PEM), for RSA-SHA1.
    pub rsa_key: Option<Secret>,
    pub signature_method: crate::oauth::one::SignatureMethod,
    pub request_token_url: url::Url,
    pub authorize_url: url::Url,
    pub access_token_url: url::Url,
    pub realm: Option<String>,
    /// `None`: `<public base URL>/oauth2/callback`.
    pub redirect_url: Option<url::Url>,
    #[serde(skip)]
    pub api_origins: Vec<url::Origin>,
}

impl OAuth1Spec {
    /// The signer of this profile's requests.
    pub fn signer(&self) -> crate::oauth::one::Signer {
        crate::oauth::one::Signer {
            consumer_key: self.consumer_key.clone(),
            consumer_secret: self.consumer_secret.clone(),
            rsa_key: self.rsa_key.clone(),
            method: self.signature_method,
            realm: self.realm.clone(),
        }
    }
}

impl AuthSpec {
    pub fn mode(&self) -> &'static str {
        match self {
            AuthSpec::None => "none",
            AuthSpec::Basic { .. } => "basic",
            AuthSpec::Bearer { .. } => "bearer",
            AuthSpec::ApiKeyHeader { .. } => "api_key_header",
            AuthSpec::ApiKeyQuery { .. } => "api_key_query",
            AuthSpec::OAuth2(_) => "oauth2",
            AuthSpec::OAuth1(_) => "oauth1",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientAuth {
    /// HTTP Basic with the client id and secret.
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Body,
    /// A public client: `client_id` only.
    None,
}

/// How a profile gets its tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum GrantType {
    /// A person signs in at the provider; the browser comes back to the callback page.
    AuthorizationCode,
    /// The client's own token: no person, no browser.
    ClientCredentials,
    /// RFC 8628: a code to enter at the provider; no redirect at all.
    DeviceCode,
    /// Legacy: the user's name and password sent to the token endpoint.
    Password,
    /// Legacy: the token comes in the redirect's fragment.
    Implicit,
}

impl GrantType {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantType::AuthorizationCode => "authorization_code",
            GrantType::ClientCredentials => "client_credentials",
            GrantType::DeviceCode => "device_code",
            GrantType::Password => "password",
            GrantType::Implicit => "implicit",
        }
    }

    /// Marked legacy in the UI: the grant is deprecated (OAuth 2.0 Security BCP).
    pub fn is_legacy(self) -> bool {
        matches!(self, GrantType::Password | GrantType::Implicit)
    }
}

/// Who the token belongs to: the provider's profile endpoint and how its answer is shown.
#[derive(Debug, Clone, Serialize)]
pub struct UserInfoSpec {
    /// The profile endpoint, when the provider has a fixed one.
    pub url: Option<url::Url>,
    /// A token-answer field holding the profile endpoint's URL (seed 001's
    /// `ProfileURLVariable`); it wins over `url` when the answer has it.
    pub url_field: Option<String>,
    /// POST instead of GET (Dropbox).
    pub post: bool,
    /// `{name}`-style templates over the answer's fields.
    pub display_name: Option<String>,
    pub email: Option<String>,
    pub id_field: Option<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct OAuth2Spec {
    /// The provider definition the profile names, if any.
    pub provider: Option<String>,
    pub grant: GrantType,
    pub client_id: String,
    pub client_secret: Option<Secret>,
    /// The scopes, joined with the provider's separator.
    pub scopes: String,
    pub authorize_url: Option<url::Url>,
    pub token_url: url::Url,
    pub refresh_url: Option<url::Url>,
    pub device_authorization_url: Option<url::Url>,
    pub revocation_url: Option<url::Url>,
    pub introspection_url: Option<url::Url>,
    /// The issuer an RFC 9207 `iss` must name.
    pub issuer: Option<String>,
    /// `None`: use `<public base URL>/oauth2/callback` (or the legacy page).
    pub redirect_url: Option<url::Url>,
    /// The callback page is the family's `/oauth2_callback.html`.
    pub legacy_callback: bool,
    /// Where the token may be sent; empty: the API URL's origin at authorization time.
    #[serde(skip)]
    pub api_origins: Vec<url::Origin>,
    /// The provider's API base URL.
    pub api_base: Option<String>,
    /// A token-response field naming the API's base URL (Zoho's `api_domain`).
    pub api_host_field: Option<String>,
    pub extra_authorize_params: BTreeMap<String, String>,
    #[serde(skip)]
    pub token_params: Vec<(String, crate::oauth::TextTemplate)>,
    /// Added to every API call.
    pub api_query: Vec<(String, String)>,
    pub client_auth: ClientAuth,
    pub pkce: bool,
    pub header_template: String,
    /// The header the token goes in.
    pub token_header: String,
    /// A query parameter the token goes in instead of a header.
    pub token_query: Option<String>,
    pub reauthorize_on: Vec<u16>,
    /// True over an API answer that means "token expired" whatever its status.
    #[serde(skip)]
    pub expired_when: Option<Expression>,
    #[serde(skip)]
    pub body_format: crate::oauth::BodyFormat,
    #[serde(skip)]
    pub device: crate::oauth::DeviceOptions,
    #[serde(skip)]
    pub exchange_template: Option<crate::oauth::RequestTemplate>,
    #[serde(skip)]
    pub refresh_template: Option<crate::oauth::RequestTemplate>,
    pub settings: BTreeMap<String, String>,
    #[serde(skip)]
    pub shape: crate::oauth::TokenShape,
    /// The callback parameter with the code, and the one with a refusal.
    pub code_param: String,
    pub error_param: String,
    pub userinfo: Option<UserInfoSpec>,
    /// The password grant's user and password.
    pub username: Option<String>,
    pub password: Option<Secret>,
    /// The `[auth.oauth2]` keys whose value came from the provider definition, not the file
    /// (the editor shows them as the provider's, and leaves them unwritten).
    pub inherited: Vec<&'static str>,
}

/// What loading a profile draws on besides its text: secrets and provider definitions.
#[derive(Clone, Copy)]
pub struct Sources<'a> {
    pub secrets: &'a SecretSource,
    pub providers: &'a ProviderCatalog,
}

/// The device boxes (or list form) compiled: one rule per root device.
#[derive(Debug, Clone, Default)]
pub struct DeviceMapping {
    /// Update existing devices only; create none.
    pub locked: bool,
    /// Must be true for any device to be created or updated.
    pub affect: Option<Expression>,
    pub roots: Vec<DeviceRule>,
    /// Written as a `[[device]]` list (which the editor's boxes cannot show losslessly).
    pub from_list: bool,
    /// Units of measurement by device name (a feature's, or a root's).
    pub units: BTreeMap<String, String>,
    /// Home Assistant device classes by device name.
    pub device_classes: BTreeMap<String, String>,
    /// Devices a hub may set, by device name.
    pub settable: BTreeMap<String, Settable>,
}

/// How a hub may set a device (Home Assistant shows a `number` or a `text` entity for it).
#[derive(Debug, Clone, PartialEq)]
pub enum Settable {
    Number {
        min: f64,
        max: f64,
        step: f64,
        /// `auto`, `box` or `slider`.
        mode: &'static str,
    },
    Text {
        /// Longest text, in characters (at most 255, as Home Assistant keeps).
        max: u16,
        pattern: Option<String>,
    },
}

/// Whether a profile's device rules make a device of a given name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Naming {
    Made,
    /// No rule makes it; the names the rules do make (roots, or the root's features).
    NotMade {
        known: Vec<String>,
    },
    /// A name on the way is computed when the profile runs: it cannot be told before.
    Computed,
}

impl DeviceMapping {
    /// Whether the rules make a root device `root` (and, when given, its feature `feature`),
    /// judged by their literal names.
    pub fn naming(&self, root: &str, feature: Option<&str>) -> Naming {
        let mut computed = false;
        let mut roots = Vec::new();
        let mut features = Vec::new();
        for rule in &self.roots {
            match rule.name.literal_text() {
                Some(name) if name == root => {}
                Some(name) => {
                    roots.push(name);
                    continue;
                }
                None => computed = true,
            }
            let Some(feature) = feature else {
                if rule.name.literal_text().is_some() {
                    return Naming::Made;
                }
                continue;
            };
            for child in &rule.features {
                match child.name.literal_text() {
                    Some(name) if name == feature && rule.name.literal_text().is_some() => {
                        return Naming::Made
                    }
                    Some(name) => features.push(name),
                    None => computed = true,
                }
            }
        }
        if computed {
            Naming::Computed
        } else if feature.is_some() && !features.is_empty() {
            Naming::NotMade { known: features }
        } else {
            Naming::NotMade { known: roots }
        }
    }

    /// The root names the rules write literally.
    pub fn literal_roots(&self) -> Vec<String> {
        self.roots
            .iter()
            .filter_map(|rule| rule.name.literal_text())
            .collect()
    }

    /// How a device (by its feature's name, or its root's) may be set, when the profile says.
    pub fn settable_of(&self, root: &str, feature: Option<&str>) -> Option<&Settable> {
        self.settable.get(feature.unwrap_or(root))
    }

    /// Whether a root device has a value or string of its own, or only carries features (a
    /// `Thermo` whose `temperature` and `mode` hold the data). Judged from the rules that can
    /// name this root: those with a literal name equal to it, and those whose name is computed.
    /// A root no rule can name is taken to have a value (it was set some other way).
    pub fn root_has_own_value(&self, root: &str) -> bool {
        let mut matching = self.roots.iter().filter(|rule| {
            rule.name
                .literal_text()
                .is_none_or(|literal| literal == root)
        });
        let mut any = false;
        let own = matching.any(|rule| {
            any = true;
            rule.value.is_some() || rule.string.is_some() || rule.features.is_empty()
        });
        own || !any
    }

    /// The unit and device class a device (by its feature's name, or its root's) is described
    /// with, when the profile says.
    pub fn description_of(
        &self,
        root: &str,
        feature: Option<&str>,
    ) -> (Option<&str>, Option<&str>) {
        let name = feature.unwrap_or(root);
        (
            self.units.get(name).map(String::as_str),
            self.device_classes.get(name).map(String::as_str),
        )
    }
}

/// How to name one device (or, when the name gives a list, one per element) and what to set.
#[derive(Debug, Clone)]
pub struct DeviceRule {
    pub name: Expression,
    pub value: Option<Expression>,
    pub string: Option<Expression>,
    pub features: Vec<DeviceRule>,
}

/// The result of loading a folder: the valid profiles and every problem found.
#[derive(Debug, Default, Clone)]
pub struct ProfileSet {
    pub profiles: BTreeMap<String, Arc<Profile>>,
    pub diagnostics: Vec<Diagnostic>,
    /// Listening paths and the profile at each (filled by [`load_dir`]).
    listeners: std::collections::HashMap<String, Arc<Profile>>,
}

impl ProfileSet {
    pub fn get(&self, name: &str) -> Option<&Arc<Profile>> {
        self.profiles.get(name)
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }

    /// The listening profile at `path` (under the listen base), if one listens there.
    pub fn listening_at(&self, path: &str) -> Option<&Arc<Profile>> {
        self.listeners.get(path.trim_end_matches('/'))
    }

    /// Problems of one profile file (by profile name or file stem).
    pub fn diagnostics_for(&self, name: &str) -> Vec<&Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.file.file_stem().is_some_and(|s| s == name))
            .collect()
    }
}

/// Largest profile file read, in bytes.
pub const MAX_PROFILE_BYTES: u64 = 1024 * 1024;

/// Loads every `*.toml` entry of `dir` (not recursively). A broken file is reported and skipped;
/// the others load. Entries that are not readable regular files (directories, FIFOs, dangling
/// links, link loops) are reported, never opened; two files claiming one name both fail.
pub fn load_dir(dir: &Path, secrets: &SecretSource) -> ProfileSet {
    load_dir_with(
        dir,
        &Sources {
            secrets,
            providers: ProviderCatalog::built_in(),
        },
    )
}

/// [`load_dir`] with the given provider definitions (the shipped ones and the user's); their
/// files' problems are reported with the profiles'.
pub fn load_dir_with(dir: &Path, sources: &Sources<'_>) -> ProfileSet {
    let mut set = ProfileSet::default();
    set.diagnostics
        .extend(sources.providers.diagnostics.iter().cloned());
    let files = match config_files(dir, "profile", false) {
        Ok(files) => files,
        Err(diagnostic) => {
            set.diagnostics.push(diagnostic);
            return set;
        }
    };
    let mut loaded: BTreeMap<String, Vec<(Profile, usize)>> = BTreeMap::new();
    for file in files {
        let text = match read_config_file(&file) {
            Ok(text) => text,
            Err(diagnostic) => {
                set.diagnostics.push(diagnostic);
                continue;
            }
        };
        let (profile, diagnostics) = load_text_with(&file, &text, sources);
        set.diagnostics.extend(diagnostics);
        if let Some(profile) = profile {
            let line = diagnostic::line_of_key(&text, "name").unwrap_or(1);
            loaded
                .entry(profile.name.clone())
                .or_default()
                .push((profile, line));
        }
    }
    for (name, mut claims) in loaded {
        if claims.len() == 1 {
            if let Some((profile, _)) = claims.pop() {
                set.profiles.insert(name, Arc::new(profile));
            }
            continue;
        }
        for (profile, line) in &claims {
            let others: Vec<String> = claims
                .iter()
                .filter(|(other, _)| other.file != profile.file)
                .map(|(other, _)| other.file.display().to_string())
                .collect();
            set.diagnostics.push(
                Diagnostic::error(
                    &profile.file,
                    "name",
                    format!(
                        "profile name `{name}` is also claimed by {}: neither is loaded until one is renamed",
                        others.join(", ")
                    ),
                )
                .at_line(Some(*line)),
            );
        }
    }
    refuse_shared_listen_paths(&mut set);
    set
}

/// Two profiles listening at one path: neither is loaded, each is told of the other.
fn refuse_shared_listen_paths(set: &mut ProfileSet) {
    let mut by_path: BTreeMap<&str, Vec<&Profile>> = BTreeMap::new();
    for profile in set.profiles.values() {
        if let Some(listen) = &profile.listen {
            by_path.entry(&listen.path).or_default().push(profile);
        }
    }
    let mut refused = Vec::new();
    for (path, claims) in by_path.into_iter().filter(|(_, c)| c.len() > 1) {
        for profile in &claims {
            let others: Vec<&str> = claims
                .iter()
                .filter(|p| p.name != profile.name)
                .map(|p| p.name.as_str())
                .collect();
            refused.push((
                profile.name.clone(),
                Diagnostic::error(
                    &profile.file,
                    "listen",
                    format!(
                        "profile `{}` listens at `{path}` too: neither is loaded until one moves",
                        others.join("`, `")
                    ),
                ),
            ));
        }
    }
    for (name, diagnostic) in refused {
        set.profiles.remove(&name);
        set.diagnostics.push(diagnostic);
    }
    set.listeners = set
        .profiles
        .values()
        .filter_map(|p| Some((p.listen.as_ref()?.path.clone(), p.clone())))
        .collect();
}

/// The `*.toml` entries of a configuration folder (`what`: `profile`, `events`), sorted; not
/// recursive. A missing folder is no files when `missing_ok`, an error otherwise.
pub fn config_files(dir: &Path, what: &str, missing_ok: bool) -> Result<Vec<PathBuf>, Diagnostic> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if missing_ok && e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(Diagnostic::error(
                dir,
                "",
                format!("cannot read the {what} folder: {e}"),
            ))
        }
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    Ok(files)
}

/// Reads one configuration file (a profile, an event): a regular file (links followed), at
/// most [`MAX_PROFILE_BYTES`], valid UTF-8. Anything else is a diagnostic naming what is wrong and where.
pub fn read_config_file(file: &Path) -> Result<String, Diagnostic> {
    use std::io::Read;
    let refuse = |message: String| Diagnostic::error(file, "", message);
    // `metadata` follows links: a dangling link or a loop fails here, before anything is opened.
    let metadata = std::fs::metadata(file).map_err(|e| {
        let what = if std::fs::symlink_metadata(file).is_ok_and(|m| m.file_type().is_symlink()) {
            "a link that leads nowhere readable"
        } else {
            "not readable"
        };
        refuse(format!("{what}: {e}"))
    })?;
    if !metadata.is_file() {
        let kind = if metadata.is_dir() {
            "a folder"
        } else {
            "not a regular file (a FIFO, socket or device)"
        };
        return Err(refuse(format!("is {kind}, not a profile file: skipped")));
    }
    if metadata.len() > MAX_PROFILE_BYTES {
        return Err(refuse(format!(
            "is {} bytes, over the limit of {MAX_PROFILE_BYTES} for a profile file",
            metadata.len()
        )));
    }
    let mut bytes = Vec::new();
    std::fs::File::open(file)
        .and_then(|f| f.take(MAX_PROFILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(|e| refuse(format!("cannot read: {e}")))?;
    if bytes.len() as u64 > MAX_PROFILE_BYTES {
        return Err(refuse(format!(
            "grew over the limit of {MAX_PROFILE_BYTES} bytes for a profile file while being read"
        )));
    }
    String::from_utf8(bytes).map_err(|e| {
        let valid = &e.as_bytes()[..e.utf8_error().valid_up_to()];
        let line = valid.iter().filter(|b| **b == b'\n').count() + 1;
        let line_start = valid.iter().rposition(|b| *b == b'\n').map_or(0, |p| p + 1);
        refuse(format!(
            "is not valid UTF-8 text: bad byte at line {line}, byte {} of the line (byte {} of the file)",
            valid.len() - line_start + 1,
            valid.len()
        ))
        .at_line(Some(line))
    })
}

/// Loads one profile from its text. Returns the profile when it has no errors, and every
/// diagnostic (errors and warnings) either way.
pub fn load_text(
    file: &Path,
    text: &str,
    secrets: &SecretSource,
) -> (Option<Profile>, Vec<Diagnostic>) {
    load_text_with(
        file,
        text,
        &Sources {
            secrets,
            providers: ProviderCatalog::built_in(),
        },
    )
}

/// [`load_text`] with the given provider definitions.
pub fn load_text_with(
    file: &Path,
    text: &str,
    sources: &Sources<'_>,
) -> (Option<Profile>, Vec<Diagnostic>) {
    resolve::load(file, text, sources)
}
