//! The expression language (expression core): compiling bare expressions and `${ … }` templates
//! once at load time, and evaluating them against a response or an action text.
//!
//! Owns: lexing, parsing, the function table, JSON path selection and one-pass extraction,
//! evaluation. Knows nothing of profiles, devices, storage, HTTP or the web; the outside world
//! is reached only through the [`Environment`] trait.

mod ast;
pub mod error;
mod eval;
pub mod functions;
pub mod json_path;
mod lex;
pub mod limits;
mod parse;
mod slots;
mod template;
pub mod value;

use std::sync::Arc;

pub use ast::JsonSelector;
pub use error::{CompileError, CompileWarning, EvalError, EvalErrorKind, Span};
pub use eval::{Document, EmptyEnvironment, Environment, Scope};
pub use json_path::{DottedPath, ExtractionPlan, PathTrie};
pub use lex::{inside_ranges, literal_ranges};
pub use template::{Template, TemplatePart};
pub use value::Value;

use ast::{Node, NodeKind};

/// A compiled bare expression.
#[derive(Debug, Clone)]
pub struct Expression {
    source: Arc<str>,
    root: Node,
    warnings: Vec<CompileWarning>,
    /// Its own plan, made the first time it is asked for.
    plan: std::sync::OnceLock<Arc<ExtractionPlan>>,
}

/// All problems of one compilation; the first is usually the one to fix.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}", .errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
pub struct CompileErrors {
    pub errors: Vec<CompileError>,
}

impl Expression {
    /// Compiles `source`, reporting every unknown function, wrong arity and bad literal path or
    /// pattern (a syntax error stops at its first occurrence).
    pub fn compile(source: &str) -> Result<Expression, CompileErrors> {
        let located = |errors: Vec<CompileError>| CompileErrors {
            errors: errors.into_iter().map(|e| e.located(source)).collect(),
        };
        if source.len() > limits::MAX_SOURCE_BYTES {
            let at = Span::new(limits::MAX_SOURCE_BYTES, limits::MAX_SOURCE_BYTES);
            return Err(located(vec![CompileError::new(
                format!(
                    "the expression is {} bytes long, over the limit of {}",
                    source.len(),
                    limits::MAX_SOURCE_BYTES
                ),
                at,
            )]));
        }
        let lexed = lex::lex(source).map_err(|e| located(vec![e]))?;
        let mut parser = parse::Parser::new(lexed.tokens, source);
        let root = parser.parse_all().map_err(|e| {
            let mut errors = parser.problems.clone();
            errors.push(e);
            errors.sort_by_key(|e| e.span.start);
            located(errors)
        })?;
        if !parser.problems.is_empty() {
            return Err(located(std::mem::take(&mut parser.problems)));
        }
        let warnings = lexed
            .warnings
            .into_iter()
            .map(|mut w| {
                w.column = w.span.column_in(source);
                w
            })
            .collect();
        Ok(Expression {
            source: source.into(),
            root,
            warnings,
            plan: std::sync::OnceLock::new(),
        })
    }

    /// Compiles what a user types into a sandbox: a bare expression, or the family's
    /// `${ … }`-wrapped form (columns stay those of what was typed).
    pub fn compile_sandbox(source: &str) -> Result<Expression, CompileErrors> {
        Expression::compile(&unwrap_template(source))
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn warnings(&self) -> &[CompileWarning] {
        &self.warnings
    }

    /// Evaluates against a scope; errors carry the column of the failing sub-expression.
    pub fn evaluate(&self, scope: &Scope<'_>) -> Result<Value, EvalError> {
        eval::eval(&self.root, scope).map_err(|mut e| {
            e.column = e.span.column_in(&self.source);
            e
        })
    }

    /// The text of an expression that is a literal and nothing else (`"Hall"`): a name a
    /// loader can check without running anything. `None` when the value is computed.
    pub fn literal_text(&self) -> Option<String> {
        match &self.root.kind {
            NodeKind::Literal(value) => Some(value.to_text()),
            _ => None,
        }
    }

    /// Whether the expression reads `input` anywhere.
    pub fn reads_input(&self) -> bool {
        let mut reads = false;
        self.root
            .walk(&mut |node| reads |= matches!(node.kind, NodeKind::Input));
        reads
    }

    /// Adds what this expression reads from `input` as JSON to a plan.
    pub fn plan_into(&self, plan: &mut ExtractionPlan) {
        self.root.walk(&mut |node| {
            if let NodeKind::Json { source, selector } = &node.kind {
                if matches!(source.kind, NodeKind::Input) {
                    match selector {
                        JsonSelector::Dotted(path) => plan.insert(path),
                        _ => plan.needs_whole_tree = true,
                    }
                }
            }
        });
    }

    /// A plan for evaluating this expression alone (made once: a trigger's matcher or a
    /// condition asks for it on every evaluation).
    pub fn plan(&self) -> Arc<ExtractionPlan> {
        self.plan
            .get_or_init(|| {
                let mut plan = ExtractionPlan::default();
                self.plan_into(&mut plan);
                plan.shared()
            })
            .clone()
    }
}

/// `${ expression }` (the whole text one template segment) becomes the expression with the
/// wrapper blanked out, so columns are unchanged; anything else is returned as it is.
fn unwrap_template(source: &str) -> std::borrow::Cow<'_, str> {
    let trimmed = source.trim();
    let Some(inner) = trimmed.strip_prefix("${") else {
        return source.into();
    };
    // The wrapper's `}` must be the one that closes the `${`, and the text's last.
    match lex::find_outside_literals(inner, '}') {
        Some(close) if close == inner.len() - 1 => {
            let start = source.len() - source.trim_start().len();
            let end = start + trimmed.len() - 1;
            let mut blanked = String::with_capacity(source.len());
            blanked.push_str(&source[..start]);
            blanked.push_str("  ");
            blanked.push_str(&source[start + 2..end]);
            blanked.push(' ');
            blanked.push_str(&source[end + 1..]);
            blanked.into()
        }
        _ => source.into(),
    }
}

/// Evaluates one expression against `input` text with no devices: the sandbox.
pub fn evaluate_once(
    source: &str,
    input: &str,
    env: &dyn Environment,
) -> Result<Result<Value, EvalError>, CompileErrors> {
    let expression = Expression::compile_sandbox(source)?;
    let document = Document::new(input, expression.plan());
    Ok(expression.evaluate(&Scope::new(&document, env)))
}

#[cfg(test)]
mod tests;
