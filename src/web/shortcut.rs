//! The busiest route, `POST /api/v1/actions/run`, answered ahead of the filter tree.
//!
//! Every request meets warp's filters: the edge gate extracts five headers as owned strings,
//! then the request descends the tree of routes, its body is read by a chain of body filters.
//! For an action that was a fifth of Bellhop's own cost per action (ARCHITECTURE.md,
//! "Performance notes"). The shortcut takes a request only when it is plainly the case that the filters
//! would admit it: the exact method and path, a Host (and an Origin, if any) the edge knows, the
//! admin token when one is set, no cookie (a browser's session goes the long way), JSON or no
//! content type, a `Content-Length` within the body limit and no `Transfer-Encoding`. Anything else — and a body that is
//! not the expected JSON — goes to the filters unchanged, which answer it as they always did
//! (the refusals, the error envelope and their wording stay in one place). Taken, it runs the
//! same handler as the filter route.

use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{
    AUTHORIZATION, CONTENT_LENGTH, CONTENT_TYPE, COOKIE, HOST, ORIGIN, TRANSFER_ENCODING,
};
use warp::reply::Response;
use warp::Reply;

use super::{api, open_path, AppState, BODY_LIMIT};
use crate::web::dto::RunRequest;

/// The path the shortcut answers.
const ACTION_PATH: &str = "/api/v1/actions/run";

/// What became of a request offered to the shortcut.
pub(super) enum Offered {
    /// Answered here.
    Answered(Response),
    /// Not taken, untouched: the filters answer it.
    Declined(hyper::Request<Incoming>),
    /// Its body was read but is not what the route expects: the filters answer it from the
    /// bytes read (with the error they give).
    Reread(hyper::Request<Full<Bytes>>),
}

/// The action route, ahead of the filters. Cloned per request: one shared pointer, not the
/// state's half-dozen handles (each clone and drop of those is an atomic on a cache line both
/// worker threads touch).
#[derive(Clone)]
pub(super) struct ActionShortcut {
    state: Arc<AppState>,
}

impl ActionShortcut {
    pub(super) fn new(state: AppState) -> ActionShortcut {
        ActionShortcut {
            state: Arc::new(state),
        }
    }

    /// Answers `request` if it is plainly an admitted action; otherwise hands it back.
    pub(super) async fn offer(&self, request: hyper::Request<Incoming>) -> Offered {
        if !self.takes(&request) {
            return Offered::Declined(request);
        }
        let (parts, body) = request.into_parts();
        // (The declared length was checked; the reading is bounded all the same.)
        let limit = usize::try_from(BODY_LIMIT).unwrap_or(usize::MAX);
        let bytes = match http_body_util::Limited::new(body, limit).collect().await {
            Ok(collected) => collected.to_bytes(),
            Err(error) if error.is::<http_body_util::LengthLimitError>() => {
                return Offered::Answered(
                    super::error::ApiError::new(
                        warp::http::StatusCode::PAYLOAD_TOO_LARGE,
                        "too_large",
                        "the request body is too large",
                    )
                    .into_response(),
                )
            }
            // The client went away mid-body: nobody reads the answer.
            Err(_) => {
                return Offered::Answered(
                    super::error::ApiError::bad_request("the request body could not be read")
                        .into_response(),
                )
            }
        };
        match serde_json::from_slice::<RunRequest>(&bytes) {
            Ok(run) => Offered::Answered(api::runs::answer_run_with(run, &self.state).await),
            Err(_) => Offered::Reread(hyper::Request::from_parts(parts, Full::new(bytes))),
        }
    }

    /// Whether the filters would admit `request` to the action route with a body they read:
    /// every doubt says no.
    fn takes(&self, request: &hyper::Request<Incoming>) -> bool {
        if request.method() != hyper::Method::POST
            || request.uri().path() != ACTION_PATH
            || request.uri().authority().is_some()
        {
            return false;
        }
        let headers = request.headers();
        // A header that is not text is the filters' to refuse.
        let text = |name| match headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).map_err(|_| ()),
        };
        let (Ok(Some(host)), Ok(origin), Ok(authorization), Ok(None), Ok(None)) = (
            text(HOST),
            text(ORIGIN),
            text(AUTHORIZATION),
            text(COOKIE),
            text(TRANSFER_ENCODING),
        ) else {
            return false;
        };
        if host.parse::<warp::host::Authority>().is_err() {
            return false;
        }
        let edge = &self.state.edge;
        if edge.check_addressing(Some(host), origin).is_err()
            || !(open_path(ACTION_PATH, &self.state.listen_base)
                || edge.admitted(authorization, None))
        {
            return false;
        }
        let json = match text(CONTENT_TYPE) {
            Ok(None) => true,
            Ok(Some(kind)) => kind
                .split(';')
                .next()
                .is_some_and(|essence| essence.trim().eq_ignore_ascii_case("application/json")),
            Err(()) => false,
        };
        let length_within = text(CONTENT_LENGTH)
            .ok()
            .flatten()
            .and_then(|length| length.parse::<u64>().ok())
            .is_some_and(|length| length <= BODY_LIMIT);
        json && length_within
    }
}
