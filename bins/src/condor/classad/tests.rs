//! Tests of the ClassAd subset's meaning: the constraints the field uses,
//! every row of the three-valued tables, printing, parse errors.

use std::collections::HashMap;

use super::*;

pub(super) fn ad(pairs: &[(&str, Value)]) -> HashMap<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
        .collect()
}

pub(super) fn job() -> HashMap<String, Value> {
    ad(&[
        ("JobStatus", Value::Int(2)),
        ("Owner", Value::Str("alice".into())),
        ("RequestCpus", Value::Int(4)),
        ("RequestMemory", Value::Real(1536.5)),
        ("Bar", Value::Int(2)),
    ])
}

fn eval_in(text: &str, ad: &HashMap<String, Value>) -> Value {
    Expr::parse(text)
        .unwrap_or_else(|e| panic!("{text:?}: {e}"))
        .eval(ad)
}

/// Evaluates a constant expression (no attributes).
pub(super) fn ev(text: &str) -> Value {
    eval_in(text, &HashMap::new())
}

pub(super) fn parse_err(text: &str) -> ParseError {
    match Expr::parse(text) {
        Ok(e) => panic!("{text:?} parsed as {e}"),
        Err(e) => e,
    }
}

pub(super) const T: Value = Value::Bool(true);
pub(super) const F: Value = Value::Bool(false);
pub(super) const U: Value = Value::Undefined;
pub(super) const E: Value = Value::Error;

#[test]
fn constraints_used_in_the_field() {
    let idle = ad(&[("JobStatus", Value::Int(1))]);
    let running = job();
    let held = ad(&[("JobStatus", Value::Int(5))]);
    let none = HashMap::new();

    assert!(eval_in("JobStatus == 1", &idle).is_true());
    assert!(!eval_in("JobStatus == 1", &running).is_true());
    assert_eq!(eval_in("JobStatus == 1", &none), U);
    assert!(!eval_in("JobStatus == 1", &none).is_true());

    assert!(eval_in(r#"JobStatus == 2 && Owner == "alice""#, &running).is_true());
    assert_eq!(eval_in(r#"JobStatus == 2 && Owner == "bob""#, &running), F);
    assert_eq!(eval_in(r#"JobStatus == 2 && Owner == "alice""#, &idle), F);

    let idle_or_held = "(JobStatus == 1) || (JobStatus == 5)";
    assert_eq!(eval_in(idle_or_held, &idle), T);
    assert_eq!(eval_in(idle_or_held, &held), T);
    assert_eq!(eval_in(idle_or_held, &running), F);
    assert_eq!(eval_in(idle_or_held, &none), U);

    assert_eq!(eval_in("RequestCpus >= 4", &running), T);
    assert_eq!(eval_in("RequestCpus >= 5", &running), F);
    assert_eq!(eval_in("RequestMemory > 1536", &running), T);

    assert_eq!(eval_in("MyAttr =?= undefined", &running), T);
    assert_eq!(eval_in("Owner =?= undefined", &running), F);
    assert_eq!(eval_in("MyAttr =!= undefined", &running), F);

    assert_eq!(eval_in(r#"Owner == "ALICE""#, &running), T);
    assert_eq!(eval_in(r#"Owner =?= "ALICE""#, &running), F);
    assert_eq!(eval_in(r#"Owner =?= "alice""#, &running), T);
    assert_eq!(eval_in(r#"Owner != "ALICE""#, &running), F);
}

#[test]
fn attribute_names_are_case_insensitive_and_scopes_ignored() {
    let running = job();
    for text in [
        "jobstatus == 2",
        "JOBSTATUS == 2",
        "MY.JobStatus == 2",
        "my.jobstatus == 2",
        "TARGET.JobStatus == 2",
        "Target . JobStatus == 2",
    ] {
        assert_eq!(eval_in(text, &running), T, "{text}");
    }
    // Without a dot, `My` is an ordinary (here missing) attribute.
    assert_eq!(eval_in("My == 1", &running), U);
}

#[test]
fn comparisons_with_undefined_and_error() {
    for (text, want) in [
        ("undefined == 1", U),
        ("1 != undefined", U),
        ("undefined < 1", U),
        ("\"a\" >= undefined", U),
        ("undefined == undefined", U),
        ("error == 1", E),
        ("error == undefined", E),
        ("undefined == error", E),
        ("undefined =?= undefined", T),
        ("undefined =!= undefined", F),
        ("undefined =?= 1", F),
        ("undefined =!= 1", T),
        ("error =?= error", T),
        ("error =?= undefined", F),
        ("1 =?= 1", T),
        ("1 =?= 1.0", F),
        ("1 == 1.0", T),
        ("1 < 1.5", T),
        ("\"a\" =?= \"A\"", F),
        ("\"a\" =!= \"A\"", T),
        ("\"a\" == \"A\"", T),
        ("\"a\" != \"A\"", F),
        ("\"abc\" < \"ABD\"", T),
        ("\"b\" > \"A\"", T),
        ("true == true", T),
        ("true != false", T),
        ("false < true", T),
        ("true =?= true", T),
        ("\"a\" < 1", E),
        ("\"1\" == 1", E),
        ("true == 1", E),
        ("1.0 > false", E),
        ("\"x\" =?= 1", F),
        ("undefined is undefined", T),
        ("1 isnt 1", F),
        ("1 IS 1", T),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn logical_and_table() {
    for (text, want) in [
        ("true && true", T),
        ("true && false", F),
        ("false && true", F),
        ("false && false", F),
        ("false && undefined", F),
        ("false && error", F),
        ("false && \"x\"", F),
        ("true && undefined", U),
        ("true && error", E),
        ("true && \"x\"", E),
        ("undefined && false", F),
        ("undefined && true", U),
        ("undefined && undefined", U),
        ("undefined && error", E),
        ("undefined && \"x\"", E),
        ("error && false", E),
        ("error && true", E),
        ("\"x\" && true", E),
        ("1 && true", T),
        ("0 && undefined", F),
        ("2.5 && 3", T),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn logical_or_table() {
    for (text, want) in [
        ("true || true", T),
        ("true || false", T),
        ("false || true", T),
        ("false || false", F),
        ("true || undefined", T),
        ("true || error", T),
        ("true || \"x\"", T),
        ("false || undefined", U),
        ("false || error", E),
        ("false || \"x\"", E),
        ("undefined || true", T),
        ("undefined || false", U),
        ("undefined || undefined", U),
        ("undefined || error", E),
        ("error || true", E),
        ("\"x\" || true", E),
        ("0 || 0.0", F),
        ("0 || 7", T),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn logical_not_table() {
    for (text, want) in [
        ("!true", F),
        ("!false", T),
        ("!undefined", U),
        ("!error", E),
        ("!\"x\"", E),
        ("!0", T),
        ("!1.5", F),
        ("!!true", T),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn arithmetic() {
    for (text, want) in [
        ("1 + 2", Value::Int(3)),
        ("10 - 2 - 3", Value::Int(5)),
        ("100 / 10 / 5", Value::Int(2)),
        ("7 / 2", Value::Int(3)),
        ("-7 / 2", Value::Int(-3)),
        ("7 % 3", Value::Int(1)),
        ("-7 % 3", Value::Int(-1)),
        ("2 * 3 % 4", Value::Int(2)),
        ("1 + 1.5", Value::Real(2.5)),
        ("3.0 / 2", Value::Real(1.5)),
        ("2e3", Value::Real(2000.0)),
        ("1E-3 * 1000", Value::Real(1.0)),
        (".5 + 1.", Value::Real(1.5)),
        ("-2 * 3", Value::Int(-6)),
        ("- 2 - 3", Value::Int(-5)),
        ("--2", Value::Int(2)),
        ("-2.5", Value::Real(-2.5)),
        ("undefined + 1", U),
        ("1 * undefined", U),
        ("-undefined", U),
        ("undefined + error", E),
        ("-error", E),
        ("9223372036854775807", Value::Int(i64::MAX)),
        ("-9223372036854775807 - 1", Value::Int(i64::MIN)),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn arithmetic_errors() {
    for text in [
        "1 / 0",
        "1 % 0",
        "1.0 / 0",
        "1 / 0.0",
        "1.5 % 2",
        "\"a\" + 1",
        "\"a\" + \"b\"",
        "true + 1",
        "1 - false",
        "-\"x\"",
        "-true",
        "9223372036854775807 + 1",
        "-9223372036854775807 - 2",
        "(-9223372036854775807 - 1) / -1",
        "(-9223372036854775807 - 1) % -1",
        "-(-9223372036854775807 - 1)",
        "3037000500 * 3037000500",
        "1e308 * 10",
        "-1e308 * 10",
    ] {
        assert_eq!(ev(text), E, "{text}");
    }
}

#[test]
fn precedence() {
    for (text, want) in [
        ("1 + 2 * 3 == 7", T),
        ("(1 + 2) * 3 == 9", T),
        ("!false && false", F),
        ("!(false && false)", T),
        ("true || false && false", T),
        ("(true || false) && false", F),
        ("1 < 2 == true", T),
        ("1 + 2 == 3 && 4 > 3", T),
        ("2 * -3 + 1 == -5", T),
        ("!undefined || true", T),
        ("-1 < 0", T),
    ] {
        assert_eq!(ev(text), want, "{text}");
    }
}

#[test]
fn literals() {
    assert_eq!(ev("TRUE"), T);
    assert_eq!(ev("False"), F);
    assert_eq!(ev("UNDEFINED"), U);
    assert_eq!(ev("Error"), E);
    assert_eq!(ev("42"), Value::Int(42));
    assert_eq!(ev("007"), Value::Int(7));
    assert_eq!(
        ev(r#""a\"b\\c\nd\te\rf""#),
        Value::Str("a\"b\\c\nd\te\rf".into())
    );
    // Old-ClassAd leniency: other backslashes are kept as written.
    assert_eq!(ev(r#""C:\x""#), Value::Str("C:\\x".into()));
    assert_eq!(ev(r#""""#), Value::Str(String::new()));
    assert_eq!(ev("\"é ü\""), Value::Str("é ü".into()));
    assert_eq!(ev(" \t\n 1 \r\n"), Value::Int(1));
}

#[test]
fn parse_errors_say_what_and_where() {
    let e = parse_err("JobStatus ==");
    assert_eq!(e.column, 13);
    assert!(e.message.contains("found end of input"), "{e}");
    assert_eq!(e.to_string(), format!("{} at column 13", e.message));

    let e = parse_err("(1");
    assert_eq!(e.column, 3);
    assert!(
        e.message.contains("')'") && e.message.contains("column 1"),
        "{e}"
    );

    let e = parse_err("\"unterminated");
    assert_eq!(e.column, 1);
    assert!(e.message.contains("unterminated string"), "{e}");

    let e = parse_err("1 $ 2");
    assert_eq!(e.column, 3);
    assert!(e.message.contains("'$'"), "{e}");

    for (text, column, needle) in [
        ("", 1, "end of input"),
        ("   ", 4, "end of input"),
        ("1 2", 3, "expected an operator"),
        ("JobStatus = 1", 11, "'=='"),
        ("a & b", 3, "'&&'"),
        ("a | b", 3, "'||'"),
        ("a =! b", 3, "'=='"),
        ("MY.", 4, "attribute name after 'MY.'"),
        ("TARGET.true", 8, "attribute name"),
        ("Foo.Bar", 4, "'.'"),
        ("(1))", 4, "')'"),
        (")", 1, "')'"),
        ("1 +", 4, "end of input"),
        ("99999999999999999999", 1, "out of range"),
        ("1e999", 1, "out of range"),
        ("2e + 1", 1, "exponent"),
        ("f(1)", 2, "'('"),
        ("\"é\" $", 5, "'$'"),
        ("== \"unterminated", 1, "'=='"),
        ("x \"abcdefghijklmnopqrstuvwxyz0123\"", 3, "…"),
        ("x \"a\nb\"", 3, "\\n"),
    ] {
        let e = parse_err(text);
        assert_eq!(e.column, column, "{text:?}: {e}");
        assert!(e.message.contains(needle), "{text:?}: {e}");
        assert!(!e.message.contains('\n'), "{text:?}: {e}");
    }
}

#[test]
fn canonical_text() {
    for (text, want) in [
        (
            "(JobStatus == 1) || (JobStatus == 5)",
            "jobstatus == 1 || jobstatus == 5",
        ),
        ("MY.Foo is UNDEFINED", "foo =?= undefined"),
        ("TARGET.Foo isnt Error", "foo =!= error"),
        ("(1 + 2) * 3", "(1 + 2) * 3"),
        ("1 - (2 - 3)", "1 - (2 - 3)"),
        ("(1 - 2) - 3", "1 - 2 - 3"),
        ("((a))", "a"),
        ("!(a && b)", "!(a && b)"),
        ("- -1", "--1"),
        ("-(1 + 2)", "-(1 + 2)"),
        ("2e3", "2000.0"),
        ("1.5e300", "1.5e300"),
        ("TRUE&&false", "true && false"),
        (r#""a\"b\\c\nd""#, r#""a\"b\\c\nd""#),
        ("a || b && c", "a || b && c"),
        ("(a || b) && c", "(a || b) && c"),
    ] {
        let expr = Expr::parse(text).unwrap();
        assert_eq!(expr.to_string(), want, "{text}");
        assert_eq!(Expr::parse(want).unwrap(), expr, "{text}");
    }
    assert_eq!(
        Expr::parse("Foo == 1").unwrap(),
        Expr::parse("foo==1").unwrap()
    );
}

#[test]
fn references_are_lowercase_and_unique() {
    let e = Expr::parse(r#"JobStatus == 1 && Owner == "x" || JOBSTATUS == 2"#).unwrap();
    assert_eq!(e.references(), vec!["jobstatus", "owner"]);
    let e = Expr::parse("MY.Foo + -TARGET.foo * !Bar").unwrap();
    assert_eq!(e.references(), vec!["foo", "bar"]);
    assert!(Expr::parse("1 + 2").unwrap().references().is_empty());
}

#[test]
fn parse_value_keeps_expressions() {
    let j = job();
    assert_eq!(
        parse_value(r#""hello""#).unwrap().eval(&j),
        Value::Str("hello".into())
    );
    assert_eq!(parse_value("Bar + 1").unwrap().eval(&j), Value::Int(3));
    assert_eq!(parse_value("Bar + 1").unwrap().to_string(), "bar + 1");
    assert_eq!(parse_value("undefined").unwrap().eval(&j), U);
    assert_eq!(parse_value("-1.5").unwrap().eval(&j), Value::Real(-1.5));
    assert!(parse_value("").is_err());
}

#[test]
fn values_print_like_htcondor() {
    for (value, classad) in [
        (Value::Int(5), "5"),
        (Value::Int(-5), "-5"),
        (Value::Real(1.5), "1.5"),
        (Value::Real(-2.5), "-2.5"),
        (Value::Real(2000.0), "2000.0"),
        (Value::Real(1e15), "1000000000000000.0"),
        (Value::Real(1e16), "1E+16"),
        (Value::Real(1e20), "1E+20"),
        (Value::Real(1.25e-7), "1.25E-07"),
        (Value::Real(0.0001), "0.0001"),
        (Value::Real(0.1 + 0.2), "0.3"),
        (Value::Real(1.0 / 3.0), "0.3333333333333333"),
        (Value::Real(123456789012345678.0), "1.234567890123457E+17"),
        (Value::Real(9_999_999_999_999_998.0), "9999999999999998.0"),
        (Value::Real(99999.99999999999), "99999.99999999999"),
        (Value::Real(0.0), "0.0"),
        (Value::Real(-0.0), "-0.0"),
        (Value::Real(f64::NAN), "real(\"NaN\")"),
        (Value::Real(f64::INFINITY), "real(\"INF\")"),
        (Value::Real(f64::NEG_INFINITY), "real(\"-INF\")"),
        (Value::Str("a\"b\\c\nd".into()), r#""a\"b\\c\nd""#),
        (T, "true"),
        (F, "false"),
        (U, "undefined"),
        (E, "error"),
    ] {
        assert_eq!(value.to_classad_string(), classad, "{value:?}");
    }
    assert_eq!(Value::Str("a \"b\"".into()).to_plain_string(), "a \"b\"");
    assert_eq!(Value::Real(2000.0).to_plain_string(), "2000.0");
    assert_eq!(U.to_plain_string(), "undefined");
    assert!(T.is_true());
    for v in [F, U, E, Value::Int(1), Value::Str("true".into())] {
        assert!(!v.is_true(), "{v:?}");
    }
}
