//! Turning a profile and an action text into an HTTP request, sending it with the profile's
//! limits, and reading the response body within the size cap.

use std::time::Duration;

use futures_util::StreamExt;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};

use crate::expr::{EvalError, EvalErrorKind, Scope, Template, Value};
use crate::profile::{AuthSpec, BodySpec, Method, Profile, RequestSpec};

/// Characters left as they are when a `${…}` result is spliced into a URL: RFC 3986 unreserved.
const URL_SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RequestError {
    #[error("{what}: {error}")]
    Template { what: String, error: EvalError },
    #[error("the URL `{0}` is not valid: {1}")]
    BadUrl(String, String),
    #[error("header `{0}` has a value that cannot be sent")]
    BadHeader(String),
    #[error("{0}")]
    Transport(String),
    #[error("no answer within {0:?}")]
    Timeout(Duration),
    #[error("the response is larger than the profile's limit of {limit} bytes")]
    TooLarge { limit: u64 },
    #[error("the server redirected to another origin ({0}); not followed")]
    CrossOriginRedirect(String),
    #[error("the response is not UTF-8 text: invalid byte at offset {0} (a charset other than UTF-8 or Latin-1, or binary data)")]
    NotText(usize),
}

/// The error-trigger class of a failed exchange.
pub fn error_class(error: &RequestError) -> crate::event::ErrorClass {
    use crate::event::ErrorClass;
    match error {
        RequestError::Template { .. } | RequestError::BadUrl(..) | RequestError::BadHeader(_) => {
            ErrorClass::Expression
        }
        RequestError::TooLarge { .. } | RequestError::NotText(_) => ErrorClass::MalformedResponse,
        RequestError::Transport(_)
        | RequestError::Timeout(_)
        | RequestError::CrossOriginRedirect(_) => ErrorClass::Connection,
    }
}

/// A request ready to send. `display_url` is what records and errors show (no credentials).
pub struct PreparedRequest {
    pub method: Method,
    pub url: url::Url,
    pub display_url: String,
    pub headers: HeaderMap,
    pub body: Option<(String, String)>,
}

/// How an expression's value is written into the text of a request.
#[derive(Clone, Copy)]
enum Splice {
    /// As its text.
    Text,
    /// As its text, percent-encoded as a URL segment; except a `${…}` that opens the URL: it
    /// gives the scheme and host (Zoho's `${Token("api_domain")}/…`), which encoding would
    /// break. The URL is parsed and checked afterwards either way.
    UrlSegment,
    /// As its text, refusing line breaks (which would start another header).
    HeaderValue,
    /// As JSON: a JSON value where one goes, JSON-escaped text inside a JSON string.
    Json,
}

fn splice(how: Splice, value: &Value, json_string: bool) -> Result<String, EvalErrorKind> {
    match how {
        Splice::Text => Ok(value.to_text()),
        Splice::UrlSegment => Ok(utf8_percent_encode(&value.to_text(), URL_SEGMENT).to_string()),
        Splice::HeaderValue => {
            let text = value.to_text();
            if text.contains(['\r', '\n', '\0']) {
                Err(EvalErrorKind::Invalid(
                    "the value holds a line break (or NUL), which a header cannot carry".into(),
                ))
            } else {
                Ok(text)
            }
        }
        Splice::Json if json_string => {
            let quoted = serde_json::to_string(&value.to_text())
                .map_err(|e| EvalErrorKind::Invalid(e.to_string()))?;
            Ok(quoted[1..quoted.len() - 1].to_string())
        }
        Splice::Json => value.to_json_text(),
    }
}

fn render(
    template: &Template,
    scope: &Scope<'_>,
    what: &str,
    how: Splice,
) -> Result<Option<String>, RequestError> {
    let json_strings = match how {
        Splice::Json => template.json_string_contexts(),
        _ => Vec::new(),
    };
    let opens_with_expression = matches!(
        template.parts().first(),
        Some(crate::expr::TemplatePart::Expression(..))
    );
    template
        .render(scope, &|value, index| {
            let how = match how {
                Splice::UrlSegment if index == 0 && opens_with_expression => Splice::Text,
                other => other,
            };
            splice(
                how,
                value,
                json_strings.get(index).copied().unwrap_or(false),
            )
        })
        .map_err(|error| RequestError::Template {
            what: what.to_string(),
            error,
        })
}

/// Renders the request. `Ok(None)`: a template gave `null`, so nothing is sent.
/// `scope.input` is the action text.
pub fn prepare(
    profile: &Profile,
    spec: &RequestSpec,
    scope: &Scope<'_>,
) -> Result<Option<PreparedRequest>, RequestError> {
    let mut url = match &spec.fixed_url {
        Some(fixed) => fixed.clone(),
        None => {
            let url_splice = if spec.encode_url_segments {
                Splice::UrlSegment
            } else {
                Splice::Text
            };
            let Some(url_text) = render(&spec.url, scope, "url", url_splice)? else {
                return Ok(None);
            };
            let url = url::Url::parse(&url_text)
                .map_err(|e| RequestError::BadUrl(url_text.clone(), e.to_string()))?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(RequestError::BadUrl(url_text, "not http or https".into()));
            }
            url
        }
    };
    let display_url = url.as_str().to_string();
    let mut headers = HeaderMap::new();
    for (name, template) in &spec.headers {
        let Some(value) = render(
            template,
            scope,
            &format!("header `{name}`"),
            Splice::HeaderValue,
        )?
        else {
            return Ok(None);
        };
        let header = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| RequestError::BadHeader(name.clone()))?;
        let value =
            HeaderValue::from_str(&value).map_err(|_| RequestError::BadHeader(name.clone()))?;
        headers.insert(header, value);
    }
    let action_text = scope.input.text();
    let body = match &spec.body {
        Some(BodySpec::Json(template)) => render(template, scope, "body", Splice::Json)?
            .map(|b| ("application/json".to_string(), b)),
        Some(BodySpec::Raw {
            content_type,
            template,
        }) => render(template, scope, "body", Splice::Text)?.map(|b| (content_type.clone(), b)),
        Some(BodySpec::Form(fields)) => {
            let mut form = url::form_urlencoded::Serializer::new(String::new());
            for (name, template) in fields {
                let Some(value) = render(
                    template,
                    scope,
                    &format!("form field `{name}`"),
                    Splice::Text,
                )?
                else {
                    return Ok(None);
                };
                form.append_pair(name, &value);
            }
            Some((
                "application/x-www-form-urlencoded".to_string(),
                form.finish(),
            ))
        }
        // Without a body template, the action text is the body of a non-GET request, unless
        // the URL already carries it (the family: one place or the other, never both).
        None if spec.method != Method::Get
            && !spec.url_reads_input
            && !action_text.trim().is_empty() =>
        {
            let trimmed = action_text.trim_start();
            let content_type = if trimmed.starts_with('{') || trimmed.starts_with('[') {
                "application/json"
            } else {
                "text/plain; charset=utf-8"
            };
            Some((content_type.to_string(), action_text.to_string()))
        }
        None => None,
    };
    if let Some((content_type, _)) = &body {
        if !headers.contains_key(CONTENT_TYPE) {
            let value = HeaderValue::from_str(content_type)
                .map_err(|_| RequestError::BadHeader("Content-Type".into()))?;
            headers.insert(CONTENT_TYPE, value);
        }
    }
    apply_static_auth(&profile.auth, &mut url, &mut headers)?;
    Ok(Some(PreparedRequest {
        method: spec.method,
        url,
        display_url,
        headers,
        body,
    }))
}

fn apply_static_auth(
    auth: &AuthSpec,
    url: &mut url::Url,
    headers: &mut HeaderMap,
) -> Result<(), RequestError> {
    let sensitive = |value: String, name: &str| {
        HeaderValue::from_str(&value)
            .map(|mut v| {
                v.set_sensitive(true);
                v
            })
            .map_err(|_| RequestError::BadHeader(name.to_string()))
    };
    match auth {
        // OAuth 1.0a signs the finished request (its query and form body included).
        AuthSpec::None | AuthSpec::OAuth1(_) => {}
        // The token itself is placed after the origin check; the provider's fixed parameters
        // (Resideo's `apikey`) go on every call.
        AuthSpec::OAuth2(spec) => {
            if !spec.api_query.is_empty() {
                let mut query = url.query_pairs_mut();
                for (name, value) in &spec.api_query {
                    query.append_pair(name, value);
                }
            }
        }
        AuthSpec::Basic { username, password } => {
            use base64::Engine;
            let encoded = base64::engine::general_purpose::STANDARD
                .encode(format!("{username}:{}", password.expose()));
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(format!("Basic {encoded}"), "Authorization")?,
            );
        }
        AuthSpec::Bearer { token } => {
            headers.insert(
                reqwest::header::AUTHORIZATION,
                sensitive(format!("Bearer {}", token.expose()), "Authorization")?,
            );
        }
        AuthSpec::ApiKeyHeader { header, key } => {
            let name = HeaderName::from_bytes(header.as_bytes())
                .map_err(|_| RequestError::BadHeader(header.clone()))?;
            headers.insert(name, sensitive(key.expose().to_string(), header)?);
        }
        AuthSpec::ApiKeyQuery { parameter, key } => {
            url.query_pairs_mut().append_pair(parameter, key.expose());
        }
    }
    Ok(())
}

/// What came back.
#[derive(Clone)]
pub struct Response {
    pub status: u16,
    pub headers: HeaderMap,
    pub body: std::sync::Arc<str>,
}

pub async fn send(
    client: &reqwest::Client,
    request: PreparedRequest,
    timeout: Duration,
    limit: u64,
) -> Result<Response, RequestError> {
    // One deadline covers connecting, the headers and the whole body, so a body that drips
    // forever ends there too (one timer per exchange: reqwest's own would set one for the
    // request and another for the body).
    tokio::time::timeout(timeout, send_unbounded(client, request, limit))
        .await
        .unwrap_or(Err(RequestError::Timeout(timeout)))
}

/// Most room made for a body ahead of its bytes, whatever length it declares.
const RESERVE_AT_MOST: u64 = 1 << 20;

async fn send_unbounded(
    client: &reqwest::Client,
    request: PreparedRequest,
    limit: u64,
) -> Result<Response, RequestError> {
    let method = match request.method {
        Method::Get => reqwest::Method::GET,
        Method::Post => reqwest::Method::POST,
        Method::Put => reqwest::Method::PUT,
        Method::Patch => reqwest::Method::PATCH,
        Method::Delete => reqwest::Method::DELETE,
    };
    let origin = request.url.origin();
    let mut builder = client.request(method, request.url).headers(request.headers);
    if let Some((_, body)) = request.body {
        builder = builder.body(body);
    }
    let transport = |e: reqwest::Error| RequestError::Transport(crate::net::describe(&e));
    let response = builder.send().await.map_err(transport)?;
    if response.status().is_redirection() && response.url().origin() == origin {
        if let Some(target) = response
            .headers()
            .get(reqwest::header::LOCATION)
            .and_then(|l| l.to_str().ok())
            .and_then(|l| response.url().join(l).ok())
        {
            if target.origin() != origin {
                return Err(RequestError::CrossOriginRedirect(
                    target.origin().ascii_serialization(),
                ));
            }
        }
    }
    if response.content_length().is_some_and(|len| len > limit) {
        return Err(RequestError::TooLarge { limit });
    }
    let status = response.status().as_u16();
    let declared = response.content_length();
    // The head's parts are taken, not copied.
    let (head, body) = hyper::Response::<reqwest::Body>::from(response).into_parts();
    let headers = head.headers;
    let mut stream = http_body_util::BodyDataStream::new(body);
    // A body that comes in one piece (most answers) is decoded from it; only one in pieces is
    // gathered first.
    let mut first: Option<bytes::Bytes> = None;
    let mut gathered = Vec::new();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(transport)?;
        let held = first.as_ref().map_or(0, bytes::Bytes::len) + gathered.len();
        if held as u64 + chunk.len() as u64 > limit {
            return Err(RequestError::TooLarge { limit });
        }
        if first.is_none() && gathered.is_empty() {
            first = Some(chunk);
            continue;
        }
        if let Some(first) = first.take() {
            // Room for the declared length (already within `limit`; bounded all the same: a
            // server may declare more than it sends).
            let room = declared.unwrap_or(0).min(RESERVE_AT_MOST);
            gathered.reserve(
                usize::try_from(room)
                    .unwrap_or(0)
                    .max(first.len() + chunk.len()),
            );
            gathered.extend_from_slice(&first);
        }
        gathered.extend_from_slice(&chunk);
    }
    let body = match &first {
        Some(only) => decode_text(only, &headers)?,
        None => decode_text(&gathered, &headers)?,
    };
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// The body as text: UTF-8 (what JSON is), or Latin-1 when the response says so. Anything else
/// is an error naming where the text breaks, never silently replaced characters.
fn decode_text(bytes: &[u8], headers: &HeaderMap) -> Result<std::sync::Arc<str>, RequestError> {
    let latin1 = headers
        .get(CONTENT_TYPE)
        .map(|v| v.as_bytes())
        .is_some_and(|v| {
            [&b"charset=iso-8859-1"[..], b"charset=latin1"]
                .iter()
                .any(|charset| {
                    v.windows(charset.len())
                        .any(|w| w.eq_ignore_ascii_case(charset))
                })
        });
    if latin1 {
        return Ok(bytes
            .iter()
            .map(|b| char::from(*b))
            .collect::<String>()
            .into());
    }
    std::str::from_utf8(bytes)
        .map(Into::into)
        .map_err(|e| RequestError::NotText(e.valid_up_to()))
}

/// The redirect policy: follow at most 10 redirects, and only within the first URL's origin, so
/// credentials never travel to another host.
pub fn same_origin_redirects() -> reqwest::redirect::Policy {
    reqwest::redirect::Policy::custom(|attempt| {
        let first_origin = attempt.previous().first().map(|u| u.origin());
        if attempt.previous().len() > 10 {
            attempt.error("too many redirects")
        } else if first_origin.is_some_and(|o| o != attempt.url().origin()) {
            attempt.stop()
        } else {
            attempt.follow()
        }
    })
}
