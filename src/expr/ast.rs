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
        pattern: Arc<regex::Regex>,
        group: Option<Box<Node>>,
    },
    Call(&'static Function, Vec<Node>),
    Subscript(Box<Node>, Box<Node>),
}

#[derive(Debug, Clone)]
pub struct Node {
    pub kind: NodeKind,
    pub span: Span,
}

impl Node {
    pub fn new(kind: NodeKind, span: Span) -> Node {
        Node { kind, span }
    }

    /// Visits this node and all nodes below it.
    pub fn walk(&self, visit: &mut dyn FnMut(&Node)) {
        visit(self);
        match &self.kind {
            NodeKind::Negate(inner) | NodeKind::Not(inner) => inner.walk(visit),
            NodeKind::Binary(_, a, b)
            | NodeKind::And(a, b)
            | NodeKind::Or(a, b)
            | NodeKind::Subscript(a, b) => {
                a.walk(visit);
                b.walk(visit);
            }
            NodeKind::If(c, a, b) => {
                c.walk(visit);
                a.walk(visit);
                b.walk(visit);
            }
            NodeKind::Json { source, selector } => {
                source.walk(visit);
                if let JsonSelector::Computed(path) = selector {
                    path.walk(visit);
                }
            }
            NodeKind::Regex { subject, group, .. } => {
                subject.walk(visit);
                if let Some(group) = group {
                    group.walk(visit);
                }
            }
            NodeKind::Call(_, args) => args.iter().for_each(|arg| arg.walk(visit)),
            NodeKind::Literal(_)
            | NodeKind::Input
            | NodeKind::Item
            | NodeKind::Index
            | NodeKind::DeviceValue(_)
            | NodeKind::DeviceString(_) => {}
        }
    }
}
