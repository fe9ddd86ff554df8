//! Diagnostics: one problem in one file, with the line of the key it concerns and, for
//! expressions, the column inside the expression. Shared by `check`, the API and the tests.

use std::fmt;
use std::path::{Path, PathBuf};

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub severity: Severity,
    pub file: PathBuf,
    /// 1-based line of the key in the file, when known.
    pub line: Option<usize>,
    /// The key, as a dotted path (`devices.values`, `device[1].feature[0].name`).
    pub key: String,
    /// 1-based column inside the expression or template the key holds, when the problem is in one.
    pub column: Option<usize>,
    pub message: String,
}

impl Diagnostic {
    pub fn error(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Error,
            file: file.to_path_buf(),
            line: None,
            key: key.into(),
            column: None,
            message: message.into(),
        }
    }

    pub fn warning(file: &Path, key: impl Into<String>, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(file, key, message)
        }
    }

    pub fn at_line(mut self, line: Option<usize>) -> Diagnostic {
        self.line = self.line.or(line);
        self
    }

    pub fn at_column(mut self, column: usize) -> Diagnostic {
        self.column = Some(column);
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.file.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        let severity = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, ": {severity}")?;
        if !self.key.is_empty() {
            write!(f, " in `{}`", self.key)?;
        }
        if let Some(column) = self.column {
            write!(f, " at column {column}")?;
        }
        write!(f, ": {}", self.message)
    }
}

/// Collects the diagnostics of one file (a profile, an event), locating each key in the text.
pub struct Collector<'a> {
    pub file: &'a Path,
    pub text: &'a str,
    pub diagnostics: Vec<Diagnostic>,
}

impl<'a> Collector<'a> {
    pub fn new(file: &'a Path, text: &'a str) -> Collector<'a> {
        Collector {
            file,
            text,
            diagnostics: Vec::new(),
        }
    }

    /// Parses the file's TOML into `T`, reporting a syntax error (line, column) or every unknown
    /// key; `None` when it could not be read at all.
    pub fn parse<T: serde::de::DeserializeOwned>(&mut self) -> Option<T> {
        let deserializer = match toml::de::Deserializer::parse(self.text) {
            Ok(d) => d,
            Err(e) => {
                self.diagnostics.push(toml_error(self.file, self.text, &e));
                return None;
            }
        };
        let mut unknown = Vec::new();
        let value: T =
            match serde_ignored::deserialize(deserializer, |path| unknown.push(path.to_string())) {
                Ok(value) => value,
                Err(e) => {
                    self.diagnostics.push(toml_error(self.file, self.text, &e));
                    return None;
                }
            };
        for key in unknown {
            let key = bracket_indexes(&key);
            self.error(&key, format!("unknown key `{key}`"));
        }
        Some(value)
    }

    /// Checks the file's `version` and gives the name of the `kind` of thing it defines: its
    /// `name`, or the file name without `.toml`. Problems are recorded.
    pub fn version_and_name(
        &mut self,
        kind: &str,
        version: Option<u32>,
        supported: u32,
        name: Option<String>,
    ) -> String {
        if let Some(version) = version.filter(|v| *v != supported) {
            self.error(
                "version",
                format!("{kind} version {version} is not supported (this Bellhop reads version {supported})"),
            );
        }
        let name = name.unwrap_or_else(|| {
            self.file
                .file_stem()
                .map(|s| s.to_string_lossy().into_owned())
                .unwrap_or_default()
        });
        if let Some(problem) = super::resolve::name_problem(&name, kind) {
            self.error("name", problem);
        }
        name
    }

    /// An error at `key`: a message, or any error that says itself.
    pub fn error(&mut self, key: &str, message: impl std::fmt::Display) {
        let line = line_of_key(self.text, key);
        self.diagnostics
            .push(Diagnostic::error(self.file, key, message.to_string()).at_line(line));
    }

    pub fn warning(&mut self, key: &str, message: impl std::fmt::Display) {
        let line = line_of_key(self.text, key);
        self.diagnostics
            .push(Diagnostic::warning(self.file, key, message.to_string()).at_line(line));
    }

    /// Reports compile errors of an expression or template held by `key`. `source` is the
    /// key's whole text and `offset` where the compiled part starts in it.
    pub fn compile_errors(
        &mut self,
        key: &str,
        source: &str,
        offset: usize,
        errors: crate::expr::CompileErrors,
    ) {
        let line = line_of_key(self.text, key);
        for error in errors.errors {
            let column = column_at(source, offset + error.span.start);
            self.diagnostics.push(
                Diagnostic::error(self.file, key, error.message)
                    .at_line(line)
                    .at_column(column),
            );
        }
    }

    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(Diagnostic::is_error)
    }
}

/// 1-based character column of a byte offset in `source`.
pub fn column_at(source: &str, byte: usize) -> usize {
    source
        .get(..byte.min(source.len()))
        .map(|s| s.chars().count())
        .unwrap_or(0)
        + 1
}

/// serde_ignored writes `device.1.name`; diagnostics use `device[1].name`.
fn bracket_indexes(path: &str) -> String {
    let mut out = String::new();
    for part in path.split('.').filter(|p| *p != "?") {
        if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{part}]"));
        } else {
            if !out.is_empty() {
                out.push('.');
            }
            out.push_str(part);
        }
    }
    out
}

fn toml_error(file: &Path, text: &str, error: &toml::de::Error) -> Diagnostic {
    let line = error.span().map(|s| line_number(text, s.start));
    let column = error.span().map(|s| {
        let start = s.start.min(text.len());
        let line_start = text[..start].rfind('\n').map(|p| p + 1).unwrap_or(0);
        text[line_start..start].chars().count() + 1
    });
    let message = error.message().trim().to_string();
    let mut diagnostic =
        Diagnostic::error(file, "", format!("invalid TOML: {message}")).at_line(line);
    if let Some(column) = column {
        diagnostic = diagnostic.at_column(column);
    }
    diagnostic
}

/// Finds the 1-based line of a dotted key path (`a.b`, `device[1].name`) in TOML text: the line
/// of the deepest part of the path that exists.
pub fn line_of_key(text: &str, key_path: &str) -> Option<usize> {
    enum Cursor<'a> {
        Table(&'a dyn toml_edit::TableLike),
        Array(&'a toml_edit::ArrayOfTables),
        Leaf,
    }
    fn enter(item: &toml_edit::Item) -> Cursor<'_> {
        match item {
            toml_edit::Item::ArrayOfTables(array) => Cursor::Array(array),
            other => other
                .as_table_like()
                .map(Cursor::Table)
                .unwrap_or(Cursor::Leaf),
        }
    }
    let document = toml_edit::Document::parse(text.to_string()).ok()?;
    let mut cursor = Cursor::Table(document.as_table());
    let mut span = None;
    for part in split_key_path(key_path) {
        match (part, cursor) {
            (KeyPart::Key(name), Cursor::Table(table)) => {
                let Some((key, child)) = table.get_key_value(&name) else {
                    break;
                };
                span = key.span().or(span);
                cursor = enter(child);
            }
            (KeyPart::Index(index), Cursor::Array(array)) => {
                let Some(table) = array.get(index) else { break };
                span = table.span().or(span);
                cursor = Cursor::Table(table);
            }
            _ => break,
        }
    }
    span.map(|s| line_number(text, s.start))
}

enum KeyPart {
    Key(String),
    Index(usize),
}

fn split_key_path(path: &str) -> Vec<KeyPart> {
    let mut parts = Vec::new();
    for piece in path.split('.') {
        let mut rest = piece;
        if let Some(open) = rest.find('[') {
            if open > 0 {
                parts.push(KeyPart::Key(rest[..open].to_string()));
            }
            rest = &rest[open..];
            while let Some(stripped) = rest.strip_prefix('[') {
                let close = stripped.find(']').unwrap_or(stripped.len());
                if let Ok(index) = stripped[..close].parse() {
                    parts.push(KeyPart::Index(index));
                }
                rest = stripped.get(close + 1..).unwrap_or("");
            }
        } else if !rest.is_empty() {
            parts.push(KeyPart::Key(rest.to_string()));
        }
    }
    parts
}

/// 1-based line number of a byte offset.
pub fn line_number(text: &str, offset: usize) -> usize {
    let end = offset.min(text.len());
    text.as_bytes()[..end]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_lines_of_nested_and_array_keys() {
        let text = "name = \"x\"\n\n[devices]\nvalues = \"1\"\n\n[[device]]\nname = \"a\"\n\n[[device]]\nname = \"b\"\n[[device.feature]]\nname = \"f\"\n";
        assert_eq!(line_of_key(text, "name"), Some(1));
        assert_eq!(line_of_key(text, "devices.values"), Some(4));
        assert_eq!(line_of_key(text, "device[1].name"), Some(10));
        assert_eq!(line_of_key(text, "device[1].feature[0].name"), Some(12));
        assert_eq!(line_of_key(text, "nothing"), None);
    }
}
