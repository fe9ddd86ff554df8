//! Templates: literal text with `${ expression }` segments and `\r`, `\n`, `\t`, `\\`, `\$`
//! escapes, as used in URLs, headers, bodies and action texts.

use std::sync::Arc;

use super::error::{CompileError, Span};
use super::eval::Scope;
use super::json_path::ExtractionPlan;
use super::lex::literal_ranges;
use super::value::Value;
use super::{CompileErrors, EvalError, Expression};

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

    pub fn plan_into(&self, plan: &mut ExtractionPlan) {
        for part in &self.parts {
            if let TemplatePart::Expression(expression, _) = part {
                expression.plan_into(plan);
            }
        }
    }

    /// Renders the template. `Ok(None)` means an expression gave `null`: send nothing.
    /// `encode` transforms each expression's text (e.g. URL-encoding) before it is spliced in.
    pub fn render(
        &self,
        scope: &Scope<'_>,
        encode: &dyn Fn(&str) -> String,
    ) -> Result<Option<String>, EvalError> {
        let mut out = String::new();
        for part in &self.parts {
            match part {
                TemplatePart::Text(text) => out.push_str(text),
                TemplatePart::Expression(expression, offset) => {
                    let value = expression.evaluate(scope).map_err(|mut e| {
                        e.span = e.span.shifted(*offset);
                        e.column = e.span.column_in(&self.source);
                        e
                    })?;
                    if value == Value::Null {
                        return Ok(None);
                    }
                    out.push_str(&encode(&value.to_text()));
                }
            }
        }
        Ok(Some(out))
    }
}

/// Position of the `}` that closes a `${`, skipping braces inside text literals.
fn closing_brace(text: &str) -> Option<usize> {
    let literals = literal_ranges(text);
    text.char_indices()
        .find(|(i, c)| *c == '}' && !literals.iter().any(|(s, e)| s < i && i < e))
        .map(|(i, _)| i)
}
