//! `tf-quant`: store a TensorFlow graph's weights in fewer bits, in a GraphDef that stock
//! TensorFlow still loads and runs.
//!
//! [`quantize_graph_def`] takes a GraphDef and a [`QuantConfig`] and returns the rewritten
//! graph, a [`QuantReport`] (per tensor: shape, channel axes, bytes before and after, max
//! absolute error and SNR of what the graph will compute) and the buffer holding every new
//! payload, which the caller hands to the writer so the quantized values are written without
//! another copy.
//!
//! 1. **Select** ([`select`]): a float `Const` with at least `min_elements` elements is a
//!    weight when every reader takes it in a weight slot (a convolution's filter, a matrix
//!    product's constant operand, an embedding table); biases, batch-norm parameters, shapes
//!    and indices never are. `--include`/`--exclude` filter by node name.
//! 2. **Quantize** (the numeric kernels), in parallel over tensors, reading the float values
//!    straight from the input's `tensor_content` (a slice of the memory-mapped file):
//!    - `int8`: symmetric, narrow range, scale = max|w|/127 per output channel (per tensor
//!      with `--per-tensor`), TFLite's dynamic-range weight format;
//!    - `uint8`: the Graph Transform Tool's `quantize_weights` (quint8, MIN_FIRST, per tensor,
//!      its range rules and node names);
//!    - `float16`, `bfloat16`: round to nearest even;
//!    - `round:N`: GTT's `round_weights` (without its FLT_MIN quirk, see [`Mode::Round`]).
//! 3. **Encode** ([`emit`]): int8 as `Const(DT_INT8) → Cast → Mul(scale)` (CPU, GPU and XLA)
//!    or, with [`Encoding::Dequantize`], `Dequantize(SCALED, narrow_range, axis)`; uint8 as
//!    GTT's `Dequantize(MIN_FIRST)`; halves as `Const → Cast`; rounding in place. The last
//!    node keeps the weight's name, so nothing downstream changes.
//!
//! Constants that are not selected stay the very `TensorProto`s that were read (never
//! decoded or copied); `versions`, `library` and `debug_info` pass through. A graph without
//! float weights is returned unchanged, with a warning.

#![deny(missing_docs)]

pub mod activations;
mod config;
mod emit;
mod error;
mod kernels;
mod legacy;
pub mod ranges;
mod report;
pub mod select;

use bytes::Bytes;
pub use config::{compile_patterns, Encoding, Mode, QuantConfig};
pub use error::QuantError;
pub use kernels::ErrorStats;
pub use report::{QuantReport, SkipReason, Skipped, TensorReport, Totals};
use select::{Layout, Use};
use tf_graph::{Graph, NodeId};
use tf_ops::Registry;
use tf_proto::tensorflow::{GraphDef, NodeDef};
use tf_tensor::{dt, Tensor};

/// Per channel only when each channel has at least this many elements; below it the scales
/// would cost more than they save (an `[N,1]` embedding table, for instance).
pub const MIN_CHANNEL_ELEMENTS: usize = 8;

/// The result of [`quantize_graph_def`].
#[derive(Debug)]
pub struct Quantized {
    /// The rewritten graph.
    pub graph: GraphDef,
    /// What was done, tensor by tensor.
    pub report: QuantReport,
    /// The buffer every new payload is a slice of; pass it to the writer as a source so the
    /// payloads are not copied again.
    pub payload: Bytes,
}

/// A weight chosen for quantization.
struct Plan {
    id: NodeId,
    tensor: Tensor,
    uses: Vec<Use>,
    /// Channel axes (empty: per tensor).
    axes: Vec<usize>,
    layout: Layout,
    note: Option<String>,
    /// Bytes of the quantized payload.
    out_bytes: usize,
}

/// What quantizing one tensor produced, besides its payload.
enum Done {
    Int8 { scales: Vec<(f32, f32)>, max_abs: Vec<f32>, stats: ErrorStats },
    Uint8 { min: f32, max: f32, stats: ErrorStats, zero_fixed: bool },
    Half { stats: ErrorStats },
}

impl Done {
    fn stats(&self) -> &ErrorStats {
        match self {
            Done::Int8 { stats, .. } | Done::Uint8 { stats, .. } | Done::Half { stats } => stats,
        }
    }
}

/// Quantizes the weights of a GraphDef as configured; see the crate docs.
///
/// Errors: flags that do not fit the mode, a graph with duplicate or empty node names, a
/// weight whose value cannot be decoded.
pub fn quantize_graph_def(graph: GraphDef, cfg: &QuantConfig) -> Result<Quantized, QuantError> {
    cfg.validate()?;
    if let Some(a) = &cfg.activations {
        return activations::rewrite(graph, a, &cfg.exclude, &cfg.include, cfg.threads);
    }
    let g = Graph::from_graph_def(graph)?;
    // A broken input is the user's error, reported before anything is quantized.
    g.check(Some(Registry::global()))?;
    let mut report = QuantReport {
        mode: cfg.mode.name(),
        granularity: (cfg.mode == Mode::Int8)
            .then(|| if cfg.per_tensor { "per_tensor" } else { "per_channel" }.to_string()),
        encoding: (cfg.mode == Mode::Int8).then(|| cfg.encoding.name().to_string()),
        min_elements: cfg.min_elements,
        ..Default::default()
    };
    let plans = plan(&g, cfg, &mut report)?;

    // Every payload goes into one buffer, each tensor writing its own disjoint part.
    let total: usize = plans.iter().map(|p| p.out_bytes).sum();
    let mut arena = vec![0u8; total];
    let results = run_all(&plans, cfg, &mut arena);
    let arena = Bytes::from(arena);

    let mut names = emit::Names::new(g.nodes().map(|(_, n)| n.name.clone()));
    let mut replacements: Vec<(NodeId, Vec<NodeDef>)> = Vec::new();
    let mut offset = 0;
    let mut all = ErrorStats::default();
    for (p, r) in plans.iter().zip(results) {
        let payload = arena.slice(offset..offset + p.out_bytes);
        offset += p.out_bytes;
        let node = g.node(p.id);
        let done = match r {
            Ok(d) => d,
            Err(why) => {
                report.warnings.push(format!("'{}' stays float: {why}", node.name));
                report.skipped.push(Skipped {
                    name: node.name.clone(),
                    shape: p.tensor.shape.clone(),
                    why: why.to_string(),
                });
                continue;
            }
        };
        let origin = emit::Origin::new(node);
        let shape = &p.tensor.shape;
        let (nodes, bytes_after) = match (&done, cfg.mode) {
            (Done::Int8 { scales, max_abs, .. }, _) => match cfg.encoding {
                Encoding::CastMul => {
                    let s: Vec<f32> = scales.iter().map(|x| x.0).collect();
                    let scale_shape = Layout::scale_shape(shape, &p.axes);
                    let q = emit::payload_proto(dt::INT8, shape, payload);
                    (emit::int8_cast_mul(&origin, &mut names, q, &scale_shape, &s), 4 * s.len())
                }
                Encoding::Dequantize => (
                    emit::int8_dequantize(&origin, &mut names, payload, shape, &p.axes, max_abs),
                    8 * max_abs.len(),
                ),
            },
            (Done::Uint8 { min, max, .. }, _) => {
                let q = emit::payload_proto(dt::QUINT8, shape, payload);
                (emit::uint8_gtt(&origin, &mut names, q, *min, *max), 8)
            }
            (Done::Half { .. }, Mode::Float16) => (
                emit::half_cast(&origin, &mut names, emit::payload_proto(dt::HALF, shape, payload)),
                0,
            ),
            (Done::Half { .. }, Mode::Bfloat16) => (
                emit::half_cast(
                    &origin,
                    &mut names,
                    emit::payload_proto(dt::BFLOAT16, shape, payload),
                ),
                0,
            ),
            (Done::Half { .. }, _) => {
                (emit::rounded(&origin, emit::payload_proto(dt::FLOAT, shape, payload)), 0)
            }
        };
        let stats = done.stats();
        all.merge(stats);
        let elements = p.tensor.len();
        let per_channel = matches!(done, Done::Int8 { .. });
        report.tensors.push(TensorReport {
            name: node.name.clone(),
            read_by: p.uses.iter().map(Use::describe).collect(),
            shape: shape.clone(),
            axis: per_channel.then(|| p.axes.clone()),
            scales: per_channel.then_some(p.layout.channels),
            elements,
            bytes_before: 4 * elements,
            bytes_after: (p.out_bytes + bytes_after) as u64,
            max_abs_error: stats.max_abs_err as f64,
            snr_db: stats.snr_db(),
            nodes: nodes.iter().map(|n| n.name.clone()).collect(),
            note: match done {
                Done::Uint8 { zero_fixed: true, .. } => Some(
                    "GTT's zero point differs from Dequantize's here (a half-integer tie): \
                     quantized against Dequantize's, so values are not shifted by a step"
                        .to_string(),
                ),
                _ => p.note.clone(),
            },
        });
        replacements.push((p.id, nodes));
    }

    let t = &mut report.totals;
    t.tensors = report.tensors.len();
    t.elements = report.tensors.iter().map(|r| r.elements).sum();
    t.bytes_before = report.tensors.iter().map(|r| r.bytes_before).sum();
    t.bytes_after = report.tensors.iter().map(|r| r.bytes_after).sum();
    t.ratio = if t.bytes_before > 0 { t.bytes_after as f64 / t.bytes_before as f64 } else { 1.0 };
    t.max_abs_error = all.max_abs_err as f64;
    t.snr_db = all.snr_db();
    t.skipped = report.skipped.len();

    if replacements.is_empty() {
        report.warnings.push(no_weights_warning(&g, cfg, &report));
        return Ok(Quantized { graph: g.into_graph_def(), report, payload: Bytes::new() });
    }
    let graph = rebuild(g, replacements)?;
    Ok(Quantized { graph, report, payload: arena })
}

/// Writes the replacements in place of the weights they replace, helpers first, so a graph
/// in topological order stays so; then checks what TensorFlow's importer checks.
fn rebuild(
    g: Graph,
    mut replacements: Vec<(NodeId, Vec<NodeDef>)>,
) -> Result<GraphDef, QuantError> {
    let ids = g.ids();
    let mut gd = g.into_graph_def();
    replacements.sort_by_key(|(id, _)| *id);
    let mut repl = replacements.into_iter().peekable();
    let old = std::mem::take(&mut gd.node);
    gd.node.reserve(old.len() + 4 * repl.len());
    for (id, node) in ids.into_iter().zip(old) {
        match repl.peek() {
            Some((rid, _)) if *rid == id => gd.node.extend(repl.next().expect("peeked").1),
            _ => gd.node.push(node),
        }
    }
    let g = Graph::from_graph_def(gd)?;
    g.check(Some(Registry::global())).map_err(QuantError::InvalidResult)?;
    Ok(g.into_graph_def())
}

fn float_const(n: &NodeDef) -> bool {
    n.op == "Const"
        && n.attr.get("dtype").and_then(|a| a.as_type_i32()) == Some(dt::FLOAT)
        && n.attr_opt_tensor("value").is_some_and(|t| t.dtype == dt::FLOAT)
}

/// Chooses the weights to quantize, recording the float constants it leaves alone.
fn plan(g: &Graph, cfg: &QuantConfig, report: &mut QuantReport) -> Result<Vec<Plan>, QuantError> {
    let consumers = g.consumers();
    let mut plans = Vec::new();
    for (id, n) in g.nodes() {
        if !float_const(n) {
            continue;
        }
        let value = n.attr_opt_tensor("value").expect("checked by float_const");
        let dims: Vec<i64> = value
            .tensor_shape
            .as_ref()
            .map(|s| s.dim.iter().map(|d| d.size).collect())
            .unwrap_or_default();
        let elements = tf_tensor::num_elements(&dims).unwrap_or(0);
        let mut skip = |why: SkipReason| {
            report.skipped.push(Skipped {
                name: n.name.clone(),
                shape: dims.clone(),
                why: why.to_string(),
            })
        };
        let uses = match select::uses(g, &consumers, id, dims.len()) {
            Ok(u) => u,
            Err(not) => {
                if elements >= cfg.min_elements.max(1) {
                    skip(SkipReason::NotAWeight(not.to_string()));
                }
                continue;
            }
        };
        if elements < cfg.min_elements.max(1) {
            skip(SkipReason::TooSmall(cfg.min_elements));
            continue;
        }
        if let Err(why) = cfg.name_filter(&n.name) {
            skip(why);
            continue;
        }
        let tensor = Tensor::from_proto(value)
            .map_err(|source| QuantError::Tensor { node: n.name.clone(), source })?;
        let mut note = None;
        let mut axes = if cfg.mode == Mode::Int8 && !cfg.per_tensor {
            let axes = select::common_axes(&uses);
            if axes.is_empty() && uses.iter().any(|u| !u.axes.is_empty()) {
                note = Some("readers disagree on the channel axis: one scale".to_string());
            }
            axes
        } else {
            Vec::new()
        };
        let mut layout = match Layout::of(&dims, &axes) {
            Some(l) => l,
            None => {
                note = Some(format!("channel axes {axes:?} are not contiguous: one scale"));
                axes.clear();
                Layout::per_tensor(elements as usize)
            }
        };
        if layout.channels > 1 && layout.outer * layout.inner < MIN_CHANNEL_ELEMENTS {
            note = Some(format!(
                "{} elements per channel (< {MIN_CHANNEL_ELEMENTS}): one scale",
                layout.outer * layout.inner
            ));
            axes.clear();
            layout = Layout::per_tensor(elements as usize);
        }
        let n = elements as usize;
        let out_bytes = match cfg.mode {
            Mode::Int8 | Mode::Uint8 => n,
            Mode::Float16 | Mode::Bfloat16 => 2 * n,
            Mode::Round(_) => 4 * n,
        };
        plans.push(Plan { id, tensor, uses, axes, layout, note, out_bytes });
    }
    Ok(plans)
}

/// Tensors (by index) and the parts of the arena their payloads go to.
type Work<'a> = Vec<(usize, &'a mut [u8])>;

/// Quantizes every planned tensor into its part of `arena`, spreading the tensors over
/// threads by size.
fn run_all(plans: &[Plan], cfg: &QuantConfig, arena: &mut [u8]) -> Vec<Result<Done, SkipReason>> {
    let mut parts: Vec<(usize, &mut [u8])> = Vec::with_capacity(plans.len());
    let mut rest = arena;
    for (i, p) in plans.iter().enumerate() {
        let (mine, tail) = std::mem::take(&mut rest).split_at_mut(p.out_bytes);
        parts.push((i, mine));
        rest = tail;
    }
    let threads = match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    }
    .min(plans.len())
    .max(1);
    // Largest first onto the least loaded worker.
    parts.sort_by_key(|(i, _)| std::cmp::Reverse(plans[*i].out_bytes));
    let mut buckets: Vec<(usize, Work)> = (0..threads).map(|_| (0, Vec::new())).collect();
    for part in parts {
        let b = buckets.iter_mut().min_by_key(|b| b.0).expect("at least one bucket");
        b.0 += plans[part.0].out_bytes;
        b.1.push(part);
    }
    let mut results: Vec<Option<Result<Done, SkipReason>>> = plans.iter().map(|_| None).collect();
    let done: Vec<Vec<(usize, Result<Done, SkipReason>)>> = if threads == 1 {
        buckets
            .into_iter()
            .map(|(_, work)| {
                work.into_iter().map(|(i, out)| (i, quantize_one(&plans[i], cfg, out))).collect()
            })
            .collect()
    } else {
        std::thread::scope(|s| {
            let handles: Vec<_> = buckets
                .into_iter()
                .map(|(_, work)| {
                    s.spawn(move || {
                        work.into_iter()
                            .map(|(i, out)| (i, quantize_one(&plans[i], cfg, out)))
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().expect("quantization worker panicked")).collect()
        })
    };
    for (i, r) in done.into_iter().flatten() {
        results[i] = Some(r);
    }
    results.into_iter().map(|r| r.expect("every tensor was quantized")).collect()
}

/// Quantizes one tensor into `out`.
fn quantize_one(p: &Plan, cfg: &QuantConfig, out: &mut [u8]) -> Result<Done, SkipReason> {
    let data: &[u8] = p.tensor.raw().map_or(&[], |b| b.as_ref());
    let whole = Layout::per_tensor(p.layout.outer * p.layout.channels * p.layout.inner);
    match cfg.mode {
        Mode::Int8 => {
            let max_abs = kernels::max_abs(data, p.layout).ok_or(SkipReason::NotFinite)?;
            let scales: Vec<(f32, f32)> = max_abs.iter().map(|m| kernels::int8_scale(*m)).collect();
            let stats = kernels::int8(data, p.layout, &scales, out);
            // What Dequantize(SCALED) is given: ±127·scale reproduces the scale exactly.
            let max_abs = max_abs.iter().map(|m| if *m > 0.0 { *m } else { 1.0 }).collect();
            Ok(Done::Int8 { scales, max_abs, stats })
        }
        Mode::Uint8 => {
            kernels::max_abs(data, whole).ok_or(SkipReason::NotFinite)?;
            let (min, max) = kernels::gtt_range(data);
            let (stats, zero_fixed) = kernels::uint8_min_first(data, min, max, out);
            Ok(Done::Uint8 { min, max, stats, zero_fixed })
        }
        Mode::Float16 => {
            let m = kernels::max_abs(data, whole).ok_or(SkipReason::NotFinite)?[0];
            if half::f16::from_f32(m).is_infinite() {
                return Err(SkipReason::HalfOverflow(m.min(f32::MAX)));
            }
            let stats = kernels::half_like(
                data,
                out,
                |v| half::f16::from_f32(v).to_bits(),
                |h| half::f16::from_bits(h).to_f32(),
            );
            Ok(Done::Half { stats })
        }
        Mode::Bfloat16 => {
            kernels::max_abs(data, whole).ok_or(SkipReason::NotFinite)?;
            let stats = kernels::half_like(
                data,
                out,
                |v| half::bf16::from_f32(v).to_bits(),
                |h| half::bf16::from_bits(h).to_f32(),
            );
            Ok(Done::Half { stats })
        }
        Mode::Round(steps) => {
            kernels::max_abs(data, whole).ok_or(SkipReason::NotFinite)?;
            Ok(Done::Half { stats: kernels::round(data, steps, out) })
        }
    }
}

/// The warning for a graph with nothing to quantize, saying why.
fn no_weights_warning(g: &Graph, cfg: &QuantConfig, report: &QuantReport) -> String {
    let floats = g.nodes().filter(|(_, n)| float_const(n)).count();
    let variables = g
        .nodes()
        .filter(|(_, n)| matches!(n.op.as_str(), "VarHandleOp" | "VariableV2" | "Variable"))
        .count();
    let why = match (floats, report.skipped.len()) {
        (0, _) => "no float32 constants".to_string(),
        (n, 0) => format!("{n} float32 constant(s), none a weight of at least {} elements", cfg.min_elements),
        (n, k) => format!(
            "{n} float32 constant(s), none a weight of at least {} elements; {k} skipped, see --report",
            cfg.min_elements
        ),
    };
    let mut msg =
        format!("no float weights to quantize ({why}); the graph is passed through unchanged");
    if variables > 0 {
        msg.push_str(&format!(
            "; it has {variables} variable(s): freeze it first (tf-freeze model/ | tf-quant {})",
            cfg.mode
        ));
    }
    msg
}

#[cfg(test)]
mod tests;
