//! The family's four input matchers, which decide whether what a profile received fires an
//! event: a text at a position, an expression, a number compared with a constant, an on/off
//! word. Numbers and on/off words are found exactly as `Numbers()` and `OnOffs()` find them.

use crate::expr::functions::lookup;
use crate::expr::{Document, EmptyEnvironment, Environment, EvalError, Expression, Scope, Value};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Comparison {
    Equal,
    NotEqual,
    Less,
    LessOrEqual,
    Greater,
    GreaterOrEqual,
}

impl Comparison {
    pub fn parse(text: &str) -> Option<Comparison> {
        Some(match text.trim() {
            "=" | "==" => Comparison::Equal,
            "!=" | "<>" => Comparison::NotEqual,
            "<" => Comparison::Less,
            "<=" => Comparison::LessOrEqual,
            ">" => Comparison::Greater,
            ">=" => Comparison::GreaterOrEqual,
            _ => return None,
        })
    }

    pub fn holds(self, left: f64, right: f64) -> bool {
        match self {
            Comparison::Equal => left == right,
            Comparison::NotEqual => left != right,
            Comparison::Less => left < right,
            Comparison::LessOrEqual => left <= right,
            Comparison::Greater => left > right,
            Comparison::GreaterOrEqual => left >= right,
        }
    }
}

#[derive(Debug, Clone)]
pub enum InputMatcher {
    /// `text` occurs anywhere (`position` 0) or starts at the 1-based character `position`.
    Text { text: String, position: usize },
    /// The expression is true (over `input`, devices and globals).
    Expression(Expression),
    /// The `index`-th number (0-based) compared with a constant.
    Number {
        index: usize,
        compare: Comparison,
        to: f64,
    },
    /// The word `on` (or `off`) occurs as a whole word, case-insensitive; with an index, the
    /// `index`-th on/off word (0-based) is that word.
    OnOff { on: bool, index: Option<usize> },
}

/// A list function of the language (`Numbers`, `OnOffs`) applied to `input`.
fn list_of(function: &str, input: &str) -> Vec<Value> {
    let Some(function) = lookup(function) else {
        return Vec::new();
    };
    match (function.run)(&[Value::text(input)], &EmptyEnvironment) {
        Ok(Value::List(items)) => items.to_vec(),
        _ => Vec::new(),
    }
}

impl InputMatcher {
    pub fn matches(&self, input: &str, env: &dyn Environment) -> Result<bool, EvalError> {
        Ok(match self {
            InputMatcher::Text { text, position: 0 } => input.contains(text.as_str()),
            InputMatcher::Text { text, position } => input
                .char_indices()
                .nth(position - 1)
                .is_some_and(|(at, _)| input[at..].starts_with(text.as_str())),
            InputMatcher::Expression(expression) => {
                let document = Document::new(input, expression.plan());
                expression
                    .evaluate(&Scope::new(&document, env))?
                    .is_truthy()
            }
            InputMatcher::Number { index, compare, to } => list_of("Numbers", input)
                .get(*index)
                .and_then(Value::as_number)
                .is_some_and(|n| compare.holds(n, *to)),
            InputMatcher::OnOff { on, index } => {
                let wanted = if *on { "on" } else { "off" };
                let words = list_of("OnOffs", input);
                match index {
                    Some(i) => words.get(*i).is_some_and(|w| w.to_text() == wanted),
                    None => words.iter().any(|w| w.to_text() == wanted),
                }
            }
        })
    }

    pub fn describe(&self) -> String {
        match self {
            InputMatcher::Text { text, position } => format!("text `{text}` ({position})"),
            InputMatcher::Expression(e) => format!("expression `{}`", e.source()),
            InputMatcher::Number { index, compare, to } => {
                format!("number {index} {compare:?} {to}")
            }
            InputMatcher::OnOff { on, index } => format!(
                "{}{}",
                if *on { "on" } else { "off" },
                index.map(|i| format!(" (word {i})")).unwrap_or_default()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(t: &str, position: usize) -> InputMatcher {
        InputMatcher::Text {
            text: t.into(),
            position,
        }
    }

    #[test]
    fn the_family_examples_hold() {
        let rain = "The rain in Spain stays mainly in the plane";
        let env = EmptyEnvironment;
        let yes = |m: InputMatcher, input: &str| m.matches(input, &env).unwrap_or(false);
        assert!(yes(text("Spain", 0), rain));
        assert!(!yes(text("rain", 6), rain));
        assert!(yes(text("rain", 5), rain));
        assert!(!yes(text("Italy", 0), rain));
        let sensor = "temp=56.26&name=Living&event=0&hilo=0&hum=19.86";
        assert!(yes(text("name", 0), sensor));
        assert!(!yes(text("event", 6), sensor));
        assert!(yes(text("temp", 1), sensor));
        assert!(!yes(text("temp", 999), sensor));
        let number = |index, compare: &str, to| InputMatcher::Number {
            index,
            compare: Comparison::parse(compare).unwrap_or(Comparison::Equal),
            to,
        };
        assert!(yes(number(0, ">", 50.0), sensor));
        assert!(yes(number(3, "=", 19.86), sensor));
        assert!(!yes(number(9, ">", 0.0), sensor));
        let onoff = |on, index| InputMatcher::OnOff { on, index };
        assert!(yes(onoff(true, None), "light=ON&fan=off"));
        assert!(yes(onoff(false, Some(1)), "light=ON&fan=off"));
        assert!(!yes(onoff(true, Some(1)), "light=ON&fan=off"));
        assert!(!yes(onoff(true, None), "online"), "whole words only");
        let expression =
            Expression::compile(r#"Contains(input, "hum") and Numbers(input)[0] > 50"#)
                .unwrap_or_else(|e| panic!("{e}"));
        assert!(yes(InputMatcher::Expression(expression), sensor));
        assert_eq!(Comparison::parse("=>"), None);
    }
}
