//! Tests that no input can break the parser: the nesting cap and the stack
//! it protects, long chains, random text, and generated expressions that
//! must print back to themselves.

use std::collections::HashMap;

use super::tests::{ad, ev, job, parse_err, E, F, T, U};
use super::*;

#[test]
fn nesting_is_capped() {
    let max = parser::MAX_NESTING;
    let ok = format!("{}1{}", "(".repeat(max), ")".repeat(max));
    assert_eq!(ev(&ok), Value::Int(1));
    let deep = format!("{}1{}", "(".repeat(max + 1), ")".repeat(max + 1));
    assert!(parse_err(&deep).message.contains("nested too deeply"));
    let nots = format!("{}true", "!".repeat(100_000));
    assert!(parse_err(&nots).message.contains("nested too deeply"));
    assert!(parse_err(&"(".repeat(1_000_000))
        .message
        .contains("nested too deeply"));
}

/// The worst case the nesting cap allows: every parenthesis opens all six
/// precedence levels, so the tree is six times as tall as the nesting.
fn tallest(parens: usize) -> String {
    let mut text = "x".to_string();
    for _ in 0..parens {
        text = format!("a || b && c == d < e + f * ({text})");
    }
    text
}

#[test]
fn deepest_allowed_tree_fits_in_a_small_stack() {
    // 1 MiB: half of what a spawned thread (tokio's workers included) gets,
    // in an unoptimized build whose frames are several times larger.
    let worker = std::thread::Builder::new().stack_size(1 << 20);
    let joined = worker.spawn(|| {
        let expr = Expr::parse(&tallest(parser::MAX_NESTING)).unwrap();
        assert_eq!(expr.eval(&HashMap::new()), U);
        let copy = expr.clone();
        assert_eq!(Expr::parse(&copy.to_string()).unwrap(), expr);
        assert_eq!(expr.references().len(), 7);
        let nots = format!("{}true", "!-".repeat(parser::MAX_NESTING / 2));
        assert_eq!(Expr::parse(&nots).unwrap().eval(&HashMap::new()), E);
    });
    joined.unwrap().join().unwrap();
    let e = parse_err(&tallest(parser::MAX_NESTING + 1));
    assert!(e.message.contains("nested too deeply"), "{e}");
}

#[test]
fn long_chains_do_not_deepen_the_tree() {
    let text = (1..=20_000)
        .map(|i| format!("ClusterId == {i}"))
        .collect::<Vec<_>>()
        .join(" || ");
    let expr = Expr::parse(&text).unwrap();
    assert_eq!(expr.eval(&ad(&[("ClusterId", Value::Int(19_999))])), T);
    assert_eq!(expr.eval(&ad(&[("ClusterId", Value::Int(0))])), F);
    assert_eq!(Expr::parse(&expr.to_string()).unwrap(), expr);
    let sum = vec!["1"; 50_000].join(" + ");
    assert_eq!(ev(&sum), Value::Int(50_000));
}

/// xorshift64: deterministic pseudo-random numbers without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

#[test]
fn parse_never_panics_on_random_text() {
    const PIECES: &[&str] = &[
        "(",
        ")",
        "!",
        "-",
        "+",
        "*",
        "/",
        "%",
        "=",
        "==",
        "=?=",
        "=!=",
        "!=",
        "<",
        "<=",
        ">",
        ">=",
        "&&",
        "||",
        "&",
        "|",
        "\"",
        "\\",
        ".",
        "e",
        "E",
        "1",
        "0",
        "9",
        ".5",
        "1e",
        "my.",
        "TARGET.",
        "is",
        "isnt",
        "true",
        "undefined",
        "error",
        "Foo",
        "_x",
        " ",
        "\t",
        "\n",
        "é",
        "$",
        "?",
        "{",
        ",",
        "\u{0}",
        "99999999999999999999",
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let ad = job();
    let mut parsed = 0;
    for _ in 0..30_000 {
        let mut bytes = Vec::new();
        if rng.chance(2) {
            // A valid expression with a few bytes changed: errors near validity.
            bytes = gen_expr(&mut rng, 4).into_bytes();
            for _ in 0..=rng.below(3) {
                let at = rng.below(bytes.len() + 1);
                match rng.below(3) {
                    0 if at < bytes.len() => drop(bytes.remove(at)),
                    1 if at < bytes.len() => bytes[at] = rng.next() as u8,
                    _ => bytes
                        .splice(at..at, rng.pick(PIECES).bytes())
                        .for_each(drop),
                }
            }
        } else {
            for _ in 0..rng.below(40) {
                if rng.chance(3) {
                    bytes.push(rng.next() as u8);
                } else {
                    bytes.extend_from_slice(rng.pick(PIECES).as_bytes());
                }
            }
        }
        let text = String::from_utf8_lossy(&bytes);
        match Expr::parse(&text) {
            Ok(expr) => {
                parsed += 1;
                let _ = expr.eval(&ad);
                let again = Expr::parse(&expr.to_string())
                    .unwrap_or_else(|e| panic!("{text:?} printed as {expr}: {e}"));
                assert_eq!(again, expr, "{text:?}");
            }
            Err(e) => {
                assert!(
                    e.column >= 1 && e.column <= text.chars().count() + 1,
                    "{text:?}: {e}"
                );
                assert!(
                    !e.message.is_empty() && !e.message.contains('\n'),
                    "{text:?}"
                );
            }
        }
    }
    // Some random texts are expressions: the Ok branch is exercised too.
    assert!(parsed > 1_000, "only {parsed} random texts parsed");
}

/// Random valid expression text, with the spellings people use: any case,
/// scopes, `is`/`isnt`, redundant parentheses, odd spacing.
fn gen_expr(rng: &mut Rng, depth: usize) -> String {
    if depth == 0 || rng.chance(4) {
        return match rng.below(7) {
            0 => rng.below(1000).to_string(),
            1 => rng
                .pick(&[
                    "1.5",
                    "2e3",
                    ".5",
                    "1e-7",
                    "0.1",
                    "3.25E10",
                    "7.",
                    "9223372036854775807",
                ])
                .to_string(),
            2 => {
                let body: String = (0..rng.below(6))
                    .map(|_| rng.pick(&["a", "B", " ", "\\\"", "\\\\", "\\n", "\\t", "é", "\\q"]))
                    .collect();
                format!("\"{body}\"")
            }
            3 => rng.pick(&["true", "FALSE", "True", "false"]).to_string(),
            4 => rng
                .pick(&["undefined", "UNDEFINED", "error", "Error"])
                .to_string(),
            _ => {
                let scope = rng.pick(&["", "", "MY.", "TARGET.", "my."]);
                let name =
                    rng.pick(&["JobStatus", "owner", "REQUESTCPUS", "Bar", "missing", "_x1"]);
                format!("{scope}{name}")
            }
        };
    }
    let space = |rng: &mut Rng| rng.pick(&[" ", " ", "  ", "\t", "\n"]).to_string();
    let text = match rng.below(5) {
        0 => format!(
            "{}{}",
            rng.pick(&["!", "-", "- ", "!"]),
            gen_expr(rng, depth - 1)
        ),
        _ => {
            let op = rng.pick(&[
                "||", "&&", "==", "!=", "=?=", "=!=", "is", "isnt", "<", "<=", ">", ">=", "+", "-",
                "*", "/", "%",
            ]);
            let (a, b) = (gen_expr(rng, depth - 1), gen_expr(rng, depth - 1));
            let (s1, s2) = (space(rng), space(rng));
            format!("{a}{s1}{op}{s2}{b}")
        }
    };
    if rng.chance(3) {
        format!("({text})")
    } else {
        text
    }
}

#[test]
fn generated_expressions_round_trip() {
    let mut rng = Rng(0xD1B5_4A32_D192_ED03);
    let ad = job();
    for _ in 0..5_000 {
        let text = gen_expr(&mut rng, 5);
        let expr = Expr::parse(&text).unwrap_or_else(|e| panic!("{text:?}: {e}"));
        let printed = expr.to_string();
        let again = Expr::parse(&printed).unwrap_or_else(|e| panic!("{printed:?}: {e}"));
        assert_eq!(again, expr, "{text:?} printed as {printed:?}");
        assert_eq!(again.to_string(), printed);
        assert_eq!(again.eval(&ad), expr.eval(&ad), "{text:?}");
        assert_eq!(again.references(), expr.references());
    }
}
