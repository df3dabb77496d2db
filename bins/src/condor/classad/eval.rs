//! Evaluating the AST against one ad, with ClassAd's three-valued logic.
//!
//! The rules follow HTCondor's classad library (operators.cpp): comparison
//! and arithmetic are strict (`error` wins over `undefined`, and either
//! operand exceptional makes the result exceptional); `&&` and `||` are not
//! strict and short-circuit; `=?=` / `=!=` never yield `undefined`.
//!
//! Deliberate simplifications: HTCondor promotes booleans to 0/1 in
//! comparisons and arithmetic (`true == 1`), here that is `error`; HTCondor
//! lets integers wrap and reals reach -INF or NaN, here overflow and any
//! non-finite result are `error`.

use std::cmp::Ordering;

use super::{Ad, BinOp, Node, Value};

pub(super) fn eval(node: &Node, ad: &dyn Ad) -> Value {
    match node {
        Node::Lit(value) => value.clone(),
        // A missing attribute is `undefined`, never an error.
        Node::Attr(name) => ad.lookup(name).unwrap_or(Value::Undefined),
        Node::Not(operand) => not(eval(operand, ad)),
        Node::Neg(operand) => negate(eval(operand, ad)),
        Node::Chain(first, rest) => {
            let mut acc = eval(first, ad);
            for (op, operand) in rest {
                acc = match op {
                    BinOp::Or | BinOp::And => logical(*op, acc, || eval(operand, ad)),
                    BinOp::Add | BinOp::Sub | BinOp::Mul | BinOp::Div | BinOp::Mod => {
                        arithmetic(*op, &acc, &eval(operand, ad))
                    }
                    _ => compare(*op, &acc, &eval(operand, ad)),
                };
            }
            acc
        }
    }
}

/// HTCondor's "boolean equivalent": logical operators also accept numbers,
/// non-zero meaning true.
fn truth(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::Int(i) => Some(*i != 0),
        Value::Real(r) => Some(*r != 0.0),
        _ => None,
    }
}

/// An operand of `&&`, `||` or `!`: a boolean or an exceptional value;
/// `None` for a string, which has no truth value.
fn logical_operand(value: Value) -> Option<Value> {
    match value {
        Value::Undefined | Value::Error => Some(value),
        other => truth(&other).map(Value::Bool),
    }
}

/// `left || right` or `left && right`. The right side is evaluated only when
/// the left does not decide (`true || x` is true, `false && x` is false,
/// whatever x is); otherwise `undefined` gives way to the value that decides
/// (`undefined || true` is true, `undefined && false` is false).
fn logical(op: BinOp, left: Value, right: impl FnOnce() -> Value) -> Value {
    let deciding = op == BinOp::Or;
    if truth(&left) == Some(deciding) {
        return Value::Bool(deciding);
    }
    let (Some(left), Some(right)) = (logical_operand(left), logical_operand(right())) else {
        return Value::Error;
    };
    match left {
        Value::Error => Value::Error,
        // The left is the non-deciding boolean: the right is the answer.
        Value::Bool(_) => right,
        _ => match right {
            Value::Bool(b) if b == deciding => right,
            Value::Bool(_) => Value::Undefined,
            exceptional => exceptional,
        },
    }
}

fn not(value: Value) -> Value {
    match logical_operand(value) {
        Some(Value::Bool(b)) => Value::Bool(!b),
        Some(exceptional) => exceptional,
        None => Value::Error,
    }
}

fn negate(value: Value) -> Value {
    match value {
        Value::Int(i) => i.checked_neg().map_or(Value::Error, Value::Int),
        Value::Real(r) => Value::Real(-r),
        Value::Undefined | Value::Error => value,
        // HTCondor would negate a boolean; this subset keeps booleans out of
        // arithmetic altogether.
        Value::Str(_) | Value::Bool(_) => Value::Error,
    }
}

/// The result of a strict operator with an exceptional operand, if any:
/// `error` takes precedence over `undefined`.
fn exceptional(left: &Value, right: &Value) -> Option<Value> {
    if matches!(left, Value::Error) || matches!(right, Value::Error) {
        Some(Value::Error)
    } else if matches!(left, Value::Undefined) || matches!(right, Value::Undefined) {
        Some(Value::Undefined)
    } else {
        None
    }
}

fn as_real(value: &Value) -> Option<f64> {
    match value {
        Value::Int(i) => Some(*i as f64),
        Value::Real(r) => Some(*r),
        _ => None,
    }
}

/// `=?=`: same type and same value, strings compared case-sensitively;
/// `undefined =?= undefined` and `error =?= error` are true. No numeric
/// promotion: `1 =?= 1.0` is false.
fn identical(left: &Value, right: &Value) -> bool {
    match (left, right) {
        (Value::Int(a), Value::Int(b)) => a == b,
        (Value::Real(a), Value::Real(b)) => a == b,
        (Value::Str(a), Value::Str(b)) => a == b,
        (Value::Bool(a), Value::Bool(b)) => a == b,
        (Value::Undefined, Value::Undefined) | (Value::Error, Value::Error) => true,
        _ => false,
    }
}

fn holds<T: PartialOrd>(op: BinOp, a: T, b: T) -> bool {
    match op {
        BinOp::Eq => a == b,
        BinOp::Ne => a != b,
        BinOp::Lt => a < b,
        BinOp::Le => a <= b,
        BinOp::Gt => a > b,
        BinOp::Ge => a >= b,
        _ => false,
    }
}

fn compare(op: BinOp, left: &Value, right: &Value) -> Value {
    match op {
        BinOp::MetaEq => return Value::Bool(identical(left, right)),
        BinOp::MetaNe => return Value::Bool(!identical(left, right)),
        _ => {}
    }
    if let Some(result) = exceptional(left, right) {
        return result;
    }
    Value::Bool(match (left, right) {
        // strcasecmp, as HTCondor: "alice" == "ALICE".
        (Value::Str(a), Value::Str(b)) => {
            fn fold(s: &str) -> impl Iterator<Item = u8> + '_ {
                s.bytes().map(|c| c.to_ascii_lowercase())
            }
            holds(op, fold(a).cmp(fold(b)), Ordering::Equal)
        }
        (Value::Int(a), Value::Int(b)) => holds(op, a, b),
        (Value::Bool(a), Value::Bool(b)) => holds(op, a, b),
        _ => match (as_real(left), as_real(right)) {
            (Some(a), Some(b)) => holds(op, a, b),
            // A string or boolean against anything of another type.
            _ => return Value::Error,
        },
    })
}

/// `+ - * / %`: int with int stays int (C truncating division), a real
/// operand makes the result real. Overflow, division by zero and `%` on
/// reals (HTCondor: EDOM) are `error`; so is a real result that overflows.
fn arithmetic(op: BinOp, left: &Value, right: &Value) -> Value {
    if let Some(result) = exceptional(left, right) {
        return result;
    }
    if let (Value::Int(a), Value::Int(b)) = (left, right) {
        let result = match op {
            BinOp::Add => a.checked_add(*b),
            BinOp::Sub => a.checked_sub(*b),
            BinOp::Mul => a.checked_mul(*b),
            BinOp::Div => a.checked_div(*b),
            _ => a.checked_rem(*b),
        };
        return result.map_or(Value::Error, Value::Int);
    }
    let (Some(a), Some(b)) = (as_real(left), as_real(right)) else {
        return Value::Error;
    };
    let result = match op {
        BinOp::Add => a + b,
        BinOp::Sub => a - b,
        BinOp::Mul => a * b,
        BinOp::Div if b != 0.0 => a / b,
        _ => return Value::Error,
    };
    if result.is_finite() {
        Value::Real(result)
    } else {
        Value::Error
    }
}
