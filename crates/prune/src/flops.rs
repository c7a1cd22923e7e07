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

fn window(x: i64, k: i64, s: i64, d: i64, padding: &str) -> Option<i64> {
    let eff = (k - 1) * d + 1;
    match padding {
        "SAME" => Some((x + s - 1) / s),
        "VALID" => Some(((x - eff + 1).max(0) + s - 1) / s),
        _ => None,
    }
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
                        Some(f) if f.len() == 4 => (Some((f[0], f[1])), Some(f[2] * f[3])),
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
                                out.flops += (2 * oh * ow * c * kh * kw * x[3]) as u64;
                            } else if n.op == "DepthwiseConv2dNative" {
                                out.flops += (2 * oh * ow * c * kh * kw) as u64;
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
                        out.flops += (2 * m * k * nn) as u64;
                        Some(vec![m, nn])
                    }
                    _ => None,
                }
            }
            "Mean" | "Max" | "Min" | "Sum" | "Prod" => {
                let axes = n.input.get(1).and_then(|s| const_ints(g, s));
                inp(0).zip(axes).map(|(x, axes)| {
                    let r = x.len() as i64;
                    let axes: Vec<i64> = axes.iter().map(|a| (a + r) % r.max(1)).collect();
                    let keep = n.attr_opt_bool("keep_dims").unwrap_or(false);
                    x.iter()
                        .enumerate()
                        .filter_map(|(i, &d)| match (axes.contains(&(i as i64)), keep) {
                            (true, true) => Some(1),
                            (true, false) => None,
                            _ => Some(d),
                        })
                        .collect()
                })
            }
            "Pad" | "PadV2" | "MirrorPad" => {
                let p = n.input.get(1).and_then(|s| const_ints(g, s));
                match (inp(0), p) {
                    (Some(x), Some(p)) if p.len() == 2 * x.len() => Some(
                        x.iter().enumerate().map(|(i, d)| d + p[2 * i] + p[2 * i + 1]).collect(),
                    ),
                    _ => None,
                }
            }
            "ConcatV2" => {
                let k = n.input.iter().filter(|s| !Input::parse(s).is_control()).count();
                let axis = n.input.get(k.saturating_sub(1)).and_then(|s| const_ints(g, s));
                let parts: Option<Vec<Shape>> = (0..k.saturating_sub(1)).map(inp).collect();
                match (parts, axis.as_deref()) {
                    (Some(parts), Some(&[a])) if !parts.is_empty() => {
                        let r = parts[0].len() as i64;
                        let a = ((a + r) % r.max(1)) as usize;
                        let mut s = parts[0].clone();
                        s[a] = parts.iter().map(|p| p.get(a).copied().unwrap_or(0)).sum();
                        Some(s)
                    }
                    _ => None,
                }
            }
            "Reshape" => {
                let target = n.input.get(1).and_then(|s| const_ints(g, s));
                match (inp(0), target) {
                    (Some(x), Some(mut t)) => {
                        let total: i64 = x.iter().product();
                        let known: i64 = t.iter().filter(|d| **d != -1).product();
                        if let Some(p) = t.iter().position(|d| *d == -1) {
                            t[p] = if known > 0 { total / known } else { 0 };
                        }
                        Some(t)
                    }
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
}
