//! The native evaluator: TensorFlow op kernels over decoded [`Tensor`]s, looked up by op name
//! in the op table (`crate::ops`).
//!
//! A kernel has the signature [`Kernel`]: the node (for its attributes) and its data inputs in
//! order; it returns one tensor per output. It never panics: inputs TensorFlow would reject at
//! run time give [`EvalError::Invalid`], and an op, dtype or attribute combination this module
//! does not implement gives [`EvalError::Unsupported`]. Neither is fatal to the folder: the node
//! simply stays as it is.
//!
//! Values are computed the way TensorFlow's CPU kernels compute them: integers wrap, integer
//! division truncates (`Div`) or floors (`FloorDiv`), `Round` rounds half to even, `Range`
//! accumulates its step in the output type. Floating-point values are computed in `f64` and
//! rounded once to the output type, so single arithmetic operations (`+ - * /`, `Sqrt`) are
//! exactly TensorFlow's and transcendental ones and reductions are within a few ulp of them.
//! Data movement ops (reshape, transpose, slices, gathers, concatenation, padding, tiling,
//! broadcasting) work on any fixed-size dtype and on strings, bit for bit.

pub(crate) mod array;
pub(crate) mod math;
mod vals;

use tf_proto::tensorflow::NodeDef;
use tf_tensor::{dt, Data, Tensor};

pub(crate) use array::{permutation as array_permutation, strided_slice_plan, SliceMasks};
pub(crate) use math::{reduced_axes, reduced_shape};
pub(crate) use vals::Vals;

/// Why a node could not be evaluated. Never fatal: the node is left unfolded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum EvalError {
    /// The op, or this dtype or attribute combination of it, has no native kernel.
    #[error("not supported by the native evaluator: {0}")]
    Unsupported(String),
    /// TensorFlow would reject these inputs at run time (bad shapes, out-of-range indices,
    /// integer division by zero); the node is left for TensorFlow to report.
    #[error("{0}")]
    Invalid(String),
    /// The output would be larger than the limit in force (see [`with_output_limit`]); found
    /// before anything that large is allocated.
    #[error("output of {bytes} bytes is over the {limit}-byte limit")]
    TooLarge {
        /// Bytes the output needs (strings: their bytes plus 24 per element).
        bytes: u64,
        /// The limit.
        limit: u64,
    },
}

/// Bytes a string element costs in memory besides its content (a `Vec<u8>`).
pub const STRING_OVERHEAD: u64 = 24;

thread_local! {
    static OUTPUT_LIMIT: std::cell::Cell<u64> = const { std::cell::Cell::new(u64::MAX) };
}

/// Runs `f` with kernels limited to outputs of at most `bytes` bytes (checked from the output
/// shape, and for strings from their lengths, before allocating): a kernel over the limit
/// returns [`EvalError::TooLarge`]. Kernels are always limited to 1 GiB.
pub fn with_output_limit<T>(bytes: u64, f: impl FnOnce() -> T) -> T {
    let old = OUTPUT_LIMIT.with(|l| l.replace(bytes));
    let out = f();
    OUTPUT_LIMIT.with(|l| l.set(old));
    out
}

/// The output limit in force: the smaller of [`with_output_limit`]'s and 1 GiB.
pub(crate) fn output_limit() -> u64 {
    OUTPUT_LIMIT.with(|l| l.get()).min(array::MAX_OUTPUT_BYTES as u64)
}

/// Checks `bytes` of output against [`output_limit`].
pub(crate) fn check_bytes(bytes: u64) -> R<()> {
    let limit = output_limit();
    if bytes > limit {
        return Err(EvalError::TooLarge { bytes, limit });
    }
    Ok(())
}

/// Memory a list of strings takes (contents plus [`STRING_OVERHEAD`] each).
pub(crate) fn string_bytes<'a>(s: impl IntoIterator<Item = &'a Vec<u8>>) -> u64 {
    s.into_iter().map(|x| x.len() as u64 + STRING_OVERHEAD).sum()
}

/// A kernel: the node (attributes) and its data inputs; one tensor per output.
pub type Kernel = fn(&NodeDef, &[Tensor]) -> Result<Vec<Tensor>, EvalError>;

pub(crate) type R<T> = Result<T, EvalError>;

pub(crate) fn unsupported<T>(what: impl Into<String>) -> R<T> {
    Err(EvalError::Unsupported(what.into()))
}

pub(crate) fn invalid<T>(what: impl Into<String>) -> R<T> {
    Err(EvalError::Invalid(what.into()))
}

/// The kernel for `op`, if the native evaluator has one (from the op table, `crate::ops`).
pub fn kernel(op: &str) -> Option<Kernel> {
    crate::ops::get(op).and_then(|e| e.kernel)
}

/// Every op the native evaluator implements, sorted.
pub fn supported_ops() -> Vec<&'static str> {
    crate::ops::all().iter().filter(|e| e.kernel.is_some()).map(|e| e.name).collect()
}

/// Evaluates `node` on constant inputs.
pub fn evaluate(node: &NodeDef, inputs: &[Tensor]) -> Result<Vec<Tensor>, EvalError> {
    let k = kernel(&node.op).ok_or_else(|| EvalError::Unsupported(node.op.clone()))?;
    k(node, inputs)
}

// ---- helpers shared by the kernels --------------------------------------------------------

/// The i-th input, or an error naming the node.
pub(crate) fn input<'a>(node: &NodeDef, inputs: &'a [Tensor], i: usize) -> R<&'a Tensor> {
    inputs.get(i).ok_or_else(|| {
        EvalError::Invalid(format!("node '{}' ({}) has no input {i}", node.name, node.op))
    })
}

/// An integer attribute with a default.
pub(crate) fn attr_i64(node: &NodeDef, name: &str, default: i64) -> i64 {
    node.attr_opt_i64(name).unwrap_or(default)
}

/// A bool attribute with a default.
pub(crate) fn attr_bool(node: &NodeDef, name: &str, default: bool) -> bool {
    node.attr_opt_bool(name).unwrap_or(default)
}

/// A type attribute as a DataType code.
pub(crate) fn attr_type(node: &NodeDef, name: &str) -> Option<i32> {
    node.attr.get(name).and_then(|v| v.as_type_i32())
}

/// The elements of an integer tensor (int32, int64, also int8/16 and unsigned) as i64.
pub(crate) fn ints(t: &Tensor) -> R<Vec<i64>> {
    match Vals::of(t)? {
        Vals::I(v) => Ok(v.into_iter().map(|x| x as i64).collect()),
        _ => invalid(format!(
            "expected an integer tensor, got {}",
            tf_tensor::dtype::short_name(t.dtype)
        )),
    }
}

/// A scalar (or one-element) integer tensor.
pub(crate) fn scalar_int(t: &Tensor) -> R<i64> {
    let v = ints(t)?;
    if v.len() != 1 {
        return invalid(format!(
            "expected a scalar, got shape {}",
            tf_tensor::dims_to_string(&t.shape)
        ));
    }
    Ok(v[0])
}

/// Builds an int32 or int64 (by `dtype`) tensor from i64 values; int32 overflow is an error.
pub(crate) fn int_tensor(dtype: i32, shape: &[i64], v: &[i64]) -> R<Tensor> {
    let t =
        match dtype {
            dt::INT64 => Tensor::from_values(dt::INT64, shape, v),
            dt::INT32 => {
                let mut out = Vec::with_capacity(v.len());
                for &x in v {
                    out.push(i32::try_from(x).map_err(|_| {
                        EvalError::Invalid(format!("value {x} does not fit in int32"))
                    })?);
                }
                Tensor::from_values(dt::INT32, shape, &out)
            }
            other => {
                return unsupported(format!("index dtype {}", tf_tensor::dtype::short_name(other)))
            }
        };
    t.map_err(|e| EvalError::Invalid(e.to_string()))
}

/// Normalizes an axis in `[-rank, rank)`.
pub(crate) fn norm_axis(axis: i64, rank: usize) -> R<usize> {
    let r = rank as i64;
    if axis < -r || axis >= r {
        return invalid(format!("axis {axis} out of range for rank {rank}"));
    }
    Ok(if axis < 0 { (axis + r) as usize } else { axis as usize })
}

/// Number of elements of a shape (dims are known to be non-negative).
pub(crate) fn numel(shape: &[i64]) -> usize {
    shape.iter().map(|&d| d.max(0) as usize).product()
}

/// Row-major strides of a shape, in elements.
pub(crate) fn strides(shape: &[i64]) -> Vec<usize> {
    let mut s = vec![1usize; shape.len()];
    for i in (0..shape.len().saturating_sub(1)).rev() {
        s[i] = s[i + 1] * shape[i + 1].max(0) as usize;
    }
    s
}

/// Picks elements of `t` by flat index into a new tensor of `shape` (any dtype but
/// resource/variant).
pub(crate) fn gather_elements(t: &Tensor, idx: &[usize], shape: &[i64]) -> R<Tensor> {
    let data = match &t.data {
        Data::Raw(b) => {
            let size = tf_tensor::dtype::element_size(t.dtype)
                .ok_or_else(|| EvalError::Unsupported(format!("dtype {}", t.dtype)))?;
            let mut out = Vec::with_capacity(idx.len() * size);
            for &i in idx {
                out.extend_from_slice(&b[i * size..(i + 1) * size]);
            }
            Data::Raw(out.into())
        }
        Data::Strings(s) => {
            check_bytes(string_bytes(idx.iter().map(|&i| &s[i])))?;
            Data::Strings(idx.iter().map(|&i| s[i].clone()).collect())
        }
        _ => return unsupported("resource or variant tensors"),
    };
    Ok(Tensor { dtype: t.dtype, shape: shape.to_vec(), data })
}

/// A tensor that keeps the data of `t` under a new shape (no copy).
pub(crate) fn with_shape(t: &Tensor, shape: Vec<i64>) -> Tensor {
    Tensor { dtype: t.dtype, shape, data: t.data.clone() }
}

#[cfg(test)]
mod tests;
