//! The passes of tf-fold, and the analysis they share.
//!
//! Each pass takes the graph and the run's context and returns how many changes it made; the
//! runner ([`crate::fold`]) prunes what became unused after every pass that changed something
//! and repeats until nothing changes.

pub mod algebra;
pub mod batchnorm;
pub mod constant;
pub mod control;
pub mod dedupe;

use std::sync::Arc;

use tf_graph::{Graph, Input, NodeId};
use tf_proto::tensorflow::NodeDef;
use tf_tensor::Tensor;

use crate::eval::{self, EvalError};
use crate::ops::{self, Kind};
use crate::shape::{self, Facts};
use crate::{data_inputs, is_tf1_control_flow, Ctx, FoldError};

/// Nodes with more outputs than this are not analysed (nor folded).
const MAX_ANALYZED_OUTPUTS: usize = 1 << 12;

/// Splats stored in a typed field larger than this are not expanded to be analysed.
const MAX_DECODED_SPLAT: u64 = 64 << 20;

/// How a node's value became known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Known {
    /// Evaluated by a native kernel.
    Evaluated,
    /// From statically known shapes (Shape, Size, Rank, and integer arithmetic on them).
    Shape,
    /// Computed by TensorFlow's runtime (`--tf-eval`).
    TfRuntime,
}

impl Known {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Known::Evaluated => "evaluated",
            Known::Shape => "shape",
            Known::TfRuntime => "tf-eval",
        }
    }
}

/// Facts about every output of every node, in topological order.
pub(crate) struct Analysis {
    pub order: Vec<NodeId>,
    pub facts: Vec<Vec<Facts>>,
    /// For nodes that are not `Const`: whether all their outputs are known.
    pub known: Vec<Option<Known>>,
}

impl Analysis {
    /// Facts of a data input string.
    pub(crate) fn input(&self, g: &Graph, s: &str) -> Option<&Facts> {
        let Input::Data { node, port } = Input::parse(s) else { return None };
        self.facts.get(g.id(node)?.0)?.get(port as usize)
    }
}

/// Whether nodes of `op` only compute their outputs from their inputs, as far as the graph can
/// tell: stateless (says the registry), not TF1 control flow, not a function of the graph's
/// library, not an internal op (`_...`).
fn stateless_computation(ctx: &Ctx, op: &str) -> bool {
    ctx.ops.is_stateful(op) == Some(false)
        && !is_tf1_control_flow(op)
        && !ctx.ops.is_function(op)
        && !op.starts_with('_')
}

/// Whether a node may be replaced by its value: a [`stateless_computation`] of a kind that is
/// folded ([`Kind::Compute`] or [`Kind::Call`] in the op table: not a constant or an input).
pub(crate) fn is_pure(ctx: &Ctx, node: &NodeDef) -> bool {
    stateless_computation(ctx, &node.op)
        && matches!(ops::kind(&node.op), Kind::Compute | Kind::Call)
}

/// Whether duplicate merging may merge a node away: a constant, or a [`stateless_computation`]
/// that is neither an input nor a call ([`Kind::Feed`], [`Kind::Call`] in the op table).
pub(crate) fn is_mergeable(ctx: &Ctx, node: &NodeDef) -> bool {
    match ops::kind(&node.op) {
        Kind::Const => true,
        Kind::Feed | Kind::Call => false,
        Kind::Compute | Kind::Unfolded => stateless_computation(ctx, &node.op),
    }
}

fn const_facts(node: &NodeDef, ctx: &mut Ctx) -> Facts {
    let dtype = node.attr_opt_type("dtype").map(|d| d as i32);
    let Some(p) = node.attr_opt_tensor("value") else {
        ctx.report.warn(format!("constant '{}' has no value; left as it is", node.name));
        return Facts { dtype, ..Default::default() };
    };
    let shape: Option<Vec<i64>> =
        p.tensor_shape.as_ref().map(|s| s.dim.iter().map(|d| d.size).collect()).or(Some(vec![]));
    // Typed fields (splats included) are decoded into new memory, charged to the live budget;
    // `tensor_content` is a view of the input and costs nothing.
    let mut charge = 0;
    if p.tensor_content.is_empty() {
        let n = shape.as_deref().and_then(tf_tensor::num_elements).unwrap_or(0);
        let size = match tf_tensor::dtype::element_size(p.dtype) {
            Some(s) => s as u64,
            None => {
                let longest = p.string_val.iter().map(|s| s.len() as u64).max().unwrap_or(0);
                longest + eval::STRING_OVERHEAD
            }
        };
        let bytes = n.saturating_mul(size);
        if bytes > MAX_DECODED_SPLAT {
            return Facts { dtype, shape, ..Default::default() };
        }
        if bytes > ctx.live_left() {
            ctx.skipped_budget(node, "max-live-bytes", bytes, ctx.live_left());
            return Facts { dtype, shape, ..Default::default() };
        }
        charge = bytes;
    }
    match Tensor::from_proto(p) {
        Ok(t) if Some(t.dtype) == dtype || dtype.is_none() => {
            ctx.live_bytes += charge;
            Facts::of_value(Arc::new(t))
        }
        Ok(t) => {
            ctx.report.warn(format!(
                "constant '{}': attribute dtype {} but value of dtype {}; left as it is",
                node.name,
                tf_tensor::dtype::short_name(dtype.unwrap_or(0)),
                tf_tensor::dtype::short_name(t.dtype)
            ));
            Facts { dtype, ..Default::default() }
        }
        Err(e) => {
            ctx.report.warn(format!("constant '{}': {e}; left as it is", node.name));
            Facts { dtype, ..Default::default() }
        }
    }
}

/// Bytes a tensor takes in memory; strings count [`eval::STRING_OVERHEAD`] per element too.
pub(crate) fn value_bytes(t: &Tensor) -> u64 {
    match &t.data {
        tf_tensor::Data::Strings(s) => {
            s.iter().map(|x| x.len() as u64 + eval::STRING_OVERHEAD).sum()
        }
        _ => t.byte_size(),
    }
}

/// Bytes of an output with facts `f`, from its shape, before it is computed; a string output
/// is assumed to be made of copies of the longest input string (true of every string kernel).
fn predicted_bytes(f: &Facts, longest_string: u64) -> Option<u64> {
    let n = tf_tensor::num_elements(f.known_shape()?)?;
    let size = match tf_tensor::dtype::element_size(f.dtype?) {
        Some(s) => s as u64,
        None => longest_string + eval::STRING_OVERHEAD,
    };
    Some(n.saturating_mul(size))
}

/// Whether `out` is a view of one of `ins` (Identity, Reshape, ...): no new memory.
fn is_view(out: &Tensor, ins: &[Tensor]) -> bool {
    let tf_tensor::Data::Raw(o) = &out.data else { return false };
    let (start, end) = (o.as_ptr() as usize, o.as_ptr() as usize + o.len());
    ins.iter().any(|t| match &t.data {
        tf_tensor::Data::Raw(b) => {
            let base = b.as_ptr() as usize;
            start >= base && end <= base + b.len()
        }
        _ => false,
    })
}

/// Work of evaluating `node`: elements read or written, times the reduction length of a
/// matrix product.
fn work(node: &NodeDef, ins: &[Facts], predicted: &[Facts]) -> u64 {
    let elements = |fs: &[Facts]| -> u64 {
        fs.iter()
            .map(|f| f.known_shape().and_then(tf_tensor::num_elements).unwrap_or(0))
            .fold(0u64, u64::saturating_add)
    };
    let base = elements(ins).max(elements(predicted));
    // Matrix products: every output element reads a row and a column of length k.
    let reduction = ops::get(&node.op).and_then(|o| o.reduction).map_or(1, |f| f(node, ins));
    if reduction > 1 {
        elements(predicted).saturating_mul(reduction as u64).max(base)
    } else {
        base
    }
}

/// `MatMul`: the length of `a`'s rows.
pub(crate) fn mat_mul_reduction(node: &NodeDef, ins: &[Facts]) -> i64 {
    let a = ins.first().and_then(|f| f.known_shape().map(<[i64]>::to_vec));
    let ta = node.attr_opt_bool("transpose_a").unwrap_or(false);
    a.filter(|a| a.len() == 2).map_or(1, |a| a[usize::from(!ta)])
}

/// `BatchMatMul`, `V2`, `V3`: the length of `x`'s rows.
pub(crate) fn batch_mat_mul_reduction(node: &NodeDef, ins: &[Facts]) -> i64 {
    let a = ins.first().and_then(|f| f.known_shape().map(<[i64]>::to_vec));
    let adj = node.attr_opt_bool("adj_x").unwrap_or(false);
    a.filter(|a| a.len() >= 2).map_or(1, |a| a[a.len() - 1 - usize::from(adj)])
}

/// Runs shape inference over the graph in topological order; with `evaluate`, also evaluates
/// every pure node whose inputs are all known with the native evaluator (recording what it
/// could not do in the report).
pub(crate) fn analyze(g: &Graph, ctx: &mut Ctx, evaluate: bool) -> Result<Analysis, FoldError> {
    let order = g.topo_order()?;
    let cap = g.capacity();
    let mut facts: Vec<Vec<Facts>> = vec![Vec::new(); cap];
    let mut known: Vec<Option<Known>> = vec![None; cap];
    ctx.live_bytes = ctx.folded_bytes;
    for &id in &order {
        let node = g.node(id);
        let ins: Vec<Facts> = data_inputs(node)
            .map(|s| match Input::parse(s) {
                Input::Data { node: p, port } => g
                    .id(p)
                    .and_then(|pid| facts[pid.0].get(port as usize).cloned())
                    .unwrap_or_default(),
                Input::Control(_) => Facts::default(),
            })
            .collect();
        if node.op == "Const" {
            facts[id.0] = vec![const_facts(node, ctx)];
            continue;
        }
        let stateful = ctx.ops.is_stateful(&node.op);
        if stateful.is_none() {
            ctx.report.unknown(&node.name, &node.op);
        }
        // Without output types (a required attribute missing) the node is invalid: left alone.
        let typed = ctx.ops.output_types(node).ok();
        // A node may claim up to 2^20 outputs in a few bytes; facts per output for such nodes
        // would multiply that by every node of the graph. They are analysed as unknowns.
        if typed.as_ref().is_some_and(|t| t.len() > MAX_ANALYZED_OUTPUTS) {
            continue;
        }
        let pure = is_pure(ctx, node) && !ctx.keep.contains(&node.name) && typed.is_some();
        let out_types = typed.unwrap_or_default();
        let all_const = !ins.is_empty() && ins.iter().all(|f| f.value.is_some());
        if evaluate && pure && all_const {
            if let Some((outs, how)) = try_evaluate(node, &ins, &out_types, ctx) {
                facts[id.0] = outs.into_iter().map(|t| Facts::of_value(Arc::new(t))).collect();
                known[id.0] = Some(how);
                continue;
            }
        }
        let mut outs = shape::infer(node, &ins, &out_types);
        if !pure {
            for o in &mut outs {
                o.value = None;
            }
        }
        if pure
            && !out_types.is_empty()
            && outs.len() == out_types.len()
            && outs.iter().all(|o| o.value.is_some())
        {
            known[id.0] = Some(Known::Shape);
        }
        facts[id.0] = outs;
    }
    Ok(Analysis { order, facts, known })
}

fn try_evaluate(
    node: &NodeDef,
    ins: &[Facts],
    out_types: &[i32],
    ctx: &mut Ctx,
) -> Option<(Vec<Tensor>, Known)> {
    let in_bytes: u64 = ins.iter().filter_map(|f| f.value.as_deref()).map(value_bytes).sum();
    let longest_string = ins
        .iter()
        .filter_map(|f| match f.value.as_deref().map(|t| &t.data) {
            Some(tf_tensor::Data::Strings(s)) => s.iter().map(|x| x.len() as u64).max(),
            _ => None,
        })
        .max()
        .unwrap_or(0);
    // Budgets, checked before anything is allocated: the size of each output (a constant
    // larger than its inputs only up to max_const_bytes), the memory left, the work.
    let max = ctx.cfg.max_const_bytes;
    let const_limit = max.max(in_bytes);
    let predicted = shape::infer(node, ins, out_types);
    let sizes: Vec<u64> =
        predicted.iter().filter_map(|f| predicted_bytes(f, longest_string)).collect();
    if let Some(&b) = sizes.iter().find(|&&b| b > const_limit) {
        ctx.skipped_budget(node, "max-const-bytes", b, max);
        return None;
    }
    // Ops whose output is a view of their input allocate and compute nothing.
    let view = ops::get(&node.op).is_some_and(|o| o.view);
    let total = sizes.iter().fold(0u64, |a, &b| a.saturating_add(b));
    if !view && total > ctx.live_left() {
        ctx.skipped_budget(node, "max-live-bytes", total, ctx.live_left());
        return None;
    }
    let w = work(node, ins, &predicted);
    if !view && w > ctx.cfg.max_work {
        ctx.skipped_budget(node, "max-work", w, ctx.cfg.max_work);
        return None;
    }
    // Outputs whose shape could not be predicted are held to the same limits by the kernels.
    let limit = const_limit.min(ctx.live_left());
    let values: Vec<Tensor> = ins.iter().filter_map(|f| f.value.as_deref().cloned()).collect();
    let native = eval::with_output_limit(limit, || match eval::kernel(&node.op) {
        Some(k) => k(node, &values),
        None => Err(EvalError::Unsupported(node.op.clone())),
    });
    let (result, how) = match native {
        Err(EvalError::Unsupported(_)) => match ctx.cfg.fallback.clone() {
            // Function calls need the library; the runtime evaluator gets single ops only.
            Some(fb) if !ctx.ops.is_function(&node.op) => {
                (fb.0.eval(node, &values), Known::TfRuntime)
            }
            _ => (native, Known::Evaluated),
        },
        other => (other, Known::Evaluated),
    };
    match result {
        Ok(outs) => {
            let types_ok = out_types.is_empty()
                || (outs.len() == out_types.len()
                    && outs
                        .iter()
                        .zip(out_types)
                        .all(|(t, &d)| t.dtype == tf_tensor::dtype::base(d)));
            if !types_ok {
                ctx.report.warn(format!(
                    "node '{}' ({}): the evaluator produced unexpected dtypes; not folded",
                    node.name, node.op
                ));
                return None;
            }
            if let Some(b) = outs.iter().map(value_bytes).find(|&b| b > const_limit) {
                ctx.skipped_budget(node, "max-const-bytes", b, max);
                return None;
            }
            let new_bytes: u64 =
                outs.iter().filter(|t| !is_view(t, &values)).map(value_bytes).sum();
            if new_bytes > ctx.live_left() {
                ctx.skipped_budget(node, "max-live-bytes", new_bytes, ctx.live_left());
                return None;
            }
            ctx.live_bytes += new_bytes;
            Some((outs, how))
        }
        Err(EvalError::TooLarge { bytes, .. }) => {
            let (budget, limit) = if limit < const_limit {
                ("max-live-bytes", limit)
            } else {
                ("max-const-bytes", max)
            };
            ctx.skipped_budget(node, budget, bytes, limit);
            None
        }
        Err(EvalError::Unsupported(_)) => {
            if ctx.unsupported_seen.insert(node.name.clone()) {
                *ctx.report.unsupported_ops.entry(node.op.clone()).or_default() += 1;
            }
            None
        }
        Err(e) => {
            let msg = format!("node '{}' ({}): {e}", node.name, node.op);
            if !ctx.report.eval_errors.contains(&msg) {
                ctx.report.eval_errors.push(msg);
            }
            None
        }
    }
}

/// For graphs with TF1 control flow: the nodes downstream of a `Switch` or `Enter` (inside a
/// conditional branch or a loop frame), whose constants must keep a control edge into that
/// context. Empty when the graph has no TF1 control flow.
pub(crate) fn control_flow_context(g: &Graph) -> Vec<bool> {
    let cap = g.capacity();
    let mut in_cf = vec![false; cap];
    let starts: Vec<NodeId> = g
        .nodes()
        .filter(|(_, n)| matches!(n.op.as_str(), "Switch" | "RefSwitch" | "Enter" | "RefEnter"))
        .map(|(id, _)| id)
        .collect();
    if starts.is_empty() {
        return in_cf;
    }
    let consumers = g.consumers();
    let mut stack = starts;
    while let Some(id) = stack.pop() {
        if std::mem::replace(&mut in_cf[id.0], true) {
            continue;
        }
        stack.extend(consumers.of_node(id).chain(consumers.control_of(id)));
    }
    in_cf
}

/// Whether a tensor of shape `c` broadcast against a tensor of shape `x` leaves `x`'s shape
/// unchanged (so `x op c` has `x`'s shape).
pub(crate) fn broadcasts_into(c: &[i64], x: Option<&[i64]>) -> bool {
    if c.iter().all(|&d| d == 1) && c.is_empty() {
        return true;
    }
    let Some(x) = x else { return false };
    if c.len() > x.len() {
        return false;
    }
    let off = x.len() - c.len();
    c.iter().enumerate().all(|(i, &d)| d == 1 || d == x[off + i] && d >= 0)
}
