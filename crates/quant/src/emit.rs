//! The nodes that replace a weight `Const`. The last node of each replacement carries the
//! weight's original name, so consumers, control edges, colocations and fetches are
//! unchanged; the helper Consts take over the original's control inputs (which is what puts a
//! constant into a TF1 loop frame) and every new node keeps its device.

use std::collections::HashSet;

use bytes::Bytes;
use tf_proto::tensorflow::{AttrValue, DataType, NodeDef, TensorProto};
use tf_tensor::{dt, shape_proto, Tensor};

/// Fresh node names: `base` if free, else `base_1`, `base_2`, ...
pub(crate) struct Names {
    taken: HashSet<String>,
}

impl Names {
    pub(crate) fn new(existing: impl Iterator<Item = String>) -> Names {
        Names { taken: existing.collect() }
    }

    pub(crate) fn fresh(&mut self, base: &str) -> String {
        let name = if self.taken.contains(base) {
            (1..).map(|i| format!("{base}_{i}")).find(|n| !self.taken.contains(n)).unwrap()
        } else {
            base.to_string()
        };
        self.taken.insert(name.clone());
        name
    }
}

/// What every new node inherits from the weight it replaces.
pub(crate) struct Origin<'a> {
    pub node: &'a NodeDef,
    /// The `^x` inputs of the original Const.
    pub control: Vec<String>,
}

impl<'a> Origin<'a> {
    pub(crate) fn new(node: &'a NodeDef) -> Origin<'a> {
        Origin {
            node,
            control: node.input.iter().filter(|s| s.starts_with('^')).cloned().collect(),
        }
    }

    fn name(&self) -> &str {
        &self.node.name
    }

    /// A helper Const holding `value`.
    fn constant(&self, name: String, value: TensorProto) -> NodeDef {
        let mut n = NodeDef {
            name,
            op: "Const".into(),
            input: self.control.clone(),
            device: self.node.device.clone(),
            ..Default::default()
        };
        n.attr.insert("dtype".into(), AttrValue::from(dtype(value.dtype)));
        n.attr.insert("value".into(), AttrValue::from(value));
        n
    }

    /// A helper op.
    fn op(&self, name: String, op: &str, inputs: &[&str]) -> NodeDef {
        NodeDef {
            name,
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            device: self.node.device.clone(),
            ..Default::default()
        }
    }

    /// The final node: the original (name, device, `_`-attributes such as `_class` and
    /// `_output_shapes`, debug info) turned into `op` with these inputs.
    fn last(&self, op: &str, inputs: &[&str]) -> NodeDef {
        let mut attr = self.node.attr.clone();
        attr.retain(|k, _| k.starts_with('_'));
        NodeDef {
            op: op.into(),
            input: inputs.iter().map(|s| s.to_string()).collect(),
            attr,
            ..self.node.clone()
        }
    }
}

fn dtype(code: i32) -> DataType {
    DataType::try_from(code).unwrap_or(DataType::DtInvalid)
}

/// A TensorProto whose `tensor_content` is `payload` (a slice of the output arena).
pub(crate) fn payload_proto(dtype: i32, shape: &[i64], payload: Bytes) -> TensorProto {
    TensorProto {
        dtype,
        tensor_shape: Some(shape_proto(shape)),
        tensor_content: payload,
        ..Default::default()
    }
}

fn floats_proto(shape: &[i64], values: &[f32]) -> TensorProto {
    Tensor::from_values(dt::FLOAT, shape, values).expect("shape and values agree").to_proto()
}

fn cast(n: &mut NodeDef, src: DataType) {
    n.attr.insert("SrcT".into(), src.into());
    n.attr.insert("DstT".into(), DataType::DtFloat.into());
    n.attr.insert("Truncate".into(), false.into());
}

/// int8 as `Const(DT_INT8) → Cast → Mul(·, Const scale)`.
pub(crate) fn int8_cast_mul(
    o: &Origin,
    names: &mut Names,
    q: TensorProto,
    scale_shape: &[i64],
    scales: &[f32],
) -> Vec<NodeDef> {
    let qn = names.fresh(&format!("{}/quantized", o.name()));
    let cn = names.fresh(&format!("{}/cast", o.name()));
    let sn = names.fresh(&format!("{}/scale", o.name()));
    let qnode = o.constant(qn.clone(), q);
    let mut cnode = o.op(cn.clone(), "Cast", &[&qn]);
    cast(&mut cnode, DataType::DtInt8);
    let snode = o.constant(sn.clone(), floats_proto(scale_shape, scales));
    let mut mul = o.last("Mul", &[&cn, &sn]);
    mul.attr.insert("T".into(), DataType::DtFloat.into());
    vec![qnode, cnode, snode, mul]
}

/// int8 as `Const(DT_QINT8) + min/max → Dequantize(SCALED, narrow_range, axis)`. Channels
/// spanning several axes (depthwise (I,M)) are merged into one axis of the stored tensor and
/// reshaped back after dequantization.
pub(crate) fn int8_dequantize(
    o: &Origin,
    names: &mut Names,
    payload: Bytes,
    shape: &[i64],
    axes: &[usize],
    max_abs: &[f32],
) -> Vec<NodeDef> {
    let (stored, axis, reshape) = match (axes.first(), axes.last()) {
        (Some(&a0), Some(&a1)) if a1 > a0 => {
            let mut s = shape[..a0].to_vec();
            s.push(shape[a0..=a1].iter().product());
            s.extend_from_slice(&shape[a1 + 1..]);
            (s, a0 as i64, true)
        }
        (Some(&a0), _) => (shape.to_vec(), a0 as i64, false),
        _ => (shape.to_vec(), -1, false),
    };
    let range_shape: Vec<i64> = if axis < 0 { Vec::new() } else { vec![max_abs.len() as i64] };
    let mins: Vec<f32> = max_abs.iter().map(|m| -m).collect();
    let qn = names.fresh(&format!("{}/quantized", o.name()));
    let lo = names.fresh(&format!("{}/min", o.name()));
    let hi = names.fresh(&format!("{}/max", o.name()));
    let mut out = vec![
        o.constant(qn.clone(), payload_proto(dt::QINT8, &stored, payload)),
        o.constant(lo.clone(), floats_proto(&range_shape, &mins)),
        o.constant(hi.clone(), floats_proto(&range_shape, max_abs)),
    ];
    let mut deq = if reshape {
        o.op(names.fresh(&format!("{}/dequantize", o.name())), "Dequantize", &[&qn, &lo, &hi])
    } else {
        o.last("Dequantize", &[&qn, &lo, &hi])
    };
    deq.attr.insert("T".into(), DataType::DtQint8.into());
    deq.attr.insert("mode".into(), "SCALED".into());
    deq.attr.insert("narrow_range".into(), true.into());
    deq.attr.insert("axis".into(), axis.into());
    deq.attr.insert("dtype".into(), DataType::DtFloat.into());
    if reshape {
        let sn = names.fresh(&format!("{}/shape", o.name()));
        let dims: Vec<i32> = shape.iter().map(|d| *d as i32).collect();
        let shape_t = Tensor::from_values(dt::INT32, &[dims.len() as i64], &dims)
            .expect("shape and values agree")
            .to_proto();
        let mut r = o.last("Reshape", &[&deq.name, &sn]);
        r.attr.insert("T".into(), DataType::DtFloat.into());
        r.attr.insert("Tshape".into(), DataType::DtInt32.into());
        out.push(deq);
        out.push(o.constant(sn, shape_t));
        out.push(r);
    } else {
        out.push(deq);
    }
    out
}

/// uint8 exactly as the Graph Transform Tool's `quantize_weights` writes it:
/// `<name>_quantized_const` (quint8), `<name>_quantized_min`, `<name>_quantized_max` and
/// `<name>` = `Dequantize(T=quint8, mode=MIN_FIRST)`.
pub(crate) fn uint8_gtt(
    o: &Origin,
    names: &mut Names,
    q: TensorProto,
    min: f32,
    max: f32,
) -> Vec<NodeDef> {
    let qn = names.fresh(&format!("{}_quantized_const", o.name()));
    let lo = names.fresh(&format!("{}_quantized_min", o.name()));
    let hi = names.fresh(&format!("{}_quantized_max", o.name()));
    let mut deq = o.last("Dequantize", &[&qn, &lo, &hi]);
    deq.attr.insert("T".into(), DataType::DtQuint8.into());
    deq.attr.insert("mode".into(), "MIN_FIRST".into());
    vec![
        o.constant(qn, q),
        o.constant(lo, floats_proto(&[], &[min])),
        o.constant(hi, floats_proto(&[], &[max])),
        deq,
    ]
}

/// float16 or bfloat16: `Const(half) → Cast(→FLOAT)`.
pub(crate) fn half_cast(o: &Origin, names: &mut Names, h: TensorProto) -> Vec<NodeDef> {
    let (suffix, src) = if h.dtype == dt::HALF {
        ("float16", DataType::DtHalf)
    } else {
        ("bfloat16", DataType::DtBfloat16)
    };
    let hn = names.fresh(&format!("{}/{suffix}", o.name()));
    let mut c = o.last("Cast", &[&hn]);
    cast(&mut c, src);
    vec![o.constant(hn, h), c]
}

/// round:N: the same Const with rounded values.
pub(crate) fn rounded(o: &Origin, value: TensorProto) -> Vec<NodeDef> {
    let mut n = o.node.clone();
    n.attr.insert("value".into(), AttrValue::from(value));
    vec![n]
}
