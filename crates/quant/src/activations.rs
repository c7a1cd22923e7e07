//! Full-integer rewrite (`tf-quant int8 --activations ranges.json`): activations as well as
//! weights in 8 bits, in the int8 kernels stock TensorFlow 2.21 runs on x86 CPUs through
//! oneDNN.
//!
//! A *chain* is `Conv2D(x, Const)` or `MatMul(x, Const)`, optionally followed by
//! `BiasAdd(·, Const)` and then `Relu` or `Relu6`, each step the only reader of the one before.
//! Each chain becomes one fused kernel:
//!
//! | chain | kernel | output |
//! |---|---|---|
//! | Conv2D (+BiasAdd) + Relu/Relu6 | `QuantizedConv2DWithBiasAndReluAndRequantize` | quint8, frozen range [0, max] (Relu6: max ≤ 6) |
//! | Conv2D (+BiasAdd) | `QuantizedConv2DWithBiasAndRequantize` | qint8, frozen range ±max\|x\| |
//! | MatMul (+BiasAdd) + Relu | `QuantizedMatMulWithBiasAndReluAndRequantize` | quint8, [0, max] |
//! | MatMul (+BiasAdd) | `QuantizedMatMulWithBiasAndDequantize` | float |
//!
//! Weights become per-output-channel symmetric qint8 `Const`s (MatMul: one range per tensor, as
//! the kernel takes scalar `min_b`/`max_b`), the bias stays a float `Const` (zeros when there is
//! no BiasAdd). Weights and bias must stay `Const`s feeding the kernel directly: oneDNN's graph
//! rewrite replaces these ops' placeholder CPU kernels only then.
//!
//! Activations enter a region through `QuantizeV2(SCALED)` (quint8 for a non-negative range,
//! qint8 otherwise; MatMul takes quint8 only, so a MatMul whose input can be negative stays
//! float) and leave it through `Dequantize(SCALED)`, which takes the name of the chain's last
//! node, so every float reader and fetch is unchanged. A kernel that reads another kernel's
//! requantized output (or a `QuantizedMaxPool` of it) reads it directly, with no dequantize and
//! quantize between. Everything else stays float; the report says why for each candidate op.
//!
//! The chains, and so the tensors whose ranges calibration must record, are found by
//! [`find_chains`], which `tf-run --calibrate` calls too.

use std::collections::{BTreeSet, HashMap};

use bytes::Bytes;
use regex::Regex;
use serde::Serialize;
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

/// What `--activations` needs besides the weight-mode flags.
#[derive(Debug, Clone)]
pub struct Activations {
    /// The ranges file, parsed.
    pub ranges: RangesFile,
    /// Its name, for messages.
    pub file: String,
    /// How a range is chosen from what was recorded.
    pub calibration: Calibration,
}

/// The op a chain starts with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Kind {
    /// `Conv2D`, NHWC, filter HWIO.
    Conv2D,
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
    /// The last node of the chain, whose output the chain computes.
    pub end: NodeId,
}

impl Chain {
    /// The nodes the chain replaces, first to last.
    fn nodes(&self) -> Vec<NodeId> {
        let mut v = vec![self.op];
        v.extend(self.bias.as_ref().map(|b| b.0));
        v.extend(self.act.map(|a| a.0));
        v
    }
}

/// A float `Const` behind `input` (through pass-throughs): its id and the pass-throughs.
fn const_behind(g: &Graph, input: &str) -> Option<(NodeId, Vec<NodeId>)> {
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

fn is_float(n: &NodeDef) -> bool {
    n.attr.get("T").and_then(AttrValue::as_type_i32).unwrap_or(dt::FLOAT) == dt::FLOAT
}

fn nhwc(n: &NodeDef) -> bool {
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
        "DepthwiseConv2dNative" => {
            return Err("depthwise convolutions stay float: the int8 depthwise kernel measured \
                        no faster than float on this CPU (~1.0x)"
                .into())
        }
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
        Kind::Conv2D => {
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
    let rank = if kind == Kind::Conv2D { 4 } else { 2 };
    if fdims.len() != rank || fdims.iter().any(|&d| d <= 0) {
        return Err(format!("weight '{}' has shape {fdims:?}", g.node(filter.0).name));
    }
    let channels = *fdims.last().expect("rank checked");
    let mut chain = Chain {
        op: id,
        kind,
        input: TensorName::parse(data[0]),
        filter,
        bias: None,
        act: None,
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
            "Relu6" if kind == Kind::Conv2D => Some(Act::Relu6),
            _ => None,
        };
        if let (Some(a), true) = (act, is_float(rn)) {
            chain.act = Some((r, a));
            chain.end = r;
        }
    }
    Ok(chain)
}

/// Every chain of the graph, and for each other candidate op (Conv2D, DepthwiseConv2dNative,
/// MatMul) why it is not one.
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
    (chains, not)
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
    }
    Ok(set.into_iter().collect())
}

/// One chain that became an int8 kernel.
#[derive(Debug, Clone, Serialize)]
pub struct Int8Node {
    /// The kernel's node.
    pub node: String,
    /// Its op.
    pub kernel: String,
    /// The float nodes it replaces, first to last (the last one's name now is a Dequantize, or
    /// the kernel itself when it outputs float).
    pub replaces: Vec<String>,
    /// The input tensor, its 8-bit type and range.
    pub input: String,
    /// `quint8` or `qint8`.
    pub input_type: &'static str,
    /// Range of the input: frozen from calibration, or that of the int8 op producing it.
    pub input_range: Option<[f32; 2]>,
    /// Whether the input comes straight from another int8 kernel (no QuantizeV2).
    pub input_from_int8: bool,
    /// The frozen output range.
    pub output_range: [f32; 2],
    /// Scales of the weight (output channels, or 1).
    pub weight_scales: usize,
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
    /// Whether the ranges came from generated inputs.
    pub smoke_run_only: bool,
    /// Chains that became int8 kernels.
    pub int8: Vec<Int8Node>,
    /// Max pools that run on the int8 tensors.
    pub int8_pools: Vec<String>,
    /// Candidates left float and why.
    pub float: Vec<FloatNode>,
    /// QuantizeV2 nodes added (region entries).
    pub quantize_nodes: usize,
    /// Dequantize nodes added (region exits; unread ones are never run).
    pub dequantize_nodes: usize,
}

fn floats(shape: &[i64], v: &[f32]) -> TensorProto {
    Tensor::from_values(dt::FLOAT, shape, v).expect("shape and values agree").to_proto()
}

fn node(name: &str, op: &str, inputs: Vec<String>, device: &str) -> NodeDef {
    NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: inputs,
        device: device.to_string(),
        ..Default::default()
    }
}

fn constant(name: &str, value: TensorProto, device: &str) -> NodeDef {
    let mut n = node(name, "Const", Vec::new(), device);
    let t = DataType::try_from(value.dtype).unwrap_or(DataType::DtInvalid);
    n.attr.insert("dtype".into(), t.into());
    n.attr.insert("value".into(), value.into());
    n
}

fn qtype(code: i32) -> DataType {
    if code == dt::QINT8 {
        DataType::DtQint8
    } else {
        DataType::DtQuint8
    }
}

fn qname(code: i32) -> &'static str {
    if code == dt::QINT8 {
        "qint8"
    } else {
        "quint8"
    }
}

/// Per-channel (last axis) or per-tensor symmetric qint8 of a float weight, with the kernels
/// (and so the codes) of weight-only int8: the payload and max |w| per channel (1.0 for an
/// all-zero channel), what the int8 kernels take as `max_filter`.
fn quantize_weight(t: &Tensor, per_channel: bool) -> Result<(Vec<u8>, Vec<f32>), String> {
    let owned;
    let data: &[u8] = match t.raw() {
        Some(b) => b.as_ref(),
        None => {
            let v = t.values::<f32>().map_err(|e| e.to_string())?;
            owned = v.iter().flat_map(|x| x.to_le_bytes()).collect::<Vec<u8>>();
            &owned
        }
    };
    let axes = if per_channel { vec![t.shape.len() - 1] } else { Vec::new() };
    let layout = Layout::of(&t.shape, &axes).expect("one axis is contiguous");
    let max_abs = kernels::max_abs(data, layout)
        .ok_or_else(|| "the weight has NaN or infinite values".to_string())?;
    let scales: Vec<(f32, f32)> = max_abs.iter().map(|m| kernels::int8_scale(*m)).collect();
    let mut out = vec![0u8; data.len() / 4];
    kernels::int8(data, layout, &scales, &mut out);
    Ok((out, scales.iter().map(|s| s.0 * 127.0).collect()))
}

/// The range of a tensor: a FakeQuant node producing it gives its own, else the ranges file.
fn range_of(
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
struct QTensor {
    node: String,
    dtype: i32,
    range: Option<[f32; 2]>,
}

/// The full-integer rewrite; see the module docs.
pub fn rewrite(
    graph: GraphDef,
    act: &Activations,
    exclude: &[Regex],
    include: &[Regex],
) -> Result<Quantized, QuantError> {
    let mut g = Graph::from_graph_def(graph)?;
    g.check(Some(Registry::global()))?;
    let mut rep = ActivationReport {
        ranges: act.file.clone(),
        calibration: act.calibration.to_string(),
        smoke_run_only: act.ranges.smoke_run_only,
        ..Default::default()
    };
    let mut report = QuantReport {
        mode: "int8".into(),
        granularity: Some("per_channel".into()),
        encoding: Some("int8-kernels".into()),
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
    let (chains, not) = find_chains(&g);
    for (id, why) in not {
        let n = g.node(id);
        rep.float.push(FloatNode { node: n.name.clone(), op: n.op.clone(), why });
    }
    let by_op: HashMap<NodeId, Chain> = chains.into_iter().map(|c| (c.op, c)).collect();
    let order = g.topo_order()?;
    let mut names = Names::new(g.nodes().map(|(_, n)| n.name.clone()));
    let mut qsrc: HashMap<String, QTensor> = HashMap::new();
    let mut quantized_inputs: HashMap<(String, i32), QTensor> = HashMap::new();
    let mut dead: Vec<NodeId> = Vec::new();
    for id in order {
        if !g.is_live(id) {
            continue;
        }
        if let Some(c) = by_op.get(&id) {
            let name = g.node(c.op).name.clone();
            let end_name = g.node(c.end).name.clone();
            let filtered = (!include.is_empty() && !include.iter().any(|r| r.is_match(&name)))
                .then(|| "matches no --include pattern".to_string())
                .or_else(|| {
                    exclude
                        .iter()
                        .find(|r| r.is_match(&name) || r.is_match(&end_name))
                        .map(|r| format!("excluded by --exclude '{}'", r.as_str()))
                });
            if let Some(why) = filtered {
                rep.float.push(FloatNode { node: name, op: g.node(id).op.clone(), why });
                continue;
            }
            match emit_chain(
                &mut g,
                c,
                act,
                &mut names,
                &mut qsrc,
                &mut quantized_inputs,
                &mut rep,
            )? {
                Ok(()) => dead.extend(c.filter.1.iter().rev().chain([&c.filter.0]).copied()),
                Err(why) => {
                    rep.float.push(FloatNode { node: name, op: g.node(id).op.clone(), why });
                    continue;
                }
            }
            if let Some(b) = &c.bias {
                dead.extend(b.2.iter().rev().chain([&b.1]).copied());
            }
            continue;
        }
        let n = g.node(id);
        if n.op == "MaxPool" && nhwc(n) && is_float(n) {
            let Some(src) = n.input.first().map(|s| TensorName::parse(s).to_string()) else {
                continue;
            };
            let Some(q) = qsrc.get(&src).cloned() else { continue };
            let (mp_name, device) = (n.name.clone(), n.device.clone());
            let controls = n.input.iter().filter(|s| s.starts_with('^')).cloned();
            let mut qp = node(
                &names.fresh(&format!("{mp_name}/eightbit")),
                "QuantizedMaxPool",
                [q.node.clone(), format!("{}:1", q.node), format!("{}:2", q.node)]
                    .into_iter()
                    .chain(controls)
                    .collect(),
                &device,
            );
            for a in ["ksize", "strides", "padding"] {
                if let Some(v) = n.attr.get(a) {
                    qp.attr.insert(a.into(), v.clone());
                }
            }
            qp.attr.insert("T".into(), qtype(q.dtype).into());
            let qp_name = qp.name.clone();
            g.add_node(qp)?;
            let deq = dequantize(g.node(id), &qp_name, q.dtype);
            g.replace_node(id, deq);
            rep.dequantize_nodes += 1;
            rep.int8_pools.push(mp_name.clone());
            qsrc.insert(format!("{mp_name}:0"), QTensor { node: qp_name, ..q });
        }
    }
    // The float weights and biases nothing reads any more.
    for id in dead {
        if g.is_live(id) && !g.consumers().has_any(id) {
            g.remove_node(id);
        }
    }
    g.check(Some(Registry::global())).map_err(QuantError::InvalidResult)?;
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

/// `Dequantize(SCALED)` of `src`'s outputs 0-2, in place of `orig` (its name, device and
/// `_` attributes).
fn dequantize(orig: &NodeDef, src: &str, dtype: i32) -> NodeDef {
    let mut attr = orig.attr.clone();
    attr.retain(|k, _| k.starts_with('_'));
    let mut d = NodeDef {
        op: "Dequantize".into(),
        input: vec![src.to_string(), format!("{src}:1"), format!("{src}:2")],
        attr,
        ..orig.clone()
    };
    d.attr.insert("T".into(), qtype(dtype).into());
    d.attr.insert("mode".into(), "SCALED".into());
    d.attr.insert("dtype".into(), DataType::DtFloat.into());
    d
}

/// Rewrites one chain; the inner `Err` says why it stays float (nothing changed then).
#[allow(clippy::too_many_arguments)]
fn emit_chain(
    g: &mut Graph,
    c: &Chain,
    act: &Activations,
    names: &mut Names,
    qsrc: &mut HashMap<String, QTensor>,
    quantized_inputs: &mut HashMap<(String, i32), QTensor>,
    rep: &mut ActivationReport,
) -> Result<Result<(), String>, QuantError> {
    let op = g.node(c.op).clone();
    let end = g.node(c.end).clone();
    let replaces: Vec<String> = c.nodes().iter().map(|&id| g.node(id).name.clone()).collect();
    let device = op.device.clone();
    let input_key = c.input.to_string();
    // The input: straight from an int8 kernel when one produces it in a type this op takes.
    let upstream =
        qsrc.get(&input_key).filter(|q| c.kind == Kind::Conv2D || q.dtype == dt::QUINT8).cloned();
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
    if let Some((lo, _)) = input_range {
        if c.kind == Kind::MatMul && lo < 0.0 {
            return Ok(Err(format!(
                "input '{input_key}' has negative values (min {lo}): the int8 MatMul kernels \
                 take quint8 input only"
            )));
        }
    }
    let filter = g.node(c.filter.0);
    let wt = Tensor::from_proto(filter.attr_opt_tensor("value").expect("a Const"))
        .map_err(|source| QuantError::Tensor { node: filter.name.clone(), source })?;
    let per_channel = c.kind == Kind::Conv2D;
    let (payload, m) = match quantize_weight(&wt, per_channel) {
        Ok(x) => x,
        Err(why) => return Ok(Err(format!("weight '{}': {why}", filter.name))),
    };
    let channels = *wt.shape.last().expect("rank checked");
    let bias: TensorProto = match &c.bias {
        Some((_, b, _)) => g.node(*b).attr_opt_tensor("value").expect("a Const").clone(),
        None => floats(&[channels], &vec![0.0; channels as usize]),
    };

    // The input, quantized once per tensor and type.
    let (qin, input_from_int8) = match upstream {
        Some(q) => (q, true),
        None => {
            let (lo, hi) = input_range.expect("set when there is no upstream");
            let dtype = if lo >= 0.0 { dt::QUINT8 } else { dt::QINT8 };
            let key = (input_key.clone(), dtype);
            if let Some(q) = quantized_inputs.get(&key) {
                (q.clone(), false)
            } else {
                let base = if c.input.port == 0 {
                    c.input.node.clone()
                } else {
                    format!("{}_{}", c.input.node, c.input.port)
                };
                let qn = names.fresh(&format!("{base}/quantize"));
                let (mn, mx) =
                    (names.fresh(&format!("{qn}/min")), names.fresh(&format!("{qn}/max")));
                g.add_node(constant(&mn, floats(&[], &[lo]), &device))?;
                g.add_node(constant(&mx, floats(&[], &[hi.max(lo + 1e-6)]), &device))?;
                let mut q = node(&qn, "QuantizeV2", vec![input_key.clone(), mn, mx], &device);
                q.attr.insert("T".into(), qtype(dtype).into());
                q.attr.insert("mode".into(), "SCALED".into());
                q.attr.insert("round_mode".into(), "HALF_TO_EVEN".into());
                g.add_node(q)?;
                rep.quantize_nodes += 1;
                let q = QTensor { node: qn, dtype, range: Some([lo, hi]) };
                quantized_inputs.insert(key, q.clone());
                (q, false)
            }
        }
    };

    // The frozen output range.
    let (lo, hi) = out_range;
    let (out_dtype, out) = match c.act {
        Some((_, Act::Relu)) => (dt::QUINT8, [0.0, hi.max(1e-6)]),
        Some((_, Act::Relu6)) => (dt::QUINT8, [0.0, hi.clamp(1e-6, 6.0)]),
        None => {
            let a = lo.abs().max(hi.abs()).max(1e-6);
            (dt::QINT8, [-a, a])
        }
    };
    let dequantizes = c.kind == Kind::MatMul && c.act.is_none();
    let kernel = match (c.kind, c.act.is_some()) {
        (Kind::Conv2D, true) => "QuantizedConv2DWithBiasAndReluAndRequantize",
        (Kind::Conv2D, false) => "QuantizedConv2DWithBiasAndRequantize",
        (Kind::MatMul, true) => "QuantizedMatMulWithBiasAndReluAndRequantize",
        (Kind::MatMul, false) => "QuantizedMatMulWithBiasAndDequantize",
    };
    let base = &op.name;
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
    let mut inputs = vec![
        qin.node.clone(),
        wn,
        bn,
        format!("{}:1", qin.node),
        format!("{}:2", qin.node),
        wmin,
        wmax,
        omin,
        omax,
    ];
    // The control inputs of every replaced node.
    for id in c.nodes() {
        for s in g.node(id).input.iter().filter(|s| s.starts_with('^')) {
            if !inputs.contains(s) {
                inputs.push(s.clone());
            }
        }
    }
    let mut k = node(&kname, kernel, inputs, &device);
    let ty = |d: i32| AttrValue::from(qtype(d));
    match c.kind {
        Kind::Conv2D => {
            k.attr.insert("Tinput".into(), ty(qin.dtype));
            k.attr.insert("Tfilter".into(), ty(dt::QINT8));
            k.attr.insert("Tbias".into(), DataType::DtFloat.into());
            k.attr.insert("out_type".into(), ty(out_dtype));
            for a in ["strides", "padding"] {
                k.attr.insert(a.into(), op.attr[a].clone());
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
        for id in c.nodes().into_iter().filter(|&i| i != c.end) {
            g.replace_control_input(&g.node(id).name.clone(), &end.name);
            g.remove_node(id);
        }
        g.replace_node(c.end, k);
    } else {
        g.add_node(k)?;
        for id in c.nodes().into_iter().filter(|&i| i != c.end) {
            g.replace_control_input(&g.node(id).name.clone(), &end.name);
            g.remove_node(id);
        }
        let deq = dequantize(&end, &kname, out_dtype);
        g.replace_node(c.end, deq);
        rep.dequantize_nodes += 1;
        qsrc.insert(
            format!("{}:0", end.name),
            QTensor { node: kname.clone(), dtype: out_dtype, range: Some(out) },
        );
    }
    rep.int8.push(Int8Node {
        node: kname,
        kernel: kernel.to_string(),
        replaces,
        input: input_key,
        input_type: qname(qin.dtype),
        input_range: qin.range,
        input_from_int8,
        output_range: out,
        weight_scales: m.len(),
    });
    Ok(Ok(()))
}
