//! What a token endpoint's answer looks like, and reading one with that knowledge: JSON or
//! form-encoded bodies, the token fields at JSONPath paths (Withings nests them under `body`),
//! expiry as seconds from now, an absolute time (Strava's `expires_at`) or a fixed lifetime, and
//! errors that arrive with HTTP 200 (GitHub, Zoho, Withings' non-zero `status`).
//!
//! Messages never carry a value of the response: a path that matches nothing is reported with
//! the response's shape, every value replaced by its kind.

use std::sync::Arc;

use super::flow::OAuthError;
use super::token::TokenSet;
use crate::secret::Secret;

/// How the body of a token response is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// JSON, or form encoding when the body is labelled so or is not JSON but reads as a form.
    #[default]
    Auto,
    Json,
    Form,
}

impl ResponseFormat {
    pub fn parse(text: &str) -> Option<ResponseFormat> {
        match text {
            "auto" => Some(ResponseFormat::Auto),
            "json" => Some(ResponseFormat::Json),
            "form" => Some(ResponseFormat::Form),
            _ => None,
        }
    }
}

/// How the expiry field is read.
#[derive(Debug, Clone, PartialEq)]
pub enum Expiry {
    /// Seconds from now (`expires_in`, RFC 6749).
    InSeconds,
    /// An absolute time in seconds since 1970 (Strava's `expires_at`).
    AtEpochSeconds,
    /// An absolute time in milliseconds since 1970.
    AtEpochMilliseconds,
    /// Seconds after the time in another field (seconds since 1970).
    AfterIssued(FieldPath),
    /// A lifetime the provider documents but does not send.
    Fixed(u64),
}

/// A compiled JSONPath into a token response. A path without `$` is read as `$.` + path.
#[derive(Clone)]
pub struct FieldPath {
    text: String,
    query: Arc<jsonpath_rust::parser::model::JpQuery>,
}

impl std::fmt::Debug for FieldPath {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl PartialEq for FieldPath {
    fn eq(&self, other: &FieldPath) -> bool {
        self.text == other.text
    }
}

/// Why a text is not a field path.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum FieldPathError {
    #[error("an empty path")]
    Empty,
    #[error("a path longer than 512 characters")]
    TooLong,
    #[error("`{text}` is not a JSONPath: {reason}")]
    NotJsonPath { text: String, reason: String },
}

impl FieldPath {
    /// Compiles a path; the error says why it is not one.
    pub fn parse(text: &str) -> Result<FieldPath, FieldPathError> {
        let text = text.trim();
        if text.is_empty() {
            return Err(FieldPathError::Empty);
        }
        if text.len() > 512 {
            return Err(FieldPathError::TooLong);
        }
        let full = if text.starts_with('$') {
            text.to_string()
        } else {
            format!("$.{text}")
        };
        let query = jsonpath_rust::parser::parse_json_path(&full).map_err(|e| {
            FieldPathError::NotJsonPath {
                text: text.to_string(),
                reason: e.to_string(),
            }
        })?;
        Ok(FieldPath {
            text: full,
            query: Arc::new(query),
        })
    }

    fn standard(name: &str) -> FieldPath {
        // The standard names are plain keys, always valid paths.
        FieldPath::parse(name).unwrap_or_else(|_| FieldPath {
            text: format!("$.{name}"),
            query: Arc::new(jsonpath_rust::parser::model::JpQuery::new(Vec::new())),
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// The first value the path matches.
    pub fn find<'a>(&self, root: &'a serde_json::Value) -> Option<&'a serde_json::Value> {
        jsonpath_rust::query::js_path_process(&self.query, root)
            .ok()?
            .into_iter()
            .next()
            .map(|found| found.val)
            .filter(|v| !v.is_null())
    }

    fn text_at(&self, root: &serde_json::Value) -> Option<String> {
        match self.find(root)? {
            serde_json::Value::String(s) if !s.is_empty() => Some(s.clone()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    }
}

/// Where the fields of a token response are and how they are read.
#[derive(Debug, Clone, PartialEq)]
pub struct TokenShape {
    pub format: ResponseFormat,
    pub access_token: FieldPath,
    pub refresh_token: FieldPath,
    pub expires: FieldPath,
    pub expiry: Expiry,
    pub token_type: FieldPath,
    pub scope: FieldPath,
    /// An error code; present (with any HTTP status) means the request failed.
    pub error: FieldPath,
    pub error_description: FieldPath,
    /// A field that must hold this value for the answer to be a success (Withings: `status` 0).
    pub success: Option<(FieldPath, serde_json::Value)>,
    /// The object whose members are the token's fields (default: the whole answer).
    pub fields: Option<FieldPath>,
}

impl Default for TokenShape {
    fn default() -> TokenShape {
        TokenShape {
            format: ResponseFormat::Auto,
            access_token: FieldPath::standard("access_token"),
            refresh_token: FieldPath::standard("refresh_token"),
            expires: FieldPath::standard("expires_in"),
            expiry: Expiry::InSeconds,
            token_type: FieldPath::standard("token_type"),
            scope: FieldPath::standard("scope"),
            error: FieldPath::standard("error"),
            error_description: FieldPath::standard("error_description"),
            success: None,
            fields: None,
        }
    }
}

/// Most members and levels shown when a response's shape is described.
const SHAPE_MEMBERS: usize = 12;
const SHAPE_DEPTH: usize = 4;

/// The response's shape with every value replaced by its kind: safe to show and log.
pub fn redacted_shape(value: &serde_json::Value) -> String {
    fn write(value: &serde_json::Value, depth: usize, out: &mut String) {
        use serde_json::Value;
        match value {
            Value::Null => out.push_str("null"),
            Value::Bool(_) => out.push_str("<bool>"),
            Value::Number(_) => out.push_str("<number>"),
            Value::String(_) => out.push_str("<text>"),
            Value::Array(items) if depth >= SHAPE_DEPTH => {
                out.push_str(&format!("[… {} items]", items.len()))
            }
            Value::Array(items) => {
                out.push('[');
                if let Some(first) = items.first() {
                    write(first, depth + 1, out);
                    if items.len() > 1 {
                        out.push_str(&format!(", … {} items", items.len()));
                    }
                }
                out.push(']');
            }
            Value::Object(members) if depth >= SHAPE_DEPTH => out.push_str("{…}"),
            Value::Object(members) => {
                out.push('{');
                for (i, (key, member)) in members.iter().take(SHAPE_MEMBERS).enumerate() {
                    if i > 0 {
                        out.push_str(", ");
                    }
                    let key: String = key.chars().take(40).collect();
                    out.push_str(&format!("{key:?}: "));
                    write(member, depth + 1, out);
                }
                if members.len() > SHAPE_MEMBERS {
                    out.push_str(&format!(", … {} more", members.len() - SHAPE_MEMBERS));
                }
                out.push('}');
            }
        }
    }
    let mut out = String::new();
    write(value, 0, &mut out);
    out
}

fn looks_like_form(body: &str) -> bool {
    let body = body.trim();
    !body.is_empty()
        && !body.starts_with(['{', '[', '<'])
        && body.contains('=')
        && !body.contains(char::is_whitespace)
}

/// A form-encoded body as a JSON object of texts.
fn form_object(body: &str) -> serde_json::Value {
    serde_json::Value::Object(
        url::form_urlencoded::parse(body.trim().as_bytes())
            .map(|(k, v)| (k.into_owned(), serde_json::Value::String(v.into_owned())))
            .collect(),
    )
}

fn clip(text: &str, limit: usize) -> String {
    text.chars().take(limit).collect()
}

impl TokenShape {
    /// The body as a JSON value, by the shape's format and the answer's content type.
    pub fn decode(
        &self,
        body: &str,
        content_type: Option<&str>,
    ) -> Result<serde_json::Value, OAuthError> {
        let labelled_form =
            content_type.is_some_and(|t| t.contains("application/x-www-form-urlencoded"));
        let format = match self.format {
            ResponseFormat::Auto if labelled_form => ResponseFormat::Form,
            other => other,
        };
        match format {
            ResponseFormat::Form => Ok(form_object(body)),
            ResponseFormat::Json => serde_json::from_str(body.trim())
                .map_err(|e| OAuthError::Parse(format!("the token response is not JSON ({e})"))),
            ResponseFormat::Auto => match serde_json::from_str(body.trim()) {
                Ok(value) => Ok(value),
                // GitHub's form answer can come labelled as JSON.
                Err(_) if looks_like_form(body) => Ok(form_object(body)),
                Err(e) => Err(OAuthError::Parse(format!(
                    "the token response is not JSON (nor a form){} ({e})",
                    content_type
                        .map(|t| format!(": it is labelled {}", clip(t, 60)))
                        .unwrap_or_default()
                ))),
            },
        }
    }

    /// The error the answer reports, with any HTTP status (only the error fields are read, so
    /// nothing else of the body, which might echo a credential, reaches a message).
    pub fn error_in(&self, value: &serde_json::Value) -> Option<OAuthError> {
        let description = self.error_description.text_at(value).map(|d| clip(&d, 200));
        if let Some(error) = self.error.text_at(value) {
            return Some(OAuthError::Server {
                error: clip(&error, 64),
                description,
            });
        }
        let (path, expected) = self.success.as_ref()?;
        let found = path.find(value);
        if found == Some(expected) {
            return None;
        }
        Some(OAuthError::Server {
            error: match found {
                Some(v) => clip(&format!("{} {v}", path.text().trim_start_matches("$.")), 64),
                None => format!("no {}", path.text()),
            },
            description,
        })
    }

    /// Reads a successful answer (HTTP 2xx). `previous_refresh` is kept when the answer has no
    /// refresh token (servers that do not rotate).
    pub fn read(
        &self,
        body: &str,
        content_type: Option<&str>,
        previous_refresh: Option<&Secret>,
        now_ms: i64,
    ) -> Result<TokenSet, OAuthError> {
        let value = self.decode(body, content_type)?;
        if let Some(error) = self.error_in(&value) {
            return Err(error);
        }
        let missing = |what: &str, path: &FieldPath| {
            OAuthError::Parse(format!(
                "the token response has no {what} at `{}`; it looks like {}",
                path.text(),
                redacted_shape(&value)
            ))
        };
        let access_token = match self.access_token.find(&value) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Secret::new(s.clone()),
            _ => return Err(missing("access token", &self.access_token)),
        };
        let refresh_token = match self.refresh_token.find(&value) {
            Some(serde_json::Value::String(s)) if !s.is_empty() => Some(Secret::new(s.clone())),
            _ => previous_refresh.cloned(),
        };
        let token_type = self
            .token_type
            .text_at(&value)
            .unwrap_or_else(|| "Bearer".to_string());
        let number = |path: &FieldPath| {
            match path.find(&value) {
                Some(serde_json::Value::Number(n)) => n.as_f64(),
                Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
                _ => None,
            }
            .filter(|n| n.is_finite() && *n >= 0.0)
        };
        let seconds = |s: f64| (s.min(1e12) * 1000.0) as i64;
        let expires_at_ms = match &self.expiry {
            Expiry::InSeconds => number(&self.expires).map(|s| now_ms + seconds(s)),
            Expiry::AtEpochSeconds => number(&self.expires).map(seconds),
            Expiry::AtEpochMilliseconds => number(&self.expires).map(|ms| ms.min(1e15) as i64),
            Expiry::AfterIssued(issued) => number(issued)
                .zip(number(&self.expires))
                .map(|(at, life)| seconds(at) + seconds(life)),
            Expiry::Fixed(lifetime) => Some(now_ms + (*lifetime as i64).saturating_mul(1000)),
        };
        let fields_root = match &self.fields {
            Some(path) => path.find(&value).cloned(),
            None => Some(value.clone()),
        };
        // The scope where the shape says, or among the token's fields (Withings nests it all
        // under `body`).
        let scope = self
            .scope
            .find(&value)
            .or_else(|| fields_root.as_ref().and_then(|fields| fields.get("scope")));
        let scopes = match scope {
            Some(serde_json::Value::String(s)) => s
                .split(|c: char| c.is_whitespace() || c == ',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            Some(serde_json::Value::Array(items)) => items
                .iter()
                .filter_map(|i| i.as_str().map(str::to_string))
                .collect(),
            _ => Vec::new(),
        };
        let mut extra = match fields_root {
            Some(serde_json::Value::Object(fields)) => fields,
            _ => serde_json::Map::new(),
        };
        for secret in ["access_token", "refresh_token"] {
            extra.remove(secret);
        }
        for standard in ["token_type", "expires_in", "scope"] {
            extra.remove(standard);
        }
        Ok(TokenSet {
            access_token,
            refresh_token,
            token_type,
            scopes,
            expires_at_ms,
            issued_at_ms: now_ms,
            extra,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(edit: impl FnOnce(&mut TokenShape)) -> TokenShape {
        let mut shape = TokenShape::default();
        edit(&mut shape);
        shape
    }

    fn path(text: &str) -> FieldPath {
        FieldPath::parse(text).unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn nested_fields_absolute_expiry_and_forms_are_read() {
        let withings = shape(|s| {
            s.access_token = path("body.access_token");
            s.refresh_token = path("$.body.refresh_token");
            s.expires = path("body.expires_in");
            s.success = Some((path("status"), serde_json::json!(0)));
            s.fields = Some(path("body"));
            // Withings' `error` is a description; the verdict is `status`.
            s.error = path("body.error_code");
            s.error_description = path("error");
        });
        let set = withings
            .read(
                r#"{"status":0,"body":{"userid":"42","access_token":"a","refresh_token":"r","expires_in":10800,"scope":"user.info,user.metrics"}}"#,
                Some("application/json"),
                None,
                1_000,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.access_token.expose(), "a");
        // The scope nested among the token's fields is read there.
        assert_eq!(set.scopes, vec!["user.info", "user.metrics"]);
        assert_eq!(set.expires_at_ms, Some(1_000 + 10_800_000));
        assert_eq!(set.extra["userid"], "42");
        assert!(!set.extra.contains_key("access_token"));
        let refused = withings
            .read(
                r#"{"status":503,"error":"Invalid Params: invalid code"}"#,
                None,
                None,
                0,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            refused.contains("status 503") && refused.contains("invalid code"),
            "{refused}"
        );

        let strava = shape(|s| {
            s.expires = path("expires_at");
            s.expiry = Expiry::AtEpochSeconds;
        });
        let set = strava
            .read(
                r#"{"access_token":"a","expires_at":1700000000,"athlete":{"id":1}}"#,
                None,
                None,
                5,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.expires_at_ms, Some(1_700_000_000_000));

        let github = TokenShape::default();
        let set = github
            .read(
                "access_token=gho_x&scope=repo%2Cuser&token_type=bearer",
                Some("application/json"),
                None,
                0,
            )
            .unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(set.access_token.expose(), "gho_x");
        assert_eq!(set.scopes, vec!["repo", "user"]);
        let refused = github
            .read(
                "error=bad_verification_code&error_description=The+code+passed+is+incorrect",
                Some("application/x-www-form-urlencoded"),
                None,
                0,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(refused.contains("bad_verification_code"), "{refused}");
    }

    #[test]
    fn a_path_that_matches_nothing_names_itself_and_shows_the_shape_only() {
        let error = shape(|s| s.access_token = path("data.token"))
            .read(
                r#"{"data":{"tok":"sekrit-value","n":[1,2,3]},"ok":true}"#,
                None,
                None,
                0,
            )
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("$.data.token"), "{error}");
        assert!(error.contains(r#""tok": <text>"#), "{error}");
        assert!(!error.contains("sekrit"), "{error}");
        assert!(FieldPath::parse("$[").is_err());
        assert!(FieldPath::parse(&"a.".repeat(400)).is_err());
    }
}
