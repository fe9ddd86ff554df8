//! The `bellhop` command: composition root. Reads settings, sets up logging, opens the device
//! hub, loads profiles, and runs the chosen subcommand. The only place that builds everything.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};

use bellhop::devices::{DeviceHub, StoreError};
use bellhop::engine::authorization::Authorizer;
use bellhop::engine::{Engine, HubEnvironment, ProfileSource, RunRecord};
use bellhop::expr::{self, Document, Expression, Scope};
use bellhop::settings::Settings;
use bellhop::tokens;
use bellhop::web;

#[derive(Parser)]
#[command(
    name = "bellhop",
    version,
    about = "HTTP action engine and device hub for home automation"
)]
struct Cli {
    /// Settings file (defaults are built in; this file and BELLHOP_* variables override them).
    #[arg(
        long,
        short,
        global = true,
        default_value = "plugin.toml",
        env = "BELLHOP_CONFIG"
    )]
    config: PathBuf,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the REST API (and run actions) until interrupted.
    Serve,
    /// Run one action: a profile and an optional action text.
    Run {
        profile: String,
        #[arg(default_value = "")]
        text: String,
        /// Print the whole run record as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Check plugin.toml, every profile and every event; list every problem (exit 1 when a
    /// profile or event has errors, 2 when plugin.toml itself is wrong).
    Check,
    /// Evaluate an expression (the sandbox).
    Eval {
        expression: String,
        /// A file whose text is `input` (default: empty input).
        #[arg(long)]
        input: Option<PathBuf>,
    },
    /// List devices.
    Devices,
    /// Show recent runs, newest first.
    Runs {
        profile: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
    },
    /// List the expression functions.
    Functions,
    /// List the automation events with their triggers and when each fires next.
    Events,
    /// Run an event now, with an optional input (through a running server when there is one).
    Fire {
        event: String,
        input: Option<String>,
    },
    /// List the OAuth providers (shipped and your own) with their grants.
    Providers {
        /// Print them as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Authorize an OAuth profile by its grant: prints the device code, fetches a client's
    /// token, or prints the provider's address and reads back the redirected URL.
    Authorize {
        profile: String,
        /// A grant code generated in the provider's console (Zoho's self client).
        #[arg(long)]
        code: Option<String>,
    },
    /// Read an authorization server's metadata (RFC 8414 / OpenID Connect discovery) and
    /// print the `[auth.oauth2]` endpoints it gives.
    Discover { issuer: String },
}

fn main() -> ExitCode {
    cap_malloc_arenas();
    let cli = Cli::parse();
    match real_main(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

fn init_logging(settings: &Settings) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("BELLHOP_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_new(&settings.log.level))
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    let _ = if settings.log.format == "json" {
        builder.json().try_init()
    } else {
        builder.try_init()
    };
}

fn real_main(cli: Cli) -> Result<ExitCode> {
    let explicit =
        std::env::var_os("BELLHOP_CONFIG").is_some() || cli.config != Path::new("plugin.toml");
    let settings = Settings::load(&cli.config, explicit)?;
    init_logging(&settings);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(async move {
        match cli.command {
            Command::Serve => serve(settings).await,
            Command::Run {
                profile,
                text,
                json,
            } => run(settings, &profile, &text, json).await,
            Command::Check => Ok(check(&settings)),
            Command::Eval { expression, input } => eval(&settings, &expression, input.as_deref()),
            Command::Devices => devices(&settings),
            Command::Runs { profile, limit } => runs(&settings, profile.as_deref(), limit),
            Command::Events => Ok(list_events(&settings)),
            Command::Fire { event, input } => fire(settings, &event, input.as_deref()).await,
            Command::Providers { json } => Ok(list_providers(&settings, json)),
            Command::Authorize { profile, code } => {
                authorize(settings, &profile, code.as_deref()).await
            }
            Command::Discover { issuer } => discover(&issuer).await,
            Command::Functions => {
                for function in expr::functions::FUNCTIONS {
                    println!("{:<40} {}", function.signature, function.doc);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

fn profile_source(settings: &Settings) -> ProfileSource {
    ProfileSource::new(
        settings.paths.profiles_dir.clone(),
        settings.paths.secrets_file.clone(),
    )
    .with_providers_dir(settings.paths.providers_dir.clone())
}

fn token_store(settings: &Settings) -> Result<Arc<tokens::TokenStore>> {
    let key_file = settings.token_key_file();
    let key = tokens::load_or_create_key(&key_file)
        .with_context(|| format!("preparing the token key {}", key_file.display()))?;
    Ok(Arc::new(tokens::TokenStore::open(
        &settings.tokens_dir(),
        &key,
    )?))
}

fn open_hub(settings: &Settings) -> Result<Arc<DeviceHub>> {
    let hub = DeviceHub::open(&settings.store_path(), settings.commit_window())?;
    hub.set_history_retention(bellhop::devices::HistoryRetention {
        max_age: std::time::Duration::from_secs(
            settings.devices.history_days.saturating_mul(24 * 3600),
        ),
        max_rows: settings.devices.history_max_rows,
    });
    Ok(Arc::new(hub))
}

/// The committed devices, read without taking the store (works while `serve` runs).
fn read_hub(settings: &Settings) -> Result<Option<DeviceHub>> {
    let path = settings.store_path();
    if !path.exists() {
        return Ok(None);
    }
    Ok(Some(DeviceHub::open_read_only(&path)?))
}

fn engine_limits(settings: &Settings) -> bellhop::engine::EngineLimits {
    let engine = &settings.engine;
    bellhop::engine::EngineLimits {
        max_wait: std::time::Duration::from_secs(engine.max_wait_secs),
        max_action_pieces: engine.max_action_pieces,
        max_devices_per_run: engine.max_devices_per_run,
        last_responses_bytes: engine.last_responses_mib.saturating_mul(1024 * 1024),
    }
}

/// The profile folder (with the vault, so secrets saved from the UI resolve) and the events
/// loaded against it: the one way `serve`, `check` and `events` load them.
fn load_folders(
    settings: &Settings,
    vault: Option<Arc<tokens::TokenStore>>,
) -> (
    ProfileSource,
    bellhop::profile::ProfileSet,
    bellhop::event::EventSet,
) {
    let mut source = profile_source(settings).with_events_dir(settings.paths.events_dir.clone());
    if let Some(vault) = vault {
        source = source.with_vault(vault);
    }
    let profiles = source.load();
    let events = bellhop::event::load_dir(&settings.paths.events_dir, &profiles);
    (source, profiles, events)
}

/// The vault for a command that only reads: when it cannot be opened, said, and the secrets
/// saved from the UI go unchecked.
fn vault_for_reading(settings: &Settings) -> Option<Arc<tokens::TokenStore>> {
    match token_store(settings) {
        Ok(store) => Some(store),
        Err(error) => {
            println!("warning: the encrypted store cannot be opened ({error:#}); secrets saved from the UI are not checked");
            None
        }
    }
}

fn build_engine(settings: &Settings) -> Result<Arc<Engine>> {
    let hub = open_hub(settings)?;
    let store = token_store(settings)?;
    let (source, set, events) = load_folders(settings, Some(store.clone()));
    for diagnostic in set.diagnostics.iter().chain(&events.diagnostics) {
        tracing::warn!("{diagnostic}");
    }
    let zone =
        bellhop::event::Zone::parse(&settings.events.time_zone).map_err(anyhow::Error::msg)?;
    let authorizer = Authorizer::new(
        store,
        settings.public_base_url().map_err(anyhow::Error::msg)?,
        std::time::Duration::from_secs(settings.oauth.refresh_margin_secs),
    )
    .map_err(anyhow::Error::msg)?;
    let engine = Engine::new(set, Some(source), hub)?
        .with_authorizer(Arc::new(authorizer))
        .with_limits(engine_limits(settings))
        .with_events(events, zone);
    engine.prepare_webhooks();
    Ok(Arc::new(engine))
}

/// Caps glibc's malloc arenas at two. By default glibc gives busy threads arenas of their own
/// (up to eight per core) and freed memory stays split among them: with thousands of events
/// firing each second that alone is a third of `serve`'s memory (see `benches/events.rs`).
/// Two arenas keep the worker threads from contending on one lock and the memory together.
/// Called first thing in `main`, while the process has one thread.
// The crate's one `unsafe` (denied everywhere else by `[lints]` in Cargo.toml).
#[allow(unsafe_code)]
fn cap_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: mallopt only sets an allocator parameter; it runs once, before any other thread
    // exists.
    unsafe {
        libc::mallopt(libc::M_ARENA_MAX, 2);
    }
}

/// The MQTT bridge's settings, when `mqtt.url` turns it on (user and password may be
/// `${env:…}` / `${secret:…}` references).
fn mqtt_bridge_config(settings: &Settings) -> Result<Option<bellhop::mqtt::BridgeConfig>> {
    let mqtt = &settings.mqtt;
    if mqtt.url.trim().is_empty() {
        return Ok(None);
    }
    let url = url::Url::parse(mqtt.url.trim()).context("mqtt.url")?;
    let secrets = match &settings.paths.secrets_file {
        Some(path) => bellhop::secret::SecretSource::from_file(path).map_err(anyhow::Error::msg)?,
        None => bellhop::secret::SecretSource::default(),
    };
    let resolve = |key: &str, text: &str| {
        secrets
            .resolve(text)
            .map_err(|problem| anyhow::anyhow!("mqtt.{key}: {problem}"))
    };
    let username = Some(mqtt.username.trim())
        .filter(|u| !u.is_empty())
        .map(|u| resolve("username", u).map(|s| s.expose().to_string()))
        .transpose()?;
    let password = Some(mqtt.password.trim())
        .filter(|p| !p.is_empty())
        .map(|p| resolve("password", p))
        .transpose()?;
    let tls = match (url.scheme(), mqtt.ca_file.trim()) {
        ("mqtts", "") => Some(bellhop::mqtt::Tls::SystemRoots),
        ("mqtts", file) => {
            let read = |key: &str, file: &str| {
                std::fs::read(file).with_context(|| format!("mqtt.{key} `{file}`"))
            };
            let client = match (mqtt.client_cert_file.trim(), mqtt.client_key_file.trim()) {
                ("", "") => None,
                (cert, key) => Some((
                    read("client_cert_file", cert)?,
                    bellhop::secret::Secret::new(
                        String::from_utf8(read("client_key_file", key)?)
                            .context("mqtt.client_key_file is not PEM text")?,
                    ),
                )),
            };
            Some(bellhop::mqtt::Tls::Ca {
                ca: read("ca_file", file)?,
                client,
            })
        }
        _ => None,
    };
    Ok(Some(bellhop::mqtt::BridgeConfig {
        host: url.host_str().unwrap_or_default().to_string(),
        port: url
            .port()
            .unwrap_or(if tls.is_some() { 8883 } else { 1883 }),
        tls,
        protocol: if mqtt.protocol == "5" {
            bellhop::mqtt::Protocol::V5
        } else {
            bellhop::mqtt::Protocol::V311
        },
        username,
        password,
        client_id: mqtt.client_id.clone(),
        base_topic: mqtt.base_topic.clone(),
        discovery_prefix: mqtt.discovery.then(|| mqtt.discovery_prefix.clone()),
        qos: mqtt.qos,
        keepalive: std::time::Duration::from_secs(mqtt.keepalive_secs),
        commands: mqtt.commands,
        allow: mqtt.allow.clone(),
    }))
}

async fn serve(settings: Settings) -> Result<ExitCode> {
    let address = settings.listen_address().map_err(anyhow::Error::msg)?;
    settings.check_exposure().map_err(anyhow::Error::msg)?;
    let engine = build_engine(&settings)?;
    let set = engine.profiles();
    tracing::info!(
        profiles = set.profiles.len(),
        problems = set.diagnostics.len(),
        devices = engine.device_count(),
        "profiles loaded"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound, server) = web::serve(
        web::AppState::new(engine.clone())
            .with_edge(
                web::Edge::new(
                    Some(address),
                    Some(&settings.public_base_url().map_err(anyhow::Error::msg)?),
                    &settings.web.allowed_hosts,
                    Some(settings.web.admin_token.trim())
                        .filter(|t| !t.is_empty())
                        .map(bellhop::secret::Secret::new),
                    std::time::Duration::from_secs(settings.web.session_hours.saturating_mul(3600)),
                )
                .with_trusted_proxies(&settings.web.trusted_proxies),
            )
            .with_listen_base(&settings.web.listen_base),
        address,
        settings.web.max_connections,
        async {
            let _ = stopped.await;
        },
    )
    .await
    .with_context(|| format!("cannot listen on {address}"))?;
    tracing::info!(address = %bound, public = %settings.web.public_base_url, "serving");
    engine.set_server_address(bound);
    let _automation = engine.start_automation();
    tracing::info!(
        events = engine.automation().events().events.len(),
        "events running"
    );
    let _bridge = match mqtt_bridge_config(&settings)? {
        Some(config) => bellhop::mqtt::start(&engine, config)?,
        None => Vec::new(),
    };
    wait_for_shutdown(engine.clone()).await;
    tracing::info!("stopping");
    let _ = stop.send(());
    let _ = server.await;
    engine.flush().await?;
    engine.close();
    Ok(ExitCode::SUCCESS)
}

/// Waits for Ctrl-C or SIGTERM; reloads profiles on SIGHUP meanwhile.
async fn wait_for_shutdown(engine: Arc<Engine>) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut hangup), Ok(mut terminate)) = (
            signal(SignalKind::hangup()),
            signal(SignalKind::terminate()),
        ) else {
            let _ = tokio::signal::ctrl_c().await;
            return;
        };
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return,
                _ = terminate.recv() => return,
                _ = hangup.recv() => {
                    // Reading the folder and the vault is blocking work: off the async workers.
                    let reloading = engine.clone();
                    let Ok(set) = tokio::task::spawn_blocking(move || reloading.reload()).await else {
                        tracing::error!("reloading the profiles stopped unexpectedly");
                        continue;
                    };
                    tracing::info!(profiles = set.profiles.len(), problems = set.diagnostics.len(), "profiles reloaded");
                    for diagnostic in &set.diagnostics {
                        tracing::warn!("{diagnostic}");
                    }
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

async fn run(settings: Settings, profile: &str, text: &str, as_json: bool) -> Result<ExitCode> {
    let record = match build_engine(&settings) {
        Ok(engine) => {
            let record = engine.run(profile, text).await?;
            engine.flush().await?;
            (*record).clone()
        }
        Err(error)
            if matches!(
                error.downcast_ref::<StoreError>(),
                Some(StoreError::Busy { .. })
            ) =>
        {
            tracing::info!(
                "a running `bellhop serve` owns the store: running the action through its API"
            );
            run_through_server(&settings, profile, text).await?
        }
        Err(error) => return Err(error),
    };
    if as_json {
        println!("{}", serde_json::to_string_pretty(&record)?);
    } else {
        print_run(&record);
    }
    Ok(if record.ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Sends the action to the running server, so that one process owns the device store.
async fn run_through_server(settings: &Settings, profile: &str, text: &str) -> Result<RunRecord> {
    let body = call_server(
        settings,
        "/api/v1/actions/run",
        serde_json::json!({ "profile": profile, "text": text }),
    )
    .await?;
    serde_json::from_value(body).context("reading the run record")
}

/// POSTs to the running server's API (with the admin token when one is set) and returns its
/// JSON answer; a refusal is an error carrying the server's message.
fn list_providers(settings: &Settings, json: bool) -> ExitCode {
    let catalog = profile_source(settings).providers();
    for diagnostic in &catalog.diagnostics {
        eprintln!("{diagnostic}");
    }
    if json {
        let list: Vec<_> = catalog.iter().map(|p| p.as_ref()).collect();
        println!(
            "{}",
            serde_json::to_string_pretty(&list).unwrap_or_default()
        );
    } else {
        println!("{:<14} {:<40} GRANTS", "ID", "NAME");
        for provider in catalog.iter() {
            let origin = if provider.built_in { "" } else { "  (yours)" };
            println!(
                "{:<14} {:<40} {}{origin}",
                provider.id,
                provider.name,
                provider.grants.join(", ")
            );
        }
    }
    if catalog.diagnostics.iter().any(|d| d.is_error()) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

async fn discover(issuer: &str) -> Result<ExitCode> {
    let issuer = url::Url::parse(issuer).context("the issuer is not a URL")?;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()?;
    let metadata =
        bellhop::oauth::discover(&http, &issuer, std::time::Duration::from_secs(15)).await?;
    println!("[auth.oauth2]");
    println!("issuer = {:?}", metadata.issuer);
    for (key, value) in [
        ("authorize_url", &metadata.authorization_endpoint),
        ("token_url", &metadata.token_endpoint),
        (
            "device_authorization_url",
            &metadata.device_authorization_endpoint,
        ),
        ("revocation_url", &metadata.revocation_endpoint),
        ("introspection_url", &metadata.introspection_endpoint),
        ("userinfo_url", &metadata.userinfo_endpoint),
    ] {
        if let Some(value) = value {
            println!("{key} = {value:?}");
        }
    }
    if !metadata.token_endpoint_auth_methods_supported.is_empty() {
        let auth = if metadata
            .token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == "client_secret_basic")
        {
            "basic"
        } else if metadata
            .token_endpoint_auth_methods_supported
            .iter()
            .any(|m| m == "client_secret_post")
        {
            "body"
        } else {
            "none"
        };
        println!("client_auth = {auth:?}");
    }
    if !metadata.code_challenge_methods_supported.is_empty()
        && !metadata
            .code_challenge_methods_supported
            .iter()
            .any(|m| m == "S256")
    {
        println!("pkce = false  # the server does not take S256");
    }
    Ok(ExitCode::SUCCESS)
}

/// `bellhop authorize`: by the profile's grant. Through a running server when the store is
/// busy (the server holds the pending state and polls the device flow).
async fn authorize(settings: Settings, name: &str, code: Option<&str>) -> Result<ExitCode> {
    let engine = match build_engine(&settings) {
        Ok(engine) => engine,
        Err(error)
            if matches!(
                error.downcast_ref::<StoreError>(),
                Some(StoreError::Busy { .. })
            ) =>
        {
            return authorize_through_server(&settings, name, code).await;
        }
        Err(error) => return Err(error),
    };
    let profiles = engine.profiles();
    let Some(profile) = profiles.get(name) else {
        anyhow::bail!("no profile named `{name}` is loaded (see `bellhop check`)");
    };
    use bellhop::profile::{AuthSpec, GrantType};
    let grant = match &profile.auth {
        AuthSpec::OAuth2(spec) => spec.grant,
        // OAuth 1.0a goes through the browser like the authorization-code grant.
        AuthSpec::OAuth1(_) => GrantType::AuthorizationCode,
        _ => anyhow::bail!("profile `{name}` does not use OAuth"),
    };
    if let Some(code) = code {
        engine.complete_grant_code(name, code).await?;
    } else {
        match grant {
            GrantType::ClientCredentials | GrantType::Password => {
                engine.authorize_without_browser(name).await?
            }
            GrantType::DeviceCode => {
                let device = engine.start_device_authorization(name).await?;
                print_device(&serde_json::to_value(&device)?);
                wait_for_authorization(|| {
                    let engine = engine.clone();
                    let name = name.to_string();
                    async move {
                        serde_json::to_value(engine.authorization_status(&name)?)
                            .map_err(Into::into)
                    }
                })
                .await?;
            }
            GrantType::AuthorizationCode | GrantType::Implicit => {
                let url = engine.begin_authorization(name).await?;
                println!("Open this address, sign in and allow access:\n\n  {url}\n");
                println!("Then paste the address your browser ended at (it may show an error page) and press Enter:");
                let mut pasted = String::new();
                std::io::stdin().read_line(&mut pasted)?;
                engine.complete_pasted_url(pasted.trim()).await?;
            }
        }
    }
    let status = serde_json::to_value(engine.authorization_status(name)?)?;
    engine.flush().await?;
    print_status(name, &status)
}

fn print_device(device: &serde_json::Value) {
    let uri = device["verification_uri_complete"]
        .as_str()
        .or(device["verification_uri"].as_str())
        .unwrap_or_default();
    println!(
        "Open {uri}\nand enter the code  {}  (valid {} s). Waiting…",
        device["user_code"].as_str().unwrap_or_default(),
        device["expires_in_secs"]
    );
}

/// Polls a status until the device authorization ends.
async fn wait_for_authorization<F, Fut>(status: F) -> Result<()>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<serde_json::Value>>,
{
    loop {
        tokio::time::sleep(std::time::Duration::from_secs(1)).await;
        let now = status().await?;
        if now["state"] != "awaiting_user" {
            return Ok(());
        }
    }
}

fn print_status(name: &str, status: &serde_json::Value) -> Result<ExitCode> {
    match status["state"].as_str() {
        Some("authorized") => {
            let who = status["authorized_as"]
                .as_str()
                .map(|w| format!(" as {w}"))
                .unwrap_or_default();
            println!("Profile `{name}` is authorized{who}.");
            Ok(ExitCode::SUCCESS)
        }
        _ => {
            let reason = status["reason"].as_str().unwrap_or("not authorized");
            eprintln!("Profile `{name}` is not authorized: {reason}");
            Ok(ExitCode::FAILURE)
        }
    }
}

async fn authorize_through_server(
    settings: &Settings,
    name: &str,
    code: Option<&str>,
) -> Result<ExitCode> {
    let path = format!(
        "/api/v1/profiles/{}/authorization",
        percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
    );
    let current = call_server_get(settings, &path).await?;
    let grant = current["grant"].as_str().unwrap_or_default();
    let body = match code {
        Some(code) => serde_json::json!({"action": "code", "code": code}),
        None if grant == "device_code" => serde_json::json!({"action": "device"}),
        None if grant == "client_credentials" || grant == "password" => {
            serde_json::json!({"action": "token"})
        }
        None => {
            let mut address = settings.listen_address().map_err(anyhow::Error::msg)?;
            if address.ip().is_unspecified() {
                address.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
            }
            println!(
                "The server is running: open http://{address}/oauth2/start?profile={} in a browser.",
                percent_encoding::utf8_percent_encode(name, percent_encoding::NON_ALPHANUMERIC)
            );
            return Ok(ExitCode::SUCCESS);
        }
    };
    let answer = call_server(settings, &path, body).await?;
    if answer.get("device").is_some() {
        print_device(&answer["device"]);
        wait_for_authorization(|| async {
            Ok(call_server_get(settings, &path).await?["status"].clone())
        })
        .await?;
    }
    let status = call_server_get(settings, &path).await?["status"].clone();
    print_status(name, &status)
}

async fn call_server_get(settings: &Settings, path: &str) -> Result<serde_json::Value> {
    call_server_with(settings, reqwest::Method::GET, path, None).await
}

async fn call_server(
    settings: &Settings,
    path: &str,
    body: serde_json::Value,
) -> Result<serde_json::Value> {
    call_server_with(settings, reqwest::Method::POST, path, Some(body)).await
}

/// Asks the running server (when this process cannot open the store).
async fn call_server_with(
    settings: &Settings,
    method: reqwest::Method,
    path: &str,
    body: Option<serde_json::Value>,
) -> Result<serde_json::Value> {
    let mut address = settings.listen_address().map_err(anyhow::Error::msg)?;
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

/// `bellhop fire <event> [input]`: runs an event now (through a running server when there is
/// one) and prints each step.
async fn fire(settings: Settings, event: &str, input: Option<&str>) -> Result<ExitCode> {
    let run = match build_engine(&settings) {
        Ok(engine) => {
            let run = engine.fire(event, "cli", input.map(Into::into), 0).await?;
            engine.flush().await?;
            serde_json::to_value(&*run)?
        }
        Err(error)
            if matches!(
                error.downcast_ref::<StoreError>(),
                Some(StoreError::Busy { .. })
            ) =>
        {
            let path = format!(
                "/api/v1/events/{}/run",
                percent_encoding::utf8_percent_encode(event, percent_encoding::NON_ALPHANUMERIC)
            );
            call_server(&settings, &path, serde_json::json!({ "input": input })).await?
        }
        Err(error) => return Err(error),
    };
    let outcome = run["outcome"].as_str().unwrap_or("unknown");
    println!(
        "{} — {outcome}{}",
        run["event"].as_str().unwrap_or(event),
        run["reason"]
            .as_str()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    for step in run["steps"].as_array().into_iter().flatten() {
        println!(
            "  {} {}{}",
            if step["ok"] == true { "ok  " } else { "FAIL" },
            step["step"].as_str().unwrap_or_default(),
            step["message"]
                .as_str()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    Ok(if outcome == "ok" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn print_run(record: &RunRecord) {
    let status = if record.skipped {
        "skipped (the action text gave null: nothing sent)"
    } else if record.ok {
        "ok"
    } else {
        "failed"
    };
    println!(
        "{} {} — {} in {} ms",
        record.started_at, record.profile, status, record.duration_ms
    );
    for exchange in &record.exchanges {
        let status = exchange
            .status
            .map(|s| s.to_string())
            .unwrap_or_else(|| "no answer".into());
        println!(
            "  {} {} → {} ({} bytes, {} ms)",
            exchange.method.as_str(),
            exchange.url,
            status,
            exchange.response_bytes,
            exchange.duration_ms
        );
    }
    for change in &record.changes {
        let device = &change.device;
        println!(
            "  {:?} #{} {}: value {} string {:?}",
            change.kind,
            device.reference,
            device.key,
            expr::value::format_number(device.value),
            device.string
        );
    }
    for error in &record.errors {
        match error.column {
            Some(column) => eprintln!(
                "  error ({}) at column {column}: {}",
                error.stage, error.message
            ),
            None => eprintln!("  error ({}): {}", error.stage, error.message),
        }
    }
}

fn check(settings: &Settings) -> ExitCode {
    let (_, set, events) = load_folders(settings, vault_for_reading(settings));
    let diagnostics: Vec<_> = set.diagnostics.iter().chain(&events.diagnostics).collect();
    for diagnostic in &diagnostics {
        println!("{diagnostic}");
    }
    let errors = diagnostics.iter().filter(|d| d.is_error()).count();
    let warnings = diagnostics.len() - errors;
    println!(
        "plugin settings ok; {} profile(s) loaded from {}; {} event(s) loaded from {}; {errors} error(s), {warnings} warning(s)",
        set.profiles.len(),
        settings.paths.profiles_dir.display(),
        events.events.len(),
        settings.paths.events_dir.display()
    );
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// `bellhop events`: each event, its triggers, and the next time its schedules fire.
fn list_events(settings: &Settings) -> ExitCode {
    use bellhop::event::{Trigger, Zone};
    let (_, _, events) = load_folders(settings, vault_for_reading(settings));
    for diagnostic in &events.diagnostics {
        println!("{diagnostic}");
    }
    let zone = Zone::parse(&settings.events.time_zone).unwrap_or(Zone::Local);
    let now = chrono::Utc::now();
    for event in events.events.values() {
        let state = if event.enabled { "" } else { " (disabled)" };
        println!("{}{state}", event.name);
        for trigger in &event.triggers {
            let line = match trigger {
                Trigger::Schedule(schedule) => {
                    let next = schedule
                        .next_after(now, zone)
                        .map(|at| {
                            at.with_timezone(&chrono::Local)
                                .to_rfc3339_opts(chrono::SecondsFormat::Secs, false)
                        })
                        .unwrap_or_else(|| "never".into());
                    format!("{} ({zone}), next {next}", schedule.describe())
                }
                Trigger::Startup => "at startup".into(),
                Trigger::Webhook => "its webhook URL".into(),
                Trigger::Input { profile, matcher } => {
                    format!("input of `{profile}`: {}", matcher.describe())
                }
                Trigger::Device(device) => {
                    format!("device {:?} changes ({:?})", device.device, device.changes)
                }
                Trigger::Global { name } => format!("global `{name}` changes"),
                Trigger::Error(error) => format!(
                    "an error of {}{}",
                    error.profile.as_deref().unwrap_or("any profile"),
                    error.class.map(|c| format!(" ({c:?})")).unwrap_or_default()
                ),
            };
            println!("  when {line}");
        }
        println!("  then {} action(s)", event.actions.len());
    }
    println!(
        "{} event(s) loaded from {}",
        events.events.len(),
        settings.paths.events_dir.display()
    );
    if events.has_errors() {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn eval(settings: &Settings, source: &str, input: Option<&Path>) -> Result<ExitCode> {
    let input = match input {
        Some(path) => {
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
        }
        None => String::new(),
    };
    let expression = match Expression::compile_sandbox(source) {
        Ok(e) => e,
        Err(errors) => {
            for error in errors.errors {
                eprintln!("{source}");
                eprintln!(
                    "{}^ column {}: {}",
                    " ".repeat(error.column.saturating_sub(1)),
                    error.column,
                    error.message
                );
            }
            return Ok(ExitCode::from(1));
        }
    };
    for warning in expression.warnings() {
        eprintln!("warning at column {}: {}", warning.column, warning.message);
    }
    let hub = read_hub(settings)?;
    let empty = expr::EmptyEnvironment;
    let hub_env = hub.as_ref().map(HubEnvironment::new);
    let env: &dyn expr::Environment = match &hub_env {
        Some(env) => env,
        None => &empty,
    };
    let document = Document::new(input, expression.plan());
    match expression.evaluate(&Scope::new(&document, env)) {
        Ok(value) => {
            println!("{}", value.to_text());
            eprintln!("({})", value.type_name());
            Ok(ExitCode::SUCCESS)
        }
        Err(error) => {
            eprintln!("{source}");
            eprintln!(
                "{}^ column {}: {}",
                " ".repeat(error.column.saturating_sub(1)),
                error.column,
                error.kind
            );
            Ok(ExitCode::from(1))
        }
    }
}

fn devices(settings: &Settings) -> Result<ExitCode> {
    let devices = read_hub(settings)?
        .map(|hub| hub.list())
        .unwrap_or_default();
    if devices.is_empty() {
        println!("no devices yet");
    }
    for device in devices {
        let indent = if device.key.feature.is_some() {
            "  "
        } else {
            ""
        };
        let name = format!("{indent}{}", device.key);
        println!(
            "#{:<5} {:<16} {:<32} value {:<10} string {:?}",
            device.reference,
            device.key.profile,
            name,
            expr::value::format_number(device.value),
            device.string
        );
    }
    Ok(ExitCode::SUCCESS)
}

fn runs(settings: &Settings, profile: Option<&str>, limit: usize) -> Result<ExitCode> {
    let path = settings.store_path();
    if !path.exists() {
        println!("no runs yet");
        return Ok(ExitCode::SUCCESS);
    }
    let records = DeviceHub::read_journal_at(&path, profile, limit)?;
    if records.is_empty() {
        println!("no runs yet");
    }
    for record in records {
        match serde_json::from_str::<RunRecord>(&record) {
            Ok(run) => print_run(&run),
            Err(_) => println!("{record}"),
        }
    }
    Ok(ExitCode::SUCCESS)
}
