//! Batch-norm folding: a per-channel affine map after a convolution or matrix product goes
//! into the weights and one `BiasAdd`.
//!
//! The producer chain is `conv(x, W)`, optionally followed by `BatchToSpaceND` (atrous
//! convolution) and by a constant bias (`BiasAdd`, or `Add`/`AddV2` of a per-channel
//! constant), each read only by the next. `conv` is `Conv2D`, `DepthwiseConv2dNative`,
//! `MatMul` (either `transpose_b`), `Conv2DBackpropInput` or `Conv3D` with a constant filter.
//! On top of such a chain:
//!
//! - `FusedBatchNorm`/`V2`/`V3` with `is_training=false` and constant scale, offset, mean and
//!   variance (no other output read), and `BatchNormWithGlobalNormalization`:
//!   `s = γ/√(σ²+ε)`, `W' = W·s` per output channel, `b' = β + (bias − μ)·s`; the batch-norm
//!   node becomes `BiasAdd(conv', b')` under its own name;
//! - `Mul` by a per-channel (or scalar) constant: scaled weights, and the bias scaled too;
//! - `Add`/`AddV2`/`Sub` of a per-channel constant: merged into the chain's bias, or the node
//!   becomes that `BiasAdd` (decomposed batch norm is `Mul` then `Add` once constants are
//!   folded).
//!
//! Weights are rewritten in place when the conv is their only reader (new `<conv>/bn_weights`
//! otherwise); the offset goes into the batch norm's own offset constant when nothing else reads
//! it (new `<node>/bn_offset` otherwise). Products are computed in `f64` and rounded once.

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::{attr_value, AttrValue, NodeDef};
use tf_tensor::{dt, dtype, Data, Tensor};

use crate::eval::Vals;
use crate::{const_input, const_node, control_inputs, encode_tensor, Ctx, FoldError, Pass};

#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Conv2D,
    Depthwise,
    MatMul { transpose_b: bool },
    BackpropInput,
    Conv3D,
}

/// A conv or matmul with constant weights, and what follows it up to the folded node.
struct Chain {
    conv: NodeId,
    kind: Kind,
    w_input: usize,
    w_node: NodeId,
    w: Tensor,
    /// The bias node (BiasAdd/Add/AddV2), its constant and that constant's values.
    bias: Option<(NodeId, NodeId, Vec<f64>)>,
    /// The tensor the new BiasAdd reads: the conv's output or the BatchToSpaceND's.
    top: String,
    channels: usize,
    /// Channel axis counted from the end of the output shape.
    ch_from_end: usize,
    out_rank: usize,
    nchw: bool,
    dtype: i32,
}

/// Runs batch-norm folding once; returns the number of nodes folded.
pub(crate) fn run(g: &mut Graph, ctx: &mut Ctx) -> Result<usize, FoldError> {
    let mut total = 0;
    for (op, what) in [
        ("FusedBatchNorm", "fused_batch_norm"),
        ("FusedBatchNormV2", "fused_batch_norm"),
        ("FusedBatchNormV3", "fused_batch_norm"),
        ("BatchNormWithGlobalNormalization", "global_normalization"),
        ("Mul", "mul"),
        ("Add", "add"),
        ("AddV2", "add"),
        ("Sub", "add"),
    ] {
        let ids: Vec<NodeId> = g.nodes().filter(|(_, n)| n.op == op).map(|(id, _)| id).collect();
        let mut n = 0;
        for id in ids {
            if !g.is_live(id) || ctx.keep.contains(&g.node(id).name) {
                continue;
            }
            let done = match op {
                "Mul" => fold_mul(g, ctx, id),
                "Add" | "AddV2" | "Sub" => fold_add(g, ctx, id),
                _ => fold_batch_norm(g, ctx, id),
            };
            n += done as usize;
        }
        ctx.count(Pass::BatchNorm, what, n);
        total += n;
    }
    Ok(total)
}

/// Whether `reader` is the only reader of `id` (one data edge, no control edge).
fn sole_reader(g: &Graph, id: NodeId, reader: NodeId) -> bool {
    let cons = g.consumers();
    cons.control_of(id).is_empty()
        && cons.data_out_degree(id) == 1
        && cons.of_output(id, 0).next().is_some_and(|(c, _)| c == reader)
}

fn floats(t: &Tensor) -> Option<Vec<f64>> {
    match Vals::of(t).ok()? {
        Vals::F(v) => Some(v),
        _ => None,
    }
}

fn producer<'a>(g: &'a Graph, s: &str) -> Option<(NodeId, &'a NodeDef)> {
    let Input::Data { node, port: 0 } = Input::parse(s) else { return None };
    let id = g.id(node)?;
    Some((id, g.node(id)))
}

/// Values of a constant that broadcasts along the channel axis only, as one per channel.
fn per_channel(t: &Tensor, c: usize, out_rank: usize, ch_from_end: usize) -> Option<Vec<f64>> {
    let v = floats(t)?;
    if t.shape.len() > out_rank {
        return None;
    }
    let ch_pos = out_rank - 1 - ch_from_end;
    let off = out_rank - t.shape.len();
    for (i, &d) in t.shape.iter().enumerate() {
        if d != 1 && !(off + i == ch_pos && d as usize == c) {
            return None;
        }
    }
    match v.len() {
        1 => Some(vec![v[0]; c]),
        n if n == c => Some(v),
        _ => None,
    }
}

fn find_chain(g: &Graph, ctx: &Ctx, x: &str, reader: NodeId) -> Option<Chain> {
    let (mut id, mut node) = producer(g, x)?;
    let mut reader = reader;
    let mut bias: Option<(NodeId, String, NodeId, Tensor)> = None;
    if matches!(node.op.as_str(), "BiasAdd" | "Add" | "AddV2")
        && sole_reader(g, id, reader)
        && !ctx.protected.contains(&node.name)
        && control_inputs(node).is_empty()
    {
        let slots: &[(usize, usize)] =
            if node.op == "BiasAdd" { &[(1, 0)] } else { &[(1, 0), (0, 1)] };
        for &(ci, xi) in slots {
            let (Some(c), Some(other)) = (node.input.get(ci), node.input.get(xi)) else { continue };
            if let Some((cid, t)) = const_input(g, c) {
                if const_input(g, other).is_none() {
                    bias = Some((id, other.clone(), cid, t));
                    break;
                }
            }
        }
        if let Some((bid, next, _, _)) = &bias {
            reader = *bid;
            (id, node) = producer(g, next)?;
        }
    }
    let mut top: Option<String> = None;
    if node.op == "BatchToSpaceND"
        && sole_reader(g, id, reader)
        && !ctx.protected.contains(&node.name)
    {
        reader = id;
        top = Some(node.name.clone());
        (id, node) = producer(g, node.input.first()?)?;
    }
    let kind = match node.op.as_str() {
        "Conv2D" => Kind::Conv2D,
        "DepthwiseConv2dNative" => Kind::Depthwise,
        "MatMul" => {
            Kind::MatMul { transpose_b: node.attr_opt_bool("transpose_b").unwrap_or(false) }
        }
        "Conv2DBackpropInput" => Kind::BackpropInput,
        "Conv3D" => Kind::Conv3D,
        _ => return None,
    };
    if !sole_reader(g, id, reader) || ctx.protected.contains(&node.name) {
        return None;
    }
    let w_input = 1;
    let (w_node, w) = const_input(g, node.input.get(w_input)?)?;
    if !matches!(dtype::base(w.dtype), dt::FLOAT | dt::DOUBLE | dt::HALF | dt::BFLOAT16) {
        return None;
    }
    let fmt = node.attr_opt_str("data_format").unwrap_or("");
    let nchw = fmt.starts_with("NC");
    let s = &w.shape;
    let (channels, out_rank, ch_from_end) = match kind {
        Kind::Conv2D if s.len() == 4 => (s[3], 4, if nchw { 2 } else { 0 }),
        Kind::Depthwise if s.len() == 4 => (s[2] * s[3], 4, if nchw { 2 } else { 0 }),
        Kind::BackpropInput if s.len() == 4 => (s[2], 4, if nchw { 2 } else { 0 }),
        Kind::Conv3D if s.len() == 5 => (s[4], 5, if nchw { 3 } else { 0 }),
        Kind::MatMul { transpose_b } if s.len() == 2 => {
            (if transpose_b { s[0] } else { s[1] }, 2, 0)
        }
        _ => return None,
    };
    let channels = channels as usize;
    let bias = match bias {
        None => None,
        Some((bid, _, cid, t)) => {
            let bnode = g.node(bid);
            if bnode.op == "BiasAdd" {
                let bf = bnode.attr_opt_str("data_format").unwrap_or("NHWC").starts_with("NC");
                if bf != nchw || t.shape.len() != 1 {
                    return None;
                }
            }
            let v = per_channel(&t, channels, out_rank, ch_from_end)?;
            Some((bid, cid, v))
        }
    };
    Some(Chain {
        conv: id,
        kind,
        w_input,
        w_node,
        w,
        bias,
        top: top.unwrap_or_else(|| node.name.clone()),
        channels,
        ch_from_end,
        out_rank,
        nchw,
        dtype: node.attr_opt_type("T").map_or(dt::FLOAT, |t| t as i32),
    })
}

/// `W` with channel `c` of every element multiplied by `scale[c]`.
fn scale_weights(w: &Tensor, kind: Kind, scale: &[f64]) -> Option<Tensor> {
    let s = &w.shape;
    let c = scale.len();
    // Element i belongs to channel (i / div) % c.
    let div = match kind {
        Kind::Conv2D | Kind::Conv3D | Kind::Depthwise | Kind::MatMul { transpose_b: false } => 1,
        Kind::MatMul { transpose_b: true } => s[1] as usize,
        Kind::BackpropInput => s[3] as usize,
    };
    if c == 0 || div == 0 {
        return None;
    }
    let channel = |i: usize| (i / div) % c;
    if dtype::base(w.dtype) == dt::FLOAT {
        let raw = w.raw()?;
        let mut out = vec![0u8; raw.len()];
        // Elements come in runs of `div` sharing a channel; channels cycle through `c`. Chunks
        // handed to threads start at a run boundary (and at channel 0 when `div` is 1).
        let run_bytes = 4 * div;
        let scale_runs = |o: &mut [u8], x: &[u8], first_run: usize| {
            if div == 1 {
                for (o, x) in o.chunks_mut(4 * c).zip(x.chunks(4 * c)) {
                    for ((o, x), s) in o.chunks_exact_mut(4).zip(x.chunks_exact(4)).zip(scale) {
                        let v = f32::from_le_bytes([x[0], x[1], x[2], x[3]]) as f64;
                        o.copy_from_slice(&((v * s) as f32).to_le_bytes());
                    }
                }
                return;
            }
            let mut ch = first_run % c;
            for (o, x) in o.chunks_mut(run_bytes).zip(x.chunks(run_bytes)) {
                let s = scale[ch];
                for (o, x) in o.chunks_exact_mut(4).zip(x.chunks_exact(4)) {
                    let v = f32::from_le_bytes([x[0], x[1], x[2], x[3]]) as f64;
                    o.copy_from_slice(&((v * s) as f32).to_le_bytes());
                }
                ch += 1;
                if ch == c {
                    ch = 0;
                }
            }
        };
        // Large weights are scaled on a few threads (the work is memory-bound).
        let threads = if raw.len() >= 4 << 20 {
            std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
        } else {
            1
        };
        let unit = if div == 1 { 4 * c } else { run_bytes };
        let per = (raw.len() / unit).div_ceil(threads).max(1) * unit;
        std::thread::scope(|s| {
            for (i, (o, x)) in out.chunks_mut(per).zip(raw.chunks(per)).enumerate() {
                s.spawn(move || scale_runs(o, x, i * per / run_bytes));
            }
        });
        return Some(Tensor {
            dtype: dt::FLOAT,
            shape: w.shape.clone(),
            data: Data::Raw(out.into()),
        });
    }
    let v = floats(w)?;
    let scaled: Vec<f64> = v.iter().enumerate().map(|(i, x)| x * scale[channel(i)]).collect();
    Vals::F(scaled).into_tensor(w.dtype, &w.shape).ok()
}

fn set_value(g: &mut Graph, id: NodeId, t: &Tensor) {
    g.node_mut(id).attr.insert(
        "value".into(),
        AttrValue { value: Some(attr_value::Value::Tensor(Box::new(encode_tensor(t)))) },
    );
}

/// A constant with `t` as value: `reuse` rewritten in place when `reader` is its only reader
/// and its dtype and shape fit, else a new node named after `base`. Returns its name.
fn put_const(
    g: &mut Graph,
    ctx: &Ctx,
    reuse: Option<(NodeId, NodeId)>,
    base: &str,
    t: &Tensor,
) -> Option<String> {
    if let Some((id, reader)) = reuse {
        let n = g.node(id);
        let same = crate::const_value(n).is_some_and(|v| v.dtype == t.dtype && v.shape == t.shape);
        if same && sole_reader(g, id, reader) && !ctx.protected.contains(&n.name) {
            set_value(g, id, t);
            return Some(g.node(id).name.clone());
        }
    }
    let name = g.unique_name(base);
    let device = String::new();
    g.add_node(const_node(name.clone(), t, &[], &device)).ok()?;
    Some(name)
}

/// Rewrites the chain's weights with `scale`, and turns `target` into
/// `BiasAdd(top, offset)` (or, with no offset, makes `target`'s readers read `top`).
#[allow(clippy::too_many_arguments)] // one call per pattern; a struct would only rename them
fn apply(
    g: &mut Graph,
    ctx: &Ctx,
    chain: &Chain,
    scale: Option<&[f64]>,
    offset: Option<Vec<f64>>,
    target: NodeId,
    offset_hint: Option<NodeId>,
) -> bool {
    let conv_name = g.node(chain.conv).name.clone();
    let new_w = match scale {
        Some(s) => match scale_weights(&chain.w, chain.kind, s) {
            Some(w) => Some(w),
            None => return false,
        },
        None => None,
    };
    let off_t = match &offset {
        Some(o) => match Vals::F(o.clone()).into_tensor(chain.dtype, &[chain.channels as i64]) {
            Ok(t) => Some(t),
            Err(_) => return false,
        },
        None => None,
    };
    if let Some(w) = new_w {
        let Some(wname) = put_const(
            g,
            ctx,
            Some((chain.w_node, chain.conv)),
            &format!("{conv_name}/bn_weights"),
            &w,
        ) else {
            return false;
        };
        g.set_input(chain.conv, chain.w_input, wname);
    }
    let target_name = g.node(target).name.clone();
    match off_t {
        Some(t) => {
            let reuse = offset_hint.map(|h| (h, target));
            let Some(oname) = put_const(g, ctx, reuse, &format!("{target_name}/bn_offset"), &t)
            else {
                return false;
            };
            let ctl: Vec<String> =
                g.node(target).input.iter().filter(|s| s.starts_with('^')).cloned().collect();
            g.set_inputs(target, [chain.top.clone(), oname].into_iter().chain(ctl).collect());
            let mut n = g.node_mut(target);
            n.op = "BiasAdd".into();
            n.attr.clear();
            n.attr.insert(
                "T".into(),
                AttrValue { value: Some(attr_value::Value::Type(chain.dtype)) },
            );
            let fmt = if chain.nchw { "NCHW" } else { "NHWC" };
            n.attr.insert(
                "data_format".into(),
                AttrValue { value: Some(attr_value::Value::S(fmt.into())) },
            );
        }
        None => {
            let ctl = control_inputs(g.node(target));
            if ctx.protected.contains(&target_name) || !ctl.is_empty() {
                g.set_inputs(
                    target,
                    std::iter::once(chain.top.clone())
                        .chain(ctl.iter().map(|c| format!("^{c}")))
                        .collect(),
                );
                let mut n = g.node_mut(target);
                n.op = "Identity".into();
                n.attr.clear();
                n.attr.insert(
                    "T".into(),
                    AttrValue { value: Some(attr_value::Value::Type(chain.dtype)) },
                );
            } else {
                g.rewire(
                    &TensorName { node: target_name.clone(), port: 0 },
                    &TensorName::parse(&chain.top),
                );
                g.replace_control_input(&target_name, &TensorName::parse(&chain.top).node);
                g.set_inputs(target, Vec::new());
            }
        }
    }
    true
}

fn fold_batch_norm(g: &mut Graph, ctx: &mut Ctx, bn: NodeId) -> bool {
    let node = g.node(bn).clone();
    let global = node.op == "BatchNormWithGlobalNormalization";
    if !global && node.attr_opt_bool("is_training").unwrap_or(true) {
        return false;
    }
    let arity = if global {
        1
    } else if node.op == "FusedBatchNormV3" {
        6
    } else {
        5
    };
    if (1..arity).any(|k| !g.consumers().of_output(bn, k).is_empty()) {
        return false;
    }
    let ins: Vec<&String> = crate::data_inputs(&node).collect();
    if ins.len() != 5 {
        return false;
    }
    // (x, gamma, beta, mean, var) in our order.
    let (x, gamma_s, beta_s, mean_s, var_s) = if global {
        (ins[0], ins[4], ins[3], ins[1], ins[2])
    } else {
        (ins[0], ins[1], ins[2], ins[3], ins[4])
    };
    let get = |s: &str| const_input(g, s).and_then(|(id, t)| Some((id, floats(&t)?)));
    let (Some((_, gamma)), Some((beta_id, beta)), Some((_, mean)), Some((_, var))) =
        (get(gamma_s), get(beta_s), get(mean_s), get(var_s))
    else {
        return false;
    };
    let c = mean.len();
    if c == 0 || var.len() != c || beta.len() != c || gamma.len() != c {
        return false;
    }
    let Some(chain) = find_chain(g, ctx, x, bn) else { return false };
    if chain.channels != c || matches!(chain.kind, Kind::MatMul { .. }) && !global {
        return false;
    }
    let bn_nchw = node.attr_opt_str("data_format").unwrap_or("NHWC").starts_with("NC");
    if !global && bn_nchw != chain.nchw {
        return false;
    }
    let (eps, use_gamma) = if global {
        (
            node.attr_opt_f32("variance_epsilon").unwrap_or(0.0) as f64,
            node.attr_opt_bool("scale_after_normalization").unwrap_or(true),
        )
    } else {
        (node.attr_opt_f32("epsilon").unwrap_or(1e-4) as f64, true)
    };
    let bias = chain.bias.as_ref().map(|(_, _, v)| v.clone()).unwrap_or_else(|| vec![0.0; c]);
    let scale: Vec<f64> =
        (0..c).map(|i| if use_gamma { gamma[i] } else { 1.0 } / (var[i] + eps).sqrt()).collect();
    let offset: Vec<f64> = (0..c).map(|i| beta[i] + (bias[i] - mean[i]) * scale[i]).collect();
    apply(g, ctx, &chain, Some(&scale), Some(offset), bn, Some(beta_id))
}

fn fold_mul(g: &mut Graph, ctx: &mut Ctx, m: NodeId) -> bool {
    let node = g.node(m).clone();
    for (ci, xi) in [(1usize, 0usize), (0, 1)] {
        let (Some(cs), Some(xs)) = (node.input.get(ci), node.input.get(xi)) else { return false };
        let Some((_, ct)) = const_input(g, cs) else { continue };
        let Some(chain) = find_chain(g, ctx, xs, m) else { continue };
        let Some(scale) = per_channel(&ct, chain.channels, chain.out_rank, chain.ch_from_end)
        else {
            continue;
        };
        let offset =
            chain.bias.as_ref().map(|(_, _, b)| b.iter().zip(&scale).map(|(b, s)| b * s).collect());
        return apply(g, ctx, &chain, Some(&scale), offset, m, None);
    }
    false
}

fn fold_add(g: &mut Graph, ctx: &mut Ctx, a: NodeId) -> bool {
    let node = g.node(a).clone();
    let sub = node.op == "Sub";
    let slots: &[(usize, usize)] = if sub { &[(1, 0)] } else { &[(1, 0), (0, 1)] };
    for &(ci, xi) in slots {
        let (Some(cs), Some(xs)) = (node.input.get(ci), node.input.get(xi)) else { return false };
        let Some((_, ct)) = const_input(g, cs) else { continue };
        if const_input(g, xs).is_some() {
            continue;
        }
        let Some(chain) = find_chain(g, ctx, xs, a) else { continue };
        let Some(mut add) = per_channel(&ct, chain.channels, chain.out_rank, chain.ch_from_end)
        else {
            continue;
        };
        if sub {
            add.iter_mut().for_each(|v| *v = -*v);
        }
        let offset: Vec<f64> = match &chain.bias {
            Some((_, _, b)) => b.iter().zip(&add).map(|(b, c)| b + c).collect(),
            None => add,
        };
        // The Add's own constant can hold the new offset if the shapes agree.
        let hint = const_input(g, cs).map(|(id, _)| id);
        return apply(g, ctx, &chain, None, Some(offset), a, hint);
    }
    false
}
