//! The token store: each profile's tokens in its own file, encrypted with XChaCha20-Poly1305
//! under a key kept outside the data directory, written atomically (temporary file, fsync,
//! rename, fsync of the folder) with owner-only permissions. A rotated refresh token is on disk
//! before `save` returns.
//!
//! Uses `oauth` (the token type) and `secret`; knows nothing of profiles, the engine or the web.

use crate::sync::Locked;
use std::io::Write;
use std::path::{Path, PathBuf};

use chacha20poly1305::aead::{Aead, AeadCore, KeyInit, OsRng, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};

use crate::oauth::TokenSet;
use crate::secret::Secret;

const MAGIC: &[u8; 4] = b"BHT1";
const NONCE_LEN: usize = 24;
/// Associated data of the secrets vault; token files use their profile's name, which may not
/// hold the vault's characters, so no token file can be passed off as the vault.
const VAULT_LABEL: &str = "<secrets vault>";
/// The environment variable that may hold the key (base64 of 32 bytes) instead of a key file.
pub const KEY_VARIABLE: &str = "BELLHOP_TOKEN_KEY";

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TokenStoreError {
    #[error("{path}: {message}")]
    Io { path: String, message: String },
    #[error("the token key in {0} is not 32 bytes of base64")]
    BadKey(String),
    #[error("the stored tokens of `{0}` cannot be read with this key (wrong key or damaged file): authorize the profile again")]
    Unreadable(String),
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> TokenStoreError + '_ {
    move |e| TokenStoreError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Where the key comes from: the environment variable, or a key file created on first use.
pub fn load_or_create_key(key_file: &Path) -> Result<Key, TokenStoreError> {
    use base64::Engine;
    let decode = |text: &str, origin: &str| -> Result<Key, TokenStoreError> {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(text.trim())
            .map_err(|_| TokenStoreError::BadKey(origin.to_string()))?;
        if bytes.len() != 32 {
            return Err(TokenStoreError::BadKey(origin.to_string()));
        }
        Ok(*Key::from_slice(&bytes))
    };
    if let Ok(text) = std::env::var(KEY_VARIABLE) {
        return decode(&text, KEY_VARIABLE);
    }
    match std::fs::read_to_string(key_file) {
        Ok(text) => decode(&text, &key_file.display().to_string()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let key = XChaCha20Poly1305::generate_key(&mut OsRng);
            let text = base64::engine::general_purpose::STANDARD.encode(key);
            let dir = key_file.parent().unwrap_or_else(|| Path::new("."));
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            // Written whole under a private name, then linked into place only if no other
            // process created the key meanwhile: every process ends up with the same key.
            let candidate = dir.join(format!(".token.key.{}.new", std::process::id()));
            write_atomically(&candidate, text.as_bytes())?;
            let linked = std::fs::hard_link(&candidate, key_file);
            let _ = std::fs::remove_file(&candidate);
            match linked {
                Ok(()) => Ok(key),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                    let existing = std::fs::read_to_string(key_file).map_err(io(key_file))?;
                    decode(&existing, &key_file.display().to_string())
                }
                Err(e) => Err(io(key_file)(e)),
            }
        }
        Err(e) => Err(io(key_file)(e)),
    }
}

/// Writes `bytes` to `path` so that a crash leaves either the old file or the new one, never a
/// mix: a uniquely named temporary file beside it (owner-only from the first byte), fsynced,
/// renamed into place, then the folder fsynced. Concurrent writers never share a temporary file.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), TokenStoreError> {
    let dir = path.parent().unwrap_or_else(|| Path::new("."));
    let mut temporary = tempfile::Builder::new()
        .prefix(".bellhop-")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(io(dir))?;
    temporary.write_all(bytes).map_err(io(dir))?;
    temporary.as_file().sync_all().map_err(io(dir))?;
    temporary.persist(path).map_err(|e| io(path)(e.error))?;
    if let Ok(folder) = std::fs::File::open(dir) {
        folder.sync_all().map_err(io(dir))?;
    }
    Ok(())
}

/// What is kept of one profile's authorization: its tokens, when the user authorized it, the
/// origins its token may be sent to, and — once the provider refused a refresh — why it needs
/// to be authorized again (so a restart does not retry a dead grant).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Grant {
    pub tokens: TokenSet,
    /// When the user authorized (refreshes do not change it), ms since 1970.
    pub authorized_at_ms: i64,
    /// `scheme://host[:port]` of each API the token may be sent to.
    pub api_origins: Vec<String>,
    #[serde(default)]
    pub needs_reauthorization: Option<String>,
    /// Who the token belongs to, as the provider's profile endpoint said ("Ann (ann@…)").
    #[serde(default)]
    pub identity: Option<String>,
    /// The refresh token the current one replaced (a rotation): tried once when the current
    /// one is refused, since a provider may not have kept the rotation it answered.
    #[serde(with = "crate::oauth::token::exposed_option", default)]
    pub previous_refresh_token: Option<Secret>,
    /// Set (and saved) before a refresh request is sent, cleared with the answer's tokens: a
    /// grant read with it set was being refreshed when the process stopped, so its refresh token
    /// may have been rotated out at the provider with the answer lost.
    #[serde(default)]
    pub refresh_started_ms: Option<i64>,
}

impl Grant {
    /// A grant authorized just now.
    pub fn new(tokens: TokenSet, api_origins: Vec<String>) -> Grant {
        Grant {
            authorized_at_ms: tokens.issued_at_ms,
            tokens,
            api_origins,
            needs_reauthorization: None,
            identity: None,
            previous_refresh_token: None,
            refresh_started_ms: None,
        }
    }
}

/// A token file as written by this version (a grant) or by the first one (bare tokens).
#[derive(serde::Deserialize)]
#[serde(untagged)]
enum StoredGrant {
    Grant(Grant),
    Tokens(TokenSet),
}

pub struct TokenStore {
    dir: PathBuf,
    cipher: XChaCha20Poly1305,
    /// One writer at a time: read-modify-write of the vault never loses a concurrent change.
    writer: std::sync::Mutex<()>,
}

impl TokenStore {
    /// A store in `dir` (created owner-only) encrypting with `key`.
    pub fn open(dir: &Path, key: &Key) -> Result<TokenStore, TokenStoreError> {
        std::fs::create_dir_all(dir).map_err(io(dir))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))
                .map_err(io(dir))?;
        }
        Ok(TokenStore {
            dir: dir.to_path_buf(),
            cipher: XChaCha20Poly1305::new(key),
            writer: std::sync::Mutex::new(()),
        })
    }

    fn path(&self, profile: &str) -> PathBuf {
        let hex: String = profile.bytes().map(|b| format!("{b:02x}")).collect();
        self.dir.join(format!("{hex}.tokens"))
    }

    /// Encrypts `value` as JSON into `path`, bound to `label` (what the file is for).
    fn seal<T: serde::Serialize>(
        &self,
        path: &Path,
        label: &str,
        value: &T,
    ) -> Result<(), TokenStoreError> {
        let plain = serde_json::to_vec(value).map_err(|e| TokenStoreError::Io {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let nonce = XChaCha20Poly1305::generate_nonce(&mut OsRng);
        let sealed = self
            .cipher
            .encrypt(
                &nonce,
                Payload {
                    msg: &plain,
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| TokenStoreError::Unreadable(label.to_string()))?;
        let mut bytes = Vec::with_capacity(MAGIC.len() + NONCE_LEN + sealed.len());
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&nonce);
        bytes.extend_from_slice(&sealed);
        write_atomically(path, &bytes)
    }

    /// Decrypts what `seal` wrote; `None` when the file does not exist.
    fn unseal<T: serde::de::DeserializeOwned>(
        &self,
        path: &Path,
        label: &str,
    ) -> Result<Option<T>, TokenStoreError> {
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(path)(e)),
        };
        let unreadable = || TokenStoreError::Unreadable(label.to_string());
        if bytes.len() < MAGIC.len() + NONCE_LEN || &bytes[..MAGIC.len()] != MAGIC {
            return Err(unreadable());
        }
        let nonce = XNonce::from_slice(&bytes[MAGIC.len()..MAGIC.len() + NONCE_LEN]);
        let plain = self
            .cipher
            .decrypt(
                nonce,
                Payload {
                    msg: &bytes[MAGIC.len() + NONCE_LEN..],
                    aad: label.as_bytes(),
                },
            )
            .map_err(|_| unreadable())?;
        serde_json::from_slice(&plain)
            .map(Some)
            .map_err(|_| unreadable())
    }

    /// Stores a profile's grant durably (it is on disk when this returns).
    pub fn save(&self, profile: &str, grant: &Grant) -> Result<(), TokenStoreError> {
        let _writer = self.writer.locked();
        self.seal(&self.path(profile), profile, grant)
    }

    /// A profile's grant, or `None` when it was never authorized (or forgotten). Files of the
    /// first version (bare tokens) read as a grant whose origins are not known yet.
    pub fn load(&self, profile: &str) -> Result<Option<Grant>, TokenStoreError> {
        Ok(self
            .unseal::<StoredGrant>(&self.path(profile), profile)?
            .map(|stored| match stored {
                StoredGrant::Grant(grant) => grant,
                StoredGrant::Tokens(tokens) => Grant::new(tokens, Vec::new()),
            }))
    }

    fn vault_path(&self) -> PathBuf {
        self.dir.join("secrets.vault")
    }

    /// The secrets entered in the UI (client secrets, static tokens), by name.
    pub fn secrets(&self) -> Result<std::collections::BTreeMap<String, String>, TokenStoreError> {
        Ok(self
            .unseal(&self.vault_path(), VAULT_LABEL)?
            .unwrap_or_default())
    }

    /// Adds or replaces secrets in the vault, durably.
    pub fn store_secrets(
        &self,
        values: &std::collections::BTreeMap<String, String>,
    ) -> Result<(), TokenStoreError> {
        let _writer = self.writer.locked();
        let mut all = self.secrets()?;
        all.extend(values.iter().map(|(k, v)| (k.clone(), v.clone())));
        self.seal(&self.vault_path(), VAULT_LABEL, &all)
    }

    /// Wipes a profile's tokens ("Forget authorization").
    pub fn delete(&self, profile: &str) -> Result<(), TokenStoreError> {
        let _writer = self.writer.locked();
        let path = self.path(profile);
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth::parse_token_response;

    fn tokens(access: &str) -> TokenSet {
        let body = format!(
            r#"{{"access_token":"{access}","refresh_token":"r-{access}","expires_in":60}}"#
        );
        parse_token_response(&body, None, 1_000).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn tokens_round_trip_encrypted_and_owner_only() -> Result<(), TokenStoreError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let key = load_or_create_key(&dir.path().join("keys/token.key"))?;
        let store = TokenStore::open(&dir.path().join("tokens"), &key)?;
        assert!(store.load("discord")?.is_none());
        store.save("discord", &Grant::new(tokens("access-one"), Vec::new()))?;
        let loaded = store
            .load("discord")?
            .map(|g| g.tokens.access_token.expose().to_string());
        assert_eq!(loaded.as_deref(), Some("access-one"));
        // Nothing readable on disk, and only the owner may read it.
        let path = store.path("discord");
        let raw = std::fs::read(&path).map_err(io(&path))?;
        assert!(!raw.windows(10).any(|w| w == b"access-one"));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path)
                .map_err(io(&path))?
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
            let key_mode = std::fs::metadata(dir.path().join("keys/token.key"))
                .map_err(io(&path))?
                .permissions()
                .mode();
            assert_eq!(key_mode & 0o777, 0o600);
        }
        // The same key file gives the same key; another key cannot read the tokens.
        let again = load_or_create_key(&dir.path().join("keys/token.key"))?;
        assert_eq!(again, key);
        let other = TokenStore::open(
            &dir.path().join("tokens"),
            &XChaCha20Poly1305::generate_key(&mut OsRng),
        )?;
        assert!(matches!(
            other.load("discord"),
            Err(TokenStoreError::Unreadable(_))
        ));
        // A file moved to another profile's name does not decrypt (the name is bound in).
        std::fs::copy(&path, store.path("zoho")).map_err(io(&path))?;
        assert!(matches!(
            store.load("zoho"),
            Err(TokenStoreError::Unreadable(_))
        ));
        store.delete("discord")?;
        assert!(store.load("discord")?.is_none());
        // A crash mid-write leaves at most a stray temporary file; the store still works.
        store.save("discord", &Grant::new(tokens("access-two"), Vec::new()))?;
        std::fs::write(store.dir.join(".half-written.tmp"), b"BHT1 partial").map_err(io(&path))?;
        let loaded = store
            .load("discord")?
            .map(|g| g.tokens.access_token.expose().to_string());
        assert_eq!(loaded.as_deref(), Some("access-two"));
        store.delete("discord")?;
        // The vault keeps UI-entered secrets encrypted too.
        store.store_secrets(
            &[(
                "discord_client_secret".to_string(),
                "vault-value".to_string(),
            )]
            .into(),
        )?;
        assert_eq!(
            store
                .secrets()?
                .get("discord_client_secret")
                .map(String::as_str),
            Some("vault-value")
        );
        let vault = std::fs::read(store.vault_path()).map_err(io(&path))?;
        assert!(!vault.windows(11).any(|w| w == b"vault-value"));
        Ok(())
    }

    #[test]
    fn concurrent_vault_saves_lose_no_secret() -> Result<(), TokenStoreError> {
        let dir = tempfile::tempdir().map_err(io(Path::new("tmp")))?;
        let key = load_or_create_key(&dir.path().join("token.key"))?;
        let store = std::sync::Arc::new(TokenStore::open(&dir.path().join("tokens"), &key)?);
        let writers: Vec<_> = (0..16)
            .map(|n| {
                let store = store.clone();
                std::thread::spawn(move || {
                    store.store_secrets(&[(format!("secret_{n}"), format!("value-{n}"))].into())
                })
            })
            .collect();
        for writer in writers {
            writer
                .join()
                .map_err(|_| TokenStoreError::Unreadable("thread".into()))??;
        }
        let all = store.secrets()?;
        assert_eq!(all.len(), 16, "{:?}", all.keys());
        // No temporary file is left behind.
        let leftovers = std::fs::read_dir(dir.path().join("tokens"))
            .map_err(io(dir.path()))?
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        Ok(())
    }
}
