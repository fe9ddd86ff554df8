//! Listening profiles over HTTP: `GET|POST|PUT <listen base><path>` hands what a sensor sends
//! to the engine (the query string for GET, the body otherwise) and answers with the profile's
//! reply. These paths are open without the admin token — sensors cannot sign in — so each is
//! guarded by the profile's own token when it sets one, by its body limit (413) and by its
//! calls-per-second budget (429). Host and Origin are checked as for every route.

use crate::sync::Locked;
use std::collections::HashMap;
use std::sync::Mutex;

use bytes::Buf;
use futures_util::StreamExt;
use warp::filters::BoxedFilter;
use warp::http::{HeaderMap, StatusCode};
use warp::reply::Response;
use warp::{Filter, Reply};

use super::edge::TokenBucket;
use super::error::ApiError;
use super::AppState;
use crate::engine::listening::{IncomingCall, ReceiveError};
use crate::profile::Method;

/// The header a caller may carry a listening token in (besides `Authorization: Bearer`).
const TOKEN_HEADER: &str = "x-bellhop-token";
/// The query parameter a caller may carry it in.
const TOKEN_PARAMETER: &str = "token";

/// A token bucket per listening profile: `max_per_second` calls a second, in bursts of as many.
#[derive(Default)]
pub struct Throttle {
    buckets: Mutex<HashMap<String, TokenBucket>>,
}

impl Throttle {
    fn admit(&self, profile: &str, per_second: u32, now_ms: i64) -> bool {
        let per_second = f64::from(per_second.max(1));
        let mut buckets = self.buckets.locked();
        // Only loaded profiles get here, so the map is as large as the profile set at most
        // (plus profiles removed since, dropped when it grows past that).
        if buckets.len() > 10_000 {
            buckets.clear();
        }
        buckets
            .entry(profile.to_string())
            .or_insert_with(|| TokenBucket::full(per_second, now_ms))
            .take(per_second, per_second, now_ms)
            .is_ok()
    }
}

fn text(status: StatusCode, content_type: &str, body: String) -> Response {
    let mut response = Response::new(body.into());
    *response.status_mut() = status;
    if let Ok(value) = warp::http::HeaderValue::from_str(content_type) {
        response.headers_mut().insert("content-type", value);
    }
    response
}

/// The token a caller sent: `Authorization: Bearer …`, the token header, or `?token=`.
fn token_of(headers: &HeaderMap, query: &str) -> Option<String> {
    headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .or_else(|| headers.get(TOKEN_HEADER).and_then(|v| v.to_str().ok()))
        .map(str::to_string)
        .or_else(|| {
            url::form_urlencoded::parse(query.as_bytes())
                .find(|(key, _)| key == TOKEN_PARAMETER)
                .map(|(_, value)| value.into_owned())
        })
}

/// The query string without the token parameter (the token is nobody's input).
fn without_token(query: &str) -> String {
    if !query
        .split('&')
        .any(|pair| pair.split('=').next() == Some(TOKEN_PARAMETER))
    {
        return query.to_string();
    }
    query
        .split('&')
        .filter(|pair| pair.split('=').next() != Some(TOKEN_PARAMETER))
        .collect::<Vec<_>>()
        .join("&")
}

/// The part of `path` under the listen base `base` (`/in/hall` under `/in` is `/hall`); `None`
/// for a path outside it (`/inside`, `/in` itself).
pub(super) fn under_base<'a>(base: &str, path: &'a str) -> Option<&'a str> {
    path.strip_prefix(base).filter(|rest| rest.starts_with('/'))
}

/// Reads at most `limit` bytes of a body; `Err(None)` when it is longer.
async fn read_body<E: std::fmt::Display>(
    mut body: impl futures_util::Stream<Item = Result<impl Buf, E>> + Unpin,
    limit: u64,
) -> Result<Vec<u8>, Option<String>> {
    let mut bytes = Vec::new();
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(|e| Some(e.to_string()))?;
        if (bytes.len() + chunk.remaining()) as u64 > limit {
            return Err(None);
        }
        bytes.extend_from_slice(chunk.chunk());
    }
    Ok(bytes)
}

/// The route: rejects (so other routes may answer) anything outside the listen base.
pub fn route(state: AppState) -> BoxedFilter<(Response,)> {
    let base = state.listen_base.clone();
    warp::path::full()
        .and_then(move |path: warp::path::FullPath| {
            let base = base.clone();
            async move {
                match under_base(&base, path.as_str()) {
                    Some(rest) => Ok(rest.to_string()),
                    None => Err(warp::reject::not_found()),
                }
            }
        })
        .and(warp::method())
        .and(warp::header::headers_cloned())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(warp::body::stream())
        .and(warp::any().map(move || state.clone()))
        .then(
            |path: String,
             method: warp::http::Method,
             headers: HeaderMap,
             query: String,
             body,
             state: AppState| async move {
                receive(&state, path, method, headers, query, Box::pin(body)).await
            },
        )
        .boxed()
}

/// A call to the listening profile at `path` (under the listen base): the route's handler, and
/// the shortcut's (`web::shortcut`).
pub(super) async fn receive<E: std::fmt::Display>(
    state: &AppState,
    path: String,
    method: warp::http::Method,
    mut headers: HeaderMap,
    query: String,
    body: impl futures_util::Stream<Item = Result<impl Buf, E>> + Unpin,
) -> Response {
    let method = match method {
        warp::http::Method::GET => Method::Get,
        warp::http::Method::POST => Method::Post,
        warp::http::Method::PUT => Method::Put,
        _ => {
            return ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method_not_allowed",
                "a listening path takes GET (the query string) or POST and PUT (the body)",
            )
            .into_response()
        }
    };
    let Some(profile) = state.engine.listener(&path) else {
        return ApiError::not_found(format!(
            "no profile listens at `{}{path}`",
            state.listen_base
        ))
        .into_response();
    };
    let Some(listen) = &profile.listen else {
        return ApiError::not_found("no profile listens here").into_response();
    };
    if !state
        .listen_throttle
        .admit(&profile.name, listen.max_per_second, state.clock.now_ms())
    {
        return ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_requests",
            format!(
                "more than {} calls a second: slow down",
                listen.max_per_second
            ),
        )
        .into_response();
    }
    let too_large = || {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            format!(
                "the body is larger than this path's limit of {} bytes: nothing was taken",
                listen.max_body_bytes
            ),
        )
        .into_response()
    };
    let declared = headers
        .get("content-length")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|length| length > listen.max_body_bytes) {
        return too_large();
    }
    let token = token_of(&headers, &query);
    let input = if method == Method::Get {
        if listen.token.is_some() {
            without_token(&query)
        } else {
            query
        }
    } else {
        let bytes = match read_body(body, listen.max_body_bytes).await {
            Ok(bytes) => bytes,
            Err(None) => return too_large(),
            Err(Some(error)) => {
                return ApiError::bad_request(format!("the body could not be read: {error}"))
                    .into_response()
            }
        };
        match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(error) => {
                return ApiError::bad_request(format!(
                    "the body is not UTF-8 text (invalid byte at offset {}): nothing was taken",
                    error.utf8_error().valid_up_to()
                ))
                .into_response()
            }
        }
    };
    // What carries credentials stays out of reach of the profile's `Header()` expressions.
    for name in [
        "authorization",
        TOKEN_HEADER,
        "cookie",
        "x-bellhop-mqtt-topic",
    ] {
        headers.remove(name);
    }
    let call = IncomingCall {
        method,
        token,
        input: input.into(),
        headers,
    };
    match state.engine.receive(profile.clone(), call).await {
        Err(error @ ReceiveError::NotListening(_)) => {
            ApiError::not_found(error.to_string()).into_response()
        }
        Err(ReceiveError::Unauthorized) => ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this path needs its token (Authorization: Bearer, X-Bellhop-Token or ?token=)",
        )
        .into_response(),
        Ok(received) if !received.record.ok => {
            let message = received
                .record
                .errors
                .first()
                .map(|e| e.message.clone())
                .unwrap_or_default();
            ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "not_mapped",
                format!("received, but the devices could not all be set: {message}"),
            )
            .into_response()
        }
        Ok(received) => match received.reply {
            Ok(reply) => text(StatusCode::OK, &received.content_type, reply),
            // The caller's input did not fit the reply template: its fault, said like a
            // device expression's (the call was received and recorded).
            Err(error) => ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "reply_failed",
                format!("received, but {error}"),
            )
            .into_response(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_token_parameter_is_taken_out_of_the_input() {
        assert_eq!(without_token("t=21.5&token=abc&h=40"), "t=21.5&h=40");
        assert_eq!(without_token("t=21.5"), "t=21.5");
        assert_eq!(without_token("tokens=1"), "tokens=1");
        let mut headers = HeaderMap::new();
        assert_eq!(
            token_of(&headers, "a=1&token=x%20y").as_deref(),
            Some("x y")
        );
        headers.insert(TOKEN_HEADER, "from-header".parse().unwrap());
        assert_eq!(
            token_of(&headers, "token=q").as_deref(),
            Some("from-header")
        );
        headers.insert("authorization", "Bearer bearer".parse().unwrap());
        assert_eq!(token_of(&headers, "").as_deref(), Some("bearer"));
    }

    #[test]
    fn a_path_is_under_the_base_only_past_its_slash() {
        assert_eq!(under_base("/in", "/in/hall"), Some("/hall"));
        assert_eq!(under_base("/in", "/in/"), Some("/"));
        assert_eq!(under_base("/in", "/in"), None);
        assert_eq!(under_base("/in", "/inside/hall"), None);
        assert_eq!(under_base("/sensors/in", "/sensors/in/a/b"), Some("/a/b"));
        assert_eq!(under_base("/in", "/api/v1/in/x"), None);
    }

    #[test]
    fn the_throttle_admits_a_burst_then_the_rate() {
        let throttle = Throttle::default();
        let now_ms = 1_000_000;
        let admitted = (0..50)
            .filter(|_| throttle.admit("hall", 20, now_ms))
            .count();
        assert_eq!(admitted, 20, "a burst of max_per_second, then refusals");
        assert!(
            throttle.admit("kitchen", 20, now_ms),
            "each profile has its own budget"
        );
        let later = (0..50)
            .filter(|_| throttle.admit("hall", 20, now_ms + 500))
            .count();
        assert_eq!(later, 10, "half a second later, half the rate again");
    }
}
