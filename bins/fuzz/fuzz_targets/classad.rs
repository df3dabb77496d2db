//! Any text: parsing never panics, and whatever parses evaluates (against an
//! ad that has a few attributes) and prints back to text that parses to the
//! same expression.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pilotq::condor::classad::{Expr, Value};
use std::collections::HashMap;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let Ok(expr) = Expr::parse(text) else { return };
    let ad: HashMap<String, Value> = [
        ("jobstatus".to_string(), Value::Int(2)),
        ("owner".to_string(), Value::Str("alice".into())),
        ("requestmemory".to_string(), Value::Real(2048.0)),
    ]
    .into_iter()
    .collect();
    let _ = expr.eval(&ad);
    let again = Expr::parse(&expr.to_string()).expect("printed expressions parse");
    assert_eq!(again, expr, "round trip of {text:?}");
});
