//! What is statically known about each tensor: dtype, (partial) shape, value, and for small
//! integer vectors the elements that are known ("partial values", as TensorFlow's shape
//! inference tracks them for shape tensors).
//!
//! This is what lets `Shape`, `Size` and `Rank` of a tensor that is not constant fold when its
//! shape is known, and what turns `Reshape(x, Pack(Prod(StridedSlice(Shape(x))), 64))` into
//! `Reshape(x, [-1, 64])` when only the batch dimension is unknown. Inference is best effort:
//! an op it does not know yields an unknown shape, never an error.

use std::sync::Arc;

use tf_proto::tensorflow::NodeDef;
use tf_tensor::{dt, Tensor};

use crate::eval;

/// Static knowledge about one tensor.
#[derive(Debug, Clone, Default)]
pub struct Facts {
    /// The dtype, when known.
    pub dtype: Option<i32>,
    /// The shape: `None` for an unknown rank, `-1` for an unknown dimension.
    pub shape: Option<Vec<i64>>,
    /// The whole value, when constant.
    pub value: Option<Arc<Tensor>>,
    /// For integer scalars and vectors: each element if known.
    pub partial: Option<Vec<Option<i64>>>,
}

impl Facts {
    /// Facts of a known value.
    pub fn of_value(t: Arc<Tensor>) -> Facts {
        let partial = partial_of(&t);
        Facts { dtype: Some(t.dtype), shape: Some(t.shape.clone()), value: Some(t), partial }
    }

    /// The shape if every dimension is known.
    pub fn known_shape(&self) -> Option<&[i64]> {
        self.shape.as_deref().filter(|s| s.iter().all(|&d| d >= 0))
    }

    /// The rank if known.
    pub fn rank(&self) -> Option<usize> {
        self.shape.as_ref().map(Vec::len)
    }

    /// The integer elements if all are known.
    pub fn int_values(&self) -> Option<Vec<i64>> {
        self.partial.as_ref()?.iter().copied().collect()
    }
}

/// The known elements of an integer scalar or vector.
fn partial_of(t: &Tensor) -> Option<Vec<Option<i64>>> {
    if t.shape.len() > 1 || t.len() > 64 || !matches!(t.dtype, dt::INT32 | dt::INT64) {
        return None;
    }
    eval::ints(t).ok().map(|v| v.into_iter().map(Some).collect())
}

fn attr_list<'a>(node: &'a NodeDef, name: &str) -> Option<&'a [i64]> {
    node.attr_opt_list_i64(name)
}

fn unary_same(op: &str) -> bool {
    matches!(
        op,
        "Identity"
            | "Snapshot"
            | "StopGradient"
            | "PreventGradient"
            | "CheckNumerics"
            | "Neg"
            | "Abs"
            | "Sqrt"
            | "Rsqrt"
            | "Square"
            | "Exp"
            | "Expm1"
            | "Log"
            | "Log1p"
            | "Reciprocal"
            | "Inv"
            | "Tanh"
            | "Sigmoid"
            | "Relu"
            | "Relu6"
            | "Elu"
            | "Selu"
            | "Softplus"
            | "Softsign"
            | "LeakyRelu"
            | "Floor"
            | "Ceil"
            | "Round"
            | "Rint"
            | "Sign"
            | "Sin"
            | "Cos"
            | "Erf"
            | "Erfc"
            | "Gelu"
            | "Softmax"
            | "LogSoftmax"
            | "Cast"
            | "LogicalNot"
            | "ZerosLike"
            | "OnesLike"
            | "BiasAdd"
            | "FusedBatchNorm"
            | "FusedBatchNormV2"
            | "FusedBatchNormV3"
            | "LRN"
            | "Enter"
            | "Exit"
            | "NextIteration"
            | "RefIdentity"
    )
}

fn binary_broadcast(op: &str) -> bool {
    matches!(
        op,
        "Add"
            | "AddV2"
            | "Sub"
            | "Mul"
            | "RealDiv"
            | "Div"
            | "DivNoNan"
            | "FloorDiv"
            | "FloorMod"
            | "TruncateDiv"
            | "TruncateMod"
            | "Maximum"
            | "Minimum"
            | "Pow"
            | "SquaredDifference"
            | "Equal"
            | "NotEqual"
            | "Less"
            | "LessEqual"
            | "Greater"
            | "GreaterEqual"
            | "LogicalAnd"
            | "LogicalOr"
            | "SelectV2"
            | "AddN"
    )
}

/// Broadcast of partial shapes.
pub(crate) fn broadcast(a: &[i64], b: &[i64]) -> Option<Vec<i64>> {
    let n = a.len().max(b.len());
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out.push(match (da, db) {
            (1, d) | (d, 1) => d,
            (x, y) if x == y => x,
            (-1, y) => y,
            (x, -1) => x,
            _ => return None,
        });
    }
    Some(out)
}

fn conv_out(
    input: i64,
    k: i64,
    stride: i64,
    dilation: i64,
    padding: &str,
    pads: (i64, i64),
) -> i64 {
    if input < 0 || k < 1 || stride <= 0 || dilation <= 0 {
        return -1;
    }
    let Some(eff) = (k - 1).checked_mul(dilation).and_then(|e| e.checked_add(1)) else {
        return -1;
    };
    match padding {
        "SAME" => input / stride + i64::from(input % stride != 0),
        "VALID" => {
            if input < eff {
                -1
            } else {
                (input - eff) / stride + 1
            }
        }
        "EXPLICIT" => {
            let Some(p) = input.checked_add(pads.0).and_then(|p| p.checked_add(pads.1)) else {
                return -1;
            };
            if p < eff {
                -1
            } else {
                (p - eff) / stride + 1
            }
        }
        _ => -1,
    }
}

/// Spatial output shape of a 2-D convolution or pool. `kernel` is (kh, kw).
fn conv2d_shape(node: &NodeDef, x: &[i64], kernel: (i64, i64), out_c: i64) -> Option<Vec<i64>> {
    if x.len() != 4 {
        return None;
    }
    let nchw = node.attr_opt_str("data_format").is_some_and(|f| f == "NCHW");
    let (h, w, n) = if nchw { (2, 3, 1) } else { (1, 2, 3) };
    let _ = n;
    let strides = attr_list(node, "strides").unwrap_or(&[1, 1, 1, 1]);
    let dil = attr_list(node, "dilations").unwrap_or(&[1, 1, 1, 1]);
    if strides.len() != 4 || dil.len() != 4 {
        return None;
    }
    let padding = node.attr_opt_str("padding").unwrap_or("VALID");
    let ep = attr_list(node, "explicit_paddings").unwrap_or(&[]);
    let pad = |i: usize| if ep.len() == 8 { (ep[2 * i], ep[2 * i + 1]) } else { (0, 0) };
    let oh = conv_out(x[h], kernel.0, strides[h], dil[h], padding, pad(h));
    let ow = conv_out(x[w], kernel.1, strides[w], dil[w], padding, pad(w));
    Some(if nchw { vec![x[0], out_c, oh, ow] } else { vec![x[0], oh, ow, out_c] })
}

fn einsum_shape(eq: &str, ins: &[Option<Vec<i64>>]) -> Option<Vec<i64>> {
    if eq.contains("...") {
        return None;
    }
    let (lhs, out) = eq.split_once("->")?;
    let terms: Vec<&str> = lhs.split(',').map(str::trim).collect();
    if terms.len() != ins.len() {
        return None;
    }
    let mut size: std::collections::HashMap<char, i64> = Default::default();
    for (t, s) in terms.iter().zip(ins) {
        let s = s.as_ref()?;
        if t.chars().count() != s.len() {
            return None;
        }
        for (c, &d) in t.chars().zip(s) {
            let e = size.entry(c).or_insert(-1);
            if *e < 0 || *e == 1 {
                *e = if d >= 0 && (*e < 0 || d != 1) { d } else { (*e).max(d) };
            }
        }
    }
    out.trim().chars().map(|c| size.get(&c).copied()).collect()
}

/// Infers the facts of every output of `node` from the facts of its data inputs. `out_types`
/// are the output dtypes from the op registry (possibly empty when unknown).
pub fn infer(node: &NodeDef, ins: &[Facts], out_types: &[i32]) -> Vec<Facts> {
    let n_out = out_types.len().max(1);
    let mut outs: Vec<Facts> = (0..n_out)
        .map(|i| Facts { dtype: out_types.get(i).copied(), ..Default::default() })
        .collect();
    let shape0 = infer_shape(node, ins);
    if let Some(s) = shape0 {
        outs[0].shape = Some(s);
    }
    // Multi-output ops.
    match node.op.as_str() {
        "ShapeN" => {
            for (o, f) in outs.iter_mut().zip(ins) {
                o.shape = f.rank().map(|r| vec![r as i64]);
                o.partial = f.shape.as_ref().map(|s| dims_partial(s));
            }
        }
        "Unpack" => {
            if let Some(s) = ins.first().and_then(|f| f.shape.clone()) {
                if let Ok(ax) = eval::norm_axis(eval::attr_i64(node, "axis", 0), s.len()) {
                    let mut s2 = s.clone();
                    s2.remove(ax);
                    for o in outs.iter_mut() {
                        o.shape = Some(s2.clone());
                    }
                    // Unpacking a partial vector gives scalars.
                    if let Some(p) = ins[0].partial.as_ref().filter(|_| s.len() == 1) {
                        for (o, v) in outs.iter_mut().zip(p) {
                            o.partial = Some(vec![*v]);
                        }
                    }
                }
            }
        }
        "Switch" | "RefSwitch" => {
            let s = ins.first().and_then(|f| f.shape.clone());
            for o in outs.iter_mut() {
                o.shape = s.clone();
            }
        }
        "Merge" | "RefMerge" if outs.len() > 1 => {
            outs[1].shape = Some(vec![]);
        }
        "FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3" => {
            let c = ins.get(1).and_then(|f| f.shape.clone());
            for o in outs.iter_mut().skip(1).take(4) {
                o.shape = c.clone();
            }
        }
        "Split" | "SplitV" => {
            let (x, axis) = if node.op == "Split" {
                (ins.get(1), ins.first())
            } else {
                (ins.first(), ins.get(2))
            };
            if let (Some(s), Some(a)) =
                (x.and_then(|f| f.shape.clone()), axis.and_then(|f| f.int_values()))
            {
                if let (Some(&a), true) = (a.first(), !s.is_empty()) {
                    if let Ok(ax) = eval::norm_axis(a, s.len()) {
                        let sizes: Option<Vec<i64>> = if node.op == "Split" {
                            let k = eval::attr_i64(node, "num_split", 1).max(1);
                            Some(vec![if s[ax] >= 0 { s[ax] / k } else { -1 }; n_out])
                        } else {
                            ins.get(1).and_then(|f| f.int_values()).filter(|v| !v.contains(&-1))
                        };
                        if let Some(sizes) = sizes {
                            for (o, sz) in outs.iter_mut().zip(sizes) {
                                let mut s2 = s.clone();
                                s2[ax] = sz;
                                o.shape = Some(s2);
                            }
                        }
                    }
                }
            }
        }
        _ => {}
    }
    outs[0].partial = infer_partial(node, ins, outs[0].shape.as_deref());
    for o in &mut outs {
        sanitize_partial(o);
    }
    // A fully known partial value is a value.
    if let (Some(p), Some(dtype)) = (&outs[0].partial, outs[0].dtype) {
        if let (Some(v), Some(s)) =
            (p.iter().copied().collect::<Option<Vec<i64>>>(), &outs[0].shape)
        {
            if matches!(dtype, dt::INT32 | dt::INT64) && s.len() <= 1 && eval::numel(s) == v.len() {
                if let Ok(t) = eval::int_tensor(dtype, s, &v) {
                    outs[0].value = Some(Arc::new(t));
                }
            }
        }
    }
    for o in outs.iter_mut() {
        if let (Some(p), Some(dtype), Some(s)) = (&o.partial, o.dtype, &o.shape) {
            if o.value.is_none() && matches!(dtype, dt::INT32 | dt::INT64) && s.len() <= 1 {
                if let Some(v) = p.iter().copied().collect::<Option<Vec<i64>>>() {
                    if eval::numel(s) == v.len() {
                        o.value = eval::int_tensor(dtype, s, &v).ok().map(Arc::new);
                    }
                }
            }
        }
    }
    outs
}

/// Keeps a partial value only where it is consistent with the output's facts: an integer
/// vector or scalar of known length, and elements representable in the dtype (an int32
/// product that would wrap is unknown, never a wrong number).
fn sanitize_partial(o: &mut Facts) {
    let Some(p) = o.partial.as_mut() else { return };
    let consistent = match (&o.shape, o.dtype) {
        (Some(s), dtype) => {
            dtype.is_none_or(|d| matches!(d, dt::INT32 | dt::INT64))
                && s.len() <= 1
                && s.iter().all(|&d| d >= 0)
                && eval::numel(s) == p.len()
        }
        (None, _) => false,
    };
    if !consistent {
        o.partial = None;
        return;
    }
    if o.dtype == Some(dt::INT32) {
        for v in p.iter_mut() {
            if v.is_some_and(|x| i32::try_from(x).is_err()) {
                *v = None;
            }
        }
    }
}

fn dims_partial(s: &[i64]) -> Vec<Option<i64>> {
    s.iter().map(|&d| (d >= 0).then_some(d)).collect()
}

fn infer_shape(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let op = node.op.as_str();
    let s = |i: usize| ins.get(i).and_then(|f| f.shape.clone());
    let vals = |i: usize| ins.get(i).and_then(|f| f.int_values());
    if unary_same(op) {
        return s(0);
    }
    if binary_broadcast(op) {
        let mut acc = s(0)?;
        for i in 1..ins.len() {
            acc = broadcast(&acc, &s(i)?)?;
        }
        return Some(acc);
    }
    match op {
        "Placeholder" | "PlaceholderWithDefault" => {
            let sh = node.attr_opt_shape("shape")?;
            if sh.unknown_rank {
                return None;
            }
            Some(sh.dim.iter().map(|d| d.size.max(-1)).collect())
        }
        "Const" => {
            let t = node.attr_opt_tensor("value")?;
            let sh = t.tensor_shape.as_ref();
            Some(sh.map(|s| s.dim.iter().map(|d| d.size).collect()).unwrap_or_default())
        }
        "Shape" => Some(vec![s(0)?.len() as i64]),
        "Size" | "Rank" => Some(vec![]),
        "Select" => {
            let (t, e) = (s(1), s(2));
            match (t, e) {
                (Some(t), Some(e)) => broadcast(&t, &e).filter(|b| b.len() == t.len()),
                (Some(t), None) | (None, Some(t)) => Some(t),
                _ => None,
            }
        }
        "MatMul" => {
            let (a, b) = (s(0)?, s(1)?);
            if a.len() != 2 || b.len() != 2 {
                return None;
            }
            let ta = eval::attr_bool(node, "transpose_a", false);
            let tb = eval::attr_bool(node, "transpose_b", false);
            Some(vec![if ta { a[1] } else { a[0] }, if tb { b[0] } else { b[1] }])
        }
        "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3" => {
            let (a, b) = (s(0)?, s(1)?);
            if a.len() < 2 || b.len() < 2 {
                return None;
            }
            let ta = eval::attr_bool(node, "adj_x", false);
            let tb = eval::attr_bool(node, "adj_y", false);
            let mut out = broadcast(&a[..a.len() - 2], &b[..b.len() - 2])?;
            let (ra, rb) = (a.len(), b.len());
            out.push(if ta { a[ra - 1] } else { a[ra - 2] });
            out.push(if tb { b[rb - 2] } else { b[rb - 1] });
            Some(out)
        }
        "Einsum" => {
            let eq = node.attr_opt_str("equation")?;
            let shapes: Vec<Option<Vec<i64>>> = (0..ins.len()).map(s).collect();
            einsum_shape(eq, &shapes)
        }
        "Conv2D" => {
            let f = s(1)?;
            if f.len() != 4 {
                return None;
            }
            conv2d_shape(node, &s(0)?, (f[0], f[1]), f[3])
        }
        "DepthwiseConv2dNative" => {
            let (x, f) = (s(0)?, s(1)?);
            if f.len() != 4 || x.len() != 4 {
                return None;
            }
            let nchw = node.attr_opt_str("data_format").is_some_and(|d| d == "NCHW");
            let c = if nchw { x[1] } else { x[3] };
            let oc = if c >= 0 && f[3] >= 0 {
                c.checked_mul(f[3]).unwrap_or(-1)
            } else if f[2] >= 0 && f[3] >= 0 {
                f[2].checked_mul(f[3]).unwrap_or(-1)
            } else {
                -1
            };
            conv2d_shape(node, &x, (f[0], f[1]), oc)
        }
        "MaxPool" | "AvgPool" => {
            let x = s(0)?;
            let k = attr_list(node, "ksize")?;
            if k.len() != 4 || x.len() != 4 {
                return None;
            }
            let nchw = node.attr_opt_str("data_format").is_some_and(|d| d == "NCHW");
            let (kh, kw, c) = if nchw { (k[2], k[3], x[1]) } else { (k[1], k[2], x[3]) };
            conv2d_shape(node, &x, (kh, kw), c)
        }
        "Reshape" => {
            let target = ins.get(1)?.partial.clone()?;
            let mut out: Vec<i64> = target.iter().map(|v| v.unwrap_or(-1)).collect();
            let x = s(0);
            let unknown: Vec<usize> = (0..out.len()).filter(|&i| out[i] < 0).collect();
            if unknown.len() == 1 {
                if let Some(n) = x
                    .as_ref()
                    .filter(|x| x.iter().all(|&d| d >= 0))
                    .and_then(|x| tf_tensor::num_elements(x))
                    .and_then(|n| i64::try_from(n).ok())
                {
                    let known = out
                        .iter()
                        .filter(|&&d| d >= 0)
                        .try_fold(1i64, |a, &d| a.checked_mul(d))
                        .unwrap_or(0);
                    if known > 0 && n % known == 0 {
                        out[unknown[0]] = n / known;
                    }
                }
            }
            Some(out)
        }
        "ExpandDims" => {
            let mut x = s(0)?;
            let d = *vals(1)?.first()?;
            let r = x.len() as i64;
            if d < -r - 1 || d > r {
                return None;
            }
            x.insert(if d < 0 { d + r + 1 } else { d } as usize, 1);
            Some(x)
        }
        "Squeeze" => {
            let x = s(0)?;
            let axes = attr_list(node, "squeeze_dims").unwrap_or(&[]);
            if axes.is_empty() {
                if x.contains(&-1) {
                    return None;
                }
                return Some(x.into_iter().filter(|&d| d != 1).collect());
            }
            let mut drop = vec![false; x.len()];
            for &a in axes {
                drop[eval::norm_axis(a, x.len()).ok()?] = true;
            }
            Some(x.iter().zip(&drop).filter(|(_, d)| !**d).map(|(v, _)| *v).collect())
        }
        "Transpose" => {
            let x = s(0)?;
            let p = vals(1)?;
            let perm = eval::array_permutation(&p, x.len()).ok()?;
            Some(perm.iter().map(|&i| x[i]).collect())
        }
        "ConcatV2" | "Concat" => {
            let (vals_range, axis_i) = if op == "ConcatV2" {
                (0..ins.len().saturating_sub(1), ins.len().checked_sub(1)?)
            } else {
                (1..ins.len(), 0)
            };
            let axis = *vals(axis_i)?.first()?;
            let mut out: Option<Vec<i64>> = None;
            for i in vals_range {
                let x = s(i)?;
                let ax = eval::norm_axis(axis, x.len()).ok()?;
                out = Some(match out {
                    None => x,
                    Some(mut o) => {
                        if o.len() != x.len() {
                            return None;
                        }
                        for d in 0..o.len() {
                            if d == ax {
                                o[d] = if o[d] >= 0 && x[d] >= 0 {
                                    o[d].checked_add(x[d]).unwrap_or(-1)
                                } else {
                                    -1
                                };
                            } else if o[d] < 0 {
                                o[d] = x[d];
                            }
                        }
                        o
                    }
                });
            }
            out
        }
        "Pack" => {
            let mut x = s(0)?;
            let r = x.len() as i64;
            let axis = eval::attr_i64(node, "axis", 0);
            if axis < -r - 1 || axis > r {
                return None;
            }
            x.insert(if axis < 0 { axis + r + 1 } else { axis } as usize, ins.len() as i64);
            Some(x)
        }
        "Fill" | "BroadcastTo" => {
            let dims = ins.get(if op == "Fill" { 0 } else { 1 })?.partial.clone()?;
            Some(dims.iter().map(|d| d.unwrap_or(-1)).collect())
        }
        "Sum" | "Prod" | "Max" | "Min" | "Mean" | "All" | "Any" => {
            let x = s(0)?;
            let axes = vals(1)?;
            let red = eval::reduced_axes(&axes, x.len()).ok()?;
            Some(eval::reduced_shape(&x, &red, eval::attr_bool(node, "keep_dims", false)))
        }
        "ArgMax" | "ArgMin" => {
            let mut x = s(0)?;
            let a = *vals(1)?.first()?;
            let ax = eval::norm_axis(a, x.len()).ok()?;
            x.remove(ax);
            Some(x)
        }
        "GatherV2" | "Gather" | "ResourceGather" => {
            let p = s(0)?;
            let i = s(1)?;
            let axis = if op == "GatherV2" { *vals(2)?.first()? } else { 0 };
            if eval::attr_i64(node, "batch_dims", 0) != 0 {
                return None;
            }
            let ax = eval::norm_axis(axis, p.len()).ok()?;
            let mut out = p[..ax].to_vec();
            out.extend(i);
            out.extend(&p[ax + 1..]);
            Some(out)
        }
        "StridedSlice" => {
            let x = s(0)?;
            let (b, e, st) = (vals(1)?, vals(2)?, vals(3)?);
            let plan =
                eval::strided_slice_plan(&x, &b, &e, &st, eval::SliceMasks::of(node)).ok()?;
            Some(plan.final_shape)
        }
        "Slice" => {
            let x = s(0)?;
            let (b, sz) = (vals(1)?, vals(2)?);
            if b.len() != x.len() || sz.len() != x.len() {
                return None;
            }
            Some(
                (0..x.len())
                    .map(|i| {
                        if sz[i] == -1 {
                            if x[i] >= 0 {
                                x[i].checked_sub(b[i]).filter(|d| *d >= 0).unwrap_or(-1)
                            } else {
                                -1
                            }
                        } else {
                            sz[i]
                        }
                    })
                    .collect(),
            )
        }
        "Pad" | "PadV2" | "MirrorPad" => {
            let x = s(0)?;
            // The paddings are a [rank, 2] matrix: its value, not a partial vector.
            let p = eval::ints(ins.get(1)?.value.as_deref()?).ok()?;
            if p.len() != 2 * x.len() {
                return None;
            }
            Some(
                (0..x.len())
                    .map(|i| {
                        let d = (x[i] >= 0).then_some(x[i]);
                        d.and_then(|d| d.checked_add(p[2 * i])?.checked_add(p[2 * i + 1]))
                            .filter(|d| *d >= 0)
                            .unwrap_or(-1)
                    })
                    .collect(),
            )
        }
        "Tile" => {
            let x = s(0)?;
            let m = ins.get(1)?.partial.clone()?;
            if m.len() != x.len() {
                return None;
            }
            Some(
                x.iter()
                    .zip(&m)
                    .map(|(&d, k)| match k {
                        Some(k) if d >= 0 && *k >= 0 => d.checked_mul(*k).unwrap_or(-1),
                        _ => -1,
                    })
                    .collect(),
            )
        }
        "Range" => {
            let v = ins.iter().map(|f| f.value.clone()).collect::<Option<Vec<_>>>();
            match v {
                Some(_) => None, // folded by evaluation
                None => Some(vec![-1]),
            }
        }
        "Merge" | "RefMerge" => {
            let first = s(0)?;
            (1..ins.len()).all(|i| s(i).as_ref() == Some(&first)).then_some(first)
        }
        "Switch" | "RefSwitch" => s(0),
        _ => None,
    }
}

/// Known elements of an integer vector or scalar output.
fn infer_partial(node: &NodeDef, ins: &[Facts], shape: Option<&[i64]>) -> Option<Vec<Option<i64>>> {
    let op = node.op.as_str();
    let p = |i: usize| ins.get(i).and_then(|f| f.partial.clone());
    let vals = |i: usize| ins.get(i).and_then(|f| f.int_values());
    match op {
        "Shape" => Some(dims_partial(ins.first()?.shape.as_ref()?)),
        "Size" => {
            let s = ins.first()?.shape.as_ref()?;
            Some(vec![s.iter().try_fold(1i64, |a, &d| if d < 0 { None } else { a.checked_mul(d) })])
        }
        "Rank" => Some(vec![Some(ins.first()?.rank()? as i64)]),
        "Identity" | "Snapshot" | "StopGradient" | "Cast" => {
            if op == "Cast" {
                let to = eval::attr_type(node, "DstT")?;
                if !matches!(to, dt::INT32 | dt::INT64) {
                    return None;
                }
            }
            p(0)
        }
        "StridedSlice" => {
            let x = p(0)?;
            let xs = ins.first()?.shape.clone()?;
            if xs.len() != 1 || xs[0] < 0 || usize::try_from(xs[0]).ok()? != x.len() {
                return None;
            }
            let (b, e, st) = (vals(1)?, vals(2)?, vals(3)?);
            let plan =
                eval::strided_slice_plan(&xs, &b, &e, &st, eval::SliceMasks::of(node)).ok()?;
            if plan.final_shape.len() > 1 {
                return None;
            }
            Some(plan.indices(&xs).ok()?.into_iter().map(|i| x.get(i).copied().flatten()).collect())
        }
        "GatherV2" | "Gather" => {
            let x = p(0)?;
            if ins.first()?.rank()? != 1 || ins.first()?.known_shape()? != [x.len() as i64] {
                return None;
            }
            if op == "GatherV2" && vals(2)?.first().copied()? != 0 {
                return None;
            }
            let idx = vals(1)?;
            if ins.get(1)?.rank()? > 1 {
                return None;
            }
            idx.iter().map(|&i| usize::try_from(i).ok().and_then(|i| x.get(i).copied())).collect()
        }
        "Pack" => {
            if eval::attr_i64(node, "axis", 0) != 0 {
                return None;
            }
            // Per element: a scalar nobody knows is one unknown element, not an unknown vector.
            let mut out = Vec::new();
            for (i, f) in ins.iter().enumerate() {
                if f.rank()? != 0 {
                    return None;
                }
                out.extend(p(i).filter(|v| v.len() == 1).unwrap_or_else(|| vec![None]));
            }
            Some(out)
        }
        "ConcatV2" => {
            let n = ins.len().checked_sub(1)?;
            if vals(n)?.first().copied()? != 0 && vals(n)?.first().copied()? != -1 {
                return None;
            }
            // Per element: a vector of known length whose values nobody knows adds that many
            // unknown elements.
            let mut out = Vec::new();
            for (i, f) in ins.iter().enumerate().take(n) {
                let len = usize::try_from(*f.known_shape().filter(|s| s.len() == 1)?.first()?)
                    .ok()
                    .filter(|&l| l <= 64)?;
                out.extend(p(i).filter(|v| v.len() == len).unwrap_or_else(|| vec![None; len]));
            }
            Some(out)
        }
        "ExpandDims" | "Reshape" | "Squeeze" => {
            let s = shape?;
            let x = p(0)?;
            (s.len() <= 1 && eval::numel(s) == x.len()).then_some(x)
        }
        "Prod" | "Sum" => {
            let x = p(0)?;
            if shape? != [] as [i64; 0] {
                return None;
            }
            let xs = ins.first()?.known_shape()?;
            if xs.len() > 1 || eval::numel(xs) != x.len() {
                return None;
            }
            let known: Option<Vec<i64>> = x.iter().copied().collect();
            Some(vec![known.and_then(|v| {
                if op == "Prod" {
                    v.iter().try_fold(1i64, |a, &x| a.checked_mul(x))
                } else {
                    v.iter().try_fold(0i64, |a, &x| a.checked_add(x))
                }
            })])
        }
        "Mul" | "Add" | "AddV2" | "Sub" | "FloorDiv" | "Maximum" | "Minimum" => {
            // Scalars only; both known ones are folded by evaluation anyway.
            let (a, b) = (p(0)?, p(1)?);
            if a.len() != 1 || b.len() != 1 {
                return None;
            }
            let (Some(x), Some(y)) = (a[0], b[0]) else {
                return Some(vec![None]);
            };
            let v = match op {
                "Mul" => x.checked_mul(y),
                "Add" | "AddV2" => x.checked_add(y),
                "Sub" => x.checked_sub(y),
                // i64::MIN / -1 wraps to i64::MIN, as TensorFlow's kernel computes it.
                "FloorDiv" => (y != 0).then(|| {
                    let (q, r) = (x.wrapping_div(y), x.wrapping_rem(y));
                    if r != 0 && ((x < 0) != (y < 0)) {
                        q - 1
                    } else {
                        q
                    }
                }),
                "Maximum" => Some(x.max(y)),
                _ => Some(x.min(y)),
            };
            Some(vec![v])
        }
        _ => None,
    }
}
