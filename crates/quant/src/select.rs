//! Which constants are weights, and along which axes their output channels lie.
//!
//! A float `Const` is a weight when every op that reads it (looking through Identity-like
//! pass-throughs, which TF2 frozen graphs keep between a former variable and its reader) reads
//! it in a weight slot:
//!
//! | reader | slot | channel axes |
//! |---|---|---|
//! | `Conv2D` (filter HWIO) | 1 | 3 |
//! | `Conv3D` (filter DHWIO) | 1 | 4 |
//! | `DepthwiseConv2dNative` (filter [H,W,I,M]) | 1 | 2 and 3: one channel per (I,M) |
//! | `Conv2DBackpropInput` (filter [H,W,out,in]) | 1 | 2 |
//! | `Conv3DBackpropInputV2` (filter [D,H,W,out,in]) | 1 | 3 |
//! | `MatMul` | 1 (`b`) | 1, or 0 with `transpose_b` |
//! | `MatMul` | 0 (`a`) | 0, or 1 with `transpose_a` |
//! | `BatchMatMul`, `BatchMatMulV2`, `BatchMatMulV3` | 1 (`y`) | last, or last but one with `adj_y` |
//! | `BatchMatMul*` | 0 (`x`) | last but one, or last with `adj_x` |
//! | `Einsum` (two operands) | either | the operand's labels that appear in the output and not in the other operand |
//! | `Gather`, `GatherV2`, `SparseSegmentSum/Mean/SqrtN(WithNumSegments)` (embedding tables) | 0 | 0: one scale per row |
//!
//! Anything else (a `BiasAdd` bias, batch-norm scale/offset/mean/variance, an `Add` or `Mul`
//! operand, shapes, indices, integer tensors) is not a weight, so biases and batch-norm
//! parameters are never quantized. A constant read by two weight slots with different channel
//! axes gets one scale for the whole tensor.

use tf_graph::{Consumers, Graph, NodeId};
use tf_ops::is_pass_through;
use tf_proto::tensorflow::NodeDef;

/// One read of a weight: the reader, its op and the input slot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Use {
    pub node: String,
    pub op: String,
    pub slot: usize,
    /// The output-channel axes this reader implies; empty means per tensor.
    pub axes: Vec<usize>,
}

impl Use {
    pub(crate) fn describe(&self) -> String {
        format!("{} input {} of '{}'", self.op, self.slot, self.node)
    }
}

/// Why a constant is not a weight.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum NotWeight {
    /// Nothing reads it.
    Unread,
    /// A reader that does not take weights in that slot.
    Reader { node: String, op: String, slot: usize },
    /// A pass-through nothing reads (possibly a fetched output).
    DeadEnd(String),
}

impl std::fmt::Display for NotWeight {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NotWeight::Unread => write!(f, "nothing reads it"),
            NotWeight::Reader { node, op, slot } => {
                write!(f, "read as input {slot} of '{node}' ({op}), which is not a weight input")
            }
            NotWeight::DeadEnd(n) => {
                write!(f, "read through '{n}', which nothing reads (a graph output?)")
            }
        }
    }
}

/// Every weight-slot read of `id`'s output 0, through pass-throughs; or why it is not a weight.
pub(crate) fn uses(
    g: &Graph,
    consumers: &Consumers<'_>,
    id: NodeId,
    rank: usize,
) -> Result<Vec<Use>, NotWeight> {
    let mut out = Vec::new();
    let mut stack = vec![id];
    let mut seen = std::collections::HashSet::new();
    while let Some(n) = stack.pop() {
        if !seen.insert(n) {
            continue;
        }
        let readers = consumers.of_output(n, 0);
        if readers.is_empty() {
            return Err(if n == id {
                NotWeight::Unread
            } else {
                NotWeight::DeadEnd(g.node(n).name.clone())
            });
        }
        // Other outputs of a pass-through do not exist; a reader of `id:1` would be invalid.
        for (cid, slot) in readers {
            let c = g.node(cid);
            if is_pass_through(&c.op) && slot == 0 {
                stack.push(cid);
                continue;
            }
            match weight_axes(c, slot, rank) {
                Some(axes) => out.push(Use { node: c.name.clone(), op: c.op.clone(), slot, axes }),
                None => {
                    return Err(NotWeight::Reader { node: c.name.clone(), op: c.op.clone(), slot })
                }
            }
        }
    }
    Ok(out)
}

/// The channel axes several reads agree on; per tensor (empty) if they disagree.
pub(crate) fn common_axes(uses: &[Use]) -> Vec<usize> {
    match uses.split_first() {
        Some((first, rest)) if rest.iter().all(|u| u.axes == first.axes) => first.axes.clone(),
        _ => Vec::new(),
    }
}

fn flag(n: &NodeDef, name: &str) -> bool {
    n.attr_opt_bool(name).unwrap_or(false)
}

/// The output-channel axes of input `slot` of `reader` for a weight of rank `rank`: `None`
/// when the slot does not take weights, `Some(vec![])` for a weight quantized per tensor.
pub(crate) fn weight_axes(reader: &NodeDef, slot: usize, rank: usize) -> Option<Vec<usize>> {
    let want_rank = |r: usize, axes: Vec<usize>| if rank == r { Some(axes) } else { None };
    match (reader.op.as_str(), slot) {
        ("Conv2D", 1) => want_rank(4, vec![3]),
        ("Conv3D", 1) => want_rank(5, vec![4]),
        ("DepthwiseConv2dNative", 1) => want_rank(4, vec![2, 3]),
        ("Conv2DBackpropInput", 1) => want_rank(4, vec![2]),
        ("Conv3DBackpropInputV2", 1) => want_rank(5, vec![3]),
        ("MatMul", 1) => want_rank(2, vec![if flag(reader, "transpose_b") { 0 } else { 1 }]),
        ("MatMul", 0) => want_rank(2, vec![if flag(reader, "transpose_a") { 1 } else { 0 }]),
        ("BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3", 0 | 1) if rank >= 2 => {
            let adj = flag(reader, if slot == 1 { "adj_y" } else { "adj_x" });
            // y [.., K, N]: channels N (last); x [.., M, K]: channels M (last but one).
            let last = (slot == 1) != adj;
            Some(vec![if last { rank - 1 } else { rank - 2 }])
        }
        ("Einsum", 0 | 1) => einsum_axes(reader, slot, rank),
        ("Gather" | "GatherV2", 0)
        | (
            "SparseSegmentSum"
            | "SparseSegmentMean"
            | "SparseSegmentSqrtN"
            | "SparseSegmentSumWithNumSegments"
            | "SparseSegmentMeanWithNumSegments"
            | "SparseSegmentSqrtNWithNumSegments",
            0,
        ) => Some(if rank >= 2 { vec![0] } else { Vec::new() }),
        _ => None,
    }
}

/// Einsum with two operands: the weight's labels that survive into the output and are not
/// contracted with (or broadcast against) the other operand are its output channels.
/// `abc,cde->abde` (Keras EinsumDense, attention projections): operand 1's channels are d
/// and e, axes 1 and 2. An operand with an ellipsis or a repeated label is quantized per
/// tensor.
fn einsum_axes(reader: &NodeDef, slot: usize, rank: usize) -> Option<Vec<usize>> {
    let eq: String =
        reader.attr_opt_str("equation")?.chars().filter(|c| !c.is_whitespace()).collect();
    let (lhs, out) = match eq.split_once("->") {
        Some((l, o)) => (l.to_string(), Some(o.to_string())),
        None => (eq.clone(), None),
    };
    let operands: Vec<&str> = lhs.split(',').collect();
    if operands.len() != 2 {
        return None;
    }
    let me = operands[slot];
    let other = operands[1 - slot];
    let out: String = match out {
        Some(o) => o,
        None => {
            // Implicit output: the labels that appear once, in alphabetical order.
            let mut once: Vec<char> =
                lhs.chars().filter(|c| c.is_alphabetic() && lhs.matches(*c).count() == 1).collect();
            once.sort_unstable();
            once.into_iter().collect()
        }
    };
    let labels: Vec<char> = me.chars().collect();
    let distinct = labels.iter().collect::<std::collections::HashSet<_>>().len();
    if me.contains('.') || labels.len() != rank || distinct != labels.len() {
        return Some(Vec::new());
    }
    Some(
        labels
            .iter()
            .enumerate()
            .filter(|(_, c)| out.contains(**c) && !other.contains(**c))
            .map(|(i, _)| i)
            .collect(),
    )
}

/// How a tensor's elements group into channels: `outer × channels × inner` in row-major
/// order, the channel of a flat index being `(i / inner) % channels`. Channel axes must be
/// contiguous; per tensor is `channels == 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Layout {
    pub outer: usize,
    pub channels: usize,
    pub inner: usize,
}

impl Layout {
    pub(crate) fn per_tensor(n: usize) -> Layout {
        Layout { outer: 1, channels: 1, inner: n }
    }

    /// The layout of `axes` of `shape`, or `None` if the axes are not contiguous.
    pub(crate) fn of(shape: &[i64], axes: &[usize]) -> Option<Layout> {
        let n: usize = shape.iter().map(|d| *d as usize).product();
        let (Some(&a0), Some(&a1)) = (axes.first(), axes.last()) else {
            return Some(Layout::per_tensor(n));
        };
        if axes.windows(2).any(|w| w[1] != w[0] + 1) || a1 >= shape.len() {
            return None;
        }
        let prod = |s: &[i64]| s.iter().map(|d| *d as usize).product::<usize>();
        Some(Layout {
            outer: prod(&shape[..a0]),
            channels: prod(&shape[a0..=a1]),
            inner: prod(&shape[a1 + 1..]),
        })
    }

    /// The shape of a scale tensor that broadcasts against the weight in `Mul`: the dims from
    /// the first channel axis on, with 1 for the trailing non-channel axes; `[]` per tensor.
    pub(crate) fn scale_shape(shape: &[i64], axes: &[usize]) -> Vec<i64> {
        match (axes.first(), axes.last()) {
            (Some(&a0), Some(&a1)) => {
                let mut s = shape[a0..=a1].to_vec();
                s.resize(shape.len() - a0, 1);
                s
            }
            _ => Vec::new(),
        }
    }
}
