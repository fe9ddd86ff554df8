//! Running an action: the text cut at `<wait N>`, each piece rendered, authenticated, sent (HTTP
//! or MQTT), answered, mapped onto devices and recorded; a run that outlives its caller.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::*;

/// How an action's pieces leave Bellhop.
#[derive(Clone, Copy)]
enum Sending<'a> {
    Http(&'a RequestSpec),
    Mqtt(&'a Template, &'a crate::profile::MqttSpec),
}

/// `<wait N>` in an action text: a fixed pattern, compiled once.
#[allow(clippy::expect_used)] // a literal, compiled by every test that splits a text
static WAIT: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"(?i)<\s*wait\s*(\d{1,9})\s*>").expect("the <wait N> pattern compiles")
});

/// Splits an action text on `<wait N>` (N in milliseconds) into the texts to send and the pause
/// before each.
pub(crate) fn split_waits(text: &str) -> Vec<(Duration, &str)> {
    if !text.contains('<') {
        return vec![(Duration::ZERO, text)];
    }
    let pattern = &*WAIT;
    let mut pieces = Vec::new();
    let mut pause = Duration::ZERO;
    let mut last = 0;
    for captures in pattern.captures_iter(text) {
        let (Some(whole), Some(millis)) = (captures.get(0), captures.get(1)) else {
            continue;
        };
        pieces.push((pause, &text[last..whole.start()]));
        pause = Duration::from_millis(millis.as_str().parse().unwrap_or(0));
        last = whole.end();
    }
    pieces.push((pause, &text[last..]));
    pieces
}

/// A future polled in place by its caller (no task, no hand-off between threads) that, when the
/// caller drops it before it finished, goes on to the end on a task of its own.
pub(super) struct DetachOnDrop<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> {
    inner: Option<std::pin::Pin<Box<F>>>,
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> DetachOnDrop<F> {
    pub(super) fn new(future: F) -> Self {
        DetachOnDrop {
            inner: Some(Box::pin(future)),
        }
    }
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> std::future::Future
    for DetachOnDrop<F>
{
    type Output = Arc<RunRecord>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        context: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Arc<RunRecord>> {
        let Some(inner) = self.inner.as_mut() else {
            return std::task::Poll::Pending;
        };
        let outcome = inner.as_mut().poll(context);
        if outcome.is_ready() {
            self.inner = None;
        }
        outcome
    }
}

impl<F: std::future::Future<Output = Arc<RunRecord>> + Send + 'static> Drop for DetachOnDrop<F> {
    fn drop(&mut self) {
        if let (Some(unfinished), Ok(runtime)) =
            (self.inner.take(), tokio::runtime::Handle::try_current())
        {
            runtime.spawn(unfinished);
        }
    }
}

impl Engine {
    /// Runs an action. Every failure ends up in the record; only an unknown profile is an `Err`.
    /// A started run completes and is recorded even when the caller stops waiting for it (a
    /// client that disconnects): it runs on its own task.
    pub async fn run(
        self: &Arc<Self>,
        profile_name: &str,
        action_text: &str,
    ) -> Result<Arc<RunRecord>, EngineError> {
        let profile = self
            .profiles()
            .get(profile_name)
            .cloned()
            .ok_or_else(|| EngineError::UnknownProfile(profile_name.to_string()))?;
        let engine = self.clone();
        let action_text = action_text.to_string();
        Ok(DetachOnDrop::new(async move { engine.run_to_end(profile, &action_text).await }).await)
    }

    async fn run_to_end(
        self: &Arc<Self>,
        profile: Arc<Profile>,
        action_text: &str,
    ) -> Arc<RunRecord> {
        let started = Instant::now();
        let mut record = RunRecord::starting(&profile.name, action_text);
        let pieces = split_waits(action_text);
        let publish = profile
            .mqtt
            .as_ref()
            .and_then(|mqtt| Some((mqtt.publish.as_ref()?, mqtt)));
        let sending = match (&profile.request, publish) {
            (Some(spec), _) => Sending::Http(spec),
            (None, Some((topic, mqtt))) => Sending::Mqtt(topic, mqtt),
            (None, None) => {
                record.ok = false;
                record.errors.push(RunError {
                    stage: RunStage::Action,
                    class: None,
                    message: format!(
                        "profile `{}` only receives (it listens, or subscribes without `publish`): it has no action to run",
                        profile.name
                    ),
                    column: None,
                });
                let record = Arc::new(record);
                self.remember(&profile, record.clone());
                return record;
            }
        };
        if let Some(problem) = self.beyond_limits(&pieces) {
            record.errors.push(RunError {
                stage: RunStage::Action,
                class: Some(ErrorClass::Expression),
                message: problem,
                column: None,
            });
        } else {
            for (pause, piece) in pieces {
                if !pause.is_zero() {
                    tokio::time::sleep(pause).await;
                }
                match sending {
                    Sending::Http(spec) => self.run_piece(&profile, spec, piece, &mut record).await,
                    Sending::Mqtt(topic, mqtt) => {
                        self.publish_piece(&profile, topic, mqtt, piece, &mut record)
                    }
                }
                if !record.errors.is_empty() {
                    break;
                }
            }
        }
        record.ok = record.errors.is_empty();
        record.duration_ms = started.elapsed().as_millis() as u64;
        let record = Arc::new(record);
        self.remember(&profile, record.clone());
        record
    }

    /// Why an action text split into `pieces` may not run at all (nothing is sent then).
    fn beyond_limits(&self, pieces: &[(Duration, &str)]) -> Option<String> {
        if pieces.len() > self.limits.max_action_pieces {
            return Some(format!(
                "the action text would send {} requests (pieces between <wait>s), over the limit of {}: nothing was sent",
                pieces.len(),
                self.limits.max_action_pieces
            ));
        }
        pieces
            .iter()
            .find(|(pause, _)| *pause > self.limits.max_wait)
            .map(|(pause, _)| {
                format!(
                    "<wait {}> is longer than the limit of {} s: nothing was sent",
                    pause.as_millis(),
                    self.limits.max_wait.as_secs()
                )
            })
    }

    /// Renders one piece of an action text (itself a template: `position=${val12}`) against the
    /// hub. `None`: nothing is to be sent — the record says why (an error, or `skipped`).
    fn action_text(&self, piece: &str, record: &mut RunRecord) -> Option<String> {
        // Plain text (no `$`, no `\` escape) is its own rendering.
        if !piece.contains(['$', '\\']) {
            return Some(piece.to_string());
        }
        let env = HubEnvironment::new(&self.hub);
        // The action text is itself a template (`position=${val12}`).
        let action_template = match Template::compile(piece) {
            Ok(t) => t,
            Err(errors) => {
                for error in errors.errors {
                    record.errors.push(RunError {
                        stage: RunStage::Action,
                        class: Some(ErrorClass::Expression),
                        message: format!("action text: {}", error.message),
                        column: Some(error.column),
                    });
                }
                return None;
            }
        };
        let nothing = Document::new("", Default::default());
        let text = match action_template.render_text(&Scope::new(&nothing, &env)) {
            Ok(Some(text)) => text,
            Ok(None) => {
                record.skipped = true;
                return None;
            }
            Err(error) => {
                record.errors.push(RunError {
                    stage: RunStage::Action,
                    class: Some(ErrorClass::Expression),
                    message: format!("action text: {}", error.kind),
                    column: Some(error.column),
                });
                return None;
            }
        };
        Some(text)
    }

    /// Publishes one piece of an MQTT profile's action through the outbox (the MQTT bridge).
    fn publish_piece(
        &self,
        profile: &Profile,
        topic: &Template,
        mqtt: &crate::profile::MqttSpec,
        piece: &str,
        record: &mut RunRecord,
    ) {
        let Some(text) = self.action_text(piece, record) else {
            return;
        };
        let env = HubEnvironment::new(&self.hub);
        let input = Document::new(text.as_str(), profile.request_plan.clone());
        let topic = match topic.render_text(&Scope::new(&input, &env)) {
            Ok(Some(topic)) if !topic.is_empty() && !topic.contains(['+', '#', '\0']) => topic,
            Ok(None) => {
                record.skipped = true;
                return;
            }
            Ok(Some(topic)) => {
                record.errors.push(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: format!("`{topic}` is not a topic to publish to"),
                    column: None,
                });
                return;
            }
            Err(error) => {
                record.errors.push(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: format!("mqtt.publish: {}", error.kind),
                    column: Some(error.column),
                });
                return;
            }
        };
        let outbox = self.outbox.read_locked().clone();
        let sent = match outbox {
            Some(outbox) => outbox.publish(&topic, &text, mqtt.qos, mqtt.retain),
            None => Err(OutboxError::NoBridge),
        };
        record.exchanges.push(ExchangeRecord {
            method: profile::Method::Post,
            url: format!("(mqtt) {topic}"),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
        });
        if let Err(error) = sent {
            record.errors.push(RunError {
                stage: RunStage::Request,
                class: Some(ErrorClass::Connection),
                message: error.to_string(),
                column: None,
            });
        }
    }

    async fn run_piece(
        &self,
        profile: &Arc<Profile>,
        spec: &RequestSpec,
        piece: &str,
        record: &mut RunRecord,
    ) {
        let Some(text) = self.action_text(piece, record) else {
            return;
        };
        let mut env = HubEnvironment::new(&self.hub);
        env.server_url = self.server_url.get().map(String::as_str);
        if let (
            crate::profile::AuthSpec::OAuth2(_) | crate::profile::AuthSpec::OAuth1(_),
            Some(authorizer),
        ) = (&profile.auth, &self.authorizer)
        {
            env.token_fields = authorizer.token_fields(profile).await;
        }
        let action_input = Document::new(text.as_str(), profile.request_plan.clone());
        let scope = Scope::new(&action_input, &env);
        // The identity (issue time) of a token the API refused.
        let mut rejected: Option<i64> = None;
        // At most two exchanges: the second only to replay once with a refreshed token.
        let (response, mut exchange) = loop {
            let (result, exchange, token) =
                match self.exchange(profile, spec, &scope, rejected).await {
                    Ok(Some(sent)) => sent,
                    Ok(None) => {
                        record.skipped = true;
                        return;
                    }
                    Err(error) => {
                        record.errors.push(error);
                        return;
                    }
                };
            match (result, token) {
                (Ok(response), Some(token))
                    if rejected.is_none()
                        && (reauthorize_on(profile).contains(&response.status)
                            || self.answer_says_expired(profile, &response).await) =>
                {
                    let mut replaced = exchange;
                    replaced.status = Some(response.status);
                    record.exchanges.push(replaced);
                    rejected = Some(token);
                }
                (Ok(response), _) => break (response, exchange),
                (Err(error), _) => {
                    record.exchanges.push(exchange);
                    record.errors.push(RunError {
                        stage: RunStage::Request,
                        class: Some(request::error_class(&error)),
                        message: error.to_string(),
                        column: None,
                    });
                    return;
                }
            }
        };
        exchange.status = Some(response.status);
        exchange.response_bytes = response.body.len();
        record.exchanges.push(exchange);
        let body = response.body.clone();
        self.keep_last_response(&profile.name, body.clone());
        if !(200..300).contains(&response.status) {
            record.errors.push(RunError {
                stage: RunStage::Response,
                class: Some(ErrorClass::HttpStatus),
                message: format!(
                    "the API answered HTTP {}{}",
                    response.status,
                    body_hint(&response.body)
                ),
                column: None,
            });
            return;
        }
        self.map_response(profile, response, body, env.token_fields.clone(), record)
            .await;
    }

    /// Whether an API answer means "token expired" by the profile's `expired_when` expression
    /// (a provider that says so inside an HTTP 200). An expression that fails says no: the
    /// answer then goes to the mapping, which reports what it could not read.
    async fn answer_says_expired(
        &self,
        profile: &Arc<Profile>,
        response: &request::Response,
    ) -> bool {
        let crate::profile::AuthSpec::OAuth2(spec) = &profile.auth else {
            return false;
        };
        let Some(expression) = spec.expired_when.clone() else {
            return false;
        };
        fn judge(
            hub: &DeviceHub,
            expression: &crate::expr::Expression,
            response: &request::Response,
        ) -> bool {
            let env = HubEnvironment {
                hub,
                response: Some(response),
                token_fields: None,
                server_url: None,
            };
            let document = Document::new(response.body.clone(), expression.plan());
            expression
                .evaluate(&Scope::new(&document, &env))
                .is_ok_and(|value| value.is_truthy())
        }
        if response.body.len() > INLINE_MAPPING_BYTES {
            let (hub, response) = (self.hub.clone(), response.clone());
            tokio::task::spawn_blocking(move || judge(&hub, &expression, &response))
                .await
                .unwrap_or(false)
        } else {
            judge(&self.hub, &expression, response)
        }
    }

    /// Renders, authenticates and sends one request. `Ok(None)`: a template gave `null`.
    /// Returns the outcome, its record and the identity of the OAuth2 token used (if any).
    async fn exchange(
        &self,
        profile: &Profile,
        spec: &RequestSpec,
        scope: &Scope<'_>,
        rejected: Option<i64>,
    ) -> Result<
        Option<(
            Result<request::Response, request::RequestError>,
            ExchangeRecord,
            Option<i64>,
        )>,
        RunError,
    > {
        let mut prepared = match request::prepare(profile, spec, scope) {
            Ok(Some(prepared)) => prepared,
            Ok(None) => return Ok(None),
            Err(error) => {
                let column = match &error {
                    request::RequestError::Template { error, .. } => Some(error.column),
                    _ => None,
                };
                return Err(RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Expression),
                    message: error.to_string(),
                    column,
                });
            }
        };
        let token = match &profile.auth {
            crate::profile::AuthSpec::OAuth2(spec) => {
                let authorizer = self.authorizer.as_ref().ok_or_else(|| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: "OAuth2 is not available in this process".into(),
                    column: None,
                })?;
                let refused = |e: authorization::AuthorizationError| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: e.to_string(),
                    column: None,
                };
                // The hot path: a ready header, no future, no copy of the token.
                let cached = if rejected.is_none() {
                    authorizer
                        .fresh_header(&profile.name, &prepared.url)
                        .map_err(refused)?
                } else {
                    None
                };
                let (value, issued) = match cached {
                    Some(ready) => ready,
                    None => {
                        // Boxed: getting a token (a refresh, a wait for one) is a large future
                        // that most runs never start, and every run's own future would be as
                        // large as it.
                        let (token, issued) =
                            Box::pin(authorizer.access_token(profile, &prepared.url, rejected))
                                .await
                                .map_err(refused)?;
                        let value =
                            authorization::token_value(spec, &token).ok_or_else(|| RunError {
                                stage: RunStage::Request,
                                class: Some(ErrorClass::Authorization),
                                message: "the access token cannot be sent in a header".into(),
                                column: None,
                            })?;
                        (value, issued)
                    }
                };
                authorization::place_token(spec, value, &mut prepared.url, &mut prepared.headers);
                Some(issued)
            }
            crate::profile::AuthSpec::OAuth1(_) => {
                let authorizer = self.authorizer.as_ref().ok_or_else(|| RunError {
                    stage: RunStage::Request,
                    class: Some(ErrorClass::Authorization),
                    message: "OAuth is not available in this process".into(),
                    column: None,
                })?;
                // A form body's fields are signed too (RFC 5849 §3.4.1.3.1).
                let form_body = prepared
                    .body
                    .as_ref()
                    .filter(|(content_type, _)| {
                        content_type.starts_with("application/x-www-form-urlencoded")
                    })
                    .map(|(_, body)| body.as_str());
                let header = authorizer
                    .oauth1_header(profile, prepared.method.as_str(), &prepared.url, form_body)
                    .await
                    .map_err(|e| RunError {
                        stage: RunStage::Request,
                        class: Some(ErrorClass::Authorization),
                        message: e.to_string(),
                        column: None,
                    })?;
                prepared
                    .headers
                    .insert(reqwest::header::AUTHORIZATION, header);
                None
            }
            _ => None,
        };
        let mut exchange = ExchangeRecord {
            method: prepared.method,
            url: prepared.display_url.clone(),
            status: None,
            duration_ms: 0,
            response_bytes: 0,
        };
        let client = if spec.verify_tls {
            &self.client
        } else {
            &self.insecure_client
        };
        let sent = Instant::now();
        let result = request::send(client, prepared, spec.timeout, spec.max_response_bytes).await;
        exchange.duration_ms = sent.elapsed().as_millis() as u64;
        Ok(Some((result, exchange, token)))
    }

    pub(super) async fn map_response(
        &self,
        profile: &Arc<Profile>,
        response: request::Response,
        body: Arc<str>,
        token_fields: Option<Arc<serde_json::Map<String, serde_json::Value>>>,
        record: &mut RunRecord,
    ) {
        let max_devices = self.limits.max_devices_per_run;
        // A large body (or a JSONPath over the whole tree) can take a while to evaluate: off the
        // async workers then, so one run never stalls the others or the API.
        let heavy = response_is_heavy(profile, body.len());
        let evaluate = {
            let (hub, profile) = (self.hub.clone(), profile.clone());
            move || {
                let env = HubEnvironment {
                    hub: &hub,
                    response: Some(&response),
                    token_fields,
                    server_url: None,
                };
                let document = Document::new(body, profile.response_plan.clone());
                mapping::evaluate(
                    &profile.name,
                    &profile.mapping,
                    &Scope::new(&document, &env),
                    max_devices,
                )
            }
        };
        let outcome = if heavy {
            match tokio::task::spawn_blocking(evaluate).await {
                Ok(outcome) => outcome,
                Err(error) => {
                    record.errors.push(RunError {
                        stage: RunStage::Devices,
                        class: Some(ErrorClass::Expression),
                        message: format!("evaluating the devices failed: {error}"),
                        column: None,
                    });
                    return;
                }
            }
        } else {
            evaluate()
        };
        for failure in outcome.errors {
            record.errors.push(RunError {
                stage: RunStage::Devices,
                class: Some(mapping_error_class(&failure.error.kind)),
                message: format!("{}: {}", failure.target, failure.error.kind),
                column: Some(failure.error.column),
            });
        }
        if outcome.updates.is_empty() {
            return;
        }
        let creation = if profile.mapping.locked {
            Creation::Forbidden
        } else {
            Creation::Allowed
        };
        match self.hub.apply(&outcome.updates, creation).await {
            Ok(changes) => record.changes.extend(changes),
            Err(error) => record.errors.push(RunError {
                stage: RunStage::Devices,
                class: None,
                message: error.to_string(),
                column: None,
            }),
        }
    }
}

/// Bodies up to this size are mapped on the async worker that received them.
const INLINE_MAPPING_BYTES: usize = 64 * 1024;

/// Whether mapping a response may take long enough to belong on the blocking pool.
fn response_is_heavy(profile: &Profile, body_len: usize) -> bool {
    body_len > INLINE_MAPPING_BYTES
        || (profile.response_plan.needs_whole_tree && body_len > INLINE_MAPPING_BYTES / 16)
}

/// A failed device expression is malformed input when the response was not the JSON it reads.
fn mapping_error_class(kind: &crate::expr::EvalErrorKind) -> ErrorClass {
    match kind {
        crate::expr::EvalErrorKind::InvalidJson(_) => ErrorClass::MalformedResponse,
        _ => ErrorClass::Expression,
    }
}

fn reauthorize_on(profile: &Profile) -> &[u16] {
    match &profile.auth {
        crate::profile::AuthSpec::OAuth2(spec) => &spec.reauthorize_on,
        _ => &[],
    }
}

/// A short, safe hint of what an error response said (its first line, shortened).
fn body_hint(body: &str) -> String {
    let first = body
        .lines()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("");
    if first.is_empty() {
        String::new()
    } else {
        format!(": {}", crate::expr::error::excerpt(first))
    }
}
