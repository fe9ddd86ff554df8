//! Resolving a listening profile: `listen` (its path) and `[incoming]` (reply, token, limits).

use super::*;

/// The largest body a listening profile may accept.
pub const MAX_LISTEN_BODY_BYTES: u64 = 1024 * 1024;

pub(super) const DEFAULT_LISTEN_BODY_BYTES: u64 = 64 * 1024;

pub(super) const DEFAULT_LISTEN_PER_SECOND: u32 = 20;

pub(super) const MAX_LISTEN_PATH_CHARS: usize = 200;

pub(super) fn resolve_listen(
    path: &str,
    incoming: Option<&RawIncoming>,
    c: &mut Collector<'_>,
    secrets: &SecretSource,
) -> Option<ListenSpec> {
    let path = match listen_path_problem(path) {
        Some(problem) => {
            c.error("listen", problem);
            None
        }
        None => Some(path.trim_end_matches('/').to_string()),
    };
    let default = RawIncoming::default();
    let incoming = incoming.unwrap_or(&default);
    let reply = template(
        c,
        "incoming.reply",
        incoming.reply.as_deref().unwrap_or("OK"),
    );
    let reply_content_type = incoming
        .reply_content_type
        .clone()
        .unwrap_or_else(|| "text/plain; charset=utf-8".to_string());
    if reqwest::header::HeaderValue::from_str(&reply_content_type).is_err() {
        c.error(
            "incoming.reply_content_type",
            "not a valid Content-Type header value",
        );
    }
    let token = match &incoming.token {
        Some(token) => Some(secret(c, secrets, "incoming.token", token)?),
        None => None,
    };
    if token.as_ref().is_some_and(|t| t.expose().len() < 16) {
        c.error(
            "incoming.token",
            "a listening token must be at least 16 characters (it is all that guards the path)",
        );
    }
    let max_body_bytes = incoming.max_body_bytes.unwrap_or(DEFAULT_LISTEN_BODY_BYTES);
    if max_body_bytes == 0 || max_body_bytes > MAX_LISTEN_BODY_BYTES {
        c.error(
            "incoming.max_body_bytes",
            format!("must be between 1 and {MAX_LISTEN_BODY_BYTES}"),
        );
    }
    let max_per_second = incoming.max_per_second.unwrap_or(DEFAULT_LISTEN_PER_SECOND);
    if max_per_second == 0 || max_per_second > 10_000 {
        c.error("incoming.max_per_second", "must be between 1 and 10000");
    }
    Some(ListenSpec {
        path: path?,
        reply: reply?,
        reply_content_type,
        token,
        max_body_bytes,
        max_per_second,
    })
}

/// Why `path` cannot be a listening path, if it cannot.
pub(super) fn listen_path_problem(path: &str) -> Option<String> {
    let trimmed = path.trim_end_matches('/');
    if !path.starts_with('/') || trimmed.is_empty() {
        return Some(format!(
            "`{path}` is not a listening path: write it like `/sensors/hall`"
        ));
    }
    if path.chars().count() > MAX_LISTEN_PATH_CHARS {
        return Some(format!(
            "a listening path may be at most {MAX_LISTEN_PATH_CHARS} characters long"
        ));
    }
    let bad_segment = trimmed[1..].split('/').find(|segment| {
        segment.is_empty()
            || *segment == "."
            || *segment == ".."
            || !segment
                .chars()
                .all(|ch| ch.is_ascii_alphanumeric() || matches!(ch, '-' | '_' | '.' | '~'))
    });
    bad_segment.map(|segment| {
        format!(
            "listening path segment `{segment}` may only hold ASCII letters, digits, `-`, `_`, `.` and `~` (not empty, `.` or `..`)"
        )
    })
}
