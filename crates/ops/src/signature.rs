//! Resolving an op signature (an [`OpDef`]) against one node.
//!
//! An OpDef declares its inputs and outputs as *arguments*, and an argument may stand for a
//! list of tensors whose length and types are set by the node's attributes:
//!
//! | ArgDef fields set            | tensors                                           |
//! |------------------------------|---------------------------------------------------|
//! | `type`                       | one, of that fixed type                           |
//! | `type_attr: "T"`             | one, of the type in attr `T`                      |
//! | `number_attr: "N"` + `type`/`type_attr` | `N` (an int attr), all of that one type |
//! | `type_list_attr: "Tout"`     | one per entry of the `list(type)` attr `Tout`     |
//!
//! A GraphDef addresses tensors by flat port (`node:k`), counting across all arguments in
//! declaration order, so everything here reduces to computing each argument's length. An
//! attribute the node does not carry falls back to the OpDef's `default_value`, exactly as
//! TensorFlow fills defaults on import. `is_ref` arguments (TF1 variables) produce the `_REF`
//! twin of their type, `DataType + 100`.
//!
//! These functions work on any OpDef: an op from the [`Registry`](crate::Registry), or the
//! `signature` of a FunctionDef when the node calls a library function by name. The registry
//! and [`Signatures`](crate::Signatures) call them after looking the OpDef up.

use std::ops::Range;

use prost::Message;
use tf_proto::tensorflow::attr_value::{ListValue, Value};
use tf_proto::tensorflow::op_def::ArgDef;
use tf_proto::tensorflow::{AttrValue, NodeDef, OpDef};

use crate::OpError;

/// What is added to a `DataType` to get its reference twin (`DT_FLOAT` 1 → `DT_FLOAT_REF` 101),
/// as TensorFlow's `kDataTypeRefOffset`.
pub const REF_OFFSET: i32 = 100;

/// The most tensors one list argument may stand for (`2^20`): a `number_attr` such as
/// `Split`'s `num_split` or `Unpack`'s `num` above this is refused with
/// [`OpError::TooLong`] instead of being taken at face value. An arity is the one number in a
/// node that is not backed by bytes of the file (a 40-byte node may claim `2^31` outputs), so
/// it is bounded here, where every tool resolves it; real graphs stay far below (TensorFlow's
/// own kernels cannot produce that many outputs in practice).
pub const MAX_LIST_LEN: usize = 1 << 20;

/// Number of input tensors (data inputs, not `^control` inputs) the node takes.
pub fn input_arity(op_def: &OpDef, node: &NodeDef) -> Result<usize, OpError> {
    let cx = Cx { op_def, node };
    op_def.input_arg.iter().try_fold(0, |n, arg| Ok(n + cx.arg_len(arg)?))
}

/// Number of output tensors the node produces, i.e. its valid ports are `0..n`.
pub fn output_arity(op_def: &OpDef, node: &NodeDef) -> Result<usize, OpError> {
    let cx = Cx { op_def, node };
    op_def.output_arg.iter().try_fold(0, |n, arg| Ok(n + cx.arg_len(arg)?))
}

/// `DataType` (as `i32`) of every input tensor, by flat input index; reference inputs as the
/// `_REF` twin.
pub fn input_types(op_def: &OpDef, node: &NodeDef) -> Result<Vec<i32>, OpError> {
    Cx { op_def, node }.types(&op_def.input_arg)
}

/// `DataType` (as `i32`) of every output tensor, by port; reference outputs (e.g. of
/// `VariableV2`) as the `_REF` twin (`DT_FLOAT_REF` = 101).
pub fn output_types(op_def: &OpDef, node: &NodeDef) -> Result<Vec<i32>, OpError> {
    Cx { op_def, node }.types(&op_def.output_arg)
}

/// The flat input indices covered by the input argument named `arg`.
pub fn input_port_range(
    op_def: &OpDef,
    node: &NodeDef,
    arg: &str,
) -> Result<Range<usize>, OpError> {
    Cx { op_def, node }.range(&op_def.input_arg, arg, "input")
}

/// The flat output ports covered by the output argument named `arg`.
///
/// This is what turns a FunctionDef body reference `node:out_arg:idx` into a GraphDef port:
/// `output_port_range(..).start + idx` (valid while below `.end`). For FusedBatchNormV3,
/// `batch_mean` is `1..2` and `reserve_space_3` is `5..6`; for `Unpack` with `num = 3`,
/// `output` is `0..3`.
pub fn output_port_range(
    op_def: &OpDef,
    node: &NodeDef,
    arg: &str,
) -> Result<Range<usize>, OpError> {
    Cx { op_def, node }.range(&op_def.output_arg, arg, "output")
}

/// The node's value of attribute `name`, or else the OpDef's default for it.
pub fn attr_or_default<'a>(
    op_def: &'a OpDef,
    node: &'a NodeDef,
    name: &str,
) -> Option<&'a AttrValue> {
    node.attr.get(name).or_else(|| {
        op_def.attr.iter().find(|a| a.name == name).and_then(|a| a.default_value.as_ref())
    })
}

/// Whether two attr values are equal the way TensorFlow compares them when it strips defaults
/// (`AreAttrValuesEqual`): by their deterministic serialization. Unlike `==` on the prost
/// structs, this tells `-0.0` from `0.0` and finds a NaN equal to the same NaN.
///
/// (TensorFlow additionally treats two differently encoded but equal-valued tensors as equal;
/// no op has a tensor-valued default, so that never matters for default attributes.)
pub fn attr_values_equal(a: &AttrValue, b: &AttrValue) -> bool {
    a.encoded_len() == b.encoded_len() && a.encode_to_vec() == b.encode_to_vec()
}

/// The kind of value an `AttrValue` holds, spelled as TensorFlow spells attr types:
/// `int`, `type`, `list(type)`, `shape`, ..., `list` for an empty list, `placeholder`, or
/// `no value` when the oneof is unset.
pub fn attr_kind(value: &AttrValue) -> String {
    match &value.value {
        None => "no value".into(),
        Some(Value::S(_)) => "string".into(),
        Some(Value::I(_)) => "int".into(),
        Some(Value::F(_)) => "float".into(),
        Some(Value::B(_)) => "bool".into(),
        Some(Value::Type(_)) => "type".into(),
        Some(Value::Shape(_)) => "shape".into(),
        Some(Value::Tensor(_)) => "tensor".into(),
        Some(Value::Func(_)) => "func".into(),
        Some(Value::Placeholder(_)) => "placeholder".into(),
        Some(Value::List(list)) => match list_element_kind(list) {
            Some(kind) => format!("list({kind})"),
            None => "list".into(),
        },
    }
}

/// The element kind of a non-empty list (the first populated field), or `None` if empty.
fn list_element_kind(list: &ListValue) -> Option<&'static str> {
    [
        (!list.s.is_empty(), "string"),
        (!list.i.is_empty(), "int"),
        (!list.f.is_empty(), "float"),
        (!list.b.is_empty(), "bool"),
        (!list.r#type.is_empty(), "type"),
        (!list.shape.is_empty(), "shape"),
        (!list.tensor.is_empty(), "tensor"),
        (!list.func.is_empty(), "func"),
    ]
    .into_iter()
    .find_map(|(set, kind)| set.then_some(kind))
}

/// A node paired with its OpDef: the context every error message needs.
struct Cx<'a> {
    op_def: &'a OpDef,
    node: &'a NodeDef,
}

impl<'a> Cx<'a> {
    fn attr(&self, name: &str) -> Result<&'a AttrValue, OpError> {
        attr_or_default(self.op_def, self.node, name).ok_or_else(|| OpError::MissingAttr {
            node: self.node.name.clone(),
            op: self.node.op.clone(),
            attr: name.to_string(),
        })
    }

    fn wrong(&self, name: &str, expected: &'static str, value: &AttrValue) -> OpError {
        match &value.value {
            Some(Value::Placeholder(p)) => OpError::Placeholder {
                node: self.node.name.clone(),
                op: self.node.op.clone(),
                attr: name.to_string(),
                placeholder: p.clone(),
            },
            _ => OpError::WrongAttrType {
                node: self.node.name.clone(),
                op: self.node.op.clone(),
                attr: name.to_string(),
                expected,
                found: attr_kind(value),
            },
        }
    }

    /// A `number_attr`: a non-negative int, at most [`MAX_LIST_LEN`].
    fn count_attr(&self, name: &str) -> Result<usize, OpError> {
        let value = self.attr(name)?;
        match value.value {
            Some(Value::I(n)) if n < 0 => Err(OpError::NegativeLength {
                node: self.node.name.clone(),
                op: self.node.op.clone(),
                attr: name.to_string(),
                value: n,
            }),
            Some(Value::I(n)) => match usize::try_from(n) {
                Ok(n) if n <= MAX_LIST_LEN => Ok(n),
                _ => Err(OpError::TooLong {
                    node: self.node.name.clone(),
                    op: self.node.op.clone(),
                    attr: name.to_string(),
                    value: n,
                    limit: MAX_LIST_LEN,
                }),
            },
            _ => Err(self.wrong(name, "int", value)),
        }
    }

    /// A `type_attr`.
    fn type_attr(&self, name: &str) -> Result<i32, OpError> {
        let value = self.attr(name)?;
        match value.value {
            Some(Value::Type(t)) => Ok(t),
            _ => Err(self.wrong(name, "type", value)),
        }
    }

    /// A `type_list_attr`. An empty `list {}` is an empty list of types.
    fn type_list_attr(&self, name: &str) -> Result<&'a [i32], OpError> {
        let value = self.attr(name)?;
        match &value.value {
            Some(Value::List(list)) if list.r#type.len() > MAX_LIST_LEN => Err(OpError::TooLong {
                node: self.node.name.clone(),
                op: self.node.op.clone(),
                attr: name.to_string(),
                value: i64::try_from(list.r#type.len()).unwrap_or(i64::MAX),
                limit: MAX_LIST_LEN,
            }),
            Some(Value::List(list)) if matches!(list_element_kind(list), None | Some("type")) => {
                Ok(&list.r#type)
            }
            _ => Err(self.wrong(name, "list(type)", value)),
        }
    }

    /// Number of tensors the argument stands for.
    fn arg_len(&self, arg: &ArgDef) -> Result<usize, OpError> {
        if !arg.number_attr.is_empty() {
            self.count_attr(&arg.number_attr)
        } else if !arg.type_list_attr.is_empty() {
            Ok(self.type_list_attr(&arg.type_list_attr)?.len())
        } else {
            Ok(1)
        }
    }

    /// The single type of a non-list argument, or the element type of a `number_attr` list.
    fn base_type(&self, arg: &ArgDef) -> Result<i32, OpError> {
        if arg.r#type != 0 {
            Ok(arg.r#type)
        } else if !arg.type_attr.is_empty() {
            self.type_attr(&arg.type_attr)
        } else {
            Err(OpError::UntypedArg {
                node: self.node.name.clone(),
                op: self.node.op.clone(),
                arg: arg.name.clone(),
            })
        }
    }

    fn types(&self, args: &[ArgDef]) -> Result<Vec<i32>, OpError> {
        let mut out = Vec::new();
        for arg in args {
            let start = out.len();
            if !arg.number_attr.is_empty() {
                let n = self.count_attr(&arg.number_attr)?;
                let t = self.base_type(arg)?;
                out.extend(std::iter::repeat_n(t, n));
            } else if !arg.type_list_attr.is_empty() {
                out.extend_from_slice(self.type_list_attr(&arg.type_list_attr)?);
            } else {
                out.push(self.base_type(arg)?);
            }
            if arg.is_ref {
                for t in &mut out[start..] {
                    if *t < REF_OFFSET {
                        *t += REF_OFFSET;
                    }
                }
            }
        }
        Ok(out)
    }

    fn range(
        &self,
        args: &[ArgDef],
        name: &str,
        direction: &'static str,
    ) -> Result<Range<usize>, OpError> {
        let mut start = 0;
        for arg in args {
            let len = self.arg_len(arg)?;
            if arg.name == name {
                return Ok(start..start + len);
            }
            start += len;
        }
        Err(OpError::UnknownArg {
            node: self.node.name.clone(),
            op: self.node.op.clone(),
            direction,
            arg: name.to_string(),
        })
    }
}
