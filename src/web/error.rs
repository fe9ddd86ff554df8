//! The one JSON error shape of the API, `{"error": {"code", "message", "column"?, "diagnostics"?}}`,
//! and the conversion of warp's own rejections into it.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

use super::edge::Refusal;
use crate::engine::authorization::AuthorizationError;
use crate::engine::door::{DoorError, SandboxError};
use crate::engine::editor::EditError;
use crate::engine::EngineError;
use crate::profile::Diagnostic;

#[derive(Debug, Serialize)]
pub struct ApiError {
    #[serde(skip)]
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub column: Option<usize>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub span: Option<crate::expr::Span>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub diagnostics: Vec<Diagnostic>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code,
            message: message.into(),
            column: None,
            span: None,
            diagnostics: Vec::new(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, "not_found", message)
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, "bad_request", message)
    }

    pub fn internal(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
    }

    /// 404 for a profile that is not loaded (said in one place).
    pub fn unknown_profile(name: &str) -> ApiError {
        ApiError::not_found(format!("no profile named `{name}` is loaded"))
    }

    /// 404 for an event that is not loaded (said in one place).
    pub fn unknown_event(name: &str) -> ApiError {
        ApiError::not_found(format!("no event named `{name}` is loaded"))
    }

    /// An editor's failure; `what`: `profile` or `event`.
    pub fn from_edit(error: EditError, what: &str) -> ApiError {
        match error {
            EditError::Invalid(diagnostics) => {
                let mut api = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "invalid_file",
                    format!("the {what} has problems: nothing was saved"),
                );
                api.diagnostics = diagnostics;
                api
            }
            EditError::BadName(message) => ApiError::bad_request(message),
            EditError::NotLoaded(name) => {
                ApiError::not_found(format!("no {what} named `{name}` is loaded"))
            }
            EditError::NameTaken(name) => ApiError::new(
                StatusCode::CONFLICT,
                "name_taken",
                format!("a {what} named `{name}` exists already"),
            ),
            EditError::NoFolder | EditError::Io(_) => {
                // The detail (paths, OS errors) goes to the log, not to the page.
                tracing::error!(error = %error, "a {what} could not be saved");
                ApiError::internal(format!("the {what} could not be saved: see Bellhop's log"))
            }
        }
    }
}

/// A door error as the API answers it.
impl From<DoorError> for ApiError {
    fn from(error: DoorError) -> ApiError {
        match error {
            DoorError::UnknownProfile(name) => ApiError::unknown_profile(&name),
            DoorError::NoOAuth => ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "unavailable",
                "OAuth2 is not available in this process",
            ),
            DoorError::Authorization(AuthorizationError::Protocol(error)) => ApiError::new(
                StatusCode::BAD_GATEWAY,
                "provider_refused",
                error.to_string(),
            ),
            error => ApiError::bad_request(error.to_string()),
        }
    }
}

/// The sandbox's failure: no response to read is a 404; an expression that does not compile or
/// fails is a 422 with the column and span of the (first) problem.
impl From<SandboxError> for ApiError {
    fn from(error: SandboxError) -> ApiError {
        match error {
            SandboxError::NoResponse(_) => ApiError::not_found(error.to_string()),
            SandboxError::Compile(errors) => {
                let first = errors.errors.first();
                let mut api = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "compile_error",
                    errors
                        .errors
                        .iter()
                        .map(|e| e.message.clone())
                        .collect::<Vec<_>>()
                        .join("; "),
                );
                api.column = first.map(|e| e.column);
                api.span = first.map(|e| e.span);
                api
            }
            SandboxError::Eval(e) => {
                let mut api = ApiError::new(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "eval_error",
                    e.kind.to_string(),
                );
                api.column = Some(e.column);
                api.span = Some(e.span);
                api
            }
        }
    }
}

/// A device store error as the API answers it: an unknown device is a 404, an empty name a 400.
impl From<crate::devices::StoreError> for ApiError {
    fn from(error: crate::devices::StoreError) -> ApiError {
        use crate::devices::StoreError;
        match error {
            StoreError::UnknownDevice(_) => ApiError::not_found(error.to_string()),
            StoreError::EmptyName => ApiError::bad_request(error.to_string()),
            other => ApiError::internal(other.to_string()),
        }
    }
}

/// An engine error as the API answers it: an unknown profile or event is a 404.
impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> ApiError {
        match error {
            EngineError::UnknownProfile(name) => ApiError::unknown_profile(&name),
            EngineError::UnknownEvent(name) => ApiError::unknown_event(&name),
            other => ApiError::internal(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ApiError,
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        super::json(self.status, &Envelope { error: &self })
    }
}

/// A request the edge refused (foreign Host or Origin, no admin token or session).
#[derive(Debug)]
pub struct Refused(pub super::edge::Refusal);

impl warp::reject::Reject for Refused {}

/// Turns warp's rejections (unknown path, wrong method, bad JSON body, body too large) into the
/// API's error shape.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if let Some(Refused(refusal)) = rejection.find::<Refused>() {
        match refusal {
            Refusal::ForeignHost(host) => ApiError::new(
                StatusCode::MISDIRECTED_REQUEST,
                "foreign_host",
                format!(
                    "this Bellhop is not known as `{}`: add the name to web.allowed_hosts in plugin.toml if it is yours",
                    crate::expr::error::excerpt(host)
                ),
            ),
            Refusal::ForeignOrigin(_) => ApiError::new(
                StatusCode::FORBIDDEN,
                "cross_origin",
                "requests from another site's pages are refused",
            ),
            Refusal::NotAdmitted => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "unauthorized",
                "this Bellhop needs its admin token: send `Authorization: Bearer <token>` or sign in at /login",
            ),
            Refusal::SignInFirst => {
                let mut response =
                    warp::reply::with_status("", StatusCode::SEE_OTHER).into_response();
                response.headers_mut().insert(
                    "location",
                    warp::http::HeaderValue::from_static("/login"),
                );
                return Ok(response);
            }
        }
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::bad_request(format!("the request body is not the expected JSON: {e}"))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        )
    } else if rejection.find::<warp::reject::LengthRequired>().is_some() {
        ApiError::new(
            StatusCode::LENGTH_REQUIRED,
            "length_required",
            "send the body with a Content-Length header",
        )
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported_media_type",
            "send JSON with Content-Type: application/json",
        )
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        // A header that is not text (a byte beyond ASCII in Accept, Origin, a cookie, …).
        ApiError::bad_request(format!("a request header is malformed: {e}"))
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query: {e}"))
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
        )
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint")
    } else {
        tracing::warn!(rejection = ?rejection, "unhandled rejection");
        ApiError::internal("the request could not be handled")
    };
    Ok(error.into_response())
}
