//! Protobuf text format (pbtxt) for the messages the tools read and write.
//!
//! Parsing goes through prost-reflect's text-format parser and the descriptor pool of our own
//! schemas (`tf_proto::parse_text_format`). Printing is done here, in the layout TensorFlow's
//! `text_format` uses (`node {` blocks, two-space indents, fields in number order, map entries
//! sorted by key, non-ASCII bytes as octal escapes), because the output must be deterministic
//! and familiar: prost-reflect keeps maps in a `HashMap` and prints lists as `[..]`.
//!
//! Both directions recurse once per nested message, so nesting is bounded by
//! [`MAX_DEPTH`] (100 levels, the limit prost applies to binary input): deeper text is refused
//! with its line and column before the parser sees it, instead of overflowing the stack.

use std::fmt::Write;

use prost_reflect::{DynamicMessage, Kind, MapKey, Value};

/// The deepest nesting of messages (and lists) accepted in text, as prost's recursion limit
/// for binary input.
pub const MAX_DEPTH: usize = 100;

/// Parses pbtxt into `T`; the error is the parser's message (with line and column).
pub fn parse<T: prost::Message + prost::Name + Default>(text: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("text is not UTF-8: {e}"))?;
    check_depth(text)?;
    tf_proto::parse_text_format(text).map_err(|e| e.to_string())
}

/// Refuses text whose `{`/`<`/`[` nesting (outside strings and `#` comments) goes deeper
/// than [`MAX_DEPTH`]; the error gives the line and column of the opening that does.
pub fn check_depth(text: &str) -> Result<(), String> {
    let (mut depth, mut line, mut col) = (0usize, 1usize, 0usize);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    let mut comment = false;
    for c in text.chars() {
        col += 1;
        if c == '\n' {
            (line, col, comment) = (line + 1, 0, false);
        }
        if comment {
            continue;
        }
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q || c == '\n' {
                quote = None;
            }
            continue;
        }
        match c {
            '"' | '\'' => quote = Some(c),
            '#' => comment = true,
            '{' | '<' | '[' => {
                depth += 1;
                if depth > MAX_DEPTH {
                    return Err(format!(
                        "text format: line {line} column {col}: nested more than {MAX_DEPTH} \
                         levels deep"
                    ));
                }
            }
            '}' | '>' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    Ok(())
}

/// Prints `msg` as pbtxt in TensorFlow's layout.
pub fn print<T: prost::Message + prost::Name>(msg: &T) -> Result<String, String> {
    let desc = tf_proto::descriptor_pool()
        .get_message_by_name(&T::full_name())
        .ok_or_else(|| format!("schema has no message {}", T::full_name()))?;
    let dynamic =
        DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    print_message(&mut out, &dynamic, 0)?;
    Ok(out)
}

fn print_message(out: &mut String, msg: &DynamicMessage, depth: usize) -> Result<(), String> {
    if depth > MAX_DEPTH {
        return Err(format!("cannot print: messages nested more than {MAX_DEPTH} levels deep"));
    }
    let mut fields: Vec<_> = msg.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    for (field, value) in fields {
        match value {
            Value::List(items) => {
                for item in items {
                    print_field(out, field.name(), &field.kind(), item, depth)?;
                }
            }
            Value::Map(map) => {
                let Kind::Message(entry) = field.kind() else { continue };
                let (Some(kf), Some(vf)) = (entry.get_field(1), entry.get_field(2)) else {
                    continue;
                };
                let mut keys: Vec<&MapKey> = map.keys().collect();
                keys.sort();
                for k in keys {
                    indent(out, depth);
                    let _ = writeln!(out, "{} {{", field.name());
                    let key_value = Value::from(k.clone());
                    print_field(out, kf.name(), &kf.kind(), &key_value, depth + 1)?;
                    print_field(out, vf.name(), &vf.kind(), &map[k], depth + 1)?;
                    indent(out, depth);
                    out.push_str("}\n");
                }
            }
            v => print_field(out, field.name(), &field.kind(), v, depth)?,
        }
    }
    Ok(())
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn print_field(
    out: &mut String,
    name: &str,
    kind: &Kind,
    value: &Value,
    depth: usize,
) -> Result<(), String> {
    indent(out, depth);
    match value {
        Value::Message(m) => {
            let _ = writeln!(out, "{name} {{");
            print_message(out, m, depth + 1)?;
            indent(out, depth);
            out.push_str("}\n");
        }
        v => {
            let _ = writeln!(out, "{name}: {}", scalar(kind, v));
        }
    }
    Ok(())
}

fn float(v: f64, debug: String) -> String {
    if v.is_nan() {
        "nan".into()
    } else if v.is_infinite() {
        if v > 0.0 { "inf" } else { "-inf" }.into()
    } else {
        debug
    }
}

fn scalar(kind: &Kind, v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::I32(x) => x.to_string(),
        Value::I64(x) => x.to_string(),
        Value::U32(x) => x.to_string(),
        Value::U64(x) => x.to_string(),
        Value::F32(x) => float(f64::from(*x), format!("{x:?}")),
        Value::F64(x) => float(*x, format!("{x:?}")),
        Value::String(s) => quote(s.as_bytes()),
        Value::Bytes(b) => quote(b),
        Value::EnumNumber(n) => match kind {
            Kind::Enum(e) => {
                e.get_value(*n).map_or_else(|| n.to_string(), |v| v.name().to_string())
            }
            _ => n.to_string(),
        },
        Value::Message(_) | Value::List(_) | Value::Map(_) => String::new(),
    }
}

/// C-style quoting as TensorFlow's text format writes it: octal escapes for bytes outside
/// printable ASCII.
fn quote(b: &[u8]) -> String {
    let mut s = String::with_capacity(b.len() + 2);
    s.push('"');
    for &c in b {
        match c {
            b'\n' => s.push_str("\\n"),
            b'\r' => s.push_str("\\r"),
            b'\t' => s.push_str("\\t"),
            b'"' => s.push_str("\\\""),
            b'\'' => s.push_str("\\'"),
            b'\\' => s.push_str("\\\\"),
            0x20..=0x7e => s.push(c as char),
            _ => {
                let _ = write!(s, "\\{c:03o}");
            }
        }
    }
    s.push('"');
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use tf_proto::tensorflow::{attr_value, AttrValue, GraphDef, NodeDef};

    #[test]
    fn tensorflow_layout_sorted_and_stable() {
        let mut n = NodeDef { name: "a\"b\u{e9}".into(), op: "Const".into(), ..Default::default() };
        for k in ["z", "b", "_c", "a"] {
            n.attr.insert(k.into(), AttrValue { value: Some(attr_value::Value::I(0)) });
        }
        n.attr.insert("f".into(), AttrValue { value: Some(attr_value::Value::F(f32::NAN)) });
        n.attr.insert("t".into(), AttrValue { value: Some(attr_value::Value::Type(1)) });
        let g = GraphDef { node: vec![n], ..Default::default() };
        let text = print(&g).unwrap();
        assert!(
            text.starts_with("node {\n  name: \"a\\\"b\\303\\251\"\n  op: \"Const\"\n"),
            "{text}"
        );
        let keys: Vec<&str> = text.lines().filter_map(|l| l.trim().strip_prefix("key: ")).collect();
        assert_eq!(keys, ["\"_c\"", "\"a\"", "\"b\"", "\"f\"", "\"t\"", "\"z\""]);
        assert!(
            text.contains("i: 0\n")
                && text.contains("f: nan\n")
                && text.contains("type: DT_FLOAT\n")
        );
        let back: GraphDef = parse(text.as_bytes()).unwrap();
        assert_eq!(back.node[0].name, g.node[0].name);
        assert_eq!(print(&back).unwrap(), text);
    }

    /// `node { attr { value { func { attr { value { func ...` nested `levels` times.
    fn nested_funcs(levels: usize) -> String {
        let open = "attr { key: 'k' value { func { name: 'f' ".repeat(levels);
        format!("node {{ name: 'a' op: 'X' {open}{} }}", "} } } ".repeat(levels))
    }

    #[test]
    fn deep_nesting_is_refused_not_a_stack_overflow() {
        let err = parse::<GraphDef>(nested_funcs(1500).as_bytes()).unwrap_err();
        assert_eq!(err, "text format: line 1 column 1384: nested more than 100 levels deep");
        // Braces inside strings and comments do not count.
        let text = format!(
            "# {}\nnode {{ name: '{}' op: \"{{<[\\\"\" }}",
            "{".repeat(500),
            "{".repeat(500)
        );
        let g: GraphDef = parse(text.as_bytes()).unwrap();
        assert_eq!(g.node[0].op, "{<[\"");
        // Moderate nesting parses and prints.
        let g: GraphDef = parse(nested_funcs(20).as_bytes()).unwrap();
        let printed = print(&g).unwrap();
        assert_eq!(parse::<GraphDef>(printed.as_bytes()).unwrap(), g);
    }

    #[test]
    fn printing_refuses_messages_nested_too_deep() {
        let mut value = AttrValue::default();
        for _ in 0..(MAX_DEPTH / 3 + 2) {
            let mut f =
                tf_proto::tensorflow::NameAttrList { name: "f".into(), ..Default::default() };
            f.attr.insert("k".into(), value);
            value = AttrValue { value: Some(attr_value::Value::Func(f)) };
        }
        let mut n = NodeDef { name: "a".into(), op: "X".into(), ..Default::default() };
        n.attr.insert("k".into(), value);
        let g = GraphDef { node: vec![n], ..Default::default() };
        let err = print(&g).unwrap_err();
        assert!(err.contains("nested more than 100 levels"), "{err}");
    }
}
