//! Network helpers shared by the HTTP-speaking modules (`engine` and `oauth`): describing a
//! transport failure for people. Knows nothing of any other project module.

/// Describes a transport error by its causes, without the URL (which may carry a key).
/// How long an idle pooled connection is kept for reuse: below the 5 s keep-alive timeout of
/// common servers (Node.js's and Apache's defaults), so a request is not sent on a connection
/// the server is closing just then ("connection closed before message completed").
pub const POOL_IDLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(4);

pub fn describe(error: &reqwest::Error) -> String {
    let mut parts = Vec::new();
    let mut source: Option<&dyn std::error::Error> = std::error::Error::source(error);
    while let Some(cause) = source {
        let text = cause.to_string();
        // hyper's wrapper texts say nothing the causes below them do not.
        let noise = text.starts_with("client error (");
        if !noise && !parts.iter().any(|p: &String| p.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    let resolving = parts.iter().any(|p| p.contains("dns error"));
    let kind = if resolving {
        "cannot resolve the host name"
    } else if error.is_connect() {
        "cannot connect"
    } else if error.is_redirect() {
        "too many redirects"
    } else if error.is_body() || error.is_decode() {
        "the response body broke off"
    } else {
        "request failed"
    };
    if parts.is_empty() {
        kind.to_string()
    } else {
        format!("{kind}: {}", parts.join(": "))
    }
}
