//! Helpers to build small GraphDefs with tf_proto types.
#![allow(dead_code)]

use prost::Message;
use tf_proto::tensorflow::attr_value::Value;
use tf_proto::tensorflow::tensor_shape_proto::Dim;
use tf_proto::tensorflow::{AttrValue, GraphDef, NodeDef, TensorProto, TensorShapeProto};

pub const DT_FLOAT: i32 = 1;

pub fn shape(dims: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: dims.iter().map(|&size| Dim { size, name: String::new() }).collect(),
        unknown_rank: false,
    }
}

fn attr(v: Value) -> AttrValue {
    AttrValue { value: Some(v) }
}

pub fn node(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.into(),
        op: op.into(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        ..Default::default()
    }
}

pub fn placeholder(name: &str, dtype: i32, dims: Option<&[i64]>) -> NodeDef {
    let mut n = node(name, "Placeholder", &[]);
    n.attr.insert("dtype".into(), attr(Value::Type(dtype)));
    if let Some(d) = dims {
        n.attr.insert("shape".into(), attr(Value::Shape(shape(d))));
    }
    n
}

pub fn const_f32(name: &str, dims: &[i64], values: &[f32]) -> NodeDef {
    let content: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    let tensor = TensorProto {
        dtype: DT_FLOAT,
        tensor_shape: Some(shape(dims)),
        tensor_content: content.into(),
        ..Default::default()
    };
    let mut n = node(name, "Const", &[]);
    n.attr.insert("dtype".into(), attr(Value::Type(DT_FLOAT)));
    n.attr.insert("value".into(), attr(Value::Tensor(Box::new(tensor))));
    n
}

pub fn with_t(mut n: NodeDef, dtype: i32) -> NodeDef {
    n.attr.insert("T".into(), attr(Value::Type(dtype)));
    n
}

pub fn with_bool(mut n: NodeDef, key: &str, b: bool) -> NodeDef {
    n.attr.insert(key.into(), attr(Value::B(b)));
    n
}

/// x: Placeholder float [?,3]; w: Const [3,2] = `w`; mm = MatMul(x, w); y = Identity(mm).
pub fn matmul_graph(w: &[f32; 6]) -> GraphDef {
    GraphDef {
        node: vec![
            placeholder("x", DT_FLOAT, Some(&[-1, 3])),
            const_f32("w", &[3, 2], w),
            with_bool(
                with_bool(
                    with_t(node("mm", "MatMul", &["x", "w"]), DT_FLOAT),
                    "transpose_a",
                    false,
                ),
                "transpose_b",
                false,
            ),
            with_t(node("y", "Identity", &["mm"]), DT_FLOAT),
        ],
        ..Default::default()
    }
}

pub const W: [f32; 6] = [1.0, 2.0, 3.0, 4.0, 5.0, 6.0];

pub fn bytes(g: &GraphDef) -> Vec<u8> {
    g.encode_to_vec()
}

/// Identity graph for one dtype: p (Placeholder, shape `dims`) -> out (Identity).
pub fn identity_graph(dtype: i32, dims: &[i64]) -> GraphDef {
    GraphDef {
        node: vec![
            placeholder("p", dtype, Some(dims)),
            with_t(node("out", "Identity", &["p"]), dtype),
        ],
        ..Default::default()
    }
}
