//! `bellhop authorize`, `providers` and `discover`.

#[allow(unused_imports)]
use super::*;

/// POSTs to the running server's API (with the admin token when one is set) and returns its
/// JSON answer; a refusal is an error carrying the server's message.
pub(crate) fn list_providers(settings: &Settings, json: bool) -> ExitCode {
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

pub(crate) async fn discover(issuer: &str) -> Result<ExitCode> {
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
pub(crate) async fn authorize(
    settings: Settings,
    name: &str,
    code: Option<&str>,
) -> Result<ExitCode> {
    let engine = match here_or_server(&settings)? {
        Here::Local(engine) => engine,
        Here::Server => return authorize_through_server(&settings, name, code).await,
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

pub(crate) fn print_device(device: &serde_json::Value) {
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
pub(crate) async fn wait_for_authorization<F, Fut>(status: F) -> Result<()>
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

pub(crate) fn print_status(name: &str, status: &serde_json::Value) -> Result<ExitCode> {
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

pub(crate) async fn authorize_through_server(
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
            let mut address = settings.web.listen;
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
