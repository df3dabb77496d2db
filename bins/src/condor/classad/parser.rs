//! Recursive-descent parsing of ClassAd expressions into the AST.
//!
//! Each precedence level is parsed as a left-associative chain
//! (`a || b || c` is one node with three operands, evaluated left to right),
//! so long generated constraints such as `ClusterId == 1 || ClusterId == 2
//! || …` do not deepen the tree. Depth comes only from parentheses and
//! unary operators, which are capped so that no input can exhaust the stack.

use super::lexer::{tokenize, Tok, Token};
use super::{BinOp, Node, ParseError, Value};

/// Parentheses plus unary operators allowed around any sub-expression.
/// Real constraints nest a handful deep. The cap bounds the recursion of the
/// parser (8 frames per parenthesis) and of evaluating, printing, cloning
/// and dropping the tree (up to 6 levels per parenthesis): at 64 the worst
/// case stays under 1 MiB of stack even unoptimized, where 256 would not
/// fit a 2 MiB thread.
pub(super) const MAX_NESTING: usize = 64;

/// Precedence levels, lowest first, as ClassAds define them; the unary
/// operators bind tighter than all of these.
pub(super) const LEVELS: usize = 6;

pub(super) fn parse(src: &str) -> Result<Node, ParseError> {
    let mut parser = Parser {
        src,
        tokens: tokenize(src),
        pos: 0,
        nesting: 0,
    };
    let node = parser.level(0)?;
    match &parser.peek().tok {
        Tok::Eof => Ok(node),
        _ => Err(parser.unexpected("an operator or the end of the expression")),
    }
}

struct Parser<'a> {
    src: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    nesting: usize,
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // tokenize always ends with Eof or Bad, and nothing advances past it.
        &self.tokens[self.pos.min(self.tokens.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let token = self.peek().clone();
        if self.pos < self.tokens.len() - 1 {
            self.pos += 1;
        }
        token
    }

    /// "expected X, found Y" at the current token — unless the current token
    /// is bad text, whose own message is the better one.
    fn unexpected(&self, expected: &str) -> ParseError {
        let token = self.peek();
        if let Tok::Bad(err) = &token.tok {
            return err.clone();
        }
        let found = match token.tok {
            Tok::Eof => "end of input".to_string(),
            _ => {
                // Quoted, shortened and kept on one line (a string token may
                // hold raw newlines).
                let text = &self.src[token.start..token.end];
                let mut shown: String = text
                    .chars()
                    .take(24)
                    .map(|c| match c {
                        c if c.is_control() => c.escape_default().to_string(),
                        c => c.to_string(),
                    })
                    .collect();
                if text.chars().nth(24).is_some() {
                    shown.push('…');
                }
                format!("'{shown}'")
            }
        };
        ParseError {
            message: format!("expected {expected}, found {found}"),
            column: token.column,
        }
    }

    fn enter(&mut self) -> Result<(), ParseError> {
        self.nesting += 1;
        if self.nesting > MAX_NESTING {
            return Err(ParseError {
                message: format!("expression nested too deeply (more than {MAX_NESTING} levels)"),
                column: self.peek().column,
            });
        }
        Ok(())
    }

    /// A chain of operators of precedence `level` (0 = `||`), or a unary
    /// expression once past the binary levels.
    fn level(&mut self, level: usize) -> Result<Node, ParseError> {
        if level == LEVELS {
            return self.unary();
        }
        let first = self.level(level + 1)?;
        let mut rest = Vec::new();
        while let Tok::Bin(op) = self.peek().tok {
            if op.level() != level {
                break;
            }
            self.advance();
            rest.push((op, self.level(level + 1)?));
        }
        if rest.is_empty() {
            return Ok(first);
        }
        Ok(match first {
            // `(a + b) - c` means exactly `a + b - c`: merge, so the tree
            // has one shape per meaning and prints back the same way.
            Node::Chain(head, mut ops)
                if ops.first().is_some_and(|(op, _)| op.level() == level) =>
            {
                ops.extend(rest);
                Node::Chain(head, ops)
            }
            first => Node::Chain(Box::new(first), rest),
        })
    }

    fn unary(&mut self) -> Result<Node, ParseError> {
        let wrap: fn(Box<Node>) -> Node = match self.peek().tok {
            Tok::Not => Node::Not,
            Tok::Bin(BinOp::Sub) => Node::Neg,
            _ => return self.primary(),
        };
        self.enter()?;
        self.advance();
        let operand = self.unary()?;
        self.nesting -= 1;
        Ok(wrap(Box::new(operand)))
    }

    fn primary(&mut self) -> Result<Node, ParseError> {
        let literal = match &self.peek().tok {
            Tok::Int(i) => Value::Int(*i),
            Tok::Real(r) => Value::Real(*r),
            Tok::Str(s) => Value::Str(s.clone()),
            Tok::True => Value::Bool(true),
            Tok::False => Value::Bool(false),
            Tok::Undefined => Value::Undefined,
            Tok::Error => Value::Error,
            Tok::Ident(name) => {
                let name = name.clone();
                self.advance();
                return self.attribute(name);
            }
            Tok::LParen => return self.parenthesized(),
            _ => return Err(self.unexpected("an attribute, a literal or '('")),
        };
        self.advance();
        Ok(Node::Lit(literal))
    }

    fn parenthesized(&mut self) -> Result<Node, ParseError> {
        self.enter()?;
        let open = self.advance();
        let inner = self.level(0)?;
        if self.peek().tok != Tok::RParen {
            let mut err = self.unexpected("')'");
            if !matches!(self.peek().tok, Tok::Bad(_)) {
                err.message += &format!(" (to close '(' at column {})", open.column);
            }
            return Err(err);
        }
        self.advance();
        self.nesting -= 1;
        Ok(inner)
    }

    /// `Name`, or `MY.Name` / `TARGET.Name`: a constraint is evaluated
    /// against one ad, so both scopes name the same attribute. Names are
    /// case-insensitive in ClassAds, hence lowercased here once.
    fn attribute(&mut self, name: String) -> Result<Node, ParseError> {
        let lower = name.to_ascii_lowercase();
        if (lower == "my" || lower == "target") && self.peek().tok == Tok::Dot {
            self.advance();
            let Tok::Ident(scoped) = &self.peek().tok else {
                return Err(self.unexpected(&format!("an attribute name after '{name}.'")));
            };
            let scoped = scoped.to_ascii_lowercase();
            self.advance();
            return Ok(Node::Attr(scoped));
        }
        Ok(Node::Attr(lower))
    }
}
