//! The rules of ARCHITECTURE.md, enforced: which modules may use which, and that every source
//! file opens with a `//!` doc saying what it owns.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return files;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(rust_files(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            files.push(path);
        }
    }
    files
}

fn src() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src")
}

/// The project modules a module's files mention through `crate::`.
fn uses_of(module: &str) -> Vec<(PathBuf, String)> {
    let root = src();
    let mut files = rust_files(&root.join(module));
    let single = root.join(format!("{module}.rs"));
    if single.exists() {
        files.push(single);
    }
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (position, _) in text.match_indices("crate::") {
            let rest = &text[position + "crate::".len()..];
            let name: String = rest
                .chars()
                .take_while(|c| c.is_alphanumeric() || *c == '_')
                .collect();
            if name != module {
                found.push((file.clone(), name));
            }
        }
    }
    found
}

#[test]
fn dependencies_point_one_way() {
    let allowed: &[(&str, &[&str])] = &[
        ("expr", &[]),
        ("devices", &[]),
        ("secret", &[]),
        ("net", &[]),
        ("oauth", &["secret", "net"]),
        ("tokens", &["oauth", "secret"]),
        ("settings", &[]),
        ("profile", &["expr", "secret", "oauth"]),
        ("event", &["expr", "profile"]),
        (
            "engine",
            &[
                "expr", "devices", "profile", "event", "secret", "oauth", "tokens", "net",
            ],
        ),
        (
            "web",
            &[
                "engine", "expr", "devices", "profile", "event", "secret", "oauth",
            ],
        ),
        ("mqtt", &["engine", "devices", "profile", "secret"]),
    ];
    let mut violations = Vec::new();
    for (module, may_use) in allowed {
        for (file, used) in uses_of(module) {
            if !may_use.contains(&used.as_str()) {
                violations.push(format!("{} uses crate::{used}", file.display()));
            }
        }
    }
    assert!(
        violations.is_empty(),
        "forbidden dependencies:\n{}",
        violations.join("\n")
    );
}

#[test]
fn every_module_says_what_it_owns() {
    let missing: Vec<String> = rust_files(&src())
        .into_iter()
        .filter(|f| {
            !std::fs::read_to_string(f)
                .unwrap_or_default()
                .trim_start()
                .starts_with("//!")
        })
        .map(|f| f.display().to_string())
        .collect();
    assert!(
        missing.is_empty(),
        "files without a //! module doc: {missing:?}"
    );
}

/// Adapters (the web, the CLI's live paths) go through the engine's door: they never reach into
/// the device hub or the authorizer of a running engine.
#[test]
fn adapters_go_through_the_engine_door() {
    let mut adapters = rust_files(&src().join("web"));
    adapters.extend(rust_files(&src().join("mqtt")));
    adapters.push(src().join("main.rs"));
    let forbidden = [
        ".hub()",
        ".authorizer()",
        "DeviceHub::open(",
        "Authorizer::",
    ];
    let mut violations = Vec::new();
    for file in adapters {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for needle in forbidden {
                // main.rs composes the engine: it may build the hub and the authorizer.
                let composing = file.ends_with("main.rs")
                    && (needle == "DeviceHub::open(" || needle == "Authorizer::");
                if code.contains(needle) && !composing {
                    violations.push(format!("{}:{}: {needle}", file.display(), number + 1));
                }
            }
        }
    }
    assert!(
        violations.is_empty(),
        "adapters reaching past the engine:\n{}",
        violations.join("\n")
    );
}
