//! Structured removal of dead output channels (conv) and neurons (dense).
//!
//! A channel is dead when every weight producing it is zero. It is removed from the producer's
//! weights together with everything indexed by it downstream: BiasAdd biases, batch-norm
//! parameters, per-channel elementwise constants, and the matching input channels of the next
//! Conv2D or MatMul, so the graph's outputs keep their shapes. Activations, pooling and spatial
//! means pass channels through unchanged.
//!
//! The removal is exact: along the way the constant value the dead channel carries is tracked
//! (0 from the zero weights, then `+ bias`, batch norm, `relu`, ...). At a MatMul a non-zero
//! constant is folded into the following BiasAdd (`bias += v·W[c,:]`); at a Conv2D it must be
//! zero (with padding the border would see a different value), otherwise the channel is kept.
//! Channels are also kept, with the reason in the report, when they reach a residual Add, a
//! Concat, a Reshape (flatten into a dense layer), a graph output or any op not listed here.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use serde::Serialize;
use tf_graph::{Consumers, Graph, NodeId};
use tf_proto::tensorflow::NodeDef;

use crate::{const_f32, resolve_const, set_const_f32, PruneError};

/// One layer whose weights had dead output channels.
#[derive(Debug, Clone, Serialize)]
pub struct LayerChannels {
    /// The Conv2D or MatMul.
    pub layer: String,
    /// Its op.
    pub op: String,
    /// Output channels before.
    pub channels_before: usize,
    /// Output channels after.
    pub channels_after: usize,
    /// Dead channels found.
    pub dead: Vec<usize>,
    /// Dead channels removed.
    pub removed: Vec<usize>,
    /// Dead channels kept, with the reason.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub kept: BTreeMap<String, Vec<usize>>,
    /// Nodes whose constants were sliced or adjusted.
    pub edited: Vec<String>,
}

/// What `--channels` did.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ChannelReport {
    /// Per layer with dead channels.
    pub layers: Vec<LayerChannels>,
    /// Channels removed in total.
    pub channels_removed: usize,
    /// Constant elements removed in total.
    pub params_removed: u64,
    /// Of which weights of Conv2D/MatMul layers.
    pub weights_removed: u64,
    /// Of those, non-zero (input weights of the next layer reading a constant channel).
    pub nonzero_removed: u64,
}

#[derive(Debug, Clone)]
enum Edit {
    /// Remove the channels along this axis of the Const.
    Slice { konst: NodeId, axis: usize, weight: bool },
    /// Add `v_c · W[c, :]` (row c of the MatMul weight, taken along `axis`) to the bias.
    Fold { bias: NodeId, weight: NodeId, axis: usize, vals: Vec<(usize, f32)> },
}

enum Fail {
    /// Structural: keep every channel.
    All(String),
    /// These channels carry a non-zero constant where that is not exact.
    Some(Vec<usize>, String),
}

struct Walk<'a> {
    g: &'a Graph,
    /// Channels removed outright (`--channel-sparsity`): whatever constant they would carry
    /// (bias, batch-norm offset) is dropped with them.
    forced: &'a BTreeSet<usize>,
    cons: &'a Consumers<'a>,
    channels: usize,
    edits: Vec<Edit>,
    touched: Vec<NodeId>,
    /// Ops followed from the pruned layer so far on the current path.
    depth: usize,
}

/// How many ops a dead channel is followed through before giving up on it (the walk is
/// recursive; real models reach the next layer within a few ops).
const MAX_WALK_DEPTH: usize = 1000;

fn data_format_ok(n: &NodeDef) -> bool {
    n.attr_opt_str("data_format").is_none_or(|f| f == "NHWC")
}

/// The Const behind a data input, if only `reader` (through pass-throughs) reads it.
fn exclusive_const(g: &Graph, cons: &Consumers<'_>, reader: NodeId, idx: usize) -> Option<NodeId> {
    let (c, path) = resolve_const(g, g.node(reader).input.get(idx)?)?;
    let mut expected_into = Vec::new();
    let mut prev = c;
    // `path` runs from the reader back to the Const.
    for &p in path.iter().rev() {
        expected_into.push((prev, p));
        prev = p;
    }
    expected_into.push((prev, reader));
    for (from, to) in expected_into {
        let readers: Vec<NodeId> = cons.of_output(from, 0).map(|(n, _)| n).collect::<Vec<_>>();
        if readers.len() != 1 || readers[0] != to || cons.of_node(from).count() != 1 {
            return None;
        }
    }
    Some(c)
}

fn per_channel(g: &Graph, k: NodeId, channels: usize) -> Option<(Vec<f32>, bool)> {
    let (shape, v) = const_f32(g.node(k)).ok()?;
    if v.len() == 1 {
        return Some((vec![v[0]; channels], false));
    }
    let last = *shape.last()? as usize;
    if last == channels && v.len() == channels {
        return Some((v, true));
    }
    None
}

impl Walk<'_> {
    /// Follows the tensor `node:0` carrying constant `vals` (per channel index) on the dead
    /// channels to every reader.
    fn walk(&mut self, node: NodeId, vals: &BTreeMap<usize, f32>) -> Result<(), Fail> {
        if self.depth >= MAX_WALK_DEPTH {
            return Err(Fail::All(format!(
                "more than {MAX_WALK_DEPTH} ops between the layer and the next one"
            )));
        }
        self.depth += 1;
        let r = self.walk_readers(node, vals);
        self.depth -= 1;
        r
    }

    fn walk_readers(&mut self, node: NodeId, vals: &BTreeMap<usize, f32>) -> Result<(), Fail> {
        let g = self.g;
        let vals: &BTreeMap<usize, f32> = &vals
            .iter()
            .map(|(&c, &v)| (c, if self.forced.contains(&c) { 0.0 } else { v }))
            .collect();
        let readers = self.cons.of_output(node, 0).to_vec();
        if readers.is_empty() {
            return Err(Fail::All(format!("'{}' is a graph output", g.node(node).name)));
        }
        if self.cons.of_node(node).count() != readers.len() {
            return Err(Fail::All(format!("other outputs of '{}' are read", g.node(node).name)));
        }
        for (r, idx) in readers {
            self.reader(r, idx, vals)?;
        }
        Ok(())
    }

    fn slice(&mut self, reader: NodeId, idx: usize, axis: usize) -> Result<NodeId, Fail> {
        let weight = matches!(
            self.g.node(reader).op.as_str(),
            "Conv2D" | "MatMul" | "DepthwiseConv2dNative"
        );
        let n = self.g.node(reader);
        let k = exclusive_const(self.g, self.cons, reader, idx).ok_or_else(|| {
            Fail::All(format!("a constant of '{}' is shared or not a Const", n.name))
        })?;
        self.edits.push(Edit::Slice { konst: k, axis, weight });
        Ok(k)
    }

    fn reader(&mut self, r: NodeId, idx: usize, vals: &BTreeMap<usize, f32>) -> Result<(), Fail> {
        let g = self.g;
        let n = g.node(r);
        let map = |f: &dyn Fn(f32) -> f32| vals.iter().map(|(&c, &v)| (c, f(v))).collect();
        let op = n.op.as_str();
        let what = |why: &str| Fail::All(format!("{why} ('{}', {})", n.name, n.op));
        match op {
            "Identity" | "Snapshot" | "StopGradient" | "MaxPool" | "AvgPool" if idx == 0 => {
                if !data_format_ok(n) {
                    return Err(what("NCHW data format"));
                }
                self.touched.push(r);
                self.walk(r, vals)
            }
            "Relu" | "Relu6" | "Elu" | "Selu" | "Sigmoid" | "Tanh" | "LeakyRelu" | "Softsign" => {
                let alpha = n.attr_opt_f32("alpha").unwrap_or(0.2);
                let f = |v: f32| match op {
                    "Relu" => v.max(0.0),
                    "Relu6" => v.clamp(0.0, 6.0),
                    "Elu" => {
                        if v < 0.0 {
                            v.exp_m1()
                        } else {
                            v
                        }
                    }
                    "Sigmoid" => 1.0 / (1.0 + (-v).exp()),
                    "Tanh" => v.tanh(),
                    "LeakyRelu" => {
                        if v < 0.0 {
                            alpha * v
                        } else {
                            v
                        }
                    }
                    "Softsign" => v / (1.0 + v.abs()),
                    _ => f32::NAN, // Selu: only exact at 0
                };
                let out: BTreeMap<usize, f32> = if op == "Selu" {
                    map(&|v| if v == 0.0 { 0.0 } else { f32::NAN })
                } else {
                    map(&f)
                };
                self.touched.push(r);
                self.walk(r, &out)
            }
            "Mean" | "Max" | "Min" if idx == 0 => {
                let axes = resolve_const(g, n.input.get(1).map_or("", |s| s.as_str()))
                    .and_then(|(k, _)| {
                        tf_tensor::Tensor::from_proto(g.node(k).attr_opt_tensor("value")?).ok()
                    })
                    .and_then(|t| t.values::<i32>().ok());
                match axes {
                    Some(a) if a.iter().all(|&x| x == 1 || x == 2) => {
                        self.touched.push(r);
                        self.walk(r, vals)
                    }
                    _ => Err(what("a reduction over the channel axis")),
                }
            }
            "BiasAdd" if idx == 0 => {
                if !data_format_ok(n) {
                    return Err(what("NCHW data format"));
                }
                let k = self.slice(r, 1, 0)?;
                let (b, _) = per_channel(g, k, self.channels).ok_or_else(|| what("bias shape"))?;
                self.touched.push(r);
                self.walk(r, &vals.iter().map(|(&c, &v)| (c, v + b[c])).collect())
            }
            "Add" | "AddV2" | "Sub" | "Mul" | "RealDiv" | "Maximum" | "Minimum" => {
                let other = 1 - idx.min(1);
                let Some((k, _)) = n.input.get(other).and_then(|s| resolve_const(g, s)) else {
                    return Err(what("an elementwise op with a non-constant operand (residual)"));
                };
                let (c, sliced) =
                    per_channel(g, k, self.channels).ok_or_else(|| what("operand shape"))?;
                if sliced {
                    self.slice(r, other, const_f32(g.node(k)).map_or(0, |(s, _)| s.len() - 1))?;
                }
                let f = |v: f32, k: f32| match (op, idx) {
                    ("Add" | "AddV2", _) => v + k,
                    ("Sub", 0) => v - k,
                    ("Sub", _) => k - v,
                    ("Mul", _) => v * k,
                    ("RealDiv", 0) => v / k,
                    ("Maximum", _) => v.max(k),
                    ("Minimum", _) => v.min(k),
                    _ => f32::NAN,
                };
                self.touched.push(r);
                self.walk(r, &vals.iter().map(|(&ch, &v)| (ch, f(v, c[ch]))).collect())
            }
            "FusedBatchNorm" | "FusedBatchNormV2" | "FusedBatchNormV3" if idx == 0 => {
                if n.attr_opt_bool("is_training").unwrap_or(true) || !data_format_ok(n) {
                    return Err(what("a training-mode or NCHW batch norm"));
                }
                if (1..6).any(|p| !self.cons.of_output(r, p).is_empty()) {
                    return Err(what("batch-norm statistics are read"));
                }
                let eps = n.attr_opt_f32("epsilon").unwrap_or(1e-4);
                let mut p = Vec::new();
                for i in 1..5 {
                    let k = self.slice(r, i, 0)?;
                    p.push(per_channel(g, k, self.channels).ok_or_else(|| what("shape"))?.0);
                }
                let out = vals
                    .iter()
                    .map(|(&c, &v)| {
                        let inv = 1.0 / (p[3][c] + eps).sqrt();
                        (c, (v - p[2][c]) * (inv * p[0][c]) + p[1][c])
                    })
                    .collect();
                self.touched.push(r);
                self.walk(r, &out)
            }
            "DepthwiseConv2dNative" if idx == 0 => {
                // Channel multiplier 1: input channel c is output channel c; the filter loses
                // axis-2 entries and the (now zero) channel flows on. A non-zero constant
                // would not stay constant at padded borders.
                let mult = const_f32(
                    g.node(
                        resolve_const(g, n.input.get(1).map_or("", |s| s))
                            .ok_or_else(|| what("a non-constant filter"))?
                            .0,
                    ),
                )
                .map(|(s, _)| s.get(3).copied().unwrap_or(0))
                .unwrap_or(0);
                if mult != 1 || !data_format_ok(n) {
                    return Err(what("a depthwise conv with channel multiplier != 1 or NCHW"));
                }
                let nonzero: Vec<usize> =
                    vals.iter().filter(|(_, v)| **v != 0.0).map(|(c, _)| *c).collect();
                if !nonzero.is_empty() {
                    return Err(Fail::Some(
                        nonzero,
                        format!("carries a non-zero constant into '{}' (padding)", n.name),
                    ));
                }
                self.slice(r, 1, 2)?;
                self.touched.push(r);
                self.walk(r, vals)
            }
            "Conv2D" if idx == 0 => {
                if !data_format_ok(n) {
                    return Err(what("NCHW data format"));
                }
                let nonzero: Vec<usize> =
                    vals.iter().filter(|(_, v)| **v != 0.0).map(|(c, _)| *c).collect();
                if !nonzero.is_empty() {
                    return Err(Fail::Some(
                        nonzero,
                        format!("carries a non-zero constant into Conv2D '{}'", n.name),
                    ));
                }
                self.slice(r, 1, 2)?;
                Ok(())
            }
            "MatMul" if idx == 0 && !n.attr_opt_bool("transpose_a").unwrap_or(false) => {
                let axis = usize::from(n.attr_opt_bool("transpose_b").unwrap_or(false));
                let unknown: Vec<usize> =
                    vals.iter().filter(|(_, v)| !v.is_finite()).map(|(c, _)| *c).collect();
                if !unknown.is_empty() {
                    return Err(Fail::Some(
                        unknown,
                        format!("carries a value that cannot be folded into '{}'", n.name),
                    ));
                }
                let w = self.slice(r, 1, axis)?;
                let nz: Vec<(usize, f32)> =
                    vals.iter().filter(|(_, v)| **v != 0.0).map(|(&c, &v)| (c, v)).collect();
                if nz.is_empty() {
                    return Ok(());
                }
                let bias = self.cons.of_output(r, 0).to_vec();
                let b = match bias[..] {
                    [(b, 0)] if g.node(b).op == "BiasAdd" => exclusive_const(g, self.cons, b, 1),
                    _ => None,
                };
                let Some(b) = b else {
                    return Err(Fail::Some(
                        nz.iter().map(|x| x.0).collect(),
                        format!(
                            "carries a non-zero constant into MatMul '{}' without a BiasAdd",
                            n.name
                        ),
                    ));
                };
                self.edits.push(Edit::Fold { bias: b, weight: w, axis, vals: nz });
                Ok(())
            }
            "ConcatV2" | "Concat" => Err(what("Concat")),
            "Reshape" => Err(what("Reshape (flatten into a dense layer)")),
            _ => Err(what("an op channels cannot be followed through")),
        }
    }
}

/// Removes `remove` indices along `axis`.
fn slice_axis(
    shape: &[i64],
    v: &[f32],
    axis: usize,
    remove: &BTreeSet<usize>,
) -> (Vec<i64>, Vec<f32>) {
    let dims: Vec<usize> = shape.iter().map(|&d| d as usize).collect();
    let len = dims[axis];
    let stride: usize = dims[axis + 1..].iter().product();
    let mut out = Vec::with_capacity(v.len());
    for (i, x) in v.iter().enumerate() {
        if !remove.contains(&((i / stride) % len)) {
            out.push(*x);
        }
    }
    let mut s = shape.to_vec();
    s[axis] = (len - remove.iter().filter(|&&c| c < len).count()) as i64;
    (s, out)
}

/// Removes dead output channels of every Conv2D and MatMul whose weights are Consts, where
/// that is exact (see the module docs).
///
/// `forced` names, per weight Const, channels zeroed by `--channel-sparsity`: they are removed
/// outright, the constants they would carry (bias, batch-norm offset) dropped with them.
pub fn remove_dead_channels(
    g: &mut Graph,
    forced: &HashMap<NodeId, BTreeSet<usize>>,
) -> Result<ChannelReport, PruneError> {
    let none = BTreeSet::new();
    let mut rep = ChannelReport::default();
    let order = g.topo_order().unwrap_or_else(|_| g.ids());
    for p in order {
        let n = g.node(p);
        let out_axis = match n.op.as_str() {
            "Conv2D" if data_format_ok(n) => 3,
            "MatMul" => usize::from(!n.attr_opt_bool("transpose_b").unwrap_or(false)),
            _ => continue,
        };
        let cons = g.consumers();
        let Some(w) = exclusive_const(g, &cons, p, 1) else { continue };
        let Ok((shape, v)) = const_f32(g.node(w)) else { continue };
        if shape.len() <= out_axis {
            continue;
        }
        let channels = shape[out_axis] as usize;
        let stride: usize = shape[out_axis + 1..].iter().product::<i64>() as usize;
        let mut alive = vec![false; channels];
        for (i, x) in v.iter().enumerate() {
            if *x != 0.0 {
                alive[(i / stride) % channels] = true;
            }
        }
        let dead: Vec<usize> = (0..channels).filter(|&c| !alive[c]).collect();
        if dead.is_empty() {
            continue;
        }
        let mut layer = LayerChannels {
            layer: n.name.clone(),
            op: n.op.clone(),
            channels_before: channels,
            channels_after: channels,
            dead: dead.clone(),
            removed: Vec::new(),
            kept: BTreeMap::new(),
            edited: Vec::new(),
        };
        let mut set: BTreeSet<usize> = dead.iter().copied().collect();
        if set.len() == channels {
            let last = *set.iter().next_back().expect("non-empty");
            set.remove(&last);
            layer.kept.entry("every channel is dead; one is kept".into()).or_default().push(last);
        }
        let result = loop {
            if set.is_empty() {
                break None;
            }
            let mut walk = Walk {
                g,
                forced: forced.get(&w).unwrap_or(&none),
                cons: &cons,
                channels,
                edits: Vec::new(),
                touched: Vec::new(),
                depth: 0,
            };
            let vals = set.iter().map(|&c| (c, 0.0f32)).collect();
            match walk.walk(p, &vals) {
                Ok(()) => break Some((walk.edits, walk.touched)),
                Err(Fail::All(why)) => {
                    layer.kept.entry(why).or_default().extend(set.iter());
                    break None;
                }
                Err(Fail::Some(cs, why)) => {
                    for c in cs {
                        set.remove(&c);
                        layer.kept.entry(why.clone()).or_default().push(c);
                    }
                }
            }
        };
        if let Some((edits, touched)) = result {
            let mut seen = BTreeSet::new();
            let dup = edits.iter().any(|e| match e {
                Edit::Slice { konst, .. } => !seen.insert(*konst),
                Edit::Fold { .. } => false,
            });
            if dup {
                layer.kept.entry("a constant is reached twice".into()).or_default().extend(&set);
            } else {
                // Folds first: they read the weights before they are sliced.
                for e in &edits {
                    if let Edit::Fold { bias, weight, axis, vals } = e {
                        let (ws, wv) = const_f32(g.node(*weight))?;
                        let (bs, mut bv) = const_f32(g.node(*bias))?;
                        let cols = ws[1] as usize;
                        for &(c, val) in vals {
                            for (j, b) in bv.iter_mut().enumerate() {
                                let wcj =
                                    if *axis == 0 { wv[c * cols + j] } else { wv[j * cols + c] };
                                *b += val * wcj;
                            }
                        }
                        set_const_f32(&mut g.node_mut(*bias), &bs, &bv)?;
                        layer.edited.push(g.node(*bias).name.clone());
                    }
                }
                let mut slices = vec![(w, out_axis, true)];
                slices.extend(edits.iter().filter_map(|e| match e {
                    Edit::Slice { konst, axis, weight } => Some((*konst, *axis, *weight)),
                    Edit::Fold { .. } => None,
                }));
                for (k, axis, weight) in slices {
                    let (s, v) = const_f32(g.node(k))?;
                    let (ns, nv) = slice_axis(&s, &v, axis, &set);
                    rep.params_removed += (v.len() - nv.len()) as u64;
                    if weight {
                        let nz = |x: &[f32]| x.iter().filter(|y| **y != 0.0).count() as u64;
                        rep.weights_removed += (v.len() - nv.len()) as u64;
                        rep.nonzero_removed += nz(&v) - nz(&nv);
                    }
                    set_const_f32(&mut g.node_mut(k), &ns, &nv)?;
                    layer.edited.push(g.node(k).name.clone());
                }
                // Shapes recorded by TF are stale now.
                let mut stale = touched;
                stale.push(p);
                for id in stale {
                    g.node_mut(id).attr.remove("_output_shapes");
                }
                rep.channels_removed += set.len();
                layer.removed = set.iter().copied().collect();
                layer.channels_after = channels - set.len();
            }
        }
        rep.layers.push(layer);
    }
    Ok(rep)
}
