//! Protobuf text format (pbtxt) for the messages the tools read and write.
//!
//! Parsing goes through prost-reflect's text-format parser and the descriptor pool of our own
//! schemas (`tf_proto::parse_text_format`). Printing is done here, in the layout TensorFlow's
//! `text_format` uses (`node {` blocks, two-space indents, fields in number order, map entries
//! sorted by key, non-ASCII bytes as octal escapes), because the output must be deterministic
//! and familiar: prost-reflect keeps maps in a `HashMap` and prints lists as `[..]`.

use std::fmt::Write;

use prost_reflect::{DynamicMessage, Kind, MapKey, Value};

/// Parses pbtxt into `T`; the error is the parser's message (with line and column).
pub fn parse<T: prost::Message + prost::Name + Default>(text: &[u8]) -> Result<T, String> {
    let text = std::str::from_utf8(text).map_err(|e| format!("text is not UTF-8: {e}"))?;
    tf_proto::parse_text_format(text).map_err(|e| e.to_string())
}

/// Prints `msg` as pbtxt in TensorFlow's layout.
pub fn print<T: prost::Message + prost::Name>(msg: &T) -> Result<String, String> {
    let desc = tf_proto::descriptor_pool()
        .get_message_by_name(&T::full_name())
        .ok_or_else(|| format!("schema has no message {}", T::full_name()))?;
    let dynamic =
        DynamicMessage::decode(desc, msg.encode_to_vec().as_slice()).map_err(|e| e.to_string())?;
    let mut out = String::new();
    print_message(&mut out, &dynamic, 0);
    Ok(out)
}

fn print_message(out: &mut String, msg: &DynamicMessage, depth: usize) {
    let mut fields: Vec<_> = msg.fields().collect();
    fields.sort_by_key(|(f, _)| f.number());
    for (field, value) in fields {
        match value {
            Value::List(items) => {
                for item in items {
                    print_field(out, field.name(), &field.kind(), item, depth);
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
                    print_field(out, kf.name(), &kf.kind(), &key_value, depth + 1);
                    print_field(out, vf.name(), &vf.kind(), &map[k], depth + 1);
                    indent(out, depth);
                    out.push_str("}\n");
                }
            }
            v => print_field(out, field.name(), &field.kind(), v, depth),
        }
    }
}

fn indent(out: &mut String, depth: usize) {
    for _ in 0..depth {
        out.push_str("  ");
    }
}

fn print_field(out: &mut String, name: &str, kind: &Kind, value: &Value, depth: usize) {
    indent(out, depth);
    match value {
        Value::Message(m) => {
            let _ = writeln!(out, "{name} {{");
            print_message(out, m, depth + 1);
            indent(out, depth);
            out.push_str("}\n");
        }
        v => {
            let _ = writeln!(out, "{name}: {}", scalar(kind, v));
        }
    }
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
}
