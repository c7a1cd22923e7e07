//! A small static shape inference, enough to count the FLOPs of convolution and dense layers.
//!
//! Shapes start at placeholders (an unknown batch counts as 1, so FLOPs are per example) and
//! constants and go through the ops of typical CNN/MLP inference graphs; a layer whose input
//! shape is not known is counted in `unknown` instead of guessed.

use std::collections::HashMap;

use serde::Serialize;
use tf_graph::{Graph, Input, NodeId};
use tf_proto::tensorflow::NodeDef;

use crate::{const_shape, resolve_const};

/// FLOPs (2 × multiply-accumulates) of Conv2D, DepthwiseConv2dNative and MatMul layers.
#[derive(Debug, Clone, Copy, Default, Serialize, PartialEq, Eq)]
pub struct Flops {
    /// Per example (an unknown batch dimension counts as 1).
    pub flops: u64,
    /// Layers whose shapes could not be inferred (not counted).
    pub unknown: usize,
}

type Shape = Vec<i64>;

fn ints(n: &NodeDef, k: &str) -> Option<Vec<i64>> {
    n.attr.get(k)?.as_list_i64().map(<[i64]>::to_vec)
}

fn const_ints(g: &Graph, input: &str) -> Option<Vec<i64>> {
    let (k, _) = resolve_const(g, input)?;
    let t = tf_tensor::Tensor::from_proto(g.node(k).attr_opt_tensor("value")?).ok()?;
    t.values::<i32>()
        .map(|v| v.into_iter().map(i64::from).collect())
        .or_else(|_| t.values::<i64>())
        .ok()
}

/// Output length of a window of `k` taps, stride `s` and dilation `d` over `x` elements, as
/// TensorFlow computes it; `None` for a stride, dilation or size TensorFlow would refuse
/// (zero or negative) or that overflows.
fn window(x: i64, k: i64, s: i64, d: i64, padding: &str) -> Option<i64> {
    if x < 0 || k < 1 || s < 1 || d < 1 {
        return None;
    }
    let eff = (k - 1).checked_mul(d)?.checked_add(1)?;
    match padding {
        "SAME" => Some(ceil_div(x, s)),
        "VALID" => Some(ceil_div((x - eff).checked_add(1)?.max(0), s)),
        _ => None,
    }
}

/// `ceil(x / s)` for `x >= 0`, `s >= 1`.
fn ceil_div(x: i64, s: i64) -> i64 {
    x / s + i64::from(x % s != 0)
}

/// Product of non-negative factors; `None` on a negative factor or overflow.
fn product(xs: &[i64]) -> Option<i64> {
    xs.iter().try_fold(1i64, |a, &x| if x < 0 { None } else { a.checked_mul(x) })
}

/// A possibly negative axis of a rank-`r` tensor as an index, `None` out of range.
fn axis_index(a: i64, r: usize) -> Option<usize> {
    let r = i64::try_from(r).ok()?;
    let a = if a < 0 { a.checked_add(r)? } else { a };
    usize::try_from(a).ok().filter(|a| (*a as i64) < r)
}

fn add_flops(out: &mut Flops, factors: &[i64]) {
    let n = product(factors).and_then(|n| u64::try_from(n).ok()).unwrap_or(u64::MAX);
    out.flops = out.flops.saturating_add(n);
}

fn broadcast(a: &Shape, b: &Shape) -> Option<Shape> {
    let n = a.len().max(b.len());
    let get = |s: &Shape, i: usize| if i + s.len() < n { 1 } else { s[i + s.len() - n] };
    (0..n)
        .map(|i| match (get(a, i), get(b, i)) {
            (x, y) if x == y => Some(x),
            (1, y) => Some(y),
            (x, 1) => Some(x),
            _ => None,
        })
        .collect()
}

const SAME_SHAPE: &[&str] = &[
    "Identity",
    "Snapshot",
    "StopGradient",
    "PreventGradient",
    "Relu",
    "Relu6",
    "Elu",
    "Selu",
    "Sigmoid",
    "Tanh",
    "LeakyRelu",
    "Softmax",
    "LogSoftmax",
    "BiasAdd",
    "FusedBatchNorm",
    "FusedBatchNormV2",
    "FusedBatchNormV3",
    "Softsign",
    "Softplus",
    "Neg",
    "Erf",
    "Erfc",
    "Exp",
    "Sqrt",
    "Rsqrt",
    "Square",
    "Abs",
    "Cast",
    "Swish",
    "Gelu",
];

/// Counts the FLOPs of the graph as it is now.
pub fn count(g: &Graph) -> Flops {
    let order = g.topo_order().unwrap_or_else(|_| g.ids());
    let mut shapes: HashMap<NodeId, Shape> = HashMap::new();
    let mut out = Flops::default();
    let shape_of = |shapes: &HashMap<NodeId, Shape>, s: &str| -> Option<Shape> {
        match Input::parse(s) {
            Input::Data { node, port: 0 } => shapes.get(&g.id(node)?).cloned(),
            _ => None,
        }
    };
    for id in order {
        let n = g.node(id);
        let inp = |i: usize| n.input.get(i).and_then(|s| shape_of(&shapes, s));
        let sh: Option<Shape> = match n.op.as_str() {
            "Placeholder" => n.attr_opt_shape("shape").filter(|s| !s.unknown_rank).and_then(|s| {
                s.dim
                    .iter()
                    .enumerate()
                    .map(|(i, d)| match d.size {
                        -1 if i == 0 => Some(1),
                        -1 => None,
                        x => Some(x),
                    })
                    .collect()
            }),
            "Const" => const_shape(n),
            op if SAME_SHAPE.contains(&op) => inp(0),
            "Add" | "AddV2" | "Sub" | "Mul" | "RealDiv" | "Maximum" | "Minimum"
            | "SquaredDifference" => inp(0).zip(inp(1)).and_then(|(a, b)| broadcast(&a, &b)),
            "Conv2D" | "DepthwiseConv2dNative" | "MaxPool" | "AvgPool" => {
                let x = inp(0).filter(|x| x.len() == 4);
                let nhwc = n.attr_opt_str("data_format").is_none_or(|f| f == "NHWC");
                let strides = ints(n, "strides").unwrap_or(vec![1; 4]);
                let dil = ints(n, "dilations").unwrap_or(vec![1; 4]);
                let pad = n.attr_opt_str("padding").unwrap_or("");
                let (k, co) = match n.op.as_str() {
                    "Conv2D" => match inp(1) {
                        Some(f) if f.len() == 4 => (Some((f[0], f[1])), Some(f[3])),
                        _ => (None, None),
                    },
                    "DepthwiseConv2dNative" => match inp(1) {
                        Some(f) if f.len() == 4 => (Some((f[0], f[1])), f[2].checked_mul(f[3])),
                        _ => (None, None),
                    },
                    _ => (ints(n, "ksize").filter(|k| k.len() == 4).map(|k| (k[1], k[2])), None),
                };
                match (x, k, nhwc, strides.len() == 4 && dil.len() == 4) {
                    (Some(x), Some((kh, kw)), true, true) => {
                        let oh = window(x[1], kh, strides[1], dil[1], pad);
                        let ow = window(x[2], kw, strides[2], dil[2], pad);
                        oh.zip(ow).map(|(oh, ow)| {
                            let c = co.unwrap_or(x[3]);
                            if n.op == "Conv2D" {
                                add_flops(&mut out, &[2, oh, ow, c, kh, kw, x[3]]);
                            } else if n.op == "DepthwiseConv2dNative" {
                                add_flops(&mut out, &[2, oh, ow, c, kh, kw]);
                            }
                            vec![x[0], oh, ow, c]
                        })
                    }
                    _ => None,
                }
            }
            "MatMul" => {
                let (ta, tb) = (
                    n.attr_opt_bool("transpose_a").unwrap_or(false),
                    n.attr_opt_bool("transpose_b").unwrap_or(false),
                );
                match (inp(0), inp(1)) {
                    (Some(a), Some(b)) if a.len() == 2 && b.len() == 2 => {
                        let (m, k) = if ta { (a[1], a[0]) } else { (a[0], a[1]) };
                        let nn = if tb { b[0] } else { b[1] };
                        add_flops(&mut out, &[2, m, k, nn]);
                        Some(vec![m, nn])
                    }
                    _ => None,
                }
            }
            "Mean" | "Max" | "Min" | "Sum" | "Prod" => {
                let axes = n.input.get(1).and_then(|s| const_ints(g, s));
                inp(0).zip(axes).and_then(|(x, axes)| {
                    let axes: Option<Vec<usize>> =
                        axes.iter().map(|&a| axis_index(a, x.len())).collect();
                    let axes = axes?;
                    let keep = n.attr_opt_bool("keep_dims").unwrap_or(false);
                    x.iter()
                        .enumerate()
                        .filter_map(|(i, &d)| match (axes.contains(&i), keep) {
                            (true, true) => Some(1),
                            (true, false) => None,
                            _ => Some(d),
                        })
                        .collect::<Vec<i64>>()
                        .into()
                })
            }
            "Pad" | "PadV2" | "MirrorPad" => {
                let p = n.input.get(1).and_then(|s| const_ints(g, s));
                match (inp(0), p) {
                    (Some(x), Some(p)) if p.len() == 2 * x.len() => x
                        .iter()
                        .enumerate()
                        .map(|(i, d)| d.checked_add(p[2 * i])?.checked_add(p[2 * i + 1]))
                        .collect(),
                    _ => None,
                }
            }
            "ConcatV2" => {
                let k = n.input.iter().filter(|s| !Input::parse(s).is_control()).count();
                let axis = n.input.get(k.saturating_sub(1)).and_then(|s| const_ints(g, s));
                let parts: Option<Vec<Shape>> = (0..k.saturating_sub(1)).map(inp).collect();
                match (parts, axis.as_deref()) {
                    (Some(parts), Some(&[a])) if !parts.is_empty() => (|| {
                        let a = axis_index(a, parts[0].len())?;
                        let mut s = parts[0].clone();
                        s[a] = parts
                            .iter()
                            .try_fold(0i64, |t, p| t.checked_add(p.get(a).copied().unwrap_or(0)))?;
                        Some(s)
                    })(),
                    _ => None,
                }
            }
            "Reshape" => {
                let target = n.input.get(1).and_then(|s| const_ints(g, s));
                match (inp(0), target) {
                    (Some(x), Some(mut t)) => (|| {
                        let total = product(&x)?;
                        let known: Vec<i64> = t.iter().copied().filter(|d| *d != -1).collect();
                        let known = product(&known)?;
                        if let Some(p) = t.iter().position(|d| *d == -1) {
                            t[p] = if known > 0 { total / known } else { 0 };
                        }
                        Some(t)
                    })(),
                    _ => None,
                }
            }
            _ => None,
        };
        if sh.is_none() && matches!(n.op.as_str(), "Conv2D" | "DepthwiseConv2dNative" | "MatMul") {
            out.unknown += 1;
        }
        if let Some(s) = sh {
            shapes.insert(id, s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn windows_match_tf() {
        assert_eq!(window(8, 3, 1, 1, "SAME"), Some(8));
        assert_eq!(window(8, 3, 2, 1, "SAME"), Some(4));
        assert_eq!(window(8, 3, 1, 1, "VALID"), Some(6));
        assert_eq!(window(7, 2, 2, 1, "VALID"), Some(3));
        assert_eq!(broadcast(&vec![1, 4, 4, 8], &vec![8]), Some(vec![1, 4, 4, 8]));
    }

    #[test]
    fn degenerate_windows_are_unknown_not_a_division_by_zero() {
        for (s, d) in [(0, 1), (-1, 1), (1, 0), (1, -2)] {
            assert_eq!(window(8, 3, s, d, "SAME"), None);
            assert_eq!(window(8, 3, s, d, "VALID"), None);
        }
        assert_eq!(window(8, 0, 1, 1, "VALID"), None);
        assert_eq!(window(8, i64::MAX, 1, i64::MAX, "VALID"), None);
        assert_eq!(window(i64::MAX, 1, i64::MAX, 1, "SAME"), Some(1));
        assert_eq!(axis_index(-1, 3), Some(2));
        let out_of_range = [3, -4, i64::MIN, i64::MAX].map(|a| axis_index(a, 3));
        assert_eq!(out_of_range, [None; 4]);
        assert_eq!(product(&[i64::MAX, 2]), None);
    }
}
