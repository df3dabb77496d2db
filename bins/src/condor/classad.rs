//! # ClassAd expressions — the subset `condor_q` / `condor_rm` constraints use
//!
//! HTCondor selects jobs with ClassAd expressions (`-constraint 'JobStatus
//! == 1 && Owner == "alice"'`) and submit files set custom attributes to
//! ClassAd values (`+Project = "x"`). This module parses such text once into
//! an [`Expr`] and evaluates it per job against an [`Ad`], with ClassAd's
//! semantics:
//!
//! - literals: integers, reals, double-quoted strings, `true`/`false`,
//!   `undefined`, `error` (keywords case-insensitive);
//! - attribute references, case-insensitive; `MY.Name` and `TARGET.Name`
//!   name the same attribute as `Name`;
//! - operators, lowest precedence first: `||`; `&&`; `==` `!=` `=?=` `=!=`
//!   (`is` / `isnt`); `<` `<=` `>` `>=`; `+` `-`; `*` `/` `%`; unary `!` `-`;
//! - three-valued logic: a missing attribute is `undefined`, which
//!   propagates through comparisons and arithmetic; type mismatches give
//!   `error` (see `eval.rs` for the exact rules).
//!
//! Not supported (a [`ParseError`] says where): function calls, lists,
//! nested ads, `?:`, bitwise operators, octal/hex literals.
//!
//! | file | what it holds |
//! |---|---|
//! | `classad.rs` | the public API, the syntax tree, printing expressions |
//! | `value.rs` | [`Value`] and how HTCondor prints values |
//! | `lexer.rs` | text to tokens |
//! | `parser.rs` | tokens to the syntax tree |
//! | `eval.rs` | the syntax tree and an ad to a [`Value`] |
//! | `tests.rs`, `robustness_tests.rs` | what expressions mean; that no input breaks the parser |

use std::collections::HashMap;
use std::fmt;

mod eval;
mod lexer;
mod parser;
#[cfg(test)]
mod robustness_tests;
#[cfg(test)]
mod tests;
mod value;

pub use value::Value;

/// Where an expression finds attribute values: a job ad.
pub trait Ad {
    /// The value of attribute `name` (already lowercase), or `None` if the
    /// ad has no such attribute (the expression then sees `undefined`).
    fn lookup(&self, name: &str) -> Option<Value>;
}

/// An ad held as a map from lowercase attribute name to value.
impl Ad for HashMap<String, Value> {
    fn lookup(&self, name: &str) -> Option<Value> {
        self.get(name).cloned()
    }
}

/// Why text is not an expression of the supported subset.
#[derive(Debug, Clone, PartialEq)]
pub struct ParseError {
    /// One line: what was expected and what was found.
    pub message: String,
    /// 1-based character column in the parsed text.
    pub column: usize,
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} at column {}", self.message, self.column)
    }
}

impl std::error::Error for ParseError {}

/// A parsed ClassAd expression. Its `Display` is canonical text that parses
/// back to an equal `Expr`: attribute names lowercase and unscoped, `is` /
/// `isnt` as `=?=` / `=!=`, only the parentheses precedence needs.
#[derive(Debug, Clone, PartialEq)]
pub struct Expr(Node);

impl Expr {
    pub fn parse(text: &str) -> Result<Expr, ParseError> {
        parser::parse(text).map(Expr)
    }

    /// The value of the expression for one ad. Never fails: problems are the
    /// `undefined` and `error` values, as in HTCondor.
    pub fn eval(&self, ad: &dyn Ad) -> Value {
        eval::eval(&self.0, ad)
    }

    /// The attributes the expression reads (lowercase, each once, in order
    /// of first use).
    pub fn references(&self) -> Vec<String> {
        fn walk(node: &Node, out: &mut Vec<String>) {
            match node {
                Node::Lit(_) => {}
                Node::Attr(name) => {
                    if !out.contains(name) {
                        out.push(name.clone());
                    }
                }
                Node::Not(operand) | Node::Neg(operand) => walk(operand, out),
                Node::Chain(first, rest) => {
                    walk(first, out);
                    rest.iter().for_each(|(_, operand)| walk(operand, out));
                }
            }
        }
        let mut out = Vec::new();
        walk(&self.0, &mut out);
        out
    }
}

/// Parses a ClassAd value as written after `+Name =` in a submit file. That
/// is any expression: HTCondor stores `+Foo = Bar + 1` as the expression
/// itself, to be evaluated later, and a literal is just the simplest one.
pub fn parse_value(text: &str) -> Result<Expr, ParseError> {
    Expr::parse(text)
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BinOp {
    Or,
    And,
    Eq,
    Ne,
    MetaEq,
    MetaNe,
    Lt,
    Le,
    Gt,
    Ge,
    Add,
    Sub,
    Mul,
    Div,
    Mod,
}

impl BinOp {
    /// Precedence level, 0 (`||`, loosest) to `parser::LEVELS - 1`.
    fn level(self) -> usize {
        match self {
            BinOp::Or => 0,
            BinOp::And => 1,
            BinOp::Eq | BinOp::Ne | BinOp::MetaEq | BinOp::MetaNe => 2,
            BinOp::Lt | BinOp::Le | BinOp::Gt | BinOp::Ge => 3,
            BinOp::Add | BinOp::Sub => 4,
            BinOp::Mul | BinOp::Div | BinOp::Mod => 5,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            BinOp::Or => "||",
            BinOp::And => "&&",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::MetaEq => "=?=",
            BinOp::MetaNe => "=!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
        }
    }
}

/// The syntax tree. Parentheses leave no node: the shape of the tree is the
/// grouping.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Lit(Value),
    /// Lowercase attribute name.
    Attr(String),
    Not(Box<Node>),
    Neg(Box<Node>),
    /// `first op1 x1 op2 x2 …`, evaluated left to right; all operators of one
    /// precedence level, at least one of them.
    Chain(Box<Node>, Vec<(BinOp, Node)>),
}

impl Node {
    /// Binding strength: a chain's level, or `parser::LEVELS` for anything
    /// that needs no parentheses anywhere.
    fn precedence(&self) -> usize {
        match self {
            Node::Chain(_, rest) => rest.first().map_or(parser::LEVELS, |(op, _)| op.level()),
            _ => parser::LEVELS,
        }
    }

    /// Writes `self`, parenthesized if it binds looser than `min`.
    fn write_operand(&self, min: usize, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.precedence() < min {
            write!(f, "({self})")
        } else {
            write!(f, "{self}")
        }
    }
}

impl fmt::Display for Node {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            // Reals print in Rust's shortest exact form (`1.5`, `1e20`), not
            // HTCondor's `%.16G`, so that the text reads back bit-for-bit.
            Node::Lit(Value::Real(r)) => write!(f, "{r:?}"),
            Node::Lit(value) => f.write_str(&value.to_classad_string()),
            Node::Attr(name) => f.write_str(name),
            Node::Not(operand) => {
                f.write_str("!")?;
                operand.write_operand(parser::LEVELS, f)
            }
            Node::Neg(operand) => {
                f.write_str("-")?;
                operand.write_operand(parser::LEVELS, f)
            }
            Node::Chain(first, rest) => {
                // Left-associative: a same-level chain on the left needs no
                // parentheses, one on the right does.
                let level = self.precedence();
                first.write_operand(level, f)?;
                for (op, operand) in rest {
                    write!(f, " {} ", op.symbol())?;
                    operand.write_operand(level + 1, f)?;
                }
                Ok(())
            }
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}
