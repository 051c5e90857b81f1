//! Tokens of the pcap-filter language, with their columns.

use super::{ExprError, ExprErrorKind};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Tok {
    /// A word: keyword, name, number, address (`10.0.0.1`, `2001:db8::1`,
    /// `00:11:22:33:44:55`), port range (`7000-7009`), `tcp-syn`.
    Word(String),
    /// Punctuation and operators: ( ) [ ] : / + - * % & | ^ << >> ! && ||
    /// = == != < <= > >=
    Op(&'static str),
}

#[derive(Clone, Debug)]
pub struct Token {
    pub tok: Tok,
    /// 1-based column.
    pub col: usize,
}

const OPS: [&str; 24] = [
    "&&", "||", "==", "!=", "<=", ">=", "<<", ">>", "(", ")", "[", "]", ":", "/", "+", "-", "*",
    "%", "&", "|", "^", "!", "=", "<",
];

pub fn lex(text: &str) -> Result<Vec<Token>, ExprError> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut i = 0;
    let mut depth = 0usize;
    while i < chars.len() {
        let c = chars[i];
        let col = i + 1;
        if c.is_whitespace() {
            i += 1;
            continue;
        }
        if c.is_ascii_alphanumeric() || c == '\\' {
            let start = i;
            if c == '\\' {
                i += 1;
            }
            while i < chars.len() {
                let d = chars[i];
                let colon_ok = d == ':' && depth == 0;
                if d.is_ascii_alphanumeric() || d == '_' || d == '.' || colon_ok {
                    i += 1;
                } else if d == '-'
                    && i + 1 < chars.len()
                    && chars[i + 1].is_ascii_alphanumeric()
                    && i > start
                {
                    // `tcp-syn`, `7000-7009`; but `len - 1` has spaces.
                    i += 1;
                } else {
                    break;
                }
            }
            let word: String = chars[start..i].iter().collect();
            out.push(Token {
                tok: Tok::Word(word),
                col,
            });
            continue;
        }
        if c == ':' && depth == 0 {
            // IPv6 starting with "::".
            let start = i;
            while i < chars.len()
                && (chars[i].is_ascii_hexdigit() || chars[i] == ':' || chars[i] == '.')
            {
                i += 1;
            }
            out.push(Token {
                tok: Tok::Word(chars[start..i].iter().collect()),
                col,
            });
            continue;
        }
        let two: String = chars[i..(i + 2).min(chars.len())].iter().collect();
        let op = OPS
            .iter()
            .find(|o| o.len() == 2 && **o == two)
            .or_else(|| OPS.iter().find(|o| o.len() == 1 && o.starts_with(c)));
        let op = match (op, c) {
            (Some(o), _) => *o,
            (None, '>') => ">",
            _ => return Err(ExprError::new(col, ExprErrorKind::UnexpectedChar(c))),
        };
        match op {
            "[" => depth += 1,
            "]" => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += op.len();
        out.push(Token {
            tok: Tok::Op(op),
            col,
        });
    }
    Ok(out)
}
