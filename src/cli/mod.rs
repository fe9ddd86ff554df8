//! The CLI's commands (the composition root, `main.rs`, builds what they use): each runs here over an engine this process builds, or through the running `bellhop serve` that owns the store.

mod actions;
mod inspect;
mod oauth;

use actions::print_run;
pub(crate) use actions::{fire, run};
pub(crate) use inspect::{check, devices, eval, list_events, runs};
pub(crate) use oauth::{authorize, discover, list_providers};

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};

use bellhop::devices::{DeviceHub, StoreError};
use bellhop::engine::automation::{EventOutcome, EventRun};
use bellhop::engine::{Engine, HubEnvironment, RunRecord};
use bellhop::expr::{self, Document, Expression, Scope};
use bellhop::settings::Settings;

use crate::build_engine;
use crate::load_folders;
use crate::profile_source;
use crate::read_hub;
use crate::vault_for_reading;

/// Where a CLI command's work happens: here, over an engine this process built, or through the
/// `bellhop serve` that owns the store (the one "here or through the server" decision).
pub(crate) enum Here {
    Local(Arc<Engine>),
    Server,
}

/// Builds the engine here, or says the running server owns the store.
pub(crate) fn here_or_server(settings: &Settings) -> Result<Here> {
    match build_engine(settings) {
        Ok(engine) => Ok(Here::Local(engine)),
        Err(error)
            if matches!(
                error.downcast_ref::<StoreError>(),
                Some(StoreError::Busy { .. })
            ) =>
        {
            tracing::info!("a running `bellhop serve` owns the store: going through its API");
            Ok(Here::Server)
        }
        Err(error) => Err(error),
    }
}

pub(crate) async fn call_server_get(settings: &Settings, path: &str) -> Result<serde_json::Value> {
    call_server_with(settings, reqwest::Method::GET, path, None).await
}

pub(crate) async fn call_server(
    settings: &Settings,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    call_server_with(settings, reqwest::Method::POST, path, Some(body)).await
}

/// Asks the running server (when this process cannot open the store).
pub(crate) async fn call_server_with(
    settings: &Settings,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let mut address = settings.web.listen;
    if address.ip().is_unspecified() {
        address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let url = format!("http://{address}{path}");
    let mut request = reqwest::Client::new().request(method, &url);
    if let Some(body) = body {
        request = request.json(&body);
    }
    // A server with an admin token admits this process the way it admits any client.
    let admin_token = settings.web.admin_token.trim();
    if !admin_token.is_empty() {
        request = request.bearer_auth(admin_token);
    }
    let response = request.send().await.with_context(|| {
        format!("the store is busy and the server at {address} does not answer")
    })?;
    let status = response.status();
    let body: serde_json::Value = response
        .json()
        .await
        .context("reading the server's answer")?;
    if !status.is_success() {
        let message = body["error"]["message"].as_str().unwrap_or("unknown error");
        anyhow::bail!("the server refused: {message}");
    }
    Ok(body)
}
