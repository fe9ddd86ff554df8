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
