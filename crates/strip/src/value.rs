//! `--set name=value`: a placeholder becomes a `Const` of its own dtype.
//!
//! The Const keeps the placeholder's name, so every consumer now reads the constant, and
//! `tf-fold` can fold the `Switch`es of dropout and batch-norm training branches away. The
//! value is a scalar, or a splat of the placeholder's shape when that shape is fully known
//! (one typed value fills every element, TensorFlow's fill rule). A `PlaceholderWithDefault`
//! loses its default input, whose subgraph is then pruned.

use tf_graph::{Graph, TensorName};
use tf_proto::tensorflow::{attr_value, AttrValue, NodeDef, TensorProto, TensorShapeProto};
use tf_tensor::{dt, dtype};

use crate::{ActionKind, StripConfig, StripError, StripReport, Why};

pub(crate) fn apply_set(
    g: &mut Graph,
    cfg: &StripConfig,
    report: &mut StripReport,
) -> Result<(), StripError> {
    let mut seen = Vec::new();
    for (name, text) in &cfg.set {
        let t = TensorName::parse(name.trim());
        if seen.contains(&t.node) {
            return Err(StripError::Duplicate { flag: "--set", name: name.clone() });
        }
        seen.push(t.node.clone());
        let id = g.id(&t.node).ok_or_else(|| StripError::UnknownSet(name.clone()))?;
        let node = g.node(id);
        if !matches!(node.op.as_str(), "Placeholder" | "PlaceholderWithDefault") || t.port != 0 {
            return Err(StripError::SetNotPlaceholder { name: name.clone(), op: node.op.clone() });
        }
        let dtype = match node.attr.get("dtype").and_then(|a| a.value.as_ref()) {
            Some(attr_value::Value::Type(t)) => *t,
            _ => {
                return Err(StripError::SetDtype {
                    name: name.clone(),
                    dtype: "untyped (no dtype attribute)".into(),
                })
            }
        };
        let shape = match node.attr.get("shape").and_then(|a| a.value.as_ref()) {
            Some(attr_value::Value::Shape(s)) if !s.unknown_rank => {
                if s.dim.iter().any(|d| d.size < 0) {
                    return Err(StripError::SetShape {
                        name: t.node.clone(),
                        shape: tf_tensor::shape_to_string(Some(s)),
                    });
                }
                s.clone()
            }
            _ => TensorShapeProto::default(),
        };
        let dims: Vec<i64> = shape.dim.iter().map(|d| d.size).collect();
        let elements = tf_tensor::num_elements(&dims).unwrap_or(0);
        let mut tensor = parse_value(&t.node, dtype, text)?;
        if elements == 0 {
            tensor = TensorProto { dtype, ..Default::default() };
        }
        tensor.tensor_shape = Some(shape);
        let old_op = node.op.clone();
        let mut constant = NodeDef {
            name: node.name.clone(),
            op: "Const".into(),
            device: node.device.clone(),
            experimental_debug_info: node.experimental_debug_info.clone(),
            ..Default::default()
        };
        constant
            .attr
            .insert("dtype".into(), AttrValue { value: Some(attr_value::Value::Type(dtype)) });
        constant.attr.insert(
            "value".into(),
            AttrValue { value: Some(attr_value::Value::Tensor(Box::new(tensor))) },
        );
        for keep in ["_output_shapes", "_class"] {
            if let Some(a) = node.attr.get(keep) {
                constant.attr.insert(keep.into(), a.clone());
            }
        }
        *g.node_mut(id) = constant;
        report.push(
            ActionKind::Replaced,
            &t.node,
            &old_op,
            Why::BoundBySet,
            format!("Const {} = {text}", dtype::short_name(dtype)),
        );
    }
    Ok(())
}

/// One value of `dtype` parsed from `text`, in the dtype's typed field (no shape yet).
pub(crate) fn parse_value(name: &str, dtype: i32, text: &str) -> Result<TensorProto, StripError> {
    let wrong = || StripError::SetWrongType {
        name: name.into(),
        dtype: dtype::short_name(dtype),
        value: text.into(),
    };
    let s = text.trim();
    let mut p = TensorProto { dtype, ..Default::default() };
    let int = |lo: i128, hi: i128| -> Result<i128, StripError> {
        let v: i128 = s.parse().map_err(|_| wrong())?;
        if v < lo || v > hi {
            return Err(wrong());
        }
        Ok(v)
    };
    let float = || -> Result<f64, StripError> {
        let v: f64 = s.parse().map_err(|_| wrong())?;
        Ok(v)
    };
    match dtype {
        dt::BOOL => {
            p.bool_val = vec![match s.to_ascii_lowercase().as_str() {
                "true" | "1" => true,
                "false" | "0" => false,
                _ => return Err(wrong()),
            }]
        }
        dt::FLOAT => {
            let v = float()?;
            if v.is_finite() && v.abs() > f32::MAX as f64 {
                return Err(wrong());
            }
            p.float_val = vec![v as f32];
        }
        dt::DOUBLE => p.double_val = vec![float()?],
        dt::HALF => {
            let v = float()?;
            if v.is_finite() && v.abs() > f64::from(half::f16::MAX) {
                return Err(wrong());
            }
            p.half_val = vec![i32::from(half::f16::from_f64(v).to_bits())];
        }
        dt::BFLOAT16 => {
            let v = float()?;
            if v.is_finite() && v.abs() > f64::from(half::bf16::MAX) {
                return Err(wrong());
            }
            p.half_val = vec![i32::from(half::bf16::from_f64(v).to_bits())];
        }
        dt::INT8 => p.int_val = vec![int(i8::MIN.into(), i8::MAX.into())? as i32],
        dt::INT16 => p.int_val = vec![int(i16::MIN.into(), i16::MAX.into())? as i32],
        dt::INT32 => p.int_val = vec![int(i32::MIN.into(), i32::MAX.into())? as i32],
        dt::UINT8 => p.int_val = vec![int(0, u8::MAX.into())? as i32],
        dt::UINT16 => p.int_val = vec![int(0, u16::MAX.into())? as i32],
        dt::INT64 => p.int64_val = vec![int(i64::MIN.into(), i64::MAX.into())? as i64],
        dt::UINT32 => p.uint32_val = vec![int(0, u32::MAX.into())? as u32],
        dt::UINT64 => p.uint64_val = vec![int(0, u64::MAX.into())? as u64],
        dt::STRING => p.string_val = vec![text.as_bytes().to_vec()],
        _ => {
            return Err(StripError::SetDtype { name: name.into(), dtype: dtype::short_name(dtype) })
        }
    }
    Ok(p)
}
