//! Who a token belongs to: the provider's profile endpoint read after a grant, and the display-name and e-mail templates filled from it.

use super::*;

/// Fills a `{name}`-style template from a JSON answer: `{a.b}` is a dotted path, `{a|b}` the
/// first of several that has a value. `None` when no placeholder found a value.
pub fn fill_identity_template(template: &str, answer: &serde_json::Value) -> Option<String> {
    let lookup = |path: &str| -> Option<String> {
        let mut value = answer;
        for key in path.trim().split('.') {
            value = match value {
                serde_json::Value::Array(items) => items.get(key.parse::<usize>().ok()?)?,
                other => other.get(key)?,
            };
        }
        match value {
            serde_json::Value::String(s) if !s.trim().is_empty() => Some(s.trim().to_string()),
            serde_json::Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    let mut out = String::new();
    let mut found = false;
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let Some(close) = rest[open..].find('}') else {
            break;
        };
        let inner = &rest[open + 1..open + close];
        if let Some(value) = inner.split('|').find_map(lookup) {
            out.push_str(&value);
            found = true;
        }
        rest = &rest[open + close + 1..];
    }
    out.push_str(rest);
    let out: String = out.split_whitespace().collect::<Vec<_>>().join(" ");
    (found && !out.is_empty()).then(|| out.chars().take(200).collect())
}

pub(super) fn describe_identity(
    userinfo: &crate::profile::UserInfoSpec,
    answer: &serde_json::Value,
) -> Option<String> {
    let name = userinfo
        .display_name
        .as_deref()
        .and_then(|t| fill_identity_template(t, answer));
    let email = userinfo
        .email
        .as_deref()
        .and_then(|t| fill_identity_template(t, answer));
    let id = userinfo
        .id_field
        .as_deref()
        .and_then(|f| fill_identity_template(&format!("{{{f}}}"), answer));
    match (name, email) {
        (Some(name), Some(email)) => Some(format!("{name} ({email})")),
        (Some(one), None) | (None, Some(one)) => Some(one),
        (None, None) => id,
    }
}

impl Authorizer {
    /// Asks the provider's profile endpoint who the token belongs to ("Ann (ann@…)"), through
    /// the definition's display-name and e-mail templates. Best effort: `None` when the
    /// provider has no such endpoint or it fails.
    pub(super) async fn identity(
        &self,
        profile: &Profile,
        spec: &OAuth2Spec,
        tokens: &TokenSet,
    ) -> Option<String> {
        let userinfo = spec.userinfo.as_ref()?;
        // A URL from the token answer is followed only to the token endpoint's origin or an
        // API origin: the bearer token goes nowhere else.
        let from_answer = userinfo
            .url_field
            .as_ref()
            .and_then(|field| tokens.extra.get(field)?.as_str())
            .and_then(|text| url::Url::parse(text).ok())
            .filter(|url| {
                let allowed = spec.token_url.origin() == url.origin()
                    || granted_origins(profile, spec, Some(tokens))
                        .is_ok_and(|origins| origins.contains(&url.origin().ascii_serialization()));
                if !allowed {
                    tracing::warn!(url = %url.origin().ascii_serialization(), "the token answer's profile URL is on another origin: not called");
                }
                allowed
            });
        let mut url = from_answer.or_else(|| userinfo.url.clone())?;
        let mut headers = reqwest::header::HeaderMap::new();
        place_token(
            spec,
            token_value(spec, &tokens.access_token)?,
            &mut url,
            &mut headers,
        );
        let request = if userinfo.post {
            self.http.post(url)
        } else {
            self.http.get(url)
        };
        let response = request
            .headers(headers)
            .header(reqwest::header::ACCEPT, "application/json")
            .timeout(Duration::from_secs(10))
            .send()
            .await
            .ok()?;
        if !response.status().is_success() {
            tracing::warn!(
                status = response.status().as_u16(),
                "the profile endpoint refused"
            );
            return None;
        }
        let bytes = oauth::read_at_most(response, 256 * 1024).await.ok()?;
        let answer: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
        describe_identity(userinfo, &answer)
    }
}
