//! `bellhop run` and `bellhop fire`: an action or an event, with its record printed.

#[allow(unused_imports)]
use super::*;

pub(crate) async fn run(
    settings: Settings,
    profile: &str,
    text: &str,
    as_json: bool,
) -> Result<ExitCode> {
    let record = match here_or_server(&settings)? {
        Here::Local(engine) => {
            let record = engine.run(profile, text).await?;
            engine.flush().await?;
            (*record).clone()
        }
        Here::Server => run_through_server(&settings, profile, text).await?,
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
pub(crate) async fn run_through_server(
    settings: &Settings,
    profile: &str,
    text: &str,
) -> Result<RunRecord> {
    let body = call_server(
        settings,
        "/api/v1/actions/run",
        serde_json::json!({ "profile": profile, "text": text }),
    )
    .await?;
    serde_json::from_value(body).context("reading the run record")
}

/// `bellhop fire <event> [input]`: runs an event now (through a running server when there is
/// one) and prints each step.
pub(crate) async fn fire(settings: Settings, event: &str, input: Option<&str>) -> Result<ExitCode> {
    let run: EventRun = match here_or_server(&settings)? {
        Here::Local(engine) => {
            let run = engine.fire(event, "cli", input.map(Into::into), 0).await?;
            engine.flush().await?;
            (*run).clone()
        }
        Here::Server => {
            let path = format!(
                "/api/v1/events/{}/run",
                percent_encoding::utf8_percent_encode(event, percent_encoding::NON_ALPHANUMERIC)
            );
            let answer =
                call_server(&settings, &path, serde_json::json!({ "input": input })).await?;
            serde_json::from_value(answer).context("reading the event run")?
        }
    };
    // The outcome as the API and the journal write it (`ok`, `failed`, `conditions_false`, …).
    let outcome = serde_json::to_value(&run.outcome)?
        .as_str()
        .unwrap_or("unknown")
        .to_string();
    println!(
        "{} — {outcome}{}",
        run.event,
        run.reason
            .as_deref()
            .map(|r| format!(": {r}"))
            .unwrap_or_default()
    );
    for step in &run.steps {
        println!(
            "  {} {}{}",
            if step.ok { "ok  " } else { "FAIL" },
            step.step,
            step.message
                .as_deref()
                .map(|m| format!(": {m}"))
                .unwrap_or_default()
        );
    }
    Ok(if run.outcome == EventOutcome::Ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

pub(crate) fn print_run(record: &RunRecord) {
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
