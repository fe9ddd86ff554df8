//! The lexer: expression text → tokens with byte spans. Typographic quotes and dashes pasted from
//! web pages are accepted as `"` and `-`, each with a warning.

use super::error::{CompileError, CompileWarning, Span};

#[derive(Debug, Clone, PartialEq)]
pub enum TokenKind {
    Number(f64),
    Str(String),
    Ident(String),
    Plus,
    Minus,
    Star,
    Slash,
    Percent,
    Less,
    LessEq,
    Greater,
    GreaterEq,
    EqEq,
    NotEq,
    LParen,
    RParen,
    LBracket,
    RBracket,
    Comma,
    Eof,
}

impl TokenKind {
    pub fn describe(&self) -> String {
        match self {
            TokenKind::Number(n) => format!("number {n}"),
            TokenKind::Str(_) => "a text literal".to_string(),
            TokenKind::Ident(name) => format!("`{name}`"),
            TokenKind::Eof => "the end of the expression".to_string(),
            other => format!("`{}`", other.symbol()),
        }
    }

    fn symbol(&self) -> &'static str {
        match self {
            TokenKind::Plus => "+",
            TokenKind::Minus => "-",
            TokenKind::Star => "*",
            TokenKind::Slash => "/",
            TokenKind::Percent => "%",
            TokenKind::Less => "<",
            TokenKind::LessEq => "<=",
            TokenKind::Greater => ">",
            TokenKind::GreaterEq => ">=",
            TokenKind::EqEq => "==",
            TokenKind::NotEq => "!=",
            TokenKind::LParen => "(",
            TokenKind::RParen => ")",
            TokenKind::LBracket => "[",
            TokenKind::RBracket => "]",
            TokenKind::Comma => ",",
            _ => "?",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Token {
    pub kind: TokenKind,
    pub span: Span,
}

const TYPOGRAPHIC_QUOTES: [char; 5] = ['\u{201C}', '\u{201D}', '\u{201E}', '\u{00AB}', '\u{00BB}'];
const TYPOGRAPHIC_DASHES: [char; 3] = ['\u{2013}', '\u{2014}', '\u{2212}'];

pub struct Lexed {
    pub tokens: Vec<Token>,
    pub warnings: Vec<CompileWarning>,
}

pub fn lex(source: &str) -> Result<Lexed, CompileError> {
    let mut tokens = Vec::new();
    let mut warnings = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some(&(start, c)) = chars.peek() {
        if c.is_whitespace() {
            chars.next();
            continue;
        }
        let single = |kind: TokenKind| Token {
            kind,
            span: Span::new(start, start + c.len_utf8()),
        };
        match c {
            '0'..='9' | '.' => {
                let mut end = start;
                let mut seen_dot = false;
                while let Some(&(i, d)) = chars.peek() {
                    if d.is_ascii_digit() || (d == '.' && !seen_dot) {
                        seen_dot |= d == '.';
                        end = i + 1;
                        chars.next();
                    } else {
                        break;
                    }
                }
                let text = &source[start..end];
                let number = text
                    .parse::<f64>()
                    .ok()
                    .filter(|n| n.is_finite())
                    .ok_or_else(|| {
                        CompileError::new(
                            format!("`{}` is not a finite number", super::error::excerpt(text)),
                            Span::new(start, end),
                        )
                    })?;
                tokens.push(Token {
                    kind: TokenKind::Number(number),
                    span: Span::new(start, end),
                });
            }
            '"' => {
                chars.next();
                tokens.push(lex_string(source, start, &mut chars, false)?);
            }
            q if TYPOGRAPHIC_QUOTES.contains(&q) => {
                chars.next();
                warnings.push(CompileWarning {
                    message: format!("typographic quote `{q}` read as `\"`"),
                    span: Span::new(start, start + q.len_utf8()),
                    column: 0,
                });
                tokens.push(lex_string(source, start, &mut chars, true)?);
            }
            c if c.is_alphabetic() || c == '_' => {
                let mut end = start;
                while let Some(&(i, d)) = chars.peek() {
                    if d.is_alphanumeric() || d == '_' {
                        end = i + d.len_utf8();
                        chars.next();
                    } else {
                        break;
                    }
                }
                // `token.api_domain`: one name, a field of the OAuth token answer.
                if source[start..end].eq_ignore_ascii_case("token")
                    && source[end..].starts_with('.')
                    && source[end + 1..]
                        .chars()
                        .next()
                        .is_some_and(|c| c.is_alphabetic() || c == '_')
                {
                    chars.next();
                    end += 1;
                    while let Some(&(i, d)) = chars.peek() {
                        if d.is_alphanumeric() || d == '_' {
                            end = i + d.len_utf8();
                            chars.next();
                        } else {
                            break;
                        }
                    }
                }
                tokens.push(Token {
                    kind: TokenKind::Ident(source[start..end].to_string()),
                    span: Span::new(start, end),
                });
            }
            '<' | '>' | '=' | '!' => {
                chars.next();
                let followed_by_eq = matches!(chars.peek(), Some(&(_, '=')));
                let kind = match (c, followed_by_eq) {
                    ('<', true) => TokenKind::LessEq,
                    ('<', false) => TokenKind::Less,
                    ('>', true) => TokenKind::GreaterEq,
                    ('>', false) => TokenKind::Greater,
                    ('=', _) => TokenKind::EqEq,
                    ('!', true) => TokenKind::NotEq,
                    _ => {
                        return Err(CompileError::new(
                            "unexpected `!`: write `not` for negation or `!=` for inequality",
                            Span::new(start, start + 1),
                        ))
                    }
                };
                let len = if followed_by_eq { 2 } else { 1 };
                if followed_by_eq {
                    chars.next();
                }
                tokens.push(Token {
                    kind,
                    span: Span::new(start, start + len),
                });
            }
            d if TYPOGRAPHIC_DASHES.contains(&d) => {
                chars.next();
                warnings.push(CompileWarning {
                    message: format!("typographic dash `{d}` read as `-`"),
                    span: Span::new(start, start + d.len_utf8()),
                    column: 0,
                });
                tokens.push(single(TokenKind::Minus));
            }
            _ => {
                let kind = match c {
                    '+' => TokenKind::Plus,
                    '-' => TokenKind::Minus,
                    '*' => TokenKind::Star,
                    '/' => TokenKind::Slash,
                    '%' => TokenKind::Percent,
                    '(' => TokenKind::LParen,
                    ')' => TokenKind::RParen,
                    '[' => TokenKind::LBracket,
                    ']' => TokenKind::RBracket,
                    ',' => TokenKind::Comma,
                    '&' | '|' => {
                        return Err(CompileError::new(
                            format!("unexpected `{c}`: write `and` / `or` for logic"),
                            Span::new(start, start + 1),
                        ))
                    }
                    '\'' | '\u{2018}' | '\u{2019}' => {
                        return Err(CompileError::new(
                            "text literals use double quotes `\"`",
                            Span::new(start, start + c.len_utf8()),
                        ))
                    }
                    other => {
                        return Err(CompileError::new(
                            format!("unexpected character `{other}`"),
                            Span::new(start, start + other.len_utf8()),
                        ))
                    }
                };
                chars.next();
                tokens.push(single(kind));
            }
        }
    }
    tokens.push(Token {
        kind: TokenKind::Eof,
        span: Span::new(source.len(), source.len()),
    });
    Ok(Lexed { tokens, warnings })
}

/// Reads a text literal after its opening quote. `\"` is a quote and `\\` a backslash; any other
/// backslash stays as written, so regular expressions such as `"\d+"` need no doubling.
fn lex_string(
    source: &str,
    start: usize,
    chars: &mut std::iter::Peekable<std::str::CharIndices<'_>>,
    typographic_open: bool,
) -> Result<Token, CompileError> {
    let mut text = String::new();
    while let Some((i, c)) = chars.next() {
        let closes = c == '"' || (typographic_open && TYPOGRAPHIC_QUOTES.contains(&c));
        if closes {
            return Ok(Token {
                kind: TokenKind::Str(text),
                span: Span::new(start, i + c.len_utf8()),
            });
        }
        if c == '\\' {
            match chars.peek() {
                Some(&(_, '"')) => {
                    text.push('"');
                    chars.next();
                }
                Some(&(_, '\\')) => {
                    text.push('\\');
                    chars.next();
                }
                _ => text.push('\\'),
            }
        } else {
            text.push(c);
        }
    }
    Err(CompileError::new(
        "unclosed text literal: a `\"` is missing",
        Span::new(start, source.len()),
    ))
}

/// Byte ranges of the text literals in `source` (quotes included), for splitters that must
/// never cut inside a literal. Tolerates an unclosed literal (it runs to the end).
/// Byte position of the first `target` outside text literals, reading no further than it.
pub fn find_outside_literals(source: &str, target: char) -> Option<usize> {
    let mut chars = source.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == target {
            return Some(i);
        }
        let typographic = TYPOGRAPHIC_QUOTES.contains(&c);
        if c == '"' || typographic {
            while let Some((_, d)) = chars.next() {
                if d == '\\' {
                    chars.next();
                    continue;
                }
                if d == '"' || (typographic && TYPOGRAPHIC_QUOTES.contains(&d)) {
                    break;
                }
            }
        }
    }
    None
}

/// Whether byte `at` lies inside one of `ranges` (sorted, as [`literal_ranges`] gives them).
pub fn inside_ranges(ranges: &[(usize, usize)], at: usize) -> bool {
    let after = ranges.partition_point(|(start, _)| *start <= at);
    after > 0 && at < ranges[after - 1].1
}

pub fn literal_ranges(source: &str) -> Vec<(usize, usize)> {
    let mut ranges = Vec::new();
    let mut chars = source.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        let typographic = TYPOGRAPHIC_QUOTES.contains(&c);
        if c == '"' || typographic {
            let mut end = source.len();
            while let Some((j, d)) = chars.next() {
                if d == '\\' {
                    chars.next();
                    continue;
                }
                if d == '"' || (typographic && TYPOGRAPHIC_QUOTES.contains(&d)) {
                    end = j + d.len_utf8();
                    break;
                }
            }
            ranges.push((i, end));
        }
    }
    ranges
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(source: &str) -> Vec<TokenKind> {
        lex(source)
            .map(|l| l.tokens.into_iter().map(|t| t.kind).collect())
            .unwrap_or_default()
    }

    #[test]
    fn lexes_operators_and_literals() {
        assert_eq!(
            kinds("a <= 2.5 != \"x\""),
            vec![
                TokenKind::Ident("a".into()),
                TokenKind::LessEq,
                TokenKind::Number(2.5),
                TokenKind::NotEq,
                TokenKind::Str("x".into()),
                TokenKind::Eof
            ]
        );
    }

    #[test]
    fn typographic_quotes_become_ascii_with_warning() {
        let lexed = lex("JSON(input,\u{201C}email\u{201D})").map_err(|e| e.message);
        let lexed = lexed.unwrap_or_else(|m| panic!("{m}"));
        assert_eq!(lexed.warnings.len(), 1);
        assert!(lexed
            .tokens
            .iter()
            .any(|t| t.kind == TokenKind::Str("email".into())));
    }

    #[test]
    fn backslashes_stay_for_regexes() {
        assert_eq!(
            kinds(r#""\b\d{3}\b""#)[0],
            TokenKind::Str(r"\b\d{3}\b".into())
        );
        assert_eq!(
            kinds(r#""say \"hi\"""#)[0],
            TokenKind::Str("say \"hi\"".into())
        );
    }

    #[test]
    fn unclosed_literal_names_its_start() {
        let error = lex("1 + \"abc").err().map(|e| e.span.start);
        assert_eq!(error, Some(4));
    }

    #[test]
    fn literal_ranges_skip_escaped_quotes() {
        assert_eq!(literal_ranges(r#"a "b\"&&" c"#), vec![(2, 9)]);
    }
}
