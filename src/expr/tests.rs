//! Table-driven tests of the language: one line per case.

use super::*;

struct Devices;

impl Environment for Devices {
    fn device_value(&self, reference: u64) -> Option<f64> {
        (reference == 123).then_some(71.6)
    }
    fn device_string(&self, reference: u64) -> Option<String> {
        (reference == 123).then(|| "Hello world".to_string())
    }
    fn global_value(&self, name: &str) -> Option<f64> {
        (name == "global1").then_some(4.0)
    }
    fn header(&self, name: &str) -> Option<String> {
        name.eq_ignore_ascii_case("content-type")
            .then(|| "application/json".to_string())
    }
    fn status(&self) -> Option<u16> {
        Some(200)
    }
    fn token_field(&self, name: &str) -> Option<serde_json::Value> {
        match name {
            "api_domain" => Some(serde_json::json!("https://www.zohoapis.eu")),
            "userid" => Some(serde_json::json!(363)),
            _ => None,
        }
    }
}

#[test]
fn token_fields_read_by_function_and_by_name() {
    assert_eq!(
        text_of(r#"Token("api_domain")"#, ""),
        "https://www.zohoapis.eu"
    );
    assert_eq!(text_of("token.api_domain", ""), "https://www.zohoapis.eu");
    assert_eq!(
        text_of(r#"token.api_domain + "/bigin""#, ""),
        "https://www.zohoapis.eu/bigin"
    );
    assert_eq!(text_of("Token.userid + 1", ""), "364");
    assert_eq!(text_of("token.absent", ""), "");
    assert!(text_of("token.", "").starts_with("compile:"));
    assert!(text_of("token", "").starts_with("compile:"));
}

fn run(source: &str, input: &str) -> Result<Value, String> {
    match evaluate_once(source, input, &Devices) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(format!("eval: {error}")),
        Err(errors) => Err(format!("compile: {errors}")),
    }
}

fn text_of(source: &str, input: &str) -> String {
    match run(source, input) {
        Ok(value) => value.to_text(),
        Err(error) => error,
    }
}

#[test]
fn documented_examples_hold() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "sin(90) + ceiling(100.3) * floor(13.9) + round(14.4)",
            "",
            "1328",
        ),
        ("(val123 - 32) * 5 / 9", "", "22"),
        ("str123", "", "Hello world"),
        ("ParseNumber(input) + 100", "30.5", "130.5"),
        ("Length(input)", "Hello world", "11"),
        ("Numbers(input)[0]", "Hello 123 world 56 and 10", "123"),
        ("Words(input)[2]", "Hello 123 world 56 and 10", "and"),
        ("OnOffs(input)[2]", "Hello on on world off bye on", "off"),
        (
            "Substring(input, 8)",
            "Pin is: 1234 to enter",
            "1234 to enter",
        ),
        (
            "Split(input, \",\")[3]",
            "comma,separated,words,as,example",
            "as",
        ),
        (
            r#"Regex(input, "\b\d{3}\b")[1]"#,
            "76 8987 765 4 543 7865 435",
            "543",
        ),
        (
            "JSON(input,\"email\")",
            r#"{"email":"ann@example.com"}"#,
            "ann@example.com",
        ),
        (
            "If(val123 < 22 or val123 > 336, \"North\", \"South\")",
            "",
            "South",
        ),
        ("GVval(\"global1\") * 2", "", "8"),
        ("GVval(\"global1\", 0) * 2", "", "8"),
        // A global that does not exist yet reads as the default given.
        ("GVval(\"away\", 0) == 0", "", "true"),
        ("GVstr(\"away\", \"home\")", "", "home"),
    ];
    for (source, input, expected) in cases {
        assert_eq!(&text_of(source, input), expected, "{source}");
    }
}

#[test]
fn operators_follow_usual_precedence() {
    let cases: &[(&str, &str)] = &[
        ("1 + 2 * 3", "7"),
        ("(1 + 2) * 3", "9"),
        ("-2 * 3", "-6"),
        ("7 % 4", "3"),
        ("1 < 2 and 2 < 1", "false"),
        ("not 1 < 2 or true", "true"),
        ("1 = 1", "true"),
        ("\"a\" + 1", "a1"),
        ("1 + \"a\"", "1a"),
        ("\"10\" * 2", "20"),
        ("\"abc\" < \"abd\"", "true"),
        ("2 != \"2\"", "false"),
        ("Split(\"a b c\", \" \")[-1]", "c"),
        ("round(2.345, 2)", "2.35"),
        ("max(3, 9, 4)", "9"),
        ("min(Numbers(\"5 2 8\"))", "2"),
        ("pow(2, 10)", "1024"),
        ("Join(Split(\"a-b\", \"-\"), \"+\")", "a+b"),
        ("Count(\"banana\", \"a\")", "3"),
        ("Count(Split(\"a,b,c\", \",\"))", "3"),
        ("Hex(\"41 31\")", "A1"),
        ("Upper(Trim(\"  hi \"))", "HI"),
        ("Replace(\"a.b.c\", \".\", \"/\")", "a/b/c"),
        ("Contains(\"hello\", \"ell\")", "true"),
        (
            "StartsWith(\"hello\", \"he\") and EndsWith(\"hello\", \"lo\")",
            "true",
        ),
        ("Status()", "200"),
        ("Header(\"Content-Type\")", "application/json"),
        (
            "FormatDate(ParseDate(\"2024-03-01T12:00:00Z\"), \"%Y\")",
            "2024",
        ),
        ("ParseDate(\"2024-03-01T00:00:00Z\")", "1709251200"),
        ("if(true, 1, 2)", "1"),
        ("json(input, \"a\")", "a"),
    ];
    for (source, expected) in cases {
        assert_eq!(&text_of(source, r#"{"a":"a"}"#), expected, "{source}");
    }
}

#[test]
fn json_paths_select_like_the_docs_say() {
    let body = r#"{"user":{"email":"a@b","tags":["x","y"]},"rooms":[{"name":"Kitchen","temp":21.5},{"name":"Hall","temp":19}],
                   "odd key":{"v":1},"flag":true,"nothing":null}"#;
    let cases: &[(&str, &str)] = &[
        ("JSON(input, \"user.email\")", "a@b"),
        ("JSON(input, \"user.tags[1]\")", "y"),
        ("JSON(input, \"user.tags[-1]\")", "y"),
        ("JSON(input, \"rooms[1].name\")", "Hall"),
        ("JSON(input, \"rooms[*].temp\")[0]", "21.5"),
        ("JSON(input, \"[\\\"odd key\\\"].v\")", "1"),
        ("JSON(input, \"$.rooms[?(@.temp < 20)].name\")[0]", "Hall"),
        ("JSON(input, \"$.user.email\")", "a@b"),
        ("JSON(input, \"flag\") and true", "true"),
        ("Count(JSON(input, \"rooms\"))", "2"),
        ("JSON(JSON(input, \"rooms\")[0], \"name\")", "Kitchen"),
        (
            "JSON(input, \"user\")",
            r#"{"email":"a@b","tags":["x","y"]}"#,
        ),
        ("JSON(input, \"rooms[\" + 0 + \"].name\")", "Kitchen"),
    ];
    for (source, expected) in cases {
        assert_eq!(&text_of(source, body), expected, "{source}");
    }
    assert_eq!(run("JSON(input, \"nothing\")", body), Ok(Value::Null));
}

#[test]
fn evaluation_errors_name_what_failed() {
    let cases: &[(&str, &str, &str)] = &[
        (
            "JSON(input, \"user.phone\")",
            r#"{"user":{}}"#,
            "JSON key `phone` is missing at `user`",
        ),
        (
            "JSON(input, \"list[5]\")",
            r#"{"list":[1]}"#,
            "index 5 is out of range",
        ),
        ("JSON(input, \"a\")", "<html>oops</html>", "not valid JSON"),
        ("JSON(input, \"a\")", r#"{"a": 1"#, "not valid JSON"),
        ("1 / (2 - 2)", "", "division by zero (column 1)"),
        ("10 + 1 % 0", "", "division by zero (column 6)"),
        ("val999", "", "device 999 does not exist"),
        (
            "ParseNumber(\"abc\")",
            "",
            "expected a number, found text `abc`",
        ),
        ("Numbers(\"1 2\")[7]", "", "index 7 is out of range"),
        ("sqrt(-1)", "", "not a finite number"),
        ("item", "", "`item` is only bound"),
    ];
    for (source, input, expected) in cases {
        let message = text_of(source, input);
        assert!(message.starts_with("eval: "), "{source}: {message}");
        assert!(message.contains(expected), "{source}: {message}");
    }
}

#[test]
fn compile_errors_name_their_column() {
    let cases: &[(&str, &str, usize)] = &[
        ("1 +", "expected a value", 4),
        ("Foo(1)", "unknown function `Foo`", 1),
        ("1 + Bar(2) + Baz()", "unknown function `Bar`", 5),
        ("round()", "takes 1 to 2 arguments, not 0", 1),
        ("JSON(input, \"a..b\")", "invalid JSON path", 16),
        ("Regex(input, \"(\")", "invalid regular expression", 14),
        ("\"abc", "unclosed text literal", 1),
        ("1 2", "unexpected number", 3),
        ("(1 + 2", "expected `)`", 7),
        ("a && b", "write `and`", 3),
        ("1 < 2 < 3", "cannot be chained", 7),
        ("JSON(input, \"$.[\")", "invalid JSONPath", 13),
        ("", "empty", 1),
    ];
    for (source, expected, column) in cases {
        match Expression::compile(source) {
            Ok(_) => panic!("{source} compiled"),
            Err(errors) => {
                let first = &errors.errors[0];
                assert!(
                    first.message.contains(expected),
                    "{source}: {}",
                    first.message
                );
                assert_eq!(first.column, *column, "{source}: {}", first.message);
            }
        }
    }
    // Every unknown function is reported, not only the first.
    let all = Expression::compile("Foo(1) + Bar(2)")
        .err()
        .map(|e| e.errors.len());
    assert_eq!(all, Some(2));
}

#[test]
fn typographic_quotes_compile_with_a_warning() {
    let compiled = Expression::compile("JSON(input,\u{201C}email\u{201D})");
    let warnings = compiled.map(|e| e.warnings().len()).unwrap_or(0);
    assert_eq!(warnings, 1);
    assert_eq!(text_of("10 \u{2013} 4", ""), "6");
}

#[test]
fn templates_splice_and_escape() {
    let template =
        Template::compile(r#"a=${ 1 + 1 }\n${ "}" }\$x"#).unwrap_or_else(|e| panic!("{e}"));
    let document = Document::new("", Default::default());
    let scope = Scope::new(&document, &EmptyEnvironment);
    let rendered = template.render_text(&scope);
    assert_eq!(rendered, Ok(Some("a=2\n}$x".to_string())));
}

#[test]
fn template_null_means_send_nothing() {
    let template =
        Template::compile("x=${ If(1 > 2, \"a\", null) }").unwrap_or_else(|e| panic!("{e}"));
    let document = Document::new("", Default::default());
    let scope = Scope::new(&document, &EmptyEnvironment);
    assert_eq!(template.render_text(&scope), Ok(None));
}

#[test]
fn unclosed_template_names_its_position() {
    let error = Template::compile("abc ${ input ")
        .err()
        .map(|e| e.errors[0].column);
    assert_eq!(error, Some(5));
    let error = Template::compile("a ${ Nope() } b")
        .err()
        .map(|e| e.errors[0].column);
    assert_eq!(error, Some(6));
}

#[test]
fn input_is_parsed_once_for_all_planned_paths() {
    let first = Expression::compile("JSON(input, \"a\")").unwrap_or_else(|e| panic!("{e}"));
    let second = Expression::compile("JSON(input, \"b.c\")").unwrap_or_else(|e| panic!("{e}"));
    let mut plan = ExtractionPlan::default();
    first.plan_into(&mut plan);
    second.plan_into(&mut plan);
    let document = Document::new(r#"{"a":1,"b":{"c":2,"d":3},"e":[1,2]}"#, plan.shared());
    let scope = Scope::new(&document, &EmptyEnvironment);
    assert_eq!(first.evaluate(&scope), Ok(Value::Number(1.0)));
    assert_eq!(second.evaluate(&scope), Ok(Value::Number(2.0)));
    // A path outside the plan still works (through a full parse).
    let other = Expression::compile("JSON(input, \"b.d\")").unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(other.evaluate(&scope), Ok(Value::Number(3.0)));
}

/// Nesting that once overflowed the stack and aborted the process is a compile error at a column.
#[test]
fn deep_nesting_is_a_compile_error_not_a_stack_overflow() {
    let cases = [
        (
            "parentheses",
            format!("{}1{}", "(".repeat(1_200), ")".repeat(1_200)),
        ),
        ("unary minus", format!("{}1", "-".repeat(2_000))),
        ("flat sum", vec!["1"; 20_000].join("+")),
        ("not", format!("{}true", "not ".repeat(2_000))),
        ("subscripts", format!("input{}", "[0]".repeat(2_000))),
        (
            "calls",
            format!("{}1{}", "abs(".repeat(1_000), ")".repeat(1_000)),
        ),
        ("1 MB of (", "(".repeat(1 << 20)),
    ];
    for (what, source) in cases {
        // Run on a thread with a small stack: a bound that only held on a big stack would fail.
        let result = std::thread::Builder::new()
            .stack_size(1024 * 1024)
            .spawn(move || run(&source, "[1]"))
            .map(|t| t.join());
        let message = match result {
            Ok(Ok(Err(message))) => message,
            other => panic!("{what}: expected a compile error, got {other:?}"),
        };
        assert!(
            message.contains("deeper than") || message.contains("over the limit"),
            "{what}: {message}"
        );
        assert!(message.contains("column"), "{what}: {message}");
    }
    // Nesting just within the bound compiles and evaluates, on the same small stack.
    let deepest = format!(
        "{}-1{}",
        "abs(".repeat(limits::MAX_DEPTH - 2),
        ")".repeat(limits::MAX_DEPTH - 2)
    );
    let result = std::thread::Builder::new()
        .stack_size(1024 * 1024)
        .spawn(move || text_of(&deepest, ""))
        .map(|t| t.join());
    assert!(
        matches!(result, Ok(Ok(ref text)) if text == "1"),
        "{result:?}"
    );
    assert_eq!(text_of(&vec!["1"; 60].join("+"), ""), "60");
}

#[test]
fn functions_refuse_to_build_huge_results_before_allocating() {
    let input = "x".repeat(300_000);
    for (source, what) in [
        (r#"Length(Replace(input, "", input))"#, "text"),
        (r#"Length(Replace(input, "x", input))"#, "text"),
        (r#"Length(Join(Split(input, "x"), input))"#, "text"),
        (
            r#"Length(Split(Replace(input, "x", "x,x,x,x,x"), ","))"#,
            "list",
        ),
        (
            r#"Length(input + Replace(input, "x", "yyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyyy"))"#,
            "text",
        ),
    ] {
        let result = run(source, &input);
        let message = result.err().unwrap_or_default();
        assert!(
            message.contains(&format!("the {what} would be")) && message.contains("over the limit"),
            "{source}: {message}"
        );
    }
    // Ordinary sizes are untouched.
    assert_eq!(text_of(r#"Replace("a-b-c", "-", "+")"#, ""), "a+b+c");
    assert_eq!(text_of(r#"Replace("ab", "", "-")"#, ""), "-a-b-");
    assert_eq!(text_of(r#"Join(Split("a,b", ","), ";")"#, ""), "a;b");
}

/// Every function of the table, called with hostile arguments in every position (8 MiB of
/// `%c`, a large number, a long list), gives a result within the limits or an error: a new
/// function that builds text or lists without checking fails here.
#[test]
fn every_function_keeps_its_results_within_the_limits() {
    let big_text = Value::text("%c".repeat(1024 * 1024));
    let hostile = [
        big_text.clone(),
        Value::Number(1e7),
        Value::list((0..100_000).map(|_| Value::text("%c%c%c%c")).collect()),
    ];
    let within = |value: &Value| match value {
        Value::Text(text) => text.len() <= limits::MAX_TEXT_BYTES,
        Value::List(items) => items.len() <= limits::MAX_LIST_LEN,
        _ => true,
    };
    for function in functions::FUNCTIONS {
        let most = function.max_args.unwrap_or(function.min_args + 2).min(4);
        for arity in function.min_args.max(1)..=most.max(1) {
            for position in 0..arity {
                // A pattern is bounded when it compiles (`REGEX_SIZE_LIMIT`, tested apart);
                // compiling megabytes of one here would only take time.
                if function.name == "Regex" && position > 0 {
                    continue;
                }
                for value in &hostile {
                    // The other arguments small, or the first a large text to work on.
                    for large_first in [false, true] {
                        if large_first && position == 0 {
                            continue;
                        }
                        let mut args: Vec<Value> = (0..arity).map(|_| Value::text("2")).collect();
                        if large_first {
                            args[0] = big_text.clone();
                        }
                        args[position] = value.clone();
                        if let Ok(result) = (function.run)(&args, &Devices) {
                            assert!(
                                within(&result),
                                "{} with a hostile argument {position} of {arity} built a result over the limits",
                                function.name
                            );
                        }
                    }
                }
            }
        }
    }
}

#[test]
fn number_literals_must_be_finite() {
    let huge = "9".repeat(400);
    let message = run(&huge, "").err().unwrap_or_default();
    assert!(
        message.contains("not a finite number") && message.contains("column 1"),
        "{message}"
    );
}

#[test]
fn the_sandbox_accepts_the_wrapped_form_with_the_same_columns() {
    let input = r#"{"email":"ann@example.com"}"#;
    assert_eq!(
        text_of(r#"${ JSON(input,"email") }"#, input),
        "ann@example.com"
    );
    assert_eq!(
        text_of(r#"${JSON(input,"email")}"#, input),
        "ann@example.com"
    );
    assert_eq!(text_of(r#"  ${ "}" }  "#, ""), "}");
    // The column of an error is where the user typed it.
    let message = run("${ 1 + nope }", "").err().unwrap_or_default();
    assert!(message.contains("column 8"), "{message}");
    // Two segments are not one wrapped expression.
    assert!(run("${1}${2}", "").is_err());
}

#[test]
fn regular_expressions_take_the_family_flavour_and_give_up_in_bounded_time() {
    // Look-behind, look-ahead and a backreference, as pasted from the family's forums.
    assert_eq!(
        text_of(r#"Regex("price: $42, tax: $7", "(?<=\$)\d+")"#, ""),
        "42,7"
    );
    assert_eq!(text_of(r#"Regex("on1 off2 on3", "\w+(?=3)")"#, ""), "on");
    assert_eq!(text_of(r#"Regex("aa bb cd", "(\w)\1")"#, ""), "aa,bb");
    // Computed patterns too.
    assert_eq!(text_of(r#"Regex("x=1;y=2", "(?<=" + "y=)\d")"#, ""), "2");
    // A catastrophic pattern is an error, not a hang.
    let started = std::time::Instant::now();
    let message = run(r#"Regex(input, "(a+)+\1b")"#, &"a".repeat(40))
        .err()
        .unwrap_or_default();
    assert!(message.contains("gave up"), "{message}");
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn parse_json_gives_json_values() {
    assert_eq!(text_of(r#"JSON(ParseJSON(input), "a")"#, r#"{"a":5}"#), "5");
    assert_eq!(
        run(r#"ParseJSON("{")"#, "")
            .err()
            .map(|e| e.contains("not valid JSON")),
        Some(true)
    );
}

#[test]
fn an_unknown_name_suggests_quotes() {
    let message = run("email", "").err().unwrap_or_default();
    assert!(
        message.contains("a text needs quotes, as in \"email\""),
        "{message}"
    );
}

/// Literal paths answered from their slots give what the tree gives, values and errors alike,
/// whatever the body: missing keys, other shapes, repeated keys, lists, objects, text that is
/// not JSON.
#[test]
fn slots_answer_as_the_tree_does() {
    let paths = [
        "id",
        "user.name",
        "user.age",
        "user.address.city",
        "stats.d[1]",
        "stats.d[7]",
        "rooms[0].name",
        "rooms[1].temp",
        "flags",
        "list",
        "big",
        "neg",
        "esc",
        "nothing",
        "deep[0][1].x",
    ];
    let bodies = [
        r#"{"id":7,"user":{"name":"ann","age":41,"address":{"city":"Oslo","zip":"0150"}},"stats":{"d":[1.5,2.5e3,-3]},"rooms":[{"name":"hall","temp":20},{"name":"bath","temp":22.5}],"flags":{"mfa":true,"x":[1,{"y":null}]},"list":[1,"two",null,[3]],"big":18446744073709551615,"neg":-9223372036854775808,"esc":"a\"b\\c\u00e9\n","nothing":null,"deep":[[0,{"x":"yes"}]]}"#,
        r#"{"user":{"name":"ann"},"user":{"age":5}}"#,
        r#"{"user":{"name":"a","name":"b"}}"#,
        r#"{"user":"text","rooms":{"0":{"name":"x"}},"stats":{"d":"no"}}"#,
        r#"{"rooms":[],"stats":{"d":[1]},"deep":[[0]]}"#,
        r#"{"user":{"address":[]},"id":"7"}"#,
        r#"[1,2,3]"#,
        r#""just text""#,
        r#"{"id":1} trailing"#,
        r#"{"id":1,"user":{"name":"ann""#,
        "",
        r#"{"id":1e400}"#,
    ]
    .map(str::to_string)
    .into_iter()
    // Hostile: nested past serde_json's depth limit, at the root and under a slot's path.
    .chain([
        "[".repeat(100_000),
        format!("{{\"user\":{{\"name\":{}}}}}", "[".repeat(100_000)),
    ]);
    let expressions: Vec<Expression> = paths
        .iter()
        .map(|p| {
            Expression::compile(&format!("JSON(input, \"{p}\")")).unwrap_or_else(|e| panic!("{e}"))
        })
        .collect();
    let mut plan = ExtractionPlan::default();
    for expression in &expressions {
        expression.plan_into(&mut plan);
    }
    let without_slots = Arc::new(plan.clone());
    let with_slots = plan.shared();
    assert!(with_slots.slots.is_some(), "these paths all take slots");
    assert!(without_slots.slots.is_none());
    for body in bodies {
        let slotted = Document::new(body.as_str(), with_slots.clone());
        let treed = Document::new(body.as_str(), without_slots.clone());
        for (path, expression) in paths.iter().zip(&expressions) {
            let a = expression.evaluate(&Scope::new(&slotted, &EmptyEnvironment));
            let b = expression.evaluate(&Scope::new(&treed, &EmptyEnvironment));
            let shown: String = body.chars().take(80).collect();
            assert_eq!(a, b, "{path} over {shown}");
        }
    }
}
