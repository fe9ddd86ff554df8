//! Receiving profiles on the engine's side: what a sensor (or any system) sends to a listening
//! profile's path, or an MQTT message to an MQTT profile, becomes its `input` — mapped onto devices like a response, recorded like a run, kept
//! as the profile's last input and offered to the input triggers through the bus — and the
//! profile's reply is rendered. How the call arrives (HTTP today) is the adapter's business.

use crate::sync::ReadWriteLocked;
use std::sync::Arc;
use std::time::Instant;

use super::running::DetachOnDrop;
use super::{request, Engine, ExchangeRecord, HubEnvironment, RunRecord};
use crate::expr::{Document, Scope};
use crate::profile::{Method, Profile};

/// One call to a listening profile.
pub struct IncomingCall {
    pub method: Method,
    /// The token the caller sent, if any.
    pub token: Option<String>,
    /// The query string (GET) or the body (POST, PUT).
    pub input: Arc<str>,
    /// The caller's headers (`Header("…")` in the profile's expressions reads them).
    pub headers: reqwest::header::HeaderMap,
}

/// A reply template that failed on what the caller sent (the call was still received).
#[derive(Debug, Clone, thiserror::Error)]
#[error("the reply template failed: {0}")]
pub struct ReplyError(pub crate::expr::EvalError);

/// What became of a call.
pub struct Received {
    pub record: Arc<RunRecord>,
    /// The rendered reply, or why it could not be rendered.
    pub reply: Result<String, ReplyError>,
    pub content_type: String,
}

#[derive(Debug, thiserror::Error)]
pub enum ReceiveError {
    #[error("this listening path needs its token")]
    Unauthorized,
    #[error("profile `{0}` does not listen for calls")]
    NotListening(String),
}

/// The pseudo-header a received MQTT message's topic travels in (`Topic()` reads it).
pub(super) const TOPIC_HEADER: &str = "x-bellhop-mqtt-topic";

impl Engine {
    /// What came in to a receiving profile (a listening path's call, an MQTT message): mapped
    /// onto devices like a response, kept as the profile's last input and recorded (so input
    /// triggers see it), even when the caller stops waiting.
    async fn take_input(
        self: &Arc<Self>,
        profile: Arc<Profile>,
        method: Method,
        label: String,
        input: Arc<str>,
        headers: reqwest::header::HeaderMap,
    ) -> Arc<RunRecord> {
        let engine = self.clone();
        DetachOnDrop::new(async move {
            let started = Instant::now();
            let mut record = RunRecord::starting(&profile.name, "");
            record.exchanges.push(ExchangeRecord {
                method,
                url: label,
                status: Some(200),
                duration_ms: 0,
                response_bytes: input.len(),
            });
            engine.keep_last_response(&profile.name, input.clone());
            let received = request::Response {
                status: 200,
                headers,
                body: input.clone(),
            };
            engine
                .map_response(&profile, received, input, None, &mut record)
                .await;
            record.ok = record.errors.is_empty();
            record.duration_ms = started.elapsed().as_millis() as u64;
            let record = Arc::new(record);
            engine.remember(&profile, record.clone());
            record
        })
        .await
    }

    /// A message for an MQTT profile: its payload is `input`, its topic `Topic()`.
    pub async fn receive_message(
        self: &Arc<Self>,
        profile: Arc<Profile>,
        topic: &str,
        payload: Arc<str>,
    ) -> Arc<RunRecord> {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Ok(value) = reqwest::header::HeaderValue::from_str(topic) {
            headers.insert(TOPIC_HEADER, value);
        }
        self.take_input(
            profile,
            Method::Post,
            format!("(mqtt) {topic}"),
            payload,
            headers,
        )
        .await
    }

    /// Where MQTT profiles' actions are published from now on (the MQTT bridge calls this).
    pub fn set_outbox(&self, outbox: Arc<dyn super::MessageOutbox>) {
        *self.outbox.write_locked() = Some(outbox);
    }

    /// The profile listening at `path` (under the listen base), if any.
    pub fn listener(&self, path: &str) -> Option<Arc<Profile>> {
        self.profiles().listening_at(path).cloned()
    }

    /// Takes a call to a listening profile. A wrong or missing token (when the profile has one)
    /// is refused before anything happens; otherwise the call is mapped and recorded even if
    /// the caller goes away meanwhile.
    pub async fn receive(
        self: &Arc<Self>,
        profile: Arc<Profile>,
        call: IncomingCall,
    ) -> Result<Received, ReceiveError> {
        let Some(listen) = &profile.listen else {
            return Err(ReceiveError::NotListening(profile.name.clone()));
        };
        if let Some(expected) = &listen.token {
            use subtle::ConstantTimeEq;
            let given = call.token.as_deref().unwrap_or_default();
            if !bool::from(expected.expose().as_bytes().ct_eq(given.as_bytes())) {
                return Err(ReceiveError::Unauthorized);
            }
        }
        let input = call.input.clone();
        let label = format!("(received) {}", listen.path);
        let record = self
            .take_input(
                profile.clone(),
                call.method,
                label,
                call.input,
                call.headers,
            )
            .await;
        let document = Document::new(input, Default::default());
        let environment = HubEnvironment::new(&self.hub);
        let reply = match listen
            .reply
            .render_text(&Scope::new(&document, &environment))
        {
            Ok(text) => Ok(text.unwrap_or_default()),
            Err(error) => Err(ReplyError(error)),
        };
        Ok(Received {
            record,
            reply,
            content_type: listen.reply_content_type.clone(),
        })
    }
}
