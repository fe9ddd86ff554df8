//! The docs stay true: the function list and the provider-property table in
//! profiles/README.md are the code's, and the README names the test command that .ci/run runs.

use std::path::Path;

/// Checks that the text between two markers of profiles/README.md is `expected`, or rewrites
/// it with `UPDATE_DOCS=1`.
fn keep_section(name: &str, expected: &str) {
    keep_section_of("profiles/README.md", name, expected);
}

/// Checks that the text between two markers of `file` is `expected`, or rewrites it with
/// `UPDATE_DOCS=1`.
fn keep_section_of(file: &str, name: &str, expected: &str) {
    let start_marker = format!("<!-- {name}:start -->\n");
    let end_marker = format!("<!-- {name}:end -->");
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let (Some(start), Some(end)) = (text.find(&start_marker), text.find(&end_marker)) else {
        panic!("{file} lacks the {name} markers");
    };
    if &text[start + start_marker.len()..end] == expected {
        return;
    }
    if std::env::var_os("UPDATE_DOCS").is_some() {
        let updated = format!("{}{start_marker}{expected}{}", &text[..start], &text[end..]);
        std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
    } else {
        panic!("{file}'s {name} section is stale: run `UPDATE_DOCS=1 cargo test --test integration docs`");
    }
}

#[test]
fn the_profile_reference_lists_every_function() {
    keep_section("functions", &bellhop::expr::functions::markdown_table());
}

/// The event file reference in events/README.md is the schema the forms are built from.
#[test]
fn the_event_reference_lists_every_key() {
    keep_section_of(
        "events/README.md",
        "event-keys",
        &bellhop::engine::forms::event_reference_markdown(),
    );
}

/// The shipped example events load without a problem against the shipped profiles.
#[test]
fn the_shipped_events_pass_check() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let profiles = bellhop::engine::ProfileSource::new(root.join("profiles"), None).load();
    let events = bellhop::event::load_dir(&root.join("events"), &profiles);
    assert!(events.diagnostics.is_empty(), "{:#?}", events.diagnostics);
    assert_eq!(events.events.len(), 3);
}

/// The provider-definition properties table in profiles/README.md is the one the code reads.
#[test]
fn the_profile_reference_maps_every_provider_property() {
    let mut expected = String::from("| property | what it does |\n| --- | --- |\n");
    for (name, effect) in bellhop::profile::PROVIDER_PROPERTIES {
        expected.push_str(&format!("| `{name}` | {effect} |\n"));
    }
    keep_section("provider-properties", &expected);
}

#[test]
fn ci_runs_the_readme_test_command() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).unwrap_or_default();
    let ci = std::fs::read_to_string(root.join(".ci/run")).unwrap_or_default();
    let command = "cargo test --all-targets --locked";
    assert!(readme.contains(command), "README.md must name `{command}`");
    assert!(ci.contains(command), ".ci/run must run `{command}`");
}
