//! Which tensors the stripped graph must still compute, and which nodes are training or
//! saving machinery.
//!
//! Outputs are `--outputs`, else the SavedModel signature's, else the ones an earlier stage
//! marked ([`tf_graph::analysis::OUTPUTS_ATTR`]), else detected the way
//! `summarize_graph` suggests them: nodes that nothing consumes (through data or control edges)
//! and that are not [`machinery`]: a TF1 training graph's dangling `train` op, `init`,
//! `save/...` and summaries are not inference outputs.

use std::collections::HashSet;

use tf_graph::{Graph, Input, NodeId, TensorName};
use tf_proto::tensorflow::NodeDef;

use crate::{OutputsFrom, StripConfig, StripError, Why};
use tf_ops::Signatures;

/// The output tensors and where they came from; every one is checked to exist.
pub(crate) fn resolve(
    g: &Graph,
    ops: &Signatures<'_>,
    cfg: &StripConfig,
) -> Result<(Vec<TensorName>, OutputsFrom), StripError> {
    let marked: Vec<String> = if cfg.outputs.is_empty() && cfg.signature_outputs.is_empty() {
        g.marked_outputs().iter().map(ToString::to_string).collect()
    } else {
        Vec::new()
    };
    let (names, from) = if !cfg.outputs.is_empty() {
        (&cfg.outputs, OutputsFrom::Explicit)
    } else if !cfg.signature_outputs.is_empty() {
        (&cfg.signature_outputs, OutputsFrom::Signature)
    } else if !marked.is_empty() {
        (&marked, OutputsFrom::Marked)
    } else {
        let found = detect(g);
        if found.is_empty() {
            return Err(StripError::NoOutputs);
        }
        return Ok((found, OutputsFrom::Detected));
    };
    let mut out: Vec<TensorName> = Vec::new();
    for name in names {
        let t = TensorName::parse(name.trim());
        let node = g.get(&t.node).ok_or_else(|| StripError::UnknownOutput(name.clone()))?;
        // A node without outputs (a NoOp, a stateful call) may be named as `name` or `name:0`.
        if let Ok(arity) = ops.output_arity(node) {
            if t.port as usize >= arity.max(1) {
                return Err(StripError::OutputPort {
                    name: name.clone(),
                    node: node.name.clone(),
                    op: node.op.clone(),
                    arity,
                });
            }
        }
        if !out.contains(&t) {
            out.push(t);
        }
    }
    Ok((out, from))
}

/// Nodes nothing consumes that are not machinery, as `node:0`, in graph order (see
/// [`Graph::candidate_outputs`]).
pub fn detect(g: &Graph) -> Vec<TensorName> {
    g.candidate_outputs()
        .into_iter()
        .map(|id| TensorName { node: g.node(id).name.clone(), port: 0 })
        .collect()
}

/// Nodes the outputs do not need but training or saving machinery does (the loss, the training
/// branches of batch norm, optimizer hyper-parameters...), by node slot.
pub(crate) fn training_closure(g: &Graph, needed: &[bool]) -> Vec<bool> {
    let roots: Vec<_> = g
        .nodes()
        .filter(|(id, n)| {
            !needed[id.0] && machinery(n).is_some_and(|w| !matches!(w, Why::Unused | Why::Variable))
        })
        .map(|(id, _)| id)
        .collect();
    g.reachable(&roots, false)
}

/// Nodes that read checkpoint machinery (a SavedModel's save and restore function calls read
/// `saver_filename`).
pub(crate) fn save_consumers(g: &Graph) -> HashSet<NodeId> {
    g.nodes()
        .filter(|(_, n)| {
            n.input.iter().any(|s| {
                g.get(Input::parse(s).node())
                    .is_some_and(|p| machinery(p) == Some(Why::SaveRestore))
            })
        })
        .map(|(id, _)| id)
        .collect()
}

/// Whether a node belongs to training, saving or bookkeeping rather than inference, and which
/// kind (see [`tf_graph::analysis::machinery`]).
pub fn machinery(n: &NodeDef) -> Option<Why> {
    use tf_graph::analysis::Machinery as M;
    Some(match tf_graph::analysis::machinery(n)? {
        M::SaveRestore => Why::SaveRestore,
        M::Gradient => Why::Gradient,
        M::Optimizer => Why::Optimizer,
        M::Summary => Why::Summary,
        M::Initializer => Why::Initializer,
        M::Assign => Why::Assign,
        M::Training => Why::Training,
        M::Variable => Why::Variable,
        M::Bookkeeping => Why::Unused,
    })
}
