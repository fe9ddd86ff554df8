//! `{{name}}` templates of token requests (URL, headers and body fields): checked against the
//! names that exist when a profile loads, filled when the request is made. A value is inserted
//! as it is; the request builder encodes it for its place (form, JSON, URL, header).

use std::collections::BTreeMap;

use crate::secret::Secret;

/// The names every token-request template may use, besides the profile's settings.
pub const BUILT_IN_NAMES: &[&str] = &[
    "auth_code",
    "code_verifier",
    "client_id",
    "client_secret",
    "redirect_uri",
    "refresh_token",
    "scope",
    "device_code",
    "username",
    "password",
];

/// A checked template: literal text and names, in order.
#[derive(Debug, Clone, PartialEq)]
pub struct TextTemplate {
    parts: Vec<Part>,
}

#[derive(Debug, Clone, PartialEq)]
enum Part {
    Text(String),
    Name(String),
}

/// Most characters in one template.
const MAX_TEMPLATE: usize = 4096;

/// What is wrong with a token-request template.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum TemplateError {
    #[error("a template longer than {MAX_TEMPLATE} characters")]
    TooLong,
    #[error("`{{{{` at byte {0} is never closed with `}}}}`")]
    Unclosed(usize),
    #[error("`{{{{{name}}}}}` names no variable (known: {known})")]
    UnknownName { name: String, known: String },
}

impl TextTemplate {
    /// Compiles `text`; every `{{name}}` must be a built-in name or one of `settings`.
    pub fn compile(text: &str, settings: &[&str]) -> Result<TextTemplate, TemplateError> {
        if text.len() > MAX_TEMPLATE {
            return Err(TemplateError::TooLong);
        }
        let mut parts = Vec::new();
        let mut rest = text;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(TemplateError::Unclosed(text.len() - rest.len() + open));
            };
            let name = after[..close].trim();
            if !BUILT_IN_NAMES.contains(&name) && !settings.contains(&name) {
                let mut known: Vec<&str> = BUILT_IN_NAMES.to_vec();
                known.extend(settings);
                return Err(TemplateError::UnknownName {
                    name: name.to_string(),
                    known: known.join(", "),
                });
            }
            parts.push(Part::Name(name.to_string()));
            rest = &after[close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(TextTemplate { parts })
    }

    /// A template of literal text only.
    pub fn literal(text: &str) -> TextTemplate {
        TextTemplate {
            parts: vec![Part::Text(text.to_string())],
        }
    }

    /// Fills the names from `values`; a name without a value becomes empty text.
    pub fn render(&self, values: &Values) -> String {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                Part::Text(text) => out.push_str(text),
                Part::Name(name) => out.push_str(values.get(name).unwrap_or_default()),
            }
        }
        out
    }

    /// Whether the template reads `name`.
    pub fn uses(&self, name: &str) -> bool {
        self.parts
            .iter()
            .any(|p| matches!(p, Part::Name(n) if n == name))
    }
}

/// The values a template is filled with: settings in the clear, credentials as secrets.
#[derive(Default, Clone)]
pub struct Values {
    plain: BTreeMap<String, String>,
    secret: BTreeMap<String, Secret>,
}

impl Values {
    pub fn with(mut self, name: &str, value: impl Into<String>) -> Values {
        self.plain.insert(name.to_string(), value.into());
        self
    }

    pub fn with_secret(mut self, name: &str, value: &Secret) -> Values {
        self.secret.insert(name.to_string(), value.clone());
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.secret
            .get(name)
            .map(Secret::expose)
            .or_else(|| self.plain.get(name).map(String::as_str))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_checked_when_compiled_and_filled_when_rendered() {
        let template =
            TextTemplate::compile("https://{{tenant}}.example/{{client_id}}", &["tenant"])
                .unwrap_or_else(|e| panic!("{e}"));
        let values = Values::default()
            .with("tenant", "contoso")
            .with_secret("client_id", &Secret::new("abc"));
        assert_eq!(template.render(&values), "https://contoso.example/abc");
        assert!(template.uses("tenant"));
        let unknown = TextTemplate::compile("{{tenantt}}", &["tenant"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            unknown.contains("tenantt") && unknown.contains("tenant"),
            "{unknown}"
        );
        assert!(TextTemplate::compile("{{client_id", &[]).is_err());
        assert!(TextTemplate::compile(&"{".repeat(5000), &[]).is_err());
        assert_eq!(
            TextTemplate::compile("a {{ scope }} b", &[])
                .map(|t| t.render(&Values::default().with("scope", "x y"))),
            Ok("a x y b".to_string())
        );
    }
}
