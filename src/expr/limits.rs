//! The bounds every expression, template and value lives within, so that no input (a profile, an
//! action text, a sandbox request, an API response) can exhaust the stack or the memory of the
//! process. Each is checked before the work or the allocation it bounds.

/// Longest source of one expression or template, in bytes.
pub const MAX_SOURCE_BYTES: usize = 256 * 1024;
/// Deepest expression tree (nested parentheses, unary operators, chained operators, calls). The
/// parser, the evaluator and every walk recurse at most this deep.
pub const MAX_DEPTH: usize = 64;
/// Largest text a function, an operator or a template may build, in bytes.
pub const MAX_TEXT_BYTES: usize = 16 * 1024 * 1024;
/// Most elements of a list a function may build.
pub const MAX_LIST_LEN: usize = 1_000_000;
/// Most JSON nodes a JSONPath's results may hold together (each result is copied out of the
/// document: `$..*` on a deeply nested body would copy every subtree once per ancestor).
pub const MAX_JSONPATH_NODES: usize = 1_000_000;
/// Most recursive descents (`..`) in one JSONPath: each one multiplies the work by the depth.
pub const MAX_JSONPATH_DESCENTS: usize = 1;
/// Most bytes of result paths a JSONPath over many nodes may make: the JSONPath engine writes
/// the path of every node it visits (`$['a']['b'][3]`), so a deep document with long keys would
/// make far more path text than it holds. Judged on the document before the query runs.
pub const MAX_JSONPATH_PATH_BYTES: usize = 64 * 1024 * 1024;
/// Most steps a backtracking regular expression may take on one subject before it is an error.
pub const REGEX_BACKTRACK_LIMIT: usize = 1_000_000;
/// Largest compiled regular expression, in bytes.
pub const REGEX_SIZE_LIMIT: usize = 1 << 20;

use super::error::EvalErrorKind;

/// `Ok` when a text of `bytes` bytes may be built.
pub fn text_fits(bytes: usize) -> Result<(), EvalErrorKind> {
    if bytes > MAX_TEXT_BYTES {
        Err(EvalErrorKind::TooLarge {
            what: "text",
            size: bytes,
            limit: MAX_TEXT_BYTES,
        })
    } else {
        Ok(())
    }
}

/// `Ok` when a list of `len` elements may be built.
pub fn list_fits(len: usize) -> Result<(), EvalErrorKind> {
    if len > MAX_LIST_LEN {
        Err(EvalErrorKind::TooLarge {
            what: "list",
            size: len,
            limit: MAX_LIST_LEN,
        })
    } else {
        Ok(())
    }
}

/// Why a JSONPath's text asks for unbounded work, if it does: more recursive descents than
/// [`MAX_JSONPATH_DESCENTS`].
pub fn jsonpath_problem(text: &str) -> Option<String> {
    let descents = text.matches("..").count();
    (descents > MAX_JSONPATH_DESCENTS).then(|| {
        format!(
            "a JSONPath may hold at most {MAX_JSONPATH_DESCENTS} recursive descent (`..`); this one has {descents}"
        )
    })
}

/// `Ok` when the JSON `results` hold at most [`MAX_JSONPATH_NODES`] nodes together: counted
/// before anything is copied, and the count stops at the limit.
pub fn jsonpath_results_fit<'a>(
    results: impl IntoIterator<Item = &'a serde_json::Value>,
) -> Result<(), EvalErrorKind> {
    let mut left = MAX_JSONPATH_NODES;
    let mut stack: Vec<&serde_json::Value> = Vec::new();
    for result in results {
        stack.push(result);
        while let Some(node) = stack.pop() {
            if left == 0 {
                return Err(EvalErrorKind::TooLarge {
                    what: "JSONPath result (in JSON nodes)",
                    size: MAX_JSONPATH_NODES + 1,
                    limit: MAX_JSONPATH_NODES,
                });
            }
            left -= 1;
            match node {
                serde_json::Value::Array(items) => stack.extend(items.iter()),
                serde_json::Value::Object(fields) => stack.extend(fields.values()),
                _ => {}
            }
        }
    }
    Ok(())
}

/// `Ok` when a JSONPath with a recursive descent (`..`), which visits every node, can run over
/// `document` within [`MAX_JSONPATH_PATH_BYTES`]: the paths of all its nodes, once per union
/// member of the query, counted before the query runs (and the count stops at the limit).
/// Without `..` a query visits only the levels it names, with paths as short as it is.
pub fn jsonpath_document_fits(
    document: &serde_json::Value,
    query: &str,
) -> Result<(), EvalErrorKind> {
    let members = query.matches(',').count() + 1;
    let budget = MAX_JSONPATH_PATH_BYTES / members;
    let mut spent = 0usize;
    // (node, the length of its path)
    let mut stack: Vec<(&serde_json::Value, usize)> = vec![(document, 1)];
    while let Some((node, length)) = stack.pop() {
        spent = spent.saturating_add(length);
        if spent > budget {
            return Err(EvalErrorKind::Invalid(format!(
                "this document is too deep and large for a recursive JSONPath (`..`): it would build over {} MiB of paths; name the levels instead (a dotted path, or `$.a.b[*]`)",
                MAX_JSONPATH_PATH_BYTES >> 20
            )));
        }
        match node {
            serde_json::Value::Array(items) => {
                for (index, item) in items.iter().enumerate() {
                    // `[index]`
                    let digits = index.checked_ilog10().unwrap_or(0) as usize + 1;
                    stack.push((item, length + digits + 2));
                }
            }
            serde_json::Value::Object(fields) => {
                for (key, value) in fields {
                    // `['key']`
                    stack.push((value, length + key.len() + 4));
                }
            }
            _ => {}
        }
    }
    Ok(())
}
