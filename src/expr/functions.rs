//! The function table: one entry per function (name, arity, signature, documentation and
//! implementation). The parser, `bellhop functions`, the docs and the UI's autocomplete all read it.

use chrono::{DateTime, Local, NaiveDate, NaiveDateTime, TimeZone, Utc};

use super::error::EvalErrorKind;
use super::eval::Environment;
use super::limits;
use super::value::{format_number, parse_number_text, Value};

pub type Implementation = fn(&[Value], &dyn Environment) -> Result<Value, EvalErrorKind>;

#[derive(Debug, Clone, Copy)]
pub enum FunctionKind {
    /// Lazy: only the chosen branch is evaluated.
    If,
    /// Paths are compiled at load time; see `ast::JsonSelector`.
    Json,
    /// Literal patterns are compiled at load time; computed ones through `run`.
    Regex,
    Plain,
}

pub struct Function {
    pub name: &'static str,
    pub min_args: usize,
    pub max_args: Option<usize>,
    pub signature: &'static str,
    pub doc: &'static str,
    pub kind: FunctionKind,
    pub run: Implementation,
}

impl std::fmt::Debug for Function {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name)
    }
}

impl Function {
    pub fn arity_text(&self) -> String {
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        match self.max_args {
            Some(max) if max == self.min_args => format!("{max} argument{}", plural(max)),
            Some(max) => format!("{} to {max} arguments", self.min_args),
            None => format!(
                "at least {} argument{}",
                self.min_args,
                plural(self.min_args)
            ),
        }
    }
}

macro_rules! function {
    ($name:literal, $min:expr, $max:expr, $sig:literal, $doc:literal, $kind:ident, $run:expr) => {
        Function {
            name: $name,
            min_args: $min,
            max_args: $max,
            signature: $sig,
            doc: $doc,
            kind: FunctionKind::$kind,
            run: $run,
        }
    };
}

fn not_direct(_: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    Err(EvalErrorKind::Invalid(
        "internal: special form called directly".into(),
    ))
}

/// Every function of the language, in the order the docs list them.
pub static FUNCTIONS: &[Function] = &[
    function!("JSON", 2, Some(2), "JSON(source, path)",
        "Reads JSON text (usually `input`). The path is dotted (`user.emails[0]`, `rooms[*].temp`, `data[\"odd key\"]`) or JSONPath when it starts with `$`. A scalar gives a number, text, boolean or null; an array a list; an object stays an object (its JSON text when used as text).",
        Json, not_direct),
    function!("If", 3, Some(3), "If(condition, then, else)",
        "`then` when the condition is true, otherwise `else`. Only the chosen branch runs. A `null` result means: do nothing.",
        If, not_direct),
    function!("sin", 1, Some(1), "sin(degrees)", "Sine of an angle in degrees.", Plain, |a, _| trig(a, f64::sin)),
    function!("cos", 1, Some(1), "cos(degrees)", "Cosine of an angle in degrees.", Plain, |a, _| trig(a, f64::cos)),
    function!("tan", 1, Some(1), "tan(degrees)", "Tangent of an angle in degrees.", Plain, |a, _| trig(a, f64::tan)),
    function!("ceiling", 1, Some(1), "ceiling(x)", "Rounds up to a whole number.", Plain, |a, _| Ok(Value::Number(number(&a[0])?.ceil()))),
    function!("floor", 1, Some(1), "floor(x)", "Rounds down to a whole number.", Plain, |a, _| Ok(Value::Number(number(&a[0])?.floor()))),
    function!("round", 1, Some(2), "round(x[, digits])", "Rounds half away from zero, to `digits` decimals (default 0).", Plain, round),
    function!("abs", 1, Some(1), "abs(x)", "Absolute value.", Plain, |a, _| Ok(Value::Number(number(&a[0])?.abs()))),
    function!("min", 1, None, "min(a, b, …)", "The smallest number (of the arguments, or of one list).", Plain, |a, _| extreme(a, f64::min)),
    function!("max", 1, None, "max(a, b, …)", "The largest number (of the arguments, or of one list).", Plain, |a, _| extreme(a, f64::max)),
    function!("sqrt", 1, Some(1), "sqrt(x)", "Square root.", Plain, |a, _| finite(number(&a[0])?.sqrt())),
    function!("pow", 2, Some(2), "pow(x, y)", "x to the power y.", Plain, |a, _| finite(number(&a[0])?.powf(number(&a[1])?))),
    function!("ParseNumber", 1, Some(1), "ParseNumber(text)", "Reads a number from text, such as `\" 30.5 \"`.", Plain,
        |a, _| match &a[0] {
            Value::Number(n) => Ok(Value::Number(*n)),
            other => parse_number_text(&other.to_text()).map(Value::Number).ok_or_else(|| mismatch("a number", other)),
        }),
    function!("Length", 1, Some(1), "Length(text)", "Number of characters of a text (or elements of a list).", Plain,
        |a, _| Ok(Value::Number(match &a[0] { Value::List(items) => items.len(), other => other.to_text().chars().count() } as f64))),
    function!("Numbers", 1, Some(1), "Numbers(text)", "List of the numbers in a text: `Numbers(\"a 12 b -3.5\")` is [12, -3.5].", Plain, numbers),
    function!("Words", 1, Some(1), "Words(text)", "List of the blank-separated words of a text that are not numbers.", Plain,
        |a, _| bounded_list(a[0].to_text().split_whitespace().filter(|w| parse_number_text(w).is_none()).map(Value::text))),
    function!("OnOffs", 1, Some(1), "OnOffs(text)", "List of the words `on` and `off` in a text, in order, lowercase.", Plain,
        |a, _| bounded_list(a[0].to_text().split(|c: char| !c.is_alphanumeric()).filter_map(|w| {
            let lower = w.to_ascii_lowercase();
            (lower == "on" || lower == "off").then(|| Value::text(lower))
        }))),
    function!("Substring", 2, Some(3), "Substring(text, start[, length])", "Characters from `start` (0-based), to the end or `length` long.", Plain, substring),
    function!("Split", 2, Some(2), "Split(text, separator)", "List of the pieces of a text between separators.", Plain, split),
    function!("Query", 2, Some(2), "Query(text, name)", "The (first) value of a parameter in URL-encoded text, such as the query string a listening profile receives: `Query(\"t=21.5&h=40\", \"t\")` is `\"21.5\"`; null when it is absent.", Plain, query),
    function!("Regex", 2, Some(3), "Regex(text, pattern[, group])", "List of all matches of a regular expression, or of one capture group of each match. .NET-style patterns work: look-around (`(?<=…)`, `(?!…)`), backreferences (`\\1`), named groups; a pattern that backtracks too long is an error.", Regex, regex_computed),
    function!("Replace", 3, Some(3), "Replace(text, from, to)", "Replaces every `from` with `to`.", Plain, replace),
    function!("Trim", 1, Some(1), "Trim(text)", "Removes blanks at both ends.", Plain, |a, _| Ok(Value::text(a[0].to_text().trim()))),
    function!("Upper", 1, Some(1), "Upper(text)", "Uppercase.", Plain, |a, _| Ok(Value::text(a[0].to_text().to_uppercase()))),
    function!("Lower", 1, Some(1), "Lower(text)", "Lowercase.", Plain, |a, _| Ok(Value::text(a[0].to_text().to_lowercase()))),
    function!("Contains", 2, Some(2), "Contains(text or list, part)", "Whether a text contains a part, or a list an element.", Plain,
        |a, _| Ok(Value::Bool(match &a[0] {
            Value::List(items) => items.iter().any(|i| values_equal(i, &a[1])),
            other => other.to_text().contains(a[1].to_text().as_str()),
        }))),
    function!("StartsWith", 2, Some(2), "StartsWith(text, prefix)", "Whether a text starts with a prefix.", Plain,
        |a, _| Ok(Value::Bool(a[0].to_text().starts_with(a[1].to_text().as_str())))),
    function!("EndsWith", 2, Some(2), "EndsWith(text, suffix)", "Whether a text ends with a suffix.", Plain,
        |a, _| Ok(Value::Bool(a[0].to_text().ends_with(a[1].to_text().as_str())))),
    function!("Join", 1, Some(2), "Join(list[, separator])", "Joins the elements of a list into text (separator default `,`).", Plain, join),
    function!("ParseJSON", 1, Some(1), "ParseJSON(text)", "The JSON value a text holds (object, list, text, number, boolean). In a `json` body a value is written as JSON (text as a JSON string), so this is how JSON text from the action is spliced in as JSON on purpose: `{\"on\": ${ParseJSON(input)}}`.", Plain, parse_json),
    function!("Count", 1, Some(2), "Count(list) or Count(text, part)", "Number of elements of a list, or of occurrences of a part in a text.", Plain,
        |a, _| match a.get(1) {
            None => Ok(Value::Number(list(&a[0])?.len() as f64)),
            Some(part) => {
                let part = part.to_text();
                if part.is_empty() { return Err(EvalErrorKind::Invalid("Count needs a non-empty part".into())); }
                Ok(Value::Number(a[0].to_text().matches(part.as_str()).count() as f64))
            }
        }),
    function!("Hex", 1, Some(1), "Hex(\"41 31 0D\")", "Text made of the given bytes (pairs of hex digits separated by blanks); each byte becomes the character with that code.", Plain, hex),
    function!("Now", 0, Some(0), "Now()", "The current time, in seconds since 1970-01-01 UTC.", Plain, |_, env| Ok(Value::Number(env.now()))),
    function!("FormatDate", 2, Some(2), "FormatDate(time, format)", "Formats a time (seconds since 1970) in local time with strftime codes, e.g. `\"%Y-%m-%d %H:%M\"`.", Plain, format_date),
    function!("ParseDate", 1, Some(2), "ParseDate(text[, format])", "Reads a time as seconds since 1970: RFC 3339, RFC 2822, `YYYY-MM-DD[ HH:MM:SS]` (local) or the given strftime format.", Plain, parse_date),
    function!("Header", 1, Some(1), "Header(name)", "A header of the HTTP response, or of the call a listening profile received (case-insensitive name); null when it is absent.", Plain,
        |a, env| Ok(env.header(&a[0].to_text()).map(Value::text).unwrap_or(Value::Null))),
    function!("Topic", 0, Some(0), "Topic()", "The MQTT topic the message came in on (MQTT profiles); null otherwise.", Plain,
        |_, env| Ok(env.topic().map(Value::text).unwrap_or(Value::Null))),
    function!("Token", 1, Some(1), "Token(name)", "A field of the OAuth token answer the profile was authorized with, e.g. `Token(\"api_domain\")` (Zoho's API host), also written `token.api_domain`; null when absent. The tokens themselves are never readable.", Plain,
        |a, env| Ok(env.token_field(&a[0].to_text()).map(|v| Value::from_json(&v)).unwrap_or(Value::Null))),
    function!("ServerURL", 0, Some(0), "ServerURL()", "Where this Bellhop's own web server answers (`http://127.0.0.1:8765`), for a profile that calls Bellhop itself, such as the demo's `url = '${ServerURL()}/demo/rooms.json'`; null outside a run of `serve`.", Plain,
        |_, env| Ok(env.server_url().map(Value::text).unwrap_or(Value::Null))),
    function!("Status", 0, Some(0), "Status()", "The HTTP status code of the response.", Plain,
        |_, env| Ok(env.status().map(|s| Value::Number(f64::from(s))).unwrap_or(Value::Null))),
    function!("GVval", 1, Some(2), "GVval(\"name\"[, default])", "The value of a global variable. A global that does not exist yet is an error (the expression, and a condition using it, fails and says so), unless a default is given: `GVval(\"away\", 0)` reads 0 on a fresh hub.", Plain,
        |a, env| { let name = a[0].to_text(); match (env.global_value(&name), a.get(1)) { (Some(v), _) => Ok(Value::Number(v)), (None, Some(default)) => Ok(default.clone()), (None, None) => Err(EvalErrorKind::UnknownGlobal(name)) } }),
    function!("GVstr", 1, Some(2), "GVstr(\"name\"[, default])", "The string of a global variable; a missing one is an error unless a default is given, as for `GVval`.", Plain,
        |a, env| { let name = a[0].to_text(); match (env.global_string(&name), a.get(1)) { (Some(v), _) => Ok(Value::text(v)), (None, Some(default)) => Ok(default.clone()), (None, None) => Err(EvalErrorKind::UnknownGlobal(name)) } }),
];

/// The function table as a Markdown table (for `profiles/README.md`, kept in step by a test).
pub fn markdown_table() -> String {
    let mut out = String::from("| function | what it does |\n| --- | --- |\n");
    for function in FUNCTIONS {
        out.push_str(&format!(
            "| `{}` | {} |\n",
            function.signature,
            function.doc.replace('|', "\\|")
        ));
    }
    out
}

/// Finds a function by name, ignoring case.
pub fn lookup(name: &str) -> Option<&'static Function> {
    FUNCTIONS.iter().find(|f| f.name.eq_ignore_ascii_case(name))
}

pub(crate) fn mismatch(expected: &'static str, found: &Value) -> EvalErrorKind {
    EvalErrorKind::TypeMismatch {
        expected,
        found: found.type_name(),
        value: super::error::excerpt(&found.to_text()),
    }
}

pub(crate) fn number(value: &Value) -> Result<f64, EvalErrorKind> {
    value.as_number().ok_or_else(|| mismatch("a number", value))
}

fn whole(value: &Value) -> Result<i64, EvalErrorKind> {
    let n = number(value)?;
    if n.fract() != 0.0 {
        return Err(mismatch("a whole number", value));
    }
    Ok(n as i64)
}

fn list(value: &Value) -> Result<&[Value], EvalErrorKind> {
    match value {
        Value::List(items) => Ok(items),
        other => Err(mismatch("a list", other)),
    }
}

fn finite(n: f64) -> Result<Value, EvalErrorKind> {
    if n.is_finite() {
        Ok(Value::Number(n))
    } else {
        Err(EvalErrorKind::NotFinite)
    }
}

/// Equality as `==` sees it: numbers (and numeric text) by value, everything else by text.
pub(crate) fn values_equal(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Null, Value::Null) => true,
        (Value::Null, _) | (_, Value::Null) => false,
        (Value::Number(_), _) | (_, Value::Number(_)) => match (a.as_number(), b.as_number()) {
            (Some(x), Some(y)) => x == y,
            _ => false,
        },
        (Value::Bool(x), Value::Bool(y)) => x == y,
        _ => a.to_text() == b.to_text(),
    }
}

fn trig(args: &[Value], f: fn(f64) -> f64) -> Result<Value, EvalErrorKind> {
    let result = f(number(&args[0])?.to_radians());
    // sin(180) should be 0, not 1.2e-16: trim the floating-point dust.
    finite((result * 1e12).round() / 1e12)
}

fn round(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let x = number(&args[0])?;
    let digits = match args.get(1) {
        Some(d) => whole(d)?.clamp(-15, 15) as i32,
        None => 0,
    };
    let factor = 10f64.powi(digits);
    finite((x * factor).round() / factor)
}

fn extreme(args: &[Value], pick: fn(f64, f64) -> f64) -> Result<Value, EvalErrorKind> {
    let items: &[Value] = match args {
        [Value::List(items)] => items,
        _ => args,
    };
    let mut numbers = items.iter().map(number);
    let first = numbers
        .next()
        .ok_or_else(|| EvalErrorKind::Invalid("min/max of an empty list".into()))??;
    numbers
        .try_fold(first, |acc, n| Ok(pick(acc, n?)))
        .map(Value::Number)
}

/// A number in a text (`Numbers()`): a fixed pattern, compiled once.
#[allow(clippy::expect_used)] // a literal, compiled by the function table's tests
static NUMBER: std::sync::LazyLock<regex::Regex> = std::sync::LazyLock::new(|| {
    regex::Regex::new(r"-?\d+(?:\.\d+)?").expect("the number pattern compiles")
});

fn numbers(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let pattern = &*NUMBER;
    let text = args[0].to_text();
    bounded_list(
        pattern
            .find_iter(&text)
            .filter_map(|m| m.as_str().parse::<f64>().ok())
            .map(Value::Number),
    )
}

/// A list of what `items` yields, refused once it passes [`limits::MAX_LIST_LEN`].
fn bounded_list(items: impl Iterator<Item = Value>) -> Result<Value, EvalErrorKind> {
    let mut list = Vec::new();
    for item in items {
        limits::list_fits(list.len() + 1)?;
        list.push(item);
    }
    Ok(Value::list(list))
}

fn substring(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    let total = text.chars().count();
    let start = whole(&args[1])?;
    if start < 0 || start as usize > total {
        return Err(EvalErrorKind::IndexOutOfRange {
            path: super::error::excerpt(&text),
            index: start,
            len: total,
        });
    }
    let rest = text.chars().skip(start as usize);
    let piece: String = match args.get(2) {
        Some(length) => {
            let length = whole(length)?;
            if length < 0 {
                return Err(mismatch("a length of 0 or more", &args[2]));
            }
            rest.take(length as usize).collect()
        }
        None => rest.collect(),
    };
    Ok(Value::text(piece))
}

/// Compiles a regular expression in the family's (.NET-like) flavour: look-around and
/// backreferences work; patterns without them run on the linear-time engine; backtracking is
/// bounded so a pathological pattern is an error, not a hang.
pub(crate) fn compile_regex(pattern: &str) -> Result<fancy_regex::Regex, Box<fancy_regex::Error>> {
    fancy_regex::RegexBuilder::new(pattern)
        .backtrack_limit(limits::REGEX_BACKTRACK_LIMIT)
        .delegate_size_limit(limits::REGEX_SIZE_LIMIT)
        .build()
        .map_err(Box::new)
}

/// Matches of `pattern` in `text`: whole matches, or one capture group of each match.
pub(crate) fn regex_matches(
    pattern: &fancy_regex::Regex,
    text: &str,
    group: Option<&Value>,
) -> Result<Value, EvalErrorKind> {
    let group = match group {
        Some(g) => whole(g)?,
        None => 0,
    };
    if group < 0 || group as usize >= pattern.captures_len() {
        return Err(EvalErrorKind::Invalid(format!(
            "the pattern has no capture group {group}"
        )));
    }
    let mut found = Vec::new();
    for captures in pattern.captures_iter(text) {
        let captures = captures
            .map_err(|e| EvalErrorKind::Invalid(format!("the regular expression gave up: {e}")))?;
        if let Some(m) = captures.get(group as usize) {
            limits::list_fits(found.len() + 1)?;
            found.push(Value::text(m.as_str()));
        }
    }
    Ok(Value::list(found))
}

fn regex_computed(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let pattern = compile_regex(&args[1].to_text())
        .map_err(|e| EvalErrorKind::Invalid(format!("invalid regular expression: {e}")))?;
    regex_matches(&pattern, &args[0].to_text(), args.get(2))
}

/// `Replace(text, from, to)`, its size known before anything is built.
fn replace(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    let from = args[1].to_text();
    let to = args[2].to_text();
    // An empty `from` matches before every character and at the end.
    let matches = if from.is_empty() {
        text.chars().count() + 1
    } else {
        text.matches(from.as_str()).count()
    };
    let size = matches
        .checked_mul(to.len())
        .and_then(|added| {
            (text.len() - matches.saturating_mul(from.len()).min(text.len())).checked_add(added)
        })
        .unwrap_or(usize::MAX);
    limits::text_fits(size)?;
    Ok(Value::text(text.replace(from.as_str(), &to)))
}

fn join(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let separator = args
        .get(1)
        .map(Value::to_text)
        .unwrap_or_else(|| ",".into());
    let items = list(&args[0])?;
    let mut out = String::new();
    for (position, item) in items.iter().enumerate() {
        let text = item.to_text();
        let sep = if position > 0 { separator.len() } else { 0 };
        limits::text_fits(out.len() + sep + text.len())?;
        if position > 0 {
            out.push_str(&separator);
        }
        out.push_str(&text);
    }
    Ok(Value::text(out))
}

fn split(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let separator = args[1].to_text();
    if separator.is_empty() {
        return Err(EvalErrorKind::Invalid(
            "Split needs a non-empty separator".into(),
        ));
    }
    let text = args[0].to_text();
    bounded_list(text.split(separator.as_str()).map(Value::text))
}

/// `Query(text, name)`: a parameter of URL-encoded text (`a=1&b=x%20y`).
fn query(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    let name = args[1].to_text();
    let text = text.strip_prefix('?').unwrap_or(&text);
    Ok(url::form_urlencoded::parse(text.as_bytes())
        .find(|(key, _)| *key == name)
        .map(|(_, value)| Value::text(value.into_owned()))
        .unwrap_or(Value::Null))
}

/// `ParseJSON(text)`: the JSON value a text holds.
fn parse_json(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    serde_json::from_str::<serde_json::Value>(&text)
        .map(|json| Value::from_json(&json))
        .map_err(|e| EvalErrorKind::InvalidJson(e.to_string()))
}

fn hex(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    let mut out = String::new();
    for pair in text.split_whitespace() {
        let byte = u8::from_str_radix(pair, 16).map_err(|_| {
            EvalErrorKind::Invalid(format!("`{pair}` is not a byte in hex (00 to FF)"))
        })?;
        out.push(char::from(byte));
    }
    Ok(Value::text(out))
}

fn format_date(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let seconds = number(&args[0])?;
    let format = args[1].to_text();
    let utc = DateTime::<Utc>::from_timestamp(seconds.floor() as i64, 0).ok_or_else(|| {
        EvalErrorKind::Invalid(format!("{} is not a time", format_number(seconds)))
    })?;
    let local = utc.with_timezone(&Local);
    // Each specifier may grow (`%c` is 24 characters): the text is written within the limit,
    // and the writing stops at it.
    let mut out = BoundedText::default();
    use std::fmt::Write;
    match write!(out, "{}", local.format(&format)) {
        Ok(()) => Ok(Value::text(out.text)),
        Err(_) if out.over => Err(EvalErrorKind::TooLarge {
            what: "text",
            size: out.text.len() + 1,
            limit: super::limits::MAX_TEXT_BYTES,
        }),
        Err(_) => Err(EvalErrorKind::Invalid(format!(
            "invalid date format `{}`",
            super::error::excerpt(&format)
        ))),
    }
}

/// A text that refuses to grow past [`super::limits::MAX_TEXT_BYTES`] (the writer fails there).
#[derive(Default)]
struct BoundedText {
    text: String,
    over: bool,
}

impl std::fmt::Write for BoundedText {
    fn write_str(&mut self, piece: &str) -> std::fmt::Result {
        if self.text.len() + piece.len() > super::limits::MAX_TEXT_BYTES {
            self.over = true;
            return Err(std::fmt::Error);
        }
        self.text.push_str(piece);
        Ok(())
    }
}

fn parse_date(args: &[Value], _: &dyn Environment) -> Result<Value, EvalErrorKind> {
    let text = args[0].to_text();
    let text = text.trim();
    let invalid =
        || EvalErrorKind::Invalid(format!("`{}` is not a date", super::error::excerpt(text)));
    let local = |naive: NaiveDateTime| {
        Local
            .from_local_datetime(&naive)
            .earliest()
            .map(|t| t.timestamp() as f64)
    };
    let seconds = match args.get(1) {
        Some(format) => {
            let format = format.to_text();
            DateTime::parse_from_str(text, &format)
                .map(|t| t.timestamp() as f64)
                .ok()
                .or_else(|| {
                    NaiveDateTime::parse_from_str(text, &format)
                        .ok()
                        .and_then(local)
                })
                .or_else(|| {
                    NaiveDate::parse_from_str(text, &format)
                        .ok()
                        .and_then(|d| d.and_hms_opt(0, 0, 0))
                        .and_then(local)
                })
        }
        None => DateTime::parse_from_rfc3339(text)
            .or_else(|_| DateTime::parse_from_rfc2822(text))
            .map(|t| t.timestamp() as f64)
            .ok()
            .or_else(|| {
                NaiveDateTime::parse_from_str(text, "%Y-%m-%d %H:%M:%S")
                    .ok()
                    .and_then(local)
            })
            .or_else(|| {
                NaiveDate::parse_from_str(text, "%Y-%m-%d")
                    .ok()
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .and_then(local)
            }),
    };
    seconds.map(Value::Number).ok_or_else(invalid)
}
