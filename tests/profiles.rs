//! Loading profiles: the shipped examples, and broken folders where every problem is reported
//! with file, line, key and column while the valid profiles still load.

use std::collections::HashMap;
use std::path::Path;

use bellhop::profile::{self, Diagnostic, Severity};
use bellhop::secret::SecretSource;

use crate::support::{profile_text, Workspace};

#[test]
fn shipped_example_profiles_load_cleanly() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("profiles");
    let set = profile::load_dir(&dir, &SecretSource::default());
    assert!(set.diagnostics.is_empty(), "{:#?}", set.diagnostics);
    assert!(set.profiles.len() >= 3, "{:?}", set.profiles.keys());
}

fn find<'a>(diagnostics: &'a [Diagnostic], file: &str, key: &str) -> &'a Diagnostic {
    diagnostics
        .iter()
        .find(|d| d.file.file_name().is_some_and(|f| f == file) && d.key == key)
        .unwrap_or_else(|| panic!("no diagnostic for {file} `{key}` in {diagnostics:#?}"))
}

#[test]
fn a_broken_folder_reports_every_problem_at_once_and_loads_the_rest() {
    let ws = Workspace::new();
    ws.write_profile(
        "good",
        &profile_text(
            "http://127.0.0.1:1/user",
            "[devices]\nroot_names = '\"email\"'\nvalues = 'JSON(input, \"email\")'",
        ),
    );
    ws.write_profile(
        "syntax",
        "version = 1\n[request]\nurl = \"http://127.0.0.1/unclosed\n",
    );
    ws.write_profile(
        "unknown",
        "version = 1\n[request]\nurl = \"http://127.0.0.1/x\"\ntmeout_secs = 3\n\n[devices]\nroot_names = '\"a\"'\nvaluez = '1'\n",
    );
    ws.write_profile("badurl", "[request]\nurl = \"htp:/nowhere\"\n");
    ws.write_profile(
        "badfunc",
        "[request]\nurl = \"http://127.0.0.1/x\"\n\n[devices]\nroot_names = '\"a\" &&& \"b\"'\nvalues = '1 &&& Nope(input)'\n",
    );
    ws.write_profile(
        "quote",
        "[request]\nurl = \"http://127.0.0.1/x\"\n\n[devices]\nroot_names = '\"email'\n",
    );
    let set = ws.load();
    let d = &set.diagnostics;

    assert_eq!(set.profiles.keys().collect::<Vec<_>>(), vec!["good"]);

    let syntax = d
        .iter()
        .find(|x| x.file.ends_with("syntax.toml"))
        .unwrap_or_else(|| panic!("{d:#?}"));
    assert_eq!(syntax.line, Some(3), "{syntax}");
    assert!(syntax.message.contains("invalid TOML"), "{syntax}");

    let typo = find(d, "unknown.toml", "request.tmeout_secs");
    assert_eq!(typo.line, Some(4));
    let typo2 = find(d, "unknown.toml", "devices.valuez");
    assert_eq!(typo2.line, Some(8));

    let url = find(d, "badurl.toml", "request.url");
    assert_eq!(url.line, Some(2));
    assert!(url.message.contains("htp"), "{url}");

    let function = find(d, "badfunc.toml", "devices.values");
    assert_eq!(
        (function.line, function.column),
        (Some(6), Some(7)),
        "{function}"
    );
    assert!(function.message.contains("unknown function `Nope`"));

    let quote = find(d, "quote.toml", "devices.root_names");
    assert_eq!((quote.line, quote.column), (Some(5), Some(1)), "{quote}");
    assert!(quote.message.contains("unclosed text literal"));

    // The rendered form names file, line, key and column.
    let rendered = function.to_string();
    assert!(
        rendered.contains("badfunc.toml:6")
            && rendered.contains("`devices.values`")
            && rendered.contains("column 7"),
        "{rendered}"
    );
}

#[test]
fn a_box_of_thousands_of_elements_is_refused_before_it_is_compiled() {
    let ws = Workspace::new();
    let roots = vec!["\"a\""; 120_000].join(" &&& ");
    ws.write_profile(
        "bomb",
        &profile_text(
            "http://127.0.0.1:1/x",
            &format!("[devices]\nroot_names = '{roots}'"),
        ),
    );
    let features = vec!["\"t\""; 1_001].join(" && ");
    ws.write_profile(
        "wide",
        &profile_text(
            "http://127.0.0.1:1/x",
            &format!("[devices]\nroot_names = '\"a\"'\nfeature_names = '{features}'"),
        ),
    );
    ws.write_profile(
        "fine",
        &profile_text("http://127.0.0.1:1/x", "[devices]\nroot_names = '\"a\"'"),
    );
    let set = ws.load();
    let problem = find(&set.diagnostics, "bomb.toml", "devices.root_names");
    assert!(
        problem.message.contains("120000 elements") && problem.message.contains("1000"),
        "{problem}"
    );
    assert!(problem.line.is_some(), "{problem:?}");
    let problem = find(&set.diagnostics, "wide.toml", "devices.feature_names");
    assert!(problem.message.contains("1001 elements"), "{problem}");
    // The others load.
    assert!(set.get("fine").is_some());
    assert!(set.get("bomb").is_none() && set.get("wide").is_none());
}

#[test]
fn boxes_must_line_up() {
    let ws = Workspace::new();
    ws.write_profile(
        "shape",
        &profile_text(
            "http://127.0.0.1:1/x",
            "[devices]\nroot_names = '\"a\" &&& \"b\"'\nfeature_names = '\"t\" && \"h\"'\nvalues = '1 && 2'",
        ),
    );
    let set = ws.load();
    let problem = find(&set.diagnostics, "shape.toml", "devices.feature_names");
    assert!(
        problem.message.contains("1 group(s)") && problem.message.contains("2 root(s)"),
        "{problem}"
    );
}

#[test]
fn boxes_and_list_form_are_not_mixed() {
    let ws = Workspace::new();
    ws.write_profile(
        "mixed",
        &profile_text(
            "http://127.0.0.1:1/x",
            "[devices]\nroot_names = '\"a\"'\n\n[[device]]\nname = '\"b\"'",
        ),
    );
    let set = ws.load();
    find(&set.diagnostics, "mixed.toml", "device");
}

#[test]
fn list_form_errors_name_the_nested_key() {
    let ws = Workspace::new();
    ws.write_profile(
        "list",
        &profile_text(
            "http://127.0.0.1:1/x",
            "[[device]]\nname = '\"a\"'\n\n[[device.feature]]\nname = '\"t\"'\nvalue = 'round(1, 2, 3)'",
        ),
    );
    let set = ws.load();
    let problem = find(&set.diagnostics, "list.toml", "device[0].feature[0].value");
    assert_eq!(problem.line, Some(13), "{problem}");
    assert!(problem.message.contains("not 3 arguments"), "{problem}");
}

#[test]
fn typographic_quotes_load_with_a_warning() {
    let ws = Workspace::new();
    ws.write_profile(
        "pasted",
        &profile_text("http://127.0.0.1:1/x", "[devices]\nroot_names = '\u{201C}email\u{201D}'\nvalues = 'JSON(input,\u{201D}email\u{201D})'"),
    );
    let set = ws.load();
    assert!(set.get("pasted").is_some(), "{:#?}", set.diagnostics);
    let warnings: Vec<_> = set
        .diagnostics
        .iter()
        .filter(|d| d.severity == Severity::Warning)
        .collect();
    assert_eq!(warnings.len(), 2, "{warnings:#?}");
}

#[test]
fn secrets_come_from_the_environment_and_never_print() {
    let text = "[request]\nurl = \"http://127.0.0.1:1/x\"\n\n[auth]\nmode = \"bearer\"\ntoken = \"${env:TEST_TOKEN}\"\n";
    let secrets = SecretSource::default().with_environment(HashMap::from([(
        "TEST_TOKEN".to_string(),
        "s3cr3t-value".to_string(),
    )]));
    let (profile, diagnostics) = profile::load_text(Path::new("p.toml"), text, &secrets);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    let printed = format!("{profile:?}");
    assert!(printed.contains("bearer") || printed.contains("Bearer"));
    assert!(
        !printed.contains("s3cr3t-value"),
        "a secret leaked into Debug output"
    );

    let missing = SecretSource::default().with_environment(HashMap::new());
    let (profile, diagnostics) = profile::load_text(Path::new("p.toml"), text, &missing);
    assert!(profile.is_none());
    assert!(
        diagnostics[0].message.contains("TEST_TOKEN"),
        "{:?}",
        diagnostics
    );
    assert_eq!(
        (diagnostics[0].key.as_str(), diagnostics[0].line),
        ("auth.token", Some(6))
    );
}

#[test]
fn every_field_is_checked() {
    let cases: &[(&str, &str, &str)] = &[
        ("[request]\nurl = \"http://h/x\"\nmethod = \"FETCH\"\n", "request.method", "FETCH"),
        ("[request]\nurl = \"ftp://h/x\"\n", "request.url", "scheme `ftp`"),
        ("[request]\nurl = \"http://h/${ input \"\n", "request.url", "never closed"),
        ("[request]\nurl = \"http://h/x\"\ntimeout_secs = -1\n", "request.timeout_secs", "above 0"),
        ("[request]\nurl = \"http://h/x\"\n[request.headers]\n\"Bad Header\" = \"x\"\n", "request.headers.Bad Header", "not a valid header name"),
        ("[request]\nurl = \"http://h/x\"\n[request.body]\nkind = \"xml\"\n", "request.body.kind", "xml"),
        ("[request]\nurl = \"http://h/x\"\n[auth]\nmode = \"digest\"\n", "auth.mode", "digest"),
        ("[request]\nurl = \"http://h/x\"\n[auth]\nmode = \"basic\"\nusername = \"u\"\n", "auth.password", "needs `password`"),
        ("[request]\nurl = \"http://h/x\"\n[auth.oauth2]\nclient_id = \"c\"\nauthorize_url = \"not a url\"\ntoken_url = \"https://t/token\"\n", "auth.oauth2.authorize_url", "not a valid URL"),
        ("version = 7\n[request]\nurl = \"http://h/x\"\n", "version", "version 7"),
        ("name = \"bad/name\"\n[request]\nurl = \"http://h/x\"\n", "name", "may only hold"),
        ("[devices]\nvalues = '1'\n", "request", "needs a `[request]`"),
    ];
    for (text, key, expected) in cases {
        let (profile, diagnostics) =
            profile::load_text(Path::new("case.toml"), text, &SecretSource::default());
        assert!(profile.is_none(), "{text} loaded");
        let hit = diagnostics.iter().find(|d| d.key == *key);
        let hit = hit.unwrap_or_else(|| panic!("{text}: no `{key}` in {diagnostics:#?}"));
        assert!(hit.message.contains(expected), "{text}: {}", hit.message);
    }
}
