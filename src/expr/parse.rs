//! The parser: tokens → a checked [`Node`] tree. Precedence climbs from `or` (loosest) through
//! `and`, `not`, comparisons, `+ -`, `* / %` and unary minus to `[i]` (tightest). Function
//! names and arities are checked against the function table here, and every such problem is
//! collected rather than stopping at the first.

use std::sync::Arc;

use super::ast::{BinaryOp, JsonSelector, Node, NodeKind};
use super::error::{CompileError, Span};
use super::functions::{self, Function, FunctionKind};
use super::json_path::DottedPath;
use super::lex::{Token, TokenKind};
use super::limits::MAX_DEPTH;
use super::value::Value;

pub struct Parser<'s> {
    tokens: Vec<Token>,
    position: usize,
    source: &'s str,
    /// How many `expression` calls are open: bounded by [`MAX_DEPTH`].
    nesting: usize,
    /// Problems that do not stop parsing (unknown functions, wrong arity, bad literal paths).
    pub problems: Vec<CompileError>,
}

const OR_POWER: u8 = 1;
const AND_POWER: u8 = 2;
const NOT_POWER: u8 = 3;
const COMPARE_POWER: u8 = 4;
const ADD_POWER: u8 = 5;
const MULTIPLY_POWER: u8 = 6;
const UNARY_POWER: u8 = 7;

impl<'s> Parser<'s> {
    pub fn new(tokens: Vec<Token>, source: &'s str) -> Parser<'s> {
        Parser {
            tokens,
            position: 0,
            source,
            nesting: 0,
            problems: Vec::new(),
        }
    }

    fn peek(&self) -> &Token {
        // The lexer always ends the list with Eof, and `advance` never moves past it.
        &self.tokens[self.position.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.position < self.tokens.len() - 1 {
            self.position += 1;
        }
        token
    }

    fn expect(&mut self, kind: TokenKind, what: &str) -> Result<Token, CompileError> {
        let token = self.peek().clone();
        if token.kind == kind {
            Ok(self.advance())
        } else {
            Err(CompileError::new(
                format!("expected {what}, found {}", token.kind.describe()),
                token.span,
            ))
        }
    }

    /// Parses one whole expression; anything after it is an error.
    pub fn parse_all(&mut self) -> Result<Node, CompileError> {
        if self.peek().kind == TokenKind::Eof {
            return Err(CompileError::new(
                "the expression is empty",
                self.peek().span,
            ));
        }
        let node = self.expression(0)?;
        let rest = self.peek().clone();
        if rest.kind != TokenKind::Eof {
            return Err(CompileError::new(
                format!(
                    "unexpected {} after a complete expression",
                    rest.kind.describe()
                ),
                rest.span,
            ));
        }
        Ok(node)
    }

    fn keyword(&self) -> Option<String> {
        match &self.peek().kind {
            TokenKind::Ident(name) => Some(name.to_ascii_lowercase()),
            _ => None,
        }
    }

    fn infix_power(&self) -> Option<u8> {
        match &self.peek().kind {
            TokenKind::Ident(_) => match self.keyword().as_deref() {
                Some("or") => Some(OR_POWER),
                Some("and") => Some(AND_POWER),
                _ => None,
            },
            TokenKind::Less
            | TokenKind::LessEq
            | TokenKind::Greater
            | TokenKind::GreaterEq
            | TokenKind::EqEq
            | TokenKind::NotEq => Some(COMPARE_POWER),
            TokenKind::Plus | TokenKind::Minus => Some(ADD_POWER),
            TokenKind::Star | TokenKind::Slash | TokenKind::Percent => Some(MULTIPLY_POWER),
            _ => None,
        }
    }

    /// Refuses a node deeper than [`MAX_DEPTH`], naming where the limit was crossed.
    fn bounded(&self, node: Node, at: Span) -> Result<Node, CompileError> {
        if node.depth > MAX_DEPTH {
            Err(too_deep(at))
        } else {
            Ok(node)
        }
    }

    fn expression(&mut self, min_power: u8) -> Result<Node, CompileError> {
        if self.nesting >= MAX_DEPTH {
            return Err(too_deep(self.peek().span));
        }
        self.nesting += 1;
        let result = self.expression_unbounded(min_power);
        self.nesting -= 1;
        result
    }

    fn expression_unbounded(&mut self, min_power: u8) -> Result<Node, CompileError> {
        let mut left = self.prefix()?;
        while let Some(power) = self.infix_power() {
            if power <= min_power {
                break;
            }
            let operator = self.advance();
            let operator_span = operator.span;
            let right = self.expression(power)?;
            let span = left.span.to(right.span);
            let boxed = |n: Node| Box::new(n);
            let kind = match operator.kind {
                TokenKind::Ident(word) if word.eq_ignore_ascii_case("or") => {
                    NodeKind::Or(boxed(left), boxed(right))
                }
                TokenKind::Ident(_) => NodeKind::And(boxed(left), boxed(right)),
                other => {
                    let op = match other {
                        TokenKind::Plus => BinaryOp::Add,
                        TokenKind::Minus => BinaryOp::Subtract,
                        TokenKind::Star => BinaryOp::Multiply,
                        TokenKind::Slash => BinaryOp::Divide,
                        TokenKind::Percent => BinaryOp::Remainder,
                        TokenKind::Less => BinaryOp::Less,
                        TokenKind::LessEq => BinaryOp::LessEq,
                        TokenKind::Greater => BinaryOp::Greater,
                        TokenKind::GreaterEq => BinaryOp::GreaterEq,
                        TokenKind::EqEq => BinaryOp::Equal,
                        _ => BinaryOp::NotEqual,
                    };
                    if power == COMPARE_POWER && self.infix_power() == Some(COMPARE_POWER) {
                        return Err(CompileError::new(
                            "comparisons cannot be chained: join them with `and`",
                            self.peek().span,
                        ));
                    }
                    NodeKind::Binary(op, boxed(left), boxed(right))
                }
            };
            left = self.bounded(Node::new(kind, span), operator_span)?;
        }
        Ok(left)
    }

    fn prefix(&mut self) -> Result<Node, CompileError> {
        let token = self.advance();
        let node = match token.kind {
            TokenKind::Number(n) => Node::new(NodeKind::Literal(Value::Number(n)), token.span),
            TokenKind::Str(s) => Node::new(NodeKind::Literal(Value::text(s)), token.span),
            TokenKind::Minus => {
                let operand = self.expression(UNARY_POWER)?;
                let span = token.span.to(operand.span);
                self.bounded(
                    Node::new(NodeKind::Negate(Box::new(operand)), span),
                    token.span,
                )?
            }
            TokenKind::LParen => {
                let inner = self.expression(0)?;
                let close = self.expect(TokenKind::RParen, "`)`")?;
                Node::new(inner.kind, token.span.to(close.span))
            }
            TokenKind::Ident(name) => self.identifier(name, token.span)?,
            other => {
                return Err(CompileError::new(
                    format!("expected a value, found {}", other.describe()),
                    token.span,
                ))
            }
        };
        self.postfix(node)
    }

    fn postfix(&mut self, mut node: Node) -> Result<Node, CompileError> {
        while self.peek().kind == TokenKind::LBracket {
            let open = self.advance();
            let index = self.expression(0)?;
            let close = self.expect(TokenKind::RBracket, "`]`")?;
            let span = node.span.to(close.span);
            node = self.bounded(
                Node::new(NodeKind::Subscript(Box::new(node), Box::new(index)), span),
                open.span,
            )?;
        }
        Ok(node)
    }

    fn identifier(&mut self, name: String, span: Span) -> Result<Node, CompileError> {
        if self.peek().kind == TokenKind::LParen {
            return self.call(name, span);
        }
        let lower = name.to_ascii_lowercase();
        if lower.starts_with("token.") {
            // `token.api_domain` is `Token("api_domain")`.
            if let Some(function) = functions::lookup("token") {
                let field = Node::new(NodeKind::Literal(Value::text(&name[6..])), span);
                return Ok(Node::new(NodeKind::Call(function, vec![field]), span));
            }
        }
        let kind = match lower.as_str() {
            "input" => NodeKind::Input,
            "item" => NodeKind::Item,
            "index" => NodeKind::Index,
            "true" => NodeKind::Literal(Value::Bool(true)),
            "false" => NodeKind::Literal(Value::Bool(false)),
            "null" => NodeKind::Literal(Value::Null),
            "not" => {
                let operand = self.expression(NOT_POWER)?;
                let full = span.to(operand.span);
                return self.bounded(Node::new(NodeKind::Not(Box::new(operand)), full), span);
            }
            _ => {
                if let Some(reference) = device_reference(&lower, "val") {
                    NodeKind::DeviceValue(reference)
                } else if let Some(reference) = device_reference(&lower, "str") {
                    NodeKind::DeviceString(reference)
                } else {
                    let hint = if functions::lookup(&lower).is_some() {
                        format!("`{name}` is a function: call it with `(…)`")
                    } else {
                        format!(
                            "unknown name `{name}`: a text needs quotes, as in \"{name}\" (names are input, item, index, valNNN, strNNN, true, false, null)"
                        )
                    };
                    return Err(CompileError::new(hint, span));
                }
            }
        };
        Ok(Node::new(kind, span))
    }

    fn call(&mut self, name: String, name_span: Span) -> Result<Node, CompileError> {
        self.expect(TokenKind::LParen, "`(`")?;
        let mut args = Vec::new();
        if self.peek().kind != TokenKind::RParen {
            loop {
                args.push(self.expression(0)?);
                if self.peek().kind == TokenKind::Comma {
                    self.advance();
                } else {
                    break;
                }
            }
        }
        let close = self.expect(TokenKind::RParen, "`,` or `)`")?;
        let span = name_span.to(close.span);
        let Some(function) = functions::lookup(&name) else {
            self.problems.push(CompileError::new(
                format!("unknown function `{name}`"),
                name_span,
            ));
            return Ok(Node::new(NodeKind::Literal(Value::Null), span));
        };
        if args.len() < function.min_args || function.max_args.is_some_and(|max| args.len() > max) {
            self.problems.push(CompileError::new(
                format!(
                    "`{}` takes {}, not {} argument{}",
                    function.signature,
                    function.arity_text(),
                    args.len(),
                    if args.len() == 1 { "" } else { "s" }
                ),
                name_span,
            ));
            return Ok(Node::new(NodeKind::Literal(Value::Null), span));
        }
        let kind = self.special_form(function, args);
        self.bounded(Node::new(kind, span), name_span)
    }

    /// Functions whose arguments are compiled specially: `If` (lazy branches), `JSON` (paths
    /// compiled at load time) and `Regex` (patterns compiled at load time).
    fn special_form(&mut self, function: &'static Function, mut args: Vec<Node>) -> NodeKind {
        match function.kind {
            FunctionKind::If => {
                let otherwise = args.pop().map(Box::new);
                let then = args.pop().map(Box::new);
                let condition = args.pop().map(Box::new);
                match (condition, then, otherwise) {
                    (Some(c), Some(t), Some(o)) => NodeKind::If(c, t, o),
                    _ => NodeKind::Literal(Value::Null),
                }
            }
            FunctionKind::Json => {
                let path = args.pop();
                let source = args.pop();
                match (source, path) {
                    (Some(source), Some(path)) => NodeKind::Json {
                        source: Box::new(source),
                        selector: self.json_selector(path),
                    },
                    _ => NodeKind::Literal(Value::Null),
                }
            }
            FunctionKind::Regex if literal_text(&args[1]).is_some() => {
                let pattern_node = &args[1];
                let pattern = literal_text(pattern_node).unwrap_or_default();
                match functions::compile_regex(&pattern) {
                    Ok(compiled) => {
                        let group = if args.len() > 2 { args.pop() } else { None };
                        args.truncate(1);
                        match args.pop() {
                            Some(subject) => NodeKind::Regex {
                                subject: Box::new(subject),
                                pattern: Arc::new(compiled),
                                group: group.map(Box::new),
                            },
                            None => NodeKind::Literal(Value::Null),
                        }
                    }
                    Err(error) => {
                        self.problems.push(CompileError::new(
                            format!(
                                "invalid regular expression: {}",
                                first_line(&error.to_string())
                            ),
                            pattern_node.span,
                        ));
                        NodeKind::Literal(Value::Null)
                    }
                }
            }
            _ => NodeKind::Call(function, args),
        }
    }

    fn json_selector(&mut self, path: Node) -> JsonSelector {
        let Some(text) = literal_text(&path) else {
            return JsonSelector::Computed(Box::new(path));
        };
        if text.trim_start().starts_with('$') {
            if let Some(problem) = super::limits::jsonpath_problem(&text) {
                self.problems.push(CompileError::new(problem, path.span));
                return JsonSelector::Computed(Box::new(path));
            }
            match jsonpath_rust::parser::parse_json_path(&text) {
                Ok(query) => {
                    let single = !text.contains(['*', '?', ':', ',']) && !text.contains("..");
                    JsonSelector::JsonPath {
                        query: Arc::new(query),
                        single,
                    }
                }
                Err(error) => {
                    self.problems.push(CompileError::new(
                        format!("invalid JSONPath: {}", first_line(&error.to_string())),
                        path.span,
                    ));
                    JsonSelector::Computed(Box::new(path))
                }
            }
        } else {
            match DottedPath::parse(&text) {
                Ok(dotted) => JsonSelector::Dotted(Arc::new(dotted)),
                Err(error) => {
                    // Point inside the literal when its text maps one-to-one onto the source.
                    let raw = self
                        .source
                        .get(path.span.start..path.span.end)
                        .unwrap_or("");
                    let start = if raw.len() == text.len() + 2 {
                        path.span.start + 1 + error.offset
                    } else {
                        path.span.start
                    };
                    self.problems.push(CompileError::new(
                        format!("invalid JSON path `{text}`: {}", error.message),
                        Span::new(start, start + 1),
                    ));
                    JsonSelector::Computed(Box::new(path))
                }
            }
        }
    }
}

fn too_deep(at: Span) -> CompileError {
    CompileError::new(
        format!("the expression nests deeper than {MAX_DEPTH} levels: split it into simpler parts"),
        at,
    )
}

fn first_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn literal_text(node: &Node) -> Option<String> {
    match &node.kind {
        NodeKind::Literal(Value::Text(t)) => Some(t.to_string()),
        _ => None,
    }
}

fn device_reference(name: &str, prefix: &str) -> Option<u64> {
    let digits = name.strip_prefix(prefix)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    digits.parse().ok()
}
