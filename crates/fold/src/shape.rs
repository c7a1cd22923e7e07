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

use crate::{eval, ops};

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
///
/// The per-op rules are the `ShapeFn`, `OutputsFn` and `ElementsFn` of the op's entry in
/// the op table (`crate::ops`); an op without an entry has outputs of unknown shape.
pub fn infer(node: &NodeDef, ins: &[Facts], out_types: &[i32]) -> Vec<Facts> {
    let op = ops::get(&node.op);
    let n_out = out_types.len().max(1);
    let mut outs: Vec<Facts> = (0..n_out)
        .map(|i| Facts { dtype: out_types.get(i).copied(), ..Default::default() })
        .collect();
    if let Some(s) = op.and_then(|o| o.shape).and_then(|f| f(node, ins)) {
        outs[0].shape = Some(s);
    }
    if let Some(f) = op.and_then(|o| o.outputs) {
        f(node, ins, &mut outs);
    }
    outs[0].partial =
        op.and_then(|o| o.elements).and_then(|f| f(node, ins, outs[0].shape.as_deref()));
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

/// The shape of input `i`, if known.
fn input_shape(ins: &[Facts], i: usize) -> Option<Vec<i64>> {
    ins.get(i).and_then(|f| f.shape.clone())
}

/// The elements of integer input `i`, if all are known.
fn input_ints(ins: &[Facts], i: usize) -> Option<Vec<i64>> {
    ins.get(i).and_then(|f| f.int_values())
}

/// The known elements of input `i`.
fn input_partial(ins: &[Facts], i: usize) -> Option<Vec<Option<i64>>> {
    ins.get(i).and_then(|f| f.partial.clone())
}

// ---- shapes of output 0 ([`ShapeFn`]) ------------------------------------------------------

/// The shape of output 0 of a node from the facts of its data inputs; `None` when unknown.
pub(crate) type ShapeFn = fn(&NodeDef, &[Facts]) -> Option<Vec<i64>>;

/// Output 0 has the shape of input 0 (elementwise unary ops, pass-throughs, `BiasAdd`).
pub(crate) fn same_as_input(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    input_shape(ins, 0)
}

/// Every input broadcast against the others (elementwise binary ops, `AddN`, `SelectV2`).
pub(crate) fn broadcasting(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let mut acc = input_shape(ins, 0)?;
    for i in 1..ins.len() {
        acc = broadcast(&acc, &input_shape(ins, i)?)?;
    }
    Some(acc)
}

/// A scalar (`Size`, `Rank`).
pub(crate) fn scalar(_: &NodeDef, _: &[Facts]) -> Option<Vec<i64>> {
    Some(vec![])
}

/// The `shape` attribute (`Placeholder`, `PlaceholderWithDefault`).
pub(crate) fn placeholder(node: &NodeDef, _: &[Facts]) -> Option<Vec<i64>> {
    let sh = node.attr_opt_shape("shape")?;
    if sh.unknown_rank {
        return None;
    }
    Some(sh.dim.iter().map(|d| d.size.max(-1)).collect())
}

/// The shape of the `value` attribute.
pub(crate) fn constant(node: &NodeDef, _: &[Facts]) -> Option<Vec<i64>> {
    let t = node.attr_opt_tensor("value")?;
    let sh = t.tensor_shape.as_ref();
    Some(sh.map(|s| s.dim.iter().map(|d| d.size).collect()).unwrap_or_default())
}

/// `Shape`: a vector as long as the input's rank.
pub(crate) fn shape(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    Some(vec![input_shape(ins, 0)?.len() as i64])
}

/// `Select`: `t` and `e` broadcast, keeping `t`'s rank.
pub(crate) fn select(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    match (input_shape(ins, 1), input_shape(ins, 2)) {
        (Some(t), Some(e)) => broadcast(&t, &e).filter(|b| b.len() == t.len()),
        (Some(t), None) | (None, Some(t)) => Some(t),
        _ => None,
    }
}

pub(crate) fn mat_mul(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let (a, b) = (input_shape(ins, 0)?, input_shape(ins, 1)?);
    if a.len() != 2 || b.len() != 2 {
        return None;
    }
    let ta = eval::attr_bool(node, "transpose_a", false);
    let tb = eval::attr_bool(node, "transpose_b", false);
    Some(vec![if ta { a[1] } else { a[0] }, if tb { b[0] } else { b[1] }])
}

/// `BatchMatMul`, `V2`, `V3`.
pub(crate) fn batch_mat_mul(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let (a, b) = (input_shape(ins, 0)?, input_shape(ins, 1)?);
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

pub(crate) fn einsum(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let eq = node.attr_opt_str("equation")?;
    let shapes: Vec<Option<Vec<i64>>> = (0..ins.len()).map(|i| input_shape(ins, i)).collect();
    einsum_shape(eq, &shapes)
}

pub(crate) fn conv2d(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let f = input_shape(ins, 1)?;
    if f.len() != 4 {
        return None;
    }
    conv2d_shape(node, &input_shape(ins, 0)?, (f[0], f[1]), f[3])
}

pub(crate) fn depthwise_conv2d(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let (x, f) = (input_shape(ins, 0)?, input_shape(ins, 1)?);
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

/// `MaxPool`, `AvgPool`.
pub(crate) fn pool(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
    let k = attr_list(node, "ksize")?;
    if k.len() != 4 || x.len() != 4 {
        return None;
    }
    let nchw = node.attr_opt_str("data_format").is_some_and(|d| d == "NCHW");
    let (kh, kw, c) = if nchw { (k[2], k[3], x[1]) } else { (k[1], k[2], x[3]) };
    conv2d_shape(node, &x, (kh, kw), c)
}

pub(crate) fn reshape(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let target = ins.get(1)?.partial.clone()?;
    let mut out: Vec<i64> = target.iter().map(|v| v.unwrap_or(-1)).collect();
    let x = input_shape(ins, 0);
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

pub(crate) fn expand_dims(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let mut x = input_shape(ins, 0)?;
    let d = *input_ints(ins, 1)?.first()?;
    let r = x.len() as i64;
    if d < -r - 1 || d > r {
        return None;
    }
    x.insert(if d < 0 { d + r + 1 } else { d } as usize, 1);
    Some(x)
}

pub(crate) fn squeeze(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
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

pub(crate) fn transpose(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
    let p = input_ints(ins, 1)?;
    let perm = eval::array_permutation(&p, x.len()).ok()?;
    Some(perm.iter().map(|&i| x[i]).collect())
}

/// `ConcatV2`: the values first, the axis last.
pub(crate) fn concat_v2(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    concat_shape(ins, 0..ins.len().saturating_sub(1), ins.len().checked_sub(1)?)
}

/// `Concat`: the axis first, then the values.
pub(crate) fn concat(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    concat_shape(ins, 1..ins.len(), 0)
}

fn concat_shape(
    ins: &[Facts],
    values: std::ops::Range<usize>,
    axis_input: usize,
) -> Option<Vec<i64>> {
    let axis = *input_ints(ins, axis_input)?.first()?;
    let mut out: Option<Vec<i64>> = None;
    for i in values {
        let x = input_shape(ins, i)?;
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

pub(crate) fn pack(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let mut x = input_shape(ins, 0)?;
    let r = x.len() as i64;
    let axis = eval::attr_i64(node, "axis", 0);
    if axis < -r - 1 || axis > r {
        return None;
    }
    x.insert(if axis < 0 { axis + r + 1 } else { axis } as usize, ins.len() as i64);
    Some(x)
}

/// `Fill`: the shape is input 0's value.
pub(crate) fn fill(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    dims_input(ins, 0)
}

/// `BroadcastTo`: the shape is input 1's value.
pub(crate) fn broadcast_to(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    dims_input(ins, 1)
}

/// A shape given as the value of input `i` (unknown elements are unknown dimensions).
fn dims_input(ins: &[Facts], i: usize) -> Option<Vec<i64>> {
    let dims = ins.get(i)?.partial.clone()?;
    Some(dims.iter().map(|d| d.unwrap_or(-1)).collect())
}

/// `Sum`, `Prod`, `Max`, `Min`, `Mean`, `All`, `Any`.
pub(crate) fn reduce(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
    let axes = input_ints(ins, 1)?;
    let red = eval::reduced_axes(&axes, x.len()).ok()?;
    Some(eval::reduced_shape(&x, &red, eval::attr_bool(node, "keep_dims", false)))
}

/// `ArgMax`, `ArgMin`.
pub(crate) fn arg_reduce(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let mut x = input_shape(ins, 0)?;
    let a = *input_ints(ins, 1)?.first()?;
    let ax = eval::norm_axis(a, x.len()).ok()?;
    x.remove(ax);
    Some(x)
}

/// `GatherV2`: the axis is input 2.
pub(crate) fn gather_v2(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    gather_shape(node, ins, *input_ints(ins, 2)?.first()?)
}

/// `Gather`, `ResourceGather`: along axis 0.
pub(crate) fn gather(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    gather_shape(node, ins, 0)
}

fn gather_shape(node: &NodeDef, ins: &[Facts], axis: i64) -> Option<Vec<i64>> {
    let p = input_shape(ins, 0)?;
    let i = input_shape(ins, 1)?;
    if eval::attr_i64(node, "batch_dims", 0) != 0 {
        return None;
    }
    let ax = eval::norm_axis(axis, p.len()).ok()?;
    let mut out = p[..ax].to_vec();
    out.extend(i);
    out.extend(&p[ax + 1..]);
    Some(out)
}

pub(crate) fn strided_slice(node: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
    let (b, e, st) = (input_ints(ins, 1)?, input_ints(ins, 2)?, input_ints(ins, 3)?);
    let plan = eval::strided_slice_plan(&x, &b, &e, &st, eval::SliceMasks::of(node)).ok()?;
    Some(plan.final_shape)
}

pub(crate) fn slice(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
    let (b, sz) = (input_ints(ins, 1)?, input_ints(ins, 2)?);
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

/// `Pad`, `PadV2`, `MirrorPad`.
pub(crate) fn pad(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
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

pub(crate) fn tile(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let x = input_shape(ins, 0)?;
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

/// `Range`: a vector (of unknown length unless every input is known, and then it is evaluated).
pub(crate) fn range(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let v = ins.iter().map(|f| f.value.clone()).collect::<Option<Vec<_>>>();
    match v {
        Some(_) => None, // folded by evaluation
        None => Some(vec![-1]),
    }
}

/// `Merge`, `RefMerge`: the inputs' shape when they all agree.
pub(crate) fn merge(_: &NodeDef, ins: &[Facts]) -> Option<Vec<i64>> {
    let first = input_shape(ins, 0)?;
    (1..ins.len()).all(|i| input_shape(ins, i).as_ref() == Some(&first)).then_some(first)
}

// ---- every output of multi-output ops ([`OutputsFn`]) -------------------------------------

/// Fills in the facts of a multi-output node's outputs (after output 0's [`ShapeFn`], before
/// output 0's [`ElementsFn`]).
pub(crate) type OutputsFn = fn(&NodeDef, &[Facts], &mut [Facts]);

/// `ShapeN`: output `i` is the shape of input `i`.
pub(crate) fn shape_n_outputs(_: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    for (o, f) in outs.iter_mut().zip(ins) {
        o.shape = f.rank().map(|r| vec![r as i64]);
        o.partial = f.shape.as_ref().map(|s| dims_partial(s));
    }
}

pub(crate) fn unpack_outputs(node: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    if let Some(s) = input_shape(ins, 0) {
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

/// `Switch`, `RefSwitch`: both outputs have the data's shape.
pub(crate) fn switch_outputs(_: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    let s = input_shape(ins, 0);
    for o in outs.iter_mut() {
        o.shape = s.clone();
    }
}

/// `Merge`, `RefMerge`: `value_index` is a scalar.
pub(crate) fn merge_outputs(_: &NodeDef, _: &[Facts], outs: &mut [Facts]) {
    if let Some(o) = outs.get_mut(1) {
        o.shape = Some(vec![]);
    }
}

/// `FusedBatchNorm`, `V2`, `V3`: the batch statistics have the scale's shape.
pub(crate) fn fused_batch_norm_outputs(_: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    let c = input_shape(ins, 1);
    for o in outs.iter_mut().skip(1).take(4) {
        o.shape = c.clone();
    }
}

/// `Split`: the axis is input 0, the value input 1, `num_split` equal parts.
pub(crate) fn split_outputs(node: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    let k = eval::attr_i64(node, "num_split", 1).max(1);
    let n = outs.len();
    split_shapes(ins.get(1), ins.first(), outs, |d| Some(vec![if d >= 0 { d / k } else { -1 }; n]));
}

/// `SplitV`: the value is input 0, the sizes input 1, the axis input 2.
pub(crate) fn split_v_outputs(_: &NodeDef, ins: &[Facts], outs: &mut [Facts]) {
    let sizes = ins.get(1).and_then(|f| f.int_values()).filter(|v| !v.contains(&-1));
    split_shapes(ins.first(), ins.get(2), outs, |_| sizes.clone());
}

/// Gives output `i` the shape of `x` with the split dimension (of size `d`) replaced by the
/// `i`-th of `sizes(d)`.
fn split_shapes(
    x: Option<&Facts>,
    axis: Option<&Facts>,
    outs: &mut [Facts],
    sizes: impl FnOnce(i64) -> Option<Vec<i64>>,
) {
    let (Some(s), Some(a)) = (x.and_then(|f| f.shape.clone()), axis.and_then(|f| f.int_values()))
    else {
        return;
    };
    let (Some(&a), true) = (a.first(), !s.is_empty()) else { return };
    let Ok(ax) = eval::norm_axis(a, s.len()) else { return };
    if let Some(sizes) = sizes(s[ax]) {
        for (o, sz) in outs.iter_mut().zip(sizes) {
            let mut s2 = s.clone();
            s2[ax] = sz;
            o.shape = Some(s2);
        }
    }
}

// ---- known elements of output 0 ([`ElementsFn`]) -------------------------------------------

/// The known elements of output 0 when it is an integer vector or scalar (shape tensors),
/// given its inferred shape; `None` when nothing is known.
pub(crate) type ElementsFn = fn(&NodeDef, &[Facts], Option<&[i64]>) -> Option<Vec<Option<i64>>>;

/// `Shape`: the known dimensions.
pub(crate) fn shape_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    Some(dims_partial(ins.first()?.shape.as_ref()?))
}

pub(crate) fn size_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    let s = ins.first()?.shape.as_ref()?;
    Some(vec![s.iter().try_fold(1i64, |a, &d| if d < 0 { None } else { a.checked_mul(d) })])
}

pub(crate) fn rank_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    Some(vec![Some(ins.first()?.rank()? as i64)])
}

/// Input 0's elements (`Identity`, `Snapshot`, `StopGradient`).
pub(crate) fn same_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    input_partial(ins, 0)
}

/// `Cast` to an integer type: input 0's elements.
pub(crate) fn cast_elements(node: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    let to = eval::attr_type(node, "DstT")?;
    if !matches!(to, dt::INT32 | dt::INT64) {
        return None;
    }
    input_partial(ins, 0)
}

pub(crate) fn strided_slice_elements(node: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    let x = input_partial(ins, 0)?;
    let xs = ins.first()?.shape.clone()?;
    if xs.len() != 1 || xs[0] < 0 || usize::try_from(xs[0]).ok()? != x.len() {
        return None;
    }
    let (b, e, st) = (input_ints(ins, 1)?, input_ints(ins, 2)?, input_ints(ins, 3)?);
    let plan = eval::strided_slice_plan(&xs, &b, &e, &st, eval::SliceMasks::of(node)).ok()?;
    if plan.final_shape.len() > 1 {
        return None;
    }
    Some(plan.indices(&xs).ok()?.into_iter().map(|i| x.get(i).copied().flatten()).collect())
}

/// `GatherV2` along axis 0 of a vector.
pub(crate) fn gather_v2_elements(node: &NodeDef, ins: &[Facts], s: Option<&[i64]>) -> Partial {
    if input_ints(ins, 2)?.first().copied()? != 0 {
        return None;
    }
    gather_elements(node, ins, s)
}

/// `Gather` from a vector.
pub(crate) fn gather_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    let x = input_partial(ins, 0)?;
    if ins.first()?.rank()? != 1 || ins.first()?.known_shape()? != [x.len() as i64] {
        return None;
    }
    let idx = input_ints(ins, 1)?;
    if ins.get(1)?.rank()? > 1 {
        return None;
    }
    idx.iter().map(|&i| usize::try_from(i).ok().and_then(|i| x.get(i).copied())).collect()
}

/// `Pack` of scalars along axis 0.
pub(crate) fn pack_elements(node: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    if eval::attr_i64(node, "axis", 0) != 0 {
        return None;
    }
    // Per element: a scalar nobody knows is one unknown element, not an unknown vector.
    let mut out = Vec::new();
    for (i, f) in ins.iter().enumerate() {
        if f.rank()? != 0 {
            return None;
        }
        out.extend(input_partial(ins, i).filter(|v| v.len() == 1).unwrap_or_else(|| vec![None]));
    }
    Some(out)
}

/// `ConcatV2` of vectors.
pub(crate) fn concat_v2_elements(_: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    let n = ins.len().checked_sub(1)?;
    if input_ints(ins, n)?.first().copied()? != 0 && input_ints(ins, n)?.first().copied()? != -1 {
        return None;
    }
    // Per element: a vector of known length whose values nobody knows adds that many
    // unknown elements.
    let mut out = Vec::new();
    for (i, f) in ins.iter().enumerate().take(n) {
        let len = usize::try_from(*f.known_shape().filter(|s| s.len() == 1)?.first()?)
            .ok()
            .filter(|&l| l <= 64)?;
        out.extend(
            input_partial(ins, i).filter(|v| v.len() == len).unwrap_or_else(|| vec![None; len]),
        );
    }
    Some(out)
}

/// Input 0's elements under the new shape (`ExpandDims`, `Reshape`, `Squeeze`).
pub(crate) fn reshaped_elements(_: &NodeDef, ins: &[Facts], shape: Option<&[i64]>) -> Partial {
    let s = shape?;
    let x = input_partial(ins, 0)?;
    (s.len() <= 1 && eval::numel(s) == x.len()).then_some(x)
}

/// `Prod`, `Sum` of a whole vector.
pub(crate) fn reduce_elements(node: &NodeDef, ins: &[Facts], shape: Option<&[i64]>) -> Partial {
    let x = input_partial(ins, 0)?;
    if shape? != [] as [i64; 0] {
        return None;
    }
    let xs = ins.first()?.known_shape()?;
    if xs.len() > 1 || eval::numel(xs) != x.len() {
        return None;
    }
    let known: Option<Vec<i64>> = x.iter().copied().collect();
    Some(vec![known.and_then(|v| {
        if node.op == "Prod" {
            v.iter().try_fold(1i64, |a, &x| a.checked_mul(x))
        } else {
            v.iter().try_fold(0i64, |a, &x| a.checked_add(x))
        }
    })])
}

/// Scalar integer arithmetic (`Mul`, `Add`, `AddV2`, `Sub`, `FloorDiv`, `Maximum`, `Minimum`).
pub(crate) fn arithmetic_elements(node: &NodeDef, ins: &[Facts], _: Option<&[i64]>) -> Partial {
    // Scalars only; both known ones are folded by evaluation anyway.
    let (a, b) = (input_partial(ins, 0)?, input_partial(ins, 1)?);
    if a.len() != 1 || b.len() != 1 {
        return None;
    }
    let (Some(x), Some(y)) = (a[0], b[0]) else {
        return Some(vec![None]);
    };
    let v = match node.op.as_str() {
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

/// What an [`ElementsFn`] returns.
type Partial = Option<Vec<Option<i64>>>;
