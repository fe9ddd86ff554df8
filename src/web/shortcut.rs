//! The busiest routes, answered ahead of the filter tree: `POST /api/v1/actions/run` and the
//! calls sensors make to listening paths (`GET|POST|PUT <listen base>/…`).
//!
//! Every request meets warp's filters: the edge gate extracts five headers as owned strings,
//! then the request descends the tree of routes, its body is read by a chain of body filters.
//! For an action that was a fifth of Bellhop's own cost per action, and a listening call spent
//! 7 µs there before its handler (ARCHITECTURE.md, "Performance notes"). The shortcut takes a
//! request only when it is plainly the case that the filters would admit it to the same
//! handler: the exact method and path, a Host (and an Origin, if any) the edge knows, and no
//! `Transfer-Encoding`. An action also needs the admin token when one is set, no cookie (a
//! browser's session goes the long way), JSON or no content type and a `Content-Length` within
//! the body limit. Anything else — and an action's body that is not the expected JSON — goes to
//! the filters unchanged, which answer it as they always did (the refusals, the error envelope
//! and their wording stay in one place). Taken, a request runs the same handler as its filter
//! route.

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

/// The action route's path.
const ACTION_PATH: &str = "/api/v1/actions/run";

/// Which handler a request the shortcut takes goes to.
enum Taken {
    Action,
    Listening,
}

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

/// The busiest routes, ahead of the filters. Cloned per request: one shared pointer, not the
/// state's half-dozen handles (each clone and drop of those is an atomic on a cache line both
/// worker threads touch).
#[derive(Clone)]
pub(super) struct Shortcut {
    state: Arc<AppState>,
}

impl Shortcut {
    pub(super) fn new(state: AppState) -> Shortcut {
        Shortcut {
            state: Arc::new(state),
        }
    }

    /// Answers `request` if it is plainly an admitted action or listening call; otherwise
    /// hands it back.
    pub(super) async fn offer(&self, request: hyper::Request<Incoming>) -> Offered {
        match self.takes(&request) {
            None => Offered::Declined(request),
            Some(Taken::Action) => self.run_action(request).await,
            Some(Taken::Listening) => Offered::Answered(self.receive_call(request).await),
        }
    }

    /// A call to a listening path, handed to the listening route's handler.
    async fn receive_call(&self, request: hyper::Request<Incoming>) -> Response {
        let (parts, body) = request.into_parts();
        let path = parts.uri.path();
        // (Under the base: `takes` said so.)
        let rest = super::listening::under_base(&self.state.listen_base, path)
            .unwrap_or(path)
            .to_string();
        let query = parts.uri.query().unwrap_or_default().to_string();
        super::listening::receive(
            &self.state,
            rest,
            parts.method,
            parts.headers,
            query,
            http_body_util::BodyDataStream::new(body),
        )
        .await
    }

    /// An action, when its body is the JSON the route expects.
    async fn run_action(&self, request: hyper::Request<Incoming>) -> Offered {
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

    /// The handler the filters would admit `request` to, if that is plain (and the body is one
    /// they read): every doubt says no.
    fn takes(&self, request: &hyper::Request<Incoming>) -> Option<Taken> {
        let path = request.uri().path();
        let taken = match *request.method() {
            hyper::Method::POST if path == ACTION_PATH => Taken::Action,
            hyper::Method::GET | hyper::Method::POST | hyper::Method::PUT
                if super::listening::under_base(&self.state.listen_base, path).is_some() =>
            {
                Taken::Listening
            }
            _ => return None,
        };
        if request.uri().authority().is_some() {
            return None;
        }
        let headers = request.headers();
        // A header that is not text is the filters' to refuse.
        let text = |name| match headers.get(name) {
            None => Ok(None),
            Some(value) => value.to_str().map(Some).map_err(|_| ()),
        };
        let (Ok(Some(host)), Ok(origin), Ok(None)) =
            (text(HOST), text(ORIGIN), text(TRANSFER_ENCODING))
        else {
            return None;
        };
        let edge = &self.state.edge;
        if host.parse::<warp::host::Authority>().is_err()
            || edge.check_addressing(Some(host), origin).is_err()
        {
            return None;
        }
        if let Taken::Listening = taken {
            // Open without the admin token (`open_path`); the handler checks the rest.
            return Some(taken);
        }
        let (Ok(authorization), Ok(None)) = (text(AUTHORIZATION), text(COOKIE)) else {
            return None;
        };
        if !(open_path(ACTION_PATH, &self.state.listen_base) || edge.admitted(authorization, None))
        {
            return None;
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
        (json && length_within).then_some(taken)
    }
}
