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

/// The "may use" column of ARCHITECTURE.md's code map, for each top-level module: the one
/// table the document shows and this test enforces (backticked names; "nothing else" is none).
fn may_use_table() -> Vec<(String, Vec<String>)> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("ARCHITECTURE.md");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{e}"));
    let start = text
        .find("## Code map")
        .unwrap_or_else(|| panic!("no code map"));
    let map = &text[start..];
    let map = &map[..map[3..].find("\n## ").map_or(map.len(), |end| end + 3)];
    let mut table = Vec::new();
    for line in map.lines().filter(|l| l.starts_with("| `")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        let [module, _, may_use] = cells.as_slice() else {
            panic!("a code-map row without three cells: {line}");
        };
        let Some(name) = module.strip_prefix('`').and_then(|m| m.strip_suffix('`')) else {
            continue; // `mqtt` (cont.) and the like
        };
        if name.contains("::") || name.ends_with(".rs") {
            continue;
        }
        let names = may_use
            .split('`')
            .skip(1)
            .step_by(2)
            .map(str::to_string)
            .collect();
        table.push((name.to_string(), names));
    }
    assert!(
        table.len() >= 10,
        "the code map lost its modules: {table:?}"
    );
    table
}

#[test]
fn dependencies_point_one_way() {
    let table = may_use_table();
    let allowed: Vec<(&str, Vec<&str>)> = table
        .iter()
        .map(|(module, may_use)| {
            (
                module.as_str(),
                may_use.iter().map(String::as_str).collect(),
            )
        })
        .collect();
    // Every module of the crate is in the map, so a new one cannot escape the rules.
    for entry in std::fs::read_dir(src()).into_iter().flatten().flatten() {
        let name = entry
            .file_name()
            .to_string_lossy()
            .trim_end_matches(".rs")
            .to_string();
        if name != "lib" && name != "main" {
            assert!(
                allowed.iter().any(|(module, _)| *module == name),
                "ARCHITECTURE.md's code map has no row for `{name}`"
            );
        }
    }
    let mut violations = Vec::new();
    for (module, may_use) in &allowed {
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
