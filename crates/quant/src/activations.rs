//! Full-integer rewrite (`tf-quant int8 --activations ranges.json`): activations as well as
//! weights in 8 bits, in the int8 kernels stock TensorFlow 2.21 runs on x86 CPUs through
//! oneDNN.
//!
//! A *chain* is `Conv2D(x, Const)`, `DepthwiseConv2dNative(x, Const)` or `MatMul(x, Const)`,
//! optionally followed by `BiasAdd(·, Const)` and then `Relu` or `Relu6` (for a Conv2D, instead
//! of the activation: a residual `Add`, with the `Relu` after it if there is one, see [`Sum`]),
//! each step the only reader of the one before. Each chain becomes one fused kernel:
//!
//! | chain | kernel | output |
//! |---|---|---|
//! | Conv2D (+BiasAdd) + Relu/Relu6 | `QuantizedConv2DWithBiasAndReluAndRequantize` | quint8, frozen range [0, max] (Relu6: max ≤ 6) |
//! | Conv2D (+BiasAdd) | `QuantizedConv2DWithBiasAndRequantize` | qint8, frozen range ±max\|x\| |
//! | DepthwiseConv2dNative (+BiasAdd) + Relu/Relu6 | `QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize` | quint8, [0, max] (Relu6: max ≤ 6) |
//! | MatMul (+BiasAdd) + Relu | `QuantizedMatMulWithBiasAndReluAndRequantize` | quint8, [0, max] |
//! | MatMul (+BiasAdd) | `QuantizedMatMulWithBiasAndDequantize` | float |
//! | Conv2D (+BiasAdd) + Add(·, s) + Relu | `QuantizedConv2DWithBias(Signed)SumAndReluAndRequantize` | quint8, [0, max] (qint8 s: [0, max · 255/127]) |
//! | Conv2D (+BiasAdd) + Add(·, s) | the same, bias + C | quint8 holding sum + C (`QTensor::offset`) |
//!
//! A VALID convolution reading a zero `Pad` whose amounts are SAME's for the recorded input
//! shape reads the Pad's input with SAME padding instead ([`Chain::pad`]).
//!
//! Weights become per-output-channel symmetric qint8 `Const`s (depthwise: one range per
//! (input channel, multiplier) pair, `in_channels · multiplier` of them, in the order of the
//! output channels; MatMul: one range per tensor, as the kernel takes scalar `min_b`/`max_b`),
//! the bias stays a float `Const` (zeros when there is no BiasAdd). Weights and bias must stay
//! `Const`s feeding the kernel directly: oneDNN's graph rewrite replaces these ops'
//! placeholder CPU kernels only then.
//!
//! Activations enter a region through `QuantizeV2(SCALED)` (quint8 for a non-negative range,
//! qint8 otherwise) and leave it through `Dequantize(SCALED)`, which takes the name of the
//! chain's last node, so every float reader and fetch is unchanged. The MatMul kernels take
//! quint8 only, so a MatMul whose input can be negative gets `QuantizeV2(MIN_FIRST)` to quint8
//! on a range whose zero falls on a code z ([`min_first_range`]); the kernel, told SCALED with
//! the range [0, max − min], computes with x − min, and its float bias gets min · Σ w back
//! ([`shifted_bias`]). (The kernels' own `input_quant_mode = MIN_FIRST` adds that compensation
//! in the wrong units with oneDNN 3, TF 2.21's, with a float bias, and recomputes it on every
//! run with a qint32 one.) The depthwise kernel takes quint8 only too, and there the shift does
//! not hold (its zero padding would be padding with −min), so a depthwise convolution whose
//! input can be negative stays float. A kernel that reads another kernel's
//! requantized output (or a `QuantizedMaxPool` of it) reads it directly, with no dequantize and
//! quantize between. Everything else stays float; the report says why for each candidate op.
//!
//! The chains, and so the tensors whose ranges calibration must record, are found by
//! [`find_chains`], which `tf-run --calibrate` calls too.
//!
//! [`Form::LegacyGtt`] (`--legacy-gtt`) emits the Graph Transform Tool's `quantize_nodes` graph
//! for the same chains instead (see the `legacy` module); the selection, ranges, filters and
//! report are this module's, the emitters differ.

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};

use bytes::Bytes;
use regex::Regex;
use serde::Serialize;
use tf_graph::analysis::is_shape_op;
use tf_graph::{Graph, NodeId, TensorName};
use tf_ops::Registry;
use tf_proto::tensorflow::{AttrValue, DataType, GraphDef, NodeDef, TensorProto};
use tf_tensor::{dt, Tensor};

use crate::emit::{payload_proto, Names};
use crate::kernels;
use crate::ranges::{Calibration, RangesFile};
use crate::select::Layout;
use crate::{QuantError, QuantReport, Quantized};
use tf_ops::is_pass_through;

/// The default of [`Activations::min_matmul_weights`]: 512×512. Measured in TF 2.21 with oneDNN
/// on (AVX2, 2 cores), the int8 MatMul kernel with its `QuantizeV2` costs about 0.3 ms whatever
/// its size: a 256×256 weight runs at 0.5–0.8× float at batch 1 to 128, 512×512 at 0.5× (batch
/// 1), 1.1× (32) and 2.0× (128), 768×3072 at 1.3–9.4×.
pub const DEFAULT_MIN_MATMUL_WEIGHTS: u64 = 512 * 512;

/// What `--activations` needs besides the weight-mode flags.
#[derive(Debug, Clone)]
pub struct Activations {
    /// The ranges file, parsed.
    pub ranges: RangesFile,
    /// Its name, for messages.
    pub file: String,
    /// How a range is chosen from what was recorded.
    pub calibration: Calibration,
    /// A MatMul whose weight has fewer elements (K×N) stays float in the oneDNN form
    /// (`--min-matmul-weights`; [`DEFAULT_MIN_MATMUL_WEIGHTS`] by default, 0 for every MatMul).
    pub min_matmul_weights: u64,
    /// Which graph form is emitted.
    pub form: Form,
}

/// The graph form of the full-integer rewrite.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Form {
    /// oneDNN's fused int8 kernels (SCALED, qint8 weights per channel); the default.
    #[default]
    OneDnn,
    /// What the Graph Transform Tool's `quantize_nodes` produced (`--legacy-gtt`): the
    /// eight-bit ops on quint8 MIN_FIRST tensors (the `legacy` module).
    LegacyGtt(Requantization),
}

/// How `--legacy-gtt` narrows a qint32 result to quint8.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Requantization {
    /// `Requantize` to the calibrated range of the chain's output, as GTT's
    /// `freeze_requantization_ranges` left it (default).
    #[default]
    Frozen,
    /// `Requantize` to the range `RequantizationRange` measures at run time, as
    /// `quantize_nodes` alone left it.
    Dynamic,
}

impl std::str::FromStr for Requantization {
    type Err = String;

    fn from_str(s: &str) -> Result<Requantization, String> {
        match s {
            "frozen" => Ok(Requantization::Frozen),
            "dynamic" => Ok(Requantization::Dynamic),
            _ => Err(format!("'{s}': expected frozen or dynamic")),
        }
    }
}

impl Requantization {
    /// The spelling on the command line and in the report.
    pub fn name(&self) -> &'static str {
        match self {
            Requantization::Frozen => "frozen",
            Requantization::Dynamic => "dynamic",
        }
    }
}

/// The op a chain starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// `Conv2D`, NHWC, filter HWIO.
    Conv2D,
    /// `DepthwiseConv2dNative`, NHWC, filter [H, W, in, multiplier].
    Depthwise,
    /// `MatMul` without transposes, `b` `[in, out]`.
    MatMul,
}

/// The activation closing a chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Act {
    /// `Relu`.
    Relu,
    /// `Relu6`.
    Relu6,
}

/// A convolution or matrix product with its bias and activation; see the module docs.
#[derive(Debug, Clone)]
pub struct Chain {
    /// The Conv2D or MatMul.
    pub op: NodeId,
    /// Which.
    pub kind: Kind,
    /// Its data input (tensor name as written).
    pub input: TensorName,
    /// The weight `Const` (found through pass-throughs) and the pass-throughs on the way.
    pub filter: (NodeId, Vec<NodeId>),
    /// The BiasAdd and its bias `Const` (with its pass-throughs).
    pub bias: Option<(NodeId, NodeId, Vec<NodeId>)>,
    /// The Relu or Relu6.
    pub act: Option<(NodeId, Act)>,
    /// A residual `Add` (and the `Relu` after it, if any) whose other input the Conv2D's kernel
    /// adds.
    pub sum: Option<Sum>,
    /// A zero `Pad` (float) that the VALID convolution reads, its input and its amounts
    /// (top, bottom, left, right): folded into SAME padding when they are SAME's for the shape
    /// calibration saw (Keras' `ZeroPadding2D` before MobileNetV2's strided depthwise
    /// convolutions).
    pub pad: Option<(NodeId, TensorName, [i64; 4])>,
    /// Whether `pad` was folded: `input` is then the Pad's input and the kernel pads SAME.
    pub same: bool,
    /// The last node of the chain, whose output the chain computes.
    pub end: NodeId,
}

/// `Add(chain, summand)` after a Conv2D (+BiasAdd), with the `Relu` after it if there is one:
/// the residual connection of a ResNet block (Relu) or of a MobileNetV2 linear bottleneck (none),
/// which `QuantizedConv2DWithBias(Signed)SumAndReluAndRequantize` computes in the convolution.
/// Without a Relu, the kernel's bias is raised by an offset C that keeps the sum non-negative
/// and its quint8 output holds `sum + C` (`QTensor::offset`). The kernel writes its result over
/// the summand's buffer, so the summand must have no reader that could run after it (see
/// [`find_chains`]).
#[derive(Debug, Clone)]
pub struct Sum {
    /// The `Add` or `AddV2`.
    pub add: NodeId,
    /// Its other input.
    pub summand: TensorName,
    /// The `Relu` reading the Add, if it is the Add's only reader.
    pub relu: Option<NodeId>,
    /// The chain's last node before the Add (its BiasAdd or Conv2D).
    pub before: NodeId,
}

impl Chain {
    /// The nodes the chain replaces, first to last.
    pub(crate) fn nodes(&self) -> Vec<NodeId> {
        let mut v = vec![self.op];
        v.extend(self.bias.as_ref().map(|b| b.0));
        v.extend(self.act.map(|a| a.0));
        v.extend(self.sum.iter().flat_map(|s| std::iter::once(s.add).chain(s.relu)));
        v
    }

    /// The chain without its residual Add (itself when it has none).
    pub fn without_sum(&self) -> Chain {
        match &self.sum {
            Some(s) => Chain { sum: None, end: s.before, ..self.clone() },
            None => self.clone(),
        }
    }

    /// The control inputs of every replaced node, each once.
    pub(crate) fn control_inputs(&self, g: &Graph) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for id in self.nodes() {
            for s in g.node(id).input.iter().filter(|s| s.starts_with('^')) {
                if !out.contains(s) {
                    out.push(s.clone());
                }
            }
        }
        out
    }

    /// Removes every replaced node but the last, whose name the rewrite keeps; control edges
    /// on them move to the last.
    pub(crate) fn remove_inner(&self, g: &mut Graph) {
        let end = g.node(self.end).name.clone();
        for id in self.nodes().into_iter().filter(|&i| i != self.end) {
            g.replace_control_input(&g.node(id).name.clone(), &end);
            g.remove_node(id);
        }
    }
}

/// A float `Const` behind `input` (through pass-throughs): its id and the pass-throughs.
pub(crate) fn const_behind(g: &Graph, input: &str) -> Option<(NodeId, Vec<NodeId>)> {
    let mut via = Vec::new();
    let mut t = TensorName::parse(input);
    for _ in 0..64 {
        let id = g.id(&t.node)?;
        let n = g.node(id);
        if n.op == "Const" && t.port == 0 {
            let ok = n.attr_opt_tensor("value").is_some_and(|v| v.dtype == dt::FLOAT);
            return ok.then_some((id, via));
        }
        if !is_pass_through(&n.op) || t.port != 0 {
            return None;
        }
        via.push(id);
        t = TensorName::parse(n.input.first()?);
    }
    None
}

fn dims_of(n: &NodeDef) -> Vec<i64> {
    n.attr_opt_tensor("value")
        .and_then(|v| v.tensor_shape.as_ref())
        .map(|s| s.dim.iter().map(|d| d.size).collect())
        .unwrap_or_default()
}

pub(crate) fn is_float(n: &NodeDef) -> bool {
    n.attr.get("T").and_then(AttrValue::as_type_i32).unwrap_or(dt::FLOAT) == dt::FLOAT
}

pub(crate) fn nhwc(n: &NodeDef) -> bool {
    n.attr.get("data_format").and_then(AttrValue::as_bytes).is_none_or(|f| f == b"NHWC")
}

/// The only reader of `id`'s output 0, if there is exactly one and it reads nothing else of it.
fn sole_reader(g: &Graph, id: NodeId) -> Option<(NodeId, usize)> {
    let c = g.consumers();
    let readers = c.of_output(id, 0).to_vec();
    let other_ports = c.read_ports(id).any(|p| p != 0);
    match readers.as_slice() {
        [(r, slot)] if !other_ports => Some((*r, *slot)),
        _ => None,
    }
}

/// Checks one candidate op and grows its chain; `Err` says why it stays float.
fn chain_at(g: &Graph, id: NodeId) -> Result<Chain, String> {
    let n = g.node(id);
    let kind = match n.op.as_str() {
        "Conv2D" => Kind::Conv2D,
        "MatMul" => Kind::MatMul,
        "DepthwiseConv2dNative" => Kind::Depthwise,
        _ => return Err("not a convolution or matrix product".into()),
    };
    if !is_float(n) {
        return Err("not float32".into());
    }
    let data: Vec<&String> = n.input.iter().filter(|s| !s.starts_with('^')).collect();
    if data.len() != 2 {
        return Err("does not have two data inputs".into());
    }
    match kind {
        Kind::Conv2D | Kind::Depthwise => {
            if !nhwc(n) {
                return Err("data_format is not NHWC".into());
            }
            let pad = n.attr.get("padding").and_then(AttrValue::as_bytes).unwrap_or(b"");
            if pad != b"SAME" && pad != b"VALID" {
                return Err("padding is not SAME or VALID".into());
            }
            if n.attr
                .get("dilations")
                .and_then(AttrValue::as_list_i64)
                .is_some_and(|d| d.iter().any(|&x| x != 1))
            {
                return Err("dilated convolution".into());
            }
            let s = n.attr.get("strides").and_then(AttrValue::as_list_i64).unwrap_or(&[]);
            if s.len() != 4 || s[0] != 1 || s[3] != 1 {
                return Err("strides are not [1, h, w, 1]".into());
            }
            if kind == Kind::Depthwise && s[1] != s[2] {
                return Err("strides differ in height and width".into());
            }
        }
        Kind::MatMul => {
            let t = |a: &str| n.attr.get(a).and_then(AttrValue::as_bool).unwrap_or(false);
            if t("transpose_a") || t("transpose_b") {
                return Err("transposed MatMul".into());
            }
        }
    }
    let filter = const_behind(g, data[1]).ok_or_else(|| {
        "the weight is not a float Const (oneDNN's int8 kernels need constant weights)".to_string()
    })?;
    let fdims = dims_of(g.node(filter.0));
    let rank = if kind == Kind::MatMul { 2 } else { 4 };
    if fdims.len() != rank || fdims.iter().any(|&d| d <= 0) {
        return Err(format!("weight '{}' has shape {fdims:?}", g.node(filter.0).name));
    }
    // Output channels: depthwise, in_channels · multiplier.
    let channels = match kind {
        Kind::Depthwise => fdims[2]
            .checked_mul(fdims[3])
            .ok_or_else(|| format!("weight '{}' has shape {fdims:?}", g.node(filter.0).name))?,
        _ => *fdims.last().expect("rank checked"),
    };
    let mut chain = Chain {
        op: id,
        kind,
        input: TensorName::parse(data[0]),
        filter,
        bias: None,
        act: None,
        sum: None,
        pad: None,
        same: false,
        end: id,
    };
    if let Some((r, 0)) = sole_reader(g, id) {
        let rn = g.node(r);
        if rn.op == "BiasAdd" && is_float(rn) && nhwc(rn) {
            if let Some(b) = rn.input.get(1).and_then(|s| const_behind(g, s)) {
                if dims_of(g.node(b.0)) == [channels] {
                    chain.bias = Some((r, b.0, b.1));
                    chain.end = r;
                }
            }
        }
    }
    if let Some((r, 0)) = sole_reader(g, chain.end) {
        let rn = g.node(r);
        let act = match rn.op.as_str() {
            "Relu" => Some(Act::Relu),
            "Relu6" if kind != Kind::MatMul => Some(Act::Relu6),
            _ => None,
        };
        if let (Some(a), true) = (act, is_float(rn)) {
            chain.act = Some((r, a));
            chain.end = r;
        }
    }
    if kind != Kind::MatMul && n.attr.get("padding").and_then(AttrValue::as_bytes) == Some(b"VALID")
    {
        chain.pad = zero_pad(g, &chain.input);
    }
    if kind == Kind::Conv2D && chain.act.is_none() {
        chain.sum = residual_after(g, chain.end);
        if let Some(s) = &chain.sum {
            chain.end = s.relu.unwrap_or(s.add);
        }
    }
    if kind == Kind::Depthwise && chain.act.is_none() {
        return Err("not followed by Relu or Relu6: the only requantizing int8 depthwise \
                    kernel fuses a Relu"
            .into());
    }
    Ok(chain)
}

/// A float `Pad` producing `t` with constant paddings that pad only height and width: the
/// Pad, its input and the amounts (top, bottom, left, right).
fn zero_pad(g: &Graph, t: &TensorName) -> Option<(NodeId, TensorName, [i64; 4])> {
    let id = g.id(&t.node)?;
    let n = g.node(id);
    let data: Vec<&String> = n.input.iter().filter(|s| !s.starts_with('^')).collect();
    if n.op != "Pad" || t.port != 0 || !is_float(n) || data.len() != 2 {
        return None;
    }
    let pid = g.id(&TensorName::parse(data[1]).node)?;
    let pv = g.node(pid).attr_opt_tensor("value").filter(|_| g.node(pid).op == "Const")?;
    let v: Vec<i64> = match Tensor::from_proto(pv).ok()? {
        t if t.shape == [4, 2] && t.dtype == dt::INT32 => {
            t.values::<i32>().ok()?.iter().map(|&x| i64::from(x)).collect()
        }
        t if t.shape == [4, 2] && t.dtype == dt::INT64 => t.values::<i64>().ok()?.to_vec(),
        _ => return None,
    };
    let ok = v[0] == 0 && v[1] == 0 && v[6] == 0 && v[7] == 0 && v[2..6].iter().all(|&x| x >= 0);
    ok.then(|| (id, TensorName::parse(data[0]), [v[2], v[3], v[4], v[5]]))
}

/// The chain reading the Pad's input with SAME padding, if the Pad's amounts are what SAME pads
/// for the input shape the ranges file records (`None` if it records none, or they differ).
fn fold_pad(c: &Chain, g: &Graph, act: &Activations) -> Option<Chain> {
    let (_, input, amounts) = c.pad.as_ref()?;
    let shape = act.ranges.tensors.get(&input.to_string())?.shape.as_ref()?;
    let n = g.node(c.op);
    let k = dims_of(g.node(c.filter.0));
    let s = n.attr.get("strides").and_then(AttrValue::as_list_i64)?;
    if shape.len() != 4 || k.len() != 4 || s.len() != 4 {
        return None;
    }
    // TensorFlow's SAME: out = ceil(in / s), total = max((out - 1) · s + k - in, 0), the
    // smaller half before.
    // (In i128: sizes come from the ranges file, kernel sizes and strides from the graph.)
    let same = |size: i64, k: i64, s: i64| {
        let (size, k, s) = (i128::from(size), i128::from(k), i128::from(s));
        let out = (size + s - 1) / s;
        let total = ((out - 1) * s + k - size).max(0);
        [total / 2, total - total / 2]
    };
    for (axis, (size, (k, s))) in [(0, (shape[1], (k[0], s[1]))), (1, (shape[2], (k[1], s[2])))] {
        let want = [i128::from(amounts[2 * axis]), i128::from(amounts[2 * axis + 1])];
        if size <= 0 || s <= 0 || same(size, k, s) != want {
            return None;
        }
    }
    Some(Chain { input: input.clone(), same: true, ..c.clone() })
}

/// `Add(end, s)` where `end`'s only reader is the Add, and the `Relu` after it if that is the
/// Add's only reader.
fn residual_after(g: &Graph, end: NodeId) -> Option<Sum> {
    let (add, slot) = sole_reader(g, end)?;
    let an = g.node(add);
    let data: Vec<&String> = an.input.iter().filter(|s| !s.starts_with('^')).collect();
    if !matches!(an.op.as_str(), "Add" | "AddV2") || !is_float(an) || data.len() != 2 || slot > 1 {
        return None;
    }
    let summand = TensorName::parse(data[1 - slot]);
    if summand.node == g.node(end).name || const_behind(g, data[1 - slot]).is_some() {
        return None;
    }
    let relu = sole_reader(g, add)
        .filter(|&(r, slot)| slot == 0 && g.node(r).op == "Relu" && is_float(g.node(r)))
        .map(|(r, _)| r);
    Some(Sum { add, summand, relu, before: end })
}

/// Every chain of the graph, and for each other candidate op (Conv2D, DepthwiseConv2dNative,
/// MatMul, and a residual Add a chain could not take) why it is not one.
pub fn find_chains(g: &Graph) -> (Vec<Chain>, Vec<(NodeId, String)>) {
    let (mut chains, mut not) = (Vec::new(), Vec::new());
    for (id, n) in g.nodes() {
        if matches!(n.op.as_str(), "Conv2D" | "MatMul" | "DepthwiseConv2dNative") {
            match chain_at(g, id) {
                Ok(c) => chains.push(c),
                Err(why) => not.push((id, why)),
            }
        }
    }
    settle_sums(g, &mut chains, &mut not);
    (chains, not)
}

/// The fused-sum kernels write their result over the summand's buffer (TensorFlow forwards the
/// summand to the output and fails, or crashes, when something else still holds it). So a
/// residual Add stays with its chain only when every other reader of the summand is an
/// ancestor of the convolution (it has run before), the summand is no other chain's summand,
/// and the summand is not the output of the Add's other chain (two convolutions meeting in one
/// Add: the one reading slot 1 takes it, the other becomes its summand). Others lose the Add.
fn settle_sums(g: &Graph, chains: &mut [Chain], not: &mut Vec<(NodeId, String)>) {
    if chains.iter().all(|c| c.sum.is_none()) {
        return;
    }
    let order = g.topo_order().ok();
    let pos: Option<HashMap<NodeId, usize>> =
        order.as_ref().map(|o| o.iter().enumerate().map(|(i, &id)| (id, i)).collect());
    let folded = order.as_deref().map(|o| folded_by_tensorflow(g, o)).unwrap_or_default();
    let twins = order.as_deref().map(|o| twin_classes(g, o)).unwrap_or_default();
    let mut members: HashMap<NodeId, Vec<NodeId>> = HashMap::new();
    for (&id, &class) in &twins {
        members.entry(class).or_default().push(id);
    }
    // A summand and its twins are one tensor (one buffer) once TensorFlow has merged them.
    let tensor_key = |t: &TensorName| match g.id(&t.node) {
        Some(id) => format!("{}:{}", twins.get(&id).copied().unwrap_or(id).0, t.port),
        None => t.to_string(),
    };
    let mut summands: HashMap<String, usize> = HashMap::new();
    let mut claims: HashMap<NodeId, usize> = HashMap::new();
    for c in chains.iter() {
        if let Some(s) = &c.sum {
            *summands.entry(tensor_key(&s.summand)).or_default() += 1;
            *claims.entry(s.add).or_default() += 1;
        }
    }
    for c in chains.iter_mut() {
        let Some(s) = &c.sum else { continue };
        let add = g.node(s.add);
        let why = if claims[&s.add] > 1
            && add.input.first().map(|i| TensorName::parse(i).node)
                == Some(g.node(s.before).name.clone())
        {
            // The other chain takes this Add; this one is its summand (no note: fused).
            *c = c.without_sum();
            continue;
        } else if summands[&tensor_key(&s.summand)] > 1 {
            Some(format!(
                "'{}' (or a duplicate of it, which TensorFlow merges with it) is the summand of \
                 several residual Adds",
                s.summand
            ))
        } else {
            match &pos {
                None => Some("the graph has a cycle".to_string()),
                Some(_) if g.id(&s.summand.node).is_some_and(|id| folded.contains(&id)) => {
                    Some(format!(
                        "'{}' depends on no input of the graph: TensorFlow folds it into a \
                         constant, whose buffer the kernel cannot overwrite",
                        s.summand
                    ))
                }
                Some(pos) => summand_blocked(g, pos, &twins, &members, c.op, &s.summand, s.add),
            }
        };
        if let Some(why) = why {
            not.push((
                s.add,
                format!(
                    "residual Add not fused into '{}': {why} (the fused kernel writes over the \
                     summand)",
                    g.node(c.op).name
                ),
            ));
            *c = c.without_sum();
        }
    }
}

/// The nodes (in topological `order`) that TensorFlow may fold into constants when it loads
/// the graph: `Const`, a stateless op reading only such nodes, and what reads only a tensor's
/// shape (a shape query, `ZerosLike`, `OnesLike`: folded when the shape is static).
fn folded_by_tensorflow(g: &Graph, order: &[NodeId]) -> HashSet<NodeId> {
    let mut set = HashSet::new();
    for &id in order {
        let n = g.node(id);
        let mut data = n.input.iter().filter(|s| !s.starts_with('^')).peekable();
        let folded = n.op == "Const"
            || is_shape_op(&n.op)
            || matches!(n.op.as_str(), "ZerosLike" | "OnesLike")
            || Registry::global().is_stateful(&n.op) != Some(true)
                && data.peek().is_some()
                && data.all(|s| g.id(&TensorName::parse(s).node).is_some_and(|p| set.contains(&p)));
        if folded {
            set.insert(id);
        }
    }
    set
}

/// Classes of nodes that TensorFlow may merge as duplicates when it loads the graph (its
/// common subexpression elimination): the same op and attributes, inputs from the same classes.
/// Drawn wide (input order, device and `_` attributes ignored), since a class too wide only
/// keeps an Add float. Each stateless node maps to the first node of its class in `order`.
fn twin_classes(g: &Graph, order: &[NodeId]) -> HashMap<NodeId, NodeId> {
    let mut class: HashMap<NodeId, NodeId> = HashMap::new();
    // By op and input classes: the nodes with those, compared by attributes.
    let mut seen: HashMap<String, Vec<NodeId>> = HashMap::new();
    for &id in order {
        let n = g.node(id);
        if n.op.starts_with("Placeholder") || Registry::global().is_stateful(&n.op) != Some(false) {
            continue;
        }
        let mut inputs: Vec<String> = n
            .input
            .iter()
            .map(|s| {
                let (ctl, name) = match s.strip_prefix('^') {
                    Some(rest) => ("^", rest),
                    None => ("", s.as_str()),
                };
                let t = TensorName::parse(name);
                match g.id(&t.node) {
                    Some(p) => format!("{ctl}{}:{}", class.get(&p).copied().unwrap_or(p).0, t.port),
                    None => format!("{ctl}{name}"),
                }
            })
            .collect();
        inputs.sort();
        inputs.dedup();
        let mut names: Vec<&String> = n.attr.keys().filter(|k| !k.starts_with('_')).collect();
        names.sort();
        let mut key = format!("{}|{}|{names:?}", n.op, inputs.join(","));
        if let Some(t) = n.attr_opt_tensor("value") {
            key += &format!(
                "|{}|{:?}|{}|{:x}",
                t.dtype,
                t.tensor_shape,
                t.tensor_content.len(),
                sampled_hash(&t.tensor_content)
            );
        }
        let attrs = |m: NodeId| {
            let a = &g.node(m).attr;
            names.len() == a.keys().filter(|k| !k.starts_with('_')).count()
                && names.iter().all(|k| a.get(*k) == n.attr.get(*k))
        };
        let bucket = seen.entry(key).or_default();
        // At most 16 comparisons per node (linear time on hostile graphs of many look-alike
        // nodes); past that the node joins the bucket's first class, which is only wider.
        match bucket.iter().copied().take(16).find(|&m| attrs(m)) {
            Some(m) => {
                class.insert(id, m);
            }
            None if bucket.len() >= 16 => {
                class.insert(id, bucket[0]);
            }
            None => {
                bucket.push(id);
                class.insert(id, id);
            }
        }
    }
    class
}

/// A hash of up to 64 bytes sampled evenly from `b` (with its length): equal contents hash
/// equally; different ones mostly differ, at a cost independent of the tensor's size.
fn sampled_hash(b: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    b.len().hash(&mut h);
    let step = (b.len() / 64).max(1);
    for x in b.iter().step_by(step).take(64) {
        x.hash(&mut h);
    }
    h.finish()
}

/// Why `summand` cannot be overwritten by the kernel replacing the chain at `op`: a reader of it
/// other than `add` that is not an ancestor of `op`.
fn summand_blocked(
    g: &Graph,
    pos: &HashMap<NodeId, usize>,
    twins: &HashMap<NodeId, NodeId>,
    members: &HashMap<NodeId, Vec<NodeId>>,
    op: NodeId,
    summand: &TensorName,
    add: NodeId,
) -> Option<String> {
    let src = g.id(&summand.node)?;
    // The readers of the summand and of its twins (which TensorFlow merges into one node).
    let class = twins.get(&src).copied().unwrap_or(src);
    let twins_of_src = members.get(&class).map_or(&[][..], Vec::as_slice);
    let readers: Vec<NodeId> = std::iter::once(src)
        .chain(twins_of_src.iter().copied().filter(|&t| t != src))
        .flat_map(|t| g.consumers().of_output(t, summand.port).map(|(r, _)| r).collect::<Vec<_>>())
        .filter(|&r| r != add)
        .collect();
    for r in readers {
        if !is_ancestor(g, pos, r, op) {
            return Some(format!("'{}' also reads it and may run later", g.node(r).name));
        }
    }
    None
}

/// Whether `a` is a proper ancestor of `b` (through data or control edges): a walk back from `b`
/// over the nodes between them in topological order, given up (false) after 4096 nodes.
fn is_ancestor(g: &Graph, pos: &HashMap<NodeId, usize>, a: NodeId, b: NodeId) -> bool {
    let (Some(&pa), Some(&pb)) = (pos.get(&a), pos.get(&b)) else { return false };
    if pa >= pb {
        return false;
    }
    let mut seen: HashSet<NodeId> = HashSet::new();
    let mut stack = vec![b];
    while let Some(id) = stack.pop() {
        for s in &g.node(id).input {
            let name = s.strip_prefix('^').unwrap_or(s);
            let Some(p) = g.id(&TensorName::parse(name).node) else { continue };
            if p == a {
                return true;
            }
            if pos.get(&p).is_some_and(|&i| i > pa) && seen.insert(p) {
                if seen.len() > 4096 {
                    return false;
                }
                stack.push(p);
            }
        }
    }
    false
}

/// The tensors whose ranges the rewrite needs (each chain's input and output), canonical
/// (`node:port`), sorted: what `tf-run --calibrate` fetches.
pub fn calibration_tensors(graph: &GraphDef) -> Result<Vec<String>, QuantError> {
    let g = Graph::from_graph_def(graph.clone())?;
    let (chains, _) = find_chains(&g);
    let mut set = BTreeSet::new();
    for c in &chains {
        set.insert(c.input.to_string());
        set.insert(format!("{}:0", g.node(c.end).name));
        if let Some((_, input, _)) = &c.pad {
            // Its shape decides whether the Pad folds into SAME padding.
            set.insert(input.to_string());
        }
        if let Some(s) = &c.sum {
            // The summand, and the chain's output without the Add (if the Add is not fused).
            set.insert(s.summand.to_string());
            set.insert(format!("{}:0", g.node(s.before).name));
        }
    }
    Ok(set.into_iter().collect())
}

/// One chain that became an int8 kernel (or, `--legacy-gtt`, a row of eight-bit ops).
#[derive(Debug, Clone, Serialize)]
pub struct Int8Node {
    /// The kernel's node (`--legacy-gtt`: the Conv2D's or MatMul's eight-bit op).
    pub node: String,
    /// Its op (`--legacy-gtt`: the eight-bit ops of the chain, joined by ` + `).
    pub kernel: String,
    /// The float nodes it replaces, first to last (the last one's name now is a Dequantize, or
    /// the kernel itself when it outputs float).
    pub replaces: Vec<String>,
    /// The input tensor, its 8-bit type and range.
    pub input: String,
    /// `quint8` or `qint8`.
    pub input_type: &'static str,
    /// How the input is quantized: `scaled` (symmetric, zero at code 0), or `min_first` (a
    /// MatMul input that can be negative: quint8 from min to max, zero at an integer code
    /// that the kernel's bias compensates).
    pub input_mode: &'static str,
    /// Range of the input: frozen from calibration, or that of the int8 op producing it.
    pub input_range: Option<[f32; 2]>,
    /// Whether the input comes straight from another int8 kernel (no QuantizeV2).
    pub input_from_int8: bool,
    /// The frozen output range (`null`: measured at run time by `RequantizationRange`).
    pub output_range: Option<[f32; 2]>,
    /// Scales of the weight (output channels, or 1).
    pub weight_scales: usize,
    /// A residual Add fused into the kernel: its summand tensor and that tensor's 8-bit type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub summand: Option<[String; 2]>,
    /// A residual Add without Relu: the output's codes hold the sum plus this (see the docs).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub output_offset: Option<f32>,
    /// A zero `Pad` before the convolution that the kernel's SAME padding does instead (the Pad
    /// stays for any other reader).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub folded_pad: Option<String>,
}

/// A candidate that stayed float.
#[derive(Debug, Clone, Serialize)]
pub struct FloatNode {
    /// The node.
    pub node: String,
    /// Its op.
    pub op: String,
    /// Why.
    pub why: String,
}

/// What `--activations` did: under `changes.quant.activations` in the report.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ActivationReport {
    /// The ranges file.
    pub ranges: String,
    /// The threshold rule.
    pub calibration: String,
    /// `onednn` (fused int8 kernels) or `legacy-gtt`.
    pub form: &'static str,
    /// `--legacy-gtt`: `frozen` or `dynamic` requantization ranges.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requantization: Option<&'static str>,
    /// Whether the ranges came from generated inputs.
    pub smoke_run_only: bool,
    /// Chains that became int8 kernels.
    pub int8: Vec<Int8Node>,
    /// Max pools (`--legacy-gtt`: and average pools) that run on the int8 tensors.
    pub int8_pools: Vec<String>,
    /// `--legacy-gtt`: the Reshape, ConcatV2, Relu and Relu6 nodes that run on int8 tensors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub int8_other: Vec<String>,
    /// Candidates left float and why.
    pub float: Vec<FloatNode>,
    /// QuantizeV2 nodes added (region entries).
    pub quantize_nodes: usize,
    /// Dequantize nodes added (region exits; unread ones are never run).
    pub dequantize_nodes: usize,
    /// How many nodes of each quantized op type the output graph has (`Quantized*`,
    /// `QuantizeV2`, `Dequantize`, `Requantize`, `RequantizationRange`).
    pub eight_bit_ops: BTreeMap<String, usize>,
}

pub(crate) fn floats(shape: &[i64], v: &[f32]) -> TensorProto {
    Tensor::from_values(dt::FLOAT, shape, v).expect("shape and values agree").to_proto()
}

pub(crate) fn node(name: &str, op: &str, inputs: Vec<String>, device: &str) -> NodeDef {
    NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: inputs,
        device: device.to_string(),
        ..Default::default()
    }
}

pub(crate) fn constant(name: &str, value: TensorProto, device: &str) -> NodeDef {
    let mut n = node(name, "Const", Vec::new(), device);
    let t = DataType::try_from(value.dtype).unwrap_or(DataType::DtInvalid);
    n.attr.insert("dtype".into(), t.into());
    n.attr.insert("value".into(), value.into());
    n
}

pub(crate) fn qtype(code: i32) -> DataType {
    if code == dt::QINT8 {
        DataType::DtQint8
    } else {
        DataType::DtQuint8
    }
}

pub(crate) fn qname(code: i32) -> &'static str {
    if code == dt::QINT8 {
        "qint8"
    } else {
        "quint8"
    }
}

/// A float tensor's values as little-endian bytes (borrowed when stored that way).
pub(crate) fn float_bytes(t: &Tensor) -> Result<std::borrow::Cow<'_, [u8]>, String> {
    match t.raw() {
        Some(b) => Ok(std::borrow::Cow::Borrowed(b.as_ref())),
        None => {
            let v = t.values::<f32>().map_err(|e| e.to_string())?;
            Ok(std::borrow::Cow::Owned(v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        }
    }
}

/// Symmetric qint8 of a float weight per channel along the trailing `axes` (none: per
/// tensor), with the kernels (and so the codes) of weight-only int8: the payload and max |w|
/// per channel (1.0 for an all-zero channel), what the int8 kernels take as `max_filter`.
fn quantize_weight(t: &Tensor, axes: &[usize]) -> Result<(Vec<u8>, Vec<f32>), String> {
    let data = float_bytes(t)?;
    let layout = Layout::of(&t.shape, axes).ok_or("channel axes are not contiguous")?;
    let max_abs = kernels::max_abs(&data, layout)
        .ok_or_else(|| "the weight has NaN or infinite values".to_string())?;
    let scales: Vec<(f32, f32)> = max_abs.iter().map(|m| kernels::int8_scale(*m)).collect();
    let mut out = vec![0u8; data.len() / 4];
    kernels::int8(&data, layout, &scales, &mut out);
    Ok((out, scales.iter().map(|s| s.0 * 127.0).collect()))
}

/// Ranges wider than this have no 8-bit form here: the kernels' ranges derived from them
/// (widened by 255/127, shifted by an offset, or made to hold zero on a code) would overflow
/// float32 (about 3.4e38).
const RANGE_LIMIT: f32 = 1e36;

/// Why a calibrated range cannot be used (beyond [`RANGE_LIMIT`]), if it cannot.
fn beyond_8_bits((lo, hi): (f32, f32), what: &str) -> Option<String> {
    (lo.abs().max(hi.abs()) > RANGE_LIMIT)
        .then(|| format!("the {what} range [{lo}, {hi}] is beyond ±{RANGE_LIMIT:e}: no 8-bit form"))
}

/// The MIN_FIRST range of a MatMul input that can be negative: `[lo, hi]` widened to hold 0
/// and `QuantizeV2`'s minimum width (1 % of the largest magnitude, at least 0.01), then moved
/// by less than half a step so that 0 falls on a code: `min = -z · step`, `max = (255 - z) ·
/// step` with an integer `z`. Then `QuantizeV2(MIN_FIRST)` (which rounds the zero point to a
/// code) and a kernel that reads the codes as `(x - min) / step` agree exactly.
pub(crate) fn min_first_range(lo: f32, hi: f32) -> (f32, f32) {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    let min_width = 0.01 * 1f64.max(lo.abs()).max(hi.abs());
    let step = (hi - lo).max(min_width * 1.01) / 255.0;
    let z = (-lo / step).round().clamp(0.0, 255.0);
    ((-z * step) as f32, ((255.0 - z) * step) as f32)
}

/// The offset and step of a residual sum without Relu in `[lo, hi]`, written by a kernel with a
/// Relu as quint8 codes of `levels` steps (255; 127 for the signed-sum kernel): the offset is a
/// whole number of steps at least `-lo`, so that the sum plus the offset is non-negative and a
/// `Dequantize(MIN_FIRST)` on `[-offset, 255 · step - offset]` gives the sum back exactly.
pub(crate) fn offset_range(lo: f32, hi: f32, levels: f32) -> (f32, f32) {
    let (lo, hi) = (f64::from(lo.min(0.0)), f64::from(hi.max(0.0)));
    let step = (hi - lo).max(1e-6) / f64::from(levels);
    let z = (-lo / step).round().clamp(0.0, f64::from(levels));
    ((z * step) as f32, step as f32)
}

/// The float bias of a kernel fed `x - min` for `x` (a MIN_FIRST input, or an offset tensor,
/// read as SCALED): `b + min · Σᵢ ŵᵢⱼ`, ŵ being the qint8 weight `codes` (row-major, output
/// channels last: MatMul `[in, out]`, Conv2D HWIO, depthwise `[H, W, in, multiplier]`) times
/// `max_abs / 127`, `max_abs` per output channel or one for the tensor. Computed in f64; `Err`
/// if a value overflows f32.
pub(crate) fn shifted_bias(
    bias: &[f32],
    codes: &[u8],
    max_abs: &[f32],
    min: f32,
) -> Result<Vec<f32>, String> {
    let n = bias.len();
    if n == 0 || codes.len() % n != 0 {
        return Err(format!("{} weights do not make rows of {n} outputs", codes.len()));
    }
    let mut sums = vec![0i64; n];
    for row in codes.chunks_exact(n) {
        for (s, c) in sums.iter_mut().zip(row) {
            *s += i64::from(*c as i8);
        }
    }
    if max_abs.len() != 1 && max_abs.len() != n {
        return Err(format!("{} weight scales for {n} outputs", max_abs.len()));
    }
    let scale = |j: usize| f64::from(min) * f64::from(max_abs[j % max_abs.len()]) / 127.0;
    let out: Vec<f32> = bias
        .iter()
        .zip(&sums)
        .enumerate()
        .map(|(j, (b, s))| (f64::from(*b) + scale(j) * *s as f64) as f32)
        .collect();
    if out.iter().all(|v| v.is_finite()) {
        Ok(out)
    } else {
        Err("the bias with the input's zero point folded in overflows float32".into())
    }
}

/// The range of a tensor: a FakeQuant node producing it gives its own, else the ranges file.
pub(crate) fn range_of(
    g: &Graph,
    act: &Activations,
    tensor: &TensorName,
    what: &str,
) -> Result<(f32, f32), QuantError> {
    if let Some(n) = g.get(&tensor.node) {
        if tensor.port == 0 {
            if n.op == "FakeQuantWithMinMaxArgs" {
                let lo = n.attr.get("min").and_then(AttrValue::as_f32).unwrap_or(-6.0);
                let hi = n.attr.get("max").and_then(AttrValue::as_f32).unwrap_or(6.0);
                return Ok((lo.min(0.0), hi.max(0.0)));
            }
            if n.op == "FakeQuantWithMinMaxVars" && n.input.len() >= 3 {
                let scalar = |s: &str| {
                    let (id, _) = const_behind(g, s)?;
                    let t = Tensor::from_proto(g.node(id).attr_opt_tensor("value")?).ok()?;
                    t.values::<f32>().ok()?.first().copied()
                };
                if let (Some(lo), Some(hi)) = (scalar(&n.input[1]), scalar(&n.input[2])) {
                    return Ok((lo.min(0.0), hi.max(0.0)));
                }
            }
        }
    }
    let key = tensor.to_string();
    let r = act.ranges.tensors.get(&key).ok_or_else(|| QuantError::Ranges {
        file: act.file.clone(),
        why: format!(
            "no range for tensor '{key}' ({what}); calibrate this very graph with tf-run --calibrate"
        ),
    })?;
    Ok(r.pick(act.calibration))
}

/// A quantized tensor available in the graph: the node whose outputs 0, 1, 2 are its values,
/// min and max, and its type.
#[derive(Debug, Clone)]
pub(crate) struct QTensor {
    pub(crate) node: String,
    pub(crate) dtype: i32,
    pub(crate) range: Option<[f32; 2]>,
    /// The values the codes stand for (SCALED, `range`) are the tensor's plus this: a residual
    /// sum without a Relu, raised to be non-negative. Its readers take it back through their
    /// bias (only those without zero padding), its exit through `Dequantize(MIN_FIRST)`.
    pub(crate) offset: f32,
}

/// What the emitters of both forms share while the graph is rewritten.
pub(crate) struct Emitter<'a> {
    pub(crate) act: &'a Activations,
    pub(crate) names: Names,
    /// Float tensors (`node:port`) that an eight-bit op also computes, by that op.
    pub(crate) qsrc: HashMap<String, QTensor>,
    /// Region entries already made, by tensor, type and whether MIN_FIRST.
    quantized_inputs: HashMap<(String, i32, bool), QTensor>,
    /// Fused-sum kernels and the node whose output 0 is their summand.
    sums: Vec<(String, String)>,
    /// The chains' qint8 weights, quantized ahead on every thread (oneDNN form), by filter.
    weights: HashMap<NodeId, (Vec<u8>, Vec<f32>)>,
    /// The dimensions the graph's inputs leave open ([`dynamic_input_dims`]).
    dynamic_dims: Option<BTreeSet<usize>>,
    pub(crate) rep: ActivationReport,
}

impl Emitter<'_> {
    /// The quantized form of float `tensor` in `dtype` with range `(lo, hi)`: one QuantizeV2
    /// per tensor and type (named `base/quantize`, its range `…/quantize/min`, `/max`), SCALED
    /// for the oneDNN form, MIN_FIRST for the legacy one.
    pub(crate) fn quantize_input(
        &mut self,
        g: &mut Graph,
        tensor: &TensorName,
        dtype: i32,
        range: (f32, f32),
        base: &str,
        device: &str,
    ) -> Result<QTensor, QuantError> {
        let min_first = matches!(self.act.form, Form::LegacyGtt(_));
        self.quantize_input_as(g, tensor, dtype, range, min_first, base, device)
    }

    /// [`Emitter::quantize_input`] with the mode given: MIN_FIRST (`min_first`) or SCALED.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn quantize_input_as(
        &mut self,
        g: &mut Graph,
        tensor: &TensorName,
        dtype: i32,
        (lo, hi): (f32, f32),
        min_first: bool,
        base: &str,
        device: &str,
    ) -> Result<QTensor, QuantError> {
        let key = (tensor.to_string(), dtype, min_first);
        if let Some(q) = self.quantized_inputs.get(&key) {
            return Ok(q.clone());
        }
        let names = &mut self.names;
        let qn = names.fresh(&format!("{base}/quantize"));
        let (mn, mx) = (names.fresh(&format!("{qn}/min")), names.fresh(&format!("{qn}/max")));
        g.add_node(constant(&mn, floats(&[], &[lo]), device))?;
        g.add_node(constant(&mx, floats(&[], &[hi.max(lo + 1e-6)]), device))?;
        let mut q = node(&qn, "QuantizeV2", vec![tensor.to_string(), mn, mx], device);
        q.attr.insert("T".into(), qtype(dtype).into());
        if min_first {
            q.attr.insert("mode".into(), "MIN_FIRST".into());
        } else {
            q.attr.insert("mode".into(), "SCALED".into());
            q.attr.insert("round_mode".into(), "HALF_TO_EVEN".into());
        }
        g.add_node(q)?;
        self.rep.quantize_nodes += 1;
        let q = QTensor { node: qn, dtype, range: Some([lo, hi]), offset: 0.0 };
        self.quantized_inputs.insert(key, q.clone());
        Ok(q)
    }

    /// [`Emitter::dequantize_in_place`] of `q`; an offset tensor is dequantized `MIN_FIRST` on
    /// `[-offset, max - offset]` (new `Const`s), which takes the offset back exactly since the
    /// offset is a whole number of steps.
    pub(crate) fn exit_in_place(
        &mut self,
        g: &mut Graph,
        id: NodeId,
        q: &QTensor,
    ) -> Result<(), QuantError> {
        if q.offset == 0.0 {
            self.dequantize_in_place(g, id, &q.node, q.dtype);
            return Ok(());
        }
        let orig = g.node(id).clone();
        let top = q.range.map_or(0.0, |r| r[1]);
        let lo = self.names.fresh(&format!("{}/exit_min", orig.name));
        let hi = self.names.fresh(&format!("{}/exit_max", orig.name));
        g.add_node(constant(&lo, floats(&[], &[-q.offset]), &orig.device))?;
        g.add_node(constant(&hi, floats(&[], &[top - q.offset]), &orig.device))?;
        let mut attr = orig.attr.clone();
        attr.retain(|k, _| k.starts_with('_'));
        let mut d =
            NodeDef { op: "Dequantize".into(), input: vec![q.node.clone(), lo, hi], attr, ..orig };
        d.attr.insert("T".into(), qtype(q.dtype).into());
        d.attr.insert("mode".into(), "MIN_FIRST".into());
        d.attr.insert("dtype".into(), DataType::DtFloat.into());
        g.replace_node(id, d);
        self.rep.dequantize_nodes += 1;
        Ok(())
    }

    /// `Dequantize` of `src`'s outputs 0-2 in place of node `id` (which keeps its name, device
    /// and `_` attributes, so float readers and fetches are unchanged).
    pub(crate) fn dequantize_in_place(&mut self, g: &mut Graph, id: NodeId, src: &str, dtype: i32) {
        let orig = g.node(id);
        let mut attr = orig.attr.clone();
        attr.retain(|k, _| k.starts_with('_'));
        let mut d = NodeDef {
            op: "Dequantize".into(),
            input: vec![src.to_string(), format!("{src}:1"), format!("{src}:2")],
            attr,
            ..orig.clone()
        };
        d.attr.insert("T".into(), qtype(dtype).into());
        let mode = match self.act.form {
            Form::OneDnn => "SCALED",
            Form::LegacyGtt(_) => "MIN_FIRST",
        };
        d.attr.insert("mode".into(), mode.into());
        d.attr.insert("dtype".into(), DataType::DtFloat.into());
        g.replace_node(id, d);
        self.rep.dequantize_nodes += 1;
    }
}

/// The full-integer rewrite; see the module docs.
pub fn rewrite(
    graph: GraphDef,
    act: &Activations,
    exclude: &[Regex],
    include: &[Regex],
    threads: usize,
) -> Result<Quantized, QuantError> {
    let mut g = Graph::from_graph_def(graph)?;
    g.check(Some(Registry::global()))?;
    let legacy = match act.form {
        Form::OneDnn => None,
        Form::LegacyGtt(r) => Some(r),
    };
    let rep = ActivationReport {
        ranges: act.file.clone(),
        calibration: act.calibration.to_string(),
        form: if legacy.is_some() { "legacy-gtt" } else { "onednn" },
        requantization: legacy.map(|r| r.name()),
        smoke_run_only: act.ranges.smoke_run_only,
        ..Default::default()
    };
    let mut report = QuantReport {
        mode: "int8".into(),
        granularity: Some(if legacy.is_some() { "per_tensor" } else { "per_channel" }.into()),
        encoding: Some(if legacy.is_some() { "legacy-gtt" } else { "int8-kernels" }.into()),
        min_elements: 0,
        ..Default::default()
    };
    if act.ranges.smoke_run_only {
        report.warnings.push(format!(
            "{}: ranges from generated inputs (smoke run only); calibrate on real samples \
             before using this graph",
            act.file
        ));
    }
    let names = Names::new(g.nodes().map(|(_, n)| n.name.clone()));
    let mut st = Emitter {
        act,
        names,
        qsrc: HashMap::new(),
        quantized_inputs: HashMap::new(),
        sums: Vec::new(),
        weights: HashMap::new(),
        dynamic_dims: dynamic_input_dims(&g),
        rep,
    };
    let (chains, not) = find_chains(&g);
    for (id, why) in not {
        let n = g.node(id);
        st.rep.float.push(FloatNode { node: n.name.clone(), op: n.op.clone(), why });
    }
    // A chain is rewritten when the walk reaches its last node: by then the producers of its
    // input and of a residual summand have been rewritten.
    // The chains the flags leave float, by last node, with the reason.
    let mut skipped: HashMap<NodeId, String> = chains
        .iter()
        .filter_map(|c| Some((c.end, left_float_by_flags(&g, c, act, include, exclude)?)))
        .collect();
    if legacy.is_none() {
        let kept: Vec<&Chain> = chains.iter().filter(|c| !skipped.contains_key(&c.end)).collect();
        st.weights = quantize_weights(&g, &kept, threads);
    }
    let by_end: HashMap<NodeId, Chain> = chains.into_iter().map(|c| (c.end, c)).collect();
    let order = g.topo_order()?;
    let mut dead: Vec<NodeId> = Vec::new();
    for id in order {
        if !g.is_live(id) {
            continue;
        }
        if let Some(c) = by_end.get(&id) {
            // The chain's first node, as the report names it (before the rewrite replaces it).
            let head = (g.node(c.op).name.clone(), g.node(c.op).op.clone());
            if let Some(why) = skipped.remove(&id) {
                let (node, op) = head;
                st.rep.float.push(FloatNode { node, op, why });
                continue;
            }
            let done = match legacy {
                None => emit_chain(&mut g, c, &mut st)?,
                Some(r) => {
                    if let Some(s) = &c.sum {
                        let add = g.node(s.add);
                        st.rep.float.push(FloatNode {
                            node: add.name.clone(),
                            op: add.op.clone(),
                            why: "the Graph Transform Tool's form has no fused residual Add".into(),
                        });
                    }
                    crate::legacy::emit_chain(&mut g, &c.without_sum(), &mut st, r)?
                }
            };
            match done {
                Ok(()) => dead.extend(c.filter.1.iter().rev().chain([&c.filter.0]).copied()),
                Err(why) => {
                    let (node, op) = head;
                    st.rep.float.push(FloatNode { node, op, why });
                    continue;
                }
            }
            if let Some(b) = &c.bias {
                dead.extend(b.2.iter().rev().chain([&b.1]).copied());
            }
            continue;
        }
        match legacy {
            None if g.node(id).op == "MaxPool" => pass_through(&mut g, id, &mut st)?,
            None => false,
            Some(_) => crate::legacy::pass_through(&mut g, id, &mut st)?,
        };
    }
    order_summand_readers(&mut g, &st.sums);
    // The float weights and biases nothing reads any more.
    for id in dead {
        if g.is_live(id) && !g.consumers().has_any(id) {
            g.remove_node(id);
        }
    }
    g.check(Some(Registry::global())).map_err(QuantError::InvalidResult)?;
    let mut rep = st.rep;
    for (_, n) in g.nodes() {
        let op = n.op.as_str();
        if op.starts_with("Quantize") || op.starts_with("Requantiz") || op == "Dequantize" {
            *rep.eight_bit_ops.entry(n.op.clone()).or_default() += 1;
        }
    }
    if rep.int8.is_empty() {
        report.warnings.push(format!(
            "no op became int8 ({} candidate(s) stay float, see --report); the graph is \
             passed through unchanged",
            rep.float.len()
        ));
    }
    report.activations = Some(rep);
    Ok(Quantized { graph: g.into_graph_def(), report, payload: Bytes::new() })
}

/// Why `--include`, `--exclude` or `--min-matmul-weights` (oneDNN form) leave chain `c` float.
fn left_float_by_flags(
    g: &Graph,
    c: &Chain,
    act: &Activations,
    include: &[Regex],
    exclude: &[Regex],
) -> Option<String> {
    let (name, end_name) = (&g.node(c.op).name, &g.node(c.end).name);
    if !include.is_empty() && !include.iter().any(|r| r.is_match(name)) {
        return Some("matches no --include pattern".to_string());
    }
    if let Some(r) = exclude.iter().find(|r| r.is_match(name) || r.is_match(end_name)) {
        return Some(format!("excluded by --exclude '{}'", r.as_str()));
    }
    // Dims are positive (checked by `chain_at`) but claimed, not checked yet.
    let weights = dims_of(g.node(c.filter.0)).iter().fold(1u64, |a, &d| a.saturating_mul(d as u64));
    (act.form == Form::OneDnn && c.kind == Kind::MatMul && weights < act.min_matmul_weights).then(
        || {
            format!(
                "MatMul weight of {weights} elements, under --min-matmul-weights {}: the int8 \
                 kernel's fixed cost makes small products slower than float",
                act.min_matmul_weights
            )
        },
    )
}

/// The qint8 weights (codes and max |w| per output channel) of every chain whose weight decodes
/// and quantizes, on `threads` threads (0: one per core), the largest weights first onto the
/// least loaded thread. The rewrite itself then runs in graph order on one thread.
fn quantize_weights(
    g: &Graph,
    chains: &[&Chain],
    threads: usize,
) -> HashMap<NodeId, (Vec<u8>, Vec<f32>)> {
    type Job = (NodeId, Tensor, Vec<usize>, u64);
    let mut jobs: Vec<Job> = Vec::new();
    let mut seen = HashSet::new();
    for c in chains {
        let Some(t) = g.node(c.filter.0).attr_opt_tensor("value") else { continue };
        let Ok(t) = Tensor::from_proto(t) else { continue };
        let axes = match c.kind {
            Kind::Conv2D => vec![3],
            Kind::Depthwise => vec![2, 3],
            Kind::MatMul => Vec::new(),
        };
        if seen.insert(c.filter.0) {
            let n = tf_tensor::num_elements(&t.shape).unwrap_or(0);
            jobs.push((c.filter.0, t, axes, n));
        }
    }
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .clamp(1, jobs.len().max(1));
    jobs.sort_by_key(|j| std::cmp::Reverse(j.3));
    let mut buckets: Vec<(u64, Vec<Job>)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for j in jobs {
        let b = buckets.iter_mut().min_by_key(|b| b.0).expect("at least one bucket");
        b.0 = b.0.saturating_add(j.3);
        b.1.push(j);
    }
    let work = |jobs: Vec<Job>| {
        jobs.into_iter()
            .filter_map(|(id, t, axes, _)| quantize_weight(&t, &axes).ok().map(|q| (id, q)))
            .collect::<Vec<_>>()
    };
    if threads == 1 {
        return buckets.into_iter().flat_map(|(_, j)| work(j)).collect();
    }
    std::thread::scope(|s| {
        let handles: Vec<_> = buckets.into_iter().map(|(_, j)| s.spawn(move || work(j))).collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("weight quantization worker panicked"))
            .collect()
    })
}

/// A single-input op reading an eight-bit tensor, run on it: `MaxPool` (both forms),
/// `AvgPool`, `Relu`, `Relu6`, `Reshape` (the legacy form). The op becomes `Quantized<Op>`
/// named `<op>/eightbit` and the original a Dequantize of it. Returns whether it did.
pub(crate) fn pass_through(
    g: &mut Graph,
    id: NodeId,
    st: &mut Emitter<'_>,
) -> Result<bool, QuantError> {
    let n = g.node(id).clone();
    let op = n.op.as_str();
    let fits = match op {
        "MaxPool" | "AvgPool" => nhwc(&n) && is_float(&n),
        "Relu" | "Relu6" | "Reshape" => is_float(&n),
        _ => false,
    };
    let Some(src) = n.input.first().filter(|_| fits).map(|s| TensorName::parse(s).to_string())
    else {
        return Ok(false);
    };
    let Some(q) = st.qsrc.get(&src).cloned() else { return Ok(false) };
    let (name, device) = (n.name.clone(), n.device.clone());
    let qop = format!("Quantized{op}");
    let mut inputs = vec![q.node.clone()];
    match op {
        "Reshape" => {
            let Some(shape) = n.input.get(1).filter(|s| !s.starts_with('^')) else {
                return Ok(false);
            };
            inputs.extend([shape.clone(), format!("{}:1", q.node), format!("{}:2", q.node)]);
        }
        _ => inputs.extend([format!("{}:1", q.node), format!("{}:2", q.node)]),
    }
    inputs.extend(n.input.iter().filter(|s| s.starts_with('^')).cloned());
    let mut qp = node(&st.names.fresh(&format!("{name}/eightbit")), &qop, inputs, &device);
    for a in ["ksize", "strides", "padding", "Tshape"] {
        if let Some(v) = n.attr.get(a) {
            qp.attr.insert(a.into(), v.clone());
        }
    }
    let t = qtype(q.dtype).into();
    match op {
        "Relu" | "Relu6" => {
            qp.attr.insert("Tinput".into(), t);
            qp.attr.insert("out_type".into(), qtype(q.dtype).into());
        }
        _ => {
            qp.attr.insert("T".into(), t);
        }
    }
    let qp_name = qp.name.clone();
    g.add_node(qp)?;
    // A max pool commutes with the offset; the legacy ops never see one.
    st.exit_in_place(g, id, &QTensor { node: qp_name.clone(), ..q.clone() })?;
    match op {
        "MaxPool" | "AvgPool" => st.rep.int8_pools.push(name.clone()),
        _ => st.rep.int8_other.push(name.clone()),
    }
    st.qsrc.insert(format!("{name}:0"), QTensor { node: qp_name, ..q });
    Ok(true)
}

/// A `Dequantize` reading a fused kernel's summand (a region exit, run only when something
/// fetches it) must run before the kernel overwrites the summand: it gets a control edge into
/// the kernel. (Other readers of the summand are ancestors of the kernel, see [`find_chains`].)
fn order_summand_readers(g: &mut Graph, sums: &[(String, String)]) {
    for (kernel, summand) in sums {
        let (Some(k), Some(src)) = (g.id(kernel), g.id(summand)) else { continue };
        let exits: Vec<String> = g
            .consumers()
            .of_output(src, 0)
            .map(|(r, _)| r)
            .filter(|&r| r != k && g.node(r).op == "Dequantize")
            .map(|r| g.node(r).name.clone())
            .collect();
        for d in exits {
            g.add_control_input(k, &d);
        }
    }
}

/// How a residual Add is fused: the summand in 8 bits (already, or to quantize with a range).
struct SumPlan {
    summand: TensorName,
    quantized: Option<QTensor>,
    range: (f32, f32),
}

/// Whether chain `c`'s residual Add can be fused, checked before anything changes.
fn sum_plan(g: &Graph, c: &Chain, st: &Emitter<'_>) -> Result<Result<SumPlan, String>, QuantError> {
    let s = c.sum.as_ref().expect("a chain with a residual Add");
    let act = st.act;
    let input_unsigned = match st.qsrc.get(&c.input.to_string()) {
        Some(q) => q.dtype == dt::QUINT8,
        None => range_of(g, act, &c.input, "input")?.0 >= 0.0,
    };
    if !input_unsigned {
        return Ok(Err("the convolution's input can be negative: the fused-sum kernels take \
                     quint8 input only"
            .into()));
    }
    let end = format!("{}:0", g.node(c.end).name);
    let shape = |t: &str| act.ranges.tensors.get(t).and_then(|r| r.shape.clone());
    match (shape(&s.summand.to_string()), shape(&end)) {
        (Some(a), Some(b)) if a == b => {
            // A size of 1 on both sides in every calibration run may hide a broadcast (a
            // summand [1, …] against a sum [n, …]) where the graph's inputs can change size:
            // the kernel then overwrites a buffer too small for its output (TensorFlow crashed
            // on a 1-sample calibration or a smoke run, then batch 7).
            let dynamic = &st.dynamic_dims;
            let hidden = a
                .iter()
                .enumerate()
                .find(|&(i, &d)| d == 1 && dynamic.as_ref().is_none_or(|set| set.contains(&i)));
            if let Some((i, _)) = hidden {
                return Ok(Err(format!(
                    "the summand '{}' and the sum had size 1 in dimension {i} in every \
                     calibration run, which an input of the graph leaves open: a broadcast \
                     Add cannot be ruled out; calibrate with batches of several samples",
                    s.summand
                )));
            }
        }
        (Some(a), Some(b)) => {
            return Ok(Err(format!(
                "the summand '{}' has shape {a:?}, the sum {b:?} (a broadcast Add)",
                s.summand
            )))
        }
        _ => {
            return Ok(Err(format!(
                "{} records no shapes for '{}' and '{end}' (calibrated by an older tf-run): \
                 recalibrate to fuse residual Adds",
                act.file, s.summand
            )))
        }
    }
    let quantized = st.qsrc.get(&s.summand.to_string()).cloned();
    let range = match &quantized {
        Some(q) => q.range.map_or((0.0, 0.0), |r| (r[0], r[1])),
        None => range_of(g, act, &s.summand, "residual summand")?,
    };
    if let Some(why) = beyond_8_bits(range, "summand") {
        return Ok(Err(why));
    }
    Ok(Ok(SumPlan { summand: s.summand.clone(), quantized, range }))
}

/// The dimensions (by index) whose size some input of the graph (a `Placeholder`) leaves
/// open, so that a tensor's size there can differ from run to run (a model's batch
/// dimension). `None` when an input's rank is open too (then any dimension can).
fn dynamic_input_dims(g: &Graph) -> Option<BTreeSet<usize>> {
    let mut set = BTreeSet::new();
    for (_, n) in g.nodes() {
        if !matches!(n.op.as_str(), "Placeholder" | "PlaceholderWithDefault") {
            continue;
        }
        let shape = n.attr_opt_shape("shape").filter(|s| !s.unknown_rank)?;
        set.extend(shape.dim.iter().enumerate().filter(|(_, d)| d.size < 0).map(|(i, _)| i));
    }
    Some(set)
}

/// Rewrites one chain into a fused oneDNN kernel, with its residual Add when it can (else the
/// Add stays float, with the reason in the report); the inner `Err` says why the chain stays
/// float (nothing changed then).
fn emit_chain(
    g: &mut Graph,
    c: &Chain,
    st: &mut Emitter<'_>,
) -> Result<Result<(), String>, QuantError> {
    let folded = fold_pad(c, g, st.act);
    let c = folded.as_ref().unwrap_or(c);
    let Some(s) = &c.sum else { return emit_fused(g, c, None, st) };
    match sum_plan(g, c, st)? {
        Ok(plan) => emit_fused(g, c, Some(plan), st),
        Err(why) => {
            let add = g.node(s.add);
            let (node, op) = (add.name.clone(), add.op.clone());
            st.rep.float.push(FloatNode {
                node,
                op,
                why: format!("residual Add not fused: {why}"),
            });
            emit_fused(g, &c.without_sum(), None, st)
        }
    }
}

fn emit_fused(
    g: &mut Graph,
    c: &Chain,
    sum: Option<SumPlan>,
    st: &mut Emitter<'_>,
) -> Result<Result<(), String>, QuantError> {
    let act = st.act;
    let op = g.node(c.op).clone();
    let end = g.node(c.end).clone();
    let replaces: Vec<String> = c.nodes().iter().map(|&id| g.node(id).name.clone()).collect();
    let device = op.device.clone();
    let input_key = c.input.to_string();
    // Whether the op pads its input with zeros (which an offset input would read as -offset).
    let fdims = dims_of(g.node(c.filter.0));
    let pads = c.kind != Kind::MatMul
        && (c.same || op.attr.get("padding").and_then(AttrValue::as_bytes) != Some(b"VALID"))
        && fdims[..2] != [1, 1];
    // The input: straight from an int8 kernel when one produces it in a type this op takes
    // (an offset tensor only if the op does not pad it).
    let upstream = st
        .qsrc
        .get(&input_key)
        .filter(|q| c.kind == Kind::Conv2D || q.dtype == dt::QUINT8)
        .filter(|q| q.offset == 0.0 || !pads)
        .cloned();
    let input_range = match &upstream {
        Some(_) => None,
        None => Some(range_of(g, act, &c.input, &format!("input of '{}'", op.name))?),
    };
    let out_range = range_of(
        g,
        act,
        &TensorName { node: end.name.clone(), port: 0 },
        &format!("output of '{}'", end.name),
    )?;
    for (what, r) in [("input", input_range), ("output", Some(out_range))] {
        if let Some(why) = r.and_then(|r| beyond_8_bits(r, what)) {
            return Ok(Err(why));
        }
    }
    if let Some((lo, _)) = input_range {
        if c.kind == Kind::Depthwise && lo < 0.0 {
            return Ok(Err(format!(
                "input '{input_key}' has negative values (min {lo}): the int8 depthwise kernel \
                 takes quint8 input only"
            )));
        }
    }
    // A MatMul whose input can be negative: quint8 MIN_FIRST input, zero point in the bias.
    let shifted = match input_range {
        Some((lo, hi)) if c.kind == Kind::MatMul && lo < 0.0 => Some(min_first_range(lo, hi)),
        _ => None,
    };
    let filter = g.node(c.filter.0);
    let wt = Tensor::from_proto(filter.attr_opt_tensor("value").expect("a Const"))
        .map_err(|source| QuantError::Tensor { node: filter.name.clone(), source })?;
    // The output-channel axes of the weight: its last (Conv2D), in · multiplier (depthwise),
    // none (MatMul: per tensor).
    let axes: Vec<usize> = match c.kind {
        Kind::Conv2D => vec![3],
        Kind::Depthwise => vec![2, 3],
        Kind::MatMul => Vec::new(),
    };
    let per_channel = !axes.is_empty();
    let done = st.weights.remove(&c.filter.0).map(Ok);
    let (payload, m) = match done.unwrap_or_else(|| quantize_weight(&wt, &axes)) {
        Ok(x) => x,
        Err(why) => return Ok(Err(format!("weight '{}': {why}", filter.name))),
    };
    let channels: i64 = match c.kind {
        Kind::MatMul => *wt.shape.last().expect("rank checked"),
        _ => m.len() as i64,
    };
    let bias_proto: TensorProto = match &c.bias {
        Some((_, b, _)) => g.node(*b).attr_opt_tensor("value").expect("a Const").clone(),
        None => floats(&[channels], &vec![0.0; channels as usize]),
    };
    let mut bias =
        match Tensor::from_proto(&bias_proto).and_then(|t| t.values::<f32>()).map(|v| v.to_vec()) {
            Ok(b) => b,
            Err(e) => return Ok(Err(format!("bias of '{}': {e}", op.name))),
        };
    // What the kernel reads is x + in_offset: an offset tensor, or x - min of a MIN_FIRST input.
    let in_offset = match (&upstream, shifted) {
        (Some(q), _) => q.offset,
        (None, Some((amin, _))) => -amin,
        (None, None) => 0.0,
    };
    if in_offset != 0.0 {
        match shifted_bias(&bias, &payload, &m, -in_offset) {
            Ok(b) => bias = b,
            Err(why) => return Ok(Err(format!("bias of '{}': {why}", op.name))),
        }
    }

    // The input, quantized once per tensor and type.
    let (qin, input_from_int8) = match upstream {
        Some(q) => (q, true),
        None => {
            let (lo, hi) = input_range.expect("set when there is no upstream");
            let base = if c.input.port == 0 {
                c.input.node.clone()
            } else {
                format!("{}_{}", c.input.node, c.input.port)
            };
            let q = match shifted {
                Some(r) => {
                    st.quantize_input_as(g, &c.input, dt::QUINT8, r, true, &base, &device)?
                }
                None => {
                    let dtype = if lo >= 0.0 { dt::QUINT8 } else { dt::QINT8 };
                    st.quantize_input(g, &c.input, dtype, (lo, hi), &base, &device)?
                }
            };
            (q, false)
        }
    };

    // The summand of a residual Add, in 8 bits.
    let summand = match sum {
        None => None,
        Some(p) => Some(match p.quantized {
            Some(q) => q,
            None => {
                let dtype = if p.range.0 >= 0.0 { dt::QUINT8 } else { dt::QINT8 };
                let base = if p.summand.port == 0 {
                    p.summand.node.clone()
                } else {
                    format!("{}_{}", p.summand.node, p.summand.port)
                };
                st.quantize_input(g, &p.summand, dtype, p.range, &base, &device)?
            }
        }),
    };

    // The frozen output range, and the output's offset.
    let (lo, hi) = out_range;
    let mut out_offset = 0.0;
    let (out_dtype, out) = match (c.act, &summand) {
        (_, Some(q)) => {
            // A qint8 summand: the kernel adds it in a signed 8-bit buffer that it then reads
            // as quint8, so codes above 127 saturate; told 255 steps, it uses 127 of them.
            let levels = if q.dtype == dt::QINT8 { 127.0 } else { 255.0 };
            let has_relu = c.sum.as_ref().is_some_and(|s| s.relu.is_some());
            let (c_out, step) =
                if has_relu { (0.0, hi.max(1e-6) / levels) } else { offset_range(lo, hi, levels) };
            // The kernel adds the summand's offset; the output takes its own.
            for b in bias.iter_mut() {
                *b += c_out - q.offset;
            }
            out_offset = c_out;
            (dt::QUINT8, [0.0, 255.0 * step])
        }
        (Some((_, Act::Relu)), None) => (dt::QUINT8, [0.0, hi.max(1e-6)]),
        (Some((_, Act::Relu6)), None) => (dt::QUINT8, [0.0, hi.clamp(1e-6, 6.0)]),
        (None, None) => {
            let a = lo.abs().max(hi.abs()).max(1e-6);
            (dt::QINT8, [-a, a])
        }
    };
    if bias.iter().any(|b| !b.is_finite()) {
        return Ok(Err(format!("bias of '{}': not finite with the offsets folded in", op.name)));
    }
    let bias = floats(&[channels], &bias);
    let dequantizes = c.kind == Kind::MatMul && c.act.is_none();
    let kernel = match (c.kind, c.act.is_some()) {
        _ if summand.as_ref().is_some_and(|q| q.dtype == dt::QINT8) => {
            "QuantizedConv2DWithBiasSignedSumAndReluAndRequantize"
        }
        _ if summand.is_some() => "QuantizedConv2DWithBiasSumAndReluAndRequantize",
        (Kind::Conv2D, true) => "QuantizedConv2DWithBiasAndReluAndRequantize",
        (Kind::Conv2D, false) => "QuantizedConv2DWithBiasAndRequantize",
        (Kind::Depthwise, _) => "QuantizedDepthwiseConv2DWithBiasAndReluAndRequantize",
        (Kind::MatMul, true) => "QuantizedMatMulWithBiasAndReluAndRequantize",
        (Kind::MatMul, false) => "QuantizedMatMulWithBiasAndDequantize",
    };
    let base = &op.name;
    let names = &mut st.names;
    let kname =
        if dequantizes { end.name.clone() } else { names.fresh(&format!("{}/eightbit", end.name)) };
    let wn = names.fresh(&format!("{base}/weights_qint8"));
    let bn = names.fresh(&format!("{base}/bias"));
    let (wmin, wmax) =
        (names.fresh(&format!("{base}/weights_min")), names.fresh(&format!("{base}/weights_max")));
    let (omin, omax) =
        (names.fresh(&format!("{base}/output_min")), names.fresh(&format!("{base}/output_max")));
    let mshape: Vec<i64> = if per_channel { vec![channels] } else { vec![] };
    let neg: Vec<f32> = m.iter().map(|x| -x).collect();
    g.add_node(constant(&wn, payload_proto(dt::QINT8, &wt.shape, Bytes::from(payload)), &device))?;
    g.add_node(constant(&bn, bias, &device))?;
    g.add_node(constant(&wmin, floats(&mshape, &neg), &device))?;
    g.add_node(constant(&wmax, floats(&mshape, &m), &device))?;
    g.add_node(constant(&omin, floats(&[], &[out[0]]), &device))?;
    g.add_node(constant(&omax, floats(&[], &[out[1]]), &device))?;
    // The kernel's input range: the QuantizeV2's, or for a MIN_FIRST input [0, max - min]
    // (the kernel reads the codes as x - min; the bias adds min · Σ w back).
    let (amin, amax) = match shifted {
        Some((lo, hi)) => {
            let (a, b) = (
                st.names.fresh(&format!("{base}/input_min")),
                st.names.fresh(&format!("{base}/input_max")),
            );
            g.add_node(constant(&a, floats(&[], &[0.0]), &device))?;
            g.add_node(constant(&b, floats(&[], &[hi - lo]), &device))?;
            (a, b)
        }
        None => (format!("{}:1", qin.node), format!("{}:2", qin.node)),
    };
    let mut inputs = vec![qin.node.clone(), wn, bn, amin, amax, wmin, wmax, omin, omax];
    if let Some(q) = &summand {
        inputs.extend([q.node.clone(), format!("{}:1", q.node), format!("{}:2", q.node)]);
    }
    inputs.extend(c.control_inputs(g));
    let mut k = node(&kname, kernel, inputs, &device);
    let ty = |d: i32| AttrValue::from(qtype(d));
    match c.kind {
        Kind::Conv2D | Kind::Depthwise => {
            k.attr.insert("Tinput".into(), ty(qin.dtype));
            k.attr.insert("Tfilter".into(), ty(dt::QINT8));
            k.attr.insert("Tbias".into(), DataType::DtFloat.into());
            k.attr.insert("out_type".into(), ty(out_dtype));
            if let Some(q) = &summand {
                k.attr.insert("Tsummand".into(), ty(q.dtype));
                st.sums.push((kname.clone(), q.node.clone()));
            }
            for a in ["strides", "padding"] {
                k.attr.insert(a.into(), op.attr[a].clone());
            }
            if c.same {
                k.attr.insert("padding".into(), "SAME".into());
            }
            k.attr.insert("dilations".into(), vec![1i64, 1, 1, 1].into());
        }
        Kind::MatMul => {
            k.attr.insert("T1".into(), ty(dt::QUINT8));
            k.attr.insert("T2".into(), ty(dt::QINT8));
            k.attr.insert("Tbias".into(), DataType::DtFloat.into());
            k.attr.insert("transpose_a".into(), false.into());
            k.attr.insert("transpose_b".into(), false.into());
            k.attr.insert("input_quant_mode".into(), "SCALED".into());
            if dequantizes {
                k.attr.insert("Toutput".into(), DataType::DtFloat.into());
            } else {
                k.attr.insert("Toutput".into(), ty(out_dtype));
            }
        }
    }
    if dequantizes {
        // The kernel itself takes the last node's name (and its `_` attributes).
        for (a, v) in end.attr.iter().filter(|(a, _)| a.starts_with('_')) {
            k.attr.insert(a.clone(), v.clone());
        }
        k.device = end.device.clone();
        c.remove_inner(g);
        g.replace_node(c.end, k);
    } else {
        g.add_node(k)?;
        c.remove_inner(g);
        let q =
            QTensor { node: kname.clone(), dtype: out_dtype, range: Some(out), offset: out_offset };
        st.exit_in_place(g, c.end, &q)?;
        st.qsrc.insert(format!("{}:0", end.name), q);
    }
    st.rep.int8.push(Int8Node {
        node: kname,
        kernel: kernel.to_string(),
        replaces,
        input: input_key,
        input_type: qname(qin.dtype),
        input_mode: if shifted.is_some() {
            "min_first"
        } else if in_offset != 0.0 {
            "offset"
        } else {
            "scaled"
        },
        input_range: qin.range,
        input_from_int8,
        output_range: Some(out),
        weight_scales: m.len(),
        summand: c
            .sum
            .as_ref()
            .zip(summand.as_ref())
            .map(|(s, q)| [s.summand.to_string(), qname(q.dtype).to_string()]),
        output_offset: (out_offset != 0.0).then_some(out_offset),
        folded_pad: c.pad.as_ref().filter(|_| c.same).map(|p| g.node(p.0).name.clone()),
    });
    Ok(Ok(()))
}
