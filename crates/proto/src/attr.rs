//! Convenience for attributes: building [`AttrValue`]s and reading typed attributes of a
//! [`NodeDef`].
//!
//! - `AttrValue::from(x)` / `x.into()` for `i64`, `f32`, `bool`, `&str`, `String`, `Vec<u8>`,
//!   `Vec<i64>`, `Vec<f32>`, `Vec<DataType>`, `Vec<String>`, `Vec<&str>`,
//!   `Vec<TensorShapeProto>`, [`ListValue`], [`DataType`], [`TensorShapeProto`], [`TensorProto`]
//!   and [`NameAttrList`] (a function reference).
//! - On [`AttrValue`]: `as_i64()`, `as_str()`, `as_list_i64()`, ... returning `Option`, and
//!   [`AttrValue::kind`] describing what it holds.
//! - On [`NodeDef`]: `attr_opt_*` returning `Option` (absent or of another type → `None`), typed
//!   getters `attr_*` returning `Result<_, AttrError>` whose message names the node, its op and
//!   the attribute, and [`NodeDef::set_attr`].
//!
//! ```
//! use tf_proto::{AttrValue, DataType, NodeDef};
//! let mut n = NodeDef { name: "conv1".into(), op: "Conv2D".into(), ..Default::default() };
//! n.set_attr("T", DataType::DtFloat);
//! n.set_attr("strides", vec![1i64, 2, 2, 1]);
//! n.set_attr("padding", "SAME");
//! assert_eq!(n.attr_type("T").unwrap(), DataType::DtFloat);
//! assert_eq!(n.attr_list_i64("strides").unwrap(), &[1, 2, 2, 1]);
//! assert_eq!(
//!     n.attr_i64("padding").unwrap_err().to_string(),
//!     "node 'conv1' (Conv2D): attribute 'padding' is a string, expected int"
//! );
//! assert_eq!(
//!     n.attr_str("data_format").unwrap_err().to_string(),
//!     "node 'conv1' (Conv2D): attribute 'data_format' missing"
//! );
//! ```

use crate::tensorflow::attr_value::{ListValue, Value};
use crate::tensorflow::{
    AttrValue, DataType, NameAttrList, NodeDef, TensorProto, TensorShapeProto,
};

/// A typed attribute lookup on a [`NodeDef`] failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AttrError {
    /// The node has no attribute of that name.
    #[error("node '{node}' ({op}): attribute '{attr}' missing")]
    Missing {
        /// Node name.
        node: String,
        /// Node op.
        op: String,
        /// Attribute name.
        attr: String,
    },
    /// The attribute holds another kind of value.
    #[error("node '{node}' ({op}): attribute '{attr}' is {found}, expected {expected}")]
    WrongType {
        /// Node name.
        node: String,
        /// Node op.
        op: String,
        /// Attribute name.
        attr: String,
        /// What it holds, e.g. "a string", "a list(int)", "unset".
        found: String,
        /// What was asked for, e.g. "int", "list(type)".
        expected: &'static str,
    },
    /// The attribute has the right kind but an unusable value (non-UTF-8 string, unknown
    /// `DataType` number).
    #[error("node '{node}' ({op}): attribute '{attr}' {detail}")]
    Invalid {
        /// Node name.
        node: String,
        /// Node op.
        op: String,
        /// Attribute name.
        attr: String,
        /// What is wrong, e.g. "has unknown DataType 999".
        detail: String,
    },
}

macro_rules! from_value {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl From<$t> for AttrValue {
            fn from($v: $t) -> Self {
                AttrValue { value: Some($e) }
            }
        }
    )*};
}

fn list(l: ListValue) -> Value {
    Value::List(Box::new(l))
}

from_value! {
    i64 => |v| Value::I(v);
    f32 => |v| Value::F(v);
    bool => |v| Value::B(v);
    &str => |v| Value::S(v.as_bytes().to_vec());
    String => |v| Value::S(v.into_bytes());
    Vec<u8> => |v| Value::S(v);
    DataType => |v| Value::Type(v as i32);
    TensorShapeProto => |v| Value::Shape(v);
    TensorProto => |v| Value::Tensor(Box::new(v));
    NameAttrList => |v| Value::Func(v);
    ListValue => |v| list(v);
    Vec<i64> => |v| list(ListValue { i: v, ..Default::default() });
    Vec<f32> => |v| list(ListValue { f: v, ..Default::default() });
    Vec<DataType> => |v| list(ListValue { r#type: v.into_iter().map(|t| t as i32).collect(), ..Default::default() });
    Vec<String> => |v| list(ListValue { s: v.into_iter().map(String::into_bytes).collect(), ..Default::default() });
    Vec<&str> => |v| list(ListValue { s: v.into_iter().map(|s| s.as_bytes().to_vec()).collect(), ..Default::default() });
    Vec<TensorShapeProto> => |v| list(ListValue { shape: v, ..Default::default() });
}

/// The element kind of a non-empty list (TF attr type spelling), `None` for an empty list.
fn list_kind(l: &ListValue) -> Option<&'static str> {
    [
        (!l.s.is_empty(), "string"),
        (!l.i.is_empty(), "int"),
        (!l.f.is_empty(), "float"),
        (!l.b.is_empty(), "bool"),
        (!l.r#type.is_empty(), "type"),
        (!l.shape.is_empty(), "shape"),
        (!l.tensor.is_empty(), "tensor"),
        (!l.func.is_empty(), "func"),
    ]
    .into_iter()
    .find_map(|(present, k)| present.then_some(k))
}

/// The list if it is empty or holds elements of kind `want` only in the expected field.
fn list_of<'a>(v: &'a AttrValue, want: &str) -> Option<&'a ListValue> {
    match &v.value {
        Some(Value::List(l)) if list_kind(l).is_none_or(|k| k == want) => Some(l),
        _ => None,
    }
}

impl AttrValue {
    /// What the attribute holds, for messages: "a string", "an int", "a list(int)",
    /// "an empty list", "a func", "a placeholder", "unset", ...
    pub fn kind(&self) -> String {
        match &self.value {
            None => "unset".into(),
            Some(Value::S(_)) => "a string".into(),
            Some(Value::I(_)) => "an int".into(),
            Some(Value::F(_)) => "a float".into(),
            Some(Value::B(_)) => "a bool".into(),
            Some(Value::Type(_)) => "a type".into(),
            Some(Value::Shape(_)) => "a shape".into(),
            Some(Value::Tensor(_)) => "a tensor".into(),
            Some(Value::Func(_)) => "a func".into(),
            Some(Value::Placeholder(p)) => format!("a placeholder (${p})"),
            Some(Value::List(l)) => match list_kind(l) {
                Some(k) => format!("a list({k})"),
                None => "an empty list".into(),
            },
        }
    }

    /// `s` as raw bytes.
    pub fn as_bytes(&self) -> Option<&[u8]> {
        match &self.value {
            Some(Value::S(s)) => Some(s),
            _ => None,
        }
    }
    /// `s` as UTF-8 text (`None` if not a string or not UTF-8).
    pub fn as_str(&self) -> Option<&str> {
        self.as_bytes().and_then(|b| std::str::from_utf8(b).ok())
    }
    /// `i`.
    pub fn as_i64(&self) -> Option<i64> {
        match self.value {
            Some(Value::I(i)) => Some(i),
            _ => None,
        }
    }
    /// `f`.
    pub fn as_f32(&self) -> Option<f32> {
        match self.value {
            Some(Value::F(f)) => Some(f),
            _ => None,
        }
    }
    /// `b`.
    pub fn as_bool(&self) -> Option<bool> {
        match self.value {
            Some(Value::B(b)) => Some(b),
            _ => None,
        }
    }
    /// `type` as its raw enum number (kept even if unknown to this schema).
    pub fn as_type_i32(&self) -> Option<i32> {
        match self.value {
            Some(Value::Type(t)) => Some(t),
            _ => None,
        }
    }
    /// `type` as a known [`DataType`].
    pub fn as_type(&self) -> Option<DataType> {
        self.as_type_i32().and_then(|t| DataType::try_from(t).ok())
    }
    /// `shape`.
    pub fn as_shape(&self) -> Option<&TensorShapeProto> {
        match &self.value {
            Some(Value::Shape(s)) => Some(s),
            _ => None,
        }
    }
    /// `tensor`.
    pub fn as_tensor(&self) -> Option<&TensorProto> {
        match &self.value {
            Some(Value::Tensor(t)) => Some(t),
            _ => None,
        }
    }
    /// `func`.
    pub fn as_func(&self) -> Option<&NameAttrList> {
        match &self.value {
            Some(Value::Func(f)) => Some(f),
            _ => None,
        }
    }
    /// `list` (any element kind).
    pub fn as_list(&self) -> Option<&ListValue> {
        match &self.value {
            Some(Value::List(l)) => Some(l),
            _ => None,
        }
    }
    /// `list(int)` (an empty list counts).
    pub fn as_list_i64(&self) -> Option<&[i64]> {
        list_of(self, "int").map(|l| l.i.as_slice())
    }
    /// `list(float)`.
    pub fn as_list_f32(&self) -> Option<&[f32]> {
        list_of(self, "float").map(|l| l.f.as_slice())
    }
    /// `list(bool)`.
    pub fn as_list_bool(&self) -> Option<&[bool]> {
        list_of(self, "bool").map(|l| l.b.as_slice())
    }
    /// `list(type)` as raw enum numbers.
    pub fn as_list_type_i32(&self) -> Option<&[i32]> {
        list_of(self, "type").map(|l| l.r#type.as_slice())
    }
    /// `list(type)` as [`DataType`]s (`None` if one is unknown).
    pub fn as_list_type(&self) -> Option<Vec<DataType>> {
        self.as_list_type_i32()?.iter().map(|&t| DataType::try_from(t).ok()).collect()
    }
    /// `list(string)` as raw bytes.
    pub fn as_list_bytes(&self) -> Option<&[Vec<u8>]> {
        list_of(self, "string").map(|l| l.s.as_slice())
    }
    /// `list(string)` as UTF-8 text (`None` if one is not UTF-8).
    pub fn as_list_str(&self) -> Option<Vec<&str>> {
        self.as_list_bytes()?.iter().map(|s| std::str::from_utf8(s).ok()).collect()
    }
    /// `list(shape)`.
    pub fn as_list_shape(&self) -> Option<&[TensorShapeProto]> {
        list_of(self, "shape").map(|l| l.shape.as_slice())
    }
    /// `list(tensor)`.
    pub fn as_list_tensor(&self) -> Option<&[TensorProto]> {
        list_of(self, "tensor").map(|l| l.tensor.as_slice())
    }
    /// `list(func)`.
    pub fn as_list_func(&self) -> Option<&[NameAttrList]> {
        list_of(self, "func").map(|l| l.func.as_slice())
    }
}

macro_rules! getters {
    ($($(#[$doc:meta])* $opt:ident, $req:ident, $as:ident, $t:ty, $expected:literal;)*) => {$(
        $(#[$doc])*
        ///
        /// `None` if the attribute is absent or holds something else.
        pub fn $opt(&self, name: &str) -> Option<$t> {
            self.attr.get(name).and_then(|v| v.$as())
        }
        $(#[$doc])*
        ///
        /// # Errors
        /// [`AttrError::Missing`] or [`AttrError::WrongType`], naming node, op and attribute.
        pub fn $req(&self, name: &str) -> Result<$t, AttrError> {
            let v = self.attr_value(name)?;
            v.$as().ok_or_else(|| self.attr_error(name, v, $expected))
        }
    )*};
}

impl NodeDef {
    /// The attribute `name`, or [`AttrError::Missing`].
    pub fn attr_value(&self, name: &str) -> Result<&AttrValue, AttrError> {
        self.attr.get(name).ok_or_else(|| AttrError::Missing {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: name.to_string(),
        })
    }

    /// Sets (or replaces) attribute `name`.
    pub fn set_attr(&mut self, name: impl Into<String>, value: impl Into<AttrValue>) {
        self.attr.insert(name.into(), value.into());
    }

    /// Whether attribute `name` is present.
    pub fn has_attr(&self, name: &str) -> bool {
        self.attr.contains_key(name)
    }

    fn attr_error(&self, name: &str, v: &AttrValue, expected: &'static str) -> AttrError {
        let invalid = |detail: String| AttrError::Invalid {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: name.to_string(),
            detail,
        };
        // Right kind, unusable value?
        match expected {
            "string" if v.as_bytes().is_some() => return invalid("is not valid UTF-8".into()),
            "type" => {
                if let Some(t) = v.as_type_i32() {
                    return invalid(format!("has unknown DataType {t}"));
                }
            }
            "list(string)" if v.as_list_bytes().is_some() => {
                return invalid("has an element that is not valid UTF-8".into())
            }
            "list(type)" if v.as_list_type_i32().is_some() => {
                return invalid("has an unknown DataType".into())
            }
            _ => {}
        }
        AttrError::WrongType {
            node: self.name.clone(),
            op: self.op.clone(),
            attr: name.to_string(),
            found: v.kind(),
            expected,
        }
    }

    getters! {
        /// Attribute `name` as an `int`.
        attr_opt_i64, attr_i64, as_i64, i64, "int";
        /// Attribute `name` as a `float`.
        attr_opt_f32, attr_f32, as_f32, f32, "float";
        /// Attribute `name` as a `bool`.
        attr_opt_bool, attr_bool, as_bool, bool, "bool";
        /// Attribute `name` as a UTF-8 `string`.
        attr_opt_str, attr_str, as_str, &str, "string";
        /// Attribute `name` as a `string` of raw bytes.
        attr_opt_bytes, attr_bytes, as_bytes, &[u8], "string";
        /// Attribute `name` as a known `type`.
        attr_opt_type, attr_type, as_type, DataType, "type";
        /// Attribute `name` as a `shape`.
        attr_opt_shape, attr_shape, as_shape, &TensorShapeProto, "shape";
        /// Attribute `name` as a `tensor`.
        attr_opt_tensor, attr_tensor, as_tensor, &TensorProto, "tensor";
        /// Attribute `name` as a `func`.
        attr_opt_func, attr_func, as_func, &NameAttrList, "func";
        /// Attribute `name` as a `list(int)`.
        attr_opt_list_i64, attr_list_i64, as_list_i64, &[i64], "list(int)";
        /// Attribute `name` as a `list(float)`.
        attr_opt_list_f32, attr_list_f32, as_list_f32, &[f32], "list(float)";
        /// Attribute `name` as a `list(bool)`.
        attr_opt_list_bool, attr_list_bool, as_list_bool, &[bool], "list(bool)";
        /// Attribute `name` as a `list(type)` of known types.
        attr_opt_list_type, attr_list_type, as_list_type, Vec<DataType>, "list(type)";
        /// Attribute `name` as a `list(string)` of UTF-8 text.
        attr_opt_list_str, attr_list_str, as_list_str, Vec<&str>, "list(string)";
        /// Attribute `name` as a `list(shape)`.
        attr_opt_list_shape, attr_list_shape, as_list_shape, &[TensorShapeProto], "list(shape)";
        /// Attribute `name` as a `list(func)`.
        attr_opt_list_func, attr_list_func, as_list_func, &[NameAttrList], "list(func)";
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node() -> NodeDef {
        let mut n = NodeDef { name: "conv1".into(), op: "Conv2D".into(), ..Default::default() };
        n.set_attr("strides", vec![1i64, 2, 2, 1]);
        n.set_attr("padding", "SAME");
        n.set_attr("T", DataType::DtHalf);
        n.set_attr("use_cudnn_on_gpu", true);
        n.set_attr("explicit_paddings", ListValue::default());
        n.set_attr("bad", AttrValue { value: Some(Value::Type(999)) });
        n
    }

    #[test]
    fn typed_getters() {
        let n = node();
        assert_eq!(n.attr_list_i64("strides").unwrap(), &[1, 2, 2, 1]);
        assert_eq!(n.attr_str("padding").unwrap(), "SAME");
        assert_eq!(n.attr_type("T").unwrap(), DataType::DtHalf);
        assert!(n.attr_bool("use_cudnn_on_gpu").unwrap());
        assert_eq!(n.attr_list_i64("explicit_paddings").unwrap(), &[] as &[i64]);
        assert_eq!(n.attr_list_str("explicit_paddings").unwrap(), Vec::<&str>::new());
        assert_eq!(n.attr_opt_i64("padding"), None);
        assert_eq!(n.attr_opt_f32("nope"), None);
        assert_eq!(n.attr_opt_list_f32("strides"), None);
    }

    #[test]
    fn error_messages() {
        let n = node();
        assert_eq!(
            n.attr_list_i64("dilations").unwrap_err().to_string(),
            "node 'conv1' (Conv2D): attribute 'dilations' missing"
        );
        assert_eq!(
            n.attr_i64("padding").unwrap_err().to_string(),
            "node 'conv1' (Conv2D): attribute 'padding' is a string, expected int"
        );
        assert_eq!(
            n.attr_list_f32("strides").unwrap_err().to_string(),
            "node 'conv1' (Conv2D): attribute 'strides' is a list(int), expected list(float)"
        );
        assert_eq!(
            n.attr_type("bad").unwrap_err().to_string(),
            "node 'conv1' (Conv2D): attribute 'bad' has unknown DataType 999"
        );
    }
}
