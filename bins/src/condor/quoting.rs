//! The quoting rules of HTCondor's `arguments` and `environment` values.
//!
//! Both come in two syntaxes, told apart the way HTCondor's `ArgList` and
//! `Env` classes (`condor_arglist.cpp`, `env.cpp`) tell them apart: a value
//! whose first non-blank character is a double quote is the "new" syntax,
//! anything else the "old" one.
//!
//! * New syntax: the whole value sits in double quotes, `""` inside being a
//!   literal double quote, and nothing but blanks may follow the closing
//!   quote. What is inside is split on blanks; single quotes group words
//!   (spaces included) into one item, `''` inside them is a literal single
//!   quote, and `''` on its own is an empty item.
//! * Old arguments: split on blanks; a double quote must be written `\"`
//!   (HTCondor rejects a bare one); single quotes and other backslashes are
//!   ordinary characters.
//! * Old environment: `NAME=value` entries separated by `;` (or a newline);
//!   leading blanks of an entry are dropped, the rest is kept verbatim, empty
//!   entries are skipped.
//!
//! Environment entries of either syntax must have a `=` after a non-empty
//! name: HTCondor refuses the submission otherwise, and so do we, with one
//! message naming the entry (the deployment pilotq replaces could hang on
//! such an entry).

use std::collections::BTreeMap;

/// The blanks HTCondor splits on (`split_args`): space, tab, CR, LF.
fn is_blank(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r')
}

/// Job arguments as HTCondor's `condor_submit` reads the `arguments` value
/// (`ArgList::AppendArgsV1WackedOrV2Quoted`).
pub fn parse_arguments(value: &str) -> Result<Vec<String>, String> {
    reject_nul(value)?;
    if is_new_syntax(value) {
        split_new_syntax(&unquote_new_syntax(value)?)
    } else {
        let mut raw = String::with_capacity(value.len());
        let mut chars = value.chars().peekable();
        while let Some(c) = chars.next() {
            match c {
                '\\' if chars.peek() == Some(&'"') => {
                    raw.push('"');
                    chars.next();
                }
                // HTCondor: "Found illegal unescaped double-quote".
                '"' => {
                    return Err(
                        "a double quote in old-style arguments must be written \\\" \
                         (or put the whole value in double quotes: new syntax)"
                            .to_string(),
                    )
                }
                c => raw.push(c),
            }
        }
        Ok(raw
            .split(is_blank)
            .filter(|a| !a.is_empty())
            .map(str::to_string)
            .collect())
    }
}

/// A job's environment as HTCondor's `condor_submit` reads the `environment`
/// value (`Env::MergeFromV1RawOrV2Quoted`). A later entry for the same name
/// replaces an earlier one.
pub fn parse_environment(value: &str) -> Result<BTreeMap<String, String>, String> {
    reject_nul(value)?;
    let mut env = BTreeMap::new();
    if is_new_syntax(value) {
        for entry in split_new_syntax(&unquote_new_syntax(value)?)? {
            set_entry(&mut env, &entry)?;
        }
    } else {
        // `Env::ReadFromDelimitedString`: ';' or newline ends an entry,
        // leading blanks are dropped, an empty entry is skipped.
        for entry in value.split([';', '\n']) {
            let entry = entry.trim_start_matches(is_blank);
            if !entry.is_empty() {
                set_entry(&mut env, entry)?;
            }
        }
    }
    Ok(env)
}

/// `Env::SetEnvWithErrorMessage`: split at the first `=`; no `=` or an
/// empty name is an error.
fn set_entry(env: &mut BTreeMap<String, String>, entry: &str) -> Result<(), String> {
    match entry.find('=') {
        None => Err(format!(
            "environment entry '{entry}' has no '=' (entries are NAME=value)"
        )),
        Some(0) => Err(format!(
            "environment entry '{entry}' has an empty variable name"
        )),
        Some(eq) => {
            env.insert(entry[..eq].to_string(), entry[eq + 1..].to_string());
            Ok(())
        }
    }
}

/// A NUL cannot reach a process's argv or environment (HTCondor's C strings
/// would silently cut the value there); say so rather than let a job fail
/// later at spawn time.
fn reject_nul(value: &str) -> Result<(), String> {
    if value.contains('\0') {
        Err("the value contains a NUL character".to_string())
    } else {
        Ok(())
    }
}

/// `ArgList::IsV2QuotedString`: leading blanks allowed, then a `"`.
fn is_new_syntax(value: &str) -> bool {
    value.trim_start().starts_with('"')
}

/// `ArgList::V2QuotedToV2Raw`: strip the enclosing double quotes, turning
/// `""` into `"`; only blanks may follow the closing quote.
fn unquote_new_syntax(value: &str) -> Result<String, String> {
    let inner = value.trim_start();
    let inner = inner.strip_prefix('"').unwrap_or(inner);
    let mut raw = String::with_capacity(inner.len());
    let mut chars = inner.char_indices().peekable();
    while let Some((i, c)) = chars.next() {
        if c != '"' {
            raw.push(c);
        } else if chars.peek().map(|&(_, n)| n) == Some('"') {
            raw.push('"');
            chars.next();
        } else {
            let rest = &inner[i + 1..];
            if rest.trim_start().is_empty() {
                return Ok(raw);
            }
            return Err(format!(
                "unexpected text after the closing double quote: '{}' \
                 (a literal double quote inside the value is written \"\")",
                rest.trim()
            ));
        }
    }
    Err("unbalanced double quote: the value starts with \" but never closes it".to_string())
}

/// `split_args`: split on blanks; `'...'` groups, `''` inside it is a
/// literal `'`; an empty `''` still makes an item.
fn split_new_syntax(raw: &str) -> Result<Vec<String>, String> {
    let mut items = Vec::new();
    let mut item = String::new();
    let mut in_item = false;
    let mut chars = raw.char_indices().peekable();
    while let Some((start, c)) = chars.next() {
        match c {
            '\'' => {
                in_item = true;
                loop {
                    match chars.next() {
                        Some((_, '\'')) => {
                            if chars.peek().map(|&(_, n)| n) == Some('\'') {
                                item.push('\'');
                                chars.next();
                            } else {
                                break;
                            }
                        }
                        Some((_, c)) => item.push(c),
                        None => {
                            return Err(format!(
                                "unbalanced single quote starting at: {}",
                                &raw[start..]
                            ))
                        }
                    }
                }
            }
            c if is_blank(c) => {
                if in_item {
                    items.push(std::mem::take(&mut item));
                    in_item = false;
                }
            }
            c => {
                in_item = true;
                item.push(c);
            }
        }
    }
    if in_item {
        items.push(item);
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(v: &str) -> Vec<String> {
        parse_arguments(v).unwrap_or_else(|e| panic!("{v:?}: {e}"))
    }

    fn env(v: &str) -> Vec<(String, String)> {
        parse_environment(v)
            .unwrap_or_else(|e| panic!("{v:?}: {e}"))
            .into_iter()
            .collect()
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    // The examples of HTCondor's condor_submit manual page.
    #[test]
    fn new_syntax_arguments_manual_examples() {
        assert_eq!(
            args(r#""3 simple arguments""#),
            ["3", "simple", "arguments"]
        );
        assert_eq!(
            args(r#""one 'two with spaces' 3""#),
            ["one", "two with spaces", "3"]
        );
        assert_eq!(
            args(r#""one ""two"" 'spacey ''quoted'' argument'""#),
            ["one", "\"two\"", "spacey 'quoted' argument"]
        );
    }

    #[test]
    fn new_syntax_arguments_details() {
        assert_eq!(args(r#""""#), Vec::<String>::new());
        assert_eq!(args(r#"  "a  b"  "#), ["a", "b"]);
        // An empty quoted item is an empty argument; quotes may sit inside a word.
        assert_eq!(args(r#""a '' b""#), ["a", "", "b"]);
        assert_eq!(args(r#""x'y z'w""#), ["xy zw"]);
        // Backslashes are ordinary in the new syntax.
        assert_eq!(args(r#""a\b c\""#), ["a\\b", "c\\"]);
        assert_eq!(args("\"a\tb\""), ["a", "b"]);
    }

    #[test]
    fn old_syntax_arguments() {
        assert_eq!(
            args(r#"one \"two\" 'three'"#),
            ["one", "\"two\"", "'three'"]
        );
        assert_eq!(args("  a   b\tc  "), ["a", "b", "c"]);
        assert_eq!(args(""), Vec::<String>::new());
        assert_eq!(args(r"a\b c\"), ["a\\b", "c\\"]);
        assert_eq!(args("-n 5 --x=y"), ["-n", "5", "--x=y"]);
    }

    #[test]
    fn argument_errors() {
        let unbalanced = parse_arguments(r#""one 'two""#).unwrap_err();
        assert!(
            unbalanced.contains("unbalanced single quote"),
            "{unbalanced}"
        );
        let open = parse_arguments(r#""one two"#).unwrap_err();
        assert!(open.contains("unbalanced double quote"), "{open}");
        let trailing = parse_arguments(r#""one" two"#).unwrap_err();
        assert!(
            trailing.contains("after the closing double quote"),
            "{trailing}"
        );
        let bare = parse_arguments(r#"one "two""#).unwrap_err();
        assert!(bare.contains("must be written"), "{bare}");
        assert!(parse_arguments("a\0b").is_err());
    }

    #[test]
    fn new_syntax_environment_manual_example() {
        assert_eq!(
            env(r#""one=1 two=""2"" three='spacey ''quoted'' value'""#),
            pairs(&[
                ("one", "1"),
                ("three", "spacey 'quoted' value"),
                ("two", "\"2\""),
            ])
        );
        assert_eq!(env(r#""A=1 B='x y'""#), pairs(&[("A", "1"), ("B", "x y")]));
        // Empty values are allowed; a later entry wins; '=' may recur in a value.
        assert_eq!(
            env(r#""E= A=1 A=2 Q=a=b""#),
            pairs(&[("A", "2"), ("E", ""), ("Q", "a=b")])
        );
    }

    #[test]
    fn old_syntax_environment() {
        assert_eq!(env("A=1;B=2"), pairs(&[("A", "1"), ("B", "2")]));
        assert_eq!(
            env("A=1; B=x y;;C="),
            pairs(&[("A", "1"), ("B", "x y"), ("C", "")])
        );
        assert_eq!(env(""), pairs(&[]));
        // Quotes are ordinary characters in the old syntax.
        assert_eq!(env("P='a b'"), pairs(&[("P", "'a b'")]));
    }

    #[test]
    fn environment_errors() {
        for bad in ["A=1;B", r#""A=1 B""#] {
            let e = parse_environment(bad).unwrap_err();
            assert!(e.contains("'B' has no '='"), "{bad}: {e}");
        }
        for bad in ["A=1;=2", r#""=2""#] {
            let e = parse_environment(bad).unwrap_err();
            assert!(e.contains("empty variable name"), "{bad}: {e}");
        }
        let e = parse_environment(r#""A='x""#).unwrap_err();
        assert!(e.contains("unbalanced single quote"), "{e}");
        let e = parse_environment(r#""A=x"#).unwrap_err();
        assert!(e.contains("unbalanced double quote"), "{e}");
        assert!(parse_environment("A=\0").is_err());
    }
}
