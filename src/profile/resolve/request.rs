//! Resolving `[request]`: the method, the URL template (and its shape), headers, the body.

use super::*;

pub(super) fn resolve_request(raw: &RawRequest, c: &mut Collector<'_>) -> Option<RequestSpec> {
    let method = match raw.method.to_ascii_uppercase().as_str() {
        "GET" => Some(Method::Get),
        "POST" => Some(Method::Post),
        "PUT" => Some(Method::Put),
        "PATCH" => Some(Method::Patch),
        "DELETE" => Some(Method::Delete),
        other => {
            c.error(
                "request.method",
                format!("method `{other}` is not one of GET, POST, PUT, PATCH, DELETE"),
            );
            None
        }
    };
    let url = template(c, "request.url", &raw.url);
    if let Some(url) = &url {
        check_url_shape(url, c);
    }
    let mut headers = Vec::new();
    for (name, value) in &raw.headers {
        let key = format!("request.headers.{name}");
        if reqwest::header::HeaderName::from_bytes(name.as_bytes()).is_err() {
            c.error(&key, format!("`{name}` is not a valid header name"));
            continue;
        }
        if let Some(t) = template(c, &key, value) {
            headers.push((name.clone(), t));
        }
    }
    let body = raw.body.as_ref().and_then(|b| resolve_body(b, c));
    let timeout = match raw.timeout_secs {
        None => Some(DEFAULT_TIMEOUT),
        Some(secs) if secs > 0.0 && secs <= 3600.0 => Some(Duration::from_secs_f64(secs)),
        Some(secs) => {
            c.error(
                "request.timeout_secs",
                format!("timeout_secs must be above 0 and at most 3600, not {secs}"),
            );
            None
        }
    };
    let max_response_bytes = raw.max_response_bytes.unwrap_or(DEFAULT_MAX_RESPONSE_BYTES);
    if max_response_bytes == 0 {
        c.error(
            "request.max_response_bytes",
            "max_response_bytes must be above 0",
        );
    }
    if !raw.verify_tls {
        c.warning(
            "request.verify_tls",
            "TLS certificates are not verified for this profile",
        );
    }
    let url = url?;
    let fixed_url = match url.parts() {
        [crate::expr::TemplatePart::Text(text)] => url::Url::parse(text)
            .ok()
            .filter(|u| matches!(u.scheme(), "http" | "https")),
        _ => None,
    };
    Some(RequestSpec {
        method: method?,
        url_reads_input: url.reads_input(),
        fixed_url,
        url,
        encode_url_segments: !raw.raw_url,
        headers,
        body,
        timeout: timeout?,
        max_response_bytes,
        verify_tls: raw.verify_tls,
    })
}

/// A URL template must be an absolute http(s) URL once its segments are filled in. A `${…}`
/// that opens the URL gives its scheme and host (`${Token("api_domain")}/v2/users`): the rest
/// is checked under a sample origin then, and the whole URL again when it is sent.
pub(super) fn check_url_shape(url: &Template, c: &mut Collector<'_>) {
    let sample: String = url
        .parts()
        .iter()
        .enumerate()
        .map(|(i, p)| match p {
            crate::expr::TemplatePart::Text(t) => t.as_str(),
            crate::expr::TemplatePart::Expression(..) if i == 0 => "https://origin.invalid",
            crate::expr::TemplatePart::Expression(..) => "x",
        })
        .collect();
    match url::Url::parse(&sample) {
        Ok(parsed) if parsed.scheme() == "http" || parsed.scheme() == "https" => {
            if parsed.host_str().is_none_or(str::is_empty) {
                c.error("request.url", format!("`{}` has no host", url.source()));
            }
        }
        Ok(parsed) => c.error(
            "request.url",
            format!("scheme `{}` is not http or https", parsed.scheme()),
        ),
        Err(e) => c.error(
            "request.url",
            format!("`{}` is not a valid URL: {e}", url.source()),
        ),
    }
}

pub(super) fn resolve_body(raw: &RawBody, c: &mut Collector<'_>) -> Option<BodySpec> {
    match raw.kind.as_str() {
        "json" | "raw" => {
            let Some(source) = &raw.template else {
                c.error(
                    "request.body.template",
                    format!("a `{}` body needs `template`", raw.kind),
                );
                return None;
            };
            let compiled = template(c, "request.body.template", source)?;
            if raw.kind == "json" {
                Some(BodySpec::Json(compiled))
            } else {
                Some(BodySpec::Raw {
                    content_type: raw
                        .content_type
                        .clone()
                        .unwrap_or_else(|| "text/plain; charset=utf-8".into()),
                    template: compiled,
                })
            }
        }
        "form" => {
            let mut fields = Vec::new();
            for (name, value) in &raw.fields {
                let key = format!("request.body.fields.{name}");
                if let Some(t) = template(c, &key, value) {
                    fields.push((name.clone(), t));
                }
            }
            Some(BodySpec::Form(fields))
        }
        other => {
            c.error(
                "request.body.kind",
                format!("body kind `{other}` is not one of json, form, raw"),
            );
            None
        }
    }
}
