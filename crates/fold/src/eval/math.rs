//! Arithmetic kernels: casts, broadcasting binary and unary math, comparisons, logic,
//! reductions, matrix products and `Range`.

use tf_proto::tensorflow::NodeDef;
use tf_tensor::{dims_to_string, dt, dtype, Data, Tensor};

use super::array::{broadcast_indices, broadcast_shape, check_size};
use super::vals::{int_range, is_unsigned, round_to, wrap_to, Class};
use super::{
    attr_bool, attr_type, input, ints, invalid, norm_axis, numel, unsupported, EvalError, Vals, R,
};

fn name(dtype_: i32) -> String {
    dtype::short_name(dtype_)
}

/// Applies `f` elementwise with numpy broadcasting; returns the values and the output shape.
fn broadcast2<T: Copy, U>(
    a: &[T],
    ash: &[i64],
    b: &[T],
    bsh: &[i64],
    mut f: impl FnMut(T, T) -> R<U>,
) -> R<(Vec<U>, Vec<i64>)> {
    let shape = broadcast_shape(ash, bsh)?;
    let n = numel(&shape);
    let mut out = Vec::with_capacity(n);
    if ash == bsh {
        for i in 0..n {
            out.push(f(a[i], b[i])?);
        }
    } else if b.len() == 1 && bsh.len() <= ash.len() {
        for &x in a {
            out.push(f(x, b[0])?);
        }
    } else if a.len() == 1 && ash.len() <= bsh.len() {
        for &y in b {
            out.push(f(a[0], y)?);
        }
    } else {
        let ia = broadcast_indices(ash, &shape)?;
        let ib = broadcast_indices(bsh, &shape)?;
        for k in 0..n {
            out.push(f(a[ia[k]], b[ib[k]])?);
        }
    }
    Ok((out, shape))
}

fn same_dtype<'a>(node: &NodeDef, a: &'a Tensor, b: &'a Tensor) -> R<i32> {
    if a.dtype != b.dtype {
        return invalid(format!(
            "{}: inputs have different dtypes ({} and {})",
            node.op,
            name(a.dtype),
            name(b.dtype)
        ));
    }
    Ok(a.dtype)
}

// ---- binary -------------------------------------------------------------------------------

fn float_binary(op: &str, t: i32) -> R<fn(f64, f64, i32) -> f64> {
    Ok(match op {
        "Add" | "AddV2" => |a, b, _| a + b,
        "Sub" => |a, b, _| a - b,
        "Mul" => |a, b, _| a * b,
        "RealDiv" | "Div" => |a, b, _| a / b,
        "DivNoNan" => |a, b, _| if b == 0.0 { 0.0 } else { a / b },
        "FloorDiv" => |a, b, t| round_to(t, a / b).floor(),
        "FloorMod" => |a, b, _| {
            let r = a % b;
            if r != 0.0 && ((b < 0.0) != (r < 0.0)) {
                r + b
            } else {
                r
            }
        },
        "TruncateDiv" => |a, b, t| round_to(t, a / b).trunc(),
        "TruncateMod" => |a, b, _| a % b,
        "Maximum" => |a, b, _| if a.is_nan() || b.is_nan() { f64::NAN } else { a.max(b) },
        "Minimum" => |a, b, _| if a.is_nan() || b.is_nan() { f64::NAN } else { a.min(b) },
        "Pow" => |a, b, _| a.powf(b),
        "SquaredDifference" => |a, b, t| {
            let d = round_to(t, a - b);
            d * d
        },
        other => return unsupported(format!("{other} on {}", name(t))),
    })
}

fn int_pow(a: i128, b: i128, t: i32) -> R<i128> {
    if b < 0 {
        return invalid("Integers to negative integer powers are not allowed");
    }
    let (mut base, mut e, mut acc) = (a, b, 1i128);
    while e > 0 {
        if e & 1 == 1 {
            acc = wrap_to(t, acc.wrapping_mul(base));
        }
        base = wrap_to(t, base.wrapping_mul(base));
        e >>= 1;
    }
    Ok(acc)
}

fn int_binary(op: &str, a: i128, b: i128, t: i32) -> R<i128> {
    let nonzero = |b: i128| {
        if b == 0 {
            invalid("Integer division by zero")
        } else {
            Ok(())
        }
    };
    Ok(wrap_to(
        t,
        match op {
            "Add" | "AddV2" => a.wrapping_add(b),
            "Sub" => a.wrapping_sub(b),
            "Mul" => a.wrapping_mul(b),
            "Div" | "RealDiv" | "TruncateDiv" => {
                nonzero(b)?;
                a.wrapping_div(b)
            }
            "FloorDiv" => {
                nonzero(b)?;
                let q = a.wrapping_div(b);
                if (a % b != 0) && ((a < 0) != (b < 0)) {
                    q - 1
                } else {
                    q
                }
            }
            "FloorMod" => {
                nonzero(b)?;
                let r = a % b;
                if r != 0 && ((b < 0) != (r < 0)) {
                    r + b
                } else {
                    r
                }
            }
            "TruncateMod" => {
                nonzero(b)?;
                a % b
            }
            "Maximum" => a.max(b),
            "Minimum" => a.min(b),
            "Pow" => int_pow(a, b, t)?,
            "SquaredDifference" => {
                let d = wrap_to(t, a.wrapping_sub(b));
                d.wrapping_mul(d)
            }
            other => return unsupported(format!("{other} on {}", name(t))),
        },
    ))
}

pub(crate) fn binary(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let t = same_dtype(node, a, b)?;
    let (va, vb) = (Vals::of(a)?, Vals::of(b)?);
    let (vals, shape) = match (va, vb) {
        (Vals::F(x), Vals::F(y)) => {
            let f = float_binary(&node.op, t)?;
            let (v, s) = broadcast2(&x, &a.shape, &y, &b.shape, |p, q| Ok(f(p, q, t)))?;
            (Vals::F(v), s)
        }
        (Vals::I(x), Vals::I(y)) => {
            if node.op == "DivNoNan" {
                return unsupported(format!("DivNoNan on {}", name(t)));
            }
            let op = node.op.as_str();
            let (v, s) = broadcast2(&x, &a.shape, &y, &b.shape, |p, q| int_binary(op, p, q, t))?;
            (Vals::I(v), s)
        }
        _ => return unsupported(format!("{} on {}", node.op, name(t))),
    };
    Ok(vec![vals.into_tensor(t, &shape)?])
}

pub(crate) fn bias_add(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (v, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let r = v.shape.len();
    if r < 2 || b.shape.len() != 1 {
        return invalid("BiasAdd: value must be at least 2-D and bias 1-D");
    }
    let nchw = node.attr_opt_str("data_format").is_some_and(|f| f.starts_with("NC"));
    let c = if nchw { 1 } else { r - 1 };
    if v.shape[c] != b.shape[0] {
        return invalid(format!(
            "BiasAdd: bias of size {} does not match dimension {c} of {}",
            b.shape[0],
            dims_to_string(&v.shape)
        ));
    }
    let mut bshape = vec![1i64; r - c];
    bshape[0] = b.shape[0];
    let b2 = super::with_shape(b, bshape);
    let mut add = node.clone();
    add.op = "AddV2".into();
    binary(&add, &[v.clone(), b2])
}

pub(crate) fn add_n(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let first = input(node, inputs, 0)?;
    let mut acc = Vals::of(first)?;
    for t in &inputs[1..] {
        if t.shape != first.shape || t.dtype != first.dtype {
            return invalid("AddN: inputs must have the same shape and dtype");
        }
        match (&mut acc, Vals::of(t)?) {
            (Vals::F(a), Vals::F(b)) => a.iter_mut().zip(b).for_each(|(x, y)| *x += y),
            (Vals::I(a), Vals::I(b)) => {
                a.iter_mut().zip(b).for_each(|(x, y)| *x = wrap_to(first.dtype, *x + y))
            }
            _ => return unsupported(format!("AddN on {}", name(first.dtype))),
        }
    }
    Ok(vec![acc.into_tensor(first.dtype, &first.shape)?])
}

// ---- unary --------------------------------------------------------------------------------

// Elu and Selu are not here: TensorFlow computes them as Eigen's polynomial exp(x) minus 1,
// which near 0 is hundreds of ulp from the true value; folding them would not give TF's value.
fn float_unary(node: &NodeDef, x: f64) -> R<f64> {
    Ok(match node.op.as_str() {
        "Neg" => -x,
        "Abs" => x.abs(),
        "Sqrt" => x.sqrt(),
        "Rsqrt" => 1.0 / x.sqrt(),
        "Square" => x * x,
        "Exp" => x.exp(),
        "Expm1" => x.exp_m1(),
        "Log" => x.ln(),
        "Log1p" => x.ln_1p(),
        "Reciprocal" | "Inv" => 1.0 / x,
        "Tanh" => x.tanh(),
        "Sigmoid" => 1.0 / (1.0 + (-x).exp()),
        "Relu" => {
            if x.is_nan() || x > 0.0 {
                x
            } else {
                0.0
            }
        }
        "Relu6" => {
            if x.is_nan() {
                x
            } else {
                x.clamp(0.0, 6.0)
            }
        }
        "Softplus" => {
            if x > 0.0 {
                x + (-x).exp().ln_1p()
            } else {
                x.exp().ln_1p()
            }
        }
        "LeakyRelu" => {
            let alpha = node.attr_opt_f32("alpha").unwrap_or(0.2) as f64;
            if x > 0.0 {
                x
            } else {
                x * alpha
            }
        }
        "Floor" => x.floor(),
        "Ceil" => x.ceil(),
        "Round" | "Rint" => x.round_ties_even(),
        "Sign" => {
            if x.is_nan() {
                x
            } else if x > 0.0 {
                1.0
            } else if x < 0.0 {
                -1.0
            } else {
                0.0
            }
        }
        "Sin" => x.sin(),
        "Cos" => x.cos(),
        other => return unsupported(other.to_string()),
    })
}

fn int_unary(node: &NodeDef, x: i128, t: i32) -> R<i128> {
    Ok(wrap_to(
        t,
        match node.op.as_str() {
            "Neg" => x.wrapping_neg(),
            "Abs" => x.abs(),
            "Square" => x.wrapping_mul(x),
            "Sign" => x.signum(),
            "Relu" => x.max(0),
            "Relu6" => x.clamp(0, 6),
            "Floor" | "Ceil" | "Round" | "Rint" => x,
            "Reciprocal" | "Inv" => {
                if x == 0 {
                    return invalid("Integer division by zero");
                }
                1 / x
            }
            other => return unsupported(format!("{other} on {}", name(t))),
        },
    ))
}

pub(crate) fn unary(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let t = x.dtype;
    let out = match Vals::of(x)? {
        Vals::F(v) => {
            Vals::F(v.into_iter().map(|e| float_unary(node, e)).collect::<R<Vec<f64>>>()?)
        }
        Vals::I(v) => {
            if is_unsigned(t) && matches!(node.op.as_str(), "Neg" | "Abs" | "Sign") {
                return unsupported(format!("{} on {}", node.op, name(t)));
            }
            Vals::I(v.into_iter().map(|e| int_unary(node, e, t)).collect::<R<Vec<i128>>>()?)
        }
        Vals::B(_) => return unsupported(format!("{} on bool", node.op)),
    };
    Ok(vec![out.into_tensor(t, &x.shape)?])
}

// ---- comparisons and logic ----------------------------------------------------------------

fn cmp<T: PartialOrd + PartialEq>(op: &str, a: T, b: T) -> bool {
    match op {
        "Equal" => a == b,
        "NotEqual" => a != b,
        "Less" => a < b,
        "LessEqual" => a <= b,
        "Greater" => a > b,
        _ => a >= b,
    }
}

pub(crate) fn compare(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let t = same_dtype(node, a, b)?;
    let op = node.op.as_str();
    let eq_only = matches!(op, "Equal" | "NotEqual");
    let (v, shape) = match (&a.data, &b.data) {
        (Data::Strings(x), Data::Strings(y)) if eq_only => {
            let (ix, iy): (Vec<usize>, Vec<usize>) =
                ((0..x.len()).collect(), (0..y.len()).collect());
            broadcast2(&ix, &a.shape, &iy, &b.shape, |p, q| Ok(cmp(op, &x[p], &y[q])))?
        }
        _ => match (Vals::of(a)?, Vals::of(b)?) {
            (Vals::F(x), Vals::F(y)) => {
                broadcast2(&x, &a.shape, &y, &b.shape, |p, q| Ok(cmp(op, p, q)))?
            }
            (Vals::I(x), Vals::I(y)) => {
                broadcast2(&x, &a.shape, &y, &b.shape, |p, q| Ok(cmp(op, p, q)))?
            }
            (Vals::B(x), Vals::B(y)) if eq_only => {
                broadcast2(&x, &a.shape, &y, &b.shape, |p, q| Ok(cmp(op, p, q)))?
            }
            _ => return unsupported(format!("{op} on {}", name(t))),
        },
    };
    Ok(vec![Vals::B(v).into_tensor(dt::BOOL, &shape)?])
}

pub(crate) fn logical(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let (Vals::B(x), Vals::B(y)) = (Vals::of(a)?, Vals::of(b)?) else {
        return invalid(format!("{}: inputs must be bool", node.op));
    };
    let and = node.op == "LogicalAnd";
    let (v, s) =
        broadcast2(&x, &a.shape, &y, &b.shape, |p, q| Ok(if and { p && q } else { p || q }))?;
    Ok(vec![Vals::B(v).into_tensor(dt::BOOL, &s)?])
}

pub(crate) fn logical_not(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let a = input(node, inputs, 0)?;
    let Vals::B(x) = Vals::of(a)? else {
        return invalid("LogicalNot: input must be bool");
    };
    Ok(vec![Vals::B(x.into_iter().map(|b| !b).collect()).into_tensor(dt::BOOL, &a.shape)?])
}

// ---- cast ---------------------------------------------------------------------------------

pub(crate) fn cast(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let to = attr_type(node, "DstT").ok_or_else(|| EvalError::Invalid("Cast: no DstT".into()))?;
    if x.dtype == to {
        return Ok(vec![x.clone()]);
    }
    let (Some(from_c), Some(to_c)) = (Vals::class(x.dtype), Vals::class(to)) else {
        return unsupported(format!("Cast {} to {}", name(x.dtype), name(to)));
    };
    if attr_bool(node, "Truncate", false) && from_c == Class::F && to_c == Class::F {
        return unsupported("Cast with Truncate=true");
    }
    let v = Vals::of(x)?;
    let out = match (v, to_c) {
        (Vals::F(v), Class::F) => Vals::F(v),
        (Vals::F(v), Class::I) => {
            let (lo, hi) = int_range(to);
            let mut out = Vec::with_capacity(v.len());
            for e in v {
                let tr = e.trunc();
                if !tr.is_finite() || tr < lo as f64 || tr > hi as f64 {
                    return unsupported(format!("Cast of {e} to {} is out of range", name(to)));
                }
                out.push(tr as i128);
            }
            Vals::I(out)
        }
        (Vals::F(v), Class::B) => Vals::B(v.into_iter().map(|e| e != 0.0).collect()),
        (Vals::I(v), Class::F) => {
            if v.iter().any(|e| e.unsigned_abs() > (1u128 << 53)) {
                return unsupported("Cast of an integer beyond 2^53 to float");
            }
            Vals::F(v.into_iter().map(|e| e as f64).collect())
        }
        (Vals::I(v), Class::I) => Vals::I(v.into_iter().map(|e| wrap_to(to, e)).collect()),
        (Vals::I(v), Class::B) => Vals::B(v.into_iter().map(|e| e != 0).collect()),
        (Vals::B(v), Class::F) => Vals::F(v.into_iter().map(|b| b as u8 as f64).collect()),
        (Vals::B(v), Class::I) => Vals::I(v.into_iter().map(|b| b as i128).collect()),
        (Vals::B(v), Class::B) => Vals::B(v),
    };
    Ok(vec![out.into_tensor(to, &x.shape)?])
}

// ---- reductions ---------------------------------------------------------------------------

/// Which axes a reduction over `axes` of a rank-`r` tensor reduces.
pub(crate) fn reduced_axes(axes: &[i64], r: usize) -> R<Vec<bool>> {
    let mut red = vec![false; r];
    for &a in axes {
        if r == 0 && (a == 0 || a == -1) {
            continue;
        }
        red[norm_axis(a, r)?] = true;
    }
    Ok(red)
}

/// Output shape of a reduction.
pub(crate) fn reduced_shape(shape: &[i64], red: &[bool], keep: bool) -> Vec<i64> {
    shape
        .iter()
        .zip(red)
        .filter_map(|(&d, &r)| match (r, keep) {
            (false, _) => Some(d),
            (true, true) => Some(1),
            (true, false) => None,
        })
        .collect()
}

/// For each output element, the input indices it reduces over.
fn reduction_groups(shape: &[i64], red: &[bool]) -> R<(usize, Vec<usize>, Vec<usize>)> {
    // Output offsets (kept axes) and inner offsets (reduced axes), both as input flat indices.
    let st = super::strides(shape);
    let kept_shape: Vec<i64> =
        shape.iter().zip(red).map(|(&d, &r)| if r { 1 } else { d }).collect();
    let red_shape: Vec<i64> = shape.iter().zip(red).map(|(&d, &r)| if r { d } else { 1 }).collect();
    let stride: Vec<i64> = st.iter().map(|&s| s as i64).collect();
    // An empty input may still have huge dimensions: nothing to index into.
    if super::numel(shape) == 0 {
        return unsupported("reduction of an empty tensor");
    }
    let outer = super::array::view_indices(&kept_shape, 0, &stride)?;
    let inner = super::array::view_indices(&red_shape, 0, &stride)?;
    Ok((inner.len(), outer, inner))
}

pub(crate) fn reduce(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let axes = ints(input(node, inputs, 1)?)?;
    let keep = attr_bool(node, "keep_dims", false);
    let red = reduced_axes(&axes, x.shape.len())?;
    let shape = reduced_shape(&x.shape, &red, keep);
    let (count, outer, inner) = reduction_groups(&x.shape, &red)?;
    let op = node.op.as_str();
    if count == 0 && matches!(op, "Max" | "Min" | "Mean") {
        return unsupported(format!("{op} over an empty axis"));
    }
    let t = x.dtype;
    let out = match Vals::of(x)? {
        Vals::F(v) => {
            let mut out = Vec::with_capacity(outer.len());
            for &o in &outer {
                let it = inner.iter().map(|&i| v[o + i]);
                out.push(match op {
                    "Sum" => it.sum(),
                    "Mean" => it.sum::<f64>() / count as f64,
                    "Prod" => it.fold(1.0, |a, b| round_to(t, a * b)),
                    "Max" => it.fold(f64::NEG_INFINITY, |a, b| {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.max(b)
                        }
                    }),
                    "Min" => it.fold(f64::INFINITY, |a, b| {
                        if a.is_nan() || b.is_nan() {
                            f64::NAN
                        } else {
                            a.min(b)
                        }
                    }),
                    _ => return unsupported(format!("{op} on {}", name(t))),
                });
            }
            Vals::F(out)
        }
        Vals::I(v) => {
            let mut out = Vec::with_capacity(outer.len());
            for &o in &outer {
                let it = inner.iter().map(|&i| v[o + i]);
                out.push(match op {
                    "Sum" => it.fold(0i128, |a, b| wrap_to(t, a + b)),
                    "Mean" => it.fold(0i128, |a, b| wrap_to(t, a + b)) / count as i128,
                    "Prod" => it.fold(1i128, |a, b| wrap_to(t, a.wrapping_mul(b))),
                    "Max" => it.max().unwrap_or(0),
                    "Min" => it.min().unwrap_or(0),
                    _ => return unsupported(format!("{op} on {}", name(t))),
                });
            }
            Vals::I(out)
        }
        Vals::B(v) => {
            let mut out = Vec::with_capacity(outer.len());
            for &o in &outer {
                let mut it = inner.iter().map(|&i| v[o + i]);
                out.push(match op {
                    "All" => it.all(|b| b),
                    "Any" => it.any(|b| b),
                    _ => return unsupported(format!("{op} on bool")),
                });
            }
            Vals::B(out)
        }
    };
    Ok(vec![out.into_tensor(t, &shape)?])
}

pub(crate) fn arg_reduce(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let x = input(node, inputs, 0)?;
    let axis = super::scalar_int(input(node, inputs, 1)?)?;
    let r = x.shape.len();
    let ax = norm_axis(axis, r)?;
    if x.shape[ax] == 0 {
        return invalid(format!("{}: reduction dimension is empty", node.op));
    }
    let mut red = vec![false; r];
    red[ax] = true;
    let shape = reduced_shape(&x.shape, &red, false);
    let (_, outer, inner) = reduction_groups(&x.shape, &red)?;
    let max = node.op == "ArgMax";
    let keys: Vec<f64> = match Vals::of(x)? {
        Vals::F(v) => {
            if v.iter().any(|e| e.is_nan()) {
                return unsupported(format!("{} with NaN", node.op));
            }
            v
        }
        Vals::I(v) => {
            if v.iter().any(|e| e.unsigned_abs() > (1u128 << 53)) {
                return unsupported(format!("{} of large integers", node.op));
            }
            v.into_iter().map(|e| e as f64).collect()
        }
        Vals::B(v) => v.into_iter().map(|b| b as u8 as f64).collect(),
    };
    let mut out = Vec::with_capacity(outer.len());
    for &o in &outer {
        let mut best = 0usize;
        for (k, &i) in inner.iter().enumerate() {
            let (a, b) = (keys[o + i], keys[o + inner[best]]);
            if (max && a > b) || (!max && a < b) {
                best = k;
            }
        }
        out.push(best as i64);
    }
    let ot = attr_type(node, "output_type").unwrap_or(dt::INT64);
    Ok(vec![super::int_tensor(ot, &shape, &out)?])
}

// ---- matrix products ----------------------------------------------------------------------

/// `[m,k] x [k,n]` on flat row-major data with optional transposes; floats accumulate in f64.
#[allow(clippy::too_many_arguments)]
fn matmul_into(
    a: &Vals,
    a_off: usize,
    b: &Vals,
    b_off: usize,
    (m, k, n): (usize, usize, usize),
    (ta, tb): (bool, bool),
    t: i32,
    out: &mut Vals,
) -> R<()> {
    let ai = |i: usize, p: usize| a_off + if ta { p * m + i } else { i * k + p };
    let bi = |p: usize, j: usize| b_off + if tb { j * k + p } else { p * n + j };
    match (a, b, out) {
        (Vals::F(x), Vals::F(y), Vals::F(o)) => {
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0.0f64;
                    for p in 0..k {
                        s += x[ai(i, p)] * y[bi(p, j)];
                    }
                    o.push(s);
                }
            }
        }
        (Vals::I(x), Vals::I(y), Vals::I(o)) => {
            for i in 0..m {
                for j in 0..n {
                    let mut s = 0i128;
                    for p in 0..k {
                        s = wrap_to(t, s.wrapping_add(x[ai(i, p)].wrapping_mul(y[bi(p, j)])));
                    }
                    o.push(s);
                }
            }
        }
        _ => return unsupported(format!("matrix product on {}", name(t))),
    }
    Ok(())
}

fn empty_like(v: &Vals, cap: usize) -> Vals {
    match v {
        Vals::F(_) => Vals::F(Vec::with_capacity(cap)),
        Vals::I(_) => Vals::I(Vec::with_capacity(cap)),
        Vals::B(_) => Vals::B(Vec::with_capacity(cap)),
    }
}

pub(crate) fn mat_mul(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let t = same_dtype(node, a, b)?;
    if a.shape.len() != 2 || b.shape.len() != 2 {
        return invalid("MatMul: inputs must be matrices");
    }
    let (ta, tb) = (attr_bool(node, "transpose_a", false), attr_bool(node, "transpose_b", false));
    let (m, ka) = if ta { (a.shape[1], a.shape[0]) } else { (a.shape[0], a.shape[1]) };
    let (kb, n) = if tb { (b.shape[1], b.shape[0]) } else { (b.shape[0], b.shape[1]) };
    if ka != kb {
        return invalid(format!(
            "MatMul: in[0] {} and in[1] {} do not match",
            dims_to_string(&a.shape),
            dims_to_string(&b.shape)
        ));
    }
    check_size(&[m, n], t)?;
    let (va, vb) = (Vals::of(a)?, Vals::of(b)?);
    let mut out = empty_like(&va, (m * n) as usize);
    matmul_into(&va, 0, &vb, 0, (m as usize, ka as usize, n as usize), (ta, tb), t, &mut out)?;
    Ok(vec![out.into_tensor(t, &[m, n])?])
}

pub(crate) fn batch_mat_mul(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (a, b) = (input(node, inputs, 0)?, input(node, inputs, 1)?);
    let t = same_dtype(node, a, b)?;
    if node.op == "BatchMatMulV3" {
        let tout = attr_type(node, "Tout").unwrap_or(t);
        if tout != t {
            return unsupported("BatchMatMulV3 with Tout != Ta");
        }
    }
    let (ra, rb) = (a.shape.len(), b.shape.len());
    if ra < 2 || rb < 2 {
        return invalid(format!("{}: inputs must be at least 2-D", node.op));
    }
    let (ta, tb) = (attr_bool(node, "adj_x", false), attr_bool(node, "adj_y", false));
    let (ma, ka) = (a.shape[ra - 2], a.shape[ra - 1]);
    let (mb, kb) = (b.shape[rb - 2], b.shape[rb - 1]);
    let (m, k1) = if ta { (ka, ma) } else { (ma, ka) };
    let (k2, n) = if tb { (kb, mb) } else { (mb, kb) };
    if k1 != k2 {
        return invalid(format!("{}: contraction dimensions differ", node.op));
    }
    let (ba, bb) = (&a.shape[..ra - 2], &b.shape[..rb - 2]);
    let batch = if node.op == "BatchMatMul" {
        if ba != bb {
            return invalid("BatchMatMul: batch dimensions differ");
        }
        ba.to_vec()
    } else {
        broadcast_shape(ba, bb)?
    };
    let mut shape = batch.clone();
    shape.extend([m, n]);
    check_size(&shape, t)?;
    let ia = broadcast_indices(ba, &batch)?;
    let ib = broadcast_indices(bb, &batch)?;
    let (va, vb) = (Vals::of(a)?, Vals::of(b)?);
    let mut out = empty_like(&va, numel(&shape));
    let dims = (m as usize, k1 as usize, n as usize);
    let (sa, sb) = ((ma * ka) as usize, (mb * kb) as usize);
    for (x, y) in ia.iter().zip(&ib) {
        matmul_into(&va, x * sa, &vb, y * sb, dims, (ta, tb), t, &mut out)?;
    }
    Ok(vec![out.into_tensor(t, &shape)?])
}

// ---- Range --------------------------------------------------------------------------------

pub(crate) fn range(node: &NodeDef, inputs: &[Tensor]) -> R<Vec<Tensor>> {
    let (s, l, d) = (input(node, inputs, 0)?, input(node, inputs, 1)?, input(node, inputs, 2)?);
    let t = s.dtype;
    if l.dtype != t
        || d.dtype != t
        || numel(&s.shape) != 1
        || numel(&l.shape) != 1
        || numel(&d.shape) != 1
    {
        return invalid("Range: start, limit and delta must be scalars of one dtype");
    }
    let out = match (Vals::of(s)?, Vals::of(l)?, Vals::of(d)?) {
        (Vals::I(s), Vals::I(l), Vals::I(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            check_range(s < l, s > l, d > 0, d < 0, d == 0)?;
            let size = ((l - s).abs() + d.abs() - 1) / d.abs();
            check_size(&[size as i64], t)?;
            Vals::I((0..size).map(|i| wrap_to(t, s + i * d)).collect())
        }
        (Vals::F(s), Vals::F(l), Vals::F(d)) => {
            let (s, l, d) = (s[0], l[0], d[0]);
            check_range(s < l, s > l, d > 0.0, d < 0.0, d == 0.0)?;
            let size = round_to(t, round_to(t, l - s) / d).abs().ceil();
            if !size.is_finite() {
                return invalid("Range: size is not finite");
            }
            check_size(&[size as i64], t)?;
            let mut v = Vec::with_capacity(size as usize);
            let mut val = s;
            for _ in 0..size as usize {
                v.push(val);
                val = round_to(t, val + d);
            }
            Vals::F(v)
        }
        _ => return unsupported(format!("Range on {}", name(t))),
    };
    let n = out.len() as i64;
    Ok(vec![out.into_tensor(t, &[n])?])
}

fn check_range(lt: bool, gt: bool, pos: bool, neg: bool, zero: bool) -> R<()> {
    if zero {
        return invalid("Range: delta must not be 0");
    }
    if (pos && gt) || (neg && lt) {
        return invalid("Range: start and limit are not in the direction of delta");
    }
    Ok(())
}
