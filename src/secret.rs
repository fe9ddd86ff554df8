//! Secrets: a redacted string type and the resolution of `${env:NAME}` and `${secret:NAME}`
//! references. A [`Secret`] prints as `••••••` in `Debug`, `Display` and serialization; its value
//! comes out only through [`Secret::expose`].

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use secrecy::{ExposeSecret, SecretString};
use serde::{Serialize, Serializer};

/// What a secret shows wherever it is printed or serialized.
pub const REDACTED: &str = "••••••";

#[derive(Clone)]
pub struct Secret(SecretString);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(SecretString::from(value.into()))
    }

    /// The secret's value, for the one place that must send it.
    pub fn expose(&self) -> &str {
        self.0.expose_secret()
    }

    pub fn is_empty(&self) -> bool {
        self.expose().is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

impl Serialize for Secret {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(REDACTED)
    }
}

impl PartialEq for Secret {
    fn eq(&self, other: &Secret) -> bool {
        self.expose() == other.expose()
    }
}

/// A fresh random token: 32 bytes from the operating system's generator, base64url without
/// padding (43 characters). For OAuth `state`, PKCE verifiers, sessions and webhook secrets.
pub fn random_token() -> String {
    use base64::Engine;
    let mut bytes = [0u8; 32];
    // The OS generator failing is not something a request can cause; nothing safe can go on.
    #[allow(clippy::expect_used)]
    getrandom::getrandom(&mut bytes).expect("the operating system's random generator failed");
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// Why a secrets file could not be read, or a reference not resolved. Never holds a secret's
/// value: names, paths and lines only.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretError {
    #[error("{path}: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("{path}: not a valid secrets file (line {line})")]
    NotToml { path: String, line: usize },
    #[error("{path}: `{name}` must be text")]
    NotText { path: String, name: String },
    #[error("`${{` is never closed with `}}`")]
    Unclosed,
    #[error("`${{env:{0}}}`: Bellhop's own variables (BELLHOP_…) hold its secrets and cannot be read by a profile")]
    OwnVariable(String),
    #[error("environment variable `{0}` is not set")]
    UnsetVariable(String),
    #[error("secret `{name}` is not in the secrets file, and the vault cannot be read: {problem}")]
    VaultUnreadable { name: String, problem: String },
    #[error(
        "secret `{0}` is neither in the secrets file nor in the vault (secrets entered in the UI)"
    )]
    Unknown(String),
    #[error("`${{{0}}}`: secrets take `${{env:NAME}}` or `${{secret:NAME}}`")]
    UnknownKind(String),
}

/// Where `${env:NAME}` and `${secret:NAME}` are looked up.
#[derive(Default, Clone)]
pub struct SecretSource {
    file_values: HashMap<String, Secret>,
    environment: Option<HashMap<String, String>>,
    /// Why the vault could not be read, when it could not: only the references it would have
    /// answered fail, each saying so.
    vault_problem: Option<String>,
}

impl fmt::Debug for SecretSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SecretSource")
            .field("names", &self.file_values.keys().collect::<Vec<_>>())
            .finish()
    }
}

impl SecretSource {
    /// Reads a secrets file (TOML, `NAME = "value"`); a missing file is an empty source.
    pub fn from_file(path: &Path) -> Result<SecretSource, SecretError> {
        let shown = || path.display().to_string();
        let text = match std::fs::read_to_string(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SecretSource::default())
            }
            Err(e) => {
                return Err(SecretError::Unreadable {
                    path: shown(),
                    reason: e.to_string(),
                })
            }
        };
        let table: toml::Table = toml::from_str(&text).map_err(|e| {
            // Never echo the file's content: only where the problem is.
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            SecretError::NotToml {
                path: shown(),
                line: line.unwrap_or(1),
            }
        })?;
        SecretSource::from_table(table).map_err(|error| match error {
            SecretError::NotText { name, .. } => SecretError::NotText {
                path: shown(),
                name,
            },
            other => other,
        })
    }

    /// A source from a secrets table (`NAME = "value"`); an entry that is not text is refused.
    pub fn from_table(table: toml::Table) -> Result<SecretSource, SecretError> {
        let mut file_values = HashMap::new();
        for (name, value) in table {
            match value {
                toml::Value::String(s) => {
                    file_values.insert(name, Secret::new(s));
                }
                _ => {
                    return Err(SecretError::NotText {
                        path: "the secrets table".into(),
                        name,
                    })
                }
            }
        }
        Ok(SecretSource {
            file_values,
            environment: None,
            vault_problem: None,
        })
    }

    /// Adds secrets (e.g. from the encrypted vault); they win over the file's of the same name.
    pub fn with_values(
        mut self,
        values: impl IntoIterator<Item = (String, String)>,
    ) -> SecretSource {
        for (name, value) in values {
            self.file_values.insert(name, Secret::new(value));
        }
        self
    }

    /// Records that the vault could not be read.
    pub fn with_vault_problem(mut self, problem: String) -> SecretSource {
        self.vault_problem = Some(problem);
        self
    }

    /// A source with a fixed environment instead of the process's (for tests).
    pub fn with_environment(mut self, environment: HashMap<String, String>) -> SecretSource {
        self.environment = Some(environment);
        self
    }

    fn env(&self, name: &str) -> Option<String> {
        match &self.environment {
            Some(fixed) => fixed.get(name).cloned(),
            None => std::env::var(name).ok(),
        }
    }

    /// Replaces every `${env:NAME}` and `${secret:NAME}` in `text`.
    pub fn resolve(&self, text: &str) -> Result<Secret, SecretError> {
        let mut out = String::new();
        let mut rest = text;
        while let Some(start) = rest.find("${") {
            out.push_str(&rest[..start]);
            let after = &rest[start + 2..];
            let Some(end) = after.find('}') else {
                return Err(SecretError::Unclosed);
            };
            let reference = after[..end].trim();
            let value = if let Some(name) = reference.strip_prefix("env:") {
                let name = name.trim();
                if is_own_variable(name) {
                    return Err(SecretError::OwnVariable(name.to_string()));
                }
                self.env(name)
                    .ok_or_else(|| SecretError::UnsetVariable(name.to_string()))?
            } else if let Some(name) = reference.strip_prefix("secret:") {
                let name = name.trim();
                match (self.file_values.get(name), &self.vault_problem) {
                    (Some(secret), _) => secret.expose().to_string(),
                    (None, Some(problem)) => {
                        return Err(SecretError::VaultUnreadable {
                            name: name.to_string(),
                            problem: problem.clone(),
                        })
                    }
                    (None, None) => return Err(SecretError::Unknown(name.to_string())),
                }
            } else {
                return Err(SecretError::UnknownKind(reference.to_string()));
            };
            out.push_str(&value);
            rest = &after[end + 1..];
        }
        out.push_str(rest);
        Ok(Secret::new(out))
    }
}

/// Bellhop's own settings and keys (`BELLHOP_TOKEN_KEY`, `BELLHOP_WEB__ADMIN_TOKEN`, …): never
/// readable through `${env:…}`. Names are compared as the OS would, case-insensitively on Windows.
fn is_own_variable(name: &str) -> bool {
    name.to_ascii_uppercase().starts_with("BELLHOP_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_never_print() {
        let secret = Secret::new("hunter2");
        assert_eq!(
            format!("{secret} {secret:?}"),
            format!("{REDACTED} {REDACTED}")
        );
        assert_eq!(
            serde_json::to_string(&secret).unwrap_or_default(),
            format!("\"{REDACTED}\"")
        );
    }

    #[test]
    fn references_resolve_from_environment_and_file() {
        let dir = tempfile::tempdir().unwrap_or_else(|e| panic!("{e}"));
        let path = dir.path().join("secrets.toml");
        std::fs::write(&path, "api = \"k3y\"\n").unwrap_or_else(|e| panic!("{e}"));
        let source = SecretSource::from_file(&path)
            .unwrap_or_else(|e| panic!("{e}"))
            .with_environment(HashMap::from([("USER_X".to_string(), "ann".to_string())]));
        let resolved = source.resolve("${env:USER_X}:${secret:api}");
        assert_eq!(
            resolved.map(|s| s.expose().to_string()),
            Ok("ann:k3y".into())
        );
        assert!(source.resolve("${env:MISSING}").is_err());
        // Bellhop's own secrets are out of reach, whatever the case.
        let own = SecretSource::default().with_environment(HashMap::from([
            ("BELLHOP_TOKEN_KEY".to_string(), "key".to_string()),
            ("BELLHOP_WEB__ADMIN_TOKEN".to_string(), "admin".to_string()),
        ]));
        for name in [
            "BELLHOP_TOKEN_KEY",
            "BELLHOP_WEB__ADMIN_TOKEN",
            "bellhop_token_key",
            " BELLHOP_X",
        ] {
            let error = own
                .resolve(&format!("${{env:{name}}}"))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(
                error.contains("cannot be read by a profile"),
                "{name}: {error}"
            );
        }
        // A vault that cannot be read fails only the references it would answer.
        let broken = source.clone().with_vault_problem("damaged".into());
        assert!(broken.resolve("${secret:api}").is_ok());
        let error = broken
            .resolve("${secret:ui_entered}")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("vault cannot be read: damaged"), "{error}");
        assert!(source.resolve("${other}").is_err());
    }
}
