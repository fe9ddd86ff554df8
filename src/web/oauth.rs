//! The OAuth2 pages: `GET /oauth2/start?profile=…` (Request Authorization: redirects the browser
//! to the provider) and the callback page at `/oauth2/callback` (and the family's legacy
//! `/oauth2_callback.html`), which checks `state`, exchanges the code and says what happened.
//! No code, token or secret is ever put on a page.

use std::collections::HashMap;

use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::AppState;
use crate::engine::authorization::AuthorizationError;
use crate::engine::door::DoorError;

const PAGE: &str = include_str!("../../web/callback.html");

pub fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&#39;")
}

/// The callback page with an outcome: `ok` or `refused`.
pub fn page(status: StatusCode, kind: &str, title: &str, message: &str) -> Response {
    let html = PAGE
        .replace("{{kind}}", kind)
        .replace("{{title}}", &escape(title))
        .replace("{{message}}", &escape(message))
        // Back where Request Authorization was pressed: the profiles.
        .replace("{{back}}", "/#profiles");
    let reply = warp::reply::with_header(warp::reply::html(html), "cache-control", "no-store");
    warp::reply::with_status(reply, status).into_response()
}

fn refused(status: StatusCode, message: &str) -> Response {
    page(status, "refused", "Authorization refused", message)
}

/// `GET /oauth2/start?profile=NAME`
pub async fn start(state: AppState, query: HashMap<String, String>) -> Response {
    let Some(name) = query.get("profile") else {
        return refused(StatusCode::BAD_REQUEST, "No profile was named.");
    };
    match state.engine.begin_authorization(name).await {
        Ok(url) => {
            let location = warp::http::HeaderValue::from_str(url.as_str());
            match location {
                Ok(location) => {
                    let mut response = warp::reply::with_header(
                        warp::reply::with_status("", StatusCode::FOUND),
                        "cache-control",
                        "no-store",
                    )
                    .into_response();
                    response.headers_mut().insert("location", location);
                    response
                }
                Err(_) => refused(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    "The authorize URL cannot be used.",
                ),
            }
        }
        Err(DoorError::UnknownProfile(name)) => refused(
            StatusCode::NOT_FOUND,
            &format!("No profile named “{name}” is loaded."),
        ),
        Err(DoorError::NoOAuth) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "OAuth2 is not available in this process.",
        ),
        Err(error @ DoorError::Authorization(AuthorizationError::Protocol(_))) => refused(
            StatusCode::BAD_GATEWAY,
            &format!("The provider refused to start the authorization: {error}"),
        ),
        Err(error) => refused(StatusCode::BAD_REQUEST, &error.to_string()),
    }
}

/// `GET /oauth2/callback?code=…&state=…` (or `?error=…&state=…`), and the implicit grant's
/// fragment posted back by the callback page.
pub async fn callback(state: AppState, query: HashMap<String, String>) -> Response {
    // The page itself reads a fragment (implicit grant) and posts it back here.
    if query.is_empty() {
        return page(
            StatusCode::OK,
            "waiting",
            "Finishing authorization",
            "Reading the provider's answer…",
        );
    }
    match state.engine.complete_redirect(&query).await {
        Ok(profile) => {
            let who = state
                .engine
                .profiles()
                .get(&profile)
                .cloned()
                .and_then(|_| state.engine.authorization_status(&profile).ok())
                .and_then(|status| match status {
                    crate::engine::authorization::AuthorizationStatus::Authorized {
                        authorized_as,
                        ..
                    } => authorized_as,
                    _ => None,
                })
                .map(|who| format!(" as {who}"))
                .unwrap_or_default();
            page(
                StatusCode::OK,
                "ok",
                "Profile authorized",
                &format!(
                    "Profile “{profile}” is authorized{who}. Bellhop keeps its tokens and refreshes them."
                ),
            )
        }
        Err(DoorError::NoOAuth) => refused(
            StatusCode::SERVICE_UNAVAILABLE,
            "OAuth2 is not available in this process.",
        ),
        Err(DoorError::UnknownProfile(name)) => refused(
            StatusCode::NOT_FOUND,
            &format!("Profile “{name}” is no longer loaded."),
        ),
        Err(error @ DoorError::Authorization(AuthorizationError::Protocol(_))) => refused(
            StatusCode::BAD_GATEWAY,
            &format!("The code could not be exchanged for tokens: {error}"),
        ),
        Err(error @ DoorError::Authorization(AuthorizationError::State(_)))
        | Err(error @ DoorError::Redirect(_)) => {
            refused(StatusCode::BAD_REQUEST, &error.to_string())
        }
        Err(error) => refused(StatusCode::INTERNAL_SERVER_ERROR, &error.to_string()),
    }
}
