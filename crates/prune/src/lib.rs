//! tf-prune: one-shot magnitude pruning of frozen TensorFlow graphs, and structured removal of
//! dead channels.
//!
//! - [`prune_graph`] zeroes the smallest weights of every weight `Const` that feeds a Conv2D,
//!   DepthwiseConv2dNative, MatMul, BatchMatMul(V2/V3), Einsum or Conv2DBackpropInput (embedding tables
//!   of Gather ops with `embeddings`), per tensor with tfmot's rule `k = max(round(N·(1−S)), 1)`
//!   kept and ties broken by position so that exactly `k` survive, or with one global
//!   threshold, per block, or N:M along the input dimension ([`mask`]).
//! - [`channels`] removes output channels (conv) and neurons (dense) whose weights are all zero,
//!   with the matching input channels of the next layer, where that is exact; with
//!   `channel_sparsity` the lowest-L1 channels of each layer are zeroed and removed outright.
//! - [`flops`] counts Conv2D/Depthwise/MatMul FLOPs per example for the report.
//! - Constants no rule touched stay the very same `TensorProto`s (not decoded, not re-encoded).

#![deny(missing_docs)]

pub mod channels;
pub mod flops;
pub mod mask;

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io::Write;

use regex::Regex;
use serde::Serialize;
use tf_graph::{Graph, Input, NodeId};
use tf_ops::is_pass_through;
use tf_proto::tensorflow::{GraphDef, NodeDef};
use tf_tensor::{dt, Tensor};

/// What to prune, validated (see the tool's flags).
#[derive(Debug, Clone, Default)]
pub struct PruneConfig {
    /// Target sparsity in [0, 1); `None` prunes nothing by magnitude (e.g. `--channels` alone).
    pub sparsity: Option<f64>,
    /// One threshold across all selected tensors instead of one per tensor.
    pub global: bool,
    /// Block pooling (rows, cols) over the matrix view of each tensor.
    pub block: Option<(usize, usize)>,
    /// N:M sparsity along the input dimension (n kept of every m).
    pub n_m: Option<(usize, usize)>,
    /// Tensors with fewer elements are left alone.
    pub min_elements: u64,
    /// Only tensors whose Const or consumer name matches.
    pub include: Option<Regex>,
    /// Not tensors whose Const or consumer name matches.
    pub exclude: Option<Regex>,
    /// Also prune embedding tables (params of Gather/GatherV2).
    pub embeddings: bool,
    /// Remove all-zero output channels/neurons and the matching inputs of the next layer.
    pub channels: bool,
    /// Before that, zero this fraction of each Conv2D/MatMul layer's output channels, those
    /// with the lowest L1 norm (k = max(round(C·(1−F)), 1) kept, ties by index).
    pub channel_sparsity: Option<f64>,
}

/// A bad flag value, found before the graph is read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// Sparsity outside [0, 1).
    #[error("--sparsity {0}: must be in [0, 1)")]
    Sparsity(String),
    /// Channel sparsity outside [0, 1).
    #[error("--channel-sparsity {0}: must be in [0, 1)")]
    ChannelSparsity(String),
    /// Malformed `RxC`.
    #[error("--block '{0}': expected RxC with positive integers, e.g. 1x4")]
    Block(String),
    /// Malformed `N:M`.
    #[error("--n-m '{0}': expected N:M with 0 < N < M, e.g. 2:4")]
    NM(String),
    /// Bad regular expression.
    #[error("--{flag} '{pattern}': not a valid regular expression ({reason})")]
    Regex {
        /// include or exclude.
        flag: &'static str,
        /// The pattern given.
        pattern: String,
        /// The regex error.
        reason: String,
    },
    /// Nothing to do or incompatible flags.
    #[error("{0}")]
    Usage(String),
}

/// Parses a sparsity in [0, 1).
pub fn parse_sparsity(s: &str) -> Result<f64, ConfigError> {
    match s.trim().parse::<f64>() {
        Ok(v) if (0.0..1.0).contains(&v) => Ok(v),
        _ => Err(ConfigError::Sparsity(s.into())),
    }
}

/// Parses a channel sparsity in [0, 1).
pub fn parse_channel_sparsity(s: &str) -> Result<f64, ConfigError> {
    parse_sparsity(s).map_err(|_| ConfigError::ChannelSparsity(s.into()))
}

/// Parses `RxC` (also `R,C`).
pub fn parse_block(s: &str) -> Result<(usize, usize), ConfigError> {
    let (r, c) = s.split_once(['x', 'X', ',']).ok_or_else(|| ConfigError::Block(s.into()))?;
    match (r.trim().parse::<usize>(), c.trim().parse::<usize>()) {
        (Ok(r), Ok(c)) if r > 0 && c > 0 => Ok((r, c)),
        _ => Err(ConfigError::Block(s.into())),
    }
}

/// Parses `N:M` with 0 < N < M.
pub fn parse_n_m(s: &str) -> Result<(usize, usize), ConfigError> {
    let (n, m) = s.split_once(':').ok_or_else(|| ConfigError::NM(s.into()))?;
    match (n.trim().parse::<usize>(), m.trim().parse::<usize>()) {
        (Ok(n), Ok(m)) if n > 0 && n < m => Ok((n, m)),
        _ => Err(ConfigError::NM(s.into())),
    }
}

/// Compiles an `--include`/`--exclude` pattern.
pub fn parse_regex(flag: &'static str, s: &str) -> Result<Regex, ConfigError> {
    Regex::new(s).map_err(|e| ConfigError::Regex {
        flag,
        pattern: s.into(),
        reason: e.to_string().lines().last().unwrap_or("").trim().to_string(),
    })
}

/// A failure while pruning, naming the node.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PruneError {
    /// The GraphDef is not a valid graph.
    #[error(transparent)]
    Graph(#[from] tf_graph::GraphError),
    /// A weight constant could not be decoded or encoded.
    #[error("node '{node}': {reason}")]
    Tensor {
        /// The Const.
        node: String,
        /// Why.
        reason: String,
    },
}

/// What happened to one weight tensor.
#[derive(Debug, Clone, Serialize)]
pub struct TensorReport {
    /// The Const node.
    pub name: String,
    /// The first op reading it (name).
    pub consumer: String,
    /// The consumer's op type.
    pub op: String,
    /// Shape before channel removal.
    pub shape: Vec<i64>,
    /// Elements before.
    pub params: u64,
    /// Zeros before.
    pub zeros_before: u64,
    /// Zeros after magnitude pruning.
    pub zeros_after: u64,
    /// zeros_before / params.
    pub sparsity_before: f64,
    /// zeros_after / params.
    pub sparsity_after: f64,
    /// Why it was left alone, if it was.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub skipped: Option<String>,
}

/// The report of a run, under `changes.prune` in `--report`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PruneReport {
    /// `per-tensor`, `global`, `block RxC`, `N:M` or `none`.
    pub mode: String,
    /// The target sparsity.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub target_sparsity: Option<f64>,
    /// Every weight tensor found.
    pub tensors: Vec<TensorReport>,
    /// Weight parameters (all weight tensors found) before.
    pub params_before: u64,
    /// Weight parameters after channel removal.
    pub params_after: u64,
    /// Non-zero weight parameters before.
    pub nonzero_before: u64,
    /// Non-zero weight parameters after.
    pub nonzero_after: u64,
    /// FLOPs (2·MACs of Conv2D, DepthwiseConv2dNative, MatMul) per example before.
    pub flops_before: flops::Flops,
    /// FLOPs after (lower only when `channels` removed something).
    pub flops_after: flops::Flops,
    /// Channel surgery, with `channels`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub channels: Option<channels::ChannelReport>,
    /// gzip size of the whole GraphDef before (set by the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_bytes_before: Option<u64>,
    /// gzip size of the whole GraphDef after (set by the caller).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gzip_bytes_after: Option<u64>,
    /// Things the user should know.
    pub warnings: Vec<String>,
}

/// gzip size (default level) of a GraphDef's binary encoding.
pub fn gzip_size(g: &GraphDef) -> u64 {
    let bytes = prost::Message::encode_to_vec(g);
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&bytes).expect("writing to a Vec cannot fail");
    enc.finish().map(|v| v.len() as u64).unwrap_or(0)
}

/// Follows Identity-like nodes from a data input back to a Const; returns the Const and the
/// pass-throughs crossed.
pub(crate) fn resolve_const(g: &Graph, input: &str) -> Option<(NodeId, Vec<NodeId>)> {
    let mut path = Vec::new();
    let mut cur = input.to_string();
    for _ in 0..64 {
        let Input::Data { node, port: 0 } = Input::parse(&cur) else { return None };
        let id = g.id(node)?;
        let n = g.node(id);
        if n.op == "Const" {
            return Some((id, path));
        }
        if !is_pass_through(&n.op) {
            return None;
        }
        path.push(id);
        cur = n.input.first()?.clone();
    }
    None
}

/// A weight use: the op reading it, its input index and the input ("reduction") axis.
#[derive(Debug, Clone)]
pub(crate) struct WeightUse {
    /// The reader, when it is a node of the graph (not of a loop body).
    pub consumer: Option<NodeId>,
    /// Its name (`body_function/node` inside a loop body).
    pub name: String,
    /// Its op.
    pub op: String,
    pub axis: usize,
}

/// The reduction axis of a weight input, given the weight's rank.
type AxisOf = Box<dyn Fn(usize) -> usize>;

/// Weight inputs of an op: (input index, reduction axis given the rank).
fn weight_inputs(n: &NodeDef, embeddings: bool) -> Vec<(usize, AxisOf)> {
    let b = |k: &str| n.attr_opt_bool(k).unwrap_or(false);
    match n.op.as_str() {
        "Conv2D" | "DepthwiseConv2dNative" | "Conv2DBackpropInput" => {
            vec![(1, Box::new(|_| 2))]
        }
        "MatMul" => {
            let (ta, tb) = (b("transpose_a"), b("transpose_b"));
            vec![(1, Box::new(move |_| usize::from(tb))), (0, Box::new(move |_| usize::from(!ta)))]
        }
        "BatchMatMul" | "BatchMatMulV2" | "BatchMatMulV3" => {
            let (ax, ay) = (b("adj_x"), b("adj_y"));
            vec![
                (
                    1,
                    Box::new(
                        move |r: usize| if ay { r.saturating_sub(1) } else { r.saturating_sub(2) },
                    ),
                ),
                (
                    0,
                    Box::new(
                        move |r: usize| if ax { r.saturating_sub(2) } else { r.saturating_sub(1) },
                    ),
                ),
            ]
        }
        "Einsum" => {
            // The reduction axis of a constant operand is its last subscript the output lacks
            // (`abc,cde->abde`: c, axis 0); equations with an ellipsis are not handled.
            let eq = n.attr_opt_str("equation").unwrap_or("").replace(' ', "");
            let Some((ins, out)) = eq.split_once("->") else { return Vec::new() };
            if eq.contains("...") {
                return Vec::new();
            }
            let out = out.to_string();
            ins.split(',')
                .enumerate()
                .take(2)
                .map(|(i, sub)| {
                    let axis = sub.bytes().rposition(|c| !out.as_bytes().contains(&c)).unwrap_or(0);
                    (i, Box::new(move |_| axis) as AxisOf)
                })
                .collect()
        }
        "Gather" | "GatherV2" | "ResourceGather" if embeddings => {
            vec![(0, Box::new(|r: usize| r.saturating_sub(1)))]
        }
        _ => Vec::new(),
    }
}

/// Every weight Const of the graph, in node order, with its first use.
pub(crate) fn find_weights(g: &Graph, embeddings: bool) -> Vec<(NodeId, WeightUse)> {
    let mut seen = HashSet::new();
    let mut out = Vec::new();
    for (id, n) in g.nodes() {
        for (i, axis) in weight_inputs(n, embeddings) {
            let Some(input) = n.input.get(i) else { continue };
            let Some((c, _)) = resolve_const(g, input) else { continue };
            if !seen.insert(c) {
                continue;
            }
            let rank = const_shape(g.node(c)).map_or(0, |s| s.len());
            let (name, op) = (n.name.clone(), n.op.clone());
            out.push((c, WeightUse { consumer: Some(id), name, op, axis: axis(rank) }));
        }
    }
    // Weights a TF2 while loop passes into its body (the kernels of an LSTM or GRU): the body
    // reads them as function arguments, the loop node gets them as the matching inputs.
    for (_, n) in g.nodes() {
        if !matches!(n.op.as_str(), "While" | "StatelessWhile") {
            continue;
        }
        let Some(body) = n.attr.get("body").and_then(|a| a.as_func()).map(|f| &f.name) else {
            continue;
        };
        let Some(f) = g.function(body) else { continue };
        let Some(sig) = f.signature.as_ref() else { continue };
        for inner in &f.node_def {
            for (i, axis) in weight_inputs(inner, embeddings) {
                let Some(arg) = inner.input.get(i) else { continue };
                let Some(k) = sig.input_arg.iter().position(|a| &a.name == arg) else { continue };
                let Some(input) = n.input.get(k) else { continue };
                let Some((c, _)) = resolve_const(g, input) else { continue };
                if !seen.insert(c) {
                    continue;
                }
                let rank = const_shape(g.node(c)).map_or(0, |s| s.len());
                out.push((
                    c,
                    WeightUse {
                        consumer: None,
                        name: format!("{body}/{}", inner.name),
                        op: inner.op.clone(),
                        axis: axis(rank),
                    },
                ));
            }
        }
    }
    out.sort_by_key(|(c, _)| *c);
    out
}

/// The shape of a Const's value.
pub(crate) fn const_shape(n: &NodeDef) -> Option<Vec<i64>> {
    let t = n.attr_opt_tensor("value")?;
    Some(t.tensor_shape.as_ref()?.dim.iter().map(|d| d.size).collect())
}

/// Decodes a float32 Const.
pub(crate) fn const_f32(n: &NodeDef) -> Result<(Vec<i64>, Vec<f32>), PruneError> {
    let err = |reason: String| PruneError::Tensor { node: n.name.clone(), reason };
    let p = n.attr_opt_tensor("value").ok_or_else(|| err("no tensor 'value'".into()))?;
    let t = Tensor::from_proto(p).map_err(|e| err(e.to_string()))?;
    let v = t.values::<f32>().map_err(|e| err(e.to_string()))?;
    // Channel counts, matrix views and loops are sized by the dimensions: an empty tensor may
    // claim any of them (shape [2^40, 0]), so its other dimensions are bounded here.
    let nonzero =
        t.shape.iter().filter(|&&d| d > 0).try_fold(1u64, |a, &d| a.checked_mul(d as u64));
    if v.is_empty() && nonzero.is_none_or(|n| n > MAX_EMPTY_EXTENT) {
        return Err(err(format!(
            "empty tensor of shape {} claims more than {MAX_EMPTY_EXTENT} rows or channels",
            tf_tensor::dims_to_string(&t.shape)
        )));
    }
    Ok((t.shape, v))
}

/// The most an empty weight's non-zero dimensions may multiply to.
const MAX_EMPTY_EXTENT: u64 = 1 << 20;

/// Replaces a float32 Const's value.
pub(crate) fn set_const_f32(n: &mut NodeDef, shape: &[i64], v: &[f32]) -> Result<(), PruneError> {
    let t = Tensor::from_values(dt::FLOAT, shape, v)
        .map_err(|e| PruneError::Tensor { node: n.name.clone(), reason: e.to_string() })?;
    n.set_attr("value", t.to_proto());
    Ok(())
}

fn is_f32_const(n: &NodeDef) -> bool {
    n.attr_opt_tensor("value").is_some_and(|t| t.dtype == dt::FLOAT)
}

struct Selected {
    id: NodeId,
    shape: Vec<i64>,
    values: Vec<f32>,
    axis: usize,
    out_axis: Option<usize>,
    report: usize,
}

/// Zeroes the output channels (along `axis`) with the lowest L1 norm, keeping
/// `max(round(C·(1−f)), 1)`; returns whether anything changed and the channels zeroed.
fn zero_weak_channels(
    v: &mut [f32],
    shape: &[i64],
    axis: usize,
    f: f64,
) -> (bool, BTreeSet<usize>) {
    let c = shape[axis] as usize;
    let stride: usize = shape[axis + 1..].iter().product::<i64>() as usize;
    let mut l1 = vec![0f64; c];
    for (i, x) in v.iter().enumerate() {
        l1[(i / stride) % c] += f64::from(x.abs());
    }
    let l1: Vec<f32> = l1.into_iter().map(|x| x as f32).collect();
    let keep = mask::top_k(&l1, mask::keep_count(c, f));
    let mut changed = false;
    for (i, x) in v.iter_mut().enumerate() {
        if !keep[(i / stride) % c] && *x != 0.0 {
            *x = 0.0;
            changed = true;
        }
    }
    (changed, (0..c).filter(|&i| !keep[i]).collect())
}

/// The output-channel axis of a Conv2D filter or MatMul weight read as input 1.
fn out_axis(g: &Graph, konst: NodeId, consumer: NodeId) -> Option<usize> {
    let n = g.node(consumer);
    let (c, _) = resolve_const(g, n.input.get(1)?)?;
    if c != konst {
        return None;
    }
    match n.op.as_str() {
        "Conv2D" => Some(3),
        "MatMul" => Some(usize::from(!n.attr_opt_bool("transpose_b").unwrap_or(false))),
        _ => None,
    }
}

/// Prunes a GraphDef as `cfg` says; returns the new GraphDef and what was done.
pub fn prune_graph_def(
    g: GraphDef,
    cfg: &PruneConfig,
) -> Result<(GraphDef, PruneReport), PruneError> {
    let mut graph = Graph::from_graph_def(g)?;
    let report = prune_graph(&mut graph, cfg)?;
    Ok((graph.into_graph_def(), report))
}

/// Prunes the graph in place as `cfg` says and returns what was done.
pub fn prune_graph(g: &mut Graph, cfg: &PruneConfig) -> Result<PruneReport, PruneError> {
    // A graph TensorFlow would not import is the input's fault, said before any work.
    g.check(Some(tf_ops::Registry::global()))?;
    g.topo_order()?;
    let mut rep = PruneReport {
        mode: match (cfg.n_m, cfg.block, cfg.global, cfg.sparsity) {
            (Some((n, m)), ..) => format!("{n}:{m}"),
            (None, Some((r, c)), true, Some(_)) => format!("global block {r}x{c}"),
            (None, Some((r, c)), false, Some(_)) => format!("block {r}x{c}"),
            (None, None, true, Some(_)) => "global".into(),
            (None, None, false, Some(_)) => "per-tensor".into(),
            _ => "none".into(),
        },
        target_sparsity: cfg.sparsity,
        flops_before: flops::count(g),
        ..PruneReport::default()
    };
    let mut selected = Vec::new();
    for (id, u) in find_weights(g, cfg.embeddings) {
        let n = g.node(id);
        let shape = const_shape(n).unwrap_or_default();
        // Claimed by the attribute, not checked yet: no count when a dimension is negative or
        // the product overflows.
        let count = tf_tensor::num_elements(&shape);
        let params = count.unwrap_or(0);
        let mut tr = TensorReport {
            name: n.name.clone(),
            consumer: u.name.clone(),
            op: u.op.clone(),
            shape: shape.clone(),
            params,
            zeros_before: 0,
            zeros_after: 0,
            sparsity_before: 0.0,
            sparsity_after: 0.0,
            skipped: None,
        };
        let matches = |r: &Regex| r.is_match(&n.name) || r.is_match(&u.name);
        let skip = if count.is_none() {
            Some(format!("invalid shape {}", tf_tensor::dims_to_string(&shape)))
        } else if !is_f32_const(n) {
            Some("not float32".to_string())
        } else if params < cfg.min_elements {
            Some(format!("fewer than {} elements", cfg.min_elements))
        } else if cfg.include.as_ref().is_some_and(|r| !matches(r)) {
            Some("not matched by --include".into())
        } else if cfg.exclude.as_ref().is_some_and(matches) {
            Some("matched by --exclude".into())
        } else {
            None
        };
        if is_f32_const(n) {
            let (_, v) = const_f32(n)?;
            tr.zeros_before = v.iter().filter(|x| **x == 0.0).count() as u64;
            tr.zeros_after = tr.zeros_before;
            if skip.is_none() {
                selected.push(Selected {
                    id,
                    shape: shape.clone(),
                    values: v,
                    axis: u.axis,
                    out_axis: u
                        .consumer
                        .and_then(|c| out_axis(g, id, c))
                        .filter(|&a| a < shape.len()),
                    report: rep.tensors.len(),
                });
            }
        }
        tr.skipped = skip;
        rep.tensors.push(tr);
    }

    // Keep masks.
    let masks: Vec<Vec<bool>> = if let Some((n, m)) = cfg.n_m {
        selected.iter().map(|s| mask::n_of_m(&s.values, &s.shape, s.axis, n, m)).collect()
    } else if let Some(sp) = cfg.sparsity {
        let units: Vec<(usize, Option<Vec<usize>>, Vec<f32>)> = selected
            .iter()
            .map(|s| match cfg.block {
                Some((r, c)) => {
                    let (nb, of) = mask::block_index(&s.shape, r, c);
                    let sc = mask::block_scores(&s.values, nb, &of);
                    (nb, Some(of), sc)
                }
                None => (s.values.len(), None, s.values.clone()),
            })
            .collect();
        let unit_keep: Vec<Vec<bool>> = if cfg.global {
            let all: Vec<f32> = units.iter().flat_map(|u| u.2.iter().copied()).collect();
            let keep = mask::top_k(&all, mask::keep_count(all.len(), sp));
            let mut out = Vec::new();
            let mut at = 0;
            for u in &units {
                out.push(keep[at..at + u.0].to_vec());
                at += u.0;
            }
            out
        } else {
            units.iter().map(|u| mask::top_k(&u.2, mask::keep_count(u.0, sp))).collect()
        };
        units
            .iter()
            .zip(unit_keep)
            .map(|(u, k)| match &u.1 {
                Some(of) => of.iter().map(|&b| k[b]).collect(),
                None => k,
            })
            .collect()
    } else {
        Vec::new()
    };

    let masks = if masks.is_empty() {
        selected.iter().map(|s| vec![true; s.values.len()]).collect()
    } else {
        masks
    };
    let mut forced = HashMap::new();
    for (s, keep) in selected.iter_mut().zip(masks) {
        let mut changed = false;
        for (v, k) in s.values.iter_mut().zip(keep) {
            if !k && *v != 0.0 {
                *v = 0.0;
                changed = true;
            }
        }
        if let (Some(f), Some(axis)) = (cfg.channel_sparsity, s.out_axis) {
            let (c, zeroed) = zero_weak_channels(&mut s.values, &s.shape, axis, f);
            changed |= c;
            forced.insert(s.id, zeroed);
        }
        let tr = &mut rep.tensors[s.report];
        tr.zeros_after = s.values.iter().filter(|x| **x == 0.0).count() as u64;
        if changed {
            set_const_f32(&mut g.node_mut(s.id), &s.shape, &s.values)?;
        }
    }
    for t in &mut rep.tensors {
        if t.params > 0 {
            t.sparsity_before = t.zeros_before as f64 / t.params as f64;
            t.sparsity_after = t.zeros_after as f64 / t.params as f64;
        }
    }
    rep.params_before = rep.tensors.iter().map(|t| t.params).sum();
    rep.nonzero_before = rep.tensors.iter().map(|t| t.params - t.zeros_before).sum();
    rep.nonzero_after = rep.tensors.iter().map(|t| t.params - t.zeros_after).sum();
    rep.params_after = rep.params_before;
    if cfg.channels {
        let ch = channels::remove_dead_channels(g, &forced)?;
        rep.params_after = rep.params_before - ch.weights_removed;
        rep.nonzero_after -= ch.nonzero_removed;
        rep.channels = Some(ch);
        // Channel surgery rewired and resliced; the result must still import.
        g.check(Some(tf_ops::Registry::global())).map_err(|e| PruneError::Tensor {
            node: "(graph)".into(),
            reason: format!("internal error: channel removal left an invalid graph: {e}"),
        })?;
    }
    rep.flops_after = if cfg.channels { flops::count(g) } else { rep.flops_before };
    if rep.tensors.is_empty() {
        rep.warnings.push("no weight constants found (Conv2D/MatMul/... reading a Const)".into());
    }
    Ok(rep)
}

#[cfg(test)]
mod tests;
