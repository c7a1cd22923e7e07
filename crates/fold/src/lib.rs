//! `tf-fold`: constant folding, batch-norm folding and algebraic simplification of TensorFlow
//! graphs, without TensorFlow.
//!
//! [`fold`] takes a [`Graph`] and a [`FoldConfig`] and runs the enabled [`Pass`]es, in the order
//! below, again and again until none of them changes anything (a fixed point), pruning after each
//! pass what the outputs no longer need:
//!
//! 1. **constant** ([`passes::constant`]): a stateless node whose data inputs are all constant is
//!    evaluated by the native evaluator ([`eval`]) and becomes a `Const` of the same name;
//!    `Shape`, `Size`, `Rank` and `ShapeN` of tensors whose shape is statically known
//!    ([`shape`]) fold too, and a `Reshape` whose shape is known up to one dimension gets a
//!    constant shape with `-1` there.
//! 2. **control** ([`passes::control`]): `Switch` with a constant predicate loses its dead branch
//!    (down to the `Merge`s, which become the live tensor), `If`/`StatelessIf` with a constant
//!    condition is replaced by the taken branch, inlined; control edges that only order pure
//!    computations are dropped once no TF1 control flow is left.
//! 3. **batchnorm** ([`passes::batchnorm`]): `FusedBatchNorm`/`V2`/`V3` (inference),
//!    `BatchNormWithGlobalNormalization` and decomposed batch norm (`Mul`/`Add` by per-channel
//!    constants) after `Conv2D`, `DepthwiseConv2dNative`, `MatMul` (either `transpose_b`),
//!    `Conv2DBackpropInput` and `Conv3D`, also through a constant `BiasAdd`/`Add` and an atrous
//!    `BatchToSpaceND`, become scaled weights and one `BiasAdd`.
//! 4. **algebra** ([`passes::algebra`]): `x*1`, `x+0`, `x-0`, `x/1`, pass-throughs, identity
//!    transposes, `Transpose∘Transpose`, `Reshape∘Reshape`, reshapes and casts that change
//!    nothing, and chains of constant `Mul`/`Add`/`BiasAdd` merged into one.
//! 5. **dedupe** ([`passes::dedupe`]): nodes with the same op, inputs and attributes (constants
//!    with the same value) are merged.
//!
//! Invariants: output nodes (`--outputs`, else the signature's, else every node nothing
//! consumes) and placeholders are never removed or renamed; surviving nodes keep their names;
//! stateful and random ops are never folded; an untouched `Const` keeps its `TensorProto` as it
//! came (never decoded and re-encoded); no constant larger than `max_const_bytes` is created
//! when it is larger than its inputs. Bad input (a cycle, a constant whose content disagrees
//! with its shape, an op nobody knows) never panics: unknown ops stay and are listed in the
//! report, a broken constant is left alone with a warning, a cycle is an error.

#![deny(missing_docs)]

pub mod eval;
mod ops;
pub mod passes;
mod report;
pub mod shape;

use std::collections::{BTreeMap, HashSet};

pub use report::{BudgetSkip, FoldReport, FoldedTensor, NodeOp};
use tf_graph::{Graph, GraphError, Input, NodeId, TensorName};
use tf_ops::{Registry, Signatures};
use tf_proto::tensorflow::{attr_value, AttrValue, GraphDef, NodeDef};
use tf_tensor::{Data, Tensor};

/// The passes, in the order they run within one iteration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Pass {
    /// Constant folding with the native evaluator and static shapes.
    Constant,
    /// Dead branches of constant predicates; pure control edges.
    Control,
    /// Batch-norm folding into convolution and matmul weights.
    BatchNorm,
    /// Algebraic simplification.
    Algebra,
    /// Merging of duplicate nodes.
    Dedupe,
}

impl Pass {
    /// Every pass, in run order.
    pub const ALL: [Pass; 5] =
        [Pass::Constant, Pass::Control, Pass::BatchNorm, Pass::Algebra, Pass::Dedupe];

    /// The name used by `--passes`, `--no-PASS` and the report.
    pub fn name(self) -> &'static str {
        match self {
            Pass::Constant => "constant",
            Pass::Control => "control",
            Pass::BatchNorm => "batchnorm",
            Pass::Algebra => "algebra",
            Pass::Dedupe => "dedupe",
        }
    }

    /// Parses a pass name.
    pub fn parse(s: &str) -> Option<Pass> {
        Pass::ALL.into_iter().find(|p| p.name() == s)
    }
}

/// An evaluator for ops the native one does not implement, supplied by the caller: tf-fold's
/// `--tf-eval` plugs in TensorFlow's runtime (`tf_run::fold_eval`), so that this crate never
/// links TensorFlow. Same contract as a native [`eval::Kernel`]: the node and the values of its
/// data inputs in, one tensor per output out; [`eval::EvalError::Unsupported`] leaves the node.
pub trait Evaluator: Send + Sync {
    /// Evaluates `node` on `inputs`.
    fn eval(&self, node: &NodeDef, inputs: &[Tensor]) -> Result<Vec<Tensor>, eval::EvalError>;
}

/// A shared [`Evaluator`], as [`FoldConfig::fallback`] holds it.
#[derive(Clone)]
pub struct Fallback(pub std::sync::Arc<dyn Evaluator>);

impl std::fmt::Debug for Fallback {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Fallback(..)")
    }
}

/// What to fold: the validated form of tf-fold's flags.
#[derive(Debug, Clone)]
pub struct FoldConfig {
    /// Output tensors to preserve (`--outputs`); empty: the signature's, else every node
    /// nothing consumes.
    pub outputs: Vec<String>,
    /// The outputs of the SavedModel signature that was loaded, used when `outputs` is empty.
    pub signature_outputs: Vec<String>,
    /// Nodes never to fold, rewrite or remove (`--keep`).
    pub keep: Vec<String>,
    /// The passes to run.
    pub passes: Vec<Pass>,
    /// Largest constant created when it is larger than its inputs (`--max-const-bytes`);
    /// strings count their bytes plus 24 per element.
    pub max_const_bytes: u64,
    /// Budget for the tensor values folding holds at once (`--max-live-bytes`): constants
    /// decoded from typed fields (splats included), tensors computed by the evaluator that are
    /// not views of their inputs, and every constant folding created so far. Slices of the
    /// input (`tensor_content`) cost nothing.
    pub max_live_bytes: u64,
    /// Budget of work for evaluating one node (`--max-work`): elements read or written,
    /// times the reduction length for matrix products.
    pub max_work: u64,
    /// Upper bound on fixed-point iterations.
    pub max_iterations: usize,
    /// Evaluator for ops without a native kernel (`--tf-eval`).
    pub fallback: Option<Fallback>,
}

impl Default for FoldConfig {
    fn default() -> FoldConfig {
        FoldConfig {
            outputs: Vec::new(),
            signature_outputs: Vec::new(),
            keep: Vec::new(),
            passes: Pass::ALL.to_vec(),
            max_const_bytes: 10 << 20,
            max_live_bytes: 256 << 20,
            max_work: 1 << 28,
            max_iterations: 20,
            fallback: None,
        }
    }
}

/// Why folding failed; the message names the node or tensor.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FoldError {
    /// The input graph is broken (duplicate names, a cycle, a dangling input).
    #[error("invalid graph: {0}")]
    InvalidInput(#[from] GraphError),
    /// An `--outputs` tensor does not exist.
    #[error("output '{0}': no such node in the graph")]
    UnknownOutput(String),
    /// A `--keep` node does not exist.
    #[error("--keep '{0}': no such node in the graph")]
    UnknownKeep(String),
    /// A pass broke an invariant (a bug).
    #[error("internal error in pass {pass}: {detail}")]
    Internal {
        /// The pass.
        pass: &'static str,
        /// What went wrong.
        detail: String,
    },
}

/// State shared by the passes of one run.
pub(crate) struct Ctx<'a> {
    pub cfg: &'a FoldConfig,
    /// Op signatures: the graph's library first, then TensorFlow's registry.
    pub ops: Signatures<'static>,
    /// Output node names (never removed, never renamed).
    pub roots: Vec<String>,
    /// Node names no pass may rewrite or remove: outputs and `--keep`.
    pub protected: HashSet<String>,
    /// `--keep` nodes: not even folded in place.
    pub keep: HashSet<String>,
    /// Nodes already counted in `report.unsupported_ops`.
    pub unsupported_seen: HashSet<String>,
    pub report: FoldReport,
    /// Bytes of the constants folding created so far (charged to `max_live_bytes`).
    pub folded_bytes: u64,
    /// Bytes held by the current analysis, `folded_bytes` included.
    pub live_bytes: u64,
}

impl Ctx<'_> {
    /// Records a node whose value would exceed `--max-const-bytes`.
    pub(crate) fn skipped_large(&mut self, node: &NodeDef) {
        let e = NodeOp { node: node.name.clone(), op: node.op.clone() };
        if !self.report.skipped_large.contains(&e) {
            self.report.skipped_large.push(e);
        }
    }

    /// Records a node left unfolded by a budget (once per node and budget).
    pub(crate) fn skipped_budget(
        &mut self,
        node: &NodeDef,
        budget: &'static str,
        needed: u64,
        limit: u64,
    ) {
        if budget == "max-const-bytes" {
            self.skipped_large(node);
        }
        let seen =
            self.report.skipped_budget.iter().any(|b| b.node == node.name && b.budget == budget);
        if !seen {
            self.report.skipped_budget.push(BudgetSkip {
                node: node.name.clone(),
                op: node.op.clone(),
                budget,
                needed,
                limit,
            });
        }
    }

    /// What is left of `max_live_bytes`.
    pub(crate) fn live_left(&self) -> u64 {
        self.cfg.max_live_bytes.saturating_sub(self.live_bytes)
    }

    /// Whether the constants created so far leave room for more (checked by the constant
    /// pass before it creates one); records `node` as skipped when not.
    pub(crate) fn may_create_const(&mut self, node: &NodeDef, bytes: u64) -> bool {
        let left = self.cfg.max_live_bytes.saturating_sub(self.folded_bytes);
        if bytes > left {
            self.skipped_budget(node, "max-live-bytes", bytes, left);
            return false;
        }
        self.folded_bytes += bytes;
        true
    }

    /// Counts one change of `what` in `pass`.
    pub(crate) fn count(&mut self, pass: Pass, what: &str, n: usize) {
        if n > 0 {
            *self
                .report
                .passes
                .entry(pass.name().to_string())
                .or_default()
                .entry(what.to_string())
                .or_default() += n;
        }
    }
}

/// Folds a GraphDef; see [`fold`].
pub fn fold_graph_def(
    graph: GraphDef,
    cfg: &FoldConfig,
) -> Result<(GraphDef, FoldReport), FoldError> {
    let (g, report) = fold(Graph::from_graph_def(graph)?, cfg)?;
    Ok((g.into_graph_def(), report))
}

/// Runs the configured passes on `g` to a fixed point.
pub fn fold(mut g: Graph, cfg: &FoldConfig) -> Result<(Graph, FoldReport), FoldError> {
    // A broken input is the user's error, reported before any pass runs.
    g.topo_order()?;
    g.check(Some(Registry::global()))?;
    let ops = Signatures::owned(Registry::global(), g.library.as_ref());
    let mut report = FoldReport { nodes_before: g.len(), ..Default::default() };
    let marked: Vec<String> = if cfg.outputs.is_empty() && cfg.signature_outputs.is_empty() {
        g.marked_outputs().iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let names = if !cfg.outputs.is_empty() {
        &cfg.outputs
    } else if !cfg.signature_outputs.is_empty() {
        &cfg.signature_outputs
    } else {
        &marked
    };
    let chosen: Vec<TensorName> = names.iter().map(|n| TensorName::parse(n.trim())).collect();
    let mut roots: Vec<String> = Vec::new();
    for name in names {
        let t = TensorName::parse(name.trim());
        if g.id(&t.node).is_none() {
            return Err(FoldError::UnknownOutput(name.clone()));
        }
        if !roots.contains(&t.node) {
            roots.push(t.node.clone());
        }
        report.outputs.push(t.to_string());
    }
    if roots.is_empty() {
        let consumed: HashSet<&str> =
            g.nodes().flat_map(|(_, n)| n.input.iter().map(|s| Input::parse(s).node())).collect();
        for (_, n) in g.nodes() {
            if !consumed.contains(n.name.as_str()) {
                roots.push(n.name.clone());
                report.outputs.push(format!("{}:0", n.name));
            }
        }
    }
    let mut protected: HashSet<String> = roots.iter().cloned().collect();
    let mut keep = HashSet::new();
    for k in &cfg.keep {
        if g.id(k).is_none() {
            return Err(FoldError::UnknownKeep(k.clone()));
        }
        protected.insert(k.clone());
        keep.insert(k.clone());
        roots.push(k.clone());
    }
    let mut ctx = Ctx {
        cfg,
        ops,
        roots,
        protected,
        keep,
        unsupported_seen: HashSet::new(),
        report,
        folded_bytes: 0,
        live_bytes: 0,
    };
    prune(&mut g, &mut ctx);

    let mut passes = cfg.passes.clone();
    passes.sort();
    passes.dedup();
    let mut iterations = 0;
    for _ in 0..cfg.max_iterations.max(1) {
        iterations += 1;
        let mut changed = false;
        for &p in &passes {
            let n = match p {
                Pass::Constant => passes::constant::run(&mut g, &mut ctx)?,
                Pass::Control => passes::control::run(&mut g, &mut ctx)?,
                Pass::BatchNorm => passes::batchnorm::run(&mut g, &mut ctx)?,
                Pass::Algebra => passes::algebra::run(&mut g, &mut ctx)?,
                Pass::Dedupe => passes::dedupe::run(&mut g, &mut ctx)?,
            };
            if n > 0 {
                changed = true;
                prune(&mut g, &mut ctx);
                // Every pass that changed the graph must leave it valid.
                if let Err(e) = g.check(None) {
                    return Err(FoldError::Internal { pass: p.name(), detail: e.to_string() });
                }
            }
        }
        if !changed {
            break;
        }
    }
    ctx.report.iterations = iterations;
    if let Err(e) = g.check(Some(Registry::global())) {
        return Err(FoldError::Internal { pass: "check", detail: e.to_string() });
    }
    ctx.report.folded.retain(|f| g.id(&f.node).is_some());
    ctx.report.nodes_after = g.len();
    // Outputs that were chosen (not detected) are recorded for the next stage.
    if !chosen.is_empty() {
        g.mark_outputs(&chosen);
    }
    Ok((g, ctx.report))
}

/// The large constant payloads of `g` that are not slices of `input` (the constants folding
/// created): pass them with the input buffer to the writer so that they are written without
/// another copy.
pub fn new_payloads(g: &GraphDef, input: &bytes::Bytes) -> Vec<bytes::Bytes> {
    let (base, end) = (input.as_ptr() as usize, input.as_ptr() as usize + input.len());
    g.node
        .iter()
        .filter(|n| n.op == "Const")
        .filter_map(|n| n.attr_opt_tensor("value"))
        .map(|t| &t.tensor_content)
        .filter(|c| c.len() >= 4096)
        .filter(|c| {
            let p = c.as_ptr() as usize;
            p < base || p + c.len() > end
        })
        .cloned()
        .collect()
}

/// Removes every node the outputs (and placeholders, and `--keep`) do not depend on.
pub(crate) fn prune(g: &mut Graph, ctx: &mut Ctx) {
    let mut roots: Vec<NodeId> = ctx.roots.iter().filter_map(|n| g.id(n)).collect();
    roots.extend(
        g.nodes()
            .filter(|(_, node)| matches!(ops::kind(&node.op), ops::Kind::Feed))
            .map(|(id, _)| id),
    );
    let removed = g.prune_unreachable(&roots).len();
    ctx.report.removed += removed;
    if removed > 0 {
        g.drop_dangling_colocations();
    }
}

// ---- helpers shared by the passes ---------------------------------------------------------

/// The value of a `Const` node, or `None` (not a Const, or a broken one).
pub(crate) fn const_value(node: &NodeDef) -> Option<Tensor> {
    if node.op != "Const" {
        return None;
    }
    Tensor::from_proto(node.attr_opt_tensor("value")?).ok()
}

/// The Const producing a data input string, if any.
pub(crate) fn const_input(g: &Graph, input: &str) -> Option<(NodeId, Tensor)> {
    let Input::Data { node, port: 0 } = Input::parse(input) else { return None };
    let id = g.id(node)?;
    const_value(g.node(id)).map(|t| (id, t))
}

/// Encodes a tensor compactly: a splat (every element equal) as one typed value (TensorFlow's
/// fill rule), anything else as `tensor_content`.
pub(crate) fn encode_tensor(t: &Tensor) -> tf_proto::tensorflow::TensorProto {
    let n = t.len();
    let splat = n > 1
        && match &t.data {
            Data::Raw(b) => {
                let size = tf_tensor::dtype::element_size(t.dtype).unwrap_or(1);
                !b.is_empty() && b.chunks_exact(size).all(|c| c == &b[..size])
            }
            Data::Strings(s) => s.iter().all(|x| x == &s[0]),
            _ => false,
        };
    if splat {
        let one = match &t.data {
            Data::Raw(b) => {
                let size = tf_tensor::dtype::element_size(t.dtype).unwrap_or(1);
                Tensor { dtype: t.dtype, shape: vec![1], data: Data::Raw(b.slice(..size)) }
            }
            Data::Strings(s) => {
                Tensor { dtype: t.dtype, shape: vec![1], data: Data::Strings(vec![s[0].clone()]) }
            }
            _ => unreachable!("checked above"),
        };
        let mut p = one.to_proto_typed();
        p.tensor_shape = Some(tf_tensor::shape_proto(&t.shape));
        return p;
    }
    t.to_proto()
}

/// A `Const` node holding `t`, with the given control inputs (names without `^`).
pub(crate) fn const_node(name: String, t: &Tensor, control: &[String], device: &str) -> NodeDef {
    let mut attr = BTreeMap::new();
    attr.insert("dtype".to_string(), AttrValue { value: Some(attr_value::Value::Type(t.dtype)) });
    attr.insert(
        "value".to_string(),
        AttrValue { value: Some(attr_value::Value::Tensor(Box::new(encode_tensor(t)))) },
    );
    NodeDef {
        name,
        op: "Const".into(),
        input: control.iter().map(|c| format!("^{c}")).collect(),
        device: device.to_string(),
        attr,
        ..Default::default()
    }
}

/// Turns node `id` into a `Const` holding `t` in place (same name), with the given control
/// inputs.
pub(crate) fn replace_with_const(g: &mut Graph, id: NodeId, t: &Tensor, control: &[String]) {
    let n = g.node(id);
    let mut c = const_node(n.name.clone(), t, control, &n.device);
    c.experimental_debug_info = n.experimental_debug_info.clone();
    g.replace_node(id, c);
}

/// The control-input names of a node.
pub(crate) fn control_inputs(n: &NodeDef) -> Vec<String> {
    n.input
        .iter()
        .filter_map(|s| match Input::parse(s) {
            Input::Control(c) => Some(c.to_string()),
            _ => None,
        })
        .collect()
}

/// The data-input strings of a node.
pub(crate) fn data_inputs(n: &NodeDef) -> impl Iterator<Item = &String> {
    n.input.iter().filter(|s| !Input::parse(s).is_control())
}

pub(crate) use tf_graph::analysis::is_v1_control_flow as is_tf1_control_flow;

#[cfg(test)]
mod shape_tests;
#[cfg(test)]
mod tests;
