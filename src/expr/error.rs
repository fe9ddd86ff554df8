//! Errors and warnings of the expression language: compile-time diagnostics with byte spans,
//! and typed evaluation errors. Rendering (line and column in a file) happens at the edges.

use serde::Serialize;
use thiserror::Error;

/// A byte range in the expression's source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Span {
        Span { start, end }
    }

    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    pub fn shifted(self, offset: usize) -> Span {
        Span::new(self.start + offset, self.end + offset)
    }

    /// 1-based column (in characters) of the span's start within `source`.
    pub fn column_in(self, source: &str) -> usize {
        let end = self.start.min(source.len());
        let prefix = source.get(..end).unwrap_or(source);
        prefix.chars().count() + 1
    }
}

/// A problem found while compiling an expression or a template.
#[derive(Debug, Clone, PartialEq, Error, Serialize)]
#[error("{message} (column {column})")]
pub struct CompileError {
    pub message: String,
    pub span: Span,
    /// 1-based character column of `span.start`, filled in against the compiled source.
    pub column: usize,
}

impl CompileError {
    pub fn new(message: impl Into<String>, span: Span) -> CompileError {
        CompileError {
            message: message.into(),
            span,
            column: 0,
        }
    }

    pub(crate) fn located(mut self, source: &str) -> CompileError {
        self.column = self.span.column_in(source);
        self
    }
}

/// Something the compiler accepted but changed, such as a typographic quote turned into `"`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CompileWarning {
    pub message: String,
    pub span: Span,
    pub column: usize,
}

/// Why an evaluation failed. Each variant names the value or path it failed on.
#[derive(Debug, Clone, PartialEq, Error)]
#[non_exhaustive]
pub enum EvalErrorKind {
    #[error("the response is not valid JSON: {0}")]
    InvalidJson(String),
    #[error("JSON key `{key}` is missing at `{path}`")]
    MissingKey { path: String, key: String },
    #[error("index {index} is out of range at `{path}` (the list has {len} elements)")]
    IndexOutOfRange {
        path: String,
        index: i64,
        len: usize,
    },
    #[error("`{path}` is {found}, not {expected}")]
    WrongJsonShape {
        path: String,
        expected: &'static str,
        found: &'static str,
    },
    #[error("expected {expected}, found {found} `{value}`")]
    TypeMismatch {
        expected: &'static str,
        found: &'static str,
        value: String,
    },
    #[error("division by zero")]
    DivisionByZero,
    #[error("the result is not a finite number")]
    NotFinite,
    #[error("device {0} does not exist")]
    UnknownDevice(u64),
    #[error(
        "global variable `{0}` does not exist (give a default for a fresh hub: GVval(\"{0}\", 0))"
    )]
    UnknownGlobal(String),
    #[error("the {what} would be {size} long, over the limit of {limit}")]
    TooLarge {
        what: &'static str,
        size: usize,
        limit: usize,
    },
    #[error("{0}")]
    Invalid(String),
}

/// An evaluation error with the span of the sub-expression that failed.
#[derive(Debug, Clone, PartialEq, Error)]
#[error("{kind} (column {column})")]
pub struct EvalError {
    pub kind: EvalErrorKind,
    pub span: Span,
    pub column: usize,
}

/// Shortens a value for an error message so a huge body never floods a log or a page.
pub fn excerpt(text: &str) -> String {
    const LIMIT: usize = 60;
    if text.chars().count() <= LIMIT {
        text.to_string()
    } else {
        let cut: String = text.chars().take(LIMIT).collect();
        format!("{cut}…")
    }
}
