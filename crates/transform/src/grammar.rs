//! The transform string of the Graph Transform Tool: `name` or
//! `name(param=value, param="quoted, value", ...)`, transforms separated by whitespace.
//!
//! Names and parameter names are `[A-Za-z0-9_]+`; an unquoted value runs up to the next `,`,
//! `)` or whitespace; a quoted value (`"..."`) may hold any of those. A parameter may repeat:
//! its values are collected in order.

use std::collections::BTreeMap;

/// One transform of the string with its parameters.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Transform {
    /// The transform's name as written.
    pub name: String,
    /// Parameter name → its values, in the order given.
    pub params: BTreeMap<String, Vec<String>>,
}

/// A transform string that does not parse; the message says where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("--transforms: {0}")]
pub struct GrammarError(pub String);

fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_'
}

/// Parses a transform string into its transforms, in order.
pub fn parse(s: &str) -> Result<Vec<Transform>, GrammarError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    let err = |at: usize, what: &str| {
        GrammarError(format!("{what} at character {} of '{}'", at + 1, s.escape_debug()))
    };
    let skip_ws = |i: &mut usize| {
        while *i < chars.len() && chars[*i].is_whitespace() {
            *i += 1;
        }
    };
    loop {
        skip_ws(&mut i);
        if i >= chars.len() {
            break;
        }
        let start = i;
        while i < chars.len() && is_name_char(chars[i]) {
            i += 1;
        }
        if i == start {
            return Err(err(i, &format!("expected a transform name, found '{}'", chars[i])));
        }
        let mut t = Transform { name: chars[start..i].iter().collect(), params: BTreeMap::new() };
        if i < chars.len() && chars[i] == '(' {
            i += 1;
            loop {
                skip_ws(&mut i);
                if i < chars.len() && chars[i] == ')' {
                    i += 1;
                    break;
                }
                let ps = i;
                while i < chars.len() && is_name_char(chars[i]) {
                    i += 1;
                }
                if i == ps {
                    return Err(err(i, &format!("expected a parameter name in '{}'", t.name)));
                }
                let pname: String = chars[ps..i].iter().collect();
                skip_ws(&mut i);
                if i >= chars.len() || chars[i] != '=' {
                    return Err(err(i, &format!("expected '=' after parameter '{pname}'")));
                }
                i += 1;
                skip_ws(&mut i);
                let value = if i < chars.len() && chars[i] == '"' {
                    i += 1;
                    let vs = i;
                    while i < chars.len() && chars[i] != '"' {
                        i += 1;
                    }
                    if i >= chars.len() {
                        return Err(err(vs - 1, &format!("unterminated quote in '{pname}'")));
                    }
                    let v: String = chars[vs..i].iter().collect();
                    i += 1;
                    v
                } else {
                    let vs = i;
                    while i < chars.len()
                        && !matches!(chars[i], ',' | ')' | '(' | '"')
                        && !chars[i].is_whitespace()
                    {
                        i += 1;
                    }
                    chars[vs..i].iter().collect()
                };
                t.params.entry(pname).or_default().push(value);
                skip_ws(&mut i);
                match chars.get(i) {
                    Some(',') => i += 1,
                    Some(')') => {
                        i += 1;
                        break;
                    }
                    Some(c) => return Err(err(i, &format!("expected ',' or ')', found '{c}'"))),
                    None => return Err(err(i, &format!("missing ')' after '{}'", t.name))),
                }
            }
        } else if i < chars.len() && !chars[i].is_whitespace() {
            return Err(err(i, &format!("unexpected '{}' after '{}'", chars[i], t.name)));
        }
        out.push(t);
    }
    Ok(out)
}

/// Parses a GTT boolean: `true`/`false`/`1`/`0` (any case).
pub fn parse_bool(v: &str) -> Option<bool> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "1" => Some(true),
        "false" | "0" => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(s: &str) -> Vec<Transform> {
        parse(s).unwrap()
    }

    #[test]
    fn names_and_params() {
        let t = p("  fold_constants(ignore_errors=true)\n  remove_device strip_unused_nodes(type=float, shape=\"1,299,299,3\")");
        assert_eq!(t.len(), 3);
        assert_eq!(t[0].name, "fold_constants");
        assert_eq!(t[0].params["ignore_errors"], ["true"]);
        assert!(t[1].params.is_empty());
        assert_eq!(t[2].params["shape"], ["1,299,299,3"]);
        assert_eq!(t[2].params["type"], ["float"]);
    }

    #[test]
    fn quoting_and_repeats() {
        let t =
            p(r#"remove_nodes(op=Identity, op=CheckNumerics) insert_logging(message="a, b (c)")"#);
        assert_eq!(t[0].params["op"], ["Identity", "CheckNumerics"]);
        assert_eq!(t[1].params["message"], ["a, b (c)"]);
        assert_eq!(
            p("rename_op(old_op_name=A/b.c-1,new_op_name=\"\")")[0].params["new_op_name"],
            [""]
        );
        assert_eq!(p("sort_by_execution_order()")[0].params.len(), 0);
        assert!(p("").is_empty());
    }

    #[test]
    fn errors() {
        for bad in
            ["fold(", "fold(a)", "fold(a=\"x)", "a(b=1 c=2)", "a)", "(x=1)", "a(=1)", "a(b=1,"]
        {
            let e = parse(bad).unwrap_err().to_string();
            assert!(e.starts_with("--transforms: "), "{bad}: {e}");
            assert!(!e.contains('\n'));
        }
    }

    #[test]
    fn bools() {
        assert_eq!(parse_bool("TRUE"), Some(true));
        assert_eq!(parse_bool("0"), Some(false));
        assert_eq!(parse_bool("yes"), None);
    }
}
