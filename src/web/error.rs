//! The one JSON error shape of the API, `{"error": {"code", "message", "column"?, "diagnostics"?}}`,
//! and the conversion of warp's own rejections into it.

use std::convert::Infallible;

use serde::Serialize;
use warp::http::StatusCode;
use warp::reply::Response;
use warp::Reply;

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
}

#[derive(Serialize)]
struct Envelope<'a> {
    error: &'a ApiError,
}

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let status = self.status;
        warp::reply::with_status(warp::reply::json(&Envelope { error: &self }), status)
            .into_response()
    }
}

/// A state-changing request from another origin (see `same_origin_writes`).
#[derive(Debug)]
pub struct CrossOrigin;

impl warp::reject::Reject for CrossOrigin {}

/// A request without the admin token (see `admission`).
#[derive(Debug)]
pub struct NotAdmitted;

impl warp::reject::Reject for NotAdmitted {}

/// Turns warp's rejections (unknown path, wrong method, bad JSON body, body too large) into the
/// API's error shape.
pub async fn recover(rejection: warp::Rejection) -> Result<Response, Infallible> {
    let error = if rejection.find::<NotAdmitted>().is_some() {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "this Bellhop needs its admin token: send `Authorization: Bearer <token>` or sign in at /login",
        )
    } else if rejection.find::<CrossOrigin>().is_some() {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_origin",
            "requests that change something must come from Bellhop's own pages",
        )
    } else if rejection.is_not_found() {
        ApiError::not_found("no such endpoint")
    } else if let Some(e) = rejection.find::<warp::filters::body::BodyDeserializeError>() {
        ApiError::bad_request(format!("the request body is not the expected JSON: {e}"))
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "too_large",
            "the request body is too large",
        )
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method_not_allowed",
            "method not allowed here",
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
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::bad_request(format!("invalid query: {e}"))
    } else {
        tracing::warn!(rejection = ?rejection, "unhandled rejection");
        ApiError::internal("the request could not be handled")
    };
    Ok(error.into_response())
}
