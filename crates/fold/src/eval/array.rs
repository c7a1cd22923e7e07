//! Shape and data-movement kernels: they move elements without computing on them, so they
//! work on every fixed-size dtype and on strings, bit for bit.

use tf_proto::tensorflow::NodeDef;
use tf_tensor::{dims_to_string, dt, Data, Tensor};

use super::{
    attr_i64, attr_type, gather_elements, input, int_tensor, ints, invalid, norm_axis, numel,
    scalar_int, strides, unsupported, with_shape, EvalError, R,
};

/// Largest output a kernel builds (1 GiB); the folder's own budgets are far smaller (see
/// [`super::with_output_limit`]).
pub(crate) const MAX_OUTPUT_BYTES: usize = 1 << 30;

/// Checks an output of `shape` against the limit in force before it is allocated. Strings
/// count [`super::STRING_OVERHEAD`] per element here; their contents are checked where they
/// are copied.
pub(crate) fn check_size(shape: &[i64], dtype: i32) -> R<()> {
    let size = tf_tensor::dtype::element_size(dtype).map_or(super::STRING_OVERHEAD, |s| s as u64);
    match tf_tensor::num_elements(shape).and_then(|n| n.checked_mul(size)) {
        Some(b) => super::check_bytes(b),
        None => unsupported(format!("output of shape {} is too large", dims_to_string(shape))),
    }
}

fn out_type(node: &NodeDef) -> i32 {
    attr_type(node, "out_type").unwrap_or(dt::INT32)
}

/// Flat source indices of a strided view: for each coordinate of `shape` in row-major order,
/// `base + Σ coord[i] * stride[i]`. As many indices as output elements, so within the output
/// limit (every element takes at least a byte) unless the shape is absurd.
pub(crate) fn view_indices(shape: &[i64], base: i64, stride: &[i64]) -> R<Vec<usize>> {
    let n = tf_tensor::num_elements(shape)
        .ok_or_else(|| EvalError::Unsupported("shape overflows".into()))?;
    super::check_bytes(n)?;
    let n = n as usize;
    let mut out = Vec::with_capacity(n);
    if n == 0 {
        return Ok(out);
    }
    let rank = shape.len();
    let mut coord = vec![0i64; rank];
    let mut off = base;
    for _ in 0..n {
        out.push(off as usize);
        for d in (0..rank).rev() {
            coord[d] += 1;
            off += stride[d];
            if coord[d] < shape[d] {
                break;
            }
            off -= stride[d] * coord[d];
            coord[d] = 0;
        }
    }
    Ok(out)
}

/// Concatenates tensors of one dtype along `axis` (shapes already checked).
pub(crate) fn concat_parts(parts: &[&Tensor], axis: usize, out_shape: Vec<i64>) -> R<Tensor> {
    let dtype = parts.first().map_or(dt::FLOAT, |t| t.dtype);
    check_size(&out_shape, dtype)?;
    let outer: usize = out_shape[..axis].iter().map(|&d| d as usize).product();
    let chunk = |t: &Tensor| numel(&t.shape[axis..]);
    let data = match &parts[0].data {
        Data::Raw(_) => {
            let size = tf_tensor::dtype::element_size(dtype)
                .ok_or_else(|| EvalError::Unsupported(format!("dtype {dtype}")))?;
            let mut out = Vec::with_capacity(numel(&out_shape) * size);
            for o in 0..outer {
                for t in parts {
                    let (Data::Raw(b), c) = (&t.data, chunk(t) * size) else {
                        return invalid("mixed tensor kinds");
                    };
                    out.extend_from_slice(&b[o * c..(o + 1) * c]);
                }
            }
            Data::Raw(out.into())
        }
        Data::Strings(_) => {
            let mut bytes = 0u64;
            for o in 0..outer {
                for t in parts {
                    let (Data::Strings(s), c) = (&t.data, chunk(t)) else {
                        return invalid("mixed tensor kinds");
                    };
                    bytes = bytes.saturating_add(super::string_bytes(&s[o * c..(o + 1) * c]));
                }
            }
            super::check_bytes(bytes)?;
            let mut out = Vec::with_capacity(numel(&out_shape));
            for o in 0..outer {
                for t in parts {
                    let (Data::Strings(s), c) = (&t.data, chunk(t)) else {
                        return invalid("mixed tensor kinds");
                    };
                    out.extend_from_slice(&s[o * c..(o + 1) * c]);
                }
            }
            Data::Strings(out)
        }
        _ => return unsupported("resource or variant tensors"),
    };
    Ok(Tensor { dtype, shape: out_shape, data })
}

/// Broadcast shape of two shapes (numpy rules), or an error.
pub(crate) fn broadcast_shape(a: &[i64], b: &[i64]) -> R<Vec<i64>> {
    let n = a.len().max(b.len());
    let mut out = vec![0; n];
    for i in 0..n {
        let da = if i + a.len() >= n { a[i + a.len() - n] } else { 1 };
        let db = if i + b.len() >= n { b[i + b.len() - n] } else { 1 };
        out[i] = if da == db || db == 1 {
            da
        } else if da == 1 {
            db
        } else {
            return invalid(format!(
                "incompatible shapes: {} vs. {}",
                dims_to_string(a),
                dims_to_string(b)
            ));
        };
    }
    Ok(out)
}

/// Source indices that broadcast a tensor of shape `from` to shape `to`.
pub(crate) fn broadcast_indices(from: &[i64], to: &[i64]) -> R<Vec<usize>> {
    let st = strides(from);
    let off = to.len() - from.len();
    let stride: Vec<i64> = (0..to.len())
        .map(|i| if i < off || from[i - off] == 1 { 0 } else { st[i - off] as i64 })
        .collect();
    view_indices(to, 0, &stride)
}

// ---- kernels ------------------------------------------------------------------------------

pub(crate) fn identity(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    if node.op == "EnsureShape" {
        // Only foldable when the shape matches; otherwise TF fails at run time.
        let t = input(node, inputs, 0)?;
        if let Some(s) = node.attr_opt_shape("shape") {
            if !s.unknown_rank
                && (s.dim.len() != t.shape.len()
                    || s.dim.iter().zip(&t.shape).any(|(d, &x)| d.size >= 0 && d.size != x))
            {
                return invalid("EnsureShape: shape mismatch");
            }
        }
        return Ok(vec![t.clone()]);
    }
    Ok(vec![input(node, inputs, 0)?.clone()])
}

pub(crate) fn identity_n(_: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    Ok(inputs.to_vec())
}

pub(crate) fn shape(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    Ok(vec![int_tensor(out_type(node), &[t.shape.len() as i64], &t.shape)?])
}

pub(crate) fn shape_n(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    inputs.iter().map(|t| int_tensor(out_type(node), &[t.shape.len() as i64], &t.shape)).collect()
}

pub(crate) fn size(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    Ok(vec![int_tensor(out_type(node), &[], &[numel(&t.shape) as i64])?])
}

pub(crate) fn rank(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    Ok(vec![int_tensor(dt::INT32, &[], &[t.shape.len() as i64])?])
}

/// The output shape of a Reshape of `n` elements to `spec` (with at most one -1).
pub(crate) fn reshape_dims(n: usize, spec: &[i64]) -> R<Vec<i64>> {
    let mut unknown = None;
    let mut known: usize = 1;
    for (i, &d) in spec.iter().enumerate() {
        if d == -1 {
            if unknown.replace(i).is_some() {
                return invalid("Reshape: only one input size may be -1");
            }
        } else if d < 0 {
            return invalid(format!("Reshape: size {i} must be non-negative, not {d}"));
        } else {
            known = known.saturating_mul(d as usize);
        }
    }
    let mut out = spec.to_vec();
    if let Some(i) = unknown {
        if known == 0 || n % known != 0 {
            return invalid("Reshape: cannot infer the missing input size");
        }
        out[i] = (n / known) as i64;
    } else if known != n {
        return invalid(format!(
            "Reshape: input has {n} values, which is not the requested shape {}",
            dims_to_string(spec)
        ));
    }
    Ok(out)
}

pub(crate) fn reshape(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let spec = ints(input(node, inputs, 1)?)?;
    let dims = reshape_dims(numel(&t.shape), &spec)?;
    Ok(vec![with_shape(t, dims)])
}

pub(crate) fn expand_dims(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let dim = scalar_int(input(node, inputs, 1)?)?;
    let r = t.shape.len() as i64;
    if dim < -r - 1 || dim > r {
        return invalid(format!("ExpandDims: dim {dim} out of range for rank {r}"));
    }
    let at = if dim < 0 { dim + r + 1 } else { dim } as usize;
    let mut s = t.shape.clone();
    s.insert(at, 1);
    Ok(vec![with_shape(t, s)])
}

pub(crate) fn squeeze(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let axes = node.attr_opt_list_i64("squeeze_dims").unwrap_or(&[]);
    let r = t.shape.len();
    let mut drop = vec![false; r];
    if axes.is_empty() {
        for (i, &d) in t.shape.iter().enumerate() {
            drop[i] = d == 1;
        }
    } else {
        for &a in axes {
            let a = norm_axis(a, r)?;
            if t.shape[a] != 1 {
                return invalid(format!("Squeeze: dimension {a} has size {}", t.shape[a]));
            }
            drop[a] = true;
        }
    }
    let s = t.shape.iter().zip(&drop).filter(|(_, d)| !**d).map(|(s, _)| *s).collect();
    Ok(vec![with_shape(t, s)])
}

/// Validates a permutation of `0..rank`.
pub(crate) fn permutation(perm: &[i64], rank: usize) -> R<Vec<usize>> {
    if perm.len() != rank {
        return invalid(format!("transpose expects a permutation of {rank} axes"));
    }
    let mut seen = vec![false; rank];
    let mut out = Vec::with_capacity(rank);
    for &p in perm {
        let a = norm_axis(p, rank)?;
        if std::mem::replace(&mut seen[a], true) {
            return invalid("transpose: axis repeated in permutation");
        }
        out.push(a);
    }
    Ok(out)
}

pub(crate) fn transpose(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let perm = permutation(&ints(input(node, inputs, 1)?)?, t.shape.len())?;
    if perm.iter().enumerate().all(|(i, &p)| i == p) {
        return Ok(vec![t.clone()]);
    }
    let st = strides(&t.shape);
    let shape: Vec<i64> = perm.iter().map(|&p| t.shape[p]).collect();
    let stride: Vec<i64> = perm.iter().map(|&p| st[p] as i64).collect();
    Ok(vec![gather_elements(t, &view_indices(&shape, 0, &stride)?, &shape)?])
}

fn concat(node: &NodeDef, values: &[Tensor], axis: &Tensor) -> R<Vec<Tensor>> {
    let axis = scalar_int(axis)?;
    let first = values.first().ok_or_else(|| EvalError::Invalid("Concat of nothing".into()))?;
    let r = first.shape.len();
    if r == 0 {
        return invalid(format!("{}: cannot concatenate scalars", node.op));
    }
    let ax = norm_axis(axis, r)?;
    let mut out_shape = first.shape.clone();
    out_shape[ax] = 0;
    for v in values {
        if v.dtype != first.dtype || v.shape.len() != r {
            return invalid(format!("{}: inputs differ in dtype or rank", node.op));
        }
        for i in 0..r {
            if i != ax && v.shape[i] != first.shape[i] {
                return invalid(format!(
                    "{}: dimension {i} differs: {} vs. {}",
                    node.op,
                    dims_to_string(&first.shape),
                    dims_to_string(&v.shape)
                ));
            }
        }
        out_shape[ax] += v.shape[ax];
    }
    let parts: Vec<&Tensor> = values.iter().collect();
    Ok(vec![concat_parts(&parts, ax, out_shape)?])
}

pub(crate) fn concat_v2(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let n = inputs.len().checked_sub(1).ok_or_else(|| EvalError::Invalid("ConcatV2".into()))?;
    concat(node, &inputs[..n], &inputs[n])
}

pub(crate) fn concat_v1(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let axis = input(node, inputs, 0)?;
    concat(node, &inputs[1..], axis)
}

pub(crate) fn pack(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let first = input(node, inputs, 0)?;
    let r = first.shape.len() as i64;
    let axis = attr_i64(node, "axis", 0);
    if axis < -r - 1 || axis > r {
        return invalid(format!("Pack: axis {axis} out of range for rank {}", r + 1));
    }
    let ax = if axis < 0 { axis + r + 1 } else { axis } as usize;
    let mut expanded = Vec::with_capacity(inputs.len());
    for t in inputs {
        if t.shape != first.shape || t.dtype != first.dtype {
            return invalid("Pack: inputs differ in shape or dtype");
        }
        let mut s = t.shape.clone();
        s.insert(ax, 1);
        expanded.push(with_shape(t, s));
    }
    let mut out_shape = first.shape.clone();
    out_shape.insert(ax, inputs.len() as i64);
    let parts: Vec<&Tensor> = expanded.iter().collect();
    Ok(vec![concat_parts(&parts, ax, out_shape)?])
}

pub(crate) fn unpack(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let ax = norm_axis(attr_i64(node, "axis", 0), t.shape.len())?;
    let num = t.shape[ax];
    if let Some(n) = node.attr_opt_i64("num") {
        if n != num {
            return invalid(format!("Unpack: num {n} but dimension has size {num}"));
        }
    }
    let st = strides(&t.shape);
    let mut shape = t.shape.clone();
    shape.remove(ax);
    let mut stride: Vec<i64> = st.iter().map(|&s| s as i64).collect();
    stride.remove(ax);
    (0..num)
        .map(|k| gather_elements(t, &view_indices(&shape, k * st[ax] as i64, &stride)?, &shape))
        .collect()
}

/// A tensor of `shape` with every element equal to element 0 of `v`.
pub(crate) fn splat(v: &Tensor, shape: &[i64]) -> R<Tensor> {
    check_size(shape, v.dtype)?;
    let n = numel(shape);
    let data = match &v.data {
        Data::Raw(b) => {
            let size = tf_tensor::dtype::element_size(v.dtype).unwrap_or(1);
            if b.len() < size {
                return invalid("empty fill value");
            }
            Data::Raw(b[..size].repeat(n).into())
        }
        Data::Strings(s) => {
            let first = s.first().ok_or(EvalError::Invalid("empty".into()))?;
            super::check_bytes(
                (first.len() as u64 + super::STRING_OVERHEAD).saturating_mul(n as u64),
            )?;
            Data::Strings(vec![first.clone(); n])
        }
        _ => return unsupported("resource or variant tensors"),
    };
    Ok(Tensor { dtype: v.dtype, shape: shape.to_vec(), data })
}

pub(crate) fn fill(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let dims = ints(input(node, inputs, 0)?)?;
    let v = input(node, inputs, 1)?;
    if !v.shape.is_empty() {
        return invalid("Fill: value must be a scalar");
    }
    if dims.iter().any(|&d| d < 0) {
        return invalid("Fill: dims must be non-negative");
    }
    Ok(vec![splat(v, &dims)?])
}

fn scalar_of(dtype: i32, one: bool) -> R<Tensor> {
    use super::Vals;
    let v = match Vals::class(dtype) {
        Some(super::vals::Class::F) => Vals::F(vec![one as u8 as f64]),
        Some(super::vals::Class::I) => Vals::I(vec![one as i128]),
        Some(super::vals::Class::B) => Vals::B(vec![one]),
        None if dtype == dt::STRING && !one => {
            return Tensor::from_strings(&[], vec![Vec::new()])
                .map_err(|e| EvalError::Invalid(e.to_string()))
        }
        None => return unsupported(format!("dtype {}", tf_tensor::dtype::short_name(dtype))),
    };
    v.into_tensor(dtype, &[])
}

pub(crate) fn zeros_like(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    Ok(vec![splat(&scalar_of(t.dtype, false)?, &t.shape)?])
}

pub(crate) fn ones_like(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    Ok(vec![splat(&scalar_of(t.dtype, true)?, &t.shape)?])
}

/// A strided slice resolved against an input shape (TensorFlow's ValidateStridedSliceOp).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct SlicePlan {
    /// Start per input dimension.
    pub begin: Vec<i64>,
    /// Step per input dimension.
    pub strides: Vec<i64>,
    /// Elements taken per input dimension.
    pub processing: Vec<i64>,
    /// The output shape.
    pub final_shape: Vec<i64>,
}

/// Masks of a StridedSlice node.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct SliceMasks {
    pub begin: i64,
    pub end: i64,
    pub ellipsis: i64,
    pub new_axis: i64,
    pub shrink: i64,
}

impl SliceMasks {
    pub(crate) fn of(node: &NodeDef) -> SliceMasks {
        SliceMasks {
            begin: attr_i64(node, "begin_mask", 0),
            end: attr_i64(node, "end_mask", 0),
            ellipsis: attr_i64(node, "ellipsis_mask", 0),
            new_axis: attr_i64(node, "new_axis_mask", 0),
            shrink: attr_i64(node, "shrink_axis_mask", 0),
        }
    }
}

/// Resolves a strided slice of a tensor of `shape`. A dimension of -1 (unknown, for shape
/// inference) gives -1 in `processing` and `final_shape` (1 when shrunk); such a plan has no
/// `indices`.
pub(crate) fn strided_slice_plan(
    shape: &[i64],
    begin: &[i64],
    end: &[i64],
    stride: &[i64],
    m: SliceMasks,
) -> R<SlicePlan> {
    const NEW_AXIS: i64 = -1;
    const SHRINK: i64 = -2;
    let sparse_n = begin.len();
    if end.len() != sparse_n || stride.len() != sparse_n || sparse_n > 32 {
        return invalid("StridedSlice: begin, end and strides must have the same length");
    }
    if m.ellipsis != 0 && (m.ellipsis & (m.ellipsis - 1)) != 0 {
        return invalid("StridedSlice: multiple ellipses");
    }
    let bit = |mask: i64, i: usize| i < 63 && (mask >> i) & 1 == 1;
    let mut ellipsis_seen = false;
    let mut add_after_ellipsis = 0i64;
    for i in 0..sparse_n {
        if ellipsis_seen && bit(m.new_axis, i) {
            add_after_ellipsis += 1;
        }
        if bit(m.ellipsis, i) {
            ellipsis_seen = true;
        }
    }
    let mut ellipsis = m.ellipsis;
    let mut sparse_dims = sparse_n;
    if !ellipsis_seen {
        ellipsis |= 1 << sparse_n;
        sparse_dims += 1;
    }
    let dims = shape.len();
    let mut d_begin = vec![0i64; dims];
    let mut d_end = vec![0i64; dims];
    let mut d_stride = vec![1i64; dims];
    let (mut bmask, mut emask, mut smask) = (0i64, 0i64, 0i64);
    let mut gather: Vec<i64> = Vec::new();
    let mut full = 0usize;
    for i in 0..sparse_dims {
        if bit(ellipsis, i) {
            let next = ((dims as i64) - (sparse_dims as i64 - i as i64) + 1 + add_after_ellipsis)
                .clamp(0, dims as i64) as usize;
            while full < next {
                d_begin[full] = 0;
                d_end[full] = 0;
                d_stride[full] = 1;
                bmask |= 1 << full;
                emask |= 1 << full;
                gather.push(full as i64);
                full += 1;
            }
        } else if bit(m.new_axis, i) {
            gather.push(NEW_AXIS);
        } else {
            if full == dims {
                return invalid(format!(
                    "StridedSlice: index out of range using input dim {full}; input has only {dims} dims"
                ));
            }
            d_begin[full] = begin[i];
            d_end[full] = end[i];
            d_stride[full] = stride[i];
            if bit(m.begin, i) {
                bmask |= 1 << full;
            }
            if bit(m.end, i) {
                emask |= 1 << full;
            }
            if bit(m.shrink, i) {
                gather.push(SHRINK);
                smask |= 1 << full;
            } else {
                gather.push(full as i64);
            }
            full += 1;
        }
    }
    let mut processing = Vec::with_capacity(dims);
    for i in 0..dims {
        let (b, e, s, dim) = (&mut d_begin[i], &mut d_end[i], d_stride[i], shape[i]);
        if s == 0 {
            return invalid(format!("StridedSlice: strides[{i}] must be non-zero"));
        }
        let shrink = bit(smask, i);
        if dim < 0 {
            // An unknown dimension (shape inference only): a shrunk index takes one element,
            // any range an unknown number of them, as in TensorFlow's shape function. Never a
            // number computed from the -1.
            if shrink && s <= 0 {
                return invalid("StridedSlice: only stride 1 allowed on non-range indexing");
            }
            processing.push(if shrink { 1 } else { -1 });
            continue;
        }
        let masks = [bit(bmask, i), bit(emask, i)];
        let valid = [if s > 0 { 0 } else { -1 }, if s > 0 { dim } else { dim - 1 }];
        let canonical = |x: i64, c: usize| {
            if masks[c] {
                if s > 0 {
                    valid[c]
                } else {
                    valid[(c + 1) & 1]
                }
            } else {
                let fwd = if x < 0 { dim + x } else { x };
                fwd.clamp(valid[0], valid[1].max(valid[0]))
            }
        };
        if shrink && s <= 0 {
            return invalid("StridedSlice: only stride 1 allowed on non-range indexing");
        }
        if shrink {
            let fwd = if *b < 0 { dim + *b } else { *b };
            if fwd < 0 || fwd >= dim {
                return invalid(format!(
                    "StridedSlice: slice index {b} of dimension {i} out of bounds"
                ));
            }
            *b = fwd;
            *e = fwd + 1;
        } else {
            *b = canonical(*b, 0);
            *e = canonical(*e, 1);
        }
        let len = *e - *b;
        let size = if len == 0 || ((len < 0) != (s < 0)) {
            0
        } else {
            len / s + if len % s != 0 { 1 } else { 0 }
        };
        processing.push(size);
    }
    let mut final_shape = Vec::new();
    for g in gather {
        if g >= 0 {
            final_shape.push(processing[g as usize]);
        } else if g == NEW_AXIS {
            final_shape.push(1);
        }
    }
    Ok(SlicePlan { begin: d_begin, strides: d_stride, processing, final_shape })
}

impl SlicePlan {
    /// Flat indices into the input of every output element.
    pub(crate) fn indices(&self, input_shape: &[i64]) -> R<Vec<usize>> {
        if input_shape.iter().chain(&self.processing).any(|&d| d < 0) {
            return invalid("StridedSlice: the shape is not fully known");
        }
        let st = strides(input_shape);
        let base: i64 = self.begin.iter().zip(&st).map(|(b, s)| b * *s as i64).sum();
        // A dimension of one element never steps, whatever its stride (which may be huge);
        // otherwise |stride| < dim and the product stays within the element count.
        let stride: Vec<i64> = self
            .strides
            .iter()
            .zip(&st)
            .zip(&self.processing)
            .map(|((k, s), &n)| if n <= 1 { 0 } else { k * *s as i64 })
            .collect();
        view_indices(&self.processing, base, &stride)
    }
}

pub(crate) fn strided_slice(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let begin = ints(input(node, inputs, 1)?)?;
    let end = ints(input(node, inputs, 2)?)?;
    let stride = ints(input(node, inputs, 3)?)?;
    let plan = strided_slice_plan(&t.shape, &begin, &end, &stride, SliceMasks::of(node))?;
    Ok(vec![gather_elements(t, &plan.indices(&t.shape)?, &plan.final_shape)?])
}

pub(crate) fn slice(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let begin = ints(input(node, inputs, 1)?)?;
    let size = ints(input(node, inputs, 2)?)?;
    let r = t.shape.len();
    if begin.len() != r || size.len() != r {
        return invalid("Slice: begin and size must have one entry per dimension");
    }
    let mut out = Vec::with_capacity(r);
    for i in 0..r {
        let s = if size[i] == -1 { t.shape[i].checked_sub(begin[i]) } else { Some(size[i]) };
        let end = s.and_then(|s| begin[i].checked_add(s));
        let (Some(s), Some(end)) = (s, end) else {
            return invalid(format!("Slice: dimension {i} out of bounds"));
        };
        if begin[i] < 0 || s < 0 || end > t.shape[i] {
            return invalid(format!("Slice: dimension {i} out of bounds"));
        }
        out.push(s);
    }
    let st = strides(&t.shape);
    let base: i64 = begin.iter().zip(&st).map(|(b, s)| b * *s as i64).sum();
    let stride: Vec<i64> = st.iter().map(|&s| s as i64).collect();
    Ok(vec![gather_elements(t, &view_indices(&out, base, &stride)?, &out)?])
}

fn gather(
    node: &NodeDef,
    params: &Tensor,
    indices: &Tensor,
    axis: i64,
    batch_dims: i64,
) -> R<Vec<Tensor>> {
    if batch_dims != 0 {
        return unsupported("GatherV2 with batch_dims != 0");
    }
    let r = params.shape.len();
    if r == 0 {
        return invalid(format!("{}: params must be at least 1-D", node.op));
    }
    let ax = norm_axis(axis, r)?;
    let idx = ints(indices)?;
    let limit = params.shape[ax];
    let outer = numel(&params.shape[..ax]);
    let inner = numel(&params.shape[ax + 1..]);
    let mut shape: Vec<i64> = params.shape[..ax].to_vec();
    shape.extend_from_slice(&indices.shape);
    shape.extend_from_slice(&params.shape[ax + 1..]);
    check_size(&shape, params.dtype)?;
    let mut flat = Vec::with_capacity(numel(&shape));
    for o in 0..outer {
        for &i in &idx {
            if i < 0 || i >= limit {
                return invalid(format!("{}: index {i} is not in [0, {limit})", node.op));
            }
            let start = (o * limit as usize + i as usize) * inner;
            flat.extend(start..start + inner);
        }
    }
    Ok(vec![gather_elements(params, &flat, &shape)?])
}

pub(crate) fn gather_v2(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let axis = scalar_int(input(node, inputs, 2)?)?;
    gather(
        node,
        input(node, inputs, 0)?,
        input(node, inputs, 1)?,
        axis,
        attr_i64(node, "batch_dims", 0),
    )
}

pub(crate) fn gather_v1(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    gather(node, input(node, inputs, 0)?, input(node, inputs, 1)?, 0, 0)
}

pub(crate) fn tile(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let m = ints(input(node, inputs, 1)?)?;
    if m.len() != t.shape.len() || m.iter().any(|&x| x < 0) {
        return invalid("Tile: multiples must be non-negative, one per dimension");
    }
    let shape: Option<Vec<i64>> = t.shape.iter().zip(&m).map(|(d, k)| d.checked_mul(*k)).collect();
    let Some(shape) = shape else { return unsupported("Tile: output shape overflows") };
    check_size(&shape, t.dtype)?;
    let st = strides(&t.shape);
    let n = numel(&shape);
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0i64; shape.len()];
    for _ in 0..n {
        idx.push(coord.iter().enumerate().map(|(i, c)| (c % t.shape[i]) as usize * st[i]).sum());
        for d in (0..shape.len()).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    Ok(vec![gather_elements(t, &idx, &shape)?])
}

/// `t` with one element appended (flattened), so that index `t.len()` picks `extra`.
fn append_element(t: &Tensor, extra: &Tensor) -> R<Tensor> {
    let flat = with_shape(t, vec![numel(&t.shape) as i64]);
    let one = with_shape(extra, vec![1]);
    concat_parts(&[&flat, &one], 0, vec![numel(&t.shape) as i64 + 1])
}

pub(crate) fn pad(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let p = ints(input(node, inputs, 1)?)?;
    let r = t.shape.len();
    if p.len() != 2 * r {
        return invalid("Pad: paddings must be [rank, 2]");
    }
    let value = match inputs.get(2) {
        Some(v) if numel(&v.shape) == 1 && v.dtype == t.dtype => v.clone(),
        Some(_) => return invalid("PadV2: constant_values must be a scalar of the input's dtype"),
        None => scalar_of(t.dtype, false)?,
    };
    if p.iter().any(|&x| x < 0) {
        return invalid("Pad: paddings must be non-negative");
    }
    let shape: Vec<i64> = (0..r).map(|i| t.shape[i] + p[2 * i] + p[2 * i + 1]).collect();
    check_size(&shape, t.dtype)?;
    let ext = append_element(t, &value)?;
    let fill = numel(&t.shape);
    let st = strides(&t.shape);
    let n = numel(&shape);
    let mut idx = Vec::with_capacity(n);
    let mut coord = vec![0i64; r];
    for _ in 0..n {
        let mut off = 0usize;
        let mut inside = true;
        for i in 0..r {
            let c = coord[i] - p[2 * i];
            if c < 0 || c >= t.shape[i] {
                inside = false;
                break;
            }
            off += c as usize * st[i];
        }
        idx.push(if inside { off } else { fill });
        for d in (0..r).rev() {
            coord[d] += 1;
            if coord[d] < shape[d] {
                break;
            }
            coord[d] = 0;
        }
    }
    Ok(vec![gather_elements(&ext, &idx, &shape)?])
}

pub(crate) fn broadcast_to(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let to = ints(input(node, inputs, 1)?)?;
    if to.len() < t.shape.len() || broadcast_shape(&t.shape, &to)? != to {
        return invalid(format!(
            "BroadcastTo: cannot broadcast {} to {}",
            dims_to_string(&t.shape),
            dims_to_string(&to)
        ));
    }
    check_size(&to, t.dtype)?;
    Ok(vec![gather_elements(t, &broadcast_indices(&t.shape, &to)?, &to)?])
}

pub(crate) fn broadcast_args(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let a = input(node, inputs, 0)?;
    let s = broadcast_shape(&ints(a)?, &ints(input(node, inputs, 1)?)?)?;
    Ok(vec![int_tensor(a.dtype, &[s.len() as i64], &s)?])
}

/// Elements picked from `t` where `c` is true, else from `e`; all three already broadcast to
/// `shape` through the index vectors.
fn pick(
    c: &[bool],
    it: &[usize],
    ie: &[usize],
    t: &Tensor,
    e: &Tensor,
    shape: &[i64],
) -> R<Tensor> {
    let nt = numel(&t.shape);
    let ft = with_shape(t, vec![nt as i64]);
    let fe = with_shape(e, vec![numel(&e.shape) as i64]);
    let both = concat_parts(&[&ft, &fe], 0, vec![(nt + numel(&e.shape)) as i64])?;
    let idx: Vec<usize> = (0..c.len()).map(|k| if c[k] { it[k] } else { nt + ie[k] }).collect();
    gather_elements(&both, &idx, shape)
}

fn bools(t: &Tensor) -> R<Vec<bool>> {
    if t.dtype != dt::BOOL {
        return invalid("condition must be bool");
    }
    Ok(t.raw().map(|b| b.iter().map(|&x| x != 0).collect()).unwrap_or_default())
}

pub(crate) fn select(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let c = input(node, inputs, 0)?;
    let (t, e) = (input(node, inputs, 1)?, input(node, inputs, 2)?);
    if t.shape != e.shape || t.dtype != e.dtype {
        return invalid("Select: then and else must have the same shape and dtype");
    }
    let cv = bools(c)?;
    let n = numel(&t.shape);
    let all: Vec<usize> = (0..n).collect();
    let cond: Vec<bool> = if c.shape == t.shape {
        cv
    } else if c.shape.is_empty() {
        vec![cv[0]; n]
    } else if c.shape.len() == 1 && !t.shape.is_empty() && c.shape[0] == t.shape[0] {
        let inner = numel(&t.shape[1..]);
        (0..n).map(|k| cv[k / inner.max(1)]).collect()
    } else {
        return invalid("Select: condition shape does not match");
    };
    Ok(vec![pick(&cond, &all, &all, t, e, &t.shape)?])
}

pub(crate) fn select_v2(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let c = input(node, inputs, 0)?;
    let (t, e) = (input(node, inputs, 1)?, input(node, inputs, 2)?);
    if t.dtype != e.dtype {
        return invalid("SelectV2: then and else differ in dtype");
    }
    let shape = broadcast_shape(&broadcast_shape(&c.shape, &t.shape)?, &e.shape)?;
    check_size(&shape, t.dtype)?;
    let cv = bools(c)?;
    let cond: Vec<bool> = broadcast_indices(&c.shape, &shape)?.iter().map(|&i| cv[i]).collect();
    let it = broadcast_indices(&t.shape, &shape)?;
    let ie = broadcast_indices(&e.shape, &shape)?;
    Ok(vec![pick(&cond, &it, &ie, t, e, &shape)?])
}

fn split_sizes(t: &Tensor, ax: usize, sizes: &[i64]) -> R<Vec<Tensor>> {
    let st = strides(&t.shape);
    let stride: Vec<i64> = st.iter().map(|&s| s as i64).collect();
    let mut start = 0i64;
    let mut out = Vec::with_capacity(sizes.len());
    for &s in sizes {
        let mut shape = t.shape.clone();
        shape[ax] = s;
        out.push(gather_elements(t, &view_indices(&shape, start * stride[ax], &stride)?, &shape)?);
        start += s;
    }
    Ok(out)
}

pub(crate) fn split(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let axis = scalar_int(input(node, inputs, 0)?)?;
    let t = input(node, inputs, 1)?;
    let n = attr_i64(node, "num_split", 1);
    let ax = norm_axis(axis, t.shape.len())?;
    if n <= 0 || t.shape[ax] % n != 0 {
        return invalid(format!("Split: dimension {ax} not divisible into {n}"));
    }
    if n as u64 > tf_ops::signature::MAX_LIST_LEN as u64 {
        return invalid(format!("Split: num_split {n} is over the limit of outputs"));
    }
    split_sizes(t, ax, &vec![t.shape[ax] / n; n as usize])
}

pub(crate) fn split_v(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let mut sizes = ints(input(node, inputs, 1)?)?;
    let ax = norm_axis(scalar_int(input(node, inputs, 2)?)?, t.shape.len())?;
    let unknown: Vec<usize> = (0..sizes.len()).filter(|&i| sizes[i] == -1).collect();
    if unknown.len() > 1 || sizes.iter().any(|&s| s < -1) {
        return invalid("SplitV: at most one size may be -1");
    }
    let sum = |v: &[i64]| v.iter().filter(|&&s| s != -1).try_fold(0i64, |a, &s| a.checked_add(s));
    let Some(known) = sum(&sizes) else { return invalid("SplitV: sizes overflow") };
    if let Some(&i) = unknown.first() {
        sizes[i] = t.shape[ax] - known;
    }
    if sum(&sizes) != Some(t.shape[ax]) || sizes.iter().any(|&s| s < 0) {
        return invalid("SplitV: sizes must add up to the dimension");
    }
    split_sizes(t, ax, &sizes)
}

pub(crate) fn reverse_v2(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let t = input(node, inputs, 0)?;
    let r = t.shape.len();
    let mut rev = vec![false; r];
    for a in ints(input(node, inputs, 1)?)? {
        let a = norm_axis(a, r)?;
        if std::mem::replace(&mut rev[a], true) {
            return invalid("ReverseV2: axis repeated");
        }
    }
    let st = strides(&t.shape);
    let mut base = 0i64;
    let mut stride = Vec::with_capacity(r);
    for i in 0..r {
        if rev[i] && t.shape[i] > 0 {
            base += (t.shape[i] - 1) * st[i] as i64;
            stride.push(-(st[i] as i64));
        } else {
            stride.push(st[i] as i64);
        }
    }
    Ok(vec![gather_elements(t, &view_indices(&t.shape, base, &stride)?, &t.shape)?])
}
