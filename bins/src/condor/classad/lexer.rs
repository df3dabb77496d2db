//! Splitting ClassAd expression text into tokens.
//!
//! Positions are kept as byte spans (to quote the source in messages) and
//! 1-based character columns (what a person counts when reading the error).

use super::{BinOp, ParseError};

#[derive(Debug, Clone, PartialEq)]
pub(super) enum Tok {
    Int(i64),
    Real(f64),
    Str(String),
    /// An identifier as written (not a keyword).
    Ident(String),
    True,
    False,
    Undefined,
    Error,
    /// A binary operator, including `-` (also unary: the parser decides by
    /// position) and the keywords `is` / `isnt`.
    Bin(BinOp),
    Not,
    LParen,
    RParen,
    Dot,
    Eof,
    /// Text that is no token; reported only if the parser gets this far, so
    /// errors come out in reading order.
    Bad(ParseError),
}

#[derive(Debug, Clone)]
pub(super) struct Token {
    pub tok: Tok,
    pub column: usize,
    pub start: usize,
    pub end: usize,
}

/// All tokens of `src`, ending with `Eof` or, at the first bad character,
/// `Bad`.
pub(super) fn tokenize(src: &str) -> Vec<Token> {
    let mut lexer = Lexer {
        src,
        pos: 0,
        column: 1,
    };
    let mut tokens = Vec::new();
    loop {
        lexer.skip_whitespace();
        let (start, column) = (lexer.pos, lexer.column);
        let tok = lexer.next_tok();
        let stop = matches!(tok, Tok::Eof | Tok::Bad(_));
        tokens.push(Token {
            tok,
            column,
            start,
            end: lexer.pos,
        });
        if stop {
            return tokens;
        }
    }
}

struct Lexer<'a> {
    src: &'a str,
    pos: usize,
    column: usize,
}

impl Lexer<'_> {
    fn peek(&self) -> Option<char> {
        self.src[self.pos..].chars().next()
    }

    fn peek_second(&self) -> Option<char> {
        self.src[self.pos..].chars().nth(1)
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek()?;
        self.pos += c.len_utf8();
        self.column += 1;
        Some(c)
    }

    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.bump();
            true
        } else {
            false
        }
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    fn error(&self, column: usize, message: String) -> Tok {
        Tok::Bad(ParseError { message, column })
    }

    fn next_tok(&mut self) -> Tok {
        let column = self.column;
        let Some(c) = self.peek() else {
            return Tok::Eof;
        };
        if c.is_ascii_digit()
            || (c == '.' && self.peek_second().is_some_and(|d| d.is_ascii_digit()))
        {
            return self.number();
        }
        if c.is_ascii_alphabetic() || c == '_' {
            return self.word();
        }
        if c == '"' {
            return self.string();
        }
        self.bump();
        let op = Tok::Bin;
        match c {
            '(' => Tok::LParen,
            ')' => Tok::RParen,
            '.' => Tok::Dot,
            '+' => op(BinOp::Add),
            '-' => op(BinOp::Sub),
            '*' => op(BinOp::Mul),
            '/' => op(BinOp::Div),
            '%' => op(BinOp::Mod),
            '<' if self.eat('=') => op(BinOp::Le),
            '<' => op(BinOp::Lt),
            '>' if self.eat('=') => op(BinOp::Ge),
            '>' => op(BinOp::Gt),
            '!' if self.eat('=') => op(BinOp::Ne),
            '!' => Tok::Not,
            '&' if self.eat('&') => op(BinOp::And),
            '|' if self.eat('|') => op(BinOp::Or),
            '=' if self.eat('=') => op(BinOp::Eq),
            '=' if self.peek_second() == Some('=') && self.eat('?') => {
                self.bump();
                op(BinOp::MetaEq)
            }
            '=' if self.peek_second() == Some('=') && self.eat('!') => {
                self.bump();
                op(BinOp::MetaNe)
            }
            // Assignment belongs to submit files and ClassAd records, never
            // to an expression: the user almost surely meant a comparison.
            '=' => self.error(column, "unexpected '=' (did you mean '=='?)".into()),
            '&' => self.error(column, "unexpected '&' (did you mean '&&'?)".into()),
            '|' => self.error(column, "unexpected '|' (did you mean '||'?)".into()),
            c => self.error(column, format!("unexpected character {c:?}")),
        }
    }

    /// Decimal integers and reals (`1.5`, `.5`, `2e3`, `1E-3`). A literal
    /// that does not fit is an error rather than a silently clamped value.
    fn number(&mut self) -> Tok {
        let (start, column) = (self.pos, self.column);
        let mut real = false;
        while self.peek().is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
        }
        if self.peek() == Some('.') {
            real = true;
            self.bump();
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        if matches!(self.peek(), Some('e' | 'E')) {
            real = true;
            self.bump();
            if matches!(self.peek(), Some('+' | '-')) {
                self.bump();
            }
            if !self.peek().is_some_and(|c| c.is_ascii_digit()) {
                return self.error(column, "malformed number: exponent has no digits".into());
            }
            while self.peek().is_some_and(|c| c.is_ascii_digit()) {
                self.bump();
            }
        }
        let text = &self.src[start..self.pos];
        if real {
            match text.parse::<f64>() {
                Ok(r) if r.is_finite() => Tok::Real(r),
                _ => self.error(column, format!("real number {text} is out of range")),
            }
        } else {
            match text.parse::<i64>() {
                Ok(i) => Tok::Int(i),
                Err(_) => self.error(column, format!("integer {text} is out of range")),
            }
        }
    }

    /// Identifiers and the keywords, which ClassAds match case-insensitively
    /// (`TRUE`, `Undefined`, `ISNT` …).
    fn word(&mut self) -> Tok {
        let start = self.pos;
        while self
            .peek()
            .is_some_and(|c| c.is_ascii_alphanumeric() || c == '_')
        {
            self.bump();
        }
        let word = &self.src[start..self.pos];
        match word.to_ascii_lowercase().as_str() {
            "true" => Tok::True,
            "false" => Tok::False,
            "undefined" => Tok::Undefined,
            "error" => Tok::Error,
            "is" => Tok::Bin(BinOp::MetaEq),
            "isnt" => Tok::Bin(BinOp::MetaNe),
            _ => Tok::Ident(word.to_string()),
        }
    }

    /// A double-quoted string. `\"`, `\\`, `\n`, `\t` and `\r` are escapes;
    /// any other backslash is kept as written, as old-ClassAd syntax (the one
    /// submit files and `-constraint` use) keeps it.
    fn string(&mut self) -> Tok {
        let column = self.column;
        self.bump();
        let mut out = String::new();
        loop {
            match self.bump() {
                None => return self.error(column, "unterminated string (no closing '\"')".into()),
                Some('"') => return Tok::Str(out),
                Some('\\') => match self.peek() {
                    None => {}
                    Some(c @ ('"' | '\\')) => {
                        self.bump();
                        out.push(c);
                    }
                    Some(c @ ('n' | 't' | 'r')) => {
                        self.bump();
                        out.push(match c {
                            'n' => '\n',
                            't' => '\t',
                            _ => '\r',
                        });
                    }
                    Some(_) => out.push('\\'),
                },
                Some(c) => out.push(c),
            }
        }
    }
}
