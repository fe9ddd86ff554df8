//! Token sets, and the standard reading of a token response (see [`super::shape`] for the
//! lenient rules: `expires_in` as a number or a string, no `token_type` (Bearer assumed),
//! `scope` as a string or a list, unknown fields kept).

use serde::{Deserialize, Serialize};

use super::flow::OAuthError;
use crate::secret::Secret;

/// Everything a token response said, plus when it was issued.
#[derive(Clone, Serialize, Deserialize)]
pub struct TokenSet {
    #[serde(with = "exposed")]
    pub access_token: Secret,
    #[serde(with = "exposed_option", default)]
    pub refresh_token: Option<Secret>,
    pub token_type: String,
    pub scopes: Vec<String>,
    /// Milliseconds since 1970 when the access token expires, when the server said.
    pub expires_at_ms: Option<i64>,
    pub issued_at_ms: i64,
    /// Every other field of the response, as sent.
    #[serde(default)]
    pub extra: serde_json::Map<String, serde_json::Value>,
}

impl std::fmt::Debug for TokenSet {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSet")
            .field("access_token", &self.access_token)
            .field(
                "refresh_token",
                &self.refresh_token.as_ref().map(|_| crate::secret::REDACTED),
            )
            .field("token_type", &self.token_type)
            .field("scopes", &self.scopes)
            .field("expires_at_ms", &self.expires_at_ms)
            .finish_non_exhaustive()
    }
}

impl TokenSet {
    /// Whether the access token expires within `margin_ms` of `now_ms` (unknown expiry: never).
    pub fn expires_within(&self, now_ms: i64, margin_ms: i64) -> bool {
        self.expires_at_ms
            .is_some_and(|at| at - margin_ms <= now_ms)
    }
}

/// Secrets are written in the clear only inside the encrypted token store.
mod exposed {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(secret: &Secret, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(secret.expose())
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Secret, D::Error> {
        String::deserialize(deserializer).map(Secret::new)
    }
}

pub(crate) mod exposed_option {
    use crate::secret::Secret;
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(
        secret: &Option<Secret>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match secret {
            Some(s) => serializer.serialize_some(s.expose()),
            None => serializer.serialize_none(),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(
        deserializer: D,
    ) -> Result<Option<Secret>, D::Error> {
        Option::<String>::deserialize(deserializer).map(|o| o.map(Secret::new))
    }
}

/// Reads a successful, standard token response (RFC 6749 §5.1). `previous_refresh` is kept
/// when the response carries no refresh token (servers that do not rotate).
pub fn parse_token_response(
    body: &str,
    previous_refresh: Option<&Secret>,
    now_ms: i64,
) -> Result<TokenSet, OAuthError> {
    super::shape::TokenShape::default().read(body, None, previous_refresh, now_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(body: &str) -> TokenSet {
        parse_token_response(body, Some(&Secret::new("old-refresh")), 1_000_000)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn lenient_fields_are_understood() {
        let set = parse(
            r#"{"access_token":"a","expires_in":"3600","scope":["x","y"],"api_domain":"https://eu"}"#,
        );
        assert_eq!(set.token_type, "Bearer");
        assert_eq!(set.expires_at_ms, Some(1_000_000 + 3_600_000));
        assert_eq!(set.scopes, vec!["x", "y"]);
        assert_eq!(
            set.refresh_token.as_ref().map(Secret::expose),
            Some("old-refresh")
        );
        assert_eq!(set.extra["api_domain"], "https://eu");
        let set = parse(
            r#"{"access_token":"a","token_type":"bearer","expires_in":60,"scope":"identify email","refresh_token":"new"}"#,
        );
        assert_eq!(set.scopes, vec!["identify", "email"]);
        assert_eq!(set.refresh_token.as_ref().map(Secret::expose), Some("new"));
    }

    #[test]
    fn broken_responses_are_refused_without_echoing_them() {
        for body in [
            "<html>",
            "[]",
            r#"{"token_type":"bearer"}"#,
            r#"{"access_token":""}"#,
        ] {
            let error = parse_token_response(body, None, 0)
                .err()
                .map(|e| e.to_string());
            assert!(error.is_some(), "{body}");
        }
        let debug = format!(
            "{:?}",
            parse(r#"{"access_token":"sekrit","refresh_token":"r3"}"#)
        );
        assert!(
            !debug.contains("sekrit") && !debug.contains("r3"),
            "{debug}"
        );
    }
}
