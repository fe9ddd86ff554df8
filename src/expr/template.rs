//! Templates: literal text with `${ expression }` segments and `\r`, `\n`, `\t`, `\\`, `\$`
//! escapes, as used in URLs, headers, bodies and action texts.

use std::sync::Arc;

use super::error::{CompileError, Span};
use super::eval::Scope;
use super::json_path::ExtractionPlan;
use super::lex::find_outside_literals;
use super::value::Value;
use super::{limits, CompileErrors, EvalError, EvalErrorKind, Expression};

#[derive(Debug, Clone)]
pub enum TemplatePart {
    Text(String),
    /// An expression segment, with the byte offset of its source inside the template.
    Expression(Expression, usize),
}

#[derive(Debug, Clone)]
pub struct Template {
    source: Arc<str>,
    parts: Vec<TemplatePart>,
}

impl Template {
    pub fn compile(source: &str) -> Result<Template, CompileErrors> {
        let mut parts = Vec::new();
        let mut errors = Vec::new();
        let mut literal = String::new();
        let mut rest = source;
        let mut offset = 0;
        while let Some(found) = rest.find(['$', '\\']) {
            literal.push_str(&rest[..found]);
            let at = &rest[found..];
            if let Some(escaped) = at.strip_prefix('\\') {
                let (replacement, used) = match escaped.chars().next() {
                    Some('n') => ("\n", 2),
                    Some('r') => ("\r", 2),
                    Some('t') => ("\t", 2),
                    Some('\\') => ("\\", 2),
                    Some('$') => ("$", 2),
                    _ => ("\\", 1),
                };
                literal.push_str(replacement);
                rest = &at[used..];
                offset += found + used;
                continue;
            }
            if !at.starts_with("${") {
                literal.push('$');
                rest = &at[1..];
                offset += found + 1;
                continue;
            }
            let inner_start = offset + found + 2;
            let inner_text = &at[2..];
            let Some(close) = closing_brace(inner_text) else {
                errors.push(CompileError::new(
                    "`${` is never closed with `}`",
                    Span::new(offset + found, offset + found + 2),
                ));
                break;
            };
            let inner = &inner_text[..close];
            if !literal.is_empty() {
                parts.push(TemplatePart::Text(std::mem::take(&mut literal)));
            }
            match Expression::compile(inner) {
                Ok(expression) => parts.push(TemplatePart::Expression(expression, inner_start)),
                Err(compile) => errors.extend(
                    compile
                        .errors
                        .into_iter()
                        .map(|e| CompileError::new(e.message, e.span.shifted(inner_start))),
                ),
            }
            rest = &inner_text[close + 1..];
            offset = inner_start + close + 1;
        }
        literal.push_str(rest);
        if !literal.is_empty() {
            parts.push(TemplatePart::Text(literal));
        }
        if errors.is_empty() {
            Ok(Template {
                source: source.into(),
                parts,
            })
        } else {
            Err(CompileErrors {
                errors: errors.into_iter().map(|e| e.located(source)).collect(),
            })
        }
    }

    pub fn source(&self) -> &str {
        &self.source
    }

    pub fn parts(&self) -> &[TemplatePart] {
        &self.parts
    }

    /// Whether the template is plain text with no expressions.
    pub fn is_literal(&self) -> bool {
        self.parts
            .iter()
            .all(|p| matches!(p, TemplatePart::Text(_)))
    }

    /// Whether any expression of the template reads `input`.
    pub fn reads_input(&self) -> bool {
        self.parts.iter().any(|part| match part {
            TemplatePart::Expression(expression, _) => expression.reads_input(),
            TemplatePart::Text(_) => false,
        })
    }

    pub fn plan_into(&self, plan: &mut ExtractionPlan) {
        for part in &self.parts {
            if let TemplatePart::Expression(expression, _) = part {
                expression.plan_into(plan);
            }
        }
    }

    /// Renders the template with each expression's text as it is.
    pub fn render_text(&self, scope: &Scope<'_>) -> Result<Option<String>, EvalError> {
        self.render(scope, &|value, _| Ok(value.to_text()))
    }

    /// Renders the template. `Ok(None)` means an expression gave `null`: send nothing.
    /// `splice` turns each expression's value into the text spliced in (URL-encoding, JSON
    /// encoding, refusing line breaks…); it is told which expression (0-based) it splices. The
    /// result never grows past [`limits::MAX_TEXT_BYTES`].
    pub fn render(
        &self,
        scope: &Scope<'_>,
        splice: &dyn Fn(&Value, usize) -> Result<String, EvalErrorKind>,
    ) -> Result<Option<String>, EvalError> {
        let mut out = String::new();
        let mut expression_index = 0;
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => {
                    limits::text_fits(out.len() + text.len())
                        .map_err(|kind| self.error_at(kind, Span::new(0, 0), 0))?;
                    out.push_str(text)
                }
                TemplatePart::Expression(expression, offset) => {
                    let value = expression
                        .evaluate(scope)
                        .map_err(|e| self.error_at(e.kind, e.span, *offset))?;
                    if value == Value::Null {
                        return Ok(None);
                    }
                    let whole = Span::new(0, expression.source().len());
                    let piece = splice(&value, expression_index)
                        .map_err(|kind| self.error_at(kind, whole, *offset))?;
                    limits::text_fits(out.len() + piece.len())
                        .map_err(|kind| self.error_at(kind, whole, *offset))?;
                    out.push_str(&piece);
                    expression_index += 1;
                }
            }
        }
        Ok(Some(out))
    }

    fn error_at(&self, kind: EvalErrorKind, span: Span, offset: usize) -> EvalError {
        let span = span.shifted(offset);
        EvalError {
            kind,
            span,
            column: span.column_in(&self.source),
        }
    }

    /// For a template that writes JSON: whether each expression (in order) stands inside a JSON
    /// string literal of the surrounding text (`"name": "${input}"`) rather than where a JSON
    /// value goes (`"on": ${input}`).
    pub fn json_string_contexts(&self) -> Vec<bool> {
        let mut inside_string = false;
        let mut escaped = false;
        let mut contexts = Vec::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => {
                    for c in text.chars() {
                        if escaped {
                            escaped = false;
                        } else if inside_string && c == '\\' {
                            escaped = true;
                        } else if c == '"' {
                            inside_string = !inside_string;
                        }
                    }
                }
                TemplatePart::Expression(..) => contexts.push(inside_string),
            }
        }
        contexts
    }
}

/// Position of the `}` that closes a `${`, skipping braces inside text literals.
fn closing_brace(text: &str) -> Option<usize> {
    find_outside_literals(text, '}')
}
