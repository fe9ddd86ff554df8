//! The `bellhop` command: composition root. Reads settings, sets up logging, opens the device
//! hub, loads profiles, and runs the chosen subcommand. The only place that builds everything.

mod cli;

use anyhow::{Context, Result};
use bellhop::devices::DeviceHub;
use bellhop::engine::authorization::Authorizer;
use bellhop::engine::{Engine, ProfileSource};
use bellhop::expr;
use bellhop::settings::Settings;
use bellhop::tokens;
use bellhop::web;
use clap::{Parser, Subcommand};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

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
    let _ = if settings.log.format == bellhop::settings::LogFormat::Json {
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
            } => cli::run(settings, &profile, &text, json).await,
            Command::Check => Ok(cli::check(&settings)),
            Command::Eval { expression, input } => {
                cli::eval(&settings, &expression, input.as_deref())
            }
            Command::Devices => cli::devices(&settings),
            Command::Runs { profile, limit } => cli::runs(&settings, profile.as_deref(), limit),
            Command::Events => Ok(cli::list_events(&settings)),
            Command::Fire { event, input } => cli::fire(settings, &event, input.as_deref()).await,
            Command::Providers { json } => Ok(cli::list_providers(&settings, json)),
            Command::Authorize { profile, code } => {
                cli::authorize(settings, &profile, code.as_deref()).await
            }
            Command::Discover { issuer } => cli::discover(&issuer).await,
            Command::Functions => {
                for function in expr::functions::FUNCTIONS {
                    println!("{:<40} {}", function.signature, function.doc);
                }
                Ok(ExitCode::SUCCESS)
            }
        }
    })
}

pub(crate) fn profile_source(settings: &Settings) -> ProfileSource {
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
pub(crate) fn read_hub(settings: &Settings) -> Result<Option<DeviceHub>> {
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
pub(crate) fn load_folders(
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
pub(crate) fn vault_for_reading(settings: &Settings) -> Option<Arc<tokens::TokenStore>> {
    match token_store(settings) {
        Ok(store) => Some(store),
        Err(error) => {
            println!("warning: the encrypted store cannot be opened ({error:#}); secrets saved from the UI are not checked");
            None
        }
    }
}

pub(crate) fn build_engine(settings: &Settings) -> Result<Arc<Engine>> {
    let hub = open_hub(settings)?;
    let store = token_store(settings)?;
    let (source, set, events) = load_folders(settings, Some(store.clone()));
    for diagnostic in set.diagnostics.iter().chain(&events.diagnostics) {
        tracing::warn!("{diagnostic}");
    }
    let zone = settings
        .events
        .time_zone
        .map_or(bellhop::event::Zone::Local, bellhop::event::Zone::Named);
    let authorizer = Authorizer::new(
        store,
        settings.web.public_base_url.clone(),
        std::time::Duration::from_secs(settings.oauth.refresh_margin_secs),
    )?;
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
    let Some(url) = &mqtt.url else {
        return Ok(None);
    };
    let secrets = match &settings.paths.secrets_file {
        Some(path) => bellhop::secret::SecretSource::from_file(path)?,
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
        protocol: match mqtt.protocol {
            bellhop::settings::MqttProtocol::V5 => bellhop::mqtt::Protocol::V5,
            bellhop::settings::MqttProtocol::V311 => bellhop::mqtt::Protocol::V311,
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

async fn serve(mut settings: Settings) -> Result<ExitCode> {
    settings.check_exposure()?;
    // Bound first: with port 0 the system picks one, and a public base URL on port 0 follows
    // it (redirect URIs, callback pages and ServerURL() name the port actually served).
    let listener = tokio::net::TcpListener::bind(settings.web.listen)
        .await
        .with_context(|| format!("cannot listen on {}", settings.web.listen))?;
    let address = listener.local_addr()?;
    if settings.web.public_base_url.port() == Some(0) {
        let _ = settings.web.public_base_url.set_port(Some(address.port()));
    }
    let engine = build_engine(&settings)?;
    let set = engine.profiles();
    tracing::info!(
        profiles = set.profiles.len(),
        problems = set.diagnostics.len(),
        devices = engine.device_count(),
        "profiles loaded"
    );
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let (bound, server) = web::serve_on(
        web::AppState::new(engine.clone())
            .with_edge(
                web::Edge::new(
                    Some(address),
                    Some(&settings.web.public_base_url),
                    &settings.web.allowed_hosts,
                    Some(settings.web.admin_token.trim())
                        .filter(|t| !t.is_empty())
                        .map(bellhop::secret::Secret::new),
                    std::time::Duration::from_secs(settings.web.session_hours.saturating_mul(3600)),
                )
                .with_trusted_proxies(&settings.web.trusted_proxies),
            )
            .with_listen_base(&settings.web.listen_base),
        listener,
        settings.web.max_connections,
        async {
            let _ = stopped.await;
        },
    )
    .with_context(|| format!("cannot serve on {address}"))?;
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
