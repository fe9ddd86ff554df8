//! Evaluation: runs a compiled tree against an input document, the bound `item`/`index`, and an
//! [`Environment`] that answers for devices, globals, the HTTP response and the clock.

use std::cmp::Ordering;
use std::sync::{Arc, OnceLock};

use super::ast::{BinaryOp, JsonSelector, Node, NodeKind};
use super::error::{EvalError, EvalErrorKind};
use super::functions::{self, number, values_equal, FunctionKind};
use super::json_path::{DottedPath, ExtractionPlan};
use super::value::Value;

/// What an expression can ask of the world outside it. The expression core knows no device
/// store, no HTTP client and no clock of its own.
pub trait Environment: Sync {
    fn device_value(&self, _reference: u64) -> Option<f64> {
        None
    }
    fn device_string(&self, _reference: u64) -> Option<String> {
        None
    }
    fn global_value(&self, _name: &str) -> Option<f64> {
        None
    }
    fn global_string(&self, _name: &str) -> Option<String> {
        None
    }
    fn header(&self, _name: &str) -> Option<String> {
        None
    }
    fn status(&self) -> Option<u16> {
        None
    }
    /// The MQTT topic a message came in on (MQTT profiles).
    fn topic(&self) -> Option<String> {
        None
    }
    /// A field of the profile's OAuth token answer (never the tokens themselves).
    fn token_field(&self, _name: &str) -> Option<serde_json::Value> {
        None
    }
    /// Where this Bellhop's own web server answers, during a run of `serve`.
    fn server_url(&self) -> Option<String> {
        None
    }
    fn now(&self) -> f64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as f64 / 1000.0)
            .unwrap_or(0.0)
    }
}

/// An environment with no devices, globals or response: for the sandbox and for tests.
pub struct EmptyEnvironment;

impl Environment for EmptyEnvironment {}

/// The `input` of one evaluation: its text, and its JSON form parsed at most once, on first use,
/// keeping only what the plan says the expressions need.
pub struct Document {
    text: Arc<str>,
    plan: Arc<ExtractionPlan>,
    parsed: OnceLock<Result<Arc<serde_json::Value>, String>>,
    whole: OnceLock<Result<Arc<serde_json::Value>, String>>,
    /// The planned paths' values, straight from one parse (`None`: the tree answers).
    slots: OnceLock<Option<Vec<Option<Value>>>>,
}

impl Document {
    pub fn new(text: impl Into<Arc<str>>, plan: Arc<ExtractionPlan>) -> Document {
        Document {
            text: text.into(),
            plan,
            parsed: OnceLock::new(),
            whole: OnceLock::new(),
            slots: OnceLock::new(),
        }
    }

    pub fn text(&self) -> &Arc<str> {
        &self.text
    }

    /// The whole tree (for JSONPath and computed paths, or paths the plan did not foresee).
    fn whole_tree(&self) -> Result<&Arc<serde_json::Value>, EvalErrorKind> {
        if self.plan.needs_whole_tree || self.plan.trie.is_empty() {
            // The planned parse is the whole tree in this case: share it.
            return self.planned_tree();
        }
        self.whole
            .get_or_init(|| parse_whole(&self.text))
            .as_ref()
            .map_err(|e| EvalErrorKind::InvalidJson(e.clone()))
    }

    fn planned_tree(&self) -> Result<&Arc<serde_json::Value>, EvalErrorKind> {
        self.parsed
            .get_or_init(|| {
                if self.plan.needs_whole_tree || self.plan.trie.is_empty() {
                    parse_whole(&self.text)
                } else {
                    self.plan
                        .trie
                        .extract(&self.text)
                        .map(Arc::new)
                        .map_err(|e| json_error_text(&e))
                }
            })
            .as_ref()
            .map_err(|e| EvalErrorKind::InvalidJson(e.clone()))
    }

    fn select(&self, path: &Arc<DottedPath>) -> Result<Value, EvalErrorKind> {
        // A planned literal path is answered from its slot; a slot left empty (the path is
        // missing or meets another shape) gets its answer, or its error, from the tree.
        if let Some(slots) = &self.plan.slots {
            if let Some(slot) = slots.slot_of(path) {
                let values = self.slots.get_or_init(|| slots.fill(&self.text));
                if let Some(Some(value)) = values.as_ref().and_then(|values| values.get(slot)) {
                    return Ok(value.clone());
                }
            }
        }
        if self.plan.needs_whole_tree || self.plan.trie.covers(path) {
            path.select(self.planned_tree()?)
        } else {
            path.select(self.whole_tree()?)
        }
    }
}

fn parse_whole(text: &str) -> Result<Arc<serde_json::Value>, String> {
    serde_json::from_str(text)
        .map(Arc::new)
        .map_err(|e| json_error_text(&e))
}

fn json_error_text(error: &serde_json::Error) -> String {
    // serde_json's text already ends in "at line L column C".
    error.to_string()
}

/// Everything one evaluation reads.
pub struct Scope<'a> {
    pub input: &'a Document,
    pub item: Option<&'a Value>,
    pub index: Option<usize>,
    pub env: &'a dyn Environment,
}

impl<'a> Scope<'a> {
    pub fn new(input: &'a Document, env: &'a dyn Environment) -> Scope<'a> {
        Scope {
            input,
            item: None,
            index: None,
            env,
        }
    }

    pub fn with_item(&self, item: &'a Value, index: usize) -> Scope<'a> {
        Scope {
            input: self.input,
            item: Some(item),
            index: Some(index),
            env: self.env,
        }
    }
}

pub(crate) fn eval(node: &Node, scope: &Scope<'_>) -> Result<Value, EvalError> {
    let fail = |kind: EvalErrorKind| EvalError {
        kind,
        span: node.span,
        column: 0,
    };
    match &node.kind {
        NodeKind::Literal(value) => Ok(value.clone()),
        NodeKind::Input => Ok(Value::Text(scope.input.text().clone())),
        NodeKind::Item => scope.item.cloned().ok_or_else(|| {
            fail(EvalErrorKind::Invalid(
                "`item` is only bound while a name expression fans out over a list".into(),
            ))
        }),
        NodeKind::Index => scope.index.map(|i| Value::Number(i as f64)).ok_or_else(|| {
            fail(EvalErrorKind::Invalid(
                "`index` is only bound while a name expression fans out over a list".into(),
            ))
        }),
        NodeKind::DeviceValue(reference) => scope
            .env
            .device_value(*reference)
            .map(Value::Number)
            .ok_or_else(|| fail(EvalErrorKind::UnknownDevice(*reference))),
        NodeKind::DeviceString(reference) => scope
            .env
            .device_string(*reference)
            .map(Value::text)
            .ok_or_else(|| fail(EvalErrorKind::UnknownDevice(*reference))),
        NodeKind::Negate(inner) => {
            let value = eval(inner, scope)?;
            number(&value).map(|n| Value::Number(-n)).map_err(fail)
        }
        NodeKind::Not(inner) => Ok(Value::Bool(!eval(inner, scope)?.is_truthy())),
        NodeKind::And(a, b) => Ok(Value::Bool(
            eval(a, scope)?.is_truthy() && eval(b, scope)?.is_truthy(),
        )),
        NodeKind::Or(a, b) => Ok(Value::Bool(
            eval(a, scope)?.is_truthy() || eval(b, scope)?.is_truthy(),
        )),
        NodeKind::If(condition, then, otherwise) => {
            if eval(condition, scope)?.is_truthy() {
                eval(then, scope)
            } else {
                eval(otherwise, scope)
            }
        }
        NodeKind::Binary(op, a, b) => {
            let left = eval(a, scope)?;
            let right = eval(b, scope)?;
            binary(*op, &left, &right).map_err(fail)
        }
        NodeKind::Subscript(list, index) => {
            let container = eval(list, scope)?;
            let position = eval(index, scope)?;
            subscript(&container, &position).map_err(fail)
        }
        NodeKind::Json { source, selector } => json(source, selector, scope).map_err(fail),
        NodeKind::Regex {
            subject,
            pattern,
            group,
        } => {
            let text = eval(subject, scope)?.to_text();
            let group = group.as_ref().map(|g| eval(g, scope)).transpose()?;
            functions::regex_matches(pattern, &text, group.as_ref()).map_err(fail)
        }
        NodeKind::Call(function, args) => {
            debug_assert!(matches!(
                function.kind,
                FunctionKind::Plain | FunctionKind::Regex
            ));
            let values = args
                .iter()
                .map(|arg| eval(arg, scope))
                .collect::<Result<Vec<_>, _>>()?;
            (function.run)(&values, scope.env).map_err(fail)
        }
    }
}

fn json(source: &Node, selector: &JsonSelector, scope: &Scope<'_>) -> Result<Value, EvalErrorKind> {
    let reads_input = matches!(source.kind, NodeKind::Input);
    let computed_path;
    let path_text = match selector {
        JsonSelector::Computed(path) => {
            computed_path = eval(path, scope).map_err(|e| e.kind)?.to_text();
            Some(computed_path.as_str())
        }
        _ => None,
    };
    // A computed path is parsed the same way a literal one is.
    let computed = match path_text {
        Some(text) if text.trim_start().starts_with('$') => {
            if let Some(problem) = super::limits::jsonpath_problem(text) {
                return Err(EvalErrorKind::Invalid(problem));
            }
            let query = jsonpath_rust::parser::parse_json_path(text)
                .map_err(|e| EvalErrorKind::Invalid(format!("invalid JSONPath `{text}`: {e}")))?;
            Some(JsonSelector::JsonPath {
                query: Arc::new(query),
                single: !text.contains(['*', '?', ':', ',']) && !text.contains(".."),
            })
        }
        Some(text) => Some(JsonSelector::Dotted(Arc::new(
            DottedPath::parse(text).map_err(|e| {
                EvalErrorKind::Invalid(format!("invalid JSON path `{text}`: {}", e.message))
            })?,
        ))),
        None => None,
    };
    let selector = computed.as_ref().unwrap_or(selector);

    let owned_tree;
    let tree: &serde_json::Value = if reads_input {
        match selector {
            JsonSelector::Dotted(path) => return scope.input.select(path),
            _ => scope.input.whole_tree()?,
        }
    } else {
        owned_tree = match eval(source, scope).map_err(|e| e.kind)? {
            Value::Object(object) => object,
            Value::List(items) => Arc::new(Value::List(items).to_json()),
            other => Arc::new(
                serde_json::from_str(&other.to_text())
                    .map_err(|e| EvalErrorKind::InvalidJson(e.to_string()))?,
            ),
        };
        &owned_tree
    };
    match selector {
        JsonSelector::Dotted(path) => path.select(tree),
        JsonSelector::JsonPath { query, single } => {
            if !*single {
                let text = query.to_string();
                if text.contains("..") {
                    super::limits::jsonpath_document_fits(tree, &text)?;
                }
            }
            let found = jsonpath_rust::query::js_path_process(query, tree)
                .map_err(|e| EvalErrorKind::Invalid(format!("JSONPath failed: {e}")))?;
            // Each result is copied out of the document: bounded before any copy.
            super::limits::list_fits(found.len())?;
            super::limits::jsonpath_results_fit(found.iter().map(|r| r.val))?;
            if *single && found.len() == 1 {
                Ok(Value::from_json(found[0].val))
            } else {
                Ok(Value::list(
                    found.iter().map(|r| Value::from_json(r.val)).collect(),
                ))
            }
        }
        JsonSelector::Computed(_) => {
            Err(EvalErrorKind::Invalid("internal: unresolved path".into()))
        }
    }
}

fn binary(op: BinaryOp, left: &Value, right: &Value) -> Result<Value, EvalErrorKind> {
    let both_numbers =
        || -> Result<(f64, f64), EvalErrorKind> { Ok((number(left)?, number(right)?)) };
    let finite = |n: f64| {
        if n.is_finite() {
            Ok(Value::Number(n))
        } else {
            Err(EvalErrorKind::NotFinite)
        }
    };
    match op {
        BinaryOp::Add => match (left, right) {
            (Value::Number(a), Value::Number(b)) => finite(a + b),
            (Value::Null, _) | (_, Value::Null) => {
                Err(functions::mismatch("a number or text", &Value::Null))
            }
            (Value::Text(_) | Value::Object(_), _) | (_, Value::Text(_) | Value::Object(_)) => {
                let (left, right) = (left.to_text(), right.to_text());
                super::limits::text_fits(left.len() + right.len())?;
                Ok(Value::text(left + &right))
            }
            _ => {
                let (a, b) = both_numbers()?;
                finite(a + b)
            }
        },
        BinaryOp::Subtract => both_numbers().and_then(|(a, b)| finite(a - b)),
        BinaryOp::Multiply => both_numbers().and_then(|(a, b)| finite(a * b)),
        BinaryOp::Divide | BinaryOp::Remainder => {
            let (a, b) = both_numbers()?;
            if b == 0.0 {
                return Err(EvalErrorKind::DivisionByZero);
            }
            finite(if op == BinaryOp::Divide { a / b } else { a % b })
        }
        BinaryOp::Equal => Ok(Value::Bool(values_equal(left, right))),
        BinaryOp::NotEqual => Ok(Value::Bool(!values_equal(left, right))),
        BinaryOp::Less | BinaryOp::LessEq | BinaryOp::Greater | BinaryOp::GreaterEq => {
            let ordering = compare(left, right)?;
            Ok(Value::Bool(match op {
                BinaryOp::Less => ordering == Ordering::Less,
                BinaryOp::LessEq => ordering != Ordering::Greater,
                BinaryOp::Greater => ordering == Ordering::Greater,
                _ => ordering != Ordering::Less,
            }))
        }
    }
}

fn compare(left: &Value, right: &Value) -> Result<Ordering, EvalErrorKind> {
    match (left.as_number(), right.as_number()) {
        (Some(a), Some(b)) => a.partial_cmp(&b).ok_or(EvalErrorKind::NotFinite),
        _ => match (left, right) {
            (Value::Text(a), Value::Text(b)) => Ok(a.cmp(b)),
            (Value::Number(_), other) | (other, _) => Err(functions::mismatch("a number", other)),
        },
    }
}

fn subscript(container: &Value, position: &Value) -> Result<Value, EvalErrorKind> {
    let index = number(position)?;
    if index.fract() != 0.0 {
        return Err(functions::mismatch("a whole number", position));
    }
    let index = index as i64;
    let pick = |len: usize| -> Result<usize, EvalErrorKind> {
        let resolved = if index < 0 { len as i64 + index } else { index };
        usize::try_from(resolved)
            .ok()
            .filter(|&p| p < len)
            .ok_or_else(|| EvalErrorKind::IndexOutOfRange {
                path: format!("a list of {len}"),
                index,
                len,
            })
    };
    match container {
        Value::List(items) => Ok(items[pick(items.len())?].clone()),
        Value::Text(text) => {
            let chars: Vec<char> = text.chars().collect();
            Ok(Value::text(chars[pick(chars.len())?].to_string()))
        }
        other => Err(functions::mismatch("a list", other)),
    }
}
