//! The compiled expression tree. Every node carries the span of the source it came from.

use std::sync::Arc;

use super::error::Span;
use super::functions::Function;
use super::json_path::DottedPath;
use super::value::Value;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BinaryOp {
    Add,
    Subtract,
    Multiply,
    Divide,
    Remainder,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    Equal,
    NotEqual,
}

/// How `JSON(source, path)` selects: a dotted path compiled at load time, a JSONPath query
/// compiled at load time, or a path computed at run time.
#[derive(Debug, Clone)]
pub enum JsonSelector {
    Dotted(Arc<DottedPath>),
    JsonPath {
        query: Arc<jsonpath_rust::parser::model::JpQuery>,
        /// A query without wildcards, filters, slices or descent names one node.
        single: bool,
    },
    Computed(Box<Node>),
}

#[derive(Debug, Clone)]
pub enum NodeKind {
    Literal(Value),
    Input,
    Item,
    Index,
    DeviceValue(u64),
    DeviceString(u64),
    Negate(Box<Node>),
    Not(Box<Node>),
    Binary(BinaryOp, Box<Node>, Box<Node>),
    And(Box<Node>, Box<Node>),
    Or(Box<Node>, Box<Node>),
    If(Box<Node>, Box<Node>, Box<Node>),
    Json {
        source: Box<Node>,
        selector: JsonSelector,
    },
    Regex {
        subject: Box<Node>,
        pattern: Arc<fancy_regex::Regex>,
        group: Option<Box<Node>>,
    },
    Call(&'static Function, Vec<Node>),
    Subscript(Box<Node>, Box<Node>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
    /// How many nodes deep the tree below (and including) this node is. The parser refuses a
    /// tree deeper than [`super::limits::MAX_DEPTH`], so every recursive walk is bounded.
    pub depth: usize,
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Node {
        let depth = 1 + kind.children().map(|child| child.depth).max().unwrap_or(0);
        Node { kind, span, depth }
    }

    /// Visits this node and all nodes below it.
    pub fn walk(&self, visit: &mut dyn FnMut(&Node)) {
        visit(self);
        for child in self.kind.children() {
            child.walk(visit);
        }
    }
}

impl NodeKind {
    /// The nodes directly below, in source order.
    pub fn children(&self) -> impl Iterator<Item = &Node> {
        let list: Vec<&Node> = match self {
            NodeKind::Negate(inner) | NodeKind::Not(inner) => vec![inner],
            NodeKind::Binary(_, a, b)
            | NodeKind::And(a, b)
            | NodeKind::Or(a, b)
            | NodeKind::Subscript(a, b) => vec![a, b],
            NodeKind::If(c, a, b) => vec![c, a, b],
            NodeKind::Json { source, selector } => match selector {
                JsonSelector::Computed(path) => vec![source, path],
                _ => vec![source],
            },
            NodeKind::Regex { subject, group, .. } => std::iter::once(&**subject)
                .chain(group.as_deref())
                .collect(),
            NodeKind::Call(_, args) => args.iter().collect(),
            NodeKind::Literal(_)
            | NodeKind::Input
            | NodeKind::Item
            | NodeKind::Index
            | NodeKind::DeviceValue(_)
            | NodeKind::DeviceString(_) => Vec::new(),
        };
        list.into_iter()
    }
}
