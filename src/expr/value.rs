//! Runtime values of the expression language and how they convert to text, numbers and truth.

use std::fmt;
use std::sync::Arc;

/// A value produced by evaluating an expression.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    /// "Nothing": in a device box it means "leave the device alone", in an action "send nothing".
    Null,
    Bool(bool),
    Number(f64),
    Text(Arc<str>),
    List(Arc<Vec<Value>>),
    /// A JSON object kept as a tree; it reads as its JSON text wherever text is expected.
    Object(Arc<serde_json::Value>),
}

impl Value {
    pub fn text(s: impl Into<Arc<str>>) -> Value {
        Value::Text(s.into())
    }

    pub fn list(items: Vec<Value>) -> Value {
        Value::List(Arc::new(items))
    }

    /// The name of this value's type as users see it in errors and in the sandbox.
    pub fn type_name(&self) -> &'static str {
        match self {
            Value::Null => "null",
            Value::Bool(_) => "boolean",
            Value::Number(_) => "number",
            Value::Text(_) => "text",
            Value::List(_) => "list",
            Value::Object(_) => "object",
        }
    }

    pub fn is_null(&self) -> bool {
        matches!(self, Value::Null)
    }

    /// The value as text, the way it is spliced into templates and device strings.
    pub fn to_text(&self) -> String {
        self.as_text().into_owned()
    }

    /// [`Value::to_text`], borrowed when the value is text already.
    pub fn as_text(&self) -> std::borrow::Cow<'_, str> {
        match self {
            Value::Text(t) => std::borrow::Cow::Borrowed(t),
            Value::Number(n) => std::borrow::Cow::Owned(format_number(*n)),
            other => std::borrow::Cow::Owned(other.to_string()),
        }
    }

    /// [`Value::to_text`] as shared text: text already is shared without a copy.
    pub fn shared_text(&self) -> Arc<str> {
        match self {
            Value::Text(t) => t.clone(),
            other => Arc::from(other.as_text()),
        }
    }

    /// The value as a number, if it is one or is text that reads as one.
    pub fn as_number(&self) -> Option<f64> {
        match self {
            Value::Number(n) => Some(*n),
            Value::Bool(b) => Some(if *b { 1.0 } else { 0.0 }),
            Value::Text(t) => parse_number_text(t),
            _ => None,
        }
    }

    /// Truth as conditions see it: `null`, `false`, `0`, empty text and the texts
    /// "false", "off" and "0" are false; everything else is true.
    pub fn is_truthy(&self) -> bool {
        match self {
            Value::Null => false,
            Value::Bool(b) => *b,
            Value::Number(n) => *n != 0.0 && !n.is_nan(),
            Value::Text(t) => {
                let t = t.trim();
                !(t.is_empty()
                    || t.eq_ignore_ascii_case("false")
                    || t.eq_ignore_ascii_case("off")
                    || t == "0")
            }
            Value::List(items) => !items.is_empty(),
            Value::Object(_) => true,
        }
    }

    /// Converts a JSON node into a value: scalars become numbers, text, booleans or null,
    /// arrays become lists, objects stay trees.
    pub fn from_json(node: &serde_json::Value) -> Value {
        match node {
            serde_json::Value::Null => Value::Null,
            serde_json::Value::Bool(b) => Value::Bool(*b),
            serde_json::Value::Number(n) => Value::Number(n.as_f64().unwrap_or(f64::NAN)),
            serde_json::Value::String(s) => Value::text(s.as_str()),
            serde_json::Value::Array(items) => {
                Value::list(items.iter().map(Value::from_json).collect())
            }
            serde_json::Value::Object(_) => Value::Object(Arc::new(node.clone())),
        }
    }

    /// This value written as JSON text: text as a JSON string, numbers and booleans as
    /// themselves, lists and objects as JSON.
    pub fn to_json_text(&self) -> Result<String, super::error::EvalErrorKind> {
        match self {
            Value::Number(n) if !n.is_finite() => Err(super::error::EvalErrorKind::NotFinite),
            Value::Number(n) => Ok(format_number(*n)),
            Value::Bool(b) => Ok(b.to_string()),
            Value::Null => Ok("null".into()),
            Value::Object(o) => Ok(o.to_string()),
            Value::List(items) => {
                let mut out = String::from("[");
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        out.push(',');
                    }
                    out.push_str(&item.to_json_text()?);
                }
                out.push(']');
                Ok(out)
            }
            Value::Text(text) => serde_json::to_string(&**text)
                .map_err(|e| super::error::EvalErrorKind::Invalid(e.to_string())),
        }
    }

    /// Converts this value back into JSON (used when a list or object is navigated by a path
    /// or sent as a JSON body).
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Value::Null => serde_json::Value::Null,
            Value::Bool(b) => serde_json::Value::Bool(*b),
            Value::Number(n) => serde_json::Number::from_f64(*n)
                .map(serde_json::Value::Number)
                .unwrap_or(serde_json::Value::Null),
            Value::Text(t) => serde_json::Value::String(t.to_string()),
            Value::List(items) => {
                serde_json::Value::Array(items.iter().map(Value::to_json).collect())
            }
            Value::Object(o) => (**o).clone(),
        }
    }
}

/// Reads a number the way users write one: surrounding blanks ignored, no thousands separators.
pub fn parse_number_text(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    // Rust accepts "inf" and "NaN"; users never mean those.
    if !t.bytes().any(|b| b.is_ascii_digit()) {
        return None;
    }
    t.parse::<f64>().ok().filter(|n| n.is_finite())
}

/// Formats a number for people: at most 10 decimals (so floating-point dust such as
/// 21.999999999999996 prints as 22), no trailing zeros, no ".0" on whole numbers.
pub fn format_number(n: f64) -> String {
    if !n.is_finite() || n.abs() >= 1e15 {
        return format!("{n}");
    }
    let fixed = format!("{n:.10}");
    let trimmed = fixed.trim_end_matches('0').trim_end_matches('.');
    if trimmed == "-0" {
        "0".to_string()
    } else {
        trimmed.to_string()
    }
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => Ok(()),
            Value::Bool(b) => write!(f, "{b}"),
            Value::Number(n) => f.write_str(&format_number(*n)),
            Value::Text(t) => f.write_str(t),
            Value::List(items) => {
                for (position, item) in items.iter().enumerate() {
                    if position > 0 {
                        f.write_str(",")?;
                    }
                    write!(f, "{item}")?;
                }
                Ok(())
            }
            Value::Object(o) => write!(f, "{o}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_print_without_fraction() {
        assert_eq!(format_number(3.0), "3");
        assert_eq!(format_number(-12.0), "-12");
        assert_eq!(format_number(2.5), "2.5");
        assert_eq!(format_number(0.1 + 0.2), "0.3");
        assert_eq!(format_number(39.6 * 5.0 / 9.0), "22");
        assert_eq!(format_number(-0.0), "0");
    }

    #[test]
    fn truthiness_follows_the_documented_rules() {
        assert!(!Value::text("off").is_truthy());
        assert!(!Value::text(" 0 ").is_truthy());
        assert!(Value::text("on").is_truthy());
        assert!(!Value::Null.is_truthy());
        assert!(Value::Number(-1.0).is_truthy());
    }

    #[test]
    fn number_text_needs_digits() {
        assert_eq!(parse_number_text(" 30.5 "), Some(30.5));
        assert_eq!(parse_number_text("inf"), None);
        assert_eq!(parse_number_text("NaN"), None);
        assert_eq!(parse_number_text("12abc"), None);
    }
}
