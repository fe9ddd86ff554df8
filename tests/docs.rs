//! The docs stay true: the function list in profiles/README.md is the function table, and the
//! README names the test command that .ci/run runs.

use std::path::Path;

const START: &str = "<!-- functions:start -->\n";
const END: &str = "<!-- functions:end -->";

#[test]
fn the_profile_reference_lists_every_function() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let expected = bellhop::expr::functions::markdown_table();
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        panic!("profiles/README.md lacks the function-table markers");
    };
    let current = &text[start + START.len()..end];
    if current != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}{START}{expected}{}", &text[..start], &text[end..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!("profiles/README.md's function table is stale: run `UPDATE_DOCS=1 cargo test --test integration docs`");
        }
    }
}

/// The provider-definition properties table in profiles/README.md is the one the code reads.
#[test]
fn the_profile_reference_maps_every_provider_property() {
    const START: &str = "<!-- provider-properties:start -->\n";
    const END: &str = "<!-- provider-properties:end -->";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles/README.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut expected = String::from("| property | what it does |\n| --- | --- |\n");
    for (name, effect) in bellhop::profile::PROVIDER_PROPERTIES {
        expected.push_str(&format!("| `{name}` | {effect} |\n"));
    }
    let (Some(start), Some(end)) = (text.find(START), text.find(END)) else {
        panic!("profiles/README.md lacks the provider-properties markers");
    };
    let current = &text[start + START.len()..end];
    if current != expected {
        if std::env::var_os("UPDATE_DOCS").is_some() {
            let updated = format!("{}{START}{expected}{}", &text[..start], &text[end..]);
            std::fs::write(&path, updated).unwrap_or_else(|e| panic!("{e}"));
        } else {
            panic!("profiles/README.md's provider properties are stale: run `UPDATE_DOCS=1 cargo test --test integration docs`");
        }
    }
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
