//! `bellhop check`, `events`, `eval`, `devices` and `runs`: what is loaded and stored.

#[allow(unused_imports)]
use super::*;

pub(crate) fn check(settings: &Settings) -> ExitCode {
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
pub(crate) fn list_events(settings: &Settings) -> ExitCode {
    use bellhop::event::{Trigger, Zone};
    let (_, _, events) = load_folders(settings, vault_for_reading(settings));
    for diagnostic in &events.diagnostics {
        println!("{diagnostic}");
    }
    let zone = settings.events.time_zone.map_or(Zone::Local, Zone::Named);
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

pub(crate) fn eval(settings: &Settings, source: &str, input: Option<&Path>) -> Result<ExitCode> {
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

pub(crate) fn devices(settings: &Settings) -> Result<ExitCode> {
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

pub(crate) fn runs(settings: &Settings, profile: Option<&str>, limit: usize) -> Result<ExitCode> {
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
